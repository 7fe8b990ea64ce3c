/* mime.c - MIME structure parser; see mime.h for the contract.
 *
 * Parts are made in pre-order from an explicit work stack: popping a range
 * makes a part, parses its header, and when it is a container pushes its
 * children's ranges (in reverse, so the first child is made next).  An
 * outer multipart is split before its children are looked at, so an inner
 * part that never closes cannot swallow the outer boundary. */
#include <assert.h>
#include <stdlib.h>
#include <string.h>

#include "core/buf.h"
#include "core/util.h"
#include "mail/decode.h"
#include "mail/mime.h"

const struct mime_limits mime_limits_default = {
	.max_depth = MIME_DEPTH_MAX,
	.max_parts = MIME_PARTS_MAX,
	.max_field_len = MIME_FIELD_MAX,
	.max_boundary_len = MIME_BOUNDARY_MAX,
	.max_params = MIME_PARAMS_MAX,
};

/* ---- header fields ---- */

static bool is_blank_line(const char *h, size_t len, size_t p)
{
	return h[p] == '\n' || (h[p] == '\r' && p + 1 < len && h[p + 1] == '\n');
}

bool mime_header_next(const char *h, size_t len, size_t *pos, struct mime_field *f_r)
{
	size_t p = *pos;
	if (p >= len || is_blank_line(h, len, p))
		return false;
	size_t start = p, e = p;
	for (;;) {
		const char *nl = memchr(h + e, '\n', len - e);
		if (nl == NULL) {
			e = len;
			break;
		}
		e = (size_t)(nl - h) + 1;
		if (e < len && (h[e] == ' ' || h[e] == '\t'))
			continue;
		break;
	}
	*pos = e;
	/* value end: drop the final line end */
	size_t ve = e;
	if (ve > start && h[ve - 1] == '\n') {
		ve--;
		if (ve > start && h[ve - 1] == '\r')
			ve--;
	}
	const char *colon = NULL;
	for (size_t i = start; i < ve && h[i] != '\n'; i++) {
		if (h[i] == ':') {
			colon = h + i;
			break;
		}
	}
	if (colon == NULL) {
		f_r->name = h + start;
		f_r->name_len = 0;
		f_r->value = h + start;
		f_r->value_len = ve - start;
		return true;
	}
	size_t nl = (size_t)(colon - h) - start;
	while (nl > 0 && (h[start + nl - 1] == ' ' || h[start + nl - 1] == '\t'))
		nl--;
	f_r->name = h + start;
	f_r->name_len = nl;
	f_r->value = colon + 1;
	f_r->value_len = ve - (size_t)(colon + 1 - h);
	return true;
}

char *mime_unfold(const char *v, size_t len, size_t max, bool *truncated_r)
{
	size_t s = 0, e = len;
	while (s < e && (v[s] == ' ' || v[s] == '\t' || v[s] == '\r' || v[s] == '\n'))
		s++;
	while (e > s && (v[e - 1] == ' ' || v[e - 1] == '\t' || v[e - 1] == '\r' ||
			 v[e - 1] == '\n'))
		e--;
	size_t cap = MIN(e - s, max);
	char *out = xmalloc(cap + 1);
	size_t n = 0;
	bool trunc = false;
	for (size_t i = s; i < e; i++) {
		char c = v[i];
		if (c == '\r' || c == '\n')
			continue;
		if (n == cap) {
			trunc = true;
			break;
		}
		out[n++] = c == '\0' ? ' ' : c;
	}
	out[n] = '\0';
	if (truncated_r != NULL)
		*truncated_r = trunc;
	return out;
}

static bool field_is(const struct mime_field *f, const char *name)
{
	size_t n = strlen(name);
	return f->name_len == n && str_nieq(f->name, name, n);
}

char *mime_header_find(const char *hdr, size_t len, const char *name, size_t max,
		       bool *truncated_r)
{
	size_t pos = 0;
	struct mime_field f;
	while (mime_header_next(hdr, len, &pos, &f)) {
		if (field_is(&f, name))
			return mime_unfold(f.value, f.value_len, max, truncated_r);
	}
	if (truncated_r != NULL)
		*truncated_r = false;
	return NULL;
}

/* ---- RFC 2045 tokens, parameters and RFC 2231 ---- */

static bool is_token_char(unsigned char c)
{
	return c > 32 && c < 127 && strchr("()<>@,;:\\\"/[]?=", c) == NULL;
}

/* Skip blanks and comments; comments nest, counted without recursion. */
static const char *skip_cfws(const char *p)
{
	for (;;) {
		while (*p == ' ' || *p == '\t')
			p++;
		if (*p != '(')
			return p;
		size_t depth = 0;
		while (*p != '\0') {
			if (*p == '\\' && p[1] != '\0') {
				p += 2;
				continue;
			}
			if (*p == '(') {
				depth++;
			} else if (*p == ')' && --depth == 0) {
				p++;
				break;
			}
			p++;
		}
	}
}

static char *read_token(const char **pp)
{
	const char *p = *pp, *s = p;
	while (is_token_char((unsigned char)*p))
		p++;
	*pp = p;
	if (p == s)
		return NULL;
	char *t = xstrndup(s, (size_t)(p - s));
	str_lower(t);
	return t;
}

/* The end of s[0..e) without trailing blanks and without comments that
 * follow a blank at its end (balanced, not nested deeper than they close);
 * a parenthesis inside a word ("file(1).pdf") is not a comment. */
static const char *trailing_comments(const char *s, const char *e)
{
	for (;;) {
		while (e > s && (e[-1] == ' ' || e[-1] == '\t'))
			e--;
		if (e == s || e[-1] != ')')
			return e;
		const char *q = e - 1;
		size_t depth = 0;
		for (; q >= s; q--) {
			if (*q == ')')
				depth++;
			else if (*q == '(' && --depth == 0)
				break;
			if (q == s)
				return e;
		}
		if (q == s || (q[-1] != ' ' && q[-1] != '\t'))
			return e;
		e = q;
	}
}

struct raw_param {
	char *name;    /* full lower-cased attribute, '*' parts included */
	char *value;
};

/* Parse "; a=b; c="d"" into raw attribute/value pairs (at most max). */
static size_t parse_raw_params(const char *p, struct raw_param *out, size_t max, bool *capped)
{
	size_t n = 0;
	for (;;) {
		p = skip_cfws(p);
		if (*p == '\0')
			break;
		if (*p != ';') {
			p = strchr(p, ';');
			if (p == NULL)
				break;
		}
		p = skip_cfws(p + 1);
		char *name = read_token(&p);
		if (name == NULL)
			continue;
		p = skip_cfws(p);
		if (*p != '=') {
			free(name);
			continue;
		}
		p = skip_cfws(p + 1);
		char *value;
		if (*p == '"') {
			p++;
			size_t vl = 0, room = 0;
			for (const char *q = p; *q != '\0' && *q != '"'; q++, room++) {
				if (*q == '\\' && q[1] != '\0')
					q++;
			}
			value = xmalloc(room + 1);
			while (*p != '\0' && *p != '"') {
				if (*p == '\\' && p[1] != '\0')
					p++;
				value[vl++] = *p++;
			}
			value[vl] = '\0';
			if (*p == '"')
				p++;
		} else {
			/* lenient: an unquoted value runs to the next ';', less
			 * the comments that end it ("us-ascii (Plain text)",
			 * RFC 2045 5.1) */
			const char *s = p;
			while (*p != '\0' && *p != ';')
				p++;
			const char *e = trailing_comments(s, p);
			value = xstrndup(s, (size_t)(e - s));
		}
		if (n == max) {
			*capped = true;
			free(name);
			free(value);
			continue;
		}
		out[n].name = name;
		out[n].value = value;
		n++;
	}
	return n;
}

/* name*, name*N, name*N*: *seg_r = -1 for name*, N otherwise; false when
 * the attribute is not an RFC 2231 form. */
static bool split_2231(const char *name, size_t *base_len_r, long *seg_r, bool *ext_r)
{
	const char *star = strchr(name, '*');
	if (star == NULL || star == name)
		return false;
	*base_len_r = (size_t)(star - name);
	const char *p = star + 1;
	if (*p == '\0') {
		*seg_r = -1;
		*ext_r = true;
		return true;
	}
	if (*p < '0' || *p > '9' || (*p == '0' && p[1] >= '0' && p[1] <= '9'))
		return false;
	long n = 0;
	while (*p >= '0' && *p <= '9') {
		n = n * 10 + (*p - '0');
		if (n >= MIME_2231_SEGMENTS_MAX)
			return false;
		p++;
	}
	*ext_r = *p == '*';
	if (*ext_r)
		p++;
	if (*p != '\0')
		return false;
	*seg_r = n;
	return true;
}

static void percent_decode(struct buf *b, const char *s)
{
	for (; *s != '\0'; s++) {
		int hi, lo;
		if (*s == '%' && (hi = hex_value((unsigned char)s[1])) >= 0 && (lo = hex_value((unsigned char)s[2])) >= 0) {
			char c = (char)(hi * 16 + lo);
			(void)buf_append(b, &c, 1);
			s += 2;
		} else {
			(void)buf_append(b, s, 1);
		}
	}
}

/* bytes in charset to a fresh UTF-8 string, or NULL when the charset is
 * unknown (names as decode.h takes them: its aliases, Shift_JIS as CP932)
 * or the bytes are not valid in it. */
static char *to_utf8(const char *charset, const char *in, size_t len)
{
	if (charset[0] == '\0' || str_ieq(charset, "us-ascii") || str_ieq(charset, "utf-8") ||
	    str_ieq(charset, "utf8"))
		return xstrndup(in, len);
	struct decode_charset d;
	const char *err;
	if (decode_charset_init(&d, charset, &err) < 0)
		return NULL;
	/* no charset iconv knows takes more than 4 UTF-8 bytes per input byte */
	struct buf out;
	buf_init(&out, len * 4 + 4);
	bool ok = decode_charset(&d, in, len, &out) == 0 && decode_charset_finish(&d, &out) == 0 &&
		  d.replaced == 0;
	decode_charset_free(&d);
	if (!ok) {
		buf_free(&out);
		return NULL;
	}
	return buf_steal(&out, NULL);
}

/* Join the RFC 2231 segments of base (base_len bytes); NULL if there is no
 * segment 0 (nor a single name*). */
static char *join_2231(const struct raw_param *raw, size_t n, const char *base, size_t base_len,
		       size_t max, bool *trunc)
{
	const char *segs[MIME_2231_SEGMENTS_MAX];
	bool ext[MIME_2231_SEGMENTS_MAX];
	const char *single = NULL;
	memset(segs, 0, sizeof(segs));
	for (size_t i = 0; i < n; i++) {
		size_t bl;
		long seg;
		bool e;
		if (!split_2231(raw[i].name, &bl, &seg, &e) || bl != base_len ||
		    memcmp(raw[i].name, base, bl) != 0)
			continue;
		if (seg < 0) {
			if (single == NULL)
				single = raw[i].value;
		} else if (segs[seg] == NULL) {
			segs[seg] = raw[i].value;
			ext[seg] = e;
		}
	}
	size_t nseg = 0;
	if (segs[0] == NULL) {
		if (single == NULL)
			return NULL;
		segs[0] = single;
		ext[0] = true;
		nseg = 1;
	} else {
		while (nseg < MIME_2231_SEGMENTS_MAX && segs[nseg] != NULL)
			nseg++;
	}
	/* charset'language' prefix of an extended first segment */
	char charset[64] = "";
	const char *first = segs[0];
	if (ext[0]) {
		const char *q1 = strchr(first, '\'');
		const char *q2 = q1 != NULL ? strchr(q1 + 1, '\'') : NULL;
		if (q2 != NULL) {
			size_t cl = (size_t)(q1 - first);
			if (cl < sizeof(charset)) {
				memcpy(charset, first, cl);
				charset[cl] = '\0';
			} else {
				strcpy(charset, "x-unknown-too-long");
			}
			first = q2 + 1;
		}
	}
	struct buf raw_text, bytes;
	buf_init(&raw_text, max);
	buf_init(&bytes, max);
	bool any_ext = false;
	for (size_t i = 0; i < nseg; i++) {
		const char *v = i == 0 ? first : segs[i];
		if (buf_append_str(&raw_text, v) < 0)
			*trunc = true;
		if (ext[i]) {
			any_ext = true;
			percent_decode(&bytes, v);
		} else {
			(void)buf_append_str(&bytes, v);
		}
	}
	char *val = NULL;
	if (any_ext)
		val = to_utf8(charset, bytes.data != NULL ? bytes.data : "", bytes.len);
	if (val == NULL) {
		/* unknown charset or bad bytes: keep the text as it came */
		val = xstrdup(any_ext ? (raw_text.data != NULL ? raw_text.data : "")
				      : (bytes.data != NULL ? bytes.data : ""));
	}
	if (strlen(val) > max) {
		val[max] = '\0';
		*trunc = true;
	}
	buf_free(&raw_text);
	buf_free(&bytes);
	return val;
}

static void params_add(struct mime_params *ps, char *name, char *value)
{
	ps->v = xreallocarray(ps->v, ps->n + 1, sizeof(*ps->v));
	ps->v[ps->n].name = name;
	ps->v[ps->n].value = value;
	ps->n++;
}

static void params_free(struct mime_params *ps)
{
	for (size_t i = 0; i < ps->n; i++) {
		free(ps->v[i].name);
		free(ps->v[i].value);
	}
	FREE(ps->v);
	ps->n = 0;
}

/* name is exactly the first len bytes of base */
static bool name_is(const char *name, const char *base, size_t len)
{
	return strlen(name) == len && memcmp(name, base, len) == 0;
}

/* Parameters after the type in p, RFC 2231 forms joined, into ps. */
static void parse_params(const char *p, const struct mime_limits *lim, struct mime_params *ps,
			 unsigned *flags)
{
	struct raw_param *raw = xreallocarray(NULL, lim->max_params + 1, sizeof(*raw));
	bool capped = false, trunc = false;
	size_t n = parse_raw_params(p, raw, lim->max_params, &capped);
	for (size_t i = 0; i < n; i++) {
		size_t bl;
		long seg;
		bool ext;
		bool is2231 = split_2231(raw[i].name, &bl, &seg, &ext);
		if (!is2231)
			bl = strlen(raw[i].name);
		/* one output parameter per base name, at its first appearance */
		bool seen = false;
		for (size_t j = 0; j < ps->n && !seen; j++)
			seen = name_is(ps->v[j].name, raw[i].name, bl);
		if (seen)
			continue;
		char *v = join_2231(raw, n, raw[i].name, bl, lim->max_field_len, &trunc);
		if (v == NULL) {
			/* no RFC 2231 value: the first plain one */
			for (size_t j = i; j < n && v == NULL; j++) {
				if (name_is(raw[j].name, raw[i].name, bl))
					v = xstrdup(raw[j].value);
			}
			if (v == NULL)
				continue;
		}
		params_add(ps, xstrndup(raw[i].name, bl), v);
	}
	for (size_t i = 0; i < n; i++) {
		free(raw[i].name);
		free(raw[i].value);
	}
	free(raw);
	if (capped)
		*flags |= MIME_PART_PARAMS_CAPPED;
	if (trunc)
		*flags |= MIME_PART_FIELD_TRUNCATED;
}

const char *mime_param_get(const struct mime_params *ps, const char *name)
{
	for (size_t i = 0; i < ps->n; i++) {
		if (strcmp(ps->v[i].name, name) == 0)
			return ps->v[i].value;
	}
	return NULL;
}

/* ---- parts ---- */

bool mime_part_is_multipart(const struct mime_part *p)
{
	return strcmp(p->type, "multipart") == 0;
}

bool mime_part_is_message(const struct mime_part *p)
{
	return strcmp(p->type, "message") == 0 && strcmp(p->subtype, "rfc822") == 0;
}

static size_t count_lines(const char *d, size_t len)
{
	size_t n = 0;
	const char *p = d, *end = d + len;
	while (p < end && (p = memchr(p, '\n', (size_t)(end - p))) != NULL) {
		n++;
		p++;
	}
	if (len > 0 && d[len - 1] != '\n')
		n++;
	return n;
}

/* Header block of data[start..end): its length, blank line included. */
static size_t header_len(const char *d, size_t start, size_t end, bool *no_end)
{
	size_t p = start;
	while (p < end) {
		if (is_blank_line(d, end, p))
			return p - start + (d[p] == '\r' ? 2 : 1);
		const char *nl = memchr(d + p, '\n', end - p);
		if (nl == NULL)
			break;
		p = (size_t)(nl - d) + 1;
	}
	*no_end = true;
	return end - start;
}

static char *field_value(const struct mime_field *f, const struct mime_limits *lim,
			 unsigned *flags)
{
	bool trunc = false;
	char *v = mime_unfold(f->value, f->value_len, lim->max_field_len, &trunc);
	if (trunc)
		*flags |= MIME_PART_FIELD_TRUNCATED;
	return v;
}

static void set_once(char **dst, char *v)
{
	if (*dst == NULL)
		*dst = v;
	else
		free(v);
}

/* Content-* fields of part p's header. */
static void parse_part_header(const char *d, struct mime_part *p, const struct mime_limits *lim,
			      bool digest_child)
{
	const char *h = d + p->hdr_off;
	size_t pos = 0;
	struct mime_field f;
	bool have_ct = false;
	while (mime_header_next(h, p->hdr_len, &pos, &f)) {
		if (f.name_len < 8 || !str_nieq(f.name, "content-", 8))
			continue;
		if (field_is(&f, "content-type")) {
			if (have_ct)
				continue;
			char *v = field_value(&f, lim, &p->flags);
			const char *s = skip_cfws(v);
			char *type = read_token(&s);
			char *sub = NULL;
			s = skip_cfws(s);
			if (type != NULL && *s == '/') {
				s = skip_cfws(s + 1);
				sub = read_token(&s);
			}
			if (type != NULL && sub != NULL) {
				have_ct = true;
				p->type = type;
				p->subtype = sub;
				parse_params(s, lim, &p->params, &p->flags);
			} else {
				free(type);
				free(sub);
			}
			free(v);
		} else if (field_is(&f, "content-transfer-encoding")) {
			char *v = field_value(&f, lim, &p->flags);
			const char *s = skip_cfws(v);
			char *t = read_token(&s);
			if (t != NULL)
				set_once(&p->encoding, t);
			free(v);
		} else if (field_is(&f, "content-disposition")) {
			if (p->disposition != NULL)
				continue;
			char *v = field_value(&f, lim, &p->flags);
			const char *s = skip_cfws(v);
			p->disposition = read_token(&s);
			if (p->disposition != NULL)
				parse_params(s, lim, &p->disp_params, &p->flags);
			free(v);
		} else if (field_is(&f, "content-id")) {
			set_once(&p->id, field_value(&f, lim, &p->flags));
		} else if (field_is(&f, "content-description")) {
			set_once(&p->description, field_value(&f, lim, &p->flags));
		} else if (field_is(&f, "content-language")) {
			set_once(&p->language, field_value(&f, lim, &p->flags));
		} else if (field_is(&f, "content-location")) {
			set_once(&p->location, field_value(&f, lim, &p->flags));
		} else if (field_is(&f, "content-md5")) {
			set_once(&p->md5, field_value(&f, lim, &p->flags));
		}
	}
	if (have_ct)
		return;
	/* RFC 2045 5.2, RFC 2046 5.1.5 */
	p->flags |= MIME_PART_CT_DEFAULT;
	if (digest_child) {
		p->type = xstrdup("message");
		p->subtype = xstrdup("rfc822");
	} else {
		p->type = xstrdup("text");
		p->subtype = xstrdup("plain");
		params_add(&p->params, xstrdup("charset"), xstrdup("us-ascii"));
	}
}

struct work {
	size_t start, end; /* the whole entity: header and body */
	size_t parent;
	size_t index;      /* 1-based among its siblings */
};

struct walker {
	const char *d;
	const struct mime_limits *lim;
	struct mime_message *m;
	size_t parts_cap;
	struct work *stack;
	size_t sp, stack_cap;
};

static void push(struct walker *w, size_t start, size_t end, size_t parent, size_t index)
{
	if (w->sp == w->stack_cap) {
		w->stack_cap = w->stack_cap == 0 ? 16 : w->stack_cap * 2;
		w->stack = xreallocarray(w->stack, w->stack_cap, sizeof(*w->stack));
	}
	w->stack[w->sp++] = (struct work){start, end, parent, index};
}

/* Offset of the line start after the line at p (end when none). */
static size_t next_line(const char *d, size_t p, size_t end)
{
	const char *nl = memchr(d + p, '\n', end - p);
	return nl == NULL ? end : (size_t)(nl - d) + 1;
}

/* Split multipart part pi's body by its boundary and push the children. */
static void split_multipart(struct walker *w, size_t pi)
{
	struct mime_part *p = &w->m->parts[pi];
	const char *d = w->d;
	const char *boundary = mime_param_get(&p->params, "boundary");
	size_t blen = boundary != NULL ? strlen(boundary) : 0;
	if (blen == 0 || blen > w->lim->max_boundary_len) {
		p->flags |= MIME_PART_NO_BOUNDARY;
		return;
	}
	size_t bs = p->body_off, be = p->body_off + p->body_len;
	size_t budget = w->lim->max_parts - w->m->n_parts;
	size_t base = w->sp, nchild = 0;
	size_t cur = MIME_NONE; /* start of the child being delimited */
	bool closed = false, capped = false;
	for (size_t ls = bs; ls < be; ls = next_line(d, ls, be)) {
		if (be - ls < 2 + blen || d[ls] != '-' || d[ls + 1] != '-' ||
		    memcmp(d + ls + 2, boundary, blen) != 0)
			continue;
		bool close = be - ls >= 4 + blen && d[ls + 2 + blen] == '-' &&
			     d[ls + 3 + blen] == '-';
		if (cur != MIME_NONE) {
			/* the line end before the delimiter belongs to it */
			size_t e = ls;
			if (e > bs && d[e - 1] == '\n') {
				e--;
				if (e > bs && d[e - 1] == '\r')
					e--;
			}
			if (e < cur)
				e = cur;
			if (nchild < budget)
				push(w, cur, e, pi, nchild + 1);
			else
				capped = true;
			nchild++;
		}
		if (close) {
			closed = true;
			break;
		}
		cur = next_line(d, ls, be);
	}
	if (!closed && cur != MIME_NONE) {
		if (nchild < budget)
			push(w, cur, be, pi, nchild + 1);
		else
			capped = true;
		nchild++;
	}
	p = &w->m->parts[pi];
	if (w->sp == base && !capped) {
		p->flags |= MIME_PART_NO_BOUNDARY;
		return;
	}
	if (!closed)
		p->flags |= MIME_PART_NO_CLOSE;
	if (capped)
		p->flags |= MIME_PART_PARTS_CAPPED;
	/* reverse so that the first child is popped first */
	for (size_t i = base, j = w->sp; j > i + 1; i++, j--) {
		/* swap stack[i] and stack[j - 1] */
		struct work t = w->stack[i];
		w->stack[i] = w->stack[j - 1];
		w->stack[j - 1] = t;
	}
}

static char *make_section(const struct mime_message *m, size_t parent, size_t index,
			  bool multipart)
{
	if (parent == MIME_NONE)
		return xstrdup(multipart ? "" : "1");
	const struct mime_part *pp = &m->parts[parent];
	if (mime_part_is_message(pp)) {
		if (multipart)
			return xstrdup(pp->section);
		return pp->section[0] != '\0' ? xasprintf("%s.1", pp->section) : xstrdup("1");
	}
	if (pp->section[0] == '\0')
		return xasprintf("%zu", index);
	return xasprintf("%s.%zu", pp->section, index);
}

static void make_part(struct walker *w, const struct work *wk)
{
	struct mime_message *m = w->m;
	if (m->n_parts == w->parts_cap) {
		w->parts_cap = MIN(w->parts_cap * 2, w->lim->max_parts);
		m->parts = xreallocarray(m->parts, w->parts_cap, sizeof(*m->parts));
	}
	size_t pi = m->n_parts++;
	struct mime_part *p = &m->parts[pi];
	memset(p, 0, sizeof(*p));
	p->parent = wk->parent;
	p->first_child = p->last_child = p->next_sibling = MIME_NONE;
	p->subtree_end = pi + 1;
	bool digest_child = false;
	if (wk->parent != MIME_NONE) {
		struct mime_part *pp = &m->parts[wk->parent];
		p->depth = pp->depth + 1;
		if (pp->first_child == MIME_NONE)
			pp->first_child = pi;
		else
			m->parts[pp->last_child].next_sibling = pi;
		pp->last_child = pi;
		pp->n_children++;
		digest_child = mime_part_is_multipart(pp) && strcmp(pp->subtype, "digest") == 0;
		if (mime_part_is_message(pp))
			p->flags |= MIME_PART_MESSAGE;
	} else {
		p->flags |= MIME_PART_MESSAGE;
	}
	bool no_end = false;
	p->hdr_off = wk->start;
	p->hdr_len = header_len(w->d, wk->start, wk->end, &no_end);
	if (no_end)
		p->flags |= MIME_PART_NO_HDR_END;
	p->body_off = p->hdr_off + p->hdr_len;
	p->body_len = wk->end - p->body_off;
	p->body_lines = count_lines(w->d + p->body_off, p->body_len);
	parse_part_header(w->d, p, w->lim, digest_child);
	p->section = make_section(m, wk->parent, wk->index, mime_part_is_multipart(p));

	bool container = mime_part_is_multipart(p);
	if (mime_part_is_message(p)) {
		/* an encoded message/rfc822 is not parsed (RFC 2046 5.2.1) */
		container = p->encoding == NULL || (!str_ieq(p->encoding, "base64") &&
						    !str_ieq(p->encoding, "quoted-printable"));
	}
	if (!container)
		return;
	if (p->depth >= w->lim->max_depth) {
		p->flags |= MIME_PART_DEPTH_CAPPED;
		return;
	}
	if (mime_part_is_multipart(p))
		split_multipart(w, pi);
	else
		push(w, p->body_off, p->body_off + p->body_len, pi, 1);
}

struct mime_message *mime_parse(const char *data, size_t len, const struct mime_limits *limits)
{
	const struct mime_limits *lim = limits != NULL ? limits : &mime_limits_default;
	assert(lim->max_parts >= 1 && lim->max_field_len >= 1);
	struct mime_message *m = xcalloc(1, sizeof(*m));
	struct walker w = {.d = data, .lim = lim, .m = m};
	w.parts_cap = MIN((size_t)8, lim->max_parts);
	m->parts = xreallocarray(NULL, w.parts_cap, sizeof(*m->parts));
	push(&w, 0, len, MIME_NONE, 0);
	while (w.sp > 0) {
		struct work wk = w.stack[--w.sp];
		if (m->n_parts >= lim->max_parts) {
			m->parts[wk.parent].flags |= MIME_PART_PARTS_CAPPED;
			continue;
		}
		make_part(&w, &wk);
	}
	free(w.stack);
	/* pre-order: a part's subtree ends where its last descendant's does */
	for (size_t i = m->n_parts; i-- > 1;) {
		struct mime_part *pp = &m->parts[m->parts[i].parent];
		pp->subtree_end = MAX(pp->subtree_end, m->parts[i].subtree_end);
	}
	for (size_t i = 0; i < m->n_parts; i++)
		m->flags |= m->parts[i].flags;
	return m;
}

void mime_message_free(struct mime_message **mp)
{
	struct mime_message *m = *mp;
	if (m == NULL)
		return;
	for (size_t i = 0; i < m->n_parts; i++) {
		struct mime_part *p = &m->parts[i];
		free(p->type);
		free(p->subtype);
		params_free(&p->params);
		free(p->encoding);
		free(p->id);
		free(p->description);
		free(p->disposition);
		params_free(&p->disp_params);
		free(p->language);
		free(p->location);
		free(p->md5);
		free(p->section);
	}
	free(m->parts);
	free(m);
	*mp = NULL;
}

const struct mime_part *mime_find_section(const struct mime_message *m, const char *section)
{
	for (size_t i = 0; i < m->n_parts; i++) {
		if (strcmp(m->parts[i].section, section) == 0)
			return &m->parts[i];
	}
	return NULL;
}
