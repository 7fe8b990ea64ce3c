/* compose_test.c - the message composer: exact bytes of simple messages,
 * encodings and their round trips, the MIME tree (through mime_parse),
 * folding, every cap and every refusal. */
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
#include "mail/compose.h"
#include "mail/decode.h"
#include "mail/mime.h"
#include "mail/rfc2047.h"

#define DATE 1767268800 /* Thu, 1 Jan 2026 12:00:00 +0000 (TZ=UTC in main) */
#define BIG (COMPOSE_OUT_MAX + (size_t)(1 << 20))

static const struct compose_addr bob = { NULL, "bob@b.example" };

static struct compose_msg base_msg(void)
{
	struct compose_msg m = {
		.from = { "Alice Example", "alice@a.example" },
		.to = &bob,
		.nto = 1,
		.subject = "Hello",
		.text = "Hi.\n",
		.text_len = 4,
		.message_id = "<m1@a.example>",
		.date = DATE,
		.boundary = "b1",
	};
	return m;
}

static void set_text(struct compose_msg *m, const char *t)
{
	m->text = t;
	m->text_len = strlen(t);
}

/* Lines end in CR LF, hold at most max octets, bytes are 7-bit. */
static void check_lines(const char *s, size_t n, size_t max)
{
	size_t col = 0;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c >= 0x80 || c == 0)
			fail_msg("byte 0x%02x at %zu", c, i);
		if (c == '\r') {
			if (i + 1 >= n || s[i + 1] != '\n')
				fail_msg("bare CR at %zu", i);
		} else if (c == '\n') {
			if (i == 0 || s[i - 1] != '\r')
				fail_msg("bare LF at %zu", i);
			col = 0;
		} else if (++col > max) {
			fail_msg("line longer than %zu at %zu: %.80s", max, i, s + i - col + 1);
		}
	}
	assert_true(n >= 2 && s[n - 2] == '\r' && s[n - 1] == '\n');
}

static size_t header_len(const char *s)
{
	const char *e = strstr(s, "\r\n\r\n");
	assert_non_null(e);
	return (size_t)(e - s) + 2;
}

/* Compose, which must work; the message is checked for the line rules:
 * header lines of at most hmax octets, all lines at most 998. */
static char *compose_ok_max(const struct compose_msg *m, size_t *len_r, size_t hmax)
{
	struct buf b;
	const char *why = "unset";
	buf_init(&b, COMPOSE_OUT_MAX + 1);
	int r = compose_message(m, &b, &why);
	if (r != 0)
		fail_msg("compose failed: %s", why);
	check_lines(b.data, b.len, 998);
	check_lines(b.data, header_len(b.data), hmax);
	return buf_steal(&b, len_r);
}

static char *compose_ok(const struct compose_msg *m, size_t *len_r)
{
	return compose_ok_max(m, len_r, 78);
}

static void compose_fails(const struct compose_msg *m, const char *want)
{
	struct buf b;
	const char *why = NULL;
	buf_init(&b, COMPOSE_OUT_MAX + 1);
	buf_append_str(&b, "keep");
	assert_int_equal(compose_message(m, &b, &why), -1);
	assert_non_null(why);
	assert_string_equal(why, want);
	assert_int_equal(b.len, 4);
	assert_string_equal(b.data, "keep");
	buf_free(&b);
}

/* The part tree as "type/sub(child,child)". */
static char *tree(const struct mime_message *mm)
{
	struct buf b;
	buf_init(&b, 1 << 16);
	for (size_t i = 0; i < mm->n_parts; i++) {
		const struct mime_part *p = &mm->parts[i];
		if (i > 0 && p->depth <= mm->parts[i - 1].depth) {
			for (unsigned d = p->depth; d < mm->parts[i - 1].depth; d++)
				buf_append_str(&b, ")");
			buf_append_str(&b, ",");
		}
		buf_printf(&b, "%s/%s", p->type, p->subtype);
		if (p->n_children > 0)
			buf_append_str(&b, "(");
	}
	for (unsigned d = 0; d < mm->parts[mm->n_parts - 1].depth; d++)
		buf_append_str(&b, ")");
	return buf_steal(&b, NULL);
}

static void check_tree(const char *msg, size_t len, const char *want)
{
	struct mime_message *mm = mime_parse(msg, len, NULL);
	char *t = tree(mm);
	assert_string_equal(t, want);
	assert_int_equal(mm->flags & (MIME_PART_CT_DEFAULT | MIME_PART_NO_BOUNDARY |
				      MIME_PART_NO_CLOSE), 0);
	free(t);
	mime_message_free(&mm);
}

/* The decoded body of part i (by its Content-Transfer-Encoding). */
static char *part_body(const char *msg, const struct mime_part *p, size_t *len_r)
{
	struct buf out;
	buf_init(&out, COMPOSE_OUT_MAX);
	const char *b = msg + p->body_off;
	if (p->encoding != NULL && strcmp(p->encoding, "base64") == 0) {
		struct decode_b64 d;
		decode_b64_init(&d);
		assert_int_equal(decode_b64(&d, b, p->body_len, &out), 0);
		assert_int_equal(decode_b64_finish(&d, &out), 0);
		assert_int_equal(d.garbage, 0);
	} else if (p->encoding != NULL && strcmp(p->encoding, "quoted-printable") == 0) {
		struct decode_qp d;
		decode_qp_init(&d);
		assert_int_equal(decode_qp(&d, b, p->body_len, &out), 0);
		assert_int_equal(decode_qp_finish(&d, &out), 0);
	} else {
		buf_append(&out, b, p->body_len);
	}
	if (out.data == NULL)
		buf_append(&out, "", 0);
	return buf_steal(&out, len_r);
}

/* Leaf number k (pre-order) of msg, decoded, as a NUL-terminated string. */
static char *leaf_body(const char *msg, size_t len, size_t k, char **enc_r, size_t *len_r)
{
	struct mime_message *mm = mime_parse(msg, len, NULL);
	for (size_t i = 0; i < mm->n_parts; i++) {
		const struct mime_part *p = &mm->parts[i];
		if (p->n_children > 0 || k-- > 0)
			continue;
		char *r = part_body(msg, p, len_r);
		if (enc_r != NULL)
			*enc_r = p->encoding ? xstrdup(p->encoding) : NULL;
		mime_message_free(&mm);
		return r;
	}
	fail_msg("no leaf %zu", k);
	return NULL;
}

static char *header(const char *msg, const char *name)
{
	return mime_header_find(msg, header_len(msg), name, 1 << 20, NULL);
}

static char *decoded_header(const char *msg, const char *name)
{
	char *v = header(msg, name);
	assert_non_null(v);
	struct buf b;
	buf_init(&b, 1 << 20);
	assert_int_equal(rfc2047_decode(v, strlen(v), &b), 0);
	free(v);
	if (b.data == NULL)
		buf_append(&b, "", 0);
	return buf_steal(&b, NULL);
}

/* RFC 3676 reading (delsp=no) of CR LF lines: unstuff, join soft breaks. */
static char *unflow(const char *s, size_t n)
{
	struct buf b;
	if (s == NULL || n == 0)
		return xstrdup("");
	buf_init(&b, n + 1);
	for (size_t i = 0; i < n;) {
		size_t e = i;
		while (e + 1 < n && !(s[e] == '\r' && s[e + 1] == '\n'))
			e++;
		assert_true(e + 1 < n);
		size_t k = e - i;
		const char *l = s + i;
		bool sig = k == 3 && memcmp(l, "-- ", 3) == 0;
		if (k > 0 && l[0] == ' ') {
			l++;
			k--;
		}
		buf_append(&b, l, k);
		if (sig || k == 0 || l[k - 1] != ' ')
			buf_append(&b, "\r\n", 2);
		i = e + 2;
	}
	if (b.data == NULL)
		buf_append(&b, "", 0);
	return buf_steal(&b, NULL);
}

/* ---- tests ---- */

static void test_simple_exact(void **state)
{
	(void)state;
	static const struct compose_addr to[] = {
		{ NULL, "bob@b.example" }, { "Carol", "carol@c.example" },
	};
	struct compose_msg m = base_msg();
	m.to = to;
	m.nto = 2;
	m.subject = "Lunch on Friday";
	set_text(&m, "Hi Bob,\n\nsee you at noon.\n");
	size_t len;
	char *s = compose_ok(&m, &len);
	assert_string_equal(s,
		"Date: Thu, 1 Jan 2026 12:00:00 +0000\r\n"
		"From: Alice Example <alice@a.example>\r\n"
		"To: bob@b.example, Carol <carol@c.example>\r\n"
		"Subject: Lunch on Friday\r\n"
		"Message-ID: <m1@a.example>\r\n"
		"MIME-Version: 1.0\r\n"
		"Content-Type: text/plain; charset=utf-8\r\n"
		"Content-Transfer-Encoding: 7bit\r\n"
		"\r\n"
		"Hi Bob,\r\n"
		"\r\n"
		"see you at noon.\r\n");
	check_tree(s, len, "text/plain");
	free(s);
}

static void test_attachment_exact(void **state)
{
	(void)state;
	static const struct compose_attachment att = {
		"r.pdf", NULL, (const unsigned char *)"%PDF-1.4\n", 9,
	};
	struct compose_msg m = base_msg();
	m.from.name = NULL;
	m.subject = "Report";
	m.message_id = NULL;
	set_text(&m, "See attached.");
	m.att = &att;
	m.natt = 1;
	size_t len;
	char *s = compose_ok(&m, &len);
	assert_string_equal(s,
		"Date: Thu, 1 Jan 2026 12:00:00 +0000\r\n"
		"From: alice@a.example\r\n"
		"To: bob@b.example\r\n"
		"Subject: Report\r\n"
		"MIME-Version: 1.0\r\n"
		"Content-Type: multipart/mixed; boundary=\"b1.mix\"\r\n"
		"\r\n"
		"--b1.mix\r\n"
		"Content-Type: text/plain; charset=utf-8\r\n"
		"Content-Transfer-Encoding: 7bit\r\n"
		"\r\n"
		"See attached.\r\n"
		"\r\n"
		"--b1.mix\r\n"
		"Content-Type: application/pdf; name=\"r.pdf\"\r\n"
		"Content-Transfer-Encoding: base64\r\n"
		"Content-Disposition: attachment; filename=\"r.pdf\"\r\n"
		"\r\n"
		"JVBERi0xLjQK\r\n"
		"\r\n"
		"--b1.mix--\r\n");
	check_tree(s, len, "multipart/mixed(text/plain,application/pdf)");
	size_t bl;
	char *t = leaf_body(s, len, 0, NULL, &bl);
	assert_string_equal(t, "See attached.\r\n");
	free(t);
	t = leaf_body(s, len, 1, NULL, &bl);
	assert_int_equal(bl, 9);
	assert_memory_equal(t, "%PDF-1.4\n", 9);
	free(t);
	free(s);
}

static void test_line_ends(void **state)
{
	(void)state;
	struct compose_msg m = base_msg();
	set_text(&m, "a\r\nb\rc\nd");
	size_t len;
	char *s = compose_ok(&m, &len);
	assert_non_null(strstr(s, "\r\n\r\na\r\nb\r\nc\r\nd\r\n"));
	assert_int_equal(strlen(strstr(s, "\r\n\r\n")), 4 + 12);
	free(s);

	/* no text at all: an empty body */
	m.text = NULL;
	m.text_len = 0;
	s = compose_ok_max(&m, &len, 78);
	assert_string_equal(s + len - 4, "\r\n\r\n");
	check_tree(s, len, "text/plain");
	free(s);
}

static void test_utf8_subject_and_name(void **state)
{
	(void)state;
	static const struct compose_addr to[] = {
		{ "J\xc3\xb6rg M\xc3\xbcller", "joerg@b.example" },
	};
	struct compose_msg m = base_msg();
	m.from.name = "Ren\xc3\xa9\x65 \xe6\x97\xa5\xe6\x9c\xac";
	m.to = to;
	m.subject = "Gr\xc3\xbc\xc3\x9f\x65 aus K\xc3\xb6ln";
	size_t len;
	char *s = compose_ok(&m, &len);
	assert_non_null(strstr(s, "Subject: =?UTF-8?B?"));
	char *v = decoded_header(s, "Subject");
	assert_string_equal(v, m.subject);
	free(v);
	v = decoded_header(s, "From");
	assert_string_equal(v, "Ren\xc3\xa9\x65 \xe6\x97\xa5\xe6\x9c\xac <alice@a.example>");
	free(v);
	v = decoded_header(s, "To");
	assert_string_equal(v, "J\xc3\xb6rg M\xc3\xbcller <joerg@b.example>");
	free(v);
	/* never an encoded-word inside quotes */
	assert_null(strstr(s, "\"=?"));
	check_tree(s, len, "text/plain");
	free(s);

	/* a long subject: words split at characters, folded, every line <= 78 */
	struct buf subj;
	buf_init(&subj, 4096);
	for (int i = 0; i < 60; i++)
		buf_append_str(&subj, i % 7 == 0 ? " a" : "\xe6\x97\xa5\xe6\x9c\xac");
	m.subject = subj.data;
	s = compose_ok(&m, &len);
	v = decoded_header(s, "Subject");
	assert_string_equal(v, subj.data);
	free(v);
	free(s);
	buf_free(&subj);
}

static void test_plain_subject_folding(void **state)
{
	(void)state;
	struct buf subj;
	buf_init(&subj, 4096);
	for (int i = 0; i < 40; i++)
		buf_printf(&subj, "word%d ", i);
	buf_append_str(&subj, "end");
	struct compose_msg m = base_msg();
	m.subject = subj.data;
	size_t len;
	char *s = compose_ok(&m, &len);
	assert_null(strstr(s, "=?"));
	char *v = header(s, "Subject");
	assert_string_equal(v, subj.data);
	free(v);
	free(s);

	/* a word that cannot fit a line, or "=?" in it: encoded instead */
	buf_reset(&subj);
	for (int i = 0; i < 80; i++)
		buf_append_str(&subj, "x");
	s = compose_ok(&m, &len);
	assert_non_null(strstr(s, "Subject: =?UTF-8?B?"));
	v = decoded_header(s, "Subject");
	assert_string_equal(v, subj.data);
	free(v);
	free(s);
	m.subject = "not =?an?q?word?=";
	s = compose_ok(&m, &len);
	v = decoded_header(s, "Subject");
	assert_string_equal(v, m.subject);
	free(v);
	free(s);
	m.subject = "";
	s = compose_ok(&m, &len);
	assert_non_null(strstr(s, "\r\nSubject:\r\n"));
	free(s);
	buf_free(&subj);
}

static void test_display_name_forms(void **state)
{
	(void)state;
	static const struct {
		const char *name;
		const char *want; /* in the From field, or NULL: encoded */
	} t[] = {
		{ "Alice Example", "From: Alice Example <alice@a.example>\r\n" },
		{ "John Q. Public", "From: \"John Q. Public\" <alice@a.example>\r\n" },
		{ "He said \"hi\\\"", "From: \"He said \\\"hi\\\\\\\"\" <alice@a.example>\r\n" },
		{ " lead", "From: \" lead\" <alice@a.example>\r\n" },
		{ "a=?b", NULL },
		{ "tab\there", NULL },
		{ "A very long display name, with a comma, that does not fit one line", NULL },
		{ "", "From: alice@a.example\r\n" },
	};
	for (size_t i = 0; i < ARRAY_LEN(t); i++) {
		struct compose_msg m = base_msg();
		m.from.name = t[i].name;
		size_t len;
		char *s = compose_ok(&m, &len);
		if (t[i].want != NULL) {
			if (strstr(s, t[i].want) == NULL)
				fail_msg("%s: %s", t[i].name, s);
		} else {
			assert_non_null(strstr(s, "From: =?UTF-8?B?"));
			char *v = decoded_header(s, "From");
			char *want = xasprintf("%s <alice@a.example>", t[i].name);
			assert_string_equal(v, want);
			free(want);
			free(v);
		}
		free(s);
	}
	/* a quoted local part is kept quoted */
	struct compose_msg m = base_msg();
	m.from.addr = "\"john smith\"@a.example";
	size_t len;
	char *s = compose_ok(&m, &len);
	assert_non_null(strstr(s, "From: Alice Example <\"john smith\"@a.example>\r\n"));
	free(s);
}

static void test_iso2022jp(void **state)
{
	(void)state;
	/* 日本語の件名, 山田太郎, こんにちは / 世界 */
	static const char subj[] = "\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e\xe3\x81\xae\xe4\xbb\xb6"
				   "\xe5\x90\x8d";
	static const char name[] = "\xe5\xb1\xb1\xe7\x94\xb0\xe5\xa4\xaa\xe9\x83\x8e";
	static const char text[] = "\xe3\x81\x93\xe3\x82\x93\xe3\x81\xab\xe3\x81\xa1\xe3\x81\xaf\n"
				   "\xe4\xb8\x96\xe7\x95\x8c abc\n";
	struct compose_msg m = base_msg();
	m.charset = "ISO-2022-JP";
	m.subject = subj;
	m.from.name = name;
	set_text(&m, text);
	size_t len;
	char *s = compose_ok(&m, &len);
	assert_non_null(strstr(s, "Subject: =?ISO-2022-JP?B?"));
	assert_non_null(strstr(s, "From: =?ISO-2022-JP?B?"));
	assert_non_null(strstr(s, "Content-Type: text/plain; charset=ISO-2022-JP\r\n"
				  "Content-Transfer-Encoding: 7bit\r\n"));
	assert_non_null(strstr(s, "\x1b$B"));
	assert_non_null(strstr(s, "\x1b(B abc\r\n")); /* each line back in ASCII */
	char *v = decoded_header(s, "Subject");
	assert_string_equal(v, subj);
	free(v);
	v = decoded_header(s, "From");
	char *want = xasprintf("%s <alice@a.example>", name);
	assert_string_equal(v, want);
	free(want);
	free(v);

	size_t bl;
	char *enc;
	char *body = leaf_body(s, len, 0, &enc, &bl);
	assert_string_equal(enc, "7bit");
	struct buf u;
	const char *err;
	buf_init(&u, 1 << 16);
	assert_int_equal(decode_charset_convert("ISO-2022-JP", body, bl, &u, &err), 0);
	assert_string_equal(u.data, "\xe3\x81\x93\xe3\x82\x93\xe3\x81\xab\xe3\x81\xa1\xe3\x81\xaf"
				    "\r\n\xe4\xb8\x96\xe7\x95\x8c abc\r\n");
	buf_free(&u);
	free(body);
	free(enc);
	check_tree(s, len, "text/plain");
	free(s);

	/* with flowed text: the soft-break blank is ASCII and survives */
	struct buf t;
	buf_init(&t, 8192);
	for (int i = 0; i < 30; i++)
		buf_append_str(&t, "\xe6\x97\xa5\xe6\x9c\xac ");
	buf_append_str(&t, "\n");
	m.flowed = true;
	m.text = t.data;
	m.text_len = t.len;
	s = compose_ok(&m, &len);
	body = leaf_body(s, len, 0, NULL, &bl);
	buf_init(&u, 1 << 16);
	assert_int_equal(decode_charset_convert("ISO-2022-JP", body, bl, &u, &err), 0);
	char *flat = unflow(u.data, u.len);
	t.len--; /* the trailing blank goes, the line end is CR LF */
	while (t.data[t.len - 1] == ' ')
		t.len--;
	t.data[t.len] = '\0';
	buf_append_str(&t, "\r\n");
	assert_string_equal(flat, t.data);
	free(flat);
	buf_free(&u);
	free(body);
	free(s);
	buf_free(&t);
}

static void test_iso2022jp_unrepresentable(void **state)
{
	(void)state;
	struct compose_msg m = base_msg();
	m.charset = "iso-2022-jp";
	set_text(&m, "smile \xf0\x9f\x98\x80\n");
	compose_fails(&m, "text not representable in ISO-2022-JP");
	set_text(&m, "ok\n");
	m.subject = "\xf0\x9f\x98\x80";
	compose_fails(&m, "subject not representable in ISO-2022-JP");
	m.subject = "ok";
	m.from.name = "\xc3\xa9\xf0\x9f\x98\x80";
	compose_fails(&m, "display name not representable in ISO-2022-JP");
	/* ISO 2022 shift codes in the input would pass iconv and garble the rest */
	m.from.name = "a\x1b$Bb";
	compose_fails(&m, "display name not representable in ISO-2022-JP");
	m.from.name = NULL;
	m.subject = "a\x0e";
	compose_fails(&m, "subject not representable in ISO-2022-JP");
	m.subject = "ok";
	set_text(&m, "a\x1b$B:#\x1b(B\n");
	compose_fails(&m, "text not representable in ISO-2022-JP");
	m.charset = "utf-8";
	size_t len;
	char *s = compose_ok(&m, &len); /* fine in UTF-8 */
	free(s);
	m.charset = "iso-8859-1";
	compose_fails(&m, "unsupported charset");
}

static void test_long_line_qp(void **state)
{
	(void)state;
	struct buf t;
	buf_init(&t, 1 << 16);
	buf_append_str(&t, "short line\n");
	for (int i = 0; i < 2000; i++)
		buf_append(&t, i % 50 == 49 ? " " : "x", 1);
	buf_append_str(&t, "\nFrom the start=end \n");
	struct compose_msg m = base_msg();
	m.text = t.data;
	m.text_len = t.len;
	size_t len;
	char *s = compose_ok(&m, &len);
	assert_non_null(strstr(s, "Content-Transfer-Encoding: quoted-printable\r\n"));
	const char *body = strstr(s, "\r\n\r\n") + 4;
	check_lines(body, len - (size_t)(body - s), 76);
	assert_non_null(strstr(body, "\r\n=46rom the start=3Dend=20\r\n"));
	size_t bl;
	char *d = leaf_body(s, len, 0, NULL, &bl);
	struct buf w;
	buf_init(&w, 1 << 16);
	for (size_t i = 0; i < t.len; i++) {
		if (t.data[i] == '\n')
			buf_append(&w, "\r", 1);
		buf_append(&w, t.data + i, 1);
	}
	assert_int_equal(bl, w.len);
	assert_memory_equal(d, w.data, w.len);
	free(d);
	free(s);
	buf_free(&w);
	buf_free(&t);
}

static void test_cte_choice(void **state)
{
	(void)state;
	static const struct {
		const char *text;
		const char *cte;
	} t[] = {
		{ "plain ASCII\n", "7bit" },
		{ "caf\xc3\xa9 and a few more ASCII words here\n", "quoted-printable" },
		{ "trailing blank \n", "7bit" },
		{ "\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e\xe3\x81\xae\xe6\x96\x87\xe7\xab\xa0\n",
		  "base64" },
		{ "\xc3\xa9\xc3\xa9\xc3\xa9 mostly 8-bit\n", "base64" },
	};
	for (size_t i = 0; i < ARRAY_LEN(t); i++) {
		struct compose_msg m = base_msg();
		set_text(&m, t[i].text);
		size_t len, bl;
		char *enc;
		char *s = compose_ok(&m, &len);
		char *d = leaf_body(s, len, 0, &enc, &bl);
		assert_string_equal(enc, t[i].cte);
		/* the decoded text is the input with CR LF */
		char *want = xstrndup(t[i].text, strlen(t[i].text) - 1);
		char *w2 = xasprintf("%s\r\n", want);
		assert_string_equal(d, w2);
		free(w2);
		free(want);
		free(enc);
		free(d);
		free(s);
	}
}

static void test_forward_rfc822(void **state)
{
	(void)state;
	static const char fwd[] = "From: carol@c.example\nSubject: orig\n\nHi \xc3\xa9\n";
	struct compose_attachment att = {
		NULL, "Message/RFC822", (const unsigned char *)fwd, sizeof fwd - 1,
	};
	struct compose_msg m = base_msg();
	m.from.name = NULL;
	m.subject = "Fwd: orig";
	m.message_id = NULL;
	set_text(&m, "FYI");
	m.att = &att;
	m.natt = 1;
	size_t len;
	/* 8-bit: the one case where the composer writes 8-bit bytes (the
	 * submission then declares BODY=8BITMIME) */
	struct buf b;
	const char *why = NULL;
	buf_init(&b, COMPOSE_OUT_MAX);
	assert_int_equal(compose_message(&m, &b, &why), 0);
	char *s = buf_steal(&b, &len);
	assert_non_null(strstr(s, "--b1.mix\r\n"
				  "Content-Type: message/rfc822\r\n"
				  "Content-Transfer-Encoding: 8bit\r\n"
				  "Content-Disposition: inline\r\n"
				  "\r\n"
				  "From: carol@c.example\r\nSubject: orig\r\n\r\nHi \xc3\xa9\r\n"
				  "\r\n--b1.mix--\r\n"));
	free(s);
	/* 7-bit stays 7bit, with a file name an attachment */
	att.data = (const unsigned char *)"Subject: x\r\n\r\nplain\r\n";
	att.len = strlen((const char *)att.data);
	att.filename = "fwd.eml";
	s = compose_ok(&m, &len);
	assert_non_null(strstr(s, "Content-Transfer-Encoding: 7bit\r\n"
				  "Content-Disposition: attachment; filename=\"fwd.eml\"\r\n"));
	free(s);
	/* what cannot go as 7bit/8bit is refused; other message types too */
	char *longline = xmalloc(1200);
	memset(longline, 'a', 1199);
	longline[1199] = '\0';
	att.data = (const unsigned char *)longline;
	att.len = 1199;
	compose_fails(&m, "forwarded message has a line longer than 998 octets");
	att.data = (const unsigned char *)"a\0b";
	att.len = 3;
	compose_fails(&m, "forwarded message contains a NUL byte");
	att.data = (const unsigned char *)"x";
	att.len = 1;
	att.content_type = "message/partial";
	compose_fails(&m, "bad attachment content type");
	free(longline);
}

static void test_attachment_roundtrip(void **state)
{
	(void)state;
	size_t n = 10000;
	unsigned char *data = xmalloc(n);
	srand(7);
	for (size_t i = 0; i < n; i++)
		data[i] = (unsigned char)rand();
	data[0] = 0; /* not text */
	struct compose_attachment att[2] = {
		{ "a.bin", NULL, data, n },
		{ NULL, "application/x-thing", data + 1, 300 },
	};
	struct compose_msg m = base_msg();
	m.att = att;
	m.natt = 2;
	size_t len, bl;
	char *s = compose_ok(&m, &len);
	check_tree(s, len, "multipart/mixed(text/plain,application/octet-stream,"
			   "application/x-thing)");
	assert_non_null(strstr(s, "Content-Type: application/x-thing\r\n"
				  "Content-Transfer-Encoding: base64\r\n"
				  "Content-Disposition: attachment\r\n\r\n"));
	char *d = leaf_body(s, len, 1, NULL, &bl);
	assert_int_equal(bl, n);
	assert_memory_equal(d, data, n);
	free(d);
	d = leaf_body(s, len, 2, NULL, &bl);
	assert_int_equal(bl, 300);
	assert_memory_equal(d, data + 1, 300);
	free(d);
	/* base64 lines of 76 */
	const char *b = strstr(s, "filename=\"a.bin\"\r\n\r\n") + 20;
	assert_int_equal(strchr(b, '\r') - b, 76);
	free(s);
	free(data);
}

static void test_guess_type(void **state)
{
	(void)state;
	static const struct {
		const char *data;
		size_t len;
		const char *tree;
	} t[] = {
		{ "%PDF-1.7 ...", 12, "application/pdf" },
		{ "\x89PNG\r\n\x1a\n....", 12, "image/png" },
		{ "\xff\xd8\xff\xe0....", 8, "image/jpeg" },
		{ "GIF89a..", 8, "image/gif" },
		{ "GIF87a..", 8, "image/gif" },
		{ "PK\x03\x04....", 8, "application/zip" },
		{ "\x1f\x8b\x08\x00", 4, "application/gzip" },
		{ "hello \xc3\xa9\n", 9, "text/plain" },
		{ "", 0, "text/plain" },
		{ "bin\0ary", 7, "application/octet-stream" },
		{ "\xc3(", 2, "application/octet-stream" },
	};
	for (size_t i = 0; i < ARRAY_LEN(t); i++) {
		struct compose_attachment att = {
			"f", NULL, (const unsigned char *)t[i].data, t[i].len,
		};
		struct compose_msg m = base_msg();
		m.att = &att;
		m.natt = 1;
		size_t len;
		char *s = compose_ok(&m, &len);
		char *want = xasprintf("multipart/mixed(text/plain,%s)", t[i].tree);
		check_tree(s, len, want);
		free(want);
		if (strcmp(t[i].tree, "text/plain") == 0)
			assert_non_null(strstr(s, "Content-Type: text/plain; charset=utf-8; "
						  "name=\"f\"\r\n"));
		size_t bl;
		char *d = leaf_body(s, len, 1, NULL, &bl);
		assert_int_equal(bl, t[i].len);
		assert_memory_equal(d, t[i].data, t[i].len);
		free(d);
		free(s);
	}
}

/* The filename parameters of leaf 1, as mime_parse decodes them. */
static void check_filename(const char *s, size_t len, const char *want)
{
	struct mime_message *mm = mime_parse(s, len, NULL);
	assert_int_equal(mm->n_parts, 3);
	const struct mime_part *p = &mm->parts[2];
	assert_string_equal(p->disposition, "attachment");
	const char *f = mime_param_get(&p->disp_params, "filename");
	const char *n = mime_param_get(&p->params, "name");
	assert_non_null(f);
	assert_non_null(n);
	assert_string_equal(f, want);
	assert_string_equal(n, want);
	mime_message_free(&mm);
}

static void test_filename_2231(void **state)
{
	(void)state;
	struct compose_attachment att = { "r\xc3\xa9sum\xc3\xa9.pdf", NULL,
					  (const unsigned char *)"%PDF-", 5 };
	struct compose_msg m = base_msg();
	m.att = &att;
	m.natt = 1;
	size_t len;
	char *s = compose_ok(&m, &len);
	assert_non_null(strstr(s, "Content-Disposition: attachment; "
				  "filename*=utf-8''r%C3%A9sum%C3%A9.pdf\r\n"));
	assert_non_null(strstr(s, "Content-Type: application/pdf; "
				  "name*=utf-8''r%C3%A9sum%C3%A9.pdf\r\n"));
	check_filename(s, len, att.filename);
	free(s);

	/* long names: RFC 2231 sections, every line within 78 */
	struct buf f;
	buf_init(&f, 4096);
	for (int i = 0; i < 28; i++)
		buf_append_str(&f, i % 5 == 4 ? "-" : "\xe6\x97\xa5\xe6\x9c\xac");
	buf_append_str(&f, ".txt");
	att.filename = f.data;
	s = compose_ok(&m, &len);
	assert_non_null(strstr(s, " filename*0*=utf-8''%E6%97%A5"));
	assert_non_null(strstr(s, " filename*1*=%"));
	check_filename(s, len, f.data);
	free(s);

	buf_reset(&f);
	for (int i = 0; i < 20; i++)
		buf_append_str(&f, "long \"name\" ");
	assert_true(f.len <= COMPOSE_FILENAME_MAX);
	att.filename = f.data;
	s = compose_ok(&m, &len);
	assert_non_null(strstr(s, " filename*0=\"long \\\"name\\\" "));
	assert_non_null(strstr(s, " filename*1=\""));
	check_filename(s, len, f.data);
	free(s);

	att.filename = "tab\there";
	s = compose_ok(&m, &len);
	assert_non_null(strstr(s, "filename*=utf-8''tab%09here\r\n"));
	check_filename(s, len, att.filename);
	free(s);
	buf_free(&f);
}

static void test_alternative(void **state)
{
	(void)state;
	static const char html[] = "<p>Hi <b>Bob</b></p>\n";
	struct compose_msg m = base_msg();
	m.html = html;
	m.html_len = strlen(html);
	size_t len, bl;
	char *s = compose_ok(&m, &len);
	check_tree(s, len, "multipart/alternative(text/plain,text/html)");
	assert_non_null(strstr(s, "\r\nContent-Type: multipart/alternative; "
				  "boundary=\"b1.alt\"\r\n"));
	assert_true(strstr(s, "text/plain") < strstr(s, "text/html"));
	char *d = leaf_body(s, len, 1, NULL, &bl);
	assert_string_equal(d, "<p>Hi <b>Bob</b></p>\r\n");
	free(d);
	free(s);

	/* with an attachment: mixed(alternative(plain, html), attachment) */
	struct compose_attachment att = { "x.gz", NULL, (const unsigned char *)"\x1f\x8b", 2 };
	m.att = &att;
	m.natt = 1;
	s = compose_ok(&m, &len);
	check_tree(s, len,
		   "multipart/mixed(multipart/alternative(text/plain,text/html),"
		   "application/gzip)");
	d = leaf_body(s, len, 0, NULL, &bl);
	assert_string_equal(d, "Hi.\r\n");
	free(d);
	d = leaf_body(s, len, 1, NULL, &bl);
	assert_string_equal(d, "<p>Hi <b>Bob</b></p>\r\n");
	free(d);
	free(s);

	/* random boundaries: two messages differ, both parse */
	m.boundary = NULL;
	char *s2;
	size_t len2;
	s = compose_ok(&m, &len);
	s2 = compose_ok(&m, &len2);
	check_tree(s2, len2,
		   "multipart/mixed(multipart/alternative(text/plain,text/html),"
		   "application/gzip)");
	assert_non_null(strstr(s, "boundary=\"=_"));
	assert_true(len != len2 || memcmp(s, s2, len) != 0);
	free(s);
	free(s2);
}

static void test_flowed(void **state)
{
	(void)state;
	static const char text[] =
		"From here on\n"
		" leading space\n"
		"> quoted line stays as it is, however long it may be, even past the width\n"
		"trailing blanks   \n"
		"This paragraph is a single long line that must be wrapped into several lines "
		"at blanks, each at most seventy-eight octets, each soft break a blank at the "
		"end From here -- and >this.\n"
		"-- \n"
		"Sig\n";
	struct compose_msg m = base_msg();
	m.flowed = true;
	set_text(&m, text);
	size_t len, bl;
	char *s = compose_ok(&m, &len);
	assert_non_null(strstr(s, "Content-Type: text/plain; charset=utf-8; format=flowed\r\n"
				  "Content-Transfer-Encoding: 7bit\r\n"));
	const char *body = strstr(s, "\r\n\r\n") + 4;
	check_lines(body, len - (size_t)(body - s), 78);
	assert_true(strncmp(body, " From here on\r\n", 15) == 0);
	assert_non_null(strstr(body, "\r\n  leading space\r\n"));
	assert_non_null(strstr(body, "\r\n> quoted line stays as it is, however long it may be, "
				     "even past the width\r\n"));
	assert_non_null(strstr(body, "\r\ntrailing blanks\r\n"));
	assert_non_null(strstr(body, "\r\n-- \r\nSig\r\n"));
	assert_non_null(strstr(body, "This paragraph is a single long line that must be wrapped "
				     "into several lines \r\n"));
	char *d = leaf_body(s, len, 0, NULL, &bl);
	char *flat = unflow(d, bl);
	assert_string_equal(flat,
		"From here on\r\n"
		" leading space\r\n"
		"> quoted line stays as it is, however long it may be, even past the width\r\n"
		"trailing blanks\r\n"
		"This paragraph is a single long line that must be wrapped into several lines "
		"at blanks, each at most seventy-eight octets, each soft break a blank at the "
		"end From here -- and >this.\r\n"
		"-- \r\n"
		"Sig\r\n");
	free(flat);
	free(d);
	free(s);

	/* a continuation that would start "From " or ">" is stuffed; a word longer than
	 * the width stays whole; a piece never reads "-- " */
	struct buf t;
	buf_init(&t, 4096);
	for (int i = 0; i < 75; i++)
		buf_append_str(&t, "y");
	buf_append_str(&t, " From x ");
	for (int i = 0; i < 76; i++)
		buf_append_str(&t, "z");
	buf_append_str(&t, " >q ");
	for (int i = 0; i < 76; i++)
		buf_append_str(&t, "z");
	buf_append_str(&t, " -- ");
	for (int i = 0; i < 100; i++)
		buf_append_str(&t, "w");
	m.text = t.data;
	m.text_len = t.len;
	s = compose_ok(&m, &len);
	body = strstr(s, "\r\n\r\n") + 4;
	assert_non_null(strstr(body, "\r\n From x "));
	assert_non_null(strstr(body, "\r\n >q "));
	assert_null(strstr(body, "\r\n-- \r\n"));
	assert_non_null(strstr(body, "\r\n-- www"));
	d = leaf_body(s, len, 0, NULL, &bl);
	flat = unflow(d, bl);
	buf_append_str(&t, "\r\n");
	assert_string_equal(flat, t.data);
	free(flat);
	free(d);
	free(s);
	buf_free(&t);
}

static void test_fold_recipients(void **state)
{
	(void)state;
	struct compose_addr *to = xcalloc(200, sizeof(*to));
	char (*names)[32] = xcalloc(200, sizeof(*names));
	char (*addrs)[32] = xcalloc(200, sizeof(*addrs));
	for (int i = 0; i < 200; i++) {
		snprintf(names[i], sizeof names[i], i % 3 ? "User %d" : "J\xc3\xb6rg %d", i);
		snprintf(addrs[i], sizeof addrs[i], "user%d@example.com", i);
		to[i].name = i % 5 ? names[i] : NULL;
		to[i].addr = addrs[i];
	}
	struct compose_msg m = base_msg();
	m.to = to;
	m.nto = 200;
	m.cc = to;
	m.ncc = 200;
	m.reply_to = to + 1;
	m.nreply_to = 1;
	size_t len;
	char *s = compose_ok(&m, &len); /* header lines <= 78 */
	char *v = decoded_header(s, "To");
	struct buf want;
	buf_init(&want, 1 << 20);
	for (int i = 0; i < 200; i++) {
		if (to[i].name)
			buf_printf(&want, "%s%s <%s>", i ? ", " : "", to[i].name, to[i].addr);
		else
			buf_printf(&want, "%s%s", i ? ", " : "", to[i].addr);
	}
	assert_string_equal(v, want.data);
	free(v);
	v = decoded_header(s, "Cc");
	assert_string_equal(v, want.data);
	free(v);
	v = header(s, "Reply-To");
	assert_string_equal(v, "User 1 <user1@example.com>");
	free(v);
	buf_free(&want);
	free(s);
	free(to);
	free(names);
	free(addrs);
}

static void test_ids_and_extra(void **state)
{
	(void)state;
	struct buf refs;
	buf_init(&refs, 1 << 16);
	for (int i = 0; i < 30; i++)
		buf_printf(&refs, "%s<id%d.abcdef@host.example>", i ? " \t" : "", i);
	static const char *const extra[] = {
		"User-Agent: yubin/0.1",
		("X-Long: aaaa bbbb cccc dddd eeee ffff gggg hhhh iiii jjjj kkkk llll mmmm nnnn "
		 "oooo pppp"),
		"Sender: someone <s@a.example>",
	};
	struct compose_msg m = base_msg();
	m.in_reply_to = "<id29.abcdef@host.example>";
	m.references = refs.data;
	m.extra_headers = extra;
	m.nextra = 3;
	size_t len;
	char *s = compose_ok(&m, &len);
	const char *order[] = { "Date:", "From:", "To:", "Subject:", "Message-ID:",
				"In-Reply-To:", "References:", "User-Agent:", "X-Long:",
				"Sender:", "MIME-Version:", "Content-Type:",
				"Content-Transfer-Encoding:" };
	const char *prev = s;
	for (size_t i = 0; i < ARRAY_LEN(order); i++) {
		char *k = xasprintf("%s%s", i ? "\r\n" : "", order[i]);
		const char *p = strstr(prev, k);
		if (p == NULL)
			fail_msg("%s not in order", order[i]);
		prev = p;
		free(k);
	}
	char *v = header(s, "References");
	for (char *p = refs.data; *p; p++)
		if (*p == '\t')
			*p = ' ';
	char *w = xstrdup(refs.data);
	/* " \t" became one blank */
	size_t o = 0;
	for (size_t i = 0; w[i]; i++)
		if (!(w[i] == ' ' && w[i + 1] == ' '))
			w[o++] = w[i];
	w[o] = '\0';
	assert_string_equal(v, w);
	free(w);
	free(v);
	v = header(s, "X-Long");
	assert_string_equal(v, extra[1] + 8);
	free(v);
	free(s);
	buf_free(&refs);
}

static void test_message_id(void **state)
{
	(void)state;
	char a[COMPOSE_MSGID_SIZE], b[COMPOSE_MSGID_SIZE];
	assert_int_equal(compose_message_id("mail.a.example", a, sizeof a), 0);
	assert_int_equal(compose_message_id("mail.a.example", b, sizeof b), 0);
	assert_int_equal(strlen(a), 1 + 26 + 1 + 14 + 1);
	assert_true(a[0] == '<' && a[27] == '@');
	assert_string_equal(a + 28, "mail.a.example>");
	assert_string_not_equal(a, b);
	/* usable as the Message-ID */
	struct compose_msg m = base_msg();
	m.message_id = a;
	size_t len;
	char *s = compose_ok(&m, &len);
	free(s);

	static const char *const bad[] = { "", "a..b", ".a", "a.", "a b", "a@b", "\xc3\xa9" };
	for (size_t i = 0; i < ARRAY_LEN(bad); i++) {
		assert_int_equal(compose_message_id(bad[i], a, sizeof a), -1);
		assert_string_equal(a, "");
	}
	assert_int_equal(compose_message_id(NULL, a, sizeof a), -1);
	assert_int_equal(compose_message_id("h", a, 30), -1);
	assert_int_equal(compose_message_id("h", a, 31), 0);
	char host[256];
	memset(host, 'h', 255);
	host[255] = '\0';
	assert_int_equal(compose_message_id(host, a, sizeof a), 0);
	char big[300];
	memset(big, 'h', 256);
	big[256] = '\0';
	assert_int_equal(compose_message_id(big, a, sizeof a), -1);
}

/* ---- caps ---- */

static struct compose_addr *many_addrs(size_t n)
{
	struct compose_addr *v = xcalloc(n, sizeof(*v));
	for (size_t i = 0; i < n; i++)
		v[i].addr = "r@b.example";
	return v;
}

static void test_cap_recipients(void **state)
{
	(void)state;
	struct compose_addr *v = many_addrs(COMPOSE_RCPTS_MAX + 1);
	struct compose_msg m = base_msg();
	size_t len;
	for (int f = 0; f < 3; f++) {
		m.to = m.cc = m.reply_to = v;
		m.nto = f == 0 ? COMPOSE_RCPTS_MAX : 1;
		m.ncc = f == 1 ? COMPOSE_RCPTS_MAX : 1;
		m.nreply_to = f == 2 ? COMPOSE_RCPTS_MAX : 1;
		char *s = compose_ok(&m, &len);
		free(s);
		if (f == 0)
			m.nto++;
		else if (f == 1)
			m.ncc++;
		else
			m.nreply_to++;
		compose_fails(&m, "too many recipients");
	}
	free(v);
}

static void test_cap_attachments(void **state)
{
	(void)state;
	struct compose_attachment *a = xcalloc(COMPOSE_ATT_MAX + 1, sizeof(*a));
	for (size_t i = 0; i <= COMPOSE_ATT_MAX; i++) {
		a[i].filename = "x.txt";
		a[i].data = (const unsigned char *)"x";
		a[i].len = 1;
	}
	struct compose_msg m = base_msg();
	m.att = a;
	m.natt = COMPOSE_ATT_MAX;
	size_t len;
	char *s = compose_ok(&m, &len);
	struct mime_message *mm = mime_parse(s, len, NULL);
	assert_int_equal(mm->parts[0].n_children, COMPOSE_ATT_MAX + 1);
	mime_message_free(&mm);
	free(s);
	m.natt++;
	compose_fails(&m, "too many attachments");
	free(a);
}

static void test_cap_subject(void **state)
{
	(void)state;
	char *subj = xmalloc(COMPOSE_SUBJECT_MAX + 2);
	for (size_t i = 0; i <= COMPOSE_SUBJECT_MAX; i++)
		subj[i] = i % 10 == 9 ? ' ' : 's';
	subj[COMPOSE_SUBJECT_MAX] = '\0';
	struct compose_msg m = base_msg();
	m.subject = subj;
	size_t len;
	char *s = compose_ok(&m, &len);
	char *v = header(s, "Subject");
	assert_string_equal(v, subj);
	free(v);
	free(s);
	/* 998 bytes of 2-byte characters: encoded, folded */
	for (size_t i = 0; i < COMPOSE_SUBJECT_MAX; i += 2)
		memcpy(subj + i, "\xc3\xa9", 2);
	s = compose_ok(&m, &len);
	v = decoded_header(s, "Subject");
	assert_string_equal(v, subj);
	free(v);
	free(s);
	subj[COMPOSE_SUBJECT_MAX] = 'x';
	subj[COMPOSE_SUBJECT_MAX + 1] = '\0';
	compose_fails(&m, "subject too long");
	free(subj);
}

static void test_cap_size(void **state)
{
	(void)state;
	/* 49 MiB base64s to more than 64 MiB */
	size_t n = 49 * 1024 * 1024;
	unsigned char *data = xcalloc(1, BIG);
	struct compose_attachment att = { "big", "application/octet-stream", data, n };
	struct compose_msg m = base_msg();
	m.att = &att;
	m.natt = 1;
	compose_fails(&m, "message too large");
	att.len = 46 * 1024 * 1024; /* 63 MiB encoded, line ends included */
	size_t len;
	char *s = compose_ok(&m, &len);
	assert_true(len <= COMPOSE_OUT_MAX);
	free(s);
	/* the inputs alone */
	att.len = BIG;
	compose_fails(&m, "message too large");
	m.natt = 0;
	memset(data, 'a', BIG);
	m.text = (const char *)data;
	m.text_len = BIG;
	compose_fails(&m, "message too large");
	m.text_len = 10;
	m.html = (const char *)data;
	m.html_len = COMPOSE_OUT_MAX;
	compose_fails(&m, "message too large");
	free(data);

	/* the caller's buffer is smaller: same, out untouched */
	m = base_msg();
	struct buf b;
	const char *why;
	buf_init(&b, 100);
	assert_int_equal(compose_message(&m, &b, &why), -1);
	assert_string_equal(why, "message too large");
	assert_int_equal(b.len, 0);
	buf_free(&b);
}

static void test_cap_strings(void **state)
{
	(void)state;
	char name[COMPOSE_NAME_MAX + 2];
	memset(name, 'n', sizeof name);
	name[COMPOSE_NAME_MAX] = '\0';
	struct compose_msg m = base_msg();
	m.from.name = name;
	size_t len;
	char *s = compose_ok(&m, &len);
	char *v = decoded_header(s, "From");
	assert_int_equal(strlen(v), COMPOSE_NAME_MAX + strlen(" <alice@a.example>"));
	free(v);
	free(s);
	name[COMPOSE_NAME_MAX] = 'n';
	name[COMPOSE_NAME_MAX + 1] = '\0';
	compose_fails(&m, "display name too long");

	m = base_msg();
	char fname[COMPOSE_FILENAME_MAX + 2];
	memset(fname, 'f', sizeof fname);
	fname[COMPOSE_FILENAME_MAX] = '\0';
	struct compose_attachment att = { fname, NULL, (const unsigned char *)"x", 1 };
	m.att = &att;
	m.natt = 1;
	s = compose_ok(&m, &len);
	check_filename(s, len, fname);
	free(s);
	fname[COMPOSE_FILENAME_MAX] = 'f';
	fname[COMPOSE_FILENAME_MAX + 1] = '\0';
	compose_fails(&m, "attachment file name too long");

	/* content types of COMPOSE_TYPE_MAX bytes */
	char type[COMPOSE_TYPE_MAX + 2];
	memset(type, 't', sizeof type);
	memcpy(type, "application/", 12);
	type[COMPOSE_TYPE_MAX] = '\0';
	att.filename = NULL;
	att.content_type = type;
	s = compose_ok_max(&m, &len, 998);
	check_tree(s, len, "multipart/mixed(text/plain,application/ttttttttttttttttttttttttttttt"
			   "tttttttttttttttttttttttttttttttttttttttttttttttttttt"
			   "tttttttttttttttttttt"
			   "tttttttttttttt)");
	free(s);
	type[COMPOSE_TYPE_MAX] = 't';
	type[COMPOSE_TYPE_MAX + 1] = '\0';
	compose_fails(&m, "bad attachment content type");

	/* a boundary prefix of COMPOSE_BOUNDARY_MAX characters */
	char bp[COMPOSE_BOUNDARY_MAX + 2];
	memset(bp, 'B', sizeof bp);
	bp[COMPOSE_BOUNDARY_MAX] = '\0';
	att.content_type = NULL;
	m.boundary = bp;
	s = compose_ok(&m, &len);
	check_tree(s, len, "multipart/mixed(text/plain,text/plain)");
	free(s);
	bp[COMPOSE_BOUNDARY_MAX] = 'B';
	bp[COMPOSE_BOUNDARY_MAX + 1] = '\0';
	compose_fails(&m, "bad boundary prefix");

	/* ids: COMPOSE_ID_MAX bytes each, COMPOSE_REFS_MAX of them */
	m = base_msg();
	char id[COMPOSE_ID_MAX + 2];
	memset(id, 'i', sizeof id);
	id[0] = '<';
	id[COMPOSE_ID_MAX - 1] = '>';
	id[COMPOSE_ID_MAX] = '\0';
	m.message_id = id;
	s = compose_ok_max(&m, &len, 998);
	free(s);
	id[COMPOSE_ID_MAX - 1] = 'i';
	id[COMPOSE_ID_MAX] = '>';
	id[COMPOSE_ID_MAX + 1] = '\0';
	compose_fails(&m, "bad Message-ID");
	m.message_id = "<a@b> <c@d>";
	compose_fails(&m, "bad Message-ID");

	m = base_msg();
	struct buf refs;
	buf_init(&refs, 1 << 20);
	for (int i = 0; i < COMPOSE_REFS_MAX; i++)
		buf_append_str(&refs, "<r@x> ");
	m.references = refs.data;
	m.in_reply_to = refs.data;
	s = compose_ok(&m, &len);
	free(s);
	buf_append_str(&refs, "<r@x>");
	m.references = refs.data;
	m.in_reply_to = NULL;
	compose_fails(&m, "bad References");
	m.references = NULL;
	m.in_reply_to = refs.data;
	compose_fails(&m, "bad In-Reply-To");
	buf_free(&refs);

	/* extra header lines: COMPOSE_EXTRA_MAX of COMPOSE_LINE_MAX bytes */
	m = base_msg();
	char line[COMPOSE_LINE_MAX + 2];
	memset(line, 'v', sizeof line);
	memcpy(line, "X-A: ", 5);
	line[COMPOSE_LINE_MAX] = '\0';
	const char **ex = xcalloc(COMPOSE_EXTRA_MAX + 1, sizeof(*ex));
	for (size_t i = 0; i <= COMPOSE_EXTRA_MAX; i++)
		ex[i] = i == 0 ? line : "X-B: b";
	m.extra_headers = ex;
	m.nextra = COMPOSE_EXTRA_MAX;
	s = compose_ok_max(&m, &len, 998);
	free(s);
	m.nextra++;
	compose_fails(&m, "too many extra header fields");
	m.nextra = 1;
	line[COMPOSE_LINE_MAX] = 'v';
	line[COMPOSE_LINE_MAX + 1] = '\0';
	compose_fails(&m, "bad extra header field");
	free(ex);
}

/* ---- refusals ---- */

static void test_failures(void **state)
{
	(void)state;
	static const char *const bad_addrs[] = {
		"", "a", "a@", "@b.example", "a b@c.example", "a@b..example", "\xc3\xbc@b.example",
		"a@b.example.", "<a@b.example>", "a@b.example>", "postmaster", "@a:b@c.example",
	};
	for (size_t i = 0; i < ARRAY_LEN(bad_addrs); i++) {
		struct compose_msg m = base_msg();
		struct compose_addr a = { "X", bad_addrs[i] };
		m.to = &a;
		compose_fails(&m, "invalid address");
		if (bad_addrs[i][0] != '\0') {
			m = base_msg();
			m.from.addr = bad_addrs[i];
			compose_fails(&m, "invalid address");
		}
	}

	struct compose_msg m = base_msg();
	m.from.addr = NULL;
	compose_fails(&m, "missing From address");
	m.from.addr = "";
	compose_fails(&m, "missing From address");

	/* CR or LF in any header input */
	static const char crlf[] = "a\r\nBcc: x@y";
	struct compose_addr a = { crlf, "x@b.example" };
	m = base_msg();
	m.to = &a;
	compose_fails(&m, "CR or LF in a header field");
	a.name = "ok";
	a.addr = "x@b.example\n";
	compose_fails(&m, "CR or LF in a header field");
	m = base_msg();
	m.from.name = "a\rb";
	compose_fails(&m, "CR or LF in a header field");
	m = base_msg();
	m.subject = crlf;
	compose_fails(&m, "CR or LF in a header field");
	m = base_msg();
	m.message_id = "<a@b>\r\n";
	compose_fails(&m, "CR or LF in a header field");
	m = base_msg();
	m.in_reply_to = "<a@b>\n<c@d>";
	compose_fails(&m, "CR or LF in a header field");
	m = base_msg();
	m.references = "<a@b>\n";
	compose_fails(&m, "CR or LF in a header field");
	const char *ex[] = { "X-A: a\r\nBcc: x" };
	m = base_msg();
	m.extra_headers = ex;
	m.nextra = 1;
	compose_fails(&m, "CR or LF in a header field");
	struct compose_attachment att = { "a\nb", NULL, (const unsigned char *)"x", 1 };
	m = base_msg();
	m.att = &att;
	m.natt = 1;
	compose_fails(&m, "CR or LF in a header field");
	att.filename = "a";
	att.content_type = "text/plain\r\n";
	compose_fails(&m, "bad attachment content type");

	/* UTF-8 and NUL */
	m = base_msg();
	m.text = "a\xff";
	m.text_len = 2;
	compose_fails(&m, "text is not valid UTF-8");
	m.text = "a\0b";
	m.text_len = 3;
	compose_fails(&m, "text contains a NUL byte");
	m = base_msg();
	m.html = "\xc3";
	m.html_len = 1;
	compose_fails(&m, "html is not valid UTF-8");
	m.html = "\0";
	compose_fails(&m, "html contains a NUL byte");
	m = base_msg();
	m.subject = "\xc3\x28";
	compose_fails(&m, "subject is not valid UTF-8");
	m = base_msg();
	m.from.name = "\xed\xa0\x80"; /* a surrogate */
	compose_fails(&m, "display name is not valid UTF-8");
	m = base_msg();
	att.content_type = NULL;
	att.filename = "\xe6\x97";
	m.att = &att;
	m.natt = 1;
	compose_fails(&m, "attachment file name is not valid UTF-8");

	/* content types */
	static const char *const bad_types[] = {
		"", "pdf", "/pdf", "application/", "a/b c", "a/b;c=d", "multipart/mixed",
		"Message/global", "a/b/c", "\xc3\xa9/x",
	};
	for (size_t i = 0; i < ARRAY_LEN(bad_types); i++) {
		att.filename = NULL;
		att.content_type = bad_types[i];
		compose_fails(&m, "bad attachment content type");
	}
	att.content_type = NULL;
	att.data = NULL;
	compose_fails(&m, "attachment without data");
	m.att = NULL;
	compose_fails(&m, "attachment list missing");

	/* ids */
	static const char *const bad_ids[] = {
		"x", "<>", "<a b>", "<a", "<a<b>", "a@b", "<\xc3\xa9>", " ",
	};
	for (size_t i = 0; i < ARRAY_LEN(bad_ids); i++) {
		m = base_msg();
		m.message_id = bad_ids[i];
		compose_fails(&m, "bad Message-ID");
		m = base_msg();
		m.references = bad_ids[i];
		compose_fails(&m, "bad References");
	}

	/* extra header fields */
	static const struct {
		const char *line;
		const char *why;
	} bad_ex[] = {
		{ "NoColon", "bad extra header field" },
		{ ": empty name", "bad extra header field" },
		{ "Two Words: x", "bad extra header field" },
		{ "X-A: caf\xc3\xa9", "bad extra header field" },
		{ "X-A: bell\a", "bad extra header field" },
		{ "bcc: x@y", "extra header field duplicates a composed field" },
		{ "SUBJECT: again", "extra header field duplicates a composed field" },
		{ "Content-Type: text/html", "extra header field duplicates a composed field" },
		{ "MIME-Version: 1.0", "extra header field duplicates a composed field" },
		{ "Message-Id: <a@b>", "extra header field duplicates a composed field" },
	};
	for (size_t i = 0; i < ARRAY_LEN(bad_ex); i++) {
		m = base_msg();
		m.extra_headers = &bad_ex[i].line;
		m.nextra = 1;
		compose_fails(&m, bad_ex[i].why);
	}
	m = base_msg();
	m.nextra = 1;
	compose_fails(&m, "bad extra header field");

	/* lists, text, boundaries */
	m = base_msg();
	m.to = NULL;
	compose_fails(&m, "recipient list missing");
	m = base_msg();
	m.text = NULL;
	compose_fails(&m, "text missing");
	static const char *const bad_b[] = { "", "a b", "a\"b", "a;b",
					     "12345678901234567890123456789012345678901" };
	for (size_t i = 0; i < ARRAY_LEN(bad_b); i++) {
		m = base_msg();
		m.boundary = bad_b[i];
		compose_fails(&m, "bad boundary prefix");
	}
	/* a fixed boundary that the content holds */
	m = base_msg();
	att = (struct compose_attachment){ NULL, NULL, (const unsigned char *)"x", 1 };
	m.att = &att;
	m.natt = 1;
	set_text(&m, "quoting a message:\n--b1.mix\n");
	compose_fails(&m, "boundary occurs in the content");
	m.att = NULL;
	m.natt = 0;
	m.html = "--b1.alt";
	m.html_len = 8;
	compose_fails(&m, "boundary occurs in the content");
	/* the same text with random boundaries is fine */
	m.boundary = NULL;
	size_t len;
	char *s = compose_ok(&m, &len);
	check_tree(s, len, "multipart/alternative(text/plain,text/html)");
	free(s);

	const char *why = "x";
	assert_int_equal(compose_message(NULL, NULL, &why), -1);
	assert_string_equal(why, "no message");
	m = base_msg();
	m.from.addr = NULL;
	struct buf b;
	buf_init(&b, 1000);
	assert_int_equal(compose_message(&m, &b, NULL), -1);
	buf_free(&b);
}

int main(void)
{
	setenv("TZ", "UTC", 1);
	tzset();
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_simple_exact),
		cmocka_unit_test(test_attachment_exact),
		cmocka_unit_test(test_line_ends),
		cmocka_unit_test(test_utf8_subject_and_name),
		cmocka_unit_test(test_plain_subject_folding),
		cmocka_unit_test(test_display_name_forms),
		cmocka_unit_test(test_iso2022jp),
		cmocka_unit_test(test_iso2022jp_unrepresentable),
		cmocka_unit_test(test_long_line_qp),
		cmocka_unit_test(test_cte_choice),
		cmocka_unit_test(test_attachment_roundtrip),
		cmocka_unit_test(test_forward_rfc822),
		cmocka_unit_test(test_guess_type),
		cmocka_unit_test(test_filename_2231),
		cmocka_unit_test(test_alternative),
		cmocka_unit_test(test_flowed),
		cmocka_unit_test(test_fold_recipients),
		cmocka_unit_test(test_ids_and_extra),
		cmocka_unit_test(test_message_id),
		cmocka_unit_test(test_cap_recipients),
		cmocka_unit_test(test_cap_attachments),
		cmocka_unit_test(test_cap_subject),
		cmocka_unit_test(test_cap_size),
		cmocka_unit_test(test_cap_strings),
		cmocka_unit_test(test_failures),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
