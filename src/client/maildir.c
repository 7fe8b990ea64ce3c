/* maildir.c - delivery into a local Maildir.  See maildir.h. */
#include "client/maildir.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

#include "core/util.h"

/* Attempts at a fresh name when one already exists. */
#define NAME_TRIES 100

static unsigned long deliver_counter;

static int fail(char *err, size_t errsz, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static int fail(char *err, size_t errsz, const char *fmt, ...)
{
	va_list ap;

	if (errsz == 0)
		return -1;
	va_start(ap, fmt);
	vsnprintf(err, errsz, fmt, ap);
	va_end(ap);
	return -1;
}

static int mkdir_one(const char *path)
{
	if (mkdir(path, 0700) == 0)
		return 0;
	if (errno != EEXIST)
		return -1;
	struct stat st;
	if (stat(path, &st) < 0)
		return -1;
	if (!S_ISDIR(st.st_mode)) {
		errno = ENOTDIR;
		return -1;
	}
	return 0;
}

int maildir_create(const char *dir)
{
	char path[PATH_MAX];
	size_t l = strlen(dir);

	if (l == 0 || l + 5 >= sizeof path) {
		errno = ENAMETOOLONG;
		return -1;
	}
	memcpy(path, dir, l + 1);
	/* The parents first, as mkdir -p. */
	for (size_t i = 1; i < l; i++) {
		if (path[i] != '/')
			continue;
		path[i] = '\0';
		int r = mkdir_one(path);
		path[i] = '/';
		if (r < 0)
			return -1;
	}
	if (mkdir_one(path) < 0)
		return -1;
	static const char *const sub[] = {"cur", "new", "tmp"};
	for (size_t i = 0; i < 3; i++) {
		snprintf(path, sizeof path, "%s/%s", dir, sub[i]);
		if (mkdir_one(path) < 0)
			return -1;
	}
	return 0;
}

/* The host name with '/' and ':' escaped (Maildir convention). */
static void host_part(char *out, size_t outsz)
{
	char h[256] = "";
	size_t k = 0;

	if (gethostname(h, sizeof h) < 0 || h[sizeof h - 1] != '\0' || h[0] == '\0')
		snprintf(h, sizeof h, "localhost");
	for (const char *p = h; *p && k + 5 < outsz; p++) {
		if (*p == '/' || *p == ':') {
			k += (size_t)snprintf(out + k, outsz - k, "\\%03o", (unsigned char)*p);
		} else if ((unsigned char)*p > ' ' && (unsigned char)*p < 0x7f) {
			out[k++] = *p;
		}
	}
	out[k] = '\0';
}

int maildir_deliver(const char *dir, const char *data, size_t len, char *name_out, size_t n,
		    char *err, size_t errsz)
{
	char host[200], name[MAILDIR_NAME_MAX], tmp[PATH_MAX], dst[PATH_MAX], newdir[PATH_MAX];
	int fd = -1;

	if (errsz > 0)
		err[0] = '\0';
	host_part(host, sizeof host);
	for (int attempt = 0;; attempt++) {
		if (attempt >= NAME_TRIES)
			return fail(err, errsz, "%s/tmp: no unused file name found", dir);
		struct timeval tv;
		gettimeofday(&tv, NULL);
		snprintf(name, sizeof name, "%lld.M%06ldP%ld_Q%lu.%s", (long long)tv.tv_sec,
			 (long)tv.tv_usec, (long)getpid(), ++deliver_counter, host);
		if ((size_t)snprintf(tmp, sizeof tmp, "%s/tmp/%s", dir, name) >= sizeof tmp ||
		    (size_t)snprintf(dst, sizeof dst, "%s/new/%s", dir, name) >= sizeof dst)
			return fail(err, errsz, "%s: path too long", dir);
		fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
		if (fd >= 0)
			break;
		if (errno != EEXIST)
			return fail(err, errsz, "create %s: %s", tmp, strerror(errno));
	}
	if (write_full(fd, data, len) < 0) {
		fail(err, errsz, "write %s: %s", tmp, strerror(errno));
		goto bad;
	}
	if (fsync(fd) < 0) {
		fail(err, errsz, "fsync %s: %s", tmp, strerror(errno));
		goto bad;
	}
	if (close(fd) < 0) {
		fd = -1;
		fail(err, errsz, "close %s: %s", tmp, strerror(errno));
		goto bad;
	}
	fd = -1;
	/* link() never replaces an existing file; rename() is the fallback
	 * for file systems without hard links (the name is fresh anyway). */
	if (link(tmp, dst) == 0) {
		unlink(tmp);
	} else if (errno == EPERM || errno == ENOTSUP || errno == EOPNOTSUPP || errno == EXDEV ||
		   errno == EMLINK) {
		if (rename(tmp, dst) < 0) {
			fail(err, errsz, "rename %s to %s: %s", tmp, dst, strerror(errno));
			goto bad;
		}
	} else {
		fail(err, errsz, "link %s to %s: %s", tmp, dst, strerror(errno));
		goto bad;
	}
	snprintf(newdir, sizeof newdir, "%s/new", dir);
	if (fsync_dir(newdir) < 0) {
		/* The message is in new/ but maybe not on disk yet: report it, the
		 * caller must not delete the server's copy. */
		return fail(err, errsz, "fsync %s: %s", newdir, strerror(errno));
	}
	/* tmp/ lost an entry: not needed for durability of the message. */
	if (name_out && n > 0)
		snprintf(name_out, n, "%s", name);
	return 0;
bad:
	if (fd >= 0)
		close(fd);
	unlink(tmp);
	return -1;
}
