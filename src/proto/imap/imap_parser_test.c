/* imap_parser_test.c - table-driven tests of the IMAP command parser.
 *
 * Every input is fed whole, byte by byte and split in two at every
 * boundary; each way must give the same log of events:
 *   "+"              continuation request for a synchronising literal
 *   "OK <dump>"      a complete command (see dump())
 *   "BAD <tag> <text>" an error ("*" when the tag was not read)
 * joined by " | ". */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "core/buf.h"
#include "core/util.h"
#include "proto/imap/imap_parser.h"

/* Arguments: atoms raw (those with a section prefixed "sect:"), numbers
 * "#n", NIL, strings "s" in quotes, literals {n}bytes / {n+}bytes /
 * ~{n}bytes (NUL shown as \0), lists in parentheses. */
static void dump(const struct imap_command *c, struct buf *out)
{
	uint32_t open[IMAP_DEPTH_HARD_MAX + 1];
	unsigned depth = 0;
	bool first = false;

	buf_printf(out, "%s %s", c->tag, c->name);
	for (uint32_t i = 0; i <= c->nargs; i++) {
		while (depth > 0 && open[depth - 1] <= i) {
			buf_append_str(out, ")");
			depth--;
			first = false;
		}
		if (i == c->nargs)
			break;
		const struct imap_arg *a = &c->args[i];
		assert_true(a->depth == depth);
		if (!first)
			buf_append_str(out, " ");
		first = false;
		switch (a->type) {
		case IMAP_ARG_ATOM:
			buf_printf(out, "%s%s", a->has_section ? "sect:" : "", a->str);
			break;
		case IMAP_ARG_NUMBER:
			buf_printf(out, "#%llu", (unsigned long long)a->num);
			break;
		case IMAP_ARG_NIL:
			buf_append_str(out, "NIL");
			break;
		case IMAP_ARG_STRING:
			buf_printf(out, "\"%s\"", a->str);
			break;
		case IMAP_ARG_LITERAL:
			buf_printf(out, "%s{%zu%s}", a->binary ? "~" : "", a->len,
				   a->nonsync ? "+" : "");
			for (size_t k = 0; k < a->len;) {
				const char *nul = memchr(a->str + k, '\0', a->len - k);
				size_t n = nul ? (size_t)(nul - (a->str + k)) : a->len - k;
				assert_int_equal(buf_append(out, a->str + k, n), 0);
				k += n;
				if (nul) {
					buf_append_str(out, "\\0");
					k++;
				}
			}
			assert_int_equal(a->str[a->len], '\0');
			break;
		case IMAP_ARG_LIST:
			buf_append_str(out, "(");
			open[depth++] = a->end;
			first = true;
			break;
		}
	}
}

/* Feed input in chunks of at most chunk bytes (0: whole) and log. */
static char *run(const char *input, size_t len, const struct imap_parser_limits *lim,
		 size_t split, size_t chunk)
{
	struct imap_parser *p = imap_parser_new(lim);
	struct buf log;
	size_t pos = 0;

	buf_init(&log, SIZE_MAX / 2);
	while (pos < len) {
		size_t end = len;
		if (chunk > 0)
			end = MIN(len, pos + chunk);
		else if (split > pos)
			end = split;
		/* an exact-size heap copy so that ASan sees reads past it */
		size_t n = end - pos;
		char *copy = xmalloc(n ? n : 1);
		memcpy(copy, input + pos, n);
		size_t used = 0;
		while (used < n) {
			size_t c;
			enum imap_parse_result r = imap_parser_feed(p, copy + used, n - used, &c);
			assert_true(c <= n - used);
			used += c;
			if (r == IMAP_PARSE_MORE) {
				assert_int_equal(used, n);
				break;
			}
			if (log.len > 0)
				buf_append_str(&log, " | ");
			if (r == IMAP_PARSE_CONTINUE) {
				buf_append_str(&log, "+");
			} else if (r == IMAP_PARSE_DONE) {
				buf_append_str(&log, "OK ");
				dump(imap_parser_command(p), &log);
			} else {
				const char *tag;
				const char *text = imap_parser_error(p, &tag, NULL);
				buf_printf(&log, "BAD %s %s", tag ? tag : "*", text);
			}
		}
		free(copy);
		pos = end;
	}
	imap_parser_free(&p);
	assert_null(p);
	char *s = buf_steal(&log, NULL);
	return s ? s : xstrdup("");
}

static void check_all_splits(const char *input, size_t len,
			     const struct imap_parser_limits *lim, const char *want)
{
	char *got = run(input, len, lim, 0, 0);
	if (strcmp(got, want) != 0)
		fail_msg("input %.60s\n got: %s\nwant: %s", input, got, want);
	free(got);
	got = run(input, len, lim, 0, 1);
	if (strcmp(got, want) != 0)
		fail_msg("bytewise %.60s\n got: %s\nwant: %s", input, got, want);
	free(got);
	for (size_t s = 1; s < len; s++) {
		got = run(input, len, lim, s, 0);
		if (strcmp(got, want) != 0)
			fail_msg("split %zu %.60s\n got: %s\nwant: %s", s, input, got, want);
		free(got);
	}
}

struct parse_case {
	const char *name;
	const char *input;
	size_t len;             /* 0: strlen(input) */
	bool authenticated;
	const char *want;
};

static const struct imap_parser_limits small_limits = {
	.line_max = 16, .literal_max = 8, .depth_max = 2, .args_max = 4,
};

#define L(s) s, sizeof(s) - 1

static const struct parse_case cases[] = {
	/* tags and names */
	{"noop", "a1 NOOP\r\n", 0, true, "OK a1 NOOP"},
	{"name upper-cased", "x capability\r\n", 0, true, "OK x CAPABILITY"},
	{"bare LF", "a NOOP\n", 0, true, "OK a NOOP"},
	{"trailing space", "a NOOP \r\n", 0, true, "OK a NOOP"},
	{"tag with ]", "a]1 NOOP\r\n", 0, true, "OK a]1 NOOP"},
	{"two commands", "a NOOP\r\nb LOGOUT\r\n", 0, true, "OK a NOOP | OK b LOGOUT"},
	{"empty line", "\r\n", 0, true, "BAD * Invalid tag"},
	{"tag only", "abc\r\n", 0, true, "BAD * Invalid tag"},
	{"missing command", "abc \r\n", 0, true, "BAD abc Missing command"},
	{"tag with +", "a+ NOOP\r\n", 0, true, "BAD * Invalid tag"},
	{"tag with *", "* NOOP\r\n", 0, true, "BAD * Invalid tag"},
	{"tag with (", "a( NOOP\r\n", 0, true, "BAD * Invalid tag"},
	{"tag 8-bit", "\xc3\xa4 NOOP\r\n", 0, true, "BAD * Invalid tag"},
	{"error then good", "a( x\r\nb NOOP\r\n", 0, true, "BAD * Invalid tag | OK b NOOP"},
	{"bad name", "a NO*OP\r\n", 0, true, "BAD a Invalid command name"},
	{"CR without LF", "a NOOP\rb NOOP\r\n", 0, true, "BAD a CR without LF"},
	{"CR without LF args", "a X b\rc\r\nd NOOP\r\n", 0, true,
	 "BAD a CR without LF | OK d NOOP"},
	{"double space", "a X b  c\r\n", 0, true, "BAD a Invalid character"},
	{"missing space", "a X \"b\"c\r\n", 0, true, "BAD a Missing space between arguments"},

	/* atoms, numbers, NIL, strings */
	{"login", "a LOGIN bob \"se cr\\\"et\\\\\"\r\n", 0, true,
	 "OK a LOGIN bob \"se cr\"et\\\""},
	{"empty string", "a X \"\"\r\n", 0, true, "OK a X \"\""},
	{"quoted 8-bit", "a X \"\xc3\xa4\"\r\n", 0, true, "OK a X \"\xc3\xa4\""},
	{"quoted bad escape", "a X \"\\n\"\r\n", 0, true,
	 "BAD a Invalid escape in quoted string"},
	{"quoted CR", "a X \"ab\r\nc NOOP\r\n", 0, true,
	 "BAD a Unterminated quoted string | OK c NOOP"},
	{"quoted LF", "a X \"ab\nc NOOP\r\n", 0, true,
	 "BAD a Unterminated quoted string | OK c NOOP"},
	{"quoted NUL", L("a X \"a\0b\"\r\n"), true, "BAD a Unterminated quoted string"},
	{"numbers", "a X 0 4294967295 9223372036854775807 9223372036854775808\r\n", 0, true,
	 "OK a X #0 #4294967295 #9223372036854775807 9223372036854775808"},
	{"nil", "a X NIL nil \"NIL\" NILS\r\n", 0, true, "OK a X NIL NIL \"NIL\" NILS"},
	{"8-bit atom", "a SELECT \xc3\xa4\r\n", 0, true, "BAD a Invalid character"},
	{"8-bit in atom", "a SELECT b\xc3\xa4\r\n", 0, true, "BAD a Invalid character in atom"},
	{"CTL in atom", "a SELECT b\x01\r\n", 0, true, "BAD a Invalid character in atom"},
	{"quote in atom", "a X b\"c\"\r\n", 0, true, "BAD a Invalid character in atom"},
	{"brace in atom", "a X b{3}\r\n", 0, true, "BAD a Invalid character in atom"},
	{"tilde atom", "a X ~abc ~\r\n", 0, true, "OK a X ~abc ~"},

	/* special forms */
	{"seqset", "a FETCH 1:*,3,5:7 (FLAGS UID)\r\n", 0, true,
	 "OK a FETCH 1:*,3,5:7 (FLAGS UID)"},
	{"uid fetch $", "a UID FETCH $ FLAGS\r\n", 0, true, "OK a UID FETCH $ FLAGS"},
	{"section", "a FETCH 1 (BODY[HEADER.FIELDS (From To)]<0.100> BODY.PEEK[1.2.MIME])\r\n",
	 0, true, "OK a FETCH #1 (sect:BODY[HEADER.FIELDS (From To)]<0.100> "
	 "sect:BODY.PEEK[1.2.MIME])"},
	{"section quoted", "a FETCH 1 BODY[HEADER.FIELDS (\"Fr\\\"om\" To)]\r\n", 0, true,
	 "OK a FETCH #1 sect:BODY[HEADER.FIELDS (\"Fr\\\"om\" To)]"},
	{"section empty", "a FETCH 1 BODY[]\r\n", 0, true, "OK a FETCH #1 sect:BODY[]"},
	{"section unterminated", "a FETCH 1 BODY[TEXT\r\nb NOOP\r\n", 0, true,
	 "BAD a Invalid character in section | OK b NOOP"},
	{"section nested list", "a FETCH 1 BODY[X ((a))]\r\n", 0, true,
	 "BAD a Nested list in section"},
	{"section unbalanced", "a FETCH 1 BODY[X (a]\r\n", 0, true,
	 "BAD a Missing ')' in section"},
	{"section close", "a FETCH 1 BODY[X )]\r\n", 0, true,
	 "BAD a Unexpected ')' in section"},
	{"two sections", "a FETCH 1 BODY[1][2]\r\n", 0, true,
	 "BAD a Invalid character in atom"},
	{"flags", "a STORE 1 +FLAGS.SILENT (\\Seen \\Deleted $Junk)\r\n", 0, true,
	 "OK a STORE #1 +FLAGS.SILENT (\\Seen \\Deleted $Junk)"},
	{"list patterns", "a LIST \"\" %/*\r\n", 0, true, "OK a LIST \"\" %/*"},
	{"nested lists", "a X (a (b (c)) () NIL) d\r\n", 0, true, "OK a X (a (b (c)) () NIL) d"},
	{"list close in atom", "a X (a)(b)\r\n", 0, true, "BAD a Missing space between arguments"},
	{"unbalanced open", "a X (a (b)\r\nb NOOP\r\n", 0, true, "BAD a Missing ')' | OK b NOOP"},
	{"unbalanced close", "a X a)\r\nb NOOP\r\n", 0, true, "BAD a Unexpected ')' | OK b NOOP"},
	{"space after (", "a X ( a)\r\n", 0, true, "BAD a Invalid character"},
	{"space before )", "a X (a )\r\n", 0, true, "OK a X (a)"},

	/* literals */
	{"sync literal", "a LOGIN {3}\r\nbob {2}\r\npw\r\n", 0, true,
	 "+ | + | OK a LOGIN {3}bob {2}pw"},
	{"nonsync literal", "a LOGIN {3+}\r\nbob {2+}\r\npw\r\n", 0, true,
	 "OK a LOGIN {3+}bob {2+}pw"},
	{"empty literal", "a X {0}\r\n {0+}\r\n\r\n", 0, true, "+ | OK a X {0} {0+}"},
	{"literal in list", "a APPEND INBOX (\\Seen) {5+}\r\nab\r\nc\r\n", 0, true,
	 "OK a APPEND INBOX (\\Seen) {5+}ab\r\nc"},
	{"literal in list 2", "a X ({1}\r\nx {1+}\r\ny)\r\n", 0, true,
	 "+ | OK a X ({1}x {1+}y)"},
	{"literal bare LF", "a X {1}\nx\n", 0, true, "+ | OK a X {1}x"},
	{"binary literal", L("a APPEND INBOX ~{3}\r\na\0b\r\n"), true,
	 "+ | OK a APPEND INBOX ~{3}a\\0b"},
	{"binary nonsync", L("a APPEND INBOX ~{3+}\r\na\0b\r\n"), true,
	 "OK a APPEND INBOX ~{3+}a\\0b"},
	{"NUL in literal", L("a APPEND INBOX {3+}\r\na\0b x\r\nb NOOP\r\n"), true,
	 "BAD a NUL in literal | OK b NOOP"},
	{"NUL in sync literal", L("a APPEND INBOX {3}\r\na\0b x\r\nb NOOP\r\n"), true,
	 "+ | BAD a NUL in literal | OK b NOOP"},
	{"literal not at end", "a X {3} x\r\n", 0, true, "BAD a Literal must end the line"},
	{"literal no digits", "a X {}\r\n", 0, true, "BAD a Invalid literal"},
	{"literal plus no digits", "a X {+}\r\n", 0, true, "BAD a Invalid literal"},
	{"literal bad char", "a X {1a}\r\n", 0, true, "BAD a Invalid literal"},
	{"literal minus", "a X {1-}\r\n", 0, true, "BAD a Invalid literal"},
	{"literal CR", "a X {1}\rx\r\n", 0, true, "BAD a CR without LF"},
	{"literal then no space", "a X {1+}\r\nxy\r\n", 0, true,
	 "BAD a Missing space between arguments"},
	{"tilde not literal", "a X ~(\r\n", 0, true, "BAD a Invalid character in atom"},

	/* literal limits: 4096 before authentication, 64 MiB after (see also
	 * test_literal_caps) */
	{"sync over cap", "a LOGIN {4097}\r\nb NOOP\r\n", 0, false,
	 "BAD a [TOOBIG] Literal too large | OK b NOOP"},
	{"sync over cap auth", "a APPEND X {67108865}\r\nb NOOP\r\n", 0, true,
	 "BAD a [TOOBIG] Literal too large | OK b NOOP"},
	{"sync huge", "a APPEND X {99999999999999999999999999}\r\nb NOOP\r\n", 0, true,
	 "BAD a [TOOBIG] Literal too large | OK b NOOP"},
	/* skipped lines skip their non-synchronising literals too */
	{"skip nonsync", "a X ( {4+}\r\nb\r\nc\r\nd NOOP\r\n", 0, true,
	 "BAD a Invalid character | OK d NOOP"},
	{"skip sync", "a X ( {4}\r\nb NOOP\r\n", 0, true,
	 "BAD a Invalid character | OK b NOOP"},
	{"skip huge nonsync", "a X ( {99999999999999999999999+}\r\nxxx", 0, true,
	 "BAD a Invalid character"},

	/* tag and name caps */
	{"tag at cap", "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa X\r\n", 0,
	 true, "OK aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa X"},
	{"tag over cap", "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa X\r\nb X\r\n",
	 0, true, "BAD * Invalid tag | OK b X"},
	{"name at cap", "a AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\r\n", 0, true,
	 "OK a AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"},
	{"name over cap", "a AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\r\n", 0, true,
	 "BAD a Invalid command name"},

};

/* With small_limits: line 16, literal 8, depth 2, 4 arguments. */
static const struct parse_case small_cases[] = {
	{"small ok", "a X ((1) 2)\r\n", 0, false, "OK a X ((#1) #2)"},
	{"small depth", "a X (((1)))\r\nb X\r\n", 0, false,
	 "BAD a Lists nested too deeply | OK b X"},
	{"small args", "a X 1 2 3 4 5\r\nb X\r\n", 0, false,
	 "BAD a Too many arguments | OK b X"},
	{"small literal at cap", "a X {8+}\r\n12345678\r\n", 0, false,
	 "OK a X {8+}12345678"},
	{"small literal over cap", "a X {9+}\r\n123456789\r\nb X\r\n", 0, false,
	 "BAD a [TOOBIG] Literal too large | OK b X"},
	/* the line cap hits inside a literal header: its data is still skipped */
	{"line cap at literal LF", "a XXXXXXXX {4+}\r\nb X\r\nc X\r\n", 0, false,
	 "BAD a Command line too long | OK c X"},
	{"line cap at literal CR", "a XXXXXXXXX {4+}\r\nb X\r\nc X\r\n", 0, false,
	 "BAD a Command line too long | OK c X"},
	{"line cap in literal digits", "a XXXXXXXXXXX {12+}\r\n123456789012\r\nc X\r\n", 0, false,
	 "BAD a Command line too long | OK c X"},
	{"line cap at literal {", "a XXXXXXXXXXXXX {4+}\r\nb X\r\nc X\r\n", 0, false,
	 "BAD a Command line too long | OK c X"},
	{"line cap counts line ends between literals", "a X {1+}\r\n1 {1+}\r\n2\r\n", 0,
	 false, "BAD a Command line too long"},
};

static char *gen_literal(size_t n, bool plus, const char *before, const char *after,
			 size_t *len_r)
{
	struct buf b;
	buf_init(&b, SIZE_MAX / 2);
	buf_printf(&b, "%s{%zu%s}\r\n", before, n, plus ? "+" : "");
	for (size_t i = 0; i < n; i++)
		buf_append(&b, "x", 1);
	buf_append_str(&b, after);
	return buf_steal(&b, len_r);
}

static void test_parse(void **state)
{
	(void)state;
	struct imap_parser_limits pre, post;
	imap_parser_limits_default(&pre, false);
	imap_parser_limits_default(&post, true);
	for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
		const struct parse_case *c = &cases[i];
		size_t len = c->len ? c->len : strlen(c->input);
		check_all_splits(c->input, len, c->authenticated ? &post : &pre, c->want);
	}
	for (size_t i = 0; i < ARRAY_LEN(small_cases); i++) {
		const struct parse_case *c = &small_cases[i];
		check_all_splits(c->input, strlen(c->input), &small_limits, c->want);
	}
}

/* Literal caps, exactly at and one over; byte-by-byte and whole. */
static void test_literal_caps(void **state)
{
	(void)state;
	struct imap_parser_limits pre;
	imap_parser_limits_default(&pre, false);
	pre.line_max = 16 * 1024;
	size_t len;
	char *in, *got;

	in = gen_literal(4096, false, "a LOGIN ", " x\r\n", &len);
	got = run(in, len, &pre, 0, 0);
	assert_int_equal(strncmp(got, "+ | OK a LOGIN {4096}xxx", 24), 0);
	free(got);
	free(in);

	/* non-synchronising over the cap: the data is consumed and dropped,
	 * then the error, then the next command parses */
	in = gen_literal(4097, true, "a LOGIN ", " x\r\nb NOOP\r\n", &len);
	for (size_t chunk = 0; chunk <= 7; chunk += 7) {
		got = run(in, len, &pre, 0, chunk);
		assert_string_equal(got, "BAD a [TOOBIG] Literal too large | OK b NOOP");
		free(got);
	}
	free(in);

	/* after authentication: 64 MiB exactly, then one byte more */
	struct imap_parser_limits post;
	imap_parser_limits_default(&post, true);
	for (uint64_t n = IMAP_LITERAL_MAX; n <= IMAP_LITERAL_MAX + 1; n++) {
		in = gen_literal((size_t)n, true, "a APPEND INBOX ", "\r\nb NOOP\r\n", &len);
		got = run(in, len, &post, 0, 65536);
		if (n == IMAP_LITERAL_MAX)
			assert_true(strncmp(got, "OK a APPEND INBOX {67108864+}xxx", 32) == 0 &&
				    strcmp(got + strlen(got) - 12, " | OK b NOOP") == 0);
		else
			assert_string_equal(got, "BAD a [TOOBIG] Literal too large | OK b NOOP");
		free(got);
		free(in);
	}

	/* the sum of literals in one command is capped too */
	struct buf b;
	buf_init(&b, 1 << 20);
	buf_append_str(&b, "a X {3000+}\r\n");
	for (int i = 0; i < 3000; i++)
		buf_append_str(&b, "y");
	buf_append_str(&b, " {1097+}\r\n");
	for (int i = 0; i < 1097; i++)
		buf_append_str(&b, "y");
	buf_append_str(&b, "\r\nb NOOP\r\n");
	got = run(b.data, b.len, &pre, 0, 0);
	assert_string_equal(got, "BAD a [TOOBIG] Literal too large | OK b NOOP");
	free(got);
	buf_free(&b);
}

/* Line caps: 8 KiB before authentication, 64 KiB after. */
static void test_line_caps(void **state)
{
	(void)state;
	struct { bool auth; size_t max; } t[] = {
		{false, IMAP_LINE_MAX_PREAUTH}, {true, IMAP_LINE_MAX},
	};
	for (size_t k = 0; k < ARRAY_LEN(t); k++) {
		struct imap_parser_limits lim;
		imap_parser_limits_default(&lim, t[k].auth);
		for (size_t extra = 0; extra <= 1; extra++) {
			/* "a X " + atom + "\r\n" is exactly max + extra bytes */
			size_t n = t[k].max + extra;
			char *in = xmalloc(n + 16);
			memcpy(in, "a X ", 4);
			memset(in + 4, 'z', n - 6);
			memcpy(in + n - 2, "\r\nb NOOP\r\n", 10);
			char *got = run(in, n + 8, &lim, 0, 0);
			if (extra == 0)
				assert_true(strncmp(got, "OK a X zzz", 10) == 0 && strchr(got, '|') ==
					    strrchr(got, '|') &&
					    strstr(got, " | OK b NOOP") != NULL);
			else
				assert_string_equal(got,
					"BAD a Command line too long | OK b NOOP");
			free(got);
			free(in);
		}
	}
}

/* Depth cap 32: exactly at is fine, one more fails. */
static void test_depth_cap(void **state)
{
	(void)state;
	struct imap_parser_limits lim;
	imap_parser_limits_default(&lim, true);
	for (unsigned d = IMAP_DEPTH_MAX; d <= IMAP_DEPTH_MAX + 1; d++) {
		struct buf b, want;
		buf_init(&b, 4096);
		buf_init(&want, 4096);
		buf_append_str(&b, "a X ");
		buf_append_str(&want, "OK a X ");
		for (unsigned i = 0; i < d; i++) {
			buf_append_str(&b, "(");
			buf_append_str(&want, "(");
		}
		for (unsigned i = 0; i < d; i++) {
			buf_append_str(&b, ")");
			buf_append_str(&want, ")");
		}
		buf_append_str(&b, "\r\nb NOOP\r\n");
		buf_append_str(&want, " | OK b NOOP");
		check_all_splits(b.data, b.len, &lim, d <= IMAP_DEPTH_MAX ? want.data :
				 "BAD a Lists nested too deeply | OK b NOOP");
		buf_free(&b);
		buf_free(&want);
	}
}

/* Argument cap 4096 (lists count), also for literals. */
static void test_args_cap(void **state)
{
	(void)state;
	struct imap_parser_limits lim;
	imap_parser_limits_default(&lim, true);
	for (unsigned n = IMAP_ARGS_MAX; n <= IMAP_ARGS_MAX + 1; n++) {
		struct buf b;
		buf_init(&b, 1 << 20);
		buf_append_str(&b, "a X");
		for (unsigned i = 0; i < n; i++)
			buf_append_str(&b, " 1");
		buf_append_str(&b, "\r\nb NOOP\r\n");
		char *got = run(b.data, b.len, &lim, 0, 0);
		if (n <= IMAP_ARGS_MAX)
			assert_true(strncmp(got, "OK a X #1 #1", 12) == 0);
		else
			assert_string_equal(got, "BAD a Too many arguments | OK b NOOP");
		free(got);
		buf_free(&b);
	}
	/* a literal as argument 4097: sync fails at once, nonsync after its data */
	for (int plus = 0; plus <= 1; plus++) {
		struct buf b;
		buf_init(&b, 1 << 20);
		buf_append_str(&b, "a X");
		for (unsigned i = 0; i < IMAP_ARGS_MAX; i++)
			buf_append_str(&b, " 1");
		buf_append_str(&b, plus ? " {2+}\r\nxy\r\nb NOOP\r\n" : " {2}\r\nb NOOP\r\n");
		char *got = run(b.data, b.len, &lim, 0, 0);
		assert_string_equal(got, "BAD a Too many arguments | OK b NOOP");
		free(got);
		buf_free(&b);
	}
}

/* Limits switch between commands. */
static void test_set_limits(void **state)
{
	(void)state;
	struct imap_parser_limits pre, post;
	imap_parser_limits_default(&pre, false);
	imap_parser_limits_default(&post, true);
	struct imap_parser *p = imap_parser_new(&pre);
	size_t used;
	assert_int_equal(imap_parser_feed(p, "a X {5000}\r\n", 12, &used), IMAP_PARSE_ERROR);
	assert_int_equal(used, 12);
	imap_parser_set_limits(p, &post);
	assert_int_equal(imap_parser_feed(p, "a X {5000}\r\n", 12, &used), IMAP_PARSE_CONTINUE);
	imap_parser_free(&p);
	imap_parser_free(&p);   /* NULL-safe */
}

/* Argument helpers. */
static void test_helpers(void **state)
{
	(void)state;
	struct imap_parser *p = imap_parser_new(NULL);
	const char *in = "a X 0 4294967296 abc \"q\" NIL (\\Seen kw) (\\Seen \"x\") "
		"{1+}\r\nL ~{1+}\r\nB a*b 7\r\n";
	size_t used;
	assert_int_equal(imap_parser_feed(p, in, strlen(in), &used), IMAP_PARSE_DONE);
	const struct imap_command *c = imap_parser_command(p);
	const struct imap_arg *a = c->args;
	uint32_t n;
	uint64_t n64;
	const char *s;
	size_t len;

	assert_int_equal(c->nargs, 15);
	assert_int_equal(imap_arg_number(&a[0], &n), 0);
	assert_int_equal(n, 0);
	assert_int_equal(imap_arg_nz_number(&a[0], &n), -1);
	assert_int_equal(imap_arg_number(&a[1], &n), -1);
	assert_int_equal(imap_arg_number64(&a[1], &n64), 0);
	assert_true(n64 == 4294967296ull);
	assert_int_equal(imap_arg_number64(&a[2], &n64), -1);
	assert_true(imap_arg_atom_eq(&a[2], "ABC"));
	assert_false(imap_arg_atom_eq(&a[2], "AB"));
	assert_false(imap_arg_atom_eq(&a[3], "q"));
	assert_int_equal(imap_arg_astring(&a[2], &s, &len), 0);
	assert_int_equal(imap_arg_astring(&a[3], &s, &len), 0);
	assert_int_equal(imap_arg_astring(&a[4], &s, &len), 0);
	assert_int_equal(imap_arg_nstring(&a[4], &s, &len), 0);
	assert_null(s);
	assert_int_equal(imap_arg_nstring(&a[3], &s, &len), 0);
	assert_string_equal(s, "q");
	assert_int_equal(imap_arg_nstring(&a[2], &s, &len), -1);
	assert_int_equal(imap_arg_flag_list(a, 5), 0);
	assert_int_equal(a[5].nchildren, 2);
	assert_int_equal(a[5].end, 8);
	assert_int_equal(a[6].parent, 5);
	assert_int_equal(imap_arg_flag_list(a, 8), -1);
	assert_int_equal(imap_arg_flag_list(a, 2), -1);
	assert_int_equal(imap_arg_astring(&a[11], &s, &len), 0);       /* {1+} */
	assert_int_equal(imap_arg_astring(&a[12], &s, &len), -1);      /* ~{1+} */
	assert_int_equal(imap_arg_nstring(&a[12], &s, &len), -1);
	assert_int_equal(imap_arg_astring(&a[13], &s, &len), -1);      /* a*b */
	assert_int_equal(imap_arg_astring(&a[5], &s, &len), -1);       /* list */
	assert_int_equal(imap_arg_nz_number(&a[14], &n), 0);
	assert_int_equal(n, 7);
	/* the command is gone after the next feed */
	assert_int_equal(imap_parser_feed(p, "b", 1, &used), IMAP_PARSE_MORE);
	assert_null(imap_parser_command(p));
	imap_parser_free(&p);
}

struct seq_case {
	const char *input;
	int rc;
	const char *want;       /* "lo-hi,..." with * for IMAP_SEQ_STAR, "$" */
};

static const struct seq_case seq_cases[] = {
	{"1", 0, "1-1"},
	{"1:*,3,5:7", 0, "1-*,3-3,5-7"},
	{"*", 0, "*-*"},
	{"*:4", 0, "4-*"},
	{"7:5", 0, "5-7"},
	{"4294967294", 0, "4294967294-4294967294"},
	{"$", 0, "$"},
	{"", -1, NULL},
	{"0", -1, NULL},
	{"1:0", -1, NULL},
	{"01", -1, NULL},
	{"4294967295", 0, "4294967294-4294967294"},
	{"1:4294967295", 0, "1-4294967294"},
	{"4294967296", -1, NULL},
	{"99999999999999999999", -1, NULL},
	{"1,", -1, NULL},
	{",1", -1, NULL},
	{"1,,2", -1, NULL},
	{"1:", -1, NULL},
	{":1", -1, NULL},
	{"1:2:3", -1, NULL},
	{"$,1", -1, NULL},
	{"1 2", -1, NULL},
	{"**", -1, NULL},
	{"a", -1, NULL},
};

static void test_seqset(void **state)
{
	(void)state;
	for (size_t i = 0; i < ARRAY_LEN(seq_cases); i++) {
		const struct seq_case *t = &seq_cases[i];
		struct imap_seqset set;
		const char *error = NULL;
		int rc = imap_seqset_parse(t->input, strlen(t->input), &set, &error);
		if (rc != t->rc)
			fail_msg("seqset %s: rc %d", t->input, rc);
		if (rc < 0) {
			assert_non_null(error);
			assert_null(set.ranges);
			continue;
		}
		struct buf b;
		buf_init(&b, 4096);
		if (set.saved)
			buf_append_str(&b, "$");
		for (size_t k = 0; k < set.count; k++) {
			uint32_t lo = set.ranges[k].lo, hi = set.ranges[k].hi;
			if (k)
				buf_append_str(&b, ",");
			if (lo == IMAP_SEQ_STAR)
				buf_append_str(&b, "*");
			else
				buf_printf(&b, "%u", lo);
			if (hi == IMAP_SEQ_STAR)
				buf_append_str(&b, "-*");
			else
				buf_printf(&b, "-%u", hi);
		}
		assert_string_equal(b.data ? b.data : "", t->want);
		buf_free(&b);
		imap_seqset_free(&set);
	}
}

struct section_case {
	const char *input;
	int rc;
	enum imap_fetch_kind kind;
	bool peek;
	const char *parts;      /* "1.2" */
	enum imap_section_spec spec;
	const char *fields;     /* "From|To" */
	int partial_off, partial_len;   /* -1: none */
};

static const struct section_case section_cases[] = {
	{"BODY[]", 0, IMAP_FETCH_BODY, false, "", IMAP_SECTION_ALL, "", -1, -1},
	{"body.peek[]<0.100>", 0, IMAP_FETCH_BODY, true, "", IMAP_SECTION_ALL, "", 0, 100},
	{"BODY[HEADER]", 0, IMAP_FETCH_BODY, false, "", IMAP_SECTION_HEADER, "", -1, -1},
	{"BODY[TEXT]", 0, IMAP_FETCH_BODY, false, "", IMAP_SECTION_TEXT, "", -1, -1},
	{"BODY[HEADER.FIELDS (From To)]<0.100>", 0, IMAP_FETCH_BODY, false, "",
	 IMAP_SECTION_HEADER_FIELDS, "From|To", 0, 100},
	{"BODY.PEEK[HEADER.FIELDS.NOT (\"X-A\")]", 0, IMAP_FETCH_BODY, true, "",
	 IMAP_SECTION_HEADER_FIELDS_NOT, "X-A", -1, -1},
	{"BODY.PEEK[1.2.MIME]", 0, IMAP_FETCH_BODY, true, "1.2", IMAP_SECTION_MIME, "", -1, -1},
	{"BODY[1.2]", 0, IMAP_FETCH_BODY, false, "1.2", IMAP_SECTION_ALL, "", -1, -1},
	{"BODY[3.HEADER]", 0, IMAP_FETCH_BODY, false, "3", IMAP_SECTION_HEADER, "", -1, -1},
	{"BODY[3.TEXT]<5.1>", 0, IMAP_FETCH_BODY, false, "3", IMAP_SECTION_TEXT, "", 5, 1},
	{"BINARY[1]", 0, IMAP_FETCH_BINARY, false, "1", IMAP_SECTION_ALL, "", -1, -1},
	{"BINARY.PEEK[]<1.2>", 0, IMAP_FETCH_BINARY, true, "", IMAP_SECTION_ALL, "", 1, 2},
	{"BINARY.SIZE[2]", 0, IMAP_FETCH_BINARY_SIZE, false, "2", IMAP_SECTION_ALL, "", -1, -1},
	{"BODY[MIME]", -1, 0, false, NULL, 0, NULL, 0, 0},
	{"BODY[0]", -1, 0, false, NULL, 0, NULL, 0, 0},
	{"BODY[1.]", -1, 0, false, NULL, 0, NULL, 0, 0},
	{"BODY[1TEXT]", -1, 0, false, NULL, 0, NULL, 0, 0},
	{"BODY[4294967296]", -1, 0, false, NULL, 0, NULL, 0, 0},
	{"BODY[HEADER.FIELDS]", -1, 0, false, NULL, 0, NULL, 0, 0},
	{"BODY[HEADER.FIELDS ()]", -1, 0, false, NULL, 0, NULL, 0, 0},
	{"BODY[HEADER.FIELDS (\"a\\\"b\")]", -1, 0, false, NULL, 0, NULL, 0, 0},
	{"BODY[TEXT]<0>", -1, 0, false, NULL, 0, NULL, 0, 0},
	{"BODY[TEXT]<0.0>", -1, 0, false, NULL, 0, NULL, 0, 0},
	{"BODY[TEXT]<0.1", -1, 0, false, NULL, 0, NULL, 0, 0},
	{"BODY[TEXT]x", -1, 0, false, NULL, 0, NULL, 0, 0},
	{"BODY[TEXT", -1, 0, false, NULL, 0, NULL, 0, 0},
	{"BINARY[1.MIME]", -1, 0, false, NULL, 0, NULL, 0, 0},
	{"BINARY.SIZE[1]<0.1>", -1, 0, false, NULL, 0, NULL, 0, 0},
	{"RFC822", -1, 0, false, NULL, 0, NULL, 0, 0},
	{"BODY", -1, 0, false, NULL, 0, NULL, 0, 0},
	{"BODY[1.2.3.4.5.6.7.8.9.10.11.12.13.14.15.16.17.18.19.20.21.22.23.24.25.26.27.28."
	 "29.30.31.32]", 0, IMAP_FETCH_BODY, false, "1.2.3.4.5.6.7.8.9.10.11.12.13.14.15.16."
	 "17.18.19.20.21.22.23.24.25.26.27.28.29.30.31.32", IMAP_SECTION_ALL, "", -1, -1},
	{"BODY[1.2.3.4.5.6.7.8.9.10.11.12.13.14.15.16.17.18.19.20.21.22.23.24.25.26.27.28."
	 "29.30.31.32.33]", -1, 0, false, NULL, 0, NULL, 0, 0},
};

static void test_section(void **state)
{
	(void)state;
	for (size_t i = 0; i < ARRAY_LEN(section_cases); i++) {
		const struct section_case *t = &section_cases[i];
		struct imap_fetch_section s;
		const char *error = NULL;
		int rc = imap_fetch_section_parse(t->input, strlen(t->input), &s, &error);
		if (rc != t->rc)
			fail_msg("section %s: rc %d", t->input, rc);
		if (rc < 0) {
			assert_non_null(error);
			continue;
		}
		assert_int_equal(s.kind, t->kind);
		assert_int_equal(s.peek, t->peek);
		assert_int_equal(s.spec, t->spec);
		struct buf b;
		buf_init(&b, 4096);
		buf_append_str(&b, "");
		for (unsigned k = 0; k < s.nparts; k++)
			buf_printf(&b, "%s%u", k ? "." : "", s.parts[k]);
		assert_string_equal(b.data, t->parts);
		buf_reset(&b);
		buf_append_str(&b, "");
		for (unsigned k = 0; k < s.nfields; k++)
			buf_printf(&b, "%s%.*s", k ? "|" : "", (int)s.fields[k].len, s.fields[k].s);
		assert_string_equal(b.data, t->fields);
		buf_free(&b);
		assert_int_equal(s.partial, t->partial_off >= 0);
		if (s.partial) {
			assert_int_equal(s.partial_off, t->partial_off);
			assert_int_equal(s.partial_len, t->partial_len);
		}
	}
	/* field cap */
	struct buf b;
	struct imap_fetch_section s;
	const char *error;
	buf_init(&b, 1 << 16);
	for (unsigned n = IMAP_SECTION_MAX_FIELDS; n <= IMAP_SECTION_MAX_FIELDS + 1; n++) {
		buf_reset(&b);
		buf_append_str(&b, "BODY[HEADER.FIELDS (");
		for (unsigned k = 0; k < n; k++)
			buf_printf(&b, "%sF%u", k ? " " : "", k);
		buf_append_str(&b, ")]");
		assert_int_equal(imap_fetch_section_parse(b.data, b.len, &s, &error),
				 n <= IMAP_SECTION_MAX_FIELDS ? 0 : -1);
	}
	buf_free(&b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse),
		cmocka_unit_test(test_literal_caps),
		cmocka_unit_test(test_line_caps),
		cmocka_unit_test(test_depth_cap),
		cmocka_unit_test(test_args_cap),
		cmocka_unit_test(test_set_limits),
		cmocka_unit_test(test_helpers),
		cmocka_unit_test(test_seqset),
		cmocka_unit_test(test_section),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
