/* imap_cache.h - the daemon's in-memory copy of mailbox message states
 * (UID, flags, keywords, MODSEQ), so that SELECT does not read every row
 * of a large mailbox from SQLite.
 *
 * One entry per mailbox, on the loop thread.  An entry watches its mailbox
 * (server_watch): a change only marks it stale; the next snapshot brings it
 * up to date with the rows changed since its MODSEQ and the UIDs expunged
 * since (store_mailbox_sync), one reader job at a time, and hands every
 * waiting session its own copy.  Entries not used for a while go first when
 * the total number of cached messages passes IMAP_CACHE_MESSAGES_MAX. */
#ifndef YUBIN_PROTO_IMAP_CACHE_H
#define YUBIN_PROTO_IMAP_CACHE_H

#include <stddef.h>
#include <stdint.h>

#include "store/store.h"

struct server;
struct conn;

#define IMAP_CACHE_MESSAGES_MAX (4u * 1024 * 1024)

/* What a snapshot gives: a private copy, owned by the receiver (free the
 * states with store_states_free). */
struct imap_snapshot {
	uint32_t uidvalidity, uidnext;
	uint64_t highestmodseq;
	struct msg_state *states;
	size_t n;
};

/* done(arg, rc, snap): rc 1 ok (snap filled), 0 the mailbox is gone, -1
 * store error.  Runs on the loop thread, possibly before imap_cache_get
 * returns.  c (may be NULL) is held until done has run; done checks
 * conn_is_closed itself. */
void imap_cache_get(struct server *srv, struct conn *c, int64_t mailbox_id,
		    void (*done)(void *arg, int rc, struct imap_snapshot *snap), void *arg);
/* Free every entry (daemon exit, after the loop has finished its jobs). */
void imap_cache_free(struct server *srv);

#endif
