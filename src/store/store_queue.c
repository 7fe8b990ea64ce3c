/* store_queue.c - the outbound queue: messages waiting to leave, one row
 * per recipient not yet done.  See store.h. */
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "core/util.h"
#include "store/store_private.h"

int store_txn_queue_add(struct store_txn *t, int64_t body_id, const struct queue_msg_in *m,
			int64_t now, char **error_r)
{
	sqlite3_stmt *q = NULL, *r = NULL, *ref = NULL;
	int ret = -1;

	if (m->nrcpts == 0)
		return 0;
	q = store_prep(t->db, "INSERT INTO queue (qid, body_id, skip, sender, created, flags, "
		       "envid, ret) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)");
	r = store_prep(t->db, "INSERT INTO queue_rcpt (queue_id, addr, domain, orcpt, notify, "
		       "next_try, expand) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)");
	ref = store_prep(t->db, "UPDATE messages SET refs = refs + 1 WHERE id = ?1");
	if (!q || !r || !ref)
		goto out;
	store_bind_text(q, 1, m->qid);
	sqlite3_bind_int64(q, 2, body_id);
	sqlite3_bind_int64(q, 3, m->skip);
	store_bind_text(q, 4, m->sender);
	sqlite3_bind_int64(q, 5, now);
	sqlite3_bind_int64(q, 6, m->flags);
	if (m->envid)
		store_bind_text(q, 7, m->envid);
	sqlite3_bind_int(q, 8, m->ret);
	if (store_step_done(q) < 0)
		goto out;
	int64_t qrow = sqlite3_last_insert_rowid(t->db);
	for (size_t i = 0; i < m->nrcpts; i++) {
		const char *addr = m->rcpts[i].addr;
		const char *at = strrchr(addr, '@');
		char domain[STORE_DOMAIN_MAX + 1];
		snprintf(domain, sizeof domain, "%s", at ? at + 1 : "");
		str_lower(domain);
		sqlite3_reset(r);
		sqlite3_bind_int64(r, 1, qrow);
		store_bind_text(r, 2, addr);
		store_bind_text(r, 3, domain);
		if (m->rcpts[i].orcpt)
			store_bind_text(r, 4, m->rcpts[i].orcpt);
		else
			sqlite3_bind_null(r, 4);
		sqlite3_bind_int(r, 5, (int)m->rcpts[i].notify);
		sqlite3_bind_int64(r, 6, m->next_try ? m->next_try : now);
		sqlite3_bind_int(r, 7, m->rcpts[i].expand ? 1 : 0);
		if (store_step_done(r) < 0)
			goto out;
	}
	sqlite3_bind_int64(ref, 1, body_id);
	if (store_step_done(ref) < 0)
		goto out;
	/* Only queued, in no mailbox: nothing to search (see schema 10). */
	sqlite3_finalize(ref);
	ref = store_prep(t->db, "UPDATE messages SET indexed = 2 WHERE id = ?1 AND indexed = 0 "
			 "AND NOT EXISTS (SELECT 1 FROM mailbox_messages WHERE body_id = ?1)");
	if (!ref)
		goto out;
	sqlite3_bind_int64(ref, 1, body_id);
	if (store_step_done(ref) < 0)
		goto out;
	ret = 0;
out:
	if (ret < 0)
		store_set_db_error(t->st, t->db, "queueing a message", error_r);
	sqlite3_finalize(q);
	sqlite3_finalize(r);
	sqlite3_finalize(ref);
	return ret;
}

void queue_entries_free(struct queue_entry *v, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(v[i].sender);
		free(v[i].addr);
		free(v[i].domain);
		free(v[i].orcpt);
		free(v[i].envid);
		free(v[i].last_reply);
	}
	free(v);
}

#define ENTRY_COLS                                                                       \
	"r.id, q.id, q.body_id, q.qid, m.path, q.skip, m.size, q.created, q.flags, q.ret, " \
	"q.envid, q.sender, r.addr, r.domain, r.orcpt, r.last_reply, r.notify, r.attempts, " \
	"r.next_try, r.last_try, r.warned, q.hold, r.expand "                                \
	"FROM queue_rcpt r JOIN queue q ON q.id = r.queue_id JOIN messages m ON m.id = q.body_id "

static void read_entry(sqlite3_stmt *s, struct queue_entry *e)
{
	memset(e, 0, sizeof *e);
	e->rcpt_id = sqlite3_column_int64(s, 0);
	e->queue_id = sqlite3_column_int64(s, 1);
	e->body_id = sqlite3_column_int64(s, 2);
	snprintf(e->qid, sizeof e->qid, "%s", (const char *)sqlite3_column_text(s, 3));
	snprintf(e->path, sizeof e->path, "%s", (const char *)sqlite3_column_text(s, 4));
	e->skip = sqlite3_column_int64(s, 5);
	e->size = sqlite3_column_int64(s, 6);
	e->created = sqlite3_column_int64(s, 7);
	e->flags = (unsigned)sqlite3_column_int(s, 8);
	e->ret = sqlite3_column_int(s, 9);
	e->envid = store_col_strdup(s, 10);
	e->sender = store_col_strdup(s, 11);
	e->addr = store_col_strdup(s, 12);
	e->domain = store_col_strdup(s, 13);
	e->orcpt = store_col_strdup(s, 14);
	e->last_reply = store_col_strdup(s, 15);
	e->notify = (unsigned)sqlite3_column_int(s, 16);
	e->attempts = sqlite3_column_int(s, 17);
	e->next_try = sqlite3_column_int64(s, 18);
	e->last_try = sqlite3_column_int64(s, 19);
	e->warned = sqlite3_column_int(s, 20) != 0;
	e->hold = sqlite3_column_int(s, 21) != 0;
	e->expand = sqlite3_column_int(s, 22) != 0;
	if (!e->sender)
		e->sender = xstrdup("");
	if (!e->addr)
		e->addr = xstrdup("");
	if (!e->domain)
		e->domain = xstrdup("");
}

static int collect(sqlite3_stmt *s, struct queue_entry **v_r, size_t *n_r)
{
	struct queue_entry *v = NULL;
	size_t n = 0, cap = 0;
	int rc;

	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		if (n == cap) {
			cap = cap ? cap * 2 : 64;
			v = xreallocarray(v, cap, sizeof *v);
		}
		read_entry(s, &v[n++]);
	}
	if (rc != SQLITE_DONE) {
		queue_entries_free(v, n);
		return -1;
	}
	*v_r = v;
	*n_r = n;
	return 0;
}

int store_queue_due(struct store *st, int64_t now, size_t max, struct queue_entry **v_r,
		    size_t *n_r, int64_t *next_r, char **error_r)
{
	sqlite3 *db = store_db_get(st);
	sqlite3_stmt *s = NULL;
	int ret = -1;

	*v_r = NULL;
	*n_r = 0;
	*next_r = 0;
	if (!db) {
		store_set_error(error_r, xasprintf("store %s: cannot open database", st->db_path));
		return -1;
	}
	/* The due recipients, a message's together and in order. */
	s = store_prep(db, "SELECT " ENTRY_COLS "WHERE r.next_try <= ?1 AND q.hold = 0 "
		       "ORDER BY r.next_try, r.queue_id, r.id LIMIT ?2");
	if (!s)
		goto out;
	sqlite3_bind_int64(s, 1, now);
	sqlite3_bind_int64(s, 2, (int64_t)max);
	if (collect(s, v_r, n_r) < 0)
		goto out;
	sqlite3_finalize(s);
	s = store_prep(db, "SELECT min(r.next_try) FROM queue_rcpt r JOIN queue q "
		       "ON q.id = r.queue_id WHERE q.hold = 0 AND r.next_try > ?1");
	if (!s)
		goto out;
	sqlite3_bind_int64(s, 1, now);
	if (sqlite3_step(s) == SQLITE_ROW)
		*next_r = sqlite3_column_int64(s, 0);
	ret = 0;
out:
	if (ret < 0) {
		store_set_db_error(st, db, "reading the queue", error_r);
		queue_entries_free(*v_r, *n_r);
		*v_r = NULL;
		*n_r = 0;
	}
	sqlite3_finalize(s);
	store_db_put(st, db);
	return ret;
}

int store_queue_list(struct store *st, const char *qid, struct queue_entry **v_r, size_t *n_r,
		     char **error_r)
{
	sqlite3 *db = store_db_get(st);
	sqlite3_stmt *s = NULL;
	int ret = -1;

	*v_r = NULL;
	*n_r = 0;
	if (!db) {
		store_set_error(error_r, xasprintf("store %s: cannot open database", st->db_path));
		return -1;
	}
	if (qid)
		s = store_prep(db, "SELECT " ENTRY_COLS "WHERE q.qid = ?1 ORDER BY q.id, r.id");
	else
		s = store_prep(db, "SELECT " ENTRY_COLS "ORDER BY q.id, r.id");
	if (!s)
		goto out;
	if (qid)
		store_bind_text(s, 1, qid);
	if (collect(s, v_r, n_r) < 0)
		goto out;
	ret = 0;
out:
	if (ret < 0)
		store_set_db_error(st, db, "listing the queue", error_r);
	sqlite3_finalize(s);
	store_db_put(st, db);
	return ret;
}

/* The message row goes with its last recipient; its body with its last
 * reference (mailbox copies count too). */
static int drop_if_empty(struct store_txn *t, int64_t queue_id, char ***paths, size_t *npaths)
{
	sqlite3_stmt *s = store_prep(t->db, "DELETE FROM queue WHERE id = ?1 AND NOT EXISTS "
				     "(SELECT 1 FROM queue_rcpt WHERE queue_id = ?1) RETURNING body_id");
	sqlite3_stmt *deref = NULL, *gone = NULL;
	int ret = -1, rc;
	int64_t body_id = 0;

	if (!s)
		return -1;
	sqlite3_bind_int64(s, 1, queue_id);
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW) {
		body_id = sqlite3_column_int64(s, 0);
		rc = sqlite3_step(s);
	}
	if (rc != SQLITE_DONE)
		goto out;
	if (body_id == 0) {
		ret = 0;
		goto out;
	}
	deref = store_prep(t->db, "UPDATE messages SET refs = refs - 1 WHERE id = ?1");
	gone = store_prep(t->db, "DELETE FROM messages WHERE id = ?1 AND refs <= 0 RETURNING path");
	if (!deref || !gone)
		goto out;
	sqlite3_bind_int64(deref, 1, body_id);
	if (store_step_done(deref) < 0)
		goto out;
	sqlite3_bind_int64(gone, 1, body_id);
	if (store_collect_paths(gone, paths, npaths) < 0)
		goto out;
	ret = 0;
out:
	sqlite3_finalize(s);
	sqlite3_finalize(deref);
	sqlite3_finalize(gone);
	return ret;
}

int store_txn_queue_update(struct store_txn *t, const struct queue_update *u, size_t n,
			   int64_t now, char ***unlink_r, size_t *nunlink_r, char **error_r)
{
	sqlite3_stmt *del = NULL, *upd = NULL;
	char **paths = NULL;
	size_t npaths = 0;
	int ret = -1;

	*unlink_r = NULL;
	*nunlink_r = 0;
	del = store_prep(t->db, "DELETE FROM queue_rcpt WHERE id = ?1 RETURNING queue_id");
	upd = store_prep(t->db, "UPDATE queue_rcpt SET attempts = attempts + ?2, next_try = ?3, "
			 "last_try = ?4, last_reply = coalesce(?5, last_reply), "
			 "warned = warned OR ?6 WHERE id = ?1");
	if (!del || !upd)
		goto out;
	for (size_t i = 0; i < n; i++) {
		if (u[i].done) {
			int64_t qrow = 0;
			int rc;
			sqlite3_reset(del);
			sqlite3_bind_int64(del, 1, u[i].rcpt_id);
			rc = sqlite3_step(del);
			if (rc == SQLITE_ROW) {
				qrow = sqlite3_column_int64(del, 0);
				rc = sqlite3_step(del);
			}
			if (rc != SQLITE_DONE)
				goto out;
			if (qrow && drop_if_empty(t, qrow, &paths, &npaths) < 0)
				goto out;
			continue;
		}
		sqlite3_reset(upd);
		sqlite3_bind_int64(upd, 1, u[i].rcpt_id);
		sqlite3_bind_int(upd, 2, u[i].attempted ? 1 : 0);
		sqlite3_bind_int64(upd, 3, u[i].next_try);
		sqlite3_bind_int64(upd, 4, u[i].attempted ? now : 0);
		if (u[i].last_reply)
			store_bind_text(upd, 5, u[i].last_reply);
		else
			sqlite3_bind_null(upd, 5);
		sqlite3_bind_int(upd, 6, u[i].warned ? 1 : 0);
		if (store_step_done(upd) < 0)
			goto out;
	}
	ret = 0;
out:
	if (ret < 0) {
		store_set_db_error(t->st, t->db, "updating the queue", error_r);
		for (size_t i = 0; i < npaths; i++)
			free(paths[i]);
		FREE(paths);
		npaths = 0;
	}
	sqlite3_finalize(del);
	sqlite3_finalize(upd);
	*unlink_r = paths;
	*nunlink_r = npaths;
	return ret;
}

/* Administration (yubin queue): one write transaction each. */
static int admin_exec(struct store *st, const char *sql, const char *qid, int64_t arg,
		      const char *what, char **error_r)
{
	sqlite3 *db = store_db_get(st);
	sqlite3_stmt *s;
	int ret = -1;

	if (!db) {
		store_set_error(error_r, xasprintf("store %s: cannot open database", st->db_path));
		return -1;
	}
	s = store_prep(db, sql);
	if (s) {
		if (qid)
			store_bind_text(s, 1, qid);
		else
			sqlite3_bind_null(s, 1);
		sqlite3_bind_int64(s, 2, arg);
		if (store_step_done(s) == 0)
			ret = sqlite3_changes(db);
	}
	if (ret < 0)
		store_set_db_error(st, db, what, error_r);
	sqlite3_finalize(s);
	store_db_put(st, db);
	return ret;
}

int store_queue_hold(struct store *st, const char *qid, bool hold, char **error_r)
{
	return admin_exec(st, "UPDATE queue SET hold = ?2 WHERE (?1 IS NULL OR qid = ?1) "
			  "AND hold <> ?2", qid, hold ? 1 : 0, "holding queued messages", error_r);
}

int store_queue_retry(struct store *st, const char *qid, int64_t now, char **error_r)
{
	return admin_exec(st, "UPDATE queue_rcpt SET next_try = ?2 WHERE queue_id IN "
			  "(SELECT id FROM queue WHERE ?1 IS NULL OR qid = ?1)", qid, now,
			  "rescheduling queued messages", error_r);
}

int store_queue_delete(struct store *st, const char *qid, char **error_r)
{
	sqlite3 *db = store_db_get(st);
	sqlite3_stmt *s = NULL;
	struct store_txn t = {st, db};
	int64_t *ids = NULL;
	size_t n = 0, cap = 0;
	char **paths = NULL;
	size_t npaths = 0;
	int ret = -1, rc;

	if (!db) {
		store_set_error(error_r, xasprintf("store %s: cannot open database", st->db_path));
		return -1;
	}
	if (store_exec(db, "BEGIN IMMEDIATE") < 0)
		goto dberr;
	s = store_prep(db, "SELECT id FROM queue WHERE ?1 IS NULL OR qid = ?1");
	if (!s)
		goto dberr;
	if (qid)
		store_bind_text(s, 1, qid);
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		if (n == cap) {
			cap = cap ? cap * 2 : 16;
			ids = xreallocarray(ids, cap, sizeof *ids);
		}
		ids[n++] = sqlite3_column_int64(s, 0);
	}
	sqlite3_finalize(s);
	s = NULL;
	if (rc != SQLITE_DONE)
		goto dberr;
	s = store_prep(db, "DELETE FROM queue_rcpt WHERE queue_id = ?1");
	if (!s)
		goto dberr;
	for (size_t i = 0; i < n; i++) {
		sqlite3_reset(s);
		sqlite3_bind_int64(s, 1, ids[i]);
		if (store_step_done(s) < 0 || drop_if_empty(&t, ids[i], &paths, &npaths) < 0)
			goto dberr;
	}
	if (store_exec(db, "COMMIT") < 0)
		goto dberr;
	ret = (int)n;
	store_unlink_bodies(st, paths, npaths);
	goto out;
dberr:
	store_set_db_error(st, db, "deleting queued messages", error_r);
	(void)store_exec(db, "ROLLBACK");
out:
	for (size_t i = 0; i < npaths; i++)
		free(paths[i]);
	free(paths);
	free(ids);
	sqlite3_finalize(s);
	store_db_put(st, db);
	return ret;
}

/* ---- routes (yubin route) ---- */

int store_route_set(struct store *st, const char *domain, const char *host, int port, bool mx,
		    char **error_r)
{
	sqlite3 *db = store_db_get(st);
	sqlite3_stmt *s;
	int ret = -1;

	if (!db) {
		store_set_error(error_r, xasprintf("store %s: cannot open database", st->db_path));
		return -1;
	}
	s = store_prep(db, "INSERT OR REPLACE INTO routes (domain, host, port, mx) "
		       "VALUES (lower(?1), ?2, ?3, ?4)");
	if (s) {
		store_bind_text(s, 1, domain);
		store_bind_text(s, 2, host);
		sqlite3_bind_int(s, 3, port);
		sqlite3_bind_int(s, 4, mx ? 1 : 0);
		ret = store_step_done(s);
	}
	if (ret < 0)
		store_set_db_error(st, db, "setting a route", error_r);
	sqlite3_finalize(s);
	store_db_put(st, db);
	return ret;
}

int store_route_del(struct store *st, const char *domain, char **error_r)
{
	sqlite3 *db = store_db_get(st);
	sqlite3_stmt *s;
	int ret = -1;

	if (!db) {
		store_set_error(error_r, xasprintf("store %s: cannot open database", st->db_path));
		return -1;
	}
	s = store_prep(db, "DELETE FROM routes WHERE domain = lower(?1)");
	if (s) {
		store_bind_text(s, 1, domain);
		if (store_step_done(s) == 0)
			ret = sqlite3_changes(db);
	}
	if (ret < 0)
		store_set_db_error(st, db, "deleting a route", error_r);
	sqlite3_finalize(s);
	store_db_put(st, db);
	return ret;
}

int store_route_list(struct store *st, struct store_route **v_r, size_t *n_r, char **error_r)
{
	sqlite3 *db = store_db_get(st);
	sqlite3_stmt *s;
	struct store_route *v = NULL;
	size_t n = 0, cap = 0;
	int ret = -1, rc = SQLITE_ERROR;

	*v_r = NULL;
	*n_r = 0;
	if (!db) {
		store_set_error(error_r, xasprintf("store %s: cannot open database", st->db_path));
		return -1;
	}
	s = store_prep(db, "SELECT domain, host, port, mx FROM routes ORDER BY domain");
	if (s) {
		while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
			if (n == cap) {
				cap = cap ? cap * 2 : 8;
				v = xreallocarray(v, cap, sizeof *v);
			}
			struct store_route *r = &v[n++];
			memset(r, 0, sizeof *r);
			snprintf(r->domain, sizeof r->domain, "%s", sqlite3_column_text(s, 0));
			snprintf(r->host, sizeof r->host, "%s", sqlite3_column_text(s, 1));
			r->port = sqlite3_column_int(s, 2);
			r->mx = sqlite3_column_int(s, 3) != 0;
		}
	}
	if (rc == SQLITE_DONE) {
		ret = 0;
		*v_r = v;
		*n_r = n;
	} else {
		free(v);
		store_set_db_error(st, db, "listing routes", error_r);
	}
	sqlite3_finalize(s);
	store_db_put(st, db);
	return ret;
}

/* ---- MTA-STS policies ---- */

int store_txn_sts_put(struct store_txn *t, const char *domain, const char *id, int64_t expires,
		      const char *policy, char **error_r)
{
	sqlite3_stmt *s = store_prep(t->db, "INSERT OR REPLACE INTO sts_policies (domain, id, "
				     "expires, policy) VALUES (lower(?1), ?2, ?3, ?4)");
	int ret = -1;
	if (s) {
		store_bind_text(s, 1, domain);
		store_bind_text(s, 2, id);
		sqlite3_bind_int64(s, 3, expires);
		store_bind_text(s, 4, policy);
		ret = store_step_done(s);
	}
	if (ret < 0)
		store_set_db_error(t->st, t->db, "saving an MTA-STS policy", error_r);
	sqlite3_finalize(s);
	return ret;
}

int store_sts_list(struct store *st, int64_t now, struct store_sts **v_r, size_t *n_r,
		   char **error_r)
{
	sqlite3 *db = store_db_get(st);
	struct store_sts *v = NULL;
	size_t n = 0, cap = 0;
	int rc = SQLITE_ERROR, ret = -1;

	*v_r = NULL;
	*n_r = 0;
	if (!db) {
		store_set_error(error_r, xasprintf("store %s: cannot open database", st->db_path));
		return -1;
	}
	sqlite3_stmt *del = store_prep(db, "DELETE FROM sts_policies WHERE expires < ?1");
	if (del) {
		sqlite3_bind_int64(del, 1, now);
		(void)store_step_done(del);     /* a leftover expired row is harmless */
	}
	sqlite3_finalize(del);
	sqlite3_stmt *s = store_prep(db, "SELECT domain, id, expires, policy FROM sts_policies "
				     "WHERE expires >= ?1 ORDER BY domain");
	if (s) {
		sqlite3_bind_int64(s, 1, now);
		while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
			if (n == cap) {
				cap = cap ? cap * 2 : 16;
				v = xreallocarray(v, cap, sizeof *v);
			}
			struct store_sts *e = &v[n++];
			memset(e, 0, sizeof *e);
			snprintf(e->domain, sizeof e->domain, "%s", sqlite3_column_text(s, 0));
			snprintf(e->id, sizeof e->id, "%s", sqlite3_column_text(s, 1));
			e->expires = sqlite3_column_int64(s, 2);
			e->policy = store_col_strdup(s, 3);
			if (!e->policy)
				e->policy = xstrdup("");
		}
	}
	if (rc == SQLITE_DONE) {
		ret = 0;
		*v_r = v;
		*n_r = n;
	} else {
		store_sts_free(v, n);
		store_set_db_error(st, db, "listing MTA-STS policies", error_r);
	}
	sqlite3_finalize(s);
	store_db_put(st, db);
	return ret;
}

void store_sts_free(struct store_sts *v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(v[i].policy);
	free(v);
}
