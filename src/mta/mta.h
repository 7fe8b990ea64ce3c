/* mta.h - the outbound side of yubind: the queue manager and its SMTP client.
 *
 * Messages for remote recipients are queue rows (store_queue.c), written in
 * the same group commit as the delivery that accepted them.  The queue
 * manager, on the loop thread, reads the recipients that are due, groups
 * them by destination domain, finds where each domain's mail goes (a route,
 * the relayhost, or DNS MX then A/AAAA through libunbound), and runs
 * outbound SMTP sessions -- several messages per connection, a bounded
 * number of connections per domain and in all.  Every outcome is recorded
 * in the store: 2xx removes the recipient, 4xx reschedules it with
 * exponential backoff, 5xx (or the end of queue_lifetime) removes it and
 * sends the envelope sender a delivery status notification (RFC 3464).
 * Nothing is polled: one timer waits for the earliest retry. */
#ifndef YUBIN_MTA_MTA_H
#define YUBIN_MTA_MTA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

struct server;
struct mta;

struct mta *mta_start(uv_loop_t *loop, struct server *srv, char **error_r);
/* New mail was queued (or an administrator flushed the queue): look soon. */
void mta_kick(struct mta *m);
/* Stop starting work; sessions in progress end at their next step (what
 * they learnt is recorded) and done(arg) runs once the last has gone. */
void mta_shutdown(struct mta *m, void (*done)(void *arg), void *arg);
/* Cut the outbound connections still open (shutdown_timeout passed). */
/* What the queue manager still waits for, for the shutdown log
 * ("sessions=0 pending=1 scanning=no"). */
void mta_busy(const struct mta *m, char *out, size_t outsz);
void mta_cut(struct mta *m);
/* After mta_shutdown's done; NULL-safe. */
void mta_free(struct mta **m);

/* Local recipients that asked for NOTIFY=SUCCESS (RFC 3461) got the
 * message: send the sender a "delivered" notification (copies rep). */
struct delivered_report;
void mta_report_delivered(struct mta *m, const struct delivered_report *rep);

/* Counters for the log and tests. */
struct mta_stats {
	uint64_t sent, deferred, bounced, dsn_sent, connections, sessions_reused;
};
void mta_get_stats(const struct mta *m, struct mta_stats *st);

#endif
