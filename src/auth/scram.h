/* scram.h - SASL SCRAM-SHA-256 (RFC 5802, RFC 7677), server and client side,
 * and CRAM-MD5 (RFC 2195) helpers.  OpenSSL 3 does every hash.
 *
 * The SASL payloads here are raw: the caller base64-decodes what the peer
 * sent and base64-encodes what it returns.  Channel binding is not
 * supported: a server using this must advertise SCRAM-SHA-256 only, never
 * SCRAM-SHA-256-PLUS (then a client's "y" flag is fine, see RFC 5802
 * sect. 6).
 *
 * Passwords are used as the UTF-8 bytes they are: SASLprep (RFC 4013) is not
 * applied, so a password that SASLprep would change (non-ASCII spaces,
 * compatibility characters, soft hyphens...) only interoperates with a peer
 * that skips SASLprep too.  ASCII passwords are unaffected.
 *
 * The server side never sees the password: it keeps a stored secret
 * (scram_secret_make) and its own work is a few HMACs, cheap enough for the
 * event loop.  scram_secret_make and scram_client_final run PBKDF2 (4096
 * iterations by default, up to SCRAM_ITERATIONS_MAX for the client): run
 * them off the loop.  Nothing here logs; error texts are static and never
 * quote the peer's data.  Every string returned on the heap is the caller's
 * to free; those holding secrets say so. */
#ifndef YUBIN_AUTH_SCRAM_H
#define YUBIN_AUTH_SCRAM_H

#include <stdbool.h>
#include <stddef.h>

/* PBKDF2 iterations of a new secret (the RFC 7677 minimum). */
#define SCRAM_ITERATIONS 4096
/* Iteration counts accepted in a stored secret and from a server. */
#define SCRAM_ITERATIONS_MIN 4096
#define SCRAM_ITERATIONS_MAX 1000000
/* Longest attribute ("n=...", "r=...", ...) and longest message accepted. */
#define SCRAM_FIELD_MAX 1024
#define SCRAM_MESSAGE_MAX 4096
/* Salt of a new secret, and the longest salt a stored secret may have. */
#define SCRAM_SALT_LEN 16
#define SCRAM_SALT_MAX 64
/* SHA-256 output: StoredKey, ServerKey, proofs and signatures. */
#define SCRAM_KEY_LEN 32

/* ---- stored secrets ----
 *
 * "SCRAM-SHA-256$<iterations>:<salt base64>$<StoredKey base64>:<ServerKey base64>",
 * the shape PostgreSQL stores in pg_authid.  Plaintext-equivalent for
 * SCRAM only in the sense of RFC 5802 sect. 9: whoever holds it can
 * impersonate the server, not log in as the user. */

/* New secret for password with a random SCRAM_SALT_LEN-byte salt;
 * iterations 0 means SCRAM_ITERATIONS, otherwise it must lie in
 * [SCRAM_ITERATIONS_MIN, SCRAM_ITERATIONS_MAX] (asserted).  Heap string, or
 * NULL when OpenSSL fails (no randomness: a temporary error). */
char *scram_secret_make(const char *password, unsigned iterations);
/* The same with a given salt (1..SCRAM_SALT_MAX bytes): for tests and for
 * importing.  NULL when OpenSSL fails. */
char *scram_secret_make_salt(const char *password, const unsigned char *salt, size_t salt_len,
			     unsigned iterations);
/* Split a stored secret.  salt must hold SCRAM_SALT_MAX bytes.  0 ok, -1 when
 * secret is not of the shape above (unknown scheme, iterations outside
 * [SCRAM_ITERATIONS_MIN, SCRAM_ITERATIONS_MAX], bad base64, empty or
 * over-long salt, keys not SCRAM_KEY_LEN bytes, trailing bytes). */
int scram_secret_parse(const char *secret, unsigned *iter_r, unsigned char *salt,
		       size_t *salt_len_r, unsigned char stored_key[SCRAM_KEY_LEN],
		       unsigned char server_key[SCRAM_KEY_LEN]);

/* ---- server ----
 *
 * One exchange:
 *   scram_server_client_first(client-first-message)  -> authcid, authzid
 *   look the account's stored secret up (NULL when there is none)
 *   scram_server_first()                             -> server-first-message
 *   scram_server_client_final(client-final-message)  -> server-final-message
 * A call out of this order, or after a -1, returns -1 ("out of sequence"). */
struct scram_server;

struct scram_server *scram_server_new(void);
/* NULL-safe; wipes the keys and clears *s. */
void scram_server_free(struct scram_server **s);

/* Parse the client-first-message msg (len bytes, need not be
 * NUL-terminated).  0 ok; -1 with a static *error_r when it is malformed or
 * asks for something unsupported: channel binding ("p="), a mandatory
 * extension ("m="), a saslname with an escape other than =2C / =3D, a
 * control character or invalid UTF-8, an empty user or nonce, a NUL byte,
 * a field over SCRAM_FIELD_MAX or a message over SCRAM_MESSAGE_MAX bytes.
 * Accepted GS2 headers: "n,,", "y,," and either with "a=authzid". */
int scram_server_client_first(struct scram_server *s, const char *msg, size_t len,
			      const char **error_r);
/* User to authenticate (saslname unescaped), after a successful
 * scram_server_client_first; NULL before. */
const char *scram_server_authcid(const struct scram_server *s);
/* Identity to act as, "" when the client sent none (then it is the authcid);
 * NULL before scram_server_client_first succeeded. */
const char *scram_server_authzid(const struct scram_server *s);

/* Build the server-first-message "r=<client nonce><server nonce>,s=<salt>,
 * i=<iterations>" into *out_r (heap) from the account's stored secret.
 * secret NULL means no such user: the salt then comes from an HMAC of the
 * authcid under a key made once per process, so it is the same on every try
 * for that name, i= is SCRAM_ITERATIONS, and the exchange goes on to fail at
 * the proof exactly as a wrong password does.  (A real account whose secret
 * has another iteration count is distinguishable by that count.)  0 ok, -1
 * when the secret is malformed, OpenSSL fails or the call is out of
 * sequence (*out_r NULL). */
int scram_server_first(struct scram_server *s, const char *secret, char **out_r);

/* Check the client-final-message: the channel binding "c=" must decode to
 * the GS2 header of the client-first-message, "r=" must be the combined
 * nonce, the proof "p=" comes last.  1: authenticated, *out_r is the heap
 * server-final-message "v=<ServerSignature base64>".  0: wrong proof (or no
 * such user), *out_r is "e=invalid-proof".  -1: malformed or out of
 * sequence, static *error_r, *out_r NULL.  The exchange is over after any
 * answer. */
int scram_server_client_final(struct scram_server *s, const char *msg, size_t len, char **out_r,
			      const char **error_r);

/* Use nonce (printable ASCII except ',') as the server nonce instead of a
 * random one.  For tests only; call before scram_server_first. */
void scram_server_set_nonce(struct scram_server *s, const char *nonce);

/* ---- client ----
 *
 *   scram_client_first()  -> client-first-message
 *   scram_client_final(server-first-message) -> client-final-message
 *   scram_client_verify(server-final-message) -> 1 only if the server knew
 *                                                the secret */
struct scram_client;

/* Copies authcid and password (used as UTF-8 bytes, no SASLprep). */
struct scram_client *scram_client_new(const char *authcid, const char *password);
/* NULL-safe; wipes the password and keys and clears *c. */
void scram_client_free(struct scram_client **c);

/* Heap client-first-message "n,,n=<authcid escaped>,r=<nonce>" (no
 * authzid), or NULL when there is no randomness for the nonce or the call
 * is out of sequence. */
char *scram_client_first(struct scram_client *c);
/* Answer the server-first-message: *out_r is the heap client-final-message
 * "c=biws,r=<nonce>,p=<proof>".  0 ok; -1 with a static *error_r when the
 * message is malformed, asks for a mandatory extension, its nonce does not
 * extend ours, the salt is empty, the iteration count is outside
 * [SCRAM_ITERATIONS_MIN, the maximum], OpenSSL fails, or the call is out of
 * sequence.  The password is wiped once used. */
int scram_client_final(struct scram_client *c, const char *server_first, size_t len,
		       char **out_r, const char **error_r);
/* Check the server-final-message: 1 when it is "v=" with the expected
 * ServerSignature, 0 otherwise ("e=...", garbage, or before
 * scram_client_final).  Trust nothing the server said before a 1. */
int scram_client_verify(struct scram_client *c, const char *server_final, size_t len);

/* Lower the highest iteration count accepted from the server (default
 * SCRAM_ITERATIONS_MAX; values outside [SCRAM_ITERATIONS_MIN,
 * SCRAM_ITERATIONS_MAX] are clamped), bounding what a hostile server can make
 * scram_client_final spend. */
void scram_client_set_max_iterations(struct scram_client *c, unsigned max);
/* Use nonce (printable ASCII except ',') instead of a random one.  For tests
 * only; call before scram_client_first. */
void scram_client_set_nonce(struct scram_client *c, const char *nonce);

/* ---- CRAM-MD5 (RFC 2195) ----
 *
 * Legacy and weaker than SCRAM: the server needs the plaintext-equivalent
 * secret, and HMAC-MD5 over a sniffed challenge/response invites an offline
 * dictionary attack.  Offer it only over TLS, and only to accounts that have
 * such a secret. */

/* Longest decoded response accepted by cram_md5_parse. */
#define CRAM_MD5_RESPONSE_MAX 1024

/* Heap challenge "<random.unixtime@hostname>", or NULL when there is no
 * randomness. */
char *cram_md5_challenge(const char *hostname);
/* Split the decoded response "user hexdigest" at its last space: *user_r
 * heap (may contain spaces), hex_r the 32 hex digits as sent, NUL-terminated.
 * 0 ok; -1 when there is no space, the user is empty or holds a control
 * character or NUL, the digest is not 32 hex digits, or len is over
 * CRAM_MD5_RESPONSE_MAX (*user_r NULL). */
int cram_md5_parse(const char *response, size_t len, char **user_r, char hex_r[33]);
/* True when hex (32 hex digits, either case) is HMAC-MD5(secret, challenge);
 * compared in constant time.  False for any NULL argument or an empty
 * secret. */
bool cram_md5_verify(const char *secret, const char *challenge, const char *hex);
/* Client side: heap "user <lower-case hex digest>", or NULL when OpenSSL
 * fails. */
char *cram_md5_response(const char *user, const char *secret, const char *challenge);

#endif
