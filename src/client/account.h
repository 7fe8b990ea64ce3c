/* account.h - the mail client's accounts file, client.conf.
 *
 * Where: $XDG_CONFIG_HOME/yubin/client.conf, else
 * $HOME/.config/yubin/client.conf (accounts_path).  A missing file is no
 * accounts (every client command can take the account on its command line
 * instead: --server, --tls, --user, --password-cmd, --cafile).  The file
 * names commands to run (password_cmd), so it must not be writable by
 * group or others, and must belong to you (or root): otherwise it is
 * refused.  It never holds a password.
 *
 *     # comments; blank lines
 *     [account work]
 *     default = yes
 *     name = Taro Yamada
 *     address = taro@example.jp
 *     signature_file = ~/.config/yubin/sig-work   # or: signature = one line
 *     smtp = smtp.example.jp:587
 *     smtp_tls = starttls
 *     smtp_user = taro@example.jp
 *     incoming = imaps://imap.example.jp
 *     incoming_user = taro
 *     password_cmd = pass show mail/work
 *     cafile = /etc/ssl/private-ca.pem
 *     pin_sha256 = AB:CD:...
 *     folders = INBOX, Lists/dev
 *     maildir = ~/Mail/work
 *
 * Syntax
 *   - One setting a line, "key = value"; spaces and tabs around the key and
 *     the value are dropped.  Values are not quoted: everything between the
 *     '=' and the end of the line (or a comment) is the value.
 *   - '#' starts a comment at the start of a line or after a space or tab,
 *     so "pin_sha256 = AB#CD" keeps its '#', "x = y  # note" is "y".  A
 *     value therefore cannot contain " #".
 *   - "[account NAME]" starts an account; every key belongs to the account
 *     above it (a key before the first section is an error).  NAME is 1-63
 *     of A-Z a-z 0-9 . _ - + @, not starting with '.'; names are unique
 *     (case matters) and are what --account takes.  At most 100 accounts.
 *   - Each key at most once per account; an unknown key is an error with a
 *     hint ("unknown key \"smpt\" (did you mean smtp?)").
 *   - Lines end in LF or CR LF; a line is at most 4096 bytes; the text is
 *     UTF-8 without control characters (tab allowed) or NUL bytes; a UTF-8
 *     byte order mark at the start is skipped.
 *   - "~/" (or a lone "~") at the start of a path value is $HOME; paths
 *     must be absolute after that (no relative paths, no ~user).
 *
 * Keys (address and smtp are required, everything else optional)
 *   default        yes|no (true/false, on/off, 1/0): the account used when
 *                  none is named; at most one account says yes.  Without
 *                  one, a file with a single account uses it.
 *   name           display name for From: (any UTF-8).
 *   address        the From: address, local@domain.
 *   signature_file path of a signature appended to new mail, or
 *   signature      the signature itself, one line.  Not both.
 *   smtp           submission server: host, host:port, [v6] or [v6]:port;
 *                  port 587 when none is given.
 *   smtp_tls       starttls | tls (implicit, "submissions") | none.
 *                  Default: tls on port 465, starttls on any other port.
 *   smtp_user      login name; default: address.
 *   incoming       imap:// imaps:// pop3:// pop3s://, then host or [v6],
 *                  then :port if not the default (143 993 110 995).
 *   incoming_tls   starttls | tls | none; default from the scheme: imaps
 *                  and pop3s are tls, imap and pop3 are starttls (STLS).
 *                  imaps:// and pop3s:// only take tls.
 *   incoming_user  login name; default: smtp_user.
 *   password_cmd   command printing the password: run with /bin/sh -c,
 *                  stdin /dev/null, the first line of its stdout is the
 *                  password (see account_password).  Without it the
 *                  password is asked on the terminal.  There is no
 *                  "password" key.
 *   cafile         PEM file of the CA(s) to trust instead of the system
 *                  store (a private CA), for both servers.
 *   pin_sha256     SHA-256 of the servers' leaf certificate: 64 hex digits,
 *                  ':' allowed between bytes.  With a pin nothing else of
 *                  the certificate is checked (cafile does not matter).
 *   folders        IMAP folders to fetch, separated by ','; only with an
 *                  IMAP incoming server.  Default INBOX.  Stored without
 *                  the spaces around each name: "INBOX,Lists/dev".
 *   maildir        local Maildir that fetch writes to; default ~/Mail/NAME
 *                  (empty when no home directory is known).
 *
 * Certificates are always verified (system store, or cafile, or the pin);
 * there is no key to turn that off.  TLS "none" is for a server on
 * localhost or a test; the password then goes in clear. */
#ifndef YUBIN_CLIENT_ACCOUNT_H
#define YUBIN_CLIENT_ACCOUNT_H

#include <stdbool.h>
#include <stddef.h>

/* At most this many [account] sections in one file. */
#define ACCOUNTS_MAX 100
/* Longest line of client.conf, without its line end. */
#define ACCOUNTS_LINE_MAX 4096
/* Largest client.conf accounts_load reads. */
#define ACCOUNTS_FILE_MAX (1024 * 1024)
/* Longest password (first line of password_cmd's output, or typed). */
#define ACCOUNT_PASSWORD_MAX 1024

enum tls_mode { TLS_STARTTLS, TLS_IMPLICIT, TLS_NONE };
enum incoming_proto { IN_NONE, IN_IMAP, IN_POP3 };

/* Every string is NUL-terminated; an unset optional one is "". */
struct account {
	char name[64];
	bool is_default;            /* said default = yes */
	char display_name[256];
	char address[320];
	char signature_file[4096];  /* absolute path, ~ expanded */
	char signature[1024];
	char smtp_host[256];        /* name or address; IPv6 without brackets */
	int smtp_port;              /* 1..65535 */
	enum tls_mode smtp_tls;
	char smtp_user[320];        /* never "" (default: address) */
	enum incoming_proto in_proto;
	char in_host[256];          /* "" with IN_NONE */
	int in_port;                /* 1..65535; 0 with IN_NONE */
	enum tls_mode in_tls;
	char in_user[320];          /* never "" (default: smtp_user) */
	char password_cmd[1024];
	char cafile[4096];          /* absolute path, ~ expanded */
	char pin_sha256[96];        /* as written (checked: 32 bytes of hex) */
	char folders[1024];         /* "INBOX" or "A,B/c" */
	char maildir[4096];         /* absolute path, ~ expanded */
};

/* Parse the text of a client.conf (text[0..len), need not be
 * NUL-terminated).  0 with a heap array of *n_r accounts in file order in
 * *v_r (free() it; NULL when there are none), or -1 with *v_r NULL, *n_r 0
 * and the first error in err[errsz] (always NUL-terminated when errsz > 0):
 * "client.conf:12: unknown key \"smpt\" (did you mean smtp?)", the prefix
 * being path_for_errors (NULL: "client.conf") and the line number.  A
 * missing required key is reported at the account's [account] line. */
int accounts_parse(const char *text, size_t len, const char *path_for_errors,
		   struct account **v_r, size_t *n_r, char *err, size_t errsz);

/* An incoming server URL as the incoming key takes it (imap://, imaps://,
 * pop3://, pop3s://, then HOST or [v6], then :PORT unless the default),
 * for --server: sets a->in_proto, in_host, in_port and in_tls (the
 * scheme's: tls for imaps and pop3s, else starttls), nothing else.  0, or
 * -1 with a untouched and err set ("incoming must start with imap://,
 * ..."). */
int account_parse_incoming(const char *url, struct account *a, char *err, size_t errsz);

/* The file's path into out: $XDG_CONFIG_HOME/yubin/client.conf when that
 * variable holds an absolute path, else $HOME/.config/yubin/client.conf
 * ($HOME, else the password database).  0, or -1 when no home directory is
 * known or the path does not fit (out is then ""). */
int accounts_path(char *out, size_t outsz);

/* Read and parse path (at most ACCOUNTS_FILE_MAX bytes).  A file that does
 * not exist is 0 accounts (0, *v_r NULL, *n_r 0).  -1 with err set when it
 * cannot be read, is not a regular file, is writable by group or others
 * ("... is writable by others: chmod go-w ..."), belongs to another user
 * than you or root, or does not parse. */
int accounts_load(const char *path, struct account **v_r, size_t *n_r, char *err,
		  size_t errsz);

/* The account called name (exact match), or, for a NULL name, the default
 * account: the one with default = yes, else the only one.  NULL when there
 * is no such account (or, for NULL, several and none marked default). */
const struct account *account_find(const struct account *v, size_t n, const char *name);

/* The password for a.  With a password_cmd: run it with /bin/sh -c, stdin
 * /dev/null, stderr inherited (its messages reach the user), stdout read
 * up to ACCOUNT_PASSWORD_MAX bytes (the rest is read and dropped), within
 * 10 s; then it is killed, with its whole process group: it runs in a
 * group of its own, so it must not read the terminal itself (gpg's
 * pinentry, started by gpg-agent, is not affected).  It must exit 0, and
 * its first line (the line end, LF or CR LF, removed; EOF ends it too)
 * must be non-empty, without NUL, and fit.  Once it has exited, what it
 * left in the background is not waited for.
 * Without one: prompt "Password for PROMPT_FOR: " ("Password: " for NULL)
 * on /dev/tty and read a line with echo off; the terminal is restored
 * afterwards and on SIGINT, SIGTERM, SIGHUP, SIGQUIT (which then act as
 * before: a handler of the caller's runs, and the prompt ends with
 * "interrupted") and around SIGTSTP (echo goes off again on resume).
 * Returns a heap string the caller wipes (explicit_bzero) and frees, or
 * NULL with err set ("password_cmd exited with status 1", "password_cmd
 * timed out after 10 s", "no terminal to ask for the password on: set
 * password_cmd", "no password given", ...).  Not thread-safe while
 * prompting (signal handlers). */
char *account_password(const struct account *a, const char *prompt_for, char *err,
		       size_t errsz);

/* For tests: the password_cmd time limit in milliseconds (default 10000;
 * 0 or less restores it). */
void account_password_set_timeout_ms(int ms);

#endif
