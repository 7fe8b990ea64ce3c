/* util_test.c - base64, case helpers, queue ids, dates. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "core/util.h"

static void test_base64_table(void **state)
{
	(void)state;
	static const struct {
		const char *plain, *b64;
	} cases[] = {
		{"", ""}, {"f", "Zg=="}, {"fo", "Zm8="}, {"foo", "Zm9v"},
		{"foob", "Zm9vYg=="}, {"fooba", "Zm9vYmE="}, {"foobar", "Zm9vYmFy"},
	};
	for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
		char enc[64];
		unsigned char dec[64];
		base64_encode((const unsigned char *)cases[i].plain, strlen(cases[i].plain), enc);
		assert_string_equal(enc, cases[i].b64);
		long n = base64_decode(cases[i].b64, strlen(cases[i].b64), dec);
		assert_int_equal(n, (long)strlen(cases[i].plain));
		assert_memory_equal(dec, cases[i].plain, (size_t)n);
	}
}

static void test_base64_bad(void **state)
{
	(void)state;
	static const char *const bad[] = {"Zg=", "Z===", "Zm9v!A==", "=Zm9", "Zg==Zg==", "Zm 9"};
	for (size_t i = 0; i < ARRAY_LEN(bad); i++) {
		unsigned char out[64];
		assert_int_equal(base64_decode(bad[i], strlen(bad[i]), out), -1);
	}
}

static void test_case_helpers(void **state)
{
	(void)state;
	assert_true(str_ieq("Example.TEST", "example.test"));
	assert_false(str_ieq("example.tes", "example.test"));
	assert_true(str_iprefix("MAIL FROM:<a>", "mail from:"));
	assert_false(str_iprefix("MAI", "mail"));
	char s[] = "DeMo@EXAMPLE.test";
	str_lower(s);
	assert_string_equal(s, "demo@example.test");
}

static void test_queue_id_unique(void **state)
{
	(void)state;
	char prev[17] = "";
	for (int i = 0; i < 1000; i++) {
		char id[17];
		queue_id_new(id);
		assert_int_equal(strlen(id), 16);
		assert_string_not_equal(id, prev);
		memcpy(prev, id, sizeof id);
	}
}

static int cmp_id(const void *a, const void *b)
{
	return strcmp(a, b);
}

/* Thousands of ids a second (an IMAP MULTIAPPEND, a burst of mail) never
 * repeat: 60,000 made as fast as possible are all different. */
static void test_queue_id_burst(void **state)
{
	(void)state;
	enum { N = 60000 };
	char (*ids)[17] = calloc(N, 17);
	assert_non_null(ids);
	for (int i = 0; i < N; i++)
		queue_id_new(ids[i]);
	qsort(ids, N, 17, cmp_id);
	for (int i = 1; i < N; i++)
		assert_string_not_equal(ids[i], ids[i - 1]);
	free(ids);
}

static void test_date(void **state)
{
	(void)state;
	char d[64];
	rfc5322_date(0, d, sizeof d);
	/* "Thu, 1 Jan 1970 00:00:00 +0000" in UTC; the zone follows TZ. */
	assert_non_null(strstr(d, "1970"));
	assert_int_equal(d[3], ',');
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_base64_table),
		cmocka_unit_test(test_base64_bad),
		cmocka_unit_test(test_case_helpers),
		cmocka_unit_test(test_queue_id_unique),
		cmocka_unit_test(test_queue_id_burst),
		cmocka_unit_test(test_date),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
