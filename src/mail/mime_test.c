/* mime_test.c - table-driven tests for the MIME parser.
 *
 * Each message case is written with LF line ends and run twice, as is and
 * with CRLF; the part dump (line ends shown as '|') must be the same. */
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

static void dump_params(struct buf *b, const struct mime_params *ps)
{
	buf_append_str(b, "{");
	for (size_t i = 0; i < ps->n; i++)
		buf_printf(b, "%s%s=%s", i ? ";" : "", ps->v[i].name, ps->v[i].value);
	buf_append_str(b, "}");
}

static void dump_bytes(struct buf *b, const char *d, size_t len)
{
	for (size_t i = 0; i < len; i++) {
		if (d[i] == '\r' && i + 1 < len && d[i + 1] == '\n')
			continue;
		buf_append_str(b, d[i] == '\n' ? "|" : d[i] == '\r' ? "~" : d[i] == '\0' ? "@"
			       : (char[]){d[i], 0});
	}
}

/* "SECTION type/sub dDEPTH cCHILDREN lLINES {params} [extras] !FLAGS [body]" */
static char *dump_part(const struct mime_message *m, size_t i, const char *data)
{
	const struct mime_part *p = &m->parts[i];
	struct buf b;
	buf_init(&b, 1 << 20);
	buf_printf(&b, "%s %s/%s d%u c%zu l%zu ", p->section, p->type, p->subtype, p->depth,
		   p->n_children, p->body_lines);
	dump_params(&b, &p->params);
	if (p->encoding)
		buf_printf(&b, " enc=%s", p->encoding);
	if (p->id)
		buf_printf(&b, " id=%s", p->id);
	if (p->description)
		buf_printf(&b, " desc=%s", p->description);
	if (p->disposition) {
		buf_printf(&b, " disp=%s", p->disposition);
		dump_params(&b, &p->disp_params);
	}
	if (p->language)
		buf_printf(&b, " lang=%s", p->language);
	if (p->location)
		buf_printf(&b, " loc=%s", p->location);
	if (p->md5)
		buf_printf(&b, " md5=%s", p->md5);
	static const struct { unsigned f; char c; } fl[] = {
		{MIME_PART_MESSAGE, 'M'}, {MIME_PART_CT_DEFAULT, 'D'}, {MIME_PART_NO_HDR_END, 'N'},
		{MIME_PART_NO_BOUNDARY, 'B'}, {MIME_PART_NO_CLOSE, 'C'},
		{MIME_PART_DEPTH_CAPPED, 'X'}, {MIME_PART_PARTS_CAPPED, 'P'},
		{MIME_PART_FIELD_TRUNCATED, 'T'}, {MIME_PART_PARAMS_CAPPED, 'Q'},
	};
	buf_append_str(&b, " !");
	for (size_t k = 0; k < ARRAY_LEN(fl); k++)
		if (p->flags & fl[k].f)
			buf_append(&b, &fl[k].c, 1);
	if (p->n_children == 0) {
		buf_append_str(&b, " [");
		dump_bytes(&b, data + p->body_off, p->body_len);
		buf_append_str(&b, "]");
	}
	return buf_steal(&b, NULL);
}

static char *to_crlf(const char *s, size_t len, size_t *len_r)
{
	char *out = xmalloc(len * 2 + 1);
	size_t n = 0;
	for (size_t i = 0; i < len; i++) {
		if (s[i] == '\n')
			out[n++] = '\r';
		out[n++] = s[i];
	}
	out[n] = '\0';
	*len_r = n;
	return out;
}

/* Structural invariants every parse must keep (also checked by the fuzzer). */
static void check_invariants(const struct mime_message *m, size_t len,
			     const struct mime_limits *lim)
{
	assert_true(m->n_parts >= 1 && m->n_parts <= lim->max_parts);
	assert_int_equal(m->parts[0].subtree_end, m->n_parts);
	for (size_t i = 0; i < m->n_parts; i++) {
		const struct mime_part *p = &m->parts[i];
		assert_true(p->hdr_off <= len && p->hdr_len <= len - p->hdr_off);
		assert_int_equal(p->body_off, p->hdr_off + p->hdr_len);
		assert_true(p->body_len <= len - p->body_off);
		assert_true(p->depth <= lim->max_depth);
		if (i == 0) {
			assert_true(p->parent == MIME_NONE);
			continue;
		}
		assert_true(p->parent < i);
		const struct mime_part *pp = &m->parts[p->parent];
		assert_int_equal(p->depth, pp->depth + 1);
		assert_true(p->hdr_off >= pp->body_off &&
			    p->body_off + p->body_len <= pp->body_off + pp->body_len);
		assert_true(i < pp->subtree_end && p->subtree_end <= pp->subtree_end);
	}
}

struct msg_case {
	const char *name;
	const char *input; /* LF line ends */
	size_t len;        /* 0: strlen */
	unsigned max_depth, max_parts; /* 0: default */
	const char *want[12];          /* dump of each part, NULL-terminated */
};

static const struct msg_case msg_cases[] = {
	{"simple text",
	 "From: a@b\nSubject: hi\n\nHello\nWorld\n", 0, 0, 0,
	 {"1 text/plain d0 c0 l2 {charset=us-ascii} !MD [Hello|World|]"}},
	{"related with alternative and inline image",
	 "From: a@b\n"
	 "Content-Type: multipart/related; boundary=\"rel\"\n"
	 "\n"
	 "preamble garbage\n"
	 "--rel\n"
	 "Content-Type: multipart/alternative; boundary=alt\n"
	 "\n"
	 "--alt\n"
	 "Content-Type: text/plain; charset=UTF-8\n"
	 "\n"
	 "plain\n"
	 "--alt\n"
	 "Content-Type: Text/HTML\n"
	 "\n"
	 "<p>html</p>\n"
	 "--alt--\n"
	 "\n"
	 "--rel\n"
	 "Content-Type: image/png; name=\"a.png\"\n"
	 "Content-ID: <img1@x>\n"
	 "Content-Disposition: inline; filename=a.png\n"
	 "Content-Transfer-Encoding: BASE64\n"
	 "\n"
	 "iVBORw0K\n"
	 "--rel--\n"
	 "epilogue\n", 0, 0, 0,
	 {" multipart/related d0 c2 l23 {boundary=rel} !M",
	  "1 multipart/alternative d1 c2 l9 {boundary=alt} !",
	  "1.1 text/plain d2 c0 l1 {charset=UTF-8} ! [plain]",
	  "1.2 text/html d2 c0 l1 {} ! [<p>html</p>]",
	  "2 image/png d1 c0 l1 {name=a.png} enc=base64 id=<img1@x> "
	  "disp=inline{filename=a.png} ! [iVBORw0K]"}},
	{"forwarded message with its own multipart",
	 "From: a\n"
	 "Content-Type: multipart/mixed; boundary=outer\n"
	 "\n"
	 "--outer\n"
	 "Content-Type: text/plain\n"
	 "\n"
	 "see below\n"
	 "--outer\n"
	 "Content-Type: message/rfc822\n"
	 "Content-Description: fwd\n"
	 "\n"
	 "From: b\n"
	 "Subject: inner\n"
	 "Content-Type: multipart/alternative; boundary=inner\n"
	 "\n"
	 "--inner\n"
	 "Content-Type: text/plain\n"
	 "\n"
	 "inner text\n"
	 "--inner\n"
	 "Content-Type: text/html\n"
	 "Content-Language: en, fr\n"
	 "Content-Location: http://x/y\n"
	 "Content-MD5: Q2hlY2sgSW50ZWdyaXR5IQ==\n"
	 "\n"
	 "<b>x</b>\n"
	 "--inner--\n"
	 "--outer--\n", 0, 0, 0,
	 {" multipart/mixed d0 c2 l25 {boundary=outer} !M",
	  "1 text/plain d1 c0 l1 {} ! [see below]",
	  "2 message/rfc822 d1 c1 l16 {} desc=fwd !",
	  "2 multipart/alternative d2 c2 l12 {boundary=inner} !M",
	  "2.1 text/plain d3 c0 l1 {} ! [inner text]",
	  "2.2 text/html d3 c0 l1 {} lang=en, fr loc=http://x/y md5=Q2hlY2sgSW50ZWdyaXR5IQ== ! "
	  "[<b>x</b>]"}},
	{"message/rfc822 with a single part",
	 "Content-Type: multipart/mixed; boundary=b\n\n--b\nContent-Type: message/rfc822\n\n"
	 "Subject: x\n\nbody\n--b--\n", 0, 0, 0,
	 {" multipart/mixed d0 c1 l7 {boundary=b} !M",
	  "1 message/rfc822 d1 c1 l3 {} !",
	  "1.1 text/plain d2 c0 l1 {charset=us-ascii} !MD [body]"}},
	{"top-level message/rfc822",
	 "Content-Type: message/rfc822\n\nSubject: x\n\nbody\n", 0, 0, 0,
	 {"1 message/rfc822 d0 c1 l3 {} !M",
	  "1.1 text/plain d1 c0 l1 {charset=us-ascii} !MD [body|]"}},
	{"base64 message/rfc822 is a leaf",
	 "Content-Type: message/rfc822\nContent-Transfer-Encoding: base64\n\nU3ViamVjdDogeAo=\n",
	 0, 0, 0,
	 {"1 message/rfc822 d0 c0 l1 {} enc=base64 !M [U3ViamVjdDogeAo=|]"}},
	{"digest children default to message/rfc822",
	 "Content-Type: multipart/digest; boundary=d\n\n--d\n\nSubject: one\n\n1\n"
	 "--d\nContent-Type: text/plain\n\ntwo\n--d--\n", 0, 0, 0,
	 {" multipart/digest d0 c2 l10 {boundary=d} !M",
	  "1 message/rfc822 d1 c1 l3 {} !D",
	  "1.1 text/plain d2 c0 l1 {charset=us-ascii} !MD [1]",
	  "2 text/plain d1 c0 l1 {} ! [two]"}},
	{"missing close delimiter",
	 "Content-Type: multipart/mixed; boundary=b\n\n--b\n\none\n--b\n\ntwo\n", 0, 0, 0,
	 {" multipart/mixed d0 c2 l6 {boundary=b} !MC",
	  "1 text/plain d1 c0 l1 {charset=us-ascii} !D [one]",
	  "2 text/plain d1 c0 l1 {charset=us-ascii} !D [two|]"}},
	{"inner part not closed, outer boundary wins",
	 "Content-Type: multipart/mixed; boundary=o\n\n--o\n"
	 "Content-Type: multipart/alternative; boundary=i\n\n--i\n\na\n--o\n\nb\n--o--\n", 0, 0, 0,
	 {" multipart/mixed d0 c2 l10 {boundary=o} !M",
	  "1 multipart/alternative d1 c1 l3 {boundary=i} !C",
	  "1.1 text/plain d2 c0 l1 {charset=us-ascii} !D [a]",
	  "2 text/plain d1 c0 l1 {charset=us-ascii} !D [b]"}},
	{"boundary never appears",
	 "Content-Type: multipart/mixed; boundary=zzz\n\n--b\nhello\n", 0, 0, 0,
	 {" multipart/mixed d0 c0 l2 {boundary=zzz} !MB [--b|hello|]"}},
	{"no boundary parameter",
	 "Content-Type: multipart/mixed\n\nhello\n", 0, 0, 0,
	 {" multipart/mixed d0 c0 l1 {} !MB [hello|]"}},
	{"boundary of 70 is fine",
	 "Content-Type: multipart/mixed; boundary="
	 "1234567890123456789012345678901234567890123456789012345678901234567890\n\n"
	 "--1234567890123456789012345678901234567890123456789012345678901234567890\n\nx\n"
	 "--1234567890123456789012345678901234567890123456789012345678901234567890--\n", 0, 0, 0,
	 {" multipart/mixed d0 c1 l4 {boundary="
	  "1234567890123456789012345678901234567890123456789012345678901234567890} !M",
	  "1 text/plain d1 c0 l1 {charset=us-ascii} !D [x]"}},
	{"boundary of 71 is refused",
	 "Content-Type: multipart/mixed; boundary="
	 "12345678901234567890123456789012345678901234567890123456789012345678901\n\n"
	 "--12345678901234567890123456789012345678901234567890123456789012345678901\n\nx\n", 0,
	 0, 0,
	 {" multipart/mixed d0 c0 l3 {boundary="
	  "12345678901234567890123456789012345678901234567890123456789012345678901} !MB "
	  "[--12345678901234567890123456789012345678901234567890123456789012345678901||x|]"}},
	{"close delimiter only",
	 "Content-Type: multipart/mixed; boundary=b\n\n--b--\n", 0, 0, 0,
	 {" multipart/mixed d0 c0 l1 {boundary=b} !MB [--b--|]"}},
	{"empty parts between delimiters",
	 "Content-Type: multipart/mixed; boundary=b\n\n--b\n--b\n\n\n--b--", 0, 0, 0,
	 {" multipart/mixed d0 c2 l5 {boundary=b} !M",
	  "1 text/plain d1 c0 l0 {charset=us-ascii} !DN []",
	  "2 text/plain d1 c0 l0 {charset=us-ascii} !D []"}},
	{"invalid content-type uses the default",
	 "Content-Type: text\n\nx", 0, 0, 0,
	 {"1 text/plain d0 c0 l1 {charset=us-ascii} !MD [x]"}},
	{"comments and duplicates",
	 "Content-Type: (c (nested)) text / plain (x) ; charset = \"a\\\"b\" (y); charset=z\n"
	 "Content-Type: image/gif\n\nx", 0, 0, 0,
	 {"1 text/plain d0 c0 l1 {charset=a\"b} !M [x]"}},
	{"folded content-type",
	 "Content-Type: multipart/mixed;\n\tboundary=\"b\"\n\n--b\n\nx\n--b--\n", 0, 0, 0,
	 {" multipart/mixed d0 c1 l4 {boundary=b} !M",
	  "1 text/plain d1 c0 l1 {charset=us-ascii} !D [x]"}},
	{"message with only headers",
	 "From: a\nSubject: b\n", 0, 0, 0,
	 {"1 text/plain d0 c0 l0 {charset=us-ascii} !MDN []"}},
	{"empty body", "From: a\n\n", 0, 0, 0,
	 {"1 text/plain d0 c0 l0 {charset=us-ascii} !MD []"}},
	{"empty input", "", 0, 0, 0, {"1 text/plain d0 c0 l0 {charset=us-ascii} !MDN []"}},
	{"no header at all", "\nbody", 0, 0, 0,
	 {"1 text/plain d0 c0 l1 {charset=us-ascii} !MD [body]"}},
	{"NUL bytes", "Subject: a\0b\nContent-Type: text/x\0y\n\nb\0dy\n", 42, 0, 0,
	 {"1 text/x d0 c0 l1 {} !M [b@dy|]"}},
	{"bare CR is data", "Content-Type: text/plain\n\na\rb\n", 0, 0, 0,
	 {"1 text/plain d0 c0 l1 {} !M [a~b|]"}},
	{"part cap of 3",
	 "Content-Type: multipart/mixed; boundary=b\n\n--b\n\n1\n--b\n\n2\n--b\n\n3\n--b--\n",
	 0, 0, 3,
	 {" multipart/mixed d0 c2 l10 {boundary=b} !MP",
	  "1 text/plain d1 c0 l1 {charset=us-ascii} !D [1]",
	  "2 text/plain d1 c0 l1 {charset=us-ascii} !D [2]"}},
	{"part cap of 1",
	 "Content-Type: multipart/mixed; boundary=b\n\n--b\n\n1\n--b\n\n2\n--b--\n", 0, 0, 1,
	 {" multipart/mixed d0 c0 l7 {boundary=b} !MP [--b||1|--b||2|--b--|]"}},
	{"depth cap of 1",
	 "Content-Type: multipart/mixed; boundary=o\n\n--o\n"
	 "Content-Type: message/rfc822\n\nSubject: x\n\ny\n--o--\n", 0, 1, 0,
	 {" multipart/mixed d0 c1 l7 {boundary=o} !M",
	  "1 message/rfc822 d1 c0 l3 {} !X [Subject: x||y]"}},
};

static void test_messages(void **state)
{
	(void)state;
	for (size_t c = 0; c < ARRAY_LEN(msg_cases); c++) {
		const struct msg_case *tc = &msg_cases[c];
		struct mime_limits lim = mime_limits_default;
		if (tc->max_depth)
			lim.max_depth = tc->max_depth;
		if (tc->max_parts)
			lim.max_parts = tc->max_parts;
		size_t inlen = tc->len ? tc->len : strlen(tc->input);
		for (int crlf = 0; crlf < 2; crlf++) {
			size_t len = inlen;
			char *data;
			if (crlf) {
				data = to_crlf(tc->input, inlen, &len);
			} else {
				data = xmalloc(len + 1);
				memcpy(data, tc->input, len); /* may hold NULs */
			}
			struct mime_message *m = mime_parse(data, len, &lim);
			check_invariants(m, len, &lim);
			size_t nwant = 0;
			while (nwant < ARRAY_LEN(tc->want) && tc->want[nwant] != NULL)
				nwant++;
			for (size_t i = 0; i < m->n_parts; i++) {
				char *got = dump_part(m, i, data);
				const char *want = i < nwant ? tc->want[i] : "(none)";
				if (strcmp(got, want) != 0)
					fail_msg("%s (%s) part %zu:\n got  %s\n want %s", tc->name,
						 crlf ? "CRLF" : "LF", i, got, want);
				free(got);
			}
			if (m->n_parts != nwant)
				fail_msg("%s: %zu parts, want %zu", tc->name, m->n_parts, nwant);
			mime_message_free(&m);
			assert_null(m);
			free(data);
		}
	}
}

/* ---- parameters ---- */

struct param_case {
	const char *name;
	const char *field;  /* Content-Type value */
	const char *want;   /* dumped parameters */
	unsigned flags;     /* part flags wanted besides M */
};

static const struct param_case param_cases[] = {
	{"plain", "text/plain; charset=us-ascii; format=flowed",
	 "{charset=us-ascii;format=flowed}", 0},
	{"names lower-cased, values kept", "text/plain; CharSet=UTF-8", "{charset=UTF-8}", 0},
	{"quoted with escapes", "a/b; x=\"a;b\\\\c\"", "{x=a;b\\c}", 0},
	{"unquoted with spaces (lenient)", "a/b; name=my file.pdf ; y=1",
	 "{name=my file.pdf;y=1}", 0},
	{"2231 continuations", "a/b; filename*0=\"long file \"; filename*1=\"name.pdf\"",
	 "{filename=long file name.pdf}", 0},
	{"2231 charset utf-8", "a/b; name*0*=utf-8''%E6%97%A5%E6%9C%AC; name*1*=%E8%AA%9E.txt",
	 "{name=\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e.txt}", 0},
	{"2231 out of order", "a/b; n*1=b; n*0=a; n*2=c", "{n=abc}", 0},
	{"2231 iso-8859-1 with language", "a/b; title*=iso-8859-1'en'caf%E9",
	 "{title=caf\xc3\xa9}", 0},
	{"2231 mixed encoded and plain segments", "a/b; t*0*=us-ascii''a%20b; t*1=%20c",
	 "{t=a b%20c}", 0},
	{"2231 unknown charset kept encoded", "a/b; x*=x-bogus-cs''%41%42", "{x=%41%42}", 0},
	{"2231 charset with // suffix refused", "a/b; x*=iso-8859-1//TRANSLIT''%E9",
	 "{x=%E9}", 0},
	{"2231 bad bytes kept encoded", "a/b; x*=iso-2022-jp''%1B%24%42%FF",
	 "{x=%1B%24%42%FF}", 0},
	/* charset names and readers as decode.h has them */
	{"2231 shift_jis as windows writes it", "a/b; x*=Shift_JIS''%87%40%81%60.txt",
	 "{x=\xe2\x91\xa0\xef\xbd\x9e.txt}", 0},
	{"2231 x-sjis", "a/b; x*0*=x-sjis''%93; x*1*=%FA.txt", "{x=\xe6\x97\xa5.txt}", 0},
	{"2231 iso-2022-jp katakana", "a/b; x*=ISO-2022-JP''%1B%28I6E%1B%28B.txt",
	 "{x=\xef\xbd\xb6\xef\xbe\x85.txt}", 0},
	{"2231 wins over plain", "a/b; name=\"old\"; name*=utf-8''new", "{name=new}", 0},
	{"2231 gap stops the join", "a/b; n*0=a; n*2=c", "{n=a}", 0},
	{"2231 without segment 0 falls back to plain", "a/b; n*1=x; n=y", "{n=y}", 0},
	{"2231 without segment 0 or plain is dropped", "a/b; n*1=x; m=1", "{m=1}", 0},
	{"2231 leading zero is not a segment", "a/b; n*01=x", "{n*01=x}", 0},
	{"2231 bad percent kept", "a/b; n*=utf-8''%zz%4", "{n=%zz%4}", 0},
	{"junk between params", "a/b; garbage ; =x; y; z=1", "{z=1}", 0},
	{"unterminated quote", "a/b; q=\"abc", "{q=abc}", 0},
	{"unterminated comment", "a/b; q=1 (abc", "{q=1 (abc}", 0},
	{"comment after an unquoted value", "text/plain; charset=us-ascii (Plain text)",
	 "{charset=us-ascii}", 0},
	{"comments after an unquoted value", "a/b; charset=Shift_JIS (a (b)) (c) ; q=1",
	 "{charset=Shift_JIS;q=1}", 0},
	{"parentheses inside an unquoted value", "a/b; name=file(1).pdf; n=my file (2)x",
	 "{name=file(1).pdf;n=my file (2)x}", 0},
	{"unbalanced parenthesis at the end", "a/b; q=a b)", "{q=a b)}", 0},
	{"only a comment", "a/b; q=(c)", "{q=}", 0},
};

static void test_params(void **state)
{
	(void)state;
	for (size_t c = 0; c < ARRAY_LEN(param_cases); c++) {
		const struct param_case *tc = &param_cases[c];
		char *msg = xasprintf("Content-Type: %s\r\n\r\n", tc->field);
		struct mime_message *m = mime_parse(msg, strlen(msg), NULL);
		struct buf b;
		buf_init(&b, 1 << 16);
		dump_params(&b, &m->parts[0].params);
		if (strcmp(b.data, tc->want) != 0)
			fail_msg("%s: got %s want %s", tc->name, b.data, tc->want);
		assert_int_equal(m->parts[0].flags & ~(unsigned)MIME_PART_MESSAGE, tc->flags);
		buf_free(&b);
		mime_message_free(&m);
		free(msg);
	}
}

/* ---- caps built by code ---- */

static char *nested(unsigned levels, size_t *len_r)
{
	struct buf b;
	buf_init(&b, 1 << 20);
	for (unsigned i = 0; i < levels; i++)
		buf_printf(&b, "Content-Type: multipart/mixed; boundary=b%ux\r\n\r\n--b%ux\r\n",
			   i, i);
	buf_append_str(&b, "Content-Type: text/plain\r\n\r\nleaf\r\n");
	for (unsigned i = levels; i-- > 0;)
		buf_printf(&b, "--b%ux--\r\n", i);
	return buf_steal(&b, len_r);
}

static char *many(size_t children, size_t *len_r)
{
	struct buf b;
	buf_init(&b, 1 << 22);
	buf_append_str(&b, "Content-Type: multipart/mixed; boundary=b\r\n\r\n");
	for (size_t i = 0; i < children; i++)
		buf_printf(&b, "--b\r\n\r\n%zu\r\n", i + 1);
	buf_append_str(&b, "--b--\r\n");
	return buf_steal(&b, len_r);
}

struct cap_case {
	const char *name;
	char *(*build)(size_t n, size_t *len_r);
	size_t n;
	size_t want_parts;
	unsigned want_depth;   /* of the last part */
	unsigned want_flags;   /* in mime_message.flags */
	const char *last_section;
};

static char *build_nested(size_t n, size_t *len_r)
{
	return nested((unsigned)n, len_r);
}

static const struct cap_case cap_cases[] = {
	/* 20 multiparts: the text part sits at depth 20, the cap */
	{"depth 20 fits", build_nested, 20, 21, 20, 0,
	 "1.1.1.1.1.1.1.1.1.1.1.1.1.1.1.1.1.1.1.1"},
	/* 21 levels: the 21st multipart (depth 20) is kept as a leaf */
	{"depth 21 capped", build_nested, 21, 21, 20, MIME_PART_DEPTH_CAPPED,
	 "1.1.1.1.1.1.1.1.1.1.1.1.1.1.1.1.1.1.1.1"},
	{"999 children fit", many, 999, 1000, 1, 0, "999"},
	{"1200 children capped", many, 1200, 1000, 1, MIME_PART_PARTS_CAPPED, "999"},
};

static void test_caps(void **state)
{
	(void)state;
	for (size_t c = 0; c < ARRAY_LEN(cap_cases); c++) {
		const struct cap_case *tc = &cap_cases[c];
		size_t len;
		char *data = tc->build(tc->n, &len);
		struct mime_message *m = mime_parse(data, len, NULL);
		check_invariants(m, len, &mime_limits_default);
		if (m->n_parts != tc->want_parts)
			fail_msg("%s: %zu parts", tc->name, m->n_parts);
		const struct mime_part *last = &m->parts[m->n_parts - 1];
		assert_int_equal(last->depth, tc->want_depth);
		assert_int_equal(m->flags & (MIME_PART_DEPTH_CAPPED | MIME_PART_PARTS_CAPPED),
				 tc->want_flags);
		assert_string_equal(last->section, tc->last_section);
		mime_message_free(&m);
		free(data);
	}
}

static void test_field_caps(void **state)
{
	(void)state;
	/* a Content-Description of 70,000 bytes is cut at 64 KiB */
	struct buf b;
	buf_init(&b, 1 << 20);
	buf_append_str(&b, "Content-Description: ");
	for (int i = 0; i < 70000; i++)
		buf_append_str(&b, "x");
	buf_append_str(&b, "\r\nContent-Type: text/plain;");
	for (int i = 0; i < MIME_PARAMS_MAX + 6; i++)
		buf_printf(&b, " p%d=%d;", i, i);
	buf_append_str(&b, "\r\n\r\nbody");
	struct mime_message *m = mime_parse(b.data, b.len, NULL);
	const struct mime_part *p = &m->parts[0];
	assert_int_equal(strlen(p->description), MIME_FIELD_MAX);
	assert_int_equal(p->params.n, MIME_PARAMS_MAX);
	assert_string_equal(mime_param_get(&p->params, "p63"), "63");
	assert_null(mime_param_get(&p->params, "p64"));
	assert_true(p->flags & MIME_PART_FIELD_TRUNCATED);
	assert_true(p->flags & MIME_PART_PARAMS_CAPPED);
	mime_message_free(&m);

	/* exactly 64 KiB is not truncated */
	buf_reset(&b);
	buf_append_str(&b, "Content-ID: ");
	for (int i = 0; i < MIME_FIELD_MAX; i++)
		buf_append_str(&b, "y");
	buf_append_str(&b, "\r\n\r\n");
	m = mime_parse(b.data, b.len, NULL);
	assert_int_equal(strlen(m->parts[0].id), MIME_FIELD_MAX);
	assert_false(m->parts[0].flags & MIME_PART_FIELD_TRUNCATED);
	mime_message_free(&m);
	buf_free(&b);
	mime_message_free(&m); /* NULL-safe */
}

static void test_find_section(void **state)
{
	(void)state;
	const char *msg = msg_cases[2].input; /* forwarded message, LF */
	struct mime_message *m = mime_parse(msg, strlen(msg), NULL);
	static const struct { const char *sec; size_t idx; } want[] = {
		{"", 0}, {"1", 1}, {"2", 2}, {"2.1", 4}, {"2.2", 5},
	};
	for (size_t i = 0; i < ARRAY_LEN(want); i++) {
		const struct mime_part *p = mime_find_section(m, want[i].sec);
		assert_non_null(p);
		assert_int_equal(p - m->parts, want[i].idx);
	}
	assert_null(mime_find_section(m, "3"));
	assert_null(mime_find_section(m, "2.3"));
	/* the encapsulated message: header is the inner message's header */
	const struct mime_part *in = &m->parts[3];
	assert_true(in->flags & MIME_PART_MESSAGE);
	char *subj = mime_header_find(msg + in->hdr_off, in->hdr_len, "subject", 100, NULL);
	assert_string_equal(subj, "inner");
	free(subj);
	assert_int_equal(m->parts[2].first_child, 3);
	assert_int_equal(m->parts[3].first_child, 4);
	assert_int_equal(m->parts[4].next_sibling, 5);
	assert_true(m->parts[5].next_sibling == MIME_NONE);
	assert_int_equal(m->parts[2].subtree_end, 6);
	assert_int_equal(m->parts[1].subtree_end, 2);
	assert_true(mime_part_is_message(&m->parts[2]));
	assert_true(mime_part_is_multipart(&m->parts[3]));
	mime_message_free(&m);
}

/* ---- header helpers ---- */

struct hdr_case {
	const char *name;
	const char *header;
	const char *field;
	size_t max;
	const char *want;  /* NULL: absent */
	bool truncated;
};

static const struct hdr_case hdr_cases[] = {
	{"simple", "From: a\r\nSubject: hello\r\n\r\nbody", "subject", 100, "hello", false},
	{"case-insensitive", "SUBJECT: x\r\n", "Subject", 100, "x", false},
	{"folded", "Subject: a\r\n  b\r\n\tc\r\nX: y\r\n", "subject", 100, "a  b\tc", false},
	{"folded LF", "Subject: a\n b\n\n", "subject", 100, "a b", false},
	{"blanks before colon", "Subject \t: x \r\n", "subject", 100, "x", false},
	{"first of two", "X: 1\r\nX: 2\r\n", "x", 100, "1", false},
	{"absent", "From: a\r\n", "subject", 100, NULL, false},
	{"not after the blank line", "From: a\r\n\r\nSubject: no\r\n", 
	 "subject", 100, NULL, false},
	{"prefix is not a match", "Subjects: a\r\n", "subject", 100, NULL, false},
	{"line without colon skipped", "garbage\r\nSubject: s\r\n", "subject", 100, "s", false},
	{"empty value", "Subject:\r\n", "subject", 100, "", false},
	{"no final line end", "Subject: end", "subject", 100, "end", false},
	{"truncated at max", "Subject: abcdef\r\n", "subject", 3, "abc", true},
	{"exactly max", "Subject: abc\r\n", "subject", 3, "abc", false},
};

static void test_header_find(void **state)
{
	(void)state;
	for (size_t c = 0; c < ARRAY_LEN(hdr_cases); c++) {
		const struct hdr_case *tc = &hdr_cases[c];
		bool trunc = !tc->truncated;
		char *v = mime_header_find(tc->header, strlen(tc->header), tc->field, tc->max,
					   &trunc);
		if (tc->want == NULL) {
			if (v != NULL)
				fail_msg("%s: got %s", tc->name, v);
		} else {
			if (v == NULL || strcmp(v, tc->want) != 0)
				fail_msg("%s: got %s want %s", tc->name, v ? v : "(null)",
					 tc->want);
			assert_int_equal(trunc, tc->truncated);
		}
		free(v);
	}
}

static void test_header_next(void **state)
{
	(void)state;
	const char *h = "A: 1\r\nB:2\r\n 3\r\nnocolon\r\nC : x\r\n\r\nD: body\r\n";
	static const struct { const char *name; const char *raw; } want[] = {
		{"A", " 1"}, {"B", "2\r\n 3"}, {"", "nocolon"}, {"C", " x"},
	};
	size_t pos = 0, n = 0;
	struct mime_field f;
	while (mime_header_next(h, strlen(h), &pos, &f)) {
		assert_true(n < ARRAY_LEN(want));
		assert_int_equal(f.name_len, strlen(want[n].name));
		assert_memory_equal(f.name, want[n].name, f.name_len);
		assert_int_equal(f.value_len, strlen(want[n].raw));
		assert_memory_equal(f.value, want[n].raw, f.value_len);
		n++;
	}
	assert_int_equal(n, ARRAY_LEN(want));
	assert_int_equal(pos, strlen("A: 1\r\nB:2\r\n 3\r\nnocolon\r\nC : x\r\n"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_messages),
		cmocka_unit_test(test_params),
		cmocka_unit_test(test_caps),
		cmocka_unit_test(test_field_caps),
		cmocka_unit_test(test_find_section),
		cmocka_unit_test(test_header_find),
		cmocka_unit_test(test_header_next),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
