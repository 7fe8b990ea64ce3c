/* rfc2047.c - encoded-words: decoding for display, encoding for the MUA.
 *
 * The decoder is one pass with a pending "run" (the charset decoder of the
 * last encoded-word plus the whitespace seen after it): whitespace is only
 * written once we know the next token is not another encoded-word, and the
 * charset stream is only finished when the charset changes or plain text
 * follows, which is what joins a multibyte character split over two words. */
#include "mail/rfc2047.h"

#include <errno.h>
#include <iconv.h>
#include <stdlib.h>
#include <string.h>

#include "core/util.h"
#include "mail/decode.h"
#include "mail/mutf7.h"

struct run {
	bool open;
	char charset[DECODE_CHARSET_NAME_MAX + 1];
	struct decode_charset cs;
	size_t ws_start, ws_len; /* whitespace after the last word */
};

static bool is_ws(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

/* Decode B or Q text into bytes (at most n); -1 on bad encoding. */
static long decode_text(char enc, const unsigned char *t, size_t n, unsigned char *bytes)
{
	size_t o = 0;

	if (enc == 'Q' || enc == 'q') {
		for (size_t i = 0; i < n; i++) {
			if (t[i] == '_') {
				bytes[o++] = ' ';
			} else if (t[i] == '=') {
				if (n - i < 3 || hex_value(t[i + 1]) < 0 || hex_value(t[i + 2]) < 0)
					return -1;
				int v = hex_value(t[i + 1]) * 16 + hex_value(t[i + 2]);
				bytes[o++] = (unsigned char)v;
				i += 2;
			} else {
				bytes[o++] = t[i];
			}
		}
		return (long)o;
	}
	/* B: alphabet then at most two '=' of padding; unpadded is tolerated. */
	uint32_t acc = 0;
	unsigned bits = 0;
	size_t i = 0;
	for (; i < n && t[i] != '='; i++) {
		int v = base64_value(t[i]);
		if (v < 0)
			return -1;
		acc = ((acc << 6) | (uint32_t)v) & 0xffff;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			bytes[o++] = (unsigned char)(acc >> bits);
		}
	}
	size_t pad = n - i;
	if (pad > 2 || (pad == 2 && t[i + 1] != '='))
		return -1;
	return (long)o;
}

struct word {
	char charset[DECODE_CHARSET_NAME_MAX + 1];
	size_t end; /* index just past "?=" */
	size_t nbytes;
	unsigned char bytes[RFC2047_DECODE_WORD_MAX];
};

/* Parse an encoded-word at in[i] ("=?" known to be there). */
static bool parse_word(const char *in, size_t len, size_t i, struct word *w)
{
	size_t lim = MIN(len, i + RFC2047_DECODE_WORD_MAX);
	size_t p = i + 2, cs = p;

	while (p < lim && in[p] != '?' && !is_ws(in[p]) && (unsigned char)in[p] > 0x20 &&
	       (unsigned char)in[p] < 0x7f)
		p++;
	if (p + 2 >= lim || in[p] != '?' || in[p + 2] != '?')
		return false;
	size_t cs_len = p - cs;
	const char *star = memchr(in + cs, '*', cs_len);
	if (star != NULL)
		cs_len = (size_t)(star - (in + cs)); /* RFC 2231 language */
	if (cs_len == 0 || cs_len > DECODE_CHARSET_NAME_MAX)
		return false;
	char enc = in[p + 1];
	if (enc != 'B' && enc != 'b' && enc != 'Q' && enc != 'q')
		return false;
	size_t t = p + 3, e = t;
	while (e + 1 < lim && !(in[e] == '?' && in[e + 1] == '=')) {
		if (is_ws(in[e]) || in[e] == '?' || (unsigned char)in[e] < 0x20 ||
		    (unsigned char)in[e] >= 0x7f)
			return false;
		e++;
	}
	if (e + 1 >= lim)
		return false;
	long n = decode_text(enc, (const unsigned char *)in + t, e - t, w->bytes);
	if (n < 0)
		return false;
	memcpy(w->charset, in + cs, cs_len);
	w->charset[cs_len] = '\0';
	w->nbytes = (size_t)n;
	w->end = e + 2;
	return true;
}

/* Finish the run's charset stream; the pending whitespace stays. */
static int run_close(struct run *r, struct buf *out)
{
	int ret = 0;

	if (r->open) {
		ret = decode_charset_finish(&r->cs, out);
		decode_charset_free(&r->cs);
		r->open = false;
	}
	return ret;
}

int rfc2047_decode(const char *in, size_t len, struct buf *out)
{
	struct run r = { .open = false };
	struct word *w = xmalloc(sizeof(*w));
	size_t i = 0;
	int ret = 0;

	while (i < len && ret == 0) {
		if (in[i] == '=' && i + 1 < len && in[i + 1] == '?' && parse_word(in, len, i, w)) {
			bool same = r.open && str_ieq(r.charset, w->charset);
			if (!same) {
				struct decode_charset cs;
				const char *err;
				if (decode_charset_init(&cs, w->charset, &err) < 0)
					goto literal;
				if (run_close(&r, out) < 0) {
					decode_charset_free(&cs);
					ret = -1;
					break;
				}
				r.cs = cs;
				r.open = true;
				memcpy(r.charset, w->charset, sizeof(r.charset));
			}
			/* Whitespace between two encoded-words is dropped. */
			r.ws_len = 0;
			if (decode_charset(&r.cs, w->bytes, w->nbytes, out) < 0) {
				ret = -1;
				break;
			}
			i = w->end;
			r.ws_start = i;
			while (i < len && is_ws(in[i]))
				i++;
			r.ws_len = i - r.ws_start;
			continue;
		}
literal:
		/* Plain text: the run ends and its whitespace is real. */
		if (run_close(&r, out) < 0 ||
		    (r.ws_len && buf_append(out, in + r.ws_start, r.ws_len) < 0)) {
			ret = -1;
			break;
		}
		r.ws_len = 0;
		size_t s = i++;
		while (i < len && !(in[i] == '=' && i + 1 < len && in[i + 1] == '?'))
			i++;
		if (buf_append(out, in + s, i - s) < 0)
			ret = -1;
	}
	if (ret == 0 && (run_close(&r, out) < 0 ||
			 (r.ws_len && buf_append(out, in + r.ws_start, r.ws_len) < 0)))
		ret = -1;
	if (r.open)
		decode_charset_free(&r.cs);
	free(w);
	return ret;
}

/* ---- encoder ---- */

static bool q_literal(unsigned char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
	       c == '!' || c == '*' || c == '+' || c == '-' || c == '/';
}

static size_t utf8_seq_len(unsigned char c)
{
	return c < 0x80 ? 1 : c < 0xe0 ? 2 : c < 0xf0 ? 3 : 4;
}

/* Convert in[0..n) to the charset as a self-contained piece (initial shift
 * state in, initial state out).  Returns the byte count, (size_t)-1 when a
 * character is not representable, (size_t)-2 when it needs more than cap. */
static size_t to_charset(iconv_t cd, const char *in, size_t n, char *dst, size_t cap)
{
	if (cd == (iconv_t)-1) {
		if (n > cap)
			return (size_t)-2;
		memcpy(dst, in, n);
		return n;
	}
	char *ib = (char *)in, *op = dst;
	size_t il = n, ol = cap;
	iconv(cd, NULL, NULL, NULL, NULL);
	if (iconv(cd, &ib, &il, &op, &ol) == (size_t)-1)
		return errno == E2BIG ? (size_t)-2 : (size_t)-1;
	if (iconv(cd, NULL, NULL, &op, &ol) == (size_t)-1)
		return (size_t)-2;
	return (size_t)(op - dst);
}

static size_t encoded_len(enum rfc2047_encoding enc, const unsigned char *b, size_t n)
{
	if (enc == RFC2047_B)
		return 4 * ((n + 2) / 3);
	size_t k = 0;
	for (size_t i = 0; i < n; i++)
		k += q_literal(b[i]) || b[i] == ' ' ? 1 : 3;
	return k;
}

static int put_word(struct buf *out, const char *charset, enum rfc2047_encoding enc,
		    const unsigned char *b, size_t n)
{
	static const char hex[] = "0123456789ABCDEF";
	char text[2 * RFC2047_WORD_MAX + 8];
	size_t t = 0;

	if (enc == RFC2047_B) {
		t = base64_encode(b, n, text);
	} else {
		for (size_t i = 0; i < n; i++) {
			if (b[i] == ' ') {
				text[t++] = '_';
			} else if (q_literal(b[i])) {
				text[t++] = (char)b[i];
			} else {
				text[t++] = '=';
				text[t++] = hex[b[i] >> 4];
				text[t++] = hex[b[i] & 15];
			}
		}
	}
	return buf_printf(out, "=?%s?%c?%.*s?=", charset, enc == RFC2047_B ? 'B' : 'Q',
			  (int)t, text);
}

int rfc2047_encode(const char *in, size_t len, const char *charset,
		   enum rfc2047_encoding enc, struct buf *out, const char **error_r)
{
	size_t cslen = strlen(charset);
	/* "=?" charset "?B?" text "?=" */
	size_t overhead = cslen + 7;
	iconv_t cd = (iconv_t)-1;
	int ret = -1;

	if (len > RFC2047_ENCODE_MAX) {
		*error_r = "text too long to encode";
		return -1;
	}
	if (!mutf7_utf8_valid(in, len)) {
		*error_r = "text to encode is not valid UTF-8";
		return -1;
	}
	if (cslen == 0 || cslen > DECODE_CHARSET_NAME_MAX || overhead + 4 > RFC2047_WORD_MAX ||
	    strspn(charset, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
			    "0123456789-_.:+") != cslen) {
		*error_r = "bad charset name";
		return -1;
	}
	if (!str_ieq(charset, "UTF-8")) {
		cd = iconv_open(charset, "UTF-8");
		if (cd == (iconv_t)-1) {
			*error_r = "unknown charset";
			return -1;
		}
	}
	size_t room = RFC2047_WORD_MAX - overhead;
	size_t s = 0;
	while (s < len) {
		unsigned char best[RFC2047_WORD_MAX], cand[RFC2047_WORD_MAX];
		size_t best_n = 0, e = s, best_e = s;

		/* Grow the word one character at a time while it fits. */
		while (e < len) {
			size_t next = e + utf8_seq_len((unsigned char)in[e]);
			size_t n = to_charset(cd, in + s, next - s, (char *)cand, sizeof(cand));
			if (n == (size_t)-1) {
				*error_r = "character not representable in charset";
				goto done;
			}
			if (n == (size_t)-2 || encoded_len(enc, cand, n) > room)
				break;
			memcpy(best, cand, n);
			best_n = n;
			best_e = e = next;
		}
		if (best_e == s) {
			*error_r = "character too long for one encoded-word";
			goto done;
		}
		if ((s > 0 && buf_append(out, "\r\n ", 3) < 0) ||
		    put_word(out, charset, enc, best, best_n) < 0) {
			*error_r = "encoded text too long";
			goto done;
		}
		s = best_e;
	}
	ret = 0;
done:
	if (cd != (iconv_t)-1)
		iconv_close(cd);
	return ret;
}
