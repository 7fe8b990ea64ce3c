/* store_mailbox.c - IMAP mailbox operations: create, delete, rename, list,
 * subscriptions.  See store.h. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/buf.h"
#include "core/log.h"
#include "core/util.h"
#include "mail/mutf7.h"
#include "store/store.h"
#include "store/store_private.h"

/* Inferiors of ?2: names in [?2 || '/', ?2 || '0') ('0' follows '/'). */
#define INFERIOR_OF_2 "(name >= ?2 || '/' AND name < ?2 || '0')"

static const char *const special_uses[] = {
	"\\All", "\\Archive", "\\Drafts", "\\Flagged", "\\Junk", "\\Sent", "\\Trash",
};

/* Check and normalise name into norm (initialised here; caller frees). */
static int norm_name(const char *name, struct buf *norm, char **error_r)
{
	const char *e = NULL;

	buf_init(norm, MUTF7_NAME_MAX + 1);
	if (mutf7_mailbox_check(name, strlen(name), norm, &e) < 0) {
		store_set_error(error_r, xasprintf("invalid mailbox name: %s", e));
		return STORE_MBOX_EBADNAME;
	}
	return 0;
}

static int db_fail(struct store_txn *t, const char *what, char **error_r)
{
	store_set_db_error(t->st, t->db, what, error_r);
	return STORE_MBOX_EFAIL;
}

/* 1 found (*id_r, *noselect_r), 0 not, -1 error. */
static int lookup(sqlite3 *db, int64_t account_id, const char *name, int64_t *id_r,
		  bool *noselect_r)
{
	sqlite3_stmt *s = store_prep(db, "SELECT id, noselect FROM mailboxes "
			       "WHERE account_id = ?1 AND name = ?2");
	int rc, ret = -1;

	if (!s)
		return -1;
	sqlite3_bind_int64(s, 1, account_id);
	store_bind_text(s, 2, name);
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW) {
		if (id_r)
			*id_r = sqlite3_column_int64(s, 0);
		if (noselect_r)
			*noselect_r = sqlite3_column_int(s, 1) != 0;
		ret = 1;
	} else if (rc == SQLITE_DONE) {
		ret = 0;
	}
	sqlite3_finalize(s);
	return ret;
}

/* 1 when name has inferiors, 0 not, -1 error. */
static int has_children(sqlite3 *db, int64_t account_id, const char *name)
{
	sqlite3_stmt *s = store_prep(db, "SELECT 1 FROM mailboxes WHERE account_id = ?1 AND "
			       INFERIOR_OF_2 " LIMIT 1");
	int rc;

	if (!s)
		return -1;
	sqlite3_bind_int64(s, 1, account_id);
	store_bind_text(s, 2, name);
	rc = sqlite3_step(s);
	sqlite3_finalize(s);
	return rc == SQLITE_ROW ? 1 : rc == SQLITE_DONE ? 0 : -1;
}

static int64_t count_mailboxes(sqlite3 *db, int64_t account_id)
{
	sqlite3_stmt *s = store_prep(db, "SELECT count(*) FROM mailboxes WHERE account_id = ?1");
	int64_t n = -1;

	if (!s)
		return -1;
	sqlite3_bind_int64(s, 1, account_id);
	if (sqlite3_step(s) == SQLITE_ROW)
		n = sqlite3_column_int64(s, 0);
	sqlite3_finalize(s);
	return n;
}

static int insert_mailbox(sqlite3 *db, int64_t account_id, const char *name,
			  const char *special_use, int64_t *id_r)
{
	sqlite3_stmt *s;
	uint32_t uv;
	int rc;

	if (store_next_uidvalidity(db, &uv) < 0)
		return -1;
	s = store_prep(db, "INSERT INTO mailboxes (account_id, name, special_use, uidvalidity) "
		 "VALUES (?1, ?2, ?3, ?4)");
	if (!s)
		return -1;
	sqlite3_bind_int64(s, 1, account_id);
	store_bind_text(s, 2, name);
	store_bind_text(s, 3, special_use);
	sqlite3_bind_int64(s, 4, uv);
	rc = store_step_done(s);
	sqlite3_finalize(s);
	if (rc < 0)
		return -1;
	if (id_r)
		*id_r = sqlite3_last_insert_rowid(db);
	return 0;
}

/* Create the missing superiors of name (all but its last component) and,
 * when self, name itself; *id_r gets name's id.  Checks the limit first. */
static int create_path(struct store_txn *t, int64_t account_id, const char *name,
		       bool self, const char *special_use, int64_t *id_r, char **error_r)
{
	size_t len = strlen(name), missing = 0;
	char *prefix = xstrdup(name);
	int64_t have;
	int ret = STORE_MBOX_EFAIL;

	/* Pass 0 counts what is missing, pass 1 creates it. */
	for (int pass = 0; pass < 2; pass++) {
		for (size_t i = 1; i <= len; i++) {
			int rc;

			if (i < len && name[i] != MUTF7_SEPARATOR)
				continue;
			if (i == len && !self)
				break;
			memcpy(prefix, name, i);
			prefix[i] = '\0';
			rc = lookup(t->db, account_id, prefix, NULL, NULL);
			if (rc < 0)
				goto dberr;
			if (rc > 0)
				continue;
			if (pass == 0) {
				missing++;
				continue;
			}
			if (insert_mailbox(t->db, account_id, prefix, i == len ? special_use : NULL,
					   i == len ? id_r : NULL) < 0)
				goto dberr;
		}
		if (pass == 0) {
			have = count_mailboxes(t->db, account_id);
			if (have < 0)
				goto dberr;
			if (have + (int64_t)missing > STORE_MAILBOX_MAX) {
				store_set_error(error_r, xasprintf("mailbox %s: too many mailboxes "
							     "(at most %d)", name,
							     STORE_MAILBOX_MAX));
				ret = STORE_MBOX_ELIMIT;
				goto out;
			}
		}
	}
	ret = 0;
	goto out;
dberr:
	ret = db_fail(t, "creating mailbox", error_r);
out:
	free(prefix);
	return ret;
}

int store_mailbox_create(struct store *st, int64_t account_id, const char *name,
			 const char *special_use, int64_t *id_r, char **error_r)
{
	struct buf norm;
	struct store_txn *t = NULL;
	int64_t id = 0;
	bool noselect = false;
	int rc, ret;

	if (special_use) {
		bool known = false;

		for (size_t i = 0; i < ARRAY_LEN(special_uses); i++)
			known = known || strcmp(special_use, special_uses[i]) == 0;
		if (!known) {
			store_set_error(error_r, xasprintf("unknown special-use attribute"));
			return STORE_MBOX_EUSEATTR;
		}
	}
	ret = norm_name(name, &norm, error_r);
	if (ret < 0)
		goto out;
	t = store_txn_begin(st, error_r);
	if (!t) {
		ret = STORE_MBOX_EFAIL;
		goto out;
	}
	rc = lookup(t->db, account_id, norm.data, &id, &noselect);
	if (rc < 0) {
		ret = db_fail(t, "creating mailbox", error_r);
		goto out;
	}
	if (rc > 0 && !noselect) {
		store_set_error(error_r, xasprintf("mailbox %s: already exists", norm.data));
		ret = STORE_MBOX_EEXISTS;
		goto out;
	}
	if (rc > 0) {
		/* A \Noselect placeholder: make it a mailbox again. */
		sqlite3_stmt *s = store_prep(t->db, "UPDATE mailboxes SET noselect = 0, "
				       "special_use = ?2 WHERE id = ?1");

		rc = s ? 0 : -1;
		if (s) {
			sqlite3_bind_int64(s, 1, id);
			store_bind_text(s, 2, special_use);
			rc = store_step_done(s);
		}
		sqlite3_finalize(s);
		if (rc < 0) {
			ret = db_fail(t, "creating mailbox", error_r);
			goto out;
		}
	} else {
		ret = create_path(t, account_id, norm.data, true, special_use, &id, error_r);
		if (ret < 0)
			goto out;
	}
	ret = store_txn_commit(t, error_r) < 0 ? STORE_MBOX_EFAIL : 0;
	t = NULL;
	if (ret == 0 && id_r)
		*id_r = id;
out:
	store_txn_rollback(t);
	buf_free(&norm);
	return ret;
}

/* Expunge every message of a mailbox inside t. */
static int expunge_all(struct store_txn *t, int64_t mailbox_id, char ***unlink_r,
		       size_t *nunlink_r, char **error_r)
{
	sqlite3_stmt *s = store_prep(t->db, "SELECT uid FROM mailbox_messages "
			       "WHERE mailbox_id = ?1 ORDER BY uid");
	uint32_t *uids = NULL;
	size_t n = 0;
	int rc = SQLITE_ERROR, ret;

	*unlink_r = NULL;
	*nunlink_r = 0;
	if (s) {
		sqlite3_bind_int64(s, 1, mailbox_id);
		while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
			uids = xreallocarray(uids, n + 1, sizeof(*uids));
			uids[n++] = (uint32_t)sqlite3_column_int64(s, 0);
		}
	}
	sqlite3_finalize(s);
	if (rc != SQLITE_DONE) {
		free(uids);
		return db_fail(t, "deleting mailbox", error_r);
	}
	ret = n ? store_txn_expunge(t, mailbox_id, uids, n, unlink_r, nunlink_r, error_r) : 0;
	free(uids);
	return ret < 0 ? STORE_MBOX_EFAIL : 0;
}

int store_mailbox_delete(struct store *st, int64_t account_id, const char *name,
			 char **error_r)
{
	struct buf norm;
	struct store_txn *t = NULL;
	char **paths = NULL;
	size_t npaths = 0;
	int64_t id = 0;
	bool noselect = false;
	int rc, children, ret;
	sqlite3_stmt *s;

	ret = norm_name(name, &norm, error_r);
	if (ret < 0)
		goto out;
	if (strcmp(norm.data, STORE_INBOX) == 0) {
		store_set_error(error_r, xasprintf("INBOX cannot be deleted"));
		ret = STORE_MBOX_ECANNOT;
		goto out;
	}
	t = store_txn_begin(st, error_r);
	if (!t) {
		ret = STORE_MBOX_EFAIL;
		goto out;
	}
	rc = lookup(t->db, account_id, norm.data, &id, &noselect);
	children = rc > 0 ? has_children(t->db, account_id, norm.data) : 0;
	if (rc < 0 || children < 0) {
		ret = db_fail(t, "deleting mailbox", error_r);
		goto out;
	}
	if (rc == 0) {
		store_set_error(error_r, xasprintf("mailbox %s: no such mailbox", norm.data));
		ret = STORE_MBOX_ENOENT;
		goto out;
	}
	if (children && noselect) {
		store_set_error(error_r, xasprintf("mailbox %s: has inferiors and is already "
					     "\\Noselect", norm.data));
		ret = STORE_MBOX_ECANNOT;
		goto out;
	}
	ret = expunge_all(t, id, &paths, &npaths, error_r);
	if (ret < 0)
		goto out;
	s = store_prep(t->db, children ? "UPDATE mailboxes SET noselect = 1, special_use = NULL "
		 "WHERE id = ?1" : "DELETE FROM mailboxes WHERE id = ?1");
	rc = s ? 0 : -1;
	if (s) {
		sqlite3_bind_int64(s, 1, id);
		rc = store_step_done(s);
	}
	sqlite3_finalize(s);
	if (rc < 0) {
		ret = db_fail(t, "deleting mailbox", error_r);
		goto out;
	}
	ret = store_txn_commit(t, error_r) < 0 ? STORE_MBOX_EFAIL : 0;
	t = NULL;
	if (ret == 0)
		store_unlink_bodies(st, paths, npaths);
out:
	store_txn_rollback(t);
	for (size_t i = 0; i < npaths; i++)
		free(paths[i]);
	free(paths);
	buf_free(&norm);
	return ret;
}

/* RFC 3501 6.3.5: move every INBOX message into the new mailbox newname. */
static int rename_inbox(struct store_txn *t, int64_t account_id, int64_t inbox_id,
			const char *newname, char **error_r)
{
	static const char *const sql[] = {
		("INSERT INTO mailbox_messages (mailbox_id, uid, body_id, flags, modseq, "
		 "internaldate, keywords) SELECT ?2, row_number() OVER (ORDER BY uid), body_id, "
		 "flags, 1, internaldate, keywords FROM mailbox_messages WHERE mailbox_id = ?1"),
		("UPDATE mailboxes SET uidnext = 1 + (SELECT count(*) FROM mailbox_messages "
		 "WHERE mailbox_id = ?2) WHERE id = ?2"),
		("INSERT OR REPLACE INTO expunged (mailbox_id, uid, modseq) SELECT ?1, uid, "
		 "(SELECT highestmodseq + 1 FROM mailboxes WHERE id = ?1) "
		 "FROM mailbox_messages WHERE mailbox_id = ?1"),
		"DELETE FROM mailbox_messages WHERE mailbox_id = ?1",
		"UPDATE mailboxes SET highestmodseq = highestmodseq + 1 WHERE id = ?1",
	};
	int64_t new_id = 0;
	int ret;

	ret = create_path(t, account_id, newname, true, NULL, &new_id, error_r);
	if (ret < 0)
		return ret;
	for (size_t i = 0; i < ARRAY_LEN(sql); i++) {
		sqlite3_stmt *s = store_prep(t->db, sql[i]);
		int rc = s ? 0 : -1;

		if (s) {
			sqlite3_bind_int64(s, 1, inbox_id);
			sqlite3_bind_int64(s, 2, new_id);
			rc = store_step_done(s);
		}
		sqlite3_finalize(s);
		if (rc < 0)
			return db_fail(t, "renaming INBOX", error_r);
	}
	return 0;
}

struct renamed {
	int64_t id;
	char *name;
};

/* Rename oldname and its inferiors to newname inside t. */
static int rename_tree(struct store_txn *t, int64_t account_id, const char *oldname,
		       const char *newname, char **error_r)
{
	sqlite3_stmt *s = store_prep(t->db, "SELECT id, name FROM mailboxes WHERE "
			       "account_id = ?1 AND (name = ?2 OR " INFERIOR_OF_2 ")");
	struct renamed *v = NULL;
	size_t n = 0, oldlen = strlen(oldname);
	int rc = SQLITE_ERROR, ret = STORE_MBOX_EFAIL;

	if (s) {
		sqlite3_bind_int64(s, 1, account_id);
		store_bind_text(s, 2, oldname);
		while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
			const char *name = (const char *)sqlite3_column_text(s, 1);

			v = xreallocarray(v, n + 1, sizeof(*v));
			v[n].id = sqlite3_column_int64(s, 0);
			v[n++].name = xasprintf("%s%s", newname, name + oldlen);
		}
	}
	sqlite3_finalize(s);
	s = NULL;
	if (rc != SQLITE_DONE)
		goto dberr;
	/* Every new name must be valid and free before anything moves. */
	for (size_t i = 0; i < n; i++) {
		struct buf b;
		const char *e = NULL;

		buf_init(&b, MUTF7_NAME_MAX + 1);
		rc = mutf7_mailbox_check(v[i].name, strlen(v[i].name), &b, &e);
		buf_free(&b);
		if (rc < 0) {
			store_set_error(error_r, xasprintf("mailbox %s: renaming %s would make "
						     "an invalid name: %s", oldname,
						     v[i].name, e));
			ret = STORE_MBOX_ELIMIT;
			goto out;
		}
		rc = lookup(t->db, account_id, v[i].name, NULL, NULL);
		if (rc < 0)
			goto dberr;
		if (rc > 0) {
			store_set_error(error_r, xasprintf("mailbox %s: already exists",
						     v[i].name));
			ret = STORE_MBOX_EEXISTS;
			goto out;
		}
	}
	ret = create_path(t, account_id, newname, false, NULL, NULL, error_r);
	if (ret < 0)
		goto out;
	s = store_prep(t->db, "UPDATE mailboxes SET name = ?2 WHERE id = ?1");
	if (!s)
		goto dberr;
	for (size_t i = 0; i < n; i++) {
		sqlite3_reset(s);
		sqlite3_bind_int64(s, 1, v[i].id);
		store_bind_text(s, 2, v[i].name);
		if (store_step_done(s) < 0)
			goto dberr;
	}
	ret = 0;
	goto out;
dberr:
	ret = db_fail(t, "renaming mailbox", error_r);
out:
	sqlite3_finalize(s);
	for (size_t i = 0; i < n; i++)
		free(v[i].name);
	free(v);
	return ret;
}

int store_mailbox_rename(struct store *st, int64_t account_id, const char *oldname,
			 const char *newname, char **error_r)
{
	struct buf o, nw;
	struct store_txn *t = NULL;
	int64_t id = 0;
	size_t olen;
	int rc, ret;

	buf_init(&nw, 1);
	ret = norm_name(oldname, &o, error_r);
	if (ret == 0) {
		buf_free(&nw);
		ret = norm_name(newname, &nw, error_r);
	}
	if (ret < 0)
		goto out;
	olen = o.len;
	if (strncmp(nw.data, o.data, olen) == 0 && nw.data[olen] == MUTF7_SEPARATOR &&
	    strcmp(o.data, STORE_INBOX) != 0) {
		store_set_error(error_r, xasprintf("mailbox %s: cannot be renamed under itself",
					     o.data));
		ret = STORE_MBOX_ECANNOT;
		goto out;
	}
	t = store_txn_begin(st, error_r);
	if (!t) {
		ret = STORE_MBOX_EFAIL;
		goto out;
	}
	rc = lookup(t->db, account_id, o.data, &id, NULL);
	if (rc < 0) {
		ret = db_fail(t, "renaming mailbox", error_r);
		goto out;
	}
	if (rc == 0) {
		store_set_error(error_r, xasprintf("mailbox %s: no such mailbox", o.data));
		ret = STORE_MBOX_ENOENT;
		goto out;
	}
	rc = lookup(t->db, account_id, nw.data, NULL, NULL);
	if (rc < 0) {
		ret = db_fail(t, "renaming mailbox", error_r);
		goto out;
	}
	if (rc > 0) {
		store_set_error(error_r, xasprintf("mailbox %s: already exists", nw.data));
		ret = STORE_MBOX_EEXISTS;
		goto out;
	}
	if (strcmp(o.data, STORE_INBOX) == 0)
		ret = rename_inbox(t, account_id, id, nw.data, error_r);
	else
		ret = rename_tree(t, account_id, o.data, nw.data, error_r);
	if (ret < 0)
		goto out;
	ret = store_txn_commit(t, error_r) < 0 ? STORE_MBOX_EFAIL : 0;
	t = NULL;
out:
	store_txn_rollback(t);
	buf_free(&o);
	buf_free(&nw);
	return ret;
}

int store_mailbox_list(struct store *st, int64_t account_id,
		       void (*cb)(const char *name, const char *special_use, unsigned flags,
				  void *arg),
		       void *arg, char **error_r)
{
	sqlite3 *db = store_db_get(st);
	sqlite3_stmt *s;
	int rc = SQLITE_ERROR;

	if (!db) {
		store_set_error(error_r, xasprintf("store %s: cannot open database", st->db_path));
		return STORE_MBOX_EFAIL;
	}
	s = store_prep(db, "SELECT mb.name, mb.special_use, mb.noselect, "
		 "EXISTS (SELECT 1 FROM mailboxes c WHERE c.account_id = mb.account_id AND "
		 "  c.name >= mb.name || '/' AND c.name < mb.name || '0'), "
		 "EXISTS (SELECT 1 FROM subscriptions su WHERE su.account_id = mb.account_id "
		 "  AND su.name = mb.name) "
		 "FROM mailboxes mb WHERE mb.account_id = ?1 ORDER BY mb.name");
	if (s) {
		sqlite3_bind_int64(s, 1, account_id);
		while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
			unsigned flags = 0;

			if (sqlite3_column_int(s, 2))
				flags |= STORE_MBOX_NOSELECT;
			if (sqlite3_column_int(s, 3))
				flags |= STORE_MBOX_HASCHILDREN;
			if (sqlite3_column_int(s, 4))
				flags |= STORE_MBOX_SUBSCRIBED;
			cb((const char *)sqlite3_column_text(s, 0),
			   (const char *)sqlite3_column_text(s, 1), flags, arg);
		}
	}
	if (rc != SQLITE_DONE)
		store_set_db_error(st, db, "listing mailboxes", error_r);
	sqlite3_finalize(s);
	store_db_put(st, db);
	return rc == SQLITE_DONE ? 0 : STORE_MBOX_EFAIL;
}

static int subscription_op(struct store *st, int64_t account_id, const char *name,
			   bool subscribe, char **error_r)
{
	struct buf norm;
	struct store_txn *t = NULL;
	sqlite3_stmt *s = NULL;
	int ret;

	ret = norm_name(name, &norm, error_r);
	if (ret < 0)
		goto out;
	t = store_txn_begin(st, error_r);
	if (!t) {
		ret = STORE_MBOX_EFAIL;
		goto out;
	}
	s = store_prep(t->db, subscribe ?
		       "INSERT OR IGNORE INTO subscriptions (account_id, name) VALUES (?1, ?2)" :
		       "DELETE FROM subscriptions WHERE account_id = ?1 AND name = ?2");
	if (!s) {
		ret = db_fail(t, "updating subscriptions", error_r);
		goto out;
	}
	sqlite3_bind_int64(s, 1, account_id);
	store_bind_text(s, 2, norm.data);
	if (store_step_done(s) < 0) {
		ret = db_fail(t, "updating subscriptions", error_r);
		goto out;
	}
	if (!subscribe && sqlite3_changes(t->db) == 0) {
		store_set_error(error_r, xasprintf("mailbox %s: not subscribed", norm.data));
		ret = STORE_MBOX_ENOENT;
		goto out;
	}
	sqlite3_finalize(s);
	s = NULL;
	ret = store_txn_commit(t, error_r) < 0 ? STORE_MBOX_EFAIL : 0;
	t = NULL;
out:
	sqlite3_finalize(s);
	store_txn_rollback(t);
	buf_free(&norm);
	return ret;
}

int store_mailbox_subscribe(struct store *st, int64_t account_id, const char *name,
			    char **error_r)
{
	return subscription_op(st, account_id, name, true, error_r);
}

int store_mailbox_unsubscribe(struct store *st, int64_t account_id, const char *name,
			      char **error_r)
{
	return subscription_op(st, account_id, name, false, error_r);
}

int store_mailbox_subscriptions(struct store *st, int64_t account_id,
				void (*cb)(const char *name, void *arg), void *arg,
				char **error_r)
{
	sqlite3 *db = store_db_get(st);
	sqlite3_stmt *s;
	int rc = SQLITE_ERROR;

	if (!db) {
		store_set_error(error_r, xasprintf("store %s: cannot open database", st->db_path));
		return STORE_MBOX_EFAIL;
	}
	s = store_prep(db, "SELECT name FROM subscriptions WHERE account_id = ?1 ORDER BY name");
	if (s) {
		sqlite3_bind_int64(s, 1, account_id);
		while ((rc = sqlite3_step(s)) == SQLITE_ROW)
			cb((const char *)sqlite3_column_text(s, 0), arg);
	}
	if (rc != SQLITE_DONE)
		store_set_db_error(st, db, "listing subscriptions", error_r);
	sqlite3_finalize(s);
	store_db_put(st, db);
	return rc == SQLITE_DONE ? 0 : STORE_MBOX_EFAIL;
}
