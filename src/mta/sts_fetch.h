/* sts_fetch.h - fetch an MTA-STS policy over HTTPS (RFC 8461 3.3), through libcurl.
 *
 * Blocking: sts_fetch_policy() runs on a worker thread of the daemon's pool
 * (server_job()), never on the event loop.  Each call uses its own curl
 * easy handle, so calls on different threads are independent.  No caching
 * here: the caller keeps the policy for max_age and decides when to fetch.
 *
 * libcurl's global state: the daemon calls sts_fetch_init() once at start,
 * before it starts any thread, and sts_fetch_cleanup() at exit, after the
 * last fetch has returned.  sts_fetch_policy() also calls sts_fetch_init()
 * itself (under a mutex, a no-op once done), so a forgotten init still
 * works, only without the guarantee that no other thread is inside a
 * library curl_global_init touches (OpenSSL) at that moment. */
#ifndef YUBIN_MTA_STS_FETCH_H
#define YUBIN_MTA_STS_FETCH_H

#include <stddef.h>

#include "mta/mtasts.h"

/* Used when sts_fetch_opts.timeout_ms is 0 or less: a worker thread must
 * never wait forever for a peer. */
#define STS_FETCH_TIMEOUT_DEFAULT_MS 60000L

struct sts_fetch_opts {
	const char *ca_file;     /* "" = system trust store (WebPKI, as RFC 8461
	                          * requires); else this PEM file and nothing else */
	int port;                /* 443; tests use another */
	const char *connect_to;  /* "" normally; tests: "127.0.0.8" = connect there
	                          * instead of resolving mta-sts.DOMAIN (curl's
	                          * CURLOPT_CONNECT_TO), the certificate is still
	                          * checked against mta-sts.DOMAIN */
	long timeout_ms;         /* the whole fetch: connect, TLS, request, body */
};

/* curl_global_init, once.  0, or -1 with why (curl's error text). */
int sts_fetch_init(char *why, size_t whysz);
/* curl_global_cleanup when sts_fetch_init succeeded; a later
 * sts_fetch_init() may initialise again. */
void sts_fetch_cleanup(void);

/* GET https://mta-sts.<domain>/.well-known/mta-sts.txt (":port" added when
 * o->port is not 443), with:
 *   - the certificate verified: chain to the trust store or o->ca_file, and
 *     the host name mta-sts.<domain> (TLS 1.2 at least; SNI sent);
 *   - no redirects: RFC 8461 3.3 says they MUST NOT be followed, so a 3xx is
 *     a failure ("redirect refused");
 *   - HTTP 200 only; any other status is a failure ("HTTP 404");
 *   - media type text/plain, case-insensitively, parameters allowed
 *     ("text/plain; charset=utf-8"); missing or another type fails;
 *   - a body of at most MTASTS_BODY_MAX bytes: a longer one (by its
 *     Content-Length, or as it arrives) aborts the transfer ("body too
 *     large"), it is never cut;
 *   - then mtasts_parse_policy().
 * Only https, User-Agent "Yubin", no proxy (the environment's *_proxy
 * variables are ignored), no cookies, no signals (safe on a thread), and
 * o->timeout_ms for everything.
 *
 * domain is the policy domain as DNS gives it: letters, digits, '-' and
 * '.' (an IDN in its A-label form), one trailing dot allowed; anything else
 * fails before any I/O ("invalid domain").
 *
 * Returns 0 with *p filled, or -1 with *p cleared and why (NUL-terminated,
 * truncated to whysz, printable ASCII only, for the log) saying what went
 * wrong: curl's error text (connection, TLS, certificate, timeout), the
 * HTTP status, "redirect refused", the media type, "body too large", or
 * "policy: " and the parser's reason.  Every failure means "no usable
 * policy fetched this time" (RFC 8461 3.3, 5.1: keep a cached one). */
int sts_fetch_policy(const char *domain, const struct sts_fetch_opts *o,
		     struct mtasts_policy *p, char *why, size_t whysz);

#endif
