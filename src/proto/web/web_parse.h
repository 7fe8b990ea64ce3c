/* web_parse.h - the page's small parsers of client input (pure, no I/O).
 *
 *   web_parse_cookie        one cookie's value from a Cookie header
 *                           (RFC 6265 5.4: "a=b; c=d", values maybe quoted)
 *   web_parse_form          one field of an application/x-www-form-urlencoded
 *                           body, '+' and %XX decoded
 *   web_parse_accepts_gzip  Accept-Encoding allows gzip (RFC 9110 12.5.3)
 *
 * Each works on bounded output and never allocates. */
#ifndef YUBIN_PROTO_WEB_PARSE_H
#define YUBIN_PROTO_WEB_PARSE_H

#include <stdbool.h>
#include <stddef.h>

/* The value of the first cookie called name (case-sensitive) in header,
 * copied NUL-terminated into out.  1 found, 0 absent, -1 present but its
 * value does not fit in outsz - 1 bytes or holds a byte that is not a
 * cookie-octet. */
int web_parse_cookie(const char *header, const char *name, char *out, size_t outsz);

/* The value of the first field called name in body (len bytes, not
 * NUL-terminated), decoded into out (NUL-terminated).  1 found, 0 absent,
 * -1 malformed: a bad %XX, a decoded NUL, or too long for out. */
int web_parse_form(const char *body, size_t len, const char *name, char *out, size_t outsz);

/* header (may be NULL) names gzip, x-gzip or * with a q-value above 0, and
 * gzip is not refused by name (q=0). */
bool web_parse_accepts_gzip(const char *header);

#endif
