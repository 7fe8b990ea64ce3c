/* expand.c - sending mail for a local list on to its members.
 *
 * The SMTP session queues a list address like a remote recipient, flagged
 * `expand` (the message is durable before 250).  The queue manager hands
 * such recipients here: on the thread pool the list's members are read and
 * each is resolved (accounts, aliases, remote addresses, other lists), and
 * the message is copied with List-Id and List-Post added (RFC 2919, RFC
 * 2369); on the loop thread that copy is delivered in one transaction that
 * also queues the remote members and removes the list's queue entry.
 *
 * The copy's envelope sender is the list itself, so bounces from members
 * come back to the list; mail to the list from <> (a bounce) goes to the
 * list's owner instead of the members.  A message that already carries this
 * list's List-Id has been round once (two lists naming each other): it is
 * dropped and logged, not sent again. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/buf.h"
#include "core/conf.h"
#include "core/log.h"
#include "core/util.h"
#include "mail/dsn.h"
#include "mta/mta_private.h"
#include "proto/server.h"
#include "store/store.h"
#include "store/writer.h"

struct list_job {
	struct mta *m;
	/* the queued entry */
	int64_t rcpt_id;
	char qid[17];
	char path[64];
	int64_t skip;
	char *sender;
	char *list;
	unsigned notify;
	char *orcpt;
	char *envid;
	int ret;
	/* made on the pool */
	int rc;                    /* 0 deliver, 1 nothing to do (drop), -1 retry later */
	char why[512];             /* rc != 0: for the log */
	char *owner;
	char *head;                /* Return-Path of the copy */
	size_t head_len;
	char *data;                /* List headers + the original */
	size_t len;
	int64_t *mailbox_ids;
	size_t nmailboxes;
	struct queue_rcpt_in *remote;
	char **remote_addr;
	size_t nremote;
	/* the store step */
	struct delivery d;
	struct queue_msg_in qm;
	struct queue_update u;
	struct store_op op;
	char **paths;              /* body files freed by the update */
	size_t npaths;
};

static void list_job_free(struct list_job *j)
{
	free(j->sender);
	free(j->list);
	free(j->orcpt);
	free(j->envid);
	free(j->owner);
	free(j->head);
	free(j->data);
	free(j->mailbox_ids);
	for (size_t i = 0; i < j->nremote; i++)
		free(j->remote_addr[i]);
	free(j->remote_addr);
	free(j->remote);
	free(j->d.uids);
	free(j->d.error);
	free(j->op.error);
	for (size_t i = 0; i < j->npaths; i++)
		free(j->paths[i]);
	free(j->paths);
	free(j);
}

/* Read the queued body (after our Return-Path line), at most max bytes. */
static char *read_body(struct store *st, const char *rel, int64_t skip, size_t max,
		       size_t *len_r)
{
	char path[4096];
	store_msg_path(st, rel, path, sizeof path);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return NULL;
	struct buf b;
	buf_init(&b, max);
	char tmp[65536];
	off_t off = (off_t)skip;
	bool ok = true;
	for (;;) {
		ssize_t n = pread(fd, tmp, sizeof tmp, off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			ok = false;
			break;
		}
		if (n == 0)
			break;
		if (buf_append(&b, tmp, (size_t)n) < 0) {     /* over max */
			ok = false;
			break;
		}
		off += n;
	}
	close(fd);
	if (!ok) {
		buf_free(&b);
		return NULL;
	}
	return buf_steal(&b, len_r);
}

/* "team@b.example" -> "<team.b.example>" (RFC 2919 2: list-label.namespace). */
static void list_id(const char *list, char *out, size_t outsz)
{
	const char *at = strrchr(list, '@');
	snprintf(out, outsz, "<%.*s.%s>", at ? (int)(at - list) : 0, list, at ? at + 1 : list);
}

/* The header block of msg has a List-Id field naming id. */
static bool has_list_id(const char *msg, size_t len, const char *id)
{
	size_t i = 0, idlen = strlen(id);
	while (i < len) {
		const char *nl = memchr(msg + i, '\n', len - i);
		size_t end = nl ? (size_t)(nl - msg) : len;
		size_t llen = end - i;
		if (llen == 0 || (llen == 1 && msg[i] == '\r'))
			break;     /* the blank line: end of the header */
		if (llen > 8 && strncasecmp(msg + i, "List-Id:", 8) == 0) {
			/* the field (and its folded lines) mentions id */
			size_t fend = end;
			while (fend + 1 < len && (msg[fend + 1] == ' ' || msg[fend + 1] == '\t')) {
				const char *nl2 = memchr(msg + fend + 1, '\n', len - fend - 1);
				fend = nl2 ? (size_t)(nl2 - msg) : len;
			}
			if (memmem(msg + i, fend - i, id, idlen))
				return true;
		}
		if (!nl)
			break;
		i = end + 1;
	}
	return false;
}

static void add_remote(struct list_job *j, const char *addr, bool expand)
{
	for (size_t i = 0; i < j->nremote; i++)
		if (strcasecmp(j->remote_addr[i], addr) == 0)
			return;
	j->remote_addr = xreallocarray(j->remote_addr, j->nremote + 1, sizeof *j->remote_addr);
	j->remote = xreallocarray(j->remote, j->nremote + 1, sizeof *j->remote);
	j->remote_addr[j->nremote] = xstrdup(addr);
	memset(&j->remote[j->nremote], 0, sizeof j->remote[j->nremote]);
	j->remote[j->nremote].expand = expand;
	j->nremote++;
}

static void add_mailbox(struct list_job *j, int64_t id)
{
	for (size_t i = 0; i < j->nmailboxes; i++)
		if (j->mailbox_ids[i] == id)
			return;
	j->mailbox_ids = xreallocarray(j->mailbox_ids, j->nmailboxes + 1, sizeof *j->mailbox_ids);
	j->mailbox_ids[j->nmailboxes++] = id;
}

static void list_work(void *arg)
{
	struct list_job *j = arg;
	struct store *st = j->m->srv->store;
	const struct conf *cfg = j->m->cfg;
	char **members = NULL;
	size_t nmembers = 0;
	char *err = NULL;

	int r = store_list_members(st, j->list, &j->owner, &members, &nmembers, &err);
	if (r < 0) {
		j->rc = -1;
		snprintf(j->why, sizeof j->why, "reading the list: %s", err ? err : "store error");
		free(err);
		return;
	}
	if (r == 0) {
		j->rc = 1;
		snprintf(j->why, sizeof j->why, "the list no longer exists (yubin list delete?)");
		return;
	}
	size_t len;
	char *orig = read_body(st, j->path, j->skip, (size_t)cfg->message_size_limit + 65536, &len);
	if (!orig) {
		j->rc = -1;
		snprintf(j->why, sizeof j->why, "cannot read the queued message %s", j->path);
		goto out;
	}
	char id[300];
	list_id(j->list, id, sizeof id);
	if (has_list_id(orig, len, id)) {
		j->rc = 1;
		snprintf(j->why, sizeof j->why, "mail loop: the message has been through this "
			 "list already (List-Id %s)", id);
		free(orig);
		goto out;
	}
	/* A bounce to the list goes to its owner, from <> still. */
	bool bounce = j->sender[0] == '\0';
	const char *newsender = bounce ? "" : j->list;
	char delim = cfg->recipient_delimiter[0];
	size_t ntargets = bounce ? 1 : nmembers;
	for (size_t i = 0; i < ntargets; i++) {
		const char *who = bounce ? j->owner : members[i];
		struct rcpt_expansion x;
		if (store_expand_rcpt(st, who, delim, &x) < 0) {
			j->rc = -1;
			snprintf(j->why, sizeof j->why, "resolving member %s: store error", who);
			free(orig);
			goto out;
		}
		if (x.status == RCPT_NOT_LOCAL)
			add_remote(j, who, false);
		else if (x.status == RCPT_UNKNOWN_USER)
			log_warn("%s: list %s: member %s is a local address without an account; "
				 "skipped (yubin list remove %s %s)", j->qid, j->list, who, j->list,
				 who);
		for (size_t k = 0; k < x.n; k++) {
			if (x.v[k].kind == TARGET_LOCAL)
				add_mailbox(j, x.v[k].mailbox_id);
			else
				add_remote(j, x.v[k].address, x.v[k].kind == TARGET_LIST);
		}
		rcpt_expansion_free(&x);
	}
	for (size_t i = 0; i < j->nremote; i++)
		j->remote[i].addr = j->remote_addr[i];

	j->head = xasprintf("Return-Path: <%s>\r\n", newsender);
	j->head_len = strlen(j->head);
	char *lh = xasprintf("List-Id: %s\r\nList-Post: <mailto:%s>\r\n", id, j->list);
	size_t lhl = strlen(lh);
	j->data = xmalloc(lhl + len + 1);
	memcpy(j->data, lh, lhl);
	memcpy(j->data + lhl, orig, len);
	j->len = lhl + len;
	free(lh);
	free(orig);
	j->rc = 0;
out:
	for (size_t i = 0; i < nmembers; i++)
		free(members[i]);
	free(members);
}

static int list_extra(struct delivery *d, struct store_txn *t, int64_t body_id, char ***unlink_r,
		      size_t *nunlink_r, char **error_r)
{
	struct list_job *j = d->extra_arg;
	if (j->qm.nrcpts > 0 && store_txn_queue_add(t, body_id, &j->qm, now_unix(), error_r) < 0)
		return -1;
	return store_txn_queue_update(t, &j->u, 1, now_unix(), unlink_r, nunlink_r, error_r);
}

static void finished(struct list_job *j)
{
	struct mta *m = j->m;
	mta_inflight_done(m, j->rcpt_id);
	list_job_free(j);
}

static void list_delivered(struct delivery *d)
{
	struct list_job *j = d->arg;
	struct mta *m = j->m;
	if (d->status == 0) {
		log_info("%s: to=<%s>, relay=list, status=expanded (%zu local, %zu queued as %s)",
			 j->qid, j->list, j->nmailboxes, j->nremote, d->qid);
		for (size_t i = 0; i < j->nmailboxes; i++) {
			if (d->uids)
				server_recent_note(m->srv, j->mailbox_ids[i], d->uids[i]);
			server_mailbox_changed(m->srv, j->mailbox_ids[i]);
		}
		if (j->nremote > 0)
			mta_kick(m);
		/* RFC 3461 6.2.7.3: NOTIFY=SUCCESS for a list is answered here,
		 * "expanded"; the members' copies carry no request of it. */
		if ((j->notify & DSN_NOTIFY_SUCCESS) && j->sender[0]) {
			const char *rc[1] = {j->list}, *oc[1] = {j->orcpt};
			struct delivered_report r = {
				.qid = j->qid, .path = j->path, .skip = j->skip,
				.sender = j->sender, .envid = j->envid, .ret = j->ret,
				.rcpts = rc, .orcpts = oc, .nrcpts = 1, .expanded = true,
			};
			mta_report_delivered(m, &r);
		}
	} else {
		log_error("%s: list %s: cannot store the copy for its members: %s; it stays "
			  "queued", j->qid, j->list, d->error ? d->error : "store error");
	}
	finished(j);
}

static int drop_apply(struct store_op *op, struct store_txn *t, char **error_r)
{
	struct list_job *j = op->arg;
	return store_txn_queue_update(t, &j->u, 1, now_unix(), &j->paths, &j->npaths, error_r);
}

static void drop_unlink(struct store_op *op, struct store *st)
{
	struct list_job *j = op->arg;
	store_unlink_bodies(st, j->paths, j->npaths);
}

static void drop_done(struct store_op *op)
{
	struct list_job *j = op->arg;
	if (op->status != 0)
		log_error("%s: list %s: cannot remove the queue entry: %s", j->qid, j->list,
			  op->error ? op->error : "store error");
	finished(j);
}

static void list_built(void *arg)
{
	struct list_job *j = arg;
	struct mta *m = j->m;
	memset(&j->u, 0, sizeof j->u);
	j->u.rcpt_id = j->rcpt_id;
	if (j->rc < 0) {
		log_error("%s: list %s: %s; trying again in %" PRId64 " s", j->qid, j->list, j->why,
			  m->cfg->queue_retry_min / 1000);
		j->u.attempted = true;
		j->u.next_try = now_unix() + m->cfg->queue_retry_min / 1000;
		j->u.last_reply = j->why;
	} else if (j->rc > 0) {
		log_warn("%s: list %s: dropped: %s", j->qid, j->list, j->why);
		j->u.done = true;
	}
	if (j->rc != 0) {
		j->op.apply = drop_apply;
		j->op.after_commit = drop_unlink;
		j->op.done = drop_done;
		j->op.arg = j;
		store_submit(m->srv->writer, &j->op);
		return;
	}
	j->u.done = true;
	struct delivery *d = &j->d;
	memset(d, 0, sizeof *d);
	queue_id_new(d->qid);
	if (j->nremote > 0) {
		j->qm.qid = d->qid;
		j->qm.sender = j->sender[0] ? j->list : "";
		j->qm.skip = (int64_t)j->head_len;
		j->qm.rcpts = j->remote;
		j->qm.nrcpts = j->nremote;
	}
	d->head = j->head;
	d->head_len = j->head_len;
	d->data = j->data;
	d->len = j->len;
	d->mailbox_ids = j->mailbox_ids;
	d->nmailboxes = j->nmailboxes;
	d->internaldate = now_unix();
	d->extra = list_extra;
	d->extra_arg = j;
	d->done = list_delivered;
	d->arg = j;
	store_deliver(m->srv->writer, d);
}

void mta_expand_list(struct mta *m, const struct queue_entry *e)
{
	struct list_job *j = xcalloc(1, sizeof *j);
	j->m = m;
	j->rcpt_id = e->rcpt_id;
	memcpy(j->qid, e->qid, sizeof j->qid);
	memcpy(j->path, e->path, sizeof j->path);
	j->skip = e->skip;
	j->sender = xstrdup(e->sender);
	j->list = xstrdup(e->addr);
	j->notify = e->notify;
	j->orcpt = e->orcpt ? xstrdup(e->orcpt) : NULL;
	j->envid = e->envid ? xstrdup(e->envid) : NULL;
	j->ret = e->ret;
	m->pending++;
	server_job(m->srv, NULL, list_work, list_built, j);
}
