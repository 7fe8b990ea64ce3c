/* smtp_parser.h - SMTP command lines (RFC 5321, 1870, 3030, 6152, 6531).
 *
 * Pure parsing, no I/O: one command line (without CR LF) becomes a verb and
 * an argument; MAIL, RCPT and BDAT arguments are parsed into structs.  Every
 * failure comes with a complete static reply line ("501 5.5.4 ...") that
 * the session sends as it is. */
#ifndef YUBIN_PROTO_SMTP_PARSER_H
#define YUBIN_PROTO_SMTP_PARSER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mail/addr.h"

enum smtp_verb {
	SMTP_VERB_UNKNOWN = 0,
	SMTP_VERB_HELO,
	SMTP_VERB_EHLO,
	SMTP_VERB_MAIL,
	SMTP_VERB_RCPT,
	SMTP_VERB_DATA,
	SMTP_VERB_BDAT,
	SMTP_VERB_RSET,
	SMTP_VERB_NOOP,
	SMTP_VERB_QUIT,
	SMTP_VERB_VRFY,
	SMTP_VERB_EXPN,
	SMTP_VERB_HELP,
	SMTP_VERB_STARTTLS,
	SMTP_VERB_AUTH,
	SMTP_VERB_COUNT
};

/* Argument rules applied by smtp_parse_command(). */
enum {
	SMTP_ARG_ANY = 0,       /* optional argument */
	SMTP_ARG_NONE = 1 << 0, /* an argument is a syntax error */
	SMTP_ARG_NEED = 1 << 1, /* a missing argument is a syntax error */
};

/* Longest HELO/EHLO name we keep (RFC 5321 4.5.3.1.2 domain limit). */
#define SMTP_HELO_MAX 255
/* Longest SIZE= value and BDAT chunk size, in digits. */
#define SMTP_NUMBER_DIGITS_MAX 20

struct smtp_verb_info {
	const char *name;      /* upper case, as sent */
	const char *logname;   /* lower case, for the disconnect log line */
	enum smtp_verb verb;
	unsigned args;         /* SMTP_ARG_* */
};

/* The verb table entry of v (v < SMTP_VERB_COUNT; UNKNOWN has name "UNKNOWN"). */
const struct smtp_verb_info *smtp_verb_info(enum smtp_verb v);

struct smtp_command {
	enum smtp_verb verb;
	/* The argument: after the verb and its separating spaces, trailing
	 * spaces removed; "" (len 0) when there is none.  Points into the line. */
	const char *arg;
	size_t arg_len;
};

/* RFC 3461 limits: ENVID at most 100 characters (4.4), ORCPT at most 500
 * (4.2), both as sent (xtext). */
#define SMTP_ENVID_MAX 100
#define SMTP_ORCPT_MAX 500

/* DSN NOTIFY (RFC 3461 4.1) bits; the same values as the store's. */
enum {
	SMTP_NOTIFY_SUCCESS = 1 << 0,
	SMTP_NOTIFY_FAILURE = 1 << 1,
	SMTP_NOTIFY_DELAY = 1 << 2,
	SMTP_NOTIFY_NEVER = 1 << 3,
};
enum smtp_ret { SMTP_RET_NONE = 0, SMTP_RET_FULL = 1, SMTP_RET_HDRS = 2 };

/* Split line[0..len) into verb and argument.  Returns 0, or -1 with
 * *reply_r set: unknown verb (verb = UNKNOWN, "500 5.5.2 ..."), or an
 * argument the verb does not take / lacks ("501 5.5.4 ..."). */
int smtp_parse_command(const char *line, size_t len, struct smtp_command *cmd,
		       const char **reply_r);

/* HELO/EHLO: the client's name is the first word of the argument; at most
 * SMTP_HELO_MAX bytes.  out must hold SMTP_HELO_MAX + 1. */
int smtp_parse_helo(const char *arg, size_t len, char *out, size_t outsz, const char **reply_r);

enum smtp_body { SMTP_BODY_NONE, SMTP_BODY_7BIT, SMTP_BODY_8BITMIME };

struct smtp_mail_args {
	struct mail_addr from;
	bool has_size;
	uint64_t size;         /* SIZE=; saturates at UINT64_MAX */
	enum smtp_body body;
	bool smtputf8;
	enum smtp_ret ret;     /* RET= */
	bool has_envid;
	char envid[SMTP_ENVID_MAX + 1]; /* ENVID=, xtext-decoded (printable ASCII) */
};

/* "FROM:<path> [params]" (the argument of MAIL).  Errors:
 * 501 5.5.4 (no FROM:, bad parameter syntax, bad SIZE/BODY value,
 * duplicate parameter, bad RET or ENVID), 501 5.1.7 (bad path), 555 5.5.4
 * (unknown or unsupported parameter, BODY=BINARYMIME), 553 5.6.7 (non-ASCII
 * address without SMTPUTF8). */
int smtp_parse_mail(const char *arg, size_t len, struct smtp_mail_args *m, const char **reply_r);

struct smtp_rcpt_args {
	struct mail_addr to;
	unsigned notify;       /* SMTP_NOTIFY_*; 0 = not given */
	bool has_orcpt;
	/* ORCPT= as "addr-type;address" with the address xtext-decoded
	 * ("rfc822;y@b.example"); non-ASCII only with addr-type utf-8. */
	char orcpt[SMTP_ORCPT_MAX + 1];
};

/* "TO:<path> [params]" (the argument of RCPT).  allow_utf8: the MAIL
 * command had SMTPUTF8.  Errors: 501 5.5.4 (no TO:, syntax, duplicate
 * parameter, bad NOTIFY or ORCPT), 501 5.1.3 (bad path, trailing dot in the
 * domain), 555 5.5.4 (unknown parameter), 553 5.6.7 (non-ASCII address
 * without SMTPUTF8). */
int smtp_parse_rcpt(const char *arg, size_t len, bool allow_utf8, struct smtp_rcpt_args *r,
		    const char **reply_r);

/* "<size> [LAST]" (the argument of BDAT).  size: 1 to 20 digits,
 * saturating at UINT64_MAX.  Error: 501 5.5.4. */
int smtp_parse_bdat(const char *arg, size_t len, uint64_t *size_r, bool *last_r,
		    const char **reply_r);

#endif
