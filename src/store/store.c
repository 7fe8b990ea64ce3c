/* store.c - the mail store on SQLite: schema, migrations, connection pool,
 * domains, accounts, mailboxes, messages and crash recovery.  See store.h. */
#include "store/store.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/log.h"
#include "core/util.h"

/* Idle connections kept in the pool; more may be open while busy. */
#define STORE_POOL_IDLE 8
/* How long a connection waits for another writer (SQLite busy handler). */
#define STORE_BUSY_MS 10000
/* Longest address (RFC 5321: 64 + 1 + 255 minus the angle brackets). */
#define STORE_ADDRESS_MAX 319
#define STORE_DOMAIN_MAX 255

struct store {
	char *data_dir;
	char *db_path;
	pthread_mutex_t mu;
	struct sqlite3 *idle[STORE_POOL_IDLE];
	size_t nidle;
};

struct store_txn {
	struct store *st;
	sqlite3 *db;
};

/* ---- schema and migrations ---- */

/* Each entry moves the schema from version i to i + 1.  Never edit a
 * released entry: append a new one. */
static const char *const migrations[] = {
	/* 0 -> 1 */
	"CREATE TABLE domains ("
	"  id INTEGER PRIMARY KEY,"
	"  name TEXT NOT NULL UNIQUE);"
	"CREATE TABLE accounts ("
	"  id INTEGER PRIMARY KEY AUTOINCREMENT,"
	"  domain_id INTEGER NOT NULL REFERENCES domains(id),"
	"  address TEXT NOT NULL UNIQUE,"
	"  pw_hash TEXT NOT NULL,"
	"  apop_secret TEXT,"
	"  created INTEGER NOT NULL);"
	"CREATE INDEX accounts_domain ON accounts(domain_id);"
	"CREATE TABLE mailboxes ("
	"  id INTEGER PRIMARY KEY AUTOINCREMENT,"
	"  account_id INTEGER NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,"
	"  name TEXT NOT NULL,"
	"  special_use TEXT,"
	"  uidvalidity INTEGER NOT NULL,"
	"  uidnext INTEGER NOT NULL DEFAULT 1,"
	"  highestmodseq INTEGER NOT NULL DEFAULT 1,"
	"  UNIQUE(account_id, name));"
	"CREATE TABLE messages ("
	"  id INTEGER PRIMARY KEY AUTOINCREMENT,"
	"  path TEXT NOT NULL UNIQUE,"
	"  size INTEGER NOT NULL,"
	"  refs INTEGER NOT NULL DEFAULT 0);"
	"CREATE TABLE mailbox_messages ("
	"  mailbox_id INTEGER NOT NULL REFERENCES mailboxes(id) ON DELETE CASCADE,"
	"  uid INTEGER NOT NULL,"
	"  body_id INTEGER NOT NULL REFERENCES messages(id),"
	"  flags INTEGER NOT NULL DEFAULT 0,"
	"  modseq INTEGER NOT NULL,"
	"  internaldate INTEGER NOT NULL,"
	"  PRIMARY KEY(mailbox_id, uid)) WITHOUT ROWID;"
	"CREATE INDEX mailbox_messages_body ON mailbox_messages(body_id);"
	/* Last UIDVALIDITY handed out, so that none is ever reused. */
	"CREATE TABLE uidvalidity (id INTEGER PRIMARY KEY CHECK (id = 1), last INTEGER NOT NULL);"
	"INSERT INTO uidvalidity (id, last) VALUES (1, 0);",
	/* 1 -> 2: body files to unlink, recorded in the transaction that
	 * drops their last reference, so that a crash between that commit and
	 * the unlink leaves a row to finish from, not an orphan file. */
	"CREATE TABLE trash (path TEXT PRIMARY KEY) WITHOUT ROWID;"
	"CREATE TRIGGER messages_trash AFTER DELETE ON messages BEGIN"
	"  INSERT OR IGNORE INTO trash (path) VALUES (OLD.path);"
	"END;",
};

static const char *const special_mailboxes[][2] = {
	{ STORE_INBOX, NULL },
	{ "Drafts", "\\Drafts" },
	{ "Sent", "\\Sent" },
	{ "Trash", "\\Trash" },
	{ "Junk", "\\Junk" },
	{ "Archive", "\\Archive" },
};

/* ---- errors ---- */

static char *db_error(const struct store *st, sqlite3 *db, const char *what)
{
	int rc = db ? sqlite3_extended_errcode(db) & 0xff : SQLITE_ERROR;

	if (rc == SQLITE_BUSY || rc == SQLITE_LOCKED)
		return xasprintf("store %s: database is locked (another process holds a write "
				 "lock for more than %d s)", st->db_path, STORE_BUSY_MS / 1000);
	return xasprintf("store %s: %s: %s", st->db_path, what,
			 db ? sqlite3_errmsg(db) : "cannot open database");
}

static void set_error(char **error_r, char *msg)
{
	if (error_r)
		*error_r = msg;
	else
		free(msg);
}

static void set_db_error(struct store *st, sqlite3 *db, const char *what, char **error_r)
{
	set_error(error_r, db_error(st, db, what));
}

/* ---- connections ---- */

static int db_exec(sqlite3 *db, const char *sql)
{
	return sqlite3_exec(db, sql, NULL, NULL, NULL) == SQLITE_OK ? 0 : -1;
}

static sqlite3 *db_open(struct store *st, char **error_r)
{
	sqlite3 *db = NULL;
	int rc = sqlite3_open_v2(st->db_path, &db,
				 SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
				 NULL);

	if (rc != SQLITE_OK) {
		set_error(error_r, xasprintf("store %s: cannot open: %s", st->db_path,
					     db ? sqlite3_errmsg(db) : sqlite3_errstr(rc)));
		sqlite3_close(db);
		return NULL;
	}
	sqlite3_busy_timeout(db, STORE_BUSY_MS);
	sqlite3_extended_result_codes(db, 1);
	if (db_exec(db, "PRAGMA journal_mode=WAL") < 0 ||
	    db_exec(db, "PRAGMA synchronous=FULL") < 0 ||
	    db_exec(db, "PRAGMA foreign_keys=ON") < 0) {
		set_db_error(st, db, "setting pragmas", error_r);
		sqlite3_close(db);
		return NULL;
	}
	return db;
}

struct sqlite3 *store_db_get(struct store *st)
{
	sqlite3 *db = NULL;
	char *err = NULL;

	pthread_mutex_lock(&st->mu);
	if (st->nidle > 0)
		db = st->idle[--st->nidle];
	pthread_mutex_unlock(&st->mu);
	if (db)
		return db;
	db = db_open(st, &err);
	if (!db) {
		log_error("%s", err);
		free(err);
	}
	return db;
}

void store_db_put(struct store *st, struct sqlite3 *db)
{
	if (!db)
		return;
	/* Never pool a connection left inside a transaction. */
	if (!sqlite3_get_autocommit(db))
		(void)db_exec(db, "ROLLBACK");
	pthread_mutex_lock(&st->mu);
	if (st->nidle < STORE_POOL_IDLE) {
		st->idle[st->nidle++] = db;
		db = NULL;
	}
	pthread_mutex_unlock(&st->mu);
	if (db)
		sqlite3_close(db);
}

/* ---- small statement helpers ---- */

static sqlite3_stmt *prep(sqlite3 *db, const char *sql)
{
	sqlite3_stmt *s = NULL;

	if (sqlite3_prepare_v2(db, sql, -1, &s, NULL) != SQLITE_OK) {
		sqlite3_finalize(s);
		return NULL;
	}
	return s;
}

static void bind_text(sqlite3_stmt *s, int i, const char *v)
{
	if (v)
		sqlite3_bind_text(s, i, v, -1, SQLITE_TRANSIENT);
	else
		sqlite3_bind_null(s, i);
}

static char *col_strdup(sqlite3_stmt *s, int i)
{
	const unsigned char *t = sqlite3_column_text(s, i);

	return t ? xstrdup((const char *)t) : NULL;
}

/* Run a statement to completion; 0 ok, -1 error. */
static int step_done(sqlite3_stmt *s)
{
	int rc;

	while ((rc = sqlite3_step(s)) == SQLITE_ROW)
		;
	return rc == SQLITE_DONE ? 0 : -1;
}

/* ---- open / close / migrate ---- */

static int mkdir_p1(const char *path, char **error_r)
{
	if (mkdir(path, 0750) < 0 && errno != EEXIST) {
		set_error(error_r, xasprintf("store: cannot create directory %s: %s", path,
					     strerror(errno)));
		return -1;
	}
	return 0;
}

static int migrate(struct store *st, sqlite3 *db, char **error_r)
{
	sqlite3_stmt *s;
	int version = 0;

	if (db_exec(db, "BEGIN IMMEDIATE") < 0) {
		set_db_error(st, db, "starting migration", error_r);
		return -1;
	}
	s = prep(db, "PRAGMA user_version");
	if (s && sqlite3_step(s) == SQLITE_ROW)
		version = sqlite3_column_int(s, 0);
	sqlite3_finalize(s);
	if (version > (int)ARRAY_LEN(migrations)) {
		(void)db_exec(db, "ROLLBACK");
		set_error(error_r, xasprintf("store %s: schema version %d is newer than this "
					     "program (%zu): upgrade yubin", st->db_path, version,
					     ARRAY_LEN(migrations)));
		return -1;
	}
	for (; version < (int)ARRAY_LEN(migrations); version++) {
		char pragma[64];

		snprintf(pragma, sizeof(pragma), "PRAGMA user_version=%d", version + 1);
		if (db_exec(db, migrations[version]) < 0 || db_exec(db, pragma) < 0) {
			char what[64];

			snprintf(what, sizeof(what), "migrating schema to version %d",
				 version + 1);
			set_db_error(st, db, what, error_r);
			(void)db_exec(db, "ROLLBACK");
			return -1;
		}
		log_info("store: schema migrated to version %d", version + 1);
	}
	if (db_exec(db, "COMMIT") < 0) {
		set_db_error(st, db, "committing migration", error_r);
		(void)db_exec(db, "ROLLBACK");
		return -1;
	}
	return 0;
}

int store_open(const char *data_dir, struct store **st_r, char **error_r)
{
	struct store *st;
	sqlite3 *db;
	char *msgdir;

	*st_r = NULL;
	if (mkdir_p1(data_dir, error_r) < 0)
		return -1;
	msgdir = xasprintf("%s/msg", data_dir);
	if (mkdir_p1(msgdir, error_r) < 0) {
		free(msgdir);
		return -1;
	}
	free(msgdir);

	st = xcalloc(1, sizeof(*st));
	st->data_dir = xstrdup(data_dir);
	st->db_path = xasprintf("%s/yubin.db", data_dir);
	pthread_mutex_init(&st->mu, NULL);

	db = db_open(st, error_r);
	if (!db || migrate(st, db, error_r) < 0) {
		if (db)
			sqlite3_close(db);
		store_close(&st);
		return -1;
	}
	store_db_put(st, db);
	*st_r = st;
	return 0;
}

void store_close(struct store **stp)
{
	struct store *st = stp ? *stp : NULL;

	if (!st)
		return;
	for (size_t i = 0; i < st->nidle; i++)
		sqlite3_close(st->idle[i]);
	pthread_mutex_destroy(&st->mu);
	free(st->data_dir);
	free(st->db_path);
	free(st);
	*stp = NULL;
}

const char *store_data_dir(const struct store *st)
{
	return st->data_dir;
}

void store_msg_path(const struct store *st, const char *rel, char *out, size_t outsz)
{
	snprintf(out, outsz, "%s/%s", st->data_dir, rel);
}

/* ---- name helpers ---- */

static bool valid_domain(const char *name)
{
	size_t n = strlen(name);

	if (n == 0 || n > STORE_DOMAIN_MAX)
		return false;
	for (const char *p = name; *p; p++) {
		unsigned char c = (unsigned char)*p;

		if (c <= ' ' || c >= 0x7f || c == '@' || c == '/' || c == '<' || c == '>')
			return false;
	}
	return true;
}

/* Lower-case copy of address split at the last '@'; NULL if malformed. */
static char *split_address(const char *address, const char **domain_r)
{
	char *a, *at;

	if (strlen(address) > STORE_ADDRESS_MAX)
		return NULL;
	a = xstrdup(address);
	str_lower(a);
	at = strrchr(a, '@');
	if (!at || at == a || !valid_domain(at + 1)) {
		free(a);
		return NULL;
	}
	for (const char *p = a; p < at; p++) {
		if ((unsigned char)*p <= ' ' || (unsigned char)*p == 0x7f) {
			free(a);
			return NULL;
		}
	}
	*domain_r = at + 1;
	return a;
}

/* ---- domains ---- */

int store_domain_add(struct store *st, const char *name, char **error_r)
{
	sqlite3 *db;
	sqlite3_stmt *s;
	char *lname;
	int ret = -1;

	if (!valid_domain(name)) {
		set_error(error_r, xasprintf("domain %s: not a valid domain name", name));
		return -1;
	}
	lname = xstrdup(name);
	str_lower(lname);
	db = store_db_get(st);
	if (!db) {
		set_error(error_r, xasprintf("store %s: cannot open database", st->db_path));
		free(lname);
		return -1;
	}
	s = prep(db, "INSERT INTO domains (name) VALUES (?1)");
	if (s) {
		bind_text(s, 1, lname);
		if (step_done(s) == 0)
			ret = 0;
		else if ((sqlite3_extended_errcode(db) & 0xff) == SQLITE_CONSTRAINT)
			set_error(error_r, xasprintf("domain %s: already exists", lname));
		else
			set_db_error(st, db, "adding domain", error_r);
	} else {
		set_db_error(st, db, "adding domain", error_r);
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
		set_error(error_r, xasprintf("store %s: cannot open database", st->db_path));
		free(lname);
		return -1;
	}
	if (db_exec(db, "BEGIN IMMEDIATE") < 0) {
		set_db_error(st, db, "deleting domain", error_r);
		goto out;
	}
	s = prep(db, "SELECT d.id, (SELECT count(*) FROM accounts a WHERE a.domain_id = d.id) "
		 "FROM domains d WHERE d.name = ?1");
	if (!s)
		goto dberr;
	bind_text(s, 1, lname);
	if (sqlite3_step(s) == SQLITE_ROW) {
		id = sqlite3_column_int64(s, 0);
		naccounts = sqlite3_column_int64(s, 1);
	}
	sqlite3_finalize(s);
	s = NULL;
	if (id < 0) {
		set_error(error_r, xasprintf("domain %s: no such domain", lname));
		goto rollback;
	}
	if (naccounts > 0) {
		set_error(error_r, xasprintf("domain %s: still has %lld account(s); delete them "
					     "first", lname, (long long)naccounts));
		goto rollback;
	}
	s = prep(db, "DELETE FROM domains WHERE id = ?1");
	if (!s)
		goto dberr;
	sqlite3_bind_int64(s, 1, id);
	if (step_done(s) < 0 || db_exec(db, "COMMIT") < 0)
		goto dberr;
	ret = 0;
	goto out;
dberr:
	set_db_error(st, db, "deleting domain", error_r);
rollback:
	(void)db_exec(db, "ROLLBACK");
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
		set_error(error_r, xasprintf("store %s: cannot open database", st->db_path));
		return -1;
	}
	s = prep(db, sql);
	if (s) {
		while ((rc = sqlite3_step(s)) == SQLITE_ROW)
			cb((const char *)sqlite3_column_text(s, 0), arg);
		if (rc == SQLITE_DONE)
			ret = 0;
	}
	if (ret < 0)
		set_db_error(st, db, "listing", error_r);
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
	sqlite3_stmt *s = prep(db, "SELECT id FROM domains WHERE name = ?1");
	int64_t id = -1;
	int rc;

	if (!s)
		return -1;
	bind_text(s, 1, lname);
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

	if (!valid_domain(name))
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
static int next_uidvalidity(sqlite3 *db, uint32_t *v_r)
{
	sqlite3_stmt *s = prep(db, "UPDATE uidvalidity SET last = max(?1, last + 1) "
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
	char *addr = split_address(address, &domain);
	sqlite3 *db;
	sqlite3_stmt *s = NULL;
	int64_t did, aid;
	int ret = -1;

	if (!addr) {
		set_error(error_r, xasprintf("account %s: not a valid address (user@domain)",
					     address));
		return -1;
	}
	db = store_db_get(st);
	if (!db) {
		set_error(error_r, xasprintf("store %s: cannot open database", st->db_path));
		free(addr);
		return -1;
	}
	if (db_exec(db, "BEGIN IMMEDIATE") < 0)
		goto dberr;
	did = domain_id(db, domain);
	if (did < 0)
		goto dberr;
	if (did == 0) {
		set_error(error_r, xasprintf("account %s: domain %s is not local (add it first "
					     "with: yubin domain add %s)", addr, domain, domain));
		goto rollback;
	}
	s = prep(db, "INSERT INTO accounts (domain_id, address, pw_hash, created) "
		 "VALUES (?1, ?2, ?3, ?4)");
	if (!s)
		goto dberr;
	sqlite3_bind_int64(s, 1, did);
	bind_text(s, 2, addr);
	bind_text(s, 3, pw_hash);
	sqlite3_bind_int64(s, 4, now_unix());
	if (step_done(s) < 0) {
		if ((sqlite3_extended_errcode(db) & 0xff) == SQLITE_CONSTRAINT) {
			set_error(error_r, xasprintf("account %s: already exists", addr));
			goto rollback;
		}
		goto dberr;
	}
	aid = sqlite3_last_insert_rowid(db);
	sqlite3_finalize(s);
	s = prep(db, "INSERT INTO mailboxes (account_id, name, special_use, uidvalidity) "
		 "VALUES (?1, ?2, ?3, ?4)");
	if (!s)
		goto dberr;
	for (size_t i = 0; i < ARRAY_LEN(special_mailboxes); i++) {
		uint32_t uv;

		if (next_uidvalidity(db, &uv) < 0)
			goto dberr;
		sqlite3_reset(s);
		sqlite3_bind_int64(s, 1, aid);
		bind_text(s, 2, special_mailboxes[i][0]);
		bind_text(s, 3, special_mailboxes[i][1]);
		sqlite3_bind_int64(s, 4, uv);
		if (step_done(s) < 0)
			goto dberr;
	}
	if (db_exec(db, "COMMIT") < 0)
		goto dberr;
	ret = 0;
	goto out;
dberr:
	set_db_error(st, db, "adding account", error_r);
rollback:
	(void)db_exec(db, "ROLLBACK");
out:
	sqlite3_finalize(s);
	store_db_put(st, db);
	free(addr);
	return ret;
}

/* Collect one text column of a statement into a heap array. */
static int collect_paths(sqlite3_stmt *s, char ***arr_r, size_t *n_r)
{
	int rc;

	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		*arr_r = xreallocarray(*arr_r, *n_r + 1, sizeof(**arr_r));
		(*arr_r)[(*n_r)++] = col_strdup(s, 0);
	}
	return rc == SQLITE_DONE ? 0 : -1;
}

static void unlink_paths(struct store *st, char **paths, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		char full[4096];

		store_msg_path(st, paths[i], full, sizeof(full));
		if (unlink(full) < 0 && errno != ENOENT)
			log_warn("store: cannot unlink %s: %s", full, strerror(errno));
		free(paths[i]);
	}
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
	};
	const char *domain;
	char *addr = split_address(address, &domain);
	sqlite3 *db;
	sqlite3_stmt *s = NULL;
	int64_t aid = 0;
	char **paths = NULL;
	size_t npaths = 0;
	int ret = -1;

	if (!addr) {
		set_error(error_r, xasprintf("account %s: no such account", address));
		return -1;
	}
	db = store_db_get(st);
	if (!db) {
		set_error(error_r, xasprintf("store %s: cannot open database", st->db_path));
		free(addr);
		return -1;
	}
	if (db_exec(db, "BEGIN IMMEDIATE") < 0)
		goto dberr;
	s = prep(db, "SELECT id FROM accounts WHERE address = ?1");
	if (!s)
		goto dberr;
	bind_text(s, 1, addr);
	if (sqlite3_step(s) == SQLITE_ROW)
		aid = sqlite3_column_int64(s, 0);
	sqlite3_finalize(s);
	s = NULL;
	if (aid == 0) {
		set_error(error_r, xasprintf("account %s: no such account", addr));
		goto rollback;
	}
	for (size_t i = 0; i < ARRAY_LEN(steps); i++) {
		s = prep(db, steps[i]);
		if (!s)
			goto dberr;
		sqlite3_bind_int64(s, 1, aid);
		if (step_done(s) < 0)
			goto dberr;
		sqlite3_finalize(s);
		s = NULL;
	}
	s = prep(db, "DELETE FROM messages WHERE refs <= 0 AND id NOT IN "
		 "(SELECT body_id FROM mailbox_messages) RETURNING path");
	if (!s || collect_paths(s, &paths, &npaths) < 0)
		goto dberr;
	if (db_exec(db, "COMMIT") < 0)
		goto dberr;
	ret = 0;
	goto out;
dberr:
	set_db_error(st, db, "deleting account", error_r);
rollback:
	(void)db_exec(db, "ROLLBACK");
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
	char *addr = split_address(address, &domain);
	sqlite3 *db;
	sqlite3_stmt *s;
	int ret = -1;

	if (!addr) {
		set_error(error_r, xasprintf("account %s: no such account", address));
		return -1;
	}
	db = store_db_get(st);
	if (!db) {
		set_error(error_r, xasprintf("store %s: cannot open database", st->db_path));
		free(addr);
		return -1;
	}
	s = prep(db, sql);
	if (s) {
		bind_text(s, 1, value);
		bind_text(s, 2, addr);
		if (step_done(s) == 0) {
			if (sqlite3_changes(db) == 1)
				ret = 0;
			else
				set_error(error_r, xasprintf("account %s: no such account", addr));
		} else {
			set_db_error(st, db, "updating account", error_r);
		}
	} else {
		set_db_error(st, db, "updating account", error_r);
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
	addr = split_address(address, &domain);
	if (!addr)
		return 0;
	db = store_db_get(st);
	if (!db) {
		free(addr);
		return -1;
	}
	s = prep(db, "SELECT a.id, a.address, a.pw_hash, a.apop_secret, "
		 "(SELECT id FROM mailboxes m WHERE m.account_id = a.id AND m.name = 'INBOX') "
		 "FROM accounts a WHERE a.address = ?1");
	if (s) {
		bind_text(s, 1, addr);
		rc = sqlite3_step(s);
		if (rc == SQLITE_ROW) {
			a_r->id = sqlite3_column_int64(s, 0);
			a_r->address = col_strdup(s, 1);
			a_r->pw_hash = col_strdup(s, 2);
			a_r->apop_secret = col_strdup(s, 3);
			a_r->inbox_id = sqlite3_column_int64(s, 4);
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
	addr = split_address(address, &domain);
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
	s = prep(db, "SELECT a.id, a.address, m.id FROM accounts a "
		 "JOIN mailboxes m ON m.account_id = a.id AND m.name = 'INBOX' "
		 "WHERE a.address = ?1");
	if (!s)
		goto out;
	bind_text(s, 1, addr);
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW) {
		r->status = RCPT_LOCAL;
		r->account_id = sqlite3_column_int64(s, 0);
		snprintf(r->address, sizeof(r->address), "%s",
			 (const char *)sqlite3_column_text(s, 1));
		r->mailbox_id = sqlite3_column_int64(s, 2);
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

/* ---- mailboxes ---- */

#define MAILBOX_COLS \
	"SELECT mb.id, mb.account_id, mb.name, mb.uidvalidity, mb.uidnext, mb.highestmodseq, " \
	"(SELECT count(*) FROM mailbox_messages mm WHERE mm.mailbox_id = mb.id), " \
	"(SELECT coalesce(sum(m.size), 0) FROM mailbox_messages mm " \
	"  JOIN messages m ON m.id = mm.body_id WHERE mm.mailbox_id = mb.id) " \
	"FROM mailboxes mb "

static int mailbox_query(struct store *st, sqlite3_stmt *s, sqlite3 *db,
			 struct mailbox_info *mb_r)
{
	int rc = sqlite3_step(s);

	if (rc == SQLITE_ROW) {
		mb_r->id = sqlite3_column_int64(s, 0);
		mb_r->account_id = sqlite3_column_int64(s, 1);
		mb_r->name = col_strdup(s, 2);
		mb_r->uidvalidity = (uint32_t)sqlite3_column_int64(s, 3);
		mb_r->uidnext = (uint32_t)sqlite3_column_int64(s, 4);
		mb_r->highestmodseq = (uint64_t)sqlite3_column_int64(s, 5);
		mb_r->messages = sqlite3_column_int64(s, 6);
		mb_r->size = sqlite3_column_int64(s, 7);
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
	s = prep(db, MAILBOX_COLS "WHERE mb.account_id = ?1 AND mb.name = ?2");
	if (s) {
		sqlite3_bind_int64(s, 1, account_id);
		/* INBOX is case-insensitive (RFC 3501 sect. 5.1); other names are not. */
		bind_text(s, 2, str_ieq(name, STORE_INBOX) ? STORE_INBOX : name);
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
	s = prep(db, MAILBOX_COLS "WHERE mb.id = ?1");
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
	s = prep(db, "SELECT mm.uid, mm.flags, mm.modseq, m.size, mm.internaldate, m.id, m.path "
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
		set_error(error_r, xasprintf("store %s: cannot open database", st->db_path));
		return NULL;
	}
	if (db_exec(db, "BEGIN IMMEDIATE") < 0) {
		set_db_error(st, db, "beginning transaction", error_r);
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

	if (db_exec(t->db, "COMMIT") < 0) {
		set_db_error(t->st, t->db, "committing", error_r);
		(void)db_exec(t->db, "ROLLBACK");
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
	(void)db_exec(t->db, "ROLLBACK");
	store_db_put(t->st, t->db);
	free(t);
}

int store_txn_savepoint(struct store_txn *t)
{
	return db_exec(t->db, "SAVEPOINT op");
}

int store_txn_release(struct store_txn *t)
{
	return db_exec(t->db, "RELEASE op");
}

void store_txn_rollback_to(struct store_txn *t)
{
	/* ROLLBACK TO keeps the savepoint open: release it too. */
	(void)db_exec(t->db, "ROLLBACK TO op");
	(void)db_exec(t->db, "RELEASE op");
}

int store_txn_add_body(struct store_txn *t, const char *relpath, int64_t size,
		       int64_t *body_id_r, char **error_r)
{
	sqlite3_stmt *s;
	int ret = -1;

	if (strlen(relpath) >= sizeof(((struct msg_entry *)0)->path)) {
		set_error(error_r, xasprintf("store: body path %s too long", relpath));
		return -1;
	}
	s = prep(t->db, "INSERT INTO messages (path, size, refs) VALUES (?1, ?2, 0)");
	if (s) {
		bind_text(s, 1, relpath);
		sqlite3_bind_int64(s, 2, size);
		if (step_done(s) == 0) {
			*body_id_r = sqlite3_last_insert_rowid(t->db);
			ret = 0;
		}
	}
	if (ret < 0)
		set_db_error(t->st, t->db, "adding message body", error_r);
	sqlite3_finalize(s);
	return ret;
}

int store_txn_append(struct store_txn *t, int64_t mailbox_id, int64_t body_id, uint32_t flags,
		     int64_t internaldate, uint32_t *uid_r, char **error_r)
{
	sqlite3_stmt *s;
	int64_t uid = 0, modseq = 0;
	int rc;

	s = prep(t->db, "UPDATE mailboxes SET uidnext = uidnext + 1, "
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
		set_error(error_r, xasprintf("store: mailbox %lld: no such mailbox",
					     (long long)mailbox_id));
		return -1;
	}
	if (uid <= 0 || uid >= UINT32_MAX) {
		set_error(error_r, xasprintf("store: mailbox %lld: UIDs exhausted",
					     (long long)mailbox_id));
		return -1;
	}
	s = prep(t->db, "INSERT INTO mailbox_messages "
		 "(mailbox_id, uid, body_id, flags, modseq, internaldate) "
		 "VALUES (?1, ?2, ?3, ?4, ?5, ?6)");
	if (!s)
		goto dberr;
	sqlite3_bind_int64(s, 1, mailbox_id);
	sqlite3_bind_int64(s, 2, uid);
	sqlite3_bind_int64(s, 3, body_id);
	sqlite3_bind_int64(s, 4, flags);
	sqlite3_bind_int64(s, 5, modseq);
	sqlite3_bind_int64(s, 6, internaldate);
	rc = step_done(s);
	sqlite3_finalize(s);
	if (rc < 0)
		goto dberr;
	s = prep(t->db, "UPDATE messages SET refs = refs + 1 WHERE id = ?1");
	if (!s)
		goto dberr;
	sqlite3_bind_int64(s, 1, body_id);
	rc = step_done(s);
	sqlite3_finalize(s);
	if (rc < 0)
		goto dberr;
	*uid_r = (uint32_t)uid;
	return 0;
dberr:
	set_db_error(t->st, t->db, "appending message", error_r);
	return -1;
}

int store_txn_expunge(struct store_txn *t, int64_t mailbox_id, const uint32_t *uids, size_t n,
		      char ***unlink_r, size_t *nunlink_r, char **error_r)
{
	sqlite3_stmt *del = NULL, *deref = NULL, *gone = NULL, *bump = NULL;
	char **paths = NULL;
	size_t npaths = 0, removed = 0;
	int ret = -1;

	*unlink_r = NULL;
	*nunlink_r = 0;
	del = prep(t->db, "DELETE FROM mailbox_messages WHERE mailbox_id = ?1 AND uid = ?2 "
		   "RETURNING body_id");
	deref = prep(t->db, "UPDATE messages SET refs = refs - 1 WHERE id = ?1 RETURNING refs");
	gone = prep(t->db, "DELETE FROM messages WHERE id = ?1 RETURNING path");
	bump = prep(t->db, "UPDATE mailboxes SET highestmodseq = highestmodseq + 1 WHERE id = ?1");
	if (!del || !deref || !gone || !bump)
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
		if (collect_paths(gone, &paths, &npaths) < 0)
			goto out;
	}
	if (removed > 0) {
		sqlite3_bind_int64(bump, 1, mailbox_id);
		if (step_done(bump) < 0)
			goto out;
	}
	ret = 0;
out:
	if (ret < 0) {
		set_db_error(t->st, t->db, "expunging", error_r);
		for (size_t i = 0; i < npaths; i++)
			free(paths[i]);
		FREE(paths);
		npaths = 0;
	}
	sqlite3_finalize(del);
	sqlite3_finalize(deref);
	sqlite3_finalize(gone);
	sqlite3_finalize(bump);
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
	s = prep(t->db, "SELECT highestmodseq + 1 FROM mailboxes WHERE id = ?1");
	if (!s)
		goto out;
	sqlite3_bind_int64(s, 1, mailbox_id);
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW)
		modseq = sqlite3_column_int64(s, 0);
	sqlite3_finalize(s);
	s = NULL;
	if (rc == SQLITE_DONE) {
		set_error(error_r, xasprintf("store: mailbox %lld: no such mailbox",
					     (long long)mailbox_id));
		return -1;
	}
	if (rc != SQLITE_ROW)
		goto out;
	s = prep(t->db, "UPDATE mailbox_messages SET flags = (flags & ~?3) | ?4, modseq = ?5 "
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
		if (step_done(s) < 0)
			goto out;
		changed += sqlite3_changes(t->db);
	}
	sqlite3_finalize(s);
	s = NULL;
	if (changed > 0) {
		s = prep(t->db, "UPDATE mailboxes SET highestmodseq = ?2 WHERE id = ?1");
		if (!s)
			goto out;
		sqlite3_bind_int64(s, 1, mailbox_id);
		sqlite3_bind_int64(s, 2, modseq);
		if (step_done(s) < 0)
			goto out;
	}
	ret = 0;
out:
	if (ret < 0)
		set_db_error(t->st, t->db, "setting flags", error_r);
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
	s = prep(db, "SELECT 1 FROM messages WHERE path = ?1");
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
		bind_text(s, 1, rel);
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
	sqlite3_stmt *sel = prep(db, "SELECT path FROM trash WHERE path NOT IN "
				 "(SELECT path FROM messages)");
	sqlite3_stmt *del = prep(db, "DELETE FROM trash WHERE path = ?1");
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
		bind_text(del, 1, rel);
		if (step_done(del) < 0)
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
		set_db_error(t->st, t->db, "emptying trash", error_r);
		return -1;
	}
	return 0;
}

int store_empty_trash(struct store *st, char **error_r)
{
	sqlite3 *db = store_db_get(st);
	int removed = 0;

	if (!db) {
		set_error(error_r, xasprintf("store %s: cannot open database", st->db_path));
		return -1;
	}
	if (db_exec(db, "BEGIN IMMEDIATE") < 0 || trash_empty_db(st, db, &removed) < 0 ||
	    db_exec(db, "COMMIT") < 0) {
		set_db_error(st, db, "emptying trash", error_r);
		(void)db_exec(db, "ROLLBACK");
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
		set_error(error_r, xasprintf("store: cannot open %s: %s", msgdir,
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
		set_error(error_r, xasprintf("store %s: cannot open database", st->db_path));
		return -1;
	}
	for (int i = 0; i < 2; i++) {
		int n;

		if (!newest[i][0])
			continue;
		n = recover_day(st, db, newest[i]);
		if (n < 0) {
			set_db_error(st, db, "recovering", error_r);
			store_db_put(st, db);
			return -1;
		}
		total += n;
	}
	store_db_put(st, db);
	log_info("store: recover done removed=%d", total);
	return 0;
}
