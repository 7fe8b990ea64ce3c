/* imap_resp.h - the client's parser of one IMAP server response (RFC 9051
 * 7 and 9 "response", RFC 3501 the same).
 *
 * Input: one whole response as it came over the wire: its first line, and
 * when a line ends in a literal "{N}" (or "~{N}", literal8), the N bytes
 * and the line that follows, and so on; the final CR LF may be there or
 * not.  imap_client.c reads that much (imap_resp_literal tells it when a
 * line announces a literal) and hands it over.
 *
 * Output: the kind (tagged, untagged, continuation); for status responses
 * (a tagged one, untagged OK/NO/BAD/PREAUTH/BYE) the status, the response
 * code in brackets and the text; for untagged data ("* 3 FETCH (...)",
 * "* LIST (...) "/" INBOX", "* SEARCH 1 2") the number, the name and the
 * arguments as a tree of nodes: atoms, strings (quoted or literal, the
 * quoting undone), NIL and parenthesised lists.
 *
 * Leniency, because real servers vary: a line end may be LF alone; an
 * atom takes any byte but SP, CR, LF, '(', ')', '"', '{' and a bracketed
 * section that starts inside it ("BODY[HEADER.FIELDS (DATE)]<0>") runs to
 * its matching ']' whatever it holds; a flag is an atom ("\Seen", "\*").
 *
 * Bounded: at most IMAP_RESP_NODES_MAX nodes and IMAP_RESP_DEPTH_MAX
 * levels of lists; no recursion.  The response points into the input,
 * which must outlive it: quoted strings are unescaped in place and a NUL
 * is written after the code and the text (so in[len] must be writable, as
 * a struct buf's is). */
#ifndef YUBIN_CLIENT_IMAP_RESP_H
#define YUBIN_CLIENT_IMAP_RESP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define IMAP_RESP_NODES_MAX (2u * 1024 * 1024)
#define IMAP_RESP_DEPTH_MAX 64
#define IMAP_RESP_TAG_MAX 63
#define IMAP_RESP_NAME_MAX 31

enum imap_resp_kind { IMAP_RESP_UNTAGGED, IMAP_RESP_TAGGED, IMAP_RESP_CONTINUE };
enum imap_resp_status {
	IMAP_ST_NONE,       /* untagged data, or a continuation */
	IMAP_ST_OK,
	IMAP_ST_NO,
	IMAP_ST_BAD,
	IMAP_ST_PREAUTH,
	IMAP_ST_BYE,
};
enum imap_node_type { IMAP_NODE_ATOM, IMAP_NODE_STRING, IMAP_NODE_NIL, IMAP_NODE_LIST };

struct imap_node {
	enum imap_node_type type;
	uint32_t len;        /* bytes of s; for a list, its number of children */
	uint32_t next;       /* index of the next sibling; 0: none (index 0 is never a
			      * sibling: it is the first argument) */
	uint32_t child;      /* for a list with children, index of the first one */
	const char *s;       /* into the input, not NUL-terminated: use len */
};

struct imap_resp {
	enum imap_resp_kind kind;
	char tag[IMAP_RESP_TAG_MAX + 1];       /* tagged only */
	enum imap_resp_status status;
	/* Status responses: the code without its brackets ("UIDNEXT 5",
	 * "CAPABILITY IMAP4rev1 ...", "" when none) and the text after it.
	 * A continuation: text is what follows "+ " (a SASL challenge). */
	const char *code;
	const char *text;
	/* Untagged data: "* 3 EXISTS" has_number, number 3, name "EXISTS";
	 * "* FLAGS (...)" no number, name "FLAGS".  The name is upper-cased. */
	bool has_number;
	uint32_t number;
	char name[IMAP_RESP_NAME_MAX + 1];
	/* Arguments after the name (data) - nodes[0] is the first when nnodes
	 * > 0, its siblings follow through next. */
	struct imap_node *nodes;
	size_t nnodes;
};

/* When line[0..len) (without its line end) ends in a literal announcement
 * "{N}", "{N+}" or "~{N}", return 1 with N in *n_r; else 0.  -1 when N
 * has more than 10 digits or is above max (the caller's cap). */
int imap_resp_literal(const char *line, size_t len, uint64_t max, uint64_t *n_r);

/* Parse in[0..len) into r (zeroed first; in is modified as said above).
 * 0, or -1 with a static error (r is then cleared: imap_resp_free not
 * needed).  After 0, free with imap_resp_free. */
int imap_resp_parse(char *in, size_t len, struct imap_resp *r, const char **error_r);
void imap_resp_free(struct imap_resp *r);

/* Navigation: the first argument, the next sibling, the first child of a
 * list (NULL at the end / when there is none). */
const struct imap_node *imap_resp_first(const struct imap_resp *r);
const struct imap_node *imap_resp_next(const struct imap_resp *r, const struct imap_node *n);
const struct imap_node *imap_resp_child(const struct imap_resp *r, const struct imap_node *n);
/* A heap NUL-terminated copy of an atom's or a string's bytes ("" for
 * NIL or a list). */
char *imap_node_dup(const struct imap_node *n);
/* n is an atom equal to word, ignoring ASCII case. */
bool imap_node_is(const struct imap_node *n, const char *word);
/* n is an atom of digits that fits: 0, else -1. */
int imap_node_u32(const struct imap_node *n, uint32_t *v);
int imap_node_u64(const struct imap_node *n, uint64_t *v);
/* In a FETCH list (name value name value ...), the value of the item
 * called name (ignoring case; "BODY[]" matches "BODY[]" exactly, and
 * "BODY[" as a prefix matches any section); NULL when absent. */
const struct imap_node *imap_fetch_item(const struct imap_resp *r, const struct imap_node *list,
					const char *name);

#endif
