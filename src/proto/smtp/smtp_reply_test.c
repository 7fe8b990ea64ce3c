/* smtp_reply_test.c - table-driven tests of the SMTP reply accumulator,
 * one-line rendering, DSN status and EHLO capabilities.  Every case runs
 * twice on the same struct: fresh, and again after a reset that follows an
 * unrelated reply (so a reset that forgets a field fails). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "proto/smtp/smtp_reply.h"

#define LINES_MAX 12

/* Feed lines (NULL-terminated) until one does not return 0.  Returns that
 * result (0 when all returned 0); *at_r is the index of that line. */
static int feed_all(struct smtp_reply *r, const char *const *lines, size_t *at_r,
		    const char **error_r)
{
	*error_r = NULL;
	for (size_t i = 0; lines[i] != NULL; i++) {
		int rc = smtp_reply_feed(r, lines[i], strlen(lines[i]), error_r);
		*at_r = i;
		if (rc != 0)
			return rc;
	}
	return 0;
}

/* Dirty the struct with an unrelated reply, then reset. */
static void dirty_reset(struct smtp_reply *r)
{
	static const char *const junk[] = {"421-4.4.2 junk line one", "421-4.4.2 two",
					   "421 4.4.2 three", NULL};
	size_t at;
	const char *err;
	smtp_reply_reset(r);
	assert_int_equal(feed_all(r, junk, &at, &err), 1);
	smtp_reply_reset(r);
	assert_int_equal(r->code, 0);
	assert_string_equal(r->enh, "");
	assert_int_equal(r->nlines, 0);
	assert_int_equal(r->text.len, 0);
}

struct feed_case {
	const char *name;
	const char *lines[LINES_MAX];
	int rc;                /* result of the last line */
	/* rc 1: */
	int code;
	const char *enh;
	const char *text;
	size_t nlines;
	const char *oneline;
	const char *status;
	enum smtp_reply_class cls;
	/* rc -1: a part of the error text */
	const char *error;
};

#define OK(n, l, c, e, t, nl, one, st, cl) {n, l, 1, c, e, t, nl, one, st, cl, NULL}
#define ERR(n, l, err) {n, l, -1, 0, NULL, NULL, 0, NULL, NULL, SMTP_REPLY_OK, err}
#define L(...) {__VA_ARGS__, NULL}

static const struct feed_case feed_cases[] = {
	OK("single", L("250 OK"), 250, "", "OK", 1, "250 OK", "2.0.0", SMTP_REPLY_OK),
	OK("single enhanced", L("250 2.1.0 Ok"), 250, "2.1.0", "2.1.0 Ok", 1, "250 2.1.0 Ok",
	   "2.1.0", SMTP_REPLY_OK),
	OK("multi-line", L("250-first", "250-second", "250 third"), 250, "",
	   "first\nsecond\nthird", 3, "250 first second third", "2.0.0", SMTP_REPLY_OK),
	OK("gmail style 550", L("550-5.7.1 [192.0.2.1] Our system has detected",
				"550-5.7.1 an unusual rate of", "550 5.7.1 unsolicited mail."),
	   550, "5.7.1",
	   "5.7.1 [192.0.2.1] Our system has detected\n5.7.1 an unusual rate of\n"
	   "5.7.1 unsolicited mail.", 3,
	   "550 5.7.1 [192.0.2.1] Our system has detected an unusual rate of unsolicited mail.",
	   "5.7.1", SMTP_REPLY_PERM),
	OK("postfix rcpt reject",
	   L("550 5.1.1 <x@y.example>: Recipient address rejected: User unknown"), 550,
	   "5.1.1", "5.1.1 <x@y.example>: Recipient address rejected: User unknown", 1,
	   "550 5.1.1 <x@y.example>: Recipient address rejected: User unknown", "5.1.1",
	   SMTP_REPLY_PERM),
	OK("other enhanced code on a later line kept", L("550-5.1.1 a", "550 5.7.1 b"), 550,
	   "5.1.1", "5.1.1 a\n5.7.1 b", 2, "550 5.1.1 a 5.7.1 b", "5.1.1", SMTP_REPLY_PERM),
	OK("enhanced only on a later line", L("550-a", "550 5.1.1 b"), 550, "", "a\n5.1.1 b", 2,
	   "550 a 5.1.1 b", "5.0.0", SMTP_REPLY_PERM),
	OK("later line only the enhanced code", L("250-2.0.0 ok", "250 2.0.0"), 250, "2.0.0",
	   "2.0.0 ok\n2.0.0", 2, "250 2.0.0 ok", "2.0.0", SMTP_REPLY_OK),
	OK("bare code", L("250"), 250, "", "", 1, "250", "2.0.0", SMTP_REPLY_OK),
	OK("code and space", L("250 "), 250, "", "", 1, "250", "2.0.0", SMTP_REPLY_OK),
	OK("bare code ends multi-line", L("250-a", "250"), 250, "", "a\n", 2, "250 a", "2.0.0",
	   SMTP_REPLY_OK),
	OK("empty continuation", L("250-", "250 ok"), 250, "", "\nok", 2, "250 ok", "2.0.0",
	   SMTP_REPLY_OK),
	OK("blanks trimmed in oneline", L("250-  lead and trail  ", "250 x"), 250, "",
	   "  lead and trail  \nx", 2, "250 lead and trail x", "2.0.0", SMTP_REPLY_OK),
	OK("354", L("354 End data with <CR><LF>.<CR><LF>"), 354, "",
	   "End data with <CR><LF>.<CR><LF>", 1, "354 End data with <CR><LF>.<CR><LF>", "2.0.0",
	   SMTP_REPLY_MORE),
	OK("334 auth challenge", L("334 VXNlcm5hbWU6"), 334, "", "VXNlcm5hbWU6", 1,
	   "334 VXNlcm5hbWU6", "2.0.0", SMTP_REPLY_MORE),
	OK("421 temp", L("421 4.7.0 Try again later"), 421, "4.7.0", "4.7.0 Try again later", 1,
	   "421 4.7.0 Try again later", "4.7.0", SMTP_REPLY_TEMP),
	OK("450 without enhanced", L("450 mailbox busy"), 450, "", "mailbox busy", 1,
	   "450 mailbox busy", "4.0.0", SMTP_REPLY_TEMP),
	OK("559 highest code", L("559 x"), 559, "", "x", 1, "559 x", "5.0.0", SMTP_REPLY_PERM),
	OK("200 lowest code", L("200 x"), 200, "", "x", 1, "200 x", "2.0.0", SMTP_REPLY_OK),
	OK("class mismatch 550 2.0.0", L("550 2.0.0 odd"), 550, "2.0.0", "2.0.0 odd", 1,
	   "550 2.0.0 odd", "5.0.0", SMTP_REPLY_PERM),
	OK("class mismatch 250 5.0.0", L("250 5.0.0 odd"), 250, "5.0.0", "5.0.0 odd", 1,
	   "250 5.0.0 odd", "2.0.0", SMTP_REPLY_OK),
	OK("class mismatch 451 5.1.1", L("451 5.1.1 odd"), 451, "5.1.1", "5.1.1 odd", 1,
	   "451 5.1.1 odd", "4.0.0", SMTP_REPLY_TEMP),
	OK("enhanced glued", L("550 5.1.1x y"), 550, "", "5.1.1x y", 1, "550 5.1.1x y", "5.0.0",
	   SMTP_REPLY_PERM),
	OK("enhanced 4-digit subject", L("550 5.1234.1 y"), 550, "", "5.1234.1 y", 1,
	   "550 5.1234.1 y", "5.0.0", SMTP_REPLY_PERM),
	OK("enhanced 4-digit detail", L("550 5.1.1234 y"), 550, "", "5.1.1234 y", 1,
	   "550 5.1.1234 y", "5.0.0", SMTP_REPLY_PERM),
	OK("enhanced 3-digit parts", L("550 5.123.123 y"), 550, "5.123.123", "5.123.123 y", 1,
	   "550 5.123.123 y", "5.123.123", SMTP_REPLY_PERM),
	OK("enhanced at end of text", L("550 5.1.1"), 550, "5.1.1", "5.1.1", 1, "550 5.1.1",
	   "5.1.1", SMTP_REPLY_PERM),
	OK("enhanced class 3", L("550 3.1.1 y"), 550, "", "3.1.1 y", 1, "550 3.1.1 y", "5.0.0",
	   SMTP_REPLY_PERM),
	OK("enhanced empty part", L("550 5..1 y"), 550, "", "5..1 y", 1, "550 5..1 y", "5.0.0",
	   SMTP_REPLY_PERM),
	OK("enhanced missing detail", L("550 5.1. y"), 550, "", "5.1. y", 1, "550 5.1. y",
	   "5.0.0", SMTP_REPLY_PERM),
	OK("enhanced four parts", L("550 5.1.1.1 y"), 550, "", "5.1.1.1 y", 1, "550 5.1.1.1 y",
	   "5.0.0", SMTP_REPLY_PERM),
	OK("enhanced two parts", L("550 5.1 y"), 550, "", "5.1 y", 1, "550 5.1 y", "5.0.0",
	   SMTP_REPLY_PERM),
	OK("enhanced tab after", L("550 5.1.1\ty"), 550, "", "5.1.1\ty", 1, "550 5.1.1?y",
	   "5.0.0", SMTP_REPLY_PERM),
	OK("enhanced not first", L("550 x 5.1.1"), 550, "", "x 5.1.1", 1, "550 x 5.1.1",
	   "5.0.0", SMTP_REPLY_PERM),
	OK("enhanced after two spaces", L("550  5.1.1 y"), 550, "", " 5.1.1 y", 1,
	   "550 5.1.1 y", "5.0.0", SMTP_REPLY_PERM),
	OK("control chars", L("550 a\tb\x01" "c\x7f" "d\re"), 550, "", "a\tb\x01" "c\x7f" "d\re",
	   1, "550 a?b?c?d?e", "5.0.0", SMTP_REPLY_PERM),
	OK("escape sequence", L("550 \x1b[31mred"), 550, "", "\x1b[31mred", 1, "550 ?[31mred",
	   "5.0.0", SMTP_REPLY_PERM),
	OK("c1 control", L("550 a\xc2\x9b" "b"), 550, "", "a\xc2\x9b" "b", 1, "550 a?b", "5.0.0",
	   SMTP_REPLY_PERM),
	OK("utf-8 kept", L("550 J\xc3\xb6rg \xe2\x82\xac \xf0\x9f\x98\x80 \xc2\xa0"), 550, "",
	   "J\xc3\xb6rg \xe2\x82\xac \xf0\x9f\x98\x80 \xc2\xa0", 1,
	   "550 J\xc3\xb6rg \xe2\x82\xac \xf0\x9f\x98\x80 \xc2\xa0", "5.0.0", SMTP_REPLY_PERM),
	OK("invalid utf-8", L("550 a\xff" "b\xc0\xaf" "c\xed\xa0\x80" "d\xe2\x82"), 550, "",
	   "a\xff" "b\xc0\xaf" "c\xed\xa0\x80" "d\xe2\x82", 1, "550 a?b??c???d??", "5.0.0",
	   SMTP_REPLY_PERM),
	ERR("code 600", L("600 x"), "valid reply code"),
	ERR("code 199", L("199 x"), "valid reply code"),
	ERR("code 260", L("260 x"), "valid reply code"),
	ERR("code 2x0", L("2x0 x"), "valid reply code"),
	ERR("code 25a", L("25a x"), "valid reply code"),
	ERR("code 25", L("25"), "valid reply code"),
	ERR("empty line", L(""), "valid reply code"),
	ERR("leading space", L(" 250 x"), "valid reply code"),
	ERR("text only", L("hello"), "valid reply code"),
	ERR("code 2500", L("2500 x"), "followed by"),
	ERR("code glued", L("250x"), "followed by"),
	ERR("code tab", L("250\tx"), "followed by"),
	ERR("code mismatch", L("250-a", "251 b"), "differs"),
	ERR("code mismatch class", L("250-a", "550 b"), "differs"),
	ERR("code mismatch middle", L("250-a", "250-b", "252-c"), "differs"),
	ERR("bad code in continuation", L("250-a", "250-b", "25"), "valid reply code"),
	ERR("bad separator in continuation", L("250-a", "250=b"), "followed by"),
	ERR("lf in line", L("250 a\nb"), "NUL or LF"),
};

static void check_feed_case(struct smtp_reply *r, const struct feed_case *t)
{
	size_t at = 0;
	const char *err = NULL;
	size_t n = 0;
	while (t->lines[n] != NULL)
		n++;
	int rc = feed_all(r, t->lines, &at, &err);
	if (rc != t->rc)
		fail_msg("%s: rc %d at line %zu, want %d (%s)", t->name, rc, at, t->rc,
			 err ? err : "");
	assert_int_equal(at, n - 1);
	if (rc < 0) {
		assert_non_null(err);
		if (strstr(err, t->error) == NULL)
			fail_msg("%s: error \"%s\", want \"%s\"", t->name, err, t->error);
		assert_int_equal(r->state, SMTP_REPLY_STATE_FAILED);
		return;
	}
	assert_int_equal(r->state, SMTP_REPLY_STATE_DONE);
	assert_int_equal(r->code, t->code);
	assert_string_equal(r->enh, t->enh);
	assert_int_equal(r->text.len, strlen(t->text));
	assert_memory_equal(r->text.data, t->text, r->text.len);
	assert_int_equal(r->text.data[r->text.len], '\0');
	assert_int_equal(r->nlines, t->nlines);
	char one[512];
	smtp_reply_oneline(r, one, sizeof(one));
	assert_string_equal(one, t->oneline);
	char st[SMTP_REPLY_ENH_SIZE];
	smtp_reply_status(r, st);
	assert_string_equal(st, t->status);
	assert_int_equal(smtp_reply_class(r), t->cls);
}

static void test_feed(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(feed_cases) / sizeof(feed_cases[0]); i++) {
		struct smtp_reply r;
		print_message("case %s\n", feed_cases[i].name);
		smtp_reply_init(&r);
		check_feed_case(&r, &feed_cases[i]);
		dirty_reset(&r);
		check_feed_case(&r, &feed_cases[i]);
		smtp_reply_free(&r);
	}
}

/* Each line feeds 0 until the last: continuation lines never complete. */
static void test_feed_progress(void **state)
{
	(void)state;
	struct smtp_reply r;
	const char *err = NULL;
	smtp_reply_init(&r);
	for (int round = 0; round < 2; round++) {
		assert_int_equal(smtp_reply_feed(&r, "250-a", 5, &err), 0);
		assert_int_equal(r.state, SMTP_REPLY_STATE_MORE);
		assert_int_equal(r.code, 250);
		assert_int_equal(r.nlines, 1);
		assert_int_equal(smtp_reply_feed(&r, "250-b", 5, &err), 0);
		assert_int_equal(r.nlines, 2);
		assert_int_equal(smtp_reply_feed(&r, "250 c", 5, &err), 1);
		assert_int_equal(r.nlines, 3);
		dirty_reset(&r);
	}
	smtp_reply_free(&r);
}

/* NUL bytes need explicit lengths. */
static void test_feed_nul(void **state)
{
	(void)state;
	struct smtp_reply r;
	const char *err = NULL;
	smtp_reply_init(&r);
	for (int round = 0; round < 2; round++) {
		assert_int_equal(smtp_reply_feed(&r, "250 a\0b", 7, &err), -1);
		assert_non_null(strstr(err, "NUL"));
		dirty_reset(&r);
		assert_int_equal(smtp_reply_feed(&r, "250-a", 5, &err), 0);
		assert_int_equal(smtp_reply_feed(&r, "250 \0", 5, &err), -1);
		assert_non_null(strstr(err, "NUL"));
		dirty_reset(&r);
		/* The length is what counts, not a NUL after it. */
		assert_int_equal(smtp_reply_feed(&r, "250 abc\0def", 7, &err), 1);
		assert_string_equal(r.text.data, "abc");
		dirty_reset(&r);
	}
	smtp_reply_free(&r);
}

/* A reply of nlines lines whose joined text is text_len bytes (each line at
 * most SMTP_REPLY_LINE_MAX long); returns the result of the last feed. */
static int feed_sized(struct smtp_reply *r, size_t nlines, size_t text_len, size_t line_len,
		      const char **err)
{
	char *line = malloc(SMTP_REPLY_LINE_MAX + 8);
	assert_non_null(line);
	size_t left = text_len;
	int rc = 0;
	for (size_t i = 0; i < nlines; i++) {
		size_t sep = i > 0 ? 1 : 0;
		size_t want = line_len;
		if (i == nlines - 1)
			want = left - sep;
		left -= sep + want;
		bool last = i == nlines - 1;
		memcpy(line, last ? "250 " : "250-", 4);
		memset(line + 4, 'x', want);
		rc = smtp_reply_feed(r, line, 4 + want, err);
		if (rc != 0)
			break;
	}
	free(line);
	return rc;
}

struct limit_case {
	const char *name;
	size_t nlines;
	size_t text_len;
	size_t line_len;       /* text bytes of every line but the last */
	int rc;
	const char *error;
};

#define T_LINE (SMTP_REPLY_LINE_MAX - 4)

static const struct limit_case limit_cases[] = {
	{"line at max", 1, T_LINE, 0, 1, NULL},
	{"line over max", 1, T_LINE + 1, 0, -1, "line too long"},
	{"continuation over max", 2, 10 + 1 + T_LINE + 1, 10, -1, "line too long"},
	{"lines at max", SMTP_REPLY_LINES_MAX, (SMTP_REPLY_LINES_MAX - 1) * 2 + 1, 1, 1, NULL},
	{"lines over max", SMTP_REPLY_LINES_MAX + 1, SMTP_REPLY_LINES_MAX * 2 + 1, 1, -1,
	 "too many lines"},
	{"text at max", 9, SMTP_REPLY_TEXT_MAX, T_LINE, 1, NULL},
	{"text over max", 9, SMTP_REPLY_TEXT_MAX + 1, T_LINE, -1, "text too long"},
};

static void test_limits(void **state)
{
	(void)state;
	/* The text-size cases rely on 8 full lines + separators staying below
	 * the maximum, and the last line then being short enough. */
	assert_true(8 * (T_LINE + 1) < SMTP_REPLY_TEXT_MAX);
	assert_true(SMTP_REPLY_TEXT_MAX - 8 * (T_LINE + 1) + 1 <= T_LINE);
	for (size_t i = 0; i < sizeof(limit_cases) / sizeof(limit_cases[0]); i++) {
		const struct limit_case *t = &limit_cases[i];
		struct smtp_reply r;
		print_message("case %s\n", t->name);
		smtp_reply_init(&r);
		for (int round = 0; round < 2; round++) {
			const char *err = NULL;
			int rc = feed_sized(&r, t->nlines, t->text_len, t->line_len, &err);
			if (rc != t->rc)
				fail_msg("%s: rc %d (%s)", t->name, rc, err ? err : "");
			if (rc == 1) {
				assert_int_equal(r.text.len, t->text_len);
				assert_int_equal(r.nlines, t->nlines);
				assert_int_equal(strlen(r.text.data), t->text_len);
			} else {
				assert_non_null(strstr(err, t->error));
			}
			dirty_reset(&r);
		}
		smtp_reply_free(&r);
	}
}

/* The exact boundary of the text limit where only the '\n' overflows. */
static void test_limit_separator(void **state)
{
	(void)state;
	struct smtp_reply r;
	const char *err = NULL;
	char *line = malloc(SMTP_REPLY_LINE_MAX + 1);
	assert_non_null(line);
	smtp_reply_init(&r);
	for (int round = 0; round < 2; round++) {
		size_t total = 0;
		memcpy(line, "250-", 4);
		while (SMTP_REPLY_TEXT_MAX - total > T_LINE + 1) {
			size_t sep = total > 0 ? 1 : 0;
			memset(line + 4, 'y', T_LINE);
			assert_int_equal(smtp_reply_feed(&r, line, SMTP_REPLY_LINE_MAX, &err), 0);
			total += sep + T_LINE;
		}
		/* Fill the text to exactly the maximum... */
		size_t fill = SMTP_REPLY_TEXT_MAX - total - 1;
		memset(line + 4, 'z', fill);
		assert_int_equal(smtp_reply_feed(&r, line, 4 + fill, &err), 0);
		assert_int_equal(r.text.len, SMTP_REPLY_TEXT_MAX);
		/* ...then an empty last line needs one more byte for its '\n'. */
		assert_int_equal(smtp_reply_feed(&r, "250", 3, &err), -1);
		assert_non_null(strstr(err, "text too long"));
		dirty_reset(&r);
	}
	free(line);
	smtp_reply_free(&r);
}

struct oneline_case {
	const char *name;
	const char *lines[LINES_MAX];
	size_t outsz;
	const char *want;
};

static const struct oneline_case oneline_cases[] = {
	{"fits", L("250 hello world"), 16, "250 hello world"},
	{"cut in a word", L("250 hello world"), 12, "250 hello w"},
	{"cut at a space", L("250 hello world"), 11, "250 hello"},
	{"cut after a word", L("250 hello world"), 10, "250 hello"},
	{"cut at separator", L("250-ab", "250 cd"), 8, "250 ab"},
	{"cut after separator", L("250-ab", "250 cd"), 9, "250 ab c"},
	{"code only", L("250 hello"), 4, "250"},
	{"code does not fit", L("250 hello"), 3, ""},
	{"one byte", L("250 hello"), 1, ""},
	{"utf-8 2-byte fits", L("250 \xc3\xa9\xc3\xa9"), 7, "250 \xc3\xa9"},
	{"utf-8 2-byte cut", L("250 \xc3\xa9\xc3\xa9"), 8, "250 \xc3\xa9"},
	{"utf-8 2-byte both", L("250 \xc3\xa9\xc3\xa9"), 9, "250 \xc3\xa9\xc3\xa9"},
	{"utf-8 4-byte cut", L("250 \xf0\x9f\x98\x80"), 8, "250"},
	{"utf-8 4-byte fits", L("250 \xf0\x9f\x98\x80"), 9, "250 \xf0\x9f\x98\x80"},
	{"utf-8 3-byte cut", L("250 a\xe2\x82\xac"), 8, "250 a"},
	{"replacement counts one", L("250 \x01\x02\x03"), 7, "250 ??"},
	{"invalid byte is one unit", L("250 \xff\xfe"), 6, "250 ?"},
	{"many lines joined", L("250-a", "250-b", "250-c", "250 d"), 64, "250 a b c d"},
	{"repeated enhanced dropped", L("451-4.3.0 one", "451-4.3.0 two", "451 4.3.0"), 64,
	 "451 4.3.0 one two"},
};

static void test_oneline(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(oneline_cases) / sizeof(oneline_cases[0]); i++) {
		const struct oneline_case *t = &oneline_cases[i];
		struct smtp_reply r;
		size_t at;
		const char *err;
		print_message("case %s\n", t->name);
		smtp_reply_init(&r);
		for (int round = 0; round < 2; round++) {
			assert_int_equal(feed_all(&r, t->lines, &at, &err), 1);
			char out[256];
			memset(out, '#', sizeof(out));
			smtp_reply_oneline(&r, out, t->outsz);
			assert_string_equal(out, t->want);
			assert_true(strlen(out) < t->outsz);
			/* Nothing written past outsz. */
			assert_int_equal(out[t->outsz], '#');
			dirty_reset(&r);
		}
		smtp_reply_free(&r);
	}
}

static void test_oneline_edges(void **state)
{
	(void)state;
	struct smtp_reply r;
	const char *err;
	char out[64];
	smtp_reply_init(&r);
	/* Nothing fed yet. */
	memset(out, '#', sizeof(out));
	smtp_reply_oneline(&r, out, sizeof(out));
	assert_string_equal(out, "");
	/* outsz 0 writes nothing. */
	assert_int_equal(smtp_reply_feed(&r, "250 x", 5, &err), 1);
	memset(out, '#', sizeof(out));
	smtp_reply_oneline(&r, out, 0);
	assert_int_equal(out[0], '#');
	/* A long reply fills the buffer exactly: "250 " 32 a, " ", 32 b. */
	char line[36];
	smtp_reply_reset(&r);
	memcpy(line, "250-", 4);
	memset(line + 4, 'a', 32);
	assert_int_equal(smtp_reply_feed(&r, line, sizeof(line), &err), 0);
	memcpy(line, "250 ", 4);
	memset(line + 4, 'b', 32);
	assert_int_equal(smtp_reply_feed(&r, line, sizeof(line), &err), 1);
	smtp_reply_oneline(&r, out, sizeof(out));
	assert_int_equal(strlen(out), sizeof(out) - 1);
	assert_memory_equal(out, "250 aaaa", 8);
	assert_int_equal(out[36], ' ');
	assert_int_equal(out[37], 'b');
	smtp_reply_free(&r);
}

/* Replies in a row on one struct, as pipelined responses arrive. */
static void test_reuse(void **state)
{
	(void)state;
	static const char *const lines[] = {
		"250 2.1.0 Ok", "250 2.1.5 Ok", "550-5.1.1 no such", "550 5.1.1 user", "354 go",
		"250 2.0.0 Ok: queued as 4Yd0k",
	};
	static const int rcs[] = {1, 1, 0, 1, 1, 1};
	static const char *const status[] = {"2.1.0", "2.1.5", NULL, "5.1.1", "2.0.0", "2.0.0"};
	struct smtp_reply r;
	const char *err = NULL;
	smtp_reply_init(&r);
	char *data = NULL;
	for (size_t i = 0; i < sizeof(lines) / sizeof(lines[0]); i++) {
		int rc = smtp_reply_feed(&r, lines[i], strlen(lines[i]), &err);
		assert_int_equal(rc, rcs[i]);
		if (rc == 0)
			continue;
		char st[SMTP_REPLY_ENH_SIZE];
		smtp_reply_status(&r, st);
		assert_string_equal(st, status[i]);
		if (data == NULL)
			data = r.text.data;
		/* Reset keeps the allocation: short replies stay in it. */
		assert_ptr_equal(r.text.data, data);
		smtp_reply_reset(&r);
		assert_ptr_equal(r.text.data, data);
		assert_string_equal(r.text.data, "");
	}
	/* After an error, a reset makes the struct usable again. */
	assert_int_equal(smtp_reply_feed(&r, "250-a", 5, &err), 0);
	assert_int_equal(smtp_reply_feed(&r, "550 b", 5, &err), -1);
	smtp_reply_reset(&r);
	assert_int_equal(smtp_reply_feed(&r, "221 2.0.0 Bye", 13, &err), 1);
	assert_string_equal(r.enh, "2.0.0");
	assert_string_equal(r.text.data, "2.0.0 Bye");
	smtp_reply_free(&r);
	assert_null(r.text.data);
	smtp_reply_free(&r);
	smtp_reply_free(NULL);
	/* Free leaves a struct that can be initialised and used again. */
	smtp_reply_init(&r);
	assert_int_equal(smtp_reply_feed(&r, "250 x", 5, &err), 1);
	smtp_reply_free(&r);
}

struct class_case {
	const char *line;
	enum smtp_reply_class cls;
	const char *status;
};

static void test_class(void **state)
{
	(void)state;
	static const struct class_case cases[] = {
		{"200 x", SMTP_REPLY_OK, "2.0.0"},
		{"220 mx ESMTP", SMTP_REPLY_OK, "2.0.0"},
		{"259 x", SMTP_REPLY_OK, "2.0.0"},
		{"334 x", SMTP_REPLY_MORE, "2.0.0"},
		{"354 x", SMTP_REPLY_MORE, "2.0.0"},
		{"354 3.0.0 x", SMTP_REPLY_MORE, "2.0.0"},
		{"354 2.0.0 x", SMTP_REPLY_MORE, "2.0.0"},
		{"354 5.0.0 x", SMTP_REPLY_MORE, "2.0.0"},
		{"421 x", SMTP_REPLY_TEMP, "4.0.0"},
		{"452 4.5.3 Too many recipients", SMTP_REPLY_TEMP, "4.5.3"},
		{"500 x", SMTP_REPLY_PERM, "5.0.0"},
		{"554 5.7.1 no", SMTP_REPLY_PERM, "5.7.1"},
		{"554 4.7.1 no", SMTP_REPLY_PERM, "5.0.0"},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct smtp_reply r;
		const char *err;
		print_message("case %s\n", cases[i].line);
		smtp_reply_init(&r);
		for (int round = 0; round < 2; round++) {
			assert_int_equal(smtp_reply_feed(&r, cases[i].line, strlen(cases[i].line),
							 &err), 1);
			assert_int_equal(smtp_reply_class(&r), cases[i].cls);
			char st[SMTP_REPLY_ENH_SIZE];
			smtp_reply_status(&r, st);
			assert_string_equal(st, cases[i].status);
			dirty_reset(&r);
		}
		smtp_reply_free(&r);
	}
}

struct caps_case {
	const char *name;
	const char *lines[LINES_MAX + 4];
	struct smtp_caps want;
};

#define A(x) SMTP_AUTH_##x

static const struct caps_case caps_cases[] = {
	{"postfix", {"250-mail.example.com", "250-PIPELINING", "250-SIZE 10240000", "250-VRFY",
		     "250-ETRN", "250-STARTTLS", "250-ENHANCEDSTATUSCODES", "250-8BITMIME",
		     "250-DSN", "250-SMTPUTF8", "250 CHUNKING", NULL},
	 {.pipelining = true, .size_given = true, .size = 10240000, .starttls = true,
	  .enhancedstatuscodes = true, .eightbitmime = true, .dsn = true, .smtputf8 = true,
	  .chunking = true}},
	{"postfix submission", {"250-mail.example.com", "250-PIPELINING", "250-SIZE 0",
				"250-ETRN", "250-AUTH PLAIN LOGIN", "250-AUTH=PLAIN LOGIN",
				"250-ENHANCEDSTATUSCODES", "250-8BITMIME", "250 DSN", NULL},
	 {.pipelining = true, .size_given = true, .size = 0, .auth = A(PLAIN) | A(LOGIN),
	  .enhancedstatuscodes = true, .eightbitmime = true, .dsn = true}},
	{"exim", {"250-mx.example.org Hello client.example [192.0.2.1]", "250-SIZE 52428800",
		  "250-8BITMIME", "250-PIPELINING", "250-PIPECONNECT", "250-AUTH PLAIN LOGIN",
		  "250-CHUNKING", "250-STARTTLS", "250-PRDR", "250 HELP", NULL},
	 {.size_given = true, .size = 52428800, .eightbitmime = true, .pipelining = true,
	  .auth = A(PLAIN) | A(LOGIN), .chunking = true, .starttls = true}},
	{"gmail submission", {"250-smtp.gmail.com at your service, [192.0.2.1]",
			      "250-SIZE 35882577", "250-8BITMIME",
			      "250-AUTH LOGIN PLAIN XOAUTH2 PLAIN-CLIENTTOKEN OAUTHBEARER XOAUTH",
			      "250-ENHANCEDSTATUSCODES", "250-PIPELINING", "250-CHUNKING",
			      "250 SMTPUTF8", NULL},
	 {.size_given = true, .size = 35882577, .eightbitmime = true,
	  .auth = A(LOGIN) | A(PLAIN) | A(XOAUTH2) | A(OAUTHBEARER), .enhancedstatuscodes = true,
	  .pipelining = true, .chunking = true, .smtputf8 = true}},
	{"old auth form only", {"250-x", "250 AUTH=LOGIN PLAIN", NULL},
	 {.auth = A(LOGIN) | A(PLAIN)}},
	{"old auth one mech", {"250-x", "250 AUTH=LOGIN", NULL}, {.auth = A(LOGIN)}},
	{"auth all known", {"250-x", "250 AUTH CRAM-MD5 SCRAM-SHA-1 SCRAM-SHA-256 "
			    "SCRAM-SHA-256-PLUS EXTERNAL", NULL},
	 {.auth = A(CRAM_MD5) | A(SCRAM_SHA_1) | A(SCRAM_SHA_256) | A(SCRAM_SHA_256_PLUS) |
		  A(EXTERNAL)}},
	{"auth unknown mechs", {"250-x", "250 AUTH GSSAPI NTLM DIGEST-MD5 PLAINX", NULL},
	 {.auth = 0}},
	{"auth no mechs", {"250-x", "250 AUTH", NULL}, {.auth = 0}},
	{"auth lines add up", {"250-x", "250-AUTH PLAIN", "250 AUTH=LOGIN", NULL},
	 {.auth = A(PLAIN) | A(LOGIN)}},
	{"auth tabs and spaces", {"250-x", "250 AUTH\tPLAIN   LOGIN\t", NULL},
	 {.auth = A(PLAIN) | A(LOGIN)}},
	{"size 0", {"250-x", "250 SIZE 0", NULL}, {.size_given = true, .size = 0}},
	{"size abc", {"250-x", "250 SIZE abc", NULL}, {.size_given = true, .size = 0}},
	{"size no value", {"250-x", "250 SIZE", NULL}, {.size_given = true, .size = 0}},
	{"size trailing junk", {"250-x", "250 SIZE 10x", NULL}, {.size_given = true, .size = 0}},
	{"size negative", {"250-x", "250 SIZE -1", NULL}, {.size_given = true, .size = 0}},
	{"size max", {"250-x", "250 SIZE 18446744073709551615", NULL},
	 {.size_given = true, .size = UINT64_MAX}},
	{"size overflow", {"250-x", "250 SIZE 18446744073709551616", NULL},
	 {.size_given = true, .size = 0}},
	{"size 21 digits", {"250-x", "250 SIZE 000000000000000000001", NULL},
	 {.size_given = true, .size = 0}},
	{"size extra param", {"250-x", "250 SIZE 100 200", NULL},
	 {.size_given = true, .size = 100}},
	{"size trailing blanks", {"250-x", "250 SIZE 1000  ", NULL},
	 {.size_given = true, .size = 1000}},
	{"size last wins", {"250-x", "250-SIZE 1000", "250 SIZE 2000", NULL},
	 {.size_given = true, .size = 2000}},
	{"lowercase", {"250-mx", "250-pipelining", "250-size 1000", "250-auth plain cram-md5",
		       "250-8bitmime", "250-smtputf8", "250-chunking", "250-binarymime",
		       "250-dsn", "250-requiretls", "250-enhancedstatuscodes", "250 starttls",
		       NULL},
	 {.pipelining = true, .size_given = true, .size = 1000, .auth = A(PLAIN) | A(CRAM_MD5),
	  .eightbitmime = true, .smtputf8 = true, .chunking = true, .binarymime = true,
	  .dsn = true, .requiretls = true, .enhancedstatuscodes = true, .starttls = true}},
	{"mixed case", {"250-mx", "250-PipeLining", "250 Auth=Login", NULL},
	 {.pipelining = true, .auth = A(LOGIN)}},
	{"duplicates", {"250-x", "250-PIPELINING", "250-PIPELINING", "250-STARTTLS",
			"250 STARTTLS", NULL},
	 {.pipelining = true, .starttls = true}},
	{"near misses", {"250-x", "250-PIPELININGX", "250-STARTTLSX", "250-8BITMIMES",
			 "250-SIZEX 100", "250-X-STARTTLS", "250-AUTHX PLAIN", "250-DS",
			 "250 PIPE", NULL},
	 {.pipelining = false}},
	{"keyword with params", {"250-x", "250 STARTTLS now", NULL}, {.starttls = true}},
	{"first line is the greeting", {"250-PIPELINING", "250 SIZE 5", NULL},
	 {.size_given = true, .size = 5}},
	{"single line", {"250 mx.example.com", NULL}, {.pipelining = false}},
	{"not 250", {"550-PIPELINING", "550 PIPELINING", NULL}, {.pipelining = false}},
	{"ehlo refused", {"502 5.5.2 Error: command not recognized", NULL}, {.pipelining = false}},
	{"empty lines", {"250-x", "250-", "250-   ", "250 DSN", NULL}, {.dsn = true}},
	{"leading blank", {"250-x", "250  PIPELINING", NULL}, {.pipelining = true}},
};

static void check_caps(const char *name, const struct smtp_caps *got,
		       const struct smtp_caps *want)
{
#define F(f) \
	do { \
		if (got->f != want->f) \
			fail_msg("%s: " #f " %llu, want %llu", name, \
				 (unsigned long long)got->f, (unsigned long long)want->f); \
	} while (0)
	F(pipelining);
	F(eightbitmime);
	F(smtputf8);
	F(starttls);
	F(chunking);
	F(dsn);
	F(enhancedstatuscodes);
	F(binarymime);
	F(requiretls);
	F(size_given);
	F(size);
	F(auth);
#undef F
}

static void test_caps(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(caps_cases) / sizeof(caps_cases[0]); i++) {
		const struct caps_case *t = &caps_cases[i];
		struct smtp_reply r;
		size_t at;
		const char *err;
		print_message("case %s\n", t->name);
		smtp_reply_init(&r);
		for (int round = 0; round < 2; round++) {
			assert_int_equal(feed_all(&r, t->lines, &at, &err), 1);
			struct smtp_caps caps;
			/* Garbage first: parse must set every field. */
			memset(&caps, 0xa5, sizeof(caps));
			smtp_caps_parse(&r, &caps);
			check_caps(t->name, &caps, &t->want);
			dirty_reset(&r);
		}
		smtp_reply_free(&r);
	}
}

/* EHLO text at the size limit: many capability lines still parse. */
static void test_caps_many_lines(void **state)
{
	(void)state;
	struct smtp_reply r;
	const char *err;
	smtp_reply_init(&r);
	assert_int_equal(smtp_reply_feed(&r, "250-mx", 6, &err), 0);
	for (int i = 0; i < SMTP_REPLY_LINES_MAX - 3; i++)
		assert_int_equal(smtp_reply_feed(&r, "250-X-UNKNOWN", 13, &err), 0);
	assert_int_equal(smtp_reply_feed(&r, "250-AUTH PLAIN", 14, &err), 0);
	assert_int_equal(smtp_reply_feed(&r, "250 CHUNKING", 12, &err), 1);
	assert_int_equal(r.nlines, SMTP_REPLY_LINES_MAX);
	struct smtp_caps caps;
	smtp_caps_parse(&r, &caps);
	assert_true(caps.chunking);
	assert_int_equal(caps.auth, SMTP_AUTH_PLAIN);
	assert_false(caps.pipelining);
	smtp_reply_free(&r);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_feed),
		cmocka_unit_test(test_feed_progress),
		cmocka_unit_test(test_feed_nul),
		cmocka_unit_test(test_limits),
		cmocka_unit_test(test_limit_separator),
		cmocka_unit_test(test_oneline),
		cmocka_unit_test(test_oneline_edges),
		cmocka_unit_test(test_reuse),
		cmocka_unit_test(test_class),
		cmocka_unit_test(test_caps),
		cmocka_unit_test(test_caps_many_lines),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
