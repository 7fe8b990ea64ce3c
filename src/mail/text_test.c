/* text_test.c - the searchable text of messages. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "core/util.h"
#include "mail/text.h"

static const struct {
	const char *msg;
	const char *want[4];    /* substrings the text must contain */
	const char *not;        /* and one it must not */
} cases[] = {
	{"Subject: plain\r\n\r\nHello world\r\n", {"plain", "Hello world"}, NULL},
	{"Subject: =?UTF-8?B?5pel5pys6Kqe?=\r\n\r\nx\r\n", {"\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e"},
	 "=?UTF-8"},
	{"Subject: b64\r\nContent-Type: text/plain; charset=utf-8\r\n"
	 "Content-Transfer-Encoding: base64\r\n\r\naGVsbG8gYmFzZTY0\r\n", {"hello base64"}, "aGVs"},
	{"Subject: qp\r\nContent-Type: text/plain; charset=iso-8859-1\r\n"
	 "Content-Transfer-Encoding: quoted-printable\r\n\r\n=E9t=E9 soft=\r\nbreak\r\n",
	 {"\xc3\xa9t\xc3\xa9", "softbreak"}, NULL},
	{"Subject: jis\r\nContent-Type: text/plain; charset=ISO-2022-JP\r\n\r\n"
	 "\x1b$BF|K\\\x1b(B\r\n", {"\xe6\x97\xa5\xe6\x9c\xac"}, "\x1b$B"},
	{"Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\n"
	 "first part\r\n--b\r\nContent-Type: image/png\r\nContent-Transfer-Encoding: base64\r\n\r\n"
	 "iVBORw0KGgo=\r\n--b\r\nContent-Type: message/rfc822\r\n\r\nSubject: inner subject\r\n\r\n"
	 "inner body\r\n--b--\r\n", {"first part", "inner subject", "inner body"}, "iVBOR"},
};

static void test_extract(void **state)
{
	(void)state;
	for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
		struct buf b;
		buf_init(&b, 1 << 20);
		assert_int_equal(mail_text_extract(cases[i].msg, strlen(cases[i].msg), &b), 1);
		assert_non_null(b.data);
		for (size_t k = 0; k < 4 && cases[i].want[k]; k++)
			if (!strstr(b.data, cases[i].want[k]))
				fail_msg("case %zu: \"%s\" not in \"%s\"", i, cases[i].want[k], b.data);
		if (cases[i].not && strstr(b.data, cases[i].not))
			fail_msg("case %zu: \"%s\" should not be in \"%s\"", i, cases[i].not, b.data);
		buf_free(&b);
	}
}

/* Text that does not fit is reported as incomplete. */
static void test_cap(void **state)
{
	(void)state;
	const char *m = "Subject: long\r\n\r\n0123456789012345678901234567890123456789\r\n";
	struct buf b;
	buf_init(&b, 20);
	assert_int_equal(mail_text_extract(m, strlen(m), &b), 0);
	assert_true(b.len <= 20);
	buf_free(&b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_extract),
		cmocka_unit_test(test_cap),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
