/* downgrade_fuzz.c - libFuzzer target for downgrade_7bit.
 *
 * Input: the message.  Checks, with out->max at DOWNGRADE_OUT_MAX:
 * a failure leaves out empty, is never for room, and only happens to a
 * message with 8-bit data; a success has no byte >= 0x80, no line longer
 * than the input's longest (or 76, the quoted-printable limit), is the
 * input itself when that was 7-bit, and parses to the same tree: every
 * leaf that had 8-bit data is quoted-printable now and decodes back to
 * its body (bare LF made CR LF), every other leaf is byte for byte the
 * same. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/buf.h"
#include "mail/decode.h"
#include "mail/downgrade.h"
#include "mail/mime.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(c) do { if (!(c)) abort(); } while (0)

static size_t longest_line(const char *s, size_t len)
{
	size_t best = 0, start = 0;
	for (size_t i = 0; i <= len; i++) {
		if (i < len && s[i] != '\n')
			continue;
		size_t e = i;
		if (i < len && e > start && s[e - 1] == '\r')
			e--;
		if (e - start > best)
			best = e - start;
		start = i + 1;
	}
	return best;
}

static void check_leaf(const char *pb, size_t plen, const char *qb, size_t qlen)
{
	struct buf want, dec;
	struct decode_qp d;
	buf_init(&want, 2 * plen + 1);
	for (size_t i = 0; i < plen; i++) {
		if (pb[i] == '\n' && (i == 0 || pb[i - 1] != '\r'))
			CHECK(buf_append(&want, "\r", 1) == 0);
		CHECK(buf_append(&want, pb + i, 1) == 0);
	}
	buf_init(&dec, want.len);
	decode_qp_init(&d);
	CHECK(decode_qp(&d, qb, qlen, &dec) == 0 && decode_qp_finish(&d, &dec) == 0);
	CHECK(dec.len == want.len);
	CHECK(want.len == 0 || memcmp(dec.data, want.data, want.len) == 0);
	CHECK(longest_line(qb, qlen) <= 76);
	buf_free(&want);
	buf_free(&dec);
}

static void check_tree(const char *in, size_t len, const char *out, size_t out_len)
{
	struct mime_message *a = mime_parse(in, len, NULL);
	struct mime_message *b = mime_parse(out, out_len, NULL);
	CHECK(a->n_parts == b->n_parts);
	for (size_t i = 0; i < a->n_parts; i++) {
		const struct mime_part *p = &a->parts[i], *q = &b->parts[i];
		CHECK(strcmp(p->type, q->type) == 0 && strcmp(p->subtype, q->subtype) == 0);
		CHECK(p->parent == q->parent && p->n_children == q->n_children);
		if (p->first_child != MIME_NONE)
			continue;
		const char *pb = in + p->body_off, *qb = out + q->body_off;
		if (downgrade_has_8bit(pb, p->body_len)) {
			CHECK(q->encoding != NULL && strcmp(q->encoding, "quoted-printable") == 0);
			check_leaf(pb, p->body_len, qb, q->body_len);
		} else {
			CHECK(p->body_len == q->body_len && memcmp(pb, qb, p->body_len) == 0);
		}
	}
	mime_message_free(&a);
	mime_message_free(&b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *msg = (const char *)data;
	struct buf out;
	const char *why = NULL;
	buf_init(&out, DOWNGRADE_OUT_MAX(size));
	int rc = downgrade_7bit(msg, size, &out, &why);
	bool in8 = downgrade_has_8bit(msg, size);
	if (rc != 0) {
		CHECK(rc == -1 && why != NULL && out.len == 0 && in8);
		CHECK(strcmp(why, "converted message too large") != 0);
		buf_free(&out);
		return 0;
	}
	CHECK(!downgrade_has_8bit(out.data, out.len));
	size_t lin = longest_line(msg, size);
	CHECK(longest_line(out.data, out.len) <= (lin > 76 ? lin : 76));
	if (!in8)
		CHECK(out.len == size && (size == 0 || memcmp(out.data, msg, size) == 0));
	else
		check_tree(msg, size, out.data, out.len);
	buf_free(&out);
	return 0;
}
