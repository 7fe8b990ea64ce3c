/* scram_test.c - SCRAM-SHA-256 (RFC 7677 vector, round trips, malformed
 * messages on both sides) and CRAM-MD5 (RFC 2195 example). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth/scram.h"
#include "core/log.h"
#include "core/util.h"

/* RFC 7677 sect. 3 */
#define RFC_CNONCE "rOprNGfwEbeRWgbNEkqO"
#define RFC_SNONCE "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0"
#define RFC_SALT "W22ZaJ0SNY7soEsUEjb6gQ=="
#define RFC_CLIENT_FIRST "n,,n=user,r=" RFC_CNONCE
#define RFC_SERVER_FIRST "r=" RFC_CNONCE RFC_SNONCE ",s=" RFC_SALT ",i=4096"
#define RFC_FINAL_WO "c=biws,r=" RFC_CNONCE RFC_SNONCE
#define RFC_PROOF "dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ="
#define RFC_CLIENT_FINAL RFC_FINAL_WO ",p=" RFC_PROOF
#define RFC_SERVER_FINAL "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4="
/* StoredKey and ServerKey computed independently (Python hashlib). */
#define RFC_STORED_KEY "WG5d8oPm3OtcPnkdi4Uo7BkeZkBFzpcXkuLmtbsT4qY="
#define RFC_SERVER_KEY "wfPLwcE6nTWhTAmQ7tl2KeoiWGPlZqQxSrmfPwDl2dU="
#define RFC_SECRET "SCRAM-SHA-256$4096:" RFC_SALT "$" RFC_STORED_KEY ":" RFC_SERVER_KEY

/* RFC 2195 sect. 2 */
#define CRAM_CHALLENGE "<1896.697170952@postoffice.reston.mci.net>"
#define CRAM_SECRET "tanstaaftanstaaf"
#define CRAM_DIGEST "b913a602c7eda7a495b4e6e7334d3890"

static size_t decode(const char *b64, unsigned char *out)
{
	long n = base64_decode(b64, strlen(b64), out);

	assert_true(n >= 0);
	return (size_t)n;
}

static char *rfc_secret(void)
{
	unsigned char salt[32];
	size_t n = decode(RFC_SALT, salt);

	assert_int_equal(n, 16);
	return scram_secret_make_salt("pencil", salt, n, 4096);
}

/* A server that has sent the RFC 7677 server-first-message. */
static struct scram_server *rfc_server(void)
{
	struct scram_server *s = scram_server_new();
	const char *err = NULL;
	char *out = NULL;

	scram_server_set_nonce(s, RFC_SNONCE);
	assert_int_equal(scram_server_client_first(s, RFC_CLIENT_FIRST, strlen(RFC_CLIENT_FIRST),
						   &err), 0);
	assert_int_equal(scram_server_first(s, RFC_SECRET, &out), 0);
	assert_string_equal(out, RFC_SERVER_FIRST);
	free(out);
	return s;
}

/* A client that has sent the RFC 7677 client-first-message. */
static struct scram_client *rfc_client(void)
{
	struct scram_client *c = scram_client_new("user", "pencil");

	scram_client_set_nonce(c, RFC_CNONCE);
	char *first = scram_client_first(c);
	assert_non_null(first);
	assert_string_equal(first, RFC_CLIENT_FIRST);
	free(first);
	return c;
}

static void test_rfc7677_secret(void **state)
{
	char *secret = rfc_secret();
	unsigned char salt[SCRAM_SALT_MAX], sk[SCRAM_KEY_LEN], vk[SCRAM_KEY_LEN], want[48];
	size_t salt_len = 0;
	unsigned iter = 0;

	assert_non_null(secret);
	assert_string_equal(secret, RFC_SECRET);
	assert_int_equal(scram_secret_parse(secret, &iter, salt, &salt_len, sk, vk), 0);
	assert_int_equal(iter, 4096);
	assert_int_equal(salt_len, decode(RFC_SALT, want));
	assert_memory_equal(salt, want, salt_len);
	assert_int_equal(decode(RFC_STORED_KEY, want), SCRAM_KEY_LEN);
	assert_memory_equal(sk, want, SCRAM_KEY_LEN);
	assert_int_equal(decode(RFC_SERVER_KEY, want), SCRAM_KEY_LEN);
	assert_memory_equal(vk, want, SCRAM_KEY_LEN);
	free(secret);
}

static void test_rfc7677_server(void **state)
{
	struct scram_server *s = scram_server_new();
	const char *err = NULL;
	char *out = NULL;
	char *secret = rfc_secret();

	assert_null(scram_server_authcid(s));
	scram_server_set_nonce(s, RFC_SNONCE);
	assert_int_equal(scram_server_client_first(s, RFC_CLIENT_FIRST, strlen(RFC_CLIENT_FIRST),
						   &err), 0);
	assert_string_equal(scram_server_authcid(s), "user");
	assert_string_equal(scram_server_authzid(s), "");
	assert_int_equal(scram_server_first(s, secret, &out), 0);
	assert_string_equal(out, RFC_SERVER_FIRST);
	free(out);
	assert_int_equal(scram_server_client_final(s, RFC_CLIENT_FINAL, strlen(RFC_CLIENT_FINAL),
						   &out, &err), 1);
	assert_string_equal(out, RFC_SERVER_FINAL);
	free(out);
	/* the exchange is over */
	assert_int_equal(scram_server_client_final(s, RFC_CLIENT_FINAL, strlen(RFC_CLIENT_FINAL),
						   &out, &err), -1);
	assert_null(out);
	scram_server_free(&s);
	assert_null(s);
	scram_server_free(&s);
	free(secret);
}

static void test_rfc7677_client(void **state)
{
	struct scram_client *c = rfc_client();
	const char *err = NULL;
	char *out = NULL;

	assert_int_equal(scram_client_verify(c, RFC_SERVER_FINAL, strlen(RFC_SERVER_FINAL)), 0);
	assert_int_equal(scram_client_final(c, RFC_SERVER_FIRST, strlen(RFC_SERVER_FIRST), &out,
					    &err), 0);
	assert_string_equal(out, RFC_CLIENT_FINAL);
	free(out);
	static const char *bad[] = {
		"v=7rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=",       /* one bit off */
		"v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4",        /* bad base64 */
		"v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl9",           /* short */
		"e=invalid-proof",
		"e=other-error,v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=",
		RFC_SERVER_FINAL ",",
		"v=",
		"",
		"x",
	};
	for (size_t i = 0; i < ARRAY_LEN(bad); i++) {
		print_message("case %s\n", bad[i]);
		assert_int_equal(scram_client_verify(c, bad[i], strlen(bad[i])), 0);
	}
	assert_int_equal(scram_client_verify(c, "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=\0",
					     sizeof(RFC_SERVER_FINAL)), 0);
	assert_int_equal(scram_client_verify(c, RFC_SERVER_FINAL, strlen(RFC_SERVER_FINAL)), 1);
	/* extensions after the verifier are ignored */
	assert_int_equal(scram_client_verify(c, RFC_SERVER_FINAL ",x=1",
					     strlen(RFC_SERVER_FINAL ",x=1")), 1);
	scram_client_free(&c);
	assert_null(c);
	scram_client_free(&c);
}

static void test_secret_make(void **state)
{
	char *a = scram_secret_make("pencil", 0);
	char *b = scram_secret_make("pencil", 0);
	char *c = scram_secret_make("pencil", 5000);
	unsigned char salt[SCRAM_SALT_MAX], sk[SCRAM_KEY_LEN], vk[SCRAM_KEY_LEN];
	size_t salt_len = 0;
	unsigned iter = 0;

	assert_non_null(a);
	assert_non_null(b);
	assert_non_null(c);
	assert_true(strncmp(a, "SCRAM-SHA-256$4096:", 19) == 0);
	assert_true(strncmp(c, "SCRAM-SHA-256$5000:", 19) == 0);
	assert_string_not_equal(a, b);  /* random salts */
	assert_int_equal(scram_secret_parse(a, &iter, salt, &salt_len, sk, vk), 0);
	assert_int_equal(iter, 4096);
	assert_int_equal(salt_len, SCRAM_SALT_LEN);
	assert_int_equal(scram_secret_parse(c, &iter, salt, &salt_len, sk, vk), 0);
	assert_int_equal(iter, 5000);
	/* the same password and salt give the same secret */
	char *again = scram_secret_make_salt("pencil", salt, salt_len, 5000);
	assert_string_equal(again, c);
	free(again);
	free(a);
	free(b);
	free(c);
}

static void test_secret_parse_bad(void **state)
{
#define K32 "WG5d8oPm3OtcPnkdi4Uo7BkeZkBFzpcXkuLmtbsT4qY="
	static const struct {
		const char *name, *secret;
	} cases[] = {
		{ "empty", "" },
		{ "other scheme", "SCRAM-SHA-1$4096:" RFC_SALT "$" K32 ":" K32 },
		{ "lower case scheme", "scram-sha-256$4096:" RFC_SALT "$" K32 ":" K32 },
		{ "dovecot shape", "{SCRAM-SHA-256}4096," RFC_SALT "," K32 "," K32 },
		{ "no iterations", "SCRAM-SHA-256$:" RFC_SALT "$" K32 ":" K32 },
		{ "iterations low", "SCRAM-SHA-256$4095:" RFC_SALT "$" K32 ":" K32 },
		{ "iterations high", "SCRAM-SHA-256$1000001:" RFC_SALT "$" K32 ":" K32 },
		{ "iterations huge", "SCRAM-SHA-256$99999999999:" RFC_SALT "$" K32 ":" K32 },
		{ "iterations sign", "SCRAM-SHA-256$+4096:" RFC_SALT "$" K32 ":" K32 },
		{ "iterations zero-padded", "SCRAM-SHA-256$04096:" RFC_SALT "$" K32 ":" K32 },
		{ "empty salt", "SCRAM-SHA-256$4096:$" K32 ":" K32 },
		{ "bad salt", "SCRAM-SHA-256$4096:W22ZaJ0SNY7soEsUEjb6gQ=$" K32 ":" K32 },
		{ "salt too long", "SCRAM-SHA-256$4096:" K32 K32 "$" K32 ":" K32 },
		{ "short stored key", "SCRAM-SHA-256$4096:" RFC_SALT "$" RFC_SALT ":" K32 },
		{ "short server key", "SCRAM-SHA-256$4096:" RFC_SALT "$" K32 ":" RFC_SALT },
		{ "missing server key", "SCRAM-SHA-256$4096:" RFC_SALT "$" K32 },
		{ "empty server key", "SCRAM-SHA-256$4096:" RFC_SALT "$" K32 ":" },
		{ "trailing", "SCRAM-SHA-256$4096:" RFC_SALT "$" K32 ":" K32 "x" },
		{ "trailing field", "SCRAM-SHA-256$4096:" RFC_SALT "$" K32 ":" K32 ":" K32 },
		{ "missing $", "SCRAM-SHA-256$4096:" RFC_SALT K32 ":" K32 },
	};
	unsigned char salt[SCRAM_SALT_MAX], sk[SCRAM_KEY_LEN], vk[SCRAM_KEY_LEN];
	size_t salt_len;
	unsigned iter;

	for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
		print_message("case %s\n", cases[i].name);
		assert_int_equal(scram_secret_parse(cases[i].secret, &iter, salt, &salt_len, sk,
						    vk), -1);
	}
	assert_int_equal(scram_secret_parse(NULL, &iter, salt, &salt_len, sk, vk), -1);
	/* the well-formed reference parses */
	assert_int_equal(scram_secret_parse("SCRAM-SHA-256$1000000:" RFC_SALT "$" K32 ":" K32,
					    &iter, salt, &salt_len, sk, vk), 0);
	assert_int_equal(iter, 1000000);
#undef K32
}

/* One whole exchange between our client and our server.  Returns the
 * server's answer to the client-final-message; *server_final_r its text. */
static int exchange(const char *user, const char *password, const char *secret,
		    char **server_final_r, bool *client_ok_r)
{
	struct scram_client *c = scram_client_new(user, password);
	struct scram_server *s = scram_server_new();
	const char *err = NULL;
	char *first, *sfirst = NULL, *final = NULL, *sfinal = NULL;

	first = scram_client_first(c);
	assert_non_null(first);
	assert_int_equal(scram_server_client_first(s, first, strlen(first), &err), 0);
	assert_string_equal(scram_server_authcid(s), user);
	assert_string_equal(scram_server_authzid(s), "");
	assert_int_equal(scram_server_first(s, secret, &sfirst), 0);
	assert_int_equal(scram_client_final(c, sfirst, strlen(sfirst), &final, &err), 0);
	int r = scram_server_client_final(s, final, strlen(final), &sfinal, &err);
	assert_non_null(sfinal);
	*client_ok_r = scram_client_verify(c, sfinal, strlen(sfinal)) == 1;
	*server_final_r = sfinal;
	free(first);
	free(sfirst);
	free(final);
	scram_client_free(&c);
	scram_server_free(&s);
	return r;
}

static void test_roundtrip(void **state)
{
	static const struct {
		const char *name, *user, *password, *escaped;
	} cases[] = {
		{ "plain", "tim@example.test", "correct horse battery staple",
		  "n=tim@example.test," },
		{ "escapes", "a,b=c", "pw", "n=a=2Cb=3Dc," },
		{ "only escapes", ",=", "pw", "n==2C=3D," },
		{ "utf-8", "j\xc3\xbcrgen@b\xc3\xbc" "cher.test", "p\xc3\xa4ss",
		  "n=j\xc3\xbcrgen@" },
		{ "spaces", "user name", " pass word ", "n=user name," },
		{ "empty password", "tim", "", "n=tim," },
	};

	for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
		print_message("case %s\n", cases[i].name);
		char *secret = scram_secret_make(cases[i].password, 0);
		char *sfinal;
		bool client_ok = false;

		assert_non_null(secret);
		assert_int_equal(exchange(cases[i].user, cases[i].password, secret, &sfinal,
					  &client_ok), 1);
		assert_true(strncmp(sfinal, "v=", 2) == 0);
		assert_true(client_ok);
		free(sfinal);

		/* the escaping as sent */
		struct scram_client *c = scram_client_new(cases[i].user, "x");
		char *first = scram_client_first(c);
		assert_non_null(strstr(first, cases[i].escaped));
		assert_true(strncmp(first, "n,,n=", 5) == 0);
		assert_null(scram_client_first(c));     /* once only */
		free(first);
		scram_client_free(&c);
		free(secret);
	}
}

static void test_wrong_password(void **state)
{
	char *secret = scram_secret_make("pencil", 0);
	static const char *wrong[] = { "Pencil", "pencil ", "", "penci" };

	for (size_t i = 0; i < ARRAY_LEN(wrong); i++) {
		char *sfinal;
		bool client_ok = true;

		print_message("case '%s'\n", wrong[i]);
		assert_int_equal(exchange("user", wrong[i], secret, &sfinal, &client_ok), 0);
		assert_string_equal(sfinal, "e=invalid-proof");
		assert_false(client_ok);
		free(sfinal);
	}
	free(secret);
}

static char *server_first_for(const char *first, const char *secret)
{
	struct scram_server *s = scram_server_new();
	const char *err = NULL;
	char *out = NULL;

	assert_int_equal(scram_server_client_first(s, first, strlen(first), &err), 0);
	assert_int_equal(scram_server_first(s, secret, &out), 0);
	scram_server_free(&s);
	return out;
}

static void test_unknown_user(void **state)
{
	char *a = server_first_for("n,,n=ghost,r=abc", NULL);
	char *b = server_first_for("n,,n=ghost,r=xyz", NULL);
	char *other = server_first_for("n,,n=ghost2,r=abc", NULL);

	/* r=<client nonce><24 server>,s=<16-byte salt>,i=4096 */
	const char *sa = strstr(a, ",s="), *sb = strstr(b, ",s="), *so = strstr(other, ",s=");
	assert_non_null(sa);
	assert_non_null(sb);
	assert_non_null(so);
	assert_true(strncmp(a, "r=abc", 5) == 0);
	assert_int_equal(strlen(sa), strlen(",s=") + 24 + strlen(",i=4096"));
	assert_string_equal(sa, sb);            /* same salt each time */
	assert_string_not_equal(sa, so);        /* another per name */
	assert_string_equal(sa + strlen(sa) - 7, ",i=4096");
	assert_string_not_equal(a, b);          /* fresh server nonces */
	free(a);
	free(b);
	free(other);

	/* and the exchange fails at the proof, like a wrong password */
	static const char *passwords[] = { "pencil", "" };
	for (size_t i = 0; i < ARRAY_LEN(passwords); i++) {
		char *sfinal;
		bool client_ok = true;
		assert_int_equal(exchange("ghost", passwords[i], NULL, &sfinal, &client_ok), 0);
		assert_string_equal(sfinal, "e=invalid-proof");
		assert_false(client_ok);
		free(sfinal);
	}
}

static void test_client_first_parse(void **state)
{
	static const struct {
		const char *name;
		const char *msg;
		size_t len;             /* 0: strlen */
		int want;
		const char *authcid, *authzid;
	} cases[] = {
		{ "plain", "n,,n=user,r=abc", 0, 0, "user", "" },
		{ "y flag", "y,,n=user,r=abc", 0, 0, "user", "" },
		{ "authzid", "n,a=admin,n=user,r=abc", 0, 0, "user", "admin" },
		{ "y authzid", "y,a=a=3Db,n=user,r=abc", 0, 0, "user", "a=b" },
		{ "escapes", "n,,n=a=2Cb=3D,r=abc", 0, 0, "a,b=", "" },
		{ "extension", "n,,n=user,r=abc,x=1,y=a=b", 0, 0, "user", "" },
		{ "printable nonce", "n,,n=user,r=!~+-/=", 0, 0, "user", "" },
		{ "utf-8 user", "n,,n=\xe6\x97\xa5\xe6\x9c\xac,r=abc", 0, 0,
		  "\xe6\x97\xa5\xe6\x9c\xac", "" },
		{ "channel binding", "p=tls-unique,,n=user,r=abc", 0, -1, NULL, NULL },
		{ "channel binding empty", "p=,,n=user,r=abc", 0, -1, NULL, NULL },
		{ "mandatory extension", "n,,m=foo,n=user,r=abc", 0, -1, NULL, NULL },
		{ "bad flag", "x,,n=user,r=abc", 0, -1, NULL, NULL },
		{ "flag too long", "nn,,n=user,r=abc", 0, -1, NULL, NULL },
		{ "empty flag", ",,n=user,r=abc", 0, -1, NULL, NULL },
		{ "missing GS2 comma", "n,n=user,r=abc", 0, -1, NULL, NULL },
		{ "GS2 only", "n,,", 0, -1, NULL, NULL },
		{ "GS2 unterminated", "n,a=admin", 0, -1, NULL, NULL },
		{ "flag only", "n", 0, -1, NULL, NULL },
		{ "empty", "", 0, -1, NULL, NULL },
		{ "empty authzid", "n,a=,n=user,r=abc", 0, -1, NULL, NULL },
		{ "bad authzid escape", "n,a=x=41,n=user,r=abc", 0, -1, NULL, NULL },
		{ "not authzid", "n,b=x,n=user,r=abc", 0, -1, NULL, NULL },
		{ "bad escape", "n,,n=us=41er,r=abc", 0, -1, NULL, NULL },
		{ "lower case escape", "n,,n=a=2c,r=abc", 0, -1, NULL, NULL },
		{ "short escape", "n,,n=user=2,r=abc", 0, -1, NULL, NULL },
		{ "trailing =", "n,,n=user=,r=abc", 0, -1, NULL, NULL },
		{ "empty user", "n,,n=,r=abc", 0, -1, NULL, NULL },
		{ "missing user", "n,,r=abc", 0, -1, NULL, NULL },
		{ "user not first", "n,,r=abc,n=user", 0, -1, NULL, NULL },
		{ "missing nonce", "n,,n=user", 0, -1, NULL, NULL },
		{ "missing nonce comma", "n,,n=user,", 0, -1, NULL, NULL },
		{ "empty nonce", "n,,n=user,r=", 0, -1, NULL, NULL },
		{ "nonce with space", "n,,n=user,r=a b", 0, -1, NULL, NULL },
		{ "nonce with DEL", "n,,n=user,r=a\x7f", 0, -1, NULL, NULL },
		{ "nonce with 8-bit", "n,,n=user,r=a\xc3\xa4", 0, -1, NULL, NULL },
		{ "trailing comma", "n,,n=user,r=abc,", 0, -1, NULL, NULL },
		{ "bad extension", "n,,n=user,r=abc,foo", 0, -1, NULL, NULL },
		{ "extension no value", "n,,n=user,r=abc,x=", 0, -1, NULL, NULL },
		{ "extension digit", "n,,n=user,r=abc,1=x", 0, -1, NULL, NULL },
		{ "NUL in user", "n,,n=us\0er,r=abc", 16, -1, NULL, NULL },
		{ "NUL at end", "n,,n=user,r=abc\0", 16, -1, NULL, NULL },
		{ "control in user", "n,,n=us\ner,r=abc", 0, -1, NULL, NULL },
		{ "bad utf-8", "n,,n=us\xc3,r=abc", 0, -1, NULL, NULL },
		{ "overlong utf-8", "n,,n=\xc0\xaf,r=abc", 0, -1, NULL, NULL },
		{ "surrogate", "n,,n=\xed\xa0\x80,r=abc", 0, -1, NULL, NULL },
	};

	for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
		struct scram_server *s = scram_server_new();
		const char *err = NULL;
		size_t len = cases[i].len ? cases[i].len : strlen(cases[i].msg);

		print_message("case %s\n", cases[i].name);
		int r = scram_server_client_first(s, cases[i].msg, len, &err);
		assert_int_equal(r, cases[i].want);
		if (r == 0) {
			assert_string_equal(scram_server_authcid(s), cases[i].authcid);
			assert_string_equal(scram_server_authzid(s), cases[i].authzid);
		} else {
			assert_non_null(err);
			assert_true(err[0] != '\0');
			assert_null(scram_server_authcid(s));
			/* nothing more after a failure */
			char *out = (char *)"x";
			assert_int_equal(scram_server_first(s, RFC_SECRET, &out), -1);
			assert_null(out);
		}
		scram_server_free(&s);
	}
}

/* The reason given, for refusals that a client may want to tell apart. */
static void test_error_texts(void **state)
{
	static const struct {
		int side;               /* 0 client-first, 1 client-final, 2 server-first */
		const char *msg;
		size_t len;             /* 0: strlen */
		const char *err;        /* substring of *error_r */
	} cases[] = {
		{ 0, "p=tls-unique,,n=user,r=abc", 0, "channel binding" },
		{ 0, "p=,,n=user,r=abc", 0, "channel binding" },
		{ 0, "n,,m=foo,n=user,r=abc", 0, "mandatory" },
		{ 0, "y,a=admin,m=x,n=user,r=abc", 0, "mandatory" },
		{ 0, "n,,n=us\0er,r=abc", 16, "NUL" },
		{ 0, "n,,n=user,r=abc\0", 16, "NUL" },
		{ 0, "n,,n=us=41er,r=abc", 0, "user name" },
		{ 0, "n,a=x=41,n=user,r=abc", 0, "authorization" },
		{ 0, "n,,n=user", 0, "nonce" },
		{ 1, "c=eSws,r=" RFC_CNONCE RFC_SNONCE ",p=" RFC_PROOF, 0, "channel binding" },
		{ 1, "c=biws,r=" RFC_CNONCE ",p=" RFC_PROOF, 0, "nonce" },
		{ 1, RFC_FINAL_WO, 0, "proof" },
		{ 1, RFC_FINAL_WO "\0,p=" RFC_PROOF, sizeof(RFC_CLIENT_FINAL), "NUL" },
		{ 2, "m=1," RFC_SERVER_FIRST, 0, "mandatory" },
		{ 2, "r=" RFC_CNONCE ",s=" RFC_SALT ",i=4096", 0, "nonce" },
		{ 2, "r=" RFC_CNONCE RFC_SNONCE ",s=" RFC_SALT ",i=4095", 0, "iteration" },
		{ 2, RFC_SERVER_FIRST "\0", sizeof(RFC_SERVER_FIRST), "NUL" },
	};

	for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
		const char *err = NULL;
		char *out = NULL;
		size_t len = cases[i].len ? cases[i].len : strlen(cases[i].msg);
		int r;

		print_message("case %zu\n", i);
		if (cases[i].side == 0) {
			struct scram_server *s = scram_server_new();
			r = scram_server_client_first(s, cases[i].msg, len, &err);
			scram_server_free(&s);
		} else if (cases[i].side == 1) {
			struct scram_server *s = rfc_server();
			r = scram_server_client_final(s, cases[i].msg, len, &out, &err);
			scram_server_free(&s);
		} else {
			struct scram_client *c = rfc_client();
			r = scram_client_final(c, cases[i].msg, len, &out, &err);
			scram_client_free(&c);
		}
		assert_int_equal(r, -1);
		assert_null(out);
		assert_non_null(err);
		if (strstr(err, cases[i].err) == NULL)
			fail_msg("error \"%s\" does not mention \"%s\"", err, cases[i].err);
	}
}

/* msg = prefix + n times 'x' + suffix, to cross the caps. */
static int client_first_sized(const char *prefix, size_t n, const char *suffix)
{
	size_t plen = strlen(prefix), slen = strlen(suffix);
	char *msg = xmalloc(plen + n + slen);
	struct scram_server *s = scram_server_new();
	const char *err = NULL;

	memcpy(msg, prefix, plen);
	memset(msg + plen, 'x', n);
	memcpy(msg + plen + n, suffix, slen);
	int r = scram_server_client_first(s, msg, plen + n + slen, &err);
	assert_true(r == 0 || err != NULL);
	scram_server_free(&s);
	free(msg);
	return r;
}

static void test_client_first_caps(void **state)
{
	/* "n=" + 1022 = SCRAM_FIELD_MAX */
	assert_int_equal(client_first_sized("n,,n=", SCRAM_FIELD_MAX - 2, ",r=abc"), 0);
	assert_int_equal(client_first_sized("n,,n=", SCRAM_FIELD_MAX - 1, ",r=abc"), -1);
	assert_int_equal(client_first_sized("n,,n=user,r=", SCRAM_FIELD_MAX - 2, ""), 0);
	assert_int_equal(client_first_sized("n,,n=user,r=", SCRAM_FIELD_MAX - 1, ""), -1);
	assert_int_equal(client_first_sized("n,a=", SCRAM_FIELD_MAX - 1, ",n=user,r=abc"), -1);
	assert_int_equal(client_first_sized("n,,n=user,r=abc,x=", SCRAM_FIELD_MAX - 1, ""), -1);

	/* each attribute under the cap, the whole over SCRAM_MESSAGE_MAX */
	char *msg = xmalloc(SCRAM_MESSAGE_MAX + 64);
	size_t len = (size_t)snprintf(msg, 64, "n,,n=user,r=abc");
	while (len <= SCRAM_MESSAGE_MAX) {
		memcpy(msg + len, ",x=0123456789", 13);
		len += 13;
	}
	struct scram_server *s = scram_server_new();
	const char *err = NULL;
	assert_int_equal(scram_server_client_first(s, msg, SCRAM_MESSAGE_MAX, &err), 0);
	scram_server_free(&s);
	s = scram_server_new();
	assert_int_equal(scram_server_client_first(s, msg, SCRAM_MESSAGE_MAX + 1, &err), -1);
	scram_server_free(&s);
	free(msg);
}

static void test_client_final_parse(void **state)
{
	static const struct {
		const char *name;
		const char *msg;
		size_t len;             /* 0: strlen */
		int want;
	} cases[] = {
		{ "valid", RFC_CLIENT_FINAL, 0, 1 },
		{ "extension changes the AuthMessage", RFC_FINAL_WO ",x=1,p=" RFC_PROOF, 0, 0 },
		{ "wrong proof", RFC_FINAL_WO ",p=eHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=",
		  0, 0 },
		{ "c= for y", "c=eSws,r=" RFC_CNONCE RFC_SNONCE ",p=" RFC_PROOF, 0, -1 },
		{ "c= with authzid", "c=bixhPXVzZXIs,r=" RFC_CNONCE RFC_SNONCE ",p=" RFC_PROOF,
		  0, -1 },
		{ "c= empty", "c=,r=" RFC_CNONCE RFC_SNONCE ",p=" RFC_PROOF, 0, -1 },
		{ "c= bad base64", "c=biw,r=" RFC_CNONCE RFC_SNONCE ",p=" RFC_PROOF, 0, -1 },
		{ "missing c=", "r=" RFC_CNONCE RFC_SNONCE ",p=" RFC_PROOF, 0, -1 },
		{ "c= not first", "r=" RFC_CNONCE RFC_SNONCE ",c=biws,p=" RFC_PROOF, 0, -1 },
		{ "client nonce only", "c=biws,r=" RFC_CNONCE ",p=" RFC_PROOF, 0, -1 },
		{ "nonce too long", RFC_FINAL_WO "x,p=" RFC_PROOF, 0, -1 },
		{ "other nonce", "c=biws,r=sOprNGfwEbeRWgbNEkqO" RFC_SNONCE ",p=" RFC_PROOF,
		  0, -1 },
		{ "empty nonce", "c=biws,r=,p=" RFC_PROOF, 0, -1 },
		{ "missing nonce", "c=biws,p=" RFC_PROOF, 0, -1 },
		{ "missing proof", RFC_FINAL_WO, 0, -1 },
		{ "proof not last", "c=biws,p=" RFC_PROOF ",r=" RFC_CNONCE RFC_SNONCE, 0, -1 },
		{ "proof empty", RFC_FINAL_WO ",p=", 0, -1 },
		{ "proof bad base64",
		  RFC_FINAL_WO ",p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ", 0, -1 },
		{ "proof short", RFC_FINAL_WO ",p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7An",
		  0, -1 },
		{ "proof long", RFC_FINAL_WO ",p=" RFC_PROOF "AAAA", 0, -1 },
		{ "bad extension", RFC_FINAL_WO ",foo,p=" RFC_PROOF, 0, -1 },
		{ "empty attribute", RFC_FINAL_WO ",,p=" RFC_PROOF, 0, -1 },
		{ "trailing comma", RFC_CLIENT_FINAL ",", 0, -1 },
		{ "NUL", RFC_FINAL_WO "\0,p=" RFC_PROOF, sizeof(RFC_CLIENT_FINAL), -1 },
		{ "NUL at end", RFC_CLIENT_FINAL "\0", sizeof(RFC_CLIENT_FINAL), -1 },
		{ "empty", "", 0, -1 },
	};

	for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
		struct scram_server *s = rfc_server();
		const char *err = NULL;
		char *out = NULL;
		size_t len = cases[i].len ? cases[i].len : strlen(cases[i].msg);

		print_message("case %s\n", cases[i].name);
		int r = scram_server_client_final(s, cases[i].msg, len, &out, &err);
		assert_int_equal(r, cases[i].want);
		if (r == 1) {
			assert_string_equal(out, RFC_SERVER_FINAL);
		} else if (r == 0) {
			assert_string_equal(out, "e=invalid-proof");
		} else {
			assert_null(out);
			assert_non_null(err);
		}
		free(out);
		scram_server_free(&s);
	}

	/* over-long attribute and message */
	size_t big = SCRAM_MESSAGE_MAX + 16;
	char *msg = xmalloc(big + 128);
	for (int k = 0; k < 2; k++) {
		size_t len = (size_t)snprintf(msg, 64, "%s", RFC_FINAL_WO);
		if (k == 0) {
			memcpy(msg + len, ",x=", 3);
			memset(msg + len + 3, 'y', SCRAM_FIELD_MAX);
			len += 3 + SCRAM_FIELD_MAX;
		} else {
			while (len < big) {
				memcpy(msg + len, ",x=0123456789", 13);
				len += 13;
			}
		}
		len += (size_t)snprintf(msg + len, 64, ",p=%s", RFC_PROOF);
		struct scram_server *s = rfc_server();
		const char *err = NULL;
		char *out = NULL;
		assert_int_equal(scram_server_client_final(s, msg, len, &out, &err), -1);
		assert_null(out);
		scram_server_free(&s);
	}
	free(msg);
}

static void test_server_first_parse(void **state)
{
	static const struct {
		const char *name;
		const char *msg;
		size_t len;             /* 0: strlen */
		int want;
	} cases[] = {
		{ "valid", RFC_SERVER_FIRST, 0, 0 },
		{ "extension", RFC_SERVER_FIRST ",x=1", 0, 0 },
		{ "mandatory extension", "m=1," RFC_SERVER_FIRST, 0, -1 },
		{ "nonce not ours", "r=sOprNGfwEbeRWgbNEkqO" RFC_SNONCE ",s=" RFC_SALT ",i=4096",
		  0, -1 },
		{ "nonce ours only", "r=" RFC_CNONCE ",s=" RFC_SALT ",i=4096", 0, -1 },
		{ "nonce prefix of ours", "r=rOprNGfw,s=" RFC_SALT ",i=4096", 0, -1 },
		{ "nonce with space", "r=" RFC_CNONCE "a b,s=" RFC_SALT ",i=4096", 0, -1 },
		{ "missing nonce", "s=" RFC_SALT ",i=4096", 0, -1 },
		{ "missing salt", "r=" RFC_CNONCE RFC_SNONCE ",i=4096", 0, -1 },
		{ "empty salt", "r=" RFC_CNONCE RFC_SNONCE ",s=,i=4096", 0, -1 },
		{ "bad salt", "r=" RFC_CNONCE RFC_SNONCE ",s=W22ZaJ0SNY7soEsUEjb6gQ=,i=4096",
		  0, -1 },
		{ "missing i", "r=" RFC_CNONCE RFC_SNONCE ",s=" RFC_SALT, 0, -1 },
		{ "i too low", "r=" RFC_CNONCE RFC_SNONCE ",s=" RFC_SALT ",i=4095", 0, -1 },
		{ "i one", "r=" RFC_CNONCE RFC_SNONCE ",s=" RFC_SALT ",i=1", 0, -1 },
		{ "i zero", "r=" RFC_CNONCE RFC_SNONCE ",s=" RFC_SALT ",i=0", 0, -1 },
		{ "i too high", "r=" RFC_CNONCE RFC_SNONCE ",s=" RFC_SALT ",i=1000001", 0, -1 },
		{ "i overflow", "r=" RFC_CNONCE RFC_SNONCE ",s=" RFC_SALT ",i=4294971392", 0, -1 },
		{ "i negative", "r=" RFC_CNONCE RFC_SNONCE ",s=" RFC_SALT ",i=-4096", 0, -1 },
		{ "i plus", "r=" RFC_CNONCE RFC_SNONCE ",s=" RFC_SALT ",i=+4096", 0, -1 },
		{ "i leading zero", "r=" RFC_CNONCE RFC_SNONCE ",s=" RFC_SALT ",i=04096", 0, -1 },
		{ "i junk", "r=" RFC_CNONCE RFC_SNONCE ",s=" RFC_SALT ",i=4096x", 0, -1 },
		{ "i empty", "r=" RFC_CNONCE RFC_SNONCE ",s=" RFC_SALT ",i=", 0, -1 },
		{ "order", "s=" RFC_SALT ",r=" RFC_CNONCE RFC_SNONCE ",i=4096", 0, -1 },
		{ "trailing comma", RFC_SERVER_FIRST ",", 0, -1 },
		{ "bad extension", RFC_SERVER_FIRST ",xyz", 0, -1 },
		{ "error", "e=other-error", 0, -1 },
		{ "NUL", RFC_SERVER_FIRST "\0", sizeof(RFC_SERVER_FIRST), -1 },
		{ "empty", "", 0, -1 },
	};

	for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
		struct scram_client *c = rfc_client();
		const char *err = NULL;
		char *out = NULL;
		size_t len = cases[i].len ? cases[i].len : strlen(cases[i].msg);

		print_message("case %s\n", cases[i].name);
		int r = scram_client_final(c, cases[i].msg, len, &out, &err);
		assert_int_equal(r, cases[i].want);
		if (r == 0) {
			assert_non_null(out);
			assert_true(strncmp(out, RFC_FINAL_WO ",p=",
					    strlen(RFC_FINAL_WO) + 3) == 0);
		} else {
			assert_null(out);
			assert_non_null(err);
			/* a failed client never accepts a server signature */
			assert_int_equal(scram_client_verify(c, RFC_SERVER_FINAL,
							     strlen(RFC_SERVER_FINAL)), 0);
		}
		free(out);
		scram_client_free(&c);
	}

	/* over-long salt attribute */
	char *msg = xmalloc(SCRAM_FIELD_MAX + 128);
	size_t len = (size_t)snprintf(msg, 128, "r=%s%s,s=", RFC_CNONCE, RFC_SNONCE);
	memset(msg + len, 'A', SCRAM_FIELD_MAX);
	len += SCRAM_FIELD_MAX;
	len += (size_t)snprintf(msg + len, 128, ",i=4096");
	struct scram_client *c = rfc_client();
	const char *err = NULL;
	char *out = NULL;
	assert_int_equal(scram_client_final(c, msg, len, &out, &err), -1);
	assert_null(out);
	scram_client_free(&c);
	free(msg);

	/* a lowered maximum */
	c = rfc_client();
	scram_client_set_max_iterations(c, 4096);
	const char *high = "r=" RFC_CNONCE RFC_SNONCE ",s=" RFC_SALT ",i=4097";
	assert_int_equal(scram_client_final(c, high, strlen(high), &out, &err), -1);
	scram_client_free(&c);
	c = rfc_client();
	scram_client_set_max_iterations(c, 1);  /* clamped to the minimum */
	assert_int_equal(scram_client_final(c, RFC_SERVER_FIRST, strlen(RFC_SERVER_FIRST), &out,
					    &err), 0);
	assert_string_equal(out, RFC_CLIENT_FINAL);
	free(out);
	scram_client_free(&c);
}

static void test_sequence(void **state)
{
	const char *err = NULL;
	char *out = (char *)"x";

	/* server: server_first and client_final before client_first */
	struct scram_server *s = scram_server_new();
	assert_int_equal(scram_server_first(s, RFC_SECRET, &out), -1);
	assert_null(out);
	scram_server_free(&s);
	s = scram_server_new();
	assert_int_equal(scram_server_client_final(s, RFC_CLIENT_FINAL, strlen(RFC_CLIENT_FINAL),
						   &out, &err), -1);
	scram_server_free(&s);
	/* client_final before server_first */
	s = scram_server_new();
	assert_int_equal(scram_server_client_first(s, RFC_CLIENT_FIRST, strlen(RFC_CLIENT_FIRST),
						   &err), 0);
	assert_int_equal(scram_server_client_final(s, RFC_CLIENT_FINAL, strlen(RFC_CLIENT_FINAL),
						   &out, &err), -1);
	scram_server_free(&s);
	/* client_first twice */
	s = scram_server_new();
	assert_int_equal(scram_server_client_first(s, RFC_CLIENT_FIRST, strlen(RFC_CLIENT_FIRST),
						   &err), 0);
	assert_int_equal(scram_server_client_first(s, RFC_CLIENT_FIRST, strlen(RFC_CLIENT_FIRST),
						   &err), -1);
	scram_server_free(&s);
	/* a malformed stored secret */
	s = scram_server_new();
	assert_int_equal(scram_server_client_first(s, RFC_CLIENT_FIRST, strlen(RFC_CLIENT_FIRST),
						   &err), 0);
	assert_int_equal(scram_server_first(s, "$argon2id$v=19$m=19456,t=2,p=1$xx$yy", &out), -1);
	assert_null(out);
	scram_server_free(&s);

	/* client: final before first, final twice */
	struct scram_client *c = scram_client_new("user", "pencil");
	scram_client_set_nonce(c, RFC_CNONCE);
	assert_int_equal(scram_client_final(c, RFC_SERVER_FIRST, strlen(RFC_SERVER_FIRST), &out,
					    &err), -1);
	assert_null(out);
	scram_client_free(&c);
	c = rfc_client();
	assert_int_equal(scram_client_final(c, RFC_SERVER_FIRST, strlen(RFC_SERVER_FIRST), &out,
					    &err), 0);
	free(out);
	assert_int_equal(scram_client_final(c, RFC_SERVER_FIRST, strlen(RFC_SERVER_FIRST), &out,
					    &err), -1);
	assert_null(out);
	scram_client_free(&c);
}

static void test_cram_md5_rfc2195(void **state)
{
	assert_true(cram_md5_verify(CRAM_SECRET, CRAM_CHALLENGE, CRAM_DIGEST));
	assert_true(cram_md5_verify(CRAM_SECRET, CRAM_CHALLENGE,
				    "B913A602C7EDA7A495B4E6E7334D3890"));
	assert_true(cram_md5_verify(CRAM_SECRET, CRAM_CHALLENGE,
				    "b913A602c7EDA7a495B4e6e7334d3890"));
	static const char *bad[] = {
		"b913a602c7eda7a495b4e6e7334d3891",     /* last digit */
		"c913a602c7eda7a495b4e6e7334d3890",     /* first digit */
		"b913a602c7eda7a495b4e6e7334d389",      /* short */
		"b913a602c7eda7a495b4e6e7334d38900",    /* long */
		"b913a602c7eda7a495b4e6e7334d389g",     /* not hex */
		"b913a602c7eda7a495b4e6e7334d38 0",
		"",
	};
	for (size_t i = 0; i < ARRAY_LEN(bad); i++) {
		print_message("case %s\n", bad[i]);
		assert_false(cram_md5_verify(CRAM_SECRET, CRAM_CHALLENGE, bad[i]));
	}
	assert_false(cram_md5_verify("tanstaaftanstaaF", CRAM_CHALLENGE, CRAM_DIGEST));
	assert_false(cram_md5_verify(CRAM_SECRET, "<1896.697170953@postoffice.reston.mci.net>",
				     CRAM_DIGEST));
	assert_false(cram_md5_verify("", CRAM_CHALLENGE, CRAM_DIGEST));
	assert_false(cram_md5_verify(NULL, CRAM_CHALLENGE, CRAM_DIGEST));
	assert_false(cram_md5_verify(CRAM_SECRET, NULL, CRAM_DIGEST));
	assert_false(cram_md5_verify(CRAM_SECRET, CRAM_CHALLENGE, NULL));

	char *resp = cram_md5_response("tim", CRAM_SECRET, CRAM_CHALLENGE);
	assert_non_null(resp);
	assert_string_equal(resp, "tim " CRAM_DIGEST);
	/* and the server side reads it back */
	char *user = NULL, hex[33];
	assert_int_equal(cram_md5_parse(resp, strlen(resp), &user, hex), 0);
	assert_string_equal(user, "tim");
	assert_true(cram_md5_verify(CRAM_SECRET, CRAM_CHALLENGE, hex));
	free(user);
	free(resp);
}

static void test_cram_md5_parse(void **state)
{
	static const struct {
		const char *name, *resp;
		size_t len;             /* 0: strlen */
		int want;
		const char *user, *hex;
	} cases[] = {
		{ "rfc", "tim " CRAM_DIGEST, 0, 0, "tim", CRAM_DIGEST },
		{ "upper case", "tim B913A602C7EDA7A495B4E6E7334D3890", 0, 0, "tim",
		  "B913A602C7EDA7A495B4E6E7334D3890" },
		{ "space in user", "tim smith " CRAM_DIGEST, 0, 0, "tim smith", CRAM_DIGEST },
		{ "address", "tim@example.test " CRAM_DIGEST, 0, 0, "tim@example.test",
		  CRAM_DIGEST },
		{ "no space", "tim" CRAM_DIGEST, 0, -1, NULL, NULL },
		{ "empty user", " " CRAM_DIGEST, 0, -1, NULL, NULL },
		{ "trailing space", "tim " CRAM_DIGEST " ", 0, -1, NULL, NULL },
		{ "short digest", "tim b913a602c7eda7a495b4e6e7334d389", 0, -1, NULL, NULL },
		{ "long digest", "tim " CRAM_DIGEST "0", 0, -1, NULL, NULL },
		{ "not hex", "tim b913a602c7eda7a495b4e6e7334d389z", 0, -1, NULL, NULL },
		{ "NUL in user", "t\0m " CRAM_DIGEST, 36, -1, NULL, NULL },
		{ "NUL at end", "tim " CRAM_DIGEST "\0", 37, -1, NULL, NULL },
		{ "control in user", "t\rm " CRAM_DIGEST, 0, -1, NULL, NULL },
		{ "tab separator", "tim\t" CRAM_DIGEST, 0, -1, NULL, NULL },
		{ "digest only", CRAM_DIGEST, 0, -1, NULL, NULL },
		{ "empty", "", 0, -1, NULL, NULL },
	};

	for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
		char *user = (char *)"x", hex[33];
		size_t len = cases[i].len ? cases[i].len : strlen(cases[i].resp);

		print_message("case %s\n", cases[i].name);
		int r = cram_md5_parse(cases[i].resp, len, &user, hex);
		assert_int_equal(r, cases[i].want);
		if (r == 0) {
			assert_string_equal(user, cases[i].user);
			assert_string_equal(hex, cases[i].hex);
			free(user);
		} else {
			assert_null(user);
		}
	}

	/* the length cap */
	char big[CRAM_MD5_RESPONSE_MAX + 1];
	memset(big, 'u', sizeof big);
	memcpy(big + CRAM_MD5_RESPONSE_MAX - 33, " " CRAM_DIGEST, 33);
	char *user, hex[33];
	assert_int_equal(cram_md5_parse(big, CRAM_MD5_RESPONSE_MAX, &user, hex), 0);
	assert_int_equal(strlen(user), CRAM_MD5_RESPONSE_MAX - 33);
	free(user);
	memset(big, 'u', sizeof big);
	memcpy(big + CRAM_MD5_RESPONSE_MAX + 1 - 33, " " CRAM_DIGEST, 33);
	assert_int_equal(cram_md5_parse(big, CRAM_MD5_RESPONSE_MAX + 1, &user, hex), -1);
}

static void test_cram_md5_challenge(void **state)
{
	char *a = cram_md5_challenge("mail.example.test");
	char *b = cram_md5_challenge("mail.example.test");

	assert_non_null(a);
	assert_non_null(b);
	assert_string_not_equal(a, b);
	assert_int_equal(a[0], '<');
	size_t n = strlen(a);
	assert_true(n > 20);
	assert_string_equal(a + n - strlen("@mail.example.test>"), "@mail.example.test>");
	/* <digits.digits@host> */
	const char *p = a + 1;
	size_t digits = strspn(p, "0123456789");
	assert_true(digits > 0);
	assert_int_equal(p[digits], '.');
	p += digits + 1;
	digits = strspn(p, "0123456789");
	assert_true(digits > 0);
	assert_int_equal(p[digits], '@');

	char *resp = cram_md5_response("tim", CRAM_SECRET, a);
	char *user, hex[33];
	assert_int_equal(cram_md5_parse(resp, strlen(resp), &user, hex), 0);
	assert_true(cram_md5_verify(CRAM_SECRET, a, hex));
	assert_false(cram_md5_verify(CRAM_SECRET, b, hex));
	free(user);
	free(resp);
	free(a);
	free(b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_rfc7677_secret),
		cmocka_unit_test(test_rfc7677_server),
		cmocka_unit_test(test_rfc7677_client),
		cmocka_unit_test(test_secret_make),
		cmocka_unit_test(test_secret_parse_bad),
		cmocka_unit_test(test_roundtrip),
		cmocka_unit_test(test_wrong_password),
		cmocka_unit_test(test_unknown_user),
		cmocka_unit_test(test_client_first_parse),
		cmocka_unit_test(test_client_first_caps),
		cmocka_unit_test(test_error_texts),
		cmocka_unit_test(test_client_final_parse),
		cmocka_unit_test(test_server_first_parse),
		cmocka_unit_test(test_sequence),
		cmocka_unit_test(test_cram_md5_rfc2195),
		cmocka_unit_test(test_cram_md5_parse),
		cmocka_unit_test(test_cram_md5_challenge),
	};

	log_init("scram_test", LOG_WARN);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
