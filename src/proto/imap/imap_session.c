/* imap_session.c - the IMAP server session.
 *
 * Input: the connection runs in raw mode and every byte goes through the
 * incremental command parser (imap_parser.c), which handles literals and
 * enforces the line, literal, depth and argument caps.  Two states read
 * plain lines instead: an AUTHENTICATE continuation and IDLE (waiting for
 * DONE).
 *
 * One command runs at a time: a command that needs the store pauses the
 * connection and runs its work in server_job() (reads) or through the store
 * writer (writes); pipelined commands wait in the buffer.  Replies that may
 * be large (FETCH, SEARCH, LIST) are produced in pieces and queued only
 * while the client keeps up (stream_*).
 *
 * The selected mailbox: the session keeps a snapshot of (UID, flags,
 * keywords, MODSEQ) per message, in UID order; message numbers are indexes
 * into it.  Other sessions' changes reach it by server_mailbox_changed(),
 * which marks the session dirty; before the tagged reply of a command the
 * session reads what changed since its HIGHESTMODSEQ (store_mailbox_sync)
 * and sends EXISTS / RECENT / FETCH / EXPUNGE (or VANISHED) responses.
 * During FETCH, STORE and SEARCH (not their UID forms) expunges are held
 * back, as RFC 3501 7.4.1 requires.  In IDLE a change is sent at once. */
#include "proto/imap/imap_session.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "auth/auth.h"
#include "core/buf.h"
#include "core/conf.h"
#include "core/log.h"
#include "core/util.h"
#include "mail/mime.h"
#include "mail/mutf7.h"
#include "proto/imap/imap_cache.h"
#include "proto/imap/imap_fetch.h"
#include "proto/imap/imap_parser.h"
#include "proto/imap/imap_search.h"
#include "proto/server.h"
#include "store/store.h"
#include "store/writer.h"

#define IMAP_MAX_ERRORS 20              /* bad commands in a row before BYE */
#define IMAP_USER_MAX 320
#define STREAM_LOW (128 * 1024)         /* queue more output only below this */
#define STREAM_PIECE (64 * 1024)
#define FETCH_BATCH 512                 /* messages per metadata job */
#define SEARCH_SCAN_MAX (64u * 1024 * 1024) /* file bytes read per message for SEARCH */

/* Session-local bits kept in msg_state.flags above the FLAG_* bits. */
#define MSGF_RECENT (1u << 30)
#define MSGF_SYSTEM (FLAG_SEEN | FLAG_ANSWERED | FLAG_FLAGGED | FLAG_DELETED | FLAG_DRAFT)

enum imap_state {
	ST_NOTAUTH = 1 << 0,
	ST_AUTH = 1 << 1,
	ST_SELECTED = 1 << 2,
	ST_ANY = ST_NOTAUTH | ST_AUTH | ST_SELECTED,
};

enum {
	EN_CONDSTORE = 1 << 0,
	EN_QRESYNC = 1 << 1,
	EN_REV2 = 1 << 2,
	EN_UTF8 = 1 << 3,
};

enum line_mode { LINE_NONE, LINE_SASL, LINE_IDLE };

struct imap_session;
typedef void (*then_fn)(struct imap_session *s);

struct imap_session {
	struct conn *c;
	struct server *srv;
	struct imap_parser *p;
	enum imap_state state;
	unsigned enabled;          /* EN_* */
	bool condstore;            /* CONDSTORE active (enabled or used) */
	int errors;
	char tag[IMAP_TAG_MAX + 1];
	enum line_mode line_mode;
	bool busy;                 /* a command is running (the conn is paused) */
	bool shutdown_pending;
	bool logout;
	char ipkey[80];
	bool ip_counted;

	/* Authenticated. */
	char *login;
	int64_t account_id;
	char userkey[IMAP_USER_MAX + 8];
	bool user_counted;

	/* Selected. */
	int64_t mbox_id;
	char *mbox_name;
	bool readonly;
	uint32_t uidvalidity, uidnext;
	uint64_t modseq;           /* HIGHESTMODSEQ as of the last sync */
	struct msg_state *msgs;
	size_t nmsgs, capmsgs;
	uint32_t nrecent;
	bool watching;
	bool dirty;                /* the mailbox changed since the last sync */
	bool syncing;
	uint32_t *held_vanished;   /* expunges not yet announced (FETCH/STORE/SEARCH) */
	size_t nheld, capheld;
	/* STORE .SILENT: UIDs whose FETCH the next sync leaves out. */
	uint32_t *quiet;
	size_t nquiet;

	/* The command in progress. */
	bool cmd_uid;              /* UID FETCH / STORE / SEARCH / COPY / MOVE / EXPUNGE */
	bool cmd_allows_expunge;
	bool idle_done;            /* DONE came while an IDLE sync was running */
	char *final;               /* tagged reply waiting for a sync */
	/* Output streaming. */
	char *stream;
	size_t stream_len, stream_pos;
	then_fn stream_then;
	bool waiting_writable;
	void *work;                /* command-specific state (fetch, list...) */
	void (*work_free)(void *w);

	/* Disconnect log. */
	uint64_t n_cmds, n_fetch, bytes_out;
};

/* ---- small helpers ------------------------------------------------------ */

static const struct conf *cfg(const struct imap_session *s)
{
	return s->srv->cfg;
}

static void log_safe(const char *in, size_t len, char *out, size_t outsz)
{
	size_t i = 0;
	for (; i < len && i + 1 < outsz; i++) {
		unsigned char ch = (unsigned char)in[i];
		out[i] = ch > 0x20 && ch < 0x7f ? (char)ch : '?';
	}
	out[i] = '\0';
}

static void out(struct imap_session *s, const char *text)
{
	conn_write(s->c, text, strlen(text));
}

static void outf(struct imap_session *s, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static void outf(struct imap_session *s, const char *fmt, ...)
{
	char tmp[1024];
	va_list ap;

	va_start(ap, fmt);
	int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	if ((size_t)n < sizeof tmp) {
		conn_write(s->c, tmp, (size_t)n);
		return;
	}
	char *big = xmalloc((size_t)n + 1);
	va_start(ap, fmt);
	vsnprintf(big, (size_t)n + 1, fmt, ap);
	va_end(ap);
	conn_write(s->c, big, (size_t)n);
	free(big);
}

static void work_clear(struct imap_session *s)
{
	if (s->work && s->work_free)
		s->work_free(s->work);
	s->work = NULL;
	s->work_free = NULL;
}

/* Append a flag list "(\Seen \Answered kw)" of one message. */
static void flags_append(struct buf *b, uint32_t flags, const char *keywords)
{
	static const struct { uint32_t bit; const char *name; } names[] = {
		{FLAG_SEEN, "\\Seen"}, {FLAG_ANSWERED, "\\Answered"}, {FLAG_FLAGGED, "\\Flagged"},
		{FLAG_DELETED, "\\Deleted"}, {FLAG_DRAFT, "\\Draft"}, {MSGF_RECENT, "\\Recent"},
	};
	bool first = true;

	buf_append(b, "(", 1);
	for (size_t i = 0; i < ARRAY_LEN(names); i++) {
		if (!(flags & names[i].bit))
			continue;
		if (!first)
			buf_append(b, " ", 1);
		buf_append_str(b, names[i].name);
		first = false;
	}
	if (keywords && *keywords) {
		if (!first)
			buf_append(b, " ", 1);
		buf_append_str(b, keywords);
	}
	buf_append(b, ")", 1);
}

/* Parse one flag atom: a system flag bit, or a keyword (*kw_r set). -1
 * for an unknown system flag or a bad atom; \Recent is refused (it cannot
 * be stored). */
static int flag_parse(const char *a, size_t len, uint32_t *bit_r, bool *is_kw_r)
{
	static const struct { const char *name; uint32_t bit; } sys[] = {
		{"\\Seen", FLAG_SEEN}, {"\\Answered", FLAG_ANSWERED}, {"\\Flagged", FLAG_FLAGGED},
		{"\\Deleted", FLAG_DELETED}, {"\\Draft", FLAG_DRAFT},
	};

	*is_kw_r = false;
	*bit_r = 0;
	if (len == 0)
		return -1;
	if (a[0] == '\\') {
		for (size_t i = 0; i < ARRAY_LEN(sys); i++)
			if (strlen(sys[i].name) == len && str_nieq(a, sys[i].name, len)) {
				*bit_r = sys[i].bit;
				return 0;
			}
		return -1;
	}
	/* A keyword is an atom without list-wildcards, quoted-specials or
	 * resp-specials (RFC 3501 flag-keyword). */
	if (len > STORE_KEYWORD_LEN_MAX)
		return -1;
	for (size_t i = 0; i < len; i++) {
		unsigned char ch = (unsigned char)a[i];
		if (ch <= 0x20 || ch >= 0x7f || strchr("(){%*\"\\]", ch))
			return -1;
	}
	*is_kw_r = true;
	return 0;
}

/* Sequence number of the message with this UID (binary search), or 0. */
static size_t uid_index(const struct imap_session *s, uint32_t uid, bool *found_r)
{
	return store_states_find(s->msgs, s->nmsgs, uid, found_r);
}

/* Resolve a sequence set (message numbers, or UIDs when uid) to indexes
 * into s->msgs, ascending and without duplicates.  Heap array. */
static uint32_t *resolve_set(struct imap_session *s, const struct imap_seqset *set, bool uid,
			     size_t *n_r)
{
	uint8_t *mark = NULL;
	uint32_t *idx = NULL;
	size_t n = 0;

	*n_r = 0;
	if (s->nmsgs == 0)
		return NULL;
	mark = xcalloc(s->nmsgs, 1);
	for (size_t r = 0; r < set->count; r++) {
		uint32_t lo = set->ranges[r].lo, hi = set->ranges[r].hi;
		if (!uid) {
			uint32_t max = (uint32_t)s->nmsgs;
			if (lo == IMAP_SEQ_STAR)
				lo = max;
			if (hi == IMAP_SEQ_STAR)
				hi = max;
			if (lo > hi) {
				uint32_t t = lo;
				lo = hi;
				hi = t;
			}
			if (lo > max)
				continue;
			if (hi > max)
				hi = max;
			for (uint32_t i = lo; i <= hi; i++)
				mark[i - 1] = 1;
		} else {
			uint32_t maxuid = s->msgs[s->nmsgs - 1].uid;
			if (lo == IMAP_SEQ_STAR)
				lo = maxuid;
			if (hi == IMAP_SEQ_STAR)
				hi = maxuid;
			if (lo > hi) {
				uint32_t t = lo;
				lo = hi;
				hi = t;
			}
			bool found;
			size_t i = uid_index(s, lo, &found);
			for (; i < s->nmsgs && s->msgs[i].uid <= hi; i++)
				mark[i] = 1;
		}
	}
	for (size_t i = 0; i < s->nmsgs; i++)
		n += mark[i];
	if (n > 0) {
		idx = xreallocarray(NULL, n, sizeof *idx);
		n = 0;
		for (size_t i = 0; i < s->nmsgs; i++)
			if (mark[i])
				idx[n++] = (uint32_t)i;
	}
	free(mark);
	*n_r = n;
	return idx;
}

/* A sequence-set argument (an atom, or a plain number). */
static int seqset_arg(const struct imap_arg *a, struct imap_seqset *set, const char **err)
{
	if (a->type != IMAP_ARG_ATOM && a->type != IMAP_ARG_NUMBER) {
		*err = "Sequence set expected";
		return -1;
	}
	if (imap_seqset_parse(a->str, a->len, set, err) < 0)
		return -1;
	if (set->saved) {
		imap_seqset_free(set);
		*err = "$ (SEARCHRES) is not supported";
		return -1;
	}
	return 0;
}

/* Write a UID set "1:3,7" of ascending uids[0..n). */
static void uidset_append(struct buf *b, const uint32_t *uids, size_t n)
{
	for (size_t i = 0; i < n;) {
		size_t j = i;
		while (j + 1 < n && uids[j + 1] == uids[j] + 1)
			j++;
		if (i > 0)
			buf_append(b, ",", 1);
		if (j > i)
			buf_printf(b, "%" PRIu32 ":%" PRIu32, uids[i], uids[j]);
		else
			buf_printf(b, "%" PRIu32, uids[i]);
		i = j + 1;
	}
}

static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
	return x < y ? -1 : x > y;
}

/* Mailbox name from the client (mUTF-7, or UTF-8 after UTF8=ACCEPT) to
 * the store's UTF-8.  Heap string, or NULL with a BAD text in *error_r. */
static char *mailbox_in(struct imap_session *s, const struct imap_arg *a, const char **error_r)
{
	const char *str;
	size_t len;
	struct buf b;

	if (imap_arg_astring(a, &str, &len) < 0) {
		*error_r = "Mailbox name expected";
		return NULL;
	}
	if (memchr(str, '\0', len)) {
		*error_r = "NUL in mailbox name";
		return NULL;
	}
	buf_init(&b, MUTF7_NAME_MAX * 4 + 16);
	if ((s->enabled & EN_UTF8) && mutf7_utf8_valid(str, len)) {
		/* RFC 6855 3: UTF-8 names; a name that still decodes as mUTF-7
		 * with shifts is taken as UTF-8 as written. */
		buf_append(&b, str, len);
	} else if (mutf7_decode(str, len, &b, error_r) < 0) {
		buf_free(&b);
		*error_r = "Mailbox name is not valid modified UTF-7";
		return NULL;
	}
	if (b.len == 5 && str_nieq(b.data, "INBOX", 5)) {
		buf_free(&b);
		return xstrdup("INBOX");
	}
	char *r = buf_steal(&b, NULL);
	buf_free(&b);
	if (r == NULL)
		r = xstrdup("");
	return r;
}

/* Store name (UTF-8) to the wire: mUTF-7 (or UTF-8) as an IMAP string. */
static void mailbox_out(struct imap_session *s, struct buf *b, const char *name)
{
	struct buf enc;
	const char *e;

	if (s->enabled & EN_UTF8) {
		imap_write_string_mode(b, name, strlen(name), true);
		return;
	}
	buf_init(&enc, MUTF7_NAME_MAX * 8 + 16);
	if (mutf7_encode(name, strlen(name), &enc, &e) < 0)
		imap_write_string(b, name, strlen(name));
	else
		imap_write_astring(b, enc.data ? enc.data : "", enc.len);
	buf_free(&enc);
}

/* ---- replies ---------------------------------------------------------------- */

static void resume(struct imap_session *s);

/* A failed login's answer (at once, or after its delay: server_delay). */
static void auth_fail_fire(struct conn *c, const char *line)
{
	struct imap_session *s = c->proto;
	out(s, line);
	if (++s->errors >= IMAP_MAX_ERRORS / 2) {
		out(s, "* BYE Too many failed logins\r\n");
		conn_close(c, "too many failed logins");
		return;
	}
	resume(s);
}

/* The tagged reply, then input resumes. */
static void tagged(struct imap_session *s, const char *text)
{
	outf(s, "%s %s\r\n", s->tag, text);
	resume(s);
}

static void bad(struct imap_session *s, const char *text)
{
	outf(s, "%s BAD %s\r\n", s->tag[0] ? s->tag : "*", text);
	if (++s->errors >= IMAP_MAX_ERRORS) {
		log_info("conn=%s imap: too many bad commands from [%s]", s->c->idstr, s->c->peer);
		out(s, "* BYE Too many invalid commands\r\n");
		conn_close(s->c, "too many errors");
		return;
	}
	resume(s);
}

static void resume(struct imap_session *s)
{
	struct conn *c = s->c;

	s->busy = false;
	s->cmd_uid = false;
	work_clear(s);
	if (conn_is_closed(c))
		return;
	if (s->logout) {
		conn_close(c, "LOGOUT");
		return;
	}
	if (s->shutdown_pending) {
		out(s, "* BYE Server shutting down\r\n");
		conn_close(c, "shutdown");
		return;
	}
	conn_resume(c);
}

/* ---- output streaming ------------------------------------------------------- */

static void stream_continue(struct imap_session *s)
{
	struct conn *c = s->c;

	while (s->stream_pos < s->stream_len) {
		size_t n = s->stream_len - s->stream_pos;
		if (n > STREAM_PIECE)
			n = STREAM_PIECE;
		if (conn_write(c, s->stream + s->stream_pos, n) < 0)
			return;
		s->stream_pos += n;
		s->bytes_out += n;
		if (conn_out_pending(c) >= STREAM_LOW) {
			conn_flush(c);
			if (conn_is_closed(c))
				return;
			if (conn_out_pending(c) >= STREAM_LOW) {
				s->waiting_writable = true;
				return;
			}
		}
	}
	FREE(s->stream);
	s->stream_len = s->stream_pos = 0;
	then_fn then = s->stream_then;
	s->stream_then = NULL;
	if (then)
		then(s);
}

/* Send data (heap, taken) as the client reads it, then call then(s). */
static void stream_start(struct imap_session *s, char *data, size_t len, then_fn then)
{
	free(s->stream);
	s->stream = data;
	s->stream_len = len;
	s->stream_pos = 0;
	s->stream_then = then;
	stream_continue(s);
}

/* ---- selected mailbox: sync ------------------------------------------------- */

static void selected_free(struct imap_session *s)
{
	if (s->watching)
		server_unwatch(s->srv, s->mbox_id, s);
	s->watching = false;
	store_states_free(s->msgs, s->nmsgs);
	s->msgs = NULL;
	s->nmsgs = s->capmsgs = 0;
	FREE(s->mbox_name);
	FREE(s->held_vanished);
	s->nheld = s->capheld = 0;
	FREE(s->quiet);
	s->nquiet = 0;
	s->mbox_id = 0;
	s->nrecent = 0;
	s->dirty = false;
	if (s->state == ST_SELECTED)
		s->state = ST_AUTH;
}

struct sync_job {
	struct imap_session *s;
	int64_t mbox_id;
	uint64_t since;
	struct mailbox_info mb;
	struct msg_state *states;
	size_t n;
	uint32_t *vanished;
	size_t nvanished;
	int rc;
	then_fn then;
};

static void sync_work(void *arg)
{
	struct sync_job *j = arg;
	j->rc = store_mailbox_sync(j->s->srv->store, j->mbox_id, j->since, &j->mb, &j->states,
				   &j->n, &j->vanished, &j->nvanished);
}

static bool quiet_has(const struct imap_session *s, uint32_t uid)
{
	for (size_t i = 0; i < s->nquiet; i++)
		if (s->quiet[i] == uid)
			return true;
	return false;
}

/* Announce expunges: held ones and vanished[0..n) (both sorted or not). */
static void apply_expunges(struct imap_session *s, struct buf *b, const uint32_t *van, size_t nv)
{
	size_t total = s->nheld + nv;
	if (total == 0)
		return;
	uint32_t *all = xreallocarray(NULL, total, sizeof *all);
	if (s->nheld)
		memcpy(all, s->held_vanished, s->nheld * sizeof *all);
	if (nv)
		memcpy(all + s->nheld, van, nv * sizeof *all);
	s->nheld = 0;
	qsort(all, total, sizeof *all, cmp_u32);
	/* Indexes of the messages that go, ascending. */
	uint32_t *gone = xreallocarray(NULL, total, sizeof *gone);
	uint32_t *gone_uids = xreallocarray(NULL, total, sizeof *gone_uids);
	size_t ng = 0;
	for (size_t i = 0; i < total; i++) {
		if (i > 0 && all[i] == all[i - 1])
			continue;
		bool found;
		size_t k = uid_index(s, all[i], &found);
		if (found) {
			gone[ng] = (uint32_t)k;
			gone_uids[ng++] = all[i];
		}
	}
	if (ng > 0) {
		if (s->enabled & EN_QRESYNC) {
			buf_append_str(b, "* VANISHED ");
			uidset_append(b, gone_uids, ng);
			buf_append_str(b, "\r\n");
		} else {
			/* Highest first: each number is then still the current one. */
			for (size_t i = ng; i-- > 0;)
				buf_printf(b, "* %" PRIu32 " EXPUNGE\r\n", gone[i] + 1);
		}
		size_t w = 0, g = 0;
		for (size_t i = 0; i < s->nmsgs; i++) {
			if (g < ng && gone[g] == i) {
				g++;
				if (s->msgs[i].flags & MSGF_RECENT)
					s->nrecent--;
				free(s->msgs[i].keywords);
				continue;
			}
			s->msgs[w++] = s->msgs[i];
		}
		s->nmsgs = w;
	}
	free(all);
	free(gone);
	free(gone_uids);
}

static void fetch_flags_line(struct imap_session *s, struct buf *b, size_t i)
{
	struct msg_state *m = &s->msgs[i];
	buf_printf(b, "* %zu FETCH (UID %" PRIu32 " FLAGS ", i + 1, m->uid);
	flags_append(b, m->flags, m->keywords);
	if (s->condstore)
		buf_printf(b, " MODSEQ (%" PRIu64 ")", m->modseq);
	buf_append_str(b, ")\r\n");
}

/* Apply what store_mailbox_sync returned: expunges (when allowed), flag
 * changes, new messages.  Untagged responses go into b. */
static void apply_sync(struct imap_session *s, struct sync_job *j, bool allow_expunge,
		       struct buf *b)
{
	if (allow_expunge) {
		apply_expunges(s, b, j->vanished, j->nvanished);
	} else if (j->nvanished > 0) {
		if (s->nheld + j->nvanished > s->capheld) {
			s->capheld = s->nheld + j->nvanished + 16;
			s->held_vanished = xreallocarray(s->held_vanished, s->capheld,
							 sizeof *s->held_vanished);
		}
		memcpy(s->held_vanished + s->nheld, j->vanished, j->nvanished * sizeof(uint32_t));
		s->nheld += j->nvanished;
	}
	size_t before = s->nmsgs;
	uint32_t lastuid = s->nmsgs ? s->msgs[s->nmsgs - 1].uid : 0;
	for (size_t k = 0; k < j->n; k++) {
		struct msg_state *st = &j->states[k];
		if (st->uid > lastuid) {
			if (s->nmsgs == s->capmsgs) {
				s->capmsgs = s->capmsgs ? s->capmsgs * 2 : 64;
				s->msgs = xreallocarray(s->msgs, s->capmsgs, sizeof *s->msgs);
			}
			s->msgs[s->nmsgs++] = *st;
			st->keywords = NULL;
			lastuid = st->uid;
			continue;
		}
		bool found;
		size_t i = uid_index(s, st->uid, &found);
		if (!found)
			continue;
		struct msg_state *m = &s->msgs[i];
		bool changed = (m->flags & MSGF_SYSTEM) != (st->flags & MSGF_SYSTEM) ||
			       !((m->keywords == NULL && st->keywords == NULL) ||
				 (m->keywords && st->keywords && strcmp(m->keywords, st->keywords) == 0));
		m->flags = (m->flags & MSGF_RECENT) | (st->flags & MSGF_SYSTEM);
		free(m->keywords);
		m->keywords = st->keywords;
		st->keywords = NULL;
		bool modseq_changed = m->modseq != st->modseq;
		m->modseq = st->modseq;
		if ((changed || (s->condstore && modseq_changed)) && !quiet_has(s, m->uid))
			fetch_flags_line(s, b, i);
	}
	if (s->nmsgs > before) {
		uint32_t first = s->readonly ? UINT32_MAX :
				 server_recent_claim(s->srv, s->mbox_id, j->mb.uidnext);
		for (size_t i = before; i < s->nmsgs; i++)
			if (s->msgs[i].uid >= first) {
				s->msgs[i].flags |= MSGF_RECENT;
				s->nrecent++;
			}
		buf_printf(b, "* %zu EXISTS\r\n", s->nmsgs);
		if (!(s->enabled & EN_REV2))
			buf_printf(b, "* %" PRIu32 " RECENT\r\n", s->nrecent);
	}
	if (j->mb.highestmodseq > s->modseq)
		s->modseq = j->mb.highestmodseq;
	if (j->mb.uidnext > s->uidnext)
		s->uidnext = j->mb.uidnext;
	FREE(s->quiet);
	s->nquiet = 0;
}

static void sync_job_free(struct sync_job *j)
{
	store_states_free(j->states, j->n);
	free(j->vanished);
	mailbox_info_free(&j->mb);
	free(j);
}

static void sync_after(struct imap_session *s);

static void sync_done(void *arg)
{
	struct sync_job *j = arg;
	struct imap_session *s = j->s;
	struct conn *c = s->c;

	s->syncing = false;
	if (conn_is_closed(c)) {
		sync_job_free(j);
		return;
	}
	if (j->rc == 0 && s->state == ST_SELECTED && s->mbox_id == j->mbox_id) {
		/* The mailbox was deleted under us (RFC 3501 7.1.5). */
		out(s, "* BYE [UNAVAILABLE] The selected mailbox was deleted\r\n");
		sync_job_free(j);
		conn_close(c, "selected mailbox deleted");
		return;
	}
	if (j->rc > 0 && s->state == ST_SELECTED && s->mbox_id == j->mbox_id) {
		struct buf b;
		buf_init(&b, SIZE_MAX / 2);
		apply_sync(s, j, s->line_mode == LINE_IDLE || s->cmd_allows_expunge || !s->busy, &b);
		if (b.len > 0) {
			size_t len;
			char *data = buf_steal(&b, &len);
			buf_free(&b);
			then_fn then = j->then;
			sync_job_free(j);
			stream_start(s, data, len, then);
			return;
		}
		buf_free(&b);
	} else if (j->rc < 0) {
		log_error("conn=%s imap: cannot read changes of mailbox %s user=%s; check the store",
			  c->idstr, s->mbox_name ? s->mbox_name : "?", s->login);
	}
	then_fn then = j->then;
	sync_job_free(j);
	if (then)
		then(s);
}

/* Read what changed in the selected mailbox, send it, then call then. */
static void sync_start(struct imap_session *s, then_fn then)
{
	struct sync_job *j = xcalloc(1, sizeof *j);
	j->s = s;
	j->mbox_id = s->mbox_id;
	j->since = s->modseq;
	j->then = then;
	s->dirty = false;
	s->syncing = true;
	server_job(s->srv, s->c, sync_work, sync_done, j);
}

static void send_final(struct imap_session *s)
{
	char *f = s->final;
	s->final = NULL;
	if (f) {
		tagged(s, f);
		free(f);
	} else {
		resume(s);
	}
}

/* End a command: announce changes of the selected mailbox when there are
 * any (always, with force), then the tagged reply. */
static void finish(struct imap_session *s, bool force_sync, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static void finish(struct imap_session *s, bool force_sync, const char *fmt, ...)
{
	va_list ap;
	char tmp[1024];

	va_start(ap, fmt);
	vsnprintf(tmp, sizeof tmp, fmt, ap);
	va_end(ap);
	if (s->state == ST_SELECTED && (s->dirty || force_sync || s->nheld > 0) &&
	    !conn_is_closed(s->c)) {
		free(s->final);
		s->final = xstrdup(tmp);
		if (s->dirty || force_sync) {
			sync_start(s, send_final);
			return;
		}
		if (s->cmd_allows_expunge) {
			struct sync_job j;
			struct buf b;
			memset(&j, 0, sizeof j);
			j.mb.highestmodseq = s->modseq;
			j.mb.uidnext = s->uidnext;
			buf_init(&b, SIZE_MAX / 2);
			apply_sync(s, &j, true, &b);
			if (b.len > 0) {
				size_t len;
				char *data = buf_steal(&b, &len);
				buf_free(&b);
				stream_start(s, data, len, send_final);
				return;
			}
			buf_free(&b);
		}
		send_final(s);
		return;
	}
	tagged(s, tmp);
}

/* finish() with the text waiting in s->final. */
static void finish_final(struct imap_session *s)
{
	char *f = s->final;
	s->final = NULL;
	finish(s, false, "%s", f ? f : "OK");
	free(f);
}

/* server_watch callback: the selected mailbox changed. */
static void on_mailbox_changed(void *arg)
{
	struct imap_session *s = arg;

	s->dirty = true;
	if (s->line_mode == LINE_IDLE && !s->syncing && s->stream == NULL &&
	    !conn_is_closed(s->c))
		sync_start(s, sync_after);
}

/* After an IDLE sync: flush, and keep idling (a change that came in
 * meanwhile starts another round). */
static void sync_after(struct imap_session *s)
{
	if (conn_is_closed(s->c))
		return;
	conn_flush(s->c);
	if (conn_is_closed(s->c))
		return;
	if (s->line_mode == LINE_IDLE) {
		if (s->dirty && !s->syncing)
			sync_start(s, sync_after);
		return;
	}
	if (s->idle_done) {
		s->idle_done = false;
		finish(s, false, "OK IDLE terminated");
	}
}

/* ---- capabilities ---------------------------------------------------------- */

static void capability_list(struct imap_session *s, struct buf *b)
{
	struct conn *c = s->c;

	buf_append_str(b, "IMAP4rev1 IMAP4rev2 LITERAL+ SASL-IR ID ENABLE IDLE NAMESPACE");
	if (s->state == ST_NOTAUTH) {
		if (conn_tls_available(c) && !c->tls)
			buf_append_str(b, " STARTTLS");
		if (server_plaintext_ok(s->srv, c))
			buf_append_str(b, " AUTH=PLAIN");
		else
			buf_append_str(b, " LOGINDISABLED");
		return;
	}
	buf_append_str(b, " UIDPLUS MOVE UNSELECT CHILDREN LIST-EXTENDED LIST-STATUS SPECIAL-USE"
			  " CREATE-SPECIAL-USE MULTIAPPEND CONDSTORE QRESYNC ESEARCH SORT"
			  " THREAD=ORDEREDSUBJECT THREAD=REFERENCES STATUS=SIZE BINARY"
			  " UTF8=ACCEPT QUOTA QUOTA=RES-STORAGE");
	if (!conn_compressed(c))
		buf_append_str(b, " COMPRESS=DEFLATE");
	buf_printf(b, " APPENDLIMIT=%" PRId64, cfg(s)->message_size_limit);
}

static void cmd_capability(struct imap_session *s, const struct imap_command *cmd)
{
	struct buf b;
	(void)cmd;

	buf_init(&b, 4096);
	buf_append_str(&b, "* CAPABILITY ");
	capability_list(s, &b);
	buf_append_str(&b, "\r\n");
	conn_write(s->c, b.data, b.len);
	buf_free(&b);
	finish(s, false, "OK CAPABILITY completed");
}

/* Every change made in this daemon reaches the session by notification
 * (s->dirty), so NOOP and CHECK read the mailbox only when it changed. */
static void cmd_noop(struct imap_session *s, const struct imap_command *cmd)
{
	finish(s, false, "OK %s completed", cmd->name);
}

static void cmd_logout(struct imap_session *s, const struct imap_command *cmd)
{
	(void)cmd;
	out(s, "* BYE Logging out\r\n");
	s->logout = true;
	tagged(s, "OK LOGOUT completed");
}

static void cmd_starttls(struct imap_session *s, const struct imap_command *cmd)
{
	(void)cmd;
	if (s->c->tls) {
		bad(s, "TLS is already active");
		return;
	}
	if (!conn_tls_available(s->c)) {
		outf(s, "%s NO TLS is not configured on this server\r\n", s->tag);
		resume(s);
		return;
	}
	outf(s, "%s OK Begin TLS negotiation now\r\n", s->tag);
	s->busy = false;
	/* conn_start_tls flushes the reply and drops whatever the client sent
	 * after the command (CVE-2011-0411); on_tls follows. */
	if (conn_start_tls(s->c) < 0) {
		conn_close(s->c, "STARTTLS failed");
		return;
	}
	/* Nothing is dispatched until the handshake is done. */
	conn_resume(s->c);
}

/* ---- login ------------------------------------------------------------------ */

struct auth_job {
	struct imap_session *s;
	const char *method;
	char *address;
	char *password;
	size_t pwlen;
	struct account acct;
	bool cached;
	int rc;
};

static void auth_work(void *arg)
{
	struct auth_job *j = arg;
	j->rc = auth_login_cached(j->s->srv->store, j->address, j->password, &j->acct, &j->cached);
}

static void auth_job_free(struct auth_job *j)
{
	if (j->password)
		auth_wipe(j->password, j->pwlen + 1);
	free(j->address);
	if (j->rc == 1)
		account_free(&j->acct);
	free(j);
}

static void auth_done(void *arg)
{
	struct auth_job *j = arg;
	struct imap_session *s = j->s;
	struct conn *c = s->c;

	if (conn_is_closed(c)) {
		auth_job_free(j);
		return;
	}
	if (j->rc == 0) {
		char user[IMAP_USER_MAX + 1];
		log_safe(j->address, strlen(j->address), user, sizeof user);
		uint64_t delay = server_auth_failed(s->srv, c->peer, user);
		log_info("conn=%s imap: auth failed user=%s method=%s from [%s]%s", c->idstr, user,
			 j->method, c->peer, delay ? " (reply delayed)" : "");
		auth_job_free(j);
		char line[IMAP_TAG_MAX + 64];
		snprintf(line, sizeof line, "%s NO [AUTHENTICATIONFAILED] Authentication failed\r\n",
			 s->tag);
		if (delay) {
			server_delay(s->srv, c, delay, auth_fail_fire, line);
			return;
		}
		auth_fail_fire(c, line);
		return;
	}
	if (j->rc < 0) {
		log_error("conn=%s imap: authentication unavailable (store error)", c->idstr);
		auth_job_free(j);
		tagged(s, "NO [UNAVAILABLE] Authentication temporarily unavailable");
		return;
	}
	server_auth_succeeded(s->srv, c->peer, j->acct.address);
	snprintf(s->userkey, sizeof s->userkey, "u:%s", j->acct.address);
	int n = server_count_add(s->srv, s->userkey, 1);
	if (n > cfg(s)->imap_max_sessions_per_user) {
		server_count_add(s->srv, s->userkey, -1);
		log_info("conn=%s imap: too many sessions user=%s (%d, imap_max_sessions_per_user)",
			 c->idstr, j->acct.address, n - 1);
		auth_job_free(j);
		tagged(s, "NO [LIMIT] Too many IMAP sessions for this user");
		return;
	}
	s->user_counted = true;
	s->login = xstrdup(j->acct.address);
	s->account_id = j->acct.id;
	s->state = ST_AUTH;
	s->errors = 0;
	struct imap_parser_limits lim;
	imap_parser_limits_default(&lim, true);
	if ((uint64_t)cfg(s)->message_size_limit > lim.literal_max)
		lim.literal_max = (uint64_t)cfg(s)->message_size_limit;
	imap_parser_set_limits(s->p, &lim);
	server_relay_grant(s->srv, c->peer);   /* POP-before-SMTP, when enabled */
	log_info("conn=%s imap: login user=%s method=%s tls=%s cached=%s", c->idstr, s->login,
		 j->method, c->tls ? "yes" : "no", j->cached ? "yes" : "no");
	auth_job_free(j);
	struct buf b;
	buf_init(&b, 4096);
	buf_printf(&b, "%s OK [CAPABILITY ", s->tag);
	capability_list(s, &b);
	buf_append_str(&b, "] Logged in\r\n");
	conn_write(c, b.data, b.len);
	buf_free(&b);
	resume(s);
}

/* Takes address and password. */
static void start_auth(struct imap_session *s, const char *method, char *address,
		       char *password, size_t pwlen)
{
	struct auth_job *j = xcalloc(1, sizeof *j);
	j->s = s;
	j->method = method;
	j->address = address;
	j->password = password;
	j->pwlen = pwlen;
	server_auth_job(s->srv, s->c, auth_work, auth_done, j);
}

static void cmd_login(struct imap_session *s, const struct imap_command *cmd)
{
	const char *u, *p;
	size_t ul, pl;

	if (cmd->nargs != 2 || imap_arg_astring(&cmd->args[0], &u, &ul) < 0 ||
	    imap_arg_astring(&cmd->args[1], &p, &pl) < 0) {
		bad(s, "LOGIN expects a user name and a password");
		return;
	}
	if (!server_plaintext_ok(s->srv, s->c)) {
		tagged(s, "NO [PRIVACYREQUIRED] Plaintext login disallowed without TLS (use "
			  "STARTTLS)");
		return;
	}
	if (ul == 0 || ul > IMAP_USER_MAX || pl == 0 || pl > 1024 || memchr(u, '\0', ul) ||
	    memchr(p, '\0', pl)) {
		outf(s, "%s NO [AUTHENTICATIONFAILED] Authentication failed\r\n", s->tag);
		resume(s);
		return;
	}
	start_auth(s, "LOGIN", xstrndup(u, ul), xstrndup(p, pl), pl);
}

static void sasl_plain(struct imap_session *s, const char *b64)
{
	char *buf;
	const char *authzid, *authcid, *passwd;

	if (sasl_plain_decode(b64, &buf, &authzid, &authcid, &passwd) < 0) {
		bad(s, "Invalid SASL PLAIN response");
		return;
	}
	size_t buflen = (size_t)(passwd - buf) + strlen(passwd) + 1;
	if ((authzid[0] != '\0' && strcmp(authzid, authcid) != 0) ||
	    strlen(authcid) > IMAP_USER_MAX) {
		auth_wipe(buf, buflen);
		outf(s, "%s NO [AUTHENTICATIONFAILED] Authentication failed\r\n", s->tag);
		resume(s);
		return;
	}
	char *address = xstrdup(authcid);
	size_t pwlen = strlen(passwd);
	char *password = xstrndup(passwd, pwlen);
	auth_wipe(buf, buflen);
	start_auth(s, "PLAIN", address, password, pwlen);
}

static void cmd_authenticate(struct imap_session *s, const struct imap_command *cmd)
{
	const char *ir = NULL;
	size_t irlen = 0;

	if (cmd->nargs < 1 || cmd->nargs > 2 || cmd->args[0].type != IMAP_ARG_ATOM) {
		bad(s, "AUTHENTICATE expects a mechanism");
		return;
	}
	if (!imap_arg_atom_eq(&cmd->args[0], "PLAIN")) {
		tagged(s, "NO [CANNOT] Unsupported authentication mechanism");
		return;
	}
	if (!server_plaintext_ok(s->srv, s->c)) {
		tagged(s, "NO [PRIVACYREQUIRED] Plaintext authentication disallowed without TLS "
			  "(use STARTTLS)");
		return;
	}
	if (cmd->nargs == 2) {
		if (imap_arg_astring(&cmd->args[1], &ir, &irlen) < 0 || irlen > 2048) {
			bad(s, "Invalid initial response");
			return;
		}
		char *b64 = xstrndup(ir, irlen);
		/* RFC 4959: "=" is an empty initial response. */
		sasl_plain(s, strcmp(b64, "=") == 0 ? "" : b64);
		free(b64);
		return;
	}
	out(s, "+ \r\n");
	s->line_mode = LINE_SASL;
	/* The connection stays paused; on_raw reads the next line itself. */
	s->busy = false;
	conn_resume(s->c);
}

/* ---- ENABLE, ID, NAMESPACE ---------------------------------------------------- */

static void cmd_enable(struct imap_session *s, const struct imap_command *cmd)
{
	struct buf b;
	buf_init(&b, 1024);
	buf_append_str(&b, "* ENABLED");
	for (uint32_t i = 0; i < cmd->nargs; i = cmd->args[i].end) {
		const struct imap_arg *a = &cmd->args[i];
		unsigned bit = 0;
		const char *name = NULL;
		if (imap_arg_atom_eq(a, "CONDSTORE"))
			bit = EN_CONDSTORE, name = "CONDSTORE";
		else if (imap_arg_atom_eq(a, "QRESYNC"))
			bit = EN_QRESYNC | EN_CONDSTORE, name = "QRESYNC";
		else if (imap_arg_atom_eq(a, "IMAP4rev2"))
			bit = EN_REV2, name = "IMAP4rev2";
		else if (imap_arg_atom_eq(a, "UTF8=ACCEPT"))
			bit = EN_UTF8, name = "UTF8=ACCEPT";
		if (bit == 0 || (s->enabled & bit) == bit)
			continue;
		s->enabled |= bit;
		buf_printf(&b, " %s", name);
	}
	if (s->enabled & EN_CONDSTORE)
		s->condstore = true;
	buf_append_str(&b, "\r\n");
	conn_write(s->c, b.data, b.len);
	buf_free(&b);
	finish(s, false, "OK ENABLE completed");
}

/* RFC 4978 */
static void cmd_compress(struct imap_session *s, const struct imap_command *cmd)
{
	if (cmd->nargs != 1 || !imap_arg_atom_eq(&cmd->args[0], "DEFLATE")) {
		bad(s, "COMPRESS expects DEFLATE");
		return;
	}
	if (conn_compressed(s->c)) {
		tagged(s, "NO [COMPRESSIONACTIVE] Compression is already on");
		return;
	}
	outf(s, "%s OK DEFLATE active\r\n", s->tag);
	if (conn_start_compress(s->c) < 0) {
		log_error("conn=%s imap: cannot start compression (zlib); closing", s->c->idstr);
		conn_close(s->c, "compression setup failed");
		return;
	}
	resume(s);
}

static void cmd_id(struct imap_session *s, const struct imap_command *cmd)
{
	(void)cmd;
	out(s, "* ID (\"name\" \"Yubin\" \"vendor\" \"Yubin\" \"support-url\" "
	       "\"https://yubin.example/\")\r\n");
	finish(s, false, "OK ID completed");
}

static void cmd_namespace(struct imap_session *s, const struct imap_command *cmd)
{
	(void)cmd;
	out(s, "* NAMESPACE ((\"\" \"/\")) NIL NIL\r\n");
	finish(s, false, "OK NAMESPACE completed");
}

/* ---- mailbox management --------------------------------------------------- */

enum mbox_op { MB_CREATE, MB_DELETE, MB_RENAME, MB_SUBSCRIBE, MB_UNSUBSCRIBE };

struct mbox_job {
	struct imap_session *s;
	enum mbox_op op;
	char *name, *newname;
	char *use;             /* CREATE (USE (\Drafts)) */
	int rc;
	char *error;
};

static void mbox_work(void *arg)
{
	struct mbox_job *j = arg;
	struct store *st = j->s->srv->store;
	int64_t acct = j->s->account_id;

	switch (j->op) {
	case MB_CREATE:
		j->rc = store_mailbox_create(st, acct, j->name, j->use, NULL, &j->error);
		break;
	case MB_DELETE:
		j->rc = store_mailbox_delete(st, acct, j->name, &j->error);
		break;
	case MB_RENAME:
		j->rc = store_mailbox_rename(st, acct, j->name, j->newname, &j->error);
		break;
	case MB_SUBSCRIBE:
		j->rc = store_mailbox_subscribe(st, acct, j->name, &j->error);
		break;
	case MB_UNSUBSCRIBE:
		j->rc = store_mailbox_unsubscribe(st, acct, j->name, &j->error);
		break;
	}
}

static const char *mbox_code(int rc)
{
	switch (rc) {
	case STORE_MBOX_EBADNAME: return "CANNOT";
	case STORE_MBOX_EEXISTS: return "ALREADYEXISTS";
	case STORE_MBOX_ENOENT: return "NONEXISTENT";
	case STORE_MBOX_ECANNOT: return "CANNOT";
	case STORE_MBOX_ELIMIT: return "LIMIT";
	case STORE_MBOX_EUSEATTR: return "USEATTR";
	default: return "SERVERBUG";
	}
}

static void mbox_done(void *arg)
{
	static const char *const verbs[] = {"CREATE", "DELETE", "RENAME", "SUBSCRIBE",
					    "UNSUBSCRIBE"};
	struct mbox_job *j = arg;
	struct imap_session *s = j->s;

	if (j->rc == 0)
		server_account_changed(s->srv, s->account_id);     /* JMAP push */
	if (!conn_is_closed(s->c)) {
		if (j->rc == 0) {
			if (j->op == MB_DELETE || j->op == MB_RENAME)
				log_info("conn=%s imap: %s user=%s mailbox=%s%s%s", s->c->idstr,
					 verbs[j->op], s->login, j->name, j->newname ? " to=" : "",
					 j->newname ? j->newname : "");
			finish(s, false, "OK %s completed", verbs[j->op]);
		} else {
			if (j->rc == STORE_MBOX_EFAIL)
				log_error("conn=%s imap: %s failed user=%s: %s", s->c->idstr,
					  verbs[j->op], s->login, j->error ? j->error : "?");
			/* The store's text names the mailbox (already UTF-8): keep the
			 * reply 7-bit by leaving it generic when it is not. */
			const char *text = j->error && mutf7_utf8_valid(j->error, strlen(j->error)) &&
					   j->rc != STORE_MBOX_EFAIL ? j->error : "Operation failed";
			bool ascii = true;
			for (const char *p = text; *p; p++)
				if ((unsigned char)*p >= 0x80 || *p == '\r' || *p == '\n')
					ascii = false;
			finish(s, false, "NO [%s] %s", mbox_code(j->rc), ascii ? text :
			       "Operation failed");
		}
	}
	free(j->name);
	free(j->newname);
	free(j->use);
	free(j->error);
	free(j);
}

static void start_mbox(struct imap_session *s, enum mbox_op op, char *name, char *newname,
		       char *use)
{
	struct mbox_job *j = xcalloc(1, sizeof *j);
	j->s = s;
	j->op = op;
	j->name = name;
	j->newname = newname;
	j->use = use;
	server_job(s->srv, s->c, mbox_work, mbox_done, j);
}

static void cmd_create(struct imap_session *s, const struct imap_command *cmd)
{
	const char *err = NULL;
	char *use = NULL;

	if (cmd->nargs < 1) {
		bad(s, "CREATE expects a mailbox name");
		return;
	}
	char *name = mailbox_in(s, &cmd->args[0], &err);
	if (!name) {
		bad(s, err);
		return;
	}
	uint32_t i = cmd->args[0].end;
	if (i < cmd->nargs) {
		/* RFC 6154 CREATE-SPECIAL-USE: (USE (\Drafts)) */
		const struct imap_arg *l = &cmd->args[i];
		if (l->type != IMAP_ARG_LIST || l->nchildren != 2 ||
		    !imap_arg_atom_eq(&cmd->args[i + 1], "USE") ||
		    cmd->args[cmd->args[i + 1].end].type != IMAP_ARG_LIST ||
		    cmd->args[cmd->args[i + 1].end].nchildren != 1 || l->end != cmd->nargs) {
			free(name);
			bad(s, "CREATE parameters: only (USE (\\Attr)) is known");
			return;
		}
		const struct imap_arg *attr = &cmd->args[cmd->args[i + 1].end + 1];
		if (attr->type != IMAP_ARG_ATOM) {
			free(name);
			bad(s, "USE expects a special-use attribute");
			return;
		}
		static const char *const uses[] = {"\\All", "\\Archive", "\\Drafts", "\\Flagged",
						   "\\Junk", "\\Sent", "\\Trash"};
		for (size_t k = 0; k < ARRAY_LEN(uses); k++)
			if (str_ieq(attr->str, uses[k]))
				use = xstrdup(uses[k]);
		if (!use) {
			free(name);
			tagged(s, "NO [USEATTR] Unknown special-use attribute");
			return;
		}
	}
	/* A trailing separator means "will have inferiors" (RFC 3501 6.3.3). */
	size_t nl = strlen(name);
	if (nl > 1 && name[nl - 1] == '/')
		name[nl - 1] = '\0';
	if (strcmp(name, "INBOX") == 0) {
		free(name);
		free(use);
		tagged(s, "NO [ALREADYEXISTS] INBOX always exists");
		return;
	}
	start_mbox(s, MB_CREATE, name, NULL, use);
}

static void cmd_delete(struct imap_session *s, const struct imap_command *cmd)
{
	const char *err = NULL;
	char *name = cmd->nargs == 1 ? mailbox_in(s, &cmd->args[0], &err) : NULL;

	if (!name) {
		bad(s, err ? err : "DELETE expects a mailbox name");
		return;
	}
	if (s->state == ST_SELECTED && s->mbox_name && strcmp(s->mbox_name, name) == 0) {
		/* Deleting the selected mailbox: Dovecot refuses too. */
		free(name);
		tagged(s, "NO [INUSE] Cannot delete the selected mailbox (UNSELECT first)");
		return;
	}
	start_mbox(s, MB_DELETE, name, NULL, NULL);
}

static void cmd_rename(struct imap_session *s, const struct imap_command *cmd)
{
	const char *err = NULL;
	char *from = NULL, *to = NULL;

	if (cmd->nargs != 2 || !(from = mailbox_in(s, &cmd->args[0], &err)) ||
	    !(to = mailbox_in(s, &cmd->args[1], &err))) {
		free(from);
		bad(s, err ? err : "RENAME expects two mailbox names");
		return;
	}
	start_mbox(s, MB_RENAME, from, to, NULL);
}

static void cmd_subscribe(struct imap_session *s, const struct imap_command *cmd)
{
	const char *err = NULL;
	char *name = cmd->nargs == 1 ? mailbox_in(s, &cmd->args[0], &err) : NULL;

	if (!name) {
		bad(s, err ? err : "Mailbox name expected");
		return;
	}
	start_mbox(s, cmd->name[0] == 'S' ? MB_SUBSCRIBE : MB_UNSUBSCRIBE, name, NULL, NULL);
}

/* ---- LIST, LSUB, STATUS ------------------------------------------------------ */

/* RFC 3501 6.3.8 wildcards: '*' matches anything, '%' anything but the
 * separator.  Dynamic programming over the pattern, O(len(p) * len(n)),
 * both capped at MUTF7_NAME_MAX-ish lengths by the callers. */
#define LIST_PATTERN_MAX 255u   /* bytes of one LIST pattern */
#define LIST_PATTERNS_MAX 32u   /* patterns in one LIST-EXTENDED command */

static bool list_match(const char *pat, const char *name)
{
	size_t pl = strlen(pat), nl = strlen(name);
	bool *prev = xcalloc(nl + 1, sizeof *prev), *cur = xcalloc(nl + 1, sizeof *cur);

	prev[0] = true;
	for (size_t i = 1; i <= pl; i++) {
		char pc = pat[i - 1];
		cur[0] = prev[0] && (pc == '*' || pc == '%');
		for (size_t k = 1; k <= nl; k++) {
			char nc = name[k - 1];
			if (pc == '*')
				cur[k] = prev[k] || cur[k - 1];
			else if (pc == '%')
				cur[k] = prev[k] || (cur[k - 1] && nc != '/');
			else
				cur[k] = prev[k - 1] && pc == nc;
		}
		bool *t = prev;
		prev = cur;
		cur = t;
	}
	bool r = prev[nl];
	free(prev);
	free(cur);
	return r;
}

enum {
	LS_LSUB = 1 << 0,
	LS_SEL_SUBSCRIBED = 1 << 1,
	LS_SEL_SPECIAL = 1 << 2,
	LS_SEL_RECURSIVE = 1 << 3,
	LS_RET_SUBSCRIBED = 1 << 4,
	LS_RET_CHILDREN = 1 << 5,
	LS_RET_STATUS = 1 << 7,
	LS_UTF8 = 1 << 8,
};

enum {
	STA_MESSAGES = 1 << 0, STA_RECENT = 1 << 1, STA_UIDNEXT = 1 << 2,
	STA_UIDVALIDITY = 1 << 3, STA_UNSEEN = 1 << 4, STA_HIGHESTMODSEQ = 1 << 5,
	STA_SIZE = 1 << 6, STA_DELETED = 1 << 7, STA_APPENDLIMIT = 1 << 8,
};

struct list_ent {
	char *name;
	char *special;
	unsigned flags;
};

struct list_job {
	struct imap_session *s;
	unsigned opts;
	unsigned status_items;
	int64_t account_id;
	char *ref;
	char **pats;
	size_t npats;
	struct list_ent *ents;
	size_t nents, capents;
	char **subs;
	size_t nsubs, capsubs;
	int64_t appendlimit;
	struct buf out;
	int rc;
};

static void list_cb(const char *name, const char *special, unsigned flags, void *arg)
{
	struct list_job *j = arg;
	if (j->nents == j->capents) {
		j->capents = j->capents ? j->capents * 2 : 32;
		j->ents = xreallocarray(j->ents, j->capents, sizeof *j->ents);
	}
	j->ents[j->nents++] = (struct list_ent){xstrdup(name), special ? xstrdup(special) : NULL,
					       flags};
}

static void subs_cb(const char *name, void *arg)
{
	struct list_job *j = arg;
	if (j->nsubs == j->capsubs) {
		j->capsubs = j->capsubs ? j->capsubs * 2 : 32;
		j->subs = xreallocarray(j->subs, j->capsubs, sizeof *j->subs);
	}
	j->subs[j->nsubs++] = xstrdup(name);
}

static bool subs_has(const struct list_job *j, const char *name)
{
	for (size_t i = 0; i < j->nsubs; i++)
		if (strcmp(j->subs[i], name) == 0)
			return true;
	return false;
}

static void name_out(struct buf *b, const char *name, bool utf8)
{
	struct buf enc;
	const char *e;

	if (utf8) {
		imap_write_string_mode(b, name, strlen(name), true);
		return;
	}
	buf_init(&enc, MUTF7_NAME_MAX * 8 + 16);
	if (mutf7_encode(name, strlen(name), &enc, &e) < 0)
		imap_write_string(b, name, strlen(name));
	else
		imap_write_astring(b, enc.data ? enc.data : "", enc.len);
	buf_free(&enc);
}

static void status_items_out(struct buf *b, unsigned items, const struct mailbox_info *mb,
			     const struct store_status *st, int64_t appendlimit)
{
	bool first = true;
#define ITEM(bit, fmt, ...) do { if (items & (bit)) { \
		buf_printf(b, "%s" fmt, first ? "" : " ", __VA_ARGS__); first = false; } } while (0)
	ITEM(STA_MESSAGES, "MESSAGES %" PRId64, st->messages);
	ITEM(STA_RECENT, "RECENT %d", 0);
	ITEM(STA_UIDNEXT, "UIDNEXT %" PRIu32, mb->uidnext);
	ITEM(STA_UIDVALIDITY, "UIDVALIDITY %" PRIu32, mb->uidvalidity);
	ITEM(STA_UNSEEN, "UNSEEN %" PRId64, st->unseen);
	ITEM(STA_DELETED, "DELETED %" PRId64, st->deleted);
	ITEM(STA_SIZE, "SIZE %" PRId64, st->size);
	ITEM(STA_HIGHESTMODSEQ, "HIGHESTMODSEQ %" PRIu64, mb->highestmodseq);
	ITEM(STA_APPENDLIMIT, "APPENDLIMIT %" PRId64, appendlimit);
#undef ITEM
}

/* STATUS of one mailbox into b ("* STATUS name (...)").  0 ok, 0 when the
 * mailbox does not exist (nothing written), -1 store error. */
static int status_one(struct store *st, int64_t account_id, const char *name, unsigned items,
		      bool utf8, int64_t appendlimit, struct buf *b, bool *exists_r)
{
	struct mailbox_info mb;
	struct store_status sst;

	*exists_r = false;
	int r = store_mailbox_find(st, account_id, name, &mb);
	if (r <= 0)
		return r;
	r = store_mailbox_status(st, mb.id, &sst);
	if (r == 0) {
		*exists_r = true;
		buf_append_str(b, "* STATUS ");
		name_out(b, name, utf8);
		buf_append_str(b, " (");
		status_items_out(b, items, &mb, &sst, appendlimit);
		buf_append_str(b, ")\r\n");
	}
	mailbox_info_free(&mb);
	return r;
}

static bool name_has_child_matching(const struct list_job *j, size_t i, const char *pat)
{
	const char *name = j->ents[i].name;
	size_t nl = strlen(name);
	for (size_t k = 0; k < j->nents; k++) {
		const char *o = j->ents[k].name;
		if (strncmp(o, name, nl) == 0 && o[nl] == '/' && list_match(pat, o) &&
		    (!(j->opts & LS_SEL_SUBSCRIBED) || subs_has(j, o)))
			return true;
	}
	return false;
}

static void list_work(void *arg)
{
	struct list_job *j = arg;
	struct store *st = j->s->srv->store;
	bool utf8 = j->opts & LS_UTF8;
	char *err = NULL;

	j->rc = store_mailbox_list(st, j->account_id, list_cb, j, &err);
	free(err);
	err = NULL;
	if (j->rc == 0)
		j->rc = store_mailbox_subscriptions(st, j->account_id, subs_cb, j, &err);
	free(err);
	if (j->rc < 0)
		return;
	const char *verb = (j->opts & LS_LSUB) ? "LSUB" : "LIST";
	for (size_t p = 0; p < j->npats; p++) {
		char *pat = xasprintf("%s%s", j->ref, j->pats[p]);
		if (pat[0] == '\0') {
			/* RFC 3501: the hierarchy delimiter and root. */
			buf_printf(&j->out, "* %s (\\Noselect) \"/\" \"\"\r\n", verb);
			free(pat);
			continue;
		}
		/* INBOX matches case-insensitively. */
		if (str_iprefix(pat, "INBOX") && (pat[5] == '\0' || pat[5] == '/'))
			memcpy(pat, "INBOX", 5);
		if (j->opts & (LS_LSUB | LS_SEL_SUBSCRIBED)) {
			/* Subscribed names, existing or not. */
			for (size_t k = 0; k < j->nsubs; k++) {
				const char *name = j->subs[k];
				if (!list_match(pat, name))
					continue;
				const struct list_ent *e = NULL;
				for (size_t x = 0; x < j->nents; x++)
					if (strcmp(j->ents[x].name, name) == 0)
						e = &j->ents[x];
				buf_printf(&j->out, "* %s (", verb);
				bool first = true;
#define ATTR(s) do { buf_printf(&j->out, "%s%s", first ? "" : " ", s); first = false; } while (0)
				if (!(j->opts & LS_LSUB))
					ATTR("\\Subscribed");
				if (!e && !(j->opts & LS_LSUB))
					ATTR("\\NonExistent");
				else if (e && (e->flags & STORE_MBOX_NOSELECT))
					ATTR("\\Noselect");
				if (e && !(j->opts & LS_LSUB) && (j->opts & LS_RET_CHILDREN))
					ATTR(e->flags & STORE_MBOX_HASCHILDREN ? "\\HasChildren" :
					     "\\HasNoChildren");
				if (e && e->special && !(j->opts & LS_LSUB))
					ATTR(e->special);
				buf_append_str(&j->out, ") \"/\" ");
				name_out(&j->out, name, utf8);
				buf_append_str(&j->out, "\r\n");
			}
			free(pat);
			continue;
		}
		for (size_t k = 0; k < j->nents; k++) {
			const struct list_ent *e = &j->ents[k];
			if (!list_match(pat, e->name))
				continue;
			if ((j->opts & LS_SEL_SPECIAL) && !e->special)
				continue;
			bool first = true;
			buf_append_str(&j->out, "* LIST (");
			if (e->flags & STORE_MBOX_NOSELECT)
				ATTR("\\Noselect");
			ATTR(e->flags & STORE_MBOX_HASCHILDREN ? "\\HasChildren" : "\\HasNoChildren");
			if ((j->opts & LS_RET_SUBSCRIBED) && subs_has(j, e->name))
				ATTR("\\Subscribed");
			if (e->special)
				ATTR(e->special);
#undef ATTR
			buf_append_str(&j->out, ") \"/\" ");
			name_out(&j->out, e->name, utf8);
			if ((j->opts & LS_SEL_RECURSIVE) && name_has_child_matching(j, k, pat))
				buf_append_str(&j->out, " (\"CHILDINFO\" (\"SUBSCRIBED\"))");
			buf_append_str(&j->out, "\r\n");
			if ((j->opts & LS_RET_STATUS) && !(e->flags & STORE_MBOX_NOSELECT)) {
				bool ex;
				(void)status_one(st, j->account_id, e->name, j->status_items, utf8,
						 j->appendlimit, &j->out, &ex);
			}
		}
		free(pat);
	}
}

static void list_job_free(struct list_job *j)
{
	for (size_t i = 0; i < j->nents; i++) {
		free(j->ents[i].name);
		free(j->ents[i].special);
	}
	free(j->ents);
	for (size_t i = 0; i < j->nsubs; i++)
		free(j->subs[i]);
	free(j->subs);
	for (size_t i = 0; i < j->npats; i++)
		free(j->pats[i]);
	free(j->pats);
	free(j->ref);
	buf_free(&j->out);
	free(j);
}

static void list_done(void *arg)
{
	struct list_job *j = arg;
	struct imap_session *s = j->s;

	if (conn_is_closed(s->c)) {
		list_job_free(j);
		return;
	}
	if (j->rc < 0) {
		log_error("conn=%s imap: cannot list mailboxes of user=%s; check the store",
			  s->c->idstr, s->login);
		list_job_free(j);
		tagged(s, "NO [UNAVAILABLE] Cannot list mailboxes now, try again later");
		return;
	}
	size_t len;
	char *data = buf_steal(&j->out, &len);
	free(s->final);
	s->final = xstrdup(j->opts & LS_LSUB ? "OK LSUB completed" : "OK LIST completed");
	list_job_free(j);
	if (data == NULL)
		finish_final(s);
	else
		stream_start(s, data, len, finish_final);
}

static int parse_status_items(const struct imap_command *cmd, uint32_t li, unsigned *items_r)
{
	const struct imap_arg *l = &cmd->args[li];
	static const struct { const char *name; unsigned bit; } names[] = {
		{"MESSAGES", STA_MESSAGES}, {"RECENT", STA_RECENT}, {"UIDNEXT", STA_UIDNEXT},
		{"UIDVALIDITY", STA_UIDVALIDITY}, {"UNSEEN", STA_UNSEEN},
		{"HIGHESTMODSEQ", STA_HIGHESTMODSEQ}, {"SIZE", STA_SIZE}, {"DELETED", STA_DELETED},
		{"APPENDLIMIT", STA_APPENDLIMIT},
	};

	if (l->type != IMAP_ARG_LIST || l->nchildren == 0)
		return -1;
	*items_r = 0;
	for (uint32_t i = li + 1; i < l->end; i = cmd->args[i].end) {
		unsigned bit = 0;
		for (size_t k = 0; k < ARRAY_LEN(names); k++)
			if (imap_arg_atom_eq(&cmd->args[i], names[k].name))
				bit = names[k].bit;
		if (bit == 0)
			return -1;
		*items_r |= bit;
	}
	return 0;
}

static void cmd_list(struct imap_session *s, const struct imap_command *cmd)
{
	struct list_job *j = xcalloc(1, sizeof *j);
	uint32_t i = 0;
	const char *str;
	size_t len;

	j->s = s;
	j->account_id = s->account_id;
	j->appendlimit = cfg(s)->message_size_limit;
	buf_init(&j->out, SIZE_MAX / 2);
	if (s->enabled & EN_UTF8)
		j->opts |= LS_UTF8;
	if (strcmp(cmd->name, "LSUB") == 0)
		j->opts |= LS_LSUB;
	/* LIST-EXTENDED selection options. */
	if (!(j->opts & LS_LSUB) && i < cmd->nargs && cmd->args[i].type == IMAP_ARG_LIST) {
		const struct imap_arg *l = &cmd->args[i];
		for (uint32_t k = i + 1; k < l->end; k = cmd->args[k].end) {
			if (imap_arg_atom_eq(&cmd->args[k], "SUBSCRIBED"))
				j->opts |= LS_SEL_SUBSCRIBED | LS_RET_SUBSCRIBED;
			else if (imap_arg_atom_eq(&cmd->args[k], "SPECIAL-USE"))
				j->opts |= LS_SEL_SPECIAL;
			else if (imap_arg_atom_eq(&cmd->args[k], "RECURSIVEMATCH"))
				j->opts |= LS_SEL_RECURSIVE;
			else if (imap_arg_atom_eq(&cmd->args[k], "REMOTE"))
				;
			else
				goto badargs;
		}
		if ((j->opts & LS_SEL_RECURSIVE) && !(j->opts & LS_SEL_SUBSCRIBED))
			goto badargs; /* RFC 5258 3: RECURSIVEMATCH needs another option */
		i = l->end;
	}
	if (i >= cmd->nargs || imap_arg_astring(&cmd->args[i], &str, &len) < 0 ||
	    len > MUTF7_NAME_MAX)
		goto badargs;
	/* The reference is a mailbox name prefix: decode like a name. */
	{
		const char *e;
		struct buf b;
		buf_init(&b, MUTF7_NAME_MAX * 4 + 16);
		if ((s->enabled & EN_UTF8) || mutf7_decode(str, len, &b, &e) < 0) {
			buf_reset(&b);
			buf_append(&b, str, len);
		}
		j->ref = b.data ? buf_steal(&b, NULL) : xstrdup("");
		buf_free(&b);
	}
	i = cmd->args[i].end;
	if (i >= cmd->nargs)
		goto badargs;
	uint32_t pat_first = i, pat_end = cmd->args[i].end;
	if (cmd->args[i].type == IMAP_ARG_LIST) {
		if (j->opts & LS_LSUB)
			goto badargs;
		pat_first = i + 1;
	}
	for (uint32_t k = pat_first; k < pat_end; k = cmd->args[k].end) {
		/* list-mailbox: an atom may hold the wildcards % and *. */
		const struct imap_arg *pa = &cmd->args[k];
		if (pa->type == IMAP_ARG_ATOM || pa->type == IMAP_ARG_NUMBER) {
			str = pa->str;
			len = pa->len;
		} else if (imap_arg_astring(pa, &str, &len) < 0) {
			goto badargs;
		}
		if (memchr(str, '\0', len))
			goto badargs;
		/* Matching costs pattern x name per mailbox: keep both small. */
		if (len > LIST_PATTERN_MAX || j->npats >= LIST_PATTERNS_MAX) {
			list_job_free(j);
			bad(s, "LIST pattern too long or too many patterns");
			return;
		}
		const char *e;
		struct buf b;
		buf_init(&b, MUTF7_NAME_MAX * 4 + 16);
		if ((s->enabled & EN_UTF8) || mutf7_decode(str, len, &b, &e) < 0) {
			buf_reset(&b);
			if (buf_append(&b, str, len) < 0) {
				buf_free(&b);
				goto badargs;
			}
		}
		j->pats = xreallocarray(j->pats, j->npats + 1, sizeof *j->pats);
		j->pats[j->npats++] = b.data ? buf_steal(&b, NULL) : xstrdup("");
		buf_free(&b);
	}
	i = pat_end;
	if (i < cmd->nargs) {
		/* RETURN (...) */
		if (j->opts & LS_LSUB || !imap_arg_atom_eq(&cmd->args[i], "RETURN") ||
		    i + 1 >= cmd->nargs || cmd->args[i + 1].type != IMAP_ARG_LIST ||
		    cmd->args[i + 1].end != cmd->nargs)
			goto badargs;
		const struct imap_arg *l = &cmd->args[i + 1];
		for (uint32_t k = i + 2; k < l->end; k = cmd->args[k].end) {
			if (imap_arg_atom_eq(&cmd->args[k], "SUBSCRIBED")) {
				j->opts |= LS_RET_SUBSCRIBED;
			} else if (imap_arg_atom_eq(&cmd->args[k], "CHILDREN")) {
				j->opts |= LS_RET_CHILDREN;
			} else if (imap_arg_atom_eq(&cmd->args[k], "SPECIAL-USE")) {
				; /* special-use attributes are always returned */
			} else if (imap_arg_atom_eq(&cmd->args[k], "STATUS") &&
				   cmd->args[k].end < l->end &&
				   parse_status_items(cmd, cmd->args[k].end, &j->status_items) == 0) {
				j->opts |= LS_RET_STATUS;
				k = cmd->args[k].end;
			} else {
				goto badargs;
			}
		}
	}
	j->opts |= LS_RET_CHILDREN;
	server_job(s->srv, s->c, list_work, list_done, j);
	return;
badargs:
	list_job_free(j);
	bad(s, "Invalid LIST arguments");
}

struct status_job {
	struct imap_session *s;
	char *name;
	unsigned items;
	bool utf8;
	struct buf out;
	bool exists;
	int rc;
};

static void status_work(void *arg)
{
	struct status_job *j = arg;
	j->rc = status_one(j->s->srv->store, j->s->account_id, j->name, j->items, j->utf8,
			   j->s->srv->cfg->message_size_limit, &j->out, &j->exists);
}

static void status_done(void *arg)
{
	struct status_job *j = arg;
	struct imap_session *s = j->s;

	if (!conn_is_closed(s->c)) {
		if (j->rc < 0) {
			tagged(s, "NO [UNAVAILABLE] Cannot read the mailbox now, try again later");
		} else if (!j->exists) {
			tagged(s, "NO [NONEXISTENT] No such mailbox");
		} else {
			conn_write(s->c, j->out.data, j->out.len);
			finish(s, false, "OK STATUS completed");
		}
	}
	free(j->name);
	buf_free(&j->out);
	free(j);
}

static void cmd_status(struct imap_session *s, const struct imap_command *cmd)
{
	const char *err = NULL;
	unsigned items;

	if (cmd->nargs < 2 || cmd->args[0].end >= cmd->nargs ||
	    parse_status_items(cmd, cmd->args[0].end, &items) < 0 ||
	    cmd->args[cmd->args[0].end].end != cmd->nargs) {
		bad(s, "STATUS expects a mailbox and a list of items");
		return;
	}
	char *name = mailbox_in(s, &cmd->args[0], &err);
	if (!name) {
		bad(s, err);
		return;
	}
	struct status_job *j = xcalloc(1, sizeof *j);
	j->s = s;
	j->name = name;
	j->items = items;
	j->utf8 = s->enabled & EN_UTF8;
	buf_init(&j->out, 64 * 1024);
	server_job(s->srv, s->c, status_work, status_done, j);
}

/* ---- SELECT / EXAMINE ------------------------------------------------------ */

struct select_job {
	struct imap_session *s;
	char *name;
	bool readonly;
	bool condstore;
	bool qresync;
	uint32_t q_uidvalidity;
	uint64_t q_modseq;
	struct imap_seqset q_known;     /* known UIDs (count 0: all) */
	int64_t id;
	bool noselect;
	int rc;
	struct mailbox_info mb;
	struct msg_state *states;
	size_t n;
	/* QRESYNC: what changed since q_modseq. */
	struct mailbox_info mb2;
	struct msg_state *changed;
	size_t nchanged;
	uint32_t *vanished;
	size_t nvanished;
};

static void select_work(void *arg)
{
	struct select_job *j = arg;
	struct store *st = j->s->srv->store;

	j->rc = store_mailbox_id(st, j->s->account_id, j->name, &j->id, &j->noselect);
}

/* QRESYNC: what changed since the client's MODSEQ (read after the
 * snapshot, so nothing between the two is missed). */
static void select_qresync_work(void *arg)
{
	struct select_job *j = arg;
	int r = store_mailbox_sync(j->s->srv->store, j->id, j->q_modseq, &j->mb2, &j->changed,
				   &j->nchanged, &j->vanished, &j->nvanished);
	if (r != 1)
		j->rc = r;
}

static void select_done(void *arg);

static void select_snapshot(void *arg, int rc, struct imap_snapshot *snap)
{
	struct select_job *j = arg;

	j->rc = rc;
	if (rc == 1) {
		j->mb.uidvalidity = snap->uidvalidity;
		j->mb.uidnext = snap->uidnext;
		j->mb.highestmodseq = snap->highestmodseq;
		j->states = snap->states;
		j->n = snap->n;
	}
	if (conn_is_closed(j->s->c) || rc != 1 || !j->qresync ||
	    j->q_uidvalidity != j->mb.uidvalidity) {
		select_done(j);
		return;
	}
	server_job(j->s->srv, j->s->c, select_qresync_work, select_done, j);
}

static void select_found(void *arg)
{
	struct select_job *j = arg;

	if (conn_is_closed(j->s->c) || j->rc != 1 || j->noselect) {
		select_done(j);
		return;
	}
	imap_cache_get(j->s->srv, j->s->c, j->id, select_snapshot, j);
}

static void select_job_free(struct select_job *j)
{
	free(j->name);
	mailbox_info_free(&j->mb);
	mailbox_info_free(&j->mb2);
	store_states_free(j->states, j->n);
	store_states_free(j->changed, j->nchanged);
	free(j->vanished);
	imap_seqset_free(&j->q_known);
	free(j);
}

static bool seqset_has(const struct imap_seqset *set, uint32_t v, uint32_t star)
{
	for (size_t i = 0; i < set->count; i++) {
		uint32_t lo = set->ranges[i].lo == IMAP_SEQ_STAR ? star : set->ranges[i].lo;
		uint32_t hi = set->ranges[i].hi == IMAP_SEQ_STAR ? star : set->ranges[i].hi;
		if (lo > hi) {
			uint32_t t = lo;
			lo = hi;
			hi = t;
		}
		if (v >= lo && v <= hi)
			return true;
	}
	return false;
}

static void select_done(void *arg)
{
	struct select_job *j = arg;
	struct imap_session *s = j->s;
	struct conn *c = s->c;
	const char *verb = j->readonly ? "EXAMINE" : "SELECT";

	if (conn_is_closed(c)) {
		select_job_free(j);
		return;
	}
	if (j->rc < 0) {
		log_error("conn=%s imap: cannot open mailbox %s user=%s; check the store", c->idstr,
			  j->name, s->login);
		select_job_free(j);
		tagged(s, "NO [UNAVAILABLE] Cannot open the mailbox now, try again later");
		return;
	}
	if (j->rc == 0 || j->noselect) {
		bool ns = j->noselect;
		select_job_free(j);
		tagged(s, ns ? "NO [CANNOT] That name is not selectable (\\Noselect)" :
			  "NO [NONEXISTENT] No such mailbox");
		return;
	}
	s->state = ST_SELECTED;
	s->mbox_id = j->id;
	s->mbox_name = j->name;
	j->name = NULL;
	s->readonly = j->readonly;
	s->uidvalidity = j->mb.uidvalidity;
	s->uidnext = j->mb.uidnext;
	s->modseq = j->mb.highestmodseq;
	s->msgs = j->states;
	s->nmsgs = s->capmsgs = j->n;
	j->states = NULL;
	j->n = 0;
	if (j->condstore || j->qresync)
		s->condstore = true;
	uint32_t first = j->readonly ? UINT32_MAX :
			 server_recent_claim(s->srv, s->mbox_id, s->uidnext);
	s->nrecent = 0;
	uint32_t unseen = 0;
	struct buf b;
	buf_init(&b, SIZE_MAX / 2);
	buf_append_str(&b, "* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft");
	/* Keywords in use, each once. */
	struct buf kws;
	buf_init(&kws, 1024 * 1024);
	for (size_t i = 0; i < s->nmsgs; i++) {
		struct msg_state *m = &s->msgs[i];
		if (m->uid >= first) {
			m->flags |= MSGF_RECENT;
			s->nrecent++;
		}
		if (unseen == 0 && !(m->flags & FLAG_SEEN))
			unseen = (uint32_t)i + 1;
		for (const char *p = m->keywords; p && *p;) {
			while (*p == ' ')
				p++;
			const char *e = p;
			while (*e && *e != ' ')
				e++;
			if (e > p && !store_keywords_has(kws.data, p, (size_t)(e - p))) {
				if (kws.len)
					buf_append(&kws, " ", 1);
				buf_append(&kws, p, (size_t)(e - p));
			}
			p = e;
		}
	}
	if (kws.len) {
		buf_append(&b, " ", 1);
		buf_append(&b, kws.data, kws.len);
	}
	buf_free(&kws);
	buf_append_str(&b, ")\r\n");
	if (s->readonly)
		buf_append_str(&b, "* OK [PERMANENTFLAGS ()] Read-only mailbox\r\n");
	else
		buf_append_str(&b, "* OK [PERMANENTFLAGS (\\Answered \\Flagged \\Deleted \\Seen "
				   "\\Draft \\*)] Flags permitted\r\n");
	buf_printf(&b, "* %zu EXISTS\r\n", s->nmsgs);
	if (!(s->enabled & EN_REV2)) {
		buf_printf(&b, "* %" PRIu32 " RECENT\r\n", s->nrecent);
		if (unseen)
			buf_printf(&b, "* OK [UNSEEN %" PRIu32 "] First unseen\r\n", unseen);
	}
	buf_printf(&b, "* OK [UIDVALIDITY %" PRIu32 "] UIDs valid\r\n", s->uidvalidity);
	buf_printf(&b, "* OK [UIDNEXT %" PRIu32 "] Predicted next UID\r\n", s->uidnext);
	buf_printf(&b, "* OK [HIGHESTMODSEQ %" PRIu64 "] Highest\r\n", s->modseq);
	if (s->enabled & EN_REV2) {
		buf_append_str(&b, "* LIST () \"/\" ");
		mailbox_out(s, &b, s->mbox_name);
		buf_append_str(&b, "\r\n");
	}
	if (j->qresync && j->q_uidvalidity == s->uidvalidity) {
		/* RFC 7162 3.2.5.1: expunged since, within the known UIDs, then
		 * the changed messages. */
		uint32_t star = s->uidnext ? s->uidnext - 1 : 0;
		uint32_t *v = xreallocarray(NULL, j->nvanished ? j->nvanished : 1, sizeof *v);
		size_t nv = 0;
		for (size_t i = 0; i < j->nvanished; i++)
			if (j->q_known.count == 0 || seqset_has(&j->q_known, j->vanished[i], star))
				v[nv++] = j->vanished[i];
		if (nv) {
			buf_append_str(&b, "* VANISHED (EARLIER) ");
			uidset_append(&b, v, nv);
			buf_append_str(&b, "\r\n");
		}
		free(v);
		for (size_t k = 0; k < j->nchanged; k++) {
			bool found;
			size_t i = uid_index(s, j->changed[k].uid, &found);
			if (found)
				fetch_flags_line(s, &b, i);
		}
	}
	s->watching = true;
	server_watch(s->srv, s->mbox_id, on_mailbox_changed, s);
	log_debug("conn=%s imap: %s user=%s mailbox=%s messages=%zu", c->idstr, verb, s->login,
		  s->mbox_name, s->nmsgs);
	select_job_free(j);
	buf_printf(&b, "%s OK [%s] %s completed\r\n", s->tag,
		   s->readonly ? "READ-ONLY" : "READ-WRITE", verb);
	size_t len;
	char *data = buf_steal(&b, &len);
	buf_free(&b);
	stream_start(s, data, len, resume);
}

static void cmd_select(struct imap_session *s, const struct imap_command *cmd)
{
	const char *err = NULL;
	bool readonly = strcmp(cmd->name, "EXAMINE") == 0;

	if (cmd->nargs < 1) {
		bad(s, "Mailbox name expected");
		return;
	}
	char *name = mailbox_in(s, &cmd->args[0], &err);
	if (!name) {
		bad(s, err);
		return;
	}
	struct select_job *j = xcalloc(1, sizeof *j);
	j->s = s;
	j->name = name;
	j->readonly = readonly;
	uint32_t i = cmd->args[0].end;
	if (i < cmd->nargs) {
		const struct imap_arg *l = &cmd->args[i];
		if (l->type != IMAP_ARG_LIST || l->end != cmd->nargs)
			goto badargs;
		for (uint32_t k = i + 1; k < l->end; k = cmd->args[k].end) {
			if (imap_arg_atom_eq(&cmd->args[k], "CONDSTORE")) {
				j->condstore = true;
			} else if (imap_arg_atom_eq(&cmd->args[k], "QRESYNC") &&
				   cmd->args[k].end < l->end &&
				   cmd->args[cmd->args[k].end].type == IMAP_ARG_LIST) {
				if (!(s->enabled & EN_QRESYNC)) {
					select_job_free(j);
					bad(s, "QRESYNC must be enabled first (ENABLE QRESYNC)");
					return;
				}
				uint32_t q = cmd->args[k].end;
				const struct imap_arg *ql = &cmd->args[q];
				uint32_t a = q + 1;
				if (ql->nchildren < 2 || imap_arg_nz_number(&cmd->args[a], &j->q_uidvalidity) < 0)
					goto badargs;
				a = cmd->args[a].end;
				if (imap_arg_number64(&cmd->args[a], &j->q_modseq) < 0 || j->q_modseq == 0)
					goto badargs;
				a = cmd->args[a].end;
				if (a < ql->end && (cmd->args[a].type == IMAP_ARG_ATOM ||
						    cmd->args[a].type == IMAP_ARG_NUMBER)) {
					const char *e;
					if (imap_seqset_parse(cmd->args[a].str, cmd->args[a].len,
							      &j->q_known, &e) < 0)
						goto badargs;
				}
				/* The optional sequence-match data is accepted and not
				 * needed: VANISHED is computed from the store. */
				j->qresync = true;
				k = q;
			} else {
				goto badargs;
			}
		}
	}
	if (s->state == ST_SELECTED) {
		selected_free(s);
		if (s->enabled & EN_QRESYNC)
			out(s, "* OK [CLOSED] Previous mailbox closed\r\n");
	}
	server_job(s->srv, s->c, select_work, select_found, j);
	return;
badargs:
	select_job_free(j);
	bad(s, "Invalid SELECT parameters");
}

static void cmd_unselect(struct imap_session *s, const struct imap_command *cmd)
{
	(void)cmd;
	selected_free(s);
	tagged(s, "OK UNSELECT completed");
}

/* ---- EXPUNGE / CLOSE --------------------------------------------------------- */

struct expunge_op {
	struct store_op op;
	struct imap_session *s;
	int64_t mailbox_id;
	uint32_t *uids;
	size_t n;
	char **unlink;
	size_t nunlink;
	bool close;            /* CLOSE: no untagged EXPUNGE, then deselect */
	/* MOVE: copy first */
	int64_t dst_mailbox;
	uint32_t *dst_uids;
	uint32_t dst_uidvalidity;
	bool move;
	bool copy_only;
	uint64_t modseq_before;   /* source mailbox's HIGHESTMODSEQ before the expunge */
};

static void free_unlink(struct expunge_op *u)
{
	for (size_t i = 0; i < u->nunlink; i++)
		free(u->unlink[i]);
	FREE(u->unlink);
	u->nunlink = 0;
}

static int expunge_apply(struct store_op *op, struct store_txn *t, char **error_r)
{
	struct expunge_op *u = op->arg;

	free_unlink(u);
	if (u->move || u->copy_only) {
		if (store_txn_copy(t, u->mailbox_id, u->dst_mailbox, u->uids, u->n, u->dst_uids,
				   error_r) < 0)
			return -1;
		if (u->copy_only)
			return 0;
	}
	uint64_t next = 0;
	if (store_next_modseq(t, u->mailbox_id, &next, error_r) < 0)
		return -1;
	u->modseq_before = next - 1;
	if (store_txn_expunge(t, u->mailbox_id, u->uids, u->n, &u->unlink, &u->nunlink,
			      error_r) < 0) {
		free_unlink(u);
		return -1;
	}
	return 0;
}

static void expunge_after_commit(struct store_op *op, struct store *st)
{
	struct expunge_op *u = op->arg;
	store_unlink_bodies(st, u->unlink, u->nunlink);
}

static void expunge_op_free(struct expunge_op *u)
{
	free(u->op.error);
	free_unlink(u);
	free(u->uids);
	free(u->dst_uids);
	free(u);
}

static void expunge_done(struct store_op *op)
{
	struct expunge_op *u = op->arg;
	struct imap_session *s = u->s;
	struct conn *c = s->c;

	/* Our view was current: we announce the expunges ourselves, without
	 * reading the mailbox again. */
	bool self = op->status == 0 && !u->copy_only && !u->close && !conn_is_closed(c) &&
		    s->state == ST_SELECTED && s->mbox_id == u->mailbox_id &&
		    u->modseq_before == s->modseq;
	if (op->status == 0) {
		if (!u->copy_only)
			server_mailbox_changed_by(s->srv, u->mailbox_id, self ? s : NULL);
		if (u->move || u->copy_only) {
			for (size_t i = 0; i < u->n; i++)
				if (u->dst_uids[i]) {
					server_recent_note(s->srv, u->dst_mailbox, u->dst_uids[i]);
					break;
				}
			server_mailbox_changed(s->srv, u->dst_mailbox);
		}
	}
	if (conn_is_closed(c)) {
		expunge_op_free(u);
		conn_release(c);
		return;
	}
	const char *verb = u->copy_only ? "COPY" : u->move ? "MOVE" : u->close ? "CLOSE" :
			   "EXPUNGE";
	if (op->status != 0) {
		log_error("conn=%s imap: %s failed user=%s mailbox=%s: %s", c->idstr, verb, s->login,
			  s->mbox_name, op->error ? op->error : "?");
		expunge_op_free(u);
		conn_release(c);
		tagged(s, "NO [SERVERBUG] The operation failed; nothing was changed");
		return;
	}
	if (u->close) {
		expunge_op_free(u);
		conn_release(c);
		selected_free(s);
		tagged(s, "OK CLOSE completed");
		return;
	}
	char *code = NULL;
	if (u->move || u->copy_only) {
		struct buf b, d;
		size_t k = 0;
		buf_init(&b, SIZE_MAX / 2);
		buf_init(&d, SIZE_MAX / 2);
		uint32_t *src = xreallocarray(NULL, u->n ? u->n : 1, sizeof *src);
		uint32_t *dst = xreallocarray(NULL, u->n ? u->n : 1, sizeof *dst);
		for (size_t i = 0; i < u->n; i++)
			if (u->dst_uids[i]) {
				src[k] = u->uids[i];
				dst[k++] = u->dst_uids[i];
			}
		if (k > 0) {
			uidset_append(&b, src, k);
			uidset_append(&d, dst, k);
			code = xasprintf("COPYUID %" PRIu32 " %s %s", u->dst_uidvalidity, b.data,
					 d.data);
		}
		free(src);
		free(dst);
		buf_free(&b);
		buf_free(&d);
	}
	bool move = u->move;
	if (self) {
		struct buf b;
		buf_init(&b, SIZE_MAX / 2);
		if (move && code)
			buf_printf(&b, "* OK [%s] Moved\r\n", code);
		apply_expunges(s, &b, u->uids, u->n);
		if (u->modseq_before + 1 > s->modseq)
			s->modseq = u->modseq_before + 1;
		expunge_op_free(u);
		conn_release(c);
		size_t len;
		char *data = buf_steal(&b, &len);
		buf_free(&b);
		free(s->final);
		s->final = move ? xstrdup("OK MOVE completed") : xstrdup("OK EXPUNGE completed");
		free(code);
		if (data)
			stream_start(s, data, len, finish_final);
		else
			finish_final(s);
		return;
	}
	expunge_op_free(u);
	conn_release(c);
	if (move && code) {
		/* RFC 6851 4.3: COPYUID in an untagged OK before the expunges. */
		outf(s, "* OK [%s] Moved\r\n", code);
		finish(s, true, "OK MOVE completed");
	} else if (code) {
		finish(s, false, "OK [%s] %s completed", code, verb);
	} else {
		finish(s, true, "OK %s completed", verb);
	}
	free(code);
}

static struct expunge_op *expunge_op_new(struct imap_session *s)
{
	struct expunge_op *u = xcalloc(1, sizeof *u);
	u->s = s;
	u->mailbox_id = s->mbox_id;
	u->op.apply = expunge_apply;
	u->op.after_commit = expunge_after_commit;
	u->op.done = expunge_done;
	u->op.arg = u;
	return u;
}

static void submit_op(struct imap_session *s, struct store_op *op)
{
	conn_hold(s->c);
	store_submit(s->srv->writer, op);
}

/* EXPUNGE, UID EXPUNGE set, CLOSE. */
static void start_expunge(struct imap_session *s, const struct imap_seqset *set, bool close)
{
	struct expunge_op *u = expunge_op_new(s);
	u->close = close;
	u->uids = xreallocarray(NULL, s->nmsgs ? s->nmsgs : 1, sizeof *u->uids);
	if (set) {
		size_t n;
		uint32_t *idx = resolve_set(s, set, true, &n);
		for (size_t i = 0; i < n; i++)
			if (s->msgs[idx[i]].flags & FLAG_DELETED)
				u->uids[u->n++] = s->msgs[idx[i]].uid;
		free(idx);
	} else {
		for (size_t i = 0; i < s->nmsgs; i++)
			if (s->msgs[i].flags & FLAG_DELETED)
				u->uids[u->n++] = s->msgs[i].uid;
	}
	if (u->n == 0) {
		expunge_op_free(u);
		if (close) {
			selected_free(s);
			tagged(s, "OK CLOSE completed");
		} else {
			finish(s, true, "OK EXPUNGE completed");
		}
		return;
	}
	submit_op(s, &u->op);
}

static void cmd_expunge(struct imap_session *s, const struct imap_command *cmd)
{
	if (s->readonly) {
		tagged(s, "NO [READ-ONLY] The mailbox is read-only (EXAMINE)");
		return;
	}
	if (s->cmd_uid) {
		struct imap_seqset set = {0};
		const char *e = "UID EXPUNGE expects a UID set";
		if (cmd->nargs != 1 || seqset_arg(&cmd->args[0], &set, &e) < 0) {
			bad(s, e);
			return;
		}
		start_expunge(s, &set, false);
		imap_seqset_free(&set);
		return;
	}
	start_expunge(s, NULL, false);
}

static void cmd_close(struct imap_session *s, const struct imap_command *cmd)
{
	(void)cmd;
	if (s->readonly) {
		selected_free(s);
		tagged(s, "OK CLOSE completed");
		return;
	}
	start_expunge(s, NULL, true);
}

static void cmd_idle(struct imap_session *s, const struct imap_command *cmd)
{
	(void)cmd;
	out(s, "+ idling\r\n");
	s->line_mode = LINE_IDLE;
	s->busy = false;
	conn_flush(s->c);
	if (s->state == ST_SELECTED)
		sync_start(s, sync_after);
	conn_resume(s->c);
}

/* ---- FETCH ---------------------------------------------------------------- */

enum fetch_kind {
	FI_UID, FI_FLAGS, FI_INTERNALDATE, FI_SIZE, FI_ENVELOPE, FI_BODY, FI_BODYSTRUCTURE,
	FI_MODSEQ, FI_SECTION, FI_RFC822, FI_RFC822_HEADER, FI_RFC822_TEXT,
};

struct fetch_item {
	enum fetch_kind kind;
	struct imap_fetch_section sec;
};

struct fetch_ctx {
	struct fetch_item *items;
	size_t nitems;
	bool need_db, need_data, need_mime, set_seen, has_uid, has_flags, has_modseq;
	bool body_needed;               /* some item needs more than the top header */
	bool utf8;
	uint64_t changedsince;
	bool vanished;
	struct imap_seqset uidset;      /* VANISHED: the UIDs asked for */
	uint32_t *idx;
	size_t n, pos;
	uint32_t *seen;                 /* UIDs that got \Seen */
	size_t nseen, capseen;
	bool unknown_cte;
	bool failed;
};

static void fetch_ctx_free(void *arg)
{
	struct fetch_ctx *f = arg;
	if (!f)
		return;
	free(f->items);
	free(f->idx);
	free(f->seen);
	imap_seqset_free(&f->uidset);
	free(f);
}

struct fetch_msg {
	uint32_t seq;
	struct msg_state st;            /* keywords owned */
	bool seen_now;
};

struct fetch_job {
	struct imap_session *s;
	struct fetch_ctx *f;            /* read-only on the worker */
	int64_t mailbox_id;
	bool readonly;
	struct fetch_msg *m;
	size_t n;
	struct buf out;
	bool unknown_cte;
	int err;                        /* store or file error */
	/* VANISHED (EARLIER) pre-step */
	bool vanish_step;
	uint32_t *vanished;
	size_t nvanished;
};

static void write_literal(struct buf *b, const char *p, size_t n, bool binary)
{
	bool nul = binary && memchr(p, '\0', n) != NULL;
	buf_printf(b, "%s{%zu}\r\n", nul ? "~" : "", n);
	buf_append(b, p, n);
}

/* Render one FETCH response into b (worker thread, or loop thread when no
 * message data is needed). */
static void fetch_render(const struct fetch_ctx *f, struct fetch_msg *fm,
			 const struct msg_entry *e, const char *data, size_t len,
			 const struct mime_message *mime, bool readonly, struct buf *b,
			 bool *unknown_cte)
{
	bool first = true;
	bool flags_sent = false;

	if (f->set_seen && !readonly && !(fm->st.flags & FLAG_SEEN)) {
		fm->st.flags |= FLAG_SEEN;
		fm->seen_now = true;
	}
	buf_printf(b, "* %" PRIu32 " FETCH (", fm->seq);
#define SEP() do { if (!first) buf_append(b, " ", 1); first = false; } while (0)
	for (size_t i = 0; i < f->nitems; i++) {
		const struct fetch_item *it = &f->items[i];
		switch (it->kind) {
		case FI_UID:
			SEP();
			buf_printf(b, "UID %" PRIu32, fm->st.uid);
			break;
		case FI_FLAGS:
			SEP();
			buf_append_str(b, "FLAGS ");
			flags_append(b, fm->st.flags, fm->st.keywords);
			flags_sent = true;
			break;
		case FI_MODSEQ:
			SEP();
			buf_printf(b, "MODSEQ (%" PRIu64 ")", fm->st.modseq);
			break;
		case FI_INTERNALDATE: {
			char d[40];
			imap_internaldate(e ? e->internaldate : 0, d);
			SEP();
			buf_printf(b, "INTERNALDATE %s", d);
			break;
		}
		case FI_SIZE:
			SEP();
			buf_printf(b, "RFC822.SIZE %" PRId64, e ? e->size : (int64_t)0);
			break;
		case FI_ENVELOPE:
			SEP();
			buf_append_str(b, "ENVELOPE ");
			imap_envelope(b, data, len, mime, 0);
			break;
		case FI_BODY:
		case FI_BODYSTRUCTURE:
			SEP();
			buf_append_str(b, it->kind == FI_BODY ? "BODY " : "BODYSTRUCTURE ");
			imap_bodystructure(b, data, len, mime, 0, it->kind == FI_BODYSTRUCTURE,
					   f->utf8);
			break;
		case FI_RFC822:
		case FI_RFC822_HEADER:
		case FI_RFC822_TEXT:
		case FI_SECTION: {
			const char *p = NULL;
			size_t n = 0;
			struct buf scratch;
			buf_init(&scratch, (size_t)len * 2 + 1024 * 1024);
			SEP();
			if (it->kind == FI_RFC822)
				buf_append_str(b, "RFC822");
			else if (it->kind == FI_RFC822_HEADER)
				buf_append_str(b, "RFC822.HEADER");
			else if (it->kind == FI_RFC822_TEXT)
				buf_append_str(b, "RFC822.TEXT");
			else
				imap_fetch_item_name(b, &it->sec);
			buf_append(b, " ", 1);
			if (it->sec.kind == IMAP_FETCH_BODY) {
				if (data && imap_section_get(data, len, mime, &it->sec, &scratch, &p,
							     &n) != 0)
					p = NULL, n = 0;
				imap_partial(&it->sec, &p, &n);
				write_literal(b, p ? p : "", p ? n : 0, false);
			} else {
				int r = data ? imap_binary_get(data, len, mime, &it->sec, &scratch) : 1;
				if (r == -2) {
					*unknown_cte = true;
					buf_append_str(b, "NIL");
				} else if (it->sec.kind == IMAP_FETCH_BINARY_SIZE) {
					buf_printf(b, "%zu", r == 0 ? scratch.len : (size_t)0);
				} else {
					p = r == 0 ? scratch.data : NULL;
					n = r == 0 ? scratch.len : 0;
					imap_partial(&it->sec, &p, &n);
					write_literal(b, p ? p : "", p ? n : 0, true);
				}
			}
			buf_free(&scratch);
			break;
		}
		}
	}
	if (fm->seen_now && !flags_sent) {
		SEP();
		buf_append_str(b, "FLAGS ");
		flags_append(b, fm->st.flags, fm->st.keywords);
	}
#undef SEP
	buf_append_str(b, ")\r\n");
}

static int read_file(const char *path, int64_t size, char **data_r, size_t *len_r)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	size_t cap = size > 0 ? (size_t)size : 0;
	char *d = xmalloc(cap + 1);
	size_t got = 0;
	while (got < cap) {
		ssize_t r = read(fd, d + got, cap - got);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		got += (size_t)r;
	}
	close(fd);
	d[got] = '\0';
	*data_r = d;
	*len_r = got;
	return 0;
}

/* The top-level header block only (ENVELOPE, BODY[HEADER...]): read
 * until the blank line, in pieces; a header longer than 1 MiB falls back to
 * the whole file. */
static int read_header(const char *path, int64_t size, char **data_r, size_t *len_r)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	size_t cap = 0, got = 0, limit = size > 0 ? (size_t)size : 0;
	char *d = NULL;
	bool done = false;
	while (!done && got < limit) {
		if (got + 8192 + 1 > cap) {
			cap = cap ? cap * 2 : 16384;
			d = xrealloc(d, cap);
		}
		size_t want = MIN(cap - 1 - got, limit - got);
		ssize_t r = pread(fd, d + got, want, (off_t)got);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		size_t from = got > 3 ? got - 3 : 0;
		got += (size_t)r;
		d[got] = '\0';
		if (memmem(d + from, got - from, "\n\r\n", 3) || memmem(d + from, got - from, "\n\n", 2) ||
		    (got >= 2 && ((d[0] == '\r' && d[1] == '\n') || d[0] == '\n')))
			done = true;
		else if (got > 1024 * 1024)
			break;
	}
	close(fd);
	if (!done && got < limit) {
		free(d);
		return read_file(path, size, data_r, len_r);
	}
	if (!d)
		d = xstrdup("");
	*data_r = d;
	*len_r = got;
	return 0;
}

static void fetch_work(void *arg)
{
	struct fetch_job *j = arg;
	struct store *st = j->s->srv->store;
	const struct fetch_ctx *f = j->f;

	if (j->vanish_step) {
		struct mailbox_info mb;
		struct msg_state *states;
		size_t n;
		if (store_mailbox_sync(st, j->mailbox_id, f->changedsince, &mb, &states, &n,
				       &j->vanished, &j->nvanished) != 1)
			j->err = -1;
		else {
			store_states_free(states, n);
			mailbox_info_free(&mb);
		}
		return;
	}
	struct msg_entry *ents = NULL;
	if (f->need_db) {
		uint32_t *uids = xreallocarray(NULL, j->n, sizeof *uids);
		for (size_t i = 0; i < j->n; i++)
			uids[i] = j->m[i].st.uid;
		ents = xreallocarray(NULL, j->n, sizeof *ents);
		if (store_messages_get(st, j->mailbox_id, uids, j->n, ents) < 0)
			j->err = -1;
		free(uids);
		if (j->err) {
			free(ents);
			return;
		}
	}
	for (size_t i = 0; i < j->n; i++) {
		const struct msg_entry *e = ents ? &ents[i] : NULL;
		char *data = NULL;
		size_t len = 0;
		struct mime_message *mime = NULL;
		if (e && e->uid == 0)
			continue;       /* expunged meanwhile: nothing to show (RFC 2180 4.1.2) */
		if (f->need_data) {
			char path[PATH_MAX];
			store_msg_path(st, e->path, path, sizeof path);
			int r = f->body_needed ? read_file(path, e->size, &data, &len) :
				read_header(path, e->size, &data, &len);
			if (r < 0) {
				log_error("imap: cannot read message file %s: %s", path,
					  strerror(errno));
				j->err = -1;
				break;
			}
			if (f->need_mime)
				mime = mime_parse(data, len, NULL);
		}
		fetch_render(f, &j->m[i], e, data, len, mime, j->readonly, &j->out,
			     &j->unknown_cte);
		mime_message_free(&mime);
		free(data);
	}
	free(ents);
}

static void fetch_job_free(struct fetch_job *j)
{
	for (size_t i = 0; i < j->n; i++)
		free(j->m[i].st.keywords);
	free(j->m);
	free(j->vanished);
	buf_free(&j->out);
	free(j);
}

static void fetch_next(struct imap_session *s);

struct seen_op {
	struct store_op op;
	struct imap_session *s;
	int64_t mailbox_id;
	uint32_t *uids;
	size_t n;
	struct store_flag_change chg;
};

static int seen_apply(struct store_op *op, struct store_txn *t, char **error_r)
{
	struct seen_op *u = op->arg;
	uint32_t *mod;
	size_t nmod;
	u->chg.mode = STORE_FLAGS_ADD;
	u->chg.flags = FLAG_SEEN;
	int r = store_txn_store(t, u->mailbox_id, u->uids, u->n, &u->chg, &mod, &nmod, error_r);
	free(mod);
	return r;
}

static void fetch_end(struct imap_session *s);

static void seen_done(struct store_op *op)
{
	struct seen_op *u = op->arg;
	struct imap_session *s = u->s;
	struct conn *c = s->c;

	bool self = op->status == 0 && !conn_is_closed(c) && s->state == ST_SELECTED &&
		    s->mbox_id == u->mailbox_id && u->chg.modseq_before == s->modseq;
	if (op->status == 0)
		server_mailbox_changed_by(s->srv, u->mailbox_id, self ? s : NULL);
	else
		log_error("conn=%s imap: setting \\Seen failed user=%s: %s", c->idstr,
			  s->login ? s->login : "-", op->error ? op->error : "?");
	if (self) {
		/* The FETCH responses carried \Seen already; take the MODSEQs. */
		for (size_t k = 0; k < u->chg.nchanged; k++) {
			bool found;
			size_t i = uid_index(s, u->chg.changed[k].uid, &found);
			if (found) {
				s->msgs[i].modseq = u->chg.changed[k].modseq;
				s->msgs[i].flags |= FLAG_SEEN;
			}
			if (u->chg.changed[k].modseq > s->modseq)
				s->modseq = u->chg.changed[k].modseq;
		}
	}
	int status = op->status;
	store_states_free(u->chg.changed, u->chg.nchanged);
	free(op->error);
	free(u->uids);
	free(u);
	if (!conn_is_closed(c)) {
		struct fetch_ctx *f = s->work;
		if (f) {
			f->nseen = 0;
			if (status != 0)
				f->failed = true;
		}
		fetch_end(s);
	}
	conn_release(c);
}

static void fetch_end(struct imap_session *s)
{
	struct fetch_ctx *f = s->work;
	const char *verb = s->cmd_uid ? "UID FETCH" : "FETCH";

	if (f && f->nseen > 0) {
		struct seen_op *u = xcalloc(1, sizeof *u);
		u->s = s;
		u->mailbox_id = s->mbox_id;
		u->uids = f->seen;
		u->n = f->nseen;
		f->seen = NULL;
		f->capseen = 0;
		u->op.apply = seen_apply;
		u->op.done = seen_done;
		u->op.arg = u;
		submit_op(s, &u->op);
		return;
	}
	if (f && f->failed)
		finish(s, false, "NO [SERVERBUG] Some messages could not be read");
	else if (f && f->unknown_cte)
		finish(s, false, "NO [UNKNOWN-CTE] Unknown Content-Transfer-Encoding");
	else
		finish(s, false, "OK %s completed", verb);
}

static void fetch_job_done(void *arg)
{
	struct fetch_job *j = arg;
	struct imap_session *s = j->s;
	struct fetch_ctx *f = j->f;

	if (conn_is_closed(s->c)) {
		fetch_job_free(j);
		return;
	}
	if (j->vanish_step) {
		struct buf b;
		buf_init(&b, SIZE_MAX / 2);
		uint32_t star = s->uidnext ? s->uidnext - 1 : 0;
		uint32_t *v = xreallocarray(NULL, j->nvanished ? j->nvanished : 1, sizeof *v);
		size_t nv = 0;
		for (size_t i = 0; i < j->nvanished; i++)
			if (seqset_has(&f->uidset, j->vanished[i], star))
				v[nv++] = j->vanished[i];
		if (nv) {
			buf_append_str(&b, "* VANISHED (EARLIER) ");
			uidset_append(&b, v, nv);
			buf_append_str(&b, "\r\n");
			conn_write(s->c, b.data, b.len);
		}
		free(v);
		buf_free(&b);
		f->vanished = false;
		fetch_job_free(j);
		fetch_next(s);
		return;
	}
	if (j->err)
		f->failed = true;
	if (j->unknown_cte)
		f->unknown_cte = true;
	for (size_t i = 0; i < j->n; i++) {
		if (!j->m[i].seen_now)
			continue;
		bool found;
		size_t k = uid_index(s, j->m[i].st.uid, &found);
		if (found)
			s->msgs[k].flags |= FLAG_SEEN;
		if (f->nseen == f->capseen) {
			f->capseen = f->capseen ? f->capseen * 2 : 64;
			f->seen = xreallocarray(f->seen, f->capseen, sizeof *f->seen);
		}
		f->seen[f->nseen++] = j->m[i].st.uid;
	}
	size_t len;
	char *data = buf_steal(&j->out, &len);
	fetch_job_free(j);
	if (f->failed) {
		free(data);
		fetch_end(s);
		return;
	}
	if (data)
		stream_start(s, data, len, fetch_next);
	else
		fetch_next(s);
}

static void fetch_next(struct imap_session *s)
{
	struct fetch_ctx *f = s->work;

	if (f->vanished) {
		struct fetch_job *j = xcalloc(1, sizeof *j);
		j->s = s;
		j->f = f;
		j->mailbox_id = s->mbox_id;
		j->vanish_step = true;
		buf_init(&j->out, 1);
		server_job(s->srv, s->c, fetch_work, fetch_job_done, j);
		return;
	}
	if (f->pos >= f->n) {
		fetch_end(s);
		return;
	}
	size_t batch = f->need_data ? 16 : FETCH_BATCH;
	if (!f->need_db)
		batch = 4096;
	struct fetch_job *j = xcalloc(1, sizeof *j);
	j->s = s;
	j->f = f;
	j->mailbox_id = s->mbox_id;
	j->readonly = s->readonly;
	j->m = xreallocarray(NULL, batch, sizeof *j->m);
	buf_init(&j->out, SIZE_MAX / 2);
	while (f->pos < f->n && j->n < batch) {
		uint32_t i = f->idx[f->pos++];
		struct fetch_msg *fm = &j->m[j->n++];
		fm->seq = i + 1;
		fm->st = s->msgs[i];
		fm->st.keywords = s->msgs[i].keywords ? xstrdup(s->msgs[i].keywords) : NULL;
		fm->seen_now = false;
	}
	s->n_fetch += j->n;
	if (!f->need_db) {
		/* Flags, UIDs and MODSEQs are in memory: render here. */
		for (size_t i = 0; i < j->n; i++)
			fetch_render(f, &j->m[i], NULL, NULL, 0, NULL, j->readonly, &j->out,
				     &j->unknown_cte);
		fetch_job_done(j);
		return;
	}
	server_job(s->srv, s->c, fetch_work, fetch_job_done, j);
}

static int fetch_add_item(struct fetch_ctx *f, const struct imap_arg *a, const char **err)
{
	struct fetch_item it;
	memset(&it, 0, sizeof it);
	if (a->type != IMAP_ARG_ATOM) {
		*err = "Invalid FETCH item";
		return -1;
	}
	static const struct { const char *name; enum fetch_kind kind; } simple[] = {
		{"UID", FI_UID}, {"FLAGS", FI_FLAGS}, {"INTERNALDATE", FI_INTERNALDATE},
		{"RFC822.SIZE", FI_SIZE}, {"ENVELOPE", FI_ENVELOPE}, {"BODY", FI_BODY},
		{"BODYSTRUCTURE", FI_BODYSTRUCTURE}, {"MODSEQ", FI_MODSEQ}, {"RFC822", FI_RFC822},
		{"RFC822.HEADER", FI_RFC822_HEADER}, {"RFC822.TEXT", FI_RFC822_TEXT},
	};
	bool found = false;
	if (!a->has_section) {
		for (size_t k = 0; k < ARRAY_LEN(simple); k++)
			if (imap_arg_atom_eq(a, simple[k].name)) {
				it.kind = simple[k].kind;
				found = true;
			}
		if (!found) {
			*err = "Unknown FETCH item";
			return -1;
		}
		const char *spec = it.kind == FI_RFC822 ? "BODY[]" :
				   it.kind == FI_RFC822_HEADER ? "BODY.PEEK[HEADER]" :
				   it.kind == FI_RFC822_TEXT ? "BODY[TEXT]" : NULL;
		if (spec && imap_fetch_section_parse(spec, strlen(spec), &it.sec, err) < 0)
			return -1;
	} else {
		it.kind = FI_SECTION;
		if (imap_fetch_section_parse(a->str, a->len, &it.sec, err) < 0)
			return -1;
	}
	switch (it.kind) {
	case FI_UID: f->has_uid = true; break;
	case FI_FLAGS: f->has_flags = true; break;
	case FI_MODSEQ: f->has_modseq = true; break;
	case FI_INTERNALDATE: case FI_SIZE: f->need_db = true; break;
	case FI_ENVELOPE:
		f->need_db = f->need_data = f->need_mime = true;
		break;
	case FI_BODY: case FI_BODYSTRUCTURE:
		f->need_db = f->need_data = f->need_mime = f->body_needed = true;
		break;
	default:
		f->need_db = f->need_data = f->need_mime = true;
		if (!it.sec.peek && it.sec.kind != IMAP_FETCH_BINARY_SIZE)
			f->set_seen = true;
		if (it.sec.kind != IMAP_FETCH_BODY || it.sec.nparts > 0 ||
		    (it.sec.spec != IMAP_SECTION_HEADER && it.sec.spec != IMAP_SECTION_HEADER_FIELDS &&
		     it.sec.spec != IMAP_SECTION_HEADER_FIELDS_NOT))
			f->body_needed = true;
		break;
	}
	/* The same item twice is sent once. */
	for (size_t k = 0; k < f->nitems; k++)
		if (f->items[k].kind == it.kind && it.kind != FI_SECTION)
			return 0;
	f->items = xreallocarray(f->items, f->nitems + 1, sizeof *f->items);
	f->items[f->nitems++] = it;
	return 0;
}

static void cmd_fetch(struct imap_session *s, const struct imap_command *cmd)
{
	struct imap_seqset set = {0};
	const char *err = "FETCH expects a sequence set and items";
	struct fetch_ctx *f = xcalloc(1, sizeof *f);

	f->utf8 = s->enabled & EN_UTF8;
	if (cmd->nargs < 2 || seqset_arg(&cmd->args[0], &set, &err) < 0)
		goto badargs;
	uint32_t i = cmd->args[0].end;
	const struct imap_arg *a = &cmd->args[i];
	if (a->type == IMAP_ARG_LIST) {
		if (a->nchildren == 0)
			goto badargs;
		for (uint32_t k = i + 1; k < a->end; k = cmd->args[k].end)
			if (fetch_add_item(f, &cmd->args[k], &err) < 0)
				goto badargs;
	} else if (imap_arg_atom_eq(a, "ALL") || imap_arg_atom_eq(a, "FAST") ||
		   imap_arg_atom_eq(a, "FULL")) {
		static const char *const all[] = {"FLAGS", "INTERNALDATE", "RFC822.SIZE",
						  "ENVELOPE", "BODY"};
		size_t nmacro = imap_arg_atom_eq(a, "FAST") ? 3 : imap_arg_atom_eq(a, "ALL") ? 4 : 5;
		for (size_t k = 0; k < nmacro; k++) {
			struct imap_arg fake = {.type = IMAP_ARG_ATOM, .str = all[k],
						.len = strlen(all[k])};
			(void)fetch_add_item(f, &fake, &err);
		}
	} else if (fetch_add_item(f, a, &err) < 0) {
		goto badargs;
	}
	i = a->end;
	if (i < cmd->nargs) {
		/* Modifiers: (CHANGEDSINCE n [VANISHED]) */
		const struct imap_arg *l = &cmd->args[i];
		if (l->type != IMAP_ARG_LIST || l->end != cmd->nargs)
			goto badargs;
		for (uint32_t k = i + 1; k < l->end; k = cmd->args[k].end) {
			if (imap_arg_atom_eq(&cmd->args[k], "CHANGEDSINCE") &&
			    cmd->args[k].end < l->end &&
			    imap_arg_number64(&cmd->args[cmd->args[k].end], &f->changedsince) == 0) {
				k = cmd->args[k].end;
			} else if (imap_arg_atom_eq(&cmd->args[k], "VANISHED")) {
				f->vanished = true;
			} else {
				err = "Unknown FETCH modifier";
				goto badargs;
			}
		}
		if (f->vanished && (!s->cmd_uid || !(s->enabled & EN_QRESYNC) ||
				    f->changedsince == 0)) {
			err = "VANISHED needs UID FETCH, ENABLE QRESYNC and CHANGEDSINCE";
			goto badargs;
		}
		if (f->changedsince) {
			s->condstore = true;
			f->has_modseq = true;
		}
	}
	if (s->cmd_uid && !f->has_uid) {
		struct fetch_item it = {.kind = FI_UID};
		f->items = xreallocarray(f->items, f->nitems + 1, sizeof *f->items);
		memmove(f->items + 1, f->items, f->nitems * sizeof *f->items);
		f->items[0] = it;
		f->nitems++;
		f->has_uid = true;
	}
	if (f->has_modseq)
		s->condstore = true;
	if (s->condstore && !f->has_modseq && f->changedsince == 0) {
		/* RFC 7162 3.2.4: once CONDSTORE is on, FETCH FLAGS carry MODSEQ. */
		if (f->has_flags) {
			struct fetch_item it = {.kind = FI_MODSEQ};
			f->items = xreallocarray(f->items, f->nitems + 1, sizeof *f->items);
			f->items[f->nitems++] = it;
			f->has_modseq = true;
		}
	} else if (f->changedsince && !f->has_modseq) {
		struct fetch_item it = {.kind = FI_MODSEQ};
		f->items = xreallocarray(f->items, f->nitems + 1, sizeof *f->items);
		f->items[f->nitems++] = it;
	}
	if (f->changedsince) {
		bool have = false;
		for (size_t k = 0; k < f->nitems; k++)
			have |= f->items[k].kind == FI_MODSEQ;
		if (!have) {
			struct fetch_item it = {.kind = FI_MODSEQ};
			f->items = xreallocarray(f->items, f->nitems + 1, sizeof *f->items);
			f->items[f->nitems++] = it;
		}
	}
	f->idx = resolve_set(s, &set, s->cmd_uid, &f->n);
	if (!s->cmd_uid) {
		/* RFC 3501: a message number past the end is an error. */
		for (size_t r = 0; r < set.count; r++) {
			uint32_t lo = set.ranges[r].lo, hi = set.ranges[r].hi;
			if ((lo != IMAP_SEQ_STAR && lo > s->nmsgs) ||
			    (hi != IMAP_SEQ_STAR && hi > s->nmsgs)) {
				err = "Invalid message sequence number";
				goto badargs;
			}
		}
	}
	if (f->changedsince) {
		size_t w = 0;
		for (size_t k = 0; k < f->n; k++)
			if (s->msgs[f->idx[k]].modseq > f->changedsince)
				f->idx[w++] = f->idx[k];
		f->n = w;
	}
	if (f->vanished)
		f->uidset = set;
	else
		imap_seqset_free(&set);
	s->work = f;
	s->work_free = fetch_ctx_free;
	fetch_next(s);
	return;
badargs:
	imap_seqset_free(&set);
	fetch_ctx_free(f);
	bad(s, err);
}

/* ---- STORE ------------------------------------------------------------------ */

struct store_cmd_op {
	struct store_op op;
	struct imap_session *s;
	int64_t mailbox_id;
	uint32_t *uids;
	size_t n;
	struct store_flag_change chg;
	char **kw;
	size_t nkw;
	bool silent;
	uint32_t *modified;
	size_t nmodified;
};

static int storecmd_apply(struct store_op *op, struct store_txn *t, char **error_r)
{
	struct store_cmd_op *u = op->arg;
	FREE(u->modified);
	return store_txn_store(t, u->mailbox_id, u->uids, u->n, &u->chg, &u->modified,
			       &u->nmodified, error_r);
}

static void storecmd_free(struct store_cmd_op *u)
{
	store_states_free(u->chg.changed, u->chg.nchanged);
	for (size_t i = 0; i < u->nkw; i++)
		free(u->kw[i]);
	free(u->kw);
	free(u->uids);
	free(u->modified);
	free(u->op.error);
	free(u);
}

static void storecmd_done(struct store_op *op)
{
	struct store_cmd_op *u = op->arg;
	struct imap_session *s = u->s;
	struct conn *c = s->c;
	const char *verb = s->cmd_uid ? "UID STORE" : "STORE";

	/* Our view was current when the change was made: apply it here and
	 * spare ourselves the re-read; everyone else is told. */
	bool self = op->status == 0 && !conn_is_closed(c) && s->state == ST_SELECTED &&
		    s->mbox_id == u->mailbox_id && u->chg.modseq_before == s->modseq;
	if (op->status == 0)
		server_mailbox_changed_by(s->srv, u->mailbox_id, self ? s : NULL);
	if (conn_is_closed(c)) {
		storecmd_free(u);
		conn_release(c);
		return;
	}
	if (op->status != 0) {
		bool limit = op->error && strstr(op->error, "keyword") != NULL;
		if (!limit)
			log_error("conn=%s imap: STORE failed user=%s mailbox=%s: %s", c->idstr,
				  s->login, s->mbox_name, op->error ? op->error : "?");
		char *text = xasprintf("NO [%s] %s", limit ? "LIMIT" : "SERVERBUG",
				       limit ? op->error : "STORE failed; nothing was changed");
		storecmd_free(u);
		conn_release(c);
		tagged(s, text);
		free(text);
		return;
	}
	if (u->silent) {
		FREE(s->quiet);
		s->quiet = u->uids;
		s->nquiet = u->n;
		u->uids = NULL;
	}
	char *code = NULL;
	if (u->nmodified > 0) {
		struct buf b;
		buf_init(&b, SIZE_MAX / 2);
		if (s->cmd_uid) {
			uidset_append(&b, u->modified, u->nmodified);
		} else {
			/* Message numbers of the UIDs. */
			uint32_t *seqs = xreallocarray(NULL, u->nmodified, sizeof *seqs);
			size_t k = 0;
			for (size_t i = 0; i < u->nmodified; i++) {
				bool found;
				size_t x = uid_index(s, u->modified[i], &found);
				if (found)
					seqs[k++] = (uint32_t)x + 1;
			}
			uidset_append(&b, seqs, k);
			free(seqs);
		}
		code = xasprintf("[MODIFIED %s] ", b.data ? b.data : "");
		buf_free(&b);
	}
	if (self) {
		struct buf b;
		buf_init(&b, SIZE_MAX / 2);
		for (size_t k = 0; k < u->chg.nchanged; k++) {
			struct msg_state *st = &u->chg.changed[k];
			bool found;
			size_t i = uid_index(s, st->uid, &found);
			if (!found)
				continue;
			struct msg_state *m = &s->msgs[i];
			m->flags = (m->flags & MSGF_RECENT) | (st->flags & MSGF_SYSTEM);
			free(m->keywords);
			m->keywords = st->keywords;
			st->keywords = NULL;
			m->modseq = st->modseq;
			if (st->modseq > s->modseq)
				s->modseq = st->modseq;
			if (!u->silent)
				fetch_flags_line(s, &b, i);
		}
		FREE(s->quiet);
		s->nquiet = 0;
		storecmd_free(u);
		conn_release(c);
		if (b.len)
			conn_write(c, b.data, b.len);
		buf_free(&b);
		finish(s, false, "OK %s%s completed", code ? code : "", verb);
		free(code);
		return;
	}
	storecmd_free(u);
	conn_release(c);
	s->dirty = true;
	finish(s, true, "OK %s%s completed", code ? code : "", verb);
	free(code);
}

static void cmd_store(struct imap_session *s, const struct imap_command *cmd)
{
	struct imap_seqset set = {0};
	const char *err = "STORE expects a sequence set, an item and flags";
	struct store_cmd_op *u = xcalloc(1, sizeof *u);

	if (s->readonly) {
		free(u);
		tagged(s, "NO [READ-ONLY] The mailbox is read-only (EXAMINE)");
		return;
	}
	if (cmd->nargs < 3 || seqset_arg(&cmd->args[0], &set, &err) < 0)
		goto badargs;
	uint32_t i = cmd->args[0].end;
	if (cmd->args[i].type == IMAP_ARG_LIST) {
		/* (UNCHANGEDSINCE n) */
		const struct imap_arg *l = &cmd->args[i];
		if (l->nchildren != 2 || !imap_arg_atom_eq(&cmd->args[i + 1], "UNCHANGEDSINCE") ||
		    imap_arg_number64(&cmd->args[i + 2], &u->chg.unchangedsince) < 0) {
			err = "Unknown STORE modifier";
			goto badargs;
		}
		u->chg.conditional = true;
		s->condstore = true;
		i = l->end;
	}
	if (i >= cmd->nargs || cmd->args[i].type != IMAP_ARG_ATOM)
		goto badargs;
	const char *item = cmd->args[i].str;
	if (item[0] == '+') {
		u->chg.mode = STORE_FLAGS_ADD;
		item++;
	} else if (item[0] == '-') {
		u->chg.mode = STORE_FLAGS_REMOVE;
		item++;
	} else {
		u->chg.mode = STORE_FLAGS_SET;
	}
	if (str_ieq(item, "FLAGS.SILENT"))
		u->silent = true;
	else if (!str_ieq(item, "FLAGS"))
		goto badargs;
	i = cmd->args[i].end;
	if (i >= cmd->nargs)
		goto badargs;
	uint32_t first = i, end = cmd->nargs;
	if (cmd->args[i].type == IMAP_ARG_LIST) {
		first = i + 1;
		end = cmd->args[i].end;
		if (end != cmd->nargs)
			goto badargs;
	}
	for (uint32_t k = first; k < end; k = cmd->args[k].end) {
		const struct imap_arg *a = &cmd->args[k];
		uint32_t bit;
		bool is_kw;
		if (a->type != IMAP_ARG_ATOM || flag_parse(a->str, a->len, &bit, &is_kw) < 0) {
			err = "Invalid flag";
			goto badargs;
		}
		if (is_kw) {
			if (u->nkw >= STORE_KEYWORDS_MAX) {
				err = "Too many keywords";
				goto badargs;
			}
			u->kw = xreallocarray(u->kw, u->nkw + 1, sizeof *u->kw);
			u->kw[u->nkw++] = xstrndup(a->str, a->len);
		} else {
			u->chg.flags |= bit;
		}
	}
	u->chg.keywords = (const char *const *)u->kw;
	u->chg.nkeywords = u->nkw;
	size_t n;
	uint32_t *idx = resolve_set(s, &set, s->cmd_uid, &n);
	imap_seqset_free(&set);
	u->uids = xreallocarray(NULL, n ? n : 1, sizeof *u->uids);
	for (size_t k = 0; k < n; k++)
		u->uids[k] = s->msgs[idx[k]].uid;
	u->n = n;
	free(idx);
	u->s = s;
	u->mailbox_id = s->mbox_id;
	u->op.apply = storecmd_apply;
	u->op.done = storecmd_done;
	u->op.arg = u;
	if (n == 0) {
		storecmd_free(u);
		finish(s, false, "OK %s completed", s->cmd_uid ? "UID STORE" : "STORE");
		return;
	}
	submit_op(s, &u->op);
	return;
badargs:
	imap_seqset_free(&set);
	storecmd_free(u);
	bad(s, err);
}

/* ---- COPY / MOVE ----------------------------------------------------------- */

struct copy_job {
	struct imap_session *s;
	char *name;
	bool move;
	uint32_t *uids;
	size_t n;
	int64_t dst;
	bool noselect;
	uint32_t dst_uidvalidity;
	int rc;
};

/* ---- QUOTA (RFC 9208): one root, "", per account, STORAGE in KiB -------------- */

struct quota_job {
	struct imap_session *s;
	char *mailbox;          /* GETQUOTAROOT */
	bool root_query;
	int64_t quota, used;
	int rc;
};

static void quota_work(void *arg)
{
	struct quota_job *j = arg;
	j->rc = store_account_quota(j->s->srv->store, j->s->account_id, &j->quota, &j->used);
}

static void quota_done(void *arg)
{
	struct quota_job *j = arg;
	struct imap_session *s = j->s;

	if (!conn_is_closed(s->c)) {
		struct buf b;
		buf_init(&b, 8192);
		if (j->rc < 0) {
			tagged(s, "NO [UNAVAILABLE] Cannot read the quota now, try again later");
		} else if (!j->root_query && j->quota <= 0) {
			tagged(s, "NO [NONEXISTENT] No such quota root (no limit is set)");
		} else {
			if (j->root_query) {
				buf_append_str(&b, "* QUOTAROOT ");
				mailbox_out(s, &b, j->mailbox);
				if (j->quota > 0)
					buf_append_str(&b, " \"\"");
				buf_append_str(&b, "\r\n");
			}
			if (j->quota > 0)
				buf_printf(&b, "* QUOTA \"\" (STORAGE %lld %lld)\r\n",
					   (long long)((j->used + 1023) / 1024),
					   (long long)(j->quota / 1024));
			conn_write(s->c, b.data, b.len);
			finish(s, false, "OK %s completed", j->root_query ? "GETQUOTAROOT" :
			       "GETQUOTA");
		}
		buf_free(&b);
	}
	free(j->mailbox);
	free(j);
}

static void cmd_getquota(struct imap_session *s, const struct imap_command *cmd)
{
	const char *err = "Expected a quota root or a mailbox";
	struct quota_job *j = xcalloc(1, sizeof *j);
	const char *str;
	size_t len;

	j->s = s;
	j->root_query = strcmp(cmd->name, "GETQUOTAROOT") == 0;
	if (cmd->nargs != 1) {
		free(j);
		bad(s, err);
		return;
	}
	if (j->root_query) {
		j->mailbox = mailbox_in(s, &cmd->args[0], &err);
		if (!j->mailbox) {
			free(j);
			bad(s, err);
			return;
		}
	} else if (imap_arg_astring(&cmd->args[0], &str, &len) < 0 || len != 0) {
		free(j);
		tagged(s, "NO [NONEXISTENT] No such quota root (the only one is \"\")");
		return;
	}
	server_job(s->srv, s->c, quota_work, quota_done, j);
}

static void cmd_setquota(struct imap_session *s, const struct imap_command *cmd)
{
	(void)cmd;
	tagged(s, "NO [NOPERM] Quotas are set by the administrator (yubin user quota)");
}

static void copy_work(void *arg)
{
	struct copy_job *j = arg;
	struct mailbox_info mb;
	j->rc = store_mailbox_id(j->s->srv->store, j->s->account_id, j->name, &j->dst,
				 &j->noselect);
	if (j->rc == 1 && store_mailbox_get(j->s->srv->store, j->dst, &mb) == 1) {
		j->dst_uidvalidity = mb.uidvalidity;
		mailbox_info_free(&mb);
	}
	int64_t quota, used;
	if (j->rc == 1 && !j->move &&
	    store_account_quota(j->s->srv->store, j->s->account_id, &quota, &used) == 1 &&
	    quota > 0) {
		struct msg_entry *e = xreallocarray(NULL, j->n, sizeof *e);
		int64_t add = 0;
		if (store_messages_get(j->s->srv->store, j->s->mbox_id, j->uids, j->n, e) == 0)
			for (size_t i = 0; i < j->n; i++)
				add += e[i].size;
		free(e);
		if (used + add > quota)
			j->rc = -2;
	}
}

static void copy_done(void *arg)
{
	struct copy_job *j = arg;
	struct imap_session *s = j->s;

	if (conn_is_closed(s->c)) {
		free(j->uids);
		free(j->name);
		free(j);
		return;
	}
	if (j->rc == -2) {
		tagged(s, "NO [OVERQUOTA] The copy would go over the storage quota");
	} else if (j->rc < 0) {
		tagged(s, "NO [UNAVAILABLE] Cannot open the mailbox now, try again later");
	} else if (j->rc == 0 || j->noselect) {
		tagged(s, "NO [TRYCREATE] No such mailbox");
	} else if (j->move && j->dst == s->mbox_id) {
		tagged(s, "NO [CANNOT] Cannot move into the same mailbox");
	} else {
		struct expunge_op *u = expunge_op_new(s);
		u->move = j->move;
		u->copy_only = !j->move;
		u->dst_mailbox = j->dst;
		u->dst_uidvalidity = j->dst_uidvalidity;
		u->uids = j->uids;
		u->n = j->n;
		u->dst_uids = xcalloc(j->n ? j->n : 1, sizeof *u->dst_uids);
		j->uids = NULL;
		submit_op(s, &u->op);
	}
	free(j->uids);
	free(j->name);
	free(j);
}

static void cmd_copy(struct imap_session *s, const struct imap_command *cmd)
{
	struct imap_seqset set = {0};
	const char *err = "Expected a sequence set and a mailbox";
	bool move = strcmp(cmd->name, "MOVE") == 0;

	if (move && s->readonly) {
		tagged(s, "NO [READ-ONLY] The mailbox is read-only (EXAMINE)");
		return;
	}
	if (cmd->nargs != 2 || seqset_arg(&cmd->args[0], &set, &err) < 0) {
		imap_seqset_free(&set);
		bad(s, err);
		return;
	}
	char *name = mailbox_in(s, &cmd->args[1], &err);
	if (!name) {
		imap_seqset_free(&set);
		bad(s, err);
		return;
	}
	size_t n;
	uint32_t *idx = resolve_set(s, &set, s->cmd_uid, &n);
	imap_seqset_free(&set);
	if (n == 0) {
		free(idx);
		free(name);
		finish(s, false, "OK %s completed (no messages)", move ? "MOVE" : "COPY");
		return;
	}
	struct copy_job *j = xcalloc(1, sizeof *j);
	j->s = s;
	j->name = name;
	j->move = move;
	j->uids = xreallocarray(NULL, n, sizeof *j->uids);
	for (size_t k = 0; k < n; k++)
		j->uids[k] = s->msgs[idx[k]].uid;
	j->n = n;
	free(idx);
	server_job(s->srv, s->c, copy_work, copy_done, j);
}

/* ---- SEARCH / SORT -------------------------------------------------------- */

enum { RET_MIN = 1, RET_MAX = 2, RET_COUNT = 4, RET_ALL = 8 };

struct search_msg {
	uint32_t seq, uid, flags;
	uint64_t modseq;
	char *keywords;
};

struct search_job {
	struct imap_session *s;
	struct imap_search *prog;
	struct imap_sort *sort;
	bool thread;
	enum imap_thread_alg alg;
	struct imap_thread_msg *tm;
	size_t ntm;
	struct buf thread_out;
	int64_t mailbox_id;
	struct search_msg *m;
	size_t n;
	uint32_t max_seq, max_uid;
	bool uid;
	bool esearch;
	unsigned ret;
	uint32_t *hits;             /* seq or uid numbers, in result order */
	size_t nhits;
	uint64_t maxmodseq;
	int err;
};

/* Keep only the messages whose UID is in cand (both ascending). */
static void search_filter(struct search_job *j, const uint32_t *cand, size_t nc)
{
	size_t w = 0, c = 0;
	for (size_t i = 0; i < j->n; i++) {
		while (c < nc && cand[c] < j->m[i].uid)
			c++;
		if (c < nc && cand[c] == j->m[i].uid) {
			j->m[w++] = j->m[i];
			continue;
		}
		free(j->m[i].keywords);
	}
	j->n = w;
}

/* Size, date and path of every message left (worker). */
static struct msg_entry *search_meta(struct search_job *j, struct store *st)
{
	struct msg_entry *ents = xreallocarray(NULL, j->n ? j->n : 1, sizeof *ents);

	if (j->n > 2000) {
		/* Many: one scan of the mailbox beats a lookup each. */
		struct msg_entry *all;
		size_t nall, a = 0;
		if (store_mailbox_messages(st, j->mailbox_id, &all, &nall) < 0) {
			free(ents);
			return NULL;
		}
		for (size_t i = 0; i < j->n; i++) {
			while (a < nall && all[a].uid < j->m[i].uid)
				a++;
			if (a < nall && all[a].uid == j->m[i].uid)
				ents[i] = all[a];
			else
				memset(&ents[i], 0, sizeof ents[i]);
		}
		free(all);
		return ents;
	}
	uint32_t *uids = xreallocarray(NULL, j->n ? j->n : 1, sizeof *uids);
	for (size_t i = 0; i < j->n; i++)
		uids[i] = j->m[i].uid;
	int r = j->n ? store_messages_get(st, j->mailbox_id, uids, j->n, ents) : 0;
	free(uids);
	if (r < 0) {
		free(ents);
		return NULL;
	}
	return ents;
}

static void search_work(void *arg)
{
	struct search_job *j = arg;
	struct store *st = j->s->srv->store;
	unsigned needs = imap_search_needs(j->prog);
	bool need_data = (needs & (IMAP_SEARCH_NEED_HEADER | IMAP_SEARCH_NEED_BODY)) || j->sort ||
			 j->thread;
	bool need_meta = need_data || (needs & IMAP_SEARCH_NEED_META);
	struct imap_search_ctx ctx = {.max_seq = j->max_seq, .max_uid = j->max_uid};
	struct msg_entry *ents = NULL;
	struct imap_sort_key **keys = NULL;
	size_t nkeys = 0;

	/* Text every match must contain: the full-text index names the only
	 * messages worth reading. */
	const char **terms = NULL;
	size_t nterms = imap_search_body_terms(j->prog, &terms);
	if (nterms > 0 && j->n > 0) {
		uint32_t *cand;
		size_t nc;
		int r = store_search_candidates(st, j->mailbox_id, terms, nterms, &cand, &nc);
		if (r < 0) {
			j->err = -1;
			return;
		}
		if (r == 1) {
			search_filter(j, cand, nc);
			free(cand);
		}
	}
	if (need_meta && j->n > 0) {
		ents = search_meta(j, st);
		if (!ents) {
			j->err = -1;
			return;
		}
	}
	j->hits = xreallocarray(NULL, j->n ? j->n : 1, sizeof *j->hits);
	if (j->sort)
		keys = xreallocarray(NULL, j->n ? j->n : 1, sizeof *keys);
	if (j->thread)
		j->tm = xreallocarray(NULL, j->n ? j->n : 1, sizeof *j->tm);
	for (size_t i = 0; i < j->n && !j->err; i++) {
		const struct msg_entry *e = ents ? &ents[i] : NULL;
		struct imap_search_msg sm = {
			.seq = j->m[i].seq, .uid = j->m[i].uid, .flags = j->m[i].flags,
			.keywords = j->m[i].keywords, .modseq = j->m[i].modseq,
		};
		char *data = NULL;
		size_t len = 0;
		struct mime_message *mime = NULL;
		if (e && e->uid == 0)
			continue;
		if (e) {
			sm.size = e->size;
			sm.internaldate = e->internaldate;
		}
		if (need_data) {
			char path[PATH_MAX];
			store_msg_path(st, e->path, path, sizeof path);
			int64_t cap = e->size > (int64_t)SEARCH_SCAN_MAX ? (int64_t)SEARCH_SCAN_MAX :
				      e->size;
			if (read_file(path, cap, &data, &len) < 0) {
				log_error("imap: SEARCH cannot read message file %s: %s", path,
					  strerror(errno));
				continue;
			}
			mime = mime_parse(data, len, NULL);
			sm.data = data;
			sm.len = len;
			sm.mime = mime;
		}
		if (imap_search_match(j->prog, &ctx, &sm) == 1) {
			if (j->sort) {
				keys[nkeys++] = imap_sort_key_make(j->sort, &sm);
			} else if (j->thread) {
				imap_thread_msg_init(&j->tm[j->ntm++], &sm);
			} else {
				j->hits[j->nhits++] = j->uid ? sm.uid : sm.seq;
				if (sm.modseq > j->maxmodseq)
					j->maxmodseq = sm.modseq;
			}
		}
		mime_message_free(&mime);
		free(data);
	}
	if (j->sort) {
		imap_sort_run(j->sort, keys, nkeys);
		for (size_t i = 0; i < nkeys; i++) {
			j->hits[j->nhits++] = j->uid ? imap_sort_key_uid(keys[i]) :
					       imap_sort_key_seq(keys[i]);
			imap_sort_key_free(keys[i]);
		}
		free(keys);
	}
	if (j->thread && imap_thread_run(j->alg, j->tm, j->ntm, j->uid, &j->thread_out) < 0)
		j->err = -1;
	free(ents);
}

static void search_job_free(struct search_job *j)
{
	for (size_t i = 0; i < j->n; i++)
		free(j->m[i].keywords);
	free(j->m);
	free(j->hits);
	for (size_t i = 0; i < j->ntm; i++)
		imap_thread_msg_clear(&j->tm[i]);
	free(j->tm);
	buf_free(&j->thread_out);
	imap_search_free(&j->prog);
	imap_sort_free(&j->sort);
	free(j);
}

static void search_done(void *arg)
{
	struct search_job *j = arg;
	struct imap_session *s = j->s;

	if (conn_is_closed(s->c)) {
		search_job_free(j);
		return;
	}
	if (j->err) {
		search_job_free(j);
		tagged(s, "NO [SERVERBUG] Search failed; try again later");
		return;
	}
	struct buf b;
	buf_init(&b, SIZE_MAX / 2);
	bool modseq = imap_search_uses_modseq(j->prog) && j->nhits > 0;
	const char *verb = j->sort ? "SORT" : j->thread ? "THREAD" : "SEARCH";
	if (j->thread) {
		buf_append_str(&b, "* THREAD ");
		if (j->thread_out.len)
			buf_append(&b, j->thread_out.data, j->thread_out.len);
		buf_append_str(&b, "\r\n");
	} else if (j->esearch) {
		buf_printf(&b, "* ESEARCH (TAG ");
		imap_write_string(&b, s->tag, strlen(s->tag));
		buf_append_str(&b, ")");
		if (j->uid)
			buf_append_str(&b, " UID");
		if (j->nhits > 0) {
			uint32_t mn = j->hits[0], mx = j->hits[0];
			for (size_t i = 0; i < j->nhits; i++) {
				if (j->hits[i] < mn)
					mn = j->hits[i];
				if (j->hits[i] > mx)
					mx = j->hits[i];
			}
			if (j->ret & RET_MIN)
				buf_printf(&b, " MIN %" PRIu32, mn);
			if (j->ret & RET_MAX)
				buf_printf(&b, " MAX %" PRIu32, mx);
		}
		if (j->ret & RET_COUNT)
			buf_printf(&b, " COUNT %zu", j->nhits);
		if ((j->ret & RET_ALL) && j->nhits > 0) {
			buf_append_str(&b, " ALL ");
			uidset_append(&b, j->hits, j->nhits);
		}
		if (modseq)
			buf_printf(&b, " MODSEQ %" PRIu64, j->maxmodseq);
		buf_append_str(&b, "\r\n");
	} else {
		buf_printf(&b, "* %s", verb);
		for (size_t i = 0; i < j->nhits; i++)
			buf_printf(&b, " %" PRIu32, j->hits[i]);
		if (modseq)
			buf_printf(&b, " (MODSEQ %" PRIu64 ")", j->maxmodseq);
		buf_append_str(&b, "\r\n");
	}
	free(s->final);
	s->final = xasprintf("OK %s%s completed", j->uid ? "UID " : "", verb);
	search_job_free(j);
	size_t len;
	char *data = buf_steal(&b, &len);
	buf_free(&b);
	stream_start(s, data, len, finish_final);
}

static void cmd_search(struct imap_session *s, const struct imap_command *cmd)
{
	const char *err = "Invalid SEARCH arguments";
	const char *charset = NULL;
	char *cs = NULL;
	bool is_sort = strcmp(cmd->name, "SORT") == 0;
	bool is_thread = strcmp(cmd->name, "THREAD") == 0;
	struct search_job *j = xcalloc(1, sizeof *j);
	uint32_t i = 0;

	j->s = s;
	j->uid = s->cmd_uid;
	buf_init(&j->thread_out, 64u * 1024 * 1024);
	if (is_thread) {
		if (i >= cmd->nargs || imap_thread_alg_parse(&cmd->args[i], &j->alg) < 0) {
			err = "THREAD expects ORDEREDSUBJECT or REFERENCES";
			goto badargs;
		}
		j->thread = true;
		i = cmd->args[i].end;
		is_sort = true; /* a charset follows, as for SORT */
	}
	if (!is_sort && !is_thread && i < cmd->nargs &&
	    imap_arg_atom_eq(&cmd->args[i], "RETURN")) {
		/* RFC 4731 ESEARCH */
		if (i + 1 >= cmd->nargs || cmd->args[i + 1].type != IMAP_ARG_LIST)
			goto badargs;
		const struct imap_arg *l = &cmd->args[i + 1];
		j->esearch = true;
		for (uint32_t k = i + 2; k < l->end; k = cmd->args[k].end) {
			if (imap_arg_atom_eq(&cmd->args[k], "MIN"))
				j->ret |= RET_MIN;
			else if (imap_arg_atom_eq(&cmd->args[k], "MAX"))
				j->ret |= RET_MAX;
			else if (imap_arg_atom_eq(&cmd->args[k], "COUNT"))
				j->ret |= RET_COUNT;
			else if (imap_arg_atom_eq(&cmd->args[k], "ALL"))
				j->ret |= RET_ALL;
			else {
				err = "Unknown SEARCH return option";
				goto badargs;
			}
		}
		if (j->ret == 0)
			j->ret = RET_ALL;
		i = l->end;
	} else if (!is_sort && !is_thread && (s->enabled & EN_REV2)) {
		j->esearch = true;
		j->ret = RET_ALL;
	}
	if (is_sort) {
		if (!j->thread) {
			if (i >= cmd->nargs || imap_sort_parse(cmd->args, i, &j->sort, &err) < 0)
				goto badargs;
			i = cmd->args[i].end;
		}
		/* SORT always names a charset. */
		const char *str;
		size_t len;
		if (i >= cmd->nargs || imap_arg_astring(&cmd->args[i], &str, &len) < 0)
			goto badargs;
		cs = xstrndup(str, len);
		charset = cs;
		i = cmd->args[i].end;
	} else if (i < cmd->nargs && imap_arg_atom_eq(&cmd->args[i], "CHARSET")) {
		const char *str;
		size_t len;
		i = cmd->args[i].end;
		if (i >= cmd->nargs || imap_arg_astring(&cmd->args[i], &str, &len) < 0)
			goto badargs;
		cs = xstrndup(str, len);
		charset = cs;
		i = cmd->args[i].end;
	}
	if (i >= cmd->nargs)
		goto badargs;
	bool badcharset = false;
	if (imap_search_compile(cmd->args, i, cmd->nargs, charset, &j->prog, &badcharset,
				&err) < 0) {
		free(cs);
		search_job_free(j);
		if (badcharset)
			tagged(s, "NO [BADCHARSET (UTF-8 US-ASCII ISO-2022-JP SHIFT_JIS EUC-JP "
				  "ISO-8859-1)] Unknown charset");
		else
			bad(s, err);
		return;
	}
	free(cs);
	cs = NULL;
	if (imap_search_uses_modseq(j->prog))
		s->condstore = true;
	j->mailbox_id = s->mbox_id;
	j->n = s->nmsgs;
	j->max_seq = (uint32_t)s->nmsgs;
	j->max_uid = s->nmsgs ? s->msgs[s->nmsgs - 1].uid : 0;
	j->m = xreallocarray(NULL, s->nmsgs ? s->nmsgs : 1, sizeof *j->m);
	for (size_t k = 0; k < s->nmsgs; k++) {
		const struct msg_state *m = &s->msgs[k];
		uint32_t fl = m->flags & MSGF_SYSTEM;
		if (m->flags & MSGF_RECENT)
			fl |= IMAP_SEARCH_RECENT;
		j->m[k] = (struct search_msg){(uint32_t)k + 1, m->uid, fl, m->modseq,
					      m->keywords ? xstrdup(m->keywords) : NULL};
	}
	server_job(s->srv, s->c, search_work, search_done, j);
	return;
badargs:
	free(cs);
	search_job_free(j);
	bad(s, err);
}

/* ---- APPEND (and MULTIAPPEND, RFC 3502) --------------------------------------- */

#define APPEND_MULTI_MAX 10000  /* messages in one APPEND */

struct append_job;

struct append_msg {
	struct delivery d;
	char *keywords;
	struct append_job *j;
};

struct append_job {
	struct imap_session *s;
	char *name;
	int64_t mbox;
	bool noselect;
	uint32_t uidvalidity;
	int rc;
	struct append_msg *m;
	size_t n;
	size_t pending;         /* deliveries not done yet */
	size_t failed;
	uint64_t bytes;
};

static void append_job_free(struct append_job *j)
{
	for (size_t i = 0; i < j->n; i++) {
		free(j->m[i].keywords);
		free(j->m[i].d.error);
		free(j->m[i].d.uids);
	}
	free(j->m);
	free(j->name);
	free(j);
}

/* MULTIAPPEND is all or nothing: when one message failed, the ones stored
 * are expunged again before the NO. */
static void append_undo_done(struct store_op *op)
{
	struct expunge_op *u = op->arg;
	struct imap_session *s = u->s;
	struct conn *c = s->c;

	if (op->status == 0)
		server_mailbox_changed(s->srv, u->mailbox_id);
	else
		log_error("conn=%s imap: could not take back a partly failed APPEND user=%s: %s",
			  c->idstr, s->login ? s->login : "-", op->error ? op->error : "?");
	expunge_op_free(u);
	if (!conn_is_closed(c))
		tagged(s, "NO [SERVERBUG] The messages could not be stored; try again later");
	conn_release(c);
}

static void append_all_done(struct append_job *j)
{
	struct imap_session *s = j->s;
	struct conn *c = s->c;

	if (j->failed == 0) {
		/* Into the selected mailbox, and nobody else changed it meanwhile:
		 * the session adds the messages to its view itself. */
		bool self = !conn_is_closed(c) && s->state == ST_SELECTED && s->mbox_id == j->mbox;
		uint64_t expect = s->modseq;
		uint32_t last = s->nmsgs ? s->msgs[s->nmsgs - 1].uid : 0;
		for (size_t i = 0; i < j->n && self; i++) {
			const struct delivery *d = &j->m[i].d;
			if (!d->uids || d->modseq_before != expect || d->uids[0] <= last)
				self = false;
			else {
				expect = d->modseq_before + 1;
				last = d->uids[0];
			}
		}
		server_mailbox_changed_by(s->srv, j->mbox, self ? s : NULL);
		if (self) {
			uint32_t first = s->readonly ? UINT32_MAX :
					 server_recent_claim(s->srv, s->mbox_id, last + 1);
			for (size_t i = 0; i < j->n; i++) {
				const struct append_msg *am = &j->m[i];
				if (s->nmsgs == s->capmsgs) {
					s->capmsgs = s->capmsgs ? s->capmsgs * 2 : 64;
					s->msgs = xreallocarray(s->msgs, s->capmsgs, sizeof *s->msgs);
				}
				uint32_t fl = am->d.flags & MSGF_SYSTEM;
				if (am->d.uids[0] >= first) {
					fl |= MSGF_RECENT;
					s->nrecent++;
				}
				s->msgs[s->nmsgs++] = (struct msg_state){am->d.uids[0], fl,
					am->d.modseq_before + 1, am->keywords ? xstrdup(am->keywords) : NULL};
			}
			s->modseq = expect;
			s->uidnext = last + 1;
			outf(s, "* %zu EXISTS\r\n", s->nmsgs);
			if (!(s->enabled & EN_REV2))
				outf(s, "* %" PRIu32 " RECENT\r\n", s->nrecent);
		}
		if (!conn_is_closed(c)) {
			uint32_t *uids = xreallocarray(NULL, j->n, sizeof *uids);
			for (size_t i = 0; i < j->n; i++)
				uids[i] = j->m[i].d.uids ? j->m[i].d.uids[0] : 0;
			struct buf b;
			buf_init(&b, SIZE_MAX / 2);
			uidset_append(&b, uids, j->n);
			log_info("conn=%s imap: append user=%s mailbox=%s messages=%zu bytes=%" PRIu64
				 " uids=%s", c->idstr, s->login, j->name, j->n, j->bytes, b.data);
			finish(s, false, "OK [APPENDUID %" PRIu32 " %s] APPEND completed",
			       j->uidvalidity, b.data);
			buf_free(&b);
			free(uids);
		}
		append_job_free(j);
		conn_release(c);
		return;
	}
	struct expunge_op *u = expunge_op_new(s);
	u->mailbox_id = j->mbox;
	u->uids = xreallocarray(NULL, j->n, sizeof *u->uids);
	for (size_t i = 0; i < j->n; i++)
		if (j->m[i].d.status == 0 && j->m[i].d.uids)
			u->uids[u->n++] = j->m[i].d.uids[0];
	u->op.done = append_undo_done;
	append_job_free(j);
	if (u->n == 0 || conn_is_closed(c)) {
		if (u->n == 0) {
			expunge_op_free(u);
			if (!conn_is_closed(c))
				tagged(s, "NO [SERVERBUG] The message could not be stored; try again "
					  "later");
			conn_release(c);
			return;
		}
	}
	/* The hold taken for the deliveries carries over to the undo. */
	store_submit(s->srv->writer, &u->op);
}

static void append_delivered(struct delivery *d)
{
	struct append_msg *am = d->arg;
	struct append_job *j = am->j;
	struct imap_session *s = j->s;

	if (d->status == 0) {
		if (d->uids)
			server_recent_note(s->srv, j->mbox, d->uids[0]);
	} else {
		j->failed++;
		log_error("%s: imap append failed conn=%s user=%s: %s", d->qid, s->c->idstr,
			  s->login ? s->login : "-", d->error ? d->error : "?");
	}
	if (--j->pending == 0)
		append_all_done(j);
}

static void append_work(void *arg)
{
	struct append_job *j = arg;
	struct mailbox_info mb;

	j->rc = store_mailbox_id(j->s->srv->store, j->s->account_id, j->name, &j->mbox,
				 &j->noselect);
	if (j->rc == 1) {
		if (store_mailbox_get(j->s->srv->store, j->mbox, &mb) == 1) {
			j->uidvalidity = mb.uidvalidity;
			mailbox_info_free(&mb);
		} else {
			j->rc = -1;
		}
	}
	int64_t quota, used;
	if (j->rc == 1 && store_account_quota(j->s->srv->store, j->s->account_id, &quota,
					      &used) == 1 &&
	    quota > 0 && (uint64_t)used + j->bytes > (uint64_t)quota)
		j->rc = -2;
}

static void append_found(void *arg)
{
	struct append_job *j = arg;
	struct imap_session *s = j->s;

	if (conn_is_closed(s->c)) {
		append_job_free(j);
		return;
	}
	if (j->rc == -2) {
		log_info("conn=%s imap: APPEND refused user=%s: over quota", s->c->idstr, s->login);
		append_job_free(j);
		tagged(s, "NO [OVERQUOTA] The mailbox is over its storage quota");
		return;
	}
	if (j->rc < 0) {
		append_job_free(j);
		tagged(s, "NO [UNAVAILABLE] Cannot open the mailbox now, try again later");
		return;
	}
	if (j->rc == 0 || j->noselect) {
		append_job_free(j);
		tagged(s, "NO [TRYCREATE] No such mailbox");
		return;
	}
	/* Every message goes to the writer at once: one group commit. */
	j->pending = j->n;
	conn_hold(s->c);
	for (size_t i = 0; i < j->n; i++) {
		j->m[i].d.order_prev = i > 0 ? &j->m[i - 1].d : NULL;
		j->m[i].d.order_next = i + 1 < j->n ? &j->m[i + 1].d : NULL;
	}
	for (size_t i = 0; i < j->n; i++) {
		struct delivery *d = &j->m[i].d;
		d->mailbox_ids = &j->mbox;
		d->nmailboxes = 1;
		d->done = append_delivered;
		d->arg = &j->m[i];
		store_writer_new_qid(s->srv->writer, d);
		store_deliver(s->srv->writer, d);
	}
}

static void cmd_append(struct imap_session *s, const struct imap_command *cmd)
{
	const char *err = "APPEND expects a mailbox, optional flags and date, and a literal";
	struct append_job *j = xcalloc(1, sizeof *j);
	struct buf kw;
	uint32_t i;
	size_t cap = 0;

	buf_init(&kw, (size_t)STORE_KEYWORDS_MAX * (STORE_KEYWORD_LEN_MAX + 1) + 1);
	j->s = s;
	if (cmd->nargs < 2 || !(j->name = mailbox_in(s, &cmd->args[0], &err)))
		goto badargs;
	i = cmd->args[0].end;
	while (i < cmd->nargs) {
		if (j->n == APPEND_MULTI_MAX) {
			err = "Too many messages in one APPEND";
			goto badargs;
		}
		if (j->n == cap) {
			cap = cap ? cap * 2 : 4;
			j->m = xreallocarray(j->m, cap, sizeof *j->m);
		}
		struct append_msg *am = &j->m[j->n];
		memset(am, 0, sizeof *am);
		am->j = j;
		am->d.internaldate = now_unix();
		j->n++;
		buf_reset(&kw);
		if (cmd->args[i].type == IMAP_ARG_LIST) {
			size_t nkw = 0;
			for (uint32_t k = i + 1; k < cmd->args[i].end; k = cmd->args[k].end) {
				const struct imap_arg *a = &cmd->args[k];
				uint32_t bit;
				bool is_kw;
				if (a->type != IMAP_ARG_ATOM ||
				    flag_parse(a->str, a->len, &bit, &is_kw) < 0) {
					err = "Invalid flag";
					goto badargs;
				}
				if (!is_kw) {
					am->d.flags |= bit;
					continue;
				}
				if (store_keywords_has(kw.data, a->str, a->len))
					continue;
				if (++nkw > STORE_KEYWORDS_MAX || (kw.len && buf_append(&kw, " ", 1) < 0) ||
				    buf_append(&kw, a->str, a->len) < 0) {
					err = "Too many keywords";
					goto badargs;
				}
			}
			i = cmd->args[i].end;
		}
		if (i < cmd->nargs && cmd->args[i].type == IMAP_ARG_STRING) {
			if (imap_parse_date_time(cmd->args[i].str, cmd->args[i].len,
						 &am->d.internaldate) < 0) {
				err = "Invalid date-time";
				goto badargs;
			}
			i = cmd->args[i].end;
		}
		if (i >= cmd->nargs || cmd->args[i].type != IMAP_ARG_LITERAL)
			goto badargs;
		if (cmd->args[i].len == 0) {
			err = "Empty message";
			goto badargs;
		}
		if (cmd->args[i].len > (size_t)cfg(s)->message_size_limit) {
			append_job_free(j);
			buf_free(&kw);
			tagged(s, "NO [TOOBIG] Message too large (APPENDLIMIT)");
			return;
		}
		am->d.data = cmd->args[i].str;
		am->d.len = cmd->args[i].len;
		j->bytes += am->d.len;
		if (kw.len) {
			am->keywords = xstrndup(kw.data, kw.len);
			am->d.keywords = am->keywords;
		}
		i = cmd->args[i].end;
	}
	if (j->n == 0)
		goto badargs;
	buf_free(&kw);
	server_job(s->srv, s->c, append_work, append_found, j);
	return;
badargs:
	buf_free(&kw);
	append_job_free(j);
	bad(s, err);
}

/* ---- dispatch ------------------------------------------------------------- */

enum {
	CF_UID = 1 << 0,           /* may follow UID */
	CF_NOSYNC_EXPUNGE = 1 << 1,/* no EXPUNGE responses while it runs (non-UID form) */
};

struct imap_cmd_def {
	const char *name;
	void (*fn)(struct imap_session *s, const struct imap_command *cmd);
	unsigned states;
	unsigned flags;
};

static const struct imap_cmd_def commands[] = {
	{"CAPABILITY", cmd_capability, ST_ANY, 0},
	{"NOOP", cmd_noop, ST_ANY, 0},
	{"LOGOUT", cmd_logout, ST_ANY, 0},
	{"STARTTLS", cmd_starttls, ST_NOTAUTH, 0},
	{"LOGIN", cmd_login, ST_NOTAUTH, 0},
	{"AUTHENTICATE", cmd_authenticate, ST_NOTAUTH, 0},
	{"ENABLE", cmd_enable, ST_AUTH | ST_SELECTED, 0},
	{"ID", cmd_id, ST_ANY, 0},
	{"IDLE", cmd_idle, ST_AUTH | ST_SELECTED, 0},
	{"NAMESPACE", cmd_namespace, ST_AUTH | ST_SELECTED, 0},
	{"COMPRESS", cmd_compress, ST_AUTH | ST_SELECTED, 0},
	{"SELECT", cmd_select, ST_AUTH | ST_SELECTED, 0},
	{"EXAMINE", cmd_select, ST_AUTH | ST_SELECTED, 0},
	{"CREATE", cmd_create, ST_AUTH | ST_SELECTED, 0},
	{"DELETE", cmd_delete, ST_AUTH | ST_SELECTED, 0},
	{"RENAME", cmd_rename, ST_AUTH | ST_SELECTED, 0},
	{"SUBSCRIBE", cmd_subscribe, ST_AUTH | ST_SELECTED, 0},
	{"UNSUBSCRIBE", cmd_subscribe, ST_AUTH | ST_SELECTED, 0},
	{"LIST", cmd_list, ST_AUTH | ST_SELECTED, 0},
	{"LSUB", cmd_list, ST_AUTH | ST_SELECTED, 0},
	{"STATUS", cmd_status, ST_AUTH | ST_SELECTED, 0},
	{"APPEND", cmd_append, ST_AUTH | ST_SELECTED, 0},
	{"GETQUOTA", cmd_getquota, ST_AUTH | ST_SELECTED, 0},
	{"GETQUOTAROOT", cmd_getquota, ST_AUTH | ST_SELECTED, 0},
	{"SETQUOTA", cmd_setquota, ST_AUTH | ST_SELECTED, 0},
	{"CHECK", cmd_noop, ST_SELECTED, 0},
	{"CLOSE", cmd_close, ST_SELECTED, 0},
	{"UNSELECT", cmd_unselect, ST_SELECTED, 0},
	{"EXPUNGE", cmd_expunge, ST_SELECTED, CF_UID},
	{"SEARCH", cmd_search, ST_SELECTED, CF_UID | CF_NOSYNC_EXPUNGE},
	{"SORT", cmd_search, ST_SELECTED, CF_UID | CF_NOSYNC_EXPUNGE},
	{"THREAD", cmd_search, ST_SELECTED, CF_UID | CF_NOSYNC_EXPUNGE},
	{"FETCH", cmd_fetch, ST_SELECTED, CF_UID | CF_NOSYNC_EXPUNGE},
	{"STORE", cmd_store, ST_SELECTED, CF_UID | CF_NOSYNC_EXPUNGE},
	{"COPY", cmd_copy, ST_SELECTED, CF_UID},
	{"MOVE", cmd_copy, ST_SELECTED, CF_UID},
};

static const struct imap_cmd_def *find_command(const char *name)
{
	for (size_t i = 0; i < ARRAY_LEN(commands); i++)
		if (strcmp(commands[i].name, name) == 0)
			return &commands[i];
	return NULL;
}

static void run_command(struct imap_session *s, const struct imap_command *cmd)
{
	const struct imap_cmd_def *def;
	struct imap_command sub;

	snprintf(s->tag, sizeof s->tag, "%s", cmd->tag);
	s->busy = true;
	s->n_cmds++;
	conn_pause(s->c);
	s->cmd_uid = false;
	if (strcmp(cmd->name, "UID") == 0) {
		if (cmd->nargs < 1 || cmd->args[0].type != IMAP_ARG_ATOM) {
			bad(s, "UID expects a command");
			return;
		}
		char name[IMAP_NAME_MAX + 1];
		snprintf(name, sizeof name, "%s", cmd->args[0].str);
		for (char *p = name; *p; p++)
			if (*p >= 'a' && *p <= 'z')
				*p = (char)(*p - 'a' + 'A');
		def = find_command(name);
		if (!def || !(def->flags & CF_UID)) {
			bad(s, "Unknown UID command");
			return;
		}
		/* Shift the arguments: the sub-command's start at index 1.  The
		 * tree indexes are absolute, so keep the array and adjust. */
		sub = *cmd;
		sub.name = def->name;
		sub.args = cmd->args + 1;
		sub.nargs = cmd->nargs - 1;
		/* Rebase: every index in args[] (end, parent) points one further. */
		s->cmd_uid = true;
		if (!(def->states & s->state)) {
			bad(s, "Command not valid in this state");
			return;
		}
		s->cmd_allows_expunge = true;
		struct imap_arg *copy = xreallocarray(NULL, sub.nargs ? sub.nargs : 1, sizeof *copy);
		for (uint32_t i = 0; i < sub.nargs; i++) {
			copy[i] = sub.args[i];
			copy[i].end -= 1;
			if (copy[i].parent != IMAP_ARG_NO_PARENT)
				copy[i].parent -= 1;
		}
		sub.args = copy;
		def->fn(s, &sub);
		free(copy);
		return;
	}
	def = find_command(cmd->name);
	if (!def) {
		bad(s, "Unknown command");
		return;
	}
	if (!(def->states & s->state)) {
		if (s->state == ST_NOTAUTH)
			tagged(s, "NO Log in first");
		else if (def->states == ST_SELECTED)
			tagged(s, "NO No mailbox selected");
		else
			bad(s, "Command not valid in this state");
		return;
	}
	s->cmd_allows_expunge = !(def->flags & CF_NOSYNC_EXPUNGE);
	def->fn(s, cmd);
}

/* A plain line while in AUTHENTICATE or IDLE. */
static void on_plain_line(struct imap_session *s, char *line, size_t len)
{
	if (s->line_mode == LINE_SASL) {
		s->line_mode = LINE_NONE;
		s->busy = true;
		conn_pause(s->c);
		if (len == 1 && line[0] == '*') {
			tagged(s, "BAD AUTHENTICATE cancelled");
			return;
		}
		if (len > 2048) {
			bad(s, "SASL response too long");
			return;
		}
		sasl_plain(s, line);
		return;
	}
	/* IDLE: only DONE ends it. */
	if (len == 4 && str_nieq(line, "DONE", 4)) {
		s->line_mode = LINE_NONE;
		s->busy = true;
		conn_pause(s->c);
		if (s->syncing || s->stream) {
			s->idle_done = true;
			return;
		}
		finish(s, false, "OK IDLE terminated");
		return;
	}
	out(s, "* BAD Expected DONE\r\n");
	conn_flush(s->c);
}

static size_t imap_on_raw(struct conn *c, const char *data, size_t len)
{
	struct imap_session *s = c->proto;
	size_t used = 0;

	if (s->line_mode != LINE_NONE) {
		const char *lf = memchr(data, '\n', len);
		size_t cap = 8192;
		if (!lf) {
			if (len > cap) {
				/* A line that never ends. */
				out(s, "* BYE Line too long\r\n");
				conn_close(c, "line too long");
				return len;
			}
			return 0;
		}
		size_t n = (size_t)(lf - data);
		char *line = xstrndup(data, n > 0 && data[n - 1] == '\r' ? n - 1 : n);
		on_plain_line(s, line, strlen(line));
		auth_wipe(line, strlen(line) + 1);
		return n + 1;
	}
	while (used < len) {
		size_t consumed = 0;
		enum imap_parse_result r = imap_parser_feed(s->p, data + used, len - used, &consumed);
		used += consumed;
		if (r == IMAP_PARSE_MORE)
			return used;
		if (r == IMAP_PARSE_CONTINUE) {
			out(s, "+ Ready for literal data\r\n");
			conn_flush(c);
			if (conn_is_closed(c))
				return len;
			continue;
		}
		if (r == IMAP_PARSE_ERROR) {
			const char *tag = NULL;
			enum imap_parse_error kind;
			const char *text = imap_parser_error(s->p, &tag, &kind);
			snprintf(s->tag, sizeof s->tag, "%s", tag ? tag : "*");
			s->busy = true;
			conn_pause(c);
			if (kind == IMAP_ERR_LITERAL_TOO_LARGE && tag) {
				outf(s, "%s NO %s\r\n", s->tag, text);
				resume(s);
			} else {
				if (kind == IMAP_ERR_LINE_TOO_LONG)
					log_info("conn=%s imap: command line too long from [%s]",
						 c->idstr, c->peer);
				bad(s, text);
			}
			return used;
		}
		/* DONE */
		run_command(s, imap_parser_command(s->p));
		return used;
	}
	return used;
}

/* ---- connection callbacks ------------------------------------------------------ */

static void imap_on_open(struct conn *c)
{
	struct server *srv = c->server;
	struct imap_session *s = xcalloc(1, sizeof *s);
	struct imap_parser_limits lim;

	s->c = c;
	s->srv = srv;
	s->state = ST_NOTAUTH;
	c->proto = s;
	imap_parser_limits_default(&lim, false);
	s->p = imap_parser_new(&lim);
	conn_set_raw(c, true);
	conn_set_timeouts(c, (uint64_t)srv->cfg->imap_timeout, 0);
	log_info("conn=%s imap: connect from [%s]:%d", c->idstr, c->peer, c->peer_port);
	snprintf(s->ipkey, sizeof s->ipkey, "ip:%s", c->peer);
	int n = server_count_add(srv, s->ipkey, 1);
	s->ip_counted = true;
	if (n > srv->cfg->imap_max_sessions_per_ip) {
		log_info("conn=%s imap: too many sessions from [%s] (%d, imap_max_sessions_per_ip)",
			 c->idstr, c->peer, n - 1);
		out(s, "* BYE [UNAVAILABLE] Too many connections from your address\r\n");
		conn_close(c, "too many sessions from this address");
		return;
	}
	struct buf b;
	buf_init(&b, 4096);
	buf_append_str(&b, "* OK [CAPABILITY ");
	capability_list(s, &b);
	buf_append_str(&b, "] Yubin IMAP ready\r\n");
	conn_write(c, b.data, b.len);
	buf_free(&b);
}

static void imap_on_timeout(struct conn *c, enum conn_timeout which)
{
	struct imap_session *s = c->proto;
	(void)which;
	if (s->busy && !s->waiting_writable)
		return; /* store work in flight: its reply comes */
	out(s, "* BYE Autologout; idle for too long\r\n");
	conn_close(c, s->waiting_writable ? "timeout writing a reply" : "timeout");
}

static void imap_on_tls(struct conn *c, bool ok)
{
	struct imap_session *s = c->proto;
	if (!ok)
		return;
	s->errors = 0;
	s->line_mode = LINE_NONE;
	/* Anything the parser held is plaintext from before the handshake. */
	imap_parser_free(&s->p);
	struct imap_parser_limits lim;
	imap_parser_limits_default(&lim, false);
	s->p = imap_parser_new(&lim);
}

static void imap_on_shutdown(struct conn *c)
{
	struct imap_session *s = c->proto;

	if (s == NULL) {
		conn_close(c, "shutdown");
		return;
	}
	if (s->busy && !s->waiting_writable && s->line_mode == LINE_NONE) {
		s->shutdown_pending = true;
		return;
	}
	out(s, "* BYE Server shutting down\r\n");
	conn_close(c, "shutdown");
}

static void imap_on_writable(struct conn *c)
{
	struct imap_session *s = c->proto;

	if (s == NULL || !s->waiting_writable)
		return;
	s->waiting_writable = false;
	stream_continue(s);
}

static void imap_on_close(struct conn *c, const char *reason)
{
	struct imap_session *s = c->proto;

	if (s->watching)
		server_unwatch(s->srv, s->mbox_id, s);
	s->watching = false;
	if (s->user_counted)
		server_count_add(s->srv, s->userkey, -1);
	s->user_counted = false;
	if (s->ip_counted)
		server_count_add(s->srv, s->ipkey, -1);
	s->ip_counted = false;
	log_info("conn=%s imap: disconnect user=%s commands=%" PRIu64 " fetched=%" PRIu64
		 " bytes=%" PRIu64 " reason=%s", c->idstr, s->login ? s->login : "-", s->n_cmds,
		 s->n_fetch, s->bytes_out, reason);
}

static void imap_on_free(struct conn *c)
{
	struct imap_session *s = c->proto;

	if (s == NULL)
		return;
	selected_free(s);
	work_clear(s);
	imap_parser_free(&s->p);
	free(s->final);
	free(s->stream);
	free(s->login);
	free(s);
	c->proto = NULL;
}

const struct conn_handler imap_conn_handler = {
	.name = "imap",
	.on_open = imap_on_open,
	.on_raw = imap_on_raw,
	.on_timeout = imap_on_timeout,
	.on_tls = imap_on_tls,
	.on_shutdown = imap_on_shutdown,
	.on_writable = imap_on_writable,
	.on_close = imap_on_close,
	.on_free = imap_on_free,
};
