/* client.c - the mail client commands of yubin (issue 5): compose and send.
 *
 *   yubin send [ACCOUNT OPTIONS] --to ADDR... [--cc ADDR]... [--bcc ADDR]...
 *              [--subject TEXT] [--attach FILE]... [--html FILE]
 *              [--charset utf-8|iso-2022-jp] [--flowed] [--dry-run]
 *
 * The body is read from stdin, or written in $EDITOR when stdin is a
 * terminal.  The account is the default one of ~/.config/yubin/client.conf
 * (client/account.h), --account NAME, or given whole on the command line
 * as swaks and msmtp take it: --server HOST:PORT --tls starttls|tls|none
 * --user USER --password-cmd CMD --cafile FILE --pin SHA256 --from ADDR
 * --name "DISPLAY NAME".  --dry-run prints the message instead of sending.
 * When the account's incoming server is IMAP, what was sent is stored in
 * its Sent folder (client_submit), unless --no-copy.
 *
 * Exit codes: 0 sent, 1 failed (the server's reply quoted), 2 bad usage,
 * 75 a temporary failure (server unreachable, a 4xx reply). */
#include "yubin/client.h"

#include <errno.h>
#include <fcntl.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "client/account.h"
#include "client/mbox.h"
#include "client/smtp_submit.h"
#include "core/buf.h"
#include "core/conf.h"
#include "core/util.h"
#include "mail/compose.h"
#include "mail/submit.h"

#define CLIENT_ATT_MAX 100
#define CLIENT_FILE_MAX (50 * 1024 * 1024)   /* one attachment or body read */

static const char send_usage[] =
	"usage: yubin send [--account NAME] --to ADDR [--to ADDR]... [--cc ADDR]...\n"
	"                  [--bcc ADDR]... [--subject TEXT] [--attach FILE]...\n"
	"                  [--html FILE] [--charset utf-8|iso-2022-jp] [--flowed]\n"
	"                  [--dry-run] [--no-copy] [--no-signature]\n"
	"  account on the command line instead of client.conf:\n"
	"                  --server HOST:PORT --tls starttls|tls|none --user USER\n"
	"                  --password-cmd CMD --cafile FILE --pin SHA256\n"
	"                  --from ADDR --name \"DISPLAY NAME\"\n"
	"The body comes from stdin, or from $EDITOR when stdin is a terminal.\n"
	"Bcc recipients get the message but are not named in it.  With an IMAP\n"
	"account a copy goes to its Sent folder (not with --no-copy).\n";

/* Read all of fd (at most CLIENT_FILE_MAX). */
static char *read_fd(int fd, size_t *len_r, const char *what)
{
	struct buf b;
	buf_init(&b, CLIENT_FILE_MAX);
	char tmp[65536];
	for (;;) {
		ssize_t n = read(fd, tmp, sizeof tmp);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			fprintf(stderr, "yubin send: reading %s: %s\n", what, strerror(errno));
			buf_free(&b);
			return NULL;
		}
		if (n == 0)
			break;
		if (buf_append(&b, tmp, (size_t)n) < 0) {
			fprintf(stderr, "yubin send: %s is larger than %d MiB\n", what,
				CLIENT_FILE_MAX / (1024 * 1024));
			buf_free(&b);
			return NULL;
		}
	}
	if (b.data == NULL)
		buf_append(&b, "", 0);
	return buf_steal(&b, len_r);
}

static char *read_file(const char *path, size_t *len_r)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		fprintf(stderr, "yubin send: %s: %s\n", path, strerror(errno));
		return NULL;
	}
	char *data = read_fd(fd, len_r, path);
	close(fd);
	return data;
}

char *client_read_stdin(size_t *len_r)
{
	return read_fd(STDIN_FILENO, len_r, "stdin");
}

char *client_edit(const char *initial, size_t ilen, size_t *len_r)
{
	/* $TMPDIR as mktemp(1) has it; a relative or overlong one is ignored */
	const char *dir = getenv("TMPDIR");
	if (!dir || dir[0] != '/' || strlen(dir) > 4000)
		dir = "/tmp";
	char path[4096];
	snprintf(path, sizeof path, "%s/yubin-msg-XXXXXX", dir);
	int fd = mkstemp(path);
	if (fd < 0) {
		fprintf(stderr, "yubin: cannot make a temporary file: %s\n", strerror(errno));
		return NULL;
	}
	for (size_t off = 0; off < ilen;) {
		ssize_t w = write(fd, initial + off, ilen - off);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0) {
			fprintf(stderr, "yubin: writing %s: %s\n", path, strerror(errno));
			close(fd);
			unlink(path);
			return NULL;
		}
		off += (size_t)w;
	}
	close(fd);
	const char *ed = getenv("VISUAL");
	if (!ed || !*ed)
		ed = getenv("EDITOR");
	if (!ed || !*ed)
		ed = "vi";
	pid_t pid = fork();
	if (pid == 0) {
		execlp("/bin/sh", "sh", "-c", "exec $0 \"$1\"", ed, path, (char *)NULL);
		_exit(127);
	}
	int st = 0;
	while (pid > 0 && waitpid(pid, &st, 0) < 0 && errno == EINTR)
		;
	char *body = NULL;
	if (pid < 0 || !WIFEXITED(st) || WEXITSTATUS(st) != 0)
		fprintf(stderr, "yubin send: the editor (%s) failed; nothing sent\n", ed);
	else
		body = read_file(path, len_r);
	unlink(path);
	if (body && *len_r == 0) {
		fprintf(stderr, "yubin send: empty message; nothing sent\n");
		free(body);
		body = NULL;
	}
	return body;
}

struct send_args {
	const char *account;
	const char *server, *tls, *user, *password_cmd, *cafile, *pin, *from, *name;
	const char *subject, *html, *charset;
	bool flowed, dry_run, no_copy, no_signature;
	const char *to[CLIENT_RCPTS_MAX], *cc[CLIENT_RCPTS_MAX], *bcc[CLIENT_RCPTS_MAX];
	size_t nto, ncc, nbcc;
	const char *attach[CLIENT_ATT_MAX];
	size_t nattach;
};

static int usage_error(const char *what, const char *arg)
{
	fprintf(stderr, "yubin send: %s%s%s\n%s", what, arg ? " " : "", arg ? arg : "", send_usage);
	return 2;
}

static int parse_args(int argc, char **argv, struct send_args *a)
{
	static const char *const valued[] = {
		"--account", "--server", "--tls", "--user", "--password-cmd", "--cafile", "--pin",
		"--from", "--name", "--subject", "--html", "--charset", "--to", "--cc", "--bcc",
		"--attach",
	};
	memset(a, 0, sizeof *a);
	for (int i = 1; i < argc; i++) {
		const char *o = argv[i];
		if (strcmp(o, "-h") == 0 || strcmp(o, "--help") == 0) {
			fputs(send_usage, stdout);
			return 1;
		}
		if (strcmp(o, "--no-copy") == 0 || strcmp(o, "--no-signature") == 0) {
			*(o[5] == 'c' ? &a->no_copy : &a->no_signature) = true;
			continue;
		}
		if (strcmp(o, "--flowed") == 0) {
			a->flowed = true;
			continue;
		}
		if (strcmp(o, "--dry-run") == 0) {
			a->dry_run = true;
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
		const char **list = NULL;
		size_t *n = NULL;
		if (strcmp(o, "--to") == 0) {
			list = a->to;
			n = &a->nto;
		} else if (strcmp(o, "--cc") == 0) {
			list = a->cc;
			n = &a->ncc;
		} else if (strcmp(o, "--bcc") == 0) {
			list = a->bcc;
			n = &a->nbcc;
		} else if (strcmp(o, "--attach") == 0) {
			if (a->nattach >= CLIENT_ATT_MAX)
				return usage_error("more than 100 attachments at", v);
			a->attach[a->nattach++] = v;
			continue;
		}
		if (list) {
			if (*n >= CLIENT_RCPTS_MAX)
				return usage_error("more than 1000 addresses in one field at", v);
			list[(*n)++] = v;
			continue;
		}
		const char **slot = strcmp(o, "--account") == 0      ? &a->account
				    : strcmp(o, "--server") == 0       ? &a->server
				    : strcmp(o, "--tls") == 0          ? &a->tls
				    : strcmp(o, "--user") == 0         ? &a->user
				    : strcmp(o, "--password-cmd") == 0 ? &a->password_cmd
				    : strcmp(o, "--cafile") == 0       ? &a->cafile
				    : strcmp(o, "--pin") == 0          ? &a->pin
				    : strcmp(o, "--from") == 0         ? &a->from
				    : strcmp(o, "--name") == 0         ? &a->name
				    : strcmp(o, "--subject") == 0      ? &a->subject
				    : strcmp(o, "--html") == 0         ? &a->html
								       : &a->charset;
		*slot = v;
	}
	if (a->nto + a->ncc + a->nbcc == 0)
		return usage_error("no recipient: give --to, --cc or --bcc", NULL);
	if (a->charset && strcasecmp(a->charset, "utf-8") != 0 &&
	    strcasecmp(a->charset, "iso-2022-jp") != 0)
		return usage_error("--charset is utf-8 or iso-2022-jp, not", a->charset);
	if (a->tls && strcmp(a->tls, "starttls") != 0 && strcmp(a->tls, "tls") != 0 &&
	    strcmp(a->tls, "none") != 0)
		return usage_error("--tls is starttls, tls or none, not", a->tls);
	return 0;
}

int client_account(const char *cmd, const char *name, struct account *acct, char *path,
		   size_t pathsz)
{
	char err[512] = "";
	struct account *v = NULL;
	size_t n = 0;
	memset(acct, 0, sizeof *acct);
	path[0] = '\0';
	if (accounts_path(path, pathsz) == 0 && accounts_load(path, &v, &n, err, sizeof err) < 0) {
		fprintf(stderr, "yubin %s: %s\n", cmd, err);
		return 0;
	}
	const struct account *f = n > 0 ? account_find(v, n, name) : NULL;
	if (name && !f) {
		fprintf(stderr, "yubin %s: no account \"%s\" in %s\n", cmd, name,
			path[0] ? path : "client.conf");
		free(v);
		return 0;
	}
	if (f)
		*acct = *f;
	free(v);
	return 1;
}

int client_server(const char *spec, int def, char *host, size_t hostsz, int *port_r)
{
	const char *colon = strrchr(spec, ':');
	const char *h = spec;
	if (h[0] == '[' && (!colon || colon[-1] != ']'))
		colon = NULL;         /* "[v6]" without a port */
	else if (h[0] != '[' && colon && strchr(h, ':') != colon)
		colon = NULL;         /* a bare IPv6 address */
	size_t hl = colon ? (size_t)(colon - h) : strlen(h);
	if (h[0] == '[' && hl >= 2 && h[hl - 1] == ']') {
		h++;
		hl -= 2;
	}
	char *end = NULL;
	long port = colon ? strtol(colon + 1, &end, 10) : def;
	if (hl == 0 || hl >= hostsz || port < 1 || port > 65535 || (end && *end))
		return -1;
	snprintf(host, hostsz, "%.*s", (int)hl, h);
	*port_r = (int)port;
	return 0;
}

/* The account: from client.conf (--account or its default), with every
 * command-line option on top; only the command line when there is no
 * file.  1 ok, 0 printed an error. */
static int resolve_account(const struct send_args *a, struct account *acct)
{
	char path[4096];
	if (!client_account("send", a->account, acct, path, sizeof path))
		return 0;
	if (a->server) {
		int def = a->tls && strcmp(a->tls, "tls") == 0 ? 465 : 587;
		if (client_server(a->server, def, acct->smtp_host, sizeof acct->smtp_host,
				  &acct->smtp_port) < 0) {
			fprintf(stderr, "yubin send: --server %s: HOST:PORT\n", a->server);
			return 0;
		}
		acct->smtp_tls = acct->smtp_port == 465 ? TLS_IMPLICIT : TLS_STARTTLS;
	}
	if (a->tls)
		acct->smtp_tls = strcmp(a->tls, "tls") == 0  ? TLS_IMPLICIT
				 : strcmp(a->tls, "none") == 0 ? TLS_NONE
							     : TLS_STARTTLS;
	if (a->from)
		snprintf(acct->address, sizeof acct->address, "%s", a->from);
	if (a->name)
		snprintf(acct->display_name, sizeof acct->display_name, "%s", a->name);
	if (a->user)
		snprintf(acct->smtp_user, sizeof acct->smtp_user, "%s", a->user);
	else if (!acct->smtp_user[0])
		snprintf(acct->smtp_user, sizeof acct->smtp_user, "%s", acct->address);
	if (a->password_cmd)
		snprintf(acct->password_cmd, sizeof acct->password_cmd, "%s", a->password_cmd);
	if (a->cafile)
		snprintf(acct->cafile, sizeof acct->cafile, "%s", a->cafile);
	if (a->pin)
		snprintf(acct->pin_sha256, sizeof acct->pin_sha256, "%s", a->pin);
	if (!acct->address[0]) {
		fprintf(stderr, "yubin send: no sender: give --from, or an account in %s\n", path);
		return 0;
	}
	if (!acct->smtp_host[0] && !a->dry_run) {
		fprintf(stderr, "yubin send: no submission server: give --server HOST:PORT, or an "
			"account in %s\n", path);
		return 0;
	}
	return 1;
}

/* The host part of an address, for the Message-ID. */
static const char *addr_host(const char *addr)
{
	const char *at = strrchr(addr, '@');
	return at && at[1] ? at + 1 : "localhost";
}

/* The signature (RFC 3676 4.3: after a line "-- "), at most 64 KiB. */
#define SIGNATURE_MAX (64 * 1024)

int client_add_signature(const struct account *acct, char **text, size_t *len)
{
	char *sig = NULL;
	size_t sl = 0;
	if (acct->signature_file[0]) {
		if (!(sig = read_file(acct->signature_file, &sl)))
			return -1;
		if (sl > SIGNATURE_MAX) {
			fprintf(stderr, "yubin: %s is larger than %d KiB: not a signature\n",
				acct->signature_file, SIGNATURE_MAX / 1024);
			free(sig);
			return -1;
		}
	} else if (acct->signature[0]) {
		sig = xstrdup(acct->signature);
		sl = strlen(sig);
	} else {
		return 0;
	}
	while (sl > 0 && (sig[sl - 1] == '\n' || sig[sl - 1] == '\r'))
		sl--;
	struct buf b;
	buf_init(&b, SIZE_MAX);
	buf_append(&b, *text, *len);
	if (*len > 0 && (*text)[*len - 1] != '\n')
		buf_append(&b, "\n", 1);
	/* a file that already starts with the separator keeps its own */
	if (!(sl >= 3 && memcmp(sig, "-- ", 3) == 0 && (sl == 3 || sig[3] == '\n')))
		buf_append(&b, "-- \n", 4);
	buf_append(&b, sig, sl);
	buf_append(&b, "\n", 1);
	free(sig);
	free(*text);
	*text = buf_steal(&b, len);
	return 0;
}

int client_submit(const char *cmd, const struct account *acct, const char *const *rcpts,
		  size_t nrcpts, const char *msg, size_t len, bool dry_run, bool copy)
{
	if (dry_run)
		return fwrite(msg, 1, len, stdout) == len && fflush(stdout) == 0 ? 0 : 1;
	char err[1024] = "";
	char prompt[700];
	snprintf(prompt, sizeof prompt, "%s at %s", acct->smtp_user, acct->smtp_host);
	char *password = account_password(acct, prompt, err, sizeof err);
	if (!password) {
		fprintf(stderr, "yubin %s: %s\n", cmd, err);
		return 1;
	}
	struct smtp_submit_opts so = {
		.host = acct->smtp_host,
		.port = (unsigned)acct->smtp_port,
		.tls = acct->smtp_tls == TLS_IMPLICIT ? SMTP_SUBMIT_TLS
		       : acct->smtp_tls == TLS_NONE   ? SMTP_SUBMIT_NONE
						      : SMTP_SUBMIT_STARTTLS,
		.user = acct->smtp_user,
		.password = password,
		.cafile = acct->cafile[0] ? acct->cafile : NULL,
		.pin = acct->pin_sha256[0] ? acct->pin_sha256 : NULL,
	};
	struct smtp_submit_result res;
	so.result = &res;
	int ret = 0;
	if (smtp_submit(&so, acct->address, rcpts, nrcpts, msg, len, err, sizeof err) < 0) {
		fprintf(stderr, "yubin %s: %s\n", cmd, err);
		/* 75 for what may work later (no connection, a 4xx, an unknown
		 * outcome); every permanent failure is 1 for the mail commands */
		ret = smtp_submit_sysexit(&res) == 75 ? 75 : 1;
		goto out;
	}
	printf("sent to %zu recipient(s) via %s:%d\n", nrcpts, acct->smtp_host, acct->smtp_port);
	if (copy && acct->in_proto == IN_IMAP) {
		/* The same password: one account, one password_cmd.  The mail
		 * is gone already, so a failed copy is a warning, not a failure
		 * (sending again would duplicate it). */
		bool temp = false;
		struct mbox *mb = mbox_imap_open_password(acct, password, NULL, &temp, err,
							  sizeof err);
		if (mb && mb->ops->append(mb, NULL, "sent", msg, len, MBOX_SEEN, &temp, err,
					  sizeof err) == 0)
			printf("copy saved in the Sent folder of %s\n", acct->in_host);
		else
			fprintf(stderr, "yubin %s: sent, but the copy for the Sent folder was not "
				"saved: %s\n", cmd, err);
		if (mb)
			mb->ops->close(mb);
	}
out:
	explicit_bzero(password, strlen(password));
	free(password);
	return ret;
}

int client_send(int argc, char **argv)
{
	struct send_args a;
	int r = parse_args(argc, argv, &a);
	if (r != 0)
		return r == 1 ? 0 : 2;
	struct account acct;
	if (!resolve_account(&a, &acct))
		return 1;

	int ret = 1;
	size_t text_len = 0, html_len = 0;
	char *text = isatty(STDIN_FILENO) ? client_edit("", 0, &text_len)
					  : read_fd(STDIN_FILENO, &text_len, "stdin");
	char *html = NULL;
	struct compose_attachment att[CLIENT_ATT_MAX];
	char *att_data[CLIENT_ATT_MAX] = {0};
	struct compose_addr to[CLIENT_RCPTS_MAX], cc[CLIENT_RCPTS_MAX];
	const char *rcpts[3 * CLIENT_RCPTS_MAX];
	size_t nrcpts = 0;
	struct buf msg;
	buf_init(&msg, COMPOSE_OUT_MAX);

	if (!text)
		goto out;
	if (!a.no_signature && client_add_signature(&acct, &text, &text_len) < 0)
		goto out;
	if (a.html && !(html = read_file(a.html, &html_len)))
		goto out;
	for (size_t i = 0; i < a.nattach; i++) {
		size_t len;
		if (!(att_data[i] = read_file(a.attach[i], &len)))
			goto out;
		const char *base = strrchr(a.attach[i], '/');
		att[i] = (struct compose_attachment){
			.filename = base ? base + 1 : a.attach[i],
			.content_type = NULL,
			.data = (const unsigned char *)att_data[i],
			.len = len,
		};
	}
	for (size_t i = 0; i < a.nto; i++) {
		to[i] = (struct compose_addr){NULL, a.to[i]};
		rcpts[nrcpts++] = a.to[i];
	}
	for (size_t i = 0; i < a.ncc; i++) {
		cc[i] = (struct compose_addr){NULL, a.cc[i]};
		rcpts[nrcpts++] = a.cc[i];
	}
	for (size_t i = 0; i < a.nbcc; i++)
		rcpts[nrcpts++] = a.bcc[i];      /* envelope only */

	char msgid[COMPOSE_MSGID_SIZE];
	if (compose_message_id(addr_host(acct.address), msgid, sizeof msgid) < 0)
		snprintf(msgid, sizeof msgid, "%s", "");
	struct compose_msg m = {
		.from = {acct.display_name[0] ? acct.display_name : NULL, acct.address},
		.to = to,
		.nto = a.nto,
		.cc = cc,
		.ncc = a.ncc,
		.subject = a.subject ? a.subject : "",
		.text = text,
		.text_len = text_len,
		.html = html,
		.html_len = html_len,
		.charset = a.charset,
		.flowed = a.flowed,
		.att = att,
		.natt = a.nattach,
		.message_id = msgid[0] ? msgid : NULL,
		.date = (int64_t)time(NULL),
	};
	const char *why = NULL;
	if (compose_message(&m, &msg, &why) < 0) {
		fprintf(stderr, "yubin send: cannot make the message: %s\n", why ? why : "?");
		goto out;
	}
	if (a.dry_run) {
		ret = client_submit("send", &acct, rcpts, nrcpts, msg.data, msg.len, true, false);
		goto out;
	}
	ret = client_submit("send", &acct, rcpts, nrcpts, msg.data, msg.len, false, !a.no_copy);
out:
	free(text);
	free(html);
	for (size_t i = 0; i < a.nattach; i++)
		free(att_data[i]);
	buf_free(&msg);
	return ret;
}

/* ---- sendmail ----
 *
 * Two ways out.  With an account (client.conf's default one, or
 * --account), the message goes to its submission server as yubin send
 * does.  Without one, or with --local, it goes to the local yubind's
 * submission socket (local_submit_socket), the way Postfix's sendmail hands
 * mail to postdrop: no password, the kernel tells yubind who we are.  The
 * socket: $YUBIN_SUBMIT_SOCKET; else local_submit_socket in yubind's
 * config (-C FILE, else $YUBIN_CONF, else /etc/yubin/yubin.conf) when it
 * can be read; else CONF_LOCAL_SUBMIT_SOCKET.  The envelope sender is -f,
 * else USER@HOST with the login name of our uid and the config's hostname
 * (gethostname() without a config).
 *
 * Exit status, as sendmail(8) (sysexits.h): 0 sent; 64 usage; 65 the
 * message or an address is bad; 67 a recipient is unknown; 69 the service
 * is unavailable (5xx, local submission off); 75 try again later (no
 * yubind, a 4xx, a lost connection); 77 refused by policy; 78 a
 * configuration problem (client.conf, yubind's config, the password). */

#define EX_USAGE_ 64
#define EX_DATAERR_ 65
#define EX_UNAVAILABLE_ 69
#define EX_IOERR_ 74
#define EX_CONFIG_ 78

static const char sendmail_usage[] =
	"usage: yubin sendmail [-t] [-i] [-f SENDER] [-F NAME] [--account NAME | --local]\n"
	"                      [-C YUBIND_CONF] [RECIPIENT...]\n"
	"       (also as \"sendmail\", a symlink name)\n"
	"The message, header included, comes on stdin.  -t adds the To, Cc and Bcc addresses\n"
	"to the recipients; Bcc fields are always removed; From, Date and Message-ID are added\n"
	"when missing.  -i, -oi and other -o options are accepted and ignored (a line with a\n"
	"single dot is data).\n"
	"With an account (client.conf's default, or --account) the message goes to its\n"
	"server.  Without one, or with --local, to the local yubind's socket, no password:\n"
	"$YUBIN_SUBMIT_SOCKET, else local_submit_socket in yubind's config (-C FILE, else\n"
	"$YUBIN_CONF, else " "/etc/yubin/yubin.conf" ", when readable), else "
	CONF_LOCAL_SUBMIT_SOCKET ";\n"
	"the sender is -f, else your login name at the config's hostname.\n"
	"Exit status (sysexits.h): 0 sent, 64 usage, 65 bad message or address, 67 unknown\n"
	"recipient, 69 unavailable, 75 temporary failure (try again), 77 refused, 78 config.\n";

struct rcpt_list {
	char **v;
	size_t n;
	bool over;
};

static void add_rcpt(const char *addr, void *arg)
{
	struct rcpt_list *l = arg;
	for (size_t i = 0; i < l->n; i++)
		if (strcasecmp(l->v[i], addr) == 0)
			return;
	if (l->n >= CLIENT_RCPTS_MAX) {
		l->over = true;
		return;
	}
	l->v = xreallocarray(l->v, l->n + 1, sizeof *l->v);
	l->v[l->n++] = xstrdup(addr);
}

/* A display name for a quoted-string in From: no quotes, backslashes or
 * control characters (a -F or a GECOS field cannot add header lines). */
static void display_name(char *out, size_t outsz, const char *in)
{
	size_t n = 0;
	for (const unsigned char *p = (const unsigned char *)in; *p && n + 1 < outsz; p++)
		if (*p >= ' ' && *p != 0x7f && *p != '"' && *p != '\\')
			out[n++] = (char)*p;
	out[n] = '\0';
}

/* Where the local yubind takes mail, and what to call it in errors. */
struct local_target {
	char path[4096];            /* "" when local submission is off */
	char how[4200];             /* "local_submit_socket in /etc/yubin/yubin.conf" */
	char hostname[256];         /* for the default sender */
};

/* 0, or -1 with the error printed (a -C file that does not load). */
static int local_target(const char *conf_opt, struct local_target *t)
{
	const char *env = getenv("YUBIN_SUBMIT_SOCKET");
	const char *cpath = conf_opt ? conf_opt : getenv("YUBIN_CONF");
	if (cpath == NULL || cpath[0] == '\0')
		cpath = "/etc/yubin/yubin.conf";
	struct conf cfg;
	char *err = NULL;
	conf_defaults(&cfg);
	bool loaded = conf_load(&cfg, cpath, &err) == 0;
	if (!loaded && conf_opt != NULL) {
		fprintf(stderr, "yubin sendmail: -C: %s\n", err);
		free(err);
		conf_free(&cfg);
		return -1;
	}
	memset(t, 0, sizeof *t);
	if (loaded) {
		snprintf(t->hostname, sizeof t->hostname, "%s", cfg.hostname);
	} else if (gethostname(t->hostname, sizeof t->hostname) < 0 ||
		   t->hostname[sizeof t->hostname - 1] != '\0' || t->hostname[0] == '\0') {
		snprintf(t->hostname, sizeof t->hostname, "localhost");
	}
	if (env != NULL && env[0] != '\0') {
		snprintf(t->path, sizeof t->path, "%s", env);
		snprintf(t->how, sizeof t->how, "$YUBIN_SUBMIT_SOCKET");
	} else if (loaded) {
		snprintf(t->path, sizeof t->path, "%s", cfg.local_submit_socket);
		snprintf(t->how, sizeof t->how, "local_submit_socket in %s", cpath);
	} else {
		snprintf(t->path, sizeof t->path, "%s", CONF_LOCAL_SUBMIT_SOCKET);
		/* err names the file and why it was not read */
		snprintf(t->how, sizeof t->how, "the default; %s", err ? err : cpath);
	}
	free(err);
	conf_free(&cfg);
	return 0;
}

/* The local user's envelope sender (-f, else LOGIN@HOSTNAME) and From
 * name (-F, else the GECOS name) into acct.  1, or 0 with the error
 * printed. */
static int local_sender(const char *sender, const char *fullname, const struct local_target *t,
			struct account *acct)
{
	struct passwd pw, *res = NULL;
	char buf[16384];

	memset(acct, 0, sizeof *acct);
	bool have = getpwuid_r(getuid(), &pw, buf, sizeof buf, &res) == 0 && res != NULL;
	if (sender != NULL) {
		snprintf(acct->address, sizeof acct->address, "%s", sender);
	} else if (have) {
		snprintf(acct->address, sizeof acct->address, "%s@%s", res->pw_name, t->hostname);
	} else {
		fprintf(stderr, "yubin sendmail: uid %u has no user name: give the sender with "
			"-f ADDRESS\n", (unsigned)getuid());
		return 0;
	}
	if (fullname != NULL) {
		display_name(acct->display_name, sizeof acct->display_name, fullname);
	} else if (have && res->pw_gecos != NULL) {
		char g[256];
		snprintf(g, sizeof g, "%.*s", (int)strcspn(res->pw_gecos, ","), res->pw_gecos);
		display_name(acct->display_name, sizeof acct->display_name, g);
	}
	return 1;
}

/* What to tell the user when the local socket does not take the message. */
static void local_failed(const struct local_target *t, bool asked, const char *err,
			 const struct smtp_submit_result *res)
{
	const char *pre = asked ? "" : "no account in client.conf and ";
	if (res->fail == SMTP_SUBMIT_FAIL_CONNECT && res->sys_errno == ENOENT)
		fprintf(stderr, "yubin sendmail: %sno local yubind at %s (%s): %s; start yubind, "
			"or give an account in ~/.config/yubin/client.conf (or set "
			"YUBIN_SUBMIT_SOCKET)\n", pre, t->path, t->how, err);
	else if (res->fail == SMTP_SUBMIT_FAIL_CONNECT && res->sys_errno == ECONNREFUSED)
		fprintf(stderr, "yubin sendmail: %sthe local yubind does not answer at %s (%s): "
			"%s; is yubind running?\n", pre, t->path, t->how, err);
	else if (res->fail == SMTP_SUBMIT_FAIL_CONNECT && res->sys_errno == EACCES)
		fprintf(stderr, "yubin sendmail: the local yubind's socket %s (%s): %s; it or its "
			"directory is not open to uid %u\n", t->path, t->how, err,
			(unsigned)getuid());
	else
		fprintf(stderr, "yubin sendmail: local yubind at %s: %s\n", t->path, err);
}

int client_sendmail(int argc, char **argv)
{
	struct send_args a;
	bool from_headers = false, local = false;
	const char *sender = NULL, *fullname = NULL, *conf_opt = NULL;
	struct rcpt_list rl = {0};
	int ret = 1;
	memset(&a, 0, sizeof a);

	int i = 1;
	for (; i < argc && argv[i][0] == '-'; i++) {
		const char *o = argv[i];
		if (strcmp(o, "--") == 0) {
			i++;
			break;
		} else if (strcmp(o, "-h") == 0 || strcmp(o, "--help") == 0) {
			fputs(sendmail_usage, stdout);
			return 0;
		} else if (strcmp(o, "-t") == 0) {
			from_headers = true;
		} else if (strcmp(o, "--local") == 0) {
			local = true;
		} else if (strcmp(o, "-i") == 0 || strncmp(o, "-o", 2) == 0 ||
			   strcmp(o, "-bm") == 0 || strcmp(o, "-U") == 0) {
			/* -i/-oi: dots are data anyway; other -o options do not apply */
		} else if ((strcmp(o, "-f") == 0 || strcmp(o, "-F") == 0 || strcmp(o, "-C") == 0 ||
			    strcmp(o, "--account") == 0) && i + 1 < argc) {
			const char **slot = o[1] == 'f'   ? &sender
					    : o[1] == 'F' ? &fullname
					    : o[1] == 'C' ? &conf_opt
							  : &a.account;
			*slot = argv[++i];
		} else if (strncmp(o, "-f", 2) == 0 && o[2]) {
			sender = o + 2;
		} else if (strncmp(o, "-F", 2) == 0 && o[2]) {
			fullname = o + 2;
		} else if (strncmp(o, "-C", 2) == 0 && o[2]) {
			conf_opt = o + 2;
		} else {
			fprintf(stderr, "yubin sendmail: unknown option %s\n%s", o, sendmail_usage);
			return EX_USAGE_;
		}
	}
	if (local && a.account) {
		fprintf(stderr, "yubin sendmail: --local and --account exclude each other\n%s",
			sendmail_usage);
		return EX_USAGE_;
	}
	for (; i < argc; i++)
		add_rcpt(argv[i], &rl);
	/* the account needs a sender: -f, or the account's own address */
	a.from = sender;
	a.name = fullname;
	a.to[0] = "x";      /* recipients are checked below, not by resolve_account */
	a.nto = 1;
	struct account acct;
	struct local_target lt;
	bool asked_local = local;
	if (!local) {
		char cpath[4096];
		if (!client_account("sendmail", a.account, &acct, cpath, sizeof cpath)) {
			ret = EX_CONFIG_;
			goto out;
		}
		/* No account to send through: the local yubind takes it. */
		local = a.account == NULL && acct.smtp_host[0] == '\0';
	}
	if (local) {
		if (local_target(conf_opt, &lt) < 0) {
			ret = EX_CONFIG_;
			goto out;
		}
		if (lt.path[0] == '\0') {
			fprintf(stderr, "yubin sendmail: %slocal submission is off (%s is empty): "
				"give an account in ~/.config/yubin/client.conf, or set "
				"local_submit_socket\n",
				asked_local ? "" : "no account in client.conf and ", lt.how);
			ret = EX_UNAVAILABLE_;
			goto out;
		}
		if (!local_sender(sender, fullname, &lt, &acct)) {
			ret = EX_CONFIG_;
			goto out;
		}
	} else if (!resolve_account(&a, &acct)) {
		ret = EX_CONFIG_;
		goto out;
	}

	size_t len = 0;
	char *msg = read_fd(STDIN_FILENO, &len, "stdin");
	if (!msg) {
		ret = EX_IOERR_;
		goto out;
	}
	struct submit_fix fix;
	struct buf out;
	buf_init(&out, (size_t)CLIENT_FILE_MAX + 65536);
	ret = EX_DATAERR_;          /* for the message checks below */
	if (submit_scan(msg, len, &fix) < 0) {
		fprintf(stderr, "yubin sendmail: the message header cannot be read (too long, too "
			"many Bcc fields, or it starts with a blank)\n");
		free(msg);
		buf_free(&out);
		goto out;
	}
	if (from_headers) {
		static const char *const fields[] = {"To", "Cc", "Bcc"};
		if (submit_field_addresses(msg, len, fields, 3, add_rcpt, &rl) < 0) {
			fprintf(stderr, "yubin sendmail: -t: a To, Cc or Bcc field does not parse\n");
			free(msg);
			buf_free(&out);
			goto out;
		}
	}
	if (rl.over || rl.n == 0) {
		fprintf(stderr, "yubin sendmail: %s\n", rl.over ? "more than 1000 recipients"
			: "no recipients (give them as arguments, or -t)");
		free(msg);
		buf_free(&out);
		ret = rl.n == 0 ? EX_USAGE_ : EX_DATAERR_;
		goto out;
	}
	if (!fix.has_from) {
		/* RFC 5322 3.6.2: a message has a From; ours, as the user set it. */
		if (acct.display_name[0])
			buf_printf(&out, "From: \"%s\" <%s>%s", acct.display_name, acct.address,
				   fix.lf ? "\n" : "\r\n");
		else
			buf_printf(&out, "From: %s%s", acct.address, fix.lf ? "\n" : "\r\n");
	}
	char id[COMPOSE_MSGID_SIZE] = "", idlocal[COMPOSE_MSGID_SIZE] = "";
	if (compose_message_id(addr_host(acct.address), id, sizeof id) == 0) {
		/* "<local@host>" -> local, host */
		const char *at = strrchr(id, '@');
		snprintf(idlocal, sizeof idlocal, "%.*s", at ? (int)(at - id - 1) : 0, id + 1);
	}
	if (submit_rewrite(msg, len, &fix, (int64_t)time(NULL), idlocal[0] ? idlocal : "yubin",
			   addr_host(acct.address), &out) < 0) {
		fprintf(stderr, "yubin sendmail: the message is too large\n");
		free(msg);
		buf_free(&out);
		goto out;
	}
	free(msg);
	char err[1024] = "";
	struct smtp_submit_result res = {0};
	if (local) {
		struct smtp_submit_opts so = {.unix_path = lt.path, .result = &res};
		if (smtp_submit(&so, acct.address, (const char *const *)rl.v, rl.n, out.data,
				out.len, err, sizeof err) == 0) {
			ret = 0;
		} else {
			local_failed(&lt, asked_local, err, &res);
			ret = smtp_submit_sysexit(&res);
		}
		buf_free(&out);
		goto out;
	}
	char prompt[700];
	snprintf(prompt, sizeof prompt, "%s at %s", acct.smtp_user, acct.smtp_host);
	char *password = account_password(&acct, prompt, err, sizeof err);
	ret = EX_CONFIG_;           /* no password */
	if (password) {
		struct smtp_submit_opts so = {
			.host = acct.smtp_host,
			.port = (unsigned)acct.smtp_port,
			.tls = acct.smtp_tls == TLS_IMPLICIT ? SMTP_SUBMIT_TLS
			       : acct.smtp_tls == TLS_NONE   ? SMTP_SUBMIT_NONE
							     : SMTP_SUBMIT_STARTTLS,
			.user = acct.smtp_user,
			.password = password,
			.cafile = acct.cafile[0] ? acct.cafile : NULL,
			.pin = acct.pin_sha256[0] ? acct.pin_sha256 : NULL,
			.result = &res,
		};
		ret = smtp_submit(&so, acct.address, (const char *const *)rl.v, rl.n, out.data,
				  out.len, err, sizeof err) == 0 ? 0 : smtp_submit_sysexit(&res);
		explicit_bzero(password, strlen(password));
		free(password);
	}
	if (ret != 0)
		fprintf(stderr, "yubin sendmail: %s\n", err);
	buf_free(&out);
out:
	for (size_t k = 0; k < rl.n; k++)
		free(rl.v[k]);
	free(rl.v);
	return ret;
}
