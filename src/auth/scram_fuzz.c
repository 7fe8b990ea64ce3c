/* scram_fuzz.c - libFuzzer target for the SCRAM-SHA-256 parsers.
 *
 * Input: <first part> [0x00 <second part>].  Server side: the first part is
 * a client-first-message, the second a client-final-message, against the
 * secret of "user" / "pencil" (any other name takes the unknown-user path)
 * and a fixed server nonce, so a seed can carry a valid exchange.  Client
 * side: the first part is a server-first-message to a client with the fixed
 * nonce FUZZ_CNONCE (iterations capped at the minimum to keep runs fast),
 * the second a server-final-message.  Checks the return contracts. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "auth/scram.h"

#define FUZZ_SNONCE "SNONCE"
#define FUZZ_CNONCE "fyyy"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char *secret;

static void check_error(int r, const char *err)
{
	if (r < 0 && (err == NULL || err[0] == '\0'))
		abort();
}

static void server_side(const char *first, size_t first_len, const char *final,
			size_t final_len)
{
	struct scram_server *s = scram_server_new();
	const char *err = NULL;
	char *out = NULL;

	scram_server_set_nonce(s, FUZZ_SNONCE);
	int r = scram_server_client_first(s, first, first_len, &err);
	check_error(r, err);
	if (r < 0) {
		if (scram_server_authcid(s) != NULL || scram_server_first(s, secret, &out) != -1 ||
		    out != NULL)
			abort();
		goto out;
	}
	const char *user = scram_server_authcid(s), *authzid = scram_server_authzid(s);
	if (r != 0 || user == NULL || user[0] == '\0' || authzid == NULL ||
	    strlen(user) > SCRAM_FIELD_MAX || strlen(authzid) > SCRAM_FIELD_MAX)
		abort();
	if (scram_server_first(s, strcmp(user, "user") == 0 ? secret : NULL, &out) != 0 ||
	    out == NULL || strncmp(out, "r=", 2) != 0)
		abort();
	free(out);
	out = NULL;
	if (final == NULL)
		goto out;
	err = NULL;
	r = scram_server_client_final(s, final, final_len, &out, &err);
	check_error(r, err);
	if (r == 1 && (out == NULL || strncmp(out, "v=", 2) != 0 || strcmp(user, "user") != 0))
		abort();
	if (r == 0 && (out == NULL || strcmp(out, "e=invalid-proof") != 0))
		abort();
	if (r < 0 && out != NULL)
		abort();
	if (r < -1 || r > 1)
		abort();
	free(out);
out:
	scram_server_free(&s);
}

static void client_side(const char *first, size_t first_len, const char *final,
			size_t final_len)
{
	struct scram_client *c = scram_client_new("user", "pencil");
	const char *err = NULL;
	char *out = NULL;

	scram_client_set_nonce(c, FUZZ_CNONCE);
	scram_client_set_max_iterations(c, SCRAM_ITERATIONS_MIN);
	char *cfirst = scram_client_first(c);
	if (cfirst == NULL)
		abort();
	free(cfirst);
	int r = scram_client_final(c, first, first_len, &out, &err);
	check_error(r, err);
	if (r == 0 && (out == NULL || strncmp(out, "c=biws,r=" FUZZ_CNONCE, 13) != 0))
		abort();
	if (r != 0 && (r != -1 || out != NULL))
		abort();
	free(out);
	if (final != NULL) {
		int v = scram_client_verify(c, final, final_len);
		if (v != 0 && v != 1)
			abort();
	}
	scram_client_free(&c);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (secret == NULL) {
		static const unsigned char salt[] = "fuzz salt";
		secret = scram_secret_make_salt("pencil", salt, sizeof salt - 1, SCRAM_ITERATIONS);
		if (secret == NULL)
			abort();
	}

	/* copies, so that ASan sees any read past either part */
	const uint8_t *nul = memchr(data, 0, size);
	size_t first_len = nul ? (size_t)(nul - data) : size;
	char *first = malloc(first_len ? first_len : 1);
	char *final = NULL;
	size_t final_len = 0;
	if (first == NULL)
		return 0;
	memcpy(first, data, first_len);
	if (nul != NULL) {
		final_len = size - first_len - 1;
		final = malloc(final_len ? final_len : 1);
		if (final == NULL) {
			free(first);
			return 0;
		}
		memcpy(final, nul + 1, final_len);
	}

	server_side(first, first_len, final, final_len);
	client_side(first, first_len, final, final_len);
	free(first);
	free(final);
	return 0;
}
