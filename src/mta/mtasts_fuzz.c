/* mtasts_fuzz.c - libFuzzer target for the MTA-STS TXT and policy parsers and
 * the TLSA RDATA parser.
 *
 * Input: byte 0 selects the parser (mod 3: TXT record, policy body, TLSA
 * RDATA), the rest is what it parses.  Checks that results stay inside
 * their caps, strings are NUL-terminated and well-formed, a failure leaves
 * nothing behind, and every pattern of a parsed policy matches the host
 * names it should and not the ones it should not. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "mta/mtasts.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static bool alnum(unsigned c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

static void fuzz_txt(const char *s, size_t n)
{
	char id[MTASTS_ID_MAX + 1];
	memset(id, 'X', sizeof id);
	if (mtasts_parse_txt(s, n, id) != 0) {
		if (id[0] != '\0')
			abort();
		return;
	}
	const char *end = memchr(id, '\0', sizeof id);
	if (!end || end == id)
		abort();
	for (const char *c = id; c < end; c++)
		if (!alnum((unsigned char)*c))
			abort();
	if (n < 7 || memcmp(s, "v=STSv1", 7) != 0)
		abort();
}

/* One pattern alone: the names it must and must not match. */
static void check_pattern(const char *pat)
{
	static struct mtasts_policy q;
	char host[MTASTS_MX_LEN + 8];
	size_t n = strlen(pat);

	memset(&q, 0, sizeof q);
	memcpy(q.mx[0], pat, n + 1);
	q.n_mx = 1;
	if (pat[0] == '*') {
		/* "*.rest": "x.rest" matches, "rest" and "x.y.rest" do not */
		host[0] = 'x';
		memcpy(host + 1, pat + 1, n);
		if (!mtasts_mx_match(&q, host))
			abort();
		if (mtasts_mx_match(&q, pat + 2))
			abort();
		memcpy(host, "x.y", 3);
		memcpy(host + 3, pat + 1, n);
		if (mtasts_mx_match(&q, host))
			abort();
	} else {
		/* itself, upper-cased and with a trailing dot */
		if (!mtasts_mx_match(&q, pat))
			abort();
		for (size_t k = 0; k < n; k++)
			host[k] = pat[k] >= 'a' && pat[k] <= 'z' ? (char)(pat[k] - 32) : pat[k];
		host[n] = '.';
		host[n + 1] = '\0';
		if (!mtasts_mx_match(&q, host))
			abort();
		/* one more label in front is another host */
		host[0] = 'x';
		host[1] = '.';
		memcpy(host + 2, pat, n + 1);
		if (mtasts_mx_match(&q, host))
			abort();
	}
}

static void fuzz_policy(const char *s, size_t n)
{
	static struct mtasts_policy p;
	const char *why = NULL;

	memset(&p, 0x55, sizeof p);
	if (mtasts_parse_policy(s, n, &p, &why) != 0) {
		if (!why || why[0] == '\0' || p.n_mx != 0 || p.max_age != 0 ||
		    p.mode != MTASTS_NONE || p.mx[0][0] != '\0')
			abort();
		return;
	}
	if (n > MTASTS_BODY_MAX || p.n_mx > MTASTS_MX_MAX || p.max_age > MTASTS_MAX_AGE_MAX)
		abort();
	if (p.mode != MTASTS_NONE && p.mode != MTASTS_TESTING && p.mode != MTASTS_ENFORCE)
		abort();
	if (p.mode != MTASTS_NONE && p.n_mx == 0)
		abort();
	for (size_t k = 0; k < p.n_mx; k++) {
		const char *pat = p.mx[k];
		const char *end = memchr(pat, '\0', MTASTS_MX_LEN);
		if (!end || end == pat || end[-1] == '.' || end[-1] == '-')
			abort();
		for (const char *c = pat; c < end; c++) {
			unsigned ch = (unsigned char)*c;
			if (ch == '*') {
				if (c != pat || c[1] != '.')
					abort();    /* only as the whole leftmost label */
			} else if (!(alnum(ch) || ch == '.' || ch == '-') ||
				   (ch >= 'A' && ch <= 'Z')) {
				abort();
			}
		}
		if (pat[0] != '*' && !mtasts_mx_match(&p, pat))
			abort();
		check_pattern(pat);
	}

	/* Each line of the input as a host name: must not crash, whatever it is. */
	char host[MTASTS_MX_LEN + 1];
	for (size_t i = 0, lines = 0; i < n && lines < 8; lines++) {
		const char *nl = memchr(s + i, '\n', n - i);
		size_t l = nl ? (size_t)(nl - (s + i)) : n - i;
		size_t c = l < MTASTS_MX_LEN ? l : MTASTS_MX_LEN;
		memcpy(host, s + i, c);
		host[c] = '\0';
		(void)mtasts_mx_match(&p, host);
		i += l + 1;
	}
}

static void fuzz_tlsa(const unsigned char *rd, size_t n)
{
	struct tlsa_rr r;
	memset(&r, 0x55, sizeof r);
	if (tlsa_parse_rdata(rd, n, &r) != 0) {
		if (r.data != NULL || r.len != 0 || tlsa_usable_for_smtp(&r))
			abort();
		return;
	}
	if (n < 4 || r.data != rd + 3 || r.len != n - 3 || r.usage != rd[0] ||
	    r.selector != rd[1] || r.mtype != rd[2])
		abort();
	if ((r.mtype == 1 && r.len != 32) || (r.mtype == 2 && r.len != 64))
		abort();
	bool usable = tlsa_usable_for_smtp(&r);
	if (usable != ((r.usage == 2 || r.usage == 3) && r.selector <= 1 && r.mtype <= 2))
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size == 0)
		return 0;
	const char *s = (const char *)data + 1;
	size_t n = size - 1;
	switch (data[0] % 3) {
	case 0:
		fuzz_txt(s, n);
		break;
	case 1:
		fuzz_policy(s, n);
		break;
	default:
		fuzz_tlsa(data + 1, n);
		break;
	}
	return 0;
}
