/* writer.c - group commit: one thread applies every waiting operation in one
 * SQLite transaction.  See writer.h.
 *
 * Life of a delivery:
 *   loop thread   store_deliver: wrap it in a private op, uv_queue_work
 *   worker        write + fsync the body file, then queue the op for the writer
 *   writer        fsync day directories, BEGIN, SAVEPOINT per op, COMMIT
 *   loop thread   async callback: done(), once libuv has also finished with
 *                 d->work (its after_work callback ran), so that done() may
 *                 free the delivery.
 *
 * Shutdown: store_writer_stop() waits for deliveries still being written by
 * the thread pool (they reach the writer from the worker thread itself), so
 * nothing queued is lost.  Completions are then delivered from stop() itself,
 * except for deliveries whose after_work callback has not run yet: those
 * complete from after_work when the loop runs again.  The async handle is
 * closed by stop(), so the loop must run once more to finish closing it. */
#include "store/writer.h"

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "core/log.h"
#include "core/util.h"
#include "mail/text.h"
#include "store/store.h"

/* Body files made in advance.  Creating a file in a directory that 20
 * sessions write to at once, then fsyncing it, serialises them on the
 * directory (measured here: ~950 new files+fsyncs/s with 64 writers in one
 * directory, ~26,000 fdatasyncs/s of existing files).  So files are created
 * SPARE_BATCH at a time by one pool job, their directory fsynced once, and a
 * delivery takes one: its own fdatasync then makes the inode and the data
 * durable, and its directory entry already is. */
#define SPARE_BATCH 256
#define SPARE_LOW 128
#define SPARE_MAX (SPARE_BATCH + SPARE_LOW)

struct spare {
	char qid[17];
	char relpath[64];
};

struct refill {
	uv_work_t work;
	struct store_writer *w;
};

/* A delivery seen as an operation of the batch. */
struct dop {
	struct store_op op;         /* first: a store_op * is a struct dop * */
	struct delivery *d;
	uint32_t *uids;
	bool written;               /* body file on disk, queued for the writer */
	bool after_work_done;       /* libuv released d->work (loop thread) */
	bool completed;             /* the writer finished it (loop thread) */
	char *text;                 /* searchable text for the full-text index, or NULL */
	size_t text_len;
	int64_t body_id;            /* set by apply_delivery */
	char **unlink;              /* body files freed by d->extra */
	size_t nunlink;
};

/* Text waiting to go into the full-text index (writer thread only). */
struct index_item {
	int64_t body_id;
	char *text;
	size_t len;
	struct index_item *next;
};

struct store_writer {
	uv_loop_t *loop;
	struct store *st;
	size_t batch_max;
	uv_thread_t thread;
	uv_mutex_t mu;
	uv_cond_t cond;
	/* under mu */
	struct store_op *queue, **queue_tail;
	struct store_op *done, **done_tail;
	size_t writing;             /* deliveries and refills in the thread pool */
	struct spare *spares;       /* body files made in advance: a ring, oldest first */
	size_t spare_head, nspares;
	char durable_day[16];       /* msg/YYYYMMDD known to exist durably */
	bool trash_dirty;           /* writer thread: a batch expunged; empty trash next */
	bool refilling;
	bool stopping;
	uint64_t ops, commits;
	/* writer thread only: the full-text index is filled after the
	 * deliveries' commit, when no delivery waits (index_batch) */
	struct index_item *idx_head, **idx_tail;
	size_t idx_bytes;
	bool catchup_done;          /* no message left with messages.indexed = 0 */
	/* loop thread */
	uv_async_t *async;
};

/* ---- the loop side ---- */

static void finish_delivery(struct dop *dp)
{
	struct delivery *d = dp->d;

	d->status = dp->op.status;
	d->error = dp->op.error;
	d->uids = d->status == 0 ? dp->uids : NULL;
	if (d->status != 0)
		free(dp->uids);
	free(dp->text);
	free(dp);
	d->done(d);
}

/* Run done() for each op of a completion list (loop thread). */
static void run_completions(struct store_op *op)
{
	while (op) {
		struct store_op *next = op->next;

		op->next = NULL;
		if (op->delivery) {
			struct dop *dp = (struct dop *)op;

			dp->completed = true;
			if (dp->after_work_done)
				finish_delivery(dp);
		} else if (op->done) {
			op->done(op);
		}
		op = next;
	}
}

static struct store_op *take_completions(struct store_writer *w)
{
	struct store_op *list;

	uv_mutex_lock(&w->mu);
	list = w->done;
	w->done = NULL;
	w->done_tail = &w->done;
	uv_mutex_unlock(&w->mu);
	return list;
}

static void on_async(uv_async_t *a)
{
	struct store_writer *w = a->data;

	run_completions(take_completions(w));
}

static void on_async_closed(uv_handle_t *h)
{
	free(h);
}

/* ---- the thread pool side of a delivery ---- */

/* Create today's directory if needed (durably); its relative path in
 * reldir ("msg/YYYYMMDD").  0 ok, -1 with *error_r. */
static int day_dir(struct store_writer *w, char *reldir, size_t sz, char **error_r)
{
	const char *dir = store_data_dir(w->st);
	char day[16], path[4096], msgdir[4096];
	time_t now = time(NULL);
	struct tm tm;
	bool known;

	gmtime_r(&now, &tm);
	strftime(day, sizeof(day), "%Y%m%d", &tm);
	snprintf(reldir, sz, "msg/%s", day);
	uv_mutex_lock(&w->mu);
	known = strcmp(w->durable_day, day) == 0;
	uv_mutex_unlock(&w->mu);
	if (known)
		return 0;
	/* Whoever meets a new day first -- creator or a thread that lost the
	 * mkdir race -- fsyncs msg/ before using the directory, so no file
	 * is committed in a directory whose own entry is not durable yet. */
	snprintf(path, sizeof(path), "%s/msg/%s", dir, day);
	if (mkdir(path, 0750) < 0 && errno != EEXIST) {
		*error_r = xasprintf("store: cannot create %s: %s", path, strerror(errno));
		return -1;
	}
	snprintf(msgdir, sizeof(msgdir), "%s/msg", dir);
	if (fsync_dir(msgdir) < 0) {
		*error_r = xasprintf("store: cannot fsync %s: %s", msgdir, strerror(errno));
		return -1;
	}
	uv_mutex_lock(&w->mu);
	memcpy(w->durable_day, day, sizeof(w->durable_day));
	uv_mutex_unlock(&w->mu);
	return 0;
}

/* Write head + data into fd (path, for messages), sync it (fdatasync for a
 * spare whose directory entry is durable already, fsync for a new file),
 * close it.  On failure the file is removed.  0 ok, -1 with op.error. */
static int fill_body(struct dop *dp, int fd, const char *path, bool spare)
{
	struct delivery *d = dp->d;

	if (write_full(fd, d->head, d->head_len) < 0 || write_full(fd, d->data, d->len) < 0 ||
	    (spare ? fdatasync(fd) : fsync(fd)) < 0) {
		dp->op.error = xasprintf("%s: cannot write %s: %s", d->qid, path,
					 strerror(errno));
		close(fd);
		unlink(path);
		return -1;
	}
	if (close(fd) < 0) {
		dp->op.error = xasprintf("%s: cannot write %s: %s", d->qid, path,
					 strerror(errno));
		unlink(path);
		return -1;
	}
	return 0;
}

/* A delivery into a spare: the file and its directory entry exist. */
static int write_spare(struct store_writer *w, struct dop *dp)
{
	struct delivery *d = dp->d;
	char path[4096];

	store_msg_path(w->st, d->relpath, path, sizeof(path));
	if (d->prefilled)
		return fill_body(dp, d->fd, path, true);
	int fd = open(path, O_WRONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0) {
		dp->op.error = xasprintf("%s: cannot open %s: %s", d->qid, path, strerror(errno));
		return -1;
	}
	return fill_body(dp, fd, path, true);
}

static void refill_work(uv_work_t *req)
{
	struct refill *r = req->data;
	struct store_writer *w = r->w;
	struct spare made[SPARE_BATCH];
	size_t n = 0;
	char reldir[32], path[4096];
	char *err = NULL;

	if (day_dir(w, reldir, sizeof(reldir), &err) == 0) {
		for (size_t i = 0; i < SPARE_BATCH; i++) {
			struct spare *sp = &made[n];
			char qid[17];

			queue_id_new(qid);
			memcpy(sp->qid, qid, sizeof(qid));
			snprintf(sp->relpath, sizeof(sp->relpath), "%s/%s", reldir, qid);
			store_msg_path(w->st, sp->relpath, path, sizeof(path));
			int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0640);
			if (fd < 0) {
				if (errno == EEXIST)
					continue;
				err = xasprintf("store: cannot create %s: %s", path, strerror(errno));
				break;
			}
			close(fd);
			n++;
		}
		store_msg_path(w->st, reldir, path, sizeof(path));
		if (n > 0 && fsync_dir(path) < 0) {
			free(err);
			err = xasprintf("store: cannot fsync %s: %s", path, strerror(errno));
			for (size_t i = 0; i < n; i++) {
				store_msg_path(w->st, made[i].relpath, path, sizeof(path));
				unlink(path);
			}
			n = 0;
		}
	}
	if (err) {
		/* Deliveries fall back to creating their own files. */
		log_warn("%s", err);
		free(err);
	}
	uv_mutex_lock(&w->mu);
	for (size_t i = 0; i < n && w->nspares < SPARE_MAX; i++)
		w->spares[(w->spare_head + w->nspares++) % SPARE_MAX] = made[i];
	w->refilling = false;
	w->writing--;
	uv_cond_signal(&w->cond);
	uv_mutex_unlock(&w->mu);
}

/* Loop thread; must not touch the writer (stop may have freed it). */
static void refill_after(uv_work_t *req, int status)
{
	(void)status;
	free(req->data);
}

/* Write and fsync the body file; 0 ok, -1 with dp->op.error set. */
static int write_body(struct store_writer *w, struct dop *dp)
{
	struct delivery *d = dp->d;
	char reldir[32], path[4096];
	char *err = NULL;
	int fd;

	if (d->spare)
		return write_spare(w, dp);
	if (day_dir(w, reldir, sizeof(reldir), &err) < 0) {
		dp->op.error = xasprintf("%s: %s", d->qid, err);
		free(err);
		return -1;
	}
	for (int tries = 0;; tries++) {
		snprintf(d->relpath, sizeof(d->relpath), "%s/%s", reldir, d->qid);
		store_msg_path(w->st, d->relpath, path, sizeof(path));
		fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0640);
		if (fd >= 0 || errno != EEXIST || tries == 3)
			break;
		/* Another message has this id (a restart within the same
		 * second): take a new one; the caller reports d->qid after. */
		queue_id_new(d->qid);
	}
	if (fd < 0) {
		dp->op.error = xasprintf("%s: cannot create %s: %s", d->qid, path,
					 strerror(errno));
		return -1;
	}
	return fill_body(dp, fd, path, false);
}

/* Hand a written delivery to the writer thread, in the order the caller
 * linked (order_prev/order_next); a failed one only lets its successors
 * go.  Under w->mu. */
static void release_locked(struct store_writer *w, struct dop *dp)
{
	struct delivery *d = dp->d;

	if (d->order_prev && d->order_prev->order_state != 2) {
		d->order_state = 1;
		return;
	}
	for (;;) {
		if (dp->written) {
			dp->op.next = NULL;
			*w->queue_tail = &dp->op;
			w->queue_tail = &dp->op.next;
		}
		d->order_state = 2;
		d = d->order_next;
		if (!d || d->order_state != 1)
			break;
		dp = d->work.data;
	}
}

/* The searchable text of the message just written (pool thread).  A
 * message too large, or whose text does not fit, is left unindexed and
 * searched by reading its file. */
static void extract_text(struct store_writer *w, struct dop *dp)
{
	struct delivery *d = dp->d;
	size_t total = d->head_len + d->len + (d->prefilled ? (size_t)d->prefilled_len : 0);
	char *whole = NULL;
	struct buf text;

	/* Only queued for remote recipients: nobody searches it here. */
	if (total == 0 || total > STORE_INDEX_MESSAGE_MAX || d->nmailboxes == 0)
		return;
	whole = xmalloc(total + 1);
	if (d->prefilled) {
		char path[4096];
		store_msg_path(w->st, d->relpath, path, sizeof path);
		int fd = open(path, O_RDONLY | O_CLOEXEC);
		size_t got = 0;
		while (fd >= 0 && got < total) {
			ssize_t r = pread(fd, whole + got, total - got, (off_t)got);
			if (r < 0 && errno == EINTR)
				continue;
			if (r <= 0)
				break;
			got += (size_t)r;
		}
		if (fd >= 0)
			close(fd);
		if (got != total) {
			free(whole);
			return;
		}
	} else {
		if (d->head_len)
			memcpy(whole, d->head, d->head_len);
		if (d->len)
			memcpy(whole + d->head_len, d->data, d->len);
	}
	buf_init(&text, STORE_INDEX_TEXT_MAX);
	if (mail_text_extract(whole, total, &text) == 1 && text.len > 0)
		dp->text = buf_steal(&text, &dp->text_len);
	buf_free(&text);
	free(whole);
}

static void deliver_work(uv_work_t *req)
{
	struct dop *dp = req->data;
	struct store_writer *w = dp->d->w;

	if (write_body(w, dp) == 0) {
		extract_text(w, dp);
		dp->written = true;
	} else {
		dp->op.status = -1;
		log_error("%s", dp->op.error);
	}
	uv_mutex_lock(&w->mu);
	release_locked(w, dp);
	w->writing--;
	uv_cond_signal(&w->cond);
	uv_mutex_unlock(&w->mu);
}

/* Loop thread.  Must not touch the writer: it may be stopped already. */
static void deliver_after_work(uv_work_t *req, int status)
{
	struct dop *dp = req->data;

	dp->after_work_done = true;
	if (!dp->written) {
		/* failed in the worker (or cancelled): complete now */
		if (status != 0 && !dp->op.error) {
			dp->op.status = -1;
			dp->op.error = xasprintf("%s: delivery cancelled", dp->d->qid);
		}
		finish_delivery(dp);
	} else if (dp->completed) {
		finish_delivery(dp);
	}
}

/* ---- the writer thread ---- */

static void free_unlink(struct dop *dp)
{
	for (size_t i = 0; i < dp->nunlink; i++)
		free(dp->unlink[i]);
	FREE(dp->unlink);
	dp->nunlink = 0;
}

static int apply_delivery(struct dop *dp, struct store_txn *t, char **error_r)
{
	struct delivery *d = dp->d;
	int64_t body_id;

	int64_t size = (int64_t)(d->head_len + d->len) + (d->prefilled ? d->prefilled_len : 0);
	if (store_txn_add_body(t, d->relpath, size, &body_id, error_r) < 0)
		return -1;
	dp->body_id = body_id;
	dp->uids = xcalloc(d->nmailboxes ? d->nmailboxes : 1, sizeof(*dp->uids));
	if (d->nmailboxes > 0) {
		uint64_t next = 0;
		if (store_next_modseq(t, d->mailbox_ids[0], &next, error_r) < 0) {
			FREE(dp->uids);
			return -1;
		}
		d->modseq_before = next - 1;
	}
	for (size_t i = 0; i < d->nmailboxes; i++) {
		if (store_txn_append_kw(t, d->mailbox_ids[i], body_id, d->flags, d->keywords,
					d->internaldate, &dp->uids[i], error_r) < 0) {
			FREE(dp->uids);
			return -1;
		}
	}
	if (d->extra && d->extra(d, t, body_id, &dp->unlink, &dp->nunlink, error_r) < 0) {
		FREE(dp->uids);
		free_unlink(dp);
		return -1;
	}
	return 0;
}

static void fail_op(struct store_op *op, const char *why)
{
	if (op->status == 0) {
		op->status = -1;
		free(op->error);
		op->error = xstrdup(why);
	}
	if (op->delivery) {
		FREE(((struct dop *)op)->uids);
		free_unlink((struct dop *)op);
	}
}

/* fsync each distinct day directory of the batch once; a failure fails the
 * deliveries of that directory. */
static void sync_dirs(struct store_writer *w, struct store_op *batch)
{
	for (struct store_op *op = batch; op; op = op->next) {
		struct delivery *d;
		char dir[64], path[4096];
		const char *slash;
		bool seen = false;

		if (!op->delivery || op->status != 0 || ((struct dop *)op)->d->spare)
			continue;
		d = ((struct dop *)op)->d;
		slash = strrchr(d->relpath, '/');
		snprintf(dir, sizeof(dir), "%.*s", (int)(slash - d->relpath), d->relpath);
		for (struct store_op *p = batch; p != op; p = p->next) {
			if (p->delivery && p->status == 0 &&
			    strncmp(((struct dop *)p)->d->relpath, dir, strlen(dir)) == 0 &&
			    ((struct dop *)p)->d->relpath[strlen(dir)] == '/') {
				seen = true;
				break;
			}
		}
		if (seen)
			continue;
		store_msg_path(w->st, dir, path, sizeof(path));
		if (fsync_dir(path) < 0) {
			char *why = xasprintf("store: cannot fsync %s: %s", path, strerror(errno));

			log_error("%s", why);
			for (struct store_op *p = op; p; p = p->next)
				if (p->delivery && p->status == 0 &&
				    strncmp(((struct dop *)p)->d->relpath, dir, strlen(dir)) == 0)
					fail_op(p, why);
			free(why);
		}
	}
}

static void unlink_body(struct store_writer *w, struct delivery *d)
{
	char path[4096];

	store_msg_path(w->st, d->relpath, path, sizeof(path));
	if (unlink(path) < 0 && errno != ENOENT)
		log_warn("%s: cannot unlink %s: %s", d->qid, path, strerror(errno));
}

/* Queue a committed delivery's text for the index; past
 * STORE_INDEX_QUEUE_MAX it is dropped (the message stays unindexed and
 * search reads its file). */
static void index_later(struct store_writer *w, struct dop *dp)
{
	if (w->idx_bytes + dp->text_len > STORE_INDEX_QUEUE_MAX) {
		FREE(dp->text);
		w->catchup_done = false;   /* picked up again when idle */
		return;
	}
	struct index_item *it = xmalloc(sizeof *it);
	it->body_id = dp->body_id;
	it->text = dp->text;
	it->len = dp->text_len;
	it->next = NULL;
	dp->text = NULL;
	*w->idx_tail = it;
	w->idx_tail = &it->next;
	w->idx_bytes += it->len;
}

static void index_free_all(struct store_writer *w)
{
	while (w->idx_head) {
		struct index_item *it = w->idx_head;
		w->idx_head = it->next;
		free(it->text);
		free(it);
	}
	w->idx_tail = &w->idx_head;
	w->idx_bytes = 0;
}

/* One transaction of index rows (writer thread, nothing else waiting). */
static void index_batch(struct store_writer *w)
{
	char *err = NULL;
	struct store_txn *t = store_txn_begin(w->st, &err);
	size_t n = 0, bytes = 0;

	if (!t) {
		log_warn("store: full-text index not updated (%s); searches read those messages",
			 err);
		free(err);
		index_free_all(w);
		return;
	}
	while (w->idx_head && n < 512 && bytes < 8u * 1024 * 1024) {
		struct index_item *it = w->idx_head;
		w->idx_head = it->next;
		if (!w->idx_head)
			w->idx_tail = &w->idx_head;
		w->idx_bytes -= it->len;
		bytes += it->len;
		n++;
		if (store_txn_index_text(t, it->body_id, it->text, it->len, &err) < 0) {
			log_warn("%s", err);
			FREE(err);
			/* not again and again: searches read this one */
			if (store_txn_mark_unindexable(t, it->body_id, &err) < 0)
				FREE(err);
		}
		free(it->text);
		free(it);
	}
	if (store_txn_commit(t, &err) < 0) {
		log_warn("store: full-text index batch lost (%s); searches read those messages",
			 err);
		free(err);
	}
}

/* Messages without an index entry -- stored before the index existed, or
 * whose text was dropped from a full queue -- are indexed a few at a time
 * when the writer has nothing else to do (messages.indexed: 0 not yet, 1
 * indexed, 2 cannot be: too large, unreadable, or its text does not fit).
 * Writer thread; reads the files here, which only delays this idle work. */
static void catch_up_index(struct store_writer *w)
{
	struct store_unindexed u[32];
	int64_t skip[32];
	size_t n = 0, nskip = 0;
	char *err = NULL;

	if (store_unindexed(w->st, u, 32, &n) < 0 || n == 0) {
		w->catchup_done = true;
		return;
	}
	for (size_t i = 0; i < n; i++) {
		char path[4096];
		char *data = NULL;
		size_t got = 0;
		bool ok = false;

		if (u[i].size > 0 && (uint64_t)u[i].size <= STORE_INDEX_MESSAGE_MAX) {
			store_msg_path(w->st, u[i].path, path, sizeof path);
			int fd = open(path, O_RDONLY | O_CLOEXEC);
			if (fd >= 0) {
				data = xmalloc((size_t)u[i].size + 1);
				while (got < (size_t)u[i].size) {
					ssize_t r = pread(fd, data + got, (size_t)u[i].size - got,
							  (off_t)got);
					if (r < 0 && errno == EINTR)
						continue;
					if (r <= 0)
						break;
					got += (size_t)r;
				}
				close(fd);
			}
		}
		if (data && got == (size_t)u[i].size) {
			struct buf text;
			buf_init(&text, STORE_INDEX_TEXT_MAX);
			if (mail_text_extract(data, got, &text) == 1 && text.len > 0) {
				struct dop tmp;
				memset(&tmp, 0, sizeof tmp);
				tmp.body_id = u[i].id;
				tmp.text = buf_steal(&text, &tmp.text_len);
				index_later(w, &tmp);
				ok = tmp.text == NULL;
				free(tmp.text);
			}
			buf_free(&text);
		}
		free(data);
		if (!ok)
			skip[nskip++] = u[i].id;
	}
	if (nskip == 0)
		return;
	struct store_txn *t = store_txn_begin(w->st, &err);
	bool failed = t == NULL;
	for (size_t i = 0; t && !failed && i < nskip; i++)
		if (store_txn_mark_unindexable(t, skip[i], &err) < 0)
			failed = true;
	if (t && failed)
		store_txn_rollback(t);
	else if (t && store_txn_commit(t, &err) == 0)
		return;
	log_warn("store: cannot mark messages that cannot be indexed (%s); the catch-up stops "
		 "until the next delivery", err ? err : "?");
	free(err);
	w->catchup_done = true;
}

static void process_batch(struct store_writer *w, struct store_op *batch, size_t n)
{
	uint64_t t0 = now_ms();
	struct store_txn *t;
	char *err = NULL;
	size_t nok = 0;

	sync_dirs(w, batch);
	t = store_txn_begin(w->st, &err);
	if (t && w->trash_dirty) {
		/* The previous batch expunged: its files were unlinked after its
		 * commit; forget them here (and unlink any that were not). */
		if (store_txn_empty_trash(t, &err) < 0) {
			log_warn("%s", err);
			FREE(err);
		}
		w->trash_dirty = false;
	}
	if (!t) {
		log_error("%s", err);
		for (struct store_op *op = batch; op; op = op->next)
			fail_op(op, err);
		FREE(err);
	} else {
		for (struct store_op *op = batch; op; op = op->next) {
			int r;

			if (op->status != 0)
				continue;
			if (store_txn_savepoint(t) < 0) {
				fail_op(op, "store: cannot create savepoint");
				continue;
			}
			if (op->delivery)
				r = apply_delivery((struct dop *)op, t, &err);
			else
				r = op->apply(op, t, &err);
			if (r == 0 && store_txn_release(t) == 0)
				continue;
			store_txn_rollback_to(t);
			fail_op(op, err ? err : "store: operation failed");
			if (op->delivery)
				log_error("%s: store failed: %s", ((struct dop *)op)->d->qid,
					  op->error);
			FREE(err);
		}
		if (store_txn_commit(t, &err) < 0) {
			log_error("%s", err);
			for (struct store_op *op = batch; op; op = op->next)
				fail_op(op, err);
			FREE(err);
		}
	}
	for (struct store_op *op = batch; op; op = op->next) {
		if (op->status == 0) {
			nok++;
			if (op->delivery && ((struct dop *)op)->nunlink > 0) {
				struct dop *dp = (struct dop *)op;
				store_unlink_bodies(w->st, dp->unlink, dp->nunlink);
				free_unlink(dp);
				w->trash_dirty = true;
			}
			if (op->delivery && ((struct dop *)op)->text)
				index_later(w, (struct dop *)op);
			else if (op->delivery)
				w->catchup_done = false;
			if (!op->delivery)
				w->trash_dirty = true;
			if (!op->delivery && op->after_commit)
				op->after_commit(op, w->st);
		} else if (op->delivery) {
			unlink_body(w, ((struct dop *)op)->d);
		}
	}
	uv_mutex_lock(&w->mu);
	w->ops += nok;
	if (t)
		w->commits++;
	uv_mutex_unlock(&w->mu);
	if (t)
		log_debug("store: commit ops=%zu ms=%llu", n,
			  (unsigned long long)(now_ms() - t0));
}

static void writer_main(void *arg)
{
	struct store_writer *w = arg;

	uv_mutex_lock(&w->mu);
	for (;;) {
		struct store_op *batch, **tail;
		size_t n = 0;

		while (!w->queue && !(w->stopping && w->writing == 0) && !w->idx_head &&
		       (w->catchup_done || w->stopping))
			uv_cond_wait(&w->cond, &w->mu);
		if (!w->queue) {
			if (w->stopping && w->writing == 0)
				break;
			/* Nothing to commit for anyone: fill the index. */
			uv_mutex_unlock(&w->mu);
			if (w->idx_head)
				index_batch(w);
			else if (!w->stopping)
				catch_up_index(w);
			uv_mutex_lock(&w->mu);
			continue;
		}
		/* take up to batch_max operations */
		batch = w->queue;
		tail = &w->queue;
		while (*tail && n < w->batch_max) {
			tail = &(*tail)->next;
			n++;
		}
		w->queue = *tail;
		if (!w->queue)
			w->queue_tail = &w->queue;
		*tail = NULL;
		uv_mutex_unlock(&w->mu);

		process_batch(w, batch, n);
		/* The index may lag, but not without bound: past
		 * STORE_INDEX_LAG_MAX of waiting text it goes first. */
		if (w->idx_bytes > STORE_INDEX_LAG_MAX)
			index_batch(w);

		uv_mutex_lock(&w->mu);
		*w->done_tail = batch;
		while (*w->done_tail)
			w->done_tail = &(*w->done_tail)->next;
		uv_mutex_unlock(&w->mu);
		uv_async_send(w->async);
		uv_mutex_lock(&w->mu);
	}
	uv_mutex_unlock(&w->mu);
	/* Text not indexed yet: those messages are searched by reading them. */
	index_free_all(w);
}

/* ---- public ---- */

struct store_writer *store_writer_start(uv_loop_t *loop, struct store *st, size_t batch_max)
{
	struct store_writer *w = xcalloc(1, sizeof(*w));

	w->loop = loop;
	w->st = st;
	w->batch_max = batch_max ? batch_max : 1;
	w->queue_tail = &w->queue;
	w->idx_tail = &w->idx_head;
	w->done_tail = &w->done;
	w->async = xcalloc(1, sizeof(*w->async));
	w->spares = xcalloc(SPARE_MAX, sizeof(*w->spares));
	if (uv_mutex_init(&w->mu) != 0 || uv_cond_init(&w->cond) != 0)
		log_fatal("store: cannot create writer mutex");
	if (uv_async_init(loop, w->async, on_async) != 0)
		log_fatal("store: cannot create writer async handle");
	w->async->data = w;
	if (uv_thread_create(&w->thread, writer_main, w) != 0)
		log_fatal("store: cannot start writer thread");
	/* Have spares ready before the first message: made here, at start-up,
	 * before the loop serves anyone. */
	struct refill first = { .w = w };
	first.work.data = &first;
	w->refilling = true;
	w->writing++;
	refill_work(&first.work);
	return w;
}

void store_writer_stop(struct store_writer **wp)
{
	struct store_writer *w = wp ? *wp : NULL;

	if (!w)
		return;
	uv_mutex_lock(&w->mu);
	w->stopping = true;
	uv_cond_signal(&w->cond);
	uv_mutex_unlock(&w->mu);
	uv_thread_join(&w->thread);

	run_completions(take_completions(w));
	/* Spares nobody took: empty files that nothing references. */
	for (size_t i = 0; i < w->nspares; i++) {
		char path[4096];

		store_msg_path(w->st, w->spares[(w->spare_head + i) % SPARE_MAX].relpath, path,
			       sizeof(path));
		unlink(path);
	}
	free(w->spares);
	w->async->data = NULL;
	uv_close((uv_handle_t *)w->async, on_async_closed);
	uv_cond_destroy(&w->cond);
	uv_mutex_destroy(&w->mu);
	free(w);
	*wp = NULL;
}

void store_deliver(struct store_writer *w, struct delivery *d)
{
	struct dop *dp = xcalloc(1, sizeof(*dp));
	int r;

	dp->d = d;
	dp->op.delivery = d;
	d->status = 0;
	d->error = NULL;
	d->uids = NULL;
	if (!d->spare)
		d->relpath[0] = '\0';
	d->w = w;
	d->next = NULL;
	d->work.data = dp;
	d->order_state = 0;

	uv_mutex_lock(&w->mu);
	assert(!w->stopping);
	w->writing++;
	uv_mutex_unlock(&w->mu);
	r = uv_queue_work(w->loop, &d->work, deliver_work, deliver_after_work);
	if (r != 0) {
		uv_mutex_lock(&w->mu);
		w->writing--;
		uv_cond_signal(&w->cond);
		uv_mutex_unlock(&w->mu);
		if (d->prefilled) {
			char path[4096];

			close(d->fd);
			store_msg_path(w->st, d->relpath, path, sizeof(path));
			unlink(path);
		}
		/* Cannot happen with a valid loop and callbacks; report it anyway. */
		dp->op.status = -1;
		dp->op.error = xasprintf("%s: cannot queue work: %s", d->qid, uv_strerror(r));
		dp->after_work_done = true;
		finish_delivery(dp);
	}
}

/* Queue a refill job unless one runs (any thread holding no lock). */
static void start_refill(struct store_writer *w)
{
	struct refill *r = NULL;

	uv_mutex_lock(&w->mu);
	if (w->nspares < SPARE_LOW && !w->refilling && !w->stopping) {
		w->refilling = true;
		w->writing++;
		r = xcalloc(1, sizeof(*r));
		r->w = w;
		r->work.data = r;
	}
	uv_mutex_unlock(&w->mu);
	if (r && uv_queue_work(w->loop, &r->work, refill_work, refill_after) != 0) {
		uv_mutex_lock(&w->mu);
		w->refilling = false;
		w->writing--;
		uv_cond_signal(&w->cond);
		uv_mutex_unlock(&w->mu);
		free(r);
	}
}

void store_writer_new_qid(struct store_writer *w, struct delivery *d)
{
	uv_mutex_lock(&w->mu);
	if (w->nspares > 0) {
		/* Oldest first, so that no spare lingers in an old day
		 * directory that store_recover no longer looks at. */
		struct spare *sp = &w->spares[w->spare_head];

		w->spare_head = (w->spare_head + 1) % SPARE_MAX;
		w->nspares--;
		memcpy(d->qid, sp->qid, sizeof(d->qid));
		snprintf(d->relpath, sizeof(d->relpath), "%s", sp->relpath);
		d->spare = true;
	} else {
		queue_id_new(d->qid);
		d->spare = false;
	}
	uv_mutex_unlock(&w->mu);
	start_refill(w);
}

void store_submit(struct store_writer *w, struct store_op *op)
{
	op->status = 0;
	op->error = NULL;
	op->delivery = NULL;
	op->next = NULL;
	uv_mutex_lock(&w->mu);
	assert(!w->stopping);
	*w->queue_tail = op;
	w->queue_tail = &op->next;
	uv_cond_signal(&w->cond);
	uv_mutex_unlock(&w->mu);
}

void store_writer_stats(struct store_writer *w, uint64_t *ops_r, uint64_t *commits_r)
{
	uv_mutex_lock(&w->mu);
	*ops_r = w->ops;
	*commits_r = w->commits;
	uv_mutex_unlock(&w->mu);
}
