/* http.c - libh2o on the daemon's libuv loop: listeners, connection caps,
 * the request handle protocols see, the access log, shutdown.
 *
 * h2o is built for libuv here (Debian's libh2o): h2o_context_init takes our
 * uv_loop_t and h2o's timers are uv timers on it, so there is no second
 * loop and no thread.  We accept on our own uv_tcp_t, wrap it with
 * h2o_uv_socket_create and hand it to h2o_accept, which runs the TLS
 * handshake (on the SSL_CTX in the accept context) and the HTTP/1 or
 * HTTP/2 session.  The uv_tcp_t is the first member of struct http_conn:
 * h2o's close callback on the handle is where the connection is freed. */
#include "core/http.h"

#include <arpa/inet.h>
#include <assert.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>

#include <h2o.h>
#include <h2o/http2.h>
#include <h2o/http2_internal.h>

#include "core/conf.h"
#include "core/conn.h"
#include "core/listener.h"
#include "core/log.h"
#include "core/util.h"

struct http_listener {
	uv_tcp_t tcp;               /* first: the handle is the listener */
	struct http_server *s;
	bool tls;
	char name[16];
	char addr[80];
	struct http_listener *next;
};

struct http_conn {
	uv_tcp_t tcp;               /* first: h2o's close callback gets it */
	struct http_server *s;
	h2o_socket_t *sock;         /* NULL once h2o has closed it */
	char idstr[20];
	char peer[64];
	int peer_port;
	bool loopback, tls;
	unsigned inflight;          /* requests handed to the handler, not yet disposed */
	struct http_conn *prev, *next;
};

/* Lives in the h2o request's pool; its dispose runs when h2o drops the
 * request (answered and sent, or the connection closed). */
struct http_link {
	h2o_req_t *req;
	struct http_request *r;     /* NULL once answered */
	struct http_conn *hc;
};

struct jhandler {
	h2o_handler_t super;
	struct http_server *s;
};

struct jlogger {
	h2o_logger_t super;
	struct http_server *s;
};

struct http_server {
	uv_loop_t *loop;
	struct conn_registry *reg;
	SSL_CTX *tls;
	struct http_handler h;
	h2o_globalconf_t config;
	h2o_context_t ctx;
	h2o_accept_ctx_t accept_plain, accept_tls;
	bool ctx_live;
	struct http_listener *listeners;
	struct http_conn *conns;
	size_t count;
	struct http_stream *streams;    /* streamed answers in progress */
	size_t nstreams;
	bool shutting_down;
	void (*on_done)(void *arg);
	void *done_arg;
	uv_timer_t sweep;               /* h2_unstick, while connections are open */
	bool sweep_closed;
};

/* Seconds between two looks for HTTP/2 connections h2o has left stuck. */
#define HTTP_SWEEP_MS 2000

static void fmt_peer(const struct sockaddr *sa, char *host, size_t hostsz, int *port, bool *loop)
{
	*loop = false;
	*port = 0;
	snprintf(host, hostsz, "?");
	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *in = (const struct sockaddr_in *)sa;
		inet_ntop(AF_INET, &in->sin_addr, host, (socklen_t)hostsz);
		*port = ntohs(in->sin_port);
		*loop = (ntohl(in->sin_addr.s_addr) >> 24) == 127;
	} else if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;
		*port = ntohs(in6->sin6_port);
		if (IN6_IS_ADDR_V4MAPPED(&in6->sin6_addr)) {
			inet_ntop(AF_INET, &in6->sin6_addr.s6_addr[12], host, (socklen_t)hostsz);
			*loop = in6->sin6_addr.s6_addr[12] == 127;
		} else {
			inet_ntop(AF_INET6, &in6->sin6_addr, host, (socklen_t)hostsz);
			*loop = IN6_IS_ADDR_LOOPBACK(&in6->sin6_addr);
		}
	}
}

void http_log_safe(const char *in, size_t len, char *out, size_t outsz)
{
	size_t i = 0;
	for (; i < len && i + 1 < outsz; i++) {
		unsigned char ch = (unsigned char)in[i];
		out[i] = ch > 0x20 && ch < 0x7f ? (char)ch : '?';
	}
	out[i] = '\0';
}

static struct http_conn *conn_of(h2o_req_t *req)
{
	h2o_socket_t *sock = req->conn->callbacks->get_socket ?
		req->conn->callbacks->get_socket(req->conn) : NULL;
	return sock ? sock->on_close.data : NULL;
}

/* Make the kernel end the connection: h2o reads EOF (or fails its next
 * write) and closes it the ordinary way, so nothing is freed under it. */
static void conn_cut(struct http_conn *hc)
{
	uv_os_fd_t fd;

	if (uv_is_closing((uv_handle_t *)&hc->tcp) || hc->sock == NULL)
		return;
	if (uv_fileno((uv_handle_t *)&hc->tcp, &fd) == 0)
		(void)shutdown(fd, SHUT_RDWR);
}

/* h2o 2.2 (Debian's libh2o 2.2.5) defers closing an HTTP/2 connection
 * whose client went away while a write was requested (its write timer
 * linked); the timer then finds nothing to write in the closing state and
 * never closes it, so the connection stays with its descriptor for good
 * (and yubind's shutdown waits for it).  Such a connection gets a GOAWAY
 * to write: h2o closes it when that write completes, as it always does in
 * the closing state.  true if hc was one. */
/* The client has closed its side (or reset): POLLRDHUP / POLLHUP. */
static bool peer_gone(struct http_conn *hc)
{
	uv_os_fd_t fd;
	if (uv_fileno((uv_handle_t *)&hc->tcp, &fd) != 0)
		return false;
	struct pollfd pfd = {.fd = fd, .events = POLLRDHUP};
	return poll(&pfd, 1, 0) > 0 && (pfd.revents & (POLLRDHUP | POLLHUP | POLLERR));
}

static h2o_http2_conn_t *h2_conn(struct http_conn *hc)
{
	/* not sock->data: it still points at h2o's connection after h2o has
	 * freed it (while the socket's TLS shutdown goes on) */
	h2o_linklist_t *anchor = &hc->s->ctx.http2._conns;
	for (h2o_linklist_t *n = anchor->next; n != anchor; n = n->next) {
		h2o_http2_conn_t *x = H2O_STRUCT_FROM_MEMBER(h2o_http2_conn_t, _conns, n);
		if (x->sock == hc->sock)
			return x;
	}
	return NULL;
}

static bool h2_unstick(struct http_conn *hc)
{
	if (hc->sock == NULL || !hc->tls || uv_is_closing((uv_handle_t *)&hc->tcp))
		return false;
	h2o_iovec_t proto = h2o_socket_ssl_get_selected_protocol(hc->sock);
	if (proto.len != 2 || memcmp(proto.base, "h2", 2) != 0)
		return false;
	h2o_http2_conn_t *c = h2_conn(hc);
	if (c == NULL && hc->inflight == 0 && peer_gone(hc)) {
		/* h2o's HTTP/2 layer has let go of the socket (it called
		 * h2o_socket_close), but the socket's TLS shutdown never
		 * finished: run that close again, which disposes it */
		log_info("conn=%s http: closing a socket the HTTP library left open after its "
			 "client went away", hc->idstr);
		h2o_socket_close(hc->sock);
		return true;
	}
	if (c == NULL || c->state != H2O_HTTP2_CONN_STATE_IS_CLOSING ||
	    c->_write.buf_in_flight != NULL || h2o_timeout_is_linked(&c->_write.timeout_entry))
		return false;
	log_info("conn=%s http: closing an HTTP/2 connection the HTTP library left open "
		 "after its client went away", hc->idstr);
	h2o_http2_encode_goaway_frame(&c->_write.buf, c->pull_stream_ids.max_open,
				      H2O_HTTP2_ERROR_NONE, h2o_iovec_init(NULL, 0));
	h2o_timeout_link(c->super.ctx->loop, &c->super.ctx->zero_timeout, &c->_write.timeout_entry);
	return true;
}

static void sweep_cb(uv_timer_t *t)
{
	struct http_server *s = t->data;
	for (struct http_conn *hc = s->conns; hc; hc = hc->next)
		h2_unstick(hc);
}

static void maybe_done(struct http_server *s)
{
	if (!s->shutting_down || s->count > 0 || s->on_done == NULL)
		return;
	void (*cb)(void *) = s->on_done;
	s->on_done = NULL;
	if (!s->sweep_closed) {
		s->sweep_closed = true;
		uv_close((uv_handle_t *)&s->sweep, NULL);
	}
	if (s->ctx_live) {
		/* HTTP/2's graceful-shutdown timer, armed by
		 * h2o_context_request_shutdown, has nothing left to wait for */
		if (h2o_timeout_is_linked(&s->ctx.http2._graceful_shutdown_timeout))
			h2o_timeout_unlink(&s->ctx.http2._graceful_shutdown_timeout);
		/* closes h2o's timers and queue on the loop; the memory is ours
		 * until http_server_free */
		h2o_context_dispose(&s->ctx);
		s->ctx_live = false;
	}
	cb(s->done_arg);
}

static void conn_closed(uv_handle_t *h)
{
	struct http_conn *hc = (struct http_conn *)h;
	struct http_server *s = hc->s;

	if (hc->prev)
		hc->prev->next = hc->next;
	else
		s->conns = hc->next;
	if (hc->next)
		hc->next->prev = hc->prev;
	s->count--;
	if (s->count == 0 && !s->sweep_closed)
		uv_timer_stop(&s->sweep);
	log_debug("conn=%s http: closed", hc->idstr);
	free(hc);
	maybe_done(s);
}

static void sock_closed(void *data)
{
	struct http_conn *hc = data;
	hc->sock = NULL;
}

static void refused_closed(uv_handle_t *h)
{
	free(h);
}

/* The registry's view of our connections (its caps count them). */
static size_t others(void *arg, const char *peer)
{
	const struct http_server *s = arg;
	if (peer == NULL)
		return s->count;
	size_t n = 0;
	for (const struct http_conn *o = s->conns; o; o = o->next)
		if (strcmp(o->peer, peer) == 0)
			n++;
	return n;
}

static void on_connection(uv_stream_t *server, int status)
{
	struct http_listener *l = (struct http_listener *)server;
	struct http_server *s = l->s;

	if (status < 0) {
		log_warn("listener %s %s: accept error: %s", l->name, l->addr,
			 uv_strerror(status));
		return;
	}
	struct http_conn *hc = xcalloc(1, sizeof *hc);
	uv_tcp_init(s->loop, &hc->tcp);
	if (uv_accept(server, (uv_stream_t *)&hc->tcp) != 0) {
		uv_close((uv_handle_t *)&hc->tcp, refused_closed);
		return;
	}
	struct sockaddr_storage ss;
	int sl = sizeof ss;
	if (uv_tcp_getpeername(&hc->tcp, (struct sockaddr *)&ss, &sl) == 0)
		fmt_peer((struct sockaddr *)&ss, hc->peer, sizeof hc->peer, &hc->peer_port,
			 &hc->loopback);
	const char *why = s->shutting_down ? "shutting down" : registry_refusal(s->reg, hc->peer);
	if (why) {
		log_warn("listener %s: refused connection from [%s]:%d: %s", l->name, hc->peer,
			 hc->peer_port, why);
		uv_close((uv_handle_t *)&hc->tcp, refused_closed);
		return;
	}
	uv_tcp_nodelay(&hc->tcp, 1);
	hc->s = s;
	hc->tls = l->tls;
	snprintf(hc->idstr, sizeof hc->idstr, "%llx", (unsigned long long)++s->reg->next_id);
	hc->next = s->conns;
	if (s->conns)
		s->conns->prev = hc;
	s->conns = hc;
	if (s->count++ == 0)
		uv_timer_start(&s->sweep, sweep_cb, HTTP_SWEEP_MS, HTTP_SWEEP_MS);
	log_debug("conn=%s http: connect from [%s]:%d via %s tls=%s", hc->idstr, hc->peer,
		  hc->peer_port, l->name, hc->tls ? "yes" : "no");
	hc->sock = h2o_uv_socket_create((uv_stream_t *)&hc->tcp, conn_closed);
	hc->sock->on_close.cb = sock_closed;
	hc->sock->on_close.data = hc;
	h2o_accept(l->tls ? &s->accept_tls : &s->accept_plain, hc->sock);
}

/* ---- requests ---- */

static void link_dispose(void *p)
{
	struct http_link *link = p;
	if (link->r)
		link->r->link = NULL;      /* the handler answers into the void */
	struct http_conn *hc = link->hc;
	if (hc && hc->inflight > 0 && --hc->inflight == 0 && hc->s->shutting_down)
		conn_cut(hc);
}

static int on_req(h2o_handler_t *self, h2o_req_t *req)
{
	struct jhandler *jh = (struct jhandler *)self;
	struct http_server *s = jh->s;
	struct http_conn *hc = conn_of(req);
	if (hc == NULL)
		return -1;
	size_t plen = req->path.len, qat = req->query_at;
	size_t pathlen = qat == SIZE_MAX ? plen : qat;
	size_t qlen = qat == SIZE_MAX ? 0 : plen - qat - 1;
	struct http_request *r = xcalloc(1, sizeof *r);
	size_t mlen = req->method.len, alen = req->authority.len;
	char *o = xmalloc(mlen + 1 + pathlen + 1 + qlen + 1 + alen + 1);
	r->owned = o;
	memcpy(o, req->method.base, mlen);
	o[mlen] = '\0';
	r->method = o;
	o += mlen + 1;
	memcpy(o, req->path.base, pathlen);
	o[pathlen] = '\0';
	r->path = o;
	o += pathlen + 1;
	if (qlen)
		memcpy(o, req->path.base + qat + 1, qlen);
	o[qlen] = '\0';
	r->query = o;
	o += qlen + 1;
	if (alen)
		memcpy(o, req->authority.base, alen);
	o[alen] = '\0';
	r->authority = o;
	r->connid = hc->idstr;
	r->peer = hc->peer;
	r->tls = hc->tls;
	r->loopback = hc->loopback;
	r->srv = s;
	struct http_link *link = h2o_mem_alloc_shared(&req->pool, sizeof *link, link_dispose);
	link->req = req;
	link->r = r;
	link->hc = hc;
	hc->inflight++;
	r->link = link;
	s->h.on_request(r, s->h.arg);
	return 0;
}

bool http_request_gone(const struct http_request *r)
{
	return r->link == NULL;
}

const char *http_request_header(struct http_request *r, const char *name)
{
	if (r->link == NULL)
		return NULL;
	h2o_req_t *req = r->link->req;
	size_t nl = strlen(name);
	for (size_t i = 0; i < req->headers.size; i++) {
		const h2o_header_t *hd = &req->headers.entries[i];
		if (h2o_lcstris(hd->name->base, hd->name->len, name, nl))
			return h2o_strdup(&req->pool, hd->value.base, hd->value.len).base;
	}
	return NULL;
}

const char *http_request_body(const struct http_request *r, size_t *len_r)
{
	*len_r = 0;
	if (r->link == NULL || r->link->req->entity.base == NULL)
		return NULL;
	*len_r = r->link->req->entity.len;
	return r->link->req->entity.base;
}

void http_request_set_user(struct http_request *r, const char *user)
{
	if (r->link == NULL)
		return;
	h2o_req_t *req = r->link->req;
	h2o_iovec_t *v = h2o_req_getenv(req, H2O_STRLIT("REMOTE_USER"), 1);
	*v = h2o_strdup(&req->pool, user, SIZE_MAX);
}

void http_request_add_header(struct http_request *r, const char *name, const char *value)
{
	if (r->link == NULL)
		return;
	h2o_req_t *req = r->link->req;
	h2o_iovec_t n = h2o_strdup(&req->pool, name, SIZE_MAX);
	h2o_iovec_t v = h2o_strdup(&req->pool, value, SIZE_MAX);
	h2o_add_header_by_str(&req->pool, &req->res.headers, n.base, n.len, 1, NULL, v.base,
			      v.len);
}

static const char *reason(int status)
{
	switch (status) {
	case 200: return "OK";
	case 201: return "Created";
	case 204: return "No Content";
	case 301: return "Moved Permanently";
	case 302: return "Found";
	case 307: return "Temporary Redirect";
	case 400: return "Bad Request";
	case 401: return "Unauthorized";
	case 403: return "Forbidden";
	case 404: return "Not Found";
	case 405: return "Method Not Allowed";
	case 413: return "Payload Too Large";
	case 429: return "Too Many Requests";
	case 500: return "Internal Server Error";
	case 503: return "Service Unavailable";
	default: return "Unknown";
	}
}

void http_respond(struct http_request *r, int status, const char *content_type,
		  const char *body, size_t len)
{
	struct http_link *link = r->link;
	free(r->owned);
	free(r);
	if (link == NULL)
		return;
	link->r = NULL;
	h2o_req_t *req = link->req;
	req->res.status = status;
	req->res.reason = reason(status);
	if (content_type)
		h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CONTENT_TYPE, NULL,
			       content_type, strlen(content_type));
	h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CACHE_CONTROL, NULL,
		       H2O_STRLIT("no-store"));
	req->res.content_length = len;
	h2o_send_inline(req, body ? body : "", len);
}

/* ---- streamed answers ----
 *
 * h2o's generator protocol: after h2o_send(IN_PROGRESS) the bytes given
 * must stay put until h2o calls proceed (they are on the wire, or copied
 * into h2o's frames), and nothing may be sent in between.  So a stream
 * has two buffers: out (given to h2o, freed at proceed) and buf (what
 * the owner queued meanwhile).  The stream lives in the request's pool:
 * its dispose runs when h2o drops the request, whoever ended it. */

struct http_stream {
	h2o_generator_t gen;        /* first: h2o gives it back to proceed/stop */
	struct http_server *s;
	h2o_req_t *req;             /* NULL once stopped or done (FINAL/ERROR sent) */
	struct http_conn *hc;
	void (*closed)(void *arg);
	void *arg;
	bool owned;                 /* the owner has not ended it yet */
	bool busy;                  /* h2o has out, proceed not yet called */
	bool ending;                /* FINAL once buf is sent */
	bool failing;               /* ERROR at the next proceed */
	char *buf, *out;
	size_t len, cap, outlen;
	struct http_stream *prev, *next;
};

static void stream_unlink(struct http_stream *st)
{
	struct http_server *s = st->s;
	if (st->prev)
		st->prev->next = st->next;
	else if (s->streams == st)
		s->streams = st->next;
	else
		return;             /* not linked */
	if (st->next)
		st->next->prev = st->prev;
	st->prev = st->next = NULL;
	s->nstreams--;
}

static void stream_dispose(void *p)
{
	struct http_stream *st = p;
	stream_unlink(st);
	st->req = NULL;
	FREE(st->buf);
	FREE(st->out);
	if (st->owned) {
		st->owned = false;
		st->closed(st->arg);
	}
}

/* Hand h2o what is queued (or the end) if it can take it now. */
static void stream_flush(struct http_stream *st)
{
	if (st->req == NULL || st->busy)
		return;
	h2o_req_t *req = st->req;
	if (st->failing) {
		st->req = NULL;
		h2o_send(req, NULL, 0, H2O_SEND_STATE_ERROR);
		return;
	}
	if (st->len == 0 && !st->ending)
		return;
	FREE(st->out);
	st->out = st->buf;
	st->outlen = st->len;
	st->buf = NULL;
	st->len = st->cap = 0;
	h2o_iovec_t v = h2o_iovec_init(st->out, st->outlen);
	h2o_send_state_t state = H2O_SEND_STATE_IN_PROGRESS;
	if (st->ending) {
		state = H2O_SEND_STATE_FINAL;
		st->req = NULL;
	}
	st->busy = true;
	/* st may be disposed inside h2o_send: nothing after it */
	h2o_send(req, st->outlen ? &v : NULL, st->outlen ? 1 : 0, state);
}

static void stream_proceed(h2o_generator_t *g, h2o_req_t *req)
{
	struct http_stream *st = (struct http_stream *)g;
	(void)req;
	st->busy = false;
	FREE(st->out);
	st->outlen = 0;
	stream_flush(st);
}

static void stream_stop(h2o_generator_t *g, h2o_req_t *req)
{
	struct http_stream *st = (struct http_stream *)g;
	(void)req;
	st->req = NULL;             /* the dispose follows */
}

struct http_stream *http_stream_start(struct http_request *r, int status,
				      const char *content_type, void (*closed)(void *arg),
				      void *arg)
{
	struct http_link *link = r->link;
	if (link && r->srv->shutting_down) {
		http_respond(r, 503, "text/plain", "shutting down\n", 14);
		return NULL;
	}
	struct http_server *s = r->srv;
	free(r->owned);
	free(r);
	if (link == NULL)
		return NULL;
	link->r = NULL;
	h2o_req_t *req = link->req;
	struct http_stream *st = h2o_mem_alloc_shared(&req->pool, sizeof *st, stream_dispose);
	memset(st, 0, sizeof *st);
	st->gen.proceed = stream_proceed;
	st->gen.stop = stream_stop;
	st->s = s;
	st->req = req;
	st->hc = link->hc;
	st->closed = closed;
	st->arg = arg;
	st->owned = true;
	st->next = s->streams;
	if (s->streams)
		s->streams->prev = st;
	s->streams = st;
	s->nstreams++;
	req->res.status = status;
	req->res.reason = reason(status);
	if (content_type)
		h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CONTENT_TYPE, NULL,
			       content_type, strlen(content_type));
	h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CACHE_CONTROL, NULL,
		       H2O_STRLIT("no-store"));
	/* the headers go with the first data (h2o holds them back until then) */
	h2o_start_response(req, &st->gen);
	return st;
}

/* The owner lets go; h2o ends the response with an error (HTTP/1: the
 * connection closes; HTTP/2: RST_STREAM). */
static void stream_cut(struct http_stream *st)
{
	st->owned = false;
	FREE(st->buf);
	st->len = st->cap = 0;
	st->failing = true;
	bool busy = st->busy;
	struct http_conn *hc = st->hc;
	stream_flush(st);
	/* a reader that reads nothing never lets h2o call proceed */
	if (busy && hc)
		conn_cut(hc);
}

int http_stream_send(struct http_stream *st, const char *data, size_t len)
{
	assert(st->owned);
	if (st->req == NULL)
		return 0;           /* going away: its dispose tells the owner */
	if (st->len + st->outlen + len > HTTP_STREAM_MAX_PENDING) {
		log_info("conn=%s http: streamed answer cut: the client reads too slowly "
			 "(%zu bytes waiting)", st->hc ? st->hc->idstr : "-",
			 st->len + st->outlen);
		stream_cut(st);
		return -1;
	}
	if (st->len + len > st->cap) {
		size_t cap = st->cap ? st->cap : 512;
		while (cap < st->len + len)
			cap *= 2;
		st->buf = xrealloc(st->buf, cap);
		st->cap = cap;
	}
	memcpy(st->buf + st->len, data, len);
	st->len += len;
	stream_flush(st);
	return 0;
}

bool http_stream_probe(struct http_stream *st)
{
	assert(st->owned);
	struct http_conn *hc = st->hc;
	uv_os_fd_t fd;
	if (st->req == NULL || st->req->version >= 0x200 || hc == NULL || hc->sock == NULL ||
	    uv_is_closing((uv_handle_t *)&hc->tcp) || uv_fileno((uv_handle_t *)&hc->tcp, &fd) != 0)
		return false;
	struct pollfd pfd = {.fd = fd, .events = POLLIN | POLLRDHUP};
	if (poll(&pfd, 1, 0) <= 0 || !(pfd.revents & (POLLRDHUP | POLLHUP | POLLERR)))
		return false;
	log_debug("conn=%s http: streamed answer ended: the client closed", hc->idstr);
	stream_cut(st);
	return true;
}

void http_stream_end(struct http_stream *st)
{
	assert(st->owned);
	st->owned = false;
	st->ending = true;
	stream_flush(st);
}

size_t http_stream_count(const struct http_server *s)
{
	return s ? s->nstreams : 0;
}

/* Shutdown: every stream ends now (its owner told first). */
static void streams_end_all(struct http_server *s)
{
	struct http_stream *st = s->streams;
	while (st) {
		struct http_stream *next = st->next;
		if (st->owned) {
			st->owned = false;
			st->closed(st->arg);
		}
		if (!st->ending) {
			st->ending = true;
			stream_flush(st);
		}
		st = next;
	}
}

/* ---- the access log: one line per request, h2o's own answers too ---- */

static void log_access(h2o_logger_t *self, h2o_req_t *req)
{
	struct http_conn *hc = conn_of(req);
	struct timeval now;
	gettimeofday(&now, NULL);
	const struct timeval *b = &req->timestamps.request_begin_at;
	long long ms = ((long long)now.tv_sec - b->tv_sec) * 1000 +
		       ((long long)now.tv_usec - b->tv_usec) / 1000;
	if (b->tv_sec == 0 || ms < 0)
		ms = 0;
	h2o_iovec_t *user = h2o_req_getenv(req, H2O_STRLIT("REMOTE_USER"), 0);
	char method[16], path[256], u[128];
	http_log_safe(req->input.method.base, req->input.method.len, method, sizeof method);
	http_log_safe(req->input.path.base, req->input.path.len, path, sizeof path);
	if (user)
		http_log_safe(user->base, user->len, u, sizeof u);
	else
		snprintf(u, sizeof u, "-");
	char ver[32];
	if (req->version >= 0x200)
		snprintf(ver, sizeof ver, "%d", req->version >> 8);
	else
		snprintf(ver, sizeof ver, "%d.%d", req->version >> 8, req->version & 0xff);
	log_info("conn=%s http: %s %s HTTP/%s status=%d user=%s bytes=%zu ms=%lld",
		 hc ? hc->idstr : "-", method, path, ver, req->res.status, u, req->bytes_sent, ms);
	(void)self;
}

/* ---- set-up and shutdown ---- */

struct http_server *http_server_new(uv_loop_t *loop, struct conn_registry *reg, SSL_CTX *tls,
				    const struct http_limits *lim, const struct http_handler *h)
{
	struct http_server *s = xcalloc(1, sizeof *s);
	s->loop = loop;
	s->reg = reg;
	s->tls = tls;
	s->h = *h;
	reg->others = others;
	reg->others_arg = s;
	h2o_config_init(&s->config);
	s->config.server_name = h2o_iovec_init(H2O_STRLIT("yubind"));
	s->config.max_request_entity_size = lim->max_body;
	s->config.handshake_timeout = lim->handshake_ms;
	s->config.http1.req_timeout = lim->idle_ms;
	s->config.http1.upgrade_to_http2 = 0;
	s->config.http2.idle_timeout = lim->idle_ms;
	s->config.http2.graceful_shutdown_timeout = lim->idle_ms;
	h2o_hostconf_t *host = h2o_config_register_host(&s->config,
							 h2o_iovec_init(H2O_STRLIT("default")),
							 65535);
	h2o_pathconf_t *path = h2o_config_register_path(host, "/", 0);
	struct jhandler *jh = (struct jhandler *)h2o_create_handler(path, sizeof *jh);
	jh->super.on_req = on_req;
	jh->s = s;
	struct jlogger *lg = (struct jlogger *)h2o_create_logger(path, sizeof *lg);
	lg->super.log_access = log_access;
	lg->s = s;
	/* h2o's own answers before routing (413, 400) use the fallback path */
	lg = (struct jlogger *)h2o_create_logger(&host->fallback_path, sizeof *lg);
	lg->super.log_access = log_access;
	lg->s = s;
	h2o_context_init(&s->ctx, loop, &s->config);
	s->ctx_live = true;
	uv_timer_init(loop, &s->sweep);
	s->sweep.data = s;
	s->accept_plain.ctx = &s->ctx;
	s->accept_plain.hosts = s->config.hosts;
	s->accept_tls = s->accept_plain;
	if (tls) {
		h2o_ssl_register_alpn_protocols(tls, h2o_http2_alpn_protocols);
		s->accept_tls.ssl_ctx = tls;
	}
	return s;
}

static void listener_closed(uv_handle_t *h)
{
	free(h);
}

int http_listen(struct http_server *s, const char *name, const char *addr, bool tls,
		char **error_r)
{
	struct sockaddr_storage ss;
	if (tls && s->tls == NULL) {
		*error_r = xasprintf("%s %s: TLS is not configured", name, addr);
		return -1;
	}
	if (conf_parse_listen(addr, &ss, error_r) < 0)
		return -1;
	struct http_listener *l = xcalloc(1, sizeof *l);
	l->s = s;
	l->tls = tls;
	snprintf(l->name, sizeof l->name, "%s", name);
	uv_tcp_init(s->loop, &l->tcp);
	int r = uv_tcp_bind(&l->tcp, (struct sockaddr *)&ss, 0);
	if (r == 0)
		r = uv_listen((uv_stream_t *)&l->tcp, 511, on_connection);
	if (r < 0) {
		*error_r = xasprintf("cannot listen on %s for %s: %s", addr, name, uv_strerror(r));
		uv_close((uv_handle_t *)&l->tcp, listener_closed);
		return -1;
	}
	struct sockaddr_storage bound;
	int bl = sizeof bound;
	uv_tcp_getsockname(&l->tcp, (struct sockaddr *)&bound, &bl);
	char host[64];
	int port;
	bool lb;
	fmt_peer((struct sockaddr *)&bound, host, sizeof host, &port, &lb);
	if (bound.ss_family == AF_INET6)
		snprintf(l->addr, sizeof l->addr, "[%s]:%d", host, port);
	else
		snprintf(l->addr, sizeof l->addr, "%s:%d", host, port);
	log_notice("listening proto=%s addr=%s tls=%s", name, l->addr, tls ? "implicit" : "no");
	l->next = s->listeners;
	s->listeners = l;
	return 0;
}

void http_server_shutdown(struct http_server *s, void (*on_done)(void *arg), void *arg)
{
	s->shutting_down = true;
	s->on_done = on_done;
	s->done_arg = arg;
	for (struct http_listener *l = s->listeners, *next; l; l = next) {
		next = l->next;
		uv_close((uv_handle_t *)&l->tcp, listener_closed);
	}
	s->listeners = NULL;
	/* HTTP/2: GOAWAY; then every connection without a request in
	 * progress ends now, the others as their last request is done. */
	h2o_context_request_shutdown(&s->ctx);
	streams_end_all(s);
	for (struct http_conn *hc = s->conns; hc; hc = hc->next)
		if (!h2_unstick(hc) && hc->inflight == 0)
			conn_cut(hc);
	maybe_done(s);
}

void http_server_cut(struct http_server *s)
{
	for (struct http_conn *hc = s->conns; hc; hc = hc->next) {
		h2o_http2_conn_t *c = hc->sock ? h2_conn(hc) : NULL;
		log_warn("conn=%s http: still open at shutdown: from [%s] tls=%s requests=%u "
			 "socket=%s%s http2=%s; cutting it", hc->idstr, hc->peer,
			 hc->tls ? "yes" : "no", hc->inflight, hc->sock ? "open" : "closed by h2o",
			 uv_is_closing((uv_handle_t *)&hc->tcp) ? ", closing" : "",
			 c == NULL ? "none" : c->state == H2O_HTTP2_CONN_STATE_OPEN ? "open" :
			 c->state == H2O_HTTP2_CONN_STATE_HALF_CLOSED ? "half-closed" :
			 c->_write.buf_in_flight ? "closing, writing" :
			 h2o_timeout_is_linked(&c->_write.timeout_entry) ? "closing, write due" :
			 "closing, idle");
		if (!h2_unstick(hc))
			conn_cut(hc);
	}
}

bool http_server_idle(const struct http_server *s)
{
	for (const struct http_conn *hc = s->conns; hc; hc = hc->next)
		if (hc->inflight > 0)
			return false;
	return true;
}

size_t http_server_count(const struct http_server *s)
{
	return s ? s->count : 0;
}

void http_server_free(struct http_server **sp)
{
	struct http_server *s = *sp;
	if (s == NULL)
		return;
	assert(s->count == 0 && s->listeners == NULL);
	if (s->reg->others_arg == s) {
		s->reg->others = NULL;
		s->reg->others_arg = NULL;
	}
	if (s->ctx_live)
		h2o_context_dispose(&s->ctx);
	h2o_config_dispose(&s->config);
	if (s->tls)
		SSL_CTX_free(s->tls);
	free(s);
	*sp = NULL;
}
