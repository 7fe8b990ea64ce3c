/* dotstuff.c - SMTP DATA end detection, dot-unstuffing and dot-stuffing.
 *
 * Decoder states (a CR is held back until we know whether an LF follows):
 *   BOL    start of a line (initially: the DATA command's CR LF precedes)
 *   MID    inside a line
 *   CR     saw CR inside a line (held)
 *   DOT    saw '.' at BOL (dropped: a leading dot is always removed)
 *   DOTCR  saw '.' CR at BOL (CR held); LF now ends the data
 * Only BOL '.' CR LF ends the data.  A bare LF is counted and written as
 * CR LF; a bare CR is counted and written as it is.
 *
 * A bare LF is not a line end for SMTP: what follows it is data.  A client
 * that follows RFC 5321 stuffs only dots after CR LF, so a '.' after a bare
 * LF is content and is kept ("a LF . LF" is stored as "a CR LF . CR LF"),
 * and it can never end the data (SMTP smuggling).  The DS_AFTER_LF flag is
 * kept for the DOTCR case where the LF arrives after a real line start. */
#include "mail/dotstuff.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>

#include "core/buf.h"

enum {
	DS_BOL = 0,
	DS_MID,
	DS_CR,
	DS_DOT,
	DS_DOTCR,
	DS_AFTER_LF = 0x10, /* flag on BOL, DOT, DOTCR: the line began after a bare LF */
};

void dot_decoder_init(struct dot_decoder *d)
{
	memset(d, 0, sizeof(*d));
	d->state = DS_BOL;
}

/* Output n bytes; past out->max keep what fits, then only count. */
static void emit(struct dot_decoder *d, struct buf *out, const char *p, size_t n)
{
	d->total += n;
	if (d->overflow)
		return;
	if (buf_append(out, p, n) == 0)
		return;
	size_t room = buf_room(out);
	if (room > 0 && room < n)
		(void)buf_append(out, p, room);
	d->overflow = true;
}

/* Length of the run of bytes in in[0..len) that are neither CR nor LF. */
static size_t plain_run(const char *in, size_t len)
{
	size_t k = 0;
	while (k < len && in[k] != '\r' && in[k] != '\n')
		k++;
	return k;
}

size_t dot_decode(struct dot_decoder *d, const char *in, size_t len, struct buf *out)
{
	size_t i = 0;

	if (d->done)
		return 0;
	while (i < len) {
		char c = in[i];
		int lf = d->state & DS_AFTER_LF;
		switch (d->state & ~DS_AFTER_LF) {
		case DS_BOL:
			if (c == '.') {
				d->state = DS_DOT | lf;
				i++;
				break;
			}
			/* fall through */
		case DS_MID:
			if (c == '\r') {
				d->state = DS_CR;
				i++;
			} else if (c == '\n') {
				d->bare_lf++;
				emit(d, out, "\r\n", 2);
				d->state = DS_MID;
				i++;
			} else {
				size_t k = plain_run(in + i, len - i);
				emit(d, out, in + i, k);
				d->state = DS_MID;
				i += k;
			}
			break;
		case DS_CR:
			if (c == '\n') {
				emit(d, out, "\r\n", 2);
				d->state = DS_BOL;
				i++;
			} else {
				/* The held CR was bare; c is looked at again in MID. */
				d->bare_cr++;
				emit(d, out, "\r", 1);
				d->state = DS_MID;
			}
			break;
		case DS_DOT:
			if (c == '\r') {
				d->state = DS_DOTCR | lf;
				i++;
			} else {
				/* ".." -> ".", ".x" -> "x"; "." bare LF is a bare LF,
				 * never the end.  c is looked at again in MID. */
				d->state = DS_MID;
			}
			break;
		case DS_DOTCR:
			if (c == '\n' && !lf) {
				d->done = true;
				d->state = DS_BOL;
				return i + 1;
			}
			if (c == '\n') {
				/* LF "." CR LF: an empty line, not the end (smuggling). */
				emit(d, out, "\r\n", 2);
				d->state = DS_BOL;
				i++;
			} else {
				d->bare_cr++;
				emit(d, out, "\r", 1);
				d->state = DS_MID;
			}
			break;
		default:
			assert(!"corrupted dot_decoder state");
			abort();
		}
	}
	return i;
}

int dot_encode_chunk(const char *in, size_t len, bool *bol, struct buf *out)
{
	size_t start = 0;

	for (size_t i = 0; i < len; i++) {
		if (*bol && in[i] == '.') {
			/* Flush up to and including this dot; the dot is sent again
			 * with the next run. */
			if (buf_append(out, in + start, i - start + 1) < 0)
				return -1;
			start = i;
		}
		*bol = in[i] == '\n';
	}
	if (start < len && buf_append(out, in + start, len - start) < 0)
		return -1;
	return 0;
}

int dot_encode(const char *in, size_t len, struct buf *out)
{
	bool bol = true;

	return dot_encode_chunk(in, len, &bol, out);
}
