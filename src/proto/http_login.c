/* http_login.c - held-back refusals of HTTP logins (see http_login.h). */
#include "proto/http_login.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "core/http.h"
#include "core/log.h"
#include "core/util.h"
#include "proto/server.h"

#define USER_LOG_MAX 330

struct hold {
	uv_timer_t timer;           /* first: the close callback frees it */
	struct http_holds *h;
	struct http_request *r;
	struct hold *prev, *next;
};

struct http_holds {
	struct server *srv;
	void (*refuse)(struct http_request *r);
	struct hold *head;
};

struct http_holds *http_holds_new(struct server *srv, void (*refuse)(struct http_request *r))
{
	struct http_holds *h = xcalloc(1, sizeof *h);
	h->srv = srv;
	h->refuse = refuse;
	return h;
}

static void hold_closed(uv_handle_t *t)
{
	free(t);
}

static void hold_fire(uv_timer_t *t)
{
	struct hold *d = (struct hold *)t;
	struct http_holds *h = d->h;
	if (d->prev)
		d->prev->next = d->next;
	else
		h->head = d->next;
	if (d->next)
		d->next->prev = d->prev;
	h->refuse(d->r);
	uv_close((uv_handle_t *)&d->timer, hold_closed);
}

void http_login_failed(struct http_holds *h, struct http_request *r, const char *proto,
		       const char *method, const char *address)
{
	struct server *srv = h->srv;
	char user[USER_LOG_MAX + 1];
	http_log_safe(address, strlen(address), user, sizeof user);
	uint64_t delay = srv->shutting_down ? 0 : server_auth_failed(srv, r->peer, user);
	log_info("conn=%s %s: auth failed user=%s method=%s from [%s]%s", r->connid, proto, user,
		 method, r->peer, delay ? " (reply delayed)" : "");
	if (delay == 0) {
		h->refuse(r);
		return;
	}
	struct hold *d = xcalloc(1, sizeof *d);
	d->h = h;
	d->r = r;
	d->next = h->head;
	if (h->head)
		h->head->prev = d;
	h->head = d;
	uv_timer_init(srv->loop, &d->timer);
	uv_timer_start(&d->timer, hold_fire, delay, 0);
}

void http_holds_flush(struct http_holds *h)
{
	while (h && h->head) {
		struct hold *d = h->head;
		uv_timer_stop(&d->timer);
		hold_fire(&d->timer);
	}
}

void http_holds_free(struct http_holds **hp)
{
	struct http_holds *h = *hp;
	if (h == NULL)
		return;
	assert(h->head == NULL);
	free(h);
	*hp = NULL;
}
