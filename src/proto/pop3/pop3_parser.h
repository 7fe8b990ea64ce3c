/* pop3_parser.h - POP3 command lines (RFC 1939, RFC 2449, RFC 2595,
 * RFC 5034) into {verb, arguments}.  Pure: no I/O, no allocation.
 *
 * Keywords are case-insensitive.  Arguments are separated by spaces (runs
 * of spaces are tolerated, as are trailing spaces), except for PASS, whose
 * argument is the whole rest of the line after the one space following the
 * keyword (passwords may contain spaces).  The number and the form of the
 * arguments are checked per verb here, so that a session only sees
 * well-formed commands.  SASL continuation lines (the client's answer to
 * "+ ") are not commands and are not parsed here. */
#ifndef YUBIN_PROTO_POP3_PARSER_H
#define YUBIN_PROTO_POP3_PARSER_H

#include <stddef.h>
#include <stdint.h>

/* Longest line accepted (without CR LF).  RFC 2449 allows 255 octets for a
 * command, but an AUTH PLAIN initial response can be longer. */
#define POP3_MAX_LINE 1024
/* Message numbers and TOP line counts: 1..2^31-1 (0 allowed for TOP's
 * line count). */
#define POP3_MAX_NUMBER 2147483647u

enum pop3_verb {
	POP3_UNKNOWN = 0,
	POP3_USER,
	POP3_PASS,
	POP3_APOP,
	POP3_STAT,
	POP3_LIST,
	POP3_RETR,
	POP3_DELE,
	POP3_NOOP,
	POP3_RSET,
	POP3_QUIT,
	POP3_TOP,
	POP3_UIDL,
	POP3_CAPA,
	POP3_STLS,
	POP3_AUTH,
	POP3_VERB_COUNT
};

struct pop3_cmd {
	enum pop3_verb verb;
	int nargs;              /* 0..2 */
	/* Pointers into the parsed line (NUL-terminated in place). */
	const char *args[2];
	size_t arglen[2];
	/* For LIST/UIDL/RETR/DELE (num[0]) and TOP (num[0] message, num[1]
	 * line count): the arguments as numbers. */
	uint32_t num[2];
};

/* Parse line[0..len) (no CR LF; line[len] == '\0'), modifying it in place.
 * 0 ok (cmd filled), -1 error with a static reply text in *error_r (to be
 * sent after "-ERR "); cmd->verb is still set when the keyword was known,
 * so that the caller can tell an unknown command from bad arguments. */
int pop3_parse(char *line, size_t len, struct pop3_cmd *cmd, const char **error_r);

/* Parse a decimal number of digits only, at most max.  0 ok, -1 error. */
int pop3_parse_number(const char *s, size_t len, uint32_t max, uint32_t *n_r);

/* Upper-case keyword of a verb ("RETR"), "?" for POP3_UNKNOWN. */
const char *pop3_verb_name(enum pop3_verb verb);

#endif
