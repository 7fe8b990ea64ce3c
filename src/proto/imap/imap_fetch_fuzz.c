/* imap_fetch_fuzz.c - libFuzzer target: FETCH rendering of arbitrary mail.
 *
 * Byte 0 picks the options (bit 0: UTF8=ACCEPT; bit 1: small MIME limits
 * so that caps are reached; bit 2: a small output buffer so that overflow
 * paths run), the rest is the message.  For the whole message and for
 * every part it renders ENVELOPE (message parts), BODY and BODYSTRUCTURE
 * and checks the output: parentheses balance, quoted strings are closed
 * and hold no CR, LF or NUL (no 8-bit byte either without UTF8=ACCEPT),
 * literals are as long as announced, and the whole line is accepted by the
 * IMAP command parser.  A failed write must leave the buffer as it was.
 * Then every part's sections (HEADER, TEXT, MIME, HEADER.FIELDS(.NOT),
 * BINARY) must lie inside the message or the scratch buffer. */
#include <assert.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/buf.h"
#include "core/util.h"
#include "mail/mime.h"
#include "proto/imap/imap_fetch.h"
#include "proto/imap/imap_parser.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(c) do { if (!(c)) abort(); } while (0)

/* Lexical check of one rendered item.  norm gets a copy with a space
 * between ")(" (body-type-mpart has none, command arguments need one). */
static void check_syntax(const char *s, size_t len, bool utf8, struct buf *norm)
{
	size_t depth = 0, i = 0;

	while (i < len) {
		unsigned char c = (unsigned char)s[i];
		size_t start = i;
		if (c == '(') {
			if (i > 0 && s[i - 1] == ')')
				CHECK(buf_append(norm, " ", 1) == 0);
			depth++;
			i++;
		} else if (c == ')') {
			CHECK(depth > 0);
			depth--;
			i++;
		} else if (c == '"') {
			for (i++; i < len && s[i] != '"'; i++) {
				CHECK(s[i] != '\r' && s[i] != '\n' && s[i] != '\0');
				CHECK(utf8 || (unsigned char)s[i] < 0x80);
				if (s[i] == '\\') {
					i++;
					CHECK(i < len && (s[i] == '"' || s[i] == '\\'));
				}
			}
			CHECK(i < len);
			i++;
		} else if (c == '{') {
			size_t n = 0;
			for (i++; i < len && s[i] >= '0' && s[i] <= '9'; i++)
				n = n * 10 + (size_t)(s[i] - '0');
			CHECK(len - i >= 3 && memcmp(s + i, "}\r\n", 3) == 0);
			i += 3;
			CHECK(len - i >= n && memchr(s + i, '\0', n) == NULL);
			i += n;
		} else {
			CHECK(c >= 0x20 && c < 0x7f);
			i++;
		}
		CHECK(buf_append(norm, s + start, i - start) == 0);
	}
	CHECK(depth == 0);
}

/* The IMAP command parser must take "a X <item>" as one command. */
static void check_parses(const char *s, size_t len)
{
	struct imap_parser_limits lim;
	imap_parser_limits_default(&lim, true);
	lim.line_max = SIZE_MAX / 4;
	lim.depth_max = IMAP_DEPTH_HARD_MAX;
	lim.args_max = UINT32_MAX / 2;
	struct imap_parser *p = imap_parser_new(&lim);
	struct buf cmd;
	buf_init(&cmd, SIZE_MAX / 4);
	CHECK(buf_append_str(&cmd, "a X ") == 0 && buf_append(&cmd, s, len) == 0 &&
	      buf_append_str(&cmd, "\r\n") == 0);
	size_t used = 0;
	enum imap_parse_result r;
	do {
		size_t c;
		r = imap_parser_feed(p, cmd.data + used, cmd.len - used, &c);
		used += c;
	} while (r == IMAP_PARSE_CONTINUE);
	CHECK(r == IMAP_PARSE_DONE && used == cmd.len);
	buf_free(&cmd);
	imap_parser_free(&p);
}

static void check_item(struct buf *out, int r, size_t before, bool utf8)
{
	if (r < 0) {
		CHECK(out->len == before);
		return;
	}
	CHECK(r == 0);
	struct buf norm;
	buf_init(&norm, SIZE_MAX / 4);
	check_syntax(out->data + before, out->len - before, utf8, &norm);
	check_parses(norm.data, norm.len);
	buf_free(&norm);
}

static void check_slice(const char *msg, size_t len, const struct buf *scratch,
			const char *p, size_t n)
{
	bool in_msg = p >= msg && p <= msg + len && n <= (size_t)(msg + len - p);
	bool in_scratch = scratch->data != NULL && p >= scratch->data &&
			  p <= scratch->data + scratch->len &&
			  n <= (size_t)(scratch->data + scratch->len - p);
	CHECK(in_msg || in_scratch);
}

static void sections(const char *msg, size_t len, const struct mime_message *m, size_t i)
{
	static const struct {
		const char *kind, *spec;
	} specs[] = {
		{"BODY[", ""}, {"BODY[", "HEADER"}, {"BODY[", "TEXT"}, {"BODY[", "MIME"},
		{"BODY.PEEK[", "HEADER.FIELDS (From Subject \"Content-Type\")]<1.20>"},
		{"BODY[", "HEADER.FIELDS.NOT (Received To)"}, {"BINARY[", ""},
		{"BINARY.SIZE[", ""}, {"BINARY.PEEK[", "]<3.9>"},
	};
	const char *secname = m->parts[i].section;
	for (size_t k = 0; k < ARRAY_LEN(specs); k++) {
		const char *spec = specs[k].spec;
		bool tail = spec[0] != '\0' && spec[0] != ']';
		char *s = xasprintf("%s%s%s%s%s", specs[k].kind, secname,
				    secname[0] != '\0' && tail ? "." : "", spec,
				    strchr(spec, ']') != NULL ? "" : "]");
		struct imap_fetch_section sec;
		const char *error;
		if (imap_fetch_section_parse(s, strlen(s), &sec, &error) < 0) {
			free(s);        /* "BODY[MIME]", "BINARY[]"... */
			continue;
		}
		struct buf scratch, out, name;
		buf_init(&scratch, 1 << 20);
		buf_init(&out, 1 << 20);
		buf_init(&name, 4096);
		const char *p;
		size_t n;
		int r = imap_section_get(msg, len, m, &sec, &scratch, &p, &n);
		CHECK(r == 0 || r == 1);
		if (r == 0) {
			check_slice(msg, len, &scratch, p, n);
			imap_partial(&sec, &p, &n);
			check_slice(msg, len, &scratch, p, n);
		} else {
			CHECK(p == NULL && n == 0);
		}
		r = imap_binary_get(msg, len, m, &sec, &out);
		CHECK(r >= IMAP_BINARY_MULTIPART && r <= IMAP_BINARY_NONE);
		if (r != IMAP_BINARY_OK)
			CHECK(out.len == 0);
		CHECK(imap_fetch_item_name(&name, &sec) == 0);
		struct buf norm;
		buf_init(&norm, SIZE_MAX / 4);
		check_syntax(name.data, name.len, false, &norm);
		buf_free(&norm);
		buf_free(&scratch);
		buf_free(&out);
		buf_free(&name);
		free(s);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size == 0)
		return 0;
	bool utf8 = data[0] & 1;
	struct mime_limits lim = mime_limits_default;
	if (data[0] & 2) {
		lim.max_depth = 2;
		lim.max_parts = 5;
	}
	size_t max = data[0] & 4 ? 64 : 1 << 22;
	const char *msg = (const char *)data + 1;
	size_t len = size - 1;

	struct mime_message *m = mime_parse(msg, len, &lim);
	struct buf out;
	buf_init(&out, max);
	for (size_t i = 0; i < m->n_parts; i++) {
		size_t before = out.len;
		if (m->parts[i].flags & MIME_PART_MESSAGE)
			check_item(&out, imap_envelope(&out, msg, len, m, i), before, false);
		buf_reset(&out);
		check_item(&out, imap_bodystructure(&out, msg, len, m, i, false, utf8), 0, utf8);
		buf_reset(&out);
		check_item(&out, imap_bodystructure(&out, msg, len, m, i, true, utf8), 0, utf8);
		buf_reset(&out);
		sections(msg, len, m, i);
	}
	buf_free(&out);
	mime_message_free(&m);
	return 0;
}
