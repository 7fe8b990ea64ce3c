/* dotstuff.h - SMTP DATA end detection and dot-unstuffing (RFC 5321
 * 4.5.2), and dot-stuffing for output (POP3 RETR/TOP, outbound SMTP).
 *
 * The decoder is a state machine fed arbitrary chunks.  The data ends only
 * at CR LF "." CR LF (the initial CR LF may be the one that ended the DATA
 * command line): a bare LF or bare CR next to a dot never ends it (SMTP
 * smuggling).  A bare LF is turned into CR LF (BARE_NEWLINE_NORMALIZE) or
 * counted for rejection; a bare CR is kept as it is and counted. */
#ifndef YUBIN_MAIL_DOTSTUFF_H
#define YUBIN_MAIL_DOTSTUFF_H

#include <stdbool.h>
#include <stddef.h>

struct buf;

struct dot_decoder {
	int state;            /* internal */
	bool done;            /* end of data seen */
	size_t bare_lf;       /* bare LFs seen */
	size_t bare_cr;       /* bare CRs seen */
	size_t total;         /* bytes produced so far (before the size cap) */
	bool overflow;        /* output would have exceeded out->max: bytes dropped */
};

void dot_decoder_init(struct dot_decoder *d);
/* Feed in[0..len); unstuffed bytes are appended to out (the terminating
 * "." CR LF is not; the CR LF before it is, as the last line's end).  When
 * out is full the rest is counted in total and dropped (overflow set), so
 * the caller can still find the end of data and reply 552.  Returns the
 * number of bytes consumed: less than len only when the end was reached
 * (the rest is the next pipelined command). */
size_t dot_decode(struct dot_decoder *d, const char *in, size_t len, struct buf *out);

/* Append in[0..len) dot-stuffed to out (a "." at the start of a line becomes
 * ".."), starting at the beginning of a line.  Used for whole messages. Lines
 * end in CR LF already in the store.  Returns -1 when out is full. */
int dot_encode(const char *in, size_t len, struct buf *out);
/* Same, for a message sent in pieces: *bol holds "at beginning of line"
 * between calls (start with true). */
int dot_encode_chunk(const char *in, size_t len, bool *bol, struct buf *out);

#endif
