/* conn.c - connection I/O: libuv reads and writes, TLS through memory BIOs,
 * the line reader, output batching, timers and the close sequence.
 *
 * Reads land in one shared 64 KiB buffer (the loop is single-threaded and
 * read_cb consumes it at once), so an idle connection holds no read
 * buffer.  Input is appended to c->in, whose cap is a little over the
 * protocol's line limit plus one read; reading stops while c->in holds
 * more than IN_HIGH bytes that the protocol has not taken (it is paused or
 * the client pipelines faster than we answer), and resumes when it drains.
 * Output is batched in c->out and written when dispatching stops, so a
 * pipelined group of commands is answered with one write. */
#include "core/conn.h"

#include <assert.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <zlib.h>

#include "core/listener.h"
#include "core/log.h"
#include "core/tls.h"
#include "core/util.h"

#define READ_CHUNK (64 * 1024)
#define IN_HIGH (64 * 1024)           /* stop reading above this much unread input */
#define OUT_MAX (4 * 1024 * 1024)     /* unflushed output cap */
#define OUT_HIGH (1024 * 1024)        /* stop dispatching above this much pending */
#define OUT_LOW (256 * 1024)          /* resume / on_writable below this */
#define CLOSE_GRACE_MS 5000           /* peer must take our last bytes within this */

/* COMPRESS=DEFLATE.  Compressed input waits in pend until the protocol
 * has taken enough of c->in to make room (so a small packet cannot expand
 * into more than the input cap); reading stops while it is not empty. */
#define Z_PEND_MAX (READ_CHUNK + 16384)
struct conn_z {
	z_stream in, out;
	bool in_ok, out_ok;
	struct buf pend;
	char *obuf;
	size_t ocap;
	uint64_t raw_in, raw_out, plain_in, plain_out;
};

static void z_free(struct conn *c)
{
	struct conn_z *z = c->z;
	if (!z)
		return;
	if (z->in_ok)
		inflateEnd(&z->in);
	if (z->out_ok)
		deflateEnd(&z->out);
	buf_free(&z->pend);
	free(z->obuf);
	free(z);
	c->z = NULL;
}

struct write_req {
	uv_write_t req;
	struct conn *c;
	size_t len;
	char data[];
};

static void dispatch(struct conn *c);
static void do_close(struct conn *c);
static void start_reading(struct conn *c);
static void arm_timer(struct conn *c);
static void tls_input(struct conn *c);

/* Inflate what waits in z->pend into c->in while there is room. */
static int z_pump(struct conn *c)
{
	struct conn_z *z = c->z;
	char tmp[16384];

	while (z->pend.len > 0 && c->in.len < IN_HIGH) {
		z->in.next_in = (Bytef *)z->pend.data;
		z->in.avail_in = (uInt)z->pend.len;
		z->in.next_out = (Bytef *)tmp;
		z->in.avail_out = sizeof tmp;
		int r = inflate(&z->in, Z_SYNC_FLUSH);
		size_t used = z->pend.len - z->in.avail_in;
		size_t got = sizeof tmp - z->in.avail_out;
		buf_consume(&z->pend, used);
		if (r != Z_OK && r != Z_BUF_ERROR) {
			log_info("conn=%s %s: compressed input from [%s] is corrupt (%s); closing",
				 c->idstr, c->h->name, c->peer, z->in.msg ? z->in.msg : "inflate error");
			return -1;
		}
		z->raw_in += used;
		z->plain_in += got;
		if (got > 0 && buf_append(&c->in, tmp, got) < 0)
			return -1;
		if (used == 0 && got == 0)
			break;
	}
	return 0;
}

/* Bytes from the peer (after TLS) into the input buffer. */
static int in_feed(struct conn *c, const char *data, size_t n)
{
	if (!c->z)
		return buf_append(&c->in, data, n);
	if (buf_append(&c->z->pend, data, n) < 0)
		return -1;
	return z_pump(c);
}

/* ---- output ---------------------------------------------------------- */

size_t conn_out_pending(const struct conn *c)
{
	return c->out.len + c->writes_in_flight;
}

static void write_cb(uv_write_t *req, int status)
{
	struct write_req *w = (struct write_req *)req;
	struct conn *c = w->c;
	c->writes_in_flight -= w->len;
	free(w);
	if (status < 0 && !c->closing)
		conn_close(c, uv_strerror(status));
	if (c->closing) {
		if (c->writes_in_flight == 0 && c->out.len == 0)
			do_close(c);
	} else if (conn_out_pending(c) < OUT_LOW) {
		if (c->writing_blocked) {
			c->writing_blocked = false;
			dispatch(c);
		}
		if (!c->closing && c->h->on_writable && conn_out_pending(c) < OUT_LOW)
			c->h->on_writable(c);
	}
	conn_release(c);
}

static void send_raw(struct conn *c, const char *data, size_t len)
{
	if (len == 0 || c->handles_open == 0 || uv_is_closing((uv_handle_t *)&c->tcp))
		return;
	struct write_req *w = xmalloc(sizeof *w + len);
	memcpy(w->data, data, len);
	w->c = c;
	w->len = len;
	uv_buf_t b = uv_buf_init(w->data, (unsigned)len);
	c->writes_in_flight += len;
	conn_hold(c);
	int r = uv_write(&w->req, (uv_stream_t *)&c->tcp, &b, 1, write_cb);
	if (r < 0) {
		c->writes_in_flight -= len;
		free(w);
		conn_release(c);
		if (!c->closing)
			conn_close(c, uv_strerror(r));
	}
}

/* Move whatever OpenSSL produced for the peer onto the socket. */
static void flush_wbio(struct conn *c)
{
	char tmp[16384];
	int n;
	while ((n = BIO_read(c->wbio, tmp, sizeof tmp)) > 0)
		send_raw(c, tmp, (size_t)n);
}

/* Deflate c->out into z->obuf; returns the compressed length. */
static size_t z_deflate(struct conn *c)
{
	struct conn_z *z = c->z;
	size_t need = deflateBound(&z->out, c->out.len) + 64;

	if (z->ocap < need) {
		free(z->obuf);
		z->obuf = xmalloc(need);
		z->ocap = need;
	}
	z->out.next_in = (Bytef *)c->out.data;
	z->out.avail_in = (uInt)c->out.len;
	z->out.next_out = (Bytef *)z->obuf;
	z->out.avail_out = (uInt)z->ocap;
	int r = deflate(&z->out, Z_SYNC_FLUSH);
	if ((r != Z_OK && r != Z_BUF_ERROR) || z->out.avail_in != 0) {
		log_error("conn=%s %s: deflate failed (%d); closing", c->idstr, c->h->name, r);
		return (size_t)-1;
	}
	size_t n = z->ocap - z->out.avail_out;
	z->plain_out += c->out.len;
	z->raw_out += n;
	return n;
}

void conn_flush(struct conn *c)
{
	if (c->out.len == 0 || c->tls_handshaking)
		return;
	const char *data = c->out.data;
	size_t len = c->out.len;
	if (c->z) {
		len = z_deflate(c);
		if (len == (size_t)-1) {
			buf_reset(&c->out);
			if (!c->closing)
				conn_close(c, "compression error");
			return;
		}
		data = c->z->obuf;
	}
	if (c->ssl) {
		size_t off = 0;
		while (off < len) {
			int n = SSL_write(c->ssl, data + off, (int)MIN(len - off, 16384));
			if (n <= 0) {
				log_warn("conn=%s %s: TLS write failed: %s", c->idstr, c->h->name,
					 tls_error_string());
				buf_reset(&c->out);
				flush_wbio(c);
				if (!c->closing)
					conn_close(c, "TLS write error");
				return;
			}
			off += (size_t)n;
		}
		buf_reset(&c->out);
		flush_wbio(c);
	} else {
		send_raw(c, data, len);
		buf_reset(&c->out);
	}
	/* A big reply buffer is given back rather than kept for an idle
	 * connection. */
	if (c->out.cap > 16384)
		buf_free(&c->out);
	if (c->z && c->z->ocap > 65536) {
		FREE(c->z->obuf);
		c->z->ocap = 0;
	}
}

int conn_write(struct conn *c, const void *data, size_t len)
{
	if (c->closing && c->closed_cb_done)
		return -1;
	if (buf_append(&c->out, data, len) < 0) {
		log_error("conn=%s %s: output buffer over %d bytes; closing", c->idstr, c->h->name,
			  OUT_MAX);
		conn_close(c, "output overflow");
		return -1;
	}
	if (c->out.len >= 64 * 1024)
		conn_flush(c);
	return 0;
}

int conn_printf(struct conn *c, const char *fmt, ...)
{
	char tmp[1024];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
	va_end(ap);
	if (n < 0)
		return -1;
	if ((size_t)n < sizeof tmp)
		return conn_write(c, tmp, (size_t)n);
	char *big = xmalloc((size_t)n + 1);
	va_start(ap, fmt);
	vsnprintf(big, (size_t)n + 1, fmt, ap);
	va_end(ap);
	int r = conn_write(c, big, (size_t)n);
	free(big);
	return r;
}

/* ---- input ----------------------------------------------------------- */

void conn_set_max_line(struct conn *c, size_t max_line)
{
	c->max_line = max_line;
	c->in.max = IN_HIGH + READ_CHUNK + max_line;
}

void conn_set_raw(struct conn *c, bool raw)
{
	c->raw = raw;
	c->line_started_ms = 0;
}

void conn_pause(struct conn *c)
{
	c->paused = true;
}

void conn_resume(struct conn *c)
{
	if (!c->paused)
		return;
	c->paused = false;
	c->last_activity_ms = now_ms();
	if (!c->dispatching && !c->closing)
		dispatch(c);
}

void conn_discard_input(struct conn *c)
{
	buf_reset(&c->in);
	c->in_taken = 0;
	c->skipping_long_line = false;
	c->discarded = true;
}

size_t conn_input_pending(const struct conn *c)
{
	return c->in.len - c->in_taken;
}

static void dispatch(struct conn *c)
{
	/* Bytes taken from the front of c->in are counted in off and removed
	 * in one buf_consume when the loop stops, not line by line: a burst
	 * of small pipelined commands costs one memmove, not one each. */
	size_t off = 0;

	if (c->dispatching)
		return;
	conn_hold(c);
	c->dispatching = true;
again:
	while (!c->paused && !c->closing && !c->tls_handshaking) {
		if (conn_out_pending(c) > OUT_HIGH) {
			c->writing_blocked = true;
			break;
		}
		char *data = c->in.data + off;
		size_t avail = c->in.len - off;
		if (c->raw) {
			if (avail == 0)
				break;
			c->discarded = false;
			c->in_taken = off;
			size_t n = c->h->on_raw(c, data, avail);
			if (c->discarded) {
				off = 0;
				continue;
			}
			off += n;
			/* Nothing taken: wait for more bytes, unless the handler
			 * went back to line mode and the rest is commands. */
			if (n == 0 && c->raw)
				break;
			continue;
		}
		char *lf = avail ? memchr(data, '\n', avail) : NULL;
		if (c->skipping_long_line) {
			if (lf == NULL) {
				off = c->in.len;
				break;
			}
			off += (size_t)(lf - data) + 1;
			c->skipping_long_line = false;
			c->line_started_ms = 0;
			continue;
		}
		if (lf == NULL) {
			if (avail > c->max_line) {
				c->skipping_long_line = true;
				off = c->in.len;
				c->h->on_line_too_long(c);
				continue;
			}
			if (avail > 0 && c->line_started_ms == 0)
				c->line_started_ms = now_ms();
			break;
		}
		size_t total = (size_t)(lf - data) + 1;
		size_t len = total - 1;
		if (len > 0 && data[len - 1] == '\r')
			len--;
		c->line_started_ms = 0;
		c->last_activity_ms = now_ms();
		off += total;
		if (len > c->max_line) {
			c->h->on_line_too_long(c);
			continue;
		}
		char *line = xmalloc(len + 1);
		memcpy(line, data, len);
		line[len] = '\0';
		c->discarded = false;
		c->in_taken = off;
		if (c->h->on_line_nul && memchr(line, '\0', len) != NULL)
			c->h->on_line_nul(c);
		else
			c->h->on_line(c, line, len);
		free(line);
		if (c->discarded)
			off = 0;
		c->discarded = false;
	}
	buf_consume(&c->in, off);
	off = 0;
	c->in_taken = 0;
	/* Decrypted or undecrypted input may wait inside OpenSSL after we
	 * stopped taking it (input cap, pause): take it now. */
	if (!c->closing && !c->paused && !c->writing_blocked && c->ssl && !c->tls_handshaking &&
	    c->in.len < IN_HIGH && (BIO_ctrl_pending(c->rbio) > 0 || SSL_pending(c->ssl) > 0)) {
		size_t before = c->in.len;
		tls_input(c);
		if (c->in.len != before)
			goto again;
	}
	if (!c->closing && !c->paused && !c->writing_blocked && c->z && c->z->pend.len > 0 &&
	    c->in.len < IN_HIGH) {
		size_t before = c->in.len;
		if (z_pump(c) < 0) {
			conn_close(c, "compressed input error");
		} else if (c->in.len != before) {
			goto again;
		}
	}
	c->dispatching = false;
	if (c->peer_eof && !c->closing && !c->paused && !c->writing_blocked &&
	    !c->tls_handshaking) {
		/* Everything complete that the client sent is answered; what
		 * is left is an unfinished line or transfer. */
		conn_close(c, "peer closed the connection");
	}
	if (!c->closing) {
		conn_flush(c);
		if (c->in.len < IN_HIGH && !(c->z && c->z->pend.len > 0))
			start_reading(c);
		arm_timer(c);
	}
	conn_release(c);
}

static void alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *b)
{
	static char chunk[READ_CHUNK];
	(void)h;
	(void)suggested;
	*b = uv_buf_init(chunk, sizeof chunk);
}

static void tls_established(struct conn *c)
{
	c->tls_handshaking = false;
	c->tls = true;
	snprintf(c->tls_version, sizeof c->tls_version, "%s", SSL_get_version(c->ssl));
	const SSL_CIPHER *ci = SSL_get_current_cipher(c->ssl);
	snprintf(c->tls_cipher, sizeof c->tls_cipher, "%s", ci ? SSL_CIPHER_get_name(ci) : "?");
	c->tls_bits = ci ? SSL_CIPHER_get_bits(ci, NULL) : 0;
	log_info("conn=%s %s: TLS established version=%s cipher=%s", c->idstr, c->h->name,
		 c->tls_version, c->tls_cipher);
}

/* Feed ciphertext, run the handshake or decrypt into c->in. */
static void tls_input(struct conn *c)
{
	if (c->tls_handshaking) {
		int r = SSL_do_handshake(c->ssl);
		flush_wbio(c);
		if (r != 1) {
			int e = SSL_get_error(c->ssl, r);
			if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE)
				return;
			const char *why = tls_error_string();
			log_info("conn=%s %s: TLS handshake failed from [%s]: %s", c->idstr, c->h->name,
				 c->peer, why);
			bool implicit = c->implicit_tls && !c->proto;
			if (!implicit && c->h->on_tls)
				c->h->on_tls(c, false);
			conn_close(c, "TLS handshake failed");
			return;
		}
		tls_established(c);
		if (c->proto == NULL && c->implicit_tls)
			c->h->on_open(c);
		else if (c->h->on_tls)
			c->h->on_tls(c, true);
		if (c->closing)
			return;
	}
	while (c->in.len < IN_HIGH && !(c->z && c->z->pend.len > 0)) {
		char tmp[16384];
		int n = SSL_read(c->ssl, tmp, sizeof tmp);
		if (n > 0) {
			if (in_feed(c, tmp, (size_t)n) < 0) {
				conn_close(c, c->z ? "compressed input error" : "input overflow");
				return;
			}
			continue;
		}
		int e = SSL_get_error(c->ssl, n);
		if (e == SSL_ERROR_WANT_READ)
			break;
		flush_wbio(c);
		if (e == SSL_ERROR_ZERO_RETURN) {
			/* Like a TCP half-close: what came before it is still
			 * answered (see peer_eof in dispatch). */
			c->peer_eof = true;
			break;
		}
		conn_close(c, "TLS read error");
		return;
	}
	flush_wbio(c);
}

static void read_cb(uv_stream_t *s, ssize_t nread, const uv_buf_t *b)
{
	struct conn *c = s->data;
	if (nread == 0)
		return;
	if (nread == UV_EOF && !c->closing) {
		/* The client has finished sending (it may have half-closed
		 * after pipelining its last commands): answer what it sent,
		 * let work in flight finish, then close (dispatch does). */
		c->peer_eof = true;
		if (c->tls_handshaking) {
			conn_close(c, "peer closed the connection during the TLS handshake");
			return;
		}
		if (c->reading) {
			uv_read_stop(s);
			c->reading = false;
		}
		dispatch(c);
		return;
	}
	if (nread < 0) {
		conn_close(c, uv_strerror((int)nread));
		return;
	}
	if (c->closing)
		return;
	conn_hold(c);
	if (c->raw)
		c->last_activity_ms = now_ms();
	if (c->ssl) {
		BIO_write(c->rbio, b->base, (int)nread);
		tls_input(c);
	} else if (in_feed(c, b->base, (size_t)nread) < 0) {
		/* Without compression this cannot happen: reading stops at
		 * IN_HIGH and in.max leaves room for one more read. */
		conn_close(c, c->z ? "compressed input error" : "input overflow");
	}
	if (!c->closing) {
		if ((c->in.len >= IN_HIGH || (c->z && c->z->pend.len > 0)) && c->reading) {
			uv_read_stop(s);
			c->reading = false;
		}
		dispatch(c);
	}
	conn_release(c);
}

static void start_reading(struct conn *c)
{
	if (c->reading || c->closing || c->peer_eof)
		return;
	if (uv_read_start((uv_stream_t *)&c->tcp, alloc_cb, read_cb) == 0)
		c->reading = true;
}

/* ---- timers ---------------------------------------------------------- */

void conn_set_timeouts(struct conn *c, uint64_t idle_ms, uint64_t command_ms)
{
	c->idle_ms = idle_ms;
	c->command_ms = command_ms;
	c->last_activity_ms = now_ms();
	arm_timer(c);
}

static void timer_cb(uv_timer_t *t)
{
	struct conn *c = t->data;
	if (c->closing)
		return;
	uint64_t now = now_ms();
	if (c->paused || c->writing_blocked) {
		/* Waiting on ourselves (store, auth) or on the client reading:
		 * idle time does not run; a client that never reads is cut
		 * by the idle timeout once it is our turn again. */
		if (c->paused)
			c->last_activity_ms = now;
	}
	if (c->proto == NULL) {
		/* Implicit-TLS handshake not finished: no session to ask. */
		if (now - c->last_activity_ms >= c->idle_ms) {
			log_info("conn=%s %s: TLS handshake not completed within %llu ms from [%s]",
				 c->idstr, c->h->name, (unsigned long long)c->idle_ms, c->peer);
			conn_close(c, "TLS handshake timeout");
			return;
		}
		arm_timer(c);
		return;
	}
	if (c->idle_ms && now - c->last_activity_ms >= c->idle_ms && !c->paused) {
		log_info("conn=%s %s: idle timeout after %llu ms from [%s]", c->idstr, c->h->name,
			 (unsigned long long)c->idle_ms, c->peer);
		conn_hold(c);
		c->h->on_timeout(c, CONN_TIMEOUT_IDLE);
		conn_flush(c);
		conn_release(c);
		return;
	}
	if (c->command_ms && c->line_started_ms && !c->raw &&
	    now - c->line_started_ms >= c->command_ms) {
		log_info("conn=%s %s: command not completed within %llu ms from [%s]", c->idstr,
			 c->h->name, (unsigned long long)c->command_ms, c->peer);
		conn_hold(c);
		c->h->on_timeout(c, CONN_TIMEOUT_COMMAND);
		conn_flush(c);
		conn_release(c);
		return;
	}
	arm_timer(c);
}

static void arm_timer(struct conn *c)
{
	if (c->closing || c->handles_open == 0)
		return;
	uint64_t now = now_ms(), next = UINT64_MAX;
	if (c->idle_ms) {
		uint64_t due = c->last_activity_ms + c->idle_ms;
		next = due > now ? due - now : 0;
	}
	if (c->command_ms && c->line_started_ms) {
		uint64_t due = c->line_started_ms + c->command_ms;
		uint64_t d = due > now ? due - now : 0;
		next = MIN(next, d);
	}
	if (next == UINT64_MAX) {
		uv_timer_stop(&c->timer);
		return;
	}
	/* A timer that is already due earlier stays; checks are cheap. */
	uv_timer_start(&c->timer, timer_cb, next + 1, 0);
}

static void deadline_cb(uv_timer_t *t)
{
	struct conn *c = t->data;
	if (c->closing)
		return;
	if (c->proto == NULL) {
		conn_close(c, "deadline before the session started");
		return;
	}
	log_info("conn=%s %s: transfer deadline exceeded from [%s]", c->idstr, c->h->name, c->peer);
	conn_hold(c);
	c->h->on_timeout(c, CONN_TIMEOUT_DEADLINE);
	conn_flush(c);
	conn_release(c);
}

void conn_set_deadline(struct conn *c, uint64_t ms)
{
	if (c->handles_open)
		uv_timer_start(&c->deadline, deadline_cb, ms, 0);
}

void conn_clear_deadline(struct conn *c)
{
	if (c->handles_open)
		uv_timer_stop(&c->deadline);
}

/* ---- TLS ------------------------------------------------------------- */

bool conn_tls_available(const struct conn *c)
{
	return c->reg->tls != NULL;
}

/* An SSL object over memory BIOs, ready for the handshake. */
static int tls_new(struct conn *c, SSL_CTX *ctx)
{
	if (ctx == NULL || c->ssl)
		return -1;
	c->ssl = SSL_new(ctx);
	if (c->ssl == NULL)
		return -1;
	c->rbio = BIO_new(BIO_s_mem());
	c->wbio = BIO_new(BIO_s_mem());
	BIO_set_mem_eof_return(c->rbio, -1);
	SSL_set_bio(c->ssl, c->rbio, c->wbio);
	c->tls_handshaking = true;
	return 0;
}

int conn_tls_begin(struct conn *c)
{
	if (tls_new(c, c->reg->tls) < 0)
		return -1;
	SSL_set_accept_state(c->ssl);
	return 0;
}

int conn_start_tls(struct conn *c)
{
	if (c->reg->tls == NULL || c->ssl)
		return -1;
	conn_flush(c);
	/* Whatever the client sent after the command was sent in plaintext
	 * before the handshake: never let it count as protected input. */
	conn_discard_input(c);
	return conn_tls_begin(c);
}

int conn_start_tls_client(struct conn *c, SSL_CTX *ctx, const char *sni,
			  int (*setup)(SSL *ssl, void *arg), void *arg)
{
	if (ctx == NULL || c->ssl)
		return -1;
	conn_flush(c);
	conn_discard_input(c);
	if (tls_new(c, ctx) < 0)
		return -1;
	SSL_set_connect_state(c->ssl);
	if (setup) {
		if (setup(c->ssl, arg) < 0)
			return -1;     /* c->ssl is freed with c */
	} else if (sni && sni[0] != '\0' && sni[0] != '[') {
		SSL_set_tlsext_host_name(c->ssl, sni);
		SSL_set1_host(c->ssl, sni);
	}
	/* The client speaks first: send the ClientHello now. */
	conn_hold(c);
	tls_input(c);
	conn_release(c);
	return 0;
}

/* ---- lifetime -------------------------------------------------------- */

void conn_hold(struct conn *c)
{
	c->refs++;
}

void conn_release(struct conn *c)
{
	assert(c->refs > 0);
	if (--c->refs > 0)
		return;
	assert(c->closing && c->handles_open == 0);
	if (c->h->on_free)
		c->h->on_free(c);
	if (c->ssl)
		SSL_free(c->ssl); /* frees the BIOs too */
	z_free(c);
	buf_free(&c->in);
	buf_free(&c->out);
	free(c);
}

int conn_start_compress(struct conn *c)
{
	if (c->z)
		return -1;
	conn_flush(c);
	struct conn_z *z = xcalloc(1, sizeof *z);
	/* Raw DEFLATE both ways.  Our compressor keeps a 16 KiB window and
	 * a small hash (about 40 KiB in all, not zlib's default 256 KiB);
	 * the decompressor must accept any window the client uses. */
	if (inflateInit2(&z->in, -15) == Z_OK)
		z->in_ok = true;
	if (deflateInit2(&z->out, Z_DEFAULT_COMPRESSION, Z_DEFLATED, -14, 6,
			 Z_DEFAULT_STRATEGY) == Z_OK)
		z->out_ok = true;
	c->z = z;
	if (!z->in_ok || !z->out_ok) {
		z_free(c);
		return -1;
	}
	buf_init(&z->pend, Z_PEND_MAX);
	return 0;
}

bool conn_compressed(const struct conn *c)
{
	return c->z != NULL;
}

bool conn_is_closed(const struct conn *c)
{
	return c->closing;
}

static void handle_closed(uv_handle_t *h)
{
	struct conn *c = h->data;
	if (--c->handles_open == 0) {
		struct conn_registry *reg = c->reg;
		/* unlink from the registry */
		if (c->prev)
			c->prev->next = c->next;
		else
			reg->head = c->next;
		if (c->next)
			c->next->prev = c->prev;
		reg->count--;
		c->closed_cb_done = true;
		conn_release(c); /* the registry's reference */
		if (reg->count == 0 && reg->shutting_down && reg->on_empty)
			reg->on_empty(reg);
	}
}

static void do_close(struct conn *c)
{
	if (uv_is_closing((uv_handle_t *)&c->tcp))
		return;
	uv_close((uv_handle_t *)&c->tcp, handle_closed);
	uv_close((uv_handle_t *)&c->timer, handle_closed);
	uv_close((uv_handle_t *)&c->deadline, handle_closed);
}

static void close_grace_cb(uv_timer_t *t)
{
	struct conn *c = t->data;
	do_close(c);
}

void conn_close(struct conn *c, const char *reason)
{
	if (c->closing)
		return;
	conn_hold(c);
	/* Closing from here on: nothing on_close does (conn_resume, say) may
	 * dispatch more input. */
	c->closing = true;
	if (c->h->on_close && c->proto)
		c->h->on_close(c, reason);
	log_debug("conn=%s %s: closing: %s", c->idstr, c->h->name, reason);
	if (c->handles_open == 0) {
		conn_release(c);
		return;
	}
	conn_flush(c);
	if (c->ssl && !c->tls_handshaking) {
		SSL_shutdown(c->ssl);
		flush_wbio(c);
	}
	if (c->reading) {
		uv_read_stop((uv_stream_t *)&c->tcp);
		c->reading = false;
	}
	uv_timer_stop(&c->deadline);
	if (c->writes_in_flight == 0) {
		do_close(c);
	} else {
		/* Give the peer a moment to take our last reply. */
		uv_timer_start(&c->timer, close_grace_cb, CLOSE_GRACE_MS, 0);
	}
	conn_release(c);
}

/* Called by the listener for a freshly accepted connection. */
void conn_started(struct conn *c)
{
	c->last_activity_ms = now_ms();
	if (c->implicit_tls) {
		if (conn_tls_begin(c) < 0) {
			log_error("conn=%s %s: cannot set up TLS: %s", c->idstr, c->h->name,
				  tls_error_string());
			conn_close(c, "TLS setup failed");
			return;
		}
		uint64_t ms = c->reg->handshake_ms ? c->reg->handshake_ms : 30000;
		conn_set_timeouts(c, ms, ms);
		start_reading(c);
		return;
	}
	c->h->on_open(c);
	if (!c->closing) {
		conn_flush(c);
		start_reading(c);
		arm_timer(c);
	}
}
