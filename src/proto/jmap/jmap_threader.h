/* jmap_threader.h - threading new mail in the background.
 *
 * JMAP threads are filled from the change log by jmap_thread_sync, which
 * the requests that need threads run first.  So that the first request
 * after a burst of mail (or the first after an upgrade, which threads the
 * whole account) does not pay for it, the threader runs the same sync in
 * a pool job shortly after mail changes (server->mail_changed, debounced
 * to one job at a time), for every account whose threads lag its change
 * log.  No timer runs while nothing changes. */
#ifndef YUBIN_PROTO_JMAP_THREADER_H
#define YUBIN_PROTO_JMAP_THREADER_H

#include <stdbool.h>

struct server;
struct jmap_threader;

/* Also runs once at start (accounts threaded before an upgrade). */
struct jmap_threader *jmap_threader_new(struct server *srv);
/* Shutdown: no new job; the one in flight finishes (the loop waits). */
void jmap_threader_shutdown(struct jmap_threader *t);
/* A job is in flight (it reads and writes the store). */
bool jmap_threader_busy(const struct jmap_threader *t);
/* After the loop has ended. */
void jmap_threader_free(struct jmap_threader **t);

#endif
