/* mutf7_test.c - modified UTF-7 both ways and the mailbox name rules. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "core/buf.h"
#include "mail/mutf7.h"

struct pair_case {
	const char *name;
	const char *wire; /* modified UTF-7 */
	const char *utf8;
};

static const struct pair_case pairs[] = {
	{ "empty", "", "" },
	{ "ascii", "INBOX/Sent", "INBOX/Sent" },
	{ "ampersand", "Tom &- Jerry", "Tom & Jerry" },
	{ "only ampersand", "&-", "&" },
	{ "RFC 3501 example", "~peter/mail/&U,BTFw-/&ZeVnLIqe-",
	  "~peter/mail/\xe5\x8f\xb0\xe5\x8c\x97/\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e" },
	{ "latin-1", "Entw&APw-rfe", "Entw\xc3\xbc" "rfe" },
	{ "japanese", "&MEIwRDBG-", "\xe3\x81\x82\xe3\x81\x84\xe3\x81\x86" },
	{ "surrogate pair", "&2D3eAA-", "\xf0\x9f\x98\x80" },
	{ "control char shifted", "a&AAk-b", "a\tb" },
	{ "shift then amp", "&AOk-&-", "\xc3\xa9&" },
	{ "amp then shift", "&-&AOk-", "&\xc3\xa9" },
	{ "two runs", "&AOk-x&AOk-", "\xc3\xa9x\xc3\xa9" },
	{ "one-unit bits 4", "&AOkA6Q-", "\xc3\xa9\xc3\xa9" },
	{ "three units", "&AOkA6QDp-", "\xc3\xa9\xc3\xa9\xc3\xa9" },
	{ "DEL shifted", "&AH8-", "\x7f" },
};

static void test_pairs(void **state)
{
	(void)state;
	for (size_t k = 0; k < sizeof(pairs) / sizeof(pairs[0]); k++) {
		const struct pair_case *c = &pairs[k];
		struct buf out;
		const char *err = NULL;

		buf_init(&out, 4096);
		if (mutf7_decode(c->wire, strlen(c->wire), &out, &err) < 0)
			fail_msg("%s: decode failed: %s", c->name, err);
		if (out.len != strlen(c->utf8) ||
		    memcmp(out.data ? out.data : "", c->utf8, out.len))
			fail_msg("%s: decoded '%.*s'", c->name, (int)out.len, out.data);
		buf_reset(&out);
		if (mutf7_encode(c->utf8, strlen(c->utf8), &out, &err) < 0)
			fail_msg("%s: encode failed: %s", c->name, err);
		if (out.len != strlen(c->wire) ||
		    memcmp(out.data ? out.data : "", c->wire, out.len))
			fail_msg("%s: encoded '%.*s'", c->name, (int)out.len, out.data);
		buf_free(&out);
	}
}

struct bad_case {
	const char *name;
	const char *input;
	size_t len; /* 0: strlen */
	const char *error;
};

static const struct bad_case bad_decode[] = {
	{ "bare amp at end", "a&", 0, "unterminated modified base64 in mailbox name" },
	{ "bare amp", "Tom & Jerry", 0, "invalid character in modified base64" },
	{ "unterminated", "&AOk", 0, "unterminated modified base64 in mailbox name" },
	{ "bad base64 char", "&AO*-", 0, "invalid character in modified base64" },
	{ "standard base64 slash", "&U/BTFw-", 0, "invalid character in modified base64" },
	{ "padding char", "&AOk=-", 0, "invalid character in modified base64" },
	{ "encoded ascii", "&AGE-", 0, "printable ASCII must not be base64 encoded" },
	{ "encoded amp", "&ACY-", 0, "printable ASCII must not be base64 encoded" },
	{ "odd utf16 length", "&AOkA-", 0, "odd UTF-16 length in modified base64" },
	{ "one char", "&A-", 0, "odd UTF-16 length in modified base64" },
	{ "non-zero pad bits", "&AOl-", 0, "non-zero padding bits in modified base64" },
	{ "lone high surrogate", "&2D0-", 0, "unpaired surrogate in mailbox name" },
	{ "lone low surrogate", "&3gA-", 0, "unpaired surrogate in mailbox name" },
	{ "high then BMP", "&2D0A6Q-", 0, "unpaired surrogate in mailbox name" },
	{ "adjacent runs", "&AOk-&AOk-", 0, "adjacent modified base64 runs (not canonical)" },
	{ "encoded NUL", "&AAA-", 0, "NUL in mailbox name" },
	{ "8-bit byte", "caf\xc3\xa9", 0,
	  "mailbox name must be 7-bit printable (modified UTF-7)" },
	{ "tab", "a\tb", 0, "mailbox name must be 7-bit printable (modified UTF-7)" },
	{ "NUL", "a\0b", 3, "mailbox name must be 7-bit printable (modified UTF-7)" },
};

static const struct bad_case bad_encode[] = {
	{ "latin-1 byte", "caf\xe9", 0, "mailbox name is not valid UTF-8" },
	{ "overlong", "\xc0\xaf", 0, "mailbox name is not valid UTF-8" },
	{ "surrogate", "\xed\xa0\x80", 0, "mailbox name is not valid UTF-8" },
	{ "too big", "\xf4\x90\x80\x80", 0, "mailbox name is not valid UTF-8" },
	{ "truncated", "\xe3\x81", 0, "mailbox name is not valid UTF-8" },
	{ "stray continuation", "\x80", 0, "mailbox name is not valid UTF-8" },
	{ "NUL", "a\0b", 3, "NUL in mailbox name" },
};

static void run_bad(const struct bad_case *cases, size_t n,
		    int (*fn)(const char *, size_t, struct buf *, const char **))
{
	for (size_t k = 0; k < n; k++) {
		const struct bad_case *c = &cases[k];
		struct buf out;
		const char *err = NULL;

		buf_init(&out, 4096);
		if (fn(c->input, c->len ? c->len : strlen(c->input), &out, &err) != -1)
			fail_msg("%s: accepted", c->name);
		if (err == NULL || strcmp(err, c->error) != 0)
			fail_msg("%s: error '%s', want '%s'", c->name, err ? err : "(null)",
				 c->error);
		buf_free(&out);
	}
}

static void test_bad_decode(void **state)
{
	(void)state;
	run_bad(bad_decode, sizeof(bad_decode) / sizeof(bad_decode[0]), mutf7_decode);
}

static void test_bad_encode(void **state)
{
	(void)state;
	run_bad(bad_encode, sizeof(bad_encode) / sizeof(bad_encode[0]), mutf7_encode);
}

static void test_output_cap(void **state)
{
	(void)state;
	struct buf out;
	const char *err = NULL;

	/* Exactly fits, then one byte short, both directions. */
	buf_init(&out, 6);
	assert_int_equal(mutf7_decode("&MEIwRA-", 8, &out, &err), 0);
	buf_free(&out);
	buf_init(&out, 5);
	assert_int_equal(mutf7_decode("&MEIwRA-", 8, &out, &err), -1);
	assert_string_equal(err, "mailbox name too long");
	buf_free(&out);
	buf_init(&out, 8);
	assert_int_equal(mutf7_encode("\xe3\x81\x82\xe3\x81\x84", 6, &out, &err), 0);
	buf_free(&out);
	for (size_t max = 0; max < 8; max++) {
		buf_init(&out, max);
		assert_int_equal(mutf7_encode("\xe3\x81\x82\xe3\x81\x84", 6, &out, &err), -1);
		assert_string_equal(err, "mailbox name too long");
		buf_free(&out);
	}
	buf_init(&out, 2);
	assert_int_equal(mutf7_encode("a&", 2, &out, &err), -1);
	buf_free(&out);
}

struct name_case {
	const char *name;
	const char *input;
	size_t len;
	const char *want; /* normal form, or NULL */
	const char *error;
};

static const struct name_case names[] = {
	{ "simple", "Sent", 0, "Sent", NULL },
	{ "inbox lower", "inbox", 0, "INBOX", NULL },
	{ "inbox mixed child", "InBoX/Drafts", 0, "INBOX/Drafts", NULL },
	{ "inbox not first", "Archive/inbox", 0, "Archive/inbox", NULL },
	{ "inboxes", "inboxes", 0, "inboxes", NULL },
	{ "utf8", "\xe6\x97\xa5\xe6\x9c\xac/x", 0, "\xe6\x97\xa5\xe6\x9c\xac/x", NULL },
	{ "dots in name", "a.b/...", 0, "a.b/...", NULL },
	{ "empty", "", 0, NULL, "empty mailbox name" },
	{ "leading slash", "/a", 0, NULL, "empty component in mailbox name" },
	{ "trailing slash", "a/", 0, NULL, "empty component in mailbox name" },
	{ "double slash", "a//b", 0, NULL, "empty component in mailbox name" },
	{ "dot", "a/./b", 0, NULL, "\".\" or \"..\" component in mailbox name" },
	{ "dotdot", "../etc", 0, NULL, "\".\" or \"..\" component in mailbox name" },
	{ "dotdot last", "a/..", 0, NULL, "\".\" or \"..\" component in mailbox name" },
	{ "control", "a\tb", 0, NULL, "control character in mailbox name" },
	{ "DEL", "a\x7f", 0, NULL, "control character in mailbox name" },
	{ "C1", "a\xc2\x85", 0, NULL, "control character in mailbox name" },
	{ "NUL", "a\0b", 3, NULL, "control character in mailbox name" },
	{ "bad utf8", "caf\xe9", 0, NULL, "mailbox name is not valid UTF-8" },
};

static void test_names(void **state)
{
	(void)state;
	for (size_t k = 0; k < sizeof(names) / sizeof(names[0]); k++) {
		const struct name_case *c = &names[k];
		struct buf out;
		const char *err = NULL;
		size_t len = c->len ? c->len : strlen(c->input);

		buf_init(&out, MUTF7_NAME_MAX);
		int ret = mutf7_mailbox_check(c->input, len, &out, &err);
		if (c->want != NULL) {
			if (ret != 0)
				fail_msg("%s: refused: %s", c->name, err);
			if (strcmp(out.data, c->want) != 0)
				fail_msg("%s: got '%s'", c->name, out.data);
		} else if (ret != -1 || strcmp(err, c->error) != 0) {
			fail_msg("%s: ret %d error '%s'", c->name, ret, err ? err : "(null)");
		}
		buf_free(&out);
	}
}

static void test_name_limits(void **state)
{
	(void)state;
	char name[MUTF7_NAME_MAX + 2];
	struct buf out;
	const char *err = NULL;

	memset(name, 'x', sizeof(name));
	buf_init(&out, MUTF7_NAME_MAX);
	assert_int_equal(mutf7_mailbox_check(name, MUTF7_NAME_MAX, &out, &err), 0);
	assert_int_equal(out.len, MUTF7_NAME_MAX);
	buf_reset(&out);
	assert_int_equal(mutf7_mailbox_check(name, MUTF7_NAME_MAX + 1, &out, &err), -1);
	assert_string_equal(err, "mailbox name too long");

	/* 64 levels "a/a/.../a" is fine, 65 is not. */
	size_t n = 0;
	for (int k = 0; k < MUTF7_LEVELS_MAX; k++) {
		name[n++] = 'a';
		name[n++] = '/';
	}
	buf_reset(&out);
	assert_int_equal(mutf7_mailbox_check(name, n - 1, &out, &err), 0);
	name[n] = 'a';
	buf_reset(&out);
	assert_int_equal(mutf7_mailbox_check(name, n + 1, &out, &err), -1);
	assert_string_equal(err, "mailbox name has too many levels");
	buf_free(&out);

	/* Output cap smaller than the name. */
	buf_init(&out, 3);
	assert_int_equal(mutf7_mailbox_check("inbox", 5, &out, &err), -1);
	assert_string_equal(err, "mailbox name too long");
	buf_free(&out);
}

static void test_utf8_valid(void **state)
{
	(void)state;
	assert_true(mutf7_utf8_valid("", 0));
	assert_true(mutf7_utf8_valid("\xf0\x9f\x98\x80", 4));
	assert_false(mutf7_utf8_valid("\xf0\x9f\x98", 3));
	assert_false(mutf7_utf8_valid("\xe0\x80\x80", 3));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_pairs),
		cmocka_unit_test(test_bad_decode),
		cmocka_unit_test(test_bad_encode),
		cmocka_unit_test(test_output_cap),
		cmocka_unit_test(test_names),
		cmocka_unit_test(test_name_limits),
		cmocka_unit_test(test_utf8_valid),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
