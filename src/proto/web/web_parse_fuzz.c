/* web_parse_fuzz.c - libFuzzer target: the page's parsers of client input.
 *
 * Input: the first byte picks an output size (0..63), the rest is a Cookie
 * header, a form body and an Accept-Encoding header at once.  Results must
 * be NUL-terminated inside the output and no longer than the input. */
#include <assert.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "proto/web/web_parse.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size == 0)
		return 0;
	size_t outsz = data[0] % 64;
	char *text = malloc(size);
	memcpy(text, data + 1, size - 1);
	text[size - 1] = '\0';
	char *out = malloc(outsz ? outsz : 1);
	int rc = web_parse_cookie(text, "yubin_session", out, outsz);
	assert(rc >= -1 && rc <= 1);
	if (rc == 1)
		assert(strlen(out) < outsz && strlen(out) <= size);
	rc = web_parse_form((const char *)data + 1, size - 1, "user", out, outsz);
	assert(rc >= -1 && rc <= 1);
	if (rc == 1)
		assert(strlen(out) < outsz && strlen(out) <= size);
	(void)web_parse_accepts_gzip(text);
	free(out);
	free(text);
	return 0;
}
