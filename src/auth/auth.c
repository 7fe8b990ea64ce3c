/* auth.c - argon2id password hashes, APOP digests and SASL PLAIN.  See auth.h. */
#include "auth/auth.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "core/util.h"
#include "store/store.h"

/* argon2id cost: libsodium's "interactive" profile (about 64 MiB). */
/* argon2id with t=2 passes over m=19 MiB: the OWASP password storage
 * baseline.  libsodium's "interactive" preset (64 MiB) costs ~80 ms and
 * 64 MiB per login here, which a mail server doing thousands of POP3/IMAP
 * logins pays on every one; this costs ~4x less and is still far beyond
 * crypt(3) SHA-512.  The parameters are stored in each hash, so changing
 * them later only affects new passwords. */
#define AUTH_PWHASH_OPSLIMIT 2
#define AUTH_PWHASH_MEMLIMIT (19u * 1024 * 1024)
/* Longest base64 SASL PLAIN message accepted. */
#define AUTH_SASL_PLAIN_MAX 1024
/* APOP digest: MD5 in hex. */
#define AUTH_APOP_HEX_LEN 32

static pthread_once_t dummy_once = PTHREAD_ONCE_INIT;
static char dummy_hash[crypto_pwhash_STRBYTES];

int auth_init(void)
{
	if (sodium_init() < 0) {
		log_error("auth: libsodium initialisation failed");
		return -1;
	}
	return 0;
}

char *auth_hash_password(const char *password)
{
	char out[crypto_pwhash_STRBYTES];

	if (crypto_pwhash_str(out, password, strlen(password), AUTH_PWHASH_OPSLIMIT,
			      AUTH_PWHASH_MEMLIMIT) != 0)
		return NULL;
	return xstrdup(out);
}

bool auth_verify_password(const char *hash, const char *password)
{
	if (!hash || !password)
		return false;
	/* the hash is read from a NUL-terminated column: it fits or it is bad */
	if (strnlen(hash, crypto_pwhash_STRBYTES) >= crypto_pwhash_STRBYTES)
		return false;
	return crypto_pwhash_str_verify(hash, password, strlen(password)) == 0;
}

static void make_dummy_hash(void)
{
	unsigned char rnd[16];
	char pw[33];

	randombytes_buf(rnd, sizeof(rnd));
	sodium_bin2hex(pw, sizeof(pw), rnd, sizeof(rnd));
	if (crypto_pwhash_str(dummy_hash, pw, strlen(pw), AUTH_PWHASH_OPSLIMIT,
			      AUTH_PWHASH_MEMLIMIT) != 0)
		dummy_hash[0] = '\0';
	sodium_memzero(pw, sizeof(pw));
}

/* ---- cache of verified credentials ----
 *
 * A login costs an argon2id verification (tens of ms, 19 MiB); clients
 * that log in again and again (IMAP clients opening several connections,
 * POP3 pollers) would spend the server's CPU on it.  After a successful
 * verification the cache keeps a keyed BLAKE2b digest of (address, stored
 * hash, password) -- never the password -- under a key made at start-up.
 * A later login with the same password, while the account's stored hash is
 * unchanged, matches the digest instead.  Changing the password changes
 * the stored hash, so the entry no longer matches; wrong passwords are
 * never cached and always pay the full price. */
#define AUTH_CACHE_SLOTS 4096
#define AUTH_CACHE_TTL_MS (60u * 60 * 1000)

struct cache_slot {
	unsigned char digest[crypto_generichash_BYTES];
	uint64_t expires_ms;
};

static pthread_mutex_t cache_mu = PTHREAD_MUTEX_INITIALIZER;
static struct cache_slot cache[AUTH_CACHE_SLOTS];
static unsigned char cache_key[crypto_generichash_KEYBYTES];
static bool cache_keyed;
static uint64_t cache_ttl_ms = AUTH_CACHE_TTL_MS;

void auth_cache_set_ttl(uint64_t ttl_ms)
{
	pthread_mutex_lock(&cache_mu);
	cache_ttl_ms = ttl_ms;
	memset(cache, 0, sizeof cache);
	pthread_mutex_unlock(&cache_mu);
}

static void cache_digest(const char *address, const char *hash, const char *password,
			 unsigned char out[crypto_generichash_BYTES])
{
	crypto_generichash_state st;
	unsigned char zero = 0;

	crypto_generichash_init(&st, cache_key, sizeof cache_key, crypto_generichash_BYTES);
	crypto_generichash_update(&st, (const unsigned char *)address, strlen(address));
	crypto_generichash_update(&st, &zero, 1);
	crypto_generichash_update(&st, (const unsigned char *)hash, strlen(hash));
	crypto_generichash_update(&st, &zero, 1);
	crypto_generichash_update(&st, (const unsigned char *)password, strlen(password));
	crypto_generichash_final(&st, out, crypto_generichash_BYTES);
}

/* The slot of an address: one per address, so a user's entry replaces
 * their previous one. */
static size_t cache_slot_of(const char *address)
{
	unsigned char h[8];
	uint64_t v = 0;

	crypto_generichash(h, sizeof h, (const unsigned char *)address, strlen(address), cache_key,
			   sizeof cache_key);
	for (size_t i = 0; i < sizeof h; i++)
		v = v << 8 | h[i];
	return (size_t)(v % AUTH_CACHE_SLOTS);
}

static bool cache_hit(const char *address, const char *hash, const char *password)
{
	unsigned char d[crypto_generichash_BYTES];
	bool hit = false;

	pthread_mutex_lock(&cache_mu);
	if (!cache_keyed || cache_ttl_ms == 0) {
		pthread_mutex_unlock(&cache_mu);
		return false;
	}
	pthread_mutex_unlock(&cache_mu);
	cache_digest(address, hash, password, d);
	size_t i = cache_slot_of(address);
	pthread_mutex_lock(&cache_mu);
	if (cache[i].expires_ms > now_ms() && sodium_memcmp(cache[i].digest, d, sizeof d) == 0)
		hit = true;
	pthread_mutex_unlock(&cache_mu);
	sodium_memzero(d, sizeof d);
	return hit;
}

static void cache_put(const char *address, const char *hash, const char *password)
{
	unsigned char d[crypto_generichash_BYTES];

	pthread_mutex_lock(&cache_mu);
	if (!cache_keyed) {
		crypto_generichash_keygen(cache_key);
		cache_keyed = true;
	}
	uint64_t ttl = cache_ttl_ms;
	pthread_mutex_unlock(&cache_mu);
	if (ttl == 0)
		return;
	cache_digest(address, hash, password, d);
	size_t i = cache_slot_of(address);
	pthread_mutex_lock(&cache_mu);
	memcpy(cache[i].digest, d, sizeof d);
	cache[i].expires_ms = now_ms() + ttl;
	pthread_mutex_unlock(&cache_mu);
	sodium_memzero(d, sizeof d);
}

int auth_login(struct store *st, const char *address, const char *password, struct account *a_r)
{
	return auth_login_cached(st, address, password, a_r, NULL);
}

int auth_login_cached(struct store *st, const char *address, const char *password,
		      struct account *a_r, bool *cached_r)
{
	int r = store_account_find(st, address, a_r);

	if (cached_r)
		*cached_r = false;

	if (r < 0)
		return -1;
	if (r == 0) {
		/* Spend the same time as a real check so that timing does not
		 * tell which accounts exist. */
		pthread_once(&dummy_once, make_dummy_hash);
		(void)auth_verify_password(dummy_hash, password);
		return 0;
	}
	if (cache_hit(a_r->address, a_r->pw_hash, password)) {
		if (cached_r)
			*cached_r = true;
		return 1;
	}
	if (!auth_verify_password(a_r->pw_hash, password)) {
		account_free(a_r);
		return 0;
	}
	cache_put(a_r->address, a_r->pw_hash, password);
	return 1;
}

/* Lower-case hex MD5(timestamp || secret) into out[33]; 0 ok, -1 error. */
int auth_apop_digest(const char *timestamp, const char *secret, char out[33])
{
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;
	int ok;

	if (!ctx)
		return -1;
	ok = EVP_DigestInit_ex(ctx, EVP_md5(), NULL) == 1 &&
	     EVP_DigestUpdate(ctx, timestamp, strlen(timestamp)) == 1 &&
	     EVP_DigestUpdate(ctx, secret, strlen(secret)) == 1 &&
	     EVP_DigestFinal_ex(ctx, md, &mdlen) == 1 && mdlen == 16;
	EVP_MD_CTX_free(ctx);
	if (!ok)
		return -1;
	sodium_bin2hex(out, 33, md, 16);
	return 0;
}

int auth_apop(struct store *st, const char *address, const char *timestamp,
	      const char *digest_hex, struct account *a_r)
{
	char want[33], got[33];
	int r;
	bool ok;

	if (strnlen(digest_hex, AUTH_APOP_HEX_LEN + 1) != AUTH_APOP_HEX_LEN)
		return 0;
	r = store_account_find(st, address, a_r);
	if (r <= 0)
		return r;
	if (!a_r->apop_secret) {
		account_free(a_r);
		return 0;
	}
	if (auth_apop_digest(timestamp, a_r->apop_secret, want) < 0) {
		account_free(a_r);
		return -1;
	}
	memcpy(got, digest_hex, sizeof(got));
	str_lower(got);
	ok = CRYPTO_memcmp(want, got, AUTH_APOP_HEX_LEN) == 0;
	sodium_memzero(want, sizeof(want));
	if (!ok) {
		account_free(a_r);
		return 0;
	}
	return 1;
}

int sasl_plain_decode(const char *b64, char **buf_r, const char **authzid_r,
		      const char **authcid_r, const char **passwd_r)
{
	size_t len = strnlen(b64, AUTH_SASL_PLAIN_MAX + 1);
	size_t cap = (len / 4) * 3 + 3 + 1;
	char *buf, *nul1, *nul2;
	long n;

	*buf_r = NULL;
	if (len == 0 || len > AUTH_SASL_PLAIN_MAX)
		return -1;
	buf = xmalloc(cap);
	n = base64_decode(b64, len, (unsigned char *)buf);
	if (n < 0 || (size_t)n >= cap)
		goto bad;
	buf[n] = '\0';
	nul1 = memchr(buf, '\0', (size_t)n);
	if (!nul1)
		goto bad;
	nul2 = memchr(nul1 + 1, '\0', (size_t)n - (size_t)(nul1 + 1 - buf));
	if (!nul2)
		goto bad;
	/* a third NUL inside the message is malformed */
	if (memchr(nul2 + 1, '\0', (size_t)n - (size_t)(nul2 + 1 - buf)))
		goto bad;
	if (nul1 + 1 == nul2 || nul2 + 1 == buf + n)
		goto bad;  /* empty authcid or password */
	*buf_r = buf;
	*authzid_r = buf;
	*authcid_r = nul1 + 1;
	*passwd_r = nul2 + 1;
	return 0;
bad:
	auth_wipe(buf, cap);
	return -1;
}

void auth_wipe(char *s, size_t len)
{
	if (!s)
		return;
	sodium_memzero(s, len);
	free(s);
}
