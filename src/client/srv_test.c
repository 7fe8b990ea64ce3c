/* srv_test.c - SRV RDATA parsing and the RFC 6186 choices. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "client/srv.h"
#include "core/util.h"

/* RDATA: priority, weight, port, then the target's wire form. */
#define FIXED(p, w, port) (p) >> 8, (p) & 0xff, (w) >> 8, (w) & 0xff, (port) >> 8, (port) & 0xff

struct parse_case {
	const char *what;
	unsigned char rd[300];
	size_t len;
	int rc;
	unsigned prio, weight, port;
	const char *target;     /* with rc 0 */
	const char *error;      /* with rc -1: a part of the reason */
};

static const struct parse_case parse_cases[] = {
	{"host", {FIXED(10, 20, 465), 4, 's', 'm', 't', 'p', 7, 'e', 'x', 'a', 'm', 'p', 'l', 'e',
		  3, 'o', 'r', 'g', 0}, 24, 0, 10, 20, 465, "smtp.example.org", NULL},
	{"root target, port 0", {FIXED(0, 0, 0), 0}, 7, 0, 0, 0, 0, "", NULL},
	{"root target, a port", {FIXED(0, 1, 993), 0}, 7, 0, 0, 1, 993, "", NULL},
	{"largest numbers", {FIXED(65535, 65535, 65535), 1, 'a', 0}, 9, 0, 65535, 65535, 65535,
	 "a", NULL},
	{"case, digits, - and _ kept", {FIXED(1, 2, 3), 5, 'M', 'x', '-', '_', '9', 0}, 13, 0, 1,
	 2, 3, "Mx-_9", NULL},
	{"empty", {0}, 0, -1, 0, 0, 0, NULL, "too short"},
	{"no target", {FIXED(1, 1, 1)}, 6, -1, 0, 0, 0, NULL, "too short"},
	{"compression pointer", {FIXED(1, 1, 25), 0xc0, 0x0c}, 8, -1, 0, 0, 0, NULL, "compressed"},
	{"pointer after a label", {FIXED(1, 1, 25), 1, 'a', 0xc0, 0x0c}, 10, -1, 0, 0, 0, NULL,
	 "compressed"},
	{"extended label type 01", {FIXED(1, 1, 25), 0x41, 'a', 0}, 9, -1, 0, 0, 0, NULL,
	 "label type"},
	{"label type 10", {FIXED(1, 1, 25), 0x80, 0}, 8, -1, 0, 0, 0, NULL, "label type"},
	{"label past the end", {FIXED(1, 1, 25), 5, 'a', 'b'}, 9, -1, 0, 0, 0, NULL, "past"},
	{"no root label", {FIXED(1, 1, 25), 1, 'a'}, 8, -1, 0, 0, 0, NULL, "past the record"},
	{"bytes after the name", {FIXED(1, 1, 25), 1, 'a', 0, 0}, 10, -1, 0, 0, 0, NULL, "after"},
	{"bytes after the root", {FIXED(0, 0, 0), 0, 'x'}, 8, -1, 0, 0, 0, NULL, "after"},
	{"a dot inside a label", {FIXED(1, 1, 25), 3, 'a', '.', 'b', 0}, 11, -1, 0, 0, 0, NULL,
	 "character"},
	{"an escape character", {FIXED(1, 1, 25), 2, 0x1b, '[', 0}, 10, -1, 0, 0, 0, NULL,
	 "character"},
	{"a space", {FIXED(1, 1, 25), 3, 'a', ' ', 'b', 0}, 11, -1, 0, 0, 0, NULL, "character"},
	{"UTF-8", {FIXED(1, 1, 25), 2, 0xc3, 0xa9, 0}, 10, -1, 0, 0, 0, NULL, "character"},
	{"NUL in a label", {FIXED(1, 1, 25), 2, 'a', 0, 0}, 10, -1, 0, 0, 0, NULL, "character"},
	{"leading hyphen", {FIXED(1, 1, 25), 2, '-', 'a', 0}, 10, -1, 0, 0, 0, NULL, "'-'"},
	{"port 0 with a host", {FIXED(1, 1, 0), 1, 'a', 0}, 9, -1, 0, 0, 0, NULL, "port 0"},
};

/* A wire name of labels of the given sizes, filled with 'a'; returns its length. */
static size_t wire_name(unsigned char *out, const size_t *sizes, size_t n)
{
	size_t o = 0;
	for (size_t i = 0; i < n; i++) {
		out[o++] = (unsigned char)sizes[i];
		memset(out + o, 'a' + (int)(i % 26), sizes[i]);
		o += sizes[i];
	}
	out[o++] = 0;
	return o;
}

static void test_parse_table(void **state)
{
	(void)state;
	for (size_t i = 0; i < ARRAY_LEN(parse_cases); i++) {
		const struct parse_case *c = &parse_cases[i];
		struct srv_record r;
		const char *why = NULL;
		/* exactly len bytes, so that a read past the record is ASan's */
		unsigned char *copy = test_malloc(c->len ? c->len : 1);
		memcpy(copy, c->rd, c->len);
		int rc = srv_parse(copy, c->len, &r, &why);
		test_free(copy);
		if (rc != c->rc)
			print_error("case \"%s\": rc %d, why %s\n", c->what, rc, why ? why : "-");
		assert_int_equal(rc, c->rc);
		if (rc == 0) {
			assert_int_equal(r.priority, c->prio);
			assert_int_equal(r.weight, c->weight);
			assert_int_equal(r.port, c->port);
			assert_string_equal(r.target, c->target);
		} else {
			assert_non_null(why);
			if (strstr(why, c->error) == NULL)
				print_error("case \"%s\": reason \"%s\"\n", c->what, why);
			assert_non_null(strstr(why, c->error));
		}
	}
}

static void test_parse_lengths(void **state)
{
	(void)state;
	unsigned char rd[400] = {FIXED(5, 5, 587)};
	struct srv_record r;
	const char *why = NULL;

	/* a 63-byte label is fine, 64 is not a label length at all */
	size_t one63[] = {63};
	size_t n = 6 + wire_name(rd + 6, one63, 1);
	assert_int_equal(srv_parse(rd, n, &r, &why), 0);
	assert_int_equal(strlen(r.target), 63);
	size_t one64[] = {64};
	n = 6 + wire_name(rd + 6, one64, 1);
	assert_int_equal(srv_parse(rd, n, &r, &why), -1);

	/* 255 wire bytes: 3 x (1 + 63) + (1 + 61) + the root = 255 */
	size_t max[] = {63, 63, 63, 61};
	n = 6 + wire_name(rd + 6, max, 4);
	assert_int_equal(n - 6, 255);
	assert_int_equal(srv_parse(rd, n, &r, &why), 0);
	assert_int_equal(strlen(r.target), SRV_TARGET_MAX);
	assert_int_equal(r.target[63], '.');

	/* one more byte is too long, however it is split */
	size_t over[] = {63, 63, 63, 62};
	n = 6 + wire_name(rd + 6, over, 4);
	assert_int_equal(srv_parse(rd, n, &r, &why), -1);
	assert_non_null(strstr(why, "255"));
	size_t many[128];
	for (size_t i = 0; i < 128; i++)
		many[i] = 1;
	n = 6 + wire_name(rd + 6, many, 127);     /* 127 x 2 + 1 = 255 */
	assert_int_equal(srv_parse(rd, n, &r, &why), 0);
	n = 6 + wire_name(rd + 6, many, 128);     /* 257 */
	assert_int_equal(srv_parse(rd, n, &r, &why), -1);

	/* every prefix of a good record fails, without reading past it */
	size_t good[] = {4, 7, 3};
	n = 6 + wire_name(rd + 6, good, 3);
	for (size_t k = 0; k < n; k++) {
		unsigned char *copy = test_malloc(k ? k : 1);
		memcpy(copy, rd, k);
		assert_int_equal(srv_parse(copy, k, &r, &why), -1);
		test_free(copy);
	}
	/* a NULL error_r is allowed */
	assert_int_equal(srv_parse(rd, 3, &r, NULL), -1);
}

static struct srv_record rec(unsigned prio, unsigned weight, unsigned port, const char *target)
{
	struct srv_record r;
	memset(&r, 0, sizeof r);
	r.priority = prio;
	r.weight = weight;
	r.port = port;
	snprintf(r.target, sizeof r.target, "%s", target);
	return r;
}

struct select_case {
	const char *what;
	struct srv_record v[4];
	size_t n;
	enum srv_state state;
	const char *target;     /* with SRV_FOUND */
	unsigned port;
};

static void test_select_table(void **state)
{
	(void)state;
	const struct select_case cases[] = {
		{"none", {{0}}, 0, SRV_ABSENT, NULL, 0},
		{"one", {rec(0, 1, 465, "smtp.a.example")}, 1, SRV_FOUND, "smtp.a.example", 465},
		{"lowest priority", {rec(20, 100, 1, "b"), rec(10, 0, 2, "c"), rec(30, 5, 3, "a")},
		 3, SRV_FOUND, "c", 2},
		{"then highest weight", {rec(10, 1, 1, "a"), rec(10, 50, 2, "b"),
					 rec(10, 49, 3, "c")}, 3, SRV_FOUND, "b", 2},
		{"then smallest name", {rec(10, 5, 1, "mx2"), rec(10, 5, 2, "mx1"),
					rec(10, 5, 3, "mx3")}, 3, SRV_FOUND, "mx1", 2},
		{"then lowest port", {rec(10, 5, 995, "a"), rec(10, 5, 110, "a")}, 2, SRV_FOUND,
		 "a", 110},
		{"only .", {rec(0, 0, 0, "")}, 1, SRV_NOT_OFFERED, NULL, 0},
		{"several .", {rec(0, 0, 0, ""), rec(5, 0, 0, "")}, 2, SRV_NOT_OFFERED, NULL, 0},
		{". beside a host", {rec(0, 0, 0, ""), rec(50, 0, 993, "imap.a.example")}, 2,
		 SRV_FOUND, "imap.a.example", 993},
		{"host before .", {rec(50, 0, 993, "imap.a.example"), rec(0, 0, 0, "")}, 2,
		 SRV_FOUND, "imap.a.example", 993},
	};
	for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
		const struct select_case *c = &cases[i];
		struct srv_answer a;
		srv_select(c->v, c->n, &a);
		if (a.state != c->state)
			print_error("case \"%s\": state %d\n", c->what, (int)a.state);
		assert_int_equal(a.state, c->state);
		if (c->state == SRV_FOUND) {
			assert_string_equal(a.rec.target, c->target);
			assert_int_equal(a.rec.port, c->port);
		}
		/* the order of the records does not matter */
		struct srv_record rev[4];
		for (size_t k = 0; k < c->n; k++)
			rev[k] = c->v[c->n - 1 - k];
		struct srv_answer b;
		srv_select(rev, c->n, &b);
		assert_int_equal(b.state, a.state);
		if (a.state == SRV_FOUND) {
			assert_int_equal(a.rec.priority, b.rec.priority);
			assert_int_equal(a.rec.weight, b.rec.weight);
			assert_int_equal(a.rec.port, b.rec.port);
			assert_string_equal(a.rec.target, b.rec.target);
		}
	}
}

/* A result from a spec: one letter per service, in srv_service order:
 * 'f' found (priority from prio[]), '.' not offered, '-' absent, 'x' failed. */
static struct srv_result result(const char *spec, const unsigned *prio)
{
	struct srv_result r;
	memset(&r, 0, sizeof r);
	for (size_t s = 0; s < SRV_SERVICES; s++) {
		struct srv_answer *a = &r.svc[s];
		switch (spec[s]) {
		case 'f':
			a->state = SRV_FOUND;
			a->rec = rec(prio ? prio[s] : 0, 0, 1000 + (unsigned)s, srv_label(s));
			break;
		case '.':
			a->state = SRV_NOT_OFFERED;
			break;
		case 'x':
			a->state = SRV_FAILED;
			snprintf(a->error, sizeof a->error, "timeout");
			break;
		default:
			a->state = SRV_ABSENT;
		}
	}
	return r;
}

static void test_choose_table(void **state)
{
	(void)state;
	static const struct {
		const char *spec;       /* submissions submission imaps imap pop3s pop3 */
		unsigned prio[SRV_SERVICES];
		int submit, incoming;
	} cases[] = {
		{"------", {0}, -1, -1},
		{"ffffff", {0}, SRV_SUBMISSIONS, SRV_IMAPS},
		{"-f---f", {0}, SRV_SUBMISSION, SRV_POP3},
		{"f-f---", {0}, SRV_SUBMISSIONS, SRV_IMAPS},
		{".f.f--", {0}, SRV_SUBMISSION, SRV_IMAP},      /* "." falls back */
		{"x-x-f-", {0}, -1, SRV_POP3S},                  /* failures are not found */
		{"ff-fff", {0}, SRV_SUBMISSIONS, SRV_IMAP},     /* IMAP over POP3 on a tie */
		{"--ffff", {0, 0, 10, 0, 10, 0}, -1, SRV_IMAPS}, /* implicit TLS, whatever prio */
		{"--f-f-", {0, 0, 10, 0, 5, 0}, -1, SRV_POP3S},  /* RFC 6186 3.4: priority */
		{"--f-f-", {0, 0, 5, 0, 10, 0}, -1, SRV_IMAPS},
		{"---f-f", {0, 0, 0, 7, 0, 7}, -1, SRV_IMAP},
		{"----.f", {0}, -1, SRV_POP3},
		{"......", {0}, -1, -1},
		{"f.....", {0}, SRV_SUBMISSIONS, -1},
	};
	for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
		struct srv_result r = result(cases[i].spec, cases[i].prio);
		if (srv_choose_submission(&r) != cases[i].submit ||
		    srv_choose_incoming(&r) != cases[i].incoming)
			print_error("case %zu \"%s\": %d %d\n", i, cases[i].spec,
				    srv_choose_submission(&r), srv_choose_incoming(&r));
		assert_int_equal(srv_choose_submission(&r), cases[i].submit);
		assert_int_equal(srv_choose_incoming(&r), cases[i].incoming);
	}
}

static void test_names(void **state)
{
	(void)state;
	static const struct {
		const char *s;
		bool ok;
	} domains[] = {
		{"example.org", true}, {"example.org.", true}, {"a", true},
		{"xn--wgv71a.jp", true},
		{"_x.example", true}, {"", false}, {".", false}, {"a..b", false}, {".a", false},
		{"a b", false}, {"例え.jp", false}, {"a/b", false}, {"a.b..", false},
	};
	for (size_t i = 0; i < ARRAY_LEN(domains); i++) {
		if (srv_domain_ok(domains[i].s) != domains[i].ok)
			print_error("domain \"%s\"\n", domains[i].s);
		assert_int_equal(srv_domain_ok(domains[i].s), domains[i].ok);
	}
	char d[300];
	memset(d, 'a', 63);
	d[63] = '\0';
	assert_true(srv_domain_ok(d));
	memset(d, 'a', 64);
	d[64] = '\0';
	assert_false(srv_domain_ok(d));
	/* 253 bytes: 3 x 63 + 3 dots + 61 */
	memset(d, 'a', 253);
	d[63] = d[127] = d[191] = '.';
	d[253] = '\0';
	assert_true(srv_domain_ok(d));
	d[253] = 'a';
	d[254] = '\0';
	assert_false(srv_domain_ok(d));

	static const struct {
		const char *s;
		bool ok;
	} servers[] = {
		{"127.0.0.1", true}, {"127.0.0.1@5353", true}, {"::1", true}, {"::1@53", true},
		{"2001:db8::1@65535", true}, {"", false}, {"@53", false}, {"127.0.0.1@", false},
		{"127.0.0.1@0", false}, {"127.0.0.1@65536", false}, {"127.0.0.1@5x", false},
		{"dns.example", false}, {"127.0.0.1:53", false}, {"[::1]@53", false},
	};
	for (size_t i = 0; i < ARRAY_LEN(servers); i++) {
		if (srv_server_ok(servers[i].s) != servers[i].ok)
			print_error("server \"%s\"\n", servers[i].s);
		assert_int_equal(srv_server_ok(servers[i].s), servers[i].ok);
	}
	assert_string_equal(srv_label(SRV_SUBMISSIONS), "_submissions._tcp");
	assert_string_equal(srv_label(SRV_POP3), "_pop3._tcp");
}

/* Errors found before anything is asked (no network needed). */
static void test_lookup_refuses(void **state)
{
	(void)state;
	struct srv_result r;
	char err[256];
	assert_int_equal(srv_lookup("bad domain", NULL, SRV_ALL, &r, err, sizeof err), -1);
	assert_non_null(strstr(err, "not a domain name"));
	for (size_t s = 0; s < SRV_SERVICES; s++)
		assert_int_equal(r.svc[s].state, SRV_ABSENT);
	assert_int_equal(srv_lookup("example.org", "dns.example", SRV_ALL, &r, err, sizeof err),
			 -1);
	assert_non_null(strstr(err, "IP@PORT"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_table),
		cmocka_unit_test(test_parse_lengths),
		cmocka_unit_test(test_select_table),
		cmocka_unit_test(test_choose_table),
		cmocka_unit_test(test_names),
		cmocka_unit_test(test_lookup_refuses),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
