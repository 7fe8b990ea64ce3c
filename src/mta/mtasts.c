/* mtasts.c - RFC 8461 MTA-STS TXT records and policies, TLSA RDATA.  See mtasts.h.
 *
 * Each parser walks its input once with a cursor that only moves forward;
 * every loop ends at the input's length (or a field's cap), nothing
 * recurses and nothing is allocated.  What a peer sends is judged by the
 * RFC 8461 ABNF, with a few tolerances, none of which can make a policy
 * weaker than its author meant: white space after the last TXT field,
 * empty lines in a policy body, a trailing dot on an mx pattern, and more
 * than the ABNF's 10 max_age digits (clamped to the cap anyway). */
#include "mta/mtasts.h"

#include <string.h>

static bool is_alpha(unsigned c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static bool is_digit(unsigned c)
{
	return c >= '0' && c <= '9';
}

static bool is_alnum(unsigned c)
{
	return is_alpha(c) || is_digit(c);
}

static bool is_wsp(unsigned c)
{
	return c == ' ' || c == '\t';
}

static unsigned to_lower(unsigned c)
{
	return c >= 'A' && c <= 'Z' ? c + ('a' - 'A') : c;
}

static bool mem_ieq(const char *a, const char *b, size_t n)
{
	for (size_t k = 0; k < n; k++)
		if (to_lower((unsigned char)a[k]) != to_lower((unsigned char)b[k]))
			return false;
	return true;
}

static size_t skip_wsp(const unsigned char *s, size_t len, size_t i)
{
	while (i < len && is_wsp(s[i]))
		i++;
	return i;
}

/* sts-ext-name and sts-policy-ext-name alike:
 * (ALPHA / DIGIT) *31(ALPHA / DIGIT / "_" / "-" / ".").  Returns the index
 * after the name, i itself when there is none.  A 33rd name character is
 * left for the caller, who then fails to find its '=' or ':'. */
static size_t scan_name(const unsigned char *s, size_t len, size_t i)
{
	if (i >= len || !is_alnum(s[i]))
		return i;
	size_t j = i + 1;
	while (j < len && j - i < 32 &&
	       (is_alnum(s[j]) || s[j] == '_' || s[j] == '-' || s[j] == '.'))
		j++;
	return j;
}

/* sts-ext-value: %x21-3A / %x3C / %x3E-7E, i.e. visible ASCII but ';' and '='. */
static bool is_txt_value(unsigned c)
{
	return c >= 0x21 && c <= 0x7e && c != ';' && c != '=';
}

int mtasts_parse_txt(const char *txt, size_t len, char id[MTASTS_ID_MAX + 1])
{
	static const char version[] = "v=STSv1";
	const unsigned char *s = (const unsigned char *)txt;
	size_t i = sizeof version - 1;
	char found[MTASTS_ID_MAX + 1];
	bool have_id = false;

	/* id is written only at the end, so that a record that turns out bad
	 * after a good id= never leaves that id behind. */
	id[0] = '\0';
	if (len < i || memcmp(s, version, i) != 0)
		return -1;
	/* Each round takes one ';' and the field after it: i grows every
	 * round, and the loop ends at len at the latest. */
	while (i < len) {
		i = skip_wsp(s, len, i);
		if (i == len)
			break;
		if (s[i] != ';')
			return -1;      /* "v=STSv10", "id=a b", a stray character */
		i = skip_wsp(s, len, i + 1);
		if (i == len)
			break;          /* the optional trailing ';' */
		size_t name = i;
		i = scan_name(s, len, i);
		if (i == name || i == len || s[i] != '=')
			return -1;      /* ";;", "; =x", "; id", an overlong name */
		size_t name_len = i - name;
		size_t value = ++i;
		while (i < len && is_txt_value(s[i]))
			i++;
		if (i == value)
			return -1;
		if (name_len != 2 || memcmp(s + name, "id", 2) != 0)
			continue;       /* an extension: well-formed, so ignored */
		/* Two ids would leave the policy's identity to a coin toss: the
		 * record is as broken as one with none. */
		if (have_id || i - value > MTASTS_ID_MAX)
			return -1;
		for (size_t k = value; k < i; k++)
			if (!is_alnum(s[k]))
				return -1;
		memcpy(found, s + value, i - value);
		found[i - value] = '\0';
		have_id = true;
	}
	if (!have_id)
		return -1;
	memcpy(id, found, sizeof found);
	return 0;
}

static int policy_fail(struct mtasts_policy *p, const char **why_r, const char *why)
{
	memset(p, 0, sizeof *p);
	if (why_r)
		*why_r = why;
	return -1;
}

static bool value_is(const unsigned char *v, size_t n, const char *word)
{
	size_t wl = strlen(word);
	return n == wl && memcmp(v, word, n) == 0;
}

/* sts-policy-mx-value = ["*."] Domain (RFC 5321 Domain: LDH labels of 1-63
 * octets, neither starting nor ending with '-').  A trailing dot is
 * dropped rather than refused: it names the same host.  On success out
 * holds the pattern lower-cased and NUL-terminated. */
static bool parse_mx(const unsigned char *v, size_t n, char out[MTASTS_MX_LEN])
{
	size_t o = 0, label = 0;

	if (n > 0 && v[n - 1] == '.')
		n--;
	if (n >= 2 && v[0] == '*' && v[1] == '.') {
		out[o++] = '*';
		out[o++] = '.';
	}
	/* The domain part is at most 253 octets (255 with "*."), so out
	 * (MTASTS_MX_LEN) always has room for it and the NUL. */
	if (n - o == 0 || n - o > 253)
		return false;
	for (size_t k = o; k < n; k++) {
		unsigned c = v[k];
		if (c == '.') {
			if (label == 0 || v[k - 1] == '-')
				return false;
			label = 0;
		} else if (is_alnum(c) || c == '-') {
			if (c == '-' && label == 0)
				return false;
			if (++label > 63)
				return false;
		} else {
			return false;   /* '*' elsewhere, '_', a space, non-ASCII */
		}
		out[o++] = (char)to_lower(c);
	}
	if (label == 0 || v[n - 1] == '-')
		return false;
	out[o] = '\0';
	return true;
}

int mtasts_parse_policy(const char *body, size_t len, struct mtasts_policy *p,
			const char **why_r)
{
	const unsigned char *s = (const unsigned char *)body;
	bool have_version = false, have_mode = false, have_max_age = false;
	char mx[MTASTS_MX_LEN];
	size_t i = 0;

	memset(p, 0, sizeof *p);
	if (len > MTASTS_BODY_MAX)
		return policy_fail(p, why_r, "policy larger than 64 KiB");
	/* One line per round; i moves past the line and its LF, so the loop
	 * runs at most len times. */
	while (i < len) {
		size_t start = i, end;
		const unsigned char *nl = memchr(s + i, '\n', len - i);
		if (nl) {
			end = (size_t)(nl - s);
			i = end + 1;
			if (end > start && s[end - 1] == '\r')
				end--;          /* CR LF */
		} else {
			end = len;              /* the last line needs no terminator */
			i = len;
		}
		/* A control character (NUL, a CR that does not end a line) can
		 * hide a field from one parser and show it to another. */
		for (size_t k = start; k < end; k++)
			if ((s[k] < 0x20 && s[k] != '\t') || s[k] == 0x7f)
				return policy_fail(p, why_r, "control character in policy");
		if (skip_wsp(s, end, start) == end)
			continue;               /* empty line */

		size_t name_end = scan_name(s, end, start);
		if (name_end == start || name_end == end || s[name_end] != ':')
			return policy_fail(p, why_r, "policy line is not \"key: value\"");
		const unsigned char *name = s + start;
		size_t name_len = name_end - start;
		size_t v = skip_wsp(s, end, name_end + 1), ve = end;
		while (ve > v && is_wsp(s[ve - 1]))
			ve--;
		const unsigned char *val = s + v;
		size_t vl = ve - v;

		if (value_is(name, name_len, "version")) {
			if (have_version)
				return policy_fail(p, why_r, "version given twice");
			if (!value_is(val, vl, "STSv1"))
				return policy_fail(p, why_r, "policy version is not STSv1");
			have_version = true;
		} else if (value_is(name, name_len, "mode")) {
			if (have_mode)
				return policy_fail(p, why_r, "mode given twice");
			if (value_is(val, vl, "enforce"))
				p->mode = MTASTS_ENFORCE;
			else if (value_is(val, vl, "testing"))
				p->mode = MTASTS_TESTING;
			else if (value_is(val, vl, "none"))
				p->mode = MTASTS_NONE;
			else
				return policy_fail(p, why_r, "mode is not enforce, testing or none");
			have_mode = true;
		} else if (value_is(name, name_len, "max_age")) {
			if (have_max_age)
				return policy_fail(p, why_r, "max_age given twice");
			if (vl == 0)
				return policy_fail(p, why_r, "max_age is not a number");
			/* Clamped at every digit: m stays <= the cap, so m * 10 + 9
			 * cannot overflow however many digits follow. */
			unsigned long m = 0;
			for (size_t k = 0; k < vl; k++) {
				if (!is_digit(val[k]))
					return policy_fail(p, why_r, "max_age is not a number");
				m = m * 10 + (val[k] - '0');
				if (m > MTASTS_MAX_AGE_MAX)
					m = MTASTS_MAX_AGE_MAX;
			}
			p->max_age = (unsigned)m;
			have_max_age = true;
		} else if (value_is(name, name_len, "mx")) {
			/* Checked even past the cap: whether a body is valid does
			 * not depend on how many patterns we keep. */
			if (!parse_mx(val, vl, mx))
				return policy_fail(p, why_r, "mx is not a host name pattern");
			if (p->n_mx < MTASTS_MX_MAX)
				memcpy(p->mx[p->n_mx++], mx, sizeof mx);
		}
		/* Any other key is an extension: ignored (RFC 8461 3.2). */
	}
	if (!have_version)
		return policy_fail(p, why_r, "policy has no version");
	if (!have_mode)
		return policy_fail(p, why_r, "policy has no mode");
	if (!have_max_age)
		return policy_fail(p, why_r, "policy has no max_age");
	if (p->mode != MTASTS_NONE && p->n_mx == 0)
		return policy_fail(p, why_r, "policy in enforce or testing mode has no mx");
	return 0;
}

bool mtasts_mx_match(const struct mtasts_policy *p, const char *mxhost)
{
	/* A name that long is no host name, and the bound keeps strnlen and
	 * the comparisons within MTASTS_MX_LEN. */
	size_t n = strnlen(mxhost, MTASTS_MX_LEN);
	if (n == MTASTS_MX_LEN)
		return false;
	if (n > 0 && mxhost[n - 1] == '.')
		n--;
	if (n == 0)
		return false;
	const char *dot = memchr(mxhost, '.', n);
	size_t first = dot ? (size_t)(dot - mxhost) : n;   /* leftmost label's length */

	for (size_t k = 0; k < p->n_mx && k < MTASTS_MX_MAX; k++) {
		const char *pat = p->mx[k];
		size_t pl = strnlen(pat, MTASTS_MX_LEN);
		if (pl == MTASTS_MX_LEN)
			continue;
		if (pl >= 2 && pat[0] == '*' && pat[1] == '.') {
			/* '*' stands for the whole leftmost label, which must be
			 * there and not empty: the rest, from its dot on, must
			 * be the pattern after the '*'.  So "a.b.example.com"
			 * (leaving "b.example.com") and "example.com" fail. */
			if (first == 0 || first == n)
				continue;
			if (n - first == pl - 1 && mem_ieq(mxhost + first, pat + 1, pl - 1))
				return true;
		} else if (pl == n && mem_ieq(mxhost, pat, n)) {
			return true;
		}
	}
	return false;
}

/* Does len fit matching type mtype?  The digests have their fixed sizes;
 * full data (0) and types we do not know need at least one octet. */
static bool tlsa_len_ok(unsigned mtype, size_t len)
{
	switch (mtype) {
	case 1:
		return len == 32;
	case 2:
		return len == 64;
	default:
		return len > 0;
	}
}

int tlsa_parse_rdata(const unsigned char *rd, size_t len, struct tlsa_rr *out)
{
	memset(out, 0, sizeof *out);
	if (len < 4 || !tlsa_len_ok(rd[2], len - 3))
		return -1;
	out->usage = rd[0];
	out->selector = rd[1];
	out->mtype = rd[2];
	out->data = rd + 3;
	out->len = len - 3;
	return 0;
}

bool tlsa_usable_for_smtp(const struct tlsa_rr *r)
{
	/* The length is checked again for a record not made by
	 * tlsa_parse_rdata: a short digest must never be compared. */
	return (r->usage == 2 || r->usage == 3) && r->selector <= 1 && r->mtype <= 2 &&
	       r->data != NULL && tlsa_len_ok(r->mtype, r->len);
}
