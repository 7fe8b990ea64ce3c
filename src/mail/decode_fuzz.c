/* decode_fuzz.c - the streaming decoders (base64, quoted-printable, charsets)
 * and RFC 2047: chunked and one-piece decoding agree, output is valid
 * UTF-8 within its cap, and encode then decode gives back the input. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "core/buf.h"
#include "mail/decode.h"
#include "mail/rfc2047.h"
#include "mail/mutf7.h"
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
static const char *css[] = { "UTF-8", "ISO-2022-JP", "Shift_JIS", "EUC-JP", "ISO-8859-1", "windows-1252", "UTF-16", "UTF-32" };
static int feed(int mode, void *d, const char *p, size_t n, struct buf *o) {
	if (mode == 0) return decode_b64(d, p, n, o);
	if (mode == 1) return decode_qp(d, p, n, o);
	return decode_charset(d, p, n, o);
}
static int fin(int mode, void *d, struct buf *o) {
	if (mode == 0) return decode_b64_finish(d, o);
	if (mode == 1) return decode_qp_finish(d, o);
	int r = decode_charset_finish(d, o); decode_charset_free(d); return r;
}
static int run(int mode, const char *cs, const char *in, size_t len, const uint8_t *sz, struct buf *o) {
	struct decode_b64 b; struct decode_qp q; struct decode_charset c; void *d; const char *err;
	if (mode == 0) { decode_b64_init(&b); d = &b; }
	else if (mode == 1) { decode_qp_init(&q); d = &q; }
	else { if (decode_charset_init(&c, cs, &err) < 0) abort(); d = &c; }
	size_t pos = 0, k = 0; int r = 0;
	while (pos < len && r == 0) {
		size_t n = sz ? (size_t)(sz[k++ % 4] % 17) + 1 : len - pos;
		if (n > len - pos) n = len - pos;
		r = feed(mode, d, in + pos, n, o); pos += n;
	}
	if (r == 0) r = fin(mode, d, o);
	else if (mode == 2) decode_charset_free(&c);
	return r;
}
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 6) return 0;
	int mode = data[0] % 4; const char *cs = css[data[1] % 8];
	const uint8_t *sz = data + 2; const char *in = (const char *)data + 6; size_t len = size - 6;
	struct buf a, b;
	if (mode < 3) {
		buf_init(&a, 8 * len + 64); buf_init(&b, 8 * len + 64);
		if (run(mode, cs, in, len, NULL, &a) < 0) abort();
		if (run(mode, cs, in, len, sz, &b) < 0) abort();
		if (a.len != b.len || (a.len && memcmp(a.data, b.data, a.len))) abort();
		if (mode == 2 && !mutf7_utf8_valid(a.data ? a.data : "", a.len)) abort();
		size_t cap = sz[0] % (a.len + 1);
		buf_free(&b); buf_init(&b, cap);
		int r = run(mode, cs, in, len, sz, &b);
		if ((r < 0) != (cap < a.len)) abort();
		if (b.len && memcmp(a.data, b.data, b.len)) abort();
		buf_free(&a); buf_free(&b);
		return 0;
	}
	buf_init(&a, 8 * len + 64);
	if (rfc2047_decode(in, len, &a) < 0) abort();
	buf_free(&a);
	if (mutf7_utf8_valid(in, len)) {
		const char *err;
		buf_init(&a, 16 * len + 64); buf_init(&b, 16 * len + 64);
		enum rfc2047_encoding e = data[1] & 1 ? RFC2047_B : RFC2047_Q;
		const char *ecs = data[1] & 2 ? "ISO-2022-JP" : "UTF-8";
		if (rfc2047_encode(in, len, ecs, e, &a, &err) == 0) {
			if (rfc2047_decode(a.data ? a.data : "", a.len, &b) < 0) abort();
			if (ecs[0] == 'U' && (b.len != len || (len && memcmp(b.data, in, len)))) abort();
		} else if (ecs[0] == 'U' && memchr(in, 0, len) == NULL) abort();
		buf_free(&a); buf_free(&b);
	}
	return 0;
}
