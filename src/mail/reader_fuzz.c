/* reader_fuzz.c - libFuzzer target for reader_render and reader_part_bytes.
 *
 * Input: byte 0 picks options (bit 0 all_headers, bit 1 html_raw, bit 2
 * width 20, bit 3 a small output cap), the rest is the message.  Checks
 * that the rendering is valid UTF-8 with no control character but LF and
 * tab (no ESC, DEL or C1), stays under its cap, ends a cut rendering with
 * the mark, and that the part list is clean too. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/buf.h"
#include "mail/mutf7.h"
#include "mail/reader.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(c) do { if (!(c)) abort(); } while (0)
#define NPARTS 8

static void check_safe(const char *s, size_t n)
{
	if (n == 0)
		return;
	CHECK(mutf7_utf8_valid(s, n));
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		CHECK(c >= 0x20 || c == '\n' || c == '\t');
		CHECK(c != 0x7f);
		CHECK(!(c == 0xc2 && i + 1 < n && (unsigned char)s[i + 1] < 0xa0));
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size == 0)
		return 0;
	struct reader_opts o = {
		.all_headers = data[0] & 1,
		.html_raw = (data[0] & 2) != 0,
		.width = (data[0] & 4) ? 20 : 0,
	};
	size_t max = (data[0] & 8) ? 200 : (1u << 21);
	const char *msg = (const char *)data + 1;
	size_t len = size - 1;

	struct buf out;
	struct reader_part_info parts[NPARTS];
	size_t n = 99;
	buf_init(&out, max);
	int r = reader_render(msg, len, &o, &out, parts, NPARTS, &n);
	CHECK(r == 0 || r == -1);
	CHECK(out.len <= max && n <= NPARTS);
	check_safe(out.data, out.len);
	if (r < 0)
		CHECK(strstr(out.data, &READER_TRUNCATED_MARK[1]) != NULL);
	for (size_t i = 0; i < n; i++) {
		CHECK(memchr(parts[i].section, '\0', sizeof parts[i].section) != NULL);
		CHECK(memchr(parts[i].type, '\0', sizeof parts[i].type) != NULL);
		check_safe(parts[i].filename, strlen(parts[i].filename));
		check_safe(parts[i].type, strlen(parts[i].type));
	}
	buf_free(&out);

	buf_init(&out, 1u << 20);
	r = reader_part_bytes(msg, len, "1", &out);
	CHECK(r >= -1 && r <= 1 && out.len <= out.max);
	buf_free(&out);
	return 0;
}
