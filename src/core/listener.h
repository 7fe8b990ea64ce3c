/* listener.h - listening sockets and the set of live connections.
 *
 * A listener accepts connections, enforces the daemon-wide and per-IP
 * connection caps, creates a struct conn with the protocol's handler and,
 * for implicit-TLS listeners, runs the handshake before on_open. */
#ifndef YUBIN_CORE_LISTENER_H
#define YUBIN_CORE_LISTENER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>
#include <openssl/ssl.h>

struct conn;
struct conn_handler;
struct server;

/* Shared by all listeners of a daemon. */
struct conn_registry {
	uv_loop_t *loop;
	struct server *server;     /* handed to every conn */
	SSL_CTX *tls;              /* NULL: no TLS configured */
	size_t max_conns, max_per_ip;
	uint64_t handshake_ms;     /* implicit TLS: handshake must finish within this */
	size_t count;
	struct conn *head;
	uint64_t next_id;
	bool shutting_down;
	void (*on_empty)(struct conn_registry *r); /* last conn gone during shutdown */
	/* Connections kept outside the registry (core/http.c) that count in
	 * max_conns and max_per_ip: how many come from peer (all when peer is
	 * NULL).  NULL: none. */
	size_t (*others)(void *arg, const char *peer);
	void *others_arg;
	/* Outbound: the local address to connect from, per family (sin_family
	 * 0 = the kernel's choice). */
	struct sockaddr_in bind4;
	struct sockaddr_in6 bind6;
};

struct listener {
	union {
		uv_tcp_t tcp;
		uv_pipe_t pipe;        /* local: a Unix socket */
	};
	const struct conn_handler *h;
	bool implicit_tls;
	bool local;
	struct conn_registry *reg;
	char name[16];             /* "smtp", "pop3s" */
	char addr[80];             /* as bound, with the real port */
	char path[128];            /* local: the socket file, removed at close */
	struct listener *next;
};

/* Bind and listen on addr ("127.0.0.1:25"); logs the real address.
 * -1 with *error_r (heap) on failure. */
int listener_open(struct conn_registry *reg, const char *name, const char *addr,
		  const struct conn_handler *h, bool implicit_tls, struct listener **l_r,
		  char **error_r);
/* A Unix stream socket at path for local clients (local submission): a
 * stale socket file left there (nobody accepts on it) is removed first;
 * anything else at path, or a socket someone still listens on, is an
 * error.  The file is made mode 0666 (any local user may connect; its
 * directory decides who can reach it).  Each connection's peer is named by
 * the kernel (SO_PEERCRED): c->local, c->peer_uid, c->peer "local uid=N";
 * the per-IP cap counts per uid.  Start-up only (blocking calls).  -1 with
 * *error_r (heap) on failure. */
int listener_open_local(struct conn_registry *reg, const char *name, const char *path,
			const struct conn_handler *h, struct listener **l_r, char **error_r);
/* Stop accepting; the memory is freed when the handle has closed.  A
 * local listener's socket file is removed (by a pool job). */
void listener_close(struct listener *l);

/* An outbound connection (the queue's SMTP client) to sa, counted in reg.
 * proto is the caller's session, set as c->proto at once: on_open runs
 * when the connection is established, on_close (with "connect failed:
 * ..." as the reason) when it cannot be, and on_timeout with
 * CONN_TIMEOUT_DEADLINE when connect_ms (0: none) passes first.  The
 * return value stays valid until on_free. */
struct conn *conn_connect(struct conn_registry *reg, const struct sockaddr *sa,
			  const struct conn_handler *h, void *proto, uint64_t connect_ms);

/* Ask every live connection to finish (h->on_shutdown). */
void registry_shutdown(struct conn_registry *reg);
/* Why a new connection from peer is refused -- max_connections and
 * max_connections_per_ip count the registry's connections and the
 * others' (core/http.c) -- or NULL to take it. */
const char *registry_refusal(const struct conn_registry *reg, const char *peer);
/* Cut every connection still open (after the grace period). */
void registry_close_all(struct conn_registry *reg, const char *reason);

#endif
