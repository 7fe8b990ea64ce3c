/* smtp_submit.c - blocking message submission.  See smtp_submit.h.
 *
 * A straight line of steps, each a command and its reply, over net.h; the
 * replies go through smtp_reply_feed() (the parser the delivery agent
 * uses), EHLO through smtp_caps_parse().  What the message needs (8-bit
 * body, UTF-8 addresses, its size) is worked out before connecting and
 * checked against the last EHLO before AUTH, so a server that cannot take
 * the message is told nothing more than EHLO.
 *
 * Pipelining (RFC 2920): MAIL and the RCPTs go out in one write, in groups
 * of at most PIPELINE_GROUP commands so that a long recipient list cannot
 * fill both directions' socket buffers (we write while the server's
 * replies pile up unread); then all their replies are read.  DATA waits
 * for them: one refused recipient ends the submission before the message
 * goes anywhere. */
#include "client/smtp_submit.h"

#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "auth/scram.h"
#include "client/net.h"
#include "core/buf.h"
#include "core/util.h"
#include "mail/addr.h"
#include "mail/dotstuff.h"
#include "proto/smtp/smtp_reply.h"

/* Commands in one pipelined write. */
#define PIPELINE_GROUP 100
/* Body bytes normalised, dot-stuffed and written per step. */
#define CHUNK (64 * 1024)
/* A reply as quoted in an error ("550 5.1.1 ..."). */
#define QUOTE_MAX 600
/* A MAIL or RCPT line: the path (ADDR_PATH_MAX) and parameters. */
#define CMD_MAX 512
/* Longest EHLO name (RFC 1035 domain or address literal). */
#define HELO_MAX 255
/* Base64 length of n bytes, without the NUL. */

struct sub {
	const struct smtp_submit_opts *o;
	struct net *n;
	struct net_tls *tls;
	struct smtp_reply r;
	struct smtp_caps caps;
	unsigned tmo;               /* ms per wait */
	bool redact;                /* the server's 334 texts are SASL payloads */
	char helo[HELO_MAX + 1];
	char line[NET_LINE_MAX + 1];
	char *err;
	size_t errsz;
	struct smtp_submit_result res;  /* the first cause of a failure wins */
};

/* Record why the submission fails; the first cause stays (a QUIT or an
 * AUTH cancel after a refusal does not hide it). */
static void set_cause(struct sub *s, enum smtp_submit_fail f)
{
	if (s->res.fail == SMTP_SUBMIT_FAIL_NONE)
		s->res.fail = f;
}

static int fail(struct sub *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static int fail(struct sub *s, const char *fmt, ...)
{
	va_list ap;

	if (s->errsz == 0)
		return -1;
	va_start(ap, fmt);
	vsnprintf(s->err, s->errsz, fmt, ap);
	va_end(ap);
	return -1;
}

/* Add " (context)" to the error net.h left, e.g. "... closed the
 * connection (waiting for the greeting)". */
static int fail_ctx(struct sub *s, const char *ctx)
{
	return net_err_context(s->err, s->errsz, ctx);
}

/* ---- trace ---- */

static void trace(struct sub *s, const char *prefix, const char *text, size_t len)
{
	net_trace(s->o->trace, prefix, text, len);
}

static void trace_str(struct sub *s, const char *prefix, const char *text)
{
	trace(s, prefix, text, strlen(text));
}

/* ---- commands and replies ---- */

/* One command line (CR LF added); shown in the trace as it is. */
static int cmd(struct sub *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static int cmd(struct sub *s, const char *fmt, ...)
{
	char line[CMD_MAX + 3];
	va_list ap;

	va_start(ap, fmt);
	int k = vsnprintf(line, sizeof line - 2, fmt, ap);
	va_end(ap);
	/* Callers pass checked, bounded values: a cut line would be a bug. */
	if (k < 0 || (size_t)k >= sizeof line - 2) {
		set_cause(s, SMTP_SUBMIT_FAIL_ARGS);
		return fail(s, "internal error: command too long");
	}
	trace(s, "C: ", line, (size_t)k);
	memcpy(line + k, "\r\n", 2);
	if (net_write(s->n, line, (size_t)k + 2, s->tmo, s->err, s->errsz) < 0) {
		set_cause(s, SMTP_SUBMIT_FAIL_NETWORK);
		return -1;
	}
	return 0;
}

/* prefix, then data[0..len) in base64, then CR LF: a SASL line.  The trace
 * shows only shown; every copy is wiped. */
static int cmd_secret(struct sub *s, const char *prefix, const void *data, size_t len,
		      const char *shown)
{
	size_t pl = strlen(prefix), sz = pl + B64_LEN(len) + 3;
	char *line = xmalloc(sz);

	memcpy(line, prefix, pl);
	size_t k = pl + base64_encode(data, len, line + pl);
	memcpy(line + k, "\r\n", 2);
	trace_str(s, "C: ", shown);
	int r = net_write(s->n, line, k + 2, s->tmo, s->err, s->errsz);
	explicit_bzero(line, sz);
	free(line);
	if (r < 0)
		set_cause(s, SMTP_SUBMIT_FAIL_NETWORK);
	return r;
}

/* Read one complete reply into s->r within timeout_ms.  0, or -1 with the
 * error (ctx says what we were waiting for). */
static int reply(struct sub *s, unsigned timeout_ms, const char *ctx)
{
	uint64_t deadline = now_ms() + timeout_ms;
	const char *e;

	smtp_reply_reset(&s->r);
	for (size_t i = 0; i < SMTP_REPLY_LINES_MAX + 1; i++) {
		/* The whole reply within timeout_ms, however many lines. */
		uint64_t now = now_ms();
		size_t len;
		if (now >= deadline ||
		    net_read_line(s->n, s->line, &len, (unsigned)(deadline - now), s->err,
				  s->errsz) < 0) {
			set_cause(s, SMTP_SUBMIT_FAIL_NETWORK);
			if (now_ms() >= deadline)
				return fail(s, "%s: no complete reply within %u s (%s)",
					    net_name(s->n), (timeout_ms + 999) / 1000, ctx);
			return fail_ctx(s, ctx);
		}
		if (s->redact && len > 3 && memcmp(s->line, "334", 3) == 0)
			trace(s, "S: ", "334 <redacted>", 14);
		else
			trace(s, "S: ", s->line, len);
		/* net.h takes lines up to NET_LINE_MAX; the parser keeps
		 * SMTP_REPLY_LINE_MAX: the rest of a longer line is only text,
		 * dropped rather than failing the whole submission. */
		int r = smtp_reply_feed(&s->r, s->line, MIN(len, (size_t)SMTP_REPLY_LINE_MAX), &e);
		if (r == 1)
			return 0;
		if (r < 0) {
			set_cause(s, SMTP_SUBMIT_FAIL_PROTOCOL);
			return fail(s, "%s sent a malformed reply: %s (%s)", net_name(s->n), e, ctx);
		}
	}
	set_cause(s, SMTP_SUBMIT_FAIL_PROTOCOL);
	return fail(s, "%s sent a reply of too many lines (%s)", net_name(s->n), ctx);
}

static bool ok2xx(const struct sub *s)
{
	return smtp_reply_class(&s->r) == SMTP_REPLY_OK;
}

/* "<what> refused: server said: 550 5.7.1 ..." */
static int refused(struct sub *s, const char *what)
{
	char q[QUOTE_MAX];

	if (s->res.fail == SMTP_SUBMIT_FAIL_NONE) {
		s->res.fail = SMTP_SUBMIT_FAIL_REPLY;
		s->res.code = s->r.code;
		snprintf(s->res.enh, sizeof s->res.enh, "%s", s->r.enh);
	}
	smtp_reply_oneline(&s->r, q, sizeof q);
	return fail(s, "%s refused: server said: %s", what, q);
}

/* ---- checks before connecting ---- */

/* addr as a path: 0 (utf8 set when it is not ASCII) or -1. */
static int check_addr(struct sub *s, const char *role, const char *addr, bool null_ok,
		      bool *utf8)
{
	char path[ADDR_PATH_MAX + 1];
	struct mail_addr a;
	enum addr_error ae;
	const char *e = "";
	size_t l = strlen(addr);

	if (l == 0 && null_ok)
		return 0;
	if (l == 0)
		return fail(s, "%s: empty address", role);
	if (l + 2 > ADDR_PATH_MAX)
		return fail(s, "%s: address longer than %d bytes", role, ADDR_PATH_MAX - 2);
	snprintf(path, sizeof path, "<%s>", addr);
	long r = addr_parse_path(path, l + 2, true, &a, &ae, &e);
	if (r != (long)(l + 2) || a.null)
		return fail(s, "%s: \"%.300s\" is not an address%s%s", role, addr, r < 0 ? ": " : "",
			    r < 0 ? e : "");
	if (a.utf8)
		*utf8 = true;
	return 0;
}

static bool helo_ok(const char *h)
{
	size_t l = strlen(h);

	if (l == 0 || l > HELO_MAX)
		return false;
	for (size_t i = 0; i < l; i++) {
		unsigned char c = (unsigned char)h[i];
		if (c <= ' ' || c >= 0x7f)
			return false;
	}
	return true;
}

/* gethostname() when it is a dotted name of letters, digits, '-' and '.'
 * (RFC 5321 4.1.1.1 wants the FQDN); else the address literal of our end
 * of the connection, which is always valid and never needs DNS. */
static void default_helo(struct sub *s)
{
	char h[HELO_MAX + 1] = "";
	bool good = gethostname(h, sizeof h) == 0 && h[sizeof h - 1] == '\0' &&
		    strchr(h, '.') != NULL && h[0] != '.' && h[strlen(h) - 1] != '.';

	for (const char *p = h; good && *p; p++)
		good = (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
		       (*p >= '0' && *p <= '9') || *p == '-' || *p == '.';
	if (good)
		snprintf(s->helo, sizeof s->helo, "%s", h);
	else if (s->o->unix_path != NULL)
		snprintf(s->helo, sizeof s->helo, "localhost");   /* no address to name */
	else if (net_local_literal(s->n, s->helo, sizeof s->helo) < 0)
		snprintf(s->helo, sizeof s->helo, "[127.0.0.1]");
}

/* What msg[0..len) will be on the wire, dot-stuffing aside (RFC 1870
 * SIZE counts that): every line end CR LF, one added at the end if
 * missing. */
static size_t wire_size(const char *msg, size_t len)
{
	size_t n = 0;

	for (size_t i = 0; i < len; i++) {
		if (msg[i] == '\r' && i + 1 < len && msg[i + 1] == '\n') {
			n += 2;
			i++;
		} else if (msg[i] == '\r' || msg[i] == '\n') {
			n += 2;
		} else {
			n++;
		}
	}
	if (len > 0 && msg[len - 1] != '\n' && msg[len - 1] != '\r')
		n += 2;
	return n;
}

static bool has_8bit(const char *msg, size_t len)
{
	for (size_t i = 0; i < len; i++)
		if ((unsigned char)msg[i] >= 0x80)
			return true;
	return false;
}

/* ---- session steps ---- */

/* EHLO, or HELO when the server refuses EHLO as unknown (5xx): then
 * there are no extensions. */
static int hello(struct sub *s)
{
	memset(&s->caps, 0, sizeof s->caps);
	if (cmd(s, "EHLO %s", s->helo) < 0 || reply(s, s->tmo, "waiting for the EHLO reply") < 0)
		return -1;
	if (ok2xx(s)) {
		smtp_caps_parse(&s->r, &s->caps);
		return 0;
	}
	if (smtp_reply_class(&s->r) != SMTP_REPLY_PERM)
		return refused(s, "EHLO");
	if (cmd(s, "HELO %s", s->helo) < 0 || reply(s, s->tmo, "waiting for the HELO reply") < 0)
		return -1;
	return ok2xx(s) ? 0 : refused(s, "HELO");
}

static int starttls(struct sub *s)
{
	char d[128];

	if (!s->caps.starttls) {
		set_cause(s, SMTP_SUBMIT_FAIL_CAPS);
		return fail(s, "%s does not offer STARTTLS: not going on without TLS (only TLS "
			    "mode none sends in clear)", net_name(s->n));
	}
	if (cmd(s, "STARTTLS") < 0 || reply(s, s->tmo, "waiting for the STARTTLS reply") < 0)
		return -1;
	if (s->r.code != 220)
		return refused(s, "STARTTLS");
	if (net_start_tls(s->n, s->tls, s->o->host, s->tmo, s->err, s->errsz) < 0) {
		set_cause(s, SMTP_SUBMIT_FAIL_TLS);
		return -1;
	}
	trace_str(s, "* TLS: ", net_tls_desc(s->n, d, sizeof d));
	/* RFC 3207 4.2: forget what was learnt in clear, ask again. */
	return hello(s);
}

/* The server's 334 challenge decoded (heap, NUL-terminated, *len_r bytes),
 * or NULL when it is not base64. */
static unsigned char *challenge(struct sub *s, size_t *len_r)
{
	const char *t = s->r.text.data;
	size_t l = s->r.text.len;

	while (l > 0 && t[l - 1] == ' ')
		l--;
	unsigned char *out = xmalloc(l / 4 * 3 + 4);
	long n = base64_decode(t, l, out);
	if (n < 0) {
		free(out);
		return NULL;
	}
	out[n] = '\0';
	*len_r = (size_t)n;
	return out;
}

/* Abandon an exchange the server started (RFC 4954 4: "*"), then fail. */
static int auth_cancel(struct sub *s, const char *why)
{
	char msg[512];

	snprintf(msg, sizeof msg, "%s", why);
	set_cause(s, SMTP_SUBMIT_FAIL_PROTOCOL);
	s->redact = false;
	if (cmd(s, "*") == 0)
		(void)reply(s, s->tmo, "waiting for the reply to the AUTH cancel");
	return fail(s, "%s", msg);
}

static int auth_scram(struct sub *s, const char *what)
{
	const struct smtp_submit_opts *o = s->o;
	struct scram_client *c = scram_client_new(o->user, o->password);
	char *first = NULL, *final = NULL;
	unsigned char *ch = NULL;
	size_t chlen = 0, flen = 0;
	const char *e;
	int ret = -1;

	if ((first = scram_client_first(c)) == NULL) {
		set_cause(s, SMTP_SUBMIT_FAIL_CONFIG);
		fail(s, "%s: no randomness for the nonce", what);
		goto out;
	}
	if (cmd_secret(s, "AUTH SCRAM-SHA-256 ", first, strlen(first),
		       "AUTH SCRAM-SHA-256 <redacted>") < 0 ||
	    reply(s, s->tmo, "waiting for the SCRAM challenge") < 0)
		goto out;
	if (s->r.code != 334) {
		refused(s, what);
		goto out;
	}
	if ((ch = challenge(s, &chlen)) == NULL) {
		auth_cancel(s, "SCRAM-SHA-256: the server's challenge is not base64");
		goto out;
	}
	/* PBKDF2 runs here: blocking is what this client does. */
	if (scram_client_final(c, (const char *)ch, chlen, &final, &e) < 0) {
		char why[256];
		snprintf(why, sizeof why, "SCRAM-SHA-256: bad challenge from the server: %s", e);
		auth_cancel(s, why);
		goto out;
	}
	flen = strlen(final);
	if (cmd_secret(s, "", final, flen, "<redacted>") < 0 ||
	    reply(s, s->tmo, "waiting for the SCRAM outcome") < 0)
		goto out;
	if (s->r.code == 235) {
		/* RFC 4954 4 has no "additional data with success": the
		 * server-final-message must come as a 334.  Without it the
		 * server has proved nothing. */
		set_cause(s, SMTP_SUBMIT_FAIL_SECURITY);
		fail(s, "SCRAM-SHA-256: %s accepted us without proving that it knows the password "
		     "(no server signature): not sending the mail", net_name(s->n));
		goto out;
	}
	if (s->r.code != 334) {
		refused(s, what);
		goto out;
	}
	free(ch);
	if ((ch = challenge(s, &chlen)) == NULL || scram_client_verify(c, (char *)ch, chlen) != 1) {
		set_cause(s, SMTP_SUBMIT_FAIL_SECURITY);
		auth_cancel(s, "SCRAM-SHA-256: the server's signature is wrong: it does not know "
			    "the password (not the real server?); not sending the mail");
		goto out;
	}
	s->redact = false;
	if (cmd(s, "%s", "") < 0 || reply(s, s->tmo, "waiting for the AUTH outcome") < 0)
		goto out;
	if (s->r.code != 235) {
		refused(s, what);
		goto out;
	}
	ret = 0;
out:
	if (first != NULL) {
		explicit_bzero(first, strlen(first));
		free(first);
	}
	if (final != NULL) {
		explicit_bzero(final, flen);
		free(final);
	}
	free(ch);
	scram_client_free(&c);
	return ret;
}

static int auth_cram_md5(struct sub *s, const char *what)
{
	unsigned char *ch = NULL;
	char *resp = NULL;
	size_t chlen = 0;
	int ret = -1;

	if (cmd(s, "AUTH CRAM-MD5") < 0 || reply(s, s->tmo, "waiting for the CRAM-MD5 challenge") < 0)
		goto out;
	if (s->r.code != 334) {
		refused(s, what);
		goto out;
	}
	if ((ch = challenge(s, &chlen)) == NULL || chlen == 0 || strlen((char *)ch) != chlen) {
		auth_cancel(s, "CRAM-MD5: the server's challenge is not base64 text");
		goto out;
	}
	if ((resp = cram_md5_response(s->o->user, s->o->password, (char *)ch)) == NULL) {
		set_cause(s, SMTP_SUBMIT_FAIL_CONFIG);
		auth_cancel(s, "CRAM-MD5: OpenSSL failed");
		goto out;
	}
	if (cmd_secret(s, "", resp, strlen(resp), "<redacted>") < 0 ||
	    reply(s, s->tmo, "waiting for the AUTH outcome") < 0)
		goto out;
	if (s->r.code != 235) {
		refused(s, what);
		goto out;
	}
	ret = 0;
out:
	if (resp != NULL) {
		explicit_bzero(resp, strlen(resp));
		free(resp);
	}
	free(ch);
	return ret;
}

static int auth_plain(struct sub *s, const char *what)
{
	const char *u = s->o->user, *p = s->o->password;
	size_t ul = strlen(u), pl = strlen(p), n = ul + pl + 2;
	char *msg = xmalloc(n);

	/* RFC 4616: authzid (empty) NUL authcid NUL password. */
	msg[0] = '\0';
	memcpy(msg + 1, u, ul);
	msg[ul + 1] = '\0';
	memcpy(msg + ul + 2, p, pl);
	int r = cmd_secret(s, "AUTH PLAIN ", msg, n, "AUTH PLAIN <redacted>");
	explicit_bzero(msg, n);
	free(msg);
	if (r < 0 || reply(s, s->tmo, "waiting for the AUTH outcome") < 0)
		return -1;
	return s->r.code == 235 ? 0 : refused(s, what);
}

static int auth_login(struct sub *s, const char *what)
{
	const char *u = s->o->user, *p = s->o->password;

	if (cmd(s, "AUTH LOGIN") < 0 || reply(s, s->tmo, "waiting for the AUTH LOGIN prompt") < 0)
		return -1;
	if (s->r.code != 334)
		return refused(s, what);
	if (cmd_secret(s, "", u, strlen(u), "<redacted>") < 0 ||
	    reply(s, s->tmo, "waiting for the AUTH LOGIN prompt") < 0)
		return -1;
	if (s->r.code != 334)
		return refused(s, what);
	if (cmd_secret(s, "", p, strlen(p), "<redacted>") < 0 ||
	    reply(s, s->tmo, "waiting for the AUTH outcome") < 0)
		return -1;
	return s->r.code == 235 ? 0 : refused(s, what);
}

/* The strongest mechanism offered; no falling back to a weaker one after
 * a refusal (each try counts against the account on most servers, and a
 * refusal is nearly always the password). */
static int authenticate(struct sub *s)
{
	static const struct {
		unsigned bit;
		const char *name;
		int (*run)(struct sub *s, const char *what);
	} mechs[] = {
		{SMTP_AUTH_SCRAM_SHA_256, "SCRAM-SHA-256", auth_scram},
		{SMTP_AUTH_CRAM_MD5, "CRAM-MD5", auth_cram_md5},
		{SMTP_AUTH_PLAIN, "PLAIN", auth_plain},
		{SMTP_AUTH_LOGIN, "LOGIN", auth_login},
	};
	char what[SMTP_SUBMIT_USER_MAX + 64];

	if (s->caps.auth == 0) {
		set_cause(s, SMTP_SUBMIT_FAIL_CAPS);
		return fail(s, "%s offers no AUTH%s", net_name(s->n),
			    net_is_tls(s->n) ? "" : " without TLS (many servers offer it only after "
			    "STARTTLS: use TLS mode starttls or tls)");
	}
	for (size_t i = 0; i < ARRAY_LEN(mechs); i++) {
		if (!(s->caps.auth & mechs[i].bit))
			continue;
		snprintf(what, sizeof what, "AUTH %s as %s", mechs[i].name, s->o->user);
		s->redact = true;
		int r = mechs[i].run(s, what);
		s->redact = false;
		return r;
	}
	set_cause(s, SMTP_SUBMIT_FAIL_CAPS);
	return fail(s, "%s offers no SASL mechanism this client has (SCRAM-SHA-256, CRAM-MD5, "
		    "PLAIN, LOGIN)", net_name(s->n));
}

/* MAIL and the RCPTs; with PIPELINING in groups of PIPELINE_GROUP per
 * write.  Every reply is read, and the first refusal reported. */
static int envelope(struct sub *s, const char *from, const char *const *rcpts, size_t nrcpts,
		    size_t size, bool eightbit, bool utf8)
{
	char params[64] = "", line[CMD_MAX], first[QUOTE_MAX + CMD_MAX] = "";
	size_t total = nrcpts + 1, refusals = 0;
	bool mail_refused = false;
	size_t group = s->caps.pipelining ? PIPELINE_GROUP : 1;
	struct buf out;
	int ret = -1;

	size_t o = 0;
	if (s->caps.size_given)
		o += (size_t)snprintf(params + o, sizeof params - o, " SIZE=%zu", size);
	if (eightbit)
		o += (size_t)snprintf(params + o, sizeof params - o, " BODY=8BITMIME");
	if (utf8)
		snprintf(params + o, sizeof params - o, " SMTPUTF8");
	buf_init(&out, PIPELINE_GROUP * (CMD_MAX + 2));
	for (size_t k = 0; k < total; k += group) {
		size_t end = MIN(total, k + group);
		buf_reset(&out);
		for (size_t i = k; i < end; i++) {
			if (i == 0)
				snprintf(line, sizeof line, "MAIL FROM:<%s>%s", from, params);
			else
				snprintf(line, sizeof line, "RCPT TO:<%s>", rcpts[i - 1]);
			trace_str(s, "C: ", line);
			if (buf_append_str(&out, line) < 0 || buf_append(&out, "\r\n", 2) < 0) {
				set_cause(s, SMTP_SUBMIT_FAIL_ARGS);
				fail(s, "internal error: envelope too long");
				goto out;
			}
		}
		if (net_write(s->n, out.data, out.len, s->tmo, s->err, s->errsz) < 0) {
			set_cause(s, SMTP_SUBMIT_FAIL_NETWORK);
			goto out;
		}
		for (size_t i = k; i < end; i++) {
			if (reply(s, s->tmo, i == 0 ? "waiting for the MAIL reply"
						    : "waiting for a RCPT reply") < 0)
				goto out;
			if (ok2xx(s))
				continue;
			if (i == 0) {
				snprintf(line, sizeof line, "MAIL FROM:<%s>", from);
				refused(s, line);
				snprintf(first, sizeof first, "%s", s->err);
				mail_refused = true;
				/* Pipelined RCPTs still get their replies (503,
				 * no MAIL): read them, count none. */
				continue;
			}
			if (!mail_refused && refusals++ == 0) {
				snprintf(line, sizeof line, "RCPT TO:<%s>", rcpts[i - 1]);
				refused(s, line);
				snprintf(first, sizeof first, "%s", s->err);
			}
		}
		if (mail_refused)
			break;
	}
	if (mail_refused)
		fail(s, "%s", first);
	else if (refusals == 0)
		ret = 0;
	else if (refusals == 1)
		fail(s, "%s", first);
	else
		fail(s, "%s (and %zu more refused)", first, refusals - 1);
out:
	buf_free(&out);
	return ret;
}

/* The message with CR LF line ends, dot-stuffed, then the final dot. */
static int body(struct sub *s, const char *msg, size_t len)
{
	struct buf norm, out;
	bool bol = true;
	int ret = -1;

	/* CHUNK, a line end past it, and the final one added: CHUNK + 4. */
	buf_init(&norm, CHUNK + 4);
	/* dot_encode_chunk() at most doubles (a line of dots), + ".\r\n" */
	buf_init(&out, 2 * (CHUNK + 4) + 8);
	size_t i = 0;
	while (i < len || norm.len > 0) {
		/* Fill norm up to CHUNK with runs of plain bytes and line ends. */
		while (i < len && norm.len < CHUNK) {
			size_t k = i, lim = MIN(len, i + (CHUNK - norm.len));
			while (k < lim && msg[k] != '\r' && msg[k] != '\n')
				k++;
			(void)buf_append(&norm, msg + i, k - i);
			i = k;
			if (i < lim) {
				/* CR LF, a bare LF and a bare CR all become CR LF. */
				if (msg[i] == '\r' && i + 1 < len && msg[i + 1] == '\n')
					i++;
				i++;
				(void)buf_append(&norm, "\r\n", 2);
			}
		}
		if (i == len && len > 0 && msg[len - 1] != '\n' && msg[len - 1] != '\r')
			(void)buf_append(&norm, "\r\n", 2);
		buf_reset(&out);
		if (dot_encode_chunk(norm.data, norm.len, &bol, &out) < 0) {
			set_cause(s, SMTP_SUBMIT_FAIL_ARGS);
			fail(s, "internal error: dot-stuffing overflow");
			goto out;
		}
		buf_reset(&norm);
		if (i == len)
			(void)buf_append(&out, ".\r\n", 3);
		if (net_write(s->n, out.data, out.len, s->tmo, s->err, s->errsz) < 0) {
			set_cause(s, SMTP_SUBMIT_FAIL_NETWORK);
			fail_ctx(s, "sending the message");
			goto out;
		}
	}
	if (len == 0 && net_write(s->n, ".\r\n", 3, s->tmo, s->err, s->errsz) < 0) {
		set_cause(s, SMTP_SUBMIT_FAIL_NETWORK);
		fail_ctx(s, "sending the message");
		goto out;
	}
	ret = 0;
out:
	buf_free(&norm);
	buf_free(&out);
	return ret;
}

/* Best effort, not waited for long: the outcome is known already. */
static void quit(struct sub *s)
{
	char keep[1024];

	if (s->n == NULL)
		return;
	snprintf(keep, sizeof keep, "%s", s->err);
	if (cmd(s, "QUIT") == 0)
		(void)reply(s, MIN(s->tmo, 10000u), "waiting for the QUIT reply");
	snprintf(s->err, s->errsz, "%s", keep);
}

static int check_args(struct sub *s, const char *from, const char *const *rcpts, size_t nrcpts,
		      const char *msg, size_t len, bool *utf8)
{
	const struct smtp_submit_opts *o = s->o;

	if (o->unix_path == NULL && (o->host == NULL || o->host[0] == '\0'))
		return fail(s, "no server given");
	if (nrcpts == 0)
		return fail(s, "no recipient given");
	if (nrcpts > SMTP_SUBMIT_RCPTS_MAX)
		return fail(s, "%zu recipients: at most %d per message", nrcpts,
			    SMTP_SUBMIT_RCPTS_MAX);
	if (check_addr(s, "sender", from, true, utf8) < 0)
		return -1;
	for (size_t i = 0; i < nrcpts; i++)
		if (check_addr(s, "recipient", rcpts[i], false, utf8) < 0)
			return -1;
	if (memchr(msg, '\0', len) != NULL)
		return fail(s, "the message contains NUL bytes, which SMTP DATA cannot carry");
	if (o->password != NULL) {
		if (o->user == NULL || o->user[0] == '\0')
			return fail(s, "a password needs a user name");
		if (strlen(o->user) > SMTP_SUBMIT_USER_MAX)
			return fail(s, "user name longer than %d bytes", SMTP_SUBMIT_USER_MAX);
		if (strlen(o->password) > SMTP_SUBMIT_PASSWORD_MAX)
			return fail(s, "password longer than %d bytes", SMTP_SUBMIT_PASSWORD_MAX);
	}
	if (o->helo != NULL && !helo_ok(o->helo))
		return fail(s, "EHLO name \"%.100s\" is not a host name", o->helo);
	if (o->unix_path == NULL && o->tls == SMTP_SUBMIT_NONE &&
	    (o->cafile != NULL || o->pin != NULL))
		return fail(s, "a CA file or pinned fingerprint needs TLS, and TLS mode none was "
			    "chosen");
	if (o->tls != SMTP_SUBMIT_STARTTLS && o->tls != SMTP_SUBMIT_TLS &&
	    o->tls != SMTP_SUBMIT_NONE)
		return fail(s, "unknown TLS mode %d", (int)o->tls);
	return 0;
}

/* What the server must offer for this message (the last EHLO's caps). */
static int check_caps(struct sub *s, size_t size, bool eightbit, bool utf8)
{
	const char *nm = net_name(s->n);

	if (eightbit && !s->caps.eightbitmime) {
		set_cause(s, SMTP_SUBMIT_FAIL_CAPS);
		return fail(s, "the message has 8-bit bytes and %s does not offer 8BITMIME (RFC "
			    "6152): the message needs 8BITMIME, or encode it as quoted-printable "
			    "or base64", nm);
	}
	if (utf8 && !s->caps.smtputf8) {
		set_cause(s, SMTP_SUBMIT_FAIL_CAPS);
		return fail(s, "an address is not ASCII and %s does not offer SMTPUTF8 (RFC 6531)",
			    nm);
	}
	/* The local socket: no password is at stake, so MAIL goes out with
	 * SIZE= and the server refuses it in its own words (552 5.3.4). */
	if (s->caps.size > 0 && size > s->caps.size && s->o->unix_path == NULL) {
		set_cause(s, SMTP_SUBMIT_FAIL_SIZE);
		return fail(s, "the message is %zu bytes and %s takes at most %llu (SIZE)", size,
			    nm, (unsigned long long)s->caps.size);
	}
	return 0;
}

int smtp_submit(const struct smtp_submit_opts *o, const char *from, const char *const *rcpts,
		size_t nrcpts, const char *msg, size_t len, char *err, size_t errsz)
{
	char scratch[256];
	if (err == NULL || errsz == 0) {
		/* Every step writes its error somewhere: a caller that does not
		 * want it still gets correct behaviour. */
		err = scratch;
		errsz = sizeof scratch;
	}
	struct sub s = {.o = o, .err = err, .errsz = errsz};
	bool utf8 = false, unknown = false;
	char port[16], d[128];
	int ret = -1;

	err[0] = '\0';
	smtp_reply_init(&s.r);
	s.tmo = (o->timeout ? o->timeout : SMTP_SUBMIT_TIMEOUT) * 1000u;
	/* A Unix socket is local: no TLS to set up or ask for. */
	enum smtp_submit_tls tlsmode = o->unix_path != NULL ? SMTP_SUBMIT_NONE : o->tls;
	if (check_args(&s, from, rcpts, nrcpts, msg, len, &utf8) < 0) {
		set_cause(&s, SMTP_SUBMIT_FAIL_ARGS);
		goto out;
	}
	bool eightbit = has_8bit(msg, len);
	size_t size = wire_size(msg, len);
	if (tlsmode != SMTP_SUBMIT_NONE) {
		struct net_tls_opts to = {.cafile = o->cafile, .pin = o->pin};
		if ((s.tls = net_tls_new(&to, err, errsz)) == NULL) {
			set_cause(&s, SMTP_SUBMIT_FAIL_CONFIG);
			goto out;
		}
	}
	snprintf(port, sizeof port, "%u",
		 o->port ? o->port : o->tls == SMTP_SUBMIT_TLS ? 465u : 587u);
	if (o->unix_path != NULL)
		s.n = net_connect_unix(o->unix_path, s.tmo, &s.res.sys_errno, err, errsz);
	else
		s.n = net_connect(o->host, port, s.tmo, err, errsz);
	if (s.n == NULL) {
		set_cause(&s, SMTP_SUBMIT_FAIL_CONNECT);
		goto out;
	}
	trace_str(&s, "* connected to ", net_name(s.n));
	if (tlsmode == SMTP_SUBMIT_TLS) {
		if (net_start_tls(s.n, s.tls, o->host, s.tmo, err, errsz) < 0) {
			set_cause(&s, SMTP_SUBMIT_FAIL_TLS);
			goto out;
		}
		trace_str(&s, "* TLS: ", net_tls_desc(s.n, d, sizeof d));
	}
	if (o->helo != NULL)
		snprintf(s.helo, sizeof s.helo, "%s", o->helo);
	else
		default_helo(&s);

	if (reply(&s, s.tmo, "waiting for the greeting") < 0)
		goto out;
	if (s.r.code != 220) {
		/* RFC 5321 3.1: after a 554 greeting the client still QUITs. */
		char q[QUOTE_MAX];
		s.res.fail = SMTP_SUBMIT_FAIL_REPLY;
		s.res.code = s.r.code;
		snprintf(s.res.enh, sizeof s.res.enh, "%s", s.r.enh);
		smtp_reply_oneline(&s.r, q, sizeof q);
		fail(&s, "%s refused the connection: server said: %s", net_name(s.n), q);
		goto quit;
	}
	if (hello(&s) < 0)
		goto out;
	if (tlsmode == SMTP_SUBMIT_STARTTLS && starttls(&s) < 0)
		goto out;
	if (check_caps(&s, size, eightbit, utf8) < 0)
		goto quit;
	if (o->password != NULL && authenticate(&s) < 0)
		goto quit;
	if (envelope(&s, from, rcpts, nrcpts, size, eightbit, utf8) < 0)
		goto quit;
	if (cmd(&s, "DATA") < 0 || reply(&s, s.tmo, "waiting for the DATA reply") < 0)
		goto out;
	if (s.r.code != 354) {
		refused(&s, "DATA");
		goto quit;
	}
	char note[64];
	snprintf(note, sizeof note, "<message: %zu bytes>", size);
	trace_str(&s, "C: ", note);
	if (body(&s, msg, len) < 0)
		goto out;
	if (reply(&s, s.tmo * SMTP_SUBMIT_DOT_FACTOR, "waiting for the reply to the message") < 0) {
		unknown = true;
		s.res.fail = SMTP_SUBMIT_FAIL_UNKNOWN;
		goto out;
	}
	if (!ok2xx(&s)) {
		refused(&s, "the message");
		goto quit;
	}
	ret = 0;
quit:
	quit(&s);
out:
	if (unknown) {
		char tmp[1024];
		snprintf(tmp, sizeof tmp, "%s", err);
		fail(&s, "%s: the message was sent but its outcome is unknown (it may have been "
		     "accepted)", tmp);
	}
	net_close(&s.n);
	net_tls_free(&s.tls);
	smtp_reply_free(&s.r);
	if (ret == 0)
		s.res.fail = SMTP_SUBMIT_FAIL_NONE;
	else if (s.res.fail == SMTP_SUBMIT_FAIL_NONE)
		s.res.fail = SMTP_SUBMIT_FAIL_NETWORK;    /* every path sets one; be safe */
	if (o->result != NULL)
		*o->result = s.res;
	return ret;
}

/* sysexits.h values, spelled out: the header is BSD's, not C's. */
enum {
	EX_OK_ = 0,
	EX_DATAERR_ = 65,
	EX_NOUSER_ = 67,
	EX_UNAVAILABLE_ = 69,
	EX_TEMPFAIL_ = 75,
	EX_PROTOCOL_ = 76,
	EX_NOPERM_ = 77,
	EX_CONFIG_ = 78,
};

int smtp_submit_sysexit(const struct smtp_submit_result *r)
{
	switch (r->fail) {
	case SMTP_SUBMIT_FAIL_NONE:
		return EX_OK_;
	case SMTP_SUBMIT_FAIL_ARGS:
	case SMTP_SUBMIT_FAIL_SIZE:
		return EX_DATAERR_;
	case SMTP_SUBMIT_FAIL_CONFIG:
		return EX_CONFIG_;
	case SMTP_SUBMIT_FAIL_CONNECT:
	case SMTP_SUBMIT_FAIL_NETWORK:
	case SMTP_SUBMIT_FAIL_UNKNOWN:
		return EX_TEMPFAIL_;
	case SMTP_SUBMIT_FAIL_PROTOCOL:
		return EX_PROTOCOL_;
	case SMTP_SUBMIT_FAIL_TLS:
	case SMTP_SUBMIT_FAIL_CAPS:
	case SMTP_SUBMIT_FAIL_SECURITY:
		return EX_UNAVAILABLE_;
	case SMTP_SUBMIT_FAIL_REPLY:
		break;
	}
	if (r->code < 500)
		return EX_TEMPFAIL_;   /* 4xx, and anything odd short of a 5xx */
	/* RFC 3463: the subject (second number) says what was wrong; a
	 * status of another class than the code is not trusted. */
	const char *e = r->enh;
	if (e[0] != '5' || e[1] != '.')
		return EX_UNAVAILABLE_;
	if (strncmp(e, "5.1.", 4) == 0)
		return EX_NOUSER_;
	if (strcmp(e, "5.3.4") == 0 || strncmp(e, "5.6.", 4) == 0)
		return EX_DATAERR_;
	if (strncmp(e, "5.7.", 4) == 0)
		return EX_NOPERM_;
	return EX_UNAVAILABLE_;
}
