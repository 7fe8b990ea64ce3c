/* jmap_mail.c - Email/query, Email/get, Thread/get and blobs (RFC 8621).
 *
 * The store answers queries in SQL (store_jmap_query); Email/get reads the
 * message file and parses it with mail/mime.c, decoding with mail/decode.h
 * and mail/reader.h.  Everything here runs in a server_job. */
#include "proto/jmap/jmap_mail.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "core/log.h"
#include "core/util.h"
#include "mail/decode.h"
#include "mail/mime.h"
#include "mail/reader.h"
#include "proto/jmap/jmap_types.h"
#include "store/store.h"
#include "store/store_jmap.h"

#define QUERY_LIMIT_MAX 1000        /* Email/query limit cap (RFC 8620 5.5) */
#define PREVIEW_CHARS 256
#define MSG_READ_MAX (64u * 1024 * 1024)
#define VALUE_MAX (16u * 1024 * 1024)
#define HEADER_VALUE_MAX (64u * 1024)

/* ---- small helpers ---- */

/* in[0..n) as a JSON string, invalid UTF-8 replaced by U+FFFD. */
static json_t *jstr(const char *in, size_t n)
{
	struct buf b;
	buf_init(&b, n * 3 + 16);
	const unsigned char *s = (const unsigned char *)in;
	size_t i = 0;
	while (i < n) {
		unsigned char c = s[i];
		size_t len = 0;
		uint32_t cp = 0;
		if (c < 0x80) {
			len = 1;
			cp = c;
		} else if (c >= 0xc2 && c <= 0xdf) {
			len = 2;
			cp = c & 0x1f;
		} else if (c >= 0xe0 && c <= 0xef) {
			len = 3;
			cp = c & 0x0f;
		} else if (c >= 0xf0 && c <= 0xf4) {
			len = 4;
			cp = c & 0x07;
		}
		bool ok = len > 0 && i + len <= n;
		for (size_t k = 1; ok && k < len; k++) {
			ok = (s[i + k] & 0xc0) == 0x80;
			cp = (cp << 6) | (s[i + k] & 0x3f);
		}
		if (ok && ((len == 3 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff))) ||
			   (len == 4 && (cp < 0x10000 || cp > 0x10ffff))))
			ok = false;
		if (ok && c == 0)
			ok = false;
		if (ok) {
			buf_append(&b, s + i, len);
			i += len;
		} else {
			buf_append(&b, "\xef\xbf\xbd", 3);
			i++;
		}
	}
	json_t *v = json_stringn(b.data ? b.data : "", b.len);
	buf_free(&b);
	return v ? v : json_string("");
}

static json_t *jstr0(const char *s)
{
	return s ? jstr(s, strlen(s)) : json_null();
}

/* "e42" (prefix 'e') -> 42.  *rest_r: what follows the number (else
 * nothing may). */
static bool parse_ref(const char *id, char prefix, int64_t *body_r, const char **rest_r)
{
	if (id == NULL || id[0] != prefix || id[1] < '1' || id[1] > '9')
		return false;
	char *end;
	errno = 0;
	long long body = strtoll(id + 1, &end, 10);
	if (errno)
		return false;
	if (rest_r)
		*rest_r = end;
	else if (*end)
		return false;
	*body_r = body;
	return true;
}

bool jmap_email_id_parse(const char *id, int64_t *body_id_r)
{
	return parse_ref(id, 'e', body_id_r, NULL);
}

static json_t *ref_id(char prefix, int64_t body)
{
	return json_sprintf("%c%lld", prefix, (long long)body);
}

void jmap_touched_add(struct jmap_touched *t, int64_t mailbox_id)
{
	for (size_t i = 0; i < t->n; i++)
		if (t->ids[i] == mailbox_id)
			return;
	if (t->n == t->cap) {
		t->cap = t->cap ? 2 * t->cap : 8;
		t->ids = xreallocarray(t->ids, t->cap, sizeof *t->ids);
	}
	t->ids[t->n++] = mailbox_id;
}

void jmap_touched_free(struct jmap_touched *t)
{
	free(t->ids);
	*t = (struct jmap_touched){0};
}

static int state_read(struct store *st, int64_t account_id, struct store_jmap_state *s)
{
	char *err = NULL;
	if (store_jmap_state(st, account_id, s, &err) < 0) {
		log_error("jmap: state of account %lld: %s", (long long)account_id,
			  err ? err : "store error");
		free(err);
		return -1;
	}
	return 0;
}

int jmap_mail_state(struct store *st, int64_t account_id, char *out, size_t outsz)
{
	struct store_jmap_state s;
	if (state_read(st, account_id, &s) < 0)
		return -1;
	snprintf(out, outsz, "%lld", (long long)s.email);
	return 0;
}

int jmap_mailbox_state(struct store *st, int64_t account_id, char *out, size_t outsz)
{
	struct store_jmap_state s;
	if (state_read(st, account_id, &s) < 0)
		return -1;
	snprintf(out, outsz, "%lld", (long long)s.mailbox);
	return 0;
}

static json_t *keywords_json(uint32_t flags, const char *kws)
{
	json_t *o = json_object();
	for (uint32_t bit = 1; bit && bit <= flags; bit <<= 1) {
		const char *kw = (flags & bit) ? jmap_flag_keyword(bit) : NULL;
		if (kw)
			json_object_set_new(o, kw, json_true());
	}
	for (const char *p = kws ? kws : ""; *p;) {
		while (*p == ' ')
			p++;
		size_t n = strcspn(p, " ");
		if (n) {
			char *k = xstrndup(p, n);
			for (char *c = k; *c; c++)
				if (*c >= 'A' && *c <= 'Z')
					*c = (char)(*c + 32);
			json_t *s = jstr(k, n);
			json_object_set_new(o, json_string_value(s), json_true());
			json_decref(s);
			free(k);
		}
		p += n;
	}
	return o;
}

/* RFC 3339 date-time "2026-12-02T01:02:03Z" -> Unix time. */
static json_t *utcdate(int64_t t)
{
	time_t tt = (time_t)t;
	struct tm tm;
	char out[32];
	gmtime_r(&tt, &tm);
	strftime(out, sizeof out, "%Y-%m-%dT%H:%M:%SZ", &tm);
	return json_string(out);
}

/* ---- Email/query ---- */

/* The filter conditions on text, checked against the message itself. */
struct textf {
	const char *v[7];           /* text, from, to, cc, bcc, subject, body */
};
static const char *const textf_names[7] = {"text", "from", "to", "cc", "bcc", "subject",
					   "body"};

static const char **textf_slot(struct textf *t, const char *name)
{
	for (size_t i = 0; i < 7; i++)
		if (strcmp(name, textf_names[i]) == 0)
			return &t->v[i];
	return NULL;
}

static bool textf_any(const struct textf *t)
{
	for (size_t i = 0; i < 7; i++)
		if (t->v[i])
			return true;
	return false;
}

static size_t utf8_chars(const char *s)
{
	size_t n = 0;
	for (; *s; s++)
		n += ((unsigned char)*s & 0xc0) != 0x80;
	return n;
}

static bool textf_match(struct store *st, int64_t account_id, const struct textf *t,
			const struct store_jmap_ref *r);

/* Sorts on header fields: not indexed, each candidate's file is read. */

/* RFC 8620 5.5 position / anchor / limit over v[0..*n_r) (every match,
 * in order). */
static int page(const struct store_jmap_query *q, struct store_jmap_ref *v, size_t *n_r,
		int64_t *total_r, int64_t *pos_r)
{
	int64_t n = (int64_t)*n_r, start = q->position;
	if (q->has_anchor) {
		int64_t at = -1;
		for (int64_t i = 0; i < n && at < 0; i++)
			if (v[i].body_id == q->anchor_body)
				at = i;
		if (at < 0)
			return 0;
		start = at + q->anchor_offset;
	} else if (start < 0) {
		start += n;
	}
	if (start < 0)
		start = 0;
	if (start > n)
		start = n;
	size_t take = (size_t)(n - start);
	if (take > q->limit)
		take = q->limit;
	if (take)
		memmove(v, v + start, take * sizeof *v);
	*n_r = take;
	*total_r = q->calculate_total ? n : -1;
	*pos_r = start;
	return 1;
}

static bool get_int(json_t *o, const char *k, int64_t *v_r, bool *present_r)
{
	json_t *v = json_object_get(o, k);
	*present_r = v != NULL && !json_is_null(v);
	if (!*present_r)
		return true;
	if (!json_is_integer(v))
		return false;
	*v_r = json_integer_value(v);
	return true;
}

/* unlimited: every match, whatever position, anchor and limit say (for
 * queryChanges). */
static json_t *email_query(const struct jmap_mail_ctx *c, json_t *args, const char **type_r,
			   const char **desc_r, bool unlimited)
{
	struct store_jmap_query q = {.min_size = -1, .max_size = -1, .limit = QUERY_LIMIT_MAX};
	int64_t not_in[STORE_JMAP_IN_MAX];
	const char *kw_set[16], *kw_clear[16];
	json_t *filter = json_object_get(args, "filter");
	struct textf tf = {0};
	json_t *merged = NULL;
	*type_r = "invalidArguments";
	if (json_is_object(filter) && json_object_get(filter, "operator")) {
		/* AND of plain conditions with distinct properties is one
		 * condition; anything else is not supported yet */
		const char *op = json_string_value(json_object_get(filter, "operator"));
		json_t *conds = json_object_get(filter, "conditions");
		size_t i;
		json_t *e;
		bool ok = op && strcmp(op, "AND") == 0 && json_is_array(conds);
		merged = json_object();
		json_array_foreach(conds, i, e) {
			const char *k;
			json_t *x;
			ok = ok && json_is_object(e) && !json_object_get(e, "operator");
			json_object_foreach(e, k, x) {
				ok = ok && !json_object_get(merged, k);
				if (ok)
					json_object_set(merged, k, x);
			}
		}
		if (!ok || json_object_size(filter) != 2) {
			json_decref(merged);
			*type_r = "unsupportedFilter";
			*desc_r = "of the FilterOperators only AND of conditions on distinct "
				  "properties is supported";
			return NULL;
		}
		filter = merged;
	}
	if (filter && !json_is_null(filter)) {
		if (!json_is_object(filter)) {
			*desc_r = "filter must be an object";
			json_decref(merged);
			return NULL;
		}
		const char *k;
		json_t *v;
		json_object_foreach(filter, k, v) {
			bool p;
			int64_t mb;
			if (strcmp(k, "inMailbox") == 0) {
				const char *s = json_string_value(v);
				char *end;
				mb = s && s[0] == 'm' ? strtoll(s + 1, &end, 10) : 0;
				/* an unknown id matches nothing */
				q.in_mailbox = mb > 0 && *end == '\0' ? mb : -1;
			} else if (strcmp(k, "inMailboxOtherThan") == 0) {
				size_t i;
				json_t *e;
				if (!json_is_array(v) || json_array_size(v) > STORE_JMAP_IN_MAX) {
					*desc_r = "inMailboxOtherThan must be an array of ids";
					json_decref(merged);
					return NULL;
				}
				json_array_foreach(v, i, e) {
					const char *s = json_string_value(e);
					char *end = NULL;
					mb = s && s[0] == 'm' ? strtoll(s + 1, &end, 10) : 0;
					if (mb > 0 && *end == '\0')
						not_in[q.nnot_in++] = mb;
				}
				q.not_in = not_in;
			} else if (strcmp(k, "before") == 0 || strcmp(k, "after") == 0) {
				int64_t t;
				if (!jmap_date_parse(json_string_value(v), true, &t)) {
					*desc_r = "before and after are UTCDates";
					json_decref(merged);
					return NULL;
				}
				if (k[0] == 'b') {
					q.has_before = true;
					q.before = t;
				} else {
					q.has_after = true;
					q.after = t;
				}
			} else if (strcmp(k, "minSize") == 0 || strcmp(k, "maxSize") == 0) {
				int64_t n = 0;
				if (!get_int(filter, k, &n, &p) || !p || n < 0) {
					*desc_r = "minSize and maxSize are unsigned integers";
					json_decref(merged);
					return NULL;
				}
				*(k[1] == 'i' ? &q.min_size : &q.max_size) = n;
			} else if (strcmp(k, "hasKeyword") == 0 || strcmp(k, "notKeyword") == 0) {
				const char *kw = json_string_value(v);
				if (kw == NULL || !jmap_keyword_ok(kw)) {
					*desc_r = "hasKeyword and notKeyword are keywords";
					json_decref(merged);
					return NULL;
				}
				bool has = k[0] == 'h';
				uint32_t f = jmap_keyword_flag(kw);
				if (f)
					*(has ? &q.flags_set : &q.flags_clear) |= f;
				else if (has)
					kw_set[q.nkw_set++] = kw;
				else
					kw_clear[q.nkw_clear++] = kw;
			} else if (textf_slot(&tf, k)) {
				if (!json_is_string(v) || json_string_length(v) == 0) {
					*desc_r = "text, from, to, cc, bcc, subject and body are "
						  "non-empty strings";
					json_decref(merged);
					return NULL;
				}
				*textf_slot(&tf, k) = json_string_value(v);
			} else {
				*type_r = "unsupportedFilter";
				*desc_r = "this filter condition or operator is not supported";
				json_decref(merged);
				return NULL;
			}
		}
		q.kw_set = kw_set;
		q.kw_clear = kw_clear;
	}
	/* the values stay: args holds them too */
	json_decref(merged);
	json_t *sort = json_object_get(args, "sort");
	q.sort = STORE_JMAP_SORT_RECEIVED;
	q.ascending = false;
	if (sort && !json_is_null(sort)) {
		if (!json_is_array(sort) || json_array_size(sort) > 1) {
			*type_r = "unsupportedSort";
			*desc_r = "one Comparator at most";
			return NULL;
		}
		json_t *cmp = json_array_get(sort, 0);
		if (cmp) {
			const char *prop = json_string_value(json_object_get(cmp, "property"));
			json_t *asc = json_object_get(cmp, "isAscending");
			if (prop && strcmp(prop, "receivedAt") == 0) {
				q.sort = STORE_JMAP_SORT_RECEIVED;
			} else if (prop && strcmp(prop, "size") == 0) {
				q.sort = STORE_JMAP_SORT_SIZE;
			} else if (prop && strcmp(prop, "sentAt") == 0) {
				q.sort = STORE_JMAP_SORT_SENT;
			} else if (prop && strcmp(prop, "from") == 0) {
				q.sort = STORE_JMAP_SORT_FROM;
			} else if (prop && strcmp(prop, "subject") == 0) {
				q.sort = STORE_JMAP_SORT_SUBJECT;
			} else {
				*type_r = "unsupportedSort";
				*desc_r = "sort by receivedAt, size, sentAt, from or subject";
				return NULL;
			}
			q.ascending = asc == NULL || json_is_true(asc);
		}
	}
	bool p;
	int64_t n = 0;
	if (!get_int(args, "position", &q.position, &p)) {
		*desc_r = "position is an integer";
		return NULL;
	}
	if (!get_int(args, "limit", &n, &p) || (p && n < 0)) {
		*desc_r = "limit is an unsigned integer";
		return NULL;
	}
	if (p && n < QUERY_LIMIT_MAX)
		q.limit = (size_t)n;
	json_t *anchor = json_object_get(args, "anchor");
	if (anchor && !json_is_null(anchor)) {
		if (!parse_ref(json_string_value(anchor), 'e', &q.anchor_body, NULL)) {
			*type_r = "anchorNotFound";
			*desc_r = NULL;
			return NULL;
		}
		q.has_anchor = true;
		if (!get_int(args, "anchorOffset", &q.anchor_offset, &p)) {
			*desc_r = "anchorOffset is an integer";
			return NULL;
		}
	}
	json_t *ct = json_object_get(args, "calculateTotal");
	q.calculate_total = json_is_true(ct);
	if (unlimited) {
		q.position = 0;
		q.has_anchor = false;
		q.limit = (size_t)INT64_MAX;
	}
	bool collapse = json_is_true(json_object_get(args, "collapseThreads"));
	if ((collapse || q.sort >= STORE_JMAP_SORT_SENT) &&
	    jmap_thread_sync(c->st, c->account_id) < 0) {
		*type_r = "serverFail";
		*desc_r = "the store is unavailable";
		return NULL;
	}

	char state[64];
	if (jmap_mail_state(c->st, c->account_id, state, sizeof state) < 0) {
		*type_r = "serverFail";
		*desc_r = "the store is unavailable";
		return NULL;
	}
	struct store_jmap_ref *v = NULL;
	size_t nv = 0;
	int64_t total, pos;
	char *err = NULL;
	q.collapse = collapse;
	bool post = textf_any(&tf);
	struct store_jmap_query paging = q;
	if (post) {
		/* the store gives every candidate, in order; the files say */
		for (size_t i = 0; i < sizeof tf.v / sizeof tf.v[0] && !q.text; i++)
			if (tf.v[i] && utf8_chars(tf.v[i]) >= 3)
				q.text = tf.v[i];
		q.position = 0;
		q.has_anchor = false;
		q.limit = (size_t)INT64_MAX;
		q.calculate_total = false;
	}
	int rc = q.in_mailbox < 0 ? 1 : store_jmap_query(c->st, c->account_id, &q, &v, &nv,
							  &total, &pos, &err);
	if (q.in_mailbox < 0) {
		total = q.calculate_total ? 0 : -1;
		pos = 0;
	}
	if (rc == 1 && post) {
		size_t w = 0;
		for (size_t i = 0; i < nv; i++)
			if (!textf_any(&tf) || textf_match(c->st, c->account_id, &tf, &v[i]))
				v[w++] = v[i];
		nv = w;
		rc = page(&paging, v, &nv, &total, &pos);
	}
	if (rc < 0) {
		log_error("jmap: Email/query: %s", err ? err : "store error");
		free(err);
		*type_r = "serverFail";
		*desc_r = "the store is unavailable";
		return NULL;
	}
	if (rc == 0) {
		*type_r = "anchorNotFound";
		*desc_r = NULL;
		return NULL;
	}
	json_t *ids = json_array();
	for (size_t i = 0; i < nv; i++)
		json_array_append_new(ids, ref_id('e', v[i].body_id));
	free(v);
	json_t *res = json_pack("{s:s, s:s, s:b, s:I, s:o}", "accountId", c->acct, "queryState",
				state, "canCalculateChanges", 1, "position", (json_int_t)pos,
				"ids", ids);
	if (total >= 0)
		json_object_set_new(res, "total", json_integer(total));
	if (json_object_get(args, "limit"))
		json_object_set_new(res, "limit", json_integer((json_int_t)q.limit));
	return res;
}

json_t *jmap_email_query(const struct jmap_mail_ctx *c, json_t *args, const char **type_r,
			 const char **desc_r)
{
	return email_query(c, args, type_r, desc_r, false);
}

/* ---- Email/changes, Thread/changes, Email/queryChanges ---- */

#define CHANGES_MAX 5000            /* maxChanges cap and default */
#define CHANGES_ROWS_MAX 200000     /* log rows read by one call */

static bool parse_state(json_t *v, int64_t *r)
{
	const char *s = json_string_value(v);
	if (s == NULL || *s < '0' || *s > '9')
		return false;
	char *end;
	errno = 0;
	long long n = strtoll(s, &end, 10);
	if (errno || *end)
		return false;
	*r = n;
	return true;
}

/* The emails changed after since: per body id, whether it was created in
 * that time; at most max ids, *upto_r the last log position covered. */
struct chg {
	int64_t id;
	bool created;
};

static int email_changes_since(const struct jmap_mail_ctx *c, int64_t since, size_t max,
			       int64_t cur, struct chg **v_r, size_t *n_r, int64_t *upto_r,
			       bool *more_r)
{
	struct store_jmap_change *rows = NULL;
	size_t nrows = 0;
	char *err = NULL;
	*v_r = NULL;
	*n_r = 0;
	*more_r = false;
	*upto_r = cur;
	if (store_jmap_changes(c->st, c->account_id, STORE_JMAP_KIND_EMAIL, since,
			       CHANGES_ROWS_MAX, &rows, &nrows, &err) < 0) {
		log_error("jmap: Email/changes: %s", err);
		free(err);
		return -1;
	}
	json_t *at = json_object();     /* body id -> index in v */
	struct chg *v = NULL;
	size_t n = 0;
	for (size_t i = 0; i < nrows; i++) {
		char key[24];
		snprintf(key, sizeof key, "%lld", (long long)rows[i].obj);
		json_t *k = json_object_get(at, key);
		if (k == NULL) {
			if (n == max) {
				*more_r = true;
				*upto_r = rows[i - 1].seq;
				break;
			}
			v = xreallocarray(v, n + 1, sizeof *v);
			v[n] = (struct chg){rows[i].obj, false};
			json_object_set_new(at, key, json_integer((json_int_t)n));
			k = json_object_get(at, key);
			n++;
		}
		if (rows[i].op == STORE_JMAP_CREATED)
			v[json_integer_value(k)].created = true;
	}
	if (!*more_r && nrows == CHANGES_ROWS_MAX) {
		*more_r = true;
		*upto_r = rows[nrows - 1].seq;
	}
	json_decref(at);
	free(rows);
	*v_r = v;
	*n_r = n;
	return 0;
}

/* 1 the account has the email now, 0 not, -1 error. */
static int email_exists(const struct jmap_mail_ctx *c, int64_t body)
{
	struct store_jmap_row *rows;
	size_t n;
	char *err = NULL;
	if (store_jmap_email_rows(c->st, c->account_id, body, &rows, &n, &err) < 0) {
		log_error("jmap: %s", err);
		free(err);
		return -1;
	}
	store_jmap_rows_free(rows, n);
	return n > 0;
}

/* The common start of /changes and /queryChanges: the current state and
 * the client's, checked.  0 fine, -1 with the error set. */
static int changes_args(const struct jmap_mail_ctx *c, json_t *since_v, int64_t *since_r,
			struct store_jmap_state *st_r, const char **type_r, const char **desc_r)
{
	if (!json_is_string(since_v)) {
		*type_r = "invalidArguments";
		*desc_r = "the since state (a string) is required";
		return -1;
	}
	if (state_read(c->st, c->account_id, st_r) < 0) {
		*type_r = "serverFail";
		*desc_r = "the store is unavailable";
		return -1;
	}
	if (!parse_state(since_v, since_r) || *since_r > st_r->email ||
	    (*since_r < st_r->horizon && *since_r != st_r->email)) {
		*type_r = "cannotCalculateChanges";
		*desc_r = "the state is unknown or older than the change log: "
			  "fetch the objects again";
		return -1;
	}
	return 0;
}

/* Thread/changes: the emails' changes as their threads' (a thread is
 * created with its first email, whose body id is the thread's id). */
static int thread_changes(const struct jmap_mail_ctx *c, struct chg *v, size_t *n_r)
{
	size_t w = 0;
	for (size_t i = 0; i < *n_r; i++) {
		int64_t t = v[i].id;
		if (store_jmap_thread_of(c->st, c->account_id, v[i].id, &t) < 0)
			return -1;
		struct chg x = {t, v[i].created && t == v[i].id};
		size_t k = 0;
		while (k < w && v[k].id != t)
			k++;
		if (k == w)
			v[w++] = x;
		else
			v[k].created = v[k].created || x.created;
	}
	*n_r = w;
	return 0;
}

static int thread_exists(const struct jmap_mail_ctx *c, int64_t thread)
{
	int64_t *emails;
	size_t n;
	char *err = NULL;
	if (store_jmap_thread_emails(c->st, c->account_id, thread, &emails, &n, &err) < 0) {
		log_error("jmap: %s", err);
		free(err);
		return -1;
	}
	free(emails);
	return n > 0 ? 1 : email_exists(c, thread);
}

static json_t *changes(const struct jmap_mail_ctx *c, json_t *args, const char **type_r,
		       const char **desc_r, char prefix)
{
	int64_t since, max = CHANGES_MAX;
	struct store_jmap_state st;
	json_t *mc = json_object_get(args, "maxChanges");
	if (mc && !json_is_null(mc)) {
		if (!json_is_integer(mc) || json_integer_value(mc) <= 0) {
			*type_r = "invalidArguments";
			*desc_r = "maxChanges is a positive integer";
			return NULL;
		}
		if (json_integer_value(mc) < max)
			max = json_integer_value(mc);
	}
	if (changes_args(c, json_object_get(args, "sinceState"), &since, &st, type_r,
			 desc_r) < 0)
		return NULL;
	struct chg *v = NULL;
	size_t n = 0;
	int64_t upto = st.email;
	bool more = false;
	if (since < st.email &&
	    email_changes_since(c, since, (size_t)max, st.email, &v, &n, &upto, &more) < 0) {
		*type_r = "serverFail";
		*desc_r = "the store is unavailable";
		return NULL;
	}
	if (prefix == 't' && (jmap_thread_sync(c->st, c->account_id) < 0 ||
			      thread_changes(c, v, &n) < 0)) {
		free(v);
		*type_r = "serverFail";
		*desc_r = "the store is unavailable";
		return NULL;
	}
	json_t *created = json_array(), *updated = json_array(), *destroyed = json_array();
	for (size_t i = 0; i < n; i++) {
		int ex = prefix == 't' ? thread_exists(c, v[i].id) : email_exists(c, v[i].id);
		if (ex < 0) {
			free(v);
			json_decref(created);
			json_decref(updated);
			json_decref(destroyed);
			*type_r = "serverFail";
			*desc_r = "the store is unavailable";
			return NULL;
		}
		if (ex && v[i].created)
			json_array_append_new(created, ref_id(prefix, v[i].id));
		else if (ex)
			json_array_append_new(updated, ref_id(prefix, v[i].id));
		else if (!v[i].created)
			json_array_append_new(destroyed, ref_id(prefix, v[i].id));
	}
	free(v);
	char olds[24], news[24];
	snprintf(olds, sizeof olds, "%lld", (long long)since);
	snprintf(news, sizeof news, "%lld", (long long)upto);
	return json_pack("{s:s, s:s, s:s, s:b, s:o, s:o, s:o}", "accountId", c->acct,
			 "oldState", olds, "newState", news, "hasMoreChanges", more,
			 "created", created, "updated", updated, "destroyed", destroyed);
}

json_t *jmap_email_changes(const struct jmap_mail_ctx *c, json_t *args, const char **type_r,
			   const char **desc_r)
{
	return changes(c, args, type_r, desc_r, 'e');
}

json_t *jmap_thread_changes(const struct jmap_mail_ctx *c, json_t *args, const char **type_r,
			    const char **desc_r)
{
	return changes(c, args, type_r, desc_r, 't');
}

/* RFC 8620 5.6, the simple way it allows: every email changed since the
 * old query state is in removed, and those in the results now are in
 * added with their index. */
json_t *jmap_email_query_changes(const struct jmap_mail_ctx *c, json_t *args,
				 const char **type_r, const char **desc_r)
{
	int64_t since, max = -1;
	struct store_jmap_state st;
	json_t *mc = json_object_get(args, "maxChanges");
	if (mc && !json_is_null(mc)) {
		if (!json_is_integer(mc) || json_integer_value(mc) <= 0) {
			*type_r = "invalidArguments";
			*desc_r = "maxChanges is a positive integer";
			return NULL;
		}
		max = json_integer_value(mc);
	}
	if (changes_args(c, json_object_get(args, "sinceQueryState"), &since, &st, type_r,
			 desc_r) < 0)
		return NULL;
	struct chg *v = NULL;
	size_t n = 0;
	int64_t upto;
	bool more = false;
	if (since < st.email &&
	    email_changes_since(c, since, CHANGES_ROWS_MAX, st.email, &v, &n, &upto, &more) < 0) {
		*type_r = "serverFail";
		*desc_r = "the store is unavailable";
		return NULL;
	}
	if (more || (max > 0 && (int64_t)n > max)) {
		free(v);
		*type_r = "tooManyChanges";
		*desc_r = "more changes than maxChanges: run the query again";
		return NULL;
	}
	json_t *q = email_query(c, args, type_r, desc_r, true);
	if (q == NULL) {
		free(v);
		return NULL;
	}
	json_t *ids = json_object_get(q, "ids");
	json_t *removed = json_array(), *added = json_array(), *changed = json_object();
	for (size_t i = 0; i < n; i++) {
		json_t *id = ref_id('e', v[i].id);
		json_object_set_new(changed, json_string_value(id), json_true());
		json_array_append_new(removed, id);
	}
	free(v);
	const char *upto_id = json_string_value(json_object_get(args, "upToId"));
	size_t i;
	json_t *id;
	json_array_foreach(ids, i, id) {
		if (json_object_get(changed, json_string_value(id)))
			json_array_append_new(added, json_pack("{s:O, s:I}", "id", id, "index",
							       (json_int_t)i));
		if (upto_id && strcmp(upto_id, json_string_value(id)) == 0)
			break;
	}
	json_decref(changed);
	char olds[24];
	snprintf(olds, sizeof olds, "%lld", (long long)since);
	json_t *res = json_pack("{s:s, s:s, s:O, s:o, s:o}", "accountId", c->acct,
				"oldQueryState", olds, "newQueryState",
				json_object_get(q, "queryState"), "removed", removed,
				"added", added);
	if (json_is_true(json_object_get(args, "calculateTotal")))
		json_object_set_new(res, "total", json_integer((json_int_t)json_array_size(ids)));
	json_decref(q);
	return res;
}

/* ---- one parsed message ---- */

struct msg {
	struct store_jmap_email e;
	char *data;
	size_t len;
	struct mime_message *m;
	const char *charset;        /* of the first text part, for raw 8-bit headers */
};

static int msg_read(struct store *st, struct msg *g)
{
	char path[4096];
	store_msg_path(st, g->e.path, path, sizeof path);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		log_error("jmap: open %s: %s", path, strerror(errno));
		return -1;
	}
	struct stat sb;
	if (fstat(fd, &sb) < 0 || sb.st_size < 0 || (uint64_t)sb.st_size > MSG_READ_MAX) {
		close(fd);
		return -1;
	}
	size_t n = (size_t)sb.st_size, got = 0;
	g->data = xmalloc(n + 1);
	while (got < n) {
		ssize_t r = read(fd, g->data + got, n - got);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		got += (size_t)r;
	}
	close(fd);
	g->data[got] = '\0';
	g->len = got;
	g->m = mime_parse(g->data, g->len, NULL);
	return 0;
}

static void msg_free(struct msg *g)
{
	store_jmap_email_free(&g->e);
	free(g->data);
	mime_message_free(&g->m);
}

/* ---- header forms (RFC 8621 4.1.2) ---- */

static json_t *header_text(const char *raw, size_t n, const char *charset)
{
	struct buf b;
	buf_init(&b, HEADER_VALUE_MAX);
	reader_header_text(raw, n, charset, true, &b);
	size_t s = 0, e = b.len;
	while (s < e && b.data[s] == ' ')
		s++;
	while (e > s && b.data[e - 1] == ' ')
		e--;
	json_t *v = jstr(b.data ? b.data + s : "", e - s);
	buf_free(&b);
	return v;
}

/* <a@b> <c@d> -> ["a@b", "c@d"]; null when none. */
static json_t *header_ids(const char *raw, size_t n)
{
	json_t *a = json_array();
	for (size_t i = 0; i < n; i++) {
		if (raw[i] != '<')
			continue;
		size_t j = i + 1;
		while (j < n && raw[j] != '>' && raw[j] != '<')
			j++;
		if (j < n && raw[j] == '>' && j > i + 1) {
			size_t s = i + 1, e = j;
			while (s < e && (raw[s] == ' ' || raw[s] == '\t'))
				s++;
			while (e > s && (raw[e - 1] == ' ' || raw[e - 1] == '\t'))
				e--;
			json_array_append_new(a, jstr(raw + s, e - s));
			i = j;
		}
	}
	if (json_array_size(a) == 0) {
		json_decref(a);
		return json_null();
	}
	return a;
}

static char *trim_dup(const char *s, size_t n)
{
	while (n && (*s == ' ' || *s == '\t' || *s == '\r' || *s == '\n')) {
		s++;
		n--;
	}
	while (n && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\r' ||
		     s[n - 1] == '\n'))
		n--;
	return xstrndup(s, n);
}

/* One mailbox ("Name <a@b>", "a@b (Name)", "\"N\" <a@b>") as {name, email}. */
static json_t *one_address(const char *s, size_t n, const char *charset)
{
	const char *lt = memchr(s, '<', n);
	json_t *name = json_null();
	char *email;
	if (lt) {
		const char *gt = memchr(lt, '>', n - (size_t)(lt - s));
		size_t el = gt ? (size_t)(gt - lt - 1) : n - (size_t)(lt - s) - 1;
		email = trim_dup(lt + 1, el);
		char *dn = trim_dup(s, (size_t)(lt - s));
		size_t dl = strlen(dn);
		if (dl >= 2 && dn[0] == '"' && dn[dl - 1] == '"') {
			/* quoted-string: drop the quotes and quoting backslashes */
			size_t w = 0;
			for (size_t r = 1; r + 1 < dl; r++) {
				if (dn[r] == '\\' && r + 2 < dl)
					r++;
				dn[w++] = dn[r];
			}
			dn[w] = '\0';
			dl = w;
		}
		if (dl) {
			json_decref(name);
			name = header_text(dn, dl, charset);
		}
		free(dn);
	} else {
		/* addr-spec with an optional comment as the name */
		struct buf a;
		buf_init(&a, n + 1);
		const char *cs = NULL, *ce = NULL;
		int depth = 0;
		for (size_t i = 0; i < n; i++) {
			if (s[i] == '(') {
				if (depth++ == 0)
					cs = s + i + 1;
			} else if (s[i] == ')' && depth > 0) {
				if (--depth == 0 && ce == NULL)
					ce = s + i;
			} else if (depth == 0) {
				buf_append(&a, s + i, 1);
			}
		}
		email = trim_dup(a.data ? a.data : "", a.len);
		buf_free(&a);
		if (cs && ce && ce > cs) {
			json_decref(name);
			name = header_text(cs, (size_t)(ce - cs), charset);
		}
	}
	json_t *o = json_pack("{s:o, s:o}", "name", name, "email", jstr0(email));
	free(email);
	return o;
}

/* address-list with groups flattened (asAddresses); null when empty. */
static json_t *header_addresses(const char *raw, size_t n, const char *charset)
{
	json_t *a = json_array();
	size_t start = 0;
	bool q = false;
	int depth = 0, angle = 0;
	for (size_t i = 0; i <= n; i++) {
		char ch = i < n ? raw[i] : ',';
		if (q) {
			if (ch == '\\')
				i++;
			else if (ch == '"')
				q = false;
			continue;
		}
		if (ch == '"' && depth == 0) {
			q = true;
		} else if (ch == '(') {
			depth++;
		} else if (ch == ')' && depth > 0) {
			depth--;
		} else if (depth == 0 && ch == '<') {
			angle = 1;
		} else if (depth == 0 && ch == '>') {
			angle = 0;
		} else if (depth == 0 && !angle && ch == ':') {
			start = i + 1;          /* a group's name: dropped */
		} else if (depth == 0 && !angle && (ch == ',' || ch == ';')) {
			char *item = trim_dup(raw + start, i - start);
			bool has_at = strchr(item, '@') != NULL || strchr(item, '<') != NULL;
			if (item[0] && has_at)
				json_array_append_new(a, one_address(item, strlen(item), charset));
			free(item);
			start = i + 1;
		}
	}
	if (json_array_size(a) == 0) {
		json_decref(a);
		return json_null();
	}
	return a;
}

static int month_of(const char *s)
{
	static const char *const mon[] = {"jan", "feb", "mar", "apr", "may", "jun",
					  "jul", "aug", "sep", "oct", "nov", "dec"};
	for (int i = 0; i < 12; i++)
		if (strncasecmp(s, mon[i], 3) == 0)
			return i;
	return -1;
}

/* RFC 5322 date-time -> RFC 3339 with its zone, or null. */
static json_t *header_date(const char *raw, size_t n)
{
	char buf[128];
	if (n >= sizeof buf)
		n = sizeof buf - 1;
	memcpy(buf, raw, n);
	buf[n] = '\0';
	const char *p = strchr(buf, ',');
	p = p ? p + 1 : buf;
	int d, y, h, mi, se = 0;
	char mon[8], zone[16] = "";
	int k = sscanf(p, " %d %7s %d %d:%d:%d %15s", &d, mon, &y, &h, &mi, &se, zone);
	if (k < 5) {
		return json_null();
	}
	if (k == 5) {
		/* no seconds: "hh:mm zone" */
		const char *t = strchr(p, ':');
		t = t ? strchr(t, ' ') : NULL;
		if (t)
			sscanf(t, " %15s", zone);
		se = 0;
	}
	int mo = month_of(mon);
	if (y < 50)
		y += 2000;
	else if (y < 1000)
		y += 1900;
	if (mo < 0 || d < 1 || d > 31 || h > 23 || mi > 59 || se > 60)
		return json_null();
	int off = 0;
	if ((zone[0] == '+' || zone[0] == '-') && strlen(zone) >= 5) {
		int z = atoi(zone + 1);
		off = (z / 100) * 60 + z % 100;
		if (zone[0] == '-')
			off = -off;
	} else {
		static const struct {
			const char *n;
			int m;
		} zn[] = {{"EDT", -240}, {"EST", -300}, {"CDT", -300}, {"CST", -360},
			  {"MDT", -360}, {"MST", -420}, {"PDT", -420}, {"PST", -480}};
		for (size_t i = 0; i < sizeof zn / sizeof zn[0]; i++)
			if (strcasecmp(zone, zn[i].n) == 0)
				off = zn[i].m;
	}
	char out[96];
	snprintf(out, sizeof out, "%04d-%02d-%02dT%02d:%02d:%02d%c%02d:%02d", y, mo + 1, d, h,
		 mi, se > 59 ? 59 : se, off < 0 ? '-' : '+', abs(off) / 60, abs(off) % 60);
	return json_string(out);
}

enum hform { HF_RAW, HF_TEXT, HF_ADDRESSES, HF_MESSAGEIDS, HF_DATE, HF_URLS };

static json_t *header_form(const char *raw, size_t n, enum hform f, const char *charset)
{
	switch (f) {
	case HF_RAW:
		return jstr(raw, n);
	case HF_TEXT:
		return header_text(raw, n, charset);
	case HF_ADDRESSES:
		return header_addresses(raw, n, charset);
	case HF_MESSAGEIDS:
	case HF_URLS:
		return header_ids(raw, n);
	case HF_DATE:
		return header_date(raw, n);
	}
	return json_null();
}

/* The raw value of the first (or, all, every) field called name of
 * hdr[0..len), in the form f; null (or []) when absent. */
static json_t *header_get(const char *hdr, size_t len, const char *name, enum hform f,
			  bool all, const char *charset)
{
	size_t pos = 0, nl = strlen(name);
	struct mime_field fl;
	json_t *a = all ? json_array() : NULL;
	json_t *last = NULL;
	while (mime_header_next(hdr, len, &pos, &fl)) {
		if (fl.name_len != nl || strncasecmp(fl.name, name, nl) != 0)
			continue;
		const char *v = fl.value;
		size_t vn = fl.value_len;
		json_t *x;
		if (f == HF_RAW) {
			x = jstr(v, vn);
		} else {
			char *u = mime_unfold(v, vn, HEADER_VALUE_MAX, NULL);
			x = header_form(u, strlen(u), f, charset);
			free(u);
		}
		if (all) {
			json_array_append_new(a, x);
		} else {
			/* RFC 8621 4.1.3: the last instance when not :all */
			json_decref(last);
			last = x;
		}
	}
	if (all)
		return a;
	if (last)
		return last;
	return json_null();
}

static json_t *headers_list(const char *hdr, size_t len)
{
	json_t *a = json_array();
	size_t pos = 0;
	struct mime_field fl;
	while (mime_header_next(hdr, len, &pos, &fl)) {
		if (fl.name_len == 0)
			continue;
		json_array_append_new(a, json_pack("{s:o, s:o}", "name", jstr(fl.name, fl.name_len),
						   "value", jstr(fl.value, fl.value_len)));
	}
	return a;
}

/* "header:Subject:asText:all" -> name, form, all.  false if malformed. */
static bool parse_header_prop(const char *p, char *name, size_t nsz, enum hform *f_r,
			      bool *all_r)
{
	if (strncmp(p, "header:", 7) != 0)
		return false;
	p += 7;
	size_t n = strcspn(p, ":");
	if (n == 0 || n >= nsz)
		return false;
	memcpy(name, p, n);
	name[n] = '\0';
	for (size_t i = 0; i < n; i++)
		if (name[i] <= ' ' || name[i] >= 127)
			return false;
	p += n;
	*f_r = HF_RAW;
	*all_r = false;
	if (*p == ':') {
		p++;
		static const char *const forms[] = {"asRaw", "asText", "asAddresses",
						    "asMessageIds", "asDate", "asURLs"};
		size_t m = strcspn(p, ":");
		bool known = false;
		if (m == 3 && strncmp(p, "all", 3) == 0) {
			*all_r = true;
			return p[3] == '\0';
		}
		for (size_t i = 0; i < 6; i++)
			if (strlen(forms[i]) == m && strncmp(p, forms[i], m) == 0) {
				*f_r = (enum hform)i;
				known = true;
			}
		if (!known)
			return false;
		p += m;
		if (*p == ':') {
			if (strcmp(p + 1, "all") != 0)
				return false;
			*all_r = true;
		}
	}
	return true;
}

/* ---- body parts ---- */

/* The body of part p decoded from its transfer encoding into out. */
static void part_decode(const struct msg *g, const struct mime_part *p, struct buf *out)
{
	const char *b = g->data + p->body_off;
	if (p->encoding && strcmp(p->encoding, "base64") == 0) {
		struct decode_b64 d;
		decode_b64_init(&d);
		decode_b64(&d, b, p->body_len, out);
		decode_b64_finish(&d, out);
	} else if (p->encoding && strcmp(p->encoding, "quoted-printable") == 0) {
		struct decode_qp d;
		decode_qp_init(&d);
		decode_qp(&d, b, p->body_len, out);
		decode_qp_finish(&d, out);
	} else {
		buf_append(out, b, p->body_len);
	}
}

static const char *part_charset(const struct mime_part *p)
{
	const char *cs = mime_param_get(&p->params, "charset");
	if (cs == NULL && strcmp(p->type, "text") == 0)
		cs = "us-ascii";
	return cs;
}

/* The text of part p as UTF-8 (heap, *len_r); *problem_r when the charset
 * is unknown. */
static char *part_text(const struct msg *g, const struct mime_part *p, size_t *len_r,
		       bool *problem_r)
{
	struct buf raw, out;
	buf_init(&raw, p->body_len + 16);
	part_decode(g, p, &raw);
	buf_init(&out, raw.len * 4 + 64 < VALUE_MAX ? raw.len * 4 + 64 : VALUE_MAX);
	const char *cs = part_charset(p);
	const char *err = NULL;
	*problem_r = false;
	if (cs == NULL || strcasecmp(cs, "us-ascii") == 0 || strcasecmp(cs, "utf-8") == 0 ||
	    decode_charset_convert(cs, raw.data ? raw.data : "", raw.len, &out, &err) < 0) {
		if (cs && strcasecmp(cs, "us-ascii") != 0 && strcasecmp(cs, "utf-8") != 0)
			*problem_r = true;
		buf_reset(&out);
		buf_append(&out, raw.data ? raw.data : "", raw.len);
	}
	buf_free(&raw);
	/* CRLF -> LF */
	size_t w = 0;
	for (size_t r = 0; r < out.len; r++)
		if (!(out.data[r] == '\r' && r + 1 < out.len && out.data[r + 1] == '\n'))
			out.data[w++] = out.data[r];
	out.len = w;
	buf_append(&out, "", 1);
	char *s = buf_steal(&out, len_r);
	*len_r = w;
	return s;
}

static bool is_inline_media(const struct mime_part *p)
{
	return strcmp(p->type, "image") == 0 || strcmp(p->type, "audio") == 0 ||
	       strcmp(p->type, "video") == 0;
}

static bool is_type(const struct mime_part *p, const char *t, const char *s)
{
	return strcmp(p->type, t) == 0 && strcmp(p->subtype, s) == 0;
}

static const char *part_rawname(const struct mime_part *p)
{
	const char *n = mime_param_get(&p->disp_params, "filename");
	return n ? n : mime_param_get(&p->params, "name");
}

struct plist {
	size_t *v;
	size_t n;
	bool null;
};

static void plist_push(struct plist *l, size_t i)
{
	if (l->null)
		return;
	l->v = xreallocarray(l->v, l->n + 1, sizeof *l->v);
	l->v[l->n++] = i;
}

/* RFC 8621 4.1.4 parseStructure over the children of parent (or the top
 * part when parent is MIME_NONE).  Recursion is bounded by MIME_DEPTH_MAX. */
static void parse_structure(const struct mime_message *m, size_t first, const char *mptype,
			    bool in_alt, struct plist *html, struct plist *text,
			    struct plist *att)
{
	bool hnull = html->null, tnull = text->null;
	size_t text_len = tnull ? (size_t)-1 : text->n, html_len = hnull ? (size_t)-1 : html->n;
	size_t idx = 0;
	for (size_t i = first; i != MIME_NONE; i = m->parts[i].next_sibling, idx++) {
		const struct mime_part *p = &m->parts[i];
		bool multi = mime_part_is_multipart(p) && p->first_child != MIME_NONE;
		bool is_text = is_type(p, "text", "plain") || is_type(p, "text", "html");
		bool is_inline = !(p->disposition && strcmp(p->disposition, "attachment") == 0) &&
				 (is_text || is_inline_media(p)) &&
				 (idx == 0 || (strcmp(mptype, "related") != 0 &&
					       (is_inline_media(p) || !part_rawname(p))));
		if (multi) {
			bool alt = in_alt || strcmp(p->subtype, "alternative") == 0;
			struct plist none = {.null = true};
			parse_structure(m, p->first_child, p->subtype, alt, hnull ? &none : html,
					tnull ? &none : text, att);
			continue;
		}
		if (is_inline) {
			if (strcmp(mptype, "alternative") == 0) {
				if (is_type(p, "text", "plain"))
					plist_push(text, i);
				else if (is_type(p, "text", "html"))
					plist_push(html, i);
				else
					plist_push(att, i);
				continue;
			} else if (in_alt) {
				if (is_type(p, "text", "plain"))
					hnull = true;
				if (is_type(p, "text", "html"))
					tnull = true;
			}
			if (!tnull)
				plist_push(text, i);
			if (!hnull)
				plist_push(html, i);
			if ((tnull || hnull) && is_inline_media(p))
				plist_push(att, i);
		} else {
			plist_push(att, i);
		}
	}
	if (strcmp(mptype, "alternative") == 0 && !tnull && !hnull) {
		size_t tn = text->n, hn = html->n;
		if (text_len == tn && html_len != hn)
			for (size_t i = html_len; i < hn; i++)
				plist_push(text, html->v[i]);
		if (html_len == hn && text_len != tn)
			for (size_t i = text_len; i < tn; i++)
				plist_push(html, text->v[i]);
	}
}

struct bodyprops {
	bool part_id, blob_id, size, headers, name, type, charset, disposition, cid,
	     language, location, sub_parts;
};

static json_t *part_json(const struct msg *g, size_t i, const struct bodyprops *bp)
{
	const struct mime_part *p = &g->m->parts[i];
	bool multi = mime_part_is_multipart(p) && p->first_child != MIME_NONE;
	json_t *o = json_object();
	if (bp->part_id)
		json_object_set_new(o, "partId", multi ? json_null() : json_string(p->section));
	if (bp->blob_id) {
		if (multi) {
			json_object_set_new(o, "blobId", json_null());
		} else {
			char sec[READER_SECTION_MAX];
			snprintf(sec, sizeof sec, "%s", p->section);
			for (char *c = sec; *c; c++)
				if (*c == '.')
					*c = '_';
			json_object_set_new(o, "blobId", json_sprintf("b%lldp%s",
				(long long)g->e.body_id, sec));
		}
	}
	if (bp->size) {
		size_t sz = 0;
		if (!multi) {
			struct buf b;
			buf_init(&b, p->body_len + 16);
			part_decode(g, p, &b);
			sz = b.len;
			buf_free(&b);
		}
		json_object_set_new(o, "size", json_integer((json_int_t)sz));
	}
	if (bp->headers)
		json_object_set_new(o, "headers", headers_list(g->data + p->hdr_off, p->hdr_len));
	if (bp->name) {
		const char *n = part_rawname(p);
		json_object_set_new(o, "name", n ? header_text(n, strlen(n), g->charset) :
					       json_null());
	}
	if (bp->type)
		json_object_set_new(o, "type", json_sprintf("%s/%s", p->type, p->subtype));
	if (bp->charset) {
		const char *cs = strcmp(p->type, "text") == 0 ? part_charset(p) : NULL;
		json_object_set_new(o, "charset", jstr0(cs));
	}
	if (bp->disposition)
		json_object_set_new(o, "disposition", jstr0(p->disposition));
	if (bp->cid) {
		json_t *cid = json_null();
		if (p->id) {
			size_t n = strlen(p->id);
			const char *s = p->id;
			if (n >= 2 && s[0] == '<' && s[n - 1] == '>') {
				s++;
				n -= 2;
			}
			json_decref(cid);
			cid = jstr(s, n);
		}
		json_object_set_new(o, "cid", cid);
	}
	if (bp->language) {
		json_t *l = json_null();
		if (p->language) {
			json_decref(l);
			l = json_array();
			for (const char *s = p->language; *s;) {
				size_t n = strcspn(s, ", \t");
				if (n)
					json_array_append_new(l, jstr(s, n));
				s += n;
				s += strspn(s, ", \t");
			}
		}
		json_object_set_new(o, "language", l);
	}
	if (bp->location)
		json_object_set_new(o, "location", jstr0(p->location));
	return o;
}

/* bodyStructure, iteratively over the pre-order array: each part's object
 * goes into its parent's subParts; a message/rfc822 part is a leaf. */
static json_t *body_structure(const struct msg *g, const struct bodyprops *bp)
{
	const struct mime_message *m = g->m;
	json_t **objs = xcalloc(m->n_parts, sizeof *objs);
	json_t *top = NULL;
	for (size_t i = 0; i < m->n_parts; i++) {
		const struct mime_part *p = &m->parts[i];
		json_t *o = part_json(g, i, bp);
		bool multi = mime_part_is_multipart(p) && p->first_child != MIME_NONE;
		if (multi && bp->sub_parts)
			json_object_set_new(o, "subParts", json_array());
		objs[i] = o;
		if (i == 0) {
			top = o;
		} else {
			json_t *parent = objs[p->parent];
			json_t *subs = parent ? json_object_get(parent, "subParts") : NULL;
			if (subs)
				json_array_append_new(subs, o);
			else
				json_decref(o);
		}
		if (mime_part_is_message(p) && i > 0) {
			for (size_t k = i + 1; k < p->subtree_end; k++)
				objs[k] = NULL;
			i = p->subtree_end - 1;
		}
	}
	free(objs);
	return top;
}

static json_t *plist_json(const struct msg *g, const struct plist *l,
			  const struct bodyprops *bp)
{
	json_t *a = json_array();
	for (size_t i = 0; i < l->n; i++)
		json_array_append_new(a, part_json(g, l->v[i], bp));
	return a;
}

/* The first PREVIEW_CHARS characters of the text, blanks collapsed. */
static json_t *preview_of(const struct msg *g, const struct plist *text)
{
	struct buf b;
	buf_init(&b, PREVIEW_CHARS * 4 + 8);
	size_t chars = 0;
	bool space = true;
	for (size_t k = 0; k < text->n && chars < PREVIEW_CHARS; k++) {
		const struct mime_part *p = &g->m->parts[text->v[k]];
		if (strcmp(p->type, "text") != 0)
			continue;
		bool html = strcmp(p->subtype, "html") == 0, problem, tag = false;
		size_t n;
		char *s = part_text(g, p, &n, &problem);
		for (size_t i = 0; i < n && chars < PREVIEW_CHARS; i++) {
			unsigned char c = (unsigned char)s[i];
			if (html && c == '<')
				tag = true;
			if (tag) {
				if (c == '>')
					tag = false;
				continue;
			}
			if (c <= ' ' || c == 127) {
				if (!space)
					buf_append(&b, " ", 1);
				space = true;
				continue;
			}
			space = false;
			if ((c & 0xc0) != 0x80)
				chars++;
			if (chars > PREVIEW_CHARS)
				break;
			buf_append(&b, s + i, 1);
		}
		free(s);
		if (!space)
			buf_append(&b, " ", 1);
		space = true;
	}
	size_t n = b.len;
	while (n && b.data[n - 1] == ' ')
		n--;
	json_t *v = jstr(b.data ? b.data : "", n);
	buf_free(&b);
	return v;
}

static void body_value(const struct msg *g, size_t i, size_t max, json_t *values)
{
	const struct mime_part *p = &g->m->parts[i];
	if (strcmp(p->type, "text") != 0 || json_object_get(values, p->section))
		return;
	bool problem;
	size_t n;
	char *s = part_text(g, p, &n, &problem);
	bool truncated = false;
	if (max && n > max) {
		n = max;
		while (n && ((unsigned char)s[n] & 0xc0) == 0x80)
			n--;
		truncated = true;
	}
	json_object_set_new(values, p->section,
			    json_pack("{s:o, s:b, s:b}", "value", jstr(s, n), "isEncodingProblem",
				      problem, "isTruncated", truncated));
	free(s);
}

/* ---- Email/get ---- */

static const char *const email_default[] = {
	"id", "blobId", "threadId", "mailboxIds", "keywords", "size", "receivedAt",
	"messageId", "inReplyTo", "references", "sender", "from", "to", "cc", "bcc",
	"replyTo", "subject", "sentAt", "hasAttachment", "preview", "bodyValues", "textBody",
	"htmlBody", "attachments", NULL,
};
static const char *const email_extra[] = {"headers", "bodyStructure", NULL};

static const struct {
	const char *prop, *field;
	enum hform form;
} conv[] = {
	{"messageId", "Message-ID", HF_MESSAGEIDS}, {"inReplyTo", "In-Reply-To", HF_MESSAGEIDS},
	{"references", "References", HF_MESSAGEIDS}, {"sender", "Sender", HF_ADDRESSES},
	{"from", "From", HF_ADDRESSES}, {"to", "To", HF_ADDRESSES}, {"cc", "Cc", HF_ADDRESSES},
	{"bcc", "Bcc", HF_ADDRESSES}, {"replyTo", "Reply-To", HF_ADDRESSES},
	{"subject", "Subject", HF_TEXT}, {"sentAt", "Date", HF_DATE},
};

static bool in_list(const char *const *l, const char *s)
{
	for (; *l; l++)
		if (strcmp(*l, s) == 0)
			return true;
	return false;
}

static bool want(json_t *props, const char *p)
{
	return json_object_get(props, p) != NULL;
}

static json_t *email_json(const struct jmap_mail_ctx *c, struct msg *g, json_t *props,
			  const struct bodyprops *bp, int fetch, size_t maxval)
{
	(void)c;
	json_t *o = json_object();
	json_object_set_new(o, "id", ref_id('e', g->e.body_id));
	if (want(props, "blobId"))
		json_object_set_new(o, "blobId", ref_id('b', g->e.body_id));
	if (want(props, "threadId"))
		json_object_set_new(o, "threadId", ref_id('t', g->e.thread_id ? g->e.thread_id :
							       g->e.body_id));
	if (want(props, "mailboxIds")) {
		json_t *mbs = json_object();
		for (size_t i = 0; i < g->e.nmailboxes; i++) {
			char mb[32];
			snprintf(mb, sizeof mb, "m%lld", (long long)g->e.mailboxes[i]);
			json_object_set_new(mbs, mb, json_true());
		}
		if (g->e.nmailboxes == 0) {   /* the fuzz target's message */
			char mb[32];
			snprintf(mb, sizeof mb, "m%lld", (long long)g->e.mailbox_id);
			json_object_set_new(mbs, mb, json_true());
		}
		json_object_set_new(o, "mailboxIds", mbs);
	}
	if (want(props, "keywords"))
		json_object_set_new(o, "keywords", keywords_json(g->e.flags, g->e.keywords));
	if (want(props, "size"))
		json_object_set_new(o, "size", json_integer(g->e.size));
	if (want(props, "receivedAt"))
		json_object_set_new(o, "receivedAt", utcdate(g->e.internaldate));
	if (g->m == NULL)
		return o;
	const struct mime_part *top = &g->m->parts[0];
	const char *hdr = g->data + top->hdr_off;
	size_t hlen = top->hdr_len;
	for (size_t i = 0; i < sizeof conv / sizeof conv[0]; i++)
		if (want(props, conv[i].prop))
			json_object_set_new(o, conv[i].prop, header_get(hdr, hlen, conv[i].field,
								       conv[i].form, false,
								       g->charset));
	if (want(props, "headers"))
		json_object_set_new(o, "headers", headers_list(hdr, hlen));
	const char *k;
	json_t *v;
	json_object_foreach(props, k, v) {
		char name[128];
		enum hform f;
		bool all;
		if (parse_header_prop(k, name, sizeof name, &f, &all))
			json_object_set_new(o, k, header_get(hdr, hlen, name, f, all, g->charset));
	}
	if (want(props, "bodyStructure"))
		json_object_set_new(o, "bodyStructure", body_structure(g, bp));
	bool need = want(props, "textBody") || want(props, "htmlBody") ||
		    want(props, "attachments") || want(props, "hasAttachment") ||
		    want(props, "preview") || want(props, "bodyValues");
	if (!need)
		return o;
	struct plist text = {0}, html = {0}, att = {0};
	parse_structure(g->m, 0, "mixed", false, &html, &text, &att);
	if (want(props, "textBody"))
		json_object_set_new(o, "textBody", plist_json(g, &text, bp));
	if (want(props, "htmlBody"))
		json_object_set_new(o, "htmlBody", plist_json(g, &html, bp));
	if (want(props, "attachments"))
		json_object_set_new(o, "attachments", plist_json(g, &att, bp));
	if (want(props, "hasAttachment"))
		json_object_set_new(o, "hasAttachment", json_boolean(att.n > 0));
	if (want(props, "preview"))
		json_object_set_new(o, "preview", preview_of(g, &text));
	if (want(props, "bodyValues")) {
		json_t *vals = json_object();
		if (fetch & 1)
			for (size_t i = 0; i < text.n; i++)
				body_value(g, text.v[i], maxval, vals);
		if (fetch & 2)
			for (size_t i = 0; i < html.n; i++)
				body_value(g, html.v[i], maxval, vals);
		if (fetch & 4) {
			for (size_t i = 0; i < text.n; i++)
				body_value(g, text.v[i], maxval, vals);
			for (size_t i = 0; i < html.n; i++)
				body_value(g, html.v[i], maxval, vals);
			for (size_t i = 0; i < att.n; i++)
				body_value(g, att.v[i], maxval, vals);
		}
		json_object_set_new(o, "bodyValues", vals);
	}
	free(text.v);
	free(html.v);
	free(att.v);
	return o;
}

static const char *const body_default[] = {
	"partId", "blobId", "size", "name", "type", "charset", "disposition", "cid",
	"language", "location", NULL,
};

static bool set_bodyprop(struct bodyprops *bp, const char *p)
{
	static const char *const names[] = {
		"partId", "blobId", "size", "headers", "name", "type", "charset",
		"disposition", "cid", "language", "location", "subParts",
	};
	bool *fields[] = {&bp->part_id, &bp->blob_id, &bp->size, &bp->headers, &bp->name,
			  &bp->type, &bp->charset, &bp->disposition, &bp->cid, &bp->language,
			  &bp->location, &bp->sub_parts};
	for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
		if (strcmp(p, names[i]) == 0) {
			*fields[i] = true;
			return true;
		}
	return false;
}

json_t *jmap_email_get(const struct jmap_mail_ctx *c, json_t *args, const char **type_r,
		       const char **desc_r)
{
	*type_r = "invalidArguments";
	json_t *ids = json_object_get(args, "ids");
	json_t *props_in = json_object_get(args, "properties");
	json_t *bprops_in = json_object_get(args, "bodyProperties");
	size_t i;
	json_t *v;
	if (ids == NULL || json_is_null(ids)) {
		*type_r = "requestTooLarge";
		*desc_r = "give ids (Email/query finds them)";
		return NULL;
	}
	if (!json_is_array(ids)) {
		*desc_r = "ids must be an array";
		return NULL;
	}
	json_array_foreach(ids, i, v)
		if (!json_is_string(v)) {
			*desc_r = "ids must be strings";
			return NULL;
		}
	if (json_array_size(ids) > c->max_objects_in_get) {
		*type_r = "requestTooLarge";
		*desc_r = "more ids than maxObjectsInGet";
		return NULL;
	}
	json_t *props = json_object();
	if (props_in && !json_is_null(props_in)) {
		if (!json_is_array(props_in)) {
			json_decref(props);
			*desc_r = "properties must be null or an array";
			return NULL;
		}
		json_array_foreach(props_in, i, v) {
			const char *p = json_string_value(v);
			char name[128];
			enum hform f;
			bool all;
			if (p == NULL || (!in_list(email_default, p) && !in_list(email_extra, p) &&
					  !parse_header_prop(p, name, sizeof name, &f, &all))) {
				json_decref(props);
				*desc_r = "properties names an unknown Email property";
				return NULL;
			}
			json_object_set_new(props, p, json_true());
		}
	} else {
		for (const char *const *p = email_default; *p; p++)
			json_object_set_new(props, *p, json_true());
	}
	struct bodyprops bp = {0};
	if (bprops_in && !json_is_null(bprops_in)) {
		bool ok = json_is_array(bprops_in);
		json_array_foreach(bprops_in, i, v)
			ok = ok && json_is_string(v) && set_bodyprop(&bp, json_string_value(v));
		if (!ok) {
			json_decref(props);
			*desc_r = "bodyProperties names an unknown EmailBodyPart property";
			return NULL;
		}
	} else {
		for (const char *const *p = body_default; *p; p++)
			set_bodyprop(&bp, *p);
		bp.sub_parts = true;
	}
	int fetch = (json_is_true(json_object_get(args, "fetchTextBodyValues")) ? 1 : 0) |
		    (json_is_true(json_object_get(args, "fetchHTMLBodyValues")) ? 2 : 0) |
		    (json_is_true(json_object_get(args, "fetchAllBodyValues")) ? 4 : 0);
	json_t *mv = json_object_get(args, "maxBodyValueBytes");
	size_t maxval = 0;
	if (mv && !json_is_null(mv)) {
		if (!json_is_integer(mv) || json_integer_value(mv) < 1) {
			json_decref(props);
			*desc_r = "maxBodyValueBytes is a positive integer";
			return NULL;
		}
		maxval = (size_t)json_integer_value(mv);
	}
	char state[64];
	if ((want(props, "threadId") && jmap_thread_sync(c->st, c->account_id) < 0) ||
	    jmap_mail_state(c->st, c->account_id, state, sizeof state) < 0) {
		json_decref(props);
		*type_r = "serverFail";
		*desc_r = "the store is unavailable";
		return NULL;
	}
	/* Only what the store has: no file read. */
	static const char *const cheap[] = {"id", "blobId", "threadId", "mailboxIds",
					    "keywords", "size", "receivedAt", NULL};
	bool need_file = false;
	const char *k;
	json_object_foreach(props, k, v)
		need_file = need_file || !in_list(cheap, k);
	json_t *list = json_array(), *not_found = json_array(), *seen = json_object();
	json_array_foreach(ids, i, v) {
		const char *id = json_string_value(v);
		if (json_object_get(seen, id))
			continue;
		json_object_set_new(seen, id, json_true());
		struct msg g = {0};
		int64_t body;
		int rc = parse_ref(id, 'e', &body, NULL) ?
			 store_jmap_email(c->st, c->account_id, body, &g.e) : 0;
		if (rc == 1 && need_file && msg_read(c->st, &g) < 0)
			rc = -1;
		if (rc == 1) {
			if (g.m) {
				/* raw 8-bit header text: read in the first text part's charset */
				for (size_t p = 0; p < g.m->n_parts && !g.charset; p++)
					if (strcmp(g.m->parts[p].type, "text") == 0)
						g.charset = mime_param_get(&g.m->parts[p].params,
									   "charset");
			}
			json_array_append_new(list, email_json(c, &g, props, &bp, fetch, maxval));
		} else {
			json_array_append(not_found, v);
		}
		msg_free(&g);
	}
	json_decref(seen);
	json_decref(props);
	return json_pack("{s:s, s:s, s:o, s:o}", "accountId", c->acct, "state", state, "list",
			 list, "notFound", not_found);
}

json_t *jmap_email_from_data(const char *data, size_t len)
{
	static const char *const forms[] = {
		"headers", "bodyStructure", "header:From:asAddresses", "header:Subject:asText",
		"header:Date:asDate", "header:References:asMessageIds", "header:To:all",
		"header:X-Url:asURLs", NULL,
	};
	struct msg g = {.e = {.mailbox_id = 1, .uid = 1, .size = (int64_t)len}};
	g.data = xmalloc(len + 1);
	if (len)
		memcpy(g.data, data, len);
	g.data[len] = '\0';
	g.len = len;
	g.m = mime_parse(g.data, g.len, NULL);
	for (size_t p = 0; p < g.m->n_parts && !g.charset; p++)
		if (strcmp(g.m->parts[p].type, "text") == 0)
			g.charset = mime_param_get(&g.m->parts[p].params, "charset");
	json_t *props = json_object();
	for (const char *const *p = email_default; *p; p++)
		json_object_set_new(props, *p, json_true());
	for (const char *const *p = forms; *p; p++)
		json_object_set_new(props, *p, json_true());
	struct bodyprops bp = {true, true, true, true, true, true, true, true, true, true,
			       true, true};
	json_t *o = email_json(NULL, &g, props, &bp, 7, 1000);
	json_decref(props);
	msg_free(&g);
	return o;
}

/* ---- sort keys on header fields ---- */

static int64_t date_epoch(json_t *d)
{
	int y, mo, da, h, mi, se, oh, om;
	char sign;
	const char *s = json_string_value(d);
	if (s == NULL || sscanf(s, "%d-%d-%dT%d:%d:%d%c%d:%d", &y, &mo, &da, &h, &mi, &se, &sign,
				&oh, &om) != 9)
		return 0;
	struct tm tm = {.tm_year = y - 1900, .tm_mon = mo - 1, .tm_mday = da, .tm_hour = h,
			.tm_min = mi, .tm_sec = se};
	int64_t off = (int64_t)(oh * 60 + om) * 60;
	return (int64_t)timegm(&tm) - (sign == '-' ? -off : off);
}

/* A key string: ASCII lower-cased; a subject without leading "re:" and
 * "fwd:" (the gist of RFC 5256's base subject). */
static char *key_string(json_t *v, bool subject)
{
	const char *s = json_string_value(v);
	if (s == NULL)
		return xstrdup("");
	for (bool again = subject; again;) {
		again = false;
		while (*s == ' ')
			s++;
		if (strncasecmp(s, "re:", 3) == 0 || strncasecmp(s, "fw:", 3) == 0) {
			s += 3;
			again = true;
		} else if (strncasecmp(s, "fwd:", 4) == 0) {
			s += 4;
			again = true;
		}
	}
	char *k = xstrdup(s);
	for (char *c = k; *c; c++)
		if (*c >= 'A' && *c <= 'Z')
			*c = (char)(*c + 32);
	return k;
}

/* ---- threads ---- */

#define THREAD_HASHES_MAX 64        /* Message-IDs of one email looked up */
#define THREAD_BATCH 1000
#define THREAD_HEADER_MAX (256u * 1024)

static uint64_t id_hash(const char *s)
{
	uint64_t h = 0xcbf29ce484222325ull;
	for (; *s; s++) {
		h ^= (unsigned char)*s;
		h *= 0x100000001b3ull;
	}
	return h & INT64_MAX;
}

static void ids_add(json_t *ids, uint64_t *v, size_t *n)
{
	size_t i;
	json_t *x;
	json_array_foreach(ids, i, x) {
		if (*n == THREAD_HASHES_MAX)
			return;
		uint64_t h = id_hash(json_string_value(x));
		bool dup = false;
		for (size_t k = 0; k < *n && !dup; k++)
			dup = v[k] == h;
		if (!dup)
			v[(*n)++] = h;
	}
}

static bool header_complete(const char *h, size_t n)
{
	for (size_t i = 0; i + 1 < n; i++)
		if (h[i] == '\n' && (h[i + 1] == '\n' || (h[i + 1] == '\r' && i + 2 < n &&
							 h[i + 2] == '\n')))
			return true;
	return false;
}

/* The Message-IDs of the email's header: its own, In-Reply-To, then
 * References from the root; and its sort keys.  Reads the header only. */
static size_t thread_hashes(struct store *st, const char *rel, uint64_t *v,
			    struct store_jmap_thread_in *in)
{
	char path[4096];
	store_msg_path(st, rel, path, sizeof path);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		log_warn("jmap: threading: open %s: %s (the email gets a thread of its own)",
			    path, strerror(errno));
		return 0;
	}
	char *h = xmalloc(THREAD_HEADER_MAX);
	size_t got = 0;
	while (got < THREAD_HEADER_MAX) {
		ssize_t r = read(fd, h + got, THREAD_HEADER_MAX - got);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		got += (size_t)r;
		if (header_complete(h, got))
			break;
	}
	close(fd);
	size_t len = got;
	const char *end = memmem(h, got, "\r\n\r\n", 4);
	if (end)
		len = (size_t)(end - h) + 2;
	size_t n = 0;
	static const char *const fields[] = {"Message-ID", "In-Reply-To", "References"};
	for (size_t f = 0; f < 3; f++) {
		json_t *ids = header_get(h, len, fields[f], HF_MESSAGEIDS, false, NULL);
		ids_add(ids, v, &n);
		json_decref(ids);
	}
	json_t *d = header_get(h, len, "Date", HF_DATE, false, NULL);
	in->sent_at = date_epoch(d);
	json_decref(d);
	json_t *a = header_get(h, len, "From", HF_ADDRESSES, false, NULL);
	json_t *first = json_array_get(a, 0);
	json_t *name = json_object_get(first, "name");
	in->from_key = key_string(json_is_string(name) && json_string_length(name) ? name :
				  json_object_get(first, "email"), false);
	json_decref(a);
	json_t *sub = header_get(h, len, "Subject", HF_TEXT, false, NULL);
	in->subject_key = key_string(sub, true);
	json_decref(sub);
	free(h);
	return n;
}

int jmap_thread_sync(struct store *st, int64_t account_id)
{
	int64_t after = 0;
	for (;;) {
		struct store_jmap_unthreaded *v;
		size_t n;
		int64_t upto;
		char *err = NULL;
		if (store_jmap_unthreaded(st, account_id, THREAD_BATCH, &after, &v, &n, &upto,
					  &err) < 0) {
			log_error("jmap: threading account %lld: %s", (long long)account_id, err);
			free(err);
			return -1;
		}
		struct store_jmap_thread_in *in = xreallocarray(NULL, n + 1, sizeof *in);
		uint64_t *hashes = xreallocarray(NULL, n * THREAD_HASHES_MAX + 1, sizeof *hashes);
		for (size_t i = 0; i < n; i++) {
			in[i] = (struct store_jmap_thread_in){.body_id = v[i].body_id,
				.hashes = hashes + i * THREAD_HASHES_MAX};
			in[i].nhashes = thread_hashes(st, v[i].path, hashes + i * THREAD_HASHES_MAX,
						      &in[i]);
		}
		bool last = n < THREAD_BATCH;
		int rc = n == 0 && upto < 0 ? 0 :
			 store_jmap_thread_add(st, account_id, in, n, upto, &err);
		for (size_t i = 0; i < n; i++) {
			free((char *)in[i].from_key);
			free((char *)in[i].subject_key);
		}
		free(in);
		free(hashes);
		free(v);
		if (rc < 0) {
			log_error("jmap: threading account %lld: %s", (long long)account_id, err);
			free(err);
			return -1;
		}
		if (last)
			return 0;
	}
}

json_t *jmap_thread_get(const struct jmap_mail_ctx *c, json_t *args, const char **type_r,
			const char **desc_r)
{
	*type_r = "invalidArguments";
	json_t *ids = json_object_get(args, "ids");
	size_t i;
	json_t *v;
	if (!json_is_array(ids)) {
		*type_r = json_is_null(ids) || ids == NULL ? "requestTooLarge" :
			  "invalidArguments";
		*desc_r = "ids must be an array";
		return NULL;
	}
	if (json_array_size(ids) > c->max_objects_in_get) {
		*type_r = "requestTooLarge";
		*desc_r = "more ids than maxObjectsInGet";
		return NULL;
	}
	char state[64];
	if (jmap_thread_sync(c->st, c->account_id) < 0 ||
	    jmap_mail_state(c->st, c->account_id, state, sizeof state) < 0) {
		*type_r = "serverFail";
		*desc_r = "the store is unavailable";
		return NULL;
	}
	json_t *list = json_array(), *not_found = json_array();
	json_array_foreach(ids, i, v) {
		int64_t thread;
		int64_t *emails = NULL;
		size_t n = 0;
		char *err = NULL;
		if (parse_ref(json_string_value(v), 't', &thread, NULL) &&
		    store_jmap_thread_emails(c->st, c->account_id, thread, &emails, &n, &err) < 0) {
			log_error("jmap: Thread/get: %s", err);
			free(err);
		}
		if (n == 0) {
			json_array_append(not_found, v);
			continue;
		}
		json_t *e = json_array();
		for (size_t k = 0; k < n; k++)
			json_array_append_new(e, ref_id('e', emails[k]));
		free(emails);
		json_array_append_new(list, json_pack("{s:O, s:o}", "id", v, "emailIds", e));
	}
	return json_pack("{s:s, s:s, s:o, s:o}", "accountId", c->acct, "state", state, "list",
			 list, "notFound", not_found);
}

/* ---- text conditions of Email/query ---- */

static bool json_has(json_t *v, const char *needle)
{
	if (json_is_string(v))
		return strcasestr(json_string_value(v), needle) != NULL;
	size_t i;
	json_t *e;
	json_array_foreach(v, i, e)
		if (json_is_string(e) && strcasestr(json_string_value(e), needle))
			return true;
	return false;
}

static bool header_has(const struct msg *g, const char *field, const char *needle)
{
	const struct mime_part *top = &g->m->parts[0];
	json_t *v = header_get(g->data + top->hdr_off, top->hdr_len, field, HF_TEXT, true,
			       g->charset);
	bool hit = json_has(v, needle);
	json_decref(v);
	return hit;
}

static bool body_has(const struct msg *g, const char *needle)
{
	for (size_t i = 0; i < g->m->n_parts; i++) {
		const struct mime_part *p = &g->m->parts[i];
		if (strcmp(p->type, "text") != 0 || p->first_child != MIME_NONE)
			continue;
		bool problem;
		size_t n;
		char *s = part_text(g, p, &n, &problem);
		bool hit = memchr(s, '\0', n) == NULL && strcasestr(s, needle) != NULL;
		if (!hit && memchr(s, '\0', n)) {
			json_t *j = jstr(s, n);
			hit = json_has(j, needle);
			json_decref(j);
		}
		free(s);
		if (hit)
			return true;
	}
	return false;
}

static bool any_header_has(const struct msg *g, const char *needle)
{
	const struct mime_part *top = &g->m->parts[0];
	size_t pos = 0;
	struct mime_field fl;
	while (mime_header_next(g->data + top->hdr_off, top->hdr_len, &pos, &fl)) {
		char *u = mime_unfold(fl.value, fl.value_len, HEADER_VALUE_MAX, NULL);
		json_t *v = header_text(u, strlen(u), g->charset);
		free(u);
		bool hit = json_has(v, needle);
		json_decref(v);
		if (hit)
			return true;
	}
	return false;
}

/* Every text condition of t holds for the email r (read from its file). */
static bool textf_match(struct store *st, int64_t account_id, const struct textf *t,
			const struct store_jmap_ref *r)
{
	static const char *const fields[] = {NULL, "From", "To", "Cc", "Bcc", "Subject"};
	struct msg g = {0};
	bool ok = store_jmap_email(st, account_id, r->body_id, &g.e) == 1 &&
		  msg_read(st, &g) == 0;
	for (size_t p = 0; ok && p < g.m->n_parts && !g.charset; p++)
		if (strcmp(g.m->parts[p].type, "text") == 0)
			g.charset = mime_param_get(&g.m->parts[p].params, "charset");
	for (size_t i = 0; ok && i < 7; i++) {
		if (t->v[i] == NULL)
			continue;
		if (i == 0)
			ok = any_header_has(&g, t->v[i]) || body_has(&g, t->v[i]);
		else if (i == 6)
			ok = body_has(&g, t->v[i]);
		else
			ok = header_has(&g, fields[i], t->v[i]);
	}
	msg_free(&g);
	return ok;
}

/* ---- blobs ---- */

int jmap_blob_read(struct store *st, int64_t account_id, const char *blobid, struct buf *out)
{
	int64_t body;
	const char *rest;
	if (!parse_ref(blobid, 'b', &body, &rest))
		return 0;
	char sec[READER_SECTION_MAX];
	if (*rest) {
		if (rest[0] != 'p' || strlen(rest + 1) >= sizeof sec || rest[1] == '\0')
			return 0;
		snprintf(sec, sizeof sec, "%s", rest + 1);
		for (char *c = sec; *c; c++) {
			if (*c == '_')
				*c = '.';
			else if (*c < '0' || *c > '9')
				return 0;
		}
	}
	struct msg g = {0};
	int rc = store_jmap_email(st, account_id, body, &g.e);
	if (rc != 1)
		return rc;
	if (msg_read(st, &g) < 0) {
		msg_free(&g);
		return -1;
	}
	if (*rest == '\0') {
		rc = buf_append(out, g.data, g.len) < 0 ? -1 : 1;
	} else {
		const struct mime_part *p = mime_find_section(g.m, sec);
		if (p == NULL || (mime_part_is_multipart(p) && p->first_child != MIME_NONE)) {
			rc = 0;
		} else {
			part_decode(&g, p, out);
			rc = out->len == out->max ? -1 : 1;
		}
	}
	msg_free(&g);
	return rc;
}
