/* tls.h - the server TLS context (OpenSSL 3), shared by every protocol.
 * TLS 1.2 and 1.3 only; certificates and keys are read once at start-up,
 * before privileges are dropped. */
#ifndef YUBIN_CORE_TLS_H
#define YUBIN_CORE_TLS_H

#include <openssl/ssl.h>

/* NULL with *error_r (heap) when the files cannot be used. */
SSL_CTX *tls_server_ctx(const char *cert_file, const char *key_file, char **error_r);
void tls_ctx_free(SSL_CTX **ctx);
/* The last OpenSSL error as text, for logs (static buffer per thread). */
const char *tls_error_string(void);

#endif
