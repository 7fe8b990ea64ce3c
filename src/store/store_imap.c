/* store_imap.c - message state for IMAP sessions: what changed since a
 * MODSEQ, flags and keywords, copies.  See store.h. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/buf.h"
#include "core/log.h"
#include "core/util.h"
#include "store/store.h"
#include "store/store_private.h"

size_t store_states_find(const struct msg_state *v, size_t n, uint32_t uid, bool *found_r)
{
	size_t lo = 0, hi = n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (v[mid].uid < uid)
			lo = mid + 1;
		else
			hi = mid;
	}
	*found_r = lo < n && v[lo].uid == uid;
	return lo;
}

void store_states_free(struct msg_state *v, size_t n)
{
	if (!v)
		return;
	for (size_t i = 0; i < n; i++)
		free(v[i].keywords);
	free(v);
}

int store_mailbox_sync(struct store *st, int64_t mailbox_id, uint64_t since,
		       struct mailbox_info *mb_r, struct msg_state **states_r, size_t *nstates_r,
		       uint32_t **vanished_r, size_t *nvanished_r)
{
	sqlite3 *db;
	sqlite3_stmt *s = NULL;
	struct msg_state *arr = NULL;
	uint32_t *van = NULL;
	size_t n = 0, cap = 0, nv = 0, capv = 0;
	int rc = SQLITE_ERROR, ret = -1;

	*states_r = NULL;
	*nstates_r = 0;
	if (vanished_r) {
		*vanished_r = NULL;
		*nvanished_r = 0;
	}
	memset(mb_r, 0, sizeof *mb_r);
	db = store_db_get(st);
	if (!db)
		return -1;
	/* One read transaction: the mailbox row, its messages and its
	 * expunges are one consistent view. */
	if (store_exec(db, "BEGIN") < 0)
		goto out;
	s = store_prep(db, "SELECT name, uidvalidity, uidnext, highestmodseq, account_id "
		       "FROM mailboxes WHERE id = ?1");
	if (!s)
		goto out;
	sqlite3_bind_int64(s, 1, mailbox_id);
	rc = sqlite3_step(s);
	if (rc == SQLITE_DONE) {
		ret = 0;
		goto out;
	}
	if (rc != SQLITE_ROW)
		goto out;
	mb_r->id = mailbox_id;
	mb_r->name = store_col_strdup(s, 0);
	mb_r->uidvalidity = (uint32_t)sqlite3_column_int64(s, 1);
	mb_r->uidnext = (uint32_t)sqlite3_column_int64(s, 2);
	mb_r->highestmodseq = (uint64_t)sqlite3_column_int64(s, 3);
	mb_r->account_id = sqlite3_column_int64(s, 4);
	sqlite3_finalize(s);
	s = store_prep(db, since == 0 ?
		       "SELECT uid, flags, modseq, keywords FROM mailbox_messages "
		       "WHERE mailbox_id = ?1 ORDER BY uid" :
		       "SELECT uid, flags, modseq, keywords FROM mailbox_messages "
		       "WHERE mailbox_id = ?1 AND modseq > ?2 ORDER BY uid");
	if (!s)
		goto out;
	sqlite3_bind_int64(s, 1, mailbox_id);
	sqlite3_bind_int64(s, 2, (int64_t)since);
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		if (n == cap) {
			cap = cap ? cap * 2 : 64;
			arr = xreallocarray(arr, cap, sizeof *arr);
		}
		struct msg_state *e = &arr[n++];
		e->uid = (uint32_t)sqlite3_column_int64(s, 0);
		e->flags = (uint32_t)sqlite3_column_int64(s, 1);
		e->modseq = (uint64_t)sqlite3_column_int64(s, 2);
		e->keywords = sqlite3_column_type(s, 3) == SQLITE_NULL ? NULL :
			      store_col_strdup(s, 3);
	}
	if (rc != SQLITE_DONE)
		goto out;
	sqlite3_finalize(s);
	s = NULL;
	if (since > 0 && vanished_r) {
		s = store_prep(db, "SELECT uid FROM expunged WHERE mailbox_id = ?1 AND modseq > ?2 "
			       "ORDER BY uid");
		if (!s)
			goto out;
		sqlite3_bind_int64(s, 1, mailbox_id);
		sqlite3_bind_int64(s, 2, (int64_t)since);
		while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
			if (nv == capv) {
				capv = capv ? capv * 2 : 64;
				van = xreallocarray(van, capv, sizeof *van);
			}
			van[nv++] = (uint32_t)sqlite3_column_int64(s, 0);
		}
		if (rc != SQLITE_DONE)
			goto out;
	}
	ret = 1;
out:
	if (ret < 0)
		log_error("store %s: reading mailbox %lld: %s", st->db_path, (long long)mailbox_id,
			  sqlite3_errmsg(db));
	sqlite3_finalize(s);
	(void)store_exec(db, "COMMIT");
	store_db_put(st, db);
	if (ret != 1) {
		mailbox_info_free(mb_r);
		store_states_free(arr, n);
		free(van);
		return ret;
	}
	*states_r = arr;
	*nstates_r = n;
	if (vanished_r) {
		*vanished_r = van;
		*nvanished_r = nv;
	} else {
		free(van);
	}
	return 1;
}

int store_messages_get(struct store *st, int64_t mailbox_id, const uint32_t *uids, size_t n,
		       struct msg_entry *out)
{
	sqlite3 *db = store_db_get(st);
	sqlite3_stmt *s;
	int ret = -1;

	if (!db)
		return -1;
	s = store_prep(db, "SELECT mm.flags, mm.modseq, m.size, mm.internaldate, m.id, m.path "
		       "FROM mailbox_messages mm JOIN messages m ON m.id = mm.body_id "
		       "WHERE mm.mailbox_id = ?1 AND mm.uid = ?2");
	if (s) {
		(void)store_exec(db, "BEGIN");
		size_t i;
		for (i = 0; i < n; i++) {
			struct msg_entry *e = &out[i];
			memset(e, 0, sizeof *e);
			sqlite3_reset(s);
			sqlite3_bind_int64(s, 1, mailbox_id);
			sqlite3_bind_int64(s, 2, uids[i]);
			int rc = sqlite3_step(s);
			if (rc == SQLITE_DONE)
				continue;
			if (rc != SQLITE_ROW)
				break;
			e->uid = uids[i];
			e->flags = (uint32_t)sqlite3_column_int64(s, 0);
			e->modseq = (uint64_t)sqlite3_column_int64(s, 1);
			e->size = sqlite3_column_int64(s, 2);
			e->internaldate = sqlite3_column_int64(s, 3);
			e->body_id = sqlite3_column_int64(s, 4);
			const char *path = (const char *)sqlite3_column_text(s, 5);
			if (path)
				snprintf(e->path, sizeof e->path, "%s", path);
		}
		if (i == n)
			ret = 0;
		(void)store_exec(db, "COMMIT");
	}
	if (ret < 0)
		log_error("store %s: reading messages of mailbox %lld: %s", st->db_path,
			  (long long)mailbox_id, sqlite3_errmsg(db));
	sqlite3_finalize(s);
	store_db_put(st, db);
	return ret;
}

/* ---- keywords ---- */

bool store_keywords_has(const char *list, const char *kw, size_t kwlen)
{
	const char *p = list;

	if (!list)
		return false;
	while (*p) {
		while (*p == ' ')
			p++;
		const char *e = p;
		while (*e && *e != ' ')
			e++;
		if ((size_t)(e - p) == kwlen && kwlen > 0 && str_nieq(p, kw, kwlen))
			return true;
		p = e;
	}
	return false;
}

static size_t keywords_count(const char *list)
{
	size_t n = 0;

	for (const char *p = list; p && *p;) {
		while (*p == ' ')
			p++;
		if (*p)
			n++;
		while (*p && *p != ' ')
			p++;
	}
	return n;
}

/* New keyword list of one message under chg; heap string or NULL (none). */
static int keywords_apply(const char *old, const struct store_flag_change *chg, char **new_r)
{
	struct buf b;
	const char *p;

	buf_init(&b, (size_t)STORE_KEYWORDS_MAX * (STORE_KEYWORD_LEN_MAX + 1) + 1);
	*new_r = NULL;
	/* Keep the old ones that survive. */
	if (chg->mode != STORE_FLAGS_SET) {
		for (p = old; p && *p;) {
			while (*p == ' ')
				p++;
			const char *e = p;
			while (*e && *e != ' ')
				e++;
			if (e == p)
				break;
			bool drop = false;
			if (chg->mode == STORE_FLAGS_REMOVE)
				for (size_t i = 0; i < chg->nkeywords && !drop; i++)
					drop = strlen(chg->keywords[i]) == (size_t)(e - p) &&
					       str_nieq(chg->keywords[i], p, (size_t)(e - p));
			if (!drop && (b.len > 0 ? buf_append(&b, " ", 1) : 0) < 0)
				goto toomany;
			if (!drop && buf_append(&b, p, (size_t)(e - p)) < 0)
				goto toomany;
			p = e;
		}
	}
	if (chg->mode != STORE_FLAGS_REMOVE) {
		for (size_t i = 0; i < chg->nkeywords; i++) {
			const char *kw = chg->keywords[i];
			if (store_keywords_has(b.len ? b.data : NULL, kw, strlen(kw)))
				continue;
			if ((b.len > 0 && buf_append(&b, " ", 1) < 0) || buf_append_str(&b, kw) < 0)
				goto toomany;
		}
	}
	if (keywords_count(b.data) > STORE_KEYWORDS_MAX)
		goto toomany;
	if (b.len > 0)
		*new_r = buf_steal(&b, NULL);
	buf_free(&b);
	return 0;
toomany:
	buf_free(&b);
	return -1;
}

static bool str_eq_null(const char *a, const char *b)
{
	if (!a || !*a)
		return !b || !*b;
	return b && strcmp(a, b) == 0;
}

int store_txn_store(struct store_txn *t, int64_t mailbox_id, const uint32_t *uids, size_t n,
		    struct store_flag_change *chg, uint32_t **modified_r, size_t *nmodified_r,
		    char **error_r)
{
	struct store_flag_change *chg_out = chg;
	size_t capch = 0;

	store_states_free(chg_out->changed, chg_out->nchanged);
	chg_out->changed = NULL;
	chg_out->nchanged = 0;
	sqlite3_stmt *get = NULL, *upd = NULL;
	uint32_t *mod = NULL;
	size_t nmod = 0, capmod = 0, changed = 0;
	uint64_t modseq = 0;
	int ret = -1;
	const char *what = "setting flags";

	*modified_r = NULL;
	*nmodified_r = 0;
	for (size_t i = 0; i < chg->nkeywords; i++)
		if (strlen(chg->keywords[i]) > STORE_KEYWORD_LEN_MAX || chg->keywords[i][0] == '\0') {
			store_set_error(error_r, xasprintf("keyword too long (at most %d bytes)",
						     STORE_KEYWORD_LEN_MAX));
			return -1;
		}
	if (store_next_modseq(t, mailbox_id, &modseq, error_r) < 0)
		return -1;
	chg_out->modseq_before = modseq - 1;
	get = store_prep(t->db, "SELECT flags, modseq, keywords FROM mailbox_messages "
			 "WHERE mailbox_id = ?1 AND uid = ?2");
	upd = store_prep(t->db, "UPDATE mailbox_messages SET flags = ?3, keywords = ?4, modseq = ?5 "
			 "WHERE mailbox_id = ?1 AND uid = ?2");
	if (!get || !upd)
		goto dberr;
	for (size_t i = 0; i < n; i++) {
		sqlite3_reset(get);
		sqlite3_bind_int64(get, 1, mailbox_id);
		sqlite3_bind_int64(get, 2, uids[i]);
		int rc = sqlite3_step(get);
		if (rc == SQLITE_DONE)
			continue;
		if (rc != SQLITE_ROW)
			goto dberr;
		uint32_t flags = (uint32_t)sqlite3_column_int64(get, 0);
		uint64_t ms = (uint64_t)sqlite3_column_int64(get, 1);
		const char *kw = (const char *)sqlite3_column_text(get, 2);
		if (chg->conditional && ms > chg->unchangedsince) {
			if (nmod == capmod) {
				capmod = capmod ? capmod * 2 : 16;
				mod = xreallocarray(mod, capmod, sizeof *mod);
			}
			mod[nmod++] = uids[i];
			continue;
		}
		uint32_t nf = chg->mode == STORE_FLAGS_SET ? chg->flags :
			      chg->mode == STORE_FLAGS_ADD ? flags | chg->flags : flags & ~chg->flags;
		char *nk = NULL;
		if (keywords_apply(kw, chg, &nk) < 0) {
			store_set_error(error_r, xasprintf("too many keywords on one message (at most "
						     "%d)", STORE_KEYWORDS_MAX));
			ret = -1;
			goto out;
		}
		if (nf == flags && str_eq_null(kw, nk)) {
			free(nk);
			/* RFC 7162 3.1.3: an unchanged message under UNCHANGEDSINCE
			 * still counts as stored; nothing to bump. */
			continue;
		}
		sqlite3_reset(upd);
		sqlite3_bind_int64(upd, 1, mailbox_id);
		sqlite3_bind_int64(upd, 2, uids[i]);
		sqlite3_bind_int64(upd, 3, nf);
		store_bind_text(upd, 4, nk);
		sqlite3_bind_int64(upd, 5, (int64_t)modseq);
		if (store_step_done(upd) < 0) {
			free(nk);
			goto dberr;
		}
		changed++;
		if (chg_out->nchanged == capch) {
			capch = capch ? capch * 2 : 16;
			chg_out->changed = xreallocarray(chg_out->changed, capch,
							 sizeof *chg_out->changed);
		}
		chg_out->changed[chg_out->nchanged++] = (struct msg_state){uids[i], nf, modseq, nk};
	}
	if (changed > 0 && store_set_highestmodseq(t, mailbox_id, modseq, error_r) < 0)
		goto out;
	ret = 0;
	*modified_r = mod;
	*nmodified_r = nmod;
	mod = NULL;
	goto out;
dberr:
	store_set_db_error(t->st, t->db, what, error_r);
out:
	free(mod);
	if (ret < 0) {
		store_states_free(chg_out->changed, chg_out->nchanged);
		chg_out->changed = NULL;
		chg_out->nchanged = 0;
	}
	sqlite3_finalize(get);
	sqlite3_finalize(upd);
	return ret;
}

int store_txn_copy(struct store_txn *t, int64_t src_mailbox, int64_t dst_mailbox,
		   const uint32_t *uids, size_t n, uint32_t *dst_uids_r, char **error_r)
{
	sqlite3_stmt *get = store_prep(t->db, "SELECT body_id, flags, internaldate, keywords "
				       "FROM mailbox_messages WHERE mailbox_id = ?1 AND uid = ?2");
	int ret = -1;

	if (!get) {
		store_set_db_error(t->st, t->db, "copying messages", error_r);
		return -1;
	}
	for (size_t i = 0; i < n; i++) {
		dst_uids_r[i] = 0;
		sqlite3_reset(get);
		sqlite3_bind_int64(get, 1, src_mailbox);
		sqlite3_bind_int64(get, 2, uids[i]);
		int rc = sqlite3_step(get);
		if (rc == SQLITE_DONE)
			continue;
		if (rc != SQLITE_ROW) {
			store_set_db_error(t->st, t->db, "copying messages", error_r);
			goto out;
		}
		int64_t body = sqlite3_column_int64(get, 0);
		uint32_t flags = (uint32_t)sqlite3_column_int64(get, 1);
		int64_t date = sqlite3_column_int64(get, 2);
		char *kw = sqlite3_column_type(get, 3) == SQLITE_NULL ? NULL :
			   store_col_strdup(get, 3);
		int r = store_txn_append_kw(t, dst_mailbox, body, flags, kw, date, &dst_uids_r[i],
					    error_r);
		free(kw);
		if (r < 0)
			goto out;
	}
	ret = 0;
out:
	sqlite3_finalize(get);
	return ret;
}

int store_mailbox_status(struct store *st, int64_t mailbox_id, struct store_status *r)
{
	sqlite3 *db = store_db_get(st);
	sqlite3_stmt *s;
	int ret = -1;

	memset(r, 0, sizeof *r);
	if (!db)
		return -1;
	s = store_prep(db, "SELECT count(*), coalesce(sum((mm.flags & 1) = 0), 0), "
		       "coalesce(sum((mm.flags & 8) != 0), 0), coalesce(sum(m.size), 0) "
		       "FROM mailbox_messages mm JOIN messages m ON m.id = mm.body_id "
		       "WHERE mm.mailbox_id = ?1");
	if (s) {
		sqlite3_bind_int64(s, 1, mailbox_id);
		if (sqlite3_step(s) == SQLITE_ROW) {
			r->messages = sqlite3_column_int64(s, 0);
			r->unseen = sqlite3_column_int64(s, 1);
			r->deleted = sqlite3_column_int64(s, 2);
			r->size = sqlite3_column_int64(s, 3);
			ret = 0;
		}
	}
	if (ret < 0)
		log_error("store %s: status of mailbox %lld: %s", st->db_path,
			  (long long)mailbox_id, sqlite3_errmsg(db));
	sqlite3_finalize(s);
	store_db_put(st, db);
	return ret;
}

int store_mailbox_id(struct store *st, int64_t account_id, const char *name, int64_t *id_r,
		     bool *noselect_r)
{
	sqlite3 *db = store_db_get(st);
	sqlite3_stmt *s;
	int ret = -1;

	if (!db)
		return -1;
	s = store_prep(db, "SELECT id, noselect FROM mailboxes WHERE account_id = ?1 AND name = ?2");
	if (s) {
		sqlite3_bind_int64(s, 1, account_id);
		store_bind_text(s, 2, name);
		int rc = sqlite3_step(s);
		if (rc == SQLITE_ROW) {
			*id_r = sqlite3_column_int64(s, 0);
			if (noselect_r)
				*noselect_r = sqlite3_column_int(s, 1) != 0;
			ret = 1;
		} else if (rc == SQLITE_DONE) {
			ret = 0;
		}
	}
	if (ret < 0)
		log_error("store %s: looking up mailbox: %s", st->db_path, sqlite3_errmsg(db));
	sqlite3_finalize(s);
	store_db_put(st, db);
	return ret;
}

int store_txn_index_text(struct store_txn *t, int64_t body_id, const char *text, size_t len,
			 char **error_r)
{
	/* The message may have been expunged since its delivery, or be
	 * indexed already (a retry): replace, never duplicate. */
	sqlite3_stmt *d = store_prep(t->db, "DELETE FROM msg_text WHERE rowid = ?1");
	sqlite3_stmt *s = store_prep(t->db, "INSERT INTO msg_text (rowid, text) SELECT ?1, ?2 "
				     "WHERE EXISTS (SELECT 1 FROM messages WHERE id = ?1)");
	sqlite3_stmt *u = store_prep(t->db, "UPDATE messages SET indexed = 1 WHERE id = ?1");
	int rc = -1;

	if (d && s && u) {
		sqlite3_bind_int64(d, 1, body_id);
		sqlite3_bind_int64(s, 1, body_id);
		sqlite3_bind_text(s, 2, text, (int)len, SQLITE_STATIC);
		sqlite3_bind_int64(u, 1, body_id);
		if (store_step_done(d) == 0 && store_step_done(s) == 0 && store_step_done(u) == 0)
			rc = 0;
	}
	sqlite3_finalize(d);
	if (rc < 0)
		store_set_db_error(t->st, t->db, "indexing message text", error_r);
	sqlite3_finalize(s);
	sqlite3_finalize(u);
	return rc;
}

/* Characters (UTF-8 lead bytes) in s. */
static size_t utf8_chars(const char *s)
{
	size_t n = 0;
	for (; *s; s++)
		if (((unsigned char)*s & 0xc0) != 0x80)
			n++;
	return n;
}

int store_search_candidates(struct store *st, int64_t mailbox_id, const char *const *terms,
			    size_t nterms, uint32_t **uids_r, size_t *n_r)
{
	struct buf q;
	uint32_t *arr = NULL;
	size_t n = 0, cap = 0;
	int ret = -1;

	*uids_r = NULL;
	*n_r = 0;
	buf_init(&q, 1 << 20);
	for (size_t i = 0; i < nterms; i++) {
		if (utf8_chars(terms[i]) < 3)
			continue;
		if (q.len && buf_append_str(&q, " AND ") < 0)
			goto toolong;
		if (buf_append(&q, "\"", 1) < 0)
			goto toolong;
		for (const char *p = terms[i]; *p; p++)
			if ((*p == '"' && buf_append(&q, "\"\"", 2) < 0) ||
			    (*p != '"' && buf_append(&q, p, 1) < 0))
				goto toolong;
		if (buf_append(&q, "\"", 1) < 0)
			goto toolong;
	}
	if (q.len == 0) {
		buf_free(&q);
		return 0;
	}
	sqlite3 *db = store_db_get(st);
	if (!db) {
		buf_free(&q);
		return -1;
	}
	sqlite3_stmt *s = store_prep(db, "SELECT mm.uid FROM mailbox_messages mm "
				     "JOIN messages m ON m.id = mm.body_id "
				     "WHERE mm.mailbox_id = ?1 AND (m.indexed != 1 OR m.id IN "
				     "(SELECT rowid FROM msg_text WHERE msg_text MATCH ?2)) "
				     "ORDER BY mm.uid");
	if (s) {
		int rc;
		sqlite3_bind_int64(s, 1, mailbox_id);
		sqlite3_bind_text(s, 2, q.data, (int)q.len, SQLITE_STATIC);
		while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
			if (n == cap) {
				cap = cap ? cap * 2 : 64;
				arr = xreallocarray(arr, cap, sizeof *arr);
			}
			arr[n++] = (uint32_t)sqlite3_column_int64(s, 0);
		}
		if (rc == SQLITE_DONE)
			ret = 1;
	}
	if (ret < 0)
		log_error("store %s: full-text search in mailbox %lld: %s", st->db_path,
			  (long long)mailbox_id, sqlite3_errmsg(db));
	sqlite3_finalize(s);
	store_db_put(st, db);
	buf_free(&q);
	if (ret < 0) {
		free(arr);
		return -1;
	}
	*uids_r = arr;
	*n_r = n;
	return 1;
toolong:
	buf_free(&q);
	return 0;
}

int store_unindexed(struct store *st, struct store_unindexed *out, size_t max, size_t *n_r)
{
	sqlite3 *db = store_db_get(st);
	sqlite3_stmt *s;
	int ret = -1;

	*n_r = 0;
	if (!db)
		return -1;
	s = store_prep(db, "SELECT id, size, path FROM messages WHERE indexed = 0 ORDER BY id "
		       "LIMIT ?1");
	if (s) {
		int rc;
		sqlite3_bind_int64(s, 1, (int64_t)max);
		while ((rc = sqlite3_step(s)) == SQLITE_ROW && *n_r < max) {
			struct store_unindexed *u = &out[(*n_r)++];
			u->id = sqlite3_column_int64(s, 0);
			u->size = sqlite3_column_int64(s, 1);
			const char *p = (const char *)sqlite3_column_text(s, 2);
			snprintf(u->path, sizeof u->path, "%s", p ? p : "");
		}
		if (rc == SQLITE_DONE || rc == SQLITE_ROW)
			ret = 0;
	}
	if (ret < 0)
		log_error("store %s: listing unindexed messages: %s", st->db_path,
			  sqlite3_errmsg(db));
	sqlite3_finalize(s);
	store_db_put(st, db);
	return ret;
}

int store_txn_mark_unindexable(struct store_txn *t, int64_t body_id, char **error_r)
{
	sqlite3_stmt *s = store_prep(t->db, "UPDATE messages SET indexed = 2 WHERE id = ?1");
	int rc = -1;

	if (s) {
		sqlite3_bind_int64(s, 1, body_id);
		rc = store_step_done(s);
	}
	sqlite3_finalize(s);
	if (rc < 0)
		store_set_db_error(t->st, t->db, "marking a message unindexable", error_r);
	return rc;
}
