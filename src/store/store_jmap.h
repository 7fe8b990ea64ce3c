/* store_jmap.h - what JMAP reads of the store in one statement (one
 * consistent snapshot, whatever the number of mailboxes). */
#ifndef YUBIN_STORE_STORE_JMAP_H
#define YUBIN_STORE_STORE_JMAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct store;

struct store_jmap_mailbox {
	int64_t id;
	char *name;                 /* full UTF-8 name, "/" between levels */
	char *special_use;          /* "\\Sent" etc., or NULL */
	bool noselect;
	bool subscribed;
	int64_t total;              /* messages */
	int64_t unread;             /* neither \Seen nor \Draft (RFC 8621 2) */
	uint64_t highestmodseq;
	uint32_t uidvalidity;
};

/* Every mailbox of the account in name order (byte order, as strcmp).
 * 0 with *v_r (heap, store_jmap_mailboxes_free) and *n_r, or -1 with
 * *error_r (heap). */
int store_jmap_mailboxes(struct store *st, int64_t account_id, struct store_jmap_mailbox **v_r,
			 size_t *n_r, char **error_r);
void store_jmap_mailboxes_free(struct store_jmap_mailbox *v, size_t n);

/* The account's states: positions in the change log (jmap_changes,
 * filled by triggers on every write of mailbox_messages, mailboxes and
 * subscriptions, whoever makes it): email = the last change of an email,
 * mailbox = the last change of anything (counts are mailbox properties);
 * horizon = the log holds every change after it (older ones pruned).
 * IMAP and JMAP advance together.  0 / -1. */
struct store_jmap_state {
	int64_t email;
	int64_t mailbox;
	int64_t horizon;
};
int store_jmap_state(struct store *st, int64_t account_id, struct store_jmap_state *r,
		     char **error_r);

/* The account's changes after seq since (ascending), of one kind
 * (STORE_JMAP_KIND_*, or 0 for both), at most max: 0 with *v_r (heap) /
 * *n_r, -1 with *error_r. */
#define STORE_JMAP_KIND_EMAIL 1
#define STORE_JMAP_KIND_MAILBOX 2
enum store_jmap_op { STORE_JMAP_CREATED, STORE_JMAP_UPDATED, STORE_JMAP_DESTROYED };
struct store_jmap_change {
	int64_t seq;
	int kind;
	int64_t obj;                  /* body id or mailbox id */
	int64_t mailbox;              /* an email's: the copy's mailbox */
	enum store_jmap_op op;
};
int store_jmap_changes(struct store *st, int64_t account_id, int kind, int64_t since,
		       size_t max, struct store_jmap_change **v_r, size_t *n_r, char **error_r);

/* Email/query, all in SQL.  An email is one message body (messages.id) as
 * the account sees it: one or more mailbox_messages rows sharing body_id
 * (an IMAP COPY or a JMAP mailboxIds change keeps the body), so its id
 * survives moves. */
enum store_jmap_sort {
	STORE_JMAP_SORT_RECEIVED,   /* internaldate */
	STORE_JMAP_SORT_SIZE,
	/* keys of the threading (jmap_thread_sync first) */
	STORE_JMAP_SORT_SENT,
	STORE_JMAP_SORT_FROM,
	STORE_JMAP_SORT_SUBJECT,
};
#define STORE_JMAP_IN_MAX 64
struct store_jmap_query {
	int64_t in_mailbox;           /* 0: any of the account */
	const int64_t *not_in;        /* inMailboxOtherThan */
	size_t nnot_in;
	bool has_before, has_after;
	int64_t before, after;        /* receivedAt < before, >= after (Unix s) */
	int64_t min_size, max_size;   /* -1 when not given; size >= min, < max */
	uint32_t flags_set, flags_clear;    /* FLAG_* that must be set / clear */
	const char *const *kw_set;    /* other keywords that must be there / absent */
	size_t nkw_set;
	const char *const *kw_clear;
	size_t nkw_clear;
	/* Full-text candidates (FTS5 trigram, three characters at least; NULL
	 * for none): the indexed messages whose text has it, and every message
	 * not indexed.  The caller checks them. */
	const char *text;
	enum store_jmap_sort sort;
	bool ascending;
	bool collapse;                /* one email a thread (jmap_thread_sync first) */
	int64_t position;             /* may be negative (from the end) */
	bool has_anchor;
	int64_t anchor_body;
	int64_t anchor_offset;
	size_t limit;
	bool calculate_total;          /* else *total_r is -1 (unless needed) */
};
struct store_jmap_ref {
	int64_t body_id;
};
/* 1 with *v_r (heap) / *n_r, *total_r (every match) and *position_r;
 * 0 when the anchor is not in the results; -1 error. */
int store_jmap_query(struct store *st, int64_t account_id, const struct store_jmap_query *q,
		     struct store_jmap_ref **v_r, size_t *n_r, int64_t *total_r,
		     int64_t *position_r, char **error_r);

/* One email of the account for Email/get: its first copy's (lowest
 * mailbox id, then uid) flags, keywords and date, and every mailbox
 * holding it. */
struct store_jmap_email {
	int64_t body_id;
	int64_t mailbox_id;           /* the first copy */
	uint32_t uid;
	uint32_t flags;
	char *keywords;               /* heap or NULL */
	int64_t internaldate;
	int64_t size;
	char path[64];
	int64_t *mailboxes;           /* heap: every mailbox with a copy, ascending */
	size_t nmailboxes;
	int64_t thread_id;            /* 0: not threaded yet */
};
/* 1 found (store_jmap_email_free), 0 not in this account, -1 error. */
int store_jmap_email(struct store *st, int64_t account_id, int64_t body_id,
		     struct store_jmap_email *e_r);
void store_jmap_email_free(struct store_jmap_email *e);

/* Every copy of body body_id in the account's mailboxes (for Email/set):
 * 0 with *v_r (heap) and *n_r (0: not in this account), -1 with *error_r. */
struct store_jmap_row {
	int64_t mailbox_id;
	uint32_t uid;
	uint32_t flags;
	char *keywords;               /* heap or NULL */
};
int store_jmap_email_rows(struct store *st, int64_t account_id, int64_t body_id,
			  struct store_jmap_row **v_r, size_t *n_r, char **error_r);
void store_jmap_rows_free(struct store_jmap_row *v, size_t n);

/* ---- threads (schema 13) ---- */

/* The account's emails not threaded yet, oldest first, at most max:
 * from the change log after accounts.jmap_threaded, or -- the first time,
 * or when the log has been pruned past it -- every email without a thread
 * with a body id above *after_body (a cursor the caller starts at 0; moved
 * here).  0 with *v_r (heap) / *n_r and *upto_r (the log position to
 * record once these are threaded, or -1 for none yet), -1 with *error_r. */
struct store_jmap_unthreaded {
	int64_t body_id;
	char path[64];
};
int store_jmap_unthreaded(struct store *st, int64_t account_id, size_t max,
			  int64_t *after_body, struct store_jmap_unthreaded **v_r, size_t *n_r,
			  int64_t *upto_r, char **error_r);

/* Thread emails in order, in one transaction: each joins the thread of
 * the first of its hashes already known (refs: own Message-ID first, then
 * In-Reply-To and References), else starts its own (thread id = its body
 * id), and records all its hashes for that thread.  upto >= 0 is stored
 * as accounts.jmap_threaded.  0 / -1. */
struct store_jmap_thread_in {
	int64_t body_id;
	const uint64_t *hashes;
	size_t nhashes;
	/* Email/query sort keys (STORE_JMAP_SORT_SENT etc.) */
	int64_t sent_at;
	const char *from_key;
	const char *subject_key;
};
int store_jmap_thread_add(struct store *st, int64_t account_id,
			  const struct store_jmap_thread_in *v, size_t n, int64_t upto,
			  char **error_r);

/* The emails of thread thread_id still in the account, by receivedAt
 * (then id): 0 with *v_r (heap) / *n_r, -1 error. */
int store_jmap_thread_emails(struct store *st, int64_t account_id, int64_t thread_id,
			     int64_t **v_r, size_t *n_r, char **error_r);

/* The accounts whose threads lag their change log: 0 with *v_r (heap)
 * / *n_r, -1 with *error_r. */
int store_jmap_accounts_unthreaded(struct store *st, int64_t **v_r, size_t *n_r,
				   char **error_r);

/* The thread of an email of the account: 1 with *thread_r, 0 none yet,
 * -1 error. */
int store_jmap_thread_of(struct store *st, int64_t account_id, int64_t body_id,
			 int64_t *thread_r);

#endif
