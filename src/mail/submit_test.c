/* submit_test.c - submission header fix-ups and From/Sender addresses. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "core/buf.h"
#include "core/util.h"
#include "mail/submit.h"

#define NOW 1767276000 /* Thu, 1 Jan 2026 14:00:00 +0000 */
#define DATE "Date: Thu, 1 Jan 2026 14:00:00 +0000"
#define MSGID "Message-ID: <Q1@h.example>"
#define ADDED DATE "\r\n" MSGID "\r\n"
#define WHOLE ((size_t)-1) /* header_end: the whole message */

struct fix_case {
	const char *name;
	const char *in;
	const char *want;
	bool add_date, add_msgid;
	size_t nbcc;
	size_t header_end;  /* WHOLE: len */
	bool lf;
	bool from, sender;
};

static const struct fix_case fix_cases[] = {
	{ "nothing there", "From: a@b\r\nSubject: x\r\n\r\nbody\r\n",
	  ADDED "From: a@b\r\nSubject: x\r\n\r\nbody\r\n", true, true, 0, 25, false, true, false },
	{ "both present", "Date: Mon, 1 Jan 2024 00:00:00 +0000\r\nMessage-ID: <x@y>\r\n\r\nb\r\n",
	  "Date: Mon, 1 Jan 2024 00:00:00 +0000\r\nMessage-ID: <x@y>\r\n\r\nb\r\n", false, false,
	  0, 59, false, false, false },
	{ "names case-insensitive", "DATE: x\r\nMessage-Id: <x@y>\r\nsender: s@t\r\n\r\n",
	  "DATE: x\r\nMessage-Id: <x@y>\r\nsender: s@t\r\n\r\n", false, false, 0, WHOLE, false,
	  false, true },
	{ "only Message-ID missing", "date: x\r\nSubject: s\r\n\r\n",
	  MSGID "\r\ndate: x\r\nSubject: s\r\n\r\n", false, true, 0, WHOLE, false, false, false },
	{ "only Date missing", "message-id: <m@n>\r\n\r\n", DATE "\r\nmessage-id: <m@n>\r\n\r\n",
	  true, false, 0, WHOLE, false, false, false },
	{ "Bcc with continuation lines",
	  "From: a@b\r\nBcc: c@d,\r\n e@f,\r\n\tg@h\r\nTo: i@j\r\nDate: x\r\nMessage-ID: <m@n>\r\n"
	  "\r\nbody\r\n",
	  "From: a@b\r\nTo: i@j\r\nDate: x\r\nMessage-ID: <m@n>\r\n\r\nbody\r\n", false, false, 1,
	  74, false, true, false },
	{ "Bcc the last field", "Date: x\r\nMessage-ID: <m@n>\r\nTo: a@b\r\nBcc: c@d\r\n\r\nbody",
	  "Date: x\r\nMessage-ID: <m@n>\r\nTo: a@b\r\n\r\nbody", false, false, 1, 49, false,
	  false, false },
	{ "Bcc with an empty value", "Date: x\r\nMessage-ID: <m@n>\r\nBcc:\r\nTo: a@b\r\n\r\n",
	  "Date: x\r\nMessage-ID: <m@n>\r\nTo: a@b\r\n\r\n", false, false, 1, WHOLE, false, false,
	  false },
	{ "Bcc empty, folded, the first field", "Bcc:\r\n \r\n x@y\r\nDate: x\r\n\r\n",
	  MSGID "\r\nDate: x\r\n\r\n", false, true, 1, WHOLE, false, false, false },
	{ "several Bcc, any case",
	  "bcc: a\r\nDate: x\r\nBCC : b\r\nMessage-ID: <m>\r\nBcc: c\r\n\r\n",
	  "Date: x\r\nMessage-ID: <m>\r\n\r\n", false, false, 3, WHOLE, false, false, false },
	{ "Bcc in the body stays", "Date: x\r\nMessage-ID: <m>\r\n\r\nBcc: x\r\n",
	  "Date: x\r\nMessage-ID: <m>\r\n\r\nBcc: x\r\n", false, false, 0, 28, false, false,
	  false },
	{ "Bcc inside another field's continuation stays",
	  "To: a@b,\r\n Bcc: no\r\nDate: x\r\nMessage-ID: <m>\r\n\r\n",
	  "To: a@b,\r\n Bcc: no\r\nDate: x\r\nMessage-ID: <m>\r\n\r\n", false, false, 0, WHOLE,
	  false, false, false },
	{ "look-alike names stay", "Bccx: a\r\nX-Bcc: b\r\nDate: x\r\nMessage-ID: <m>\r\n\r\n",
	  "Bccx: a\r\nX-Bcc: b\r\nDate: x\r\nMessage-ID: <m>\r\n\r\n", false, false, 0, WHOLE,
	  false, false, false },
	{ "no blank line", "Date: x\r\nMessage-ID: <m>\r\nBcc: y\r\n",
	  "Date: x\r\nMessage-ID: <m>\r\n", false, false, 1, WHOLE, false, false, false },
	{ "no blank line, no final line end", "Subject: s\r\nBcc: y",
	  ADDED "Subject: s\r\n", true, true, 1, WHOLE, false, false, false },
	{ "one unterminated line", "Subject: s", ADDED "Subject: s", true, true, 0, WHOLE,
	  false, false, false },
	{ "LF only", "From: a@b\nBcc: c@d\n e@f\nSubject: s\n\nbody\n",
	  DATE "\n" MSGID "\nFrom: a@b\nSubject: s\n\nbody\n", true, true, 1, 36, true, true,
	  false },
	{ "LF only, no header", "\nbody\n", DATE "\n" MSGID "\n\nbody\n", true, true, 0, 1, true,
	  false, false },
	{ "empty message", "", ADDED, true, true, 0, 0, false, false, false },
	{ "empty header", "\r\nbody\r\n", ADDED "\r\nbody\r\n", true, true, 0, 2, false, false,
	  false },
};

static void test_scan_rewrite(void **state)
{
	(void)state;
	for (size_t i = 0; i < ARRAY_LEN(fix_cases); i++) {
		const struct fix_case *c = &fix_cases[i];
		size_t len = strlen(c->in);
		/* exact-size heap copy: ASan sees reads past the end */
		char *in = xmalloc(len ? len : 1);
		memcpy(in, c->in, len);
		struct submit_fix f;
		if (submit_scan(in, len, &f) != 0)
			fail_msg("%s: scan failed", c->name);
		size_t he = c->header_end == WHOLE ? len : c->header_end;
		if (f.add_date != c->add_date || f.add_message_id != c->add_msgid ||
		    f.nbcc != c->nbcc || f.header_end != he || f.lf != c->lf ||
		    f.has_from != c->from || f.has_sender != c->sender)
			fail_msg("%s: date %d msgid %d nbcc %zu end %zu lf %d from %d sender %d",
				 c->name, f.add_date, f.add_message_id, f.nbcc, f.header_end, f.lf,
				 f.has_from, f.has_sender);
		for (size_t k = 0; k < f.nbcc; k++) {
			if (f.bcc[k][0] >= f.bcc[k][1] || f.bcc[k][1] > f.header_end ||
			    (k > 0 && f.bcc[k][0] < f.bcc[k - 1][1]))
				fail_msg("%s: bad range %zu", c->name, k);
			if (!str_nieq(in + f.bcc[k][0], "bcc", 3))
				fail_msg("%s: range %zu is not a Bcc field", c->name, k);
		}
		struct buf out;
		buf_init(&out, 1 << 20);
		if (submit_rewrite(in, len, &f, NOW, "Q1", "h.example", &out) != 0)
			fail_msg("%s: rewrite failed", c->name);
		if (out.len != strlen(c->want) || memcmp(out.data, c->want, out.len) != 0)
			fail_msg("%s: got \"%s\"", c->name, out.data ? out.data : "");
		/* The result needs nothing more. */
		struct submit_fix g;
		assert_int_equal(submit_scan(out.data, out.len, &g), 0);
		assert_false(g.add_date);
		assert_false(g.add_message_id);
		assert_int_equal(g.nbcc, 0);
		/* Too small a buffer fails. */
		if (out.len > 0) {
			struct buf small;
			buf_init(&small, out.len - 1);
			int r = submit_rewrite(in, len, &f, NOW, "Q1", "h.example", &small);
			assert_int_equal(r, -1);
			buf_free(&small);
		}
		buf_free(&out);
		free(in);
	}
}

static char *repeat(const char *line, size_t times, const char *tail, size_t *len_r)
{
	size_t ll = strlen(line), tl = strlen(tail);
	char *p = xmalloc(ll * times + tl + 1);
	for (size_t i = 0; i < times; i++)
		memcpy(p + i * ll, line, ll);
	memcpy(p + ll * times, tail, tl + 1);
	*len_r = ll * times + tl;
	return p;
}

static void test_scan_limits(void **state)
{
	(void)state;
	struct submit_fix f;
	size_t len;

	/* A first line that continues nothing. */
	assert_int_equal(submit_scan(" x: y\r\n\r\n", 9, &f), -1);
	assert_int_equal(submit_scan("\tx: y\r\n\r\n", 9, &f), -1);

	/* SUBMIT_BCC_MAX Bcc fields are fine, one more is not. */
	char *m = repeat("Bcc: x@y\r\n", SUBMIT_BCC_MAX, "\r\n", &len);
	assert_int_equal(submit_scan(m, len, &f), 0);
	assert_int_equal(f.nbcc, SUBMIT_BCC_MAX);
	free(m);
	m = repeat("Bcc: x@y\r\n", SUBMIT_BCC_MAX + 1, "\r\n", &len);
	assert_int_equal(submit_scan(m, len, &f), -1);
	free(m);

	/* Header block up to SUBMIT_HEADER_MAX, blank line included. */
	const char *line = "X-Filler: 0123456789012345678901234567890123456789012345678901\r\n";
	size_t ll = strlen(line); /* 64 */
	size_t times = SUBMIT_HEADER_MAX / ll - 1;
	m = repeat(line, times, "X: 123456789012345678901234567890123456789012345678901234567\r\n"
			       "\r\nbody\r\n", &len);
	assert_int_equal(submit_scan(m, len, &f), 0);
	assert_int_equal(f.header_end, SUBMIT_HEADER_MAX);
	free(m);
	m = repeat(line, SUBMIT_HEADER_MAX / ll, "\r\nbody\r\n", &len);
	assert_int_equal(submit_scan(m, len, &f), -1);
	assert_int_equal(submit_from_addresses(m, len, NULL, NULL), -1);
	free(m);
	/* All header, too long; and all header, just long enough. */
	m = repeat(line, SUBMIT_HEADER_MAX / ll + 1, "", &len);
	assert_int_equal(submit_scan(m, len, &f), -1);
	free(m);
	m = repeat(line, SUBMIT_HEADER_MAX / ll, "", &len);
	assert_int_equal(submit_scan(m, len, &f), 0);
	assert_int_equal(f.header_end, SUBMIT_HEADER_MAX);
	free(m);
	/* A big body after a small header is no problem. */
	m = repeat("body line\r\n", 300000, "", &len);
	memcpy(m, "Bcc: a\r\n\r\n", 10);
	assert_int_equal(submit_scan(m, len, &f), 0);
	assert_int_equal(f.header_end, 10);
	assert_int_equal(f.nbcc, 1);
	free(m);
}

static void test_rewrite_ids(void **state)
{
	(void)state;
	const char *in = "Subject: s\r\n\r\n";
	struct submit_fix f;
	assert_int_equal(submit_scan(in, strlen(in), &f), 0);
	static const char *const bad[] = {
		"", "a b", "a@b", "<a>", "a\"b", "a\r\nb", ".a", "a.", "a..b", NULL,
	};
	for (size_t i = 0; i < ARRAY_LEN(bad); i++) {
		struct buf out;
		buf_init(&out, 4096);
		if (submit_rewrite(in, strlen(in), &f, NOW, bad[i], "h.example", &out) != -1)
			fail_msg("local \"%s\" accepted", bad[i] ? bad[i] : "(null)");
		if (submit_rewrite(in, strlen(in), &f, NOW, "Q1", bad[i], &out) != -1)
			fail_msg("host \"%s\" accepted", bad[i] ? bad[i] : "(null)");
		buf_free(&out);
	}
	char longid[SUBMIT_ID_MAX + 2];
	memset(longid, 'a', sizeof longid - 1);
	longid[sizeof longid - 1] = '\0';
	struct buf out;
	buf_init(&out, 4096);
	assert_int_equal(submit_rewrite(in, strlen(in), &f, NOW, longid, "h", &out), -1);
	longid[SUBMIT_ID_MAX] = '\0';
	assert_int_equal(submit_rewrite(in, strlen(in), &f, NOW, longid, "h", &out), 0);
	buf_free(&out);

	/* Ids are not needed when the Message-ID is there. */
	const char *has = "Message-ID: <x@y>\r\n\r\n";
	assert_int_equal(submit_scan(has, strlen(has), &f), 0);
	buf_init(&out, 4096);
	assert_int_equal(submit_rewrite(has, strlen(has), &f, NOW, NULL, NULL, &out), 0);
	assert_string_equal(out.data, DATE "\r\nMessage-ID: <x@y>\r\n\r\n");
	buf_free(&out);

	/* A fix that does not belong to the message. */
	const char *bcc = "Bcc: a\r\nDate: x\r\n\r\n";
	assert_int_equal(submit_scan(bcc, strlen(bcc), &f), 0);
	struct submit_fix g = f;
	g.header_end = 100;
	buf_init(&out, 4096);
	assert_int_equal(submit_rewrite(bcc, strlen(bcc), &g, NOW, "q", "h", &out), -1);
	g = f;
	g.bcc[0][1] = 50;
	assert_int_equal(submit_rewrite(bcc, strlen(bcc), &g, NOW, "q", "h", &out), -1);
	g = f;
	g.nbcc = 2;
	g.bcc[1][0] = 0;
	g.bcc[1][1] = 1;
	assert_int_equal(submit_rewrite(bcc, strlen(bcc), &g, NOW, "q", "h", &out), -1);
	buf_free(&out);
}

struct from_case {
	const char *hdr;
	int count;          /* -1: unparseable */
	const char *want;   /* addresses joined by '|' */
};

static const struct from_case from_cases[] = {
	{ "From: \"Doe, John\" <john@Example.COM>\r\n\r\n", 1, "john@example.com" },
	{ "From: John@Example.COM\r\n\r\n", 1, "John@example.com" },
	{ "From: a@b, (comment (nested)) c@d\r\n\r\n", 2, "a@b|c@d" },
	{ "From: undisclosed:;\r\n\r\n", 0, "" },
	{ "From: undisclosed-recipients: ;\r\n\r\n", 0, "" },
	{ "From: team: a@B.example, \"x y\" <c@d>;, e@f\r\n\r\n", 3, "a@b.example|c@d|e@f" },
	{ "From: =?UTF-8?B?5pel5pys6Kqe?= <jp@example.jp>\r\n\r\n", 1, "jp@example.jp" },
	{ "From: =?utf-8?q?Doe,_John?= <dj@x.example>\r\n\r\n", 1, "dj@x.example" },
	{ "From: =?iso-8859-1?Q?J=F6rg?= Schmidt <js@x>\r\n\r\n", 1, "js@x" },
	{ "From: \"quoted local\"@Example.org\r\n\r\n", 1, "\"quoted local\"@example.org" },
	{ "From: \"plain\"@x\r\n\r\n", 1, "plain@x" },
	{ "From: \"a\\\"b\"@x\r\n\r\n", 1, "\"a\\\"b\"@x" },
	{ "From: \"john..doe\"@x\r\n\r\n", 1, "\"john..doe\"@x" },
	{ "From: john . doe @ example . com\r\n\r\n", 1, "john.doe@example.com" },
	{ "From: <@route.example,@r2:user@host>\r\n\r\n", 1, "user@host" },
	{ "From: a@b\r\nSender: s@T.example\r\n\r\n", 2, "a@b|s@t.example" },
	{ "From: A\r\n <a@b>\r\n\r\n", 1, "a@b" },
	{ "From: user@[IPv6:::1]\r\n\r\n", 1, "user@[ipv6:::1]" },
	{ "From: J\xc3\xb6rg <j\xc3\xb6rg@B\xc3\xbc" "cher.example>\r\n\r\n", 1,
	  "j\xc3\xb6rg@b\xc3\xbc" "cher.example" },
	{ "From: ,a@b,,\r\n\r\n", 1, "a@b" },
	{ "From: (only a comment)\r\n\r\n", 0, "" },
	{ "From:\r\n\r\n", 0, "" },
	{ "From: a@b (trailing (comment))\r\n\r\n", 1, "a@b" },
	{ "From: Ann (the boss) <ann@x>, Bob <bob@y>\r\n\r\n", 2, "ann@x|bob@y" },
	{ "From: a@b\r\nFrom: c@d\r\n\r\n", 2, "a@b|c@d" },
	{ "To: t@u\r\n\r\nFrom: body@x\r\n", 0, "" },
	{ "Subject: no from\r\n\r\n", 0, "" },
	{ "From: a@b\nSender: c@d\n\n", 2, "a@b|c@d" },
	{ "From: \"\\(x\\)\" <a@b>\r\n\r\n", 1, "a@b" },
	/* garbage */
	{ "From: Doe, John <j@x>\r\n\r\n", -1, "" },
	{ "From: john\r\n\r\n", -1, "" },
	{ "From: <a@b\r\n\r\n", -1, "" },
	{ "From: a@b>\r\n\r\n", -1, "" },
	{ "From: \"unterminated <a@b>\r\n\r\n", -1, "" },
	{ "From: (unterminated a@b\r\n\r\n", -1, "" },
	{ "From: a@b c@d\r\n\r\n", -1, "" },
	{ "From: john@x <john@y>\r\n\r\n", -1, "" },
	{ "From: g: h:;;\r\n\r\n", -1, "" },
	{ "From: g: a@b\r\n\r\n", -1, "" },
	{ "From: a@b;\r\n\r\n", -1, "" },
	{ "From: :;\r\n\r\n", -1, "" },
	{ "From: a@\r\n\r\n", -1, "" },
	{ "From: @b\r\n\r\n", -1, "" },
	{ "From: <>\r\n\r\n", -1, "" },
	{ "From: a@b..c\r\n\r\n", -1, "" },
	{ "From: a@.b\r\n\r\n", -1, "" },
	{ "From: \"\"@b\r\n\r\n", -1, "" },
	{ "From: [1.2.3.4]\r\n\r\n", -1, "" },
	{ "From: a@[1.2.[3]\r\n\r\n", -1, "" },
	{ "From: a\x01@b\r\n\r\n", -1, "" },
	{ "From: \xff <a@b>\r\n\r\n", -1, "" },
	{ "From: a\\b@c\r\n\r\n", -1, "" },
	{ "From: a@b)\r\n\r\n", -1, "" },
	{ "From: =?utf-8?q?x,y?=@b\r\n\r\n", -1, "" },
	{ "From: a@b\r\nSender: garbage\r\n\r\n", -1, "" },
	{ "From: \"a\\\r\n b\"@c\r\n\r\n", -1, "" },
};

static void collect(const char *addr, void *arg)
{
	struct buf *b = arg;
	if (b->len)
		buf_append(b, "|", 1);
	buf_append_str(b, addr);
}

static void test_from_addresses(void **state)
{
	(void)state;
	for (size_t i = 0; i < ARRAY_LEN(from_cases); i++) {
		const struct from_case *c = &from_cases[i];
		size_t len = strlen(c->hdr);
		char *in = xmalloc(len);
		memcpy(in, c->hdr, len);
		struct buf b;
		buf_init(&b, 4096);
		int n = submit_from_addresses(in, len, collect, &b);
		const char *got = b.data ? b.data : "";
		if (n != c->count || strcmp(got, c->want) != 0)
			fail_msg("case %zu \"%s\": %d \"%s\"", i, c->hdr, n, got);
		assert_int_equal(submit_from_addresses(in, len, NULL, NULL), c->count);
		buf_free(&b);
		free(in);
	}
}

/* Comments nest up to SUBMIT_COMMENT_DEPTH_MAX. */
static void test_comment_depth(void **state)
{
	(void)state;
	for (int depth = SUBMIT_COMMENT_DEPTH_MAX; depth <= SUBMIT_COMMENT_DEPTH_MAX + 1;
	     depth++) {
		char h[256];
		size_t n = (size_t)snprintf(h, sizeof h, "From: a@b ");
		for (int k = 0; k < depth; k++)
			h[n++] = '(';
		for (int k = 0; k < depth; k++)
			h[n++] = ')';
		memcpy(h + n, "\r\n\r\n", 5);
		n += 4;
		int want = depth <= SUBMIT_COMMENT_DEPTH_MAX ? 1 : -1;
		assert_int_equal(submit_from_addresses(h, n, NULL, NULL), want);
	}
	/* Deep nesting in a long field stays flat: no recursion, no crash. */
	size_t len;
	char *m = repeat("(", 100000, "", &len);
	memcpy(m, "From:", 5);
	assert_int_equal(submit_from_addresses(m, len, NULL, NULL), -1);
	free(m);
}

static int setup_tz(void **state)
{
	(void)state;
	setenv("TZ", "UTC", 1);
	tzset();
	return 0;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_scan_rewrite),
		cmocka_unit_test(test_scan_limits),
		cmocka_unit_test(test_rewrite_ids),
		cmocka_unit_test(test_from_addresses),
		cmocka_unit_test(test_comment_depth),
	};
	return cmocka_run_group_tests(tests, setup_tz, NULL);
}
