/* store_jmap_set.h - what JMAP's writes (Email/set, Email/import) need of
 * the store beyond store.h's transaction calls: the copies of a body read
 * inside the write transaction, checks of a target mailbox and of the
 * quota there, and new body files written by the caller's pool job under
 * the store's naming and fsync rules.
 *
 * A new body file is msg/YYYYMMDD/QUEUEID like the writer's (so
 * store_recover removes it if a crash comes before the transaction that
 * names it commits): created O_EXCL, written, fsynced, its directory
 * fsynced (and msg/ when the day directory is new) before the function
 * returns; the caller registers it with store_txn_add_body and unlinks it
 * (store_jmapset_discard) when that transaction does not commit.
 *
 * Blocking, like everything in the store: pool threads only. */
#ifndef YUBIN_STORE_STORE_JMAP_SET_H
#define YUBIN_STORE_STORE_JMAP_SET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct store;
struct store_txn;

/* One copy of a body in one of the account's mailboxes. */
struct store_jmapset_row {
	int64_t mailbox_id;
	uint32_t uid;
	uint32_t flags;             /* FLAG_* */
};

/* Every copy of body_id in the account's mailboxes, in (mailbox, uid)
 * order, read inside t, and the body's size: 0 with *v_r (heap, free())
 * and *n_r (0: not in this account), -1 with *error_r. */
int store_jmapset_rows(struct store_txn *t, int64_t account_id, int64_t body_id,
		       struct store_jmapset_row **v_r, size_t *n_r, int64_t *size_r,
		       char **error_r);

/* mailbox_id is one of the account's mailboxes and selectable: 1 yes,
 * 0 no, -1 error. */
int store_jmapset_mailbox_ok(struct store_txn *t, int64_t account_id, int64_t mailbox_id,
			     char **error_r);

/* Adding add bytes keeps the account within its quota (or it has none):
 * 1 yes, 0 over, -1 error. */
int store_jmapset_quota_fits(struct store_txn *t, int64_t account_id, int64_t add,
			     char **error_r);

/* The account's Email state as t sees it, its own changes included:
 * accounts.jmap_email, the change-log position of its last email change
 * (store_jmap_state's email).  0 / -1. */
int store_jmapset_email_state(struct store_txn *t, int64_t account_id, int64_t *state_r,
			      char **error_r);

/* Write data[0..len) as a new body file, durably; its path relative to
 * the data directory in relpath ("msg/YYYYMMDD/QUEUEID").  0 / -1. */
int store_jmapset_write_body(struct store *st, const char *data, size_t len,
			     char relpath[64], char **error_r);
/* Unlink a body file that no committed transaction names. */
void store_jmapset_discard(struct store *st, const char *relpath);

#endif
