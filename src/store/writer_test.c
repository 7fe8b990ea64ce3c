/* writer_test.c - group commit through a real uv loop and a real store. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/log.h"
#include "core/util.h"
#include "store/store.h"
#include "store/writer.h"

struct fixture {
	char dir[64];
	uv_loop_t loop;
	struct store *st;
	struct store_writer *w;
	int64_t mb[2];
	int done;
};

static int setup(void **state)
{
	struct fixture *f = xcalloc(1, sizeof(*f));
	struct account a;
	char *err = NULL;

	snprintf(f->dir, sizeof(f->dir), "/tmp/yubin-writer-test-XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	assert_int_equal(uv_loop_init(&f->loop), 0);
	assert_int_equal(store_open(f->dir, &f->st, &err), 0);
	assert_int_equal(store_domain_add(f->st, "example.test", &err), 0);
	assert_int_equal(store_account_add(f->st, "a@example.test", "h", &err), 0);
	assert_int_equal(store_account_add(f->st, "b@example.test", "h", &err), 0);
	assert_int_equal(store_account_find(f->st, "a@example.test", &a), 1);
	f->mb[0] = a.inbox_id;
	account_free(&a);
	assert_int_equal(store_account_find(f->st, "b@example.test", &a), 1);
	f->mb[1] = a.inbox_id;
	account_free(&a);
	f->w = store_writer_start(&f->loop, f->st, 64);
	assert_non_null(f->w);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	char cmd[128];

	store_writer_stop(&f->w);
	assert_null(f->w);
	/* let the async handle close */
	assert_int_equal(uv_run(&f->loop, UV_RUN_DEFAULT), 0);
	assert_int_equal(uv_loop_close(&f->loop), 0);
	store_close(&f->st);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", f->dir);
	assert_int_equal(system(cmd), 0);
	free(f);
	return 0;
}

static void run_until(struct fixture *f, int want)
{
	while (f->done < want)
		uv_run(&f->loop, UV_RUN_ONCE);
}

/* ---- deliveries ---- */

#define NDELIVERIES 200

struct test_delivery {
	struct delivery d;
	struct fixture *f;
	char text[64];
	uint32_t uids[2];
	int status;
};

static void delivery_done(struct delivery *d)
{
	struct test_delivery *td = d->arg;

	td->status = d->status;
	if (d->status == 0) {
		assert_non_null(d->uids);
		memcpy(td->uids, d->uids, sizeof(td->uids));
	} else {
		print_message("delivery failed: %s\n", d->error);
	}
	free(d->uids);
	free(d->error);
	td->f->done++;
}

static struct test_delivery *make_deliveries(struct fixture *f, int n, int base)
{
	struct test_delivery *tds = xcalloc((size_t)n, sizeof(*tds));

	for (int i = 0; i < n; i++) {
		struct test_delivery *td = &tds[i];

		td->f = f;
		td->status = 99;
		snprintf(td->d.qid, sizeof(td->d.qid), "%016X", base + i);
		snprintf(td->text, sizeof(td->text), "Subject: %d\r\n\r\nbody %d\r\n", i, i);
		td->d.data = td->text;
		td->d.len = strlen(td->text);
		td->d.mailbox_ids = f->mb;
		td->d.nmailboxes = 2;
		td->d.internaldate = 1700000000 + i;
		td->d.done = delivery_done;
		td->d.arg = td;
	}
	return tds;
}

static void check_file(struct fixture *f, const char *rel, const char *want)
{
	char path[512], got[128];
	FILE *fp;
	size_t n;
	struct stat sb;

	store_msg_path(f->st, rel, path, sizeof(path));
	fp = fopen(path, "rb");
	assert_non_null(fp);
	n = fread(got, 1, sizeof(got) - 1, fp);
	fclose(fp);
	got[n] = '\0';
	assert_string_equal(got, want);
	assert_int_equal(stat(path, &sb), 0);
	assert_int_equal(sb.st_mode & 0777, 0640);
}

static void test_group_commit(void **state)
{
	struct fixture *f = *state;
	struct test_delivery *tds = make_deliveries(f, NDELIVERIES, 0x1000);
	uint64_t ops, commits;
	bool seen[2][NDELIVERIES + 1] = { { false } };

	for (int i = 0; i < NDELIVERIES; i++)
		store_deliver(f->w, &tds[i].d);
	run_until(f, NDELIVERIES);

	for (int i = 0; i < NDELIVERIES; i++) {
		assert_int_equal(tds[i].status, 0);
		for (int m = 0; m < 2; m++) {
			uint32_t uid = tds[i].uids[m];

			assert_true(uid >= 1 && uid <= NDELIVERIES);
			assert_false(seen[m][uid]);
			seen[m][uid] = true;
		}
		check_file(f, tds[i].d.relpath, tds[i].text);
	}
	for (int m = 0; m < 2; m++) {
		struct msg_entry *msgs;
		size_t n;

		assert_int_equal(store_mailbox_messages(f->st, f->mb[m], &msgs, &n), 0);
		assert_int_equal(n, NDELIVERIES);
		for (size_t i = 0; i < n; i++)
			assert_int_equal(msgs[i].uid, i + 1);
		free(msgs);
	}
	store_writer_stats(f->w, &ops, &commits);
	print_message("ops=%llu commits=%llu\n", (unsigned long long)ops,
		      (unsigned long long)commits);
	assert_int_equal(ops, NDELIVERIES);
	assert_true(commits < NDELIVERIES);
	free(tds);
}

/* Count the body files under DIR/msg in one pass: non-empty ones are the
 * return value, empty ones (spares) go to *empty_r.  One pass, because a
 * refill job may be adding spares while we look. */
static int count_body_files(struct fixture *f, int *empty_r)
{
	char cmd[256], line[64];
	int full = 0, empty = 0;

	snprintf(cmd, sizeof(cmd), "find '%s/msg' -type f -printf '%%s\\n'", f->dir);
	FILE *p = popen(cmd, "r");
	assert_non_null(p);
	while (fgets(line, sizeof(line), p))
		if (atol(line) == 0)
			empty++;
		else
			full++;
	pclose(p);
	*empty_r = empty;
	return full;
}

/* Queue ids from store_writer_new_qid: after the first, deliveries go into
 * body files made in advance; the bytes land, and spares nobody took are
 * removed when the writer stops. */
static void test_spare_files(void **state)
{
	struct fixture *f = *state;
	struct test_delivery *tds = make_deliveries(f, 300, 0);
	int spares_used = 0, empty;

	for (int i = 0; i < 300; i++) {
		store_writer_new_qid(f->w, &tds[i].d);
		if (tds[i].d.spare) {
			spares_used++;
			/* the id is the name of the file it goes into */
			assert_non_null(strstr(tds[i].d.relpath, tds[i].d.qid));
		}
		store_deliver(f->w, &tds[i].d);
		/* let the refill job run now and then, as a live daemon would */
		if (i % 50 == 0)
			run_until(f, i + 1);
	}
	run_until(f, 300);
	assert_true(spares_used > 0);
	for (int i = 0; i < 300; i++) {
		assert_int_equal(tds[i].status, 0);
		check_file(f, tds[i].d.relpath, tds[i].text);
	}
	int files = count_body_files(f, &empty);
	assert_true(empty > 0);          /* unused spares wait on disk */
	assert_int_equal(files, 300);
	store_writer_stop(&f->w);
	assert_int_equal(uv_run(&f->loop, UV_RUN_DEFAULT), 0);
	files = count_body_files(f, &empty);
	assert_int_equal(empty, 0);      /* and are gone after stop */
	assert_int_equal(files, 300);
	free(tds);
}

static void test_delivery_failure(void **state)
{
	struct fixture *f = *state;
	struct test_delivery *tds = make_deliveries(f, 2, 0x2000);
	int64_t bad_mb[1] = { 999999 };
	char path[512];

	/* second delivery goes to a mailbox that does not exist */
	tds[1].d.mailbox_ids = bad_mb;
	tds[1].d.nmailboxes = 1;
	store_deliver(f->w, &tds[0].d);
	store_deliver(f->w, &tds[1].d);
	run_until(f, 2);
	assert_int_equal(tds[0].status, 0);
	assert_int_equal(tds[1].status, -1);
	/* its body file is gone */
	store_msg_path(f->st, tds[1].d.relpath, path, sizeof(path));
	assert_int_not_equal(access(path, F_OK), 0);

	/* same queue id twice: O_EXCL refuses to reuse the first file, and
	 * the second delivery takes a fresh id instead of failing */
	tds[1].d.mailbox_ids = f->mb;
	tds[1].d.nmailboxes = 2;
	memcpy(tds[1].d.qid, tds[0].d.qid, sizeof(tds[1].d.qid));
	f->done = 0;
	store_deliver(f->w, &tds[1].d);
	run_until(f, 1);
	assert_int_equal(tds[1].status, 0);
	assert_string_not_equal(tds[1].d.qid, tds[0].d.qid);
	check_file(f, tds[0].d.relpath, tds[0].text);
	check_file(f, tds[1].d.relpath, tds[1].text);
	free(tds);
}

/* ---- generic operations ---- */

struct test_op {
	struct store_op op;
	struct fixture *f;
	int64_t mailbox_id;
	const char *path;
	bool fail;
	bool committed;
	uv_sem_t *started, *go;     /* for a blocking op */
	uint32_t uid;
};

static int op_apply(struct store_op *op, struct store_txn *t, char **error_r)
{
	struct test_op *to = op->arg;
	int64_t body;

	if (to->started) {
		uv_sem_post(to->started);
		uv_sem_wait(to->go);
	}
	if (store_txn_add_body(t, to->path, 5, &body, error_r) < 0)
		return -1;
	if (store_txn_append(t, to->mailbox_id, body, FLAG_SEEN, 1, &to->uid, error_r) < 0)
		return -1;
	if (to->fail) {
		*error_r = xstrdup("told to fail");
		return -1;
	}
	return 0;
}

static void op_after_commit(struct store_op *op, struct store *st)
{
	struct test_op *to = op->arg;

	to->committed = true;
}

static void op_done(struct store_op *op)
{
	struct test_op *to = op->arg;

	to->f->done++;
}

static void init_op(struct test_op *to, struct fixture *f, const char *path, bool fail)
{
	memset(to, 0, sizeof(*to));
	to->f = f;
	to->mailbox_id = f->mb[0];
	to->path = path;
	to->fail = fail;
	to->op.apply = op_apply;
	to->op.after_commit = op_after_commit;
	to->op.done = op_done;
	to->op.arg = to;
}

static void test_ops(void **state)
{
	struct fixture *f = *state;
	struct test_op ops[4];
	uv_sem_t started, go;
	struct msg_entry *msgs;
	size_t n;
	uint64_t nops, commits0, commits;

	assert_int_equal(uv_sem_init(&started, 0), 0);
	assert_int_equal(uv_sem_init(&go, 0), 0);
	/* ops[0] holds the writer thread until the three others are queued, so
	 * that they land in one batch */
	init_op(&ops[0], f, "msg/x/0", false);
	ops[0].started = &started;
	ops[0].go = &go;
	init_op(&ops[1], f, "msg/x/1", false);
	init_op(&ops[2], f, "msg/x/2", true);
	init_op(&ops[3], f, "msg/x/3", false);
	store_submit(f->w, &ops[0].op);
	uv_sem_wait(&started);
	store_writer_stats(f->w, &nops, &commits0);
	for (int i = 1; i < 4; i++)
		store_submit(f->w, &ops[i].op);
	uv_sem_post(&go);
	run_until(f, 4);

	for (int i = 0; i < 4; i++) {
		bool ok = i != 2;

		assert_int_equal(ops[i].op.status, ok ? 0 : -1);
		assert_int_equal(ops[i].committed, ok);
	}
	assert_string_equal(ops[2].op.error, "told to fail");
	free(ops[2].op.error);
	store_writer_stats(f->w, &nops, &commits);
	assert_int_equal(nops, 3);
	assert_int_equal(commits, commits0 + 2);
	/* the failed op left nothing behind; the others kept their UIDs */
	assert_int_equal(store_mailbox_messages(f->st, f->mb[0], &msgs, &n), 0);
	assert_int_equal(n, 3);
	assert_string_equal(msgs[0].path, "msg/x/0");
	assert_string_equal(msgs[1].path, "msg/x/1");
	assert_string_equal(msgs[2].path, "msg/x/3");
	assert_int_equal(msgs[2].uid, 3);
	assert_int_equal(msgs[2].flags, FLAG_SEEN);
	free(msgs);
	uv_sem_destroy(&started);
	uv_sem_destroy(&go);
}

static void test_stop_with_work_queued(void **state)
{
	struct fixture *f = *state;
	struct test_delivery *tds = make_deliveries(f, 50, 0x3000);
	struct test_op op;

	for (int i = 0; i < 50; i++)
		store_deliver(f->w, &tds[i].d);
	init_op(&op, f, "msg/x/stop", false);
	store_submit(f->w, &op.op);
	/* stop before the loop ever ran: everything must still complete */
	store_writer_stop(&f->w);
	assert_null(f->w);
	assert_int_equal(uv_run(&f->loop, UV_RUN_DEFAULT), 0);
	assert_int_equal(f->done, 51);
	for (int i = 0; i < 50; i++)
		assert_int_equal(tds[i].status, 0);
	assert_int_equal(op.op.status, 0);
	assert_true(op.committed);
	free(tds);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_group_commit, setup, teardown),
		cmocka_unit_test_setup_teardown(test_delivery_failure, setup, teardown),
		cmocka_unit_test_setup_teardown(test_spare_files, setup, teardown),
		cmocka_unit_test_setup_teardown(test_ops, setup, teardown),
		cmocka_unit_test_setup_teardown(test_stop_with_work_queued, setup, teardown),
	};

	log_init("writer_test", LOG_WARN);
	if (getenv("YUBIN_TEST_DEBUG"))
		log_set_level(LOG_DEBUG);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
