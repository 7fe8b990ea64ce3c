/* store_jmap.c - mailboxes with their counts for JMAP Mailbox/get. */
#include "store/store_jmap.h"

#include <stdlib.h>
#include <string.h>

#include "core/util.h"
#include "store/store_private.h"

int store_jmap_mailboxes(struct store *st, int64_t account_id, struct store_jmap_mailbox **v_r,
			 size_t *n_r, char **error_r)
{
	*v_r = NULL;
	*n_r = 0;
	sqlite3 *db = store_db_get(st);
	if (!db) {
		store_set_error(error_r, xstrdup("cannot open the database"));
		return -1;
	}
	sqlite3_stmt *s = store_prep(db,
		"SELECT m.id, m.name, m.special_use, m.noselect, m.highestmodseq, m.uidvalidity,"
		" EXISTS (SELECT 1 FROM subscriptions s"
		"         WHERE s.account_id = m.account_id AND s.name = m.name),"
		" (SELECT count(*) FROM mailbox_messages mm WHERE mm.mailbox_id = m.id),"
		" (SELECT count(*) FROM mailbox_messages mm"
		"  WHERE mm.mailbox_id = m.id AND (mm.flags & ?2) = 0)"
		" FROM mailboxes m WHERE m.account_id = ?1 ORDER BY m.name");
	if (!s) {
		store_set_db_error(st, db, "listing mailboxes", error_r);
		store_db_put(st, db);
		return -1;
	}
	sqlite3_bind_int64(s, 1, account_id);
	sqlite3_bind_int(s, 2, FLAG_SEEN | FLAG_DRAFT);
	struct store_jmap_mailbox *v = NULL;
	size_t n = 0, cap = 0;
	int rc;
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		if (n == cap) {
			cap = cap ? cap * 2 : 16;
			v = xreallocarray(v, cap, sizeof *v);
		}
		struct store_jmap_mailbox *m = &v[n++];
		m->id = sqlite3_column_int64(s, 0);
		m->name = store_col_strdup(s, 1);
		m->special_use = sqlite3_column_type(s, 2) == SQLITE_NULL ? NULL :
				 store_col_strdup(s, 2);
		m->noselect = sqlite3_column_int(s, 3) != 0;
		m->highestmodseq = (uint64_t)sqlite3_column_int64(s, 4);
		m->uidvalidity = (uint32_t)sqlite3_column_int64(s, 5);
		m->subscribed = sqlite3_column_int(s, 6) != 0;
		m->total = sqlite3_column_int64(s, 7);
		m->unread = sqlite3_column_int64(s, 8);
	}
	if (rc != SQLITE_DONE) {
		store_set_db_error(st, db, "listing mailboxes", error_r);
		sqlite3_finalize(s);
		store_db_put(st, db);
		store_jmap_mailboxes_free(v, n);
		return -1;
	}
	sqlite3_finalize(s);
	store_db_put(st, db);
	*v_r = v;
	*n_r = n;
	return 0;
}

void store_jmap_mailboxes_free(struct store_jmap_mailbox *v, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(v[i].name);
		free(v[i].special_use);
	}
	free(v);
}
