/* mbox_test.c - what the mbox backends share: the Date parser (table)
 * and the flag letters. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <string.h>

#include "client/mbox.h"

static const struct {
	const char *in;
	bool ok;
	int64_t t;      /* Unix time */
	int off;        /* seconds east of UTC */
} dates[] = {
	{"Tue, 1 Dec 2026 10:00:00 +0900", true, 1796086800, 9 * 3600},
	{"1 Dec 2026 01:00:00 +0000", true, 1796086800, 0},
	{"  Tue ,  01 Dec 2026 01:00 GMT", true, 1796086800, 0},
	{"Mon, 30 Nov 2026 20:00:00 EST", true, 1796086800, -5 * 3600},
	{"01-Dec-2026 02:00:00 +0100", true, 1796086800, 3600},     /* INTERNALDATE */
	{" 1-Dec-2026 01:00:00 +0000", true, 1796086800, 0},
	{"Wed, 1 Jan 99 00:00:00 +0000", true, 915148800, 0},       /* 2-digit year */
	{"Wed, 1 Jan 49 00:00:00 +0000", true, 2493072000, 0},
	{"Fri, 1 Jan 100 00:00:00 +0000", true, 946684800, 0},      /* 3 digits: +1900 */
	{"1 Jan 1970 00:00:60 -0000", true, 60, 0},                 /* leap second */
	{"1 Jan 1970 00:00:00 +2400", true, 0, 0},                  /* bad zone: UTC */
	{"", false, 0, 0},
	{"Tue, 32 Dec 2026 10:00:00 +0900", false, 0, 0},
	{"Tue, 1 Foo 2026 10:00:00 +0900", false, 0, 0},
	{"Tue, 1 Dec 2026 24:00:00 +0900", false, 0, 0},
	{"Tue, 1 Dec 2026 10:60:00 +0900", false, 0, 0},
	{"Tue, 1 Dec 2026", false, 0, 0},
	{"1 Dec 7 10:00 +0000", false, 0, 0},
	{"yesterday", false, 0, 0},
};

static void t_dates(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof dates / sizeof dates[0]; i++) {
		int64_t t = -1;
		int off = -1;
		bool ok = mbox_parse_date(dates[i].in, &t, &off);
		if (ok != dates[i].ok)
			fail_msg("%s: parsed %d", dates[i].in, ok);
		if (ok && (t != dates[i].t || off != dates[i].off))
			fail_msg("%s: t %lld off %d, want %lld %d", dates[i].in, (long long)t, off,
				 (long long)dates[i].t, dates[i].off);
	}
}

static void t_letters(void **state)
{
	(void)state;
	char out[8];
	mbox_flags_letters(MBOX_DRAFT | MBOX_SEEN | MBOX_RECENT | MBOX_FLAGGED, out);
	assert_string_equal(out, "NSFD");
	mbox_flags_letters(0, out);
	assert_string_equal(out, "");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(t_dates),
		cmocka_unit_test(t_letters),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
