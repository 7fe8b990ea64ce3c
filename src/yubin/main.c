/* main.c - the yubin CLI: global options, configuration, privileges.
 *
 *   yubin [-c FILE] COMMAND ...
 *
 * Exit codes: 0 ok, 1 error ("yubin: ..." on stderr), 2 bad usage. */
#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "auth/auth.h"
#include "core/conf.h"
#include "core/log.h"
#include "core/util.h"
#include "store/store.h"
#include "yubin/admin.h"
#include "yubin/client.h"

#define DEFAULT_CONF "/etc/yubin/yubin.conf"

/* The exit status r, or an error when what we printed did not get out. */
static int flush_stdout(int r)
{
	if (fflush(stdout) != 0 || ferror(stdout)) {
		fprintf(stderr, "yubin: cannot write to stdout\n");
		return ADMIN_EXIT_ERROR;
	}
	return r;
}

/* When run as root and the configuration names a user, become that user so
 * that every file created in data_dir belongs to the daemon.  data_dir is
 * created first (0750, owned by that user) if missing.  0 ok, -1 printed. */
static int drop_privileges(const struct conf *cfg)
{
	struct passwd *pw;
	uid_t uid;
	gid_t gid;
	char *name;

	if (geteuid() != 0)
		return 0;
	if (!cfg->user || !cfg->user[0]) {
		fprintf(stderr, "yubin: warning: running as root and %s sets no user: files "
			"created in %s will belong to root, which yubind (refusing to run as "
			"root) cannot write\n", cfg->path, cfg->data_dir);
		return 0;
	}
	errno = 0;
	pw = getpwnam(cfg->user);
	if (!pw) {
		fprintf(stderr, "yubin: %s: user: no such user \"%s\"%s%s\n", cfg->path,
			cfg->user, errno ? ": " : "", errno ? strerror(errno) : "");
		return -1;
	}
	uid = pw->pw_uid;
	gid = pw->pw_gid;
	name = xstrdup(pw->pw_name);

	if (mkdir(cfg->data_dir, 0750) == 0) {
		if (chown(cfg->data_dir, uid, gid) < 0) {
			fprintf(stderr, "yubin: cannot chown %s to %s: %s\n", cfg->data_dir, name,
				strerror(errno));
			free(name);
			return -1;
		}
	} else if (errno != EEXIST) {
		fprintf(stderr, "yubin: cannot create %s: %s\n", cfg->data_dir, strerror(errno));
		free(name);
		return -1;
	}
	if (setgid(gid) < 0 || initgroups(name, gid) < 0 || setuid(uid) < 0) {
		fprintf(stderr, "yubin: cannot become user %s: %s\n", name, strerror(errno));
		free(name);
		return -1;
	}
	free(name);
	/* make sure there is no way back */
	if (uid != 0 && setuid(0) == 0) {
		fprintf(stderr, "yubin: privileges were not dropped\n");
		return -1;
	}
	return 0;
}

int main(int argc, char **argv)
{
	const char *conf_path = getenv("YUBIN_CONF");
	struct admin_args args;
	struct conf cfg;
	struct store *st = NULL;
	char *err = NULL;
	int i, r;

	log_init("yubin", LOG_WARN);
	{
		const char *b0 = strrchr(argv[0], '/');
		b0 = b0 ? b0 + 1 : argv[0];
		if (strcmp(b0, "sendmail") == 0)
			return flush_stdout(client_sendmail(argc, argv));
	}
	/* global options, up to the command word */
	for (i = 1; i < argc && argv[i][0] == '-'; i++) {
		if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
			admin_usage(stdout);
			return flush_stdout(ADMIN_EXIT_OK);
		} else if (strcmp(argv[i], "-c") == 0 && i + 1 < argc) {
			conf_path = argv[++i];
		} else if (strncmp(argv[i], "-c", 2) == 0 && argv[i][2] != '\0') {
			conf_path = argv[i] + 2;
		} else if (strcmp(argv[i], "--") == 0) {
			i++;
			break;
		} else {
			fprintf(stderr, "yubin: %s: %s\n", argv[i],
				strcmp(argv[i], "-c") == 0 ? "missing FILE" : "unknown option");
			admin_usage(stderr);
			return ADMIN_EXIT_USAGE;
		}
	}
	/* The mail client's commands need no server configuration. */
	static const struct {
		const char *name;
		int (*run)(int argc, char **argv);
	} client_cmds[] = {
		{"send", client_send},        {"fetch", client_fetch},     {"ls", client_mail_cmd},
		{"read", client_mail_cmd},    {"save", client_mail_cmd},   {"mv", client_mail_cmd},
		{"rm", client_mail_cmd},      {"flag", client_mail_cmd},   {"search", client_mail_cmd},
		{"folders", client_mail_cmd}, {"reply", client_mail_cmd},  {"forward", client_mail_cmd},
	};
	for (size_t k = 0; i < argc && k < sizeof client_cmds / sizeof client_cmds[0]; k++)
		if (strcmp(argv[i], client_cmds[k].name) == 0)
			return flush_stdout(client_cmds[k].run(argc - i, argv + i));
	if (i < argc && strcmp(argv[i], "sendmail") == 0) {
		/* -c FILE: yubind's config, where sendmail finds the local socket */
		if (conf_path && conf_path[0])
			setenv("YUBIN_CONF", conf_path, 1);
		return flush_stdout(client_sendmail(argc - i, argv + i));
	}
	if (i < argc && strcmp(argv[i], "account") == 0)
		return flush_stdout(client_account_cmd(argc - i, argv + i));
	/* Called as mailq (a symlink): the queue listing, as Postfix's. */
	const char *base = strrchr(argv[0], '/');
	base = base ? base + 1 : argv[0];
	static char *mailq_argv[] = {"queue", "list", NULL};
	if (strcmp(base, "mailq") == 0)
		r = admin_parse(2, mailq_argv, &args);
	else
		r = admin_parse(argc - i, argv + i, &args);
	if (r <= 0)
		return r == 0 ? flush_stdout(ADMIN_EXIT_OK) : ADMIN_EXIT_USAGE;
	if (!conf_path || !conf_path[0])
		conf_path = DEFAULT_CONF;

	conf_defaults(&cfg);
	if (conf_load(&cfg, conf_path, &err) < 0 || conf_check(&cfg, &err) < 0) {
		fprintf(stderr, "yubin: %s\n", err);
		free(err);
		conf_free(&cfg);
		return ADMIN_EXIT_ERROR;
	}
	/* files we create (yubin.db, its WAL) are not for everybody */
	umask(027);
	if (drop_privileges(&cfg) < 0 || auth_init() < 0) {
		conf_free(&cfg);
		return ADMIN_EXIT_ERROR;
	}
	if (store_open(cfg.data_dir, &st, &err) < 0) {
		fprintf(stderr, "yubin: %s\n", err);
		free(err);
		conf_free(&cfg);
		return ADMIN_EXIT_ERROR;
	}
	r = admin_run(st, &args);
	store_close(&st);
	conf_free(&cfg);
	return flush_stdout(r);
}
