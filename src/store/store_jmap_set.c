/* store_jmap_set.c - reads inside JMAP's write transactions, and new body
 * files.  See store_jmap_set.h. */
#include "store/store_jmap_set.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "core/log.h"
#include "core/util.h"
#include "store/store_private.h"

int store_jmapset_rows(struct store_txn *t, int64_t account_id, int64_t body_id,
		       struct store_jmapset_row **v_r, size_t *n_r, int64_t *size_r,
		       char **error_r)
{
	*v_r = NULL;
	*n_r = 0;
	*size_r = 0;
	sqlite3_stmt *s = store_prep(t->db,
		"SELECT mm.mailbox_id, mm.uid, m.size, mm.flags FROM mailbox_messages mm"
		" JOIN mailboxes mb ON mb.id = mm.mailbox_id"
		" JOIN messages m ON m.id = mm.body_id"
		" WHERE mm.body_id = ?2 AND mb.account_id = ?1"
		" ORDER BY mm.mailbox_id, mm.uid");
	if (!s) {
		store_set_db_error(t->st, t->db, "reading an email's copies", error_r);
		return -1;
	}
	sqlite3_bind_int64(s, 1, account_id);
	sqlite3_bind_int64(s, 2, body_id);
	struct store_jmapset_row *v = NULL;
	size_t n = 0, cap = 0;
	int rc;
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		if (n == cap) {
			cap = cap ? cap * 2 : 4;
			v = xreallocarray(v, cap, sizeof *v);
		}
		v[n].mailbox_id = sqlite3_column_int64(s, 0);
		v[n].uid = (uint32_t)sqlite3_column_int64(s, 1);
		*size_r = sqlite3_column_int64(s, 2);
		v[n].flags = (uint32_t)sqlite3_column_int64(s, 3);
		n++;
	}
	if (rc != SQLITE_DONE) {
		store_set_db_error(t->st, t->db, "reading an email's copies", error_r);
		sqlite3_finalize(s);
		free(v);
		return -1;
	}
	sqlite3_finalize(s);
	*v_r = v;
	*n_r = n;
	return 0;
}

int store_jmapset_mailbox_ok(struct store_txn *t, int64_t account_id, int64_t mailbox_id,
			     char **error_r)
{
	sqlite3_stmt *s = store_prep(t->db, "SELECT noselect FROM mailboxes"
				     " WHERE id = ?1 AND account_id = ?2");
	if (!s) {
		store_set_db_error(t->st, t->db, "reading a mailbox", error_r);
		return -1;
	}
	sqlite3_bind_int64(s, 1, mailbox_id);
	sqlite3_bind_int64(s, 2, account_id);
	int rc = sqlite3_step(s), ret;
	if (rc == SQLITE_ROW)
		ret = sqlite3_column_int(s, 0) == 0;
	else if (rc == SQLITE_DONE)
		ret = 0;
	else
		ret = -1;
	if (ret < 0)
		store_set_db_error(t->st, t->db, "reading a mailbox", error_r);
	sqlite3_finalize(s);
	return ret;
}

int store_jmapset_quota_fits(struct store_txn *t, int64_t account_id, int64_t add,
			     char **error_r)
{
	sqlite3_stmt *s = store_prep(t->db, "SELECT quota, used FROM accounts WHERE id = ?1");
	if (!s) {
		store_set_db_error(t->st, t->db, "reading the quota", error_r);
		return -1;
	}
	sqlite3_bind_int64(s, 1, account_id);
	int rc = sqlite3_step(s), ret;
	if (rc == SQLITE_ROW) {
		int64_t quota = sqlite3_column_int64(s, 0), used = sqlite3_column_int64(s, 1);
		ret = quota <= 0 || (add >= 0 && used <= quota && add <= quota - used);
	} else if (rc == SQLITE_DONE) {
		ret = 0;
	} else {
		ret = -1;
		store_set_db_error(t->st, t->db, "reading the quota", error_r);
	}
	sqlite3_finalize(s);
	return ret;
}

int store_jmapset_email_state(struct store_txn *t, int64_t account_id, int64_t *state_r,
			      char **error_r)
{
	sqlite3_stmt *s = store_prep(t->db, "SELECT jmap_email FROM accounts WHERE id = ?1");
	int rc = SQLITE_ERROR;
	if (s) {
		sqlite3_bind_int64(s, 1, account_id);
		rc = sqlite3_step(s);
		if (rc == SQLITE_ROW)
			*state_r = sqlite3_column_int64(s, 0);
	}
	if (rc != SQLITE_ROW)
		store_set_db_error(t->st, t->db, "reading the mail state", error_r);
	sqlite3_finalize(s);
	return rc == SQLITE_ROW ? 0 : -1;
}

int store_jmapset_write_body(struct store *st, const char *data, size_t len,
			     char relpath[64], char **error_r)
{
	char day[16], msgdir[4096], daydir[4200], path[4300];
	time_t now = time(NULL);
	struct tm tm;
	gmtime_r(&now, &tm);
	strftime(day, sizeof day, "%Y%m%d", &tm);
	snprintf(msgdir, sizeof msgdir, "%s/msg", st->data_dir);
	snprintf(daydir, sizeof daydir, "%s/%s", msgdir, day);
	/* A new day directory: its entry in msg/ is made durable before any
	 * file in it is committed (as the writer does). */
	struct stat sb;
	if (stat(daydir, &sb) < 0) {
		if ((mkdir(msgdir, 0750) < 0 && errno != EEXIST) ||
		    (mkdir(daydir, 0750) < 0 && errno != EEXIST) || fsync_dir(msgdir) < 0) {
			store_set_error(error_r, xasprintf("store: cannot create %s: %s", daydir,
							   strerror(errno)));
			return -1;
		}
	}
	int fd = -1;
	char qid[17];
	for (int tries = 0; tries < 4 && fd < 0; tries++) {
		queue_id_new(qid);
		snprintf(relpath, 64, "msg/%s/%s", day, qid);
		snprintf(path, sizeof path, "%s/%s", daydir, qid);
		fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0640);
		if (fd < 0 && errno != EEXIST)
			break;
	}
	if (fd < 0) {
		store_set_error(error_r, xasprintf("store: cannot create a body file in %s: %s",
						   daydir, strerror(errno)));
		return -1;
	}
	if (write_full(fd, data, len) < 0 || fsync(fd) < 0) {
		store_set_error(error_r, xasprintf("store: cannot write %s: %s", path,
						   strerror(errno)));
		close(fd);
		unlink(path);
		return -1;
	}
	if (close(fd) < 0 || fsync_dir(daydir) < 0) {
		store_set_error(error_r, xasprintf("store: cannot write %s: %s", path,
						   strerror(errno)));
		unlink(path);
		return -1;
	}
	return 0;
}

void store_jmapset_discard(struct store *st, const char *relpath)
{
	char path[4200];
	store_msg_path(st, relpath, path, sizeof path);
	if (unlink(path) < 0 && errno != ENOENT)
		log_warn("store: cannot remove unused body file %s: %s (store_recover removes "
			 "it at the next start)", path, strerror(errno));
}
