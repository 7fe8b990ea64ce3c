/* dns.h - where mail for a domain goes: MX, then A/AAAA, through libunbound.
 *
 * One resolver context per daemon, asynchronous: libunbound resolves on
 * its own thread and its result pipe is watched by the event loop (no
 * blocking call on the loop thread).  With a trust anchor configured,
 * answers are DNSSEC-validated and a bogus answer is a temporary failure;
 * `secure` tells whether the whole chain validated (DANE needs it). */
#ifndef YUBIN_MTA_DNS_H
#define YUBIN_MTA_DNS_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>
#include <uv.h>

struct dns;

/* server: "" for /etc/resolv.conf, else "ADDR" or "ADDR@PORT" (several,
 * comma-separated).  trust_anchor: a root key file, or "" for no
 * validation. */
struct dns *dns_new(uv_loop_t *loop, const char *server, const char *trust_anchor,
		    char **error_r);
/* Cancels lookups in flight (their callbacks do not run). NULL-safe. */
void dns_free(struct dns **d);

/* Caps on what one domain can make us try. */
#define DNS_MX_MAX 10           /* MX hosts, best first */
#define DNS_TARGETS_MAX 20      /* addresses over all hosts */

enum dns_status {
	DNS_OK,
	DNS_TEMPFAIL,       /* SERVFAIL, timeout, bogus: try again later */
	DNS_NOTFOUND,       /* the domain does not exist (NXDOMAIN): bounce 5.1.2 */
	DNS_NULLMX,         /* RFC 7505: the domain accepts no mail: bounce 5.1.10 */
	DNS_NOADDR,         /* MX hosts without any address: retry (4.4.3) */
};

struct dns_target {
	char host[256];             /* the MX host name (or the domain: implicit MX) */
	unsigned pref;
	struct sockaddr_storage addr;
	char addrtext[64];          /* "192.0.2.1" / "2001:db8::1" */
	bool secure;                /* MX and address answers DNSSEC-validated */
	unsigned hostidx;           /* index of its MX host in dns_mx_result.tlsa */
};

/* DANE (RFC 7672): the TLSA records of an MX host, looked up when the MX
 * and the host's addresses validated (a trust anchor is configured). */
#define DNS_TLSA_MAX 8              /* records kept per host */
enum dns_tlsa_state {
	DNS_TLSA_NONE,              /* not looked up, insecure, or no records: opportunistic */
	DNS_TLSA_USABLE,            /* validated DANE-TA/DANE-EE records: authenticate */
	DNS_TLSA_UNUSABLE,          /* validated records, none usable: TLS, unauthenticated */
	DNS_TLSA_FAIL,              /* lookup failed or bogus: do not use this host */
};
struct dns_tlsa_rr {
	uint8_t usage, selector, mtype;
	uint8_t len;                /* digests only (SHA-256/512): <= 64 */
	unsigned char data[64];
};
struct dns_tlsa {
	enum dns_tlsa_state state;
	size_t n;
	struct dns_tlsa_rr rr[DNS_TLSA_MAX];
};

struct dns_mx_result {
	enum dns_status status;
	char error[600];            /* for the log and the DSN when status != DNS_OK */
	struct dns_target targets[DNS_TARGETS_MAX];
	size_t ntargets;
	bool implicit;              /* no MX: the domain's own addresses */
	struct dns_tlsa tlsa[DNS_MX_MAX];   /* per MX host (dns_target.hostidx) */
};

/* Resolve where mail for domain goes: MX hosts sorted by preference (equal
 * ones shuffled), each host's addresses (IPv6 first unless ipv6 is false),
 * or the domain's own addresses when it has no MX.  cb runs on the loop
 * thread, once, unless the lookup is cancelled; r is valid during cb only.
 * port is filled into every target address. */
struct dns_mx_lookup;
struct dns_mx_lookup *dns_mx(struct dns *d, const char *domain, int port, bool ipv6,
			     void (*cb)(void *arg, const struct dns_mx_result *r), void *arg);
/* Addresses of one host (a route's or relayhost's): the same result shape,
 * one "MX" of preference 0. */
struct dns_mx_lookup *dns_host(struct dns *d, const char *host, int port, bool ipv6,
			       void (*cb)(void *arg, const struct dns_mx_result *r), void *arg);
void dns_mx_cancel(struct dns_mx_lookup *l);

/* TXT records of name (MTA-STS, RFC 8461 3.1), each record's strings
 * joined; at most DNS_TXT_MAX records of DNS_TXT_LEN bytes.  status is
 * DNS_OK (n may be 0: no TXT), DNS_NOTFOUND or DNS_TEMPFAIL.  Cancel with
 * dns_mx_cancel. */
#define DNS_TXT_MAX 8
#define DNS_TXT_LEN 1024
struct dns_mx_lookup *dns_txt(struct dns *d, const char *name,
			      void (*cb)(void *arg, enum dns_status st, const char *const *txt,
					 size_t n),
			      void *arg);

/* For tests: parse an MX RDATA (wire format) into preference and name.
 * 0 / -1 malformed. */
int dns_parse_mx(const unsigned char *rd, size_t len, unsigned *pref_r, char *name,
		 size_t namesz);

#endif
