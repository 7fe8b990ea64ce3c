/* compose_fuzz.c - libFuzzer target for compose_message().
 *
 * Input: byte 0 = flags (bit 0 an html part, bit 1 flowed, bit 2
 * ISO-2022-JP, bit 3 a Cc, bit 4 Reply-To and In-Reply-To, bit 5 a fixed
 * boundary, bits 6-7 the number of attachments), byte 1 = more flags (bit 0
 * no subject, bit 1 the attachments get the fuzzed content type, bit 2 the
 * addresses are fuzzed too, bit 3 an extra header); the rest is split at
 * NUL bytes into from name, from address, to name, to address, subject,
 * text, html, file name, content type, extra header, and what follows is
 * the attachment data (each attachment a different slice of it).
 *
 * When composing works: the message is 7-bit, CR LF only, no line passes
 * 998 octets, mime_parse() finds 1 + html + attachments leaves with no
 * parse trouble, the text, html and attachments decode back to what was
 * given (the text with CR LF line ends, unflowed, and converted back from
 * ISO-2022-JP), the Subject decodes back and the file names parse back. */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/buf.h"
#include "core/util.h"
#include "mail/compose.h"
#include "mail/decode.h"
#include "mail/mime.h"
#include "mail/rfc2047.h"

#define NFIELDS 10

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_lines(const char *m, size_t len)
{
	size_t col = 0;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)m[i];
		if (c >= 0x80 || c == 0)
			abort();
		if (c == '\r') {
			if (i + 1 >= len || m[i + 1] != '\n')
				abort();
		} else if (c == '\n') {
			if (i == 0 || m[i - 1] != '\r')
				abort();
			col = 0;
		} else if (++col > 998) {
			abort();
		}
	}
	if (len < 2 || m[len - 1] != '\n')
		abort();
}

/* What the composer promises the reader gets back: CR LF lines, a final
 * one; flowed: trailing blanks dropped except on "-- ". */
static void expected_text(const char *s, size_t n, bool flowed, struct buf *o)
{
	for (size_t i = 0; i < n;) {
		size_t e = i;
		while (e < n && s[e] != '\r' && s[e] != '\n')
			e++;
		size_t k = e - i;
		if (flowed && !(k == 3 && memcmp(s + i, "-- ", 3) == 0))
			while (k > 0 && s[i + k - 1] == ' ')
				k--;
		buf_append(o, s + i, k);
		buf_append(o, "\r\n", 2);
		if (e < n)
			e += s[e] == '\r' && e + 1 < n && s[e + 1] == '\n' ? 2 : 1;
		i = e;
	}
}

/* RFC 3676 reading, delsp=no. */
static void unflow(const char *s, size_t n, struct buf *o)
{
	for (size_t i = 0; i < n;) {
		size_t e = i;
		while (e + 1 < n && !(s[e] == '\r' && s[e + 1] == '\n'))
			e++;
		if (e + 1 >= n)
			abort();
		const char *l = s + i;
		size_t k = e - i;
		bool sig = k == 3 && memcmp(l, "-- ", 3) == 0;
		if (k > 0 && l[0] == ' ') {
			l++;
			k--;
		}
		buf_append(o, l, k);
		if (sig || k == 0 || l[k - 1] != ' ')
			buf_append(o, "\r\n", 2);
		i = e + 2;
	}
}

static void decode_part(const char *msg, const struct mime_part *p, struct buf *out)
{
	const char *b = msg + p->body_off;
	if (p->encoding != NULL && strcmp(p->encoding, "base64") == 0) {
		struct decode_b64 d;
		decode_b64_init(&d);
		if (decode_b64(&d, b, p->body_len, out) < 0 || decode_b64_finish(&d, out) < 0 ||
		    d.garbage != 0)
			abort();
	} else if (p->encoding != NULL && strcmp(p->encoding, "quoted-printable") == 0) {
		struct decode_qp d;
		decode_qp_init(&d);
		if (decode_qp(&d, b, p->body_len, out) < 0 || decode_qp_finish(&d, out) < 0)
			abort();
	} else if (p->encoding == NULL || strcmp(p->encoding, "7bit") == 0) {
		buf_append(out, b, p->body_len);
	} else {
		abort();
	}
}

static bool same(const struct buf *a, const struct buf *b)
{
	return a->len == b->len && (a->len == 0 || memcmp(a->data, b->data, a->len) == 0);
}

static void trim(const char **s, size_t *n)
{
	while (*n > 0 && (**s == ' ' || **s == '\t')) {
		(*s)++;
		(*n)--;
	}
	while (*n > 0 && ((*s)[*n - 1] == ' ' || (*s)[*n - 1] == '\t'))
		(*n)--;
}

static void check_subject(const char *msg, size_t hlen, const char *subject)
{
	char *v = mime_header_find(msg, hlen, "Subject", 1 << 20, NULL);
	if (v == NULL)
		abort();
	struct buf d;
	buf_init(&d, 1 << 20);
	if (rfc2047_decode(v, strlen(v), &d) < 0)
		abort();
	const char *a = d.data ? d.data : "", *b = subject;
	size_t an = d.len, bn = strlen(subject);
	trim(&a, &an);
	trim(&b, &bn);
	if (an != bn || memcmp(a, b, an) != 0)
		abort();
	buf_free(&d);
	free(v);
}

static void check_message(const struct compose_msg *m, const char *msg, size_t len)
{
	check_lines(msg, len);
	const char *he = strstr(msg, "\r\n\r\n");
	if (he == NULL)
		abort();
	size_t hlen = (size_t)(he - msg) + 2;
	if (m->subject != NULL)
		check_subject(msg, hlen, m->subject);

	struct mime_message *mm = mime_parse(msg, len, NULL);
	if (mm->flags & (MIME_PART_CT_DEFAULT | MIME_PART_NO_BOUNDARY | MIME_PART_NO_CLOSE))
		abort();
	size_t want = 1 + (m->html != NULL) + m->natt, leaf = 0;
	struct buf got, exp, tmp;
	buf_init(&got, COMPOSE_OUT_MAX);
	buf_init(&exp, COMPOSE_OUT_MAX);
	buf_init(&tmp, COMPOSE_OUT_MAX);
	for (size_t i = 0; i < mm->n_parts; i++) {
		const struct mime_part *p = &mm->parts[i];
		if (p->n_children > 0)
			continue;
		buf_reset(&got);
		buf_reset(&exp);
		buf_reset(&tmp);
		decode_part(msg, p, &tmp);
		if (leaf == 0) {
			bool jp = m->charset != NULL;
			if (jp) {
				struct buf u;
				const char *err;
				buf_init(&u, COMPOSE_OUT_MAX);
				if (decode_charset_convert("ISO-2022-JP", tmp.data ? tmp.data : "",
							   tmp.len, &u, &err) < 0)
					abort();
				buf_reset(&tmp);
				buf_append(&tmp, u.data ? u.data : "", u.len);
				buf_free(&u);
			}
			if (m->flowed)
				unflow(tmp.data, tmp.len, &got);
			else
				buf_append(&got, tmp.data ? tmp.data : "", tmp.len);
			expected_text(m->text, m->text_len, m->flowed, &exp);
		} else if (leaf == 1 && m->html != NULL) {
			buf_append(&got, tmp.data ? tmp.data : "", tmp.len);
			expected_text(m->html, m->html_len, false, &exp);
		} else {
			const struct compose_attachment *a = &m->att[leaf - 1 - (m->html != NULL)];
			buf_append(&got, tmp.data ? tmp.data : "", tmp.len);
			buf_append(&exp, a->data, a->len);
			if (a->filename != NULL && a->filename[0] != '\0') {
				const char *f = mime_param_get(&p->disp_params, "filename");
				const char *n = mime_param_get(&p->params, "name");
				if (f == NULL || n == NULL || strcmp(f, a->filename) != 0 ||
				    strcmp(n, a->filename) != 0)
					abort();
			}
		}
		if (!same(&got, &exp))
			abort();
		leaf++;
	}
	if (leaf != want)
		abort();
	buf_free(&got);
	buf_free(&exp);
	buf_free(&tmp);
	mime_message_free(&mm);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 2)
		return 0;
	unsigned f0 = data[0], f1 = data[1];
	/* One copy, NUL-terminated fields in place. */
	char *copy = xmalloc(size + 1);
	memcpy(copy, data + 2, size - 2);
	copy[size - 2] = '\0';
	const char *field[NFIELDS];
	size_t flen[NFIELDS];
	size_t pos = 0, rest = size - 2;
	for (size_t i = 0; i < NFIELDS; i++) {
		field[i] = copy + MIN(pos, rest);
		size_t e = pos;
		while (e < rest && copy[e] != '\0')
			e++;
		flen[i] = e - MIN(pos, rest);
		if (e < rest)
			copy[e] = '\0';
		pos = e + 1;
	}
	const unsigned char *blob = (const unsigned char *)copy + MIN(pos, rest);
	size_t blen = rest - MIN(pos, rest);
	bool fuzz_addr = f1 & 4;

	struct compose_addr to[2] = {
		{ field[2], fuzz_addr ? field[3] : "to@b.example" },
		{ "Second Person", "second@c.example" },
	};
	struct compose_attachment att[3];
	size_t natt = f0 >> 6;
	for (size_t i = 0; i < natt; i++) {
		size_t off = blen * i / 3, end = i + 1 == natt ? blen : blen * (i + 1) / 3;
		att[i].filename = i == 0 ? field[7] : i == 1 ? NULL : "x.bin";
		att[i].content_type = (f1 & 2) ? field[8] : NULL;
		att[i].data = blob + off;
		att[i].len = end - off;
	}
	const char *extra[1] = { field[9] };
	struct compose_msg m = {
		.from = { field[0], fuzz_addr ? field[1] : "from@a.example" },
		.to = to,
		.nto = 1,
		.cc = to,
		.ncc = (f0 & 8) ? 2 : 0,
		.reply_to = to + 1,
		.nreply_to = (f0 & 16) ? 1 : 0,
		.subject = (f1 & 1) ? NULL : field[4],
		.text = field[5],
		.text_len = flen[5],
		.html = (f0 & 1) ? field[6] : NULL,
		.html_len = (f0 & 1) ? flen[6] : 0,
		.charset = (f0 & 4) ? "iso-2022-jp" : NULL,
		.flowed = f0 & 2,
		.att = att,
		.natt = natt,
		.in_reply_to = (f0 & 16) ? "<parent@a.example>" : NULL,
		.references = (f0 & 16) ? "<root@a.example> <parent@a.example>" : NULL,
		.message_id = "<fuzz@a.example>",
		.date = 1767268800,
		.extra_headers = extra,
		.nextra = (f1 & 8) ? 1 : 0,
		.boundary = (f0 & 32) ? "zz" : NULL,
	};

	struct buf out;
	const char *why = NULL;
	buf_init(&out, COMPOSE_OUT_MAX + 1);
	if (compose_message(&m, &out, &why) == 0) {
		check_message(&m, out.data, out.len);
	} else {
		if (why == NULL || out.len != 0)
			abort();
	}
	buf_free(&out);
	free(copy);
	return 0;
}
