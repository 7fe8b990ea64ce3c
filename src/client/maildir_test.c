/* maildir_test.c - maildir_create and maildir_deliver. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <dirent.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "client/maildir.h"

static char root[256];

static int setup(void **state)
{
	(void)state;
	snprintf(root, sizeof root, "/tmp/yubin-maildir-test-XXXXXX");
	if (!mkdtemp(root))
		return -1;
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	char cmd[PATH_MAX + 20];
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", root);
	return system(cmd) == 0 ? 0 : -1;
}

static size_t count_entries(const char *dir)
{
	DIR *d = opendir(dir);
	assert_non_null(d);
	size_t n = 0;
	struct dirent *e;
	while ((e = readdir(d)) != NULL)
		if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0)
			n++;
	closedir(d);
	return n;
}

static void test_create(void **state)
{
	(void)state;
	char md[PATH_MAX], p[PATH_MAX + 8];
	snprintf(md, sizeof md, "%s/a/b/Mail", root);
	assert_int_equal(maildir_create(md), 0);
	assert_int_equal(maildir_create(md), 0);          /* again: fine */
	static const char *const sub[] = {"cur", "new", "tmp"};
	for (int i = 0; i < 3; i++) {
		struct stat st;
		snprintf(p, sizeof p, "%s/%s", md, sub[i]);
		assert_int_equal(stat(p, &st), 0);
		assert_true(S_ISDIR(st.st_mode));
		assert_int_equal(st.st_mode & 0777, 0700);
	}
	/* a file in the way */
	snprintf(p, sizeof p, "%s/file", root);
	int fd = open(p, O_CREAT | O_WRONLY, 0600);
	assert_true(fd >= 0);
	close(fd);
	assert_int_equal(maildir_create(p), -1);
}

static void test_deliver_bytes(void **state)
{
	(void)state;
	char md[300], name[MAILDIR_NAME_MAX], err[512], p[300 + 8 + MAILDIR_NAME_MAX];
	snprintf(md, sizeof md, "%s/M", root);
	assert_int_equal(maildir_create(md), 0);
	const char msg[] = "Subject: hi\n\nbody\0with nul\n";
	assert_int_equal(maildir_deliver(md, msg, sizeof msg - 1, name, sizeof name, err,
					 sizeof err), 0);
	assert_null(strchr(name, '/'));
	snprintf(p, sizeof p, "%s/new/%s", md, name);
	FILE *f = fopen(p, "rb");
	assert_non_null(f);
	char got[256];
	size_t n = fread(got, 1, sizeof got, f);
	fclose(f);
	assert_int_equal(n, sizeof msg - 1);
	assert_memory_equal(got, msg, n);
	struct stat st;
	assert_int_equal(stat(p, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
	snprintf(p, sizeof p, "%s/tmp", md);
	assert_int_equal(count_entries(p), 0);
	/* empty message */
	assert_int_equal(maildir_deliver(md, "", 0, NULL, 0, err, sizeof err), 0);
	snprintf(p, sizeof p, "%s/new", md);
	assert_int_equal(count_entries(p), 2);
}

static void test_unique_names(void **state)
{
	(void)state;
	char md[PATH_MAX], err[512], p[PATH_MAX + 8];
	snprintf(md, sizeof md, "%s/U", root);
	assert_int_equal(maildir_create(md), 0);
	char (*names)[MAILDIR_NAME_MAX] = calloc(1000, MAILDIR_NAME_MAX);
	assert_non_null(names);
	for (int i = 0; i < 1000; i++)
		assert_int_equal(maildir_deliver(md, "x\n", 2, names[i], MAILDIR_NAME_MAX, err,
						 sizeof err), 0);
	for (int i = 0; i < 1000; i++)
		for (int j = i + 1; j < 1000; j++)
			assert_string_not_equal(names[i], names[j]);
	free(names);
	snprintf(p, sizeof p, "%s/new", md);
	assert_int_equal(count_entries(p), 1000);
	snprintf(p, sizeof p, "%s/tmp", md);
	assert_int_equal(count_entries(p), 0);
}

static void test_missing_maildir(void **state)
{
	(void)state;
	char md[PATH_MAX], err[512] = "";
	snprintf(md, sizeof md, "%s/nothere", root);
	assert_int_equal(maildir_deliver(md, "x", 1, NULL, 0, err, sizeof err), -1);
	assert_non_null(strstr(err, "nothere/tmp/"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_create),
		cmocka_unit_test(test_deliver_bytes),
		cmocka_unit_test(test_unique_names),
		cmocka_unit_test(test_missing_maildir),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
