/* http_login.h - a wrong password over HTTP, handled as the mail
 * protocols handle it: logged, counted by server_auth_failed (the failed-
 * login delays shared with SMTP AUTH, POP3 and IMAP), and its 401 held
 * back for that delay.  Used by JMAP's Basic auth and the page's login.
 * Loop thread only. */
#ifndef YUBIN_PROTO_HTTP_LOGIN_H
#define YUBIN_PROTO_HTTP_LOGIN_H

struct server;
struct http_request;
struct http_holds;

/* refuse(r) answers a refused login (each owner its own 401). */
struct http_holds *http_holds_new(struct server *srv, void (*refuse)(struct http_request *r));
/* A failed password check of address from r: the log line "conn=ID
 * <proto>: auth failed user=... method=<method> from [IP]", then refuse(r)
 * now or once the delay is over. */
void http_login_failed(struct http_holds *h, struct http_request *r, const char *proto,
		       const char *method, const char *address);
/* Shutdown: answer every held-back refusal now. */
void http_holds_flush(struct http_holds *h);
/* After http_holds_flush. */
void http_holds_free(struct http_holds **h);

#endif
