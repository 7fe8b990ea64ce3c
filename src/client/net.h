/* net.h - blocking TCP and TLS connections for the command-line client.
 *
 * The CLI (yubin send and friends) is a plain program with no event loop:
 * each call here waits until it is done, fails, or its timeout passes.
 * Internally the socket is non-blocking and every wait is a poll() with a
 * deadline, so a server that stops reading or writing, or trickles one byte
 * at a time, cannot hold us longer than the timeout: a connect attempt, a
 * line read and the TLS handshake each get the whole timeout; a write gets
 * it afresh after every byte of progress (a large body on a slow link is
 * fine, a peer that reads nothing is not).
 *
 * TLS is OpenSSL 3, TLS 1.2 at least, the certificate verified by default:
 * the system store (or cafile instead), then the host name (or the IP
 * address when the host is an address literal).  A pin replaces both
 * checks: the SHA-256 of the leaf certificate's DER must match, and then
 * the chain and the name do not matter (a self-signed server known by its
 * fingerprint).  There is no switch to turn verification off.
 *
 * Nothing here logs or touches signal dispositions: writes use
 * send(MSG_NOSIGNAL), TLS included (our own BIO), so a server that closes
 * under us is an error, not SIGPIPE.  Error texts go to the caller's
 * err[errsz] (always NUL-terminated), written for the user, e.g.
 * "connect to mail.example.org:587: Connection refused". */
#ifndef YUBIN_CLIENT_NET_H
#define YUBIN_CLIENT_NET_H

#include <stdbool.h>
#include <stddef.h>

/* Longest line net_read_line() accepts, without its line end.  RFC 5321
 * 4.5.3.1.5 says 512 with CR LF for SMTP replies; real servers send longer
 * ones, so be lenient, but a line longer than this is an error. */
#define NET_LINE_MAX 4096
/* Addresses of one host tried in turn (getaddrinfo order), at most. */
#define NET_ADDRS_MAX 8
/* The host:port text kept for error messages (longer names are cut). */
#define NET_NAME_MAX 300
/* Bytes of a SHA-256 fingerprint. */
#define NET_PIN_LEN 32

struct net;
struct net_tls;

struct net_tls_opts {
	/* PEM file of the CA certificate(s) to trust instead of the system
	 * store; NULL: the system store (SSL_CTX_set_default_verify_paths). */
	const char *cafile;
	/* SHA-256 fingerprint of the server's leaf certificate (its DER), 64
	 * hex digits of either case, colons between bytes allowed; NULL: no
	 * pin.  With a pin nothing else is checked. */
	const char *pin;
};

/* Parse a fingerprint as described for net_tls_opts.pin into out.  0, or
 * -1 when it is not 32 bytes of hex (a colon may follow any byte but the
 * last; nothing else may appear). */
int net_pin_parse(const char *text, unsigned char out[NET_PIN_LEN]);

/* The TLS settings for connections: made before connecting so that a bad
 * cafile or pin is reported before anything goes over the network.  NULL
 * with err set when the cafile does not load, the pin does not parse or
 * OpenSSL fails. */
struct net_tls *net_tls_new(const struct net_tls_opts *o, char *err, size_t errsz);
/* NULL-safe; clears *t. */
void net_tls_free(struct net_tls **t);

/* Connect to host (a name, an IPv4 address or an IPv6 address without
 * brackets) on port, trying each address getaddrinfo gives (IPv6 and IPv4,
 * at most NET_ADDRS_MAX), each within timeout_ms.  NULL with err set when
 * none answers: the last failure is reported. */
struct net *net_connect(const char *host, const char *port, unsigned timeout_ms, char *err,
			size_t errsz);
/* Connect to the Unix stream socket at path (a local server: yubind's
 * local_submit_socket), within timeout_ms even when its backlog is full.
 * No TLS is needed or offered there: the kernel carries the bytes and
 * tells the server who we are.  net_name() is then the path.  NULL with
 * err set ("connect to /run/yubin/submit.sock: No such file or
 * directory"); *errno_r (may be NULL) gets the errno of the failure, so
 * that the caller can tell a missing socket (ENOENT) from a refusal. */
struct net *net_connect_unix(const char *path, unsigned timeout_ms, int *errno_r, char *err,
			     size_t errsz);
/* Close (a TLS connection gets a close_notify first, not waited for);
 * NULL-safe, clears *n. */
void net_close(struct net **n);

/* "host:port" ("[v6]:port" for an IPv6 literal), for messages. */
const char *net_name(const struct net *n);
/* The local address as an RFC 5321 address literal ("[192.0.2.1]",
 * "[IPv6:2001:db8::1]") for EHLO when the host has no usable name; out
 * holds at least 64 bytes.  0, or -1 when getsockname fails. */
int net_local_literal(const struct net *n, char *out, size_t outsz);

/* TLS client handshake over n with the host name host (SNI and name check
 * when it is a DNS name; IP check when it is an address).  Nothing of the
 * peer's is trusted until this returns 0.  -1 with err set: "TLS:
 * certificate verify failed: self-signed certificate (use --cafile or a
 * pinned fingerprint)", "TLS: certificate fingerprint mismatch: ...", a
 * handshake failure, a timeout.  Data already received in clear and not yet
 * read is an error too (it would be taken as coming over TLS: the STARTTLS
 * injection of CVE-2011-0411). */
int net_start_tls(struct net *n, const struct net_tls *t, const char *host, unsigned timeout_ms,
		  char *err, size_t errsz);
bool net_is_tls(const struct net *n);
/* "TLSv1.3 TLS_AES_256_GCM_SHA384" for a trace; "" without TLS. */
const char *net_tls_desc(const struct net *n, char *out, size_t outsz);

/* Send all of p[0..len).  0, or -1 with err set (a write error, the peer
 * gone, no progress for timeout_ms). */
int net_write(struct net *n, const void *p, size_t len, unsigned timeout_ms, char *err,
	      size_t errsz);

/* Read one line into line[0..NET_LINE_MAX] (NUL-terminated, the line end
 * removed: CR LF, or a bare LF for lenience), its length in *len_r.  0, or
 * -1 with err set: the peer closed, a read or TLS error, a line longer than
 * NET_LINE_MAX, no complete line within timeout_ms.  A line may hold NUL
 * bytes (the caller's parser decides). */
/* A line of up to max bytes (CR LF or LF removed) into out (reset first;
 * out's own max must allow max + 2): for message data, whose lines may be
 * longer than NET_LINE_MAX. */
/* For the protocol clients: a trace line "prefix text" with control bytes
 * shown as '?' (a trace goes to a terminal); NULL t: nothing. */
#include <stdio.h>
void net_trace(FILE *t, const char *prefix, const char *text, size_t len);
/* Append " (ctx)" to the error already in err, e.g. "... closed the
 * connection (waiting for the greeting)".  Returns -1. */
int net_err_context(char *err, size_t errsz, const char *ctx);

struct buf;
int net_read_line_buf(struct net *n, struct buf *out, size_t max, unsigned timeout_ms, char *err,
		      size_t errsz);
/* Append exactly count bytes to out (an IMAP literal): -1 with err set when
 * out's max is reached, the peer closes, or no byte comes for timeout_ms. */
int net_read_bytes(struct net *n, struct buf *out, size_t count, unsigned timeout_ms, char *err,
		   size_t errsz);
int net_read_line(struct net *n, char line[NET_LINE_MAX + 1], size_t *len_r,
		  unsigned timeout_ms, char *err, size_t errsz);

#endif
