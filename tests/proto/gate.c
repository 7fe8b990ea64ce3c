/* gate.c - LD_PRELOAD shim for tests/proto/test_streaming.py.
 *
 * Holds yubind's writes to message body files until the test opens a gate,
 * so that a test can act (SIGTERM, a timeout) at the exact moment a write
 * is in flight, without sleeping.  With YUBIN_GATE=DIR: the first write to
 * a file under data/msg/ creates DIR/blocked and waits until DIR/open
 * exists; later writes pass.  Built by the test with cc -shared. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int is_body(int fd)
{
	char p[64], t[4096];
	snprintf(p, sizeof p, "/proc/self/fd/%d", fd);
	ssize_t n = readlink(p, t, sizeof t - 1);
	if (n <= 0)
		return 0;
	t[n] = '\0';
	return strstr(t, "/data/msg/") != NULL;
}

ssize_t write(int fd, const void *buf, size_t n)
{
	static ssize_t (*real)(int, const void *, size_t);
	static int passed;
	const char *dir = getenv("YUBIN_GATE");
	if (real == NULL)
		real = (ssize_t (*)(int, const void *, size_t))dlsym(RTLD_NEXT, "write");
	if (dir && !passed && is_body(fd)) {
		char blocked[4096], open_[4096];
		snprintf(blocked, sizeof blocked, "%s/blocked", dir);
		snprintf(open_, sizeof open_, "%s/open", dir);
		int b = open(blocked, O_CREAT | O_WRONLY | O_CLOEXEC, 0666);
		if (b >= 0)
			close(b);
		while (access(open_, F_OK) != 0)
			usleep(1000);
		passed = 1;
	}
	return real(fd, buf, n);
}
