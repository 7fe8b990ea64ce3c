/* pop3_parser_fuzz.c - libFuzzer target: arbitrary command lines. */
#include <assert.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "proto/pop3/pop3_parser.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char line[POP3_MAX_LINE + 1];
	struct pop3_cmd cmd;
	const char *error = NULL;

	/* The conn layer never hands over more than the line cap. */
	if (size > POP3_MAX_LINE)
		size = POP3_MAX_LINE;
	memcpy(line, data, size);
	line[size] = '\0';

	int rc = pop3_parse(line, size, &cmd, &error);
	if (rc < 0) {
		assert(error != NULL && error[0] != '\0');
		return 0;
	}
	assert(cmd.verb > POP3_UNKNOWN && cmd.verb < POP3_VERB_COUNT);
	assert(cmd.nargs >= 0 && cmd.nargs <= 2);
	for (int i = 0; i < cmd.nargs; i++) {
		/* Every argument lies inside the line and is NUL-terminated. */
		assert(cmd.args[i] >= line && cmd.args[i] + cmd.arglen[i] <= line + size);
		assert(cmd.args[i][cmd.arglen[i]] == '\0');
		assert(cmd.arglen[i] > 0);
	}
	switch (cmd.verb) {
	case POP3_RETR:
	case POP3_DELE:
		assert(cmd.num[0] >= 1 && cmd.num[0] <= POP3_MAX_NUMBER);
		break;
	case POP3_TOP:
		assert(cmd.num[0] >= 1 && cmd.num[0] <= POP3_MAX_NUMBER);
		assert(cmd.num[1] <= POP3_MAX_NUMBER);
		break;
	default:
		break;
	}
	return 0;
}
