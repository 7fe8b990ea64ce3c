/* rfc2047.h - MIME encoded-words in header values (RFC 2047, with the
 * RFC 2231 language suffix).
 *
 * Pure functions, no I/O; charset conversion goes through decode.h (glibc
 * iconv).  Output is appended to a caller-owned bounded struct buf. */
#ifndef YUBIN_MAIL_RFC2047_H
#define YUBIN_MAIL_RFC2047_H

#include <stddef.h>

#include "core/buf.h"

/* Longest encoded-word the decoder looks at; RFC 2047 says 75, real mail
 * has longer ones.  A longer candidate is left as it is. */
#define RFC2047_DECODE_WORD_MAX 1024
/* Longest encoded-word the encoder writes (RFC 2047 section 2). */
#define RFC2047_WORD_MAX 75
/* Longest input the encoder takes. */
#define RFC2047_ENCODE_MAX 16384

/* Decode the encoded-words of a header value (unfolded or not) to UTF-8.
 * Words are recognised wherever "=?charset[*lang]?B|Q?text?=" appears;
 * whitespace between two encoded-words is dropped and consecutive words in
 * one charset are decoded as one stream (so a character split across words
 * survives); bytes invalid in the charset become U+FFFD.  A word with an
 * unknown charset or bad B/Q text is copied as it is, and so is all text
 * outside words (8-bit bytes included).  0, or -1 when out would pass its
 * max (out then holds a prefix). */
int rfc2047_decode(const char *in, size_t len, struct buf *out);

enum rfc2047_encoding {
	RFC2047_B,
	RFC2047_Q,
};

/* Encode UTF-8 text as encoded-words in charset ("UTF-8", "ISO-2022-JP",
 * "ISO-8859-1", ... as iconv knows it), each at most RFC2047_WORD_MAX
 * characters, separated by "\r\n " (a fold), never splitting a character
 * between words.  For stateful charsets (ISO-2022-JP) each word starts and
 * ends in ASCII, with its own escape sequences.  All of the input is encoded
 * (the caller decides whether a value needs encoding at all).  0, or -1 with
 * a static error: input not UTF-8 or longer than RFC2047_ENCODE_MAX, unknown
 * charset, a character the charset cannot represent, overflow of out. */
int rfc2047_encode(const char *in, size_t len, const char *charset,
		   enum rfc2047_encoding enc, struct buf *out, const char **error_r);

#endif
