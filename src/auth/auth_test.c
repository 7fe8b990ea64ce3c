/* auth_test.c - password hashes, SASL PLAIN decoding, APOP and logins. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "auth/auth.h"
#include "core/log.h"
#include "core/util.h"
#include "store/store.h"

static void test_hash_verify(void **state)
{
	char *h = auth_hash_password("correct horse");

	assert_non_null(h);
	assert_true(strncmp(h, "$argon2id$", 10) == 0);
	assert_true(auth_verify_password(h, "correct horse"));
	assert_false(auth_verify_password(h, "correct horsE"));
	assert_false(auth_verify_password(h, ""));
	assert_false(auth_verify_password("garbage", "correct horse"));
	assert_false(auth_verify_password(NULL, "x"));
	free(h);
}

static char *b64(const char *raw, size_t len)
{
	char *out = xmalloc(4 * ((len + 2) / 3) + 1);

	base64_encode((const unsigned char *)raw, len, out);
	return out;
}

static void test_sasl_plain(void **state)
{
	static const struct {
		const char *name;
		const char *raw;        /* decoded message, may contain NULs */
		size_t rawlen;
		const char *b64;        /* used instead of raw when set */
		int want;
		const char *authzid, *authcid, *passwd;
	} cases[] = {
		{ "valid", "\0tim\0tanstaaftanstaaf", 21, NULL, 0, "", "tim", "tanstaaftanstaaf" },
		{ "authzid", "Ursel\0Kurt\0xipj3plmq", 20, NULL, 0, "Ursel", "Kurt", "xipj3plmq" },
		{ "bad base64", NULL, 0, "AHRpbQB0YW5z!GFhZg==", -1, NULL, NULL, NULL },
		{ "truncated base64", NULL, 0, "AHRpbQB0YW5zdGFhZg=", -1, NULL, NULL, NULL },
		{ "empty", NULL, 0, "", -1, NULL, NULL, NULL },
		{ "missing NUL", "\0timtanstaaf", 12, NULL, -1, NULL, NULL, NULL },
		{ "no NUL", "timtanstaaf", 11, NULL, -1, NULL, NULL, NULL },
		{ "too many NULs", "\0tim\0tans\0taaf", 15, NULL, -1, NULL, NULL, NULL },
		{ "trailing NUL", "\0tim\0tanstaaf\0", 14, NULL, -1, NULL, NULL, NULL },
		{ "empty password", "\0tim\0", 5, NULL, -1, NULL, NULL, NULL },
		{ "empty authcid", "\0\0secret", 8, NULL, -1, NULL, NULL, NULL },
	};

	for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
		char *in = cases[i].b64 ? xstrdup(cases[i].b64)
					: b64(cases[i].raw, cases[i].rawlen);
		char *buf = (char *)1;
		const char *zid = NULL, *cid = NULL, *pw = NULL;
		int r;

		print_message("case %s\n", cases[i].name);
		r = sasl_plain_decode(in, &buf, &zid, &cid, &pw);
		assert_int_equal(r, cases[i].want);
		if (r == 0) {
			assert_string_equal(zid, cases[i].authzid);
			assert_string_equal(cid, cases[i].authcid);
			assert_string_equal(pw, cases[i].passwd);
			auth_wipe(buf, strlen(zid) + strlen(cid) + strlen(pw) + 3);
		} else {
			assert_null(buf);
		}
		free(in);
	}
}

static void test_sasl_plain_cap(void **state)
{
	/* 1024 base64 characters = 768 bytes: accepted; 1028: refused */
	char raw[800];
	char *in, *buf;
	const char *zid, *cid, *pw;

	memset(raw, 'p', sizeof(raw));
	raw[0] = '\0';
	raw[1] = 'u';
	raw[2] = '\0';
	in = b64(raw, 768);
	assert_int_equal(strlen(in), 1024);
	assert_int_equal(sasl_plain_decode(in, &buf, &zid, &cid, &pw), 0);
	assert_string_equal(cid, "u");
	assert_int_equal(strlen(pw), 765);
	auth_wipe(buf, 769);
	free(in);

	in = b64(raw, 771);
	assert_int_equal(strlen(in), 1028);
	assert_int_equal(sasl_plain_decode(in, &buf, &zid, &cid, &pw), -1);
	assert_null(buf);
	free(in);
}

struct fixture {
	char dir[64];
	struct store *st;
};

static int setup(void **state)
{
	struct fixture *f = xcalloc(1, sizeof(*f));
	char *err = NULL, *h;

	snprintf(f->dir, sizeof(f->dir), "/tmp/yubin-auth-test-XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	assert_int_equal(store_open(f->dir, &f->st, &err), 0);
	assert_int_equal(store_domain_add(f->st, "example.test", &err), 0);
	h = auth_hash_password("s3cret pass");
	assert_non_null(h);
	assert_int_equal(store_account_add(f->st, "demo@example.test", h, &err), 0);
	free(h);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	char cmd[128];

	store_close(&f->st);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", f->dir);
	assert_int_equal(system(cmd), 0);
	free(f);
	return 0;
}

static void test_login(void **state)
{
	static const struct {
		const char *name, *address, *password;
		int want;
	} cases[] = {
		{ "good", "demo@example.test", "s3cret pass", 1 },
		{ "good any case", "DEMO@Example.Test", "s3cret pass", 1 },
		{ "bad password", "demo@example.test", "s3cret pasS", 0 },
		{ "no such user", "nobody@example.test", "s3cret pass", 0 },
		{ "not an address", "demo", "s3cret pass", 0 },
	};
	struct fixture *f = *state;

	for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
		struct account a;
		int r;

		print_message("case %s\n", cases[i].name);
		r = auth_login(f->st, cases[i].address, cases[i].password, &a);
		assert_int_equal(r, cases[i].want);
		if (r == 1) {
			assert_string_equal(a.address, "demo@example.test");
			assert_true(a.inbox_id > 0);
			account_free(&a);
		}
	}
}

static void test_apop(void **state)
{
	/* RFC 1939 sect. 7 */
	static const char ts[] = "<1896.697170952@dbc.mtview.ca.us>";
	static const struct {
		const char *name, *digest;
		int want;
	} cases[] = {
		{ "rfc 1939", "c4c9334bac560ecc979e58001b3e22fb", 1 },
		{ "upper case", "C4C9334BAC560ECC979E58001B3E22FB", 1 },
		{ "wrong", "c4c9334bac560ecc979e58001b3e22fc", 0 },
		{ "short", "c4c9334bac560ecc979e58001b3e22f", 0 },
		{ "long", "c4c9334bac560ecc979e58001b3e22fbb", 0 },
		{ "empty", "", 0 },
	};
	struct fixture *f = *state;
	struct account a;
	char *err = NULL;

	/* no secret yet: always fails */
	assert_int_equal(auth_apop(f->st, "demo@example.test", ts, cases[0].digest, &a), 0);
	assert_int_equal(store_account_set_apop(f->st, "demo@example.test", "tanstaaf", &err), 0);
	for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
		int r;

		print_message("case %s\n", cases[i].name);
		r = auth_apop(f->st, "demo@example.test", ts, cases[i].digest, &a);
		assert_int_equal(r, cases[i].want);
		if (r == 1) {
			assert_string_equal(a.address, "demo@example.test");
			account_free(&a);
		}
	}
	assert_int_equal(auth_apop(f->st, "nobody@example.test", ts, cases[0].digest, &a), 0);
	/* a different timestamp gives a different digest */
	assert_int_equal(auth_apop(f->st, "demo@example.test", "<1.2@x>", cases[0].digest, &a), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_hash_verify),
		cmocka_unit_test(test_sasl_plain),
		cmocka_unit_test(test_sasl_plain_cap),
		cmocka_unit_test_setup_teardown(test_login, setup, teardown),
		cmocka_unit_test_setup_teardown(test_apop, setup, teardown),
	};

	log_init("auth_test", LOG_WARN);
	if (auth_init() < 0)
		return 1;
	return cmocka_run_group_tests(tests, NULL, NULL);
}
