/* jmap_types.h - JMAP's small value types, pure: dates (RFC 8620 1.4),
 * keywords (RFC 8621 4.1.1) and the IMAP system flags behind some of
 * them.  Shared by the reads (jmap_mail.c) and the writes (jmap_set.c). */
#ifndef YUBIN_PROTO_JMAP_TYPES_H
#define YUBIN_PROTO_JMAP_TYPES_H

#include <stdbool.h>
#include <stdint.h>

/* RFC 3339 "2026-12-02T01:02:03[.fraction](Z|+hh:mm|-hh:mm)" -> Unix
 * seconds; with utc (a UTCDate) only "Z".  Fields are range-checked; the
 * fraction is dropped. */
bool jmap_date_parse(const char *s, bool utc, int64_t *t_r);

/* A keyword as JMAP and IMAP both take it: 1 to STORE_KEYWORD_LEN_MAX
 * bytes of printable ASCII without ( ) [ ] { } % * " \ or space. */
bool jmap_keyword_ok(const char *kw);

/* "$seen" "$flagged" "$answered" "$draft" (any case) -> FLAG_*; 0 for
 * any other keyword. */
uint32_t jmap_keyword_flag(const char *kw);

/* The keyword of one FLAG_* bit, or NULL. */
const char *jmap_flag_keyword(uint32_t flag);

#endif
