/* pop3_fetch.h - fetch mail from a POP3 server into a local Maildir.
 *
 * Flow: greeting (its APOP timestamp kept), CAPA, STLS in starttls mode
 * (refused when the server does not offer it: nothing more is sent), CAPA
 * again over TLS, then USER/PASS, or APOP when the server gave a timestamp
 * and the mode is none (no TLS: APOP keeps the password off the wire; an
 * APOP failure is an error, there is no fallback to PASS), then UIDL, then
 * for each message:
 *
 *   - its UIDL is in the state file: already delivered; DELE unless keep
 *     (a previous run that died before QUIT left it on the server);
 *   - else RETR (dot-unstuffed, line ends made LF: the Maildir
 *     convention), maildir_deliver (durable when it returns), the UIDL
 *     appended to the state file (write + fsync), then DELE unless keep.
 *
 * QUIT commits the DELEs.  The state file (default MAILDIR/.yubin-uidl)
 * holds one UIDL a line.  After a committed session it is rewritten
 * (temp file, fsync, rename) with only the UIDLs the server still lists
 * and keeps: it does not grow with every message ever fetched.
 *
 * Crash windows, chosen so that mail is never lost: delivery comes before
 * the state record, and the record before DELE.  A crash between delivery
 * and the record means the message is fetched again next time (a
 * duplicate in the Maildir), never that it is gone; recording first would
 * make the opposite trade.  A crash after DELE but before QUIT leaves the
 * message on the server, where the state file makes the next run delete it
 * without fetching it again.
 *
 * A server without UIDL: every message is fetched each time (nothing to
 * tell old from new); with keep nothing is deleted, so every run fetches
 * the whole mailbox again (a warning says so), without keep each message
 * is deleted after its delivery as usual.
 *
 * Limits: a message of more than POP3_FETCH_MSG_MAX bytes is read and
 * dropped, left on the server, and the fetch ends with an error after
 * QUIT.  A line longer than NET_LINE_MAX (net.h, 4096 bytes) ends the
 * session with an error (nothing uncommitted is deleted): net_read_line
 * has no larger mode yet.  POP3_FETCH_LINE_MAX is the intended per-line
 * cap once it has. */
#ifndef YUBIN_CLIENT_POP3_FETCH_H
#define YUBIN_CLIENT_POP3_FETCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#define POP3_FETCH_MSG_MAX (100u * 1024 * 1024)
#define POP3_FETCH_LINE_MAX (1024u * 1024)
/* Seconds per wait (a reply, one line of a message) by default. */
#define POP3_FETCH_TIMEOUT 60
/* Longest UIDL (RFC 1939: 1 to 70 characters 0x21-0x7e). */
#define POP3_FETCH_UIDL_MAX 70

enum pop3_fetch_tls {
	POP3_FETCH_STARTTLS,    /* STLS on the plain port (default 110) */
	POP3_FETCH_TLS,         /* implicit TLS, pop3s (default 995) */
	POP3_FETCH_NONE,        /* no TLS: APOP when offered, else PASS in clear */
};

struct pop3_fetch_opts {
	const char *host;           /* required */
	unsigned port;              /* 0: 995 for tls, 110 otherwise */
	enum pop3_fetch_tls tls;
	const char *user;           /* required */
	const char *password;       /* required */
	const char *cafile;         /* NULL: the system store */
	const char *pin;            /* SHA-256 of the leaf certificate; NULL: none */
	const char *maildir;        /* required; made when missing (maildir_create) */
	bool keep;                  /* no DELE */
	const char *state_path;     /* NULL: MAILDIR/.yubin-uidl */
	unsigned timeout;           /* seconds per wait; 0: POP3_FETCH_TIMEOUT */
	FILE *trace;                /* NULL, or "C: ..."/"S: ..." lines; PASS and APOP
				     * shown redacted */
	size_t *fetched_r;          /* NULL, or set to the messages delivered (also
				     * when the fetch then fails) */
	bool *temp_r;               /* NULL, or set on failure: true when it was the
				     * network (no connection, a lost one, a timeout),
				     * which may work later; false for a refusal */
};

/* Fetch as described above.  0, or -1 with err[errsz] set (NUL-terminated):
 * a connection or TLS failure, "server does not offer STLS", a refused
 * step quoting the server ("PASS refused: server said: -ERR ..."), a
 * Maildir or state file error. */
int pop3_fetch(const struct pop3_fetch_opts *o, char *err, size_t errsz);

#endif
