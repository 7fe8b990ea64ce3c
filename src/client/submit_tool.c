/* submit_tool.c - smtp_submit() from the command line, for the protocol
 * tests (tests/proto/test_client_submit.py) and for trying servers by hand.
 * Built, not installed: the user's command is `yubin send`.
 *
 *   submit_tool --server HOST:PORT [--tls starttls|tls|none] [--user U
 *               --password-file F] [--cafile F] [--pin HEX] [--helo NAME]
 *               [--timeout SECONDS] [--trace] --from A --to B [--to C ...]
 *               < message
 *
 * HOST may be an IPv6 address in brackets.  The password is the first line
 * of F.  Exit 0 accepted, 1 failed (the reason on stderr), 2 bad usage. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client/smtp_submit.h"
#include "core/util.h"

/* Longest message read from stdin. */
#define MESSAGE_MAX (256u * 1024 * 1024)

static void usage(void)
{
	fprintf(stderr, "usage: submit_tool --server HOST:PORT [--tls starttls|tls|none] "
		"[--user U --password-file F] [--cafile F] [--pin HEX] [--helo NAME] "
		"[--timeout S] [--trace] --from A --to B [--to C ...] < message\n");
	exit(2);
}

/* "host:port", "[v6]:port" or "host": host into host_r (heap), port. */
static int parse_server(const char *arg, char **host_r, unsigned *port_r)
{
	const char *colon;
	char *end;

	*port_r = 0;
	if (arg[0] == '[') {
		const char *rb = strchr(arg, ']');
		if (rb == NULL || (rb[1] != '\0' && rb[1] != ':'))
			return -1;
		*host_r = xstrndup(arg + 1, (size_t)(rb - arg - 1));
		colon = rb[1] == ':' ? rb + 1 : NULL;
	} else {
		colon = strrchr(arg, ':');
		*host_r = colon ? xstrndup(arg, (size_t)(colon - arg)) : xstrdup(arg);
	}
	if (colon != NULL) {
		errno = 0;
		unsigned long p = strtoul(colon + 1, &end, 10);
		if (errno != 0 || end == colon + 1 || *end != '\0' || p == 0 || p > 65535)
			return -1;
		*port_r = (unsigned)p;
	}
	return (*host_r)[0] != '\0' ? 0 : -1;
}

/* The first line of path, without its line end (heap; the caller wipes). */
static char *read_password(const char *path)
{
	char buf[SMTP_SUBMIT_PASSWORD_MAX + 2];
	FILE *f = fopen(path, "r");

	if (f == NULL) {
		fprintf(stderr, "submit_tool: %s: %s\n", path, strerror(errno));
		return NULL;
	}
	char *r = fgets(buf, sizeof buf, f);
	fclose(f);
	if (r == NULL) {
		fprintf(stderr, "submit_tool: %s: empty\n", path);
		return NULL;
	}
	buf[strcspn(buf, "\r\n")] = '\0';
	char *pw = xstrdup(buf);
	explicit_bzero(buf, sizeof buf);
	return pw;
}

static char *read_stdin(size_t *len_r)
{
	size_t cap = 64 * 1024, len = 0;
	char *p = xmalloc(cap);

	for (;;) {
		if (len == cap) {
			if (cap >= MESSAGE_MAX) {
				fprintf(stderr, "submit_tool: message longer than %u bytes\n",
					MESSAGE_MAX);
				free(p);
				return NULL;
			}
			cap *= 2;
			p = xrealloc(p, cap);
		}
		size_t n = fread(p + len, 1, cap - len, stdin);
		len += n;
		if (n == 0)
			break;
	}
	if (ferror(stdin)) {
		fprintf(stderr, "submit_tool: reading the message: %s\n", strerror(errno));
		free(p);
		return NULL;
	}
	*len_r = len;
	return p;
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{"server", required_argument, NULL, 's'},
		{"tls", required_argument, NULL, 'T'},
		{"user", required_argument, NULL, 'u'},
		{"password-file", required_argument, NULL, 'p'},
		{"cafile", required_argument, NULL, 'c'},
		{"pin", required_argument, NULL, 'P'},
		{"helo", required_argument, NULL, 'H'},
		{"timeout", required_argument, NULL, 't'},
		{"trace", no_argument, NULL, 'v'},
		{"from", required_argument, NULL, 'f'},
		{"to", required_argument, NULL, 'r'},
		{NULL, 0, NULL, 0},
	};
	struct smtp_submit_opts o = {.tls = SMTP_SUBMIT_STARTTLS};
	const char **rcpts = xcalloc((size_t)argc, sizeof *rcpts);
	const char *from = NULL, *server = NULL, *pwfile = NULL;
	size_t nrcpts = 0;
	int c;

	while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		switch (c) {
		case 's': server = optarg; break;
		case 'T':
			if (strcmp(optarg, "starttls") == 0)
				o.tls = SMTP_SUBMIT_STARTTLS;
			else if (strcmp(optarg, "tls") == 0)
				o.tls = SMTP_SUBMIT_TLS;
			else if (strcmp(optarg, "none") == 0)
				o.tls = SMTP_SUBMIT_NONE;
			else
				usage();
			break;
		case 'u': o.user = optarg; break;
		case 'p': pwfile = optarg; break;
		case 'c': o.cafile = optarg; break;
		case 'P': o.pin = optarg; break;
		case 'H': o.helo = optarg; break;
		case 't': {
			char *end;
			unsigned long t = strtoul(optarg, &end, 10);
			if (end == optarg || *end != '\0' || t == 0 || t > 3600)
				usage();
			o.timeout = (unsigned)t;
			break;
		}
		case 'v': o.trace = stderr; break;
		case 'f': from = optarg; break;
		case 'r': rcpts[nrcpts++] = optarg; break;
		default: usage();
		}
	}
	if (optind != argc || server == NULL || from == NULL || nrcpts == 0 ||
	    (pwfile != NULL && o.user == NULL))
		usage();
	char *host = NULL;
	if (parse_server(server, &host, &o.port) < 0) {
		fprintf(stderr, "submit_tool: --server %s: want HOST:PORT\n", server);
		return 2;
	}
	o.host = host;
	char *pw = NULL;
	if (pwfile != NULL && (pw = read_password(pwfile)) == NULL)
		return 1;
	o.password = pw;
	size_t len = 0;
	char *msg = read_stdin(&len);
	if (msg == NULL)
		return 1;

	char err[2048];
	int r = smtp_submit(&o, from, rcpts, nrcpts, msg, len, err, sizeof err);
	if (pw != NULL) {
		explicit_bzero(pw, strlen(pw));
		free(pw);
	}
	if (r < 0)
		fprintf(stderr, "submit_tool: %s\n", err);
	free(msg);
	free(host);
	free(rcpts);
	return r < 0 ? 1 : 0;
}
