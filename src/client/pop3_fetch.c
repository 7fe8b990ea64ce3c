/* pop3_fetch.c - fetch mail from a POP3 server into a Maildir.  See
 * pop3_fetch.h.  A straight line of commands and replies over net.h, as
 * smtp_submit.c. */
#include "client/pop3_fetch.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "client/maildir.h"
#include "client/net.h"
#include "auth/auth.h"
#include "core/buf.h"
#include "core/util.h"

/* A server reply as quoted in an error. */
#define QUOTE_MAX 600
/* A command line without CR LF. */
#define CMD_MAX 1400
/* Messages in one mailbox we handle. */
#define MSGS_MAX 1000000
/* Largest state file read. */
#define STATE_MAX (64u * 1024 * 1024)

struct msg {
	unsigned long num;
	char uidl[POP3_FETCH_UIDL_MAX + 1];
};

struct fetch {
	const struct pop3_fetch_opts *o;
	struct net *n;
	struct net_tls *tls;
	unsigned tmo;
	char line[NET_LINE_MAX + 1];
	size_t len;
	char timestamp[NET_LINE_MAX + 1];
	bool cap_stls, cap_uidl;
	bool temp;                  /* the failure was the network's: may work later */
	char **seen;                /* sorted UIDLs of the state file */
	size_t nseen;
	int state_fd;
	char *err;
	size_t errsz;
};

static int fail(struct fetch *f, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static int fail(struct fetch *f, const char *fmt, ...)
{
	va_list ap;

	if (f->errsz == 0)
		return -1;
	va_start(ap, fmt);
	vsnprintf(f->err, f->errsz, fmt, ap);
	va_end(ap);
	return -1;
}

static int fail_ctx(struct fetch *f, const char *ctx)
{
	return net_err_context(f->err, f->errsz, ctx);
}

static void trace(struct fetch *f, const char *prefix, const char *text, size_t len)
{
	net_trace(f->o->trace, prefix, text, len);
}

/* One command (CR LF added); shown is what the trace shows (NULL: the
 * line). */
static int send_cmd(struct fetch *f, const char *shown, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static int send_cmd(struct fetch *f, const char *shown, const char *fmt, ...)
{
	char line[CMD_MAX + 3];
	va_list ap;

	va_start(ap, fmt);
	int k = vsnprintf(line, sizeof line - 2, fmt, ap);
	va_end(ap);
	if (k < 0 || (size_t)k >= sizeof line - 2)
		return fail(f, "internal error: command too long");
	if (shown)
		trace(f, "C: ", shown, strlen(shown));
	else
		trace(f, "C: ", line, (size_t)k);
	memcpy(line + k, "\r\n", 2);
	int r = net_write(f->n, line, (size_t)k + 2, f->tmo, f->err, f->errsz);
	explicit_bzero(line, sizeof line);
	f->temp |= r < 0;
	return r;
}

static int read_line(struct fetch *f, const char *ctx)
{
	if (net_read_line(f->n, f->line, &f->len, f->tmo, f->err, f->errsz) < 0) {
		f->temp = true;     /* the connection, not the server's answer */
		return fail_ctx(f, ctx);
	}
	return 0;
}

/* A status line: 1 for +OK, 0 for -ERR, -1 error (also for anything else). */
static int status(struct fetch *f, const char *ctx)
{
	if (read_line(f, ctx) < 0)
		return -1;
	trace(f, "S: ", f->line, f->len);
	if (strncmp(f->line, "+OK", 3) == 0 && (f->line[3] == '\0' || f->line[3] == ' '))
		return 1;
	if (strncmp(f->line, "-ERR", 4) == 0 && (f->line[4] == '\0' || f->line[4] == ' '))
		return 0;
	return fail(f, "%s sent a malformed reply: \"%.200s\" (%s)", net_name(f->n), f->line, ctx);
}

/* "<what> refused: server said: -ERR ..." from the last line. */
static int refused(struct fetch *f, const char *what)
{
	char q[QUOTE_MAX];

	snprintf(q, sizeof q, "%.*s", (int)(sizeof q - 1), f->line);
	for (char *p = q; *p; p++)
		if ((unsigned char)*p < 0x20 || *p == 0x7f)
			*p = '?';
	return fail(f, "%s refused: server said: %s", what, q);
}

/* A command that must get +OK. */
static int ok_cmd(struct fetch *f, const char *what, const char *shown, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

static int ok_cmd(struct fetch *f, const char *what, const char *shown, const char *fmt, ...)
{
	char line[CMD_MAX + 1];
	va_list ap;

	va_start(ap, fmt);
	int k = vsnprintf(line, sizeof line, fmt, ap);
	va_end(ap);
	if (k < 0 || (size_t)k >= sizeof line)
		return fail(f, "internal error: command too long");
	int r = send_cmd(f, shown, "%s", line);
	explicit_bzero(line, sizeof line);
	if (r < 0)
		return fail_ctx(f, what);
	r = status(f, what);
	if (r < 0)
		return -1;
	if (r == 0)
		return refused(f, what);
	return 0;
}

/* One line of a multi-line response: 1 a line (unstuffed, in f->line and
 * f->len, or its start at *p), 0 the final ".", -1 error. */
static int multi_line(struct fetch *f, const char *ctx, const char **p, size_t *len)
{
	if (read_line(f, ctx) < 0)
		return -1;
	if (f->len == 1 && f->line[0] == '.')
		return 0;
	*p = f->line;
	*len = f->len;
	if (f->line[0] == '.') {
		(*p)++;
		(*len)--;
	}
	return 1;
}

/* ---- CAPA ---- */

static int capa(struct fetch *f)
{
	f->cap_stls = f->cap_uidl = false;
	if (send_cmd(f, NULL, "CAPA") < 0)
		return fail_ctx(f, "CAPA");
	int r = status(f, "CAPA");
	if (r <= 0)
		return r;          /* -ERR: no capabilities known (RFC 1939 server) */
	const char *p;
	size_t len;
	while ((r = multi_line(f, "CAPA", &p, &len)) == 1) {
		trace(f, "S: ", p, len);
		size_t w = strcspn(p, " ");
		if (w == 4 && strncasecmp(p, "STLS", 4) == 0)
			f->cap_stls = true;
		else if (w == 4 && strncasecmp(p, "UIDL", 4) == 0)
			f->cap_uidl = true;
	}
	return r;
}

/* ---- state file ---- */

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static bool seen(const struct fetch *f, const char *uidl)
{
	const char *k = uidl;
	return f->nseen > 0 && bsearch(&k, f->seen, f->nseen, sizeof *f->seen, cmp_str) != NULL;
}

static int state_open(struct fetch *f, const char *path)
{
	f->state_fd = open(path, O_RDWR | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
	if (f->state_fd < 0)
		return fail(f, "state file %s: %s", path, strerror(errno));
	struct buf b;
	buf_init(&b, STATE_MAX);
	char tmp[65536];
	for (;;) {
		ssize_t k = pread(f->state_fd, tmp, sizeof tmp, (off_t)b.len);
		if (k < 0 && errno == EINTR)
			continue;
		if (k < 0) {
			buf_free(&b);
			return fail(f, "read %s: %s", path, strerror(errno));
		}
		if (k == 0)
			break;
		if (buf_append(&b, tmp, (size_t)k) < 0) {
			buf_free(&b);
			return fail(f, "state file %s is larger than %u MiB", path,
				    STATE_MAX / (1024 * 1024));
		}
	}
	size_t cap = 0;
	const char *s = b.data, *end = b.data + b.len;
	while (s && s < end) {
		const char *nl = memchr(s, '\n', (size_t)(end - s));
		const char *e = nl ? nl : end;
		size_t l = (size_t)(e - s);
		if (l > 0 && s[l - 1] == '\r')
			l--;
		/* A line cut by a crash mid-write is a UIDL that matches nothing
		 * (or, at worst, a shorter one: UIDLs are opaque, so only whole
		 * lines that a newline ended count). */
		if (l > 0 && l <= POP3_FETCH_UIDL_MAX && nl) {
			if (f->nseen == cap) {
				cap = cap ? 2 * cap : 64;
				f->seen = realloc(f->seen, cap * sizeof *f->seen);
				if (!f->seen)
					abort();
			}
			f->seen[f->nseen++] = xstrndup(s, l);
		}
		s = e + 1;
	}
	/* A last line without its newline (a crash): end it, so the next
	 * record starts on a line of its own. */
	bool torn = b.len > 0 && b.data[b.len - 1] != '\n';
	buf_free(&b);
	if (torn && write(f->state_fd, "\n", 1) != 1)
		return fail(f, "write %s: %s", path, strerror(errno));
	if (f->nseen > 1)
		qsort(f->seen, f->nseen, sizeof *f->seen, cmp_str);
	return 0;
}

static int state_record(struct fetch *f, const char *path, const char *uidl)
{
	char line[POP3_FETCH_UIDL_MAX + 2];
	int k = snprintf(line, sizeof line, "%s\n", uidl);
	ssize_t w;

	do
		w = write(f->state_fd, line, (size_t)k);
	while (w < 0 && errno == EINTR);
	if (w != k)
		return fail(f, "write %s: %s", path, w < 0 ? strerror(errno) : "short write");
	if (fsync(f->state_fd) < 0)
		return fail(f, "fsync %s: %s", path, strerror(errno));
	return 0;
}

/* ---- the message list ---- */

/* Rewrite the state file with the UIDLs v[i] with kept[i]: temp file,
 * fsync, rename, fsync of the directory.  A failure leaves the old file
 * (longer, still right). */
static int state_prune(struct fetch *f, const char *path, const struct msg *v, const bool *kept,
		       size_t n)
{
	char tmp[PATH_MAX + 8];
	if ((size_t)snprintf(tmp, sizeof tmp, "%s.tmp", path) >= sizeof tmp)
		return fail(f, "state file path too long");
	int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0)
		return fail(f, "state file %s: %s", tmp, strerror(errno));
	struct buf b;
	buf_init(&b, SIZE_MAX);
	for (size_t i = 0; i < n; i++)
		if (kept[i]) {
			buf_append(&b, v[i].uidl, strlen(v[i].uidl));
			buf_append(&b, "\n", 1);
		}
	bool ok = true;
	for (size_t off = 0; ok && off < b.len;) {
		ssize_t w = write(fd, b.data + off, b.len - off);
		if (w < 0 && errno == EINTR)
			continue;
		ok = w > 0;
		off += ok ? (size_t)w : 0;
	}
	buf_free(&b);
	ok = ok && fsync(fd) == 0;
	int e = errno;
	close(fd);
	if (!ok || rename(tmp, path) < 0) {
		e = ok ? errno : e;
		unlink(tmp);
		return fail(f, "state file %s: %s", path, strerror(e));
	}
	char dir[PATH_MAX];
	snprintf(dir, sizeof dir, "%s", path);
	char *slash = strrchr(dir, '/');
	if (slash) {
		*slash = '\0';
		int dfd = open(dir[0] ? dir : "/", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (dfd >= 0) {
			(void)fsync(dfd);
			close(dfd);
		}
	}
	return 0;
}

static bool uidl_ok(const char *u, size_t l)
{
	if (l == 0 || l > POP3_FETCH_UIDL_MAX)
		return false;
	for (size_t i = 0; i < l; i++)
		if ((unsigned char)u[i] < 0x21 || (unsigned char)u[i] > 0x7e)
			return false;
	return true;
}

/* UIDL (with uidl) or LIST (without): the messages, in *v_r / *n_r. */
static int list_msgs(struct fetch *f, bool uidl, struct msg **v_r, size_t *n_r)
{
	const char *what = uidl ? "UIDL" : "LIST";
	struct msg *v = NULL;
	size_t n = 0, cap = 0;
	int r;

	if (ok_cmd(f, what, NULL, "%s", what) < 0)
		return -1;
	const char *p;
	size_t len;
	while ((r = multi_line(f, what, &p, &len)) == 1) {
		trace(f, "S: ", p, len);
		char *e;
		errno = 0;
		unsigned long num = strtoul(p, &e, 10);
		if (e == p || *e != ' ' || num == 0 || errno != 0) {
			r = fail(f, "%s sent a malformed %s line: \"%.100s\"", net_name(f->n), what, p);
			break;
		}
		while (*e == ' ')
			e++;
		size_t ul = strcspn(e, " ");
		if (uidl && !uidl_ok(e, ul)) {
			r = fail(f, "%s sent a malformed UIDL line: \"%.100s\"", net_name(f->n), p);
			break;
		}
		if (n == MSGS_MAX) {
			r = fail(f, "more than %d messages on the server", MSGS_MAX);
			break;
		}
		if (n == cap) {
			cap = cap ? 2 * cap : 64;
			v = realloc(v, cap * sizeof *v);
			if (!v)
				abort();
		}
		v[n].num = num;
		snprintf(v[n].uidl, sizeof v[n].uidl, "%.*s", uidl ? (int)ul : 0, e);
		n++;
	}
	if (r < 0) {
		free(v);
		return -1;
	}
	*v_r = v;
	*n_r = n;
	return 0;
}

/* RETR num into b (LF line ends).  1 read, 0 too large (drained; left on
 * the server), -1 error. */
static int retr(struct fetch *f, unsigned long num, struct buf *b)
{
	char what[64];
	snprintf(what, sizeof what, "RETR %lu", num);
	if (ok_cmd(f, what, NULL, "RETR %lu", num) < 0)
		return -1;
	bool big = false;
	int r;
	/* Message lines may be long (base64 without breaks, one-line HTML):
	 * up to POP3_FETCH_LINE_MAX, not the status lines' NET_LINE_MAX. */
	struct buf lb;
	buf_init(&lb, POP3_FETCH_LINE_MAX + 2);
	for (;;) {
		if (net_read_line_buf(f->n, &lb, POP3_FETCH_LINE_MAX, f->tmo, f->err, f->errsz) < 0) {
			f->temp = !strstr(f->err, "longer than");
			r = fail_ctx(f, what);
			break;
		}
		if (lb.len == 1 && lb.data[0] == '.') {
			r = 0;
			break;
		}
		const char *p = lb.data ? lb.data : "";
		size_t len = lb.len;
		if (len > 0 && p[0] == '.') {
			p++;
			len--;
		}
		if (big)
			continue;
		if (b->len + len + 1 > POP3_FETCH_MSG_MAX || buf_append(b, p, len) < 0 ||
		    buf_append(b, "\n", 1) < 0)
			big = true;
	}
	buf_free(&lb);
	if (r < 0)
		return -1;
	trace(f, "S: ", big ? "<message too large, dropped>" : "<message>", big ? 28 : 9);
	return big ? 0 : 1;
}

/* ---- login ---- */

static void find_timestamp(struct fetch *f)
{
	f->timestamp[0] = '\0';
	const char *a = strchr(f->line, '<');
	const char *z = a ? strchr(a, '>') : NULL;
	if (!a || !z || z - a < 2)
		return;
	for (const char *p = a; p <= z; p++)
		if ((unsigned char)*p <= ' ' || *p == 0x7f)
			return;
	snprintf(f->timestamp, sizeof f->timestamp, "%.*s", (int)(z - a + 1), a);
}


static bool arg_ok(const char *s)
{
	if (!*s)
		return false;
	for (; *s; s++)
		if ((unsigned char)*s < 0x20 || *s == 0x7f)
			return false;
	return true;
}

static int login(struct fetch *f)
{
	const struct pop3_fetch_opts *o = f->o;

	if (o->tls == POP3_FETCH_NONE && !net_is_tls(f->n) && f->timestamp[0] &&
	    !strchr(o->user, ' ')) {
		char d[33];
		if (auth_apop_digest(f->timestamp, o->password, d) < 0)
			return fail(f, "APOP: MD5 failed");
		char shown[CMD_MAX];
		snprintf(shown, sizeof shown, "APOP %s <redacted>", o->user);
		int r = ok_cmd(f, "APOP", shown, "APOP %s %s", o->user, d);
		explicit_bzero(d, sizeof d);
		return r;
	}
	if (ok_cmd(f, "USER", NULL, "USER %s", o->user) < 0)
		return -1;
	return ok_cmd(f, "PASS", "PASS <redacted>", "PASS %s", o->password);
}

/* ---- the session ---- */

static int session(struct fetch *f, const char *state_path, size_t *fetched)
{
	const struct pop3_fetch_opts *o = f->o;
	char port[16];
	unsigned pn = o->port ? o->port : o->tls == POP3_FETCH_TLS ? 995 : 110;

	snprintf(port, sizeof port, "%u", pn);
	if (o->tls != POP3_FETCH_NONE) {
		struct net_tls_opts to = {.cafile = o->cafile, .pin = o->pin};
		if (!(f->tls = net_tls_new(&to, f->err, f->errsz)))
			return -1;
	}
	if (!(f->n = net_connect(o->host, port, f->tmo, f->err, f->errsz))) {
		f->temp = true;
		return -1;
	}
	if (o->tls == POP3_FETCH_TLS &&
	    net_start_tls(f->n, f->tls, o->host, f->tmo, f->err, f->errsz) < 0)
		return -1;
	int r = status(f, "waiting for the greeting");
	if (r < 0)
		return -1;
	if (r == 0)
		return refused(f, "connection");
	find_timestamp(f);
	if (capa(f) < 0)
		return -1;
	if (o->tls == POP3_FETCH_STARTTLS) {
		if (!f->cap_stls)
			return fail(f, "%s does not offer STLS; not sending the password in clear "
				    "(use --tls tls for pop3s, or --tls none)", net_name(f->n));
		if (ok_cmd(f, "STLS", NULL, "STLS") < 0)
			return -1;
		if (net_start_tls(f->n, f->tls, o->host, f->tmo, f->err, f->errsz) < 0)
			return -1;
		/* RFC 2595 4: what was said before TLS is forgotten. */
		if (capa(f) < 0)
			return -1;
	}
	if (login(f) < 0)
		return -1;
	/* Some servers announce UIDL only after login. */
	if (!f->cap_uidl && capa(f) < 0)
		return -1;

	struct msg *v = NULL;
	size_t n = 0;
	bool have_uidl = f->cap_uidl;
	if (have_uidl) {
		r = list_msgs(f, true, &v, &n);
		/* CAPA said UIDL but the command fails: treat as absent. */
		if (r < 0 && strstr(f->err, "UIDL refused") == NULL)
			return -1;
		have_uidl = r == 0;
	} else {
		/* No CAPA UIDL: try it anyway (RFC 1939 servers without CAPA). */
		r = list_msgs(f, true, &v, &n);
		if (r < 0 && strstr(f->err, "UIDL refused") == NULL)
			return -1;
		have_uidl = r == 0;
	}
	if (!have_uidl) {
		if (o->keep)
			fprintf(stderr, "yubin fetch: warning: %s has no UIDL: every message is "
				"fetched again each time with --keep\n", net_name(f->n));
		if (list_msgs(f, false, &v, &n) < 0)
			return -1;
	}

	int ret = 0;
	struct buf b;
	buf_init(&b, POP3_FETCH_MSG_MAX);
	/* what stays in the state file: delivered and still on the server */
	bool *kept = xcalloc(n ? n : 1, sizeof *kept);
	for (size_t i = 0; i < n; i++) {
		if (have_uidl && seen(f, v[i].uidl)) {
			kept[i] = o->keep;
			if (!o->keep && ok_cmd(f, "DELE", NULL, "DELE %lu", v[i].num) < 0) {
				kept[i] = true;
				ret = -1;
				break;
			}
			continue;
		}
		b.len = 0;
		r = retr(f, v[i].num, &b);
		if (r < 0) {
			ret = -1;
			break;
		}
		if (r == 0) {
			fail(f, "message %lu is larger than %u MiB; left on the server", v[i].num,
			     POP3_FETCH_MSG_MAX / (1024 * 1024));
			ret = -2;
			break;
		}
		char name[MAILDIR_NAME_MAX];
		if (maildir_deliver(o->maildir, b.data ? b.data : "", b.len, name, sizeof name,
				    f->err, f->errsz) < 0) {
			ret = -2;
			break;
		}
		(*fetched)++;
		if (have_uidl && state_record(f, state_path, v[i].uidl) < 0) {
			ret = -2;
			break;
		}
		kept[i] = o->keep;
		if (!o->keep && ok_cmd(f, "DELE", NULL, "DELE %lu", v[i].num) < 0) {
			kept[i] = true;
			ret = -1;
			break;
		}
	}
	buf_free(&b);
	if (ret == -1) {
		free(v);
		free(kept);
		return -1;
	}
	/* QUIT commits the DELEs so far, also after a local error (-2): what
	 * was delivered and recorded is safe to remove. */
	char saved[1024] = "";
	if (ret == -2)
		snprintf(saved, sizeof saved, "%s", f->err);
	if (ok_cmd(f, "QUIT", NULL, "QUIT") < 0) {
		free(v);
		free(kept);
		return -1;
	}
	/* The session is over and committed: the state file keeps only what
	 * the server still has (a UIDL the server no longer lists can never
	 * come again), so it does not grow with every message ever fetched. */
	if (ret == 0 && have_uidl)
		ret = state_prune(f, state_path, v, kept, n);
	free(v);
	free(kept);
	if (ret == -2)
		return fail(f, "%s", saved);
	return ret;
}

int pop3_fetch(const struct pop3_fetch_opts *o, char *err, size_t errsz)
{
	struct fetch f = {.o = o, .err = err, .errsz = errsz, .state_fd = -1};
	size_t fetched = 0;
	char state_path[PATH_MAX];
	int ret = -1;

	if (errsz > 0)
		err[0] = '\0';
	f.tmo = (o->timeout ? o->timeout : POP3_FETCH_TIMEOUT) * 1000u;
	if (!o->host || !*o->host || !o->user || !o->password || !o->maildir || !*o->maildir) {
		fail(&f, "internal error: host, user, password and maildir are required");
		goto out;
	}
	if (!arg_ok(o->user) || !arg_ok(o->password)) {
		fail(&f, "the user name and the password must be non-empty without control "
		     "characters");
		goto out;
	}
	if (maildir_create(o->maildir) < 0) {
		fail(&f, "Maildir %s: %s", o->maildir, strerror(errno));
		goto out;
	}
	if ((size_t)snprintf(state_path, sizeof state_path, "%s",
			     o->state_path ? o->state_path : "") >= sizeof state_path ||
	    (!o->state_path && (size_t)snprintf(state_path, sizeof state_path, "%s/.yubin-uidl",
						o->maildir) >= sizeof state_path)) {
		fail(&f, "state file path too long");
		goto out;
	}
	if (state_open(&f, state_path) < 0)
		goto out;
	ret = session(&f, state_path, &fetched);
out:
	if (o->fetched_r)
		*o->fetched_r = fetched;
	if (o->temp_r)
		*o->temp_r = ret < 0 && f.temp;
	net_close(&f.n);
	net_tls_free(&f.tls);
	if (f.state_fd >= 0)
		close(f.state_fd);
	for (size_t i = 0; i < f.nseen; i++)
		free(f.seen[i]);
	free(f.seen);
	return ret;
}
