/* util.h - allocation wrappers and small helpers used everywhere.
 *
 * The x* allocators never return NULL: running out of memory is a broken
 * environment and ends the process with a log line (see log_fatal).  Every
 * size multiplication goes through xreallocarray, which checks overflow. */
#ifndef YUBIN_CORE_UTIL_H
#define YUBIN_CORE_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

void *xmalloc(size_t n);
void *xcalloc(size_t nmemb, size_t size);
void *xrealloc(void *p, size_t n);
void *xreallocarray(void *p, size_t nmemb, size_t size);
char *xstrdup(const char *s);
char *xstrndup(const char *s, size_t n);
/* printf into the caller's error buffer err[errsz] (always NUL-terminated,
 * cut to fit; nothing when err is NULL or errsz 0). */
void errf(char *err, size_t errsz, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* printf into a fresh heap string. */
char *xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* free(*p) and set *p = NULL; NULL-safe. */
#define FREE(p) do { free(p); (p) = NULL; } while (0)

#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))
#ifndef MIN
#define MIN(a, b) ((a) < (b) ? (a) : (b))
#endif
#ifndef MAX
#define MAX(a, b) ((a) > (b) ? (a) : (b))
#endif

/* ASCII-only case-insensitive helpers (locale independent). */
bool str_ieq(const char *a, const char *b);
bool str_nieq(const char *a, const char *b, size_t n);
/* True when s begins with prefix, ASCII case-insensitively. */
bool str_iprefix(const char *s, const char *prefix);
void str_lower(char *s);

/* Monotonic milliseconds and wall-clock seconds. */
uint64_t now_ms(void);
int64_t now_unix(void);

/* All of p[0..n) to fd, again after EINTR and short writes.  0, or -1
 * with errno. */
int write_full(int fd, const void *p, size_t n);
/* fsync(2) of a directory (so that an entry made in it is durable).
 * 0, or -1 with errno. */
int fsync_dir(const char *path);

/* RFC 5322 date for t in local time, e.g. "Mon, 23 Nov 2026 18:11:38 +0000".
 * out must hold at least 40 bytes. */
void rfc5322_date(int64_t t, char *out, size_t outsz);

/* A fresh queue id: 16 upper-case hex digits, time-ordered, unique inside
 * one process and very likely across restarts. out must hold 17 bytes. */
void queue_id_new(char out[17]);

/* Base64 (RFC 4648) for SASL payloads.  decode returns the decoded length or
 * -1 on bad input; out must hold at least (len / 4) * 3 + 3 bytes.
 * encode writes a NUL-terminated string; out needs 4 * ((len + 2) / 3) + 1. */
long base64_decode(const char *in, size_t len, unsigned char *out);
/* Value of one base64 (RFC 4648) or hex digit, any case; -1 if it is none. */
int base64_value(unsigned char c);
int hex_value(unsigned char c);
size_t base64_encode(const unsigned char *in, size_t len, char *out);
/* Bytes base64_encode writes for n bytes of input (no NUL). */
#define B64_LEN(n) (4 * (((n) + 2) / 3))

#endif
