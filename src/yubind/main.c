/* yubind - the Yubin mail daemon: every protocol in one event loop.
 *
 * Start-up order matters: read the config, load TLS keys and bind ports
 * while still root, then drop to the configured user before the store is
 * opened, so every file the daemon creates belongs to that user. */
#include <errno.h>
#include <getopt.h>
#include <grp.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <uv.h>

#include "auth/auth.h"
#include "core/conf.h"
#include "core/conn.h"
#include "core/http.h"
#include "core/listener.h"
#include "core/log.h"
#include "core/tls.h"
#include "core/util.h"
#include "mta/mta.h"
#include "proto/imap/imap_cache.h"
#include "proto/imap/imap_session.h"
#include "proto/jmap/jmap_session.h"
#include "proto/jmap/jmap_threader.h"
#include "proto/pop3/pop3_session.h"
#include "proto/server.h"
#include "proto/smtp/smtp_session.h"
#include "proto/web/web.h"
#include "store/store.h"
#include "store/writer.h"

#define MAX_LISTENERS 32

static struct {
	uv_loop_t *loop;
	struct conf cfg;
	struct server srv;
	struct conn_registry reg;
	struct listener *listeners[MAX_LISTENERS];
	size_t nlisteners;
	uv_signal_t sigterm, sigint, sigusr1;
	uv_timer_t grace;
	bool grace_cut;             /* the grace period ran out: connections were cut */
	bool forced;                /* and still not done: exit without them */
	bool stopping;
	bool store_stopped;
	bool conns_gone, mta_done;
	/* HTTP (JMAP): NULL without listen_https / listen_http */
	struct http_server *http;
	struct jmap *jmap;
	struct jmap_threader *threader;
	struct web *web;            /* the webmail page: every path but JMAP's */
	bool http_done;
	struct mta *mta;
} d;

static void usage(FILE *out)
{
	fprintf(out,
		"usage: yubind [-c FILE] [--check] [--print-config]\n"
		"\n"
		"Runs the Yubin mail daemon in the foreground, logging to stderr.\n"
		"\n"
		"  -c, --config FILE   configuration file (default: $YUBIN_CONF or\n"
		"                      /etc/yubin/yubin.conf)\n"
		"      --check         validate the configuration (and TLS files) and exit\n"
		"      --print-config  print every setting with its effective value and exit\n"
		"  -V, --version       print the version and exit\n"
		"  -h, --help          this text\n"
		"\n"
		"SIGTERM or SIGINT: stop accepting, let transactions in flight finish\n"
		"(up to shutdown_timeout), then exit.\n");
}

static void stop_store(void)
{
	if (d.store_stopped)
		return;
	d.store_stopped = true;
	d.srv.queue_kick = NULL;
	d.srv.report_delivered = NULL;
	d.srv.mta = NULL;
	mta_free(&d.mta);           /* stopped by now: closes the resolver */
	store_writer_stop(&d.srv.writer);
	uv_close((uv_handle_t *)&d.grace, NULL);
	uv_close((uv_handle_t *)&d.sigterm, NULL);
	uv_close((uv_handle_t *)&d.sigint, NULL);
	uv_close((uv_handle_t *)&d.sigusr1, NULL);
}

/* The store stops after the last client connection and the queue
 * manager (whose last outcomes are store writes) are done. */
static void maybe_stop_store(void)
{
	if (d.conns_gone && d.mta_done && d.http_done)
		stop_store();
}

static void on_empty(struct conn_registry *reg)
{
	(void)reg;
	if (d.stopping) {
		d.conns_gone = true;
		maybe_stop_store();
	}
}

static void on_http_stopped(void *arg)
{
	(void)arg;
	d.http_done = true;
	maybe_stop_store();
}

static void on_mta_stopped(void *arg)
{
	(void)arg;
	d.mta_done = true;
	maybe_stop_store();
}

static void queue_kick(struct server *srv)
{
	mta_kick(srv->mta);
}

static void report_delivered(struct server *srv, const struct delivered_report *r)
{
	mta_report_delivered(srv->mta, r);
}

/* After the grace period's cut, what still has not finished gets this
 * long before yubind gives up on it and exits anyway. */
#define SHUTDOWN_LAST_MS 5000

static void grace_cb(uv_timer_t *t)
{
	if (d.grace_cut && d.conns_gone && d.mta_done && d.http && !d.http_done &&
	    http_server_idle(d.http) && !jmap_threader_busy(d.threader)) {
		/* h2o can keep the state of an HTTP/2 client that closed while an
		 * answer was being written, with nothing left to wait for: no
		 * request, no job, nothing to write to the store */
		log_warn("shutdown: %zu HTTP connection(s) of clients that have gone are "
			 "still held by the HTTP library with no request in flight; stopping "
			 "without them", http_server_count(d.http));
		log_notice("stopped");
		fflush(NULL);
		_exit(0);
	}
	if (d.grace_cut) {
		log_error("shutdown: still not done %d ms after cutting every connection "
			  "(connections %s, queue manager %s, http %s); exiting without "
			  "waiting for them: the store's last commits are durable, nothing "
			  "else is written", SHUTDOWN_LAST_MS, d.conns_gone ? "done" : "open",
			  d.mta_done ? "done" : "open", d.http_done ? "done" : "open");
		d.forced = true;
		uv_stop(t->loop);
		return;
	}
	d.grace_cut = true;
	uv_timer_start(t, grace_cb, SHUTDOWN_LAST_MS, 0);
	char mta[160] = "done";
	if (d.mta && !d.mta_done)
		mta_busy(d.mta, mta, sizeof mta);
	log_warn("shutdown: %zu connection(s) still busy after shutdown_timeout; cutting them "
		 "(connections %s, queue manager %s, http %s)",
		 d.reg.count + http_server_count(d.http), d.conns_gone ? "done" : "open", mta,
		 d.http_done ? "done" : "open");
	registry_close_all(&d.reg, "shutdown timeout");
	if (d.http && !d.http_done)
		http_server_cut(d.http);
	if (d.mta && !d.mta_done)
		mta_cut(d.mta);
}

static void on_signal(uv_signal_t *s, int signum)
{
	(void)s;
	if (d.stopping)
		return;
	d.stopping = true;
	d.srv.shutting_down = true;
	log_notice("shutdown: signal %d received; closing %zu listener(s), %zu connection(s) open",
		 signum, d.nlisteners, d.reg.count + http_server_count(d.http));
	for (size_t i = 0; i < d.nlisteners; i++)
		listener_close(d.listeners[i]);
	d.nlisteners = 0;
	uv_timer_start(&d.grace, grace_cb, (uint64_t)d.cfg.shutdown_timeout, 0);
	if (d.mta)
		mta_shutdown(d.mta, on_mta_stopped, NULL);
	else
		d.mta_done = true;
	if (d.http) {
		jmap_shutdown(d.jmap);
		jmap_threader_shutdown(d.threader);
		web_shutdown(d.web);
		http_server_shutdown(d.http, on_http_stopped, NULL);
	} else {
		d.http_done = true;
	}
	registry_shutdown(&d.reg);
}

/* SIGUSR1: yubin queue flush/retry/release ask for a queue run. */
static void on_usr1(uv_signal_t *s, int signum)
{
	(void)s;
	(void)signum;
	if (!d.stopping && d.mta) {
		log_info("queue: run requested (SIGUSR1)");
		mta_kick(d.mta);
	}
}

/* One handler for HTTP: JMAP's resources to jmap, the rest to the page. */
static void http_route(struct http_request *r, void *arg)
{
	(void)arg;
	if (strncmp(r->path, "/jmap/", 6) == 0 || strcmp(r->path, "/.well-known/jmap") == 0)
		jmap_on_request(r, d.jmap);
	else
		web_on_request(r, d.web);
}

/* HTTPS and HTTP (JMAP): libh2o on the loop, with a TLS context of its
 * own (h2o sets ALPN on it) made from the same tls_cert and tls_key. */
static void open_http_listeners(void)
{
	const struct conf_listen *ls = &d.cfg.listen_https, *lp = &d.cfg.listen_http;
	char *err = NULL;

	if (ls->count == 0 && lp->count == 0) {
		d.http_done = true;
		return;
	}
	SSL_CTX *tls = NULL;
	if (ls->count > 0) {
		tls = tls_server_ctx(d.cfg.tls_cert, d.cfg.tls_key, &err);
		if (tls == NULL)
			log_fatal("listen_https: %s", err);
	}
	struct http_limits lim = {
		.max_body = JMAP_MAX_SIZE_REQUEST,
		.handshake_ms = (uint64_t)d.cfg.command_timeout,
		.idle_ms = (uint64_t)d.cfg.command_timeout,
	};
	d.jmap = jmap_new(&d.srv);
	d.threader = jmap_threader_new(&d.srv);
	d.web = web_new(&d.srv);
	jmap_set_cookie_auth(d.jmap, web_cookie_auth, d.web);
	struct http_handler h = {http_route, NULL};
	d.http = http_server_new(d.loop, &d.reg, tls, &lim, &h);
	for (int i = 0; i < ls->count; i++)
		if (http_listen(d.http, "https", ls->addr[i], true, &err) < 0)
			log_fatal("%s (check listen_https in %s)", err, d.cfg.path);
	for (int i = 0; i < lp->count; i++)
		if (http_listen(d.http, "http", lp->addr[i], false, &err) < 0)
			log_fatal("%s (check listen_http in %s)", err, d.cfg.path);
}

static void open_listeners(const char *proto, const struct conf_listen *l,
			   const struct conn_handler *h, bool implicit_tls)
{
	for (int i = 0; i < l->count; i++) {
		struct listener *ln;
		char *err = NULL;
		if (d.nlisteners == MAX_LISTENERS)
			log_fatal("too many listeners (max %d)", MAX_LISTENERS);
		if (listener_open(&d.reg, proto, l->addr[i], h, implicit_tls, &ln, &err) < 0)
			log_fatal("%s (is another mail server running? check listen_%s in %s)", err,
				  proto, d.cfg.path);
		d.listeners[d.nlisteners++] = ln;
	}
}

/* The local submission socket (local_submit_socket).  Its directory is
 * made before privileges are dropped, while still root, for the daemon's
 * user, mode 0755 so that every local user can reach the socket; the
 * socket itself is made after the data directory is locked, as that user
 * (who removes it at stop): a second yubind on the same data directory
 * stops at the lock and never touches the first one's socket.  The
 * default path is best effort -- a yubind not started as root usually
 * cannot make /run/yubin, and goes on without local submission; a path the
 * administrator chose must work. */
static char *local_dir_err;

static void prepare_local_dir(void)
{
	const char *path = d.cfg.local_submit_socket;
	char dir[CONF_SOCKET_PATH_MAX + 1];
	struct stat st;

	if (path[0] == '\0')
		return;
	snprintf(dir, sizeof dir, "%s", path);
	char *slash = strrchr(dir, '/');
	if (slash == dir)
		slash[1] = '\0';
	else
		*slash = '\0';
	if (stat(dir, &st) == 0) {
		if ((st.st_mode & S_IXOTH) == 0)
			log_warn("local_submit_socket: the directory %s is not searchable by "
				 "others (mode %04o): local users other than its owner and group "
				 "cannot submit; chmod o+x %s if they should", dir,
				 (unsigned)(st.st_mode & 07777), dir);
		return;
	}
	if (errno != ENOENT) {
		local_dir_err = xasprintf("its directory %s: %s", dir, strerror(errno));
		return;
	}
	if (mkdir(dir, 0755) < 0) {
		local_dir_err = xasprintf("cannot create its directory %s: %s", dir,
					  strerror(errno));
		return;
	}
	(void)chmod(dir, 0755);     /* whatever the umask */
	struct passwd *pw = geteuid() == 0 && d.cfg.user[0] ? getpwnam(d.cfg.user) : NULL;
	if (pw && chown(dir, pw->pw_uid, pw->pw_gid) < 0)
		local_dir_err = xasprintf("cannot give its directory %s to user %s: %s", dir,
					  d.cfg.user, strerror(errno));
}

static void open_local_listener(void)
{
	const char *path = d.cfg.local_submit_socket;
	bool chosen = strcmp(path, CONF_LOCAL_SUBMIT_SOCKET) != 0;
	char *err = local_dir_err;

	local_dir_err = NULL;
	if (path[0] == '\0')
		return;
	if (d.nlisteners == MAX_LISTENERS)
		log_fatal("too many listeners (max %d)", MAX_LISTENERS);
	struct listener *ln = NULL;
	if (err == NULL && listener_open_local(&d.reg, "local", path, &local_submit_conn_handler,
					       &ln, &err) == 0) {
		d.listeners[d.nlisteners++] = ln;
		return;
	}
	if (chosen)
		log_fatal("local_submit_socket %s: %s (its directory must be writable by the user "
			  "yubind runs as; check local_submit_socket in %s, empty turns local "
			  "submission off)", path, err, d.cfg.path);
	log_warn("local submission is off: the default local_submit_socket %s: %s; yubin "
		 "sendmail on this host then needs an account (set local_submit_socket in %s to "
		 "a path yubind can create, or to empty to silence this)", path, err, d.cfg.path);
	free(err);
}

static void drop_privileges(void)
{
	if (geteuid() != 0)
		return;
	if (d.cfg.user[0] == '\0')
		log_fatal("%s: user: started as root but no unprivileged user is configured; "
			  "set user = (e.g. yubin, created with useradd --system yubin)",
			  d.cfg.path);
	struct passwd *pw = getpwnam(d.cfg.user);
	if (pw == NULL)
		log_fatal("%s: user: no such user \"%s\" (create it with useradd --system %s)",
			  d.cfg.path, d.cfg.user, d.cfg.user);
	if (pw->pw_uid == 0)
		log_fatal("%s: user: \"%s\" is root; pick an unprivileged user", d.cfg.path,
			  d.cfg.user);
	/* The data directory is created here, as root, and given to the user. */
	if (mkdir(d.cfg.data_dir, 0750) == 0) {
		if (chown(d.cfg.data_dir, pw->pw_uid, pw->pw_gid) < 0)
			log_fatal("data_dir %s: chown: %s", d.cfg.data_dir, strerror(errno));
	}
	if (initgroups(pw->pw_name, pw->pw_gid) < 0 || setgid(pw->pw_gid) < 0 ||
	    setuid(pw->pw_uid) < 0)
		log_fatal("cannot switch to user %s: %s", d.cfg.user, strerror(errno));
	if (setuid(0) == 0)
		log_fatal("privileges were not dropped (setuid(0) succeeded)");
	log_notice("running as user=%s uid=%d gid=%d", d.cfg.user, (int)pw->pw_uid, (int)pw->pw_gid);
}

/* Every connection is a descriptor: take the hard limit, and say so when
 * even that is below what max_connections allows. */
static void raise_fd_limit(void)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
		return;
	if (rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		(void)setrlimit(RLIMIT_NOFILE, &rl);
		(void)getrlimit(RLIMIT_NOFILE, &rl);
	}
	if (rl.rlim_cur != RLIM_INFINITY && (int64_t)rl.rlim_cur < d.cfg.max_connections + 64)
		log_warn("open file limit %llu is below max_connections %lld (+64 for files): "
			 "connections past it are refused; raise LimitNOFILE / ulimit -n",
			 (unsigned long long)rl.rlim_cur, (long long)d.cfg.max_connections);
}

/* One daemon per data directory: a second one would take the first one's
 * spare body files for crash leftovers and remove them.  The lock is held
 * (by the open descriptor) until the process exits. */
static int lock_data_dir(void)
{
	char path[4096];

	if (mkdir(d.cfg.data_dir, 0750) < 0 && errno != EEXIST)
		log_fatal("data_dir %s: cannot create it: %s", d.cfg.data_dir, strerror(errno));
	snprintf(path, sizeof path, "%s/yubind.lock", d.cfg.data_dir);
	int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0640);
	if (fd < 0)
		log_fatal("%s: cannot open: %s (check data_dir in %s and its owner)", path,
			  strerror(errno), d.cfg.path);
	if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
		char other[32] = "";
		ssize_t n = pread(fd, other, sizeof other - 1, 0);
		if (n > 0)
			other[strcspn(other, "\n")] = '\0';
		log_fatal("data_dir %s is in use by another yubind (pid %s); one daemon per data "
			  "directory", d.cfg.data_dir, n > 0 ? other : "unknown");
	}
	char pid[32];
	int len = snprintf(pid, sizeof pid, "%d\n", (int)getpid());
	if (ftruncate(fd, 0) < 0 || pwrite(fd, pid, (size_t)len, 0) != len)
		log_warn("%s: cannot write our pid: %s", path, strerror(errno));
	return fd;
}

/* RFC 5321 4.5.1: postmaster@ every local domain must reach someone. */
static void check_postmaster(void)
{
	if (d.cfg.postmaster[0] == '\0') {
		log_warn("postmaster is not set in %s: mail to postmaster@ a local domain is "
			 "refused unless that domain has a postmaster account; set postmaster = "
			 "an administrator's address", d.cfg.path);
		return;
	}
	struct account a;
	int r = store_account_find(d.srv.store, d.cfg.postmaster, &a);
	if (r == 1) {
		account_free(&a);
		return;
	}
	if (r == 0)
		log_warn("postmaster %s (from %s) is not an account here: create it with "
			 "yubin user add %s, or mail to postmaster@ is refused",
			 d.cfg.postmaster, d.cfg.path, d.cfg.postmaster);
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{"config", required_argument, NULL, 'c'},
		{"check", no_argument, NULL, 'k'},
		{"print-config", no_argument, NULL, 'p'},
		{"version", no_argument, NULL, 'V'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	const char *path = getenv("YUBIN_CONF");
	if (path == NULL || *path == '\0')
		path = "/etc/yubin/yubin.conf";
	bool check = false, print = false;
	int o;
	while ((o = getopt_long(argc, argv, "c:Vh", opts, NULL)) != -1) {
		switch (o) {
		case 'c':
			path = optarg;
			break;
		case 'k':
			check = true;
			break;
		case 'p':
			print = true;
			break;
		case 'V':
			printf("yubind %s\n", YUBIN_VERSION);
			return 0;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind != argc) {
		usage(stderr);
		return 2;
	}
	log_init("yubind", LOG_INFO);
	conf_defaults(&d.cfg);
	char *err = NULL;
	if (conf_load(&d.cfg, path, &err) < 0 || conf_check(&d.cfg, &err) < 0) {
		fprintf(stderr, "yubind: %s\n", err);
		free(err);
		conf_free(&d.cfg);
		return 1;
	}
	if (print) {
		conf_print(&d.cfg, stdout);
		conf_free(&d.cfg);
		return 0;
	}
	SSL_CTX *tls = NULL;
	if (d.cfg.tls_cert[0]) {
		tls = tls_server_ctx(d.cfg.tls_cert, d.cfg.tls_key, &err);
		if (tls == NULL) {
			fprintf(stderr, "yubind: %s: %s\n", path, err);
			free(err);
			conf_free(&d.cfg);
			return 1;
		}
	}
	if (check) {
		printf("yubind: %s: configuration OK\n", path);
		tls_ctx_free(&tls);
		conf_free(&d.cfg);
		return 0;
	}
	log_set_level((enum log_level)d.cfg.log_level);
	raise_fd_limit();
	signal(SIGPIPE, SIG_IGN);
	/* fsyncs of concurrent deliveries run in parallel on the pool. */
	setenv("UV_THREADPOOL_SIZE", "16", 0);
	auth_cache_set_ttl((uint64_t)d.cfg.auth_cache_ttl);
	if (auth_init() < 0)
		log_fatal("libsodium initialisation failed");

	d.loop = uv_default_loop();
	d.srv.loop = d.loop;
	d.srv.cfg = &d.cfg;
	d.reg.loop = d.loop;
	d.reg.server = &d.srv;
	d.reg.tls = tls;
	d.reg.max_conns = (size_t)d.cfg.max_connections;
	d.reg.max_per_ip = (size_t)d.cfg.max_connections_per_ip;
	d.reg.handshake_ms = (uint64_t)d.cfg.command_timeout;
	d.reg.on_empty = on_empty;

	open_listeners("smtp", &d.cfg.listen_smtp, &smtp_conn_handler, false);
	open_listeners("pop3", &d.cfg.listen_pop3, &pop3_conn_handler, false);
	open_listeners("pop3s", &d.cfg.listen_pop3s, &pop3_conn_handler, true);
	open_listeners("imap", &d.cfg.listen_imap, &imap_conn_handler, false);
	open_listeners("imaps", &d.cfg.listen_imaps, &imap_conn_handler, true);
	open_listeners("submission", &d.cfg.listen_submission, &submission_conn_handler, false);
	open_listeners("submissions", &d.cfg.listen_submissions, &submission_conn_handler, true);
	open_http_listeners();
	prepare_local_dir();
	drop_privileges();
	int lock_fd = lock_data_dir();
	open_local_listener();

	if (store_open(d.cfg.data_dir, &d.srv.store, &err) < 0)
		log_fatal("%s (check data_dir in %s and its owner)", err, d.cfg.path);
	if (store_recover(d.srv.store, &err) < 0)
		log_fatal("store recovery failed: %s", err);
	d.srv.writer = store_writer_start(d.loop, d.srv.store, (size_t)d.cfg.store_batch_max);
	check_postmaster();
	d.mta = mta_start(d.loop, &d.srv, &err);
	if (!d.mta)
		log_fatal("%s", err);
	d.srv.mta = d.mta;
	d.srv.queue_kick = queue_kick;
	d.srv.report_delivered = report_delivered;

	uv_signal_init(d.loop, &d.sigterm);
	uv_signal_start(&d.sigterm, on_signal, SIGTERM);
	uv_signal_init(d.loop, &d.sigint);
	uv_signal_start(&d.sigint, on_signal, SIGINT);
	uv_signal_init(d.loop, &d.sigusr1);
	uv_signal_start(&d.sigusr1, on_usr1, SIGUSR1);
	uv_timer_init(d.loop, &d.grace);

	log_notice("ready pid=%d hostname=%s data_dir=%s tls=%s", (int)getpid(), d.cfg.hostname,
		 d.cfg.data_dir, tls ? "yes" : "no");
	uv_run(d.loop, UV_RUN_DEFAULT);
	if (d.forced) {
		/* as after a crash: what was committed is durable, and no
		 * client was told of anything that was not */
		log_notice("stopped (forced: see the error above)");
		fflush(NULL);
		_exit(1);
	}
	if (!d.store_stopped)
		stop_store();
	uv_run(d.loop, UV_RUN_DEFAULT);
	int r = uv_loop_close(d.loop);
	if (r != 0)
		log_warn("shutdown: event loop still had open handles");
	http_server_free(&d.http);
	jmap_free(&d.jmap);
	jmap_threader_free(&d.threader);
	web_free(&d.web);
	store_close(&d.srv.store);
	free(d.srv.pop3_locked);
	imap_cache_free(&d.srv);
	server_watch_free(&d.srv);
	tls_ctx_free(&tls);
	close(lock_fd);
	log_notice("stopped");
	conf_free(&d.cfg);
	return 0;
}
