/* admin.h - the administration commands of the yubin CLI (domains, users).
 *
 * main.c parses the global options, then admin_parse() picks the command so
 * that "--help" and usage errors are answered before any configuration is
 * read; main.c then loads the configuration, drops privileges, opens the
 * store and calls admin_run(). */
#ifndef YUBIN_YUBIN_ADMIN_H
#define YUBIN_YUBIN_ADMIN_H

#include <stdbool.h>
#include <stdio.h>

struct store;
struct admin_cmd;

/* What the command line asked for. */
struct admin_args {
	const struct admin_cmd *cmd;
	const char *operand;    /* NAME or ADDRESS, NULL for list commands */
	const char *operand2;   /* user quota: SIZE */
	bool clear;             /* user apop --clear */
};

/* Exit codes. */
enum { ADMIN_EXIT_OK = 0, ADMIN_EXIT_ERROR = 1, ADMIN_EXIT_USAGE = 2 };

/* Top-level usage (every command). */
void admin_usage(FILE *out);
/* Parse "GROUP VERB [--clear] [OPERAND]" (argv[0] is GROUP).  1: a is ready
 * to run; 0: help was printed on stdout (exit 0); -1: usage was printed on
 * stderr (exit 2). */
int admin_parse(int argc, char **argv, struct admin_args *a);
/* Run the parsed command; returns the exit code.  Errors are printed as
 * "yubin: ..." on stderr. */
int admin_run(struct store *st, const struct admin_args *a);

#endif
