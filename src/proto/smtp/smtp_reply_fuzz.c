/* smtp_reply_fuzz.c - libFuzzer target: every LF-separated line of the
 * input (a trailing CR stripped) is fed to one reply accumulator, as the
 * client's line reader would; each complete reply goes through oneline,
 * status, class and the EHLO capability parser, then the accumulator is
 * reset for the next.  Invariants: limits hold, text is NUL-terminated and
 * free of NUL/LF, oneline output is bounded, valid UTF-8 without control
 * characters, and a shorter buffer gets a prefix of a longer one's. */
#include <assert.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "mail/mutf7.h"
#include "proto/smtp/smtp_reply.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_oneline(const char *s, size_t outsz)
{
	size_t len = strlen(s);
	assert(len < outsz);
	assert(mutf7_utf8_valid(s, len));
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];
		assert(c >= 0x20 && c != 0x7f);
		if (c == 0xc2)
			assert((unsigned char)s[i + 1] >= 0xa0);
	}
}

static void check_status(const struct smtp_reply *r)
{
	char st[SMTP_REPLY_ENH_SIZE];
	smtp_reply_status(r, st);
	size_t len = strlen(st);
	assert(len >= 5 && len <= 9);
	assert(st[0] == '2' || st[0] == '4' || st[0] == '5');
	assert(st[1] == '.');
	int c = r->code / 100;
	assert(st[0] - '0' == (c == 3 ? 2 : c));
}

static void complete(const struct smtp_reply *r)
{
	assert(r->code >= 200 && r->code <= 559);
	assert(r->nlines >= 1 && r->nlines <= SMTP_REPLY_LINES_MAX);
	assert(r->text.data != NULL);
	assert(r->text.len <= SMTP_REPLY_TEXT_MAX);
	assert(r->text.data[r->text.len] == '\0');
	assert(memchr(r->text.data, '\0', r->text.len) == NULL);
	size_t lf = 0;
	for (size_t i = 0; i < r->text.len; i++)
		lf += r->text.data[i] == '\n';
	assert(lf == r->nlines - 1);
	assert(strlen(r->enh) < SMTP_REPLY_ENH_SIZE);
	if (r->enh[0] != '\0')
		assert(strncmp(r->text.data, r->enh, strlen(r->enh)) == 0);

	static const size_t sizes[] = {1, 2, 4, 5, 17, 80, 1000};
	char big[1001];
	smtp_reply_oneline(r, big, sizeof(big));
	check_oneline(big, sizeof(big));
	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		char out[1001];
		memset(out, 'x', sizeof(out));
		smtp_reply_oneline(r, out, sizes[i]);
		check_oneline(out, sizes[i]);
		assert(strncmp(big, out, strlen(out)) == 0);
	}

	check_status(r);
	enum smtp_reply_class cls = smtp_reply_class(r);
	assert((int)cls == r->code / 100 - 2);

	struct smtp_caps caps;
	smtp_caps_parse(r, &caps);
	assert(caps.size_given || caps.size == 0);
	if (r->code != 250 || r->nlines == 1)
		assert(!caps.size_given && caps.auth == 0 && !caps.pipelining);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct smtp_reply r;
	smtp_reply_init(&r);
	const char *p = (const char *)data;
	const char *end = p + size;
	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		size_t len = nl != NULL ? (size_t)(nl - p) : (size_t)(end - p);
		if (len > 0 && p[len - 1] == '\r')
			len--;
		/* A copy of exactly len bytes, so that ASan sees any read past it. */
		char *line = malloc(len ? len : 1);
		assert(line != NULL);
		memcpy(line, p, len);
		const char *err = NULL;
		int rc = smtp_reply_feed(&r, line, len, &err);
		free(line);
		if (rc == 1) {
			complete(&r);
			smtp_reply_reset(&r);
		} else if (rc < 0) {
			assert(err != NULL && err[0] != '\0');
			/* What was accepted before the error still renders safely. */
			char out[64];
			smtp_reply_oneline(&r, out, sizeof(out));
			check_oneline(out, sizeof(out));
			smtp_reply_reset(&r);
		} else {
			assert(rc == 0 && r.state == SMTP_REPLY_STATE_MORE);
		}
		p = nl != NULL ? nl + 1 : end;
	}
	smtp_reply_free(&r);
	return 0;
}
