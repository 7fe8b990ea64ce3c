/* imap_search.c - SEARCH program compiler and evaluator, SORT keys, base
 * subjects and THREAD (ORDEREDSUBJECT, REFERENCES); see imap_search.h.
 *
 * A program is a tree of nodes in one array (children as linked lists).
 * Compiling walks the flat argument array with an explicit stack of open
 * NOT/OR/( ) frames; within each AND or OR the children are then ordered
 * cheap-first (flags and numbers, one header field, whole texts) so that a
 * body is only decoded when the cheap keys did not already decide.
 * Evaluation walks the tree with a fixed stack (depth is capped) and
 * short-circuits.  Header and body text is decoded and case-folded at most
 * once per imap_search_match() call. */
#include "proto/imap/imap_search.h"

#include <assert.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "core/util.h"
#include "mail/decode.h"
#include "mail/rfc2047.h"
#include "store/store.h"

_Static_assert((IMAP_SEARCH_RECENT & (FLAG_SEEN | FLAG_ANSWERED | FLAG_FLAGGED |
				      FLAG_DELETED | FLAG_DRAFT)) == 0,
	       "IMAP_SEARCH_RECENT collides with a flag");

/* ------------------------------------------------------------------ */
/* case folding */

/* Simple case folding of one code point for the scripts named in the
 * header; others are returned unchanged.  The result is never longer in
 * UTF-8 than c, so text can be folded in place. */
static uint32_t fold_cp(uint32_t c)
{
	if (c < 0x80)
		return c >= 'A' && c <= 'Z' ? c + 32 : c;
	if (c < 0x100) {
		if (c == 0xb5)
			return 0x3bc;           /* micro sign -> mu */
		if (c >= 0xc0 && c <= 0xde && c != 0xd7)
			return c + 32;
		return c;
	}
	if (c <= 0x17f) {
		if (c == 0x178)
			return 0xff;
		if (c == 0x17f)
			return 's';
		if ((c <= 0x12f) || (c >= 0x132 && c <= 0x137) || (c >= 0x14a && c <= 0x177))
			return c | 1;
		if ((c >= 0x139 && c <= 0x148) || (c >= 0x179 && c <= 0x17e))
			return (c & 1) ? c + 1 : c;
		return c;
	}
	if (c >= 0x370 && c <= 0x3ff) {
		if (c == 0x386)
			return 0x3ac;
		if (c >= 0x388 && c <= 0x38a)
			return c + 37;
		if (c == 0x38c)
			return 0x3cc;
		if (c == 0x38e || c == 0x38f)
			return c + 63;
		if (c >= 0x391 && c <= 0x3ab && c != 0x3a2)
			return c + 32;
		if (c == 0x3c2)
			return 0x3c3;           /* final sigma */
		return c;
	}
	if (c >= 0x400 && c <= 0x52f) {
		if (c <= 0x40f)
			return c + 0x50;
		if (c <= 0x42f)
			return c + 0x20;
		if ((c >= 0x460 && c <= 0x481) || (c >= 0x48a && c <= 0x4bf) ||
		    (c >= 0x4d0 && c <= 0x52f))
			return c | 1;
		if (c == 0x4c0)
			return 0x4cf;
		if (c >= 0x4c1 && c <= 0x4ce)
			return (c & 1) ? c + 1 : c;
		return c;
	}
	if (c >= 0x531 && c <= 0x556)
		return c + 0x30;
	if (c >= 0x1e00 && c <= 0x1eff) {
		if (c == 0x1e9e)
			return 0xdf;
		if (c <= 0x1e95 || c >= 0x1ea0)
			return c | 1;
		return c;
	}
	if (c == 0x2126)
		return 0x3c9;                   /* ohm */
	if (c == 0x212a)
		return 'k';                     /* kelvin */
	if (c == 0x212b)
		return 0xe5;                    /* angstrom */
	if (c >= 0xff21 && c <= 0xff3a)
		return c + 0x20;
	return c;
}

/* One well-formed UTF-8 character at s[0..n), n >= 1: its length, or 0. */
static size_t utf8_decode(const unsigned char *s, size_t n, uint32_t *cp_r)
{
	unsigned char c = s[0];
	uint32_t v;

	if (c < 0x80) {
		*cp_r = c;
		return 1;
	}
	if (c < 0xc2)
		return 0;
	if (c < 0xe0) {
		if (n < 2 || (s[1] & 0xc0) != 0x80)
			return 0;
		*cp_r = (uint32_t)(c & 0x1f) << 6 | (s[1] & 0x3f);
		return 2;
	}
	if (c < 0xf0) {
		if (n < 3 || (s[1] & 0xc0) != 0x80 || (s[2] & 0xc0) != 0x80)
			return 0;
		v = (uint32_t)(c & 0x0f) << 12 | (uint32_t)(s[1] & 0x3f) << 6 | (s[2] & 0x3f);
		if (v < 0x800 || (v >= 0xd800 && v <= 0xdfff))
			return 0;
		*cp_r = v;
		return 3;
	}
	if (c < 0xf5) {
		if (n < 4 || (s[1] & 0xc0) != 0x80 || (s[2] & 0xc0) != 0x80 ||
		    (s[3] & 0xc0) != 0x80)
			return 0;
		v = (uint32_t)(c & 0x07) << 18 | (uint32_t)(s[1] & 0x3f) << 12 |
		    (uint32_t)(s[2] & 0x3f) << 6 | (s[3] & 0x3f);
		if (v < 0x10000 || v > 0x10ffff)
			return 0;
		*cp_r = v;
		return 4;
	}
	return 0;
}

static size_t utf8_encode(uint32_t c, char *o)
{
	if (c < 0x80) {
		o[0] = (char)c;
		return 1;
	}
	if (c < 0x800) {
		o[0] = (char)(0xc0 | c >> 6);
		o[1] = (char)(0x80 | (c & 0x3f));
		return 2;
	}
	if (c < 0x10000) {
		o[0] = (char)(0xe0 | c >> 12);
		o[1] = (char)(0x80 | ((c >> 6) & 0x3f));
		o[2] = (char)(0x80 | (c & 0x3f));
		return 3;
	}
	o[0] = (char)(0xf0 | c >> 18);
	o[1] = (char)(0x80 | ((c >> 12) & 0x3f));
	o[2] = (char)(0x80 | ((c >> 6) & 0x3f));
	o[3] = (char)(0x80 | (c & 0x3f));
	return 4;
}

/* Case-fold s[0..n) in place (bytes that are not UTF-8 are kept); returns
 * the new length, which is never more than n. */
static size_t fold_inplace(char *s, size_t n)
{
	size_t r = 0, w = 0;

	while (r < n) {
		unsigned char c = (unsigned char)s[r];
		if (c < 0x80) {
			s[w++] = (char)(c >= 'A' && c <= 'Z' ? c + 32 : c);
			r++;
			continue;
		}
		uint32_t cp;
		size_t k = utf8_decode((const unsigned char *)s + r, n - r, &cp);
		if (k == 0) {
			s[w++] = s[r++];
			continue;
		}
		uint32_t f = fold_cp(cp);
		if (f == cp) {
			memmove(s + w, s + r, k);
			w += k;
		} else {
			char tmp[4];
			size_t m = utf8_encode(f, tmp);
			assert(m <= k);
			memcpy(s + w, tmp, m);
			w += m;
		}
		r += k;
	}
	return w;
}

/* Fold b->data[from..len) and fix len. */
static void buf_fold_tail(struct buf *b, size_t from)
{
	if (b->len <= from)
		return;
	b->len = from + fold_inplace(b->data + from, b->len - from);
	b->data[b->len] = '\0';
}

static char *fold_dup(const char *s, size_t n)
{
	char *d = xstrndup(s, n);
	d[fold_inplace(d, n)] = '\0';
	return d;
}

static void upper_ascii(char *s)
{
	for (; *s; s++)
		if (*s >= 'a' && *s <= 'z')
			*s = (char)(*s - 32);
}

static bool find_in(const char *hay, size_t hlen, const char *needle, size_t nlen)
{
	if (nlen == 0)
		return true;
	if (hay == NULL || hlen < nlen)
		return false;
	return memmem(hay, hlen, needle, nlen) != NULL;
}

/* ------------------------------------------------------------------ */
/* dates */

static const char months[12][4] = {
	"jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
};

static bool leap(int64_t y)
{
	return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

static unsigned month_days(int64_t y, unsigned m)
{
	static const unsigned char d[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
	return m == 2 && leap(y) ? 29 : d[m - 1];
}

/* Days since 1970-01-01 of a proleptic Gregorian date (m 1..12). */
static int64_t days_from_civil(int64_t y, unsigned m, unsigned d)
{
	if (m <= 2)
		y--;
	int64_t era = (y >= 0 ? y : y - 399) / 400;
	unsigned yoe = (unsigned)(y - era * 400);
	unsigned mp = m > 2 ? m - 3 : m + 9;
	unsigned doy = (153 * mp + 2) / 5 + d - 1;
	unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + (int64_t)doe - 719468;
}

/* floor(t / 86400) */
static int64_t day_of(int64_t t)
{
	int64_t q = t / 86400;
	if (t % 86400 < 0)
		q--;
	return q;
}

static int month_index(const char *s, size_t n)
{
	if (n < 3)
		return -1;
	for (int i = 0; i < 12; i++)
		if (str_nieq(s, months[i], 3))
			return i + 1;
	return -1;
}

static bool is_digit(char c)
{
	return c >= '0' && c <= '9';
}

static bool is_alpha(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

/* date-text of RFC 3501: 1*2DIGIT "-" 3ALPHA "-" 4DIGIT. */
static int parse_search_date(const char *s, size_t n, int64_t *day_r)
{
	size_t i = 0;
	unsigned d = 0, y = 0;

	while (i < n && i < 2 && is_digit(s[i]))
		d = d * 10 + (unsigned)(s[i++] - '0');
	if (i == 0 || i >= n || s[i] != '-' || n - i != 9 || s[i + 4] != '-')
		return -1;
	if (!is_alpha(s[i + 1]) || !is_alpha(s[i + 2]) || !is_alpha(s[i + 3]))
		return -1;
	int m = month_index(s + i + 1, 3);
	if (m < 0)
		return -1;
	for (size_t k = i + 5; k < n; k++) {
		if (!is_digit(s[k]))
			return -1;
		y = y * 10 + (unsigned)(s[k] - '0');
	}
	if (d < 1 || d > month_days(y, (unsigned)m))
		return -1;
	*day_r = days_from_civil(y, (unsigned)m, d);
	return 0;
}

/* Skip blanks, line ends and (nested) comments. */
static size_t skip_cfws(const char *s, size_t n, size_t i)
{
	while (i < n) {
		char c = s[i];
		if (c == ' ' || c == '\t' || c == '\r' || c == '\n') {
			i++;
		} else if (c == '(') {
			unsigned depth = 0;
			while (i < n) {
				if (s[i] == '\\' && i + 1 < n) {
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
		} else {
			break;
		}
	}
	return i;
}

static size_t read_num(const char *s, size_t n, size_t i, unsigned maxdig, unsigned *v_r,
		       size_t *ndig_r)
{
	unsigned v = 0;
	size_t k = 0;
	while (i < n && k < maxdig && is_digit(s[i])) {
		v = v * 10 + (unsigned)(s[i++] - '0');
		k++;
	}
	*v_r = v;
	*ndig_r = k;
	return i;
}

/* An RFC 5322 date-time (with the obsolete forms: no day name, 2-digit
 * years, zone names, missing seconds, comments; a missing time is 00:00).
 * *utc_r is the instant, *day_r the date as written (its own zone). */
static int parse_date_header(const char *s, size_t n, int64_t *utc_r, int64_t *day_r)
{
	size_t i = skip_cfws(s, n, 0), nd;
	unsigned d, y, hh = 0, mm = 0, ss = 0;

	if (i < n && is_alpha(s[i])) {
		while (i < n && is_alpha(s[i]))
			i++;
		i = skip_cfws(s, n, i);
		if (i < n && s[i] == ',')
			i = skip_cfws(s, n, i + 1);
	}
	i = read_num(s, n, i, 2, &d, &nd);
	if (nd == 0)
		return -1;
	i = skip_cfws(s, n, i);
	if (i < n && s[i] == '-')
		i++;
	size_t ms = i;
	while (i < n && is_alpha(s[i]))
		i++;
	int m = month_index(s + ms, i - ms);
	if (m < 0)
		return -1;
	if (i < n && s[i] == '-')
		i++;
	i = skip_cfws(s, n, i);
	i = read_num(s, n, i, 4, &y, &nd);
	if (nd < 2)
		return -1;
	if (nd == 2)
		y += y < 50 ? 2000 : 1900;
	else if (nd == 3)
		y += 1900;
	if (d < 1 || d > month_days(y, (unsigned)m))
		return -1;
	int64_t day = days_from_civil(y, (unsigned)m, d);
	int zone = 0;
	i = skip_cfws(s, n, i);
	if (i < n && is_digit(s[i])) {
		i = read_num(s, n, i, 2, &hh, &nd);
		if (i >= n || s[i] != ':')
			return -1;
		i = read_num(s, n, i + 1, 2, &mm, &nd);
		if (nd == 0)
			return -1;
		if (i < n && s[i] == ':') {
			i = read_num(s, n, i + 1, 2, &ss, &nd);
			if (nd == 0)
				return -1;
		}
		if (hh > 23 || mm > 59 || ss > 60)
			return -1;
		i = skip_cfws(s, n, i);
		if (i < n && (s[i] == '+' || s[i] == '-')) {
			unsigned z;
			size_t e = read_num(s, n, i + 1, 4, &z, &nd);
			if (nd == 4 && z % 100 < 60)
				zone = (int)(z / 100 * 60 + z % 100) * (s[i] == '-' ? -1 : 1);
			i = e;
		} else if (i < n && is_alpha(s[i])) {
			static const struct { const char *name; int hours; } zones[] = {
				{"EST", -5}, {"EDT", -4}, {"CST", -6}, {"CDT", -5},
				{"MST", -7}, {"MDT", -6}, {"PST", -8}, {"PDT", -7},
			};
			size_t zs = i;
			while (i < n && is_alpha(s[i]))
				i++;
			for (size_t k = 0; k < ARRAY_LEN(zones); k++)
				if (i - zs == 3 && str_nieq(s + zs, zones[k].name, 3))
					zone = zones[k].hours * 60;
		}
	}
	*day_r = day;
	*utc_r = day * 86400 + (int64_t)hh * 3600 + (int64_t)mm * 60 + ss - (int64_t)zone * 60;
	return 0;
}

/* ------------------------------------------------------------------ */
/* headers */

static void top_header(const struct imap_search_msg *m, const char **h_r, size_t *len_r)
{
	*h_r = m->data;
	*len_r = 0;
	if (m->data == NULL)
		return;
	if (m->mime != NULL && m->mime->n_parts > 0 && m->mime->parts[0].hdr_len <= m->len)
		*len_r = m->mime->parts[0].hdr_len;
	else
		*len_r = m->len; /* mime_header_next stops at the blank line */
}

static bool name_eq(const char *a, size_t alen, const char *b, size_t blen)
{
	return alen == blen && str_nieq(a, b, alen);
}

/* The raw value of the first field called name, or false. */
static bool header_raw(const char *h, size_t hlen, const char *name, struct mime_field *f_r)
{
	size_t pos = 0;
	size_t nlen = strlen(name);
	while (mime_header_next(h, hlen, &pos, f_r))
		if (name_eq(f_r->name, f_r->name_len, name, nlen))
			return true;
	return false;
}

struct field {
	const char *name;       /* raw, in the message */
	size_t name_len;
	size_t off, len;        /* folded, decoded value in the text buffer */
};

struct fields {
	struct field *v;
	size_t n, cap;
};

/* Append "name: value\0" per field of h (RFC 2047 decoded, case folded)
 * to out, recording each value in fl when fl is not NULL.  -1 when out is
 * full (what fitted stays). */
static int header_text(const char *h, size_t hlen, struct buf *out, struct fields *fl)
{
	size_t pos = 0;
	struct mime_field f;

	while (mime_header_next(h, hlen, &pos, &f)) {
		if (f.name_len == 0)
			continue;
		size_t start = out->len;
		if (buf_append(out, f.name, f.name_len) < 0)
			return -1;
		buf_fold_tail(out, start);
		if (buf_append(out, ": ", 2) < 0)
			return -1;
		size_t voff = out->len;
		char *u = mime_unfold(f.value, f.value_len, MIME_FIELD_MAX, NULL);
		int r = rfc2047_decode(u, strlen(u), out);
		free(u);
		buf_fold_tail(out, voff);
		if (fl != NULL) {
			if (fl->n == fl->cap) {
				fl->cap = fl->cap ? fl->cap * 2 : 16;
				fl->v = xreallocarray(fl->v, fl->cap, sizeof(*fl->v));
			}
			fl->v[fl->n++] = (struct field){f.name, f.name_len, voff, out->len - voff};
		}
		if (r < 0 || buf_append(out, "", 1) < 0)
			return -1;
	}
	return 0;
}

/* ------------------------------------------------------------------ */
/* the program */

enum op {
	OP_AND, OP_OR, OP_NOT,
	OP_FLAGS,               /* ALL, SEEN, UNSEEN, NEW, ... */
	OP_KEYWORD, OP_UNKEYWORD,
	OP_SEQ, OP_UID,
	OP_LARGER, OP_SMALLER,
	OP_BEFORE, OP_ON, OP_SINCE,
	OP_SENTBEFORE, OP_SENTON, OP_SENTSINCE,
	OP_SAVEDBEFORE, OP_SAVEDON, OP_SAVEDSINCE,
	OP_OLDER, OP_YOUNGER,
	OP_MODSEQ,
	OP_HEADER, OP_BODY, OP_TEXT,
};

#define NO_NODE UINT32_MAX

struct seqkey {
	struct imap_seq_range *r;       /* ranges without '*', sorted and merged */
	size_t n;
	bool star;                      /* some range ends in '*' */
	uint32_t star_lo_min;           /* smallest lower end of those (STAR for "*") */
	uint32_t star_lo_max;           /* largest lower end that is not '*', or 0 */
	bool saved;                     /* "$" */
};

struct node {
	enum op op;
	unsigned cost;                  /* 0 metadata, 1 one header field, 2 whole text */
	uint32_t parent, first, last, next;
	uint32_t set, clear;            /* OP_FLAGS */
	uint64_t num;                   /* sizes, modseq, seconds */
	int64_t day;                    /* date keys */
	char *name;                     /* HEADER field name, KEYWORD */
	size_t name_len;
	char *str;                      /* folded search string */
	size_t str_len;
	char *utf8;                     /* BODY/TEXT string before folding */
	struct seqkey seq;
};

struct imap_search {
	struct node *nodes;
	uint32_t n, cap;
	unsigned needs;
	bool modseq;
	const char **terms;
	size_t nterms;
};

static uint32_t node_new(struct imap_search *p, enum op op)
{
	if (p->n == p->cap) {
		p->cap = p->cap ? p->cap * 2 : 16;
		p->nodes = xreallocarray(p->nodes, p->cap, sizeof(*p->nodes));
	}
	uint32_t i = p->n++;
	memset(&p->nodes[i], 0, sizeof(p->nodes[i]));
	p->nodes[i].op = op;
	p->nodes[i].parent = p->nodes[i].first = p->nodes[i].last = p->nodes[i].next = NO_NODE;
	return i;
}

static void node_add_child(struct imap_search *p, uint32_t parent, uint32_t child)
{
	struct node *pa = &p->nodes[parent];
	p->nodes[child].parent = parent;
	p->nodes[child].next = NO_NODE;
	if (pa->first == NO_NODE)
		pa->first = child;
	else
		p->nodes[pa->last].next = child;
	pa->last = child;
}

void imap_search_free(struct imap_search **pp)
{
	struct imap_search *p = *pp;
	if (p == NULL)
		return;
	for (uint32_t i = 0; i < p->n; i++) {
		free(p->nodes[i].name);
		free(p->nodes[i].str);
		free(p->nodes[i].utf8);
		free(p->nodes[i].seq.r);
	}
	free(p->nodes);
	free(p->terms);
	free(p);
	*pp = NULL;
}

static bool charset_is_utf8(const char *cs)
{
	return str_ieq(cs, "UTF-8") || str_ieq(cs, "UTF8") || str_ieq(cs, "US-ASCII") ||
	       str_ieq(cs, "ASCII");
}

static int range_cmp(const void *a, const void *b)
{
	const struct imap_seq_range *x = a, *y = b;
	if (x->lo != y->lo)
		return x->lo < y->lo ? -1 : 1;
	return x->hi < y->hi ? -1 : x->hi > y->hi;
}

static int seqkey_parse(const struct imap_arg *a, struct seqkey *k, const char **error_r)
{
	struct imap_seqset set;

	if (a->type != IMAP_ARG_ATOM && a->type != IMAP_ARG_NUMBER) {
		*error_r = "Invalid sequence set";
		return -1;
	}
	if (imap_seqset_parse(a->str, a->len, &set, error_r) < 0)
		return -1;
	memset(k, 0, sizeof(*k));
	k->saved = set.saved;
	k->star_lo_min = IMAP_SEQ_STAR;
	size_t n = 0;
	for (size_t i = 0; i < set.count; i++) {
		struct imap_seq_range r = set.ranges[i];
		if (r.hi == IMAP_SEQ_STAR) {
			k->star = true;
			k->star_lo_min = MIN(k->star_lo_min, r.lo);
			if (r.lo != IMAP_SEQ_STAR)
				k->star_lo_max = MAX(k->star_lo_max, r.lo);
		} else {
			set.ranges[n++] = r;
		}
	}
	if (n > 1)
		qsort(set.ranges, n, sizeof(*set.ranges), range_cmp);
	size_t m = 0;
	for (size_t i = 0; i < n; i++) {
		if (m > 0 && set.ranges[i].lo <= set.ranges[m - 1].hi + 1) {
			set.ranges[m - 1].hi = MAX(set.ranges[m - 1].hi, set.ranges[i].hi);
			continue;
		}
		set.ranges[m++] = set.ranges[i];
	}
	k->r = set.ranges;
	k->n = m;
	if (m == 0) {
		free(k->r);
		k->r = NULL;
	}
	return 0;
}

static bool seqkey_match(const struct seqkey *k, uint32_t v, uint32_t max,
			 const struct imap_search_ctx *ctx, uint32_t uid)
{
	if (k->saved) {
		size_t lo = 0, hi = ctx->saved_uids ? ctx->nsaved : 0;
		while (lo < hi) {
			size_t mid = lo + (hi - lo) / 2;
			if (ctx->saved_uids[mid] == uid)
				return true;
			if (ctx->saved_uids[mid] < uid)
				lo = mid + 1;
			else
				hi = mid;
		}
		return false;
	}
	if (k->star) {
		/* every range holds '*', so their union is one interval */
		uint32_t a = MIN(k->star_lo_min, max);
		uint32_t b = MAX(k->star_lo_max, max);
		if (v >= a && v <= b)
			return true;
	}
	size_t lo = 0, hi = k->n;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (v < k->r[mid].lo)
			hi = mid;
		else if (v > k->r[mid].hi)
			lo = mid + 1;
		else
			return true;
	}
	return false;
}

static const struct flagkey {
	const char *name;
	uint32_t set, clear;
} flagkeys[] = {
	{"ALL", 0, 0},
	{"ANSWERED", FLAG_ANSWERED, 0},
	{"DELETED", FLAG_DELETED, 0},
	{"DRAFT", FLAG_DRAFT, 0},
	{"FLAGGED", FLAG_FLAGGED, 0},
	{"NEW", IMAP_SEARCH_RECENT, FLAG_SEEN},
	{"OLD", 0, IMAP_SEARCH_RECENT},
	{"RECENT", IMAP_SEARCH_RECENT, 0},
	{"SEEN", FLAG_SEEN, 0},
	{"UNANSWERED", 0, FLAG_ANSWERED},
	{"UNDELETED", 0, FLAG_DELETED},
	{"UNDRAFT", 0, FLAG_DRAFT},
	{"UNFLAGGED", 0, FLAG_FLAGGED},
	{"UNSEEN", 0, FLAG_SEEN},
};

static const struct flagkey sysflags[] = {
	{"\\Seen", FLAG_SEEN, 0},
	{"\\Answered", FLAG_ANSWERED, 0},
	{"\\Flagged", FLAG_FLAGGED, 0},
	{"\\Deleted", FLAG_DELETED, 0},
	{"\\Draft", FLAG_DRAFT, 0},
	{"\\Recent", IMAP_SEARCH_RECENT, 0},
};

enum operand {
	ARG_STRING,     /* astring */
	ARG_FIELD,      /* field-name astring, then astring */
	ARG_DATE,
	ARG_NUMBER64,
	ARG_NZ,
	ARG_FLAG,
	ARG_SEQ,
	ARG_MODSEQ,
};

static const struct argkey {
	const char *name;
	enum op op;
	enum operand operand;
	const char *field;      /* header keys with a fixed field */
} argkeys[] = {
	{"BCC", OP_HEADER, ARG_STRING, "Bcc"},
	{"BEFORE", OP_BEFORE, ARG_DATE, NULL},
	{"BODY", OP_BODY, ARG_STRING, NULL},
	{"CC", OP_HEADER, ARG_STRING, "Cc"},
	{"FROM", OP_HEADER, ARG_STRING, "From"},
	{"HEADER", OP_HEADER, ARG_FIELD, NULL},
	{"KEYWORD", OP_KEYWORD, ARG_FLAG, NULL},
	{"LARGER", OP_LARGER, ARG_NUMBER64, NULL},
	{"MODSEQ", OP_MODSEQ, ARG_MODSEQ, NULL},
	{"OLDER", OP_OLDER, ARG_NZ, NULL},
	{"ON", OP_ON, ARG_DATE, NULL},
	{"SAVEDBEFORE", OP_SAVEDBEFORE, ARG_DATE, NULL},
	{"SAVEDON", OP_SAVEDON, ARG_DATE, NULL},
	{"SAVEDSINCE", OP_SAVEDSINCE, ARG_DATE, NULL},
	{"SENTBEFORE", OP_SENTBEFORE, ARG_DATE, NULL},
	{"SENTON", OP_SENTON, ARG_DATE, NULL},
	{"SENTSINCE", OP_SENTSINCE, ARG_DATE, NULL},
	{"SINCE", OP_SINCE, ARG_DATE, NULL},
	{"SMALLER", OP_SMALLER, ARG_NUMBER64, NULL},
	{"SUBJECT", OP_HEADER, ARG_STRING, "Subject"},
	{"TEXT", OP_TEXT, ARG_STRING, NULL},
	{"TO", OP_HEADER, ARG_STRING, "To"},
	{"UID", OP_UID, ARG_SEQ, NULL},
	{"UNKEYWORD", OP_UNKEYWORD, ARG_FLAG, NULL},
	{"YOUNGER", OP_YOUNGER, ARG_NZ, NULL},
};

/* A search string: converted to UTF-8, kept as is in *utf8_r and folded. */
static int search_string(const struct imap_arg *a, const char *charset, char **utf8_r,
			 char **folded_r, size_t *folded_len_r, const char **error_r)
{
	const char *s;
	size_t len;

	if (imap_arg_astring(a, &s, &len) < 0) {
		*error_r = "Invalid search string";
		return -1;
	}
	char *u;
	size_t ulen = len;
	if (charset == NULL) {
		u = xstrndup(s, len);
	} else {
		struct buf b;
		const char *e;
		buf_init(&b, len > SIZE_MAX / 4 - 64 ? SIZE_MAX / 2 : len * 4 + 64);
		if (decode_charset_convert(charset, s, len, &b, &e) < 0) {
			buf_free(&b);
			*error_r = "Search string cannot be converted";
			return -1;
		}
		u = buf_steal(&b, &ulen);
		if (u == NULL)
			u = xstrdup("");
		/* a NUL from the conversion would cut the string short */
		ulen = strlen(u);
	}
	*folded_r = fold_dup(u, ulen);
	*folded_len_r = strlen(*folded_r);
	*utf8_r = u;
	return 0;
}

static int date_arg(const struct imap_arg *a, int64_t *day_r, const char **error_r)
{
	const char *s;
	size_t len;
	if (imap_arg_astring(a, &s, &len) < 0 || parse_search_date(s, len, day_r) < 0) {
		*error_r = "Invalid date";
		return -1;
	}
	return 0;
}

/* Compile the key at args[*pos] (not NOT, OR or a list) into a new node
 * whose index is *node_r; *pos moves past it and its operands. */
static int compile_leaf(struct imap_search *p, const struct imap_arg *args, uint32_t *pos,
			uint32_t limit, const char *charset, uint32_t *node_r,
			const char **error_r)
{
	const struct imap_arg *a = &args[*pos];
	uint32_t i = *pos + 1;

	if (a->type != IMAP_ARG_ATOM && a->type != IMAP_ARG_NUMBER) {
		*error_r = "Invalid search key";
		return -1;
	}
	for (size_t k = 0; k < ARRAY_LEN(flagkeys); k++) {
		if (imap_arg_atom_eq(a, flagkeys[k].name)) {
			uint32_t n = node_new(p, OP_FLAGS);
			p->nodes[n].set = flagkeys[k].set;
			p->nodes[n].clear = flagkeys[k].clear;
			*node_r = n;
			*pos = i;
			return 0;
		}
	}
	char c = a->len > 0 ? a->str[0] : '\0';
	if (a->type == IMAP_ARG_NUMBER || is_digit(c) || c == '*' || c == '$') {
		struct seqkey sk;
		if (seqkey_parse(a, &sk, error_r) < 0)
			return -1;
		uint32_t n = node_new(p, OP_SEQ);
		p->nodes[n].seq = sk;
		*node_r = n;
		*pos = i;
		return 0;
	}
	const struct argkey *ak = NULL;
	for (size_t k = 0; k < ARRAY_LEN(argkeys); k++)
		if (imap_arg_atom_eq(a, argkeys[k].name))
			ak = &argkeys[k];
	if (ak == NULL) {
		*error_r = "Unknown search key";
		return -1;
	}
	if (i >= limit || args[i].type == IMAP_ARG_LIST) {
		*error_r = "Missing search key argument";
		return -1;
	}
	/* new nodes may move p->nodes: use indices until the end */
	uint32_t n = node_new(p, ak->op);
	*node_r = n;
	struct node *nd = &p->nodes[n];
	const char *s;
	size_t len;
	switch (ak->operand) {
	case ARG_FIELD:
		if (imap_arg_astring(&args[i], &s, &len) < 0) {
			*error_r = "Invalid header field name";
			return -1;
		}
		nd->name = xstrndup(s, len);
		nd->name_len = len;
		if (++i >= limit || args[i].type == IMAP_ARG_LIST) {
			*error_r = "Missing search key argument";
			return -1;
		}
		__attribute__((fallthrough));
	case ARG_STRING:
		if (ak->field != NULL) {
			nd->name = xstrdup(ak->field);
			nd->name_len = strlen(ak->field);
		}
		if (search_string(&args[i], charset, &nd->utf8, &nd->str, &nd->str_len,
				  error_r) < 0)
			return -1;
		i++;
		break;
	case ARG_DATE:
		if (date_arg(&args[i], &nd->day, error_r) < 0)
			return -1;
		i++;
		break;
	case ARG_NUMBER64:
		if (imap_arg_number64(&args[i], &nd->num) < 0) {
			*error_r = "Invalid number";
			return -1;
		}
		i++;
		break;
	case ARG_NZ: {
		uint32_t v;
		if (imap_arg_nz_number(&args[i], &v) < 0) {
			*error_r = "Invalid number";
			return -1;
		}
		nd->num = v;
		i++;
		break;
	}
	case ARG_FLAG:
		/* flag-keyword is an atom; "\Seen" (not an astring) is taken too */
		s = args[i].str;
		len = args[i].len;
		if ((args[i].type != IMAP_ARG_ATOM && imap_arg_astring(&args[i], &s, &len) < 0) ||
		    len == 0) {
			*error_r = "Invalid keyword";
			return -1;
		}
		for (size_t k = 0; k < ARRAY_LEN(sysflags); k++) {
			if (imap_arg_atom_eq(&args[i], sysflags[k].name)) {
				nd->set = ak->op == OP_KEYWORD ? sysflags[k].set : 0;
				nd->clear = ak->op == OP_KEYWORD ? 0 : sysflags[k].set;
				nd->op = OP_FLAGS;
			}
		}
		if (nd->op != OP_FLAGS) {
			nd->name = xstrndup(s, len);
			nd->name_len = len;
		}
		i++;
		break;
	case ARG_SEQ:
		if (seqkey_parse(&args[i], &nd->seq, error_r) < 0)
			return -1;
		i++;
		break;
	case ARG_MODSEQ:
		if (args[i].type == IMAP_ARG_STRING || args[i].type == IMAP_ARG_LITERAL) {
			/* [entry-name entry-type-req]: the entry is not used */
			if (++i >= limit || !(imap_arg_atom_eq(&args[i], "priv") ||
					      imap_arg_atom_eq(&args[i], "shared") ||
					      imap_arg_atom_eq(&args[i], "all"))) {
				*error_r = "Invalid MODSEQ entry type";
				return -1;
			}
			if (++i >= limit) {
				*error_r = "Missing search key argument";
				return -1;
			}
		}
		if (imap_arg_number64(&args[i], &nd->num) < 0) {
			*error_r = "Invalid mod-sequence";
			return -1;
		}
		i++;
		break;
	}
	*pos = i;
	return 0;
}

static unsigned leaf_cost(const struct node *nd)
{
	switch (nd->op) {
	case OP_HEADER:
	case OP_SENTBEFORE:
	case OP_SENTON:
	case OP_SENTSINCE:
		return 1;
	case OP_BODY:
	case OP_TEXT:
		return 2;
	default:
		return 0;
	}
}

static unsigned leaf_needs(const struct node *nd)
{
	switch (nd->op) {
	case OP_HEADER:
	case OP_SENTBEFORE:
	case OP_SENTON:
	case OP_SENTSINCE:
		return IMAP_SEARCH_NEED_HEADER;
	case OP_BODY:
		return nd->str_len > 0 ? IMAP_SEARCH_NEED_BODY : 0;
	case OP_TEXT:
		return nd->str_len > 0 ? IMAP_SEARCH_NEED_HEADER | IMAP_SEARCH_NEED_BODY : 0;
	case OP_LARGER:
	case OP_SMALLER:
	case OP_BEFORE:
	case OP_ON:
	case OP_SINCE:
	case OP_SAVEDBEFORE:
	case OP_SAVEDON:
	case OP_SAVEDSINCE:
	case OP_OLDER:
	case OP_YOUNGER:
		return IMAP_SEARCH_NEED_META;
	default:
		return 0;
	}
}

static bool is_container(enum op op)
{
	return op == OP_AND || op == OP_OR || op == OP_NOT;
}

/* Costs, cheap-first child order, needs and the AND-only text terms.
 * Children always have higher indices than their parent. */
static void finish(struct imap_search *p)
{
	for (uint32_t i = p->n; i-- > 0;) {
		struct node *nd = &p->nodes[i];
		if (!is_container(nd->op)) {
			nd->cost = leaf_cost(nd);
			p->needs |= leaf_needs(nd);
			if (nd->op == OP_MODSEQ)
				p->modseq = true;
			continue;
		}
		/* stable three-bucket reorder by cost */
		uint32_t head[3] = {NO_NODE, NO_NODE, NO_NODE}, tail[3];
		unsigned cost = 0;
		for (uint32_t c = nd->first; c != NO_NODE;) {
			uint32_t next = p->nodes[c].next;
			unsigned k = p->nodes[c].cost;
			cost = MAX(cost, k);
			p->nodes[c].next = NO_NODE;
			if (head[k] == NO_NODE)
				head[k] = c;
			else
				p->nodes[tail[k]].next = c;
			tail[k] = c;
			c = next;
		}
		nd->cost = cost;
		nd->first = nd->last = NO_NODE;
		for (unsigned k = 0; k < 3; k++) {
			if (head[k] == NO_NODE)
				continue;
			if (nd->first == NO_NODE)
				nd->first = head[k];
			else
				p->nodes[nd->last].next = head[k];
			nd->last = tail[k];
		}
	}
	for (uint32_t i = 0; i < p->n; i++) {
		const struct node *nd = &p->nodes[i];
		if ((nd->op != OP_BODY && nd->op != OP_TEXT) || nd->str_len == 0)
			continue;
		bool pure = true;
		for (uint32_t a = nd->parent; a != NO_NODE; a = p->nodes[a].parent)
			if (p->nodes[a].op != OP_AND)
				pure = false;
		if (!pure)
			continue;
		p->terms = xreallocarray(p->terms, p->nterms + 1, sizeof(*p->terms));
		p->terms[p->nterms++] = nd->utf8;
	}
}

struct cframe {
	uint32_t node;
	int need;               /* operands still wanted; -1: until limit (lists) */
	uint32_t limit;
};

int imap_search_compile(const struct imap_arg *args, uint32_t first, uint32_t end,
			const char *charset, struct imap_search **prog_r, bool *badcharset_r,
			const char **error_r)
{
	struct cframe st[IMAP_SEARCH_DEPTH_MAX + 1];
	unsigned sp = 0, nkeys = 0;
	uint32_t pos = first;

	*prog_r = NULL;
	*badcharset_r = false;
	if (charset != NULL && charset_is_utf8(charset)) {
		charset = NULL;
	} else if (charset != NULL) {
		struct decode_charset d;
		const char *e;
		if (decode_charset_init(&d, charset, &e) < 0) {
			*badcharset_r = true;
			*error_r = "Unsupported charset";
			return -1;
		}
		decode_charset_free(&d);
	}
	if (first >= end) {
		*error_r = "Missing search key";
		return -1;
	}
	struct imap_search *p = xcalloc(1, sizeof(*p));
	st[sp++] = (struct cframe){node_new(p, OP_AND), -1, end};
	for (;;) {
		struct cframe *f = &st[sp - 1];
		if (f->need == 0 || (f->need < 0 && pos >= f->limit)) {
			uint32_t done = f->node;
			if (--sp == 0)
				break;
			node_add_child(p, st[sp - 1].node, done);
			if (st[sp - 1].need > 0)
				st[sp - 1].need--;
			continue;
		}
		if (pos >= f->limit) {
			*error_r = "Missing search key";
			goto fail;
		}
		if (++nkeys > IMAP_SEARCH_KEYS_MAX) {
			*error_r = "Too many search keys";
			goto fail;
		}
		const struct imap_arg *a = &args[pos];
		enum op op;
		int need;
		if (a->type == IMAP_ARG_LIST) {
			if (a->end > f->limit) {
				*error_r = "Invalid search keys";
				goto fail;
			}
			if (a->nchildren == 0) {
				*error_r = "Empty search key list";
				goto fail;
			}
			op = OP_AND;
			need = -1;
		} else if (imap_arg_atom_eq(a, "NOT")) {
			op = OP_NOT;
			need = 1;
		} else if (imap_arg_atom_eq(a, "OR")) {
			op = OP_OR;
			need = 2;
		} else {
			uint32_t leaf;
			if (compile_leaf(p, args, &pos, f->limit, charset, &leaf, error_r) < 0)
				goto fail;
			node_add_child(p, f->node, leaf);
			if (f->need > 0)
				f->need--;
			continue;
		}
		if (sp > IMAP_SEARCH_DEPTH_MAX) {
			*error_r = "Search keys nested too deeply";
			goto fail;
		}
		uint32_t limit = a->type == IMAP_ARG_LIST ? a->end : f->limit;
		st[sp++] = (struct cframe){node_new(p, op), need, limit};
		pos++;
	}
	if (pos != end) {
		*error_r = "Invalid search keys";
		goto fail;
	}
	finish(p);
	*prog_r = p;
	return 0;
fail:
	imap_search_free(&p);
	return -1;
}

unsigned imap_search_needs(const struct imap_search *p)
{
	return p->needs;
}

bool imap_search_uses_modseq(const struct imap_search *p)
{
	return p->modseq;
}

size_t imap_search_body_terms(const struct imap_search *p, const char ***terms_r)
{
	*terms_r = p->nterms > 0 ? p->terms : NULL;
	return p->nterms;
}

/* ------------------------------------------------------------------ */
/* evaluation */

struct eval {
	const struct imap_search_ctx *ctx;
	const struct imap_search_msg *m;
	bool hdr_done;
	struct buf hdr;
	struct fields fields;
	bool body_done;
	struct buf body;
	struct mime_message *own_mime;
	bool date_done, date_ok;
	int64_t sent_day;
};

static void need_header(struct eval *x)
{
	if (x->hdr_done)
		return;
	x->hdr_done = true;
	const char *h;
	size_t hlen;
	top_header(x->m, &h, &hlen);
	buf_init(&x->hdr, IMAP_SEARCH_TEXT_MAX);
	if (hlen > 0)
		(void)header_text(h, hlen, &x->hdr, &x->fields);
}

#define TEXT_CHUNK (16u * 1024)

/* Append the decoded, folded text of one leaf part and a NUL.  -1 when
 * the body buffer is full. */
static int part_text(struct buf *body, const char *d, const struct mime_part *pt)
{
	enum { ENC_NONE, ENC_B64, ENC_QP } enc = ENC_NONE;
	if (pt->encoding != NULL && str_ieq(pt->encoding, "base64"))
		enc = ENC_B64;
	else if (pt->encoding != NULL && str_ieq(pt->encoding, "quoted-printable"))
		enc = ENC_QP;
	const char *cs = mime_param_get(&pt->params, "charset");
	bool pass = cs == NULL || charset_is_utf8(cs);
	struct decode_charset dc;
	const char *e;
	if (!pass && decode_charset_init(&dc, cs, &e) < 0)
		pass = true;    /* unknown charset: search the bytes as they are */
	struct decode_b64 b64;
	struct decode_qp qp;
	decode_b64_init(&b64);
	decode_qp_init(&qp);
	struct buf tmp;
	buf_init(&tmp, TEXT_CHUNK + DECODE_QP_WS_MAX + 64);
	size_t start = body->len;
	const char *src = d + pt->body_off;
	size_t left = pt->body_len;
	int ret = 0;
	for (bool last = false; ret == 0 && !last;) {
		buf_reset(&tmp);
		if (left > 0) {
			size_t take = MIN(left, (size_t)TEXT_CHUNK);
			if (enc == ENC_B64)
				(void)decode_b64(&b64, src, take, &tmp);
			else if (enc == ENC_QP)
				(void)decode_qp(&qp, src, take, &tmp);
			else
				(void)buf_append(&tmp, src, take);
			src += take;
			left -= take;
		} else {
			if (enc == ENC_B64)
				(void)decode_b64_finish(&b64, &tmp);
			else if (enc == ENC_QP)
				(void)decode_qp_finish(&qp, &tmp);
			last = true;
		}
		if (tmp.len == 0)
			continue;
		if (pass) {
			size_t k = MIN(tmp.len, buf_room(body));
			(void)buf_append(body, tmp.data, k);
			if (k < tmp.len)
				ret = -1;
		} else if (decode_charset(&dc, tmp.data, tmp.len, body) < 0) {
			ret = -1;
		}
	}
	if (!pass) {
		if (ret == 0 && decode_charset_finish(&dc, body) < 0)
			ret = -1;
		decode_charset_free(&dc);
	}
	buf_free(&tmp);
	buf_fold_tail(body, start);
	if (buf_append(body, "", 1) < 0)
		ret = -1;
	return ret;
}

/* Body text: every "text" leaf, plus the header of each encapsulated
 * message, NUL-separated so that no match spans two parts. */
static void need_body(struct eval *x)
{
	if (x->body_done)
		return;
	x->body_done = true;
	buf_init(&x->body, IMAP_SEARCH_TEXT_MAX);
	const struct imap_search_msg *m = x->m;
	if (m->data == NULL)
		return;
	const struct mime_message *mm = m->mime;
	if (mm == NULL)
		mm = x->own_mime = mime_parse(m->data, m->len, NULL);
	for (size_t i = 0; i < mm->n_parts; i++) {
		const struct mime_part *pt = &mm->parts[i];
		if (pt->hdr_off > m->len || pt->body_off + pt->body_len > m->len)
			break;  /* not this message's tree */
		if (i > 0 && (pt->flags & MIME_PART_MESSAGE) &&
		    header_text(m->data + pt->hdr_off, pt->hdr_len, &x->body, NULL) < 0)
			break;
		if (pt->first_child != MIME_NONE || strcmp(pt->type, "text") != 0)
			continue;
		if (part_text(&x->body, m->data, pt) < 0)
			break;
	}
}

static bool sent_day(struct eval *x, int64_t *day_r)
{
	if (!x->date_done) {
		x->date_done = true;
		const char *h;
		size_t hlen;
		struct mime_field f;
		int64_t utc;
		top_header(x->m, &h, &hlen);
		x->date_ok = hlen > 0 && header_raw(h, hlen, "Date", &f) &&
			     parse_date_header(f.value, f.value_len, &utc, &x->sent_day) == 0;
	}
	*day_r = x->sent_day;
	return x->date_ok;
}

static bool has_keyword(const char *kw, const char *word, size_t wlen)
{
	if (kw == NULL)
		return false;
	while (*kw) {
		while (*kw == ' ')
			kw++;
		size_t n = strcspn(kw, " ");
		if (n > 0 && n == wlen && str_nieq(kw, word, n))
			return true;
		kw += n;
	}
	return false;
}

static bool header_match(struct eval *x, const struct node *nd)
{
	need_header(x);
	for (size_t i = 0; i < x->fields.n; i++) {
		const struct field *f = &x->fields.v[i];
		if (!name_eq(f->name, f->name_len, nd->name, nd->name_len))
			continue;
		if (find_in(x->hdr.data + f->off, f->len, nd->str, nd->str_len))
			return true;
	}
	return false;
}

static bool date_cmp(enum op op, int64_t day, int64_t want)
{
	switch (op) {
	case OP_BEFORE:
	case OP_SENTBEFORE:
	case OP_SAVEDBEFORE:
		return day < want;
	case OP_ON:
	case OP_SENTON:
	case OP_SAVEDON:
		return day == want;
	default:
		return day >= want;
	}
}

static bool leaf_match(struct eval *x, const struct node *nd)
{
	const struct imap_search_msg *m = x->m;
	const struct imap_search_ctx *ctx = x->ctx;
	int64_t tz = (int64_t)ctx->tz_offset_min * 60;
	int64_t day, now;

	switch (nd->op) {
	case OP_FLAGS:
		return (m->flags & nd->set) == nd->set && (m->flags & nd->clear) == 0;
	case OP_KEYWORD:
		return has_keyword(m->keywords, nd->name, nd->name_len);
	case OP_UNKEYWORD:
		return !has_keyword(m->keywords, nd->name, nd->name_len);
	case OP_SEQ:
		return seqkey_match(&nd->seq, m->seq, ctx->max_seq, ctx, m->uid);
	case OP_UID:
		return seqkey_match(&nd->seq, m->uid, ctx->max_uid, ctx, m->uid);
	case OP_LARGER:
		return m->size >= 0 && (uint64_t)m->size > nd->num;
	case OP_SMALLER:
		return m->size < 0 || (uint64_t)m->size < nd->num;
	case OP_BEFORE:
	case OP_ON:
	case OP_SINCE:
		return date_cmp(nd->op, day_of(m->internaldate + tz), nd->day);
	case OP_SAVEDBEFORE:
	case OP_SAVEDON:
	case OP_SAVEDSINCE:
		return date_cmp(nd->op, day_of((m->savedate ? m->savedate : m->internaldate) + tz),
				nd->day);
	case OP_SENTBEFORE:
	case OP_SENTON:
	case OP_SENTSINCE:
		return sent_day(x, &day) && date_cmp(nd->op, day, nd->day);
	case OP_OLDER:
	case OP_YOUNGER:
		now = ctx->now ? ctx->now : now_unix();
		if (nd->op == OP_OLDER)
			return now - m->internaldate > (int64_t)nd->num;
		return now - m->internaldate <= (int64_t)nd->num;
	case OP_MODSEQ:
		return m->modseq >= nd->num;
	case OP_HEADER:
		return header_match(x, nd);
	case OP_BODY:
		if (nd->str_len == 0)
			return true;
		need_body(x);
		return find_in(x->body.data, x->body.len, nd->str, nd->str_len);
	case OP_TEXT:
		if (nd->str_len == 0)
			return true;
		need_header(x);
		if (find_in(x->hdr.data, x->hdr.len, nd->str, nd->str_len))
			return true;
		need_body(x);
		return find_in(x->body.data, x->body.len, nd->str, nd->str_len);
	default:
		assert(!"container in leaf_match");
		return false;
	}
}

struct eframe {
	uint32_t node;
	uint32_t next;          /* next child to look at */
	bool result;
};

int imap_search_match(const struct imap_search *p, const struct imap_search_ctx *ctx,
		      const struct imap_search_msg *msg)
{
	struct eframe st[IMAP_SEARCH_DEPTH_MAX + 2];
	unsigned sp = 0;
	struct eval x;
	bool result = false;

	memset(&x, 0, sizeof(x));
	x.ctx = ctx;
	x.m = msg;
	st[sp++] = (struct eframe){0, p->nodes[0].first, true};
	while (sp > 0) {
		struct eframe *f = &st[sp - 1];
		const struct node *nd = &p->nodes[f->node];
		bool decided = nd->op == OP_OR ? f->result : !f->result;
		if (decided || f->next == NO_NODE) {
			bool r = nd->op == OP_NOT ? !f->result : f->result;
			if (--sp == 0) {
				result = r;
				break;
			}
			struct eframe *pf = &st[sp - 1];
			if (p->nodes[pf->node].op == OP_OR)
				pf->result = pf->result || r;
			else
				pf->result = pf->result && r;
			continue;
		}
		uint32_t c = f->next;
		f->next = p->nodes[c].next;
		const struct node *cn = &p->nodes[c];
		if (is_container(cn->op)) {
			assert(sp < ARRAY_LEN(st));
			st[sp++] = (struct eframe){c, cn->first, cn->op != OP_OR};
			continue;
		}
		bool r = leaf_match(&x, cn);
		if (nd->op == OP_OR)
			f->result = f->result || r;
		else
			f->result = f->result && r;
	}
	buf_free(&x.hdr);
	free(x.fields.v);
	buf_free(&x.body);
	mime_message_free(&x.own_mime);
	return result ? 1 : 0;
}

/* ------------------------------------------------------------------ */
/* base subject (RFC 5256 section 2.1) */

/* subj-blob at s[i..b): "[" *BLOBCHAR "]" *WSP; its length or 0. */
static size_t blob_len(const char *s, size_t i, size_t b)
{
	if (i >= b || s[i] != '[')
		return 0;
	size_t k = i + 1;
	while (k < b && s[k] != ']' && s[k] != '[')
		k++;
	if (k >= b || s[k] != ']')
		return 0;
	k++;
	while (k < b && s[k] == ' ')
		k++;
	return k - i;
}

/* subj-refwd at s[i..b): ("re" / "fw" ["d"]) *WSP [subj-blob] ":". */
static size_t refwd_len(const char *s, size_t i, size_t b)
{
	size_t k = i;
	if (b - k >= 3 && str_nieq(s + k, "fwd", 3))
		k += 3;
	else if (b - k >= 2 && (str_nieq(s + k, "fw", 2) || str_nieq(s + k, "re", 2)))
		k += 2;
	else
		return 0;
	while (k < b && s[k] == ' ')
		k++;
	k += blob_len(s, k, b);
	if (k >= b || s[k] != ':')
		return 0;
	return k + 1 - i;
}

static char *base_subject(const char *raw, size_t len, bool *reply_r)
{
	struct buf dec;
	bool reply = false;

	buf_init(&dec, 4 * (size_t)MIME_FIELD_MAX + 64);
	char *u = mime_unfold(raw, len, MIME_FIELD_MAX, NULL);
	(void)rfc2047_decode(u, strlen(u), &dec);
	free(u);
	(void)buf_append(&dec, "", 0); /* allocated from here on */
	/* blanks, tabs and line ends to one space */
	char *s = dec.data;
	size_t b = 0;
	for (size_t i = 0; i < dec.len; i++) {
		char c = s[i];
		if (c == '\t' || c == '\r' || c == '\n')
			c = ' ';
		if (c == ' ' && b > 0 && s[b - 1] == ' ')
			continue;
		s[b++] = c;
	}
	size_t a = 0;
	for (;;) {
		/* (2) trailers */
		for (;;) {
			if (b > a && s[b - 1] == ' ') {
				b--;
			} else if (b - a >= 5 && str_nieq(s + b - 5, "(fwd)", 5)) {
				b -= 5;
				reply = true;
			} else {
				break;
			}
		}
		/* (3)-(5); failed refwd after a run of blobs is remembered, so a
		 * subject of many blobs is not rescanned per removed blob */
		bool memo = false;
		size_t memo_end = 0;
		for (;;) {
			for (;;) {
				if (a < b && s[a] == ' ') {
					a++;
					continue;
				}
				if (memo && a <= memo_end)
					break;
				size_t q = a, k;
				while ((k = blob_len(s, q, b)) > 0)
					q += k;
				size_t r = refwd_len(s, q, b);
				if (r == 0) {
					memo = true;
					memo_end = q;
					break;
				}
				a = q + r;
				reply = true;
			}
			size_t k = blob_len(s, a, b);
			if (k > 0 && a + k < b) {
				a += k;
				continue;
			}
			break;
		}
		/* (6) [fwd: ...] */
		if (b - a >= 6 && str_nieq(s + a, "[fwd:", 5) && s[b - 1] == ']') {
			a += 5;
			b--;
			reply = true;
			continue;
		}
		break;
	}
	char *out = xstrndup(s + a, b - a);
	buf_free(&dec);
	if (reply_r != NULL)
		*reply_r = reply;
	return out;
}

char *imap_base_subject(const char *raw_subject, size_t len)
{
	return base_subject(raw_subject, len, NULL);
}

/* ------------------------------------------------------------------ */
/* addresses (first mailbox of an address-list, for SORT) */

static bool addr_special(char c)
{
	return c == '(' || c == ')' || c == '<' || c == '>' || c == '@' || c == ',' ||
	       c == ';' || c == ':' || c == '"' || c == '[' || c == ']' || c == ' ' ||
	       c == '\t' || c == '\r' || c == '\n' || c == '\\';
}

/* A quoted-string at s[i] == '"': unescaped into out; returns the index
 * past it. */
static size_t read_quoted(const char *s, size_t n, size_t i, struct buf *out)
{
	i++;
	while (i < n && s[i] != '"') {
		if (s[i] == '\\' && i + 1 < n)
			i++;
		if (s[i] != '\r' && s[i] != '\n')
			(void)buf_append(out, s + i, 1);
		i++;
	}
	return i < n ? i + 1 : n;
}

/* A run of atom characters (dots included) at s[i]. */
static size_t read_atom(const char *s, size_t n, size_t i, struct buf *out)
{
	size_t k = i;
	while (k < n && !addr_special(s[k]))
		k++;
	if (k == i)
		k++;    /* a lone special: take it as text */
	(void)buf_append(out, s + i, k - i);
	return k;
}

/* Domain (or domain literal) up to one of the stop characters. */
static size_t read_domain(const char *s, size_t n, size_t i, const char *stop, struct buf *out)
{
	for (;;) {
		i = skip_cfws(s, n, i);
		if (i >= n || strchr(stop, s[i]) != NULL)
			return i;
		if (s[i] == '[') {
			size_t k = i;
			while (k < n && s[k] != ']')
				k++;
			k = k < n ? k + 1 : n;
			(void)buf_append(out, s + i, k - i);
			i = k;
		} else if (s[i] == '"') {
			i = read_quoted(s, n, i, out);
		} else {
			i = read_atom(s, n, i, out);
		}
	}
}

struct first_addr {
	struct buf name, mailbox, host;
};

static void first_address(const char *s, size_t n, struct first_addr *fa)
{
	struct buf phrase, spec;
	size_t i = 0;

	buf_init(&fa->name, MIME_FIELD_MAX);
	buf_init(&fa->mailbox, MIME_FIELD_MAX);
	buf_init(&fa->host, MIME_FIELD_MAX);
	buf_init(&phrase, MIME_FIELD_MAX);
	buf_init(&spec, MIME_FIELD_MAX);
	for (;;) {
		i = skip_cfws(s, n, i);
		if (i >= n)
			break;
		char c = s[i];
		if (c == '<') {
			i = skip_cfws(s, n, i + 1);
			if (i < n && s[i] == '@') {     /* obs-route */
				while (i < n && s[i] != ':' && s[i] != '>')
					i++;
				if (i < n && s[i] == ':')
					i++;
			}
			for (;;) {
				i = skip_cfws(s, n, i);
				if (i >= n || s[i] == '@' || s[i] == '>')
					break;
				if (s[i] == '"')
					i = read_quoted(s, n, i, &fa->mailbox);
				else
					i = read_atom(s, n, i, &fa->mailbox);
			}
			if (i < n && s[i] == '@')
				(void)read_domain(s, n, i + 1, ">", &fa->host);
			(void)buf_append(&fa->name, phrase.data ? phrase.data : "", phrase.len);
			goto done;
		}
		if (c == '@') {
			(void)buf_append(&fa->mailbox, spec.data ? spec.data : "", spec.len);
			(void)read_domain(s, n, i + 1, ",;<>", &fa->host);
			goto done;
		}
		if (c == ':' || c == ';') {     /* group start or end */
			buf_reset(&phrase);
			buf_reset(&spec);
			i++;
			continue;
		}
		if (c == ',') {
			if (spec.len > 0)
				break;
			buf_reset(&phrase);
			i++;
			continue;
		}
		if (phrase.len > 0)
			(void)buf_append(&phrase, " ", 1);
		size_t before = phrase.len;
		if (c == '"')
			i = read_quoted(s, n, i, &phrase);
		else
			i = read_atom(s, n, i, &phrase);
		if (phrase.len > before)
			(void)buf_append(&spec, phrase.data + before, phrase.len - before);
	}
	/* a bare word list: take it as the mailbox */
	(void)buf_append(&fa->mailbox, spec.data ? spec.data : "", spec.len);
done:
	buf_free(&phrase);
	buf_free(&spec);
}

static void first_address_free(struct first_addr *fa)
{
	buf_free(&fa->name);
	buf_free(&fa->mailbox);
	buf_free(&fa->host);
}

/* ------------------------------------------------------------------ */
/* SORT */

enum sort_crit {
	SORT_ARRIVAL, SORT_CC, SORT_DATE, SORT_FROM, SORT_SIZE, SORT_SUBJECT, SORT_TO,
	SORT_DISPLAYFROM, SORT_DISPLAYTO,
};

static const struct {
	const char *name;
	enum sort_crit crit;
} sort_names[] = {
	{"ARRIVAL", SORT_ARRIVAL}, {"CC", SORT_CC}, {"DATE", SORT_DATE}, {"FROM", SORT_FROM},
	{"SIZE", SORT_SIZE}, {"SUBJECT", SORT_SUBJECT}, {"TO", SORT_TO},
	{"DISPLAYFROM", SORT_DISPLAYFROM}, {"DISPLAYTO", SORT_DISPLAYTO},
};

struct imap_sort {
	unsigned n;
	struct {
		enum sort_crit crit;
		bool reverse;
	} c[IMAP_SORT_CRITERIA_MAX];
};

union sort_val {
	int64_t num;
	char *str;
};

struct imap_sort_key {
	uint32_t seq, uid;
	unsigned n;
	uint32_t strings;       /* bit i: v[i] is a heap string */
	union sort_val v[];
};

static bool crit_is_string(enum sort_crit c)
{
	return c != SORT_ARRIVAL && c != SORT_DATE && c != SORT_SIZE;
}

int imap_sort_parse(const struct imap_arg *args, uint32_t i, struct imap_sort **sort_r,
		    const char **error_r)
{
	const struct imap_arg *l = &args[i];
	bool reverse = false;

	*sort_r = NULL;
	if (l->type != IMAP_ARG_LIST || l->nchildren == 0) {
		*error_r = "Invalid sort criteria";
		return -1;
	}
	struct imap_sort *s = xcalloc(1, sizeof(*s));
	for (uint32_t j = i + 1; j < l->end; j = args[j].end) {
		const struct imap_arg *a = &args[j];
		if (imap_arg_atom_eq(a, "REVERSE")) {
			if (reverse)
				goto bad;
			reverse = true;
			continue;
		}
		size_t k;
		for (k = 0; k < ARRAY_LEN(sort_names); k++)
			if (imap_arg_atom_eq(a, sort_names[k].name))
				break;
		if (k == ARRAY_LEN(sort_names))
			goto bad;
		if (s->n == IMAP_SORT_CRITERIA_MAX) {
			free(s);
			*error_r = "Too many sort criteria";
			return -1;
		}
		s->c[s->n].crit = sort_names[k].crit;
		s->c[s->n].reverse = reverse;
		s->n++;
		reverse = false;
	}
	if (reverse)
		goto bad;
	*sort_r = s;
	return 0;
bad:
	free(s);
	*error_r = "Invalid sort criteria";
	return -1;
}

void imap_sort_free(struct imap_sort **s)
{
	FREE(*s);
}

static char *address_key(const char *h, size_t hlen, const char *field, bool display)
{
	struct mime_field f;
	if (hlen == 0 || !header_raw(h, hlen, field, &f))
		return xstrdup("");
	char *v = mime_unfold(f.value, f.value_len, MIME_FIELD_MAX, NULL);
	struct first_addr fa;
	first_address(v, strlen(v), &fa);
	free(v);
	char *out;
	if (!display) {
		out = xstrdup(fa.mailbox.data ? fa.mailbox.data : "");
	} else {
		struct buf b;
		buf_init(&b, 4 * (size_t)MIME_FIELD_MAX);
		if (fa.name.len > 0)
			(void)rfc2047_decode(fa.name.data, fa.name.len, &b);
		if (b.len == 0 && fa.mailbox.len > 0) {
			(void)buf_append(&b, fa.mailbox.data, fa.mailbox.len);
			if (fa.host.len > 0) {
				(void)buf_append(&b, "@", 1);
				(void)buf_append(&b, fa.host.data, fa.host.len);
			}
		}
		out = buf_steal(&b, NULL);
		if (out == NULL)
			out = xstrdup("");
	}
	first_address_free(&fa);
	return out;
}

static int64_t sent_date(const struct imap_search_msg *msg, const char *h, size_t hlen)
{
	struct mime_field f;
	int64_t utc, day;
	if (hlen > 0 && header_raw(h, hlen, "Date", &f) &&
	    parse_date_header(f.value, f.value_len, &utc, &day) == 0)
		return utc;
	return msg->internaldate;
}

struct imap_sort_key *imap_sort_key_make(const struct imap_sort *s,
					 const struct imap_search_msg *msg)
{
	struct imap_sort_key *k = xmalloc(sizeof(*k) + s->n * sizeof(k->v[0]));
	const char *h;
	size_t hlen;
	struct mime_field f;

	k->seq = msg->seq;
	k->uid = msg->uid;
	k->n = s->n;
	k->strings = 0;
	top_header(msg, &h, &hlen);
	for (unsigned i = 0; i < s->n; i++) {
		switch (s->c[i].crit) {
		case SORT_ARRIVAL:
			k->v[i].num = msg->internaldate;
			break;
		case SORT_SIZE:
			k->v[i].num = msg->size;
			break;
		case SORT_DATE:
			k->v[i].num = sent_date(msg, h, hlen);
			break;
		case SORT_SUBJECT:
			if (hlen > 0 && header_raw(h, hlen, "Subject", &f))
				k->v[i].str = imap_base_subject(f.value, f.value_len);
			else
				k->v[i].str = xstrdup("");
			break;
		case SORT_FROM:
			k->v[i].str = address_key(h, hlen, "From", false);
			break;
		case SORT_TO:
			k->v[i].str = address_key(h, hlen, "To", false);
			break;
		case SORT_CC:
			k->v[i].str = address_key(h, hlen, "Cc", false);
			break;
		case SORT_DISPLAYFROM:
			k->v[i].str = address_key(h, hlen, "From", true);
			break;
		case SORT_DISPLAYTO:
			k->v[i].str = address_key(h, hlen, "To", true);
			break;
		}
		if (crit_is_string(s->c[i].crit)) {
			upper_ascii(k->v[i].str);
			k->strings |= 1u << i;
		}
	}
	return k;
}

static int sort_cmp(const void *a, const void *b, void *arg)
{
	const struct imap_sort *s = arg;
	const struct imap_sort_key *x = *(struct imap_sort_key *const *)a;
	const struct imap_sort_key *y = *(struct imap_sort_key *const *)b;

	for (unsigned i = 0; i < s->n; i++) {
		int c;
		if (crit_is_string(s->c[i].crit)) {
			c = strcmp(x->v[i].str, y->v[i].str);
			c = c < 0 ? -1 : c > 0;
		} else {
			c = x->v[i].num < y->v[i].num ? -1 : x->v[i].num > y->v[i].num;
		}
		if (s->c[i].reverse)
			c = -c;
		if (c != 0)
			return c;
	}
	if (x->seq != y->seq)
		return x->seq < y->seq ? -1 : 1;
	return 0;
}

void imap_sort_run(const struct imap_sort *s, struct imap_sort_key **keys, size_t n)
{
	if (n > 1)
		qsort_r(keys, n, sizeof(*keys), sort_cmp, (void *)s);
}

uint32_t imap_sort_key_seq(const struct imap_sort_key *k)
{
	return k->seq;
}

uint32_t imap_sort_key_uid(const struct imap_sort_key *k)
{
	return k->uid;
}

void imap_sort_key_free(struct imap_sort_key *k)
{
	if (k == NULL)
		return;
	for (unsigned i = 0; i < k->n; i++)
		if (k->strings & (1u << i))
			free(k->v[i].str);
	free(k);
}

/* ------------------------------------------------------------------ */
/* THREAD */

/* References kept per message: the last ones (nearest the parent). */
#define THREAD_REFS_MAX 128u
#define THREAD_ID_MAX 998u

/* Message ids "<...>" in s[0..n), blanks and line ends inside dropped.
 * With first_only the first one only.  Appended to *ids (heap). */
static void parse_ids(const char *s, size_t n, bool first_only, char ***ids, size_t *nids)
{
	size_t i = 0;
	while (i < n) {
		const char *lt = memchr(s + i, '<', n - i);
		if (lt == NULL)
			break;
		size_t k = (size_t)(lt - s) + 1;
		const char *gt = memchr(s + k, '>', n - k);
		if (gt == NULL)
			break;
		size_t e = (size_t)(gt - s);
		i = e + 1;
		char *id = xmalloc(e - k + 1);
		size_t m = 0;
		for (size_t j = k; j < e; j++)
			if (s[j] != ' ' && s[j] != '\t' && s[j] != '\r' && s[j] != '\n' &&
			    s[j] != '<')
				id[m++] = s[j];
		id[m] = '\0';
		if (m == 0 || m > THREAD_ID_MAX) {
			free(id);
			continue;
		}
		if (*nids == THREAD_REFS_MAX) {
			free((*ids)[0]);
			memmove(*ids, *ids + 1, (*nids - 1) * sizeof(**ids));
			(*nids)--;
		}
		*ids = xreallocarray(*ids, *nids + 1, sizeof(**ids));
		(*ids)[(*nids)++] = id;
		if (first_only)
			break;
	}
}

void imap_thread_msg_init(struct imap_thread_msg *t, const struct imap_search_msg *msg)
{
	const char *h;
	size_t hlen;
	struct mime_field f;

	memset(t, 0, sizeof(*t));
	t->seq = msg->seq;
	t->uid = msg->uid;
	top_header(msg, &h, &hlen);
	t->date = sent_date(msg, h, hlen);
	if (hlen > 0 && header_raw(h, hlen, "Subject", &f))
		t->subject = base_subject(f.value, f.value_len, &t->subject_reply);
	else
		t->subject = xstrdup("");
	if (hlen == 0)
		return;
	if (header_raw(h, hlen, "Message-ID", &f)) {
		char **ids = NULL;
		size_t nids = 0;
		parse_ids(f.value, f.value_len, true, &ids, &nids);
		if (nids > 0)
			t->message_id = ids[0];
		free(ids);
	}
	if (header_raw(h, hlen, "References", &f))
		parse_ids(f.value, f.value_len, false, &t->refs, &t->nrefs);
	if (t->nrefs == 0 && header_raw(h, hlen, "In-Reply-To", &f))
		parse_ids(f.value, f.value_len, true, &t->refs, &t->nrefs);
}

void imap_thread_msg_clear(struct imap_thread_msg *t)
{
	free(t->subject);
	free(t->message_id);
	for (size_t i = 0; i < t->nrefs; i++)
		free(t->refs[i]);
	free(t->refs);
	memset(t, 0, sizeof(*t));
}

int imap_thread_alg_parse(const struct imap_arg *arg, enum imap_thread_alg *alg_r)
{
	if (imap_arg_atom_eq(arg, "ORDEREDSUBJECT"))
		*alg_r = IMAP_THREAD_ORDEREDSUBJECT;
	else if (imap_arg_atom_eq(arg, "REFERENCES"))
		*alg_r = IMAP_THREAD_REFERENCES;
	else
		return -1;
	return 0;
}

#define TNONE UINT32_MAX

struct cont {
	uint32_t msg;                   /* index into msgs, TNONE: dummy */
	uint32_t parent, first, last, prev, next;
	uint32_t uf, epoch;             /* loop check, see uf_find */
	const char *id;
	int64_t date;                   /* sort key; dummies: their first child's */
	uint32_t seq;
};

struct stab_slot {
	const char *key;
	uint32_t val;
};

/* string -> container index, open addressing */
struct stab {
	struct stab_slot *v;
	size_t cap, n;
};

struct thr {
	const struct imap_thread_msg *msgs;
	size_t nmsgs;
	struct cont *c;
	uint32_t n, cap;
	uint32_t epoch;
	uint64_t budget;                /* parent steps left for loop checks */
	char **fsub;                    /* folded base subjects per message */
	uint32_t *tmp;                  /* sort scratch */
	size_t tmp_cap;
};

static uint64_t str_hash(const char *s)
{
	uint64_t h = 1469598103934665603ull;
	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 1099511628211ull;
	return h;
}

static struct stab_slot *stab_slot(struct stab *t, const char *key)
{
	size_t mask = t->cap - 1;
	for (size_t i = (size_t)str_hash(key) & mask;; i = (i + 1) & mask)
		if (t->v[i].key == NULL || strcmp(t->v[i].key, key) == 0)
			return &t->v[i];
}

/* The slot for key, made (val TNONE) when missing. */
static struct stab_slot *stab_get(struct stab *t, const char *key)
{
	if (t->cap == 0 || (t->n + 1) * 2 > t->cap) {
		struct stab old = *t;
		t->cap = old.cap ? old.cap * 2 : 64;
		t->v = xcalloc(t->cap, sizeof(*t->v));
		t->n = 0;
		for (size_t i = 0; i < old.cap; i++) {
			if (old.v[i].key == NULL)
				continue;
			*stab_slot(t, old.v[i].key) = old.v[i];
			t->n++;
		}
		free(old.v);
	}
	struct stab_slot *sl = stab_slot(t, key);
	if (sl->key == NULL) {
		sl->key = key;
		sl->val = TNONE;
		t->n++;
	}
	return sl;
}

static uint32_t cont_new(struct thr *t, uint32_t msg, const char *id)
{
	if (t->n == t->cap) {
		assert(t->cap < UINT32_MAX / 2);
		t->cap = t->cap ? t->cap * 2 : 64;
		t->c = xreallocarray(t->c, t->cap, sizeof(*t->c));
	}
	uint32_t i = t->n++;
	struct cont *c = &t->c[i];
	memset(c, 0, sizeof(*c));
	c->msg = msg;
	c->parent = c->first = c->last = c->prev = c->next = c->uf = TNONE;
	c->epoch = t->epoch;
	c->id = id;
	if (msg != TNONE) {
		c->date = t->msgs[msg].date;
		c->seq = t->msgs[msg].seq;
	}
	return i;
}

/* Make x the last child of p (x has no parent). */
static void cont_link(struct thr *t, uint32_t p, uint32_t x)
{
	struct cont *c = t->c;
	c[x].parent = p;
	c[x].next = TNONE;
	c[x].prev = c[p].last;
	if (c[p].last == TNONE)
		c[p].first = x;
	else
		c[c[p].last].next = x;
	c[p].last = x;
	c[x].uf = p;
	c[x].epoch = t->epoch;
}

/* Take x out of its parent's children (roots change: the loop-check
 * shortcuts are dropped). */
static void cont_unlink(struct thr *t, uint32_t x)
{
	struct cont *c = t->c;
	uint32_t p = c[x].parent;
	if (p == TNONE)
		return;
	if (c[x].prev == TNONE)
		c[p].first = c[x].next;
	else
		c[c[x].prev].next = c[x].next;
	if (c[x].next == TNONE)
		c[p].last = c[x].prev;
	else
		c[c[x].next].prev = c[x].prev;
	c[x].parent = c[x].prev = c[x].next = TNONE;
	t->epoch++;
}

/* Insert x (no parent) into p's children just before sibling s. */
static void cont_insert_before(struct thr *t, uint32_t s, uint32_t x)
{
	struct cont *c = t->c;
	uint32_t p = c[s].parent;
	c[x].parent = p;
	c[x].next = s;
	c[x].prev = c[s].prev;
	if (c[s].prev == TNONE)
		c[p].first = x;
	else
		c[c[s].prev].next = x;
	c[s].prev = x;
}

/* The root of x's tree, by union-find over parent links: uf is a known
 * ancestor, valid while epoch matches (an unlink invalidates all of them,
 * a link only adds ancestors above a root).  Paths are compressed.  TNONE
 * when the step budget is spent. */
static uint32_t uf_find(struct thr *t, uint32_t x)
{
	uint32_t r = x;
	for (;;) {
		struct cont *c = &t->c[r];
		if (c->epoch != t->epoch) {
			c->uf = c->parent;
			c->epoch = t->epoch;
		}
		if (c->uf == TNONE)
			break;
		if (t->budget == 0)
			return TNONE;
		t->budget--;
		r = c->uf;
	}
	while (x != r) {
		uint32_t nx = t->c[x].uf;
		t->c[x].uf = r;
		x = nx;
	}
	return r;
}

/* Would making root x a child of p create a loop (x is p's root)?  True
 * as well when the budget is spent: then no more links are made. */
static bool would_loop(struct thr *t, uint32_t p, uint32_t x)
{
	uint32_t r = uf_find(t, p);
	return r == TNONE || r == x;
}

static uint32_t leftmost_leaf(const struct thr *t, uint32_t x)
{
	while (t->c[x].first != TNONE)
		x = t->c[x].first;
	return x;
}

/* Post-order successor of x (x is not the root r). */
static uint32_t post_next(const struct thr *t, uint32_t x)
{
	if (t->c[x].next != TNONE)
		return leftmost_leaf(t, t->c[x].next);
	return t->c[x].parent;
}

static int cont_cmp(const void *a, const void *b, void *arg)
{
	const struct cont *c = arg;
	const struct cont *x = &c[*(const uint32_t *)a], *y = &c[*(const uint32_t *)b];
	if (x->date != y->date)
		return x->date < y->date ? -1 : 1;
	if (x->seq != y->seq)
		return x->seq < y->seq ? -1 : 1;
	return 0;
}

/* Sort x's children by date; a dummy takes its first child's date. */
static void sort_children(struct thr *t, uint32_t x)
{
	struct cont *c = t->c;
	size_t n = 0;
	for (uint32_t k = c[x].first; k != TNONE; k = c[k].next) {
		if (n == t->tmp_cap) {
			t->tmp_cap = t->tmp_cap ? t->tmp_cap * 2 : 64;
			t->tmp = xreallocarray(t->tmp, t->tmp_cap, sizeof(*t->tmp));
		}
		t->tmp[n++] = k;
	}
	if (n > 1) {
		qsort_r(t->tmp, n, sizeof(*t->tmp), cont_cmp, c);
		c[x].first = t->tmp[0];
		c[x].last = t->tmp[n - 1];
		for (size_t i = 0; i < n; i++) {
			c[t->tmp[i]].prev = i > 0 ? t->tmp[i - 1] : TNONE;
			c[t->tmp[i]].next = i + 1 < n ? t->tmp[i + 1] : TNONE;
		}
	}
	if (c[x].msg == TNONE && c[x].first != TNONE) {
		c[x].date = c[c[x].first].date;
		c[x].seq = c[c[x].first].seq;
	}
}

/* RFC 5256 REFERENCES step 1: containers and parent links. */
static void thread_link(struct thr *t, struct stab *ids)
{
	for (size_t mi = 0; mi < t->nmsgs; mi++) {
		const struct imap_thread_msg *m = &t->msgs[mi];
		uint32_t x;
		if (m->message_id != NULL && m->message_id[0] != '\0') {
			struct stab_slot *sl = stab_get(ids, m->message_id);
			if (sl->val == TNONE) {
				x = cont_new(t, (uint32_t)mi, m->message_id);
				sl = stab_get(ids, m->message_id);
				sl->val = x;
			} else if (t->c[sl->val].msg == TNONE) {
				x = sl->val;
				t->c[x].msg = (uint32_t)mi;
				t->c[x].date = m->date;
				t->c[x].seq = m->seq;
			} else {
				x = cont_new(t, (uint32_t)mi, NULL);    /* duplicate id */
			}
		} else {
			x = cont_new(t, (uint32_t)mi, NULL);
		}
		/* (B) link the references in order, keeping existing links */
		uint32_t prev = TNONE;
		for (size_t k = 0; k < m->nrefs; k++) {
			if (m->refs[k] == NULL || m->refs[k][0] == '\0')
				continue;
			struct stab_slot *sl = stab_get(ids, m->refs[k]);
			if (sl->val == TNONE) {
				uint32_t r = cont_new(t, TNONE, m->refs[k]);
				sl = stab_get(ids, m->refs[k]);
				sl->val = r;
			}
			uint32_t r = sl->val;
			if (prev != TNONE && r != prev && t->c[r].parent == TNONE &&
			    !would_loop(t, prev, r))
				cont_link(t, prev, r);
			prev = r;
		}
		/* (C) the message's parent is its last reference (or none) */
		if (t->c[x].parent == prev)
			continue;
		uint32_t old = t->c[x].parent;
		cont_unlink(t, x);
		if (prev == TNONE)
			continue;
		if (!would_loop(t, prev, x))
			cont_link(t, prev, x);
		else if (old != TNONE)
			cont_link(t, old, x);
	}
}

/* Step 4: dummies without children go, others give their children to
 * their parent, except at the top with two or more children. */
static void thread_prune(struct thr *t, uint32_t root)
{
	if (t->c[root].first == TNONE)
		return;
	uint32_t x = leftmost_leaf(t, t->c[root].first);
	while (x != root) {
		uint32_t nx = post_next(t, x);
		struct cont *c = t->c;
		if (c[x].msg == TNONE) {
			uint32_t p = c[x].parent;
			if (c[x].first == TNONE) {
				cont_unlink(t, x);
			} else if (p != root || c[x].first == c[x].last) {
				uint32_t f = c[x].first, l = c[x].last;
				for (uint32_t k = f; k != TNONE; k = c[k].next)
					c[k].parent = p;
				c[f].prev = c[x].prev;
				c[l].next = c[x].next;
				if (c[x].prev == TNONE)
					c[p].first = f;
				else
					c[c[x].prev].next = f;
				if (c[x].next == TNONE)
					c[p].last = l;
				else
					c[c[x].next].prev = l;
				c[x].parent = c[x].prev = c[x].next = TNONE;
				c[x].first = c[x].last = TNONE;
			}
		}
		x = nx;
	}
}

static const char *thread_subject(const struct thr *t, uint32_t x)
{
	uint32_t m = t->c[x].msg != TNONE ? x : t->c[x].first;
	if (m == TNONE || t->c[m].msg == TNONE)
		return NULL;
	const char *s = t->fsub[t->c[m].msg];
	return s[0] ? s : NULL;
}

static bool cont_reply(const struct thr *t, uint32_t x)
{
	return t->c[x].msg != TNONE && t->msgs[t->c[x].msg].subject_reply;
}

static bool cont_dummy(const struct thr *t, uint32_t x)
{
	return t->c[x].msg == TNONE;
}

/* Step 5: gather top-level threads with the same base subject. */
static void thread_subjects(struct thr *t, uint32_t root)
{
	struct stab subj = {0};

	for (uint32_t x = t->c[root].first; x != TNONE; x = t->c[x].next) {
		const char *s = thread_subject(t, x);
		if (s == NULL)
			continue;
		struct stab_slot *sl = stab_get(&subj, s);
		if (sl->val == TNONE) {
			sl->val = x;
			continue;
		}
		uint32_t y = sl->val;
		if (!cont_dummy(t, y) &&
		    (cont_dummy(t, x) || (cont_reply(t, y) && !cont_reply(t, x))))
			sl->val = x;
	}
	for (uint32_t x = t->c[root].first, nx; x != TNONE; x = nx) {
		nx = t->c[x].next;
		const char *s = thread_subject(t, x);
		if (s == NULL)
			continue;
		struct stab_slot *sl = stab_get(&subj, s);
		uint32_t y = sl->val;
		if (y == x)
			continue;
		if (cont_dummy(t, x) && cont_dummy(t, y)) {
			while (t->c[x].first != TNONE) {
				uint32_t k = t->c[x].first;
				cont_unlink(t, k);
				cont_link(t, y, k);
			}
			cont_unlink(t, x);
		} else if (cont_dummy(t, y) ||
			   (!cont_dummy(t, x) && cont_reply(t, x) && !cont_reply(t, y))) {
			cont_unlink(t, x);
			cont_link(t, y, x);
		} else {
			uint32_t d = cont_new(t, TNONE, NULL);
			cont_insert_before(t, y, d);
			cont_unlink(t, y);
			cont_link(t, d, y);
			cont_unlink(t, x);
			cont_link(t, d, x);
			t->c[d].date = t->c[y].date;
			t->c[d].seq = t->c[y].seq;
			sl->val = d;
			if (nx == y)
				nx = d;
		}
	}
	free(subj.v);
}

static int put_num(struct buf *out, const struct thr *t, uint32_t x, bool use_uid, bool space)
{
	const struct imap_thread_msg *m = &t->msgs[t->c[x].msg];
	return buf_printf(out, "%s%" PRIu32, space ? " " : "", use_uid ? m->uid : m->seq);
}

/* Write the thread lists of root's children, iteratively: a chain of only
 * children is "a b c", two or more children are nested lists "(b)(c)". */
static int thread_emit(struct thr *t, uint32_t root, bool use_uid, struct buf *out)
{
	uint32_t *stk = NULL;
	size_t sp = 0, cap = 0;
	int ret = -1;
	const struct cont *c;

	for (uint32_t top = t->c[root].first; top != TNONE; top = t->c[top].next) {
		uint32_t x = top;
		bool first = true;
		if (buf_append(out, "(", 1) < 0)
			goto out;
		for (;;) {
			for (;;) {
				c = t->c;
				if (c[x].msg != TNONE) {
					if (put_num(out, t, x, use_uid, !first) < 0)
						goto out;
					first = false;
				}
				uint32_t ch = c[x].first;
				if (ch == TNONE)
					break;
				if (c[ch].next == TNONE) {
					x = ch;
					continue;
				}
				if (sp == cap) {
					cap = cap ? cap * 2 : 16;
					stk = xreallocarray(stk, cap, sizeof(*stk));
				}
				stk[sp++] = c[ch].next;
				if (buf_append_str(out, first ? "(" : " (") < 0)
					goto out;
				x = ch;
				first = true;
			}
			if (buf_append(out, ")", 1) < 0)
				goto out;
			for (;;) {
				if (sp == 0)
					goto next_top;
				uint32_t s = stk[sp - 1];
				if (s != TNONE) {
					stk[sp - 1] = t->c[s].next;
					if (buf_append(out, "(", 1) < 0)
						goto out;
					x = s;
					first = true;
					break;
				}
				sp--;
				if (buf_append(out, ")", 1) < 0)
					goto out;
			}
		}
next_top:;
	}
	ret = 0;
out:
	free(stk);
	return ret;
}

static int osub_cmp(const void *a, const void *b, void *arg)
{
	const struct thr *t = arg;
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
	int c = strcmp(t->fsub[x], t->fsub[y]);
	if (c != 0)
		return c < 0 ? -1 : 1;
	const struct imap_thread_msg *mx = &t->msgs[x], *my = &t->msgs[y];
	if (mx->date != my->date)
		return mx->date < my->date ? -1 : 1;
	return mx->seq < my->seq ? -1 : mx->seq > my->seq;
}

static int thread_orderedsubject(struct thr *t, bool use_uid, struct buf *out)
{
	size_t n = t->nmsgs;
	uint32_t *idx = xreallocarray(NULL, n, sizeof(*idx));
	for (size_t i = 0; i < n; i++)
		idx[i] = (uint32_t)i;
	qsort_r(idx, n, sizeof(*idx), osub_cmp, t);
	/* one container per message, children of the first of each subject */
	uint32_t root = cont_new(t, TNONE, NULL);
	uint32_t parent = TNONE;
	for (size_t i = 0; i < n; i++) {
		uint32_t x = cont_new(t, idx[i], NULL);
		if (i > 0 && strcmp(t->fsub[idx[i]], t->fsub[idx[i - 1]]) == 0) {
			cont_link(t, parent, x);
		} else {
			cont_link(t, root, x);
			parent = x;
		}
	}
	free(idx);
	sort_children(t, root);
	return thread_emit(t, root, use_uid, out);
}

static int thread_references(struct thr *t, bool use_uid, struct buf *out)
{
	struct stab ids = {0};

	thread_link(t, &ids);
	free(ids.v);
	/* (2) the root set */
	uint32_t root = cont_new(t, TNONE, NULL);
	for (uint32_t i = 0; i < root; i++)
		if (t->c[i].parent == TNONE)
			cont_link(t, root, i);
	/* (3) prune dummies */
	thread_prune(t, root);
	/* (4) sort the top level by date (dummies by their first child) */
	for (uint32_t x = t->c[root].first; x != TNONE; x = t->c[x].next)
		if (cont_dummy(t, x))
			sort_children(t, x);
	sort_children(t, root);
	/* (5) subjects */
	thread_subjects(t, root);
	/* (6) sort every set of siblings, deepest first */
	uint32_t x = leftmost_leaf(t, root);
	for (;;) {
		sort_children(t, x);
		if (x == root)
			break;
		x = post_next(t, x);
	}
	return thread_emit(t, root, use_uid, out);
}

int imap_thread_run(enum imap_thread_alg alg, const struct imap_thread_msg *msgs, size_t n,
		    bool use_uid, struct buf *out)
{
	struct thr t;
	int ret;

	if (n == 0)
		return 0;
	assert(n < UINT32_MAX / 4);
	memset(&t, 0, sizeof(t));
	t.msgs = msgs;
	t.nmsgs = n;
	t.fsub = xreallocarray(NULL, n, sizeof(*t.fsub));
	uint64_t refs = 0;
	for (size_t i = 0; i < n; i++) {
		const char *s = msgs[i].subject ? msgs[i].subject : "";
		t.fsub[i] = fold_dup(s, strlen(s));
		refs += msgs[i].nrefs;
	}
	/* loop checks: plenty for real mail, bounded for crafted mail */
	t.budget = 64 * (refs + n) + (1u << 20);
	if (alg == IMAP_THREAD_ORDEREDSUBJECT)
		ret = thread_orderedsubject(&t, use_uid, out);
	else
		ret = thread_references(&t, use_uid, out);
	for (size_t i = 0; i < n; i++)
		free(t.fsub[i]);
	free(t.fsub);
	free(t.c);
	free(t.tmp);
	return ret;
}
