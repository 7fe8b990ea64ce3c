/* submit.h - what a submission server does to a message's header before
 * queueing it (RFC 6409 section 8, RFC 5322 3.6.3).
 *
 * submit_scan() reads the header block once and says what to change:
 * add Date (8.2) and Message-ID (8.3) when absent, and drop every Bcc field
 * (its recipients are on the envelope; the copy that goes out must not show
 * them).  submit_rewrite() then writes the new message.  The header block
 * ends at the first empty line; a line starting with a blank continues the
 * field above it (the same rules as mime_header_next(), so the IMAP side
 * sees the same fields).  A body line "Bcc: x" is body and stays.
 *
 * submit_from_addresses() lists the addr-specs of the From and Sender
 * fields for the "may this user send as this address" check.
 *
 * Pure, no I/O.  Everything is bounded by SUBMIT_HEADER_MAX and fixed
 * arrays; nothing recurses (comments nest, counted up to
 * SUBMIT_COMMENT_DEPTH_MAX). */
#ifndef YUBIN_MAIL_SUBMIT_H
#define YUBIN_MAIL_SUBMIT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct buf;

#define SUBMIT_HEADER_MAX (1024 * 1024) /* longest header block, blank line included */
#define SUBMIT_BCC_MAX 16               /* Bcc fields in one message */
#define SUBMIT_COMMENT_DEPTH_MAX 32     /* nesting of (comments) in address lists */
#define SUBMIT_ID_MAX 255               /* msgid_local and hostname of submit_rewrite() */
/* Longest addr-spec handed to the submit_from_addresses() callback (local
 * part quoted as needed, "@", domain), NUL not counted. */
#define SUBMIT_ADDR_MAX 512

struct submit_fix {
	bool add_date;        /* no Date field */
	bool add_message_id;  /* no Message-ID field */
	bool has_from;        /* a From field is present */
	bool has_sender;      /* a Sender field is present */
	/* The header lines end in a bare LF (judged by the first line): the
	 * added fields end in LF too, so the message stays consistent. */
	bool lf;
	/* Offset just past the empty line that ends the header block, or len
	 * when there is none (a message that is all header). */
	size_t header_end;
	/* [start, end) of every Bcc field, continuation lines and line end
	 * included, in order. */
	size_t bcc[SUBMIT_BCC_MAX][2];
	size_t nbcc;
};

/* Scan the header block of msg[0..len) into *f.  0, or -1 when it cannot be
 * repaired: the header block is longer than SUBMIT_HEADER_MAX, there are
 * more than SUBMIT_BCC_MAX Bcc fields, or the first line starts with a blank
 * (a continuation of nothing: a field added in front would swallow it). */
int submit_scan(const char *msg, size_t len, struct submit_fix *f);

/* Append the new message to out: the added fields first ("Date: " with
 * rfc5322_date(now), "Message-ID: <msgid_local@hostname>"), then msg with
 * the Bcc ranges of f left out.  msgid_local and hostname are used only when
 * a Message-ID is added; they must then be RFC 5322 dot-atom-text (ASCII
 * atext and inner dots), 1..SUBMIT_ID_MAX bytes.  0, or -1 when they are
 * not, when f does not describe msg[0..len) (ranges out of order or past
 * len), or when out would pass its max (out then holds a prefix). */
int submit_rewrite(const char *msg, size_t len, const struct submit_fix *f, int64_t now,
		   const char *msgid_local, const char *hostname, struct buf *out);

/* The addresses of every From and Sender field of the header block of
 * msg[0..len), for the "may this user send as this" check.  RFC 5322
 * address lists: display names (atoms, quoted strings, encoded-words),
 * angle addresses (an obsolete source route is skipped), comments (nested),
 * groups ("undisclosed-recipients:;" gives no address), empty list
 * elements.  Each addr-spec is given to cb (may be NULL) as a NUL-terminated
 * "local@domain": the local part unquoted and quoted again only when it is
 * not a dot-atom, the domain lower-cased (ASCII).  The whole header is
 * checked before cb is first called, so cb sees nothing when -1 is
 * returned.  Returns the number of addresses, or -1 when a field does not
 * parse (or the header block passes SUBMIT_HEADER_MAX, or an address passes
 * SUBMIT_ADDR_MAX): a bare word without "@", a missing '>' or ';', an
 * unterminated quoted string, comment or domain literal, comments nested
 * deeper than SUBMIT_COMMENT_DEPTH_MAX, a group inside a group, control
 * characters or malformed UTF-8. */
int submit_from_addresses(const char *msg, size_t len, void (*cb)(const char *addr, void *arg),
			  void *arg);
/* The same for the fields named (case-insensitive), e.g. To, Cc, Bcc for
 * `sendmail -t`. */
int submit_field_addresses(const char *msg, size_t len, const char *const *names,
			   size_t nnames, void (*cb)(const char *addr, void *arg), void *arg);

#endif
