/* mutf7.c - modified UTF-7 and mailbox name rules.
 *
 * The decoder accepts only what mutf7_encode would produce, so that one
 * mailbox has exactly one wire name: two spellings of one name would let a
 * client create look-alike mailboxes or dodge a name check. */
#include "mail/mutf7.h"

#include <stdint.h>
#include <string.h>

#include "core/util.h"

static const char b64[] =
	"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+,";

/* Modified base64 (RFC 3501 5.1.3) is base64 with ',' for '/'. */
static int b64_value(unsigned char c)
{
	if (c == '/')
		return -1;
	return base64_value(c == ',' ? '/' : c);
}

static int put_utf8(struct buf *out, uint32_t cp)
{
	unsigned char s[4];
	size_t n;

	if (cp < 0x80) {
		s[0] = (unsigned char)cp;
		n = 1;
	} else if (cp < 0x800) {
		s[0] = (unsigned char)(0xc0 | (cp >> 6));
		s[1] = (unsigned char)(0x80 | (cp & 0x3f));
		n = 2;
	} else if (cp < 0x10000) {
		s[0] = (unsigned char)(0xe0 | (cp >> 12));
		s[1] = (unsigned char)(0x80 | ((cp >> 6) & 0x3f));
		s[2] = (unsigned char)(0x80 | (cp & 0x3f));
		n = 3;
	} else {
		s[0] = (unsigned char)(0xf0 | (cp >> 18));
		s[1] = (unsigned char)(0x80 | ((cp >> 12) & 0x3f));
		s[2] = (unsigned char)(0x80 | ((cp >> 6) & 0x3f));
		s[3] = (unsigned char)(0x80 | (cp & 0x3f));
		n = 4;
	}
	return buf_append(out, s, n);
}

/* Decode one UTF-8 sequence at in[0..len); returns its length, or 0 when it
 * is invalid (truncated, overlong, surrogate, > U+10FFFF, stray byte). */
static size_t get_utf8(const unsigned char *in, size_t len, uint32_t *cp_r)
{
	unsigned char c = in[0];
	size_t n;
	uint32_t cp, min;

	if (c < 0x80) {
		*cp_r = c;
		return 1;
	} else if (c >= 0xc2 && c <= 0xdf) {
		n = 2;
		cp = c & 0x1f;
		min = 0x80;
	} else if (c >= 0xe0 && c <= 0xef) {
		n = 3;
		cp = c & 0x0f;
		min = 0x800;
	} else if (c >= 0xf0 && c <= 0xf4) {
		n = 4;
		cp = c & 0x07;
		min = 0x10000;
	} else {
		return 0;
	}
	if (len < n)
		return 0;
	for (size_t i = 1; i < n; i++) {
		if ((in[i] & 0xc0) != 0x80)
			return 0;
		cp = (cp << 6) | (in[i] & 0x3f);
	}
	if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	*cp_r = cp;
	return n;
}

size_t mutf7_utf8_char_len(const char *in, size_t len)
{
	uint32_t cp;
	return get_utf8((const unsigned char *)in, len, &cp);
}

bool mutf7_utf8_valid(const char *in, size_t len)
{
	const unsigned char *p = (const unsigned char *)in;
	size_t i = 0;
	uint32_t cp;

	while (i < len) {
		size_t n = get_utf8(p + i, len - i, &cp);
		if (n == 0)
			return false;
		i += n;
	}
	return true;
}

/* Decode the base64 run in[0..len) (between '&' and '-') to UTF-8. */
static int decode_shift(const unsigned char *in, size_t len, struct buf *out,
			const char **error_r)
{
	uint32_t acc = 0, high = 0;
	unsigned bits = 0;

	for (size_t i = 0; i < len; i++) {
		int v = b64_value(in[i]);
		if (v < 0) {
			*error_r = "invalid character in modified base64";
			return -1;
		}
		acc = ((acc << 6) | (uint32_t)v) & 0xffffff;
		bits += 6;
		if (bits < 16)
			continue;
		bits -= 16;
		uint32_t u = (acc >> bits) & 0xffff;
		if (high) {
			if (u < 0xdc00 || u > 0xdfff) {
				*error_r = "unpaired surrogate in mailbox name";
				return -1;
			}
			if (put_utf8(out, 0x10000 + ((high - 0xd800) << 10) + (u - 0xdc00)) < 0)
				goto overflow;
			high = 0;
		} else if (u >= 0xd800 && u <= 0xdbff) {
			high = u;
		} else if (u >= 0xdc00 && u <= 0xdfff) {
			*error_r = "unpaired surrogate in mailbox name";
			return -1;
		} else if (u == 0) {
			*error_r = "NUL in mailbox name";
			return -1;
		} else if (u >= 0x20 && u <= 0x7e) {
			*error_r = "printable ASCII must not be base64 encoded";
			return -1;
		} else if (put_utf8(out, u) < 0) {
			goto overflow;
		}
	}
	if (high) {
		*error_r = "unpaired surrogate in mailbox name";
		return -1;
	}
	/* A canonical run ends with fewer than 6 spare bits, all zero; more
	 * spare bits mean an odd number of UTF-16 bytes. */
	if (bits >= 6) {
		*error_r = "odd UTF-16 length in modified base64";
		return -1;
	}
	if (acc & ((1u << bits) - 1)) {
		*error_r = "non-zero padding bits in modified base64";
		return -1;
	}
	return 0;
overflow:
	*error_r = "mailbox name too long";
	return -1;
}

int mutf7_decode(const char *in, size_t len, struct buf *out, const char **error_r)
{
	const unsigned char *p = (const unsigned char *)in;
	size_t i = 0;
	bool after_shift = false;

	while (i < len) {
		unsigned char c = p[i];
		if (c < 0x20 || c > 0x7e) {
			*error_r = "mailbox name must be 7-bit printable (modified UTF-7)";
			return -1;
		}
		if (c != '&') {
			if (buf_append(out, &c, 1) < 0)
				goto overflow;
			i++;
			after_shift = false;
			continue;
		}
		size_t start = ++i;
		while (i < len && b64_value(p[i]) >= 0)
			i++;
		if (i < len && p[i] != '-') {
			*error_r = "invalid character in modified base64";
			return -1;
		}
		if (i == len) {
			*error_r = "unterminated modified base64 in mailbox name";
			return -1;
		}
		if (i == start) {
			if (buf_append(out, "&", 1) < 0)
				goto overflow;
			after_shift = false;
		} else {
			if (after_shift) {
				*error_r = "adjacent modified base64 runs (not canonical)";
				return -1;
			}
			if (decode_shift(p + start, i - start, out, error_r) < 0)
				return -1;
			after_shift = true;
		}
		i++;
	}
	return 0;
overflow:
	*error_r = "mailbox name too long";
	return -1;
}

static int flush_shift(struct buf *out, uint32_t acc, unsigned bits)
{
	char c;

	if (bits > 0) {
		c = b64[(acc << (6 - bits)) & 0x3f];
		if (buf_append(out, &c, 1) < 0)
			return -1;
	}
	return buf_append(out, "-", 1);
}

int mutf7_encode(const char *in, size_t len, struct buf *out, const char **error_r)
{
	const unsigned char *p = (const unsigned char *)in;
	size_t i = 0;
	bool shifted = false;
	uint32_t acc = 0;
	unsigned bits = 0;

	while (i < len) {
		uint32_t cp;
		size_t n = get_utf8(p + i, len - i, &cp);
		if (n == 0 || cp == 0) {
			*error_r = n == 0 ? "mailbox name is not valid UTF-8"
					  : "NUL in mailbox name";
			return -1;
		}
		i += n;
		if (cp >= 0x20 && cp <= 0x7e) {
			if (shifted && flush_shift(out, acc, bits) < 0)
				goto overflow;
			shifted = false;
			acc = 0;
			bits = 0;
			if (buf_append(out, cp == '&' ? "&-" : (const char *)&p[i - 1],
				       cp == '&' ? 2 : 1) < 0)
				goto overflow;
			continue;
		}
		if (!shifted) {
			if (buf_append(out, "&", 1) < 0)
				goto overflow;
			shifted = true;
		}
		uint32_t units[2];
		size_t nu = 1;
		if (cp >= 0x10000) {
			units[0] = 0xd800 + ((cp - 0x10000) >> 10);
			units[1] = 0xdc00 + ((cp - 0x10000) & 0x3ff);
			nu = 2;
		} else {
			units[0] = cp;
		}
		for (size_t k = 0; k < nu; k++) {
			acc = ((acc << 16) | units[k]) & 0xffffff;
			bits += 16;
			while (bits >= 6) {
				bits -= 6;
				char c = b64[(acc >> bits) & 0x3f];
				if (buf_append(out, &c, 1) < 0)
					goto overflow;
			}
		}
	}
	if (shifted && flush_shift(out, acc, bits) < 0)
		goto overflow;
	return 0;
overflow:
	*error_r = "mailbox name too long";
	return -1;
}

int mutf7_mailbox_check(const char *name, size_t len, struct buf *norm_r,
			const char **error_r)
{
	const unsigned char *p = (const unsigned char *)name;
	size_t i = 0, levels = 0;

	if (len == 0) {
		*error_r = "empty mailbox name";
		return -1;
	}
	if (len > MUTF7_NAME_MAX) {
		*error_r = "mailbox name too long";
		return -1;
	}
	while (i <= len) {
		size_t start = i;
		while (i < len && p[i] != MUTF7_SEPARATOR) {
			uint32_t cp;
			size_t n = get_utf8(p + i, len - i, &cp);
			if (n == 0) {
				*error_r = "mailbox name is not valid UTF-8";
				return -1;
			}
			if (cp < 0x20 || (cp >= 0x7f && cp <= 0x9f)) {
				*error_r = "control character in mailbox name";
				return -1;
			}
			i += n;
		}
		size_t n = i - start;
		if (n == 0) {
			*error_r = "empty component in mailbox name";
			return -1;
		}
		if ((n == 1 && p[start] == '.') || (n == 2 && !memcmp(p + start, "..", 2))) {
			*error_r = "\".\" or \"..\" component in mailbox name";
			return -1;
		}
		if (++levels > MUTF7_LEVELS_MAX) {
			*error_r = "mailbox name has too many levels";
			return -1;
		}
		if (levels > 1 && buf_append(norm_r, "/", 1) < 0)
			goto overflow;
		bool inbox = levels == 1 && n == 5 &&
			     (p[start] | 0x20) == 'i' && (p[start + 1] | 0x20) == 'n' &&
			     (p[start + 2] | 0x20) == 'b' && (p[start + 3] | 0x20) == 'o' &&
			     (p[start + 4] | 0x20) == 'x';
		if (buf_append(norm_r, inbox ? "INBOX" : (const char *)p + start, n) < 0)
			goto overflow;
		i++;
	}
	return 0;
overflow:
	*error_r = "mailbox name too long";
	return -1;
}
