/* web_assets.h - the page's files, compiled in from www/ at build time
 * (scripts/embed_assets.py writes web_assets.c; see src/proto/meson.build). */
#ifndef YUBIN_PROTO_WEB_ASSETS_H
#define YUBIN_PROTO_WEB_ASSETS_H

#include <stddef.h>

struct web_asset {
	const char *path;           /* "/" (index.html), "/app.js" */
	const char *content_type;
	const unsigned char *data;  /* len bytes (and a NUL after them) */
	size_t len;
};

/* Ends with an entry whose path is NULL. */
extern const struct web_asset web_assets[];

#endif
