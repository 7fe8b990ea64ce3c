/* pop3_session.c - the POP3 server session.
 *
 * States: AUTHORIZATION (USER/PASS, APOP, AUTH PLAIN, STLS, CAPA, QUIT),
 * TRANSACTION (after a login, the maildrop lock and the INBOX snapshot),
 * UPDATE (QUIT in TRANSACTION: one store_op expunges the deleted messages
 * and marks the retrieved ones \Seen; the reply waits for the commit).
 *
 * Blocking work runs off the loop: password checks and the snapshot in
 * server_job(), message files in pieces of XFER_CHUNK bytes read on worker
 * threads, writes through the store writer.  The connection is paused
 * meanwhile so that pipelined commands wait their turn.  Long multi-line
 * replies (RETR, TOP, LIST, UIDL) are produced as the client reads them:
 * more is queued only while less than STREAM_LOW bytes are pending, then
 * on_writable continues. */
#include "proto/pop3/pop3_session.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/rand.h>

#include "auth/auth.h"
#include "core/buf.h"
#include "core/conf.h"
#include "core/log.h"
#include "core/util.h"
#include "mail/dotstuff.h"
#include "proto/pop3/pop3_parser.h"
#include "proto/server.h"
#include "store/store.h"
#include "store/writer.h"

#define POP3_MAX_ERRORS 10              /* invalid commands in a row */
#define POP3_MAX_USER 320               /* longest user name (address) */
#define XFER_CHUNK (64 * 1024)          /* message file read size */
#define XFER_OUT_MAX (2 * XFER_CHUNK + 16) /* dot-stuffing at most doubles a piece */
#define STREAM_LOW (128 * 1024)         /* queue more output only below this */

#define MSG_DELETED 0x01
#define MSG_RETRIEVED 0x02

#define ERR_PLAINTEXT "-ERR [AUTH] Plaintext authentication disallowed without TLS (use STLS)\r\n"
#define ERR_AUTH_FAILED "-ERR [AUTH] Authentication failed\r\n"

enum pop3_state {
	ST_AUTHORIZATION = 1 << 0,
	ST_TRANSACTION = 1 << 1,
};

enum listing { LISTING_NONE, LISTING_LIST, LISTING_UIDL };

struct pop3_xfer;

struct pop3_session {
	struct conn *c;
	struct server *srv;
	enum pop3_state state;
	bool sasl_wait;         /* AUTH PLAIN sent "+ ": next line is the response */
	bool updating;          /* the UPDATE store_op is in flight */
	int errors;             /* invalid commands in a row */
	char *timestamp;        /* APOP "<pid.random.time@host>" */
	char *user;             /* USER name waiting for PASS */

	/* TRANSACTION */
	char *login;            /* canonical address of the account */
	int64_t account_id;
	int64_t inbox_id;
	bool locked;            /* we hold server_pop3_lock(account_id) */
	uint32_t uidvalidity;
	struct msg_entry *msgs; /* INBOX snapshot */
	size_t nmsgs;
	uint8_t *mflags;        /* MSG_* per message */

	/* Streaming replies. */
	struct pop3_xfer *xfer; /* RETR/TOP in progress */
	enum listing listing;   /* LIST/UIDL in progress */
	size_t list_pos;
	bool waiting_writable;

	/* For the disconnect log. */
	uint64_t n_retr, n_top, n_dele, n_deleted, bytes;
};

/* ---- helpers ------------------------------------------------------------ */

static const struct conf *cfg(const struct pop3_session *s)
{
	return s->srv->cfg;
}

/* Copy a client-supplied name for the log: printable ASCII only, capped. */
static void log_safe(const char *in, char *out, size_t outsz)
{
	size_t i = 0;
	for (; in[i] != '\0' && i + 1 < outsz; i++) {
		unsigned char ch = (unsigned char)in[i];
		out[i] = ch > 0x20 && ch < 0x7f ? (char)ch : '?';
	}
	out[i] = '\0';
}

static void reply(struct pop3_session *s, const char *text)
{
	conn_write(s->c, text, strlen(text));
}

/* An invalid command: reply, and after POP3_MAX_ERRORS in a row give up. */
static void bad_command(struct pop3_session *s, const char *msg)
{
	conn_printf(s->c, "-ERR %s\r\n", msg);
	if (++s->errors >= POP3_MAX_ERRORS) {
		log_info("conn=%s pop3: too many errors from [%s]", s->c->idstr, s->c->peer);
		reply(s, "-ERR Too many errors\r\n");
		conn_close(s->c, "too many errors");
	}
}

static void count_auth_failure(struct pop3_session *s)
{
	if (++s->errors >= POP3_MAX_ERRORS) {
		reply(s, "-ERR Too many errors\r\n");
		conn_close(s->c, "too many errors");
	}
}

/* A failed login's answer, after its delay (server_delay). */
static void auth_fail_fire(struct conn *c, const char *line)
{
	struct pop3_session *s = c->proto;
	reply(s, line);
	count_auth_failure(s);
	if (!conn_is_closed(c)) {
		conn_resume(c);
		conn_flush(c);
	}
}

static void unlock_mailbox(struct pop3_session *s)
{
	if (s->locked) {
		server_pop3_unlock(s->srv, s->account_id);
		s->locked = false;
	}
}

static size_t visible_count(const struct pop3_session *s, int64_t *size_r)
{
	size_t n = 0;
	int64_t size = 0;
	for (size_t i = 0; i < s->nmsgs; i++) {
		if (s->mflags[i] & MSG_DELETED)
			continue;
		n++;
		size += s->msgs[i].size;
	}
	if (size_r)
		*size_r = size;
	return n;
}

/* Message number -> index, or an error reply (and -1). */
static int find_msg(struct pop3_session *s, uint32_t num, size_t *idx_r)
{
	if (num == 0 || num > s->nmsgs) {
		bad_command(s, "No such message");
		return -1;
	}
	if (s->mflags[num - 1] & MSG_DELETED) {
		char msg[64];
		snprintf(msg, sizeof msg, "Message %" PRIu32 " already deleted", num);
		bad_command(s, msg);
		return -1;
	}
	*idx_r = num - 1;
	return 0;
}

/* Wait for the client to read what is queued, with a deadline so that a
 * client that stops reading does not hold the session forever. */
static void wait_writable(struct pop3_session *s)
{
	s->waiting_writable = true;
	if (cfg(s)->pop3_timeout > 0)
		conn_set_deadline(s->c, (uint64_t)cfg(s)->pop3_timeout);
}

/* ---- login ---------------------------------------------------------------- */

struct auth_job {
	struct pop3_session *s;
	const char *method;     /* "PASS", "APOP", "PLAIN" (static) */
	char *address;
	char *password;         /* wiped */
	size_t pwlen;
	char *digest;           /* APOP */
	struct account acct;
	int rc;
};

struct load_job {
	struct pop3_session *s;
	const char *method;
	int64_t inbox_id;
	uint32_t uidvalidity;
	struct msg_entry *msgs;
	size_t n;
	int rc;
};

static void load_work(void *arg)
{
	struct load_job *j = arg;
	struct store *st = j->s->srv->store;
	struct mailbox_info mb;

	memset(&mb, 0, sizeof mb);
	int r = store_mailbox_get(st, j->inbox_id, &mb);
	if (r != 1) {
		j->rc = -1;
		return;
	}
	j->uidvalidity = mb.uidvalidity;
	mailbox_info_free(&mb);
	j->rc = store_mailbox_messages(st, j->inbox_id, &j->msgs, &j->n);
}

static void load_done(void *arg)
{
	struct load_job *j = arg;
	struct pop3_session *s = j->s;
	struct conn *c = s->c;

	if (conn_is_closed(c)) {
		free(j->msgs);
		free(j);
		return;
	}
	if (j->rc < 0) {
		log_error("conn=%s pop3: cannot read the INBOX of user=%s; check the store",
			  c->idstr, s->login);
		unlock_mailbox(s);
		FREE(s->login);
		free(j->msgs);
		reply(s, "-ERR [SYS/TEMP] Cannot open the mailbox, try again later\r\n");
	} else {
		s->state = ST_TRANSACTION;
		s->uidvalidity = j->uidvalidity;
		s->msgs = j->msgs;
		s->nmsgs = j->n;
		s->mflags = xcalloc(j->n ? j->n : 1, 1);
		s->errors = 0;
		server_relay_grant(s->srv, c->peer);   /* POP-before-SMTP, when enabled */
		log_info("conn=%s pop3: login user=%s method=%s tls=%s", c->idstr, s->login,
			 j->method, c->tls ? "yes" : "no");
		conn_printf(c, "+OK Logged in, %zu messages\r\n", s->nmsgs);
	}
	free(j);
	conn_resume(c);
}

static void auth_work(void *arg)
{
	struct auth_job *j = arg;
	struct store *st = j->s->srv->store;

	if (j->digest)
		j->rc = auth_apop(st, j->address, j->s->timestamp, j->digest, &j->acct);
	else
		j->rc = auth_login(st, j->address, j->password, &j->acct);
}

static void auth_job_free(struct auth_job *j)
{
	if (j->password)
		auth_wipe(j->password, j->pwlen + 1);
	free(j->address);
	free(j->digest);
	if (j->rc == 1)
		account_free(&j->acct);
	free(j);
}

static void auth_done(void *arg)
{
	struct auth_job *j = arg;
	struct pop3_session *s = j->s;
	struct conn *c = s->c;

	if (conn_is_closed(c)) {
		auth_job_free(j);
		return;
	}
	if (j->rc == 0) {
		char user[POP3_MAX_USER + 1];
		log_safe(j->address, user, sizeof user);
		uint64_t delay = server_auth_failed(s->srv, c->peer, user);
		log_info("conn=%s pop3: auth failed user=%s method=%s from [%s]%s", c->idstr, user,
			 j->method, c->peer, delay ? " (reply delayed)" : "");
		if (delay) {
			auth_job_free(j);
			server_delay(s->srv, c, delay, auth_fail_fire, ERR_AUTH_FAILED);
			return;
		}
		reply(s, ERR_AUTH_FAILED);
		count_auth_failure(s);
	} else if (j->rc < 0) {
		log_error("conn=%s pop3: authentication unavailable (store error)", c->idstr);
		reply(s, "-ERR [SYS/TEMP] Authentication temporarily unavailable\r\n");
	} else if (!server_pop3_lock(s->srv, j->acct.id)) {
		log_info("conn=%s pop3: mailbox in use user=%s", c->idstr, j->acct.address);
		reply(s, "-ERR [IN-USE] Mailbox is locked by another POP3 session\r\n");
	} else {
		server_auth_succeeded(s->srv, c->peer, j->acct.address);
		s->locked = true;
		s->account_id = j->acct.id;
		s->inbox_id = j->acct.inbox_id;
		s->login = xstrdup(j->acct.address);
		struct load_job *l = xcalloc(1, sizeof *l);
		l->s = s;
		l->method = j->method;
		l->inbox_id = s->inbox_id;
		auth_job_free(j);
		/* Still paused: the snapshot is loaded before the reply. */
		server_job(s->srv, c, load_work, load_done, l);
		return;
	}
	auth_job_free(j);
	if (!conn_is_closed(c))
		conn_resume(c);
}

/* Takes ownership of address, password and digest. */
static void start_auth(struct pop3_session *s, const char *method, char *address,
		       char *password, size_t pwlen, char *digest)
{
	struct auth_job *j = xcalloc(1, sizeof *j);
	j->s = s;
	j->method = method;
	j->address = address;
	j->password = password;
	j->pwlen = pwlen;
	j->digest = digest;
	FREE(s->user);
	conn_pause(s->c);
	server_auth_job(s->srv, s->c, auth_work, auth_done, j);
}

/* ---- RETR / TOP streaming ----------------------------------------------- */

struct pop3_xfer {
	struct pop3_session *s;
	uint32_t msgno;
	int64_t size;           /* octets announced in +OK */
	bool top;
	uint32_t top_lines;
	char path[PATH_MAX];
	int fd;
	int err;                /* errno of a failed open/read, on the worker */
	bool eof;               /* everything (and the final ".") is in out */
	bool started;           /* "+OK" sent */
	bool bol;               /* dot-stuffing: at the beginning of a line */
	/* TOP: where we are in the message. */
	bool in_body;
	bool line_nonempty;
	uint32_t body_lines;
	char *raw;              /* one piece as read */
	struct buf out;         /* the piece dot-stuffed, ready to send */
};

static void xfer_free(struct pop3_xfer *x)
{
	if (x == NULL)
		return;
	if (x->fd >= 0)
		close(x->fd);
	free(x->raw);
	buf_free(&x->out);
	free(x);
}

/* TOP: how much of p[0..n) to send; sets x->eof once the header, the blank
 * line and top_lines body lines have gone. */
static size_t top_cut(struct pop3_xfer *x, const char *p, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		char ch = p[i];
		if (!x->in_body) {
			if (ch == '\n') {
				if (!x->line_nonempty) {
					x->in_body = true;
					if (x->top_lines == 0) {
						x->eof = true;
						return i + 1;
					}
				}
				x->line_nonempty = false;
			} else if (ch != '\r') {
				x->line_nonempty = true;
			}
		} else if (ch == '\n' && ++x->body_lines >= x->top_lines) {
			x->eof = true;
			return i + 1;
		}
	}
	return n;
}

/* Worker thread: read the next piece and dot-stuff it into x->out. */
static void xfer_work(void *arg)
{
	struct pop3_xfer *x = arg;

	if (x->fd < 0) {
		x->fd = open(x->path, O_RDONLY | O_CLOEXEC);
		if (x->fd < 0) {
			x->err = errno;
			return;
		}
	}
	ssize_t n;
	do
		n = read(x->fd, x->raw, XFER_CHUNK);
	while (n < 0 && errno == EINTR);
	if (n < 0) {
		x->err = errno;
		return;
	}
	size_t len = (size_t)n;
	if (len == 0)
		x->eof = true;
	else if (x->top)
		len = top_cut(x, x->raw, len);
	int r = dot_encode_chunk(x->raw, len, &x->bol, &x->out);
	if (r == 0 && x->eof) {
		if (!x->bol)
			r = buf_append(&x->out, "\r\n", 2);
		if (r == 0)
			r = buf_append(&x->out, ".\r\n", 3);
	}
	/* XFER_OUT_MAX holds any dot-stuffed piece. */
	if (r < 0)
		x->err = ENOBUFS;
}

static void xfer_done(void *arg);

static void xfer_next(struct pop3_session *s)
{
	server_job(s->srv, s->c, xfer_work, xfer_done, s->xfer);
}

static void xfer_done(void *arg)
{
	struct pop3_xfer *x = arg;
	struct pop3_session *s = x->s;
	struct conn *c = s->c;

	if (conn_is_closed(c)) {
		s->xfer = NULL;
		xfer_free(x);
		return;
	}
	if (x->err) {
		log_error("conn=%s pop3: cannot read message file %s: %s", c->idstr, x->path,
			  strerror(x->err));
		s->xfer = NULL;
		bool started = x->started;
		xfer_free(x);
		if (started) {
			/* The multi-line reply cannot be finished correctly. */
			conn_close(c, "message file read error");
			return;
		}
		reply(s, "-ERR [SYS/TEMP] Message unavailable\r\n");
		conn_resume(c);
		return;
	}
	if (!x->started) {
		x->started = true;
		conn_printf(c, "+OK %" PRId64 " octets\r\n", x->size);
	}
	s->bytes += x->out.len;
	if (conn_write(c, x->out.data, x->out.len) < 0)
		return;
	buf_reset(&x->out);
	if (x->eof) {
		if (x->top) {
			s->n_top++;
		} else {
			s->n_retr++;
			s->mflags[x->msgno - 1] |= MSG_RETRIEVED;
		}
		s->xfer = NULL;
		xfer_free(x);
		s->errors = 0;
		conn_resume(c);
		return;
	}
	conn_flush(c);
	if (conn_is_closed(c))
		return;
	if (conn_out_pending(c) >= STREAM_LOW)
		wait_writable(s);
	else
		xfer_next(s);
}

static void start_xfer(struct pop3_session *s, size_t idx, bool top, uint32_t lines)
{
	struct pop3_xfer *x = xcalloc(1, sizeof *x);
	x->s = s;
	x->msgno = (uint32_t)idx + 1;
	x->size = s->msgs[idx].size;
	x->top = top;
	x->top_lines = lines;
	x->fd = -1;
	x->bol = true;
	x->raw = xmalloc(XFER_CHUNK);
	buf_init(&x->out, XFER_OUT_MAX);
	store_msg_path(s->srv->store, s->msgs[idx].path, x->path, sizeof x->path);
	s->xfer = x;
	conn_pause(s->c);
	xfer_next(s);
}

/* ---- LIST / UIDL streaming ---------------------------------------------- */

static void list_continue(struct pop3_session *s)
{
	struct conn *c = s->c;

	while (s->list_pos < s->nmsgs) {
		size_t i = s->list_pos++;
		if (s->mflags[i] & MSG_DELETED)
			continue;
		int r;
		if (s->listing == LISTING_LIST)
			r = conn_printf(c, "%zu %" PRId64 "\r\n", i + 1, s->msgs[i].size);
		else
			r = conn_printf(c, "%zu %" PRIu32 ".%" PRIu32 "\r\n", i + 1,
					s->uidvalidity, s->msgs[i].uid);
		if (r < 0 || conn_is_closed(c))
			return;
		if (conn_out_pending(c) >= STREAM_LOW) {
			conn_flush(c);
			if (conn_is_closed(c))
				return;
			if (conn_out_pending(c) >= STREAM_LOW) {
				wait_writable(s);
				return;
			}
		}
	}
	reply(s, ".\r\n");
	s->listing = LISTING_NONE;
	conn_resume(c);
}

static void start_listing(struct pop3_session *s, enum listing kind)
{
	s->listing = kind;
	s->list_pos = 0;
	conn_pause(s->c);
	list_continue(s);
}

/* ---- UPDATE ---------------------------------------------------------------- */

struct update_op {
	struct store_op op;
	struct pop3_session *s;
	int64_t mailbox_id;
	uint32_t *del;
	size_t ndel;
	uint32_t *seen;
	size_t nseen;
	char **unlink;
	size_t nunlink;
};

static void free_unlink_list(struct update_op *u)
{
	for (size_t i = 0; i < u->nunlink; i++)
		free(u->unlink[i]);
	FREE(u->unlink);
	u->nunlink = 0;
}

/* Writer thread, inside the batch transaction. */
static int update_apply(struct store_op *op, struct store_txn *t, char **error_r)
{
	struct update_op *u = op->arg;

	free_unlink_list(u);
	if (u->ndel > 0 && store_txn_expunge(t, u->mailbox_id, u->del, u->ndel, &u->unlink,
					     &u->nunlink, error_r) < 0) {
		free_unlink_list(u);
		return -1;
	}
	if (u->nseen > 0 && store_txn_set_flags(t, u->mailbox_id, u->seen, u->nseen, FLAG_SEEN, 0,
						error_r) < 0) {
		free_unlink_list(u);
		return -1;
	}
	return 0;
}

/* Writer thread, after the commit: remove bodies nothing refers to. */
static void update_after_commit(struct store_op *op, struct store *st)
{
	struct update_op *u = op->arg;
	store_unlink_bodies(st, u->unlink, u->nunlink);
}

static void update_done(struct store_op *op)
{
	struct update_op *u = op->arg;
	struct pop3_session *s = u->s;
	struct conn *c = s->c;

	s->updating = false;
	if (op->status == 0) {
		s->n_deleted = u->ndel;
		if (!conn_is_closed(c))
			conn_printf(c, "+OK Bye, %zu messages deleted\r\n", u->ndel);
	} else {
		log_error("conn=%s pop3: UPDATE failed user=%s: %s", c->idstr, s->login,
			  op->error ? op->error : "unknown error");
		if (!conn_is_closed(c))
			reply(s, "-ERR [SYS/TEMP] Some deleted messages not removed\r\n");
	}
	if (conn_is_closed(c))
		unlock_mailbox(s); /* on_close left it to us */
	else
		conn_close(c, "QUIT");
	free(op->error);
	free_unlink_list(u);
	free(u->del);
	free(u->seen);
	free(u);
	conn_release(c);
}

static void start_update(struct pop3_session *s)
{
	struct conn *c = s->c;
	size_t ndel = 0, nseen = 0;

	for (size_t i = 0; i < s->nmsgs; i++) {
		if (s->mflags[i] & MSG_DELETED)
			ndel++;
		else if (s->mflags[i] & MSG_RETRIEVED)
			nseen++;
	}
	if (ndel == 0 && nseen == 0) {
		reply(s, "+OK Bye, 0 messages deleted\r\n");
		conn_close(c, "QUIT");
		return;
	}
	struct update_op *u = xcalloc(1, sizeof *u);
	u->s = s;
	u->mailbox_id = s->inbox_id;
	u->del = xreallocarray(NULL, ndel ? ndel : 1, sizeof *u->del);
	u->seen = xreallocarray(NULL, nseen ? nseen : 1, sizeof *u->seen);
	for (size_t i = 0; i < s->nmsgs; i++) {
		if (s->mflags[i] & MSG_DELETED)
			u->del[u->ndel++] = s->msgs[i].uid;
		else if (s->mflags[i] & MSG_RETRIEVED)
			u->seen[u->nseen++] = s->msgs[i].uid;
	}
	u->op.apply = update_apply;
	u->op.after_commit = update_after_commit;
	u->op.done = update_done;
	u->op.arg = u;
	s->updating = true;
	conn_hold(c);
	conn_pause(c);
	store_submit(s->srv->writer, &u->op);
}

/* ---- commands -------------------------------------------------------------- */

static void cmd_capa(struct pop3_session *s, struct pop3_cmd *cmd)
{
	struct conn *c = s->c;
	(void)cmd;

	reply(s, "+OK Capability list follows\r\n"
		 "TOP\r\nUIDL\r\nRESP-CODES\r\nAUTH-RESP-CODE\r\nPIPELINING\r\n");
	if (s->state == ST_AUTHORIZATION) {
		if (server_plaintext_ok(s->srv, c))
			reply(s, "USER\r\nSASL PLAIN\r\n");
		if (conn_tls_available(c) && !c->tls)
			reply(s, "STLS\r\n");
	}
	reply(s, "IMPLEMENTATION Yubin\r\n.\r\n");
}

static void cmd_noop(struct pop3_session *s, struct pop3_cmd *cmd)
{
	(void)cmd;
	reply(s, "+OK\r\n");
}

static void cmd_quit(struct pop3_session *s, struct pop3_cmd *cmd)
{
	(void)cmd;
	if (s->state == ST_TRANSACTION) {
		start_update(s);
		return;
	}
	reply(s, "+OK Bye\r\n");
	conn_close(s->c, "QUIT");
}

static void cmd_stls(struct pop3_session *s, struct pop3_cmd *cmd)
{
	struct conn *c = s->c;
	(void)cmd;

	FREE(s->user);
	if (c->tls) {
		bad_command(s, "Already using TLS");
		return;
	}
	if (!conn_tls_available(c)) {
		bad_command(s, "TLS not available");
		return;
	}
	reply(s, "+OK Begin TLS negotiation\r\n");
	if (conn_start_tls(c) < 0) {
		log_error("conn=%s pop3: cannot start TLS", c->idstr);
		conn_close(c, "TLS setup failed");
	}
}

static void cmd_user(struct pop3_session *s, struct pop3_cmd *cmd)
{
	if (cmd->arglen[0] > POP3_MAX_USER) {
		FREE(s->user);
		bad_command(s, "User name too long");
		return;
	}
	free(s->user);
	s->user = xstrndup(cmd->args[0], cmd->arglen[0]);
	reply(s, "+OK Send PASS\r\n");
}

static void cmd_pass(struct pop3_session *s, struct pop3_cmd *cmd)
{
	if (s->user == NULL) {
		bad_command(s, "USER first");
		return;
	}
	char *user = s->user;
	s->user = NULL;
	start_auth(s, "PASS", user, xstrndup(cmd->args[0], cmd->arglen[0]), cmd->arglen[0],
		   NULL);
}

static void cmd_apop(struct pop3_session *s, struct pop3_cmd *cmd)
{
	if (cmd->arglen[0] > POP3_MAX_USER) {
		bad_command(s, "User name too long");
		return;
	}
	start_auth(s, "APOP", xstrndup(cmd->args[0], cmd->arglen[0]), NULL, 0,
		   xstrndup(cmd->args[1], cmd->arglen[1]));
}

/* The client's base64 PLAIN message (initial response or continuation). */
static void sasl_plain(struct pop3_session *s, const char *b64)
{
	char *buf;
	const char *authzid, *authcid, *passwd;

	if (strcmp(b64, "=") == 0 || sasl_plain_decode(b64, &buf, &authzid, &authcid,
						       &passwd) < 0) {
		bad_command(s, "Invalid SASL response");
		return;
	}
	size_t buflen = (size_t)(passwd - buf) + strlen(passwd) + 1;
	if ((authzid[0] != '\0' && strcmp(authzid, authcid) != 0) ||
	    strlen(authcid) > POP3_MAX_USER) {
		char user[POP3_MAX_USER + 1];
		log_safe(authcid, user, sizeof user);
		log_info("conn=%s pop3: auth failed user=%s method=PLAIN from [%s]", s->c->idstr,
			 user, s->c->peer);
		auth_wipe(buf, buflen);
		reply(s, ERR_AUTH_FAILED);
		count_auth_failure(s);
		return;
	}
	char *address = xstrdup(authcid);
	size_t pwlen = strlen(passwd);
	char *password = xstrndup(passwd, pwlen);
	auth_wipe(buf, buflen);
	start_auth(s, "PLAIN", address, password, pwlen, NULL);
}

static void cmd_auth(struct pop3_session *s, struct pop3_cmd *cmd)
{
	if (cmd->nargs == 0) {
		reply(s, "+OK\r\n");
		if (server_plaintext_ok(s->srv, s->c))
			reply(s, "PLAIN\r\n");
		reply(s, ".\r\n");
		return;
	}
	char mech[16];
	log_safe(cmd->args[0], mech, sizeof mech);
	for (char *p = mech; *p; p++)
		if (*p >= 'a' && *p <= 'z')
			*p = (char)(*p - 'a' + 'A');
	if (strcmp(mech, "PLAIN") != 0 || cmd->arglen[0] != 5) {
		bad_command(s, "Unsupported authentication mechanism");
		return;
	}
	if (!server_plaintext_ok(s->srv, s->c)) {
		reply(s, ERR_PLAINTEXT);
		count_auth_failure(s);
		return;
	}
	if (cmd->nargs == 2) {
		sasl_plain(s, cmd->args[1]);
		return;
	}
	s->sasl_wait = true;
	reply(s, "+ \r\n");
}

static void sasl_response(struct pop3_session *s, char *line)
{
	s->sasl_wait = false;
	if (strcmp(line, "*") == 0) {
		bad_command(s, "Authentication cancelled");
		return;
	}
	sasl_plain(s, line);
}

static void cmd_stat(struct pop3_session *s, struct pop3_cmd *cmd)
{
	int64_t size;
	size_t n = visible_count(s, &size);
	(void)cmd;
	conn_printf(s->c, "+OK %zu %" PRId64 "\r\n", n, size);
}

static void cmd_list(struct pop3_session *s, struct pop3_cmd *cmd)
{
	size_t idx;

	if (cmd->nargs == 1) {
		if (find_msg(s, cmd->num[0], &idx) == 0)
			conn_printf(s->c, "+OK %" PRIu32 " %" PRId64 "\r\n", cmd->num[0],
				    s->msgs[idx].size);
		return;
	}
	int64_t size;
	size_t n = visible_count(s, &size);
	conn_printf(s->c, "+OK %zu messages (%" PRId64 " octets)\r\n", n, size);
	start_listing(s, LISTING_LIST);
}

static void cmd_uidl(struct pop3_session *s, struct pop3_cmd *cmd)
{
	size_t idx;

	if (cmd->nargs == 1) {
		if (find_msg(s, cmd->num[0], &idx) == 0)
			conn_printf(s->c, "+OK %" PRIu32 " %" PRIu32 ".%" PRIu32 "\r\n",
				    cmd->num[0], s->uidvalidity, s->msgs[idx].uid);
		return;
	}
	reply(s, "+OK Unique-ID listing follows\r\n");
	start_listing(s, LISTING_UIDL);
}

static void cmd_retr(struct pop3_session *s, struct pop3_cmd *cmd)
{
	size_t idx;
	if (find_msg(s, cmd->num[0], &idx) == 0)
		start_xfer(s, idx, false, 0);
}

static void cmd_top(struct pop3_session *s, struct pop3_cmd *cmd)
{
	size_t idx;
	if (find_msg(s, cmd->num[0], &idx) == 0)
		start_xfer(s, idx, true, cmd->num[1]);
}

static void cmd_dele(struct pop3_session *s, struct pop3_cmd *cmd)
{
	size_t idx;
	if (find_msg(s, cmd->num[0], &idx) < 0)
		return;
	s->mflags[idx] |= MSG_DELETED;
	s->n_dele++;
	conn_printf(s->c, "+OK Message %" PRIu32 " deleted\r\n", cmd->num[0]);
}

static void cmd_rset(struct pop3_session *s, struct pop3_cmd *cmd)
{
	(void)cmd;
	for (size_t i = 0; i < s->nmsgs; i++)
		s->mflags[i] &= (uint8_t)~MSG_DELETED;
	int64_t size;
	size_t n = visible_count(s, &size);
	conn_printf(s->c, "+OK Maildrop has %zu messages (%" PRId64 " octets)\r\n", n, size);
}

#define ANY_STATE (ST_AUTHORIZATION | ST_TRANSACTION)
#define F_PLAINTEXT 0x01   /* a plaintext password: needs server_plaintext_ok() */
#define F_SECRET 0x02      /* the line holds a secret: wipe it afterwards */
#define F_AUTH 0x04        /* part of a login: success is decided later */

static const struct pop3_command {
	enum pop3_verb verb;
	void (*fn)(struct pop3_session *s, struct pop3_cmd *cmd);
	unsigned states;
	unsigned flags;
} commands[] = {
	{POP3_CAPA, cmd_capa, ANY_STATE, 0},
	{POP3_NOOP, cmd_noop, ANY_STATE, 0},
	{POP3_QUIT, cmd_quit, ANY_STATE, 0},
	{POP3_STLS, cmd_stls, ST_AUTHORIZATION, 0},
	{POP3_USER, cmd_user, ST_AUTHORIZATION, F_PLAINTEXT | F_AUTH},
	{POP3_PASS, cmd_pass, ST_AUTHORIZATION, F_PLAINTEXT | F_SECRET | F_AUTH},
	{POP3_APOP, cmd_apop, ST_AUTHORIZATION, F_SECRET | F_AUTH},
	{POP3_AUTH, cmd_auth, ST_AUTHORIZATION, F_SECRET | F_AUTH},
	{POP3_STAT, cmd_stat, ST_TRANSACTION, 0},
	{POP3_LIST, cmd_list, ST_TRANSACTION, 0},
	{POP3_UIDL, cmd_uidl, ST_TRANSACTION, 0},
	{POP3_RETR, cmd_retr, ST_TRANSACTION, 0},
	{POP3_TOP, cmd_top, ST_TRANSACTION, 0},
	{POP3_DELE, cmd_dele, ST_TRANSACTION, 0},
	{POP3_RSET, cmd_rset, ST_TRANSACTION, 0},
};

static const struct pop3_command *find_command(enum pop3_verb verb)
{
	for (size_t i = 0; i < ARRAY_LEN(commands); i++)
		if (commands[i].verb == verb)
			return &commands[i];
	return NULL;
}

/* ---- conn handler -------------------------------------------------------- */

static void pop3_on_line(struct conn *c, char *line, size_t len)
{
	struct pop3_session *s = c->proto;
	struct pop3_cmd cmd;
	const char *error;

	if (s->sasl_wait) {
		sasl_response(s, line);
		explicit_bzero(line, len);
		return;
	}
	int r = pop3_parse(line, len, &cmd, &error);
	const struct pop3_command *def = find_command(cmd.verb);
	/* USER is followed by PASS (or QUIT); anything else forgets it. */
	if (cmd.verb != POP3_PASS && cmd.verb != POP3_QUIT && cmd.verb != POP3_USER)
		FREE(s->user);
	if (r < 0 || def == NULL) {
		if (cmd.verb == POP3_USER)
			FREE(s->user);
		bad_command(s, r < 0 ? error : "Unknown command");
	} else if (!(def->states & s->state)) {
		bad_command(s, "Command not valid in this state");
	} else if ((def->flags & F_PLAINTEXT) && !server_plaintext_ok(s->srv, c)) {
		FREE(s->user);
		reply(s, ERR_PLAINTEXT);
		count_auth_failure(s);
	} else {
		int before = s->errors;
		def->fn(s, &cmd);
		/* Errors count in a row; a login attempt only resets the count
		 * when it succeeds (load_done). */
		if (s->errors == before && !(def->flags & F_AUTH))
			s->errors = 0;
	}
	if (def != NULL && (def->flags & F_SECRET))
		explicit_bzero(line, len);
}

static void pop3_on_open(struct conn *c)
{
	struct server *srv = c->server;
	struct pop3_session *s = xcalloc(1, sizeof *s);
	unsigned char rnd[8];
	char hex[sizeof rnd * 2 + 1];

	s->c = c;
	s->srv = srv;
	s->state = ST_AUTHORIZATION;
	c->proto = s;
	log_info("conn=%s pop3: connect from [%s]:%d", c->idstr, c->peer, c->peer_port);
	conn_set_max_line(c, POP3_MAX_LINE);
	conn_set_timeouts(c, (uint64_t)srv->cfg->pop3_timeout, (uint64_t)srv->cfg->command_timeout);
	if (RAND_bytes(rnd, sizeof rnd) != 1) {
		log_error("conn=%s pop3: no randomness for the APOP timestamp", c->idstr);
		reply(s, "-ERR [SYS/TEMP] Server error, try again later\r\n");
		conn_close(c, "RAND_bytes failed");
		return;
	}
	for (size_t i = 0; i < sizeof rnd; i++)
		snprintf(hex + 2 * i, 3, "%02x", rnd[i]);
	s->timestamp = xasprintf("<%ld.%s.%lld@%s>", (long)getpid(), hex, (long long)now_unix(),
				 srv->cfg->hostname);
	conn_printf(c, "+OK Yubin POP3 ready %s\r\n", s->timestamp);
}

static void pop3_on_line_too_long(struct conn *c)
{
	struct pop3_session *s = c->proto;
	s->sasl_wait = false;
	bad_command(s, "Line too long");
}

static void pop3_on_line_nul(struct conn *c)
{
	struct pop3_session *s = c->proto;
	s->sasl_wait = false;
	bad_command(s, "NUL byte in command");
}

static void pop3_on_timeout(struct conn *c, enum conn_timeout which)
{
	struct pop3_session *s = c->proto;

	if (s->updating)
		return; /* the UPDATE reply closes the connection */
	if (which == CONN_TIMEOUT_DEADLINE || s->xfer != NULL || s->listing != LISTING_NONE) {
		/* The client stopped reading a multi-line reply. */
		conn_close(c, "timeout writing a reply");
		return;
	}
	reply(s, "-ERR Timeout, closing\r\n");
	conn_close(c, "timeout");
}

static void pop3_on_tls(struct conn *c, bool ok)
{
	struct pop3_session *s = c->proto;
	if (!ok)
		return; /* conn closes the connection */
	/* A fresh AUTHORIZATION state: forget everything said in plaintext. */
	FREE(s->user);
	s->sasl_wait = false;
	s->errors = 0;
	s->state = ST_AUTHORIZATION;
}

static void pop3_on_shutdown(struct conn *c)
{
	struct pop3_session *s = c->proto;

	if (s == NULL) {
		conn_close(c, "shutdown");
		return;
	}
	if (s->updating)
		return; /* update_done replies and closes */
	if (s->xfer == NULL && s->listing == LISTING_NONE)
		reply(s, "-ERR [SYS/TEMP] Server shutting down\r\n");
	conn_close(c, "shutdown");
}

static void pop3_on_writable(struct conn *c)
{
	struct pop3_session *s = c->proto;

	if (s == NULL || !s->waiting_writable)
		return;
	s->waiting_writable = false;
	conn_clear_deadline(c);
	if (s->xfer != NULL)
		xfer_next(s);
	else if (s->listing != LISTING_NONE)
		list_continue(s);
}

static void pop3_on_close(struct conn *c, const char *reason)
{
	struct pop3_session *s = c->proto;

	/* During UPDATE the lock stays until the commit is done, so that the
	 * next session does not see messages that are being expunged. */
	if (!s->updating)
		unlock_mailbox(s);
	log_info("conn=%s pop3: disconnect user=%s retr=%" PRIu64 " top=%" PRIu64
		 " dele=%" PRIu64 " deleted=%" PRIu64 " bytes=%" PRIu64 " reason=%s",
		 c->idstr, s->login ? s->login : "-", s->n_retr, s->n_top, s->n_dele, s->n_deleted,
		 s->bytes, reason);
}

static void pop3_on_free(struct conn *c)
{
	struct pop3_session *s = c->proto;

	if (s == NULL)
		return;
	xfer_free(s->xfer);
	free(s->timestamp);
	free(s->user);
	free(s->login);
	free(s->msgs);
	free(s->mflags);
	free(s);
	c->proto = NULL;
}

const struct conn_handler pop3_conn_handler = {
	.name = "pop3",
	.on_open = pop3_on_open,
	.on_line = pop3_on_line,
	.on_line_too_long = pop3_on_line_too_long,
	.on_line_nul = pop3_on_line_nul,
	.on_timeout = pop3_on_timeout,
	.on_tls = pop3_on_tls,
	.on_shutdown = pop3_on_shutdown,
	.on_writable = pop3_on_writable,
	.on_close = pop3_on_close,
	.on_free = pop3_on_free,
};
