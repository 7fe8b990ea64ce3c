/* listener.c - accept loop, connection caps, the registry of live conns. */
#include "core/listener.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "core/conf.h"
#include "core/conn.h"
#include "core/log.h"
#include "core/util.h"

static void fmt_addr(const struct sockaddr *sa, char *host, size_t hostsz, int *port, bool *loop)
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

static void reject_closed(uv_handle_t *h)
{
	free(h);
}

/* A connection refused before it became a struct conn user: the conn
 * memory only carried the handle. */
static void refused_closed(uv_handle_t *h)
{
	free(h->data);
}

static void register_conn(struct conn_registry *reg, struct conn *c, const struct conn_handler *h,
			  bool implicit_tls);

/* A Unix-socket peer: who it is, as the kernel says (not spoofable, unlike
 * anything the client could send).  0, or -1 with errno. */
static int peer_cred(struct conn *c)
{
	uv_os_fd_t fd;
	struct ucred cr;
	socklen_t len = sizeof cr;

	if (uv_fileno((const uv_handle_t *)&c->pipe, &fd) != 0) {
		errno = EBADF;
		return -1;
	}
	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cr, &len) < 0)
		return -1;
	c->local = true;
	c->peer_uid = (uint32_t)cr.uid;
	c->peer_port = 0;
	c->loopback = false;
	snprintf(c->peer, sizeof c->peer, "local uid=%u", (unsigned)cr.uid);
	return 0;
}

static void on_connection(uv_stream_t *server, int status)
{
	struct listener *l = server->data;
	struct conn_registry *reg = l->reg;
	if (status < 0) {
		log_warn("listener %s %s: accept error: %s", l->name, l->local ? l->path : l->addr,
			 uv_strerror(status));
		return;
	}
	struct conn *c = xcalloc(1, sizeof *c);
	if (l->local)
		uv_pipe_init(reg->loop, &c->pipe, 0);
	else
		uv_tcp_init(reg->loop, &c->tcp);
	c->tcp.data = c;
	if (uv_accept(server, (uv_stream_t *)&c->tcp) != 0) {
		uv_close((uv_handle_t *)&c->tcp, refused_closed);
		return;
	}
	if (l->local) {
		if (peer_cred(c) < 0) {
			log_warn("listener %s %s: refused a connection: cannot read its user "
				 "(SO_PEERCRED): %s", l->name, l->path, strerror(errno));
			uv_close((uv_handle_t *)&c->tcp, refused_closed);
			return;
		}
	} else {
		struct sockaddr_storage ss;
		int sl = sizeof ss;
		if (uv_tcp_getpeername(&c->tcp, (struct sockaddr *)&ss, &sl) == 0)
			fmt_addr((struct sockaddr *)&ss, c->peer, sizeof c->peer, &c->peer_port,
				 &c->loopback);
		sl = sizeof ss;
		bool dummy;
		if (uv_tcp_getsockname(&c->tcp, (struct sockaddr *)&ss, &sl) == 0) {
			char h[64];
			fmt_addr((struct sockaddr *)&ss, h, sizeof h, &c->local_port, &dummy);
		}
	}
	const char *why = registry_refusal(reg, c->peer);
	if (why) {
		log_warn("listener %s: refused connection from [%s]:%d: %s", l->name, c->peer,
			 c->peer_port, why);
		c->tcp.data = c;
		uv_close((uv_handle_t *)&c->tcp, refused_closed);
		return;
	}
	if (!l->local)
		uv_tcp_nodelay(&c->tcp, 1);
	register_conn(reg, c, l->h, l->implicit_tls);
	conn_started(c);
}

const char *registry_refusal(const struct conn_registry *reg, const char *peer)
{
	if (reg->shutting_down)
		return "shutting down";
	if (reg->count + (reg->others ? reg->others(reg->others_arg, NULL) : 0) >= reg->max_conns)
		return "max_connections reached";
	size_t same = reg->others ? reg->others(reg->others_arg, peer) : 0;
	for (const struct conn *o = reg->head; o; o = o->next)
		if (strcmp(o->peer, peer) == 0)
			same++;
	if (same >= reg->max_per_ip)
		return "max_connections_per_ip reached";
	return NULL;
}

/* Common set-up of an accepted or outbound connection. */
static void register_conn(struct conn_registry *reg, struct conn *c, const struct conn_handler *h,
			  bool implicit_tls)
{
	c->id = ++reg->next_id;
	snprintf(c->idstr, sizeof c->idstr, "%llx", (unsigned long long)c->id);
	c->h = h;
	c->reg = reg;
	c->implicit_tls = implicit_tls;
	c->server = reg->server;
	c->tcp.data = c;
	uv_timer_init(reg->loop, &c->timer);
	c->timer.data = c;
	uv_timer_init(reg->loop, &c->deadline);
	c->deadline.data = c;
	c->handles_open = 3;
	c->refs = 1; /* the registry's reference, dropped when the handles close */
	buf_init(&c->in, 0);
	buf_init(&c->out, 4 * 1024 * 1024);
	conn_set_max_line(c, 1024);
	c->next = reg->head;
	if (reg->head)
		reg->head->prev = c;
	reg->head = c;
	reg->count++;
}

struct connect_req {
	uv_connect_t req;
	struct conn *c;
};

static void connect_cb(uv_connect_t *req, int status)
{
	struct connect_req *cr = (struct connect_req *)req;
	struct conn *c = cr->c;
	free(cr);
	if (conn_is_closed(c)) {
		conn_release(c);
		return;
	}
	if (status < 0) {
		char why[128];
		snprintf(why, sizeof why, "connect failed: %s", uv_strerror(status));
		conn_close(c, why);
		conn_release(c);
		return;
	}
	struct sockaddr_storage ss;
	int sl = sizeof ss;
	bool dummy;
	if (uv_tcp_getsockname(&c->tcp, (struct sockaddr *)&ss, &sl) == 0) {
		char h[64];
		fmt_addr((struct sockaddr *)&ss, h, sizeof h, &c->local_port, &dummy);
	}
	uv_tcp_nodelay(&c->tcp, 1);
	conn_clear_deadline(c);
	conn_started(c);
	conn_release(c);
}

struct conn *conn_connect(struct conn_registry *reg, const struct sockaddr *sa,
			  const struct conn_handler *h, void *proto, uint64_t connect_ms)
{
	struct conn *c = xcalloc(1, sizeof *c);
	uv_tcp_init(reg->loop, &c->tcp);
	c->tcp.data = c;
	fmt_addr(sa, c->peer, sizeof c->peer, &c->peer_port, &c->loopback);
	register_conn(reg, c, h, false);
	c->outbound = true;
	c->proto = proto;
	struct connect_req *cr = xcalloc(1, sizeof *cr);
	cr->c = c;
	conn_hold(c);                /* the connect request's */
	int r = 0;
	if (sa->sa_family == AF_INET && reg->bind4.sin_family == AF_INET)
		r = uv_tcp_bind(&c->tcp, (const struct sockaddr *)&reg->bind4, 0);
	else if (sa->sa_family == AF_INET6 && reg->bind6.sin6_family == AF_INET6)
		r = uv_tcp_bind(&c->tcp, (const struct sockaddr *)&reg->bind6, 0);
	if (r == 0)
		r = uv_tcp_connect(&cr->req, &c->tcp, sa, connect_cb);
	if (r < 0) {
		/* Reported like a failed connection, from the loop. */
		free(cr);
		char why[128];
		snprintf(why, sizeof why, "connect failed: %s", uv_strerror(r));
		conn_close(c, why);
		conn_release(c);
		return c;
	}
	if (connect_ms)
		conn_set_deadline(c, connect_ms);
	return c;
}

int listener_open(struct conn_registry *reg, const char *name, const char *addr,
		  const struct conn_handler *h, bool implicit_tls, struct listener **l_r,
		  char **error_r)
{
	struct sockaddr_storage ss;
	if (conf_parse_listen(addr, &ss, error_r) < 0)
		return -1;
	struct listener *l = xcalloc(1, sizeof *l);
	l->h = h;
	l->implicit_tls = implicit_tls;
	l->reg = reg;
	snprintf(l->name, sizeof l->name, "%s", name);
	uv_tcp_init(reg->loop, &l->tcp);
	l->tcp.data = l;
	int r = uv_tcp_bind(&l->tcp, (struct sockaddr *)&ss, 0);
	if (r == 0)
		r = uv_listen((uv_stream_t *)&l->tcp, 511, on_connection);
	if (r < 0) {
		*error_r = xasprintf("cannot listen on %s for %s: %s", addr, name, uv_strerror(r));
		uv_close((uv_handle_t *)&l->tcp, reject_closed);
		return -1;
	}
	struct sockaddr_storage bound;
	int bl = sizeof bound;
	uv_tcp_getsockname(&l->tcp, (struct sockaddr *)&bound, &bl);
	char host[64];
	int port;
	bool lb;
	fmt_addr((struct sockaddr *)&bound, host, sizeof host, &port, &lb);
	if (bound.ss_family == AF_INET6)
		snprintf(l->addr, sizeof l->addr, "[%s]:%d", host, port);
	else
		snprintf(l->addr, sizeof l->addr, "%s:%d", host, port);
	log_notice("listening proto=%s addr=%s tls=%s", name, l->addr, implicit_tls ? "implicit" : "no");
	*l_r = l;
	return 0;
}

/* Is someone accepting on the Unix socket at path?  1 yes (or busy: its
 * backlog is full), 0 no (a stale file: ECONNREFUSED), -1 cannot tell
 * (errno).  Non-blocking, so a busy listener cannot hold up start-up. */
static int socket_alive(const char *path)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	snprintf(sa.sun_path, sizeof sa.sun_path, "%s", path);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	int r = connect(fd, (struct sockaddr *)&sa, sizeof sa);
	int e = errno;
	close(fd);
	if (r == 0 || e == EAGAIN || e == EINPROGRESS)
		return 1;
	if (e == ECONNREFUSED)
		return 0;
	errno = e;
	return -1;
}

int listener_open_local(struct conn_registry *reg, const char *name, const char *path,
			const struct conn_handler *h, struct listener **l_r, char **error_r)
{
	struct sockaddr_un sa;
	struct stat st;

	if (path[0] != '/' || strlen(path) >= sizeof sa.sun_path ||
	    strlen(path) >= sizeof ((struct listener *)0)->path) {
		*error_r = xasprintf("%s: not an absolute path shorter than %zu bytes", path,
				     sizeof sa.sun_path);
		return -1;
	}
	if (lstat(path, &st) == 0) {
		if (!S_ISSOCK(st.st_mode)) {
			*error_r = xasprintf("%s exists and is not a socket: not removing it",
					     path);
			return -1;
		}
		int alive = socket_alive(path);
		if (alive == 1) {
			*error_r = xasprintf("%s: another process accepts connections on it (a "
					     "yubind still running?)", path);
			return -1;
		}
		if (alive < 0) {
			*error_r = xasprintf("%s: cannot tell whether it is in use: %s", path,
					     strerror(errno));
			return -1;
		}
		if (unlink(path) < 0) {
			*error_r = xasprintf("%s: cannot remove the stale socket: %s", path,
					     strerror(errno));
			return -1;
		}
		log_notice("listener %s: removed the stale socket %s (left by a yubind that did "
			   "not stop cleanly)", name, path);
	} else if (errno != ENOENT) {
		*error_r = xasprintf("%s: %s", path, strerror(errno));
		return -1;
	}
	struct listener *l = xcalloc(1, sizeof *l);
	l->h = h;
	l->local = true;
	l->reg = reg;
	snprintf(l->name, sizeof l->name, "%s", name);
	snprintf(l->path, sizeof l->path, "%s", path);
	snprintf(l->addr, sizeof l->addr, "local");
	uv_pipe_init(reg->loop, &l->pipe, 0);
	l->pipe.data = l;
	int r = uv_pipe_bind(&l->pipe, path);
	/* Any local user may submit: the kernel tells us who it is. */
	if (r == 0 && chmod(path, 0666) < 0)
		r = -errno;
	if (r == 0)
		r = uv_listen((uv_stream_t *)&l->pipe, 511, on_connection);
	if (r < 0) {
		*error_r = xasprintf("cannot listen on %s for %s: %s", path, name, uv_strerror(r));
		/* closing a bound pipe removes its file (libuv) */
		uv_close((uv_handle_t *)&l->pipe, reject_closed);
		return -1;
	}
	log_notice("listening proto=%s path=%s mode=0666 tls=no", name, path);
	*l_r = l;
	return 0;
}

/* For a local listener libuv removes the socket file itself as the handle
 * closes (before closing the descriptor, so a successor's new socket is
 * never the one removed): one unlink, at shutdown. */
void listener_close(struct listener *l)
{
	uv_close((uv_handle_t *)&l->tcp, reject_closed);
}

void registry_shutdown(struct conn_registry *reg)
{
	reg->shutting_down = true;
	struct conn *c = reg->head;
	while (c) {
		struct conn *next = c->next;
		conn_hold(c);
		if (!conn_is_closed(c)) {
			if (c->h->on_shutdown && c->proto)
				c->h->on_shutdown(c);
			else
				conn_close(c, "shutting down");
			if (!conn_is_closed(c))
				conn_flush(c);
		}
		next = c->next;
		conn_release(c);
		c = next;
	}
	if (reg->count == 0 && reg->on_empty)
		reg->on_empty(reg);
}

void registry_close_all(struct conn_registry *reg, const char *reason)
{
	struct conn *c = reg->head;
	while (c) {
		conn_hold(c);
		conn_close(c, reason);
		struct conn *next = c->next;
		conn_release(c);
		c = next;
	}
}
