/* client_fetch.c - yubin fetch: new mail from the account's POP3 server
 * (client/pop3_fetch.h) or IMAP folders (client/imap_fetch.h) into its
 * local Maildir.
 *
 *   yubin fetch [--keep] [--maildir DIR] [--folder F]... [--account NAME |
 *               --server HOST[:PORT]|URL --tls starttls|tls|none --user USER
 *               --password-cmd CMD --cafile FILE --pin SHA256] [--trace]
 *
 * The account is the default one of client.conf, --account NAME, with
 * every command-line option on top (as yubin send).  --server HOST:PORT
 * makes the account a POP3 one (port 995 implies tls, any other
 * starttls); --server imap://, imaps://, pop3:// or pop3s:// says which.
 * IMAP: the account's folders (or each --folder), copied without changing
 * anything on the server (--keep is implied).
 *
 * Exit codes: 0 fetched (maybe nothing), 1 failed, 2 bad usage, 75 a
 * temporary failure (the server unreachable, a connection lost). */
#include "yubin/client.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client/account.h"
#include "client/imap_fetch.h"
#include "client/pop3_fetch.h"
#include "core/util.h"

static const char fetch_usage[] =
	"usage: yubin fetch [--keep] [--maildir DIR] [--folder F]... [--account NAME] [--trace]\n"
	"  account on the command line instead of client.conf:\n"
	"                   --server HOST:PORT|imaps://HOST... --tls starttls|tls|none\n"
	"                   --user USER --password-cmd CMD --cafile FILE --pin SHA256\n"
	"New mail of the account's POP3 server goes into its Maildir; --keep leaves\n"
	"it on the server (what was fetched is remembered in MAILDIR/.yubin-uidl).\n"
	"IMAP: new messages of the account's folders (or each --folder) are copied;\n"
	"nothing changes on the server (MAILDIR/.yubin-imap remembers the last one).\n";

struct fetch_args {
	const char *account, *server, *tls, *user, *password_cmd, *cafile, *pin, *maildir;
	bool keep, trace;
	char folders[1024];
};

static int usage_error(const char *what, const char *arg)
{
	fprintf(stderr, "yubin fetch: %s%s%s\n%s", what, arg ? " " : "", arg ? arg : "",
		fetch_usage);
	return 2;
}

static int parse_args(int argc, char **argv, struct fetch_args *a)
{
	static const char *const valued[] = {
		"--account", "--server", "--tls", "--user", "--password-cmd", "--cafile", "--pin",
		"--maildir",
	};
	memset(a, 0, sizeof *a);
	for (int i = 1; i < argc; i++) {
		const char *o = argv[i];
		if (strcmp(o, "-h") == 0 || strcmp(o, "--help") == 0) {
			fputs(fetch_usage, stdout);
			return 1;
		}
		if (strcmp(o, "--keep") == 0 || strcmp(o, "--trace") == 0) {
			*(o[2] == 'k' ? &a->keep : &a->trace) = true;
			continue;
		}
		if (strcmp(o, "--folder") == 0 && i + 1 < argc) {
			size_t l = strlen(a->folders);
			if (strchr(argv[i + 1], ',') || l + strlen(argv[i + 1]) + 2 > sizeof a->folders)
				return usage_error("--folder takes one folder name (no ','):",
						   argv[i + 1]);
			snprintf(a->folders + l, sizeof a->folders - l, "%s%s", l ? "," : "",
				 argv[++i]);
			continue;
		}
		bool known = false;
		for (size_t k = 0; k < ARRAY_LEN(valued); k++)
			known |= strcmp(o, valued[k]) == 0;
		if (!known)
			return usage_error("unknown option", o);
		if (i + 1 >= argc)
			return usage_error("a value is missing after", o);
		const char *v = argv[++i];
		const char **slot = strcmp(o, "--account") == 0      ? &a->account
				    : strcmp(o, "--server") == 0       ? &a->server
				    : strcmp(o, "--tls") == 0          ? &a->tls
				    : strcmp(o, "--user") == 0         ? &a->user
				    : strcmp(o, "--password-cmd") == 0 ? &a->password_cmd
				    : strcmp(o, "--cafile") == 0       ? &a->cafile
				    : strcmp(o, "--pin") == 0          ? &a->pin
								       : &a->maildir;
		*slot = v;
	}
	if (a->tls && strcmp(a->tls, "starttls") != 0 && strcmp(a->tls, "tls") != 0 &&
	    strcmp(a->tls, "none") != 0)
		return usage_error("--tls is starttls, tls or none, not", a->tls);
	if (a->maildir && a->maildir[0] != '/')
		return usage_error("--maildir takes an absolute path, not", a->maildir);
	return 0;
}

/* 1 ok, 0 printed an error. */
static int resolve_account(const struct fetch_args *a, struct account *acct)
{
	char path[4096];
	if (!client_account("fetch", a->account, acct, path, sizeof path))
		return 0;
	if (a->server && strstr(a->server, "://")) {
		char e[512];
		if (account_parse_incoming(a->server, acct, e, sizeof e) < 0) {
			fprintf(stderr, "yubin fetch: --server %s: %s\n", a->server, e);
			return 0;
		}
	} else if (a->server) {
		int def = a->tls && strcmp(a->tls, "tls") == 0 ? 995 : 110;
		if (client_server(a->server, def, acct->in_host, sizeof acct->in_host,
				  &acct->in_port) < 0) {
			fprintf(stderr, "yubin fetch: --server %s: HOST:PORT\n", a->server);
			return 0;
		}
		acct->in_proto = IN_POP3;
		acct->in_tls = acct->in_port == 995 ? TLS_IMPLICIT : TLS_STARTTLS;
	}
	if (a->tls)
		acct->in_tls = strcmp(a->tls, "tls") == 0    ? TLS_IMPLICIT
			       : strcmp(a->tls, "none") == 0 ? TLS_NONE
							     : TLS_STARTTLS;
	if (a->user)
		snprintf(acct->in_user, sizeof acct->in_user, "%s", a->user);
	if (a->password_cmd)
		snprintf(acct->password_cmd, sizeof acct->password_cmd, "%s", a->password_cmd);
	if (a->cafile)
		snprintf(acct->cafile, sizeof acct->cafile, "%s", a->cafile);
	if (a->pin)
		snprintf(acct->pin_sha256, sizeof acct->pin_sha256, "%s", a->pin);
	if (a->maildir)
		snprintf(acct->maildir, sizeof acct->maildir, "%s", a->maildir);
	if (a->folders[0])
		snprintf(acct->folders, sizeof acct->folders, "%s", a->folders);
	if (acct->in_proto == IN_NONE || !acct->in_host[0]) {
		fprintf(stderr, "yubin fetch: no incoming server: give --server HOST:PORT, or "
			"incoming = pop3s://... in an account of %s\n", path[0] ? path : "client.conf");
		return 0;
	}
	if (!acct->in_user[0]) {
		fprintf(stderr, "yubin fetch: no user name: give --user\n");
		return 0;
	}
	if (!acct->maildir[0]) {
		fprintf(stderr, "yubin fetch: no Maildir: give --maildir DIR\n");
		return 0;
	}
	return 1;
}

static int fetch_pop3(const struct fetch_args *a, const struct account *acct,
		      const char *password, size_t *fetched_r, bool *temp_r, char *err,
		      size_t errsz);

int client_fetch(int argc, char **argv)
{
	struct fetch_args a;
	int r = parse_args(argc, argv, &a);
	if (r != 0)
		return r == 1 ? 0 : 2;
	struct account acct;
	if (!resolve_account(&a, &acct))
		return 1;

	char err[1024] = "", prompt[700];
	snprintf(prompt, sizeof prompt, "%s at %s", acct.in_user, acct.in_host);
	char *password = account_password(&acct, prompt, err, sizeof err);
	if (!password) {
		fprintf(stderr, "yubin fetch: %s\n", err);
		return 1;
	}
	size_t fetched = 0;
	bool temp = false;
	if (acct.in_proto == IN_IMAP) {
		struct imap_client_opts io = {
			.host = acct.in_host,
			.port = (unsigned)acct.in_port,
			.tls = acct.in_tls == TLS_IMPLICIT ? IMAP_CLIENT_TLS
			       : acct.in_tls == TLS_NONE   ? IMAP_CLIENT_NONE
							   : IMAP_CLIENT_STARTTLS,
			.user = acct.in_user,
			.password = password,
			.cafile = acct.cafile[0] ? acct.cafile : NULL,
			.pin = acct.pin_sha256[0] ? acct.pin_sha256 : NULL,
			.trace = a.trace ? stderr : NULL,
		};
		struct imap_fetch_opts fo = {
			.server = &io,
			.folders = acct.folders,
			.maildir = acct.maildir,
			.fetched_r = &fetched,
		};
		r = imap_fetch(&fo, &temp, err, sizeof err);
	} else {
		r = fetch_pop3(&a, &acct, password, &fetched, &temp, err, sizeof err);
	}
	explicit_bzero(password, strlen(password));
	free(password);
	if (r < 0) {
		if (fetched > 0)
			printf("fetched %zu new message(s) into %s before an error\n", fetched,
			       acct.maildir);
		fprintf(stderr, "yubin fetch: %s\n", err);
		return temp ? 75 : 1;
	}
	printf("fetched %zu new message(s) into %s\n", fetched, acct.maildir);
	return 0;
}

static int fetch_pop3(const struct fetch_args *a, const struct account *acct,
		      const char *password, size_t *fetched_r, bool *temp_r, char *err,
		      size_t errsz)
{
	struct pop3_fetch_opts o = {
		.host = acct->in_host,
		.port = (unsigned)acct->in_port,
		.tls = acct->in_tls == TLS_IMPLICIT ? POP3_FETCH_TLS
		       : acct->in_tls == TLS_NONE   ? POP3_FETCH_NONE
						    : POP3_FETCH_STARTTLS,
		.user = acct->in_user,
		.password = password,
		.cafile = acct->cafile[0] ? acct->cafile : NULL,
		.pin = acct->pin_sha256[0] ? acct->pin_sha256 : NULL,
		.maildir = acct->maildir,
		.keep = a->keep,
		.trace = a->trace ? stderr : NULL,
		.fetched_r = fetched_r,
	};
	o.temp_r = temp_r;
	return pop3_fetch(&o, err, errsz);
}
