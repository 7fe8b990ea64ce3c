/* client.h - the mail client commands of yubin (send; fetch and reading to
 * follow).  They need no server configuration. */
#ifndef YUBIN_YUBIN_CLIENT_H
#define YUBIN_YUBIN_CLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct account;
/* Shared by the client commands.  client.conf's account name (NULL: the
 * default one) copied to *acct, which is zeroed first (no file, or no
 * account and name NULL, is fine: the command line may give it all); path
 * gets the file's path.  1 ok, 0 printed "yubin CMD: ...". */
int client_account(const char *cmd, const char *name, struct account *acct, char *path,
		   size_t pathsz);
/* "HOST", "HOST:PORT", "[v6]", "[v6]:PORT" or a bare IPv6 address: host
 * (without brackets) and port (def when none).  0, or -1. */
int client_server(const char *spec, int def, char *host, size_t hostsz, int *port_r);

/* Recipients one message may have (To, Cc, Bcc each). */
#define CLIENT_RCPTS_MAX 1000

/* All of stdin (at most 50 MiB), or NULL with a message printed. */
char *client_read_stdin(size_t *len_r);
/* The text written in $EDITOR (VISUAL, EDITOR, else vi) in a private
 * temporary file that starts as initial[0..ilen); NULL (message printed)
 * when the editor fails or the result is empty. */
char *client_edit(const char *initial, size_t ilen, size_t *len_r);
/* Append acct's signature (signature_file or signature) to the heap text
 * *text[0..*len) after a "-- " line; nothing without one.  0, or -1 with
 * a message printed (the file unreadable or over 64 KiB). */
int client_add_signature(const struct account *acct, char **text, size_t *len);
/* Send msg[0..len) from acct's address to rcpts over its submission
 * server (the password asked once), then store a copy in its Sent folder
 * (special use \Sent, else "Sent", made when missing) when copy is true
 * and its incoming server is IMAP; a failed copy is a warning.  dry_run:
 * the message on stdout instead.  Prints what happened; returns the exit
 * code: 0, 1, or 75 for a temporary failure. */
int client_submit(const char *cmd, const struct account *acct, const char *const *rcpts,
		  size_t nrcpts, const char *msg, size_t len, bool dry_run, bool copy);

/* yubin reply N / yubin forward N (client_reply.c) on message n of folder
 * of mb, sent with acct (see the file's comment). */
struct mbox;
struct client_reply_opts {
	bool forward;           /* else reply */
	bool all;               /* reply: to everyone */
	bool inline_fwd;        /* forward: inline, not as message/rfc822 */
	bool no_quote;          /* reply: without the quoted original */
	bool dry_run, no_copy, no_signature;
	const char *const *to, *const *cc;   /* forward: recipients */
	size_t nto, ncc;
};
int client_reply_run(struct mbox *mb, const char *folder, uint32_t n,
		     const struct account *acct, const struct client_reply_opts *o);

/* argv[0] is "send".  Returns the exit code. */
int client_send(int argc, char **argv);
/* argv[0] is "fetch".  Returns the exit code. */
int client_fetch(int argc, char **argv);
/* Reading and filing mail in the account's Maildir or IMAP server
 * (client_read.c): ls, read N, save N PART [DIR], mv, rm, flag, search,
 * folders, reply, forward, by argv[0]; returns the exit code. */
int client_mail_cmd(int argc, char **argv);
/* yubin account add|list: client.conf written and shown (client_account.c). */
int client_account_cmd(int argc, char **argv);
/* The sendmail interface (argv[0] "sendmail" or "yubin sendmail"). */
int client_sendmail(int argc, char **argv);

#endif
