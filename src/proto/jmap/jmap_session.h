/* jmap_session.h - JMAP (RFC 8620 Core, RFC 8621 Mail) over core/http.
 *
 * Resources: GET /.well-known/jmap (redirect), GET /jmap/session (the
 * session resource), POST /jmap/api/ (method calls).  Every resource but
 * the redirect needs HTTP Basic credentials, checked like IMAP LOGIN
 * (auth_login_cached in a server_auth_job, the failed-login delays of
 * server_auth_failed, plaintext only as plaintext_auth allows).  An API
 * request is parsed and run in one server_job (JSON parsing of up to
 * JMAP_MAX_SIZE_REQUEST and the store reads stay off the loop). */
#ifndef YUBIN_PROTO_JMAP_SESSION_H
#define YUBIN_PROTO_JMAP_SESSION_H

struct account;
struct server;
struct http_request;
struct jmap;

/* maxSizeRequest: the HTTP body cap of the API (h2o answers 413 beyond). */
#define JMAP_MAX_SIZE_REQUEST (10 * 1024 * 1024)
#define JMAP_MAX_CALLS_IN_REQUEST 16
#define JMAP_MAX_CONCURRENT_REQUESTS 4      /* per account */
#define JMAP_MAX_OBJECTS_IN_GET 500
#define JMAP_MAX_OBJECTS_IN_SET 500

struct jmap *jmap_new(struct server *srv);
/* The http_handler's on_request (arg is the struct jmap). */
void jmap_on_request(struct http_request *r, void *arg);
/* Another login for a request without Authorization (the page's session
 * cookie, proto/web's web_cookie_auth): 1 with *acct_r filled (heap, freed
 * here), 0 none (Basic is asked for), -1 it has answered r itself. */
typedef int jmap_cookie_auth_fn(void *arg, struct http_request *r, struct account *acct_r);
void jmap_set_cookie_auth(struct jmap *j, jmap_cookie_auth_fn *fn, void *arg);
/* Shutdown: answer the failed logins still waiting out their delay now. */
void jmap_shutdown(struct jmap *j);
void jmap_free(struct jmap **j);

#endif
