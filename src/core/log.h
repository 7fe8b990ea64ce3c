/* log.h - operator logs: one line per event on stderr.
 *
 * Format: "2026-11-23T18:11:38Z yubind[123]: LEVEL: message".  Messages name
 * what happened, to which session (conn=ID) or message (queue id), and what
 * to do about it; key=value fields; never a password or an AUTH payload.
 * log_fatal is for a broken environment or config at start-up: it logs and
 * exits(1).  Bugs are asserts, never log_fatal. */
#ifndef YUBIN_CORE_LOG_H
#define YUBIN_CORE_LOG_H

#include <stdarg.h>
#include <stdbool.h>

/* LOG_NOTICE is for the few start-up and shutdown lines (listening, ready,
 * stopped): written whatever log_level says. */
enum log_level { LOG_DEBUG, LOG_INFO, LOG_WARN, LOG_ERROR, LOG_NOTICE };

void log_init(const char *progname, enum log_level min);
void log_set_level(enum log_level min);
bool log_enabled(enum log_level level);

void log_debug(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_info(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_notice(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
_Noreturn void log_fatal(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_vmsg(enum log_level level, const char *fmt, va_list ap) __attribute__((format(printf, 2, 0)));

#endif
