/* mime.h - the one MIME parser (RFC 5322, RFC 2045/2046, RFC 2231).
 *
 * Pure, no I/O: mime_parse() works on a whole message in memory and returns
 * a tree of parts in a flat array, in pre-order (a part comes before its
 * children, and the subtree of part i is the index range [i, subtree_end)).
 * The parse never fails: broken mail (missing or invalid Content-Type,
 * garbage before the first boundary, a missing close delimiter, boundaries
 * that never appear, bare LF line ends, NUL bytes) still yields a tree, and
 * flags say what was odd.  Depth, part count, field length, boundary length
 * and parameter count are capped by struct mime_limits; no recursion.
 *
 * Offsets are byte offsets into the data given to mime_parse(), which the
 * caller keeps; the tree owns its strings.  Line ends are LF with an
 * optional CR before it; a bare CR is data.
 *
 * IMAP numbering (RFC 3501 6.4.5): part->section is the part number whose
 * BODY[section] is this part's body: "" for a multipart top-level message,
 * "1" for a single-part top-level message, "2.1" for the first child of
 * multipart part 2.  A message/rfc822 part has exactly one child (flag
 * MIME_PART_MESSAGE): the encapsulated message, whose header/body offsets
 * are the inner message's header and body.  That child's section is the
 * message/rfc822 part's own number when it is a multipart (its children
 * are N.1, N.2...), or "N.1" when it is a single part.  For HEADER, TEXT and
 * HEADER.FIELDS of "N" use the child flagged MIME_PART_MESSAGE under the
 * part N (or part 0 for the top level); for "N.MIME" use part N's header. */
#ifndef YUBIN_MAIL_MIME_H
#define YUBIN_MAIL_MIME_H

#include <stdbool.h>
#include <stddef.h>

#define MIME_DEPTH_MAX 20            /* the top-level message is depth 0 */
#define MIME_PARTS_MAX 1000          /* parts in one message, top level included */
#define MIME_FIELD_MAX (64 * 1024)   /* an unfolded field value; longer is truncated */
#define MIME_BOUNDARY_MAX 70         /* RFC 2046 5.1.1 */
#define MIME_PARAMS_MAX 64           /* parameters kept per field */
#define MIME_2231_SEGMENTS_MAX 64    /* name*0 .. name*63 */

#define MIME_NONE ((size_t)-1)

struct mime_limits {
	unsigned max_depth;      /* parts deeper than this are not made; the container is a leaf */
	size_t max_parts;        /* >= 1 */
	size_t max_field_len;    /* >= 1 */
	size_t max_boundary_len; /* a longer boundary makes the multipart a leaf */
	size_t max_params;
};

extern const struct mime_limits mime_limits_default;

struct mime_param {
	char *name;  /* lower-cased, without RFC 2231 '*' suffixes */
	char *value; /* unquoted; RFC 2231 values joined and converted to UTF-8 */
};

struct mime_params {
	struct mime_param *v;
	size_t n;
};

enum mime_part_flags {
	MIME_PART_MESSAGE = 1 << 0,        /* top level or encapsulated message */
	MIME_PART_CT_DEFAULT = 1 << 1,     /* Content-Type missing or invalid: default used */
	MIME_PART_NO_HDR_END = 1 << 2,     /* no blank line: all header, empty body */
	MIME_PART_NO_BOUNDARY = 1 << 3,    /* multipart without a usable boundary, or none
					    * found in its body: no children, one body */
	MIME_PART_NO_CLOSE = 1 << 4,       /* multipart without its close delimiter */
	MIME_PART_DEPTH_CAPPED = 1 << 5,   /* container at max_depth: kept as a leaf */
	MIME_PART_PARTS_CAPPED = 1 << 6,   /* some children dropped by max_parts */
	MIME_PART_FIELD_TRUNCATED = 1 << 7,/* a field value was cut at max_field_len */
	MIME_PART_PARAMS_CAPPED = 1 << 8,  /* parameters dropped by max_params */
};

struct mime_part {
	size_t hdr_off, hdr_len;   /* header block, blank line included when present */
	size_t body_off, body_len; /* body: hdr_off + hdr_len .. end of the part */
	size_t body_lines;         /* LF count, plus one for an unterminated last line */

	char *type;                /* lower-cased, never NULL */
	char *subtype;             /* lower-cased, never NULL */
	struct mime_params params; /* Content-Type parameters */

	/* NULL when the field is absent; values unfolded and trimmed.  encoding
	 * and disposition are lower-cased tokens. */
	char *encoding;
	char *id;
	char *description;
	char *disposition;
	struct mime_params disp_params;
	char *language;            /* raw value, e.g. "en, fr" */
	char *location;
	char *md5;

	size_t parent;             /* MIME_NONE for the top level */
	size_t first_child;        /* MIME_NONE when a leaf */
	size_t last_child;
	size_t next_sibling;       /* MIME_NONE for the last child */
	size_t n_children;
	size_t subtree_end;        /* descendants are (index, subtree_end) */
	unsigned depth;
	unsigned flags;            /* enum mime_part_flags */
	char *section;             /* IMAP part number, see above */
};

struct mime_message {
	struct mime_part *parts; /* parts[0] is the top-level message */
	size_t n_parts;          /* >= 1 */
	unsigned flags;          /* union of every part's flags */
};

/* Parse data[0..len).  limits NULL means mime_limits_default.  Never
 * returns NULL; free with mime_message_free(). */
struct mime_message *mime_parse(const char *data, size_t len, const struct mime_limits *limits);
/* NULL-safe; clears *m. */
void mime_message_free(struct mime_message **m);

bool mime_part_is_multipart(const struct mime_part *p);
bool mime_part_is_message(const struct mime_part *p); /* message/rfc822 */
/* The value of parameter name (lower-case), or NULL. */
const char *mime_param_get(const struct mime_params *ps, const char *name);
/* The first part whose section equals section (for an encapsulated
 * multipart, the message/rfc822 part that holds it), or NULL. */
const struct mime_part *mime_find_section(const struct mime_message *m, const char *section);

/* Header blocks.  One field: its name (no trailing blanks) and its raw
 * value (from after the colon to before the final line end, folding
 * kept).  name_len is 0 for a line without a colon. */
struct mime_field {
	const char *name;
	size_t name_len;
	const char *value;
	size_t value_len;
};

/* Iterate the fields of hdr[0..len) from *pos (start at 0).  Returns false
 * at the blank line that ends the header or at the end of hdr. */
bool mime_header_next(const char *hdr, size_t len, size_t *pos, struct mime_field *f_r);
/* The first field called name (ASCII case-insensitive), unfolded (CR and
 * LF removed, NUL turned to space), blanks trimmed at both ends, cut at max
 * bytes (*truncated_r set, may be NULL).  Heap string, or NULL if absent. */
char *mime_header_find(const char *hdr, size_t len, const char *name, size_t max,
		       bool *truncated_r);
/* Unfold a raw value the same way.  Heap string. */
char *mime_unfold(const char *value, size_t len, size_t max, bool *truncated_r);

#endif
