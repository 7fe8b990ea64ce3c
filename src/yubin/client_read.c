/* client_read.c - reading the local Maildir that yubin fetch fills:
 *
 *   yubin ls [--maildir DIR | --account NAME] [--json]
 *   yubin read N [--maildir DIR | --account NAME] [--headers] [--width N]
 *   yubin save N PART [DIR] [--maildir DIR | --account NAME]
 *
 * Messages are numbered 1.. by date (the Date field, else the file's
 * mtime), oldest first, over new/ and cur/.  read renders with
 * mail/reader.c (decoded, control characters neutralised); save writes one
 * part's decoded bytes to DIR under its own file name, never outside DIR.
 * IMAP folders come with IMAP fetch (not yet). */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "client/account.h"
#include "core/buf.h"
#include "core/util.h"
#include "mail/dsn.h"
#include "mail/reader.h"
#include "mail/rfc2047.h"
#include "yubin/client.h"

#define LS_MAX 100000                 /* messages listed from one Maildir */
#define MSG_MAX (100 * 1024 * 1024)   /* one message read */

struct entry {
	char path[4400];
	int64_t date;
	off_t size;
	char flags[16];
};

static int by_date(const void *a, const void *b)
{
	const struct entry *x = a, *y = b;
	if (x->date != y->date)
		return x->date < y->date ? -1 : 1;
	return strcmp(x->path, y->path);
}

static char *slurp(const char *path, size_t max, size_t *len_r)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return NULL;
	struct buf b;
	buf_init(&b, max);
	char tmp[65536];
	ssize_t n;
	while ((n = read(fd, tmp, sizeof tmp)) > 0 || (n < 0 && errno == EINTR))
		if (n > 0 && buf_append(&b, tmp, (size_t)n) < 0)
			break;
	close(fd);
	if (!b.data)
		buf_append(&b, "", 0);
	return buf_steal(&b, len_r);
}

/* Date of a message: its Date field (RFC 5322, parsed by strptime), else 0. */
static int64_t header_date(const char *msg, size_t len)
{
	char v[256];
	if (dsn_header_value(msg, len, "Date", v, sizeof v) != 1)
		return 0;
	struct tm tm;
	memset(&tm, 0, sizeof tm);
	const char *p = strchr(v, ',') ? strchr(v, ',') + 1 : v;
	while (*p == ' ')
		p++;
	const char *end = strptime(p, "%d %b %Y %H:%M:%S", &tm);
	if (!end)
		return 0;
	int off = 0;
	while (*end == ' ')
		end++;
	if ((*end == '+' || *end == '-') && strlen(end) >= 5) {
		int hh = (end[1] - '0') * 10 + (end[2] - '0'), mm = (end[3] - '0') * 10 + (end[4] - '0');
		off = (hh * 60 + mm) * 60 * (*end == '-' ? -1 : 1);
	}
	return (int64_t)timegm(&tm) - off;
}

static int list_maildir(const char *md, struct entry **v_r, size_t *n_r)
{
	struct entry *v = NULL;
	size_t n = 0, cap = 0;
	static const char *const subs[] = {"new", "cur"};
	for (size_t s = 0; s < 2; s++) {
		char dir[4110];
		if ((size_t)snprintf(dir, sizeof dir, "%.4096s/%s", md, subs[s]) >= sizeof dir)
			continue;
		DIR *d = opendir(dir);
		if (!d)
			continue;
		struct dirent *de;
		while ((de = readdir(d)) != NULL && n < LS_MAX) {
			if (de->d_name[0] == '.')
				continue;
			if (n == cap) {
				cap = cap ? cap * 2 : 64;
				v = xreallocarray(v, cap, sizeof *v);
			}
			struct entry *e = &v[n];
			memset(e, 0, sizeof *e);
			snprintf(e->path, sizeof e->path, "%s/%s", dir, de->d_name);
			struct stat st;
			if (stat(e->path, &st) < 0 || !S_ISREG(st.st_mode))
				continue;
			e->size = st.st_size;
			const char *info = strstr(de->d_name, ":2,");
			snprintf(e->flags, sizeof e->flags, "%s", s == 0 ? "N" : info ? info + 3 : "");
			/* the header is enough for the date */
			size_t len;
			char *head = slurp(e->path, 64 * 1024, &len);
			e->date = head ? header_date(head, len) : 0;
			if (e->date == 0)
				e->date = (int64_t)st.st_mtime;
			free(head);
			n++;
		}
		closedir(d);
	}
	qsort(v, n, sizeof *v, by_date);
	*v_r = v;
	*n_r = n;
	return 0;
}

/* The Maildir: --maildir, else the account's (client.conf). */
static int which_maildir(const char *maildir, const char *account, char *out, size_t outsz)
{
	if (maildir) {
		snprintf(out, outsz, "%s", maildir);
		return 0;
	}
	char path[4096];
	struct account a;
	if (!client_account("read", account, &a, path, sizeof path))
		return -1;
	if (!a.maildir[0]) {
		fprintf(stderr, "yubin: no Maildir: give --maildir DIR or an account in %s\n",
			path[0] ? path : "client.conf");
		return -1;
	}
	snprintf(out, outsz, "%s", a.maildir);
	return 0;
}

static void json_str(const char *s)
{
	putchar('"');
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		if (*p == '"' || *p == '\\')
			printf("\\%c", *p);
		else if (*p < 0x20)
			printf("\\u%04x", *p);
		else
			putchar(*p);
	}
	putchar('"');
}

/* A header value decoded from RFC 2047, control characters replaced. */
static void decoded(const char *msg, size_t len, const char *name, char *out, size_t outsz)
{
	char raw[1024];
	out[0] = '\0';
	if (dsn_header_value(msg, len, name, raw, sizeof raw) != 1)
		return;
	struct buf b;
	buf_init(&b, outsz - 1);
	rfc2047_decode(raw, strlen(raw), &b);
	snprintf(out, outsz, "%s", b.data ? b.data : "");
	buf_free(&b);
	for (char *p = out; *p; p++)
		if ((unsigned char)*p < 0x20 || *p == 0x7f)
			*p = ' ';
}

struct opts {
	const char *maildir, *account;
	bool json, headers;
	long width;
	const char *pos[3];
	size_t npos;
};

static int parse(int argc, char **argv, struct opts *o, const char *usage)
{
	memset(o, 0, sizeof *o);
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		if (strcmp(a, "--json") == 0) {
			o->json = true;
		} else if (strcmp(a, "--headers") == 0) {
			o->headers = true;
		} else if ((strcmp(a, "--maildir") == 0 || strcmp(a, "--account") == 0 ||
			    strcmp(a, "--width") == 0) && i + 1 < argc) {
			if (a[2] == 'm')
				o->maildir = argv[++i];
			else if (a[2] == 'a')
				o->account = argv[++i];
			else
				o->width = strtol(argv[++i], NULL, 10);
		} else if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
			fputs(usage, stdout);
			return 1;
		} else if (a[0] == '-' || o->npos >= 3) {
			fprintf(stderr, "yubin %s: unexpected %s\n%s", argv[0], a, usage);
			return 2;
		} else {
			o->pos[o->npos++] = a;
		}
	}
	return 0;
}

int client_ls(int argc, char **argv)
{
	static const char usage[] = "usage: yubin ls [--maildir DIR | --account NAME] [--json]\n";
	struct opts o;
	int r = parse(argc, argv, &o, usage);
	if (r)
		return r == 1 ? 0 : 2;
	char md[4096];
	if (which_maildir(o.maildir, o.account, md, sizeof md) < 0)
		return 1;
	struct entry *v;
	size_t n;
	list_maildir(md, &v, &n);
	if (o.json)
		putchar('[');
	for (size_t i = 0; i < n; i++) {
		size_t len;
		char *head = slurp(v[i].path, 64 * 1024, &len);
		char from[256] = "", subject[512] = "", date[32];
		if (head) {
			decoded(head, len, "From", from, sizeof from);
			decoded(head, len, "Subject", subject, sizeof subject);
		}
		free(head);
		time_t t = (time_t)v[i].date;
		struct tm tm;
		strftime(date, sizeof date, "%Y-%m-%d %H:%M", localtime_r(&t, &tm));
		if (o.json) {
			printf("%s{\"n\":%zu,\"date\":%lld,\"from\":", i ? "," : "", i + 1,
			       (long long)v[i].date);
			json_str(from);
			printf(",\"subject\":");
			json_str(subject);
			printf(",\"size\":%lld,\"flags\":", (long long)v[i].size);
			json_str(v[i].flags);
			putchar('}');
		} else {
			printf("%4zu %-3s %s  %-28.28s %-40.40s %8lld\n", i + 1, v[i].flags, date, from,
			       subject, (long long)v[i].size);
		}
	}
	if (o.json)
		printf("]\n");
	free(v);
	return 0;
}

/* Message N (1-based) of the Maildir, read whole. */
static char *message_n(const struct opts *o, size_t *len_r)
{
	char md[4096];
	if (o->npos < 1) {
		fprintf(stderr, "yubin: which message? (a number from yubin ls)\n");
		return NULL;
	}
	if (which_maildir(o->maildir, o->account, md, sizeof md) < 0)
		return NULL;
	char *end;
	long k = strtol(o->pos[0], &end, 10);
	struct entry *v;
	size_t n;
	list_maildir(md, &v, &n);
	char *msg = NULL;
	if (*end || k < 1 || (size_t)k > n)
		fprintf(stderr, "yubin: no message %s (%zu in %s)\n", o->pos[0], n, md);
	else if (!(msg = slurp(v[k - 1].path, MSG_MAX, len_r)))
		fprintf(stderr, "yubin: %s: %s\n", v[k - 1].path, strerror(errno));
	free(v);
	return msg;
}

int client_read(int argc, char **argv)
{
	static const char usage[] =
		"usage: yubin read N [--maildir DIR | --account NAME] [--headers] [--width N]\n";
	struct opts o;
	int r = parse(argc, argv, &o, usage);
	if (r)
		return r == 1 ? 0 : 2;
	size_t len;
	char *msg = message_n(&o, &len);
	if (!msg)
		return 1;
	struct reader_opts ro = {.all_headers = o.headers, .width = o.width > 0 ? (size_t)o.width : 0};
	struct buf out;
	buf_init(&out, READER_OUT_MAX + 1024);
	reader_render(msg, len, &ro, &out, NULL, 0, NULL);
	fwrite(out.data ? out.data : "", 1, out.len, stdout);
	buf_free(&out);
	free(msg);
	return 0;
}

int client_save(int argc, char **argv)
{
	static const char usage[] =
		"usage: yubin save N PART [DIR] [--maildir DIR | --account NAME]\n"
		"PART is the number yubin read lists for the attachment (e.g. 2 or 1.2).\n";
	struct opts o;
	int r = parse(argc, argv, &o, usage);
	if (r)
		return r == 1 ? 0 : 2;
	if (o.npos < 2) {
		fprintf(stderr, "%s", usage);
		return 2;
	}
	size_t len;
	char *msg = message_n(&o, &len);
	if (!msg)
		return 1;
	int ret = 1;
	struct reader_part_info *parts = xcalloc(READER_PARTS_MAX, sizeof *parts);
	size_t np = 0;
	struct buf tmp, data;
	buf_init(&tmp, READER_OUT_MAX + 1024);
	buf_init(&data, MSG_MAX);
	reader_render(msg, len, NULL, &tmp, parts, READER_PARTS_MAX, &np);
	const char *name = NULL;
	for (size_t i = 0; i < np; i++)
		if (strcmp(parts[i].section, o.pos[1]) == 0)
			name = parts[i].filename[0] ? parts[i].filename : NULL;
	if (reader_part_bytes(msg, len, o.pos[1], &data) != 1) {
		fprintf(stderr, "yubin save: message %s has no part %s\n", o.pos[0], o.pos[1]);
		goto out;
	}
	/* Only the last path component, never hidden, never "..": the name
	 * comes from the mail. */
	char safe[256];
	const char *base = name ? strrchr(name, '/') : NULL;
	snprintf(safe, sizeof safe, "%s", base ? base + 1 : name ? name : "");
	for (char *p = safe; *p; p++)
		if (*p == '\\' || (unsigned char)*p < 0x20)
			*p = '_';
	if (!safe[0] || safe[0] == '.')
		snprintf(safe, sizeof safe, "part-%s.bin", o.pos[1]);
	char path[4400];
	snprintf(path, sizeof path, "%s/%s", o.npos >= 3 ? o.pos[2] : ".", safe);
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
	if (fd < 0) {
		fprintf(stderr, "yubin save: %s: %s\n", path, strerror(errno));
		goto out;
	}
	size_t off = 0;
	while (off < data.len) {
		ssize_t w = write(fd, data.data + off, data.len - off);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			break;
		off += (size_t)w;
	}
	if (close(fd) < 0 || off != data.len) {
		fprintf(stderr, "yubin save: writing %s failed\n", path);
		goto out;
	}
	printf("saved %s (%zu bytes)\n", path, data.len);
	ret = 0;
out:
	free(parts);
	buf_free(&tmp);
	buf_free(&data);
	free(msg);
	return ret;
}
