/* store_test.c - the SQLite store in a temporary directory. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/log.h"
#include "core/util.h"
#include "store/store.h"

struct fixture {
	char dir[64];
	struct store *st;
};

static void rm_rf(const char *path)
{
	char cmd[256];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", path);
	assert_int_equal(system(cmd), 0);
}

static int setup(void **state)
{
	struct fixture *f = xcalloc(1, sizeof(*f));
	char *err = NULL;

	snprintf(f->dir, sizeof(f->dir), "/tmp/yubin-store-test-XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	assert_int_equal(store_open(f->dir, &f->st, &err), 0);
	assert_null(err);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	store_close(&f->st);
	assert_null(f->st);
	rm_rf(f->dir);
	free(f);
	return 0;
}

struct list {
	char items[16][64];
	int n;
};

static void collect_cb(const char *name, void *arg)
{
	struct list *l = arg;

	if (l->n < 16)
		snprintf(l->items[l->n++], 64, "%s", name);
}

static void add_domain(struct store *st, const char *d)
{
	char *err = NULL;

	assert_int_equal(store_domain_add(st, d, &err), 0);
	assert_null(err);
}

static void add_account(struct store *st, const char *a)
{
	char *err = NULL;

	assert_int_equal(store_account_add(st, a, "$argon2id$dummy", &err), 0);
	assert_null(err);
}

static void test_domains(void **state)
{
	struct fixture *f = *state;
	struct list l = { .n = 0 };
	char *err = NULL;

	add_domain(f->st, "Example.TEST");
	add_domain(f->st, "another.test");
	assert_int_equal(store_domain_add(f->st, "example.test", &err), -1);
	assert_string_equal(err, "domain example.test: already exists");
	FREE(err);
	assert_int_equal(store_domain_add(f->st, "bad domain", &err), -1);
	FREE(err);
	assert_int_equal(store_domain_add(f->st, "", &err), -1);
	FREE(err);

	assert_int_equal(store_domain_list(f->st, collect_cb, &l, &err), 0);
	assert_int_equal(l.n, 2);
	assert_string_equal(l.items[0], "another.test");
	assert_string_equal(l.items[1], "example.test");

	assert_int_equal(store_domain_is_local(f->st, "EXAMPLE.test"), 1);
	assert_int_equal(store_domain_is_local(f->st, "elsewhere.test"), 0);

	assert_int_equal(store_domain_del(f->st, "ANOTHER.test", &err), 0);
	assert_null(err);
	assert_int_equal(store_domain_del(f->st, "another.test", &err), -1);
	assert_string_equal(err, "domain another.test: no such domain");
	FREE(err);
	assert_int_equal(store_domain_is_local(f->st, "another.test"), 0);

	/* a domain with accounts cannot go */
	add_account(f->st, "a@example.test");
	assert_int_equal(store_domain_del(f->st, "example.test", &err), -1);
	assert_non_null(strstr(err, "account"));
	FREE(err);
}

static void test_accounts(void **state)
{
	static const char *const special[] = { "INBOX", "Drafts", "Sent", "Trash", "Junk",
					       "Archive" };
	struct fixture *f = *state;
	struct account a;
	struct mailbox_info mb;
	struct list l = { .n = 0 };
	uint32_t uidvalidities[ARRAY_LEN(special)];
	char *err = NULL;

	assert_int_equal(store_account_add(f->st, "demo@example.test", "h", &err), -1);
	assert_non_null(strstr(err, "not local"));
	FREE(err);
	assert_int_equal(store_account_add(f->st, "no-at-sign", "h", &err), -1);
	FREE(err);

	add_domain(f->st, "example.test");
	add_account(f->st, "Demo@Example.TEST");
	assert_int_equal(store_account_add(f->st, "demo@example.test", "h", &err), -1);
	assert_string_equal(err, "account demo@example.test: already exists");
	FREE(err);
	add_account(f->st, "other@example.test");

	assert_int_equal(store_account_find(f->st, "DEMO@example.Test", &a), 1);
	assert_string_equal(a.address, "demo@example.test");
	assert_string_equal(a.pw_hash, "$argon2id$dummy");
	assert_null(a.apop_secret);
	assert_true(a.inbox_id > 0);

	for (size_t i = 0; i < ARRAY_LEN(special); i++) {
		assert_int_equal(store_mailbox_find(f->st, a.id, special[i], &mb), 1);
		assert_string_equal(mb.name, special[i]);
		assert_int_equal(mb.uidnext, 1);
		assert_int_equal(mb.messages, 0);
		uidvalidities[i] = mb.uidvalidity;
		for (size_t j = 0; j < i; j++)
			assert_int_not_equal(uidvalidities[j], mb.uidvalidity);
		if (i == 0)
			assert_int_equal(mb.id, a.inbox_id);
		mailbox_info_free(&mb);
	}
	assert_int_equal(store_mailbox_find(f->st, a.id, "inbox", &mb), 1);
	mailbox_info_free(&mb);
	assert_int_equal(store_mailbox_find(f->st, a.id, "Nope", &mb), 0);
	assert_int_equal(store_mailbox_get(f->st, a.inbox_id, &mb), 1);
	assert_string_equal(mb.name, "INBOX");
	mailbox_info_free(&mb);
	account_free(&a);

	assert_int_equal(store_account_set_password(f->st, "demo@EXAMPLE.test", "h2", &err), 0);
	assert_int_equal(store_account_set_apop(f->st, "demo@example.test", "s3cret", &err), 0);
	assert_int_equal(store_account_find(f->st, "demo@example.test", &a), 1);
	assert_string_equal(a.pw_hash, "h2");
	assert_string_equal(a.apop_secret, "s3cret");
	account_free(&a);
	assert_int_equal(store_account_set_apop(f->st, "demo@example.test", NULL, &err), 0);
	assert_int_equal(store_account_find(f->st, "demo@example.test", &a), 1);
	assert_null(a.apop_secret);
	account_free(&a);
	assert_int_equal(store_account_set_password(f->st, "ghost@example.test", "h", &err), -1);
	assert_string_equal(err, "account ghost@example.test: no such account");
	FREE(err);

	assert_int_equal(store_account_list(f->st, collect_cb, &l, &err), 0);
	assert_int_equal(l.n, 2);
	assert_string_equal(l.items[0], "demo@example.test");
	assert_string_equal(l.items[1], "other@example.test");

	assert_int_equal(store_account_del(f->st, "Other@example.test", &err), 0);
	assert_int_equal(store_account_find(f->st, "other@example.test", &a), 0);
	assert_int_equal(store_account_del(f->st, "other@example.test", &err), -1);
	assert_string_equal(err, "account other@example.test: no such account");
	FREE(err);

	/* a recreated account gets fresh UIDVALIDITYs */
	add_account(f->st, "other@example.test");
	assert_int_equal(store_account_find(f->st, "other@example.test", &a), 1);
	assert_int_equal(store_mailbox_find(f->st, a.id, "INBOX", &mb), 1);
	for (size_t j = 0; j < ARRAY_LEN(special); j++)
		assert_int_not_equal(uidvalidities[j], mb.uidvalidity);
	mailbox_info_free(&mb);
	account_free(&a);
}

static void test_resolve_rcpt(void **state)
{
	static const struct {
		const char *name, *input;
		enum rcpt_status want;
	} cases[] = {
		{ "local", "demo@example.test", RCPT_LOCAL },
		{ "local any case", "DeMo@EXAMPLE.test", RCPT_LOCAL },
		{ "unknown user", "nobody@example.test", RCPT_UNKNOWN_USER },
		{ "remote", "demo@elsewhere.test", RCPT_NOT_LOCAL },
		{ "last at sign", "\"a@b\"@example.test", RCPT_UNKNOWN_USER },
	};
	struct fixture *f = *state;
	struct account a;

	add_domain(f->st, "example.test");
	add_account(f->st, "demo@example.test");
	assert_int_equal(store_account_find(f->st, "demo@example.test", &a), 1);
	for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
		struct rcpt_info r;

		print_message("case %s\n", cases[i].name);
		assert_int_equal(store_resolve_rcpt(f->st, cases[i].input, &r), 0);
		assert_int_equal(r.status, cases[i].want);
		if (r.status == RCPT_LOCAL) {
			assert_int_equal(r.account_id, a.id);
			assert_int_equal(r.mailbox_id, a.inbox_id);
			assert_string_equal(r.address, "demo@example.test");
		}
	}
	account_free(&a);
}

static int64_t add_body(struct store_txn *t, const char *rel, int64_t size)
{
	int64_t id = 0;
	char *err = NULL;

	assert_int_equal(store_txn_add_body(t, rel, size, &id, &err), 0);
	assert_null(err);
	return id;
}

static uint32_t append(struct store_txn *t, int64_t mb, int64_t body)
{
	uint32_t uid = 0;
	char *err = NULL;

	assert_int_equal(store_txn_append(t, mb, body, 0, 1700000000, &uid, &err), 0);
	assert_null(err);
	return uid;
}

static void write_file(struct fixture *f, const char *rel, const char *text)
{
	char path[512];
	FILE *fp;

	store_msg_path(f->st, rel, path, sizeof(path));
	fp = fopen(path, "w");
	assert_non_null(fp);
	fputs(text, fp);
	fclose(fp);
}

static bool file_exists(struct fixture *f, const char *rel)
{
	char path[512];

	store_msg_path(f->st, rel, path, sizeof(path));
	return access(path, F_OK) == 0;
}

static void test_txn(void **state)
{
	struct fixture *f = *state;
	struct account a, b;
	struct store_txn *t;
	struct mailbox_info mb;
	struct msg_entry *msgs;
	size_t n, nunlink;
	char **unlink_paths;
	char path[512], *err = NULL;
	int64_t b1, b2, b3, shared;
	uint32_t uids[3];

	add_domain(f->st, "example.test");
	add_account(f->st, "a@example.test");
	add_account(f->st, "b@example.test");
	assert_int_equal(store_account_find(f->st, "a@example.test", &a), 1);
	assert_int_equal(store_account_find(f->st, "b@example.test", &b), 1);

	t = store_txn_begin(f->st, &err);
	assert_non_null(t);
	b1 = add_body(t, "msg/20260101/0000000000000001", 10);
	b2 = add_body(t, "msg/20260101/0000000000000002", 20);
	b3 = add_body(t, "msg/20260101/0000000000000003", 30);
	assert_int_equal(append(t, a.inbox_id, b1), 1);
	assert_int_equal(append(t, a.inbox_id, b2), 2);
	assert_int_equal(append(t, a.inbox_id, b3), 3);
	/* a duplicate path is an error; a savepoint keeps the rest */
	assert_int_equal(store_txn_savepoint(t), 0);
	{
		int64_t dummy;

		assert_int_equal(store_txn_add_body(t, "msg/20260101/0000000000000001", 1,
						    &dummy, &err), -1);
		assert_non_null(err);
		FREE(err);
	}
	store_txn_rollback_to(t);
	assert_int_equal(store_txn_commit(t, &err), 0);

	assert_int_equal(store_mailbox_get(f->st, a.inbox_id, &mb), 1);
	assert_int_equal(mb.uidnext, 4);
	assert_int_equal(mb.messages, 3);
	assert_int_equal(mb.size, 60);
	mailbox_info_free(&mb);
	assert_int_equal(store_mailbox_messages(f->st, a.inbox_id, &msgs, &n), 0);
	assert_int_equal(n, 3);
	for (size_t i = 0; i < n; i++) {
		assert_int_equal(msgs[i].uid, i + 1);
		assert_int_equal(msgs[i].size, (int64_t)(i + 1) * 10);
		assert_int_equal(msgs[i].internaldate, 1700000000);
		assert_int_equal(msgs[i].flags, 0);
	}
	assert_string_equal(msgs[1].path, "msg/20260101/0000000000000002");
	free(msgs);

	/* expunge UID 3, then append: the new UID is 4, never 3 again */
	t = store_txn_begin(f->st, &err);
	uids[0] = 3;
	assert_int_equal(store_txn_expunge(t, a.inbox_id, uids, 1, &unlink_paths, &nunlink,
					   &err), 0);
	assert_int_equal(nunlink, 1);
	assert_string_equal(unlink_paths[0], "msg/20260101/0000000000000003");
	free(unlink_paths[0]);
	free(unlink_paths);
	b3 = add_body(t, "msg/20260101/0000000000000004", 40);
	assert_int_equal(append(t, a.inbox_id, b3), 4);
	/* one body in two mailboxes */
	shared = add_body(t, "msg/20260101/0000000000000005", 50);
	assert_int_equal(append(t, a.inbox_id, shared), 5);
	assert_int_equal(append(t, b.inbox_id, shared), 1);
	assert_int_equal(store_txn_commit(t, &err), 0);

	t = store_txn_begin(f->st, &err);
	uids[0] = 5;
	uids[1] = 999;  /* no such UID: ignored */
	assert_int_equal(store_txn_expunge(t, a.inbox_id, uids, 2, &unlink_paths, &nunlink,
					   &err), 0);
	assert_int_equal(nunlink, 0);
	free(unlink_paths);
	uids[0] = 1;
	assert_int_equal(store_txn_expunge(t, b.inbox_id, uids, 1, &unlink_paths, &nunlink,
					   &err), 0);
	assert_int_equal(nunlink, 1);
	assert_string_equal(unlink_paths[0], "msg/20260101/0000000000000005");
	free(unlink_paths[0]);
	free(unlink_paths);
	assert_int_equal(store_txn_commit(t, &err), 0);

	/* a rolled back transaction leaves nothing */
	t = store_txn_begin(f->st, &err);
	b1 = add_body(t, "msg/20260101/0000000000000006", 60);
	assert_int_equal(append(t, a.inbox_id, b1), 6);
	store_txn_rollback(t);
	t = store_txn_begin(f->st, &err);
	b1 = add_body(t, "msg/20260101/0000000000000006", 60);
	assert_int_equal(append(t, a.inbox_id, b1), 6);
	assert_int_equal(store_txn_commit(t, &err), 0);

	/* account_del unlinks its files */
	store_msg_path(f->st, "msg/20260101", path, sizeof(path));
	assert_int_equal(mkdir(path, 0750), 0);
	write_file(f, "msg/20260101/0000000000000006", "x");
	assert_true(file_exists(f, "msg/20260101/0000000000000006"));
	assert_int_equal(store_account_del(f->st, "a@example.test", &err), 0);
	assert_false(file_exists(f, "msg/20260101/0000000000000006"));
	assert_int_equal(store_mailbox_messages(f->st, a.inbox_id, &msgs, &n), 0);
	assert_int_equal(n, 0);
	free(msgs);
	(void)b2;
	account_free(&a);
	account_free(&b);
}

static void test_set_flags(void **state)
{
	struct fixture *f = *state;
	struct account a;
	struct store_txn *t;
	struct mailbox_info before, after;
	struct msg_entry *msgs;
	size_t n;
	char *err = NULL;
	uint32_t uids[2] = { 1, 2 };
	uint64_t m0;

	add_domain(f->st, "example.test");
	add_account(f->st, "a@example.test");
	assert_int_equal(store_account_find(f->st, "a@example.test", &a), 1);
	t = store_txn_begin(f->st, &err);
	append(t, a.inbox_id, add_body(t, "msg/20260101/00000000000000A1", 1));
	append(t, a.inbox_id, add_body(t, "msg/20260101/00000000000000A2", 1));
	assert_int_equal(store_txn_commit(t, &err), 0);

	assert_int_equal(store_mailbox_get(f->st, a.inbox_id, &before), 1);
	t = store_txn_begin(f->st, &err);
	assert_int_equal(store_txn_set_flags(t, a.inbox_id, uids, 2, FLAG_SEEN | FLAG_FLAGGED, 0,
					     &err), 0);
	assert_int_equal(store_txn_commit(t, &err), 0);
	assert_int_equal(store_mailbox_get(f->st, a.inbox_id, &after), 1);
	assert_true(after.highestmodseq > before.highestmodseq);
	assert_int_equal(store_mailbox_messages(f->st, a.inbox_id, &msgs, &n), 0);
	assert_int_equal(n, 2);
	assert_int_equal(msgs[0].flags, FLAG_SEEN | FLAG_FLAGGED);
	assert_int_equal(msgs[0].modseq, after.highestmodseq);
	m0 = msgs[0].modseq;
	free(msgs);
	mailbox_info_free(&before);

	/* clear one flag on UID 2 only */
	t = store_txn_begin(f->st, &err);
	assert_int_equal(store_txn_set_flags(t, a.inbox_id, &uids[1], 1, FLAG_DELETED,
					     FLAG_FLAGGED, &err), 0);
	assert_int_equal(store_txn_commit(t, &err), 0);
	assert_int_equal(store_mailbox_messages(f->st, a.inbox_id, &msgs, &n), 0);
	assert_int_equal(msgs[0].modseq, m0);
	assert_int_equal(msgs[1].flags, FLAG_SEEN | FLAG_DELETED);
	assert_true(msgs[1].modseq > m0);
	free(msgs);

	/* no change, no new MODSEQ */
	assert_int_equal(store_mailbox_get(f->st, a.inbox_id, &before), 1);
	t = store_txn_begin(f->st, &err);
	assert_int_equal(store_txn_set_flags(t, a.inbox_id, uids, 1, FLAG_SEEN, 0, &err), 0);
	assert_int_equal(store_txn_commit(t, &err), 0);
	mailbox_info_free(&after);
	assert_int_equal(store_mailbox_get(f->st, a.inbox_id, &after), 1);
	assert_int_equal(after.highestmodseq, before.highestmodseq);
	mailbox_info_free(&before);
	mailbox_info_free(&after);
	account_free(&a);
}

static void test_recover(void **state)
{
	struct fixture *f = *state;
	struct account a;
	struct store_txn *t;
	char path[512], *err = NULL;

	add_domain(f->st, "example.test");
	add_account(f->st, "a@example.test");
	assert_int_equal(store_account_find(f->st, "a@example.test", &a), 1);
	store_msg_path(f->st, "msg/20260102", path, sizeof(path));
	assert_int_equal(mkdir(path, 0750), 0);
	store_msg_path(f->st, "msg/20260101", path, sizeof(path));
	assert_int_equal(mkdir(path, 0750), 0);
	write_file(f, "msg/20260102/00000000000000C1", "committed");
	write_file(f, "msg/20260102/00000000000000C2", "crashed");
	write_file(f, "msg/20260101/00000000000000C3", "crashed too");
	t = store_txn_begin(f->st, &err);
	append(t, a.inbox_id, add_body(t, "msg/20260102/00000000000000C1", 9));
	assert_int_equal(store_txn_commit(t, &err), 0);

	assert_int_equal(store_recover(f->st, &err), 0);
	assert_null(err);
	assert_true(file_exists(f, "msg/20260102/00000000000000C1"));
	assert_false(file_exists(f, "msg/20260102/00000000000000C2"));
	assert_false(file_exists(f, "msg/20260101/00000000000000C3"));
	account_free(&a);
}

/* A crash after the commit that dropped a body's last reference but before
 * the unlink: the trash row finishes the job at start-up, even in a day
 * directory store_recover's scan no longer looks at. */
static void test_trash_after_crash(void **state)
{
	struct fixture *f = *state;
	struct account a;
	struct store_txn *t;
	char path[512], *err = NULL, **unl = NULL;
	size_t nunl = 0;
	uint32_t uid;

	add_domain(f->st, "example.test");
	add_account(f->st, "a@example.test");
	assert_int_equal(store_account_find(f->st, "a@example.test", &a), 1);
	for (int i = 0; i < 4; i++) {
		snprintf(path, sizeof(path), "msg/2025010%d", i + 1);
		char full[512];
		store_msg_path(f->st, path, full, sizeof(full));
		assert_int_equal(mkdir(full, 0750), 0);
	}
	write_file(f, "msg/20250101/00000000000000D1", "old mail");
	t = store_txn_begin(f->st, &err);
	uid = append(t, a.inbox_id, add_body(t, "msg/20250101/00000000000000D1", 8));
	assert_int_equal(store_txn_commit(t, &err), 0);

	t = store_txn_begin(f->st, &err);
	assert_int_equal(store_txn_expunge(t, a.inbox_id, &uid, 1, &unl, &nunl, &err), 0);
	assert_int_equal(nunl, 1);
	assert_int_equal(store_txn_commit(t, &err), 0);
	/* "crash": the caller never unlinks */
	free(unl[0]);
	free(unl);
	assert_true(file_exists(f, "msg/20250101/00000000000000D1"));

	assert_int_equal(store_recover(f->st, &err), 0);
	assert_null(err);
	assert_false(file_exists(f, "msg/20250101/00000000000000D1"));
	/* and the row is gone: a second pass has nothing to do */
	assert_int_equal(store_empty_trash(f->st, &err), 0);
	account_free(&a);
}

static void test_reopen(void **state)
{
	struct fixture *f = *state;
	struct store *st2;
	char *err = NULL;

	add_domain(f->st, "example.test");
	/* a second store on the same directory sees the data; migration is a no-op */
	assert_int_equal(store_open(f->dir, &st2, &err), 0);
	assert_int_equal(store_domain_is_local(st2, "example.test"), 1);
	store_close(&st2);
	store_close(NULL);
}

/* Local routing: plus-addressing, catch-all, alias loops, and the caps on
 * what one recipient may expand to. */
static void test_expand(void **state)
{
	struct fixture *f = *state;
	char *err = NULL;
	struct rcpt_expansion x;

	assert_int_equal(store_domain_add(f->st, "ex.test", &err), 0);
	assert_int_equal(store_account_add(f->st, "u@ex.test", "h", &err), 0);
	/* plain account, +tag, unknown, remote */
	assert_int_equal(store_expand_rcpt(f->st, "U@ex.test", '+', &x), 0);
	assert_int_equal(x.status, RCPT_LOCAL);
	assert_int_equal(x.n, 1);
	assert_int_equal(x.v[0].kind, TARGET_LOCAL);
	rcpt_expansion_free(&x);
	assert_int_equal(store_expand_rcpt(f->st, "u+tag@ex.test", '+', &x), 0);
	assert_int_equal(x.n, 1);
	rcpt_expansion_free(&x);
	assert_int_equal(store_expand_rcpt(f->st, "u+tag@ex.test", 0, &x), 0);
	assert_int_equal(x.status, RCPT_UNKNOWN_USER);
	rcpt_expansion_free(&x);
	assert_int_equal(store_expand_rcpt(f->st, "who@else.test", '+', &x), 0);
	assert_int_equal(x.status, RCPT_NOT_LOCAL);
	rcpt_expansion_free(&x);

	/* an alias loop a -> b -> a, with u at the end: one copy for u */
	assert_int_equal(store_alias_add(f->st, "a@ex.test", "b@ex.test", &err), 0);
	assert_int_equal(store_alias_add(f->st, "b@ex.test", "a@ex.test", &err), 0);
	assert_int_equal(store_alias_add(f->st, "b@ex.test", "u@ex.test", &err), 0);
	assert_int_equal(store_alias_add(f->st, "b@ex.test", "r@far.test", &err), 0);
	assert_int_equal(store_expand_rcpt(f->st, "a@ex.test", '+', &x), 0);
	assert_int_equal(x.status, RCPT_LOCAL);
	assert_int_equal(x.n, 2);
	assert_false(x.capped);
	rcpt_expansion_free(&x);
	/* an alias may not shadow an account; the catch-all takes the rest */
	assert_int_equal(store_alias_add(f->st, "u@ex.test", "r@far.test", &err), -1);
	free(err);
	err = NULL;
	assert_int_equal(store_alias_add(f->st, "@ex.test", "u@ex.test", &err), 0);
	assert_int_equal(store_expand_rcpt(f->st, "nobody@ex.test", '+', &x), 0);
	assert_int_equal(x.status, RCPT_LOCAL);
	assert_int_equal(x.n, 1);
	rcpt_expansion_free(&x);

	/* depth: d0 -> d1 -> ... -> d9 -> u is deeper than STORE_EXPAND_DEPTH */
	char k[64], t[64];
	for (int i = 0; i < 10; i++) {
		snprintf(k, sizeof k, "d%d@ex.test", i);
		snprintf(t, sizeof t, "d%d@ex.test", i + 1);
		assert_int_equal(store_alias_add(f->st, k, i == 9 ? "r2@far.test" : t, &err), 0);
	}
	assert_int_equal(store_expand_rcpt(f->st, "d0@ex.test", '+', &x), 0);
	assert_true(x.capped);
	assert_int_equal(x.n, 0);
	assert_int_equal(x.status, RCPT_UNKNOWN_USER);
	rcpt_expansion_free(&x);

	/* breadth: an alias of STORE_EXPAND_MAX + 5 remote targets is cut */
	for (int i = 0; i < STORE_EXPAND_MAX + 5; i++) {
		snprintf(t, sizeof t, "m%d@far.test", i);
		assert_int_equal(store_alias_add(f->st, "big@ex.test", t, &err), 0);
	}
	assert_int_equal(store_expand_rcpt(f->st, "big@ex.test", '+', &x), 0);
	assert_true(x.capped);
	assert_int_equal(x.n, STORE_EXPAND_MAX);
	rcpt_expansion_free(&x);

	/* lists: a target of kind LIST; members and owner read back */
	assert_int_equal(store_list_add(f->st, "team@ex.test", "u@ex.test", &err), 0);
	assert_int_equal(store_list_add(f->st, "u@ex.test", "u@ex.test", &err), -1);
	free(err);
	err = NULL;
	assert_int_equal(store_list_member(f->st, "team@ex.test", "r@far.test", true, &err), 1);
	assert_int_equal(store_list_member(f->st, "team@ex.test", "r@far.test", true, &err), 0);
	assert_int_equal(store_list_member(f->st, "none@ex.test", "r@far.test", true, &err), 0);
	assert_int_equal(store_expand_rcpt(f->st, "team@ex.test", '+', &x), 0);
	assert_int_equal(x.n, 1);
	assert_int_equal(x.v[0].kind, TARGET_LIST);
	rcpt_expansion_free(&x);
	char *owner, **m;
	size_t n;
	assert_int_equal(store_list_members(f->st, "team@ex.test", &owner, &m, &n, &err), 1);
	assert_string_equal(owner, "u@ex.test");
	assert_int_equal(n, 1);
	assert_string_equal(m[0], "r@far.test");
	free(owner);
	free(m[0]);
	free(m);
	assert_int_equal(store_list_del(f->st, "team@ex.test", &err), 1);
	assert_int_equal(store_list_members(f->st, "team@ex.test", &owner, &m, &n, &err), 0);

	/* what u may send as: a and b name... only b names u directly */
	char **own;
	assert_int_equal(store_own_addresses(f->st, "u@ex.test", &own, &n), 0);
	assert_int_equal(n, 1);
	assert_string_equal(own[0], "b@ex.test");
	free(own[0]);
	free(own);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_domains, setup, teardown),
		cmocka_unit_test_setup_teardown(test_accounts, setup, teardown),
		cmocka_unit_test_setup_teardown(test_resolve_rcpt, setup, teardown),
		cmocka_unit_test_setup_teardown(test_txn, setup, teardown),
		cmocka_unit_test_setup_teardown(test_set_flags, setup, teardown),
		cmocka_unit_test_setup_teardown(test_recover, setup, teardown),
		cmocka_unit_test_setup_teardown(test_trash_after_crash, setup, teardown),
		cmocka_unit_test_setup_teardown(test_reopen, setup, teardown),
		cmocka_unit_test_setup_teardown(test_expand, setup, teardown),
	};

	log_init("store_test", LOG_WARN);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
