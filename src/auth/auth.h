/* auth.h - passwords, APOP and SASL PLAIN, shared by every protocol.
 *
 * Passwords are stored as libsodium argon2id strings.  Verification is
 * deliberately slow (tens of milliseconds, 64 MiB): call auth_* verification
 * from a worker thread, never on the event loop.  Nothing here logs a
 * password or a SASL payload. */
#ifndef YUBIN_AUTH_AUTH_H
#define YUBIN_AUTH_AUTH_H

#include <stdbool.h>
#include <stdint.h>
#include <stddef.h>

struct store;
struct account;

/* Must be called once before any other auth_ function (sodium_init). */
int auth_init(void);

/* Heap argon2id string for password, or NULL when out of memory for the
 * hash (the caller reports it). */
char *auth_hash_password(const char *password);
bool auth_verify_password(const char *hash, const char *password);

/* Log in with a full address and a password: 1 ok (a_r filled; free with
 * account_free), 0 bad credentials, -1 temporary error.  Takes about the
 * same time whether or not the account exists. */
int auth_login(struct store *st, const char *address, const char *password, struct account *a_r);
/* auth_login remembers verified credentials for ttl_ms (0: never; the
 * default is an hour) -- a keyed digest, not the password -- so that a
 * repeated login with an unchanged password skips argon2id.  Clears the
 * cache. */
void auth_cache_set_ttl(uint64_t ttl_ms);
/* auth_login telling whether the cache answered (for the log). */
int auth_login_cached(struct store *st, const char *address, const char *password,
		      struct account *a_r, bool *cached_r);

/* APOP (RFC 1939 sect. 7): digest_hex is MD5(timestamp || secret) in lower or
 * upper case hex.  1 ok (a_r filled), 0 bad, -1 temporary error.  Accounts
 * without an APOP secret always fail. */
int auth_apop(struct store *st, const char *address, const char *timestamp,
	      const char *digest_hex, struct account *a_r);

/* Decode an RFC 4616 PLAIN message from base64.  On success the three
 * strings point into *buf_r (heap, caller frees; wipe it first with
 * auth_wipe); authzid may be "" and must then be treated as authcid.
 * -1 on malformed input (bad base64, wrong number of NULs, empty authcid or
 * password, over 1024 bytes). */
int sasl_plain_decode(const char *b64, char **buf_r, const char **authzid_r,
		      const char **authcid_r, const char **passwd_r);

/* Zero memory that held a secret, then free it. NULL-safe. */
void auth_wipe(char *s, size_t len);

/* Lower-case hex MD5(timestamp || secret) (RFC 1939 7): what the server
 * checks and what a client sends.  0, or -1 if MD5 is unavailable. */
int auth_apop_digest(const char *timestamp, const char *secret, char out[33]);

#endif
