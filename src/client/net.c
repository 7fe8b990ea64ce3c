/* net.c - blocking TCP and TLS connections for the command-line client.
 * See net.h.
 *
 * The socket stays non-blocking from socket() to close(): a blocking
 * connect() cannot be given a timeout, and SO_RCVTIMEO would bound each
 * recv() but not a line that arrives one byte per interval.  So every wait
 * is poll() with what is left of a deadline taken from the monotonic clock,
 * and every loop here ends at that deadline, at an error or at progress
 * the buffer sizes bound.  TLS runs over a BIO of our own whose writes are
 * send(MSG_NOSIGNAL): OpenSSL's socket BIO uses write(), which raises
 * SIGPIPE when the server has closed, and a library must not kill its
 * program or change its signal dispositions. */
#include "client/net.h"

#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#include <openssl/bio.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "core/buf.h"
#include "core/util.h"

/* Read buffer: a whole line of NET_LINE_MAX plus CR LF must fit after the
 * unread bytes are moved to the front, and bigger reads mean fewer calls. */
#define RBUF_SIZE (16 * 1024)

struct net_tls {
	SSL_CTX *ctx;
	BIO_METHOD *meth;
	bool pinned;
	unsigned char pin[NET_PIN_LEN];
};

struct net {
	int fd;
	SSL *ssl;
	/* The handshake completed and no fatal TLS error followed: only then
	 * may SSL_shutdown() send a close_notify. */
	bool tls_clean;
	char name[NET_NAME_MAX];
	char rbuf[RBUF_SIZE];
	size_t rpos, rlen;          /* unread bytes are rbuf[rpos..rlen) */
};

/* The most useful text of OpenSSL's error queue (then emptied): the
 * reason alone ("certificate verify failed") reads better than the whole
 * "error:0A000086:SSL routines::..." line. */
static const char *ssl_errstr(char *buf, size_t bufsz)
{
	unsigned long e = ERR_peek_last_error();
	const char *r = e ? ERR_reason_error_string(e) : NULL;

	if (r != NULL)
		snprintf(buf, bufsz, "%s", r);
	else if (e != 0)
		ERR_error_string_n(e, buf, bufsz);
	else
		snprintf(buf, bufsz, "unknown error");
	ERR_clear_error();
	return buf;
}

/* "30 s", "1.5 s": timeouts as the user gave them. */
static const char *secs(unsigned ms, char out[32])
{
	if (ms % 1000 == 0)
		snprintf(out, 32, "%u s", ms / 1000);
	else
		snprintf(out, 32, "%u.%03u s", ms / 1000, ms % 1000);
	return out;
}

/* Wait until fd is ready for events or the deadline (monotonic ms) passes:
 * 1 ready (or in error: the next call on fd says which), 0 timed out, -1
 * poll failed (errno). */
static int wait_fd(int fd, short events, uint64_t deadline)
{
	for (;;) {
		uint64_t now = now_ms();
		if (now >= deadline)
			return 0;
		uint64_t left = deadline - now;
		struct pollfd p = {.fd = fd, .events = events};
		int r = poll(&p, 1, left > INT_MAX ? INT_MAX : (int)left);
		if (r > 0)
			return 1;
		if (r < 0 && errno != EINTR)
			return -1;
		/* r == 0 or EINTR: the deadline decides */
	}
}

/* ---- fingerprints ---- */

int net_pin_parse(const char *text, unsigned char out[NET_PIN_LEN])
{
	const char *p = text;

	for (size_t i = 0; i < NET_PIN_LEN; i++) {
		int hi = hex_value((unsigned char)p[0]);
		int lo = hi < 0 ? -1 : hex_value((unsigned char)p[1]);
		if (lo < 0)
			return -1;
		out[i] = (unsigned char)(hi << 4 | lo);
		p += 2;
		if (*p == ':' && i + 1 < NET_PIN_LEN)
			p++;
	}
	return *p == '\0' ? 0 : -1;
}

static void pin_format(const unsigned char md[NET_PIN_LEN], char out[3 * NET_PIN_LEN])
{
	static const char digits[] = "0123456789ABCDEF";

	for (size_t i = 0; i < NET_PIN_LEN; i++) {
		out[3 * i] = digits[md[i] >> 4];
		out[3 * i + 1] = digits[md[i] & 15];
		out[3 * i + 2] = i + 1 < NET_PIN_LEN ? ':' : '\0';
	}
}

/* ---- our socket BIO ---- */

static int bio_write(BIO *b, const char *p, int len)
{
	struct net *n = BIO_get_data(b);

	BIO_clear_retry_flags(b);
	ssize_t r = send(n->fd, p, (size_t)len, MSG_NOSIGNAL);
	if (r < 0) {
		if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
			BIO_set_retry_write(b);
		return -1;
	}
	return (int)r;
}

static int bio_read(BIO *b, char *p, int len)
{
	struct net *n = BIO_get_data(b);

	BIO_clear_retry_flags(b);
	ssize_t r = recv(n->fd, p, (size_t)len, 0);
	if (r < 0) {
		if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
			BIO_set_retry_read(b);
		return -1;
	}
	return (int)r;
}

static long bio_ctrl(BIO *b, int cmd, long num, void *ptr)
{
	(void)b;
	(void)num;
	(void)ptr;
	/* Nothing is buffered here: a flush has nothing to do, and every
	 * other control (push, pop, KTLS queries...) is not supported. */
	return cmd == BIO_CTRL_FLUSH ? 1 : 0;
}

static int bio_create(BIO *b)
{
	BIO_set_init(b, 1);
	return 1;
}

/* ---- TLS settings ---- */

struct net_tls *net_tls_new(const struct net_tls_opts *o, char *err, size_t errsz)
{
	struct net_tls *t = xcalloc(1, sizeof *t);
	char e[256];

	ERR_clear_error();
	if (o->pin != NULL) {
		if (net_pin_parse(o->pin, t->pin) < 0) {
			errf(err, errsz, "TLS: the pinned fingerprint \"%.100s\" is not a SHA-256 "
			       "fingerprint (64 hex digits, colons allowed)", o->pin);
			goto fail;
		}
		t->pinned = true;
	}
	t->ctx = SSL_CTX_new(TLS_client_method());
	t->meth = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "yubin socket");
	if (t->ctx == NULL || t->meth == NULL ||
	    SSL_CTX_set_min_proto_version(t->ctx, TLS1_2_VERSION) != 1 ||
	    BIO_meth_set_write(t->meth, bio_write) != 1 ||
	    BIO_meth_set_read(t->meth, bio_read) != 1 ||
	    BIO_meth_set_ctrl(t->meth, bio_ctrl) != 1 ||
	    BIO_meth_set_create(t->meth, bio_create) != 1) {
		errf(err, errsz, "TLS: cannot set up OpenSSL: %s", ssl_errstr(e, sizeof e));
		goto fail;
	}
	if (o->cafile != NULL) {
		/* access() first: OpenSSL's "system library" error hides the
		 * errno a user can act on. */
		if (access(o->cafile, R_OK) < 0) {
			errf(err, errsz, "TLS: cannot read the CA file %s: %s", o->cafile,
			       strerror(errno));
			goto fail;
		}
		if (SSL_CTX_load_verify_locations(t->ctx, o->cafile, NULL) != 1) {
			errf(err, errsz, "TLS: cannot load the CA file %s: %s", o->cafile,
			       ssl_errstr(e, sizeof e));
			goto fail;
		}
	} else if (!t->pinned && SSL_CTX_set_default_verify_paths(t->ctx) != 1) {
		/* (With a pin the chain is not looked at: no store needed.) */
		errf(err, errsz, "TLS: cannot load the system's CA certificates: %s",
		       ssl_errstr(e, sizeof e));
		goto fail;
	}
	/* Without a pin a bad chain or name ends the handshake (the server
	 * gets an alert and we report SSL_get_verify_result).  With one the
	 * handshake completes whatever the chain, and the fingerprint alone
	 * decides before anything is sent. */
	SSL_CTX_set_verify(t->ctx, t->pinned ? SSL_VERIFY_NONE : SSL_VERIFY_PEER, NULL);
	SSL_CTX_set_mode(t->ctx, SSL_MODE_ENABLE_PARTIAL_WRITE);
	return t;
fail:
	net_tls_free(&t);
	return NULL;
}

void net_tls_free(struct net_tls **tp)
{
	struct net_tls *t = *tp;

	if (t == NULL)
		return;
	SSL_CTX_free(t->ctx);
	BIO_meth_free(t->meth);
	free(t);
	*tp = NULL;
}

/* ---- connecting ---- */

static void format_name(char *out, size_t outsz, const char *host, const char *port)
{
	if (strchr(host, ':') != NULL)
		snprintf(out, outsz, "[%s]:%s", host, port);
	else
		snprintf(out, outsz, "%s:%s", host, port);
}

/* One address: a connected non-blocking socket, or -1 with errno
 * (ETIMEDOUT when the deadline passed). */
static int connect_one(const struct addrinfo *ai, unsigned timeout_ms)
{
	int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC,
			ai->ai_protocol);
	if (fd < 0)
		return -1;
	if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0)
		return fd;
	if (errno != EINPROGRESS && errno != EINTR)
		goto fail;
	int r = wait_fd(fd, POLLOUT, now_ms() + timeout_ms);
	if (r <= 0) {
		if (r == 0)
			errno = ETIMEDOUT;
		goto fail;
	}
	int soerr = 0;
	socklen_t sl = sizeof soerr;
	if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) < 0)
		goto fail;
	if (soerr != 0) {
		errno = soerr;
		goto fail;
	}
	return fd;
fail: {
		int e = errno;
		close(fd);
		errno = e;
		return -1;
	}
}

struct net *net_connect(const char *host, const char *port, unsigned timeout_ms, char *err,
			size_t errsz)
{
	struct addrinfo hints = {
		.ai_family = AF_UNSPEC,
		.ai_socktype = SOCK_STREAM,
		.ai_protocol = IPPROTO_TCP,
	};
	struct addrinfo *res = NULL;
	char name[NET_NAME_MAX];
	char t[32];

	format_name(name, sizeof name, host, port);
	/* No AI_ADDRCONFIG: it drops ::1 and 127.0.0.1 on a host whose only
	 * addresses are loopback ones, where a local server is the point. */
	int rc = getaddrinfo(host, port, &hints, &res);
	if (rc != 0) {
		errf(err, errsz, "connect to %s: %s", name,
		       rc == EAI_SYSTEM ? strerror(errno) : gai_strerror(rc));
		return NULL;
	}
	int fd = -1, last = 0;
	size_t tried = 0;
	for (const struct addrinfo *ai = res; ai != NULL && tried < NET_ADDRS_MAX;
	     ai = ai->ai_next, tried++) {
		fd = connect_one(ai, timeout_ms);
		if (fd >= 0)
			break;
		last = errno;
	}
	freeaddrinfo(res);
	if (fd < 0) {
		if (last == ETIMEDOUT)
			errf(err, errsz, "connect to %s: timed out after %s", name,
			       secs(timeout_ms, t));
		else
			errf(err, errsz, "connect to %s: %s", name,
			       last ? strerror(last) : "no address");
		return NULL;
	}
	struct net *n = xcalloc(1, sizeof *n);
	n->fd = fd;
	memcpy(n->name, name, sizeof n->name);
	return n;
}

struct net *net_connect_unix(const char *path, unsigned timeout_ms, int *errno_r, char *err,
			     size_t errsz)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	char t[32];
	int e = 0;

	if (errno_r != NULL)
		*errno_r = 0;
	if (strlen(path) >= sizeof sa.sun_path) {
		errf(err, errsz, "connect to %.200s: the path is longer than %zu bytes", path,
		       sizeof sa.sun_path - 1);
		if (errno_r != NULL)
			*errno_r = ENAMETOOLONG;
		return NULL;
	}
	memcpy(sa.sun_path, path, strlen(path) + 1);
	/* Blocking for the connect alone: a non-blocking one fails at once
	 * with EAGAIN while the server's backlog is full, where a blocking
	 * one waits (up to SO_SNDTIMEO) for the server to accept. */
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		e = errno;
		goto fail;
	}
	struct timeval tv = {.tv_sec = timeout_ms / 1000, .tv_usec = (timeout_ms % 1000) * 1000};
	(void)setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
	int r;
	while ((r = connect(fd, (struct sockaddr *)&sa, sizeof sa)) < 0 && errno == EINTR)
		;
	if (r < 0) {
		e = errno == EAGAIN || errno == EINPROGRESS ? ETIMEDOUT : errno;
		goto fail;
	}
	struct timeval zero = {0};
	(void)setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &zero, sizeof zero);
	int fl = fcntl(fd, F_GETFL);
	if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0) {
		e = errno;
		goto fail;
	}
	struct net *n = xcalloc(1, sizeof *n);
	n->fd = fd;
	snprintf(n->name, sizeof n->name, "%s", path);
	return n;
fail:
	if (fd >= 0)
		close(fd);
	if (errno_r != NULL)
		*errno_r = e;
	if (e == ETIMEDOUT)
		errf(err, errsz, "connect to %s: timed out after %s", path, secs(timeout_ms, t));
	else
		errf(err, errsz, "connect to %s: %s", path, strerror(e));
	return NULL;
}

void net_close(struct net **np)
{
	struct net *n = *np;

	if (n == NULL)
		return;
	if (n->ssl != NULL && n->tls_clean) {
		/* One try, not waited for: the server's close_notify is of no
		 * use to us, and a server that does not read must not hold us. */
		ERR_clear_error();
		(void)SSL_shutdown(n->ssl);
	}
	SSL_free(n->ssl);
	ERR_clear_error();
	if (n->fd >= 0)
		close(n->fd);
	explicit_bzero(n->rbuf, sizeof n->rbuf);
	free(n);
	*np = NULL;
}

const char *net_name(const struct net *n)
{
	return n->name;
}

int net_local_literal(const struct net *n, char *out, size_t outsz)
{
	struct sockaddr_storage ss;
	socklen_t sl = sizeof ss;
	char a[INET6_ADDRSTRLEN];

	if (getsockname(n->fd, (struct sockaddr *)&ss, &sl) < 0)
		return -1;
	if (ss.ss_family == AF_INET) {
		const struct sockaddr_in *s4 = (const struct sockaddr_in *)&ss;
		if (inet_ntop(AF_INET, &s4->sin_addr, a, sizeof a) == NULL)
			return -1;
		snprintf(out, outsz, "[%s]", a);
		return 0;
	}
	if (ss.ss_family == AF_INET6) {
		const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)&ss;
		if (inet_ntop(AF_INET6, &s6->sin6_addr, a, sizeof a) == NULL)
			return -1;
		snprintf(out, outsz, "[IPv6:%s]", a);
		return 0;
	}
	return -1;
}

/* ---- TLS ---- */

static bool is_ip_literal(const char *host)
{
	unsigned char a[sizeof(struct in6_addr)];

	return inet_pton(AF_INET, host, a) == 1 || inet_pton(AF_INET6, host, a) == 1;
}

/* Why the handshake failed, for the user: the verification result when
 * there is one (the usual case: a private CA, a self-signed certificate, a
 * name that does not match), else OpenSSL's or the system's error. */
static void handshake_error(struct net *n, const struct net_tls *t, const char *host, int ret,
			    int sslerr, int sys_errno, char *err, size_t errsz)
{
	long vr = SSL_get_verify_result(n->ssl);
	char e[256];

	if (!t->pinned && vr != X509_V_OK) {
		const char *why = X509_verify_cert_error_string(vr);
		if (vr == X509_V_ERR_HOSTNAME_MISMATCH || vr == X509_V_ERR_IP_ADDRESS_MISMATCH)
			errf(err, errsz, "TLS: certificate verify failed: %s (the certificate of "
			       "%s is not for %s)", why, n->name, host);
		else
			errf(err, errsz, "TLS: certificate verify failed: %s (use --cafile or a "
			       "pinned fingerprint)", why);
		ERR_clear_error();
		return;
	}
	if (sslerr == SSL_ERROR_SYSCALL && ERR_peek_error() == 0) {
		if (ret == 0 || sys_errno == 0)
			errf(err, errsz, "TLS: handshake with %s failed: the server closed the "
			       "connection", n->name);
		else
			errf(err, errsz, "TLS: handshake with %s failed: %s", n->name,
			       strerror(sys_errno));
		return;
	}
	errf(err, errsz, "TLS: handshake with %s failed: %s", n->name, ssl_errstr(e, sizeof e));
}

/* After the handshake: the pin, or (belt and braces: SSL_VERIFY_PEER has
 * checked it already) a verified certificate. */
static int check_peer(struct net *n, const struct net_tls *t, char *err, size_t errsz)
{
	X509 *leaf = SSL_get0_peer_certificate(n->ssl);

	if (leaf == NULL) {
		errf(err, errsz, "TLS: %s presented no certificate", n->name);
		return -1;
	}
	if (!t->pinned) {
		long vr = SSL_get_verify_result(n->ssl);
		if (vr != X509_V_OK) {
			errf(err, errsz, "TLS: certificate verify failed: %s (use --cafile or a "
			       "pinned fingerprint)", X509_verify_cert_error_string(vr));
			return -1;
		}
		return 0;
	}
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;
	if (X509_digest(leaf, EVP_sha256(), md, &mdlen) != 1 || mdlen != NET_PIN_LEN) {
		char e[256];
		errf(err, errsz, "TLS: cannot hash the certificate of %s: %s", n->name,
		       ssl_errstr(e, sizeof e));
		return -1;
	}
	if (CRYPTO_memcmp(md, t->pin, NET_PIN_LEN) != 0) {
		char hex[3 * NET_PIN_LEN];
		pin_format(md, hex);
		errf(err, errsz, "TLS: certificate fingerprint mismatch: %s presents SHA-256 %s, "
		       "not the pinned one", n->name, hex);
		return -1;
	}
	return 0;
}

int net_start_tls(struct net *n, const struct net_tls *t, const char *host, unsigned timeout_ms,
		  char *err, size_t errsz)
{
	char e[256], ts[32];

	if (n->ssl != NULL) {
		errf(err, errsz, "TLS: already active on %s", n->name);
		return -1;
	}
	if (n->rpos < n->rlen) {
		errf(err, errsz, "TLS: %s sent data before the TLS handshake: refusing it "
		       "(it would pass as protected)", n->name);
		return -1;
	}
	ERR_clear_error();
	n->ssl = SSL_new(t->ctx);
	BIO *bio = n->ssl ? BIO_new(t->meth) : NULL;
	if (bio == NULL) {
		errf(err, errsz, "TLS: cannot set up OpenSSL: %s", ssl_errstr(e, sizeof e));
		return -1;
	}
	BIO_set_data(bio, n);
	SSL_set_bio(n->ssl, bio, bio);
	SSL_set_connect_state(n->ssl);
	/* RFC 6066 3: SNI carries DNS names only; an address is checked
	 * against the certificate's iPAddress names instead. */
	int ok;
	if (is_ip_literal(host))
		ok = X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(n->ssl), host);
	else
		ok = SSL_set_tlsext_host_name(n->ssl, host) == 1 && SSL_set1_host(n->ssl, host) == 1;
	if (ok != 1) {
		errf(err, errsz, "TLS: cannot use \"%.100s\" as the server's name: %s", host,
		       ssl_errstr(e, sizeof e));
		return -1;
	}
	uint64_t deadline = now_ms() + timeout_ms;
	for (;;) {
		ERR_clear_error();
		errno = 0;
		int r = SSL_connect(n->ssl);
		if (r == 1)
			break;
		int se = SSL_get_error(n->ssl, r), sys = errno;
		int w = 1;
		if (se == SSL_ERROR_WANT_READ)
			w = wait_fd(n->fd, POLLIN, deadline);
		else if (se == SSL_ERROR_WANT_WRITE)
			w = wait_fd(n->fd, POLLOUT, deadline);
		else {
			handshake_error(n, t, host, r, se, sys, err, errsz);
			return -1;
		}
		if (w == 0) {
			errf(err, errsz, "TLS: handshake with %s timed out after %s", n->name,
			       secs(timeout_ms, ts));
			return -1;
		}
		if (w < 0) {
			errf(err, errsz, "TLS: handshake with %s: poll: %s", n->name,
			       strerror(errno));
			return -1;
		}
	}
	n->tls_clean = true;
	return check_peer(n, t, err, errsz);
}

bool net_is_tls(const struct net *n)
{
	return n->ssl != NULL;
}

const char *net_tls_desc(const struct net *n, char *out, size_t outsz)
{
	if (n->ssl == NULL)
		snprintf(out, outsz, "%s", "");
	else
		snprintf(out, outsz, "%s %s", SSL_get_version(n->ssl), SSL_get_cipher_name(n->ssl));
	return out;
}

/* ---- I/O ---- */

/* One SSL_read / SSL_write step: bytes > 0, 0 when it must wait (*events
 * says for what), -1 with err set. */
static long tls_step(struct net *n, bool writing, void *p, size_t len, short *events, char *err,
		     size_t errsz)
{
	char e[256];
	int chunk = len > INT_MAX ? INT_MAX : (int)len;

	ERR_clear_error();
	errno = 0;
	int r = writing ? SSL_write(n->ssl, p, chunk) : SSL_read(n->ssl, p, chunk);
	if (r > 0)
		return r;
	int se = SSL_get_error(n->ssl, r), sys = errno;
	if (se == SSL_ERROR_SYSCALL || se == SSL_ERROR_SSL)
		n->tls_clean = false;
	switch (se) {
	case SSL_ERROR_WANT_READ:
		*events = POLLIN;
		return 0;
	case SSL_ERROR_WANT_WRITE:
		*events = POLLOUT;
		return 0;
	case SSL_ERROR_ZERO_RETURN:
		errf(err, errsz, "%s closed the connection", n->name);
		return -1;
	case SSL_ERROR_SYSCALL:
		if (ERR_peek_error() == 0) {
			if (sys == 0)
				errf(err, errsz, "%s closed the connection", n->name);
			else
				errf(err, errsz, "%s %s: %s", writing ? "write to" : "read from",
				       n->name, strerror(sys));
			return -1;
		}
		break;
	default:
		break;
	}
	/* OpenSSL 3 reports a close without close_notify as an SSL error. */
	unsigned long le = ERR_peek_last_error();
	if (ERR_GET_LIB(le) == ERR_LIB_SSL && ERR_GET_REASON(le) == SSL_R_UNEXPECTED_EOF_WHILE_READING) {
		ERR_clear_error();
		errf(err, errsz, "%s closed the connection", n->name);
		return -1;
	}
	errf(err, errsz, "TLS: %s %s: %s", writing ? "write to" : "read from", n->name,
	       ssl_errstr(e, sizeof e));
	return -1;
}

static long plain_step(struct net *n, bool writing, void *p, size_t len, short *events,
		       char *err, size_t errsz)
{
	ssize_t r = writing ? send(n->fd, p, len, MSG_NOSIGNAL) : recv(n->fd, p, len, 0);
	if (r > 0)
		return (long)r;
	if (r == 0 && !writing) {
		errf(err, errsz, "%s closed the connection", n->name);
		return -1;
	}
	if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) {
		*events = writing ? POLLOUT : POLLIN;
		return 0;
	}
	errf(err, errsz, "%s %s: %s", writing ? "write to" : "read from", n->name,
	       r == 0 ? "no progress" : strerror(errno));
	return -1;
}

/* Move bytes in or out until progress is made or the deadline passes:
 * bytes > 0, or -1 with err set. */
static long io(struct net *n, bool writing, void *p, size_t len, uint64_t deadline,
	       unsigned timeout_ms, char *err, size_t errsz)
{
	char ts[32];

	for (;;) {
		short ev = 0;
		long r = n->ssl ? tls_step(n, writing, p, len, &ev, err, errsz)
				: plain_step(n, writing, p, len, &ev, err, errsz);
		if (r != 0)
			return r;
		int w = wait_fd(n->fd, ev, deadline);
		if (w == 0) {
			errf(err, errsz, "%s: timed out after %s %s", n->name, secs(timeout_ms, ts),
			       writing ? "sending (the server reads nothing)"
				       : "waiting for the server");
			return -1;
		}
		if (w < 0) {
			errf(err, errsz, "%s: poll: %s", n->name, strerror(errno));
			return -1;
		}
	}
}

int net_write(struct net *n, const void *p, size_t len, unsigned timeout_ms, char *err,
	      size_t errsz)
{
	const char *q = p;
	size_t done = 0;

	while (done < len) {
		/* A fresh deadline after each progress: see net.h. */
		long r = io(n, true, (void *)(q + done), len - done, now_ms() + timeout_ms,
			    timeout_ms, err, errsz);
		if (r < 0)
			return -1;
		done += (size_t)r;
	}
	return 0;
}

void net_trace(FILE *t, const char *prefix, const char *text, size_t len)
{
	if (t == NULL)
		return;
	fputs(prefix, t);
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)text[i];
		fputc(c < 0x20 || c == 0x7f ? '?' : c, t);
	}
	fputc('\n', t);
	fflush(t);
}

int net_err_context(char *err, size_t errsz, const char *ctx)
{
	size_t l = errsz ? strnlen(err, errsz) : 0;
	if (errsz && l < errsz - 1)
		snprintf(err + l, errsz - l, " (%s)", ctx);
	return -1;
}

int net_read_line_buf(struct net *n, struct buf *out, size_t max, unsigned timeout_ms, char *err,
		      size_t errsz)
{
	uint64_t deadline = now_ms() + timeout_ms;
	buf_reset(out);
	for (;;) {
		const char *start = n->rbuf + n->rpos;
		size_t avail = n->rlen - n->rpos;
		const char *lf = memchr(start, '\n', avail);
		size_t take = lf ? (size_t)(lf - start) : avail;
		if (out->len + take > max + 1 || buf_append(out, start, take) < 0) {
			errf(err, errsz, "%s sent a line longer than %zu bytes", n->name, max);
			return -1;
		}
		if (lf) {
			n->rpos += take + 1;
			if (out->len > 0 && out->data[out->len - 1] == '\r')
				out->data[--out->len] = '\0';
			if (out->len > max) {
				errf(err, errsz, "%s sent a line longer than %zu bytes", n->name, max);
				return -1;
			}
			return 0;
		}
		n->rpos = n->rlen = 0;
		long r = io(n, false, n->rbuf, sizeof n->rbuf, deadline, timeout_ms, err, errsz);
		if (r < 0)
			return -1;
		n->rlen = (size_t)r;
	}
}

int net_read_bytes(struct net *n, struct buf *out, size_t count, unsigned timeout_ms, char *err,
		   size_t errsz)
{
	while (count > 0) {
		size_t avail = n->rlen - n->rpos;
		if (avail > 0) {
			size_t take = avail < count ? avail : count;
			if (buf_append(out, n->rbuf + n->rpos, take) < 0) {
				errf(err, errsz, "%s sent more than %zu bytes", n->name, out->max);
				return -1;
			}
			n->rpos += take;
			count -= take;
			continue;
		}
		/* the deadline restarts with each read that brings data */
		n->rpos = n->rlen = 0;
		long r = io(n, false, n->rbuf, sizeof n->rbuf, now_ms() + timeout_ms, timeout_ms,
			    err, errsz);
		if (r < 0)
			return -1;
		n->rlen = (size_t)r;
	}
	return 0;
}

int net_read_line(struct net *n, char line[NET_LINE_MAX + 1], size_t *len_r,
		  unsigned timeout_ms, char *err, size_t errsz)
{
	uint64_t deadline = now_ms() + timeout_ms;

	*len_r = 0;
	line[0] = '\0';
	for (;;) {
		const char *start = n->rbuf + n->rpos;
		size_t avail = n->rlen - n->rpos;
		const char *lf = memchr(start, '\n', avail);
		if (lf != NULL) {
			size_t raw = (size_t)(lf - start), k = raw;
			if (k > 0 && start[k - 1] == '\r')
				k--;
			if (k > NET_LINE_MAX)
				break;
			memcpy(line, start, k);
			line[k] = '\0';
			*len_r = k;
			n->rpos += raw + 1;
			return 0;
		}
		/* No LF in more than a full line and its CR: too long. */
		if (avail > NET_LINE_MAX + 1)
			break;
		memmove(n->rbuf, start, avail);
		n->rpos = 0;
		n->rlen = avail;
		long r = io(n, false, n->rbuf + n->rlen, sizeof n->rbuf - n->rlen, deadline,
			    timeout_ms, err, errsz);
		if (r < 0)
			return -1;
		n->rlen += (size_t)r;
	}
	errf(err, errsz, "%s sent a line longer than %d bytes", n->name, NET_LINE_MAX);
	return -1;
}
