/* mbox_maildir_test.c - the Maildir backend of mbox.h: numbering, flags
 * (renames), move, remove to Trash and expunge, folder name checks,
 * folders, search, append, size limit, symlinks; and mbox.c's helpers.
 * Each test gets a fresh Maildir written file by file. */
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
#include <sys/time.h>
#include <unistd.h>

#include "client/mbox.h"

static char root[256];
static char md[300];

static int setup(void **state)
{
	(void)state;
	snprintf(root, sizeof root, "/tmp/yubin-mbox-test-XXXXXX");
	if (!mkdtemp(root))
		return -1;
	snprintf(md, sizeof md, "%s/Mail", root);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	char cmd[PATH_MAX + 20];
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", root);
	return system(cmd) == 0 ? 0 : -1;
}

static void mkdirs(const char *rel)
{
	char p[PATH_MAX];
	static const char *const sub[] = {"", "/cur", "/new", "/tmp"};
	for (int i = 0; i < 4; i++) {
		snprintf(p, sizeof p, "%s/%s%s", md, rel, sub[i]);
		mkdir(p, 0700);
	}
}

static void path_of(const char *rel, char *out, size_t outsz)
{
	snprintf(out, outsz, "%s/%s", md, rel);
}

/* Write md/rel; mtime when not 0. */
static void put(const char *rel, const char *text, time_t mtime)
{
	char p[PATH_MAX];
	path_of(rel, p, sizeof p);
	FILE *f = fopen(p, "wb");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
	if (mtime) {
		struct timeval tv[2] = {{mtime, 0}, {mtime, 0}};
		assert_int_equal(utimes(p, tv), 0);
	}
}

static bool exists(const char *rel)
{
	char p[PATH_MAX];
	struct stat st;
	path_of(rel, p, sizeof p);
	return lstat(p, &st) == 0;
}

static size_t count_files(const char *rel)
{
	char p[PATH_MAX];
	path_of(rel, p, sizeof p);
	DIR *d = opendir(p);
	if (!d)
		return 0;
	size_t n = 0;
	struct dirent *e;
	while ((e = readdir(d)) != NULL)
		if (e->d_name[0] != '.')
			n++;
	closedir(d);
	return n;
}

static struct mbox *open_md(void)
{
	char err[256];
	struct mbox *mb = mbox_maildir_open(md, err, sizeof err);
	assert_non_null(mb);
	assert_string_equal(mb->kind, "maildir");
	return mb;
}

/* Subjects of folder's listing, space separated. */
static void subjects(struct mbox *mb, const char *folder, char *out, size_t outsz)
{
	struct mbox_msg *v;
	size_t n;
	bool temp = true;
	char err[256];
	assert_int_equal(mb->ops->list(mb, folder, &v, &n, &temp, err, sizeof err), 0);
	assert_false(temp);
	out[0] = '\0';
	for (size_t i = 0; i < n; i++) {
		assert_int_equal(v[i].n, i + 1);
		size_t l = strlen(out);
		snprintf(out + l, outsz - l, "%s%s", i ? " " : "", v[i].subject);
	}
	mbox_msgs_free(v, n);
}

/* The usual five messages: numbered a b c d e by date. */
static void five(void)
{
	mkdirs("");
	put("cur/3000.M1P1.h:2,S", "Subject: c\nDate: Wed, 3 Jan 2024 10:00:00 +0000\n\nc\n", 0);
	put("new/1000.M1P1.h", "Subject: a\nDate: Mon, 1 Jan 2024 10:00:00 +0000\n\na\n", 0);
	put("cur/5000.M1P1.h:2,FS", "Subject: e\nDate: 5 Jan 2024 10:00 GMT\n\ne\n", 0);
	put("cur/2000.M1P1.h:2,", "Subject: b\nDate: Tue, 2 Jan 2024 11:00:00 +0100\n\nb\n", 0);
	put("new/4000.M1P1.h", "Subject: d\n\nno date: the mtime\n", 1704362400); /* 4 Jan */
}

static void test_flags_letters(void **state)
{
	(void)state;
	static const struct {
		unsigned flags;
		const char *want;
	} cases[] = {
		{0, ""},
		{MBOX_SEEN, "S"},
		{MBOX_RECENT, "N"},
		{MBOX_SEEN | MBOX_FLAGGED, "SF"},
		{MBOX_DRAFT | MBOX_DELETED | MBOX_FLAGGED | MBOX_ANSWERED | MBOX_SEEN |
			 MBOX_RECENT,
		 "NSRFTD"},
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		char out[8];
		mbox_flags_letters(cases[i].flags, out);
		assert_string_equal(out, cases[i].want);
	}
	mbox_msgs_free(NULL, 0);
	mbox_folders_free(NULL, 0);
}

static void test_numbering(void **state)
{
	(void)state;
	five();
	/* the same date as c: the mtime decides, then the name */
	put("cur/0001.M1P1.h:2,S", "Subject: c2\nDate: Wed, 3 Jan 2024 10:00:00 +0000\n\n",
	    2000000000);
	put("cur/0002.M1P1.h:2,S", "Subject: c1\nDate: Wed, 3 Jan 2024 10:00:00 +0000\n\n",
	    1700000000);
	put("cur/0003.M1P1.h:2,S", "Subject: c0\nDate: Wed, 3 Jan 2024 10:00:00 +0000\n\n",
	    1700000000);
	put("cur/.hidden", "Subject: hidden\n\n", 0);
	struct mbox *mb = open_md();
	char got[256];
	/* c (mtime now) sorts after c1 and c0 (2023) and before c2 (2033) */
	subjects(mb, NULL, got, sizeof got);
	assert_string_equal(got, "a b c1 c0 c c2 d e");
	struct mbox_msg *v;
	size_t n;
	char err[256];
	assert_int_equal(mb->ops->list(mb, "INBOX", &v, &n, NULL, err, sizeof err), 0);
	assert_int_equal(n, 8);
	assert_int_equal(v[0].flags, MBOX_RECENT);
	assert_int_equal(v[0].date, 1704103200);
	assert_int_equal(v[1].date, 1704189600);   /* +0100 */
	assert_int_equal(v[6].date, 1704362400);   /* mtime */
	assert_int_equal(v[7].flags, MBOX_SEEN | MBOX_FLAGGED);
	assert_int_equal(v[7].date, 1704448800);
	assert_int_equal(v[0].uid, 0);
	assert_int_equal(v[0].size,
			 strlen("Subject: a\nDate: Mon, 1 Jan 2024 10:00:00 +0000\n\na\n"));
	mbox_msgs_free(v, n);
	/* a Maildir that is not there yet: an empty INBOX */
	char err2[256];
	struct mbox *none = mbox_maildir_open("/tmp/yubin-no-such-maildir/x", err2, sizeof err2);
	assert_non_null(none);
	assert_int_equal(none->ops->list(none, NULL, &v, &n, NULL, err, sizeof err), 0);
	assert_int_equal(n, 0);
	none->ops->close(none);
	mb->ops->close(mb);
}

static void test_decoded_fields(void **state)
{
	(void)state;
	mkdirs("");
	put("cur/1.M1P1.h:2,S",
	    "From: =?UTF-8?B?5bGx55Sw?= <yamada@example.jp>\n"
	    "To: =?ISO-2022-JP?B?GyRCOzNFRBsoQg==?= <x@y>\n"
	    "Subject: =?UTF-8?Q?caf=C3=A9?= bell\x07 \xff\n"
	    "Message-ID: <abc@example.jp>\n\nbody\n", 0);
	struct mbox *mb = open_md();
	struct mbox_msg *v;
	size_t n;
	char err[256];
	assert_int_equal(mb->ops->list(mb, NULL, &v, &n, NULL, err, sizeof err), 0);
	assert_int_equal(n, 1);
	assert_string_equal(v[0].from, "山田 <yamada@example.jp>");
	assert_string_equal(v[0].to, "山田 <x@y>");
	assert_string_equal(v[0].subject, "café bell  \xef\xbf\xbd");
	assert_string_equal(v[0].message_id, "<abc@example.jp>");
	mbox_msgs_free(v, n);
	mb->ops->close(mb);
}

static void test_fetch_and_flags(void **state)
{
	(void)state;
	five();
	struct mbox *mb = open_md();
	char *data, err[512];
	size_t len;
	bool temp = true;
	/* peek: nothing moves */
	assert_int_equal(mb->ops->fetch(mb, NULL, 1, true, &data, &len, &temp, err, sizeof err),
			 0);
	assert_false(temp);
	assert_string_equal(data, "Subject: a\nDate: Mon, 1 Jan 2024 10:00:00 +0000\n\na\n");
	assert_int_equal(len, strlen(data));
	free(data);
	assert_true(exists("new/1000.M1P1.h"));
	/* read: to cur/ with S */
	assert_int_equal(mb->ops->fetch(mb, NULL, 1, false, &data, &len, NULL, err, sizeof err),
			 0);
	free(data);
	assert_false(exists("new/1000.M1P1.h"));
	assert_true(exists("cur/1000.M1P1.h:2,S"));
	/* out of range */
	assert_int_equal(mb->ops->fetch(mb, NULL, 9, false, &data, &len, &temp, err, sizeof err),
			 -1);
	assert_string_equal(err, "no message 9 (5 in INBOX)");
	assert_false(temp);

	static const struct {
		uint32_t ns[3];
		size_t count;
		unsigned add, remove;
		const char *gone, *there;
	} cases[] = {
		/* b (no flags) gets F and R: letters in ASCII order */
		{{2}, 1, MBOX_FLAGGED | MBOX_ANSWERED, 0, "cur/2000.M1P1.h:2,",
		 "cur/2000.M1P1.h:2,FR"},
		/* e and c lose S and get T; then c swaps T for D */
		{{5, 3}, 2, MBOX_DELETED, MBOX_SEEN, "cur/5000.M1P1.h:2,FS",
		 "cur/5000.M1P1.h:2,FT"},
		{{3}, 1, MBOX_DRAFT | MBOX_SEEN, MBOX_DELETED, "cur/3000.M1P1.h:2,T",
		 "cur/3000.M1P1.h:2,DS"},
		/* d in new/: into cur/ */
		{{4, 4}, 2, MBOX_SEEN, 0, "new/4000.M1P1.h", "cur/4000.M1P1.h:2,S"},
		/* added and removed: removed */
		{{1}, 1, MBOX_FLAGGED, MBOX_FLAGGED | MBOX_SEEN, "cur/1000.M1P1.h:2,S",
		 "cur/1000.M1P1.h:2,"},
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		assert_int_equal(mb->ops->set_flags(mb, NULL, cases[i].ns, cases[i].count,
						    cases[i].add, cases[i].remove, NULL, false,
						    NULL, err, sizeof err), 0);
		assert_false(exists(cases[i].gone));
		assert_true(exists(cases[i].there));
	}
	/* other info letters are kept */
	put("cur/6000.M1P1.h:2,PS", "Subject: f\nDate: 6 Jan 2024 10:00 GMT\n\n", 0);
	uint32_t six = 6;
	assert_int_equal(mb->ops->set_flags(mb, NULL, &six, 1, MBOX_FLAGGED, 0, NULL, false, NULL,
					    err, sizeof err), 0);
	assert_true(exists("cur/6000.M1P1.h:2,FPS"));
	/* numbers are kept across renames */
	char got[64];
	subjects(mb, NULL, got, sizeof got);
	assert_string_equal(got, "a b c d e f");
	/* a keyword, a bad number: errors, nothing changed */
	assert_int_equal(mb->ops->set_flags(mb, NULL, &six, 1, MBOX_SEEN, 0, "$Junk", true, &temp,
					    err, sizeof err), -1);
	assert_non_null(strstr(err, "a Maildir has no keywords"));
	uint32_t bad[] = {1, 7};
	assert_int_equal(mb->ops->set_flags(mb, NULL, bad, 2, MBOX_SEEN, 0, NULL, false, &temp,
					    err, sizeof err), -1);
	assert_string_equal(err, "no message 7 (6 in INBOX)");
	assert_true(exists("cur/1000.M1P1.h:2,"));
	mb->ops->close(mb);
}

static void test_move(void **state)
{
	(void)state;
	five();
	mkdirs(".Lists");
	mkdirs(".Lists.dev");
	struct mbox *mb = open_md();
	char err[512], got[64];
	bool temp = true;
	/* 3 and 4 of one listing (c, d), 4 given twice */
	uint32_t ns[] = {3, 4, 4};
	assert_int_equal(mb->ops->move(mb, NULL, ns, 3, "Lists/dev", &temp, err, sizeof err), 0);
	assert_false(temp);
	assert_true(exists(".Lists.dev/cur/3000.M1P1.h:2,S"));
	assert_true(exists(".Lists.dev/cur/4000.M1P1.h:2,"));
	subjects(mb, NULL, got, sizeof got);
	assert_string_equal(got, "a b e");
	subjects(mb, "Lists/dev", got, sizeof got);
	assert_string_equal(got, "c d");
	/* and back to INBOX */
	uint32_t one = 1;
	assert_int_equal(mb->ops->move(mb, "Lists/dev", &one, 1, "inbox", NULL, err, sizeof err),
			 0);
	assert_true(exists("cur/3000.M1P1.h:2,S"));
	/* errors: nothing moves */
	static const struct {
		const char *from, *dest, *err;
	} bad[] = {
		{NULL, "Archive", "no folder \"Archive\" (yubin folders lists them)"},
		{"Nope", "Lists", "no folder \"Nope\" (yubin folders lists them)"},
		{NULL, "INBOX", "the messages are in \"INBOX\" already"},
		{NULL, "../x", "folder name \"../x\": \"..\" is not allowed"},
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		assert_int_equal(mb->ops->move(mb, bad[i].from, &one, 1, bad[i].dest, &temp, err,
					       sizeof err), -1);
		assert_string_equal(err, bad[i].err);
		assert_false(temp);
	}
	uint32_t nine = 9;
	assert_int_equal(mb->ops->move(mb, NULL, &nine, 1, "Lists", NULL, err, sizeof err), -1);
	assert_string_equal(err, "no message 9 (4 in INBOX)");
	assert_int_equal(count_files(".Lists/cur") + count_files(".Lists/new"), 0);
	mb->ops->close(mb);
}

static void test_remove(void **state)
{
	(void)state;
	five();
	struct mbox *mb = open_md();
	char err[512], got[64];
	uint32_t ns[] = {4, 3};
	/* no Trash yet: made, as a Maildir++ folder */
	assert_int_equal(mb->ops->remove(mb, NULL, ns, 2, false, NULL, err, sizeof err), 0);
	assert_true(exists(".Trash/maildirfolder"));
	assert_true(exists(".Trash/tmp"));
	assert_true(exists(".Trash/cur/3000.M1P1.h:2,S"));
	assert_true(exists(".Trash/cur/4000.M1P1.h:2,"));
	subjects(mb, NULL, got, sizeof got);
	assert_string_equal(got, "a b e");
	/* from Trash: for good */
	uint32_t one = 1;
	assert_int_equal(mb->ops->remove(mb, "Trash", &one, 1, false, NULL, err, sizeof err), 0);
	subjects(mb, "Trash", got, sizeof got);
	assert_string_equal(got, "d");
	/* --expunge */
	uint32_t two = 2;
	assert_int_equal(mb->ops->remove(mb, NULL, &two, 1, true, NULL, err, sizeof err), 0);
	assert_false(exists("cur/2000.M1P1.h:2,"));
	subjects(mb, NULL, got, sizeof got);
	assert_string_equal(got, "a e");
	subjects(mb, "Trash", got, sizeof got);
	assert_string_equal(got, "d");
	mb->ops->close(mb);
}

static void test_existing_trash_lowercase(void **state)
{
	(void)state;
	five();
	mkdirs(".trash");
	struct mbox *mb = open_md();
	char err[512];
	uint32_t one = 1;
	assert_int_equal(mb->ops->remove(mb, NULL, &one, 1, false, NULL, err, sizeof err), 0);
	assert_true(exists(".trash/cur/1000.M1P1.h:2,"));
	assert_false(exists(".Trash"));
	mb->ops->close(mb);
}

static void test_folder_names(void **state)
{
	(void)state;
	five();
	struct mbox *mb = open_md();
	char long_name[300];
	memset(long_name, 'a', 256);
	long_name[256] = '\0';
	static const struct {
		const char *name;
		const char *err; /* substring */
	} cases[] = {
		{"../x", "\"..\" is not allowed"},
		{"a/../b", "\"..\" is not allowed"},
		{"..", "\"..\" is not allowed"},
		{".hidden", "starts with '.'"},
		{"/abs", "starts or ends with '/'"},
		{"trail/", "starts or ends with '/'"},
		{"a//b", "empty level"},
		{"bad\x01name", "\"bad name\" holds a control character"},
		{"esc\x1b[31m", "control character"},
		{"del\x7f", "control character"},
		{"", "an empty folder name"},
		{"not\xffutf8", "is not UTF-8"},
		{"a.b", "cannot hold '.'"},
		{"Missing", "no folder \"Missing\" (yubin folders lists them)"},
		{"A/b", "no folder \"A/b\""},
		{NULL, NULL}, /* the long name */
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		const char *name = cases[i].name ? cases[i].name : long_name;
		const char *want = cases[i].err ? cases[i].err : "longer than 255 bytes";
		struct mbox_msg *v;
		size_t n;
		char err[512] = "";
		bool temp = true;
		assert_int_equal(mb->ops->list(mb, name, &v, &n, &temp, err, sizeof err), -1);
		assert_false(temp);
		if (!strstr(err, want))
			fail_msg("%s: got \"%s\", want \"%s\"", name, err, want);
		assert_null(strchr(err, '\x1b'));
		assert_int_equal(mb->ops->append(mb, name, NULL, "x\n", 2, 0, NULL, err,
						 sizeof err), -1);
		assert_non_null(strstr(err, want));
	}
	/* INBOX in any case is DIR */
	char got[64];
	subjects(mb, "iNbOx", got, sizeof got);
	assert_string_equal(got, "a b c d e");
	mb->ops->close(mb);
}

static void test_folders(void **state)
{
	(void)state;
	five();
	mkdirs(".Sent");
	mkdirs(".Lists");
	mkdirs(".Lists.dev");
	mkdirs(".Spam");
	mkdirs(".Archive");
	put(".Sent/cur/1.M1P1.h:2,S", "Subject: s\n\n", 0);
	put(".Sent/new/2.M1P1.h", "Subject: s2\n\n", 0);
	put(".Lists.dev/cur/3.M1P1.h:2,RS", "Subject: l\n\n", 0);
	char p[PATH_MAX];
	path_of(".NotMaildir", p, sizeof p);
	mkdir(p, 0700);
	path_of(".Link", p, sizeof p);
	assert_int_equal(symlink(root, p), 0);
	put(".file", "x", 0);
	struct mbox *mb = open_md();
	struct mbox_folder *v;
	size_t n;
	char err[256];
	bool temp = true;
	assert_int_equal(mb->ops->folders(mb, &v, &n, &temp, err, sizeof err), 0);
	assert_false(temp);
	static const struct {
		const char *name, *special;
		int64_t total, unseen;
	} want[] = {
		{"INBOX", "", 5, 3},   {"Archive", "archive", 0, 0}, {"Lists", "", 0, 0},
		{"Lists/dev", "", 1, 0}, {"Sent", "sent", 2, 1},     {"Spam", "junk", 0, 0},
	};
	assert_int_equal(n, sizeof want / sizeof want[0]);
	for (size_t i = 0; i < n; i++) {
		assert_string_equal(v[i].name, want[i].name);
		assert_string_equal(v[i].special, want[i].special);
		assert_int_equal(v[i].total, want[i].total);
		assert_int_equal(v[i].unseen, want[i].unseen);
	}
	mbox_folders_free(v, n);
	mb->ops->close(mb);
}

static void test_search(void **state)
{
	(void)state;
	mkdirs("");
	put("cur/1.M1P1.h:2,S",
	    "From: Taro Yamada <taro@example.jp>\nTo: hanako@example.jp\n"
	    "Subject: =?UTF-8?B?5Lya6K2w44Gu5qGI5YaF?=\nDate: Mon, 1 Jan 2024 23:30:00 -0500\n"
	    "X-Tag: Zebra\n\nPlease bring the REPORT.\n", 0);
	put("cur/2.M1P1.h:2,FS",
	    "From: bob@example.org\nTo: taro@example.jp\nSubject: lunch\n"
	    "Date: Wed, 3 Jan 2024 12:00:00 +0000\nMIME-Version: 1.0\n"
	    "Content-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: base64\n\n"
	    "44Op44Oz44OB44Gr6KGM44GN44G+44GZ\n", 0);
	put("new/3.M1P1.h",
	    "From: shop@example.com\nSubject: offer\nDate: Fri, 5 Jan 2024 08:00:00 +0900\n"
	    "MIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=B\n\n--B\n"
	    "Content-Type: text/html\n\n<html><body><p>Big <b>Sale</b> today</p></body></html>\n"
	    "--B\nContent-Type: application/pdf; name=\"catalogue.pdf\"\n"
	    "Content-Transfer-Encoding: base64\n\nJVBERi0=\n--B--\n", 0);
	struct mbox *mb = open_md();
	static const struct {
		struct mbox_query q;
		const char *want;
	} cases[] = {
		{{0}, "1 2 3"},
		{{.from = "YAMADA"}, "1"},
		{{.from = "example"}, "1 2 3"},
		{{.to = "taro@"}, "2"},
		{{.subject = "会議"}, "1"},        /* RFC 2047 decoded */
		{{.subject = "Lunch"}, "2"},
		{{.body = "report"}, "1"},
		{{.body = "ランチ"}, "2"},         /* base64, UTF-8 */
		{{.body = "big sale"}, "3"},       /* HTML as text */
		{{.body = "<b>"}, ""},             /* not the markup */
		{{.body = "catalogue"}, ""},       /* not the attachment list */
		{{.body = "lunch"}, ""},           /* not the header */
		{{.text = "lunch"}, "2"},
		{{.text = "zebra"}, "1"},          /* any header field */
		{{.text = "sale"}, "3"},
		{{.flags_set = MBOX_SEEN}, "1 2"},
		{{.flags_clear = MBOX_SEEN}, "3"},
		{{.flags_set = MBOX_FLAGGED | MBOX_SEEN}, "2"},
		{{.flags_set = MBOX_RECENT}, "3"},
		/* days of the Date field in its own zone: 1 Jan, 3 Jan, 5 Jan */
		{{.since = 1704067200}, "1 2 3"},           /* 2024-01-01 */
		{{.since = 1704153600}, "2 3"},             /* 2024-01-02 */
		{{.before = 1704153600}, "1"},
		{{.since = 1704240000, .before = 1704326400}, "2"},   /* 3 Jan only */
		{{.since = 1704412800}, "3"},                         /* 5 Jan */
		{{.from = "example", .flags_clear = MBOX_FLAGGED, .body = "report"}, "1"},
		{{.subject = "nothing like it"}, ""},
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		uint32_t *ns;
		size_t n;
		char err[256], got[64] = "";
		bool temp = true;
		assert_int_equal(mb->ops->search(mb, NULL, &cases[i].q, &ns, &n, &temp, err,
						 sizeof err), 0);
		assert_false(temp);
		for (size_t k = 0; k < n; k++) {
			size_t l = strlen(got);
			snprintf(got + l, sizeof got - l, "%s%u", k ? " " : "", (unsigned)ns[k]);
		}
		free(ns);
		if (strcmp(got, cases[i].want) != 0)
			fail_msg("case %zu: got \"%s\", want \"%s\"", i, got, cases[i].want);
	}
	mb->ops->close(mb);
}

static void test_append(void **state)
{
	(void)state;
	/* the Maildir is made by append */
	struct mbox *mb = open_md();
	char err[512], got[64];
	bool temp = true;
	const char m1[] = "Subject: one\r\nDate: Mon, 1 Jan 2024 10:00:00 +0000\r\n\r\nbody\r\n";
	assert_int_equal(mb->ops->append(mb, NULL, NULL, m1, strlen(m1), 0, &temp, err,
					 sizeof err), 0);
	assert_false(temp);
	assert_int_equal(count_files("new"), 1);
	char *data;
	size_t len;
	assert_int_equal(mb->ops->fetch(mb, NULL, 1, true, &data, &len, NULL, err, sizeof err), 0);
	assert_string_equal(data, "Subject: one\nDate: Mon, 1 Jan 2024 10:00:00 +0000\n\nbody\n");
	free(data);
	/* with flags: into cur/ */
	const char m2[] = "Subject: two\nDate: Tue, 2 Jan 2024 10:00:00 +0000\n\n";
	assert_int_equal(mb->ops->append(mb, "INBOX", NULL, m2, strlen(m2),
					 MBOX_SEEN | MBOX_ANSWERED | MBOX_RECENT, NULL, err,
					 sizeof err), 0);
	assert_int_equal(count_files("cur"), 1);
	struct mbox_msg *v;
	size_t n;
	assert_int_equal(mb->ops->list(mb, NULL, &v, &n, NULL, err, sizeof err), 0);
	assert_int_equal(n, 2);
	assert_int_equal(v[1].flags, MBOX_SEEN | MBOX_ANSWERED);
	mbox_msgs_free(v, n);
	/* special: Sent made, then found again (an existing "sent" too) */
	const char m3[] = "Subject: sent\n\n";
	assert_int_equal(mb->ops->append(mb, NULL, "sent", m3, strlen(m3), MBOX_SEEN, NULL, err,
					 sizeof err), 0);
	assert_true(exists(".Sent/maildirfolder"));
	assert_int_equal(mb->ops->append(mb, NULL, "sent", m3, strlen(m3), MBOX_SEEN, NULL, err,
					 sizeof err), 0);
	subjects(mb, "Sent", got, sizeof got);
	assert_string_equal(got, "sent sent");
	assert_int_equal(mb->ops->append(mb, NULL, "drafts", m3, strlen(m3), MBOX_DRAFT, NULL,
					 err, sizeof err), 0);
	assert_int_equal(count_files(".Drafts/cur"), 1);
	/* a missing folder is not made */
	assert_int_equal(mb->ops->append(mb, "Archive", NULL, m3, strlen(m3), 0, NULL, err,
					 sizeof err), -1);
	assert_string_equal(err, "no folder \"Archive\" (yubin folders lists them)");
	assert_int_equal(count_files("tmp"), 0);
	mb->ops->close(mb);
}

static void test_too_big(void **state)
{
	(void)state;
	five();
	char p[PATH_MAX];
	path_of("cur/9000.M1P1.h:2,S", p, sizeof p);
	int fd = open(p, O_WRONLY | O_CREAT, 0600);
	assert_true(fd >= 0);
	const char h[] = "Subject: huge\nDate: 9 Jan 2024 10:00 GMT\n\n";
	assert_int_equal(write(fd, h, strlen(h)), (ssize_t)strlen(h));
	assert_int_equal(ftruncate(fd, (off_t)MBOX_MSG_MAX + 1), 0); /* sparse */
	close(fd);
	struct mbox *mb = open_md();
	char *data = NULL, err[256];
	size_t len;
	assert_int_equal(mb->ops->fetch(mb, NULL, 6, false, &data, &len, NULL, err, sizeof err),
			 -1);
	assert_null(data);
	assert_non_null(strstr(err, "message 6 is 104857601 bytes"));
	assert_true(exists("cur/9000.M1P1.h:2,S"));
	mb->ops->close(mb);
}

static void test_symlinks(void **state)
{
	(void)state;
	five();
	char outside[300], p[PATH_MAX], err[512];
	snprintf(outside, sizeof outside, "%s/outside", root);
	mkdir(outside, 0700);
	static const char *const sub[] = {"cur", "new", "tmp"};
	for (int i = 0; i < 3; i++) {
		snprintf(p, sizeof p, "%s/%s", outside, sub[i]);
		mkdir(p, 0700);
	}
	/* a folder that is a symlink out of the Maildir, and a Trash too */
	path_of(".Evil", p, sizeof p);
	assert_int_equal(symlink(outside, p), 0);
	path_of(".Trash", p, sizeof p);
	assert_int_equal(symlink(outside, p), 0);
	/* a message that is a symlink is not listed */
	path_of("cur/7000.M1P1.h:2,S", p, sizeof p);
	assert_int_equal(symlink("/etc/passwd", p), 0);
	struct mbox *mb = open_md();
	char got[64];
	subjects(mb, NULL, got, sizeof got);
	assert_string_equal(got, "a b c d e");
	uint32_t one = 1;
	assert_int_equal(mb->ops->move(mb, NULL, &one, 1, "Evil", NULL, err, sizeof err), -1);
	assert_non_null(strstr(err, "is a symlink or not a directory"));
	assert_int_equal(mb->ops->remove(mb, NULL, &one, 1, false, NULL, err, sizeof err), -1);
	assert_int_equal(mb->ops->append(mb, "Evil", NULL, "x\n", 2, 0, NULL, err, sizeof err),
			 -1);
	snprintf(p, sizeof p, "%s/outside/cur", root);
	DIR *d = opendir(p);
	assert_non_null(d);
	struct dirent *e;
	while ((e = readdir(d)) != NULL)
		assert_true(e->d_name[0] == '.');
	closedir(d);
	assert_true(exists("new/1000.M1P1.h"));
	mb->ops->close(mb);
}

int main(void)
{
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
	const struct CMUnitTest tests[] = {
		T(test_flags_letters), T(test_numbering), T(test_decoded_fields),
		T(test_fetch_and_flags), T(test_move), T(test_remove),
		T(test_existing_trash_lowercase), T(test_folder_names), T(test_folders),
		T(test_search), T(test_append), T(test_too_big), T(test_symlinks),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
