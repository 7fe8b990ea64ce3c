/* mtasts_test.c - table-driven tests for MTA-STS records, policies and TLSA RDATA. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "mta/mtasts.h"

#define N(a) (sizeof(a) / sizeof((a)[0]))

/* --- TXT record ------------------------------------------------------- */

struct txt_case {
	const char *name;
	const char *input;
	size_t len;             /* 0: strlen(input) */
	int want;
	const char *id;         /* when want == 0 */
};

#define TOK(n, in, i) { .name = n, .input = in, .want = 0, .id = i }
#define TBAD(n, in) { .name = n, .input = in, .want = -1 }

static const struct txt_case txt_cases[] = {
	TOK("rfc example", "v=STSv1; id=20160831085700Z;", "20160831085700Z"),
	TOK("no trailing ;", "v=STSv1; id=20160831085700Z", "20160831085700Z"),
	TOK("no spaces", "v=STSv1;id=abc", "abc"),
	TOK("spaces and tabs", "v=STSv1 \t;\t id=abc \t; ", "abc"),
	TOK("trailing space no ;", "v=STSv1; id=abc  ", "abc"),
	TOK("extension before id", "v=STSv1; foo=bar; id=abc", "abc"),
	TOK("extensions after id", "v=STSv1; id=abc; x-y.z_1=q:r/s; z=1;", "abc"),
	TOK("id 32 chars", "v=STSv1; id=0123456789abcdefABCDEF0123456789", NULL),
	TOK("second v is an extension", "v=STSv1; id=a; v=STSv2", "a"),
	TBAD("v not first", "id=abc; v=STSv1;"),
	TBAD("leading space", " v=STSv1; id=abc"),
	TBAD("version lower case", "v=stsv1; id=abc"),
	TBAD("version STSv10", "v=STSv10; id=abc"),
	TBAD("version only", "v=STSv1"),
	TBAD("version and ; only", "v=STSv1;"),
	TBAD("empty", ""),
	TBAD("id too long", "v=STSv1; id=0123456789abcdefABCDEF0123456789x"),
	TBAD("id with -", "v=STSv1; id=2016-08-31;"),
	TBAD("id with .", "v=STSv1; id=a.b;"),
	TBAD("id empty", "v=STSv1; id=;"),
	TBAD("two ids", "v=STSv1; id=a; id=b"),
	TBAD("ID upper case", "v=STSv1; ID=abc"),
	TBAD("double ;", "v=STSv1;; id=abc"),
	TBAD("space in id", "v=STSv1; id=ab c"),
	TBAD("no ; between fields", "v=STSv1 id=abc"),
	TBAD("extension without =", "v=STSv1; id=abc; foo"),
	TBAD("extension value with =", "v=STSv1; id=abc; a=b=c"),
	TBAD("extension empty value", "v=STSv1; id=abc; a="),
	TBAD("extension name starts with -", "v=STSv1; id=abc; -a=b"),
	TBAD("extension name 33 chars", "v=STSv1; id=abc; a23456789012345678901234567890123=b"),
	TBAD("comma separator", "v=STSv1, id=abc"),
	{ .name = "NUL after id", .input = "v=STSv1; id=abc\0", .len = 16, .want = -1 },
	{ .name = "length respected", .input = "v=STSv1; id=abcdef", .len = 15, .want = 0,
	  .id = "abc" },
	{ .name = "NUL inside", .input = "v=STSv1\0; id=abc", .len = 16, .want = -1 },
};

static void test_txt_table(void **state)
{
	(void)state;
	for (size_t k = 0; k < N(txt_cases); k++) {
		const struct txt_case *c = &txt_cases[k];
		size_t len = c->len ? c->len : strlen(c->input);
		char id[MTASTS_ID_MAX + 1];
		memset(id, 'X', sizeof id);
		int r = mtasts_parse_txt(c->input, len, id);
		if (r != c->want)
			fail_msg("%s: returned %d, want %d", c->name, r, c->want);
		if (r < 0 && id[0] != '\0')
			fail_msg("%s: id not cleared on failure", c->name);
		if (r == 0 && c->id && strcmp(id, c->id) != 0)
			fail_msg("%s: id '%s' want '%s'", c->name, id, c->id);
		if (r == 0 && (strlen(id) == 0 || strlen(id) > MTASTS_ID_MAX))
			fail_msg("%s: id length %zu", c->name, strlen(id));
	}
}

/* A good id followed by a bad field must not leave the id behind. */
static void test_txt_failure_clears(void **state)
{
	(void)state;
	char id[MTASTS_ID_MAX + 1];
	const char *s = "v=STSv1; id=abc; bad";
	assert_int_equal(mtasts_parse_txt(s, strlen(s), id), -1);
	assert_string_equal(id, "");
	s = "v=STSv1; id=0123456789abcdefABCDEF0123456789";
	assert_int_equal(mtasts_parse_txt(s, strlen(s), id), 0);
	assert_string_equal(id, "0123456789abcdefABCDEF0123456789");
}

/* --- policy ----------------------------------------------------------- */

/* RFC 8461 3.2's example. */
static const char rfc_policy[] =
	"version: STSv1\n"
	"mode: enforce\n"
	"mx: mail.example.com\n"
	"mx: *.example.net\n"
	"mx: backupmx.example.com\n"
	"max_age: 604800\n";

static void check_rfc_policy(const struct mtasts_policy *p)
{
	assert_int_equal(p->mode, MTASTS_ENFORCE);
	assert_int_equal(p->max_age, 604800);
	assert_int_equal(p->n_mx, 3);
	assert_string_equal(p->mx[0], "mail.example.com");
	assert_string_equal(p->mx[1], "*.example.net");
	assert_string_equal(p->mx[2], "backupmx.example.com");
}

static void test_policy_rfc_example(void **state)
{
	(void)state;
	static struct mtasts_policy p;
	const char *why = "unset";
	assert_int_equal(mtasts_parse_policy(rfc_policy, strlen(rfc_policy), &p, &why), 0);
	check_rfc_policy(&p);
	assert_true(mtasts_mx_match(&p, "mail.example.com"));
	assert_true(mtasts_mx_match(&p, "mx1.example.net"));
	assert_false(mtasts_mx_match(&p, "mx1.example.com"));
}

static void test_policy_line_ends(void **state)
{
	(void)state;
	static const char *const bodies[] = {
		"version: STSv1\r\nmode: enforce\r\nmx: mail.example.com\r\n"
		"mx: *.example.net\r\nmx: backupmx.example.com\r\nmax_age: 604800\r\n",
		/* no terminator after the last line */
		"version: STSv1\r\nmode: enforce\r\nmx: mail.example.com\r\n"
		"mx: *.example.net\r\nmx: backupmx.example.com\r\nmax_age: 604800",
		"version: STSv1\nmode: enforce\nmx: mail.example.com\n"
		"mx: *.example.net\nmx: backupmx.example.com\nmax_age: 604800",
		/* mixed */
		"version: STSv1\nmode: enforce\r\nmx: mail.example.com\n"
		"mx: *.example.net\r\nmx: backupmx.example.com\nmax_age: 604800\r\n",
		/* empty lines are skipped */
		"\nversion: STSv1\n\r\nmode: enforce\n \t\nmx: mail.example.com\n"
		"mx: *.example.net\nmx: backupmx.example.com\nmax_age: 604800\n\n",
	};
	for (size_t k = 0; k < N(bodies); k++) {
		static struct mtasts_policy p;
		const char *why = NULL;
		if (mtasts_parse_policy(bodies[k], strlen(bodies[k]), &p, &why) != 0)
			fail_msg("body %zu: %s", k, why);
		check_rfc_policy(&p);
	}
}

struct policy_case {
	const char *name;
	const char *body;
	size_t len;             /* 0: strlen(body) */
	const char *why;        /* NULL: valid */
	enum mtasts_mode mode;
	unsigned max_age;
	size_t n_mx;
	const char *mx0;        /* first pattern, NULL: not checked */
};

#define POK(n, b, m, a, nmx, mx) \
	{ .name = n, .body = b, .mode = m, .max_age = a, .n_mx = nmx, .mx0 = mx }
#define PBAD(n, b, w) { .name = n, .body = b, .why = w }

#define V "version: STSv1\n"
#define E "mode: enforce\n"
#define A "max_age: 86400\n"
#define M "mx: mx.example.com\n"

static const char W_NO_VERSION[] = "policy has no version";
static const char W_NO_MODE[] = "policy has no mode";
static const char W_NO_MAX_AGE[] = "policy has no max_age";
static const char W_NO_MX[] = "policy in enforce or testing mode has no mx";
static const char W_LINE[] = "policy line is not \"key: value\"";
static const char W_CTL[] = "control character in policy";
static const char W_MX[] = "mx is not a host name pattern";
static const char W_AGE[] = "max_age is not a number";

static const struct policy_case policy_cases[] = {
	/* missing fields */
	PBAD("empty", "", W_NO_VERSION),
	PBAD("no version", E A M, W_NO_VERSION),
	PBAD("no mode", V A M, W_NO_MODE),
	PBAD("no max_age", V E M, W_NO_MAX_AGE),
	PBAD("enforce without mx", V E A, W_NO_MX),
	PBAD("testing without mx", V "mode: testing\n" A, W_NO_MX),
	POK("none without mx", V "mode: none\n" A, MTASTS_NONE, 86400, 0, NULL),
	POK("none with mx", V "mode: none\n" A M, MTASTS_NONE, 86400, 1, "mx.example.com"),
	POK("testing", V "mode: testing\n" A M, MTASTS_TESTING, 86400, 1, "mx.example.com"),
	POK("field order free", M A E V, MTASTS_ENFORCE, 86400, 1, "mx.example.com"),
	/* keywords are case-sensitive (%s in the ABNF) */
	PBAD("version STSv2", "version: STSv2\n" E A M, "policy version is not STSv1"),
	PBAD("version lower case", "version: stsv1\n" E A M, "policy version is not STSv1"),
	PBAD("Mode key is unknown", V "Mode: enforce\n" A M, W_NO_MODE),
	PBAD("mode Enforce", V "mode: Enforce\n" A M, "mode is not enforce, testing or none"),
	PBAD("mode empty", V "mode:\n" A M, "mode is not enforce, testing or none"),
	PBAD("mode enforced", V "mode: enforced\n" A M, "mode is not enforce, testing or none"),
	PBAD("version STSv1x", "version: STSv1x\n" E A M, "policy version is not STSv1"),
	/* duplicates */
	PBAD("version twice", V V E A M, "version given twice"),
	PBAD("mode twice", V E "mode: none\n" A M, "mode given twice"),
	PBAD("max_age twice", V E A A M, "max_age given twice"),
	/* max_age */
	POK("max_age 0", V E "max_age: 0\n" M, MTASTS_ENFORCE, 0, 1, NULL),
	POK("max_age at cap", V E "max_age: 31557600\n" M, MTASTS_ENFORCE, 31557600, 1, NULL),
	POK("max_age clamps", V E "max_age: 31557601\n" M, MTASTS_ENFORCE, 31557600, 1, NULL),
	POK("max_age 10 nines", V E "max_age: 9999999999\n" M, MTASTS_ENFORCE, 31557600, 1, NULL),
	POK("max_age huge", V E "max_age: 99999999999999999999999999999\n" M, MTASTS_ENFORCE,
	    31557600, 1, NULL),
	POK("max_age leading zeros", V E "max_age: 000086400\n" M, MTASTS_ENFORCE, 86400, 1,
	    NULL),
	PBAD("max_age negative", V E "max_age: -1\n" M, W_AGE),
	PBAD("max_age plus", V E "max_age: +5\n" M, W_AGE),
	PBAD("max_age exponent", V E "max_age: 1e3\n" M, W_AGE),
	PBAD("max_age empty", V E "max_age:\n" M, W_AGE),
	PBAD("max_age inner space", V E "max_age: 86 400\n" M, W_AGE),
	/* white space */
	POK("values trimmed", "version:   STSv1 \t\nmode:\tenforce  \nmax_age:  5\t\n"
	    "mx: \t MX.example.com \t\n", MTASTS_ENFORCE, 5, 1, "mx.example.com"),
	POK("no space after colon", "version:STSv1\nmode:enforce\nmax_age:5\nmx:a.b\n",
	    MTASTS_ENFORCE, 5, 1, "a.b"),
	PBAD("space before colon", V "mode : enforce\n" A M, W_LINE),
	PBAD("line starts with space", V " mode: enforce\n" A M, W_LINE),
	/* unknown keys */
	POK("unknown keys ignored", V "foo: bar\n" E "x_y.z-1: any; thing = here\n" A M
	    "empty_ext:\n", MTASTS_ENFORCE, 86400, 1, "mx.example.com"),
	PBAD("line without colon", V E "garbage\n" A M, W_LINE),
	PBAD("empty key", V E ": x\n" A M, W_LINE),
	PBAD("bad key", V E "bad key: x\n" A M, W_LINE),
	PBAD("key starts with _", V E "_x: y\n" A M, W_LINE),
	/* control characters */
	{ .name = "NUL in value", .body = V E A "mx: a\0b\n", .len = sizeof(V E A) - 1 + 8,
	  .why = W_CTL },
	{ .name = "NUL in unknown value", .body = V E A M "x: \0\n",
	  .len = sizeof(V E A M) - 1 + 5, .why = W_CTL },
	PBAD("lone CR", V "mode: enforce\rmax_age: 5\n" M, W_CTL),
	PBAD("CR at end without LF", V E M "max_age: 5\r", W_CTL),
	PBAD("DEL", V E A "x: \x7f\n" M, W_CTL),
	/* mx patterns */
	POK("mx lower-cased, trailing dot dropped", V E A "mx: MX.Example.COM.\n",
	    MTASTS_ENFORCE, 86400, 1, "mx.example.com"),
	POK("mx wildcard", V E A "mx: *.Example.com\n", MTASTS_ENFORCE, 86400, 1,
	    "*.example.com"),
	POK("mx single label", V E A "mx: localhost\n", MTASTS_ENFORCE, 86400, 1, "localhost"),
	POK("mx hyphen inside", V E A "mx: a-b.c-d\n", MTASTS_ENFORCE, 86400, 1, "a-b.c-d"),
	PBAD("mx empty", V E A "mx:\n", W_MX),
	PBAD("mx star only", V E A "mx: *\n", W_MX),
	PBAD("mx star dot only", V E A "mx: *.\n", W_MX),
	PBAD("mx star inside", V E A "mx: a.*.b\n", W_MX),
	PBAD("mx star in label", V E A "mx: a*.b\n", W_MX),
	PBAD("mx two stars", V E A "mx: *.*.b\n", W_MX),
	PBAD("mx empty label", V E A "mx: a..b\n", W_MX),
	PBAD("mx leading dot", V E A "mx: .a.b\n", W_MX),
	PBAD("mx leading hyphen", V E A "mx: -a.b\n", W_MX),
	PBAD("mx trailing hyphen", V E A "mx: a-.b\n", W_MX),
	PBAD("mx underscore", V E A "mx: foo_bar.example\n", W_MX),
	PBAD("mx space inside", V E A "mx: a b\n", W_MX),
	PBAD("mx non-ASCII", V E A "mx: \xc3\xa9.example\n", W_MX),
	PBAD("mx label 64", V E A
	     "mx: a123456789012345678901234567890123456789012345678901234567890123.b\n", W_MX),
	POK("mx label 63", V E A
	    "mx: a12345678901234567890123456789012345678901234567890123456789012.b\n",
	    MTASTS_ENFORCE, 86400, 1, NULL),
};

static void test_policy_table(void **state)
{
	(void)state;
	for (size_t k = 0; k < N(policy_cases); k++) {
		const struct policy_case *c = &policy_cases[k];
		size_t len = c->len ? c->len : strlen(c->body);
		static struct mtasts_policy p;
		const char *why = NULL;
		int r = mtasts_parse_policy(c->body, len, &p, &why);
		if (c->why) {
			if (r != -1)
				fail_msg("%s: accepted", c->name);
			if (!why || strcmp(why, c->why) != 0)
				fail_msg("%s: why '%s' want '%s'", c->name, why ? why : "(null)",
					 c->why);
			continue;
		}
		if (r != 0)
			fail_msg("%s: refused: %s", c->name, why ? why : "(null)");
		if (p.mode != c->mode || p.max_age != c->max_age || p.n_mx != c->n_mx)
			fail_msg("%s: mode %d max_age %u n_mx %zu, want %d %u %zu", c->name,
				 (int)p.mode, p.max_age, p.n_mx, (int)c->mode, c->max_age, c->n_mx);
		if (c->mx0 && strcmp(p.mx[0], c->mx0) != 0)
			fail_msg("%s: mx '%s' want '%s'", c->name, p.mx[0], c->mx0);
	}
}

static size_t append(char *buf, size_t o, size_t cap, const char *s)
{
	size_t n = strlen(s);
	assert_true(o + n < cap);
	memcpy(buf + o, s, n + 1);
	return o + n;
}

/* 65 mx lines keep the first 64; the body cap is 64 KiB exactly. */
static void test_policy_caps(void **state)
{
	(void)state;
	static char body[MTASTS_BODY_MAX + 64];
	static struct mtasts_policy p;
	const char *why = NULL;
	size_t o = 0;
	char line[64];

	o = append(body, o, sizeof body, V E A);
	for (int k = 0; k < MTASTS_MX_MAX + 1; k++) {
		snprintf(line, sizeof line, "mx: mx%d.example.com\n", k);
		o = append(body, o, sizeof body, line);
	}
	assert_int_equal(mtasts_parse_policy(body, o, &p, &why), 0);
	assert_int_equal(p.n_mx, MTASTS_MX_MAX);
	assert_string_equal(p.mx[MTASTS_MX_MAX - 1], "mx63.example.com");
	assert_true(mtasts_mx_match(&p, "mx63.example.com"));
	assert_false(mtasts_mx_match(&p, "mx64.example.com"));

	/* Past the cap the patterns are not kept but still checked. */
	o = append(body, o, sizeof body, "mx: bad_mx\n");
	assert_int_equal(mtasts_parse_policy(body, o, &p, &why), -1);
	assert_string_equal(why, W_MX);

	/* Exactly MTASTS_BODY_MAX octets: one long unknown field pads it. */
	o = 0;
	o = append(body, o, sizeof body, V E A M "pad: ");
	memset(body + o, 'x', MTASTS_BODY_MAX - 1 - o);
	body[MTASTS_BODY_MAX - 1] = '\n';
	assert_int_equal(mtasts_parse_policy(body, MTASTS_BODY_MAX, &p, &why), 0);
	assert_int_equal(p.n_mx, 1);
	/* One more octet is too much, even a valid one. */
	body[MTASTS_BODY_MAX] = '\n';
	assert_int_equal(mtasts_parse_policy(body, MTASTS_BODY_MAX + 1, &p, &why), -1);
	assert_string_equal(why, "policy larger than 64 KiB");
}

/* Failure clears *p and names a reason; why_r may be NULL. */
static void test_policy_failure_clears(void **state)
{
	(void)state;
	static struct mtasts_policy p;
	const char *why = NULL;
	const char *s = V E A M "max_age: 5\n";
	assert_int_equal(mtasts_parse_policy(s, strlen(s), &p, &why), -1);
	assert_non_null(why);
	assert_int_equal(p.n_mx, 0);
	assert_int_equal(p.max_age, 0);
	assert_int_equal(p.mode, MTASTS_NONE);
	assert_string_equal(p.mx[0], "");
	assert_int_equal(mtasts_parse_policy(s, strlen(s), &p, NULL), -1);
	assert_int_equal(mtasts_parse_policy(rfc_policy, strlen(rfc_policy), &p, NULL), 0);
}

/* --- mx matching ------------------------------------------------------ */

struct match_case {
	const char *pattern;
	const char *host;
	bool want;
};

static const struct match_case match_cases[] = {
	{ "mx.example.com", "mx.example.com", true },
	{ "mx.example.com", "MX.Example.COM", true },
	{ "mx.example.com", "mx.example.com.", true },
	{ "mx.example.com", "mx.example.com..", false },
	{ "mx.example.com", "mx.example.co", false },
	{ "mx.example.com", "x.example.com", false },
	{ "mx.example.com", "mx.example.com.evil", false },
	{ "mx.example.com", "a.mx.example.com", false },
	{ "mx.example.com", "", false },
	{ "mx.example.com", ".", false },
	{ "*.example.com", "mx.example.com", true },
	{ "*.example.com", "MX.EXAMPLE.COM.", true },
	{ "*.example.com", "a.b.example.com", false },
	{ "*.example.com", "example.com", false },
	{ "*.example.com", ".example.com", false },
	{ "*.example.com", "example.com.", false },
	{ "*.example.com", "mx.example.org", false },
	{ "*.example.com", "mxexample.com", false },
	{ "*.example.com", "mx.xexample.com", false },
	{ "*.example.com", "mx.example.com.x", false },
	{ "*.com", "example.com", true },
	{ "*.com", "com", false },
};

static void test_mx_match(void **state)
{
	(void)state;
	static struct mtasts_policy p;
	for (size_t k = 0; k < N(match_cases); k++) {
		const struct match_case *c = &match_cases[k];
		memset(&p, 0, sizeof p);
		p.mode = MTASTS_ENFORCE;
		strcpy(p.mx[0], c->pattern);
		p.n_mx = 1;
		if (mtasts_mx_match(&p, c->host) != c->want)
			fail_msg("pattern '%s' host '%s': want %s", c->pattern, c->host,
				 c->want ? "match" : "no match");
	}

	/* Any pattern of several; none in an empty policy. */
	memset(&p, 0, sizeof p);
	assert_false(mtasts_mx_match(&p, "mx.example.com"));
	strcpy(p.mx[0], "a.example");
	strcpy(p.mx[1], "*.b.example");
	p.n_mx = 2;
	assert_true(mtasts_mx_match(&p, "a.example"));
	assert_true(mtasts_mx_match(&p, "x.b.example"));
	assert_false(mtasts_mx_match(&p, "b.example"));

	/* A host name longer than any domain never matches. */
	char longname[MTASTS_MX_LEN + 10];
	memset(longname, 'a', sizeof longname - 1);
	longname[sizeof longname - 1] = '\0';
	assert_false(mtasts_mx_match(&p, longname));
}

/* --- TLSA ------------------------------------------------------------- */

struct tlsa_case {
	const char *name;
	uint8_t usage, selector, mtype;
	size_t datalen;
	int want;               /* tlsa_parse_rdata */
	bool usable;            /* when want == 0 */
};

static const struct tlsa_case tlsa_cases[] = {
	{ "DANE-EE SPKI SHA-256", 3, 1, 1, 32, 0, true },
	{ "DANE-EE cert SHA-256", 3, 0, 1, 32, 0, true },
	{ "DANE-TA SPKI SHA-512", 2, 1, 2, 64, 0, true },
	{ "DANE-TA cert full", 2, 0, 0, 900, 0, true },
	{ "DANE-EE SPKI full 1 octet", 3, 1, 0, 1, 0, true },
	{ "DANE-EE full empty", 3, 1, 0, 0, -1, false },
	{ "SHA-256 31 octets", 3, 1, 1, 31, -1, false },
	{ "SHA-256 33 octets", 3, 1, 1, 33, -1, false },
	{ "SHA-256 64 octets", 3, 1, 1, 64, -1, false },
	{ "SHA-512 63 octets", 2, 1, 2, 63, -1, false },
	{ "SHA-512 65 octets", 2, 1, 2, 65, -1, false },
	{ "SHA-512 32 octets", 2, 1, 2, 32, -1, false },
	{ "PKIX-TA unusable", 0, 1, 1, 32, 0, false },
	{ "PKIX-EE unusable", 1, 0, 2, 64, 0, false },
	{ "usage 4 unusable", 4, 1, 1, 32, 0, false },
	{ "usage 255 unusable", 255, 1, 1, 32, 0, false },
	{ "selector 2 unusable", 3, 2, 1, 32, 0, false },
	{ "mtype 3 unusable", 3, 1, 3, 48, 0, false },
	{ "mtype 255 unusable", 3, 1, 255, 1, 0, false },
	{ "mtype 3 empty", 3, 1, 3, 0, -1, false },
};

static void test_tlsa(void **state)
{
	(void)state;
	unsigned char rd[3 + 1024];
	for (size_t k = 0; k < N(tlsa_cases); k++) {
		const struct tlsa_case *c = &tlsa_cases[k];
		struct tlsa_rr r;
		rd[0] = c->usage;
		rd[1] = c->selector;
		rd[2] = c->mtype;
		for (size_t i = 0; i < c->datalen; i++)
			rd[3 + i] = (unsigned char)(i * 7 + 1);
		int got = tlsa_parse_rdata(rd, 3 + c->datalen, &r);
		if (got != c->want)
			fail_msg("%s: returned %d, want %d", c->name, got, c->want);
		if (got < 0) {
			if (r.data != NULL || r.len != 0)
				fail_msg("%s: not cleared on failure", c->name);
			continue;
		}
		if (r.usage != c->usage || r.selector != c->selector || r.mtype != c->mtype ||
		    r.len != c->datalen || r.data != rd + 3)
			fail_msg("%s: fields wrong", c->name);
		if (tlsa_usable_for_smtp(&r) != c->usable)
			fail_msg("%s: usable %d want %d", c->name, !c->usable, c->usable);
	}

	/* Too short for even the three octets and one of data. */
	struct tlsa_rr r;
	for (size_t len = 0; len < 4; len++)
		assert_int_equal(tlsa_parse_rdata(rd, len, &r), -1);

	/* A hand-made record with a short digest is not usable either. */
	memset(&r, 0, sizeof r);
	r.usage = 3;
	r.selector = 1;
	r.mtype = 1;
	r.data = rd;
	r.len = 20;
	assert_false(tlsa_usable_for_smtp(&r));
	r.len = 32;
	assert_true(tlsa_usable_for_smtp(&r));
	r.data = NULL;
	assert_false(tlsa_usable_for_smtp(&r));
	/* nor full data of no octets */
	r.data = rd;
	r.mtype = 0;
	r.len = 0;
	assert_false(tlsa_usable_for_smtp(&r));
	r.len = 1;
	assert_true(tlsa_usable_for_smtp(&r));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_txt_table),
		cmocka_unit_test(test_txt_failure_clears),
		cmocka_unit_test(test_policy_rfc_example),
		cmocka_unit_test(test_policy_line_ends),
		cmocka_unit_test(test_policy_table),
		cmocka_unit_test(test_policy_caps),
		cmocka_unit_test(test_policy_failure_clears),
		cmocka_unit_test(test_mx_match),
		cmocka_unit_test(test_tlsa),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
