/* store_jmap.c - mailboxes with their counts for JMAP Mailbox/get. */
#include "store/store_jmap.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/buf.h"
#include "core/log.h"
#include "core/util.h"
#include "store/store_private.h"

int store_jmap_mailboxes(struct store *st, int64_t account_id, struct store_jmap_mailbox **v_r,
			 size_t *n_r, char **error_r)
{
	*v_r = NULL;
	*n_r = 0;
	sqlite3 *db = store_db_get(st);
	if (!db) {
		store_set_error(error_r, xstrdup("cannot open the database"));
		return -1;
	}
	sqlite3_stmt *s = store_prep(db,
		"SELECT m.id, m.name, m.special_use, m.noselect, m.highestmodseq, m.uidvalidity,"
		" EXISTS (SELECT 1 FROM subscriptions s"
		"         WHERE s.account_id = m.account_id AND s.name = m.name),"
		" (SELECT count(*) FROM mailbox_messages mm WHERE mm.mailbox_id = m.id),"
		" (SELECT count(*) FROM mailbox_messages mm"
		"  WHERE mm.mailbox_id = m.id AND (mm.flags & ?2) = 0)"
		" FROM mailboxes m WHERE m.account_id = ?1 ORDER BY m.name");
	if (!s) {
		store_set_db_error(st, db, "listing mailboxes", error_r);
		store_db_put(st, db);
		return -1;
	}
	sqlite3_bind_int64(s, 1, account_id);
	sqlite3_bind_int(s, 2, FLAG_SEEN | FLAG_DRAFT);
	struct store_jmap_mailbox *v = NULL;
	size_t n = 0, cap = 0;
	int rc;
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		if (n == cap) {
			cap = cap ? cap * 2 : 16;
			v = xreallocarray(v, cap, sizeof *v);
		}
		struct store_jmap_mailbox *m = &v[n++];
		m->id = sqlite3_column_int64(s, 0);
		m->name = store_col_strdup(s, 1);
		m->special_use = sqlite3_column_type(s, 2) == SQLITE_NULL ? NULL :
				 store_col_strdup(s, 2);
		m->noselect = sqlite3_column_int(s, 3) != 0;
		m->highestmodseq = (uint64_t)sqlite3_column_int64(s, 4);
		m->uidvalidity = (uint32_t)sqlite3_column_int64(s, 5);
		m->subscribed = sqlite3_column_int(s, 6) != 0;
		m->total = sqlite3_column_int64(s, 7);
		m->unread = sqlite3_column_int64(s, 8);
	}
	if (rc != SQLITE_DONE) {
		store_set_db_error(st, db, "listing mailboxes", error_r);
		sqlite3_finalize(s);
		store_db_put(st, db);
		store_jmap_mailboxes_free(v, n);
		return -1;
	}
	sqlite3_finalize(s);
	store_db_put(st, db);
	*v_r = v;
	*n_r = n;
	return 0;
}

void store_jmap_mailboxes_free(struct store_jmap_mailbox *v, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(v[i].name);
		free(v[i].special_use);
	}
	free(v);
}

int store_jmap_state(struct store *st, int64_t account_id, struct store_jmap_state *r,
		     char **error_r)
{
	memset(r, 0, sizeof *r);
	sqlite3 *db = store_db_get(st);
	if (!db) {
		store_set_error(error_r, xstrdup("cannot open the database"));
		return -1;
	}
	sqlite3_stmt *s = store_prep(db, "SELECT a.jmap_email, a.jmap_mailbox,"
				     " coalesce((SELECT min(seq) - 1 FROM jmap_changes),"
				     "  (SELECT seq FROM sqlite_sequence WHERE name = 'jmap_changes'), 0)"
				     " FROM accounts a WHERE a.id = ?1");
	int rc = s ? (sqlite3_bind_int64(s, 1, account_id), sqlite3_step(s)) : SQLITE_ERROR;
	if (rc != SQLITE_ROW) {
		store_set_db_error(st, db, "reading the mail state", error_r);
		sqlite3_finalize(s);
		store_db_put(st, db);
		return -1;
	}
	r->email = sqlite3_column_int64(s, 0);
	r->mailbox = sqlite3_column_int64(s, 1);
	r->horizon = sqlite3_column_int64(s, 2);
	sqlite3_finalize(s);
	store_db_put(st, db);
	return 0;
}

int store_jmap_changes(struct store *st, int64_t account_id, int kind, int64_t since,
		       size_t max, struct store_jmap_change **v_r, size_t *n_r, char **error_r)
{
	*v_r = NULL;
	*n_r = 0;
	sqlite3 *db = store_db_get(st);
	if (!db) {
		store_set_error(error_r, xstrdup("cannot open the database"));
		return -1;
	}
	sqlite3_stmt *s = store_prep(db, kind ?
		"SELECT seq, kind, obj, coalesce(mailbox, 0), op FROM jmap_changes"
		" WHERE account_id = ?1 AND kind = ?2 AND seq > ?3 ORDER BY seq LIMIT ?4" :
		"SELECT seq, kind, obj, coalesce(mailbox, 0), op FROM jmap_changes"
		" WHERE account_id = ?1 AND seq > ?3 ORDER BY seq LIMIT ?4");
	struct store_jmap_change *v = NULL;
	size_t n = 0, cap = 0;
	int rc = SQLITE_ERROR;
	if (s) {
		sqlite3_bind_int64(s, 1, account_id);
		if (kind)
			sqlite3_bind_int(s, 2, kind);
		sqlite3_bind_int64(s, 3, since);
		sqlite3_bind_int64(s, 4, (int64_t)max);
		while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
			if (n == cap) {
				cap = cap ? 2 * cap : 64;
				v = xreallocarray(v, cap, sizeof *v);
			}
			int op = sqlite3_column_int(s, 4);
			v[n++] = (struct store_jmap_change){
				.seq = sqlite3_column_int64(s, 0),
				.kind = sqlite3_column_int(s, 1),
				.obj = sqlite3_column_int64(s, 2),
				.mailbox = sqlite3_column_int64(s, 3),
				.op = op == 0 ? STORE_JMAP_CREATED : op == 2 ? STORE_JMAP_DESTROYED :
				      STORE_JMAP_UPDATED,
			};
		}
	}
	if (rc != SQLITE_DONE) {
		store_set_db_error(st, db, "reading the change log", error_r);
		sqlite3_finalize(s);
		store_db_put(st, db);
		free(v);
		return -1;
	}
	sqlite3_finalize(s);
	store_db_put(st, db);
	*v_r = v;
	*n_r = n;
	return 0;
}

/* ---- Email/query ---- */

struct qbind {
	bool text;
	int64_t i;
	char *s;
};

struct qbuild {
	struct buf sql;
	struct qbind b[16 + 2 * STORE_JMAP_IN_MAX];
	size_t nb;
};

/* Append sql with each '#' made the next parameter's "?N". */
static void qb_sql(struct qbuild *q, const char *sql)
{
	for (const char *p = sql; *p; p++) {
		if (*p == '#')
			buf_printf(&q->sql, "?%d", (int)q->nb + 1);
		else
			buf_append(&q->sql, p, 1);
	}
}

static void qb_int(struct qbuild *q, const char *sql, int64_t v)
{
	qb_sql(q, sql);
	q->b[q->nb++] = (struct qbind){.i = v};
}

static void qb_text(struct qbuild *q, const char *sql, char *v)
{
	qb_sql(q, sql);
	q->b[q->nb++] = (struct qbind){.text = true, .s = v};
}

static void qb_bind(const struct qbuild *q, sqlite3_stmt *s)
{
	for (size_t i = 0; i < q->nb; i++) {
		if (q->b[i].text)
			sqlite3_bind_text(s, (int)i + 1, q->b[i].s, -1, SQLITE_STATIC);
		else
			sqlite3_bind_int64(s, (int)i + 1, q->b[i].i);
	}
}

static char *kw_pattern(const char *kw)
{
	char *p = xasprintf(" %s ", kw);
	for (char *c = p; *c; c++)
		if (*c >= 'A' && *c <= 'Z')
			*c = (char)(*c + 32);
	return p;
}

static char *fts_phrase(const char *text)
{
	struct buf b;
	buf_init(&b, 1 << 16);
	buf_append(&b, "\"", 1);
	for (const char *p = text; *p; p++)
		if ((*p == '"' && buf_append(&b, "\"\"", 2) < 0) ||
		    (*p != '"' && buf_append(&b, p, 1) < 0))
			break;
	buf_append(&b, "\"", 1);
	return buf_steal(&b, NULL);
}

static const char *sort_key(enum store_jmap_sort s)
{
	return s == STORE_JMAP_SORT_SENT ? "sent_at" : s == STORE_JMAP_SORT_FROM ? "from_key" :
	       "subject_key";
}

/* FROM ... WHERE ... of q (no ORDER BY). */
static int qb_where(struct qbuild *b, int64_t account_id, const struct store_jmap_query *q)
{
	bool need_m = q->min_size >= 0 || q->max_size >= 0 || q->text ||
		      q->sort == STORE_JMAP_SORT_SIZE;
	buf_append_str(&b->sql, " FROM mailbox_messages mm"
		       " JOIN mailboxes mb ON mb.id = mm.mailbox_id");
	if (need_m)
		buf_append_str(&b->sql, " JOIN messages m ON m.id = mm.body_id");
	if (q->sort >= STORE_JMAP_SORT_SENT || q->collapse)
		buf_append_str(&b->sql, " LEFT JOIN email_threads et ON et.account_id ="
			       " mb.account_id AND et.body_id = mm.body_id");
	qb_int(b, " WHERE mb.account_id = #", account_id);
	if (q->in_mailbox)
		qb_int(b, " AND mm.mailbox_id = #", q->in_mailbox);
	for (size_t i = 0; i < q->nnot_in && i < STORE_JMAP_IN_MAX; i++)
		qb_int(b, " AND mm.mailbox_id != #", q->not_in[i]);
	if (q->has_before)
		qb_int(b, " AND mm.internaldate < #", q->before);
	if (q->has_after)
		qb_int(b, " AND mm.internaldate >= #", q->after);
	if (q->min_size >= 0)
		qb_int(b, " AND m.size >= #", q->min_size);
	if (q->max_size >= 0)
		qb_int(b, " AND m.size < #", q->max_size);
	if (q->flags_set)
		qb_int(b, " AND (mm.flags & #) = #", q->flags_set);
	if (q->flags_clear)
		qb_int(b, " AND (mm.flags & #) = 0", q->flags_clear);
	for (size_t i = 0; i < q->nkw_set && b->nb < 12 + STORE_JMAP_IN_MAX; i++)
		qb_text(b, " AND instr(' ' || lower(coalesce(mm.keywords, '')) || ' ', #) > 0",
			kw_pattern(q->kw_set[i]));
	for (size_t i = 0; i < q->nkw_clear && b->nb < 12 + 2 * STORE_JMAP_IN_MAX; i++)
		qb_text(b, " AND instr(' ' || lower(coalesce(mm.keywords, '')) || ' ', #) = 0",
			kw_pattern(q->kw_clear[i]));
	if (q->text)
		qb_text(b, " AND (m.indexed != 1 OR m.id IN (SELECT rowid FROM msg_text"
			" WHERE msg_text MATCH #))", fts_phrase(q->text));
	return 0;
}

static void qb_free(struct qbuild *b)
{
	for (size_t i = 0; i < b->nb; i++)
		free(b->b[i].s);
	buf_free(&b->sql);
}

static int query_count(sqlite3 *db, int64_t account_id, const struct store_jmap_query *q,
		       int64_t *total_r)
{
	struct qbuild b = {0};
	buf_init(&b.sql, 1 << 16);
	buf_append_str(&b.sql, q->collapse ? "SELECT count(DISTINCT coalesce(et.thread_id,"
					     " mm.body_id))" :
			       q->in_mailbox ? "SELECT count(*)" : "SELECT count(DISTINCT mm.body_id)");
	qb_where(&b, account_id, q);
	sqlite3_stmt *s = store_prep(db, b.sql.data);
	int rc = SQLITE_ERROR;
	if (s) {
		qb_bind(&b, s);
		rc = sqlite3_step(s);
		if (rc == SQLITE_ROW)
			*total_r = sqlite3_column_int64(s, 0);
	}
	sqlite3_finalize(s);
	qb_free(&b);
	return rc == SQLITE_ROW ? 0 : -1;
}

int store_jmap_query(struct store *st, int64_t account_id, const struct store_jmap_query *q,
		     struct store_jmap_ref **v_r, size_t *n_r, int64_t *total_r,
		     int64_t *position_r, char **error_r)
{
	*v_r = NULL;
	*n_r = 0;
	*total_r = -1;
	*position_r = 0;
	sqlite3 *db = store_db_get(st);
	if (!db) {
		store_set_error(error_r, xstrdup("cannot open the database"));
		return -1;
	}
	/* One snapshot for the count and the rows. */
	if (store_exec(db, "BEGIN") < 0) {
		store_set_db_error(st, db, "Email/query", error_r);
		store_db_put(st, db);
		return -1;
	}
	int64_t total = -1, pos = q->position;
	if ((q->calculate_total || (pos < 0 && !q->has_anchor)) &&
	    query_count(db, account_id, q, &total) < 0)
		goto fail;
	if (pos < 0 && !q->has_anchor) {
		pos += total;
		if (pos < 0)
			pos = 0;
	}
	struct qbuild b = {0};
	buf_init(&b.sql, 1 << 16);
	/* In one mailbox the rows are the emails (a body twice in one mailbox
	 * is skipped below; LIMIT may then give one fewer); across mailboxes
	 * an email's copies are grouped. */
	const char *dir = q->ascending ? "ASC" : "DESC";
	if (q->collapse) {
		/* one row a thread: the one first in the sort order (SQLite takes
		 * a bare column from the row of the min/max) */
		const char *key = q->sort == STORE_JMAP_SORT_SIZE ? "m.size" :
				  q->sort == STORE_JMAP_SORT_RECEIVED ?
				  "mm.internaldate * 2147483648 + mm.body_id % 2147483648" :
				  q->sort == STORE_JMAP_SORT_SENT ? "et.sent_at" :
				  q->sort == STORE_JMAP_SORT_FROM ? "et.from_key" : "et.subject_key";
		buf_printf(&b.sql, "SELECT mm.body_id, %s(%s) AS k", q->ascending ? "min" : "max",
			   key);
		qb_where(&b, account_id, q);
		buf_printf(&b.sql, " GROUP BY coalesce(et.thread_id, mm.body_id)"
			   " ORDER BY k %s, mm.body_id %s", dir, dir);
	} else if (q->in_mailbox) {
		buf_append_str(&b.sql, "SELECT mm.body_id");
		qb_where(&b, account_id, q);
		if (q->sort == STORE_JMAP_SORT_SIZE)
			buf_printf(&b.sql, " ORDER BY m.size %s, mm.internaldate %s", dir, dir);
		else if (q->sort >= STORE_JMAP_SORT_SENT)
			buf_printf(&b.sql, " ORDER BY et.%s %s, mm.internaldate DESC",
				   sort_key(q->sort), dir);
		else
			buf_printf(&b.sql, " ORDER BY mm.internaldate %s", dir);
		buf_printf(&b.sql, ", mm.uid %s", q->sort >= STORE_JMAP_SORT_SENT ? "DESC" : dir);
	} else {
		buf_append_str(&b.sql, "SELECT mm.body_id, min(mm.internaldate) AS d");
		qb_where(&b, account_id, q);
		buf_append_str(&b.sql, " GROUP BY mm.body_id");
		if (q->sort == STORE_JMAP_SORT_SIZE)
			buf_printf(&b.sql, " ORDER BY max(m.size) %s, d %s", dir, dir);
		else if (q->sort >= STORE_JMAP_SORT_SENT)
			buf_printf(&b.sql, " ORDER BY max(et.%s) %s, d DESC", sort_key(q->sort), dir);
		else
			buf_printf(&b.sql, " ORDER BY d %s", dir);
		buf_printf(&b.sql, ", mm.body_id %s", q->sort >= STORE_JMAP_SORT_SENT ? "DESC" : dir);
	}
	if (!q->has_anchor) {
		qb_int(&b, " LIMIT #", (int64_t)q->limit);
		qb_int(&b, " OFFSET #", pos);
	}
	sqlite3_stmt *s = store_prep(db, b.sql.data);
	if (!s) {
		qb_free(&b);
		goto fail;
	}
	qb_bind(&b, s);
	struct store_jmap_ref *v = NULL;
	size_t n = 0, cap = 0;
	int rc;
	int64_t idx = 0, anchor_at = -1;
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		int64_t body = sqlite3_column_int64(s, 0);
		if (q->in_mailbox && !q->collapse && n > 0 && v[n - 1].body_id == body)
			continue;
		if (q->has_anchor && body == q->anchor_body && anchor_at < 0)
			anchor_at = idx;
		idx++;
		if (n == cap) {
			cap = cap ? cap * 2 : 64;
			v = xreallocarray(v, cap, sizeof *v);
		}
		v[n++] = (struct store_jmap_ref){body};
	}
	sqlite3_finalize(s);
	qb_free(&b);
	if (rc != SQLITE_DONE) {
		free(v);
		goto fail;
	}
	store_exec(db, "COMMIT");
	store_db_put(st, db);
	if (q->has_anchor) {
		if (anchor_at < 0) {
			free(v);
			return 0;
		}
		if (total < 0 && q->calculate_total)
			total = (int64_t)n;
		int64_t start = anchor_at + q->anchor_offset;
		if (start < 0)
			start = 0;
		if (start > (int64_t)n)
			start = (int64_t)n;
		size_t take = n - (size_t)start;
		if (take > q->limit)
			take = q->limit;
		if (take)
			memmove(v, v + start, take * sizeof *v);
		n = take;
		pos = start;
	}
	*v_r = v;
	*n_r = n;
	*total_r = q->calculate_total ? total : -1;
	*position_r = pos;
	return 1;
fail:
	store_set_db_error(st, db, "Email/query", error_r);
	store_exec(db, "ROLLBACK");
	store_db_put(st, db);
	return -1;
}

int store_jmap_email(struct store *st, int64_t account_id, int64_t body_id,
		     struct store_jmap_email *e_r)
{
	memset(e_r, 0, sizeof *e_r);
	sqlite3 *db = store_db_get(st);
	if (!db)
		return -1;
	sqlite3_stmt *s = store_prep(db, "SELECT mm.mailbox_id, mm.uid, mm.flags, mm.keywords,"
				     " mm.internaldate, m.size, m.path,"
				     " (SELECT et.thread_id FROM email_threads et"
				     "  WHERE et.account_id = ?2 AND et.body_id = ?1)"
				     " FROM mailbox_messages mm"
				     " JOIN mailboxes mb ON mb.id = mm.mailbox_id"
				     " JOIN messages m ON m.id = mm.body_id"
				     " WHERE mm.body_id = ?1 AND mb.account_id = ?2"
				     " ORDER BY mm.mailbox_id, mm.uid");
	int ret = -1, rc = SQLITE_ERROR;
	size_t cap = 0;
	if (s) {
		sqlite3_bind_int64(s, 1, body_id);
		sqlite3_bind_int64(s, 2, account_id);
		while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
			int64_t mb = sqlite3_column_int64(s, 0);
			if (e_r->nmailboxes == 0) {
				e_r->body_id = body_id;
				e_r->mailbox_id = mb;
				e_r->uid = (uint32_t)sqlite3_column_int64(s, 1);
				e_r->flags = (uint32_t)sqlite3_column_int64(s, 2);
				e_r->keywords = sqlite3_column_type(s, 3) == SQLITE_NULL ? NULL :
						store_col_strdup(s, 3);
				e_r->internaldate = sqlite3_column_int64(s, 4);
				e_r->size = sqlite3_column_int64(s, 5);
				const unsigned char *p = sqlite3_column_text(s, 6);
				snprintf(e_r->path, sizeof e_r->path, "%s",
					 p ? (const char *)p : "");
				e_r->thread_id = sqlite3_column_int64(s, 7);
			} else if (e_r->mailboxes[e_r->nmailboxes - 1] == mb) {
				continue;
			}
			if (e_r->nmailboxes == cap) {
				cap = cap ? 2 * cap : 4;
				e_r->mailboxes = xreallocarray(e_r->mailboxes, cap,
							       sizeof *e_r->mailboxes);
			}
			e_r->mailboxes[e_r->nmailboxes++] = mb;
		}
		if (rc == SQLITE_DONE)
			ret = e_r->nmailboxes > 0 ? 1 : 0;
	}
	if (ret < 0) {
		log_error("store: Email/get of body %lld: %s", (long long)body_id,
			  sqlite3_errmsg(db));
		store_jmap_email_free(e_r);
	}
	sqlite3_finalize(s);
	store_db_put(st, db);
	return ret;
}

void store_jmap_email_free(struct store_jmap_email *e)
{
	free(e->keywords);
	free(e->mailboxes);
	e->keywords = NULL;
	e->mailboxes = NULL;
	e->nmailboxes = 0;
}

int store_jmap_email_rows(struct store *st, int64_t account_id, int64_t body_id,
			  struct store_jmap_row **v_r, size_t *n_r, char **error_r)
{
	*v_r = NULL;
	*n_r = 0;
	sqlite3 *db = store_db_get(st);
	if (!db) {
		store_set_error(error_r, xstrdup("cannot open the database"));
		return -1;
	}
	sqlite3_stmt *s = store_prep(db, "SELECT mm.mailbox_id, mm.uid, mm.flags, mm.keywords"
				     " FROM mailbox_messages mm"
				     " JOIN mailboxes mb ON mb.id = mm.mailbox_id"
				     " WHERE mm.body_id = ?1 AND mb.account_id = ?2"
				     " ORDER BY mm.mailbox_id, mm.uid");
	struct store_jmap_row *v = NULL;
	size_t n = 0, cap = 0;
	int rc = SQLITE_ERROR;
	if (s) {
		sqlite3_bind_int64(s, 1, body_id);
		sqlite3_bind_int64(s, 2, account_id);
		while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
			if (n == cap) {
				cap = cap ? 2 * cap : 4;
				v = xreallocarray(v, cap, sizeof *v);
			}
			v[n++] = (struct store_jmap_row){
				.mailbox_id = sqlite3_column_int64(s, 0),
				.uid = (uint32_t)sqlite3_column_int64(s, 1),
				.flags = (uint32_t)sqlite3_column_int64(s, 2),
				.keywords = sqlite3_column_type(s, 3) == SQLITE_NULL ? NULL :
					    store_col_strdup(s, 3),
			};
		}
	}
	if (rc != SQLITE_DONE) {
		store_set_db_error(st, db, "reading an email's copies", error_r);
		sqlite3_finalize(s);
		store_db_put(st, db);
		store_jmap_rows_free(v, n);
		return -1;
	}
	sqlite3_finalize(s);
	store_db_put(st, db);
	*v_r = v;
	*n_r = n;
	return 0;
}

void store_jmap_rows_free(struct store_jmap_row *v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(v[i].keywords);
	free(v);
}

/* ---- threads ---- */

int store_jmap_unthreaded(struct store *st, int64_t account_id, size_t max,
			  int64_t *after_body, struct store_jmap_unthreaded **v_r, size_t *n_r,
			  int64_t *upto_r, char **error_r)
{
	*v_r = NULL;
	*n_r = 0;
	*upto_r = -1;
	struct store_jmap_state state;
	if (store_jmap_state(st, account_id, &state, error_r) < 0)
		return -1;
	sqlite3 *db = store_db_get(st);
	if (!db) {
		store_set_error(error_r, xstrdup("cannot open the database"));
		return -1;
	}
	int64_t done = -1;
	sqlite3_stmt *s = store_prep(db, "SELECT jmap_threaded FROM accounts WHERE id = ?1");
	if (s) {
		sqlite3_bind_int64(s, 1, account_id);
		if (sqlite3_step(s) == SQLITE_ROW)
			done = sqlite3_column_int64(s, 0);
	}
	sqlite3_finalize(s);
	if (done >= state.email) {
		store_db_put(st, db);
		return 0;
	}
	bool scan = done < 0 || done < state.horizon;
	/* Both walk forward from a cursor (a body id, a log position), so a
	 * long catch-up costs one pass, not one pass a batch. */
	s = store_prep(db, scan ?
		"SELECT mm.body_id, m.path, mm.body_id FROM mailbox_messages mm"
		" JOIN mailboxes mb ON mb.id = mm.mailbox_id JOIN messages m ON m.id = mm.body_id"
		" WHERE mb.account_id = ?1 AND mm.body_id > ?3 AND NOT EXISTS (SELECT 1"
		"  FROM email_threads et WHERE et.account_id = ?1 AND et.body_id = mm.body_id)"
		" ORDER BY mm.body_id LIMIT ?2" :
		"SELECT c.obj, m.path, c.seq FROM jmap_changes c JOIN messages m ON m.id = c.obj"
		" WHERE c.account_id = ?1 AND c.kind = 1 AND c.op = 0 AND c.seq > ?3"
		" AND c.seq <= ?4 AND NOT EXISTS (SELECT 1 FROM email_threads et"
		"  WHERE et.account_id = ?1 AND et.body_id = c.obj)"
		" ORDER BY c.seq LIMIT ?2");
	int64_t last = 0;
	struct store_jmap_unthreaded *v = NULL;
	size_t n = 0;
	int rc = SQLITE_ERROR;
	if (s) {
		sqlite3_bind_int64(s, 1, account_id);
		sqlite3_bind_int64(s, 2, (int64_t)max);
		sqlite3_bind_int64(s, 3, scan ? *after_body : done);
		if (!scan)
			sqlite3_bind_int64(s, 4, state.email);
		while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
			v = xreallocarray(v, n + 1, sizeof *v);
			v[n].body_id = sqlite3_column_int64(s, 0);
			last = sqlite3_column_int64(s, 2);
			const unsigned char *p = sqlite3_column_text(s, 1);
			snprintf(v[n].path, sizeof v[n].path, "%s", p ? (const char *)p : "");
			n++;
		}
	}
	if (rc != SQLITE_DONE) {
		store_set_db_error(st, db, "listing emails to thread", error_r);
		sqlite3_finalize(s);
		store_db_put(st, db);
		free(v);
		return -1;
	}
	sqlite3_finalize(s);
	store_db_put(st, db);
	if (n < max)
		*upto_r = state.email;  /* all done up to the state read first */
	else if (scan)
		*after_body = last;
	else
		*upto_r = last;
	*v_r = v;
	*n_r = n;
	return 0;
}

int store_jmap_thread_add(struct store *st, int64_t account_id,
			  const struct store_jmap_thread_in *v, size_t n, int64_t upto,
			  char **error_r)
{
	struct store_txn *t = store_txn_begin(st, error_r);
	if (!t)
		return -1;
	sqlite3 *db = t->db;
	sqlite3_stmt *find = store_prep(db, "SELECT thread_id FROM thread_ids"
					" WHERE account_id = ?1 AND hash = ?2");
	sqlite3_stmt *put = store_prep(db, "INSERT OR IGNORE INTO thread_ids"
				       " (account_id, hash, thread_id) VALUES (?1, ?2, ?3)");
	sqlite3_stmt *mark = store_prep(db, "INSERT OR IGNORE INTO email_threads"
					" (account_id, body_id, thread_id, sent_at, from_key,"
					" subject_key) VALUES (?1, ?2, ?3, ?4, ?5, ?6)");
	sqlite3_stmt *done = store_prep(db, "UPDATE accounts SET jmap_threaded = ?2"
					" WHERE id = ?1 AND jmap_threaded < ?2");
	int rc = find && put && mark && done ? 0 : -1;
	for (size_t i = 0; i < n && rc == 0; i++) {
		int64_t thread = v[i].body_id;
		for (size_t k = 0; k < v[i].nhashes && rc == 0; k++) {
			sqlite3_reset(find);
			sqlite3_bind_int64(find, 1, account_id);
			sqlite3_bind_int64(find, 2, (int64_t)v[i].hashes[k]);
			int r = sqlite3_step(find);
			if (r == SQLITE_ROW) {
				thread = sqlite3_column_int64(find, 0);
				break;
			}
			if (r != SQLITE_DONE)
				rc = -1;
		}
		for (size_t k = 0; k < v[i].nhashes && rc == 0; k++) {
			sqlite3_reset(put);
			sqlite3_bind_int64(put, 1, account_id);
			sqlite3_bind_int64(put, 2, (int64_t)v[i].hashes[k]);
			sqlite3_bind_int64(put, 3, thread);
			rc = store_step_done(put);
		}
		if (rc == 0) {
			sqlite3_reset(mark);
			sqlite3_bind_int64(mark, 1, account_id);
			sqlite3_bind_int64(mark, 2, v[i].body_id);
			sqlite3_bind_int64(mark, 3, thread);
			sqlite3_bind_int64(mark, 4, v[i].sent_at);
			sqlite3_bind_text(mark, 5, v[i].from_key ? v[i].from_key : "", -1,
					  SQLITE_STATIC);
			sqlite3_bind_text(mark, 6, v[i].subject_key ? v[i].subject_key : "", -1,
					  SQLITE_STATIC);
			rc = store_step_done(mark);
		}
	}
	if (rc == 0 && upto >= 0) {
		sqlite3_bind_int64(done, 1, account_id);
		sqlite3_bind_int64(done, 2, upto);
		rc = store_step_done(done);
	}
	if (rc < 0)
		store_set_db_error(st, db, "threading emails", error_r);
	sqlite3_finalize(find);
	sqlite3_finalize(put);
	sqlite3_finalize(mark);
	sqlite3_finalize(done);
	if (rc < 0) {
		store_txn_rollback(t);
		return -1;
	}
	return store_txn_commit(t, error_r);
}

int store_jmap_thread_emails(struct store *st, int64_t account_id, int64_t thread_id,
			     int64_t **v_r, size_t *n_r, char **error_r)
{
	*v_r = NULL;
	*n_r = 0;
	sqlite3 *db = store_db_get(st);
	if (!db) {
		store_set_error(error_r, xstrdup("cannot open the database"));
		return -1;
	}
	sqlite3_stmt *s = store_prep(db, "SELECT et.body_id,"
		" (SELECT min(mm.internaldate) FROM mailbox_messages mm"
		"  JOIN mailboxes mb ON mb.id = mm.mailbox_id"
		"  WHERE mm.body_id = et.body_id AND mb.account_id = ?1) AS d"
		" FROM email_threads et WHERE et.account_id = ?1 AND et.thread_id = ?2"
		" AND d IS NOT NULL ORDER BY d, et.body_id LIMIT 10000");
	int64_t *v = NULL;
	size_t n = 0;
	int rc = SQLITE_ERROR;
	if (s) {
		sqlite3_bind_int64(s, 1, account_id);
		sqlite3_bind_int64(s, 2, thread_id);
		while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
			v = xreallocarray(v, n + 1, sizeof *v);
			v[n++] = sqlite3_column_int64(s, 0);
		}
	}
	if (rc != SQLITE_DONE) {
		store_set_db_error(st, db, "reading a thread", error_r);
		sqlite3_finalize(s);
		store_db_put(st, db);
		free(v);
		return -1;
	}
	sqlite3_finalize(s);
	store_db_put(st, db);
	*v_r = v;
	*n_r = n;
	return 0;
}

int store_jmap_thread_of(struct store *st, int64_t account_id, int64_t body_id,
			 int64_t *thread_r)
{
	sqlite3 *db = store_db_get(st);
	if (!db)
		return -1;
	sqlite3_stmt *s = store_prep(db, "SELECT thread_id FROM email_threads"
				     " WHERE account_id = ?1 AND body_id = ?2");
	int ret = -1;
	if (s) {
		sqlite3_bind_int64(s, 1, account_id);
		sqlite3_bind_int64(s, 2, body_id);
		int rc = sqlite3_step(s);
		if (rc == SQLITE_ROW) {
			*thread_r = sqlite3_column_int64(s, 0);
			ret = 1;
		} else if (rc == SQLITE_DONE) {
			ret = 0;
		}
	}
	sqlite3_finalize(s);
	store_db_put(st, db);
	return ret;
}

int store_jmap_accounts_unthreaded(struct store *st, int64_t **v_r, size_t *n_r,
				   char **error_r)
{
	*v_r = NULL;
	*n_r = 0;
	sqlite3 *db = store_db_get(st);
	if (!db) {
		store_set_error(error_r, xstrdup("cannot open the database"));
		return -1;
	}
	sqlite3_stmt *s = store_prep(db, "SELECT id FROM accounts WHERE jmap_threaded < jmap_email"
				     " OR jmap_threaded < 0");
	int64_t *v = NULL;
	size_t n = 0;
	int rc = SQLITE_ERROR;
	if (s) {
		while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
			v = xreallocarray(v, n + 1, sizeof *v);
			v[n++] = sqlite3_column_int64(s, 0);
		}
	}
	if (rc != SQLITE_DONE) {
		store_set_db_error(st, db, "listing accounts to thread", error_r);
		sqlite3_finalize(s);
		store_db_put(st, db);
		free(v);
		return -1;
	}
	sqlite3_finalize(s);
	store_db_put(st, db);
	*v_r = v;
	*n_r = n;
	return 0;
}
