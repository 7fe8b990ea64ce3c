/* maildir.h - delivery into a local Maildir (the fetch side of the client).
 *
 * A Maildir is DIR/tmp, DIR/new and DIR/cur.  A message is written to
 * tmp/UNIQUE, made durable (fsync of the file), then linked into new/UNIQUE
 * (rename when the file system has no hard links) and the new/ directory
 * fsynced: when maildir_deliver returns 0 the message survives a crash or
 * power loss, so a POP3 DELE that follows cannot lose mail.  A failure
 * removes the tmp file; new/ never holds a partial message.
 *
 * UNIQUE is "SECONDS.MmicrosPpid_Qcounter.HOST" (the modern Maildir form:
 * time, pid with a per-process counter, host name with '/' and ':' escaped
 * as \057 and \072).  Names never repeat within one process; across
 * processes the pid and the microseconds keep them apart, and an existing
 * name is never overwritten (link fails with EEXIST; another name is
 * tried). */
#ifndef YUBIN_CLIENT_MAILDIR_H
#define YUBIN_CLIENT_MAILDIR_H

#include <stddef.h>

/* Longest unique name maildir_deliver makes, with its NUL. */
#define MAILDIR_NAME_MAX 256

/* Make dir and dir/cur, dir/new, dir/tmp (mode 0700; parents of dir are
 * made too).  Existing directories are fine.  0, or -1 with errno set. */
int maildir_create(const char *dir);

/* Deliver data[0..len) (stored as is: the caller converts CR LF to LF) to
 * dir/new.  0 with the file's name (without the directory) in name_out[n]
 * when name_out is not NULL, or -1 with err[errsz] set ("write
 * /home/u/Mail/tmp/...: No space left on device").  dir must be a Maildir
 * (maildir_create). */
int maildir_deliver(const char *dir, const char *data, size_t len, char *name_out, size_t n,
		    char *err, size_t errsz);

#endif
