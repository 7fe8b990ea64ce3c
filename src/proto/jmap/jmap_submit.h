/* jmap_submit.h - JMAP submission (RFC 8621 sections 6 and 7): Identity/get,
 * Identity/changes, Identity/set, EmailSubmission/get, /changes, /query
 * and /set.
 *
 * Identities: one per address the account may send as -- the account's
 * own address and every alias naming it (store_own_addresses, the list the
 * SMTP submission port checks MAIL FROM and From against).  Id "i" + 16
 * hex digits of a hash of the lower-cased address, so an id stays when
 * aliases come and go; the state is a hash of the whole list.  Nothing
 * about them can be set (mayDelete false; Identity/set answers
 * "forbidden" for every create, update and destroy).
 *
 * EmailSubmission/set create queues the Email ("e<body id>": its stored
 * message) as port 587 would: the From (and Sender) must hold one of the
 * account's addresses (user+tag@ with recipient_delimiter counts, as in
 * SMTP) else forbiddenFrom; the envelope's mailFrom likewise else
 * forbiddenMailFrom; without an envelope mailFrom is the identity's address
 * and rcptTo every address of To, Cc and Bcc.  The header gets the
 * submission fixes (submit.h: Date and Message-ID when missing, every Bcc
 * field dropped), then a new body file -- Return-Path, Received (from the
 * client's address, with JMAP), the message -- is written and fsynced
 * (store_jmapset_write_body), and one store transaction adds it to the INBOX of
 * every local recipient (store_expand_rcpt: accounts, aliases, user+tag,
 * catch-alls) and queues it for the remote ones and local lists
 * (store_txn_queue_add; the queue manager is kicked once the request is
 * done).  Success is answered only after that commit.  Limits: at most
 * JMAP_SUBMIT_RCPT_MAX recipients (and smtp_max_recipients when lower):
 * tooManyRecipients; none: noRecipients; message_size_limit: tooLarge.
 * Mail is never held: undoStatus is "final" at once, and an update or
 * destroy of a submission is refused.  The submission id is "s" + the
 * queue id.  onSuccessUpdateEmail / onSuccessDestroyEmail are applied after
 * the creates through Email/set (jmap_set.h), whose answer follows as the
 * implicit Email/set response.
 *
 * EmailSubmission/get reads the outbound queue: a submission is known
 * while some of its recipients wait there (a message whose envelope sender
 * is one of the account's addresses); once everything is delivered its id
 * is notFound.  /changes answers cannotCalculateChanges unless nothing
 * changed; /query lists what /get knows, newest first, without filters.
 *
 * Pool thread only: everything reads or writes the store. */
#ifndef YUBIN_PROTO_JMAP_SUBMIT_H
#define YUBIN_PROTO_JMAP_SUBMIT_H

#include <stdint.h>

#include <jansson.h>

#include "proto/jmap/jmap_mail.h"

#define JMAP_SUBMIT_RCPT_MAX 1000

/* What EmailSubmission/set needs of the daemon's configuration. */
struct jmap_submit_env {
	const char *hostname;       /* Received "by", Message-ID right side */
	const char *peer;           /* the client's IP address (Received "from"), or "" */
	const char *postmaster;     /* account for postmaster@ of our domains, or "" */
	int64_t size_limit;         /* message_size_limit */
	int64_t max_recipients;     /* smtp_max_recipients, 0 = none */
	char delim;                 /* recipient_delimiter[0], 0 = off */
};

jmap_mail_method jmap_identity_get, jmap_identity_changes, jmap_identity_set;
jmap_mail_method jmap_submission_get, jmap_submission_changes, jmap_submission_query;

/* EmailSubmission/set.  *implicit_r gets the implicit response that
 * follows it (onSuccessUpdateEmail / onSuccessDestroyEmail) as [name,
 * arguments] -- ["Email/set", {...}] or ["error", {type...}] -- or NULL
 * when there is none. */
json_t *jmap_submission_set(const struct jmap_mail_ctx *c, const struct jmap_submit_env *env,
			    json_t *args, json_t **implicit_r, const char **type_r,
			    const char **desc_r);

#endif
