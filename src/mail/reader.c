/* reader.c - a message rendered for a terminal; see reader.h.
 *
 * One pass over mime's flat pre-order part array: a part's fate (shown,
 * listed, hidden as an alternative not chosen) depends only on its parent's,
 * which comes first, so no recursion is needed; forwarded messages are
 * closed by a stack of subtree ends, as deep as mime's depth cap.  Every
 * text that reaches the output goes through emit_text(), which is where
 * control characters and invalid UTF-8 are made harmless and where lines
 * are wrapped; nothing else appends message bytes to the output. */
#include "mail/reader.h"

#include <libxml/HTMLparser.h>
#include <libxml/tree.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/util.h"
#include "mail/decode.h"
#include "mail/mutf7.h"
#include "mail/rfc2047.h"

#define TAB_STOP 8
/* A decoded header value: words in stateful charsets can grow a little
 * (4 base64 characters -> 3 bytes -> up to 4.5 UTF-8 bytes); 4x is ample. */
#define HDR_DECODED_MAX (4 * MIME_FIELD_MAX)
/* A file name is cleaned into this much before it is cut for the struct. */
#define NAME_CLEAN_MAX 1024
/* Input bytes decoded at a time when only the decoded size is wanted. */
#define SIZE_CHUNK (16 * 1024)
/* <meta charset> is looked for in this much of an HTML part. */
#define META_SCAN 4096
/* Nested <a> kept for the "text <url>" check (HTML parsers never nest
 * them; a deeper one just gets no URL). */
#define HTML_A_MAX 8
/* Header block indent per level of forwarding, and its cap. */
#define FWD_INDENT 2
#define INDENT_MAX 16

static const char REPL[] = "\xef\xbf\xbd"; /* U+FFFD */

/* ---- the output: sanitising and wrapping ---- */

struct sink {
	struct buf *out;
	size_t limit;  /* out->len never passes this */
	bool full;     /* something did not fit: every later put fails too */
	size_t width;  /* 0: no wrapping */
	size_t indent; /* spaces at the start of each line */
	size_t col;    /* display column on the current line */
	bool bol;      /* nothing (not even the indent) on the current line yet */
};

static void sink_init(struct sink *s, struct buf *out, size_t limit, size_t width)
{
	s->out = out;
	s->limit = limit;
	s->full = false;
	s->width = width;
	s->indent = 0;
	s->col = 0;
	s->bol = true;
}

static int put(struct sink *s, const void *p, size_t n)
{
	if (s->full || n > s->limit - s->out->len || buf_append(s->out, p, n) < 0) {
		s->full = true;
		return -1;
	}
	return 0;
}

static size_t sink_room(const struct sink *s)
{
	return s->limit - s->out->len;
}

static int newline(struct sink *s)
{
	if (put(s, "\n", 1) < 0)
		return -1;
	s->col = 0;
	s->bol = true;
	return 0;
}

static int start_line(struct sink *s)
{
	static const char spaces[INDENT_MAX] = "                ";
	if (!s->bol)
		return 0;
	s->bol = false;
	s->col = s->indent;
	return put(s, spaces, s->indent);
}

enum unit_kind { U_CHAR, U_BLANK, U_TAB, U_NL };

/* One display unit: a character as it is or its visible stand-in. */
struct unit {
	enum unit_kind kind;
	size_t adv;     /* input bytes it stands for */
	size_t len;     /* bytes in b */
	unsigned width; /* columns (U_CHAR, U_BLANK) */
	char b[4];
};

/* Columns of code point cp on a terminal, without the locale (wcwidth()
 * needs a UTF-8 LC_CTYPE): combining marks and zero-width characters 0,
 * East Asian wide and fullwidth ranges 2, else 1.  Wrapping only. */
static unsigned cp_width(uint32_t cp)
{
	if ((cp >= 0x300 && cp <= 0x36f) || (cp >= 0x200b && cp <= 0x200f) ||
	    (cp >= 0xfe00 && cp <= 0xfe0f) || cp == 0xfeff)
		return 0;
	if ((cp >= 0x1100 && cp <= 0x115f) || (cp >= 0x2e80 && cp <= 0xa4cf) ||
	    (cp >= 0xac00 && cp <= 0xd7a3) || (cp >= 0xf900 && cp <= 0xfaff) ||
	    (cp >= 0xfe30 && cp <= 0xfe4f) || (cp >= 0xff00 && cp <= 0xff60) ||
	    (cp >= 0xffe0 && cp <= 0xffe6) || (cp >= 0x1f300 && cp <= 0x1faff) ||
	    (cp >= 0x20000 && cp <= 0x3fffd))
		return 2;
	return 1;
}

/* The unit at s[i..n).  Header text is one line: LF and CR are shown,
 * a tab is a blank.  Body text: LF or CR LF ends a line, a lone CR is
 * shown.  Other C0 controls and DEL: caret form; invalid UTF-8 and C1
 * controls: U+FFFD (one per bad byte). */
static void next_unit(const char *s, size_t n, size_t i, bool header, struct unit *u)
{
	unsigned char c = (unsigned char)s[i];

	u->kind = U_CHAR;
	u->adv = 1;
	u->len = 1;
	u->width = 1;
	u->b[0] = (char)c;
	if (c == ' ' || (c == '\t' && header)) {
		u->kind = U_BLANK;
		u->b[0] = ' ';
		return;
	}
	if (c == '\t') {
		u->kind = U_TAB;
		return;
	}
	if (!header && (c == '\n' || (c == '\r' && i + 1 < n && s[i + 1] == '\n'))) {
		u->kind = U_NL;
		u->adv = c == '\r' ? 2 : 1;
		u->b[0] = '\n';
		return;
	}
	if (c < 0x20 || c == 0x7f) {
		u->b[0] = '^';
		u->b[1] = (char)(c ^ 0x40);
		u->len = 2;
		u->width = 2;
		return;
	}
	if (c < 0x80)
		return;
	size_t k = mutf7_utf8_char_len(s + i, n - i);
	if (k == 0 || (k == 2 && c == 0xc2 && (unsigned char)s[i + 1] < 0xa0)) {
		memcpy(u->b, REPL, 3);
		u->len = 3;
		u->adv = k == 0 ? 1 : 2;
		return;
	}
	uint32_t cp = c & (k == 2 ? 0x1fu : k == 3 ? 0x0fu : 0x07u);
	for (size_t j = 1; j < k; j++)
		cp = (cp << 6) | ((unsigned char)s[i + j] & 0x3fu);
	memcpy(u->b, s + i, k);
	u->len = k;
	u->adv = k;
	u->width = cp_width(cp);
}

static int put_unit(struct sink *s, const struct unit *u)
{
	if (start_line(s) < 0)
		return -1;
	unsigned w = u->width;
	if (u->kind == U_TAB)
		w = TAB_STOP - (unsigned)(s->col % TAB_STOP);
	s->col += w;
	return put(s, u->b, u->len);
}

static bool is_blank_unit(const struct unit *u)
{
	return u->kind == U_BLANK || u->kind == U_TAB;
}

/* Write text[0..n) safely, wrapped at s->width: a blank run followed by a
 * word that would pass the width becomes a line break; a word wider than
 * the line is broken between characters.  Each round consumes at least
 * one unit. */
static int emit_text(struct sink *s, const char *text, size_t n, bool header)
{
	size_t i = 0;
	struct unit u;

	while (i < n) {
		next_unit(text, n, i, header, &u);
		if (u.kind == U_NL) {
			if (newline(s) < 0)
				return -1;
			i += u.adv;
			continue;
		}
		size_t col = s->bol ? s->indent : s->col;
		size_t be = i, sw = 0;
		while (be < n) {
			next_unit(text, n, be, header, &u);
			if (!is_blank_unit(&u))
				break;
			sw += u.kind == U_TAB ? TAB_STOP - (col + sw) % TAB_STOP : 1;
			be += u.adv;
		}
		size_t we = be, ww = 0;
		while (we < n) {
			next_unit(text, n, we, header, &u);
			if (is_blank_unit(&u) || u.kind == U_NL)
				break;
			ww += u.width;
			we += u.adv;
		}
		bool fresh = col <= s->indent;
		if (s->width > 0 && !fresh && ww > 0 && col + sw + ww > s->width) {
			if (newline(s) < 0)
				return -1;
		} else if (ww > 0 || s->width == 0 || col + sw <= s->width) {
			for (size_t j = i; j < be; j += u.adv) {
				next_unit(text, n, j, header, &u);
				if (put_unit(s, &u) < 0)
					return -1;
			}
		}
		for (size_t j = be; j < we; j += u.adv) {
			next_unit(text, n, j, header, &u);
			if (s->width > 0 && !s->bol && s->col > s->indent &&
			    s->col + u.width > s->width && newline(s) < 0)
				return -1;
			if (put_unit(s, &u) < 0)
				return -1;
		}
		i = we;
	}
	return 0;
}

static int emit_str(struct sink *s, const char *str)
{
	return emit_text(s, str, strlen(str), false);
}

static int end_line(struct sink *s)
{
	return s->bol ? 0 : newline(s);
}

/* Make sure an empty line separates what comes next from what was
 * written since out offset start. */
static int blank_line(struct sink *s, size_t start)
{
	if (end_line(s) < 0)
		return -1;
	/* at a line start, so what we wrote ends in LF */
	size_t n = s->out->len;
	if (n - start <= 1 || s->out->data[n - 2] == '\n')
		return 0;
	return newline(s);
}

/* ---- bytes ---- */

static bool has_8bit(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)s[i] >= 0x80)
			return true;
	return false;
}

/* An ISO-2022-JP designation of a double-byte set or of half-width
 * katakana: in 7-bit text nothing else puts these there. */
static bool has_jis_escape(const char *s, size_t n)
{
	for (size_t i = 0; i + 2 < n; i++) {
		if (s[i] != 0x1b)
			continue;
		if ((s[i + 1] == '$' && (s[i + 2] == '@' || s[i + 2] == 'B' || s[i + 2] == '(')) ||
		    (s[i + 1] == '(' && s[i + 2] == 'I'))
			return true;
	}
	return false;
}

/* Append what fits of p[0..n) to dst without splitting a UTF-8 sequence
 * when utf8; -1 when not all of it did. */
static int append_cut(struct buf *dst, const char *p, size_t n, bool utf8)
{
	if (buf_append(dst, p, n) == 0)
		return 0;
	size_t room = buf_room(dst);
	if (utf8)
		while (room > 0 && ((unsigned char)p[room] & 0xc0) == 0x80)
			room--;
	(void)buf_append(dst, p, room);
	return -1;
}

/* UTF-8 as it came, every invalid byte replaced by U+FFFD (counted). */
static int utf8_clean(const char *in, size_t n, struct buf *dst, size_t *replaced)
{
	size_t i = 0, start = 0;
	while (i < n) {
		if ((unsigned char)in[i] < 0x80) {
			i++;
			continue;
		}
		size_t k = mutf7_utf8_char_len(in + i, n - i);
		if (k > 0) {
			i += k;
			continue;
		}
		if (append_cut(dst, in + start, i - start, true) < 0 ||
		    buf_append(dst, REPL, 3) < 0)
			return -1;
		(*replaced)++;
		start = ++i;
	}
	return append_cut(dst, in + start, n - start, true);
}

/* in[0..n) in charset cs to UTF-8 in dst; invalid bytes become U+FFFD and
 * are counted in *replaced.  cs NULL, ASCII, UTF-8 or a charset iconv does
 * not know: the bytes are taken as UTF-8.  -1 when dst filled up (a
 * prefix cut at a character boundary is kept). */
static int to_utf8(const char *cs, const char *in, size_t n, struct buf *dst, size_t *replaced)
{
	struct decode_charset d;
	const char *err;

	*replaced = 0;
	if (cs == NULL || str_ieq(cs, "us-ascii") || str_ieq(cs, "utf-8") || str_ieq(cs, "utf8") ||
	    decode_charset_init(&d, cs, &err) < 0)
		return utf8_clean(in, n, dst, replaced);
	int r = decode_charset(&d, in, n, dst);
	if (r == 0)
		r = decode_charset_finish(&d, dst);
	*replaced = d.replaced;
	decode_charset_free(&d);
	return r;
}

static bool is_iso2022jp(const char *cs)
{
	return cs != NULL && str_iprefix(cs, "iso-2022-jp");
}

/* What 7-bit text with JIS escapes is read as: the label when it names a
 * variant with sets of its own (glibc's ISO-2022-JP-1, -2, -3), else
 * ISO-2022-JP (decode.h's, which has the Windows extensions). */
static const char *jis_charset(const char *cs)
{
	static const char *const own[] = {"iso-2022-jp-1", "iso-2022-jp-2", "iso-2022-jp-3"};
	for (size_t k = 0; cs != NULL && k < ARRAY_LEN(own); k++)
		if (str_ieq(cs, own[k]))
			return cs;
	return "ISO-2022-JP";
}

static bool is_utf8_label(const char *cs)
{
	return str_ieq(cs, "utf-8") || str_ieq(cs, "utf8");
}

/* A label that says what 8-bit text is in: not missing, not US-ASCII (7-bit
 * by definition), not ISO-2022-JP (the same), and known to iconv. */
static bool label_usable(const char *cs)
{
	struct decode_charset d;
	const char *err;

	if (cs == NULL || str_ieq(cs, "us-ascii") || is_iso2022jp(cs))
		return false;
	if (is_utf8_label(cs))
		return true;
	if (decode_charset_init(&d, cs, &err) < 0)
		return false;
	decode_charset_free(&d);
	return true;
}

/* A conversion that only a right guess gives: no private-use character
 * (CP932's user-defined rows) and no C1 control.  s is valid UTF-8. */
static bool plausible(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c == 0xee || (c == 0xef && i + 1 < n && (unsigned char)s[i + 1] <= 0xa3) ||
		    (c == 0xc2 && i + 1 < n && (unsigned char)s[i + 1] < 0xa0))
			return false;
	}
	return true;
}

/* 8-bit text whose label does not say what it is in: the first of cs
 * (when not NULL), UTF-8, EUC-JP and CP932 (Shift_JIS as Windows writes
 * it) that reads all of it, plausibly, is appended to dst (*fit_r true);
 * else nothing is (*fit_r false).  EUC-JP comes before CP932: Shift_JIS
 * text is rarely valid EUC-JP, while EUC-JP text often is valid CP932.
 * -1 when dst filled up. */
static int guess_8bit(const char *cs, const char *in, size_t n, struct buf *dst, bool *fit_r)
{
	const char *const tries[] = {cs, "UTF-8", "EUC-JP", "CP932"};
	size_t rep;

	*fit_r = false;
	for (size_t k = 0; k < ARRAY_LEN(tries); k++) {
		if (tries[k] == NULL)
			continue;
		size_t start = dst->len;
		int r = to_utf8(tries[k], in, n, dst, &rep);
		if (r < 0)
			return r;
		if (rep == 0 && plausible(dst->data + start, dst->len - start)) {
			*fit_r = true;
			return 0;
		}
		dst->len = start;
		if (dst->data != NULL)
			dst->data[start] = '\0';
	}
	return 0;
}

/* The charset named by an HTML <meta> in the first META_SCAN bytes
 * ("charset=" followed by a name, quoted or not) into name; false if none. */
static bool meta_charset(const char *s, size_t n, char name[DECODE_CHARSET_NAME_MAX + 1])
{
	size_t lim = MIN(n, (size_t)META_SCAN);
	for (size_t i = 0; i + 8 < lim; i++) {
		if (!str_nieq(s + i, "charset=", 8))
			continue;
		size_t p = i + 8, k = 0;
		if (p < lim && (s[p] == '"' || s[p] == '\''))
			p++;
		while (p < lim && k < DECODE_CHARSET_NAME_MAX &&
		       ((s[p] >= 'a' && s[p] <= 'z') || (s[p] >= 'A' && s[p] <= 'Z') ||
			(s[p] >= '0' && s[p] <= '9') || strchr("-_.:+", s[p]) != NULL))
			name[k++] = s[p++];
		name[k] = '\0';
		if (k > 0)
			return true;
	}
	return false;
}

/* A text part's bytes (transfer-decoded) to UTF-8 in dst.  The label is
 * trusted except where Japanese mail is known to lie: 7-bit text with
 * ISO-2022-JP escapes is ISO-2022-JP whatever the label, and 8-bit text
 * labelled ISO-2022-JP or US-ASCII (7-bit by definition), or not labelled,
 * or labelled with a charset we do not know, is guess_8bit()'s (UTF-8,
 * EUC-JP or Shift_JIS), else UTF-8 with U+FFFD.  A byte order mark at the
 * start is dropped: it is a signature, not text. */
static int body_to_utf8(const struct mime_part *p, const char *raw, size_t n, bool html,
			struct buf *dst)
{
	const char *cs = mime_param_get(&p->params, "charset");
	char meta[DECODE_CHARSET_NAME_MAX + 1];
	size_t rep, start = dst->len;
	int r;

	if (html && cs == NULL && meta_charset(raw, n, meta))
		cs = meta;
	bool eight = has_8bit(raw, n), fit = false;
	if (!eight && (is_iso2022jp(cs) || has_jis_escape(raw, n))) {
		r = to_utf8(jis_charset(cs), raw, n, dst, &rep);
	} else if (eight && !label_usable(cs)) {
		r = guess_8bit(NULL, raw, n, dst, &fit);
		if (r == 0 && !fit)
			r = to_utf8(is_iso2022jp(cs) ? "ISO-2022-JP" : NULL, raw, n, dst, &rep);
	} else {
		r = to_utf8(cs, raw, n, dst, &rep);
	}
	if (dst->len - start >= 3 && memcmp(dst->data + start, "\xef\xbb\xbf", 3) == 0) {
		memmove(dst->data + start, dst->data + start + 3, dst->len - start - 3);
		dst->len -= 3;
		dst->data[dst->len] = '\0';
	}
	return r;
}

static bool enc_is(const struct mime_part *p, const char *enc)
{
	return p->encoding != NULL && strcmp(p->encoding, enc) == 0;
}

/* p's body decoded from its Content-Transfer-Encoding (unknown ones are
 * taken as identity) into dst; -1 when dst filled up (a prefix is kept). */
static int transfer_decode(const char *msg, const struct mime_part *p, struct buf *dst)
{
	const char *b = msg + p->body_off;
	size_t n = p->body_len;

	if (enc_is(p, "base64")) {
		struct decode_b64 d;
		decode_b64_init(&d);
		return decode_b64(&d, b, n, dst) < 0 || decode_b64_finish(&d, dst) < 0 ? -1 : 0;
	}
	if (enc_is(p, "quoted-printable")) {
		struct decode_qp d;
		decode_qp_init(&d);
		return decode_qp(&d, b, n, dst) < 0 || decode_qp_finish(&d, dst) < 0 ? -1 : 0;
	}
	return append_cut(dst, b, n, false);
}

/* The decoded size of a leaf, decoding SIZE_CHUNK bytes at a time into a
 * small scratch buffer (base64 output is shorter than its input; QP output
 * is at most its input plus the held blanks and an "=X"). */
static size_t decoded_size(const char *msg, const struct mime_part *p)
{
	bool b64 = enc_is(p, "base64");
	if (!b64 && !enc_is(p, "quoted-printable"))
		return p->body_len;
	struct decode_b64 db;
	struct decode_qp dq;
	struct buf scratch;
	size_t total = 0;
	decode_b64_init(&db);
	decode_qp_init(&dq);
	buf_init(&scratch, SIZE_CHUNK + DECODE_QP_WS_MAX + 16);
	for (size_t off = 0; off < p->body_len; off += SIZE_CHUNK) {
		const char *in = msg + p->body_off + off;
		size_t k = MIN((size_t)SIZE_CHUNK, p->body_len - off);
		if (b64)
			(void)decode_b64(&db, in, k, &scratch);
		else
			(void)decode_qp(&dq, in, k, &scratch);
		total += scratch.len;
		buf_reset(&scratch);
	}
	if (b64)
		(void)decode_b64_finish(&db, &scratch);
	else
		(void)decode_qp_finish(&dq, &scratch);
	total += scratch.len;
	buf_free(&scratch);
	return total;
}

/* ---- HTML to text ---- */

struct html_out {
	struct buf *dst;
	bool full;
	unsigned nl_want; /* line ends wanted before the next text: 2 = an empty line */
	unsigned nl_have; /* line ends at the end of dst */
	bool blank;       /* collapsed whitespace pending */
	unsigned pre;     /* <pre> depth: whitespace kept inside */
	size_t na;        /* <a> depth */
	size_t a_start[HTML_A_MAX];
};

static void h_put(struct html_out *h, const char *p, size_t n)
{
	if (n == 0 || h->full)
		return;
	if (append_cut(h->dst, p, n, true) < 0) {
		h->full = true;
		return;
	}
	size_t t = 0;
	while (t < n && p[n - 1 - t] == '\n')
		t++;
	h->nl_have = t == n ? h->nl_have + (unsigned)t : (unsigned)t;
}

/* Pending line ends or blank, before text. */
static void h_flush(struct html_out *h)
{
	if (h->dst->len > 0 && h->nl_want > h->nl_have) {
		static const char nls[] = "\n\n";
		h_put(h, nls, h->nl_want - h->nl_have);
		h->blank = false;
	} else if (h->blank && h->dst->len > 0 && h->nl_have == 0) {
		h_put(h, " ", 1);
	}
	h->nl_want = 0;
	h->blank = false;
}

static void h_write(struct html_out *h, const char *p, size_t n)
{
	h_flush(h);
	h_put(h, p, n);
}

static void h_want(struct html_out *h, unsigned n)
{
	h->nl_want = MAX(h->nl_want, n);
	h->blank = false;
}

static bool html_space(char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f';
}

/* A text node: whitespace runs collapse to one blank outside <pre>. */
static void h_text(struct html_out *h, const char *t, size_t n)
{
	if (h->pre > 0) {
		h_write(h, t, n);
		return;
	}
	size_t i = 0;
	while (i < n) {
		if (html_space(t[i])) {
			h->blank = true;
			i++;
			continue;
		}
		size_t s = i;
		while (i < n && !html_space(t[i]))
			i++;
		h_write(h, t + s, i - s);
	}
}

static bool name_in(const xmlChar *name, const char *const *list, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (xmlStrcasecmp(name, (const xmlChar *)list[i]) == 0)
			return true;
	return false;
}

static const char *const skip_tags[] = {"head", "script", "style", "template", "title"};
static const char *const para_tags[] = {"p", "h1", "h2", "h3", "h4", "h5", "h6",
					"blockquote", "pre", "dl", "address", "figure"};
static const char *const line_tags[] = {"div", "ul", "ol", "table", "tr", "dt", "dd",
					"section", "article", "header", "footer", "nav",
					"main", "aside", "center", "form", "fieldset",
					"caption", "hr", "li", "body", "html"};

static bool tag_is(const xmlNode *n, const char *name)
{
	return xmlStrcasecmp(n->name, (const xmlChar *)name) == 0;
}

/* An element is entered; false when its content is to be skipped. */
static bool h_enter(struct html_out *h, xmlNode *n)
{
	if (name_in(n->name, skip_tags, ARRAY_LEN(skip_tags)))
		return false;
	if (name_in(n->name, para_tags, ARRAY_LEN(para_tags)))
		h_want(h, 2);
	else if (name_in(n->name, line_tags, ARRAY_LEN(line_tags)))
		h_want(h, 1);
	if (tag_is(n, "br")) {
		if (h->dst->len > 0) {
			h->blank = false;
			h_flush(h);
			h_put(h, "\n", 1);
		}
	} else if (tag_is(n, "li")) {
		h_write(h, "- ", 2);
	} else if (tag_is(n, "hr")) {
		h_write(h, "----", 4);
		h_want(h, 1);
	} else if (tag_is(n, "pre")) {
		h->pre++;
	} else if (tag_is(n, "a")) {
		if (h->na < HTML_A_MAX)
			h->a_start[h->na] = h->dst->len;
		h->na++;
	} else if (tag_is(n, "img")) {
		xmlChar *alt = xmlGetProp(n, (const xmlChar *)"alt");
		if (alt != NULL && alt[0] != '\0') {
			h_text(h, "[", 1);
			h_text(h, (const char *)alt, strlen((const char *)alt));
			h_text(h, "]", 1);
		}
		xmlFree(alt);
	}
	return true;
}

/* dst[start..) without surrounding whitespace equals s. */
static bool same_text(const struct buf *dst, size_t start, const char *s)
{
	if (dst->data == NULL)
		return s[0] == '\0';
	const char *p = dst->data + start, *e = dst->data + dst->len;
	while (p < e && html_space(*p))
		p++;
	while (e > p && html_space(e[-1]))
		e--;
	return (size_t)(e - p) == strlen(s) && memcmp(p, s, (size_t)(e - p)) == 0;
}

static void h_leave(struct html_out *h, xmlNode *n)
{
	if (name_in(n->name, skip_tags, ARRAY_LEN(skip_tags)))
		return;
	if (name_in(n->name, para_tags, ARRAY_LEN(para_tags)))
		h_want(h, 2);
	else if (name_in(n->name, line_tags, ARRAY_LEN(line_tags)))
		h_want(h, 1);
	if (tag_is(n, "pre")) {
		if (h->pre > 0)
			h->pre--;
	} else if (tag_is(n, "td") || tag_is(n, "th")) {
		h->blank = true;
	} else if (tag_is(n, "a") && h->na > 0 && --h->na < HTML_A_MAX) {
		xmlChar *href = xmlGetProp(n, (const xmlChar *)"href");
		const char *u = (const char *)href;
		if (u != NULL && u[0] != '\0' && u[0] != '#' && !h->full &&
		    !same_text(h->dst, h->a_start[h->na], u) &&
		    !(str_iprefix(u, "mailto:") && same_text(h->dst, h->a_start[h->na], u + 7))) {
			h->blank = true;
			h_write(h, "<", 1);
			h_put(h, u, strlen(u));
			h_put(h, ">", 1);
		}
		xmlFree(href);
	}
}

/* Text of the HTML document in utf8[0..n) (valid UTF-8) into dst.  The
 * tree is walked through its parent links, so the walk needs no stack and
 * visits each node once on the way down and once on the way up.  When
 * libxml2 gives no tree (empty input), the source is shown. */
static int html_to_text(const char *utf8, size_t n, struct buf *dst)
{
	xmlInitParser();
	htmlDocPtr doc = htmlReadMemory(utf8, (int)n, NULL, "UTF-8",
					HTML_PARSE_NOERROR | HTML_PARSE_NOWARNING |
					HTML_PARSE_NONET | HTML_PARSE_RECOVER |
					HTML_PARSE_IGNORE_ENC);
	if (doc == NULL)
		return append_cut(dst, utf8, n, true);
	struct html_out h = {.dst = dst};
	xmlNode *node = doc->children;
	while (node != NULL) {
		bool down = false;
		if (node->type == XML_ELEMENT_NODE)
			down = h_enter(&h, node);
		else if ((node->type == XML_TEXT_NODE || node->type == XML_CDATA_SECTION_NODE) &&
			 node->content != NULL)
			h_text(&h, (const char *)node->content, strlen((const char *)node->content));
		if (down && node->children != NULL) {
			node = node->children;
			continue;
		}
		/* up until a node has a next sibling */
		while (node != NULL) {
			if (node->type == XML_ELEMENT_NODE)
				h_leave(&h, node);
			if (node->next != NULL) {
				node = node->next;
				break;
			}
			node = node->parent;
			if (node == (xmlNode *)doc)
				node = NULL;
		}
	}
	if (h.dst->len > 0 && h.nl_have == 0)
		h_put(&h, "\n", 1);
	xmlFreeDoc(doc);
	return h.full ? -1 : 0;
}

/* ---- rendering ---- */

struct entry {
	size_t part;
	bool attachment;
};

struct render {
	const char *msg;
	const struct mime_message *m;
	const struct reader_opts *o;
	struct sink s;
	size_t start;       /* out->len when we began */
	bool cut;           /* some input was dropped for a cap */
	size_t nbodies;     /* bodies shown in the current message */
	struct entry *list; /* parts not shown as text, in order */
	size_t nlist;
	const char *name_cs; /* raw 8-bit file names: header_charset() of the top */
};

static bool is_type(const struct mime_part *p, const char *type, const char *subtype)
{
	return strcmp(p->type, type) == 0 && (subtype == NULL || strcmp(p->subtype, subtype) == 0);
}

static bool disposed_attachment(const struct mime_part *p)
{
	return p->disposition != NULL && strcmp(p->disposition, "attachment") == 0;
}

/* A leaf shown as text: a text part not marked as an attachment, or a
 * multipart without usable boundary (its body is all there is). */
static bool is_body_leaf(const struct mime_part *p)
{
	if (disposed_attachment(p))
		return false;
	return is_type(p, "text", NULL) ||
	       (mime_part_is_multipart(p) && (p->flags & MIME_PART_NO_BOUNDARY));
}

static bool has_content(const char *msg, const struct mime_part *p)
{
	for (size_t i = 0; i < p->body_len; i++)
		if (!html_space(msg[p->body_off + i]))
			return true;
	return false;
}

/* The child of alternative part i to show: the first non-empty
 * text/plain, else the first text/html, else the first multipart (a
 * multipart/related holding the HTML), else the first child. */
static size_t choose_alternative(const struct render *r, size_t i)
{
	const struct mime_message *m = r->m;
	size_t plain = MIME_NONE, html = MIME_NONE, multi = MIME_NONE;
	for (size_t c = m->parts[i].first_child; c != MIME_NONE; c = m->parts[c].next_sibling) {
		const struct mime_part *p = &m->parts[c];
		if (plain == MIME_NONE && is_type(p, "text", "plain") && has_content(r->msg, p))
			plain = c;
		else if (html == MIME_NONE && is_type(p, "text", "html"))
			html = c;
		else if (multi == MIME_NONE && mime_part_is_multipart(p))
			multi = c;
	}
	if (plain != MIME_NONE)
		return plain;
	if (html != MIME_NONE)
		return html;
	return multi != MIME_NONE ? multi : m->parts[i].first_child;
}

/* The charset that raw 8-bit bytes in the header of message part i are
 * taken to be in first: the label of its first text part, when that names
 * an 8-bit charset we know; NULL when there is none (guess_8bit() guesses). */
static const char *header_charset(const struct mime_message *m, size_t i)
{
	for (size_t k = i; k < m->parts[i].subtree_end; k++) {
		const struct mime_part *p = &m->parts[k];
		if (k > i && (p->flags & MIME_PART_MESSAGE))
			break; /* a forward has its own */
		const char *cs = mime_param_get(&p->params, "charset");
		if (is_type(p, "text", NULL) && cs != NULL)
			return label_usable(cs) && !is_utf8_label(cs) ? cs : NULL;
	}
	return NULL;
}

/* A header value (raw[0..n), folding kept or not) made UTF-8 into dst, a
 * prefix when it does not fit: raw ISO-2022-JP, or raw 8-bit bytes that are
 * not UTF-8 (in cs, else guess_8bit()'s guess, else as they are), then
 * encoded words. */
static void header_text(const char *raw, size_t n, const char *cs, struct buf *dst)
{
	char *u = mime_unfold(raw, n, MIME_FIELD_MAX, NULL);
	size_t ul = strlen(u);
	struct buf conv;
	size_t rep;
	bool fit = false;

	buf_init(&conv, HDR_DECODED_MAX);
	if (!has_8bit(u, ul) && has_jis_escape(u, ul)) {
		(void)to_utf8("ISO-2022-JP", u, ul, &conv, &rep);
		fit = true;
	} else if (has_8bit(u, ul) && !mutf7_utf8_valid(u, ul)) {
		(void)guess_8bit(cs, u, ul, &conv, &fit);
	}
	if (fit)
		(void)rfc2047_decode(conv.data != NULL ? conv.data : "", conv.len, dst);
	else
		(void)rfc2047_decode(u, ul, dst);
	buf_free(&conv);
	free(u);
}

static int emit_field(struct render *r, const char *name, size_t name_len, const char *v,
		      size_t vlen, const char *cs)
{
	struct buf dec;
	buf_init(&dec, HDR_DECODED_MAX);
	header_text(v, vlen, cs, &dec);
	int ret = 0;
	if ((name_len > 0 && (emit_text(&r->s, name, name_len, true) < 0 ||
			      emit_text(&r->s, ": ", 2, true) < 0)) ||
	    emit_text(&r->s, dec.data != NULL ? dec.data : "", dec.len, true) < 0 ||
	    newline(&r->s) < 0)
		ret = -1;
	buf_free(&dec);
	return ret;
}

static bool field_named(const struct mime_field *f, const char *name)
{
	size_t n = strlen(name);
	return f->name_len == n && str_nieq(f->name, name, n);
}

/* The header block of message part p, then an empty line. */
static int emit_header(struct render *r, const struct mime_part *p)
{
	static const char *const usual[] = {"Date", "From", "To", "Cc", "Subject"};
	const char *h = r->msg + p->hdr_off;
	const char *cs = header_charset(r->m, (size_t)(p - r->m->parts));
	size_t before = r->s.out->len, pos;
	struct mime_field f;

	if (r->o->all_headers) {
		pos = 0;
		while (mime_header_next(h, p->hdr_len, &pos, &f))
			if (emit_field(r, f.name, f.name_len, f.value, f.value_len, cs) < 0)
				return -1;
	} else {
		for (size_t k = 0; k < ARRAY_LEN(usual); k++) {
			pos = 0;
			while (mime_header_next(h, p->hdr_len, &pos, &f)) {
				if (!field_named(&f, usual[k]))
					continue;
				if (emit_field(r, usual[k], strlen(usual[k]), f.value,
					       f.value_len, cs) < 0)
					return -1;
				break;
			}
		}
	}
	return r->s.out->len > before ? newline(&r->s) : 0;
}

/* A text leaf: decoded, converted, HTML made text, written. */
static int emit_body(struct render *r, const struct mime_part *p)
{
	bool html = is_type(p, "text", "html") && !r->o->html_raw;
	size_t room = sink_room(&r->s);
	struct buf raw, text;
	bool html_cut = false;

	if (r->s.full)
		return -1;
	if (r->nbodies++ > 0 && blank_line(&r->s, r->start) < 0)
		return -1;
	buf_init(&raw, html ? READER_HTML_MAX : room);
	if (transfer_decode(r->msg, p, &raw) < 0) {
		if (html)
			html_cut = true;
		else
			r->cut = true;
	}
	/* HTML: at most 4 UTF-8 bytes per input byte go to libxml2 */
	buf_init(&text, html ? 4 * (size_t)READER_HTML_MAX : room);
	if (body_to_utf8(p, raw.data != NULL ? raw.data : "", raw.len, html, &text) < 0)
		r->cut = true;
	buf_free(&raw);
	if (html) {
		struct buf plain;
		buf_init(&plain, room);
		if (html_to_text(text.data != NULL ? text.data : "", text.len, &plain) < 0)
			r->cut = true;
		buf_free(&text);
		text = plain;
	}
	int ret = emit_text(&r->s, text.data != NULL ? text.data : "", text.len, false);
	buf_free(&text);
	if (ret == 0 && html_cut)
		ret = end_line(&r->s) < 0 || emit_str(&r->s, "[HTML part cut at 4 MiB]") < 0 ? -1 : 0;
	return ret < 0 ? -1 : end_line(&r->s);
}

static int open_forward(struct render *r, const struct mime_part *p, unsigned level)
{
	const char *sec = r->m->parts[p->parent].section;
	if (blank_line(&r->s, r->start) < 0 ||
	    emit_str(&r->s, "---------- Forwarded message (part ") < 0 ||
	    emit_str(&r->s, sec) < 0 || emit_str(&r->s, ") ----------\n") < 0)
		return -1;
	r->s.indent = MIN((size_t)level * FWD_INDENT, (size_t)INDENT_MAX);
	int ret = emit_header(r, p);
	r->s.indent = 0;
	r->nbodies = 0;
	return ret;
}

static int close_forward(struct render *r)
{
	r->nbodies = 1; /* what follows in the outer message is set apart */
	return blank_line(&r->s, r->start) < 0 ||
	       emit_str(&r->s, "---------- End of forwarded message ----------\n") < 0 ? -1 : 0;
}

static const char *part_name(const struct mime_part *p)
{
	const char *n = mime_param_get(&p->disp_params, "filename");
	return n != NULL ? n : mime_param_get(&p->params, "name");
}

/* The file name of p, decoded like a header value in charset cs (raw
 * 8-bit names) and sanitised, into name (cut to size at a character
 * boundary). */
static void clean_name(const struct mime_part *p, const char *cs, char *name, size_t size)
{
	const char *raw = part_name(p);
	name[0] = '\0';
	if (raw == NULL)
		return;
	struct buf dec, clean;
	struct sink s;
	buf_init(&dec, NAME_CLEAN_MAX);
	buf_init(&clean, NAME_CLEAN_MAX);
	header_text(raw, strlen(raw), cs, &dec);
	sink_init(&s, &clean, NAME_CLEAN_MAX, 0);
	(void)emit_text(&s, dec.data != NULL ? dec.data : "", dec.len, true);
	size_t n = MIN(clean.len, size - 1);
	while (n > 0 && n < clean.len && ((unsigned char)clean.data[n] & 0xc0) == 0x80)
		n--;
	if (n > 0)
		memcpy(name, clean.data, n);
	name[n] = '\0';
	buf_free(&dec);
	buf_free(&clean);
}

static void fill_info(const struct render *r, const struct entry *e, struct reader_part_info *pi)
{
	const struct mime_part *p = &r->m->parts[e->part];
	snprintf(pi->section, sizeof pi->section, "%s", p->section);
	snprintf(pi->type, sizeof pi->type, "%s/%s", p->type, p->subtype);
	clean_name(p, r->name_cs, pi->filename, sizeof pi->filename);
	pi->size = p->first_child != MIME_NONE ? p->body_len : decoded_size(r->msg, p);
	pi->attachment = e->attachment;
}

/* The list of parts not shown; parts[] is filled even when the output is
 * already full, so that a part can be saved from a message too big to show. */
static void emit_list(struct render *r, struct reader_part_info *parts, size_t nparts_max,
		      size_t *nparts_r)
{
	struct reader_part_info *pi = xmalloc(sizeof(*pi));
	struct sink *s = &r->s;

	if (r->nlist > 0 && blank_line(s, r->start) == 0)
		(void)emit_str(s, "Attachments:\n");
	for (size_t i = 0; i < r->nlist; i++) {
		char size[64], head[READER_SECTION_MAX + 160];
		fill_info(r, &r->list[i], pi);
		if (parts != NULL && i < nparts_max) {
			parts[i] = *pi;
			*nparts_r = i + 1;
		}
		if (s->full)
			continue;
		double sz = (double)pi->size;
		if (pi->size < 1024)
			snprintf(size, sizeof size, "%zu bytes", pi->size);
		else if (pi->size < 1024 * 1024)
			snprintf(size, sizeof size, "%.1f KiB", sz / 1024);
		else
			snprintf(size, sizeof size, "%.1f MiB", sz / (1024 * 1024));
		snprintf(head, sizeof head, "  [%s] %s", pi->section, pi->type);
		(void)emit_text(s, head, strlen(head), true);
		if (pi->filename[0] != '\0') {
			(void)emit_text(s, " \"", 2, true);
			(void)emit_text(s, pi->filename, strlen(pi->filename), true);
			(void)emit_text(s, "\"", 1, true);
		}
		(void)emit_text(s, " (", 2, true);
		(void)emit_text(s, size, strlen(size), true);
		if (!pi->attachment)
			(void)emit_text(s, ", alternative", 13, true);
		(void)emit_text(s, ")", 1, true);
		(void)newline(s);
	}
	free(pi);
}

static void list_add(struct render *r, size_t i, bool attachment)
{
	r->list[r->nlist].part = i;
	r->list[r->nlist].attachment = attachment;
	r->nlist++;
}

/* The walk over the part array.  hidden[i]: part i is inside an
 * alternative that was not chosen; chosen[i]: for an alternative, its
 * child to show.  fwd_end[]: where each open forwarded message's subtree
 * ends (one per message level, so at most MIME_DEPTH_MAX + 1).  The walk
 * goes on once the output is full (writes then fail at once), so that the
 * part list is complete. */
static void render_parts(struct render *r)
{
	const struct mime_message *m = r->m;
	size_t n = m->n_parts;
	bool *hidden = xcalloc(n, sizeof(*hidden));
	size_t *chosen = xreallocarray(NULL, n, sizeof(*chosen));
	size_t fwd_end[MIME_DEPTH_MAX + 2];
	unsigned nfwd = 0;

	for (size_t i = 0; i < n; i++) {
		const struct mime_part *p = &m->parts[i];
		chosen[i] = MIME_NONE;
		while (nfwd > 0 && i >= fwd_end[nfwd - 1]) {
			nfwd--;
			(void)close_forward(r);
		}
		if (p->parent != MIME_NONE)
			hidden[i] = hidden[p->parent] ||
				    (chosen[p->parent] != MIME_NONE && chosen[p->parent] != i);
		if ((p->flags & MIME_PART_MESSAGE) && !hidden[i]) {
			if (i == 0) {
				(void)emit_header(r, p);
			} else if (nfwd < ARRAY_LEN(fwd_end)) {
				fwd_end[nfwd++] = p->subtree_end;
				(void)open_forward(r, p, nfwd);
			}
		}
		if (p->first_child != MIME_NONE) {
			if (is_type(p, "multipart", "alternative"))
				chosen[i] = choose_alternative(r, i);
			else if (mime_part_is_message(p))
				list_add(r, i, true); /* shown inline, and saveable */
			continue;
		}
		if (!hidden[i] && is_body_leaf(p))
			(void)emit_body(r, p);
		else
			list_add(r, i, !hidden[i] || disposed_attachment(p));
	}
	while (nfwd > 0) {
		nfwd--;
		(void)close_forward(r);
	}
	free(hidden);
	free(chosen);
}

int reader_render(const char *msg, size_t len, const struct reader_opts *o, struct buf *out,
		  struct reader_part_info *parts, size_t nparts_max, size_t *nparts_r)
{
	static const struct reader_opts defaults = {0};
	const size_t mark = sizeof(READER_TRUNCATED_MARK) - 1;
	size_t dummy;

	if (nparts_r == NULL)
		nparts_r = &dummy;
	*nparts_r = 0;
	if (msg == NULL)
		len = 0;
	struct render r = {.msg = msg != NULL ? msg : "", .o = o != NULL ? o : &defaults};
	r.start = out->len;
	/* keep room for the mark, so a cut rendering still says it was cut */
	size_t room = MIN(buf_room(out), (size_t)READER_OUT_MAX);
	room = room > mark ? room - mark : 0;
	sink_init(&r.s, out, out->len + room, r.o->width);
	struct mime_message *m = mime_parse(r.msg, len, NULL);
	r.m = m;
	r.list = xreallocarray(NULL, m->n_parts, sizeof(*r.list));
	r.name_cs = header_charset(m, 0);

	render_parts(&r);
	emit_list(&r, parts, nparts_max, nparts_r);
	int ret = 0;
	if (r.cut || r.s.full) {
		/* the mark without its LF when we are at a line start already */
		r.s.full = false;
		r.s.limit = MIN(out->max, out->len + mark);
		size_t skip = r.s.bol ? 1 : 0;
		(void)put(&r.s, &READER_TRUNCATED_MARK[skip], mark - skip);
		ret = -1;
	}
	free(r.list);
	mime_message_free(&m);
	return ret;
}

int reader_header_text(const char *raw, size_t n, const char *charset, bool spaces,
		       struct buf *out)
{
	struct buf dec;
	struct sink s;

	buf_init(&dec, HDR_DECODED_MAX);
	header_text(raw != NULL ? raw : "", raw != NULL ? n : 0, charset, &dec);
	for (size_t i = 0; spaces && i < dec.len; i++)
		if ((unsigned char)dec.data[i] < 0x20 || dec.data[i] == 0x7f)
			dec.data[i] = ' ';
	sink_init(&s, out, out->len + buf_room(out), 0);
	int ret = emit_text(&s, dec.data != NULL ? dec.data : "", dec.len, true);
	buf_free(&dec);
	return ret;
}

int reader_part_bytes(const char *msg, size_t len, const char *section, struct buf *out)
{
	if (msg == NULL) {
		msg = "";
		len = 0;
	}
	if (section == NULL || section[0] == '\0')
		return 0;
	struct mime_message *m = mime_parse(msg, len, NULL);
	const struct mime_part *p = mime_find_section(m, section);
	int ret = 0;
	if (p != NULL) {
		if (p->first_child == MIME_NONE)
			ret = transfer_decode(msg, p, out) < 0 ? -1 : 1;
		else
			ret = append_cut(out, msg + p->body_off, p->body_len, false) < 0 ? -1 : 1;
	}
	mime_message_free(&m);
	return ret;
}
