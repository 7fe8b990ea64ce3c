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

/* POP3 maildrop lock: true if taken, false if another session holds it. */
bool server_pop3_lock(struct server *srv, int64_t account_id);
void server_pop3_unlock(struct server *srv, int64_t account_id);

#endif
