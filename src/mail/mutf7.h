/* mutf7.h - IMAP mailbox names: modified UTF-7 (RFC 3501 5.1.3) and the
 * name rules of the store.
 *
 * Pure functions, no I/O.  Output goes into a caller-owned bounded buffer;
 * on failure the buffer may hold a partial result and the caller discards
 * it.  Error strings are static (never freed) and fit in a protocol reply. */
#ifndef YUBIN_MAIL_MUTF7_H
#define YUBIN_MAIL_MUTF7_H

#include <stdbool.h>
#include <stddef.h>

#include "core/buf.h"

/* Limits of a mailbox name as the store keeps it (UTF-8 bytes / levels). */
#define MUTF7_NAME_MAX 1024
#define MUTF7_LEVELS_MAX 64
#define MUTF7_SEPARATOR '/'

/* Modified UTF-7 -> UTF-8, strict: only the canonical encoding is accepted.
 * Refused: bytes outside 0x20..0x7e, a bare "&" (must be "&-"), a character
 * outside the modified base64 alphabet, an unterminated shift, a shift that
 * encodes printable ASCII, non-zero or too many padding bits, an odd number
 * of UTF-16 bytes, unpaired surrogates, a shift directly after a shift, an
 * empty shift other than "&-", an encoded NUL.  0 / -1 (overflow of out is -1 too). */
int mutf7_decode(const char *in, size_t len, struct buf *out, const char **error_r);

/* UTF-8 -> modified UTF-7.  The input must be valid UTF-8 (no overlongs,
 * surrogates or code points above U+10FFFF); NUL is refused.  0 / -1. */
int mutf7_encode(const char *in, size_t len, struct buf *out, const char **error_r);

/* True when in[0..len) is valid UTF-8 in the same strict sense. */
bool mutf7_utf8_valid(const char *in, size_t len);
/* Length (1..4) of the valid UTF-8 character at in[0..len), or 0 when it is
 * invalid or truncated; len must be > 0. */
size_t mutf7_utf8_char_len(const char *in, size_t len);

/* Check a mailbox name (UTF-8, i.e. after mutf7_decode) against the store's
 * rules and write its normal form to norm_r: separator '/', no empty
 * component (so no leading, trailing or doubled '/'), no "." or ".."
 * component, no control characters (C0, DEL, C1), valid UTF-8, at most
 * MUTF7_NAME_MAX bytes and MUTF7_LEVELS_MAX components.  A first component
 * equal to "INBOX" in any case is written "INBOX" (so "inbox/Sent" becomes
 * "INBOX/Sent").  0 / -1 with a static error string. */
int mutf7_mailbox_check(const char *name, size_t len, struct buf *norm_r,
			const char **error_r);

#endif
