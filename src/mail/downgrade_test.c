/* downgrade_test.c - 8-bit to 7-bit conversion: exact outputs, soft
 * breaks, multipart and encapsulated messages, the failures, and a
 * decode-back round trip on generated bodies. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "core/buf.h"
#include "mail/decode.h"
#include "mail/downgrade.h"
#include "mail/mime.h"

#define BIG (16 * 1024 * 1024)

#define HDR_UTF8 "MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n"
#define CTE_8BIT "Content-Transfer-Encoding: 8bit\r\n"
#define CTE_QP "Content-Transfer-Encoding: quoted-printable\r\n"
#define CT_UNKNOWN "Content-Type: text/plain; charset=unknown-8bit\r\n"

/* Longest line of s[0..len), its line end (LF, CR LF) not counted. */
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

static void convert_ok(const char *name, const char *in, size_t len, struct buf *out)
{
	const char *why = NULL;
	buf_init(out, BIG);
	if (downgrade_7bit(in, len, out, &why) != 0)
		fail_msg("%s: failed: %s", name, why);
	if (downgrade_has_8bit(out->data, out->len))
		fail_msg("%s: output has 8-bit data", name);
}

static void expect_same(const char *name, const struct buf *out, const char *want,
			size_t want_len)
{
	if (out->len != want_len || memcmp(out->data != NULL ? out->data : "", want, want_len))
		fail_msg("%s: got\n%.*s\nwant\n%.*s", name, (int)out->len,
			 out->data != NULL ? out->data : "", (int)want_len, want);
}

static void test_has_8bit(void **state)
{
	(void)state;
	assert_false(downgrade_has_8bit(NULL, 0));
	assert_false(downgrade_has_8bit("", 0));
	assert_false(downgrade_has_8bit("plain\r\n\t~\x7f", 10));
	/* NUL is not 8-bit */
	assert_false(downgrade_has_8bit("a\0b", 3));
	assert_true(downgrade_has_8bit("\x80", 1));
	assert_true(downgrade_has_8bit("abc\xff", 4));
	/* only the given length is looked at */
	assert_false(downgrade_has_8bit("abc\xff", 3));
}

struct conv_case {
	const char *name;
	const char *in;
	const char *want;
	size_t inlen, wantlen; /* 0: strlen */
};

#define CONTROLS HDR_UTF8 "\r\n\x01\x7f\xe9\0z\r\n"

static const struct conv_case conv_cases[] = {
	{ "text/plain 8bit", HDR_UTF8 CTE_8BIT "\r\nGr\xc3\xbc\xc3\x9f" "e a=b \r\n\tx\t\r\n",
	  HDR_UTF8 CTE_QP "\r\nGr=C3=BC=C3=9Fe a=3Db=20\r\n\tx=09\r\n", 0, 0 },
	{ "C-T-E missing: added at the end", HDR_UTF8 "Subject: s\r\n\r\n\xc3\xa9\r\n",
	  HDR_UTF8 "Subject: s\r\n" CTE_QP "\r\n=C3=A9\r\n", 0, 0 },
	{ "folded C-T-E replaced",
	  "MIME-Version: 1.0\r\nContent-Type: text/plain; charset=iso-8859-1\r\n"
	  "Content-Transfer-Encoding:\r\n\t8bit\r\n (folded)\r\nSubject: x\r\n\r\ncaf\xe9\r\n",
	  "MIME-Version: 1.0\r\nContent-Type: text/plain; charset=iso-8859-1\r\n" CTE_QP
	  "Subject: x\r\n\r\ncaf=E9\r\n", 0, 0 },
	{ "duplicate C-T-E dropped, any case",
	  "mime-version: 1.0\r\ncontent-transfer-encoding: 8bit\r\nSubject: x\r\n"
	  "CONTENT-TRANSFER-ENCODING: 7bit\r\n\r\n\xe9",
	  "mime-version: 1.0\r\n" CTE_QP "Subject: x\r\n" CT_UNKNOWN "\r\n=E9", 0, 0 },
	{ "declared 7bit but 8-bit", HDR_UTF8 "Content-Transfer-Encoding: 7BIT\r\n\r\n\xc3\xa9",
	  HDR_UTF8 CTE_QP "\r\n=C3=A9", 0, 0 },
	{ "no MIME fields at all", "From: a@b.example\r\nSubject: x\r\n\r\nh\xe9llo\r\n",
	  "From: a@b.example\r\nSubject: x\r\nMIME-Version: 1.0\r\n" CT_UNKNOWN CTE_QP
	  "\r\nh=E9llo\r\n", 0, 0 },
	{ "empty header", "\r\n\xe9\r\n", "MIME-Version: 1.0\r\n" CT_UNKNOWN CTE_QP "\r\n=E9\r\n",
	  0, 0 },
	{ "invalid Content-Type replaced",
	  "MIME-Version: 1.0\r\nContent-Type: garbage\r\nContent-Type: x/\r\n\r\n\xff\r\n",
	  "MIME-Version: 1.0\r\n" CT_UNKNOWN CTE_QP "\r\n=FF\r\n", 0, 0 },
	{ "bare LF", "MIME-Version: 1.0\nContent-Transfer-Encoding: 8bit\nContent-Type: text/plain"
	  "\n\nl\xe9\n \nb \n\nend",
	  "MIME-Version: 1.0\nContent-Transfer-Encoding: quoted-printable\nContent-Type: "
	  "text/plain\n\nl=E9\r\n=20\r\nb=20\r\n\r\nend", 0, 0 },
	{ "bare CR is data", HDR_UTF8 "\r\nx\ry\xe9\r\r\n\r",
	  HDR_UTF8 CTE_QP "\r\nx=0Dy=E9=0D\r\n=0D", 0, 0 },
	{ "trailing blanks at the end of the body", HDR_UTF8 "\r\na \xe9\t",
	  HDR_UTF8 CTE_QP "\r\na =E9=09", 0, 0 },
	{ "controls encoded", CONTROLS, HDR_UTF8 CTE_QP "\r\n=01=7F=E9=00z\r\n",
	  sizeof(CONTROLS) - 1, 0 },
	{ "line starting with two dashes", HDR_UTF8 "\r\n--x\xe9\r\n- -\r\n-\r\n--\r\n",
	  HDR_UTF8 CTE_QP "\r\n=2D-x=E9\r\n- -\r\n-\r\n=2D-\r\n", 0, 0 },
	{ "empty lines kept", HDR_UTF8 "\r\n\xe9\r\n\r\n\r\n",
	  HDR_UTF8 CTE_QP "\r\n=E9\r\n\r\n\r\n", 0, 0 },
	{ "multipart 8bit relabelled, default part type",
	  "MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=b\r\n" CTE_8BIT
	  "\r\n--b\r\n\r\n\xe9\r\n--b\r\n" CTE_8BIT "\r\nascii\r\n--b--\r\n",
	  "MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=b\r\n"
	  "Content-Transfer-Encoding: 7bit\r\n\r\n--b\r\n" CT_UNKNOWN CTE_QP "\r\n=E9\r\n--b\r\n"
	  "Content-Transfer-Encoding: 7bit\r\n\r\nascii\r\n--b--\r\n", 0, 0 },
	{ "7-bit base64 part next to an 8-bit one",
	  "MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n"
	  "Content-Transfer-Encoding: base64\r\n\r\nAAAA\r\n--b\r\n\r\n\xe9\r\n--b--",
	  "MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n"
	  "Content-Transfer-Encoding: base64\r\n\r\nAAAA\r\n--b\r\n" CT_UNKNOWN CTE_QP
	  "\r\n=E9\r\n--b--", 0, 0 },
};

static void test_convert_table(void **state)
{
	(void)state;
	for (size_t k = 0; k < sizeof(conv_cases) / sizeof(conv_cases[0]); k++) {
		const struct conv_case *c = &conv_cases[k];
		size_t len = c->inlen ? c->inlen : strlen(c->in);
		size_t want_len = c->wantlen ? c->wantlen : strlen(c->want);
		struct buf out;
		convert_ok(c->name, c->in, len, &out);
		expect_same(c->name, &out, c->want, want_len);
		buf_free(&out);
	}
}

static void add_rep(struct buf *b, const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		assert_int_equal(buf_append_str(b, s), 0);
}

/* Lines around the 76-column limit. */
static void test_soft_breaks(void **state)
{
	(void)state;
	struct buf in, want;
	buf_init(&in, BIG);
	buf_init(&want, BIG);
	const char *hdr = HDR_UTF8 CTE_8BIT "\r\n";
	buf_append_str(&in, hdr);
	buf_append_str(&want, HDR_UTF8 CTE_QP "\r\n");

	/* an escape is never split: 74 + "=C3" would pass 75 */
	add_rep(&in, "a", 74), buf_append_str(&in, "\xc3\xa9"), add_rep(&in, "b", 10);
	buf_append_str(&in, "\r\n");
	add_rep(&want, "a", 74), buf_append_str(&want, "=\r\n=C3=A9");
	add_rep(&want, "b", 10), buf_append_str(&want, "\r\n");
	/* exactly 76: no soft break */
	add_rep(&in, "y", 76), buf_append_str(&in, "\r\n");
	add_rep(&want, "y", 76), buf_append_str(&want, "\r\n");
	/* 77: 75 and the '=', then 2 */
	add_rep(&in, "z", 77), buf_append_str(&in, "\r\n");
	add_rep(&want, "z", 75), buf_append_str(&want, "=\r\nzz\r\n");
	/* a soft break before "--" */
	add_rep(&in, "d", 75), buf_append_str(&in, "--x\r\n");
	add_rep(&want, "d", 75), buf_append_str(&want, "=\r\n=2D-x\r\n");
	/* '=' escaped; the last escape may end at column 76 */
	add_rep(&in, "e", 73), buf_append_str(&in, "==\r\n");
	add_rep(&want, "e", 73), buf_append_str(&want, "=\r\n=3D=3D\r\n");
	add_rep(&in, "f", 73), buf_append_str(&in, "=\r\n");
	add_rep(&want, "f", 73), buf_append_str(&want, "=3D\r\n");
	/* trailing space escaped, and moved to the next line */
	add_rep(&in, "g", 75), buf_append_str(&in, " \r\n");
	add_rep(&want, "g", 75), buf_append_str(&want, "=\r\n=20\r\n");
	/* an inner space stays literal */
	add_rep(&in, "h", 74), buf_append_str(&in, " x\r\n");
	add_rep(&want, "h", 74), buf_append_str(&want, " x\r\n");
	/* 200 escapes: 25 to a line */
	add_rep(&in, "\xff", 200), buf_append_str(&in, "\r\n");
	for (int l = 0; l < 8; l++) {
		add_rep(&want, "=FF", 25);
		buf_append_str(&want, l < 7 ? "=\r\n" : "\r\n");
	}

	struct buf out;
	convert_ok("soft breaks", in.data, in.len, &out);
	expect_same("soft breaks", &out, want.data, want.len);
	assert_true(longest_line(out.data, out.len) <= 76);

	/* and it decodes back to the body */
	size_t body = strlen(hdr);
	size_t obody = strlen(HDR_UTF8 CTE_QP "\r\n");
	struct decode_qp d;
	struct buf dec;
	buf_init(&dec, BIG);
	decode_qp_init(&d);
	assert_int_equal(decode_qp(&d, out.data + obody, out.len - obody, &dec), 0);
	assert_int_equal(decode_qp_finish(&d, &dec), 0);
	assert_int_equal(dec.len, in.len - body);
	assert_memory_equal(dec.data, in.data + body, dec.len);
	buf_free(&dec);
	buf_free(&out);
	buf_free(&in);
	buf_free(&want);
}

static void test_multipart_mixed(void **state)
{
	(void)state;
	const char *attach = "Content-Type: application/octet-stream; name=\"a.bin\"\r\n"
			     "Content-Transfer-Encoding: base64\r\n"
			     "Content-Disposition: attachment\r\n\r\n"
			     "AAECAwQF/w==\r\nAAECAwQF/w==\r\n";
	struct buf in, want, out;
	buf_init(&in, BIG);
	buf_init(&want, BIG);
	const char *top = "From: a@b.example\r\nMIME-Version: 1.0\r\n"
			  "Content-Type: multipart/mixed; boundary=\"XX\"\r\n\r\n"
			  "This is a multi-part message.\r\n--XX\r\n";
	const char *text_hdr = "Content-Type: text/plain; charset=utf-8\r\n";
	buf_append_str(&in, top);
	buf_append_str(&in, text_hdr);
	buf_append_str(&in, CTE_8BIT "\r\ncaf\xc3\xa9 \r\n--XX\r\n");
	buf_append_str(&in, attach);
	buf_append_str(&in, "--XX--\r\nepilogue\r\n");
	buf_append_str(&want, top);
	buf_append_str(&want, text_hdr);
	buf_append_str(&want, CTE_QP "\r\ncaf=C3=A9=20\r\n--XX\r\n");
	buf_append_str(&want, attach);
	buf_append_str(&want, "--XX--\r\nepilogue\r\n");
	convert_ok("multipart/mixed", in.data, in.len, &out);
	expect_same("multipart/mixed", &out, want.data, want.len);
	/* the attachment is there byte for byte, and the tree is the same */
	assert_non_null(strstr(out.data, attach));
	struct mime_message *m = mime_parse(out.data, out.len, NULL);
	assert_int_equal(m->n_parts, 3);
	assert_string_equal(m->parts[1].encoding, "quoted-printable");
	assert_string_equal(m->parts[2].encoding, "base64");
	mime_message_free(&m);
	buf_free(&out);
	buf_free(&in);
	buf_free(&want);
}

static void test_nested_rfc822(void **state)
{
	(void)state;
	const char *in =
		"MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=o\r\n\r\n"
		"--o\r\nContent-Type: text/plain\r\n\r\nplain ascii\r\n"
		"--o\r\nContent-Type: message/rfc822\r\n" CTE_8BIT "\r\n"
		"From: x@y.example\r\nSubject: inner\r\n"
		"Content-Type: multipart/alternative; boundary=i\r\n\r\n"
		"--i\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n\xc3\xa9t\xc3\xa9\r\n"
		"--i\r\nContent-Type: text/html\r\n\r\n<p>ascii</p>\r\n--i--\r\n"
		"--o--\r\n";
	const char *want =
		"MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=o\r\n\r\n"
		"--o\r\nContent-Type: text/plain\r\n\r\nplain ascii\r\n"
		"--o\r\nContent-Type: message/rfc822\r\nContent-Transfer-Encoding: 7bit\r\n\r\n"
		"From: x@y.example\r\nSubject: inner\r\n"
		"Content-Type: multipart/alternative; boundary=i\r\nMIME-Version: 1.0\r\n\r\n"
		"--i\r\nContent-Type: text/plain; charset=utf-8\r\n" CTE_QP "\r\n=C3=A9t=C3=A9\r\n"
		"--i\r\nContent-Type: text/html\r\n\r\n<p>ascii</p>\r\n--i--\r\n"
		"--o--\r\n";
	struct buf out;
	convert_ok("nested", in, strlen(in), &out);
	expect_same("nested", &out, want, strlen(want));
	buf_free(&out);

	/* a single-part encapsulated message */
	const char *in2 = "Content-Type: message/rfc822\r\n\r\nSubject: s\r\n\r\n\xe9\r\n";
	const char *want2 = "Content-Type: message/rfc822\r\nMIME-Version: 1.0\r\n\r\n"
			    "Subject: s\r\nMIME-Version: 1.0\r\n" CT_UNKNOWN CTE_QP "\r\n=E9\r\n";
	convert_ok("single inner", in2, strlen(in2), &out);
	expect_same("single inner", &out, want2, strlen(want2));
	buf_free(&out);
}

struct fail_case {
	const char *name;
	const char *in;
	const char *why;
};

#define MP "MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n"
#define WHY_HDR "8-bit data in a header field"

static const struct fail_case fail_cases[] = {
	{ "8-bit Subject", "Subject: caf\xc3\xa9\r\n\r\nbody\r\n", WHY_HDR },
	{ "8-bit header and body", "Subject: \xe9\r\n\r\n\xe9\r\n", WHY_HDR },
	{ "8-bit in a header without a body", "Subject: \xe9", "8-bit data in a header field" },
	{ "8-bit in a part header", MP "--b\r\nContent-Description: \xe9\r\n\r\nx\r\n--b--\r\n",
	  "8-bit data in a header field" },
	{ "8-bit in an encapsulated header",
	  "Content-Type: message/rfc822\r\n\r\nSubject: \xe9\r\n\r\nx\r\n",
	  "8-bit data in a header field" },
	{ "8-bit in base64", "MIME-Version: 1.0\r\nContent-Transfer-Encoding: base64\r\n\r\n"
	  "AAAA\xff\r\n", "8-bit data in a base64/quoted-printable part" },
	{ "8-bit in a base64 part", MP "--b\r\nContent-Transfer-Encoding: base64\r\n\r\n"
	  "AA\xe9\r\n--b--\r\n", "8-bit data in a base64/quoted-printable part" },
	{ "8-bit in quoted-printable", "Content-Transfer-Encoding: Quoted-Printable\r\n\r\n"
	  "=E9\xe9\r\n", "8-bit data in a base64/quoted-printable part" },
	{ "8-bit in an encoded message/rfc822", "Content-Type: message/rfc822\r\n"
	  "Content-Transfer-Encoding: base64\r\n\r\n\xe9\r\n",
	  "8-bit data in a base64/quoted-printable part" },
	{ "binary", "Content-Transfer-Encoding: binary\r\n\r\n\xe9\r\n",
	  "8-bit data in a binary part" },
	{ "x-uuencode", "Content-Transfer-Encoding: x-uuencode\r\n\r\n\xe9\r\n",
	  "8-bit data in a part with an unknown transfer encoding" },
	{ "message/global", "Content-Type: message/global\r\n\r\nSubject: \xe9\r\n\r\nx\r\n",
	  "8-bit data in a message/global part" },
	{ "message/partial", "Content-Type: message/partial; id=x; number=1\r\n\r\n\xe9\r\n",
	  "8-bit data in a message part that must be 7-bit" },
	{ "preamble", MP "pr\xe9" "amble\r\n--b\r\n\r\nx\r\n--b--\r\n",
	  "8-bit data in a multipart preamble or epilogue" },
	{ "epilogue", MP "--b\r\n\r\nx\r\n--b--\r\n\xe9\r\n",
	  "8-bit data in a multipart preamble or epilogue" },
	{ "delimiter padding", MP "--b \xe9\r\n\r\nx\r\n--b--\r\n",
	  "8-bit data in a multipart preamble or epilogue" },
	{ "multipart without boundary", "Content-Type: multipart/mixed\r\n\r\n\xe9\r\n",
	  "8-bit data in a multipart without a usable boundary" },
	{ "multipart, boundary never found", MP "\xe9\r\n",
	  "8-bit data in a multipart without a usable boundary" },
};

static void test_fail_table(void **state)
{
	(void)state;
	for (size_t k = 0; k < sizeof(fail_cases) / sizeof(fail_cases[0]); k++) {
		const struct fail_case *c = &fail_cases[k];
		struct buf out;
		const char *why = NULL;
		buf_init(&out, BIG);
		buf_append_str(&out, "kept");
		if (downgrade_7bit(c->in, strlen(c->in), &out, &why) != -1)
			fail_msg("%s: converted to '%s'", c->name, out.data);
		if (why == NULL || strcmp(why, c->why) != 0)
			fail_msg("%s: why '%s', want '%s'", c->name, why, c->why);
		/* out is as it was */
		assert_int_equal(out.len, 4);
		assert_string_equal(out.data, "kept");
		buf_free(&out);
	}
}

static void expect_fail(const char *in, size_t len, size_t max, const char *want_why)
{
	struct buf out;
	const char *why = NULL;
	buf_init(&out, max);
	assert_int_equal(downgrade_7bit(in, len, &out, &why), -1);
	assert_non_null(why);
	assert_string_equal(why, want_why);
	assert_int_equal(out.len, 0);
	buf_free(&out);
}

static void test_fail_limits(void **state)
{
	(void)state;
	struct buf in;
	buf_init(&in, DOWNGRADE_MAX + 1024 * 1024);

	/* deeper than the parser goes */
	add_rep(&in, "Content-Type: message/rfc822\r\n\r\n", MIME_DEPTH_MAX + 1);
	buf_append_str(&in, "\r\n\xe9\r\n");
	expect_fail(in.data, in.len, BIG, "message nested too deeply to convert");
	/* ...while at the limit it converts */
	buf_reset(&in);
	add_rep(&in, "Content-Type: message/rfc822\r\n\r\n", MIME_DEPTH_MAX);
	buf_append_str(&in, "\r\n\xe9\r\n");
	struct buf out;
	convert_ok("depth", in.data, in.len, &out);
	buf_free(&out);

	/* more parts than the parser keeps, 8-bit in the last */
	buf_reset(&in);
	buf_append_str(&in, MP);
	add_rep(&in, "--b\r\n\r\nx\r\n", MIME_PARTS_MAX);
	buf_append_str(&in, "--b\r\n\r\n\xe9\r\n--b--\r\n");
	expect_fail(in.data, in.len, BIG, "too many MIME parts to convert");

	/* out too small: out is left as it was */
	const char *m = "Subject: s\r\n\r\n\xe9\xe9\xe9\r\n";
	expect_fail(m, strlen(m), strlen(m) + 10, "converted message too large");
	/* a 7-bit message that does not fit either */
	expect_fail("Subject: s\r\n\r\nx\r\n", 17, 5, "converted message too large");

	/* the size cap */
	buf_reset(&in);
	add_rep(&in, "Subject: s\r\n\r\n", 1);
	while (in.len < DOWNGRADE_MAX - 2)
		add_rep(&in, "0123456789abcdef0123456789abcdef0123456789abcdef0123456789a\r\n",
			1024);
	in.len = DOWNGRADE_MAX - 2;
	buf_append_str(&in, "\xe9\xe9\xe9");
	assert_true(in.len > DOWNGRADE_MAX);
	expect_fail(in.data, in.len, 2 * DOWNGRADE_MAX, "message too large to convert");
	/* without 8-bit data, size does not matter: copied as it is */
	in.data[in.len - 3] = 'x', in.data[in.len - 2] = 'y', in.data[in.len - 1] = 'z';
	buf_init(&out, 2 * DOWNGRADE_MAX);
	const char *why = NULL;
	assert_int_equal(downgrade_7bit(in.data, in.len, &out, &why), 0);
	assert_int_equal(out.len, in.len);
	assert_memory_equal(out.data, in.data, in.len);
	buf_free(&out);
	buf_free(&in);
}

#define NULS "NUL\0in\0it\r\n\r\n\0"

static const struct { const char *in; size_t len; } seven_bit[] = {
	{ "", 0 },
	{ "Subject: x\r\n\r\nbody\r\n", 0 },
	{ "no header end", 0 },
	{ "Content-Transfer-Encoding: 8bit\r\n\r\nsays 8bit, is not\r\n", 0 },
	{ "Content-Transfer-Encoding: binary\r\n\r\nlong line\rwith CR\r\n", 0 },
	{ MP "--b\r\n" CTE_8BIT "\r\nx\r\n--b--\r\n", 0 },
	{ "Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n\r\nunclosed", 0 },
	{ "Content-Type: message/global\r\n\r\nSubject: ascii\r\n\r\n", 0 },
	{ "a: b\n\nbare LF \n", 0 },
	{ NULS, sizeof(NULS) - 1 },
};

static void test_7bit_identical(void **state)
{
	(void)state;
	for (size_t k = 0; k < sizeof(seven_bit) / sizeof(seven_bit[0]); k++) {
		const char *in = seven_bit[k].in;
		size_t len = seven_bit[k].len ? seven_bit[k].len : strlen(in);
		struct buf out;
		const char *why = NULL;
		buf_init(&out, BIG);
		buf_append_str(&out, "prefix:");
		assert_int_equal(downgrade_7bit(in, len, &out, &why), 0);
		assert_int_equal(out.len, 7 + len);
		assert_memory_equal(out.data, "prefix:", 7);
		if (len > 0)
			assert_memory_equal(out.data + 7, in, len);
		buf_free(&out);
	}
}

/* s[0..len) with every bare LF made CR LF: what decoding a converted body
 * must give back. */
static void crlf(const char *s, size_t len, struct buf *out)
{
	buf_init(out, BIG);
	for (size_t i = 0; i < len; i++) {
		if (s[i] == '\n' && (i == 0 || s[i - 1] != '\r'))
			buf_append(out, "\r", 1);
		buf_append(out, s + i, 1);
	}
}

/* The tree of out is the tree of in; a leaf that had 8-bit data decodes
 * back to its body, every other leaf is byte for byte the same. */
static void check_round_trip(const char *in, size_t len, const char *out, size_t out_len)
{
	struct mime_message *a = mime_parse(in, len, NULL);
	struct mime_message *b = mime_parse(out, out_len, NULL);
	assert_int_equal(a->n_parts, b->n_parts);
	for (size_t i = 0; i < a->n_parts; i++) {
		const struct mime_part *p = &a->parts[i], *q = &b->parts[i];
		assert_string_equal(p->type, q->type);
		assert_string_equal(p->subtype, q->subtype);
		assert_int_equal(p->parent, q->parent);
		if (p->first_child != MIME_NONE)
			continue;
		const char *pb = in + p->body_off, *qb = out + q->body_off;
		if (!downgrade_has_8bit(pb, p->body_len)) {
			assert_int_equal(p->body_len, q->body_len);
			assert_memory_equal(pb, qb, p->body_len);
			continue;
		}
		assert_non_null(q->encoding);
		assert_string_equal(q->encoding, "quoted-printable");
		assert_true(longest_line(qb, q->body_len) <= 76);
		struct buf want, dec;
		struct decode_qp d;
		crlf(pb, p->body_len, &want);
		buf_init(&dec, BIG);
		decode_qp_init(&d);
		assert_int_equal(decode_qp(&d, qb, q->body_len, &dec), 0);
		assert_int_equal(decode_qp_finish(&d, &dec), 0);
		assert_int_equal(dec.len, want.len);
		if (want.len > 0)
			assert_memory_equal(dec.data, want.data, want.len);
		buf_free(&want);
		buf_free(&dec);
	}
	mime_message_free(&a);
	mime_message_free(&b);
}

static uint32_t rnd(uint32_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 17;
	*s ^= *s << 5;
	return *s;
}

static void random_body(uint32_t *seed, struct buf *b)
{
	static const char alpha[] = " \t\r\n=-.az09~\0";
	size_t n = rnd(seed) % 400;
	for (size_t i = 0; i < n; i++) {
		uint32_t r = rnd(seed);
		char c;
		if (r % 4 == 0)
			c = (char)(0x80 + r / 4 % 128);
		else if (r % 97 == 1)
			c = 'x'; /* sometimes a long run */
		else
			c = alpha[r / 4 % (sizeof(alpha) - 1)];
		if (c == 'x') {
			add_rep(b, "x", r / 97 % 200);
			continue;
		}
		buf_append(b, &c, 1);
	}
}

static void test_round_trip(void **state)
{
	(void)state;
	uint32_t seed = 2463534242u;
	for (int iter = 0; iter < 500; iter++) {
		struct buf in, out;
		buf_init(&in, BIG);
		if (iter % 2 == 0) {
			buf_append_str(&in, "Subject: r\r\n\r\n");
			random_body(&seed, &in);
		} else {
			buf_append_str(&in, "MIME-Version: 1.0\r\nContent-Type: multipart/mixed; "
					    "boundary=BOUNDARY\r\n\r\n");
			for (int k = 0; k < 3; k++) {
				buf_append_str(&in, "--BOUNDARY\r\n");
				if (k == 1)
					buf_append_str(&in, CTE_8BIT);
				buf_append_str(&in, "\r\n");
				random_body(&seed, &in);
				buf_append_str(&in, "\r\n");
			}
			buf_append_str(&in, "--BOUNDARY--\r\n");
		}
		convert_ok("round trip", in.data, in.len, &out);
		check_round_trip(in.data, in.len, out.data, out.len);
		buf_free(&in);
		buf_free(&out);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_has_8bit),
		cmocka_unit_test(test_convert_table),
		cmocka_unit_test(test_soft_breaks),
		cmocka_unit_test(test_multipart_mixed),
		cmocka_unit_test(test_nested_rfc822),
		cmocka_unit_test(test_fail_table),
		cmocka_unit_test(test_fail_limits),
		cmocka_unit_test(test_7bit_identical),
		cmocka_unit_test(test_round_trip),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
