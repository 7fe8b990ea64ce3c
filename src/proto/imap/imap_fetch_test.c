/* imap_fetch_test.c - table-driven tests of the FETCH renderers.
 *
 * The corpus is written with LF line ends and turned into CRLF (as the
 * store keeps mail) unless a case asks for LF.  Each fetch case renders one
 * item the way a session would put it after the item name:
 *   ENVELOPE, BODY, BODYSTRUCTURE (BODYSTRUCTURE8: UTF8=ACCEPT)
 *   BODY[...]         "<echoed name> <string>", NONE when the section does
 *                     not exist
 *   BINARY[...]       "<echoed name> <literal8>", ERR <code> on errors
 *   BINARY.SIZE[...]  "<echoed name> <number>"
 * and the exact bytes are compared. */
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
#include "proto/imap/imap_fetch.h"
#include "proto/imap/imap_parser.h"

/* ---- corpus ---- */

/* RFC 3501's own example message. */
static const char msg_simple[] =
	"Date: Mon, 7 Feb 1994 21:52:25 -0800 (PST)\n"
	"From: Fred Foobar <foobar@Blurdybloop.example>\n"
	"Subject: afternoon meeting\n"
	"To: mooch@owatagu.siam.example\n"
	"Message-Id: <B27397-0100000@Blurdybloop.example>\n"
	"MIME-Version: 1.0\n"
	"Content-Type: TEXT/PLAIN; CHARSET=US-ASCII\n"
	"\n"
	"Hello Joe, do you think we can meet at 3:30 tomorrow?\n";

static const char msg_no_ct[] =
	"From: a@b.example\n"
	"Subject: no type\n"
	"\n"
	"hi\n"
	"there\n";

static const char msg_alt_related[] =
	"From: \"Joe Q. Public\" <john.q.public@example.com>\n"
	"To: Mary Smith <mary@x.test>, jdoe@example.org, Who? <one@y.test>\n"
	"Subject: alt\n"
	"Content-Type: multipart/alternative; boundary=\"alt\"\n"
	"\n"
	"preamble\n"
	"--alt\n"
	"Content-Type: text/plain; charset=utf-8\n"
	"Content-Transfer-Encoding: quoted-printable\n"
	"\n"
	"Caf=C3=A9 =\n"
	"ok\n"
	"--alt\n"
	"Content-Type: multipart/related; boundary=\"rel\"; type=\"text/html\"\n"
	"\n"
	"--rel\n"
	"Content-Type: text/html; charset=utf-8\n"
	"\n"
	"<p>Hi <img src=\"cid:img1@x\"></p>\n"
	"--rel\n"
	"Content-Type: image/png; name=\"dot.png\"\n"
	"Content-ID: <img1@x>\n"
	"Content-Transfer-Encoding: base64\n"
	"Content-Disposition: inline; filename=\"dot.png\"\n"
	"\n"
	"iVBORw0KGgo=\n"
	"--rel--\n"
	"--alt--\n"
	"epilogue\n";

static const char msg_attachment[] =
	"From: Pete <pete@silly.example>\n"
	"To: \"Giant; \\\"Big\\\" Box\" <sysservices@example.net>\n"
	"Subject: report\n"
	"Content-Type: multipart/mixed; boundary=mix\n"
	"Content-Language: en\n"
	"\n"
	"--mix\n"
	"Content-Type: text/plain\n"
	"\n"
	"See attached.\n"
	"--mix\n"
	"Content-Type: application/octet-stream; name*=UTF-8''%E6%97%A5%E6%9C%AC.txt\n"
	"Content-Disposition: attachment; filename*=UTF-8''%E6%97%A5%E6%9C%AC.txt;\n"
	" size=3\n"
	"Content-Description: the report\n"
	"Content-Language: en, fr\n"
	"Content-Location: http://example.com/r.txt\n"
	"Content-MD5: Q2hlY2sgSW50ZWdyaXR5IQ==\n"
	"Content-Transfer-Encoding: base64\n"
	"\n"
	"5pel5pys\n"
	"--mix--\n";

static const char msg_forward[] =
	"From: fwd@example.com\n"
	"Subject: Fwd: alt\n"
	"Content-Type: multipart/mixed; boundary=\"outer\"\n"
	"\n"
	"--outer\n"
	"Content-Type: text/plain\n"
	"\n"
	"see below\n"
	"--outer\n"
	"Content-Type: message/rfc822\n"
	"\n"
	"From: inner@example.com\n"
	"Subject: inner\n"
	"Content-Type: multipart/alternative; boundary=\"in\"\n"
	"\n"
	"--in\n"
	"Content-Type: text/plain\n"
	"\n"
	"plain\n"
	"--in\n"
	"Content-Type: text/html\n"
	"\n"
	"<b>html</b>\n"
	"--in--\n"
	"\n"
	"--outer--\n";

/* "Yamada" in the From phrase, "Nihongo" in the Subject, body in JIS. */
static const char msg_japanese[] =
	"From: =?ISO-2022-JP?B?GyRCOzNFRBsoQg==?= <yamada@example.jp>\n"
	"To: suzuki@example.jp\n"
	"Subject: =?ISO-2022-JP?B?GyRCRnxLXDhsGyhC?=\n"
	"MIME-Version: 1.0\n"
	"Content-Type: text/plain; charset=ISO-2022-JP\n"
	"Content-Transfer-Encoding: 7bit\n"
	"\n"
	"\033$B$3$s$K$A$O\033(B\n";

static const char msg_no_boundary[] =
	"From: x@example.com\n"
	"Content-Type: multipart/mixed; boundary=nowhere\n"
	"\n"
	"--elsewhere\n"
	"Content-Type: text/plain\n"
	"\n"
	"text\n";

static const char msg_no_close[] =
	"From: x@example.com\n"
	"Content-Type: multipart/mixed; boundary=b\n"
	"\n"
	"--b\n"
	"Content-Type: text/plain\n"
	"\n"
	"one\n"
	"--b\n"
	"Content-Type: text/plain\n"
	"\n"
	"two, never closed\n";

static const char msg_addresses[] =
	"From: Undisclosed recipients:;\n"
	"To: A Group:Ed Jones <c@a.test>,joe@where.test,John <jdoe@one.test>;, solo@x.test\n"
	"Cc: \"Doe, John\" (comment) <@route1,@route2:jd@[192.0.2.1]>, foo@bar (Foo Bar),\n"
	"  nodomain, <>\n"
	"Bcc: (only a comment)\n"
	"Sender: \n"
	"Reply-To: <broken@\n"
	"Subject: \n"
	"Date: odd\n"
	"In-Reply-To: <a@b>\n"
	"\n";

static const char msg_odd_from[] =
	"From: \"unterminated <x@y>\n"
	"Sender: John (the \\(real\\) one) Smith <js@x.test> (trailing)\n"
	"Reply-To: a@b@c, @@, ,, \"q\\\\\"@d , Mr. J. Q. Public <jqp@x.test>\n"
	"To: g1: a@x.test; g2:;, <<nested@x.test>>, \"quoted local\"@x.test\n"
	"Cc: NIL <nil@x.test>, \"NIL\" <x@[1.2.3.4]>, (c1) plain@x.test (c2)\n"
	"Bcc: =?UTF-8?Q?J=C3=B6rg?= <joerg@x.de>, J\xc3\xb6rg <j@x.de>\n"
	"Subject: Gr\xc3\xbc\xc3\x9f" "e\n"
	"Message-ID: <folded@\n"
	" x.test>\n"
	"\n"
	"body\n";

static const char msg_cte[] =
	"From: x@example.com\n"
	"Content-Type: multipart/mixed; boundary=x\n"
	"\n"
	"--x\n"
	"Content-Type: application/octet-stream\n"
	"Content-Transfer-Encoding: x-uuencode\n"
	"\n"
	"begin 644 a\n"
	"--x\n"
	"Content-Type: application/octet-stream\n"
	"Content-Transfer-Encoding: Base64\n"
	"\n"
	"AEJD\n"
	"--x\n"
	"Content-Type: text/plain; charset=iso-8859-1; name=\"caf\xe9.txt\"\n"
	"Content-Transfer-Encoding: quoted-printable\n"
	"\n"
	"a=3Db=20\n"
	"c=\n"
	"--x--\n";

static const char msg_top_rfc822[] =
	"From: outer@example.com\n"
	"Content-Type: message/rfc822\n"
	"\n"
	"From: inner@example.com\n"
	"Subject: in\n"
	"\n"
	"body\n";

static const char msg_encoded_rfc822[] =
	"From: a@example.com\n"
	"Content-Type: multipart/mixed; boundary=q\n"
	"\n"
	"--q\n"
	"Content-Type: message/rfc822\n"
	"Content-Transfer-Encoding: base64\n"
	"\n"
	"RnJvbTogeEB5DQoNCmhpDQo=\n"
	"--q--\n";

static const char msg_header_only[] =
	"Subject: only\n"
	"x-a: 1\n"
	"X-B: folded\n"
	"\tvalue";

static const char msg_headers[] =
	"Received: from a by b; Mon, 1 Jan 2024 00:00:00 +0000\n"
	"Subject: hello\n"
	"received: from c\n"
	"\tby d; Mon, 1 Jan 2024 00:00:01 +0000\n"
	"garbage line without colon\n"
	"X-Empty:\n"
	"From: a@b.example\n"
	"\n"
	"body\n";

static const char msg_params_8bit[] =
	"From: x@example.com\n"
	"Content-Type: text/plain; charset=utf-8; name=\"r\xc3\xa9sum\xc3\xa9.txt\"\n"
	"Content-Disposition: attachment; filename*=utf-8''%C3%A9t%C3%A9.txt\n"
	"Content-Description: caf\xc3\xa9\n"
	"Content-ID: <id\"q\\@x>\n"
	"\n"
	"x\n";

/* ---- helpers ---- */

static char *to_crlf(const char *s, size_t *len_r)
{
	struct buf b;
	buf_init(&b, SIZE_MAX / 2);
	for (const char *p = s; *p != '\0'; p++) {
		if (*p == '\n')
			assert_int_equal(buf_append(&b, "\r", 1), 0);
		assert_int_equal(buf_append(&b, p, 1), 0);
	}
	return buf_steal(&b, len_r);
}

static char *copy_lf(const char *s, size_t *len_r)
{
	*len_r = strlen(s);
	/* an exact-size copy so that ASan catches a read past the message */
	char *c = xmalloc(*len_r ? *len_r : 1);
	memcpy(c, s, *len_r);
	return c;
}

static struct mime_message *parse(const char *msg, size_t len, unsigned max_depth)
{
	struct mime_limits lim = mime_limits_default;
	if (max_depth > 0)
		lim.max_depth = max_depth;
	return mime_parse(msg, len, &lim);
}

static void render(struct buf *out, const char *msg, size_t len, const struct mime_message *m,
		   const char *item, bool utf8)
{
	if (strcmp(item, "ENVELOPE") == 0) {
		assert_int_equal(imap_envelope(out, msg, len, m, 0), 0);
		return;
	}
	if (strcmp(item, "BODY") == 0 || strcmp(item, "BODYSTRUCTURE") == 0) {
		assert_int_equal(imap_bodystructure(out, msg, len, m, 0, item[4] != '\0', utf8), 0);
		return;
	}
	struct imap_fetch_section sec;
	const char *error = NULL;
	if (imap_fetch_section_parse(item, strlen(item), &sec, &error) < 0)
		fail_msg("bad item %s: %s", item, error);
	assert_int_equal(imap_fetch_item_name(out, &sec), 0);
	assert_int_equal(buf_append_str(out, " "), 0);
	if (sec.kind == IMAP_FETCH_BODY) {
		struct buf scratch;
		const char *p = (const char *)1;
		size_t n = 99;
		buf_init(&scratch, 1 << 20);
		/* something already in scratch must be left alone */
		assert_int_equal(buf_append_str(&scratch, "junk"), 0);
		int r = imap_section_get(msg, len, m, &sec, &scratch, &p, &n);
		if (r == 1) {
			assert_null(p);
			assert_int_equal(n, 0);
			assert_int_equal(buf_append_str(out, "NONE"), 0);
		} else {
			assert_int_equal(r, 0);
			imap_partial(&sec, &p, &n);
			assert_int_equal(imap_write_string_mode(out, p, n, utf8), 0);
		}
		assert_memory_equal(scratch.data, "junk", 4);
		buf_free(&scratch);
		return;
	}
	struct buf bin;
	buf_init(&bin, 1 << 20);
	int r = imap_binary_get(msg, len, m, &sec, &bin);
	if (r != IMAP_BINARY_OK) {
		assert_int_equal(bin.len, 0);
		assert_int_equal(buf_printf(out, "ERR %d", r), 0);
	} else if (sec.kind == IMAP_FETCH_BINARY_SIZE) {
		assert_int_equal(buf_printf(out, "%zu", bin.len), 0);
	} else {
		const char *p = bin.data != NULL ? bin.data : "";
		size_t n = bin.len;
		imap_partial(&sec, &p, &n);
		assert_int_equal(imap_write_literal8(out, p, n), 0);
	}
	buf_free(&bin);
}

/* Show bytes as a C string for failure messages. */
static char *c_escape(const char *s, size_t len)
{
	struct buf b;
	buf_init(&b, SIZE_MAX / 2);
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c == '\r')
			buf_append_str(&b, "\\r");
		else if (c == '\n')
			buf_append_str(&b, "\\n");
		else if (c == '"' || c == '\\')
			buf_printf(&b, "\\%c", c);
		else if (c < 0x20 || c >= 0x7f)
			buf_printf(&b, "\\%03o", c);
		else
			buf_append(&b, &c, 1);
	}
	return buf_steal(&b, NULL);
}

/* ---- fetch cases ---- */

enum {
	LF = 1 << 0,            /* keep LF line ends */
	UTF8 = 1 << 1,          /* the client enabled UTF8=ACCEPT */
	DEPTH1 = 1 << 2,        /* MIME parser max_depth 1 */
};

struct fetch_case {
	const char *msg;
	const char *item;
	unsigned flags;
	const char *want;
};

#define NIL_ENV "(NIL NIL NIL NIL NIL NIL NIL NIL NIL NIL)"

static const struct fetch_case fetch_cases[] = {
	{msg_simple, "ENVELOPE", 0,
	 "(\"Mon, 7 Feb 1994 21:52:25 -0800 (PST)\" \"afternoon meeting\" ((\"Fred Foobar\" "
	 "NIL \"foobar\" \"Blurdybloop.example\")) ((\"Fred Foobar\" NIL \"foobar\" "
	 "\"Blurdybloop.example\")) ((\"Fred Foobar\" NIL \"foobar\" \"Blurdybloop.example\")) "
	 "((NIL NIL \"mooch\" \"owatagu.siam.example\")) NIL NIL NIL "
	 "\"<B27397-0100000@Blurdybloop.example>\")"},
	{msg_simple, "BODY", 0,
	 "(\"TEXT\" \"PLAIN\" (\"CHARSET\" \"US-ASCII\") NIL NIL \"7BIT\" 55 1)"},
	{msg_simple, "BODYSTRUCTURE", 0,
	 "(\"TEXT\" \"PLAIN\" (\"CHARSET\" \"US-ASCII\") NIL NIL \"7BIT\" 55 1 NIL NIL NIL "
	 "NIL)"},
	{msg_simple, "BODY[]", 0,
	 "BODY[] {322}\r\n"
	 "Date: Mon, 7 Feb 1994 21:52:25 -0800 (PST)\r\n"
	 "From: Fred Foobar <foobar@Blurdybloop.example>\r\n"
	 "Subject: afternoon meeting\r\n"
	 "To: mooch@owatagu.siam.example\r\n"
	 "Message-Id: <B27397-0100000@Blurdybloop.example>\r\n"
	 "MIME-Version: 1.0\r\n"
	 "Content-Type: TEXT/PLAIN; CHARSET=US-ASCII\r\n"
	 "\r\n"
	 "Hello Joe, do you think we can meet at 3:30 tomorrow?\r\n"},
	{msg_simple, "BODY[HEADER]", 0,
	 "BODY[HEADER] {267}\r\n"
	 "Date: Mon, 7 Feb 1994 21:52:25 -0800 (PST)\r\n"
	 "From: Fred Foobar <foobar@Blurdybloop.example>\r\n"
	 "Subject: afternoon meeting\r\n"
	 "To: mooch@owatagu.siam.example\r\n"
	 "Message-Id: <B27397-0100000@Blurdybloop.example>\r\n"
	 "MIME-Version: 1.0\r\n"
	 "Content-Type: TEXT/PLAIN; CHARSET=US-ASCII\r\n"
	 "\r\n"},
	{msg_simple, "BODY.PEEK[HEADER.FIELDS (from to CC)]", 0,
	 "BODY[HEADER.FIELDS (FROM TO CC)] {82}\r\n"
	 "From: Fred Foobar <foobar@Blurdybloop.example>\r\n"
	 "To: mooch@owatagu.siam.example\r\n"
	 "\r\n"},
	{msg_simple, "BODY[HEADER.FIELDS.NOT (Date Message-ID \"Content-Type\" MIME-Version)]", 0,
	 "BODY[HEADER.FIELDS.NOT (DATE MESSAGE-ID CONTENT-TYPE MIME-VERSION)] {110}\r\n"
	 "From: Fred Foobar <foobar@Blurdybloop.example>\r\n"
	 "Subject: afternoon meeting\r\n"
	 "To: mooch@owatagu.siam.example\r\n"
	 "\r\n"},
	{msg_simple, "BODY[HEADER.FIELDS (X-None)]", 0,
	 "BODY[HEADER.FIELDS (X-NONE)] {2}\r\n"
	 "\r\n"},
	{msg_simple, "BODY[TEXT]", 0,
	 "BODY[TEXT] {55}\r\n"
	 "Hello Joe, do you think we can meet at 3:30 tomorrow?\r\n"},
	{msg_simple, "BODY[1]", 0,
	 "BODY[1] {55}\r\n"
	 "Hello Joe, do you think we can meet at 3:30 tomorrow?\r\n"},
	{msg_simple, "BODY[1.MIME]<0.27>", 0, "BODY[1.MIME]<0> \"Date: Mon, 7 Feb 1994 21:52\""},
	{msg_simple, "BODY[1]<6.3>", 0, "BODY[1]<6> \"Joe\""},
	{msg_simple, "BODY[1]<50.100>", 0,
	 "BODY[1]<50> {5}\r\n"
	 "ow?\r\n"},
	{msg_simple, "BODY[1]<55.1>", 0, "BODY[1]<55> \"\""},
	{msg_simple, "BODY[1]<4000.1>", 0, "BODY[1]<4000> \"\""},
	{msg_simple, "BODY[1.HEADER]", 0, "BODY[1.HEADER] NONE"},
	{msg_simple, "BODY[1.TEXT]", 0, "BODY[1.TEXT] NONE"},
	{msg_simple, "BODY[2]", 0, "BODY[2] NONE"},
	{msg_simple, "BODY[1.1]", 0, "BODY[1.1] NONE"},
	{msg_simple, "BINARY[1]<0.5>", 0,
	 "BINARY[1]<0> {5}\r\n"
	 "Hello"},
	{msg_simple, "BINARY.SIZE[1]", 0, "BINARY.SIZE[1] 55"},
	{msg_simple, "BINARY.PEEK[2]", 0, "BINARY[2] ERR 1"},
	{msg_simple, "BODY", LF,
	 "(\"TEXT\" \"PLAIN\" (\"CHARSET\" \"US-ASCII\") NIL NIL \"7BIT\" 54 1)"},
	{msg_simple, "BODY[HEADER.FIELDS (Subject)]", LF,
	 "BODY[HEADER.FIELDS (SUBJECT)] {28}\r\n"
	 "Subject: afternoon meeting\n"
	 "\n"},
	{msg_no_ct, "ENVELOPE", 0,
	 "(NIL \"no type\" ((NIL NIL \"a\" \"b.example\")) ((NIL NIL \"a\" \"b.example\")) "
	 "((NIL NIL \"a\" \"b.example\")) NIL NIL NIL NIL NIL)"},
	{msg_no_ct, "BODYSTRUCTURE", 0,
	 "(\"TEXT\" \"PLAIN\" (\"CHARSET\" \"US-ASCII\") NIL NIL \"7BIT\" 11 2 NIL NIL NIL "
	 "NIL)"},
	{msg_no_ct, "BODY[1.MIME]", 0,
	 "BODY[1.MIME] {39}\r\n"
	 "From: a@b.example\r\n"
	 "Subject: no type\r\n"
	 "\r\n"},
	{msg_alt_related, "ENVELOPE", 0,
	 "(NIL \"alt\" ((\"Joe Q. Public\" NIL \"john.q.public\" \"example.com\")) ((\"Joe Q. "
	 "Public\" NIL \"john.q.public\" \"example.com\")) ((\"Joe Q. Public\" NIL "
	 "\"john.q.public\" \"example.com\")) ((\"Mary Smith\" NIL \"mary\" \"x.test\")(NIL "
	 "NIL \"jdoe\" \"example.org\")(\"Who?\" NIL \"one\" \"y.test\")) NIL NIL NIL NIL)"},
	{msg_alt_related, "BODY", 0,
	 "((\"TEXT\" \"PLAIN\" (\"CHARSET\" \"utf-8\") NIL NIL \"QUOTED-PRINTABLE\" 15 "
	 "2)((\"TEXT\" \"HTML\" (\"CHARSET\" \"utf-8\") NIL NIL \"7BIT\" 32 1)(\"IMAGE\" "
	 "\"PNG\" (\"NAME\" \"dot.png\") \"<img1@x>\" NIL \"BASE64\" 12) \"RELATED\") "
	 "\"ALTERNATIVE\")"},
	{msg_alt_related, "BODYSTRUCTURE", 0,
	 "((\"TEXT\" \"PLAIN\" (\"CHARSET\" \"utf-8\") NIL NIL \"QUOTED-PRINTABLE\" 15 2 NIL "
	 "NIL NIL NIL)((\"TEXT\" \"HTML\" (\"CHARSET\" \"utf-8\") NIL NIL \"7BIT\" 32 1 NIL "
	 "NIL NIL NIL)(\"IMAGE\" \"PNG\" (\"NAME\" \"dot.png\") \"<img1@x>\" NIL \"BASE64\" 12 "
	 "NIL (\"INLINE\" (\"FILENAME\" \"dot.png\")) NIL NIL) \"RELATED\" (\"BOUNDARY\" "
	 "\"rel\" \"TYPE\" \"text/html\") NIL NIL NIL) \"ALTERNATIVE\" (\"BOUNDARY\" \"alt\") "
	 "NIL NIL NIL)"},
	{msg_alt_related, "BODY[1]", 0,
	 "BODY[1] {15}\r\n"
	 "Caf=C3=A9 =\r\n"
	 "ok"},
	{msg_alt_related, "BODY[2]", 0,
	 "BODY[2] {260}\r\n"
	 "--rel\r\n"
	 "Content-Type: text/html; charset=utf-8\r\n"
	 "\r\n"
	 "<p>Hi <img src=\"cid:img1@x\"></p>\r\n"
	 "--rel\r\n"
	 "Content-Type: image/png; name=\"dot.png\"\r\n"
	 "Content-ID: <img1@x>\r\n"
	 "Content-Transfer-Encoding: base64\r\n"
	 "Content-Disposition: inline; filename=\"dot.png\"\r\n"
	 "\r\n"
	 "iVBORw0KGgo=\r\n"
	 "--rel--"},
	{msg_alt_related, "BODY[2.2.MIME]", 0,
	 "BODY[2.2.MIME] {149}\r\n"
	 "Content-Type: image/png; name=\"dot.png\"\r\n"
	 "Content-ID: <img1@x>\r\n"
	 "Content-Transfer-Encoding: base64\r\n"
	 "Content-Disposition: inline; filename=\"dot.png\"\r\n"
	 "\r\n"},
	{msg_alt_related, "BODY[2.1]", 0, "BODY[2.1] \"<p>Hi <img src=\\\"cid:img1@x\\\"></p>\""},
	{msg_alt_related, "BODY[2.3]", 0, "BODY[2.3] NONE"},
	{msg_alt_related, "BODY[TEXT]<0.15>", 0,
	 "BODY[TEXT]<0> {15}\r\n"
	 "preamble\r\n"
	 "--alt"},
	{msg_alt_related, "BODY[2.HEADER]", 0, "BODY[2.HEADER] NONE"},
	{msg_alt_related, "BINARY[1]", 0,
	 "BINARY[1] {8}\r\n"
	 "Caf\303\251 ok"},
	{msg_alt_related, "BINARY.SIZE[1]", 0, "BINARY.SIZE[1] 8"},
	{msg_alt_related, "BINARY[2.2]", 0,
	 "BINARY[2.2] {8}\r\n"
	 "\211PNG\r\n"
	 "\032\n"},
	{msg_alt_related, "BINARY[2.2]<1.3>", 0,
	 "BINARY[2.2]<1> {3}\r\n"
	 "PNG"},
	{msg_alt_related, "BINARY[2]", 0, "BINARY[2] ERR -3"},
	{msg_alt_related, "BINARY.SIZE[2.1]", 0, "BINARY.SIZE[2.1] 32"},
	{msg_alt_related, "BODYSTRUCTURE", LF,
	 "((\"TEXT\" \"PLAIN\" (\"CHARSET\" \"utf-8\") NIL NIL \"QUOTED-PRINTABLE\" 14 2 NIL "
	 "NIL NIL NIL)((\"TEXT\" \"HTML\" (\"CHARSET\" \"utf-8\") NIL NIL \"7BIT\" 32 1 NIL "
	 "NIL NIL NIL)(\"IMAGE\" \"PNG\" (\"NAME\" \"dot.png\") \"<img1@x>\" NIL \"BASE64\" 12 "
	 "NIL (\"INLINE\" (\"FILENAME\" \"dot.png\")) NIL NIL) \"RELATED\" (\"BOUNDARY\" "
	 "\"rel\" \"TYPE\" \"text/html\") NIL NIL NIL) \"ALTERNATIVE\" (\"BOUNDARY\" \"alt\") "
	 "NIL NIL NIL)"},
	{msg_attachment, "ENVELOPE", 0,
	 "(NIL \"report\" ((\"Pete\" NIL \"pete\" \"silly.example\")) ((\"Pete\" NIL \"pete\" "
	 "\"silly.example\")) ((\"Pete\" NIL \"pete\" \"silly.example\")) "
	 "((\"Giant; \\\"Big\\\" Box\" NIL \"sysservices\" \"example.net\")) NIL NIL NIL NIL)"},
	{msg_attachment, "BODY", 0,
	 "((\"TEXT\" \"PLAIN\" (\"CHARSET\" \"US-ASCII\") NIL NIL \"7BIT\" 13 "
	 "1)(\"APPLICATION\" \"OCTET-STREAM\" (\"NAME\" \"=?UTF-8?B?5pel5pysLnR4dA==?=\") NIL "
	 "\"the report\" \"BASE64\" 8) \"MIXED\")"},
	{msg_attachment, "BODYSTRUCTURE", 0,
	 "((\"TEXT\" \"PLAIN\" (\"CHARSET\" \"US-ASCII\") NIL NIL \"7BIT\" 13 1 NIL NIL NIL "
	 "NIL)(\"APPLICATION\" \"OCTET-STREAM\" (\"NAME\" \"=?UTF-8?B?5pel5pysLnR4dA==?=\") "
	 "NIL \"the report\" \"BASE64\" 8 \"Q2hlY2sgSW50ZWdyaXR5IQ==\" (\"ATTACHMENT\" "
	 "(\"FILENAME\" \"=?UTF-8?B?5pel5pysLnR4dA==?=\" \"SIZE\" \"3\")) (\"en\" \"fr\") "
	 "\"http://example.com/r.txt\") \"MIXED\" (\"BOUNDARY\" \"mix\") NIL \"en\" NIL)"},
	{msg_attachment, "BODYSTRUCTURE", UTF8,
	 "((\"TEXT\" \"PLAIN\" (\"CHARSET\" \"US-ASCII\") NIL NIL \"7BIT\" 13 1 NIL NIL NIL "
	 "NIL)(\"APPLICATION\" \"OCTET-STREAM\" (\"NAME\" \"\346\227\245\346\234\254.txt\") "
	 "NIL \"the report\" \"BASE64\" 8 \"Q2hlY2sgSW50ZWdyaXR5IQ==\" (\"ATTACHMENT\" "
	 "(\"FILENAME\" \"\346\227\245\346\234\254.txt\" \"SIZE\" \"3\")) (\"en\" \"fr\") "
	 "\"http://example.com/r.txt\") \"MIXED\" (\"BOUNDARY\" \"mix\") NIL \"en\" NIL)"},
	{msg_attachment, "BODY[2.MIME]", 0,
	 "BODY[2.MIME] {340}\r\n"
	 "Content-Type: application/octet-stream; name*=UTF-8''%E6%97%A5%E6%9C%AC.txt\r\n"
	 "Content-Disposition: attachment; filename*=UTF-8''%E6%97%A5%E6%9C%AC.txt;\r\n"
	 " size=3\r\n"
	 "Content-Description: the report\r\n"
	 "Content-Language: en, fr\r\n"
	 "Content-Location: http://example.com/r.txt\r\n"
	 "Content-MD5: Q2hlY2sgSW50ZWdyaXR5IQ==\r\n"
	 "Content-Transfer-Encoding: base64\r\n"
	 "\r\n"},
	{msg_attachment, "BINARY[2]", 0,
	 "BINARY[2] {6}\r\n"
	 "\346\227\245\346\234\254"},
	{msg_forward, "BODYSTRUCTURE", 0,
	 "((\"TEXT\" \"PLAIN\" (\"CHARSET\" \"US-ASCII\") NIL NIL \"7BIT\" 9 1 NIL NIL NIL "
	 "NIL)(\"MESSAGE\" \"RFC822\" NIL NIL NIL \"7BIT\" 190 (NIL \"inner\" ((NIL NIL "
	 "\"inner\" \"example.com\")) ((NIL NIL \"inner\" \"example.com\")) ((NIL NIL "
	 "\"inner\" \"example.com\")) NIL NIL NIL NIL NIL) ((\"TEXT\" \"PLAIN\" (\"CHARSET\" "
	 "\"US-ASCII\") NIL NIL \"7BIT\" 5 1 NIL NIL NIL NIL)(\"TEXT\" \"HTML\" (\"CHARSET\" "
	 "\"US-ASCII\") NIL NIL \"7BIT\" 11 1 NIL NIL NIL NIL) \"ALTERNATIVE\" (\"BOUNDARY\" "
	 "\"in\") NIL NIL NIL) 13 NIL NIL NIL NIL) \"MIXED\" (\"BOUNDARY\" \"outer\") NIL NIL "
	 "NIL)"},
	{msg_forward, "BODY", LF,
	 "((\"TEXT\" \"PLAIN\" (\"CHARSET\" \"US-ASCII\") NIL NIL \"7BIT\" 9 1)(\"MESSAGE\" "
	 "\"RFC822\" NIL NIL NIL \"7BIT\" 177 (NIL \"inner\" ((NIL NIL \"inner\" "
	 "\"example.com\")) ((NIL NIL \"inner\" \"example.com\")) ((NIL NIL \"inner\" "
	 "\"example.com\")) NIL NIL NIL NIL NIL) ((\"TEXT\" \"PLAIN\" (\"CHARSET\" "
	 "\"US-ASCII\") NIL NIL \"7BIT\" 5 1)(\"TEXT\" \"HTML\" (\"CHARSET\" \"US-ASCII\") NIL "
	 "NIL \"7BIT\" 11 1) \"ALTERNATIVE\") 13) \"MIXED\")"},
	{msg_forward, "BODY[2]", 0,
	 "BODY[2] {190}\r\n"
	 "From: inner@example.com\r\n"
	 "Subject: inner\r\n"
	 "Content-Type: multipart/alternative; boundary=\"in\"\r\n"
	 "\r\n"
	 "--in\r\n"
	 "Content-Type: text/plain\r\n"
	 "\r\n"
	 "plain\r\n"
	 "--in\r\n"
	 "Content-Type: text/html\r\n"
	 "\r\n"
	 "<b>html</b>\r\n"
	 "--in--\r\n"},
	{msg_forward, "BODY[2.HEADER]", 0,
	 "BODY[2.HEADER] {95}\r\n"
	 "From: inner@example.com\r\n"
	 "Subject: inner\r\n"
	 "Content-Type: multipart/alternative; boundary=\"in\"\r\n"
	 "\r\n"},
	{msg_forward, "BODY[2.HEADER.FIELDS (SUBJECT)]", 0,
	 "BODY[2.HEADER.FIELDS (SUBJECT)] {18}\r\n"
	 "Subject: inner\r\n"
	 "\r\n"},
	{msg_forward, "BODY[2.TEXT]<0.6>", 0,
	 "BODY[2.TEXT]<0> {6}\r\n"
	 "--in\r\n"},
	{msg_forward, "BODY[2.MIME]", 0,
	 "BODY[2.MIME] {32}\r\n"
	 "Content-Type: message/rfc822\r\n"
	 "\r\n"},
	{msg_forward, "BODY[2.1]", 0, "BODY[2.1] \"plain\""},
	{msg_forward, "BODY[2.2.MIME]", 0,
	 "BODY[2.2.MIME] {27}\r\n"
	 "Content-Type: text/html\r\n"
	 "\r\n"},
	{msg_forward, "BODY[2.1.HEADER]", 0, "BODY[2.1.HEADER] NONE"},
	{msg_forward, "BODY[1.HEADER]", 0, "BODY[1.HEADER] NONE"},
	{msg_forward, "BODY[3]", 0, "BODY[3] NONE"},
	{msg_forward, "BINARY[2]", 0,
	 "BINARY[2] {190}\r\n"
	 "From: inner@example.com\r\n"
	 "Subject: inner\r\n"
	 "Content-Type: multipart/alternative; boundary=\"in\"\r\n"
	 "\r\n"
	 "--in\r\n"
	 "Content-Type: text/plain\r\n"
	 "\r\n"
	 "plain\r\n"
	 "--in\r\n"
	 "Content-Type: text/html\r\n"
	 "\r\n"
	 "<b>html</b>\r\n"
	 "--in--\r\n"},
	{msg_forward, "BODYSTRUCTURE", DEPTH1,
	 "((\"TEXT\" \"PLAIN\" (\"CHARSET\" \"US-ASCII\") NIL NIL \"7BIT\" 9 1 NIL NIL NIL "
	 "NIL)(\"MESSAGE\" \"RFC822\" NIL NIL NIL \"7BIT\" 190 (NIL \"inner\" ((NIL NIL "
	 "\"inner\" \"example.com\")) ((NIL NIL \"inner\" \"example.com\")) ((NIL NIL "
	 "\"inner\" \"example.com\")) NIL NIL NIL NIL NIL) (\"TEXT\" \"PLAIN\" (\"CHARSET\" "
	 "\"US-ASCII\") NIL NIL \"7BIT\" 95 9) 13 NIL NIL NIL NIL) \"MIXED\" (\"BOUNDARY\" "
	 "\"outer\") NIL NIL NIL)"},
	{msg_forward, "BODY[2.HEADER]", DEPTH1,
	 "BODY[2.HEADER] {95}\r\n"
	 "From: inner@example.com\r\n"
	 "Subject: inner\r\n"
	 "Content-Type: multipart/alternative; boundary=\"in\"\r\n"
	 "\r\n"},
	{msg_forward, "BODY[2.TEXT]<0.4>", DEPTH1, "BODY[2.TEXT]<0> \"--in\""},
	{msg_japanese, "ENVELOPE", 0,
	 "(NIL \"=?ISO-2022-JP?B?GyRCRnxLXDhsGyhC?=\" ((\"=?ISO-2022-JP?B?GyRCOzNFRBsoQg==?=\" "
	 "NIL \"yamada\" \"example.jp\")) ((\"=?ISO-2022-JP?B?GyRCOzNFRBsoQg==?=\" NIL "
	 "\"yamada\" \"example.jp\")) ((\"=?ISO-2022-JP?B?GyRCOzNFRBsoQg==?=\" NIL \"yamada\" "
	 "\"example.jp\")) ((NIL NIL \"suzuki\" \"example.jp\")) NIL NIL NIL NIL)"},
	{msg_japanese, "BODYSTRUCTURE", 0,
	 "(\"TEXT\" \"PLAIN\" (\"CHARSET\" \"ISO-2022-JP\") NIL NIL \"7BIT\" 18 1 NIL NIL NIL "
	 "NIL)"},
	{msg_japanese, "BODY[TEXT]", 0,
	 "BODY[TEXT] {18}\r\n"
	 "\033$B$3$s$K$A$O\033(B\r\n"},
	{msg_japanese, "BINARY[1]", 0,
	 "BINARY[1] {18}\r\n"
	 "\033$B$3$s$K$A$O\033(B\r\n"},
	{msg_no_boundary, "BODY", 0,
	 "((\"TEXT\" \"PLAIN\" (\"CHARSET\" \"US-ASCII\") NIL NIL \"7BIT\" 0 0) \"MIXED\")"},
	{msg_no_boundary, "BODYSTRUCTURE", 0,
	 "((\"TEXT\" \"PLAIN\" (\"CHARSET\" \"US-ASCII\") NIL NIL \"7BIT\" 0 0) \"MIXED\" "
	 "(\"BOUNDARY\" \"nowhere\") NIL NIL NIL)"},
	{msg_no_boundary, "BODY[1]", 0, "BODY[1] NONE"},
	{msg_no_boundary, "BODY[TEXT]", 0,
	 "BODY[TEXT] {47}\r\n"
	 "--elsewhere\r\n"
	 "Content-Type: text/plain\r\n"
	 "\r\n"
	 "text\r\n"},
	{msg_no_close, "BODY", 0,
	 "((\"TEXT\" \"PLAIN\" (\"CHARSET\" \"US-ASCII\") NIL NIL \"7BIT\" 3 1)(\"TEXT\" "
	 "\"PLAIN\" (\"CHARSET\" \"US-ASCII\") NIL NIL \"7BIT\" 19 1) \"MIXED\")"},
	{msg_no_close, "BODY[2]", 0,
	 "BODY[2] {19}\r\n"
	 "two, never closed\r\n"},
	{msg_addresses, "ENVELOPE", 0,
	 "(\"odd\" \"\" ((NIL NIL \"Undisclosed recipients\" NIL)(NIL NIL NIL NIL)) ((NIL NIL "
	 "\"Undisclosed recipients\" NIL)(NIL NIL NIL NIL)) ((NIL NIL \"broken\" \"\")) ((NIL "
	 "NIL \"A Group\" NIL)(\"Ed Jones\" NIL \"c\" \"a.test\")(NIL NIL \"joe\" "
	 "\"where.test\")(\"John\" NIL \"jdoe\" \"one.test\")(NIL NIL NIL NIL)(NIL NIL "
	 "\"solo\" \"x.test\")) ((\"Doe, John\" \"@route1,@route2\" \"jd\" "
	 "\"[192.0.2.1]\")(\"Foo Bar\" NIL \"foo\" \"bar\")(NIL NIL \"nodomain\" \"\")(NIL NIL "
	 "\"\" \"\")) NIL \"<a@b>\" NIL)"},
	{msg_odd_from, "ENVELOPE", 0,
	 "(NIL {7}\r\n"
	 "Gr\303\274\303\237e ((NIL NIL \"\\\"unterminated <x@y>\" \"\")) ((\"John Smith\" NIL "
	 "\"js\" \"x.test\")) ((NIL NIL \"a\" \"b@c\")(NIL NIL \"\" \"@\")(NIL NIL "
	 "\"\\\"q\\\\\\\\\\\"\" \"d\")(\"Mr. J. Q. Public\" NIL \"jqp\" \"x.test\")) ((NIL NIL "
	 "\"g1\" NIL)(NIL NIL \"a\" \"x.test\")(NIL NIL NIL NIL)(NIL NIL \"g2\" NIL)(NIL NIL "
	 "NIL NIL)(NIL NIL \"nested\" \"x.test\")(NIL NIL \"\\\"quoted local\\\"\" "
	 "\"x.test\")) ((\"NIL\" NIL \"nil\" \"x.test\")(\"NIL\" NIL \"x\" "
	 "\"[1.2.3.4]\")(\"c1\" NIL \"plain\" \"x.test\")) ((\"=?UTF-8?Q?J=C3=B6rg?=\" NIL "
	 "\"joerg\" \"x.de\")({5}\r\n"
	 "J\303\266rg NIL \"j\" \"x.de\")) NIL \"<folded@ x.test>\")"},
	{msg_cte, "BODYSTRUCTURE", 0,
	 "((\"APPLICATION\" \"OCTET-STREAM\" NIL NIL NIL \"x-uuencode\" 11 NIL NIL NIL "
	 "NIL)(\"APPLICATION\" \"OCTET-STREAM\" NIL NIL NIL \"BASE64\" 4 NIL NIL NIL "
	 "NIL)(\"TEXT\" \"PLAIN\" (\"CHARSET\" \"iso-8859-1\" \"NAME\" {8}\r\n"
	 "caf\351.txt) NIL NIL \"QUOTED-PRINTABLE\" 12 2 NIL NIL NIL NIL) \"MIXED\" "
	 "(\"BOUNDARY\" \"x\") NIL NIL NIL)"},
	{msg_cte, "BINARY[1]", 0, "BINARY[1] ERR -2"},
	{msg_cte, "BINARY.SIZE[1]", 0, "BINARY.SIZE[1] ERR -2"},
	{msg_cte, "BINARY.SIZE[2]", 0, "BINARY.SIZE[2] 3"},
	{msg_cte, "BINARY[3]", 0,
	 "BINARY[3] {7}\r\n"
	 "a=b \r\n"
	 "c"},
	{msg_cte, "BINARY[3]", LF,
	 "BINARY[3] {6}\r\n"
	 "a=b \n"
	 "c"},
	{msg_cte, "BINARY[4]", 0, "BINARY[4] ERR 1"},
	{msg_cte, "BINARY[]<0.20>", 0,
	 "BINARY[]<0> {20}\r\n"
	 "From: x@example.com\r"},
	{msg_cte, "BODY[1]", 0, "BODY[1] \"begin 644 a\""},
	{msg_top_rfc822, "BODYSTRUCTURE", 0,
	 "(\"MESSAGE\" \"RFC822\" NIL NIL NIL \"7BIT\" 46 (NIL \"in\" ((NIL NIL \"inner\" "
	 "\"example.com\")) ((NIL NIL \"inner\" \"example.com\")) ((NIL NIL \"inner\" "
	 "\"example.com\")) NIL NIL NIL NIL NIL) (\"TEXT\" \"PLAIN\" (\"CHARSET\" "
	 "\"US-ASCII\") NIL NIL \"7BIT\" 6 1 NIL NIL NIL NIL) 4 NIL NIL NIL NIL)"},
	{msg_top_rfc822, "BODY[1]", 0,
	 "BODY[1] {46}\r\n"
	 "From: inner@example.com\r\n"
	 "Subject: in\r\n"
	 "\r\n"
	 "body\r\n"},
	{msg_top_rfc822, "BODY[1.HEADER]", 0,
	 "BODY[1.HEADER] {40}\r\n"
	 "From: inner@example.com\r\n"
	 "Subject: in\r\n"
	 "\r\n"},
	{msg_top_rfc822, "BODY[1.TEXT]", 0,
	 "BODY[1.TEXT] {6}\r\n"
	 "body\r\n"},
	{msg_top_rfc822, "BODY[1.1]", 0,
	 "BODY[1.1] {6}\r\n"
	 "body\r\n"},
	{msg_top_rfc822, "BODY[1.1.MIME]", 0,
	 "BODY[1.1.MIME] {40}\r\n"
	 "From: inner@example.com\r\n"
	 "Subject: in\r\n"
	 "\r\n"},
	{msg_top_rfc822, "BODY[1.2]", 0, "BODY[1.2] NONE"},
	{msg_encoded_rfc822, "BODYSTRUCTURE", 0,
	 "((\"MESSAGE\" \"RFC822\" NIL NIL NIL \"BASE64\" 24 (NIL NIL NIL NIL NIL NIL NIL NIL "
	 "NIL NIL) (\"TEXT\" \"PLAIN\" (\"CHARSET\" \"US-ASCII\") NIL NIL \"7BIT\" 0 0) 1 NIL "
	 "NIL NIL NIL) \"MIXED\" (\"BOUNDARY\" \"q\") NIL NIL NIL)"},
	{msg_encoded_rfc822, "BODY[1.HEADER]", 0, "BODY[1.HEADER] NONE"},
	{msg_encoded_rfc822, "BODY[1.1]", 0, "BODY[1.1] NONE"},
	{msg_encoded_rfc822, "BINARY[1]", 0,
	 "BINARY[1] {17}\r\n"
	 "From: x@y\r\n"
	 "\r\n"
	 "hi\r\n"},
	{msg_header_only, "BODYSTRUCTURE", 0,
	 "(\"TEXT\" \"PLAIN\" (\"CHARSET\" \"US-ASCII\") NIL NIL \"7BIT\" 0 0 NIL NIL NIL NIL)"},
	{msg_header_only, "BODY[HEADER]", 0,
	 "BODY[HEADER] {42}\r\n"
	 "Subject: only\r\n"
	 "x-a: 1\r\n"
	 "X-B: folded\r\n"
	 "\011value"},
	{msg_header_only, "BODY[HEADER.FIELDS (x-b X-A)]", 0,
	 "BODY[HEADER.FIELDS (X-B X-A)] {31}\r\n"
	 "x-a: 1\r\n"
	 "X-B: folded\r\n"
	 "\011value\r\n"
	 "\r\n"},
	{msg_header_only, "BODY[HEADER.FIELDS.NOT (x-a)]", 0,
	 "BODY[HEADER.FIELDS.NOT (X-A)] {38}\r\n"
	 "Subject: only\r\n"
	 "X-B: folded\r\n"
	 "\011value\r\n"
	 "\r\n"},
	{msg_header_only, "BODY[TEXT]", 0, "BODY[TEXT] \"\""},
	{msg_header_only, "BODY[1]", 0, "BODY[1] \"\""},
	{msg_header_only, "BODY[HEADER.FIELDS (X-B)]", LF,
	 "BODY[HEADER.FIELDS (X-B)] {20}\r\n"
	 "X-B: folded\n"
	 "\011value\n"
	 "\n"},
	{msg_headers, "ENVELOPE", 0,
	 "(NIL \"hello\" ((NIL NIL \"a\" \"b.example\")) ((NIL NIL \"a\" \"b.example\")) ((NIL "
	 "NIL \"a\" \"b.example\")) NIL NIL NIL NIL NIL)"},
	{msg_headers, "BODY[HEADER.FIELDS (RECEIVED x-empty)]", 0,
	 "BODY[HEADER.FIELDS (RECEIVED X-EMPTY)] {124}\r\n"
	 "Received: from a by b; Mon, 1 Jan 2024 00:00:00 +0000\r\n"
	 "received: from c\r\n"
	 "\011by d; Mon, 1 Jan 2024 00:00:01 +0000\r\n"
	 "X-Empty:\r\n"
	 "\r\n"},
	{msg_headers, "BODY[HEADER.FIELDS.NOT (Received)]", 0,
	 "BODY[HEADER.FIELDS.NOT (RECEIVED)] {47}\r\n"
	 "Subject: hello\r\n"
	 "X-Empty:\r\n"
	 "From: a@b.example\r\n"
	 "\r\n"},
	{msg_headers, "BODY[HEADER.FIELDS (\"Received\")]<20.30>", 0,
	 "BODY[HEADER.FIELDS (RECEIVED)]<20> \"b; Mon, 1 Jan 2024 00:00:00 +0\""},
	{msg_headers, "BODY[HEADER.FIELDS (garbage)]", 0,
	 "BODY[HEADER.FIELDS (GARBAGE)] {2}\r\n"
	 "\r\n"},
	{msg_params_8bit, "BODYSTRUCTURE", 0,
	 "(\"TEXT\" \"PLAIN\" (\"CHARSET\" \"utf-8\" \"NAME\" "
	 "\"=?UTF-8?B?csOpc3Vtw6kudHh0?=\") \"<id\\\"q\\\\@x>\" {5}\r\n"
	 "caf\303\251 \"7BIT\" 3 1 NIL (\"ATTACHMENT\" (\"FILENAME\" "
	 "\"=?UTF-8?B?w6l0w6kudHh0?=\")) NIL NIL)"},
	{msg_params_8bit, "BODYSTRUCTURE", UTF8,
	 "(\"TEXT\" \"PLAIN\" (\"CHARSET\" \"utf-8\" \"NAME\" \"r\303\251sum\303\251.txt\") "
	 "\"<id\\\"q\\\\@x>\" \"caf\303\251\" \"7BIT\" 3 1 NIL (\"ATTACHMENT\" (\"FILENAME\" "
	 "\"\303\251t\303\251.txt\")) NIL NIL)"},
};

static void test_fetch(void **state)
{
	(void)state;
	size_t failed = 0;
	for (size_t i = 0; i < ARRAY_LEN(fetch_cases); i++) {
		const struct fetch_case *c = &fetch_cases[i];
		size_t len;
		char *msg = c->flags & LF ? copy_lf(c->msg, &len) : to_crlf(c->msg, &len);
		struct mime_message *m = parse(msg, len, c->flags & DEPTH1 ? 1 : 0);
		struct buf out;
		buf_init(&out, 1 << 20);
		render(&out, msg, len, m, c->item, c->flags & UTF8);
		const char *got = out.data != NULL ? out.data : "";
		if (c->want == NULL || out.len != strlen(c->want) || memcmp(got, c->want, out.len)) {
			char *e = c_escape(got, out.len);
			print_error("case %zu %s\n got: \"%s\"\n", i, c->item, e);
			free(e);
			failed++;
		}
		buf_free(&out);
		mime_message_free(&m);
		free(msg);
	}
	assert_int_equal(failed, 0);

	/* decoded NUL bytes need a literal8 */
	size_t len;
	char *msg = to_crlf(msg_cte, &len);
	struct mime_message *m = mime_parse(msg, len, NULL);
	struct buf out;
	buf_init(&out, 4096);
	render(&out, msg, len, m, "BINARY[2]", false);
	static const char want[] = "BINARY[2] ~{3}\r\n\0BC";
	assert_int_equal(out.len, sizeof(want) - 1);
	assert_memory_equal(out.data, want, sizeof(want) - 1);
	buf_free(&out);
	mime_message_free(&m);
	free(msg);

	/* ENVELOPE and BODYSTRUCTURE of an encapsulated message's own part */
	msg = to_crlf(msg_forward, &len);
	m = mime_parse(msg, len, NULL);
	assert_int_equal(m->n_parts, 6);
	assert_true(m->parts[3].flags & MIME_PART_MESSAGE);
	buf_init(&out, 4096);
	assert_int_equal(imap_envelope(&out, msg, len, m, 3), 0);
	assert_string_equal(out.data, "(NIL \"inner\" ((NIL NIL \"inner\" \"example.com\")) "
			    "((NIL NIL \"inner\" \"example.com\")) ((NIL NIL \"inner\" "
			    "\"example.com\")) NIL NIL NIL NIL NIL)");
	buf_reset(&out);
	assert_int_equal(imap_bodystructure(&out, msg, len, m, 3, false, false), 0);
	assert_string_equal(out.data, "((\"TEXT\" \"PLAIN\" (\"CHARSET\" \"US-ASCII\") NIL NIL "
			    "\"7BIT\" 5 1)(\"TEXT\" \"HTML\" (\"CHARSET\" \"US-ASCII\") NIL "
			    "NIL \"7BIT\" 11 1) \"ALTERNATIVE\")");
	buf_free(&out);
	mime_message_free(&m);
	free(msg);
}

/* ---- strings ---- */

enum str_fn { STR, NSTR, STR7, ASTR, LIT8 };

struct str_case {
	enum str_fn fn;
	const char *in;         /* NULL: NIL for NSTR */
	size_t len;             /* 0: strlen */
	const char *want;
	size_t want_len;        /* 0: strlen */
};

#define L(s) s, sizeof(s) - 1

static char long_text[IMAP_QUOTED_MAX + 2];

static const struct str_case str_cases[] = {
	{STR, "", 0, "\"\"", 0},
	{STR, "hello world", 0, "\"hello world\"", 0},
	{STR, "say \"hi\" \\o/", 0, "\"say \\\"hi\\\" \\\\o/\"", 0},
	{STR, "tab\there", 0, "\"tab\there\"", 0},
	{STR, "two\r\nlines", 0, "{10}\r\ntwo\r\nlines", 0},
	{STR, "lf\nonly", 0, "{7}\r\nlf\nonly", 0},
	{STR, "esc\033", 0, "{4}\r\nesc\033", 0},
	{STR, "del\177", 0, "{4}\r\ndel\177", 0},
	{STR, "caf\xc3\xa9", 0, "\"caf\xc3\xa9\"", 0},
	{STR, "bad \xc3(", 0, "{6}\r\nbad \xc3(", 0},
	{STR, "over\xc0\xaf", 0, "{6}\r\nover\xc0\xaf", 0},
	{STR7, "caf\xc3\xa9", 0, "{5}\r\ncaf\xc3\xa9", 0},
	{STR7, "plain \"q\"", 0, "\"plain \\\"q\\\"\"", 0},
	{NSTR, NULL, 0, "NIL", 0},
	{NSTR, "NIL", 0, "\"NIL\"", 0},
	{NSTR, "", 0, "\"\"", 0},
	{ASTR, "INBOX", 0, "INBOX", 0},
	{ASTR, "a]b", 0, "a]b", 0},
	{ASTR, "two words", 0, "\"two words\"", 0},
	{ASTR, "", 0, "\"\"", 0},
	{ASTR, "nil", 0, "\"nil\"", 0},
	{ASTR, "50%", 0, "\"50%\"", 0},
	{ASTR, "x{3}", 0, "\"x{3}\"", 0},
	{ASTR, "r\xc3\xa9", 0, "{3}\r\nr\xc3\xa9", 0},
	{LIT8, "no nul", 0, "{6}\r\nno nul", 0},
	{LIT8, L("a\0b"), L("~{3}\r\na\0b")},
	{LIT8, "", 0, "{0}\r\n", 0},
};

static void test_strings(void **state)
{
	(void)state;
	for (size_t i = 0; i < ARRAY_LEN(str_cases); i++) {
		const struct str_case *c = &str_cases[i];
		size_t len = c->len ? c->len : c->in ? strlen(c->in) : 0;
		size_t want_len = c->want_len ? c->want_len : strlen(c->want);
		struct buf out;
		int r = -1;
		buf_init(&out, 4096);
		assert_int_equal(buf_append_str(&out, ">"), 0);
		switch (c->fn) {
		case STR: r = imap_write_string(&out, c->in, len); break;
		case NSTR: r = imap_write_nstring(&out, c->in, len); break;
		case STR7: r = imap_write_string_mode(&out, c->in, len, false); break;
		case ASTR: r = imap_write_astring(&out, c->in, len); break;
		case LIT8: r = imap_write_literal8(&out, c->in, len); break;
		}
		assert_int_equal(r, 0);
		if (out.len != want_len + 1 || memcmp(out.data + 1, c->want, want_len) != 0) {
			char *e = c_escape(out.data + 1, out.len - 1);
			fail_msg("string case %zu got \"%s\"", i, e);
		}
		/* every prefix of the room fails cleanly */
		for (size_t max = 1; max < want_len + 1; max++) {
			struct buf small;
			buf_init(&small, max);
			assert_int_equal(buf_append_str(&small, ">"), 0);
			switch (c->fn) {
			case STR: r = imap_write_string(&small, c->in, len); break;
			case NSTR: r = imap_write_nstring(&small, c->in, len); break;
			case STR7: r = imap_write_string_mode(&small, c->in, len, false); break;
			case ASTR: r = imap_write_astring(&small, c->in, len); break;
			case LIT8: r = imap_write_literal8(&small, c->in, len); break;
			}
			assert_int_equal(r, -1);
			assert_int_equal(small.len, 1);
			assert_int_equal(small.data[1], '\0');
			buf_free(&small);
		}
		buf_free(&out);
	}
	/* the quoted length limit */
	struct buf out;
	buf_init(&out, 8192);
	memset(long_text, 'x', sizeof(long_text) - 1);
	assert_int_equal(imap_write_string(&out, long_text, IMAP_QUOTED_MAX), 0);
	assert_int_equal(out.len, IMAP_QUOTED_MAX + 2);
	assert_int_equal(out.data[0], '"');
	buf_reset(&out);
	assert_int_equal(imap_write_string(&out, long_text, IMAP_QUOTED_MAX + 1), 0);
	assert_memory_equal(out.data, "{1025}\r\nxxx", 11);
	assert_int_equal(out.len, IMAP_QUOTED_MAX + 1 + 8);
	buf_free(&out);
}

/* ---- item names ---- */

struct name_case {
	const char *spec;
	const char *want;
};

static const struct name_case name_cases[] = {
	{"BODY[]", "BODY[]"},
	{"BODY.PEEK[]", "BODY[]"},
	{"BODY[]<0.100>", "BODY[]<0>"},
	{"BODY.PEEK[1.2.3]<17.4>", "BODY[1.2.3]<17>"},
	{"BODY[HEADER]", "BODY[HEADER]"},
	{"BODY[2.HEADER]", "BODY[2.HEADER]"},
	{"BODY[TEXT]", "BODY[TEXT]"},
	{"BODY[4.1.MIME]", "BODY[4.1.MIME]"},
	{"BODY[HEADER.FIELDS (From To)]", "BODY[HEADER.FIELDS (FROM TO)]"},
	{"BODY.PEEK[HEADER.FIELDS (from \"x-spam\")]<0.1>", "BODY[HEADER.FIELDS (FROM X-SPAM)]<0>"},
	{"BODY[3.HEADER.FIELDS.NOT (Received)]", "BODY[3.HEADER.FIELDS.NOT (RECEIVED)]"},
	{"BODY[HEADER.FIELDS (\"a b\" \"]\" \"%\" \"nil\")]",
	 "BODY[HEADER.FIELDS (\"A B\" \"]\" \"%\" \"NIL\")]"},
	{"BINARY[1]", "BINARY[1]"},
	{"BINARY.PEEK[1.2]<5.5>", "BINARY[1.2]<5>"},
	{"BINARY[]", "BINARY[]"},
	{"BINARY.SIZE[3]", "BINARY.SIZE[3]"},
};

static void test_item_names(void **state)
{
	(void)state;
	for (size_t i = 0; i < ARRAY_LEN(name_cases); i++) {
		struct imap_fetch_section sec;
		const char *error;
		struct buf out;
		assert_int_equal(imap_fetch_section_parse(name_cases[i].spec,
							  strlen(name_cases[i].spec), &sec,
							  &error), 0);
		buf_init(&out, 4096);
		assert_int_equal(imap_fetch_item_name(&out, &sec), 0);
		if (strcmp(out.data, name_cases[i].want) != 0)
			fail_msg("%s: got %s want %s", name_cases[i].spec, out.data,
				 name_cases[i].want);
		for (size_t max = 0; max < out.len; max++) {
			struct buf small;
			buf_init(&small, max);
			assert_int_equal(imap_fetch_item_name(&small, &sec), -1);
			assert_int_equal(small.len, 0);
			buf_free(&small);
		}
		buf_free(&out);
	}
}

/* ---- partial ---- */

struct partial_case {
	uint32_t off, len;
	size_t have;
	size_t want_off, want_n;
};

static const struct partial_case partial_cases[] = {
	{0, 5, 10, 0, 5},
	{3, 5, 10, 3, 5},
	{8, 5, 10, 8, 2},
	{9, 1, 10, 9, 1},
	{10, 1, 10, 10, 0},
	{11, 4, 10, 10, 0},
	{UINT32_MAX, UINT32_MAX, 10, 10, 0},
	{0, UINT32_MAX, 10, 0, 10},
	{0, 1, 0, 0, 0},
};

static void test_partial(void **state)
{
	static const char data[] = "0123456789";
	(void)state;
	for (size_t i = 0; i < ARRAY_LEN(partial_cases); i++) {
		const struct partial_case *c = &partial_cases[i];
		struct imap_fetch_section sec;
		memset(&sec, 0, sizeof(sec));
		sec.partial = true;
		sec.partial_off = c->off;
		sec.partial_len = c->len;
		const char *p = data;
		size_t n = c->have;
		imap_partial(&sec, &p, &n);
		assert_ptr_equal(p, data + c->want_off);
		assert_int_equal(n, c->want_n);
	}
	/* no partial: untouched; a missing section stays NULL */
	struct imap_fetch_section sec;
	memset(&sec, 0, sizeof(sec));
	const char *p = data;
	size_t n = 10;
	imap_partial(&sec, &p, &n);
	assert_ptr_equal(p, data);
	assert_int_equal(n, 10);
	sec.partial = true;
	sec.partial_len = 4;
	p = NULL;
	n = 0;
	imap_partial(&sec, &p, &n);
	assert_null(p);
	assert_int_equal(n, 0);
}

/* ---- dates ---- */

struct date_out_case {
	int64_t t;
	const char *want;
};

static const struct date_out_case date_out_cases[] = {
	{0, "\" 1-Jan-1970 00:00:00 +0000\""},
	{760657945, "\" 7-Feb-1994 21:52:25 +0000\""},
	{951782400, "\"29-Feb-2000 00:00:00 +0000\""},
	{1709251199, "\"29-Feb-2024 23:59:59 +0000\""},
	{1735689599, "\"31-Dec-2024 23:59:59 +0000\""},
	{4107542400, "\" 1-Mar-2100 00:00:00 +0000\""},
	{-1, "\"31-Dec-1969 23:59:59 +0000\""},
	{-2208988800, "\" 1-Jan-1900 00:00:00 +0000\""},
	{INT64_MIN, "\" 1-Jan-0001 00:00:00 +0000\""},
	{INT64_MAX, "\"31-Dec-9999 23:59:59 +0000\""},
};

struct date_in_case {
	bool date_only;
	const char *in;
	int ok;
	int64_t t;
};

static const struct date_in_case date_in_cases[] = {
	{false, "17-Jul-1996 02:44:25 -0700", 0, 837596665},
	{false, "\"17-Jul-1996 02:44:25 -0700\"", 0, 837596665},
	{false, " 7-Feb-1994 21:52:25 -0800", 0, 760686745},
	{false, "7-feb-1994 21:52:25 -0800", 0, 760686745},
	{false, "07-FEB-1994 21:52:25 +0000", 0, 760657945},
	{false, "29-Feb-2000 00:00:00 +0130", 0, 951777000},
	{false, "01-Jan-1970 00:00:00 +0000", 0, 0},
	{false, "31-Dec-1969 23:59:60 +0000", 0, 0},
	{false, "29-Feb-1900 00:00:00 +0000", -1, 0},
	{false, "31-Apr-2020 00:00:00 +0000", -1, 0},
	{false, "00-Jan-2020 00:00:00 +0000", -1, 0},
	{false, "1-Jan-0000 00:00:00 +0000", -1, 0},
	{false, "1-Jan-2020 24:00:00 +0000", -1, 0},
	{false, "1-Jan-2020 23:60:00 +0000", -1, 0},
	{false, "1-Jan-2020 23:00:00 +0060", -1, 0},
	{false, "1-Jan-2020 23:00:00 0000", -1, 0},
	{false, "1-Jan-2020 23:00:00 +000", -1, 0},
	{false, "1-Jan-2020 23:00:00 +00000", -1, 0},
	{false, "1-Jan-2020 3:00:00 +0000", -1, 0},
	{false, "1-Jam-2020 23:00:00 +0000", -1, 0},
	{false, "1-Jan-20 23:00:00 +0000", -1, 0},
	{false, "123-Jan-2020 23:00:00 +0000", -1, 0},
	{false, "1-Jan-2020", -1, 0},
	{false, "\"1-Jan-2020 23:00:00 +0000", -1, 0},
	{false, "", -1, 0},
	{true, "1-Feb-1994", 0, 760060800},
	{true, "01-Feb-1994", 0, 760060800},
	{true, "\"1-Feb-1994\"", 0, 760060800},
	{true, "31-dec-9999", 0, 253402214400},
	{true, "1-Jan-0001", 0, -62135596800},
	{true, " 1-Feb-1994", -1, 0},
	{true, "1-Feb-1994 ", -1, 0},
	{true, "1-Feb", -1, 0},
	{true, "32-Jan-1994", -1, 0},
	{true, "1-Feb-94", -1, 0},
	{true, "", -1, 0},
};

static void test_dates(void **state)
{
	(void)state;
	for (size_t i = 0; i < ARRAY_LEN(date_out_cases); i++) {
		char out[32];
		memset(out, 'X', sizeof(out));
		imap_internaldate(date_out_cases[i].t, out);
		if (strcmp(out, date_out_cases[i].want) != 0)
			fail_msg("%lld: got %s want %s", (long long)date_out_cases[i].t, out,
				 date_out_cases[i].want);
		/* and back */
		int64_t t;
		assert_int_equal(imap_parse_date_time(out, strlen(out), &t), 0);
		int64_t want = date_out_cases[i].t;
		want = want < INT64_C(-62135596800) ? INT64_C(-62135596800) : want;
		want = want > INT64_C(253402300799) ? INT64_C(253402300799) : want;
		assert_int_equal(t, want);
	}
	for (size_t i = 0; i < ARRAY_LEN(date_in_cases); i++) {
		const struct date_in_case *c = &date_in_cases[i];
		int64_t t = 12345;
		int r = c->date_only ? imap_parse_date(c->in, strlen(c->in), &t)
				     : imap_parse_date_time(c->in, strlen(c->in), &t);
		if (r != c->ok)
			fail_msg("\"%s\": got %d want %d", c->in, r, c->ok);
		if (r == 0 && t != c->t)
			fail_msg("\"%s\": got %lld want %lld", c->in, (long long)t,
				 (long long)c->t);
		if (r != 0)
			assert_int_equal(t, 12345);
	}
	/* every day from 1900 to 2100 round-trips through the formatter */
	for (int64_t t = -2208988800; t < 4102444800; t += 86400 + 3601) {
		char out[32];
		int64_t back;
		imap_internaldate(t, out);
		assert_int_equal(imap_parse_date_time(out, strlen(out), &back), 0);
		assert_int_equal(back, t);
	}
}

/* ---- limits and shapes ---- */

/* Every output size below the real one fails and leaves out untouched. */
static void test_overflow(void **state)
{
	static const char *const msgs[] = {
		msg_simple, msg_alt_related, msg_attachment, msg_forward, msg_addresses,
		msg_odd_from, msg_params_8bit, msg_encoded_rfc822,
	};
	(void)state;
	for (size_t k = 0; k < ARRAY_LEN(msgs); k++) {
		size_t len;
		char *msg = to_crlf(msgs[k], &len);
		struct mime_message *m = mime_parse(msg, len, NULL);
		for (int what = 0; what < 3; what++) {
			struct buf full;
			buf_init(&full, 1 << 20);
			int r = what == 0 ? imap_envelope(&full, msg, len, m, 0)
				: imap_bodystructure(&full, msg, len, m, 0, what == 2, false);
			assert_int_equal(r, 0);
			for (size_t max = 2; max < full.len + 2; max++) {
				struct buf small;
				buf_init(&small, max);
				assert_int_equal(buf_append_str(&small, "**"), 0);
				r = what == 0 ? imap_envelope(&small, msg, len, m, 0)
				    : imap_bodystructure(&small, msg, len, m, 0, what == 2, false);
				assert_int_equal(r, -1);
				assert_int_equal(small.len, 2);
				assert_string_equal(small.data, "**");
				buf_free(&small);
			}
			buf_free(&full);
		}
		mime_message_free(&m);
		free(msg);
	}

	/* HEADER.FIELDS into a full scratch, BINARY into a full out */
	size_t len;
	char *msg = to_crlf(msg_alt_related, &len);
	struct mime_message *m = mime_parse(msg, len, NULL);
	struct imap_fetch_section sec;
	const char *error, *p = NULL;
	size_t n = 0;
	static const char hf[] = "BODY[HEADER.FIELDS (From To)]";
	assert_int_equal(imap_fetch_section_parse(hf, strlen(hf), &sec, &error), 0);
	struct buf scratch;
	buf_init(&scratch, 40);
	assert_int_equal(buf_append_str(&scratch, "keep"), 0);
	assert_int_equal(imap_section_get(msg, len, m, &sec, &scratch, &p, &n), -1);
	assert_int_equal(scratch.len, 4);
	assert_string_equal(scratch.data, "keep");
	buf_free(&scratch);
	static const char bin[] = "BINARY[1]";
	assert_int_equal(imap_fetch_section_parse(bin, strlen(bin), &sec, &error), 0);
	struct buf out;
	for (size_t max = 0; max < 8; max++) {
		buf_init(&out, max);
		assert_int_equal(imap_binary_get(msg, len, m, &sec, &out), IMAP_BINARY_FULL);
		assert_int_equal(out.len, 0);
		buf_free(&out);
	}
	buf_init(&out, 8);
	assert_int_equal(imap_binary_get(msg, len, m, &sec, &out), IMAP_BINARY_OK);
	assert_int_equal(out.len, 8);
	buf_free(&out);
	mime_message_free(&m);
	free(msg);
}

static size_t count_str(const char *s, const char *needle)
{
	size_t n = 0;
	for (const char *p = s; (p = strstr(p, needle)) != NULL; p += strlen(needle))
		n++;
	return n;
}

/* 30 nested multiparts inside message/rfc822s: the parser stops at its
 * depth cap and the writer walks the rest without recursion. */
static void test_deep(void **state)
{
	(void)state;
	struct buf b;
	buf_init(&b, 1 << 20);
	for (int i = 0; i < 30; i++) {
		buf_printf(&b, "Content-Type: multipart/mixed; boundary=b%02d\r\n\r\n--b%02d\r\n",
			   i, i);
		if (i % 3 == 2)
			buf_append_str(&b, "Content-Type: message/rfc822\r\n\r\nSubject: deep\r\n");
	}
	buf_append_str(&b, "\r\nleaf\r\n");
	struct mime_message *m = mime_parse(b.data, b.len, NULL);
	struct buf out;
	buf_init(&out, 1 << 20);
	assert_int_equal(imap_bodystructure(&out, b.data, b.len, m, 0, true, false), 0);
	assert_int_equal(count_str(out.data, "("), count_str(out.data, ")"));
	/* multiparts at depths 0-2, 4-6, ... message/rfc822 at 3, 7, 11, 15, 19; the
	 * multipart at depth 20 is the capped leaf */
	assert_int_equal(count_str(out.data, "\"MESSAGE\" \"RFC822\""), 5);
	assert_int_equal(count_str(out.data, "\"MIXED\""), 16);
	/* the part at the cap is a multipart without children */
	assert_non_null(strstr(out.data, "(" "(\"TEXT\" \"PLAIN\" (\"CHARSET\" \"US-ASCII\") "
				 "NIL NIL \"7BIT\" 0 0) \"MIXED\""));
	/* every sub-tree renders on its own too */
	for (size_t i = 0; i < m->n_parts; i++) {
		buf_reset(&out);
		assert_int_equal(imap_bodystructure(&out, b.data, b.len, m, i, false, false), 0);
		assert_int_equal(count_str(out.data, "("), count_str(out.data, ")"));
	}
	buf_free(&out);
	mime_message_free(&m);
	buf_free(&b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_fetch),
		cmocka_unit_test(test_strings),
		cmocka_unit_test(test_item_names),
		cmocka_unit_test(test_partial),
		cmocka_unit_test(test_dates),
		cmocka_unit_test(test_overflow),
		cmocka_unit_test(test_deep),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
