/* web_parse.c - Cookie, form and Accept-Encoding parsing for the page.
 *
 * Cursors over the input with explicit bounds; nothing recurses and no
 * output grows past what the caller gave. */
#include "proto/web/web_parse.h"

#include <string.h>
#include <strings.h>

#include "core/util.h"

static bool ows(char c)
{
	return c == ' ' || c == '\t';
}

/* RFC 6265 4.1.1 cookie-octet: printable ASCII but '"', ',', ';', '\\'. */
static bool cookie_octet(unsigned char c)
{
	return c >= 0x21 && c <= 0x7e && c != '"' && c != ',' && c != ';' && c != '\\';
}

int web_parse_cookie(const char *header, const char *name, char *out, size_t outsz)
{
	size_t nl = strlen(name);
	const char *p = header;

	if (outsz == 0)
		return -1;
	out[0] = '\0';
	if (header == NULL)
		return 0;
	while (*p) {
		while (ows(*p) || *p == ';')
			p++;
		const char *ns = p;
		while (*p && *p != '=' && *p != ';')
			p++;
		const char *ne = p;
		while (ne > ns && ows(ne[-1]))
			ne--;
		if (*p != '=')
			continue;               /* a pair without '=': ignored */
		p++;
		while (ows(*p))
			p++;
		const char *vs = p;
		while (*p && *p != ';')
			p++;
		const char *ve = p;
		while (ve > vs && ows(ve[-1]))
			ve--;
		if ((size_t)(ne - ns) != nl || memcmp(ns, name, nl) != 0)
			continue;
		if (ve - vs >= 2 && vs[0] == '"' && ve[-1] == '"') {
			vs++;
			ve--;
		}
		size_t vl = (size_t)(ve - vs);
		if (vl >= outsz)
			return -1;
		for (size_t i = 0; i < vl; i++)
			if (!cookie_octet((unsigned char)vs[i]))
				return -1;
		memcpy(out, vs, vl);
		out[vl] = '\0';
		return 1;
	}
	return 0;
}

/* Decode in[0..len) ('+' is a space, %XX a byte) into out; the decoded
 * length, or -1 (bad escape, NUL, or more than max bytes). */
static long form_decode(const char *in, size_t len, char *out, size_t max)
{
	size_t o = 0;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)in[i];
		if (c == '+') {
			c = ' ';
		} else if (c == '%') {
			int hi = i + 2 < len ? hex_value((unsigned char)in[i + 1]) : -1;
			int lo = i + 2 < len ? hex_value((unsigned char)in[i + 2]) : -1;
			if (hi < 0 || lo < 0)
				return -1;
			c = (unsigned char)(hi << 4 | lo);
			i += 2;
		}
		if (c == '\0' || o >= max)
			return -1;
		if (out)
			out[o] = (char)c;
		o++;
	}
	return (long)o;
}

int web_parse_form(const char *body, size_t len, const char *name, char *out, size_t outsz)
{
	size_t nl = strlen(name);
	size_t i = 0;
	char key[64];

	if (outsz == 0)
		return -1;
	out[0] = '\0';
	while (i < len) {
		size_t s = i;
		while (i < len && body[i] != '&')
			i++;
		size_t e = i;
		if (i < len)
			i++;                    /* the '&' */
		const char *eq = memchr(body + s, '=', e - s);
		size_t klen = eq ? (size_t)(eq - (body + s)) : e - s;
		if (klen == 0 && !eq)
			continue;               /* "&&" */
		long kl = form_decode(body + s, klen, key, sizeof key);
		if (kl < 0 || (size_t)kl != nl || memcmp(key, name, nl) != 0)
			continue;               /* a key we cannot read is not ours */
		if (eq == NULL)
			return 1;               /* "name" alone: empty value */
		size_t vs = (size_t)(eq - body) + 1;
		long vl = form_decode(body + vs, e - vs, out, outsz - 1);
		if (vl < 0) {
			out[0] = '\0';
			return -1;
		}
		out[vl] = '\0';
		return 1;
	}
	return 0;
}

/* A q-value (RFC 9110 12.4.2) of zero: "0", "0.", "0.0" ... "0.000". */
static bool q_zero(const char *v, size_t n)
{
	if (n == 0 || v[0] != '0')
		return false;
	if (n == 1)
		return true;
	if (v[1] != '.' || n > 5)
		return false;
	for (size_t i = 2; i < n; i++)
		if (v[i] != '0')
			return false;
	return true;
}

bool web_parse_accepts_gzip(const char *header)
{
	int gzip = -1, star = -1;           /* -1 unnamed, 0 refused, 1 accepted */
	const char *p = header;

	if (header == NULL)
		return false;
	while (*p) {
		while (ows(*p) || *p == ',')
			p++;
		const char *cs = p;
		while (*p && *p != ',' && *p != ';' && !ows(*p))
			p++;
		size_t cl = (size_t)(p - cs);
		bool zero = false;
		while (*p && *p != ',') {
			/* parameters: ; q=VALUE (others ignored) */
			while (ows(*p) || *p == ';')
				p++;
			const char *ps = p;
			while (*p && *p != ',' && *p != ';')
				p++;
			const char *pe = p;
			while (pe > ps && ows(pe[-1]))
				pe--;
			if (pe - ps >= 2 && (ps[0] == 'q' || ps[0] == 'Q') && ps[1] == '=')
				zero = q_zero(ps + 2, (size_t)(pe - ps - 2));
		}
		if (cl == 0)
			continue;
		int v = zero ? 0 : 1;
		if ((cl == 4 && strncasecmp(cs, "gzip", 4) == 0) ||
		    (cl == 6 && strncasecmp(cs, "x-gzip", 6) == 0))
			gzip = gzip == 1 ? 1 : v;
		else if (cl == 1 && cs[0] == '*')
			star = v;
	}
	return gzip == 1 || (gzip == -1 && star == 1);
}
