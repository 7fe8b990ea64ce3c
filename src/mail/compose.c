/* compose.c - new messages for sending: header fields, MIME structure and
 * transfer encodings.
 *
 * Everything is checked first (validate()), so that the writers below only
 * meet well-formed, capped input.  The parts are then built bottom-up into
 * their own bounded buffers (head = Content-* fields, body = encoded
 * content): leaves first, then the multipart/alternative around the text
 * and html, then the multipart/mixed around that and the attachments.
 * Building bottom-up is what lets a boundary be checked against the exact
 * bytes it will enclose.  Last, the message header is appended to out with
 * the top part.
 *
 * Header fields go through a small writer (struct hw) that folds before a
 * token that would pass FOLD_COL, so a line only passes 78 when a single
 * token is longer (an address, a caller's extra header); the caps keep
 * those under 998. */
#include "mail/compose.h"

#include <errno.h>
#include <iconv.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>

#include "core/buf.h"
#include "core/log.h"
#include "core/util.h"
#include "mail/addr.h"
#include "mail/mutf7.h"
#include "mail/rfc2047.h"

#define FOLD_COL 78              /* header lines and flowed text lines */
#define LINE_HARD 998            /* RFC 5322 2.1.1, without CR LF */
#define QP_COL 75                /* QP text per line before the soft-break '=' */
#define B64_LINE_BYTES 57        /* 76 base64 characters a line */
#define NAME_WORD_MAX 60         /* longest atom or quoted display name kept plain */
#define ENC_MAX (64 * 1024)      /* encoded-words of one value (<= 998 bytes of text) */
#define HEAD_MAX (64 * 1024)     /* Content-* fields of one part */
#define BOUNDARY_TRIES 8         /* random boundaries tried before giving up */
#define RANDOM_CHARS 26          /* base32 characters: 130 bits */
#define DATE_MAX 40              /* rfc5322_date() */
/* ISO-2022-JP per line: a chunk of iconv output at a time (the longest
 * single character with its escape sequences is 8 bytes). */
#define ICONV_CHUNK 4096

static const char base32[] = "abcdefghijklmnopqrstuvwxyz234567";

/* ---- small predicates ---- */

static bool is_wsp(char c)
{
	return c == ' ' || c == '\t';
}

/* RFC 5322 atext. */
static bool is_atext(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       (c != 0 && strchr("!#$%&'*+-/=?^_`{|}~", c) != NULL);
}

/* RFC 2045 token character. */
static bool is_token(unsigned char c)
{
	return c > 0x20 && c < 0x7f && strchr("()<>@,;:\\\"/[]?=", c) == NULL;
}

/* RFC 2231 attribute-char: what a %-encoded value may keep literally. */
static bool is_attr_char(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       (c != 0 && strchr("!#$&+-.^_`|~", c) != NULL);
}

static bool has_crlf(const char *s)
{
	return s != NULL && strpbrk(s, "\r\n") != NULL;
}

static bool printable_ascii(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)s[i] < 0x20 || (unsigned char)s[i] > 0x7e)
			return false;
	return true;
}

static bool has_nul(const char *s, size_t n)
{
	return n > 0 && memchr(s, '\0', n) != NULL;
}

/* Bytes of the UTF-8 character at s[0..n) (valid input: at least 1). */
static size_t char_len(const char *s, size_t n)
{
	size_t k = mutf7_utf8_char_len(s, n);
	return k ? k : 1;
}

/* ---- randomness ---- */

static void random_bytes(unsigned char *p, size_t n)
{
	size_t got = 0;
	/* getrandom(2) only returns short or EINTR for huge requests or a
	 * signal; a few retries are plenty, failing is a broken system. */
	for (int tries = 0; got < n; tries++) {
		ssize_t r = getrandom(p + got, n - got, 0);
		if (r > 0) {
			got += (size_t)r;
			continue;
		}
		if (tries >= 100 || (r < 0 && errno != EINTR))
			log_fatal("getrandom failed: %s", strerror(errno));
	}
}

/* n random base32 characters, NUL-terminated. */
static void random_text(char *out, size_t n)
{
	unsigned char r[RANDOM_CHARS];
	if (n > sizeof r)
		n = sizeof r;
	random_bytes(r, n);
	for (size_t i = 0; i < n; i++)
		out[i] = base32[r[i] & 31]; /* 256 is a multiple of 32: uniform */
	out[n] = '\0';
}

/* ---- header writer ---- */

struct hw {
	struct buf *b;
	size_t col;
	bool tok;  /* something follows the field name on the current line */
	bool fail; /* an append failed */
};

static void hw_put(struct hw *h, const char *s, size_t n)
{
	if (!h->fail && buf_append(h->b, s, n) < 0)
		h->fail = true;
	h->col += n;
}

static void hw_begin(struct hw *h, const char *name)
{
	h->col = 0;
	h->tok = false;
	hw_put(h, name, strlen(name));
	hw_put(h, ":", 1);
}

static void hw_fold(struct hw *h)
{
	hw_put(h, "\r\n", 2);
	h->col = 0;
}

/* One unbreakable token and its glued tail ("," or ";" or ""), after a
 * blank, or after a fold when it would pass FOLD_COL on this line. */
static void hw_token(struct hw *h, const char *t, size_t n, const char *tail)
{
	size_t tl = strlen(tail);
	if (h->tok && h->col + 1 + n + tl > FOLD_COL)
		hw_fold(h);
	hw_put(h, " ", 1);
	hw_put(h, t, n);
	hw_put(h, tail, tl);
	h->tok = true;
}

static void hw_end(struct hw *h)
{
	hw_put(h, "\r\n", 2);
}

/* The pieces hw_text() folds between: a blank run and the word after it,
 * blanks at the very end going with the last word.  Length of the piece at
 * s[i..n). */
static size_t text_piece(const char *s, size_t n, size_t i)
{
	size_t j = i;
	while (j < n && is_wsp(s[j]))
		j++;
	while (j < n && !is_wsp(s[j]))
		j++;
	size_t k = j;
	while (k < n && is_wsp(s[k]))
		k++;
	return (k == n ? n : j) - i;
}

/* Unstructured text written exactly, folded by putting a CR LF in front
 * of a blank run that would pass FOLD_COL (unfolding gives it back). */
static void hw_text(struct hw *h, const char *s, size_t n)
{
	for (size_t i = 0; i < n;) {
		size_t k = text_piece(s, n, i);
		if (i > 0 && h->col + k > FOLD_COL)
			hw_fold(h);
		hw_put(h, s + i, k);
		i += k;
	}
}

/* Whether s[0..n), written after col columns, folds into lines of at most
 * FOLD_COL with hw_text(). */
static bool text_fits(const char *s, size_t n, size_t col)
{
	for (size_t i = 0; i < n;) {
		size_t k = text_piece(s, n, i);
		if (k > (i == 0 ? FOLD_COL - col : FOLD_COL))
			return false;
		i += k;
	}
	return true;
}

/* Write the encoded-words of one rfc2047_encode() output (words joined by
 * "\r\n ") as tokens. */
static void hw_words(struct hw *h, const char *w, size_t n)
{
	for (size_t i = 0; i < n;) {
		const char *e = memchr(w + i, '\r', n - i);
		size_t k = e ? (size_t)(e - (w + i)) : n - i;
		hw_token(h, w + i, k, "");
		i += k + (e ? 3 : 0);
	}
}

/* s[0..n) (valid UTF-8, capped) as B encoded-words in charset cs.  The
 * encoder makes words of up to 75 characters, which fit any continuation
 * line; only a first word right after the field name may need to be
 * shorter, and is then made from the longest prefix that fits.  -1 when a
 * character is not representable in cs. */
static int hw_encoded(struct hw *h, const char *s, size_t n, const char *cs)
{
	struct buf w, t;
	const char *err;
	int ret = -1;

	buf_init(&w, ENC_MAX);
	buf_init(&t, ENC_MAX);
	if (rfc2047_encode(s, n, cs, RFC2047_B, &w, &err) < 0)
		goto done;
	const char *nl = memchr(w.data, '\r', w.len);
	size_t first = nl ? (size_t)(nl - w.data) : w.len;
	size_t budget = h->col + 1 < FOLD_COL ? FOLD_COL - h->col - 1 : 0;
	if (!h->tok && first > budget) {
		/* Grow the prefix a character at a time while its encoding stays
		 * one word within budget (bounded: the word grows with it). */
		size_t best = 0;
		for (size_t p = 0; p < n;) {
			size_t q = p + char_len(s + p, n - p);
			buf_reset(&t);
			if (rfc2047_encode(s, q, cs, RFC2047_B, &t, &err) < 0 ||
			    memchr(t.data, '\r', t.len) != NULL || t.len > budget)
				break;
			best = p = q;
		}
		if (best > 0 && best < n) {
			buf_reset(&t);
			buf_reset(&w);
			if (rfc2047_encode(s, best, cs, RFC2047_B, &t, &err) < 0 ||
			    rfc2047_encode(s + best, n - best, cs, RFC2047_B, &w, &err) < 0)
				goto done;
			hw_words(h, t.data, t.len);
		}
	}
	hw_words(h, w.data, w.len);
	ret = 0;
done:
	buf_free(&w);
	buf_free(&t);
	return ret;
}

/* ---- validation ---- */

enum charset { CS_UTF8, CS_JP };

static const char *cs_label(enum charset cs)
{
	return cs == CS_JP ? "ISO-2022-JP" : "UTF-8";
}

/* addr (ASCII addr-spec) checked with the envelope parser and written
 * back in its normal form into spec (ADDR_PATH_MAX * 2 bytes). */
static bool addr_ok(const char *s, char *spec, size_t specsz)
{
	char path[ADDR_PATH_MAX + 1];
	size_t n = s ? strnlen(s, ADDR_PATH_MAX) : 0;
	if (n == 0 || n + 2 > ADDR_PATH_MAX)
		return false;
	path[0] = '<';
	memcpy(path + 1, s, n);
	path[n + 1] = '>';
	struct mail_addr a;
	long r = addr_parse_path(path, n + 2, false, &a, NULL, NULL);
	if (r != (long)(n + 2) || a.null || a.postmaster || a.source_route || a.trailing_dot ||
	    a.domain[0] == '\0')
		return false;
	if (spec != NULL)
		addr_format(&a, spec, specsz);
	return true;
}

static const char *name_check(const char *name)
{
	if (name == NULL)
		return NULL;
	size_t n = strnlen(name, COMPOSE_NAME_MAX + 1);
	if (n > COMPOSE_NAME_MAX)
		return "display name too long";
	if (!mutf7_utf8_valid(name, n))
		return "display name is not valid UTF-8";
	return NULL;
}

static const char *addrs_check(const struct compose_addr *v, size_t n)
{
	if (n > COMPOSE_RCPTS_MAX)
		return "too many recipients";
	if (n > 0 && v == NULL)
		return "recipient list missing";
	for (size_t i = 0; i < n; i++) {
		if (has_crlf(v[i].name) || has_crlf(v[i].addr))
			return "CR or LF in a header field";
		if (!addr_ok(v[i].addr, NULL, 0))
			return "invalid address";
		const char *why = name_check(v[i].name);
		if (why != NULL)
			return why;
	}
	return NULL;
}

/* One "<id>": printable ASCII, no blanks or angle brackets inside; its
 * length, or 0. */
static size_t id_len(const char *s)
{
	if (s[0] != '<')
		return 0;
	for (size_t i = 1; i < COMPOSE_ID_MAX && s[i] != '\0'; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c == '>')
			return i > 1 ? i + 1 : 0;
		if (c <= ' ' || c >= 0x7f || c == '<')
			return 0;
	}
	return 0;
}

/* An id list: ids separated by optional blanks, 1..max of them. */
static bool ids_ok(const char *s, size_t max)
{
	size_t count = 0;
	for (size_t i = 0;;) {
		while (is_wsp(s[i]))
			i++;
		if (s[i] == '\0')
			return count > 0;
		size_t k = id_len(s + i);
		if (k == 0 || ++count > max)
			return false;
		i += k;
	}
}

static const char *const composed_fields[] = {
	"Date", "From", "To", "Cc", "Bcc", "Reply-To", "Subject", "Message-ID",
	"In-Reply-To", "References", "MIME-Version",
};

/* "Name: value", see compose.h; 0 ok, 1 bad, 2 one of ours. */
static int extra_check(const char *s)
{
	size_t n = strnlen(s, COMPOSE_LINE_MAX + 1);
	if (n > COMPOSE_LINE_MAX)
		return 1;
	size_t c = 0;
	while (c < n && s[c] != ':' && (unsigned char)s[c] > ' ' && (unsigned char)s[c] < 0x7f)
		c++;
	if (c == 0 || c == n || s[c] != ':')
		return 1;
	for (size_t i = c + 1; i < n; i++)
		if (!is_wsp(s[i]) && ((unsigned char)s[i] < 0x20 || (unsigned char)s[i] > 0x7e))
			return 1;
	for (size_t i = 0; i < ARRAY_LEN(composed_fields); i++)
		if (strlen(composed_fields[i]) == c && str_nieq(s, composed_fields[i], c))
			return 2;
	if (c >= 8 && str_nieq(s, "Content-", 8))
		return 2;
	return 0;
}

/* message/rfc822 (a forward as an attachment): the one message type
 * taken, written 7bit or 8bit as RFC 2046 5.2.1 requires (never base64). */
static bool is_rfc822(const char *t)
{
	return strcasecmp(t, "message/rfc822") == 0;
}

static bool type_ok(const char *t)
{
	size_t n = strnlen(t, COMPOSE_TYPE_MAX + 1);
	const char *slash = memchr(t, '/', n);
	if (n > COMPOSE_TYPE_MAX || slash == NULL || slash == t || slash == t + n - 1)
		return false;
	for (size_t i = 0; i < n; i++)
		if (t + i != slash && !is_token((unsigned char)t[i]))
			return false;
	return !str_iprefix(t, "multipart/") &&
	       (!str_iprefix(t, "message/") || is_rfc822(t));
}

/* A message to forward as message/rfc822: no NUL, lines of at most 998
 * octets (it cannot be encoded). */
static const char *rfc822_check(const char *d, size_t n)
{
	size_t run = 0;
	for (size_t i = 0; i < n; i++) {
		if (d[i] == '\0')
			return "forwarded message contains a NUL byte";
		run = d[i] == '\n' || d[i] == '\r' ? 0 : run + 1;
		if (run > 998)
			return "forwarded message has a line longer than 998 octets";
	}
	return NULL;
}

static bool boundary_prefix_ok(const char *s)
{
	size_t n = strnlen(s, COMPOSE_BOUNDARY_MAX + 1);
	if (n == 0 || n > COMPOSE_BOUNDARY_MAX)
		return false;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		bool alnum = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') ||
			     (c >= 'A' && c <= 'Z');
		if (!alnum && strchr("'()+_,-./:=?", c) == NULL)
			return false;
	}
	return true;
}

/* ISO-2022-JP is switched by ESC sequences (and SO/SI in its relatives):
 * these bytes in the text would pass iconv as they are and change how the
 * rest decodes, so they are not representable. */
static bool jp_controls(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (s[i] == 0x1b || s[i] == 0x0e || s[i] == 0x0f)
			return true;
	return false;
}

static const char *jp_check(const struct compose_msg *m)
{
	const struct compose_addr *lists[] = { &m->from, m->to, m->cc, m->reply_to };
	const size_t counts[] = { 1, m->nto, m->ncc, m->nreply_to };
	for (size_t l = 0; l < ARRAY_LEN(lists); l++)
		for (size_t i = 0; i < counts[l]; i++)
			if (lists[l][i].name != NULL &&
			    jp_controls(lists[l][i].name, strlen(lists[l][i].name)))
				return "display name not representable in ISO-2022-JP";
	if (m->subject != NULL && jp_controls(m->subject, strlen(m->subject)))
		return "subject not representable in ISO-2022-JP";
	if (m->text_len > 0 && jp_controls(m->text, m->text_len))
		return "text not representable in ISO-2022-JP";
	return NULL;
}

static const char *body_check(const char *s, size_t n, const char *what_nul,
			      const char *what_utf8)
{
	if (has_nul(s, n))
		return what_nul;
	if (!mutf7_utf8_valid(s, n))
		return what_utf8;
	return NULL;
}

static const char *validate(const struct compose_msg *m, enum charset *cs_r)
{
	const char *why;

	if (m->charset == NULL || str_ieq(m->charset, "utf-8"))
		*cs_r = CS_UTF8;
	else if (str_ieq(m->charset, "iso-2022-jp"))
		*cs_r = CS_JP;
	else
		return "unsupported charset";

	if (m->from.addr == NULL || m->from.addr[0] == '\0')
		return "missing From address";
	if ((why = addrs_check(&m->from, 1)) != NULL ||
	    (why = addrs_check(m->to, m->nto)) != NULL ||
	    (why = addrs_check(m->cc, m->ncc)) != NULL ||
	    (why = addrs_check(m->reply_to, m->nreply_to)) != NULL)
		return why;

	if (m->subject != NULL) {
		size_t n = strnlen(m->subject, COMPOSE_SUBJECT_MAX + 1);
		if (n > COMPOSE_SUBJECT_MAX)
			return "subject too long";
		if (has_crlf(m->subject))
			return "CR or LF in a header field";
		if (!mutf7_utf8_valid(m->subject, n))
			return "subject is not valid UTF-8";
	}
	if (has_crlf(m->message_id) || has_crlf(m->in_reply_to) || has_crlf(m->references))
		return "CR or LF in a header field";
	if (m->message_id != NULL && !ids_ok(m->message_id, 1))
		return "bad Message-ID";
	if (m->in_reply_to != NULL && !ids_ok(m->in_reply_to, COMPOSE_REFS_MAX))
		return "bad In-Reply-To";
	if (m->references != NULL && !ids_ok(m->references, COMPOSE_REFS_MAX))
		return "bad References";

	if (m->nextra > COMPOSE_EXTRA_MAX)
		return "too many extra header fields";
	if (m->nextra > 0 && m->extra_headers == NULL)
		return "bad extra header field";
	for (size_t i = 0; i < m->nextra; i++) {
		if (m->extra_headers[i] == NULL)
			return "bad extra header field";
		if (has_crlf(m->extra_headers[i]))
			return "CR or LF in a header field";
		int r = extra_check(m->extra_headers[i]);
		if (r == 1)
			return "bad extra header field";
		if (r == 2)
			return "extra header field duplicates a composed field";
	}
	if (m->boundary != NULL && !boundary_prefix_ok(m->boundary))
		return "bad boundary prefix";

	/* Sizes: the inputs alone must fit (encoding only adds). */
	if ((m->text == NULL && m->text_len != 0) || (m->html == NULL && m->html_len != 0))
		return "text missing";
	size_t total = m->text_len;
	if (total > COMPOSE_OUT_MAX || m->html_len > COMPOSE_OUT_MAX - total)
		return "message too large";
	total += m->html_len;
	if (m->natt > COMPOSE_ATT_MAX)
		return "too many attachments";
	if (m->natt > 0 && m->att == NULL)
		return "attachment list missing";
	for (size_t i = 0; i < m->natt; i++) {
		const struct compose_attachment *a = &m->att[i];
		if (a->data == NULL && a->len != 0)
			return "attachment without data";
		if (a->len > COMPOSE_OUT_MAX - total)
			return "message too large";
		total += a->len;
		if (a->content_type != NULL &&
		    (has_crlf(a->content_type) || !type_ok(a->content_type)))
			return "bad attachment content type";
		if (a->content_type != NULL && is_rfc822(a->content_type) &&
		    (why = rfc822_check((const char *)a->data, a->len)) != NULL)
			return why;
		if (a->filename != NULL) {
			size_t n = strnlen(a->filename, COMPOSE_FILENAME_MAX + 1);
			if (n > COMPOSE_FILENAME_MAX)
				return "attachment file name too long";
			if (has_crlf(a->filename))
				return "CR or LF in a header field";
			if (!mutf7_utf8_valid(a->filename, n))
				return "attachment file name is not valid UTF-8";
		}
	}
	if (m->text_len && (why = body_check(m->text, m->text_len, "text contains a NUL byte",
					     "text is not valid UTF-8")) != NULL)
		return why;
	if (m->html_len && (why = body_check(m->html, m->html_len, "html contains a NUL byte",
					     "html is not valid UTF-8")) != NULL)
		return why;
	if (*cs_r == CS_JP)
		return jp_check(m);
	return NULL;
}

/* ---- message header ---- */

enum name_form { NAME_ATOMS, NAME_QUOTED, NAME_ENCODED };

/* How to write a display name: atoms when they are plain words of atext
 * with single spaces between; a quoted-string when it is printable ASCII
 * and short; encoded-words otherwise (non-ASCII, control characters, "=?"
 * that a decoder would take for a word, or too long to keep on one line,
 * since encoded-words can be folded and a quoted-string is not). */
static enum name_form name_form(const char *s, size_t n)
{
	if (!printable_ascii(s, n) || memmem(s, n, "=?", 2) != NULL)
		return NAME_ENCODED;
	bool atoms = true;
	size_t w = 0;
	for (size_t i = 0; i < n && atoms; i++) {
		if (s[i] == ' ') {
			atoms = w > 0 && i + 1 < n;
			w = 0;
		} else {
			atoms = is_atext((unsigned char)s[i]) && ++w <= NAME_WORD_MAX;
		}
	}
	if (atoms)
		return NAME_ATOMS;
	size_t q = n + 2;
	for (size_t i = 0; i < n; i++)
		q += s[i] == '"' || s[i] == '\\';
	return q <= NAME_WORD_MAX ? NAME_QUOTED : NAME_ENCODED;
}

/* One mailbox: [display-name] "<addr>", or the bare addr-spec. */
static int put_mailbox(struct hw *h, const struct compose_addr *a, const char *tail,
		       enum charset cs, const char **why_r)
{
	char spec[ADDR_PATH_MAX * 2];
	if (!addr_ok(a->addr, spec, sizeof spec)) {
		*why_r = "invalid address"; /* validated already */
		return -1;
	}
	size_t n = a->name ? strlen(a->name) : 0;
	if (n == 0) {
		hw_token(h, spec, strlen(spec), tail);
		return 0;
	}
	switch (name_form(a->name, n)) {
	case NAME_ATOMS:
		for (size_t i = 0; i < n;) {
			const char *sp = memchr(a->name + i, ' ', n - i);
			size_t k = sp ? (size_t)(sp - (a->name + i)) : n - i;
			hw_token(h, a->name + i, k, "");
			i += k + 1;
		}
		break;
	case NAME_QUOTED: {
		char q[NAME_WORD_MAX + 1];
		size_t k = 0;
		q[k++] = '"';
		for (size_t i = 0; i < n; i++) {
			if (a->name[i] == '"' || a->name[i] == '\\')
				q[k++] = '\\';
			q[k++] = a->name[i];
		}
		q[k++] = '"';
		hw_token(h, q, k, "");
		break;
	}
	case NAME_ENCODED:
		if (hw_encoded(h, a->name, n, cs_label(cs)) < 0) {
			*why_r = "display name not representable in ISO-2022-JP";
			return -1;
		}
		break;
	}
	char angle[ADDR_PATH_MAX * 2 + 2];
	int k = snprintf(angle, sizeof angle, "<%s>", spec);
	hw_token(h, angle, (size_t)k, tail);
	return 0;
}

static int put_addrs(struct hw *h, const char *field, const struct compose_addr *v, size_t n,
		     enum charset cs, const char **why_r)
{
	if (n == 0)
		return 0;
	hw_begin(h, field);
	for (size_t i = 0; i < n; i++)
		if (put_mailbox(h, &v[i], i + 1 < n ? "," : "", cs, why_r) < 0)
			return -1;
	hw_end(h);
	return 0;
}

/* Subject: as it is when printable ASCII that folds within 78 columns
 * and holds no "=?"; otherwise the whole value as encoded-words. */
static int put_subject(struct hw *h, const char *s, enum charset cs, const char **why_r)
{
	size_t n = strlen(s);
	hw_begin(h, "Subject");
	if (n > 0 && printable_ascii(s, n) && memmem(s, n, "=?", 2) == NULL &&
	    text_fits(s, n, h->col + 1)) {
		hw_put(h, " ", 1);
		hw_text(h, s, n);
	} else if (n > 0 && hw_encoded(h, s, n, cs_label(cs)) < 0) {
		*why_r = "subject not representable in ISO-2022-JP";
		return -1;
	}
	hw_end(h);
	return 0;
}

static void put_ids(struct hw *h, const char *field, const char *s)
{
	hw_begin(h, field);
	for (size_t i = 0;;) {
		while (is_wsp(s[i]))
			i++;
		if (s[i] == '\0')
			break;
		size_t k = id_len(s + i);
		hw_token(h, s + i, k, "");
		i += k;
	}
	hw_end(h);
}

static void put_extra(struct hw *h, const char *s)
{
	const char *colon = strchr(s, ':');
	h->col = 0;
	h->tok = false;
	hw_put(h, s, (size_t)(colon + 1 - s));
	hw_text(h, colon + 1, strlen(colon + 1));
	hw_end(h);
}

/* ---- bodies ---- */

/* The next line of s[0..n) at *pos, ended by CR LF, LF or CR (not
 * included); false at the end.  A last line without an end counts. */
static bool next_line(const char *s, size_t n, size_t *pos, size_t *ls, size_t *le)
{
	size_t i = *pos;
	if (i >= n)
		return false;
	*ls = i;
	while (i < n && s[i] != '\n' && s[i] != '\r')
		i++;
	*le = i;
	if (i < n)
		i += s[i] == '\r' && i + 1 < n && s[i + 1] == '\n' ? 2 : 1;
	*pos = i;
	return true;
}

struct out {
	struct buf *b;
	bool fail;
};

static void put(struct out *o, const void *s, size_t n)
{
	if (!o->fail && buf_append(o->b, s, n) < 0)
		o->fail = true;
}

/* RFC 3676 4.4: a line starting with a space, '>' or "From " is stuffed
 * with a space (which the reader removes). */
static bool needs_stuffing(const char *s, size_t n)
{
	return n > 0 && (s[0] == ' ' || s[0] == '>' || (n >= 5 && memcmp(s, "From ", 5) == 0));
}

/* One input line as format=flowed lines (delsp=no: the blank at a soft
 * break is text and stays, at the end of the line).  Trailing blanks are
 * dropped (they would make a soft break); "-- " (the signature separator)
 * stays as it is; a line starting with '>' is quoted text and is written
 * unwrapped.  Otherwise the line is broken after a blank run so that each
 * piece, with its stuffing, has at most FOLD_COL octets; a word longer than
 * that stays whole.  A piece that would read "-- " takes the next word too. */
static void flow_line(struct out *o, const char *s, size_t n)
{
	if (n == 3 && memcmp(s, "-- ", 3) == 0) {
		put(o, "-- \r\n", 5);
		return;
	}
	while (n > 0 && s[n - 1] == ' ')
		n--;
	if (n > 0 && s[0] == '>') {
		put(o, s, n);
		put(o, "\r\n", 2);
		return;
	}
	/* p grows by at least one byte a round, q > p. */
	for (size_t p = 0;;) {
		bool stuff = needs_stuffing(s + p, n - p);
		size_t room = FOLD_COL - stuff, q = 0;
		if (n - p > room) {
			size_t k = p;
			while (k < n && s[k] == ' ')
				k++;
			for (k++; k < n; k++) {
				if (s[k - 1] != ' ' || s[k] == ' ')
					continue;
				if (q != 0 && k - p > room)
					break;
				if (!(k - p == 3 && !stuff && memcmp(s + p, "-- ", 3) == 0))
					q = k;
				if (k - p > room)
					break;
			}
		}
		if (stuff)
			put(o, " ", 1);
		put(o, s + p, (q ? q : n) - p);
		put(o, "\r\n", 2);
		if (q == 0)
			break;
		p = q;
	}
}

/* s[0..n) with every line ended by CR LF (one added at the end when
 * missing), flowed when asked. */
static void normalize(const char *s, size_t n, bool flowed, struct out *o)
{
	size_t pos = 0, ls, le;
	while (!o->fail && next_line(s, n, &pos, &ls, &le)) {
		if (flowed) {
			flow_line(o, s + ls, le - ls);
		} else {
			put(o, s + ls, le - ls);
			put(o, "\r\n", 2);
		}
	}
}

/* UTF-8 (CR LF lines) to ISO-2022-JP, line by line so that each line
 * starts and ends in ASCII (RFC 1468).  NULL, or the reason. */
static const char *to_jp(const char *s, size_t n, struct out *o)
{
	iconv_t cd = iconv_open("ISO-2022-JP", "UTF-8");
	if (cd == (iconv_t)-1)
		return "ISO-2022-JP not available";
	const char *why = NULL;
	char chunk[ICONV_CHUNK];
	for (size_t pos = 0, ls, le; why == NULL && next_line(s, n, &pos, &ls, &le);) {
		char *ib = (char *)s + ls;
		size_t il = le - ls;
		iconv(cd, NULL, NULL, NULL, NULL);
		/* each round consumes input or fails (a chunk holds any character) */
		while (il > 0 && why == NULL) {
			char *op = chunk;
			size_t ol = sizeof chunk, before = il;
			size_t r = iconv(cd, &ib, &il, &op, &ol);
			put(o, chunk, (size_t)(op - chunk));
			if (r == (size_t)-1 && (errno != E2BIG || il == before))
				why = "text not representable in ISO-2022-JP";
		}
		char *op = chunk;
		size_t ol = sizeof chunk;
		if (why == NULL && iconv(cd, NULL, NULL, &op, &ol) == (size_t)-1)
			why = "text not representable in ISO-2022-JP";
		put(o, chunk, (size_t)(op - chunk));
		put(o, "\r\n", 2);
	}
	iconv_close(cd);
	return why;
}

enum cte { CTE_7BIT, CTE_QP, CTE_B64 };

static const char *cte_name(enum cte c)
{
	return c == CTE_7BIT ? "7bit" : c == CTE_QP ? "quoted-printable" : "base64";
}

/* 7bit when ASCII with lines of at most 998 octets; otherwise
 * quoted-printable when at most one byte in six is 8-bit (up to there QP
 * is no larger than base64, whose 4/3 it matches at 1/6 of 3-byte
 * escapes, and stays readable), base64 beyond. */
static enum cte choose_cte(const char *s, size_t n)
{
	size_t eight = 0, line = 0, longest = 0;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		eight += c >= 0x80;
		if (c == '\n') {
			line = 0;
		} else if (c != '\r' && ++line > longest) {
			longest = line;
		}
	}
	if (eight == 0 && longest <= LINE_HARD)
		return CTE_7BIT;
	return eight <= n / 6 ? CTE_QP : CTE_B64;
}

/* Quoted-printable (RFC 2045 6.7) of CR LF lines: the line ends are hard
 * breaks, encoded lines have at most 76 characters, a blank at the end of
 * a line is encoded (so a flowed soft break survives), and a line starting
 * "From " has its 'F' encoded (mbox files would change it). */
static void qp_encode(const char *s, size_t n, struct out *o)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t pos = 0, ls, le;
	while (!o->fail && next_line(s, n, &pos, &ls, &le)) {
		size_t col = 0;
		for (size_t i = ls; i < le; i++) {
			unsigned char c = (unsigned char)s[i];
			bool lit = (c >= 33 && c <= 126 && c != '=') ||
				   (is_wsp((char)c) && i + 1 < le);
			if (c == 'F' && col == 0 && le - i >= 5 && memcmp(s + i, "From ", 5) == 0)
				lit = false;
			size_t k = lit ? 1 : 3;
			if (col + k > QP_COL) {
				put(o, "=\r\n", 3);
				col = 0;
				if (c == 'F' && le - i >= 5 && memcmp(s + i, "From ", 5) == 0) {
					lit = false;
					k = 3;
				}
			}
			if (lit) {
				put(o, s + i, 1);
			} else {
				char e[3] = { '=', hex[c >> 4], hex[c & 15] };
				put(o, e, 3);
			}
			col += k;
		}
		put(o, "\r\n", 2);
	}
}

static void b64_encode(const unsigned char *s, size_t n, struct out *o)
{
	char line[4 * B64_LINE_BYTES / 3 + 1];
	for (size_t i = 0; i < n && !o->fail; i += B64_LINE_BYTES) {
		size_t k = base64_encode(s + i, MIN(B64_LINE_BYTES, n - i), line);
		put(o, line, k);
		put(o, "\r\n", 2);
	}
}

static void encode_body(const char *s, size_t n, enum cte c, struct out *o)
{
	if (c == CTE_7BIT)
		put(o, s, n);
	else if (c == CTE_QP)
		qp_encode(s, n, o);
	else
		b64_encode((const unsigned char *)s, n, o);
}

/* ---- parts ---- */

struct part {
	struct buf head; /* Content-* fields, each ending in CR LF */
	struct buf body; /* encoded, ends in CR LF unless empty */
};

static void part_init(struct part *p)
{
	buf_init(&p->head, HEAD_MAX);
	buf_init(&p->body, COMPOSE_OUT_MAX);
}

static void part_free(struct part *p)
{
	buf_free(&p->head);
	buf_free(&p->body);
}

static const char *const too_large = "message too large";

/* A text/plain or text/html leaf. */
static const char *text_part(const char *s, size_t n, const char *subtype, enum charset cs,
			     bool flowed, struct part *p)
{
	struct buf plain, jp;
	struct out o = { &plain, false }, oj = { &jp, false }, ob = { &p->body, false };
	const char *why = NULL;

	buf_init(&plain, COMPOSE_OUT_MAX);
	buf_init(&jp, COMPOSE_OUT_MAX);
	normalize(s, n, flowed, &o);
	const char *data = plain.data ? plain.data : "";
	size_t len = plain.len;
	if (!o.fail && cs == CS_JP) {
		why = to_jp(data, len, &oj);
		data = jp.data ? jp.data : "";
		len = jp.len;
	}
	if (why == NULL && (o.fail || oj.fail))
		why = too_large;
	if (why == NULL) {
		enum cte c = choose_cte(data, len);
		encode_body(data, len, c, &ob);
		struct hw h = { .b = &p->head };
		hw_begin(&h, "Content-Type");
		char t[32], ch[32];
		int tl = snprintf(t, sizeof t, "text/%s", subtype);
		int chl = snprintf(ch, sizeof ch, "charset=%s",
				   cs == CS_JP ? "ISO-2022-JP" : "utf-8");
		hw_token(&h, t, (size_t)tl, ";");
		hw_token(&h, ch, (size_t)chl, flowed ? ";" : "");
		if (flowed)
			hw_token(&h, "format=flowed", 13, "");
		hw_end(&h);
		hw_begin(&h, "Content-Transfer-Encoding");
		hw_token(&h, cte_name(c), strlen(cte_name(c)), "");
		hw_end(&h);
		if (h.fail || ob.fail)
			why = too_large;
	}
	buf_free(&plain);
	buf_free(&jp);
	return why;
}

/* A parameter name=v as tokens (see compose.h for the forms).  A section
 * has at most FOLD_COL - 1 characters with its ';' so it fits on a
 * continuation line; sections never split a UTF-8 character or an escape. */
static void put_param(struct hw *h, const char *name, const char *v, const char *tail)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t n = strlen(v), nl = strlen(name);
	bool plain = printable_ascii(v, n);
	char tok[FOLD_COL + 1];
	size_t room = FOLD_COL - 1 - 1; /* the blank before, the ';' after */

	/* The whole value as one token, when it fits. */
	size_t need = nl + (plain ? 3 : 9);
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)v[i];
		need += plain ? 1 + (c == '"' || c == '\\') : is_attr_char(c) ? 1 : 3;
	}
	bool one = need <= room;

	size_t sec = 0, k = 0, k0 = 0;
	for (size_t i = 0; i <= n;) {
		if (k == 0) {
			/* start a token */
			int w;
			if (one)
				w = snprintf(tok, sizeof tok, "%s%s", name,
					     plain ? "=\"" : "*=utf-8''");
			else if (plain)
				w = snprintf(tok, sizeof tok, "%s*%zu=\"", name, sec);
			else
				w = snprintf(tok, sizeof tok, "%s*%zu*=%s", name, sec,
					     sec == 0 ? "utf-8''" : "");
			k = k0 = (size_t)w;
		}
		/* the next unit: one character, quoted or %-encoded */
		char unit[16];
		size_t ul = 0, adv = 0;
		if (i < n) {
			adv = plain ? 1 : char_len(v + i, n - i);
			for (size_t j = 0; j < adv; j++) {
				unsigned char c = (unsigned char)v[i + j];
				if (plain) {
					if (c == '"' || c == '\\')
						unit[ul++] = '\\';
					unit[ul++] = (char)c;
				} else if (is_attr_char(c)) {
					unit[ul++] = (char)c;
				} else {
					unit[ul++] = '%';
					unit[ul++] = hex[c >> 4];
					unit[ul++] = hex[c & 15];
				}
			}
		}
		size_t close = plain ? 1 : 0;
		bool last = i >= n;
		/* (an empty section always takes its unit: progress) */
		if (!last && (k + ul + close <= room || k == k0)) {
			memcpy(tok + k, unit, ul);
			k += ul;
			i += adv;
			continue;
		}
		/* end this token: at the end of the value, or when full */
		if (plain)
			tok[k++] = '"';
		hw_token(h, tok, k, last ? tail : ";");
		k = 0;
		sec++;
		if (last)
			break;
	}
}

/* Content type of an attachment without one (compose.h). */
static const char *guess_type(const unsigned char *d, size_t n, bool *text_r)
{
	static const struct {
		const char *magic;
		size_t len;
		const char *type;
	} t[] = {
		{ "%PDF-", 5, "application/pdf" },
		{ "\x89PNG\r\n\x1a\n", 8, "image/png" },
		{ "\xff\xd8\xff", 3, "image/jpeg" },
		{ "GIF87a", 6, "image/gif" },
		{ "GIF89a", 6, "image/gif" },
		{ "PK\x03\x04", 4, "application/zip" },
		{ "PK\x05\x06", 4, "application/zip" },
		{ "\x1f\x8b", 2, "application/gzip" },
	};
	*text_r = false;
	for (size_t i = 0; i < ARRAY_LEN(t); i++)
		if (n >= t[i].len && memcmp(d, t[i].magic, t[i].len) == 0)
			return t[i].type;
	if (!has_nul((const char *)d, n) && mutf7_utf8_valid((const char *)d, n)) {
		*text_r = true;
		return "text/plain";
	}
	return "application/octet-stream";
}

/* A message/rfc822 part: the message itself, line ends made CR LF. */
static const char *rfc822_part(const struct compose_attachment *a, struct part *p)
{
	struct out ob = { &p->body, false };
	struct hw h = { .b = &p->head };
	bool named = a->filename != NULL && a->filename[0] != '\0';
	bool eight = false;
	for (size_t i = 0; i < a->len && !eight; i++)
		eight = a->data[i] >= 0x80;
	hw_begin(&h, "Content-Type");
	hw_token(&h, "message/rfc822", 14, "");
	hw_end(&h);
	hw_begin(&h, "Content-Transfer-Encoding");
	hw_token(&h, eight ? "8bit" : "7bit", 4, "");
	hw_end(&h);
	hw_begin(&h, "Content-Disposition");
	hw_token(&h, named ? "attachment" : "inline", named ? 10 : 6, named ? ";" : "");
	if (named)
		put_param(&h, "filename", a->filename, "");
	hw_end(&h);
	const char *d = (const char *)a->data;
	size_t pos = 0, ls, le;
	while (next_line(d, a->len, &pos, &ls, &le)) {
		put(&ob, d + ls, le - ls);
		put(&ob, "\r\n", 2);
	}
	return h.fail || ob.fail ? too_large : NULL;
}

static const char *att_part(const struct compose_attachment *a, struct part *p)
{
	if (a->content_type != NULL && is_rfc822(a->content_type))
		return rfc822_part(a, p);
	struct out ob = { &p->body, false };
	struct hw h = { .b = &p->head };
	bool text = false;
	const char *type = a->content_type;
	if (type == NULL)
		type = guess_type(a->data, a->len, &text);
	bool named = a->filename != NULL && a->filename[0] != '\0';

	hw_begin(&h, "Content-Type");
	hw_token(&h, type, strlen(type), text || named ? ";" : "");
	if (text)
		hw_token(&h, "charset=utf-8", 13, named ? ";" : "");
	if (named)
		put_param(&h, "name", a->filename, "");
	hw_end(&h);
	hw_begin(&h, "Content-Transfer-Encoding");
	hw_token(&h, "base64", 6, "");
	hw_end(&h);
	hw_begin(&h, "Content-Disposition");
	hw_token(&h, "attachment", 10, named ? ";" : "");
	if (named)
		put_param(&h, "filename", a->filename, "");
	hw_end(&h);
	b64_encode(a->data, a->len, &ob);
	return h.fail || ob.fail ? too_large : NULL;
}

static bool occurs(const struct buf *b, const char *d, size_t n)
{
	return b->len >= n && memmem(b->data, b->len, d, n) != NULL;
}

/* A multipart around kids[0..nk): a boundary whose delimiter "--B" occurs
 * in none of their bytes (RFC 2046 5.1.1), then each kid as
 * "--B" CRLF head CRLF body, and the close delimiter.  The CR LF before
 * every delimiter belongs to it, so a body keeps its own final line end. */
static const char *multipart(const char *subtype, const char *prefix, const char *suffix,
			     struct part *kids, size_t nk, struct part *p)
{
	char b[COMPOSE_BOUNDARY_MAX + 8], delim[COMPOSE_BOUNDARY_MAX + 10];
	size_t dl = 0;
	bool ok = false;

	for (int t = 0; t < BOUNDARY_TRIES && !ok; t++) {
		if (prefix != NULL) {
			snprintf(b, sizeof b, "%s%s", prefix, suffix);
		} else {
			b[0] = '=';
			b[1] = '_';
			random_text(b + 2, RANDOM_CHARS);
		}
		dl = (size_t)snprintf(delim, sizeof delim, "--%s", b);
		ok = true;
		for (size_t i = 0; i < nk && ok; i++)
			ok = !occurs(&kids[i].head, delim, dl) &&
			     !occurs(&kids[i].body, delim, dl);
		if (prefix != NULL && !ok)
			return "boundary occurs in the content";
	}
	if (!ok)
		return "no boundary found that is not in the content";

	struct hw h = { .b = &p->head };
	char t[32], bp[COMPOSE_BOUNDARY_MAX + 20];
	int tl = snprintf(t, sizeof t, "multipart/%s", subtype);
	int bl = snprintf(bp, sizeof bp, "boundary=\"%s\"", b);
	hw_begin(&h, "Content-Type");
	hw_token(&h, t, (size_t)tl, ";");
	hw_token(&h, bp, (size_t)bl, "");
	hw_end(&h);

	struct out o = { &p->body, false };
	for (size_t i = 0; i < nk; i++) {
		if (i > 0)
			put(&o, "\r\n", 2);
		put(&o, delim, dl);
		put(&o, "\r\n", 2);
		put(&o, kids[i].head.data, kids[i].head.len);
		put(&o, "\r\n", 2);
		put(&o, kids[i].body.data, kids[i].body.len);
	}
	put(&o, "\r\n", 2);
	put(&o, delim, dl);
	put(&o, "--\r\n", 4);
	return h.fail || o.fail ? too_large : NULL;
}

/* The whole body tree into top. */
static const char *build(const struct compose_msg *m, enum charset cs, struct part *top)
{
	const char *why = NULL;
	size_t nk = 1 + m->natt;
	struct part *kids = xcalloc(nk, sizeof(*kids));
	for (size_t i = 0; i < nk; i++)
		part_init(&kids[i]);

	/* kids[0]: the text, or the alternative of text and html */
	if (m->html != NULL) {
		struct part alt[2];
		part_init(&alt[0]);
		part_init(&alt[1]);
		why = text_part(m->text, m->text_len, "plain", cs, m->flowed, &alt[0]);
		if (why == NULL)
			why = text_part(m->html, m->html_len, "html", CS_UTF8, false, &alt[1]);
		if (why == NULL)
			why = multipart("alternative", m->boundary, ".alt", alt, 2, &kids[0]);
		part_free(&alt[0]);
		part_free(&alt[1]);
	} else {
		why = text_part(m->text, m->text_len, "plain", cs, m->flowed, &kids[0]);
	}
	for (size_t i = 0; i < m->natt && why == NULL; i++)
		why = att_part(&m->att[i], &kids[1 + i]);

	if (why == NULL && m->natt > 0) {
		why = multipart("mixed", m->boundary, ".mix", kids, nk, top);
	} else if (why == NULL) {
		/* the single kid is the top part: hand its buffers over */
		part_free(top);
		*top = kids[0];
		part_init(&kids[0]);
	}
	for (size_t i = 0; i < nk; i++)
		part_free(&kids[i]);
	free(kids);
	return why;
}

int compose_message(const struct compose_msg *m, struct buf *out, const char **why_r)
{
	const char *why_dummy;
	if (why_r == NULL)
		why_r = &why_dummy;
	if (m == NULL || out == NULL) {
		*why_r = "no message";
		return -1;
	}
	enum charset cs;
	const char *why = validate(m, &cs);
	if (why != NULL) {
		*why_r = why;
		return -1;
	}

	struct part top;
	part_init(&top);
	why = build(m, cs, &top);
	size_t start = out->len;
	struct hw h = { .b = out };
	if (why != NULL)
		goto fail;

	char date[DATE_MAX];
	rfc5322_date(m->date, date, sizeof date);
	hw_begin(&h, "Date");
	hw_put(&h, " ", 1);
	hw_put(&h, date, strlen(date));
	hw_end(&h);
	if (put_addrs(&h, "From", &m->from, 1, cs, &why) < 0 ||
	    put_addrs(&h, "To", m->to, m->nto, cs, &why) < 0 ||
	    put_addrs(&h, "Cc", m->cc, m->ncc, cs, &why) < 0 ||
	    put_addrs(&h, "Reply-To", m->reply_to, m->nreply_to, cs, &why) < 0)
		goto fail;
	if (m->subject != NULL && put_subject(&h, m->subject, cs, &why) < 0)
		goto fail;
	if (m->message_id != NULL)
		put_ids(&h, "Message-ID", m->message_id);
	if (m->in_reply_to != NULL)
		put_ids(&h, "In-Reply-To", m->in_reply_to);
	if (m->references != NULL)
		put_ids(&h, "References", m->references);
	for (size_t i = 0; i < m->nextra; i++)
		put_extra(&h, m->extra_headers[i]);
	hw_begin(&h, "MIME-Version");
	hw_token(&h, "1.0", 3, "");
	hw_end(&h);
	hw_put(&h, top.head.data, top.head.len);
	hw_put(&h, "\r\n", 2);
	hw_put(&h, top.body.data, top.body.len);
	if (h.fail || out->len - start > COMPOSE_OUT_MAX) {
		why = too_large;
		goto fail;
	}
	part_free(&top);
	return 0;
fail:
	part_free(&top);
	out->len = start;
	if (out->data != NULL)
		out->data[start] = '\0';
	*why_r = why;
	return -1;
}

/* ---- Message-ID ---- */

/* A host name as the right side of a Message-ID: dot-separated labels of
 * letters, digits, '-' and '_'. */
static bool host_ok(const char *s, size_t n)
{
	if (n == 0 || n > 255 || s[0] == '.' || s[n - 1] == '.')
		return false;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
			  (c >= '0' && c <= '9') || c == '-' || c == '_' ||
			  (c == '.' && s[i + 1] != '.');
		if (!ok)
			return false;
	}
	return true;
}

int compose_message_id(const char *host, char *out, size_t outsz)
{
	size_t n = host ? strnlen(host, 256) : 0;
	if (outsz > 0)
		out[0] = '\0';
	if (!host_ok(host, n) || outsz < RANDOM_CHARS + n + 4)
		return -1;
	char r[RANDOM_CHARS + 1];
	random_text(r, RANDOM_CHARS);
	snprintf(out, outsz, "<%s@%s>", r, host);
	return 0;
}
