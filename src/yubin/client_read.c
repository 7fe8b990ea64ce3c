/* client_read.c - the commands that read and file mail, written once
 * against client/mbox.h (the local Maildir or the account's IMAP server):
 *
 *   yubin ls [FOLDER] [--json]
 *   yubin read N [--folder F] [--headers] [--width N] [--peek]
 *   yubin save N PART [DIR] [--folder F]
 *   yubin mv N... FOLDER [--folder F]
 *   yubin rm N... [--expunge] [--folder F]
 *   yubin flag N... [--set FLAG]... [--clear FLAG]... [--folder F]
 *   yubin search [--folder F] [--from S] [--to S] [--subject S] [--body S]
 *                [--text S] [--since YYYY-MM-DD] [--before YYYY-MM-DD]
 *                [--seen|--unseen] [--flagged|--unflagged] [--json]
 *   yubin folders [--json]
 *
 * and on all of them: --account NAME, --maildir DIR (that Maildir, whatever
 * the account says), --local (the account's Maildir even when its incoming
 * server is IMAP), the account on the command line (--server URL, --tls,
 * --user, --password-cmd, --cafile, --pin) and --trace (the IMAP dialogue
 * on stderr).  One option table serves every command; each option says
 * which commands take it.
 *
 * N is the number ls prints.  read renders with mail/reader.c (decoded,
 * terminal escapes neutralised) and marks the message \Seen unless --peek;
 * save writes one part's decoded bytes into DIR under the last component
 * of its own name (never hidden, never outside DIR, never over a file).
 *
 * Exit codes: 0 ok, 1 failed, 2 bad usage, 75 (EX_TEMPFAIL) when the
 * store says trying again later may work. */
#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "client/account.h"
#include "client/mbox.h"
#include "core/buf.h"
#include "core/util.h"
#include "mail/reader.h"
#include "yubin/client.h"

#define EXIT_USAGE 2
#define EXIT_TEMPFAIL 75

enum cmd {
	C_LS, C_READ, C_SAVE, C_MV, C_RM, C_FLAG, C_SEARCH, C_FOLDERS, C_REPLY, C_FORWARD,
	C_COUNT
};

#define B(c) (1u << (c))
#define ALL ((1u << C_COUNT) - 1)
#define IN_FOLDER (ALL & ~B(C_FOLDERS))
#define LISTS (B(C_LS) | B(C_SEARCH) | B(C_FOLDERS))

enum opt {
	O_ACCOUNT, O_MAILDIR, O_LOCAL, O_SERVER, O_TLS, O_USER, O_PASSWORD_CMD, O_CAFILE, O_PIN,
	O_TRACE, O_JSON, O_FOLDER, O_HEADERS, O_WIDTH, O_PEEK, O_EXPUNGE, O_SET, O_CLEAR,
	O_FROM, O_TO, O_SUBJECT, O_BODY, O_TEXT, O_SINCE, O_BEFORE, O_SEEN, O_UNSEEN,
	O_FLAGGED, O_UNFLAGGED, O_ALL, O_INLINE, O_NO_QUOTE, O_DRY_RUN, O_NO_COPY, O_NO_SIGNATURE, O_CC, O_COUNT
};

static const struct opt_def {
	const char *name;
	enum opt id;
	bool valued;     /* takes a value (--set, --clear, --to and --cc keep every one) */
	unsigned cmds;   /* B(C_...) of the commands that take it */
} opt_defs[] = {
	{"--account", O_ACCOUNT, true, ALL},
	{"--maildir", O_MAILDIR, true, ALL},
	{"--local", O_LOCAL, false, ALL},
	{"--server", O_SERVER, true, ALL},
	{"--tls", O_TLS, true, ALL},
	{"--user", O_USER, true, ALL},
	{"--password-cmd", O_PASSWORD_CMD, true, ALL},
	{"--cafile", O_CAFILE, true, ALL},
	{"--pin", O_PIN, true, ALL},
	{"--trace", O_TRACE, false, ALL},
	{"--json", O_JSON, false, LISTS},
	{"--folder", O_FOLDER, true, IN_FOLDER},
	{"--headers", O_HEADERS, false, B(C_READ)},
	{"--width", O_WIDTH, true, B(C_READ)},
	{"--peek", O_PEEK, false, B(C_READ)},
	{"--expunge", O_EXPUNGE, false, B(C_RM)},
	{"--set", O_SET, true, B(C_FLAG)},
	{"--clear", O_CLEAR, true, B(C_FLAG)},
	{"--from", O_FROM, true, B(C_SEARCH)},
	{"--to", O_TO, true, B(C_SEARCH) | B(C_FORWARD)},
	{"--cc", O_CC, true, B(C_FORWARD)},
	{"--all", O_ALL, false, B(C_REPLY)},
	{"--no-quote", O_NO_QUOTE, false, B(C_REPLY)},
	{"--inline", O_INLINE, false, B(C_FORWARD)},
	{"--dry-run", O_DRY_RUN, false, B(C_REPLY) | B(C_FORWARD)},
	{"--no-copy", O_NO_COPY, false, B(C_REPLY) | B(C_FORWARD)},
	{"--no-signature", O_NO_SIGNATURE, false, B(C_REPLY) | B(C_FORWARD)},
	{"--subject", O_SUBJECT, true, B(C_SEARCH)},
	{"--body", O_BODY, true, B(C_SEARCH)},
	{"--text", O_TEXT, true, B(C_SEARCH)},
	{"--since", O_SINCE, true, B(C_SEARCH)},
	{"--before", O_BEFORE, true, B(C_SEARCH)},
	{"--seen", O_SEEN, false, B(C_SEARCH)},
	{"--unseen", O_UNSEEN, false, B(C_SEARCH)},
	{"--flagged", O_FLAGGED, false, B(C_SEARCH)},
	{"--unflagged", O_UNFLAGGED, false, B(C_SEARCH)},
};

struct args {
	const char *val[O_COUNT];   /* the value (last one given), or "" for a switch */
	const char **set, **clear;  /* every --set and --clear */
	size_t nset, nclear;
	const char **to, **cc;      /* every --to and --cc (forward) */
	size_t nto, ncc;
	const char **pos;           /* operands */
	size_t npos;
};

struct ctx;

struct command {
	const char *name;
	enum cmd id;
	size_t min_pos, max_pos;
	const char *synopsis;
	int (*run)(struct ctx *c);
};

struct ctx {
	const struct command *cmd;
	struct args a;
	struct mbox *mb;
	const char *folder;         /* --folder (or ls FOLDER); NULL: INBOX */
	struct account acct;        /* the account open_store used, when it used one */
	bool have_acct;
};

static const char common_usage[] =
	"Where the mail is (default: the account's; IMAP when its incoming server is):\n"
	"  --account NAME   an account of client.conf     --maildir DIR  this Maildir\n"
	"  --local          the account's Maildir even for an IMAP account\n"
	"  --server URL     imap:// imaps:// pop3:// pop3s:// HOST[:PORT]\n"
	"  --tls starttls|tls|none  --user USER  --password-cmd CMD  --cafile FILE\n"
	"  --pin SHA256     --trace (the IMAP dialogue on stderr)\n"
	"N is a message number as yubin ls prints it.\n";

/* ---- messages ---- */

static void say(const struct ctx *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void say(const struct ctx *c, const char *fmt, ...)
{
	va_list ap;
	fprintf(stderr, "yubin %s: ", c->cmd->name);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

static int usage_error(const struct ctx *c, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static int usage_error(const struct ctx *c, const char *fmt, ...)
{
	va_list ap;
	fprintf(stderr, "yubin %s: ", c->cmd->name);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\nusage: yubin %s\n", c->cmd->synopsis);
	return EXIT_USAGE;
}

/* An operation's failure: its sentence, and the exit code. */
static int op_failed(const struct ctx *c, bool temp, const char *err)
{
	say(c, "%s", err[0] ? err : "failed");
	return temp ? EXIT_TEMPFAIL : 1;
}

/* ---- options ---- */

/* 0 ok, 1 help printed, 2 bad usage (printed). */
static int parse_args(struct ctx *c, int argc, char **argv)
{
	struct args *a = &c->a;
	bool only_operands = false;
	memset(a, 0, sizeof *a);
	size_t cap = argc > 0 ? (size_t)argc : 1;
	a->pos = xreallocarray(NULL, cap, sizeof *a->pos);
	a->set = xreallocarray(NULL, cap, sizeof *a->set);
	a->clear = xreallocarray(NULL, cap, sizeof *a->clear);
	a->to = xreallocarray(NULL, cap, sizeof *a->to);
	a->cc = xreallocarray(NULL, cap, sizeof *a->cc);
	for (int i = 1; i < argc; i++) {
		const char *s = argv[i];
		if (only_operands || s[0] != '-' || s[1] == '\0') {
			if (a->npos >= c->cmd->max_pos)
				return usage_error(c, "unexpected %s", s);
			a->pos[a->npos++] = s;
			continue;
		}
		if (strcmp(s, "--") == 0) {
			only_operands = true;
			continue;
		}
		if (strcmp(s, "-h") == 0 || strcmp(s, "--help") == 0) {
			printf("usage: yubin %s\n%s", c->cmd->synopsis, common_usage);
			return 1;
		}
		const struct opt_def *d = NULL;
		for (size_t k = 0; k < ARRAY_LEN(opt_defs) && !d; k++)
			if (strcmp(s, opt_defs[k].name) == 0)
				d = &opt_defs[k];
		if (d == NULL)
			return usage_error(c, "unknown option %s", s);
		if (!(d->cmds & B(c->cmd->id)))
			return usage_error(c, "%s is not an option of %s", s, c->cmd->name);
		const char *v = "";
		if (d->valued) {
			if (i + 1 >= argc)
				return usage_error(c, "a value is missing after %s", s);
			v = argv[++i];
		}
		a->val[d->id] = v;
		if (d->id == O_SET)
			a->set[a->nset++] = v;
		else if (d->id == O_CLEAR)
			a->clear[a->nclear++] = v;
		else if (d->id == O_TO)
			a->to[a->nto++] = v;
		else if (d->id == O_CC)
			a->cc[a->ncc++] = v;
	}
	if (a->npos < c->cmd->min_pos)
		return usage_error(c, "%s",
				   a->npos == 0 ? "which message? (a number from yubin ls)"
				   : c->cmd->id == C_MV ? "which folder? (after the numbers)"
				   : "which part? (yubin read N lists them)");
	const char *tls = a->val[O_TLS];
	if (tls && strcmp(tls, "starttls") != 0 && strcmp(tls, "tls") != 0 &&
	    strcmp(tls, "none") != 0)
		return usage_error(c, "--tls is starttls, tls or none, not %s", tls);
	if (a->val[O_MAILDIR] && !a->val[O_MAILDIR][0])
		return usage_error(c, "--maildir needs a directory");
	return 0;
}

static void args_free(struct args *a)
{
	free(a->pos);
	free(a->set);
	free(a->clear);
	free(a->to);
	free(a->cc);
}

/* A message number: 1 to 2^32 - 1, digits only. */
static int parse_number(const char *s, uint32_t *n_r)
{
	uint64_t v = 0;
	if (!s[0] || strlen(s) > 10)
		return -1;
	for (const char *p = s; *p; p++) {
		if (*p < '0' || *p > '9')
			return -1;
		v = v * 10 + (uint64_t)(*p - '0');
	}
	if (v < 1 || v > UINT32_MAX)
		return -1;
	*n_r = (uint32_t)v;
	return 0;
}

/* The operands pos[from..to) as message numbers (heap).  0, or the exit code. */
static int parse_numbers(const struct ctx *c, size_t from, size_t to, uint32_t **ns_r)
{
	*ns_r = NULL;
	if (to - from > MBOX_ARGS_MAX)
		return usage_error(c, "at most %d message numbers at a time", MBOX_ARGS_MAX);
	uint32_t *ns = xreallocarray(NULL, to > from ? to - from : 1, sizeof *ns);
	for (size_t i = from; i < to; i++) {
		if (parse_number(c->a.pos[i], &ns[i - from]) < 0) {
			free(ns);
			return usage_error(c, "%s is not a message number (yubin ls shows them)",
					   c->a.pos[i]);
		}
	}
	*ns_r = ns;
	return 0;
}

static int u32_cmp(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
	return x < y ? -1 : x > y;
}

/* How many different numbers ns[0..n) holds ("rm 3 3" removes one). */
static size_t distinct(const uint32_t *ns, size_t n)
{
	uint32_t *s = xreallocarray(NULL, n ? n : 1, sizeof *s);
	memcpy(s, ns, n * sizeof *s);
	qsort(s, n, sizeof *s, u32_cmp);
	size_t k = 0;
	for (size_t i = 0; i < n; i++)
		k += i == 0 || s[i] != s[i - 1];
	free(s);
	return k;
}

/* "YYYY-MM-DD" as the Unix time of that day's start (UTC). */
static int parse_day(const char *s, int64_t *t_r)
{
	if (strlen(s) != 10 || s[4] != '-' || s[7] != '-')
		return -1;
	for (int i = 0; i < 10; i++)
		if (i != 4 && i != 7 && (s[i] < '0' || s[i] > '9'))
			return -1;
	struct tm tm;
	memset(&tm, 0, sizeof tm);
	tm.tm_year = atoi(s) - 1900;
	tm.tm_mon = atoi(s + 5) - 1;
	tm.tm_mday = atoi(s + 8);
	static const int mdays[] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
	if (tm.tm_year + 1900 < 1970 || tm.tm_mon < 0 || tm.tm_mon > 11 || tm.tm_mday < 1 ||
	    tm.tm_mday > mdays[tm.tm_mon])
		return -1;
	int y = tm.tm_year + 1900;
	if (tm.tm_mon == 1 && tm.tm_mday == 29 && !(y % 4 == 0 && (y % 100 != 0 || y % 400 == 0)))
		return -1;
	*t_r = (int64_t)timegm(&tm);
	return 0;
}

/* ---- the store ---- */

static int copy_field(const struct ctx *c, const char *opt, char *dst, size_t dstsz,
		      const char *v)
{
	if (v == NULL)
		return 0;
	if (strlen(v) >= dstsz)
		return usage_error(c, "%s is too long (at most %zu bytes)", opt, dstsz - 1);
	memcpy(dst, v, strlen(v) + 1);
	return 0;
}

/* c->mb from --maildir, else the account (client.conf and the command
 * line).  0, or the exit code (printed). */
static int open_store(struct ctx *c)
{
	const struct args *a = &c->a;
	char err[1024] = "";
	if (c->mb != NULL)
		return 0;
	if (a->val[O_MAILDIR]) {
		c->mb = mbox_maildir_open(a->val[O_MAILDIR], err, sizeof err);
		return c->mb ? 0 : op_failed(c, false, err);
	}
	struct account acct;
	char path[4096];
	if (!client_account(c->cmd->name, a->val[O_ACCOUNT], &acct, path, sizeof path))
		return 1;
	c->acct = acct;             /* before the command line's changes: for SMTP */
	c->have_acct = true;
	const char *url = a->val[O_SERVER];
	if (url != NULL && account_parse_incoming(url, &acct, err, sizeof err) < 0)
		return usage_error(c, "--server %s: %s", url, err);
	const char *tls = a->val[O_TLS];
	if (tls != NULL) {
		if (url != NULL && acct.in_tls == TLS_IMPLICIT && strcmp(tls, "tls") != 0)
			return usage_error(c, "--server %s is always TLS: drop --tls %s", url,
					   tls);
		acct.in_tls = strcmp(tls, "tls") == 0    ? TLS_IMPLICIT
			      : strcmp(tls, "none") == 0 ? TLS_NONE
							 : TLS_STARTTLS;
	}
	int r = copy_field(c, "--user", acct.in_user, sizeof acct.in_user, a->val[O_USER]);
	if (!r)
		r = copy_field(c, "--password-cmd", acct.password_cmd, sizeof acct.password_cmd,
			       a->val[O_PASSWORD_CMD]);
	if (!r)
		r = copy_field(c, "--cafile", acct.cafile, sizeof acct.cafile, a->val[O_CAFILE]);
	if (!r)
		r = copy_field(c, "--pin", acct.pin_sha256, sizeof acct.pin_sha256, a->val[O_PIN]);
	if (r)
		return r;
	if (acct.in_proto == IN_IMAP && !a->val[O_LOCAL]) {
		if (!acct.in_user[0]) {
			say(c, "no user name for %s: give --user", acct.in_host);
			return 1;
		}
		bool temp = false;
		c->mb = mbox_imap_open(&acct, a->val[O_TRACE] ? stderr : NULL, &temp, err,
				       sizeof err);
		return c->mb ? 0 : op_failed(c, temp, err);
	}
	if (!acct.maildir[0]) {
		say(c, "no Maildir: give --maildir DIR or an account in %s",
		    path[0] ? path : "client.conf");
		return 1;
	}
	c->mb = mbox_maildir_open(acct.maildir, err, sizeof err);
	return c->mb ? 0 : op_failed(c, false, err);
}

/* ---- output ---- */

/* Columns a code point takes on a terminal: 2 for East Asian wide and
 * fullwidth forms, 0 for combining marks and zero-width characters
 * (an approximation of wcwidth that needs no locale). */
static int cp_width(uint32_t cp)
{
	if ((cp >= 0x300 && cp <= 0x36f) || (cp >= 0x200b && cp <= 0x200f) ||
	    (cp >= 0xfe00 && cp <= 0xfe0f) || (cp >= 0x3099 && cp <= 0x309a))
		return 0;
	if ((cp >= 0x1100 && cp <= 0x115f) || (cp >= 0x2e80 && cp <= 0x303e) ||
	    (cp >= 0x3041 && cp <= 0x33ff) || (cp >= 0x3400 && cp <= 0x4dbf) ||
	    (cp >= 0x4e00 && cp <= 0x9fff) || (cp >= 0xa000 && cp <= 0xa4cf) ||
	    (cp >= 0xac00 && cp <= 0xd7a3) || (cp >= 0xf900 && cp <= 0xfaff) ||
	    (cp >= 0xfe30 && cp <= 0xfe4f) || (cp >= 0xff00 && cp <= 0xff60) ||
	    (cp >= 0xffe0 && cp <= 0xffe6) || (cp >= 0x1f300 && cp <= 0x1f64f) ||
	    (cp >= 0x1f900 && cp <= 0x1f9ff) || (cp >= 0x20000 && cp <= 0x3fffd))
		return 2;
	return 1;
}

/* Length of the UTF-8 sequence at s (lenient: a bad byte is one), code
 * point in *cp_r (U+FFFD for a bad byte). */
static size_t utf8_next(const unsigned char *s, uint32_t *cp_r)
{
	size_t need = s[0] < 0x80 ? 0 : s[0] >= 0xf0 && s[0] <= 0xf4 ? 3
				   : s[0] >= 0xe0 ? 2 : s[0] >= 0xc2 ? 1 : 9;
	if (need == 9) {
		*cp_r = 0xfffd;
		return 1;
	}
	uint32_t cp = need == 0 ? s[0] : s[0] & (0x3fu >> need);
	for (size_t j = 1; j <= need; j++) {
		if ((s[j] & 0xc0) != 0x80) {
			*cp_r = 0xfffd;
			return 1;
		}
		cp = (cp << 6) | (s[j] & 0x3fu);
	}
	*cp_r = cp;
	return need + 1;
}

/* s cut to at most cols terminal columns (at a character), padded with
 * spaces to cols. */
static void put_cols(const char *s, int cols)
{
	const unsigned char *p = (const unsigned char *)s;
	int used = 0;
	while (*p) {
		uint32_t cp;
		size_t k = utf8_next(p, &cp);
		int w = cp_width(cp);
		if (used + w > cols)
			break;
		fwrite(p, 1, k, stdout);
		used += w;
		p += k;
	}
	for (; used < cols; used++)
		putchar(' ');
}

/* s as valid UTF-8 (bad bytes as U+FFFD) for jansson, which takes no other. */
static json_t *jstr(const char *s)
{
	json_t *j = json_string(s ? s : "");
	if (j != NULL)
		return j;
	struct buf b;
	buf_init(&b, 4 * strlen(s) + 1);
	for (const unsigned char *p = (const unsigned char *)s; *p;) {
		uint32_t cp;
		size_t k = utf8_next(p, &cp);
		if (cp == 0xfffd && k == 1)
			buf_append(&b, "\xef\xbf\xbd", 3);
		else
			buf_append(&b, p, k);
		p += k;
	}
	j = json_string(b.data ? b.data : "");
	buf_free(&b);
	return j != NULL ? j : json_string("");
}

static json_t *msg_json(const struct mbox_msg *m)
{
	char flags[8];
	mbox_flags_letters(m->flags, flags);
	json_t *o = json_object();
	json_object_set_new(o, "n", json_integer(m->n));
	json_object_set_new(o, "uid", json_integer(m->uid));
	json_object_set_new(o, "date", json_integer(m->date));
	json_object_set_new(o, "from", jstr(m->from));
	json_object_set_new(o, "to", jstr(m->to));
	json_object_set_new(o, "subject", jstr(m->subject));
	json_object_set_new(o, "message_id", jstr(m->message_id));
	json_object_set_new(o, "size", json_integer(m->size));
	json_object_set_new(o, "flags", json_string(flags));
	return o;
}

static void msg_line(const struct mbox_msg *m)
{
	char flags[8], date[32];
	mbox_flags_letters(m->flags, flags);
	time_t t = (time_t)m->date;
	struct tm tm;
	if (localtime_r(&t, &tm) == NULL ||
	    strftime(date, sizeof date, "%Y-%m-%d %H:%M", &tm) == 0)
		snprintf(date, sizeof date, "%-16s", "?");
	printf("%4u %-3s %s  ", (unsigned)m->n, flags, date);
	put_cols(m->from ? m->from : "", 28);
	putchar(' ');
	put_cols(m->subject ? m->subject : "", 40);
	printf(" %8lld\n", (long long)m->size);
}

static int json_out(json_t *j)
{
	int r = json_dumpf(j, stdout, JSON_COMPACT);
	json_decref(j);
	putchar('\n');
	return r < 0 ? 1 : 0;
}

/* Messages v[0..n) (only those numbered in ns[0..k) when ns is not NULL). */
static int print_msgs(const struct ctx *c, const struct mbox_msg *v, size_t n,
		      const uint32_t *ns, size_t k)
{
	json_t *arr = c->a.val[O_JSON] ? json_array() : NULL;
	size_t j = 0;
	for (size_t i = 0; i < n; i++) {
		if (ns != NULL) {
			while (j < k && ns[j] < v[i].n)
				j++;
			if (j >= k || ns[j] != v[i].n)
				continue;
		}
		if (arr)
			json_array_append_new(arr, msg_json(&v[i]));
		else
			msg_line(&v[i]);
	}
	return arr ? json_out(arr) : 0;
}

/* ---- the commands ---- */

static int run_ls(struct ctx *c)
{
	struct mbox_msg *v;
	size_t n;
	bool temp = false;
	char err[1024];
	if (c->a.npos > 0) {
		if (c->a.val[O_FOLDER])
			return usage_error(c, "give the folder once (FOLDER or --folder)");
		c->folder = c->a.pos[0];
	}
	int r = open_store(c);
	if (r)
		return r;
	if (c->mb->ops->list(c->mb, c->folder, &v, &n, &temp, err, sizeof err) < 0)
		return op_failed(c, temp, err);
	r = print_msgs(c, v, n, NULL, 0);
	mbox_msgs_free(v, n);
	return r;
}

/* Message pos[0], whole. 0, or the exit code. */
static int fetch_one(struct ctx *c, bool peek, char **msg_r, size_t *len_r)
{
	uint32_t n;
	bool temp = false;
	char err[1024];
	if (parse_number(c->a.pos[0], &n) < 0)
		return usage_error(c, "%s is not a message number (yubin ls shows them)",
				   c->a.pos[0]);
	int r = open_store(c);
	if (r)
		return r;
	if (c->mb->ops->fetch(c->mb, c->folder, n, peek, msg_r, len_r, &temp, err, sizeof err) < 0)
		return op_failed(c, temp, err);
	return 0;
}

static int run_read(struct ctx *c)
{
	long width = 0;
	if (c->a.val[O_WIDTH]) {
		char *end;
		errno = 0;
		width = strtol(c->a.val[O_WIDTH], &end, 10);
		if (*end || errno || width < 0 || width > 10000 || end == c->a.val[O_WIDTH])
			return usage_error(c,
					   "--width takes a number of columns (0: no wrapping)");
	}
	char *msg;
	size_t len;
	int r = fetch_one(c, c->a.val[O_PEEK] != NULL, &msg, &len);
	if (r)
		return r;
	struct reader_opts ro = {.all_headers = c->a.val[O_HEADERS] != NULL,
				 .width = (size_t)width};
	struct buf out;
	buf_init(&out, READER_OUT_MAX + 1024);
	reader_render(msg, len, &ro, &out, NULL, 0, NULL);
	fwrite(out.data ? out.data : "", 1, out.len, stdout);
	buf_free(&out);
	free(msg);
	return 0;
}

static int write_file(const struct ctx *c, const char *path, const char *data, size_t len)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
	if (fd < 0) {
		say(c, "%s: %s", path, strerror(errno));
		return 1;
	}
	size_t off = 0;
	while (off < len) {
		ssize_t w = write(fd, data + off, len - off);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			break;
		off += (size_t)w;
	}
	if (close(fd) < 0 || off != len) {
		say(c, "writing %s failed", path);
		return 1;
	}
	return 0;
}

static int run_save(struct ctx *c)
{
	const char *part = c->a.pos[1];
	bool ok = part[0] != '\0' && strlen(part) < READER_SECTION_MAX;
	for (const char *p = part; *p; p++)
		ok &= (*p >= '0' && *p <= '9') || (*p == '.' && p != part && p[1] && p[1] != '.');
	if (!ok)
		return usage_error(c,
				   "PART is a part number as yubin read lists it (2, 1.2), not %s",
				   part);
	char *msg;
	size_t len;
	int ret = fetch_one(c, true, &msg, &len);
	if (ret)
		return ret;
	ret = 1;
	struct reader_part_info *parts = xcalloc(READER_PARTS_MAX, sizeof *parts);
	size_t np = 0;
	struct buf tmp, data;
	buf_init(&tmp, READER_OUT_MAX + 1024);
	buf_init(&data, MBOX_MSG_MAX);
	reader_render(msg, len, NULL, &tmp, parts, READER_PARTS_MAX, &np);
	const char *name = NULL;
	for (size_t i = 0; i < np; i++)
		if (strcmp(parts[i].section, part) == 0)
			name = parts[i].filename[0] ? parts[i].filename : NULL;
	if (reader_part_bytes(msg, len, part, &data) != 1) {
		say(c, "message %s has no part %s", c->a.pos[0], part);
		goto out;
	}
	/* Only the last path component, never hidden, never "..": the name
	 * comes from the mail. */
	char safe[256];
	const char *base = name ? strrchr(name, '/') : NULL;
	snprintf(safe, sizeof safe, "%s", base ? base + 1 : name ? name : "");
	for (char *p = safe; *p; p++)
		if (*p == '\\' || (unsigned char)*p < 0x20 || *p == 0x7f)
			*p = '_';
	if (!safe[0] || safe[0] == '.')
		snprintf(safe, sizeof safe, "part-%s.bin", part);
	char path[4400];
	const char *dir = c->a.npos >= 3 ? c->a.pos[2] : ".";
	if ((size_t)snprintf(path, sizeof path, "%s/%s", dir, safe) >= sizeof path) {
		say(c, "%s: path too long", dir);
		goto out;
	}
	if (write_file(c, path, data.data ? data.data : "", data.len) != 0)
		goto out;
	printf("saved %s (%zu bytes)\n", path, data.len);
	ret = 0;
out:
	free(parts);
	buf_free(&tmp);
	buf_free(&data);
	free(msg);
	return ret;
}

static int run_mv(struct ctx *c)
{
	uint32_t *ns;
	size_t count = c->a.npos - 1;
	const char *dest = c->a.pos[c->a.npos - 1];
	int r = parse_numbers(c, 0, count, &ns);
	if (r || (r = open_store(c)) != 0) {
		free(ns);
		return r;
	}
	bool temp = false;
	char err[1024];
	if (c->mb->ops->move(c->mb, c->folder, ns, count, dest, &temp, err, sizeof err) < 0)
		r = op_failed(c, temp, err);
	else
		printf("moved %zu message(s) to %s\n", distinct(ns, count), dest);
	free(ns);
	return r;
}

static int run_rm(struct ctx *c)
{
	uint32_t *ns;
	size_t count = c->a.npos;
	int r = parse_numbers(c, 0, count, &ns);
	if (r || (r = open_store(c)) != 0) {
		free(ns);
		return r;
	}
	bool temp = false, expunge = c->a.val[O_EXPUNGE] != NULL;
	char err[1024];
	if (c->mb->ops->remove(c->mb, c->folder, ns, count, expunge, &temp, err, sizeof err) < 0)
		r = op_failed(c, temp, err);
	else
		printf("%s %zu message(s)\n", expunge ? "deleted" : "removed",
		       distinct(ns, count));
	free(ns);
	return r;
}

/* FLAG of --set/--clear: a system flag into *bit, else an IMAP keyword
 * (atom characters, no leading '\').  0, or -1. */
static int parse_flag(const char *s, unsigned *bit, const char **kw)
{
	static const struct {
		const char *name;
		unsigned bit;
	} names[] = {{"seen", MBOX_SEEN}, {"answered", MBOX_ANSWERED}, {"flagged", MBOX_FLAGGED},
		     {"deleted", MBOX_DELETED}, {"draft", MBOX_DRAFT}};
	*bit = 0;
	*kw = NULL;
	const char *n = s[0] == '\\' ? s + 1 : s;
	for (size_t i = 0; i < ARRAY_LEN(names); i++) {
		if (str_ieq(n, names[i].name)) {
			*bit = names[i].bit;
			return 0;
		}
	}
	if (s[0] == '\\' || !s[0] || strlen(s) > 255)
		return -1;
	for (const unsigned char *p = (const unsigned char *)s; *p; p++)
		if (*p <= 0x20 || *p >= 0x7f || strchr("(){%*\"\\]", *p))
			return -1;
	*kw = s;
	return 0;
}

static int run_flag(struct ctx *c)
{
	const struct args *a = &c->a;
	if (a->nset + a->nclear == 0)
		return usage_error(c, "give --set FLAG or --clear FLAG");
	unsigned add = 0, remove = 0;
	size_t nk = 0;
	const char **kws = xreallocarray(NULL, a->nset + a->nclear, sizeof *kws);
	bool *kw_add = xreallocarray(NULL, a->nset + a->nclear, sizeof *kw_add);
	int r = 0;
	for (size_t i = 0; i < a->nset + a->nclear && !r; i++) {
		bool set = i < a->nset;
		const char *s = set ? a->set[i] : a->clear[i - a->nset];
		unsigned bit;
		const char *kw;
		if (parse_flag(s, &bit, &kw) < 0) {
			r = usage_error(c,
					"%s is not a flag (seen, answered, flagged, deleted, "
					"draft or an IMAP keyword such as $Junk)", s);
			break;
		}
		if (kw != NULL) {
			kws[nk] = kw;
			kw_add[nk++] = set;
		} else if (set) {
			add |= bit;
		} else {
			remove |= bit;
		}
	}
	uint32_t *ns = NULL;
	if (!r)
		r = parse_numbers(c, 0, a->npos, &ns);
	if (!r)
		r = open_store(c);
	bool temp = false;
	char err[1024];
	/* the system flags with the first keyword, then one call a keyword */
	for (size_t i = 0; !r && (i == 0 || i < nk); i++) {
		if (c->mb->ops->set_flags(c->mb, c->folder, ns, a->npos, i == 0 ? add : 0,
					  i == 0 ? remove : 0, nk ? kws[i] : NULL,
					  nk ? kw_add[i] : false, &temp, err, sizeof err) < 0)
			r = op_failed(c, temp, err);
	}
	if (!r)
		printf("changed the flags of %zu message(s)\n", distinct(ns, a->npos));
	free(ns);
	free(kws);
	free(kw_add);
	return r;
}

static int run_search(struct ctx *c)
{
	const struct args *a = &c->a;
	struct mbox_query q = {
		.from = a->val[O_FROM],
		.to = a->val[O_TO],
		.subject = a->val[O_SUBJECT],
		.body = a->val[O_BODY],
		.text = a->val[O_TEXT],
	};
	if (a->val[O_SEEN] && a->val[O_UNSEEN])
		return usage_error(c, "--seen or --unseen, not both");
	if (a->val[O_FLAGGED] && a->val[O_UNFLAGGED])
		return usage_error(c, "--flagged or --unflagged, not both");
	if (a->val[O_SINCE] && parse_day(a->val[O_SINCE], &q.since) < 0)
		return usage_error(c, "--since takes a date YYYY-MM-DD, not %s", a->val[O_SINCE]);
	if (a->val[O_BEFORE] && parse_day(a->val[O_BEFORE], &q.before) < 0)
		return usage_error(c, "--before takes a date YYYY-MM-DD, not %s",
				   a->val[O_BEFORE]);
	q.flags_set = (a->val[O_SEEN] ? MBOX_SEEN : 0) | (a->val[O_FLAGGED] ? MBOX_FLAGGED : 0);
	q.flags_clear = (a->val[O_UNSEEN] ? MBOX_SEEN : 0) |
			(a->val[O_UNFLAGGED] ? MBOX_FLAGGED : 0);
	uint32_t *ns;
	size_t k;
	struct mbox_msg *v;
	size_t n;
	bool temp = false;
	char err[1024];
	int r = open_store(c);
	if (r)
		return r;
	if (c->mb->ops->search(c->mb, c->folder, &q, &ns, &k, &temp, err, sizeof err) < 0)
		return op_failed(c, temp, err);
	if (k == 0) {
		r = print_msgs(c, NULL, 0, NULL, 0);
	} else if (c->mb->ops->list(c->mb, c->folder, &v, &n, &temp, err, sizeof err) < 0) {
		r = op_failed(c, temp, err);
	} else {
		r = print_msgs(c, v, n, ns, k);
		mbox_msgs_free(v, n);
	}
	free(ns);
	return r;
}

static json_t *count_json(int64_t v)
{
	return v < 0 ? json_null() : json_integer(v);
}

static int run_folders(struct ctx *c)
{
	struct mbox_folder *v;
	size_t n;
	bool temp = false;
	char err[1024];
	int r = open_store(c);
	if (r)
		return r;
	if (c->mb->ops->folders(c->mb, &v, &n, &temp, err, sizeof err) < 0)
		return op_failed(c, temp, err);
	json_t *arr = c->a.val[O_JSON] ? json_array() : NULL;
	for (size_t i = 0; i < n; i++) {
		if (arr) {
			json_t *o = json_object();
			json_object_set_new(o, "name", jstr(v[i].name));
			json_object_set_new(o, "special", jstr(v[i].special));
			json_object_set_new(o, "total", count_json(v[i].total));
			json_object_set_new(o, "unseen", count_json(v[i].unseen));
			json_array_append_new(arr, o);
			continue;
		}
		char total[24] = "-", unseen[24] = "-";
		if (v[i].total >= 0)
			snprintf(total, sizeof total, "%lld", (long long)v[i].total);
		if (v[i].unseen >= 0)
			snprintf(unseen, sizeof unseen, "%lld", (long long)v[i].unseen);
		bool sp = v[i].special[0] != '\0';
		printf("%7s %7s  %s%s%s%s\n", total, unseen, v[i].name, sp ? " (" : "",
		       v[i].special, sp ? ")" : "");
	}
	mbox_folders_free(v, n);
	return arr ? json_out(arr) : 0;
}

/* reply and forward (client_reply.c): the store gives the message, the
 * account (client.conf's, or --account) the sender and the SMTP server. */
static int run_reply(struct ctx *c)
{
	uint32_t n;
	if (parse_number(c->a.pos[0], &n) < 0)
		return usage_error(c, "%s is not a message number (yubin ls shows them)",
				   c->a.pos[0]);
	if (c->cmd->id == C_FORWARD && c->a.nto == 0)
		return usage_error(c, "to whom? give --to ADDRESS");
	int r = open_store(c);
	if (r)
		return r;
	if (!c->have_acct) {
		char path[4096];
		if (!client_account(c->cmd->name, c->a.val[O_ACCOUNT], &c->acct, path, sizeof path))
			return 1;
	}
	if (!c->acct.address[0] || !c->acct.smtp_host[0]) {
		say(c, "no account to send with: add one to client.conf (yubin account add)");
		return 1;
	}
	struct client_reply_opts o = {
		.forward = c->cmd->id == C_FORWARD,
		.all = c->a.val[O_ALL] != NULL,
		.inline_fwd = c->a.val[O_INLINE] != NULL,
		.no_quote = c->a.val[O_NO_QUOTE] != NULL,
		.dry_run = c->a.val[O_DRY_RUN] != NULL,
		.no_copy = c->a.val[O_NO_COPY] != NULL,
		.no_signature = c->a.val[O_NO_SIGNATURE] != NULL,
		.to = c->a.to,
		.nto = c->a.nto,
		.cc = c->a.cc,
		.ncc = c->a.ncc,
	};
	return client_reply_run(c->mb, c->folder, n, &c->acct, &o);
}

static const struct command commands[] = {
	{"ls", C_LS, 0, 1, "ls [FOLDER] [--json]", run_ls},
	{"read", C_READ, 1, 1, "read N [--folder F] [--headers] [--width N] [--peek]", run_read},
	{"save", C_SAVE, 2, 3, "save N PART [DIR] [--folder F]", run_save},
	{"mv", C_MV, 2, SIZE_MAX, "mv N... FOLDER [--folder F]", run_mv},
	{"rm", C_RM, 1, SIZE_MAX, "rm N... [--expunge] [--folder F]", run_rm},
	{"flag", C_FLAG, 1, SIZE_MAX,
	 "flag N... [--set FLAG]... [--clear FLAG]... [--folder F]\n"
	 "FLAG: seen, answered, flagged, deleted, draft, or an IMAP keyword ($Junk)", run_flag},
	{"search", C_SEARCH, 0, 0,
	 "search [--folder F] [--from S] [--to S] [--subject S] [--body S] [--text S]\n"
	 "       [--since YYYY-MM-DD] [--before YYYY-MM-DD] [--seen|--unseen]\n"
	 "       [--flagged|--unflagged] [--json]", run_search},
	{"folders", C_FOLDERS, 0, 0, "folders [--json]", run_folders},
	{"reply", C_REPLY, 1, 1,
	 "reply N [--all] [--no-quote] [--folder F] [--dry-run] [--no-copy]\n"
	 "Your text comes from stdin (the quote is put below it), or $EDITOR opens on the quote.\n"
	 "Sent with the account's submission server; a copy goes to Sent on IMAP.",
	 run_reply},
	{"forward", C_FORWARD, 1, 1,
	 "forward N --to ADDR [--to ADDR]... [--cc ADDR]... [--inline] [--folder F]\n"
	 "        [--dry-run] [--no-copy]\n"
	 "The message goes whole as an attachment (message/rfc822), or with --inline as text\n"
	 "with its attachments.  Your text comes from stdin or $EDITOR.", run_reply},
};

static int run_command(enum cmd id, int argc, char **argv)
{
	struct ctx c;
	memset(&c, 0, sizeof c);
	c.cmd = &commands[id];
	assert(c.cmd->id == id);
	int r = parse_args(&c, argc, argv);
	if (r == 0) {
		c.folder = c.a.val[O_FOLDER];
		/* each command checks its operands, then opens the store */
		r = c.cmd->run(&c);
	} else {
		r = r == 1 ? 0 : EXIT_USAGE;
	}
	if (c.mb != NULL)
		c.mb->ops->close(c.mb);
	args_free(&c.a);
	return r;
}

int client_mail_cmd(int argc, char **argv)
{
	for (size_t k = 0; k < ARRAY_LEN(commands); k++)
		if (strcmp(argv[0], commands[k].name) == 0)
			return run_command(commands[k].id, argc, argv);
	fprintf(stderr, "yubin: unknown command %s\n", argv[0]);
	return EXIT_USAGE;
}
