/* jmap_threader.c - background threading (see jmap_threader.h). */
#include "proto/jmap/jmap_threader.h"

#include <stdbool.h>
#include <stdlib.h>
#include <uv.h>

#include "core/log.h"
#include "core/util.h"
#include "proto/jmap/jmap_mail.h"
#include "proto/server.h"
#include "store/store_jmap.h"

/* How long after a change the job starts: a burst of deliveries is
 * threaded in one go. */
#define THREADER_DELAY_MS 200

struct jmap_threader {
	struct server *srv;
	uv_timer_t timer;
	bool running;               /* a job in flight */
	bool again;                 /* changes came while it ran */
	bool stopping;
	size_t accounts;            /* threaded by the last job */
};

static void work(void *arg)
{
	struct jmap_threader *t = arg;
	int64_t *ids = NULL;
	size_t n = 0;
	char *err = NULL;
	t->accounts = 0;
	if (store_jmap_accounts_unthreaded(t->srv->store, &ids, &n, &err) < 0) {
		log_error("jmap: background threading: %s", err);
		free(err);
		return;
	}
	for (size_t i = 0; i < n && !t->srv->shutting_down; i++)
		if (jmap_thread_sync(t->srv->store, ids[i]) == 0)
			t->accounts++;
	free(ids);
}

static void on_timer(uv_timer_t *h);

static void done(void *arg)
{
	struct jmap_threader *t = arg;
	t->running = false;
	if (t->again && !t->stopping) {
		t->again = false;
		uv_timer_start(&t->timer, on_timer, THREADER_DELAY_MS, 0);
	}
}

static void on_timer(uv_timer_t *h)
{
	struct jmap_threader *t = h->data;
	if (t->stopping)
		return;
	t->running = true;
	t->again = false;
	server_job(t->srv, NULL, work, done, t);
}

static void on_change(struct server *srv, void *arg)
{
	(void)srv;
	struct jmap_threader *t = arg;
	if (t->running)
		t->again = true;
	else if (!t->stopping && !uv_is_active((uv_handle_t *)&t->timer))
		uv_timer_start(&t->timer, on_timer, THREADER_DELAY_MS, 0);
}

struct jmap_threader *jmap_threader_new(struct server *srv)
{
	struct jmap_threader *t = xcalloc(1, sizeof *t);
	t->srv = srv;
	uv_timer_init(srv->loop, &t->timer);
	t->timer.data = t;
	srv->mail_changed = on_change;
	srv->mail_changed_arg = t;
	uv_timer_start(&t->timer, on_timer, 0, 0);
	return t;
}

void jmap_threader_shutdown(struct jmap_threader *t)
{
	if (t == NULL || t->stopping)
		return;
	t->stopping = true;
	t->srv->mail_changed = NULL;
	t->srv->mail_changed_arg = NULL;
	uv_timer_stop(&t->timer);
	uv_close((uv_handle_t *)&t->timer, NULL);
}

bool jmap_threader_busy(const struct jmap_threader *t)
{
	return t && t->running;
}

void jmap_threader_free(struct jmap_threader **t)
{
	if (*t == NULL)
		return;
	free(*t);
	*t = NULL;
}
