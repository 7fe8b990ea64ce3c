/* jmap_ref_test.c - JSON Pointer with '*' and result references. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "proto/jmap/jmap_ref.h"

static const char doc_text[] =
	"{\"list\": [{\"id\": \"m1\", \"ids\": [\"a\", \"b\"], \"t\": {\"x\": 1}},"
	"           {\"id\": \"m2\", \"ids\": [\"c\"], \"t\": {\"x\": 2}}],"
	" \"ids\": [\"e1\", \"e2\"], \"a/b\": {\"~c\": 7}, \"\": 5, \"n\": null,"
	" \"nested\": [[1, 2], [3]], \"empty\": []}";

/* Table: pointer -> the JSON it selects (compact), or NULL for an error. */
static void test_pointer_table(void **state)
{
	static const struct {
		const char *ptr;
		const char *want;
	} cases[] = {
		{"/ids", "[\"e1\",\"e2\"]"},
		{"/ids/0", "\"e1\""},
		{"/ids/1", "\"e2\""},
		{"/ids/2", NULL},               /* out of range */
		{"/ids/01", NULL},              /* leading zero */
		{"/ids/-", NULL},
		{"/ids/x", NULL},
		{"/list/*/id", "[\"m1\",\"m2\"]"},
		{"/list/*/ids", "[\"a\",\"b\",\"c\"]"},     /* arrays flattened */
		{"/list/*/t/x", "[1,2]"},
		{"/list/1/ids/0", "\"c\""},
		{"/list/*/missing", NULL},
		{"/nested/*", "[1,2,3]"},
		{"/nested/*/*", "[1,2,3]"},
		{"/empty/*", "[]"},
		{"/empty/*/id", "[]"},
		{"/a~1b/~0c", "7"},
		{"/a~2b", NULL},                /* bad escape */
		{"/a~", NULL},
		{"/", "5"},                     /* the member "" */
		{"/n", "null"},
		{"/n/x", NULL},                 /* into a null */
		{"/ids/0/x", NULL},             /* into a string */
		{"ids", NULL},                  /* no leading / */
		{"/nope", NULL},
	};
	(void)state;
	json_t *doc = json_loads(doc_text, 0, NULL);
	assert_non_null(doc);
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		json_t *v = NULL;
		const char *err = NULL;
		int r = jmap_pointer_eval(doc, cases[i].ptr, strlen(cases[i].ptr), &v, &err);
		if (cases[i].want == NULL) {
			if (r != -1)
				fail_msg("pointer %s: expected an error", cases[i].ptr);
			assert_non_null(err);
			assert_null(v);
			continue;
		}
		if (r != 0)
			fail_msg("pointer %s: %s", cases[i].ptr, err);
		char *got = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
		if (strcmp(got, cases[i].want) != 0)
			fail_msg("pointer %s: got %s, want %s", cases[i].ptr, got, cases[i].want);
		free(got);
		json_decref(v);
	}
	/* "" is the whole document */
	json_t *v = NULL;
	const char *err = NULL;
	assert_int_equal(jmap_pointer_eval(doc, "", 0, &v, &err), 0);
	assert_ptr_equal(v, doc);
	json_decref(v);
	json_decref(doc);
}

static void test_pointer_limits(void **state)
{
	(void)state;
	json_t *doc = json_loads("{\"a\": 1}", 0, NULL);
	char *p = malloc(JMAP_POINTER_MAX + 2);
	memset(p, 'a', JMAP_POINTER_MAX + 1);
	p[0] = '/';
	p[JMAP_POINTER_MAX + 1] = '\0';
	json_t *v = NULL;
	const char *err = NULL;
	assert_int_equal(jmap_pointer_eval(doc, p, JMAP_POINTER_MAX + 1, &v, &err), -1);
	/* an embedded NUL never matches a member */
	assert_int_equal(jmap_pointer_eval(doc, "/a\0b", 4, &v, &err), -1);
	free(p);
	json_decref(doc);
}

static json_t *responses(void)
{
	return json_loads("[[\"Mailbox/get\", {\"list\": [{\"id\": \"m1\"}, {\"id\": \"m2\"}],"
			  " \"ids\": [\"m1\"]}, \"c0\"],"
			  " [\"error\", {\"type\": \"unknownMethod\"}, \"c1\"],"
			  " [\"Mailbox/get\", {\"list\": []}, \"c0\"]]", 0, NULL);
}

static void test_resolve(void **state)
{
	static const struct {
		const char *args;
		enum jmap_ref_error want;
		const char *result;     /* args after resolution */
	} cases[] = {
		{"{\"accountId\": \"a1\", \"#ids\": {\"resultOf\": \"c0\","
		 " \"name\": \"Mailbox/get\", \"path\": \"/list/*/id\"}}", JMAP_REF_OK,
		 "{\"accountId\":\"a1\",\"ids\":[\"m1\",\"m2\"]}"},
		/* the first response with that id wins */
		{"{\"#ids\": {\"resultOf\": \"c0\", \"name\": \"Mailbox/get\","
		 " \"path\": \"/ids\"}}",
		 JMAP_REF_OK, "{\"ids\":[\"m1\"]}"},
		{"{\"#ids\": {\"resultOf\": \"c9\", \"name\": \"Mailbox/get\","
		 " \"path\": \"/ids\"}}",
		 JMAP_REF_INVALID_RESULT_REFERENCE, NULL},
		{"{\"#ids\": {\"resultOf\": \"c1\", \"name\": \"Mailbox/get\","
		 " \"path\": \"/ids\"}}",
		 JMAP_REF_INVALID_RESULT_REFERENCE, NULL},
		{"{\"#ids\": {\"resultOf\": \"c0\", \"name\": \"Mailbox/get\","
		 " \"path\": \"/x\"}}",
		 JMAP_REF_INVALID_RESULT_REFERENCE, NULL},
		{"{\"ids\": null, \"#ids\": {\"resultOf\": \"c0\", \"name\": \"Mailbox/get\","
		 " \"path\": \"/ids\"}}", JMAP_REF_INVALID_ARGUMENTS, NULL},
		{"{\"#ids\": {\"resultOf\": \"c0\", \"name\": \"Mailbox/get\"}}",
		 JMAP_REF_INVALID_ARGUMENTS, NULL},
		{"{\"#ids\": \"c0\"}", JMAP_REF_INVALID_ARGUMENTS, NULL},
		{"{\"#ids\": {\"resultOf\": 1, \"name\": \"Mailbox/get\", \"path\": \"/ids\"}}",
		 JMAP_REF_INVALID_ARGUMENTS, NULL},
		{"{\"#\": {\"resultOf\": \"c0\", \"name\": \"Mailbox/get\", \"path\": \"/ids\"}}",
		 JMAP_REF_INVALID_ARGUMENTS, NULL},
		{"{\"plain\": 1}", JMAP_REF_OK, "{\"plain\":1}"},
	};
	(void)state;
	json_t *resp = responses();
	assert_non_null(resp);
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		json_t *args = json_loads(cases[i].args, 0, NULL);
		assert_non_null(args);
		const char *err = NULL;
		enum jmap_ref_error r = jmap_resolve_refs(args, resp, &err);
		if (r != cases[i].want)
			fail_msg("case %zu: got %d, want %d (%s)", i, r, cases[i].want,
				 err ? err : "");
		if (cases[i].result) {
			char *got = json_dumps(args, JSON_COMPACT | JSON_SORT_KEYS);
			if (strcmp(got, cases[i].result) != 0)
				fail_msg("case %zu: got %s, want %s", i, got, cases[i].result);
			free(got);
		} else {
			assert_non_null(err);
		}
		json_decref(args);
	}
	json_decref(resp);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_pointer_table),
		cmocka_unit_test(test_pointer_limits),
		cmocka_unit_test(test_resolve),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
