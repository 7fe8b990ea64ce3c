/* client_account.c - yubin account add | list: writing and showing client.conf.
 *
 *   yubin account add [NAME] [--address A] [--name "DISPLAY NAME"]
 *                     [--smtp HOST[:PORT]] [--smtp-tls starttls|tls|none]
 *                     [--incoming URL] [--user U] [--password-cmd CMD] [--cafile F]
 *                     [--default] [--yes] [--dns-server IP[@PORT]]
 *   yubin account list [--json]
 *
 * add guesses the servers from the address's domain by DNS SRV (RFC 6186,
 * client/srv.h) for what the options do not give.  On a terminal (and
 * without --yes) it asks for the address, the display name, the account
 * name, shows the guesses to accept or replace, then the login and the
 * password_cmd; otherwise it asks nothing and fails when no submission
 * server is known.  The new [account] section is appended to the file's
 * text as it is (comments and layout untouched), the whole text parsed
 * with accounts_parse, then written atomically: a 0600 temporary file in
 * the same directory, fsync, rename, fsync of the directory (made 0700
 * when missing).  No password is ever written: password_cmd, or a prompt
 * each time.
 *
 * Exit codes: 0 ok, 1 failed, 2 bad usage. */
#include "yubin/client.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <limits.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "client/account.h"
#include "client/srv.h"
#include "core/buf.h"
#include "core/util.h"

#define PATH_SIZE 4096

static const char add_usage[] =
	"usage: yubin account add [NAME] [--address ADDR] [--name \"DISPLAY NAME\"]\n"
	"                         [--smtp HOST[:PORT]] [--smtp-tls starttls|tls|none]\n"
	"                         [--incoming imap[s]://HOST[:PORT] | pop3[s]://HOST[:PORT]]\n"
	"                         [--user LOGIN] [--password-cmd CMD] [--cafile FILE]\n"
	"                         [--default] [--yes] [--dns-server IP[@PORT]]\n"
	"Adds an account to client.conf.  Servers not given are looked up by DNS SRV\n"
	"(RFC 6186) for the address's domain.  On a terminal it asks for what is\n"
	"missing; with --yes (or without a terminal) it asks nothing and fails when no\n"
	"submission server is known.  NAME defaults to the address.  No password is\n"
	"stored: give --password-cmd, or the password is asked each time.\n";

static const char list_usage[] = "usage: yubin account list [--json]\n";

static const char account_usage[] =
	"usage: yubin account add [NAME] [OPTIONS]   (yubin account add --help)\n"
	"       yubin account list [--json]\n";

struct add_opts {
	const char *name, *address, *display, *smtp, *smtp_tls, *incoming, *user;
	const char *password_cmd, *cafile, *dns_server;
	bool is_default, yes;
};

/* The account being made; every string checked with value_ok. */
struct draft {
	char name[64];
	char address[320];
	char display[256];
	char smtp_host[256];        /* "" until known */
	int smtp_port;
	enum tls_mode smtp_tls;
	char incoming[1024];        /* URL, "" for none */
	char user[320];             /* "" for the address */
	char password_cmd[1024];
	char cafile[PATH_SIZE];
	bool is_default;
};

/* ---- small helpers ---- */

static const char *tls_word(enum tls_mode m)
{
	return m == TLS_IMPLICIT ? "tls" : m == TLS_NONE ? "none" : "starttls";
}

static bool parse_tls_word(const char *s, enum tls_mode *m)
{
	if (strcmp(s, "tls") == 0)
		*m = TLS_IMPLICIT;
	else if (strcmp(s, "starttls") == 0)
		*m = TLS_STARTTLS;
	else if (strcmp(s, "none") == 0)
		*m = TLS_NONE;
	else
		return false;
	return true;
}

/* host:port, with brackets around an IPv6 address. */
static void host_port(const char *host, int port, char *out, size_t outsz)
{
	if (strchr(host, ':') != NULL)
		snprintf(out, outsz, "[%s]:%d", host, port);
	else
		snprintf(out, outsz, "%s:%d", host, port);
}

/* The account name rule of client.conf (account.h). */
static bool name_ok(const char *s)
{
	size_t n = strlen(s);
	if (n == 0 || n > 63 || s[0] == '.')
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '.' || c == '_' || c == '-' || c == '+' || c == '@'))
			return false;
	}
	return true;
}

static bool name_taken(const struct account *v, size_t n, const char *name)
{
	return account_find(v, n, name) != NULL;
}

/* A value client.conf can hold as it is: no control characters, no
 * comment start (" #"), no spaces at either end.  Prints why not. */
static bool value_ok(const char *what, const char *v)
{
	for (const unsigned char *p = (const unsigned char *)v; *p; p++) {
		if (*p < 0x20 || *p == 0x7f) {
			fprintf(stderr, "yubin account add: %s: no control characters\n", what);
			return false;
		}
		if (*p == '#' && p > (const unsigned char *)v && (p[-1] == ' ' || p[-1] == '\t')) {
			fprintf(stderr, "yubin account add: %s cannot contain \" #\" (client.conf "
				"reads the rest of the line as a comment)\n", what);
			return false;
		}
	}
	size_t n = strlen(v);
	if (n > 0 && (v[0] == ' ' || v[0] == '\t' || v[n - 1] == ' ' || v[n - 1] == '\t')) {
		fprintf(stderr, "yubin account add: %s: no spaces at either end\n", what);
		return false;
	}
	if (n >= ACCOUNTS_LINE_MAX - 32) {
		fprintf(stderr, "yubin account add: %s is too long\n", what);
		return false;
	}
	return true;
}

/* What accounts_parse says of key = value in an otherwise minimal account:
 * true, or false with its message (without "FILE:LINE: ") in err. */
static bool key_ok(const char *key, const char *value, char *err, size_t errsz)
{
	struct buf b;
	buf_init(&b, 3 * ACCOUNTS_LINE_MAX);
	buf_printf(&b, "[account check]\n");
	if (strcmp(key, "address") != 0)
		buf_printf(&b, "address = check@example.org\n");
	if (strcmp(key, "smtp") != 0)
		buf_printf(&b, "smtp = localhost\n");
	buf_printf(&b, "%s = %s\n", key, value);
	struct account *v = NULL;
	size_t n = 0;
	char e[700] = "";
	int rc = b.data ? accounts_parse(b.data, b.len, "check", &v, &n, e, sizeof e) : -1;
	buf_free(&b);
	free(v);
	if (rc == 0)
		return true;
	const char *m = e;
	if (strncmp(m, "check:", 6) == 0) {
		const char *c = strchr(m + 6, ':');
		m = c != NULL ? c + 1 : m;
		while (*m == ' ')
			m++;
	}
	snprintf(err, errsz, "%s", m[0] ? m : "does not parse");
	return false;
}

static bool copy_value(const char *what, const char *v, char *dst, size_t dstsz)
{
	if (!value_ok(what, v))
		return false;
	if (strlen(v) >= dstsz) {
		fprintf(stderr, "yubin account add: %s is too long\n", what);
		return false;
	}
	snprintf(dst, dstsz, "%s", v);
	return true;
}

/* An option's value for key: storable and accepted by the parser.  Prints why not. */
static bool opt_value(const char *opt, const char *key, const char *v, char *dst, size_t dstsz)
{
	char err[700];
	if (!copy_value(opt, v, dst, dstsz))
		return false;
	if (!key_ok(key, v, err, sizeof err)) {
		fprintf(stderr, "yubin account add: %s: %s\n", opt, err);
		return false;
	}
	return true;
}

/* ---- questions ---- */

/* Print prompt (with [def] when there is one), read a line from stdin:
 * trimmed, def when empty.  1, or 0 at end of input. */
static int ask(const char *prompt, const char *def, char *out, size_t outsz)
{
	for (;;) {
		if (def != NULL && def[0] != '\0')
			printf("%s [%s]: ", prompt, def);
		else
			printf("%s: ", prompt);
		fflush(stdout);
		char *line = NULL;
		size_t cap = 0;
		ssize_t n = getline(&line, &cap, stdin);
		if (n < 0) {
			free(line);
			printf("\n");
			return 0;
		}
		size_t l = (size_t)n;
		while (l > 0 && (line[l - 1] == '\n' || line[l - 1] == '\r' ||
				 line[l - 1] == ' ' || line[l - 1] == '\t'))
			l--;
		size_t a = 0;
		while (a < l && (line[a] == ' ' || line[a] == '\t'))
			a++;
		if (l - a >= outsz) {
			free(line);
			printf("That is too long.\n");
			continue;
		}
		memcpy(out, line + a, l - a);
		out[l - a] = '\0';
		free(line);
		if (out[0] == '\0' && def != NULL)
			snprintf(out, outsz, "%s", def);
		return 1;
	}
}

/* y/n, def when empty.  1 yes, 0 no, -1 end of input. */
static int ask_yes(const char *prompt, bool def)
{
	char a[64];
	for (;;) {
		printf("%s [%s] ", prompt, def ? "Y/n" : "y/N");
		fflush(stdout);
		char *line = NULL;
		size_t cap = 0;
		ssize_t n = getline(&line, &cap, stdin);
		if (n < 0) {
			free(line);
			printf("\n");
			return -1;
		}
		snprintf(a, sizeof a, "%s", line);
		free(line);
		a[strcspn(a, "\r\n")] = '\0';
		if (a[0] == '\0')
			return def;
		if (strcasecmp(a, "y") == 0 || strcasecmp(a, "yes") == 0)
			return 1;
		if (strcasecmp(a, "n") == 0 || strcasecmp(a, "no") == 0)
			return 0;
		printf("Please answer y or n.\n");
	}
}

static int aborted(void)
{
	fprintf(stderr, "yubin account add: no answer; nothing written\n");
	return 1;
}

/* ---- the servers ---- */

static const char *addr_domain(const char *address)
{
	const char *at = strrchr(address, '@');
	return at != NULL && at[1] != '\0' ? at + 1 : NULL;
}

/* host is domain or under it (RFC 6186 6: anything else deserves a look). */
static bool in_domain(const char *host, const char *domain)
{
	size_t hl = strlen(host), dl = strlen(domain);
	if (dl > 0 && domain[dl - 1] == '.')
		dl--;
	if (hl == dl)
		return strncasecmp(host, domain, dl) == 0;
	return hl > dl && host[hl - dl - 1] == '.' && strncasecmp(host + hl - dl, domain, dl) == 0;
}

struct guess {
	bool looked;                /* srv_lookup was made */
	struct srv_result r;
	int submit, incoming;       /* srv_service, or -1 */
	char smtp_host[256];
	int smtp_port;
	enum tls_mode smtp_tls;
	char incoming_url[600];
};

static void incoming_url(enum srv_service s, const struct srv_record *rec, char *out,
			 size_t outsz)
{
	static const struct {
		const char *scheme;
		unsigned port;
	} u[SRV_SERVICES] = {
		[SRV_IMAPS] = {"imaps", 993},
		[SRV_IMAP] = {"imap", 143},
		[SRV_POP3S] = {"pop3s", 995},
		[SRV_POP3] = {"pop3", 110},
	};
	if (rec->port == u[s].port)
		snprintf(out, outsz, "%s://%s", u[s].scheme, rec->target);
	else
		snprintf(out, outsz, "%s://%s:%u", u[s].scheme, rec->target, rec->port);
}

static void guess_servers(const char *domain, const char *dns_server, unsigned which,
			  bool verbose, struct guess *g)
{
	memset(g, 0, sizeof *g);
	g->submit = g->incoming = -1;
	if (which == 0)
		return;
	if (domain == NULL || !srv_domain_ok(domain)) {
		fprintf(stderr, "yubin account add: note: \"%s\" cannot be looked up in the DNS "
			"(write an international domain as xn--...)\n", domain ? domain : "");
		return;
	}
	if (verbose) {
		printf("Looking up the mail servers of %s (DNS SRV)...\n", domain);
		fflush(stdout);
	}
	char err[512];
	if (srv_lookup(domain, dns_server, which, &g->r, err, sizeof err) < 0) {
		fprintf(stderr, "yubin account add: note: no DNS lookup: %s\n", err);
		return;
	}
	g->looked = true;
	for (size_t s = 0; s < SRV_SERVICES; s++)
		if (g->r.svc[s].state == SRV_FAILED)
			fprintf(stderr, "yubin account add: note: %s.%s: %s\n", srv_label(s),
				domain, g->r.svc[s].error);
	g->submit = srv_choose_submission(&g->r);
	g->incoming = srv_choose_incoming(&g->r);
	if (g->submit >= 0) {
		const struct srv_record *rec = &g->r.svc[g->submit].rec;
		snprintf(g->smtp_host, sizeof g->smtp_host, "%s", rec->target);
		g->smtp_port = (int)rec->port;
		g->smtp_tls = g->submit == SRV_SUBMISSIONS ? TLS_IMPLICIT : TLS_STARTTLS;
		if (!in_domain(rec->target, domain))
			fprintf(stderr, "yubin account add: note: the submission server %s is "
				"not under %s: check that it is your provider's\n", rec->target,
				domain);
	}
	if (g->incoming >= 0) {
		const struct srv_record *rec = &g->r.svc[g->incoming].rec;
		incoming_url((enum srv_service)g->incoming, rec, g->incoming_url,
			     sizeof g->incoming_url);
		if (!in_domain(rec->target, domain))
			fprintf(stderr, "yubin account add: note: the incoming server %s is "
				"not under %s: check that it is your provider's\n", rec->target,
				domain);
	}
}

/* "smtp.example.org:465 (TLS)" */
static void describe_smtp(const char *host, int port, enum tls_mode tls, char *out,
			  size_t outsz)
{
	char hp[300];
	host_port(host, port, hp, sizeof hp);
	snprintf(out, outsz, "%s (%s)", hp, tls == TLS_IMPLICIT ? "TLS"
					       : tls == TLS_NONE ? "no TLS" : "STARTTLS");
}

/* --smtp HOST[:PORT] with --smtp-tls (or NULL) into d.  Prints why not. */
static bool set_smtp(struct draft *d, const char *spec, const char *tls_opt)
{
	enum tls_mode tls = TLS_STARTTLS;
	bool have_tls = tls_opt != NULL && tls_opt[0] != '\0' && parse_tls_word(tls_opt, &tls);
	if (tls_opt != NULL && tls_opt[0] != '\0' && !have_tls) {
		fprintf(stderr, "yubin account add: TLS is starttls, tls or none, not \"%s\"\n",
			tls_opt);
		return false;
	}
	char host[256];
	int port;
	if (!value_ok("the submission server", spec) ||
	    client_server(spec, have_tls && tls == TLS_IMPLICIT ? 465 : 587, host, sizeof host,
			  &port) < 0) {
		fprintf(stderr, "yubin account add: submission server \"%s\": expected "
			"HOST[:PORT]\n", spec);
		return false;
	}
	char hp[300], err[600];
	host_port(host, port, hp, sizeof hp);
	if (!key_ok("smtp", hp, err, sizeof err)) {
		fprintf(stderr, "yubin account add: submission server \"%s\": %s\n", spec, err);
		return false;
	}
	snprintf(d->smtp_host, sizeof d->smtp_host, "%s", host);
	d->smtp_port = port;
	d->smtp_tls = have_tls ? tls : port == 465 ? TLS_IMPLICIT : TLS_STARTTLS;
	return true;
}

static bool set_incoming(struct draft *d, const char *url)
{
	char err[600];
	if (!value_ok("the incoming server", url))
		return false;
	if (url[0] != '\0' && !key_ok("incoming", url, err, sizeof err)) {
		fprintf(stderr, "yubin account add: incoming server \"%s\": %s\n", url, err);
		return false;
	}
	return copy_value("the incoming server", url, d->incoming, sizeof d->incoming);
}

/* ---- the file ---- */

struct conf_file {
	char path[PATH_SIZE];       /* accounts_path */
	char real[PATH_SIZE];       /* the file written: path, or what its symlink names */
	char dir[PATH_SIZE];        /* real's directory */
	bool exists;
	struct stat st;
	char *text;                 /* its bytes, as they are */
	size_t len;
};

static void conf_file_free(struct conf_file *f)
{
	free(f->text);
	f->text = NULL;
}

/* Read the file's text (accounts_load has checked it already). 0, or -1 printed. */
static int conf_file_read(struct conf_file *f)
{
	struct stat lst;
	snprintf(f->real, sizeof f->real, "%s", f->path);
	if (lstat(f->path, &lst) < 0) {
		if (errno != ENOENT) {
			fprintf(stderr, "yubin account add: %s: %s\n", f->path, strerror(errno));
			return -1;
		}
	} else if (S_ISLNK(lst.st_mode)) {
		/* a dotfiles symlink: keep it, write the file it names */
		char buf[PATH_MAX];
		if (realpath(f->path, buf) == NULL) {
			fprintf(stderr, "yubin account add: %s is a symlink to nothing (%s)\n",
				f->path, strerror(errno));
			return -1;
		}
		snprintf(f->real, sizeof f->real, "%s", buf);
	}
	const char *slash = strrchr(f->real, '/');
	if (slash == NULL) {
		fprintf(stderr, "yubin account add: %s is not an absolute path\n", f->real);
		return -1;
	}
	snprintf(f->dir, sizeof f->dir, "%.*s", slash == f->real ? 1 : (int)(slash - f->real),
		 f->real);

	int fd = open(f->real, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	if (fd < 0) {
		if (errno == ENOENT)
			return 0;
		fprintf(stderr, "yubin account add: %s: %s\n", f->real, strerror(errno));
		return -1;
	}
	if (fstat(fd, &f->st) < 0 || !S_ISREG(f->st.st_mode)) {
		fprintf(stderr, "yubin account add: %s: not a regular file\n", f->real);
		close(fd);
		return -1;
	}
	f->exists = true;
	struct buf b;
	buf_init(&b, ACCOUNTS_FILE_MAX);
	char tmp[16384];
	for (;;) {
		ssize_t r = read(fd, tmp, sizeof tmp);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0 || (r > 0 && buf_append(&b, tmp, (size_t)r) < 0)) {
			fprintf(stderr, "yubin account add: %s: %s\n", f->real,
				r < 0 ? strerror(errno) : "too large");
			buf_free(&b);
			close(fd);
			return -1;
		}
		if (r == 0)
			break;
	}
	close(fd);
	if (b.data == NULL)
		buf_append(&b, "", 0);
	f->text = buf_steal(&b, &f->len);
	return 0;
}

/* mkdir -p of dir, each directory made 0700. 0, or -1 printed. */
static int make_dirs(const char *dir)
{
	char p[PATH_SIZE];
	snprintf(p, sizeof p, "%s", dir);
	size_t n = strlen(p);
	for (size_t i = 1; i <= n; i++) {
		if (p[i] != '/' && p[i] != '\0')
			continue;
		char c = p[i];
		p[i] = '\0';
		struct stat st;
		if (stat(p, &st) == 0) {
			p[i] = c;
			continue;
		}
		if (mkdir(p, 0700) == 0) {
			/* whatever the umask says */
			if (chmod(p, 0700) < 0) {
				fprintf(stderr, "yubin account add: chmod %s: %s\n", p,
					strerror(errno));
				return -1;
			}
		} else if (errno != EEXIST) {
			fprintf(stderr, "yubin account add: cannot create %s: %s\n", p,
				strerror(errno));
			return -1;
		}
		p[i] = c;
	}
	struct stat st;
	if (stat(dir, &st) < 0 || !S_ISDIR(st.st_mode)) {
		fprintf(stderr, "yubin account add: %s is not a directory\n", dir);
		return -1;
	}
	return 0;
}

/* The file as it was when read: same inode, size and time, or still missing. */
static bool unchanged(const struct conf_file *f)
{
	struct stat st;
	if (stat(f->real, &st) < 0)
		return errno == ENOENT && !f->exists;
	return f->exists && st.st_ino == f->st.st_ino && st.st_dev == f->st.st_dev &&
	       st.st_size == f->st.st_size && st.st_mtim.tv_sec == f->st.st_mtim.tv_sec &&
	       st.st_mtim.tv_nsec == f->st.st_mtim.tv_nsec;
}

/* text into f->real atomically.  0, or -1 printed (nothing changed). */
static int write_atomic(const struct conf_file *f, const char *text, size_t len)
{
	if (!f->exists && make_dirs(f->dir) < 0)
		return -1;
	const char *base = strrchr(f->real, '/') + 1;
	char tmp[PATH_SIZE + 64];
	if ((size_t)snprintf(tmp, sizeof tmp, "%s/.%s.XXXXXX", f->dir, base) >= sizeof tmp) {
		fprintf(stderr, "yubin account add: %s: path too long\n", f->real);
		return -1;
	}
	int fd = mkostemp(tmp, O_CLOEXEC);
	if (fd < 0) {
		fprintf(stderr, "yubin account add: cannot create a file in %s: %s\n", f->dir,
			strerror(errno));
		return -1;
	}
	const char *what = NULL;
	if (fchmod(fd, 0600) < 0)
		what = "chmod";
	else if (write_full(fd, text, len) < 0)
		what = "write";
	else if (fsync(fd) < 0)
		what = "fsync";
	int e = errno;
	if (close(fd) < 0 && what == NULL) {
		what = "close";
		e = errno;
	}
	if (what != NULL) {
		fprintf(stderr, "yubin account add: %s %s: %s; nothing written\n", what, tmp,
			strerror(e));
		unlink(tmp);
		return -1;
	}
	if (!unchanged(f)) {
		fprintf(stderr, "yubin account add: %s changed meanwhile; nothing written "
			"(run it again)\n", f->real);
		unlink(tmp);
		return -1;
	}
	if (rename(tmp, f->real) < 0) {
		fprintf(stderr, "yubin account add: rename %s to %s: %s; nothing written\n", tmp,
			f->real, strerror(errno));
		unlink(tmp);
		return -1;
	}
	int dfd = open(f->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0 || fsync(dfd) < 0) {
		/* the file is in place; only its durability is in doubt */
		fprintf(stderr, "yubin account add: warning: fsync %s: %s\n", f->dir,
			strerror(errno));
	}
	if (dfd >= 0)
		close(dfd);
	return 0;
}

/* The existing text with the new section after it, in the file's own line
 * ends; a blank line between them.  NULL when too large. */
static char *compose(const struct conf_file *f, const struct draft *d, size_t *len_r)
{
	const char *old = f->text != NULL ? f->text : "";
	size_t oldlen = f->text != NULL ? f->len : 0;
	const char *lf = memchr(old, '\n', oldlen);
	const char *eol = lf != NULL && lf > old && lf[-1] == '\r' ? "\r\n" : "\n";
	struct buf b;
	buf_init(&b, ACCOUNTS_FILE_MAX);
	int r = buf_append(&b, old, oldlen);
	if (oldlen > 0 && old[oldlen - 1] != '\n')
		r |= buf_append_str(&b, eol);
	/* a blank line before the section unless there is one (or nothing) */
	bool blank = oldlen == 0 || (oldlen >= 2 && old[oldlen - 1] == '\n' &&
				     (old[oldlen - 2] == '\n' ||
				      (oldlen >= 3 && old[oldlen - 2] == '\r' &&
				       old[oldlen - 3] == '\n')));
	if (!blank)
		r |= buf_append_str(&b, eol);
	r |= buf_printf(&b, "[account %s]%s", d->name, eol);
	if (d->is_default)
		r |= buf_printf(&b, "default = yes%s", eol);
	if (d->display[0])
		r |= buf_printf(&b, "name = %s%s", d->display, eol);
	r |= buf_printf(&b, "address = %s%s", d->address, eol);
	char hp[300];
	host_port(d->smtp_host, d->smtp_port, hp, sizeof hp);
	r |= buf_printf(&b, "smtp = %s%s", hp, eol);
	r |= buf_printf(&b, "smtp_tls = %s%s", tls_word(d->smtp_tls), eol);
	if (d->user[0] && strcmp(d->user, d->address) != 0)
		r |= buf_printf(&b, "smtp_user = %s%s", d->user, eol);
	if (d->incoming[0])
		r |= buf_printf(&b, "incoming = %s%s", d->incoming, eol);
	if (d->password_cmd[0])
		r |= buf_printf(&b, "password_cmd = %s%s", d->password_cmd, eol);
	if (d->cafile[0])
		r |= buf_printf(&b, "cafile = %s%s", d->cafile, eol);
	if (r != 0) {
		buf_free(&b);
		return NULL;
	}
	return buf_steal(&b, len_r);
}

/* ---- account add ---- */

static int add_usage_error(const char *what, const char *arg)
{
	fprintf(stderr, "yubin account add: %s%s%s\n%s", what, arg ? " " : "", arg ? arg : "",
		add_usage);
	return 2;
}

/* 0 ok, 1 printed help, 2 printed a usage error. */
static int parse_add(int argc, char **argv, struct add_opts *o)
{
	static const struct {
		const char *opt;
		size_t off;
	} valued[] = {
		{"--address", offsetof(struct add_opts, address)},
		{"--name", offsetof(struct add_opts, display)},
		{"--smtp", offsetof(struct add_opts, smtp)},
		{"--smtp-tls", offsetof(struct add_opts, smtp_tls)},
		{"--incoming", offsetof(struct add_opts, incoming)},
		{"--user", offsetof(struct add_opts, user)},
		{"--password-cmd", offsetof(struct add_opts, password_cmd)},
		{"--cafile", offsetof(struct add_opts, cafile)},
		{"--dns-server", offsetof(struct add_opts, dns_server)},
	};
	memset(o, 0, sizeof *o);
	bool only_operands = false;
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		if (only_operands || a[0] != '-' || a[1] == '\0') {
			if (o->name != NULL)
				return add_usage_error("one account NAME only, not also", a);
			o->name = a;
			continue;
		}
		if (strcmp(a, "--") == 0) {
			only_operands = true;
		} else if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
			fputs(add_usage, stdout);
			return 1;
		} else if (strcmp(a, "--default") == 0) {
			o->is_default = true;
		} else if (strcmp(a, "--yes") == 0 || strcmp(a, "-y") == 0) {
			o->yes = true;
		} else {
			size_t k = 0;
			while (k < ARRAY_LEN(valued) && strcmp(a, valued[k].opt) != 0)
				k++;
			if (k == ARRAY_LEN(valued))
				return add_usage_error("unknown option", a);
			if (i + 1 >= argc)
				return add_usage_error("a value is missing after", a);
			*(const char **)((char *)o + valued[k].off) = argv[++i];
		}
	}
	enum tls_mode m;
	if (o->smtp_tls != NULL && !parse_tls_word(o->smtp_tls, &m))
		return add_usage_error("--smtp-tls is starttls, tls or none, not", o->smtp_tls);
	if (o->dns_server != NULL && !srv_server_ok(o->dns_server))
		return add_usage_error("--dns-server takes IP or IP@PORT, not", o->dns_server);
	if (o->name != NULL && !name_ok(o->name))
		return add_usage_error("an account NAME is 1-63 of A-Z a-z 0-9 . _ - + @, "
				       "not starting with '.', not", o->name);
	return 0;
}

/* The account name when none is given: the address if it is a valid name,
 * else its domain, else "mail". */
static void default_name(const char *address, char *out, size_t outsz)
{
	const char *dom = addr_domain(address);
	if (name_ok(address))
		snprintf(out, outsz, "%s", address);
	else if (dom != NULL && name_ok(dom))
		snprintf(out, outsz, "%s", dom);
	else
		snprintf(out, outsz, "mail");
}

/* The interactive part: what the options did not give.  0, or an exit code. */
static int ask_all(const struct add_opts *o, struct draft *d, const struct account *v, size_t n,
		   const char *path)
{
	char line[ACCOUNTS_LINE_MAX + 1], err[600];
	printf("New account for %s\n", path);
	while (o->address == NULL) {
		if (!ask("Email address", NULL, line, sizeof line))
			return aborted();
		if (line[0] == '\0' || !value_ok("the address", line))
			continue;
		if (!key_ok("address", line, err, sizeof err)) {
			printf("%s\n", err);
			continue;
		}
		if (copy_value("the address", line, d->address, sizeof d->address))
			break;
	}
	while (o->display == NULL) {
		if (!ask("Your name, for From: (may be empty)", NULL, line, sizeof line))
			return aborted();
		if (copy_value("the name", line, d->display, sizeof d->display))
			break;
	}
	while (o->name == NULL) {
		char def[64];
		default_name(d->address, def, sizeof def);
		if (!ask("Account name", name_taken(v, n, def) ? NULL : def, line, sizeof line))
			return aborted();
		if (!name_ok(line))
			printf("An account name is 1-63 of A-Z a-z 0-9 . _ - + @, not starting "
			       "with '.'.\n");
		else if (name_taken(v, n, line))
			printf("There is an account \"%s\" already.\n", line);
		else {
			memcpy(d->name, line, strlen(line) + 1);     /* name_ok: at most 63 */
			break;
		}
	}

	const char *domain = addr_domain(d->address);
	unsigned which = (o->smtp ? 0 : SRV_SUBMIT_BITS) | (o->incoming ? 0 : SRV_INCOMING_BITS);
	struct guess g;
	guess_servers(domain, o->dns_server, which, true, &g);
	if (!o->smtp && g.submit >= 0) {
		snprintf(d->smtp_host, sizeof d->smtp_host, "%s", g.smtp_host);
		d->smtp_port = g.smtp_port;
		d->smtp_tls = g.smtp_tls;
	}
	if (!o->smtp && g.submit >= 0 && o->smtp_tls != NULL)
		parse_tls_word(o->smtp_tls, &d->smtp_tls);
	if (!o->incoming && g.incoming >= 0)
		snprintf(d->incoming, sizeof d->incoming, "%s", g.incoming_url);
	bool found = (!o->smtp && g.submit >= 0) || (!o->incoming && g.incoming >= 0);
	char smtp_desc[400] = "";
	if (d->smtp_host[0])
		describe_smtp(d->smtp_host, d->smtp_port, d->smtp_tls, smtp_desc,
			      sizeof smtp_desc);
	bool accept = false;
	if (found) {
		printf("found by DNS SRV: submission %s, incoming %s\n",
		       smtp_desc[0] ? smtp_desc : "(none)",
		       d->incoming[0] ? d->incoming : "(none)");
		int y = ask_yes("Use these servers?", d->smtp_host[0] != '\0');
		if (y < 0)
			return aborted();
		accept = y == 1 && d->smtp_host[0] != '\0';
	} else if (which != 0) {
		printf("No mail servers found by DNS SRV for %s; please give them.\n",
		       domain ? domain : "the address");
	}
	if (!accept && !o->smtp) {
		for (;;) {
			char def[300] = "";
			if (d->smtp_host[0])
				host_port(d->smtp_host, d->smtp_port, def, sizeof def);
			if (!ask("Submission server, HOST[:PORT]", def, line, sizeof line))
				return aborted();
			if (line[0] == '\0')
				continue;
			char spec[ACCOUNTS_LINE_MAX + 1];
			snprintf(spec, sizeof spec, "%s", line);
			struct draft tmp = *d;
			if (!set_smtp(&tmp, spec, o->smtp_tls))
				continue;
			if (o->smtp_tls == NULL) {
				const char *tdef = tls_word(tmp.smtp_tls);
				if (!ask("TLS: tls (port 465), starttls or none", tdef, line,
					 sizeof line))
					return aborted();
				if (!parse_tls_word(line, &tmp.smtp_tls)) {
					printf("That is tls, starttls or none.\n");
					continue;
				}
			}
			memcpy(d->smtp_host, tmp.smtp_host, sizeof d->smtp_host);
			d->smtp_port = tmp.smtp_port;
			d->smtp_tls = tmp.smtp_tls;
			break;
		}
	}
	if (!accept && !o->incoming) {
		for (;;) {
			if (!ask("Incoming server, imaps://HOST imap:// pop3s:// pop3:// "
				 "(- for none)", d->incoming, line, sizeof line))
				return aborted();
			if (strcmp(line, "-") == 0)
				line[0] = '\0';
			if (set_incoming(d, line))
				break;
		}
	}
	while (o->user == NULL) {
		if (!ask("Login name", d->address, line, sizeof line))
			return aborted();
		if (line[0] && copy_value("the login name", line, d->user, sizeof d->user))
			break;
	}
	while (o->password_cmd == NULL) {
		if (!ask("Command that prints the password, e.g. pass show mail (empty: ask "
			 "each time)", NULL, line, sizeof line))
			return aborted();
		if (copy_value("the password command", line, d->password_cmd,
			       sizeof d->password_cmd))
			break;
	}
	/* With accounts and none of them default, offer it. */
	bool any_default = false;
	for (size_t i = 0; i < n; i++)
		any_default |= v[i].is_default;
	if (!d->is_default && n > 0 && !any_default) {
		int y = ask_yes("Make it the default account?", false);
		if (y < 0)
			return aborted();
		d->is_default = y == 1;
	}
	return 0;
}

/* Without questions: options, then guesses.  0, or an exit code. */
static int take_guesses(const struct add_opts *o, struct draft *d)
{
	const char *domain = addr_domain(d->address);
	unsigned which = (o->smtp ? 0 : SRV_SUBMIT_BITS) | (o->incoming ? 0 : SRV_INCOMING_BITS);
	struct guess g;
	guess_servers(domain, o->dns_server, which, false, &g);
	if (!o->smtp) {
		if (g.submit < 0) {
			bool in = o->incoming || g.incoming >= 0;
			fprintf(stderr, "yubin account add: no submission server found for %s by "
				"DNS SRV (_submissions._tcp, _submission._tcp): give --smtp "
				"HOST[:PORT] (and --smtp-tls tls|starttls)%s\n",
				domain ? domain : "the address",
				in ? "" : ", and --incoming imaps://HOST (or imap://, pop3s://, "
					  "pop3://) to fetch mail");
			return 1;
		}
		snprintf(d->smtp_host, sizeof d->smtp_host, "%s", g.smtp_host);
		d->smtp_port = g.smtp_port;
		d->smtp_tls = g.smtp_tls;
		if (o->smtp_tls != NULL)
			parse_tls_word(o->smtp_tls, &d->smtp_tls);
	}
	if (!o->incoming && g.incoming >= 0)
		snprintf(d->incoming, sizeof d->incoming, "%s", g.incoming_url);
	if (!o->incoming && g.incoming < 0)
		fprintf(stderr, "yubin account add: note: no incoming server found by DNS SRV; "
			"the account can send only (add incoming = ... later, or give "
			"--incoming)\n");
	return 0;
}

static int account_add(int argc, char **argv)
{
	struct add_opts o;
	int r = parse_add(argc, argv, &o);
	if (r != 0)
		return r == 1 ? 0 : 2;
	struct draft d;
	memset(&d, 0, sizeof d);
	d.is_default = o.is_default;
	bool interactive = !o.yes && isatty(STDIN_FILENO);

	/* The values given, checked before anything is asked or looked up. */
	if ((o.address && !opt_value("--address", "address", o.address, d.address,
				     sizeof d.address)) ||
	    (o.display && !opt_value("--name", "name", o.display, d.display, sizeof d.display)) ||
	    (o.user && !opt_value("--user", "smtp_user", o.user, d.user, sizeof d.user)) ||
	    (o.password_cmd && !opt_value("--password-cmd", "password_cmd", o.password_cmd,
					  d.password_cmd, sizeof d.password_cmd)) ||
	    (o.cafile && !opt_value("--cafile", "cafile", o.cafile, d.cafile, sizeof d.cafile)) ||
	    (o.smtp && !set_smtp(&d, o.smtp, o.smtp_tls)) ||
	    (o.incoming && !set_incoming(&d, o.incoming)))
		return 2;
	if (!interactive && o.address == NULL)
		return add_usage_error("give --address (no terminal to ask on)", NULL);

	char err[700];
	struct conf_file f;
	memset(&f, 0, sizeof f);
	if (accounts_path(f.path, sizeof f.path) < 0) {
		fprintf(stderr, "yubin account add: no home directory: set HOME or "
			"XDG_CONFIG_HOME\n");
		return 1;
	}
	struct account *v = NULL;
	size_t n = 0;
	if (accounts_load(f.path, &v, &n, err, sizeof err) < 0) {
		fprintf(stderr, "yubin account add: %s\n", err);
		return 1;
	}
	int ret = 1;
	if (conf_file_read(&f) < 0)
		goto out;
	if (n >= ACCOUNTS_MAX) {
		fprintf(stderr, "yubin account add: %s has %d accounts already, the most it "
			"can hold\n", f.path, ACCOUNTS_MAX);
		goto out;
	}
	if (o.name != NULL && name_taken(v, n, o.name)) {
		fprintf(stderr, "yubin account add: there is an account \"%s\" in %s already; "
			"nothing written\n", o.name, f.path);
		goto out;
	}
	if (d.is_default) {
		for (size_t i = 0; i < n; i++) {
			if (v[i].is_default) {
				fprintf(stderr, "yubin account add: account \"%s\" is the default "
					"already (default = yes in %s): take that line out first, "
					"or leave out --default\n", v[i].name, f.path);
				goto out;
			}
		}
	}
	if (o.name != NULL)
		snprintf(d.name, sizeof d.name, "%s", o.name);

	if (interactive) {
		ret = ask_all(&o, &d, v, n, f.path);
		if (ret != 0)
			goto out;
		ret = 1;
	} else {
		if (o.name == NULL) {
			default_name(d.address, d.name, sizeof d.name);
			if (name_taken(v, n, d.name)) {
				fprintf(stderr, "yubin account add: there is an account \"%s\" "
					"in %s already: give another NAME\n", d.name, f.path);
				goto out;
			}
		}
		if (take_guesses(&o, &d) != 0)
			goto out;
	}

	/* The whole new text must parse, the new account last and as meant. */
	size_t len = 0;
	char *text = compose(&f, &d, &len);
	if (text == NULL) {
		fprintf(stderr, "yubin account add: %s would be larger than %d bytes\n", f.path,
			ACCOUNTS_FILE_MAX);
		goto out;
	}
	struct account *nv = NULL;
	size_t nn = 0;
	if (accounts_parse(text, len, f.path, &nv, &nn, err, sizeof err) < 0) {
		fprintf(stderr, "yubin account add: the new account does not fit: %s; nothing "
			"written\n", err);
		free(text);
		goto out;
	}
	const struct account *a = nn == n + 1 ? &nv[nn - 1] : NULL;
	if (a == NULL || strcmp(a->name, d.name) != 0 || strcmp(a->address, d.address) != 0 ||
	    strcmp(a->display_name, d.display) != 0 ||
	    strcmp(a->password_cmd, d.password_cmd) != 0) {
		fprintf(stderr, "yubin account add: the new account reads back differently; "
			"nothing written\n");
		free(nv);
		free(text);
		goto out;
	}
	char smtp_desc[400];
	describe_smtp(a->smtp_host, a->smtp_port, a->smtp_tls, smtp_desc, sizeof smtp_desc);
	const struct account *def = account_find(nv, nn, NULL);
	bool no_default = def == NULL;
	free(nv);
	if (write_atomic(&f, text, len) < 0) {
		free(text);
		goto out;
	}
	free(text);
	printf("added account \"%s\" to %s: submission %s, incoming %s%s\n", d.name, f.path,
	       smtp_desc, d.incoming[0] ? d.incoming : "(none)",
	       d.password_cmd[0] ? "" : "; the password will be asked each time");
	if (no_default)
		fprintf(stderr, "yubin account add: note: %zu accounts and none is the default: "
			"commands now need --account NAME (or set default = yes in one)\n", nn);
	ret = 0;
out:
	conf_file_free(&f);
	free(v);
	return ret;
}

/* ---- account list ---- */

static void incoming_text(const struct account *a, char *out, size_t outsz)
{
	if (a->in_proto == IN_NONE) {
		snprintf(out, outsz, "(none)");
		return;
	}
	bool imap = a->in_proto == IN_IMAP;
	bool tls = a->in_tls == TLS_IMPLICIT;
	int defport = imap ? (tls ? 993 : 143) : (tls ? 995 : 110);
	char host[300];
	if (strchr(a->in_host, ':') != NULL)
		snprintf(host, sizeof host, "[%s]", a->in_host);
	else
		snprintf(host, sizeof host, "%s", a->in_host);
	if (a->in_port == defport)
		snprintf(out, outsz, "%s%s://%s%s", imap ? "imap" : "pop3", tls ? "s" : "", host,
			 a->in_tls == TLS_NONE ? " (no TLS)" : "");
	else
		snprintf(out, outsz, "%s%s://%s:%d%s", imap ? "imap" : "pop3", tls ? "s" : "",
			 host, a->in_port, a->in_tls == TLS_NONE ? " (no TLS)" : "");
}

static json_t *jstr(const char *s)
{
	json_t *j = json_string(s);
	return j != NULL ? j : json_null();
}

static json_t *account_json(const struct account *a, bool is_default)
{
	json_t *o = json_object();
	json_object_set_new(o, "name", jstr(a->name));
	json_object_set_new(o, "default", json_boolean(is_default));
	json_object_set_new(o, "display_name", jstr(a->display_name));
	json_object_set_new(o, "address", jstr(a->address));
	json_t *s = json_object();
	json_object_set_new(s, "host", jstr(a->smtp_host));
	json_object_set_new(s, "port", json_integer(a->smtp_port));
	json_object_set_new(s, "tls", jstr(tls_word(a->smtp_tls)));
	json_object_set_new(s, "user", jstr(a->smtp_user));
	json_object_set_new(o, "smtp", s);
	if (a->in_proto == IN_NONE) {
		json_object_set_new(o, "incoming", json_null());
	} else {
		char url[700];
		incoming_text(a, url, sizeof url);
		json_t *in = json_object();
		json_object_set_new(in, "url", jstr(url));
		const char *proto = a->in_proto == IN_IMAP ? "imap" : "pop3";
		json_object_set_new(in, "protocol", jstr(proto));
		json_object_set_new(in, "host", jstr(a->in_host));
		json_object_set_new(in, "port", json_integer(a->in_port));
		json_object_set_new(in, "tls", jstr(tls_word(a->in_tls)));
		json_object_set_new(in, "user", jstr(a->in_user));
		json_object_set_new(o, "incoming", in);
	}
	json_object_set_new(o, "password_cmd", jstr(a->password_cmd));
	json_object_set_new(o, "cafile", jstr(a->cafile));
	json_object_set_new(o, "maildir", jstr(a->maildir));
	return o;
}

static int account_list(int argc, char **argv)
{
	bool json = false;
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--json") == 0) {
			json = true;
		} else if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
			fputs(list_usage, stdout);
			return 0;
		} else {
			fprintf(stderr, "yubin account list: unexpected %s\n%s", argv[i],
				list_usage);
			return 2;
		}
	}
	char path[PATH_SIZE], err[700];
	if (accounts_path(path, sizeof path) < 0) {
		fprintf(stderr, "yubin account list: no home directory: set HOME or "
			"XDG_CONFIG_HOME\n");
		return 1;
	}
	struct account *v = NULL;
	size_t n = 0;
	if (accounts_load(path, &v, &n, err, sizeof err) < 0) {
		fprintf(stderr, "yubin account list: %s\n", err);
		return 1;
	}
	const struct account *def = account_find(v, n, NULL);
	int ret = 0;
	if (json) {
		json_t *arr = json_array();
		for (size_t i = 0; i < n; i++)
			json_array_append_new(arr, account_json(&v[i], &v[i] == def));
		if (json_dumpf(arr, stdout, JSON_COMPACT) < 0 || putchar('\n') == EOF)
			ret = 1;
		json_decref(arr);
	} else if (n == 0) {
		fprintf(stderr, "no accounts in %s (yubin account add makes one)\n", path);
	} else {
		for (size_t i = 0; i < n; i++) {
			char smtp[400], in[700];
			describe_smtp(v[i].smtp_host, v[i].smtp_port, v[i].smtp_tls, smtp,
				      sizeof smtp);
			incoming_text(&v[i], in, sizeof in);
			printf("%c %-16s %-28s submission %s, incoming %s\n",
			       &v[i] == def ? '*' : ' ', v[i].name, v[i].address, smtp, in);
		}
	}
	free(v);
	return ret;
}

int client_account_cmd(int argc, char **argv)
{
	if (argc < 2) {
		fputs(account_usage, stderr);
		return 2;
	}
	if (strcmp(argv[1], "add") == 0)
		return account_add(argc - 1, argv + 1);
	if (strcmp(argv[1], "list") == 0)
		return account_list(argc - 1, argv + 1);
	if (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0) {
		fputs(account_usage, stdout);
		return 0;
	}
	fprintf(stderr, "yubin account: unknown command \"%s\"\n%s", argv[1], account_usage);
	return 2;
}
