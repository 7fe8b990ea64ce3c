/* scram.c - SASL SCRAM-SHA-256 (RFC 5802, RFC 7677) and CRAM-MD5 (RFC 2195).
 * See scram.h.
 *
 * Messages are split into comma-separated attributes by a cursor (struct
 * fields); every attribute is bounded by SCRAM_FIELD_MAX and every message
 * by SCRAM_MESSAGE_MAX before anything is copied.  Keys live in fixed
 * arrays and are wiped with OPENSSL_cleanse when done with. */
#include "auth/scram.h"

#include <assert.h>
#include <limits.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#include "core/util.h"

#define SCRAM_SECRET_PREFIX "SCRAM-SHA-256$"
/* Random bytes in a nonce: 18 encode to 24 base64 characters, no padding. */
#define SCRAM_NONCE_BYTES 18
/* Base64 length of n bytes, without the NUL. */
/* What base64_decode may write for one attribute value. */
#define SCRAM_DECODE_BUF (SCRAM_FIELD_MAX / 4 * 3 + 3)
/* MD5 output (CRAM-MD5). */
#define CRAM_MD5_LEN 16

/* ---- primitives ---- */

static int hmac_sha256(const unsigned char *key, size_t key_len, const void *data, size_t len,
		       unsigned char out[SCRAM_KEY_LEN])
{
	unsigned int n = 0;

	if (key_len > INT_MAX)
		return -1;
	if (HMAC(EVP_sha256(), key, (int)key_len, data, len, out, &n) == NULL ||
	    n != SCRAM_KEY_LEN)
		return -1;
	return 0;
}

static int sha256(const unsigned char *data, size_t len, unsigned char out[SCRAM_KEY_LEN])
{
	unsigned int n = 0;

	if (EVP_Digest(data, len, out, &n, EVP_sha256(), NULL) != 1 || n != SCRAM_KEY_LEN)
		return -1;
	return 0;
}

/* SaltedPassword = Hi(password, salt, iter); ClientKey, StoredKey = H(ClientKey)
 * and ServerKey from it (RFC 5802 sect. 3). */
static int derive_keys(const char *password, const unsigned char *salt, size_t salt_len,
		       unsigned iter, unsigned char client_key[SCRAM_KEY_LEN],
		       unsigned char stored_key[SCRAM_KEY_LEN],
		       unsigned char server_key[SCRAM_KEY_LEN])
{
	unsigned char salted[SCRAM_KEY_LEN];
	size_t pw_len = strlen(password);
	int ret = -1;

	if (pw_len > INT_MAX || salt_len > INT_MAX || iter > INT_MAX)
		return -1;
	if (PKCS5_PBKDF2_HMAC(password, (int)pw_len, salt, (int)salt_len, (int)iter, EVP_sha256(),
			      SCRAM_KEY_LEN, salted) != 1)
		goto out;
	if (hmac_sha256(salted, sizeof salted, "Client Key", 10, client_key) < 0 ||
	    sha256(client_key, SCRAM_KEY_LEN, stored_key) < 0 ||
	    hmac_sha256(salted, sizeof salted, "Server Key", 10, server_key) < 0)
		goto out;
	ret = 0;
out:
	OPENSSL_cleanse(salted, sizeof salted);
	return ret;
}

static char *b64_heap(const unsigned char *in, size_t len)
{
	char *out = xmalloc(B64_LEN(len) + 1);

	base64_encode(in, len, out);
	return out;
}

/* Decode the base64 value v (vlen bytes) into out (outsz bytes): the decoded
 * length, or -1 when it is bad base64 or longer than outsz. */
static long b64_field(const char *v, size_t vlen, unsigned char *out, size_t outsz)
{
	unsigned char tmp[SCRAM_DECODE_BUF];

	if (vlen > SCRAM_FIELD_MAX)
		return -1;
	long n = base64_decode(v, vlen, tmp);
	if (n >= 0 && (size_t)n <= outsz)
		memcpy(out, tmp, (size_t)n);
	else
		n = -1;
	OPENSSL_cleanse(tmp, sizeof tmp);
	return n;
}

static char *random_nonce(void)
{
	unsigned char rnd[SCRAM_NONCE_BYTES];

	if (RAND_bytes(rnd, sizeof rnd) != 1)
		return NULL;
	return b64_heap(rnd, sizeof rnd);
}

/* ---- attribute parsing ---- */

/* Cursor over comma-separated attributes: "a,b," yields "a", "b", "". */
struct fields {
	const char *p, *end;
	bool done;
};

static void fields_init(struct fields *f, const char *s, const char *end)
{
	f->p = s;
	f->end = end;
	f->done = false;
}

static bool fields_next(struct fields *f, const char **v_r, size_t *len_r)
{
	if (f->done)
		return false;
	const char *comma = memchr(f->p, ',', (size_t)(f->end - f->p));
	*v_r = f->p;
	if (comma == NULL) {
		*len_r = (size_t)(f->end - f->p);
		f->p = f->end;
		f->done = true;
	} else {
		*len_r = (size_t)(comma - f->p);
		f->p = comma + 1;
	}
	return true;
}

/* A message as a whole: bounded, without NUL, no attribute over the cap. */
static const char *message_check(const char *msg, size_t len)
{
	if (len > SCRAM_MESSAGE_MAX)
		return "message too long";
	if (memchr(msg, '\0', len) != NULL)
		return "NUL byte in message";
	struct fields f;
	const char *v;
	size_t vlen;
	fields_init(&f, msg, msg + len);
	while (fields_next(&f, &v, &vlen))
		if (vlen > SCRAM_FIELD_MAX)
			return "attribute too long";
	return NULL;
}

/* True when attribute a (len bytes) is "<name>=..."; *v_r, *vlen_r the value. */
static bool attr_is(const char *a, size_t len, char name, const char **v_r, size_t *vlen_r)
{
	if (len < 2 || a[0] != name || a[1] != '=')
		return false;
	*v_r = a + 2;
	*vlen_r = len - 2;
	return true;
}

/* attr-val = ALPHA "=" value; the value's characters were bounded already
 * (no NUL, no comma) and are otherwise ignored. */
static bool extension_ok(const char *a, size_t len)
{
	unsigned char c = len ? (unsigned char)a[0] : 0;

	return len >= 3 && ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')) && a[1] == '=';
}

/* printable = %x21-2B / %x2D-7E, at least one. */
static bool nonce_ok(const char *v, size_t len)
{
	if (len == 0)
		return false;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)v[i];
		if (c < 0x21 || c > 0x7E || c == ',')
			return false;
	}
	return true;
}

/* Decimal without sign or leading zero, at most 10 digits. */
static bool parse_uint(const char *v, size_t len, unsigned *r)
{
	unsigned long long n = 0;

	if (len == 0 || len > 10 || (v[0] == '0' && len > 1))
		return false;
	for (size_t i = 0; i < len; i++) {
		if (v[i] < '0' || v[i] > '9')
			return false;
		n = n * 10 + (unsigned)(v[i] - '0');
	}
	if (n > UINT_MAX)
		return false;
	*r = (unsigned)n;
	return true;
}

/* Length of the well-formed UTF-8 sequence at p (p < end), 0 if none. */
static size_t utf8_seq(const unsigned char *p, const unsigned char *end)
{
	unsigned char c = p[0];
	uint32_t cp, min;
	size_t n;

	if (c < 0x80)
		return 1;
	if (c >= 0xC2 && c <= 0xDF) {
		n = 2;
		cp = c & 0x1F;
		min = 0x80;
	} else if ((c & 0xF0) == 0xE0) {
		n = 3;
		cp = c & 0x0F;
		min = 0x800;
	} else if (c >= 0xF0 && c <= 0xF4) {
		n = 4;
		cp = c & 0x07;
		min = 0x10000;
	} else {
		return 0;
	}
	if ((size_t)(end - p) < n)
		return 0;
	for (size_t i = 1; i < n; i++) {
		if ((p[i] & 0xC0) != 0x80)
			return 0;
		cp = cp << 6 | (p[i] & 0x3F);
	}
	if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
		return 0;
	return n;
}

/* Unescape a saslname: heap string, or NULL when it is empty, holds an
 * escape other than =2C / =3D, a control character or invalid UTF-8.
 * (The grammar allows controls; no user name of ours has one, and refusing
 * them keeps them out of logs.) */
static char *saslname_decode(const char *v, size_t len)
{
	const unsigned char *p = (const unsigned char *)v, *end = p + len;
	char *out;
	size_t o = 0;

	if (len == 0)
		return NULL;
	out = xmalloc(len + 1);
	while (p < end) {
		if (*p == '=') {
			if (end - p < 3)
				goto bad;
			if (p[1] == '2' && p[2] == 'C')
				out[o++] = ',';
			else if (p[1] == '3' && p[2] == 'D')
				out[o++] = '=';
			else
				goto bad;
			p += 3;
			continue;
		}
		if (*p < 0x20 || *p == 0x7F)
			goto bad;
		size_t n = utf8_seq(p, end);
		if (n == 0)
			goto bad;
		memcpy(out + o, p, n);
		o += n;
		p += n;
	}
	out[o] = '\0';
	return out;
bad:
	free(out);
	return NULL;
}

/* Escape ',' and '=' for a saslname. */
static char *saslname_encode(const char *s)
{
	size_t n = strlen(s);
	char *out = xreallocarray(NULL, n + 1, 3);
	size_t o = 0;

	for (size_t i = 0; i < n; i++) {
		if (s[i] == ',') {
			memcpy(out + o, "=2C", 3);
			o += 3;
		} else if (s[i] == '=') {
			memcpy(out + o, "=3D", 3);
			o += 3;
		} else {
			out[o++] = s[i];
		}
	}
	out[o] = '\0';
	return out;
}

/* a "," b "," c into one heap buffer of *len_r bytes (no NUL). */
static char *auth_message(const char *a, size_t alen, const char *b, size_t blen, const char *c,
			  size_t clen, size_t *len_r)
{
	char *am = xmalloc(alen + blen + clen + 2);

	memcpy(am, a, alen);
	am[alen] = ',';
	memcpy(am + alen + 1, b, blen);
	am[alen + 1 + blen] = ',';
	memcpy(am + alen + blen + 2, c, clen);
	*len_r = alen + blen + clen + 2;
	return am;
}

/* ---- stored secrets ---- */

char *scram_secret_make_salt(const char *password, const unsigned char *salt, size_t salt_len,
			     unsigned iterations)
{
	unsigned char ck[SCRAM_KEY_LEN], sk[SCRAM_KEY_LEN], vk[SCRAM_KEY_LEN];
	char salt64[B64_LEN(SCRAM_SALT_MAX) + 1];
	char sk64[B64_LEN(SCRAM_KEY_LEN) + 1], vk64[B64_LEN(SCRAM_KEY_LEN) + 1];
	char *ret = NULL;

	if (iterations == 0)
		iterations = SCRAM_ITERATIONS;
	assert(iterations >= SCRAM_ITERATIONS_MIN && iterations <= SCRAM_ITERATIONS_MAX);
	assert(salt_len >= 1 && salt_len <= SCRAM_SALT_MAX);
	if (derive_keys(password, salt, salt_len, iterations, ck, sk, vk) == 0) {
		base64_encode(salt, salt_len, salt64);
		base64_encode(sk, sizeof sk, sk64);
		base64_encode(vk, sizeof vk, vk64);
		ret = xasprintf(SCRAM_SECRET_PREFIX "%u:%s$%s:%s", iterations, salt64, sk64, vk64);
	}
	OPENSSL_cleanse(ck, sizeof ck);
	OPENSSL_cleanse(sk, sizeof sk);
	OPENSSL_cleanse(vk, sizeof vk);
	OPENSSL_cleanse(sk64, sizeof sk64);
	OPENSSL_cleanse(vk64, sizeof vk64);
	return ret;
}

char *scram_secret_make(const char *password, unsigned iterations)
{
	unsigned char salt[SCRAM_SALT_LEN];

	if (RAND_bytes(salt, sizeof salt) != 1)
		return NULL;
	return scram_secret_make_salt(password, salt, sizeof salt, iterations);
}

int scram_secret_parse(const char *secret, unsigned *iter_r, unsigned char *salt,
		       size_t *salt_len_r, unsigned char stored_key[SCRAM_KEY_LEN],
		       unsigned char server_key[SCRAM_KEY_LEN])
{
	const size_t plen = sizeof(SCRAM_SECRET_PREFIX) - 1;
	const char *p, *end, *sep;
	unsigned iter;
	long n;

	if (secret == NULL)
		return -1;
	size_t len = strnlen(secret, SCRAM_FIELD_MAX + 1);
	if (len > SCRAM_FIELD_MAX || strncmp(secret, SCRAM_SECRET_PREFIX, plen) != 0)
		return -1;
	p = secret + plen;
	end = secret + len;

	sep = memchr(p, ':', (size_t)(end - p));
	if (sep == NULL || !parse_uint(p, (size_t)(sep - p), &iter) ||
	    iter < SCRAM_ITERATIONS_MIN || iter > SCRAM_ITERATIONS_MAX)
		return -1;
	p = sep + 1;
	sep = memchr(p, '$', (size_t)(end - p));
	if (sep == NULL)
		return -1;
	n = b64_field(p, (size_t)(sep - p), salt, SCRAM_SALT_MAX);
	if (n < 1)
		return -1;
	p = sep + 1;
	sep = memchr(p, ':', (size_t)(end - p));
	if (sep == NULL ||
	    b64_field(p, (size_t)(sep - p), stored_key, SCRAM_KEY_LEN) != SCRAM_KEY_LEN)
		goto bad;
	p = sep + 1;
	if (b64_field(p, (size_t)(end - p), server_key, SCRAM_KEY_LEN) != SCRAM_KEY_LEN)
		goto bad;
	*iter_r = iter;
	*salt_len_r = (size_t)n;
	return 0;
bad:
	OPENSSL_cleanse(stored_key, SCRAM_KEY_LEN);
	OPENSSL_cleanse(server_key, SCRAM_KEY_LEN);
	return -1;
}

/* ---- unknown users ----
 *
 * Salt and keys for a user without a secret: HMAC(key, label NUL authcid)
 * under a key drawn once per process, so the salt is stable per name and
 * nothing tells such a user from a real one with a wrong password. */

static pthread_once_t fake_once = PTHREAD_ONCE_INIT;
static unsigned char fake_key[SCRAM_KEY_LEN];
static bool fake_key_ok;

static void fake_key_init(void)
{
	fake_key_ok = RAND_bytes(fake_key, sizeof fake_key) == 1;
}

static int fake_hmac(const char *label, const char *authcid, unsigned char out[SCRAM_KEY_LEN])
{
	size_t llen = strlen(label) + 1, ulen = strlen(authcid);
	char *buf = xmalloc(llen + ulen);

	memcpy(buf, label, llen);
	memcpy(buf + llen, authcid, ulen);
	int r = hmac_sha256(fake_key, sizeof fake_key, buf, llen + ulen, out);
	free(buf);
	return r;
}

static int fake_secret(const char *authcid, unsigned char *salt, size_t *salt_len_r,
		       unsigned char stored_key[SCRAM_KEY_LEN],
		       unsigned char server_key[SCRAM_KEY_LEN])
{
	unsigned char h[SCRAM_KEY_LEN];

	pthread_once(&fake_once, fake_key_init);
	if (!fake_key_ok)
		return -1;
	if (fake_hmac("salt", authcid, h) < 0 || fake_hmac("stored", authcid, stored_key) < 0 ||
	    fake_hmac("server", authcid, server_key) < 0) {
		OPENSSL_cleanse(h, sizeof h);
		return -1;
	}
	memcpy(salt, h, SCRAM_SALT_LEN);
	*salt_len_r = SCRAM_SALT_LEN;
	OPENSSL_cleanse(h, sizeof h);
	return 0;
}

/* ---- server ---- */

enum scram_server_state {
	SCRAM_SERVER_CLIENT_FIRST,      /* waiting for the client-first-message */
	SCRAM_SERVER_FIRST,             /* ready for scram_server_first */
	SCRAM_SERVER_CLIENT_FINAL,      /* waiting for the client-final-message */
	SCRAM_SERVER_DONE,
};

struct scram_server {
	enum scram_server_state state;
	char *gs2;                      /* GS2 header as sent, both commas */
	size_t gs2_len;
	char *bare;                     /* client-first-message-bare */
	size_t bare_len;
	char *authcid, *authzid;
	char *cnonce;                   /* client nonce */
	char *snonce;                   /* fixed server nonce (tests), or NULL */
	char *nonce;                    /* cnonce + server nonce */
	char *server_first;
	unsigned char stored_key[SCRAM_KEY_LEN];
	unsigned char server_key[SCRAM_KEY_LEN];
	bool fake;                      /* no such user: never authenticates */
};

struct scram_server *scram_server_new(void)
{
	struct scram_server *s = xcalloc(1, sizeof *s);

	s->state = SCRAM_SERVER_CLIENT_FIRST;
	return s;
}

void scram_server_free(struct scram_server **sp)
{
	struct scram_server *s = *sp;

	if (s == NULL)
		return;
	free(s->gs2);
	free(s->bare);
	free(s->authcid);
	free(s->authzid);
	free(s->cnonce);
	free(s->snonce);
	free(s->nonce);
	free(s->server_first);
	OPENSSL_cleanse(s, sizeof *s);
	free(s);
	*sp = NULL;
}

void scram_server_set_nonce(struct scram_server *s, const char *nonce)
{
	assert(nonce_ok(nonce, strlen(nonce)));
	free(s->snonce);
	s->snonce = xstrdup(nonce);
}

static int server_fail(struct scram_server *s, const char **error_r, const char *error)
{
	s->state = SCRAM_SERVER_DONE;
	*error_r = error;
	return -1;
}

int scram_server_client_first(struct scram_server *s, const char *msg, size_t len,
			      const char **error_r)
{
	const char *end = msg + len, *v, *av, *err;
	char *authzid = NULL, *authcid = NULL;
	size_t vlen, avlen;
	struct fields f;

	if (s->state != SCRAM_SERVER_CLIENT_FIRST)
		return server_fail(s, error_r, "out of sequence");
	if ((err = message_check(msg, len)) != NULL)
		return server_fail(s, error_r, err);

	/* gs2-header = gs2-cbind-flag "," [ authzid ] "," */
	fields_init(&f, msg, end);
	fields_next(&f, &v, &vlen);
	if (vlen >= 2 && v[0] == 'p' && v[1] == '=')
		return server_fail(s, error_r, "channel binding is not supported");
	if (vlen != 1 || (v[0] != 'n' && v[0] != 'y') || !fields_next(&f, &v, &vlen))
		return server_fail(s, error_r, "bad GS2 header");
	if (vlen == 0) {
		authzid = xstrdup("");
	} else if (attr_is(v, vlen, 'a', &av, &avlen)) {
		if ((authzid = saslname_decode(av, avlen)) == NULL) {
			err = "bad authorization identity";
			goto fail;
		}
	} else {
		err = "bad GS2 header";
		goto fail;
	}
	if (f.done) {
		err = "bad GS2 header";
		goto fail;
	}
	const char *bare = f.p;

	/* [reserved-mext ","] username "," nonce ["," extensions] */
	fields_next(&f, &v, &vlen);
	if (attr_is(v, vlen, 'm', &av, &avlen)) {
		err = "mandatory extensions are not supported";
		goto fail;
	}
	if (!attr_is(v, vlen, 'n', &av, &avlen)) {
		err = "missing user name";
		goto fail;
	}
	if ((authcid = saslname_decode(av, avlen)) == NULL) {
		err = "bad user name";
		goto fail;
	}
	if (!fields_next(&f, &v, &vlen) || !attr_is(v, vlen, 'r', &av, &avlen)) {
		err = "missing nonce";
		goto fail;
	}
	if (!nonce_ok(av, avlen)) {
		err = "bad nonce";
		goto fail;
	}
	const char *cnonce = av;
	size_t cnonce_len = avlen;
	while (fields_next(&f, &v, &vlen)) {
		if (!extension_ok(v, vlen)) {
			err = "bad extension";
			goto fail;
		}
	}

	s->gs2_len = (size_t)(bare - msg);
	s->gs2 = xstrndup(msg, s->gs2_len);
	s->bare_len = (size_t)(end - bare);
	s->bare = xstrndup(bare, s->bare_len);
	s->cnonce = xstrndup(cnonce, cnonce_len);
	s->authcid = authcid;
	s->authzid = authzid;
	s->state = SCRAM_SERVER_FIRST;
	return 0;
fail:
	free(authzid);
	free(authcid);
	return server_fail(s, error_r, err);
}

const char *scram_server_authcid(const struct scram_server *s)
{
	return s->authcid;
}

const char *scram_server_authzid(const struct scram_server *s)
{
	return s->authzid;
}

int scram_server_first(struct scram_server *s, const char *secret, char **out_r)
{
	unsigned char salt[SCRAM_SALT_MAX];
	char salt64[B64_LEN(SCRAM_SALT_MAX) + 1];
	size_t salt_len;
	unsigned iter;
	char *snonce;

	*out_r = NULL;
	if (s->state != SCRAM_SERVER_FIRST)
		goto fail;
	if (secret != NULL) {
		if (scram_secret_parse(secret, &iter, salt, &salt_len, s->stored_key,
				       s->server_key) < 0)
			goto fail;
		s->fake = false;
	} else {
		if (fake_secret(s->authcid, salt, &salt_len, s->stored_key, s->server_key) < 0)
			goto fail;
		iter = SCRAM_ITERATIONS;
		s->fake = true;
	}
	snonce = s->snonce ? xstrdup(s->snonce) : random_nonce();
	if (snonce == NULL)
		goto fail;
	s->nonce = xasprintf("%s%s", s->cnonce, snonce);
	free(snonce);
	base64_encode(salt, salt_len, salt64);
	s->server_first = xasprintf("r=%s,s=%s,i=%u", s->nonce, salt64, iter);
	*out_r = xstrdup(s->server_first);
	s->state = SCRAM_SERVER_CLIENT_FINAL;
	return 0;
fail:
	OPENSSL_cleanse(s->stored_key, sizeof s->stored_key);
	OPENSSL_cleanse(s->server_key, sizeof s->server_key);
	s->state = SCRAM_SERVER_DONE;
	return -1;
}

int scram_server_client_final(struct scram_server *s, const char *msg, size_t len, char **out_r,
			      const char **error_r)
{
	unsigned char proof[SCRAM_KEY_LEN], sig[SCRAM_KEY_LEN], key[SCRAM_KEY_LEN];
	unsigned char h[SCRAM_KEY_LEN], cb[SCRAM_DECODE_BUF];
	const char *v, *av, *err;
	size_t vlen, avlen;
	struct fields f;
	long n;

	*out_r = NULL;
	if (s->state != SCRAM_SERVER_CLIENT_FINAL)
		return server_fail(s, error_r, "out of sequence");
	if ((err = message_check(msg, len)) != NULL)
		return server_fail(s, error_r, err);

	/* client-final-message-without-proof "," proof: values hold no comma */
	const char *comma = memrchr(msg, ',', len);
	if (comma == NULL ||
	    !attr_is(comma + 1, (size_t)(msg + len - comma - 1), 'p', &av, &avlen))
		return server_fail(s, error_r, "missing proof");
	if (b64_field(av, avlen, proof, sizeof proof) != SCRAM_KEY_LEN)
		return server_fail(s, error_r, "bad proof");
	size_t wo_len = (size_t)(comma - msg);

	fields_init(&f, msg, comma);
	fields_next(&f, &v, &vlen);
	if (!attr_is(v, vlen, 'c', &av, &avlen))
		return server_fail(s, error_r, "missing channel binding");
	n = b64_field(av, avlen, cb, sizeof cb);
	if (n < 0)
		return server_fail(s, error_r, "bad channel binding");
	if ((size_t)n != s->gs2_len || memcmp(cb, s->gs2, s->gs2_len) != 0)
		return server_fail(s, error_r, "channel binding does not match the GS2 header");
	if (!fields_next(&f, &v, &vlen) || !attr_is(v, vlen, 'r', &av, &avlen))
		return server_fail(s, error_r, "missing nonce");
	if (avlen != strlen(s->nonce) || memcmp(av, s->nonce, avlen) != 0)
		return server_fail(s, error_r, "nonce mismatch");
	while (fields_next(&f, &v, &vlen))
		if (!extension_ok(v, vlen))
			return server_fail(s, error_r, "bad extension");

	/* ClientKey = ClientProof XOR HMAC(StoredKey, AuthMessage); H(ClientKey)
	 * must be StoredKey.  Unknown users go the same way, then fail. */
	size_t am_len;
	char *am = auth_message(s->bare, s->bare_len, s->server_first, strlen(s->server_first),
				msg, wo_len, &am_len);
	int ret = -1;
	if (hmac_sha256(s->stored_key, sizeof s->stored_key, am, am_len, sig) < 0)
		goto out;
	for (size_t i = 0; i < SCRAM_KEY_LEN; i++)
		key[i] = proof[i] ^ sig[i];
	if (sha256(key, sizeof key, h) < 0)
		goto out;
	if (CRYPTO_memcmp(h, s->stored_key, SCRAM_KEY_LEN) == 0 && !s->fake) {
		if (hmac_sha256(s->server_key, sizeof s->server_key, am, am_len, sig) < 0)
			goto out;
		char sig64[B64_LEN(SCRAM_KEY_LEN) + 1];
		base64_encode(sig, sizeof sig, sig64);
		*out_r = xasprintf("v=%s", sig64);
		ret = 1;
	} else {
		*out_r = xstrdup("e=invalid-proof");
		ret = 0;
	}
out:
	free(am);
	OPENSSL_cleanse(proof, sizeof proof);
	OPENSSL_cleanse(sig, sizeof sig);
	OPENSSL_cleanse(key, sizeof key);
	OPENSSL_cleanse(h, sizeof h);
	OPENSSL_cleanse(s->stored_key, sizeof s->stored_key);
	OPENSSL_cleanse(s->server_key, sizeof s->server_key);
	s->state = SCRAM_SERVER_DONE;
	if (ret < 0)
		*error_r = "internal error";
	return ret;
}

/* ---- client ---- */

enum scram_client_state {
	SCRAM_CLIENT_FIRST,             /* ready for scram_client_first */
	SCRAM_CLIENT_FINAL,             /* waiting for the server-first-message */
	SCRAM_CLIENT_VERIFY,            /* waiting for the server-final-message */
	SCRAM_CLIENT_DONE,
};

struct scram_client {
	enum scram_client_state state;
	char *authcid;
	char *password;                 /* NULL once used */
	size_t password_len;
	char *nonce;                    /* client nonce */
	char *bare;                     /* client-first-message-bare */
	unsigned max_iter;
	unsigned char server_sig[SCRAM_KEY_LEN];
};

struct scram_client *scram_client_new(const char *authcid, const char *password)
{
	struct scram_client *c = xcalloc(1, sizeof *c);

	c->state = SCRAM_CLIENT_FIRST;
	c->authcid = xstrdup(authcid);
	c->password = xstrdup(password);
	c->password_len = strlen(password);
	c->max_iter = SCRAM_ITERATIONS_MAX;
	return c;
}

static void client_wipe_password(struct scram_client *c)
{
	if (c->password == NULL)
		return;
	OPENSSL_cleanse(c->password, c->password_len);
	free(c->password);
	c->password = NULL;
}

void scram_client_free(struct scram_client **cp)
{
	struct scram_client *c = *cp;

	if (c == NULL)
		return;
	client_wipe_password(c);
	free(c->authcid);
	free(c->nonce);
	free(c->bare);
	OPENSSL_cleanse(c, sizeof *c);
	free(c);
	*cp = NULL;
}

void scram_client_set_max_iterations(struct scram_client *c, unsigned max)
{
	c->max_iter = MAX(SCRAM_ITERATIONS_MIN, MIN(max, SCRAM_ITERATIONS_MAX));
}

void scram_client_set_nonce(struct scram_client *c, const char *nonce)
{
	assert(nonce_ok(nonce, strlen(nonce)));
	free(c->nonce);
	c->nonce = xstrdup(nonce);
}

char *scram_client_first(struct scram_client *c)
{
	if (c->state != SCRAM_CLIENT_FIRST)
		return NULL;
	if (c->nonce == NULL && (c->nonce = random_nonce()) == NULL)
		return NULL;
	char *user = saslname_encode(c->authcid);
	c->bare = xasprintf("n=%s,r=%s", user, c->nonce);
	free(user);
	c->state = SCRAM_CLIENT_FINAL;
	return xasprintf("n,,%s", c->bare);
}

int scram_client_final(struct scram_client *c, const char *msg, size_t len, char **out_r,
		       const char **error_r)
{
	unsigned char salt[SCRAM_DECODE_BUF];
	unsigned char ck[SCRAM_KEY_LEN], sk[SCRAM_KEY_LEN], vk[SCRAM_KEY_LEN];
	unsigned char sig[SCRAM_KEY_LEN];
	const char *v, *av, *err = NULL;
	char *wo = NULL, *am = NULL;
	size_t vlen, avlen, am_len;
	unsigned iter = 0;
	struct fields f;
	long salt_len = 0;
	int ret = -1;

	*out_r = NULL;
	if (c->state != SCRAM_CLIENT_FINAL) {
		err = "out of sequence";
		goto out;
	}
	if ((err = message_check(msg, len)) != NULL)
		goto out;

	/* [reserved-mext ","] nonce "," salt "," iteration-count ["," extensions] */
	fields_init(&f, msg, msg + len);
	fields_next(&f, &v, &vlen);
	if (attr_is(v, vlen, 'm', &av, &avlen)) {
		err = "mandatory extensions are not supported";
		goto out;
	}
	if (!attr_is(v, vlen, 'r', &av, &avlen)) {
		err = "missing nonce";
		goto out;
	}
	size_t cnonce_len = strlen(c->nonce);
	if (!nonce_ok(av, avlen) || avlen <= cnonce_len || memcmp(av, c->nonce, cnonce_len) != 0) {
		err = "nonce mismatch";
		goto out;
	}
	const char *nonce = av;
	size_t nonce_len = avlen;
	if (!fields_next(&f, &v, &vlen) || !attr_is(v, vlen, 's', &av, &avlen)) {
		err = "missing salt";
		goto out;
	}
	if ((salt_len = b64_field(av, avlen, salt, sizeof salt)) < 1) {
		err = "bad salt";
		goto out;
	}
	if (!fields_next(&f, &v, &vlen) || !attr_is(v, vlen, 'i', &av, &avlen)) {
		err = "missing iteration count";
		goto out;
	}
	if (!parse_uint(av, avlen, &iter) || iter < SCRAM_ITERATIONS_MIN || iter > c->max_iter) {
		err = "iteration count out of range";
		goto out;
	}
	while (fields_next(&f, &v, &vlen)) {
		if (!extension_ok(v, vlen)) {
			err = "bad extension";
			goto out;
		}
	}

	/* c=biws is base64("n,,"): no channel binding, no authzid. */
	wo = xasprintf("c=biws,r=%.*s", (int)nonce_len, nonce);
	am = auth_message(c->bare, strlen(c->bare), msg, len, wo, strlen(wo), &am_len);
	err = "internal error";
	if (derive_keys(c->password, salt, (size_t)salt_len, iter, ck, sk, vk) < 0 ||
	    hmac_sha256(sk, sizeof sk, am, am_len, sig) < 0 ||
	    hmac_sha256(vk, sizeof vk, am, am_len, c->server_sig) < 0)
		goto out;
	for (size_t i = 0; i < SCRAM_KEY_LEN; i++)
		ck[i] ^= sig[i];
	char proof64[B64_LEN(SCRAM_KEY_LEN) + 1];
	base64_encode(ck, sizeof ck, proof64);
	*out_r = xasprintf("%s,p=%s", wo, proof64);
	err = NULL;
	ret = 0;
out:
	free(wo);
	free(am);
	OPENSSL_cleanse(salt, sizeof salt);
	OPENSSL_cleanse(ck, sizeof ck);
	OPENSSL_cleanse(sk, sizeof sk);
	OPENSSL_cleanse(vk, sizeof vk);
	OPENSSL_cleanse(sig, sizeof sig);
	client_wipe_password(c);
	c->state = ret == 0 ? SCRAM_CLIENT_VERIFY : SCRAM_CLIENT_DONE;
	if (ret < 0) {
		OPENSSL_cleanse(c->server_sig, sizeof c->server_sig);
		*error_r = err;
	}
	return ret;
}

int scram_client_verify(struct scram_client *c, const char *msg, size_t len)
{
	unsigned char sig[SCRAM_KEY_LEN];
	const char *v, *av;
	size_t vlen, avlen;
	struct fields f;

	if (c->state != SCRAM_CLIENT_VERIFY || message_check(msg, len) != NULL)
		return 0;
	/* verifier ["," extensions] */
	fields_init(&f, msg, msg + len);
	fields_next(&f, &v, &vlen);
	if (!attr_is(v, vlen, 'v', &av, &avlen) ||
	    b64_field(av, avlen, sig, sizeof sig) != SCRAM_KEY_LEN)
		return 0;
	while (fields_next(&f, &v, &vlen))
		if (!extension_ok(v, vlen))
			return 0;
	int ok = CRYPTO_memcmp(sig, c->server_sig, SCRAM_KEY_LEN) == 0;
	OPENSSL_cleanse(sig, sizeof sig);
	return ok;
}

/* ---- CRAM-MD5 ---- */

static int hmac_md5(const char *secret, const char *challenge, unsigned char out[CRAM_MD5_LEN])
{
	size_t klen = strlen(secret);
	unsigned int n = 0;

	if (klen > INT_MAX)
		return -1;
	if (HMAC(EVP_md5(), secret, (int)klen, (const unsigned char *)challenge, strlen(challenge),
		 out, &n) == NULL || n != CRAM_MD5_LEN)
		return -1;
	return 0;
}

char *cram_md5_challenge(const char *hostname)
{
	unsigned char rnd[8];
	uint64_t r = 0;

	if (RAND_bytes(rnd, sizeof rnd) != 1)
		return NULL;
	for (size_t i = 0; i < sizeof rnd; i++)
		r = r << 8 | rnd[i];
	return xasprintf("<%llu.%lld@%s>", (unsigned long long)r, (long long)now_unix(), hostname);
}

int cram_md5_parse(const char *response, size_t len, char **user_r, char hex_r[33])
{
	*user_r = NULL;
	hex_r[0] = '\0';
	if (len > CRAM_MD5_RESPONSE_MAX || memchr(response, '\0', len) != NULL)
		return -1;
	const char *sp = memrchr(response, ' ', len);
	if (sp == NULL || sp == response || (size_t)(response + len - sp - 1) != 2 * CRAM_MD5_LEN)
		return -1;
	for (size_t i = 0; i < 2 * CRAM_MD5_LEN; i++)
		if (hex_value((unsigned char)sp[1 + i]) < 0)
			return -1;
	for (const char *p = response; p < sp; p++)
		if ((unsigned char)*p < 0x20 || *p == 0x7F)
			return -1;
	memcpy(hex_r, sp + 1, 2 * CRAM_MD5_LEN);
	hex_r[2 * CRAM_MD5_LEN] = '\0';
	*user_r = xstrndup(response, (size_t)(sp - response));
	return 0;
}

bool cram_md5_verify(const char *secret, const char *challenge, const char *hex)
{
	unsigned char want[CRAM_MD5_LEN], got[CRAM_MD5_LEN];

	if (secret == NULL || challenge == NULL || hex == NULL || secret[0] == '\0')
		return false;
	if (strnlen(hex, 2 * CRAM_MD5_LEN + 1) != 2 * CRAM_MD5_LEN)
		return false;
	for (size_t i = 0; i < CRAM_MD5_LEN; i++) {
		int hi = hex_value((unsigned char)hex[2 * i]);
		int lo = hex_value((unsigned char)hex[2 * i + 1]);
		if (hi < 0 || lo < 0)
			return false;
		got[i] = (unsigned char)(hi << 4 | lo);
	}
	if (hmac_md5(secret, challenge, want) < 0)
		return false;
	bool ok = CRYPTO_memcmp(want, got, CRAM_MD5_LEN) == 0;
	OPENSSL_cleanse(want, sizeof want);
	return ok;
}

char *cram_md5_response(const char *user, const char *secret, const char *challenge)
{
	static const char digits[] = "0123456789abcdef";
	unsigned char d[CRAM_MD5_LEN];
	char hex[2 * CRAM_MD5_LEN + 1];

	if (hmac_md5(secret, challenge, d) < 0)
		return NULL;
	for (size_t i = 0; i < CRAM_MD5_LEN; i++) {
		hex[2 * i] = digits[d[i] >> 4];
		hex[2 * i + 1] = digits[d[i] & 15];
	}
	hex[2 * CRAM_MD5_LEN] = '\0';
	OPENSSL_cleanse(d, sizeof d);
	return xasprintf("%s %s", user, hex);
}
