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

#endif
