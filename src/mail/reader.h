/* reader.h - a message as a person reads it on a terminal (`yubin read N`)
 * and the decoded bytes of one of its parts (`yubin save N PART`).
 *
 * Pure, no I/O.  Parsing is mime.h's; header words are rfc2047.h's;
 * Content-Transfer-Encoding and charset conversion are decode.h's; HTML is
 * parsed by libxml2's HTML parser and walked iteratively.
 *
 * Terminal safety: whatever a message holds, the rendered text is valid
 * UTF-8 with no control character other than LF and tab: C0 controls,
 * DEL and ESC are shown in caret form ("^[", "^?"), C1 controls (U+0080 to
 * U+009F, including what a charset conversion turns into them) and invalid
 * bytes as U+FFFD -- in headers, bodies, HTML text, file names and part
 * types alike.  Other Unicode (bidi controls included) is passed as it is.
 *
 * Broken mail never fails: a missing or unclosed boundary, truncated
 * base64, an unknown or wrong charset label (ISO-2022-JP text under another
 * label or none; 8-bit Japanese text labelled ISO-2022-JP or US-ASCII, or
 * not labelled, or labelled with a charset we do not know), raw 8-bit text
 * in header fields and file names (in the charset of the message's first
 * text part when that reads it, else UTF-8, EUC-JP or Shift_JIS as they
 * fit) all render what can be rendered. */
#ifndef YUBIN_MAIL_READER_H
#define YUBIN_MAIL_READER_H

#include <stdbool.h>
#include <stddef.h>

#include "core/buf.h"
#include "mail/mime.h"

/* Most bytes reader_render() appends to out (less when out->max leaves
 * less room).  A message that needs more is cut at a character boundary and
 * ends with READER_TRUNCATED_MARK. */
#define READER_OUT_MAX (16u * 1024 * 1024)
#define READER_TRUNCATED_MARK "\n[... output truncated]\n"
/* An HTML part is converted from at most this many bytes (after transfer
 * decoding); the rest is dropped and the text ends with "[HTML part cut
 * at 4 MiB]".  libxml2 itself stops at 256 levels of element nesting: text
 * past such a point is lost. */
#define READER_HTML_MAX (4u * 1024 * 1024)
/* Parts listed: every part of a message is one of mime's MIME_PARTS_MAX
 * (the top level included), and nesting stops at MIME_DEPTH_MAX, where a
 * deeper message or multipart is listed as a part instead of rendered. */
#define READER_PARTS_MAX MIME_PARTS_MAX
/* IMAP sections are at most MIME_DEPTH_MAX numbers below 1000 ("999.") */
#define READER_SECTION_MAX 96

struct reader_opts {
	bool all_headers; /* every header field, in order, not just the usual five */
	bool html_raw;    /* HTML shown as its (sanitised) source, not converted */
	size_t width;     /* wrap at this many columns; 0 = no wrapping */
};

/* A part reader_render() did not show as text. */
struct reader_part_info {
	char section[READER_SECTION_MAX]; /* for reader_part_bytes(): "2", "1.2" */
	char type[128];      /* "image/png", lower-case, cut to fit */
	/* Content-Disposition filename or Content-Type name (RFC 2231 and
	 * RFC 2047 decoded), sanitised for display and cut at a character
	 * boundary to fit; "" when none.  Not a safe path: strip directories
	 * before using it as one. */
	char filename[256];
	size_t size;         /* decoded bytes */
	/* false for an alternative that was not chosen (another rendering of
	 * the text shown); true for everything else, including forwarded
	 * messages, which are also rendered inline. */
	bool attachment;
};

/* Render msg[0..len) as UTF-8 text into out: the header (Date, From, To,
 * Cc, Subject, or every field with all_headers), decoded from RFC 2047
 * (words in a charset we do not know are shown as they are); a blank line;
 * the body: text parts (of a multipart/alternative the text/plain one, else
 * the HTML one converted to text: script, style and head dropped, block
 * elements on their own lines, <li> as "- ", links as "text <url>"),
 * decoded and converted to UTF-8 (bytes invalid in the charset become
 * U+FFFD; a byte order mark at the start is dropped); a forwarded
 * message/rfc822 inline between separator lines, with its header block
 * indented; then "Attachments:", one line per part not shown (section,
 * type, name, size).  Those parts are also stored in parts[0..nparts_max)
 * (*nparts_r = how many were stored; parts and nparts_r may be NULL
 * and 0).  o NULL means all defaults.  0, or -1 when the output cap was
 * reached: out then holds the rendering cut short, ending with
 * READER_TRUNCATED_MARK when that fits. */
int reader_render(const char *msg, size_t len, const struct reader_opts *o, struct buf *out,
		  struct reader_part_info *parts, size_t nparts_max, size_t *nparts_r);

/* One header field value raw[0..n) (folded or not) as reader_render()
 * shows it, for lists of messages: unfolded; raw ISO-2022-JP, and raw 8-bit
 * bytes that are not UTF-8 (taken to be in charset when it is not NULL and
 * they are valid in it, else the first of EUC-JP and Shift_JIS that reads
 * them, else kept), made UTF-8; encoded words decoded; then made
 * terminal-safe as a single line (caret forms, U+FFFD; with spaces,
 * C0 controls and DEL become spaces instead, as a listing wants).
 * Appended to out; 0, or -1 when out->max was reached (out holds a prefix
 * cut at a character boundary). */
int reader_header_text(const char *raw, size_t n, const char *charset, bool spaces,
		       struct buf *out);

/* Append the body of the part with IMAP section number section ("2",
 * "1.2") to out, decoded from base64 or quoted-printable (no charset
 * conversion: the bytes as they were sent); a multipart or message/rfc822
 * part gives its raw body (for a forward: the message itself).  1 found,
 * 0 no such part, -1 when out->max was reached (out holds a prefix). */
int reader_part_bytes(const char *msg, size_t len, const char *section, struct buf *out);

#endif
