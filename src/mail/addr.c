/* addr.c - RFC 5321 4.1.2 envelope paths (with RFC 6531 UTF-8).
 *
 * A single forward pass over s[0..len) with a cursor; every loop is bounded
 * by a length cap (local part, domain, whole path), nothing recurses and
 * nothing is allocated.  The local-part cap counts octets as written on the
 * wire (quotes and backslashes included); the domain cap counts the domain
 * as stored (without brackets or a trailing dot). */
#include "mail/addr.h"
#include "mail/mutf7.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <string.h>

#define ERR_8BIT_TEXT "Non-ASCII address requires SMTPUTF8"

struct parser {
	const unsigned char *s;
	size_t len;
	size_t i;
	bool allow_utf8;
	enum addr_error err;
	const char *msg;
};

static int fail(struct parser *p, enum addr_error err, const char *msg)
{
	p->err = err;
	p->msg = msg;
	return -1;
}

static bool is_alpha(unsigned c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static bool is_digit(unsigned c)
{
	return c >= '0' && c <= '9';
}

static bool is_alnum(unsigned c)
{
	return is_alpha(c) || is_digit(c);
}

/* RFC 5322 atext, ASCII part. */
static bool is_atext(unsigned c)
{
	return is_alnum(c) || (c != 0 && c < 0x80 && strchr("!#$%&'*+-/=?^_`{|}~", (int)c));
}

/* RFC 5321 qtextSMTP, ASCII part. */
static bool is_qtext(unsigned c)
{
	return c == 32 || c == 33 || (c >= 35 && c <= 91) || (c >= 93 && c <= 126);
}

static unsigned to_lower(unsigned c)
{
	return c >= 'A' && c <= 'Z' ? c + ('a' - 'A') : c;
}

static bool mem_ieq(const unsigned char *a, const char *b, size_t n)
{
	for (size_t k = 0; k < n; k++)
		if (to_lower(a[k]) != to_lower((unsigned char)b[k]))
			return false;
	return true;
}

/* Length of the well-formed UTF-8 sequence at s[0..avail) (s[0] >= 0x80),
 * 0 when it is malformed: bad lead byte, truncated, overlong, surrogate or
 * beyond U+10FFFF. */
static size_t utf8_len(const unsigned char *s, size_t avail)
{
	return mutf7_utf8_char_len((const char *)s, avail);
}

/* s[i] >= 0x80: the length of the UTF-8 sequence there, or -1. */
static long take_utf8(struct parser *p)
{
	if (!p->allow_utf8)
		return fail(p, ADDR_ERR_8BIT, ERR_8BIT_TEXT);
	size_t n = utf8_len(p->s + p->i, p->len - p->i);
	if (n == 0)
		return fail(p, ADDR_ERR_SYNTAX, "Malformed UTF-8 in address");
	return (long)n;
}

static int parse_dot_string(struct parser *p, struct mail_addr *a)
{
	size_t n = 0;
	bool atom_empty = true;

	for (;;) {
		if (p->i >= p->len)
			return fail(p, ADDR_ERR_SYNTAX, "Missing '>' after address");
		unsigned c = p->s[p->i];
		size_t k = 1;
		if (c == '@')
			break;
		if (c == '.') {
			if (atom_empty)
				return fail(p, ADDR_ERR_SYNTAX,
					    n == 0 ? "Local part starts with '.'"
						   : "Local part contains '..'");
			atom_empty = true;
		} else if (c >= 0x80) {
			long r = take_utf8(p);
			if (r < 0)
				return -1;
			k = (size_t)r;
			a->utf8 = true;
			atom_empty = false;
		} else if (is_atext(c)) {
			atom_empty = false;
		} else if (c == '>') {
			return fail(p, ADDR_ERR_SYNTAX, "Missing '@' in address");
		} else {
			return fail(p, ADDR_ERR_SYNTAX, "Invalid character in local part");
		}
		if (n + k > ADDR_LOCAL_MAX)
			return fail(p, ADDR_ERR_LOCAL_TOO_LONG, "Local part too long");
		memcpy(a->local + n, p->s + p->i, k);
		n += k;
		p->i += k;
	}
	if (n == 0)
		return fail(p, ADDR_ERR_SYNTAX, "Empty local part");
	if (atom_empty)
		return fail(p, ADDR_ERR_SYNTAX, "Local part ends with '.'");
	a->local[n] = '\0';
	return 0;
}

static int parse_quoted(struct parser *p, struct mail_addr *a)
{
	size_t raw = 1, n = 0;

	a->quoted = true;
	p->i++;
	for (;;) {
		if (p->i >= p->len)
			return fail(p, ADDR_ERR_SYNTAX, "Unterminated quoted local part");
		unsigned c = p->s[p->i];
		size_t k = 1, skip = 0;
		if (c == '"') {
			if (raw + 1 > ADDR_LOCAL_MAX)
				return fail(p, ADDR_ERR_LOCAL_TOO_LONG, "Local part too long");
			p->i++;
			break;
		}
		if (c == '\\') {
			if (p->i + 1 >= p->len)
				return fail(p, ADDR_ERR_SYNTAX, "Unterminated quoted local part");
			c = p->s[p->i + 1];
			if (c >= 0x80 && !p->allow_utf8)
				return fail(p, ADDR_ERR_8BIT, ERR_8BIT_TEXT);
			if (c < 32 || c > 126)
				return fail(p, ADDR_ERR_SYNTAX, "Invalid escaped character");
			skip = 1;
		} else if (c >= 0x80) {
			long r = take_utf8(p);
			if (r < 0)
				return -1;
			k = (size_t)r;
			a->utf8 = true;
		} else if (!is_qtext(c)) {
			return fail(p, ADDR_ERR_SYNTAX, "Invalid character in quoted local part");
		}
		if (raw + skip + k > ADDR_LOCAL_MAX)
			return fail(p, ADDR_ERR_LOCAL_TOO_LONG, "Local part too long");
		memcpy(a->local + n, p->s + p->i + skip, k);
		raw += skip + k;
		n += k;
		p->i += skip + k;
	}
	a->local[n] = '\0';
	if (p->i >= p->len)
		return fail(p, ADDR_ERR_SYNTAX, "Missing '>' after address");
	if (p->s[p->i] == '>')
		return fail(p, ADDR_ERR_SYNTAX, "Missing '@' in address");
	if (p->s[p->i] != '@')
		return fail(p, ADDR_ERR_SYNTAX, "Invalid character after quoted local part");
	return 0;
}

/* Domain = sub-domain *("." sub-domain) into out (ADDR_DOMAIN_MAX + 1
 * bytes).  Stops at the first byte that cannot continue it; a final '.' is
 * not stored and reported in *trailing_r. */
static int parse_domain(struct parser *p, char *out, bool *utf8_r, bool *trailing_r)
{
	size_t n = 0;
	bool dot_pending = false, label_empty = true;
	unsigned last = 0;

	for (;;) {
		if (p->i >= p->len)
			break;
		unsigned c = p->s[p->i];
		size_t k = 1;
		if (c == '.') {
			if (label_empty)
				return fail(p, ADDR_ERR_SYNTAX, "Empty label in domain");
			if (last == '-')
				return fail(p, ADDR_ERR_SYNTAX, "Domain label ends with '-'");
			dot_pending = true;
			label_empty = true;
			p->i++;
			continue;
		}
		if (c >= 0x80) {
			long r = take_utf8(p);
			if (r < 0)
				return -1;
			k = (size_t)r;
			*utf8_r = true;
		} else if (c == '-') {
			if (label_empty)
				return fail(p, ADDR_ERR_SYNTAX, "Domain label starts with '-'");
		} else if (!is_alnum(c)) {
			break;
		}
		if (n + k + dot_pending > ADDR_DOMAIN_MAX)
			return fail(p, ADDR_ERR_DOMAIN_TOO_LONG, "Domain too long");
		if (dot_pending)
			out[n++] = '.';
		memcpy(out + n, p->s + p->i, k);
		n += k;
		p->i += k;
		dot_pending = false;
		label_empty = false;
		last = c;
	}
	if (n == 0)
		return fail(p, ADDR_ERR_SYNTAX, "Missing domain");
	if (!dot_pending && last == '-')
		return fail(p, ADDR_ERR_SYNTAX, "Domain label ends with '-'");
	out[n] = '\0';
	*trailing_r = dot_pending;
	return 0;
}

/* Snum "." Snum "." Snum "." Snum, Snum = 1*3DIGIT in 0..255. */
static bool valid_ipv4(const char *s)
{
	for (int part = 0; part < 4; part++) {
		unsigned v = 0;
		int digits = 0;
		while (is_digit((unsigned char)*s) && digits < 3) {
			v = v * 10 + (unsigned)(*s++ - '0');
			digits++;
		}
		if (digits == 0 || v > 255)
			return false;
		if (part < 3 && *s++ != '.')
			return false;
	}
	return *s == '\0';
}

/* General-address-literal: Standardized-tag ":" 1*dcontent, the tag being an
 * Ldh-str (dcontent was checked while reading). */
static bool valid_general_literal(const char *s)
{
	const char *colon = strchr(s, ':');
	if (colon == NULL || colon == s || colon[1] == '\0')
		return false;
	if (!is_alnum((unsigned char)colon[-1]))
		return false;
	for (const char *t = s; t < colon; t++)
		if (!is_alnum((unsigned char)*t) && *t != '-')
			return false;
	return true;
}

static int parse_literal(struct parser *p, struct mail_addr *a)
{
	size_t n = 0;

	p->i++;
	for (;;) {
		if (p->i >= p->len)
			return fail(p, ADDR_ERR_SYNTAX, "Unterminated address literal");
		unsigned c = p->s[p->i];
		if (c == ']')
			break;
		if (c >= 0x80 && !p->allow_utf8)
			return fail(p, ADDR_ERR_8BIT, ERR_8BIT_TEXT);
		if (c < 33 || c > 126 || c == '[' || c == '\\')
			return fail(p, ADDR_ERR_SYNTAX, "Invalid character in address literal");
		if (n + 1 > ADDR_DOMAIN_MAX)
			return fail(p, ADDR_ERR_DOMAIN_TOO_LONG, "Domain too long");
		a->domain[n++] = (char)c;
		p->i++;
	}
	p->i++;
	a->domain[n] = '\0';
	a->literal = true;
	if (n == 0)
		return fail(p, ADDR_ERR_SYNTAX, "Empty address literal");
	if (is_digit((unsigned char)a->domain[0])) {
		if (!valid_ipv4(a->domain))
			return fail(p, ADDR_ERR_SYNTAX, "Invalid IPv4 address literal");
	} else if (n >= 5 && mem_ieq((const unsigned char *)a->domain, "IPv6:", 5)) {
		struct in6_addr in6;
		if (inet_pton(AF_INET6, a->domain + 5, &in6) != 1)
			return fail(p, ADDR_ERR_SYNTAX, "Invalid IPv6 address literal");
	} else if (!valid_general_literal(a->domain)) {
		return fail(p, ADDR_ERR_SYNTAX, "Invalid address literal");
	}
	return 0;
}

/* A-d-l ":" after '<': "@" Domain *( "," "@" Domain ) ":". */
static int parse_route(struct parser *p)
{
	char scratch[ADDR_DOMAIN_MAX + 1];
	bool utf8 = false, trailing = false;

	for (;;) {
		p->i++; /* '@' */
		if (parse_domain(p, scratch, &utf8, &trailing) < 0)
			return -1;
		if (p->i > ADDR_PATH_MAX)
			return fail(p, ADDR_ERR_PATH_TOO_LONG, "Path too long");
		if (trailing || p->i >= p->len)
			return fail(p, ADDR_ERR_SYNTAX, "Invalid source route");
		unsigned c = p->s[p->i++];
		if (c == ':')
			return 0;
		if (c != ',' || p->i >= p->len || p->s[p->i] != '@')
			return fail(p, ADDR_ERR_SYNTAX, "Invalid source route");
	}
}

static int parse_path(struct parser *p, struct mail_addr *a)
{
	if (p->len == 0 || p->s[0] != '<')
		return fail(p, ADDR_ERR_SYNTAX, "Path must start with '<'");
	p->i = 1;
	if (p->i < p->len && p->s[p->i] == '>') {
		a->null = true;
		p->i++;
		return 0;
	}
	if (p->len - p->i >= 11 && mem_ieq(p->s + p->i, "postmaster", 10) &&
	    p->s[p->i + 10] == '>') {
		a->postmaster = true;
		memcpy(a->local, "postmaster", sizeof("postmaster"));
		p->i += 11;
		return 0;
	}
	if (p->i < p->len && p->s[p->i] == '@') {
		a->source_route = true;
		if (parse_route(p) < 0)
			return -1;
	}
	if (p->i >= p->len)
		return fail(p, ADDR_ERR_SYNTAX, "Missing '>' after address");
	if (p->s[p->i] == '"') {
		if (parse_quoted(p, a) < 0)
			return -1;
	} else if (parse_dot_string(p, a) < 0) {
		return -1;
	}
	p->i++; /* '@' */
	if (p->i < p->len && p->s[p->i] == '[') {
		if (parse_literal(p, a) < 0)
			return -1;
	} else if (parse_domain(p, a->domain, &a->utf8, &a->trailing_dot) < 0) {
		return -1;
	}
	if (p->i >= p->len)
		return fail(p, ADDR_ERR_SYNTAX, "Missing '>' after address");
	if (p->s[p->i] != '>')
		return fail(p, ADDR_ERR_SYNTAX,
			    a->literal ? "Invalid character after address literal"
				       : "Invalid character in domain");
	p->i++;
	if (p->i > ADDR_PATH_MAX)
		return fail(p, ADDR_ERR_PATH_TOO_LONG, "Path too long");
	return 0;
}

long addr_parse_path(const char *s, size_t len, bool allow_utf8, struct mail_addr *a,
		     enum addr_error *err_r, const char **error_r)
{
	struct parser p = {
		.s = (const unsigned char *)s,
		.len = s == NULL ? 0 : len,
		.allow_utf8 = allow_utf8,
		.err = ADDR_OK,
	};

	memset(a, 0, sizeof(*a));
	if (parse_path(&p, a) < 0) {
		memset(a, 0, sizeof(*a));
		if (err_r != NULL)
			*err_r = p.err;
		if (error_r != NULL)
			*error_r = p.msg;
		return -1;
	}
	if (err_r != NULL)
		*err_r = ADDR_OK;
	return (long)p.i;
}

struct out {
	char *p;
	size_t sz;
	size_t n;
};

static void put(struct out *o, const char *s, size_t k)
{
	if (o->sz == 0)
		return;
	size_t room = o->sz - 1 - o->n;
	if (k > room)
		k = room;
	memcpy(o->p + o->n, s, k);
	o->n += k;
	o->p[o->n] = '\0';
}

static bool is_dot_string(const char *s)
{
	bool atom_empty = true;

	if (*s == '\0')
		return false;
	for (; *s != '\0'; s++) {
		unsigned c = (unsigned char)*s;
		if (c == '.') {
			if (atom_empty)
				return false;
			atom_empty = true;
		} else if (c >= 0x80 || is_atext(c)) {
			atom_empty = false;
		} else {
			return false;
		}
	}
	return !atom_empty;
}

void addr_format(const struct mail_addr *a, char *out, size_t outsz)
{
	struct out o = { out, outsz, 0 };

	if (outsz > 0)
		out[0] = '\0';
	if (a->null)
		return;
	if (is_dot_string(a->local)) {
		put(&o, a->local, strlen(a->local));
	} else {
		put(&o, "\"", 1);
		for (const char *s = a->local; *s != '\0'; s++) {
			if (*s == '"' || *s == '\\')
				put(&o, "\\", 1);
			put(&o, s, 1);
		}
		put(&o, "\"", 1);
	}
	if (a->domain[0] == '\0' && !a->literal)
		return;
	put(&o, a->literal ? "@[" : "@", a->literal ? 2 : 1);
	put(&o, a->domain, strlen(a->domain));
	if (a->literal)
		put(&o, "]", 1);
}

bool addr_local_has_route_chars(const struct mail_addr *a)
{
	return strpbrk(a->local, "%!@") != NULL;
}
