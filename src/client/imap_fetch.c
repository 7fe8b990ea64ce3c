/* imap_fetch.c - new messages of IMAP folders into a Maildir; see
 * imap_fetch.h. */
#include "client/imap_fetch.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "client/maildir.h"
#include "client/mbox.h"
#include "core/util.h"

#define STATE_MAX (4u * 1024 * 1024)
#define STATE_FOLDERS_MAX 10000

struct fstate {
	char *folder;
	uint32_t uidvalidity, uid;
};

struct run {
	const struct imap_fetch_opts *o;
	struct imap_client *c;
	char state_path[4200];
	struct fstate *st;
	size_t nst;
	int state_fd;               /* for appends; -1 until first needed */
	size_t fetched;
	bool skipped;               /* a message over the size cap */
	char skipped_msg[512];
	char *err;
	size_t errsz;
};

static struct fstate *state_find(struct run *r, const char *folder, bool add)
{
	for (size_t i = 0; i < r->nst; i++)
		if (strcmp(r->st[i].folder, folder) == 0)
			return &r->st[i];
	if (!add || r->nst >= STATE_FOLDERS_MAX)
		return NULL;
	r->st = xreallocarray(r->st, r->nst + 1, sizeof *r->st);
	struct fstate *s = &r->st[r->nst++];
	s->folder = xstrdup(folder);
	s->uidvalidity = s->uid = 0;
	return s;
}

/* "UIDVALIDITY UID FOLDER" lines; later lines win.  Bad lines are skipped
 * (a torn last line after a crash). */
static int state_load(struct run *r)
{
	int fd = open(r->state_path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		if (errno == ENOENT)
			return 0;
		errf(r->err, r->errsz, "open %s: %s", r->state_path, strerror(errno));
		return -1;
	}
	struct buf b;
	buf_init(&b, STATE_MAX);
	char tmp[65536];
	ssize_t n;
	int ret = 0;
	while ((n = read(fd, tmp, sizeof tmp)) != 0) {
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 || buf_append(&b, tmp, (size_t)n) < 0) {
			errf(r->err, r->errsz, "read %s: %s", r->state_path,
			       n < 0 ? strerror(errno) : "larger than 4 MiB");
			ret = -1;
			break;
		}
	}
	close(fd);
	for (char *line = b.data, *nl; ret == 0 && line && (nl = strchr(line, '\n')); line = nl + 1) {
		*nl = '\0';
		unsigned long v, u;
		int off = 0;
		if (sscanf(line, "%lu %lu %n", &v, &u, &off) != 2 || off == 0 || !line[off] ||
		    v > UINT32_MAX || u > UINT32_MAX)
			continue;
		struct fstate *s = state_find(r, line + off, true);
		if (s) {
			s->uidvalidity = (uint32_t)v;
			s->uid = (uint32_t)u;
		}
	}
	buf_free(&b);
	return ret;
}

static int state_append(struct run *r, const struct fstate *s)
{
	if (r->state_fd < 0) {
		r->state_fd = open(r->state_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
		if (r->state_fd < 0) {
			errf(r->err, r->errsz, "open %s: %s", r->state_path, strerror(errno));
			return -1;
		}
	}
	char line[1400];
	int n = snprintf(line, sizeof line, "%u %u %s\n", s->uidvalidity, s->uid, s->folder);
	if (n < 0 || (size_t)n >= sizeof line || write(r->state_fd, line, (size_t)n) != n ||
	    fsync(r->state_fd) < 0) {
		errf(r->err, r->errsz, "write %s: %s", r->state_path, strerror(errno));
		return -1;
	}
	return 0;
}

/* One line per folder: temp file, fsync, rename. */
static int state_compact(struct run *r)
{
	char tmpp[4300];
	snprintf(tmpp, sizeof tmpp, "%s.tmp", r->state_path);
	int fd = open(tmpp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0) {
		errf(r->err, r->errsz, "open %s: %s", tmpp, strerror(errno));
		return -1;
	}
	bool ok = true;
	for (size_t i = 0; i < r->nst && ok; i++) {
		char line[1400];
		int n = snprintf(line, sizeof line, "%u %u %s\n", r->st[i].uidvalidity, r->st[i].uid,
				 r->st[i].folder);
		ok = n > 0 && (size_t)n < sizeof line && write(fd, line, (size_t)n) == n;
	}
	ok = ok && fsync(fd) == 0;
	close(fd);
	if (!ok || rename(tmpp, r->state_path) < 0) {
		errf(r->err, r->errsz, "write %s: %s", r->state_path, strerror(errno));
		unlink(tmpp);
		return -1;
	}
	return 0;
}

/* The Maildir for folder: the root for INBOX, else DIR/.A.b (made). */
static int folder_dir(struct run *r, const char *folder, char *out, size_t outsz)
{
	if (strcasecmp(folder, "INBOX") == 0) {
		snprintf(out, outsz, "%s", r->o->maildir);
		return 0;
	}
	if (folder[0] == '.' || strstr(folder, "..") || strstr(folder, "//") ||
	    folder[strlen(folder) - 1] == '/') {
		errf(r->err, r->errsz, "folder \"%s\" cannot be a Maildir++ folder name",
		       folder);
		return -1;
	}
	int n = snprintf(out, outsz, "%s/.", r->o->maildir);
	for (const char *p = folder; *p && (size_t)n + 2 < outsz; p++) {
		if ((unsigned char)*p < 0x20) {
			errf(r->err, r->errsz, "folder \"%s\" holds control characters", folder);
			return -1;
		}
		out[n++] = *p == '/' ? '.' : *p;
	}
	out[n] = '\0';
	if ((size_t)n + 2 >= outsz) {
		errf(r->err, r->errsz, "folder name too long: %s", folder);
		return -1;
	}
	if (maildir_create(out) < 0) {
		errf(r->err, r->errsz, "make Maildir %s: %s", out, strerror(errno));
		return -1;
	}
	return 0;
}

/* ---- one folder ---- */

struct newmsg {
	uint32_t uid;
	uint64_t size;
};

struct new_ctx {
	uint32_t after;
	struct newmsg *v;
	size_t n;
};

static int new_cb(void *ctx, const struct imap_resp *r)
{
	struct new_ctx *nc = ctx;
	if (strcmp(r->name, "FETCH") != 0)
		return 0;
	const struct imap_node *f = imap_resp_first(r);
	uint32_t uid;
	uint64_t size = 0;
	if (imap_node_u32(imap_fetch_item(r, f, "UID"), &uid) < 0 || uid <= nc->after ||
	    nc->n >= MBOX_LIST_MAX)
		return 0;   /* "n:*" also names the last message when all are older */
	(void)imap_node_u64(imap_fetch_item(r, f, "RFC822.SIZE"), &size);
	nc->v = xreallocarray(nc->v, nc->n + 1, sizeof *nc->v);
	nc->v[nc->n++] = (struct newmsg){.uid = uid, .size = size};
	return 0;
}

static int by_uid(const void *a, const void *b)
{
	const struct newmsg *x = a, *y = b;
	return x->uid < y->uid ? -1 : x->uid > y->uid;
}

/* One UID FETCH for a batch of new messages (pipelined: the server sends
 * them back to back), each delivered the moment its response is read.  The
 * state advances over the longest run of the batch, in UID order, that is
 * delivered (or turned out expunged), so a crash or an error mid-batch
 * leaves nothing undelivered behind the recorded UID. */
#define BATCH_MAX 100
#define BATCH_BYTES (8u * 1024 * 1024)

struct batch {
	struct run *r;
	struct fstate *s;
	const char *dir;
	const struct newmsg *v;
	size_t n, done_upto;        /* v[0..done_upto) delivered or gone, in order */
	bool got[BATCH_MAX];
	bool failed;                /* delivery or state failed: err set, rest ignored */
	struct buf lf;
};

static void batch_advance(struct batch *b, bool final)
{
	/* final: the command is over, what never came was expunged */
	while (b->done_upto < b->n && (b->got[b->done_upto] || final))
		b->done_upto++;
	if (b->done_upto > 0 && b->s->uid < b->v[b->done_upto - 1].uid) {
		b->s->uid = b->v[b->done_upto - 1].uid;
		if (state_append(b->r, b->s) < 0)
			b->failed = true;
	}
}

static int batch_cb(void *ctx, const struct imap_resp *r)
{
	struct batch *b = ctx;
	if (b->failed || strcmp(r->name, "FETCH") != 0)
		return 0;
	const struct imap_node *f = imap_resp_first(r);
	const struct imap_node *x = imap_fetch_item(r, f, "BODY[]");
	uint32_t uid;
	if (imap_node_u32(imap_fetch_item(r, f, "UID"), &uid) < 0 || !x ||
	    x->type == IMAP_NODE_LIST)
		return 0;
	size_t k = 0;
	while (k < b->n && b->v[k].uid != uid)
		k++;
	if (k == b->n || b->got[k])
		return 0;   /* not asked for (a FLAGS change of another), or twice */
	/* CR LF to LF: the Maildir convention */
	buf_reset(&b->lf);
	size_t from = 0;
	for (uint32_t i = 0; i + 1 < x->len; i++)
		if (x->s[i] == '\r' && x->s[i + 1] == '\n') {
			buf_append(&b->lf, x->s + from, i - from);
			from = i + 1;
		}
	buf_append(&b->lf, x->s + from, x->len - from);
	if (maildir_deliver(b->dir, b->lf.data ? b->lf.data : "", b->lf.len, NULL, 0, b->r->err,
			    b->r->errsz) < 0) {
		b->failed = true;
		return 1;
	}
	b->r->fetched++;
	b->got[k] = true;
	batch_advance(b, false);
	return b->failed ? 1 : 0;
}

static int fetch_folder(struct run *r, const char *folder, bool *temp_r)
{
	char dir[4400];
	if (folder_dir(r, folder, dir, sizeof dir) < 0)
		return -1;
	struct imap_mailbox_info info;
	if (imap_client_select(r->c, folder, true, &info, temp_r, r->err, r->errsz) < 0)
		return -1;
	struct fstate *s = state_find(r, folder, true);
	if (s == NULL) {
		errf(r->err, r->errsz, "%s: more than %u folders", r->state_path,
		       STATE_FOLDERS_MAX);
		return -1;
	}
	if (s->uidvalidity != 0 && s->uidvalidity != info.uidvalidity) {
		fprintf(r->o->warn ? r->o->warn : stderr,
			"yubin fetch: %s: the server renumbered the folder (UIDVALIDITY %u, was "
			"%u): fetching all of it again\n",
			folder, info.uidvalidity, s->uidvalidity);
		s->uid = 0;
	}
	s->uidvalidity = info.uidvalidity;
	if (info.exists == 0)
		return 0;
	struct new_ctx nc = {.after = s->uid};
	struct imap_cmd m;
	imap_cmd_init(&m, "FETCH");
	imap_cmd_add(&m, "UID FETCH %u:* (UID RFC822.SIZE)", s->uid + 1);
	if (imap_cmd_run(r->c, &m, new_cb, &nc, temp_r, r->err, r->errsz) < 0) {
		free(nc.v);
		return -1;
	}
	if (nc.n)
		qsort(nc.v, nc.n, sizeof *nc.v, by_uid);
	int ret = 0;
	size_t limit = nc.n;
	for (size_t i = 0; i < nc.n; i++)
		if (nc.v[i].size > MBOX_MSG_MAX) {
			r->skipped = true;
			snprintf(r->skipped_msg, sizeof r->skipped_msg,
				 "message UID %u of %s is %llu bytes, more than the %u fetched: left "
				 "on the server", nc.v[i].uid, folder,
				 (unsigned long long)nc.v[i].size, MBOX_MSG_MAX);
			/* nothing after it is fetched either: the record is "all up
			 * to UID", so it must stay below this one */
			limit = i;
			break;
		}
	struct batch b = {.r = r, .s = s, .dir = dir};
	buf_init(&b.lf, MBOX_MSG_MAX);
	for (size_t i = 0; i < limit && ret == 0;) {
		size_t n = 0;
		uint64_t bytes = 0;
		while (i + n < limit && n < BATCH_MAX && (n == 0 || bytes + nc.v[i + n].size <=
							    BATCH_BYTES))
			bytes += nc.v[i + n++].size;
		b.v = nc.v + i;
		b.n = n;
		b.done_upto = 0;
		memset(b.got, 0, sizeof b.got);
		imap_cmd_init(&m, "FETCH");
		imap_cmd_add(&m, "UID FETCH ");
		for (size_t k = 0; k < n; k++)
			imap_cmd_add(&m, "%s%u", k ? "," : "", nc.v[i + k].uid);
		imap_cmd_add(&m, " (UID BODY.PEEK[])");
		int cr = imap_cmd_run(r->c, &m, batch_cb, &b, temp_r, r->err, r->errsz);
		if (b.failed || cr < 0) {
			ret = -1;
			break;
		}
		batch_advance(&b, true);
		if (b.failed)
			ret = -1;
		i += n;
	}
	buf_free(&b.lf);
	free(nc.v);
	return ret;
}

int imap_fetch(const struct imap_fetch_opts *o, bool *temp_r, char *err, size_t errsz)
{
	bool tmp;
	if (temp_r == NULL)
		temp_r = &tmp;
	*temp_r = false;
	struct run r = {.o = o, .state_fd = -1, .err = err, .errsz = errsz};
	if (o->fetched_r)
		*o->fetched_r = 0;
	if (maildir_create(o->maildir) < 0) {
		errf(err, errsz, "make Maildir %s: %s", o->maildir, strerror(errno));
		return -1;
	}
	if ((size_t)snprintf(r.state_path, sizeof r.state_path, "%s",
			     o->state_path ? o->state_path : "") >= sizeof r.state_path ||
	    (!o->state_path && (size_t)snprintf(r.state_path, sizeof r.state_path,
						"%s/.yubin-imap", o->maildir) >= sizeof r.state_path)) {
		errf(err, errsz, "state file path too long");
		return -1;
	}
	int ret = state_load(&r);
	if (ret == 0 && (r.c = imap_client_open(o->server, temp_r, err, errsz)) == NULL)
		ret = -1;
	/* the folders, comma-separated */
	char list[1100];
	snprintf(list, sizeof list, "%s", o->folders && o->folders[0] ? o->folders : "INBOX");
	size_t nf = 0;
	for (char *save = NULL, *f = strtok_r(list, ",", &save); ret == 0 && f;
	     f = strtok_r(NULL, ",", &save)) {
		while (*f == ' ')
			f++;
		size_t l = strlen(f);
		while (l > 0 && f[l - 1] == ' ')
			f[--l] = '\0';
		if (!*f)
			continue;
		if (++nf > IMAP_FETCH_FOLDERS_MAX) {
			errf(err, errsz, "more than %d folders to fetch", IMAP_FETCH_FOLDERS_MAX);
			ret = -1;
			break;
		}
		if (fetch_folder(&r, f, temp_r) < 0) {
			size_t el = strlen(err);
			if (el + 40 < errsz)
				snprintf(err + el, errsz - el, " (folder %s)", f);
			ret = -1;
		}
	}
	imap_client_close(&r.c);
	if (r.state_fd >= 0)
		close(r.state_fd);
	if (ret == 0 && r.nst > 0) {
		ret = state_compact(&r);
	} else if (r.nst > 0) {
		char keep[1024];
		snprintf(keep, sizeof keep, "%s", err);
		(void)state_compact(&r);
		snprintf(err, errsz, "%s", keep);
	}
	if (ret == 0 && r.skipped) {
		errf(err, errsz, "%s", r.skipped_msg);
		ret = -1;
	}
	for (size_t i = 0; i < r.nst; i++)
		free(r.st[i].folder);
	free(r.st);
	if (o->fetched_r)
		*o->fetched_r = r.fetched;
	return ret;
}
