/* dsn.c - delivery status notifications (RFC 3464 multipart/report).
 *
 * The three parts are built in separate bounded buffers first (the human
 * part decides its charset by what it ends up holding), then joined under
 * the message header.  Caller strings go through clean() (control
 * characters and line ends never pass) and are written with fold(), which
 * breaks at blanks near 78 columns and, for a run without blanks, by force
 * before LINE_HARD octets, so no line of our making passes 998. */
#include "mail/dsn.h"
#include "mail/mutf7.h"

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/buf.h"
#include "core/util.h"
#include "mail/mime.h"
#include "mail/rfc2047.h"

#define FOLD_COL 78          /* header lines are folded at a blank past this */
#define WRAP_COL 72          /* human text is wrapped at a blank past this */
#define LINE_HARD 900        /* a run without blanks is broken before this */
#define DATE_MAX 40          /* rfc5322_date() output */
#define PART_MAX_PER_RCPT (128 * 1024) /* bound of one recipient's text, generous */
#define HEADER_ROOM (64 * 1024)        /* bound of the message header, generous */

/* ---- sanitising ---- */

enum clean_mode {
	CLEAN_ASCII, /* text: blanks collapsed, controls and non-ASCII become '?' */
	CLEAN_UTF8,  /* text: same, but well-formed UTF-8 is kept */
	CLEAN_EMBED, /* as given but blanks collapsed: controls (tab, CR, LF too)
		      * '?', non-ASCII \x{HHHH} (RFC 6533) */
	CLEAN_XTEXT, /* utf-8-addr-xtext: also ' ', '+', '=', '\' as \x{HH} */
};

/* Length of the well-formed UTF-8 sequence at s[0..avail) (s[0] >= 0x80)
 * and its code point in *cp; 0 when malformed (bad lead, truncated,
 * overlong, surrogate, beyond U+10FFFF). */
static size_t utf8_seq(const unsigned char *s, size_t avail, unsigned long *cp)
{
	size_t n = mutf7_utf8_char_len((const char *)s, avail);
	if (n < 2)
		return 0;
	unsigned long v = s[0] & (n == 2 ? 0x1Fu : n == 3 ? 0x0Fu : 0x07u);
	for (size_t k = 1; k < n; k++)
		v = (v << 6) | (s[k] & 0x3Fu);
	*cp = v;
	return n;
}

static bool has_8bit(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)s[i] >= 0x80)
			return true;
	return false;
}

/* Append a sanitised s[0..n) to dst, at most max bytes of it: cut before
 * the character that would pass max, "..." added then.  Blanks are collapsed
 * to one space and trimmed at both ends (except for CLEAN_XTEXT, which
 * escapes them), so fold() never makes a line of blanks only.  Returns -1
 * only when dst is full. */
static int clean(struct buf *dst, const char *s, size_t n, enum clean_mode m, size_t max)
{
	const unsigned char *u = (const unsigned char *)s;
	bool text = m == CLEAN_ASCII || m == CLEAN_UTF8;
	bool space = false, cut = false;
	size_t start = dst->len;

	for (size_t i = 0; i < n;) {
		unsigned c = u[i];
		char unit[16];
		size_t k = 1, ulen = 1;
		unit[0] = (char)c;
		if (c == ' ' ? m != CLEAN_XTEXT
			     : text && (c == '\t' || c == '\r' || c == '\n')) {
			space = dst->len > start;
			i++;
			continue;
		}
		if (c >= 0x80) {
			unsigned long cp = 0;
			k = utf8_seq(u + i, n - i, &cp);
			if (k == 0) {
				k = 1;
				unit[0] = '?';
			} else if (m == CLEAN_UTF8) {
				memcpy(unit, s + i, k);
				ulen = k;
			} else if (m == CLEAN_ASCII) {
				unit[0] = '?';
			} else {
				ulen = (size_t)snprintf(unit, sizeof unit, "\\x{%lX}", cp);
			}
		} else if (c < 0x20 || c == 0x7F) {
			unit[0] = '?';
		} else if (m == CLEAN_XTEXT && (c == ' ' || c == '+' || c == '=' || c == '\\')) {
			ulen = (size_t)snprintf(unit, sizeof unit, "\\x{%X}", c);
		}
		if (dst->len - start + space + ulen > max) {
			cut = true;
			break;
		}
		if (space && buf_append(dst, " ", 1) < 0)
			return -1;
		space = false;
		if (buf_append(dst, unit, ulen) < 0)
			return -1;
		i += k;
	}
	if (cut && buf_append(dst, "...", 3) < 0)
		return -1;
	return 0;
}

/* A fresh heap copy of s cleaned; *len_r its length. */
static char *clean_dup(const char *s, size_t n, enum clean_mode m, size_t max, size_t *len_r)
{
	struct buf b;
	buf_init(&b, max + 8);
	int r = clean(&b, s, n, m, max);
	assert(r == 0); /* max + "..." always fits */
	(void)r;
	return buf_steal(&b, len_r);
}

/* ---- writing ---- */

struct out {
	struct buf b;
	bool fail;
};

static void put(struct out *o, const char *s, size_t n)
{
	if (!o->fail && buf_append(&o->b, s, n) < 0)
		o->fail = true;
}

static void puts_(struct out *o, const char *s)
{
	put(o, s, strlen(s));
}

static bool is_cont(unsigned char c)
{
	return c >= 0x80 && c <= 0xBF;
}

/* Write s[0..n) (clean: no CR, LF or controls) starting at column col.
 * Header mode (indent NULL): folds before a blank once past width, the blank
 * starting the continuation line.  Text mode: breaks at a blank (which is
 * dropped) and starts the next line with indent.  A run without blanks is
 * broken before LINE_HARD at a character boundary (header mode: "\r\n "). */
static void fold(struct out *o, size_t col, const char *s, size_t n, size_t width,
		 const char *indent)
{
	size_t first = col; /* no break before anything was written on the line */
	const char *brk = indent ? indent : " ";
	size_t brklen = strlen(brk);

	for (size_t i = 0; i < n;) {
		size_t j = i;
		while (j < n && s[j] == ' ')
			j++;
		size_t k = j;
		while (k < n && s[k] != ' ')
			k++;
		if (j > i && k > j && col > first && col + (k - i) > width) {
			put(o, "\r\n", 2);
			if (indent != NULL) {
				put(o, indent, brklen);
				col = brklen;
				i = j;
			} else {
				col = 0;
			}
			first = col;
		}
		for (; i < k; i++) {
			if (col >= LINE_HARD && !is_cont((unsigned char)s[i])) {
				put(o, "\r\n", 2);
				put(o, brk, brklen);
				col = brklen;
			}
			put(o, s + i, 1);
			col++;
		}
	}
}

/* "Name: value" CR LF, value clean, folded. */
static void field(struct out *o, const char *name, const char *value, size_t n)
{
	puts_(o, name);
	put(o, ": ", 2);
	fold(o, strlen(name) + 2, value, n, FOLD_COL, NULL);
	put(o, "\r\n", 2);
}

/* "Name: " prefix value suffix CR LF, value cleaned with mode m. */
static void field_wrap(struct out *o, const char *name, const char *prefix, const char *value,
		       const char *suffix, enum clean_mode m, size_t max)
{
	size_t plen = strlen(prefix), slen = strlen(suffix), vlen;
	char *v = clean_dup(value, strlen(value), m, max, &vlen);
	char *all = xmalloc(plen + vlen + slen + 1);
	memcpy(all, prefix, plen);
	memcpy(all + plen, v, vlen);
	memcpy(all + plen + vlen, suffix, slen + 1);
	field(o, name, all, plen + vlen + slen);
	free(all);
	free(v);
}

static void field_clean(struct out *o, const char *name, const char *prefix, const char *value,
			enum clean_mode m, size_t max)
{
	field_wrap(o, name, prefix, value, "", m, max);
}

static void field_date(struct out *o, const char *name, int64_t t)
{
	char d[DATE_MAX];
	rfc5322_date(t, d, sizeof d);
	field(o, name, d, strlen(d));
}

/* One paragraph of the human part: wrapped text (continuation lines start
 * with indent), then an empty line. */
static void para(struct out *o, const char *s, size_t n, const char *indent)
{
	fold(o, 0, s, n, WRAP_COL, indent);
	put(o, "\r\n\r\n", 4);
}

/* ---- validation ---- */

static bool str_ok(const char *s)
{
	return s != NULL && s[0] != '\0' && strnlen(s, DSN_FIELD_MAX + 1) <= DSN_FIELD_MAX;
}

static bool digits(const char **p, int min, int max)
{
	int n = 0;
	while (**p >= '0' && **p <= '9') {
		(*p)++;
		n++;
	}
	return n >= min && n <= max;
}

/* status-code = class "." subject "." detail (RFC 3463). */
static bool status_ok(const char *s)
{
	if (!str_ok(s) || (s[0] != '2' && s[0] != '4' && s[0] != '5') || s[1] != '.')
		return false;
	s += 2;
	if (!digits(&s, 1, 3) || *s++ != '.')
		return false;
	return digits(&s, 1, 3) && *s == '\0';
}

static bool msgid_ok(const char *s)
{
	if (!str_ok(s))
		return false;
	size_t n = strlen(s);
	if (n < 3 || s[0] != '<' || s[n - 1] != '>')
		return false;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c <= ' ' || c == 0x7F || ((c == '<' || c == '>') && i != 0 && i != n - 1))
			return false;
	}
	return true;
}

/* RFC 2046 5.1.1: 1*70 bchars, the last not a space. */
static bool boundary_ok(const char *s)
{
	if (s == NULL)
		return false;
	size_t n = strnlen(s, DSN_BOUNDARY_MAX + 1);
	if (n == 0 || n > DSN_BOUNDARY_MAX || s[n - 1] == ' ')
		return false;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		bool alnum = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') ||
			     (c >= 'A' && c <= 'Z');
		if (!alnum && strchr("'()+_,-./:=? ", c) == NULL)
			return false;
	}
	return true;
}

/* ---- the parts ---- */

enum ret_kind {
	RET_NONE,      /* no original */
	RET_FULL,      /* whole message */
	RET_HDRS,      /* header block, as asked */
	RET_FALLBACK,  /* header block: the whole message was over return_max */
	RET_TRUNCATED, /* header block cut at return_max */
};

struct ret {
	enum ret_kind kind;
	size_t len; /* bytes of the original returned */
};

/* What of the original goes into part 3. */
static struct ret choose_return(const struct dsn_report *r)
{
	struct ret t = { RET_NONE, 0 };
	size_t max = r->return_max ? r->return_max : SIZE_MAX;

	if (r->original_len == 0)
		return t;
	if (r->return_full && r->original_len <= max) {
		t.kind = RET_FULL;
		t.len = r->original_len;
		return t;
	}
	/* The header fields, without the blank line; fit is the end of the
	 * last whole field within max. */
	size_t pos = 0, fit = 0;
	struct mime_field f;
	while (mime_header_next(r->original, r->original_len, &pos, &f))
		if (pos <= max)
			fit = pos;
	if (pos <= max) {
		t.kind = r->return_full ? RET_FALLBACK : RET_HDRS;
		t.len = pos;
		return t;
	}
	if (fit == 0) {
		/* Not even one field fits: the last line that does. */
		const char *p = r->original;
		for (size_t i = 0; i < max; i++)
			if (p[i] == '\n')
				fit = i + 1;
	}
	t.kind = RET_TRUNCATED;
	t.len = fit;
	return t;
}

static const char *action_name(enum dsn_action a)
{
	switch (a) {
	case DSN_FAILED:
		return "failed";
	case DSN_DELAYED:
		return "delayed";
	case DSN_DELIVERED:
		return "delivered";
	case DSN_RELAYED:
		return "relayed";
	case DSN_EXPANDED:
		return "expanded";
	}
	return NULL;
}

/* Plain words for the commonest status codes (RFC 3463 subject.detail). */
static const char *status_meaning(const char *status)
{
	static const struct {
		const char *code;
		const char *text;
	} t[] = {
		{ "1.1", "the address does not exist at the receiving end; check it for typing "
			 "mistakes" },
		{ "1.2", "the domain of the address (the part after the @) could not be found" },
		{ "1.10", "the domain of the address does not accept mail" },
		{ "2.1", "the recipient's mailbox is disabled" },
		{ "2.2", "the recipient's mailbox is full" },
		{ "2.3", "the message is larger than the recipient accepts" },
		{ "3.4", "the message is larger than the receiving system accepts" },
		{ "4.1", "the receiving mail server did not answer" },
		{ "4.4", "no mail server for the recipient's domain could be reached" },
		{ "4.7", "the message could not be delivered in the time allowed" },
		{ "7.1", "the receiving mail server refused the message by its rules" },
	};
	const char *sd = strchr(status, '.');
	if (sd == NULL)
		return NULL;
	sd++;
	for (size_t i = 0; i < ARRAY_LEN(t); i++)
		if (strcmp(sd, t[i].code) == 0)
			return t[i].text;
	return NULL;
}

static void put_date(struct buf *b, int64_t t)
{
	char d[DATE_MAX];
	rfc5322_date(t, d, sizeof d);
	buf_append_str(b, d);
}

/* The subject of the original, decoded and cleaned; NULL if none. */
static char *subject_text(const struct dsn_report *r, size_t *len_r)
{
	char raw[DSN_SUBJECT_MAX * 8];
	const char *s = r->orig_subject;
	if (s == NULL) {
		if (r->original_len == 0 ||
		    !dsn_header_value(r->original, r->original_len, "Subject", raw, sizeof raw))
			return NULL;
		s = raw;
	}
	size_t n = strnlen(s, sizeof raw - 1);
	struct buf dec;
	buf_init(&dec, sizeof raw * 2);
	(void)rfc2047_decode(s, n, &dec); /* a prefix is fine */
	char *t = clean_dup(dec.data ? dec.data : "", dec.len, CLEAN_UTF8, DSN_SUBJECT_MAX,
			    len_r);
	buf_free(&dec);
	if (*len_r == 0) {
		free(t);
		return NULL;
	}
	return t;
}

/* Part 1, for a person: what happened, to whom, and what comes next. */
static void human_part(const struct dsn_report *r, const struct ret *ret, const char *host,
		       struct out *o)
{
	bool failed = false, delayed = false, ok = false;
	int64_t until = 0;
	for (size_t i = 0; i < r->nrcpts; i++) {
		const struct dsn_rcpt *rc = &r->rcpts[i];
		if (rc->action == DSN_FAILED)
			failed = true;
		else if (rc->action == DSN_DELAYED)
			delayed = true;
		else
			ok = true;
		if (rc->action == DSN_DELAYED && rc->will_retry_until > until)
			until = rc->will_retry_until;
	}

	struct buf p;
	buf_init(&p, PART_MAX_PER_RCPT);
	buf_printf(&p, "This is the mail system at %s.", host);
	para(o, p.data, p.len, "");
	if (failed)
		puts_(o, "I'm sorry to tell you that your message could not be delivered\r\n"
			 "to one or more of its recipients.  The mail system has given up\r\n"
			 "on them, so sending the message again will not help unless the\r\n"
			 "problem below is fixed first.\r\n\r\n");
	if (delayed) {
		buf_reset(&p);
		buf_append_str(&p, "Your message has not been delivered yet to one or more of its "
				   "recipients.  This is only a warning: the mail system keeps "
				   "trying, and you do not need to send the message again.");
		if (until != 0) {
			buf_append_str(&p, "  If it still cannot be delivered by ");
			put_date(&p, until);
			buf_append_str(&p, ", the mail system will give up and tell you.");
		}
		para(o, p.data, p.len, "");
	}
	if (ok)
		puts_(o, "Your message was delivered to the recipients marked as delivered\r\n"
			 "below.  You asked for this report when you sent it; there is nothing\r\n"
			 "you need to do.\r\n\r\n");

	size_t slen;
	char *subj = subject_text(r, &slen);
	if (subj != NULL || r->arrival != 0) {
		buf_reset(&p);
		buf_append_str(&p, subj != NULL && r->arrival == 0 ? "This is about your message"
								  : "Your message");
		if (subj != NULL) {
			buf_append_str(&p, " with the subject \"");
			buf_append(&p, subj, slen);
			buf_append_str(&p, "\"");
		}
		if (r->arrival != 0) {
			buf_append_str(&p, " was received on ");
			put_date(&p, r->arrival);
		}
		buf_append_str(&p, ".");
		para(o, p.data, p.len, "    ");
		free(subj);
	}

	for (size_t i = 0; i < r->nrcpts; i++) {
		const struct dsn_rcpt *rc = &r->rcpts[i];
		buf_reset(&p);
		buf_append_str(&p, "<");
		clean(&p, rc->final_rcpt, strlen(rc->final_rcpt), CLEAN_UTF8, DSN_FIELD_MAX);
		buf_append_str(&p, ">: ");
		switch (rc->action) {
		case DSN_FAILED:
			buf_append_str(&p, "could not be delivered.");
			break;
		case DSN_DELAYED:
			buf_append_str(&p, "not delivered yet.");
			if (rc->will_retry_until != 0) {
				buf_append_str(&p, "  The mail system will keep trying until ");
				put_date(&p, rc->will_retry_until);
				buf_append_str(&p, ".");
			}
			break;
		case DSN_DELIVERED:
			buf_append_str(&p, "delivered.");
			break;
		case DSN_RELAYED:
			buf_append_str(&p, "passed on to a mail system that does not send "
					   "delivery reports, so this is the last you will hear "
					   "of it.");
			break;
		case DSN_EXPANDED:
			buf_append_str(&p, "delivered to a mailing list or alias, which passed it "
					   "on to its members.");
			break;
		}
		if (rc->diagnostic != NULL) {
			buf_append_str(&p, "  ");
			if (rc->remote_mta != NULL) {
				buf_append_str(&p, "The receiving mail server (");
				clean(&p, rc->remote_mta, strlen(rc->remote_mta), CLEAN_ASCII,
				      DSN_FIELD_MAX);
				buf_append_str(&p, ") replied: \"");
			} else {
				buf_append_str(&p, "Reason: \"");
			}
			/* quoted, so that the reply's own words stand apart */
			clean(&p, rc->diagnostic, strlen(rc->diagnostic), CLEAN_ASCII,
			      DSN_DIAG_MAX);
			buf_append_str(&p, "\".");
		} else if (rc->remote_mta != NULL) {
			buf_append_str(&p, "  Mail server: ");
			clean(&p, rc->remote_mta, strlen(rc->remote_mta), CLEAN_ASCII,
			      DSN_FIELD_MAX);
			buf_append_str(&p, ".");
		}
		const char *meaning = status_meaning(rc->status);
		if (meaning != NULL && (rc->action == DSN_FAILED || rc->action == DSN_DELAYED))
			buf_printf(&p, "  In short: %s (status %s).", meaning, rc->status);
		else
			buf_printf(&p, "  (Status %s.)", rc->status);
		para(o, p.data, p.len, "    ");
	}

	buf_reset(&p);
	switch (ret->kind) {
	case RET_NONE:
		break;
	case RET_FULL:
		buf_append_str(&p, "Your original message is attached.");
		break;
	case RET_HDRS:
		buf_append_str(&p, "The header of your original message is attached (not the "
				   "text itself).");
		break;
	case RET_FALLBACK:
		buf_printf(&p, "Your original message (%zu bytes) was too large to return in "
			       "full, so only its header is attached.", r->original_len);
		break;
	case RET_TRUNCATED:
		if (ret->len == 0) {
			buf_printf(&p, "Your original message (%zu bytes) was too large to "
				       "return, and so was its header, so none of it is attached.",
				   r->original_len);
			break;
		}
		buf_printf(&p, "Your original message (%zu bytes) was too large to return, and "
			       "so was its header: only the first %zu bytes of the header are "
			       "attached.", r->original_len, ret->len);
		break;
	}
	if (p.len)
		para(o, p.data, p.len, "");
	buf_free(&p);
}

/* Part 2, for programs: RFC 3464 2.2 and 2.3. */
static void status_part(const struct dsn_report *r, struct out *o)
{
	field_clean(o, "Reporting-MTA", "dns; ", r->reporting_mta, CLEAN_ASCII, DSN_FIELD_MAX);
	if (r->envid != NULL)
		field_clean(o, "Original-Envelope-Id", "", r->envid, CLEAN_EMBED, DSN_FIELD_MAX);
	if (r->arrival != 0)
		field_date(o, "Arrival-Date", r->arrival);
	for (size_t i = 0; i < r->nrcpts; i++) {
		const struct dsn_rcpt *rc = &r->rcpts[i];
		put(o, "\r\n", 2);
		if (rc->orig_rcpt != NULL)
			field_clean(o, "Original-Recipient", "", rc->orig_rcpt, CLEAN_EMBED,
				    DSN_FIELD_MAX);
		if (has_8bit(rc->final_rcpt, strlen(rc->final_rcpt)))
			field_clean(o, "Final-Recipient", "utf-8; ", rc->final_rcpt, CLEAN_XTEXT,
				    10 * DSN_FIELD_MAX);
		else
			field_clean(o, "Final-Recipient", "rfc822; ", rc->final_rcpt, CLEAN_ASCII,
				    DSN_FIELD_MAX);
		const char *a = action_name(rc->action);
		field(o, "Action", a, strlen(a));
		field(o, "Status", rc->status, strlen(rc->status));
		if (rc->remote_mta != NULL)
			field_clean(o, "Remote-MTA", "dns; ", rc->remote_mta, CLEAN_ASCII,
				    DSN_FIELD_MAX);
		if (rc->diagnostic != NULL)
			field_clean(o, "Diagnostic-Code", "smtp; ", rc->diagnostic, CLEAN_ASCII,
				    DSN_DIAG_MAX);
		if (rc->last_attempt != 0)
			field_date(o, "Last-Attempt-Date", rc->last_attempt);
		if (rc->action == DSN_DELAYED && rc->will_retry_until != 0)
			field_date(o, "Will-Retry-Until", rc->will_retry_until);
	}
}

static bool report_ok(const struct dsn_report *r)
{
	if (r == NULL || r->rcpts == NULL || r->nrcpts == 0 || r->nrcpts > DSN_RCPTS_MAX)
		return false;
	if (!str_ok(r->reporting_mta) || !str_ok(r->postmaster) || !str_ok(r->to) ||
	    !msgid_ok(r->message_id) || !boundary_ok(r->boundary))
		return false;
	if (r->envid != NULL && !str_ok(r->envid))
		return false;
	if (r->original == NULL && r->original_len != 0)
		return false;
	for (size_t i = 0; i < r->nrcpts; i++) {
		const struct dsn_rcpt *rc = &r->rcpts[i];
		if (!str_ok(rc->final_rcpt) || !status_ok(rc->status) ||
		    action_name(rc->action) == NULL)
			return false;
		if ((rc->orig_rcpt != NULL && !str_ok(rc->orig_rcpt)) ||
		    (rc->remote_mta != NULL && !str_ok(rc->remote_mta)))
			return false;
	}
	return true;
}

/* Whether s[0..n) holds "--boundary" anywhere (stricter than at a line
 * start, where it would end the part early). */
static bool has_delimiter(const char *s, size_t n, const char *delim, size_t dlen)
{
	return n >= dlen && memmem(s, n, delim, dlen) != NULL;
}

int dsn_compose(const struct dsn_report *r, char **out_r, size_t *len_r)
{
	if (!report_ok(r))
		return -1;

	char delim[DSN_BOUNDARY_MAX + 3];
	size_t dlen = (size_t)snprintf(delim, sizeof delim, "--%s", r->boundary);
	struct ret ret = choose_return(r);
	if (has_delimiter(r->original, ret.len, delim, dlen))
		return -1;

	size_t part_max = (r->nrcpts + 1) * PART_MAX_PER_RCPT;
	size_t hostlen;
	char *host = clean_dup(r->reporting_mta, strlen(r->reporting_mta), CLEAN_ASCII,
			       DSN_FIELD_MAX, &hostlen);
	struct out human = { .fail = false }, status = { .fail = false };
	buf_init(&human.b, part_max);
	buf_init(&status.b, part_max);
	human_part(r, &ret, host, &human);
	status_part(r, &status);
	free(host);

	struct out o = { .fail = false };
	buf_init(&o.b, human.b.len + status.b.len + ret.len + HEADER_ROOM);
	if (human.fail || status.fail ||
	    has_delimiter(human.b.data, human.b.len, delim, dlen) ||
	    has_delimiter(status.b.data, status.b.len, delim, dlen)) {
		o.fail = true;
		goto done;
	}

	bool failed = false, delayed = false;
	for (size_t i = 0; i < r->nrcpts; i++) {
		failed |= r->rcpts[i].action == DSN_FAILED;
		delayed |= r->rcpts[i].action == DSN_DELAYED;
	}
	bool human8 = has_8bit(human.b.data, human.b.len);
	bool orig8 = has_8bit(r->original, ret.len);

	field_wrap(&o, "From", "\"Mail Delivery System\" <", r->postmaster, ">", CLEAN_UTF8,
		   DSN_FIELD_MAX);
	field_wrap(&o, "To", "<", r->to, ">", CLEAN_UTF8, DSN_FIELD_MAX);
	puts_(&o, failed    ? "Subject: Undelivered Mail Returned to Sender\r\n"
		  : delayed ? "Subject: Delayed Mail (still being retried)\r\n"
			    : "Subject: Successful Mail Delivery Report\r\n");
	field_date(&o, "Date", r->now);
	field(&o, "Message-ID", r->message_id, strlen(r->message_id));
	puts_(&o, "Auto-Submitted: auto-replied\r\n"
		  "MIME-Version: 1.0\r\n"
		  "Content-Type: multipart/report; report-type=delivery-status;\r\n"
		  "\tboundary=\"");
	puts_(&o, r->boundary);
	puts_(&o, "\"\r\n");
	if (human8 || orig8)
		puts_(&o, "Content-Transfer-Encoding: 8bit\r\n");
	puts_(&o, "\r\nThis is a MIME-encapsulated message.\r\n\r\n");

	put(&o, delim, dlen);
	puts_(&o, "\r\nContent-Description: Notification\r\n");
	puts_(&o, human8 ? "Content-Type: text/plain; charset=utf-8\r\n"
			   "Content-Transfer-Encoding: 8bit\r\n"
			 : "Content-Type: text/plain; charset=us-ascii\r\n");
	puts_(&o, "\r\n");
	put(&o, human.b.data, human.b.len);

	puts_(&o, "\r\n");
	put(&o, delim, dlen);
	puts_(&o, "\r\nContent-Description: Delivery report\r\n"
		  "Content-Type: message/delivery-status\r\n\r\n");
	put(&o, status.b.data, status.b.len);

	if (ret.kind != RET_NONE && ret.len > 0) {
		puts_(&o, "\r\n");
		put(&o, delim, dlen);
		puts_(&o, ret.kind == RET_FULL
				  ? "\r\nContent-Description: Undelivered Message\r\n"
				    "Content-Type: message/rfc822\r\n"
				  : "\r\nContent-Description: Undelivered Message Headers\r\n"
				    "Content-Type: text/rfc822-headers\r\n");
		if (orig8)
			puts_(&o, "Content-Transfer-Encoding: 8bit\r\n");
		puts_(&o, "\r\n");
		put(&o, r->original, ret.len);
	}
	puts_(&o, "\r\n");
	put(&o, delim, dlen);
	puts_(&o, "--\r\n");

done:
	buf_free(&human.b);
	buf_free(&status.b);
	if (o.fail) {
		buf_free(&o.b);
		return -1;
	}
	*out_r = buf_steal(&o.b, len_r);
	return 0;
}

int dsn_header_value(const char *msg, size_t len, const char *name, char *out, size_t outsz)
{
	size_t pos = 0, nlen = strlen(name);
	struct mime_field f;

	if (outsz > 0)
		out[0] = '\0';
	if (msg == NULL)
		len = 0;
	while (mime_header_next(msg, len, &pos, &f)) {
		if (f.name_len != nlen || !str_nieq(f.name, name, nlen))
			continue;
		const char *v = f.value;
		size_t s = 0, e = f.value_len;
		while (s < e && (v[s] == ' ' || v[s] == '\t' || v[s] == '\r' || v[s] == '\n'))
			s++;
		while (e > s && (v[e - 1] == ' ' || v[e - 1] == '\t' || v[e - 1] == '\r' ||
				 v[e - 1] == '\n'))
			e--;
		size_t n = 0;
		for (size_t i = s; i < e && n + 1 < outsz; i++) {
			if (v[i] == '\r' || v[i] == '\n')
				continue;
			out[n++] = v[i] == '\0' ? ' ' : v[i];
		}
		if (outsz > 0)
			out[n] = '\0';
		return 1;
	}
	return 0;
}
