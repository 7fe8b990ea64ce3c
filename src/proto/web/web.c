/* web.c - the page's files, its login and its sessions.
 *
 * A session id is 32 bytes from randombytes_buf, sent as 64 hex digits in
 * the cookie; the table keeps only its BLAKE2b digest (a memory dump or a
 * timing difference in the lookup gives nothing to replay).  The CSRF
 * token is another 32 random bytes, kept with the session, compared in
 * constant time.  The table is a list in most-recently-used order: a
 * lookup moves its hit to the front, expired sessions are dropped from the
 * back, and a new one past a cap pushes out the oldest. */
#include "proto/web/web.h"

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <jansson.h>
#include <sodium.h>
#include <zlib.h>

#include "auth/auth.h"
#include "core/conf.h"
#include "core/http.h"
#include "core/log.h"
#include "core/util.h"
#include "proto/http_login.h"
#include "proto/server.h"
#include "proto/web/web_assets.h"
#include "proto/web/web_parse.h"
#include "store/store.h"

#define COOKIE "yubin_session"
#define CSRF_HEADER "x-yubin-csrf"
#define ID_BYTES 32
#define HEX_LEN (ID_BYTES * 2)
#define USER_MAX 330
#define PASSWORD_MAX 1024

static const char csp[] =
	"default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
	"connect-src 'self'; frame-src 'self' blob:; frame-ancestors 'none'; base-uri 'none'; "
	"form-action 'self'";

struct session {
	unsigned char key[crypto_generichash_BYTES];   /* digest of the id */
	char csrf[HEX_LEN + 1];
	int64_t account_id, inbox_id;
	char *address;
	uint64_t created, used;     /* uv_now */
	struct session *prev, *next;
};

struct gz {
	unsigned char *data;
	size_t len;
};

struct web {
	struct server *srv;
	struct session *head, *tail;        /* most recently used first */
	size_t count;
	struct http_holds *holds;           /* refused logins held back */
	struct gz *gz;                      /* web_assets[i] gzipped */
};

struct login {
	struct web *w;
	struct http_request *r;
	char *address, *password;
	size_t pwlen;
	struct account acct;
	bool cached;
	int rc;
};

/* ---- answers ---- */

static void add_security_headers(struct http_request *r)
{
	http_request_add_header(r, "content-security-policy", csp);
	http_request_add_header(r, "x-content-type-options", "nosniff");
	http_request_add_header(r, "referrer-policy", "no-referrer");
	http_request_add_header(r, "x-frame-options", "DENY");
}

static void respond(struct http_request *r, int status, const char *ctype, const void *body,
		    size_t len)
{
	add_security_headers(r);
	http_respond(r, status, ctype, body, len);
}

static void respond_json(struct http_request *r, int status, json_t *v)
{
	char *text = json_dumps(v, JSON_COMPACT);
	json_decref(v);
	respond(r, status, "application/json", text, text ? strlen(text) : 0);
	free(text);
}

static void respond_error(struct http_request *r, int status, const char *msg)
{
	respond_json(r, status, json_pack("{s:s}", "error", msg));
}

static void refuse_login(struct http_request *r)
{
	respond_error(r, 401, "authentication failed");
}

/* JMAP's own shape for errors (RFC 7807), for web_cookie_auth. */
static void respond_problem(struct http_request *r, int status, const char *detail)
{
	json_t *p = json_pack("{s:s, s:i, s:s}", "type", "about:blank", "status", status,
			      "detail", detail);
	char *text = json_dumps(p, JSON_COMPACT);
	json_decref(p);
	respond(r, status, "application/problem+json", text, text ? strlen(text) : 0);
	free(text);
}

static void set_cookie(struct http_request *r, const char *value)
{
	char c[200];
	snprintf(c, sizeof c, COOKIE "=%s; Path=/; HttpOnly; SameSite=Strict%s%s", value,
		 r->tls ? "; Secure" : "", value[0] ? "" : "; Max-Age=0");
	http_request_add_header(r, "set-cookie", c);
}

/* ---- sessions ---- */

static void unlink_session(struct web *w, struct session *s)
{
	if (s->prev)
		s->prev->next = s->next;
	else
		w->head = s->next;
	if (s->next)
		s->next->prev = s->prev;
	else
		w->tail = s->prev;
	s->prev = s->next = NULL;
}

static void push_front(struct web *w, struct session *s)
{
	s->prev = NULL;
	s->next = w->head;
	if (w->head)
		w->head->prev = s;
	w->head = s;
	if (w->tail == NULL)
		w->tail = s;
}

static void drop_session(struct web *w, struct session *s, const char *why)
{
	unlink_session(w, s);
	w->count--;
	log_debug("web: session ended user=%s reason=%s", s->address, why);
	free(s->address);
	sodium_memzero(s, sizeof *s);
	free(s);
}

static bool expired(const struct session *s, uint64_t now)
{
	return now - s->used > WEB_SESSION_IDLE_MS || now - s->created > WEB_SESSION_MAX_AGE_MS;
}

static void sweep(struct web *w, uint64_t now)
{
	while (w->tail && expired(w->tail, now))
		drop_session(w, w->tail, "expired");
}

/* The session named by 64 hex digits, or NULL. */
static struct session *find(struct web *w, const char *hex)
{
	unsigned char id[ID_BYTES], key[crypto_generichash_BYTES];
	size_t n = 0;
	if (strlen(hex) != HEX_LEN ||
	    sodium_hex2bin(id, sizeof id, hex, HEX_LEN, NULL, &n, NULL) != 0 || n != ID_BYTES)
		return NULL;
	crypto_generichash(key, sizeof key, id, sizeof id, NULL, 0);
	sodium_memzero(id, sizeof id);
	uint64_t now = uv_now(w->srv->loop);
	sweep(w, now);
	for (struct session *s = w->head; s; s = s->next) {
		if (memcmp(s->key, key, sizeof key) != 0)
			continue;
		if (expired(s, now)) {
			drop_session(w, s, "expired");
			return NULL;
		}
		s->used = now;
		unlink_session(w, s);
		push_front(w, s);
		return s;
	}
	return NULL;
}

/* A new session for acct; its id (hex) into idhex. */
static struct session *session_new(struct web *w, const struct account *acct,
				   char idhex[HEX_LEN + 1])
{
	uint64_t now = uv_now(w->srv->loop);
	sweep(w, now);
	/* caps: the account's oldest session, then the oldest of all, go */
	struct session *oldest = NULL;
	size_t mine = 0;
	for (struct session *s = w->head; s; s = s->next)
		if (s->account_id == acct->id) {
			mine++;
			oldest = s;
		}
	if (mine >= WEB_SESSIONS_PER_ACCOUNT)
		drop_session(w, oldest, "per-account cap");
	if (w->count >= WEB_SESSIONS_MAX)
		drop_session(w, w->tail, "cap");
	unsigned char id[ID_BYTES], csrf[ID_BYTES];
	randombytes_buf(id, sizeof id);
	randombytes_buf(csrf, sizeof csrf);
	struct session *s = xcalloc(1, sizeof *s);
	crypto_generichash(s->key, sizeof s->key, id, sizeof id, NULL, 0);
	sodium_bin2hex(idhex, HEX_LEN + 1, id, sizeof id);
	sodium_bin2hex(s->csrf, sizeof s->csrf, csrf, sizeof csrf);
	sodium_memzero(id, sizeof id);
	sodium_memzero(csrf, sizeof csrf);
	s->account_id = acct->id;
	s->inbox_id = acct->inbox_id;
	s->address = xstrdup(acct->address);
	s->created = s->used = now;
	push_front(w, s);
	w->count++;
	return s;
}

enum cookie_state { NO_COOKIE, BAD_COOKIE, LIVE };

static enum cookie_state session_of(struct web *w, struct http_request *r,
				    struct session **s_r)
{
	char hex[HEX_LEN + 2];
	*s_r = NULL;
	int rc = web_parse_cookie(http_request_header(r, "cookie"), COOKIE, hex, sizeof hex);
	if (rc == 0)
		return NO_COOKIE;
	if (rc < 0 || (*s_r = find(w, hex)) == NULL)
		return BAD_COOKIE;
	return LIVE;
}

static bool csrf_ok(const struct session *s, struct http_request *r)
{
	const char *t = http_request_header(r, CSRF_HEADER);
	return t && strlen(t) == HEX_LEN && sodium_memcmp(t, s->csrf, HEX_LEN) == 0;
}

int web_cookie_auth(void *arg, struct http_request *r, struct account *acct_r)
{
	struct web *w = arg;
	struct session *s;
	switch (session_of(w, r, &s)) {
	case NO_COOKIE:
		return 0;
	case BAD_COOKIE:
		set_cookie(r, "");
		respond_problem(r, 401, "the session has ended; log in again");
		return -1;
	case LIVE:
		break;
	}
	if (strcmp(r->method, "GET") != 0 && strcmp(r->method, "HEAD") != 0 && !csrf_ok(s, r)) {
		log_info("conn=%s web: refused %s %s: no valid " CSRF_HEADER " user=%s", r->connid,
			 r->method, r->path, s->address);
		respond_problem(r, 403, "a state-changing request needs the session's "
				"X-Yubin-CSRF header");
		return -1;
	}
	memset(acct_r, 0, sizeof *acct_r);
	acct_r->id = s->account_id;
	acct_r->inbox_id = s->inbox_id;
	acct_r->address = xstrdup(s->address);
	return 1;
}

/* ---- login ---- */

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

/* A browser tells where a request comes from (Fetch Metadata, Origin):
 * a POST made by another site's page is refused even before the cookie
 * is looked at (login CSRF). */
static bool same_origin(struct http_request *r)
{
	const char *site = http_request_header(r, "sec-fetch-site");
	if (site && strcmp(site, "same-origin") != 0 && strcmp(site, "none") != 0)
		return false;
	const char *origin = http_request_header(r, "origin");
	if (origin == NULL)
		return true;
	const char *host = strstr(origin, "://");
	return host && strcmp(host + 3, r->authority) == 0;
}

static void login_free(struct login *l)
{
	if (l->password)
		auth_wipe(l->password, l->pwlen + 1);
	free(l->address);
	if (l->rc == 1)
		account_free(&l->acct);
	free(l);
}

static void login_work(void *arg)
{
	struct login *l = arg;
	l->rc = auth_login_cached(l->w->srv->store, l->address, l->password, &l->acct,
				  &l->cached);
}

static void login_done(void *arg)
{
	struct login *l = arg;
	struct web *w = l->w;
	struct server *srv = w->srv;
	struct http_request *r = l->r;

	if (http_request_gone(r)) {
		http_respond(r, 500, NULL, NULL, 0);
		login_free(l);
		return;
	}
	if (l->rc == 0) {
		http_login_failed(w->holds, r, "web", "password", l->address);
		login_free(l);
		return;
	}
	if (l->rc < 0) {
		log_error("conn=%s web: authentication unavailable (store error)", r->connid);
		login_free(l);
		respond_error(r, 503, "authentication is temporarily unavailable");
		return;
	}
	server_auth_succeeded(srv, r->peer, l->acct.address);
	http_request_set_user(r, l->acct.address);
	char idhex[HEX_LEN + 1];
	struct session *s = session_new(w, &l->acct, idhex);
	log_info("conn=%s web: login user=%s tls=%s cached=%s sessions=%zu", r->connid,
		 l->acct.address, r->tls ? "yes" : "no", l->cached ? "yes" : "no", w->count);
	set_cookie(r, idhex);
	sodium_memzero(idhex, sizeof idhex);
	respond_json(r, 200, json_pack("{s:s, s:s}", "user", s->address, "csrf", s->csrf));
	login_free(l);
}

/* user and password from a JSON object or a form body; 0, or -1 with
 * *why set. */
static int login_fields(struct http_request *r, char *user, char *pw, const char **why)
{
	size_t len;
	const char *body = http_request_body(r, &len);
	const char *ct = http_request_header(r, "content-type");
	*why = "expected user and password (a JSON object or a form)";
	if (ct && strncasecmp(ct, "application/x-www-form-urlencoded", 33) == 0)
		return web_parse_form(body, len, "user", user, USER_MAX + 1) == 1 &&
		       web_parse_form(body, len, "password", pw, PASSWORD_MAX + 1) == 1 ? 0 : -1;
	if (ct && strncasecmp(ct, "application/json", 16) != 0)
		return -1;
	json_t *v = json_loadb(body ? body : "", len, JSON_REJECT_DUPLICATES, NULL);
	const char *u = json_string_value(json_object_get(v, "user"));
	const char *p = json_string_value(json_object_get(v, "password"));
	int rc = -1;
	if (u && p && strlen(u) <= USER_MAX && strlen(p) <= PASSWORD_MAX) {
		snprintf(user, USER_MAX + 1, "%s", u);
		snprintf(pw, PASSWORD_MAX + 1, "%s", p);
		rc = 0;
	}
	if (p)
		sodium_memzero((char *)p, strlen(p));
	json_decref(v);
	return rc;
}

static void login_post(struct web *w, struct http_request *r)
{
	size_t len;
	if (!same_origin(r)) {
		respond_error(r, 403, "cross-site login refused");
		return;
	}
	if (!plaintext_ok(w->srv, r)) {
		log_info("conn=%s web: login refused: password over plain HTTP from [%s] "
			 "(plaintext_auth)", r->connid, r->peer);
		respond_error(r, 403, "passwords are accepted only over HTTPS");
		return;
	}
	(void)http_request_body(r, &len);
	if (len > WEB_LOGIN_BODY_MAX) {
		respond_error(r, 413, "the login request is too large");
		return;
	}
	char *user = xmalloc(USER_MAX + 1), *pw = xmalloc(PASSWORD_MAX + 1);
	const char *why;
	user[0] = pw[0] = '\0';
	if (login_fields(r, user, pw, &why) < 0 || user[0] == '\0' || pw[0] == '\0') {
		free(user);
		auth_wipe(pw, PASSWORD_MAX + 1);
		respond_error(r, 400, why);
		return;
	}
	struct login *l = xcalloc(1, sizeof *l);
	l->w = w;
	l->r = r;
	l->address = xstrdup(user);
	l->pwlen = strlen(pw);
	l->password = xstrndup(pw, l->pwlen);
	free(user);
	auth_wipe(pw, PASSWORD_MAX + 1);
	server_auth_job(w->srv, NULL, login_work, login_done, l);
}

/* GET /login: this browser's session, for a page that was reloaded (the
 * cookie is HttpOnly; the token is readable by same-origin scripts only). */
static void login_state(struct web *w, struct http_request *r)
{
	struct session *s;
	if (session_of(w, r, &s) != LIVE) {
		respond_error(r, 401, "not logged in");
		return;
	}
	http_request_set_user(r, s->address);
	respond_json(r, 200, json_pack("{s:s, s:s}", "user", s->address, "csrf", s->csrf));
}

static void logout(struct web *w, struct http_request *r)
{
	struct session *s;
	enum cookie_state st = session_of(w, r, &s);
	if (st == LIVE && !csrf_ok(s, r)) {
		log_info("conn=%s web: refused POST /logout: no valid " CSRF_HEADER " user=%s",
			 r->connid, s->address);
		respond_error(r, 403, "logout needs the session's X-Yubin-CSRF header");
		return;
	}
	if (st == LIVE) {
		http_request_set_user(r, s->address);
		log_info("conn=%s web: logout user=%s", r->connid, s->address);
		drop_session(w, s, "logout");
	}
	set_cookie(r, "");
	respond_json(r, 200, json_object());
}

/* ---- files ---- */

static void serve_asset(struct web *w, struct http_request *r, size_t i)
{
	const struct web_asset *a = &web_assets[i];
	http_request_add_header(r, "vary", "accept-encoding");
	if (w->gz[i].data && web_parse_accepts_gzip(http_request_header(r, "accept-encoding"))) {
		http_request_add_header(r, "content-encoding", "gzip");
		respond(r, 200, a->content_type, w->gz[i].data, w->gz[i].len);
		return;
	}
	respond(r, 200, a->content_type, a->data, a->len);
}

static void method_not_allowed(struct http_request *r, const char *allow)
{
	http_request_add_header(r, "allow", allow);
	respond(r, 405, "text/plain; charset=utf-8", "method not allowed\n", 19);
}

void web_on_request(struct http_request *r, void *arg)
{
	struct web *w = arg;
	bool get = strcmp(r->method, "GET") == 0 || strcmp(r->method, "HEAD") == 0;
	bool post = strcmp(r->method, "POST") == 0;

	if (strcmp(r->path, "/login") == 0) {
		if (post)
			login_post(w, r);
		else if (get)
			login_state(w, r);
		else
			method_not_allowed(r, "GET, HEAD, POST");
		return;
	}
	if (strcmp(r->path, "/logout") == 0) {
		if (post)
			logout(w, r);
		else
			method_not_allowed(r, "POST");
		return;
	}
	const char *path = strcmp(r->path, "/index.html") == 0 ? "/" : r->path;
	for (size_t i = 0; web_assets[i].path; i++) {
		if (strcmp(web_assets[i].path, path) != 0)
			continue;
		if (get)
			serve_asset(w, r, i);
		else
			method_not_allowed(r, "GET, HEAD");
		return;
	}
	respond(r, 404, "text/plain; charset=utf-8", "not found\n", 10);
}

/* ---- life ---- */

static void gzip_once(const struct web_asset *a, struct gz *g)
{
	z_stream z;
	memset(&z, 0, sizeof z);
	if (deflateInit2(&z, Z_BEST_COMPRESSION, Z_DEFLATED, 15 + 16, 9, Z_DEFAULT_STRATEGY) !=
	    Z_OK)
		log_fatal("web: zlib initialisation failed");
	size_t cap = deflateBound(&z, (uLong)a->len);
	g->data = xmalloc(cap);
	z.next_in = (Bytef *)a->data;
	z.avail_in = (uInt)a->len;
	z.next_out = g->data;
	z.avail_out = (uInt)cap;
	if (deflate(&z, Z_FINISH) != Z_STREAM_END)
		log_fatal("web: compressing %s failed", a->path);
	g->len = cap - z.avail_out;
	deflateEnd(&z);
	if (g->len >= a->len) {             /* not worth it */
		free(g->data);
		g->data = NULL;
		g->len = 0;
	}
}

struct web *web_new(struct server *srv)
{
	struct web *w = xcalloc(1, sizeof *w);
	size_t n = 0, raw = 0, packed = 0;
	w->srv = srv;
	w->holds = http_holds_new(srv, refuse_login);
	while (web_assets[n].path)
		n++;
	w->gz = xcalloc(n ? n : 1, sizeof *w->gz);
	for (size_t i = 0; i < n; i++) {
		gzip_once(&web_assets[i], &w->gz[i]);
		raw += web_assets[i].len;
		packed += w->gz[i].data ? w->gz[i].len : web_assets[i].len;
	}
	log_debug("web: %zu files, %zu bytes, %zu gzipped", n, raw, packed);
	return w;
}

void web_shutdown(struct web *w)
{
	if (w)
		http_holds_flush(w->holds);
}

void web_free(struct web **wp)
{
	struct web *w = *wp;
	if (w == NULL)
		return;
	http_holds_free(&w->holds);
	while (w->head)
		drop_session(w, w->head, "stop");
	for (size_t i = 0; web_assets[i].path; i++)
		free(w->gz[i].data);
	free(w->gz);
	free(w);
	*wp = NULL;
}
