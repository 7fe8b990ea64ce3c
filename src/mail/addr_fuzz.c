/* addr_fuzz.c - libFuzzer target for addr_parse_path / addr_format.
 *
 * Input: byte 0 bit 0 = allow_utf8, the rest is the path.  Checks that the
 * parser stays inside the input and the caps, and that the formatted
 * mailbox parses back to the same mailbox. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "mail/addr.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size == 0)
		return 0;
	bool utf8 = data[0] & 1;
	const char *s = (const char *)data + 1;
	size--;

	struct mail_addr a;
	enum addr_error err;
	const char *msg = NULL;
	long r = addr_parse_path(s, size, utf8, &a, &err, &msg);
	if (r < 0) {
		if (err == ADDR_OK || msg == NULL || msg[0] == '\0')
			abort();
		return 0;
	}
	if (err != ADDR_OK || r < 2 || (size_t)r > size || r > ADDR_PATH_MAX || s[r - 1] != '>')
		abort();
	if (strlen(a.local) > ADDR_LOCAL_MAX || strlen(a.domain) > ADDR_DOMAIN_MAX)
		abort();
	if (a.utf8 && !utf8)
		abort();

	char out[ADDR_PATH_MAX * 2];
	addr_format(&a, out, sizeof(out));
	size_t n = strlen(out);
	/* quoted local (every octet escaped) + "@[" domain "]" */
	if (n > 2 * ADDR_LOCAL_MAX + 2 + 3 + ADDR_DOMAIN_MAX)
		abort();
	if (a.null) {
		if (n != 0)
			abort();
		return 0;
	}
	if (a.postmaster)
		return 0;

	/* Round trip: the formatted mailbox is never longer than the path. */
	char again[ADDR_PATH_MAX * 2 + 2];
	again[0] = '<';
	memcpy(again + 1, out, n);
	again[n + 1] = '>';
	struct mail_addr b;
	long r2 = addr_parse_path(again, n + 2, utf8, &b, &err, &msg);
	if (r2 != (long)(n + 2) || strcmp(a.local, b.local) != 0 ||
	    strcmp(a.domain, b.domain) != 0 || a.literal != b.literal || a.utf8 != b.utf8 ||
	    b.trailing_dot || b.source_route)
		abort();
	return 0;
}
