/* jmap_types_test.c - dates and keywords. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "proto/jmap/jmap_types.h"
#include "store/store.h"

static void test_dates(void **state)
{
	(void)state;
	static const struct {
		const char *in;
		bool utc;
		bool ok;
		int64_t t;
	} cases[] = {
		{"2026-12-02T01:02:03Z", true, true, 1796173323},
		{"2026-12-02T01:02:03.123456Z", true, true, 1796173323},
		{"2026-12-02T10:02:03+09:00", false, true, 1796173323},
		{"2026-12-01T20:02:03-05:00", false, true, 1796173323},
		{"2026-12-02T10:02:03+09:00", true, false, 0},     /* UTCDate: Z only */
		{"1970-01-01T00:00:00Z", true, true, 0},
		{"2024-02-29T00:00:00Z", true, true, 1709164800},   /* leap day */
		{"2026-02-29T00:00:00Z", true, false, 0},
		{"2026-04-31T00:00:00Z", true, false, 0},
		{"2026-13-01T00:00:00Z", true, false, 0},
		{"2026-00-01T00:00:00Z", true, false, 0},
		{"2026-12-02T24:00:00Z", true, false, 0},
		{"2026-12-02T23:60:00Z", true, false, 0},
		{"2026-12-02T23:59:60Z", true, true, 1796255999 + 1},
		{"2026-12-02T01:02:03", true, false, 0},            /* no zone */
		{"2026-12-02T01:02:03z", true, false, 0},
		{"2026-12-02 01:02:03Z", true, false, 0},
		{"2026-12-02T01:02:03.Z", true, false, 0},
		{"2026-12-02T01:02:03Zjunk", true, false, 0},
		{"2026-12-02T01:02:03+0900", false, false, 0},
		{"2026-12-02T01:02:03+24:00", false, false, 0},
		{"26-12-02T01:02:03Z", true, false, 0},
		{"", true, false, 0},
		{"+026-12-02T01:02:03Z", true, false, 0},
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		int64_t t = -1;
		bool ok = jmap_date_parse(cases[i].in, cases[i].utc, &t);
		if (ok != cases[i].ok)
			fail_msg("%s: %s", cases[i].in, ok ? "accepted" : "refused");
		if (ok && t != cases[i].t)
			fail_msg("%s: %lld, not %lld", cases[i].in, (long long)t,
				 (long long)cases[i].t);
	}
	int64_t t;
	assert_false(jmap_date_parse(NULL, true, &t));
}

static void test_keywords(void **state)
{
	(void)state;
	assert_true(jmap_keyword_ok("$seen"));
	assert_true(jmap_keyword_ok("$MDNSent"));
	assert_true(jmap_keyword_ok("work-2026"));
	assert_false(jmap_keyword_ok(""));
	assert_false(jmap_keyword_ok("two words"));
	assert_false(jmap_keyword_ok("a(b"));
	assert_false(jmap_keyword_ok("\\Seen"));
	assert_false(jmap_keyword_ok("quo\"te"));
	assert_false(jmap_keyword_ok("caf\xc3\xa9"));
	char kw[STORE_KEYWORD_LEN_MAX + 2];
	memset(kw, 'k', sizeof kw - 1);
	kw[STORE_KEYWORD_LEN_MAX] = '\0';
	assert_true(jmap_keyword_ok(kw));                  /* at the cap */
	kw[STORE_KEYWORD_LEN_MAX] = 'k';
	kw[STORE_KEYWORD_LEN_MAX + 1] = '\0';
	assert_false(jmap_keyword_ok(kw));                 /* one past */
	assert_int_equal(jmap_keyword_flag("$seen"), FLAG_SEEN);
	assert_int_equal(jmap_keyword_flag("$Flagged"), FLAG_FLAGGED);
	assert_int_equal(jmap_keyword_flag("$answered"), FLAG_ANSWERED);
	assert_int_equal(jmap_keyword_flag("$draft"), FLAG_DRAFT);
	assert_int_equal(jmap_keyword_flag("$junk"), 0);
	assert_string_equal(jmap_flag_keyword(FLAG_SEEN), "$seen");
	assert_null(jmap_flag_keyword(0));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_dates),
		cmocka_unit_test(test_keywords),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
