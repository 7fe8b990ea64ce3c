/* buf_test.c - the bounded buffer never exceeds max. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "core/buf.h"

static void test_append_within_max(void **state)
{
	(void)state;
	struct buf b;
	buf_init(&b, 10);
	assert_int_equal(buf_append(&b, "hello", 5), 0);
	assert_int_equal(buf_append(&b, "world", 5), 0);
	assert_int_equal(b.len, 10);
	assert_string_equal(b.data, "helloworld");
	assert_int_equal(buf_room(&b), 0);
	/* One more byte is refused and nothing changes. */
	assert_int_equal(buf_append(&b, "!", 1), -1);
	assert_int_equal(b.len, 10);
	assert_string_equal(b.data, "helloworld");
	buf_free(&b);
}

static void test_printf_and_cap(void **state)
{
	(void)state;
	struct buf b;
	buf_init(&b, 2000);
	assert_int_equal(buf_printf(&b, "%d-%s", 42, "x"), 0);
	assert_string_equal(b.data, "42-x");
	char big[1500];
	memset(big, 'a', sizeof big - 1);
	big[sizeof big - 1] = '\0';
	assert_int_equal(buf_printf(&b, "%s", big), 0); /* > 512: second path */
	assert_int_equal(b.len, 4 + 1499);
	assert_int_equal(buf_printf(&b, "%s", big), -1);
	assert_int_equal(b.len, 4 + 1499);
	buf_free(&b);
}

static void test_consume_and_steal(void **state)
{
	(void)state;
	struct buf b;
	buf_init(&b, 100);
	buf_append_str(&b, "abcdef");
	buf_consume(&b, 2);
	assert_string_equal(b.data, "cdef");
	buf_consume(&b, 100);
	assert_int_equal(b.len, 0);
	buf_append_str(&b, "xyz");
	size_t len;
	char *p = buf_steal(&b, &len);
	assert_int_equal(len, 3);
	assert_string_equal(p, "xyz");
	assert_null(b.data);
	free(p);
	buf_free(&b);
}

static void test_huge_request_refused(void **state)
{
	(void)state;
	struct buf b;
	buf_init(&b, 1000);
	/* A length near SIZE_MAX must not wrap the check. */
	assert_int_equal(buf_append(&b, "x", SIZE_MAX), -1);
	assert_int_equal(buf_append(&b, "x", 1001), -1);
	assert_null(b.data);
	buf_free(&b);
}

/* buf_init(b, SIZE_MAX): "no limit" must still allocate (max + 1 wrapped
 * to 0 once) and refuse a length that would wrap. */
static void test_unlimited(void **state)
{
	(void)state;
	struct buf b;
	buf_init(&b, SIZE_MAX);
	for (int i = 0; i < 1000; i++)
		assert_int_equal(buf_append(&b, "0123456789", 10), 0);
	assert_int_equal(b.len, 10000);
	assert_int_equal(b.data[9999], '9');
	assert_int_equal(buf_append(&b, "x", SIZE_MAX - 5), -1);
	assert_int_equal(b.len, 10000);
	buf_free(&b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_append_within_max),
		cmocka_unit_test(test_printf_and_cap),
		cmocka_unit_test(test_consume_and_steal),
		cmocka_unit_test(test_huge_request_refused),
		cmocka_unit_test(test_unlimited),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
