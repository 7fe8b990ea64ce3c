/* web.h - the webmail page over core/http: its files and its login.
 *
 * Resources: GET / (the page), /app.js, /app.css, /favicon.svg -- compiled
 * into the binary from www/ (web_assets.h), gzipped once at start-up and
 * served under a strict Content-Security-Policy; POST /login (form or JSON
 * {user, password}, checked like IMAP LOGIN: auth_login_cached in a
 * server_auth_job, server_auth_failed's shared delays, plaintext_auth),
 * GET /login (is this browser logged in: its user and CSRF token), POST
 * /logout.  A login makes a session: a 256-bit random id in the cookie
 * yubin_session (HttpOnly; SameSite=Strict; Path=/; Secure over TLS) and a
 * CSRF token bound to it that every POST must carry in X-Yubin-CSRF.
 * Sessions live in memory only: an idle timeout, a maximum age, a cap per
 * account and in all.  web_cookie_auth lets the JMAP API take the cookie
 * in place of HTTP Basic (jmap_set_cookie_auth).
 *
 * Loop thread only. */
#ifndef YUBIN_PROTO_WEB_H
#define YUBIN_PROTO_WEB_H

struct account;
struct http_request;
struct server;
struct web;

#define WEB_SESSION_IDLE_MS (30 * 60 * 1000ull)        /* unused this long: gone */
#define WEB_SESSION_MAX_AGE_MS (12 * 3600 * 1000ull)   /* and at most this old */
#define WEB_SESSIONS_PER_ACCOUNT 16                    /* the oldest is dropped */
#define WEB_SESSIONS_MAX 10000
#define WEB_LOGIN_BODY_MAX 4096

/* Compresses the assets (start-up, before the loop runs). */
struct web *web_new(struct server *srv);
/* The http_handler's on_request for everything but JMAP (arg: struct web). */
void web_on_request(struct http_request *r, void *arg);
/* For jmap_set_cookie_auth: r has no Authorization.  0: no session cookie
 * (the caller asks for Basic); 1: a live session, *acct_r filled (id,
 * address and inbox_id; heap, account_free); -1: answered here -- 401 for
 * an unknown or expired session, 403 for a POST without the session's
 * CSRF token. */
int web_cookie_auth(void *arg, struct http_request *r, struct account *acct_r);
/* Shutdown: answer the failed logins still waiting out their delay. */
void web_shutdown(struct web *w);
void web_free(struct web **w);

#endif
