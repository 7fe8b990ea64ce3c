/* smtp_parser_test.c - table-driven tests of the SMTP command parser. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "proto/smtp/smtp_parser.h"

/* Expected reply prefix ("501 5.5.4") or NULL for success. */
struct cmd_case {
	const char *name;
	const char *line;
	enum smtp_verb verb;
	const char *arg;       /* expected argument when ok */
	const char *reply;     /* expected reply prefix when failing */
};

static const struct cmd_case cmd_cases[] = {
	{"ehlo", "EHLO client.example", SMTP_VERB_EHLO, "client.example", NULL},
	{"ehlo lower", "ehlo client.example", SMTP_VERB_EHLO, "client.example", NULL},
	{"ehlo mixed", "eHlO x", SMTP_VERB_EHLO, "x", NULL},
	{"ehlo extra spaces", "EHLO    x   ", SMTP_VERB_EHLO, "x", NULL},
	{"ehlo trailing tab", "EHLO x\t", SMTP_VERB_EHLO, "x", NULL},
	{"ehlo no arg", "EHLO", SMTP_VERB_EHLO, NULL, "501 5.5.4"},
	{"ehlo only spaces", "EHLO   ", SMTP_VERB_EHLO, NULL, "501 5.5.4"},
	{"helo", "HELO x", SMTP_VERB_HELO, "x", NULL},
	{"helo no arg", "HELO", SMTP_VERB_HELO, NULL, "501 5.5.4"},
	{"mail", "MAIL FROM:<a@b>", SMTP_VERB_MAIL, "FROM:<a@b>", NULL},
	{"mail no arg", "MAIL", SMTP_VERB_MAIL, NULL, "501 5.5.4"},
	{"rcpt", "RCPT TO:<a@b>", SMTP_VERB_RCPT, "TO:<a@b>", NULL},
	{"data", "DATA", SMTP_VERB_DATA, "", NULL},
	{"data trailing space", "DATA ", SMTP_VERB_DATA, "", NULL},
	{"data arg", "DATA x", SMTP_VERB_DATA, NULL, "501 5.5.4"},
	{"bdat", "BDAT 10 LAST", SMTP_VERB_BDAT, "10 LAST", NULL},
	{"bdat no arg", "BDAT", SMTP_VERB_BDAT, NULL, "501 5.5.4"},
	{"rset", "RSET", SMTP_VERB_RSET, "", NULL},
	{"rset arg", "RSET now", SMTP_VERB_RSET, NULL, "501 5.5.4"},
	{"noop", "NOOP", SMTP_VERB_NOOP, "", NULL},
	{"noop arg", "NOOP hello there", SMTP_VERB_NOOP, "hello there", NULL},
	{"quit", "quit", SMTP_VERB_QUIT, "", NULL},
	{"quit arg", "QUIT x", SMTP_VERB_QUIT, NULL, "501 5.5.4"},
	{"vrfy", "VRFY root", SMTP_VERB_VRFY, "root", NULL},
	{"vrfy no arg", "VRFY", SMTP_VERB_VRFY, NULL, "501 5.5.4"},
	{"expn", "EXPN list", SMTP_VERB_EXPN, "list", NULL},
	{"help", "HELP", SMTP_VERB_HELP, "", NULL},
	{"help arg", "HELP MAIL", SMTP_VERB_HELP, "MAIL", NULL},
	{"starttls", "STARTTLS", SMTP_VERB_STARTTLS, "", NULL},
	{"starttls arg", "STARTTLS now", SMTP_VERB_STARTTLS, NULL, "501 5.5.4"},
	{"auth", "AUTH PLAIN", SMTP_VERB_AUTH, "PLAIN", NULL},
	{"unknown", "FOO", SMTP_VERB_UNKNOWN, NULL, "500 5.5.2"},
	{"empty", "", SMTP_VERB_UNKNOWN, NULL, "500 5.5.2"},
	{"spaces only", "   ", SMTP_VERB_UNKNOWN, NULL, "500 5.5.2"},
	{"leading space", " NOOP", SMTP_VERB_UNKNOWN, NULL, "500 5.5.2"},
	{"verb glued", "MAILFROM:<a@b>", SMTP_VERB_UNKNOWN, NULL, "500 5.5.2"},
	{"verb prefix", "MAI", SMTP_VERB_UNKNOWN, NULL, "500 5.5.2"},
	{"verb longer", "QUITT", SMTP_VERB_UNKNOWN, NULL, "500 5.5.2"},
	{"verb with digit", "EHLO2 x", SMTP_VERB_UNKNOWN, NULL, "500 5.5.2"},
	{"verb tab", "NOOP\tx", SMTP_VERB_UNKNOWN, NULL, "500 5.5.2"},
	{"http", "GET / HTTP/1.1", SMTP_VERB_UNKNOWN, NULL, "500 5.5.2"},
	{"non-ascii", "\xc3\xa9HLO x", SMTP_VERB_UNKNOWN, NULL, "500 5.5.2"},
};

static void test_commands(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(cmd_cases) / sizeof(cmd_cases[0]); i++) {
		const struct cmd_case *t = &cmd_cases[i];
		struct smtp_command cmd;
		const char *reply = NULL;
		int rc = smtp_parse_command(t->line, strlen(t->line), &cmd, &reply);
		print_message("case %s\n", t->name);
		assert_int_equal(cmd.verb, t->verb);
		if (t->reply == NULL) {
			assert_int_equal(rc, 0);
			assert_int_equal(cmd.arg_len, strlen(t->arg));
			assert_memory_equal(cmd.arg, t->arg, cmd.arg_len);
		} else {
			assert_int_equal(rc, -1);
			assert_non_null(reply);
			assert_true(strncmp(reply, t->reply, strlen(t->reply)) == 0);
		}
	}
}

static void test_verb_info(void **state)
{
	(void)state;
	for (int v = 0; v < SMTP_VERB_COUNT; v++) {
		const struct smtp_verb_info *vi = smtp_verb_info((enum smtp_verb)v);
		assert_int_equal(vi->verb, v);
		assert_non_null(vi->name);
		assert_non_null(vi->logname);
	}
	assert_int_equal(smtp_verb_info(SMTP_VERB_COUNT)->verb, SMTP_VERB_UNKNOWN);
	assert_string_equal(smtp_verb_info(SMTP_VERB_EHLO)->logname, "ehlo");
}

struct helo_case {
	const char *name;
	const char *arg;
	const char *want;      /* NULL: error */
};

static void test_helo(void **state)
{
	(void)state;
	char longname[SMTP_HELO_MAX + 2];
	memset(longname, 'a', sizeof(longname) - 1);
	longname[sizeof(longname) - 1] = '\0';
	char maxname[SMTP_HELO_MAX + 1];
	memset(maxname, 'b', sizeof(maxname) - 1);
	maxname[sizeof(maxname) - 1] = '\0';

	const struct helo_case cases[] = {
		{"plain", "client.example", "client.example"},
		{"first word", "client.example extra words", "client.example"},
		{"literal", "[192.0.2.1]", "[192.0.2.1]"},
		{"empty", "", NULL},
		{"max length", maxname, maxname},
		{"too long", longname, NULL},
		{"control char", "client\x01.example", NULL},
		{"escape", "a\x1b[0m", NULL},
		{"delete", "a\x7f", NULL},
		{"utf8 name", "b\xc3\xbc" "cher.example", "b\xc3\xbc" "cher.example"},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char out[SMTP_HELO_MAX + 1];
		const char *reply = NULL;
		print_message("case %s\n", cases[i].name);
		int rc = smtp_parse_helo(cases[i].arg, strlen(cases[i].arg), out, sizeof(out),
					 &reply);
		if (cases[i].want != NULL) {
			assert_int_equal(rc, 0);
			assert_string_equal(out, cases[i].want);
		} else {
			assert_int_equal(rc, -1);
			assert_true(strncmp(reply, "501 5.5.4", 9) == 0);
		}
	}
}

struct mail_case {
	const char *name;
	const char *arg;
	const char *reply;     /* NULL: success */
	bool null;
	const char *local;
	const char *domain;
	bool has_size;
	uint64_t size;
	enum smtp_body body;
	bool smtputf8;
};

#define MAIL_ERR(n, a, r) {n, a, r, false, NULL, NULL, false, 0, SMTP_BODY_NONE, false}

static const struct mail_case mail_cases[] = {
	{"simple", "FROM:<alice@example.org>", NULL, false, "alice", "example.org",
	 false, 0, SMTP_BODY_NONE, false},
	{"lower keyword", "from:<alice@example.org>", NULL, false, "alice", "example.org",
	 false, 0, SMTP_BODY_NONE, false},
	{"mixed keyword", "FrOm:<alice@example.org>", NULL, false, "alice", "example.org",
	 false, 0, SMTP_BODY_NONE, false},
	{"one space after colon", "FROM: <alice@example.org>", NULL, false, "alice",
	 "example.org", false, 0, SMTP_BODY_NONE, false},
	MAIL_ERR("two spaces after colon", "FROM:  <alice@example.org>", "501 5.5.4"),
	MAIL_ERR("space before colon", "FROM :<alice@example.org>", "501 5.5.4"),
	MAIL_ERR("no brackets", "FROM:alice@example.org", "501 5.5.4"),
	MAIL_ERR("no keyword", "<alice@example.org>", "501 5.5.4"),
	MAIL_ERR("wrong keyword", "TO:<alice@example.org>", "501 5.5.4"),
	MAIL_ERR("keyword only", "FROM:", "501 5.5.4"),
	{"null sender", "FROM:<>", NULL, true, "", "", false, 0, SMTP_BODY_NONE, false},
	{"null sender size", "FROM:<> SIZE=100", NULL, true, "", "", true, 100,
	 SMTP_BODY_NONE, false},
	MAIL_ERR("bad path", "FROM:<alice@>", "501 5.1.7"),
	MAIL_ERR("unclosed path", "FROM:<alice@example.org", "501 5.1.7"),
	MAIL_ERR("trailing dot", "FROM:<alice@example.org.>", "501 5.1.7"),
	MAIL_ERR("bare postmaster", "FROM:<Postmaster>", "501 5.1.7"),
	{"size", "FROM:<a@b.example> SIZE=12345", NULL, false, "a", "b.example",
	 true, 12345, SMTP_BODY_NONE, false},
	{"size lower", "FROM:<a@b.example> size=1", NULL, false, "a", "b.example",
	 true, 1, SMTP_BODY_NONE, false},
	{"size zero", "FROM:<a@b.example> SIZE=0", NULL, false, "a", "b.example",
	 true, 0, SMTP_BODY_NONE, false},
	{"size 20 digits", "FROM:<a@b.example> SIZE=12345678901234567890", NULL, false, "a",
	 "b.example", true, 12345678901234567890u, SMTP_BODY_NONE, false},
	{"size 20 nines saturates", "FROM:<a@b.example> SIZE=99999999999999999999", NULL,
	 false, "a", "b.example", true, UINT64_MAX, SMTP_BODY_NONE, false},
	MAIL_ERR("size 21 digits", "FROM:<a@b.example> SIZE=123456789012345678901", "501 5.5.4"),
	MAIL_ERR("size not digits", "FROM:<a@b.example> SIZE=12a", "501 5.5.4"),
	MAIL_ERR("size negative", "FROM:<a@b.example> SIZE=-1", "501 5.5.4"),
	MAIL_ERR("size empty", "FROM:<a@b.example> SIZE=", "501 5.5.4"),
	MAIL_ERR("size no value", "FROM:<a@b.example> SIZE", "501 5.5.4"),
	MAIL_ERR("size twice", "FROM:<a@b.example> SIZE=1 SIZE=2", "501 5.5.4"),
	{"body 7bit", "FROM:<a@b.example> BODY=7BIT", NULL, false, "a", "b.example",
	 false, 0, SMTP_BODY_7BIT, false},
	{"body 8bitmime", "FROM:<a@b.example> BODY=8BITMIME", NULL, false, "a", "b.example",
	 false, 0, SMTP_BODY_8BITMIME, false},
	{"body lower", "FROM:<a@b.example> body=8bitmime", NULL, false, "a", "b.example",
	 false, 0, SMTP_BODY_8BITMIME, false},
	MAIL_ERR("body binarymime", "FROM:<a@b.example> BODY=BINARYMIME", "555 5.5.4"),
	MAIL_ERR("body bad", "FROM:<a@b.example> BODY=9BIT", "501 5.5.4"),
	MAIL_ERR("body no value", "FROM:<a@b.example> BODY", "501 5.5.4"),
	MAIL_ERR("body twice", "FROM:<a@b.example> BODY=7BIT BODY=8BITMIME", "501 5.5.4"),
	{"smtputf8", "FROM:<a@b.example> SMTPUTF8", NULL, false, "a", "b.example",
	 false, 0, SMTP_BODY_NONE, true},
	MAIL_ERR("smtputf8 value", "FROM:<a@b.example> SMTPUTF8=yes", "501 5.5.4"),
	MAIL_ERR("smtputf8 twice", "FROM:<a@b.example> SMTPUTF8 SMTPUTF8", "501 5.5.4"),
	{"utf8 with smtputf8", "FROM:<j\xc3\xb6rg@b.example> SMTPUTF8", NULL, false,
	 "j\xc3\xb6rg", "b.example", false, 0, SMTP_BODY_NONE, true},
	MAIL_ERR("utf8 without smtputf8", "FROM:<j\xc3\xb6rg@b.example>", "553 5.6.7"),
	{"all params", "FROM:<a@b.example> SIZE=10 BODY=8BITMIME SMTPUTF8", NULL, false, "a",
	 "b.example", true, 10, SMTP_BODY_8BITMIME, true},
	{"params extra spaces", "FROM:<a@b.example>   SIZE=10    BODY=7BIT", NULL, false,
	 "a", "b.example", true, 10, SMTP_BODY_7BIT, false},
	MAIL_ERR("unknown param", "FROM:<a@b.example> FOO=bar", "555 5.5.4"),
	MAIL_ERR("unknown param no value", "FROM:<a@b.example> FOO", "555 5.5.4"),
	MAIL_ERR("auth without value", "FROM:<a@b.example> AUTH", "501 5.5.4"),
	MAIL_ERR("unknown after known", "FROM:<a@b.example> SIZE=1 FOO=<>", "555 5.5.4"),
	MAIL_ERR("param glued to path", "FROM:<a@b.example>SIZE=1", "501 5.5.4"),
	MAIL_ERR("param bad keyword", "FROM:<a@b.example> -SIZE=1", "501 5.5.4"),
	MAIL_ERR("param double equals", "FROM:<a@b.example> SIZE==1", "501 5.5.4"),
	MAIL_ERR("param control char", "FROM:<a@b.example> FOO=a\x01", "501 5.5.4"),
};

static void test_mail(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(mail_cases) / sizeof(mail_cases[0]); i++) {
		const struct mail_case *t = &mail_cases[i];
		struct smtp_mail_args m;
		const char *reply = NULL;
		print_message("case %s\n", t->name);
		int rc = smtp_parse_mail(t->arg, strlen(t->arg), &m, &reply);
		if (t->reply != NULL) {
			assert_int_equal(rc, -1);
			assert_non_null(reply);
			if (strncmp(reply, t->reply, strlen(t->reply)) != 0)
				fail_msg("%s: got \"%s\", want \"%s\"", t->name, reply, t->reply);
			continue;
		}
		if (rc != 0)
			fail_msg("%s: got \"%s\"", t->name, reply);
		assert_int_equal(m.from.null, t->null);
		if (!t->null) {
			assert_string_equal(m.from.local, t->local);
			assert_string_equal(m.from.domain, t->domain);
		}
		assert_int_equal(m.has_size, t->has_size);
		assert_true(m.size == t->size);
		assert_int_equal(m.body, t->body);
		assert_int_equal(m.smtputf8, t->smtputf8);
	}
}

struct rcpt_case {
	const char *name;
	const char *arg;
	bool utf8;
	const char *reply;     /* NULL: success */
	const char *local;
	const char *domain;
	bool postmaster;
	bool route_chars;
	bool literal;
};

#define RCPT_OK(n, a, u, l, d) {n, a, u, NULL, l, d, false, false, false}
#define RCPT_ERR(n, a, u, r) {n, a, u, r, NULL, NULL, false, false, false}

static const struct rcpt_case rcpt_cases[] = {
	RCPT_OK("simple", "TO:<bob@example.test>", false, "bob", "example.test"),
	RCPT_OK("lower keyword", "to:<bob@example.test>", false, "bob", "example.test"),
	RCPT_OK("one space", "TO: <bob@example.test>", false, "bob", "example.test"),
	RCPT_OK("mixed case", "To:<Bob@Example.TEST>", false, "Bob", "Example.TEST"),
	RCPT_ERR("two spaces", "TO:  <bob@example.test>", false, "501 5.5.4"),
	RCPT_ERR("no keyword", "<bob@example.test>", false, "501 5.5.4"),
	RCPT_ERR("from keyword", "FROM:<bob@example.test>", false, "501 5.5.4"),
	RCPT_ERR("no brackets", "TO:bob@example.test", false, "501 5.5.4"),
	RCPT_ERR("null", "TO:<>", false, "501 5.1.3"),
	RCPT_ERR("bad path", "TO:<bob@>", false, "501 5.1.3"),
	RCPT_ERR("no domain", "TO:<bob>", false, "501 5.1.3"),
	RCPT_ERR("trailing dot", "TO:<bob@example.test.>", false, "501 5.1.3"),
	{"postmaster", "TO:<Postmaster>", false, NULL, NULL, NULL, true, false, false},
	{"postmaster lower", "TO:<postmaster>", false, NULL, NULL, NULL, true, false, false},
	{"percent", "TO:<user%other@example.test>", false, NULL, "user%other",
	 "example.test", false, true, false},
	{"bang", "TO:<a!b@example.test>", false, NULL, "a!b", "example.test", false, true,
	 false},
	{"quoted at", "TO:<\"user@other\"@example.test>", false, NULL, "user@other",
	 "example.test", false, true, false},
	{"literal", "TO:<bob@[192.0.2.1]>", false, NULL, "bob", "192.0.2.1", false, false,
	 true},
	RCPT_OK("source route", "TO:<@relay.example:bob@example.test>", false, "bob",
		"example.test"),
	RCPT_ERR("unknown param", "TO:<bob@example.test> FOO=BAR", false, "555 5.5.4"),
	RCPT_ERR("param glued", "TO:<bob@example.test>NOTIFY=NEVER", false, "501 5.5.4"),
	RCPT_OK("trailing spaces", "TO:<bob@example.test>   ", false, "bob", "example.test"),
	RCPT_OK("utf8 allowed", "TO:<b\xc3\xb6" "b@example.test>", true, "b\xc3\xb6" "b",
		"example.test"),
	RCPT_ERR("utf8 refused", "TO:<b\xc3\xb6" "b@example.test>", false, "553 5.6.7"),
};

static void test_rcpt(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(rcpt_cases) / sizeof(rcpt_cases[0]); i++) {
		const struct rcpt_case *t = &rcpt_cases[i];
		struct smtp_rcpt_args r;
		const char *reply = NULL;
		print_message("case %s\n", t->name);
		int rc = smtp_parse_rcpt(t->arg, strlen(t->arg), t->utf8, &r, &reply);
		if (t->reply != NULL) {
			assert_int_equal(rc, -1);
			if (strncmp(reply, t->reply, strlen(t->reply)) != 0)
				fail_msg("%s: got \"%s\", want \"%s\"", t->name, reply, t->reply);
			continue;
		}
		if (rc != 0)
			fail_msg("%s: got \"%s\"", t->name, reply);
		assert_int_equal(r.to.postmaster, t->postmaster);
		if (t->local != NULL) {
			assert_string_equal(r.to.local, t->local);
			assert_string_equal(r.to.domain, t->domain);
		}
		assert_int_equal(addr_local_has_route_chars(&r.to), t->route_chars);
		assert_int_equal(r.to.literal, t->literal);
	}
}

struct bdat_case {
	const char *name;
	const char *arg;
	int rc;
	uint64_t size;
	bool last;
};

static const struct bdat_case bdat_cases[] = {
	{"size", "100", 0, 100, false},
	{"zero", "0", 0, 0, false},
	{"zero last", "0 LAST", 0, 0, true},
	{"last", "42 LAST", 0, 42, true},
	{"last lower", "42 last", 0, 42, true},
	{"extra spaces", "42    LAST", 0, 42, true},
	{"20 digits", "12345678901234567890", 0, 12345678901234567890u, false},
	{"20 nines saturate", "99999999999999999999 LAST", 0, UINT64_MAX, true},
	{"21 digits", "123456789012345678901", -1, 0, false},
	{"empty", "", -1, 0, false},
	{"not digits", "abc", -1, 0, false},
	{"negative", "-5", -1, 0, false},
	{"plus", "+5", -1, 0, false},
	{"glued last", "5LAST", -1, 0, false},
	{"bad word", "5 FIRST", -1, 0, false},
	{"last twice", "5 LAST LAST", -1, 0, false},
	{"last only", "LAST", -1, 0, false},
	{"hex", "0x10", -1, 0, false},
};

static void test_bdat(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(bdat_cases) / sizeof(bdat_cases[0]); i++) {
		const struct bdat_case *t = &bdat_cases[i];
		uint64_t size = 7;
		bool last = false;
		const char *reply = NULL;
		print_message("case %s\n", t->name);
		int rc = smtp_parse_bdat(t->arg, strlen(t->arg), &size, &last, &reply);
		assert_int_equal(rc, t->rc);
		if (rc == 0) {
			assert_true(size == t->size);
			assert_int_equal(last, t->last);
		} else {
			assert_true(strncmp(reply, "501 5.5.4", 9) == 0);
		}
	}
}

/* Whole lines through both layers, as the session does. */
static void test_command_then_mail(void **state)
{
	(void)state;
	const char *line = "mail   from:<x@y.example> size=5   ";
	struct smtp_command cmd;
	struct smtp_mail_args m;
	const char *reply = NULL;
	assert_int_equal(smtp_parse_command(line, strlen(line), &cmd, &reply), 0);
	assert_int_equal(cmd.verb, SMTP_VERB_MAIL);
	assert_int_equal(smtp_parse_mail(cmd.arg, cmd.arg_len, &m, &reply), 0);
	assert_true(m.has_size && m.size == 5);
	assert_string_equal(m.from.local, "x");
}


/* RFC 3461 parameters on MAIL and RCPT. */
static void test_dsn_params(void **state)
{
	(void)state;
	struct smtp_mail_args m;
	struct smtp_rcpt_args r;
	const char *reply = NULL;
	const char *a;

	a = "FROM:<a@example.test> RET=HDRS ENVID=QQ314159+2Bx";
	assert_int_equal(smtp_parse_mail(a, strlen(a), &m, &reply), 0);
	assert_int_equal(m.ret, SMTP_RET_HDRS);
	assert_true(m.has_envid);
	assert_string_equal(m.envid, "QQ314159+x");
	/* RFC 4954 5: AUTH= is accepted (and not trusted) wherever AUTH is. */
	a = "FROM:<a@example.test> AUTH=<> RET=FULL";
	assert_int_equal(smtp_parse_mail(a, strlen(a), &m, &reply), 0);
	a = "FROM:<a@example.test> AUTH=a+2Bb@example.test";
	assert_int_equal(smtp_parse_mail(a, strlen(a), &m, &reply), 0);
	a = "FROM:<a@example.test> ret=full";
	assert_int_equal(smtp_parse_mail(a, strlen(a), &m, &reply), 0);
	assert_int_equal(m.ret, SMTP_RET_FULL);
	assert_false(m.has_envid);
	const char *bad_mail[][2] = {
		{"FROM:<a@example.test> RET=ALL", "501 5.5.4 Bad RET"},
		{"FROM:<a@example.test> RET", "501 5.5.4 Bad RET"},
		{"FROM:<a@example.test> RET=FULL RET=HDRS", "501 5.5.4 Duplicate"},
		{"FROM:<a@example.test> ENVID=a ENVID=b", "501 5.5.4 Duplicate"},
		{"FROM:<a@example.test> ENVID=+2", "501 5.5.4 Bad ENVID"},
		{"FROM:<a@example.test> ENVID=+2b", "501 5.5.4 Bad ENVID"},   /* lower hex */
		{"FROM:<a@example.test> ENVID=+00", "501 5.5.4 Bad ENVID"},   /* NUL */
		{"FROM:<a@example.test> ENVID=+0D+0A", "501 5.5.4 Bad ENVID"},
		{"FROM:<a@example.test> ENVID=\xc3\xa9", "501 5.5.4 Bad ENVID"},
	};
	for (size_t i = 0; i < sizeof bad_mail / sizeof bad_mail[0]; i++) {
		print_message("mail %s\n", bad_mail[i][0]);
		assert_int_equal(smtp_parse_mail(bad_mail[i][0], strlen(bad_mail[i][0]), &m,
						 &reply), -1);
		assert_true(strncmp(reply, bad_mail[i][1], strlen(bad_mail[i][1])) == 0);
	}
	/* ENVID cap: 100 characters as sent. */
	char big[200];
	int n = snprintf(big, sizeof big, "FROM:<a@example.test> ENVID=");
	memset(big + n, 'x', 100);
	big[n + 100] = '\0';
	assert_int_equal(smtp_parse_mail(big, strlen(big), &m, &reply), 0);
	assert_int_equal(strlen(m.envid), 100);
	big[n + 100] = 'x';
	big[n + 101] = '\0';
	assert_int_equal(smtp_parse_mail(big, strlen(big), &m, &reply), -1);

	a = "TO:<b@example.test> NOTIFY=SUCCESS,delay ORCPT=rfc822;b+2Bx@example.test";
	assert_int_equal(smtp_parse_rcpt(a, strlen(a), false, &r, &reply), 0);
	assert_int_equal(r.notify, SMTP_NOTIFY_SUCCESS | SMTP_NOTIFY_DELAY);
	assert_true(r.has_orcpt);
	assert_string_equal(r.orcpt, "rfc822;b+x@example.test");
	a = "TO:<b@example.test> NOTIFY=NEVER";
	assert_int_equal(smtp_parse_rcpt(a, strlen(a), false, &r, &reply), 0);
	assert_int_equal(r.notify, SMTP_NOTIFY_NEVER);
	a = "TO:<b@example.test> ORCPT=utf-8;b\xc3\xb6@example.test";
	assert_int_equal(smtp_parse_rcpt(a, strlen(a), true, &r, &reply), 0);
	assert_string_equal(r.orcpt, "utf-8;b\xc3\xb6@example.test");
	const char *bad_rcpt[][2] = {
		{"TO:<b@example.test> NOTIFY=NEVER,SUCCESS", "501 5.5.4 Bad NOTIFY"},
		{"TO:<b@example.test> NOTIFY=SUCCESS,SUCCESS", "501 5.5.4 Bad NOTIFY"},
		{"TO:<b@example.test> NOTIFY=", "501 5.5.4"},
		{"TO:<b@example.test> NOTIFY=SUCCESS,", "501 5.5.4 Bad NOTIFY"},
		{"TO:<b@example.test> NOTIFY=SOMETIMES", "501 5.5.4 Bad NOTIFY"},
		{"TO:<b@example.test> NOTIFY=NEVER NOTIFY=NEVER", "501 5.5.4 Duplicate"},
		{"TO:<b@example.test> ORCPT=b@example.test", "501 5.5.4 Bad ORCPT"},
		{"TO:<b@example.test> ORCPT=rfc822;", "501 5.5.4 Bad ORCPT"},
		{"TO:<b@example.test> ORCPT=;b@example.test", "501 5.5.4 Bad ORCPT"},
		{"TO:<b@example.test> ORCPT=rfc822;b+0A@example.test", "501 5.5.4 Bad ORCPT"},
		/* raw UTF-8 only with addr-type utf-8 under SMTPUTF8 */
		{"TO:<b@example.test> ORCPT=rfc822;b\xc3\xb6@example.test", "501 5.5.4 Bad ORCPT"},
		{"TO:<b@example.test> ORCPT=rfc822;a ORCPT=rfc822;b", "501 5.5.4 Duplicate"},
	};
	for (size_t i = 0; i < sizeof bad_rcpt / sizeof bad_rcpt[0]; i++) {
		print_message("rcpt %s\n", bad_rcpt[i][0]);
		assert_int_equal(smtp_parse_rcpt(bad_rcpt[i][0], strlen(bad_rcpt[i][0]), true, &r,
						 &reply), -1);
		assert_true(strncmp(reply, bad_rcpt[i][1], strlen(bad_rcpt[i][1])) == 0);
	}
	/* ORCPT cap: 500 characters as sent. */
	char orc[700];
	n = snprintf(orc, sizeof orc, "TO:<b@example.test> ORCPT=rfc822;");
	int start = n - (int)strlen("rfc822;");
	memset(orc + n, 'y', (size_t)(500 - (n - start)));
	orc[start + 500] = '\0';
	assert_int_equal(smtp_parse_rcpt(orc, strlen(orc), false, &r, &reply), 0);
	orc[start + 500] = 'y';
	orc[start + 501] = '\0';
	assert_int_equal(smtp_parse_rcpt(orc, strlen(orc), false, &r, &reply), -1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_commands),
		cmocka_unit_test(test_verb_info),
		cmocka_unit_test(test_helo),
		cmocka_unit_test(test_mail),
		cmocka_unit_test(test_rcpt),
		cmocka_unit_test(test_dsn_params),
		cmocka_unit_test(test_bdat),
		cmocka_unit_test(test_command_then_mail),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
