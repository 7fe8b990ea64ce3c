/* smtp_submit.h - blocking message submission (RFC 6409) for the CLI.
 *
 * One call sends one message to one server and waits for the outcome:
 * greeting, EHLO (HELO when EHLO is refused), STARTTLS (RFC 3207) or
 * implicit TLS (RFC 8314), EHLO again, AUTH (RFC 4954) with the strongest
 * mechanism offered (SCRAM-SHA-256, CRAM-MD5, PLAIN, LOGIN), MAIL FROM
 * with SIZE= (RFC 1870), BODY=8BITMIME (RFC 6152) when the message has
 * 8-bit bytes, SMTPUTF8 (RFC 6531) when an address is not ASCII, one RCPT
 * per recipient (MAIL and the RCPTs in one write with PIPELINING, RFC
 * 2920), DATA with the message's line ends made CR LF and dot-stuffed, then
 * QUIT.  Works with any standard submission server (Postfix, yubind...).
 *
 * Safety rules:
 *   - TLS mode starttls refuses to go on when the server offers no
 *     STARTTLS or refuses it: a password (or the mail) goes in clear only
 *     when the caller chose mode none.
 *   - Certificates are verified as net.h says (system store, cafile or a
 *     pinned fingerprint); there is no way to skip that.
 *   - The submission is all or nothing: one refused recipient ends it
 *     before DATA, so the message never reaches only some of them.
 *   - SCRAM's server signature is checked: a server that cannot prove it
 *     knows the password does not get the message.
 *   - The password, and every buffer that held it or its encodings, is
 *     wiped (explicit_bzero) once used; traces show "<redacted>" instead of
 *     SASL payloads.
 *
 * Every failure leaves a one-line message for the user in err; when the
 * server refused something it quotes the reply, e.g. "RCPT TO:<x@y>
 * refused: server said: 550 5.1.1 <x@y>: Recipient address rejected". */
#ifndef YUBIN_CLIENT_SMTP_SUBMIT_H
#define YUBIN_CLIENT_SMTP_SUBMIT_H

#include <stddef.h>
#include <stdio.h>

enum smtp_submit_tls {
	SMTP_SUBMIT_STARTTLS = 0,   /* plain connect, STARTTLS required (port 587) */
	SMTP_SUBMIT_TLS,            /* TLS from the first byte (port 465, RFC 8314) */
	SMTP_SUBMIT_NONE,           /* no TLS at all: everything in clear */
};

/* Default timeout of one wait, in seconds. */
#define SMTP_SUBMIT_TIMEOUT 120
/* The reply to the final dot may take the server's content checks: it gets
 * this many timeouts (RFC 5321 4.5.3.2.6 asks for 10 minutes; 5 x 120 s). */
#define SMTP_SUBMIT_DOT_FACTOR 5
/* Recipients of one message, at most. */
#define SMTP_SUBMIT_RCPTS_MAX 1000
/* Longest user name and password accepted (RFC 4954 allows 12288-byte
 * AUTH lines, base64 included; these leave room for the encoding). */
#define SMTP_SUBMIT_USER_MAX 1024
#define SMTP_SUBMIT_PASSWORD_MAX 1024

/* Why a submission failed, for callers that must tell a temporary failure
 * from a permanent one (sendmail's exit status, sysexits.h). */
enum smtp_submit_fail {
	SMTP_SUBMIT_FAIL_NONE = 0,  /* sent (or not tried) */
	SMTP_SUBMIT_FAIL_ARGS,      /* refused before connecting: an address, the message */
	SMTP_SUBMIT_FAIL_CONFIG,    /* the cafile or pin does not load */
	SMTP_SUBMIT_FAIL_CONNECT,   /* no connection: refused, no such socket, timed out, DNS */
	SMTP_SUBMIT_FAIL_NETWORK,   /* the connection failed or timed out on the way */
	SMTP_SUBMIT_FAIL_PROTOCOL,  /* the server's reply did not parse */
	SMTP_SUBMIT_FAIL_TLS,       /* handshake or certificate check failed */
	SMTP_SUBMIT_FAIL_CAPS,      /* the server lacks STARTTLS, AUTH, 8BITMIME, SMTPUTF8 */
	SMTP_SUBMIT_FAIL_SIZE,      /* the message is larger than the server's SIZE */
	SMTP_SUBMIT_FAIL_SECURITY,  /* SCRAM: the server could not prove it knows the password */
	SMTP_SUBMIT_FAIL_REPLY,     /* the server refused a step: code and enh say how */
	SMTP_SUBMIT_FAIL_UNKNOWN,   /* no reply to the final dot: it may have been accepted */
};

struct smtp_submit_result {
	enum smtp_submit_fail fail;
	int code;                   /* FAIL_REPLY: the reply code (421, 550, ...) */
	char enh[16];               /* FAIL_REPLY: its enhanced status ("5.3.4") or "" */
	int sys_errno;              /* FAIL_CONNECT: the errno (ENOENT: no such socket) */
};

/* The sendmail(8) exit status (sysexits.h) for a result: 0 sent; 75
 * EX_TEMPFAIL for what may work later (no connection, a lost one, a 4xx,
 * an unknown outcome: resending may duplicate, not resending may lose);
 * for a 5xx by its enhanced status: 5.1.x 67 EX_NOUSER, 5.3.4 and 5.6.x 65
 * EX_DATAERR (the message itself), 5.7.x 77 EX_NOPERM, else 69
 * EX_UNAVAILABLE; 65 for a message the client refuses (bad address, too
 * big for SIZE); 78 EX_CONFIG for a bad cafile or pin; 76 EX_PROTOCOL for
 * an unparsable reply; 69 for TLS and missing capabilities. */
int smtp_submit_sysexit(const struct smtp_submit_result *r);

struct smtp_submit_opts {
	const char *host;           /* name or address (IPv6 without brackets); required */
	unsigned port;              /* 0: 587 for starttls and none, 465 for tls */
	enum smtp_submit_tls tls;
	const char *user;           /* the AUTH identity; with password */
	const char *password;       /* NULL: no AUTH (user then unused) */
	const char *cafile;         /* NULL: the system's CA store */
	const char *pin;            /* SHA-256 of the leaf certificate, hex; NULL: none */
	const char *helo;           /* NULL: gethostname() when it is a dotted
				     * name, else the local address literal */
	unsigned timeout;           /* seconds per wait; 0: SMTP_SUBMIT_TIMEOUT */
	/* NULL, or where the dialogue is written as it happens: "C: MAIL
	 * FROM:<...>", "S: 250 2.1.0 Ok", "* TLS: ...".  SASL payloads from
	 * either side are shown as "<redacted>", never the password. */
	FILE *trace;
	/* Set: connect to this Unix socket (a local yubind's
	 * local_submit_socket) instead of host:port.  No TLS there (tls,
	 * cafile and pin are ignored; host may be NULL), and no SIZE check
	 * before MAIL: the server answers SIZE= itself (552), which is quoted. */
	const char *unix_path;
	/* NULL, or where the outcome is written (always, success too). */
	struct smtp_submit_result *result;
};

/* Submit msg[0..len) (an RFC 5322 message, line ends LF, CR LF or mixed:
 * all are sent as CR LF, a bare CR too; a final line end is added when
 * missing) from the envelope sender from ("" for the null sender) to
 * rcpts[0..nrcpts).  Addresses are "local@domain" without angle brackets.
 * 0 when the server accepted the message (the reply to the final dot was
 * 2xx); -1 with err[errsz] set (NUL-terminated) otherwise: bad arguments
 * (no recipient, more than SMTP_SUBMIT_RCPTS_MAX, an address that is not
 * one, a NUL byte in the message, a bad pin or cafile), a connection or
 * TLS failure, a refused step (the reply quoted), or a server that lacks
 * what the message needs (8BITMIME, SMTPUTF8, a SIZE limit too small).
 * A failure after the dot was sent can mean the message went anyway (the
 * reply was lost): err says so. */
int smtp_submit(const struct smtp_submit_opts *o, const char *from, const char *const *rcpts,
		size_t nrcpts, const char *msg, size_t len, char *err, size_t errsz);

#endif
