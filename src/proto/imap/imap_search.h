/* imap_search.h - IMAP SEARCH (RFC 3501 / RFC 9051 6.4.4), SORT and THREAD
 * (RFC 5256, RFC 5957 DISPLAYFROM/DISPLAYTO).
 *
 * Pure, no I/O.  Search keys are compiled from the flat argument array of
 * imap_parser.h into a small program (a tree walked with explicit stacks,
 * never by recursion on client depth), then evaluated per message against
 * what the session loaded for it.  Header and body text are decoded on
 * demand inside imap_search_match() (RFC 2047 words, Content-Transfer-
 * Encoding, the part's charset to UTF-8) and matched as substrings after
 * case folding: ASCII, Latin-1, Latin Extended-A and Additional, Greek,
 * Cyrillic, Armenian and fullwidth Latin get simple case folding (a fixed
 * rule set here, no locale); everything else, Japanese included, matches
 * exactly.  Text is not Unicode-normalised (NFC and NFD forms differ).
 * The body text is that of every text/... leaf part (attachments included,
 * HTML with its markup) and the header of every encapsulated message/rfc822;
 * other parts, preambles and epilogues are not searched.  A missing or
 * unknown part charset searches the bytes as they are.  SENT* keys never
 * match a message without a parsable Date: field.
 *
 * Limits: IMAP_SEARCH_DEPTH_MAX nested NOT/OR/( ), IMAP_SEARCH_KEYS_MAX
 * keys; at most IMAP_SEARCH_TEXT_MAX bytes of decoded body text and as much
 * header text are searched per message (the rest is not looked at). */
#ifndef YUBIN_PROTO_IMAP_SEARCH_H
#define YUBIN_PROTO_IMAP_SEARCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"
#include "mail/mime.h"
#include "proto/imap/imap_parser.h"

#define IMAP_SEARCH_DEPTH_MAX 32u
#define IMAP_SEARCH_KEYS_MAX  1000u
#define IMAP_SEARCH_TEXT_MAX  (16u * 1024 * 1024)

/* \Recent in imap_search_msg.flags, beside the FLAG_* bits of store.h. */
#define IMAP_SEARCH_RECENT (1u << 31)

/* imap_search_needs() bits. */
#define IMAP_SEARCH_NEED_HEADER 1u
#define IMAP_SEARCH_NEED_BODY   2u
/* Size or internal/save date (the store's per-message row, not the file). */
#define IMAP_SEARCH_NEED_META   4u

struct imap_search; /* compiled program, heap */

/* Compile the search keys args[first .. end) (end = index past the last key,
 * usually cmd->nargs; first is past "CHARSET x" and any RETURN options,
 * which are the session's business) with the given CHARSET (NULL, "UTF-8"
 * and "US-ASCII" take strings as they are).  Every key of RFC 3501, a
 * sequence set, parenthesised lists, MODSEQ [entry-name entry-type] n (RFC
 * 7162; the entry is ignored), SAVEDBEFORE/SAVEDON/SAVEDSINCE (RFC 8514)
 * and OLDER/YOUNGER (RFC 5032).  Strings are converted from the charset to
 * UTF-8; an unknown charset fails with *badcharset_r set (the session
 * replies NO [BADCHARSET (UTF-8 ...)]).  Returns 0 with *prog_r, or -1 with
 * a static *error_r for the BAD (or NO) reply. */
int imap_search_compile(const struct imap_arg *args, uint32_t first, uint32_t end,
			const char *charset, struct imap_search **prog_r, bool *badcharset_r,
			const char **error_r);
/* NULL-safe; clears *p. */
void imap_search_free(struct imap_search **p);

/* What evaluation needs from the message: IMAP_SEARCH_NEED_HEADER (header
 * fields: FROM, HEADER, SENT*, ...), IMAP_SEARCH_NEED_BODY (BODY, TEXT),
 * IMAP_SEARCH_NEED_META (sizes, internal and save dates), or 0 (flags,
 * keywords, numbers and MODSEQ only: no store read at all). */
unsigned imap_search_needs(const struct imap_search *p);
/* True when the program has a MODSEQ key anywhere (CONDSTORE: the reply then
 * ends in "(MODSEQ n)"). */
bool imap_search_uses_modseq(const struct imap_search *p);
/* Strings of the BODY and TEXT keys that every matching message must contain
 * (keys reached only through AND: top level and parentheses, never under
 * OR or NOT), as UTF-8 before case folding, empty strings left out.  A BODY
 * term is in the body text, a TEXT term in the header or the body: a
 * full-text index may pre-filter with them when it covers both.  The array
 * belongs to the program; returns the count (0: *terms_r is NULL). */
size_t imap_search_body_terms(const struct imap_search *p, const char ***terms_r);

struct imap_search_msg {
	uint32_t seq, uid;
	uint32_t flags;          /* FLAG_* of store.h, plus IMAP_SEARCH_RECENT */
	const char *keywords;    /* space-separated keyword atoms, or NULL */
	int64_t size;            /* RFC822.SIZE */
	int64_t internaldate;    /* unix seconds */
	uint64_t modseq;
	/* The whole message, or NULL when imap_search_needs() is 0 (a program
	 * that needs text then finds no header and no body in it). */
	const char *data;
	size_t len;
	/* Parsed from data, or NULL (parsed inside match when the body is
	 * needed). */
	const struct mime_message *mime;
	int64_t savedate;        /* RFC 8514 save date; 0: unknown, the internal date is used */
};

struct imap_search_ctx {
	uint32_t max_seq;        /* the value of '*' in a sequence set: messages in the mailbox */
	uint32_t max_uid;        /* '*' in UID sets: the highest UID there (0 when empty) */
	int tz_offset_min;       /* server time zone for BEFORE/ON/SINCE; 0 = UTC */
	int64_t now;             /* OLDER/YOUNGER reference time; 0 = the current time */
	/* "$" (RFC 5182 SEARCHRES): the saved result as UIDs in ascending
	 * order; NULL/0 = empty. */
	const uint32_t *saved_uids;
	size_t nsaved;
};

/* 1 match, 0 no match. */
int imap_search_match(const struct imap_search *p, const struct imap_search_ctx *ctx,
		      const struct imap_search_msg *msg);

/* --- SORT (RFC 5256 section 3, RFC 5957) --- */

#define IMAP_SORT_CRITERIA_MAX 16u

struct imap_sort;     /* parsed criteria, heap */
struct imap_sort_key; /* sort keys of one message, heap */

/* Parse the sort criteria list args[i] (must be a LIST): ARRIVAL CC DATE
 * FROM REVERSE SIZE SUBJECT TO DISPLAYFROM DISPLAYTO.  0, or -1 with a
 * static *error_r. */
int imap_sort_parse(const struct imap_arg *args, uint32_t i, struct imap_sort **sort_r,
		    const char **error_r);
void imap_sort_free(struct imap_sort **s);
/* The keys of one message, from its header (msg->data; mime is not used).
 * Strings are kept upper-cased for i;ascii-casemap: the base subject, the
 * mailbox (local part) of the first From/To/Cc address, the display value
 * of RFC 5957 (decoded display-name, else mailbox@host).  DATE is the
 * Date: field in UTC, the internal date when it is missing or unparsable. */
struct imap_sort_key *imap_sort_key_make(const struct imap_sort *s,
					 const struct imap_search_msg *msg);
/* Sort keys[0..n) (all made with s) into order; ties by sequence number. */
void imap_sort_run(const struct imap_sort *s, struct imap_sort_key **keys, size_t n);
uint32_t imap_sort_key_seq(const struct imap_sort_key *k);
uint32_t imap_sort_key_uid(const struct imap_sort_key *k);
void imap_sort_key_free(struct imap_sort_key *k); /* NULL-safe */

/* Base subject of RFC 5256 section 2.1: RFC 2047 words decoded, folding and
 * runs of blanks made one space, "(fwd)" trailers, "Re:"/"Fw:"/"Fwd:"
 * leaders, "[blob]" prefixes and "[fwd: ...]" wrappers removed.  raw is the
 * field value as it is in the header.  Heap UTF-8 string, never NULL. */
char *imap_base_subject(const char *raw_subject, size_t len);

/* --- THREAD (RFC 5256 section 4) --- */

enum imap_thread_alg {
	IMAP_THREAD_ORDEREDSUBJECT,
	IMAP_THREAD_REFERENCES,
};

/* One message as threading sees it.  imap_thread_msg_init() fills it from
 * the header; tests and callers with their own data may fill it by hand
 * (then every string is the caller's and imap_thread_msg_clear() must not
 * be used on it). */
struct imap_thread_msg {
	uint32_t seq, uid;
	int64_t date;            /* sent date (UTC); the internal date without a usable Date: */
	char *subject;           /* base subject (imap_base_subject), never NULL */
	bool subject_reply;      /* a Re:/Fwd: leader, (fwd) trailer or [fwd:] was removed */
	char *message_id;        /* Message-ID without <>, or NULL when missing or invalid */
	/* References ids, oldest first, without <>; without References the
	 * first id of In-Reply-To. */
	char **refs;
	size_t nrefs;
};

/* Fill t from msg's header (msg->data, seq, uid, internaldate).  Heap
 * strings; release with imap_thread_msg_clear(). */
void imap_thread_msg_init(struct imap_thread_msg *t, const struct imap_search_msg *msg);
void imap_thread_msg_clear(struct imap_thread_msg *t);

/* "ORDEREDSUBJECT" / "REFERENCES", any case.  0, or -1 when unknown. */
int imap_thread_alg_parse(const struct imap_arg *arg, enum imap_thread_alg *alg_r);

/* Thread msgs[0..n) (in mailbox order) and append the response body, e.g.
 * "(1)(2 3 (4)(5))", using UIDs when use_uid (nothing for n == 0).  Works
 * without recursion: chains and References of any depth are fine.  0, or -1
 * when out would pass its max. */
int imap_thread_run(enum imap_thread_alg alg, const struct imap_thread_msg *msgs, size_t n,
		    bool use_uid, struct buf *out);

#endif
