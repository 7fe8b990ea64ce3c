/* sts.c - MTA-STS (RFC 8461) for the queue manager: which policy applies
 * to a destination domain.
 *
 * For a domain about to get sessions: the _mta-sts TXT record (libunbound,
 * dns_txt); when it names a policy id the cache does not have, the address
 * of mta-sts.DOMAIN (dns_host, the same resolver) and then the HTTPS fetch
 * (sts_fetch.c, libcurl, on the thread pool).  The policy is kept in memory
 * for its max_age; a TXT record that disappears or a fetch that fails
 * leaves a cached policy in force until it expires (RFC 8461 5.1: that is
 * what protects against an attacker who blocks the fetch).  No record and
 * nothing cached: no policy.  Fetched policies are also written to the
 * store (sts_policies) and read back at start, so a restart does not open
 * that window either.
 *
 * What the policy means for the sessions (smtp_out.c): mode enforce -- only
 * MX hosts matching its mx patterns, STARTTLS required, the certificate
 * verified (WebPKI or smtp_out_ca_file) for the MX host name, failures
 * defer; mode testing -- the same checks logged, mail sent anyway. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/buf.h"
#include "core/conf.h"
#include "core/log.h"
#include "core/util.h"
#include "mta/mta_private.h"
#include "mta/sts_fetch.h"
#include "proto/server.h"
#include "store/store.h"
#include "store/writer.h"

#define STS_CACHE_MAX 10000         /* domains remembered */
#define STS_FETCH_MS 30000          /* one policy fetch, all of it */

struct sts_entry {
	char domain[256];
	char id[MTASTS_ID_MAX + 1];
	int64_t expires;            /* unix time */
	struct mtasts_policy pol;
	struct sts_entry *next;
};

struct sts_lookup {
	struct mta *m;
	char domain[256];
	char id[MTASTS_ID_MAX + 1];
	struct dns_mx_lookup *dns;
	bool fetching;              /* a pool job holds this lookup */
	bool cancelled;
	char addr[64];
	void (*cb)(void *arg, const struct mtasts_policy *p);
	void *arg;
	/* the fetch */
	int rc;
	char why[512];
	struct mtasts_policy pol;
};

static struct sts_entry *cache_find(struct mta *m, const char *domain)
{
	for (struct sts_entry *e = m->sts_cache; e; e = e->next)
		if (strcasecmp(e->domain, domain) == 0)
			return e;
	return NULL;
}

static void cache_put(struct mta *m, const char *domain, const char *id,
		      const struct mtasts_policy *p, int64_t expires)
{
	struct sts_entry *e = cache_find(m, domain);
	if (!e) {
		if (m->sts_cached >= STS_CACHE_MAX) {
			/* Drop the first entry that has expired, or else the oldest. */
			struct sts_entry **pp = &m->sts_cache, **victim = NULL;
			int64_t now = now_unix();
			for (; *pp; pp = &(*pp)->next) {
				victim = pp;
				if ((*pp)->expires < now)
					break;
			}
			if (victim) {
				struct sts_entry *v = *victim;
				*victim = v->next;
				free(v);
				m->sts_cached--;
			}
		}
		e = xcalloc(1, sizeof *e);
		snprintf(e->domain, sizeof e->domain, "%s", domain);
		e->next = m->sts_cache;
		m->sts_cache = e;
		m->sts_cached++;
	}
	snprintf(e->id, sizeof e->id, "%s", id);
	e->pol = *p;
	e->expires = expires;
}

/* The policy as text mtasts_parse_policy reads back. */
static char *format_policy(const struct mtasts_policy *p)
{
	static const char *const modes[] = {"none", "testing", "enforce"};
	struct buf b;
	buf_init(&b, MTASTS_BODY_MAX);
	buf_printf(&b, "version: STSv1\nmode: %s\nmax_age: %u\n", modes[p->mode], p->max_age);
	for (size_t i = 0; i < p->n_mx; i++)
		buf_printf(&b, "mx: %s\n", p->mx[i]);
	size_t len;
	return buf_steal(&b, &len);
}

/* ---- kept in the store ---- */

struct sts_save {
	struct mta *m;
	struct store_op op;
	char domain[256];
	char id[MTASTS_ID_MAX + 1];
	int64_t expires;
	char *text;
};

static int save_apply(struct store_op *op, struct store_txn *t, char **error_r)
{
	struct sts_save *v = op->arg;
	return store_txn_sts_put(t, v->domain, v->id, v->expires, v->text, error_r);
}

static void save_done(struct store_op *op)
{
	struct sts_save *v = op->arg;
	if (op->status != 0)
		log_warn("mta-sts: %s: cannot save the policy (%s); it is used, but not kept "
			 "across a restart", v->domain, op->error ? op->error : "store error");
	mta_pending_done(v->m);
	free(op->error);
	free(v->text);
	free(v);
}

static void save(struct mta *m, const char *domain, const char *id,
		 const struct mtasts_policy *p, int64_t expires)
{
	struct sts_save *v = xcalloc(1, sizeof *v);
	v->m = m;
	snprintf(v->domain, sizeof v->domain, "%s", domain);
	snprintf(v->id, sizeof v->id, "%s", id);
	v->expires = expires;
	v->text = format_policy(p);
	v->op.apply = save_apply;
	v->op.done = save_done;
	v->op.arg = v;
	m->pending++;
	store_submit(m->srv->writer, &v->op);
}

struct sts_load {
	struct mta *m;
	struct store_sts *v;
	size_t n;
	char *error;
	int rc;
};

static void load_work(void *arg)
{
	struct sts_load *l = arg;
	l->rc = store_sts_list(l->m->srv->store, now_unix(), &l->v, &l->n, &l->error);
}

static void load_done(void *arg)
{
	struct sts_load *l = arg;
	struct mta *m = l->m;
	size_t kept = 0;
	if (l->rc < 0)
		log_warn("mta-sts: cannot read the saved policies: %s; they are fetched again",
			 l->error ? l->error : "store error");
	for (size_t i = 0; i < l->n; i++) {
		struct mtasts_policy p;
		const char *why;
		if (mtasts_parse_policy(l->v[i].policy, strlen(l->v[i].policy), &p, &why) < 0)
			continue;
		/* A policy fetched meanwhile is newer: keep it. */
		if (!cache_find(m, l->v[i].domain)) {
			cache_put(m, l->v[i].domain, l->v[i].id, &p, l->v[i].expires);
			kept++;
		}
	}
	if (kept)
		log_info("mta-sts: %zu saved policies in force", kept);
	store_sts_free(l->v, l->n);
	free(l->error);
	free(l);
	mta_pending_done(m);
	m->sts_loading = false;
	mta_kick(m);     /* destinations waiting for their policy go on */
}

void sts_load(struct mta *m)
{
	struct sts_load *l = xcalloc(1, sizeof *l);
	l->m = m;
	m->pending++;
	m->sts_loading = true;
	server_job(m->srv, NULL, load_work, load_done, l);
}

void sts_cache_free(struct mta *m)
{
	while (m->sts_cache) {
		struct sts_entry *e = m->sts_cache;
		m->sts_cache = e->next;
		free(e);
	}
	m->sts_cached = 0;
}

/* A cached policy still within its max_age, or NULL. */
static const struct mtasts_policy *cached(struct mta *m, const char *domain)
{
	struct sts_entry *e = cache_find(m, domain);
	if (!e || e->expires < now_unix())
		return NULL;
	return &e->pol;
}

static void finish(struct sts_lookup *l, const struct mtasts_policy *p)
{
	void (*cb)(void *, const struct mtasts_policy *) = l->cb;
	void *arg = l->arg;
	mta_pending_done(l->m);
	free(l);
	cb(arg, p);
}

/* The lookup found nothing new: a cached policy within its max_age stays
 * in force (RFC 8461 5.1), else none. */
static void finish_cached(struct sts_lookup *l)
{
	const struct mtasts_policy *old = cached(l->m, l->domain);
	if (old) {
		struct mtasts_policy p = *old;
		finish(l, &p);
	} else {
		finish(l, NULL);
	}
}

static const char *fallback(struct sts_lookup *l)
{
	return cached(l->m, l->domain) ? "the cached policy stays in force"
				       : "delivering without a policy";
}

static void fetch_work(void *arg)
{
	struct sts_lookup *l = arg;
	const struct conf *cfg = l->m->cfg;
	struct sts_fetch_opts o = {
		.ca_file = cfg->smtp_out_ca_file,
		.port = (int)cfg->mta_sts_port,
		.connect_to = l->addr,
		.timeout_ms = STS_FETCH_MS,
	};
	l->rc = sts_fetch_policy(l->domain, &o, &l->pol, l->why, sizeof l->why);
}

static void fetch_done(void *arg)
{
	struct sts_lookup *l = arg;
	struct mta *m = l->m;
	if (l->cancelled) {
		mta_pending_done(m);
		free(l);
		return;
	}
	if (l->rc == 0) {
		static const char *const modes[] = {"none", "testing", "enforce"};
		log_info("mta-sts: %s: policy %s: mode %s, %zu mx pattern(s), max_age %u s",
			 l->domain, l->id, modes[l->pol.mode], l->pol.n_mx, l->pol.max_age);
		int64_t expires = now_unix() + (int64_t)l->pol.max_age;
		cache_put(m, l->domain, l->id, &l->pol, expires);
		save(m, l->domain, l->id, &l->pol, expires);
		struct mtasts_policy p = l->pol;
		finish(l, &p);
		return;
	}
	log_warn("mta-sts: %s: cannot fetch policy %s: %s; %s", l->domain, l->id, l->why,
		 fallback(l));
	finish_cached(l);
}

static void on_host(void *arg, const struct dns_mx_result *r)
{
	struct sts_lookup *l = arg;
	l->dns = NULL;
	if (r->status != DNS_OK || r->ntargets == 0) {
		log_warn("mta-sts: %s: policy %s announced but mta-sts.%s has no address (%s); %s",
			 l->domain, l->id, l->domain, r->error, fallback(l));
		finish_cached(l);
		return;
	}
	snprintf(l->addr, sizeof l->addr, "%s", r->targets[0].addrtext);
	l->fetching = true;
	server_job(l->m->srv, NULL, fetch_work, fetch_done, l);
}

static void on_txt(void *arg, enum dns_status st, const char *const *txt, size_t n)
{
	struct sts_lookup *l = arg;
	struct mta *m = l->m;
	l->dns = NULL;
	/* RFC 8461 3.1: exactly one record starting with v=STSv1 */
	size_t found = 0;
	char id[MTASTS_ID_MAX + 1] = "";
	for (size_t i = 0; st == DNS_OK && i < n; i++) {
		if (strncmp(txt[i], "v=STSv1", 7) != 0)
			continue;
		found++;
		if (mtasts_parse_txt(txt[i], strlen(txt[i]), id) < 0)
			id[0] = '\0';
	}
	if (st != DNS_OK || found != 1 || id[0] == '\0') {
		if (st == DNS_TEMPFAIL || found > 1 || (found == 1 && id[0] == '\0'))
			log_info("mta-sts: %s: %s; %s", l->domain,
				 st == DNS_TEMPFAIL ? "TXT lookup failed" : "unusable _mta-sts record",
				 fallback(l));
		finish_cached(l);
		return;
	}
	struct sts_entry *e = cache_find(m, l->domain);
	if (e && strcmp(e->id, id) == 0 && e->expires >= now_unix()) {
		struct mtasts_policy p = e->pol;
		finish(l, &p);
		return;
	}
	snprintf(l->id, sizeof l->id, "%s", id);
	char host[300];
	snprintf(host, sizeof host, "mta-sts.%s", l->domain);
	l->dns = dns_host(m->dns, host, (int)m->cfg->mta_sts_port, m->cfg->smtp_out_ipv6 != 0,
			  on_host, l);
}

struct sts_lookup *sts_lookup(struct mta *m, const char *domain,
			      void (*cb)(void *arg, const struct mtasts_policy *p), void *arg)
{
	struct sts_lookup *l = xcalloc(1, sizeof *l);
	l->m = m;
	snprintf(l->domain, sizeof l->domain, "%s", domain);
	l->cb = cb;
	l->arg = arg;
	m->pending++;
	char name[300];
	snprintf(name, sizeof name, "_mta-sts.%s", domain);
	l->dns = dns_txt(m->dns, name, on_txt, l);
	return l;
}

void sts_cancel(struct sts_lookup *l)
{
	if (l->fetching) {
		l->cancelled = true;    /* fetch_done frees it */
		return;
	}
	if (l->dns)
		dns_mx_cancel(l->dns);
	mta_pending_done(l->m);
	free(l);
}
