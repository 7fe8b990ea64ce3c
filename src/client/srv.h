/* srv.h - a domain's mail servers from DNS SRV records (RFC 6186, RFC 8314).
 *
 * For the domain of an address, srv_lookup asks six names and keeps, for
 * each, the one record to use:
 *
 *     _submissions._tcp   submission, implicit TLS (RFC 8314 5.1), usually 465
 *     _submission._tcp    submission, STARTTLS (RFC 6186 3.1), usually 587
 *     _imaps._tcp         IMAP, implicit TLS, 993
 *     _imap._tcp          IMAP, STARTTLS, 143
 *     _pop3s._tcp         POP3, implicit TLS, 995
 *     _pop3._tcp          POP3, STLS, 110
 *
 * Within one name (RFC 2782): the lowest priority wins, then the highest
 * weight; ties go to the smaller target name, then the lower port, so the
 * choice is deterministic (no weighted random pick: we write one server
 * into client.conf, not try several in turn).  A record whose target is
 * "." means the service is decidedly not offered there (RFC 2782); other
 * records in the same set still count, and when all are "." the name is
 * SRV_NOT_OFFERED.
 *
 * Across names (srv_choose_*): implicit TLS over STARTTLS, for submission
 * and within IMAP and POP3 (RFC 8314 prefers implicit TLS); between IMAP
 * and POP3, RFC 6186 3.4: the lower priority of the two chosen records,
 * IMAP on a tie (and IMAP whenever only IMAP is offered, POP3 whenever
 * only POP3).
 *
 * The answers are not DNSSEC-validated: they are guesses shown to the user
 * (RFC 6186 6: a target outside the domain deserves a look), and the
 * server's certificate is still checked against the target name.
 *
 * Time: one libunbound context for the six queries, its retransmit
 * timeout capped (infra-cache-max-rtt 2000 ms): a resolver that does not
 * answer costs about 5 s for the first query, after which libunbound
 * marks it down and the other queries fail at once (SERVFAIL).  The
 * synchronous API has no per-call deadline beyond that. */
#ifndef YUBIN_CLIENT_SRV_H
#define YUBIN_CLIENT_SRV_H

#include <stdbool.h>
#include <stddef.h>

enum srv_service {
	SRV_SUBMISSIONS,
	SRV_SUBMISSION,
	SRV_IMAPS,
	SRV_IMAP,
	SRV_POP3S,
	SRV_POP3,
	SRV_SERVICES
};

/* Bit of a service for srv_lookup's which. */
#define SRV_BIT(s) (1u << (s))
#define SRV_ALL ((1u << SRV_SERVICES) - 1)
#define SRV_SUBMIT_BITS (SRV_BIT(SRV_SUBMISSIONS) | SRV_BIT(SRV_SUBMISSION))
#define SRV_INCOMING_BITS (SRV_ALL & ~SRV_SUBMIT_BITS)

/* Longest target in text form (a 255-byte wire name), without the NUL. */
#define SRV_TARGET_MAX 253

struct srv_record {
	unsigned priority, weight, port;    /* 0..65535; port 0 only for "." */
	char target[SRV_TARGET_MAX + 1];    /* "mail.example.org", no final dot; "" is "." */
};

enum srv_state {
	SRV_ABSENT,         /* no SRV record (NXDOMAIN, no data), or not asked */
	SRV_FOUND,          /* rec is the record to use */
	SRV_NOT_OFFERED,    /* only "." targets (RFC 2782) */
	SRV_FAILED,         /* the lookup failed: error says why */
};

struct srv_answer {
	enum srv_state state;
	struct srv_record rec;      /* with SRV_FOUND */
	char error[160];            /* with SRV_FAILED */
};

struct srv_result {
	struct srv_answer svc[SRV_SERVICES];
};

/* "_submissions._tcp", ... */
const char *srv_label(enum srv_service s);

/* Parse one SRV RDATA (RFC 2782: priority, weight, port, target in wire
 * format) of len bytes.  The target must be uncompressed (RFC 2782; a
 * compression pointer is an error), at most 255 bytes with labels of at
 * most 63, each of letters, digits, '-' and '_' and not starting with
 * '-', and end exactly at len.  Port 0 only with the "." target.  0 with
 * *r filled, or -1 with a static reason in *error_r. */
int srv_parse(const unsigned char *rd, size_t len, struct srv_record *r, const char **error_r);

/* a goes before b: lower priority, then higher weight, then the smaller
 * target (strcmp), then the lower port. */
bool srv_better(const struct srv_record *a, const struct srv_record *b);

/* The answer for one name's records v[0..n): SRV_ABSENT for none,
 * SRV_NOT_OFFERED when every target is ".", else SRV_FOUND with the best
 * record whose target is not ".". */
void srv_select(const struct srv_record *v, size_t n, struct srv_answer *out);

/* SRV_SUBMISSIONS or SRV_SUBMISSION, whichever is SRV_FOUND, implicit TLS
 * first; -1 when neither. */
int srv_choose_submission(const struct srv_result *r);

/* SRV_IMAPS, SRV_IMAP, SRV_POP3S or SRV_POP3 as described at the top; -1
 * when none is SRV_FOUND. */
int srv_choose_incoming(const struct srv_result *r);

/* A domain name we can ask about: ASCII letters, digits, '-' and '_',
 * labels of 1-63 bytes, at most 253 bytes (one final '.' allowed). */
bool srv_domain_ok(const char *domain);

/* A --dns-server value: an IPv4 or IPv6 address, optionally "@PORT". */
bool srv_server_ok(const char *server);

/* Look up the services in which (SRV_BIT bits) for domain; the others are
 * left SRV_ABSENT.  server: NULL or "" for the system's resolvers
 * (/etc/resolv.conf), else "IP" or "IP@PORT" to ask that server only.
 * 0 with every asked service's answer in *out (a failed query is
 * SRV_FAILED there, not an error), or -1 with err set when nothing could
 * be asked (bad domain or server, libunbound cannot be set up). */
int srv_lookup(const char *domain, const char *server, unsigned which, struct srv_result *out,
	       char *err, size_t errsz);

#endif
