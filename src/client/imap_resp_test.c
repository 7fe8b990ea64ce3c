/* imap_resp_test.c - the client's IMAP response parser, table-driven:
 * each response is parsed and printed back in a canonical form. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client/imap_resp.h"
#include "core/buf.h"

/* Canonical form: atoms as is, strings in <>, NIL as NIL, lists in (). */
static void show(const struct imap_resp *r, const struct imap_node *n, struct buf *out)
{
	for (bool first = true; n != NULL; n = imap_resp_next(r, n), first = false) {
		if (!first)
			buf_append(out, " ", 1);
		switch (n->type) {
		case IMAP_NODE_ATOM:
			buf_append(out, n->s, n->len);
			break;
		case IMAP_NODE_STRING:
			buf_append(out, "<", 1);
			buf_append(out, n->s, n->len);
			buf_append(out, ">", 1);
			break;
		case IMAP_NODE_NIL:
			buf_append(out, "NIL", 3);
			break;
		case IMAP_NODE_LIST:
			buf_append(out, "(", 1);
			show(r, imap_resp_child(r, n), out);
			buf_append(out, ")", 1);
			break;
		}
	}
}

static const struct {
	const char *in;
	const char *want;   /* NULL: must fail */
} cases[] = {
	{"* 3 EXISTS\r\n", "U n=3 EXISTS []"},
	{"* FLAGS (\\Answered \\Seen $Junk)\r\n", "U FLAGS [(\\Answered \\Seen $Junk)]"},
	{"* OK [UIDVALIDITY 3857529045] UIDs valid\r\n", "U OK code=UIDVALIDITY 3857529045 text=UIDs valid"},
	{"* OK Dovecot ready.", "U OK code= text=Dovecot ready."},
	{"* OK", "U OK code= text="},
	{"a1 OK [READ-WRITE] SELECT completed\r\n", "T a1 OK code=READ-WRITE text=SELECT completed"},
	{"a2 NO [TRYCREATE] no such mailbox (really\r\n", "T a2 NO code=TRYCREATE text=no such mailbox (really"},
	{"a3 bad what\r\n", "T a3 BAD code= text=what"},
	{"+ dGVzdA==\r\n", "C text=dGVzdA=="},
	{"+\r\n", "C text="},
	{"* LIST (\\HasNoChildren \\Sent) \"/\" Sent\r\n", "U LIST [(\\HasNoChildren \\Sent) </> Sent]"},
	{"* LIST () NIL \"a \\\"q\\\" \\\\b\"", "U LIST [() NIL <a \"q\" \\b>]"},
	{"* SEARCH 2 84 882\r\n", "U SEARCH [2 84 882]"},
	{"* SEARCH\r\n", "U SEARCH []"},
	{"* 12 FETCH (FLAGS (\\Seen) UID 7 BODY[HEADER.FIELDS (DATE FROM)] {5}\r\nab\r\nc)\r\n",
	 "U n=12 FETCH [(FLAGS (\\Seen) UID 7 BODY[HEADER.FIELDS (DATE FROM)] <ab\r\nc>)]"},
	{"* 1 FETCH (BODY[]<0> {5}\r\n)()\r\n UID 1)", "U n=1 FETCH [(BODY[]<0> <)()\r\n> UID 1)]"},
	{"* 1 FETCH (BINARY[1] ~{2}\r\n\x00\x01)", "U n=1 FETCH [(BINARY[1] <\x00\x01>)]"},
	{"* 1 FETCH (ENVELOPE (\"d\" \"s\" ((\"N\" NIL \"u\" \"h\")) NIL NIL NIL NIL NIL NIL \"<i>\"))",
	 "U n=1 FETCH [(ENVELOPE (<d> <s> ((<N> NIL <u> <h>)) NIL NIL NIL NIL NIL NIL <<i>>))]"},
	{"* STATUS \"A b\" (MESSAGES 2 UNSEEN 1)", "U STATUS [<A b> (MESSAGES 2 UNSEEN 1)]"},
	{"* CAPABILITY IMAP4rev1 AUTH=PLAIN\nx", "U CAPABILITY [IMAP4rev1 AUTH=PLAIN]"},
	{"* 1 FETCH (A (B)", NULL},
	{"* 1 FETCH (A))", NULL},
	{"* 1 FETCH (A \"unterminated)", NULL},
	{"* 1 FETCH (A {10}\r\nshort)", NULL},
	{"* 1 FETCH (A {5}x)", NULL},
	{"* 1 FETCH (BODY[HEADER", NULL},
	{"* 99999999999 EXISTS", NULL},
	{"a4 EXISTS", NULL},
	{"", NULL},
	{"*", NULL},
	{"* ", NULL},
};

static void t_cases(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		size_t len = strlen(cases[i].in);
		if (strstr(cases[i].in, "~{2}"))
			len = strlen("* 1 FETCH (BINARY[1] ~{2}\r\n") + 3;
		struct buf in;
		buf_init(&in, 1 << 20);
		buf_append(&in, cases[i].in, len);
		if (!in.data)
			buf_append(&in, "", 0);
		struct imap_resp r;
		const char *e = NULL;
		int ret = imap_resp_parse(in.data, in.len, &r, &e);
		if (cases[i].want == NULL) {
			if (ret == 0)
				fail_msg("case %zu parsed: %s", i, cases[i].in);
			assert_non_null(e);
			buf_free(&in);
			continue;
		}
		if (ret != 0)
			fail_msg("case %zu failed: %s (%s)", i, cases[i].in, e);
		if (ret != 0)
			buf_free(&in);
		struct buf out;
		buf_init(&out, 1 << 20);
		char head[256];
		if (r.kind == IMAP_RESP_CONTINUE) {
			snprintf(head, sizeof head, "C text=%s", r.text);
			buf_append(&out, head, strlen(head));
		} else if (r.status != IMAP_ST_NONE) {
			static const char *const st[] = {"", "OK", "NO", "BAD", "PREAUTH", "BYE"};
			snprintf(head, sizeof head, "%s%s%s %s code=%s text=%s",
				 r.kind == IMAP_RESP_TAGGED ? "T " : "U", r.tag,
				 r.kind == IMAP_RESP_TAGGED ? "" : "", st[r.status], r.code, r.text);
			buf_append(&out, head, strlen(head));
		} else {
			if (r.has_number)
				snprintf(head, sizeof head, "U n=%u %s [", r.number, r.name);
			else
				snprintf(head, sizeof head, "U %s [", r.name);
			buf_append(&out, head, strlen(head));
			show(&r, imap_resp_first(&r), &out);
			buf_append(&out, "]", 1);
		}
		size_t wl = strlen(cases[i].want);
		if (strstr(cases[i].want, "<\x00"))
			wl = out.len;
		if (out.len != wl || memcmp(out.data, cases[i].want, wl) != 0)
			fail_msg("case %zu: got [%s] want [%s]", i, out.data, cases[i].want);
		buf_free(&out);
		imap_resp_free(&r);
		buf_free(&in);
	}
}

static void t_literal(void **state)
{
	(void)state;
	uint64_t n = 0;
	assert_int_equal(imap_resp_literal("* 1 FETCH (BODY[] {123}", 23, 1000, &n), 1);
	assert_int_equal(n, 123);
	assert_int_equal(imap_resp_literal("x ~{7}", 6, 1000, &n), 1);
	assert_int_equal(n, 7);
	assert_int_equal(imap_resp_literal("x {7+}", 6, 1000, &n), 1);
	assert_int_equal(imap_resp_literal("x {1001}", 8, 1000, &n), -1);
	assert_int_equal(imap_resp_literal("x {12345678901}", 15, UINT64_MAX, &n), -1);
	assert_int_equal(imap_resp_literal("x 7}", 4, 1000, &n), 0);
	assert_int_equal(imap_resp_literal("x {}", 4, 1000, &n), 0);
	assert_int_equal(imap_resp_literal("}", 1, 1000, &n), 0);
}

static void t_caps(void **state)
{
	(void)state;
	/* 65 levels of lists: over the depth cap */
	struct buf in;
	buf_init(&in, 1 << 20);
	buf_append(&in, "* X ", 4);
	for (int i = 0; i < IMAP_RESP_DEPTH_MAX + 1; i++)
		buf_append(&in, "(", 1);
	for (int i = 0; i < IMAP_RESP_DEPTH_MAX + 1; i++)
		buf_append(&in, ")", 1);
	struct imap_resp r;
	const char *e = NULL;
	assert_int_equal(imap_resp_parse(in.data, in.len, &r, &e), -1);
	assert_string_equal(e, "lists nested too deep");
	/* exactly the cap is fine */
	buf_reset(&in);
	buf_append(&in, "* X ", 4);
	for (int i = 0; i < IMAP_RESP_DEPTH_MAX; i++)
		buf_append(&in, "(", 1);
	for (int i = 0; i < IMAP_RESP_DEPTH_MAX; i++)
		buf_append(&in, ")", 1);
	assert_int_equal(imap_resp_parse(in.data, in.len, &r, &e), 0);
	imap_resp_free(&r);
	buf_free(&in);
	/* more nodes than the cap */
	struct buf big;
	buf_init(&big, 8u * IMAP_RESP_NODES_MAX);
	buf_append(&big, "* SEARCH", 8);
	for (size_t i = 0; i <= IMAP_RESP_NODES_MAX; i++)
		buf_append(&big, " 1", 2);
	assert_int_equal(imap_resp_parse(big.data, big.len, &r, &e), -1);
	assert_string_equal(e, "too many items in one response");
	buf_free(&big);
}

static void t_fetch_item(void **state)
{
	(void)state;
	char in[] = "* 5 FETCH (UID 9 FLAGS (\\Seen) RFC822.SIZE 44 BODY[HEADER] {2}\r\nhi)";
	struct imap_resp r;
	const char *e;
	assert_int_equal(imap_resp_parse(in, strlen(in), &r, &e), 0);
	const struct imap_node *l = imap_resp_first(&r);
	uint32_t v = 0;
	assert_int_equal(imap_node_u32(imap_fetch_item(&r, l, "uid"), &v), 0);
	assert_int_equal(v, 9);
	assert_int_equal(imap_node_u32(imap_fetch_item(&r, l, "RFC822.SIZE"), &v), 0);
	assert_int_equal(v, 44);
	const struct imap_node *b = imap_fetch_item(&r, l, "BODY[");
	assert_non_null(b);
	assert_int_equal(b->len, 2);
	assert_memory_equal(b->s, "hi", 2);
	assert_null(imap_fetch_item(&r, l, "BODY[]"));
	assert_null(imap_fetch_item(&r, l, "INTERNALDATE"));
	char *d = imap_node_dup(b);
	assert_string_equal(d, "hi");
	free(d);
	assert_true(imap_node_is(imap_resp_child(&r, imap_fetch_item(&r, l, "FLAGS")), "\\seen"));
	imap_resp_free(&r);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(t_cases),
		cmocka_unit_test(t_literal),
		cmocka_unit_test(t_caps),
		cmocka_unit_test(t_fetch_item),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
