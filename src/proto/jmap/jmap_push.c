/* jmap_push.c - the event source: streams, their watches, state checks in
 * pool jobs, pings on one timer for all streams.
 *
 * An idle stream is a struct stream (about a hundred bytes), its watched
 * mailbox ids and one server_watch entry per mailbox; one timer for all
 * (1 s ticks while any stream is open) sends the pings due and notices
 * HTTP/1 clients that have gone (http_stream_probe). */
#include "proto/jmap/jmap_push.h"

#include <assert.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "core/http.h"
#include "core/log.h"
#include "core/util.h"
#include "proto/jmap/jmap_mail.h"
#include "proto/server.h"
#include "store/store_jmap.h"

enum {
	T_EMAIL = 1 << 0,
	T_MAILBOX = 1 << 1,
	T_THREAD = 1 << 2,
	T_DELIVERY = 1 << 3,
	T_ALL = 0xf,
};

static const struct {
	const char *name;
	unsigned bit;
} type_names[] = {
	{"Email", T_EMAIL}, {"Mailbox", T_MAILBOX}, {"Thread", T_THREAD},
	{"EmailDelivery", T_DELIVERY},
};

struct stream {
	struct jmap_push *p;
	struct http_stream *hs;     /* NULL once ended */
	int64_t account_id;
	int64_t *mbox;              /* watched mailboxes */
	size_t nmbox;
	uint64_t next_ping;         /* uv_now ms */
	uint64_t h_email, h_mailbox;    /* digests of the states last sent */
	uint16_t ping;              /* s; 0 none */
	uint8_t types;
	bool closeafter;            /* closeafter=state */
	bool based;                 /* the first check is done */
	bool running, again, reload, dead;
	struct stream *prev, *next;
};

struct jmap_push {
	struct server *srv;
	struct stream *head;
	size_t count;
	uv_timer_t tick;
	bool ticking, closed;
};

/* One state check (pool thread reads, loop thread applies). */
struct check {
	struct stream *s;
	struct store *st;
	bool reload;
	int rc;
	char email[64], mailbox[64];
	int64_t *ids;
	size_t nids;
};

static uint64_t digest(const char *s)
{
	uint64_t h = 1469598103934665603ull;
	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 1099511628211ull;
	return h | 1;               /* never 0: 0 is "nothing sent yet" */
}

static void unlink_stream(struct jmap_push *p, struct stream *s)
{
	if (s->prev)
		s->prev->next = s->next;
	else
		p->head = s->next;
	if (s->next)
		s->next->prev = s->prev;
	s->prev = s->next = NULL;
	p->count--;
}

static void stream_free(struct stream *s)
{
	free(s->mbox);
	free(s);
}

/* The stream is over (its http_stream already ended or gone): drop the
 * watches; free it unless a check still points at it. */
static void stream_close(struct stream *s)
{
	struct server *srv = s->p->srv;
	assert(!s->dead);
	s->hs = NULL;
	for (size_t i = 0; i < s->nmbox; i++)
		server_unwatch(srv, s->mbox[i], s);
	s->nmbox = 0;
	server_account_unwatch(srv, s->account_id, s);
	unlink_stream(s->p, s);
	if (s->running)
		s->dead = true;
	else
		stream_free(s);
}

static void http_closed(void *arg)
{
	stream_close(arg);
}

/* 0, or -1 when the stream is gone (a slow reader; s is closed). */
static int stream_send(struct stream *s, const char *data, size_t len)
{
	if (http_stream_send(s->hs, data, len) < 0) {
		stream_close(s);
		return -1;
	}
	return 0;
}

static void check_work(void *arg)
{
	struct check *c = arg;
	int64_t id = c->s->account_id;
	/* the states first: a mailbox created after them is seen again */
	c->rc = jmap_mail_state(c->st, id, c->email, sizeof c->email);
	if (c->rc == 0)
		c->rc = jmap_mailbox_state(c->st, id, c->mailbox, sizeof c->mailbox);
	if (c->rc == 0 && c->reload) {
		struct store_jmap_mailbox *v = NULL;
		size_t n = 0;
		char *err = NULL;
		if (store_jmap_mailboxes(c->st, id, &v, &n, &err) < 0) {
			log_error("jmap: event source: the mailboxes of account %lld: %s",
				  (long long)id, err ? err : "store error");
			free(err);
			c->rc = -1;
		} else {
			c->ids = xreallocarray(NULL, n ? n : 1, sizeof *c->ids);
			for (size_t i = 0; i < n; i++)
				c->ids[i] = v[i].id;
			c->nids = n;
		}
		store_jmap_mailboxes_free(v, n);
	}
}

static void check_done(void *arg);

static void on_change(void *arg);
static void on_account_change(void *arg);

static void check_start(struct stream *s)
{
	struct check *c = xcalloc(1, sizeof *c);
	c->s = s;
	c->st = s->p->srv->store;
	c->reload = s->reload;
	s->reload = false;
	s->again = false;
	s->running = true;
	server_job(s->p->srv, NULL, check_work, check_done, c);
}

static bool has_id(const int64_t *v, size_t n, int64_t id)
{
	for (size_t i = 0; i < n; i++)
		if (v[i] == id)
			return true;
	return false;
}

/* Watch exactly ids (heap, taken over); true if a mailbox was added. */
static bool rewatch(struct stream *s, int64_t *ids, size_t n)
{
	struct server *srv = s->p->srv;
	bool grew = false;
	for (size_t i = 0; i < s->nmbox; i++)
		if (!has_id(ids, n, s->mbox[i]))
			server_unwatch(srv, s->mbox[i], s);
	for (size_t i = 0; i < n; i++) {
		if (!has_id(s->mbox, s->nmbox, ids[i])) {
			server_watch(srv, ids[i], on_change, s);
			grew = true;
		}
	}
	free(s->mbox);
	s->mbox = ids;
	s->nmbox = n;
	return grew;
}

/* "event: state" for the types whose state moved; 1 sent, 0 nothing to
 * send, -1 the stream is gone. */
static int send_state(struct stream *s, const struct check *c)
{
	uint64_t he = digest(c->email), hm = digest(c->mailbox);
	json_t *mine = json_object();
	if (he != s->h_email) {
		if (s->types & T_EMAIL)
			json_object_set_new(mine, "Email", json_string(c->email));
		if (s->types & T_THREAD)
			json_object_set_new(mine, "Thread", json_string(c->email));
		if (s->types & T_DELIVERY)
			json_object_set_new(mine, "EmailDelivery", json_string(c->email));
	}
	if (hm != s->h_mailbox && (s->types & T_MAILBOX))
		json_object_set_new(mine, "Mailbox", json_string(c->mailbox));
	s->h_email = he;
	s->h_mailbox = hm;
	if (json_object_size(mine) == 0) {
		json_decref(mine);
		return 0;
	}
	char acct[32];
	snprintf(acct, sizeof acct, "a%lld", (long long)s->account_id);
	json_t *ev = json_pack("{s:s, s:{s:o}}", "@type", "StateChange", "changed", acct, mine);
	char *text = json_dumps(ev, JSON_COMPACT);
	json_decref(ev);
	char *line = xasprintf("event: state\ndata: %s\n\n", text ? text : "{}");
	free(text);
	int rc = stream_send(s, line, strlen(line));
	free(line);
	return rc < 0 ? -1 : 1;
}

static void check_done(void *arg)
{
	struct check *c = arg;
	struct stream *s = c->s;
	s->running = false;
	if (s->dead) {
		free(c->ids);
		free(c);
		stream_free(s);
		return;
	}
	bool grew = false;
	log_debug("jmap: event source check account=a%lld rc=%d email=%s mailbox=%s "
		  "reload=%d", (long long)s->account_id, c->rc, c->email, c->mailbox, c->reload);
	if (c->rc < 0) {
		/* try again at the next change (or the next ping tick) */
		s->reload = s->reload || c->reload;
		free(c->ids);
	} else {
		if (c->reload)
			grew = rewatch(s, c->ids, c->nids);
		else
			free(c->ids);
		int sent;
		if (!s->based && s->closeafter) {
			/* the starting point only: the client knows these states */
			s->h_email = digest(c->email);
			s->h_mailbox = digest(c->mailbox);
			sent = 0;
		} else {
			sent = send_state(s, c);
		}
		/* the first check sent nothing: a comment, so that the client
		 * has the headers and knows changes from now on are seen */
		if (!s->based && sent == 0)
			sent = stream_send(s, ": ready\n\n", 9) < 0 ? -1 : 0;
		s->based = true;
		if (sent < 0) {
			free(c);
			return;
		}
		if (sent > 0 && s->closeafter) {
			struct http_stream *hs = s->hs;
			free(c);
			http_stream_end(hs);
			stream_close(s);
			return;
		}
	}
	free(c);
	/* a mailbox newly watched may have changed before its watch */
	if (s->again || grew)
		check_start(s);
}

static void kick(struct stream *s, bool reload)
{
	if (s->dead || s->hs == NULL)
		return;
	s->reload = s->reload || reload;
	if (s->running)
		s->again = true;
	else
		check_start(s);
}

static void on_change(void *arg)
{
	kick(arg, false);
}

static void on_account_change(void *arg)
{
	kick(arg, true);
}

/* Every second while streams are open: the pings due, and HTTP/1 clients
 * that have gone (h2o would not notice before the next write). */
static void on_tick(uv_timer_t *t)
{
	struct jmap_push *p = t->data;
	uint64_t now = uv_now(p->srv->loop);
	for (struct stream *s = p->head, *next; s; s = next) {
		next = s->next;
		if (http_stream_probe(s->hs)) {
			stream_close(s);
			continue;
		}
		if (s->ping == 0 || now + 50 < s->next_ping)
			continue;
		s->next_ping = now + (uint64_t)s->ping * 1000;
		char line[64];
		int n = snprintf(line, sizeof line, "event: ping\ndata: {\"interval\":%u}\n\n",
				 (unsigned)s->ping);
		(void)stream_send(s, line, (size_t)n);
	}
	if (p->head == NULL) {
		uv_timer_stop(&p->tick);
		p->ticking = false;
	}
}

/* ---- the request ---- */

static void problem(struct http_request *r, int status, const char *detail)
{
	json_t *v = json_pack("{s:s, s:i, s:s}", "type", "about:blank", "status", status,
			      "detail", detail);
	char *text = json_dumps(v, JSON_COMPACT);
	json_decref(v);
	http_respond(r, status, "application/problem+json", text, text ? strlen(text) : 0);
	free(text);
}

/* The value of name in the query, %XX-decoded into out; 1 found, 0 not
 * there, -1 too long or a bad escape. */
static int query_get(const char *q, const char *name, char *out, size_t outsz)
{
	size_t nl = strlen(name);
	while (*q) {
		size_t n = strcspn(q, "&");
		if (n > nl && strncmp(q, name, nl) == 0 && q[nl] == '=') {
			size_t w = 0;
			for (size_t i = nl + 1; i < n; i++) {
				char ch = q[i];
				if (ch == '%') {
					if (i + 2 >= n)
						return -1;
					char hex[3] = {q[i + 1], q[i + 2], 0};
					char *end;
					long v = strtol(hex, &end, 16);
					if (*end || v <= 0)
						return -1;
					ch = (char)v;
					i += 2;
				} else if (ch == '+') {
					ch = ' ';
				}
				if (w + 1 >= outsz)
					return -1;
				out[w++] = ch;
			}
			out[w] = '\0';
			return 1;
		}
		if (n == nl && strncmp(q, name, nl) == 0) {
			out[0] = '\0';
			return 1;
		}
		q += n + (q[n] == '&');
	}
	return 0;
}

/* types: "*" or names separated by commas (unknown ones ignored). */
static unsigned parse_types(const char *v)
{
	if (strcmp(v, "*") == 0)
		return T_ALL;
	unsigned bits = 0;
	while (*v) {
		size_t n = strcspn(v, ",");
		for (size_t i = 0; i < sizeof type_names / sizeof type_names[0]; i++)
			if (strlen(type_names[i].name) == n &&
			    strncmp(v, type_names[i].name, n) == 0)
				bits |= type_names[i].bit;
		v += n + (v[n] == ',');
	}
	return bits;
}

void jmap_push_start(struct jmap_push *p, struct http_request *r, int64_t account_id)
{
	char types[256], close[16], ping[16];
	int rt = query_get(r->query, "types", types, sizeof types);
	int rc = query_get(r->query, "closeafter", close, sizeof close);
	int rp = query_get(r->query, "ping", ping, sizeof ping);
	if (rt < 0 || rc < 0 || rp < 0) {
		problem(r, 400, "types, closeafter or ping is malformed");
		return;
	}
	if (rt == 0)
		snprintf(types, sizeof types, "*");
	if (rc == 0)
		snprintf(close, sizeof close, "no");
	if (strcmp(close, "state") != 0 && strcmp(close, "no") != 0) {
		problem(r, 400, "closeafter must be \"state\" or \"no\"");
		return;
	}
	long pingv = 0;
	if (rp == 1) {
		char *end;
		pingv = strtol(ping, &end, 10);
		if (ping[0] < '0' || ping[0] > '9' || *end || pingv < 0) {
			problem(r, 400, "ping must be a number of seconds");
			return;
		}
		if (pingv > 0 && pingv < JMAP_PUSH_PING_MIN)
			pingv = JMAP_PUSH_PING_MIN;
		if (pingv > JMAP_PUSH_PING_MAX)
			pingv = JMAP_PUSH_PING_MAX;
	}
	if (p->closed || p->count >= JMAP_PUSH_MAX) {
		log_warn("conn=%s jmap: event source refused: %zu streams open (the most)",
			 r->connid, p->count);
		problem(r, 503, "too many event streams are open on this server; try again later");
		return;
	}
	size_t mine = 0;
	for (struct stream *s = p->head, *next; s; s = next) {
		next = s->next;
		if (s->account_id != account_id)
			continue;
		if (http_stream_probe(s->hs))
			stream_close(s);        /* its client has gone: the slot is free */
		else
			mine++;
	}
	if (mine >= JMAP_PUSH_PER_ACCOUNT) {
		log_info("conn=%s jmap: event source refused: account a%lld has %zu streams open",
			 r->connid, (long long)account_id, mine);
		problem(r, 429, "too many event streams are open for this account (at most 8)");
		return;
	}
	struct stream *s = xcalloc(1, sizeof *s);
	s->p = p;
	s->account_id = account_id;
	s->types = (uint8_t)parse_types(types);
	s->closeafter = strcmp(close, "state") == 0;
	s->ping = (uint16_t)pingv;
	s->reload = true;
	char connid[24];
	snprintf(connid, sizeof connid, "%s", r->connid);
	http_request_add_header(r, "x-accel-buffering", "no");
	s->hs = http_stream_start(r, 200, "text/event-stream; charset=utf-8", http_closed, s);
	if (s->hs == NULL) {
		free(s);
		return;
	}
	log_info("conn=%s jmap: event source open account=a%lld types=%s closeafter=%s "
		 "ping=%ld", connid, (long long)account_id, types, close, pingv);
	s->next = p->head;
	if (p->head)
		p->head->prev = s;
	p->head = s;
	p->count++;
	server_account_watch(p->srv, account_id, on_account_change, s);
	s->next_ping = uv_now(p->srv->loop) + (uint64_t)s->ping * 1000;
	if (!p->ticking) {
		uv_timer_start(&p->tick, on_tick, 1000, 1000);
		p->ticking = true;
	}
	check_start(s);
}

size_t jmap_push_count(const struct jmap_push *p)
{
	return p ? p->count : 0;
}

struct jmap_push *jmap_push_new(struct server *srv)
{
	struct jmap_push *p = xcalloc(1, sizeof *p);
	p->srv = srv;
	uv_timer_init(srv->loop, &p->tick);
	p->tick.data = p;
	return p;
}

static void tick_closed(uv_handle_t *h)
{
	(void)h;
}

void jmap_push_shutdown(struct jmap_push *p)
{
	if (p == NULL || p->closed)
		return;
	while (p->head) {
		struct stream *s = p->head;
		struct http_stream *hs = s->hs;
		stream_close(s);
		if (hs)
			http_stream_end(hs);
	}
	p->closed = true;
	p->ticking = false;
	uv_close((uv_handle_t *)&p->tick, tick_closed);
}

void jmap_push_free(struct jmap_push **pp)
{
	struct jmap_push *p = *pp;
	if (p == NULL)
		return;
	assert(p->head == NULL);
	free(p);
	*pp = NULL;
}
