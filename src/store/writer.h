/* writer.h - the daemon's asynchronous path into the store, with group
 * commit.
 *
 * The event loop never writes to the store itself.  store_deliver() writes
 * and fsyncs the body file on a libuv worker thread, then hands the delivery
 * to the writer thread, which takes every operation that is waiting, fsyncs
 * the directories of their body files once, applies them in one SQLite
 * transaction (each under its own savepoint) and commits once.  Completion
 * callbacks run on the loop thread after the commit is durable.  Concurrent
 * deliveries therefore share fsyncs and commits.
 *
 * Callers keep their struct alive until done() runs. */
#ifndef YUBIN_STORE_WRITER_H
#define YUBIN_STORE_WRITER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

struct store;
struct store_txn;

/* Full-text index: messages up to this size are indexed at delivery, when
 * their searchable text fits in STORE_INDEX_TEXT_MAX. */
#define STORE_INDEX_MESSAGE_MAX (32u * 1024 * 1024)
#define STORE_INDEX_TEXT_MAX (4u * 1024 * 1024)
/* Text waiting for the index after its delivery committed (it is added when
 * no delivery or store operation waits); beyond this it is dropped. */
#define STORE_INDEX_QUEUE_MAX (64u * 1024 * 1024)
/* Past this much waiting text, a batch of it is indexed between two
 * delivery batches even when more deliveries wait. */
#define STORE_INDEX_LAG_MAX (2u * 1024 * 1024)
struct store_writer;

/* A delivery of one message to one or more mailboxes. */
struct delivery {
	/* in */
	char qid[17];               /* queue id; also the body file name */
	/* Optional: the caller has already written the first prefilled_len
	 * bytes of the message (head included) into the spare file
	 * d->relpath, open as fd (from store_writer_new_qid with d->spare).
	 * store_deliver appends data, syncs and closes fd, whatever happens. */
	bool prefilled;
	int fd;
	int64_t prefilled_len;
	const char *head;           /* optional: written before data (trace headers) */
	size_t head_len;
	const char *data;           /* the message as stored after head (CRLF lines) */
	size_t len;
	const int64_t *mailbox_ids;
	size_t nmailboxes;
	int64_t internaldate;       /* unix seconds */
	uint32_t flags;             /* FLAG_* set in every mailbox (IMAP APPEND); 0 for mail */
	const char *keywords;       /* space-separated keywords (APPEND), or NULL */
	void (*done)(struct delivery *d);
	void *arg;
	/* Optional order (IMAP MULTIAPPEND): when order_prev is set, this
	 * delivery reaches the writer -- and gets its UIDs -- only after
	 * order_prev has (or has failed).  The caller links both ways. */
	struct delivery *order_prev, *order_next;
	/* Optional: more work in the delivery's own savepoint once the body is
	 * added as body_id -- queueing remote recipients, or recording the
	 * outcome a bounce reports -- on the writer thread.  Body files freed
	 * by it go in *unlink_r (heap array of heap paths), unlinked after
	 * the commit.  -1 fails the whole delivery. */
	int (*extra)(struct delivery *d, struct store_txn *t, int64_t body_id, char ***unlink_r,
		     size_t *nunlink_r, char **error_r);
	void *extra_arg;
	/* out, valid in done() */
	int status;                 /* 0 durable, -1 failed */
	char *error;                /* heap, when status == -1; the caller frees it */
	uint32_t *uids;             /* heap, one UID per mailbox; the caller frees it */
	uint64_t modseq_before;     /* HIGHESTMODSEQ of mailbox_ids[0] before this delivery */
	/* internal */
	int order_state;            /* 0 in flight, 1 written and waiting, 2 released */
	bool spare;                 /* qid names a body file made in advance */
	char relpath[64];
	struct store_writer *w;
	uv_work_t work;             /* work.data is the writer's */
	struct delivery *next;
};

/* A generic write: apply() runs on the writer thread inside the batch
 * transaction (under a savepoint); after_commit() (optional) runs on the
 * writer thread after the commit (e.g. unlinking files); done() runs on the
 * loop thread. */
struct store_op {
	int (*apply)(struct store_op *op, struct store_txn *t, char **error_r);
	void (*after_commit)(struct store_op *op, struct store *st);
	void (*done)(struct store_op *op);
	void *arg;
	int status;                 /* 0 ok (durable), -1 failed */
	char *error;                /* heap on failure; the caller frees it */
	/* internal */
	struct delivery *delivery;
	struct store_op *next;
};

struct store_writer *store_writer_start(uv_loop_t *loop, struct store *st, size_t batch_max);
/* Finish everything queued, join the thread, free. NULL-safe.  The loop
 * must run once more afterwards: that closes the async handle and completes
 * deliveries whose libuv callback had not run yet. */
void store_writer_stop(struct store_writer **w);
/* Give d a fresh queue id (d->qid).  When the writer has a body file made
 * in advance -- created with its directory entry already fsynced, in
 * batches off the loop -- the id is that file's name, and store_deliver
 * only writes and fdatasyncs it: no directory change and no directory fsync
 * on the delivery's path.  Otherwise the id is new and store_deliver creates
 * the file.  Loop thread; never blocks (a mutex held for microseconds).
 * Callers that set d->qid themselves must leave d->spare false. */
void store_writer_new_qid(struct store_writer *w, struct delivery *d);
void store_deliver(struct store_writer *w, struct delivery *d);
void store_submit(struct store_writer *w, struct store_op *op);
/* Counters for logs and bench: operations committed and commits done. */
void store_writer_stats(struct store_writer *w, uint64_t *ops_r, uint64_t *commits_r);

#endif
