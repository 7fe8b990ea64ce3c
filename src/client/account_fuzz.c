/* account_fuzz.c - libFuzzer target for accounts_parse.
 *
 * Input: the text of a client.conf.  Checks that a parse either fails with
 * a "client.conf:LINE: " message and no accounts, or gives at most
 * ACCOUNTS_MAX accounts whose strings are all NUL-terminated inside their
 * fields, with ports in range, the required keys present, unique names,
 * at most one default, and that account_find agrees. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client/account.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	/* "~/" and the default maildir need a home; keep it fixed. */
	setenv("HOME", "/home/fuzz", 1);
	return 0;
}

#define TERMINATED(f) (memchr((f), '\0', sizeof(f)) != NULL)

static bool tls_ok(enum tls_mode m)
{
	return m == TLS_STARTTLS || m == TLS_IMPLICIT || m == TLS_NONE;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* Exactly size bytes, so that ASan sees any read past the text. */
	char *text = malloc(size ? size : 1);
	if (text == NULL)
		return 0;
	memcpy(text, data, size);

	struct account *v = NULL;
	size_t n = 12345;
	char err[256];
	memset(err, 'x', sizeof err);
	int rc = accounts_parse(text, size, NULL, &v, &n, err, sizeof err);
	free(text);
	if (!TERMINATED(err))
		abort();
	if (rc != 0) {
		if (rc != -1 || v != NULL || n != 0 || strncmp(err, "client.conf:", 12) != 0)
			abort();
		return 0;
	}
	if (err[0] != '\0' || n > ACCOUNTS_MAX || (n == 0) != (v == NULL))
		abort();
	size_t defaults = 0;
	for (size_t i = 0; i < n; i++) {
		const struct account *a = &v[i];
		if (!TERMINATED(a->name) || !TERMINATED(a->display_name) ||
		    !TERMINATED(a->address) || !TERMINATED(a->signature_file) ||
		    !TERMINATED(a->signature) || !TERMINATED(a->smtp_host) ||
		    !TERMINATED(a->smtp_user) || !TERMINATED(a->in_host) ||
		    !TERMINATED(a->in_user) || !TERMINATED(a->password_cmd) ||
		    !TERMINATED(a->cafile) || !TERMINATED(a->pin_sha256) ||
		    !TERMINATED(a->folders) || !TERMINATED(a->maildir))
			abort();
		if (a->name[0] == '\0' || a->address[0] == '\0' || a->smtp_host[0] == '\0' ||
		    a->smtp_user[0] == '\0' || a->in_user[0] == '\0' || a->folders[0] == '\0')
			abort();
		if (a->smtp_port < 1 || a->smtp_port > 65535 || !tls_ok(a->smtp_tls) ||
		    !tls_ok(a->in_tls))
			abort();
		if (a->in_proto == IN_NONE) {
			if (a->in_port != 0 || a->in_host[0] != '\0')
				abort();
		} else if (a->in_proto == IN_IMAP || a->in_proto == IN_POP3) {
			if (a->in_port < 1 || a->in_port > 65535 || a->in_host[0] == '\0')
				abort();
		} else {
			abort();
		}
		if (a->signature[0] != '\0' && a->signature_file[0] != '\0')
			abort();
		if ((a->signature_file[0] != '\0' && a->signature_file[0] != '/') ||
		    (a->cafile[0] != '\0' && a->cafile[0] != '/') ||
		    (a->maildir[0] != '\0' && a->maildir[0] != '/'))
			abort();
		/* nothing that could split a header or a protocol line */
		for (const char *s = a->display_name; *s; s++)
			if ((unsigned char)*s < 0x20 && *s != '\t')
				abort();
		if (a->is_default)
			defaults++;
		for (size_t j = 0; j < i; j++)
			if (strcmp(v[j].name, a->name) == 0)
				abort();
		if (account_find(v, n, a->name) != a)
			abort();
	}
	if (defaults > 1)
		abort();
	const struct account *d = account_find(v, n, NULL);
	if (defaults == 1 ? (d == NULL || !d->is_default) : (n == 1 ? d != &v[0] : d != NULL))
		abort();
	free(v);
	return 0;
}
