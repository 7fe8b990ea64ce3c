/* log.c - one line per event on stderr, written with a single write(2) so
 * lines from the worker threads never interleave. */
#include "core/log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static const char *prog = "yubin";
static enum log_level minlevel = LOG_INFO;

void log_init(const char *progname, enum log_level min)
{
	prog = progname;
	minlevel = min;
}

void log_set_level(enum log_level min)
{
	minlevel = min;
}

bool log_enabled(enum log_level level)
{
	return level >= minlevel;
}

void log_vmsg(enum log_level level, const char *fmt, va_list ap)
{
	static const char *const names[] = {"debug", "info", "warning", "error", "notice"};
	if (level < minlevel)
		return;
	char line[4096];
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	struct tm tm;
	gmtime_r(&ts.tv_sec, &tm);
	int n = snprintf(line, sizeof line, "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ %s[%d]: %s: ",
			 tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
			 tm.tm_sec, ts.tv_nsec / 1000000, prog, (int)getpid(), names[level]);
	if (n < 0)
		return;
	int m = vsnprintf(line + n, sizeof line - (size_t)n - 1, fmt, ap);
	size_t len = (size_t)n + (m < 0 ? 0 : (size_t)m);
	if (len > sizeof line - 2)
		len = sizeof line - 2;
	/* Control characters from peers never reach the log raw. */
	for (size_t i = (size_t)n; i < len; i++)
		if ((unsigned char)line[i] < 0x20 || line[i] == 0x7f)
			line[i] = '?';
	line[len++] = '\n';
	ssize_t w = write(STDERR_FILENO, line, len);
	(void)w;
}

#define LOGFN(name, level)                        \
	void name(const char *fmt, ...)           \
	{                                         \
		va_list ap;                       \
		va_start(ap, fmt);                \
		log_vmsg(level, fmt, ap);         \
		va_end(ap);                       \
	}
LOGFN(log_debug, LOG_DEBUG)
LOGFN(log_info, LOG_INFO)
LOGFN(log_notice, LOG_NOTICE)
LOGFN(log_warn, LOG_WARN)
LOGFN(log_error, LOG_ERROR)

void log_fatal(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	enum log_level save = minlevel;
	minlevel = LOG_DEBUG;
	log_vmsg(LOG_ERROR, fmt, ap);
	minlevel = save;
	va_end(ap);
	exit(1);
}
