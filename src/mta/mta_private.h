/* mta_private.h - what mta.c (the queue manager) and smtp_out.c (the
 * outbound SMTP session) share; not for anything outside src/mta/. */
#ifndef YUBIN_MTA_PRIVATE_H
#define YUBIN_MTA_PRIVATE_H

#include <openssl/ssl.h>
#include <stdbool.h>
#include <stdint.h>

#include "core/listener.h"
#include "mta/dns.h"
#include "mta/mta.h"
#include "mta/mtasts.h"

struct conf;
struct server;

/* Recipients in one outbound transaction (RFC 5321 4.5.3.1.8 asks servers
 * to take at least 100). */
#define MTA_RCPTS_PER_TXN 100

enum outcome {
	OUT_NONE,           /* not attempted (shutdown, session lost before it): retry soon */
	OUT_SENT,           /* 2xx after the data */
	OUT_TEMP,           /* 4xx, or no server reachable */
	OUT_PERM,           /* 5xx, or a permanent DNS answer */
};

struct rcpt_job {
	int64_t rcpt_id;
	char *addr;
	char *orcpt;
	unsigned notify;
	int attempts;
	bool warned;
	/* this attempt */
	enum outcome outcome;
	bool accepted;      /* RCPT got 2xx in the current transaction */
	char status[16];    /* RFC 3463 */
	char reply[512];    /* the remote's reply on one line, or our reason */
	char remote[256];   /* the server that said it */
};

/* One message for one destination, up to MTA_RCPTS_PER_TXN recipients. */
struct msg_job {
	struct mta *m;
	int64_t queue_id;
	char qid[17];
	char path[64];
	int64_t skip, size, created;
	unsigned flags;
	int ret;
	char *envid;
	char *sender;
	char domain[256];
	struct rcpt_job *rcpts;
	size_t nrcpts, caprcpts;
	bool remote_dsn;    /* the server that took it offered DSN (it reports success) */
	bool local;         /* mta_report_delivered: delivered here, not queued */
	bool expanded;      /* ... or sent on to a list's members (RFC 3461 "expanded") */
	struct msg_job *next;
};

struct out_session;

/* A destination domain with work in this round. */
struct dest {
	struct mta *m;
	char domain[256];
	char hop[256];      /* what is looked up: the domain, a route or the relayhost */
	int port;
	bool hop_mx;        /* look up hop's MX (else only its addresses) */
	bool routed;        /* a route or the relayhost: DNS "not found" defers, never bounces */
	bool auth;          /* the relayhost with relayhost_user: STARTTLS, then AUTH */
	/* MTA-STS (sts.c): looked up before the sessions start */
	struct sts_lookup *sts_lookup;
	bool sts_done;
	struct mtasts_policy *sts;          /* NULL: no policy */
	struct msg_job *head, **tail;
	size_t njobs;
	int sessions;
	int idle;           /* of them, waiting for more mail (smtp_out.c S_IDLE) */
	bool resolving, resolved;
	struct dns_mx_lookup *lookup;
	struct dns_mx_result *mx;
	size_t rotate;      /* sessions start at different equal-preference targets */
	struct dest *next;
};

struct mta {
	uv_loop_t *loop;
	struct server *srv;
	const struct conf *cfg;
	struct dns *dns;
	struct conn_registry reg;  /* outbound connections */
	SSL_CTX *tls;              /* client context (opportunistic: no verification) */
	char *relay_password;      /* relayhost_password_file's first line, or NULL */
	struct sts_entry *sts_cache;       /* MTA-STS policies (sts.c) */
	bool sts_loading;                  /* the saved ones are being read */
	size_t sts_cached;
	uv_timer_t timer;
	bool timer_open;
	int64_t timer_due;         /* unix time the timer fires, 0 = not armed */
	bool scanning, rescan;
	bool dispatching, redispatch;   /* dispatch() running; run it again */
	bool stopping;
	void (*stopped)(void *arg);
	uv_timer_t stop_timer;     /* reports the stop from the loop (maybe_stopped) */
	bool stop_armed;
	void *stopped_arg;
	struct dest *dests;
	size_t sessions;
	size_t pending;            /* results being written, DSNs being made */
	/* recipient ids in memory (being attempted or recorded) */
	int64_t *inflight;
	size_t inflight_cap, inflight_n;
	int64_t *released;         /* done while a scan ran (inflight_release) */
	size_t nreleased, capreleased;
	struct mta_stats stats;
};

/* sts.c: the MTA-STS policy of domain; cb(arg, policy or NULL) on the
 * loop thread unless cancelled.  Counted in m->pending. */
struct sts_lookup;
struct sts_lookup *sts_lookup(struct mta *m, const char *domain,
			      void (*cb)(void *arg, const struct mtasts_policy *p), void *arg);
void sts_cancel(struct sts_lookup *l);
void sts_cache_free(struct mta *m);
/* At start: the policies saved in the store go into the cache. */
void sts_load(struct mta *m);

/* smtp_out.c: start one session for d (it takes jobs from d->head). */
void smtp_out_start(struct dest *d);
/* Hand d's next job to a session of d that is waiting idle; false if none. */
bool smtp_out_wake(struct dest *d);
/* Close every session (shutdown). */
void smtp_out_close_all(struct mta *m);

/* mta.c, called by sessions */
/* A message's attempt is over: every rcpt has its outcome (OUT_NONE for
 * those not tried).  Takes ownership of j. */
void mta_job_done(struct msg_job *j);
/* A session ended; d may get more sessions or be freed. */
void mta_session_ended(struct dest *d);
/* The session could reach none of d's servers: every job still waiting
 * for d gets this temporary failure. */
void mta_dest_unreachable(struct dest *d, const char *why);
struct msg_job *mta_dest_take(struct dest *d);
/* expand.c: a queued list recipient (queue_entry.expand) is sent on to the
 * list's members; m->pending is counted and mta_inflight_done called. */
struct queue_entry;
void mta_expand_list(struct mta *m, const struct queue_entry *e);
/* One piece of work counted in m->pending is over (a policy load or save,
 * a lookup): the count goes down, and a stop waiting for it is reported. */
void mta_pending_done(struct mta *m);
/* Work on recipient rcpt_id (counted in m->pending) is over. */
void mta_inflight_done(struct mta *m, int64_t rcpt_id);

#endif
