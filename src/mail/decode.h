/* decode.h - streaming content decoders: base64, quoted-printable and
 * charset conversion to UTF-8.
 *
 * Each decoder is a small state struct fed chunk by chunk; a chunk may end
 * anywhere (inside "=X", a CR LF, a base64 quantum or a multibyte
 * character) and the output is the same as for one big chunk.  Output is
 * appended to a caller-owned bounded struct buf.  When the output would pass
 * out->max the decoder appends what fits, sets overflow, returns -1 and
 * refuses further input (-1 again); the caller turns that into an error.
 * Nothing here allocates except buf growth and the iconv descriptor. */
#ifndef YUBIN_MAIL_DECODE_H
#define YUBIN_MAIL_DECODE_H

#include <iconv.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"

/* Base64 as real mail has it: characters outside the alphabet (line breaks,
 * spaces, garbage) are skipped; "=" ends a quantum and drops its spare bits,
 * so concatenated encoded blocks decode one after the other. */
struct decode_b64 {
	uint32_t acc;
	unsigned bits;
	bool overflow;
	size_t garbage; /* skipped bytes that were neither alphabet, '=' nor whitespace */
};

void decode_b64_init(struct decode_b64 *d);
int decode_b64(struct decode_b64 *d, const void *in, size_t len, struct buf *out);
/* End of input: spare bits of an unfinished quantum are dropped. */
int decode_b64_finish(struct decode_b64 *d, struct buf *out);

/* Quoted-printable (RFC 2045 6.7), tolerant: "=XX" in either case;
 * "=" followed by optional spaces/tabs and a line break (CRLF, LF or a bare
 * CR) is a soft break; any other "=" is kept literally with what follows it;
 * spaces and tabs before a line break are dropped (up to DECODE_QP_WS_MAX of
 * them are held; a longer run is written out as it is).  Line breaks are
 * copied as they are. */
#define DECODE_QP_WS_MAX 128

enum decode_qp_state {
	DECODE_QP_TEXT,
	DECODE_QP_EQ,     /* after '=' */
	DECODE_QP_EQ_HEX, /* after '=' and one hex digit (in hex1) */
	DECODE_QP_EQ_WS,  /* after '=' and spaces (held in ws) */
	DECODE_QP_SKIP_LF /* after "=\r": an LF completes the soft break */
};

struct decode_qp {
	enum decode_qp_state state;
	char hex1;
	bool overflow;
	size_t nws;
	char ws[DECODE_QP_WS_MAX];
};

void decode_qp_init(struct decode_qp *d);
int decode_qp(struct decode_qp *d, const void *in, size_t len, struct buf *out);
/* End of input: a trailing "=" is a soft break, "=X" is kept literally,
 * held trailing whitespace is dropped. */
int decode_qp_finish(struct decode_qp *d, struct buf *out);

/* Charset -> UTF-8 with glibc iconv.  An incomplete multibyte sequence at
 * the end of a chunk is carried to the next one (at most
 * DECODE_CHARSET_PEND_MAX bytes); invalid bytes become U+FFFD.  Charset
 * names are the MIME ones, case-insensitive; a few aliases are mapped to
 * what glibc calls them (Shift_JIS -> CP932, as Windows mailers mean it).
 * ISO-2022-JP (and csISO2022JP, CP50220/1/2) is read as Windows mailers
 * write it: ASCII, JIS X 0201 Roman and half-width katakana (ESC ( I, or
 * SO/SI), JIS X 0208 with the NEC and IBM extension rows (circled digits,
 * Roman numerals, IBM kanji), converted to CP932 bytes first and then by
 * glibc's CP932, so its characters read the same as in a Shift_JIS text
 * (row 1 cell 33 is U+FF5E FULLWIDTH TILDE); other designations (JIS X
 * 0212, the ISO-2022-JP-2 sets) give U+FFFD per character, an unknown
 * escape sequence U+FFFD for its ESC.  ISO-2022-JP-2 and -3 are glibc's.
 * UTF-7 is refused for now (glibc's reader is not split-invariant). */
#define DECODE_CHARSET_PEND_MAX 16
#define DECODE_CHARSET_NAME_MAX 64

struct decode_charset {
	iconv_t cd;
	bool overflow;
	size_t npend;
	size_t replaced; /* U+FFFD written */
	char pend[DECODE_CHARSET_PEND_MAX];
	/* ISO-2022-JP read into CP932 (see decode.c): the designated set, SO
	 * in effect, and the bytes held: an unfinished escape sequence or the
	 * first byte of a double-byte character. */
	bool jis;
	bool jis_so;
	unsigned char jis_set;
	unsigned char jis_nhold;
	unsigned char jis_hold[4];
};

/* 0, or -1 with a static error when the charset is unknown or its name is
 * longer than DECODE_CHARSET_NAME_MAX. */
int decode_charset_init(struct decode_charset *d, const char *charset, const char **error_r);
int decode_charset(struct decode_charset *d, const void *in, size_t len, struct buf *out);
/* End of input: a carried incomplete sequence becomes U+FFFD; the decoder
 * is reset and can take a new stream. */
int decode_charset_finish(struct decode_charset *d, struct buf *out);
/* Release the iconv descriptor; NULL-safe, may be called twice. */
void decode_charset_free(struct decode_charset *d);

/* One-shot helper: convert in[0..len) from charset to UTF-8 into out.
 * -1 with *error_r on an unknown charset or an overflow. */
int decode_charset_convert(const char *charset, const void *in, size_t len,
			   struct buf *out, const char **error_r);

#endif
