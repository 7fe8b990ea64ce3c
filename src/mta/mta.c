/* mta.c - the queue manager.  See mta.h.
 *
 * A round: one pool job reads the recipients that are due (and the
 * routes), the loop groups them by destination domain into messages, looks
 * each domain up and starts sessions; each message's outcome becomes one
 * store operation (or, when the sender must be told, one delivery of the
 * DSN whose extra step records the outcome in the same transaction).  A
 * recipient stays "in flight" in memory from the read until its outcome is
 * committed, so that a second round never sends it twice. */
#include "mta/mta.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/conf.h"
#include "core/log.h"
#include "core/util.h"
#include "mail/dsn.h"
#include "mta/mta_private.h"
#include "proto/server.h"
#include "mta/sts_fetch.h"
#include "store/store.h"
#include "store/writer.h"

/* Recipients read per round. */
#define SCAN_MAX 1000
/* Of the original message, a DSN returns at most this much (then only the
 * header block). */
#define DSN_RETURN_MAX (128 * 1024)

/* ---- recipients in flight: an open-addressing set of ids ---- */

static size_t slot(int64_t id, size_t cap)
{
	uint64_t h = (uint64_t)id * 0x9E3779B97F4A7C15ull;
	return (size_t)(h >> 20) & (cap - 1);
}

static bool inflight_has(const struct mta *m, int64_t id)
{
	if (m->inflight_cap == 0)
		return false;
	for (size_t i = slot(id, m->inflight_cap);; i = (i + 1) & (m->inflight_cap - 1)) {
		if (m->inflight[i] == 0)
			return false;
		if (m->inflight[i] == id)
			return true;
	}
}

static void inflight_put(struct mta *m, int64_t id);

static void inflight_grow(struct mta *m)
{
	int64_t *old = m->inflight;
	size_t oldcap = m->inflight_cap;
	m->inflight_cap = oldcap ? oldcap * 2 : 1024;
	m->inflight = xcalloc(m->inflight_cap, sizeof *m->inflight);
	m->inflight_n = 0;
	for (size_t i = 0; i < oldcap; i++)
		if (old[i] > 0)
			inflight_put(m, old[i]);
	free(old);
}

static void inflight_put(struct mta *m, int64_t id)
{
	if ((m->inflight_n + 1) * 2 > m->inflight_cap)
		inflight_grow(m);
	size_t i = slot(id, m->inflight_cap);
	while (m->inflight[i] > 0 && m->inflight[i] != id)
		i = (i + 1) & (m->inflight_cap - 1);
	if (m->inflight[i] != id) {
		m->inflight[i] = id;
		m->inflight_n++;
	}
}

/* Removal with backward-shift, so lookups never need tombstones. */
static void inflight_del(struct mta *m, int64_t id)
{
	if (m->inflight_cap == 0)
		return;
	size_t mask = m->inflight_cap - 1, i = slot(id, m->inflight_cap);
	while (m->inflight[i] != id) {
		if (m->inflight[i] == 0)
			return;
		i = (i + 1) & mask;
	}
	m->inflight[i] = 0;
	m->inflight_n--;
	for (size_t j = (i + 1) & mask; m->inflight[j] != 0; j = (j + 1) & mask) {
		size_t want = slot(m->inflight[j], m->inflight_cap);
		/* Move j back into the hole when its home is not in (i, j]. */
		bool between = i <= j ? (want > i && want <= j) : (want > i || want <= j);
		if (!between) {
			m->inflight[i] = m->inflight[j];
			m->inflight[j] = 0;
			i = j;
		}
	}
}

/* Work on id is over.  While a scan is reading the queue its rows may
 * predate this outcome (the recipient delivered, or rescheduled): the id
 * stays in the set until that scan has been processed, so that it is not
 * taken again from the stale rows. */
static void inflight_release(struct mta *m, int64_t id)
{
	if (!m->scanning) {
		inflight_del(m, id);
		return;
	}
	if (m->nreleased == m->capreleased) {
		m->capreleased = m->capreleased ? m->capreleased * 2 : 64;
		m->released = xreallocarray(m->released, m->capreleased, sizeof *m->released);
	}
	m->released[m->nreleased++] = id;
}

/* Rescan while this few are still in flight: the next round's work is
 * read while the last outcomes are being written. */
#define RESCAN_BELOW (SCAN_MAX / 2)

/* ---- jobs and destinations ---- */

static void job_free(struct msg_job *j)
{
	if (!j)
		return;
	for (size_t i = 0; i < j->nrcpts; i++) {
		free(j->rcpts[i].addr);
		free(j->rcpts[i].orcpt);
	}
	free(j->rcpts);
	free(j->envid);
	free(j->sender);
	free(j);
}

static void stop_closed(uv_handle_t *h)
{
	struct mta *m = h->data;
	m->stop_armed = false;
	if (m->sessions || m->pending || m->scanning)
		return;         /* work came meanwhile: maybe_stopped runs again after it */
	void (*cb)(void *) = m->stopped;
	m->stopped = NULL;
	cb(m->stopped_arg);
}

static void stop_fire(uv_timer_t *t)
{
	uv_close((uv_handle_t *)t, stop_closed);
}

/* The last piece of work is gone: report it from the loop, never from
 * inside the callback that ended it (a connection's close, whose caller
 * still holds the registry the owner is about to free). */
static void maybe_stopped(struct mta *m)
{
	if (m->stopping && m->sessions == 0 && m->pending == 0 && !m->scanning && m->stopped &&
	    !m->stop_armed) {
		m->stop_armed = true;
		uv_timer_init(m->loop, &m->stop_timer);
		m->stop_timer.data = m;
		uv_timer_start(&m->stop_timer, stop_fire, 0, 0);
	}
}

static void dest_free(struct dest *d)
{
	struct mta *m = d->m;
	for (struct dest **p = &m->dests; *p; p = &(*p)->next)
		if (*p == d) {
			*p = d->next;
			break;
		}
	if (d->lookup)
		dns_mx_cancel(d->lookup);
	if (d->sts_lookup)
		sts_cancel(d->sts_lookup);
	free(d->sts);
	free(d->mx);
	free(d);
}

static struct dest *dest_find(struct mta *m, const char *domain)
{
	for (struct dest *d = m->dests; d; d = d->next)
		if (strcmp(d->domain, domain) == 0)
			return d;
	return NULL;
}

static void job_push(struct dest *d, struct msg_job *j)
{
	j->next = NULL;
	*d->tail = j;
	d->tail = &j->next;
	d->njobs++;
}

struct msg_job *mta_dest_take(struct dest *d)
{
	struct msg_job *j = d->head;
	if (!j)
		return NULL;
	d->head = j->next;
	if (!d->head)
		d->tail = &d->head;
	d->njobs--;
	j->next = NULL;
	return j;
}

/* Every job waiting for d gets the same outcome. */
static void dest_fail_all(struct dest *d, enum outcome o, const char *status, const char *why)
{
	struct msg_job *j;
	while ((j = mta_dest_take(d)) != NULL) {
		for (size_t i = 0; i < j->nrcpts; i++) {
			struct rcpt_job *r = &j->rcpts[i];
			r->outcome = o;
			snprintf(r->status, sizeof r->status, "%s", status);
			snprintf(r->reply, sizeof r->reply, "%s", why);
		}
		mta_job_done(j);
	}
}

void mta_dest_unreachable(struct dest *d, const char *why)
{
	dest_fail_all(d, OUT_TEMP, "4.4.1", why);
}

static void dispatch(struct mta *m);
static void dispatch_once(struct mta *m);

void mta_session_ended(struct dest *d)
{
	struct mta *m = d->m;
	d->sessions--;
	m->sessions--;
	if (m->stopping) {
		dest_fail_all(d, OUT_NONE, "4.3.2", "not attempted: shutting down");
		if (d->sessions == 0)
			dest_free(d);
		maybe_stopped(m);
		return;
	}
	if (m->dispatching) {
		/* Ended inside smtp_out_start (every target refused by policy):
		 * dispatch frees d and looks again when its loop is done. */
		m->redispatch = true;
		return;
	}
	if (d->sessions == 0 && d->njobs == 0)
		dest_free(d);
	dispatch(m);
}

static void on_resolved(void *arg, const struct dns_mx_result *r)
{
	struct dest *d = arg;
	struct mta *m = d->m;
	d->lookup = NULL;
	d->resolving = false;
	if (r->status != DNS_OK) {
		log_info("dns: %s: %s", d->domain, r->error);
		if (r->status == DNS_NOTFOUND && !d->routed)
			dest_fail_all(d, OUT_PERM, "5.1.2", r->error);
		else if (r->status == DNS_NULLMX && !d->routed)
			dest_fail_all(d, OUT_PERM, "5.1.10", r->error);
		else
			dest_fail_all(d, OUT_TEMP, "4.4.3", r->error);
		if (d->sessions == 0)
			dest_free(d);
		return;
	}
	d->mx = xmalloc(sizeof *d->mx);
	memcpy(d->mx, r, sizeof *r);
	d->resolved = true;
	for (size_t i = 0; i < r->ntargets; i++)
		log_debug("dns: %s: target %zu %s [%s] pref=%u%s", d->domain, i, r->targets[i].host,
			  r->targets[i].addrtext, r->targets[i].pref,
			  r->targets[i].secure ? " secure" : "");
	dispatch(m);
}

static void on_sts(void *arg, const struct mtasts_policy *p)
{
	struct dest *d = arg;
	d->sts_lookup = NULL;
	d->sts_done = true;
	if (p && p->mode != MTASTS_NONE) {
		d->sts = xmalloc(sizeof *d->sts);
		*d->sts = *p;
	}
	dispatch(d->m);
}

static void dest_resolve(struct dest *d)
{
	struct mta *m = d->m;
	bool ipv6 = m->cfg->smtp_out_ipv6 != 0;
	d->resolving = true;
	if (d->hop_mx)
		d->lookup = dns_mx(m->dns, d->hop, d->port, ipv6, on_resolved, d);
	else
		d->lookup = dns_host(m->dns, d->hop, d->port, ipv6, on_resolved, d);
}

/* Start lookups and sessions within the limits.  A session may end inside
 * smtp_out_start; no dest is freed until the loop is over. */
static void dispatch(struct mta *m)
{
	if (m->stopping || m->dispatching)
		return;
	m->dispatching = true;
	dispatch_once(m);
	m->dispatching = false;
	while (m->redispatch && !m->stopping) {
		m->redispatch = false;
		for (struct dest *d = m->dests, *next; d; d = next) {
			next = d->next;
			if (d->sessions == 0 && d->njobs == 0 && !d->resolving && !d->sts_lookup)
				dest_free(d);
		}
		m->dispatching = true;
		dispatch_once(m);
		m->dispatching = false;
	}
}

static void dispatch_once(struct mta *m)
{
	for (struct dest *d = m->dests, *next; d; d = next) {
		next = d->next;
		if (d->njobs == 0)
			continue;
		/* MTA-STS applies to MX delivery, not to routes or the relayhost. */
		if (!d->sts_done && (d->routed || !m->cfg->mta_sts))
			d->sts_done = true;
		/* (once the saved policies are in the cache: sts_load) */
		if (!d->sts_done && !d->sts_lookup && !m->sts_loading)
			d->sts_lookup = sts_lookup(m, d->domain, on_sts, d);
		if (!d->resolved) {
			if (!d->resolving)
				dest_resolve(d);
			continue;
		}
		if (!d->sts_done)
			continue;
		while (d->head && smtp_out_wake(d))
			;     /* cached connections first */
		while (d->head && d->sessions < m->cfg->smtp_out_max_per_domain &&
		       m->sessions < (size_t)m->cfg->smtp_out_max_connections &&
		       (size_t)d->sessions < d->njobs) {
			d->sessions++;
			m->sessions++;
			smtp_out_start(d);
		}
	}
}

/* ---- the scan ---- */

struct scan {
	struct mta *m;
	int64_t now;
	size_t max;
	struct queue_entry *v;
	size_t n;
	int64_t next;
	struct store_route *routes;
	size_t nroutes;
	char *error;
	int rc;
};

static void scan_work(void *arg)
{
	struct scan *s = arg;
	struct store *st = s->m->srv->store;
	s->rc = store_queue_due(st, s->now, s->max, &s->v, &s->n, &s->next, &s->error);
	if (s->rc == 0)
		s->rc = store_route_list(st, &s->routes, &s->nroutes, &s->error);
}

static void timer_cb(uv_timer_t *t);

static void arm_timer(struct mta *m, int64_t next_unix)
{
	if (!m->timer_open || m->stopping)
		return;
	if (next_unix <= 0) {
		uv_timer_stop(&m->timer);
		m->timer_due = 0;
		return;
	}
	m->timer_due = next_unix;
	int64_t now = now_unix();
	uint64_t ms = next_unix > now ? (uint64_t)(next_unix - now) * 1000 : 0;
	uv_timer_start(&m->timer, timer_cb, ms, 0);
}

static void scan(struct mta *m);

static void set_hop(struct mta *m, struct dest *d, const struct store_route *routes, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(routes[i].domain, d->domain) == 0) {
			snprintf(d->hop, sizeof d->hop, "%s", routes[i].host);
			d->port = routes[i].port;
			d->hop_mx = routes[i].mx;
			d->routed = true;
			return;
		}
	const char *rh = m->cfg->relayhost;
	if (rh && rh[0] != '\0') {
		bool brackets = rh[0] == '[';
		const char *h = rh + (brackets ? 1 : 0);
		const char *end = brackets ? strchr(h, ']') : strrchr(h, ':');
		size_t hl = end ? (size_t)(end - h) : strlen(h);
		const char *colon = brackets ? (end ? strchr(end, ':') : NULL) : end;
		snprintf(d->hop, sizeof d->hop, "%.*s", (int)MIN(hl, sizeof d->hop - 1), h);
		d->port = colon ? atoi(colon + 1) : 25;
		d->hop_mx = !brackets;
		d->routed = true;
		d->auth = m->cfg->relayhost_user[0] != '\0' && m->relay_password != NULL;
		return;
	}
	snprintf(d->hop, sizeof d->hop, "%s", d->domain);
	d->port = (int)m->cfg->smtp_out_port;
	d->hop_mx = true;
	d->routed = false;
}

static void scan_done(void *arg)
{
	struct scan *s = arg;
	struct mta *m = s->m;
	size_t taken = 0;

	m->scanning = false;
	if (s->rc < 0) {
		log_error("queue: cannot read the queue: %s; retrying in a minute",
			  s->error ? s->error : "store error");
		arm_timer(m, now_unix() + 60);
	} else if (!m->stopping) {
		for (size_t i = 0; i < s->n; i++) {
			struct queue_entry *e = &s->v[i];
			if (inflight_has(m, e->rcpt_id))
				continue;
			if (e->expand) {
				inflight_put(m, e->rcpt_id);
				mta_expand_list(m, e);
				taken++;
				continue;
			}
			struct dest *d = dest_find(m, e->domain);
			if (!d) {
				d = xcalloc(1, sizeof *d);
				d->m = m;
				snprintf(d->domain, sizeof d->domain, "%s", e->domain);
				d->tail = &d->head;
				set_hop(m, d, s->routes, s->nroutes);
				d->next = m->dests;
				m->dests = d;
			}
			/* The same message's recipients are adjacent (ORDER BY). */
			struct msg_job *j = NULL;
			if (d->tail != &d->head) {
				struct msg_job *last = (struct msg_job *)((char *)d->tail -
									  offsetof(struct msg_job, next));
				if (last->queue_id == e->queue_id && last->nrcpts < MTA_RCPTS_PER_TXN)
					j = last;
			}
			if (!j) {
				j = xcalloc(1, sizeof *j);
				j->m = m;
				j->queue_id = e->queue_id;
				memcpy(j->qid, e->qid, sizeof j->qid);
				memcpy(j->path, e->path, sizeof j->path);
				j->skip = e->skip;
				j->size = e->size;
				j->created = e->created;
				j->flags = e->flags;
				j->ret = e->ret;
				j->envid = e->envid ? xstrdup(e->envid) : NULL;
				j->sender = xstrdup(e->sender);
				snprintf(j->domain, sizeof j->domain, "%s", e->domain);
				/* grown as recipients come: most messages have one */
				j->caprcpts = 1;
				j->rcpts = xcalloc(1, sizeof *j->rcpts);
				job_push(d, j);
			}
			if (j->nrcpts == j->caprcpts) {
				j->caprcpts = MIN(j->caprcpts * 4, (size_t)MTA_RCPTS_PER_TXN);
				j->rcpts = xreallocarray(j->rcpts, j->caprcpts, sizeof *j->rcpts);
			}
			struct rcpt_job *r = &j->rcpts[j->nrcpts++];
			memset(r, 0, sizeof *r);
			r->rcpt_id = e->rcpt_id;
			r->addr = xstrdup(e->addr);
			r->orcpt = e->orcpt ? xstrdup(e->orcpt) : NULL;
			r->notify = e->notify;
			r->attempts = e->attempts;
			r->warned = e->warned;
			inflight_put(m, e->rcpt_id);
			taken++;
		}
		if (taken)
			log_debug("queue: round: %zu recipients due, %zu in flight", taken,
				  m->inflight_n);
		/* More may be due than one read returned: read again once these
		 * are recorded (mta_job_done kicks). */
		if (s->n == s->max)
			m->rescan = true;
		arm_timer(m, s->next);
		dispatch(m);
	}
	/* Outcomes recorded while the scan ran: their rows have been seen. */
	for (size_t i = 0; i < m->nreleased; i++)
		inflight_del(m, m->released[i]);
	m->nreleased = 0;
	queue_entries_free(s->v, s->n);
	free(s->routes);
	free(s->error);
	free(s);
	if (m->rescan && !m->stopping && m->inflight_n < RESCAN_BELOW) {
		m->rescan = false;
		scan(m);
	}
	maybe_stopped(m);
}

static void scan(struct mta *m)
{
	if (m->stopping)
		return;
	if (m->scanning) {
		m->rescan = true;
		return;
	}
	struct scan *s = xcalloc(1, sizeof *s);
	s->m = m;
	s->now = now_unix();
	s->max = SCAN_MAX + m->inflight_n;
	m->scanning = true;
	server_job(m->srv, NULL, scan_work, scan_done, s);
}

static void timer_cb(uv_timer_t *t)
{
	((struct mta *)t->data)->timer_due = 0;
	scan(t->data);
}

void mta_pending_done(struct mta *m)
{
	m->pending--;
	maybe_stopped(m);
}

void mta_kick(struct mta *m)
{
	if (m)
		scan(m);
}

/* ---- outcomes ---- */

static int64_t backoff(const struct conf *cfg, int attempts)
{
	int64_t ms = cfg->queue_retry_min;
	for (int i = 1; i < attempts && ms < cfg->queue_retry_max; i++)
		ms *= 2;
	if (ms > cfg->queue_retry_max)
		ms = cfg->queue_retry_max;
	int64_t s = (ms + 999) / 1000;
	return s > 0 ? s : 1;
}

struct result {
	struct mta *m;
	struct msg_job *j;
	struct queue_update *u;
	size_t nu;
	/* the DSN, when one goes to the sender */
	struct dsn_rcpt *dr;
	size_t ndr;
	enum dsn_action action;
	bool dsn;
	const char *kind;          /* for the log: "non-delivery", "delay", "success" */
	char *dsn_msg;
	size_t dsn_len;
	char dsn_qid[17];
	struct rcpt_info sender_info;
	int sender_rc;
	char sender_route[320];    /* queued: the address it goes to ("" = the sender) */
	bool sender_list;
	int64_t now;
	/* the store step */
	struct store_op op;
	struct delivery dlv;
	int64_t mailbox_id;
	struct queue_rcpt_in qr;
	struct queue_msg_in qm;
	char **paths;
	size_t npaths;
};

static void result_free(struct result *r)
{
	job_free(r->j);
	free(r->u);
	free(r->dr);
	free(r->dsn_msg);
	free(r->dlv.uids);
	free(r->dlv.error);
	free(r->op.error);
	for (size_t i = 0; i < r->npaths; i++)
		free(r->paths[i]);
	free(r->paths);
	free(r);
}

static void result_finish(struct result *r, int status, const char *error)
{
	struct mta *m = r->m;
	struct msg_job *j = r->j;
	if (status != 0)
		log_error("%s: cannot record the delivery outcome: %s; the recipients stay "
			  "queued and will be tried again", j->qid, error ? error : "store error");
	for (size_t i = 0; i < j->nrcpts; i++)
		inflight_release(m, j->rcpts[i].rcpt_id);
	m->pending--;
	/* A retry earlier than the timer's: move the timer. */
	int64_t first = 0;
	for (size_t i = 0; i < r->nu; i++)
		if (!r->u[i].done && (first == 0 || r->u[i].next_try < first))
			first = status == 0 ? r->u[i].next_try : now_unix() + 60;
	if (first && (m->timer_due == 0 || first < m->timer_due))
		arm_timer(m, first);
	result_free(r);
	if (!m->stopping) {
		if (m->rescan && m->inflight_n < RESCAN_BELOW) {
			m->rescan = false;
			scan(m);
		}
	}
	maybe_stopped(m);
}

static int apply_updates(struct store_op *op, struct store_txn *t, char **error_r)
{
	struct result *r = op->arg;
	return store_txn_queue_update(t, r->u, r->nu, r->now, &r->paths, &r->npaths, error_r);
}

static void unlink_after(struct store_op *op, struct store *st)
{
	struct result *r = op->arg;
	store_unlink_bodies(st, r->paths, r->npaths);
}

static void op_done(struct store_op *op)
{
	struct result *r = op->arg;
	result_finish(r, op->status, op->error);
}

static int dsn_extra(struct delivery *d, struct store_txn *t, int64_t body_id, char ***unlink_r,
		     size_t *nunlink_r, char **error_r)
{
	struct result *r = d->extra_arg;
	if (r->qm.nrcpts > 0 && store_txn_queue_add(t, body_id, &r->qm, r->now, error_r) < 0)
		return -1;
	return store_txn_queue_update(t, r->u, r->nu, r->now, unlink_r, nunlink_r, error_r);
}

static void dsn_done(struct delivery *d)
{
	struct result *r = d->arg;
	struct mta *m = r->m;
	if (d->status == 0) {
		m->stats.dsn_sent++;
		log_info("%s: sender %s notification: %s (to <%s>%s)", r->j->qid,
			 r->kind, d->qid, r->j->sender, r->mailbox_id ? ", local" : ", queued");
		if (r->mailbox_id && d->uids) {
			server_recent_note(m->srv, r->mailbox_id, d->uids[0]);
			server_mailbox_changed(m->srv, r->mailbox_id);
		}
		if (r->qm.nrcpts > 0)
			mta_kick(m);
	}
	result_finish(r, d->status, d->error);
}

static void write_updates_only(struct result *r)
{
	r->op.apply = apply_updates;
	r->op.after_commit = unlink_after;
	r->op.done = op_done;
	r->op.arg = r;
	store_submit(r->m->srv->writer, &r->op);
}

/* Pool thread: read what the DSN returns of the original, compose it, and
 * find where the sender's mailbox is. */
static void dsn_work(void *arg)
{
	struct result *r = arg;
	struct msg_job *j = r->j;
	struct store *st = r->m->srv->store;
	char path[4096];
	char *orig = NULL;
	size_t olen = 0;

	store_msg_path(st, j->path, path, sizeof path);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd >= 0) {
		size_t want = DSN_RETURN_MAX + 1;
		orig = xmalloc(want);
		while (olen < want) {
			ssize_t n = pread(fd, orig + olen, want - olen, j->skip + (off_t)olen);
			if (n < 0 && errno == EINTR)
				continue;
			if (n <= 0)
				break;
			olen += (size_t)n;
		}
		close(fd);
	}
	char msgid[300], date_host[64];
	char boundary[64];
	queue_id_new(r->dsn_qid);
	snprintf(msgid, sizeof msgid, "<%s.dsn@%s>", r->dsn_qid, r->m->cfg->hostname);
	snprintf(boundary, sizeof boundary, "%s/%s", r->dsn_qid, r->m->cfg->hostname);
	(void)date_host;
	char postmaster[300], subject[1024];
	snprintf(postmaster, sizeof postmaster, "MAILER-DAEMON@%s", r->m->cfg->hostname);
	bool have_subject = orig && dsn_header_value(orig, olen, "Subject", subject,
						     sizeof subject) == 1;
	struct dsn_report rep = {
		.reporting_mta = r->m->cfg->hostname,
		.postmaster = postmaster,
		.to = j->sender,
		.envid = j->envid,
		.arrival = j->created,
		.now = r->now,
		.message_id = msgid,
		.boundary = boundary,
		.orig_subject = have_subject ? subject : NULL,
		.rcpts = r->dr,
		.nrcpts = r->ndr,
		.original = orig ? orig : "",
		.original_len = orig ? MIN(olen, (size_t)DSN_RETURN_MAX + 1) : 0,
		.return_full = j->ret != DSN_RET_HDRS,
		.return_max = DSN_RETURN_MAX,
	};
	if (dsn_compose(&rep, &r->dsn_msg, &r->dsn_len) < 0)
		r->dsn_msg = NULL;
	free(orig);
	/* Where the sender's mail goes: an account (its INBOX), a list (the
	 * notification is queued for the list, which sends it to its owner),
	 * an alias (its first target), or a remote address. */
	struct rcpt_expansion x;
	r->sender_rc = store_expand_rcpt(st, j->sender, r->m->cfg->recipient_delimiter[0], &x);
	if (r->sender_rc == 0) {
		r->sender_info.status = x.status;
		const struct rcpt_target *t = x.n > 0 ? &x.v[0] : NULL;
		for (size_t i = 0; i < x.n && t->kind != TARGET_LOCAL; i++)
			if (x.v[i].kind == TARGET_LOCAL)
				t = &x.v[i];
		if (t && t->kind == TARGET_LOCAL) {
			r->sender_info.mailbox_id = t->mailbox_id;
		} else if (t) {
			r->sender_info.status = RCPT_NOT_LOCAL;    /* queued */
			snprintf(r->sender_route, sizeof r->sender_route, "%s", t->address);
			r->sender_list = t->kind == TARGET_LIST;
		}
		rcpt_expansion_free(&x);
	}
}

static void dsn_composed(void *arg)
{
	struct result *r = arg;
	struct mta *m = r->m;
	struct msg_job *j = r->j;

	if (!r->dsn_msg || r->sender_rc < 0 ||
	    (r->sender_rc == 0 && r->sender_info.status == RCPT_UNKNOWN_USER)) {
		if (!r->dsn_msg || r->sender_rc < 0)
			log_error("%s: cannot make the notification for <%s> (%s); recording "
				  "the outcome without it", j->qid, j->sender,
				  !r->dsn_msg ? "composing failed" : "sender lookup failed");
		else
			log_info("%s: no notification: sender <%s> is a local address without "
				 "an account", j->qid, j->sender);
		write_updates_only(r);
		return;
	}
	struct delivery *d = &r->dlv;
	memset(d, 0, sizeof *d);
	memcpy(d->qid, r->dsn_qid, sizeof d->qid);
	/* Final delivery adds the (null) Return-Path; the queued copy skips
	 * it, as it does for any message. */
	d->head = "Return-Path: <>\r\n";
	d->head_len = strlen(d->head);
	d->data = r->dsn_msg;
	d->len = r->dsn_len;
	if (r->sender_info.status == RCPT_LOCAL) {
		r->mailbox_id = r->sender_info.mailbox_id;
		d->mailbox_ids = &r->mailbox_id;
		d->nmailboxes = 1;
	} else {
		/* A remote sender: the notification is queued from <> (RFC 3464
		 * 2: never answered by another notification). */
		r->qr.addr = r->sender_route[0] ? r->sender_route : j->sender;
		r->qr.expand = r->sender_list;
		r->qm.qid = d->qid;
		r->qm.sender = "";
		r->qm.skip = (int64_t)d->head_len;
		r->qm.rcpts = &r->qr;
		r->qm.nrcpts = 1;
	}
	d->internaldate = r->now;
	d->extra = dsn_extra;
	d->extra_arg = r;
	d->done = dsn_done;
	d->arg = r;
	store_deliver(m->srv->writer, d);
}

static const char *outcome_name(enum outcome o)
{
	switch (o) {
	case OUT_SENT: return "sent";
	case OUT_TEMP: return "deferred";
	case OUT_PERM: return "bounced";
	default: return "not attempted";
	}
}

void mta_job_done(struct msg_job *j)
{
	struct mta *m = j->m;
	const struct conf *cfg = m->cfg;
	struct result *r = xcalloc(1, sizeof *r);
	int64_t now = now_unix();
	bool failed = false, delayed = false;

	r->m = m;
	r->j = j;
	r->now = now;
	r->u = xcalloc(j->nrcpts, sizeof *r->u);
	r->dr = xcalloc(j->nrcpts, sizeof *r->dr);
	m->pending++;
	bool bounceable = j->sender[0] != '\0';
	for (size_t i = 0; i < j->nrcpts; i++) {
		struct rcpt_job *rc = &j->rcpts[i];
		struct queue_update *u = &r->u[r->nu++];
		u->rcpt_id = rc->rcpt_id;
		if (rc->outcome == OUT_TEMP && now - j->created >= cfg->queue_lifetime / 1000) {
			rc->outcome = OUT_PERM;
			char tmp[512];
			snprintf(tmp, sizeof tmp, "%.440s (gave up: in the queue for %" PRId64 " s)",
				 rc->reply, now - j->created);
			snprintf(rc->reply, sizeof rc->reply, "%s", tmp);
		}
		if (!j->local)   /* local deliveries are logged by the session */
			log_info("%s: to=<%s>, relay=%s, attempts=%d, status=%s (%s)", j->qid,
				 rc->addr, rc->remote[0] ? rc->remote : "none", rc->attempts + 1,
				 outcome_name(rc->outcome), rc->reply[0] ? rc->reply : "-");
		switch (rc->outcome) {
		case OUT_SENT:
			u->done = true;
			if (!j->local)
				m->stats.sent++;
			/* RFC 3461 5.2.2: NOTIFY=SUCCESS is answered by whoever
			 * delivers, or by us when the next server cannot carry the
			 * request on (no DSN extension): "relayed". */
			if (bounceable && (rc->notify & DSN_NOTIFY_SUCCESS) &&
			    (j->local || !j->remote_dsn)) {
				struct dsn_rcpt *d = &r->dr[r->ndr++];
				d->final_rcpt = rc->addr;
				d->orig_rcpt = rc->orcpt;
				d->action = j->expanded ? DSN_EXPANDED
					    : j->local ? DSN_DELIVERED : DSN_RELAYED;
				d->status = "2.0.0";
				d->remote_mta = rc->remote[0] ? rc->remote : NULL;
				d->diagnostic = rc->reply[0] ? rc->reply : NULL;
				d->last_attempt = now;
			}
			break;
		case OUT_PERM:
			u->done = true;
			m->stats.bounced++;
			if (bounceable && !(rc->notify & DSN_NOTIFY_NEVER) &&
			    (rc->notify == 0 || (rc->notify & DSN_NOTIFY_FAILURE))) {
				failed = true;
				struct dsn_rcpt *d = &r->dr[r->ndr++];
				d->final_rcpt = rc->addr;
				d->orig_rcpt = rc->orcpt;
				d->action = DSN_FAILED;
				d->status = rc->status[0] ? rc->status : "5.0.0";
				d->remote_mta = rc->remote[0] ? rc->remote : NULL;
				d->diagnostic = rc->reply[0] ? rc->reply : NULL;
				d->last_attempt = now;
			}
			break;
		case OUT_TEMP:
			u->attempted = true;
			u->next_try = now + backoff(cfg, rc->attempts + 1);
			u->last_reply = rc->reply;
			m->stats.deferred++;
			if (bounceable && !rc->warned && cfg->queue_delay_warning > 0 &&
			    now - j->created >= cfg->queue_delay_warning / 1000 &&
			    !(rc->notify & DSN_NOTIFY_NEVER) &&
			    (rc->notify == 0 || (rc->notify & DSN_NOTIFY_DELAY)) && !failed) {
				delayed = true;
				u->warned = true;
				struct dsn_rcpt *d = &r->dr[r->ndr++];
				d->final_rcpt = rc->addr;
				d->orig_rcpt = rc->orcpt;
				d->action = DSN_DELAYED;
				d->status = rc->status[0] ? rc->status : "4.0.0";
				d->remote_mta = rc->remote[0] ? rc->remote : NULL;
				d->diagnostic = rc->reply[0] ? rc->reply : NULL;
				d->last_attempt = now;
				d->will_retry_until = j->created + cfg->queue_lifetime / 1000;
			}
			break;
		case OUT_NONE:
			u->next_try = now;
			break;
		}
	}
	/* Failures win over delays in one message's notification (delays are
	 * reported later, if still due). */
	if (failed && delayed) {
		size_t k = 0;
		for (size_t i = 0; i < r->ndr; i++)
			if (r->dr[i].action != DSN_DELAYED)
				r->dr[k++] = r->dr[i];
		r->ndr = k;
		for (size_t i = 0; i < r->nu; i++)
			r->u[i].warned = false;
	}
	r->kind = failed ? "non-delivery" : delayed ? "delay" : "success";
	if (j->local)
		r->nu = 0;      /* nothing queued to update */
	if (r->ndr > 0) {
		server_job(m->srv, NULL, dsn_work, dsn_composed, r);
		return;
	}
	write_updates_only(r);
}

void mta_inflight_done(struct mta *m, int64_t rcpt_id)
{
	inflight_release(m, rcpt_id);
	m->pending--;
	if (!m->stopping && m->rescan && m->inflight_n < RESCAN_BELOW) {
		m->rescan = false;
		scan(m);
	}
	maybe_stopped(m);
}

void mta_report_delivered(struct mta *m, const struct delivered_report *rep)
{
	if (m->stopping && m->stopped == NULL) {
		/* Shut down already: the store writer may be gone. */
		log_warn("%s: shutting down: no success notification to <%s> for %zu "
			 "recipient(s)", rep->qid, rep->sender, rep->nrcpts);
		return;
	}
	struct msg_job *j = xcalloc(1, sizeof *j);
	j->m = m;
	memcpy(j->qid, rep->qid, sizeof j->qid);
	snprintf(j->path, sizeof j->path, "%s", rep->path);
	j->skip = rep->skip;
	j->created = now_unix();
	j->ret = rep->ret;
	j->envid = rep->envid ? xstrdup(rep->envid) : NULL;
	j->sender = xstrdup(rep->sender);
	j->local = true;
	j->expanded = rep->expanded;
	j->rcpts = xcalloc(rep->nrcpts, sizeof *j->rcpts);
	j->nrcpts = rep->nrcpts;
	for (size_t i = 0; i < rep->nrcpts; i++) {
		struct rcpt_job *rc = &j->rcpts[i];
		rc->addr = xstrdup(rep->rcpts[i]);
		rc->orcpt = rep->orcpts[i] ? xstrdup(rep->orcpts[i]) : NULL;
		rc->notify = DSN_NOTIFY_SUCCESS;
		rc->outcome = OUT_SENT;
		snprintf(rc->status, sizeof rc->status, "2.0.0");
		snprintf(rc->remote, sizeof rc->remote, "%s", m->cfg->hostname);
		snprintf(rc->reply, sizeof rc->reply, "%s", rep->expanded
			 ? "250 2.0.0 sent on to the members of the list"
			 : "250 2.0.0 delivered to the mailbox");
	}
	mta_job_done(j);
}

/* ---- start and stop ---- */

static SSL_CTX *client_ctx(const char *ca_file)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
	if (!ctx)
		return NULL;
	SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
	/* Opportunistic TLS (RFC 3207 with no policy): encrypt, do not
	 * authenticate; the verification result is logged. */
	SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
	if (ca_file[0] == '\0')
		SSL_CTX_set_default_verify_paths(ctx);
	else if (SSL_CTX_load_verify_locations(ctx, ca_file, NULL) != 1)
		log_warn("tls: cannot load smtp_out_ca_file %s: no certificate can be verified "
			 "(MTA-STS deliveries will wait)", ca_file);
	/* DANE (RFC 7672) per connection when the MX has TLSA records. */
	if (SSL_CTX_dane_enable(ctx) <= 0)
		log_warn("tls: OpenSSL cannot do DANE here; TLSA records are not checked");
	return ctx;
}

/* smtp_out_bind: "192.0.2.1", "2001:db8::1" or both, comma-separated. */
static int set_bind(struct mta *m, const char *spec, char **error_r)
{
	char *list = xstrdup(spec), *save = NULL;
	int ret = 0;
	for (char *a = strtok_r(list, ", ", &save); a; a = strtok_r(NULL, ", ", &save)) {
		if (inet_pton(AF_INET, a, &m->reg.bind4.sin_addr) == 1) {
			m->reg.bind4.sin_family = AF_INET;
		} else if (inet_pton(AF_INET6, a, &m->reg.bind6.sin6_addr) == 1) {
			m->reg.bind6.sin6_family = AF_INET6;
		} else {
			*error_r = xasprintf("smtp_out_bind: \"%s\" is not an IPv4 or IPv6 address",
					     a);
			ret = -1;
			break;
		}
	}
	free(list);
	return ret;
}

struct mta *mta_start(uv_loop_t *loop, struct server *srv, char **error_r)
{
	struct mta *m = xcalloc(1, sizeof *m);
	const struct conf *cfg = srv->cfg;
	m->loop = loop;
	m->srv = srv;
	m->cfg = cfg;
	const char *ta = cfg->dns_trust_anchor;
	if (ta[0] != '\0' && access(ta, R_OK) != 0) {
		log_warn("dns: trust anchor %s cannot be read (%s): DNS answers are not "
			 "DNSSEC-validated; install dns-root-data or set dns_trust_anchor", ta,
			 strerror(errno));
		ta = "";
	}
	m->dns = dns_new(loop, cfg->dns_server, ta, error_r);
	if (!m->dns) {
		free(m);
		return NULL;
	}
	m->tls = client_ctx(cfg->smtp_out_ca_file);
	char cwhy[256];
	if (sts_fetch_init(cwhy, sizeof cwhy) < 0)
		log_warn("mta-sts: libcurl does not start (%s): policies cannot be fetched", cwhy);
	if (cfg->relayhost_user[0] != '\0') {
		/* Read once at start (before the loop serves anyone). */
		FILE *f = cfg->relayhost_password_file[0] ? fopen(cfg->relayhost_password_file, "r")
							 : NULL;
		char line[1024];
		if (!f || !fgets(line, sizeof line, f)) {
			*error_r = xasprintf("relayhost_user is set but the password cannot be read "
					     "from relayhost_password_file \"%s\"%s%s",
					     cfg->relayhost_password_file, errno ? ": " : "",
					     errno ? strerror(errno) : "");
			if (f)
				fclose(f);
			dns_free(&m->dns);
			if (m->tls)
				SSL_CTX_free(m->tls);
			free(m);
			return NULL;
		}
		fclose(f);
		line[strcspn(line, "\r\n")] = '\0';
		m->relay_password = xstrdup(line);
		explicit_bzero(line, sizeof line);
	}
	m->reg.loop = loop;
	m->reg.server = srv;
	m->reg.max_conns = SIZE_MAX;
	m->reg.max_per_ip = SIZE_MAX;
	if (set_bind(m, cfg->smtp_out_bind, error_r) < 0) {
		mta_free(&m);
		return NULL;
	}
	uv_timer_init(loop, &m->timer);
	m->timer.data = m;
	m->timer_open = true;
	if (cfg->mta_sts)
		sts_load(m);
	scan(m);
	return m;
}

static void timer_closed(uv_handle_t *h)
{
	(void)h;
}

void mta_shutdown(struct mta *m, void (*done)(void *arg), void *arg)
{
	m->stopping = true;
	m->stopped = done;
	m->stopped_arg = arg;
	if (m->timer_open) {
		uv_timer_stop(&m->timer);
		uv_close((uv_handle_t *)&m->timer, timer_closed);
		m->timer_open = false;
	}
	for (struct dest *d = m->dests, *next; d; d = next) {
		next = d->next;
		if (d->lookup) {
			dns_mx_cancel(d->lookup);
			d->lookup = NULL;
			d->resolving = false;
		}
		if (d->sessions == 0) {
			dest_fail_all(d, OUT_NONE, "4.3.2", "not attempted: shutting down");
			dest_free(d);
		}
	}
	smtp_out_close_all(m);
	maybe_stopped(m);
}

void mta_busy(const struct mta *m, char *out, size_t outsz)
{
	snprintf(out, outsz, "sessions=%zu pending=%zu scanning=%s stop_armed=%s reported=%s",
		 m->sessions, m->pending, m->scanning ? "yes" : "no",
		 m->stop_armed ? "yes" : "no", m->stopped ? "no" : "yes");
}

void mta_cut(struct mta *m)
{
	registry_close_all(&m->reg, "shutdown timeout");
}

void mta_free(struct mta **mp)
{
	struct mta *m = *mp;
	if (!m)
		return;
	*mp = NULL;
	while (m->dests)
		dest_free(m->dests);
	dns_free(&m->dns);
	if (m->tls)
		SSL_CTX_free(m->tls);
	if (m->relay_password) {
		explicit_bzero(m->relay_password, strlen(m->relay_password));
		free(m->relay_password);
	}
	sts_cache_free(m);
	sts_fetch_cleanup();      /* after the last fetch: the pool is idle by now */
	free(m->inflight);
	free(m->released);
	free(m);
}

void mta_get_stats(const struct mta *m, struct mta_stats *st)
{
	*st = m->stats;
}
