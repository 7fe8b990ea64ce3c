/* jmap_view.h - the webmail's safe view of an HTML part:
 * GET /jmap/view/{accountId}/{blobId}?images=0|1 (a Yubin resource, not
 * RFC 8620's), shown by the page in an <iframe sandbox>.
 *
 * blobId is a part's blob id ("b<body>p<section>", jmap_mail.h) naming a
 * text/html part.  The whole message is read (jmap_blob_read of the
 * message's blob), parsed (mime.h), the part decoded from its transfer
 * encoding and its charset to UTF-8 (an unknown or refused charset, UTF-7
 * among them, is read as UTF-8: invalid bytes become U+FFFD, so markup
 * spelled in another charset stays text) and sanitised by html_sanitize:
 * remote images only with images=1, "cid:" images as data: URLs of the
 * message's image parts (png, jpeg, gif, webp) with that Content-ID,
 * each as long as an attribute may be (HTML_SANITIZE_ATTR_MAX) and
 * JMAP_VIEW_CID_TOTAL_MAX in all.  The document is
 * "<!doctype html><meta charset=utf-8><base target=_blank>", a <style> of
 * readable defaults (system font, wrapping, images fit the width) and the
 * sanitised fragment; the session side adds the headers (CSP with
 * sandbox, nosniff, no-referrer, no-store, X-Yubin-Remote-Images).
 *
 * Pool thread only (store and file reads). */
#ifndef YUBIN_PROTO_JMAP_VIEW_H
#define YUBIN_PROTO_JMAP_VIEW_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct store;

#define JMAP_VIEW_MSG_MAX (64u * 1024 * 1024)
#define JMAP_VIEW_CID_TOTAL_MAX (4u * 1024 * 1024)

struct jmap_view {
	int status;            /* 200, 404 (no such part), 415 (not HTML), 500 */
	char *html;            /* heap, status 200 */
	size_t len;
	size_t remote_images;  /* blocked (images=0) */
	size_t cid_images;     /* given a data: URL */
	const char *cut;       /* html_sanitize's reason for a cut output, or NULL */
};

/* Render blob blobid of the account into *v (cleared first). */
void jmap_view_render(struct store *st, int64_t account_id, const char *blobid,
		      bool remote_images, struct jmap_view *v);
/* NULL-safe; clears *v. */
void jmap_view_free(struct jmap_view *v);

#endif
