/* reader_test.c - messages rendered for the terminal, and part bytes. */
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
#include "mail/mutf7.h"
#include "mail/reader.h"

/* UTF-8 of the Japanese words used below: 日本語, こんにちは */
#define NIHONGO "\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e"
#define KONNICHIWA "\xe3\x81\x93\xe3\x82\x93\xe3\x81\xab\xe3\x81\xa1\xe3\x81\xaf"
#define JIS_NIHONGO "\x1b$BF|K\\8l\x1b(B"
#define JIS_KONNICHIWA "\x1b$B$3$s$K$A$O\x1b(B"
#define SJIS_NIHONGO "\x93\xfa\x96\x7b\x8c\xea"
#define EUC_NIHONGO "\xc6\xfc\xcb\xdc\xb8\xec"
#define FFFD "\xef\xbf\xbd"

/* Output must always be terminal-safe: valid UTF-8, no C0 but LF and
 * tab, no DEL, no C1. */
static void check_safe(const char *s, size_t n)
{
	if (n == 0)
		return;
	assert_true(mutf7_utf8_valid(s, n));
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		if ((c < 0x20 && c != '\n' && c != '\t') || c == 0x7f)
			fail_msg("control 0x%02x at %zu in \"%s\"", c, i, s);
		if (c == 0xc2 && i + 1 < n && (unsigned char)s[i + 1] < 0xa0)
			fail_msg("C1 control at %zu in \"%s\"", i, s);
	}
}

static char *render_full(const char *msg, size_t len, const struct reader_opts *o, int want_ret,
			 struct reader_part_info *parts, size_t nmax, size_t *n_r)
{
	struct buf b;
	buf_init(&b, 1u << 22);
	int r = reader_render(msg, len, o, &b, parts, nmax, n_r);
	assert_int_equal(r, want_ret);
	check_safe(b.data, b.len);
	return buf_steal(&b, NULL);
}

static char *render_o(const char *msg, const struct reader_opts *o)
{
	return render_full(msg, strlen(msg), o, 0, NULL, 0, NULL);
}

static char *render(const char *msg)
{
	return render_o(msg, NULL);
}

#define HAS(out, s) do { if (strstr((out), (s)) == NULL) \
	fail_msg("\"%s\" not in:\n%s", (s), (out)); } while (0)
#define HASNT(out, s) do { if (strstr((out), (s)) != NULL) \
	fail_msg("\"%s\" should not be in:\n%s", (s), (out)); } while (0)

static char *b64(const char *s, size_t n)
{
	char *o = xmalloc(4 * ((n + 2) / 3) + 1);
	base64_encode((const unsigned char *)s, n, o);
	return o;
}

static size_t count(const char *hay, const char *needle)
{
	size_t n = 0;
	for (const char *p = hay; (p = strstr(p, needle)) != NULL; p += strlen(needle))
		n++;
	return n;
}

/* ISO-2022-JP, the usual Japanese mail charset, in a B-encoded Subject and
 * as a 7-bit body. */
static void test_iso2022jp(void **state)
{
	(void)state;
	char *w = b64(JIS_NIHONGO, strlen(JIS_NIHONGO));
	char *msg = xasprintf("From: Taro <taro@example.jp>\r\nTo: hanako@example.jp\r\n"
			      "Subject: =?ISO-2022-JP?B?%s?=\r\nDate: Mon, 5 Jan 2026 10:00:00 +0900\r\n"
			      "X-Other: hidden\r\nMIME-Version: 1.0\r\n"
			      "Content-Type: text/plain; charset=ISO-2022-JP\r\n"
			      "Content-Transfer-Encoding: 7bit\r\n\r\n" JIS_KONNICHIWA "\r\n", w);
	char *out = render(msg);
	HAS(out, "Subject: " NIHONGO "\n");
	HAS(out, "\n\n" KONNICHIWA "\n");
	/* the usual five, in that order, then an empty line */
	HAS(out, "Date: Mon, 5 Jan 2026 10:00:00 +0900\nFrom: Taro <taro@example.jp>\n"
		 "To: hanako@example.jp\nSubject: ");
	HASNT(out, "X-Other");
	HASNT(out, "MIME-Version");
	free(out);
	free(msg);
	free(w);
}

static void test_shift_jis(void **state)
{
	(void)state;
	char *out = render("Subject: sjis\r\nContent-Type: text/plain; charset=Shift_JIS\r\n"
			   "Content-Transfer-Encoding: 8bit\r\n\r\n" SJIS_NIHONGO "\r\n");
	HAS(out, NIHONGO "\n");
	free(out);
}

static void test_euc_jp(void **state)
{
	(void)state;
	char *out = render("Subject: euc\r\nContent-Type: text/plain; charset=\"euc-jp\"\r\n"
			   "\r\n" EUC_NIHONGO "\r\n");
	HAS(out, NIHONGO "\n");
	free(out);
}

/* ISO-2022-JP text under another label or none, raw in a header, and
 * 8-bit Japanese under an ISO-2022-JP label. */
static void test_mislabeled_japanese(void **state)
{
	(void)state;
	char *out = render("Subject: " JIS_NIHONGO "\r\n"
			   "Content-Type: text/plain; charset=us-ascii\r\n\r\n" JIS_KONNICHIWA "\r\n");
	HAS(out, "Subject: " NIHONGO "\n");
	HAS(out, KONNICHIWA);
	free(out);
	out = render("Subject: x\r\n\r\n" JIS_KONNICHIWA "\r\n");
	HAS(out, KONNICHIWA);
	free(out);
	out = render("Subject: x\r\nContent-Type: text/plain; charset=iso-2022-jp\r\n\r\n"
		     SJIS_NIHONGO "\r\n");
	HAS(out, NIHONGO);
	free(out);
	out = render("Subject: x\r\nContent-Type: text/plain; charset=iso-2022-jp\r\n\r\n"
		     EUC_NIHONGO "\r\n");
	HAS(out, NIHONGO);
	free(out);
	/* half-width katakana (ESC ( I), which Windows mailers put in */
	out = render("Subject: x\r\nContent-Type: text/plain; charset=iso-2022-jp\r\n\r\n"
		     "\x1b(I12\x1b(B\r\n");
	HAS(out, "\xef\xbd\xb1\xef\xbd\xb2");
	free(out);
}

static void test_transfer_encodings(void **state)
{
	(void)state;
	char *out = render("Subject: qp\r\nContent-Type: text/plain; charset=iso-8859-1\r\n"
			   "Content-Transfer-Encoding: quoted-printable\r\n\r\n"
			   "caf=E9 cr=E8me soft=\r\nbreak\r\n");
	HAS(out, "caf\xc3\xa9 cr\xc3\xa8me softbreak\n");
	HASNT(out, "=E9");
	free(out);
	char *w = b64("h\xc3\xa9llo w\xc3\xb6rld\r\n", 15);
	char *msg = xasprintf("Subject: b64\r\nContent-Type: text/plain; charset=utf-8\r\n"
			      "Content-Transfer-Encoding: BASE64\r\n\r\n%s\r\n", w);
	out = render(msg);
	HAS(out, "h\xc3\xa9llo w\xc3\xb6rld\n");
	HASNT(out, w);
	free(out);
	free(msg);
	free(w);
	/* windows-1252 and ISO-8859-15 go through iconv too */
	out = render("Subject: x\r\nContent-Type: text/plain; charset=windows-1252\r\n\r\n"
		     "\x93quoted\x94 \x80\r\n");
	HAS(out, "\xe2\x80\x9cquoted\xe2\x80\x9d \xe2\x82\xac");
	free(out);
}

static const char alternative[] =
	"From: a@example.org\r\nSubject: alt\r\n"
	"Content-Type: multipart/alternative; boundary=\"XX\"\r\n\r\n"
	"preamble\r\n--XX\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nPLAIN TEXT\r\n"
	"--XX\r\nContent-Type: text/html; charset=utf-8\r\n\r\n<p>HTML TEXT</p>\r\n--XX--\r\n";

static void test_alternative_picks_plain(void **state)
{
	(void)state;
	struct reader_part_info parts[4];
	size_t n = 99;
	char *out = render_full(alternative, strlen(alternative), NULL, 0, parts, 4, &n);
	HAS(out, "PLAIN TEXT");
	HASNT(out, "HTML TEXT");
	HASNT(out, "preamble");
	HAS(out, "[2] text/html (");
	HAS(out, ", alternative)");
	assert_int_equal(n, 1);
	assert_string_equal(parts[0].section, "2");
	assert_string_equal(parts[0].type, "text/html");
	assert_false(parts[0].attachment);
	free(out);
	/* an empty text/plain does not win over the HTML */
	out = render("Subject: alt\r\nContent-Type: multipart/alternative; boundary=XX\r\n\r\n"
		     "--XX\r\nContent-Type: text/plain\r\n\r\n \r\n"
		     "--XX\r\nContent-Type: text/html\r\n\r\n<p>HTML TEXT</p>\r\n--XX--\r\n");
	HAS(out, "HTML TEXT");
	free(out);
}

static void test_html_only(void **state)
{
	(void)state;
	char *out = render(
		"Subject: news\r\nContent-Type: text/html; charset=utf-8\r\n\r\n"
		"<html><head><title>TITLE</title><style>p{color:red}</style></head>\r\n"
		"<body><h1>Heading</h1><p>Hello&nbsp;<b>world</b> &amp;\r\n   friends &eacute;</p>"
		"<ul><li>one</li><li>two</li></ul>"
		"<p><a href=\"https://example.org/x?a=1&amp;b=2\">click here</a> or "
		"<a href=\"mailto:me@example.org\">me@example.org</a></p>"
		"<script>alert('x')</script>line1<br>line2<div>block</div>"
		"<pre>  keep   this\n  too</pre><!-- comment --></body></html>\r\n");
	HAS(out, "Heading\n\nHello\xc2\xa0world & friends \xc3\xa9\n");
	HAS(out, "- one\n- two\n");
	HAS(out, "click here <https://example.org/x?a=1&b=2> or me@example.org\n");
	HAS(out, "line1\nline2\nblock\n");
	HAS(out, "  keep   this\n  too");
	HASNT(out, "TITLE");
	HASNT(out, "color");
	HASNT(out, "alert");
	HASNT(out, "comment");
	HASNT(out, "<p>");
	free(out);
	/* html_raw: the source, sanitised */
	struct reader_opts o = {.html_raw = true};
	out = render_o("Subject: x\r\nContent-Type: text/html\r\n\r\n<p>raw</p>\r\n", &o);
	HAS(out, "<p>raw</p>");
	free(out);
	/* no charset parameter: a <meta> one is used */
	out = render("Subject: x\r\nContent-Type: text/html\r\n\r\n"
		     "<html><head><meta http-equiv=\"Content-Type\" content=\"text/html; "
		     "charset=Shift_JIS\"></head><body>" SJIS_NIHONGO "</body></html>\r\n");
	HAS(out, NIHONGO);
	free(out);
}

static void test_forward_nested(void **state)
{
	(void)state;
	struct reader_part_info parts[4];
	size_t n;
	const char *msg =
		"From: Bob <bob@example.org>\r\nSubject: Fwd: plans\r\n"
		"Content-Type: multipart/mixed; boundary=outer\r\n\r\n"
		"--outer\r\nContent-Type: text/plain\r\n\r\nSee below.\r\n"
		"--outer\r\nContent-Type: message/rfc822\r\n\r\n"
		"From: Alice <alice@example.org>\r\nTo: bob@example.org\r\n"
		"Subject: =?UTF-8?Q?plans_caf=C3=A9?=\r\n"
		"Content-Type: text/plain; charset=iso-8859-1\r\n\r\n"
		"inner caf\xe9 body\r\n"
		"--outer\r\nContent-Type: text/plain\r\n\r\nAfter the forward.\r\n--outer--\r\n";
	char *out = render_full(msg, strlen(msg), NULL, 0, parts, 4, &n);
	HAS(out, "Subject: Fwd: plans\n\nSee below.\n\n"
		 "---------- Forwarded message (part 2) ----------\n"
		 "  From: Alice <alice@example.org>\n  To: bob@example.org\n"
		 "  Subject: plans caf\xc3\xa9\n\ninner caf\xc3\xa9 body\n\n"
		 "---------- End of forwarded message ----------\n\nAfter the forward.\n");
	assert_int_equal(n, 1);
	assert_string_equal(parts[0].section, "2");
	assert_string_equal(parts[0].type, "message/rfc822");
	assert_true(parts[0].attachment);
	free(out);
}

static void test_attachments_rfc2231(void **state)
{
	(void)state;
	struct reader_part_info parts[4];
	size_t n;
	const char *msg =
		"Subject: files\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n"
		"--b\r\nContent-Type: text/plain\r\n\r\nbody\r\n"
		"--b\r\nContent-Type: application/pdf\r\nContent-Transfer-Encoding: base64\r\n"
		"Content-Disposition: attachment;\r\n filename*0*=UTF-8''%E6%97%A5%E6;\r\n"
		" filename*1*=%9C%AC.pdf\r\n\r\nJVBERi0=\r\n"
		"--b\r\nContent-Type: image/png; name=\"=?UTF-8?B?5pel5pys6Kqe?=.png\"\r\n\r\n"
		"PNG\r\n--b--\r\n";
	char *out = render_full(msg, strlen(msg), NULL, 0, parts, 4, &n);
	HAS(out, "Attachments:\n  [2] application/pdf \"\xe6\x97\xa5\xe6\x9c\xac.pdf\" (5 bytes)\n");
	HAS(out, "  [3] image/png \"" NIHONGO ".png\" (3 bytes)\n");
	assert_int_equal(n, 2);
	assert_string_equal(parts[0].section, "2");
	assert_string_equal(parts[0].type, "application/pdf");
	assert_string_equal(parts[0].filename, "\xe6\x97\xa5\xe6\x9c\xac.pdf");
	assert_int_equal(parts[0].size, 5);
	assert_true(parts[0].attachment);
	assert_string_equal(parts[1].filename, NIHONGO ".png");
	/* nparts_max 1: only the first is stored, both are listed */
	free(out);
	out = render_full(msg, strlen(msg), NULL, 0, parts, 1, &n);
	assert_int_equal(n, 1);
	HAS(out, "[3] image/png");
	free(out);
}

static void test_part_bytes(void **state)
{
	(void)state;
	char bin[256];
	for (int i = 0; i < 256; i++)
		bin[i] = (char)i;
	char *w = b64(bin, sizeof bin);
	char *msg = xasprintf("Subject: bin\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n"
			      "--b\r\nContent-Type: text/plain\r\n\r\nhi\r\n"
			      "--b\r\nContent-Type: application/octet-stream\r\n"
			      "Content-Transfer-Encoding: base64\r\n\r\n%.60s\r\n%s\r\n--b--\r\n",
			      w, w + 60);
	struct buf b;
	buf_init(&b, 4096);
	assert_int_equal(reader_part_bytes(msg, strlen(msg), "2", &b), 1);
	assert_int_equal(b.len, 256);
	assert_memory_equal(b.data, bin, 256);
	buf_reset(&b);
	assert_int_equal(reader_part_bytes(msg, strlen(msg), "1", &b), 1);
	assert_string_equal(b.data, "hi");
	buf_reset(&b);
	assert_int_equal(reader_part_bytes(msg, strlen(msg), "3", &b), 0);
	assert_int_equal(reader_part_bytes(msg, strlen(msg), "", &b), 0);
	/* out->max reached */
	struct buf small;
	buf_init(&small, 100);
	assert_int_equal(reader_part_bytes(msg, strlen(msg), "2", &small), -1);
	assert_true(small.len <= 100);
	buf_free(&small);
	/* a forward gives the message itself */
	const char *fwd = "Subject: f\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n"
			  "--b\r\nContent-Type: message/rfc822\r\n\r\nSubject: in\r\n\r\nbody\r\n"
			  "--b--\r\n";
	buf_reset(&b);
	assert_int_equal(reader_part_bytes(fwd, strlen(fwd), "1", &b), 1);
	assert_string_equal(b.data, "Subject: in\r\n\r\nbody");
	buf_free(&b);
	free(msg);
	free(w);
}

/* Terminal escapes from headers and bodies, raw or after decoding. */
static void test_escapes_neutralised(void **state)
{
	(void)state;
	char *out = render(
		"Subject: evil \x1b[31mred\x1b[0m \x9b" "2J =?ISO-8859-1?Q?=9B31m?= =?UTF-8?B?wps=?=\r\n"
		"From: =?us-ascii?Q?=1B]0;pwned=07?= <x@example.org>\r\n"
		"Content-Type: text/plain; charset=iso-8859-1\r\n\r\n"
		"body \x1b[2J clear \x9b" "31m C1 \x07 bell \x08 bs \x7f del\r\nlone\rcr\r\n");
	/* (the blank between the two encoded words is dropped, RFC 2047 6.2) */
	HAS(out, "Subject: evil ^[[31mred^[[0m " FFFD "2J " FFFD "31m" FFFD "\n");
	HAS(out, "From: ^[]0;pwned^G <x@example.org>\n");
	HAS(out, "body ^[[2J clear " FFFD "31m C1 ^G bell ^H bs ^? del\nlone^Mcr\n");
	free(out);
	/* UTF-8 bodies: C1 as two bytes, ESC, invalid bytes */
	out = render("Subject: x\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n"
		     "a\xc2\x9b" "b \x1b" "c \xff d\r\n");
	HAS(out, "a" FFFD "b ^[c " FFFD " d\n");
	free(out);
	/* in HTML text, from a character reference */
	out = render("Subject: x\r\nContent-Type: text/html\r\n\r\n<p>x&#155;y&#x1b;z</p>\r\n");
	HASNT(out, "\x1b");
	free(out);
	/* a LF from an encoded word cannot fake a header line */
	out = render("Subject: =?UTF-8?Q?a=0AFrom:_forged?=\r\n\r\nbody\r\n");
	HAS(out, "Subject: a^JFrom: forged\n");
	free(out);
}

static void test_broken_mime(void **state)
{
	(void)state;
	/* unclosed boundary */
	char *out = render("Subject: x\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n"
			   "--b\r\n\r\nfirst\r\n--b\r\nContent-Type: text/plain\r\n\r\n"
			   "second, never closed\r\n");
	HAS(out, "first\n\nsecond, never closed\n");
	free(out);
	/* no boundary parameter: the body as text */
	out = render("Subject: x\r\nContent-Type: multipart/mixed\r\n\r\nall of it\r\n");
	HAS(out, "all of it");
	free(out);
	/* truncated base64 */
	out = render("Subject: x\r\nContent-Transfer-Encoding: base64\r\n\r\naGVsbG8gd29ybGQ\r\n");
	HAS(out, "hello worl");
	free(out);
	/* unknown charset: UTF-8 kept, other bytes U+FFFD */
	out = render("Subject: x\r\nContent-Type: text/plain; charset=x-klingon\r\n\r\n"
		     "caf\xe9 caf\xc3\xa9\r\n");
	HAS(out, "caf" FFFD " caf\xc3\xa9\n");
	free(out);
	/* wrong charset (Latin-1 labelled UTF-8) */
	out = render("Subject: x\r\nContent-Type: text/plain; charset=utf-8\r\n\r\ncaf\xe9\r\n");
	HAS(out, "caf" FFFD "\n");
	free(out);
	/* header words in a charset nobody knows are shown as they are */
	out = render("Subject: =?x-klingon?Q?qapla=27?= ok\r\n\r\nb\r\n");
	HAS(out, "Subject: =?x-klingon?Q?qapla=27?= ok\n");
	free(out);
	/* no header end, empty input, NULL input */
	out = render("Subject: only a header");
	HAS(out, "Subject: only a header\n");
	free(out);
	out = render("");
	assert_string_equal(out, "");
	free(out);
	struct buf b;
	buf_init(&b, 100);
	assert_int_equal(reader_render(NULL, 0, NULL, &b, NULL, 0, NULL), 0);
	assert_int_equal(reader_part_bytes(NULL, 0, "1", &b), 1);
	buf_free(&b);
}

static void test_headers_all_and_wrap(void **state)
{
	(void)state;
	const char *msg = "Subject: s\r\nX-Custom: custom\r\nReceived: from a\r\n b\r\n\r\n"
			  "the quick brown fox jumps over the lazy dog "
			  "abcdefghijklmnopqrstuvwxyz0123456789\r\n"
			  NIHONGO NIHONGO NIHONGO NIHONGO NIHONGO "\r\n\tindented\r\n";
	struct reader_opts o = {.all_headers = true, .width = 20};
	char *out = render_o(msg, &o);
	HAS(out, "Subject: s\nX-Custom: custom\nReceived: from a b\n\n");
	HAS(out, "the quick brown fox\njumps over the lazy\ndog\n"
		 "abcdefghijklmnopqrst\nuvwxyz0123456789\n");
	/* wide characters take two columns: 10 per line */
	HAS(out, "\n" NIHONGO NIHONGO NIHONGO "\xe6\x97\xa5\n\xe6\x9c\xac\xe8\xaa\x9e" NIHONGO);
	HAS(out, "\n\tindented\n");
	free(out);
	out = render(msg);
	HASNT(out, "X-Custom");
	HAS(out, "the quick brown fox jumps over the lazy dog abc");
	free(out);
}

/* Output cap: a cut rendering ends with the mark and stays valid. */
static void test_cap_output(void **state)
{
	(void)state;
	const char *msg = "Subject: s\r\n\r\n" NIHONGO NIHONGO NIHONGO NIHONGO NIHONGO NIHONGO
			  NIHONGO NIHONGO NIHONGO NIHONGO NIHONGO NIHONGO "\r\n";
	struct buf b;
	buf_init(&b, 60);
	assert_int_equal(reader_render(msg, strlen(msg), NULL, &b, NULL, 0, NULL), -1);
	assert_true(b.len <= 60);
	check_safe(b.data, b.len);
	assert_non_null(strstr(b.data, READER_TRUNCATED_MARK));
	buf_free(&b);

	/* READER_OUT_MAX, whatever out->max */
	size_t body = READER_OUT_MAX + (1u << 20);
	char *big = xmalloc(body + 32);
	size_t k = (size_t)snprintf(big, 32, "Subject: big\r\n\r\n");
	for (size_t i = 0; i < body; i++)
		big[k + i] = (i % 64) == 63 ? '\n' : 'a';
	buf_init(&b, 4u * READER_OUT_MAX);
	assert_int_equal(reader_render(big, k + body, NULL, &b, NULL, 0, NULL), -1);
	assert_true(b.len <= READER_OUT_MAX);
	assert_true(b.len > READER_OUT_MAX - 1024);
	assert_string_equal(b.data + b.len - strlen(READER_TRUNCATED_MARK) + 1,
			    &READER_TRUNCATED_MARK[1]);
	buf_free(&b);
	free(big);
}

/* Parts: mime's cap of MIME_PARTS_MAX, the top level included. */
static void test_cap_parts(void **state)
{
	(void)state;
	struct buf m;
	buf_init(&m, 1u << 20);
	buf_append_str(&m, "Subject: many\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n");
	for (int i = 0; i < 1100; i++)
		buf_printf(&m, "--b\r\nContent-Type: application/octet-stream\r\n\r\nx%d\r\n", i);
	buf_append_str(&m, "--b--\r\n");
	struct reader_part_info *parts = xcalloc(READER_PARTS_MAX, sizeof(*parts));
	size_t n;
	char *out = render_full(m.data, m.len, NULL, 0, parts, READER_PARTS_MAX, &n);
	assert_int_equal(n, READER_PARTS_MAX - 1);
	assert_string_equal(parts[n - 1].section, "999");
	HAS(out, "  [999] application/octet-stream (");
	HASNT(out, "[1000]");
	free(out);
	out = render_full(m.data, m.len, NULL, 0, parts, 5, &n);
	assert_int_equal(n, 5);
	free(out);
	free(parts);
	buf_free(&m);
}

/* Nesting: forwards are rendered down to mime's depth cap, and the message
 * at the cap is listed instead. */
static void test_cap_depth(void **state)
{
	(void)state;
	struct buf m;
	buf_init(&m, 1u << 16);
	for (int i = 0; i < MIME_DEPTH_MAX + 5; i++)
		buf_printf(&m, "Subject: L%d\r\nContent-Type: message/rfc822\r\n\r\n", i);
	buf_append_str(&m, "Subject: last\r\n\r\ninnermost\r\n");
	size_t n;
	struct reader_part_info parts[4];
	char *out = render_full(m.data, m.len, NULL, 0, parts, 4, &n);
	assert_int_equal(count(out, "---------- Forwarded message"), MIME_DEPTH_MAX);
	assert_int_equal(count(out, "---------- End of forwarded message"), MIME_DEPTH_MAX);
	char want[32];
	snprintf(want, sizeof want, "Subject: L%d\n", MIME_DEPTH_MAX);
	HAS(out, want);
	snprintf(want, sizeof want, "Subject: L%d\n", MIME_DEPTH_MAX + 1);
	HASNT(out, want);
	HASNT(out, "innermost");
	/* the top level and the 20 forwards are message/rfc822 parts */
	assert_int_equal(n, 4);
	assert_string_equal(parts[0].type, "message/rfc822");
	free(out);
	buf_free(&m);
}

/* HTML past READER_HTML_MAX is cut, and says so. */
static void test_cap_html(void **state)
{
	(void)state;
	struct buf m;
	buf_init(&m, READER_HTML_MAX + (2u << 20));
	buf_append_str(&m, "Subject: h\r\nContent-Type: text/html\r\n\r\n<p>START</p>");
	while (m.len < READER_HTML_MAX + (1u << 20))
		buf_append_str(&m, "<p>filler filler filler filler filler filler filler</p>\r\n");
	buf_append_str(&m, "<p>END</p>\r\n");
	char *out = render_full(m.data, m.len, NULL, 0, NULL, 0, NULL);
	HAS(out, "START");
	HAS(out, "[HTML part cut at 4 MiB]");
	HASNT(out, "END");
	free(out);
	buf_free(&m);
	/* deep nesting does not hurt (libxml2 stops at 256 levels) */
	buf_init(&m, 1u << 20);
	buf_append_str(&m, "Subject: h\r\nContent-Type: text/html\r\n\r\nTOP");
	for (int i = 0; i < 100000; i++)
		buf_append_str(&m, "<div>");
	out = render_full(m.data, m.len, NULL, 0, NULL, 0, NULL);
	HAS(out, "TOP");
	free(out);
	buf_free(&m);
}

/* Shapes from the corpus in tests/proto/test_client_corpus.py that once
 * rendered wrong: each message, and its whole rendering. */
struct corpus_case {
	const char *name;
	const char *msg;
	const char *want;
};

#define SJIS_KENMEI "\x8c\x8f\x96\xbc" /* 件名 */
#define KENMEI "\xe4\xbb\xb6\xe5\x90\x8d"
#define CIRCLED_1 "\xe2\x91\xa0"
#define HW_KANA "\xef\xbd\xb6\xef\xbe\x85" /* ｶﾅ */

static const struct corpus_case corpus[] = {
	/* a byte order mark is a signature, not text */
	{ "utf-8 bom", "Subject: s\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n"
	  "\xef\xbb\xbf" NIHONGO "\r\n", "Subject: s\n\n" NIHONGO "\n" },
	{ "utf-8 bom in base64", "Subject: s\r\nContent-Type: text/plain; charset=utf-8\r\n"
	  "Content-Transfer-Encoding: base64\r\n\r\n77u/YQ==\r\n", "Subject: s\n\na\n" },
	/* 8-bit text without a label that says what it is in */
	{ "shift_jis labelled us-ascii", "Subject: s\r\nContent-Type: text/plain; "
	  "charset=us-ascii\r\n\r\n" SJIS_NIHONGO "\x87\x40\r\n",
	  "Subject: s\n\n" NIHONGO CIRCLED_1 "\n" },
	{ "shift_jis without content-type", "Subject: s\r\n\r\n" SJIS_NIHONGO "\r\n",
	  "Subject: s\n\n" NIHONGO "\n" },
	{ "euc-jp without charset", "Subject: s\r\nContent-Type: text/plain\r\n\r\n"
	  EUC_NIHONGO "\r\n", "Subject: s\n\n" NIHONGO "\n" },
	{ "shift_jis under an unknown label", "Subject: s\r\nContent-Type: text/plain; "
	  "charset=x-klingon\r\n\r\n" SJIS_NIHONGO "\r\n", "Subject: s\n\n" NIHONGO "\n" },
	{ "x-euc-jp", "Subject: s\r\nContent-Type: text/plain; charset=x-euc-jp\r\n\r\n"
	  EUC_NIHONGO "\r\n", "Subject: s\n\n" NIHONGO "\n" },
	/* ... but no guess that needs CP932's private-use rows */
	{ "latin-1 without charset", "Subject: s\r\n\r\nJ\xf8rn\r\n",
	  "Subject: s\n\nJ" FFFD "rn\n" },
	/* ISO-2022-JP as Windows writes it: NEC row 13, half-width katakana */
	{ "iso-2022-jp nec row 13", "Subject: =?ISO-2022-JP?B?GyRCLSEbKEI=?=\r\n"
	  "Content-Type: text/plain; charset=iso-2022-jp\r\n\r\n\x1b$B-!\x1b(B\r\n",
	  "Subject: " CIRCLED_1 "\n\n" CIRCLED_1 "\n" },
	{ "iso-2022-jp katakana in a word", "Subject: =?ISO-2022-JP?B?GyhJNkUbKEI=?= x\r\n\r\n"
	  "b\r\n", "Subject: " HW_KANA " x\n\nb\n" },
	{ "raw iso-2022-jp katakana in a header", "Subject: \x1b(I6E\x1b(B\r\n\r\nb\r\n",
	  "Subject: " HW_KANA "\n\nb\n" },
	/* raw 8-bit header text: the body's charset, else a guess, else U+FFFD */
	{ "raw shift_jis subject", "Subject: " SJIS_KENMEI " x\r\n\r\nb\r\n",
	  "Subject: " KENMEI " x\n\nb\n" },
	{ "raw euc-jp subject", "Subject: \xb7\xef\xcc\xbe\r\n\r\nb\r\n",
	  "Subject: " KENMEI "\n\nb\n" },
	{ "raw shift_jis with an encoded word", "Subject: " SJIS_KENMEI " =?UTF-8?Q?=E2=91=A0?="
	  "\r\n\r\nb\r\n", "Subject: " KENMEI " " CIRCLED_1 "\n\nb\n" },
	{ "raw latin-1 under a latin-1 body", "From: Andr\xe9 <a@example.org>\r\n"
	  "Content-Type: text/plain; charset=iso-8859-1\r\n\r\nb\r\n",
	  "From: Andr\xc3\xa9 <a@example.org>\n\nb\n" },
	{ "raw latin-1 without a hint", "Subject: caf\xe9\r\n\r\nb\r\n",
	  "Subject: caf" FFFD "\n\nb\n" },
	{ "raw shift_jis file name", "Subject: s\r\nContent-Type: multipart/mixed; boundary=b"
	  "\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\nx\r\n--b\r\n"
	  "Content-Type: application/pdf; name=\"" SJIS_KENMEI ".pdf\"\r\n\r\nPDF\r\n--b--\r\n",
	  "Subject: s\n\nx\n\nAttachments:\n  [2] application/pdf \"" KENMEI ".pdf\" (3 bytes)\n" },
};

static void test_corpus(void **state)
{
	(void)state;
	for (size_t k = 0; k < ARRAY_LEN(corpus); k++) {
		const struct corpus_case *c = &corpus[k];
		char *out = render(c->msg);
		if (strcmp(out, c->want) != 0)
			fail_msg("%s: got\n%s\nwant\n%s", c->name, out, c->want);
		free(out);
	}
}

/* reader_header_text(): what a list of messages shows. */
struct header_case {
	const char *name;
	const char *raw;
	const char *charset;
	const char *want;
};

static const struct header_case header_cases[] = {
	{ "encoded words split in a character", "=?ISO-2022-JP?B?GyRCRnxL?=\r\n"
	  " =?ISO-2022-JP?B?XDhsGyhC?= x", NULL, NIHONGO " x" },
	{ "raw iso-2022-jp", JIS_NIHONGO " raw", NULL, NIHONGO " raw" },
	{ "raw shift_jis guessed", SJIS_NIHONGO, NULL, NIHONGO },
	{ "raw latin-1 in its charset", "caf\xe9", "ISO-8859-1", "caf\xc3\xa9" },
	{ "raw latin-1 without one", "caf\xe9", NULL, "caf" FFFD },
	{ "controls on one line", "a =?UTF-8?Q?=0A=1B=C2=9B?= b\tc", NULL, "a ^J^[" FFFD " b c" },
};

static void test_header_text(void **state)
{
	(void)state;
	for (size_t k = 0; k < ARRAY_LEN(header_cases); k++) {
		const struct header_case *c = &header_cases[k];
		struct buf b;
		buf_init(&b, 4096);
		assert_int_equal(reader_header_text(c->raw, strlen(c->raw), c->charset, false, &b), 0);
		if (strcmp(b.data != NULL ? b.data : "", c->want) != 0)
			fail_msg("%s: got '%s'", c->name, b.data);
		check_safe(b.data, b.len);
		/* a cap gives a prefix, whole characters only */
		size_t wlen = strlen(c->want);
		buf_free(&b);
		buf_init(&b, wlen - 1);
		assert_int_equal(reader_header_text(c->raw, strlen(c->raw), c->charset, false, &b), -1);
		check_safe(b.data, b.len);
		assert_true(b.len == 0 || memcmp(b.data, c->want, b.len) == 0);
		buf_free(&b);
	}
	/* spaces: controls become spaces (a listing), not caret forms */
	struct buf sp;
	buf_init(&sp, 256);
	static const char raw[] = "a\x07" "b =?UTF-8?B?Ywlk?=";
	assert_int_equal(reader_header_text(raw, sizeof raw - 1, NULL, true, &sp), 0);
	assert_string_equal(sp.data, "a b c d");
	buf_free(&sp);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_iso2022jp),
		cmocka_unit_test(test_shift_jis),
		cmocka_unit_test(test_euc_jp),
		cmocka_unit_test(test_mislabeled_japanese),
		cmocka_unit_test(test_transfer_encodings),
		cmocka_unit_test(test_alternative_picks_plain),
		cmocka_unit_test(test_html_only),
		cmocka_unit_test(test_forward_nested),
		cmocka_unit_test(test_attachments_rfc2231),
		cmocka_unit_test(test_part_bytes),
		cmocka_unit_test(test_escapes_neutralised),
		cmocka_unit_test(test_broken_mime),
		cmocka_unit_test(test_headers_all_and_wrap),
		cmocka_unit_test(test_cap_output),
		cmocka_unit_test(test_cap_parts),
		cmocka_unit_test(test_cap_depth),
		cmocka_unit_test(test_cap_html),
		cmocka_unit_test(test_corpus),
		cmocka_unit_test(test_header_text),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
