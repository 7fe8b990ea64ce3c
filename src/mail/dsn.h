/* dsn.h - delivery status notifications (RFC 3464, RFC 3461, RFC 6533).
 *
 * dsn_compose() writes a bounce, delay warning or success report as one
 * complete RFC 5322 message with CR LF line ends: a multipart/report
 * (RFC 6522) whose parts are a plain-language explanation for the sender, the
 * machine-readable message/delivery-status, and the original message
 * (message/rfc822) or only its header (text/rfc822-headers).
 *
 * Pure, no I/O.  Every line the composer writes itself is at most 998
 * octets (RFC 5322 2.1.1): caller strings are sanitised (CR, LF and other
 * control characters never reach the output as such) and folded; only the
 * returned original is copied as it is.  The delivery-status part stays
 * 7-bit: a non-ASCII recipient is written with the RFC 6533 "utf-8" address
 * type in its utf-8-addr-xtext form (non-ASCII as \x{HHHH}). */
#ifndef YUBIN_MAIL_DSN_H
#define YUBIN_MAIL_DSN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Longest caller string accepted in a header or delivery-status field
 * (addresses, host names, ENVID, status, ids); longer is bad input. */
#define DSN_FIELD_MAX 1000
/* A diagnostic (remote reply) longer than this is cut, with "..." added. */
#define DSN_DIAG_MAX 4096
/* The original Subject quoted in the human part is cut to this many bytes
 * (at a character boundary) after RFC 2047 decoding. */
#define DSN_SUBJECT_MAX 200
/* Most recipients in one report. */
#define DSN_RCPTS_MAX 10000
/* Longest MIME boundary (RFC 2046 5.1.1). */
#define DSN_BOUNDARY_MAX 70

enum dsn_action { DSN_FAILED, DSN_DELAYED, DSN_DELIVERED, DSN_RELAYED, DSN_EXPANDED };

struct dsn_rcpt {
	/* "y@b.example" (no brackets); written "rfc822; y@b.example", or
	 * "utf-8; ..." when it contains non-ASCII (RFC 6533). */
	const char *final_rcpt;
	/* ORCPT as given, xtext-decoded already ("rfc822;y@b.example"), or NULL.
	 * Written as it is (sanitised; non-ASCII as \x{HHHH}). */
	const char *orig_rcpt;
	enum dsn_action action;
	const char *status;         /* "5.1.1": class "." subject "." detail */
	const char *remote_mta;     /* "mx.b.example" or NULL */
	/* The remote reply on one line, "550 5.1.1 user unknown", or NULL;
	 * written "Diagnostic-Code: smtp; ..." (control characters replaced,
	 * non-ASCII replaced, folded, cut at DSN_DIAG_MAX). */
	const char *diagnostic;
	int64_t last_attempt;       /* unix time or 0 (field left out) */
	int64_t will_retry_until;   /* DSN_DELAYED only: unix time or 0 */
};

struct dsn_report {
	const char *reporting_mta;  /* our host name */
	const char *postmaster;     /* From address, e.g. "MAILER-DAEMON@a.example" */
	const char *to;             /* the envelope sender the DSN goes to (not empty) */
	const char *envid;          /* ENVID (xtext-decoded) or NULL */
	int64_t arrival;            /* Arrival-Date; 0 leaves it out */
	int64_t now;                /* Date: */
	const char *message_id;     /* Message-ID of the DSN, "<...>" (caller generates) */
	/* Caller-chosen MIME boundary: 1..70 RFC 2046 bchars, not ending in a
	 * space, and not occurring in the returned original. */
	const char *boundary;
	/* The original Subject field value (raw, may hold encoded-words), quoted
	 * in the human part; NULL: taken from the original's header. */
	const char *orig_subject;
	const struct dsn_rcpt *rcpts;
	size_t nrcpts;              /* 1..DSN_RCPTS_MAX */
	const char *original;       /* the original message (CR LF), may be NULL if len 0 */
	size_t original_len;
	/* RET=FULL: attach the whole message as message/rfc822; otherwise only
	 * its header block, as text/rfc822-headers. */
	bool return_full;
	/* Cap on the returned bytes (0: no cap).  A full message beyond it falls
	 * back to its header block; a header block beyond it is cut at the last
	 * field (or line) boundary that fits.  The human part says so. */
	size_t return_max;
};

/* Compose the report.  On success 0 with a heap message (NUL-terminated, the
 * NUL not counted) in *out_r and its length in *len_r; the caller frees.  -1
 * on bad input: no recipients, a required string missing or empty, a field
 * longer than DSN_FIELD_MAX, a status that is not "d.ddd.ddd", an action out
 * of range, a Message-ID without angle brackets or with blanks, a bad
 * boundary or one that occurs in the returned original. */
int dsn_compose(const struct dsn_report *r, char **out_r, size_t *len_r);

/* The value of the first field called name (ASCII case-insensitive) in the
 * header block of msg[0..len) (up to the first blank line), unfolded (CR and
 * LF removed, NUL turned into a space) and trimmed of blanks at both ends,
 * into out as a NUL-terminated string cut at outsz - 1 bytes (nothing is
 * written when outsz is 0).  1 found, 0 not found (out then ""). */
int dsn_header_value(const char *msg, size_t len, const char *name, char *out, size_t outsz);

#endif
