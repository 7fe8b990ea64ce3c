/* compose.h - write a new message for sending (the `yubin send` client).
 *
 * compose_message() turns a struct compose_msg (UTF-8 strings as a user
 * typed them) into one RFC 5322 message with MIME (RFC 2045-2047, 2231,
 * 3676) and CR LF line ends.  The output is always 7-bit clean: no 8-bit
 * header (RFC 6532 is not used), non-ASCII display names and subjects are
 * RFC 2047 B encoded-words, non-ASCII file names RFC 2231, bodies 7bit,
 * quoted-printable or base64.  Every line is at most 998 octets, and at
 * most 78 wherever the composer can break it (an address or a caller's
 * extra header longer than that stays whole).  Bcc is never written (it is
 * envelope only).
 *
 * The structure is the usual one:
 *   text only              text/plain
 *   text + html            multipart/alternative (text, html)
 *   with attachments       multipart/mixed (the text or the alternative
 *                          first, then each attachment, base64)
 *
 * Pure but for randomness (boundaries, compose_message_id(): getrandom(2)).
 * Bounded by the COMPOSE_*_MAX caps; no recursion. */
#ifndef YUBIN_MAIL_COMPOSE_H
#define YUBIN_MAIL_COMPOSE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct buf;

#define COMPOSE_RCPTS_MAX 1000          /* addresses in one To, Cc or Reply-To */
#define COMPOSE_ATT_MAX 100             /* attachments */
#define COMPOSE_SUBJECT_MAX 998         /* subject bytes, before encoding */
#define COMPOSE_OUT_MAX (64 * 1024 * 1024) /* the whole message; "message too large" */
#define COMPOSE_NAME_MAX 256            /* display name bytes, before encoding */
#define COMPOSE_FILENAME_MAX 255        /* attachment file name bytes (UTF-8) */
#define COMPOSE_TYPE_MAX 127            /* content_type bytes ("type/subtype") */
#define COMPOSE_ID_MAX 250              /* one "<id>" (Message-ID, In-Reply-To, References) */
#define COMPOSE_REFS_MAX 1000           /* ids in In-Reply-To or References */
#define COMPOSE_EXTRA_MAX 100           /* extra header lines */
#define COMPOSE_LINE_MAX 998            /* one extra header line, as given */
#define COMPOSE_BOUNDARY_MAX 40         /* compose_msg.boundary (a prefix) */
#define COMPOSE_MSGID_SIZE 300          /* enough for compose_message_id() of any host */

struct compose_addr {
	const char *name; /* display name, UTF-8; NULL or "" for none */
	const char *addr; /* addr-spec "local@domain", ASCII (no SMTPUTF8) */
};

struct compose_attachment {
	/* UTF-8, or NULL for none.  Printable ASCII is written filename="..."
	 * (quoted); anything else filename*=utf-8''%XX (RFC 2231); a value
	 * that does not fit on a 78-column line is split into RFC 2231
	 * sections (filename*0=, filename*1=, ...).  The same name= parameter
	 * goes into Content-Type for clients that look there (RFC 2231 form
	 * too: no RFC 2047 inside parameters). */
	const char *filename;
	/* "type/subtype" (RFC 2045 tokens, not multipart/ or message/, since
	 * the part is base64), or NULL: guessed from the data (PDF, PNG, JPEG,
	 * GIF, ZIP, gzip by their magic bytes; else text/plain; charset=utf-8
	 * when the data is valid UTF-8 without NUL; else
	 * application/octet-stream). */
	const char *content_type;
	const unsigned char *data; /* may be NULL when len is 0 */
	size_t len;
};

struct compose_msg {
	struct compose_addr from;                /* required */
	const struct compose_addr *to, *cc, *reply_to;
	size_t nto, ncc, nreply_to;              /* 0..COMPOSE_RCPTS_MAX each; 0: no field */
	const char *subject;                     /* UTF-8; NULL: no Subject field */
	/* UTF-8 body, LF, CRLF or CR line ends; NULL only with length 0.  Any
	 * line end is written CR LF and a final one is added if missing. */
	const char *text;
	size_t text_len;
	/* Optional HTML alternative (UTF-8, always sent as charset=utf-8,
	 * never flowed); NULL: none. */
	const char *html;
	size_t html_len;
	/* "utf-8" (NULL means it too) or "iso-2022-jp", any case.  UTF-8 text
	 * is sent 7bit when it is ASCII with lines of at most 998 octets, else
	 * quoted-printable when at most one byte in six is 8-bit, else base64.
	 * ISO-2022-JP converts the text part (per line, each line back in
	 * ASCII; 7bit, quoted-printable only for a line past 998 octets) and
	 * encodes the subject and display names as =?ISO-2022-JP?B?...?=;
	 * a character outside it, or an ESC, SO or SI byte (which would pass
	 * iconv and change how the rest decodes), is refused. */
	const char *charset;
	bool flowed;                             /* text/plain; format=flowed (delsp=no) */
	const struct compose_attachment *att;
	size_t natt;                             /* 0..COMPOSE_ATT_MAX */
	/* "<id>" lists separated by blanks, written as given (folded between
	 * ids); NULL: no field. */
	const char *in_reply_to;
	const char *references;
	/* "<...>" (see compose_message_id()); NULL: no field, the submission
	 * server adds one (RFC 6409 8.3). */
	const char *message_id;
	int64_t date;                            /* unix time, written in local time */
	/* "Name: value" lines, printable ASCII (and tabs), at most
	 * COMPOSE_LINE_MAX bytes each, folded at blanks past 78 columns.  A
	 * field the composer writes itself (Date, From, To, Cc, Bcc, Reply-To,
	 * Subject, Message-ID, In-Reply-To, References, MIME-Version,
	 * Content-*) is refused. */
	const char *const *extra_headers;
	size_t nextra;                           /* 0..COMPOSE_EXTRA_MAX */
	/* NULL in normal use: random boundaries.  Tests and reproducible
	 * output: the boundaries are this prefix (1..COMPOSE_BOUNDARY_MAX of
	 * A-Z a-z 0-9 '()+_,-./:=?) followed by ".alt" for the
	 * multipart/alternative and ".mix" for the multipart/mixed, and
	 * composing fails if one occurs in the content. */
	const char *boundary;
};

/* Append the message to out.  0, or -1 with a static English reason in
 * *why_r (may be NULL) and out as it was: missing From; an address that is
 * not an ASCII addr-spec; CR or LF in a header input; a display name,
 * subject, file name or text that is not valid UTF-8; NUL in the text or
 * html; text (or a subject or display name) not representable in
 * ISO-2022-JP; an unknown charset; a bad content type, id list, extra
 * header or boundary prefix; a cap passed; "message too large" when the
 * message would pass COMPOSE_OUT_MAX (or out's max). */
int compose_message(const struct compose_msg *m, struct buf *out, const char **why_r);

/* A fresh Message-ID "<26 random base32 characters@host>" into out.
 * 0, or -1 (out "") when host is not a dot-atom of letters, digits, '-' and
 * '_' (a host name), or out is too small (COMPOSE_MSGID_SIZE is enough for
 * a host of 255 bytes). */
int compose_message_id(const char *host, char *out, size_t outsz);

#endif
