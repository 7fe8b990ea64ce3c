/* admin.c - "yubin domain ..." and "yubin user ...": the command table, the
 * secret prompt and the handlers.  See admin.h. */
#include "yubin/admin.h"

#include <errno.h>
#include <signal.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

#include "auth/auth.h"
#include "auth/scram.h"
#include "core/util.h"
#include "store/store.h"

/* Longest password or APOP secret accepted on stdin (without the newline). */
/* Every login mechanism must be able to carry the password: POP3 lines are
 * at most 1024 octets, and "AUTH PLAIN " + base64(NUL address NUL password)
 * with a 320-octet address leaves room for 256. */
#define ADMIN_SECRET_MAX 256

enum secret_kind { SECRET_NONE, SECRET_PASSWORD, SECRET_APOP };

struct admin_cmd {
	const char *group, *verb;
	const char *operand;        /* "NAME", "ADDRESS" or NULL */
	bool has_clear;             /* accepts --clear (then no secret is read) */
	enum secret_kind secret;
	int (*run)(struct store *st, const struct admin_args *a, char *secret);
	const char *summary;
};

static int cmd_domain_add(struct store *st, const struct admin_args *a, char *secret);
static int cmd_domain_del(struct store *st, const struct admin_args *a, char *secret);
static int cmd_domain_list(struct store *st, const struct admin_args *a, char *secret);
static int cmd_user_add(struct store *st, const struct admin_args *a, char *secret);
static int cmd_user_del(struct store *st, const struct admin_args *a, char *secret);
static int cmd_user_list(struct store *st, const struct admin_args *a, char *secret);
static int cmd_user_passwd(struct store *st, const struct admin_args *a, char *secret);
static int cmd_user_apop(struct store *st, const struct admin_args *a, char *secret);
static int cmd_user_quota(struct store *st, const struct admin_args *a, char *secret);
static int cmd_route_add(struct store *st, const struct admin_args *a, char *secret);
static int cmd_route_del(struct store *st, const struct admin_args *a, char *secret);
static int cmd_route_list(struct store *st, const struct admin_args *a, char *secret);
static int cmd_alias_add(struct store *st, const struct admin_args *a, char *secret);
static int cmd_alias_del(struct store *st, const struct admin_args *a, char *secret);
static int cmd_alias_list(struct store *st, const struct admin_args *a, char *secret);
static int cmd_list_create(struct store *st, const struct admin_args *a, char *secret);
static int cmd_list_delete(struct store *st, const struct admin_args *a, char *secret);
static int cmd_list_add(struct store *st, const struct admin_args *a, char *secret);
static int cmd_list_remove(struct store *st, const struct admin_args *a, char *secret);
static int cmd_list_show(struct store *st, const struct admin_args *a, char *secret);
static int cmd_list_list(struct store *st, const struct admin_args *a, char *secret);
static int cmd_queue_list(struct store *st, const struct admin_args *a, char *secret);
static int cmd_queue_show(struct store *st, const struct admin_args *a, char *secret);
static int cmd_queue_flush(struct store *st, const struct admin_args *a, char *secret);
static int cmd_queue_retry(struct store *st, const struct admin_args *a, char *secret);
static int cmd_queue_delete(struct store *st, const struct admin_args *a, char *secret);
static int cmd_queue_hold(struct store *st, const struct admin_args *a, char *secret);
static int cmd_queue_release(struct store *st, const struct admin_args *a, char *secret);

static const struct admin_cmd commands[] = {
	{ "domain", "add", "NAME", false, SECRET_NONE, cmd_domain_add,
	  "add a local domain" },
	{ "domain", "del", "NAME", false, SECRET_NONE, cmd_domain_del,
	  "delete a domain (it must have no accounts left)" },
	{ "domain", "list", NULL, false, SECRET_NONE, cmd_domain_list,
	  "list the local domains, one a line" },
	{ "user", "add", "ADDRESS", false, SECRET_PASSWORD, cmd_user_add,
	  "add an account (its domain must exist); password from stdin" },
	{ "user", "del", "ADDRESS", false, SECRET_NONE, cmd_user_del,
	  "delete an account with all its mailboxes and mail" },
	{ "user", "list", NULL, false, SECRET_NONE, cmd_user_list,
	  "list the accounts, one a line" },
	{ "user", "passwd", "ADDRESS", false, SECRET_PASSWORD, cmd_user_passwd,
	  "set a new password, read from stdin" },
	{ "user", "apop", "ADDRESS", true, SECRET_APOP, cmd_user_apop,
	  "set the APOP secret, read from stdin (--clear removes it)" },
	{ "user", "quota", "ADDRESS SIZE", false, SECRET_NONE, cmd_user_quota,
	  "set the storage quota (k, M, G suffixes; 0 = none) and show the use" },
	{ "route", "add", "DOMAIN HOST:PORT", false, SECRET_NONE, cmd_route_add,
	  "send mail for DOMAIN to HOST:PORT ([HOST]:PORT: no MX lookup of HOST)" },
	{ "route", "del", "DOMAIN", false, SECRET_NONE, cmd_route_del,
	  "remove the route of DOMAIN (back to its MX records)" },
	{ "route", "list", NULL, false, SECRET_NONE, cmd_route_list,
	  "list the routes, one a line" },
	{ "alias", "add", "ADDRESS TARGET", false, SECRET_NONE, cmd_alias_add,
	  "deliver mail for ADDRESS (or @DOMAIN: the catch-all) to TARGET too" },
	{ "alias", "del", "ADDRESS [TARGET]", false, SECRET_NONE, cmd_alias_del,
	  "remove one target of an alias, or the whole alias" },
	{ "alias", "list", NULL, false, SECRET_NONE, cmd_alias_list,
	  "list the aliases, \"ADDRESS TARGET\" a line" },
	{ "list", "create", "LIST OWNER", false, SECRET_NONE, cmd_list_create,
	  "make a mailing list; bounces go to OWNER" },
	{ "list", "delete", "LIST", false, SECRET_NONE, cmd_list_delete,
	  "delete a mailing list and its members" },
	{ "list", "add", "LIST MEMBER", false, SECRET_NONE, cmd_list_add,
	  "add a member to a list" },
	{ "list", "remove", "LIST MEMBER", false, SECRET_NONE, cmd_list_remove,
	  "remove a member from a list" },
	{ "list", "show", "LIST", false, SECRET_NONE, cmd_list_show,
	  "show a list's owner and members" },
	{ "list", "list", NULL, false, SECRET_NONE, cmd_list_list,
	  "list the mailing lists, \"LIST OWNER\" a line" },
	{ "queue", "list", NULL, false, SECRET_NONE, cmd_queue_list,
	  "list the outbound queue (as mailq does)" },
	{ "queue", "show", "QUEUEID", false, SECRET_NONE, cmd_queue_show,
	  "show one queued message: its recipients, attempts and last replies" },
	{ "queue", "flush", NULL, false, SECRET_NONE, cmd_queue_flush,
	  "try every queued message now" },
	{ "queue", "retry", "QUEUEID", false, SECRET_NONE, cmd_queue_retry,
	  "try one queued message now" },
	{ "queue", "delete", "QUEUEID", false, SECRET_NONE, cmd_queue_delete,
	  "delete a queued message without notice to its sender (ALL: every message)" },
	{ "queue", "hold", "QUEUEID", false, SECRET_NONE, cmd_queue_hold,
	  "keep a message in the queue without trying it (ALL: every message)" },
	{ "queue", "release", "QUEUEID", false, SECRET_NONE, cmd_queue_release,
	  "let a held message be tried again (ALL: every message)" },
};

static const char secrets_doc[] =
	"Passwords and APOP secrets are read from stdin, never from the command line:\n"
	"on a terminal you are asked twice without echo; otherwise one line is read\n"
	"(at most 256 bytes; the trailing newline is removed).  Passwords are stored\n"
	"as argon2id hashes.  An APOP secret is weaker: it is stored in clear so that\n"
	"the server can check APOP digests, so never reuse the password as secret.\n";

static void cmd_line(FILE *out, const struct admin_cmd *c)
{
	char syn[64];

	snprintf(syn, sizeof(syn), "%s %s%s%s%s", c->group, c->verb,
		 c->has_clear ? " [--clear]" : "", c->operand ? " " : "",
		 c->operand ? c->operand : "");
	fprintf(out, "  %-32s %s\n", syn, c->summary);
}

void admin_usage(FILE *out)
{
	fprintf(out, "usage: yubin [-c FILE] COMMAND [ARGS]\n\n"
		     "Options:\n"
		     "  -c FILE   configuration file (default: $YUBIN_CONF, else "
		     "/etc/yubin/yubin.conf)\n"
		     "  -h, --help  show this help; COMMAND --help shows one command\n\n"
		     "Commands:\n");
	for (size_t i = 0; i < ARRAY_LEN(commands); i++)
		cmd_line(out, &commands[i]);
	fprintf(out, "\nMail client (no -c needed; accounts in ~/.config/yubin/client.conf):\n"
		     "  %-32s %s\n", "send --to ADDR [OPTIONS]",
		"compose a message (body from stdin or $EDITOR) and submit it");
	fprintf(out, "  %-32s %s\n", "fetch [--keep]", "new mail (POP3, or IMAP folders) into the account's Maildir");
	fprintf(out, "  %-32s %s\n", "ls [FOLDER] [--json]",
		"list a folder's messages (Maildir, or IMAP for an IMAP account)");
	fprintf(out, "  %-32s %s\n", "read N [--peek]", "show message N decoded");
	fprintf(out, "  %-32s %s\n", "save N PART [DIR]", "write one attachment to DIR");
	fprintf(out, "  %-32s %s\n", "mv N... FOLDER", "move messages to another folder");
	fprintf(out, "  %-32s %s\n", "rm N... [--expunge]", "move messages to Trash (or delete)");
	fprintf(out, "  %-32s %s\n", "flag N... --set|--clear FLAG",
		"seen, answered, flagged, deleted, draft or a keyword");
	fprintf(out, "  %-32s %s\n", "search [--from S] [--text S] ...",
		"the messages that match, listed as ls does");
	fprintf(out, "  %-32s %s\n", "folders [--json]", "the folders, with message counts");
	fprintf(out, "  %-32s %s\n", "reply N [--all]", "answer message N (quoted; Sent copy on IMAP)");
	fprintf(out, "  %-32s %s\n", "forward N --to ADDR [--inline]",
		"forward message N, attached whole or inline");
	fprintf(out, "  %-32s %s\n", "account add [NAME] [OPTIONS]",
		"add an account to client.conf (servers found by DNS SRV)");
	fprintf(out, "  %-32s %s\n", "account list [--json]", "the accounts of client.conf");
	fprintf(out, "  %-32s %s\n", "sendmail [-t] [-f ADDR] [--local] [RCPT...]",
		"the sendmail interface: a whole message on stdin (also as \"sendmail\");");
	fprintf(out, "  %-32s %s\n", "", "without an account (or --local) into the local yubind");
	fprintf(out, "\n%s", secrets_doc);
}

static void group_usage(FILE *out, const char *group)
{
	fprintf(out, "usage: yubin [-c FILE] %s VERB [ARGS]\n\n", group);
	for (size_t i = 0; i < ARRAY_LEN(commands); i++)
		if (strcmp(commands[i].group, group) == 0)
			cmd_line(out, &commands[i]);
	if (strcmp(group, "user") == 0)
		fprintf(out, "\n%s", secrets_doc);
}

static void command_usage(FILE *out, const struct admin_cmd *c)
{
	fprintf(out, "usage: yubin [-c FILE] %s %s%s%s%s\n\n", c->group, c->verb,
		c->has_clear ? " [--clear]" : "", c->operand ? " " : "",
		c->operand ? c->operand : "");
	cmd_line(out, c);
	if (c->secret != SECRET_NONE)
		fprintf(out, "\n%s", secrets_doc);
}

static bool is_help(const char *s)
{
	return strcmp(s, "-h") == 0 || strcmp(s, "--help") == 0;
}

int admin_parse(int argc, char **argv, struct admin_args *a)
{
	const char *group = argc > 0 ? argv[0] : NULL;
	bool group_ok = false, only_operands = false;
	const struct admin_cmd *c = NULL;

	memset(a, 0, sizeof(*a));
	if (!group) {
		admin_usage(stderr);
		return -1;
	}
	for (size_t i = 0; i < ARRAY_LEN(commands); i++)
		if (strcmp(commands[i].group, group) == 0)
			group_ok = true;
	if (!group_ok) {
		fprintf(stderr, "yubin: unknown command \"%s\"\n", group);
		admin_usage(stderr);
		return -1;
	}
	if (argc < 2 || is_help(argv[1])) {
		group_usage(argc < 2 ? stderr : stdout, group);
		return argc < 2 ? -1 : 0;
	}
	for (size_t i = 0; i < ARRAY_LEN(commands); i++)
		if (strcmp(commands[i].group, group) == 0 &&
		    strcmp(commands[i].verb, argv[1]) == 0)
			c = &commands[i];
	if (!c) {
		fprintf(stderr, "yubin: unknown command \"%s %s\"\n", group, argv[1]);
		group_usage(stderr, group);
		return -1;
	}
	/* any --help wins, wherever it is */
	for (int i = 2; i < argc && strcmp(argv[i], "--") != 0; i++) {
		if (is_help(argv[i])) {
			command_usage(stdout, c);
			return 0;
		}
	}
	for (int i = 2; i < argc; i++) {
		const char *s = argv[i];

		if (!only_operands && strcmp(s, "--") == 0) {
			only_operands = true;
		} else if (!only_operands && c->has_clear && strcmp(s, "--clear") == 0) {
			a->clear = true;
		} else if (!only_operands && s[0] == '-' && s[1] != '\0') {
			fprintf(stderr, "yubin: %s %s: unknown option %s\n", c->group, c->verb, s);
			command_usage(stderr, c);
			return -1;
		} else if (c->operand && !a->operand) {
			a->operand = s;
		} else if (c->operand && strchr(c->operand, ' ') && !a->operand2) {
			/* "ADDRESS [TARGET]": the second operand is optional */
			a->operand2 = s;
		} else {
			fprintf(stderr, "yubin: %s %s: unexpected argument \"%s\"\n", c->group,
				c->verb, s);
			command_usage(stderr, c);
			return -1;
		}
	}
	if (c->operand && (!a->operand || (strchr(c->operand, ' ') && !strchr(c->operand, '[') &&
					   !a->operand2))) {
		fprintf(stderr, "yubin: %s %s: missing %s\n", c->group, c->verb, c->operand);
		command_usage(stderr, c);
		return -1;
	}
	a->cmd = c;
	return 1;
}

/* ---- reading a secret ---- */

static struct termios saved_tty;
static volatile sig_atomic_t tty_changed;

static void restore_tty_and_die(int sig)
{
	if (tty_changed)
		tcsetattr(STDIN_FILENO, TCSAFLUSH, &saved_tty);
	signal(sig, SIG_DFL);
	raise(sig);
}

/* Read one line from stdin into buf (ADMIN_SECRET_MAX + 1 bytes) without
 * stdio buffering, strip "\n" or "\r\n".  0 ok, -1 with *why. */
static int read_line(char *buf, const char **why)
{
	size_t n = 0;
	bool got_any = false, too_long = false;

	for (;;) {
		char ch;
		ssize_t r = read(STDIN_FILENO, &ch, 1);

		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			*why = "cannot read stdin";
			return -1;
		}
		if (r == 0)
			break;
		got_any = true;
		if (ch == '\n')
			break;
		if (n < ADMIN_SECRET_MAX + 1)
			buf[n++] = ch;
		else
			too_long = true;
	}
	if (n > 0 && buf[n - 1] == '\r')
		n--;
	if (too_long || n > ADMIN_SECRET_MAX) {
		*why = "longer than 256 bytes";
		return -1;
	}
	buf[n] = '\0';
	if (!got_any || n == 0) {
		*why = "empty";
		return -1;
	}
	if (memchr(buf, '\0', n)) {
		*why = "contains a NUL byte";
		return -1;
	}
	return 0;
}

static int read_tty_line(const char *prompt, char *buf, const char **why)
{
	struct termios t;
	int r;

	if (tcgetattr(STDIN_FILENO, &saved_tty) < 0) {
		*why = "cannot read the terminal settings";
		return -1;
	}
	t = saved_tty;
	t.c_lflag &= ~(tcflag_t)ECHO;
	t.c_lflag |= ECHONL;
	signal(SIGINT, restore_tty_and_die);
	signal(SIGTERM, restore_tty_and_die);
	signal(SIGHUP, restore_tty_and_die);
	tty_changed = 1;
	if (tcsetattr(STDIN_FILENO, TCSAFLUSH, &t) < 0) {
		tty_changed = 0;
		*why = "cannot turn off the terminal echo";
		return -1;
	}
	fputs(prompt, stderr);
	fflush(stderr);
	r = read_line(buf, why);
	tcsetattr(STDIN_FILENO, TCSAFLUSH, &saved_tty);
	tty_changed = 0;
	signal(SIGINT, SIG_DFL);
	signal(SIGTERM, SIG_DFL);
	signal(SIGHUP, SIG_DFL);
	return r;
}

/* A secret from stdin as a heap string of ADMIN_SECRET_MAX + 2 bytes (wipe
 * with auth_wipe), or NULL after printing the error. */
static char *read_secret(const char *what, const char *prompt)
{
	char *a = xcalloc(1, ADMIN_SECRET_MAX + 2);
	const char *why = NULL;

	if (isatty(STDIN_FILENO)) {
		char *b = xcalloc(1, ADMIN_SECRET_MAX + 2);
		int r = read_tty_line(prompt, a, &why);

		if (r == 0)
			r = read_tty_line("Again: ", b, &why);
		if (r == 0 && strcmp(a, b) != 0) {
			why = "the two entries differ";
			r = -1;
		}
		auth_wipe(b, ADMIN_SECRET_MAX + 2);
		if (r < 0)
			goto fail;
	} else if (read_line(a, &why) < 0) {
		goto fail;
	}
	return a;
fail:
	fprintf(stderr, "yubin: %s: %s\n", what, why);
	auth_wipe(a, ADMIN_SECRET_MAX + 2);
	return NULL;
}

/* ---- handlers ---- */

static int fail(char *err)
{
	fprintf(stderr, "yubin: %s\n", err);
	free(err);
	return ADMIN_EXIT_ERROR;
}

static void print_line(const char *s, void *arg)
{
	fprintf(arg, "%s\n", s);
}

static int cmd_domain_add(struct store *st, const struct admin_args *a, char *secret)
{
	char *err = NULL;

	return store_domain_add(st, a->operand, &err) < 0 ? fail(err) : ADMIN_EXIT_OK;
}

static int cmd_domain_del(struct store *st, const struct admin_args *a, char *secret)
{
	char *err = NULL;

	return store_domain_del(st, a->operand, &err) < 0 ? fail(err) : ADMIN_EXIT_OK;
}

static int cmd_domain_list(struct store *st, const struct admin_args *a, char *secret)
{
	char *err = NULL;

	return store_domain_list(st, print_line, stdout, &err) < 0 ? fail(err) : ADMIN_EXIT_OK;
}

static int cmd_user_list(struct store *st, const struct admin_args *a, char *secret)
{
	char *err = NULL;

	return store_account_list(st, print_line, stdout, &err) < 0 ? fail(err) : ADMIN_EXIT_OK;
}

static int cmd_user_del(struct store *st, const struct admin_args *a, char *secret)
{
	char *err = NULL;

	return store_account_del(st, a->operand, &err) < 0 ? fail(err) : ADMIN_EXIT_OK;
}

static char *hash_or_complain(const char *password)
{
	char *h = auth_hash_password(password);

	if (!h)
		fprintf(stderr, "yubin: cannot hash the password: out of memory\n");
	return h;
}

/* The SCRAM-SHA-256 keys go with every password (SMTP AUTH SCRAM). */
static int set_scram(struct store *st, const char *address, const char *password, char **err)
{
	char *sc = scram_secret_make(password, 0);
	if (!sc) {
		*err = xstrdup("cannot make the SCRAM-SHA-256 keys");
		return -1;
	}
	int r = store_account_set_scram(st, address, sc, err);
	auth_wipe(sc, strlen(sc));
	return r;
}

static int cmd_user_add(struct store *st, const struct admin_args *a, char *secret)
{
	char *err = NULL, *h = hash_or_complain(secret);
	int r;

	if (!h)
		return ADMIN_EXIT_ERROR;
	r = store_account_add(st, a->operand, h, &err);
	free(h);
	if (r == 0)
		r = set_scram(st, a->operand, secret, &err);
	return r < 0 ? fail(err) : ADMIN_EXIT_OK;
}

static int cmd_user_passwd(struct store *st, const struct admin_args *a, char *secret)
{
	char *err = NULL, *h = hash_or_complain(secret);
	int r;

	if (!h)
		return ADMIN_EXIT_ERROR;
	r = store_account_set_password(st, a->operand, h, &err);
	free(h);
	if (r == 0)
		r = set_scram(st, a->operand, secret, &err);
	return r < 0 ? fail(err) : ADMIN_EXIT_OK;
}

static int cmd_user_apop(struct store *st, const struct admin_args *a, char *secret)
{
	char *err = NULL;

	return store_account_set_apop(st, a->operand, a->clear ? NULL : secret, &err) < 0 ?
	       fail(err) : ADMIN_EXIT_OK;
}

static int cmd_user_quota(struct store *st, const struct admin_args *a, char *secret)
{
	char *err = NULL, *end = NULL;
	(void)secret;

	errno = 0;
	unsigned long long v = strtoull(a->operand2, &end, 10);
	unsigned long long mul = 1;
	if (end && *end) {
		if (strcmp(end, "k") == 0 || strcmp(end, "K") == 0)
			mul = 1024ULL;
		else if (strcmp(end, "M") == 0)
			mul = 1024ULL * 1024;
		else if (strcmp(end, "G") == 0)
			mul = 1024ULL * 1024 * 1024;
		else
			mul = 0;
	}
	if (errno || end == a->operand2 || a->operand2[0] == '-' || mul == 0 ||
	    v > (1ULL << 50) / mul) {
		fprintf(stderr, "yubin: user quota: \"%s\" is not a size (say 500M, 2G or 0)\n",
			a->operand2);
		return ADMIN_EXIT_USAGE;
	}
	if (store_account_set_quota(st, a->operand, (int64_t)(v * mul), &err) < 0)
		return fail(err);
	struct account acct;
	int64_t quota = 0, used = 0;
	if (store_account_find(st, a->operand, &acct) == 1) {
		(void)store_account_quota(st, acct.id, &quota, &used);
		account_free(&acct);
	}
	printf("%s: quota %lld bytes, %lld used\n", a->operand, (long long)quota, (long long)used);
	return ADMIN_EXIT_OK;
}

/* ---- routes ---- */

static int cmd_route_add(struct store *st, const struct admin_args *a, char *secret)
{
	char *err = NULL, host[256];
	const char *spec = a->operand2;
	bool brackets = spec[0] == '[';
	const char *h = spec + (brackets ? 1 : 0);
	const char *end = brackets ? strchr(h, ']') : strrchr(h, ':');
	const char *colon = brackets ? (end ? strchr(end, ':') : NULL) : end;
	(void)secret;
	if (!end || !colon || (brackets && colon != end + 1) || end == h ||
	    (size_t)(end - h) >= sizeof host) {
		fprintf(stderr, "yubin: route add: \"%s\" is not HOST:PORT or [HOST]:PORT\n", spec);
		return ADMIN_EXIT_USAGE;
	}
	char *pend;
	long port = strtol(colon + 1, &pend, 10);
	if (*pend || port < 1 || port > 65535) {
		fprintf(stderr, "yubin: route add: bad port in \"%s\"\n", spec);
		return ADMIN_EXIT_USAGE;
	}
	snprintf(host, sizeof host, "%.*s", (int)(end - h), h);
	if (store_route_set(st, a->operand, host, (int)port, !brackets, &err) < 0)
		return fail(err);
	printf("route %s -> %s%s%s:%ld (picked up by yubind at its next queue run)\n", a->operand,
	       brackets ? "[" : "", host, brackets ? "]" : "", port);
	return ADMIN_EXIT_OK;
}

static int cmd_route_del(struct store *st, const struct admin_args *a, char *secret)
{
	char *err = NULL;
	(void)secret;
	int r = store_route_del(st, a->operand, &err);
	if (r < 0)
		return fail(err);
	if (r == 0) {
		fprintf(stderr, "yubin: route del: no route for %s\n", a->operand);
		return ADMIN_EXIT_ERROR;
	}
	return ADMIN_EXIT_OK;
}

static int cmd_route_list(struct store *st, const struct admin_args *a, char *secret)
{
	struct store_route *v;
	size_t n;
	char *err = NULL;
	(void)a;
	(void)secret;
	if (store_route_list(st, &v, &n, &err) < 0)
		return fail(err);
	for (size_t i = 0; i < n; i++)
		printf("%s %s%s%s:%d\n", v[i].domain, v[i].mx ? "" : "[", v[i].host,
		       v[i].mx ? "" : "]", v[i].port);
	free(v);
	return ADMIN_EXIT_OK;
}

/* ---- aliases and lists ---- */

static int cmd_alias_add(struct store *st, const struct admin_args *a, char *secret)
{
	char *err = NULL;
	(void)secret;
	if (store_alias_add(st, a->operand, a->operand2, &err) < 0)
		return fail(err);
	printf("alias %s -> %s\n", a->operand, a->operand2);
	return ADMIN_EXIT_OK;
}

static int cmd_alias_del(struct store *st, const struct admin_args *a, char *secret)
{
	char *err = NULL;
	(void)secret;
	int r = store_alias_del(st, a->operand, a->operand2, &err);
	if (r < 0)
		return fail(err);
	if (r == 0) {
		fprintf(stderr, "yubin: alias del: no alias %s%s%s (see yubin alias list)\n",
			a->operand, a->operand2 ? " -> " : "", a->operand2 ? a->operand2 : "");
		return ADMIN_EXIT_ERROR;
	}
	return ADMIN_EXIT_OK;
}

static int print_pairs(int (*fn)(struct store *, struct store_pair **, size_t *, char **),
		       struct store *st)
{
	struct store_pair *v;
	size_t n;
	char *err = NULL;
	if (fn(st, &v, &n, &err) < 0)
		return fail(err);
	for (size_t i = 0; i < n; i++)
		printf("%s %s\n", v[i].a, v[i].b);
	store_pairs_free(v, n);
	return ADMIN_EXIT_OK;
}

static int cmd_alias_list(struct store *st, const struct admin_args *a, char *secret)
{
	(void)a;
	(void)secret;
	return print_pairs(store_alias_list, st);
}

static int cmd_list_create(struct store *st, const struct admin_args *a, char *secret)
{
	char *err = NULL;
	(void)secret;
	if (store_list_add(st, a->operand, a->operand2, &err) < 0)
		return fail(err);
	printf("list %s created, owner %s\n", a->operand, a->operand2);
	return ADMIN_EXIT_OK;
}

static int cmd_list_delete(struct store *st, const struct admin_args *a, char *secret)
{
	char *err = NULL;
	(void)secret;
	int r = store_list_del(st, a->operand, &err);
	if (r < 0)
		return fail(err);
	if (r == 0) {
		fprintf(stderr, "yubin: list delete: no list %s\n", a->operand);
		return ADMIN_EXIT_ERROR;
	}
	return ADMIN_EXIT_OK;
}

static int list_member(const struct admin_args *a, struct store *st, bool add)
{
	char *err = NULL;
	int r = store_list_member(st, a->operand, a->operand2, add, &err);
	if (r < 0)
		return fail(err);
	if (r == 0) {
		fprintf(stderr, "yubin: list %s: %s\n", add ? "add" : "remove",
			add ? "no such list (yubin list create LIST OWNER makes one), or a member "
			      "already"
			    : "no such list or not a member");
		return ADMIN_EXIT_ERROR;
	}
	return ADMIN_EXIT_OK;
}

static int cmd_list_add(struct store *st, const struct admin_args *a, char *secret)
{
	(void)secret;
	return list_member(a, st, true);
}

static int cmd_list_remove(struct store *st, const struct admin_args *a, char *secret)
{
	(void)secret;
	return list_member(a, st, false);
}

static int cmd_list_show(struct store *st, const struct admin_args *a, char *secret)
{
	char *err = NULL, *owner;
	char **v;
	size_t n;
	(void)secret;
	int r = store_list_members(st, a->operand, &owner, &v, &n, &err);
	if (r < 0)
		return fail(err);
	if (r == 0) {
		fprintf(stderr, "yubin: list show: no list %s\n", a->operand);
		return ADMIN_EXIT_ERROR;
	}
	printf("list: %s\nowner: %s\nmembers: %zu\n", a->operand, owner, n);
	for (size_t i = 0; i < n; i++) {
		printf("  %s\n", v[i]);
		free(v[i]);
	}
	free(v);
	free(owner);
	return ADMIN_EXIT_OK;
}

static int cmd_list_list(struct store *st, const struct admin_args *a, char *secret)
{
	(void)a;
	(void)secret;
	return print_pairs(store_list_list, st);
}

/* ---- the queue ---- */

/* Tell the daemon (its pid is in DATA_DIR/yubind.lock) to look at the
 * queue now; harmless when none runs. */
static void poke_daemon(struct store *st)
{
	char path[4096], buf[32] = "";
	snprintf(path, sizeof path, "%s/yubind.lock", store_data_dir(st));
	FILE *f = fopen(path, "r");
	if (!f)
		return;
	if (fgets(buf, sizeof buf, f)) {
		long pid = strtol(buf, NULL, 10);
		if (pid > 1 && kill((pid_t)pid, SIGUSR1) == 0)
			printf("yubind (pid %ld) asked to run the queue\n", pid);
	}
	fclose(f);
}

static const char *qid_arg(const struct admin_args *a)
{
	return a->operand && strcmp(a->operand, "ALL") != 0 ? a->operand : NULL;
}

static int cmd_queue_list(struct store *st, const struct admin_args *a, char *secret)
{
	struct queue_entry *v;
	size_t n;
	char *err = NULL;
	(void)a;
	(void)secret;
	if (store_queue_list(st, NULL, &v, &n, &err) < 0)
		return fail(err);
	if (n == 0) {
		printf("Mail queue is empty\n");
		free(v);
		return ADMIN_EXIT_OK;
	}
	printf("%-17s %9s %-24s %s\n", "-Queue ID-", "--Size--", "----Arrival Time----",
	       "-Sender/Recipient-------");
	size_t msgs = 0;
	int64_t bytes = 0;
	for (size_t i = 0; i < n; i++) {
		if (i == 0 || v[i].queue_id != v[i - 1].queue_id) {
			char date[64];
			rfc5322_date(v[i].created, date, sizeof date);
			if (i > 0)
				printf("\n");
			printf("%-16s%c %9lld %-24.24s %s\n", v[i].qid, v[i].hold ? '!' : ' ',
			       (long long)(v[i].size - v[i].skip), date,
			       v[i].sender[0] ? v[i].sender : "MAILER-DAEMON");
			msgs++;
			bytes += v[i].size - v[i].skip;
		}
		if (v[i].last_reply)
			printf("%53s(%s)\n", "", v[i].last_reply);
		printf("%53s%s\n", "", v[i].addr);
	}
	printf("\n-- %lld Kbytes in %zu Request%s.\n", (long long)(bytes + 1023) / 1024, msgs,
	       msgs == 1 ? "" : "s");
	queue_entries_free(v, n);
	return ADMIN_EXIT_OK;
}

static int cmd_queue_show(struct store *st, const struct admin_args *a, char *secret)
{
	struct queue_entry *v;
	size_t n;
	char *err = NULL;
	(void)secret;
	if (store_queue_list(st, a->operand, &v, &n, &err) < 0)
		return fail(err);
	if (n == 0) {
		fprintf(stderr, "yubin: queue show: %s is not in the queue\n", a->operand);
		free(v);
		return ADMIN_EXIT_ERROR;
	}
	char date[64];
	rfc5322_date(v[0].created, date, sizeof date);
	printf("queue id: %s%s\nsender: <%s>\nsize: %lld\narrival: %s\nfile: %s\n", v[0].qid,
	       v[0].hold ? " (held)" : "", v[0].sender, (long long)(v[0].size - v[0].skip), date,
	       v[0].path);
	for (size_t i = 0; i < n; i++) {
		char next[64];
		rfc5322_date(v[i].next_try, next, sizeof next);
		printf("recipient: <%s> attempts=%d next=%s\n", v[i].addr, v[i].attempts, next);
		if (v[i].last_reply)
			printf("  last reply: %s\n", v[i].last_reply);
	}
	queue_entries_free(v, n);
	return ADMIN_EXIT_OK;
}

static int queue_count(int r, char *err, const char *what, const char *qid)
{
	if (r < 0)
		return fail(err);
	if (r == 0 && qid) {
		fprintf(stderr, "yubin: queue: %s is not in the queue (or already %s)\n", qid, what);
		return ADMIN_EXIT_ERROR;
	}
	printf("%d %s\n", r, what);
	return ADMIN_EXIT_OK;
}

static int cmd_queue_flush(struct store *st, const struct admin_args *a, char *secret)
{
	char *err = NULL;
	(void)a;
	(void)secret;
	int r = store_queue_retry(st, NULL, now_unix(), &err);
	if (r < 0)
		return fail(err);
	printf("%d recipient(s) due now\n", r);
	poke_daemon(st);
	return ADMIN_EXIT_OK;
}

static int cmd_queue_retry(struct store *st, const struct admin_args *a, char *secret)
{
	char *err = NULL;
	(void)secret;
	int r = store_queue_retry(st, qid_arg(a), now_unix(), &err);
	int x = queue_count(r, err, "recipient(s) due now", qid_arg(a));
	if (x == ADMIN_EXIT_OK)
		poke_daemon(st);
	return x;
}

static int cmd_queue_delete(struct store *st, const struct admin_args *a, char *secret)
{
	char *err = NULL;
	(void)secret;
	int r = store_queue_delete(st, qid_arg(a), &err);
	return queue_count(r, err, "message(s) deleted", qid_arg(a));
}

static int cmd_queue_hold(struct store *st, const struct admin_args *a, char *secret)
{
	char *err = NULL;
	(void)secret;
	int r = store_queue_hold(st, qid_arg(a), true, &err);
	return queue_count(r, err, "message(s) held", qid_arg(a));
}

static int cmd_queue_release(struct store *st, const struct admin_args *a, char *secret)
{
	char *err = NULL;
	(void)secret;
	int r = store_queue_hold(st, qid_arg(a), false, &err);
	int x = queue_count(r, err, "message(s) released", qid_arg(a));
	if (x == ADMIN_EXIT_OK)
		poke_daemon(st);
	return x;
}

int admin_run(struct store *st, const struct admin_args *a)
{
	const struct admin_cmd *c = a->cmd;
	char *secret = NULL;
	int r;

	if (c->secret != SECRET_NONE && !a->clear) {
		/* check the account first so that nobody types a password for a typo */
		if (strcmp(c->verb, "add") != 0) {
			struct account acc;
			int found = store_account_find(st, a->operand, &acc);

			if (found < 0) {
				fprintf(stderr, "yubin: account %s: cannot read the store\n",
					a->operand);
				return ADMIN_EXIT_ERROR;
			}
			if (found == 0) {
				fprintf(stderr, "yubin: account %s: no such account\n",
					a->operand);
				return ADMIN_EXIT_ERROR;
			}
			account_free(&acc);
		}
		if (c->secret == SECRET_APOP)
			secret = read_secret("APOP secret", "APOP secret: ");
		else
			secret = read_secret("password", "Password: ");
		if (!secret)
			return ADMIN_EXIT_ERROR;
	}
	r = c->run(st, a, secret);
	if (secret)
		auth_wipe(secret, ADMIN_SECRET_MAX + 2);
	return r;
}
