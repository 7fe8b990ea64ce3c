/* account.c - client.conf: parsing, loading, the password.
 *
 * The parser goes line by line over a bounded copy of each line; every key
 * is a row of key_names with a handler in set_key; an account's defaults
 * and cross-key rules are applied when the next section starts or the text
 * ends (finish_account).  The password code runs password_cmd with
 * posix_spawn in its own process group (killed as a whole on timeout), or
 * prompts on /dev/tty with echo off. */
#include "client/account.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "core/util.h"
#include "mail/addr.h"

extern char **environ;

/* ---- errors ---- */

/* ---- the parser ---- */

enum key {
	K_DEFAULT, K_NAME, K_ADDRESS, K_SIGNATURE_FILE, K_SIGNATURE, K_SMTP, K_SMTP_TLS,
	K_SMTP_USER, K_INCOMING, K_INCOMING_TLS, K_INCOMING_USER, K_PASSWORD_CMD, K_CAFILE,
	K_PIN_SHA256, K_FOLDERS, K_MAILDIR, K_COUNT
};

static const char *const key_names[K_COUNT] = {
	[K_DEFAULT] = "default",
	[K_NAME] = "name",
	[K_ADDRESS] = "address",
	[K_SIGNATURE_FILE] = "signature_file",
	[K_SIGNATURE] = "signature",
	[K_SMTP] = "smtp",
	[K_SMTP_TLS] = "smtp_tls",
	[K_SMTP_USER] = "smtp_user",
	[K_INCOMING] = "incoming",
	[K_INCOMING_TLS] = "incoming_tls",
	[K_INCOMING_USER] = "incoming_user",
	[K_PASSWORD_CMD] = "password_cmd",
	[K_CAFILE] = "cafile",
	[K_PIN_SHA256] = "pin_sha256",
	[K_FOLDERS] = "folders",
	[K_MAILDIR] = "maildir",
};

struct parser {
	const char *path;
	size_t line;
	char *err;
	size_t errsz;
	struct account *v;
	size_t n;
	/* the account being read (v[n - 1]) */
	bool in_account;
	size_t section_line;
	size_t key_line[K_COUNT]; /* 0: not given */
	size_t default_line;      /* line of the default = yes seen so far */
	enum tls_mode in_tls;     /* incoming_tls as given (applied at the end) */
	bool in_scheme_tls;       /* incoming was imaps:// or pop3s:// */
	/* home directory, looked up when first needed */
	int home_state;           /* 0 not yet, 1 known, -1 unknown */
	char home[4096];
};

static void perr(struct parser *p, size_t line, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void perr(struct parser *p, size_t line, const char *fmt, ...)
{
	if (p->err == NULL || p->errsz == 0)
		return;
	/* no path: a value from the command line (account_parse_incoming) */
	int k = p->path != NULL ? snprintf(p->err, p->errsz, "%s:%zu: ", p->path, line) : 0;
	if (k < 0 || (size_t)k >= p->errsz)
		return;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(p->err + k, p->errsz - (size_t)k, fmt, ap);
	va_end(ap);
}

static bool is_ws(char c)
{
	return c == ' ' || c == '\t';
}

/* Trim spaces and tabs from both ends of s[0..*len) in place; returns the
 * new start. */
static char *trim(char *s, size_t *len)
{
	size_t a = 0, b = *len;
	while (a < b && is_ws(s[a]))
		a++;
	while (b > a && is_ws(s[b - 1]))
		b--;
	s[b] = '\0';
	*len = b - a;
	return s + a;
}

/* Strictly valid UTF-8 (no overlongs, surrogates or code points past
 * U+10FFFF). */
static bool utf8_valid(const unsigned char *s, size_t n)
{
	size_t i = 0;
	while (i < n) {
		unsigned char c = s[i];
		if (c < 0x80) {
			i++;
			continue;
		}
		size_t need;
		uint32_t cp, min;
		if (c >= 0xc2 && c <= 0xdf) {
			need = 1, cp = c & 0x1f, min = 0x80;
		} else if (c >= 0xe0 && c <= 0xef) {
			need = 2, cp = c & 0x0f, min = 0x800;
		} else if (c >= 0xf0 && c <= 0xf4) {
			need = 3, cp = c & 0x07, min = 0x10000;
		} else {
			return false;
		}
		if (n - i - 1 < need)
			return false;
		for (size_t j = 1; j <= need; j++) {
			if ((s[i + j] & 0xc0) != 0x80)
				return false;
			cp = (cp << 6) | (s[i + j] & 0x3f);
		}
		if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
			return false;
		i += need + 1;
	}
	return true;
}

/* Optimal string alignment distance (Levenshtein plus transpositions) of
 * two short strings, for "did you mean". */
static size_t osa_distance(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b);
	size_t d[33][33];
	if (la > 32 || lb > 32)
		return SIZE_MAX;
	for (size_t i = 0; i <= la; i++)
		d[i][0] = i;
	for (size_t j = 0; j <= lb; j++)
		d[0][j] = j;
	for (size_t i = 1; i <= la; i++) {
		for (size_t j = 1; j <= lb; j++) {
			size_t cost = a[i - 1] == b[j - 1] ? 0 : 1;
			size_t m = d[i - 1][j] + 1;
			m = MIN(m, d[i][j - 1] + 1);
			m = MIN(m, d[i - 1][j - 1] + cost);
			if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1])
				m = MIN(m, d[i - 2][j - 2] + 1);
			d[i][j] = m;
		}
	}
	return d[la][lb];
}

/* The key closest to the unknown key k, or NULL when none is close. */
static const char *suggest_key(const char *k)
{
	char low[33];
	size_t n = strlen(k);
	if (n > 32)
		return NULL;
	for (size_t i = 0; i <= n; i++)
		low[i] = (k[i] >= 'A' && k[i] <= 'Z') ? (char)(k[i] - 'A' + 'a') : k[i];
	size_t limit = n <= 4 ? 1 : 2;
	const char *best = NULL;
	size_t best_d = SIZE_MAX;
	for (size_t i = 0; i < K_COUNT; i++) {
		size_t dist = osa_distance(low, key_names[i]);
		if (dist <= limit && dist < best_d) {
			best = key_names[i];
			best_d = dist;
		}
	}
	return best;
}

static const char *home_dir(struct parser *p)
{
	if (p->home_state == 0) {
		p->home_state = -1;
		const char *h = getenv("HOME");
		if (h == NULL || h[0] != '/') {
			struct passwd pw, *res = NULL;
			char buf[4096];
			if (getpwuid_r(getuid(), &pw, buf, sizeof(buf), &res) == 0 && res != NULL &&
			    res->pw_dir != NULL && res->pw_dir[0] == '/') {
				h = res->pw_dir;
			} else {
				h = NULL;
			}
			if (h != NULL && strlen(h) < sizeof(p->home)) {
				memcpy(p->home, h, strlen(h) + 1);
				p->home_state = 1;
			}
		} else if (strlen(h) < sizeof(p->home)) {
			memcpy(p->home, h, strlen(h) + 1);
			p->home_state = 1;
		}
		if (p->home_state == 1) {
			/* "/home/u/" and "/" lose their trailing slashes: "~/x" is
			 * home + "/x". */
			size_t l = strlen(p->home);
			while (l > 0 && p->home[l - 1] == '/')
				p->home[--l] = '\0';
		}
	}
	return p->home_state == 1 ? p->home : NULL;
}

static int set_str(struct parser *p, const char *key, char *dst, size_t dstsz, const char *val)
{
	size_t l = strlen(val);
	if (l >= dstsz) {
		perr(p, p->line, "%s is too long (at most %zu bytes)", key, dstsz - 1);
		return -1;
	}
	memcpy(dst, val, l + 1);
	return 0;
}

/* A path value: absolute, or "~" / "~/..." under the home directory. */
static int set_path(struct parser *p, const char *key, char *dst, size_t dstsz, const char *val)
{
	if (val[0] == '~') {
		if (val[1] != '\0' && val[1] != '/') {
			perr(p, p->line, "%s: only ~/ is expanded, not ~user", key);
			return -1;
		}
		const char *h = home_dir(p);
		if (h == NULL) {
			perr(p, p->line, "%s: ~ needs $HOME, which is not set", key);
			return -1;
		}
		const char *rest = val + 1;
		if (strcmp(h, "") == 0 && rest[0] == '\0')
			rest = "/";
		int k = snprintf(dst, dstsz, "%s%s", h, rest);
		if (k < 0 || (size_t)k >= dstsz) {
			dst[0] = '\0';
			perr(p, p->line, "%s is too long (at most %zu bytes)", key, dstsz - 1);
			return -1;
		}
		return 0;
	}
	if (val[0] != '/') {
		perr(p, p->line, "%s must be an absolute path or start with ~/", key);
		return -1;
	}
	return set_str(p, key, dst, dstsz, val);
}

static bool parse_port(const char *s, int *port_r)
{
	size_t n = strlen(s);
	if (n == 0 || n > 5)
		return false;
	int v = 0;
	for (size_t i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return false;
		v = v * 10 + (s[i] - '0');
	}
	if (v < 1 || v > 65535)
		return false;
	*port_r = v;
	return true;
}

static bool host_name_ok(const char *h, size_t n)
{
	if (n == 0 || n > 253 || h[0] == '-' || h[0] == '.')
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = h[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '-' || c == '.' || c == '_'))
			return false;
	}
	return true;
}

/* "host", "host:port", "[v6]", "[v6]:port" into host (no brackets) and
 * *port (left alone when none is given). */
static int parse_hostport(struct parser *p, const char *key, const char *val, char *host,
			  size_t hostsz, int *port)
{
	const char *h, *portstr = NULL;
	size_t hl;
	if (val[0] == '[') {
		const char *close = strchr(val, ']');
		if (close == NULL) {
			perr(p, p->line, "%s: missing ']' after the IPv6 address", key);
			return -1;
		}
		h = val + 1;
		hl = (size_t)(close - h);
		char tmp[64];
		unsigned char bin[16];
		if (hl == 0 || hl >= sizeof(tmp)) {
			perr(p, p->line, "%s: bad IPv6 address", key);
			return -1;
		}
		memcpy(tmp, h, hl);
		tmp[hl] = '\0';
		if (inet_pton(AF_INET6, tmp, bin) != 1) {
			perr(p, p->line, "%s: bad IPv6 address \"%s\"", key, tmp);
			return -1;
		}
		if (close[1] == ':') {
			portstr = close + 2;
		} else if (close[1] != '\0') {
			perr(p, p->line, "%s: expected :PORT after ']'", key);
			return -1;
		}
	} else {
		const char *colon = strchr(val, ':');
		if (colon != NULL && strchr(colon + 1, ':') != NULL) {
			perr(p, p->line, "%s: an IPv6 address goes in brackets, e.g. [2001:db8::1]:587",
			     key);
			return -1;
		}
		h = val;
		hl = colon != NULL ? (size_t)(colon - val) : strlen(val);
		if (colon != NULL)
			portstr = colon + 1;
		for (size_t i = 0; i < hl; i++) {
			if ((unsigned char)h[i] >= 0x80) {
				perr(p, p->line, "%s: write the host name in ASCII (xn--...)", key);
				return -1;
			}
		}
		if (!host_name_ok(h, hl)) {
			perr(p, p->line, "%s: bad host name \"%.*s\"", key, (int)MIN(hl, 300), h);
			return -1;
		}
	}
	if (hl >= hostsz) {
		perr(p, p->line, "%s: host name too long", key);
		return -1;
	}
	if (portstr != NULL && !parse_port(portstr, port)) {
		perr(p, p->line, "%s: bad port \"%.20s\" (1-65535)", key, portstr);
		return -1;
	}
	memcpy(host, h, hl);
	host[hl] = '\0';
	return 0;
}

static int parse_tls(struct parser *p, const char *key, const char *val, enum tls_mode *m)
{
	if (str_ieq(val, "starttls")) {
		*m = TLS_STARTTLS;
	} else if (str_ieq(val, "tls")) {
		*m = TLS_IMPLICIT;
	} else if (str_ieq(val, "none")) {
		*m = TLS_NONE;
	} else {
		bool ssl = str_ieq(val, "ssl") || str_ieq(val, "implicit") || str_ieq(val, "on") ||
			   str_ieq(val, "yes");
		perr(p, p->line, "%s must be starttls, tls or none%s", key,
		     ssl ? " (implicit TLS is called tls)" : "");
		return -1;
	}
	return 0;
}

static int parse_bool(struct parser *p, const char *key, const char *val, bool *b)
{
	static const char *const yes[] = {"yes", "true", "on", "1"};
	static const char *const no[] = {"no", "false", "off", "0"};
	for (size_t i = 0; i < ARRAY_LEN(yes); i++) {
		if (str_ieq(val, yes[i])) {
			*b = true;
			return 0;
		}
		if (str_ieq(val, no[i])) {
			*b = false;
			return 0;
		}
	}
	perr(p, p->line, "%s must be yes or no", key);
	return -1;
}

static int parse_address(struct parser *p, const char *val, char *dst, size_t dstsz)
{
	size_t l = strlen(val);
	if (l >= dstsz || l + 2 > ADDR_PATH_MAX) {
		perr(p, p->line, "address is too long");
		return -1;
	}
	char path[ADDR_PATH_MAX + 1];
	path[0] = '<';
	memcpy(path + 1, val, l);
	path[l + 1] = '>';
	path[l + 2] = '\0';
	struct mail_addr a;
	enum addr_error e;
	const char *msg = NULL;
	long r = addr_parse_path(path, l + 2, true, &a, &e, &msg);
	if (r != (long)(l + 2) || a.null || a.postmaster || a.source_route || a.trailing_dot ||
	    a.local[0] == '\0' || a.domain[0] == '\0') {
		if (r < 0 && msg != NULL && msg[0] != '\0')
			perr(p, p->line, "address \"%s\" is not local@domain: %c%s", val,
			     (msg[0] >= 'A' && msg[0] <= 'Z') ? msg[0] - 'A' + 'a' : msg[0], msg + 1);
		else
			perr(p, p->line, "address \"%s\" is not local@domain", val);
		return -1;
	}
	memcpy(dst, val, l + 1);
	return 0;
}

static int parse_incoming(struct parser *p, const char *val, struct account *a)
{
	static const struct {
		const char *scheme;
		enum incoming_proto proto;
		enum tls_mode tls;
		int port;
	} schemes[] = {
		{"imap://", IN_IMAP, TLS_STARTTLS, 143},
		{"imaps://", IN_IMAP, TLS_IMPLICIT, 993},
		{"pop3://", IN_POP3, TLS_STARTTLS, 110},
		{"pop3s://", IN_POP3, TLS_IMPLICIT, 995},
	};
	for (size_t i = 0; i < ARRAY_LEN(schemes); i++) {
		size_t sl = strlen(schemes[i].scheme);
		if (!str_nieq(val, schemes[i].scheme, sl))
			continue;
		char rest[ACCOUNTS_LINE_MAX + 1];
		size_t rl = strlen(val + sl);
		memcpy(rest, val + sl, rl + 1);
		if (rl > 0 && rest[rl - 1] == '/')
			rest[--rl] = '\0';
		if (strchr(rest, '@') != NULL) {
			perr(p, p->line, "incoming: give the user as incoming_user, not in the URL");
			return -1;
		}
		if (strchr(rest, '/') != NULL || strchr(rest, '?') != NULL) {
			perr(p, p->line, "incoming: expected %sHOST[:PORT], nothing after it",
			     schemes[i].scheme);
			return -1;
		}
		int port = schemes[i].port;
		if (parse_hostport(p, "incoming", rest, a->in_host, sizeof(a->in_host), &port) < 0)
			return -1;
		a->in_proto = schemes[i].proto;
		a->in_tls = schemes[i].tls;
		a->in_port = port;
		p->in_scheme_tls = schemes[i].tls == TLS_IMPLICIT;
		return 0;
	}
	perr(p, p->line, "incoming must start with imap://, imaps://, pop3:// or pop3s://");
	return -1;
}

int account_parse_incoming(const char *url, struct account *a, char *err, size_t errsz)
{
	struct parser p = {.err = err, .errsz = errsz};
	if (err != NULL && errsz > 0)
		err[0] = '\0';
	if (strlen(url) > ACCOUNTS_LINE_MAX) {
		perr(&p, 0, "incoming: longer than %d bytes", ACCOUNTS_LINE_MAX);
		return -1;
	}
	struct account tmp = *a;
	if (parse_incoming(&p, url, &tmp) < 0)
		return -1;
	a->in_proto = tmp.in_proto;
	a->in_tls = tmp.in_tls;
	a->in_port = tmp.in_port;
	memcpy(a->in_host, tmp.in_host, sizeof(a->in_host));
	return 0;
}

/* 32 bytes of hex, a ':' allowed after any byte but the last (the form
 * net_pin_parse takes). */
static bool pin_ok(const char *s)
{
	size_t bytes = 0;
	while (*s != '\0') {
		if (hex_value((unsigned char)s[0]) < 0 || hex_value((unsigned char)s[1]) < 0)
			return false;
		s += 2;
		bytes++;
		if (*s == ':') {
			s++;
			if (*s == '\0')
				return false;
		}
		if (bytes > 32)
			return false;
	}
	return bytes == 32;
}

static int parse_folders(struct parser *p, const char *val, char *dst, size_t dstsz)
{
	char tmp[ACCOUNTS_LINE_MAX + 1];
	size_t out = 0;
	const char *s = val;
	for (;;) {
		const char *comma = strchr(s, ',');
		size_t l = comma != NULL ? (size_t)(comma - s) : strlen(s);
		if (l > ACCOUNTS_LINE_MAX)
			l = ACCOUNTS_LINE_MAX;
		memcpy(tmp, s, l);
		char *item = trim(tmp, &l);
		if (l == 0) {
			perr(p, p->line, "folders: empty folder name");
			return -1;
		}
		if (out + (out > 0) + l >= dstsz) {
			perr(p, p->line, "folders is too long (at most %zu bytes)", dstsz - 1);
			return -1;
		}
		if (out > 0)
			dst[out++] = ',';
		memcpy(dst + out, item, l);
		out += l;
		if (comma == NULL)
			break;
		s = comma + 1;
	}
	dst[out] = '\0';
	return 0;
}

static int set_key(struct parser *p, enum key k, const char *val)
{
	struct account *a = &p->v[p->n - 1];
	const char *key = key_names[k];
	switch (k) {
	case K_DEFAULT:
		if (parse_bool(p, key, val, &a->is_default) < 0)
			return -1;
		if (a->is_default) {
			if (p->default_line != 0) {
				perr(p, p->line, "a second default account (the first is at line %zu)",
				     p->default_line);
				return -1;
			}
			p->default_line = p->line;
		}
		return 0;
	case K_NAME:
		return set_str(p, key, a->display_name, sizeof(a->display_name), val);
	case K_ADDRESS:
		return parse_address(p, val, a->address, sizeof(a->address));
	case K_SIGNATURE_FILE:
	case K_SIGNATURE:
		if (p->key_line[k == K_SIGNATURE ? K_SIGNATURE_FILE : K_SIGNATURE] != 0) {
			perr(p, p->line, "signature and signature_file: give only one");
			return -1;
		}
		if (k == K_SIGNATURE)
			return set_str(p, key, a->signature, sizeof(a->signature), val);
		return set_path(p, key, a->signature_file, sizeof(a->signature_file), val);
	case K_SMTP:
		a->smtp_port = 587;
		return parse_hostport(p, key, val, a->smtp_host, sizeof(a->smtp_host),
				      &a->smtp_port);
	case K_SMTP_TLS:
		return parse_tls(p, key, val, &a->smtp_tls);
	case K_SMTP_USER:
		return set_str(p, key, a->smtp_user, sizeof(a->smtp_user), val);
	case K_INCOMING:
		return parse_incoming(p, val, a);
	case K_INCOMING_TLS:
		return parse_tls(p, key, val, &p->in_tls);
	case K_INCOMING_USER:
		return set_str(p, key, a->in_user, sizeof(a->in_user), val);
	case K_PASSWORD_CMD:
		return set_str(p, key, a->password_cmd, sizeof(a->password_cmd), val);
	case K_CAFILE:
		return set_path(p, key, a->cafile, sizeof(a->cafile), val);
	case K_PIN_SHA256:
		if (!pin_ok(val)) {
			perr(p, p->line,
			     "pin_sha256 must be 64 hex digits (':' allowed between bytes)");
			return -1;
		}
		return set_str(p, key, a->pin_sha256, sizeof(a->pin_sha256), val);
	case K_FOLDERS:
		return parse_folders(p, val, a->folders, sizeof(a->folders));
	case K_MAILDIR:
		return set_path(p, key, a->maildir, sizeof(a->maildir), val);
	case K_COUNT:
		break;
	}
	return -1;
}

/* Defaults and the rules between keys, once the account's keys are in. */
static int finish_account(struct parser *p)
{
	if (!p->in_account)
		return 0;
	struct account *a = &p->v[p->n - 1];
	size_t *kl = p->key_line;
	if (kl[K_ADDRESS] == 0) {
		perr(p, p->section_line, "account \"%s\" has no address", a->name);
		return -1;
	}
	if (kl[K_SMTP] == 0) {
		perr(p, p->section_line, "account \"%s\" has no smtp (its submission server)",
		     a->name);
		return -1;
	}
	if (kl[K_SMTP_TLS] == 0)
		a->smtp_tls = a->smtp_port == 465 ? TLS_IMPLICIT : TLS_STARTTLS;
	if (a->smtp_user[0] == '\0')
		memcpy(a->smtp_user, a->address, strlen(a->address) + 1);
	if (kl[K_INCOMING] == 0) {
		static const enum key need_incoming[] = {K_INCOMING_TLS, K_INCOMING_USER};
		for (size_t i = 0; i < ARRAY_LEN(need_incoming); i++) {
			if (kl[need_incoming[i]] != 0) {
				perr(p, kl[need_incoming[i]], "%s without incoming",
				     key_names[need_incoming[i]]);
				return -1;
			}
		}
		a->in_tls = TLS_NONE;
	} else if (kl[K_INCOMING_TLS] != 0) {
		/* imaps:// and pop3s:// are TLS from the first byte */
		if (p->in_scheme_tls && p->in_tls != TLS_IMPLICIT) {
			const char *sch = a->in_proto == IN_IMAP ? "imap" : "pop3";
			perr(p, kl[K_INCOMING_TLS],
			     "incoming_tls: %ss:// is always TLS (use %s:// for starttls or none)", sch,
			     sch);
			return -1;
		}
		a->in_tls = p->in_tls;
	}
	if (a->in_user[0] == '\0')
		memcpy(a->in_user, a->smtp_user, strlen(a->smtp_user) + 1);
	if (kl[K_FOLDERS] != 0 && a->in_proto != IN_IMAP) {
		perr(p, kl[K_FOLDERS], "folders is only for an IMAP incoming server");
		return -1;
	}
	if (a->folders[0] == '\0')
		memcpy(a->folders, "INBOX", 6);
	if (a->maildir[0] == '\0') {
		const char *h = home_dir(p);
		if (h != NULL) {
			int k = snprintf(a->maildir, sizeof(a->maildir), "%s/Mail/%s", h, a->name);
			if (k < 0 || (size_t)k >= sizeof(a->maildir))
				a->maildir[0] = '\0';
		}
	}
	p->in_account = false;
	return 0;
}

static bool name_char_ok(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       c == '.' || c == '_' || c == '-' || c == '+' || c == '@';
}

static int start_section(struct parser *p, char *inner, size_t il)
{
	inner = trim(inner, &il);
	if (!(il >= 7 && memcmp(inner, "account", 7) == 0 && (il == 7 || is_ws(inner[7])))) {
		perr(p, p->line, "unknown section [%.100s] (sections are [account NAME])", inner);
		return -1;
	}
	size_t nl = il - 7;
	char *name = trim(inner + 7, &nl);
	if (nl == 0) {
		perr(p, p->line, "[account] needs a name: [account NAME]");
		return -1;
	}
	bool ok = nl < sizeof(p->v[0].name) && name[0] != '.';
	for (size_t i = 0; ok && i < nl; i++)
		ok = name_char_ok(name[i]);
	if (!ok) {
		perr(p, p->line,
		     "bad account name \"%.100s\" (1-63 of A-Z a-z 0-9 . _ - + @, "
		     "not starting with '.')", name);
		return -1;
	}
	if (finish_account(p) < 0)
		return -1;
	for (size_t i = 0; i < p->n; i++) {
		if (strcmp(p->v[i].name, name) == 0) {
			perr(p, p->line, "a second account \"%s\"", name);
			return -1;
		}
	}
	if (p->n == ACCOUNTS_MAX) {
		perr(p, p->line, "more than %d accounts", ACCOUNTS_MAX);
		return -1;
	}
	p->v = xreallocarray(p->v, p->n + 1, sizeof(*p->v));
	struct account *a = &p->v[p->n++];
	memset(a, 0, sizeof(*a));
	memcpy(a->name, name, nl + 1);
	a->in_proto = IN_NONE;
	a->in_tls = TLS_NONE;
	p->in_account = true;
	p->section_line = p->line;
	memset(p->key_line, 0, sizeof(p->key_line));
	p->in_tls = TLS_STARTTLS;
	p->in_scheme_tls = false;
	return 0;
}

static bool is_password_key(const char *k)
{
	char low[ACCOUNTS_LINE_MAX + 1];
	size_t n = strlen(k);
	for (size_t i = 0; i <= n; i++)
		low[i] = (k[i] >= 'A' && k[i] <= 'Z') ? (char)(k[i] - 'A' + 'a') : k[i];
	return strcmp(low, "password_cmd") != 0 &&
	       (strstr(low, "password") != NULL || strstr(low, "passwd") != NULL ||
		strcmp(low, "pass") == 0 || strcmp(low, "pw") == 0 || strcmp(low, "secret") == 0);
}

static int parse_line(struct parser *p, char *s, size_t l)
{
	s = trim(s, &l);
	if (l == 0 || s[0] == '#')
		return 0;
	/* '#' after a space or tab starts a comment */
	for (size_t i = 1; i < l; i++) {
		if (s[i] == '#' && is_ws(s[i - 1])) {
			l = i;
			s = trim(s, &l);
			break;
		}
	}
	if (s[0] == '[') {
		if (s[l - 1] != ']') {
			perr(p, p->line, "missing ']' at the end of the section line");
			return -1;
		}
		s[l - 1] = '\0';
		return start_section(p, s + 1, l - 2);
	}
	char *eq = strchr(s, '=');
	if (eq == NULL) {
		perr(p, p->line, "expected key = value or [account NAME]");
		return -1;
	}
	size_t kl = (size_t)(eq - s), vl = l - kl - 1;
	char *key = trim(s, &kl);
	char *val = trim(eq + 1, &vl);
	if (kl == 0) {
		perr(p, p->line, "missing key before '='");
		return -1;
	}
	if (is_password_key(key)) {
		perr(p, p->line, "passwords do not go in this file: use password_cmd");
		return -1;
	}
	enum key k = K_COUNT;
	for (size_t i = 0; i < K_COUNT; i++) {
		if (strcmp(key, key_names[i]) == 0) {
			k = (enum key)i;
			break;
		}
	}
	if (k == K_COUNT) {
		const char *hint = suggest_key(key);
		if (hint != NULL)
			perr(p, p->line, "unknown key \"%.100s\" (did you mean %s?)", key, hint);
		else
			perr(p, p->line, "unknown key \"%.100s\"", key);
		return -1;
	}
	if (!p->in_account) {
		perr(p, p->line, "%s outside an [account NAME] section", key);
		return -1;
	}
	if (p->key_line[k] != 0) {
		perr(p, p->line, "%s given twice (first at line %zu)", key, p->key_line[k]);
		return -1;
	}
	if (vl == 0) {
		perr(p, p->line, "%s needs a value", key);
		return -1;
	}
	if (set_key(p, k, val) < 0)
		return -1;
	p->key_line[k] = p->line;
	return 0;
}

int accounts_parse(const char *text, size_t len, const char *path_for_errors,
		   struct account **v_r, size_t *n_r, char *err, size_t errsz)
{
	struct parser p = {
		.path = path_for_errors != NULL ? path_for_errors : "client.conf",
		.err = err,
		.errsz = errsz,
	};
	char line[ACCOUNTS_LINE_MAX + 1];
	size_t pos = 0;
	*v_r = NULL;
	*n_r = 0;
	if (err != NULL && errsz > 0)
		err[0] = '\0';
	if (len >= 3 && memcmp(text, "\xef\xbb\xbf", 3) == 0)
		pos = 3;
	while (pos < len) {
		p.line++;
		const char *s = text + pos;
		const char *nl = memchr(s, '\n', len - pos);
		size_t l = nl != NULL ? (size_t)(nl - s) : len - pos;
		pos += l + (nl != NULL);
		if (l > 0 && s[l - 1] == '\r')
			l--;
		if (l > ACCOUNTS_LINE_MAX) {
			perr(&p, p.line, "line longer than %d bytes", ACCOUNTS_LINE_MAX);
			goto fail;
		}
		for (size_t i = 0; i < l; i++) {
			unsigned char c = (unsigned char)s[i];
			if (c == '\0') {
				perr(&p, p.line, "NUL byte");
				goto fail;
			}
			if ((c < 0x20 && c != '\t') || c == 0x7f) {
				perr(&p, p.line, "control character 0x%02x", c);
				goto fail;
			}
		}
		if (!utf8_valid((const unsigned char *)s, l)) {
			perr(&p, p.line, "not valid UTF-8");
			goto fail;
		}
		memcpy(line, s, l);
		line[l] = '\0';
		if (parse_line(&p, line, l) < 0)
			goto fail;
	}
	if (finish_account(&p) < 0)
		goto fail;
	*v_r = p.v;
	*n_r = p.n;
	return 0;
fail:
	free(p.v);
	return -1;
}

/* ---- the file ---- */

int accounts_path(char *out, size_t outsz)
{
	const char *xdg = getenv("XDG_CONFIG_HOME");
	int k;
	if (outsz > 0)
		out[0] = '\0';
	if (xdg != NULL && xdg[0] == '/') {
		k = snprintf(out, outsz, "%s/yubin/client.conf", xdg);
	} else {
		struct parser p = {0};
		const char *h = home_dir(&p);
		if (h == NULL)
			return -1;
		k = snprintf(out, outsz, "%s/.config/yubin/client.conf", h);
	}
	if (k < 0 || (size_t)k >= outsz) {
		if (outsz > 0)
			out[0] = '\0';
		return -1;
	}
	return 0;
}

int accounts_load(const char *path, struct account **v_r, size_t *n_r, char *err,
		  size_t errsz)
{
	*v_r = NULL;
	*n_r = 0;
	if (err != NULL && errsz > 0)
		err[0] = '\0';
	/* O_NONBLOCK: a FIFO must not hang us before fstat says what it is. */
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	if (fd < 0) {
		if (errno == ENOENT)
			return 0;
		errf(err, errsz, "%s: %s", path, strerror(errno));
		return -1;
	}
	struct stat st;
	if (fstat(fd, &st) < 0) {
		errf(err, errsz, "%s: %s", path, strerror(errno));
		close(fd);
		return -1;
	}
	if (!S_ISREG(st.st_mode)) {
		errf(err, errsz, "%s: not a regular file", path);
		close(fd);
		return -1;
	}
	if (st.st_mode & (S_IWGRP | S_IWOTH)) {
		errf(err, errsz,
			"%s is writable by %s: refusing it (it names commands to run); "
			"chmod go-w %s",
			path, (st.st_mode & S_IWOTH) ? "others" : "its group", path);
		close(fd);
		return -1;
	}
	if (st.st_uid != geteuid() && st.st_uid != 0) {
		errf(err, errsz, "%s belongs to uid %lu, not to you: refusing it", path,
			(unsigned long)st.st_uid);
		close(fd);
		return -1;
	}
	if (st.st_size > ACCOUNTS_FILE_MAX) {
		errf(err, errsz, "%s: larger than %d bytes", path, ACCOUNTS_FILE_MAX);
		close(fd);
		return -1;
	}
	size_t cap = (size_t)st.st_size + 1, len = 0;
	char *buf = xmalloc(cap);
	for (;;) {
		if (len == cap) {
			if (cap > ACCOUNTS_FILE_MAX) {
				errf(err, errsz, "%s: larger than %d bytes", path,
					ACCOUNTS_FILE_MAX);
				goto fail;
			}
			cap = MIN(cap * 2, (size_t)ACCOUNTS_FILE_MAX + 1);
			buf = xrealloc(buf, cap);
		}
		ssize_t r = read(fd, buf + len, cap - len);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			errf(err, errsz, "%s: %s", path, strerror(errno));
			goto fail;
		}
		if (r == 0)
			break;
		len += (size_t)r;
	}
	close(fd);
	int rc = accounts_parse(buf, len, path, v_r, n_r, err, errsz);
	free(buf);
	return rc;
fail:
	close(fd);
	free(buf);
	return -1;
}

const struct account *account_find(const struct account *v, size_t n, const char *name)
{
	if (name != NULL) {
		for (size_t i = 0; i < n; i++)
			if (strcmp(v[i].name, name) == 0)
				return &v[i];
		return NULL;
	}
	for (size_t i = 0; i < n; i++)
		if (v[i].is_default)
			return &v[i];
	return n == 1 ? &v[0] : NULL;
}

/* ---- the password ---- */

#define PASSWORD_TIMEOUT_MS 10000

static int password_timeout_ms = PASSWORD_TIMEOUT_MS;

void account_password_set_timeout_ms(int ms)
{
	password_timeout_ms = ms > 0 ? ms : PASSWORD_TIMEOUT_MS;
}

static void describe_ms(int ms, char *out, size_t outsz)
{
	if (ms % 1000 == 0)
		snprintf(out, outsz, "%d s", ms / 1000);
	else
		snprintf(out, outsz, "%d ms", ms);
}

static void sleep_ms(unsigned ms)
{
	struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L};
	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

/* Wait for pid until deadline (ms, now_ms clock); true when reaped. */
static bool reap_until(pid_t pid, int *status, uint64_t deadline)
{
	for (;;) {
		pid_t r = waitpid(pid, status, WNOHANG);
		if (r == pid)
			return true;
		if (r < 0 && errno != EINTR)
			return true; /* ECHILD: someone else reaped it */
		if (now_ms() >= deadline)
			return false;
		sleep_ms(10);
	}
}

static void kill_group(pid_t pid)
{
	/* The child leads its own group: take the shell and whatever it
	 * started. */
	kill(-pid, SIGKILL);
	kill(pid, SIGKILL);
	int st;
	while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
		;
}

static char *run_password_cmd(const char *cmd, char *err, size_t errsz)
{
	int pfd[2];
	if (pipe2(pfd, O_CLOEXEC) < 0) {
		errf(err, errsz, "password_cmd: pipe: %s", strerror(errno));
		return NULL;
	}
	posix_spawn_file_actions_t fa;
	posix_spawnattr_t attr;
	posix_spawn_file_actions_init(&fa);
	posix_spawnattr_init(&attr);
	/* dup2 first: the pipe may have got fd 0 if stdin was closed. */
	posix_spawn_file_actions_adddup2(&fa, pfd[1], STDOUT_FILENO);
	posix_spawn_file_actions_addopen(&fa, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
	sigset_t none, defaults;
	sigemptyset(&none);
	sigemptyset(&defaults);
	static const int reset[] = {SIGPIPE, SIGINT, SIGQUIT, SIGTERM, SIGHUP, SIGCHLD,
				    SIGTSTP, SIGTTIN, SIGTTOU, SIGALRM, SIGUSR1, SIGUSR2};
	for (size_t i = 0; i < ARRAY_LEN(reset); i++)
		sigaddset(&defaults, reset[i]);
	posix_spawnattr_setsigmask(&attr, &none);
	posix_spawnattr_setsigdefault(&attr, &defaults);
	posix_spawnattr_setpgroup(&attr, 0);
	posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF |
					       POSIX_SPAWN_SETPGROUP);
	char *argv[] = {(char *)"sh", (char *)"-c", (char *)cmd, NULL};
	pid_t pid;
	int e = posix_spawn(&pid, "/bin/sh", &fa, &attr, argv, environ);
	posix_spawn_file_actions_destroy(&fa);
	posix_spawnattr_destroy(&attr);
	close(pfd[1]);
	if (e != 0) {
		close(pfd[0]);
		errf(err, errsz, "password_cmd: cannot run /bin/sh: %s", strerror(e));
		return NULL;
	}
	int fl = fcntl(pfd[0], F_GETFL);
	if (fl >= 0)
		fcntl(pfd[0], F_SETFL, fl | O_NONBLOCK);

	char buf[ACCOUNT_PASSWORD_MAX + 1];
	char drop[512];
	size_t got = 0;
	bool more = false; /* output past the first ACCOUNT_PASSWORD_MAX bytes */
	bool reaped = false, eof = false;
	int status = 0;
	char *pw = NULL;
	uint64_t deadline = now_ms() + (uint64_t)password_timeout_ms;
	while (!eof) {
		if (!reaped) {
			pid_t r = waitpid(pid, &status, WNOHANG);
			if (r == pid || (r < 0 && errno == ECHILD))
				reaped = true;
		}
		uint64_t now = now_ms();
		if (!reaped && now >= deadline)
			break;
		if (!reaped) {
			/* Short waits, to notice the command's exit: something it
			 * left in the background may hold the pipe open. */
			struct pollfd pf = {.fd = pfd[0], .events = POLLIN};
			int pr = poll(&pf, 1, (int)MIN(deadline - now, (uint64_t)50));
			if (pr < 0 && errno != EINTR) {
				errf(err, errsz, "password_cmd: poll: %s", strerror(errno));
				kill_group(pid);
				goto out;
			}
		}
		for (;;) {
			ssize_t r;
			if (got < ACCOUNT_PASSWORD_MAX) {
				r = read(pfd[0], buf + got, ACCOUNT_PASSWORD_MAX - got);
				if (r > 0)
					got += (size_t)r;
			} else {
				r = read(pfd[0], drop, sizeof(drop));
				if (r > 0)
					more = true;
			}
			if (r == 0) {
				eof = true;
				break;
			}
			if (r < 0) {
				if (errno == EINTR)
					continue;
				if (errno != EAGAIN && errno != EWOULDBLOCK) {
					errf(err, errsz, "password_cmd: read: %s",
						strerror(errno));
					if (!reaped)
						kill_group(pid);
					goto out;
				}
				break;
			}
		}
		/* Reaped before this drain: all the command wrote has been read;
		 * more could only come from what it left behind. */
		if (reaped)
			break;
	}
	if (!eof && !reaped) {
		char t[32];
		describe_ms(password_timeout_ms, t, sizeof t);
		kill_group(pid);
		errf(err, errsz, "password_cmd timed out after %s", t);
		goto out;
	}
	if (!reaped && !reap_until(pid, &status, deadline)) {
		char t[32];
		describe_ms(password_timeout_ms, t, sizeof t);
		kill_group(pid);
		errf(err, errsz, "password_cmd timed out after %s (it did not exit)", t);
		goto out;
	}
	if (WIFSIGNALED(status)) {
		errf(err, errsz, "password_cmd was killed by signal %d (%s)", WTERMSIG(status),
			strsignal(WTERMSIG(status)));
		goto out;
	}
	if (WIFEXITED(status) && WEXITSTATUS(status) != 0) {
		errf(err, errsz, "password_cmd exited with status %d", WEXITSTATUS(status));
		goto out;
	}
	char *lf = memchr(buf, '\n', got);
	if (lf == NULL && more) {
		errf(err, errsz, "password_cmd: first line longer than %d bytes",
			ACCOUNT_PASSWORD_MAX);
		goto out;
	}
	size_t l = lf != NULL ? (size_t)(lf - buf) : got;
	if (l > 0 && buf[l - 1] == '\r')
		l--;
	if (l == 0) {
		errf(err, errsz, got == 0 ? "password_cmd printed nothing"
					     : "password_cmd printed an empty first line");
		goto out;
	}
	if (memchr(buf, '\0', l) != NULL) {
		errf(err, errsz, "password_cmd printed a NUL byte");
		goto out;
	}
	pw = xmalloc(l + 1);
	memcpy(pw, buf, l);
	pw[l] = '\0';
out:
	close(pfd[0]);
	explicit_bzero(buf, sizeof buf);
	explicit_bzero(drop, sizeof drop);
	return pw;
}

/* The prompt's terminal state, for the signal handlers. */
static volatile sig_atomic_t tty_active;
static volatile sig_atomic_t tty_interrupted;
static int tty_fd = -1;
static struct termios tty_saved, tty_quiet;

static const int tty_signals[] = {SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGTSTP};
static struct sigaction tty_old[ARRAY_LEN(tty_signals)];
static bool tty_installed[ARRAY_LEN(tty_signals)];

static void tty_on_signal(int sig);

static void tty_install(size_t i)
{
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = tty_on_signal;
	sigemptyset(&sa.sa_mask);
	sa.sa_flags = 0; /* no SA_RESTART: read() returns EINTR */
	sigaction(tty_signals[i], &sa, NULL);
}

/* Terminal back as it was, then the signal acts as it would have without
 * us (stop, die, or the caller's handler); if we are still running after
 * that, echo goes off again and the prompt goes on (SIGTSTP) or ends
 * (the others). */
static void tty_on_signal(int sig)
{
	int saved_errno = errno;
	size_t i = 0;
	while (i < ARRAY_LEN(tty_signals) && tty_signals[i] != sig)
		i++;
	if (i == ARRAY_LEN(tty_signals)) {
		errno = saved_errno;
		return;
	}
	if (tty_active) {
		tcsetattr(tty_fd, TCSANOW, &tty_saved);
		if (sig != SIGTSTP) {
			ssize_t w = write(tty_fd, "\n", 1);
			(void)w;
		}
	}
	sigaction(sig, &tty_old[i], NULL);
	sigset_t s;
	sigemptyset(&s);
	sigaddset(&s, sig);
	sigprocmask(SIG_UNBLOCK, &s, NULL);
	raise(sig);
	/* Still here: continued after a stop, or the caller's handler
	 * returned. */
	sigprocmask(SIG_BLOCK, &s, NULL);
	tty_install(i);
	if (sig != SIGTSTP)
		tty_interrupted = 1;
	else if (tty_active)
		tcsetattr(tty_fd, TCSAFLUSH, &tty_quiet);
	errno = saved_errno;
}

static char *prompt_password(const char *prompt_for, char *err, size_t errsz)
{
	int fd = open("/dev/tty", O_RDWR | O_CLOEXEC | O_NOCTTY);
	if (fd < 0) {
		errf(err, errsz, "no terminal to ask for the password on: set password_cmd");
		return NULL;
	}
	struct termios saved;
	if (tcgetattr(fd, &saved) < 0) {
		errf(err, errsz, "no terminal to ask for the password on: set password_cmd");
		close(fd);
		return NULL;
	}
	char prompt[600];
	if (prompt_for != NULL)
		snprintf(prompt, sizeof prompt, "Password for %.500s: ", prompt_for);
	else
		snprintf(prompt, sizeof prompt, "Password: ");

	/* Handlers first (so no signal finds echo off without one), for the
	 * signals the caller does not ignore. */
	tty_fd = fd;
	tty_saved = saved;
	tty_quiet = saved;
	tty_quiet.c_lflag &= ~(tcflag_t)(ECHO | ECHOE | ECHOK | ECHONL);
	tty_interrupted = 0;
	sigset_t block, old_mask;
	sigemptyset(&block);
	for (size_t i = 0; i < ARRAY_LEN(tty_signals); i++)
		sigaddset(&block, tty_signals[i]);
	sigprocmask(SIG_BLOCK, &block, &old_mask);
	for (size_t i = 0; i < ARRAY_LEN(tty_signals); i++) {
		sigaction(tty_signals[i], NULL, &tty_old[i]);
		tty_installed[i] = tty_old[i].sa_handler != SIG_IGN;
		if (tty_installed[i])
			tty_install(i);
	}
	tty_active = 1;
	int set = tcsetattr(fd, TCSAFLUSH, &tty_quiet);
	sigprocmask(SIG_SETMASK, &old_mask, NULL);

	char buf[ACCOUNT_PASSWORD_MAX + 1];
	size_t got = 0;
	bool too_long = false, done = false;
	char *pw = NULL;
	const char *fail = NULL;
	if (set < 0) {
		fail = "cannot turn off echo on the terminal";
		goto restore;
	}
	{
		ssize_t w = write(fd, prompt, strlen(prompt));
		(void)w;
	}
	while (!done) {
		char c;
		ssize_t r = read(fd, &c, 1);
		if (r < 0 && errno == EINTR) {
			if (tty_interrupted) {
				fail = "interrupted";
				break;
			}
			continue;
		}
		if (r <= 0) {
			fail = "no password given";
			break;
		}
		if (c == '\n') {
			done = true;
		} else if (got < ACCOUNT_PASSWORD_MAX) {
			buf[got++] = c;
		} else {
			too_long = true;
		}
	}
restore:
	sigprocmask(SIG_BLOCK, &block, &old_mask);
	tcsetattr(fd, TCSAFLUSH, &saved);
	tty_active = 0;
	for (size_t i = 0; i < ARRAY_LEN(tty_signals); i++)
		if (tty_installed[i])
			sigaction(tty_signals[i], &tty_old[i], NULL);
	sigprocmask(SIG_SETMASK, &old_mask, NULL);
	{
		ssize_t w = write(fd, "\n", 1);
		(void)w;
	}
	close(fd);
	tty_fd = -1;
	if (got > 0 && buf[got - 1] == '\r')
		got--;
	if (fail == NULL && too_long)
		fail = "the password is too long";
	if (fail == NULL && got == 0)
		fail = "no password given";
	if (fail != NULL) {
		errf(err, errsz, "%s", fail);
	} else {
		pw = xmalloc(got + 1);
		memcpy(pw, buf, got);
		pw[got] = '\0';
	}
	explicit_bzero(buf, sizeof buf);
	return pw;
}

char *account_password(const struct account *a, const char *prompt_for, char *err,
		       size_t errsz)
{
	if (err != NULL && errsz > 0)
		err[0] = '\0';
	if (a != NULL && a->password_cmd[0] != '\0')
		return run_password_cmd(a->password_cmd, err, errsz);
	return prompt_password(prompt_for, err, errsz);
}
