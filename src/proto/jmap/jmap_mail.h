/* jmap_mail.h - JMAP Mail (RFC 8621) methods on emails: Email/query,
 * Email/get, Thread/get, and the blobs of the download resource.
 *
 * Ids: an email is one message body as the account sees it, "e<body id>"
 * (messages.id: the same in every mailbox holding a copy, so a move keeps
 * it); its thread is "t<body id of the thread's first email>" (schema 13,
 * by Message-ID/In-Reply-To/References, jmap_thread_sync);
 * its blob is "b<body id>", a part of it "b<body id>p<IMAP section with '_'
 * for '.'>".  States are positions in the store's change log (schema 12:
 * triggers on mailbox_messages, mailboxes and subscriptions), which IMAP
 * and JMAP writes both fill, so they advance together.
 *
 * Email/query: the conditions on mailboxes, dates, sizes and keywords and
 * the sorts on receivedAt and size are SQL on indexes (store_jmap_query).
 * text/from/to/cc/bcc/subject/body take the FTS5 candidates (every message
 * when the value is under three characters) and check each one's file;
 * sentAt/from/subject sort on keys kept with the threads (SQL).  Of
 * the FilterOperators only AND of conditions on distinct properties.
 *
 * Pool thread only: every function reads the store and message files. */
#ifndef YUBIN_PROTO_JMAP_MAIL_H
#define YUBIN_PROTO_JMAP_MAIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "core/buf.h"

struct store;

/* What a request's methods changed, for the loop thread once the request
 * is done: every mailbox id is told to server_mailbox_changed (IMAP
 * sessions, IDLE, JMAP push), and queue_kick wakes the outbound queue
 * manager (server->queue_kick).  Pool thread: jmap_touched_add only. */
struct jmap_touched {
	int64_t *ids;
	size_t n, cap;
	bool queue_kick;
};
void jmap_touched_add(struct jmap_touched *t, int64_t mailbox_id);
void jmap_touched_free(struct jmap_touched *t);

struct jmap_mail_ctx {
	struct store *st;
	int64_t account_id;
	const char *acct;           /* "a<id>" */
	const char *address;        /* the account's address */
	size_t max_objects_in_get;
	struct jmap_touched *touched;
	/* The request's createdIds map ("#creation id" -> id; RFC 8620 5.3):
	 * /set methods add what they create, and resolve "#x" references. */
	json_t *created_ids;
};

/* A method: the response arguments, or NULL with *type_r (an RFC 8620
 * method-level error type) and *desc_r (static or NULL). */
typedef json_t *jmap_mail_method(const struct jmap_mail_ctx *c, json_t *args,
				 const char **type_r, const char **desc_r);
jmap_mail_method jmap_email_query, jmap_email_get, jmap_thread_get;
/* RFC 8620 5.2 / 5.6 over the change log. */
jmap_mail_method jmap_email_changes, jmap_thread_changes, jmap_email_query_changes;

/* Thread the account's emails that are not yet (store_jmap_unthreaded:
 * new since the last call): by Message-ID, In-Reply-To and References.
 * Run before reading threads.  0 / -1 (logged). */
int jmap_thread_sync(struct store *st, int64_t account_id);

/* "e<digits>" -> the body id. */
bool jmap_email_id_parse(const char *id, int64_t *body_id_r);

/* The Email (and Thread) state, and the Mailbox state, into out: the
 * account's position in the store's change log (store_jmap_state).  Read
 * a state before the data it goes with.  0 / -1. */
int jmap_mail_state(struct store *st, int64_t account_id, char *out, size_t outsz);
int jmap_mailbox_state(struct store *st, int64_t account_id, char *out, size_t outsz);

/* The bytes of blob blobid of the account into out (decoded from its
 * transfer encoding for a part).  1 found, 0 not found, -1 error or too
 * big for out->max. */
int jmap_blob_read(struct store *st, int64_t account_id, const char *blobid, struct buf *out);

/* The Email object of data[0..len) with every property, the header forms
 * of From, Subject, Date and References, and every body value: the pure
 * part of Email/get, for the fuzz target (no store, no file). */
json_t *jmap_email_from_data(const char *data, size_t len);

#endif
