/* addr.h - RFC 5321 envelope addresses (reverse-path and forward-path).
 *
 * Pure parsing, no I/O.  The parser is a bounded state machine over
 * data..data+len; it never allocates more than the fixed-size struct. */
#ifndef YUBIN_MAIL_ADDR_H
#define YUBIN_MAIL_ADDR_H

#include <stdbool.h>
#include <stddef.h>

#define ADDR_LOCAL_MAX 64     /* RFC 5321 4.5.3.1.1 */
#define ADDR_DOMAIN_MAX 255   /* RFC 5321 4.5.3.1.2 */
#define ADDR_PATH_MAX 256     /* RFC 5321 4.5.3.1.3, incl. the brackets */

struct mail_addr {
	bool null;            /* "<>" (only allowed as a reverse-path) */
	bool postmaster;      /* bare "<Postmaster>" (case-insensitive) */
	bool source_route;    /* "<@a,@b:user@c>" was given; the route is ignored */
	bool quoted;          /* local part was a quoted-string */
	bool literal;         /* domain is an address literal "[1.2.3.4]" */
	bool utf8;            /* contains non-ASCII (needs SMTPUTF8) */
	bool trailing_dot;    /* domain ended with '.' */
	/* Local part as the mailbox means it: a quoted-string is unquoted and
	 * its backslash escapes removed.  NUL-terminated. */
	char local[ADDR_LOCAL_MAX * 2 + 1];
	/* Domain as written, without brackets for literals. */
	char domain[ADDR_DOMAIN_MAX + 1];
};

enum addr_error {
	ADDR_OK = 0,
	ADDR_ERR_SYNTAX,      /* not a path at all */
	ADDR_ERR_LOCAL_TOO_LONG,
	ADDR_ERR_DOMAIN_TOO_LONG,
	ADDR_ERR_PATH_TOO_LONG,
	ADDR_ERR_8BIT,        /* non-ASCII without SMTPUTF8 */
};

/* Parse a path that starts at s[0] == '<' (after "MAIL FROM:" or "RCPT TO:";
 * leading spaces are the caller's business).  On success returns the number
 * of bytes consumed (up to and including '>'), fills *a, and leaves the
 * parameters, if any, after it.  On failure returns -1 and sets *err_r and
 * *error_r (a static text for the reply).  allow_utf8 is true when the
 * transaction declared SMTPUTF8 (RFC 6531). */
long addr_parse_path(const char *s, size_t len, bool allow_utf8, struct mail_addr *a,
		     enum addr_error *err_r, const char **error_r);

/* "local@domain" into out (the local part re-quoted when it needs quotes);
 * "" for the null path.  out must hold ADDR_PATH_MAX * 2 bytes. */
void addr_format(const struct mail_addr *a, char *out, size_t outsz);

/* True when the local part contains a character that would route mail
 * elsewhere on a naive relay: '%', '!', '@' (only possible when quoted). */
bool addr_local_has_route_chars(const struct mail_addr *a);

#endif
