/* text_fuzz.c - the searchable text of any message: never past its cap,
 * the same text whatever the cap as long as it fits, and a complete result
 * only when it really is. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/buf.h"
#include "mail/text.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct buf big, small;

	buf_init(&big, 1u << 22);
	int r = mail_text_extract((const char *)data, size, &big);
	if (r != 0 && r != 1)
		abort();
	if (big.len > big.max)
		abort();
	/* A cap below what it needed: incomplete, and a prefix of the same text. */
	if (r == 1 && big.len > 0) {
		buf_init(&small, big.len / 2);
		int r2 = mail_text_extract((const char *)data, size, &small);
		if (small.len > small.max)
			abort();
		if (r2 == 1 && small.len != big.len)
			abort();
		buf_free(&small);
	}
	buf_free(&big);
	return 0;
}
