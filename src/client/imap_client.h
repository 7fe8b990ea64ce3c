/* imap_client.h - a blocking IMAP4rev1 client session (RFC 3501, and what
 * RFC 9051 servers send): for yubin fetch and the remote commands.
 *
 * imap_client_open connects (net.c: certificate verified, or pinned),
 * reads the greeting, does STARTTLS when asked (refused when the server
 * does not offer it: nothing is sent in clear), and logs in with the
 * strongest way the server offers: AUTHENTICATE SCRAM-SHA-256 (the server
 * must prove it knows the password), then AUTHENTICATE PLAIN (with SASL-IR
 * when offered), then LOGIN unless LOGINDISABLED.  Over a connection
 * without TLS (tls none, for localhost and tests) the same order applies.
 *
 * Commands are built with imap_cmd_* (strings quoted, or sent as literals
 * when they must be: with LITERAL+ without waiting, else after the
 * server's "+") and run with imap_cmd_run, which passes every untagged
 * response to a callback and returns with the tagged one.  Each response
 * is read whole (its literals included) into one bounded buffer and parsed
 * by imap_resp.c.
 *
 * Mailbox names: UTF-8 with '/' between levels for the caller; on the wire
 * modified UTF-7 (RFC 3501 5.1.3) with the server's hierarchy delimiter
 * (learnt with LIST "" "").
 *
 * Errors: err[errsz] is a sentence quoting the server ("imap.example.org:
 * 993 said: a3 NO [TRYCREATE] Mailbox doesn't exist: Foo (to SELECT)");
 * *temp_r true for what may work later (the network, BYE, a NO with
 * [UNAVAILABLE], [INUSE], [LIMIT], [SERVERBUG], [OVERQUOTA]... ), false for
 * the rest (a refused login is permanent: a retry with the same password
 * fails the same way). */
#ifndef YUBIN_CLIENT_IMAP_CLIENT_H
#define YUBIN_CLIENT_IMAP_CLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "client/imap_resp.h"
#include "core/buf.h"

/* Longest line of a response (without literals): a SEARCH answer for a
 * million messages fits. */
#define IMAP_CLIENT_LINE_MAX (16u * 1024 * 1024)
/* Largest response, literals included (a message of 100 MiB fits). */
#define IMAP_CLIENT_RESP_MAX (110u * 1024 * 1024)
/* Seconds per wait by default. */
#define IMAP_CLIENT_TIMEOUT 60

enum imap_client_tls { IMAP_CLIENT_STARTTLS, IMAP_CLIENT_TLS, IMAP_CLIENT_NONE };

struct imap_client_opts {
	const char *host;           /* required */
	unsigned port;              /* 0: 993 for tls, else 143 */
	enum imap_client_tls tls;
	const char *user, *password; /* required */
	const char *cafile, *pin;   /* NULL: system store / no pin */
	unsigned timeout;           /* seconds; 0: IMAP_CLIENT_TIMEOUT */
	FILE *trace;                /* NULL, or C:/S: lines (secrets redacted, literals
				     * shown by their size) */
};

struct imap_client;

struct imap_client *imap_client_open(const struct imap_client_opts *o, bool *temp_r,
				     char *err, size_t errsz);
/* LOGOUT (its answer not awaited long) and free; NULL-safe, clears *c. */
void imap_client_close(struct imap_client **c);

/* The server offers capability cap (exact, case-insensitive: "MOVE",
 * "AUTH=PLAIN"). */
bool imap_client_has_cap(const struct imap_client *c, const char *cap);
const char *imap_client_name(const struct imap_client *c);

/* A command under construction (imap_cmd_run frees it). */
struct imap_cmd_seg {
	bool literal;
	size_t off, len;           /* into text, or into ext for a literal */
	const char *ext;           /* a literal's bytes (not copied), or NULL: in text */
};
struct imap_cmd {
	struct buf text;
	struct imap_cmd_seg segs[16];
	size_t nsegs;
	bool overflow;             /* more than 16 literals: imap_cmd_run fails */
	char verb[16];             /* for messages: the first word */
	const char *shown;         /* trace instead of the text (secrets); NULL */
};

void imap_cmd_init(struct imap_cmd *m, const char *verb);
/* Raw text (atoms, numbers, SP, parentheses). */
void imap_cmd_add(struct imap_cmd *m, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/* A string: quoted when it is short 7-bit text without CR, LF or NUL,
 * else a literal (copied). */
void imap_cmd_string(struct imap_cmd *m, const char *s, size_t len);
/* A literal whose bytes stay the caller's until imap_cmd_run returns. */
void imap_cmd_literal(struct imap_cmd *m, const char *p, size_t len);
/* A mailbox name (UTF-8, '/' separated; NULL or "inbox" any case: INBOX)
 * as the server wants it.  -1 with err set when it is not valid UTF-8, or
 * names a level holding the server's delimiter. */
int imap_cmd_mailbox(struct imap_client *c, struct imap_cmd *m, const char *name, char *err,
		     size_t errsz);

/* Called for each untagged response while a command runs; a non-zero
 * return stops nothing (the command runs to its end) but is remembered
 * and makes imap_cmd_run return -1 with the error the callback wrote in
 * err (the callback gets the same err buffer through its ctx as it likes). */
typedef int (*imap_untagged_fn)(void *ctx, const struct imap_resp *r);

/* Send m, pass untagged responses to fn (may be NULL), return with the
 * tagged response: 0 for OK (its code is in imap_client_last_code), -1 for
 * NO, BAD, a callback's failure, or a broken connection.  m is freed. */
int imap_cmd_run(struct imap_client *c, struct imap_cmd *m, imap_untagged_fn fn, void *ctx,
		 bool *temp_r, char *err, size_t errsz);
/* The response code of the last tagged reply ("APPENDUID 3 9", "" ). */
const char *imap_client_last_code(const struct imap_client *c);

/* The mailbox currently selected: name (as given), whether read-only, and
 * what SELECT/EXAMINE reported (EXISTS kept up to date by later untagged
 * EXISTS/EXPUNGE). */
struct imap_mailbox_info {
	uint32_t exists, uidvalidity, uidnext;
	bool readonly;
};
/* SELECT (or EXAMINE when readonly) name, unless it is already selected
 * that way (a read-write selection serves a read-only request too). */
int imap_client_select(struct imap_client *c, const char *name, bool readonly,
		       struct imap_mailbox_info *info_r, bool *temp_r, char *err, size_t errsz);

/* A server's mailbox name (modified UTF-7, its delimiter) as UTF-8 with '/'
 * into out (reset first).  0, or -1 (not valid modified UTF-7: the name is
 * then copied as it is, control bytes replaced). */
int imap_client_name_utf8(const struct imap_client *c, const char *wire, size_t len,
			  struct buf *out);

#endif
