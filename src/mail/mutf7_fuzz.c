/* mutf7_fuzz.c - libFuzzer target for modified UTF-7 and the name check.
 *
 * Any input: decode must not crash; whatever decodes must encode back to
 * exactly the input (the decoder accepts only canonical forms).  Whatever
 * UTF-8 encodes must decode back to itself.  The name check must produce a
 * normal form that checks again to itself. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/buf.h"
#include "mail/mutf7.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *in = (const char *)data;
	const char *err = NULL;
	struct buf a, b;

	if (size > 8192)
		return 0;
	buf_init(&a, 4 * size + 8);
	buf_init(&b, 4 * size + 8);
	if (mutf7_decode(in, size, &a, &err) == 0) {
		if (mutf7_encode(a.data ? a.data : "", a.len, &b, &err) < 0)
			abort();
		if (b.len != size || (size && memcmp(b.data, in, size) != 0))
			abort();
	}
	buf_reset(&a);
	buf_reset(&b);
	if (mutf7_encode(in, size, &a, &err) == 0) {
		if (!mutf7_utf8_valid(in, size))
			abort();
		if (mutf7_decode(a.data ? a.data : "", a.len, &b, &err) < 0)
			abort();
		if (b.len != size || (size && memcmp(b.data, in, size) != 0))
			abort();
	}
	buf_reset(&a);
	buf_reset(&b);
	if (mutf7_mailbox_check(in, size, &a, &err) == 0) {
		if (mutf7_mailbox_check(a.data, a.len, &b, &err) < 0)
			abort();
		if (a.len != b.len || memcmp(a.data, b.data, a.len) != 0)
			abort();
	}
	buf_free(&a);
	buf_free(&b);
	return 0;
}
