/* buf.h - the one growable byte buffer, always bounded.
 *
 * {data, len, cap, max}: appends grow the buffer up to max and fail beyond
 * it, so a peer can never make us allocate more than the limit the caller
 * chose.  data is always NUL-terminated (one byte past len is reserved) so
 * that text can be handed to string functions; the NUL is not counted. */
#ifndef YUBIN_CORE_BUF_H
#define YUBIN_CORE_BUF_H

#include <stdbool.h>
#include <stddef.h>

struct buf {
	char *data;
	size_t len;
	size_t cap;
	size_t max;
};

/* Initialise an empty buffer that may hold at most max bytes. No allocation
 * happens until the first append. */
void buf_init(struct buf *b, size_t max);
void buf_free(struct buf *b);
/* Append n bytes; -1 (and nothing appended) when len + n would exceed max. */
int buf_append(struct buf *b, const void *p, size_t n);
int buf_append_str(struct buf *b, const char *s);
int buf_printf(struct buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Drop the first n bytes (n <= len). */
void buf_consume(struct buf *b, size_t n);
void buf_reset(struct buf *b);
/* Bytes that may still be appended before max. */
size_t buf_room(const struct buf *b);
/* Hand the allocation to the caller (NUL-terminated, len in *len_r) and leave
 * b empty. */
char *buf_steal(struct buf *b, size_t *len_r);

#endif
