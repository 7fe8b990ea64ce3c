/* tls.c - server SSL_CTX construction. */
#include "core/tls.h"

#include <openssl/err.h>

#include "core/util.h"

const char *tls_error_string(void)
{
	static _Thread_local char msg[256];
	unsigned long e = ERR_get_error();
	if (e == 0)
		return "unknown TLS error";
	ERR_error_string_n(e, msg, sizeof msg);
	ERR_clear_error();
	return msg;
}

SSL_CTX *tls_server_ctx(const char *cert_file, const char *key_file, char **error_r)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
	if (ctx == NULL) {
		*error_r = xasprintf("TLS: cannot create context: %s", tls_error_string());
		return NULL;
	}
	SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
	SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE |
				      SSL_OP_NO_COMPRESSION);
	/* Sessions are not resumed across connections for now: no cache to
	 * size or to share between processes. */
	SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
	SSL_CTX_set_num_tickets(ctx, 0);
	SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
	if (SSL_CTX_use_certificate_chain_file(ctx, cert_file) != 1) {
		*error_r = xasprintf("TLS: tls_cert %s: %s", cert_file, tls_error_string());
		SSL_CTX_free(ctx);
		return NULL;
	}
	if (SSL_CTX_use_PrivateKey_file(ctx, key_file, SSL_FILETYPE_PEM) != 1) {
		*error_r = xasprintf("TLS: tls_key %s: %s", key_file, tls_error_string());
		SSL_CTX_free(ctx);
		return NULL;
	}
	if (SSL_CTX_check_private_key(ctx) != 1) {
		*error_r = xasprintf("TLS: tls_key %s does not match tls_cert %s", key_file, cert_file);
		SSL_CTX_free(ctx);
		return NULL;
	}
	return ctx;
}

void tls_ctx_free(SSL_CTX **ctx)
{
	if (*ctx)
		SSL_CTX_free(*ctx);
	*ctx = NULL;
}
