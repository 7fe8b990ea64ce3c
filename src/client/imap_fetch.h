/* imap_fetch.h - copy the new messages of IMAP folders into a local
 * Maildir (yubin fetch for an IMAP account).
 *
 * For each folder: EXAMINE (read-only: nothing changes on the server, no
 * \Seen is set), UID FETCH last+1:* (UID RFC822.SIZE) for what is new, then
 * the new messages in UID order, up to 100 (and 8 MiB) per UID FETCH ...
 * BODY.PEEK[] so that a slow link is not paid once per message, each one
 * as it arrives with its line ends made LF, delivered with maildir_deliver
 * (durable when it returns):
 * INBOX into the Maildir itself, folder "A/b" into the Maildir++ subfolder
 * DIR/.A.b (made when missing).  After each delivery "UIDVALIDITY UID
 * FOLDER" is appended to the state file (default MAILDIR/.yubin-imap) and
 * fsynced, UID being the highest one below which everything of the batch is
 * delivered (or was expunged meanwhile), so an interrupted fetch resumes
 * after the last message it delivered: a crash between delivery and the
 * record fetches that one message again (a duplicate, never a loss); a
 * message that arrived out of UID order is recorded with the ones before it.  At the end of a run the
 * state file is rewritten (temp file, fsync, rename) with one line per
 * folder: it never grows beyond the folders fetched.
 *
 * A changed UIDVALIDITY (the server renumbered the folder) starts that
 * folder from scratch, with a warning: its messages come again.
 * A message larger than MBOX_MSG_MAX is skipped with an error at the end
 * (later ones are still fetched; the skipped one is not recorded, so it
 * stays "new" until the limit allows it). */
#ifndef YUBIN_CLIENT_IMAP_FETCH_H
#define YUBIN_CLIENT_IMAP_FETCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "client/imap_client.h"

/* Folders fetched in one run, at most. */
#define IMAP_FETCH_FOLDERS_MAX 100

struct imap_fetch_opts {
	const struct imap_client_opts *server;
	const char *folders;        /* "INBOX" or "INBOX,Lists/dev"; NULL: INBOX */
	const char *maildir;        /* required; made when missing */
	const char *state_path;     /* NULL: MAILDIR/.yubin-imap */
	FILE *warn;                 /* warnings (UIDVALIDITY changed); NULL: stderr */
	size_t *fetched_r;          /* NULL, or messages delivered (also on failure) */
};

/* 0, or -1 with err set and *temp_r telling a retry may help. */
int imap_fetch(const struct imap_fetch_opts *o, bool *temp_r, char *err, size_t errsz);

#endif
