/* rfc2047_test.c - encoded-word decoding (RFC 2047 section 8 examples,
 * Japanese mail shapes, tolerance) and encoding (limits, round trips). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "core/buf.h"
#include "mail/rfc2047.h"

#define FFFD "\xef\xbf\xbd"
#define NIHONGO "\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e" /* 日本語 */
/* 【重要】会議室の予約について（再送） */
#define JUUYOU "\xe3\x80\x90\xe9\x87\x8d\xe8\xa6\x81\xe3\x80\x91\xe4\xbc\x9a\xe8\xad\xb0" \
	"\xe5\xae\xa4\xe3\x81\xae\xe4\xba\x88\xe7\xb4\x84\xe3\x81\xab\xe3\x81\xa4\xe3\x81\x84" \
	"\xe3\x81\xa6\xef\xbc\x88\xe5\x86\x8d\xe9\x80\x81\xef\xbc\x89"

struct dcase {
	const char *name;
	const char *input;
	const char *want;
};

static const struct dcase dcases[] = {
	/* RFC 2047 section 8 */
	{ "rfc single", "(=?ISO-8859-1?Q?a?=)", "(a)" },
	{ "rfc word then text", "(=?ISO-8859-1?Q?a?= b)", "(a b)" },
	{ "rfc two words", "(=?ISO-8859-1?Q?a?= =?ISO-8859-1?Q?b?=)", "(ab)" },
	{ "rfc two spaces", "(=?ISO-8859-1?Q?a?=  =?ISO-8859-1?Q?b?=)", "(ab)" },
	{ "rfc folded", "(=?ISO-8859-1?Q?a?=\r\n    =?ISO-8859-1?Q?b?=)", "(ab)" },
	{ "rfc underscore", "(=?ISO-8859-1?Q?a_b?=)", "(a b)" },
	{ "rfc two charsets", "(=?ISO-8859-1?Q?a?= =?ISO-8859-2?Q?_b?=)", "(a b)" },
	{ "rfc keith", "=?US-ASCII?Q?Keith_Moore?= <moore@cs.utk.edu>",
	  "Keith Moore <moore@cs.utk.edu>" },
	{ "rfc keld", "=?ISO-8859-1?Q?Keld_J=F8rn_Simonsen?=", "Keld J\xc3\xb8rn Simonsen" },
	{ "rfc andre", "=?ISO-8859-1?Q?Andr=E9?= Pirard", "Andr\xc3\xa9 Pirard" },
	{ "rfc base64", "=?ISO-8859-1?B?SWYgeW91IGNhbiByZWFkIHRoaXMgeW8=?=",
	  "If you can read this yo" },
	{ "rfc2231 language", "=?US-ASCII*EN?Q?Keith_Moore?=", "Keith Moore" },
	/* Japanese */
	{ "iso-2022-jp subject",
	  "=?ISO-2022-JP?B?GyRCIVo9RU1XIVsycTVEPDwkTk09THMkSxsoQg==?=\r\n"
	  " =?ISO-2022-JP?B?GyRCJEQkJCRGIUo6RkF3IUsbKEI=?=", JUUYOU },
	{ "iso-2022-jp with prefix", "Re: =?iso-2022-jp?B?GyRCRnxLXDhsGyhC?=", "Re: " NIHONGO },
	{ "shift_jis", "=?Shift_JIS?B?k/qWe4zq?=", NIHONGO },
	{ "euc-jp", "=?EUC-JP?B?xvzL3Ljs?=", NIHONGO },
	{ "utf-8", "=?UTF-8?B?5pel5pys6Kqe?=", NIHONGO },
	{ "utf-8 split character", "=?UTF-8?B?4oI=?= =?utf-8?B?rA==?=", "\xe2\x82\xac" },
	/* ISO-2022-JP from Windows: half-width katakana, NEC row 13 (①), split
	 * inside the escape and inside the character */
	{ "iso-2022-jp katakana", "=?ISO-2022-JP?B?GyhJNkUbKEI=?=", "\xef\xbd\xb6\xef\xbe\x85" },
	{ "iso-2022-jp nec split", "=?ISO-2022-JP?B?GyQ=?= =?iso-2022-jp?B?Qi0=?=\r\n"
	  " =?ISO-2022-JP?Q?!=1B(B?=", "\xe2\x91\xa0" },
	{ "windows-1252", "=?windows-1252?Q?=93hi=94?=", "\xe2\x80\x9chi\xe2\x80\x9d" },
	{ "lower-case encodings", "=?utf-8?q?a=c3=a9?= =?utf-8?b?Yg?=", "a\xc3\xa9" "b" },
	/* tolerance */
	{ "plain", "Hello world", "Hello world" },
	{ "empty", "", "" },
	{ "adjacent to text", "x=?UTF-8?Q?a?=y", "xay" },
	{ "words and text", "=?UTF-8?Q?a?= b =?UTF-8?Q?c?=", "a b c" },
	{ "trailing ws kept", "=?UTF-8?Q?a?=  ", "a  " },
	{ "empty text", "=?UTF-8?Q?" "?=x", "x" },
	{ "unknown charset", "=?x-bogus?Q?a?= b", "=?x-bogus?Q?a?= b" },
	{ "unknown then good", "=?x-bogus?Q?a?= =?UTF-8?Q?b?=", "=?x-bogus?Q?a?= b" },
	{ "good then unknown", "=?UTF-8?Q?b?= =?x-bogus?Q?a?=", "b =?x-bogus?Q?a?=" },
	{ "bad q escape", "=?UTF-8?Q?a=Z?=", "=?UTF-8?Q?a=Z?=" },
	{ "bad b char", "=?UTF-8?B?a*b?=", "=?UTF-8?B?a*b?=" },
	{ "bad b padding", "=?UTF-8?B?YQ=x?=", "=?UTF-8?B?YQ=x?=" },
	{ "bad encoding letter", "=?UTF-8?X?a?=", "=?UTF-8?X?a?=" },
	{ "space inside", "=?UTF-8?Q?a b?=", "=?UTF-8?Q?a b?=" },
	{ "unterminated", "=?UTF-8?Q?abc", "=?UTF-8?Q?abc" },
	{ "no charset", "=??Q?a?=", "=??Q?a?=" },
	{ "translit injection", "=?UTF-8//TRANSLIT?Q?a?=", "=?UTF-8//TRANSLIT?Q?a?=" },
	{ "invalid byte in charset", "=?UTF-8?Q?=FF?=", FFFD },
	{ "lone =?", "a =? b", "a =? b" },
	{ "8-bit text copied", "caf\xc3\xa9 =?UTF-8?Q?x?=", "caf\xc3\xa9 x" },
};

static void test_decode_table(void **state)
{
	(void)state;
	for (size_t k = 0; k < sizeof(dcases) / sizeof(dcases[0]); k++) {
		const struct dcase *c = &dcases[k];
		size_t wlen = strlen(c->want);
		struct buf out;
		/* Exact-size copy so that ASan sees any read past the end. */
		size_t len = strlen(c->input);
		char *in = malloc(len ? len : 1);
		assert_non_null(in);
		memcpy(in, c->input, len);

		buf_init(&out, 4096);
		assert_int_equal(rfc2047_decode(in, len, &out), 0);
		if (out.len != wlen || (wlen && memcmp(out.data, c->want, wlen) != 0))
			fail_msg("%s: got '%.*s'", c->name, (int)out.len,
				 out.data ? out.data : "");
		buf_free(&out);
		/* Output capped: exact fits, one short fails with a prefix. */
		buf_init(&out, wlen);
		assert_int_equal(rfc2047_decode(in, len, &out), 0);
		buf_free(&out);
		if (wlen > 0) {
			buf_init(&out, wlen - 1);
			if (rfc2047_decode(in, len, &out) != -1)
				fail_msg("%s: cap not enforced", c->name);
			if (out.len && memcmp(out.data, c->want, out.len) != 0)
				fail_msg("%s: capped output not a prefix", c->name);
			buf_free(&out);
		}
		free(in);
	}
}

static void test_decode_word_cap(void **state)
{
	(void)state;
	/* "=?UTF-8?Q?" + text + "?=" of exactly RFC2047_DECODE_WORD_MAX is
	 * decoded; one more character and it is left alone. */
	char in[RFC2047_DECODE_WORD_MAX + 2];
	size_t head = strlen("=?UTF-8?Q?");
	struct buf out;

	for (size_t total = RFC2047_DECODE_WORD_MAX; total <= RFC2047_DECODE_WORD_MAX + 1;
	     total++) {
		memcpy(in, "=?UTF-8?Q?", head);
		memset(in + head, 'a', total - head - 2);
		memcpy(in + total - 2, "?=", 2);
		buf_init(&out, 4096);
		assert_int_equal(rfc2047_decode(in, total, &out), 0);
		if (total == RFC2047_DECODE_WORD_MAX)
			assert_int_equal(out.len, total - head - 2);
		else
			assert_int_equal(out.len, total);
		buf_free(&out);
	}
}

struct ecase {
	const char *name;
	const char *input;
	const char *charset;
	enum rfc2047_encoding enc;
	const char *want; /* NULL: only the round trip is checked */
};

static const struct ecase ecases[] = {
	{ "utf-8 b", NIHONGO, "UTF-8", RFC2047_B, "=?UTF-8?B?5pel5pys6Kqe?=" },
	{ "utf-8 q", "caf\xc3\xa9 au lait", "UTF-8", RFC2047_Q, "=?UTF-8?Q?caf=C3=A9_au_lait?=" },
	{ "q specials", "a?b=c_d", "UTF-8", RFC2047_Q, "=?UTF-8?Q?a=3Fb=3Dc=5Fd?=" },
	{ "iso-2022-jp b", NIHONGO, "ISO-2022-JP", RFC2047_B,
	  "=?ISO-2022-JP?B?GyRCRnxLXDhsGyhC?=" },
	{ "latin-1 q", "Andr\xc3\xa9", "ISO-8859-1", RFC2047_Q, "=?ISO-8859-1?Q?Andr=E9?=" },
	{ "empty", "", "UTF-8", RFC2047_B, "" },
	{ "long japanese b", JUUYOU JUUYOU JUUYOU, "UTF-8", RFC2047_B, NULL },
	{ "long japanese q", JUUYOU JUUYOU, "UTF-8", RFC2047_Q, NULL },
	{ "long iso-2022-jp", "Re: " JUUYOU " abc " JUUYOU JUUYOU, "ISO-2022-JP", RFC2047_B,
	  NULL },
	{ "long iso-2022-jp q", JUUYOU "x" JUUYOU, "ISO-2022-JP", RFC2047_Q, NULL },
	{ "long ascii", "The quick brown fox jumps over the lazy dog, again and again and "
			"again until the line is long", "UTF-8", RFC2047_Q, NULL },
	{ "emoji utf-8", "\xf0\x9f\x98\x80\xf0\x9f\x98\x80\xf0\x9f\x98\x80\xf0\x9f\x98\x80"
			 "\xf0\x9f\x98\x80\xf0\x9f\x98\x80\xf0\x9f\x98\x80\xf0\x9f\x98\x80"
			 "\xf0\x9f\x98\x80\xf0\x9f\x98\x80", "UTF-8", RFC2047_Q, NULL },
};

/* Check the word shapes and that every word decodes on its own (so no
 * character and no escape sequence spans two words). */
static void check_words(const struct ecase *c, const char *enc, size_t len)
{
	struct buf whole, one;
	size_t s = 0;

	buf_init(&whole, 65536);
	while (s < len) {
		const char *fold = strstr(enc + s, "\r\n ");
		size_t e = fold ? (size_t)(fold - enc) : len;
		if (e - s > RFC2047_WORD_MAX)
			fail_msg("%s: word of %zu chars", c->name, e - s);
		if (strncmp(enc + s, "=?", 2) != 0 || strncmp(enc + e - 2, "?=", 2) != 0)
			fail_msg("%s: not an encoded-word at %zu", c->name, s);
		buf_init(&one, 4096);
		assert_int_equal(rfc2047_decode(enc + s, e - s, &one), 0);
		if (one.len == 0 || strstr(one.data, FFFD) != NULL || strstr(one.data, "=?"))
			fail_msg("%s: word does not decode alone: %.*s", c->name, (int)(e - s),
				 enc + s);
		assert_int_equal(buf_append(&whole, one.data, one.len), 0);
		buf_free(&one);
		s = fold ? e + 3 : len;
	}
	if (whole.len != strlen(c->input) ||
	    (whole.len && memcmp(whole.data, c->input, whole.len)))
		fail_msg("%s: words decode to '%.*s'", c->name, (int)whole.len, whole.data);
	buf_free(&whole);
}

static void test_encode_table(void **state)
{
	(void)state;
	for (size_t k = 0; k < sizeof(ecases) / sizeof(ecases[0]); k++) {
		const struct ecase *c = &ecases[k];
		struct buf out, back;
		const char *err = NULL;

		buf_init(&out, 65536);
		if (rfc2047_encode(c->input, strlen(c->input), c->charset, c->enc, &out, &err) < 0)
			fail_msg("%s: %s", c->name, err);
		if (c->want != NULL && strcmp(out.data ? out.data : "", c->want) != 0)
			fail_msg("%s: got '%s'", c->name, out.data);
		check_words(c, out.data ? out.data : "", out.len);
		/* The whole folded value decodes back to the input. */
		buf_init(&back, 65536);
		assert_int_equal(rfc2047_decode(out.data ? out.data : "", out.len, &back), 0);
		if (back.len != strlen(c->input) ||
		    (back.len && memcmp(back.data, c->input, back.len)))
			fail_msg("%s: round trip '%.*s'", c->name, (int)back.len, back.data);
		buf_free(&back);
		buf_free(&out);
	}
}

struct ebad {
	const char *name;
	const char *input;
	const char *charset;
	size_t max;
	const char *error;
};

static const struct ebad ebads[] = {
	{ "not utf-8", "caf\xe9", "UTF-8", 1000, "text to encode is not valid UTF-8" },
	{ "unknown charset", "a", "x-bogus", 1000, "unknown charset" },
	{ "translit", "a", "ASCII//TRANSLIT", 1000, "bad charset name" },
	{ "empty charset", "a", "", 1000, "bad charset name" },
	{ "long charset", "a", "abcdefghijklmnopqrstuvwxyzabcdefghijklmnopqrstuvwxyzabcdefghijklm",
	  1000, "bad charset name" },
	{ "emoji in iso-2022-jp", "a\xf0\x9f\x98\x80", "ISO-2022-JP", 1000,
	  "character not representable in charset" },
	{ "output cap", NIHONGO, "UTF-8", 23, "encoded text too long" },
	{ "output cap second word", JUUYOU JUUYOU, "UTF-8", 80, "encoded text too long" },
};

static void test_encode_errors(void **state)
{
	(void)state;
	for (size_t k = 0; k < sizeof(ebads) / sizeof(ebads[0]); k++) {
		const struct ebad *c = &ebads[k];
		struct buf out;
		const char *err = NULL;

		buf_init(&out, c->max);
		if (rfc2047_encode(c->input, strlen(c->input), c->charset, RFC2047_B, &out,
				   &err) != -1)
			fail_msg("%s: accepted", c->name);
		if (err == NULL || strcmp(err, c->error) != 0)
			fail_msg("%s: error '%s'", c->name, err ? err : "(null)");
		buf_free(&out);
	}
}

static void test_encode_input_cap(void **state)
{
	(void)state;
	char *in = malloc(RFC2047_ENCODE_MAX + 1);
	struct buf out;
	const char *err = NULL;

	assert_non_null(in);
	memset(in, 'a', RFC2047_ENCODE_MAX + 1);
	buf_init(&out, 4 * RFC2047_ENCODE_MAX);
	assert_int_equal(rfc2047_encode(in, RFC2047_ENCODE_MAX, "UTF-8", RFC2047_B, &out, &err),
			 0);
	buf_reset(&out);
	assert_int_equal(
		rfc2047_encode(in, RFC2047_ENCODE_MAX + 1, "UTF-8", RFC2047_B, &out, &err), -1);
	assert_string_equal(err, "text too long to encode");
	buf_free(&out);
	free(in);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_decode_table),
		cmocka_unit_test(test_decode_word_cap),
		cmocka_unit_test(test_encode_table),
		cmocka_unit_test(test_encode_errors),
		cmocka_unit_test(test_encode_input_cap),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
