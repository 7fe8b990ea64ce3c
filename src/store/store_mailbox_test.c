/* store_mailbox_test.c - IMAP mailbox operations on a store in a temporary
 * directory. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/util.h"
#include "store/store.h"

struct fixture {
	char dir[64];
	struct store *st;
	int64_t acct;
	int64_t inbox;
};

static int setup(void **state)
{
	struct fixture *f = xcalloc(1, sizeof(*f));
	struct account a;
	char *err = NULL;

	snprintf(f->dir, sizeof(f->dir), "/tmp/yubin-mbox-test-XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	assert_int_equal(store_open(f->dir, &f->st, &err), 0);
	assert_int_equal(store_domain_add(f->st, "example.test", &err), 0);
	assert_int_equal(store_account_add(f->st, "a@example.test", "$argon2id$x", &err), 0);
	assert_null(err);
	assert_int_equal(store_account_find(f->st, "a@example.test", &a), 1);
	f->acct = a.id;
	f->inbox = a.inbox_id;
	account_free(&a);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	char cmd[128];

	store_close(&f->st);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", f->dir);
	assert_int_equal(system(cmd), 0);
	free(f);
	return 0;
}

/* ---- helpers ---- */

struct mlist {
	char name[64][96];
	char use[64][16];
	unsigned flags[64];
	int n;
};

static void list_cb(const char *name, const char *special_use, unsigned flags, void *arg)
{
	struct mlist *l = arg;

	if (l->n >= 64)
		return;
	snprintf(l->name[l->n], sizeof(l->name[0]), "%s", name);
	snprintf(l->use[l->n], sizeof(l->use[0]), "%s", special_use ? special_use : "");
	l->flags[l->n++] = flags;
}

static void sub_cb(const char *name, void *arg)
{
	struct mlist *l = arg;

	if (l->n < 64)
		snprintf(l->name[l->n++], sizeof(l->name[0]), "%s", name);
}

static void list(struct fixture *f, struct mlist *l)
{
	char *err = NULL;

	memset(l, 0, sizeof(*l));
	assert_int_equal(store_mailbox_list(f->st, f->acct, list_cb, l, &err), 0);
	assert_null(err);
}

/* Flags of name in l, or -1 when absent. */
static int flags_of(const struct mlist *l, const char *name)
{
	for (int i = 0; i < l->n; i++)
		if (strcmp(l->name[i], name) == 0)
			return (int)l->flags[i];
	return -1;
}

static int64_t create(struct fixture *f, const char *name)
{
	int64_t id = 0;
	char *err = NULL;

	assert_int_equal(store_mailbox_create(f->st, f->acct, name, NULL, &id, &err), 0);
	assert_null(err);
	assert_true(id > 0);
	return id;
}

/* Expect a failure of kind want, with a message. */
static void expect_err(int rc, int want, char **err)
{
	assert_int_equal(rc, want);
	assert_non_null(*err);
	assert_true(strlen(*err) > 0);
	FREE(*err);
}

static struct mailbox_info find(struct fixture *f, const char *name)
{
	struct mailbox_info mb;

	assert_int_equal(store_mailbox_find(f->st, f->acct, name, &mb), 1);
	return mb;
}

static bool exists(struct fixture *f, const char *name)
{
	struct mailbox_info mb;
	int rc = store_mailbox_find(f->st, f->acct, name, &mb);

	assert_true(rc >= 0);
	mailbox_info_free(&mb);
	return rc == 1;
}

static void write_body(struct fixture *f, const char *rel)
{
	char path[512];
	FILE *fp;

	store_msg_path(f->st, "msg/20261123", path, sizeof(path));
	(void)mkdir(path, 0750);
	store_msg_path(f->st, rel, path, sizeof(path));
	fp = fopen(path, "w");
	assert_non_null(fp);
	fputs("Subject: x\r\n\r\nx\r\n", fp);
	fclose(fp);
}

static bool file_exists(struct fixture *f, const char *rel)
{
	char path[512];

	store_msg_path(f->st, rel, path, sizeof(path));
	return access(path, F_OK) == 0;
}

/* Store body file rel and append it to every mailbox in mbs (0-terminated). */
static void deliver(struct fixture *f, const char *rel, const int64_t *mbs, uint32_t flags)
{
	struct store_txn *t;
	int64_t body = 0;
	uint32_t uid;
	char *err = NULL;

	write_body(f, rel);
	t = store_txn_begin(f->st, &err);
	assert_non_null(t);
	assert_int_equal(store_txn_add_body(t, rel, 17, &body, &err), 0);
	for (; *mbs; mbs++)
		assert_int_equal(store_txn_append(t, *mbs, body, flags, 1700000000, &uid, &err), 0);
	assert_int_equal(store_txn_commit(t, &err), 0);
	assert_null(err);
}

/* ---- tests ---- */

static void test_create(void **state)
{
	struct fixture *f = *state;
	struct mailbox_info a, b;
	struct mlist l;
	int64_t id = 0;
	char *err = NULL;

	create(f, "Work");
	expect_err(store_mailbox_create(f->st, f->acct, "Work", NULL, &id, &err),
		   STORE_MBOX_EEXISTS, &err);
	expect_err(store_mailbox_create(f->st, f->acct, "INBOX", NULL, &id, &err),
		   STORE_MBOX_EEXISTS, &err);
	expect_err(store_mailbox_create(f->st, f->acct, "iNbOx", NULL, &id, &err),
		   STORE_MBOX_EEXISTS, &err);
	/* other names are case-sensitive */
	create(f, "work");
	/* INBOX normalised as the first component */
	create(f, "inbox/Sub");
	assert_true(exists(f, "INBOX/Sub"));
	/* superiors are created */
	create(f, "A/B/C");
	assert_true(exists(f, "A"));
	assert_true(exists(f, "A/B"));
	expect_err(store_mailbox_create(f->st, f->acct, "A/B", NULL, &id, &err),
		   STORE_MBOX_EEXISTS, &err);
	/* fresh, increasing UIDVALIDITY */
	a = find(f, "A/B");
	b = find(f, "A/B/C");
	assert_true(b.uidvalidity > a.uidvalidity);
	assert_int_equal(b.uidnext, 1);
	mailbox_info_free(&a);
	mailbox_info_free(&b);
	/* special-use */
	assert_int_equal(store_mailbox_create(f->st, f->acct, "Flagged", "\\Flagged", &id, &err), 0);
	expect_err(store_mailbox_create(f->st, f->acct, "Odd", "\\Bogus", &id, &err),
		   STORE_MBOX_EUSEATTR, &err);
	assert_false(exists(f, "Odd"));
	list(f, &l);
	for (int i = 0; i < l.n; i++)
		if (strcmp(l.name[i], "Flagged") == 0)
			assert_string_equal(l.use[i], "\\Flagged");
}

static void test_bad_names(void **state)
{
	static const char *const bad[] = {
		"", "..", ".", "a/../b", "a/./b", "a//b", "/a", "a/", "/",
		"a\001b", "tab\there", "a\x7f", "c1\xc2\x85", "\xff", "\xc0\xaf", "nl\n",
	};
	struct fixture *f = *state;
	struct mlist before, after;
	int64_t id = 0;
	char *err = NULL;

	list(f, &before);
	for (size_t i = 0; i < ARRAY_LEN(bad); i++) {
		expect_err(store_mailbox_create(f->st, f->acct, bad[i], NULL, &id, &err),
			   STORE_MBOX_EBADNAME, &err);
		expect_err(store_mailbox_delete(f->st, f->acct, bad[i], &err),
			   STORE_MBOX_EBADNAME, &err);
		expect_err(store_mailbox_rename(f->st, f->acct, "Sent", bad[i], &err),
			   STORE_MBOX_EBADNAME, &err);
		expect_err(store_mailbox_rename(f->st, f->acct, bad[i], "x", &err),
			   STORE_MBOX_EBADNAME, &err);
		expect_err(store_mailbox_subscribe(f->st, f->acct, bad[i], &err),
			   STORE_MBOX_EBADNAME, &err);
	}
	list(f, &after);
	assert_int_equal(before.n, after.n);
	/* UTF-8 is fine */
	create(f, "Caf\xc3\xa9/\xe6\x97\xa5\xe6\x9c\xac");
}

static void test_limit(void **state)
{
	struct fixture *f = *state;
	char name[512];
	int64_t id = 0;
	char *err = NULL;
	int have = 6;   /* INBOX Drafts Sent Trash Junk Archive */

	/* Deep names make up to 63 mailboxes per call; leave one slot. */
	for (int p = 0; have < STORE_MAILBOX_MAX - 1; p++) {
		int left = STORE_MAILBOX_MAX - 1 - have, levels = left < 63 ? left : 63;
		size_t len = (size_t)snprintf(name, sizeof(name), "p%d", p);

		for (int i = 1; i < levels; i++)
			len += (size_t)snprintf(name + len, sizeof(name) - len, "/%d", i);
		create(f, name);
		have += levels;
	}
	/* needs two, one left */
	expect_err(store_mailbox_create(f->st, f->acct, "x/y", NULL, &id, &err),
		   STORE_MBOX_ELIMIT, &err);
	assert_false(exists(f, "x"));
	create(f, "x");
	expect_err(store_mailbox_create(f->st, f->acct, "z", NULL, &id, &err),
		   STORE_MBOX_ELIMIT, &err);
	/* a rename that creates a superior counts too */
	expect_err(store_mailbox_rename(f->st, f->acct, "x", "q/x", &err),
		   STORE_MBOX_ELIMIT, &err);
	assert_int_equal(store_mailbox_delete(f->st, f->acct, "x", &err), 0);
	create(f, "z");
}

static void test_delete_leaf(void **state)
{
	struct fixture *f = *state;
	int64_t work = create(f, "Work");
	const int64_t both[] = { f->inbox, work, 0 }, only[] = { work, 0 };
	struct msg_entry *arr;
	size_t n;
	char *err = NULL;

	deliver(f, "msg/20261123/SHARED", both, 0);
	deliver(f, "msg/20261123/ONLYWORK", only, FLAG_SEEN);
	assert_int_equal(store_mailbox_delete(f->st, f->acct, "Work", &err), 0);
	assert_null(err);
	assert_false(exists(f, "Work"));
	/* the body still in INBOX stays, the other one goes */
	assert_true(file_exists(f, "msg/20261123/SHARED"));
	assert_false(file_exists(f, "msg/20261123/ONLYWORK"));
	assert_int_equal(store_mailbox_messages(f->st, f->inbox, &arr, &n), 0);
	assert_int_equal(n, 1);
	assert_string_equal(arr[0].path, "msg/20261123/SHARED");
	free(arr);
	assert_int_equal(store_empty_trash(f->st, &err), 0);
	assert_true(file_exists(f, "msg/20261123/SHARED"));

	expect_err(store_mailbox_delete(f->st, f->acct, "Work", &err), STORE_MBOX_ENOENT, &err);
	expect_err(store_mailbox_delete(f->st, f->acct, "INBOX", &err), STORE_MBOX_ECANNOT, &err);
	expect_err(store_mailbox_delete(f->st, f->acct, "inbox", &err), STORE_MBOX_ECANNOT, &err);
	/* a name can be created again, with a new UIDVALIDITY */
	create(f, "Work");
	/* an inferior of INBOX can go */
	create(f, "INBOX/x");
	assert_int_equal(store_mailbox_delete(f->st, f->acct, "inbox/x", &err), 0);
	assert_false(exists(f, "INBOX/x"));
}

static void test_delete_children(void **state)
{
	struct fixture *f = *state;
	int64_t p = create(f, "P"), c = create(f, "P/C");
	const int64_t mbs[] = { p, 0 }, cm[] = { c, 0 };
	struct mailbox_info mb;
	struct mlist l;
	int64_t id = 0;
	char *err = NULL;

	deliver(f, "msg/20261123/INP", mbs, 0);
	deliver(f, "msg/20261123/INC", cm, 0);
	assert_int_equal(store_mailbox_delete(f->st, f->acct, "P", &err), 0);
	assert_null(err);
	/* P stays, \Noselect and empty; its child is untouched */
	mb = find(f, "P");
	assert_int_equal(mb.messages, 0);
	mailbox_info_free(&mb);
	assert_false(file_exists(f, "msg/20261123/INP"));
	assert_true(file_exists(f, "msg/20261123/INC"));
	list(f, &l);
	assert_int_equal(flags_of(&l, "P"), STORE_MBOX_NOSELECT | STORE_MBOX_HASCHILDREN);
	assert_int_equal(flags_of(&l, "P/C"), 0);
	expect_err(store_mailbox_delete(f->st, f->acct, "P", &err), STORE_MBOX_ECANNOT, &err);

	/* the child goes, then the placeholder */
	assert_int_equal(store_mailbox_delete(f->st, f->acct, "P/C", &err), 0);
	assert_false(file_exists(f, "msg/20261123/INC"));
	list(f, &l);
	assert_int_equal(flags_of(&l, "P"), STORE_MBOX_NOSELECT);
	assert_int_equal(store_mailbox_delete(f->st, f->acct, "P", &err), 0);
	assert_false(exists(f, "P"));

	/* CREATE on a \Noselect name makes it selectable again */
	create(f, "Q/R");
	assert_int_equal(store_mailbox_delete(f->st, f->acct, "Q", &err), 0);
	assert_int_equal(store_mailbox_create(f->st, f->acct, "Q", NULL, &id, &err), 0);
	list(f, &l);
	assert_int_equal(flags_of(&l, "Q"), STORE_MBOX_HASCHILDREN);
}

static void test_rename(void **state)
{
	struct fixture *f = *state;
	int64_t ab, id = 0, mbs[2] = { 0, 0 };
	struct mailbox_info before, after;
	struct mlist l;
	char *err = NULL;

	create(f, "A/B/C");
	before = find(f, "A/B");
	ab = mbs[0] = before.id;
	mailbox_info_free(&before);
	create(f, "A/D");
	create(f, "AB");
	create(f, "A B");
	deliver(f, "msg/20261123/R1", mbs, FLAG_FLAGGED);
	before = find(f, "A/B");

	assert_int_equal(store_mailbox_rename(f->st, f->acct, "A", "X/Y", &err), 0);
	assert_null(err);
	list(f, &l);
	assert_int_equal(flags_of(&l, "A"), -1);
	assert_int_equal(flags_of(&l, "A/B"), -1);
	assert_int_equal(flags_of(&l, "X"), STORE_MBOX_HASCHILDREN);
	assert_int_equal(flags_of(&l, "X/Y"), STORE_MBOX_HASCHILDREN);
	assert_int_equal(flags_of(&l, "X/Y/B"), STORE_MBOX_HASCHILDREN);
	assert_int_equal(flags_of(&l, "X/Y/B/C"), 0);
	assert_int_equal(flags_of(&l, "X/Y/D"), 0);
	/* siblings sharing the prefix are not inferiors */
	assert_int_equal(flags_of(&l, "AB"), 0);
	assert_int_equal(flags_of(&l, "A B"), 0);
	/* same mailbox: id, UIDVALIDITY, UIDs and messages kept */
	after = find(f, "X/Y/B");
	assert_int_equal(after.id, ab);
	assert_int_equal(after.uidvalidity, before.uidvalidity);
	assert_int_equal(after.uidnext, before.uidnext);
	assert_int_equal(after.messages, 1);
	mailbox_info_free(&before);
	mailbox_info_free(&after);

	expect_err(store_mailbox_rename(f->st, f->acct, "A", "Z", &err), STORE_MBOX_ENOENT, &err);
	expect_err(store_mailbox_rename(f->st, f->acct, "AB", "X/Y/D", &err), STORE_MBOX_EEXISTS,
		   &err);
	expect_err(store_mailbox_rename(f->st, f->acct, "AB", "inbox", &err), STORE_MBOX_EEXISTS,
		   &err);
	expect_err(store_mailbox_rename(f->st, f->acct, "X", "X/Z", &err), STORE_MBOX_ECANNOT,
		   &err);
	expect_err(store_mailbox_rename(f->st, f->acct, "AB", "AB", &err), STORE_MBOX_EEXISTS,
		   &err);
	/* a rename that would push an inferior past the name limits */
	{
		char deep[200];
		size_t len = 0;

		for (int i = 0; i < 63; i++)
			len += (size_t)snprintf(deep + len, sizeof(deep) - len, "%sd", i ? "/" : "");
		create(f, deep);
		expect_err(store_mailbox_rename(f->st, f->acct, "d", "e/f/g", &err),
			   STORE_MBOX_ELIMIT, &err);
		assert_true(exists(f, "d"));
		assert_false(exists(f, "e"));
	}
	/* a renamed name can be created again */
	assert_int_equal(store_mailbox_create(f->st, f->acct, "A", NULL, &id, &err), 0);
}

static void test_rename_inbox(void **state)
{
	struct fixture *f = *state;
	const int64_t in[] = { f->inbox, 0 };
	struct mailbox_info inbox_before, inbox, old;
	struct msg_entry *arr;
	struct store_txn *t;
	char **paths;
	size_t n, npaths;
	uint32_t uid2 = 2, uid;
	char *err = NULL;

	create(f, "INBOX/Child");
	deliver(f, "msg/20261123/I1", in, FLAG_SEEN);
	deliver(f, "msg/20261123/I2", in, 0);
	deliver(f, "msg/20261123/I3", in, FLAG_ANSWERED);
	t = store_txn_begin(f->st, &err);
	assert_int_equal(store_txn_expunge(t, f->inbox, &uid2, 1, &paths, &npaths, &err), 0);
	assert_int_equal(store_txn_commit(t, &err), 0);
	for (size_t i = 0; i < npaths; i++)
		free(paths[i]);
	free(paths);
	inbox_before = find(f, "INBOX");
	assert_int_equal(inbox_before.uidnext, 4);

	assert_int_equal(store_mailbox_rename(f->st, f->acct, "inbox", "Old/In", &err), 0);
	assert_null(err);
	/* INBOX: empty, same UIDVALIDITY and UIDNEXT, inferiors untouched */
	inbox = find(f, "INBOX");
	assert_int_equal(inbox.id, f->inbox);
	assert_int_equal(inbox.messages, 0);
	assert_int_equal(inbox.uidvalidity, inbox_before.uidvalidity);
	assert_int_equal(inbox.uidnext, 4);
	assert_true(inbox.highestmodseq > inbox_before.highestmodseq);
	assert_true(exists(f, "INBOX/Child"));
	assert_false(exists(f, "Old/In/Child"));
	/* the new mailbox: UIDs from 1 in the old order, flags kept */
	old = find(f, "Old/In");
	assert_true(exists(f, "Old"));
	assert_true(old.uidvalidity > inbox.uidvalidity);
	assert_int_equal(old.messages, 2);
	assert_int_equal(old.uidnext, 3);
	assert_int_equal(store_mailbox_messages(f->st, old.id, &arr, &n), 0);
	assert_int_equal(n, 2);
	assert_int_equal(arr[0].uid, 1);
	assert_string_equal(arr[0].path, "msg/20261123/I1");
	assert_int_equal(arr[0].flags, FLAG_SEEN);
	assert_int_equal(arr[1].uid, 2);
	assert_string_equal(arr[1].path, "msg/20261123/I3");
	assert_int_equal(arr[1].flags, FLAG_ANSWERED);
	free(arr);

	/* INBOX still takes mail, UIDs continue */
	t = store_txn_begin(f->st, &err);
	{
		int64_t body = 0;

		write_body(f, "msg/20261123/I4");
		assert_int_equal(store_txn_add_body(t, "msg/20261123/I4", 17, &body, &err), 0);
		assert_int_equal(store_txn_append(t, f->inbox, body, 0, 1, &uid, &err), 0);
		assert_int_equal(uid, 4);
		assert_int_equal(store_txn_append(t, old.id, body, 0, 1, &uid, &err), 0);
		assert_int_equal(uid, 3);
	}
	assert_int_equal(store_txn_commit(t, &err), 0);
	/* reference counts moved with the messages */
	assert_int_equal(store_mailbox_delete(f->st, f->acct, "Old/In", &err), 0);
	assert_false(file_exists(f, "msg/20261123/I1"));
	assert_false(file_exists(f, "msg/20261123/I3"));
	assert_true(file_exists(f, "msg/20261123/I4"));
	mailbox_info_free(&inbox_before);
	mailbox_info_free(&inbox);
	mailbox_info_free(&old);

	/* renaming an empty INBOX works as well; the target must not exist */
	expect_err(store_mailbox_rename(f->st, f->acct, "INBOX", "Sent", &err),
		   STORE_MBOX_EEXISTS, &err);
	assert_int_equal(store_mailbox_rename(f->st, f->acct, "INBOX", "INBOX/Moved", &err), 0);
	assert_true(exists(f, "INBOX/Moved"));
}

static void test_list_subscribe(void **state)
{
	struct fixture *f = *state;
	static const char *const want[] = {
		"A B", "Archive", "B", "Drafts", "INBOX", "Junk", "Sent", "Trash",
		"a", "a/b", "a0",
	};
	struct mlist l, s;
	char *err = NULL;

	create(f, "B");
	create(f, "a/b");
	create(f, "a0");
	create(f, "A B");
	list(f, &l);
	assert_int_equal(l.n, (int)ARRAY_LEN(want));
	for (size_t i = 0; i < ARRAY_LEN(want); i++)
		assert_string_equal(l.name[i], want[i]);
	assert_int_equal(flags_of(&l, "a"), STORE_MBOX_HASCHILDREN);
	assert_int_equal(flags_of(&l, "a0"), 0);
	assert_string_equal(l.use[1], "\\Archive");
	assert_string_equal(l.use[4], "");

	assert_int_equal(store_mailbox_subscribe(f->st, f->acct, "a/b", &err), 0);
	assert_int_equal(store_mailbox_subscribe(f->st, f->acct, "a/b", &err), 0);
	assert_int_equal(store_mailbox_subscribe(f->st, f->acct, "Ghost/x", &err), 0);
	assert_int_equal(store_mailbox_subscribe(f->st, f->acct, "inbox", &err), 0);
	assert_null(err);
	list(f, &l);
	assert_int_equal(flags_of(&l, "a/b"), STORE_MBOX_SUBSCRIBED);
	assert_int_equal(flags_of(&l, "INBOX"), STORE_MBOX_SUBSCRIBED);
	assert_int_equal(flags_of(&l, "Ghost/x"), -1);
	memset(&s, 0, sizeof(s));
	assert_int_equal(store_mailbox_subscriptions(f->st, f->acct, sub_cb, &s, &err), 0);
	assert_int_equal(s.n, 3);
	assert_string_equal(s.name[0], "Ghost/x");
	assert_string_equal(s.name[1], "INBOX");
	assert_string_equal(s.name[2], "a/b");

	assert_int_equal(store_mailbox_unsubscribe(f->st, f->acct, "Ghost/x", &err), 0);
	expect_err(store_mailbox_unsubscribe(f->st, f->acct, "Ghost/x", &err),
		   STORE_MBOX_ENOENT, &err);
	/* a subscription survives the mailbox */
	assert_int_equal(store_mailbox_delete(f->st, f->acct, "a/b", &err), 0);
	memset(&s, 0, sizeof(s));
	assert_int_equal(store_mailbox_subscriptions(f->st, f->acct, sub_cb, &s, &err), 0);
	assert_int_equal(s.n, 2);
	list(f, &l);
	assert_int_equal(flags_of(&l, "a"), 0);
	assert_null(err);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_create, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bad_names, setup, teardown),
		cmocka_unit_test_setup_teardown(test_limit, setup, teardown),
		cmocka_unit_test_setup_teardown(test_delete_leaf, setup, teardown),
		cmocka_unit_test_setup_teardown(test_delete_children, setup, teardown),
		cmocka_unit_test_setup_teardown(test_rename, setup, teardown),
		cmocka_unit_test_setup_teardown(test_rename_inbox, setup, teardown),
		cmocka_unit_test_setup_teardown(test_list_subscribe, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
