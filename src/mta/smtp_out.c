/* smtp_out.c - the outbound SMTP session (RFC 5321 client side).
 *
 * One session: try d's targets in order (MX preference, then addresses)
 * until one greets us; EHLO (HELO when EHLO is refused), STARTTLS when
 * offered (opportunistic: a failed handshake means one more try of the
 * same server in plaintext, as Postfix's "may" level does); then messages
 * taken from d one after another over the same connection, MAIL, RCPT...
 * and DATA pipelined when the server offers PIPELINING, the body streamed
 * from its file in chunks read on the thread pool and dot-stuffed on the
 * way, until d has no more or smtp_out_max_messages; then QUIT. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/buf.h"
#include "core/conf.h"
#include "core/conn.h"
#include "core/log.h"
#include "core/util.h"
#include "mail/dotstuff.h"
#include "mail/downgrade.h"
#include "mta/mta_private.h"
#include "proto/server.h"
#include "proto/smtp/smtp_reply.h"
#include "store/store.h"

#define CHUNK (64 * 1024)
#define OUT_HIGH (512 * 1024)

enum state {
	S_CONNECT,
	S_GREETING,
	S_EHLO,
	S_HELO,
	S_STARTTLS,
	S_TLS,
	S_AUTH,         /* AUTH PLAIN sent, or AUTH LOGIN's last step */
	S_AUTH_LOGIN_USER,
	S_AUTH_LOGIN_PASS,
	S_READY,        /* between messages */
	S_IDLE,         /* no message for now: kept open smtp_out_idle_time for more */
	S_TXN,          /* MAIL/RCPT/DATA replies outstanding */
	S_BODY,         /* sending the data */
	S_DOT,          /* waiting for the reply to the data */
	S_DOT_IGNORE,   /* empty data sent after 354 with no recipient: reply ignored */
	S_RSET,
	S_QUIT,
};

struct out_session {
	struct mta *m;
	struct dest *d;
	struct conn *c;
	enum state state;
	size_t target;          /* index into d->mx->targets */
	size_t tried;           /* targets tried */
	bool connected;         /* greeted by some server */
	bool plain_retry;       /* STARTTLS failed on this target: once more without */
	bool authed;            /* AUTH to the relayhost succeeded */
	bool no_tls;
	bool closing;
	bool ended;
	struct smtp_reply reply;
	struct smtp_caps caps;
	struct msg_job *job;
	unsigned messages;
	/* the transaction's replies: 0 = MAIL, 1..n = RCPT, n+1 = DATA */
	size_t sent_cmds, got_replies;
	bool mail_failed;
	enum outcome mail_outcome;
	bool quit_sent;         /* we ended it: nothing more for this server */
	size_t accepted;
	char mail_reply[512], mail_status[16];
	/* body */
	int fd;
	off_t off;
	bool bol;
	bool reading;
	bool eof;
	char *chunk;
	size_t chunk_len;
	int read_err;
	/* RFC 6152 3: the message made 7-bit for a server without 8BITMIME
	 * (downgrade.c), sent from memory instead of the file */
	char *conv;
	size_t conv_len, conv_off;
	bool converting;
	char host[256];
	char why[512];          /* the last failure, for the log and the outcome */
	struct out_session *next, *prev;
};

static struct out_session *all_sessions;

static const struct conn_handler out_handler;

static void next_target(struct out_session *s);
static void start_message(struct out_session *s);

static const struct dns_target *cur(const struct out_session *s)
{
	return &s->d->mx->targets[s->target];
}

/* DANE (RFC 7672) for the current target's MX host. */
static const struct dns_tlsa *cur_tlsa(const struct out_session *s)
{
	return &s->d->mx->tlsa[cur(s)->hostidx];
}

static bool dane_required(const struct out_session *s)
{
	enum dns_tlsa_state st = cur_tlsa(s)->state;
	return st == DNS_TLSA_USABLE || st == DNS_TLSA_UNUSABLE;
}

/* MTA-STS (RFC 8461 4.2): the domain's policy applies when DANE does not
 * (DANE records win, RFC 8461 2). */
static const struct mtasts_policy *sts(const struct out_session *s)
{
	return s->d->sts && !dane_required(s) ? s->d->sts : NULL;
}

static bool sts_enforce(const struct out_session *s)
{
	return sts(s) && sts(s)->mode == MTASTS_ENFORCE;
}

/* TLS is mandatory: DANE records, an enforced MTA-STS policy, or the
 * relayhost password to send. */
static bool tls_required(const struct out_session *s)
{
	return s->d->auth || dane_required(s) || sts_enforce(s);
}

/* Before the ClientHello: the TLSA records as OpenSSL's DANE verifier
 * (RFC 7672 3: DANE-EE without name checks, DANE-TA with the MX host name
 * as reference identifier). */
static int dane_setup(SSL *ssl, void *arg)
{
	struct out_session *s = arg;
	const struct dns_tlsa *t = cur_tlsa(s);
	SSL_set_tlsext_host_name(ssl, s->host);
	if (t->state != DNS_TLSA_USABLE) {
		SSL_set1_host(ssl, s->host);
		return 0;
	}
	if (SSL_dane_enable(ssl, s->host) <= 0)
		return -1;
	SSL_dane_set_flags(ssl, DANE_FLAG_NO_DANE_EE_NAMECHECKS);
	int added = 0;
	for (size_t i = 0; i < t->n; i++)
		if (SSL_dane_tlsa_add(ssl, t->rr[i].usage, t->rr[i].selector, t->rr[i].mtype,
				      t->rr[i].data, t->rr[i].len) > 0)
			added++;
	return added > 0 ? 0 : -1;
}

static void out_printf(struct out_session *s, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void out_printf(struct out_session *s, const char *fmt, ...)
{
	char line[1200];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(line, sizeof line, fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= sizeof line)
		n = (int)sizeof line - 1;
	conn_write(s->c, line, (size_t)n);
	conn_write(s->c, "\r\n", 2);
}

/* ---- outcomes ---- */

static void set_rcpt(struct rcpt_job *r, enum outcome o, const char *status, const char *reply,
		     const char *remote)
{
	r->outcome = o;
	snprintf(r->status, sizeof r->status, "%s", status);
	snprintf(r->reply, sizeof r->reply, "%s", reply);
	snprintf(r->remote, sizeof r->remote, "%s", remote ? remote : "");
}

static enum outcome outcome_of(const struct smtp_reply *r)
{
	switch (smtp_reply_class(r)) {
	case SMTP_REPLY_OK:
		return OUT_SENT;
	case SMTP_REPLY_PERM:
		return OUT_PERM;
	default:
		return OUT_TEMP;
	}
}

/* The job is over (all outcomes set): hand it back. */
static void job_finish(struct out_session *s)
{
	struct msg_job *j = s->job;
	if (!j)
		return;
	s->job = NULL;
	if (s->fd >= 0) {
		close(s->fd);
		s->fd = -1;
	}
	FREE(s->conv);
	s->conv_len = s->conv_off = 0;
	mta_job_done(j);
}

/* The remote went away or misbehaved mid-message: what is not yet known
 * is a temporary failure (or, before anything was sent, not attempted). */
static void job_abort(struct out_session *s, const char *why)
{
	struct msg_job *j = s->job;
	if (!j)
		return;
	for (size_t i = 0; i < j->nrcpts; i++) {
		struct rcpt_job *r = &j->rcpts[i];
		if (r->outcome == OUT_NONE)
			set_rcpt(r, s->m->stopping && s->sent_cmds == 0 ? OUT_NONE : OUT_TEMP,
				 "4.4.2", why, s->host);
	}
	job_finish(s);
}

static void session_close(struct out_session *s, const char *why)
{
	if (s->c && !conn_is_closed(s->c))
		conn_close(s->c, why);
}

/* ---- the transaction ---- */

static size_t xtext(const char *in, char *out, size_t outsz)
{
	size_t o = 0;
	for (const unsigned char *p = (const unsigned char *)in; *p && o + 4 < outsz; p++) {
		if (*p < 33 || *p > 126 || *p == '+' || *p == '=')
			o += (size_t)snprintf(out + o, outsz - o, "+%02X", *p);
		else
			out[o++] = (char)*p;
	}
	out[o] = '\0';
	return o;
}

static void send_cmd(struct out_session *s, size_t k)
{
	struct msg_job *j = s->job;
	if (k == 0) {
		char params[600] = "";
		size_t o = 0;
		if (s->caps.size_given)
			o += (size_t)snprintf(params + o, sizeof params - o, " SIZE=%" PRId64,
					      s->conv ? (int64_t)s->conv_len : j->size - j->skip);
		if ((j->flags & QUEUE_8BITMIME) && s->caps.eightbitmime)
			o += (size_t)snprintf(params + o, sizeof params - o, " BODY=8BITMIME");
		if ((j->flags & QUEUE_SMTPUTF8) && s->caps.smtputf8)
			o += (size_t)snprintf(params + o, sizeof params - o, " SMTPUTF8");
		if (s->caps.dsn && j->ret != DSN_RET_DEFAULT)
			o += (size_t)snprintf(params + o, sizeof params - o, " RET=%s",
					      j->ret == DSN_RET_FULL ? "FULL" : "HDRS");
		if (s->caps.dsn && j->envid) {
			char x[300];
			xtext(j->envid, x, sizeof x);
			o += (size_t)snprintf(params + o, sizeof params - o, " ENVID=%s", x);
		}
		out_printf(s, "MAIL FROM:<%s>%s", j->sender, params);
	} else if (k <= j->nrcpts) {
		struct rcpt_job *r = &j->rcpts[k - 1];
		char params[700] = "";
		size_t o = 0;
		if (s->caps.dsn && r->notify) {
			o += (size_t)snprintf(params + o, sizeof params - o, " NOTIFY=");
			if (r->notify & DSN_NOTIFY_NEVER)
				o += (size_t)snprintf(params + o, sizeof params - o, "NEVER");
			else {
				const char *sep = "";
				if (r->notify & DSN_NOTIFY_SUCCESS) {
					o += (size_t)snprintf(params + o, sizeof params - o, "SUCCESS");
					sep = ",";
				}
				if (r->notify & DSN_NOTIFY_FAILURE) {
					o += (size_t)snprintf(params + o, sizeof params - o, "%sFAILURE",
							      sep);
					sep = ",";
				}
				if (r->notify & DSN_NOTIFY_DELAY)
					o += (size_t)snprintf(params + o, sizeof params - o, "%sDELAY",
							      sep);
			}
		}
		if (s->caps.dsn && r->orcpt) {
			const char *semi = strchr(r->orcpt, ';');
			char x[600];
			if (semi) {
				xtext(semi + 1, x, sizeof x);
				o += (size_t)snprintf(params + o, sizeof params - o, " ORCPT=%.*s;%s",
						      (int)(semi - r->orcpt), r->orcpt, x);
			}
		}
		out_printf(s, "RCPT TO:<%s>%s", r->addr, params);
	} else {
		out_printf(s, "DATA");
	}
	s->sent_cmds = k + 1;
}

/* Pipelining sends everything at once; otherwise one command per reply. */
static void send_more(struct out_session *s)
{
	size_t last = s->job->nrcpts + 1;
	if (s->caps.pipelining) {
		while (s->sent_cmds <= last)
			send_cmd(s, s->sent_cmds);
	} else if (s->sent_cmds == s->got_replies && s->sent_cmds <= last) {
		send_cmd(s, s->sent_cmds);
	}
	conn_flush(s->c);
}

static void read_chunk(struct out_session *s);

static void begin_body(struct out_session *s)
{
	/* The file is opened by the first read job (no file I/O here). */
	s->fd = -1;
	s->off = s->job->skip;
	s->bol = true;
	s->eof = false;
	s->state = S_BODY;
	/* No replies are due while we send: the deadline bounds a server
	 * that does not read. */
	conn_pause(s->c);
	conn_set_deadline(s->c, (uint64_t)s->m->cfg->smtp_out_timeout * 2);
	read_chunk(s);
}

struct chunk_job {
	struct out_session *s;
	char path[4096];            /* opened when fd < 0 */
	int fd;
	off_t off;
	char *buf;
	ssize_t n;
	int err;
};

static void chunk_work(void *arg)
{
	struct chunk_job *cj = arg;
	if (cj->fd < 0) {
		cj->fd = open(cj->path, O_RDONLY | O_CLOEXEC);
		if (cj->fd < 0) {
			cj->n = -1;
			cj->err = errno;
			return;
		}
	}
	do
		cj->n = pread(cj->fd, cj->buf, CHUNK, cj->off);
	while (cj->n < 0 && errno == EINTR);
	cj->err = cj->n < 0 ? errno : 0;
}

/* The end of the data: CR LF if needed, then the dot. */
static void send_dot(struct out_session *s)
{
	struct conn *c = s->c;
	if (!s->bol)
		conn_write(c, "\r\n", 2);
	conn_write(c, ".\r\n", 3);
	conn_clear_deadline(c);
	if (s->fd >= 0)
		close(s->fd);
	s->fd = -1;
	s->state = S_DOT;
	conn_flush(c);
	conn_resume(c);
}

static void send_piece(struct out_session *s, const char *p, size_t n)
{
	struct buf b;
	buf_init(&b, n * 2 + 8);
	dot_encode_chunk(p, n, &s->bol, &b);
	conn_write(s->c, b.data, b.len);
	buf_free(&b);
	conn_flush(s->c);
}

static void chunk_done(void *arg)
{
	struct chunk_job *cj = arg;
	struct out_session *s = cj->s;
	struct conn *c = s->c;
	s->reading = false;
	if (s->fd < 0)
		s->fd = cj->fd;         /* opened by the job (or -1) */
	if (conn_is_closed(c)) {
		free(cj->buf);
		free(cj);
		return;
	}
	if (cj->n < 0) {
		log_error("%s: reading the queued message %s failed: %s; it stays queued",
			  s->job->qid, cj->path, strerror(cj->err));
		snprintf(s->why, sizeof s->why, "local error: cannot read the queued message");
		free(cj->buf);
		free(cj);
		job_abort(s, s->why);
		session_close(s, "queue file read error");
		return;
	}
	if (cj->n == 0) {
		free(cj->buf);
		free(cj);
		send_dot(s);
		return;
	}
	s->off += cj->n;
	send_piece(s, cj->buf, (size_t)cj->n);
	free(cj->buf);
	free(cj);
	if (conn_out_pending(c) < OUT_HIGH)
		read_chunk(s);
	/* else on_writable continues */
}

static void read_chunk(struct out_session *s)
{
	if (s->reading || s->state != S_BODY)
		return;
	if (s->conv) {
		/* From memory, a chunk at a time while the socket keeps up. */
		while (s->state == S_BODY && conn_out_pending(s->c) < OUT_HIGH) {
			if (s->conv_off >= s->conv_len) {
				send_dot(s);
				return;
			}
			size_t n = MIN((size_t)CHUNK, s->conv_len - s->conv_off);
			send_piece(s, s->conv + s->conv_off, n);
			s->conv_off += n;
		}
		return;
	}
	struct chunk_job *cj = xcalloc(1, sizeof *cj);
	cj->s = s;
	cj->fd = s->fd;
	store_msg_path(s->m->srv->store, s->job->path, cj->path, sizeof cj->path);
	cj->off = s->off;
	cj->buf = xmalloc(CHUNK);
	s->reading = true;
	server_job(s->m->srv, s->c, chunk_work, chunk_done, cj);
}

static void out_on_writable(struct conn *c)
{
	struct out_session *s = c->proto;
	if (s->state == S_BODY && !s->reading)
		read_chunk(s);
}

/* A reply within the transaction. */
static void txn_reply(struct out_session *s)
{
	struct msg_job *j = s->job;
	size_t k = s->got_replies++;
	char line[512], st[SMTP_REPLY_ENH_SIZE];
	smtp_reply_oneline(&s->reply, line, sizeof line);
	smtp_reply_status(&s->reply, st);
	enum outcome o = outcome_of(&s->reply);

	if (k == 0) {
		if (o != OUT_SENT) {
			s->mail_failed = true;
			s->mail_outcome = o;
			snprintf(s->mail_reply, sizeof s->mail_reply, "%s", line);
			snprintf(s->mail_status, sizeof s->mail_status, "%s", st);
		}
	} else if (k <= j->nrcpts) {
		struct rcpt_job *r = &j->rcpts[k - 1];
		if (s->mail_failed)
			set_rcpt(r, s->mail_outcome, s->mail_status, s->mail_reply, s->host);
		else if (o == OUT_SENT) {
			r->accepted = true;
			s->accepted++;
		} else
			set_rcpt(r, o, st, line, s->host);
	} else {
		/* DATA */
		if (s->reply.code == 354) {
			if (s->accepted == 0) {
				conn_write(s->c, ".\r\n", 3);
				conn_flush(s->c);
				s->state = S_DOT_IGNORE;
				return;
			}
			begin_body(s);
			return;
		}
		for (size_t i = 0; i < j->nrcpts; i++)
			if (j->rcpts[i].accepted) {
				enum outcome ro = o == OUT_SENT ? OUT_TEMP : o;
				set_rcpt(&j->rcpts[i], ro, st, line, s->host);
			}
		/* Every outcome is known: next message (RSET to be sure of
		 * the server's state after a failed MAIL). */
		job_finish(s);
		s->state = S_RSET;
		out_printf(s, "RSET");
		conn_flush(s->c);
		return;
	}
	send_more(s);
}

struct conv_job {
	struct out_session *s;
	char path[4096];
	int64_t skip;
	size_t max;
	char *out;
	size_t len;
	bool seven_bit;            /* nothing to convert after all */
	const char *why;           /* failed: why (static) */
	bool read_failed;
};

/* Pool: read the message and make it 7-bit (or find that it is already). */
static void conv_work(void *arg)
{
	struct conv_job *cj = arg;
	size_t len = 0;
	char *msg = NULL;
	int fd = open(cj->path, O_RDONLY | O_CLOEXEC);
	struct stat stt;
	if (fd < 0 || fstat(fd, &stt) < 0 || stt.st_size < cj->skip) {
		cj->read_failed = true;
		if (fd >= 0)
			close(fd);
		return;
	}
	len = (size_t)(stt.st_size - cj->skip);
	if (len > DOWNGRADE_MAX) {
		close(fd);
		cj->why = "message too large to convert to 7-bit";
		return;
	}
	msg = xmalloc(len + 1);
	size_t got = 0;
	while (got < len) {
		ssize_t n = pread(fd, msg + got, len - got, cj->skip + (off_t)got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		got += (size_t)n;
	}
	close(fd);
	if (got != len) {
		cj->read_failed = true;
		free(msg);
		return;
	}
	if (!downgrade_has_8bit(msg, len)) {
		cj->seven_bit = true;
		cj->out = msg;
		cj->len = len;
		return;
	}
	struct buf b;
	buf_init(&b, DOWNGRADE_OUT_MAX(len));
	if (downgrade_7bit(msg, len, &b, &cj->why) == 0)
		cj->out = buf_steal(&b, &cj->len);
	else
		buf_free(&b);
	free(msg);
}

static void conv_done(void *arg)
{
	struct conv_job *cj = arg;
	struct out_session *s = cj->s;
	s->converting = false;
	if (conn_is_closed(s->c)) {
		free(cj->out);
		free(cj);
		return;
	}
	struct msg_job *j = s->job;
	if (cj->read_failed) {
		log_error("%s: reading the queued message %s failed; it stays queued", j->qid,
			  cj->path);
		snprintf(s->why, sizeof s->why, "local error: cannot read the queued message");
		free(cj);
		job_abort(s, s->why);
		session_close(s, "queue file read error");
		return;
	}
	if (!cj->out) {
		char line[512];
		snprintf(line, sizeof line, "%.200s does not support 8BITMIME and the message "
			 "cannot be converted to 7-bit: %s", s->host, cj->why);
		for (size_t i = 0; i < j->nrcpts; i++)
			set_rcpt(&j->rcpts[i], OUT_PERM, "5.6.3", line, s->host);
		free(cj);
		job_finish(s);
		start_message(s);
		return;
	}
	log_info("%s: %s does not support 8BITMIME: %s", j->qid, s->host,
		 cj->seven_bit ? "the message is 7-bit after all, sent as it is"
			       : "8-bit parts converted to quoted-printable (RFC 6152)");
	s->conv = cj->out;
	s->conv_len = cj->len;
	s->conv_off = 0;
	free(cj);
	s->state = S_TXN;
	send_more(s);
}

static void start_downgrade(struct out_session *s)
{
	struct conv_job *cj = xcalloc(1, sizeof *cj);
	cj->s = s;
	store_msg_path(s->m->srv->store, s->job->path, cj->path, sizeof cj->path);
	cj->skip = s->job->skip;
	s->converting = true;
	server_job(s->m->srv, s->c, conv_work, conv_done, cj);
}

static void start_message(struct out_session *s)
{
	struct msg_job *j;
	const struct conf *cfg = s->m->cfg;
	if (!s->m->stopping && s->messages < (unsigned)cfg->smtp_out_max_messages &&
	    cfg->smtp_out_idle_time > 0 && s->state != S_IDLE && s->d->head == NULL) {
		/* Connection cache: mail for this destination that arrives in
		 * the next moments reuses the connection (smtp_out_wake). */
		s->state = S_IDLE;
		s->d->idle++;
		conn_set_deadline(s->c, (uint64_t)cfg->smtp_out_idle_time);
		return;
	}
	if (s->state == S_IDLE) {
		s->d->idle--;
		conn_clear_deadline(s->c);
		s->state = S_READY;
	}
	if (s->m->stopping || s->messages >= (unsigned)cfg->smtp_out_max_messages ||
	    (j = mta_dest_take(s->d)) == NULL) {
		s->state = S_QUIT;
		s->quit_sent = true;
		out_printf(s, "QUIT");
		conn_flush(s->c);
		return;
	}
	s->job = j;
	s->messages++;
	if (s->messages > 1)
		s->m->stats.sessions_reused++;
	s->sent_cmds = s->got_replies = 0;
	s->mail_failed = false;
	s->accepted = 0;
	for (size_t i = 0; i < j->nrcpts; i++)
		j->rcpts[i].accepted = false;
	/* What this server cannot take, it is told of before any command. */
	const char *why = NULL, *status = NULL;
	if (s->caps.size_given && s->caps.size > 0 && (uint64_t)(j->size - j->skip) > s->caps.size) {
		why = "message too big for the remote server (its SIZE limit)";
		status = "5.3.4";
	} else if ((j->flags & QUEUE_SMTPUTF8) && !s->caps.smtputf8) {
		why = "the remote server does not support SMTPUTF8 (RFC 6531)";
		status = "5.6.7";
	} else if ((j->flags & QUEUE_8BITMIME) && !s->caps.eightbitmime && !s->conv) {
		start_downgrade(s);
		return;
	}
	if (why) {
		char line[512];
		snprintf(line, sizeof line, "%.200s: %s", s->host, why);
		for (size_t i = 0; i < j->nrcpts; i++)
			set_rcpt(&j->rcpts[i], OUT_PERM, status, line, s->host);
		job_finish(s);
		start_message(s);
		return;
	}
	s->state = S_TXN;
	send_more(s);
}

static void send_ehlo(struct out_session *s)
{
	s->state = S_EHLO;
	out_printf(s, "EHLO %s", s->m->cfg->hostname);
	conn_flush(s->c);
}

static void fail_target(struct out_session *s, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void fail_target(struct out_session *s, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(s->why, sizeof s->why, fmt, ap);
	va_end(ap);
	log_info("smtp_out: %s [%s]:%d: %s", s->host, cur(s)->addrtext, s->d->port, s->why);
	session_close(s, s->why);
}

/* Send one base64 line without logging it. */
static void send_b64(struct out_session *s, const char *prefix, const unsigned char *p,
		     size_t n)
{
	char *b = xmalloc(((n + 2) / 3) * 4 + 1);
	size_t bl = base64_encode(p, n, b);
	out_printf(s, "%s%.*s", prefix, (int)bl, b);
	explicit_bzero(b, bl);
	free(b);
	conn_flush(s->c);
}

/* RFC 4954 with the relayhost, over TLS only: PLAIN when offered (one
 * round trip), else LOGIN. */
static void start_auth(struct out_session *s)
{
	const char *user = s->m->cfg->relayhost_user, *pw = s->m->relay_password;
	if (s->caps.auth & SMTP_AUTH_PLAIN) {
		size_t ul = strlen(user), pl = strlen(pw);
		unsigned char *msg = xmalloc(ul + pl + 2);
		msg[0] = '\0';
		memcpy(msg + 1, user, ul);
		msg[ul + 1] = '\0';
		memcpy(msg + ul + 2, pw, pl);
		s->state = S_AUTH;
		send_b64(s, "AUTH PLAIN ", msg, ul + pl + 2);
		explicit_bzero(msg, ul + pl + 2);
		free(msg);
	} else if (s->caps.auth & SMTP_AUTH_LOGIN) {
		s->state = S_AUTH_LOGIN_USER;
		out_printf(s, "AUTH LOGIN");
		conn_flush(s->c);
	} else {
		fail_target(s, "offers neither AUTH PLAIN nor LOGIN: cannot log in as %s; the mail "
			    "waits", user);
	}
}

static void auth_login_step(struct out_session *s)
{
	if (s->state == S_AUTH_LOGIN_USER) {
		const char *u = s->m->cfg->relayhost_user;
		s->state = S_AUTH_LOGIN_PASS;
		send_b64(s, "", (const unsigned char *)u, strlen(u));
	} else {
		const char *p = s->m->relay_password;
		s->state = S_AUTH;
		send_b64(s, "", (const unsigned char *)p, strlen(p));
	}
}

static void on_reply(struct out_session *s)
{
	char line[512];
	smtp_reply_oneline(&s->reply, line, sizeof line);
	switch (s->state) {
	case S_GREETING:
		if (s->reply.code != 220) {
			fail_target(s, "greeting refused: %s", line);
			return;
		}
		s->connected = true;
		send_ehlo(s);
		return;
	case S_EHLO:
		if (smtp_reply_class(&s->reply) != SMTP_REPLY_OK) {
			s->state = S_HELO;
			out_printf(s, "HELO %s", s->m->cfg->hostname);
			conn_flush(s->c);
			return;
		}
		smtp_caps_parse(&s->reply, &s->caps);
		if (s->d->auth && !s->c->tls && !(s->caps.starttls && s->m->tls)) {
			fail_target(s, "offers no STARTTLS: the relayhost password is not sent "
				    "without TLS (relayhost_user); the mail waits");
			return;
		}
		if (sts(s) && !s->c->tls && !(s->caps.starttls && s->m->tls)) {
			if (sts_enforce(s)) {
				fail_target(s, "offers no STARTTLS, which the MTA-STS policy of %.200s "
					    "requires (mode enforce)", s->d->domain);
				return;
			}
			log_warn("smtp_out: %s offers no STARTTLS: the MTA-STS policy of %s (mode "
				 "testing) would refuse it; sending anyway", s->host, s->d->domain);
		}
		if (dane_required(s) && !s->c->tls && !(s->caps.starttls && s->m->tls)) {
			fail_target(s, "has DNSSEC-validated TLSA records but offers no STARTTLS: "
				    "not delivering without TLS (DANE, RFC 7672)");
			return;
		}
		if (s->d->auth && s->c->tls && !s->authed) {
			start_auth(s);
			return;
		}
		if (s->caps.starttls && !s->c->tls && s->m->tls && !s->no_tls) {
			s->state = S_STARTTLS;
			out_printf(s, "STARTTLS");
			conn_flush(s->c);
			return;
		}
		start_message(s);
		return;
	case S_HELO:
		if (smtp_reply_class(&s->reply) != SMTP_REPLY_OK) {
			fail_target(s, "HELO refused: %s", line);
			return;
		}
		memset(&s->caps, 0, sizeof s->caps);
		start_message(s);
		return;
	case S_STARTTLS:
		if (s->reply.code != 220 && tls_required(s)) {
			fail_target(s, "STARTTLS refused (%s), and TLS is required here (%s)", line,
				    s->d->auth ? "relayhost_user" : "DANE TLSA records");
			return;
		}
		if (s->reply.code != 220) {
			/* Offered but refused: go on in plaintext. */
			log_info("smtp_out: %s: STARTTLS refused (%s), continuing without TLS",
				 s->host, line);
			start_message(s);
			return;
		}
		s->state = S_TLS;
		if (conn_start_tls_client(s->c, s->m->tls, s->host, dane_setup, s) < 0)
			fail_target(s, "cannot start TLS");
		return;
	case S_AUTH_LOGIN_USER:
	case S_AUTH_LOGIN_PASS:
		if (s->reply.code == 334) {
			auth_login_step(s);
			return;
		}
		__attribute__((fallthrough));   /* a final answer */
	case S_AUTH:
		if (s->reply.code != 235) {
			fail_target(s, "AUTH as %s refused: %s (check relayhost_user and "
				    "relayhost_password_file)", s->m->cfg->relayhost_user, line);
			return;
		}
		s->authed = true;
		log_info("smtp_out: conn=%s AUTH %s as %s to %s accepted", s->c->idstr,
			 (s->caps.auth & SMTP_AUTH_PLAIN) ? "PLAIN" : "LOGIN",
			 s->m->cfg->relayhost_user, s->host);
		start_message(s);
		return;
	case S_TXN:
		txn_reply(s);
		return;
	case S_DOT: {
		struct msg_job *j = s->job;
		char st[SMTP_REPLY_ENH_SIZE];
		smtp_reply_status(&s->reply, st);
		enum outcome o = outcome_of(&s->reply);
		for (size_t i = 0; i < j->nrcpts; i++)
			if (j->rcpts[i].accepted)
				set_rcpt(&j->rcpts[i], o, st, line, s->host);
		j->remote_dsn = s->caps.dsn;
		job_finish(s);
		start_message(s);
		return;
	}
	case S_DOT_IGNORE:
		job_finish(s);
		start_message(s);
		return;
	case S_RSET:
		if (smtp_reply_class(&s->reply) != SMTP_REPLY_OK) {
			fail_target(s, "RSET refused: %s", line);
			return;
		}
		start_message(s);
		return;
	case S_QUIT:
		session_close(s, "quit");
		return;
	default:
		return;
	}
}

/* ---- connection callbacks ---- */

static void out_on_open(struct conn *c)
{
	struct out_session *s = c->proto;
	s->m->stats.connections++;
	s->state = S_GREETING;
	conn_set_max_line(c, SMTP_REPLY_LINE_MAX);
	conn_set_timeouts(c, (uint64_t)s->m->cfg->smtp_out_timeout, 0);
	log_debug("smtp_out: conn=%s connected to %s [%s]:%d for %s", c->idstr, s->host,
		  cur(s)->addrtext, s->d->port, s->d->domain);
}

static void out_on_line(struct conn *c, char *line, size_t len)
{
	struct out_session *s = c->proto;
	const char *err;
	if (conn_is_closed(c))
		return;
	int r = smtp_reply_feed(&s->reply, line, len, &err);
	if (r == 0)
		return;
	if (r < 0) {
		smtp_reply_reset(&s->reply);
		fail_target(s, "protocol error in the server's reply: %s", err);
		return;
	}
	if (s->state == S_GREETING || s->state == S_EHLO || s->state == S_DOT)
		log_debug("smtp_out: conn=%s <<< %d (%zu lines)", c->idstr, s->reply.code,
			  s->reply.nlines);
	on_reply(s);
	smtp_reply_reset(&s->reply);
}

static void out_on_too_long(struct conn *c)
{
	struct out_session *s = c->proto;
	fail_target(s, "reply line longer than %d bytes", SMTP_REPLY_LINE_MAX);
}

static void out_on_timeout(struct conn *c, enum conn_timeout which)
{
	struct out_session *s = c->proto;
	if (s->state == S_IDLE) {
		start_message(s);      /* nothing came: QUIT */
		return;
	}
	if (s->state == S_CONNECT) {
		snprintf(s->why, sizeof s->why, "connect to %s [%s]:%d: timed out", s->host,
			 cur(s)->addrtext, s->d->port);
		log_info("smtp_out: %s", s->why);
		session_close(s, s->why);
		return;
	}
	fail_target(s, "%s while %s", which == CONN_TIMEOUT_DEADLINE ? "data transfer deadline"
								       : "timeout waiting for the reply",
		    s->state == S_BODY ? "sending the message" : "talking to the server");
}

static void out_on_tls(struct conn *c, bool ok)
{
	struct out_session *s = c->proto;
	if (!ok) {
		/* Opportunistic TLS: one more try of this server without it --
		 * never with the relayhost password to send. */
		s->plain_retry = !tls_required(s);
		snprintf(s->why, sizeof s->why, "TLS handshake with %s failed", s->host);
		return;   /* conn closes */
	}
	long v = SSL_get_verify_result(c->ssl);
	if (cur_tlsa(s)->state == DNS_TLSA_USABLE) {
		uint8_t usage, sel, mt;
		const unsigned char *data;
		size_t dlen;
		if (v != X509_V_OK ||
		    SSL_get0_dane_tlsa(c->ssl, &usage, &sel, &mt, &data, &dlen) < 0) {
			log_warn("smtp_out: conn=%s DANE: the certificate of %s [%s] matches none of "
				 "its TLSA records (%s); not using this host", c->idstr, s->host,
				 cur(s)->addrtext, X509_verify_cert_error_string(v));
			fail_target(s, "DANE verification failed: %s",
				    X509_verify_cert_error_string(v));
			return;
		}
		log_info("smtp_out: conn=%s TLS with %s [%s] %s %s, DANE verified (TLSA %u %u %u)",
			 c->idstr, s->host, cur(s)->addrtext, c->tls_version, c->tls_cipher, usage,
			 sel, mt);
		memset(&s->caps, 0, sizeof s->caps);
		send_ehlo(s);
		return;
	}
	log_info("smtp_out: conn=%s TLS with %s [%s] %s %s, certificate %s", c->idstr, s->host,
		 cur(s)->addrtext, c->tls_version, c->tls_cipher,
		 v == X509_V_OK ? "verified" : X509_verify_cert_error_string(v));
	if (sts(s) && v != X509_V_OK) {
		/* RFC 8461 4.2: a valid certificate for the MX host name. */
		if (sts_enforce(s)) {
			fail_target(s, "certificate not valid (%s), which the MTA-STS policy of %.200s "
				    "requires (mode enforce)", X509_verify_cert_error_string(v),
				    s->d->domain);
			return;
		}
		log_warn("smtp_out: %s: certificate not valid (%s): the MTA-STS policy of %s (mode "
			 "testing) would refuse it; sending anyway", s->host,
			 X509_verify_cert_error_string(v), s->d->domain);
	}
	memset(&s->caps, 0, sizeof s->caps);
	send_ehlo(s);
}

static void out_on_shutdown(struct conn *c)
{
	struct out_session *s = c->proto;
	if (s->state == S_IDLE) {
		start_message(s);      /* QUIT, as stopping */
		return;
	}
	if (s->state == S_READY || s->state == S_QUIT || s->state == S_CONNECT ||
	    s->state == S_GREETING) {
		session_close(s, "shutting down");
	}
	/* else the message in progress finishes; start_message then quits */
}

static void free_session(struct out_session *s)
{
	if (s->prev)
		s->prev->next = s->next;
	else
		all_sessions = s->next;
	if (s->next)
		s->next->prev = s->prev;
	smtp_reply_free(&s->reply);
	if (s->fd >= 0)
		close(s->fd);
	free(s);
}

static void out_on_close(struct conn *c, const char *reason)
{
	struct out_session *s = c->proto;
	if (s->state == S_IDLE) {
		s->d->idle--;          /* the server closed a cached connection */
		s->state = S_QUIT;
	}
	if (s->job) {
		char why[600];
		snprintf(why, sizeof why, "lost connection with %.200s while %s: %.300s", s->host,
			 s->state == S_BODY ? "sending the message" : "in the transaction",
			 reason ? reason : "closed");
		job_abort(s, why);
	}
	if (s->state == S_CONNECT && reason && s->why[0] == '\0')
		snprintf(s->why, sizeof s->why, "connect to %.200s [%s]:%d: %.200s", s->host,
			 cur(s)->addrtext, s->d->port, reason);
}

static void out_on_free(struct conn *c)
{
	struct out_session *s = c->proto;
	c->proto = NULL;
	s->c = NULL;
	if (s->ended) {
		free_session(s);
		return;
	}
	/* The connection is gone: what next? */
	if (s->plain_retry) {
		s->plain_retry = false;
		s->no_tls = true;
		s->connected = false;
		s->state = S_CONNECT;
		s->c = conn_connect(&s->m->reg, (const struct sockaddr *)&cur(s)->addr, &out_handler,
				    s, (uint64_t)s->m->cfg->smtp_out_connect_timeout);
		return;
	}
	if (s->messages > 0 || s->quit_sent) {
		/* This server took our messages (or we had no more): the
		 * session is over; d's other jobs are for other sessions or
		 * the next round. */
		s->ended = true;
		struct dest *d = s->d;
		free_session(s);
		mta_session_ended(d);
		return;
	}
	/* Not reachable, refused us, or broke before the first message: the
	 * next server. */
	if (s->state == S_CONNECT && s->why[0])
		log_info("smtp_out: %s", s->why);
	next_target(s);
}

static const struct conn_handler out_handler = {
	.name = "smtp_out",
	.on_open = out_on_open,
	.on_line = out_on_line,
	.on_line_too_long = out_on_too_long,
	.on_timeout = out_on_timeout,
	.on_tls = out_on_tls,
	.on_shutdown = out_on_shutdown,
	.on_writable = out_on_writable,
	.on_close = out_on_close,
	.on_free = out_on_free,
};

/* Try the next target, or give up on d for this round. */
static void next_target(struct out_session *s)
{
	struct dest *d = s->d;
	if (s->tried > 0)
		s->target = (s->target + 1) % d->mx->ntargets;
	if (s->tried >= d->mx->ntargets || s->m->stopping) {
		s->ended = true;
		if (!s->m->stopping) {
			char why[700];
			snprintf(why, sizeof why, "no server of %.200s reachable; last: %.380s", d->domain,
				 s->why[0] ? s->why : "?");
			mta_dest_unreachable(d, why);
		}
		free_session(s);
		mta_session_ended(d);
		return;
	}
	s->tried++;
	if (cur_tlsa(s)->state == DNS_TLSA_FAIL) {
		snprintf(s->why, sizeof s->why, "TLSA lookup for %.200s failed (DNSSEC): host not "
			 "used (RFC 7672 2.2)", cur(s)->host);
		next_target(s);
		return;
	}
	if (sts(s) && !mtasts_mx_match(sts(s), cur(s)->host)) {
		if (sts_enforce(s)) {
			snprintf(s->why, sizeof s->why, "%.200s is not an MX host the MTA-STS policy "
				 "of %.200s lists: not used", cur(s)->host, d->domain);
			log_info("smtp_out: %s", s->why);
			next_target(s);
			return;
		}
		log_warn("smtp_out: %s is not an MX host the MTA-STS policy of %s (mode testing) "
			 "lists; using it anyway", cur(s)->host, d->domain);
	}
	s->why[0] = '\0';
	s->no_tls = false;
	s->connected = false;
	s->state = S_CONNECT;
	memset(&s->caps, 0, sizeof s->caps);
	snprintf(s->host, sizeof s->host, "%s", cur(s)->host);
	s->c = conn_connect(&s->m->reg, (const struct sockaddr *)&cur(s)->addr, &out_handler, s,
			    (uint64_t)s->m->cfg->smtp_out_connect_timeout);
}

bool smtp_out_wake(struct dest *d)
{
	if (d->idle == 0 || !d->head)
		return false;
	for (struct out_session *s = all_sessions; s; s = s->next) {
		if (s->d == d && s->state == S_IDLE && s->c && !conn_is_closed(s->c)) {
			start_message(s);
			return true;
		}
	}
	return false;
}

void smtp_out_start(struct dest *d)
{
	struct out_session *s = xcalloc(1, sizeof *s);
	s->m = d->m;
	s->d = d;
	s->fd = -1;
	smtp_reply_init(&s->reply);
	/* Spread sessions over equal-preference targets: start at the next
	 * target of the best preference each time. */
	size_t best = 0;
	while (best < d->mx->ntargets && d->mx->targets[best].pref == d->mx->targets[0].pref)
		best++;
	s->target = best ? d->rotate++ % best : 0;
	s->next = all_sessions;
	if (all_sessions)
		all_sessions->prev = s;
	all_sessions = s;
	next_target(s);
}

void smtp_out_close_all(struct mta *m)
{
	for (struct out_session *s = all_sessions; s; s = s->next)
		if (s->m == m && s->c && !conn_is_closed(s->c) &&
		    (s->state != S_BODY && s->state != S_DOT && s->state != S_TXN))
			session_close(s, "shutting down");
}
