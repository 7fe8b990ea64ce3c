/* jmap_view.c - the sanitised HTML view of a part (see jmap_view.h). */
#include "proto/jmap/jmap_view.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/buf.h"
#include "core/log.h"
#include "core/util.h"
#include "mail/decode.h"
#include "mail/html_sanitize.h"
#include "mail/mime.h"
#include "proto/jmap/jmap_mail.h"

#define SECTION_MAX 128
/* Our wrapper: readable defaults the mail's own markup overrides. */
#define DOC_HEAD "<!doctype html><meta charset=utf-8><base target=_blank>" \
	"<style>body{margin:8px;font-family:system-ui,sans-serif;line-height:1.5;" \
	"overflow-wrap:anywhere}img{max-width:100%;height:auto}" \
	"pre{white-space:pre-wrap}</style>\n"

struct view_msg {
	const char *data;
	size_t len;
	const struct mime_message *m;
	size_t cid_total;          /* bytes of data: URLs given so far */
};

/* The body of part p decoded from its transfer encoding into out (cut at
 * out->max). */
static void transfer_decode(const struct view_msg *g, const struct mime_part *p,
			    struct buf *out)
{
	const char *b = g->data + p->body_off;
	if (p->encoding && strcmp(p->encoding, "base64") == 0) {
		struct decode_b64 d;
		decode_b64_init(&d);
		if (decode_b64(&d, b, p->body_len, out) == 0)
			decode_b64_finish(&d, out);
	} else if (p->encoding && strcmp(p->encoding, "quoted-printable") == 0) {
		struct decode_qp d;
		decode_qp_init(&d);
		if (decode_qp(&d, b, p->body_len, out) == 0)
			decode_qp_finish(&d, out);
	} else {
		size_t n = p->body_len < buf_room(out) ? p->body_len : buf_room(out);
		buf_append(out, b, n);
	}
}

/* The part's text in UTF-8 into out.  Unknown or refused charsets (UTF-7):
 * the bytes as they are, for html_sanitize to read as UTF-8. */
static void part_utf8(const struct view_msg *g, const struct mime_part *p, struct buf *out)
{
	struct buf raw;
	buf_init(&raw, HTML_SANITIZE_IN_MAX);
	transfer_decode(g, p, &raw);
	const char *cs = mime_param_get(&p->params, "charset");
	struct decode_charset d;
	const char *err = NULL;
	if (cs == NULL || strcasecmp(cs, "utf-8") == 0 || strcasecmp(cs, "us-ascii") == 0 ||
	    decode_charset_init(&d, cs, &err) < 0) {
		buf_append(out, raw.data ? raw.data : "", raw.len);
	} else {
		/* an overflow keeps what fits: html_sanitize cuts there anyway */
		if (decode_charset(&d, raw.data ? raw.data : "", raw.len, out) == 0)
			decode_charset_finish(&d, out);
		decode_charset_free(&d);
	}
	buf_free(&raw);
}

static bool cid_image_type(const struct mime_part *p)
{
	static const char *const ok[] = {"png", "jpeg", "gif", "webp", NULL};
	if (strcmp(p->type, "image") != 0)
		return false;
	for (size_t i = 0; ok[i]; i++)
		if (strcmp(p->subtype, ok[i]) == 0)
			return true;
	return false;
}

/* Content-ID "<x>" (or x) equals cid. */
static bool cid_equal(const char *id, const char *cid)
{
	while (*id == ' ' || *id == '\t')
		id++;
	size_t n = strlen(id);
	while (n && (id[n - 1] == ' ' || id[n - 1] == '\t'))
		n--;
	if (n >= 2 && id[0] == '<' && id[n - 1] == '>') {
		id++;
		n -= 2;
	}
	return n == strlen(cid) && strncasecmp(id, cid, n) == 0;
}

/* html_sanitize's cid callback: a data: URL of the image part with that
 * Content-ID, when it fits. */
static int cid_url(void *arg, const char *cid, struct buf *url)
{
	struct view_msg *g = arg;
	const struct mime_part *hit = NULL;
	for (size_t i = 0; i < g->m->n_parts && !hit; i++) {
		const struct mime_part *p = &g->m->parts[i];
		if (p->id && p->first_child == MIME_NONE && cid_equal(p->id, cid))
			hit = p;
	}
	if (hit == NULL || !cid_image_type(hit))
		return -1;
	char prefix[48];
	int pl = snprintf(prefix, sizeof prefix, "data:image/%s;base64,", hit->subtype);
	size_t room = buf_room(url);
	if (pl < 0 || room <= (size_t)pl + 4)
		return -1;
	size_t max_bytes = (room - (size_t)pl) / 4 * 3;
	struct buf raw;
	buf_init(&raw, max_bytes + 1);
	transfer_decode(g, hit, &raw);
	size_t need = (size_t)pl + B64_LEN(raw.len);
	if (raw.len == 0 || raw.len > max_bytes || need > room ||
	    g->cid_total + need > JMAP_VIEW_CID_TOTAL_MAX) {
		buf_free(&raw);
		return -1;
	}
	char *enc = xmalloc(B64_LEN(raw.len) + 1);
	size_t el = base64_encode((const unsigned char *)raw.data, raw.len, enc);
	buf_free(&raw);
	int rc = buf_append(url, prefix, (size_t)pl) < 0 || buf_append(url, enc, el) < 0 ? -1 : 0;
	free(enc);
	if (rc == 0)
		g->cid_total += need;
	return rc;
}

/* "b<message>p<section with '_'>" -> the message's blob id and the
 * section with '.'; false when blobid names no part. */
static bool split_blob(const char *blobid, char *msg, size_t msz, char *sec, size_t ssz)
{
	if (blobid[0] != 'b')
		return false;
	const char *p = strchr(blobid, 'p');
	if (p == NULL || p == blobid + 1 || (size_t)(p - blobid) >= msz || p[1] == '\0' ||
	    strlen(p + 1) >= ssz)
		return false;
	for (const char *c = blobid + 1; c < p; c++)
		if (!((*c >= '0' && *c <= '9') || *c == 'x'))
			return false;
	memcpy(msg, blobid, (size_t)(p - blobid));
	msg[p - blobid] = '\0';
	size_t i = 0;
	for (const char *c = p + 1; *c; c++) {
		if (*c == '_' && i > 0 && c[1] != '\0' && c[1] != '_')
			sec[i++] = '.';
		else if (*c >= '0' && *c <= '9')
			sec[i++] = *c;
		else
			return false;
	}
	sec[i] = '\0';
	return true;
}

void jmap_view_render(struct store *st, int64_t account_id, const char *blobid,
		      bool remote_images, struct jmap_view *v)
{
	memset(v, 0, sizeof *v);
	char msgid[64], sec[SECTION_MAX];
	if (!split_blob(blobid, msgid, sizeof msgid, sec, sizeof sec)) {
		v->status = 404;
		return;
	}
	struct buf data;
	buf_init(&data, JMAP_VIEW_MSG_MAX);
	int rc = jmap_blob_read(st, account_id, msgid, &data);
	if (rc != 1) {
		v->status = rc == 0 ? 404 : 500;
		buf_free(&data);
		return;
	}
	struct mime_message *m = mime_parse(data.data, data.len, NULL);
	const struct mime_part *p = mime_find_section(m, sec);
	if (p == NULL) {
		v->status = 404;
	} else if (strcmp(p->type, "text") != 0 || strcmp(p->subtype, "html") != 0 ||
		   p->first_child != MIME_NONE) {
		v->status = 415;
	} else {
		struct view_msg g = {.data = data.data, .len = data.len, .m = m};
		struct buf text, out;
		buf_init(&text, HTML_SANITIZE_IN_MAX);
		part_utf8(&g, p, &text);
		buf_init(&out, HTML_SANITIZE_OUT_MAX);
		buf_append_str(&out, DOC_HEAD);
		struct html_sanitize_opts o = {.allow_remote_images = remote_images,
					       .cid_url = cid_url, .cid_arg = &g};
		struct html_sanitize_report rep;
		html_sanitize(text.data ? text.data : "", text.len, &o, &out, &rep);
		buf_free(&text);
		v->status = 200;
		v->remote_images = rep.remote_images;
		v->cid_images = rep.cid_images;
		v->cut = rep.cut;
		v->html = buf_steal(&out, &v->len);
	}
	mime_message_free(&m);
	buf_free(&data);
}

void jmap_view_free(struct jmap_view *v)
{
	if (v == NULL)
		return;
	free(v->html);
	memset(v, 0, sizeof *v);
}
