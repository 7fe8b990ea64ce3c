/* smtp_reply.h - SMTP replies as a client reads them (RFC 5321 4.2, 2034,
 * 3463) and the EHLO capabilities they carry.
 *
 * Pure parsing, no I/O.  The caller's line reader strips CR LF and hands
 * over one reply line at a time; smtp_reply_feed() collects the lines of
 * one reply ("250-..." lines continue, "250 ..." or a bare "250" ends it)
 * under fixed limits, so a server cannot make us keep more than
 * SMTP_REPLY_TEXT_MAX bytes.  The helpers below classify a complete reply
 * for the delivery agent, give its RFC 3463 status for a DSN, and render
 * it as one safe line for logs and Diagnostic-Code. */
#ifndef YUBIN_PROTO_SMTP_REPLY_H
#define YUBIN_PROTO_SMTP_REPLY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"

/* Longest reply line accepted, without CR LF (RFC 5321 4.5.3.1.5 says 512
 * with CR LF; real servers send longer ones). */
#define SMTP_REPLY_LINE_MAX 2048
/* Most lines in one reply. */
#define SMTP_REPLY_LINES_MAX 200
/* Most bytes of text in one reply: the lines' texts plus the '\n' between them. */
#define SMTP_REPLY_TEXT_MAX (16 * 1024)
/* Size of an enhanced status code buffer: "5.123.123" + NUL fits. */
#define SMTP_REPLY_ENH_SIZE 16

/* Internal: where smtp_reply_feed() stands. */
enum smtp_reply_state {
	SMTP_REPLY_STATE_START = 0,  /* no line yet */
	SMTP_REPLY_STATE_MORE,       /* continuation lines seen, the last one pending */
	SMTP_REPLY_STATE_DONE,       /* complete; smtp_reply_reset() before the next */
	SMTP_REPLY_STATE_FAILED,     /* protocol error; smtp_reply_reset() before the next */
};

struct smtp_reply {
	/* The basic code, 200..559, set by the first accepted line; 0 before. */
	int code;
	/* The enhanced status code ("5.1.1") at the start of the first line's
	 * text, when it is one (RFC 3463 syntax: class 2, 4 or 5, then two
	 * numbers of 1 to 3 digits, then a space or the end of the text);
	 * else "".  Kept as sent, whether or not its class matches code. */
	char enh[SMTP_REPLY_ENH_SIZE];
	/* The texts of the lines (what follows "NNN-" / "NNN "), verbatim,
	 * enhanced codes included, joined by '\n'; max SMTP_REPLY_TEXT_MAX.
	 * text.data is NUL-terminated and non-NULL once a line was accepted;
	 * a text never holds NUL or LF (such lines are refused). */
	struct buf text;
	/* Lines accepted so far (1..SMTP_REPLY_LINES_MAX for a complete reply). */
	size_t nlines;
	enum smtp_reply_state state;
};

void smtp_reply_init(struct smtp_reply *r);
/* Ready for the next reply; keeps the text allocation. */
void smtp_reply_reset(struct smtp_reply *r);
/* Release the memory; r can be initialised again.  NULL-safe. */
void smtp_reply_free(struct smtp_reply *r);

/* Add one reply line line[0..len) (no CR LF, need not be NUL-terminated).
 * Returns 1 when the reply is complete, 0 when more lines must follow, -1
 * on a protocol error with a static *error_r: a line longer than
 * SMTP_REPLY_LINE_MAX, a bad reply code (3 digits, the first 2-5, the
 * second 0-5), a fourth character other than '-' or ' ', a code other than
 * the first line's, a NUL or LF in the line, more than SMTP_REPLY_LINES_MAX
 * lines or SMTP_REPLY_TEXT_MAX bytes of text.  After 1 or -1 the caller
 * must call smtp_reply_reset() before feeding the next reply (asserted). */
int smtp_reply_feed(struct smtp_reply *r, const char *line, size_t len, const char **error_r);

/* The reply as one line for logs and DSN Diagnostic-Code, e.g.
 * "550 5.1.1 <x@y>: Recipient address rejected".  The code, then each
 * line's text trimmed of blanks, joined by single spaces; a continuation
 * line's leading enhanced code is dropped when it repeats enh; empty texts
 * are skipped.  Control characters (C0, DEL, C1) and bytes that are not
 * valid UTF-8 become '?', so out is always valid UTF-8.  At most outsz - 1
 * bytes are written, cut before a character that does not fit (and
 * trailing blanks after the cut removed); out is always NUL-terminated
 * when outsz > 0.  A reply without an accepted line gives "". */
void smtp_reply_oneline(const struct smtp_reply *r, char *out, size_t outsz);

enum smtp_reply_class {
	SMTP_REPLY_OK,         /* 2xx */
	SMTP_REPLY_MORE,       /* 3xx: positive intermediate */
	SMTP_REPLY_TEMP,       /* 4xx */
	SMTP_REPLY_PERM,       /* 5xx */
};

/* The class of r->code; r must have an accepted line (asserted). */
enum smtp_reply_class smtp_reply_class(const struct smtp_reply *r);

/* The RFC 3463 status for a DSN: enh when present and of the same class as
 * the basic code, else "2.0.0", "4.0.0" or "5.0.0" by the code's first
 * digit (a 3xx reply, positive but not final, gives "2.0.0").  r must have
 * an accepted line (asserted). */
void smtp_reply_status(const struct smtp_reply *r, char out[SMTP_REPLY_ENH_SIZE]);

/* SASL mechanisms offered in EHLO AUTH. */
enum {
	SMTP_AUTH_PLAIN = 1u << 0,
	SMTP_AUTH_LOGIN = 1u << 1,
	SMTP_AUTH_CRAM_MD5 = 1u << 2,
	SMTP_AUTH_SCRAM_SHA_1 = 1u << 3,
	SMTP_AUTH_SCRAM_SHA_256 = 1u << 4,
	SMTP_AUTH_SCRAM_SHA_256_PLUS = 1u << 5,
	SMTP_AUTH_XOAUTH2 = 1u << 6,
	SMTP_AUTH_OAUTHBEARER = 1u << 7,
	SMTP_AUTH_EXTERNAL = 1u << 8,
};

struct smtp_caps {
	bool pipelining;          /* RFC 2920 */
	bool eightbitmime;        /* RFC 6152 */
	bool smtputf8;            /* RFC 6531 */
	bool starttls;            /* RFC 3207 */
	bool chunking;            /* RFC 3030 */
	bool dsn;                 /* RFC 3461 */
	bool enhancedstatuscodes; /* RFC 2034 */
	bool binarymime;          /* RFC 3030 */
	bool requiretls;          /* RFC 8689 */
	bool size_given;          /* SIZE was listed, with or without a valid number */
	uint64_t size;            /* SIZE limit in bytes; 0 = none given, no limit or unparsable */
	unsigned auth;            /* SMTP_AUTH_* bits, from every AUTH line */
};

/* Fill caps from a complete EHLO reply: every line after the first is
 * "KEYWORD[ params]" (the old "AUTH=LOGIN PLAIN" form is read too: '='
 * ends a keyword).  Keywords and mechanisms are case-insensitive; unknown
 * ones are ignored, repeated ones are harmless (AUTH lines add up, the last
 * SIZE wins).  SIZE takes 1 to 20 digits; anything else, or a value above
 * UINT64_MAX, gives size 0 with size_given set.  A reply whose code is not
 * 250 leaves caps all false / 0. */
void smtp_caps_parse(const struct smtp_reply *ehlo, struct smtp_caps *caps);

#endif
