/* text.c - the searchable text of a message.  See text.h. */
#include "mail/text.h"

#include <stdlib.h>
#include <string.h>

#include "core/util.h"
#include "mail/decode.h"
#include "mail/mime.h"
#include "mail/rfc2047.h"

/* Every field value of a header block, decoded, one per line. */
static int header_text(const char *hdr, size_t len, struct buf *out)
{
	size_t pos = 0;
	struct mime_field f;

	while (mime_header_next(hdr, len, &pos, &f)) {
		if (f.name_len == 0)
			continue;
		char *v = mime_unfold(f.value, f.value_len, MIME_FIELD_MAX, NULL);
		int r = rfc2047_decode(v, strlen(v), out);
		free(v);
		if (r < 0 || buf_append(out, "\n", 1) < 0)
			return -1;
	}
	return 0;
}

/* One text part's body, decoded to UTF-8. */
static int part_text(const char *data, const struct mime_part *p, struct buf *out)
{
	const char *body = data + p->body_off;
	size_t n = p->body_len;
	struct buf raw;
	const char *src = body;
	size_t srclen = n;
	int r = 0;

	buf_init(&raw, out->max);
	if (p->encoding && strcmp(p->encoding, "base64") == 0) {
		struct decode_b64 d;
		decode_b64_init(&d);
		if (decode_b64(&d, body, n, &raw) < 0 || decode_b64_finish(&d, &raw) < 0)
			r = -1;
		src = raw.data ? raw.data : "";
		srclen = raw.len;
	} else if (p->encoding && strcmp(p->encoding, "quoted-printable") == 0) {
		struct decode_qp d;
		decode_qp_init(&d);
		if (decode_qp(&d, body, n, &raw) < 0 || decode_qp_finish(&d, &raw) < 0)
			r = -1;
		src = raw.data ? raw.data : "";
		srclen = raw.len;
	}
	const char *cs = mime_param_get(&p->params, "charset");
	if (r == 0) {
		struct decode_charset dc;
		const char *e;
		if (cs && !str_ieq(cs, "us-ascii") && !str_ieq(cs, "utf-8") &&
		    decode_charset_init(&dc, cs, &e) == 0) {
			if (decode_charset(&dc, src, srclen, out) < 0 ||
			    decode_charset_finish(&dc, out) < 0)
				r = -1;
			decode_charset_free(&dc);
		} else if (buf_append(out, src, srclen) < 0) {
			r = -1;
		}
	}
	if (r == 0 && buf_append(out, "\n", 1) < 0)
		r = -1;
	buf_free(&raw);
	return r;
}

int mail_text_extract(const char *data, size_t len, struct buf *out)
{
	struct mime_message *m = mime_parse(data, len, NULL);
	int ok = 1;

	for (size_t i = 0; i < m->n_parts && ok; i++) {
		const struct mime_part *p = &m->parts[i];
		if ((p->flags & MIME_PART_MESSAGE) &&
		    header_text(data + p->hdr_off, p->hdr_len, out) < 0) {
			ok = 0;
			break;
		}
		if (p->first_child != MIME_NONE || strcmp(p->type, "text") != 0)
			continue;
		if (part_text(data, p, out) < 0)
			ok = 0;
	}
	mime_message_free(&m);
	return ok;
}
