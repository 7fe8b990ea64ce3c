/* pop3_session.h - the POP3 server session (RFC 1939, RFC 2449 CAPA,
 * RFC 2595 STLS, RFC 5034 SASL AUTH, RFC 3206 response codes).
 *
 * yubind attaches pop3_conn_handler to the listen_pop3 listeners
 * (plaintext, STLS offered when TLS is configured) and to the listen_pop3s
 * listeners (implicit TLS: c->tls is already true in on_open).  The
 * session expects c->server to be a struct server (proto/server.h). */
#ifndef YUBIN_PROTO_POP3_SESSION_H
#define YUBIN_PROTO_POP3_SESSION_H

#include "core/conn.h"

extern const struct conn_handler pop3_conn_handler;

#endif
