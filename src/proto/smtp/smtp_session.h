/* smtp_session.h - the SMTP server session (RFC 5321 with PIPELINING,
 * SIZE, 8BITMIME, ENHANCEDSTATUSCODES, STARTTLS, SMTPUTF8, CHUNKING):
 * mail from the Internet to local users only.
 *
 * yubind attaches smtp_conn_handler to every listen_smtp listener; the
 * session keeps its state in c->proto and reaches the store through
 * c->server. */
#ifndef YUBIN_PROTO_SMTP_SESSION_H
#define YUBIN_PROTO_SMTP_SESSION_H

#include "core/conn.h"

/* Longest command line accepted (RFC 5321 4.5.3.1.4 says 512; we allow
 * more for long parameter lists). */
#define SMTP_MAX_LINE 2048

extern const struct conn_handler smtp_conn_handler;
/* The same session in the submission role (RFC 6409, listen_submission and
 * listen_submissions): AUTH offered after TLS and required for MAIL; an
 * authenticated user may relay, as their own address only, and the
 * message gets Date/Message-ID when missing and loses its Bcc fields. */
extern const struct conn_handler submission_conn_handler;
/* The same session on the local submission socket (local_submit_socket, a
 * Unix socket): SMTP as on submission, without TLS or AUTH; the kernel's
 * word on the peer (c->peer_uid) stands for the login.  The user may relay
 * and send as any address; the Received header names the uid and user. */
extern const struct conn_handler local_submit_conn_handler;

#endif
