/* imap_parser.h - incremental IMAP command parser (RFC 3501 section 9,
 * RFC 9051, RFC 7888 LITERAL+/LITERAL-, RFC 3516 ~{n} literals).
 *
 * Bytes are fed as they arrive, in any chunking; one command may span
 * several lines when it carries literals.  The result is a tag, an
 * upper-cased command name and a flat array of arguments in pre-order:
 * a LIST is followed by its descendants and args[i].end is the index just
 * past the subtree of i, so the tree is walked without recursion
 * (first child of a list i is i + 1, next sibling of j is args[j].end).
 *
 * Lexical rules (the parser knows no per-command grammar):
 * - atoms are loose: any CHAR other than SP, CTL, 8-bit, ( ) { and ",
 *   so that sequence sets ("1:*,$"), list patterns ("%", "*") and flags
 *   ("\Seen") are atoms.  An atom containing '[' runs to the matching ']'
 *   and may hold spaces, one level of parentheses and quoted strings there:
 *   BODY.PEEK[HEADER.FIELDS (From To)]<0.100> is one atom (has_section).
 * - "NIL" (any case) is IMAP_ARG_NIL; an atom of digits only that fits in
 *   63 bits is IMAP_ARG_NUMBER (num set); longer digit runs stay atoms.
 * - quoted strings take \" and \\ escapes, may hold 8-bit (UTF-8) but no
 *   NUL, CR or LF.
 * - literals {n} (synchronising), {n+} (non-synchronising), ~{n} / ~{n+}
 *   (binary, the only literals that may hold NUL).
 * - lines end in CR LF; a bare LF is tolerated, a CR not followed by LF is
 *   an error.  A trailing space before the line end is tolerated.
 *
 * Limits: line_max counts every byte of the command outside literal data
 * (including CR LF, also the line ends between literals); literal_max caps each
 * literal and the sum of a command's literals; depth_max caps list
 * nesting; args_max caps the number of arguments (lists included).
 * Nothing is allocated by what a client announces: storage grows only as
 * bytes arrive, up to those limits.
 *
 * Ownership: the parser owns everything it returns; a command or an error's
 * tag stays valid until the next imap_parser_feed() or imap_parser_free(). */
#ifndef YUBIN_PROTO_IMAP_PARSER_H
#define YUBIN_PROTO_IMAP_PARSER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Defaults (imap_parser_limits_default). */
#define IMAP_LINE_MAX            (64u * 1024)
#define IMAP_LINE_MAX_PREAUTH    (8u * 1024)
#define IMAP_LITERAL_MAX         (64ull * 1024 * 1024)
#define IMAP_LITERAL_MAX_PREAUTH 4096u
#define IMAP_DEPTH_MAX           32u
#define IMAP_ARGS_MAX            4096u
/* Longest tag and command name. */
#define IMAP_TAG_MAX             64u
#define IMAP_NAME_MAX            32u

struct imap_parser_limits {
	size_t line_max;
	uint64_t literal_max;
	unsigned depth_max;     /* 1..IMAP_DEPTH_HARD_MAX */
	unsigned args_max;
};
#define IMAP_DEPTH_HARD_MAX 256u

/* Return values of imap_parser_feed. */
enum imap_parse_result {
	IMAP_PARSE_ERROR = -1,
	IMAP_PARSE_MORE = 0,
	IMAP_PARSE_DONE = 1,
	/* A synchronising literal within the limit was announced: the session
	 * sends "+ Ready for literal data" and keeps feeding. */
	IMAP_PARSE_CONTINUE = 2,
};

enum imap_parse_error {
	IMAP_ERR_NONE = 0,
	IMAP_ERR_SYNTAX,
	IMAP_ERR_LINE_TOO_LONG,
	IMAP_ERR_LITERAL_TOO_LARGE,
	IMAP_ERR_TOO_DEEP,
	IMAP_ERR_TOO_MANY_ARGS,
};

enum imap_arg_type {
	IMAP_ARG_ATOM,
	IMAP_ARG_NUMBER,
	IMAP_ARG_NIL,
	IMAP_ARG_STRING,        /* quoted, unescaped */
	IMAP_ARG_LITERAL,
	IMAP_ARG_LIST,
};

#define IMAP_ARG_NO_PARENT UINT32_MAX

struct imap_arg {
	enum imap_arg_type type;
	uint32_t parent;        /* index of the enclosing list or NO_PARENT */
	uint32_t end;           /* index just past this argument's subtree */
	uint32_t nchildren;     /* LIST: direct children */
	uint32_t depth;         /* 0 for top-level arguments */
	/* ATOM/NUMBER/NIL/STRING/LITERAL: the bytes, NUL-terminated (a binary
	 * literal may hold NUL itself: use len). */
	const char *str;
	size_t len;
	size_t off;             /* internal: offset of str in the data buffer */
	uint64_t num;           /* NUMBER: the value (< 2^63) */
	bool binary;            /* LITERAL: ~{n} */
	bool nonsync;           /* LITERAL: {n+} */
	bool has_section;       /* ATOM: contains [...] */
};

struct imap_command {
	const char *tag;
	const char *name;       /* upper-cased */
	const struct imap_arg *args;
	uint32_t nargs;         /* all arguments, lists and their contents */
	/* Every str above lies in data[0..data_len). */
	const char *data;
	size_t data_len;
};

struct imap_parser;

/* Defaults; before authentication the tighter pre-auth limits. */
void imap_parser_limits_default(struct imap_parser_limits *lim, bool authenticated);

struct imap_parser *imap_parser_new(const struct imap_parser_limits *lim);
void imap_parser_free(struct imap_parser **p);
/* New limits (e.g. after LOGIN); take effect from the next command. */
void imap_parser_set_limits(struct imap_parser *p, const struct imap_parser_limits *lim);

/* Feed data[0..len).  *consumed_r is set to the bytes used; the caller
 * feeds the rest again after handling the result.
 *   DONE:     a command is complete (imap_parser_command), bytes after it
 *             are not consumed.
 *   CONTINUE: send "+ Ready for literal data"; feed the rest.
 *   MORE:     everything consumed, more bytes needed.
 *   ERROR:    send "<tag> BAD <text>" (or "* BAD <text>" without tag)
 *             from imap_parser_error(); keep feeding: the parser skips the
 *             rest of the bad command by itself (a non-synchronising
 *             literal announced on the skipped line is skipped too; an
 *             over-limit synchronising literal ends the command at once,
 *             as the client sends nothing more for it).  For
 *             IMAP_ERR_LITERAL_TOO_LARGE the text starts "[TOOBIG]" and the
 *             session may answer NO instead of BAD.  An over-limit
 *             non-synchronising literal is read and dropped before the
 *             error; a session that would rather not wait for it (or for
 *             an absurd length) may close the connection instead. */
enum imap_parse_result imap_parser_feed(struct imap_parser *p, const void *data, size_t len,
					size_t *consumed_r);

/* After DONE: the command (valid until the next feed). */
const struct imap_command *imap_parser_command(const struct imap_parser *p);

/* After ERROR: static text for the reply, the tag (NULL when it was not
 * read yet) and the kind of error. */
const char *imap_parser_error(const struct imap_parser *p, const char **tag_r,
			      enum imap_parse_error *kind_r);

/* --- argument helpers --- */

/* ATOM (or NUMBER/NIL) equal to word, ASCII case-insensitively. */
bool imap_arg_atom_eq(const struct imap_arg *arg, const char *word);
/* number (RFC 3501: 0..2^32-1), nz-number (1..2^32-1), number64
 * (RFC 9051: 0..2^63-1).  0 ok, -1 not such a number. */
int imap_arg_number(const struct imap_arg *arg, uint32_t *n_r);
int imap_arg_nz_number(const struct imap_arg *arg, uint32_t *n_r);
int imap_arg_number64(const struct imap_arg *arg, uint64_t *n_r);
/* astring (mailbox names, user names): ATOM of ASTRING-CHARs, NUMBER,
 * STRING or non-binary LITERAL.  0 ok, -1 not an astring. */
int imap_arg_astring(const struct imap_arg *arg, const char **s_r, size_t *len_r);
/* nstring: NIL (NULL, 0) or STRING / non-binary LITERAL. */
int imap_arg_nstring(const struct imap_arg *arg, const char **s_r, size_t *len_r);
/* Flag list: a LIST whose children are atoms (flags "\Seen" or keywords).
 * 0 ok, -1 otherwise. */
int imap_arg_flag_list(const struct imap_arg *args, uint32_t i);

/* --- sequence sets --- */

#define IMAP_SEQ_STAR UINT32_MAX        /* "*" */

struct imap_seq_range {
	uint32_t lo, hi;        /* lo <= hi; "*" is IMAP_SEQ_STAR */
};

struct imap_seqset {
	struct imap_seq_range *ranges;  /* heap; imap_seqset_free */
	size_t count;
	bool saved;             /* "$" (RFC 5182): no ranges */
};

/* Parse "1:*,3,5:7" or "$".  Reversed ranges are normalised ("7:5" is
 * 5:7), 0 and numbers past 2^32-1 are errors.  0 ok, -1 with a static
 * *error_r. */
int imap_seqset_parse(const char *s, size_t len, struct imap_seqset *set,
		      const char **error_r);
void imap_seqset_free(struct imap_seqset *set);

/* --- fetch-att with a section spec --- */

#define IMAP_SECTION_MAX_PARTS  32u
#define IMAP_SECTION_MAX_FIELDS 128u

enum imap_fetch_kind { IMAP_FETCH_BODY, IMAP_FETCH_BINARY, IMAP_FETCH_BINARY_SIZE };
enum imap_section_spec {
	IMAP_SECTION_ALL,       /* [] or [1.2] */
	IMAP_SECTION_HEADER,
	IMAP_SECTION_HEADER_FIELDS,
	IMAP_SECTION_HEADER_FIELDS_NOT,
	IMAP_SECTION_MIME,
	IMAP_SECTION_TEXT,
};

struct imap_fetch_section {
	enum imap_fetch_kind kind;
	bool peek;
	uint32_t parts[IMAP_SECTION_MAX_PARTS];
	unsigned nparts;
	enum imap_section_spec spec;
	/* HEADER.FIELDS(.NOT): the names, pointing into the parsed text
	 * (quoted names without their quotes; escapes are refused). */
	struct { const char *s; size_t len; } fields[IMAP_SECTION_MAX_FIELDS];
	unsigned nfields;
	bool partial;
	uint32_t partial_off, partial_len;      /* <off.len>, len >= 1 */
};

/* Parse an atom such as "BODY.PEEK[1.2.MIME]", "BODY[HEADER.FIELDS (From
 * To)]<0.100>", "BINARY[1]", "BINARY.SIZE[2]".  0 ok, -1 with a static
 * *error_r. */
int imap_fetch_section_parse(const char *s, size_t len, struct imap_fetch_section *out,
			     const char **error_r);

#endif
