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
			a->operand2 = s;
		} else {
			fprintf(stderr, "yubin: %s %s: unexpected argument \"%s\"\n", c->group,
				c->verb, s);
			command_usage(stderr, c);
			return -1;
		}
	}
	if (c->operand && (!a->operand || (strchr(c->operand, ' ') && !a->operand2))) {
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

static int cmd_user_add(struct store *st, const struct admin_args *a, char *secret)
{
	char *err = NULL, *h = hash_or_complain(secret);
	int r;

	if (!h)
		return ADMIN_EXIT_ERROR;
	r = store_account_add(st, a->operand, h, &err);
	free(h);
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
