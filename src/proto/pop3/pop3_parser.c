/* pop3_parser.c - POP3 command lines into {verb, arguments}. */
#include "proto/pop3/pop3_parser.h"

#include <stdbool.h>
#include <string.h>

/* How a verb takes its arguments. */
enum arg_kind {
	ARGS_NONE,      /* no argument */
	ARGS_WORD,      /* exactly one word (USER) */
	ARGS_REST,      /* the rest of the line, non-empty (PASS) */
	ARGS_TWO_WORDS, /* exactly two words (APOP) */
	ARGS_OPT_NUM,   /* an optional message number (LIST, UIDL) */
	ARGS_NUM,       /* one message number (RETR, DELE) */
	ARGS_TOP,       /* message number and line count (TOP) */
	ARGS_AUTH,      /* optional mechanism, optional initial response */
};

static const struct {
	const char name[5];
	enum arg_kind args;
} verbs[POP3_VERB_COUNT] = {
	[POP3_UNKNOWN] = {"?", ARGS_NONE},
	[POP3_USER] = {"USER", ARGS_WORD},
	[POP3_PASS] = {"PASS", ARGS_REST},
	[POP3_APOP] = {"APOP", ARGS_TWO_WORDS},
	[POP3_STAT] = {"STAT", ARGS_NONE},
	[POP3_LIST] = {"LIST", ARGS_OPT_NUM},
	[POP3_RETR] = {"RETR", ARGS_NUM},
	[POP3_DELE] = {"DELE", ARGS_NUM},
	[POP3_NOOP] = {"NOOP", ARGS_NONE},
	[POP3_RSET] = {"RSET", ARGS_NONE},
	[POP3_QUIT] = {"QUIT", ARGS_NONE},
	[POP3_TOP] = {"TOP", ARGS_TOP},
	[POP3_UIDL] = {"UIDL", ARGS_OPT_NUM},
	[POP3_CAPA] = {"CAPA", ARGS_NONE},
	[POP3_STLS] = {"STLS", ARGS_NONE},
	[POP3_AUTH] = {"AUTH", ARGS_AUTH},
};

const char *pop3_verb_name(enum pop3_verb verb)
{
	if ((unsigned)verb >= POP3_VERB_COUNT)
		return "?";
	return verbs[verb].name;
}

static char ascii_upper(char ch)
{
	return ch >= 'a' && ch <= 'z' ? (char)(ch - 'a' + 'A') : ch;
}

static enum pop3_verb lookup_verb(const char *kw, size_t len)
{
	for (int v = POP3_UNKNOWN + 1; v < POP3_VERB_COUNT; v++) {
		const char *name = verbs[v].name;
		if (strlen(name) != len)
			continue;
		size_t i = 0;
		while (i < len && ascii_upper(kw[i]) == name[i])
			i++;
		if (i == len)
			return (enum pop3_verb)v;
	}
	return POP3_UNKNOWN;
}

int pop3_parse_number(const char *s, size_t len, uint32_t max, uint32_t *n_r)
{
	uint64_t n = 0;

	if (len == 0)
		return -1;
	for (size_t i = 0; i < len; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		n = n * 10 + (uint64_t)(s[i] - '0');
		if (n > max)
			return -1;
	}
	*n_r = (uint32_t)n;
	return 0;
}

/* Split p[0..len) into at most max space-separated words, NUL-terminating
 * each in place.  Returns the number of words, or max + 1 when there are
 * more. */
static int split_words(char *p, size_t len, struct pop3_cmd *cmd, int max)
{
	size_t i = 0;
	int n = 0;

	for (;;) {
		while (i < len && p[i] == ' ')
			i++;
		if (i == len)
			return n;
		if (n == max)
			return max + 1;
		size_t start = i;
		while (i < len && p[i] != ' ')
			i++;
		cmd->args[n] = p + start;
		cmd->arglen[n] = i - start;
		n++;
		if (i < len)
			p[i++] = '\0';
	}
}

static int parse_msgnum(struct pop3_cmd *cmd, int i, const char **error_r)
{
	if (pop3_parse_number(cmd->args[i], cmd->arglen[i], POP3_MAX_NUMBER, &cmd->num[i]) < 0 ||
	    cmd->num[i] == 0) {
		*error_r = "Invalid message number";
		return -1;
	}
	return 0;
}

int pop3_parse(char *line, size_t len, struct pop3_cmd *cmd, const char **error_r)
{
	size_t kwlen = 0;
	int min, max;

	memset(cmd, 0, sizeof(*cmd));
	while (kwlen < len && line[kwlen] != ' ')
		kwlen++;
	cmd->verb = lookup_verb(line, kwlen);
	if (cmd->verb == POP3_UNKNOWN) {
		*error_r = "Unknown command";
		return -1;
	}
	/* line[kwlen] is ' ' or the terminating NUL. */
	char *rest = line + kwlen;
	size_t restlen = len - kwlen;
	if (restlen > 0) {
		rest++;
		restlen--;
	}

	switch (verbs[cmd->verb].args) {
	case ARGS_REST:
		if (restlen == 0) {
			*error_r = "Missing argument";
			return -1;
		}
		cmd->nargs = 1;
		cmd->args[0] = rest;
		cmd->arglen[0] = restlen;
		return 0;
	case ARGS_NONE:
		min = 0, max = 0;
		break;
	case ARGS_WORD:
	case ARGS_NUM:
		min = 1, max = 1;
		break;
	case ARGS_TWO_WORDS:
	case ARGS_TOP:
		min = 2, max = 2;
		break;
	case ARGS_OPT_NUM:
		min = 0, max = 1;
		break;
	case ARGS_AUTH:
		min = 0, max = 2;
		break;
	default:
		*error_r = "Unknown command";
		return -1;
	}

	int n = split_words(rest, restlen, cmd, max);
	if (n > max) {
		cmd->nargs = max;
		*error_r = "Too many arguments";
		return -1;
	}
	cmd->nargs = n;
	if (n < min) {
		*error_r = "Missing argument";
		return -1;
	}

	switch (verbs[cmd->verb].args) {
	case ARGS_NUM:
	case ARGS_OPT_NUM:
		if (n == 1 && parse_msgnum(cmd, 0, error_r) < 0)
			return -1;
		break;
	case ARGS_TOP:
		if (parse_msgnum(cmd, 0, error_r) < 0)
			return -1;
		if (pop3_parse_number(cmd->args[1], cmd->arglen[1], POP3_MAX_NUMBER,
				      &cmd->num[1]) < 0) {
			*error_r = "Invalid line count";
			return -1;
		}
		break;
	default:
		break;
	}
	return 0;
}
