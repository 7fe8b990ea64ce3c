/* client.h - the mail client commands of yubin (send; fetch and reading to
 * follow).  They need no server configuration. */
#ifndef YUBIN_YUBIN_CLIENT_H
#define YUBIN_YUBIN_CLIENT_H

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
