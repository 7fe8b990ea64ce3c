/* smtp_parser_fuzz.c - libFuzzer target: every LF-separated line of the
 * input goes through the command parser and, by verb, the argument parsers.
 * Invariants: the argument lies inside the line, every failure has a reply
 * "DDD D.D.D text", successful parses leave NUL-terminated, bounded fields. */
#include <assert.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "proto/smtp/smtp_parser.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_reply(const char *reply)
{
	assert(reply != NULL);
	assert(strlen(reply) > 10);
	assert(reply[0] >= '4' && reply[0] <= '5');
	assert(reply[3] == ' ');
	assert(reply[5] == '.');
}

static void check_addr(const struct mail_addr *a)
{
	assert(memchr(a->local, '\0', sizeof(a->local)) != NULL);
	assert(memchr(a->domain, '\0', sizeof(a->domain)) != NULL);
}

static void one_line(const char *line, size_t len)
{
	struct smtp_command cmd;
	const char *reply = NULL;

	if (smtp_parse_command(line, len, &cmd, &reply) < 0) {
		check_reply(reply);
		return;
	}
	assert(cmd.verb > SMTP_VERB_UNKNOWN && cmd.verb < SMTP_VERB_COUNT);
	assert(cmd.arg >= line && cmd.arg + cmd.arg_len <= line + len);

	switch (cmd.verb) {
	case SMTP_VERB_HELO:
	case SMTP_VERB_EHLO: {
		char name[SMTP_HELO_MAX + 1];
		if (smtp_parse_helo(cmd.arg, cmd.arg_len, name, sizeof(name), &reply) < 0)
			check_reply(reply);
		else
			assert(strlen(name) > 0 && strlen(name) <= SMTP_HELO_MAX);
		break;
	}
	case SMTP_VERB_MAIL: {
		struct smtp_mail_args m;
		if (smtp_parse_mail(cmd.arg, cmd.arg_len, &m, &reply) < 0) {
			check_reply(reply);
		} else {
			check_addr(&m.from);
			assert(!m.from.utf8 || m.smtputf8);
			assert(m.has_size || m.size == 0);
		}
		break;
	}
	case SMTP_VERB_RCPT: {
		struct smtp_rcpt_args r;
		for (int utf8 = 0; utf8 < 2; utf8++) {
			if (smtp_parse_rcpt(cmd.arg, cmd.arg_len, utf8, &r, &reply) < 0) {
				check_reply(reply);
			} else {
				check_addr(&r.to);
				assert(!r.to.null && !r.to.trailing_dot);
				assert(!r.to.utf8 || utf8);
			}
		}
		break;
	}
	case SMTP_VERB_BDAT: {
		uint64_t n;
		bool last;
		if (smtp_parse_bdat(cmd.arg, cmd.arg_len, &n, &last, &reply) < 0)
			check_reply(reply);
		break;
	}
	default:
		break;
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *p = (const char *)data;
	const char *end = p + size;
	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		size_t len = nl != NULL ? (size_t)(nl - p) : (size_t)(end - p);
		if (len > 0 && p[len - 1] == '\r')
			len--;
		/* The session hands lines over NUL-terminated; copy to do the same. */
		char line[4096];
		if (len < sizeof(line)) {
			memcpy(line, p, len);
			line[len] = '\0';
			one_line(line, len);
		}
		p = nl != NULL ? nl + 1 : end;
	}
	return 0;
}
