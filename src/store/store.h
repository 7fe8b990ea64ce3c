/* store.h - the mail store: accounts, domains, mailboxes, messages, flags.
 *
 * Metadata lives in SQLite (WAL, synchronous=FULL) in DATA_DIR/yubin.db;
 * every message body is an immutable file DATA_DIR/msg/YYYYMMDD/QUEUEID
 * written once and fsynced (plus its directory) before the transaction that
 * makes it visible commits.  One body file may be referenced by several
 * mailboxes (a delivery to several local recipients stores it once); it is
 * unlinked when its last reference is expunged.
 *
 * UIDs per mailbox only grow (mailboxes.uidnext), every mailbox has a
 * UIDVALIDITY, every message in a mailbox has flags and a MODSEQ
 * (mailboxes.highestmodseq) for the IMAP layer.
 *
 * Every function here blocks (SQLite, file system): call them from the CLI,
 * at start-up, or from worker threads -- never on the event-loop thread.
 * They are thread-safe: each call borrows a connection from an internal
 * pool.  Writes from the daemon go through store_writer (writer.h), which
 * batches them into group commits. */
#ifndef YUBIN_STORE_STORE_H
#define YUBIN_STORE_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct store;
struct sqlite3;

/* System flags, as a bit set in mailbox_messages.flags. */
enum {
	FLAG_SEEN = 1 << 0,
	FLAG_ANSWERED = 1 << 1,
	FLAG_FLAGGED = 1 << 2,
	FLAG_DELETED = 1 << 3,
	FLAG_DRAFT = 1 << 4,
};

/* Special-use mailboxes every new account gets (RFC 6154). */
#define STORE_INBOX "INBOX"

struct account {
	int64_t id;
	char *address;      /* lower-case "user@domain" */
	char *pw_hash;      /* libsodium argon2id string ($argon2id$...) */
	char *apop_secret;  /* NULL unless the account opted in to APOP (also CRAM-MD5) */
	char *scram;        /* SCRAM-SHA-256 keys (scram_secret_make), NULL before a password set */
	int64_t inbox_id;   /* mailbox id of INBOX */
};

struct mailbox_info {
	int64_t id;
	int64_t account_id;
	char *name;
	uint32_t uidvalidity;
	uint32_t uidnext;
	uint64_t highestmodseq;
	int64_t messages;
	int64_t size;       /* sum of message sizes */
	bool noselect;      /* kept only for its inferiors (IMAP \Noselect) */
};

/* One message of a mailbox, as POP3 and IMAP list it. */
struct msg_entry {
	uint32_t uid;
	uint32_t flags;     /* FLAG_* */
	uint64_t modseq;
	int64_t size;       /* octets of the stored file (CRLF line ends) */
	int64_t internaldate;
	int64_t body_id;    /* messages.id */
	char path[64];      /* relative to DATA_DIR, e.g. "msg/20261123/0123456789ABCDEF" */
};

enum rcpt_status {
	RCPT_LOCAL,         /* domain is ours and the account exists */
	RCPT_UNKNOWN_USER,  /* domain is ours, no such account */
	RCPT_NOT_LOCAL,     /* not one of our domains: relaying */
};

struct rcpt_info {
	enum rcpt_status status;
	int64_t account_id;
	int64_t mailbox_id; /* INBOX of the account */
	int64_t quota;      /* bytes, 0 = no limit */
	int64_t used;       /* bytes of mail stored in the account */
	char address[320];  /* canonical lower-case address of the account */
};

/* Open (and create or migrate) the store under data_dir.  *error_r is a
 * heap string for the operator. */
int store_open(const char *data_dir, struct store **st_r, char **error_r);
/* Close every pooled connection; NULL-safe; clears *st. */
void store_close(struct store **st);
const char *store_data_dir(const struct store *st);
/* Absolute path of a message file (relative path from msg_entry.path). */
void store_msg_path(const struct store *st, const char *rel, char *out, size_t outsz);

/* Connection pool, for store internals and the writer.  store_db_get
 * returns NULL (and logs why) when the database cannot be opened. */
struct sqlite3 *store_db_get(struct store *st);
void store_db_put(struct store *st, struct sqlite3 *db);

/* Domains.  Names are stored lower-case. 0 ok, -1 error (*error_r set). */
int store_domain_add(struct store *st, const char *name, char **error_r);
int store_domain_del(struct store *st, const char *name, char **error_r);
/* Calls cb for each domain in name order. */
int store_domain_list(struct store *st, void (*cb)(const char *name, void *arg), void *arg, char **error_r);
/* 1 local, 0 not, -1 error. */
int store_domain_is_local(struct store *st, const char *name);

/* Accounts.  address must be user@local-domain; the domain must exist.
 * account_add creates INBOX, Drafts, Sent, Trash, Junk and Archive. */
int store_account_add(struct store *st, const char *address, const char *pw_hash, char **error_r);
int store_account_del(struct store *st, const char *address, char **error_r);
int store_account_set_password(struct store *st, const char *address, const char *pw_hash, char **error_r);
/* Storage quota in bytes (0: no limit). */
int store_account_set_quota(struct store *st, const char *address, int64_t bytes,
			    char **error_r);
/* 1 found (quota and bytes used), 0 no such account, -1 error. */
int store_account_quota(struct store *st, int64_t account_id, int64_t *quota_r,
			int64_t *used_r);
/* secret NULL clears it. */
/* SCRAM-SHA-256 keys made from the password (scram.h); NULL clears. */
int store_account_set_scram(struct store *st, const char *address, const char *scram,
			    char **error_r);
int store_account_set_apop(struct store *st, const char *address, const char *secret, char **error_r);
int store_account_list(struct store *st, void (*cb)(const char *address, void *arg), void *arg, char **error_r);
/* 1 found (fields filled, free with account_free), 0 not found, -1 error. */
int store_account_find(struct store *st, const char *address, struct account *a_r);
void account_free(struct account *a);

/* Resolve an envelope recipient (already syntax-checked, any case).
 * 0 ok (r filled), -1 error (temporary failure). */
int store_resolve_rcpt(struct store *st, const char *address, struct rcpt_info *r);

/* Local routing (store_alias.c).  Addresses are kept lower-case. */
#define STORE_EXPAND_MAX 1000       /* targets one recipient expands to */
#define STORE_EXPAND_DEPTH 8        /* aliases of aliases */
struct store_pair {
	char *a, *b;
};
void store_pairs_free(struct store_pair *v, size_t n);
/* address: user@domain or "@domain" (catch-all), domain local; target any
 * address.  0 ok (adding twice is ok), -1 error. */
int store_alias_add(struct store *st, const char *address, const char *target, char **error_r);
/* target NULL: every target.  1 deleted, 0 no such alias, -1 error. */
int store_alias_del(struct store *st, const char *address, const char *target, char **error_r);
int store_alias_list(struct store *st, struct store_pair **v_r, size_t *n_r, char **error_r);
/* A list (user@local-domain, not an account or alias) and its owner. */
int store_list_add(struct store *st, const char *list, const char *owner, char **error_r);
/* 1 deleted (with its members), 0 no such list, -1 error. */
int store_list_del(struct store *st, const char *list, char **error_r);
/* add or remove: 1 done, 0 nothing to do (no list, not a member), -1 error. */
int store_list_member(struct store *st, const char *list, const char *member, bool add,
		      char **error_r);
int store_list_list(struct store *st, struct store_pair **v_r, size_t *n_r, char **error_r);
/* 1 with *owner_r and the members (heap), 0 no such list, -1 error. */
int store_list_members(struct store *st, const char *list, char **owner_r, char ***v_r,
		       size_t *n_r, char **error_r);

enum rcpt_target_kind { TARGET_LOCAL, TARGET_REMOTE, TARGET_LIST };
struct rcpt_target {
	enum rcpt_target_kind kind;
	int64_t account_id, mailbox_id;     /* TARGET_LOCAL: the INBOX */
	int64_t quota, used;
	char address[320];                  /* the account, remote address or list */
};
struct rcpt_expansion {
	enum rcpt_status status;    /* RCPT_LOCAL when n > 0 */
	struct rcpt_target *v;
	size_t n;
	bool capped;                /* STORE_EXPAND_MAX or _DEPTH cut it */
};
/* Resolve an envelope recipient through accounts, lists, aliases,
 * user+tag (delim, 0 for none) and the domain's catch-all.  0 ok, -1 error
 * (temporary).  Free with rcpt_expansion_free. */
int store_expand_rcpt(struct store *st, const char *address, char delim,
		      struct rcpt_expansion *x);
void rcpt_expansion_free(struct rcpt_expansion *x);
/* The aliases that name account as a target (what it may send as). */
int store_own_addresses(struct store *st, const char *account, char ***v_r, size_t *n_r);

/* Mailboxes. 1 found, 0 not, -1 error. */
int store_mailbox_find(struct store *st, int64_t account_id, const char *name, struct mailbox_info *mb_r);
int store_mailbox_get(struct store *st, int64_t mailbox_id, struct mailbox_info *mb_r);
void mailbox_info_free(struct mailbox_info *mb);
/* Every message of the mailbox in UID order (a snapshot). *arr_r is one heap
 * array (free()). 0 ok, -1 error. */
int store_mailbox_messages(struct store *st, int64_t mailbox_id, struct msg_entry **arr_r, size_t *n_r);

/* --- writes inside a transaction (the writer thread, or the CLI) --- */
struct store_txn;
struct store_txn *store_txn_begin(struct store *st, char **error_r);
/* Consumes t, on success and on failure (it is rolled back then): never call
 * store_txn_rollback after store_txn_commit. */
int store_txn_commit(struct store_txn *t, char **error_r);
void store_txn_rollback(struct store_txn *t);
/* Savepoints so that one failing operation does not spoil a batch. */
int store_txn_savepoint(struct store_txn *t);
int store_txn_release(struct store_txn *t);
void store_txn_rollback_to(struct store_txn *t);

/* Register a body file that is already written and fsynced; returns its id. */
int store_txn_add_body(struct store_txn *t, const char *relpath, int64_t size, int64_t *body_id_r, char **error_r);
/* Append body to a mailbox with the next UID; returns the UID. */
int store_txn_append(struct store_txn *t, int64_t mailbox_id, int64_t body_id, uint32_t flags,
		     int64_t internaldate, uint32_t *uid_r, char **error_r);
/* The same with keywords: a space-separated list of IMAP keyword atoms (NULL
 * or "" for none). */
int store_txn_append_kw(struct store_txn *t, int64_t mailbox_id, int64_t body_id, uint32_t flags,
			const char *keywords, int64_t internaldate, uint32_t *uid_r,
			char **error_r);
/* Remove UIDs from a mailbox; every removed UID is recorded in expunged with
 * one new MODSEQ (for CONDSTORE/QRESYNC and other sessions).  Body files no longer referenced anywhere are
 * added to *unlink_r (relative paths; heap array of heap strings, caller
 * unlinks them after the commit and frees). */
int store_txn_expunge(struct store_txn *t, int64_t mailbox_id, const uint32_t *uids, size_t n,
		      char ***unlink_r, size_t *nunlink_r, char **error_r);
/* flags = (flags & ~clear) | set, for each UID; bumps MODSEQ. */
int store_txn_set_flags(struct store_txn *t, int64_t mailbox_id, const uint32_t *uids, size_t n,
			uint32_t set, uint32_t clear, char **error_r);

/* Body files whose last reference is gone are recorded in a trash table by
 * the same transaction (a trigger on messages); the caller still unlinks
 * them after the commit (store_txn_expunge's list), and these functions
 * unlink whatever is left in trash and forget it -- after a crash, or when
 * an unlink failed.  In a transaction (the writer does it in the batch after
 * one that expunged) or on their own. */
int store_txn_empty_trash(struct store_txn *t, char **error_r);
/* After the commit of an expunge: unlink the body files it listed
 * (relative paths).  A file that cannot go stays in trash and is removed
 * by the next trash emptying.  Frees nothing. */
void store_unlink_bodies(struct store *st, char *const *paths, size_t n);
int store_empty_trash(struct store *st, char **error_r);

/* Empty the trash, and remove files a crash left half-written (bodies never
 * committed, spares never used) in the two newest day directories.  Called
 * once at daemon start-up, before the writer starts. */
int store_recover(struct store *st, char **error_r);


/* --- mailbox operations for IMAP (store_mailbox.c) ---
 * Names are UTF-8 (after mutf7_decode), separator '/', checked and
 * normalised by mutf7_mailbox_check: "inbox/x" means "INBOX/x"; every other
 * name is case-sensitive.  Each call is one write transaction (blocking,
 * like everything here).  0 ok; on failure a negative STORE_MBOX_E* that
 * says which IMAP response code to send, and a heap *error_r (caller frees)
 * fit for the NO reply. */
enum {
	STORE_MBOX_EFAIL = -1,      /* database or I/O: [SERVERBUG] / [UNAVAILABLE] */
	STORE_MBOX_EBADNAME = -2,   /* refused by mutf7_mailbox_check: [CANNOT] */
	STORE_MBOX_EEXISTS = -3,    /* [ALREADYEXISTS] */
	STORE_MBOX_ENOENT = -4,     /* [NONEXISTENT] */
	STORE_MBOX_ECANNOT = -5,    /* [CANNOT]: INBOX delete, rename under itself... */
	STORE_MBOX_ELIMIT = -6,     /* [LIMIT]: STORE_MAILBOX_MAX reached */
	STORE_MBOX_EUSEATTR = -7,   /* [USEATTR] (RFC 6154): unknown special-use */
};
/* Most mailboxes (\Noselect ones included) one account may have. */
#define STORE_MAILBOX_MAX 10000

/* Flags passed to the store_mailbox_list callback. */
enum {
	STORE_MBOX_NOSELECT = 1 << 0,   /* deleted, kept for its inferiors */
	STORE_MBOX_HASCHILDREN = 1 << 1,
	STORE_MBOX_SUBSCRIBED = 1 << 2,
};

/* Create name (special_use NULL or one of RFC 6154 "\\All", "\\Archive",
 * "\\Drafts", "\\Flagged", "\\Junk", "\\Sent", "\\Trash") with a new
 * UIDVALIDITY, and any missing superior names (plain selectable mailboxes).
 * An existing \Noselect name becomes selectable again; any other existing
 * name is EEXISTS.  *id_r (may be NULL) gets the mailbox id. */
int store_mailbox_create(struct store *st, int64_t account_id, const char *name,
			 const char *special_use, int64_t *id_r, char **error_r);
/* RFC 3501 6.3.4: INBOX is ECANNOT; a mailbox with inferiors loses its
 * messages and becomes \Noselect (ECANNOT when it already is); otherwise it
 * goes.  Expunges like store_txn_expunge and unlinks, after the commit, the
 * body files whose last reference went (their trash rows are forgotten by
 * the next store_empty_trash / writer batch / store_recover). */
int store_mailbox_delete(struct store *st, int64_t account_id, const char *name,
			 char **error_r);
/* RFC 3501 6.3.5: rename old and its inferiors ("old/...") keeping ids,
 * UIDVALIDITY and UIDs; missing superiors of new are created.  new (and
 * every renamed inferior) must not exist; new under old is ECANNOT.
 * Renaming INBOX creates new (fresh UIDVALIDITY, UIDs 1..n in INBOX UID
 * order) and moves every INBOX message there; INBOX stays, empty, with its
 * UIDVALIDITY and UIDNEXT, and its inferiors are not renamed. */
int store_mailbox_rename(struct store *st, int64_t account_id, const char *oldname,
			 const char *newname, char **error_r);
/* Every mailbox of the account in name order (byte order of UTF-8).
 * special_use may be NULL; flags are STORE_MBOX_NOSELECT etc. */
int store_mailbox_list(struct store *st, int64_t account_id,
		       void (*cb)(const char *name, const char *special_use, unsigned flags,
				  void *arg),
		       void *arg, char **error_r);
/* Subscriptions are names (checked like mailbox names), which need not
 * exist.  Subscribing twice is fine; unsubscribing a name that is not
 * subscribed is ENOENT. */
int store_mailbox_subscribe(struct store *st, int64_t account_id, const char *name,
			    char **error_r);
int store_mailbox_unsubscribe(struct store *st, int64_t account_id, const char *name,
			      char **error_r);
/* Every subscribed name in name order (for LSUB / LIST (SUBSCRIBED)). */
int store_mailbox_subscriptions(struct store *st, int64_t account_id,
				void (*cb)(const char *name, void *arg), void *arg,
				char **error_r);


/* --- message state for IMAP sessions (store_imap.c) --- */

/* The MODSEQ the next change to the mailbox will get; after the change,
 * store_set_highestmodseq raises the mailbox's HIGHESTMODSEQ to it. */
int store_next_modseq(struct store_txn *t, int64_t mailbox_id, uint64_t *modseq_r, char **error_r);
int store_set_highestmodseq(struct store_txn *t, int64_t mailbox_id, uint64_t modseq,
			    char **error_r);

/* The state of one message as a session tracks it. */
struct msg_state {
	uint32_t uid;
	uint32_t flags;         /* FLAG_* */
	uint64_t modseq;
	char *keywords;         /* heap, space-separated, or NULL */
};

/* One read transaction: the mailbox (mb_r, free with mailbox_info_free),
 * every message whose MODSEQ is above since, in UID order (since 0: every
 * message), and the UIDs expunged above since (not read when since is 0),
 * in UID order.  Arrays are heap (free with store_states_free / free()).
 * 1 ok, 0 no such mailbox, -1 error. */
int store_mailbox_sync(struct store *st, int64_t mailbox_id, uint64_t since,
		       struct mailbox_info *mb_r, struct msg_state **states_r, size_t *nstates_r,
		       uint32_t **vanished_r, size_t *nvanished_r);
void store_states_free(struct msg_state *v, size_t n);
/* Index of uid in v[0..n) sorted by UID (binary search), or where it would
 * go; *found_r says whether it is there. */
size_t store_states_find(const struct msg_state *v, size_t n, uint32_t uid, bool *found_r);

/* Size, internal date and body path of each UID (out[i].uid = 0 when that
 * UID is gone).  0 ok, -1 error. */
int store_messages_get(struct store *st, int64_t mailbox_id, const uint32_t *uids, size_t n,
		       struct msg_entry *out);

/* STORE: how flags and keywords change. */
enum store_flag_mode { STORE_FLAGS_SET, STORE_FLAGS_ADD, STORE_FLAGS_REMOVE };
struct store_flag_change {
	enum store_flag_mode mode;
	uint32_t flags;             /* FLAG_* */
	const char *const *keywords;
	size_t nkeywords;
	bool conditional;           /* CONDSTORE UNCHANGEDSINCE given */
	uint64_t unchangedsince;
	/* out: the new state of every message that changed (heap, free with
	 * store_states_free; NULL when none), and the mailbox's HIGHESTMODSEQ
	 * before the call -- a session whose view is at that MODSEQ can apply
	 * the change to itself without reading the mailbox again. */
	struct msg_state *changed;
	size_t nchanged;
	uint64_t modseq_before;
};
/* Apply chg to each UID that exists; one new MODSEQ for every message that
 * changed.  With unchangedsince, a message whose MODSEQ is above it is left
 * alone and listed in *modified_r (heap, may be NULL when none).  Keywords
 * compare ASCII case-insensitively; at most STORE_KEYWORDS_MAX per message
 * (more: -1 with "too many keywords"). */
#define STORE_KEYWORDS_MAX 64
#define STORE_KEYWORD_LEN_MAX 128
int store_txn_store(struct store_txn *t, int64_t mailbox_id, const uint32_t *uids, size_t n,
		    struct store_flag_change *chg, uint32_t **modified_r, size_t *nmodified_r,
		    char **error_r);
/* COPY: append each existing UID of src (in the given order) to dst with its
 * flags, keywords and internal date; dst_uids_r[i] gets the new UID or 0
 * when uids[i] was gone.  The body file is shared. */
int store_txn_copy(struct store_txn *t, int64_t src_mailbox, int64_t dst_mailbox,
		   const uint32_t *uids, size_t n, uint32_t *dst_uids_r, char **error_r);
/* Mailbox id by name without counting anything: 1 found, 0 not, -1 error. */
int store_mailbox_id(struct store *st, int64_t account_id, const char *name, int64_t *id_r,
		     bool *noselect_r);
/* STATUS counts of a mailbox (one read). 0 ok, -1 error. */
struct store_status {
	int64_t messages, unseen, deleted, size;
};
int store_mailbox_status(struct store *st, int64_t mailbox_id, struct store_status *r);
/* Full-text index (IMAP SEARCH): text is the body's searchable text
 * (mail_text_extract), complete.  In the delivery's transaction. */
int store_txn_index_text(struct store_txn *t, int64_t body_id, const char *text, size_t len,
			 char **error_r);
/* UIDs of mailbox_id (ascending, heap) that may contain every term: the
 * indexed messages whose text has them all, and every message that is not
 * indexed (messages.indexed 0: not yet -- the writer catches up when idle;
 * 2: cannot be).  Terms shorter than three characters cannot be looked up and
 * are ignored; 0 means no term could be used (scan everything), 1 ok,
 * -1 error. */
int store_search_candidates(struct store *st, int64_t mailbox_id, const char *const *terms,
			    size_t nterms, uint32_t **uids_r, size_t *n_r);
/* Bodies without an index entry (messages.indexed = 0), oldest first, at
 * most max; and marking one that cannot be indexed (indexed = 2). */
struct store_unindexed {
	int64_t id;
	int64_t size;
	char path[64];
};
int store_unindexed(struct store *st, struct store_unindexed *out, size_t max, size_t *n_r);
int store_txn_mark_unindexable(struct store_txn *t, int64_t body_id, char **error_r);
/* Keyword list helpers: does list (space-separated) hold kw (case-insensitive)? */
bool store_keywords_has(const char *list, const char *kw, size_t kwlen);

/* --- the outbound queue (store_queue.c) ---
 * A message waiting to leave is a `queue` row holding one reference to
 * its body file, and a `queue_rcpt` row per recipient not yet done.  The
 * daemon's queue manager reads what is due, attempts it, and records the
 * outcome with store_txn_queue_update in the writer's group commit. */
enum {
	QUEUE_SMTPUTF8 = 1 << 0,    /* MAIL FROM had SMTPUTF8 */
	QUEUE_8BITMIME = 1 << 1,    /* BODY=8BITMIME */
};
/* DSN (RFC 3461) NOTIFY, as a bit set; 0 = not given (failures and delays). */
enum {
	DSN_NOTIFY_SUCCESS = 1 << 0,
	DSN_NOTIFY_FAILURE = 1 << 1,
	DSN_NOTIFY_DELAY = 1 << 2,
	DSN_NOTIFY_NEVER = 1 << 3,
};
enum { DSN_RET_DEFAULT = 0, DSN_RET_FULL = 1, DSN_RET_HDRS = 2 };

struct queue_rcpt_in {
	const char *addr;           /* "y@b.example" */
	const char *orcpt;          /* ORCPT as given ("rfc822;y@b.example"), or NULL */
	unsigned notify;            /* DSN_NOTIFY_* */
	bool expand;                /* a local list: send on to its members */
};
struct queue_msg_in {
	const char *qid;
	const char *sender;         /* "" for <> */
	int64_t skip;               /* leading bytes of the body file not sent (our Return-Path) */
	unsigned flags;             /* QUEUE_* */
	const char *envid;          /* DSN ENVID or NULL */
	int ret;                    /* DSN_RET_* */
	const struct queue_rcpt_in *rcpts;
	size_t nrcpts;
	int64_t next_try;           /* first attempt; 0 = now */
};
/* Inside the transaction that adds body_id (a delivery's extra step). */
int store_txn_queue_add(struct store_txn *t, int64_t body_id, const struct queue_msg_in *m,
			int64_t now, char **error_r);

/* One recipient waiting, with its message. */
struct queue_entry {
	int64_t rcpt_id, queue_id, body_id;
	char qid[17];
	char path[64];
	int64_t skip, size, created;
	unsigned flags;
	int ret;
	char *envid, *sender, *addr, *domain, *orcpt, *last_reply;
	unsigned notify;
	int attempts;
	int64_t next_try, last_try;
	bool warned, hold;
	bool expand;                /* a local list (queue_rcpt_in.expand) */
};
void queue_entries_free(struct queue_entry *v, size_t n);
/* Recipients due at now (not held), at most max, oldest first; *next_r the
 * earliest later next_try (0 = none). */
int store_queue_due(struct store *st, int64_t now, size_t max, struct queue_entry **v_r,
		    size_t *n_r, int64_t *next_r, char **error_r);
/* Everything queued (qid NULL) or one message's recipients. */
int store_queue_list(struct store *st, const char *qid, struct queue_entry **v_r, size_t *n_r,
		     char **error_r);

struct queue_update {
	int64_t rcpt_id;
	bool done;                  /* delivered or bounced: the row goes */
	bool attempted;             /* counts as an attempt (attempts + 1, last_try = now) */
	bool warned;                /* a delay warning was sent */
	int64_t next_try;
	const char *last_reply;     /* NULL keeps the last one */
};
/* Record outcomes; body files whose last reference went are returned in
 * *unlink_r for store_unlink_bodies after the commit. */
int store_txn_queue_update(struct store_txn *t, const struct queue_update *u, size_t n,
			   int64_t now, char ***unlink_r, size_t *nunlink_r, char **error_r);
/* yubin queue: qid NULL means every message.  The count changed, or -1. */
int store_queue_hold(struct store *st, const char *qid, bool hold, char **error_r);
int store_queue_retry(struct store *st, const char *qid, int64_t now, char **error_r);
int store_queue_delete(struct store *st, const char *qid, char **error_r);

/* Per-domain routes (yubin route): mail for domain goes to host:port,
 * looking up host's MX first when mx is set ("host:port"), else only its
 * addresses ("[host]:port"). */
/* MTA-STS policies (mta/sts.c): the policy text as fetched, its id, and
 * when it expires (fetch time + max_age). */
struct store_sts {
	char domain[256];
	char id[40];
	int64_t expires;
	char *policy;
};
/* Inside a writer transaction: insert or replace one. */
int store_txn_sts_put(struct store_txn *t, const char *domain, const char *id, int64_t expires,
		      const char *policy, char **error_r);
/* The policies not expired at now (expired ones are deleted). */
int store_sts_list(struct store *st, int64_t now, struct store_sts **v_r, size_t *n_r,
		   char **error_r);
void store_sts_free(struct store_sts *v, size_t n);

struct store_route {
	char domain[256];
	char host[256];
	int port;
	bool mx;
};
int store_route_set(struct store *st, const char *domain, const char *host, int port, bool mx,
		    char **error_r);
/* The number of routes removed (0 or 1), or -1. */
int store_route_del(struct store *st, const char *domain, char **error_r);
int store_route_list(struct store *st, struct store_route **v_r, size_t *n_r, char **error_r);

#endif
