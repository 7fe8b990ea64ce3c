/* store_account.c - domains, accounts and recipient lookup.  See store.h. */
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

static const char *const special_mailboxes[][2] = {
	{ STORE_INBOX, NULL },
	{ "Drafts", "\\Drafts" },
	{ "Sent", "\\Sent" },
	{ "Trash", "\\Trash" },
	{ "Junk", "\\Junk" },
	{ "Archive", "\\Archive" },
};

/* ---- domains ---- */

int store_domain_add(struct store *st, const char *name, char **error_r)
{
	sqlite3 *db;
	sqlite3_stmt *s;
	char *lname;
	int ret = -1;

	if (!store_valid_domain(name)) {
		store_set_error(error_r, xasprintf("domain %s: not a valid domain name", name));
		return -1;
	}
	lname = xstrdup(name);
	str_lower(lname);
	db = store_db_get(st);
	if (!db) {
		store_set_error(error_r, xasprintf("store %s: cannot open database", st->db_path));
		free(lname);
		return -1;
	}
	s = store_prep(db, "INSERT INTO domains (name) VALUES (?1)");
	if (s) {
		store_bind_text(s, 1, lname);
		if (store_step_done(s) == 0)
			ret = 0;
		else if ((sqlite3_extended_errcode(db) & 0xff) == SQLITE_CONSTRAINT)
			store_set_error(error_r, xasprintf("domain %s: already exists", lname));
		else
			store_set_db_error(st, db, "adding domain", error_r);
	} else {
		store_set_db_error(st, db, "adding domain", error_r);
	}
	sqlite3_finalize(s);
	store_db_put(st, db);
	free(lname);
	return ret;
}

int store_domain_del(struct store *st, const char *name, char **error_r)
{
	sqlite3 *db;
	sqlite3_stmt *s = NULL;
	char *lname = xstrdup(name);
	int64_t id = -1, naccounts = 0;
	int ret = -1;

	str_lower(lname);
	db = store_db_get(st);
	if (!db) {
		store_set_error(error_r, xasprintf("store %s: cannot open database", st->db_path));
		free(lname);
		return -1;
	}
	if (store_exec(db, "BEGIN IMMEDIATE") < 0) {
		store_set_db_error(st, db, "deleting domain", error_r);
		goto out;
	}
	s = store_prep(db, "SELECT d.id, (SELECT count(*) FROM accounts a WHERE a.domain_id = d.id) "
		 "FROM domains d WHERE d.name = ?1");
	if (!s)
		goto dberr;
	store_bind_text(s, 1, lname);
	if (sqlite3_step(s) == SQLITE_ROW) {
		id = sqlite3_column_int64(s, 0);
		naccounts = sqlite3_column_int64(s, 1);
	}
	sqlite3_finalize(s);
	s = NULL;
	if (id < 0) {
		store_set_error(error_r, xasprintf("domain %s: no such domain", lname));
		goto rollback;
	}
	if (naccounts > 0) {
		store_set_error(error_r, xasprintf("domain %s: still has %lld account(s); delete them "
					     "first", lname, (long long)naccounts));
		goto rollback;
	}
	s = store_prep(db, "DELETE FROM domains WHERE id = ?1");
	if (!s)
		goto dberr;
	sqlite3_bind_int64(s, 1, id);
	if (store_step_done(s) < 0 || store_exec(db, "COMMIT") < 0)
		goto dberr;
	ret = 0;
	goto out;
dberr:
	store_set_db_error(st, db, "deleting domain", error_r);
rollback:
	(void)store_exec(db, "ROLLBACK");
out:
	sqlite3_finalize(s);
	store_db_put(st, db);
	free(lname);
	return ret;
}

/* Run a one-column text query and call cb per row. */
static int list_query(struct store *st, const char *sql, void (*cb)(const char *, void *),
		      void *arg, char **error_r)
{
	sqlite3 *db = store_db_get(st);
	sqlite3_stmt *s;
	int rc, ret = -1;

	if (!db) {
		store_set_error(error_r, xasprintf("store %s: cannot open database", st->db_path));
		return -1;
	}
	s = store_prep(db, sql);
	if (s) {
		while ((rc = sqlite3_step(s)) == SQLITE_ROW)
			cb((const char *)sqlite3_column_text(s, 0), arg);
		if (rc == SQLITE_DONE)
			ret = 0;
	}
	if (ret < 0)
		store_set_db_error(st, db, "listing", error_r);
	sqlite3_finalize(s);
	store_db_put(st, db);
	return ret;
}

int store_domain_list(struct store *st, void (*cb)(const char *name, void *arg), void *arg,
		      char **error_r)
{
	return list_query(st, "SELECT name FROM domains ORDER BY name", cb, arg, error_r);
}

/* Domain id: >0 found, 0 not found, -1 error. */
static int64_t domain_id(sqlite3 *db, const char *lname)
{
	sqlite3_stmt *s = store_prep(db, "SELECT id FROM domains WHERE name = ?1");
	int64_t id = -1;
	int rc;

	if (!s)
		return -1;
	store_bind_text(s, 1, lname);
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW)
		id = sqlite3_column_int64(s, 0);
	else if (rc == SQLITE_DONE)
		id = 0;
	sqlite3_finalize(s);
	return id;
}

int store_domain_is_local(struct store *st, const char *name)
{
	sqlite3 *db;
	char *lname;
	int64_t id;

	if (!store_valid_domain(name))
		return 0;
	db = store_db_get(st);
	if (!db)
		return -1;
	lname = xstrdup(name);
	str_lower(lname);
	id = domain_id(db, lname);
	free(lname);
	store_db_put(st, db);
	return id < 0 ? -1 : id > 0;
}

/* ---- accounts ---- */

/* Next UIDVALIDITY: max(now, last + 1), never reused.  Inside a write txn. */
int store_next_uidvalidity(sqlite3 *db, uint32_t *v_r)
{
	sqlite3_stmt *s = store_prep(db, "UPDATE uidvalidity SET last = max(?1, last + 1) "
			       "WHERE id = 1 RETURNING last");
	int64_t v = -1;

	if (!s)
		return -1;
	sqlite3_bind_int64(s, 1, now_unix());
	if (sqlite3_step(s) == SQLITE_ROW)
		v = sqlite3_column_int64(s, 0);
	if (sqlite3_finalize(s) != SQLITE_OK || v <= 0 || v > UINT32_MAX)
		return -1;
	*v_r = (uint32_t)v;
	return 0;
}

int store_account_add(struct store *st, const char *address, const char *pw_hash,
		      char **error_r)
{
	const char *domain;
	char *addr = store_split_address(address, &domain);
	sqlite3 *db;
	sqlite3_stmt *s = NULL;
	int64_t did, aid;
	int ret = -1;

	if (!addr) {
		store_set_error(error_r, xasprintf("account %s: not a valid address (user@domain)",
					     address));
		return -1;
	}
	db = store_db_get(st);
	if (!db) {
		store_set_error(error_r, xasprintf("store %s: cannot open database", st->db_path));
		free(addr);
		return -1;
	}
	if (store_exec(db, "BEGIN IMMEDIATE") < 0)
		goto dberr;
	did = domain_id(db, domain);
	if (did < 0)
		goto dberr;
	if (did == 0) {
		store_set_error(error_r, xasprintf("account %s: domain %s is not local (add it first "
					     "with: yubin domain add %s)", addr, domain, domain));
		goto rollback;
	}
	s = store_prep(db, "INSERT INTO accounts (domain_id, address, pw_hash, created) "
		 "VALUES (?1, ?2, ?3, ?4)");
	if (!s)
		goto dberr;
	sqlite3_bind_int64(s, 1, did);
	store_bind_text(s, 2, addr);
	store_bind_text(s, 3, pw_hash);
	sqlite3_bind_int64(s, 4, now_unix());
	if (store_step_done(s) < 0) {
		if ((sqlite3_extended_errcode(db) & 0xff) == SQLITE_CONSTRAINT) {
			store_set_error(error_r, xasprintf("account %s: already exists", addr));
			goto rollback;
		}
		goto dberr;
	}
	aid = sqlite3_last_insert_rowid(db);
	sqlite3_finalize(s);
	s = store_prep(db, "INSERT INTO mailboxes (account_id, name, special_use, uidvalidity) "
		 "VALUES (?1, ?2, ?3, ?4)");
	if (!s)
		goto dberr;
	for (size_t i = 0; i < ARRAY_LEN(special_mailboxes); i++) {
		uint32_t uv;

		if (store_next_uidvalidity(db, &uv) < 0)
			goto dberr;
		sqlite3_reset(s);
		sqlite3_bind_int64(s, 1, aid);
		store_bind_text(s, 2, special_mailboxes[i][0]);
		store_bind_text(s, 3, special_mailboxes[i][1]);
		sqlite3_bind_int64(s, 4, uv);
		if (store_step_done(s) < 0)
			goto dberr;
	}
	if (store_exec(db, "COMMIT") < 0)
		goto dberr;
	ret = 0;
	goto out;
dberr:
	store_set_db_error(st, db, "adding account", error_r);
rollback:
	(void)store_exec(db, "ROLLBACK");
out:
	sqlite3_finalize(s);
	store_db_put(st, db);
	free(addr);
	return ret;
}

/* Collect one text column of a statement into a heap array. */
int store_collect_paths(sqlite3_stmt *s, char ***arr_r, size_t *n_r)
{
	int rc;

	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		*arr_r = xreallocarray(*arr_r, *n_r + 1, sizeof(**arr_r));
		(*arr_r)[(*n_r)++] = store_col_strdup(s, 0);
	}
	return rc == SQLITE_DONE ? 0 : -1;
}

static void unlink_paths(struct store *st, char **paths, size_t n)
{
	store_unlink_bodies(st, paths, n);
	for (size_t i = 0; i < n; i++)
		free(paths[i]);
	free(paths);
}

int store_account_del(struct store *st, const char *address, char **error_r)
{
	static const char *const steps[] = {
		("UPDATE messages SET refs = refs - (SELECT count(*) FROM mailbox_messages mm "
		 "  JOIN mailboxes mb ON mb.id = mm.mailbox_id "
		 "  WHERE mb.account_id = ?1 AND mm.body_id = messages.id) "
		 "WHERE id IN (SELECT mm.body_id FROM mailbox_messages mm "
		 "  JOIN mailboxes mb ON mb.id = mm.mailbox_id WHERE mb.account_id = ?1)"),
		("DELETE FROM mailbox_messages WHERE mailbox_id IN "
		 "  (SELECT id FROM mailboxes WHERE account_id = ?1)"),
		"DELETE FROM mailboxes WHERE account_id = ?1",
		"DELETE FROM accounts WHERE id = ?1",
		"DELETE FROM jmap_changes WHERE account_id = ?1",
		"DELETE FROM email_threads WHERE account_id = ?1",
		"DELETE FROM thread_ids WHERE account_id = ?1",
	};
	const char *domain;
	char *addr = store_split_address(address, &domain);
	sqlite3 *db;
	sqlite3_stmt *s = NULL;
	int64_t aid = 0;
	char **paths = NULL;
	size_t npaths = 0;
	int ret = -1;

	if (!addr) {
		store_set_error(error_r, xasprintf("account %s: no such account", address));
		return -1;
	}
	db = store_db_get(st);
	if (!db) {
		store_set_error(error_r, xasprintf("store %s: cannot open database", st->db_path));
		free(addr);
		return -1;
	}
	if (store_exec(db, "BEGIN IMMEDIATE") < 0)
		goto dberr;
	s = store_prep(db, "SELECT id FROM accounts WHERE address = ?1");
	if (!s)
		goto dberr;
	store_bind_text(s, 1, addr);
	if (sqlite3_step(s) == SQLITE_ROW)
		aid = sqlite3_column_int64(s, 0);
	sqlite3_finalize(s);
	s = NULL;
	if (aid == 0) {
		store_set_error(error_r, xasprintf("account %s: no such account", addr));
		goto rollback;
	}
	for (size_t i = 0; i < ARRAY_LEN(steps); i++) {
		s = store_prep(db, steps[i]);
		if (!s)
			goto dberr;
		sqlite3_bind_int64(s, 1, aid);
		if (store_step_done(s) < 0)
			goto dberr;
		sqlite3_finalize(s);
		s = NULL;
	}
	s = store_prep(db, "DELETE FROM messages WHERE refs <= 0 AND id NOT IN "
		 "(SELECT body_id FROM mailbox_messages) RETURNING path");
	if (!s || store_collect_paths(s, &paths, &npaths) < 0)
		goto dberr;
	if (store_exec(db, "COMMIT") < 0)
		goto dberr;
	ret = 0;
	goto out;
dberr:
	store_set_db_error(st, db, "deleting account", error_r);
rollback:
	(void)store_exec(db, "ROLLBACK");
	for (size_t i = 0; i < npaths; i++)
		free(paths[i]);
	FREE(paths);
	npaths = 0;
out:
	sqlite3_finalize(s);
	store_db_put(st, db);
	free(addr);
	if (npaths > 0 || paths) {
		unlink_paths(st, paths, npaths);
		char *terr = NULL;
		if (store_empty_trash(st, &terr) < 0) {
			log_warn("%s", terr);
			free(terr);
		}
	}
	return ret;
}

static int account_update(struct store *st, const char *address, const char *sql,
			  const char *value, char **error_r)
{
	const char *domain;
	char *addr = store_split_address(address, &domain);
	sqlite3 *db;
	sqlite3_stmt *s;
	int ret = -1;

	if (!addr) {
		store_set_error(error_r, xasprintf("account %s: no such account", address));
		return -1;
	}
	db = store_db_get(st);
	if (!db) {
		store_set_error(error_r, xasprintf("store %s: cannot open database", st->db_path));
		free(addr);
		return -1;
	}
	s = store_prep(db, sql);
	if (s) {
		store_bind_text(s, 1, value);
		store_bind_text(s, 2, addr);
		if (store_step_done(s) == 0) {
			if (sqlite3_changes(db) == 1)
				ret = 0;
			else
				store_set_error(error_r, xasprintf("account %s: no such account", addr));
		} else {
			store_set_db_error(st, db, "updating account", error_r);
		}
	} else {
		store_set_db_error(st, db, "updating account", error_r);
	}
	sqlite3_finalize(s);
	store_db_put(st, db);
	free(addr);
	return ret;
}

int store_account_set_password(struct store *st, const char *address, const char *pw_hash,
			       char **error_r)
{
	return account_update(st, address, "UPDATE accounts SET pw_hash = ?1 WHERE address = ?2",
			      pw_hash, error_r);
}

int store_account_set_apop(struct store *st, const char *address, const char *secret,
			   char **error_r)
{
	return account_update(st, address,
			      "UPDATE accounts SET apop_secret = ?1 WHERE address = ?2", secret,
			      error_r);
}

int store_account_set_scram(struct store *st, const char *address, const char *scram,
			    char **error_r)
{
	return account_update(st, address, "UPDATE accounts SET scram = ?1 WHERE address = ?2",
			      scram, error_r);
}

int store_account_list(struct store *st, void (*cb)(const char *address, void *arg), void *arg,
		       char **error_r)
{
	return list_query(st, "SELECT address FROM accounts ORDER BY address", cb, arg, error_r);
}

int store_account_find(struct store *st, const char *address, struct account *a_r)
{
	const char *domain;
	char *addr;
	sqlite3 *db;
	sqlite3_stmt *s;
	int rc, ret = -1;

	memset(a_r, 0, sizeof(*a_r));
	addr = store_split_address(address, &domain);
	if (!addr)
		return 0;
	db = store_db_get(st);
	if (!db) {
		free(addr);
		return -1;
	}
	s = store_prep(db, "SELECT a.id, a.address, a.pw_hash, a.apop_secret, "
		 "(SELECT id FROM mailboxes m WHERE m.account_id = a.id AND m.name = 'INBOX'), "
		 "a.scram "
		 "FROM accounts a WHERE a.address = ?1");
	if (s) {
		store_bind_text(s, 1, addr);
		rc = sqlite3_step(s);
		if (rc == SQLITE_ROW) {
			a_r->id = sqlite3_column_int64(s, 0);
			a_r->address = store_col_strdup(s, 1);
			a_r->pw_hash = store_col_strdup(s, 2);
			a_r->apop_secret = store_col_strdup(s, 3);
			a_r->inbox_id = sqlite3_column_int64(s, 4);
			a_r->scram = store_col_strdup(s, 5);
			ret = 1;
		} else if (rc == SQLITE_DONE) {
			ret = 0;
		}
	}
	if (ret < 0)
		log_error("store %s: finding account: %s", st->db_path, sqlite3_errmsg(db));
	sqlite3_finalize(s);
	store_db_put(st, db);
	free(addr);
	return ret;
}

void account_free(struct account *a)
{
	if (!a)
		return;
	FREE(a->address);
	FREE(a->pw_hash);
	FREE(a->scram);
	if (a->apop_secret) {
		/* a secret: clear it before handing the memory back */
		volatile char *p = a->apop_secret;

		while (*p)
			*p++ = 0;
		FREE(a->apop_secret);
	}
}

int store_resolve_rcpt(struct store *st, const char *address, struct rcpt_info *r)
{
	const char *domain;
	char *addr;
	sqlite3 *db;
	sqlite3_stmt *s = NULL;
	int64_t did;
	int rc, ret = -1;

	memset(r, 0, sizeof(*r));
	r->status = RCPT_NOT_LOCAL;
	addr = store_split_address(address, &domain);
	if (!addr) {
		/* Too long or odd: if the domain part is ours, the user can't exist. */
		const char *at = strrchr(address, '@');
		int local = at ? store_domain_is_local(st, at + 1) : 0;

		if (local < 0)
			return -1;
		r->status = local ? RCPT_UNKNOWN_USER : RCPT_NOT_LOCAL;
		return 0;
	}
	db = store_db_get(st);
	if (!db) {
		free(addr);
		return -1;
	}
	did = domain_id(db, domain);
	if (did < 0)
		goto out;
	if (did == 0) {
		ret = 0;
		goto out;
	}
	s = store_prep(db, "SELECT a.id, a.address, m.id, a.quota, a.used FROM accounts a "
		 "JOIN mailboxes m ON m.account_id = a.id AND m.name = 'INBOX' "
		 "WHERE a.address = ?1");
	if (!s)
		goto out;
	store_bind_text(s, 1, addr);
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW) {
		r->status = RCPT_LOCAL;
		r->account_id = sqlite3_column_int64(s, 0);
		snprintf(r->address, sizeof(r->address), "%s",
			 (const char *)sqlite3_column_text(s, 1));
		r->mailbox_id = sqlite3_column_int64(s, 2);
		r->quota = sqlite3_column_int64(s, 3);
		r->used = sqlite3_column_int64(s, 4);
		ret = 0;
	} else if (rc == SQLITE_DONE) {
		r->status = RCPT_UNKNOWN_USER;
		ret = 0;
	}
out:
	if (ret < 0)
		log_error("store %s: resolving recipient: %s", st->db_path, sqlite3_errmsg(db));
	sqlite3_finalize(s);
	store_db_put(st, db);
	free(addr);
	return ret;
}


int store_account_set_quota(struct store *st, const char *address, int64_t bytes,
			    char **error_r)
{
	char num[32];

	snprintf(num, sizeof num, "%lld", (long long)bytes);
	return account_update(st, address,
			      "UPDATE accounts SET quota = CAST(?1 AS INTEGER) WHERE address = ?2",
			      num, error_r);
}

int store_account_quota(struct store *st, int64_t account_id, int64_t *quota_r,
			int64_t *used_r)
{
	sqlite3 *db = store_db_get(st);
	sqlite3_stmt *s;
	int ret = -1;

	if (!db)
		return -1;
	s = store_prep(db, "SELECT quota, used FROM accounts WHERE id = ?1");
	if (s) {
		sqlite3_bind_int64(s, 1, account_id);
		int rc = sqlite3_step(s);
		if (rc == SQLITE_ROW) {
			*quota_r = sqlite3_column_int64(s, 0);
			*used_r = sqlite3_column_int64(s, 1);
			ret = 1;
		} else if (rc == SQLITE_DONE) {
			ret = 0;
		}
	}
	if (ret < 0)
		log_error("store %s: reading quota: %s", st->db_path, sqlite3_errmsg(db));
	sqlite3_finalize(s);
	store_db_put(st, db);
	return ret;
}
