/* decode.c - streaming base64, quoted-printable and charset decoders.
 *
 * All three work byte by byte on small stack staging areas, so a chunk
 * boundary is invisible: whatever state a split leaves behind is in the
 * struct, never in a pointer into the caller's chunk. */
#include "mail/decode.h"

#include <errno.h>
#include <string.h>

#include "core/util.h"
#include "mail/mutf7.h"

#define STAGE 512

struct stage {
	size_t n;
	unsigned char b[STAGE];
};

/* Append n bytes or, past max, what fits (not splitting a UTF-8 sequence
 * when utf8) and flag the overflow. */
static int emit(bool *overflow, struct buf *out, const void *p, size_t n, bool utf8)
{
	if (n == 0)
		return 0;
	if (buf_append(out, p, n) == 0)
		return 0;
	size_t room = buf_room(out);
	const unsigned char *s = p;
	if (utf8)
		while (room > 0 && (s[room] & 0xc0) == 0x80)
			room--;
	if (room > 0)
		buf_append(out, p, room);
	*overflow = true;
	return -1;
}

static int stage_put(struct stage *st, bool *overflow, struct buf *out, unsigned char c)
{
	if (st->n == STAGE) {
		if (emit(overflow, out, st->b, st->n, false) < 0)
			return -1;
		st->n = 0;
	}
	st->b[st->n++] = c;
	return 0;
}

static int stage_flush(struct stage *st, bool *overflow, struct buf *out)
{
	int ret = emit(overflow, out, st->b, st->n, false);
	st->n = 0;
	return ret;
}

/* ---- base64 ---- */

void decode_b64_init(struct decode_b64 *d)
{
	memset(d, 0, sizeof(*d));
}

int decode_b64(struct decode_b64 *d, const void *in, size_t len, struct buf *out)
{
	const unsigned char *p = in;
	struct stage st;

	if (d->overflow)
		return -1;
	st.n = 0;
	for (size_t i = 0; i < len; i++) {
		int v = base64_value(p[i]);
		if (v < 0) {
			if (p[i] == '=') {
				d->acc = 0;
				d->bits = 0;
			} else if (p[i] != ' ' && p[i] != '\t' && p[i] != '\r' && p[i] != '\n') {
				d->garbage++;
			}
			continue;
		}
		d->acc = ((d->acc << 6) | (uint32_t)v) & 0xffff;
		d->bits += 6;
		if (d->bits >= 8) {
			d->bits -= 8;
			if (stage_put(&st, &d->overflow, out,
				      (unsigned char)(d->acc >> d->bits)) < 0)
				return -1;
		}
	}
	return stage_flush(&st, &d->overflow, out);
}

int decode_b64_finish(struct decode_b64 *d, struct buf *out)
{
	(void)out;
	if (d->overflow)
		return -1;
	d->acc = 0;
	d->bits = 0;
	return 0;
}

/* ---- quoted-printable ---- */

void decode_qp_init(struct decode_qp *d)
{
	memset(d, 0, sizeof(*d));
	d->state = DECODE_QP_TEXT;
}

static int qp_flush_ws(struct decode_qp *d, struct stage *st, struct buf *out)
{
	for (size_t k = 0; k < d->nws; k++)
		if (stage_put(st, &d->overflow, out, (unsigned char)d->ws[k]) < 0)
			return -1;
	d->nws = 0;
	return 0;
}

int decode_qp(struct decode_qp *d, const void *in, size_t len, struct buf *out)
{
	const unsigned char *p = in;
	struct stage st;
	size_t i = 0;

	if (d->overflow)
		return -1;
	st.n = 0;
	while (i < len) {
		unsigned char c = p[i];
		bool again = false;

		switch (d->state) {
		case DECODE_QP_TEXT:
			if (c == '=') {
				if (qp_flush_ws(d, &st, out) < 0)
					return -1;
				d->state = DECODE_QP_EQ;
			} else if (c == ' ' || c == '\t') {
				if (d->nws == DECODE_QP_WS_MAX && qp_flush_ws(d, &st, out) < 0)
					return -1;
				d->ws[d->nws++] = (char)c;
			} else {
				if (c == '\r' || c == '\n')
					d->nws = 0;
				else if (qp_flush_ws(d, &st, out) < 0)
					return -1;
				if (stage_put(&st, &d->overflow, out, c) < 0)
					return -1;
			}
			break;
		case DECODE_QP_EQ:
			if (hex_value(c) >= 0) {
				d->hex1 = (char)c;
				d->state = DECODE_QP_EQ_HEX;
			} else if (c == ' ' || c == '\t') {
				d->ws[0] = (char)c;
				d->nws = 1;
				d->state = DECODE_QP_EQ_WS;
			} else if (c == '\r') {
				d->state = DECODE_QP_SKIP_LF;
			} else if (c == '\n') {
				d->state = DECODE_QP_TEXT;
			} else {
				if (stage_put(&st, &d->overflow, out, '=') < 0)
					return -1;
				d->state = DECODE_QP_TEXT;
				again = c != '=';
				if (c == '=')
					d->state = DECODE_QP_EQ;
			}
			break;
		case DECODE_QP_EQ_HEX:
			d->state = DECODE_QP_TEXT;
			if (hex_value(c) >= 0) {
				int v = hex_value((unsigned char)d->hex1) * 16 + hex_value(c);
				if (stage_put(&st, &d->overflow, out, (unsigned char)v) < 0)
					return -1;
			} else {
				if (stage_put(&st, &d->overflow, out, '=') < 0 ||
				    stage_put(&st, &d->overflow, out, (unsigned char)d->hex1) < 0)
					return -1;
				again = true;
			}
			break;
		case DECODE_QP_EQ_WS:
			if ((c == ' ' || c == '\t') && d->nws < DECODE_QP_WS_MAX) {
				d->ws[d->nws++] = (char)c;
			} else if (c == '\r' || c == '\n') {
				d->nws = 0;
				d->state = c == '\r' ? DECODE_QP_SKIP_LF : DECODE_QP_TEXT;
			} else {
				if (stage_put(&st, &d->overflow, out, '=') < 0 ||
				    qp_flush_ws(d, &st, out) < 0)
					return -1;
				d->state = DECODE_QP_TEXT;
				again = true;
			}
			break;
		case DECODE_QP_SKIP_LF:
			d->state = DECODE_QP_TEXT;
			again = c != '\n';
			break;
		}
		if (!again)
			i++;
	}
	return stage_flush(&st, &d->overflow, out);
}

int decode_qp_finish(struct decode_qp *d, struct buf *out)
{
	int ret = 0;

	if (d->overflow)
		return -1;
	if (d->state == DECODE_QP_EQ_HEX) {
		char s[2] = { '=', d->hex1 };
		ret = emit(&d->overflow, out, s, 2, false);
	}
	bool overflow = d->overflow;
	decode_qp_init(d);
	d->overflow = overflow;
	return ret;
}

/* ---- charsets ---- */

static const struct {
	const char *mime;
	const char *glibc;
	bool jis; /* ISO-2022-JP, read into CP932 bytes first */
} aliases[] = {
	{ "iso-2022-jp", "CP932", true },
	{ "csiso2022jp", "CP932", true },
	{ "iso2022jp", "CP932", true },
	{ "cp50220", "CP932", true },
	{ "cp50221", "CP932", true },
	{ "cp50222", "CP932", true },
	{ "x-euc-jp", "EUC-JP", false },
	{ "shift_jis", "CP932", false },
	{ "shift-jis", "CP932", false },
	{ "sjis", "CP932", false },
	{ "x-sjis", "CP932", false },
	{ "ms_kanji", "CP932", false },
	{ "windows-31j", "CP932", false },
	{ "ks_c_5601-1987", "CP949", false },
	{ "gb2312", "GBK", false },
	{ "iso-8859-8-i", "ISO-8859-8", false },
	/* glibc's UTF-7 reader does not give the same result for every split
	 * of its input around invalid bytes; refused until we have our own. */
	{ "utf-7", NULL, false },
	{ "utf7", NULL, false },
	{ "unicode-1-1-utf-7", NULL, false },
	{ "x-unknown", NULL, false },
	{ "unknown-8bit", NULL, false },
};

int decode_charset_init(struct decode_charset *d, const char *charset, const char **error_r)
{
	size_t n = strlen(charset);

	memset(d, 0, sizeof(*d));
	d->cd = (iconv_t)-1;
	if (n == 0 || n > DECODE_CHARSET_NAME_MAX) {
		*error_r = "bad charset name";
		return -1;
	}
	/* Only name characters: iconv would take "//TRANSLIT" and friends. */
	for (size_t i = 0; i < n; i++) {
		char c = charset[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '-' || c == '_' || c == '.' || c == ':' || c == '+')) {
			*error_r = "bad charset name";
			return -1;
		}
	}
	const char *name = charset;
	for (size_t k = 0; k < ARRAY_LEN(aliases); k++) {
		if (str_ieq(charset, aliases[k].mime)) {
			name = aliases[k].glibc;
			d->jis = aliases[k].jis;
			break;
		}
	}
	if (name != NULL)
		d->cd = iconv_open("UTF-8", name);
	if (d->cd == (iconv_t)-1) {
		*error_r = "unknown charset";
		return -1;
	}
	return 0;
}

void decode_charset_free(struct decode_charset *d)
{
	if (d->cd != (iconv_t)-1)
		iconv_close(d->cd);
	d->cd = (iconv_t)-1;
}

static const char replacement[] = "\xef\xbf\xbd";

/* Write iconv's output, replacing what is not strict UTF-8: glibc's UTF-8
 * reader passes the old 5- and 6-byte forms and code points past U+10FFFF. */
static int emit_checked(struct decode_charset *d, struct buf *out, const char *p, size_t n)
{
	size_t start = 0, i = 0;

	while (i < n) {
		size_t k = mutf7_utf8_char_len(p + i, n - i);
		if (k > 0) {
			i += k;
			continue;
		}
		if (emit(&d->overflow, out, p + start, i - start, true) < 0 ||
		    emit(&d->overflow, out, replacement, 3, true) < 0)
			return -1;
		d->replaced++;
		/* Skip the whole bad sequence: lead byte and continuations. */
		i++;
		while (i < n && ((unsigned char)p[i] & 0xc0) == 0x80)
			i++;
		start = i;
	}
	return emit(&d->overflow, out, p + start, n - start, true);
}

/* A Shift_JIS (CP932) lead byte. */
static bool sjis_lead(unsigned char c)
{
	return (c >= 0x81 && c <= 0x9f) || (c >= 0xe0 && c <= 0xfc);
}

/* Convert p[0..n); an incomplete tail is kept in pend. */
static int charset_run(struct decode_charset *d, char *p, size_t n, struct buf *out)
{
	char *ib = p;
	size_t il = n;

	while (il > 0) {
		char ob[1024];
		char *op = ob;
		size_t ol = sizeof(ob);
		size_t r = iconv(d->cd, &ib, &il, &op, &ol);
		int e = errno;
		if (emit_checked(d, out, ob, (size_t)(op - ob)) < 0)
			return -1;
		if (r != (size_t)-1)
			break;
		if (e == E2BIG)
			continue;
		if (e == EINVAL && il <= DECODE_CHARSET_PEND_MAX) {
			memcpy(d->pend, ib, il);
			d->npend = il;
			return 0;
		}
		/* EILSEQ (or anything else): one byte becomes U+FFFD; for
		 * ISO-2022-JP, a whole double-byte character CP932 lacks. */
		if (emit(&d->overflow, out, replacement, 3, true) < 0)
			return -1;
		d->replaced++;
		size_t skip = d->jis && il >= 2 && sjis_lead((unsigned char)*ib) ? 2 : 1;
		ib += skip;
		il -= skip;
	}
	return 0;
}

/* ---- ISO-2022-JP ----
 *
 * Each character is rewritten as the CP932 bytes of the same JIS code (a
 * JIS X 0208 pair by the Shift_JIS arithmetic, a half-width katakana byte
 * with its top bit set) and those go through the CP932 descriptor, which
 * knows the NEC row 13 and the NEC-selected IBM rows 89 to 92 that Windows
 * mailers put in ISO-2022-JP.  The state between chunks is the designated
 * set, SO, and up to four held bytes (an escape sequence or a lead byte);
 * the staging area only ever holds whole characters. */

#define ESC 0x1b
#define SO 0x0e
#define SI 0x0f

/* The set in G0.  OTHER: a double-byte set we do not read (JIS X 0212,
 * GB 2312, KS C 5601, JIS X 0213); OTHER1: an unknown single-byte one. */
enum jis_set { JIS_ASCII, JIS_KANA, JIS_X0208, JIS_OTHER, JIS_OTHER1 };

struct jis_out {
	struct decode_charset *d;
	struct buf *out;
	size_t n;
	char b[STAGE];
};

static int jis_flush(struct jis_out *j)
{
	int ret = charset_run(j->d, j->b, j->n, j->out);
	j->n = 0;
	return ret;
}

/* One character of n CP932 bytes. */
static int jis_put(struct jis_out *j, unsigned char c1, unsigned char c2, size_t n)
{
	if (j->n + n > sizeof(j->b) && jis_flush(j) < 0)
		return -1;
	j->b[j->n++] = (char)c1;
	if (n == 2)
		j->b[j->n++] = (char)c2;
	return 0;
}

/* One U+FFFD, after what is staged. */
static int jis_bad(struct jis_out *j)
{
	if (jis_flush(j) < 0 || emit(&j->d->overflow, j->out, replacement, 3, true) < 0)
		return -1;
	j->d->replaced++;
	return 0;
}

/* The escape sequence h[0..n) (h[0] is ESC): 1 done (*set_r set when it
 * designates G0), 2 done and standing for one character we do not read
 * (ESC N and its byte), 0 unfinished, -1 not an escape sequence. */
static int jis_escape(const unsigned char *h, size_t n, unsigned char *set_r)
{
	if (n < 3)
		return n == 2 && (h[1] == 0 || strchr("($&.N", h[1]) == NULL) ? -1 : 0;
	bool final2 = h[2] >= 0x40 && h[2] <= 0x7e;
	switch (h[1]) {
	case '(':
		if (!final2)
			return -1;
		*set_r = h[2] == 'B' || h[2] == 'J' || h[2] == 'H' ? JIS_ASCII
			 : h[2] == 'I' ? JIS_KANA : JIS_OTHER1;
		return 1;
	case '$':
		if (h[2] == '@' || h[2] == 'B') {
			*set_r = JIS_X0208;
			return 1;
		}
		if (h[2] == 'A') {
			*set_r = JIS_OTHER;
			return 1;
		}
		if (h[2] != '(')
			return -1;
		if (n < 4)
			return 0;
		if (h[3] < 0x40 || h[3] > 0x7e)
			return -1;
		*set_r = h[3] == '@' || h[3] == 'B' ? JIS_X0208 : JIS_OTHER;
		return 1;
	case '&': /* ESC & @: the JIS X 0208-1990 announcer */
		return h[2] == '@' ? 1 : -1;
	case '.': /* a 96-character set to G2 (ISO-2022-JP-2): only ESC N uses it */
		return final2 ? 1 : -1;
	default: /* ESC N x */
		return 2;
	}
}

/* A byte that is not part of an escape sequence. */
static int jis_data(struct decode_charset *d, struct jis_out *j, unsigned char c)
{
	if (d->jis_nhold > 0) {
		unsigned char lead = d->jis_hold[0];
		d->jis_nhold = 0;
		if (c >= 0x21 && c <= 0x7e) {
			if (d->jis_set != JIS_X0208)
				return jis_bad(j);
			unsigned char s1 = (unsigned char)(((lead - 0x21) >> 1) +
							   (lead <= 0x5e ? 0x81 : 0xc1));
			unsigned char s2 = (unsigned char)(lead & 1 ? c + (c <= 0x5f ? 0x1f : 0x20)
							   : c + 0x7e);
			return jis_put(j, s1, s2, 2);
		}
		if (jis_bad(j) < 0) /* a lead byte without its second byte */
			return -1;
	}
	if (c == SO || c == SI) {
		d->jis_so = c == SO;
		return 0;
	}
	if (c >= 0x80)
		return jis_bad(j);
	bool graphic = c >= 0x21 && c <= 0x7e;
	if (d->jis_so || d->jis_set == JIS_KANA) {
		if (graphic)
			return c <= 0x5f ? jis_put(j, c | 0x80, 0, 1) : jis_bad(j);
	} else if (graphic && (d->jis_set == JIS_X0208 || d->jis_set == JIS_OTHER)) {
		d->jis_hold[0] = c;
		d->jis_nhold = 1;
		return 0;
	} else if (graphic && d->jis_set == JIS_OTHER1) {
		return jis_bad(j);
	}
	return jis_put(j, c, 0, 1);
}

static int jis_byte(struct decode_charset *d, struct jis_out *j, unsigned char c)
{
	if (d->jis_nhold > 0 && d->jis_hold[0] == ESC) {
		d->jis_hold[d->jis_nhold++] = c;
		unsigned char set = d->jis_set;
		int r = jis_escape(d->jis_hold, d->jis_nhold, &set);
		if (r == 0)
			return 0;
		if (r > 0) {
			d->jis_nhold = 0;
			d->jis_set = set;
			return r == 2 ? jis_bad(j) : 0;
		}
		/* Not an escape sequence: U+FFFD for the ESC; the bytes that
		 * fitted so far are text, and c is read afresh. */
		unsigned char rest[sizeof(d->jis_hold)];
		size_t nrest = d->jis_nhold - 2u;
		memcpy(rest, d->jis_hold + 1, nrest);
		d->jis_nhold = 0;
		if (jis_bad(j) < 0)
			return -1;
		for (size_t k = 0; k < nrest; k++)
			if (jis_data(d, j, rest[k]) < 0)
				return -1;
	}
	if (c != ESC)
		return jis_data(d, j, c);
	if (d->jis_nhold > 0 && jis_bad(j) < 0) /* a lead byte cut short */
		return -1;
	d->jis_hold[0] = ESC;
	d->jis_nhold = 1;
	return 0;
}

static int jis_run(struct decode_charset *d, const unsigned char *p, size_t n, struct buf *out)
{
	struct jis_out j = { .d = d, .out = out, .n = 0 };

	for (size_t i = 0; i < n; i++)
		if (jis_byte(d, &j, p[i]) < 0)
			return -1;
	return jis_flush(&j);
}

/* End of an ISO-2022-JP stream: what is held becomes U+FFFD. */
static int jis_finish(struct decode_charset *d, struct buf *out)
{
	struct jis_out j = { .d = d, .out = out, .n = 0 };
	int ret = d->jis_nhold > 0 ? jis_bad(&j) : 0;

	d->jis_nhold = 0;
	d->jis_so = false;
	d->jis_set = JIS_ASCII;
	return ret;
}

int decode_charset(struct decode_charset *d, const void *in, size_t len, struct buf *out)
{
	const char *ip = in;

	if (d->overflow)
		return -1;
	if (d->jis)
		return jis_run(d, in, len, out);
	while (len > 0) {
		char tmp[DECODE_CHARSET_PEND_MAX + 1024];
		size_t take = MIN(len, (size_t)1024);
		size_t n = d->npend;

		memcpy(tmp, d->pend, n);
		memcpy(tmp + n, ip, take);
		ip += take;
		len -= take;
		d->npend = 0;
		if (charset_run(d, tmp, n + take, out) < 0)
			return -1;
	}
	return 0;
}

int decode_charset_finish(struct decode_charset *d, struct buf *out)
{
	char ob[64];
	char *op = ob;
	size_t ol = sizeof(ob);
	int ret = 0;

	if (d->overflow)
		return -1;
	if (d->jis)
		ret = jis_finish(d, out);
	if (d->npend > 0) {
		d->npend = 0;
		d->replaced++;
		ret = emit(&d->overflow, out, replacement, 3, true);
	}
	iconv(d->cd, NULL, NULL, &op, &ol);
	if (ret == 0)
		ret = emit(&d->overflow, out, ob, (size_t)(op - ob), true);
	return ret;
}

int decode_charset_convert(const char *charset, const void *in, size_t len,
			   struct buf *out, const char **error_r)
{
	struct decode_charset d;

	if (decode_charset_init(&d, charset, error_r) < 0)
		return -1;
	int ret = decode_charset(&d, in, len, out);
	if (ret == 0)
		ret = decode_charset_finish(&d, out);
	decode_charset_free(&d);
	if (ret < 0)
		*error_r = "decoded text too long";
	return ret;
}
