/* dotstuff_test.c - DATA end detection, unstuffing and stuffing. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "core/buf.h"
#include "mail/dotstuff.h"

#define BIG (1024 * 1024)

struct dec_case {
	const char *name;
	const char *input;
	const char *want;    /* output */
	long consumed;       /* -1: all of the input */
	bool done;
	size_t bare_lf;
	size_t bare_cr;
	size_t inlen, wantlen; /* 0: strlen (for inputs with NULs) */
};

static const struct dec_case dec_cases[] = {
	{ "empty message", ".\r\n", "", -1, true, 0, 0, 0, 0 },
	{ "normal", "Subject: x\r\n\r\nbody\r\n.\r\n", "Subject: x\r\n\r\nbody\r\n", -1, true,
	  0, 0, 0, 0 },
	{ "unstuff dot line", "..\r\n.\r\n", ".\r\n", -1, true, 0, 0, 0, 0 },
	{ "unstuff dots", "...x\r\n.\r\n", "..x\r\n", -1, true, 0, 0, 0, 0 },
	{ "leading dot removed", ".x\r\n.\r\n", "x\r\n", -1, true, 0, 0, 0, 0 },
	{ "dot mid line kept", "a.b.\r\n.\r\n", "a.b.\r\n", -1, true, 0, 0, 0, 0 },
	{ "dot after dot line", "a\r\n..\r\n..\r\n.\r\n", "a\r\n.\r\n.\r\n", -1, true,
	  0, 0, 0, 0 },
	{ "pipelined next command", "a\r\n.\r\nQUIT\r\n", "a\r\n", 6, true, 0, 0, 0, 0 },
	{ "pipelined right after", ".\r\nRSET\r\n", "", 3, true, 0, 0, 0, 0 },
	/* smuggling: none of these end the data */
	{ "LF . LF", "a\n.\nb\r\n.\r\n", "a\r\n.\r\nb\r\n", -1, true, 2, 0, 0, 0 },
	{ "CR . CR", "a\r.\rb\r\n.\r\n", "a\r.\rb\r\n", -1, true, 0, 2, 0, 0 },
	{ "LF . CRLF", "a\n.\r\nb\r\n.\r\n", "a\r\n.\r\nb\r\n", -1, true, 1, 0, 0, 0 },
	{ "CRLF . LF", "a\r\n.\nb\r\n.\r\n", "a\r\n\r\nb\r\n", -1, true, 1, 0, 0, 0 },
	{ "CR . CRLF", "a\r.\r\nb\r\n.\r\n", "a\r.\r\nb\r\n", -1, true, 0, 1, 0, 0 },
	{ "dot CR x", "a\r\n.\rx\r\n.\r\n", "a\r\n\rx\r\n", -1, true, 0, 1, 0, 0 },
	{ "dot CR CR LF", ".\r\r\n.\r\n", "\r\r\n", -1, true, 0, 1, 0, 0 },
	{ "LF . CRLF at start", "\n.\r\n.\r\n", "\r\n.\r\n", -1, true, 1, 0, 0, 0 },
	{ "LF . LF only", "\n.\n", "\r\n.\r\n", -1, false, 2, 0, 0, 0 },
	{ "CRLF . LF only", "a\r\n.\n", "a\r\n\r\n", -1, false, 1, 0, 0, 0 },
	{ "LF .. CRLF", "x\n..\r\n.\r\n", "x\r\n..\r\n", -1, true, 1, 0, 0, 0 },
	/* bare newlines */
	{ "bare LF normalised", "a\nb\n\r\n.\r\n", "a\r\nb\r\n\r\n", -1, true, 2, 0, 0, 0 },
	{ "bare CR kept", "a\rb\r\n.\r\n", "a\rb\r\n", -1, true, 0, 1, 0, 0 },
	{ "CR CR LF", "a\r\r\n.\r\n", "a\r\r\n", -1, true, 0, 1, 0, 0 },
	{ "LF after CR CR", "\r\r\n\n.\r\n", "\r\r\n\r\n.\r\n", -1, false, 1, 1, 0, 0 },
	/* not finished */
	{ "no end", "abc\r\n", "abc\r\n", -1, false, 0, 0, 0, 0 },
	{ "held dot CR", "abc\r\n.\r", "abc\r\n", -1, false, 0, 0, 0, 0 },
	{ "held CR", "abc\r", "abc", -1, false, 0, 0, 0, 0 },
	{ "held dot", "abc\r\n.", "abc\r\n", -1, false, 0, 0, 0, 0 },
	{ "nothing", "", "", -1, false, 0, 0, 0, 0 },
	{ "NUL bytes kept", "a\0b\r\n.\r\n", "a\0b\r\n", -1, true, 0, 0, 8, 5 },
};

static size_t len_of(const struct dec_case *c, size_t *want_len)
{
	*want_len = c->wantlen ? c->wantlen : strlen(c->want);
	return c->inlen ? c->inlen : strlen(c->input);
}

struct result {
	struct buf out;
	struct dot_decoder d;
	size_t consumed;
};

/* Feed in[0..len) in chunks given by the cut points; stops feeding once the
 * decoder consumed less than it was given. */
static void run(const char *in, size_t len, const size_t *cuts, size_t ncuts, size_t max,
		struct result *r)
{
	buf_init(&r->out, max);
	dot_decoder_init(&r->d);
	r->consumed = 0;
	size_t pos = 0;
	for (size_t k = 0; k <= ncuts; k++) {
		size_t end = k < ncuts ? cuts[k] : len;
		if (end < pos)
			continue;
		/* Exact-size heap copy: ASan catches reads past the chunk. */
		size_t n = end - pos;
		char *chunk = malloc(n ? n : 1);
		assert_non_null(chunk);
		memcpy(chunk, in + pos, n);
		size_t got = dot_decode(&r->d, chunk, n, &r->out);
		free(chunk);
		assert_true(got <= n);
		r->consumed += got;
		pos = end;
		if (got < n) {
			assert_true(r->d.done);
			break;
		}
	}
}

static void check_same(const struct result *a, const struct result *b, const char *name)
{
	if (a->consumed != b->consumed || a->d.done != b->d.done || a->d.total != b->d.total ||
	    a->d.bare_lf != b->d.bare_lf || a->d.bare_cr != b->d.bare_cr ||
	    a->d.overflow != b->d.overflow || a->out.len != b->out.len ||
	    (a->out.len && memcmp(a->out.data, b->out.data, a->out.len) != 0))
		fail_msg("%s: split result differs", name);
}

static void test_decode_table(void **state)
{
	(void)state;
	for (size_t k = 0; k < sizeof(dec_cases) / sizeof(dec_cases[0]); k++) {
		const struct dec_case *c = &dec_cases[k];
		size_t want_len;
		size_t len = len_of(c, &want_len);
		const char *want = c->want;
		struct result one;

		run(c->input, len, NULL, 0, BIG, &one);
		size_t want_consumed = c->consumed < 0 ? len : (size_t)c->consumed;
		if (one.consumed != want_consumed)
			fail_msg("%s: consumed %zu, want %zu", c->name, one.consumed,
				 want_consumed);
		if (one.d.done != c->done)
			fail_msg("%s: done %d", c->name, one.d.done);
		if (one.out.len != want_len || (want_len && memcmp(one.out.data, want, want_len)))
			fail_msg("%s: output '%.*s' (%zu)", c->name, (int)one.out.len,
				 one.out.data ? one.out.data : "", one.out.len);
		if (one.d.bare_lf != c->bare_lf || one.d.bare_cr != c->bare_cr)
			fail_msg("%s: bare_lf %zu bare_cr %zu", c->name, one.d.bare_lf,
				 one.d.bare_cr);
		assert_int_equal(one.d.total, want_len);
		assert_false(one.d.overflow);

		/* Byte by byte. */
		size_t *cuts = calloc(len + 1, sizeof(*cuts));
		assert_non_null(cuts);
		for (size_t i = 0; i < len; i++)
			cuts[i] = i + 1;
		struct result split;
		run(c->input, len, cuts, len, BIG, &split);
		check_same(&one, &split, c->name);
		buf_free(&split.out);
		/* Every single split point (including empty chunks). */
		for (size_t i = 0; i <= len; i++) {
			size_t cut = i;
			run(c->input, len, &cut, 1, BIG, &split);
			check_same(&one, &split, c->name);
			buf_free(&split.out);
		}
		free(cuts);
		buf_free(&one.out);
	}
}

static void test_after_done(void **state)
{
	(void)state;
	struct buf out;
	struct dot_decoder d;

	buf_init(&out, 100);
	dot_decoder_init(&d);
	assert_int_equal(dot_decode(&d, "x\r\n.\r", 5, &out), 5);
	assert_false(d.done);
	assert_int_equal(dot_decode(&d, "\nMAIL", 5, &out), 1);
	assert_true(d.done);
	assert_int_equal(dot_decode(&d, "more", 4, &out), 0);
	assert_int_equal(out.len, 3);
	assert_memory_equal(out.data, "x\r\n", 3);
	/* Re-init for the next transaction. */
	dot_decoder_init(&d);
	buf_reset(&out);
	assert_int_equal(dot_decode(&d, ".\r\n", 3, &out), 3);
	assert_true(d.done);
	assert_int_equal(out.len, 0);
	buf_free(&out);
}

static void test_overflow(void **state)
{
	(void)state;
	char msg[2000];
	size_t n = 0;
	for (int k = 0; k < 100; k++) {
		memcpy(msg + n, "hello world\r\n", 13);
		n += 13;
	}
	size_t body = n;
	memcpy(msg + n, ".\r\nQUIT\r\n", 9);
	n += 9;

	size_t maxes[] = { 0, 1, 50, body - 1, body, body + 1 };
	for (size_t m = 0; m < sizeof(maxes) / sizeof(maxes[0]); m++) {
		struct result one, split;
		run(msg, n, NULL, 0, maxes[m], &one);
		assert_true(one.d.done);
		assert_int_equal(one.consumed, body + 3);
		assert_int_equal(one.d.total, body);
		assert_int_equal(one.d.overflow, maxes[m] < body);
		/* What was kept is exactly the first bytes of the output. */
		assert_int_equal(one.out.len, maxes[m] < body ? maxes[m] : body);
		if (one.out.len)
			assert_memory_equal(one.out.data, msg, one.out.len);

		size_t cuts[2000];
		for (size_t i = 0; i < n; i++)
			cuts[i] = i + 1;
		run(msg, n, cuts, n, maxes[m], &split);
		check_same(&one, &split, "overflow byte by byte");
		buf_free(&split.out);
		/* Chunks of 7 */
		size_t nc = 0;
		for (size_t i = 7; i < n; i += 7)
			cuts[nc++] = i;
		run(msg, n, cuts, nc, maxes[m], &split);
		check_same(&one, &split, "overflow chunks of 7");
		buf_free(&split.out);
		buf_free(&one.out);
	}
}

struct enc_case {
	const char *name;
	const char *input;
	const char *want;
};

static const struct enc_case enc_cases[] = {
	{ "empty", "", "" },
	{ "dot line", ".\r\n", "..\r\n" },
	{ "dot start", ".x\r\n", "..x\r\n" },
	{ "second line", "a\r\n.b\r\n", "a\r\n..b\r\n" },
	{ "dot mid line", "a.b.\r\n", "a.b.\r\n" },
	{ "two dots", "..\r\n", "...\r\n" },
	{ "bare LF is a line end", "\n.\n", "\n..\n" },
	{ "bare CR is not", "\r.\r\n", "\r.\r\n" },
	{ "no final newline", "a\r\n.", "a\r\n.." },
	{ "every line", ".\r\n.\r\n.\r\n", "..\r\n..\r\n..\r\n" },
};

static void test_encode_table(void **state)
{
	(void)state;
	for (size_t k = 0; k < sizeof(enc_cases) / sizeof(enc_cases[0]); k++) {
		const struct enc_case *c = &enc_cases[k];
		size_t len = strlen(c->input);
		struct buf out;
		buf_init(&out, BIG);
		assert_int_equal(dot_encode(c->input, len, &out), 0);
		if (out.len != strlen(c->want) ||
		    memcmp(out.data ? out.data : "", c->want, out.len) != 0)
			fail_msg("%s: '%.*s'", c->name, (int)out.len, out.data ? out.data : "");
		/* Every split point of dot_encode_chunk gives the same. */
		for (size_t cut = 0; cut <= len; cut++) {
			struct buf o2;
			bool bol = true;
			buf_init(&o2, BIG);
			assert_int_equal(dot_encode_chunk(c->input, cut, &bol, &o2), 0);
			assert_int_equal(dot_encode_chunk(c->input + cut, len - cut, &bol, &o2),
					 0);
			assert_int_equal(o2.len, out.len);
			if (out.len)
				assert_memory_equal(o2.data, out.data, out.len);
			buf_free(&o2);
		}
		buf_free(&out);
	}
}

static void test_encode_full(void **state)
{
	(void)state;
	struct buf out;
	buf_init(&out, 4);
	assert_int_equal(dot_encode("abcd", 4, &out), 0);
	buf_reset(&out);
	assert_int_equal(dot_encode("abcde", 5, &out), -1);
	buf_reset(&out);
	assert_int_equal(dot_encode("...", 3, &out), 0); /* "...." fits */
	buf_reset(&out);
	assert_int_equal(dot_encode("....", 4, &out), -1);
	buf_reset(&out);
	assert_int_equal(dot_encode("\n.\n", 3, &out), 0);
	buf_reset(&out);
	assert_int_equal(dot_encode("\n.\n.", 4, &out), -1);
	buf_free(&out);
}

/* Random CRLF-line messages: decode(encode(x) ".\r\n") == x, in random
 * chunks. */
static void test_round_trip(void **state)
{
	(void)state;
	static const char alphabet[] = "..a\r b.";
	srand(12345);
	for (int iter = 0; iter < 2000; iter++) {
		char x[600];
		size_t n = 0;
		int lines = rand() % 8;
		for (int l = 0; l < lines; l++) {
			int w = rand() % 12;
			for (int k = 0; k < w; k++)
				x[n++] = alphabet[rand() % (int)(sizeof(alphabet) - 1)];
			x[n++] = '\r';
			x[n++] = '\n';
		}
		struct buf enc;
		buf_init(&enc, BIG);
		assert_int_equal(dot_encode(x, n, &enc), 0);
		assert_int_equal(buf_append(&enc, ".\r\nNOOP\r\n", 9), 0);

		size_t cuts[64], nc = 0;
		size_t pos = 0;
		while (nc < 64) {
			pos += (size_t)(rand() % 9);
			if (pos >= enc.len)
				break;
			cuts[nc++] = pos;
		}
		struct result r;
		run(enc.data, enc.len, cuts, nc, BIG, &r);
		assert_true(r.d.done);
		assert_int_equal(r.consumed, enc.len - 6);
		assert_int_equal(r.d.bare_lf, 0);
		assert_int_equal(r.out.len, n);
		if (n)
			assert_memory_equal(r.out.data, x, n);
		buf_free(&r.out);
		buf_free(&enc);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_decode_table),
		cmocka_unit_test(test_after_done),
		cmocka_unit_test(test_overflow),
		cmocka_unit_test(test_encode_table),
		cmocka_unit_test(test_encode_full),
		cmocka_unit_test(test_round_trip),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
