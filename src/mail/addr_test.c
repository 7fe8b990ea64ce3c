/* addr_test.c - table-driven tests for RFC 5321 path parsing. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "mail/addr.h"

enum {
	F_NULL = 1 << 0,
	F_PM = 1 << 1,
	F_ROUTE = 1 << 2,
	F_QUOTED = 1 << 3,
	F_LIT = 1 << 4,
	F_UTF8 = 1 << 5,
	F_TDOT = 1 << 6,
	F_RCHARS = 1 << 7, /* addr_local_has_route_chars */
};

struct addr_case {
	const char *name;
	const char *input;
	size_t len;          /* 0: strlen(input) */
	bool utf8;           /* allow_utf8 */
	long want;           /* bytes consumed, -1 for an error */
	enum addr_error err;
	const char *local;
	const char *domain;
	unsigned flags;
	const char *formatted; /* NULL: not checked */
};

#define OK(n, in, w, l, d, f, fmt) \
	{ .name = n, .input = in, .want = w, .local = l, .domain = d, .flags = f, \
	  .formatted = fmt }
#define OKU(n, in, w, l, d, f, fmt) \
	{ .name = n, .input = in, .utf8 = true, .want = w, .local = l, .domain = d, .flags = f, \
	  .formatted = fmt }
#define BAD(n, in, e) { .name = n, .input = in, .want = -1, .err = e }
#define BADU(n, in, e) { .name = n, .input = in, .utf8 = true, .want = -1, .err = e }
#define BADN(n, in, l, e) { .name = n, .input = in, .len = l, .want = -1, .err = e }

static const struct addr_case cases[] = {
	/* plain forms */
	OK("plain", "<user@example.org>", 18, "user", "example.org", 0, "user@example.org"),
	OK("case kept", "<John.Doe@Example.ORG>", 22, "John.Doe", "Example.ORG", 0,
	   "John.Doe@Example.ORG"),
	OK("atext specials", "<a+b=c{d}~e'f@x.y>", 18, "a+b=c{d}~e'f", "x.y", 0, NULL),
	OK("digits and hyphens", "<1@a-b.c0-9>", 12, "1", "a-b.c0-9", 0, "1@a-b.c0-9"),
	OK("single label", "<root@localhost>", 16, "root", "localhost", 0, "root@localhost"),
	OK("params left", "<a@b> SIZE=100", 5, "a", "b", 0, "a@b"),
	OK("garbage after >", "<a@b>garbage", 5, "a", "b", 0, "a@b"),
	OK("second path after >", "<a@b><c@d>", 5, "a", "b", 0, "a@b"),
	/* quoted local parts */
	OK("quoted", "<\"john doe\"@x.org>", 18, "john doe", "x.org", F_QUOTED,
	   "\"john doe\"@x.org"),
	OK("quoted escapes", "<\"a\\\"b\\\\c\"@x>", 13, "a\"b\\c", "x", F_QUOTED,
	   "\"a\\\"b\\\\c\"@x"),
	OK("quoted escape of plain char", "<\"\\a\"@x>", 8, "a", "x", F_QUOTED, "a@x"),
	OK("quoted but dot-string", "<\"abc\"@x>", 9, "abc", "x", F_QUOTED, "abc@x"),
	OK("quoted empty", "<\"\"@x>", 6, "", "x", F_QUOTED, "\"\"@x"),
	OK("quoted dots", "<\"a..b.\"@x>", 11, "a..b.", "x", F_QUOTED, "\"a..b.\"@x"),
	OK("quoted gt", "<\"a>b\"@x>", 9, "a>b", "x", F_QUOTED, "\"a>b\"@x"),
	/* source routes */
	OK("source route", "<@a.example,@b.example:user@c.example>", 38, "user", "c.example",
	   F_ROUTE, "user@c.example"),
	OK("source route one hop", "<@relay:u@d>", 12, "u", "d", F_ROUTE, "u@d"),
	BAD("route no colon", "<@a.example user@c>", ADDR_ERR_SYNTAX),
	BAD("route trailing dot", "<@a.:u@c>", ADDR_ERR_SYNTAX),
	BAD("route hop without @", "<@a,b:u@c>", ADDR_ERR_SYNTAX),
	BAD("route empty domain", "<@:u@c>", ADDR_ERR_SYNTAX),
	BAD("route then end", "<@a,@b:", ADDR_ERR_SYNTAX),
	BAD("route literal", "<@[1.2.3.4]:u@c>", ADDR_ERR_SYNTAX),
	BAD("only at", "<@b>", ADDR_ERR_SYNTAX),
	/* null and postmaster */
	OK("null", "<>", 2, "", "", F_NULL, ""),
	OK("null with params", "<> BODY=8BITMIME", 2, "", "", F_NULL, ""),
	OK("postmaster", "<Postmaster>", 12, "postmaster", "", F_PM, "postmaster"),
	OK("postmaster upper", "<POSTMASTER> X", 12, "postmaster", "", F_PM, "postmaster"),
	OK("postmaster lower", "<postmaster>", 12, "postmaster", "", F_PM, "postmaster"),
	OK("postmaster at domain", "<Postmaster@d.org>", 18, "Postmaster", "d.org", 0,
	   "Postmaster@d.org"),
	BAD("postmaster truncated", "<postmaster", ADDR_ERR_SYNTAX),
	BAD("postmasterx", "<postmasterx>", ADDR_ERR_SYNTAX),
	/* address literals */
	OK("literal v4", "<a@[192.0.2.1]>", 15, "a", "192.0.2.1", F_LIT, "a@[192.0.2.1]"),
	OK("literal v4 leading zeros", "<a@[010.0.0.001]>", 17, "a", "010.0.0.001", F_LIT, NULL),
	OK("literal v6", "<a@[IPv6:2001:db8::1]>", 22, "a", "IPv6:2001:db8::1", F_LIT,
	   "a@[IPv6:2001:db8::1]"),
	OK("literal v6 lower tag", "<a@[ipv6:::1]>", 14, "a", "ipv6:::1", F_LIT, NULL),
	OK("literal v6v4", "<a@[IPv6:::ffff:192.0.2.1]>", 27, "a", "IPv6:::ffff:192.0.2.1", F_LIT,
	   NULL),
	OK("literal general", "<a@[x-tag:some.thing]>", 22, "a", "x-tag:some.thing", F_LIT, NULL),
	BAD("literal v4 octet > 255", "<a@[256.1.1.1]>", ADDR_ERR_SYNTAX),
	BAD("literal v4 3 parts", "<a@[1.2.3]>", ADDR_ERR_SYNTAX),
	BAD("literal v4 5 parts", "<a@[1.2.3.4.5]>", ADDR_ERR_SYNTAX),
	BAD("literal v4 4 digits", "<a@[1.2.3.1234]>", ADDR_ERR_SYNTAX),
	BAD("literal v6 bad", "<a@[IPv6:2001:db8:::1]>", ADDR_ERR_SYNTAX),
	BAD("literal v6 is v4", "<a@[IPv6:1.2.3.4]>", ADDR_ERR_SYNTAX),
	BAD("literal general no colon", "<a@[nocolon]>", ADDR_ERR_SYNTAX),
	BAD("literal general empty content", "<a@[tag:]>", ADDR_ERR_SYNTAX),
	BAD("literal general tag ends -", "<a@[tag-:x]>", ADDR_ERR_SYNTAX),
	BAD("literal empty", "<a@[]>", ADDR_ERR_SYNTAX),
	BAD("literal unterminated", "<a@[1.2.3.4", ADDR_ERR_SYNTAX),
	BAD("literal junk after", "<a@[1.2.3.4]x>", ADDR_ERR_SYNTAX),
	BAD("literal space", "<a@[1.2.3.4 ]>", ADDR_ERR_SYNTAX),
	BAD("literal backslash", "<a@[x:a\\b]>", ADDR_ERR_SYNTAX),
	BAD("literal no gt", "<a@[1.2.3.4]", ADDR_ERR_SYNTAX),
	/* trailing dot: parsed, flagged, stripped */
	OK("trailing dot", "<a@example.org.>", 16, "a", "example.org", F_TDOT, "a@example.org"),
	OK("trailing dot single label", "<a@b.> X", 6, "a", "b", F_TDOT, "a@b"),
	BAD("domain only dot", "<a@.>", ADDR_ERR_SYNTAX),
	BAD("domain two trailing dots", "<a@b..>", ADDR_ERR_SYNTAX),
	/* domain syntax */
	BAD("domain leading dot", "<a@.example>", ADDR_ERR_SYNTAX),
	BAD("domain double dot", "<a@ex..ample>", ADDR_ERR_SYNTAX),
	BAD("domain label starts -", "<a@-ex.org>", ADDR_ERR_SYNTAX),
	BAD("domain label ends -", "<a@ex-.org>", ADDR_ERR_SYNTAX),
	BAD("domain ends -", "<a@ex.org->", ADDR_ERR_SYNTAX),
	BAD("domain missing", "<a@>", ADDR_ERR_SYNTAX),
	BAD("domain space", "<a@ex ample>", ADDR_ERR_SYNTAX),
	BAD("domain underscore", "<a@ex_ample.org>", ADDR_ERR_SYNTAX),
	BAD("domain second at", "<a@b@c>", ADDR_ERR_SYNTAX),
	/* local part syntax */
	BAD("local leading dot", "<.a@b>", ADDR_ERR_SYNTAX),
	BAD("local trailing dot", "<a.@b>", ADDR_ERR_SYNTAX),
	BAD("local double dot", "<a..b@b>", ADDR_ERR_SYNTAX),
	BAD("local space", "<a b@c>", ADDR_ERR_SYNTAX),
	BAD("local tab", "<a\tb@c>", ADDR_ERR_SYNTAX),
	BAD("local DEL", "<a\x7f@c>", ADDR_ERR_SYNTAX),
	BAD("local paren", "<a(b)@c>", ADDR_ERR_SYNTAX),
	BAD("no at", "<user>", ADDR_ERR_SYNTAX),
	BAD("quoted no at", "<\"user\">", ADDR_ERR_SYNTAX),
	BAD("quoted junk after", "<\"a\"b@c>", ADDR_ERR_SYNTAX),
	BAD("quoted unterminated", "<\"abc@d>", ADDR_ERR_SYNTAX),
	BAD("quoted backslash at end", "<\"abc\\", ADDR_ERR_SYNTAX),
	BAD("quoted tab", "<\"a\tb\"@c>", ADDR_ERR_SYNTAX),
	BAD("quoted CR", "<\"a\rb\"@c>", ADDR_ERR_SYNTAX),
	BAD("quoted escaped CR", "<\"a\\\rb\"@c>", ADDR_ERR_SYNTAX),
	/* framing */
	BAD("empty", "", ADDR_ERR_SYNTAX),
	BAD("no lt", "a@b", ADDR_ERR_SYNTAX),
	BAD("space before lt", " <a@b>", ADDR_ERR_SYNTAX),
	BAD("lt only", "<", ADDR_ERR_SYNTAX),
	BAD("missing gt", "<a@b", ADDR_ERR_SYNTAX),
	BAD("missing gt then space", "<a@b.org SIZE=1", ADDR_ERR_SYNTAX),
	BAD("missing gt local", "<abc", ADDR_ERR_SYNTAX),
	BAD("missing gt after at", "<abc@", ADDR_ERR_SYNTAX),
	BAD("lt lt", "<<a@b>>", ADDR_ERR_SYNTAX),
	/* embedded NUL (explicit lengths) */
	BADN("NUL in local", "<a\0b@c>", 7, ADDR_ERR_SYNTAX),
	BADN("NUL in quoted", "<\"a\0b\"@c>", 9, ADDR_ERR_SYNTAX),
	BADN("NUL in domain", "<a@b\0c>", 7, ADDR_ERR_SYNTAX),
	BADN("NUL in literal", "<a@[1.2\0.3.4]>", 14, ADDR_ERR_SYNTAX),
	BADN("NUL after lt", "<\0>", 3, ADDR_ERR_SYNTAX),
	/* route characters in the local part */
	OK("percent hack", "<user%other@local>", 18, "user%other", "local", F_RCHARS,
	   "user%other@local"),
	OK("quoted at", "<\"user@other\"@local>", 20, "user@other", "local", F_QUOTED | F_RCHARS,
	   "\"user@other\"@local"),
	OK("bang path", "<a!b@c>", 7, "a!b", "c", F_RCHARS, "a!b@c"),
	/* UTF-8 */
	OKU("utf8 allowed", "<j\xc3\xb6rg@b\xc3\xbc" "cher.example>", 23, "j\xc3\xb6rg",
	    "b\xc3\xbc" "cher.example", F_UTF8, "j\xc3\xb6rg@b\xc3\xbc" "cher.example"),
	OKU("utf8 4-byte", "<\xf0\x9f\x98\x80@x>", 8, "\xf0\x9f\x98\x80", "x", F_UTF8, NULL),
	OKU("utf8 max code point", "<\xf4\x8f\xbf\xbf@x>", 8, "\xf4\x8f\xbf\xbf", "x", F_UTF8,
	    NULL),
	OKU("utf8 quoted", "<\"\xc3\xa9 e\"@x>", 10, "\xc3\xa9 e", "x", F_UTF8 | F_QUOTED,
	    "\"\xc3\xa9 e\"@x"),
	OKU("utf8 domain only", "<a@\xe6\x97\xa5\xe6\x9c\xac.jp>", 13, "a",
	    "\xe6\x97\xa5\xe6\x9c\xac.jp", F_UTF8, NULL),
	OKU("utf8 allowed ascii", "<a@b>", 5, "a", "b", 0, "a@b"),
	BAD("utf8 refused local", "<j\xc3\xb6rg@b.example>", ADDR_ERR_8BIT),
	BAD("utf8 refused domain", "<a@b\xc3\xbc" "cher.example>", ADDR_ERR_8BIT),
	BAD("utf8 refused quoted", "<\"\xc3\xa9\"@x>", ADDR_ERR_8BIT),
	BAD("utf8 refused escaped", "<\"\\\xc3\xa9\"@x>", ADDR_ERR_8BIT),
	BAD("utf8 refused literal", "<a@[\xc3\xa9:x]>", ADDR_ERR_8BIT),
	BAD("utf8 refused route", "<@\xc3\xa9:a@b>", ADDR_ERR_8BIT),
	BAD("8bit malformed refused", "<\xff@x>", ADDR_ERR_8BIT),
	BADU("utf8 truncated", "<\xc3@x>", ADDR_ERR_SYNTAX),
	BADU("utf8 truncated at end", "<a\xe2\x82", ADDR_ERR_SYNTAX),
	BADU("utf8 lone continuation", "<\x80@x>", ADDR_ERR_SYNTAX),
	BADU("utf8 overlong 2", "<\xc0\xaf@x>", ADDR_ERR_SYNTAX),
	BADU("utf8 overlong 2 C1", "<\xc1\xbf@x>", ADDR_ERR_SYNTAX),
	BADU("utf8 overlong 3", "<\xe0\x80\xaf@x>", ADDR_ERR_SYNTAX),
	BADU("utf8 overlong 4", "<\xf0\x80\x80\xaf@x>", ADDR_ERR_SYNTAX),
	BADU("utf8 surrogate", "<\xed\xa0\x80@x>", ADDR_ERR_SYNTAX),
	BADU("utf8 surrogate low", "<\xed\xbf\xbf@x>", ADDR_ERR_SYNTAX),
	BADU("utf8 above 10FFFF", "<\xf4\x90\x80\x80@x>", ADDR_ERR_SYNTAX),
	BADU("utf8 F5 lead", "<\xf5\x80\x80\x80@x>", ADDR_ERR_SYNTAX),
	BADU("utf8 FF", "<\xff@x>", ADDR_ERR_SYNTAX),
	BADU("utf8 malformed domain", "<a@b\xc3(>", ADDR_ERR_SYNTAX),
	BADU("utf8 in literal", "<a@[\xc3\xa9:x]>", ADDR_ERR_SYNTAX),
	BADU("utf8 escaped", "<\"\\\xc3\xa9\"@x>", ADDR_ERR_SYNTAX),
};

static size_t case_len(const struct addr_case *c)
{
	return c->len ? c->len : strlen(c->input);
}

static void check_case(const struct addr_case *c)
{
	struct mail_addr a;
	enum addr_error err = ADDR_OK;
	const char *msg = NULL;
	size_t len = case_len(c);
	/* Exact-size heap copy so ASan catches any read past s+len. */
	char *copy = malloc(len ? len : 1);
	assert_non_null(copy);
	memcpy(copy, c->input, len);

	long r = addr_parse_path(copy, len, c->utf8, &a, &err, &msg);
	if (r != c->want)
		fail_msg("%s: returned %ld, want %ld (%s)", c->name, r, c->want, msg ? msg : "");
	if (r < 0) {
		if (err != c->err)
			fail_msg("%s: error %d, want %d (%s)", c->name, err, c->err, msg);
		assert_non_null(msg);
		assert_true(msg[0] != '\0');
		free(copy);
		return;
	}
	assert_int_equal(err, ADDR_OK);
	if (strcmp(a.local, c->local) != 0)
		fail_msg("%s: local '%s', want '%s'", c->name, a.local, c->local);
	if (strcmp(a.domain, c->domain) != 0)
		fail_msg("%s: domain '%s', want '%s'", c->name, a.domain, c->domain);
	unsigned flags = (a.null ? F_NULL : 0) | (a.postmaster ? F_PM : 0) |
			 (a.source_route ? F_ROUTE : 0) | (a.quoted ? F_QUOTED : 0) |
			 (a.literal ? F_LIT : 0) | (a.utf8 ? F_UTF8 : 0) |
			 (a.trailing_dot ? F_TDOT : 0) |
			 (addr_local_has_route_chars(&a) ? F_RCHARS : 0);
	if (flags != c->flags)
		fail_msg("%s: flags %#x, want %#x", c->name, flags, c->flags);

	char out[ADDR_PATH_MAX * 2];
	addr_format(&a, out, sizeof(out));
	if (c->formatted != NULL && strcmp(out, c->formatted) != 0)
		fail_msg("%s: formatted '%s', want '%s'", c->name, out, c->formatted);

	/* Round trip: "<" formatted ">" parses back to the same mailbox. */
	if (!a.null && !a.postmaster) {
		char again[ADDR_PATH_MAX * 2 + 2];
		struct mail_addr b;
		snprintf(again, sizeof(again), "<%s>", out);
		long r2 = addr_parse_path(again, strlen(again), c->utf8, &b, &err, &msg);
		if (r2 != (long)strlen(again))
			fail_msg("%s: reparse of '%s' returned %ld", c->name, again, r2);
		assert_string_equal(b.local, a.local);
		assert_string_equal(b.domain, a.domain);
		assert_int_equal(b.literal, a.literal);
	}
	free(copy);
}

static void test_table(void **state)
{
	(void)state;
	for (size_t k = 0; k < sizeof(cases) / sizeof(cases[0]); k++)
		check_case(&cases[k]);
}

/* Every strict prefix of every case, in an exact-size buffer: never reads
 * past the end, and a prefix that stops before '>' is never accepted. */
static void test_prefixes(void **state)
{
	(void)state;
	for (size_t k = 0; k < sizeof(cases) / sizeof(cases[0]); k++) {
		const struct addr_case *c = &cases[k];
		size_t len = case_len(c);
		for (size_t n = 0; n < len; n++) {
			char *copy = malloc(n ? n : 1);
			struct mail_addr a;
			enum addr_error err;
			const char *msg;
			assert_non_null(copy);
			memcpy(copy, c->input, n);
			long r = addr_parse_path(copy, n, c->utf8, &a, &err, &msg);
			assert_true(r <= (long)n);
			if (c->want > 0 && (size_t)c->want > n && r >= 0)
				fail_msg("%s: prefix %zu accepted", c->name, n);
			free(copy);
		}
	}
}

/* Builders for the length caps. */
static void fill(char *p, size_t n, char ch)
{
	memset(p, ch, n);
}

/* "<" + local(nl x 'l') + "@" + domain(nd bytes, labels of 50) + ">" */
static size_t build(char *out, size_t nl, size_t nd)
{
	size_t n = 0;
	out[n++] = '<';
	fill(out + n, nl, 'l');
	n += nl;
	out[n++] = '@';
	for (size_t k = 0; k < nd; k++)
		out[n + k] = (k % 51 == 50 && k + 1 < nd) ? '.' : 'd';
	n += nd;
	out[n++] = '>';
	out[n] = '\0';
	return n;
}

static long parse(const char *s, size_t len, bool utf8, struct mail_addr *a, enum addr_error *err)
{
	const char *msg;
	char *copy = malloc(len ? len : 1);
	assert_non_null(copy);
	memcpy(copy, s, len);
	long r = addr_parse_path(copy, len, utf8, a, err, &msg);
	free(copy);
	return r;
}

static void test_local_cap(void **state)
{
	(void)state;
	char s[1024];
	struct mail_addr a;
	enum addr_error err;

	size_t n = build(s, ADDR_LOCAL_MAX, 3);
	assert_int_equal(parse(s, n, false, &a, &err), (long)n);
	assert_int_equal(strlen(a.local), ADDR_LOCAL_MAX);

	n = build(s, ADDR_LOCAL_MAX + 1, 3);
	assert_int_equal(parse(s, n, false, &a, &err), -1);
	assert_int_equal(err, ADDR_ERR_LOCAL_TOO_LONG);

	/* Quoted: the cap counts the octets as written, quotes included. */
	n = 0;
	s[n++] = '<';
	s[n++] = '"';
	fill(s + n, ADDR_LOCAL_MAX - 2, 'q');
	n += ADDR_LOCAL_MAX - 2;
	memcpy(s + n, "\"@d>", 4);
	n += 4;
	assert_int_equal(parse(s, n, false, &a, &err), (long)n);
	assert_int_equal(strlen(a.local), ADDR_LOCAL_MAX - 2);
	assert_true(a.quoted);

	n = 0;
	s[n++] = '<';
	s[n++] = '"';
	fill(s + n, ADDR_LOCAL_MAX - 1, 'q');
	n += ADDR_LOCAL_MAX - 1;
	memcpy(s + n, "\"@d>", 4);
	n += 4;
	assert_int_equal(parse(s, n, false, &a, &err), -1);
	assert_int_equal(err, ADDR_ERR_LOCAL_TOO_LONG);

	/* Quoted with escapes: each backslash counts. 1 + 31 * 2 + 1 = 64. */
	n = 0;
	s[n++] = '<';
	s[n++] = '"';
	for (int k = 0; k < 31; k++) {
		s[n++] = '\\';
		s[n++] = '"';
	}
	memcpy(s + n, "\"@d>", 4);
	n += 4;
	assert_int_equal(parse(s, n, false, &a, &err), (long)n);
	assert_int_equal(strlen(a.local), 31);
	char out[ADDR_PATH_MAX * 2];
	addr_format(&a, out, sizeof(out));
	assert_int_equal(strlen(out), 1 + 62 + 1 + 2);
	/* One more octet: 1 + 31 * 2 + 1 + 1 = 65. */
	n = 0;
	s[n++] = '<';
	s[n++] = '"';
	for (int k = 0; k < 31; k++) {
		s[n++] = '\\';
		s[n++] = '\\';
	}
	s[n++] = 'x';
	memcpy(s + n, "\"@d>", 4);
	n += 4;
	assert_int_equal(parse(s, n, false, &a, &err), -1);
	assert_int_equal(err, ADDR_ERR_LOCAL_TOO_LONG);

	/* A multi-byte character straddling the cap. */
	n = 0;
	s[n++] = '<';
	fill(s + n, ADDR_LOCAL_MAX - 2, 'u');
	n += ADDR_LOCAL_MAX - 2;
	memcpy(s + n, "\xc3\xa9@d>", 5);
	n += 5;
	assert_int_equal(parse(s, n, true, &a, &err), (long)n);
	assert_int_equal(strlen(a.local), ADDR_LOCAL_MAX);
	n = 0;
	s[n++] = '<';
	fill(s + n, ADDR_LOCAL_MAX - 1, 'u');
	n += ADDR_LOCAL_MAX - 1;
	memcpy(s + n, "\xc3\xa9@d>", 5);
	n += 5;
	assert_int_equal(parse(s, n, true, &a, &err), -1);
	assert_int_equal(err, ADDR_ERR_LOCAL_TOO_LONG);

	/* A huge unterminated local part stops at the cap. */
	static char huge[100000];
	huge[0] = '<';
	fill(huge + 1, sizeof(huge) - 1, 'h');
	assert_int_equal(parse(huge, sizeof(huge), false, &a, &err), -1);
	assert_int_equal(err, ADDR_ERR_LOCAL_TOO_LONG);
}

static void test_domain_cap(void **state)
{
	(void)state;
	char s[1024];
	struct mail_addr a;
	enum addr_error err;

	/* 256 domain octets: the domain cap fires (before the path cap). */
	size_t n = build(s, 1, ADDR_DOMAIN_MAX + 1);
	assert_int_equal(parse(s, n, false, &a, &err), -1);
	assert_int_equal(err, ADDR_ERR_DOMAIN_TOO_LONG);

	/* 255 domain octets are within the domain cap, but no path can hold
	 * them: "<" 1 "@" 255 ">" = 259 > 256.  The path cap fires instead. */
	n = build(s, 1, ADDR_DOMAIN_MAX);
	assert_int_equal(parse(s, n, false, &a, &err), -1);
	assert_int_equal(err, ADDR_ERR_PATH_TOO_LONG);

	/* Same with a trailing dot: 255 stored + '.' is still the path cap. */
	n = build(s, 1, ADDR_DOMAIN_MAX);
	memcpy(s + n - 1, ".>", 3);
	n++;
	assert_int_equal(parse(s, n, false, &a, &err), -1);
	assert_int_equal(err, ADDR_ERR_PATH_TOO_LONG);

	/* Address literal: 256 octets inside the brackets. */
	n = 0;
	memcpy(s, "<a@[x:", 6);
	n = 6;
	fill(s + n, ADDR_DOMAIN_MAX + 1 - 2, 'z');
	n += ADDR_DOMAIN_MAX + 1 - 2;
	memcpy(s + n, "]>", 2);
	n += 2;
	assert_int_equal(parse(s, n, false, &a, &err), -1);
	assert_int_equal(err, ADDR_ERR_DOMAIN_TOO_LONG);

	/* A huge unterminated domain stops at the cap. */
	static char huge[100000];
	memcpy(huge, "<a@", 3);
	fill(huge + 3, sizeof(huge) - 3, 'h');
	assert_int_equal(parse(huge, sizeof(huge), false, &a, &err), -1);
	assert_int_equal(err, ADDR_ERR_DOMAIN_TOO_LONG);
}

static void test_path_cap(void **state)
{
	(void)state;
	char s[1024];
	struct mail_addr a;
	enum addr_error err;
	char out[ADDR_PATH_MAX * 2];

	/* "<" 64 "@" 189 ">" = 256 exactly. */
	size_t n = build(s, ADDR_LOCAL_MAX, ADDR_PATH_MAX - ADDR_LOCAL_MAX - 3);
	assert_int_equal(n, ADDR_PATH_MAX);
	assert_int_equal(parse(s, n, false, &a, &err), (long)n);
	addr_format(&a, out, sizeof(out));
	assert_int_equal(strlen(out), ADDR_PATH_MAX - 2);

	n = build(s, ADDR_LOCAL_MAX, ADDR_PATH_MAX - ADDR_LOCAL_MAX - 2);
	assert_int_equal(n, ADDR_PATH_MAX + 1);
	assert_int_equal(parse(s, n, false, &a, &err), -1);
	assert_int_equal(err, ADDR_ERR_PATH_TOO_LONG);

	/* With a trailing dot the '.' counts towards the path. */
	n = build(s, ADDR_LOCAL_MAX, ADDR_PATH_MAX - ADDR_LOCAL_MAX - 4);
	memcpy(s + n - 1, ".>", 3);
	n++;
	assert_int_equal(n, ADDR_PATH_MAX);
	assert_int_equal(parse(s, n, false, &a, &err), (long)n);
	assert_true(a.trailing_dot);
	n = build(s, ADDR_LOCAL_MAX, ADDR_PATH_MAX - ADDR_LOCAL_MAX - 3);
	memcpy(s + n - 1, ".>", 3);
	n++;
	assert_int_equal(parse(s, n, false, &a, &err), -1);
	assert_int_equal(err, ADDR_ERR_PATH_TOO_LONG);

	/* Source route: "<" + "@r," * 82 + "@r:" + "a@bcd>" = 1 + 249 + 6 = 256. */
	for (int extra = 0; extra <= 1; extra++) {
		n = 0;
		s[n++] = '<';
		int hops = 83;
		for (int h = 0; h < hops; h++) {
			memcpy(s + n, h + 1 < hops ? "@r," : "@r:", 3);
			n += 3;
		}
		const char *tail = extra ? "a@bcde>" : "a@bcd>";
		memcpy(s + n, tail, strlen(tail));
		n += strlen(tail);
		assert_int_equal(n, ADDR_PATH_MAX + (size_t)extra);
		long r = parse(s, n, false, &a, &err);
		if (extra == 0) {
			assert_int_equal(r, (long)n);
			assert_true(a.source_route);
		} else {
			assert_int_equal(r, -1);
			assert_int_equal(err, ADDR_ERR_PATH_TOO_LONG);
		}
	}

	/* A never-ending source route stops at the path cap. */
	static char huge[30000];
	huge[0] = '<';
	for (size_t k = 1; k + 3 <= sizeof(huge); k += 3)
		memcpy(huge + k, "@r,", 3);
	assert_int_equal(parse(huge, sizeof(huge) - 2, false, &a, &err), -1);
	assert_int_equal(err, ADDR_ERR_PATH_TOO_LONG);
}

static void test_format(void **state)
{
	(void)state;
	struct mail_addr a;
	char out[ADDR_PATH_MAX * 2];

	memset(&a, 0, sizeof(a));
	strcpy(a.local, "postmaster");
	a.postmaster = true;
	addr_format(&a, out, sizeof(out));
	assert_string_equal(out, "postmaster");

	memset(&a, 0, sizeof(a));
	a.null = true;
	strcpy(out, "junk");
	addr_format(&a, out, sizeof(out));
	assert_string_equal(out, "");

	/* Local parts that need quotes. */
	static const struct {
		const char *name, *local, *want;
	} q[] = {
		{ "space", "a b", "\"a b\"@d" },
		{ "leading dot", ".a", "\".a\"@d" },
		{ "trailing dot", "a.", "\"a.\"@d" },
		{ "double dot", "a..b", "\"a..b\"@d" },
		{ "quote", "a\"b", "\"a\\\"b\"@d" },
		{ "backslash", "a\\b", "\"a\\\\b\"@d" },
		{ "at", "a@b", "\"a@b\"@d" },
		{ "empty", "", "\"\"@d" },
		{ "plain", "a.b", "a.b@d" },
	};
	for (size_t k = 0; k < sizeof(q) / sizeof(q[0]); k++) {
		memset(&a, 0, sizeof(a));
		strcpy(a.local, q[k].local);
		strcpy(a.domain, "d");
		addr_format(&a, out, sizeof(out));
		if (strcmp(out, q[k].want) != 0)
			fail_msg("%s: '%s' want '%s'", q[k].name, out, q[k].want);
	}

	/* A short output buffer truncates and stays terminated. */
	memset(&a, 0, sizeof(a));
	strcpy(a.local, "abcdef");
	strcpy(a.domain, "example.org");
	char small[5];
	memset(small, 'X', sizeof(small));
	addr_format(&a, small, sizeof(small));
	assert_string_equal(small, "abcd");
	addr_format(&a, small, 1);
	assert_string_equal(small, "");
	addr_format(&a, small, 0); /* writes nothing */
}

/* Failure leaves *a cleared and sets a static message. */
static void test_failure_clears(void **state)
{
	(void)state;
	struct mail_addr a;
	enum addr_error err = ADDR_OK;
	const char *msg = NULL;
	const char *s = "<ab@cd e>";

	assert_int_equal(addr_parse_path(s, strlen(s), false, &a, &err, &msg), -1);
	assert_int_equal(err, ADDR_ERR_SYNTAX);
	assert_non_null(msg);
	assert_string_equal(a.local, "");
	assert_string_equal(a.domain, "");
	/* NULL error pointers are tolerated. */
	assert_int_equal(addr_parse_path(s, strlen(s), false, &a, NULL, NULL), -1);
	assert_int_equal(addr_parse_path("<a@b>", 5, false, &a, NULL, NULL), 5);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_table),
		cmocka_unit_test(test_prefixes),
		cmocka_unit_test(test_local_cap),
		cmocka_unit_test(test_domain_cap),
		cmocka_unit_test(test_path_cap),
		cmocka_unit_test(test_format),
		cmocka_unit_test(test_failure_clears),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
