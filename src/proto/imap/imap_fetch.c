/* imap_fetch.c - FETCH response rendering; see imap_fetch.h for the contract.
 *
 * Writers share a small struct wr: the first append that fails marks it
 * full and later appends do nothing, so a caller checks once and rolls the
 * output back to where it started.  Address lists are tokenised into an
 * array and read element by element (groups need one token of look-ahead,
 * nothing more); BODYSTRUCTURE walks the pre-order part array, opening a
 * part when its index comes up and closing its ancestors through the parent
 * links once the index passes their subtree_end. */
#include "proto/imap/imap_fetch.h"

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/util.h"
#include "mail/decode.h"
#include "mail/mutf7.h"
#include "mail/rfc2047.h"

#define EMPTY_BODY "(\"TEXT\" \"PLAIN\" (\"CHARSET\" \"US-ASCII\") NIL NIL \"7BIT\" 0 0)"
#define NIL_ENVELOPE "(NIL NIL NIL NIL NIL NIL NIL NIL NIL NIL)"

static void buf_cut(struct buf *b, size_t len)
{
	b->len = len;
	if (b->data != NULL)
		b->data[len] = '\0';
}

/* ---- strings ---- */

static bool is_atom_char(unsigned char c)
{
	return c > 0x20 && c < 0x7f && strchr("(){%*\"\\]", c) == NULL;
}

static bool quotable(const char *s, size_t len, bool utf8)
{
	bool high = false;

	if (len > IMAP_QUOTED_MAX)
		return false;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c >= 0x80)
			high = true;
		else if ((c < 0x20 && c != '\t') || c == 0x7f)
			return false;
	}
	return !high || (utf8 && mutf7_utf8_valid(s, len));
}

static int write_quoted(struct buf *out, const char *s, size_t len)
{
	size_t save = out->len;

	if (buf_append(out, "\"", 1) < 0)
		return -1;
	size_t i = 0;
	while (i < len) {
		size_t run = 0;
		while (i + run < len && s[i + run] != '"' && s[i + run] != '\\')
			run++;
		if (buf_append(out, s + i, run) < 0)
			goto full;
		i += run;
		if (i < len) {
			char esc[2] = {'\\', s[i]};
			if (buf_append(out, esc, 2) < 0)
				goto full;
			i++;
		}
	}
	if (buf_append(out, "\"", 1) == 0)
		return 0;
full:
	buf_cut(out, save);
	return -1;
}

int imap_write_literal(struct buf *out, const char *s, size_t len)
{
	size_t save = out->len;

	if (buf_printf(out, "{%zu}\r\n", len) < 0 || buf_append(out, s, len) < 0) {
		buf_cut(out, save);
		return -1;
	}
	return 0;
}

int imap_write_literal8(struct buf *out, const char *s, size_t len)
{
	size_t save = out->len;

	if (memchr(s, '\0', len) == NULL)
		return imap_write_literal(out, s, len);
	if (buf_printf(out, "~{%zu}\r\n", len) < 0 || buf_append(out, s, len) < 0) {
		buf_cut(out, save);
		return -1;
	}
	return 0;
}

int imap_write_string_mode(struct buf *out, const char *s, size_t len, bool utf8)
{
	if (quotable(s, len, utf8))
		return write_quoted(out, s, len);
	return imap_write_literal(out, s, len);
}

int imap_write_nstring_mode(struct buf *out, const char *s, size_t len, bool utf8)
{
	if (s == NULL)
		return buf_append(out, "NIL", 3);
	return imap_write_string_mode(out, s, len, utf8);
}

int imap_write_string(struct buf *out, const char *s, size_t len)
{
	return imap_write_string_mode(out, s, len, true);
}

int imap_write_nstring(struct buf *out, const char *s, size_t len)
{
	return imap_write_nstring_mode(out, s, len, true);
}

int imap_write_astring(struct buf *out, const char *s, size_t len)
{
	size_t i = 0;

	while (i < len && (is_atom_char((unsigned char)s[i]) || s[i] == ']'))
		i++;
	/* "NIL" as an atom would read as nil */
	if (len > 0 && i == len && !(len == 3 && str_nieq(s, "NIL", 3)))
		return buf_append(out, s, len);
	return imap_write_string_mode(out, s, len, false);
}

/* ---- a writer that fails once ---- */

struct wr {
	struct buf *out;
	bool full;
};

static void w_raw(struct wr *w, const char *s)
{
	if (!w->full && buf_append_str(w->out, s) < 0)
		w->full = true;
}

static void w_num(struct wr *w, size_t n)
{
	if (!w->full && buf_printf(w->out, "%zu", n) < 0)
		w->full = true;
}

static void w_nstr(struct wr *w, const char *s, size_t len, bool utf8)
{
	if (!w->full && imap_write_nstring_mode(w->out, s, len, utf8) < 0)
		w->full = true;
}

static void w_nstrz(struct wr *w, const char *s, bool utf8)
{
	w_nstr(w, s, s != NULL ? strlen(s) : 0, utf8);
}

/* A string with its ASCII letters upper-cased. */
static void w_upper(struct wr *w, const char *s)
{
	char *u = xstrdup(s);
	for (char *c = u; *c != '\0'; c++) {
		if (*c >= 'a' && *c <= 'z')
			*c = (char)(*c - 'a' + 'A');
	}
	w_nstrz(w, u, false);
	free(u);
}

/* ---- address lists ---- */

enum tok_kind {
	TOK_WORD,
	TOK_QUOTED,   /* "..." with its quotes (the closing one may be missing) */
	TOK_COMMENT,  /* (...) with its parentheses */
	TOK_LITERAL,  /* [...] with its brackets */
	TOK_SPECIAL,  /* one of < > @ , ; : . */
};

struct tok {
	enum tok_kind kind;
	char c;       /* TOK_SPECIAL */
	bool ws;      /* blanks or a comment before it */
	bool closed;  /* QUOTED, COMMENT, LITERAL: the closing character is there */
	size_t off, len;
};

struct toks {
	struct tok *v;
	size_t n, cap;
};

static void toks_add(struct toks *t, enum tok_kind kind, char c, bool ws, bool closed,
		     size_t off, size_t len)
{
	if (t->n == t->cap) {
		t->cap = t->cap == 0 ? 16 : t->cap * 2;
		t->v = xreallocarray(t->v, t->cap, sizeof(*t->v));
	}
	t->v[t->n++] = (struct tok){kind, c, ws, closed, off, len};
}

static bool addr_special(char c)
{
	return c != '\0' && strchr("()<>@,;:\".[", c) != NULL;
}

/* Lenient RFC 5322 lexer: unterminated quotes, comments and literals run to
 * the end; stray ']' and '\' are word characters.  Comments nest, counted. */
static void tokenise(const char *v, size_t n, struct toks *t)
{
	size_t i = 0;
	bool ws = false;

	while (i < n) {
		char c = v[i];
		size_t start = i;
		enum tok_kind kind;
		bool closed = true;
		if (c == ' ' || c == '\t') {
			ws = true;
			i++;
			continue;
		}
		if (c == '"' || c == '[') {
			char close = c == '"' ? '"' : ']';
			kind = c == '"' ? TOK_QUOTED : TOK_LITERAL;
			i++;
			while (i < n && v[i] != close)
				i += v[i] == '\\' && i + 1 < n ? 2 : 1;
			closed = i < n;
			if (closed)
				i++;
		} else if (c == '(') {
			size_t depth = 0;
			kind = TOK_COMMENT;
			closed = false;
			while (i < n) {
				if (v[i] == '\\' && i + 1 < n) {
					i += 2;
					continue;
				}
				if (v[i] == '(')
					depth++;
				else if (v[i] == ')' && --depth == 0) {
					i++;
					closed = true;
					break;
				}
				i++;
			}
		} else if (c != ')' && addr_special(c)) {
			kind = TOK_SPECIAL;
			i++;
		} else {
			kind = TOK_WORD;
			i++;  /* a stray ')' is a word too */
			while (i < n && v[i] != ' ' && v[i] != '\t' && !addr_special(v[i]))
				i++;
		}
		toks_add(t, kind, kind == TOK_SPECIAL ? c : '\0', ws, closed, start, i - start);
		ws = kind == TOK_COMMENT;
	}
}

static bool tok_is(const struct tok *t, char c)
{
	return t->kind == TOK_SPECIAL && t->c == c;
}

/* Append s[0..len) with backslash escapes removed. */
static void unescape(struct buf *b, const char *s, size_t len)
{
	for (size_t i = 0; i < len; i++) {
		if (s[i] == '\\' && i + 1 < len)
			i++;
		(void)buf_append(b, s + i, 1);
	}
}

/* The inside of a quoted string or comment token. */
static void tok_inner(const char *v, const struct tok *t, const char **s_r, size_t *len_r)
{
	*s_r = v + t->off + 1;
	*len_r = t->len - 1 - (t->closed ? 1 : 0);
}

enum join_mode {
	JOIN_PHRASE, /* display names: quotes removed, one space where blanks were */
	JOIN_RAW,    /* local parts, domains, routes: as written, blanks dropped
		      * around specials */
};

/* Tokens [a, e) without comments into b (emptied first). */
static void join(struct buf *b, const char *v, const struct toks *t, size_t a, size_t e,
		 enum join_mode mode)
{
	bool first = true, prev_special = false;

	buf_reset(b);
	for (size_t k = a; k < e; k++) {
		const struct tok *u = &t->v[k];
		if (u->kind == TOK_COMMENT)
			continue;
		bool special = u->kind == TOK_SPECIAL;
		/* stray angle brackets are never part of an address */
		if (mode == JOIN_RAW && (tok_is(u, '<') || tok_is(u, '>')))
			continue;
		if (!first && u->ws &&
		    (mode == JOIN_PHRASE || (!special && !prev_special)))
			(void)buf_append(b, " ", 1);
		if (mode == JOIN_PHRASE && u->kind == TOK_QUOTED) {
			const char *s;
			size_t n;
			tok_inner(v, u, &s, &n);
			unescape(b, s, n);
		} else {
			(void)buf_append(b, v + u->off, u->len);
		}
		first = false;
		prev_special = special;
	}
}

struct addr_ctx {
	struct wr *w;
	const char *v;
	const struct toks *t;
	struct buf name, adl, local, domain;
};

/* One mailbox from tokens [a, e); false when there is nothing but comments. */
static bool write_mailbox(struct addr_ctx *c, size_t a, size_t e)
{
	const struct toks *t = c->t;
	size_t lt = MIME_NONE, k;
	bool any = false, have_name = false, have_adl = false;

	for (k = a; k < e; k++) {
		if (t->v[k].kind != TOK_COMMENT)
			any = true;
		if (lt == MIME_NONE && tok_is(&t->v[k], '<'))
			lt = k;
	}
	if (!any)
		return false;
	size_t s = a, f = e;
	if (lt != MIME_NONE) {
		join(&c->name, c->v, t, a, lt, JOIN_PHRASE);
		have_name = c->name.len > 0;
		/* the matching '>' */
		size_t depth = 1;
		for (f = lt + 1; f < e; f++) {
			if (tok_is(&t->v[f], '<'))
				depth++;
			else if (tok_is(&t->v[f], '>') && --depth == 0)
				break;
		}
		s = lt + 1;
		while (s < f && t->v[s].kind == TOK_COMMENT)
			s++;
		if (s < f && tok_is(&t->v[s], '@')) {
			/* obsolete source route "@a,@b:" */
			for (k = s; k < f && !tok_is(&t->v[k], ':'); k++)
				;
			if (k < f) {
				join(&c->adl, c->v, t, s, k, JOIN_RAW);
				have_adl = true;
				s = k + 1;
			}
		}
	} else {
		for (k = a; k < e; k++) {
			if (t->v[k].kind == TOK_COMMENT) {
				const char *cs;
				size_t cn;
				tok_inner(c->v, &t->v[k], &cs, &cn);
				buf_reset(&c->name);
				unescape(&c->name, cs, cn);
				have_name = c->name.len > 0;
				break;
			}
		}
	}
	for (k = s; k < f && !tok_is(&t->v[k], '@'); k++)
		;
	join(&c->local, c->v, t, s, k, JOIN_RAW);
	if (k < f)
		join(&c->domain, c->v, t, k + 1, f, JOIN_RAW);
	else
		buf_reset(&c->domain);

	w_raw(c->w, "(");
	w_nstr(c->w, have_name ? c->name.data : NULL, c->name.len, false);
	w_raw(c->w, " ");
	w_nstr(c->w, have_adl ? c->adl.data : NULL, c->adl.len, false);
	w_raw(c->w, " ");
	w_nstr(c->w, c->local.data != NULL ? c->local.data : "", c->local.len, false);
	w_raw(c->w, " ");
	w_nstr(c->w, c->domain.data != NULL ? c->domain.data : "", c->domain.len, false);
	w_raw(c->w, ")");
	return true;
}

/* An address list (v NULL: absent).  Returns the number of address
 * structures written; NIL was written when 0. */
static size_t write_addr_list(struct wr *w, const char *v)
{
	if (v == NULL) {
		w_raw(w, "NIL");
		return 0;
	}
	struct toks t = {0};
	struct addr_ctx c = {.w = w, .v = v, .t = &t};
	size_t vlen = strlen(v);
	size_t start = w->out->len, count = 0, i = 0;
	bool in_group = false;

	tokenise(v, vlen, &t);
	buf_init(&c.name, SIZE_MAX / 2);
	buf_init(&c.adl, SIZE_MAX / 2);
	buf_init(&c.local, SIZE_MAX / 2);
	buf_init(&c.domain, SIZE_MAX / 2);
	w_raw(w, "(");
	while (i < t.n && !w->full) {
		if (tok_is(&t.v[i], ',')) {
			i++;
			continue;
		}
		if (tok_is(&t.v[i], ';')) {
			if (in_group) {
				w_raw(w, "(NIL NIL NIL NIL)");
				count++;
				in_group = false;
			}
			i++;
			continue;
		}
		/* the element [i, j), or a group name [i, colon) */
		size_t j, lt = MIME_NONE, colon = MIME_NONE, angle = 0;
		bool phrase = true;
		for (j = i; j < t.n; j++) {
			const struct tok *u = &t.v[j];
			if (u->kind == TOK_LITERAL)
				phrase = false;
			if (u->kind != TOK_SPECIAL)
				continue;
			if (angle == 0 && (u->c == ',' || u->c == ';'))
				break;
			if (u->c == ':' && angle == 0 && lt == MIME_NONE && phrase && !in_group) {
				colon = j;
				break;
			}
			if (u->c == '<') {
				if (lt == MIME_NONE)
					lt = j;
				angle++;
			} else if (u->c == '>' && angle > 0) {
				angle--;
			}
			if (u->c != '.')
				phrase = false;
		}
		if (colon != MIME_NONE) {
			join(&c.name, v, &t, i, colon, JOIN_PHRASE);
			w_raw(w, "(NIL NIL ");
			w_nstr(w, c.name.data != NULL ? c.name.data : "", c.name.len, false);
			w_raw(w, " NIL)");
			count++;
			in_group = true;
			i = colon + 1;
			continue;
		}
		if (write_mailbox(&c, i, j))
			count++;
		i = j;
	}
	if (in_group) {
		w_raw(w, "(NIL NIL NIL NIL)");
		count++;
	}
	w_raw(w, ")");
	if (count == 0 && !w->full) {
		buf_cut(w->out, start);
		w_raw(w, "NIL");
	}
	free(t.v);
	buf_free(&c.name);
	buf_free(&c.adl);
	buf_free(&c.local);
	buf_free(&c.domain);
	return count;
}

/* ---- ENVELOPE ---- */

enum {
	ENV_DATE,
	ENV_SUBJECT,
	ENV_FROM,
	ENV_SENDER,
	ENV_REPLY_TO,
	ENV_TO,
	ENV_CC,
	ENV_BCC,
	ENV_IN_REPLY_TO,
	ENV_MESSAGE_ID,
	ENV_FIELDS
};

static const char *const env_names[ENV_FIELDS] = {
	"date", "subject", "from", "sender", "reply-to",
	"to", "cc", "bcc", "in-reply-to", "message-id",
};

static void write_envelope(struct wr *w, const char *hdr, size_t hdr_len)
{
	char *val[ENV_FIELDS] = {0};
	struct mime_field f;
	size_t pos = 0;

	while (mime_header_next(hdr, hdr_len, &pos, &f)) {
		for (size_t k = 0; k < ENV_FIELDS; k++) {
			size_t nl = strlen(env_names[k]);
			if (val[k] == NULL && f.name_len == nl && str_nieq(f.name, env_names[k], nl))
				val[k] = mime_unfold(f.value, f.value_len, MIME_FIELD_MAX, NULL);
		}
	}
	w_raw(w, "(");
	w_nstrz(w, val[ENV_DATE], false);
	w_raw(w, " ");
	w_nstrz(w, val[ENV_SUBJECT], false);
	w_raw(w, " ");
	write_addr_list(w, val[ENV_FROM]);
	for (size_t k = ENV_SENDER; k <= ENV_REPLY_TO; k++) {
		w_raw(w, " ");
		size_t start = w->out->len;
		if (write_addr_list(w, val[k]) == 0 && !w->full) {
			/* RFC 3501 7.4.2: absent or empty means the same as From */
			buf_cut(w->out, start);
			write_addr_list(w, val[ENV_FROM]);
		}
	}
	for (size_t k = ENV_TO; k <= ENV_BCC; k++) {
		w_raw(w, " ");
		write_addr_list(w, val[k]);
	}
	w_raw(w, " ");
	w_nstrz(w, val[ENV_IN_REPLY_TO], false);
	w_raw(w, " ");
	w_nstrz(w, val[ENV_MESSAGE_ID], false);
	w_raw(w, ")");
	for (size_t k = 0; k < ENV_FIELDS; k++)
		free(val[k]);
}

int imap_envelope(struct buf *out, const char *msg, size_t len, const struct mime_message *m,
		  size_t part)
{
	struct wr w = {out, false};
	size_t start = out->len;

	assert(part < m->n_parts);
	const struct mime_part *p = &m->parts[part];
	assert(p->hdr_off <= len && p->hdr_len <= len - p->hdr_off);
	write_envelope(&w, msg + p->hdr_off, p->hdr_len);
	if (w.full) {
		buf_cut(out, start);
		return -1;
	}
	return 0;
}

/* ---- BODY / BODYSTRUCTURE ---- */

/* Length of the header block of d[0..len), its blank line included (len
 * when there is no blank line). */
static size_t header_block_len(const char *d, size_t len)
{
	size_t p = 0;
	while (p < len) {
		if (d[p] == '\n')
			return p + 1;
		if (d[p] == '\r' && p + 1 < len && d[p + 1] == '\n')
			return p + 2;
		const char *nl = memchr(d + p, '\n', len - p);
		if (nl == NULL)
			break;
		p = (size_t)(nl - d) + 1;
	}
	return len;
}

static size_t count_lines(const char *d, size_t len)
{
	size_t n = 0;
	for (const char *p = d, *end = d + len;
	     p < end && (p = memchr(p, '\n', (size_t)(end - p))) != NULL; p++)
		n++;
	if (len > 0 && d[len - 1] != '\n')
		n++;
	return n;
}

/* Content-Transfer-Encodings that leave the bytes as they are. */
static bool identity_encoding(const char *enc)
{
	return enc == NULL || str_ieq(enc, "7bit") || str_ieq(enc, "8bit") ||
	       str_ieq(enc, "binary");
}

/* A message/rfc822 part the MIME parser did not descend into but whose
 * body is the message as it is (depth or part cap). */
static bool unparsed_plain_message(const struct mime_part *p)
{
	return mime_part_is_message(p) && p->first_child == MIME_NONE &&
	       !str_ieq(p->encoding != NULL ? p->encoding : "", "base64") &&
	       !str_ieq(p->encoding != NULL ? p->encoding : "", "quoted-printable");
}

struct bs {
	struct wr w;
	const char *msg;
	const struct mime_message *m;
	bool ext, utf8;
};

static void w_param_value(struct bs *b, const char *v)
{
	size_t len = strlen(v);
	bool high = false;

	for (size_t i = 0; i < len && !high; i++)
		high = (unsigned char)v[i] >= 0x80;
	if (!high || b->utf8) {
		w_nstr(&b->w, v, len, b->utf8);
		return;
	}
	struct buf enc;
	const char *error;
	buf_init(&enc, 8 * RFC2047_ENCODE_MAX);
	if (rfc2047_encode(v, len, "UTF-8", RFC2047_B, &enc, &error) == 0) {
		/* the folds between encoded-words become single spaces */
		size_t o = 0;
		for (size_t i = 0; i < enc.len; i++) {
			if (enc.data[i] != '\r' && enc.data[i] != '\n')
				enc.data[o++] = enc.data[i];
		}
		w_nstr(&b->w, enc.data, o, false);
	} else {
		w_nstr(&b->w, v, len, false);   /* not UTF-8: a literal */
	}
	buf_free(&enc);
}

/* A parameter list; charset_default adds CHARSET US-ASCII (RFC 2046 4.1.2)
 * when there is no charset. */
static void w_params(struct bs *b, const struct mime_params *ps, bool charset_default)
{
	bool add = charset_default && mime_param_get(ps, "charset") == NULL;

	if (ps->n == 0 && !add) {
		w_raw(&b->w, "NIL");
		return;
	}
	w_raw(&b->w, "(");
	for (size_t i = 0; i < ps->n; i++) {
		if (i > 0)
			w_raw(&b->w, " ");
		w_upper(&b->w, ps->v[i].name);
		w_raw(&b->w, " ");
		w_param_value(b, ps->v[i].value);
	}
	if (add)
		w_raw(&b->w, ps->n > 0 ? " \"CHARSET\" \"US-ASCII\"" : "\"CHARSET\" \"US-ASCII\"");
	w_raw(&b->w, ")");
}

static void w_encoding(struct bs *b, const char *enc)
{
	static const char *const known[] = {
		"7bit", "8bit", "binary", "base64", "quoted-printable",
	};
	if (enc == NULL) {
		w_raw(&b->w, "\"7BIT\"");
		return;
	}
	for (size_t i = 0; i < ARRAY_LEN(known); i++) {
		if (str_ieq(enc, known[i])) {
			w_upper(&b->w, enc);
			return;
		}
	}
	w_nstrz(&b->w, enc, b->utf8);
}

static void w_fields(struct bs *b, const struct mime_part *p)
{
	if (p->flags & MIME_PART_CT_DEFAULT && strcmp(p->type, "text") == 0)
		w_raw(&b->w, "(\"CHARSET\" \"US-ASCII\")");   /* RFC 2045 5.2 */
	else
		w_params(b, &p->params, strcmp(p->type, "text") == 0);
	w_raw(&b->w, " ");
	w_nstrz(&b->w, p->id, b->utf8);
	w_raw(&b->w, " ");
	w_nstrz(&b->w, p->description, b->utf8);
	w_raw(&b->w, " ");
	w_encoding(b, p->encoding);
	w_raw(&b->w, " ");
	w_num(&b->w, p->body_len);
}

/* Next language tag of a Content-Language value from *pos: tags are split
 * at commas and blanks, comments dropped. */
static bool next_lang(const char *s, size_t *pos, size_t *start_r, size_t *len_r)
{
	size_t i = *pos;
	for (;;) {
		while (s[i] == ' ' || s[i] == '\t' || s[i] == ',')
			i++;
		if (s[i] != '(')
			break;
		size_t depth = 0;
		while (s[i] != '\0') {
			if (s[i] == '\\' && s[i + 1] != '\0') {
				i += 2;
				continue;
			}
			if (s[i] == '(')
				depth++;
			else if (s[i] == ')' && --depth == 0) {
				i++;
				break;
			}
			i++;
		}
	}
	if (s[i] == '\0') {
		*pos = i;
		return false;
	}
	*start_r = i;
	while (s[i] != '\0' && s[i] != ' ' && s[i] != '\t' && s[i] != ',' && s[i] != '(')
		i++;
	*len_r = i - *start_r;
	*pos = i;
	return true;
}

static void w_lang(struct bs *b, const char *lang)
{
	size_t pos = 0, s, n, count = 0;

	while (lang != NULL && next_lang(lang, &pos, &s, &n))
		count++;
	if (count == 0) {
		w_raw(&b->w, "NIL");
		return;
	}
	if (count > 1)
		w_raw(&b->w, "(");
	pos = 0;
	for (size_t k = 0; next_lang(lang, &pos, &s, &n); k++) {
		if (k > 0)
			w_raw(&b->w, " ");
		w_nstr(&b->w, lang + s, n, b->utf8);
	}
	if (count > 1)
		w_raw(&b->w, ")");
}

/* dsp lang loc, after md5 or the multipart params. */
static void w_ext_tail(struct bs *b, const struct mime_part *p)
{
	w_raw(&b->w, " ");
	if (p->disposition != NULL) {
		w_raw(&b->w, "(");
		w_upper(&b->w, p->disposition);
		w_raw(&b->w, " ");
		w_params(b, &p->disp_params, false);
		w_raw(&b->w, ")");
	} else {
		w_raw(&b->w, "NIL");
	}
	w_raw(&b->w, " ");
	w_lang(b, p->language);
	w_raw(&b->w, " ");
	w_nstrz(&b->w, p->location, b->utf8);
}

static void bs_open(struct bs *b, size_t i)
{
	const struct mime_part *p = &b->m->parts[i];

	w_raw(&b->w, "(");
	if (mime_part_is_multipart(p)) {
		/* body-type-mpart needs one body at least */
		if (p->first_child == MIME_NONE)
			w_raw(&b->w, EMPTY_BODY);
		return;
	}
	w_upper(&b->w, p->type);
	w_raw(&b->w, " ");
	w_upper(&b->w, p->subtype);
	w_raw(&b->w, " ");
	w_fields(b, p);
	if (strcmp(p->type, "text") == 0) {
		w_raw(&b->w, " ");
		w_num(&b->w, p->body_lines);
	} else if (mime_part_is_message(p)) {
		w_raw(&b->w, " ");
		if (p->first_child != MIME_NONE) {
			const struct mime_part *c = &b->m->parts[p->first_child];
			write_envelope(&b->w, b->msg + c->hdr_off, c->hdr_len);
			w_raw(&b->w, " ");   /* the child's body follows */
		} else if (unparsed_plain_message(p)) {
			const char *d = b->msg + p->body_off;
			size_t hl = header_block_len(d, p->body_len);
			write_envelope(&b->w, d, hl);
			w_raw(&b->w, " (\"TEXT\" \"PLAIN\" (\"CHARSET\" \"US-ASCII\") NIL NIL "
			      "\"7BIT\" ");
			w_num(&b->w, p->body_len - hl);
			w_raw(&b->w, " ");
			w_num(&b->w, count_lines(d + hl, p->body_len - hl));
			w_raw(&b->w, ")");
		} else {
			w_raw(&b->w, NIL_ENVELOPE " " EMPTY_BODY);
		}
	}
}

static void bs_close(struct bs *b, size_t i)
{
	const struct mime_part *p = &b->m->parts[i];

	if (mime_part_is_multipart(p)) {
		w_raw(&b->w, " ");
		w_upper(&b->w, p->subtype);
		if (b->ext) {
			w_raw(&b->w, " ");
			w_params(b, &p->params, false);
			w_ext_tail(b, p);
		}
	} else {
		if (mime_part_is_message(p)) {
			w_raw(&b->w, " ");
			w_num(&b->w, p->body_lines);
		}
		if (b->ext) {
			w_raw(&b->w, " ");
			w_nstrz(&b->w, p->md5, b->utf8);
			w_ext_tail(b, p);
		}
	}
	w_raw(&b->w, ")");
}

int imap_bodystructure(struct buf *out, const char *msg, size_t len, const struct mime_message *m,
		       size_t part, bool extensible, bool utf8)
{
	struct bs b = {{out, false}, msg, m, extensible, utf8};
	size_t start = out->len;

	assert(part < m->n_parts);
	size_t end = m->parts[part].subtree_end;
	size_t open = MIME_NONE;    /* the last part opened and not closed */
	for (size_t i = part; i < end && !b.w.full; i++) {
		const struct mime_part *p = &m->parts[i];
		assert(p->body_off <= len && p->body_len <= len - p->body_off);
		(void)p;
		while (open != MIME_NONE && m->parts[open].subtree_end <= i) {
			bs_close(&b, open);
			open = open == part ? MIME_NONE : m->parts[open].parent;
		}
		bs_open(&b, i);
		open = i;
	}
	while (open != MIME_NONE && !b.w.full) {
		bs_close(&b, open);
		open = open == part ? MIME_NONE : m->parts[open].parent;
	}
	if (b.w.full) {
		buf_cut(out, start);
		return -1;
	}
	return 0;
}

/* ---- sections ---- */

/* The part that sec's part numbers name, or MIME_NONE. */
static size_t find_part(const struct mime_message *m, const struct imap_fetch_section *sec)
{
	char name[IMAP_SECTION_MAX_PARTS * 11 + 1];
	size_t n = 0;

	assert(sec->nparts <= IMAP_SECTION_MAX_PARTS);
	for (unsigned k = 0; k < sec->nparts; k++)
		n += (size_t)snprintf(name + n, sizeof(name) - n, k ? ".%u" : "%u",
				      (unsigned)sec->parts[k]);
	name[n] = '\0';
	const struct mime_part *p = mime_find_section(m, name);
	return p != NULL ? (size_t)(p - m->parts) : MIME_NONE;
}

static bool field_listed(const struct imap_fetch_section *sec, const struct mime_field *f)
{
	for (unsigned k = 0; k < sec->nfields; k++) {
		if (sec->fields[k].len == f->name_len &&
		    str_nieq(sec->fields[k].s, f->name, f->name_len))
			return true;
	}
	return false;
}

static int header_fields(const char *hdr, size_t hdr_len, const struct imap_fetch_section *sec,
			 struct buf *scratch, const char **ptr, size_t *n)
{
	bool want = sec->spec == IMAP_SECTION_HEADER_FIELDS;
	size_t start = scratch->len, pos = 0, line = 0;
	struct mime_field f;
	/* line ends added in the header's own style */
	const char *lf = memchr(hdr, '\n', hdr_len);
	const char *eol = lf == NULL || (lf > hdr && lf[-1] == '\r') ? "\r\n" : "\n";

	while (mime_header_next(hdr, hdr_len, &pos, &f)) {
		if (f.name_len > 0 && field_listed(sec, &f) == want) {
			if (buf_append(scratch, hdr + line, pos - line) < 0 ||
			    (hdr[pos - 1] != '\n' && buf_append_str(scratch, eol) < 0))
				goto full;
		}
		line = pos;
	}
	if (buf_append_str(scratch, eol) < 0)
		goto full;
	*ptr = scratch->data + start;
	*n = scratch->len - start;
	return 0;
full:
	buf_cut(scratch, start);
	return -1;
}

int imap_section_get(const char *msg, size_t len, const struct mime_message *m,
		     const struct imap_fetch_section *sec, struct buf *scratch, const char **ptr,
		     size_t *n)
{
	size_t hdr_off, hdr_len, body_off, body_len;

	*ptr = NULL;
	*n = 0;
	if (sec->nparts == 0) {
		if (sec->spec == IMAP_SECTION_ALL) {
			*ptr = msg;
			*n = len;
			return 0;
		}
		if (sec->spec == IMAP_SECTION_MIME)
			return 1;
		hdr_off = m->parts[0].hdr_off;
		hdr_len = m->parts[0].hdr_len;
		body_off = m->parts[0].body_off;
		body_len = m->parts[0].body_len;
	} else {
		size_t i = find_part(m, sec);
		if (i == MIME_NONE)
			return 1;
		const struct mime_part *p = &m->parts[i];
		if (sec->spec == IMAP_SECTION_ALL) {
			*ptr = msg + p->body_off;
			*n = p->body_len;
			return 0;
		}
		if (sec->spec == IMAP_SECTION_MIME) {
			*ptr = msg + p->hdr_off;
			*n = p->hdr_len;
			return 0;
		}
		/* HEADER and TEXT of part N: only when N is message/rfc822 */
		if (!mime_part_is_message(p))
			return 1;
		if (p->first_child != MIME_NONE) {
			const struct mime_part *c = &m->parts[p->first_child];
			hdr_off = c->hdr_off;
			hdr_len = c->hdr_len;
			body_off = c->body_off;
			body_len = c->body_len;
		} else if (unparsed_plain_message(p)) {
			hdr_off = p->body_off;
			hdr_len = header_block_len(msg + p->body_off, p->body_len);
			body_off = hdr_off + hdr_len;
			body_len = p->body_len - hdr_len;
		} else {
			return 1;
		}
	}
	assert(hdr_off <= len && hdr_len <= len - hdr_off);
	assert(body_off <= len && body_len <= len - body_off);
	switch (sec->spec) {
	case IMAP_SECTION_HEADER:
		*ptr = msg + hdr_off;
		*n = hdr_len;
		return 0;
	case IMAP_SECTION_TEXT:
		*ptr = msg + body_off;
		*n = body_len;
		return 0;
	case IMAP_SECTION_HEADER_FIELDS:
	case IMAP_SECTION_HEADER_FIELDS_NOT:
		return header_fields(msg + hdr_off, hdr_len, sec, scratch, ptr, n);
	case IMAP_SECTION_ALL:
	case IMAP_SECTION_MIME:
		break;
	}
	return 1;
}

int imap_binary_get(const char *msg, size_t len, const struct mime_message *m,
		    const struct imap_fetch_section *sec, struct buf *out)
{
	size_t start = out->len;
	int r;

	if (sec->spec != IMAP_SECTION_ALL)
		return IMAP_BINARY_NONE;
	if (sec->nparts == 0)
		return buf_append(out, msg, len) < 0 ? IMAP_BINARY_FULL : IMAP_BINARY_OK;
	size_t i = find_part(m, sec);
	if (i == MIME_NONE)
		return IMAP_BINARY_NONE;
	const struct mime_part *p = &m->parts[i];
	if (mime_part_is_multipart(p))
		return IMAP_BINARY_MULTIPART;
	assert(p->body_off <= len && p->body_len <= len - p->body_off);
	const char *body = msg + p->body_off;
	if (identity_encoding(p->encoding)) {
		r = buf_append(out, body, p->body_len);
	} else if (str_ieq(p->encoding, "base64")) {
		struct decode_b64 d;
		decode_b64_init(&d);
		r = decode_b64(&d, body, p->body_len, out);
		if (r == 0)
			r = decode_b64_finish(&d, out);
	} else if (str_ieq(p->encoding, "quoted-printable")) {
		struct decode_qp d;
		decode_qp_init(&d);
		r = decode_qp(&d, body, p->body_len, out);
		if (r == 0)
			r = decode_qp_finish(&d, out);
	} else {
		return IMAP_BINARY_UNKNOWN_CTE;
	}
	if (r < 0) {
		buf_cut(out, start);
		return IMAP_BINARY_FULL;
	}
	return IMAP_BINARY_OK;
}

void imap_partial(const struct imap_fetch_section *sec, const char **ptr, size_t *n)
{
	if (!sec->partial)
		return;
	if (sec->partial_off >= *n) {
		if (*ptr != NULL)
			*ptr += *n;
		*n = 0;
		return;
	}
	*ptr += sec->partial_off;
	*n = MIN(*n - sec->partial_off, (size_t)sec->partial_len);
}

int imap_fetch_item_name(struct buf *out, const struct imap_fetch_section *sec)
{
	static const char *const specs[] = {
		[IMAP_SECTION_ALL] = "",
		[IMAP_SECTION_HEADER] = "HEADER",
		[IMAP_SECTION_HEADER_FIELDS] = "HEADER.FIELDS",
		[IMAP_SECTION_HEADER_FIELDS_NOT] = "HEADER.FIELDS.NOT",
		[IMAP_SECTION_MIME] = "MIME",
		[IMAP_SECTION_TEXT] = "TEXT",
	};
	struct wr w = {out, false};
	size_t start = out->len;

	w_raw(&w, sec->kind == IMAP_FETCH_BODY ? "BODY[" :
		  sec->kind == IMAP_FETCH_BINARY ? "BINARY[" : "BINARY.SIZE[");
	for (unsigned k = 0; k < sec->nparts; k++) {
		if (k > 0)
			w_raw(&w, ".");
		w_num(&w, sec->parts[k]);
	}
	if (sec->spec != IMAP_SECTION_ALL) {
		if (sec->nparts > 0)
			w_raw(&w, ".");
		w_raw(&w, specs[sec->spec]);
	}
	if (sec->spec == IMAP_SECTION_HEADER_FIELDS || sec->spec == IMAP_SECTION_HEADER_FIELDS_NOT) {
		w_raw(&w, " (");
		for (unsigned k = 0; k < sec->nfields && !w.full; k++) {
			const char *s = sec->fields[k].s;
			size_t len = sec->fields[k].len, i = 0;
			char *u = xstrndup(s, len);
			for (char *c = u; *c != '\0'; c++) {
				if (*c >= 'a' && *c <= 'z')
					*c = (char)(*c - 'a' + 'A');
			}
			while (i < len && is_atom_char((unsigned char)u[i]))
				i++;
			if (k > 0)
				w_raw(&w, " ");
			if (len > 0 && i == len && !(len == 3 && strcmp(u, "NIL") == 0))
				w_raw(&w, u);
			else
				w_nstr(&w, u, len, false);
			free(u);
		}
		w_raw(&w, ")");
	}
	w_raw(&w, "]");
	if (sec->partial && sec->kind != IMAP_FETCH_BINARY_SIZE) {
		w_raw(&w, "<");
		w_num(&w, sec->partial_off);
		w_raw(&w, ">");
	}
	if (w.full) {
		buf_cut(out, start);
		return -1;
	}
	return 0;
}

/* ---- dates ---- */

static const char months[12][4] = {
	"Jan", "Feb", "Mar", "Apr", "May", "Jun",
	"Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
};

static bool leap_year(int64_t y)
{
	return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

static unsigned month_days(int64_t y, unsigned mon)
{
	static const unsigned char days[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
	return days[mon - 1] + (mon == 2 && leap_year(y));
}

/* Days from 0001-01-01 to January 1st of year y (y >= 1), proleptic
 * Gregorian. */
static int64_t days_before_year(int64_t y)
{
	int64_t p = y - 1;
	return 365 * p + p / 4 - p / 100 + p / 400;
}

#define EPOCH_DAYS 719162       /* days_before_year(1970) */
#define TIME_MIN INT64_C(-62135596800) /* 0001-01-01 00:00:00 */
#define TIME_MAX INT64_C(253402300799)  /* 9999-12-31 23:59:59 */

/* Unix day number of y-mon-d (valid date). */
static int64_t day_number(int64_t y, unsigned mon, unsigned d)
{
	int64_t n = days_before_year(y);
	for (unsigned k = 1; k < mon; k++)
		n += month_days(y, k);
	return n + d - 1 - EPOCH_DAYS;
}

static void put_digits(char *p, unsigned v, unsigned width)
{
	while (width-- > 0) {
		p[width] = (char)('0' + v % 10);
		v /= 10;
	}
}

void imap_internaldate(int64_t t, char out[32])
{
	if (t < TIME_MIN)
		t = TIME_MIN;
	if (t > TIME_MAX)
		t = TIME_MAX;
	int64_t z = t - TIME_MIN;                  /* seconds since 0001-01-01 */
	int64_t days = z / 86400;
	unsigned secs = (unsigned)(z % 86400);
	/* a close guess from the mean year length, then step to the year */
	int64_t y = days * 400 / 146097 + 1;
	while (y > 1 && days_before_year(y) > days)
		y--;
	while (days_before_year(y + 1) <= days)
		y++;
	unsigned yday = (unsigned)(days - days_before_year(y));
	unsigned mon = 1;
	while (yday >= month_days(y, mon)) {
		yday -= month_days(y, mon);
		mon++;
	}
	unsigned day = yday + 1;

	/* "dd-Mon-yyyy hh:mm:ss +0000" in quotes */
	memcpy(out, "\"dd-Mon-yyyy hh:mm:ss +0000\"", 29);
	put_digits(out + 1, day, 2);
	if (day < 10)
		out[1] = ' ';
	memcpy(out + 4, months[mon - 1], 3);
	put_digits(out + 8, (unsigned)y, 4);
	put_digits(out + 13, secs / 3600, 2);
	put_digits(out + 16, secs / 60 % 60, 2);
	put_digits(out + 19, secs % 60, 2);
}

/* Read exactly n digits at s[*i]. */
static bool digits(const char *s, size_t len, size_t *i, unsigned n, unsigned *v_r)
{
	unsigned v = 0;
	if (len - *i < n)
		return false;
	for (unsigned k = 0; k < n; k++) {
		char c = s[*i + k];
		if (c < '0' || c > '9')
			return false;
		v = v * 10 + (unsigned)(c - '0');
	}
	*i += n;
	*v_r = v;
	return true;
}

static bool expect(const char *s, size_t len, size_t *i, char c)
{
	if (*i >= len || s[*i] != c)
		return false;
	(*i)++;
	return true;
}

/* "d-Mon-yyyy" or "dd-Mon-yyyy" (" d" too when space_pad) at s[*i]. */
static bool parse_day_month_year(const char *s, size_t len, size_t *i, bool space_pad,
				 int64_t *day_r)
{
	unsigned d, y, mon = 0;
	if (space_pad && *i < len && s[*i] == ' ')
		(*i)++;
	if (!digits(s, len, i, 1, &d))
		return false;
	unsigned d2;
	if (digits(s, len, i, 1, &d2))
		d = d * 10 + d2;
	if (!expect(s, len, i, '-') || len - *i < 3)
		return false;
	for (unsigned k = 0; k < 12 && mon == 0; k++) {
		if (str_nieq(s + *i, months[k], 3))
			mon = k + 1;
	}
	if (mon == 0)
		return false;
	*i += 3;
	if (!expect(s, len, i, '-') || !digits(s, len, i, 4, &y) || y == 0)
		return false;
	if (d == 0 || d > month_days(y, mon))
		return false;
	*day_r = day_number(y, mon, d);
	return true;
}

static void strip_quotes(const char **s, size_t *len)
{
	if (*len >= 2 && (*s)[0] == '"' && (*s)[*len - 1] == '"') {
		(*s)++;
		*len -= 2;
	}
}

int imap_parse_date_time(const char *s, size_t len, int64_t *t_r)
{
	size_t i = 0;
	int64_t day;
	unsigned hh, mm, ss, zh, zm;

	strip_quotes(&s, &len);
	if (!parse_day_month_year(s, len, &i, true, &day) || !expect(s, len, &i, ' ') ||
	    !digits(s, len, &i, 2, &hh) || !expect(s, len, &i, ':') ||
	    !digits(s, len, &i, 2, &mm) || !expect(s, len, &i, ':') ||
	    !digits(s, len, &i, 2, &ss) || !expect(s, len, &i, ' ') || i >= len ||
	    (s[i] != '+' && s[i] != '-'))
		return -1;
	int sign = s[i++] == '-' ? -1 : 1;
	if (!digits(s, len, &i, 2, &zh) || !digits(s, len, &i, 2, &zm) || i != len)
		return -1;
	if (hh > 23 || mm > 59 || ss > 60 || zm > 59)
		return -1;
	*t_r = day * 86400 + hh * 3600 + mm * 60 + ss - sign * (int64_t)(zh * 3600 + zm * 60);
	return 0;
}

int imap_parse_date(const char *s, size_t len, int64_t *t_r)
{
	size_t i = 0;
	int64_t day;

	strip_quotes(&s, &len);
	if (!parse_day_month_year(s, len, &i, false, &day) || i != len)
		return -1;
	*t_r = day * 86400;
	return 0;
}
