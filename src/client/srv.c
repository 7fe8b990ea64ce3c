/* srv.c - mail servers from DNS SRV records (RFC 6186).  See srv.h.
 *
 * The RDATA parser and the choices are pure; srv_lookup asks libunbound's
 * synchronous API, one context for all the names of one call. */
#include "client/srv.h"

#include <arpa/inet.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unbound.h>

#include "core/util.h"

#define RR_SRV 33
#define CLASS_IN 1
#define RCODE_NXDOMAIN 3
/* Retransmit cap for the resolver (see srv.h for what it gives). */
#define SRV_MAX_RTT_MS "2000"

static const char *const labels[SRV_SERVICES] = {
	[SRV_SUBMISSIONS] = "_submissions._tcp",
	[SRV_SUBMISSION] = "_submission._tcp",
	[SRV_IMAPS] = "_imaps._tcp",
	[SRV_IMAP] = "_imap._tcp",
	[SRV_POP3S] = "_pop3s._tcp",
	[SRV_POP3] = "_pop3._tcp",
};

const char *srv_label(enum srv_service s)
{
	return (unsigned)s < SRV_SERVICES ? labels[s] : "?";
}

static bool host_char(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       c == '-' || c == '_';
}

int srv_parse(const unsigned char *rd, size_t len, struct srv_record *r, const char **error_r)
{
	static const char *dummy;
	if (error_r == NULL)
		error_r = &dummy;
	memset(r, 0, sizeof *r);
	/* 6 fixed bytes and at least the root label */
	if (len < 7) {
		*error_r = "SRV record too short";
		return -1;
	}
	r->priority = (unsigned)rd[0] << 8 | rd[1];
	r->weight = (unsigned)rd[2] << 8 | rd[3];
	r->port = (unsigned)rd[4] << 8 | rd[5];
	size_t i = 6, out = 0, wire = 0;
	for (;;) {
		if (i >= len) {
			*error_r = "SRV target runs past the record";
			return -1;
		}
		unsigned l = rd[i++];
		if ((l & 0xc0) == 0xc0) {
			*error_r = "SRV target is compressed (RFC 2782 forbids it)";
			return -1;
		}
		if (l > 63) {
			*error_r = "SRV target has a bad label type";
			return -1;
		}
		wire += l + 1;
		if (wire > 255) {
			*error_r = "SRV target is longer than 255 bytes";
			return -1;
		}
		if (l == 0)
			break;
		if (l > len - i) {
			*error_r = "SRV target label runs past the record";
			return -1;
		}
		if (rd[i] == '-') {
			*error_r = "SRV target label starts with '-'";
			return -1;
		}
		for (size_t k = 0; k < l; k++) {
			if (!host_char(rd[i + k])) {
				*error_r = "SRV target has a character not allowed in a host name";
				return -1;
			}
		}
		/* text = wire so far - 1; the root label still to come */
		if (out + (out > 0) + l > SRV_TARGET_MAX) {
			*error_r = "SRV target is longer than 255 bytes";
			return -1;
		}
		if (out > 0)
			r->target[out++] = '.';
		memcpy(r->target + out, rd + i, l);
		out += l;
		i += l;
	}
	r->target[out] = '\0';
	if (i != len) {
		*error_r = "bytes after the SRV target";
		return -1;
	}
	if (out > 0 && r->port == 0) {
		*error_r = "SRV record with port 0";
		return -1;
	}
	return 0;
}

bool srv_better(const struct srv_record *a, const struct srv_record *b)
{
	if (a->priority != b->priority)
		return a->priority < b->priority;
	if (a->weight != b->weight)
		return a->weight > b->weight;
	int c = strcmp(a->target, b->target);
	if (c != 0)
		return c < 0;
	return a->port < b->port;
}

/* One name's records, one at a time. */
struct picker {
	size_t n;           /* records added */
	struct srv_answer *out;
};

static void picker_start(struct picker *p, struct srv_answer *out)
{
	p->n = 0;
	p->out = out;
	memset(out, 0, sizeof *out);
	out->state = SRV_ABSENT;
}

static void picker_add(struct picker *p, const struct srv_record *r)
{
	p->n++;
	if (r->target[0] == '\0') {
		if (p->out->state == SRV_ABSENT)
			p->out->state = SRV_NOT_OFFERED;
		return;
	}
	if (p->out->state != SRV_FOUND || srv_better(r, &p->out->rec)) {
		p->out->state = SRV_FOUND;
		p->out->rec = *r;
	}
}

void srv_select(const struct srv_record *v, size_t n, struct srv_answer *out)
{
	struct picker p;
	picker_start(&p, out);
	for (size_t i = 0; i < n; i++)
		picker_add(&p, &v[i]);
}

static bool found(const struct srv_result *r, enum srv_service s)
{
	return r->svc[s].state == SRV_FOUND;
}

int srv_choose_submission(const struct srv_result *r)
{
	if (found(r, SRV_SUBMISSIONS))
		return SRV_SUBMISSIONS;
	if (found(r, SRV_SUBMISSION))
		return SRV_SUBMISSION;
	return -1;
}

int srv_choose_incoming(const struct srv_result *r)
{
	int imap = found(r, SRV_IMAPS) ? SRV_IMAPS : found(r, SRV_IMAP) ? SRV_IMAP : -1;
	int pop = found(r, SRV_POP3S) ? SRV_POP3S : found(r, SRV_POP3) ? SRV_POP3 : -1;
	if (imap < 0 || pop < 0)
		return imap >= 0 ? imap : pop;
	/* RFC 6186 3.4: the domain's preference is the priority */
	return r->svc[pop].rec.priority < r->svc[imap].rec.priority ? pop : imap;
}

bool srv_domain_ok(const char *d)
{
	size_t n = strlen(d);
	if (n > 0 && d[n - 1] == '.')
		n--;
	if (n == 0 || n > 253)
		return false;
	size_t label = 0;
	for (size_t i = 0; i < n; i++) {
		if (d[i] == '.') {
			if (label == 0)
				return false;
			label = 0;
			continue;
		}
		if (!host_char((unsigned char)d[i]) || ++label > 63)
			return false;
	}
	return label > 0;
}

bool srv_server_ok(const char *server)
{
	char ip[INET6_ADDRSTRLEN + 1];
	const char *at = strchr(server, '@');
	size_t il = at != NULL ? (size_t)(at - server) : strlen(server);
	if (il == 0 || il >= sizeof ip)
		return false;
	memcpy(ip, server, il);
	ip[il] = '\0';
	unsigned char bin[16];
	if (inet_pton(AF_INET, ip, bin) != 1 && inet_pton(AF_INET6, ip, bin) != 1)
		return false;
	if (at == NULL)
		return true;
	const char *p = at + 1;
	unsigned long port = 0;
	if (*p == '\0')
		return false;
	for (; *p; p++) {
		if (*p < '0' || *p > '9')
			return false;
		port = port * 10 + (unsigned long)(*p - '0');
		if (port > 65535)
			return false;
	}
	return port > 0;
}

static const char *rcode_name(int rcode)
{
	switch (rcode) {
	case 1:
		return "FORMERR";
	case 2:
		return "SERVFAIL (or no answer in time)";
	case 4:
		return "NOTIMP";
	case 5:
		return "REFUSED";
	default:
		return NULL;
	}
}

/* One name: the answer into *a. */
static void lookup_one(struct ub_ctx *ctx, const char *qname, struct srv_answer *a)
{
	struct ub_result *res = NULL;
	struct picker p;
	picker_start(&p, a);
	int r = ub_resolve(ctx, qname, RR_SRV, CLASS_IN, &res);
	if (r != 0) {
		a->state = SRV_FAILED;
		errf(a->error, sizeof a->error, "%s", ub_strerror(r));
		ub_resolve_free(res);
		return;
	}
	if (res->rcode == RCODE_NXDOMAIN || (res->rcode == 0 && !res->havedata)) {
		ub_resolve_free(res);
		return;
	}
	if (res->rcode != 0) {
		const char *name = rcode_name(res->rcode);
		a->state = SRV_FAILED;
		if (name != NULL)
			errf(a->error, sizeof a->error, "the DNS server answered %s", name);
		else
			errf(a->error, sizeof a->error, "the DNS server answered rcode %d",
				res->rcode);
		ub_resolve_free(res);
		return;
	}
	const char *bad = NULL;
	for (size_t i = 0; res->data != NULL && res->data[i] != NULL; i++) {
		struct srv_record rec;
		const char *why = NULL;
		if (res->len[i] < 0 ||
		    srv_parse((const unsigned char *)res->data[i], (size_t)res->len[i], &rec,
			      &why) < 0) {
			bad = why != NULL ? why : "bad SRV record";
			continue;
		}
		picker_add(&p, &rec);
	}
	ub_resolve_free(res);
	/* Broken records beside good ones are dropped; only broken ones fail. */
	if (p.n == 0 && bad != NULL) {
		a->state = SRV_FAILED;
		errf(a->error, sizeof a->error, "%s", bad);
	}
}

int srv_lookup(const char *domain, const char *server, unsigned which, struct srv_result *out,
	       char *err, size_t errsz)
{
	memset(out, 0, sizeof *out);
	for (size_t s = 0; s < SRV_SERVICES; s++)
		out->svc[s].state = SRV_ABSENT;
	if (err != NULL && errsz > 0)
		err[0] = '\0';
	if (!srv_domain_ok(domain)) {
		errf(err, errsz, "\"%.300s\" is not a domain name that can be looked up "
			"(ASCII only: write an international one as xn--...)", domain);
		return -1;
	}
	if (server != NULL && server[0] != '\0' && !srv_server_ok(server)) {
		errf(err, errsz, "DNS server \"%.100s\": expected IP or IP@PORT", server);
		return -1;
	}
	struct ub_ctx *ctx = ub_ctx_create();
	if (ctx == NULL) {
		errf(err, errsz, "cannot create a libunbound context");
		return -1;
	}
	int r = ub_ctx_set_option(ctx, "infra-cache-max-rtt:", SRV_MAX_RTT_MS);
	if (r == 0) {
		if (server != NULL && server[0] != '\0')
			r = ub_ctx_set_fwd(ctx, server);
		else
			r = ub_ctx_resolvconf(ctx, NULL);
	}
	if (r != 0) {
		errf(err, errsz, "cannot set up the resolver (%s): %s",
			server != NULL && server[0] != '\0' ? server : "/etc/resolv.conf",
			ub_strerror(r));
		ub_ctx_delete(ctx);
		return -1;
	}
	size_t dl = strlen(domain);
	if (domain[dl - 1] == '.')
		dl--;
	for (size_t s = 0; s < SRV_SERVICES; s++) {
		if (!(which & SRV_BIT(s)))
			continue;
		char qname[300];
		snprintf(qname, sizeof qname, "%s.%.*s.", labels[s], (int)dl, domain);
		lookup_one(ctx, qname, &out->svc[s]);
	}
	ub_ctx_delete(ctx);
	return 0;
}
