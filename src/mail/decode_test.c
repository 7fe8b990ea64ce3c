/* decode_test.c - base64, quoted-printable and charset decoders, fed in one
 * piece, byte by byte and split at every point, with bounded output. */
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

enum kind { B64, QP, CHARSET };

struct dcase {
	const char *name;
	enum kind kind;
	const char *charset;
	const char *input;
	const char *want;
	size_t inlen, wantlen; /* 0: strlen */
};

#define JA_AIU "\xe3\x81\x82\xe3\x81\x84\xe3\x81\x86" /* あいう in UTF-8 */
#define FFFD "\xef\xbf\xbd"

static const struct dcase cases[] = {
	/* base64 */
	{ "b64 empty", B64, NULL, "", "", 0, 0 },
	{ "b64 rfc4648 f", B64, NULL, "Zg==", "f", 0, 0 },
	{ "b64 rfc4648 fo", B64, NULL, "Zm8=", "fo", 0, 0 },
	{ "b64 rfc4648 foobar", B64, NULL, "Zm9vYmFy", "foobar", 0, 0 },
	{ "b64 line breaks", B64, NULL, "Zm9v\r\nYmFy\r\n", "foobar", 0, 0 },
	{ "b64 spaces and garbage", B64, NULL, " Zm 9v*Ym!Fy ", "foobar", 0, 0 },
	{ "b64 unpadded tail", B64, NULL, "Zm9vYg", "foob", 0, 0 },
	{ "b64 concatenated", B64, NULL, "Zg==Zm8=", "ffo", 0, 0 },
	{ "b64 binary", B64, NULL, "AP8A/w==", "\0\xff\0\xff", 0, 4 },
	{ "b64 utf8", B64, NULL, "44GC44GE44GG", JA_AIU, 0, 0 },
	/* quoted-printable */
	{ "qp plain", QP, NULL, "hello world", "hello world", 0, 0 },
	{ "qp hex", QP, NULL, "caf=C3=A9", "caf\xc3\xa9", 0, 0 },
	{ "qp lower hex", QP, NULL, "caf=c3=a9", "caf\xc3\xa9", 0, 0 },
	{ "qp soft break crlf", QP, NULL, "long=\r\nline\r\n", "longline\r\n", 0, 0 },
	{ "qp soft break lf", QP, NULL, "long=\nline", "longline", 0, 0 },
	{ "qp soft break cr", QP, NULL, "long=\rline", "longline", 0, 0 },
	{ "qp soft break padded", QP, NULL, "long= \t\r\nline", "longline", 0, 0 },
	{ "qp trailing ws dropped", QP, NULL, "a  \r\nb \t\nc", "a\r\nb\nc", 0, 0 },
	{ "qp inner ws kept", QP, NULL, "a \t b", "a \t b", 0, 0 },
	{ "qp ws at end dropped", QP, NULL, "a  ", "a", 0, 0 },
	{ "qp bad escape", QP, NULL, "a=ZZb", "a=ZZb", 0, 0 },
	{ "qp half escape", QP, NULL, "a=4Zb", "a=4Zb", 0, 0 },
	{ "qp eq eq", QP, NULL, "==41", "=A", 0, 0 },
	{ "qp eq space text", QP, NULL, "a= b", "a= b", 0, 0 },
	{ "qp eq at end", QP, NULL, "a=", "a", 0, 0 },
	{ "qp half escape at end", QP, NULL, "a=4", "a=4", 0, 0 },
	{ "qp ws before eq", QP, NULL, "a =\r\nb", "a b", 0, 0 },
	{ "qp nul", QP, NULL, "=00x", "\0x", 0, 2 },
	{ "qp literal 8bit", QP, NULL, "\xe9t\xe9", "\xe9t\xe9", 0, 0 },
	/* charsets */
	{ "utf-8", CHARSET, "utf-8", JA_AIU, JA_AIU, 0, 0 },
	{ "utf-8 invalid byte", CHARSET, "UTF-8", "a\xffz", "a" FFFD "z", 0, 0 },
	{ "utf-8 beyond U+10FFFF", CHARSET, "UTF-8", "a\xf6\x8c\x8c\x8cz", "a" FFFD "z", 0, 0 },
	{ "utf-8 surrogate", CHARSET, "UTF-8", "a\xed\xa0\x80z", "a" FFFD FFFD FFFD "z", 0, 0 },
	{ "utf-8 overlong", CHARSET, "UTF-8", "a\xc0\xafz", "a" FFFD FFFD "z", 0, 0 },
	{ "utf-8 truncated at end", CHARSET, "UTF-8", "a\xe3\x81", "a" FFFD, 0, 0 },
	{ "iso-8859-1", CHARSET, "ISO-8859-1", "caf\xe9", "caf\xc3\xa9", 0, 0 },
	{ "iso-8859-15 euro", CHARSET, "iso-8859-15", "\xa4", "\xe2\x82\xac", 0, 0 },
	{ "windows-1252 quotes", CHARSET, "windows-1252", "\x93hi\x94",
	  "\xe2\x80\x9chi\xe2\x80\x9d", 0, 0 },
	{ "windows-1251", CHARSET, "Windows-1251", "\xcf\xf0\xe8", "\xd0\x9f\xd1\x80\xd0\xb8",
	  0, 0 },
	{ "shift_jis", CHARSET, "Shift_JIS", "\x82\xa0\x82\xa2\x82\xa4", JA_AIU, 0, 0 },
	{ "shift_jis nec circled one", CHARSET, "shift_jis", "\x87\x40", "\xe2\x91\xa0", 0, 0 },
	{ "shift_jis truncated", CHARSET, "Shift_JIS", "\x82\xa0\x82", "\xe3\x81\x82" FFFD, 0, 0 },
	{ "euc-jp", CHARSET, "EUC-JP", "\xa4\xa2\xa4\xa4\xa4\xa6", JA_AIU, 0, 0 },
	{ "iso-2022-jp", CHARSET, "ISO-2022-JP", "\x1b$B$\"$$$&\x1b(B", JA_AIU, 0, 0 },
	{ "iso-2022-jp mixed", CHARSET, "iso-2022-jp", "Re: \x1b$B$\"\x1b(B!", "Re: \xe3\x81\x82!",
	  0, 0 },
	{ "iso-2022-jp 8bit garbage", CHARSET, "ISO-2022-JP", "a\xe9z", "a" FFFD "z", 0, 0 },
	/* ISO-2022-JP as Windows writes it (CP50221), read through CP932 */
	{ "iso-2022-jp nec row 13", CHARSET, "ISO-2022-JP", "\x1b$B-!-*-j-5\x1b(B",
	  "\xe2\x91\xa0\xe2\x91\xa9\xe3\x88\xb1\xe2\x85\xa0", 0, 0 },
	{ "iso-2022-jp nec-selected ibm rows", CHARSET, "iso-2022-jp", "\x1b$By!|b\x1b(B",
	  "\xe7\xba\x8a\xe9\xab\x99", 0, 0 },
	{ "iso-2022-jp wave dash as in cp932", CHARSET, "ISO-2022-JP", "\x1b$B!A\x1b(B",
	  "\xef\xbd\x9e", 0, 0 },
	{ "iso-2022-jp half-width katakana", CHARSET, "ISO-2022-JP", "a\x1b(I6E\x1b(Bb",
	  "a\xef\xbd\xb6\xef\xbe\x85" "b", 0, 0 },
	{ "iso-2022-jp katakana out of range", CHARSET, "ISO-2022-JP", "\x1b(I`\x1b(B",
	  FFFD, 0, 0 },
	{ "iso-2022-jp so si katakana", CHARSET, "ISO-2022-JP", "a\x0e" "6E\x0f" "b",
	  "a\xef\xbd\xb6\xef\xbe\x85" "b", 0, 0 },
	{ "iso-2022-jp roman", CHARSET, "ISO-2022-JP", "\x1b(Ja\\~\x1b(B", "a\\~", 0, 0 },
	{ "iso-2022-jp 1990 announcer", CHARSET, "ISO-2022-JP", "\x1b&@\x1b$BF|\x1b(B",
	  "\xe6\x97\xa5", 0, 0 },
	{ "iso-2022-jp esc $ ( B", CHARSET, "ISO-2022-JP", "\x1b$(BF|\x1b(B", "\xe6\x97\xa5",
	  0, 0 },
	{ "iso-2022-jp line end inside kanji", CHARSET, "ISO-2022-JP", "\x1b$BF|\r\nF|\x1b(B",
	  "\xe6\x97\xa5\r\n\xe6\x97\xa5", 0, 0 },
	{ "iso-2022-jp row cp932 lacks", CHARSET, "ISO-2022-JP", "\x1b$B)!F|\x1b(B",
	  FFFD "\xe6\x97\xa5", 0, 0 },
	{ "iso-2022-jp jis x 0212", CHARSET, "ISO-2022-JP", "\x1b$(D+!\x1b(Ba", FFFD "a", 0, 0 },
	{ "iso-2022-jp gb2312", CHARSET, "ISO-2022-JP", "\x1b$A0!\x1b(Ba", FFFD "a", 0, 0 },
	{ "iso-2022-jp single shift", CHARSET, "ISO-2022-JP", "\x1b.A\x1bNia", FFFD "a", 0, 0 },
	{ "iso-2022-jp unknown escape", CHARSET, "ISO-2022-JP", "a\x1b[31mb",
	  "a" FFFD "[31mb", 0, 0 },
	/* (what followed the ESC is text in the set in effect: "$x", no kanji) */
	{ "iso-2022-jp bad escape in kanji", CHARSET, "ISO-2022-JP", "\x1b$BF|\x1b$xF|\x1b(B",
	  "\xe6\x97\xa5" FFFD FFFD "\xe6\x97\xa5", 0, 0 },
	{ "iso-2022-jp esc esc", CHARSET, "ISO-2022-JP", "\x1b\x1b$BF|\x1b(B",
	  FFFD "\xe6\x97\xa5", 0, 0 },
	{ "iso-2022-jp lead cut by esc", CHARSET, "ISO-2022-JP", "\x1b$BF\x1b(Bx", FFFD "x", 0, 0 },
	{ "iso-2022-jp lead cut by space", CHARSET, "ISO-2022-JP", "\x1b$BF F|\x1b(B",
	  FFFD " \xe6\x97\xa5", 0, 0 },
	{ "iso-2022-jp lead at end", CHARSET, "ISO-2022-JP", "\x1b$BF|F", "\xe6\x97\xa5" FFFD,
	  0, 0 },
	{ "iso-2022-jp escape at end", CHARSET, "ISO-2022-JP", "a\x1b$(", "a" FFFD, 0, 0 },
	{ "iso-2022-jp nul after esc", CHARSET, "ISO-2022-JP", "\x1b\0a", FFFD "\0a", 3, 5 },
	{ "csISO2022JP", CHARSET, "csISO2022JP", "\x1b$B-!\x1b(B", "\xe2\x91\xa0", 0, 0 },
	{ "cp50221", CHARSET, "CP50221", "\x1b(I1\x1b(B", "\xef\xbd\xb1", 0, 0 },
	{ "iso-2022-jp-2 is glibc's", CHARSET, "ISO-2022-JP-2", "\x1b$(D+!\x1b(B",
	  "\xc3\xa1", 0, 0 },
	{ "x-euc-jp", CHARSET, "x-euc-jp", "\xa4\xa2\xa4\xa4\xa4\xa6", JA_AIU, 0, 0 },
};

static const char *want_of(const struct dcase *c, size_t *len_r)
{
	*len_r = c->wantlen ? c->wantlen : strlen(c->want);
	return c->want;
}

struct dec {
	enum kind kind;
	struct decode_b64 b;
	struct decode_qp q;
	struct decode_charset cs;
};

static void dec_init(struct dec *d, const struct dcase *c)
{
	const char *err;
	d->kind = c->kind;
	switch (c->kind) {
	case B64:
		decode_b64_init(&d->b);
		break;
	case QP:
		decode_qp_init(&d->q);
		break;
	case CHARSET:
		if (decode_charset_init(&d->cs, c->charset, &err) < 0)
			fail_msg("%s: %s", c->name, err);
		break;
	}
}

static int dec_feed(struct dec *d, const char *p, size_t n, struct buf *out)
{
	switch (d->kind) {
	case B64:
		return decode_b64(&d->b, p, n, out);
	case QP:
		return decode_qp(&d->q, p, n, out);
	default:
		return decode_charset(&d->cs, p, n, out);
	}
}

static int dec_finish(struct dec *d, struct buf *out)
{
	int ret;
	switch (d->kind) {
	case B64:
		return decode_b64_finish(&d->b, out);
	case QP:
		return decode_qp_finish(&d->q, out);
	default:
		ret = decode_charset_finish(&d->cs, out);
		decode_charset_free(&d->cs);
		return ret;
	}
}

/* Decode in[0..len) cut at cuts[]; each chunk is an exact-size heap copy so
 * that ASan sees reads past it.  Returns 0, or -1 after an overflow. */
static int run(const struct dcase *c, const char *in, size_t len, const size_t *cuts,
	       size_t ncuts, struct buf *out)
{
	struct dec d;
	size_t pos = 0;
	int ret = 0;

	dec_init(&d, c);
	for (size_t k = 0; k <= ncuts && ret == 0; k++) {
		size_t end = k < ncuts ? cuts[k] : len;
		size_t n = end - pos;
		char *chunk = malloc(n ? n : 1);
		assert_non_null(chunk);
		memcpy(chunk, in + pos, n);
		ret = dec_feed(&d, chunk, n, out);
		free(chunk);
		pos = end;
	}
	if (ret == 0)
		ret = dec_finish(&d, out);
	else if (d.kind == CHARSET)
		decode_charset_free(&d.cs);
	return ret;
}

static void check(const struct dcase *c, const struct buf *out, const char *want, size_t wlen,
		  const char *how)
{
	if (out->len != wlen || (wlen && memcmp(out->data, want, wlen) != 0))
		fail_msg("%s (%s): got '%.*s' (%zu bytes)", c->name, how, (int)out->len,
			 out->data ? out->data : "", out->len);
}

static void test_table(void **state)
{
	(void)state;
	for (size_t k = 0; k < sizeof(cases) / sizeof(cases[0]); k++) {
		const struct dcase *c = &cases[k];
		size_t len = c->inlen ? c->inlen : strlen(c->input);
		size_t wlen;
		const char *want = want_of(c, &wlen);
		struct buf out;

		buf_init(&out, 4096);
		assert_int_equal(run(c, c->input, len, NULL, 0, &out), 0);
		check(c, &out, want, wlen, "one piece");
		buf_free(&out);

		/* Every single split point, empty chunks included. */
		for (size_t i = 0; i <= len; i++) {
			buf_init(&out, 4096);
			assert_int_equal(run(c, c->input, len, &i, 1, &out), 0);
			check(c, &out, want, wlen, "split");
			buf_free(&out);
		}
		/* Byte by byte. */
		size_t *cuts = calloc(len + 1, sizeof(*cuts));
		assert_non_null(cuts);
		for (size_t i = 0; i < len; i++)
			cuts[i] = i + 1;
		buf_init(&out, 4096);
		assert_int_equal(run(c, c->input, len, cuts, len, &out), 0);
		check(c, &out, want, wlen, "bytewise");
		buf_free(&out);
		free(cuts);

		/* Output capped one byte short: -1, and a prefix of the result. */
		if (wlen > 0) {
			buf_init(&out, wlen - 1);
			assert_int_equal(run(c, c->input, len, NULL, 0, &out), -1);
			assert_true(out.len <= wlen - 1);
			if (out.len && memcmp(out.data, want, out.len) != 0)
				fail_msg("%s: capped output is not a prefix", c->name);
			buf_free(&out);
			buf_init(&out, wlen);
			assert_int_equal(run(c, c->input, len, NULL, 0, &out), 0);
			buf_free(&out);
		}
	}
}

static void test_overflow_sticks(void **state)
{
	(void)state;
	struct decode_b64 b;
	struct decode_qp q;
	struct buf out;

	buf_init(&out, 2);
	decode_b64_init(&b);
	assert_int_equal(decode_b64(&b, "Zm9v", 4, &out), -1);
	assert_true(b.overflow);
	assert_int_equal(out.len, 2);
	assert_int_equal(decode_b64(&b, "", 0, &out), -1);
	assert_int_equal(decode_b64_finish(&b, &out), -1);
	buf_reset(&out);
	decode_qp_init(&q);
	assert_int_equal(decode_qp(&q, "abc", 3, &out), -1);
	assert_int_equal(decode_qp(&q, "d", 1, &out), -1);
	assert_int_equal(decode_qp_finish(&q, &out), -1);
	buf_free(&out);

	/* UTF-8 output is cut on a character boundary. */
	struct decode_charset cs;
	const char *err;
	buf_init(&out, 4);
	assert_int_equal(decode_charset_init(&cs, "EUC-JP", &err), 0);
	assert_int_equal(decode_charset(&cs, "\xa4\xa2\xa4\xa4", 4, &out), -1);
	assert_int_equal(out.len, 3);
	assert_int_equal(decode_charset_finish(&cs, &out), -1);
	decode_charset_free(&cs);
	decode_charset_free(&cs);
	buf_free(&out);
}

static void test_qp_ws_cap(void **state)
{
	(void)state;
	char in[DECODE_QP_WS_MAX + 3];
	struct decode_qp q;
	struct buf out;

	/* Held whitespace up to the cap is dropped before a line break ... */
	memset(in, ' ', sizeof(in));
	in[DECODE_QP_WS_MAX] = '\n';
	buf_init(&out, 1024);
	decode_qp_init(&q);
	assert_int_equal(decode_qp(&q, in, DECODE_QP_WS_MAX + 1, &out), 0);
	assert_int_equal(decode_qp_finish(&q, &out), 0);
	assert_int_equal(out.len, 1);
	/* ... one more is written out (the first cap's worth). */
	buf_reset(&out);
	in[DECODE_QP_WS_MAX] = ' ';
	in[DECODE_QP_WS_MAX + 1] = '\n';
	decode_qp_init(&q);
	assert_int_equal(decode_qp(&q, in, DECODE_QP_WS_MAX + 2, &out), 0);
	assert_int_equal(out.len, DECODE_QP_WS_MAX + 1);
	/* Same for padding after a soft-break '='. */
	buf_reset(&out);
	in[0] = '=';
	in[DECODE_QP_WS_MAX + 1] = '\n';
	decode_qp_init(&q);
	assert_int_equal(decode_qp(&q, in, DECODE_QP_WS_MAX + 2, &out), 0);
	assert_int_equal(out.len, 0);
	buf_reset(&out);
	in[DECODE_QP_WS_MAX + 1] = ' ';
	in[DECODE_QP_WS_MAX + 2] = '\n';
	decode_qp_init(&q);
	assert_int_equal(decode_qp(&q, in, DECODE_QP_WS_MAX + 3, &out), 0);
	assert_int_equal(out.len, DECODE_QP_WS_MAX + 2);
	assert_int_equal(out.data[0], '=');
	buf_free(&out);
}

static void test_charset_names(void **state)
{
	(void)state;
	struct decode_charset cs;
	const char *err = NULL;
	char longname[DECODE_CHARSET_NAME_MAX + 2];

	static const char *const bad[] = { "", "no-such-charset", "UTF-8//TRANSLIT",
					   "utf 8", "x-unknown", "UTF-7" };
	for (size_t k = 0; k < sizeof(bad) / sizeof(bad[0]); k++) {
		if (decode_charset_init(&cs, bad[k], &err) != -1)
			fail_msg("accepted '%s'", bad[k]);
		decode_charset_free(&cs);
	}
	memset(longname, 'a', sizeof(longname));
	longname[DECODE_CHARSET_NAME_MAX + 1] = '\0';
	assert_int_equal(decode_charset_init(&cs, longname, &err), -1);
	assert_string_equal(err, "bad charset name");
	/* Exactly the cap is a legal length (padded alias of UTF-8 is not a
	 * name, so only the length check is exercised here). */
	longname[DECODE_CHARSET_NAME_MAX] = '\0';
	assert_int_equal(decode_charset_init(&cs, longname, &err), -1);
	assert_string_equal(err, "unknown charset");

	struct buf out;
	buf_init(&out, 100);
	assert_int_equal(decode_charset_convert("ISO-8859-2", "\xb1", 1, &out, &err), 0);
	assert_string_equal(out.data, "\xc4\x85");
	assert_int_equal(decode_charset_convert("bogus", "x", 1, &out, &err), -1);
	buf_free(&out);
}

static void test_garbage_count(void **state)
{
	(void)state;
	struct decode_b64 b;
	struct buf out;

	buf_init(&out, 100);
	decode_b64_init(&b);
	assert_int_equal(decode_b64(&b, "Zm*9v!\r\n", 8, &out), 0);
	assert_int_equal(b.garbage, 2);
	buf_free(&out);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_table),
		cmocka_unit_test(test_overflow_sticks),
		cmocka_unit_test(test_qp_ws_cap),
		cmocka_unit_test(test_charset_names),
		cmocka_unit_test(test_garbage_count),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
