/* store.c - the mail store on SQLite: schema, migrations, the connection
 * pool and the statement helpers the other store files share.  Domains and
 * accounts are in store_account.c; mailboxes, messages, transactions and
 * crash recovery in store_message.c.  See store.h. */
#include "store/store.h"
#include "store/store_private.h"

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
	/* 2 -> 3: IMAP mailbox operations (store_mailbox.c): a deleted
	 * mailbox that still has inferiors stays as \Noselect; subscriptions
	 * are names, which need not exist (RFC 3501 6.3.6). */
	"ALTER TABLE mailboxes ADD COLUMN noselect INTEGER NOT NULL DEFAULT 0;"
	"CREATE TABLE subscriptions ("
	"  account_id INTEGER NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,"
	"  name TEXT NOT NULL,"
	"  PRIMARY KEY(account_id, name)) WITHOUT ROWID;",
	/* 3 -> 4: IMAP sessions (store_imap.c): keywords per message, the
	 * MODSEQ at which each UID was expunged (CONDSTORE/QRESYNC, and how
	 * sessions learn of other sessions' expunges), and an index to read
	 * what changed since a MODSEQ. */
	"ALTER TABLE mailbox_messages ADD COLUMN keywords TEXT;"
	"CREATE INDEX mailbox_messages_modseq ON mailbox_messages(mailbox_id, modseq);"
	"CREATE TABLE expunged ("
	"  mailbox_id INTEGER NOT NULL REFERENCES mailboxes(id) ON DELETE CASCADE,"
	"  uid INTEGER NOT NULL,"
	"  modseq INTEGER NOT NULL,"
	"  PRIMARY KEY(mailbox_id, uid)) WITHOUT ROWID;"
	"CREATE INDEX expunged_modseq ON expunged(mailbox_id, modseq);",
	/* 4 -> 5: full-text index for IMAP SEARCH BODY/TEXT: the decoded text
	 * of each body (rowid = messages.id), trigram-tokenised so that any
	 * substring of three or more characters is found in any script.
	 * messages.indexed says the text is complete; search scans the files
	 * of the others. */
	"ALTER TABLE messages ADD COLUMN indexed INTEGER NOT NULL DEFAULT 0;"
	"CREATE VIRTUAL TABLE msg_text USING fts5(text, tokenize='trigram');"
	"CREATE TRIGGER messages_text AFTER DELETE ON messages BEGIN"
	"  DELETE FROM msg_text WHERE rowid = OLD.id;"
	"END;",
	/* 5 -> 6: storage quota per account (IMAP QUOTA, SMTP 452/552): the
	 * limit (0 = none) and the bytes used, kept by triggers on every copy
	 * of a message in one of the account's mailboxes. */
	"ALTER TABLE accounts ADD COLUMN quota INTEGER NOT NULL DEFAULT 0;"
	"ALTER TABLE accounts ADD COLUMN used INTEGER NOT NULL DEFAULT 0;"
	"UPDATE accounts SET used = (SELECT coalesce(sum(m.size), 0) FROM mailbox_messages mm"
	"  JOIN messages m ON m.id = mm.body_id JOIN mailboxes mb ON mb.id = mm.mailbox_id"
	"  WHERE mb.account_id = accounts.id);"
	"CREATE TRIGGER quota_add AFTER INSERT ON mailbox_messages BEGIN"
	"  UPDATE accounts SET used = used + (SELECT size FROM messages WHERE id = NEW.body_id)"
	"  WHERE id = (SELECT account_id FROM mailboxes WHERE id = NEW.mailbox_id);"
	"END;"
	"CREATE TRIGGER quota_del AFTER DELETE ON mailbox_messages BEGIN"
	"  UPDATE accounts SET used = used - (SELECT size FROM messages WHERE id = OLD.body_id)"
	"  WHERE id = (SELECT account_id FROM mailboxes WHERE id = OLD.mailbox_id);"
	"END;",
	/* 6 -> 7: the outbound queue (store_queue.c): one row per message
	 * waiting to leave, holding a reference to its body (messages.refs),
	 * and one row per recipient not yet done, with its retry state.  A
	 * recipient row goes when it is delivered or bounced; the message row
	 * goes with its last recipient.  accounts.scram: the SCRAM-SHA-256
	 * keys (RFC 5802 StoredKey/ServerKey), made with the password.
	 * routes: per-domain next hops (yubin route), like a transport map. */
	"CREATE TABLE queue ("
	"  id INTEGER PRIMARY KEY AUTOINCREMENT,"
	"  qid TEXT NOT NULL,"
	"  body_id INTEGER NOT NULL REFERENCES messages(id),"
	"  skip INTEGER NOT NULL DEFAULT 0,"
	"  sender TEXT NOT NULL,"
	"  created INTEGER NOT NULL,"
	"  flags INTEGER NOT NULL DEFAULT 0,"
	"  envid TEXT,"
	"  ret INTEGER NOT NULL DEFAULT 0,"
	"  hold INTEGER NOT NULL DEFAULT 0);"
	"CREATE INDEX queue_qid ON queue(qid);"
	"CREATE TABLE queue_rcpt ("
	"  id INTEGER PRIMARY KEY AUTOINCREMENT,"
	"  queue_id INTEGER NOT NULL REFERENCES queue(id) ON DELETE CASCADE,"
	"  addr TEXT NOT NULL,"
	"  domain TEXT NOT NULL,"
	"  orcpt TEXT,"
	"  notify INTEGER NOT NULL DEFAULT 0,"
	"  attempts INTEGER NOT NULL DEFAULT 0,"
	"  next_try INTEGER NOT NULL,"
	"  last_try INTEGER NOT NULL DEFAULT 0,"
	"  last_reply TEXT,"
	"  warned INTEGER NOT NULL DEFAULT 0);"
	"CREATE INDEX queue_rcpt_due ON queue_rcpt(next_try);"
	"CREATE INDEX queue_rcpt_queue ON queue_rcpt(queue_id);"
	"CREATE TABLE routes ("
	"  domain TEXT PRIMARY KEY,"
	"  host TEXT NOT NULL,"
	"  port INTEGER NOT NULL,"
	"  mx INTEGER NOT NULL DEFAULT 0) WITHOUT ROWID;"
	"ALTER TABLE accounts ADD COLUMN scram TEXT;",
	/* 7 -> 8: local routing (store_alias.c); queue_rcpt.expand marks a
	 * list address waiting to be sent on to its members. */
	"CREATE TABLE aliases ("
	"  address TEXT NOT NULL,"
	"  target TEXT NOT NULL,"
	"  PRIMARY KEY (address, target)) WITHOUT ROWID;"
	"CREATE INDEX aliases_target ON aliases(target);"
	"CREATE TABLE lists ("
	"  address TEXT PRIMARY KEY,"
	"  owner TEXT NOT NULL) WITHOUT ROWID;"
	"CREATE TABLE list_members ("
	"  list TEXT NOT NULL,"
	"  member TEXT NOT NULL,"
	"  PRIMARY KEY (list, member)) WITHOUT ROWID;"
	"ALTER TABLE queue_rcpt ADD COLUMN expand INTEGER NOT NULL DEFAULT 0;",
	/* 8 -> 9: MTA-STS policies kept across restarts (RFC 8461 5.1) */
	"CREATE TABLE sts_policies ("
	"  domain TEXT PRIMARY KEY,"
	"  id TEXT NOT NULL,"
	"  expires INTEGER NOT NULL,"
	"  policy TEXT NOT NULL) WITHOUT ROWID;",
	/* 9 -> 10: deleting a body checks queue.body_id (a foreign key):
	 * without this index that is a scan of the whole queue per message.
	 * Bodies only queued (no mailbox copy) are never searched: indexed = 2
	 * keeps the full-text catch-up away from them. */
	"CREATE INDEX queue_body ON queue(body_id);"
	"UPDATE messages SET indexed = 2 WHERE indexed = 0 AND id IN (SELECT body_id FROM queue) "
	"  AND NOT EXISTS (SELECT 1 FROM mailbox_messages mm WHERE mm.body_id = messages.id);",
	/* 10 -> 11: JMAP Email/query sorts a mailbox by receivedAt. */
	"CREATE INDEX mailbox_messages_date ON mailbox_messages(mailbox_id, internaldate);",
	/* 11 -> 12: the JMAP change log (Email/changes, Mailbox/changes,
	 * queryChanges, push).  Triggers write it, so IMAP, SMTP delivery and
	 * JMAP changes all land in it in their own transaction.  kind 1: an
	 * email (obj = body id; mailbox = the copy's mailbox, whose counts
	 * change), 2: a mailbox.  op 0 created, 1 updated, 2 destroyed, as
	 * the account sees it (a second copy of a body is an update of the
	 * email).  accounts.jmap_email / jmap_mailbox: the account's last
	 * email / any change (the states; kept when old rows are pruned).
	 * The log keeps the last million changes of all accounts. */
	"CREATE TABLE jmap_changes ("
	"  seq INTEGER PRIMARY KEY AUTOINCREMENT,"
	"  account_id INTEGER NOT NULL,"
	"  kind INTEGER NOT NULL,"
	"  obj INTEGER NOT NULL,"
	"  mailbox INTEGER,"
	"  op INTEGER NOT NULL);"
	"CREATE INDEX jmap_changes_account ON jmap_changes(account_id, kind, seq);"
	"ALTER TABLE accounts ADD COLUMN jmap_email INTEGER NOT NULL DEFAULT 0;"
	"ALTER TABLE accounts ADD COLUMN jmap_mailbox INTEGER NOT NULL DEFAULT 0;"
	"CREATE TRIGGER jmap_changes_state AFTER INSERT ON jmap_changes BEGIN"
	"  UPDATE accounts SET jmap_mailbox = NEW.seq,"
	"    jmap_email = CASE WHEN NEW.kind = 1 THEN NEW.seq ELSE jmap_email END"
	"  WHERE id = NEW.account_id;"
	"END;"
	"CREATE TRIGGER jmap_changes_prune AFTER INSERT ON jmap_changes"
	"  WHEN NEW.seq % 1024 = 0 BEGIN"
	"  DELETE FROM jmap_changes WHERE seq <= NEW.seq - 1000000;"
	"END;"
	"CREATE TRIGGER jmap_email_add AFTER INSERT ON mailbox_messages BEGIN"
	"  INSERT INTO jmap_changes (account_id, kind, obj, mailbox, op)"
	"  SELECT mb.account_id, 1, NEW.body_id, NEW.mailbox_id,"
	"    CASE WHEN EXISTS (SELECT 1 FROM mailbox_messages x"
	"      JOIN mailboxes y ON y.id = x.mailbox_id"
	"      WHERE x.body_id = NEW.body_id AND y.account_id = mb.account_id"
	"      AND NOT (x.mailbox_id = NEW.mailbox_id AND x.uid = NEW.uid)) THEN 1 ELSE 0 END"
	"  FROM mailboxes mb WHERE mb.id = NEW.mailbox_id;"
	"END;"
	"CREATE TRIGGER jmap_email_del AFTER DELETE ON mailbox_messages BEGIN"
	"  INSERT INTO jmap_changes (account_id, kind, obj, mailbox, op)"
	"  SELECT mb.account_id, 1, OLD.body_id, OLD.mailbox_id,"
	"    CASE WHEN EXISTS (SELECT 1 FROM mailbox_messages x"
	"      JOIN mailboxes y ON y.id = x.mailbox_id"
	"      WHERE x.body_id = OLD.body_id AND y.account_id = mb.account_id)"
	"    THEN 1 ELSE 2 END"
	"  FROM mailboxes mb WHERE mb.id = OLD.mailbox_id;"
	"END;"
	"CREATE TRIGGER jmap_email_upd AFTER UPDATE OF flags, keywords ON mailbox_messages"
	"  WHEN OLD.flags IS NOT NEW.flags OR OLD.keywords IS NOT NEW.keywords BEGIN"
	"  INSERT INTO jmap_changes (account_id, kind, obj, mailbox, op)"
	"  SELECT mb.account_id, 1, NEW.body_id, NEW.mailbox_id, 1"
	"  FROM mailboxes mb WHERE mb.id = NEW.mailbox_id;"
	"END;"
	"CREATE TRIGGER jmap_mailbox_add AFTER INSERT ON mailboxes BEGIN"
	"  INSERT INTO jmap_changes (account_id, kind, obj, op)"
	"  VALUES (NEW.account_id, 2, NEW.id, 0);"
	"END;"
	"CREATE TRIGGER jmap_mailbox_del AFTER DELETE ON mailboxes BEGIN"
	"  INSERT INTO jmap_changes (account_id, kind, obj, op)"
	"  VALUES (OLD.account_id, 2, OLD.id, 2);"
	"END;"
	"CREATE TRIGGER jmap_mailbox_upd AFTER UPDATE OF name, special_use, noselect ON mailboxes"
	"  WHEN OLD.name IS NOT NEW.name OR OLD.special_use IS NOT NEW.special_use"
	"  OR OLD.noselect IS NOT NEW.noselect BEGIN"
	"  INSERT INTO jmap_changes (account_id, kind, obj, op)"
	"  VALUES (NEW.account_id, 2, NEW.id, 1);"
	"END;"
	"CREATE TRIGGER jmap_subscribe AFTER INSERT ON subscriptions BEGIN"
	"  INSERT INTO jmap_changes (account_id, kind, obj, op)"
	"  SELECT NEW.account_id, 2, id, 1 FROM mailboxes"
	"  WHERE account_id = NEW.account_id AND name = NEW.name;"
	"END;"
	"CREATE TRIGGER jmap_unsubscribe AFTER DELETE ON subscriptions BEGIN"
	"  INSERT INTO jmap_changes (account_id, kind, obj, op)"
	"  SELECT OLD.account_id, 2, id, 1 FROM mailboxes"
	"  WHERE account_id = OLD.account_id AND name = OLD.name;"
	"END;",
	/* 12 -> 13: JMAP threads, per account.  email_threads: an email's
	 * thread (the body id of the thread's first email); thread_ids: the
	 * 64-bit hashes of the Message-IDs seen in the thread (its emails'
	 * own and those they refer to), so a reply or a late parent joins it.
	 * Filled after delivery by the first JMAP request that needs threads
	 * (jmap_mail.c), from the change log; accounts.jmap_threaded is the
	 * log position done (-1: every email of the account still to do). */
	"CREATE TABLE email_threads ("
	"  account_id INTEGER NOT NULL,"
	"  body_id INTEGER NOT NULL,"
	"  thread_id INTEGER NOT NULL,"
	"  PRIMARY KEY (account_id, body_id)) WITHOUT ROWID;"
	"CREATE INDEX email_threads_thread ON email_threads(account_id, thread_id);"
	"CREATE TABLE thread_ids ("
	"  account_id INTEGER NOT NULL,"
	"  hash INTEGER NOT NULL,"
	"  thread_id INTEGER NOT NULL,"
	"  PRIMARY KEY (account_id, hash)) WITHOUT ROWID;"
	"ALTER TABLE accounts ADD COLUMN jmap_threaded INTEGER NOT NULL DEFAULT -1;",
	/* 13 -> 14: Email/query sorts on sentAt, from and subject in SQL:
	 * keys written with the thread (the same header read), so threading
	 * starts again to fill them. */
	"DELETE FROM email_threads; DELETE FROM thread_ids;"
	"UPDATE accounts SET jmap_threaded = -1;"
	"ALTER TABLE email_threads ADD COLUMN sent_at INTEGER;"
	"ALTER TABLE email_threads ADD COLUMN from_key TEXT;"
	"ALTER TABLE email_threads ADD COLUMN subject_key TEXT;",
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

void store_set_error(char **error_r, char *msg)
{
	if (error_r)
		*error_r = msg;
	else
		free(msg);
}

void store_set_db_error(struct store *st, sqlite3 *db, const char *what, char **error_r)
{
	store_set_error(error_r, db_error(st, db, what));
}

/* ---- connections ---- */

int store_exec(sqlite3 *db, const char *sql)
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
		store_set_error(error_r, xasprintf("store %s: cannot open: %s", st->db_path,
					     db ? sqlite3_errmsg(db) : sqlite3_errstr(rc)));
		sqlite3_close(db);
		return NULL;
	}
	sqlite3_busy_timeout(db, STORE_BUSY_MS);
	sqlite3_extended_result_codes(db, 1);
	if (store_exec(db, "PRAGMA journal_mode=WAL") < 0 ||
	    store_exec(db, "PRAGMA synchronous=FULL") < 0 ||
	    store_exec(db, "PRAGMA foreign_keys=ON") < 0 ||
	    store_exec(db, "PRAGMA mmap_size=1073741824") < 0) {
		store_set_db_error(st, db, "setting pragmas", error_r);
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
		(void)store_exec(db, "ROLLBACK");
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

sqlite3_stmt *store_prep(sqlite3 *db, const char *sql)
{
	sqlite3_stmt *s = NULL;

	if (sqlite3_prepare_v2(db, sql, -1, &s, NULL) != SQLITE_OK) {
		sqlite3_finalize(s);
		return NULL;
	}
	return s;
}

void store_bind_text(sqlite3_stmt *s, int i, const char *v)
{
	if (v)
		sqlite3_bind_text(s, i, v, -1, SQLITE_TRANSIENT);
	else
		sqlite3_bind_null(s, i);
}

char *store_col_strdup(sqlite3_stmt *s, int i)
{
	const unsigned char *t = sqlite3_column_text(s, i);

	return t ? xstrdup((const char *)t) : NULL;
}

/* Run a statement to completion; 0 ok, -1 error. */
int store_step_done(sqlite3_stmt *s)
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
		store_set_error(error_r, xasprintf("store: cannot create directory %s: %s", path,
					     strerror(errno)));
		return -1;
	}
	return 0;
}

static int migrate(struct store *st, sqlite3 *db, char **error_r)
{
	sqlite3_stmt *s;
	int version = 0;

	if (store_exec(db, "BEGIN IMMEDIATE") < 0) {
		store_set_db_error(st, db, "starting migration", error_r);
		return -1;
	}
	s = store_prep(db, "PRAGMA user_version");
	if (s && sqlite3_step(s) == SQLITE_ROW)
		version = sqlite3_column_int(s, 0);
	sqlite3_finalize(s);
	if (version > (int)ARRAY_LEN(migrations)) {
		(void)store_exec(db, "ROLLBACK");
		store_set_error(error_r, xasprintf("store %s: schema version %d is newer than this "
					     "program (%zu): upgrade yubin", st->db_path, version,
					     ARRAY_LEN(migrations)));
		return -1;
	}
	for (; version < (int)ARRAY_LEN(migrations); version++) {
		char pragma[64];

		snprintf(pragma, sizeof(pragma), "PRAGMA user_version=%d", version + 1);
		if (store_exec(db, migrations[version]) < 0 || store_exec(db, pragma) < 0) {
			char what[64];

			snprintf(what, sizeof(what), "migrating schema to version %d",
				 version + 1);
			store_set_db_error(st, db, what, error_r);
			(void)store_exec(db, "ROLLBACK");
			return -1;
		}
		log_info("store: schema migrated to version %d", version + 1);
	}
	if (store_exec(db, "COMMIT") < 0) {
		store_set_db_error(st, db, "committing migration", error_r);
		(void)store_exec(db, "ROLLBACK");
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

bool store_valid_domain(const char *name)
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
char *store_split_address(const char *address, const char **domain_r)
{
	char *a, *at;

	if (strlen(address) > STORE_ADDRESS_MAX)
		return NULL;
	a = xstrdup(address);
	str_lower(a);
	at = strrchr(a, '@');
	if (!at || at == a || !store_valid_domain(at + 1)) {
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
