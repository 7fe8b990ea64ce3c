/* smtp_session.c - the SMTP server session.  See smtp_session.h.
 *
 * Flow: every command line goes through smtp_parse_command(), then the
 * generic rules of cmd_table (allowed states), then its handler.  RCPT
 * lookups run in server_job() and deliveries in store_deliver(); the
 * connection is paused meanwhile so that pipelined commands wait and the
 * replies go out in order.  DATA and BDAT switch the connection to raw
 * mode and collect the message into a buffer bounded by
 * message_size_limit. */
#include "proto/smtp/smtp_session.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/buf.h"
#include "core/conf.h"
#include "core/log.h"
#include "core/util.h"
#include "auth/auth.h"
#include "auth/scram.h"
#include "mail/addr.h"
#include "mail/dotstuff.h"
#include "mail/submit.h"
#include "proto/server.h"
#include "proto/smtp/smtp_parser.h"
#include "store/store.h"
#include "store/writer.h"

#define ADDR_TEXT_MAX (ADDR_PATH_MAX * 2)

/* Session states; a command's table entry lists where it is allowed. */
enum {
	ST_CONNECT = 1 << 0,   /* no HELO/EHLO yet */
	ST_GREETED = 1 << 1,   /* HELO/EHLO done, no transaction */
	ST_MAIL = 1 << 2,      /* MAIL accepted, no recipient yet */
	ST_RCPT = 1 << 3,      /* at least one recipient accepted */
	ST_BDAT = 1 << 4,      /* BDAT chunks received, LAST not yet */
	ST_ANY = ST_CONNECT | ST_GREETED | ST_MAIL | ST_RCPT | ST_BDAT,
};

enum raw_kind { RAW_NONE, RAW_DATA, RAW_BDAT };

/* What happens to the bytes of the BDAT chunk being received. */
enum bdat_fate {
	BDAT_KEEP,             /* appended to the message */
	BDAT_TOO_BIG,          /* discarded, 552, transaction dropped */
	BDAT_NO_TXN,           /* discarded, 503 */
	BDAT_NO_RCPT,          /* discarded, 554 */
};

struct rcpt_entry {
	int64_t mailbox_id;        /* 0 for a remote recipient (queued) */
	char addr[ADDR_TEXT_MAX];  /* as the client gave it */
	unsigned notify;           /* DSN NOTIFY= (SMTP_NOTIFY_*), 0 = not given */
	char *orcpt;               /* DSN ORCPT= ("rfc822;addr"), heap, or NULL */
	bool expand;               /* a local list: queued, sent on to its members */
};

/* SMTP AUTH (RFC 4954) exchange in progress. */
enum auth_step {
	AUTH_NONE,
	AUTH_PLAIN,                /* 334 sent, waiting for the PLAIN response */
	AUTH_LOGIN_USER,
	AUTH_LOGIN_PASS,
	AUTH_SCRAM_FIRST,          /* waiting for client-first */
	AUTH_SCRAM_FINAL,          /* waiting for client-final */
	AUTH_SCRAM_DONE,           /* server-final sent, waiting for the empty line */
	AUTH_CRAM,
	AUTH_CHECKING,             /* a lookup or password check runs */
};

struct smtp_session {
	struct conn *c;
	struct server *srv;
	const struct conf *cfg;
	unsigned state;
	bool esmtp;                /* EHLO (not HELO) */
	bool submission;           /* port 587/465 role: AUTH required, relaying allowed */
	/* The local submission socket: no TLS, no AUTH; the kernel named the
	 * user (c->peer_uid), who may relay and send as anyone, like a local
	 * program handing mail to Postfix's sendmail. */
	bool local;
	char local_user[64];       /* the uid's name, "" when it has none */
	/* SMTP AUTH */
	char auth_user[ADDR_TEXT_MAX]; /* authenticated account, "" when not */
	/* The aliases naming auth_user (what it may also send as), read at
	 * the first MAIL after AUTH. */
	char **own;
	size_t nown;
	bool own_loaded;
	enum auth_step auth;
	char auth_mech[32];
	char *login_user;          /* AUTH LOGIN: the user, while the password comes */
	struct scram_server *scram;
	char *cram_challenge;
	uint64_t declared_size;    /* MAIL FROM SIZE=, 0 when not given (quota check) */
	char helo[SMTP_HELO_MAX + 1];

	/* transaction */
	char from[ADDR_TEXT_MAX];
	bool smtputf8;
	bool eightbit;             /* BODY=8BITMIME */
	int dsn_ret;               /* MAIL RET= (SMTP_RET_*) */
	char *envid;               /* MAIL ENVID=, heap, or NULL */
	bool fixed;                /* submission: header fix-ups done */
	bool from_bad;             /* submission: From is not the user's */
	char from_bad_addr[ADDR_TEXT_MAX];
	struct rcpt_entry *rcpts;
	size_t nrcpts, caprcpts;
	struct buf msg;            /* message data, max message_size_limit */

	/* raw input */
	enum raw_kind raw;
	struct dot_decoder dot;
	uint64_t bdat_left;        /* bytes of the current chunk still to come */
	uint64_t bdat_size;
	bool bdat_last;
	enum bdat_fate bdat_fate;
	bool bdat_prev_cr;
	size_t bdat_bare_lf;
	bool bdat_overflow;
	bool deadline_set;

	/* asynchronous work */
	bool job_running;          /* RCPT lookup */
	bool delivering;
	bool shutdown_pending;     /* 421 once the delivery is done */
	struct delivery dlv;
	int64_t *mailbox_ids;
	struct queue_rcpt_in *queue_rcpts;
	struct queue_msg_in qmsg;
	char *dlv_data;
	char *dlv_head;                 /* Return-Path and Received */
	size_t dlv_head_len;
	size_t mem_charged;            /* bytes counted in srv->smtp_data_mem */
	bool mem_full;                  /* smtp_data_memory_max hit: 452 at the end */
	size_t dlv_size;
	size_t dlv_nrcpts;

	/* A large message goes to its body file while it arrives (spill.c
	 * style, below): at most smtp_data_in_memory bytes wait in s->msg. */
	struct spill *spill;
	bool spill_paused;         /* input paused until the write in flight is done */
	bool finish_waiting;       /* data complete, waiting for the last write */
	bool in_spill_finish;      /* spill_done is running finish_message */
	bool finish_overflow;
	size_t finish_bare_lf;

	/* counters */
	int64_t errors;
	unsigned counts[SMTP_VERB_COUNT];
	unsigned commands;
};

struct smtp_cmd_def {
	enum smtp_verb verb;
	void (*handler)(struct smtp_session *s, const struct smtp_command *cmd);
	unsigned states;
};

static void auth_reset(struct smtp_session *s)
{
	s->auth = AUTH_NONE;
	if (s->login_user) {
		auth_wipe(s->login_user, strlen(s->login_user));
		s->login_user = NULL;
	}
	scram_server_free(&s->scram);
	FREE(s->cram_challenge);
}

static const char *hostname(const struct smtp_session *s)
{
	return s->cfg->hostname;
}

static size_t size_limit(const struct smtp_session *s)
{
	return (size_t)s->cfg->message_size_limit;
}

static void reply(struct smtp_session *s, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void reply(struct smtp_session *s, const char *fmt, ...)
{
	char line[1024];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(line, sizeof(line) - 2, fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	if ((size_t)n > sizeof(line) - 3)
		n = (int)sizeof(line) - 3;
	line[n++] = '\r';
	line[n++] = '\n';
	conn_write(s->c, line, (size_t)n);
}

static const char *state_name(const struct smtp_session *s)
{
	switch (s->raw) {
	case RAW_DATA:
		return "DATA";
	case RAW_BDAT:
		return "BDAT";
	case RAW_NONE:
		break;
	}
	if (s->delivering)
		return "END-OF-MESSAGE";
	if (s->job_running)
		return "RCPT";
	switch (s->state) {
	case ST_CONNECT:
		return "CONNECT";
	case ST_GREETED:
		return s->esmtp ? "EHLO" : "HELO";
	case ST_MAIL:
		return "MAIL";
	case ST_RCPT:
		return "RCPT";
	case ST_BDAT:
		return "BDAT";
	default:
		return "?";
	}
}

/* A reply the client caused: counted; at smtp_max_errors the session ends.
 * Returns true when the connection was closed. */
static bool err(struct smtp_session *s, const char *line)
{
	reply(s, "%s", line);
	s->errors++;
	if (s->cfg->smtp_max_errors > 0 && s->errors >= s->cfg->smtp_max_errors) {
		log_info("conn=%s smtp: too many errors (%" PRId64 ") from [%s]", s->c->idstr,
			 s->errors, s->c->peer);
		reply(s, "421 4.7.0 %s Too many errors", hostname(s));
		conn_close(s->c, "too many errors");
		return true;
	}
	return false;
}

/* Log a refused MAIL or RCPT, Postfix style. */
static void log_reject(struct smtp_session *s, const char *cmd, const char *line, const char *to)
{
	if (to != NULL)
		log_info("conn=%s smtp: reject: %s from [%s]: %s; from=<%s> to=<%s>", s->c->idstr,
			 cmd, s->c->peer, line, s->from, to);
	else
		log_info("conn=%s smtp: reject: %s from [%s]: %s; from=<%s>", s->c->idstr, cmd,
			 s->c->peer, line, s->from);
}

static void set_deadline(struct smtp_session *s)
{
	conn_set_deadline(s->c, (uint64_t)s->cfg->smtp_data_timeout);
	s->deadline_set = true;
}

static void clear_deadline(struct smtp_session *s)
{
	if (s->deadline_set) {
		conn_clear_deadline(s->c);
		s->deadline_set = false;
	}
}

/* Message data in memory is counted against smtp_data_memory_max, shared by
 * every session: past it, the message being received is refused with a
 * temporary error (452 4.3.1) instead of the daemon growing without bound
 * when many clients send large messages at once. */
static void msg_charge(struct smtp_session *s, size_t bytes)
{
	if (bytes > s->mem_charged) {
		s->srv->smtp_data_mem += bytes - s->mem_charged;
		s->mem_charged = bytes;
	}
	if (!s->mem_full && s->srv->smtp_data_mem > (size_t)s->cfg->smtp_data_memory_max) {
		s->mem_full = true;
		s->msg.max = s->msg.len; /* nothing more is kept */
		log_warn("conn=%s smtp: smtp_data_memory_max (%lld bytes) reached by messages "
			 "in transit; refusing this one with 452 4.3.1 (raise "
			 "smtp_data_memory_max or lower max_connections)",
			 s->c->idstr, (long long)s->cfg->smtp_data_memory_max);
	}
}

static void msg_uncharge(struct smtp_session *s)
{
	s->srv->smtp_data_mem -= s->mem_charged;
	s->mem_charged = 0;
	s->mem_full = false;
}

/* Free the message buffer and give its memory back to the budget. */
static void msg_drop(struct smtp_session *s)
{
	buf_free(&s->msg);
	if (!s->delivering)
		msg_uncharge(s);
}

/* ---- writing a large message while it arrives -------------------------
 *
 * Once more than smtp_data_in_memory bytes of a message are buffered, the
 * session takes its queue id -- a spare body file -- at once, and worker
 * jobs append the buffered data to that file, one job at a time, while the
 * next bytes arrive.  If the client sends faster than the disk takes it,
 * input pauses at four times that amount.  At the end the store appends
 * the rest, syncs the file and commits, as for any delivery.  Aborted
 * messages (size, timeout, disconnect) have their file removed by a job. */
struct spill {
	struct smtp_session *s;     /* NULL once the session gave it up */
	struct server *srv;
	int fd;                     /* -1 until the first job opens it */
	char path[4096];
	char *head;                 /* Return-Path + Received, written first */
	size_t head_len;
	struct buf chunk;           /* the data the job in flight writes */
	int64_t written;            /* bytes in the file */
	int err;                    /* errno of a failed open or write */
	bool busy;
};

static void finish_message(struct smtp_session *s, bool overflow, size_t bare_lf);
static void trace_headers(struct smtp_session *s, const char *qid, struct buf *h);

/* Worker thread. */
static void spill_work(void *arg)
{
	struct spill *sp = arg;
	if (sp->err)
		return;
	if (sp->fd < 0) {
		sp->fd = open(sp->path, O_WRONLY | O_CLOEXEC | O_NOFOLLOW);
		if (sp->fd < 0 || write_full(sp->fd, sp->head, sp->head_len) < 0) {
			sp->err = errno;
			return;
		}
		sp->written += (int64_t)sp->head_len;
	}
	if (write_full(sp->fd, sp->chunk.data, sp->chunk.len) < 0) {
		sp->err = errno;
		return;
	}
	sp->written += (int64_t)sp->chunk.len;
}

static void spill_discard_work(void *arg)
{
	struct spill *sp = arg;
	if (sp->fd >= 0)
		close(sp->fd);
	sp->fd = -1;
	if (unlink(sp->path) < 0 && errno != ENOENT)
		log_warn("smtp: cannot remove the body file %s of an aborted message: %s",
			 sp->path, strerror(errno));
}

static void spill_free(void *arg)
{
	struct spill *sp = arg;
	buf_free(&sp->chunk);
	free(sp->head);
	free(sp);
}

/* Close and remove the file of a message that will not be delivered. */
static void spill_discard(struct spill *sp)
{
	sp->s = NULL;
	server_job(sp->srv, NULL, spill_discard_work, spill_free, sp);
}

/* Give up the file of the current message (not delivered). */
static void spill_abort(struct smtp_session *s)
{
	struct spill *sp = s->spill;
	if (s->spill_paused) {
		s->spill_paused = false;
		/* Inside dispatch (a refusal at the end of the data) this only
		 * lets the loop go on after the reply; spill_done, which calls
		 * finish_message from outside, resumes after replying itself. */
		if (!s->in_spill_finish)
			conn_resume(s->c);
	}
	if (sp == NULL)
		return;
	s->spill = NULL;
	s->finish_waiting = false;
	if (sp->busy)
		sp->s = NULL;        /* spill_done discards it */
	else
		spill_discard(sp);
}

static void spill_next(struct smtp_session *s);

static void spill_done(void *arg)
{
	struct spill *sp = arg;
	struct smtp_session *s = sp->s;

	sp->busy = false;
	buf_free(&sp->chunk);
	if (s == NULL) {
		spill_discard(sp);
		return;
	}
	if (sp->err)
		log_error("conn=%s smtp: cannot write the body file %s of the message being "
			  "received: %s (check the disk under data_dir)", s->c->idstr, sp->path,
			  strerror(sp->err));
	if (s->finish_waiting) {
		s->finish_waiting = false;
		s->in_spill_finish = true;
		finish_message(s, s->finish_overflow, s->finish_bare_lf);
		s->in_spill_finish = false;
		if (!s->delivering && !conn_is_closed(s->c)) {
			/* Refused (451, 452, ...): the reply, then the next command. */
			conn_flush(s->c);
			if (s->shutdown_pending) {
				reply(s, "421 4.3.2 Service shutting down");
				conn_close(s->c, "shutdown");
				return;
			}
			conn_resume(s->c);
		}
		return;
	}
	if (!s->mem_full && s->msg.len >= (size_t)s->cfg->smtp_data_in_memory)
		spill_next(s);
	if (s->spill_paused && !(s->spill && s->spill->busy &&
				 s->msg.len >= 4 * (size_t)s->cfg->smtp_data_in_memory)) {
		s->spill_paused = false;
		conn_resume(s->c);
	}
}

/* Hand what is buffered to a write job. */
static void spill_next(struct smtp_session *s)
{
	struct spill *sp = s->spill;
	if (sp->err || sp->busy || s->msg.len < 2)
		return;
	sp->chunk = s->msg;
	/* what may still come: the rest of message_size_limit */
	buf_init(&s->msg, s->msg.max - s->msg.len + 2);
	/* The last two bytes stay buffered, so that the end of the message
	 * (does it end in CR LF?) can always be seen in s->msg. */
	sp->chunk.len -= 2;
	buf_append(&s->msg, sp->chunk.data + sp->chunk.len, 2);
	sp->busy = true;
	server_job(s->srv, s->c, spill_work, spill_done, sp);
}

/* After new message data: start or feed the body file when enough waits. */
/* ---- submission (RFC 6409 8) ------------------------------------------ */

struct from_check {
	const struct smtp_session *s;
	bool ok;
	size_t n;
	char first[ADDR_TEXT_MAX];
};

static bool user_owns(const struct smtp_session *s, const char *addr);

static void from_cb(const char *addr, void *arg)
{
	struct from_check *fc = arg;
	if (fc->n++ == 0)
		snprintf(fc->first, sizeof fc->first, "%s", addr);
	if (user_owns(fc->s, addr))
		fc->ok = true;
}

/* Add Date and Message-ID when missing, drop Bcc, and check that From is
 * the user's own address.  Runs on the first bytes of the message while
 * they are all in memory: at the end of a small message, or before a
 * large one starts going to its file. */
static void submission_fixup(struct smtp_session *s)
{
	struct submit_fix f;
	if (s->fixed || !(s->local || (s->submission && s->auth_user[0] != '\0')))
		return;
	s->fixed = true;
	if (submit_scan(s->msg.data, s->msg.len, &f) < 0) {
		log_info("conn=%s submission: header block of the message from %s cannot be "
			 "fixed up (too long, too many Bcc, or starts with a blank); sent as it is",
			 s->c->idstr, s->local ? s->c->peer : s->auth_user);
		return;
	}
	struct from_check fc = {.s = s};
	size_t hl = f.header_end;
	/* A local user is not an account: any From (the Received header
	 * names the uid). */
	if (!s->local &&
	    (submit_from_addresses(s->msg.data, hl, from_cb, &fc) < 0 || (f.has_from && !fc.ok))) {
		s->from_bad = true;
		snprintf(s->from_bad_addr, sizeof s->from_bad_addr, "%s",
			 fc.n ? fc.first : "unparseable From");
		return;
	}
	if (!f.add_date && !f.add_message_id && f.nbcc == 0)
		return;
	char local[40];
	char qid[17];
	queue_id_new(qid);
	snprintf(local, sizeof local, "%s.yubin", qid);
	struct buf out;
	buf_init(&out, s->msg.max + 1024);
	if (submit_rewrite(s->msg.data, s->msg.len, &f, now_unix(), local, hostname(s), &out) < 0) {
		buf_free(&out);
		log_warn("conn=%s submission: could not rewrite the header of the message from %s; "
			 "sent as it is", s->c->idstr, s->local ? s->c->peer : s->auth_user);
		return;
	}
	buf_free(&s->msg);
	s->msg = out;
	msg_charge(s, s->msg.cap);
	log_debug("conn=%s submission: header fixed: date=%d message-id=%d bcc=%zu", s->c->idstr,
		  f.add_date, f.add_message_id, f.nbcc);
}

static void spill_check(struct smtp_session *s)
{
	size_t at = (size_t)s->cfg->smtp_data_in_memory;
	if (s->msg.len < at || s->mem_full)
		return;
	if (s->spill == NULL) {
		submission_fixup(s);
		struct delivery *d = &s->dlv;
		memset(d, 0, sizeof(*d));
		store_writer_new_qid(s->srv->writer, d);
		if (!d->spare)
			return;     /* none made yet (that call asked for more): next time */
		struct spill *sp = xcalloc(1, sizeof(*sp));
		struct buf h;
		sp->srv = s->srv;
		sp->s = s;
		sp->fd = -1;
		store_msg_path(s->srv->store, d->relpath, sp->path, sizeof(sp->path));
		buf_init(&h, 4096 + ADDR_TEXT_MAX * 2 + SMTP_HELO_MAX);
		trace_headers(s, d->qid, &h);
		sp->head = buf_steal(&h, &sp->head_len);
		buf_init(&sp->chunk, 0);
		s->spill = sp;
	}
	if (s->spill->busy) {
		if (s->msg.len >= 4 * at && !s->spill_paused) {
			s->spill_paused = true;
			conn_pause(s->c);
		}
		return;
	}
	spill_next(s);
}

/* Memory this message holds: what is buffered and what a write job holds. */
static size_t msg_bytes(const struct smtp_session *s)
{
	return s->msg.cap + (s->spill ? s->spill->chunk.cap : 0);
}

/* Forget the mail transaction (RSET, end of message, EHLO, STARTTLS). */
static void reset_txn(struct smtp_session *s)
{
	spill_abort(s);
	s->from[0] = '\0';
	s->smtputf8 = false;
	s->eightbit = false;
	s->dsn_ret = SMTP_RET_NONE;
	FREE(s->envid);
	s->fixed = false;
	s->from_bad = false;
	for (size_t i = 0; i < s->nrcpts; i++)
		FREE(s->rcpts[i].orcpt);
	s->nrcpts = 0;
	msg_drop(s);
	s->bdat_prev_cr = false;
	s->bdat_bare_lf = 0;
	s->bdat_overflow = false;
	clear_deadline(s);
	s->state = s->helo[0] != '\0' ? ST_GREETED : ST_CONNECT;
}

/* ---- delivery ---------------------------------------------------------- */

/* RFC 3848 (and RFC 6531 for UTF8SMTP): S for TLS, A for AUTH. */
static const char *proto_name(const struct smtp_session *s)
{
	bool a = s->auth_user[0] != '\0';
	if (s->smtputf8)
		return s->c->tls ? (a ? "UTF8SMTPSA" : "UTF8SMTPS") : (a ? "UTF8SMTPA" : "UTF8SMTP");
	if (!s->esmtp)
		return "SMTP";
	return s->c->tls ? (a ? "ESMTPSA" : "ESMTPS") : (a ? "ESMTPA" : "ESMTP");
}

/* Return-Path and Received (RFC 5321 4.4) for queue id qid. */
static void trace_headers(struct smtp_session *s, const char *qid, struct buf *h)
{
	char date[64];
	rfc5322_date(now_unix(), date, sizeof(date));
	buf_printf(h, "Return-Path: <%s>\r\n", s->from);
	if (s->local) {
		/* No address to give: who sent it, as the kernel said (Postfix
		 * writes "(Postfix, from userid 1000)" for the same). */
		buf_printf(h, "Received: from local (uid %u%s%s)\r\n\tby %s (Yubin) with %s id %s",
			   (unsigned)s->c->peer_uid, s->local_user[0] ? ", " : "", s->local_user,
			   hostname(s), proto_name(s), qid);
	} else {
		/* RFC 5321 4.1.3: an IPv6 address literal carries the "IPv6:" tag. */
		buf_printf(h, "Received: from %s ([%s%s])\r\n\tby %s (Yubin) with %s id %s",
			   s->helo[0] != '\0' ? s->helo : "unknown",
			   strchr(s->c->peer, ':') ? "IPv6:" : "", s->c->peer, hostname(s),
			   proto_name(s), qid);
	}
	if (s->c->tls)
		buf_printf(h, "\r\n\t(version=%s cipher=%s bits=%d)", s->c->tls_version,
			   s->c->tls_cipher, s->c->tls_bits);
	if (s->nrcpts == 1)
		buf_printf(h, "\r\n\tfor <%s>", s->rcpts[0].addr);
	buf_printf(h, "; %s\r\n", date);
}

static void free_delivery(struct smtp_session *s)
{
	FREE(s->dlv.uids);
	FREE(s->dlv.error);
	FREE(s->dlv_data);
	FREE(s->dlv_head);
	FREE(s->mailbox_ids);
	FREE(s->queue_rcpts);
	msg_uncharge(s);
}

/* RFC 3461 NOTIFY=SUCCESS for local recipients: we are the final hop, so
 * we say "delivered" (remote ones are answered by the queue manager or the
 * next server). */
static void report_success(struct smtp_session *s, struct delivery *d)
{
	size_t n = 0;
	if (s->from[0] == '\0' || !s->srv->report_delivered)
		return;
	for (size_t i = 0; i < s->dlv_nrcpts && i < s->nrcpts; i++)
		if (s->rcpts[i].mailbox_id != 0 && (s->rcpts[i].notify & SMTP_NOTIFY_SUCCESS))
			n++;
	if (n == 0)
		return;
	const char **rcpts = xreallocarray(NULL, n, sizeof *rcpts);
	const char **orcpts = xreallocarray(NULL, n, sizeof *orcpts);
	size_t k = 0;
	for (size_t i = 0; i < s->dlv_nrcpts && i < s->nrcpts; i++) {
		if (s->rcpts[i].mailbox_id != 0 && (s->rcpts[i].notify & SMTP_NOTIFY_SUCCESS)) {
			rcpts[k] = s->rcpts[i].addr;
			orcpts[k++] = s->rcpts[i].orcpt;
		}
	}
	struct delivered_report r = {
		.qid = d->qid,
		.path = d->relpath,
		.skip = (int64_t)strlen("Return-Path: <>\r\n") + (int64_t)strlen(s->from),
		.sender = s->from,
		.envid = s->envid,
		.ret = s->dsn_ret,
		.rcpts = rcpts,
		.orcpts = orcpts,
		.nrcpts = n,
	};
	s->srv->report_delivered(s->srv, &r);
	free(rcpts);
	free(orcpts);
}

static void deliver_done(struct delivery *d)
{
	struct smtp_session *s = d->arg;
	struct conn *c = s->c;

	s->delivering = false;
	if (d->status == 0) {
		if (s->local)
			log_info("%s: from=<%s>, size=%zu, nrcpt=%zu, local uid=%u user=%s "
				 "conn=%s", d->qid, s->from, s->dlv_size, s->dlv_nrcpts,
				 (unsigned)c->peer_uid, s->local_user[0] ? s->local_user : "(none)",
				 c->idstr);
		else
			log_info("%s: from=<%s>, size=%zu, nrcpt=%zu", d->qid, s->from, s->dlv_size,
				 s->dlv_nrcpts);
		size_t k = 0;
		for (size_t i = 0; i < s->dlv_nrcpts && i < s->nrcpts; i++) {
			if (s->rcpts[i].mailbox_id == 0) {
				log_info("%s: to=<%s>, status=queued (%s)", d->qid, s->rcpts[i].addr,
					 s->rcpts[i].expand ? "a list: for its members"
							    : "for delivery to a remote server");
				continue;
			}
			log_info("%s: to=<%s>, relay=local, status=sent (delivered to %s uid=%" PRIu32
				 ")", d->qid, s->rcpts[i].addr, STORE_INBOX,
				 d->uids != NULL && k < d->nmailboxes ? d->uids[k] : 0);
			k++;
		}
		if (s->qmsg.nrcpts > 0 && s->srv->queue_kick)
			s->srv->queue_kick(s->srv);
		report_success(s, d);
		/* IMAP sessions (IDLE) on those mailboxes learn of it now. */
		for (size_t i = 0; i < d->nmailboxes; i++) {
			if (d->uids)
				server_recent_note(s->srv, d->mailbox_ids[i], d->uids[i]);
			server_mailbox_changed(s->srv, d->mailbox_ids[i]);
		}
	} else {
		log_error("%s: delivery failed, conn=%s from=<%s>: %s", d->qid, c->idstr, s->from,
			  d->error != NULL ? d->error : "unknown error");
	}
	if (!conn_is_closed(c)) {
		if (d->status == 0)
			reply(s, "250 2.0.0 Ok: queued as %s", d->qid);
		else
			reply(s, "451 4.3.0 Error: queue file write error");
		reset_txn(s);
		if (s->shutdown_pending) {
			reply(s, "421 4.3.2 Service shutting down");
			conn_close(c, "shutdown");
		} else {
			conn_resume(c);
		}
	}
	free_delivery(s);
	conn_release(c);
}

/* Writer thread, in the delivery's transaction: the remote recipients. */
static int queue_extra(struct delivery *d, struct store_txn *t, int64_t body_id, char ***unlink_r,
		       size_t *nunlink_r, char **error_r)
{
	struct smtp_session *s = d->extra_arg;
	(void)unlink_r;
	(void)nunlink_r;
	return store_txn_queue_add(t, body_id, &s->qmsg, now_unix(), error_r);
}

/* The message is complete in s->msg: check it, then hand it to the store. */
static void finish_message(struct smtp_session *s, bool overflow, size_t bare_lf)
{
	clear_deadline(s);
	if (s->spill && s->spill->busy && !s->mem_full && !overflow) {
		/* The last write of the data received so far is still going:
		 * finish when it is done (spill_done). */
		s->finish_waiting = true;
		s->finish_overflow = overflow;
		s->finish_bare_lf = bare_lf;
		conn_pause(s->c);
		return;
	}
	if (s->spill && !s->spill->busy && s->spill->err) {
		log_reject(s, "END-OF-MESSAGE", "451 4.3.0 Error: queue file write error", NULL);
		reset_txn(s);
		reply(s, "451 4.3.0 Error: queue file write error");
		return;
	}
	if (s->mem_full) {
		log_reject(s, "END-OF-MESSAGE", "452 4.3.1 Insufficient system storage", NULL);
		reset_txn(s);
		reply(s, "452 4.3.1 Insufficient system storage, try again later");
		return;
	}
	if (overflow) {
		log_reject(s, "END-OF-MESSAGE", "552 5.3.4 Message size exceeds fixed limit", NULL);
		reset_txn(s);
		err(s, "552 5.3.4 Message size exceeds fixed limit");
		return;
	}
	if (bare_lf > 0 && s->cfg->smtp_bare_newline == BARE_NEWLINE_REJECT) {
		log_reject(s, "END-OF-MESSAGE", "550 5.5.2 Bare LF not allowed", NULL);
		reset_txn(s);
		err(s, "550 5.5.2 Bare LF not allowed");
		return;
	}

	if (s->spill == NULL)
		submission_fixup(s);
	if (s->from_bad) {
		char line[ADDR_TEXT_MAX * 2 + 96];
		snprintf(line, sizeof line, "550 5.7.1 From: %s is not an address of user %s",
			 s->from_bad_addr, s->auth_user);
		log_reject(s, "END-OF-MESSAGE", line, NULL);
		reset_txn(s);
		err(s, line);
		return;
	}

	struct delivery *d = &s->dlv;
	struct spill *sp = s->spill;
	if (sp == NULL) {
		memset(d, 0, sizeof(*d));
		store_writer_new_qid(s->srv->writer, d);
	}

	/* The trace headers go in front of the data as the store writes
	 * the file: the message itself is handed over, not copied, and stays
	 * charged to the memory budget until the delivery is done. */
	size_t body_len;
	if (sp == NULL) {
		struct buf h;
		buf_init(&h, 4096 + ADDR_TEXT_MAX * 2 + SMTP_HELO_MAX);
		trace_headers(s, d->qid, &h);
		s->dlv_head = buf_steal(&h, &s->dlv_head_len);
	} else {
		/* Head and most of the data are in the file already: the store
		 * appends the rest, syncs and closes it. */
		s->spill_paused = false;     /* the delivery keeps input paused */
		d->prefilled = true;
		d->fd = sp->fd;
		d->prefilled_len = sp->written;
		s->dlv_head = NULL;
		s->dlv_head_len = 0;
		s->spill = NULL;
		spill_free(sp);
	}
	s->dlv_data = buf_steal(&s->msg, &body_len);
	s->dlv_size = s->dlv_head_len + body_len + (size_t)(d->prefilled ? d->prefilled_len : 0);

	s->mailbox_ids = xreallocarray(NULL, s->nrcpts, sizeof(*s->mailbox_ids));
	s->queue_rcpts = xreallocarray(NULL, s->nrcpts, sizeof(*s->queue_rcpts));
	size_t nlocal = 0, nremote = 0;
	for (size_t i = 0; i < s->nrcpts; i++) {
		if (s->rcpts[i].mailbox_id != 0) {
			s->mailbox_ids[nlocal++] = s->rcpts[i].mailbox_id;
		} else {
			struct queue_rcpt_in *q = &s->queue_rcpts[nremote++];
			memset(q, 0, sizeof *q);
			q->addr = s->rcpts[i].addr;
			q->notify = s->rcpts[i].notify;
			q->orcpt = s->rcpts[i].orcpt;
			q->expand = s->rcpts[i].expand;
		}
	}
	s->dlv_nrcpts = s->nrcpts;
	memset(&s->qmsg, 0, sizeof s->qmsg);
	if (nremote > 0) {
		s->qmsg.qid = d->qid;
		s->qmsg.sender = s->from;
		/* The body file starts with our Return-Path line, which belongs
		 * only to final delivery (RFC 5321 4.4): it is not sent. */
		s->qmsg.skip = (int64_t)strlen("Return-Path: <>\r\n") + (int64_t)strlen(s->from);
		s->qmsg.flags = (s->smtputf8 ? QUEUE_SMTPUTF8 : 0) | (s->eightbit ? QUEUE_8BITMIME : 0);
		s->qmsg.envid = s->envid;
		s->qmsg.ret = s->dsn_ret;
		s->qmsg.rcpts = s->queue_rcpts;
		s->qmsg.nrcpts = nremote;
		d->extra = queue_extra;
		d->extra_arg = s;
	}

	d->head = s->dlv_head;
	d->head_len = s->dlv_head_len;
	d->data = s->dlv_data;
	d->len = body_len;
	d->mailbox_ids = s->mailbox_ids;
	d->nmailboxes = nlocal;
	d->internaldate = now_unix();
	d->done = deliver_done;
	d->arg = s;

	s->delivering = true;
	conn_hold(s->c);
	conn_pause(s->c);
	store_deliver(s->srv->writer, d);
}

/* ---- raw input: DATA and BDAT ------------------------------------------ */

static void end_raw(struct smtp_session *s)
{
	s->raw = RAW_NONE;
	conn_set_raw(s->c, false);
}

static void finish_data(struct smtp_session *s)
{
	end_raw(s);
	finish_message(s, s->dot.overflow, s->dot.bare_lf);
}

/* Append a BDAT piece with bare LFs turned into CR LF. */
static void bdat_append(struct smtp_session *s, const char *p, size_t n)
{
	size_t start = 0;
	for (size_t i = 0; i < n; i++) {
		if (p[i] == '\n' && !(i > 0 ? p[i - 1] == '\r' : s->bdat_prev_cr)) {
			if (buf_append(&s->msg, p + start, i - start) < 0 ||
			    buf_append(&s->msg, "\r\n", 2) < 0)
				s->bdat_overflow = true;
			s->bdat_bare_lf++;
			start = i + 1;
		}
	}
	if (buf_append(&s->msg, p + start, n - start) < 0)
		s->bdat_overflow = true;
	if (n > 0)
		s->bdat_prev_cr = p[n - 1] == '\r';
}

static void finish_bdat_chunk(struct smtp_session *s)
{
	if (s->raw == RAW_BDAT)
		end_raw(s);
	switch (s->bdat_fate) {
	case BDAT_NO_TXN:
		err(s, "503 5.5.1 Error: need MAIL command");
		return;
	case BDAT_NO_RCPT:
		err(s, "554 5.5.1 Error: no valid recipients");
		return;
	case BDAT_TOO_BIG:
		log_reject(s, "BDAT", "552 5.3.4 Message size exceeds fixed limit", NULL);
		reset_txn(s);
		err(s, "552 5.3.4 Message size exceeds fixed limit");
		return;
	case BDAT_KEEP:
		break;
	}
	if (s->mem_full) {
		log_reject(s, "BDAT", "452 4.3.1 Insufficient system storage", NULL);
		reset_txn(s);
		reply(s, "452 4.3.1 Insufficient system storage, try again later");
		return;
	}
	if (!s->bdat_last) {
		if (s->bdat_overflow) {
			log_reject(s, "BDAT", "552 5.3.4 Message size exceeds fixed limit", NULL);
			reset_txn(s);
			err(s, "552 5.3.4 Message size exceeds fixed limit");
			return;
		}
		reply(s, "250 2.0.0 %" PRIu64 " octets received", s->bdat_size);
		return;
	}
	/* A message that does not end its last line gets the CR LF. */
	if (s->msg.len > 0 && (s->msg.len < 2 || s->msg.data[s->msg.len - 2] != '\r' ||
			       s->msg.data[s->msg.len - 1] != '\n')) {
		if (s->msg.data[s->msg.len - 1] == '\r') {
			if (buf_append(&s->msg, "\n", 1) < 0)
				s->bdat_overflow = true;
		} else if (buf_append(&s->msg, "\r\n", 2) < 0) {
			s->bdat_overflow = true;
		}
	}
	finish_message(s, s->bdat_overflow, s->bdat_bare_lf);
}

static size_t smtp_on_raw(struct conn *c, const char *data, size_t len)
{
	struct smtp_session *s = c->proto;

	if (s->raw == RAW_DATA) {
		size_t n = dot_decode(&s->dot, data, len, &s->msg);
		msg_charge(s, msg_bytes(s));
		if (!s->dot.done)
			spill_check(s);
		if (s->dot.done)
			finish_data(s);
		return n;
	}
	if (s->raw == RAW_BDAT) {
		size_t n = len;
		if ((uint64_t)n > s->bdat_left)
			n = (size_t)s->bdat_left;
		if (s->bdat_fate == BDAT_KEEP) {
			bdat_append(s, data, n);
			msg_charge(s, msg_bytes(s));
			spill_check(s);
		}
		s->bdat_left -= n;
		if (s->bdat_left == 0)
			finish_bdat_chunk(s);
		return n;
	}
	/* Not expecting raw bytes: leave them for line mode. */
	conn_set_raw(c, false);
	return 0;
}

/* ---- commands ---------------------------------------------------------- */

static void cmd_helo(struct smtp_session *s, const struct smtp_command *cmd)
{
	char name[SMTP_HELO_MAX + 1];
	const char *r;
	if (smtp_parse_helo(cmd->arg, cmd->arg_len, name, sizeof(name), &r) < 0) {
		err(s, cmd->verb == SMTP_VERB_HELO ? "501 5.5.4 Syntax: HELO hostname" : r);
		return;
	}
	memcpy(s->helo, name, sizeof(name));
	s->esmtp = cmd->verb == SMTP_VERB_EHLO;
	reset_txn(s);
	if (!s->esmtp) {
		reply(s, "250 %s", hostname(s));
		return;
	}
	reply(s, "250-%s", hostname(s));
	reply(s, "250-PIPELINING");
	reply(s, "250-SIZE %" PRId64, s->cfg->message_size_limit);
	reply(s, "250-8BITMIME");
	reply(s, "250-ENHANCEDSTATUSCODES");
	if (conn_tls_available(s->c) && !s->c->tls && !s->local)
		reply(s, "250-STARTTLS");
	/* RFC 4954 4: AUTH only where passwords may travel (after TLS). */
	if (s->submission && server_plaintext_ok(s->srv, s->c))
		reply(s, "250-AUTH SCRAM-SHA-256 PLAIN LOGIN%s",
		      s->cfg->auth_cram_md5 ? " CRAM-MD5" : "");
	reply(s, "250-SMTPUTF8");
	reply(s, "250-DSN");
	reply(s, "250 CHUNKING");
}

/* addr is the authenticated user's: the account itself, user+tag@ (with
 * recipient_delimiter) or an alias naming the account. */
static bool user_owns(const struct smtp_session *s, const char *addr)
{
	if (str_ieq(addr, s->auth_user))
		return true;
	char delim = s->cfg->recipient_delimiter[0];
	const char *at = strrchr(addr, '@'), *uat = strrchr(s->auth_user, '@');
	if (delim && at && uat) {
		size_t ulen = (size_t)(uat - s->auth_user);
		if ((size_t)(at - addr) > ulen && addr[ulen] == delim &&
		    strncasecmp(addr, s->auth_user, ulen) == 0 && str_ieq(at, uat))
			return true;
	}
	for (size_t i = 0; i < s->nown; i++)
		if (str_ieq(addr, s->own[i]))
			return true;
	return false;
}

static void own_free(struct smtp_session *s)
{
	for (size_t i = 0; i < s->nown; i++)
		free(s->own[i]);
	FREE(s->own);
	s->nown = 0;
	s->own_loaded = false;
}

struct own_job {
	struct smtp_session *s;
	struct store *store;
	char user[ADDR_TEXT_MAX];
	char *line;                /* the MAIL argument, run again when done */
	size_t len;
	char **v;
	size_t n;
	int rc;
};

static void own_work(void *arg)
{
	struct own_job *j = arg;
	j->rc = store_own_addresses(j->store, j->user, &j->v, &j->n);
}

static void cmd_mail(struct smtp_session *s, const struct smtp_command *cmd);

static void own_done(void *arg)
{
	struct own_job *j = arg;
	struct smtp_session *s = j->s;
	if (!conn_is_closed(s->c)) {
		if (j->rc < 0) {
			reply(s, "451 4.3.0 Temporary lookup failure, try again");
		} else {
			own_free(s);
			s->own = j->v;
			s->nown = j->n;
			j->v = NULL;
			j->n = 0;
			s->own_loaded = true;
			struct smtp_command cmd = {
				.verb = SMTP_VERB_MAIL, .arg = j->line, .arg_len = j->len};
			cmd_mail(s, &cmd);
		}
		conn_resume(s->c);
	}
	for (size_t i = 0; i < j->n; i++)
		free(j->v[i]);
	free(j->v);
	free(j->line);
	free(j);
}

static void load_own(struct smtp_session *s, const struct smtp_command *cmd)
{
	struct own_job *j = xcalloc(1, sizeof *j);
	j->s = s;
	j->store = s->srv->store;
	snprintf(j->user, sizeof j->user, "%s", s->auth_user);
	j->line = xstrndup(cmd->arg, cmd->arg_len);
	j->len = cmd->arg_len;
	conn_pause(s->c);
	server_job(s->srv, s->c, own_work, own_done, j);
}

static void cmd_mail(struct smtp_session *s, const struct smtp_command *cmd)
{
	struct smtp_mail_args m;
	const char *r;
	if (smtp_parse_mail(cmd->arg, cmd->arg_len, &m, &r) < 0) {
		log_reject(s, "MAIL", r, NULL);
		err(s, r);
		return;
	}
	if (m.has_size && m.size > (uint64_t)s->cfg->message_size_limit) {
		r = "552 5.3.4 Message size exceeds fixed maximum message size";
		log_reject(s, "MAIL", r, NULL);
		err(s, r);
		return;
	}
	if (s->submission && s->auth_user[0] == '\0') {
		r = "530 5.7.0 Authentication required";
		log_reject(s, "MAIL", r, NULL);
		err(s, r);
		return;
	}
	if (s->auth_user[0] != '\0' && !s->own_loaded) {
		load_own(s, cmd);      /* comes back here once they are known */
		return;
	}
	addr_format(&m.from, s->from, sizeof(s->from));
	if (s->auth_user[0] != '\0' && !user_owns(s, s->from)) {
		char line[ADDR_TEXT_MAX * 2 + 96];
		snprintf(line, sizeof line, "553 5.7.1 <%s>: Sender address rejected: not owned "
			 "by user %s", s->from, s->auth_user);
		log_reject(s, "MAIL", line, NULL);
		s->from[0] = '\0';
		err(s, line);
		return;
	}
	s->smtputf8 = m.smtputf8;
	s->eightbit = m.body == SMTP_BODY_8BITMIME;
	s->dsn_ret = m.ret;
	FREE(s->envid);
	s->envid = m.has_envid ? xstrdup(m.envid) : NULL;
	s->declared_size = m.has_size ? m.size : 0;
	s->nrcpts = 0;
	s->state = ST_MAIL;
	reply(s, "250 2.1.0 Ok");
}

/* RCPT lookup, on a worker thread. */
struct rcpt_job {
	struct smtp_session *s;
	struct store *store;
	char addr[ADDR_TEXT_MAX];       /* as given, for replies and logs */
	char lookup[ADDR_TEXT_MAX];     /* what to resolve first */
	const char *postmaster;         /* fallback for postmaster@local-domain */
	bool bare_postmaster;           /* lookup is cfg->postmaster itself */
	unsigned notify;                /* DSN parameters, kept with the recipient */
	char orcpt[SMTP_ORCPT_MAX + 1];
	char delim;                     /* recipient_delimiter, 0 = off */
	int rc;
	struct rcpt_expansion x;
};

static void rcpt_work(void *arg)
{
	struct rcpt_job *j = arg;
	if (j->lookup[0] == '\0') {
		/* Bare <Postmaster> with no postmaster configured. */
		j->rc = 0;
		j->x.status = RCPT_UNKNOWN_USER;
		return;
	}
	j->rc = store_expand_rcpt(j->store, j->lookup, j->delim, &j->x);
	if (j->rc == 0 && j->bare_postmaster && j->x.status == RCPT_NOT_LOCAL)
		j->x.status = RCPT_UNKNOWN_USER;
	if (j->rc == 0 && j->x.status == RCPT_UNKNOWN_USER && j->postmaster != NULL &&
	    j->postmaster[0] != '\0') {
		rcpt_expansion_free(&j->x);
		j->rc = store_expand_rcpt(j->store, j->postmaster, j->delim, &j->x);
		/* A postmaster account outside our domains is a config error:
		 * the address is still ours, so it is an unknown user. */
		if (j->rc == 0 && j->x.status == RCPT_NOT_LOCAL)
			j->x.status = RCPT_UNKNOWN_USER;
	}
}

/* Relaying: authenticated users, local users (the local socket), and
 * (legacy) IPs granted by a recent POP3/IMAP login. */
static bool may_relay(struct smtp_session *s)
{
	return s->auth_user[0] != '\0' || s->local || server_relay_granted(s->srv, s->c->peer);
}

static void add_rcpt(struct smtp_session *s, int64_t mailbox_id, const char *addr,
		     unsigned notify, const char *orcpt)
{
	if (s->nrcpts == s->caprcpts) {
		s->caprcpts = s->caprcpts ? s->caprcpts * 2 : 8;
		s->rcpts = xreallocarray(s->rcpts, s->caprcpts, sizeof(*s->rcpts));
	}
	struct rcpt_entry *e = &s->rcpts[s->nrcpts++];
	e->mailbox_id = mailbox_id;
	snprintf(e->addr, sizeof(e->addr), "%s", addr);
	e->notify = notify;
	e->orcpt = orcpt && orcpt[0] ? xstrdup(orcpt) : NULL;
	e->expand = false;
}

/* A queued recipient: remote, or a local list; once per address. */
static void add_remote(struct smtp_session *s, const char *addr, unsigned notify,
		       const char *orcpt, bool expand)
{
	for (size_t i = 0; i < s->nrcpts; i++)
		if (s->rcpts[i].mailbox_id == 0 && str_ieq(s->rcpts[i].addr, addr))
			return;
	add_rcpt(s, 0, addr, notify, orcpt);
	s->rcpts[s->nrcpts - 1].expand = expand;
}

/* A local target that is full (452) or would be with SIZE= (552). */
static bool quota_refusal(struct smtp_session *s, const struct rcpt_job *j, char *line,
			  size_t size)
{
	for (size_t i = 0; i < j->x.n; i++) {
		const struct rcpt_target *t = &j->x.v[i];
		if (t->kind != TARGET_LOCAL || t->quota <= 0)
			continue;
		if (t->used >= t->quota) {
			snprintf(line, size, "452 4.2.2 <%s>: Mailbox full, try again later", j->addr);
			return true;
		}
		if (s->declared_size > 0 && (uint64_t)t->used + s->declared_size > (uint64_t)t->quota) {
			snprintf(line, size, "552 5.2.2 <%s>: Message would exceed the recipient's "
				 "storage quota", j->addr);
			return true;
		}
	}
	return false;
}

static void rcpt_done(void *arg)
{
	struct rcpt_job *j = arg;
	struct smtp_session *s = j->s;
	struct conn *c = s->c;
	char line[ADDR_TEXT_MAX + 128];

	s->job_running = false;
	if (conn_is_closed(c)) {
		rcpt_expansion_free(&j->x);
		free(j);
		return;
	}
	bool closed = false;
	if (j->rc < 0) {
		log_error("conn=%s smtp: recipient lookup failed for <%s>: store error",
			  c->idstr, j->addr);
		reply(s, "451 4.3.0 <%s>: Temporary lookup failure", j->addr);
	} else if (j->x.status == RCPT_NOT_LOCAL && !may_relay(s)) {
		snprintf(line, sizeof(line), "554 5.7.1 <%s>: Relay access denied", j->addr);
		log_reject(s, "RCPT", line, j->addr);
		closed = err(s, line);
	} else if (j->x.status == RCPT_NOT_LOCAL) {
		/* Relayed: into the outbound queue with the message. */
		add_remote(s, j->addr, j->notify, j->orcpt, false);
		s->state = ST_RCPT;
		reply(s, "250 2.1.5 Ok");
	} else if (j->x.status == RCPT_UNKNOWN_USER) {
		snprintf(line, sizeof(line),
			 "550 5.1.1 <%s>: Recipient address rejected: User unknown", j->addr);
		log_reject(s, "RCPT", line, j->addr);
		closed = err(s, line);
	} else if (quota_refusal(s, j, line, sizeof line)) {
		log_reject(s, "RCPT", line, j->addr);
		reply(s, "%s", line);
	} else {
		if (j->x.capped)
			log_warn("conn=%s smtp: <%s> expands to more than %d addresses or %d "
				 "levels of aliases; the rest are left out (check yubin alias list)",
				 c->idstr, j->addr, STORE_EXPAND_MAX, STORE_EXPAND_DEPTH);
		/* RFC 3461 6.2.7.3: what an alias expands to keeps the address
		 * the sender used as its original recipient. */
		char orig[ADDR_TEXT_MAX + 16];
		if (j->orcpt[0])
			snprintf(orig, sizeof orig, "%s", j->orcpt);
		else
			snprintf(orig, sizeof orig, "rfc822;%s", j->addr);
		for (size_t i = 0; i < j->x.n; i++) {
			const struct rcpt_target *t = &j->x.v[i];
			if (t->kind == TARGET_LOCAL) {
				bool dup = false;
				for (size_t k = 0; k < s->nrcpts; k++)
					if (s->rcpts[k].mailbox_id == t->mailbox_id)
						dup = true;
				if (!dup)
					add_rcpt(s, t->mailbox_id, j->addr, j->notify, j->orcpt);
			} else {
				bool same = str_ieq(t->address, j->addr);
				add_remote(s, t->address, j->notify, same ? j->orcpt : orig,
					   t->kind == TARGET_LIST);
			}
		}
		s->state = ST_RCPT;
		reply(s, "250 2.1.5 Ok");
	}
	rcpt_expansion_free(&j->x);
	free(j);
	if (!closed)
		conn_resume(c);
}

static void cmd_rcpt(struct smtp_session *s, const struct smtp_command *cmd)
{
	struct smtp_rcpt_args r;
	const char *rl;
	char addr[ADDR_TEXT_MAX];
	char line[ADDR_TEXT_MAX + 128];

	if (smtp_parse_rcpt(cmd->arg, cmd->arg_len, s->smtputf8, &r, &rl) < 0) {
		log_reject(s, "RCPT", rl, NULL);
		err(s, rl);
		return;
	}
	addr_format(&r.to, addr, sizeof(addr));
	if (s->cfg->smtp_max_recipients > 0 &&
	    (int64_t)s->nrcpts >= s->cfg->smtp_max_recipients) {
		/* Not counted as an error: clients retry the rest later. */
		reply(s, "452 4.5.3 Error: too many recipients");
		return;
	}
	if (!r.to.postmaster && (addr_local_has_route_chars(&r.to) ||
				 (r.to.literal && !may_relay(s)))) {
		snprintf(line, sizeof(line), "554 5.7.1 <%s>: Relay access denied", addr);
		log_reject(s, "RCPT", line, addr);
		err(s, line);
		return;
	}

	struct rcpt_job *j = xcalloc(1, sizeof(*j));
	j->s = s;
	j->store = s->srv->store;
	memcpy(j->addr, addr, sizeof(j->addr));
	j->notify = r.notify;
	j->delim = s->cfg->recipient_delimiter[0];
	if (r.has_orcpt)
		memcpy(j->orcpt, r.orcpt, sizeof j->orcpt);
	if (r.to.postmaster) {
		/* Bare <Postmaster>: always ours (RFC 5321 4.5.1). */
		snprintf(j->lookup, sizeof(j->lookup), "%s", s->cfg->postmaster);
		j->bare_postmaster = true;
	} else {
		memcpy(j->lookup, addr, sizeof(j->lookup));
		if (str_ieq(r.to.local, "postmaster"))
			j->postmaster = s->cfg->postmaster;
	}
	s->job_running = true;
	conn_pause(s->c);
	server_job(s->srv, s->c, rcpt_work, rcpt_done, j);
}

static void cmd_data(struct smtp_session *s, const struct smtp_command *cmd)
{
	(void)cmd;
	if (s->nrcpts == 0) {
		err(s, "554 5.5.1 Error: no valid recipients");
		return;
	}
	reply(s, "354 End data with <CR><LF>.<CR><LF>");
	msg_drop(s);
	buf_init(&s->msg, size_limit(s));
	dot_decoder_init(&s->dot);
	s->raw = RAW_DATA;
	conn_set_raw(s->c, true);
	set_deadline(s);
}

static void cmd_bdat(struct smtp_session *s, const struct smtp_command *cmd)
{
	uint64_t n;
	bool last;
	const char *r;
	if (smtp_parse_bdat(cmd->arg, cmd->arg_len, &n, &last, &r) < 0) {
		err(s, r);
		return;
	}
	s->bdat_size = n;
	s->bdat_last = last;
	if (s->state == ST_RCPT) {
		msg_drop(s);
		buf_init(&s->msg, size_limit(s));
		s->bdat_prev_cr = false;
		s->bdat_bare_lf = 0;
		s->bdat_overflow = false;
		s->state = ST_BDAT;
		set_deadline(s);
	}
	if (s->state == ST_BDAT)
		s->bdat_fate = n > (uint64_t)buf_room(&s->msg) ? BDAT_TOO_BIG : BDAT_KEEP;
	else if (s->state == ST_MAIL)
		s->bdat_fate = BDAT_NO_RCPT;
	else
		s->bdat_fate = BDAT_NO_TXN;
	if (n == 0) {
		finish_bdat_chunk(s);
		return;
	}
	s->bdat_left = n;
	s->raw = RAW_BDAT;
	conn_set_raw(s->c, true);
}

static void cmd_rset(struct smtp_session *s, const struct smtp_command *cmd)
{
	(void)cmd;
	reset_txn(s);
	reply(s, "250 2.0.0 Ok");
}

static void cmd_noop(struct smtp_session *s, const struct smtp_command *cmd)
{
	(void)cmd;
	reply(s, "250 2.0.0 Ok");
}

static void cmd_quit(struct smtp_session *s, const struct smtp_command *cmd)
{
	(void)cmd;
	reply(s, "221 2.0.0 Bye");
	conn_close(s->c, "quit");
}

static void cmd_vrfy(struct smtp_session *s, const struct smtp_command *cmd)
{
	(void)cmd;
	reply(s, "252 2.1.5 Cannot VRFY user, but will accept message and attempt delivery");
}

static void cmd_expn(struct smtp_session *s, const struct smtp_command *cmd)
{
	(void)cmd;
	err(s, "502 5.5.1 Error: command not implemented");
}

static void cmd_help(struct smtp_session *s, const struct smtp_command *cmd)
{
	(void)cmd;
	reply(s, "214 2.0.0 Commands: EHLO HELO MAIL RCPT DATA BDAT RSET NOOP QUIT VRFY HELP "
		 "STARTTLS; see RFC 5321");
}

/* ---- SMTP AUTH (RFC 4954) ---------------------------------------------- */

#define AUTH_B64_MAX 12288      /* RFC 4954 4: a response line may be this long */

struct auth_job {
	struct smtp_session *s;
	char mech[16];
	char *user;
	char *password;             /* PLAIN, LOGIN */
	size_t pwlen;
	char *cram_hex;             /* CRAM-MD5 digest */
	int rc;                     /* 1 ok, 0 bad, -1 temporary */
	bool cached;
	char *scram_secret;         /* SCRAM: the account's keys, or NULL */
	struct account acct;
};

struct delayed_reply {
	uv_timer_t t;
	struct smtp_session *s;
	struct conn *c;
	char line[128];
};

static void delayed_closed(uv_handle_t *h)
{
	struct delayed_reply *dr = h->data;
	conn_release(dr->c);
	free(dr);
}

static void delayed_fire(uv_timer_t *t)
{
	struct delayed_reply *dr = t->data;
	if (!conn_is_closed(dr->c)) {
		if (!err(dr->s, dr->line)) {
			conn_resume(dr->c);
			conn_flush(dr->c);
		}
	}
	uv_close((uv_handle_t *)&dr->t, delayed_closed);
}

/* 535 after the failure delay (server_auth_failed).  Returns true when the
 * reply is delayed (the connection is paused until it goes out). */
static bool auth_fail(struct smtp_session *s, const char *user, const char *line)
{
	uint64_t delay = server_auth_failed(s->srv, s->c->peer, user);
	log_info("conn=%s smtp: AUTH %s failed for %s from [%s]%s", s->c->idstr, s->auth_mech,
		 user && user[0] ? user : "(unknown)", s->c->peer,
		 delay ? " (reply delayed)" : "");
	auth_reset(s);
	if (delay == 0) {
		err(s, line);
		return false;
	}
	struct delayed_reply *dr = xcalloc(1, sizeof *dr);
	dr->s = s;
	dr->c = s->c;
	snprintf(dr->line, sizeof dr->line, "%s", line);
	conn_hold(s->c);
	conn_pause(s->c);
	uv_timer_init(s->srv->loop, &dr->t);
	dr->t.data = dr;
	uv_timer_start(&dr->t, delayed_fire, delay, 0);
	return true;
}

static void auth_ok(struct smtp_session *s, const char *address)
{
	snprintf(s->auth_user, sizeof s->auth_user, "%s", address);
	server_auth_succeeded(s->srv, s->c->peer, address);
	log_info("conn=%s smtp: AUTH %s user=%s from [%s]", s->c->idstr, s->auth_mech, address,
		 s->c->peer);
	auth_reset(s);
	reply(s, "235 2.7.0 Authentication successful");
}

static void auth_job_free(struct auth_job *j)
{
	if (j->password)
		auth_wipe(j->password, j->pwlen);
	free(j->user);
	free(j->cram_hex);
	if (j->scram_secret)
		auth_wipe(j->scram_secret, strlen(j->scram_secret));
	account_free(&j->acct);
	free(j);
}

static void password_work(void *arg)
{
	struct auth_job *j = arg;
	j->rc = auth_login_cached(j->s->srv->store, j->user, j->password, &j->acct, &j->cached);
}

static void lookup_work(void *arg)
{
	struct auth_job *j = arg;
	j->rc = store_account_find(j->s->srv->store, j->user, &j->acct);
}

static void password_done(void *arg)
{
	struct auth_job *j = arg;
	struct smtp_session *s = j->s;
	struct conn *c = s->c;
	if (conn_is_closed(c)) {
		auth_job_free(j);
		return;
	}
	s->auth = AUTH_NONE;
	if (j->rc < 0) {
		auth_reset(s);
		reply(s, "454 4.7.0 Temporary authentication failure");
	} else if (j->rc == 0) {
		bool delayed = auth_fail(s, j->user, "535 5.7.8 Authentication credentials invalid");
		auth_job_free(j);
		if (!delayed && !conn_is_closed(c))
			conn_resume(c);
		return;
	} else {
		auth_ok(s, j->acct.address);
	}
	auth_job_free(j);
	conn_resume(c);
}

static void check_password(struct smtp_session *s, char *user, char *password, size_t pwlen)
{
	struct auth_job *j = xcalloc(1, sizeof *j);
	j->s = s;
	j->user = user;
	j->password = password;
	j->pwlen = pwlen;
	s->auth = AUTH_CHECKING;
	conn_pause(s->c);
	server_auth_job(s->srv, s->c, password_work, password_done, j);
}

/* PLAIN: base64 of authzid NUL authcid NUL password. */
static void auth_plain(struct smtp_session *s, const char *b64)
{
	char *buf;
	const char *authzid, *authcid, *passwd;
	if (sasl_plain_decode(b64, &buf, &authzid, &authcid, &passwd) < 0) {
		auth_reset(s);
		err(s, "501 5.5.2 Invalid SASL PLAIN response");
		return;
	}
	size_t buflen = (size_t)(passwd - buf) + strlen(passwd) + 1;
	if ((authzid[0] != '\0' && !str_ieq(authzid, authcid)) || strlen(authcid) >= ADDR_TEXT_MAX) {
		char *u = xstrdup(authcid);
		auth_wipe(buf, buflen);
		(void)auth_fail(s, u, "535 5.7.8 Authentication credentials invalid");
		free(u);
		return;
	}
	char *user = xstrdup(authcid);
	size_t pwlen = strlen(passwd);
	char *password = xstrndup(passwd, pwlen);
	auth_wipe(buf, buflen);
	check_password(s, user, password, pwlen);
}

/* A base64 response line into a heap string (NUL-terminated); -1 bad. */
static int b64_line(const char *line, size_t len, char **out_r, size_t *n_r)
{
	if (len > AUTH_B64_MAX)
		return -1;
	char *out = xmalloc(len / 4 * 3 + 4);
	long n = base64_decode(line, len, (unsigned char *)out);
	if (n < 0 || memchr(out, '\0', (size_t)n) != NULL) {
		auth_wipe(out, len / 4 * 3 + 4);
		return -1;
	}
	out[n] = '\0';
	*out_r = out;
	*n_r = (size_t)n;
	return 0;
}

static void send_challenge(struct smtp_session *s, const char *data, size_t len)
{
	char *b = xmalloc(len / 3 * 4 + 8);
	size_t n = base64_encode((const unsigned char *)data, len, b);
	b[n] = '\0';
	reply(s, "334 %s", b);
	free(b);
}

static void scram_secret_done(void *arg)
{
	struct auth_job *j = arg;
	struct smtp_session *s = j->s;
	struct conn *c = s->c;
	if (conn_is_closed(c)) {
		auth_job_free(j);
		return;
	}
	if (j->rc < 0) {
		auth_reset(s);
		reply(s, "454 4.7.0 Temporary authentication failure");
	} else {
		char *first = NULL;
		/* An unknown user (or one without SCRAM keys) gets a made-up
		 * salt and fails at the proof, like everyone else. */
		const char *secret = j->rc == 1 ? j->acct.scram : NULL;
		if (scram_server_first(s->scram, secret, &first) < 0) {
			auth_reset(s);
			reply(s, "454 4.7.0 Temporary authentication failure");
		} else {
			s->auth = AUTH_SCRAM_FINAL;
			send_challenge(s, first, strlen(first));
			free(first);
		}
	}
	auth_job_free(j);
	conn_resume(c);
}

static void cram_done(void *arg)
{
	struct auth_job *j = arg;
	struct smtp_session *s = j->s;
	struct conn *c = s->c;
	if (conn_is_closed(c)) {
		auth_job_free(j);
		return;
	}
	if (j->rc < 0) {
		auth_reset(s);
		reply(s, "454 4.7.0 Temporary authentication failure");
	} else if (j->rc == 1 && j->acct.apop_secret &&
		   cram_md5_verify(j->acct.apop_secret, s->cram_challenge, j->cram_hex)) {
		auth_ok(s, j->acct.address);
	} else {
		bool delayed = auth_fail(s, j->user, "535 5.7.8 Authentication credentials invalid");
		auth_job_free(j);
		if (!delayed && !conn_is_closed(c))
			conn_resume(c);
		return;
	}
	auth_job_free(j);
	conn_resume(c);
}

/* One response line of an exchange in progress. */
static void auth_response(struct smtp_session *s, const char *line, size_t len)
{
	if (len == 1 && line[0] == '*') {
		auth_reset(s);
		err(s, "501 5.0.0 Authentication aborted");
		return;
	}
	if (s->auth == AUTH_PLAIN) {
		char *tmp = xstrndup(line, len);
		auth_plain(s, tmp);
		auth_wipe(tmp, len);
		return;
	}
	if (s->auth == AUTH_SCRAM_DONE) {
		/* The client's empty answer to our server-final message. */
		if (len != 0) {
			auth_reset(s);
			err(s, "501 5.5.2 Invalid SCRAM response");
			return;
		}
		char *user = xstrdup(s->login_user ? s->login_user : "");
		auth_ok(s, user);
		free(user);
		return;
	}
	char *dec;
	size_t n;
	if (b64_line(line, len, &dec, &n) < 0) {
		auth_reset(s);
		err(s, "501 5.5.2 Invalid base64 in the authentication response");
		return;
	}
	switch (s->auth) {
	case AUTH_LOGIN_USER:
		s->login_user = dec;
		s->auth = AUTH_LOGIN_PASS;
		reply(s, "334 UGFzc3dvcmQ6");
		return;
	case AUTH_LOGIN_PASS: {
		char *user = s->login_user;
		s->login_user = NULL;
		check_password(s, user, dec, n);
		return;
	}
	case AUTH_SCRAM_FIRST: {
		const char *e;
		if (scram_server_client_first(s->scram, dec, n, &e) < 0) {
			auth_wipe(dec, n);
			auth_reset(s);
			reply(s, "501 5.5.2 Invalid SCRAM message: %s", e);
			s->errors++;
			return;
		}
		auth_wipe(dec, n);
		struct auth_job *j = xcalloc(1, sizeof *j);
		j->s = s;
		j->user = xstrdup(scram_server_authcid(s->scram));
		s->auth = AUTH_CHECKING;
		conn_pause(s->c);
		server_job(s->srv, s->c, lookup_work, scram_secret_done, j);
		return;
	}
	case AUTH_SCRAM_FINAL: {
		char *out = NULL;
		const char *e = NULL;
		int r = scram_server_client_final(s->scram, dec, n, &out, &e);
		auth_wipe(dec, n);
		if (r < 0) {
			free(out);
			auth_reset(s);
			reply(s, "501 5.5.2 Invalid SCRAM message: %s", e ? e : "malformed");
			s->errors++;
			return;
		}
		if (r == 0) {
			char *u = xstrdup(scram_server_authcid(s->scram));
			free(out);
			(void)auth_fail(s, u, "535 5.7.8 Authentication credentials invalid");
			free(u);
			return;
		}
		/* The account's canonical address: authcid as looked up. */
		s->login_user = xstrdup(scram_server_authcid(s->scram));
		str_lower(s->login_user);
		s->auth = AUTH_SCRAM_DONE;
		send_challenge(s, out, strlen(out));
		free(out);
		return;
	}
	case AUTH_CRAM: {
		char *user = NULL, hex[33];
		if (cram_md5_parse(dec, n, &user, hex) < 0) {
			auth_wipe(dec, n);
			auth_reset(s);
			err(s, "501 5.5.2 Invalid CRAM-MD5 response");
			return;
		}
		auth_wipe(dec, n);
		struct auth_job *j = xcalloc(1, sizeof *j);
		j->s = s;
		j->user = user;
		j->cram_hex = xstrdup(hex);
		s->auth = AUTH_CHECKING;
		conn_pause(s->c);
		server_job(s->srv, s->c, lookup_work, cram_done, j);
		return;
	}
	default:
		auth_wipe(dec, n);
		auth_reset(s);
		return;
	}
}

static void cmd_auth(struct smtp_session *s, const struct smtp_command *cmd)
{
	if (!s->submission) {
		err(s, "503 5.5.1 Error: authentication not enabled");
		return;
	}
	if (s->auth_user[0] != '\0') {
		err(s, "503 5.5.1 Error: already authenticated");
		return;
	}
	if (s->state != ST_GREETED) {
		err(s, s->state == ST_CONNECT ? "503 5.5.1 Error: send EHLO first"
					      : "503 5.5.1 Error: MAIL transaction in progress");
		return;
	}
	if (!server_plaintext_ok(s->srv, s->c)) {
		err(s, "538 5.7.11 Encryption required for requested authentication mechanism");
		return;
	}
	char mech[32];
	size_t ml = strcspn(cmd->arg, " ");
	if (ml >= sizeof mech) {
		err(s, "504 5.5.4 Unrecognized authentication type");
		return;
	}
	memcpy(mech, cmd->arg, ml);
	mech[ml] = '\0';
	const char *ir = ml < cmd->arg_len ? cmd->arg + ml + 1 : NULL;
	size_t irlen = ir ? cmd->arg_len - ml - 1 : 0;
	/* "=" is an empty initial response (RFC 4954 4). */
	bool ir_empty = ir && irlen == 1 && ir[0] == '=';
	for (char *p = mech; *p; p++)
		if (*p >= 'a' && *p <= 'z')
			*p = (char)(*p - 'a' + 'A');
	snprintf(s->auth_mech, sizeof s->auth_mech, "%s", mech);
	if (strcmp(mech, "PLAIN") == 0) {
		if (!ir || ir_empty) {
			s->auth = AUTH_PLAIN;
			reply(s, "334 ");
			return;
		}
		s->auth = AUTH_PLAIN;
		auth_response(s, ir, irlen);
	} else if (strcmp(mech, "LOGIN") == 0) {
		if (ir && !ir_empty) {
			s->auth = AUTH_LOGIN_USER;
			auth_response(s, ir, irlen);
			return;
		}
		s->auth = AUTH_LOGIN_USER;
		reply(s, "334 VXNlcm5hbWU6");
	} else if (strcmp(mech, "SCRAM-SHA-256") == 0) {
		s->scram = scram_server_new();
		s->auth = AUTH_SCRAM_FIRST;
		if (ir && !ir_empty)
			auth_response(s, ir, irlen);
		else
			reply(s, "334 ");
	} else if (strcmp(mech, "CRAM-MD5") == 0 && s->cfg->auth_cram_md5) {
		if (ir) {
			err(s, "501 5.5.2 CRAM-MD5 takes no initial response");
			return;
		}
		s->cram_challenge = cram_md5_challenge(hostname(s));
		s->auth = AUTH_CRAM;
		send_challenge(s, s->cram_challenge, strlen(s->cram_challenge));
	} else {
		err(s, "504 5.5.4 Unrecognized authentication type");
	}
}

static void cmd_starttls(struct smtp_session *s, const struct smtp_command *cmd)
{
	(void)cmd;
	if (s->c->tls) {
		err(s, "503 5.5.1 Error: TLS already active");
		return;
	}
	if (!conn_tls_available(s->c) || s->local) {
		err(s, "502 5.5.1 Error: command not implemented");
		return;
	}
	reply(s, "220 2.0.0 Ready to start TLS");
	if (conn_start_tls(s->c) < 0) {
		log_error("conn=%s smtp: STARTTLS failed to start", s->c->idstr);
		conn_close(s->c, "STARTTLS failed");
	}
}

static const struct smtp_cmd_def cmd_table[SMTP_VERB_COUNT] = {
	[SMTP_VERB_HELO] = {SMTP_VERB_HELO, cmd_helo, ST_ANY},
	[SMTP_VERB_EHLO] = {SMTP_VERB_EHLO, cmd_helo, ST_ANY},
	[SMTP_VERB_MAIL] = {SMTP_VERB_MAIL, cmd_mail, ST_GREETED},
	[SMTP_VERB_RCPT] = {SMTP_VERB_RCPT, cmd_rcpt, ST_MAIL | ST_RCPT},
	[SMTP_VERB_DATA] = {SMTP_VERB_DATA, cmd_data, ST_MAIL | ST_RCPT},
	/* BDAT must consume its chunk in every state: its handler decides. */
	[SMTP_VERB_BDAT] = {SMTP_VERB_BDAT, cmd_bdat, ST_ANY},
	[SMTP_VERB_RSET] = {SMTP_VERB_RSET, cmd_rset, ST_ANY},
	[SMTP_VERB_NOOP] = {SMTP_VERB_NOOP, cmd_noop, ST_ANY},
	[SMTP_VERB_QUIT] = {SMTP_VERB_QUIT, cmd_quit, ST_ANY},
	[SMTP_VERB_VRFY] = {SMTP_VERB_VRFY, cmd_vrfy, ST_ANY},
	[SMTP_VERB_EXPN] = {SMTP_VERB_EXPN, cmd_expn, ST_ANY},
	[SMTP_VERB_HELP] = {SMTP_VERB_HELP, cmd_help, ST_ANY},
	[SMTP_VERB_STARTTLS] = {SMTP_VERB_STARTTLS, cmd_starttls, ST_ANY},
	[SMTP_VERB_AUTH] = {SMTP_VERB_AUTH, cmd_auth, ST_ANY},
};

/* The 503 for a command given in a state its entry does not allow. */
static const char *bad_state_reply(const struct smtp_session *s, enum smtp_verb verb)
{
	if (verb == SMTP_VERB_MAIL) {
		if (s->state == ST_CONNECT)
			return "503 5.5.1 Error: send HELO/EHLO first";
		return "503 5.5.1 Error: nested MAIL command";
	}
	if (s->state == ST_BDAT)
		return "503 5.5.1 Error: BDAT transaction in progress";
	return "503 5.5.1 Error: need MAIL command";
}

/* ---- connection callbacks ---------------------------------------------- */

extern const struct conn_handler submission_conn_handler;

/* The local user's name for the Received header and the log: getpwuid_r
 * may ask NSS (LDAP, sssd) and block, so it runs on the pool, once per
 * connection, before the greeting. */
struct pwname_job {
	struct smtp_session *s;
	struct conn *c;
	uint32_t uid;
	char name[64];
};

static void pwname_work(void *arg)
{
	struct pwname_job *j = arg;
	struct passwd pw, *res = NULL;
	char buf[16384];

	if (getpwuid_r((uid_t)j->uid, &pw, buf, sizeof buf, &res) != 0 || res == NULL ||
	    res->pw_name == NULL)
		return;
	/* It goes into a header comment and a log line: plain characters
	 * only (a name with others is shown with '?'). */
	size_t n = 0;
	for (const char *p = res->pw_name; *p && n < sizeof j->name - 1; p++) {
		char ch = *p;
		bool ok = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
			  (ch >= '0' && ch <= '9') || ch == '.' || ch == '_' || ch == '-' ||
			  ch == '$';
		j->name[n++] = ok ? ch : '?';
	}
	j->name[n] = '\0';
}

static void greet(struct smtp_session *s)
{
	struct conn *c = s->c;
	if (s->local)
		log_info("conn=%s %s: connect from uid=%u user=%s", c->idstr, c->h->name,
			 (unsigned)c->peer_uid, s->local_user[0] ? s->local_user : "(none)");
	else
		log_info("conn=%s %s: connect from [%s]:%d", c->idstr, c->h->name, c->peer,
			 c->peer_port);
	reply(s, "220 %s ESMTP Yubin", hostname(s));
}

static void pwname_done(void *arg)
{
	struct pwname_job *j = arg;
	if (!conn_is_closed(j->c)) {
		memcpy(j->s->local_user, j->name, sizeof j->s->local_user);
		greet(j->s);
		conn_resume(j->c);
	}
	free(j);
}

static void smtp_on_open(struct conn *c)
{
	struct smtp_session *s = xcalloc(1, sizeof(*s));
	s->c = c;
	s->srv = c->server;
	s->cfg = s->srv->cfg;
	s->state = ST_CONNECT;
	s->submission = c->h == &submission_conn_handler;
	s->local = c->h == &local_submit_conn_handler && c->local;
	buf_init(&s->msg, size_limit(s));
	c->proto = s;
	conn_set_max_line(c, SMTP_MAX_LINE);
	conn_set_timeouts(c, (uint64_t)s->cfg->smtp_timeout, (uint64_t)s->cfg->command_timeout);
	if (s->local) {
		struct pwname_job *j = xcalloc(1, sizeof *j);
		j->s = s;
		j->c = c;
		j->uid = c->peer_uid;
		conn_pause(c);
		server_job(s->srv, c, pwname_work, pwname_done, j);
		return;
	}
	greet(s);
}

/* A line that carried a secret: clear it in place. */
static void auth_wipe_line(char *line, size_t len)
{
	volatile char *p = line;
	for (size_t i = 0; i < len; i++)
		p[i] = 0;
}

static void smtp_on_line(struct conn *c, char *line, size_t len)
{
	struct smtp_session *s = c->proto;
	struct smtp_command cmd;
	const char *r;

	if (conn_is_closed(c))
		return;
	if (s->auth != AUTH_NONE && s->auth != AUTH_CHECKING) {
		auth_response(s, line, len);
		auth_wipe_line(line, len);
		return;
	}
	s->commands++;
	int rc = smtp_parse_command(line, len, &cmd, &r);
	s->counts[cmd.verb]++;
	if (rc < 0) {
		err(s, r);
		return;
	}
	const struct smtp_cmd_def *def = &cmd_table[cmd.verb];
	if ((def->states & s->state) == 0) {
		err(s, bad_state_reply(s, cmd.verb));
		return;
	}
	def->handler(s, &cmd);
	if (cmd.verb == SMTP_VERB_AUTH)
		auth_wipe_line(line, len);
}

static void smtp_on_line_too_long(struct conn *c)
{
	struct smtp_session *s = c->proto;
	if (conn_is_closed(c))
		return;
	s->commands++;
	s->counts[SMTP_VERB_UNKNOWN]++;
	err(s, "500 5.5.2 Line too long");
}

static void smtp_on_line_nul(struct conn *c)
{
	struct smtp_session *s = c->proto;
	if (conn_is_closed(c))
		return;
	s->commands++;
	s->counts[SMTP_VERB_UNKNOWN]++;
	err(s, "500 5.5.2 NUL byte not allowed");
}

static void smtp_on_timeout(struct conn *c, enum conn_timeout which)
{
	struct smtp_session *s = c->proto;
	static const char *const names[] = {"idle", "command", "data deadline"};
	log_info("conn=%s smtp: timeout (%s) after %s from [%s]", c->idstr,
		 (unsigned)which < ARRAY_LEN(names) ? names[which] : "?", state_name(s), c->peer);
	reply(s, "421 4.4.2 %s Error: timeout exceeded", hostname(s));
	conn_close(c, "timeout");
}

static void smtp_on_tls(struct conn *c, bool ok)
{
	struct smtp_session *s = c->proto;
	if (!ok) {
		conn_close(c, "TLS handshake failed");
		return;
	}
	/* RFC 3207 4.2: forget everything learnt before the handshake. */
	s->helo[0] = '\0';
	s->esmtp = false;
	s->auth_user[0] = '\0';
	own_free(s);
	auth_reset(s);
	reset_txn(s);
	log_info("conn=%s smtp: STARTTLS from [%s] version=%s cipher=%s", c->idstr, c->peer,
		 c->tls_version, c->tls_cipher);
}

static void smtp_on_shutdown(struct conn *c)
{
	struct smtp_session *s = c->proto;
	if (conn_is_closed(c))
		return;
	if (s->delivering || s->finish_waiting) {
		/* The message is complete and on its way to disk: answer it
		 * first (deliver_done or spill_done sends the 421). */
		s->shutdown_pending = true;
		return;
	}
	if (s->raw != RAW_NONE)
		end_raw(s);
	reply(s, "421 4.3.2 Service shutting down");
	conn_close(c, "shutdown");
}

static void smtp_on_close(struct conn *c, const char *reason)
{
	struct smtp_session *s = c->proto;
	char counts[512];
	size_t off = 0;

	if (s == NULL)
		return;
	spill_abort(s);
	counts[0] = '\0';
	for (int v = 1; v <= SMTP_VERB_COUNT; v++) {
		/* UNKNOWN last, as Postfix does. */
		enum smtp_verb verb = v == SMTP_VERB_COUNT ? SMTP_VERB_UNKNOWN : (enum smtp_verb)v;
		if (s->counts[verb] == 0)
			continue;
		int n = snprintf(counts + off, sizeof(counts) - off, " %s=%u",
				 smtp_verb_info(verb)->logname, s->counts[verb]);
		if (n < 0 || (size_t)n >= sizeof(counts) - off)
			break;
		off += (size_t)n;
	}
	log_info("conn=%s smtp: disconnect from [%s]%s commands=%u", c->idstr, c->peer, counts,
		 s->commands);
	log_debug("conn=%s smtp: closed: %s", c->idstr, reason != NULL ? reason : "");
}

static void smtp_on_free(struct conn *c)
{
	struct smtp_session *s = c->proto;
	if (s == NULL)
		return;
	if (s->spill != NULL) {      /* cannot happen after on_close; never leak it */
		struct spill *sp = s->spill;
		s->spill = NULL;
		if (!sp->busy)
			spill_discard(sp);
	}
	buf_free(&s->msg);
	for (size_t i = 0; i < s->nrcpts; i++)
		free(s->rcpts[i].orcpt);
	free(s->rcpts);
	free(s->envid);
	own_free(s);
	auth_reset(s);
	free_delivery(s);
	msg_uncharge(s);
	free(s);
	c->proto = NULL;
}

const struct conn_handler smtp_conn_handler = {
	.name = "smtp",
	.on_open = smtp_on_open,
	.on_line = smtp_on_line,
	.on_raw = smtp_on_raw,
	.on_line_too_long = smtp_on_line_too_long,
	.on_line_nul = smtp_on_line_nul,
	.on_timeout = smtp_on_timeout,
	.on_tls = smtp_on_tls,
	.on_shutdown = smtp_on_shutdown,
	.on_close = smtp_on_close,
	.on_free = smtp_on_free,
};

const struct conn_handler local_submit_conn_handler = {
	.name = "local",
	.on_open = smtp_on_open,
	.on_line = smtp_on_line,
	.on_raw = smtp_on_raw,
	.on_line_too_long = smtp_on_line_too_long,
	.on_line_nul = smtp_on_line_nul,
	.on_timeout = smtp_on_timeout,
	.on_tls = smtp_on_tls,
	.on_shutdown = smtp_on_shutdown,
	.on_close = smtp_on_close,
	.on_free = smtp_on_free,
};

const struct conn_handler submission_conn_handler = {
	.name = "submission",
	.on_open = smtp_on_open,
	.on_line = smtp_on_line,
	.on_raw = smtp_on_raw,
	.on_line_too_long = smtp_on_line_too_long,
	.on_line_nul = smtp_on_line_nul,
	.on_timeout = smtp_on_timeout,
	.on_tls = smtp_on_tls,
	.on_shutdown = smtp_on_shutdown,
	.on_close = smtp_on_close,
	.on_free = smtp_on_free,
};
