/* jmap_push.h - the JMAP event source (RFC 8620 7.3): push over
 * text/event-stream.
 *
 * GET /jmap/eventsource/?types=T&closeafter=C&ping=N, once authenticated
 * like the other resources (jmap_session.c), becomes a streamed answer
 * (core/http's http_stream).  A stream learns of changes through
 * server_watch on each of the account's mailboxes and server_account_watch
 * (mailboxes created, deleted, renamed); each change queues a state check
 * in a pool job (jmap_mail_state, jmap_mailbox_state: store reads), at
 * most one in flight per stream and one more queued however many changes
 * come meanwhile.  When a state of the types asked for has moved, the
 * stream gets "event: state" with a StateChange object.  closeafter=no
 * starts with the current states; closeafter=state takes them as its
 * starting point and ends after the first state event.  When the first
 * check sends no event, a ": ready" comment says that changes from then
 * on are seen (and brings the headers, which h2o holds until the first
 * data).  ping=N (clamped to 10..300 s, 0 none): "event: ping" with
 * {"interval": N} every N seconds.  At most JMAP_PUSH_PER_ACCOUNT streams
 * per account (429 beyond) and JMAP_PUSH_MAX in all (503).
 *
 * Loop thread only. */
#ifndef YUBIN_PROTO_JMAP_PUSH_H
#define YUBIN_PROTO_JMAP_PUSH_H

#include <stddef.h>
#include <stdint.h>

struct server;
struct http_request;
struct jmap_push;

#define JMAP_PUSH_PER_ACCOUNT 8
#define JMAP_PUSH_MAX 1024
#define JMAP_PUSH_PING_MIN 10
#define JMAP_PUSH_PING_MAX 300

struct jmap_push *jmap_push_new(struct server *srv);
/* Answer r (GET of the event source, authenticated as account_id): an
 * event stream, or a problem (400 bad query, 429/503 caps). */
void jmap_push_start(struct jmap_push *p, struct http_request *r, int64_t account_id);
size_t jmap_push_count(const struct jmap_push *p);
/* Shutdown: end every stream, stop the ping timer. */
void jmap_push_shutdown(struct jmap_push *p);
/* After the loop has run its close callbacks; state checks still in a
 * pool job must be done.  NULL-safe. */
void jmap_push_free(struct jmap_push **p);

#endif
