/* jmap_ref_fuzz.c - libFuzzer target: a JMAP method call's arguments
 * resolved against earlier responses.
 *
 * Input: "POINTER\nJSON" -- the pointer is evaluated against the JSON
 * (any document), then the JSON is used as a methodResponses array and an
 * arguments object {"#x": {"resultOf": "c0", "name": NAME, "path":
 * POINTER}} is resolved against it, with NAME taken from its first
 * response.  Either call must succeed or fail cleanly; on success the
 * value is a JSON value and "#x" has become "x". */
#include <assert.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <jansson.h>

#include "proto/jmap/jmap_ref.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *p = (const char *)data;
	const char *nl = memchr(p, '\n', size);
	if (nl == NULL)
		return 0;
	size_t plen = (size_t)(nl - p);
	json_t *doc = json_loadb(nl + 1, size - plen - 1, JSON_DECODE_ANY, NULL);
	if (doc == NULL)
		return 0;
	json_t *v = NULL;
	const char *err = NULL;
	if (jmap_pointer_eval(doc, p, plen, &v, &err) == 0) {
		assert(v != NULL);
		json_decref(v);
	} else {
		assert(err != NULL && v == NULL);
	}
	if (json_is_array(doc)) {
		json_t *path = json_stringn(p, plen);
		if (path) {
			json_t *first = json_array_get(doc, 0);
			const char *name = json_string_value(json_array_get(first, 0));
			json_t *args = json_pack("{s:{s:s, s:s, s:o}}", "#x", "resultOf", "c0",
						 "name", name ? name : "n", "path", path);
			if (jmap_resolve_refs(args, doc, &err) == JMAP_REF_OK) {
				assert(json_object_get(args, "x") != NULL);
				assert(json_object_get(args, "#x") == NULL);
			}
			json_decref(args);
		}
	}
	json_decref(doc);
	return 0;
}
