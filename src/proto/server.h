/* server.h - what every protocol session can reach: the daemon context.
 *
 * One struct server per yubind process, created by src/yubind/ and handed
 * to each connection as c->server.  Protocols only read it, except for the
 * small shared tables below that live on the loop thread. */
#ifndef YUBIN_PROTO_SERVER_H
#define YUBIN_PROTO_SERVER_H

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

struct conf;
struct store;
struct store_writer;
struct conn;
struct job;
struct imap_cache;

/* A small fixed table of recent events keyed by a string (an IP address or
 * an account): failed logins, POP-before-SMTP grants.  Bounded memory: a
 * new key takes its slot from whatever was there. */
#define SERVER_MARKS 1024
#define SERVER_MARK_KEY 330
struct server_mark {
	char key[SERVER_MARK_KEY];
	unsigned n;
	uint64_t t;                 /* ms (now_ms) of the last event */
};

/* What a "delivered" notification (RFC 3461 NOTIFY=SUCCESS) needs; the
 * receiver copies it. */
struct delivered_report {
	const char *qid;
	const char *path;           /* the body file, store-relative */
	int64_t skip;               /* the Return-Path line, not quoted */
	const char *sender;         /* not "" */
	const char *envid;          /* or NULL */
	int ret;                    /* DSN_RET_* */
	const char *const *rcpts;
	const char *const *orcpts;  /* entries may be NULL */
	size_t nrcpts;
	bool expanded;              /* a list sent it on: "expanded", not "delivered" */
};

struct server {
	uv_loop_t *loop;
	const struct conf *cfg;
	struct store *store;
	struct store_writer *writer;
	bool shutting_down;
	/* POP3: account ids with a session in TRANSACTION state (one at a
	 * time per mailbox).  Loop thread only. */
	int64_t *pop3_locked;
	size_t pop3_nlocked, pop3_caplocked;
	/* SMTP message data held in memory by all sessions (bytes). */
	size_t smtp_data_mem;
	/* IMAP: sessions watching a mailbox (server_watch), and the first UID
	 * of each mailbox not yet announced as \Recent to a session.  Loop
	 * thread only; not durable (after a restart nothing is \Recent). */
	struct server_watch *watches;
	size_t nwatches, capwatches;
	/* Told of every server_mailbox_changed (JMAP's background threader). */
	void (*mail_changed)(struct server *srv, void *arg);
	void *mail_changed_arg;
	/* The same per account (server_account_watch): JMAP push. */
	struct server_watch *acct_watches;
	size_t nacct_watches, capacct_watches;
	struct server_recent *recent;
	size_t nrecent, caprecent;
	/* IMAP mailbox snapshots (proto/imap/imap_cache.c). */
	struct imap_cache *imap_cache;
	/* Per-user and per-IP IMAP session counts. */
	struct server_count *imap_counts;
	size_t nimap_counts, capimap_counts;
	/* The outbound queue manager (src/mta), told when a delivery queued
	 * mail for remote recipients; NULL in tests without one. */
	void (*queue_kick)(struct server *srv);
	/* Local recipients that asked for NOTIFY=SUCCESS got their copy: the
	 * queue manager sends the sender a "delivered" notification. */
	void (*report_delivered)(struct server *srv, const struct delivered_report *r);
	void *mta;
	struct server_mark *auth_fails;     /* SERVER_MARKS, allocated on first use */
	struct server_mark *relay_ok;       /* POP-before-SMTP */
	/* Password checks waiting for a slot (server_auth_job). */
	struct job *auth_head, *auth_tail;
	size_t auth_running;
};

/* Run work(arg) on a libuv worker thread, then done(arg) on the loop
 * thread.  The connection is held (conn_hold) until done() returns; done()
 * must check conn_is_closed(c) before touching the session.  Pass c = NULL
 * for work not tied to a connection. */
void server_job(struct server *srv, struct conn *c, void (*work)(void *arg),
		void (*done)(void *arg), void *arg);

/* The same for password verification (argon2id: 64 MiB and tens of ms
 * each): at most SERVER_AUTH_PARALLEL run at once, the rest wait in order,
 * so a burst of logins (or of wrong passwords) costs queueing time, not
 * memory.  If the connection has closed by the time a queued check would
 * start, work() is skipped and done() still runs. */
#define SERVER_AUTH_PARALLEL 2
void server_auth_job(struct server *srv, struct conn *c, void (*work)(void *arg),
		     void (*done)(void *arg), void *arg);

/* Plaintext passwords allowed on this connection right now (TLS active, or
 * the config allows it for loopback/always). */
bool server_plaintext_ok(const struct server *srv, const struct conn *c);

/* Failed logins (SMTP AUTH, POP3 and IMAP logins): record the
 * outcome of a login from ip for account (NULL when unknown);
 * server_auth_failed returns how long to hold back the reply to this
 * failure -- 0 for the first, then doubling per
 * recent failure (15 minutes) from the same IP or for the same account, up
 * to auth_fail_delay_max.  A success clears the account's count (not the
 * IP's: one good password does not buy a guesser more tries). */
uint64_t server_auth_failed(struct server *srv, const char *ip, const char *account);
void server_auth_succeeded(struct server *srv, const char *ip, const char *account);
/* Run fire(c, line) after delay_ms with c held and paused (a failed
 * login's delayed answer); not at all if c closes first.  line is copied. */
void server_delay(struct server *srv, struct conn *c, uint64_t delay_ms,
		  void (*fire)(struct conn *c, const char *line), const char *line);

/* POP-before-SMTP (pop_before_smtp > 0): a POP3/IMAP login from ip lets
 * it relay for that long. */
void server_relay_grant(struct server *srv, const char *ip);
bool server_relay_granted(struct server *srv, const char *ip);

/* POP3 maildrop lock: true if taken, false if another session holds it. */
bool server_pop3_lock(struct server *srv, int64_t account_id);
void server_pop3_unlock(struct server *srv, int64_t account_id);

/* Mailbox change notification (IMAP IDLE, and every selected session).
 * A session watches the mailbox it has selected; whoever changes a
 * mailbox (a delivery, an IMAP STORE/EXPUNGE/APPEND/COPY) calls
 * server_mailbox_changed once its change is durable, and every watcher's
 * cb runs (on the loop thread, before server_mailbox_changed returns). */
struct server_watch {
	int64_t mailbox_id;
	void (*cb)(void *arg);
	void *arg;
};
void server_watch(struct server *srv, int64_t mailbox_id, void (*cb)(void *arg), void *arg);
void server_unwatch(struct server *srv, int64_t mailbox_id, void *arg);
void server_mailbox_changed(struct server *srv, int64_t mailbox_id);
/* The same, except for the watcher whose arg is self (a session that has
 * applied its own change already). */
void server_mailbox_changed_by(struct server *srv, int64_t mailbox_id, const void *self);
void server_watch_free(struct server *srv);
/* Account-level changes that no mailbox watch sees: a mailbox created,
 * deleted or renamed (IMAP CREATE/DELETE/RENAME, JMAP Mailbox/set).  The
 * changer calls server_account_changed once the change is durable; every
 * watcher of the account runs (loop thread, before it returns). */
void server_account_watch(struct server *srv, int64_t account_id, void (*cb)(void *arg),
			  void *arg);
void server_account_unwatch(struct server *srv, int64_t account_id, void *arg);
void server_account_changed(struct server *srv, int64_t account_id);

/* \Recent (RFC 3501): returns the first UID of mailbox_id that no session
 * has been told of yet, and moves that mark to uidnext.  A mailbox never
 * claimed since start-up has its mark at uidnext (nothing recent). */
struct server_recent {
	int64_t mailbox_id;
	uint32_t first;
};
uint32_t server_recent_claim(struct server *srv, int64_t mailbox_id, uint32_t uidnext);
/* A message was added with this UID (delivery, APPEND, COPY): a mailbox
 * without a mark yet gets it there, so that the message is \Recent for
 * the next session that claims. */
void server_recent_note(struct server *srv, int64_t mailbox_id, uint32_t uid);

/* Session counters keyed by a string (IMAP sessions per user and per IP):
 * server_count_add returns the new count (delta +1 or -1). */
struct server_count {
	char *key;
	int n;
};
int server_count_add(struct server *srv, const char *key, int delta);

#endif
