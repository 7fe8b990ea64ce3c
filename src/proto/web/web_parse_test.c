/* web_parse_test.c - Cookie headers, form bodies, Accept-Encoding. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "proto/web/web_parse.h"

static void test_cookie_table(void **state)
{
	static const struct {
		const char *header, *name;
		int rc;
		const char *want;
	} cases[] = {
		{"yubin_session=abc", "yubin_session", 1, "abc"},
		{"a=1; yubin_session=abc; b=2", "yubin_session", 1, "abc"},
		{"a=1;yubin_session=abc", "yubin_session", 1, "abc"},
		{"  yubin_session = abc  ;", "yubin_session", 1, "abc"},
		{"yubin_session=\"abc\"", "yubin_session", 1, "abc"},
		{"yubin_session=", "yubin_session", 1, ""},
		{"yubin_session=a; yubin_session=b", "yubin_session", 1, "a"},
		{"x_yubin_session=abc", "yubin_session", 0, ""},
		{"yubin_session_x=abc", "yubin_session", 0, ""},
		{"Yubin_Session=abc", "yubin_session", 0, ""},
		{"yubin_session", "yubin_session", 0, ""},
		{"garbage; ;; =x; yubin_session=ok", "yubin_session", 1, "ok"},
		{"", "yubin_session", 0, ""},
		{"yubin_session=a b", "yubin_session", -1, ""},
		{"yubin_session=a\\b", "yubin_session", -1, ""},
		{"yubin_session=\"ab", "yubin_session", -1, ""},
		{"yubin_session=0123456789abcdef0", "yubin_session", -1, ""},   /* > 16 */
		{"yubin_session=0123456789abcdef", "yubin_session", -1, ""},    /* = 16: no NUL room */
		{"yubin_session=0123456789abcde", "yubin_session", 1, "0123456789abcde"},
	};
	(void)state;
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		char out[16];
		int rc = web_parse_cookie(cases[i].header, cases[i].name, out, sizeof out);
		if (rc != cases[i].rc)
			fail_msg("cookie \"%s\": rc %d, want %d", cases[i].header, rc, cases[i].rc);
		if (rc == 1 && strcmp(out, cases[i].want) != 0)
			fail_msg("cookie \"%s\": got \"%s\", want \"%s\"", cases[i].header, out,
				 cases[i].want);
	}
	char out[8];
	assert_int_equal(web_parse_cookie(NULL, "a", out, sizeof out), 0);
	assert_int_equal(web_parse_cookie("a=1", "a", out, 0), -1);
}

static void test_form_table(void **state)
{
	static const struct {
		const char *body, *name;
		int rc;
		const char *want;
	} cases[] = {
		{"user=demo%40ex.test&password=p", "user", 1, "demo@ex.test"},
		{"user=demo%40ex.test&password=p", "password", 1, "p"},
		{"password=a+b%2Bc%26d%3d", "password", 1, "a b+c&d="},
		{"a=1&&user=x", "user", 1, "x"},
		{"user", "user", 1, ""},
		{"user=", "user", 1, ""},
		{"us%65r=x", "user", 1, "x"},          /* the key is decoded too */
		{"username=x", "user", 0, ""},
		{"", "user", 0, ""},
		{"user=%4", "user", -1, ""},
		{"user=%zz", "user", -1, ""},
		{"user=%00", "user", -1, ""},
		{"user=%c3%a9", "user", 1, "\xc3\xa9"},
		{"%zz=1&user=ok", "user", 1, "ok"},    /* an unreadable key is skipped */
		{"user=0123456789abcdef", "user", -1, ""},
		{"user=0123456789abcde", "user", 1, "0123456789abcde"},
	};
	(void)state;
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		char out[16];
		int rc = web_parse_form(cases[i].body, strlen(cases[i].body), cases[i].name, out,
					sizeof out);
		if (rc != cases[i].rc)
			fail_msg("form \"%s\": rc %d, want %d", cases[i].body, rc, cases[i].rc);
		if (rc == 1 && strcmp(out, cases[i].want) != 0)
			fail_msg("form \"%s\": got \"%s\", want \"%s\"", cases[i].body, out,
				 cases[i].want);
	}
	/* the length bounds the body: no reading past it */
	char out[16];
	assert_int_equal(web_parse_form("user=abcdef", 7, "user", out, sizeof out), 1);
	assert_string_equal(out, "ab");
	assert_int_equal(web_parse_form("user=a%41", 8, "user", out, sizeof out), -1);
}

static void test_accept_encoding_table(void **state)
{
	static const struct {
		const char *header;
		bool want;
	} cases[] = {
		{"gzip", true},
		{"gzip, deflate, br", true},
		{"deflate, gzip;q=0.5", true},
		{"br;q=1.0, GZIP", true},
		{"x-gzip", true},
		{"*", true},
		{"*;q=0.1", true},
		{"gzip;q=0", false},
		{"gzip; q=0.000", false},
		{"gzip;q=0, *", false},                /* refused by name */
		{"*;q=0", false},
		{"identity", false},
		{"deflate, br", false},
		{"gzipped", false},
		{"", false},
		{",,, ;;", false},
		{"gzip;q=0.001", true},
	};
	(void)state;
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
		if (web_parse_accepts_gzip(cases[i].header) != cases[i].want)
			fail_msg("Accept-Encoding \"%s\": want %s", cases[i].header,
				 cases[i].want ? "gzip" : "no gzip");
	assert_false(web_parse_accepts_gzip(NULL));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_cookie_table),
		cmocka_unit_test(test_form_table),
		cmocka_unit_test(test_accept_encoding_table),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
