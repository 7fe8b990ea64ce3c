/* dsn_fuzz.c - libFuzzer target for dsn_compose() and dsn_header_value().
 *
 * Input: byte 0 = flags (bit 0 RET=FULL, bits 1-3 the action, bit 4 a
 * second recipient, bit 5 the data as orig_subject too), byte 1 = the
 * return cap / 16 (0: none), byte 2 = the out size for dsn_header_value;
 * the rest is the original message, and its first line (NUL-cut) is also the
 * diagnostic.  Checks: the lines the composer writes end in CR LF and stay
 * within 998 octets, the result parses as a multipart/report, and
 * dsn_header_value() stays in its buffer. */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/util.h"
#include "mail/dsn.h"
#include "mail/mime.h"

#define HDR 3
#define BOUNDARY "zzFUZZzz"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Lines of m[0..len) end in CR LF, have at most 998 octets and are not
 * made of blanks only. */
static void check_lines(const char *m, size_t len)
{
	size_t col = 0;
	bool blank = true;
	for (size_t i = 0; i < len; i++) {
		if (m[i] == '\n') {
			if (i == 0 || m[i - 1] != '\r' || (col > 0 && blank))
				abort();
			col = 0;
			blank = true;
		} else if (m[i] == '\r') {
			if (i + 1 >= len || m[i + 1] != '\n')
				abort();
		} else if (++col > 998) {
			abort();
		} else if (m[i] != ' ' && m[i] != '\t') {
			blank = false;
		}
	}
}

static void header_value(const char *in, size_t len, size_t outsz)
{
	char *out = xmalloc(outsz ? outsz : 1);
	int found = dsn_header_value(in, len, "subject", out, outsz);
	if (found != 0 && found != 1)
		abort();
	if (outsz > 0 && (strlen(out) >= outsz || (!found && out[0] != '\0')))
		abort();
	free(out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < HDR)
		return 0;
	unsigned flags = data[0];
	const char *in = (const char *)data + HDR;
	size_t len = size - HDR;

	header_value(in, len, data[2]);

	/* Exact-size copy so that ASan sees reads past the end. */
	char *orig = xmalloc(len ? len : 1);
	memcpy(orig, in, len);
	size_t dl = 0;
	while (dl < len && dl < 2000 && in[dl] != '\n' && in[dl] != '\0')
		dl++;
	char *diag = xstrndup(in, dl);
	char *subj = xstrndup(in, len);

	struct dsn_rcpt rc[2] = {
		{ "y@b.example", "rfc822;y@b.example", (enum dsn_action)((flags >> 1) % 5),
		  "5.1.1", "mx.b.example", diag, 1767272400, 1767700000 },
		{ "j\xc3\xb6rg@b.example", NULL, DSN_DELAYED, "4.4.1", NULL, diag, 0, 0 },
	};
	struct dsn_report r = {
		.reporting_mta = "a.example",
		.postmaster = "MAILER-DAEMON@a.example",
		.to = "x@a.example",
		.envid = diag[0] && dl <= DSN_FIELD_MAX ? diag : NULL,
		.arrival = 1767268800,
		.now = 1767276000,
		.message_id = "<fuzz@a.example>",
		.boundary = BOUNDARY,
		.orig_subject = (flags & 32) ? subj : NULL,
		.rcpts = rc,
		.nrcpts = (flags & 16) ? 2 : 1,
		.original = orig,
		.original_len = len,
		.return_full = flags & 1,
		.return_max = (size_t)data[1] * 16,
	};
	char *m = NULL;
	size_t mlen = 0;
	if (dsn_compose(&r, &m, &mlen) != 0) {
		/* only when the data could spell the boundary */
		if (memmem(in, len, BOUNDARY, strlen(BOUNDARY)) == NULL &&
		    memmem(in, len, "=?", 2) == NULL)
			abort();
		goto out;
	}
	/* NUL-terminated; a NUL inside only when the original has one */
	if (m[mlen] != '\0' || (strlen(m) != mlen && memchr(in, '\0', len) == NULL))
		abort();
	/* Everything up to the returned original is ours, and the end. */
	const char *tail = "\r\n--" BOUNDARY "--\r\n";
	size_t tl = strlen(tail);
	if (mlen < tl || memcmp(m + mlen - tl, tail, tl) != 0)
		abort();
	const char *p3 = strstr(m, "\r\nContent-Description: Undelivered Message");
	size_t ours = mlen;
	if (p3 != NULL) {
		const char *body = strstr(p3, "\r\n\r\n");
		if (body == NULL)
			abort();
		ours = (size_t)(body - m) + 4;
	}
	check_lines(m, ours);
	check_lines(m + mlen - tl + 2, tl - 2);

	struct mime_message *mm = mime_parse(m, mlen, NULL);
	const struct mime_part *top = &mm->parts[0];
	if (strcmp(top->type, "multipart") != 0 || strcmp(top->subtype, "report") != 0 ||
	    top->n_children < 2)
		abort();
	mime_message_free(&mm);
	free(m);
out:
	free(orig);
	free(diag);
	free(subj);
	return 0;
}
