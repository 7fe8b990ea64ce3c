/* server.c - helpers every protocol session uses: worker jobs, the
 * plaintext-auth rule, the POP3 maildrop lock. */
#include "proto/server.h"

#include <stdlib.h>
#include <string.h>

#include "core/conf.h"
#include "core/conn.h"
#include "core/util.h"

struct job {
	uv_work_t work;
	struct server *srv;
	struct conn *c;
	void (*fn)(void *arg);
	void (*done)(void *arg);
	void *arg;
	bool auth;              /* counts against SERVER_AUTH_PARALLEL */
	struct job *next;       /* auth queue */
};

static void auth_next(struct server *srv);

static void job_work(uv_work_t *w)
{
	struct job *j = w->data;
	j->fn(j->arg);
}

static void job_after(uv_work_t *w, int status)
{
	struct job *j = w->data;
	struct server *srv = j->srv;
	bool auth = j->auth;
	(void)status; /* UV_ECANCELED cannot happen: we never cancel */
	j->done(j->arg);
	if (j->c)
		conn_release(j->c);
	free(j);
	if (auth) {
		srv->auth_running--;
		auth_next(srv);
	}
}

static void job_start(struct job *j)
{
	int r = uv_queue_work(j->srv->loop, &j->work, job_work, job_after);
	if (r != 0) {
		/* Only fails on bad arguments: run inline rather than lose it. */
		j->fn(j->arg);
		job_after(&j->work, 0);
	}
}

static void auth_next(struct server *srv)
{
	while (srv->auth_running < SERVER_AUTH_PARALLEL && srv->auth_head) {
		struct job *j = srv->auth_head;
		srv->auth_head = j->next;
		if (srv->auth_head == NULL)
			srv->auth_tail = NULL;
		if (j->c && conn_is_closed(j->c)) {
			/* Nobody is waiting for the answer any more. */
			j->auth = false;
			job_after(&j->work, 0);
			continue;
		}
		srv->auth_running++;
		job_start(j);
	}
}

static struct job *job_new(struct server *srv, struct conn *c, void (*work)(void *arg),
			   void (*done)(void *arg), void *arg)
{
	struct job *j = xcalloc(1, sizeof *j);
	j->work.data = j;
	j->srv = srv;
	j->c = c;
	j->fn = work;
	j->done = done;
	j->arg = arg;
	if (c)
		conn_hold(c);
	return j;
}

void server_auth_job(struct server *srv, struct conn *c, void (*work)(void *arg),
		     void (*done)(void *arg), void *arg)
{
	struct job *j = job_new(srv, c, work, done, arg);
	j->auth = true;
	if (srv->auth_tail)
		srv->auth_tail->next = j;
	else
		srv->auth_head = j;
	srv->auth_tail = j;
	auth_next(srv);
}

void server_job(struct server *srv, struct conn *c, void (*work)(void *arg),
		void (*done)(void *arg), void *arg)
{
	job_start(job_new(srv, c, work, done, arg));
}

bool server_plaintext_ok(const struct server *srv, const struct conn *c)
{
	if (c->tls)
		return true;
	switch (srv->cfg->plaintext_auth) {
	case PLAINTEXT_ALWAYS:
		return true;
	case PLAINTEXT_LOOPBACK:
		return c->loopback;
	case PLAINTEXT_NEVER:
	default:
		return false;
	}
}

/* ---- marks: failed logins, relay grants ---- */

static struct server_mark *mark_slot(struct server_mark **tab, const char *key, bool create)
{
	if (!*tab) {
		if (!create)
			return NULL;
		*tab = xcalloc(SERVER_MARKS, sizeof **tab);
	}
	uint64_t h = 1469598103934665603ull;
	for (const unsigned char *p = (const unsigned char *)key; *p; p++)
		h = (h ^ *p) * 1099511628211ull;
	struct server_mark *m = &(*tab)[h % SERVER_MARKS];
	if (strncmp(m->key, key, sizeof m->key) != 0) {
		if (!create)
			return NULL;
		memset(m, 0, sizeof *m);
		snprintf(m->key, sizeof m->key, "%s", key);
	}
	return m;
}

#define FAIL_WINDOW_MS (15 * 60 * 1000)

static unsigned fail_count(struct server *srv, const char *key, uint64_t now)
{
	struct server_mark *m = mark_slot(&srv->auth_fails, key, true);
	if (m->n && now - m->t > FAIL_WINDOW_MS)
		m->n = 0;
	m->n++;
	m->t = now;
	return m->n;
}

uint64_t server_auth_failed(struct server *srv, const char *ip, const char *account)
{
	uint64_t now = now_ms();
	unsigned n = 0;
	char key[SERVER_MARK_KEY];
	if (ip && ip[0]) {
		snprintf(key, sizeof key, "ip:%s", ip);
		n = fail_count(srv, key, now);
	}
	if (account && account[0]) {
		snprintf(key, sizeof key, "user:%s", account);
		unsigned k = fail_count(srv, key, now);
		n = k > n ? k : n;
	}
	if (n <= 1)
		return 0;
	uint64_t max = (uint64_t)srv->cfg->auth_fail_delay_max;
	uint64_t d = 250;
	for (unsigned i = 2; i < n && d < max; i++)
		d *= 2;
	return d < max ? d : max;
}

void server_auth_succeeded(struct server *srv, const char *ip, const char *account)
{
	(void)ip;
	if (account && account[0]) {
		char key[SERVER_MARK_KEY];
		snprintf(key, sizeof key, "user:%s", account);
		struct server_mark *m = mark_slot(&srv->auth_fails, key, false);
		if (m)
			m->n = 0;
	}
}

void server_relay_grant(struct server *srv, const char *ip)
{
	if (srv->cfg->pop_before_smtp <= 0 || !ip || !ip[0])
		return;
	struct server_mark *m = mark_slot(&srv->relay_ok, ip, true);
	m->n = 1;
	m->t = now_ms();
}

bool server_relay_granted(struct server *srv, const char *ip)
{
	if (srv->cfg->pop_before_smtp <= 0 || !ip || !ip[0])
		return false;
	struct server_mark *m = mark_slot(&srv->relay_ok, ip, false);
	return m && m->n && now_ms() - m->t <= (uint64_t)srv->cfg->pop_before_smtp;
}

bool server_pop3_lock(struct server *srv, int64_t account_id)
{
	for (size_t i = 0; i < srv->pop3_nlocked; i++)
		if (srv->pop3_locked[i] == account_id)
			return false;
	if (srv->pop3_nlocked == srv->pop3_caplocked) {
		srv->pop3_caplocked = srv->pop3_caplocked ? srv->pop3_caplocked * 2 : 16;
		srv->pop3_locked = xreallocarray(srv->pop3_locked, srv->pop3_caplocked,
						 sizeof *srv->pop3_locked);
	}
	srv->pop3_locked[srv->pop3_nlocked++] = account_id;
	return true;
}

void server_pop3_unlock(struct server *srv, int64_t account_id)
{
	for (size_t i = 0; i < srv->pop3_nlocked; i++) {
		if (srv->pop3_locked[i] == account_id) {
			srv->pop3_locked[i] = srv->pop3_locked[--srv->pop3_nlocked];
			return;
		}
	}
}

/* ---- mailbox watches (IMAP) ---- */

void server_watch(struct server *srv, int64_t mailbox_id, void (*cb)(void *arg), void *arg)
{
	if (srv->nwatches == srv->capwatches) {
		srv->capwatches = srv->capwatches ? srv->capwatches * 2 : 64;
		srv->watches = xreallocarray(srv->watches, srv->capwatches, sizeof *srv->watches);
	}
	srv->watches[srv->nwatches++] = (struct server_watch){mailbox_id, cb, arg};
}

void server_unwatch(struct server *srv, int64_t mailbox_id, void *arg)
{
	for (size_t i = 0; i < srv->nwatches; i++) {
		if (srv->watches[i].mailbox_id == mailbox_id && srv->watches[i].arg == arg) {
			srv->watches[i] = srv->watches[--srv->nwatches];
			return;
		}
	}
}

void server_mailbox_changed(struct server *srv, int64_t mailbox_id)
{
	server_mailbox_changed_by(srv, mailbox_id, NULL);
}

void server_mailbox_changed_by(struct server *srv, int64_t mailbox_id, const void *self)
{
	/* A callback never (un)watches synchronously, but be safe: iterate
	 * by index over a count taken first, re-checking the bound. */
	size_t n = srv->nwatches;
	for (size_t i = 0; i < n && i < srv->nwatches; i++)
		if (srv->watches[i].mailbox_id == mailbox_id && srv->watches[i].arg != self)
			srv->watches[i].cb(srv->watches[i].arg);
	if (srv->mail_changed)
		srv->mail_changed(srv, srv->mail_changed_arg);
}

void server_account_watch(struct server *srv, int64_t account_id, void (*cb)(void *arg),
			  void *arg)
{
	if (srv->nacct_watches == srv->capacct_watches) {
		srv->capacct_watches = srv->capacct_watches ? srv->capacct_watches * 2 : 16;
		srv->acct_watches = xreallocarray(srv->acct_watches, srv->capacct_watches,
						  sizeof *srv->acct_watches);
	}
	srv->acct_watches[srv->nacct_watches++] = (struct server_watch){account_id, cb, arg};
}

void server_account_unwatch(struct server *srv, int64_t account_id, void *arg)
{
	for (size_t i = 0; i < srv->nacct_watches; i++) {
		struct server_watch *w = &srv->acct_watches[i];
		if (w->mailbox_id == account_id && w->arg == arg) {
			*w = srv->acct_watches[--srv->nacct_watches];
			return;
		}
	}
}

void server_account_changed(struct server *srv, int64_t account_id)
{
	size_t n = srv->nacct_watches;
	for (size_t i = 0; i < n && i < srv->nacct_watches; i++)
		if (srv->acct_watches[i].mailbox_id == account_id)
			srv->acct_watches[i].cb(srv->acct_watches[i].arg);
}

void server_watch_free(struct server *srv)
{
	FREE(srv->watches);
	srv->nwatches = srv->capwatches = 0;
	FREE(srv->acct_watches);
	srv->nacct_watches = srv->capacct_watches = 0;
	FREE(srv->recent);
	srv->nrecent = srv->caprecent = 0;
	for (size_t i = 0; i < srv->nimap_counts; i++)
		free(srv->imap_counts[i].key);
	FREE(srv->imap_counts);
	srv->nimap_counts = srv->capimap_counts = 0;
	FREE(srv->auth_fails);
	FREE(srv->relay_ok);
}

uint32_t server_recent_claim(struct server *srv, int64_t mailbox_id, uint32_t uidnext)
{
	for (size_t i = 0; i < srv->nrecent; i++) {
		if (srv->recent[i].mailbox_id == mailbox_id) {
			uint32_t first = srv->recent[i].first;
			if (uidnext > first)
				srv->recent[i].first = uidnext;
			return first;
		}
	}
	if (srv->nrecent == srv->caprecent) {
		srv->caprecent = srv->caprecent ? srv->caprecent * 2 : 64;
		srv->recent = xreallocarray(srv->recent, srv->caprecent, sizeof *srv->recent);
	}
	srv->recent[srv->nrecent++] = (struct server_recent){mailbox_id, uidnext};
	return uidnext;
}

void server_recent_note(struct server *srv, int64_t mailbox_id, uint32_t uid)
{
	for (size_t i = 0; i < srv->nrecent; i++)
		if (srv->recent[i].mailbox_id == mailbox_id)
			return; /* the mark is already at or below any new UID */
	if (srv->nrecent == srv->caprecent) {
		srv->caprecent = srv->caprecent ? srv->caprecent * 2 : 64;
		srv->recent = xreallocarray(srv->recent, srv->caprecent, sizeof *srv->recent);
	}
	srv->recent[srv->nrecent++] = (struct server_recent){mailbox_id, uid};
}

int server_count_add(struct server *srv, const char *key, int delta)
{
	for (size_t i = 0; i < srv->nimap_counts; i++) {
		struct server_count *e = &srv->imap_counts[i];
		if (strcmp(e->key, key) == 0) {
			e->n += delta;
			int n = e->n;
			if (n <= 0) {
				free(e->key);
				*e = srv->imap_counts[--srv->nimap_counts];
			}
			return n;
		}
	}
	if (delta <= 0)
		return 0;
	if (srv->nimap_counts == srv->capimap_counts) {
		srv->capimap_counts = srv->capimap_counts ? srv->capimap_counts * 2 : 64;
		srv->imap_counts = xreallocarray(srv->imap_counts, srv->capimap_counts,
						 sizeof *srv->imap_counts);
	}
	srv->imap_counts[srv->nimap_counts++] = (struct server_count){xstrdup(key), delta};
	return delta;
}

/* ---- delayed answers ---- */

struct delayed {
	uv_timer_t t;
	struct conn *c;
	void (*fire)(struct conn *c, const char *line);
	char *line;
};

static void delayed_closed(uv_handle_t *h)
{
	struct delayed *d = h->data;
	conn_release(d->c);
	free(d->line);
	free(d);
}

static void delayed_fire(uv_timer_t *t)
{
	struct delayed *d = t->data;
	if (!conn_is_closed(d->c))
		d->fire(d->c, d->line);
	uv_close((uv_handle_t *)&d->t, delayed_closed);
}

void server_delay(struct server *srv, struct conn *c, uint64_t delay_ms,
		  void (*fire)(struct conn *c, const char *line), const char *line)
{
	struct delayed *d = xcalloc(1, sizeof *d);
	d->c = c;
	d->fire = fire;
	d->line = xstrdup(line);
	conn_hold(c);
	conn_pause(c);
	uv_timer_init(srv->loop, &d->t);
	d->t.data = d;
	uv_timer_start(&d->t, delayed_fire, delay_ms, 0);
}
