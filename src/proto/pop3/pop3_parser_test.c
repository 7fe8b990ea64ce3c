/* pop3_parser_test.c - table-driven tests of the POP3 command parser. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "proto/pop3/pop3_parser.h"

struct parse_case {
	const char *name;
	const char *input;
	/* want */
	int rc;
	enum pop3_verb verb;
	int nargs;
	const char *arg0, *arg1;
	uint32_t num0, num1;
	const char *error;      /* for rc == -1 */
};

static const struct parse_case cases[] = {
	/* keywords */
	{"stat", "STAT", 0, POP3_STAT, 0, NULL, NULL, 0, 0, NULL},
	{"stat lower", "stat", 0, POP3_STAT, 0, NULL, NULL, 0, 0, NULL},
	{"stat mixed", "sTaT", 0, POP3_STAT, 0, NULL, NULL, 0, 0, NULL},
	{"stat trailing space", "STAT ", 0, POP3_STAT, 0, NULL, NULL, 0, 0, NULL},
	{"stat trailing spaces", "STAT   ", 0, POP3_STAT, 0, NULL, NULL, 0, 0, NULL},
	{"noop", "NOOP", 0, POP3_NOOP, 0, NULL, NULL, 0, 0, NULL},
	{"rset", "rset", 0, POP3_RSET, 0, NULL, NULL, 0, 0, NULL},
	{"quit", "QUIT", 0, POP3_QUIT, 0, NULL, NULL, 0, 0, NULL},
	{"capa", "capa", 0, POP3_CAPA, 0, NULL, NULL, 0, 0, NULL},
	{"stls", "STLS", 0, POP3_STLS, 0, NULL, NULL, 0, 0, NULL},
	{"empty", "", -1, POP3_UNKNOWN, 0, NULL, NULL, 0, 0, "Unknown command"},
	{"space only", " ", -1, POP3_UNKNOWN, 0, NULL, NULL, 0, 0, "Unknown command"},
	{"leading space", " STAT", -1, POP3_UNKNOWN, 0, NULL, NULL, 0, 0, "Unknown command"},
	{"unknown", "HELO x", -1, POP3_UNKNOWN, 0, NULL, NULL, 0, 0, "Unknown command"},
	{"prefix of verb", "STA", -1, POP3_UNKNOWN, 0, NULL, NULL, 0, 0, "Unknown command"},
	{"verb too long", "STATS", -1, POP3_UNKNOWN, 0, NULL, NULL, 0, 0, "Unknown command"},
	{"tab separator", "STAT\t", -1, POP3_UNKNOWN, 0, NULL, NULL, 0, 0, "Unknown command"},
	{"imap-like", "a LOGIN", -1, POP3_UNKNOWN, 0, NULL, NULL, 0, 0, "Unknown command"},
	{"8bit keyword", "ST\xc3\x84T", -1, POP3_UNKNOWN, 0, NULL, NULL, 0, 0, "Unknown command"},
	{"stat with arg", "STAT 1", -1, POP3_STAT, 0, NULL, NULL, 0, 0, "Too many arguments"},
	{"quit with arg", "QUIT now", -1, POP3_QUIT, 0, NULL, NULL, 0, 0, "Too many arguments"},

	/* USER / PASS / APOP */
	{"user", "USER bob@example.org", 0, POP3_USER, 1, "bob@example.org", NULL, 0, 0, NULL},
	{"user spaces", "user   bob@example.org  ", 0, POP3_USER, 1, "bob@example.org", NULL,
	 0, 0, NULL},
	{"user missing", "USER", -1, POP3_USER, 0, NULL, NULL, 0, 0, "Missing argument"},
	{"user missing spaces", "USER   ", -1, POP3_USER, 0, NULL, NULL, 0, 0, "Missing argument"},
	{"user two words", "USER a b", -1, POP3_USER, 1, NULL, NULL, 0, 0, "Too many arguments"},
	{"pass", "PASS secret", 0, POP3_PASS, 1, "secret", NULL, 0, 0, NULL},
	{"pass spaces inside", "PASS a b  c ", 0, POP3_PASS, 1, "a b  c ", NULL, 0, 0, NULL},
	{"pass leading space kept", "PASS  x", 0, POP3_PASS, 1, " x", NULL, 0, 0, NULL},
	{"pass lower", "pass Secret", 0, POP3_PASS, 1, "Secret", NULL, 0, 0, NULL},
	{"pass missing", "PASS", -1, POP3_PASS, 0, NULL, NULL, 0, 0, "Missing argument"},
	{"pass empty", "PASS ", -1, POP3_PASS, 0, NULL, NULL, 0, 0, "Missing argument"},
	{"apop", "APOP mrose c4c9334bac560ecc979e58001b3e22fb", 0, POP3_APOP, 2, "mrose",
	 "c4c9334bac560ecc979e58001b3e22fb", 0, 0, NULL},
	{"apop one arg", "APOP mrose", -1, POP3_APOP, 1, NULL, NULL, 0, 0, "Missing argument"},
	{"apop three args", "APOP a b c", -1, POP3_APOP, 2, NULL, NULL, 0, 0,
	 "Too many arguments"},

	/* AUTH */
	{"auth alone", "AUTH", 0, POP3_AUTH, 0, NULL, NULL, 0, 0, NULL},
	{"auth plain", "AUTH PLAIN", 0, POP3_AUTH, 1, "PLAIN", NULL, 0, 0, NULL},
	{"auth plain ir", "auth plain AGJvYgBzZWNyZXQ=", 0, POP3_AUTH, 2, "plain",
	 "AGJvYgBzZWNyZXQ=", 0, 0, NULL},
	{"auth plain empty ir", "AUTH PLAIN =", 0, POP3_AUTH, 2, "PLAIN", "=", 0, 0, NULL},
	{"auth too many", "AUTH PLAIN a b", -1, POP3_AUTH, 2, NULL, NULL, 0, 0,
	 "Too many arguments"},

	/* message numbers */
	{"list", "LIST", 0, POP3_LIST, 0, NULL, NULL, 0, 0, NULL},
	{"list n", "LIST 3", 0, POP3_LIST, 1, "3", NULL, 3, 0, NULL},
	{"list spaces", "LIST   3  ", 0, POP3_LIST, 1, "3", NULL, 3, 0, NULL},
	{"list zero", "LIST 0", -1, POP3_LIST, 1, NULL, NULL, 0, 0, "Invalid message number"},
	{"list negative", "LIST -1", -1, POP3_LIST, 1, NULL, NULL, 0, 0,
	 "Invalid message number"},
	{"list plus", "LIST +1", -1, POP3_LIST, 1, NULL, NULL, 0, 0, "Invalid message number"},
	{"list hex", "LIST 0x1", -1, POP3_LIST, 1, NULL, NULL, 0, 0, "Invalid message number"},
	{"list two", "LIST 1 2", -1, POP3_LIST, 1, NULL, NULL, 0, 0, "Too many arguments"},
	{"uidl", "UIDL", 0, POP3_UIDL, 0, NULL, NULL, 0, 0, NULL},
	{"uidl n", "uidl 12", 0, POP3_UIDL, 1, "12", NULL, 12, 0, NULL},
	{"retr", "RETR 1", 0, POP3_RETR, 1, "1", NULL, 1, 0, NULL},
	{"retr leading zeros", "RETR 0007", 0, POP3_RETR, 1, "0007", NULL, 7, 0, NULL},
	{"retr max", "RETR 2147483647", 0, POP3_RETR, 1, "2147483647", NULL, 2147483647u, 0,
	 NULL},
	{"retr max+1", "RETR 2147483648", -1, POP3_RETR, 1, NULL, NULL, 0, 0,
	 "Invalid message number"},
	{"retr 2^32", "RETR 4294967296", -1, POP3_RETR, 1, NULL, NULL, 0, 0,
	 "Invalid message number"},
	{"retr huge", "RETR 99999999999999999999999999999", -1, POP3_RETR, 1, NULL, NULL, 0, 0,
	 "Invalid message number"},
	{"retr missing", "RETR", -1, POP3_RETR, 0, NULL, NULL, 0, 0, "Missing argument"},
	{"retr word", "RETR one", -1, POP3_RETR, 1, NULL, NULL, 0, 0, "Invalid message number"},
	{"retr trailing junk", "RETR 1x", -1, POP3_RETR, 1, NULL, NULL, 0, 0,
	 "Invalid message number"},
	{"dele", "DELE 5", 0, POP3_DELE, 1, "5", NULL, 5, 0, NULL},
	{"dele two", "DELE 5 6", -1, POP3_DELE, 1, NULL, NULL, 0, 0, "Too many arguments"},
	{"top", "TOP 1 10", 0, POP3_TOP, 2, "1", "10", 1, 10, NULL},
	{"top zero lines", "top 2 0", 0, POP3_TOP, 2, "2", "0", 2, 0, NULL},
	{"top spaces", "TOP  2   0 ", 0, POP3_TOP, 2, "2", "0", 2, 0, NULL},
	{"top max lines", "TOP 1 2147483647", 0, POP3_TOP, 2, "1", "2147483647", 1,
	 2147483647u, NULL},
	{"top lines too big", "TOP 1 2147483648", -1, POP3_TOP, 2, NULL, NULL, 0, 0,
	 "Invalid line count"},
	{"top negative lines", "TOP 1 -1", -1, POP3_TOP, 2, NULL, NULL, 0, 0,
	 "Invalid line count"},
	{"top msg zero", "TOP 0 1", -1, POP3_TOP, 2, NULL, NULL, 0, 0, "Invalid message number"},
	{"top one arg", "TOP 1", -1, POP3_TOP, 1, NULL, NULL, 0, 0, "Missing argument"},
	{"top three args", "TOP 1 2 3", -1, POP3_TOP, 2, NULL, NULL, 0, 0, "Too many arguments"},
};

static void test_parse_table(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const struct parse_case *tc = &cases[i];
		char line[POP3_MAX_LINE + 1];
		struct pop3_cmd cmd;
		const char *error = NULL;
		size_t len = strlen(tc->input);

		memcpy(line, tc->input, len + 1);
		int rc = pop3_parse(line, len, &cmd, &error);
		if (rc != tc->rc || cmd.verb != tc->verb)
			fail_msg("case '%s': rc %d verb %s, want rc %d verb %s", tc->name, rc,
				 pop3_verb_name(cmd.verb), tc->rc, pop3_verb_name(tc->verb));
		if (rc < 0) {
			if (error == NULL || strcmp(error, tc->error) != 0)
				fail_msg("case '%s': error '%s', want '%s'", tc->name,
					 error ? error : "(null)", tc->error);
			continue;
		}
		if (cmd.nargs != tc->nargs)
			fail_msg("case '%s': nargs %d, want %d", tc->name, cmd.nargs, tc->nargs);
		const char *want[2] = {tc->arg0, tc->arg1};
		for (int a = 0; a < cmd.nargs; a++) {
			if (strcmp(cmd.args[a], want[a]) != 0 || cmd.arglen[a] != strlen(want[a]))
				fail_msg("case '%s': arg %d '%s', want '%s'", tc->name, a,
					 cmd.args[a], want[a]);
		}
		if (cmd.num[0] != tc->num0 || cmd.num[1] != tc->num1)
			fail_msg("case '%s': nums %u %u, want %u %u", tc->name, cmd.num[0],
				 cmd.num[1], tc->num0, tc->num1);
	}
}

struct number_case {
	const char *name;
	const char *input;
	uint32_t max;
	int rc;
	uint32_t want;
};

static const struct number_case number_cases[] = {
	{"zero", "0", 10, 0, 0},
	{"one", "1", 10, 0, 1},
	{"at max", "10", 10, 0, 10},
	{"over max", "11", 10, -1, 0},
	{"empty", "", 10, -1, 0},
	{"space", " 1", 10, -1, 0},
	{"sign", "-0", 10, -1, 0},
	{"many zeros", "000000000000000000000000000000000000000001", 10, 0, 1},
	{"2^31-1", "2147483647", POP3_MAX_NUMBER, 0, 2147483647u},
	{"2^31", "2147483648", POP3_MAX_NUMBER, -1, 0},
	{"2^64 wrap", "18446744073709551617", POP3_MAX_NUMBER, -1, 0},
};

static void test_number_table(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(number_cases) / sizeof(number_cases[0]); i++) {
		const struct number_case *tc = &number_cases[i];
		uint32_t n = 12345;
		int rc = pop3_parse_number(tc->input, strlen(tc->input), tc->max, &n);
		if (rc != tc->rc || (rc == 0 && n != tc->want))
			fail_msg("case '%s': rc %d n %u, want rc %d n %u", tc->name, rc, n, tc->rc,
				 tc->want);
	}
}

/* A line at the cap (the conn layer refuses longer ones): PASS keeps it
 * whole, USER with one long word too. */
static void test_long_lines(void **state)
{
	(void)state;
	char line[POP3_MAX_LINE + 1];
	struct pop3_cmd cmd;
	const char *error = NULL;

	memcpy(line, "PASS ", 5);
	memset(line + 5, 'x', POP3_MAX_LINE - 5);
	line[POP3_MAX_LINE] = '\0';
	assert_int_equal(pop3_parse(line, POP3_MAX_LINE, &cmd, &error), 0);
	assert_int_equal(cmd.verb, POP3_PASS);
	assert_int_equal(cmd.arglen[0], POP3_MAX_LINE - 5);

	memcpy(line, "USER ", 5);
	memset(line + 5, 'y', POP3_MAX_LINE - 5);
	line[POP3_MAX_LINE] = '\0';
	assert_int_equal(pop3_parse(line, POP3_MAX_LINE, &cmd, &error), 0);
	assert_int_equal(cmd.verb, POP3_USER);
	assert_int_equal(cmd.arglen[0], POP3_MAX_LINE - 5);

	/* Only spaces after LIST: no argument. */
	memcpy(line, "LIST", 4);
	memset(line + 4, ' ', POP3_MAX_LINE - 4);
	line[POP3_MAX_LINE] = '\0';
	assert_int_equal(pop3_parse(line, POP3_MAX_LINE, &cmd, &error), 0);
	assert_int_equal(cmd.verb, POP3_LIST);
	assert_int_equal(cmd.nargs, 0);
}

/* Bytes after an embedded NUL are not looked at by string functions, but
 * the parser works on len: a NUL inside a word is part of it. */
static void test_embedded_nul(void **state)
{
	(void)state;
	char line[] = "RETR 1\0002";
	struct pop3_cmd cmd;
	const char *error = NULL;

	assert_int_equal(pop3_parse(line, sizeof(line) - 1, &cmd, &error), -1);
	assert_string_equal(error, "Invalid message number");
}

static void test_verb_names(void **state)
{
	(void)state;
	assert_string_equal(pop3_verb_name(POP3_RETR), "RETR");
	assert_string_equal(pop3_verb_name(POP3_TOP), "TOP");
	assert_string_equal(pop3_verb_name(POP3_UNKNOWN), "?");
	assert_string_equal(pop3_verb_name(POP3_VERB_COUNT), "?");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_table),
		cmocka_unit_test(test_number_table),
		cmocka_unit_test(test_long_lines),
		cmocka_unit_test(test_embedded_nul),
		cmocka_unit_test(test_verb_names),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
