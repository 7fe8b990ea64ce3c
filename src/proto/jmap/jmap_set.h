/* jmap_set.h - the JMAP writes: blob uploads (RFC 8620 6.1), Email/set,
 * Email/import (RFC 8621 4.6, 4.8), Mailbox/set (2.5) and
 * SearchSnippet/get (5.1).
 *
 * Uploads: DATA_DIR/uploads/a<account id>/<32 hex> (mode 0600; written
 * under a temporary name, fsynced, renamed, the directory fsynced), blob
 * id "u<32 hex>".  They expire after JMAP_UPLOAD_TTL: expired files go
 * when the account uploads again, and every account's at the first upload
 * after start-up; an expired upload is not found.  An account holds at
 * most JMAP_UPLOAD_MAX_FILES pending uploads and JMAP_UPLOAD_MAX_BYTES.
 *
 * Email/set and Email/import write new messages the way the store's
 * writer does (store_jmapset_write_body: file fsynced before the
 * transaction that names it), then apply every create, update and
 * destroy of the call in one write transaction, each under a savepoint,
 * with store_txn_append_kw / store_txn_store / store_txn_copy /
 * store_txn_expunge, so the change log and IMAP see them like IMAP's own.
 * A move is a copy plus an expunge: the body, hence the Email id, stays.
 * Keywords: $seen $flagged $answered $draft are the IMAP system flags,
 * any other keyword an IMAP keyword (IMAP's \Deleted, no JMAP keyword, is
 * kept by a "keywords" replace).  Created drafts are composed with
 * mail/compose (Bcc kept as a header of the stored message).
 *
 * Mailbox/set: names are full paths ("Parent/child"); create, rename and
 * delete are store_mailbox_*'s own transactions, one per object.
 *
 * Pool thread only (every function reads or writes the store). */
#ifndef YUBIN_PROTO_JMAP_SET_H
#define YUBIN_PROTO_JMAP_SET_H

#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"
#include "proto/jmap/jmap_mail.h"

struct store;

#define JMAP_UPLOAD_TTL (24 * 3600)                     /* seconds */
#define JMAP_UPLOAD_MAX_FILES 1000                      /* pending, per account */
#define JMAP_UPLOAD_MAX_BYTES (1024LL * 1024 * 1024)    /* pending, per account */
#define JMAP_UPLOAD_ID_LEN 33                           /* "u" + 32 hex */

/* Store data[0..len) as a new upload of the account: 0 with blobid_r
 * ("u<32 hex>"), 1 refused (too many pending uploads: *error_r says why,
 * for the client), -1 error (*error_r for the log).  *error_r is heap. */
int jmap_upload_write(struct store *st, int64_t account_id, const void *data, size_t len,
		      char blobid_r[JMAP_UPLOAD_ID_LEN + 1], char **error_r);

/* The bytes of upload blobid of the account into out (the contract of
 * jmap_blob_read): 1 found, 0 not found (or expired), -1 error or too big
 * for out->max. */
int jmap_upload_read(struct store *st, int64_t account_id, const char *blobid, struct buf *out);

jmap_mail_method jmap_email_set, jmap_email_import, jmap_mailbox_set, jmap_searchsnippet_get;

#endif
