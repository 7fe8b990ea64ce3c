/* smtp_submit_test.c - smtp_submit_sysexit: a submission's outcome as
 * sendmail(8)'s exit status (sysexits.h), table-driven; and net_connect_unix
 * against a socket that is not there. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "client/net.h"
#include "client/smtp_submit.h"

static void test_sysexit(void **state)
{
	(void)state;
	static const struct {
		enum smtp_submit_fail fail;
		int code;
		const char *enh;
		int want;
	} cases[] = {
		{SMTP_SUBMIT_FAIL_NONE, 0, "", 0},
		{SMTP_SUBMIT_FAIL_ARGS, 0, "", 65},
		{SMTP_SUBMIT_FAIL_SIZE, 0, "", 65},
		{SMTP_SUBMIT_FAIL_CONFIG, 0, "", 78},
		{SMTP_SUBMIT_FAIL_CONNECT, 0, "", 75},
		{SMTP_SUBMIT_FAIL_NETWORK, 0, "", 75},
		{SMTP_SUBMIT_FAIL_UNKNOWN, 0, "", 75},       /* may have been accepted */
		{SMTP_SUBMIT_FAIL_PROTOCOL, 0, "", 76},
		{SMTP_SUBMIT_FAIL_TLS, 0, "", 69},
		{SMTP_SUBMIT_FAIL_CAPS, 0, "", 69},
		{SMTP_SUBMIT_FAIL_SECURITY, 0, "", 69},
		{SMTP_SUBMIT_FAIL_REPLY, 421, "4.3.2", 75},
		{SMTP_SUBMIT_FAIL_REPLY, 451, "", 75},
		{SMTP_SUBMIT_FAIL_REPLY, 452, "4.5.3", 75},
		{SMTP_SUBMIT_FAIL_REPLY, 550, "5.1.1", 67},
		{SMTP_SUBMIT_FAIL_REPLY, 553, "5.1.3", 67},
		{SMTP_SUBMIT_FAIL_REPLY, 552, "5.3.4", 65},
		{SMTP_SUBMIT_FAIL_REPLY, 554, "5.6.0", 65},
		{SMTP_SUBMIT_FAIL_REPLY, 554, "5.7.1", 77},
		{SMTP_SUBMIT_FAIL_REPLY, 530, "5.7.0", 77},
		{SMTP_SUBMIT_FAIL_REPLY, 552, "5.2.2", 69},  /* mailbox full: not the message */
		{SMTP_SUBMIT_FAIL_REPLY, 554, "", 69},       /* no enhanced status */
		{SMTP_SUBMIT_FAIL_REPLY, 550, "4.1.1", 69},  /* a status of another class */
		{SMTP_SUBMIT_FAIL_REPLY, 550, "5.3.40", 69}, /* not 5.3.4 */
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		struct smtp_submit_result r = {.fail = cases[i].fail, .code = cases[i].code};
		snprintf(r.enh, sizeof r.enh, "%s", cases[i].enh);
		int got = smtp_submit_sysexit(&r);
		if (got != cases[i].want)
			fail_msg("case %zu (fail %d, %d %s): got %d, want %d", i,
				 (int)cases[i].fail, cases[i].code, cases[i].enh, got,
				 cases[i].want);
	}
}

/* No socket: ENOENT for the caller, the path in the message; and the
 * whole submission says FAIL_CONNECT with that errno (exit 75). */
static void test_unix_missing(void **state)
{
	(void)state;
	char err[512];
	int e = -1;
	const char *path = "/nonexistent-yubin-test/submit.sock";
	struct net *n = net_connect_unix(path, 1000, &e, err, sizeof err);
	assert_null(n);
	assert_int_equal(e, ENOENT);
	assert_non_null(strstr(err, path));

	struct smtp_submit_result res;
	memset(&res, 0xff, sizeof res);
	struct smtp_submit_opts o = {.unix_path = path, .timeout = 1, .result = &res};
	const char *rcpt = "a@example.test";
	assert_int_equal(smtp_submit(&o, "b@example.test", &rcpt, 1, "Subject: x\n\nx\n", 14, err,
				     sizeof err), -1);
	assert_int_equal(res.fail, SMTP_SUBMIT_FAIL_CONNECT);
	assert_int_equal(res.sys_errno, ENOENT);
	assert_int_equal(smtp_submit_sysexit(&res), 75);

	/* an address that is not one: refused before connecting (65) */
	rcpt = "not an address";
	assert_int_equal(smtp_submit(&o, "b@example.test", &rcpt, 1, "x\n", 2, err, sizeof err),
			 -1);
	assert_int_equal(res.fail, SMTP_SUBMIT_FAIL_ARGS);
	assert_int_equal(smtp_submit_sysexit(&res), 65);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_sysexit),
		cmocka_unit_test(test_unix_missing),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
