/* mbox.h - one interface to the mail a client command works on: the local
 * Maildir (mbox_maildir.c) or the account's IMAP server (mbox_imap.c).
 *
 * The commands (yubin ls, read, save, mv, rm, flag, search, folders,
 * reply, forward) are written once against these operations; which store
 * they act on is decided by the account (IMAP incoming server: remote;
 * POP3 or none, or --maildir: local).
 *
 * Folders.  Names are UTF-8 with '/' as the hierarchy separator whatever
 * the server uses; "INBOX" (any case) is the inbox; NULL means INBOX.  In a
 * Maildir, INBOX is the Maildir itself and folder "A/b" is the Maildir++
 * subfolder DIR/.A.b (the layout yubin fetch writes for IMAP folders and
 * Dovecot uses).
 *
 * Message numbers.  N is 1-based, as printed by ls of the same folder:
 *   - Maildir: new/ and cur/ sorted by the Date field (file mtime when there
 *     is none), oldest first, file name as the tie-break;
 *   - IMAP: the message sequence number (arrival order).
 * Numbers are only stable while nobody else changes the folder; a backend
 * that finds a number out of range says "no message N (M in FOLDER)".
 * Operations on several messages take all their numbers first and resolve
 * them against one listing, so "rm 3 4" removes the 3rd and 4th messages
 * of the listing, not the 3rd twice.
 *
 * Errors: every operation returns 0, or -1 with err[errsz] set to a
 * sentence for the user (NUL-terminated): "no message 9 (4 in INBOX)",
 * "no folder \"Archive\" (yubin folders lists them)", "IMAP server said: NO
 * [TRYCREATE] ...".  *temp_r (when the pointer is not NULL) is set true
 * when the failure is worth retrying later (network, a server's NO for a
 * busy mailbox), false when it is not (no such message, bad folder): the
 * commands exit 75 (EX_TEMPFAIL) for the first, 1 for the second. */
#ifndef YUBIN_CLIENT_MBOX_H
#define YUBIN_CLIENT_MBOX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct account;

/* Flags (IMAP system flags; Maildir info letters S R F T D). */
#define MBOX_SEEN     0x01u   /* \Seen      S */
#define MBOX_ANSWERED 0x02u   /* \Answered  R */
#define MBOX_FLAGGED  0x04u   /* \Flagged   F */
#define MBOX_DELETED  0x08u   /* \Deleted   T */
#define MBOX_DRAFT    0x10u   /* \Draft     D */
#define MBOX_RECENT   0x20u   /* \Recent (IMAP), or in new/ (Maildir); read only */

/* Most messages one listing holds, and numbers one command takes. */
#define MBOX_LIST_MAX 1000000
#define MBOX_ARGS_MAX 10000
/* Largest message read whole (read, save, reply, forward). */
#define MBOX_MSG_MAX (100u * 1024 * 1024)

struct mbox_msg {
	uint32_t n;          /* its number in the listing, 1.. */
	uint32_t uid;        /* IMAP UID; 0 for a Maildir */
	int64_t date;        /* Date field (else arrival / mtime), Unix time */
	int64_t size;        /* bytes (RFC822.SIZE, or the file's size) */
	unsigned flags;      /* MBOX_* */
	char *from;          /* decoded display form ("Name <addr>"), UTF-8, no control
			      * characters; "" when missing; heap */
	char *to;            /* the same for To */
	char *subject;       /* decoded, as from */
	char *message_id;    /* "<...>" as written, or "" */
};

struct mbox_folder {
	char *name;          /* UTF-8, '/' separated; heap */
	char special[16];    /* "", "sent", "trash", "drafts", "junk", "archive" */
	int64_t total;       /* messages; -1 when unknown */
	int64_t unseen;      /* without MBOX_SEEN; -1 when unknown */
};

/* Search criteria: every set field must match (AND); strings are UTF-8
 * substrings, case-insensitive.  Dates are Unix times at day precision
 * (IMAP SINCE/BEFORE: the message's Date field's day). */
struct mbox_query {
	const char *from, *to, *subject, *body; /* NULL: any */
	const char *text;          /* headers or body */
	int64_t since, before;     /* 0: any; since inclusive, before exclusive */
	unsigned flags_set;        /* MBOX_* all of which must be set */
	unsigned flags_clear;      /* MBOX_* all of which must be clear */
};

struct mbox;

struct mbox_ops {
	/* Messages of folder, *v_r (heap, *n_r entries, numbers 1..*n_r in
	 * order); free with mbox_msgs_free. */
	int (*list)(struct mbox *mb, const char *folder, struct mbox_msg **v_r, size_t *n_r,
		    bool *temp_r, char *err, size_t errsz);
	/* The whole message N of folder as stored (RFC 5322 bytes; line ends as
	 * stored: LF in a Maildir, CR LF from IMAP), heap in *data_r.  peek
	 * false sets \Seen (IMAP BODY[]; Maildir: moved to cur/ with S). */
	int (*fetch)(struct mbox *mb, const char *folder, uint32_t n, bool peek, char **data_r,
		     size_t *len_r, bool *temp_r, char *err, size_t errsz);
	/* Add then remove flags on messages ns[0..count); keyword (may be
	 * NULL) is an IMAP keyword added (add_kw) or removed; a Maildir has
	 * no keywords (an error when one is given). */
	int (*set_flags)(struct mbox *mb, const char *folder, const uint32_t *ns, size_t count,
			 unsigned add, unsigned remove, const char *keyword, bool add_kw,
			 bool *temp_r, char *err, size_t errsz);
	/* Move messages to folder dest (made neither here nor there: a missing
	 * dest is an error naming it). */
	int (*move)(struct mbox *mb, const char *folder, const uint32_t *ns, size_t count,
		    const char *dest, bool *temp_r, char *err, size_t errsz);
	/* Remove: moved to the Trash folder (special-use \Trash, else a folder
	 * named "Trash", made when missing) unless folder is that Trash or
	 * expunge is true: then deleted for good. */
	int (*remove)(struct mbox *mb, const char *folder, const uint32_t *ns, size_t count,
		      bool expunge, bool *temp_r, char *err, size_t errsz);
	/* Numbers of the messages of folder matching q, ascending, heap. */
	int (*search)(struct mbox *mb, const char *folder, const struct mbox_query *q,
		      uint32_t **ns_r, size_t *n_r, bool *temp_r, char *err, size_t errsz);
	/* All folders (INBOX first, then by name), with counts. */
	int (*folders)(struct mbox *mb, struct mbox_folder **v_r, size_t *n_r, bool *temp_r,
		       char *err, size_t errsz);
	/* Store data[0..len) (a whole message) in folder with flags (a Sent
	 * copy: MBOX_SEEN); special, when not NULL ("sent", "drafts"), picks
	 * the folder by its special use instead, and makes one named like it
	 * ("Sent", "Drafts") when there is none. */
	int (*append)(struct mbox *mb, const char *folder, const char *special, const char *data,
		      size_t len, unsigned flags, bool *temp_r, char *err, size_t errsz);
	/* End the session (IMAP LOGOUT) and free mb. */
	void (*close)(struct mbox *mb);
};

struct mbox {
	const struct mbox_ops *ops;
	const char *kind;    /* "maildir" or "imap", for messages */
	/* backend state follows in the backend's own struct */
};

/* Open the Maildir dir (made when missing only by append). */
struct mbox *mbox_maildir_open(const char *dir, char *err, size_t errsz);
/* Log in to a's IMAP incoming server (password from account_password,
 * asked once).  trace: NULL, or a stream for "C:"/"S:" lines. */
#include <stdio.h>
struct mbox *mbox_imap_open(const struct account *a, FILE *trace, bool *temp_r, char *err,
			    size_t errsz);
/* The same with the password already known (yubin send asked it once for
 * SMTP and IMAP alike); it is copied. */
struct mbox *mbox_imap_open_password(const struct account *a, const char *password,
				     FILE *trace, bool *temp_r, char *err, size_t errsz);

void mbox_msgs_free(struct mbox_msg *v, size_t n);
void mbox_folders_free(struct mbox_folder *v, size_t n);
/* An RFC 5322 date-time (the obsolete forms too: no day name, 2- and
 * 3-digit years, named zones; and IMAP's INTERNALDATE "17-Jul-1996
 * 02:44:25 -0700") into Unix time *t_r and the zone's offset in seconds
 * *off_r.  false when it does not parse (a bad day, month, year or time). */
bool mbox_parse_date(const char *s, int64_t *t_r, int *off_r);
/* The flag letters ls shows, in this order: N (recent/new), S R F T D. */
void mbox_flags_letters(unsigned flags, char out[8]);

#endif
