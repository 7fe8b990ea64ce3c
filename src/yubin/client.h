/* client.h - the mail client commands of yubin (send; fetch and reading to
 * follow).  They need no server configuration. */
#ifndef YUBIN_YUBIN_CLIENT_H
#define YUBIN_YUBIN_CLIENT_H

#include <stddef.h>

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

/* argv[0] is "send".  Returns the exit code. */
int client_send(int argc, char **argv);
/* argv[0] is "fetch".  Returns the exit code. */
int client_fetch(int argc, char **argv);
/* The local Maildir: ls, read N, save N PART [DIR] (client_read.c). */
int client_ls(int argc, char **argv);
int client_read(int argc, char **argv);
int client_save(int argc, char **argv);
/* The sendmail interface (argv[0] "sendmail" or "yubin sendmail"). */
int client_sendmail(int argc, char **argv);

#endif
