/* imap_fetch.h - the message-content parts of IMAP FETCH responses
 * (RFC 3501 7.4.2 and 9, RFC 9051, RFC 3516 BINARY).
 *
 * Pure, no I/O: everything works on a whole message in memory and the tree
 * mime_parse() made of it (see mail/mime.h for the part numbering).  Output
 * is appended to a caller-owned bounded struct buf; when a writer would pass
 * out->max it returns -1 and leaves out as it found it.  Trees are walked
 * through their index links, never by recursion.
 *
 * Strings: a string is quoted when it is at most IMAP_QUOTED_MAX bytes and
 * holds no CR, LF, NUL or other control character except tab ('"' and '\'
 * are escaped), otherwise it is a literal "{n}\r\n" + bytes.  Header bytes
 * are 8-bit only in broken or RFC 6532 mail: ENVELOPE and BODYSTRUCTURE send
 * them as literals unless told that the client enabled UTF8=ACCEPT, so the
 * output is valid for a strict RFC 3501 client.  A NUL byte is never valid
 * in a quoted string or a plain literal; ENVELOPE and BODYSTRUCTURE never
 * contain one (the MIME parser turns NUL into space); body data that may
 * hold NUL goes through imap_write_literal8 (BINARY) or is the caller's
 * business. */
#ifndef YUBIN_PROTO_IMAP_FETCH_H
#define YUBIN_PROTO_IMAP_FETCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"
#include "mail/mime.h"
#include "proto/imap/imap_parser.h"

/* Longest string sent quoted. */
#define IMAP_QUOTED_MAX 1024

/* --- strings --- */

/* string: quoted for 7-bit text and for valid UTF-8 (as a UTF8=ACCEPT
 * session may send it), otherwise a literal.  0, or -1 when out is full. */
int imap_write_string(struct buf *out, const char *s, size_t len);
/* nstring: NIL when s is NULL, else imap_write_string. */
int imap_write_nstring(struct buf *out, const char *s, size_t len);
/* The same with a choice: utf8 false sends any 8-bit byte as a literal
 * (strict RFC 3501), utf8 true quotes valid UTF-8. */
int imap_write_string_mode(struct buf *out, const char *s, size_t len, bool utf8);
int imap_write_nstring_mode(struct buf *out, const char *s, size_t len, bool utf8);
/* astring: an atom when s is non-empty and all ASTRING-CHAR, else a string
 * (strict mode). */
int imap_write_astring(struct buf *out, const char *s, size_t len);
/* "{n}\r\n" + bytes, whatever they are. */
int imap_write_literal(struct buf *out, const char *s, size_t len);
/* RFC 3516: "~{n}\r\n" + bytes when they contain NUL, else a plain literal. */
int imap_write_literal8(struct buf *out, const char *s, size_t len);

/* --- ENVELOPE, BODY, BODYSTRUCTURE --- */

/* ENVELOPE (date subject from sender reply-to to cc bcc in-reply-to
 * message-id) of the message whose header is part `part`'s header (0 for
 * the message, or a part flagged MIME_PART_MESSAGE).  The first of each
 * field counts.  Date, Subject, In-Reply-To and Message-ID are sent
 * unfolded and trimmed, encoded-words as they are; absent is NIL, present
 * but empty is "".  Address lists: each address is (name adl mailbox host)
 * with name the display name (quotes and escapes removed, words joined as
 * written) or, for a bare addr-spec, its first comment; adl the source
 * route ("@a,@b"); mailbox the local part as written (a quoted local part
 * keeps its quotes); host the domain.  A group is (NIL NIL "name" NIL)
 * members (NIL NIL NIL NIL).  An address without "@" gets host "" (never
 * NIL, which would mean a group).  A field that is absent or yields no
 * address is NIL; sender and reply-to then default to from.  Any input
 * yields valid syntax.  0, or -1 when out is full. */
int imap_envelope(struct buf *out, const char *msg, size_t len, const struct mime_message *m,
		  size_t part);

/* BODY (extensible false) or BODYSTRUCTURE (extensible true) of part index
 * `part` (0 = the whole message).  Types, subtypes, parameter names,
 * encodings and disposition types are upper-cased; encoding "7BIT" when
 * absent; a text part without charset gets ("CHARSET" "US-ASCII") (RFC
 * 2045 5.2, RFC 2046 4.1.2).  Parameter values with 8-bit bytes (RFC 2231 values are UTF-8
 * after the MIME parser) are sent RFC 2047 encoded ("=?UTF-8?B?...?=")
 * unless utf8 (the client enabled UTF8=ACCEPT); a value that is not valid
 * UTF-8 becomes a literal.  Content-Language gives NIL, a string, or a
 * list for several.  Broken trees still give valid syntax: a multipart
 * without children (no boundary found, depth capped) holds one empty
 * ("TEXT" "PLAIN" ("CHARSET" "US-ASCII") NIL NIL "7BIT" 0 0); a
 * message/rfc822 that was not parsed (encoded, or depth capped) gets the
 * envelope of its body's header (NIL fields when encoded) and a text/plain
 * body of its body's size (0 when encoded).  0, or -1 when out is full. */
int imap_bodystructure(struct buf *out, const char *msg, size_t len, const struct mime_message *m,
		       size_t part, bool extensible, bool utf8);

/* --- sections --- */

/* The bytes of BODY[section] before any <partial> (RFC 3501 6.4.5):
 * ""      the whole message;
 * N       part N's body (for message/rfc822, the whole encapsulated
 *         message; for a single-part message, "1" is its body);
 * N.MIME  part N's own header (for "1" of a single-part message, the
 *         message header);
 * HEADER, TEXT, HEADER.FIELDS (...), HEADER.FIELDS.NOT (...) of the
 *         message, or of part N when it is message/rfc822.
 * HEADER is the header as stored, its blank line included when there is
 * one (RFC 9051: not added to a message without one).  HEADER.FIELDS(.NOT)
 * keeps the matching field lines (names compared ASCII case-insensitively,
 * folding kept, in message order, a line end added to a last line without
 * one) and always ends with the blank line (CRLF, or LF when the header's
 * first line ends in a bare LF); lines without a colon are no fields and
 * never match.
 * 0: *ptr, *n set (into msg, or into scratch->data for HEADER.FIELDS(.NOT),
 *    appended after what scratch held).
 * 1: no such section in this message; *ptr NULL, *n 0 (send "").
 * -1: scratch is full. */
int imap_section_get(const char *msg, size_t len, const struct mime_message *m,
		     const struct imap_fetch_section *sec, struct buf *scratch, const char **ptr,
		     size_t *n);

enum imap_binary_result {
	IMAP_BINARY_OK = 0,
	IMAP_BINARY_NONE = 1,          /* no such section: send "" (or NIL) */
	IMAP_BINARY_FULL = -1,         /* out's max hit */
	IMAP_BINARY_UNKNOWN_CTE = -2,  /* NO [UNKNOWN-CTE] */
	IMAP_BINARY_MULTIPART = -3,    /* a multipart has no CTE to undo: NO or BAD */
};

/* BINARY[section] (also BINARY.SIZE: use out->len): the part's body
 * decoded from its Content-Transfer-Encoding (base64, quoted-printable;
 * 7bit, 8bit, binary or none as it is) appended to out.  BINARY[] is the
 * whole message as it is.  Returns an enum imap_binary_result; on any
 * error out is left as it was. */
int imap_binary_get(const char *msg, size_t len, const struct mime_message *m,
		    const struct imap_fetch_section *sec, struct buf *out);

/* Apply <off.len> when sec has one: the slice [off, off + len) of
 * (*ptr, *n), empty when off is at or past the end. */
void imap_partial(const struct imap_fetch_section *sec, const char **ptr, size_t *n);

/* The item as echoed in the response: "BODY[1.HEADER.FIELDS (FROM TO)]<0>",
 * "BINARY[1]<5>", "BINARY.SIZE[2]".  .PEEK is dropped, a partial shows its
 * origin only, header field names are upper-cased (atoms, or quoted when
 * the client quoted them for want of atom characters).  0, or -1 when out
 * is full. */
int imap_fetch_item_name(struct buf *out, const struct imap_fetch_section *sec);

/* --- dates --- */

/* INTERNALDATE text in UTC with its quotes: "\" 1-Feb-1994 21:52:25 +0000\""
 * (date-day-fixed: the day padded with a space).  Times outside the years
 * 1..9999 are clamped. */
void imap_internaldate(int64_t unix_time, char out[32]);
/* date-time "dd-Mon-yyyy hh:mm:ss +zzzz" (APPEND), with or without its
 * quotes; the day may be 1 or 2 digits or space-padded, the month name is
 * case-insensitive.  0 with *t_r the Unix time, or -1 when invalid. */
int imap_parse_date_time(const char *s, size_t len, int64_t *t_r);
/* SEARCH date "1-Feb-1994" (1 or 2 digit day), with or without quotes: the
 * Unix time of its midnight UTC.  0, or -1 when invalid. */
int imap_parse_date(const char *s, size_t len, int64_t *t_r);

#endif
