/* imap_session.h - the IMAP server session (RFC 3501 IMAP4rev1, RFC 9051
 * IMAP4rev2, and the extensions listed in CAPABILITY).
 *
 * yubind attaches imap_conn_handler to the listen_imap listeners
 * (plaintext, STARTTLS offered when TLS is configured) and to the
 * listen_imaps listeners (implicit TLS).  The session expects c->server to
 * be a struct server (proto/server.h). */
#ifndef YUBIN_PROTO_IMAP_SESSION_H
#define YUBIN_PROTO_IMAP_SESSION_H

#include "core/conn.h"

extern const struct conn_handler imap_conn_handler;

#endif
