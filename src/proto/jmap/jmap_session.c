/* jmap_session.c - the JMAP resources: login, session object, API requests,
 * blob downloads, the webmail's HTML view (/jmap/view/, jmap_view.h).
 *
 * Ids: the account is "a" + accounts.id, a mailbox "m" + mailboxes.id;
 * emails, threads and blobs are jmap_mail.h's.  States come from the
 * store's MODSEQs (jmap_mail_state); Mailbox/get's adds a digest of the
 * names and subscriptions, which no MODSEQ follows. */
#include "proto/jmap/jmap_session.h"

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <jansson.h>

#include "auth/auth.h"
#include "core/conf.h"
#include "core/http.h"
#include "core/log.h"
#include "core/util.h"
#include "proto/http_login.h"
#include "proto/jmap/jmap_mail.h"
#include "proto/jmap/jmap_push.h"
#include "proto/jmap/jmap_ref.h"
#include "proto/jmap/jmap_set.h"
#include "proto/jmap/jmap_submit.h"
#include "proto/jmap/jmap_view.h"
#include "proto/server.h"
#include "store/store.h"
#include "store/store_jmap.h"

#define CAP_CORE "urn:ietf:params:jmap:core"
#define CAP_MAIL "urn:ietf:params:jmap:mail"
#define CAP_SUBMISSION "urn:ietf:params:jmap:submission"
#define PROBLEM_PREFIX "urn:ietf:params:jmap:error:"
/* An Authorization header longer than this is refused unread. */
#define AUTH_HEADER_MAX 1024
#define USER_MAX 330

struct jmap {
	struct server *srv;
	struct http_holds *holds;   /* refused logins held back (http_login.h) */
	jmap_cookie_auth_fn *cookie_auth;   /* the page's session (jmap_set_cookie_auth) */
	void *cookie_arg;
	struct jmap_push *push;     /* the event source (jmap_push.c) */
};

enum resource { RES_SESSION, RES_API, RES_DOWNLOAD, RES_VIEW, RES_EVENTS, RES_UPLOAD };

struct job {
	struct jmap *jm;
	struct http_request *r;
	enum resource res;
	char *address, *password;
	size_t pwlen;
	struct account acct;
	bool cached;
	int rc;
	char countkey[USER_MAX + 8];
	/* API: the body (a copy: h2o may drop its buffer while the job runs)
	 * and the answer */
	char *body;
	size_t body_len;
	char base[300];
	int status;
	const char *ctype;
	char *out;
	uint64_t started;
	/* download: the path's parts and the blob read */
	char *dl_account, *dl_blob, *dl_name, *dl_type;
	struct buf blob;
	int blob_rc;
	/* upload: dl_account, dl_type; the new blob id or why it was refused */
	char up_blob[JMAP_UPLOAD_ID_LEN + 1];
	char *up_error;
	int up_rc;
	/* view (jmap_view.h): dl_account, dl_blob, dl_name "0" or "1" (images) */
	struct jmap_view view;
	/* API: the mailboxes the methods changed, told on the loop */
	struct jmap_touched touched;
};

/* ---- answers ---- */

static void respond_json(struct http_request *r, int status, const char *ctype, json_t *v)
{
	char *text = json_dumps(v, JSON_COMPACT);
	http_respond(r, status, ctype, text, text ? strlen(text) : 0);
	free(text);
}

static json_t *problem_new(int status, const char *type, const char *detail)
{
	char t[128];
	if (strchr(type, ':'))
		snprintf(t, sizeof t, "%s", type);
	else
		snprintf(t, sizeof t, PROBLEM_PREFIX "%s", type);
	return json_pack("{s:s, s:i, s:s}", "type", t, "status", status, "detail", detail);
}

static void problem(struct http_request *r, int status, const char *type, const char *detail)
{
	json_t *p = problem_new(status, type, detail);
	respond_json(r, status, "application/problem+json", p);
	json_decref(p);
}

static void unauthorized(struct http_request *r, const char *detail)
{
	http_request_add_header(r, "www-authenticate", "Basic realm=\"yubin\", charset=\"UTF-8\"");
	problem(r, 401, "about:blank", detail);
}

static void refuse_login(struct http_request *r)
{
	unauthorized(r, "authentication failed");
}

/* scheme://authority of the request, for the session's URLs.  A Host that
 * is not a plain host[:port] falls back to the configured hostname. */
static void base_url(const struct jmap *jm, const struct http_request *r, char *out, size_t sz)
{
	const char *a = r->authority;
	bool ok = a[0] != '\0' && strlen(a) < 256;
	for (const char *p = a; ok && *p; p++)
		ok = (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
		     (*p >= '0' && *p <= '9') || strchr(".-:[]", *p) != NULL;
	snprintf(out, sz, "%s://%s", r->tls ? "https" : "http", ok ? a : jm->srv->cfg->hostname);
}

static uint64_t fnv(uint64_t h, const void *p, size_t n)
{
	const unsigned char *b = p;
	for (size_t i = 0; i < n; i++)
		h = (h ^ b[i]) * 1099511628211ull;
	return h;
}
#define FNV_INIT 1469598103934665603ull

/* ---- the session resource (RFC 8620 2) ---- */

static json_t *session_object(const struct jmap *jm, const struct job *j)
{
	const struct conf *cfg = jm->srv->cfg;
	char acct[32], url[600], state[20];
	const char *base = j->base;
	snprintf(acct, sizeof acct, "a%lld", (long long)j->acct.id);
	uint64_t h = fnv(FNV_INIT, acct, strlen(acct));
	h = fnv(h, j->acct.address, strlen(j->acct.address));
	snprintf(state, sizeof state, "%016llx", (unsigned long long)h);

	json_t *core = json_pack("{s:I, s:i, s:i, s:i, s:i, s:i, s:i, s:[]}",
				 "maxSizeUpload", (json_int_t)JMAP_MAX_SIZE_REQUEST,
				 "maxConcurrentUpload", 4,
				 "maxSizeRequest", JMAP_MAX_SIZE_REQUEST,
				 "maxConcurrentRequests", JMAP_MAX_CONCURRENT_REQUESTS,
				 "maxCallsInRequest", JMAP_MAX_CALLS_IN_REQUEST,
				 "maxObjectsInGet", JMAP_MAX_OBJECTS_IN_GET,
				 "maxObjectsInSet", JMAP_MAX_OBJECTS_IN_SET,
				 "collationAlgorithms");
	json_t *mail = json_pack("{s:i, s:n, s:i, s:I, s:[], s:b}",
				 "maxMailboxesPerEmail", 100,
				 "maxMailboxDepth",
				 "maxSizeMailboxName", 255,
				 "maxSizeAttachmentsPerEmail", (json_int_t)cfg->message_size_limit,
				 "emailQuerySortOptions",
				 "mayCreateTopLevelMailbox", 1);
	json_array_append_new(json_object_get(mail, "emailQuerySortOptions"),
			      json_string("receivedAt"));
	json_array_append_new(json_object_get(mail, "emailQuerySortOptions"),
			      json_string("size"));
	for (const char *const *p = (const char *const[]){"sentAt", "from", "subject", NULL};
	     *p; p++)
		json_array_append_new(json_object_get(mail, "emailQuerySortOptions"),
				      json_string(*p));
	json_t *s = json_object();
	json_object_set_new(s, "capabilities",
			    json_pack("{s:o, s:{}, s:{}}", CAP_CORE, core, CAP_MAIL,
				      CAP_SUBMISSION));
	json_object_set_new(s, "accounts",
			    json_pack("{s:{s:s, s:b, s:b, s:{s:o, s:{s:i, s:{}}}}}", acct, "name",
				      j->acct.address, "isPersonal", 1, "isReadOnly", 0,
				      "accountCapabilities", CAP_MAIL, mail, CAP_SUBMISSION,
				      "maxDelayedSend", 0, "submissionExtensions"));
	json_object_set_new(s, "primaryAccounts", json_pack("{s:s, s:s}", CAP_MAIL, acct,
							    CAP_SUBMISSION, acct));
	json_object_set_new(s, "username", json_string(j->acct.address));
	snprintf(url, sizeof url, "%s/jmap/api/", base);
	json_object_set_new(s, "apiUrl", json_string(url));
	snprintf(url, sizeof url, "%s/jmap/download/{accountId}/{blobId}/{name}?accept={type}",
		 base);
	json_object_set_new(s, "downloadUrl", json_string(url));
	snprintf(url, sizeof url, "%s/jmap/upload/{accountId}/", base);
	json_object_set_new(s, "uploadUrl", json_string(url));
	snprintf(url, sizeof url,
		 "%s/jmap/eventsource/?types={types}&closeafter={closeafter}&ping={ping}", base);
	json_object_set_new(s, "eventSourceUrl", json_string(url));
	json_object_set_new(s, "state", json_string(state));
	return s;
}

/* ---- API requests (RFC 8620 3) ---- */

struct call_ctx {
	struct jmap *jm;
	struct job *j;
	json_t *using;
	json_t *responses;
	json_t *created_ids;        /* the request's createdIds, added to by /set */
	char acct[32];
};

static void method_error(struct call_ctx *x, const char *call_id, const char *type,
			 const char *desc)
{
	json_t *a = json_pack("{s:s}", "type", type);
	if (desc)
		json_object_set_new(a, "description", json_string(desc));
	json_array_append_new(x->responses, json_pack("[s, o, s]", "error", a, call_id));
}

static void m_echo(struct call_ctx *x, json_t *args, const char *call_id)
{
	json_array_append_new(x->responses, json_pack("[s, O, s]", "Core/echo", args, call_id));
}

struct mbx_list {
	struct store_jmap_mailbox *v;
	size_t n;
};

/* Every mailbox of the account with its counts (pool thread).  0 / -1. */
static int mbx_load(struct store *st, int64_t account_id, struct mbx_list *l)
{
	char *err = NULL;
	if (store_jmap_mailboxes(st, account_id, &l->v, &l->n, &err) < 0) {
		log_error("jmap: reading the mailboxes of account %lld: %s",
			  (long long)account_id, err ? err : "store error");
		free(err);
		return -1;
	}
	return 0;
}

static void mbx_list_free(struct mbx_list *l)
{
	store_jmap_mailboxes_free(l->v, l->n);
	memset(l, 0, sizeof *l);
}

static int mbx_cmp_name(const void *key, const void *elem)
{
	return strcmp(key, ((const struct store_jmap_mailbox *)elem)->name);
}

static const char *const mailbox_props[] = {
	"id", "name", "parentId", "role", "sortOrder", "totalEmails", "unreadEmails",
	"totalThreads", "unreadThreads", "myRights", "isSubscribed", NULL,
};

static json_t *mbx_json(const struct mbx_list *l, const struct store_jmap_mailbox *m,
			json_t *props)
{
	const char *slash = strrchr(m->name, '/');
	const char *shortname = slash ? slash + 1 : m->name;
	json_t *parent = json_null();
	if (slash) {
		char *pname = xstrndup(m->name, (size_t)(slash - m->name));
		const struct store_jmap_mailbox *p = bsearch(pname, l->v, l->n, sizeof *l->v,
							     mbx_cmp_name);
		free(pname);
		if (p) {
			json_decref(parent);
			parent = json_sprintf("m%lld", (long long)p->id);
		}
	}
	json_t *role = json_null();
	bool inbox = strcmp(m->name, STORE_INBOX) == 0;
	if (inbox) {
		role = json_string("inbox");
	} else if (m->special_use && m->special_use[0] == '\\' && m->special_use[1]) {
		char r[32];
		size_t i = 0;
		for (const char *p = m->special_use + 1; *p && i + 1 < sizeof r; p++)
			r[i++] = (char)(*p >= 'A' && *p <= 'Z' ? *p + 32 : *p);
		r[i] = '\0';
		role = json_string(r);
	}
	/* No threading yet: every email is a thread of its own. */
	json_int_t total = m->total, unread = m->unread;
	bool rd = !m->noselect;
	json_t *o = json_object();
	json_object_set_new(o, "id", json_sprintf("m%lld", (long long)m->id));
	json_object_set_new(o, "name", json_string(shortname));
	json_object_set_new(o, "parentId", parent);
	json_object_set_new(o, "role", role);
	json_object_set_new(o, "sortOrder", json_integer(inbox ? 1 : 0));
	json_object_set_new(o, "totalEmails", json_integer(total));
	json_object_set_new(o, "unreadEmails", json_integer(unread));
	json_object_set_new(o, "totalThreads", json_integer(total));
	json_object_set_new(o, "unreadThreads", json_integer(unread));
	json_object_set_new(o, "myRights",
			    json_pack("{s:b, s:b, s:b, s:b, s:b, s:b, s:b, s:b, s:b}",
				      "mayReadItems", rd, "mayAddItems", rd, "mayRemoveItems", rd,
				      "maySetSeen", rd, "maySetKeywords", rd, "mayCreateChild", 1,
				      "mayRename", !inbox, "mayDelete", !inbox, "maySubmit", rd));
	json_object_set_new(o, "isSubscribed", json_boolean(m->subscribed));
	if (props) {
		const char *k;
		json_t *v;
		void *tmp;
		json_object_foreach_safe(o, tmp, k, v) {
			if (strcmp(k, "id") != 0 && json_object_get(props, k) == NULL)
				json_object_del(o, k);
		}
	}
	return o;
}

static bool check_account(struct call_ctx *x, json_t *args, const char *call_id)
{
	json_t *a = json_object_get(args, "accountId");
	if (!json_is_string(a)) {
		method_error(x, call_id, "invalidArguments", "accountId (a string) is required");
		return false;
	}
	if (strcmp(json_string_value(a), x->acct) != 0) {
		method_error(x, call_id, "accountNotFound", NULL);
		return false;
	}
	return true;
}

static void m_mailbox_get(struct call_ctx *x, json_t *args, const char *call_id)
{
	if (!check_account(x, args, call_id))
		return;
	json_t *ids = json_object_get(args, "ids");
	json_t *props = json_object_get(args, "properties");
	size_t i;
	json_t *v;
	if (ids && !json_is_null(ids)) {
		if (!json_is_array(ids)) {
			method_error(x, call_id, "invalidArguments",
				     "ids must be null or an array");
			return;
		}
		json_array_foreach(ids, i, v) {
			if (!json_is_string(v)) {
				method_error(x, call_id, "invalidArguments",
					     "ids must be strings");
				return;
			}
		}
		if (json_array_size(ids) > JMAP_MAX_OBJECTS_IN_GET) {
			method_error(x, call_id, "requestTooLarge",
				     "more ids than maxObjectsInGet");
			return;
		}
	} else {
		ids = NULL;
	}
	json_t *propset = NULL;
	if (props && !json_is_null(props)) {
		if (!json_is_array(props)) {
			method_error(x, call_id, "invalidArguments",
				     "properties must be null or an array");
			return;
		}
		propset = json_object();
		json_array_foreach(props, i, v) {
			const char *p = json_string_value(v);
			bool known = false;
			for (size_t k = 0; p && mailbox_props[k]; k++)
				known = known || strcmp(p, mailbox_props[k]) == 0;
			if (!known) {
				json_decref(propset);
				method_error(x, call_id, "invalidArguments",
					     "properties names an unknown Mailbox property");
				return;
			}
			json_object_set_new(propset, p, json_true());
		}
	}
	struct mbx_list l = {0};
	char state[64];
	if (jmap_mailbox_state(x->jm->srv->store, x->j->acct.id, state, sizeof state) < 0 ||
	    mbx_load(x->jm->srv->store, x->j->acct.id, &l) < 0) {
		mbx_list_free(&l);
		json_decref(propset);
		method_error(x, call_id, "serverFail", "the store is unavailable");
		return;
	}
	json_t *list = json_array(), *not_found = json_array();
	if (ids) {
		json_t *seen = json_object();
		json_array_foreach(ids, i, v) {
			const char *id = json_string_value(v);
			if (json_object_get(seen, id))
				continue;
			json_object_set_new(seen, id, json_true());
			const struct store_jmap_mailbox *hit = NULL;
			char *end;
			if (id[0] == 'm' && id[1] >= '1' && id[1] <= '9') {
				long long n = strtoll(id + 1, &end, 10);
				for (size_t k = 0; *end == '\0' && k < l.n && !hit; k++)
					if (l.v[k].id == n)
						hit = &l.v[k];
			}
			if (hit)
				json_array_append_new(list, mbx_json(&l, hit, propset));
			else
				json_array_append(not_found, v);
		}
		json_decref(seen);
	} else {
		for (size_t k = 0; k < l.n; k++)
			json_array_append_new(list, mbx_json(&l, &l.v[k], propset));
	}
	mbx_list_free(&l);
	json_decref(propset);
	json_array_append_new(x->responses,
			      json_pack("[s, {s:s, s:s, s:o, s:o}, s]", "Mailbox/get",
					"accountId", x->acct, "state", state, "list", list,
					"notFound", not_found, call_id));
}

/* Mailbox/changes (RFC 8620 5.2) over the change log: a mailbox's own rows
 * (created, renamed, subscribed, deleted) and its emails' (the counts). */
#define MBX_CHANGES_ROWS_MAX 200000

static void m_mailbox_changes(struct call_ctx *x, json_t *args, const char *call_id)
{
	if (!check_account(x, args, call_id))
		return;
	struct store *st = x->jm->srv->store;
	const char *since_s = json_string_value(json_object_get(args, "sinceState"));
	json_t *mc = json_object_get(args, "maxChanges");
	int64_t max = 5000;
	if (mc && !json_is_null(mc)) {
		if (!json_is_integer(mc) || json_integer_value(mc) <= 0) {
			method_error(x, call_id, "invalidArguments",
				     "maxChanges is a positive integer");
			return;
		}
		if (json_integer_value(mc) < max)
			max = json_integer_value(mc);
	}
	if (since_s == NULL) {
		method_error(x, call_id, "invalidArguments", "sinceState (a string) is required");
		return;
	}
	struct store_jmap_state state;
	char *err = NULL;
	if (store_jmap_state(st, x->j->acct.id, &state, &err) < 0) {
		log_error("jmap: Mailbox/changes: %s", err);
		free(err);
		method_error(x, call_id, "serverFail", "the store is unavailable");
		return;
	}
	char *end;
	errno = 0;
	long long since = strtoll(since_s, &end, 10);
	if (errno || *end || end == since_s || since < 0 || since > state.mailbox ||
	    (since < state.horizon && since != state.mailbox)) {
		method_error(x, call_id, "cannotCalculateChanges",
			     "the state is unknown or older than the change log: "
			     "fetch the mailboxes again");
		return;
	}
	struct store_jmap_change *rows = NULL;
	size_t nrows = 0;
	if (since < state.mailbox &&
	    store_jmap_changes(st, x->j->acct.id, 0, since, MBX_CHANGES_ROWS_MAX, &rows, &nrows,
			       &err) < 0) {
		log_error("jmap: Mailbox/changes: %s", err);
		free(err);
		method_error(x, call_id, "serverFail", "the store is unavailable");
		return;
	}
	struct mbx_list l = {0};
	if (mbx_load(st, x->j->acct.id, &l) < 0) {
		free(rows);
		method_error(x, call_id, "serverFail", "the store is unavailable");
		return;
	}
	/* per mailbox: 1 created, 2 own change, 4 counts */
	json_t *seen = json_object();
	int64_t upto = state.mailbox;
	bool more = nrows == MBX_CHANGES_ROWS_MAX;
	if (more)
		upto = rows[nrows - 1].seq;
	for (size_t i = 0; i < nrows; i++) {
		bool email = rows[i].kind == STORE_JMAP_KIND_EMAIL;
		int64_t id = email ? rows[i].mailbox : rows[i].obj;
		char key[32];
		snprintf(key, sizeof key, "m%lld", (long long)id);
		json_t *k = json_object_get(seen, key);
		if (k == NULL && (int64_t)json_object_size(seen) == max) {
			more = true;
			upto = rows[i - 1].seq;
			break;
		}
		json_int_t bits = k ? json_integer_value(k) : 0;
		bits |= email ? 4 : rows[i].op == STORE_JMAP_CREATED ? 1 : 2;
		json_object_set_new(seen, key, json_integer(bits));
	}
	free(rows);
	json_t *created = json_array(), *updated = json_array(), *destroyed = json_array();
	bool counts_only = true;
	const char *key;
	json_t *bitsv;
	json_object_foreach(seen, key, bitsv) {
		json_int_t bits = json_integer_value(bitsv);
		long long id = strtoll(key + 1, NULL, 10);
		bool exists = false;
		for (size_t k = 0; k < l.n && !exists; k++)
			exists = l.v[k].id == id;
		if (exists && (bits & 1)) {
			json_array_append_new(created, json_string(key));
		} else if (exists) {
			json_array_append_new(updated, json_string(key));
			counts_only = counts_only && !(bits & 2);
		} else if (!(bits & 1)) {
			json_array_append_new(destroyed, json_string(key));
		}
	}
	json_decref(seen);
	mbx_list_free(&l);
	char olds[24], news[24];
	snprintf(olds, sizeof olds, "%lld", since);
	snprintf(news, sizeof news, "%lld", (long long)upto);
	json_t *props = json_null();
	if (counts_only && json_array_size(updated))
		props = json_pack("[s, s, s, s]", "totalEmails", "unreadEmails", "totalThreads",
				  "unreadThreads");
	json_array_append_new(x->responses,
		json_pack("[s, {s:s, s:s, s:s, s:b, s:o, s:o, s:o, s:o}, s]", "Mailbox/changes",
			  "accountId", x->acct, "oldState", olds, "newState", news,
			  "hasMoreChanges", more, "created", created, "updated", updated,
			  "destroyed", destroyed, "updatedProperties", props, call_id));
}

/* Mailbox/query (RFC 8621 2.3): the conditions parentId, name, role,
 * hasAnyRole, isSubscribed; sorts name and sortOrder. */
static int mq_cmp(const void *a, const void *b, void *keys)
{
	json_t *x = *(json_t *const *)a, *y = *(json_t *const *)b;
	size_t i;
	json_t *c;
	json_array_foreach((json_t *)keys, i, c) {
		const char *prop = json_string_value(json_object_get(c, "property"));
		json_t *asc = json_object_get(c, "isAscending");
		int r;
		if (strcmp(prop, "sortOrder") == 0)
			r = (int)(json_integer_value(json_object_get(x, "sortOrder")) -
				  json_integer_value(json_object_get(y, "sortOrder")));
		else
			r = strcmp(json_string_value(json_object_get(x, "name")),
				   json_string_value(json_object_get(y, "name")));
		if (r)
			return json_is_false(asc) ? -r : r;
	}
	return strcmp(json_string_value(json_object_get(x, "id")),
		      json_string_value(json_object_get(y, "id")));
}

static bool mq_match(json_t *m, json_t *f)
{
	const char *k;
	json_t *v;
	json_object_foreach(f, k, v) {
		json_t *have = json_object_get(m, k == NULL ? "" : k);
		if (strcmp(k, "parentId") == 0 || strcmp(k, "role") == 0) {
			if (!json_equal(have, v) && !(json_is_null(have) && json_is_null(v)))
				return false;
		} else if (strcmp(k, "name") == 0) {
			if (!json_is_string(v) ||
			    !strcasestr(json_string_value(have), json_string_value(v)))
				return false;
		} else if (strcmp(k, "hasAnyRole") == 0) {
			if (json_is_true(v) != !json_is_null(json_object_get(m, "role")))
				return false;
		} else if (strcmp(k, "isSubscribed") == 0) {
			if (json_is_true(v) != json_is_true(have))
				return false;
		}
	}
	return true;
}

static void m_mailbox_query(struct call_ctx *x, json_t *args, const char *call_id)
{
	if (!check_account(x, args, call_id))
		return;
	json_t *filter = json_object_get(args, "filter");
	json_t *sort = json_object_get(args, "sort");
	if (filter && !json_is_null(filter)) {
		if (!json_is_object(filter)) {
			method_error(x, call_id, "invalidArguments", "filter must be an object");
			return;
		}
		if (json_object_get(filter, "operator")) {
			method_error(x, call_id, "unsupportedFilter",
				     "Mailbox/query takes one FilterCondition");
			return;
		}
		const char *k;
		json_t *v;
		json_object_foreach(filter, k, v) {
			if (strcmp(k, "parentId") && strcmp(k, "name") && strcmp(k, "role") &&
			    strcmp(k, "hasAnyRole") && strcmp(k, "isSubscribed")) {
				method_error(x, call_id, "unsupportedFilter",
					     "filter names an unknown Mailbox condition");
				return;
			}
		}
	}
	json_t *keys = json_array();
	size_t i;
	json_t *v;
	if (sort && !json_is_null(sort)) {
		bool ok = json_is_array(sort);
		json_array_foreach(sort, i, v) {
			const char *prop = json_string_value(json_object_get(v, "property"));
			ok = ok && prop && (strcmp(prop, "name") == 0 ||
					    strcmp(prop, "sortOrder") == 0);
			if (ok)
				json_array_append(keys, v);
		}
		if (!ok) {
			json_decref(keys);
			method_error(x, call_id, "unsupportedSort",
				     "Mailbox/query sorts by name and sortOrder");
			return;
		}
	}
	json_t *pos_v = json_object_get(args, "position");
	json_t *lim_v = json_object_get(args, "limit");
	json_int_t pos = json_is_integer(pos_v) ? json_integer_value(pos_v) : 0;
	json_int_t limit = json_is_integer(lim_v) ? json_integer_value(lim_v) : 1000;
	if ((pos_v && !json_is_integer(pos_v)) || (lim_v && !json_is_integer(lim_v)) ||
	    limit < 0) {
		json_decref(keys);
		method_error(x, call_id, "invalidArguments",
			     "position is an integer, limit a non-negative integer");
		return;
	}
	struct mbx_list l = {0};
	char state[64];
	if (jmap_mailbox_state(x->jm->srv->store, x->j->acct.id, state, sizeof state) < 0 ||
	    mbx_load(x->jm->srv->store, x->j->acct.id, &l) < 0) {
		mbx_list_free(&l);
		json_decref(keys);
		method_error(x, call_id, "serverFail", "the store is unavailable");
		return;
	}
	json_t **all = xreallocarray(NULL, l.n + 1, sizeof *all);
	size_t n = 0;
	for (size_t k = 0; k < l.n; k++) {
		json_t *m = mbx_json(&l, &l.v[k], NULL);
		if (filter && json_is_object(filter) && !mq_match(m, filter))
			json_decref(m);
		else
			all[n++] = m;
	}
	mbx_list_free(&l);
	qsort_r(all, n, sizeof *all, mq_cmp, keys);
	if (pos < 0)
		pos = (json_int_t)n + pos < 0 ? 0 : (json_int_t)n + pos;
	if (pos > (json_int_t)n)
		pos = (json_int_t)n;
	if (limit > (json_int_t)n)
		limit = (json_int_t)n;    /* and pos + limit cannot overflow */
	json_t *ids = json_array();
	for (size_t k = 0; k < n; k++) {
		if ((json_int_t)k >= pos && (json_int_t)k < pos + limit)
			json_array_append(ids, json_object_get(all[k], "id"));
		json_decref(all[k]);
	}
	free(all);
	json_decref(keys);
	json_t *res = json_pack("{s:s, s:s, s:b, s:I, s:o}", "accountId", x->acct,
				"queryState", state, "canCalculateChanges", 0, "position", pos,
				"ids", ids);
	if (json_is_true(json_object_get(args, "calculateTotal")))
		json_object_set_new(res, "total", json_integer((json_int_t)n));
	json_array_append_new(x->responses, json_pack("[s, o, s]", "Mailbox/query", res,
						      call_id));
}

static void mail_call(struct call_ctx *x, json_t *args, const char *call_id,
		      const char *name, jmap_mail_method *fn)
{
	if (!check_account(x, args, call_id))
		return;
	struct jmap_mail_ctx c = {.st = x->jm->srv->store, .account_id = x->j->acct.id,
				  .acct = x->acct, .address = x->j->acct.address,
				  .max_objects_in_get = JMAP_MAX_OBJECTS_IN_GET,
				  .touched = &x->j->touched, .created_ids = x->created_ids};
	const char *type = "serverFail", *desc = NULL;
	json_t *res = fn(&c, args, &type, &desc);
	if (res == NULL) {
		method_error(x, call_id, type, desc);
		return;
	}
	json_array_append_new(x->responses, json_pack("[s, o, s]", name, res, call_id));
}

static void m_email_query(struct call_ctx *x, json_t *args, const char *call_id)
{
	mail_call(x, args, call_id, "Email/query", jmap_email_query);
}

static void m_email_get(struct call_ctx *x, json_t *args, const char *call_id)
{
	mail_call(x, args, call_id, "Email/get", jmap_email_get);
}

static void m_thread_get(struct call_ctx *x, json_t *args, const char *call_id)
{
	mail_call(x, args, call_id, "Thread/get", jmap_thread_get);
}

static void m_email_set(struct call_ctx *x, json_t *args, const char *call_id)
{
	mail_call(x, args, call_id, "Email/set", jmap_email_set);
}

static void m_email_import(struct call_ctx *x, json_t *args, const char *call_id)
{
	mail_call(x, args, call_id, "Email/import", jmap_email_import);
}

static void m_mailbox_set(struct call_ctx *x, json_t *args, const char *call_id)
{
	mail_call(x, args, call_id, "Mailbox/set", jmap_mailbox_set);
}

static void m_snippet_get(struct call_ctx *x, json_t *args, const char *call_id)
{
	mail_call(x, args, call_id, "SearchSnippet/get", jmap_searchsnippet_get);
}

static void m_email_changes(struct call_ctx *x, json_t *args, const char *call_id)
{
	mail_call(x, args, call_id, "Email/changes", jmap_email_changes);
}

static void m_thread_changes(struct call_ctx *x, json_t *args, const char *call_id)
{
	mail_call(x, args, call_id, "Thread/changes", jmap_thread_changes);
}

static void m_email_query_changes(struct call_ctx *x, json_t *args, const char *call_id)
{
	mail_call(x, args, call_id, "Email/queryChanges", jmap_email_query_changes);
}

static void m_identity_get(struct call_ctx *x, json_t *args, const char *call_id)
{
	mail_call(x, args, call_id, "Identity/get", jmap_identity_get);
}

static void m_identity_changes(struct call_ctx *x, json_t *args, const char *call_id)
{
	mail_call(x, args, call_id, "Identity/changes", jmap_identity_changes);
}

static void m_identity_set(struct call_ctx *x, json_t *args, const char *call_id)
{
	mail_call(x, args, call_id, "Identity/set", jmap_identity_set);
}

static void m_submission_get(struct call_ctx *x, json_t *args, const char *call_id)
{
	mail_call(x, args, call_id, "EmailSubmission/get", jmap_submission_get);
}

static void m_submission_changes(struct call_ctx *x, json_t *args, const char *call_id)
{
	mail_call(x, args, call_id, "EmailSubmission/changes", jmap_submission_changes);
}

static void m_submission_query(struct call_ctx *x, json_t *args, const char *call_id)
{
	mail_call(x, args, call_id, "EmailSubmission/query", jmap_submission_query);
}

/* EmailSubmission/set: the configuration it needs, and the implicit
 * Email/set response of onSuccessUpdateEmail after its own. */
static void m_submission_set(struct call_ctx *x, json_t *args, const char *call_id)
{
	if (!check_account(x, args, call_id))
		return;
	const struct conf *cfg = x->jm->srv->cfg;
	struct jmap_mail_ctx c = {.st = x->jm->srv->store, .account_id = x->j->acct.id,
				  .acct = x->acct, .address = x->j->acct.address,
				  .max_objects_in_get = JMAP_MAX_OBJECTS_IN_GET,
				  .touched = &x->j->touched, .created_ids = x->created_ids};
	struct jmap_submit_env env = {
		.hostname = cfg->hostname, .peer = x->j->r->peer,
		.postmaster = cfg->postmaster ? cfg->postmaster : "",
		.size_limit = cfg->message_size_limit, .max_recipients = cfg->smtp_max_recipients,
		.delim = cfg->recipient_delimiter ? cfg->recipient_delimiter[0] : 0};
	const char *type = "serverFail", *desc = NULL;
	json_t *implicit = NULL;
	json_t *res = jmap_submission_set(&c, &env, args, &implicit, &type, &desc);
	if (res == NULL) {
		method_error(x, call_id, type, desc);
		return;
	}
	json_array_append_new(x->responses,
			      json_pack("[s, o, s]", "EmailSubmission/set", res, call_id));
	if (implicit) {
		json_array_append_new(implicit, json_string(call_id));
		json_array_append_new(x->responses, implicit);
	}
}

static const struct method {
	const char *name;
	const char *cap;
	void (*fn)(struct call_ctx *x, json_t *args, const char *call_id);
} methods[] = {
	{"Core/echo", CAP_CORE, m_echo},
	{"Mailbox/get", CAP_MAIL, m_mailbox_get},
	{"Mailbox/changes", CAP_MAIL, m_mailbox_changes},
	{"Mailbox/query", CAP_MAIL, m_mailbox_query},
	{"Email/changes", CAP_MAIL, m_email_changes},
	{"Email/queryChanges", CAP_MAIL, m_email_query_changes},
	{"Thread/changes", CAP_MAIL, m_thread_changes},
	{"Email/query", CAP_MAIL, m_email_query},
	{"Email/get", CAP_MAIL, m_email_get},
	{"Thread/get", CAP_MAIL, m_thread_get},
	{"Email/set", CAP_MAIL, m_email_set},
	{"Email/import", CAP_MAIL, m_email_import},
	{"Mailbox/set", CAP_MAIL, m_mailbox_set},
	{"SearchSnippet/get", CAP_MAIL, m_snippet_get},
	{"Identity/get", CAP_SUBMISSION, m_identity_get},
	{"Identity/changes", CAP_SUBMISSION, m_identity_changes},
	{"Identity/set", CAP_SUBMISSION, m_identity_set},
	{"EmailSubmission/get", CAP_SUBMISSION, m_submission_get},
	{"EmailSubmission/changes", CAP_SUBMISSION, m_submission_changes},
	{"EmailSubmission/query", CAP_SUBMISSION, m_submission_query},
	{"EmailSubmission/set", CAP_SUBMISSION, m_submission_set},
	{NULL, NULL, NULL},
};

static bool using_has(json_t *using, const char *cap)
{
	size_t i;
	json_t *v;
	json_array_foreach(using, i, v)
		if (strcmp(json_string_value(v), cap) == 0)
			return true;
	return false;
}

static void call_one(struct call_ctx *x, json_t *inv)
{
	const char *name = json_string_value(json_array_get(inv, 0));
	json_t *args = json_array_get(inv, 1);
	const char *call_id = json_string_value(json_array_get(inv, 2));
	const struct method *m = methods;
	while (m->name && strcmp(m->name, name) != 0)
		m++;
	if (m->name == NULL || !using_has(x->using, m->cap)) {
		method_error(x, call_id, "unknownMethod", m->name ?
			     "the method's capability is not in using" : NULL);
		return;
	}
	const char *err = NULL;
	switch (jmap_resolve_refs(args, x->responses, &err)) {
	case JMAP_REF_OK:
		break;
	case JMAP_REF_INVALID_ARGUMENTS:
		method_error(x, call_id, "invalidArguments", err);
		return;
	case JMAP_REF_INVALID_RESULT_REFERENCE:
		method_error(x, call_id, "invalidResultReference", err);
		return;
	}
	m->fn(x, args, call_id);
}

static void api_answer_problem(struct job *j, const char *type, const char *detail,
			       const char *limit)
{
	json_t *p = problem_new(400, type, detail);
	if (limit)
		json_object_set_new(p, "limit", json_string(limit));
	j->status = 400;
	j->ctype = "application/problem+json";
	j->out = json_dumps(p, JSON_COMPACT);
	json_decref(p);
}

/* Type-check the Request object (RFC 8620 3.3).  NULL if it matches,
 * else the detail of notRequest. */
static const char *request_shape(json_t *req)
{
	if (!json_is_object(req))
		return "the request is not a JSON object";
	json_t *using = json_object_get(req, "using");
	json_t *calls = json_object_get(req, "methodCalls");
	json_t *created = json_object_get(req, "createdIds");
	size_t i;
	json_t *v;
	if (!json_is_array(using))
		return "using must be an array of capability strings";
	json_array_foreach(using, i, v)
		if (!json_is_string(v))
			return "using must be an array of capability strings";
	if (!json_is_array(calls))
		return "methodCalls must be an array of invocations";
	json_array_foreach(calls, i, v) {
		if (!json_is_array(v) || json_array_size(v) != 3 ||
		    !json_is_string(json_array_get(v, 0)) ||
		    !json_is_object(json_array_get(v, 1)) || !json_is_string(json_array_get(v, 2)))
			return "each invocation must be [name (string), arguments (object), "
			       "method call id (string)]";
	}
	if (created && !json_is_object(created))
		return "createdIds must be an object";
	return NULL;
}

/* Pool thread: the whole request. */
static void api_run(struct job *j)
{
	json_error_t jerr;
	json_t *req = json_loadb(j->body, j->body_len, JSON_REJECT_DUPLICATES, &jerr);
	if (req == NULL) {
		char d[300];
		snprintf(d, sizeof d, "the request is not I-JSON: %s (line %d, column %d)",
			 jerr.text, jerr.line, jerr.column);
		api_answer_problem(j, "notJSON", d, NULL);
		return;
	}
	const char *bad = request_shape(req);
	if (bad) {
		api_answer_problem(j, "notRequest", bad, NULL);
		json_decref(req);
		return;
	}
	json_t *using = json_object_get(req, "using");
	size_t i;
	json_t *v;
	json_array_foreach(using, i, v) {
		const char *cap = json_string_value(v);
		if (strcmp(cap, CAP_CORE) != 0 && strcmp(cap, CAP_MAIL) != 0 &&
		    strcmp(cap, CAP_SUBMISSION) != 0) {
			char d[300];
			snprintf(d, sizeof d, "the server does not support the capability %.200s",
				 cap);
			api_answer_problem(j, "unknownCapability", d, NULL);
			json_decref(req);
			return;
		}
	}
	json_t *calls = json_object_get(req, "methodCalls");
	if (json_array_size(calls) > JMAP_MAX_CALLS_IN_REQUEST) {
		api_answer_problem(j, "limit", "more method calls than maxCallsInRequest",
				   "maxCallsInRequest");
		json_decref(req);
		return;
	}
	json_t *created = json_object_get(req, "createdIds");
	struct call_ctx x = {.jm = j->jm, .j = j, .using = using, .responses = json_array(),
			     .created_ids = created ? json_incref(created) : json_object()};
	snprintf(x.acct, sizeof x.acct, "a%lld", (long long)j->acct.id);
	json_array_foreach(calls, i, v)
		call_one(&x, v);
	uint64_t h = fnv(FNV_INIT, x.acct, strlen(x.acct));
	h = fnv(h, j->acct.address, strlen(j->acct.address));
	char state[20];
	snprintf(state, sizeof state, "%016llx", (unsigned long long)h);
	json_t *resp = json_pack("{s:o, s:s}", "methodResponses", x.responses, "sessionState",
				 state);
	if (created)
		json_object_set(resp, "createdIds", x.created_ids);
	json_decref(x.created_ids);
	j->status = 200;
	j->ctype = "application/json";
	j->out = json_dumps(resp, JSON_COMPACT);
	json_decref(resp);
	json_decref(req);
}

/* ---- login and the job's life ---- */

static void job_free(struct job *j)
{
	if (j->password)
		auth_wipe(j->password, j->pwlen + 1);
	free(j->address);
	if (j->rc == 1)
		account_free(&j->acct);
	free(j->body);
	free(j->out);
	free(j->dl_account);
	free(j->dl_blob);
	free(j->dl_name);
	free(j->dl_type);
	free(j->up_error);
	buf_free(&j->blob);
	jmap_view_free(&j->view);
	jmap_touched_free(&j->touched);
	free(j);
}

static void api_work(void *arg)
{
	api_run(arg);
}

static void api_done(void *arg)
{
	struct job *j = arg;
	server_count_add(j->jm->srv, j->countkey, -1);
	for (size_t i = 0; i < j->touched.n; i++)
		server_mailbox_changed(j->jm->srv, j->touched.ids[i]);
	if (j->touched.n > 0)       /* a mailbox may be new or gone: push re-reads them */
		server_account_changed(j->jm->srv, j->acct.id);
	if (j->touched.queue_kick && j->jm->srv->queue_kick)
		j->jm->srv->queue_kick(j->jm->srv);
	if (j->out == NULL)
		http_respond(j->r, 500, "text/plain", "out of memory\n", 14);
	else
		http_respond(j->r, j->status, j->ctype, j->out, strlen(j->out));
	job_free(j);
}

/* ---- downloads (RFC 8620 6.2) ---- */

#define DOWNLOAD_MAX (64u * 1024 * 1024)

static void download_work(void *arg)
{
	struct job *j = arg;
	buf_init(&j->blob, DOWNLOAD_MAX);
	if (j->dl_blob[0] == 'u')    /* an upload (jmap_set.h) */
		j->blob_rc = jmap_upload_read(j->jm->srv->store, j->acct.id, j->dl_blob, &j->blob);
	else
		j->blob_rc = jmap_blob_read(j->jm->srv->store, j->acct.id, j->dl_blob, &j->blob);
}

/* Content-Disposition: attachment with an ASCII fallback and the RFC 6266
 * / RFC 8187 filename* (UTF-8, percent-encoded). */
static char *disposition(const char *name)
{
	struct buf b;
	buf_init(&b, 16 * 1024);
	buf_append_str(&b, "attachment; filename=\"");
	for (const unsigned char *p = (const unsigned char *)name; *p; p++) {
		char c = (*p >= 0x20 && *p < 0x7f && *p != '"' && *p != '\\' && *p != '/')
			 ? (char)*p : '_';
		buf_append(&b, &c, 1);
	}
	buf_append_str(&b, "\"; filename*=UTF-8''");
	for (const unsigned char *p = (const unsigned char *)name; *p; p++) {
		if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
		    (*p >= '0' && *p <= '9') || strchr("!#$&+-.^_`|~", *p))
			buf_append(&b, p, 1);
		else
			buf_printf(&b, "%%%02X", *p);
	}
	return buf_steal(&b, NULL);
}

static void download_done(void *arg)
{
	struct job *j = arg;
	struct http_request *r = j->r;
	if (http_request_gone(r)) {
		http_respond(r, 500, NULL, NULL, 0);
	} else if (j->blob_rc == 1) {
		char *cd = disposition(j->dl_name);
		http_request_add_header(r, "content-disposition", cd);
		http_request_add_header(r, "x-content-type-options", "nosniff");
		http_request_add_header(r, "cache-control", "private, immutable, max-age=31536000");
		free(cd);
		http_respond(r, 200, j->dl_type, j->blob.data, j->blob.len);
	} else if (j->blob_rc == 0) {
		problem(r, 404, "about:blank", "no such blob");
	} else {
		problem(r, 500, "about:blank", "the blob cannot be read");
	}
	job_free(j);
}

static void view_work(void *arg)
{
	struct job *j = arg;
	jmap_view_render(j->jm->srv->store, j->acct.id, j->dl_blob, strcmp(j->dl_name, "1") == 0,
			 &j->view);
}

/* The sandboxed document for the page's <iframe sandbox>: nothing runs,
 * nothing loads but data: images (and http(s) ones once allowed). */
static void view_done(void *arg)
{
	struct job *j = arg;
	struct http_request *r = j->r;
	bool images = strcmp(j->dl_name, "1") == 0;
	if (http_request_gone(r)) {
		http_respond(r, 500, NULL, NULL, 0);
	} else if (j->view.status == 200) {
		char n[32];
		snprintf(n, sizeof n, "%zu", j->view.remote_images);
		/* sandbox: no scripts, forms or same-origin; links (target=_blank
		 * from the sanitizer) may open a tab of their own */
#define VIEW_SANDBOX "sandbox allow-popups allow-popups-to-escape-sandbox"
		http_request_add_header(r, "content-security-policy", images
			? "default-src 'none'; style-src 'unsafe-inline'; img-src data: https: http:; "
			  "form-action 'none'; frame-ancestors 'self'; " VIEW_SANDBOX
			: "default-src 'none'; style-src 'unsafe-inline'; img-src data:; "
			  "form-action 'none'; frame-ancestors 'self'; " VIEW_SANDBOX);
		http_request_add_header(r, "x-content-type-options", "nosniff");
		http_request_add_header(r, "referrer-policy", "no-referrer");
		/* http_respond adds Cache-Control: no-store */
		http_request_add_header(r, "x-yubin-remote-images", n);
		http_respond(r, 200, "text/html; charset=utf-8", j->view.html, j->view.len);
	} else if (j->view.status == 415) {
		problem(r, 415, "about:blank", "the blob is not an HTML part");
	} else if (j->view.status == 404) {
		problem(r, 404, "about:blank", "no such blob");
	} else {
		problem(r, 500, "about:blank", "the blob cannot be read");
	}
	job_free(j);
}

static void download_start(struct job *j)
{
	char acct[32];
	snprintf(acct, sizeof acct, "a%lld", (long long)j->acct.id);
	if (strcmp(acct, j->dl_account) != 0) {
		problem(j->r, 404, "about:blank", "no such account");
		job_free(j);
		return;
	}
	if (j->res == RES_VIEW)
		server_job(j->jm->srv, NULL, view_work, view_done, j);
	else
		server_job(j->jm->srv, NULL, download_work, download_done, j);
}

/* ---- uploads (RFC 8620 6.1; jmap_set.h stores them) ---- */

#define UPLOAD_CONCURRENT 4         /* maxConcurrentUpload, per account */

static void upload_work(void *arg)
{
	struct job *j = arg;
	j->up_rc = jmap_upload_write(j->jm->srv->store, j->acct.id, j->body, j->body_len,
				     j->up_blob, &j->up_error);
}

static void upload_done(void *arg)
{
	struct job *j = arg;
	struct http_request *r = j->r;
	server_count_add(j->jm->srv, j->countkey, -1);
	if (j->up_rc == 0) {
		char acct[32];
		snprintf(acct, sizeof acct, "a%lld", (long long)j->acct.id);
		log_info("conn=%s jmap: upload user=%s blob=%s size=%zu", r->connid,
			 j->acct.address, j->up_blob, j->body_len);
		json_t *o = json_pack("{s:s, s:s, s:s, s:I}", "accountId", acct, "blobId",
				      j->up_blob, "type", j->dl_type, "size",
				      (json_int_t)j->body_len);
		respond_json(r, 201, "application/json", o);
		json_decref(o);
	} else if (j->up_rc > 0) {
		log_info("conn=%s jmap: upload refused user=%s: %s", r->connid, j->acct.address,
			 j->up_error);
		problem(r, 400, "about:blank", j->up_error);
	} else {
		log_error("conn=%s jmap: upload user=%s: %s", r->connid, j->acct.address,
			  j->up_error ? j->up_error : "error");
		problem(r, 500, "about:blank", "the upload cannot be stored now");
	}
	job_free(j);
}

static void upload_start(struct job *j)
{
	struct server *srv = j->jm->srv;
	char acct[32];
	size_t len;
	snprintf(acct, sizeof acct, "a%lld", (long long)j->acct.id);
	if (strcmp(acct, j->dl_account) != 0) {
		problem(j->r, 404, "about:blank", "no such account");
		job_free(j);
		return;
	}
	const char *body = http_request_body(j->r, &len);
	if (len > JMAP_MAX_SIZE_REQUEST) {
		problem(j->r, 413, "about:blank", "the upload is larger than maxSizeUpload");
		job_free(j);
		return;
	}
	const char *ct = http_request_header(j->r, "content-type");
	bool ok = ct && ct[0] && strlen(ct) < 256;
	for (const char *p = ct; ok && *p; p++)
		ok = *p >= 0x20 && *p < 0x7f;
	j->dl_type = xstrdup(ok ? ct : "application/octet-stream");
	snprintf(j->countkey, sizeof j->countkey, "jmapup:%s", j->acct.address);
	if (server_count_add(srv, j->countkey, 1) > UPLOAD_CONCURRENT) {
		server_count_add(srv, j->countkey, -1);
		json_t *p = problem_new(400, "limit", "too many uploads at once for this account");
		json_object_set_new(p, "limit", json_string("maxConcurrentUpload"));
		respond_json(j->r, 400, "application/problem+json", p);
		json_decref(p);
		job_free(j);
		return;
	}
	j->body = xmalloc(len + 1);
	if (len)
		memcpy(j->body, body, len);
	j->body_len = len;
	server_job(srv, NULL, upload_work, upload_done, j);
}

static void session_answer(struct job *j)
{
	json_t *s = session_object(j->jm, j);
	respond_json(j->r, 200, "application/json", s);
	json_decref(s);
}

/* RFC 8620 3.6.1: an API request is application/json (a client that
 * sends no Content-Type is given the benefit of the doubt). */
static bool json_content_type(const char *ct)
{
	if (ct == NULL)
		return true;
	while (*ct == ' ')
		ct++;
	size_t n = strcspn(ct, "; ");
	return n == 16 && strncasecmp(ct, "application/json", 16) == 0;
}

static void api_start(struct job *j)
{
	struct server *srv = j->jm->srv;
	size_t len;
	if (!json_content_type(http_request_header(j->r, "content-type"))) {
		problem(j->r, 400, "notJSON", "the Content-Type of an API request must be "
			"application/json");
		job_free(j);
		return;
	}
	const char *body = http_request_body(j->r, &len);
	if (len > JMAP_MAX_SIZE_REQUEST) {
		json_t *p = problem_new(400, "limit", "the request is larger than maxSizeRequest");
		json_object_set_new(p, "limit", json_string("maxSizeRequest"));
		respond_json(j->r, 400, "application/problem+json", p);
		json_decref(p);
		job_free(j);
		return;
	}
	snprintf(j->countkey, sizeof j->countkey, "jmap:%s", j->acct.address);
	if (server_count_add(srv, j->countkey, 1) > JMAP_MAX_CONCURRENT_REQUESTS) {
		server_count_add(srv, j->countkey, -1);
		json_t *p = problem_new(400, "limit", "too many API requests at once for this "
				       "account");
		json_object_set_new(p, "limit", json_string("maxConcurrentRequests"));
		respond_json(j->r, 400, "application/problem+json", p);
		json_decref(p);
		job_free(j);
		return;
	}
	j->body = xmalloc(len + 1);
	if (len)
		memcpy(j->body, body, len);
	j->body_len = len;
	server_job(srv, NULL, api_work, api_done, j);
}

static void auth_work(void *arg)
{
	struct job *j = arg;
	j->rc = auth_login_cached(j->jm->srv->store, j->address, j->password, &j->acct,
				  &j->cached);
}

static void auth_done(void *arg)
{
	struct job *j = arg;
	struct jmap *jm = j->jm;
	struct server *srv = jm->srv;
	struct http_request *r = j->r;

	if (http_request_gone(r)) {
		http_respond(r, 500, NULL, NULL, 0);
		job_free(j);
		return;
	}
	if (j->rc == 0) {
		http_login_failed(jm->holds, r, "jmap", "basic", j->address);
		job_free(j);
		return;
	}
	if (j->rc < 0) {
		log_error("conn=%s jmap: authentication unavailable (store error)", r->connid);
		job_free(j);
		problem(r, 503, "about:blank", "authentication is temporarily unavailable");
		return;
	}
	server_auth_succeeded(srv, r->peer, j->acct.address);
	http_request_set_user(r, j->acct.address);
	log_debug("conn=%s jmap: login user=%s tls=%s cached=%s", r->connid, j->acct.address,
		  r->tls ? "yes" : "no", j->cached ? "yes" : "no");
	auth_wipe(j->password, j->pwlen + 1);
	j->password = NULL;
	base_url(jm, r, j->base, sizeof j->base);
	if (j->res == RES_SESSION) {
		session_answer(j);
		job_free(j);
		return;
	}
	if (j->res == RES_EVENTS) {
		jmap_push_start(jm->push, r, j->acct.id);
		job_free(j);
		return;
	}
	if (j->res == RES_UPLOAD) {
		upload_start(j);
		return;
	}
	if (j->res == RES_DOWNLOAD || j->res == RES_VIEW) {
		download_start(j);
		return;
	}
	api_start(j);
}

static bool plaintext_ok(const struct server *srv, const struct http_request *r)
{
	if (r->tls)
		return true;
	switch (srv->cfg->plaintext_auth) {
	case PLAINTEXT_ALWAYS:
		return true;
	case PLAINTEXT_LOOPBACK:
		return r->loopback;
	case PLAINTEXT_NEVER:
	default:
		return false;
	}
}

/* No Authorization: the page's session cookie may stand for the login.
 * false if there is none (Basic is asked for); true if r is taken care of. */
static void dl_free(char **dl);
static void download_take(struct job *j, char **dl);

static bool cookie_login(struct jmap *jm, struct http_request *r, enum resource res, char **dl)
{
	struct account acct = {0};
	int rc = jm->cookie_auth ? jm->cookie_auth(jm->cookie_arg, r, &acct) : 0;
	if (rc < 0)
		dl_free(dl);
	if (rc <= 0)
		return rc < 0;
	struct job *j = xcalloc(1, sizeof *j);
	j->jm = jm;
	j->r = r;
	j->res = res;
	j->acct = acct;
	j->rc = 1;
	http_request_set_user(r, acct.address);
	base_url(jm, r, j->base, sizeof j->base);
	if (res == RES_API) {
		api_start(j);
		return true;
	}
	if (res == RES_EVENTS) {
		jmap_push_start(jm->push, r, j->acct.id);
		job_free(j);
		return true;
	}
	if (res == RES_UPLOAD) {
		download_take(j, dl);
		upload_start(j);
		return true;
	}
	if (res == RES_DOWNLOAD || res == RES_VIEW) {
		download_take(j, dl);
		download_start(j);
		return true;
	}
	session_answer(j);
	job_free(j);
	return true;
}

static void dl_free(char **dl)
{
	for (size_t i = 0; dl && i < 4; i++)
		free(dl[i]);
}

static void download_take(struct job *j, char **dl)
{
	if (dl) {
		j->dl_account = dl[0];
		j->dl_blob = dl[1];
		j->dl_name = dl[2];
		j->dl_type = dl[3];
	}
}

/* Authorization: Basic base64(user ":" password) -> a job, or an answer.
 * dl (downloads: account, blob, name, type; heap) is taken over. */
static void authenticate(struct jmap *jm, struct http_request *r, enum resource res, char **dl)
{
	const char *h = http_request_header(r, "authorization");
	size_t hl = h ? strlen(h) : 0;
	if (h == NULL && cookie_login(jm, r, res, dl))
		return;
	if (h == NULL || !plaintext_ok(jm->srv, r) || hl > AUTH_HEADER_MAX || hl < 6 ||
	    strncasecmp(h, "basic ", 6) != 0)
		dl_free(dl);
	if (h == NULL) {
		unauthorized(r, "credentials are required (HTTP Basic)");
		return;
	}
	if (!plaintext_ok(jm->srv, r)) {
		log_info("conn=%s jmap: auth refused: password over plain HTTP from [%s] "
			 "(plaintext_auth)", r->connid, r->peer);
		unauthorized(r, "passwords are accepted only over HTTPS");
		return;
	}
	if (hl > AUTH_HEADER_MAX || hl < 6 || strncasecmp(h, "basic ", 6) != 0) {
		unauthorized(r, "only HTTP Basic credentials are accepted");
		return;
	}
	const char *b64 = h + 6;
	while (*b64 == ' ')
		b64++;
	size_t bl = strlen(b64);
	while (bl && b64[bl - 1] == ' ')
		bl--;
	unsigned char *dec = xmalloc(bl / 4 * 3 + 4);
	long n = base64_decode(b64, bl, dec);
	char *colon = n > 0 ? memchr(dec, ':', (size_t)n) : NULL;
	if (n <= 0 || memchr(dec, '\0', (size_t)n) || colon == NULL ||
	    colon == (char *)dec || colon == (char *)dec + n - 1 ||
	    (size_t)(colon - (char *)dec) > USER_MAX) {
		if (n > 0)
			auth_wipe((char *)dec, (size_t)n);
		else
			free(dec);
		dl_free(dl);
		unauthorized(r, "malformed HTTP Basic credentials");
		return;
	}
	struct job *j = xcalloc(1, sizeof *j);
	j->jm = jm;
	j->r = r;
	j->res = res;
	j->address = xstrndup((char *)dec, (size_t)(colon - (char *)dec));
	j->pwlen = (size_t)n - (size_t)(colon - (char *)dec) - 1;
	j->password = xstrndup(colon + 1, j->pwlen);
	auth_wipe((char *)dec, (size_t)n);
	download_take(j, dl);
	server_auth_job(jm->srv, NULL, auth_work, auth_done, j);
}

/* %XX-decoded s[0..n) (heap), or NULL when it holds a NUL or bad escape. */
static char *pct_decode(const char *s, size_t n)
{
	char *o = xmalloc(n + 1);
	size_t w = 0;
	for (size_t i = 0; i < n; i++) {
		if (s[i] == '%') {
			char hex[3] = {0};
			if (i + 2 >= n) {
				free(o);
				return NULL;
			}
			hex[0] = s[i + 1];
			hex[1] = s[i + 2];
			char *end;
			long v = strtol(hex, &end, 16);
			if (*end || end != hex + 2 || v == 0) {
				free(o);
				return NULL;
			}
			o[w++] = (char)v;
			i += 2;
		} else {
			o[w++] = s[i];
		}
	}
	o[w] = '\0';
	return o;
}

/* /jmap/download/{accountId}/{blobId}/{name}?accept={type} -> dl[0..3]. */
static int download_parse(const struct http_request *r, char **dl)
{
	const char *p = r->path + 15;
	for (int k = 0; k < 3; k++) {
		size_t n = k < 2 ? strcspn(p, "/") : strlen(p);
		if (n == 0 || n > 1024 || (k < 2 && p[n] != '/'))
			return -1;
		if ((dl[k] = pct_decode(p, n)) == NULL)
			return -1;
		p += n + (k < 2);
	}
	const char *type = "application/octet-stream";
	for (const char *q = r->query; q && *q;) {
		size_t n = strcspn(q, "&");
		if (n > 7 && strncmp(q, "accept=", 7) == 0) {
			char *t = pct_decode(q + 7, n - 7);
			size_t slash = t ? strcspn(t, "/") : 0;
			bool ok = t && slash > 0 && t[slash] == '/' && t[slash + 1] != '\0' &&
				  strlen(t) < 128;
			for (size_t i = 0; ok && t[i]; i++)
				ok = (t[i] >= 'a' && t[i] <= 'z') || (t[i] >= 'A' && t[i] <= 'Z') ||
				     (t[i] >= '0' && t[i] <= '9') ||
				     (strchr("!#$&^_.+-", t[i]) && t[i]) ||
				     (i == slash);
			if (ok)
				dl[3] = t;
			else
				free(t);
			break;
		}
		q += n + (q[n] == '&');
	}
	if (dl[3] == NULL)
		dl[3] = xstrdup(type);
	return 0;
}

/* /jmap/view/{accountId}/{blobId}?images=0|1 -> dl[0..2] (dl[2]: "0" or
 * "1"). */
static int view_parse(const struct http_request *r, char **dl)
{
	const char *p = r->path + 11;
	for (int k = 0; k < 2; k++) {
		size_t n = k == 0 ? strcspn(p, "/") : strlen(p);
		if (n == 0 || n > 1024 || (k == 0 && p[n] != '/'))
			return -1;
		if ((dl[k] = pct_decode(p, n)) == NULL)
			return -1;
		p += n + 1;
	}
	bool images = false;
	for (const char *q = r->query; q && *q;) {
		size_t n = strcspn(q, "&");
		if (n == 8 && strncmp(q, "images=1", 8) == 0)
			images = true;
		q += n + (q[n] == '&');
	}
	dl[2] = xstrdup(images ? "1" : "0");
	return 0;
}

static void method_not_allowed(struct http_request *r, const char *allow)
{
	http_request_add_header(r, "allow", allow);
	problem(r, 405, "about:blank", "method not allowed on this resource");
}

void jmap_on_request(struct http_request *r, void *arg)
{
	struct jmap *jm = arg;
	bool get = strcmp(r->method, "GET") == 0 || strcmp(r->method, "HEAD") == 0;
	bool post = strcmp(r->method, "POST") == 0;

	if (strcmp(r->path, "/.well-known/jmap") == 0) {
		if (!get) {
			method_not_allowed(r, "GET, HEAD");
			return;
		}
		char loc[400];
		base_url(jm, r, loc, 300);
		strcat(loc, "/jmap/session");
		http_request_add_header(r, "location", loc);
		http_respond(r, 307, "text/plain", "see /jmap/session\n", 18);
		return;
	}
	if (strcmp(r->path, "/jmap/session") == 0) {
		if (!get)
			method_not_allowed(r, "GET, HEAD");
		else
			authenticate(jm, r, RES_SESSION, NULL);
		return;
	}
	if (strcmp(r->path, "/jmap/api/") == 0 || strcmp(r->path, "/jmap/api") == 0) {
		if (!post)
			method_not_allowed(r, "POST");
		else
			authenticate(jm, r, RES_API, NULL);
		return;
	}
	if (strcmp(r->path, "/jmap/eventsource/") == 0 ||
	    strcmp(r->path, "/jmap/eventsource") == 0) {
		if (strcmp(r->method, "GET") != 0)
			method_not_allowed(r, "GET");
		else
			authenticate(jm, r, RES_EVENTS, NULL);
		return;
	}
	if (strncmp(r->path, "/jmap/upload/", 13) == 0) {
		/* /jmap/upload/{accountId}/ */
		size_t n = strcspn(r->path + 13, "/");
		const char *rest = r->path + 13 + n;
		if (!post) {
			method_not_allowed(r, "POST");
			return;
		}
		char *dl[4] = {0};
		if (n == 0 || n > 64 || (*rest && strcmp(rest, "/") != 0) ||
		    (dl[0] = pct_decode(r->path + 13, n)) == NULL) {
			problem(r, 404, "about:blank", "no such account");
			return;
		}
		authenticate(jm, r, RES_UPLOAD, dl);
		return;
	}
	if (strncmp(r->path, "/jmap/download/", 15) == 0) {
		if (!get) {
			method_not_allowed(r, "GET, HEAD");
			return;
		}
		char *dl[4] = {0};
		if (download_parse(r, dl) < 0) {
			dl_free(dl);
			problem(r, 404, "about:blank", "no such blob");
			return;
		}
		authenticate(jm, r, RES_DOWNLOAD, dl);
		return;
	}
	if (strncmp(r->path, "/jmap/view/", 11) == 0) {
		if (!get) {
			method_not_allowed(r, "GET, HEAD");
			return;
		}
		char *dl[4] = {0};
		if (view_parse(r, dl) < 0) {
			dl_free(dl);
			problem(r, 404, "about:blank", "no such blob");
			return;
		}
		authenticate(jm, r, RES_VIEW, dl);
		return;
	}
	problem(r, 404, "about:blank", "no such resource");
}

struct jmap *jmap_new(struct server *srv)
{
	struct jmap *jm = xcalloc(1, sizeof *jm);
	jm->srv = srv;
	json_object_seed(0);      /* before any pool thread makes an object */
	jm->push = jmap_push_new(srv);
	jm->holds = http_holds_new(srv, refuse_login);
	return jm;
}

void jmap_set_cookie_auth(struct jmap *jm, jmap_cookie_auth_fn *fn, void *arg)
{
	jm->cookie_auth = fn;
	jm->cookie_arg = arg;
}

void jmap_shutdown(struct jmap *jm)
{
	http_holds_flush(jm->holds);
	jmap_push_shutdown(jm->push);
}

void jmap_free(struct jmap **jp)
{
	struct jmap *jm = *jp;
	if (jm == NULL)
		return;
	http_holds_free(&jm->holds);
	jmap_push_free(&jm->push);
	free(jm);
	*jp = NULL;
}
