/* sts_fetch_test.c - sts_fetch_policy against a real HTTPS server.
 *
 * The group setup makes a throw-away CA and a certificate for
 * mta-sts.b.example (openssl req / x509, in a mkdtemp directory), then
 * starts a small Python HTTPS server (written there too) on 127.0.0.8 with
 * two free ports: the HTTPS one, whose answer to the next request is chosen
 * by the "mode" file the test writes before each fetch, and a "silent" one
 * that accepts connections and never sends a byte.  Readiness is waited
 * for by connecting, with bounded retries.  The teardown stops the child
 * and removes the directory. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "mta/sts_fetch.h"

#define ADDR "127.0.0.8"
#define TIMEOUT_MS 5000L
#define SHORT_TIMEOUT_MS 500L

static char dir[64];
static char ca_pem[128];
static pid_t server = -1;
static int https_port, silent_port;

static const char server_py[] =
	"import os, socket, ssl, sys, threading, time\n"
	"from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer\n"
	"\n"
	"d, port, silent_port = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])\n"
	"POLICY = (b'version: STSv1\\r\\nmode: enforce\\r\\nmx: mail.b.example\\r\\n'\n"
	"          b'mx: *.mx.b.example\\r\\nmax_age: 604800\\r\\n')\n"
	"PATH = '/.well-known/mta-sts.txt'\n"
	"\n"
	"def pad(n):  # a valid policy of exactly n bytes: empty lines are skipped\n"
	"    return POLICY + b'\\n' * (n - len(POLICY))\n"
	"\n"
	"class H(BaseHTTPRequestHandler):\n"
	"    protocol_version = 'HTTP/1.1'\n"
	"    def log_message(self, *a):\n"
	"        pass\n"
	"    def reply(self, code, ctype, body, extra=(), chunked=False):\n"
	"        self.send_response(code)\n"
	"        if ctype is not None:\n"
	"            self.send_header('Content-Type', ctype)\n"
	"        for k, v in extra:\n"
	"            self.send_header(k, v)\n"
	"        if chunked:\n"
	"            self.send_header('Transfer-Encoding', 'chunked')\n"
	"        else:\n"
	"            self.send_header('Content-Length', str(len(body)))\n"
	"        self.end_headers()\n"
	"        if not chunked:\n"
	"            self.wfile.write(body)\n"
	"            return\n"
	"        for i in range(0, len(body), 4096):\n"
	"            part = body[i:i + 4096]\n"
	"            self.wfile.write(b'%x\\r\\n%s\\r\\n' % (len(part), part))\n"
	"        self.wfile.write(b'0\\r\\n\\r\\n')\n"
	"    def do_GET(self):\n"
	"        host = 'mta-sts.b.example:%d' % port\n"
	"        if (self.headers.get('User-Agent') != 'Yubin'\n"
	"                or self.headers.get('Host') != host):\n"
	"            return self.reply(400, 'text/plain', b'bad request\\n')\n"
	"        if self.path == '/moved.txt':  # where the redirect points\n"
	"            return self.reply(200, 'text/plain', POLICY)\n"
	"        if self.path != PATH:\n"
	"            return self.reply(400, 'text/plain', b'bad path\\n')\n"
	"        with open(os.path.join(d, 'mode')) as f:\n"
	"            m = f.read().strip()\n"
	"        if m == 'good':\n"
	"            self.reply(200, 'text/plain', POLICY)\n"
	"        elif m == 'params':\n"
	"            self.reply(200, 'Text/Plain ; charset=utf-8', POLICY)\n"
	"        elif m == '404':\n"
	"            self.reply(404, 'text/plain', b'not found\\n' * 10000)\n"
	"        elif m == '301':\n"
	"            self.reply(301, 'text/plain', b'moved\\n',\n"
	"                       [('Location', 'https://%s/moved.txt' % host)])\n"
	"        elif m == 'html':\n"
	"            self.reply(200, 'text/html; charset=utf-8', POLICY)\n"
	"        elif m == 'notype':\n"
	"            self.reply(200, None, POLICY)\n"
	"        elif m == 'big_length':\n"
	"            self.reply(200, 'text/plain', pad(65537))\n"
	"        elif m == 'big_chunked':\n"
	"            self.reply(200, 'text/plain', pad(65537), chunked=True)\n"
	"        elif m == 'max_chunked':\n"
	"            self.reply(200, 'text/plain', pad(65536), chunked=True)\n"
	"        elif m == 'bad_policy':\n"
	"            self.reply(200, 'text/plain', POLICY.replace(b'STSv1', b'STSv2'))\n"
	"        elif m == 'stall':\n"
	"            time.sleep(3600)\n"
	"        else:\n"
	"            self.reply(500, 'text/plain', b'unknown mode\\n')\n"
	"\n"
	"ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)\n"
	"ctx.load_cert_chain(os.path.join(d, 'srv.pem'), os.path.join(d, 'srv.key'))\n"
	"\n"
	"class S(ThreadingHTTPServer):\n"
	"    daemon_threads = True\n"
	"    def handle_error(self, request, client_address):\n"
	"        pass  # clients that abort (the point of several cases)\n"
	"    def finish_request(self, request, client_address):\n"
	"        # TLS on the request's own thread: a slow client blocks no other\n"
	"        try:\n"
	"            tls = ctx.wrap_socket(request, server_side=True)\n"
	"        except (ssl.SSLError, OSError):\n"
	"            return\n"
	"        try:\n"
	"            self.RequestHandlerClass(tls, client_address, self)\n"
	"        finally:\n"
	"            tls.close()\n"
	"\n"
	"held = []\n"
	"def silent():\n"
	"    s = socket.socket()\n"
	"    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\n"
	"    s.bind(('" ADDR "', silent_port))\n"
	"    s.listen(16)\n"
	"    while True:\n"
	"        held.append(s.accept()[0])  # accepted, never read nor written\n"
	"\n"
	"threading.Thread(target=silent, daemon=True).start()\n"
	"S(('" ADDR "', port), H).serve_forever()\n";

static int64_t mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void write_file(const char *name, const char *data)
{
	char path[128], tmp[136];
	snprintf(path, sizeof path, "%s/%s", dir, name);
	snprintf(tmp, sizeof tmp, "%s.tmp", path);
	FILE *f = fopen(tmp, "w");
	assert_non_null(f);
	assert_int_equal(fputs(data, f) >= 0, 1);
	assert_int_equal(fclose(f), 0);
	assert_int_equal(rename(tmp, path), 0);     /* the server never sees half a file */
}

/* Run argv[0] in dir with stdout and stderr to dir/cmd.log; its exit status. */
static int run(char *const argv[])
{
	char log[128];
	snprintf(log, sizeof log, "%s/cmd.log", dir);
	int fd = open(log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
	if (fd < 0)
		return -1;
	pid_t pid = fork();
	if (pid == 0) {
		if (chdir(dir) < 0 || dup2(fd, 1) < 0 || dup2(fd, 2) < 0)
			_exit(126);
		execvp(argv[0], argv);
		_exit(127);
	}
	close(fd);
	int st = 0;
	if (pid < 0 || waitpid(pid, &st, 0) != pid)
		return -1;
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* A port free on ADDR right now (the kernel's pick for port 0). */
static int listen_any(struct sockaddr_in *sa)
{
	socklen_t len = sizeof *sa;
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_true(fd >= 0);
	memset(sa, 0, sizeof *sa);
	sa->sin_family = AF_INET;
	assert_int_equal(inet_pton(AF_INET, ADDR, &sa->sin_addr), 1);
	assert_int_equal(bind(fd, (struct sockaddr *)sa, sizeof *sa), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)sa, &len), 0);
	return fd;
}

/* Connect to ADDR:port until it works: 0; -1 when the server exited or
 * after about 10 s (1000 tries, 10 ms apart). */
static int wait_port(int port)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
	inet_pton(AF_INET, ADDR, &sa.sin_addr);
	for (int i = 0; i < 1000; i++) {
		int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (fd < 0)
			return -1;
		int r = connect(fd, (struct sockaddr *)&sa, sizeof sa);
		close(fd);
		if (r == 0)
			return 0;
		if (waitpid(server, NULL, WNOHANG) == server) {
			server = -1;
			return -1;
		}
		poll(NULL, 0, 10);
	}
	return -1;
}

static void start_server(void)
{
	struct sockaddr_in a, b;
	int fa = listen_any(&a), fb = listen_any(&b);   /* both held: two different ports */
	https_port = ntohs(a.sin_port);
	silent_port = ntohs(b.sin_port);
	close(fa);
	close(fb);

	char log[128], p1[16], p2[16], script[128];
	snprintf(log, sizeof log, "%s/server.log", dir);
	snprintf(script, sizeof script, "%s/server.py", dir);
	snprintf(p1, sizeof p1, "%d", https_port);
	snprintf(p2, sizeof p2, "%d", silent_port);
	int fd = open(log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
	assert_true(fd >= 0);
	server = fork();
	assert_true(server >= 0);
	if (server == 0) {
		int null = open("/dev/null", O_RDWR);
		if (null < 0 || dup2(null, 0) < 0 || dup2(null, 1) < 0 || dup2(fd, 2) < 0)
			_exit(126);
		execlp("python3", "python3", script, dir, p1, p2, (char *)NULL);
		_exit(127);
	}
	close(fd);
}

static void print_file(const char *name)
{
	char path[128], line[512];
	snprintf(path, sizeof path, "%s/%s", dir, name);
	FILE *f = fopen(path, "r");
	if (!f)
		return;
	while (fgets(line, sizeof line, f))
		fprintf(stderr, "%s: %s", name, line);
	fclose(f);
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

static int group_setup(void **state)
{
	(void)state;
	char why[256];

	strcpy(dir, "/tmp/sts_fetch_test.XXXXXX");
	if (!mkdtemp(dir))
		return -1;
	snprintf(ca_pem, sizeof ca_pem, "%s/ca.pem", dir);
	write_file("ext.cnf", "subjectAltName = DNS:mta-sts.b.example\n"
		   "basicConstraints = critical, CA:FALSE\n"
		   "keyUsage = critical, digitalSignature\n"
		   "extendedKeyUsage = serverAuth\n");
	write_file("server.py", server_py);
	write_file("mode", "good\n");

	char *ca[] = { "openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
		"ec_paramgen_curve:P-256", "-nodes", "-keyout", "ca.key", "-out", "ca.pem",
		"-days", "2", "-subj", "/CN=Yubin sts_fetch test CA", NULL };
	char *csr[] = { "openssl", "req", "-new", "-newkey", "ec", "-pkeyopt",
		"ec_paramgen_curve:P-256", "-nodes", "-keyout", "srv.key", "-out", "srv.csr",
		"-subj", "/CN=mta-sts.b.example", NULL };
	char *sign[] = { "openssl", "x509", "-req", "-in", "srv.csr", "-CA", "ca.pem",
		"-CAkey", "ca.key", "-CAcreateserial", "-out", "srv.pem", "-days", "2",
		"-extfile", "ext.cnf", NULL };
	if (run(ca) != 0 || run(csr) != 0 || run(sign) != 0) {
		print_file("cmd.log");
		return -1;
	}

	start_server();
	if (wait_port(https_port) < 0 || wait_port(silent_port) < 0) {
		print_file("server.log");
		return -1;
	}
	if (sts_fetch_init(why, sizeof why) < 0) {
		fprintf(stderr, "sts_fetch_init: %s\n", why);
		return -1;
	}
	return 0;
}

static int group_teardown(void **state)
{
	(void)state;
	sts_fetch_cleanup();
	if (server > 0) {
		kill(server, SIGTERM);
		waitpid(server, NULL, 0);
		server = -1;
	}
	print_file("server.log");   /* a Python traceback, if any */
	if (dir[0])
		nftw(dir, rm_entry, 8, FTW_DEPTH | FTW_PHYS);
	return 0;
}

static struct sts_fetch_opts opts(const char *ca, long timeout_ms)
{
	return (struct sts_fetch_opts){
		.ca_file = ca, .port = https_port, .connect_to = ADDR, .timeout_ms = timeout_ms,
	};
}

/* Fetch domain in mode; returns the result, with why and *p for checks. */
static int fetch(const char *mode, const char *domain, const struct sts_fetch_opts *o,
		 struct mtasts_policy *p, char *why, size_t whysz)
{
	char m[32];
	snprintf(m, sizeof m, "%s\n", mode);
	write_file("mode", m);
	memset(why, 'X', whysz - 1);
	why[whysz - 1] = '\0';
	int r = sts_fetch_policy(domain, o, p, why, whysz);
	print_message("  %-12s %-20s -> %d %s\n", mode, domain, r, r == 0 ? "" : why);
	return r;
}

static struct mtasts_policy pol;    /* 16 KiB: not on the stack */

static void assert_fails_with(const char *mode, const char *domain,
			      const struct sts_fetch_opts *o, const char *needle)
{
	char why[256];
	assert_int_equal(fetch(mode, domain, o, &pol, why, sizeof why), -1);
	if (!strstr(why, needle))
		fail_msg("%s: why \"%s\" lacks \"%s\"", mode, why, needle);
	assert_int_equal(pol.n_mx, 0);
	assert_int_equal(pol.mode, MTASTS_NONE);
}

static void assert_good_policy(void)
{
	assert_int_equal(pol.mode, MTASTS_ENFORCE);
	assert_int_equal(pol.max_age, 604800);
	assert_int_equal(pol.n_mx, 2);
	assert_string_equal(pol.mx[0], "mail.b.example");
	assert_string_equal(pol.mx[1], "*.mx.b.example");
	assert_true(mtasts_mx_match(&pol, "a.mx.b.example"));
}

static void test_good(void **state)
{
	(void)state;
	char why[256];
	struct sts_fetch_opts o = opts(ca_pem, TIMEOUT_MS);
	assert_int_equal(fetch("good", "b.example", &o, &pol, why, sizeof why), 0);
	assert_good_policy();
	/* DNS spelling: any case, a trailing dot; Host: is still mta-sts.b.example. */
	assert_int_equal(fetch("good", "B.Example.", &o, &pol, why, sizeof why), 0);
	assert_good_policy();
}

static void test_type_parameters(void **state)
{
	(void)state;
	char why[256];
	struct sts_fetch_opts o = opts(ca_pem, TIMEOUT_MS);
	assert_int_equal(fetch("params", "b.example", &o, &pol, why, sizeof why), 0);
	assert_good_policy();
}

static void test_body_at_limit(void **state)
{
	(void)state;
	char why[256];
	struct sts_fetch_opts o = opts(ca_pem, TIMEOUT_MS);
	assert_int_equal(fetch("max_chunked", "b.example", &o, &pol, why, sizeof why), 0);
	assert_good_policy();
}

static void test_wrong_name(void **state)
{
	(void)state;
	struct sts_fetch_opts o = opts(ca_pem, TIMEOUT_MS);
	/* Same server, but mta-sts.c.example is not the certificate's name. */
	assert_fails_with("good", "c.example", &o, "mta-sts.c.example");
}

static void test_untrusted_ca(void **state)
{
	(void)state;
	struct sts_fetch_opts o = opts("", TIMEOUT_MS);     /* system store only */
	assert_fails_with("good", "b.example", &o, "certificate");
}

static void test_404(void **state)
{
	(void)state;
	struct sts_fetch_opts o = opts(ca_pem, TIMEOUT_MS);
	assert_fails_with("404", "b.example", &o, "HTTP 404");
}

static void test_redirect(void **state)
{
	(void)state;
	struct sts_fetch_opts o = opts(ca_pem, TIMEOUT_MS);
	/* Followed, it would lead to a good policy. */
	assert_fails_with("301", "b.example", &o, "redirect refused (HTTP 301)");
}

static void test_html(void **state)
{
	(void)state;
	struct sts_fetch_opts o = opts(ca_pem, TIMEOUT_MS);
	assert_fails_with("html", "b.example", &o, "media type text/html, not text/plain");
	assert_fails_with("notype", "b.example", &o, "no media type");
}

static void test_too_large(void **state)
{
	(void)state;
	struct sts_fetch_opts o = opts(ca_pem, TIMEOUT_MS);
	/* By Content-Length before the body, and while a chunked body arrives. */
	assert_fails_with("big_length", "b.example", &o, "too large");
	assert_fails_with("big_chunked", "b.example", &o, "too large");
}

static void test_bad_policy(void **state)
{
	(void)state;
	struct sts_fetch_opts o = opts(ca_pem, TIMEOUT_MS);
	assert_fails_with("bad_policy", "b.example", &o, "policy: ");
}

static void check_timeout(const char *mode, const struct sts_fetch_opts *o)
{
	char why[256];
	int64_t t0 = mono_ms();
	assert_int_equal(fetch(mode, "b.example", o, &pol, why, sizeof why), -1);
	int64_t took = mono_ms() - t0;
	if (took < SHORT_TIMEOUT_MS - 50 || took > SHORT_TIMEOUT_MS + 1000)
		fail_msg("%s: took %lld ms for a %ld ms timeout", mode, (long long)took,
			 SHORT_TIMEOUT_MS);
	if (!strstr(why, "timed out") && !strstr(why, "timeout"))
		fail_msg("%s: why \"%s\"", mode, why);
}

static void test_timeout_silent(void **state)
{
	(void)state;
	/* Accepted, then not a byte: stuck in the TLS handshake. */
	struct sts_fetch_opts o = opts(ca_pem, SHORT_TIMEOUT_MS);
	o.port = silent_port;
	check_timeout("good", &o);
}

static void test_timeout_stall(void **state)
{
	(void)state;
	/* TLS done and the request read, then no answer. */
	struct sts_fetch_opts o = opts(ca_pem, SHORT_TIMEOUT_MS);
	check_timeout("stall", &o);
}

static void test_refused(void **state)
{
	(void)state;
	struct sockaddr_in sa;
	int fd = listen_any(&sa);   /* bound, not listening: connections are refused */
	struct sts_fetch_opts o = opts(ca_pem, TIMEOUT_MS);
	o.port = ntohs(sa.sin_port);
	char why[256];
	assert_int_equal(fetch("good", "b.example", &o, &pol, why, sizeof why), -1);
	assert_true(why[0] != '\0');
	close(fd);
}

static void test_invalid_domain(void **state)
{
	(void)state;
	char long_label[80], long_domain[300];
	memset(long_label, 'a', 64);
	strcpy(long_label + 64, ".example");
	/* 246 characters: mta-sts. plus it is 254, one over. */
	memset(long_domain, 'a', sizeof long_domain);
	for (size_t i = 63; i < 246; i += 64)
		long_domain[i] = '.';
	long_domain[246] = '\0';
	const char *bad[] = {
		"", ".", "..", "a..b", ".b.example", "-a.example", "a-.example",
		"b.example..", "b.example/x", "b.example:443", "user@b.example", "b.example?x",
		"b.ex%61mple", "b example", "b.example\r\n", "b_x.example", "b\xc3\xa9.example",
		long_label, long_domain,
	};
	struct sts_fetch_opts o = opts(ca_pem, TIMEOUT_MS);
	char why[256];
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		int r = sts_fetch_policy(bad[i], &o, &pol, why, sizeof why);
		if (r != -1 || strcmp(why, "invalid domain") != 0)
			fail_msg("\"%s\": %d %s", bad[i], r, why);
	}
	long_domain[245] = '\0';    /* 245 characters is fine (but not served here) */
	assert_int_equal(sts_fetch_policy(long_domain, &o, &pol, why, sizeof why), -1);
	assert_string_not_equal(why, "invalid domain");
	o.port = 0;
	assert_int_equal(sts_fetch_policy("b.example", &o, &pol, why, sizeof why), -1);
	assert_string_equal(why, "invalid port 0");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_good),
		cmocka_unit_test(test_type_parameters),
		cmocka_unit_test(test_body_at_limit),
		cmocka_unit_test(test_wrong_name),
		cmocka_unit_test(test_untrusted_ca),
		cmocka_unit_test(test_404),
		cmocka_unit_test(test_redirect),
		cmocka_unit_test(test_html),
		cmocka_unit_test(test_too_large),
		cmocka_unit_test(test_bad_policy),
		cmocka_unit_test(test_timeout_silent),
		cmocka_unit_test(test_timeout_stall),
		cmocka_unit_test(test_refused),
		cmocka_unit_test(test_invalid_domain),
	};
	signal(SIGPIPE, SIG_IGN);
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
