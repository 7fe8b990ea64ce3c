/* imap_cache.c - in-memory mailbox snapshots for SELECT.  See imap_cache.h. */
#include "proto/imap/imap_cache.h"

#include <stdlib.h>
#include <string.h>

#include "core/conn.h"
#include "core/log.h"
#include "core/util.h"
#include "proto/server.h"

struct cache_waiter {
	struct conn *c;
	void (*done)(void *arg, int rc, struct imap_snapshot *snap);
	void *arg;
	struct cache_waiter *next;
};

struct cache_entry {
	int64_t mailbox_id;
	bool loaded;
	bool stale;             /* changed since the last sync */
	bool syncing;
	uint32_t uidvalidity, uidnext;
	uint64_t modseq;
	struct msg_state *msgs;
	size_t n, cap;
	uint64_t last_used;
	struct cache_waiter *waiters, **waiters_tail;
	struct cache_entry *next;
};

struct imap_cache {
	struct cache_entry *head;
	size_t total;           /* cached messages, all entries */
};

struct sync_job {
	struct server *srv;
	struct cache_entry *e;
	uint64_t since;
	int rc;
	struct mailbox_info mb;
	struct msg_state *states;
	size_t n;
	uint32_t *vanished;
	size_t nvanished;
};

static struct imap_cache *cache_of(struct server *srv)
{
	if (!srv->imap_cache)
		srv->imap_cache = xcalloc(1, sizeof(struct imap_cache));
	return srv->imap_cache;
}

static void on_changed(void *arg)
{
	struct cache_entry *e = arg;
	e->stale = true;
}

static void entry_clear(struct cache_entry *e)
{
	store_states_free(e->msgs, e->n);
	e->msgs = NULL;
	e->n = e->cap = 0;
	e->loaded = false;
}

static void entry_unlink(struct server *srv, struct cache_entry *e)
{
	struct imap_cache *ca = cache_of(srv);

	for (struct cache_entry **pp = &ca->head; *pp; pp = &(*pp)->next)
		if (*pp == e) {
			*pp = e->next;
			break;
		}
	ca->total -= e->n;
	server_unwatch(srv, e->mailbox_id, e);
	entry_clear(e);
	free(e);
}

/* Drop idle entries, least recently used first, past the cap. */
static void evict(struct server *srv, struct cache_entry *keep)
{
	struct imap_cache *ca = cache_of(srv);

	while (ca->total > IMAP_CACHE_MESSAGES_MAX) {
		struct cache_entry *old = NULL;
		for (struct cache_entry *e = ca->head; e; e = e->next)
			if (e != keep && !e->syncing && !e->waiters &&
			    (!old || e->last_used < old->last_used))
				old = e;
		if (!old)
			return;
		entry_unlink(srv, old);
	}
}

static struct msg_state *copy_states(const struct msg_state *v, size_t n)
{
	struct msg_state *c = xreallocarray(NULL, n ? n : 1, sizeof *c);
	if (n)
		memcpy(c, v, n * sizeof *c);
	for (size_t i = 0; i < n; i++)
		if (c[i].keywords)
			c[i].keywords = xstrdup(c[i].keywords);
	return c;
}

static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
	return x < y ? -1 : x > y;
}

/* Bring e up to date with what the job read. */
static void apply(struct server *srv, struct cache_entry *e, struct sync_job *j)
{
	struct imap_cache *ca = cache_of(srv);

	ca->total -= e->n;
	if (j->since == 0 || j->mb.uidvalidity != e->uidvalidity) {
		entry_clear(e);
		e->msgs = j->states;
		e->n = e->cap = j->n;
		j->states = NULL;
		j->n = 0;
	} else {
		if (j->nvanished > 0) {
			qsort(j->vanished, j->nvanished, sizeof *j->vanished, cmp_u32);
			size_t w = 0, v = 0;
			for (size_t i = 0; i < e->n; i++) {
				while (v < j->nvanished && j->vanished[v] < e->msgs[i].uid)
					v++;
				if (v < j->nvanished && j->vanished[v] == e->msgs[i].uid) {
					free(e->msgs[i].keywords);
					continue;
				}
				e->msgs[w++] = e->msgs[i];
			}
			e->n = w;
		}
		for (size_t k = 0; k < j->n; k++) {
			struct msg_state *st = &j->states[k];
			uint32_t last = e->n ? e->msgs[e->n - 1].uid : 0;
			if (st->uid > last) {
				if (e->n == e->cap) {
					e->cap = e->cap ? e->cap * 2 : 64;
					e->msgs = xreallocarray(e->msgs, e->cap, sizeof *e->msgs);
				}
				e->msgs[e->n++] = *st;
				st->keywords = NULL;
				continue;
			}
			bool found;
			size_t i = store_states_find(e->msgs, e->n, st->uid, &found);
			if (!found)
				continue;
			free(e->msgs[i].keywords);
			e->msgs[i] = *st;
			st->keywords = NULL;
		}
	}
	e->uidvalidity = j->mb.uidvalidity;
	e->uidnext = j->mb.uidnext;
	e->modseq = j->mb.highestmodseq;
	e->loaded = true;
	ca->total += e->n;
}

static void sync_work(void *arg)
{
	struct sync_job *j = arg;
	j->rc = store_mailbox_sync(j->srv->store, j->e->mailbox_id, j->since, &j->mb, &j->states,
				   &j->n, &j->vanished, &j->nvanished);
}

static void start_sync(struct server *srv, struct cache_entry *e);

static void serve_waiters(struct server *srv, struct cache_entry *e, int rc)
{
	struct cache_waiter *w = e->waiters;

	e->waiters = NULL;
	e->waiters_tail = &e->waiters;
	while (w) {
		struct cache_waiter *next = w->next;
		struct imap_snapshot snap;
		memset(&snap, 0, sizeof snap);
		if (rc == 1) {
			snap.uidvalidity = e->uidvalidity;
			snap.uidnext = e->uidnext;
			snap.highestmodseq = e->modseq;
			snap.states = copy_states(e->msgs, e->n);
			snap.n = e->n;
		}
		w->done(w->arg, rc, &snap);
		if (w->c)
			conn_release(w->c);
		free(w);
		w = next;
	}
	(void)srv;
}

static void sync_done(void *arg)
{
	struct sync_job *j = arg;
	struct server *srv = j->srv;
	struct cache_entry *e = j->e;

	e->syncing = false;
	if (j->rc == 1)
		apply(srv, e, j);
	store_states_free(j->states, j->n);
	free(j->vanished);
	mailbox_info_free(&j->mb);
	int rc = j->rc;
	free(j);
	if (rc == 1 && e->stale && e->waiters) {
		/* Changed again while we read: read the rest first. */
		start_sync(srv, e);
		return;
	}
	serve_waiters(srv, e, rc);
	if (rc != 1)
		entry_unlink(srv, e);  /* deleted mailbox or error: forget it */
	else
		evict(srv, NULL);
}

static void start_sync(struct server *srv, struct cache_entry *e)
{
	struct sync_job *j = xcalloc(1, sizeof *j);
	j->srv = srv;
	j->e = e;
	j->since = e->loaded ? e->modseq : 0;
	e->stale = false;
	e->syncing = true;
	server_job(srv, NULL, sync_work, sync_done, j);
}

void imap_cache_get(struct server *srv, struct conn *c, int64_t mailbox_id,
		    void (*done)(void *arg, int rc, struct imap_snapshot *snap), void *arg)
{
	struct imap_cache *ca = cache_of(srv);
	struct cache_entry *e;

	for (e = ca->head; e; e = e->next)
		if (e->mailbox_id == mailbox_id)
			break;
	if (!e) {
		e = xcalloc(1, sizeof *e);
		e->mailbox_id = mailbox_id;
		e->waiters_tail = &e->waiters;
		e->next = ca->head;
		ca->head = e;
		server_watch(srv, mailbox_id, on_changed, e);
	}
	e->last_used = now_ms();
	struct cache_waiter *w = xcalloc(1, sizeof *w);
	w->c = c;
	w->done = done;
	w->arg = arg;
	if (c)
		conn_hold(c);
	*e->waiters_tail = w;
	e->waiters_tail = &w->next;
	if (e->syncing)
		return;
	if (e->loaded && !e->stale) {
		serve_waiters(srv, e, 1);
		return;
	}
	start_sync(srv, e);
}

void imap_cache_free(struct server *srv)
{
	struct imap_cache *ca = srv->imap_cache;

	if (!ca)
		return;
	while (ca->head) {
		struct cache_entry *e = ca->head;
		ca->head = e->next;
		entry_clear(e);
		free(e);
	}
	free(ca);
	srv->imap_cache = NULL;
}
