/* jmap_submit.c - Identity and EmailSubmission (RFC 8621 6, 7).  See
 * jmap_submit.h. */
#include "proto/jmap/jmap_submit.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "core/buf.h"
#include "core/log.h"
#include "core/util.h"
#include "mail/addr.h"
#include "mail/submit.h"
#include "proto/jmap/jmap_session.h"
#include "proto/jmap/jmap_set.h"
#include "store/store.h"
#include "store/store_jmap.h"
#include "store/store_jmap_set.h"

#define ADDR_TEXT_MAX (ADDR_PATH_MAX * 2)
/* Creates in one EmailSubmission/set (each may queue a large message). */
#define SUBMIT_CREATE_MAX 64
/* Submissions /get and /query look at, newest first. */
#define SUBMIT_LIST_MAX 1000

/* ---- identities ---- */

/* The addresses the account may send as: [0] the account's own, then the
 * aliases naming it (in address order). */
struct idlist {
	char **v;
	size_t n;
};

static void idlist_free(struct idlist *l)
{
	for (size_t i = 0; i < l->n; i++)
		free(l->v[i]);
	free(l->v);
	l->v = NULL;
	l->n = 0;
}

static int idlist_load(const struct jmap_mail_ctx *c, struct idlist *l)
{
	char **own;
	size_t n;
	l->v = NULL;
	l->n = 0;
	if (store_own_addresses(c->st, c->address, &own, &n) < 0)
		return -1;
	l->v = xreallocarray(NULL, n + 1, sizeof *l->v);
	l->v[l->n++] = xstrdup(c->address);
	for (size_t i = 0; i < n; i++) {
		if (str_ieq(own[i], c->address))
			free(own[i]);
		else
			l->v[l->n++] = own[i];
	}
	free(own);
	return 0;
}

static uint64_t fnv_lower(uint64_t h, const char *s)
{
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		unsigned char b = (*p >= 'A' && *p <= 'Z') ? (unsigned char)(*p + 32) : *p;
		h = (h ^ b) * 1099511628211ull;
	}
	return h;
}

#define FNV_INIT 14695981039346656037ull

static void identity_id(const char *addr, char out[18])
{
	snprintf(out, 18, "i%016" PRIx64, fnv_lower(FNV_INIT, addr));
}

static void identity_state(const struct idlist *l, char out[20])
{
	uint64_t h = FNV_INIT;
	for (size_t i = 0; i < l->n; i++)
		h = fnv_lower(fnv_lower(h, l->v[i]), "\n");
	snprintf(out, 20, "%016" PRIx64, h);
}

/* The identity with that id, or NULL. */
static const char *identity_find(const struct idlist *l, const char *id)
{
	char buf[18];
	for (size_t i = 0; id && i < l->n; i++) {
		identity_id(l->v[i], buf);
		if (strcmp(buf, id) == 0)
			return l->v[i];
	}
	return NULL;
}

/* addr is one the account may send as: one of the list, or the account's
 * user+tag@ with recipient_delimiter (the rule of SMTP submission). */
static bool owns(const struct idlist *l, char delim, const char *addr)
{
	for (size_t i = 0; i < l->n; i++)
		if (str_ieq(addr, l->v[i]))
			return true;
	const char *user = l->v[0];
	const char *at = strrchr(addr, '@'), *uat = strrchr(user, '@');
	if (delim && at && uat) {
		size_t ulen = (size_t)(uat - user);
		if ((size_t)(at - addr) > ulen && addr[ulen] == delim &&
		    strncasecmp(addr, user, ulen) == 0 && str_ieq(at, uat))
			return true;
	}
	return false;
}

static json_t *identity_json(const char *addr, json_t *props)
{
	char id[18];
	identity_id(addr, id);
	json_t *o = json_pack("{s:s, s:s, s:s, s:n, s:n, s:s, s:s, s:b}", "id", id, "name", "",
			      "email", addr, "replyTo", "bcc", "textSignature", "",
			      "htmlSignature", "", "mayDelete", 0);
	if (props) {
		const char *k;
		json_t *v;
		void *tmp;
		json_object_foreach_safe(o, tmp, k, v) {
			if (strcmp(k, "id") != 0 && !json_object_get(props, k))
				json_object_del(o, k);
		}
	}
	return o;
}

static const char *const identity_props[] = {
	"id", "name", "email", "replyTo", "bcc", "textSignature", "htmlSignature", "mayDelete",
	NULL,
};

/* ids (null or strings, at most max) and properties (null or known names)
 * of a /get: 0, or -1 with the error set.  *props_r is a set or NULL. */
static int get_args(const struct jmap_mail_ctx *c, json_t *args, const char *const *known,
		    json_t **ids_r, json_t **props_r, const char **type_r, const char **desc_r)
{
	json_t *ids = json_object_get(args, "ids"), *props = json_object_get(args, "properties");
	size_t i;
	json_t *v;
	*ids_r = NULL;
	*props_r = NULL;
	if (ids && !json_is_null(ids)) {
		if (!json_is_array(ids)) {
			*type_r = "invalidArguments";
			*desc_r = "ids must be null or an array of strings";
			return -1;
		}
		json_array_foreach(ids, i, v) {
			if (!json_is_string(v)) {
				*type_r = "invalidArguments";
				*desc_r = "ids must be null or an array of strings";
				return -1;
			}
		}
		if (json_array_size(ids) > c->max_objects_in_get) {
			*type_r = "requestTooLarge";
			*desc_r = "more ids than maxObjectsInGet";
			return -1;
		}
		*ids_r = ids;
	}
	if (props && !json_is_null(props)) {
		if (!json_is_array(props)) {
			*type_r = "invalidArguments";
			*desc_r = "properties must be null or an array of strings";
			return -1;
		}
		json_t *set = json_object();
		json_array_foreach(props, i, v) {
			const char *p = json_string_value(v);
			bool ok = false;
			for (size_t k = 0; p && known[k]; k++)
				ok = ok || strcmp(p, known[k]) == 0;
			if (!ok) {
				json_decref(set);
				*type_r = "invalidArguments";
				*desc_r = "properties names an unknown property";
				return -1;
			}
			json_object_set_new(set, p, json_true());
		}
		*props_r = set;
	}
	return 0;
}

json_t *jmap_identity_get(const struct jmap_mail_ctx *c, json_t *args, const char **type_r,
			  const char **desc_r)
{
	json_t *ids, *props;
	if (get_args(c, args, identity_props, &ids, &props, type_r, desc_r) < 0)
		return NULL;
	struct idlist l;
	if (idlist_load(c, &l) < 0) {
		json_decref(props);
		*type_r = "serverFail";
		*desc_r = "the store is unavailable";
		return NULL;
	}
	char state[20];
	identity_state(&l, state);
	json_t *list = json_array(), *not_found = json_array();
	if (ids) {
		size_t i;
		json_t *v;
		json_array_foreach(ids, i, v) {
			const char *a = identity_find(&l, json_string_value(v));
			if (a)
				json_array_append_new(list, identity_json(a, props));
			else
				json_array_append(not_found, v);
		}
	} else {
		for (size_t i = 0; i < l.n; i++)
			json_array_append_new(list, identity_json(l.v[i], props));
	}
	idlist_free(&l);
	json_decref(props);
	return json_pack("{s:s, s:s, s:o, s:o}", "accountId", c->acct, "state", state, "list",
			 list, "notFound", not_found);
}

/* /changes of an object kind whose changes are not logged: nothing when
 * since is the current state, else cannotCalculateChanges. */
static json_t *changes_by_state(const struct jmap_mail_ctx *c, json_t *args, const char *state,
				const char **type_r, const char **desc_r)
{
	json_t *since = json_object_get(args, "sinceState");
	if (!json_is_string(since)) {
		*type_r = "invalidArguments";
		*desc_r = "sinceState (a string) is required";
		return NULL;
	}
	json_t *mc = json_object_get(args, "maxChanges");
	if (mc && !json_is_null(mc) && (!json_is_integer(mc) || json_integer_value(mc) <= 0)) {
		*type_r = "invalidArguments";
		*desc_r = "maxChanges must be a positive integer";
		return NULL;
	}
	if (strcmp(json_string_value(since), state) != 0) {
		*type_r = "cannotCalculateChanges";
		*desc_r = "changes are not logged: fetch the objects again";
		return NULL;
	}
	return json_pack("{s:s, s:s, s:s, s:b, s:[], s:[], s:[]}", "accountId", c->acct,
			 "oldState", state, "newState", state, "hasMoreChanges", 0, "created",
			 "updated", "destroyed");
}

json_t *jmap_identity_changes(const struct jmap_mail_ctx *c, json_t *args, const char **type_r,
			      const char **desc_r)
{
	struct idlist l;
	if (idlist_load(c, &l) < 0) {
		*type_r = "serverFail";
		*desc_r = "the store is unavailable";
		return NULL;
	}
	char state[20];
	identity_state(&l, state);
	idlist_free(&l);
	return changes_by_state(c, args, state, type_r, desc_r);
}

static json_t *set_error(const char *type, const char *desc)
{
	json_t *e = json_pack("{s:s}", "type", type);
	if (desc)
		json_object_set_new(e, "description", json_string(desc));
	return e;
}

/* create must be null or an object, update an object, destroy an array of
 * strings: 0, or -1 with invalidArguments. */
static int set_shape(json_t *args, const char **type_r, const char **desc_r)
{
	json_t *cr = json_object_get(args, "create"), *up = json_object_get(args, "update");
	json_t *de = json_object_get(args, "destroy");
	size_t i;
	json_t *v;
	if ((cr && !json_is_null(cr) && !json_is_object(cr)) ||
	    (up && !json_is_null(up) && !json_is_object(up)) ||
	    (de && !json_is_null(de) && !json_is_array(de)))
		goto bad;
	if (json_is_array(de))
		json_array_foreach(de, i, v)
			if (!json_is_string(v))
				goto bad;
	if (json_object_size(cr) + json_object_size(up) + json_array_size(de) >
	    JMAP_MAX_OBJECTS_IN_SET) {
		*type_r = "requestTooLarge";
		*desc_r = "more objects than maxObjectsInSet";
		return -1;
	}
	return 0;
bad:
	*type_r = "invalidArguments";
	*desc_r = "create and update must be objects, destroy an array of ids";
	return -1;
}

json_t *jmap_identity_set(const struct jmap_mail_ctx *c, json_t *args, const char **type_r,
			  const char **desc_r)
{
	if (set_shape(args, type_r, desc_r) < 0)
		return NULL;
	struct idlist l;
	if (idlist_load(c, &l) < 0) {
		*type_r = "serverFail";
		*desc_r = "the store is unavailable";
		return NULL;
	}
	char state[20];
	identity_state(&l, state);
	json_t *iis = json_object_get(args, "ifInState");
	if (iis && !json_is_null(iis) &&
	    (!json_is_string(iis) || strcmp(json_string_value(iis), state) != 0)) {
		idlist_free(&l);
		*type_r = "stateMismatch";
		*desc_r = NULL;
		return NULL;
	}
	json_t *res = json_pack("{s:s, s:s, s:s}", "accountId", c->acct, "oldState", state,
				"newState", state);
	json_t *nc = json_object(), *nu = json_object(), *nd = json_object();
	const char *k;
	json_t *v;
	size_t i;
	json_object_foreach(json_object_get(args, "create"), k, v)
		json_object_set_new(nc, k, set_error("forbidden", "identities are the account's "
						     "addresses and aliases (yubin alias)"));
	json_object_foreach(json_object_get(args, "update"), k, v)
		json_object_set_new(nu, k, identity_find(&l, k)
				    ? set_error("forbidden", "identities cannot be changed")
				    : set_error("notFound", NULL));
	json_array_foreach(json_object_get(args, "destroy"), i, v) {
		const char *id = json_string_value(v);
		json_object_set_new(nd, id, identity_find(&l, id)
				    ? set_error("forbidden", "mayDelete is false")
				    : set_error("notFound", NULL));
	}
	idlist_free(&l);
	json_object_set_new(res, "notCreated", nc);
	json_object_set_new(res, "notUpdated", nu);
	json_object_set_new(res, "notDestroyed", nd);
	return res;
}

/* ---- submissions as the queue knows them ---- */

static json_t *utcdate(int64_t t)
{
	time_t tt = (time_t)t;
	struct tm tm;
	char out[32];
	gmtime_r(&tt, &tm);
	strftime(out, sizeof out, "%Y-%m-%dT%H:%M:%SZ", &tm);
	return json_string(out);
}

/* The queued recipients of the account's messages (envelope sender one
 * of its addresses), grouped by message, newest first. */
struct qsub {
	char qid[17];
	int64_t created;
	char *sender;
	size_t first, n;            /* its rows in the sorted array */
};
struct qsubs {
	struct queue_entry *rows;
	size_t nrows;
	struct qsub *v;
	size_t n;
};

static void qsubs_free(struct qsubs *s)
{
	queue_entries_free(s->rows, s->nrows);
	free(s->v);
	memset(s, 0, sizeof *s);
}

static int row_cmp(const void *a, const void *b)
{
	const struct queue_entry *x = a, *y = b;
	if (x->created != y->created)
		return x->created > y->created ? -1 : 1;
	int r = strcmp(x->qid, y->qid);
	if (r != 0)
		return -r;
	return x->rcpt_id < y->rcpt_id ? -1 : x->rcpt_id > y->rcpt_id;
}

/* qid NULL: every message of the account (at most SUBMIT_LIST_MAX). */
static int qsubs_load(const struct jmap_mail_ctx *c, const struct idlist *l, const char *qid,
		      struct qsubs *s)
{
	char *err = NULL;
	memset(s, 0, sizeof *s);
	if (store_queue_list(c->st, qid, &s->rows, &s->nrows, &err) < 0) {
		log_error("jmap: reading the queue: %s", err ? err : "store error");
		free(err);
		return -1;
	}
	if (s->nrows > 1)
		qsort(s->rows, s->nrows, sizeof *s->rows, row_cmp);
	for (size_t i = 0; i < s->nrows; i++) {
		struct queue_entry *e = &s->rows[i];
		if (s->n > 0 && strcmp(s->v[s->n - 1].qid, e->qid) == 0) {
			s->v[s->n - 1].n++;
			continue;
		}
		if (!owns(l, 0, e->sender ? e->sender : ""))
			continue;
		if (s->n == SUBMIT_LIST_MAX)
			break;
		s->v = xreallocarray(s->v, s->n + 1, sizeof *s->v);
		struct qsub *q = &s->v[s->n++];
		memcpy(q->qid, e->qid, sizeof q->qid);
		q->created = e->created;
		q->sender = e->sender;
		q->first = i;
		q->n = 1;
	}
	return 0;
}

static void submission_state(const struct qsubs *s, char out[20])
{
	uint64_t h = FNV_INIT;
	for (size_t i = 0; i < s->n; i++) {
		char n[24];
		snprintf(n, sizeof n, "%zu\n", s->v[i].n);
		h = fnv_lower(fnv_lower(fnv_lower(h, s->v[i].qid), ":"), n);
	}
	snprintf(out, 20, "%016" PRIx64, h);
}

static const char *const submission_props[] = {
	"id", "identityId", "emailId", "threadId", "envelope", "sendAt", "undoStatus",
	"deliveryStatus", "dsnBlobIds", "mdnBlobIds", NULL,
};

static json_t *submission_json(const struct qsubs *s, const struct qsub *q,
			       const struct idlist *l, json_t *props)
{
	char id[20], iid[18];
	snprintf(id, sizeof id, "s%s", q->qid);
	json_t *ident = json_null();
	for (size_t i = 0; i < l->n; i++) {
		if (str_ieq(l->v[i], q->sender)) {
			identity_id(l->v[i], iid);
			json_decref(ident);
			ident = json_string(iid);
			break;
		}
	}
	json_t *rcpts = json_array(), *ds = json_object();
	for (size_t i = q->first; i < q->first + q->n; i++) {
		const struct queue_entry *e = &s->rows[i];
		json_array_append_new(rcpts, json_pack("{s:s, s:n}", "email", e->addr,
						       "parameters"));
		json_object_set_new(ds, e->addr, json_pack(
			"{s:s, s:s, s:s}", "smtpReply",
			e->last_reply && e->last_reply[0] ? e->last_reply : "250 2.0.0 queued",
			"delivered", "queued", "displayed", "unknown"));
	}
	json_t *o = json_pack("{s:s, s:o, s:n, s:n, s:{s:{s:s, s:n}, s:o}, s:o, s:s, s:o, "
			      "s:[], s:[]}",
			      "id", id, "identityId", ident, "emailId", "threadId",
			      "envelope", "mailFrom", "email", q->sender, "parameters",
			      "rcptTo", rcpts, "sendAt", utcdate(q->created), "undoStatus", "final",
			      "deliveryStatus", ds, "dsnBlobIds", "mdnBlobIds");
	if (props) {
		const char *k;
		json_t *v;
		void *tmp;
		json_object_foreach_safe(o, tmp, k, v) {
			if (strcmp(k, "id") != 0 && !json_object_get(props, k))
				json_object_del(o, k);
		}
	}
	return o;
}

/* "s" + a queue id (16 upper-case hex or alphanumerics). */
static bool submission_id_parse(const char *id, char qid[17])
{
	if (id == NULL || id[0] != 's' || strlen(id) != 17)
		return false;
	for (size_t i = 1; i < 17; i++)
		if (!((id[i] >= '0' && id[i] <= '9') || (id[i] >= 'A' && id[i] <= 'Z') ||
		      (id[i] >= 'a' && id[i] <= 'z')))
			return false;
	memcpy(qid, id + 1, 17);
	return true;
}

json_t *jmap_submission_get(const struct jmap_mail_ctx *c, json_t *args, const char **type_r,
			    const char **desc_r)
{
	json_t *ids, *props;
	if (get_args(c, args, submission_props, &ids, &props, type_r, desc_r) < 0)
		return NULL;
	struct idlist l;
	struct qsubs all;
	if (idlist_load(c, &l) < 0) {
		json_decref(props);
		*type_r = "serverFail";
		*desc_r = "the store is unavailable";
		return NULL;
	}
	if (qsubs_load(c, &l, NULL, &all) < 0) {
		idlist_free(&l);
		json_decref(props);
		*type_r = "serverFail";
		*desc_r = "the queue cannot be read";
		return NULL;
	}
	char state[20];
	submission_state(&all, state);
	json_t *list = json_array(), *not_found = json_array();
	if (ids) {
		size_t i;
		json_t *v;
		json_array_foreach(ids, i, v) {
			char qid[17];
			const struct qsub *hit = NULL;
			if (submission_id_parse(json_string_value(v), qid))
				for (size_t k = 0; k < all.n && !hit; k++)
					if (strcmp(all.v[k].qid, qid) == 0)
						hit = &all.v[k];
			if (hit)
				json_array_append_new(list, submission_json(&all, hit, &l, props));
			else
				json_array_append(not_found, v);
		}
	} else {
		for (size_t k = 0; k < all.n && k < c->max_objects_in_get; k++)
			json_array_append_new(list, submission_json(&all, &all.v[k], &l, props));
	}
	qsubs_free(&all);
	idlist_free(&l);
	json_decref(props);
	return json_pack("{s:s, s:s, s:o, s:o}", "accountId", c->acct, "state", state, "list",
			 list, "notFound", not_found);
}

/* The current EmailSubmission state: 0 / -1. */
static int submission_state_read(const struct jmap_mail_ctx *c, char out[20])
{
	struct idlist l;
	struct qsubs all;
	if (idlist_load(c, &l) < 0)
		return -1;
	if (qsubs_load(c, &l, NULL, &all) < 0) {
		idlist_free(&l);
		return -1;
	}
	submission_state(&all, out);
	qsubs_free(&all);
	idlist_free(&l);
	return 0;
}

json_t *jmap_submission_changes(const struct jmap_mail_ctx *c, json_t *args,
				const char **type_r, const char **desc_r)
{
	char state[20];
	if (submission_state_read(c, state) < 0) {
		*type_r = "serverFail";
		*desc_r = "the queue cannot be read";
		return NULL;
	}
	return changes_by_state(c, args, state, type_r, desc_r);
}

json_t *jmap_submission_query(const struct jmap_mail_ctx *c, json_t *args,
			      const char **type_r, const char **desc_r)
{
	json_t *filter = json_object_get(args, "filter"), *sort = json_object_get(args, "sort");
	if (filter && !json_is_null(filter) &&
	    (!json_is_object(filter) || json_object_size(filter) > 0)) {
		*type_r = "unsupportedFilter";
		*desc_r = "EmailSubmission/query takes no filter";
		return NULL;
	}
	if (sort && !json_is_null(sort) && (!json_is_array(sort) || json_array_size(sort) > 0)) {
		*type_r = "unsupportedSort";
		*desc_r = "EmailSubmission/query lists the newest first, unsorted otherwise";
		return NULL;
	}
	json_t *pos = json_object_get(args, "position"), *lim = json_object_get(args, "limit");
	if ((pos && !json_is_null(pos) && !json_is_integer(pos)) ||
	    (lim && !json_is_null(lim) && (!json_is_integer(lim) || json_integer_value(lim) < 0))) {
		*type_r = "invalidArguments";
		*desc_r = "position must be an integer, limit a non-negative one";
		return NULL;
	}
	struct idlist l;
	struct qsubs all;
	if (idlist_load(c, &l) < 0) {
		*type_r = "serverFail";
		*desc_r = "the store is unavailable";
		return NULL;
	}
	if (qsubs_load(c, &l, NULL, &all) < 0) {
		idlist_free(&l);
		*type_r = "serverFail";
		*desc_r = "the queue cannot be read";
		return NULL;
	}
	char state[20];
	submission_state(&all, state);
	int64_t total = (int64_t)all.n, p = pos && json_is_integer(pos)
					     ? (int64_t)json_integer_value(pos) : 0;
	if (p < 0)
		p = total + p < 0 ? 0 : total + p;
	if (p > total)
		p = total;
	int64_t max = lim && json_is_integer(lim) ? (int64_t)json_integer_value(lim) : total;
	json_t *ids = json_array();
	for (int64_t i = p; i < total && i - p < max; i++) {
		char id[20];
		snprintf(id, sizeof id, "s%s", all.v[i].qid);
		json_array_append_new(ids, json_string(id));
	}
	qsubs_free(&all);
	idlist_free(&l);
	return json_pack("{s:s, s:s, s:b, s:I, s:o, s:I}", "accountId", c->acct, "queryState",
			 state, "canCalculateChanges", 0, "position", (json_int_t)p, "ids", ids,
			 "total", (json_int_t)total);
}

/* ---- EmailSubmission/set create ---- */

/* The recipients of one submission, as SMTP's RCPT would resolve them. */
struct rcpts {
	char **addr;                /* envelope rcptTo, canonical, distinct */
	size_t n;
	int64_t *mailboxes;         /* local INBOXes (distinct) */
	const char **mailbox_addr;  /* the rcptTo that led to each (in addr) */
	size_t nmailboxes;
	struct queue_rcpt_in *queued; /* remote recipients and local lists */
	char **queued_addr;
	size_t nqueued;
	bool utf8;
};

static void rcpts_free(struct rcpts *r)
{
	for (size_t i = 0; i < r->n; i++)
		free(r->addr[i]);
	for (size_t i = 0; i < r->nqueued; i++)
		free(r->queued_addr[i]);
	free(r->addr);
	free(r->mailboxes);
	free(r->mailbox_addr);
	free(r->queued);
	free(r->queued_addr);
	memset(r, 0, sizeof *r);
}

/* A recipient as SMTP RCPT would take it: 0 syntax fine (canonical form in
 * out), -1 not an address we could send to. */
static int addr_check(const char *in, char out[ADDR_TEXT_MAX], bool *utf8_r)
{
	char path[ADDR_TEXT_MAX + 4];
	struct mail_addr a;
	enum addr_error e;
	const char *why;
	size_t len = strlen(in);
	if (len == 0 || len > ADDR_PATH_MAX)
		return -1;
	int n = snprintf(path, sizeof path, "<%s>", in);
	if (n < 0 || (size_t)n >= sizeof path)
		return -1;
	if (addr_parse_path(path, (size_t)n, true, &a, &e, &why) != n || a.null || a.postmaster ||
	    addr_local_has_route_chars(&a) || a.domain[0] == '\0')
		return -1;
	addr_format(&a, out, ADDR_TEXT_MAX);
	if (a.utf8)
		*utf8_r = true;
	return 0;
}

struct collect {
	struct rcpts *r;
	json_t *bad;                /* addresses that are no addresses */
	size_t max;
	bool over;
};

static void rcpt_add(struct collect *k, const char *addr)
{
	char canon[ADDR_TEXT_MAX];
	if (k->over)
		return;
	if (addr_check(addr, canon, &k->r->utf8) < 0) {
		if (json_array_size(k->bad) < 100)
			json_array_append_new(k->bad, json_string(addr));
		return;
	}
	for (size_t i = 0; i < k->r->n; i++)
		if (str_ieq(k->r->addr[i], canon))
			return;
	if (k->r->n >= k->max) {
		k->over = true;
		return;
	}
	k->r->addr = xreallocarray(k->r->addr, k->r->n + 1, sizeof *k->r->addr);
	k->r->addr[k->r->n++] = xstrdup(canon);
}

static void field_cb(const char *addr, void *arg)
{
	rcpt_add(arg, addr);
}

struct from_check {
	const struct idlist *l;
	char delim;
	size_t n;
	bool ok;
	char first[SUBMIT_ADDR_MAX + 1];
};

static void from_cb(const char *addr, void *arg)
{
	struct from_check *f = arg;
	if (f->n++ == 0)
		snprintf(f->first, sizeof f->first, "%s", addr);
	if (owns(f->l, f->delim, addr))
		f->ok = true;
}

/* One submission being made. */
struct sub {
	const struct jmap_mail_ctx *c;
	const struct jmap_submit_env *env;
	const struct idlist *ids;
	const char *identity;
	int64_t body_id;
	char mail_from[ADDR_TEXT_MAX];
	struct rcpts r;
	struct buf msg;             /* the stored message, then the one sent */
	char qid[17];
	int64_t now;
};

static void sub_free(struct sub *s)
{
	rcpts_free(&s->r);
	buf_free(&s->msg);
}

static json_t *props_error(const char *type, const char *prop, const char *desc)
{
	json_t *e = set_error(type, desc);
	json_object_set_new(e, "properties", json_pack("[s]", prop));
	return e;
}

/* Read the Email's message into s->msg: NULL, or the SetError. */
static json_t *read_email(struct sub *s)
{
	struct store_jmap_email e;
	int rc = store_jmap_email(s->c->st, s->c->account_id, s->body_id, &e);
	if (rc < 0)
		return set_error("serverFail", "the store is unavailable");
	if (rc == 0)
		return props_error("invalidProperties", "emailId", "no such Email");
	char path[4200];
	store_msg_path(s->c->st, e.path, path, sizeof path);
	int64_t size = e.size;
	store_jmap_email_free(&e);
	if (size > s->env->size_limit) {
		json_t *err = set_error("tooLarge", "the message is larger than "
					"message_size_limit");
		json_object_set_new(err, "maxSize", json_integer((json_int_t)s->env->size_limit));
		return err;
	}
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		log_error("jmap: submission: cannot open %s: %s", path, strerror(errno));
		return set_error("serverFail", "the message cannot be read");
	}
	buf_init(&s->msg, (size_t)s->env->size_limit);
	char chunk[65536];
	ssize_t n;
	while ((n = read(fd, chunk, sizeof chunk)) > 0) {
		if (buf_append(&s->msg, chunk, (size_t)n) < 0) {
			close(fd);
			json_t *err = set_error("tooLarge", "the message is larger than "
						"message_size_limit");
			json_object_set_new(err, "maxSize",
					    json_integer((json_int_t)s->env->size_limit));
			return err;
		}
	}
	int saved = errno;
	close(fd);
	if (n < 0) {
		log_error("jmap: submission: cannot read %s: %s", path, strerror(saved));
		return set_error("serverFail", "the message cannot be read");
	}
	return NULL;
}

/* The envelope: given, or made from the identity and To/Cc/Bcc.  NULL or
 * the SetError. */
static json_t *make_envelope(struct sub *s, json_t *env, size_t header_end)
{
	size_t max = JMAP_SUBMIT_RCPT_MAX;
	if (s->env->max_recipients > 0 && (uint64_t)s->env->max_recipients < max)
		max = (size_t)s->env->max_recipients;
	struct collect k = {.r = &s->r, .bad = json_array(), .max = max};
	json_t *err = NULL;
	if (env && !json_is_null(env)) {
		json_t *mf = json_object_get(env, "mailFrom"), *rt = json_object_get(env, "rcptTo");
		json_t *mfe = json_object_get(mf, "email"), *mfp = json_object_get(mf, "parameters");
		if (!json_is_object(env) || !json_is_object(mf) || !json_is_string(mfe) ||
		    !json_is_array(rt)) {
			err = props_error("invalidProperties", "envelope",
					  "envelope needs mailFrom {email} and rcptTo [{email}]");
			goto out;
		}
		if (mfp && !json_is_null(mfp) && json_object_size(mfp) > 0) {
			err = props_error("invalidProperties", "envelope/mailFrom/parameters",
					  "SMTP parameters are not supported");
			goto out;
		}
		bool utf8 = false;
		if (addr_check(json_string_value(mfe), s->mail_from, &utf8) < 0) {
			err = props_error("invalidProperties", "envelope/mailFrom",
					  "mailFrom is not an address");
			goto out;
		}
		if (utf8)
			s->r.utf8 = true;
		if (!owns(s->ids, s->env->delim, s->mail_from)) {
			err = set_error("forbiddenMailFrom", "mailFrom is not an address of this "
					"account");
			goto out;
		}
		size_t i;
		json_t *v;
		json_array_foreach(rt, i, v) {
			json_t *e = json_object_get(v, "email"), *p = json_object_get(v, "parameters");
			if (!json_is_string(e)) {
				err = props_error("invalidProperties", "envelope/rcptTo",
						  "every rcptTo needs an email");
				goto out;
			}
			if (p && !json_is_null(p) && json_object_size(p) > 0) {
				err = props_error("invalidProperties", "envelope/rcptTo",
						  "SMTP parameters are not supported");
				goto out;
			}
			rcpt_add(&k, json_string_value(e));
		}
	} else {
		snprintf(s->mail_from, sizeof s->mail_from, "%s", s->identity);
		static const char *const names[] = {"To", "Cc", "Bcc"};
		if (submit_field_addresses(s->msg.data, header_end, names, 3, field_cb, &k) < 0) {
			err = set_error("invalidEmail", "To, Cc or Bcc does not parse");
			json_object_set_new(err, "properties", json_pack("[s,s,s]", "to", "cc",
									 "bcc"));
			goto out;
		}
	}
	if (json_array_size(k.bad) > 0) {
		err = set_error("invalidRecipients", "not addresses mail can be sent to");
		json_object_set_new(err, "invalidRecipients", json_incref(k.bad));
	} else if (k.over) {
		err = set_error("tooManyRecipients", "more recipients than the server sends to");
		json_object_set_new(err, "maxRecipients", json_integer((json_int_t)max));
	} else if (s->r.n == 0) {
		err = set_error("noRecipients", "the message has no recipient");
	}
out:
	json_decref(k.bad);
	return err;
}

/* The recipients through the store, like SMTP's RCPT: local INBOXes,
 * queued remote addresses and lists.  NULL or the SetError. */
static json_t *resolve(struct sub *s)
{
	json_t *bad = json_array(), *err = NULL;
	struct rcpts *r = &s->r;
	r->mailboxes = xreallocarray(NULL, r->n + 1, sizeof *r->mailboxes);
	r->mailbox_addr = xreallocarray(NULL, r->n + 1, sizeof *r->mailbox_addr);
	for (size_t i = 0; i < r->n && err == NULL; i++) {
		struct rcpt_expansion x = {0};
		const char *addr = r->addr[i];
		if (store_expand_rcpt(s->c->st, addr, s->env->delim, &x) < 0) {
			err = set_error("serverFail", "recipient lookup failed, try again");
			break;
		}
		const char *at = strrchr(addr, '@');
		if (x.status == RCPT_UNKNOWN_USER && s->env->postmaster[0] && at &&
		    (size_t)(at - addr) == 10 && strncasecmp(addr, "postmaster", 10) == 0) {
			rcpt_expansion_free(&x);
			if (store_expand_rcpt(s->c->st, s->env->postmaster, s->env->delim, &x) < 0) {
				err = set_error("serverFail", "recipient lookup failed, try again");
				break;
			}
			if (x.status == RCPT_NOT_LOCAL)
				x.status = RCPT_UNKNOWN_USER;
		}
		if (x.status == RCPT_UNKNOWN_USER) {
			json_array_append_new(bad, json_string(addr));
		} else if (x.status == RCPT_NOT_LOCAL) {
			r->queued = xreallocarray(r->queued, r->nqueued + 1, sizeof *r->queued);
			r->queued_addr = xreallocarray(r->queued_addr, r->nqueued + 1,
						       sizeof *r->queued_addr);
			r->queued_addr[r->nqueued] = xstrdup(addr);
			r->queued[r->nqueued++] = (struct queue_rcpt_in){0};
		} else {
			if (x.capped)
				log_warn("jmap: submission: <%s> expands to more than %d addresses "
					 "or %d levels of aliases; the rest are left out", addr,
					 STORE_EXPAND_MAX, STORE_EXPAND_DEPTH);
			for (size_t t = 0; t < x.n; t++) {
				const struct rcpt_target *tg = &x.v[t];
				if (tg->kind == TARGET_LOCAL) {
					if (tg->quota > 0 && tg->used + (int64_t)s->msg.len > tg->quota) {
						json_array_append_new(bad, json_string(addr));
						continue;
					}
					bool dup = false;
					for (size_t m = 0; m < r->nmailboxes; m++)
						dup = dup || r->mailboxes[m] == tg->mailbox_id;
					if (!dup) {
						size_t m = r->nmailboxes++;
						r->mailboxes = xreallocarray(r->mailboxes,
									     r->nmailboxes,
									     sizeof *r->mailboxes);
						r->mailbox_addr = xreallocarray(
							r->mailbox_addr, r->nmailboxes,
							sizeof *r->mailbox_addr);
						r->mailboxes[m] = tg->mailbox_id;
						r->mailbox_addr[m] = addr;
					}
					continue;
				}
				bool dup = false;
				for (size_t m = 0; m < r->nqueued; m++)
					dup = dup || str_ieq(r->queued_addr[m], tg->address);
				if (dup)
					continue;
				r->queued = xreallocarray(r->queued, r->nqueued + 1, sizeof *r->queued);
				r->queued_addr = xreallocarray(r->queued_addr, r->nqueued + 1,
							       sizeof *r->queued_addr);
				r->queued_addr[r->nqueued] = xstrdup(tg->address);
				r->queued[r->nqueued++] = (struct queue_rcpt_in){
					.expand = tg->kind == TARGET_LIST};
			}
		}
		rcpt_expansion_free(&x);
	}
	if (err == NULL && json_array_size(bad) > 0) {
		err = set_error("invalidRecipients", "no such user here, or the mailbox is full");
		json_object_set_new(err, "invalidRecipients", json_incref(bad));
	}
	json_decref(bad);
	for (size_t i = 0; i < r->nqueued; i++)
		r->queued[i].addr = r->queued_addr[i];
	return err;
}

/* deliveryStatus of a submission just made: local recipients have it,
 * the others are queued. */
static json_t *delivery_status(const struct rcpts *r)
{
	json_t *o = json_object();
	for (size_t i = 0; i < r->nmailboxes; i++)
		json_object_set_new(o, r->mailbox_addr[i], json_pack(
			"{s:s, s:s, s:s}", "smtpReply", "250 2.0.0 delivered to a local mailbox",
			"delivered", "yes", "displayed", "unknown"));
	for (size_t i = 0; i < r->nqueued; i++)
		json_object_set_new(o, r->queued_addr[i], json_pack(
			"{s:s, s:s, s:s}", "smtpReply", "250 2.0.0 queued", "delivered", "queued",
			"displayed", "unknown"));
	return o;
}

/* Check, fix, write and queue one submission: NULL (s->qid set) or the
 * SetError. */
static json_t *submit_one(struct sub *s, json_t *env)
{
	json_t *err = read_email(s);
	if (err)
		return err;
	struct submit_fix f;
	if (submit_scan(s->msg.data, s->msg.len, &f) < 0)
		return props_error("invalidEmail", "headers", "the header block cannot be "
				   "submitted (too long, too many Bcc, or starts with a blank)");
	struct from_check fc = {.l = s->ids, .delim = s->env->delim};
	if (submit_from_addresses(s->msg.data, f.header_end, from_cb, &fc) < 0)
		return props_error("invalidEmail", "from", "From or Sender does not parse");
	if (!f.has_from || fc.n == 0)
		return props_error("invalidEmail", "from", "the message has no From address");
	if (!fc.ok)
		return set_error("forbiddenFrom", "From is not an address of this account");
	if ((err = make_envelope(s, env, f.header_end)) != NULL)
		return err;
	if ((err = resolve(s)) != NULL)
		return err;

	queue_id_new(s->qid);
	s->now = now_unix();
	char date[64], local[40];
	rfc5322_date(s->now, date, sizeof date);
	snprintf(local, sizeof local, "%s.yubin", s->qid);
	struct buf out;
	buf_init(&out, (size_t)s->env->size_limit + 8192);
	buf_printf(&out, "Return-Path: <%s>\r\n", s->mail_from);
	buf_printf(&out, "Received: ");
	if (s->env->peer && s->env->peer[0])
		buf_printf(&out, "from [%s%s]\r\n\t", strchr(s->env->peer, ':') ? "IPv6:" : "",
			   s->env->peer);
	buf_printf(&out, "by %s (Yubin) with JMAP id %s", s->env->hostname, s->qid);
	if (s->r.n == 1)
		buf_printf(&out, "\r\n\tfor <%s>", s->r.addr[0]);
	buf_printf(&out, "; %s\r\n", date);
	size_t head = out.len;
	if (submit_rewrite(s->msg.data, s->msg.len, &f, s->now, local, s->env->hostname,
			   &out) < 0) {
		buf_free(&out);
		json_t *e = set_error("tooLarge", "the message with its added header fields is "
				      "larger than message_size_limit");
		json_object_set_new(e, "maxSize", json_integer((json_int_t)s->env->size_limit));
		return e;
	}
	if (out.len - head > (size_t)s->env->size_limit) {
		buf_free(&out);
		json_t *e = set_error("tooLarge", "the message with its added header fields is "
				      "larger than message_size_limit");
		json_object_set_new(e, "maxSize", json_integer((json_int_t)s->env->size_limit));
		return e;
	}
	/* What an SMTP client would declare: BODY=8BITMIME for any 8-bit
	 * byte, SMTPUTF8 for UTF-8 in the header (RFC 6532) or an address. */
	bool eight = false, utf8 = s->r.utf8;
	for (size_t i = 0; i < s->msg.len && !eight; i++)
		eight = (unsigned char)s->msg.data[i] >= 0x80;
	for (size_t i = 0; i < f.header_end && eight && !utf8; i++)
		utf8 = (unsigned char)s->msg.data[i] >= 0x80;
	buf_free(&s->msg);

	char relpath[64], *why = NULL;
	if (store_jmapset_write_body(s->c->st, out.data, out.len, relpath, &why) < 0) {
		log_error("jmap: submission %s: %s", s->qid, why ? why : "cannot write");
		free(why);
		buf_free(&out);
		return set_error("serverFail", "the message cannot be stored");
	}
	size_t size = out.len;
	buf_free(&out);
	struct queue_msg_in q = {
		.qid = s->qid,
		.sender = s->mail_from,
		.skip = (int64_t)strlen("Return-Path: <>\r\n") + (int64_t)strlen(s->mail_from),
		.flags = (utf8 ? QUEUE_SMTPUTF8 : 0) | (eight ? QUEUE_8BITMIME : 0),
		.rcpts = s->r.queued,
		.nrcpts = s->r.nqueued,
	};
	uint32_t *uids = xreallocarray(NULL, s->r.nmailboxes + 1, sizeof *uids);
	int64_t body = 0;
	struct store_txn *t = store_txn_begin(s->c->st, &why);
	int rc = t ? store_txn_add_body(t, relpath, (int64_t)size, &body, &why) : -1;
	for (size_t i = 0; rc == 0 && i < s->r.nmailboxes; i++)
		rc = store_txn_append(t, s->r.mailboxes[i], body, 0, s->now, &uids[i], &why);
	if (rc == 0 && q.nrcpts > 0)
		rc = store_txn_queue_add(t, body, &q, s->now, &why);
	if (rc == 0) {
		rc = store_txn_commit(t, &why);
	} else if (t) {
		store_txn_rollback(t);
	}
	if (rc < 0) {
		log_error("%s: submission failed (jmap account=%s): %s", s->qid, s->c->address,
			  why ? why : "store error");
		free(why);
		free(uids);
		store_jmapset_discard(s->c->st, relpath);
		return set_error("serverFail", "the message cannot be queued");
	}
	log_info("%s: from=<%s>, size=%zu, nrcpt=%zu, jmap account=%s", s->qid, s->mail_from,
		 size, s->r.n, s->c->address);
	for (size_t i = 0; i < s->r.nmailboxes; i++) {
		jmap_touched_add(s->c->touched, s->r.mailboxes[i]);
		log_info("%s: to=<%s>, relay=local, status=sent (delivered to %s uid=%" PRIu32
			 ", mailbox %lld)", s->qid, s->r.mailbox_addr[i], STORE_INBOX, uids[i],
			 (long long)s->r.mailboxes[i]);
	}
	for (size_t i = 0; i < s->r.nqueued; i++)
		log_info("%s: to=<%s>, status=queued (%s)", s->qid, s->r.queued_addr[i],
			 s->r.queued[i].expand ? "a list: for its members"
					       : "for delivery to a remote server");
	if (s->r.nqueued > 0)
		s->c->touched->queue_kick = true;
	free(uids);
	return NULL;
}

/* "#x" -> what the request created as x; anything else as it is. */
static const char *resolve_ref(const struct jmap_mail_ctx *c, const char *id)
{
	if (id && id[0] == '#')
		return json_string_value(json_object_get(c->created_ids, id + 1));
	return id;
}

/* onSuccessUpdateEmail / onSuccessDestroyEmail: the Email/set arguments
 * for the submissions that were created (done: creation id -> email id),
 * or NULL when there is nothing to do. */
static json_t *on_success_args(const struct jmap_mail_ctx *c, json_t *args, json_t *done)
{
	json_t *upd = json_object_get(args, "onSuccessUpdateEmail");
	json_t *des = json_object_get(args, "onSuccessDestroyEmail");
	json_t *u = json_object(), *d = json_array();
	const char *k;
	json_t *v;
	size_t i;
	json_object_foreach(upd, k, v) {
		const char *email = k[0] == '#' ? json_string_value(json_object_get(done, k + 1))
						: NULL;
		if (email && json_is_object(v))
			json_object_set(u, email, v);
	}
	json_array_foreach(des, i, v) {
		const char *s = json_string_value(v);
		const char *email = s && s[0] == '#' ? json_string_value(json_object_get(done, s + 1))
						     : NULL;
		if (email)
			json_array_append_new(d, json_string(email));
	}
	if (json_object_size(u) == 0 && json_array_size(d) == 0) {
		json_decref(u);
		json_decref(d);
		return NULL;
	}
	json_t *a = json_pack("{s:s}", "accountId", c->acct);
	if (json_object_size(u) > 0)
		json_object_set(a, "update", u);
	if (json_array_size(d) > 0)
		json_object_set(a, "destroy", d);
	json_decref(u);
	json_decref(d);
	return a;
}

json_t *jmap_submission_set(const struct jmap_mail_ctx *c, const struct jmap_submit_env *env,
			    json_t *args, json_t **implicit_r, const char **type_r,
			    const char **desc_r)
{
	*implicit_r = NULL;
	if (set_shape(args, type_r, desc_r) < 0)
		return NULL;
	json_t *osu = json_object_get(args, "onSuccessUpdateEmail");
	json_t *osd = json_object_get(args, "onSuccessDestroyEmail");
	if ((osu && !json_is_null(osu) && !json_is_object(osu)) ||
	    (osd && !json_is_null(osd) && !json_is_array(osd))) {
		*type_r = "invalidArguments";
		*desc_r = "onSuccessUpdateEmail must be an object, onSuccessDestroyEmail an array";
		return NULL;
	}
	json_t *create = json_object_get(args, "create");
	if (json_object_size(create) > SUBMIT_CREATE_MAX) {
		*type_r = "requestTooLarge";
		*desc_r = "more than 64 submissions in one call";
		return NULL;
	}
	struct idlist l;
	if (idlist_load(c, &l) < 0) {
		*type_r = "serverFail";
		*desc_r = "the store is unavailable";
		return NULL;
	}
	char old_state[20];
	if (submission_state_read(c, old_state) < 0) {
		idlist_free(&l);
		*type_r = "serverFail";
		*desc_r = "the queue cannot be read";
		return NULL;
	}
	json_t *iis = json_object_get(args, "ifInState");
	if (iis && !json_is_null(iis) &&
	    (!json_is_string(iis) || strcmp(json_string_value(iis), old_state) != 0)) {
		idlist_free(&l);
		*type_r = "stateMismatch";
		*desc_r = NULL;
		return NULL;
	}
	json_t *created = json_object(), *nc = json_object(), *done = json_object();
	const char *cid;
	json_t *obj;
	json_object_foreach(create, cid, obj) {
		static const char *const known[] = {"identityId", "emailId", "envelope", NULL};
		const char *k;
		json_t *v, *err = NULL;
		if (!json_is_object(obj)) {
			json_object_set_new(nc, cid, set_error("invalidProperties",
							       "a submission is an object"));
			continue;
		}
		json_object_foreach(obj, k, v) {
			bool ok = false;
			for (size_t i = 0; known[i]; i++)
				ok = ok || strcmp(k, known[i]) == 0;
			/* Server-set ones may be given as their default. */
			if (!ok && strcmp(k, "undoStatus") == 0 && json_is_string(v) &&
			    strcmp(json_string_value(v), "final") == 0)
				ok = true;
			if (!ok && !err)
				err = props_error("invalidProperties", k, "not settable here");
		}
		const char *iid = resolve_ref(c, json_string_value(json_object_get(obj, "identityId")));
		const char *eid = resolve_ref(c, json_string_value(json_object_get(obj, "emailId")));
		struct sub s = {.c = c, .env = env, .ids = &l};
		if (!err && (s.identity = identity_find(&l, iid)) == NULL)
			err = props_error("invalidProperties", "identityId", "no such identity");
		if (!err && (eid == NULL || !jmap_email_id_parse(eid, &s.body_id)))
			err = props_error("invalidProperties", "emailId", "no such Email");
		if (!err)
			err = submit_one(&s, json_object_get(obj, "envelope"));
		if (err) {
			json_object_set_new(nc, cid, err);
		} else {
			char id[20], tid[24];
			snprintf(id, sizeof id, "s%s", s.qid);
			snprintf(tid, sizeof tid, "t%lld", (long long)s.body_id);
			json_object_set_new(created, cid, json_pack(
				"{s:s, s:s, s:o, s:s, s:o, s:[], s:[]}", "id", id, "threadId", tid,
				"sendAt", utcdate(s.now), "undoStatus", "final", "deliveryStatus",
				delivery_status(&s.r), "dsnBlobIds", "mdnBlobIds"));
			/* eid may be the created_ids entry that this one replaces. */
			json_object_set_new(done, cid, json_string(eid));
			json_object_set_new(c->created_ids, cid, json_string(id));
		}
		sub_free(&s);
	}
	json_t *nu = json_object(), *nd = json_object();
	const char *k;
	json_t *v;
	size_t i;
	json_object_foreach(json_object_get(args, "update"), k, v)
		json_object_set_new(nu, k, set_error("cannotUnsend", "mail is sent at once: "
						     "undoStatus is final"));
	json_array_foreach(json_object_get(args, "destroy"), i, v)
		json_object_set_new(nd, json_string_value(v),
				    set_error("forbidden", "submissions are not kept apart from "
					      "the queue"));
	idlist_free(&l);
	char new_state[20];
	if (submission_state_read(c, new_state) < 0)
		memcpy(new_state, old_state, sizeof new_state);
	json_t *res = json_pack("{s:s, s:s, s:s, s:o, s:o, s:o, s:o}", "accountId", c->acct,
				"oldState", old_state, "newState", new_state, "created", created,
				"notCreated", nc, "notUpdated", nu, "notDestroyed", nd);
	json_t *ea = on_success_args(c, args, done);
	json_decref(done);
	if (ea) {
		const char *t = "serverFail", *d = NULL;
		json_t *r = jmap_email_set(c, ea, &t, &d);
		if (r) {
			*implicit_r = json_pack("[s, o]", "Email/set", r);
		} else {
			json_t *e = json_pack("{s:s}", "type", t);
			if (d)
				json_object_set_new(e, "description", json_string(d));
			*implicit_r = json_pack("[s, o]", "error", e);
		}
		json_decref(ea);
	}
	return res;
}
