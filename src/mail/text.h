/* text.h - the searchable text of a message, for the full-text index.
 *
 * The header's field values with encoded words decoded (RFC 2047), then
 * the body of every text part decoded from its Content-Transfer-Encoding
 * and converted from its charset to UTF-8 -- what IMAP SEARCH TEXT and BODY
 * look at.  Pure, no I/O; bounded by max bytes of output. */
#ifndef YUBIN_MAIL_TEXT_H
#define YUBIN_MAIL_TEXT_H

#include <stddef.h>

#include "core/buf.h"

/* Append the text of data[0..len) to out (out->max bounds it:
 * nothing is allocated past it).  1 when everything fit, 0 when out filled
 * up first (the text is then incomplete and must not be trusted to say
 * what a message does not contain). */
int mail_text_extract(const char *data, size_t len, struct buf *out);

#endif
