/* store_alias.c - local routing: aliases, catch-all, plus-addressing and
 * mailing lists (schema 8).
 *
 * An alias maps one address to one or more targets, local or remote
 * (Postfix's virtual_alias_maps); "@domain" is the domain's catch-all,
 * used when nothing else matches.  A list is an address whose mail is sent
 * again, by the queue manager, to each member with the list as envelope
 * sender (so bounces come back to the list, and go to its owner).
 *
 * store_expand_rcpt() resolves one envelope recipient to what the SMTP
 * session delivers to: mailboxes, remote addresses for the queue, lists.
 * The expansion is breadth-first over a bounded work list (no recursion),
 * remembers every address it has seen (alias loops end there), and stops
 * at STORE_EXPAND_DEPTH levels and STORE_EXPAND_MAX targets. */
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "core/util.h"
#include "store/store_private.h"

static sqlite3 *get_db(struct store *st, char **error_r)
{
	sqlite3 *db = store_db_get(st);
	if (!db)
		store_set_error(error_r, xasprintf("store %s: cannot open database", st->db_path));
	return db;
}

/* 1 when lname (lower case) is one of our domains, 0 not, -1 error. */
static int local_domain(sqlite3 *db, const char *lname)
{
	sqlite3_stmt *s = store_prep(db, "SELECT 1 FROM domains WHERE name = ?1");
	int rc, ret = -1;
	if (!s)
		return -1;
	store_bind_text(s, 1, lname);
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW)
		ret = 1;
	else if (rc == SQLITE_DONE)
		ret = 0;
	sqlite3_finalize(s);
	return ret;
}

/* 1 when an account, list or alias (not catch-all) uses addr. */
static int address_taken(sqlite3 *db, const char *addr, const char *skip_table)
{
	static const char *const sql[][2] = {
		{"accounts", "SELECT 1 FROM accounts WHERE address = ?1"},
		{"lists", "SELECT 1 FROM lists WHERE address = ?1"},
		{"aliases", "SELECT 1 FROM aliases WHERE address = ?1 LIMIT 1"},
	};
	for (size_t i = 0; i < ARRAY_LEN(sql); i++) {
		if (skip_table && strcmp(sql[i][0], skip_table) == 0)
			continue;
		sqlite3_stmt *s = store_prep(db, sql[i][1]);
		if (!s)
			return -1;
		store_bind_text(s, 1, addr);
		int rc = sqlite3_step(s);
		sqlite3_finalize(s);
		if (rc == SQLITE_ROW)
			return 1;
		if (rc != SQLITE_DONE)
			return -1;
	}
	return 0;
}

/* An alias key: "user@domain" or "@domain", lower-cased, domain local. */
static char *alias_key(sqlite3 *db, const char *address, const char *what, char **error_r)
{
	const char *domain;
	char *key;
	if (address[0] == '@') {
		key = xstrdup(address);
		str_lower(key);
		domain = key + 1;
		if (!store_valid_domain(domain)) {
			store_set_error(error_r, xasprintf("%s %s: not a valid @domain", what, address));
			free(key);
			return NULL;
		}
	} else {
		key = store_split_address(address, &domain);
		if (!key) {
			store_set_error(error_r, xasprintf("%s %s: not a valid address (user@domain)",
						     what, address));
			return NULL;
		}
	}
	int local = local_domain(db, domain);
	if (local <= 0) {
		if (local == 0)
			store_set_error(error_r, xasprintf("%s %s: domain %s is not local (add it "
						     "first with: yubin domain add %s)", what,
						     address, domain, domain));
		else
			store_set_error(error_r, xasprintf("%s %s: %s", what, address,
						     sqlite3_errmsg(db)));
		free(key);
		return NULL;
	}
	return key;
}

static int run_write(struct store *st, sqlite3 *db, sqlite3_stmt *s, const char *what,
		     char **error_r)
{
	int ret = s ? store_step_done(s) : -1;
	if (ret < 0 && error_r && !*error_r)
		store_set_db_error(st, db, what, error_r);
	sqlite3_finalize(s);
	return ret;
}

/* run_write() needs its statement bound first: a small helper for the
 * two-text-parameter statements of this file. */
static sqlite3_stmt *prep2(sqlite3 *db, const char *sql, const char *a, const char *b)
{
	sqlite3_stmt *s = store_prep(db, sql);
	if (s) {
		store_bind_text(s, 1, a);
		if (b)
			store_bind_text(s, 2, b);
	}
	return s;
}

int store_alias_add(struct store *st, const char *address, const char *target, char **error_r)
{
	sqlite3 *db = get_db(st, error_r);
	int ret = -1;
	if (!db)
		return -1;
	char *key = alias_key(db, address, "alias", error_r);
	const char *tdom;
	char *tgt = key ? store_split_address(target, &tdom) : NULL;
	if (key && !tgt) {
		store_set_error(error_r, xasprintf("alias %s: target %s is not a valid address",
					     address, target));
	} else if (key) {
		int taken = key[0] == '@' ? 0 : address_taken(db, key, "aliases");
		if (taken > 0)
			store_set_error(error_r, xasprintf("alias %s: the address is an account or "
						     "a list already", key));
		else if (taken == 0)
			ret = run_write(st, db, prep2(db, "INSERT OR IGNORE INTO aliases "
						      "(address, target) VALUES (?1, ?2)", key, tgt),
					"adding an alias", error_r);
		else
			store_set_db_error(st, db, "adding an alias", error_r);
	}
	free(key);
	free(tgt);
	store_db_put(st, db);
	return ret;
}

int store_alias_del(struct store *st, const char *address, const char *target, char **error_r)
{
	sqlite3 *db = get_db(st, error_r);
	if (!db)
		return -1;
	char *key = xstrdup(address), *tgt = target ? xstrdup(target) : NULL;
	str_lower(key);
	if (tgt)
		str_lower(tgt);
	sqlite3_stmt *s = tgt ? prep2(db, "DELETE FROM aliases WHERE address = ?1 AND target = ?2",
				      key, tgt)
			      : prep2(db, "DELETE FROM aliases WHERE address = ?1", key, NULL);
	int ret = run_write(st, db, s, "deleting an alias", error_r);
	if (ret == 0)
		ret = sqlite3_changes(db) > 0 ? 1 : 0;
	free(key);
	free(tgt);
	store_db_put(st, db);
	return ret;
}

static int list_pairs(struct store *st, const char *sql, const char *arg,
		      struct store_pair **v_r, size_t *n_r, char **error_r)
{
	sqlite3 *db = get_db(st, error_r);
	struct store_pair *v = NULL;
	size_t n = 0, cap = 0;
	int rc = SQLITE_ERROR;
	*v_r = NULL;
	*n_r = 0;
	if (!db)
		return -1;
	sqlite3_stmt *s = store_prep(db, sql);
	if (s) {
		if (arg)
			store_bind_text(s, 1, arg);
		while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
			if (n == cap) {
				cap = cap ? cap * 2 : 16;
				v = xreallocarray(v, cap, sizeof *v);
			}
			v[n].a = store_col_strdup(s, 0);
			v[n].b = store_col_strdup(s, 1);
			n++;
		}
	}
	sqlite3_finalize(s);
	if (rc != SQLITE_DONE) {
		store_set_db_error(st, db, "listing", error_r);
		store_pairs_free(v, n);
		store_db_put(st, db);
		return -1;
	}
	store_db_put(st, db);
	*v_r = v;
	*n_r = n;
	return 0;
}

void store_pairs_free(struct store_pair *v, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(v[i].a);
		free(v[i].b);
	}
	free(v);
}

int store_alias_list(struct store *st, struct store_pair **v_r, size_t *n_r, char **error_r)
{
	return list_pairs(st, "SELECT address, target FROM aliases ORDER BY address, target", NULL,
			  v_r, n_r, error_r);
}

/* ---- lists ---- */

int store_list_add(struct store *st, const char *list, const char *owner, char **error_r)
{
	sqlite3 *db = get_db(st, error_r);
	int ret = -1;
	if (!db)
		return -1;
	char *key = alias_key(db, list, "list", error_r);
	const char *odom;
	char *own = store_split_address(owner, &odom);
	if (key && key[0] == '@') {
		store_set_error(error_r, xasprintf("list %s: a list needs a user@domain address",
					     list));
	} else if (key && !own) {
		store_set_error(error_r, xasprintf("list %s: owner %s is not a valid address", list,
					     owner));
	} else if (key) {
		int taken = address_taken(db, key, NULL);
		if (taken > 0)
			store_set_error(error_r, xasprintf("list %s: the address is an account, "
						     "alias or list already", key));
		else if (taken == 0)
			ret = run_write(st, db, prep2(db, "INSERT INTO lists (address, owner) "
						      "VALUES (?1, ?2)", key, own),
					"adding a list", error_r);
	}
	if (key && own && ret < 0 && !*error_r)
		store_set_db_error(st, db, "adding a list", error_r);
	free(key);
	free(own);
	store_db_put(st, db);
	return ret;
}

int store_list_del(struct store *st, const char *list, char **error_r)
{
	sqlite3 *db = get_db(st, error_r);
	if (!db)
		return -1;
	char *key = xstrdup(list);
	str_lower(key);
	int ret = store_exec(db, "BEGIN IMMEDIATE");
	if (ret == 0)
		ret = run_write(st, db, prep2(db, "DELETE FROM list_members WHERE list = ?1", key,
					      NULL), "deleting a list", error_r);
	int changed = 0;
	if (ret == 0) {
		ret = run_write(st, db, prep2(db, "DELETE FROM lists WHERE address = ?1", key,
					      NULL), "deleting a list", error_r);
		changed = sqlite3_changes(db);
	}
	if (ret == 0)
		ret = store_exec(db, "COMMIT");
	if (ret < 0) {
		if (!*error_r)
			store_set_db_error(st, db, "deleting a list", error_r);
		(void)store_exec(db, "ROLLBACK");
	}
	free(key);
	store_db_put(st, db);
	return ret < 0 ? -1 : changed > 0 ? 1 : 0;
}

int store_list_member(struct store *st, const char *list, const char *member, bool add,
		      char **error_r)
{
	sqlite3 *db = get_db(st, error_r);
	if (!db)
		return -1;
	char *key = xstrdup(list);
	str_lower(key);
	const char *mdom;
	char *mem = store_split_address(member, &mdom);
	int ret = -1;
	if (!mem) {
		store_set_error(error_r, xasprintf("list %s: member %s is not a valid address", list,
					     member));
	} else if (add) {
		/* The list must exist: the insert names it. */
		ret = run_write(st, db, prep2(db, "INSERT OR IGNORE INTO list_members (list, member) "
					      "SELECT address, ?2 FROM lists WHERE address = ?1",
					      key, mem), "adding a list member", error_r);
		if (ret == 0)
			ret = sqlite3_changes(db) > 0 ? 1 : 0;
	} else {
		ret = run_write(st, db, prep2(db, "DELETE FROM list_members WHERE list = ?1 AND "
					      "member = ?2", key, mem),
				"removing a list member", error_r);
		if (ret == 0)
			ret = sqlite3_changes(db) > 0 ? 1 : 0;
	}
	free(key);
	free(mem);
	store_db_put(st, db);
	return ret;
}

int store_list_list(struct store *st, struct store_pair **v_r, size_t *n_r, char **error_r)
{
	return list_pairs(st, "SELECT address, owner FROM lists ORDER BY address", NULL, v_r, n_r,
			  error_r);
}

int store_list_members(struct store *st, const char *list, char **owner_r, char ***v_r,
		       size_t *n_r, char **error_r)
{
	struct store_pair *p;
	size_t n;
	char *key = xstrdup(list);
	str_lower(key);
	*owner_r = NULL;
	*v_r = NULL;
	*n_r = 0;
	/* One query: the owner row first (member NULL), then the members. */
	int rc = list_pairs(st, "SELECT owner, NULL FROM lists WHERE address = ?1 "
			    "UNION ALL SELECT NULL, member FROM list_members WHERE list = ?1 "
			    "AND EXISTS (SELECT 1 FROM lists WHERE address = ?1)", key, &p, &n,
			    error_r);
	free(key);
	if (rc < 0)
		return -1;
	if (n == 0 || !p[0].a) {
		store_pairs_free(p, n);
		return 0;
	}
	*owner_r = p[0].a;
	p[0].a = NULL;
	char **v = xreallocarray(NULL, n, sizeof *v);
	size_t k = 0;
	for (size_t i = 1; i < n; i++) {
		if (p[i].b) {
			v[k++] = p[i].b;
			p[i].b = NULL;
		}
	}
	store_pairs_free(p, n);
	*v_r = v;
	*n_r = k;
	return 1;
}

/* ---- expansion ---- */

struct expand_state {
	sqlite3 *db;
	sqlite3_stmt *acct, *list, *alias;
	struct rcpt_expansion *x;
	/* work list: addresses still to resolve, with their depth */
	char **work;
	unsigned *depth;
	size_t nwork, head, capwork;
	/* every address queued once (loops end here) */
	char **seen;
	size_t nseen;
};

static bool seen(struct expand_state *e, const char *addr)
{
	for (size_t i = 0; i < e->nseen; i++)
		if (strcmp(e->seen[i], addr) == 0)
			return true;
	return false;
}

static void push(struct expand_state *e, const char *addr, unsigned depth)
{
	if (seen(e, addr))
		return;
	if (e->nseen >= STORE_EXPAND_MAX * 2 || depth > STORE_EXPAND_DEPTH) {
		e->x->capped = true;
		return;
	}
	e->seen = xreallocarray(e->seen, e->nseen + 1, sizeof *e->seen);
	e->seen[e->nseen++] = xstrdup(addr);
	if (e->nwork == e->capwork) {
		e->capwork = e->capwork ? e->capwork * 2 : 8;
		e->work = xreallocarray(e->work, e->capwork, sizeof *e->work);
		e->depth = xreallocarray(e->depth, e->capwork, sizeof *e->depth);
	}
	e->work[e->nwork] = xstrdup(addr);
	e->depth[e->nwork++] = depth;
}

static struct rcpt_target *add_target(struct expand_state *e)
{
	struct rcpt_expansion *x = e->x;
	if (x->n >= STORE_EXPAND_MAX) {
		x->capped = true;
		return NULL;
	}
	x->v = xreallocarray(x->v, x->n + 1, sizeof *x->v);
	struct rcpt_target *t = &x->v[x->n++];
	memset(t, 0, sizeof *t);
	return t;
}

/* Account or list at exactly addr: 1 found (target added), 0 no, -1 error. */
static int direct(struct expand_state *e, const char *addr)
{
	sqlite3_reset(e->acct);
	store_bind_text(e->acct, 1, addr);
	int rc = sqlite3_step(e->acct);
	if (rc == SQLITE_ROW) {
		for (size_t i = 0; i < e->x->n; i++)
			if (e->x->v[i].kind == TARGET_LOCAL &&
			    e->x->v[i].account_id == sqlite3_column_int64(e->acct, 0))
				return 1;     /* two aliases of one account: one copy */
		struct rcpt_target *t = add_target(e);
		if (t) {
			t->kind = TARGET_LOCAL;
			t->account_id = sqlite3_column_int64(e->acct, 0);
			t->mailbox_id = sqlite3_column_int64(e->acct, 1);
			t->quota = sqlite3_column_int64(e->acct, 2);
			t->used = sqlite3_column_int64(e->acct, 3);
			snprintf(t->address, sizeof t->address, "%s", addr);
		}
		return 1;
	}
	if (rc != SQLITE_DONE)
		return -1;
	sqlite3_reset(e->list);
	store_bind_text(e->list, 1, addr);
	rc = sqlite3_step(e->list);
	if (rc == SQLITE_ROW) {
		struct rcpt_target *t = add_target(e);
		if (t) {
			t->kind = TARGET_LIST;
			snprintf(t->address, sizeof t->address, "%s", addr);
		}
		return 1;
	}
	return rc == SQLITE_DONE ? 0 : -1;
}

/* Alias targets of key pushed: 1 some, 0 none, -1 error. */
static int alias(struct expand_state *e, const char *key, unsigned depth)
{
	sqlite3_reset(e->alias);
	store_bind_text(e->alias, 1, key);
	int rc, found = 0;
	while ((rc = sqlite3_step(e->alias)) == SQLITE_ROW) {
		found = 1;
		push(e, (const char *)sqlite3_column_text(e->alias, 0), depth + 1);
	}
	return rc == SQLITE_DONE ? found : -1;
}

static int resolve_one(struct expand_state *e, const char *addr, unsigned depth, char delim)
{
	const char *at = strrchr(addr, '@');
	if (!at)
		return 0;
	int local = local_domain(e->db, at + 1);
	if (local < 0)
		return -1;
	if (!local) {
		struct rcpt_target *t = add_target(e);
		if (t) {
			t->kind = TARGET_REMOTE;
			snprintf(t->address, sizeof t->address, "%s", addr);
		}
		return 1;
	}
	int rc = direct(e, addr);
	if (rc == 0)
		rc = alias(e, addr, depth);
	if (rc == 0 && delim) {
		/* user+tag@domain: the same lookups for user@domain. */
		const char *d = memchr(addr, delim, (size_t)(at - addr));
		if (d && d > addr) {
			char base[STORE_ADDRESS_MAX + 1];
			snprintf(base, sizeof base, "%.*s%s", (int)(d - addr), addr, at);
			rc = direct(e, base);
			if (rc == 0)
				rc = alias(e, base, depth);
		}
	}
	if (rc == 0)
		rc = alias(e, at, depth);      /* "@domain": the catch-all */
	return rc;
}

int store_expand_rcpt(struct store *st, const char *address, char delim,
		      struct rcpt_expansion *x)
{
	struct expand_state e = {.x = x};
	const char *domain;
	int ret = -1;

	memset(x, 0, sizeof *x);
	x->status = RCPT_NOT_LOCAL;
	char *addr = store_split_address(address, &domain);
	e.db = store_db_get(st);
	if (!e.db) {
		free(addr);
		return -1;
	}
	if (!addr) {
		const char *at = strrchr(address, '@');
		char *d = at ? xstrdup(at + 1) : NULL;
		if (d)
			str_lower(d);
		int local = d && store_valid_domain(d) ? local_domain(e.db, d) : 0;
		free(d);
		store_db_put(st, e.db);
		if (local < 0)
			return -1;
		x->status = local ? RCPT_UNKNOWN_USER : RCPT_NOT_LOCAL;
		return 0;
	}
	int local = local_domain(e.db, domain);
	if (local <= 0) {
		ret = local;
		goto out;
	}
	e.acct = store_prep(e.db, "SELECT a.id, m.id, a.quota, a.used FROM accounts a "
			    "JOIN mailboxes m ON m.account_id = a.id AND m.name = 'INBOX' "
			    "WHERE a.address = ?1");
	e.list = store_prep(e.db, "SELECT 1 FROM lists WHERE address = ?1");
	e.alias = store_prep(e.db, "SELECT target FROM aliases WHERE address = ?1 "
			     "ORDER BY target");
	if (!e.acct || !e.list || !e.alias)
		goto out;
	push(&e, addr, 0);
	for (e.head = 0; e.head < e.nwork; e.head++) {
		if (resolve_one(&e, e.work[e.head], e.depth[e.head], delim) < 0)
			goto out;
	}
	x->status = x->n > 0 ? RCPT_LOCAL : RCPT_UNKNOWN_USER;
	ret = 0;
out:
	if (ret < 0)
		log_error("store %s: expanding recipient %s: %s", st->db_path, address,
			  sqlite3_errmsg(e.db));
	sqlite3_finalize(e.acct);
	sqlite3_finalize(e.list);
	sqlite3_finalize(e.alias);
	for (size_t i = 0; i < e.nwork; i++)
		free(e.work[i]);
	for (size_t i = 0; i < e.nseen; i++)
		free(e.seen[i]);
	free(e.work);
	free(e.depth);
	free(e.seen);
	store_db_put(st, e.db);
	free(addr);
	if (ret < 0) {
		rcpt_expansion_free(x);
		return -1;
	}
	return 0;
}

void rcpt_expansion_free(struct rcpt_expansion *x)
{
	free(x->v);
	x->v = NULL;
	x->n = 0;
}

int store_own_addresses(struct store *st, const char *account, char ***v_r, size_t *n_r)
{
	struct store_pair *p;
	size_t n;
	char *err = NULL;
	char *key = xstrdup(account);
	str_lower(key);
	*v_r = NULL;
	*n_r = 0;
	/* Aliases naming the account (not catch-alls: "@domain" would let a
	 * user send as anyone there), at most STORE_OWN_MAX. */
	int rc = list_pairs(st, "SELECT address, NULL FROM aliases WHERE target = ?1 AND "
			    "substr(address, 1, 1) <> '@' ORDER BY address LIMIT 100", key, &p,
			    &n, &err);
	free(key);
	if (rc < 0) {
		log_error("%s", err ? err : "store: listing a user's aliases failed");
		free(err);
		return -1;
	}
	char **v = xreallocarray(NULL, n ? n : 1, sizeof *v);
	for (size_t i = 0; i < n; i++) {
		v[i] = p[i].a;
		p[i].a = NULL;
	}
	store_pairs_free(p, n);
	*v_r = v;
	*n_r = n;
	return 0;
}
