/* conn.h - one client connection: libuv TCP, optional TLS, bounded input,
 * a line reader, buffered output, timers.  Shared by every protocol.
 *
 * A protocol supplies a struct conn_handler and keeps its session state in
 * c->proto.  Input is dispatched in order: in line mode one complete line at
 * a time (CRLF or LF stripped), in raw mode as many bytes as are buffered.
 * A handler that starts asynchronous work calls conn_pause(); nothing more
 * is dispatched until conn_resume(), so pipelined commands wait their turn
 * and replies go out in order.  Output is collected and written once the
 * buffered input is used up (one write per pipelined group).
 *
 * Lifetime: the conn is owned by the listener.  conn_close() (or a peer
 * close/error) calls on_close once; the memory, and c->proto through
 * on_free, is released when the last conn_hold() reference is dropped and
 * libuv has closed the handles.  Work running on another thread keeps a
 * hold and checks conn_is_closed() when it completes. */
#ifndef YUBIN_CORE_CONN_H
#define YUBIN_CORE_CONN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>
#include <openssl/ssl.h>

#include "buf.h"

struct conn;
struct conn_registry;
struct server;

enum conn_timeout {
	CONN_TIMEOUT_IDLE,     /* no complete command for idle_ms */
	CONN_TIMEOUT_COMMAND,  /* a line started but did not end within command_ms */
	CONN_TIMEOUT_DEADLINE, /* conn_set_deadline() expired (e.g. DATA phase) */
};

struct conn_handler {
	const char *name;      /* "smtp", "pop3": used in logs */
	/* New connection accepted (after the TLS handshake on implicit-TLS
	 * listeners): create c->proto, send the greeting. */
	void (*on_open)(struct conn *c);
	/* One line; line[len] == '\0'.  The CR LF is not included.  *line may
	 * be modified in place. */
	void (*on_line)(struct conn *c, char *line, size_t len);
	/* Raw mode: bytes as they arrive; return how many were consumed (the
	 * rest stays buffered and is offered again with more data). */
	size_t (*on_raw)(struct conn *c, const char *data, size_t len);
	/* A line longer than max_line arrived.  The over-long line is skipped up
	 * to its LF; the handler replies with a protocol error. */
	void (*on_line_too_long)(struct conn *c);
	/* A line contained a NUL byte (refused by every text protocol here).
	 * If NULL the line is passed to on_line anyway. */
	void (*on_line_nul)(struct conn *c);
	void (*on_timeout)(struct conn *c, enum conn_timeout which);
	/* STARTTLS/STLS handshake result (not called for implicit TLS). */
	void (*on_tls)(struct conn *c, bool ok);
	/* The daemon is shutting down: finish or abort, then conn_close(). */
	void (*on_shutdown)(struct conn *c);
	/* Output pending fell below the low-water mark (streaming senders). */
	void (*on_writable)(struct conn *c);
	/* The connection is closing; reason is for the log. */
	void (*on_close)(struct conn *c, const char *reason);
	/* Free c->proto; called once, after on_close and the last release. */
	void (*on_free)(struct conn *c);
};

struct conn {
	uint64_t id;              /* unique per daemon run; logged as conn=%llx */
	char idstr[20];           /* id as hex text */
	char peer[64];            /* "127.0.0.1" or "::1" */
	int peer_port;
	int local_port;
	bool loopback;            /* peer address is loopback */
	/* A Unix-socket peer (local submission): peer_uid is what the kernel
	 * says (SO_PEERCRED), peer is "local uid=N", peer_port 0. */
	bool local;
	uint32_t peer_uid;
	bool tls;                 /* TLS active (STARTTLS done or implicit) */
	char tls_version[16];     /* "TLSv1.3" when tls */
	char tls_cipher[64];      /* cipher name when tls */
	int tls_bits;
	void *proto;              /* protocol session state */
	struct server *server;    /* daemon context (opaque to core) */
	const struct conn_handler *h;

	/* Internal state below: use the functions. */
	union {                   /* the stream: tcp, or pipe when local */
		uv_tcp_t tcp;
		uv_pipe_t pipe;
	};
	uv_timer_t timer;
	uv_timer_t deadline;
	SSL *ssl;
	BIO *rbio, *wbio;
	struct buf in;
	struct buf out;
	size_t max_line;
	uint64_t idle_ms, command_ms;
	uint64_t line_started_ms;
	uint64_t last_activity_ms;
	int refs;
	int handles_open;
	bool raw;
	bool paused;
	bool dispatching;
	bool skipping_long_line;
	bool closing;
	bool closed_cb_done;
	bool reading;
	bool tls_handshaking;
	bool writing_blocked;
	bool discarded;
	bool peer_eof;            /* the peer will send nothing more */
	size_t in_taken;          /* dispatched bytes not yet removed from in */
	size_t writes_in_flight;
	struct conn *next, *prev; /* registry's list */
	struct conn_registry *reg; /* outlives every conn; listeners may not */
	bool implicit_tls;
	bool outbound;            /* we connected (conn_connect), we are the TLS client */
	struct conn_z *z;         /* COMPRESS=DEFLATE state, NULL when off */
};

/* Output. Bytes are buffered and written when input processing ends or
 * conn_flush() is called.  Fails (-1) only when the output cap is hit, in
 * which case the connection is closed. */
int conn_write(struct conn *c, const void *data, size_t len);
int conn_printf(struct conn *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void conn_flush(struct conn *c);
/* Bytes queued for the peer and not yet written to the socket. */
size_t conn_out_pending(const struct conn *c);

/* Input control. */
void conn_set_max_line(struct conn *c, size_t max_line);
void conn_set_raw(struct conn *c, bool raw);
void conn_pause(struct conn *c);
void conn_resume(struct conn *c);
/* Drop every byte buffered but not yet dispatched. */
void conn_discard_input(struct conn *c);
/* Bytes received but not yet dispatched (pipelined data). */
size_t conn_input_pending(const struct conn *c);

/* Timeouts in milliseconds; 0 disables. */
void conn_set_timeouts(struct conn *c, uint64_t idle_ms, uint64_t command_ms);
void conn_set_deadline(struct conn *c, uint64_t ms);
void conn_clear_deadline(struct conn *c);

/* Begin the server side of a TLS handshake on a plaintext connection
 * (STARTTLS/STLS): flushes output, throws away any input already buffered
 * (plaintext injected before the handshake, CVE-2011-0411), and calls
 * h->on_tls when done.  -1 if TLS is not configured. */
int conn_start_tls(struct conn *c);
/* The client side (outbound connections): handshake with ctx, sending sni
 * (may be NULL) as the server name; h->on_tls when done.  Input buffered
 * so far is dropped as above.  The caller checks the peer certificate in
 * on_tls (SSL_get_verify_result(c->ssl)) as its policy requires. */
/* setup (optional) configures the SSL before the ClientHello instead of
 * the default SNI and host name check (DANE: SSL_dane_enable...); -1 from
 * it fails the call. */
int conn_start_tls_client(struct conn *c, SSL_CTX *ctx, const char *sni,
			  int (*setup)(SSL *ssl, void *arg), void *arg);
bool conn_tls_available(const struct conn *c);

/* RFC 4978 COMPRESS=DEFLATE: from now on everything read is inflated and
 * everything written deflated (raw DEFLATE, a sync flush per write).  Call
 * it after the reply that accepts the command was queued: that reply is
 * flushed uncompressed first.  Input already buffered stays as it is (a
 * client sends nothing after COMPRESS before the reply).  -1 if already on
 * or zlib refuses. */
int conn_start_compress(struct conn *c);
bool conn_compressed(const struct conn *c);

/* Flush what is queued, then close.  Safe to call more than once. */
void conn_close(struct conn *c, const char *reason);
bool conn_is_closed(const struct conn *c);
void conn_hold(struct conn *c);
void conn_release(struct conn *c);

/* For listener.c only. */
void conn_started(struct conn *c);
int conn_tls_begin(struct conn *c);

#endif
