/* conf_test.c - the config parser: values, units, errors naming line and key. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "core/conf.h"
#include "core/util.h"

static void test_defaults_and_values(void **state)
{
	(void)state;
	struct conf c;
	conf_defaults(&c);
	assert_int_equal(c.message_size_limit, 25 * 1024 * 1024);
	assert_int_equal(c.smtp_timeout, 300000);
	char *err = NULL;
	const char *text = "# comment\n"
			   "\n"
			   "hostname = mx.example.test\n"
			   "  message_size_limit=10k  \n"
			   "smtp_timeout = 250ms\n"
			   "pop3_timeout = 2m\n"
			   "command_timeout = 5\n"
			   "plaintext_auth = loopback\n"
			   "listen_smtp = 127.0.0.1:0, [::1]:25\n"
			   "listen_pop3 =\n";
	assert_int_equal(conf_load_string(&c, "t.conf", text, &err), 0);
	assert_string_equal(c.hostname, "mx.example.test");
	assert_int_equal(c.message_size_limit, 10240);
	assert_int_equal(c.smtp_timeout, 250);
	assert_int_equal(c.pop3_timeout, 120000);
	assert_int_equal(c.command_timeout, 5000);
	assert_int_equal(c.plaintext_auth, PLAINTEXT_LOOPBACK);
	assert_int_equal(c.listen_smtp.count, 2);
	assert_string_equal(c.listen_smtp.addr[1], "[::1]:25");
	assert_int_equal(c.listen_pop3.count, 0);
	conf_free(&c);
}

static void test_errors(void **state)
{
	(void)state;
	static const struct {
		const char *name, *text, *want;
	} cases[] = {
		{"unknown key", "hostname = a\nfrobnicate = 1\n", "t.conf:2: unknown key \"frobnicate\""},
		{"no equals", "hostname\n", "t.conf:1: expected \"key = value\""},
		{"twice", "hostname = a\nhostname = b\n", "t.conf:2: key hostname set twice"},
		{"bad enum", "plaintext_auth = maybe\n", "t.conf:1: plaintext_auth: \"maybe\" is not one of"},
		{"bad int", "smtp_max_recipients = 12x\n", "t.conf:1: smtp_max_recipients: \"12x\" is not"},
		{"range", "smtp_max_recipients = 0\n", "t.conf:1: smtp_max_recipients: \"0\" out of range"},
		{"unit", "smtp_timeout = 5 fortnights\n", "t.conf:1: smtp_timeout: \"5 fortnights\": unknown unit"},
		{"size unit", "message_size_limit = 5T\n", "t.conf:1: message_size_limit: \"5T\": unknown unit"},
		{"listen", "listen_smtp = localhost:25\n", "t.conf:1: listen_smtp: \"localhost:25\": bad IPv4"},
		{"port", "listen_smtp = 127.0.0.1:99999\n", "t.conf:1: listen_smtp: \"127.0.0.1:99999\": bad port"},
	};
	for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
		struct conf c;
		conf_defaults(&c);
		char *err = NULL;
		assert_int_equal(conf_load_string(&c, "t.conf", cases[i].text, &err), -1);
		if (strncmp(err, cases[i].want, strlen(cases[i].want)) != 0)
			fail_msg("%s: got \"%s\", want prefix \"%s\"", cases[i].name, err, cases[i].want);
		free(err);
		conf_free(&c);
	}
}

static void test_line_cap(void **state)
{
	(void)state;
	struct conf c;
	conf_defaults(&c);
	char *text = xmalloc(5000);
	memset(text, 'a', 4999);
	text[4999] = '\0';
	char *err = NULL;
	assert_int_equal(conf_load_string(&c, "t.conf", text, &err), -1);
	assert_non_null(strstr(err, "line longer than"));
	free(err);
	free(text);
	conf_free(&c);
}

static void test_check(void **state)
{
	(void)state;
	struct conf c;
	conf_defaults(&c);
	char *err = NULL;
	assert_int_equal(conf_load_string(&c, "t.conf", "tls_cert = /x.pem\n", &err), 0);
	assert_int_equal(conf_check(&c, &err), -1);
	assert_non_null(strstr(err, "tls_cert and tls_key"));
	free(err);
	conf_free(&c);
	conf_defaults(&c);
	assert_int_equal(conf_load_string(&c, "t.conf", "data_dir = relative\n", &err), 0);
	assert_int_equal(conf_check(&c, &err), -1);
	assert_non_null(strstr(err, "data_dir"));
	free(err);
	conf_free(&c);
}

static void test_hostname_and_words(void **state)
{
	(void)state;
	static const struct {
		const char *text;
		bool ok;
	} cases[] = {
		{"hostname = mx.example.test\n", true},
		{"hostname = localhost\n", true},
		{"hostname = a-b.c1.example\n", true},
		{"hostname = mx.example.test # primary MX\n", false},
		{"hostname = mx example\n", false},
		{"hostname = a..b\n", false},
		{"hostname = -a.example\n", false},
		{"hostname = a-.example\n", false},
		{"hostname = mx.example.\n", false},
		{"hostname = mx_1.example\n", false},
		{"hostname = \n", false},
		{"user = nobody # comment\n", false},
		{"postmaster = a@example.test #x\n", false},
		{"user = nobody\npostmaster = admin@example.test\n", true},
		{"local_submit_socket = /run/yubin/submit.sock\n", true},
		{"local_submit_socket =\n", true},                  /* off */
		{"local_submit_socket = run/submit.sock\n", false}, /* relative */
		{"local_submit_socket = /run/yubin/\n", false},     /* a directory */
		{"local_submit_socket = /run/x.sock # local\n", false},
		{"local_submit_socket = /aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
		 "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\n", false},   /* 112 > 107 */
	};
	for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
		struct conf c;
		conf_defaults(&c);
		char *err = NULL;
		assert_int_equal(conf_load_string(&c, "t.conf", cases[i].text, &err), 0);
		int r = conf_check(&c, &err);
		if ((r == 0) != cases[i].ok)
			fail_msg("%s: conf_check gave %d (%s)", cases[i].text, r, err ? err : "");
		free(err);
		conf_free(&c);
	}
	/* 63-octet labels pass, 64 do not */
	char host[80];
	memset(host, 'a', 63);
	strcpy(host + 63, ".example");
	assert_true(conf_valid_hostname(host));
	memset(host, 'a', 64);
	strcpy(host + 64, ".example");
	assert_false(conf_valid_hostname(host));
}

static void test_print_golden(void **state)
{
	(void)state;
	struct conf c;
	conf_defaults(&c);
	char *out = NULL;
	size_t outlen = 0;
	FILE *f = open_memstream(&out, &outlen);
	conf_print(&c, f);
	fclose(f);
	assert_non_null(strstr(out, "\nmessage_size_limit = 26214400\n"));
	assert_non_null(strstr(out, "\nsmtp_timeout = 300s\n"));
	assert_non_null(strstr(out, "\nplaintext_auth = never\n"));
	assert_non_null(strstr(out, "\nlisten_smtp = 127.0.0.1:25\n"));
	/* Printed config parses back to the same values. */
	struct conf c2;
	conf_defaults(&c2);
	char *err = NULL;
	assert_int_equal(conf_load_string(&c2, "printed", out, &err), 0);
	assert_int_equal(c2.message_size_limit, c.message_size_limit);
	free(out);
	conf_free(&c);
	conf_free(&c2);
}

static const char *example_path;

/* etc/yubin.conf.example documents every key, with its default. */
static void test_example_documents_every_key(void **state)
{
	(void)state;
	FILE *f = fopen(example_path, "r");
	assert_non_null(f);
	char *text = xmalloc(1 << 20);
	size_t n = fread(text, 1, (1 << 20) - 1, f);
	text[n] = '\0';
	fclose(f);
	struct conf c;
	conf_defaults(&c);
	char *out = NULL;
	size_t outlen = 0;
	FILE *m = open_memstream(&out, &outlen);
	conf_print(&c, m);
	fclose(m);
	char *save = NULL;
	for (char *line = strtok_r(out, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		char *eq = strstr(line, " = ");
		assert_non_null(eq);
		*eq = '\0';
		char want[128];
		snprintf(want, sizeof want, "\n#%s = ", line);
		if (strstr(text, want) == NULL)
			fail_msg("etc/yubin.conf.example does not document key %s", line);
	}
	free(out);
	free(text);
	conf_free(&c);
}

int main(int argc, char **argv)
{
	example_path = argc > 1 ? argv[1] : "etc/yubin.conf.example";
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_defaults_and_values),
		cmocka_unit_test(test_errors),
		cmocka_unit_test(test_line_cap),
		cmocka_unit_test(test_check),
		cmocka_unit_test(test_hostname_and_words),
		cmocka_unit_test(test_print_golden),
		cmocka_unit_test(test_example_documents_every_key),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
