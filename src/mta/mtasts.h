/* mtasts.h - RFC 8461 MTA-STS records and policies, RFC 6698/7672 TLSA records.
 *
 * Pure parsing, no I/O: the caller does the DNS lookups, the HTTPS fetch of
 * the policy and the caching; these functions only judge what came back.
 * Every parser is a single forward pass over data..data+len, bounded by len
 * (and the policy by MTASTS_BODY_MAX), nothing recurses and nothing is
 * allocated.  Keywords are case-sensitive, as the RFC 8461 ABNF (%s"...")
 * says; host names compare case-insensitively. */
#ifndef YUBIN_MTA_MTASTS_H
#define YUBIN_MTA_MTASTS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define MTASTS_ID_MAX 32            /* RFC 8461 3.1: id is 1*32(ALPHA / DIGIT) */
#define MTASTS_MX_MAX 64            /* mx patterns kept; further ones are ignored */
#define MTASTS_MX_LEN 256           /* one pattern, NUL included (a domain is <= 253) */
#define MTASTS_MAX_AGE_MAX 31557600u        /* RFC 8461 3.2: about a year */
/* RFC 8461 expects policies to be small (a few lines); a body longer than
 * this is refused, not cut, so the fetcher can stop reading at this size. */
#define MTASTS_BODY_MAX 65536

/* The _mta-sts.<domain> TXT record (RFC 8461 3.1), its character-strings
 * already concatenated: "v=STSv1; id=20160831085700Z;".  "v=STSv1" must be
 * the very first thing; fields are separated by ';' with optional spaces or
 * tabs around it, a trailing ';' is optional, extension fields are checked
 * against the ABNF and otherwise ignored.  id is required, exactly once,
 * 1-32 letters and digits.  On success id (MTASTS_ID_MAX + 1 bytes) holds
 * the NUL-terminated id; on failure it is "".  0 / -1 invalid.
 *
 * Selecting the record is the caller's business: drop the TXT records that
 * do not begin with "v=STSv1", and when more or fewer than one remains the
 * domain has no usable policy (RFC 8461 3.1); do not pick one. */
int mtasts_parse_txt(const char *txt, size_t len, char id[MTASTS_ID_MAX + 1]);

enum mtasts_mode { MTASTS_NONE, MTASTS_TESTING, MTASTS_ENFORCE };

struct mtasts_policy {
	enum mtasts_mode mode;
	unsigned max_age;           /* seconds, clamped to MTASTS_MAX_AGE_MAX */
	/* mx patterns in order, lower-cased, NUL-terminated, without a
	 * trailing dot; "*.example.com" is a wildcard for one label. */
	char mx[MTASTS_MX_MAX][MTASTS_MX_LEN];
	size_t n_mx;
};

/* The policy file body from https://mta-sts.<domain>/.well-known/mta-sts.txt
 * (RFC 8461 3.2): "key: value" lines ended by LF or CR LF (the last line
 * need not be ended).  Known keys: version (must be "STSv1"), mode
 * ("enforce", "testing" or "none"), max_age (decimal seconds; more than
 * MTASTS_MAX_AGE_MAX clamps to it), mx (repeatable; after MTASTS_MX_MAX
 * patterns the rest are ignored).  version, mode and max_age are required
 * exactly once; mode enforce or testing needs at least one mx.  Unknown
 * keys are ignored (their names must still be valid), spaces and tabs
 * around a value are trimmed, empty lines are skipped, a control character
 * anywhere (NUL, a lone CR) makes the body invalid, and so does one longer
 * than MTASTS_BODY_MAX.
 *
 * Returns 0 with *p filled, or -1 with *p cleared and *why_r (if why_r is
 * not NULL) set to a static English reason for the log. */
int mtasts_parse_policy(const char *body, size_t len, struct mtasts_policy *p,
			const char **why_r);

/* Whether the MX host name mxhost (as DNS gave it; a trailing dot is
 * ignored) matches one of p's mx patterns, case-insensitively.
 * "*.example.com" matches exactly one leftmost label: "mx.example.com" but
 * neither "a.b.example.com" nor "example.com" (RFC 8461 4.1).  The mode is
 * not looked at: what a mismatch means is the caller's business. */
bool mtasts_mx_match(const struct mtasts_policy *p, const char *mxhost);

/* One TLSA record (RFC 6698 2.1).  data points into the rdata given to
 * tlsa_parse_rdata (it is not copied: with matching type 0 it is a whole
 * certificate or public key), so it is valid only as long as that is. */
struct tlsa_rr {
	uint8_t usage;              /* 0 PKIX-TA, 1 PKIX-EE, 2 DANE-TA, 3 DANE-EE */
	uint8_t selector;           /* 0 full certificate, 1 SubjectPublicKeyInfo */
	uint8_t mtype;              /* 0 exact data, 1 SHA-256, 2 SHA-512 */
	const unsigned char *data;  /* certificate association data */
	size_t len;
};

/* Parse a TLSA RDATA (wire format): usage, selector, matching type, then the
 * association data.  -1 when it is shorter than 4 octets or when a digest's
 * length does not fit its matching type (SHA-256: 32, SHA-512: 64 octets).
 * Unknown usages, selectors and matching types parse (0): such a record is
 * "unusable", not malformed, and whether a TLSA RRset has any usable record
 * at all matters to the caller (RFC 7672 2.2).  A record that fails to
 * parse is as unusable as one tlsa_usable_for_smtp() refuses. */
int tlsa_parse_rdata(const unsigned char *rd, size_t len, struct tlsa_rr *out);

/* RFC 7672 3.1.3: for SMTP only DANE-TA(2) and DANE-EE(3) are usable,
 * PKIX-TA(0) and PKIX-EE(1) are not; selector 0 or 1; matching type 0, 1 or
 * 2 with a data length that fits it. */
bool tlsa_usable_for_smtp(const struct tlsa_rr *r);

#endif
