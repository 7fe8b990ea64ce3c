/* jmap_ref.c - JSON Pointer with '*' and JMAP result references. */
#include "proto/jmap/jmap_ref.h"

#include <stdbool.h>
#include <stdint.h>
#include <string.h>

/* Array index token (RFC 6901 4): "0" or digits without a leading zero. */
static int parse_index(const char *tok, size_t tl, size_t size, size_t *idx_r)
{
	size_t v = 0;

	if (tl == 0 || (tl > 1 && tok[0] == '0'))
		return -1;
	for (size_t i = 0; i < tl; i++) {
		if (tok[i] < '0' || tok[i] > '9')
			return -1;
		if (v > (SIZE_MAX - 9) / 10)
			return -1;
		v = v * 10 + (size_t)(tok[i] - '0');
	}
	if (v >= size)
		return -1;
	*idx_r = v;
	return 0;
}

/* Map every value of cur through one token into next. */
static int step(json_t *cur, const char *tok, size_t tl, json_t *next, bool *multi,
		const char **error_r)
{
	bool star = tl == 1 && tok[0] == '*';
	size_t i;
	json_t *v;

	json_array_foreach(cur, i, v) {
		if (json_is_array(v)) {
			if (star) {
				if (json_array_size(next) + json_array_size(v) >
				    JMAP_POINTER_VALUES_MAX) {
					*error_r = "the pointer selects too many values";
					return -1;
				}
				json_array_extend(next, v);
				*multi = true;
				continue;
			}
			size_t idx;
			if (parse_index(tok, tl, json_array_size(v), &idx) < 0) {
				*error_r = "array index missing or out of range";
				return -1;
			}
			json_array_append(next, json_array_get(v, idx));
		} else if (json_is_object(v)) {
			json_t *m = json_object_get(v, tok);
			if (m == NULL) {
				*error_r = "no such member";
				return -1;
			}
			json_array_append(next, m);
		} else {
			*error_r = "the pointer goes into a value that is not an object or array";
			return -1;
		}
	}
	return 0;
}

int jmap_pointer_eval(json_t *root, const char *p, size_t len, json_t **value_r,
		      const char **error_r)
{
	char tok[JMAP_POINTER_MAX + 1];
	bool multi = false;

	*value_r = NULL;
	if (len > JMAP_POINTER_MAX) {
		*error_r = "the pointer is too long";
		return -1;
	}
	if (len == 0) {
		*value_r = json_incref(root);
		return 0;
	}
	if (p[0] != '/') {
		*error_r = "the pointer does not start with /";
		return -1;
	}
	json_t *cur = json_array();
	json_array_append(cur, root);
	size_t i = 0;
	while (i < len) {
		size_t tl = 0;
		i++;                    /* the '/' */
		while (i < len && p[i] != '/') {
			char ch = p[i++];
			if (ch == '~') {
				char e = i < len ? p[i++] : '\0';
				if (e == '0') {
					ch = '~';
				} else if (e == '1') {
					ch = '/';
				} else {
					*error_r = "bad ~ escape in the pointer";
					json_decref(cur);
					return -1;
				}
			} else if (ch == '\0') {
				*error_r = "NUL in the pointer";
				json_decref(cur);
				return -1;
			}
			tok[tl++] = ch;
		}
		tok[tl] = '\0';
		json_t *next = json_array();
		int r = step(cur, tok, tl, next, &multi, error_r);
		json_decref(cur);
		cur = next;
		if (r < 0) {
			json_decref(cur);
			return -1;
		}
	}
	if (!multi) {
		*value_r = json_incref(json_array_get(cur, 0));
		json_decref(cur);
		return 0;
	}
	/* Results that are arrays give their items (RFC 8620 3.7). */
	json_t *out = json_array();
	size_t k;
	json_t *v;
	json_array_foreach(cur, k, v) {
		if (json_is_array(v)) {
			if (json_array_size(out) + json_array_size(v) > JMAP_POINTER_VALUES_MAX) {
				*error_r = "the pointer selects too many values";
				json_decref(out);
				json_decref(cur);
				return -1;
			}
			json_array_extend(out, v);
		} else {
			json_array_append(out, v);
		}
	}
	json_decref(cur);
	*value_r = out;
	return 0;
}

/* The first response with this call id, or NULL. */
static json_t *find_response(json_t *responses, const char *call_id)
{
	size_t i;
	json_t *inv;

	json_array_foreach(responses, i, inv) {
		const char *id = json_string_value(json_array_get(inv, 2));
		if (id && strcmp(id, call_id) == 0)
			return inv;
	}
	return NULL;
}

enum jmap_ref_error jmap_resolve_refs(json_t *args, json_t *responses, const char **error_r)
{
	const char *key;
	json_t *val;
	enum jmap_ref_error ret = JMAP_REF_OK;
	/* Resolve every reference first, then change args. */
	json_t *resolved = json_object();
	json_t *refkeys = json_array();

	json_object_foreach(args, key, val) {
		if (key[0] != '#')
			continue;
		const char *name = key + 1;
		if (name[0] == '\0' || json_object_get(args, name) != NULL) {
			*error_r = name[0] ? "an argument is given both plain and as a reference" :
					     "an empty argument name after #";
			ret = JMAP_REF_INVALID_ARGUMENTS;
			break;
		}
		const char *result_of = json_string_value(json_object_get(val, "resultOf"));
		const char *rname = json_string_value(json_object_get(val, "name"));
		json_t *path = json_object_get(val, "path");
		if (!json_is_object(val) || !result_of || !rname || !json_is_string(path) ||
		    json_object_size(val) != 3) {
			*error_r = "a ResultReference needs exactly resultOf, name and path "
				   "(strings)";
			ret = JMAP_REF_INVALID_ARGUMENTS;
			break;
		}
		json_t *inv = find_response(responses, result_of);
		if (inv == NULL) {
			*error_r = "no earlier method call has that resultOf id";
			ret = JMAP_REF_INVALID_RESULT_REFERENCE;
			break;
		}
		const char *iname = json_string_value(json_array_get(inv, 0));
		if (iname == NULL || strcmp(iname, rname) != 0) {
			*error_r = "the referenced response has another name";
			ret = JMAP_REF_INVALID_RESULT_REFERENCE;
			break;
		}
		json_t *value;
		if (jmap_pointer_eval(json_array_get(inv, 1), json_string_value(path),
				      json_string_length(path), &value, error_r) < 0) {
			ret = JMAP_REF_INVALID_RESULT_REFERENCE;
			break;
		}
		json_object_set_new(resolved, name, value);
		json_array_append_new(refkeys, json_string(key));
	}
	if (ret == JMAP_REF_OK) {
		size_t i;
		json_array_foreach(refkeys, i, val)
			json_object_del(args, json_string_value(val));
		json_object_update(args, resolved);
	}
	json_decref(refkeys);
	json_decref(resolved);
	return ret;
}
