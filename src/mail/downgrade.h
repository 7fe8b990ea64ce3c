/* downgrade.h - 8-bit to 7-bit conversion of a message for a server that
 * does not offer 8BITMIME (RFC 6152 section 3, RFC 1652).
 *
 * A message with 8-bit data may go to such a server only after it has been
 * made 7-bit; when that is impossible the message must be bounced (5.6.3).
 * downgrade_7bit() re-encodes every leaf part whose body has 8-bit bytes as
 * quoted-printable (RFC 2045 6.7) and labels it so; everything else is
 * copied byte for byte.  It fails, with a static English reason for the
 * bounce, when the 8-bit data is somewhere no encoding may go: a header
 * field, a multipart preamble or epilogue, a part that is already base64,
 * quoted-printable or binary, a message part other than message/rfc822
 * (message/global included), or past the parser's depth and part limits.
 *
 * Header changes, all in the Content-* and MIME-Version fields: a
 * re-encoded part gets "Content-Transfer-Encoding: quoted-printable" (in
 * place of its old field, folded or not; added at the end of its header
 * when there was none); one without a valid Content-Type also gets
 * "Content-Type: text/plain; charset=unknown-8bit" (RFC 1428: its default
 * us-ascii is no longer true and nobody said which charset it is); a
 * message (top level or encapsulated) with a re-encoded part inside gets
 * "MIME-Version: 1.0" when it has none; and every other part labelled
 * "8bit" is relabelled "7bit", since nothing in it is 8-bit any more.
 *
 * "8-bit" means a byte >= 0x80.  NUL and other controls are 7-bit for this
 * purpose: 8BITMIME does not allow them either, so they are not a reason to
 * convert (inside a converted part they are encoded like any other byte).
 *
 * Pure, no I/O, no recursion (the part tree comes flat from mime_parse()). */
#ifndef YUBIN_MAIL_DOWNGRADE_H
#define YUBIN_MAIL_DOWNGRADE_H

#include <stdbool.h>
#include <stddef.h>

struct buf;

/* Largest message that is converted.  The conversion works on the whole
 * message in memory and quoted-printable can make a body more than three
 * times as long, so one delivery could otherwise hold several hundred MiB
 * (message_size_limit may be up to 2 GiB); 64 MiB is well above the
 * default limit (25M) and what legacy servers accept anyway.  A message
 * without 8-bit data needs no conversion and is copied at any size. */
#define DOWNGRADE_MAX ((size_t)64 * 1024 * 1024)

/* An out->max of at least this never makes a conversion of len bytes fail
 * for room: a body grows at most 3.13 times (every byte "=XX", a soft break
 * per 73 or more encoded bytes) and each part's header by at most a few
 * added fields. */
#define DOWNGRADE_OUT_MAX(len) (4 * (size_t)(len) + (size_t)256 * 1024)

/* Append the 7-bit form of msg[0..len) to out and return 0; or return -1
 * with *why_r set to a static English reason (e.g. "8-bit data in a header
 * field") and out as it was.  A message without 8-bit data is appended
 * unchanged.  Line ends of the message may be CR LF or bare LF; re-encoded
 * bodies and added header fields end their lines in CR LF. */
int downgrade_7bit(const char *msg, size_t len, struct buf *out, const char **why_r);

/* True when msg[0..len) has a byte >= 0x80. */
bool downgrade_has_8bit(const char *msg, size_t len);

#endif
