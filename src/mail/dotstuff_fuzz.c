/* dotstuff_fuzz.c - libFuzzer target for the DATA decoder and the encoder.
 *
 * Input: byte 0 = output cap / 8, bytes 1..8 = chunk sizes (cycled), the
 * rest = the data.  Checks that chunked decoding with a bounded buffer
 * agrees with one-shot decoding, and that decode(encode(x) ".\r\n") == x
 * for x with CR LF line ends. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/buf.h"
#include "mail/dotstuff.h"

#define HDR 9

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static size_t decode_chunked(const char *in, size_t len, const uint8_t *sizes,
			     struct dot_decoder *d, struct buf *out)
{
	size_t pos = 0, k = 0;

	dot_decoder_init(d);
	while (pos < len) {
		size_t n = (size_t)(sizes[k++ % 8] % 32) + 1;
		if (n > len - pos)
			n = len - pos;
		size_t got = dot_decode(d, in + pos, n, out);
		if (got > n)
			abort();
		pos += got;
		if (got < n) {
			if (!d->done)
				abort();
			break;
		}
	}
	return pos;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < HDR)
		return 0;
	size_t max = (size_t)data[0] * 8;
	const uint8_t *sizes = data + 1;
	const char *in = (const char *)data + HDR;
	size_t len = size - HDR;

	/* One shot, unbounded. */
	struct dot_decoder d1, d2;
	struct buf o1, o2;
	buf_init(&o1, 2 * len + 16);
	dot_decoder_init(&d1);
	size_t c1 = dot_decode(&d1, in, len, &o1);
	if (d1.overflow || d1.total != o1.len || c1 > len || (c1 < len && !d1.done))
		abort();

	/* Chunked, bounded. */
	buf_init(&o2, max);
	size_t c2 = decode_chunked(in, len, sizes, &d2, &o2);
	if (c2 != c1 || d2.done != d1.done || d2.total != d1.total || d2.bare_lf != d1.bare_lf ||
	    d2.bare_cr != d1.bare_cr || d2.overflow != (d1.total > max) ||
	    o2.len != (d1.total > max ? max : d1.total) ||
	    (o2.len && memcmp(o1.data, o2.data, o2.len) != 0))
		abort();
	buf_free(&o1);
	buf_free(&o2);

	/* Round trip on the data with CR LF line ends. */
	struct buf x, enc, dec;
	buf_init(&x, 2 * len + 2);
	for (size_t i = 0; i < len; i++) {
		if (in[i] == '\n' && (i == 0 || in[i - 1] != '\r'))
			buf_append(&x, "\r", 1);
		buf_append(&x, in + i, 1);
	}
	if (x.len && (x.len < 2 || memcmp(x.data + x.len - 2, "\r\n", 2) != 0))
		buf_append(&x, "\r\n", 2);
	if (x.len == 0) {
		buf_free(&x);
		return 0;
	}
	buf_init(&enc, 2 * x.len + 3);
	bool bol = true;
	size_t half = sizes[0] % (x.len + 1);
	if (dot_encode_chunk(x.data, half, &bol, &enc) < 0 ||
	    dot_encode_chunk(x.data + half, x.len - half, &bol, &enc) < 0 ||
	    buf_append(&enc, ".\r\n", 3) < 0)
		abort();
	buf_init(&dec, x.len);
	size_t c3 = decode_chunked(enc.data, enc.len, sizes, &d1, &dec);
	if (c3 != enc.len || !d1.done || d1.overflow || d1.bare_lf != 0 || dec.len != x.len ||
	    (x.len && memcmp(dec.data, x.data, x.len) != 0))
		abort();
	buf_free(&x);
	buf_free(&enc);
	buf_free(&dec);
	return 0;
}
