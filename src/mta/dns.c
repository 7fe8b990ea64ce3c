/* dns.c - MX and address lookups through libunbound.  See dns.h. */
#include "mta/dns.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unbound.h>
#include <openssl/rand.h>

#include "core/log.h"
#include "core/util.h"
#include "mta/mtasts.h"

#define RR_A 1
#define RR_MX 15
#define RR_AAAA 28
#define RR_TLSA 52
#define RR_TXT 16

struct dns {
	uv_loop_t *loop;
	struct ub_ctx *ctx;
	uv_poll_t poll;
	int poll_open;              /* handles open (poll and kick) */
	uv_timer_t kick;            /* starts new lookups from the loop */
	struct dns_mx_lookup *lookups;      /* in flight */
	bool validating;            /* a trust anchor: TLSA lookups for DANE */
};

struct query {
	struct dns_mx_lookup *l;
	int id;                     /* libunbound async id; 0 when done */
	int host;                   /* index into l->hosts, -1 for the MX query */
	int rrtype;
};

struct mx_host {
	char name[256];
	unsigned pref;
	bool secure;
	size_t naddrs4, naddrs6;
	struct sockaddr_storage v6[4], v4[4];
	bool v6sec[4], v4sec[4];
	bool tempfail;
	struct dns_tlsa tlsa;
};

struct dns_mx_lookup {
	struct dns *d;
	char domain[256];
	int port;
	bool ipv6;
	bool host_only;             /* dns_host: no MX step */
	void (*txt_cb)(void *arg, enum dns_status st, const char *const *txt, size_t n);
	bool started;
	void (*cb)(void *arg, const struct dns_mx_result *r);
	void *arg;
	struct mx_host hosts[DNS_MX_MAX];
	size_t nhosts;
	bool implicit;
	bool mx_secure;
	bool tlsa_started;
	struct query queries[3 * DNS_MX_MAX + 1];
	size_t nqueries, pending;
	struct dns_mx_lookup *next, *prev;
};

static void on_poll(uv_poll_t *p, int status, int events)
{
	struct dns *d = p->data;
	(void)status;
	(void)events;
	ub_process(d->ctx);
}

struct dns *dns_new(uv_loop_t *loop, const char *server, const char *trust_anchor,
		    char **error_r)
{
	struct dns *d = xcalloc(1, sizeof *d);
	int r;

	d->loop = loop;
	d->ctx = ub_ctx_create();
	if (!d->ctx) {
		*error_r = xstrdup("dns: cannot create the libunbound context");
		free(d);
		return NULL;
	}
	/* Resolve on libunbound's thread, not a forked process. */
	r = ub_ctx_async(d->ctx, 1);
	if (r == 0 && server && server[0] != '\0') {
		char *list = xstrdup(server), *save = NULL;
		for (char *a = strtok_r(list, ", ", &save); a && r == 0; a = strtok_r(NULL, ", ", &save))
			r = ub_ctx_set_fwd(d->ctx, a);
		free(list);
	} else if (r == 0) {
		r = ub_ctx_resolvconf(d->ctx, NULL);
		if (r == 0)
			r = ub_ctx_hosts(d->ctx, NULL);
	}
	if (r == 0 && trust_anchor && trust_anchor[0] != '\0') {
		r = ub_ctx_add_ta_file(d->ctx, trust_anchor);
		d->validating = true;
	}
	if (r != 0) {
		*error_r = xasprintf("dns: cannot configure the resolver (dns_server=%s, "
				     "dns_trust_anchor=%s): %s", server ? server : "",
				     trust_anchor ? trust_anchor : "", ub_strerror(r));
		ub_ctx_delete(d->ctx);
		free(d);
		return NULL;
	}
	/* Make libunbound start its thread now, so that ub_fd is the pipe. */
	int fd = ub_fd(d->ctx);
	if (fd < 0 || uv_poll_init(loop, &d->poll, fd) != 0) {
		*error_r = xstrdup("dns: cannot watch the resolver's descriptor");
		ub_ctx_delete(d->ctx);
		free(d);
		return NULL;
	}
	d->poll.data = d;
	d->poll_open = 2;
	uv_poll_start(&d->poll, UV_READABLE, on_poll);
	uv_timer_init(loop, &d->kick);
	d->kick.data = d;
	return d;
}

static void handle_closed(uv_handle_t *h)
{
	struct dns *d = h->data;
	if (--d->poll_open == 0) {
		ub_ctx_delete(d->ctx);
		free(d);
	}
}

static void lookup_free(struct dns_mx_lookup *l);

void dns_free(struct dns **dp)
{
	struct dns *d = *dp;
	if (!d)
		return;
	*dp = NULL;
	while (d->lookups)
		dns_mx_cancel(d->lookups);
	uv_poll_stop(&d->poll);
	uv_close((uv_handle_t *)&d->poll, handle_closed);
	uv_close((uv_handle_t *)&d->kick, handle_closed);
}

int dns_parse_mx(const unsigned char *rd, size_t len, unsigned *pref_r, char *name,
		 size_t namesz)
{
	size_t i = 2, o = 0;

	if (len < 3 || namesz < 2)
		return -1;
	*pref_r = (unsigned)rd[0] << 8 | rd[1];
	for (;;) {
		if (i >= len)
			return -1;
		unsigned l = rd[i++];
		if (l == 0)
			break;
		if (l > 63 || i + l > len)
			return -1;     /* compression pointers do not occur in RDATA here */
		if (o > 0) {
			if (o + 1 >= namesz)
				return -1;
			name[o++] = '.';
		}
		if (o + l >= namesz)
			return -1;
		for (unsigned k = 0; k < l; k++) {
			unsigned char c = rd[i + k];
			if (c <= ' ' || c >= 0x7f)
				return -1;
			name[o++] = (char)c;
		}
		i += l;
	}
	if (i != len)
		return -1;
	name[o] = '\0';     /* "" is the root: a null MX */
	return 0;
}

static void set_port(struct sockaddr_storage *ss, int port)
{
	if (ss->ss_family == AF_INET)
		((struct sockaddr_in *)ss)->sin_port = htons((uint16_t)port);
	else
		((struct sockaddr_in6 *)ss)->sin6_port = htons((uint16_t)port);
}

static void finish(struct dns_mx_lookup *l, enum dns_status st, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void finish(struct dns_mx_lookup *l, enum dns_status st, const char *fmt, ...)
{
	struct dns_mx_result *r = xcalloc(1, sizeof *r);
	r->status = st;
	r->implicit = l->implicit;
	if (fmt) {
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(r->error, sizeof r->error, fmt, ap);
		va_end(ap);
	}
	if (st == DNS_OK) {
		bool tempfail = false;
		for (size_t h = 0; h < l->nhosts; h++) {
			struct mx_host *m = &l->hosts[h];
			tempfail |= m->tempfail;
			r->tlsa[h] = m->tlsa;
			for (int fam = 0; fam < 2; fam++) {
				size_t n = fam == 0 ? m->naddrs6 : m->naddrs4;
				for (size_t k = 0; k < n && r->ntargets < DNS_TARGETS_MAX; k++) {
					struct dns_target *t = &r->targets[r->ntargets++];
					snprintf(t->host, sizeof t->host, "%s", m->name);
					t->hostidx = (unsigned)h;
					t->pref = m->pref;
					t->addr = fam == 0 ? m->v6[k] : m->v4[k];
					t->secure = m->secure && (fam == 0 ? m->v6sec[k] : m->v4sec[k]);
					set_port(&t->addr, l->port);
					if (t->addr.ss_family == AF_INET6)
						inet_ntop(AF_INET6, &((struct sockaddr_in6 *)&t->addr)->sin6_addr,
							  t->addrtext, sizeof t->addrtext);
					else
						inet_ntop(AF_INET, &((struct sockaddr_in *)&t->addr)->sin_addr,
							  t->addrtext, sizeof t->addrtext);
				}
			}
		}
		if (r->ntargets == 0) {
			if (tempfail)
				r->status = DNS_TEMPFAIL;
			else
				r->status = DNS_NOADDR;
			snprintf(r->error, sizeof r->error, "%.255s: %s", l->domain,
				 tempfail ? "address lookup failed for its mail hosts, will retry"
					  : l->implicit ? "the domain has neither MX nor address records"
							: "its MX hosts have no addresses");
			if (!tempfail && l->implicit)
				r->status = DNS_NOTFOUND;
		}
	}
	void (*cb)(void *, const struct dns_mx_result *) = l->cb;
	void *arg = l->arg;
	lookup_free(l);
	cb(arg, r);
	free(r);
}

static void start_query(struct dns_mx_lookup *l, const char *name, int rrtype, int host);

static void host_queries(struct dns_mx_lookup *l)
{
	for (size_t h = 0; h < l->nhosts; h++) {
		struct mx_host *m = &l->hosts[h];
		struct in6_addr a6;
		struct in_addr a4;
		/* An MX naming an address literal is a misconfiguration, but
		 * cheap to honour. */
		if (inet_pton(AF_INET, m->name, &a4) == 1) {
			struct sockaddr_in *sin = (struct sockaddr_in *)&m->v4[0];
			sin->sin_family = AF_INET;
			sin->sin_addr = a4;
			m->naddrs4 = 1;
			continue;
		}
		if (inet_pton(AF_INET6, m->name, &a6) == 1) {
			struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&m->v6[0];
			s6->sin6_family = AF_INET6;
			s6->sin6_addr = a6;
			m->naddrs6 = l->ipv6 ? 1 : 0;
			continue;
		}
		if (l->ipv6)
			start_query(l, m->name, RR_AAAA, (int)h);
		start_query(l, m->name, RR_A, (int)h);
	}
	if (l->pending == 0)
		finish(l, DNS_OK, NULL);
}

static void shuffle_equal(struct mx_host *h, size_t n)
{
	/* sort by preference (insertion sort, n <= DNS_MX_MAX) */
	for (size_t i = 1; i < n; i++) {
		struct mx_host t = h[i];
		size_t j = i;
		while (j > 0 && h[j - 1].pref > t.pref) {
			h[j] = h[j - 1];
			j--;
		}
		h[j] = t;
	}
	/* RFC 5321 5.1: equal preferences in random order */
	for (size_t i = 0; i < n;) {
		size_t j = i;
		while (j < n && h[j].pref == h[i].pref)
			j++;
		for (size_t k = j - 1; k > i; k--) {
			uint32_t rnd;
			if (RAND_bytes((unsigned char *)&rnd, sizeof rnd) != 1)
				rnd = 0;
			size_t pick = i + rnd % (k - i + 1);
			struct mx_host t = h[k];
			h[k] = h[pick];
			h[pick] = t;
		}
		i = j;
	}
}

static void on_mx(struct dns_mx_lookup *l, int err, struct ub_result *res)
{
	if (err != 0) {
		finish(l, DNS_TEMPFAIL, "%s: MX lookup failed: %s", l->domain, ub_strerror(err));
		return;
	}
	if (res->bogus) {
		finish(l, DNS_TEMPFAIL, "%s: MX answer failed DNSSEC validation: %s", l->domain,
		       res->why_bogus ? res->why_bogus : "bogus");
		return;
	}
	if (res->rcode == 3 || res->nxdomain) {
		finish(l, DNS_NOTFOUND, "%s: the domain does not exist (NXDOMAIN)", l->domain);
		return;
	}
	if (res->rcode != 0) {
		finish(l, DNS_TEMPFAIL, "%s: MX lookup failed with rcode %d", l->domain, res->rcode);
		return;
	}
	l->mx_secure = res->secure != 0;
	if (!res->havedata) {
		/* RFC 5321 5.1: no MX, the domain itself is the host. */
		l->implicit = true;
		snprintf(l->hosts[0].name, sizeof l->hosts[0].name, "%s", l->domain);
		l->hosts[0].secure = l->mx_secure;
		l->nhosts = 1;
		host_queries(l);
		return;
	}
	size_t n = 0;
	bool null_mx = false;
	for (int i = 0; res->data[i] && n < DNS_MX_MAX; i++) {
		struct mx_host *m = &l->hosts[n];
		if (dns_parse_mx((const unsigned char *)res->data[i], (size_t)res->len[i], &m->pref,
				 m->name, sizeof m->name) < 0)
			continue;
		if (m->name[0] == '\0') {
			null_mx = true;
			continue;
		}
		m->secure = l->mx_secure;
		n++;
	}
	if (null_mx && n == 0) {
		finish(l, DNS_NULLMX, "%s: the domain accepts no mail (null MX, RFC 7505)",
		       l->domain);
		return;
	}
	if (n == 0) {
		finish(l, DNS_TEMPFAIL, "%s: malformed MX records", l->domain);
		return;
	}
	shuffle_equal(l->hosts, n);
	l->nhosts = n;
	host_queries(l);
}

static void on_addr(struct dns_mx_lookup *l, struct query *q, int err, struct ub_result *res)
{
	struct mx_host *m = &l->hosts[q->host];
	if (err != 0 || res->bogus || (res->rcode != 0 && res->rcode != 3)) {
		m->tempfail = true;
		log_info("dns: %s %s lookup failed: %s", m->name, q->rrtype == RR_A ? "A" : "AAAA",
			 err ? ub_strerror(err) : res->bogus ? "DNSSEC validation failed" : "server failure");
		return;
	}
	for (int i = 0; res->havedata && res->data[i]; i++) {
		if (q->rrtype == RR_A && res->len[i] == 4 && m->naddrs4 < ARRAY_LEN(m->v4)) {
			struct sockaddr_in *sin = (struct sockaddr_in *)&m->v4[m->naddrs4];
			sin->sin_family = AF_INET;
			memcpy(&sin->sin_addr, res->data[i], 4);
			m->v4sec[m->naddrs4++] = res->secure != 0;
		} else if (q->rrtype == RR_AAAA && res->len[i] == 16 &&
			   m->naddrs6 < ARRAY_LEN(m->v6)) {
			struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&m->v6[m->naddrs6];
			s6->sin6_family = AF_INET6;
			memcpy(&s6->sin6_addr, res->data[i], 16);
			m->v6sec[m->naddrs6++] = res->secure != 0;
		}
	}
}

static void on_txt(struct dns_mx_lookup *l, int err, struct ub_result *res)
{
	char *txt[DNS_TXT_MAX];
	size_t n = 0;
	enum dns_status st = DNS_OK;
	if (err != 0 || res->bogus || (res->rcode != 0 && res->rcode != 3))
		st = DNS_TEMPFAIL;
	else if (res->rcode == 3 || res->nxdomain)
		st = DNS_NOTFOUND;
	for (int i = 0; st == DNS_OK && res->havedata && res->data[i] && n < DNS_TXT_MAX; i++) {
		/* <len><bytes> character-strings, joined (RFC 8461 3.1) */
		const unsigned char *rd = (const unsigned char *)res->data[i];
		size_t len = (size_t)res->len[i], k = 0, o = 0;
		char *t = xmalloc(DNS_TXT_LEN + 1);
		while (k < len) {
			size_t sl = rd[k++];
			if (k + sl > len || o + sl > DNS_TXT_LEN)
				break;
			memcpy(t + o, rd + k, sl);
			o += sl;
			k += sl;
		}
		t[o] = '\0';
		txt[n++] = t;
	}
	void (*cb)(void *, enum dns_status, const char *const *, size_t) = l->txt_cb;
	void *arg = l->arg;
	lookup_free(l);
	cb(arg, st, (const char *const *)txt, n);
	for (size_t i = 0; i < n; i++)
		free(txt[i]);
}

/* RFC 7672 2.2: the TLSA records of every MX host whose MX and address
 * answers validated; others stay opportunistic (DNS_TLSA_NONE). */
static bool tlsa_queries(struct dns_mx_lookup *l)
{
	if (!l->d->validating || l->tlsa_started)
		return false;
	l->tlsa_started = true;
	for (size_t h = 0; h < l->nhosts; h++) {
		struct mx_host *m = &l->hosts[h];
		bool any = false;
		for (size_t k = 0; k < m->naddrs4; k++)
			any |= m->v4sec[k];
		for (size_t k = 0; k < m->naddrs6; k++)
			any |= m->v6sec[k];
		if (!m->secure || !any)
			continue;
		char name[300];
		snprintf(name, sizeof name, "_%d._tcp.%s", l->port, m->name);
		start_query(l, name, RR_TLSA, (int)h);
	}
	return l->pending > 0;
}

static void on_tlsa(struct dns_mx_lookup *l, struct query *q, int err, struct ub_result *res)
{
	struct mx_host *m = &l->hosts[q->host];
	struct dns_tlsa *t = &m->tlsa;
	if (err != 0 || res->bogus || (res->rcode != 0 && res->rcode != 3)) {
		/* A validated zone whose TLSA answer cannot be had: this host
		 * must not be used (a downgrade could hide behind the failure). */
		t->state = DNS_TLSA_FAIL;
		log_info("dns: _%d._tcp.%s TLSA lookup failed: %s; that host is not used", l->port,
			 m->name, err ? ub_strerror(err) : res->bogus ? "DNSSEC validation failed"
								  : "server failure");
		return;
	}
	if (!res->secure || !res->havedata) {
		t->state = DNS_TLSA_NONE;
		return;
	}
	t->state = DNS_TLSA_UNUSABLE;
	for (int i = 0; res->data[i] && t->n < DNS_TLSA_MAX; i++) {
		struct tlsa_rr rr;
		if (tlsa_parse_rdata((const unsigned char *)res->data[i], (size_t)res->len[i],
				     &rr) < 0 ||
		    !tlsa_usable_for_smtp(&rr) || rr.mtype == 0 || rr.len > 64)
			continue;     /* full-data (mtype 0) records are not kept */
		struct dns_tlsa_rr *o = &t->rr[t->n++];
		o->usage = rr.usage;
		o->selector = rr.selector;
		o->mtype = rr.mtype;
		o->len = (uint8_t)rr.len;
		memcpy(o->data, rr.data, rr.len);
		t->state = DNS_TLSA_USABLE;
	}
}

static void ub_cb(void *arg, int err, struct ub_result *res)
{
	struct query *q = arg;
	struct dns_mx_lookup *l = q->l;
	q->id = 0;
	l->pending--;
	if (q->host == -2) {
		on_txt(l, err, res);
	} else if (q->host < 0) {
		on_mx(l, err, res);
	} else if (q->rrtype == RR_TLSA) {
		on_tlsa(l, q, err, res);
		if (l->pending == 0)
			finish(l, DNS_OK, NULL);
	} else {
		on_addr(l, q, err, res);
		if (l->pending == 0 && !tlsa_queries(l))
			finish(l, DNS_OK, NULL);
	}
	if (res)
		ub_resolve_free(res);
}

static void start_query(struct dns_mx_lookup *l, const char *name, int rrtype, int host)
{
	struct query *q = &l->queries[l->nqueries++];
	q->l = l;
	q->host = host;
	q->rrtype = rrtype;
	l->pending++;
	int r = ub_resolve_async(l->d->ctx, name, rrtype, 1, q, ub_cb, &q->id);
	if (r != 0) {
		q->id = 0;
		l->pending--;
		if (host >= 0)
			l->hosts[host].tempfail = true;
		log_warn("dns: cannot start a lookup of %s: %s", name, ub_strerror(r));
	}
}

static struct dns_mx_lookup *lookup_new(struct dns *d, const char *name, int port, bool ipv6,
					void (*cb)(void *, const struct dns_mx_result *), void *arg)
{
	struct dns_mx_lookup *l = xcalloc(1, sizeof *l);
	l->d = d;
	snprintf(l->domain, sizeof l->domain, "%s", name);
	l->port = port;
	l->ipv6 = ipv6;
	l->cb = cb;
	l->arg = arg;
	l->next = d->lookups;
	if (d->lookups)
		d->lookups->prev = l;
	d->lookups = l;
	return l;
}

static void lookup_free(struct dns_mx_lookup *l)
{
	struct dns *d = l->d;
	for (size_t i = 0; i < l->nqueries; i++)
		if (l->queries[i].id != 0) {
			ub_cancel(d->ctx, l->queries[i].id);
			l->queries[i].id = 0;
		}
	if (l->prev)
		l->prev->next = l->next;
	else
		d->lookups = l->next;
	if (l->next)
		l->next->prev = l->prev;
	free(l);
}

/* Lookups start from a timer, so that no callback runs before dns_mx or
 * dns_host has returned. */
static void kick_cb(uv_timer_t *t)
{
	struct dns *d = t->data;
	for (;;) {
		struct dns_mx_lookup *l = d->lookups;
		while (l && l->started)
			l = l->next;
		if (!l)
			break;
		l->started = true;
		if (l->txt_cb) {
			start_query(l, l->domain, RR_TXT, -2);
			if (l->pending == 0) {
				void (*cb)(void *, enum dns_status, const char *const *, size_t) =
					l->txt_cb;
				void *arg = l->arg;
				lookup_free(l);
				cb(arg, DNS_TEMPFAIL, NULL, 0);
			}
			continue;
		}
		if (l->host_only) {
			host_queries(l);
			continue;
		}
		start_query(l, l->domain, RR_MX, -1);
		if (l->pending == 0)
			finish(l, DNS_TEMPFAIL, "%s: cannot start the MX lookup", l->domain);
	}
}

struct dns_mx_lookup *dns_mx(struct dns *d, const char *domain, int port, bool ipv6,
			     void (*cb)(void *arg, const struct dns_mx_result *r), void *arg)
{
	struct dns_mx_lookup *l = lookup_new(d, domain, port, ipv6, cb, arg);
	uv_timer_start(&d->kick, kick_cb, 0, 0);
	return l;
}

struct dns_mx_lookup *dns_host(struct dns *d, const char *host, int port, bool ipv6,
			       void (*cb)(void *arg, const struct dns_mx_result *r), void *arg)
{
	struct dns_mx_lookup *l = lookup_new(d, host, port, ipv6, cb, arg);
	snprintf(l->hosts[0].name, sizeof l->hosts[0].name, "%s", host);
	l->nhosts = 1;
	l->host_only = true;
	uv_timer_start(&d->kick, kick_cb, 0, 0);
	return l;
}

struct dns_mx_lookup *dns_txt(struct dns *d, const char *name,
			      void (*cb)(void *arg, enum dns_status st, const char *const *txt,
					 size_t n),
			      void *arg)
{
	struct dns_mx_lookup *l = lookup_new(d, name, 0, false, NULL, arg);
	l->txt_cb = cb;
	uv_timer_start(&d->kick, kick_cb, 0, 0);
	return l;
}

void dns_mx_cancel(struct dns_mx_lookup *l)
{
	lookup_free(l);
}
