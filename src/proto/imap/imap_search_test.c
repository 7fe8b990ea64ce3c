/* imap_search_test.c - table-driven tests of SEARCH, SORT, base subjects
 * and THREAD.
 *
 * Search programs are parsed from real command text with imap_parser
 * ("A1 SEARCH [CHARSET x] keys\r\n") and run against seven messages; the
 * result is written as one digit per message ("1010000": messages 1 and 3
 * match).  Every search runs twice, with the MIME tree given and with it
 * left to imap_search_match to parse, and both must agree. */
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
#include "mail/mime.h"
#include "proto/imap/imap_parser.h"
#include "proto/imap/imap_search.h"
#include "store/store.h"

#define DAY 86400
#define JAN1_2020 18262         /* days since the epoch */

/* ---- the messages ---- */

static const char m1[] =
	"From: Alice Example <alice@example.com>\r\n"
	"To: Bob <bob@example.org>\r\n"
	"Cc: carol@example.net\r\n"
	"Subject: Hello world\r\n"
	"Date: Mon, 7 Feb 1994 21:52:25 -0800\r\n"
	"Message-ID: <m1@example.com>\r\n"
	"X-Custom: Folded\r\n value here\r\n"
	"X-Dup: one\r\n"
	"X-Dup: two\r\n"
	"\r\n"
	"Hello there, this is a plain body.\r\n";

/* base64 UTF-8: "Été à Paris. Ελληνικά γράμματα. ПРИВЕТ мир." */
static const char m2[] =
	"From: =?UTF-8?Q?J=C3=B6rg?= <jorg@example.de>\r\n"
	"To: list@example.org\r\n"
	"Subject: =?UTF-8?Q?Caf=C3=A9_cr=C3=A8me?=\r\n"
	"Date: Tue, 01 Mar 2022 10:00:00 +0000\r\n"
	"MIME-Version: 1.0\r\n"
	"Content-Type: text/plain; charset=utf-8\r\n"
	"Content-Transfer-Encoding: base64\r\n"
	"\r\n"
	"w4l0w6kgw6AgUGFyaXMuIM6VzrvOu863zr3Ouc66zqwgzrPPgc6szrzOvM6xz4TOsS4g0J/QoNCY\r\n"
	"0JLQldCiINC80LjRgC4NCg==\r\n";

/* quoted-printable Latin-1 with a soft line break */
static const char m3[] =
	"From: dave@example.com\r\n"
	"To: list@example.org\r\n"
	"Bcc: secret@example.com\r\n"
	"Subject: Dessert\r\n"
	"Date: 2 Mar 2022 10:00 +0100\r\n"
	"Content-Type: text/plain; charset=ISO-8859-1\r\n"
	"Content-Transfer-Encoding: quoted-printable\r\n"
	"\r\n"
	"Cr=E8me br=FBl=E9e =C9T=C9 chaud, tr=\r\n"
	"=E8s bon\r\n";

/* ISO-2022-JP: subject "日本語の件名", body "こんにちは世界" */
static const char m4[] =
	"From: taro@example.jp\r\n"
	"To: list@example.org\r\n"
	"Subject: =?ISO-2022-JP?B?GyRCRnxLXDhsJE43b0w+GyhC?=\r\n"
	"Date: Thu, 03 Mar 2022 12:00:00 +0900\r\n"
	"Content-Type: text/plain; charset=ISO-2022-JP\r\n"
	"Content-Transfer-Encoding: 7bit\r\n"
	"\r\n"
	"\x1b$B$3$s$K$A$O@$3&\x1b(B\r\n";

/* Shift_JIS "東京タワーへ行く", no Date: */
static const char m5[] =
	"From: hanako@example.jp\r\n"
	"To: list@example.org\r\n"
	"Subject: Tokyo\r\n"
	"Content-Type: text/plain; charset=Shift_JIS\r\n"
	"Content-Transfer-Encoding: 8bit\r\n"
	"\r\n"
	"\x93\x8c\x8b\x9e\x83^\x83\x8f\x81[\x82\xd6\x8ds\x82\xad\r\n";

/* EUC-JP "大阪城の桜", a Date: that does not parse */
static const char m6[] =
	"From: jiro@example.jp\r\n"
	"To: list@example.org\r\n"
	"Subject: Osaka\r\n"
	"Date: sometime last week\r\n"
	"Content-Type: text/plain; charset=EUC-JP\r\n"
	"\r\n"
	"\xc2\xe7\xba\xe5\xbe\xeb\xa4\xce\xba\xf9\r\n";

/* text, a base64 text attachment, a binary part, an encapsulated message */
static const char m7[] =
	"From: eve@example.com\r\n"
	"To: list@example.org\r\n"
	"Subject: Attachments\r\n"
	"Date: Fri, 04 Mar 2022 01:00:00 +0900\r\n"
	"MIME-Version: 1.0\r\n"
	"Content-Type: multipart/mixed; boundary=\"XX\"\r\n"
	"\r\n"
	"preamble binaryneedle\r\n"
	"--XX\r\n"
	"Content-Type: text/plain\r\n"
	"\r\n"
	"See the attachment.\r\n"
	"--XX\r\n"
	"Content-Type: text/plain; name=\"s.txt\"\r\n"
	"Content-Disposition: attachment; filename=\"s.txt\"\r\n"
	"Content-Transfer-Encoding: base64\r\n"
	"\r\n"
	"c2VjcmV0IHRleHQgYXR0YWNobWVudA0K\r\n"
	"--XX\r\n"
	"Content-Type: application/octet-stream\r\n"
	"\r\n"
	"binaryneedle\r\n"
	"--XX\r\n"
	"Content-Type: message/rfc822\r\n"
	"\r\n"
	"From: inner@example.com\r\n"
	"Subject: Inner subject\r\n"
	"\r\n"
	"inner body text\r\n"
	"--XX--\r\n"
	"epilogue\r\n";

#define NMSG 7

static const struct {
	const char *data;
	size_t len;
	uint32_t flags;
	const char *keywords;
} msgdefs[NMSG] = {
	{m1, sizeof(m1) - 1, FLAG_SEEN | FLAG_ANSWERED, "$Forwarded Work"},
	{m2, sizeof(m2) - 1, FLAG_FLAGGED | IMAP_SEARCH_RECENT, NULL},
	{m3, sizeof(m3) - 1, FLAG_DELETED | FLAG_SEEN, "work"},
	{m4, sizeof(m4) - 1, FLAG_DRAFT | IMAP_SEARCH_RECENT, NULL},
	{m5, sizeof(m5) - 1, 0, "Junk"},
	{m6, sizeof(m6) - 1, FLAG_SEEN | IMAP_SEARCH_RECENT, ""},
	{m7, sizeof(m7) - 1, FLAG_SEEN | FLAG_FLAGGED, NULL},
};

static struct imap_search_msg msgs[NMSG];
static struct mime_message *mimes[NMSG];
static const uint32_t saved[] = {20, 40};

static int setup(void **state)
{
	for (int i = 0; i < NMSG; i++) {
		struct imap_search_msg *m = &msgs[i];
		memset(m, 0, sizeof(*m));
		m->seq = (uint32_t)i + 1;
		m->uid = 10 * ((uint32_t)i + 1);
		m->flags = msgdefs[i].flags;
		m->keywords = msgdefs[i].keywords;
		m->size = 100 * (i + 1);
		/* 2020-01-0N 12:00 UTC */
		m->internaldate = (int64_t)(JAN1_2020 + i) * DAY + DAY / 2;
		m->modseq = 5 * ((uint64_t)i + 1);
		m->data = msgdefs[i].data;
		m->len = msgdefs[i].len;
		mimes[i] = mime_parse(m->data, m->len, NULL);
	}
	msgs[0].savedate = (int64_t)18779 * DAY + DAY / 2; /* 2021-06-01 */
	(void)state;
	return 0;
}

static int teardown(void **state)
{
	for (int i = 0; i < NMSG; i++)
		mime_message_free(&mimes[i]);
	(void)state;
	return 0;
}

static void ctx_default(struct imap_search_ctx *ctx)
{
	memset(ctx, 0, sizeof(*ctx));
	ctx->max_seq = NMSG;
	ctx->max_uid = 10 * NMSG;
	ctx->now = msgs[NMSG - 1].internaldate + DAY;
	ctx->saved_uids = saved;
	ctx->nsaved = ARRAY_LEN(saved);
}

/* ---- parsing a command ---- */

struct parsed {
	struct imap_parser *p;
	const struct imap_command *cmd;
};

/* "@L" in text is replaced by a non-synchronising literal of lit. */
static char *expand(const char *verb, const char *text, const char *lit)
{
	struct buf b;
	buf_init(&b, 1 << 20);
	buf_printf(&b, "A1 %s ", verb);
	const char *at = lit != NULL ? strstr(text, "@L") : NULL;
	if (at != NULL) {
		buf_append(&b, text, (size_t)(at - text));
		buf_printf(&b, "{%zu+}\r\n%s", strlen(lit), lit);
		buf_append_str(&b, at + 2);
	} else {
		buf_append_str(&b, text);
	}
	buf_append_str(&b, "\r\n");
	return buf_steal(&b, NULL);
}

static void parse_cmd(struct parsed *ps, const char *verb, const char *text, const char *lit)
{
	struct imap_parser_limits lim;
	imap_parser_limits_default(&lim, true);
	ps->p = imap_parser_new(&lim);
	char *line = expand(verb, text, lit);
	size_t used;
	enum imap_parse_result r = imap_parser_feed(ps->p, line, strlen(line), &used);
	if (r != IMAP_PARSE_DONE)
		fail_msg("parser did not take %s: %d %s", line, r,
			 imap_parser_error(ps->p, NULL, NULL));
	assert_int_equal(used, strlen(line));
	free(line);
	ps->cmd = imap_parser_command(ps->p);
}

/* Compile a SEARCH command's keys (after an optional CHARSET x). */
static int compile(const char *keys, const char *lit, struct imap_search **prog_r,
		   bool *badcharset_r, const char **error_r)
{
	struct parsed ps;
	parse_cmd(&ps, "SEARCH", keys, lit);
	const struct imap_command *c = ps.cmd;
	uint32_t first = 0;
	const char *charset = NULL;
	if (c->nargs >= 2 && imap_arg_atom_eq(&c->args[0], "CHARSET")) {
		charset = c->args[1].str;
		first = 2;
	}
	int r = imap_search_compile(c->args, first, c->nargs, charset, prog_r, badcharset_r,
				    error_r);
	imap_parser_free(&ps.p);
	return r;
}

static void run_all(const struct imap_search *prog, const struct imap_search_ctx *ctx,
		    bool with_mime, char out[NMSG + 1])
{
	for (int i = 0; i < NMSG; i++) {
		struct imap_search_msg m = msgs[i];
		m.mime = with_mime ? mimes[i] : NULL;
		int r = imap_search_match(prog, ctx, &m);
		assert_true(r == 0 || r == 1);
		out[i] = r ? '1' : '0';
	}
	out[NMSG] = '\0';
}

/* ---- SEARCH ---- */

struct scase {
	const char *keys;
	const char *lit;        /* for "@L" */
	const char *want;
	int tz;
};

static const struct scase search_cases[] = {
	/* flags */
	{"ALL", NULL, "1111111", 0},
	{"ANSWERED", NULL, "1000000", 0},
	{"UNANSWERED", NULL, "0111111", 0},
	{"DELETED", NULL, "0010000", 0},
	{"UNDELETED", NULL, "1101111", 0},
	{"DRAFT", NULL, "0001000", 0},
	{"UNDRAFT", NULL, "1110111", 0},
	{"FLAGGED", NULL, "0100001", 0},
	{"UNFLAGGED", NULL, "1011110", 0},
	{"SEEN", NULL, "1010011", 0},
	{"seen", NULL, "1010011", 0},
	{"UNSEEN", NULL, "0101100", 0},
	{"RECENT", NULL, "0101010", 0},
	{"NEW", NULL, "0101000", 0},
	{"OLD", NULL, "1010101", 0},
	{"KEYWORD work", NULL, "1010000", 0},
	{"KEYWORD $forwarded", NULL, "1000000", 0},
	{"KEYWORD nope", NULL, "0000000", 0},
	{"UNKEYWORD work", NULL, "0101111", 0},
	{"KEYWORD \\Seen", NULL, "1010011", 0},
	{"UNKEYWORD \\Flagged", NULL, "1011110", 0},
	/* sequence sets and UIDs (max_seq 7, max_uid 70) */
	{"1:3", NULL, "1110000", 0},
	{"3:1", NULL, "1110000", 0},
	{"5:*", NULL, "0000111", 0},
	{"*", NULL, "0000001", 0},
	{"*:6", NULL, "0000011", 0},
	{"9:*", NULL, "0000001", 0},
	{"2,4,6", NULL, "0101010", 0},
	{"1,1:2,2", NULL, "1100000", 0},
	{"4", NULL, "0001000", 0},
	{"$", NULL, "0101000", 0},
	{"UID 30:*", NULL, "0011111", 0},
	{"UID 100:*", NULL, "0000001", 0},
	{"UID *", NULL, "0000001", 0},
	{"UID 15:25", NULL, "0100000", 0},
	{"UID 1:9", NULL, "0000000", 0},
	{"UID 10,30,70", NULL, "1010001", 0},
	{"UID $", NULL, "0101000", 0},
	/* sizes, internal dates (2020-01-0N 12:00 UTC), save dates, ages */
	{"LARGER 300", NULL, "0001111", 0},
	{"SMALLER 300", NULL, "1100000", 0},
	{"LARGER 700", NULL, "0000000", 0},
	{"SMALLER 100", NULL, "0000000", 0},
	{"BEFORE 3-Jan-2020", NULL, "1100000", 0},
	{"ON 3-Jan-2020", NULL, "0010000", 0},
	{"SINCE 3-Jan-2020", NULL, "0011111", 0},
	{"SINCE \"3-jan-2020\"", NULL, "0011111", 0},
	{"ON 4-Jan-2020", NULL, "0010000", 720},
	{"ON 3-Jan-2020", NULL, "0010000", -720},
	{"ON 3-Jan-2020", NULL, "0001000", -721},
	{"SAVEDON 1-Jun-2021", NULL, "1000000", 0},
	{"SAVEDBEFORE 3-Jan-2020", NULL, "0100000", 0},
	{"SAVEDSINCE 1-Jan-2021", NULL, "1000000", 0},
	{"OLDER 172800", NULL, "1111100", 0},
	{"YOUNGER 172800", NULL, "0000011", 0},
	{"MODSEQ 20", NULL, "0001111", 0},
	{"MODSEQ \"/flags/\\\\draft\" all 30", NULL, "0000011", 0},
	/* sent dates, in the Date: field's own zone */
	{"SENTON 7-Feb-1994", NULL, "1000000", 0},
	{"SENTON 8-Feb-1994", NULL, "0000000", 0},
	{"SENTBEFORE 2-Mar-2022", NULL, "1100000", 0},
	{"SENTON 2-Mar-2022", NULL, "0010000", 0},
	{"SENTSINCE 3-Mar-2022", NULL, "0001001", 0},
	{"SENTON 4-Mar-2022", NULL, "0000001", 0},
	{"NOT SENTON 4-Mar-2022", NULL, "1111110", 0},
	/* header fields, unfolded and RFC 2047 decoded */
	{"FROM alice", NULL, "1000000", 0},
	{"FROM \"alice example\"", NULL, "1000000", 0},
	{"FROM example", NULL, "1111111", 0},
	{"FROM \"jörg\"", NULL, "0100000", 0},
	{"FROM \"JÖRG\"", NULL, "0100000", 0},
	{"TO bob", NULL, "1000000", 0},
	{"TO list", NULL, "0111111", 0},
	{"CC carol", NULL, "1000000", 0},
	{"BCC secret", NULL, "0010000", 0},
	{"SUBJECT \"CAFÉ CRÈME\"", NULL, "0100000", 0},
	{"SUBJECT \"日本語\"", NULL, "0001000", 0},
	{"SUBJECT inner", NULL, "0000000", 0},
	{"HEADER X-Custom \"value here\"", NULL, "1000000", 0},
	{"HEADER x-custom \"folded VALUE\"", NULL, "1000000", 0},
	{"HEADER X-Custom \"\"", NULL, "1000000", 0},
	{"HEADER Date \"\"", NULL, "1111011", 0},
	{"HEADER X-Missing \"\"", NULL, "0000000", 0},
	{"HEADER Content-Type charset", NULL, "0111110", 0},
	{"HEADER Subject hello", NULL, "1000000", 0},
	{"HEADER X-Dup one", NULL, "1000000", 0},
	{"HEADER X-Dup two", NULL, "1000000", 0},
	{"HEADER X-Dup three", NULL, "0000000", 0},
	/* bodies: transfer encodings, charsets, parts */
	{"BODY hello", NULL, "1000000", 0},
	{"BODY HELLO", NULL, "1000000", 0},
	{"BODY world", NULL, "0000000", 0},
	{"TEXT world", NULL, "1000000", 0},
	{"BODY \"ÉTÉ\"", NULL, "0110000", 0},
	{"BODY \"été à paris\"", NULL, "0100000", 0},
	{"BODY \"ΓΡΆΜΜΑΤΑ\"", NULL, "0100000", 0},
	{"BODY \"привет\"", NULL, "0100000", 0},
	{"BODY \"très bon\"", NULL, "0010000", 0},
	{"BODY \"CRÈME\"", NULL, "0010000", 0},
	{"BODY \"世界\"", NULL, "0001000", 0},
	{"BODY \"大阪\"", NULL, "0000010", 0},
	{"BODY \"タワー\"", NULL, "0000100", 0},
	{"CHARSET ISO-2022-JP BODY @L", "\x1b$B@$3&\x1b(B", "0001000", 0},
	{"CHARSET Shift_JIS BODY @L", "\x83^\x83\x8f\x81[", "0000100", 0},
	{"CHARSET Shift_JIS SUBJECT @L", "\x8c\x8f\x96\xbc", "0001000", 0},
	{"CHARSET EUC-JP BODY @L", "\xba\xf9", "0000010", 0},
	{"CHARSET ISO-8859-1 BODY @L", "\xc9T\xc9", "0110000", 0},
	{"CHARSET UTF-8 BODY @L", "世界", "0001000", 0},
	{"CHARSET US-ASCII BODY hello", NULL, "1000000", 0},
	{"BODY \"secret text\"", NULL, "0000001", 0},
	{"BODY binaryneedle", NULL, "0000000", 0},
	{"BODY epilogue", NULL, "0000000", 0},
	{"BODY \"inner body\"", NULL, "0000001", 0},
	{"BODY \"inner subject\"", NULL, "0000001", 0},
	{"BODY \"see the attachment\"", NULL, "0000001", 0},
	{"TEXT \"alice@example\"", NULL, "1000000", 0},
	{"TEXT \"x-custom: folded value\"", NULL, "1000000", 0},
	{"TEXT \"plain body\"", NULL, "1000000", 0},
	{"TEXT secret", NULL, "0010001", 0},
	{"BODY \"\"", NULL, "1111111", 0},
	{"TEXT \"\"", NULL, "1111111", 0},
	{"BODY @L", "hello there", "1000000", 0},
	/* NOT, OR, lists */
	{"NOT SEEN", NULL, "0101100", 0},
	{"NOT NOT SEEN", NULL, "1010011", 0},
	{"OR SEEN FLAGGED", NULL, "1110011", 0},
	{"OR (SEEN ANSWERED) DRAFT", NULL, "1001000", 0},
	{"NOT (OR SEEN DELETED)", NULL, "0101100", 0},
	{"OR NOT SEEN OR DRAFT DELETED", NULL, "0111100", 0},
	{"SEEN UNDELETED 1:6", NULL, "1000010", 0},
	{"(SEEN) (FLAGGED)", NULL, "0000001", 0},
	{"((SEEN FLAGGED))", NULL, "0000001", 0},
	{"OR BODY hello SUBJECT \"café\"", NULL, "1100000", 0},
	{"NOT BODY \"ÉTÉ\"", NULL, "1001111", 0},
	{"FROM example NOT TEXT secret", NULL, "1101110", 0},
	{"OR (BODY hello NOT SEEN) (UID 20 BODY \"été\")", NULL, "0100000", 0},
	{"BODY hello SEEN", NULL, "1000000", 0},
	{"OR OR OR 1 2 3 4", NULL, "1111000", 0},
};

static void test_search(void **state)
{
	(void)state;
	for (size_t k = 0; k < ARRAY_LEN(search_cases); k++) {
		const struct scase *c = &search_cases[k];
		struct imap_search *prog;
		bool bad;
		const char *err = NULL;
		if (compile(c->keys, c->lit, &prog, &bad, &err) < 0)
			fail_msg("%s: %s", c->keys, err);
		struct imap_search_ctx ctx;
		ctx_default(&ctx);
		ctx.tz_offset_min = c->tz;
		char got[NMSG + 1], got2[NMSG + 1];
		run_all(prog, &ctx, true, got);
		run_all(prog, &ctx, false, got2);
		if (strcmp(got, c->want) != 0 || strcmp(got2, c->want) != 0)
			fail_msg("%s (tz %d): got %s / %s, want %s", c->keys, c->tz, got, got2,
				 c->want);
		imap_search_free(&prog);
		assert_null(prog);
	}
}

/* Keys without text work without the message data. */
static void test_no_data(void **state)
{
	(void)state;
	struct imap_search *prog;
	bool bad;
	const char *err;
	assert_int_equal(compile("OR SEEN NOT 2:3 LARGER 250", NULL, &prog, &bad, &err), 0);
	assert_int_equal(imap_search_needs(prog), IMAP_SEARCH_NEED_META);
	struct imap_search_ctx ctx;
	ctx_default(&ctx);
	char got[NMSG + 1];
	for (int i = 0; i < NMSG; i++) {
		struct imap_search_msg m = msgs[i];
		m.data = NULL;
		m.len = 0;
		got[i] = imap_search_match(prog, &ctx, &m) ? '1' : '0';
	}
	got[NMSG] = '\0';
	assert_string_equal(got, "0011111");
	imap_search_free(&prog);
	imap_search_free(&prog); /* NULL-safe */
}

/* Decoded body text is capped per message: past IMAP_SEARCH_TEXT_MAX
 * nothing is looked at. */
static void test_text_cap(void **state)
{
	(void)state;
	const char *hdr = "Subject: big\r\nContent-Type: text/plain; charset=iso-8859-1\r\n\r\n";
	size_t hlen = strlen(hdr), fill = IMAP_SEARCH_TEXT_MAX + 4096;
	size_t len = hlen + 6 + fill + 6;
	char *data = xmalloc(len);
	memcpy(data, hdr, hlen);
	memcpy(data + hlen, "early ", 6);
	memset(data + hlen + 6, 'a', fill);
	memcpy(data + len - 6, " late.", 6);
	struct imap_search_msg m = msgs[0];
	m.data = data;
	m.len = len;
	m.mime = NULL;
	struct imap_search_ctx ctx;
	ctx_default(&ctx);
	static const struct {
		const char *keys;
		int want;
	} cases[] = {
		{"BODY EARLY", 1}, {"BODY late", 0}, {"TEXT big", 1}, {"BODY aaaaaaaa", 1},
	};
	for (size_t k = 0; k < ARRAY_LEN(cases); k++) {
		struct imap_search *prog;
		bool bad;
		const char *err;
		assert_int_equal(compile(cases[k].keys, NULL, &prog, &bad, &err), 0);
		assert_int_equal(imap_search_match(prog, &ctx, &m), cases[k].want);
		imap_search_free(&prog);
	}
	free(data);
}

static const struct {
	const char *keys;
	const char *error;      /* NULL: compiles */
	bool badcharset;
} error_cases[] = {
	{"FOO", "Unknown search key", false},
	{"\"SEEN\"", "Invalid search key", false},
	{"NOT", "Missing search key", false},
	{"OR SEEN", "Missing search key", false},
	{"(NOT) SEEN", "Missing search key", false},
	{"()", "Empty search key list", false},
	{"FROM", "Missing search key argument", false},
	{"(FROM) x", "Missing search key argument", false},
	{"HEADER X-Foo", "Missing search key argument", false},
	{"FROM (x)", "Missing search key argument", false},
	{"SINCE 32-Jan-2020", "Invalid date", false},
	{"SINCE 29-Feb-2021", "Invalid date", false},
	{"SINCE 29-Feb-2020", NULL, false},
	{"SINCE 1-Foo-2020", "Invalid date", false},
	{"SINCE 1-Jan-20", "Invalid date", false},
	{"SINCE 1-Jan-2020x", "Invalid date", false},
	{"SENTON 2020-01-01", "Invalid date", false},
	{"LARGER abc", "Invalid number", false},
	{"LARGER -1", "Invalid number", false},
	{"OLDER 0", "Invalid number", false},
	{"UID 0", "Invalid sequence set", false},
	{"UID x", "Invalid sequence set", false},
	{"1:x", "Invalid sequence set", false},
	{"MODSEQ \"/flags/x\" bogus 5", "Invalid MODSEQ entry type", false},
	{"MODSEQ x", "Invalid mod-sequence", false},
	{"MODSEQ \"/flags/x\" priv", "Missing search key argument", false},
	{"KEYWORD \"\"", "Invalid keyword", false},
	{"CHARSET X-BOGUS-CHARSET SEEN", "Unsupported charset", true},
	{"CHARSET UTF-8 SEEN", NULL, false},
	{"CHARSET utf-8 SEEN", NULL, false},
	{"CHARSET ISO-2022-JP SEEN", NULL, false},
	{"CHARSET", "Unknown search key", false},
};

static void test_errors(void **state)
{
	(void)state;
	for (size_t k = 0; k < ARRAY_LEN(error_cases); k++) {
		struct imap_search *prog = (struct imap_search *)&prog;
		bool bad = !error_cases[k].badcharset;
		const char *err = NULL;
		int r = compile(error_cases[k].keys, NULL, &prog, &bad, &err);
		if (error_cases[k].error == NULL) {
			if (r != 0)
				fail_msg("%s: %s", error_cases[k].keys, err);
			imap_search_free(&prog);
			continue;
		}
		if (r == 0)
			fail_msg("%s: compiled", error_cases[k].keys);
		assert_null(prog);
		if (strcmp(err, error_cases[k].error) != 0)
			fail_msg("%s: got \"%s\", want \"%s\"", error_cases[k].keys, err,
				 error_cases[k].error);
		assert_int_equal(bad, error_cases[k].badcharset);
	}
}

static char *repeat(const char *s, unsigned n, const char *tail)
{
	struct buf b;
	buf_init(&b, 1 << 20);
	for (unsigned i = 0; i < n; i++)
		buf_append_str(&b, s);
	buf_append_str(&b, tail);
	return buf_steal(&b, NULL);
}

static void test_limits(void **state)
{
	(void)state;
	static const struct {
		const char *prefix, *middle;
		unsigned nprefix, nmiddle;
		const char *want;       /* NULL: error */
	} cases[] = {
		{"", "NOT ", 0, 32, "1010011"},
		{"", "NOT ", 0, 33, NULL},
		{"", "NOT ", 0, 31, "0101100"},
		{"(", "NOT ", 20, 12, "1010011"},
		{"(", "NOT ", 20, 13, NULL},
		{"", "OR SEEN ", 0, 32, "1010011"},
		{"", "OR SEEN ", 0, 33, NULL},
		{"", "SEEN ", 0, 999, "1010011"},
		{"", "SEEN ", 0, 1000, NULL},
	};
	for (size_t k = 0; k < ARRAY_LEN(cases); k++) {
		char *mid = repeat(cases[k].middle, cases[k].nmiddle, "SEEN");
		char *pre = repeat(cases[k].prefix, cases[k].nprefix, mid);
		char *keys = repeat(")", cases[k].nprefix, "");
		char *all = xasprintf("%s%s", pre, keys);
		struct imap_search *prog;
		bool bad;
		const char *err = NULL;
		int r = compile(all, NULL, &prog, &bad, &err);
		if (cases[k].want == NULL) {
			assert_int_equal(r, -1);
			assert_false(bad);
			assert_true(strcmp(err, "Search keys nested too deeply") == 0 ||
				    strcmp(err, "Too many search keys") == 0);
		} else {
			if (r != 0)
				fail_msg("case %zu: %s", k, err);
			struct imap_search_ctx ctx;
			ctx_default(&ctx);
			char got[NMSG + 1];
			run_all(prog, &ctx, true, got);
			assert_string_equal(got, cases[k].want);
			imap_search_free(&prog);
		}
		free(mid);
		free(pre);
		free(keys);
		free(all);
	}
}

static void test_needs_terms(void **state)
{
	(void)state;
	static const struct {
		const char *keys;
		unsigned needs;
		bool modseq;
		const char *terms;      /* joined by '|' */
	} cases[] = {
		{"SEEN 1:* UID 3 KEYWORD x", 0, false, ""},
		{"SEEN 1:* UID 3 LARGER 5 SINCE 1-Jan-2020", IMAP_SEARCH_NEED_META, false, ""},
		{"OR SMALLER 9 YOUNGER 60", IMAP_SEARCH_NEED_META, false, ""},
		{"FROM x", IMAP_SEARCH_NEED_HEADER, false, ""},
		{"SENTON 1-Jan-2020", IMAP_SEARCH_NEED_HEADER, false, ""},
		{"BODY x", IMAP_SEARCH_NEED_BODY, false, "x"},
		{"TEXT x", IMAP_SEARCH_NEED_HEADER | IMAP_SEARCH_NEED_BODY, false, "x"},
		{"BODY \"\"", 0, false, ""},
		{"NOT MODSEQ 5", 0, true, ""},
		{"BODY Foo TEXT bar (BODY baz SEEN) OR BODY x BODY y NOT BODY z", 3, false,
		 "Foo|bar|baz"},
		{"CHARSET ISO-8859-1 BODY @L", IMAP_SEARCH_NEED_BODY, false, "\xc3\xa9t\xc3\xa9"},
	};
	for (size_t k = 0; k < ARRAY_LEN(cases); k++) {
		struct imap_search *prog;
		bool bad;
		const char *err;
		if (compile(cases[k].keys, "\xe9t\xe9", &prog, &bad, &err) < 0)
			fail_msg("%s: %s", cases[k].keys, err);
		assert_int_equal(imap_search_needs(prog), cases[k].needs);
		assert_int_equal(imap_search_uses_modseq(prog), cases[k].modseq);
		const char **terms;
		size_t n = imap_search_body_terms(prog, &terms);
		struct buf b;
		buf_init(&b, 4096);
		buf_append_str(&b, "");
		for (size_t i = 0; i < n; i++)
			buf_printf(&b, "%s%s", i ? "|" : "", terms[i]);
		if (n == 0)
			assert_null(terms);
		if (strcmp(b.data, cases[k].terms) != 0)
			fail_msg("%s: terms %s, want %s", cases[k].keys, b.data, cases[k].terms);
		buf_free(&b);
		imap_search_free(&prog);
	}
}

/* ---- base subject ---- */

static void test_base_subject(void **state)
{
	(void)state;
	static const struct {
		const char *in, *want;
	} cases[] = {
		{"hello", "hello"},
		{"Re: hello", "hello"},
		{"RE: Re: re:hello", "hello"},
		{"Fwd: [list] Re: topic (fwd)", "topic"},
		{"Fw: x", "x"},
		{"FWD : x", "x"},
		{"Re[2]: counted", "counted"},
		{"Re [2] : counted", "counted"},
		{"[list] topic", "topic"},
		{"[list] [other] topic", "topic"},
		{"[list]", "[list]"},
		{"[a][b]", "[b]"},
		{"[fwd: original subject]", "original subject"},
		{"Re: [fwd: Re: hi]", "hi"},
		{"[fwd: [fwd: deep]]", "deep"},
		{"=?UTF-8?Q?Re=3A_caf=C3=A9?=", "caf\xc3\xa9"},
		{"  Multiple   spaces\t here  ", "Multiple spaces here"},
		{"Re: folded\r\n subject", "folded subject"},
		{"Review: this", "Review: this"},
		{"Re hello", "Re hello"},
		{"", ""},
		{"(fwd)", ""},
		{"topic (fwd) (FWD)", "topic"},
		{"Re:", ""},
		{"[unclosed topic", "[unclosed topic"},
	};
	for (size_t k = 0; k < ARRAY_LEN(cases); k++) {
		char *got = imap_base_subject(cases[k].in, strlen(cases[k].in));
		if (strcmp(got, cases[k].want) != 0)
			fail_msg("\"%s\": got \"%s\", want \"%s\"", cases[k].in, got,
				 cases[k].want);
		free(got);
	}
	/* many blobs: linear, and the last one stays */
	char *s = repeat("[a]", 20000, "x");
	char *got = imap_base_subject(s, strlen(s));
	assert_string_equal(got, "x");
	free(got);
	free(s);
	s = repeat("[a] ", 20000, "");
	got = imap_base_subject(s, strlen(s));
	assert_string_equal(got, "[a]");
	free(got);
	free(s);
	s = repeat("Re: ", 10000, "end");
	got = imap_base_subject(s, strlen(s));
	assert_string_equal(got, "end");
	free(got);
	free(s);
}

/* ---- SORT ---- */

static const char s1[] =
	"From: \"Zed\" <zed@a.com>\r\nTo: b@x\r\nCc: c@x\r\nSubject: Re: apple\r\n"
	"Date: 2 Jan 2020 00:00:00 +0000\r\n\r\nbody\r\n";
static const char s2[] =
	"From: alice@b.com\r\nTo: \"Ann\" <ann@x>\r\nSubject: banana\r\n"
	"Date: Wed, 1 Jan 2020 23:00:00 -0200\r\n\r\nbody\r\n";
static const char s3[] =
	"From: Bob <Bob@c.com>\r\nSubject: [list] Apple (fwd)\r\n\r\nbody\r\n";
static const char s4[] =
	"From: =?utf-8?q?=C3=89mile?= <emile@d.com>\r\nTo: zoe@x (Zoe)\r\n"
	"Subject: Fwd: Banana\r\nDate: 1 Jan 2020 00:00 GMT\r\n\r\nbody\r\n";

static void sort_msgs(struct imap_search_msg sm[4])
{
	static const char *const data[4] = {s1, s2, s3, s4};
	static const int64_t size[4] = {300, 100, 200, 200};
	static const int64_t arrival[4] = {3, 1, 2, 4};
	for (int i = 0; i < 4; i++) {
		memset(&sm[i], 0, sizeof(sm[i]));
		sm[i].seq = (uint32_t)i + 1;
		sm[i].uid = 100 + (uint32_t)i;
		sm[i].data = data[i];
		sm[i].len = strlen(data[i]);
		sm[i].size = size[i];
		sm[i].internaldate = arrival[i];
	}
}

static void test_sort(void **state)
{
	(void)state;
	static const struct {
		const char *crit;
		const char *want;       /* seqs, or "ERR" */
	} cases[] = {
		{"(ARRIVAL)", "2 3 1 4"},
		{"(REVERSE ARRIVAL)", "4 1 3 2"},
		{"(DATE)", "3 4 1 2"},
		{"(REVERSE DATE)", "2 1 4 3"},
		{"(SIZE)", "2 3 4 1"},
		{"(REVERSE SIZE)", "1 3 4 2"},
		{"(SUBJECT)", "1 3 2 4"},
		{"(REVERSE SUBJECT)", "2 4 1 3"},
		{"(FROM)", "2 3 4 1"},
		{"(REVERSE FROM)", "1 4 3 2"},
		{"(DISPLAYFROM)", "2 3 1 4"},
		{"(TO)", "3 2 1 4"},
		{"(DISPLAYTO)", "3 2 1 4"},
		{"(CC)", "2 3 4 1"},
		{"(REVERSE CC)", "1 2 3 4"},
		{"(SIZE REVERSE DATE)", "2 4 3 1"},
		{"(SUBJECT REVERSE SIZE)", "1 3 4 2"},
		{"(size)", "2 3 4 1"},
		{"()", "ERR"},
		{"(REVERSE)", "ERR"},
		{"(REVERSE REVERSE DATE)", "ERR"},
		{"(DATE REVERSE)", "ERR"},
		{"(FOO)", "ERR"},
		{"((DATE))", "ERR"},
		{"DATE", "ERR"},
		{"(DATE DATE DATE DATE DATE DATE DATE DATE "
		 "DATE DATE DATE DATE DATE DATE DATE DATE)", "3 4 1 2"},
		{"(DATE DATE DATE DATE DATE DATE DATE DATE "
		 "DATE DATE DATE DATE DATE DATE DATE DATE DATE)", "ERR"},
	};
	struct imap_search_msg sm[4];
	sort_msgs(sm);
	for (size_t k = 0; k < ARRAY_LEN(cases); k++) {
		struct parsed ps;
		char *text = xasprintf("%s UTF-8 ALL", cases[k].crit);
		parse_cmd(&ps, "SORT", text, NULL);
		free(text);
		struct imap_sort *s;
		const char *err;
		int r = imap_sort_parse(ps.cmd->args, 0, &s, &err);
		imap_parser_free(&ps.p);
		if (strcmp(cases[k].want, "ERR") == 0) {
			assert_int_equal(r, -1);
			assert_null(s);
			continue;
		}
		if (r != 0)
			fail_msg("%s: %s", cases[k].crit, err);
		struct imap_sort_key *keys[4];
		for (int i = 0; i < 4; i++)
			keys[i] = imap_sort_key_make(s, &sm[i]);
		imap_sort_run(s, keys, 4);
		char got[64];
		int n = 0;
		for (int i = 0; i < 4; i++)
			n += snprintf(got + n, sizeof(got) - (size_t)n, "%s%u", i ? " " : "",
				      imap_sort_key_seq(keys[i]));
		if (strcmp(got, cases[k].want) != 0)
			fail_msg("%s: got %s, want %s", cases[k].crit, got, cases[k].want);
		assert_int_equal(imap_sort_key_uid(keys[0]), 99 + imap_sort_key_seq(keys[0]));
		for (int i = 0; i < 4; i++)
			imap_sort_key_free(keys[i]);
		imap_sort_free(&s);
		assert_null(s);
	}
	imap_sort_key_free(NULL);
	struct imap_sort *none = NULL;
	imap_sort_free(&none);
}

/* ---- THREAD ---- */

struct tdef {
	const char *id;
	const char *refs;       /* space separated */
	const char *subject;    /* raw: base subject taken here */
	int64_t date;
};

static void tmsgs_make(const struct tdef *d, size_t n, struct imap_thread_msg *t)
{
	for (size_t i = 0; i < n; i++) {
		memset(&t[i], 0, sizeof(t[i]));
		t[i].seq = (uint32_t)i + 1;
		t[i].uid = 10 * ((uint32_t)i + 1);
		t[i].date = d[i].date;
		t[i].message_id = d[i].id ? xstrdup(d[i].id) : NULL;
		/* subject_reply as imap_thread_msg_init sets it */
		struct imap_search_msg m = {0};
		char *hdr = xasprintf("Subject: %s\r\n\r\n", d[i].subject ? d[i].subject : "");
		m.data = hdr;
		m.len = strlen(hdr);
		struct imap_thread_msg tmp;
		imap_thread_msg_init(&tmp, &m);
		t[i].subject = tmp.subject;
		t[i].subject_reply = tmp.subject_reply;
		tmp.subject = NULL;
		imap_thread_msg_clear(&tmp);
		free(hdr);
		if (d[i].refs != NULL) {
			char *copy = xstrdup(d[i].refs);
			for (char *tok = strtok(copy, " "); tok; tok = strtok(NULL, " ")) {
				t[i].refs = xreallocarray(t[i].refs, t[i].nrefs + 1,
							  sizeof(char *));
				t[i].refs[t[i].nrefs++] = xstrdup(tok);
			}
			free(copy);
		}
	}
}

static void tmsgs_free(struct imap_thread_msg *t, size_t n)
{
	for (size_t i = 0; i < n; i++)
		imap_thread_msg_clear(&t[i]);
}

static char *thread(enum imap_thread_alg alg, const struct imap_thread_msg *t, size_t n,
		    bool uid)
{
	struct buf out;
	buf_init(&out, 16 << 20);
	assert_int_equal(imap_thread_run(alg, t, n, uid, &out), 0);
	buf_append_str(&out, "");
	return buf_steal(&out, NULL);
}

#define TD(...) ((const struct tdef[]){__VA_ARGS__})
#define TCASE(alg, want, ...) \
	{alg, want, TD(__VA_ARGS__), sizeof(TD(__VA_ARGS__)) / sizeof(struct tdef)}

static const struct {
	enum imap_thread_alg alg;
	const char *want;
	const struct tdef *d;
	size_t n;
} thread_cases[] = {
	/* ORDEREDSUBJECT: by base subject, first message the parent */
	TCASE(IMAP_THREAD_ORDEREDSUBJECT, "(5)(2)(1 (4)(3))",
	      {"a1", NULL, "a", 10}, {"b1", NULL, "b", 5}, {"a2", NULL, "Re: a", 20},
	      {"a3", NULL, "A", 15}, {"c1", NULL, "c", 1}),
	TCASE(IMAP_THREAD_ORDEREDSUBJECT, "(1 2)(3)",
	      {NULL, NULL, "Re: x", 5}, {NULL, NULL, "x", 5}, {NULL, NULL, "y", 6}),
	/* REFERENCES */
	TCASE(IMAP_THREAD_REFERENCES, "(1 (2 3)(4))(5)",
	      {"a", NULL, "x", 1}, {"b", "a", "Re: x", 2}, {"c", "a b", "Re: x", 3},
	      {"d", "a", "Re: x", 4}, {"e", NULL, "other", 5}),
	/* replies arriving before their parent; dates decide the order */
	TCASE(IMAP_THREAD_REFERENCES, "(3 (2)(1 4))",
	      {"c", "a", "Re: s", 30}, {"b", "a", "Re: s", 20}, {"a", NULL, "s", 10},
	      {"d", "a c", "Re: s", 40}),
	/* missing parent: a dummy with two children stays at the top */
	TCASE(IMAP_THREAD_REFERENCES, "(3)((1)(2))",
	      {"b", "a", "s", 2}, {"c", "a", "s", 3}, {"z", NULL, "t", 1}),
	/* a dummy with one child is promoted */
	TCASE(IMAP_THREAD_REFERENCES, "(1)", {"b", "a", "s", 2}),
	/* dummies inside the tree are removed, their children promoted */
	TCASE(IMAP_THREAD_REFERENCES, "(1 (2)(3))",
	      {"a", NULL, "s", 1}, {"c", "a b", "t", 2}, {"d", "a b", "u", 3}),
	/* subject gathering: a reply joins the original */
	TCASE(IMAP_THREAD_REFERENCES, "(1 2)",
	      {"a", NULL, "topic", 1}, {"b", NULL, "Re: topic", 2}),
	/* ... and two originals get a dummy parent */
	TCASE(IMAP_THREAD_REFERENCES, "((1)(2))",
	      {"a", NULL, "topic", 1}, {"b", NULL, "topic", 2}),
	/* ... and a reply found first still ends under the original */
	TCASE(IMAP_THREAD_REFERENCES, "(2 1)",
	      {"b", NULL, "Re: topic", 2}, {"a", NULL, "topic", 1}),
	/* empty subjects are not gathered */
	TCASE(IMAP_THREAD_REFERENCES, "(1)(2)", {"a", NULL, "", 1}, {"b", NULL, "Re:", 2}),
	/* a loop in References */
	TCASE(IMAP_THREAD_REFERENCES, "(2 1)", {"a", "b", "p", 1}, {"b", "a", "q", 2}),
	TCASE(IMAP_THREAD_REFERENCES, "(1)", {"c", "c", "p", 1}),
	TCASE(IMAP_THREAD_REFERENCES, "(3 2 1)",
	      {"a", "c b", "p", 1}, {"b", "a c", "q", 2}, {"c", "a b", "r", 3}),
	/* duplicate Message-ID: the second is on its own */
	TCASE(IMAP_THREAD_REFERENCES, "(1)(2)", {"a", NULL, "p", 1}, {"a", NULL, "q", 2}),
	/* a later, different References moves the message (step 1C) */
	TCASE(IMAP_THREAD_REFERENCES, "(2 1)", {"c", "a b", "p", 1}, {"b", "x", "q", 2}),
	/* no References: the parent link made by others is broken */
	TCASE(IMAP_THREAD_REFERENCES, "(2 1)(3)",
	      {"c", "a b", "p", 1}, {"b", NULL, "q", 2}, {"d", "a", "r", 3}),
	/* a parent's own lack of References does not cut its children */
	TCASE(IMAP_THREAD_REFERENCES, "(2 1)", {"b", "a", "p", 1}, {"a", NULL, "q", 2}),
	/* equal dates: sequence order */
	TCASE(IMAP_THREAD_REFERENCES, "(1 (2)(3))(4)",
	      {"a", NULL, "p", 5}, {"b", "a", "q", 5}, {"c", "a", "r", 5}, {NULL, NULL, "z", 5}),
};

static void test_thread_table(void **state)
{
	(void)state;
	for (size_t k = 0; k < ARRAY_LEN(thread_cases); k++) {
		size_t n = thread_cases[k].n;
		struct imap_thread_msg *t = xcalloc(n, sizeof(*t));
		tmsgs_make(thread_cases[k].d, n, t);
		char *got = thread(thread_cases[k].alg, t, n, false);
		if (strcmp(got, thread_cases[k].want) != 0)
			fail_msg("case %zu: got %s, want %s", k, got, thread_cases[k].want);
		free(got);
		tmsgs_free(t, n);
		free(t);
	}
}

static void test_thread_misc(void **state)
{
	(void)state;
	/* UIDs */
	const struct tdef d[] = {{"a", NULL, "x", 1}, {"b", "a", "y", 2}};
	struct imap_thread_msg t[2];
	tmsgs_make(d, 2, t);
	char *got = thread(IMAP_THREAD_REFERENCES, t, 2, true);
	assert_string_equal(got, "(10 20)");
	free(got);
	tmsgs_free(t, 2);
	/* nothing to thread */
	got = thread(IMAP_THREAD_REFERENCES, NULL, 0, false);
	assert_string_equal(got, "");
	free(got);
	/* overflow */
	tmsgs_make(d, 2, t);
	struct buf small;
	buf_init(&small, 3);
	assert_int_equal(imap_thread_run(IMAP_THREAD_REFERENCES, t, 2, false, &small), -1);
	buf_free(&small);
	tmsgs_free(t, 2);
	/* algorithm names */
	struct parsed ps;
	parse_cmd(&ps, "THREAD", "references UTF-8 ALL", NULL);
	enum imap_thread_alg alg;
	assert_int_equal(imap_thread_alg_parse(&ps.cmd->args[0], &alg), 0);
	assert_int_equal(alg, IMAP_THREAD_REFERENCES);
	assert_int_equal(imap_thread_alg_parse(&ps.cmd->args[1], &alg), -1);
	imap_parser_free(&ps.p);
	parse_cmd(&ps, "THREAD", "ORDEREDSUBJECT UTF-8 ALL", NULL);
	assert_int_equal(imap_thread_alg_parse(&ps.cmd->args[0], &alg), 0);
	assert_int_equal(alg, IMAP_THREAD_ORDEREDSUBJECT);
	imap_parser_free(&ps.p);
}

/* From the header: ids, folded References, In-Reply-To fallback, dates. */
static void test_thread_init(void **state)
{
	(void)state;
	static const char h1[] =
		"Message-ID: < m1@x >\r\n"
		"References: <r1@x>\r\n"
		"\t<r2@x> (comment) <r3\r\n @x>\r\n"
		"In-Reply-To: <ignored@x>\r\n"
		"Subject: Re: [list] Topic\r\n"
		"Date: Thu, 1 Jan 1970 01:00:00 +0100\r\n"
		"\r\nbody <notanid@x>\r\n";
	static const char h2[] =
		"Message-ID: no brackets\r\n"
		"In-Reply-To: <p1@x> <p2@x>\r\n"
		"\r\n";
	struct imap_search_msg m = {0};
	struct imap_thread_msg t;
	m.seq = 3;
	m.uid = 33;
	m.internaldate = 12345;
	m.data = h1;
	m.len = strlen(h1);
	imap_thread_msg_init(&t, &m);
	assert_int_equal(t.seq, 3);
	assert_int_equal(t.uid, 33);
	assert_string_equal(t.message_id, "m1@x");
	assert_int_equal(t.nrefs, 3);
	assert_string_equal(t.refs[0], "r1@x");
	assert_string_equal(t.refs[1], "r2@x");
	assert_string_equal(t.refs[2], "r3@x");
	assert_string_equal(t.subject, "Topic");
	assert_true(t.subject_reply);
	assert_int_equal(t.date, 0);
	imap_thread_msg_clear(&t);
	m.data = h2;
	m.len = strlen(h2);
	imap_thread_msg_init(&t, &m);
	assert_null(t.message_id);
	assert_int_equal(t.nrefs, 1);
	assert_string_equal(t.refs[0], "p1@x");
	assert_string_equal(t.subject, "");
	assert_false(t.subject_reply);
	assert_int_equal(t.date, 12345);
	imap_thread_msg_clear(&t);
	/* very long References keep the last ones */
	char *refs = repeat("<x@y> ", 1000, "<last@y>");
	char *hdr = xasprintf("References: %s\r\n\r\n", refs);
	m.data = hdr;
	m.len = strlen(hdr);
	imap_thread_msg_init(&t, &m);
	assert_true(t.nrefs > 0 && t.nrefs <= 1000);
	assert_string_equal(t.refs[t.nrefs - 1], "last@y");
	imap_thread_msg_clear(&t);
	free(hdr);
	free(refs);
}

/* Deep chains: no recursion anywhere. */
static void test_thread_deep(void **state)
{
	(void)state;
	enum { N = 10000 };
	/* one message whose References is a chain of N ids */
	struct imap_thread_msg one = {0};
	one.seq = 1;
	one.uid = 1;
	one.subject = xstrdup("deep");
	one.message_id = xstrdup("me");
	one.refs = xreallocarray(NULL, N, sizeof(char *));
	for (int i = 0; i < N; i++)
		one.refs[i] = xasprintf("r%d", i);
	one.nrefs = N;
	char *got = thread(IMAP_THREAD_REFERENCES, &one, 1, false);
	assert_string_equal(got, "(1)");
	free(got);
	/* ... and a second message owning the top of that chain */
	struct imap_thread_msg two[2];
	two[0] = one;
	memset(&two[1], 0, sizeof(two[1]));
	two[1].seq = 2;
	two[1].uid = 2;
	two[1].date = 1;
	two[1].subject = xstrdup("other");
	two[1].message_id = xstrdup("r0");
	got = thread(IMAP_THREAD_REFERENCES, two, 2, false);
	assert_string_equal(got, "(2 1)");
	free(got);
	imap_thread_msg_clear(&two[1]);
	imap_thread_msg_clear(&one);

	/* N messages, each a reply to the previous one */
	struct imap_thread_msg *t = xcalloc(N, sizeof(*t));
	for (int i = 0; i < N; i++) {
		t[i].seq = (uint32_t)i + 1;
		t[i].uid = (uint32_t)i + 1;
		t[i].date = i;
		t[i].subject = xstrdup("x");
		t[i].subject_reply = i > 0;
		t[i].message_id = xasprintf("m%d", i);
		if (i > 0) {
			t[i].refs = xreallocarray(NULL, 1, sizeof(char *));
			t[i].refs[0] = xasprintf("m%d", i - 1);
			t[i].nrefs = 1;
		}
	}
	struct buf want;
	buf_init(&want, 1 << 20);
	buf_append_str(&want, "(");
	for (int i = 0; i < N; i++)
		buf_printf(&want, "%s%d", i ? " " : "", i + 1);
	buf_append_str(&want, ")");
	got = thread(IMAP_THREAD_REFERENCES, t, N, false);
	assert_string_equal(got, want.data);
	free(got);
	/* a deep tree with two children at every level nests N lists */
	for (int i = 1; i < N; i++) {
		free(t[i].refs[0]);
		t[i].refs[0] = xasprintf("m%d", (i - 1) / 2 * 2);
		free(t[i].subject);
		t[i].subject = xasprintf("s%d", i);
	}
	got = thread(IMAP_THREAD_REFERENCES, t, N, false);
	assert_true(strncmp(got, "(1 (2)(3 (4)(5 (6)(7", 20) == 0);
	size_t open = 0, close = 0;
	for (const char *p = got; *p; p++) {
		open += *p == '(';
		close += *p == ')';
	}
	assert_int_equal(open, close);
	free(got);
	got = thread(IMAP_THREAD_ORDEREDSUBJECT, t, N, false);
	assert_true(strlen(got) > 0);
	free(got);
	tmsgs_free(t, N);
	free(t);
	buf_free(&want);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_search),
		cmocka_unit_test(test_no_data),
		cmocka_unit_test(test_text_cap),
		cmocka_unit_test(test_errors),
		cmocka_unit_test(test_limits),
		cmocka_unit_test(test_needs_terms),
		cmocka_unit_test(test_base_subject),
		cmocka_unit_test(test_sort),
		cmocka_unit_test(test_thread_table),
		cmocka_unit_test(test_thread_misc),
		cmocka_unit_test(test_thread_init),
		cmocka_unit_test(test_thread_deep),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
