/* http.h - the HTTP server: libh2o (its libuv flavour) on the daemon's loop.
 *
 * h2o parses HTTP/1.1 and HTTP/2, enforces its header limits, reads the
 * whole request body up to max_body (413 beyond it) and runs TLS on the
 * SSL_CTX it is given; this file accepts the connections (the daemon's
 * max_connections and max_connections_per_ip apply, counted together with
 * the registry's connections), names each one like a struct conn
 * (conn=ID, the registry's counter), logs one line per request and closes
 * everything at shutdown.  Protocols see only struct http_request below,
 * never h2o: one handler gets every complete request and answers it with
 * http_respond (or http_stream_start) exactly once, at once or later (after
 * a pool job).
 *
 * Loop thread only. */
#ifndef YUBIN_CORE_HTTP_H
#define YUBIN_CORE_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>
#include <openssl/ssl.h>

struct conn_registry;
struct http_server;
struct http_conn;

/* One request.  The strings are NUL-terminated and stay valid until
 * http_respond; body and headers only while !http_request_gone(r). */
struct http_request {
	const char *method;         /* "GET" */
	const char *path;           /* without the query: "/jmap/api" */
	const char *query;          /* after '?', "" if none */
	const char *authority;      /* Host (HTTP/1) or :authority (HTTP/2), "" if none */
	const char *connid;         /* "1f": the conn= of the log lines */
	const char *peer;           /* "127.0.0.1" */
	bool tls;
	bool loopback;              /* peer address is loopback */
	/* private */
	struct http_server *srv;
	struct http_link *link;     /* NULL once h2o has dropped the request */
	char *owned;                /* method, path, query copies */
};

struct http_handler {
	void (*on_request)(struct http_request *r, void *arg);
	void *arg;
};

struct http_limits {
	size_t max_body;            /* request body cap (413 beyond) */
	uint64_t handshake_ms;      /* TLS handshake */
	uint64_t idle_ms;           /* HTTP/1 keep-alive and request, HTTP/2 idle */
};

/* A server on loop, counting its connections with reg's (max_connections,
 * max_connections_per_ip, conn ids).  tls (may be NULL when no listener
 * uses TLS) is taken over by the server: it gets h2o's ALPN (h2,
 * http/1.1), so it must be a context of its own, not the one of the mail
 * protocols (ALPACA: an IMAPS port must not accept "http/1.1"). */
struct http_server *http_server_new(uv_loop_t *loop, struct conn_registry *reg, SSL_CTX *tls,
				    const struct http_limits *lim, const struct http_handler *h);
/* Bind and listen on addr; logs "listening proto=NAME addr=...".  -1 with
 * *error_r (heap). */
int http_listen(struct http_server *s, const char *name, const char *addr, bool tls,
		char **error_r);
/* Stop accepting; each connection is closed as soon as no request of it is
 * in progress; on_done(arg) runs once the last one has gone (at once if
 * none is open). */
void http_server_shutdown(struct http_server *s, void (*on_done)(void *arg), void *arg);
/* Close every connection now (the shutdown grace period ran out); each
 * one still open is logged (warning) with what holds it. */
void http_server_cut(struct http_server *s);
/* No connection has a request in flight (what is left holds no work:
 * h2o's state of a client that has gone). */
bool http_server_idle(const struct http_server *s);
size_t http_server_count(const struct http_server *s);
/* After shutdown's on_done and after the loop has run its close
 * callbacks (h2o's timers close with the context). NULL-safe. */
void http_server_free(struct http_server **s);

/* The request's client went away (connection closed): answer anyway with
 * http_respond, which then only frees r. */
bool http_request_gone(const struct http_request *r);
/* Header value (first of that name, case-insensitive), or NULL.  Valid
 * until http_respond. */
const char *http_request_header(struct http_request *r, const char *name);
/* The body (NULL with *len_r 0 when none or gone). */
const char *http_request_body(const struct http_request *r, size_t *len_r);
/* The user named in the request's log line (after a login). */
void http_request_set_user(struct http_request *r, const char *user);
/* Add a response header (before http_respond). */
void http_request_add_header(struct http_request *r, const char *name, const char *value);
/* Answer and free r.  body (len bytes, may be NULL with 0) is copied. */
void http_respond(struct http_request *r, int status, const char *content_type,
		  const char *body, size_t len);

/* A streamed answer (HTTP/1.1 chunked, or HTTP/2 DATA frames as they
 * come): an event stream.  http_stream_start answers r with the status
 * and headers (h2o sends them with the first data) and frees r like
 * http_respond; NULL if r has gone or the server is shutting down (then r
 * has been answered: 503).  Later, either
 * the owner ends it (http_stream_end, or http_stream_send failing), or the
 * stream ends under it (the client went away, or the server's shutdown)
 * and closed(arg) runs once: after that, s is gone.  closed must not call
 * http_stream_*.  Loop thread only. */
struct http_stream;
#define HTTP_STREAM_MAX_PENDING (256u * 1024)
struct http_stream *http_stream_start(struct http_request *r, int status,
				      const char *content_type, void (*closed)(void *arg),
				      void *arg);
/* Queue data (copied).  -1 when the bytes not yet taken by the client
 * would pass HTTP_STREAM_MAX_PENDING (a slow reader): the stream is then
 * cut and gone, closed() is not called. */
int http_stream_send(struct http_stream *s, const char *data, size_t len);
/* Send what is queued, then end the response; s is gone (closed() is not
 * called). */
void http_stream_end(struct http_stream *s);
/* HTTP/1: h2o reads nothing while it answers, so a client that closed
 * goes unnoticed until a write fails.  true when the peer has closed (or
 * half-closed) the connection: the stream is then cut and gone, closed()
 * is not called.  Cheap (one poll(2)); HTTP/2 streams always give false
 * (h2o sees their end itself). */
bool http_stream_probe(struct http_stream *s);
size_t http_stream_count(const struct http_server *srv);

/* in (len bytes) for a log line: printable ASCII, anything else '?',
 * cut to outsz - 1. */
void http_log_safe(const char *in, size_t len, char *out, size_t outsz);

#endif
