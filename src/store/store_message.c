/* store_message.c - mailboxes, messages, write transactions, the trash and
 * crash recovery.  See store.h. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/log.h"
#include "core/util.h"
#include "store/store.h"
#include "store/store_private.h"

/* ---- mailboxes ---- */

#define MAILBOX_COLS \
	"SELECT mb.id, mb.account_id, mb.name, mb.uidvalidity, mb.uidnext, mb.highestmodseq, " \
	"(SELECT count(*) FROM mailbox_messages mm WHERE mm.mailbox_id = mb.id), " \
	"(SELECT coalesce(sum(m.size), 0) FROM mailbox_messages mm " \
	"  JOIN messages m ON m.id = mm.body_id WHERE mm.mailbox_id = mb.id), mb.noselect " \
	"FROM mailboxes mb "

static int mailbox_query(struct store *st, sqlite3_stmt *s, sqlite3 *db,
			 struct mailbox_info *mb_r)
{
	int rc = sqlite3_step(s);

	if (rc == SQLITE_ROW) {
		mb_r->id = sqlite3_column_int64(s, 0);
		mb_r->account_id = sqlite3_column_int64(s, 1);
		mb_r->name = store_col_strdup(s, 2);
		mb_r->uidvalidity = (uint32_t)sqlite3_column_int64(s, 3);
		mb_r->uidnext = (uint32_t)sqlite3_column_int64(s, 4);
		mb_r->highestmodseq = (uint64_t)sqlite3_column_int64(s, 5);
		mb_r->messages = sqlite3_column_int64(s, 6);
		mb_r->size = sqlite3_column_int64(s, 7);
		mb_r->noselect = sqlite3_column_int(s, 8) != 0;
		return 1;
	}
	if (rc == SQLITE_DONE)
		return 0;
	log_error("store %s: reading mailbox: %s", st->db_path, sqlite3_errmsg(db));
	return -1;
}

int store_mailbox_find(struct store *st, int64_t account_id, const char *name,
		       struct mailbox_info *mb_r)
{
	sqlite3 *db;
	sqlite3_stmt *s;
	int ret = -1;

	memset(mb_r, 0, sizeof(*mb_r));
	db = store_db_get(st);
	if (!db)
		return -1;
	s = store_prep(db, MAILBOX_COLS "WHERE mb.account_id = ?1 AND mb.name = ?2");
	if (s) {
		sqlite3_bind_int64(s, 1, account_id);
		/* INBOX is case-insensitive (RFC 3501 sect. 5.1); other names are not. */
		store_bind_text(s, 2, str_ieq(name, STORE_INBOX) ? STORE_INBOX : name);
		ret = mailbox_query(st, s, db, mb_r);
	}
	sqlite3_finalize(s);
	store_db_put(st, db);
	return ret;
}

int store_mailbox_get(struct store *st, int64_t mailbox_id, struct mailbox_info *mb_r)
{
	sqlite3 *db;
	sqlite3_stmt *s;
	int ret = -1;

	memset(mb_r, 0, sizeof(*mb_r));
	db = store_db_get(st);
	if (!db)
		return -1;
	s = store_prep(db, MAILBOX_COLS "WHERE mb.id = ?1");
	if (s) {
		sqlite3_bind_int64(s, 1, mailbox_id);
		ret = mailbox_query(st, s, db, mb_r);
	}
	sqlite3_finalize(s);
	store_db_put(st, db);
	return ret;
}

void mailbox_info_free(struct mailbox_info *mb)
{
	if (mb)
		FREE(mb->name);
}

int store_mailbox_messages(struct store *st, int64_t mailbox_id, struct msg_entry **arr_r,
			   size_t *n_r)
{
	sqlite3 *db;
	sqlite3_stmt *s;
	struct msg_entry *arr = NULL;
	size_t n = 0, cap = 0;
	int rc = SQLITE_ERROR;

	*arr_r = NULL;
	*n_r = 0;
	db = store_db_get(st);
	if (!db)
		return -1;
	s = store_prep(db, "SELECT mm.uid, mm.flags, mm.modseq, m.size, mm.internaldate, m.id, m.path "
		 "FROM mailbox_messages mm JOIN messages m ON m.id = mm.body_id "
		 "WHERE mm.mailbox_id = ?1 ORDER BY mm.uid");
	if (s) {
		sqlite3_bind_int64(s, 1, mailbox_id);
		while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
			struct msg_entry *e;
			const char *path = (const char *)sqlite3_column_text(s, 6);

			if (n == cap) {
				cap = cap ? cap * 2 : 16;
				arr = xreallocarray(arr, cap, sizeof(*arr));
			}
			e = &arr[n++];
			memset(e, 0, sizeof(*e));
			e->uid = (uint32_t)sqlite3_column_int64(s, 0);
			e->flags = (uint32_t)sqlite3_column_int64(s, 1);
			e->modseq = (uint64_t)sqlite3_column_int64(s, 2);
			e->size = sqlite3_column_int64(s, 3);
			e->internaldate = sqlite3_column_int64(s, 4);
			e->body_id = sqlite3_column_int64(s, 5);
			if (path)
				snprintf(e->path, sizeof(e->path), "%s", path);
		}
	}
	if (rc != SQLITE_DONE)
		log_error("store %s: listing mailbox %lld: %s", st->db_path,
			  (long long)mailbox_id, sqlite3_errmsg(db));
	sqlite3_finalize(s);
	store_db_put(st, db);
	if (rc != SQLITE_DONE) {
		free(arr);
		return -1;
	}
	*arr_r = arr;
	*n_r = n;
	return 0;
}

/* ---- transactions ---- */

struct store_txn *store_txn_begin(struct store *st, char **error_r)
{
	struct store_txn *t;
	sqlite3 *db = store_db_get(st);

	if (!db) {
		store_set_error(error_r, xasprintf("store %s: cannot open database", st->db_path));
		return NULL;
	}
	if (store_exec(db, "BEGIN IMMEDIATE") < 0) {
		store_set_db_error(st, db, "beginning transaction", error_r);
		store_db_put(st, db);
		return NULL;
	}
	t = xcalloc(1, sizeof(*t));
	t->st = st;
	t->db = db;
	return t;
}

/* Commit and free t.  On failure the transaction is rolled back and t is
 * freed as well. */
int store_txn_commit(struct store_txn *t, char **error_r)
{
	int ret = 0;

	if (store_exec(t->db, "COMMIT") < 0) {
		store_set_db_error(t->st, t->db, "committing", error_r);
		(void)store_exec(t->db, "ROLLBACK");
		ret = -1;
	}
	store_db_put(t->st, t->db);
	free(t);
	return ret;
}

void store_txn_rollback(struct store_txn *t)
{
	if (!t)
		return;
	(void)store_exec(t->db, "ROLLBACK");
	store_db_put(t->st, t->db);
	free(t);
}

int store_txn_savepoint(struct store_txn *t)
{
	return store_exec(t->db, "SAVEPOINT op");
}

int store_txn_release(struct store_txn *t)
{
	return store_exec(t->db, "RELEASE op");
}

void store_txn_rollback_to(struct store_txn *t)
{
	/* ROLLBACK TO keeps the savepoint open: release it too. */
	(void)store_exec(t->db, "ROLLBACK TO op");
	(void)store_exec(t->db, "RELEASE op");
}

int store_txn_add_body(struct store_txn *t, const char *relpath, int64_t size,
		       int64_t *body_id_r, char **error_r)
{
	sqlite3_stmt *s;
	int ret = -1;

	if (strlen(relpath) >= sizeof(((struct msg_entry *)0)->path)) {
		store_set_error(error_r, xasprintf("store: body path %s too long", relpath));
		return -1;
	}
	s = store_prep(t->db, "INSERT INTO messages (path, size, refs) VALUES (?1, ?2, 0)");
	if (s) {
		store_bind_text(s, 1, relpath);
		sqlite3_bind_int64(s, 2, size);
		if (store_step_done(s) == 0) {
			*body_id_r = sqlite3_last_insert_rowid(t->db);
			ret = 0;
		}
	}
	if (ret < 0)
		store_set_db_error(t->st, t->db, "adding message body", error_r);
	sqlite3_finalize(s);
	return ret;
}

int store_txn_append(struct store_txn *t, int64_t mailbox_id, int64_t body_id, uint32_t flags,
		     int64_t internaldate, uint32_t *uid_r, char **error_r)
{
	return store_txn_append_kw(t, mailbox_id, body_id, flags, NULL, internaldate, uid_r,
				   error_r);
}

int store_txn_append_kw(struct store_txn *t, int64_t mailbox_id, int64_t body_id, uint32_t flags,
			const char *keywords, int64_t internaldate, uint32_t *uid_r,
			char **error_r)
{
	sqlite3_stmt *s;
	int64_t uid = 0, modseq = 0;
	int rc;

	s = store_prep(t->db, "UPDATE mailboxes SET uidnext = uidnext + 1, "
		 "highestmodseq = highestmodseq + 1 WHERE id = ?1 "
		 "RETURNING uidnext - 1, highestmodseq");
	if (!s)
		goto dberr;
	sqlite3_bind_int64(s, 1, mailbox_id);
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW) {
		uid = sqlite3_column_int64(s, 0);
		modseq = sqlite3_column_int64(s, 1);
	}
	if (sqlite3_finalize(s) != SQLITE_OK)
		goto dberr;
	if (rc != SQLITE_ROW) {
		store_set_error(error_r, xasprintf("store: mailbox %lld: no such mailbox",
					     (long long)mailbox_id));
		return -1;
	}
	if (uid <= 0 || uid >= UINT32_MAX) {
		store_set_error(error_r, xasprintf("store: mailbox %lld: UIDs exhausted",
					     (long long)mailbox_id));
		return -1;
	}
	s = store_prep(t->db, "INSERT INTO mailbox_messages "
		 "(mailbox_id, uid, body_id, flags, modseq, internaldate, keywords) "
		 "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)");
	if (!s)
		goto dberr;
	sqlite3_bind_int64(s, 1, mailbox_id);
	sqlite3_bind_int64(s, 2, uid);
	sqlite3_bind_int64(s, 3, body_id);
	sqlite3_bind_int64(s, 4, flags);
	sqlite3_bind_int64(s, 5, modseq);
	sqlite3_bind_int64(s, 6, internaldate);
	store_bind_text(s, 7, keywords && *keywords ? keywords : NULL);
	rc = store_step_done(s);
	sqlite3_finalize(s);
	if (rc < 0)
		goto dberr;
	s = store_prep(t->db, "UPDATE messages SET refs = refs + 1 WHERE id = ?1");
	if (!s)
		goto dberr;
	sqlite3_bind_int64(s, 1, body_id);
	rc = store_step_done(s);
	sqlite3_finalize(s);
	if (rc < 0)
		goto dberr;
	*uid_r = (uint32_t)uid;
	return 0;
dberr:
	store_set_db_error(t->st, t->db, "appending message", error_r);
	return -1;
}

/* The MODSEQ the next change of mailbox_id gets (not yet stored). */
int store_next_modseq(struct store_txn *t, int64_t mailbox_id, uint64_t *modseq_r, char **error_r)
{
	sqlite3_stmt *s = store_prep(t->db, "SELECT highestmodseq + 1 FROM mailboxes WHERE id = ?1");
	int rc;

	if (!s) {
		store_set_db_error(t->st, t->db, "reading MODSEQ", error_r);
		return -1;
	}
	sqlite3_bind_int64(s, 1, mailbox_id);
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW)
		*modseq_r = (uint64_t)sqlite3_column_int64(s, 0);
	sqlite3_finalize(s);
	if (rc == SQLITE_DONE) {
		store_set_error(error_r, xasprintf("store: mailbox %lld: no such mailbox",
					     (long long)mailbox_id));
		return -1;
	}
	if (rc != SQLITE_ROW) {
		store_set_db_error(t->st, t->db, "reading MODSEQ", error_r);
		return -1;
	}
	return 0;
}

int store_set_highestmodseq(struct store_txn *t, int64_t mailbox_id, uint64_t modseq,
			    char **error_r)
{
	sqlite3_stmt *s = store_prep(t->db, "UPDATE mailboxes SET highestmodseq = ?2 "
				     "WHERE id = ?1 AND highestmodseq < ?2");
	int rc = -1;

	if (s) {
		sqlite3_bind_int64(s, 1, mailbox_id);
		sqlite3_bind_int64(s, 2, (int64_t)modseq);
		rc = store_step_done(s);
	}
	sqlite3_finalize(s);
	if (rc < 0)
		store_set_db_error(t->st, t->db, "setting MODSEQ", error_r);
	return rc;
}

int store_txn_expunge(struct store_txn *t, int64_t mailbox_id, const uint32_t *uids, size_t n,
		      char ***unlink_r, size_t *nunlink_r, char **error_r)
{
	sqlite3_stmt *del = NULL, *deref = NULL, *gone = NULL, *rec = NULL;
	char **paths = NULL;
	size_t npaths = 0, removed = 0;
	uint64_t modseq = 0;
	int ret = -1;

	*unlink_r = NULL;
	*nunlink_r = 0;
	if (n == 0)
		return 0;
	/* Every UID expunged here shares one new MODSEQ (RFC 7162 3.2.10). */
	if (store_next_modseq(t, mailbox_id, &modseq, error_r) < 0)
		return -1;
	del = store_prep(t->db, "DELETE FROM mailbox_messages WHERE mailbox_id = ?1 AND uid = ?2 "
		   "RETURNING body_id");
	deref = store_prep(t->db, "UPDATE messages SET refs = refs - 1 WHERE id = ?1 RETURNING refs");
	gone = store_prep(t->db, "DELETE FROM messages WHERE id = ?1 RETURNING path");
	rec = store_prep(t->db, "INSERT OR REPLACE INTO expunged (mailbox_id, uid, modseq) "
		   "VALUES (?1, ?2, ?3)");
	if (!del || !deref || !gone || !rec)
		goto out;
	for (size_t i = 0; i < n; i++) {
		int64_t body_id, refs = 1;
		int rc;

		sqlite3_reset(del);
		sqlite3_bind_int64(del, 1, mailbox_id);
		sqlite3_bind_int64(del, 2, uids[i]);
		rc = sqlite3_step(del);
		if (rc == SQLITE_DONE)
			continue;   /* no such UID: already gone */
		if (rc != SQLITE_ROW)
			goto out;
		body_id = sqlite3_column_int64(del, 0);
		if (sqlite3_step(del) != SQLITE_DONE)
			goto out;
		removed++;
		sqlite3_reset(rec);
		sqlite3_bind_int64(rec, 1, mailbox_id);
		sqlite3_bind_int64(rec, 2, uids[i]);
		sqlite3_bind_int64(rec, 3, (int64_t)modseq);
		if (store_step_done(rec) < 0)
			goto out;
		sqlite3_reset(deref);
		sqlite3_bind_int64(deref, 1, body_id);
		if (sqlite3_step(deref) == SQLITE_ROW)
			refs = sqlite3_column_int64(deref, 0);
		if (sqlite3_step(deref) != SQLITE_DONE)
			goto out;
		if (refs > 0)
			continue;
		sqlite3_reset(gone);
		sqlite3_bind_int64(gone, 1, body_id);
		if (store_collect_paths(gone, &paths, &npaths) < 0)
			goto out;
	}
	if (removed > 0 && store_set_highestmodseq(t, mailbox_id, modseq, NULL) < 0)
		goto out;
	ret = 0;
out:
	if (ret < 0) {
		store_set_db_error(t->st, t->db, "expunging", error_r);
		for (size_t i = 0; i < npaths; i++)
			free(paths[i]);
		FREE(paths);
		npaths = 0;
	}
	sqlite3_finalize(del);
	sqlite3_finalize(deref);
	sqlite3_finalize(gone);
	sqlite3_finalize(rec);
	*unlink_r = paths;
	*nunlink_r = npaths;
	return ret;
}

int store_txn_set_flags(struct store_txn *t, int64_t mailbox_id, const uint32_t *uids, size_t n,
			uint32_t set, uint32_t clear, char **error_r)
{
	sqlite3_stmt *s = NULL;
	int64_t modseq = 0;
	int rc, ret = -1, changed = 0;

	/* One new MODSEQ for the whole call (RFC 7162 allows sharing). */
	s = store_prep(t->db, "SELECT highestmodseq + 1 FROM mailboxes WHERE id = ?1");
	if (!s)
		goto out;
	sqlite3_bind_int64(s, 1, mailbox_id);
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW)
		modseq = sqlite3_column_int64(s, 0);
	sqlite3_finalize(s);
	s = NULL;
	if (rc == SQLITE_DONE) {
		store_set_error(error_r, xasprintf("store: mailbox %lld: no such mailbox",
					     (long long)mailbox_id));
		return -1;
	}
	if (rc != SQLITE_ROW)
		goto out;
	s = store_prep(t->db, "UPDATE mailbox_messages SET flags = (flags & ~?3) | ?4, modseq = ?5 "
		 "WHERE mailbox_id = ?1 AND uid = ?2 AND flags != ((flags & ~?3) | ?4)");
	if (!s)
		goto out;
	for (size_t i = 0; i < n; i++) {
		sqlite3_reset(s);
		sqlite3_bind_int64(s, 1, mailbox_id);
		sqlite3_bind_int64(s, 2, uids[i]);
		sqlite3_bind_int64(s, 3, clear);
		sqlite3_bind_int64(s, 4, set);
		sqlite3_bind_int64(s, 5, modseq);
		if (store_step_done(s) < 0)
			goto out;
		changed += sqlite3_changes(t->db);
	}
	sqlite3_finalize(s);
	s = NULL;
	if (changed > 0) {
		s = store_prep(t->db, "UPDATE mailboxes SET highestmodseq = ?2 WHERE id = ?1");
		if (!s)
			goto out;
		sqlite3_bind_int64(s, 1, mailbox_id);
		sqlite3_bind_int64(s, 2, modseq);
		if (store_step_done(s) < 0)
			goto out;
	}
	ret = 0;
out:
	if (ret < 0)
		store_set_db_error(t->st, t->db, "setting flags", error_r);
	sqlite3_finalize(s);
	return ret;
}

/* ---- crash recovery ---- */

static bool is_day_dir(const char *name)
{
	if (strlen(name) != 8)
		return false;
	for (int i = 0; i < 8; i++)
		if (name[i] < '0' || name[i] > '9')
			return false;
	return true;
}

/* Unlink files of msg/DAY that no messages row names; returns the count or
 * -1 on a database error. */
static int recover_day(struct store *st, sqlite3 *db, const char *day)
{
	char dirpath[4096];
	DIR *d;
	struct dirent *de;
	sqlite3_stmt *s;
	int removed = 0;

	snprintf(dirpath, sizeof(dirpath), "%s/msg/%s", st->data_dir, day);
	d = opendir(dirpath);
	if (!d) {
		log_warn("store: recover: cannot open %s: %s", dirpath, strerror(errno));
		return 0;
	}
	s = store_prep(db, "SELECT 1 FROM messages WHERE path = ?1");
	if (!s) {
		closedir(d);
		return -1;
	}
	while ((de = readdir(d)) != NULL) {
		char rel[512], full[4600];
		int rc;

		if (de->d_name[0] == '.')
			continue;
		snprintf(rel, sizeof(rel), "msg/%s/%s", day, de->d_name);
		sqlite3_reset(s);
		store_bind_text(s, 1, rel);
		rc = sqlite3_step(s);
		if (rc == SQLITE_ROW)
			continue;
		if (rc != SQLITE_DONE) {
			removed = -1;
			break;
		}
		snprintf(full, sizeof(full), "%s/%s", dirpath, de->d_name);
		if (unlink(full) == 0) {
			log_info("store: recover: removed uncommitted body %s", rel);
			removed++;
		} else if (errno != ENOENT) {
			log_warn("store: recover: cannot unlink %s: %s", full, strerror(errno));
		}
	}
	sqlite3_finalize(s);
	closedir(d);
	return removed;
}

/* Unlink every file in trash and forget it (a missing file counts as done).
 * Runs inside t when given, else in its own transaction. */
static int trash_empty_db(struct store *st, sqlite3 *db, int *removed_r)
{
	/* A path that a message row names again is not garbage. */
	sqlite3_stmt *sel = store_prep(db, "SELECT path FROM trash WHERE path NOT IN "
				 "(SELECT path FROM messages)");
	sqlite3_stmt *del = store_prep(db, "DELETE FROM trash WHERE path = ?1");
	char full[4096];
	int ret = -1, removed = 0;

	if (!sel || !del)
		goto out;
	while (sqlite3_step(sel) == SQLITE_ROW) {
		const char *rel = (const char *)sqlite3_column_text(sel, 0);

		store_msg_path(st, rel, full, sizeof(full));
		if (unlink(full) < 0 && errno != ENOENT) {
			log_warn("store: cannot unlink %s: %s (kept in trash, retried later)", full,
				 strerror(errno));
			continue;
		}
		removed++;
		sqlite3_reset(del);
		store_bind_text(del, 1, rel);
		if (store_step_done(del) < 0)
			goto out;
	}
	ret = 0;
out:
	sqlite3_finalize(sel);
	sqlite3_finalize(del);
	if (removed_r)
		*removed_r = removed;
	return ret;
}

int store_txn_empty_trash(struct store_txn *t, char **error_r)
{
	if (trash_empty_db(t->st, t->db, NULL) < 0) {
		store_set_db_error(t->st, t->db, "emptying trash", error_r);
		return -1;
	}
	return 0;
}

int store_empty_trash(struct store *st, char **error_r)
{
	sqlite3 *db = store_db_get(st);
	int removed = 0;

	if (!db) {
		store_set_error(error_r, xasprintf("store %s: cannot open database", st->db_path));
		return -1;
	}
	if (store_exec(db, "BEGIN IMMEDIATE") < 0 || trash_empty_db(st, db, &removed) < 0 ||
	    store_exec(db, "COMMIT") < 0) {
		store_set_db_error(st, db, "emptying trash", error_r);
		(void)store_exec(db, "ROLLBACK");
		store_db_put(st, db);
		return -1;
	}
	store_db_put(st, db);
	if (removed > 0)
		log_info("store: trash emptied removed=%d", removed);
	return 0;
}

int store_recover(struct store *st, char **error_r)
{
	char msgdir[4096], newest[2][9] = { "", "" };
	DIR *d;
	struct dirent *de;
	sqlite3 *db;
	int total = 0;

	/* Files whose last reference went in a commit the crash interrupted
	 * before the unlink. */
	if (store_empty_trash(st, error_r) < 0)
		return -1;
	snprintf(msgdir, sizeof(msgdir), "%s/msg", st->data_dir);
	d = opendir(msgdir);
	if (!d) {
		if (errno == ENOENT)
			return 0;
		store_set_error(error_r, xasprintf("store: cannot open %s: %s", msgdir,
					     strerror(errno)));
		return -1;
	}
	/* The two most recent day directories (names sort as dates). */
	while ((de = readdir(d)) != NULL) {
		if (!is_day_dir(de->d_name))
			continue;
		if (strcmp(de->d_name, newest[0]) > 0) {
			memcpy(newest[1], newest[0], sizeof(newest[0]));
			memcpy(newest[0], de->d_name, 9);
		} else if (strcmp(de->d_name, newest[1]) > 0) {
			memcpy(newest[1], de->d_name, 9);
		}
	}
	closedir(d);
	db = store_db_get(st);
	if (!db) {
		store_set_error(error_r, xasprintf("store %s: cannot open database", st->db_path));
		return -1;
	}
	for (int i = 0; i < 2; i++) {
		int n;

		if (!newest[i][0])
			continue;
		n = recover_day(st, db, newest[i]);
		if (n < 0) {
			store_set_db_error(st, db, "recovering", error_r);
			store_db_put(st, db);
			return -1;
		}
		total += n;
	}
	store_db_put(st, db);
	log_info("store: recover done removed=%d", total);
	return 0;
}

void store_unlink_bodies(struct store *st, char *const *paths, size_t n)
{
	char full[4096];

	for (size_t i = 0; i < n; i++) {
		store_msg_path(st, paths[i], full, sizeof full);
		if (unlink(full) < 0 && errno != ENOENT)
			log_warn("store: cannot remove expunged message file %s: %s (kept in trash; "
				 "tried again when the trash is next emptied)", full, strerror(errno));
	}
}
