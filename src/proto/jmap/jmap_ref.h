/* jmap_ref.h - JMAP result references (RFC 8620 3.7): JSON Pointers
 * (RFC 6901) with JMAP's '*' extension, and the "#name" arguments of a
 * method call resolved against the responses before it.  Pure: no I/O,
 * no global state.  Iterative (no recursion on the depth of the input):
 * each pointer token maps the current list of values to the next. */
#ifndef YUBIN_PROTO_JMAP_REF_H
#define YUBIN_PROTO_JMAP_REF_H

#include <stddef.h>

#include <jansson.h>

/* Longest pointer accepted (bytes); longer is invalidResultReference. */
#define JMAP_POINTER_MAX 1024
/* Most values a '*' pointer may collect. */
#define JMAP_POINTER_VALUES_MAX 100000

/* Evaluate pointer (UTF-8, len bytes; "" is the whole document) against
 * root.  A '*' token on an array applies the rest of the pointer to each
 * item, and the result is the array of the results, where a result that is
 * itself an array has its items added instead (RFC 8620 3.7).  0 with
 * *value_r (a new reference), or -1 with *error_r (static text) when a
 * member or index is missing, a token is malformed, or a limit is hit. */
int jmap_pointer_eval(json_t *root, const char *pointer, size_t len, json_t **value_r,
		      const char **error_r);

/* Errors of jmap_resolve_refs: the method-level error type to answer. */
enum jmap_ref_error {
	JMAP_REF_OK = 0,
	JMAP_REF_INVALID_ARGUMENTS,      /* "foo" and "#foo" both, or a malformed reference */
	JMAP_REF_INVALID_RESULT_REFERENCE,
};

/* Replace every "#name": ResultReference member of args (an object,
 * changed in place) with "name": the referenced value.  responses is the
 * methodResponses array so far ([name, arguments, callId] each); the first
 * response whose callId is resultOf is used, and its name must match.
 * Returns JMAP_REF_OK, or an error with *error_r (static text). */
enum jmap_ref_error jmap_resolve_refs(json_t *args, json_t *responses, const char **error_r);

#endif
