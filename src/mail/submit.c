/* submit.c - header fix-ups of a submission server (RFC 6409 8) and the
 * From/Sender address lists (RFC 5322 3.4, with the obsolete forms of 4.4
 * that real mail has and RFC 6532 UTF-8).
 *
 * The header block is walked with mime_header_next() over at most
 * SUBMIT_HEADER_MAX + 2 bytes.  Address lists are read by a lexer (blanks,
 * line ends and comments skipped; comments nest, counted) feeding a flat
 * parser loop: the only state across addresses is "inside a group". */
#include "mail/submit.h"
#include "mail/mutf7.h"

#include <string.h>

#include "core/buf.h"
#include "core/util.h"
#include "mail/mime.h"
#include "mail/rfc2047.h"

#define DATE_MAX 40

static bool field_is(const struct mime_field *f, const char *name)
{
	size_t n = strlen(name);
	return f->name_len == n && str_nieq(f->name, name, n);
}

/* The part of msg the header scan looks at: an accepted header block
 * (blank line included) fits in SUBMIT_HEADER_MAX, so anything that is
 * still header at SUBMIT_HEADER_MAX + 2 bytes is too long. */
static size_t window(size_t len)
{
	return MIN(len, (size_t)SUBMIT_HEADER_MAX + 2);
}

/* Offset of the end of the header block (past the blank line, or len), or
 * (size_t)-1 when it is longer than SUBMIT_HEADER_MAX. */
static size_t header_end_of(const char *msg, size_t len, size_t pos)
{
	size_t w = window(len);
	size_t end;
	if (pos >= w)
		end = w < len ? (size_t)-1 : len;
	else
		end = pos + (msg[pos] == '\r' ? 2 : 1); /* the blank line */
	if (end != (size_t)-1 && end > SUBMIT_HEADER_MAX)
		return (size_t)-1;
	return end;
}

int submit_scan(const char *msg, size_t len, struct submit_fix *f)
{
	memset(f, 0, sizeof(*f));
	if (msg == NULL)
		len = 0;
	if (len > 0 && (msg[0] == ' ' || msg[0] == '\t'))
		return -1;
	size_t w = window(len);
	const char *nl = w ? memchr(msg, '\n', w) : NULL;
	f->lf = nl != NULL && (nl == msg || nl[-1] != '\r');

	bool date = false, msgid = false;
	size_t pos = 0, start = 0;
	struct mime_field fl;
	while (mime_header_next(msg, w, &pos, &fl)) {
		if (field_is(&fl, "Bcc")) {
			if (f->nbcc == SUBMIT_BCC_MAX)
				return -1;
			f->bcc[f->nbcc][0] = start;
			f->bcc[f->nbcc][1] = pos;
			f->nbcc++;
		} else if (field_is(&fl, "Date")) {
			date = true;
		} else if (field_is(&fl, "Message-ID")) {
			msgid = true;
		} else if (field_is(&fl, "From")) {
			f->has_from = true;
		} else if (field_is(&fl, "Sender")) {
			f->has_sender = true;
		}
		start = pos;
	}
	size_t end = header_end_of(msg, len, pos);
	if (end == (size_t)-1)
		return -1;
	f->header_end = end;
	f->add_date = !date;
	f->add_message_id = !msgid;
	return 0;
}

static bool is_atext(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       (c != 0 && strchr("!#$%&'*+-/=?^_`{|}~", c) != NULL);
}

/* dot-atom-text, ASCII, 1..SUBMIT_ID_MAX. */
static bool id_ok(const char *s)
{
	if (s == NULL)
		return false;
	size_t n = strnlen(s, SUBMIT_ID_MAX + 1);
	if (n == 0 || n > SUBMIT_ID_MAX || s[0] == '.' || s[n - 1] == '.')
		return false;
	for (size_t i = 0; i < n; i++) {
		if (s[i] == '.' ? s[i + 1] == '.' : !is_atext((unsigned char)s[i]))
			return false;
	}
	return true;
}

int submit_rewrite(const char *msg, size_t len, const struct submit_fix *f, int64_t now,
		   const char *msgid_local, const char *hostname, struct buf *out)
{
	if (msg == NULL && len != 0)
		return -1;
	if (f->header_end > len || f->nbcc > SUBMIT_BCC_MAX)
		return -1;
	size_t prev = 0;
	for (size_t i = 0; i < f->nbcc; i++) {
		if (f->bcc[i][0] < prev || f->bcc[i][1] < f->bcc[i][0] ||
		    f->bcc[i][1] > f->header_end)
			return -1;
		prev = f->bcc[i][1];
	}
	if (f->add_message_id && (!id_ok(msgid_local) || !id_ok(hostname)))
		return -1;

	const char *eol = f->lf ? "\n" : "\r\n";
	if (f->add_date) {
		char d[DATE_MAX];
		rfc5322_date(now, d, sizeof d);
		if (buf_printf(out, "Date: %s%s", d, eol) < 0)
			return -1;
	}
	if (f->add_message_id &&
	    buf_printf(out, "Message-ID: <%s@%s>%s", msgid_local, hostname, eol) < 0)
		return -1;
	prev = 0;
	for (size_t i = 0; i < f->nbcc; i++) {
		if (buf_append(out, msg + prev, f->bcc[i][0] - prev) < 0)
			return -1;
		prev = f->bcc[i][1];
	}
	if (buf_append(out, msg + prev, len - prev) < 0)
		return -1;
	return 0;
}

/* ---- address lists ---- */

enum tok_kind {
	T_END,
	T_WORD,    /* atom (dots included) or quoted-string */
	T_LITERAL, /* [domain literal] */
	T_SPECIAL, /* one of < > @ , : ; */
};

struct tok {
	enum tok_kind kind;
	char c;        /* T_SPECIAL */
	size_t s, e;   /* T_WORD, T_LITERAL: the text (inside the quotes or brackets) */
	bool quoted;   /* T_WORD: a quoted-string */
	bool sloppy;   /* T_WORD: holds an encoded-word with non-atext in it */
};

struct lexer {
	const unsigned char *v;
	size_t n;
	size_t i;
};

/* Length of the well-formed UTF-8 sequence at s[0..avail), s[0] >= 0x80;
 * 0 when malformed. */
static size_t utf8_len(const unsigned char *s, size_t avail)
{
	return mutf7_utf8_char_len((const char *)s, avail);
}

static bool is_wsp(unsigned c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

/* Bytes of the character at lx->i that may stand in text (quoted strings,
 * comments, literals, atoms): 0 for a control character or bad UTF-8. */
static size_t char_len(const struct lexer *lx)
{
	unsigned c = lx->v[lx->i];
	if (c >= 0x80)
		return utf8_len(lx->v + lx->i, lx->n - lx->i);
	if ((c < 0x20 && !is_wsp(c)) || c == 0x7F)
		return 0;
	return 1;
}

/* The character after a backslash (quoted-pair: not a line end). */
static size_t escaped_len(const struct lexer *lx)
{
	if (lx->i >= lx->n || lx->v[lx->i] == '\r' || lx->v[lx->i] == '\n')
		return 0;
	return char_len(lx);
}

/* Skip blanks, line ends (folding) and comments.  -1 on a bad comment. */
static int skip_cfws(struct lexer *lx)
{
	while (lx->i < lx->n) {
		unsigned c = lx->v[lx->i];
		if (is_wsp(c)) {
			lx->i++;
			continue;
		}
		if (c != '(')
			return 0;
		unsigned depth = 1;
		lx->i++;
		while (depth > 0) {
			if (lx->i >= lx->n)
				return -1;
			c = lx->v[lx->i];
			size_t k = char_len(lx);
			if (k == 0)
				return -1;
			if (c == '\\') {
				lx->i++;
				if ((k = escaped_len(lx)) == 0)
					return -1;
			} else if (c == '(') {
				if (++depth > SUBMIT_COMMENT_DEPTH_MAX)
					return -1;
			} else if (c == ')') {
				depth--;
			}
			lx->i += k;
		}
	}
	return 0;
}

/* Quoted-string or domain literal body from lx->i (past the opener) to
 * close; quoted-pairs kept (unescaped later).  -1 when unterminated. */
static int lex_delimited(struct lexer *lx, unsigned char close, struct tok *t)
{
	t->s = lx->i;
	for (;;) {
		if (lx->i >= lx->n)
			return -1;
		unsigned c = lx->v[lx->i];
		if (c == close) {
			t->e = lx->i++;
			return 0;
		}
		if (close == ']' && c == '[')
			return -1;
		size_t k = char_len(lx);
		if (k == 0)
			return -1;
		if (c == '\\') {
			lx->i++;
			if ((k = escaped_len(lx)) == 0)
				return -1;
		}
		lx->i += k;
	}
}

/* An encoded-word "=?charset?B|Q?text?=" at lx->i: its length, 0 if none.
 * Real mail puts specials (',' '"' ...) in the text, so the text may hold
 * any printable ASCII but '?'. */
static size_t encoded_word(const struct lexer *lx, bool *sloppy)
{
	const unsigned char *v = lx->v + lx->i;
	size_t n = MIN(lx->n - lx->i, (size_t)RFC2047_DECODE_WORD_MAX);
	if (n < 8 || v[0] != '=' || v[1] != '?')
		return 0;
	size_t i = 2;
	while (i < n && v[i] != '?' && v[i] > ' ' && v[i] < 0x7F)
		i++;
	if (i == 2 || i + 2 >= n || v[i] != '?')
		return 0;
	unsigned enc = v[i + 1];
	if ((enc != 'B' && enc != 'b' && enc != 'Q' && enc != 'q') || v[i + 2] != '?')
		return 0;
	bool bad = false;
	for (i += 3; i + 1 < n; i++) {
		if (v[i] == '?')
			break;
		if (v[i] <= ' ' || v[i] >= 0x7F)
			return 0;
		if (!is_atext(v[i]) && v[i] != '.')
			bad = true;
	}
	if (i + 1 >= n || v[i + 1] != '=')
		return 0;
	*sloppy = bad;
	return i + 2;
}

/* The next token into *t; -1 on a lexical error. */
static int lex(struct lexer *lx, struct tok *t)
{
	memset(t, 0, sizeof(*t));
	if (skip_cfws(lx) < 0)
		return -1;
	if (lx->i >= lx->n) {
		t->kind = T_END;
		return 0;
	}
	unsigned c = lx->v[lx->i];
	if (c != 0 && strchr("<>@,:;", (int)c) != NULL) {
		t->kind = T_SPECIAL;
		t->c = (char)c;
		lx->i++;
		return 0;
	}
	if (c == '"' || c == '[') {
		t->kind = c == '"' ? T_WORD : T_LITERAL;
		t->quoted = c == '"';
		lx->i++;
		return lex_delimited(lx, c == '"' ? '"' : ']', t);
	}
	t->kind = T_WORD;
	t->s = lx->i;
	while (lx->i < lx->n) {
		c = lx->v[lx->i];
		bool sloppy = false;
		size_t k = c == '=' ? encoded_word(lx, &sloppy) : 0;
		if (k > 0) {
			t->sloppy |= sloppy;
		} else if (c >= 0x80) {
			k = utf8_len(lx->v + lx->i, lx->n - lx->i);
			if (k == 0)
				return -1;
		} else if (is_atext((unsigned char)c) || c == '.') {
			k = 1;
		} else {
			break;
		}
		lx->i += k;
	}
	t->e = lx->i;
	if (t->e == t->s)
		return -1; /* ')', ']', '\\', a control character... */
	return 0;
}

/* An addr-spec being put together. */
struct spec {
	char local[SUBMIT_ADDR_MAX + 1];
	size_t llen;
	size_t nwords;
	bool bad;       /* the words cannot form a local part */
	bool dot_end;   /* the last word was an atom ending in '.' */
};

static void spec_reset(struct spec *sp)
{
	sp->llen = 0;
	sp->nwords = 0;
	sp->bad = false;
	sp->dot_end = false;
}

/* Add a word of a phrase or local part.  Two words make one local part
 * only with a dot between them (obs-local-part allows blanks around it). */
static void spec_word(struct spec *sp, const struct lexer *lx, const struct tok *t)
{
	const unsigned char *v = lx->v;
	bool dot_start = !t->quoted && v[t->s] == '.';
	if (sp->nwords > 0 && !sp->dot_end && !dot_start)
		sp->bad = true;
	if (t->sloppy)
		sp->bad = true;
	sp->nwords++;
	for (size_t i = t->s; i < t->e && !sp->bad; i++) {
		if (v[i] == '\r' || v[i] == '\n')
			continue;
		if (t->quoted && v[i] == '\\')
			i++;
		if (sp->llen == SUBMIT_ADDR_MAX)
			sp->bad = true;
		else
			sp->local[sp->llen++] = (char)v[i];
	}
	sp->dot_end = !t->quoted && t->e > t->s && v[t->e - 1] == '.';
}

/* RFC 5322 dot-atom-text with UTF-8 (as addr_format() decides quoting). */
static bool is_dot_atom(const char *s, size_t n)
{
	bool empty = true;
	if (n == 0)
		return false;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c == '.') {
			if (empty)
				return false;
			empty = true;
		} else if (c >= 0x80 || is_atext(c)) {
			empty = false;
		} else {
			return false;
		}
	}
	return !empty;
}

struct list {
	struct lexer lx;
	struct tok t;                /* the current token */
	void (*cb)(const char *addr, void *arg);
	void *arg;
	int count;
};

static int advance(struct list *l)
{
	return lex(&l->lx, &l->t);
}

static bool at_special(const struct list *l, char c)
{
	return l->t.kind == T_SPECIAL && l->t.c == c;
}

/* Domain after '@' (the current token is the first of it) into out at
 * *n, lower-cased; leaves the token after it current.  -1 if malformed. */
static int parse_domain(struct list *l, char *out, size_t *n, size_t max)
{
	const unsigned char *v = l->lx.v;
	size_t start = *n;
	if (l->t.kind == T_LITERAL) {
		if (*n + 2 + (l->t.e - l->t.s) > max)
			return -1;
		out[(*n)++] = '[';
		for (size_t i = l->t.s; i < l->t.e; i++) {
			if (v[i] == '\r' || v[i] == '\n')
				continue;
			if (v[i] == '\\')
				i++;
			out[(*n)++] = (char)v[i];
		}
		out[(*n)++] = ']';
		return advance(l);
	}
	bool dot_end = false;
	bool first = true;
	while (l->t.kind == T_WORD && !l->t.quoted && !l->t.sloppy &&
	       (first || dot_end || v[l->t.s] == '.')) {
		size_t k = l->t.e - l->t.s;
		if (*n + k > max)
			return -1;
		memcpy(out + *n, v + l->t.s, k);
		*n += k;
		dot_end = v[l->t.e - 1] == '.';
		first = false;
		if (advance(l) < 0)
			return -1;
	}
	if (first || !is_dot_atom(out + start, *n - start))
		return -1;
	return 0;
}

/* Emit the addr-spec: sp holds the local part, the current token is the
 * one after '@'. */
static int addr_spec_rest(struct list *l, const struct spec *sp)
{
	char a[SUBMIT_ADDR_MAX + 1];
	size_t n = 0;

	if (sp->bad || sp->nwords == 0 || sp->llen == 0)
		return -1;
	if (is_dot_atom(sp->local, sp->llen)) {
		memcpy(a, sp->local, sp->llen);
		n = sp->llen;
	} else {
		a[n++] = '"';
		for (size_t i = 0; i < sp->llen; i++) {
			if (n + 3 > SUBMIT_ADDR_MAX)
				return -1;
			if (sp->local[i] == '"' || sp->local[i] == '\\')
				a[n++] = '\\';
			a[n++] = sp->local[i];
		}
		a[n++] = '"';
	}
	if (n + 1 > SUBMIT_ADDR_MAX)
		return -1;
	a[n++] = '@';
	size_t dstart = n;
	if (parse_domain(l, a, &n, SUBMIT_ADDR_MAX) < 0)
		return -1;
	a[n] = '\0';
	for (size_t i = dstart; i < n; i++)
		if (a[i] >= 'A' && a[i] <= 'Z')
			a[i] = (char)(a[i] + ('a' - 'A'));
	if (l->cb != NULL)
		l->cb(a, l->arg);
	l->count++;
	return 0;
}

/* Collect the words at the current token into sp. */
static int words(struct list *l, struct spec *sp)
{
	spec_reset(sp);
	while (l->t.kind == T_WORD) {
		spec_word(sp, &l->lx, &l->t);
		if (advance(l) < 0)
			return -1;
	}
	return 0;
}

/* "<" [obs-route] addr-spec ">", the '<' current. */
static int angle_addr(struct list *l, struct spec *sp)
{
	if (advance(l) < 0)
		return -1;
	if (at_special(l, '@')) {
		/* obs-route: "@a,@b:" -- read and dropped */
		char scratch[SUBMIT_ADDR_MAX + 1];
		for (;;) {
			size_t n = 0;
			if (advance(l) < 0 || parse_domain(l, scratch, &n, SUBMIT_ADDR_MAX) < 0)
				return -1;
			while (at_special(l, ','))
				if (advance(l) < 0)
					return -1;
			if (at_special(l, ':'))
				break;
			if (!at_special(l, '@'))
				return -1;
		}
		if (advance(l) < 0)
			return -1;
	}
	if (words(l, sp) < 0 || !at_special(l, '@') || advance(l) < 0)
		return -1;
	if (addr_spec_rest(l, sp) < 0 || !at_special(l, '>'))
		return -1;
	return advance(l);
}

/* address-list (or mailbox-list) in v[0..n).  The count, or -1. */
static int parse_list(const char *v, size_t n, void (*cb)(const char *, void *), void *arg)
{
	struct list l = {
		.lx = { (const unsigned char *)v, n, 0 },
		.cb = cb,
		.arg = arg,
		.count = 0,
	};
	struct spec sp;
	bool in_group = false;

	if (advance(&l) < 0)
		return -1;
	for (;;) {
		if (words(&l, &sp) < 0)
			return -1;
		if (at_special(&l, '<')) {
			if (angle_addr(&l, &sp) < 0)
				return -1;
		} else if (at_special(&l, '@')) {
			if (advance(&l) < 0 || addr_spec_rest(&l, &sp) < 0)
				return -1;
		} else if (at_special(&l, ':')) {
			/* group: display-name ":" [group-list] ";" */
			if (in_group || sp.nwords == 0)
				return -1;
			in_group = true;
			if (advance(&l) < 0)
				return -1;
			continue;
		} else if (sp.nwords > 0) {
			return -1; /* words without an address */
		}
		/* After an address or an empty element: the separator. */
		if (at_special(&l, ';')) {
			if (!in_group)
				return -1;
			in_group = false;
			if (advance(&l) < 0)
				return -1;
		}
		if (l.t.kind == T_END)
			return in_group ? -1 : l.count;
		if (!at_special(&l, ','))
			return -1;
		if (advance(&l) < 0)
			return -1;
	}
}

/* One pass over the From and Sender fields. */
static int fields_pass(const char *msg, size_t len, const char *const *names, size_t nnames,
		       void (*cb)(const char *, void *), void *arg)
{
	size_t w = window(len), pos = 0;
	struct mime_field f;
	int total = 0;

	while (mime_header_next(msg, w, &pos, &f)) {
		bool want = false;
		for (size_t i = 0; i < nnames; i++)
			want |= field_is(&f, names[i]);
		if (!want)
			continue;
		int k = parse_list(f.value, f.value_len, cb, arg);
		if (k < 0)
			return -1;
		total += k;
	}
	if (header_end_of(msg, len, pos) == (size_t)-1)
		return -1;
	return total;
}

int submit_field_addresses(const char *msg, size_t len, const char *const *names,
			   size_t nnames, void (*cb)(const char *addr, void *arg), void *arg)
{
	if (msg == NULL)
		len = 0;
	int n = fields_pass(msg, len, names, nnames, NULL, NULL);
	if (n <= 0 || cb == NULL)
		return n;
	return fields_pass(msg, len, names, nnames, cb, arg);
}

int submit_from_addresses(const char *msg, size_t len, void (*cb)(const char *addr, void *arg),
			  void *arg)
{
	static const char *const from[] = {"From", "Sender"};
	return submit_field_addresses(msg, len, from, 2, cb, arg);
}
