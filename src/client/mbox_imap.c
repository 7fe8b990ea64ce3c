/* mbox_imap.c - the mbox operations (mbox.h) over the account's IMAP
 * server (imap_client.h).
 *
 * Numbers are message sequence numbers.  Every operation on messages first
 * turns the numbers into UIDs (FETCH n,m (UID)) and then acts by UID (UID
 * STORE, UID MOVE or UID COPY + UID STORE \Deleted + UID EXPUNGE), so a
 * change made meanwhile by another client cannot make us act on the wrong
 * message.  Without UIDPLUS the fallback for MOVE and remove is EXPUNGE,
 * which also expunges messages another client marked \Deleted (said in
 * the docs; every server we know has UIDPLUS).
 *
 * Listing: FETCH 1:* (UID FLAGS RFC822.SIZE INTERNALDATE ENVELOPE); the
 * envelope's names decoded from RFC 2047. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "client/account.h"
#include "client/imap_client.h"
#include "client/mbox.h"
#include "core/util.h"
#include "mail/reader.h"

struct mbox_imap {
	struct mbox base;
	struct imap_client *c;
	struct imap_client_opts o;
	char *password;
	struct account acct;
};

static bool *tmpflag(bool *t)
{
	static bool dummy;
	return t ? t : &dummy;
}

/* ---- pieces ---- */

static const char *folder_name(const char *f)
{
	return f ? f : "INBOX";
}

static unsigned flags_of(const struct imap_resp *r, const struct imap_node *list)
{
	static const struct {
		const char *name;
		unsigned bit;
	} map[] = {
		{"\\Seen", MBOX_SEEN},       {"\\Answered", MBOX_ANSWERED},
		{"\\Flagged", MBOX_FLAGGED}, {"\\Deleted", MBOX_DELETED},
		{"\\Draft", MBOX_DRAFT},     {"\\Recent", MBOX_RECENT},
	};
	unsigned f = 0;
	for (const struct imap_node *n = imap_resp_child(r, list); n; n = imap_resp_next(r, n))
		for (size_t i = 0; i < ARRAY_LEN(map); i++)
			if (imap_node_is(n, map[i].name))
				f |= map[i].bit;
	return f;
}

/* Text for display: decoded, control characters made spaces. */
static void clean(struct buf *b)
{
	for (size_t i = 0; i < b->len; i++)
		if ((unsigned char)b->data[i] < 0x20 || b->data[i] == 0x7f)
			b->data[i] = ' ';
}

static void append_decoded(struct buf *b, const struct imap_node *n)
{
	if (n && (n->type == IMAP_NODE_STRING || n->type == IMAP_NODE_ATOM))
		reader_header_text(n->s, n->len, NULL, true, b);
}

static void append_node(struct buf *b, const struct imap_node *n)
{
	if (n && (n->type == IMAP_NODE_STRING || n->type == IMAP_NODE_ATOM))
		buf_append(b, n->s, n->len);
}

/* An envelope address list as "Name <a@b>, c@d". */
static char *addresses(const struct imap_resp *r, const struct imap_node *list)
{
	struct buf b;
	buf_init(&b, 4096);
	size_t k = 0;
	for (const struct imap_node *a = imap_resp_child(r, list); a; a = imap_resp_next(r, a)) {
		const struct imap_node *name = imap_resp_child(r, a);
		const struct imap_node *adl = imap_resp_next(r, name);
		const struct imap_node *mbox = imap_resp_next(r, adl);
		const struct imap_node *host = imap_resp_next(r, mbox);
		if (host == NULL || host->type == IMAP_NODE_NIL)
			continue;  /* group syntax markers */
		if (k++ > 0)
			buf_append(&b, ", ", 2);
		bool named = name && name->type != IMAP_NODE_NIL && name->len > 0;
		if (named) {
			append_decoded(&b, name);
			buf_append(&b, " <", 2);
		}
		append_node(&b, mbox);
		buf_append(&b, "@", 1);
		append_node(&b, host);
		if (named)
			buf_append(&b, ">", 1);
	}
	if (!b.data)
		buf_append(&b, "", 0);
	clean(&b);
	return buf_steal(&b, NULL);
}

static int64_t node_date(const struct imap_node *n)
{
	char *d = imap_node_dup(n);
	int64_t t = 0;
	int off;
	if (!mbox_parse_date(d, &t, &off))
		t = 0;
	free(d);
	return t;
}

/* ---- list ---- */

struct list_ctx {
	struct mbox_msg *v;
	size_t n;
};

static int list_cb(void *ctx, const struct imap_resp *r)
{
	struct list_ctx *l = ctx;
	if (strcmp(r->name, "FETCH") != 0 || r->number == 0 || r->number > l->n)
		return 0;
	struct mbox_msg *m = &l->v[r->number - 1];
	const struct imap_node *f = imap_resp_first(r);
	const struct imap_node *x;
	uint64_t v;
	if ((x = imap_fetch_item(r, f, "UID")) && imap_node_u64(x, &v) == 0 && v <= UINT32_MAX)
		m->uid = (uint32_t)v;
	if ((x = imap_fetch_item(r, f, "FLAGS")))
		m->flags = flags_of(r, x);
	if ((x = imap_fetch_item(r, f, "RFC822.SIZE")) && imap_node_u64(x, &v) == 0)
		m->size = (int64_t)v;
	if ((x = imap_fetch_item(r, f, "INTERNALDATE")) && m->date == 0)
		m->date = node_date(x);
	if ((x = imap_fetch_item(r, f, "ENVELOPE")) && x->type == IMAP_NODE_LIST) {
		const struct imap_node *e[10] = {0};
		const struct imap_node *k = imap_resp_child(r, x);
		for (size_t i = 0; i < 10 && k; i++, k = imap_resp_next(r, k))
			e[i] = k;
		int64_t t = e[0] && e[0]->type == IMAP_NODE_STRING ? node_date(e[0]) : 0;
		if (t != 0)
			m->date = t;
		struct buf b;
		buf_init(&b, 4096);
		append_decoded(&b, e[1]);
		if (!b.data)
			buf_append(&b, "", 0);
		clean(&b);
		free(m->subject);
		m->subject = buf_steal(&b, NULL);
		free(m->from);
		m->from = addresses(r, e[2]);
		free(m->to);
		m->to = addresses(r, e[5]);
		free(m->message_id);
		m->message_id = e[9] ? imap_node_dup(e[9]) : xstrdup("");
	}
	return 0;
}

static int do_select(struct mbox_imap *mi, const char *folder, bool ro,
		     struct imap_mailbox_info *info, bool *temp_r, char *err, size_t errsz)
{
	if (imap_client_select(mi->c, folder, ro, info, temp_r, err, errsz) < 0) {
		if (strstr(err, "NONEXISTENT") || strstr(err, "TRYCREATE") ||
		    strstr(err, "doesn't exist") || strstr(err, "no such")) {
			char was[512];
			snprintf(was, sizeof was, "%s", err);
			errf(err, errsz, "no folder \"%s\" (yubin folders lists them): %s",
			       folder_name(folder), was);
		}
		return -1;
	}
	return 0;
}

static int op_list(struct mbox *mb, const char *folder, struct mbox_msg **v_r, size_t *n_r,
		   bool *temp_r, char *err, size_t errsz)
{
	struct mbox_imap *mi = (struct mbox_imap *)mb;
	struct imap_mailbox_info info;
	*v_r = NULL;
	*n_r = 0;
	if (do_select(mi, folder, true, &info, temp_r, err, errsz) < 0)
		return -1;
	if (info.exists > MBOX_LIST_MAX) {
		errf(err, errsz, "%s holds %u messages: more than %u listed at once",
		       folder_name(folder), info.exists, MBOX_LIST_MAX);
		return -1;
	}
	struct list_ctx l = {.n = info.exists};
	if (l.n == 0)
		return 0;
	l.v = xcalloc(l.n, sizeof *l.v);
	for (size_t i = 0; i < l.n; i++)
		l.v[i].n = (uint32_t)(i + 1);
	struct imap_cmd m;
	imap_cmd_init(&m, "FETCH");
	imap_cmd_add(&m, "FETCH 1:%zu (UID FLAGS RFC822.SIZE INTERNALDATE ENVELOPE)", l.n);
	if (imap_cmd_run(mi->c, &m, list_cb, &l, temp_r, err, errsz) < 0) {
		mbox_msgs_free(l.v, l.n);
		return -1;
	}
	for (size_t i = 0; i < l.n; i++) {
		struct mbox_msg *x = &l.v[i];
		if (!x->from)
			x->from = xstrdup("");
		if (!x->to)
			x->to = xstrdup("");
		if (!x->subject)
			x->subject = xstrdup("");
		if (!x->message_id)
			x->message_id = xstrdup("");
	}
	*v_r = l.v;
	*n_r = l.n;
	return 0;
}

/* ---- numbers to UIDs ---- */

struct uid_ctx {
	const uint32_t *ns;
	size_t count;
	uint32_t *uids;
};

static int uid_cb(void *ctx, const struct imap_resp *r)
{
	struct uid_ctx *u = ctx;
	if (strcmp(r->name, "FETCH") != 0)
		return 0;
	const struct imap_node *x = imap_fetch_item(r, imap_resp_first(r), "UID");
	uint32_t uid;
	if (!x || imap_node_u32(x, &uid) < 0)
		return 0;
	for (size_t i = 0; i < u->count; i++)
		if (u->ns[i] == r->number)
			u->uids[i] = uid;
	return 0;
}

/* "1,5,7" of numbers (all checked against exists) into m. */
static int check_numbers(const struct imap_mailbox_info *info, const char *folder,
			 const uint32_t *ns, size_t count, char *err, size_t errsz)
{
	if (count == 0 || count > MBOX_ARGS_MAX) {
		errf(err, errsz, "give 1 to %u message numbers", MBOX_ARGS_MAX);
		return -1;
	}
	for (size_t i = 0; i < count; i++)
		if (ns[i] < 1 || ns[i] > info->exists) {
			errf(err, errsz, "no message %u (%u in %s)", ns[i], info->exists,
			       folder_name(folder));
			return -1;
		}
	return 0;
}

static void add_set(struct imap_cmd *m, const uint32_t *v, size_t count)
{
	for (size_t i = 0; i < count; i++)
		imap_cmd_add(m, "%s%u", i ? "," : "", v[i]);
}

/* Select folder read-write and get the UIDs of ns into *uids_r (heap). */
static int to_uids(struct mbox_imap *mi, const char *folder, bool ro, const uint32_t *ns,
		   size_t count, uint32_t **uids_r, bool *temp_r, char *err, size_t errsz)
{
	struct imap_mailbox_info info;
	if (do_select(mi, folder, ro, &info, temp_r, err, errsz) < 0)
		return -1;
	if (check_numbers(&info, folder, ns, count, err, errsz) < 0) {
		*tmpflag(temp_r) = false;
		return -1;
	}
	struct uid_ctx u = {.ns = ns, .count = count, .uids = xcalloc(count, sizeof(uint32_t))};
	struct imap_cmd m;
	imap_cmd_init(&m, "FETCH");
	imap_cmd_add(&m, "FETCH ");
	add_set(&m, ns, count);
	imap_cmd_add(&m, " (UID)");
	if (imap_cmd_run(mi->c, &m, uid_cb, &u, temp_r, err, errsz) < 0) {
		free(u.uids);
		return -1;
	}
	for (size_t i = 0; i < count; i++)
		if (u.uids[i] == 0) {
			errf(err, errsz, "message %u of %s went away meanwhile", ns[i],
			       folder_name(folder));
			free(u.uids);
			*tmpflag(temp_r) = false;
			return -1;
		}
	*uids_r = u.uids;
	return 0;
}

/* ---- fetch ---- */

struct body_ctx {
	uint32_t n;
	char *data;
	size_t len;
};

static int body_cb(void *ctx, const struct imap_resp *r)
{
	struct body_ctx *b = ctx;
	if (strcmp(r->name, "FETCH") != 0 || r->number != b->n)
		return 0;
	const struct imap_node *x = imap_fetch_item(r, imap_resp_first(r), "BODY[]");
	if (!x || x->type == IMAP_NODE_LIST)
		return 0;
	free(b->data);
	b->data = imap_node_dup(x);
	b->len = x->type == IMAP_NODE_NIL ? 0 : x->len;
	return 0;
}

static int op_fetch(struct mbox *mb, const char *folder, uint32_t n, bool peek, char **data_r,
		    size_t *len_r, bool *temp_r, char *err, size_t errsz)
{
	struct mbox_imap *mi = (struct mbox_imap *)mb;
	struct imap_mailbox_info info;
	if (do_select(mi, folder, peek, &info, temp_r, err, errsz) < 0)
		return -1;
	if (check_numbers(&info, folder, &n, 1, err, errsz) < 0) {
		*tmpflag(temp_r) = false;
		return -1;
	}
	struct body_ctx b = {.n = n};
	struct imap_cmd m;
	imap_cmd_init(&m, "FETCH");
	imap_cmd_add(&m, "FETCH %u (%s)", n, peek ? "BODY.PEEK[]" : "BODY[]");
	if (imap_cmd_run(mi->c, &m, body_cb, &b, temp_r, err, errsz) < 0) {
		free(b.data);
		return -1;
	}
	if (!b.data) {
		errf(err, errsz, "%s sent no body for message %u", imap_client_name(mi->c), n);
		*tmpflag(temp_r) = false;
		return -1;
	}
	*data_r = b.data;
	*len_r = b.len;
	return 0;
}

/* ---- flags ---- */

static void add_flag_list(struct imap_cmd *m, unsigned f, const char *kw)
{
	static const struct {
		unsigned bit;
		const char *name;
	} map[] = {
		{MBOX_SEEN, "\\Seen"},       {MBOX_ANSWERED, "\\Answered"},
		{MBOX_FLAGGED, "\\Flagged"}, {MBOX_DELETED, "\\Deleted"},
		{MBOX_DRAFT, "\\Draft"},
	};
	imap_cmd_add(m, "(");
	bool first = true;
	for (size_t i = 0; i < ARRAY_LEN(map); i++)
		if (f & map[i].bit) {
			imap_cmd_add(m, "%s%s", first ? "" : " ", map[i].name);
			first = false;
		}
	if (kw)
		imap_cmd_add(m, "%s%s", first ? "" : " ", kw);
	imap_cmd_add(m, ")");
}

static bool keyword_ok(const char *kw)
{
	if (!kw[0] || strlen(kw) > 100)
		return false;
	for (const char *p = kw; *p; p++)
		if ((unsigned char)*p <= 0x20 || (unsigned char)*p >= 0x7f ||
		    strchr("(){%*\"\\]", *p))
			return false;
	return true;
}

static int store(struct mbox_imap *mi, const uint32_t *uids, size_t count, char sign,
		 unsigned f, const char *kw, bool *temp_r, char *err, size_t errsz)
{
	struct imap_cmd m;
	imap_cmd_init(&m, "STORE");
	imap_cmd_add(&m, "UID STORE ");
	add_set(&m, uids, count);
	imap_cmd_add(&m, " %cFLAGS.SILENT ", sign);
	add_flag_list(&m, f, kw);
	return imap_cmd_run(mi->c, &m, NULL, NULL, temp_r, err, errsz);
}

static int op_set_flags(struct mbox *mb, const char *folder, const uint32_t *ns, size_t count,
			unsigned add, unsigned remove, const char *keyword, bool add_kw,
			bool *temp_r, char *err, size_t errsz)
{
	struct mbox_imap *mi = (struct mbox_imap *)mb;
	if (keyword && !keyword_ok(keyword)) {
		errf(err, errsz, "\"%s\" is not an IMAP keyword (letters, digits, $ and the "
		       "like, no spaces)", keyword);
		*tmpflag(temp_r) = false;
		return -1;
	}
	uint32_t *uids;
	if (to_uids(mi, folder, false, ns, count, &uids, temp_r, err, errsz) < 0)
		return -1;
	int r = 0;
	add &= ~MBOX_RECENT;
	remove &= ~MBOX_RECENT;
	const char *kwa = keyword && add_kw ? keyword : NULL;
	const char *kwr = keyword && !add_kw ? keyword : NULL;
	if (add || kwa)
		r = store(mi, uids, count, '+', add, kwa, temp_r, err, errsz);
	if (r == 0 && (remove || kwr))
		r = store(mi, uids, count, '-', remove, kwr, temp_r, err, errsz);
	free(uids);
	return r;
}

/* ---- move and remove ---- */

static int expunge_uids(struct mbox_imap *mi, const uint32_t *uids, size_t count,
			bool *temp_r, char *err, size_t errsz)
{
	if (store(mi, uids, count, '+', MBOX_DELETED, NULL, temp_r, err, errsz) < 0)
		return -1;
	struct imap_cmd m;
	imap_cmd_init(&m, "EXPUNGE");
	if (imap_client_has_cap(mi->c, "UIDPLUS")) {
		imap_cmd_add(&m, "UID EXPUNGE ");
		add_set(&m, uids, count);
	} else {
		imap_cmd_add(&m, "EXPUNGE");
	}
	return imap_cmd_run(mi->c, &m, NULL, NULL, temp_r, err, errsz);
}

static int move_uids(struct mbox_imap *mi, const uint32_t *uids, size_t count,
		     const char *dest, bool *temp_r, char *err, size_t errsz)
{
	bool mv = imap_client_has_cap(mi->c, "MOVE");
	struct imap_cmd m;
	imap_cmd_init(&m, mv ? "MOVE" : "COPY");
	imap_cmd_add(&m, mv ? "UID MOVE " : "UID COPY ");
	add_set(&m, uids, count);
	imap_cmd_add(&m, " ");
	if (imap_cmd_mailbox(mi->c, &m, dest, err, errsz) < 0) {
		buf_free(&m.text);
		*tmpflag(temp_r) = false;
		return -1;
	}
	if (imap_cmd_run(mi->c, &m, NULL, NULL, temp_r, err, errsz) < 0) {
		if (strstr(err, "TRYCREATE")) {
			char was[512];
			snprintf(was, sizeof was, "%s", err);
			errf(err, errsz, "no folder \"%s\" (yubin folders lists them): %s", dest,
			       was);
		}
		return -1;
	}
	return mv ? 0 : expunge_uids(mi, uids, count, temp_r, err, errsz);
}

static int op_move(struct mbox *mb, const char *folder, const uint32_t *ns, size_t count,
		   const char *dest, bool *temp_r, char *err, size_t errsz)
{
	struct mbox_imap *mi = (struct mbox_imap *)mb;
	uint32_t *uids;
	if (to_uids(mi, folder, false, ns, count, &uids, temp_r, err, errsz) < 0)
		return -1;
	int r = move_uids(mi, uids, count, dest, temp_r, err, errsz);
	free(uids);
	return r;
}

/* ---- folders ---- */

struct folder_ctx {
	struct mbox_imap *mi;
	struct mbox_folder *v;
	size_t n, cap;
	bool status;
};

static void special_of(const struct imap_resp *r, const struct imap_node *flags, char out[16])
{
	static const struct {
		const char *flag, *name;
	} map[] = {
		{"\\Sent", "sent"}, {"\\Trash", "trash"}, {"\\Drafts", "drafts"},
		{"\\Junk", "junk"}, {"\\Archive", "archive"},
	};
	out[0] = '\0';
	for (const struct imap_node *n = imap_resp_child(r, flags); n; n = imap_resp_next(r, n))
		for (size_t i = 0; i < ARRAY_LEN(map); i++)
			if (imap_node_is(n, map[i].flag))
				snprintf(out, 16, "%s", map[i].name);
}

static bool has_flag(const struct imap_resp *r, const struct imap_node *flags, const char *f)
{
	for (const struct imap_node *n = imap_resp_child(r, flags); n; n = imap_resp_next(r, n))
		if (imap_node_is(n, f))
			return true;
	return false;
}

static struct mbox_folder *find_folder(struct folder_ctx *fc, const char *name)
{
	for (size_t i = 0; i < fc->n; i++)
		if (strcmp(fc->v[i].name, name) == 0)
			return &fc->v[i];
	return NULL;
}

static void status_into(struct folder_ctx *fc, const struct imap_resp *r)
{
	const struct imap_node *name = imap_resp_first(r);
	const struct imap_node *list = imap_resp_next(r, name);
	if (!name || !list || list->type != IMAP_NODE_LIST)
		return;
	struct buf u;
	buf_init(&u, 8192);
	if (name->type == IMAP_NODE_STRING || name->type == IMAP_NODE_ATOM)
		imap_client_name_utf8(fc->mi->c, name->s, name->len, &u);
	if (u.data && strcasecmp(u.data, "INBOX") == 0)
		snprintf(u.data, u.len + 1, "INBOX");
	struct mbox_folder *f = u.data ? find_folder(fc, u.data) : NULL;
	buf_free(&u);
	if (!f)
		return;
	for (const struct imap_node *k = imap_resp_child(r, list); k;
	     k = imap_resp_next(r, imap_resp_next(r, k))) {
		uint64_t v;
		if (imap_node_u64(imap_resp_next(r, k), &v) < 0)
			continue;
		if (imap_node_is(k, "MESSAGES"))
			f->total = (int64_t)v;
		else if (imap_node_is(k, "UNSEEN"))
			f->unseen = (int64_t)v;
	}
}

static int folder_cb(void *ctx, const struct imap_resp *r)
{
	struct folder_ctx *fc = ctx;
	if (strcmp(r->name, "STATUS") == 0) {
		status_into(fc, r);
		return 0;
	}
	if (strcmp(r->name, "LIST") != 0)
		return 0;
	const struct imap_node *flags = imap_resp_first(r);
	const struct imap_node *delim = imap_resp_next(r, flags);
	const struct imap_node *name = imap_resp_next(r, delim);
	if (!name || (name->type != IMAP_NODE_STRING && name->type != IMAP_NODE_ATOM) ||
	    has_flag(r, flags, "\\Noselect") || has_flag(r, flags, "\\NonExistent") ||
	    fc->n >= MBOX_LIST_MAX)
		return 0;
	struct buf u;
	buf_init(&u, 8192);
	imap_client_name_utf8(fc->mi->c, name->s, name->len, &u);
	if (strcasecmp(u.data, "INBOX") == 0)
		snprintf(u.data, u.len + 1, "INBOX");
	if (find_folder(fc, u.data)) {
		buf_free(&u);
		return 0;
	}
	if (fc->n == fc->cap) {
		fc->cap = fc->cap ? fc->cap * 2 : 16;
		fc->v = xreallocarray(fc->v, fc->cap, sizeof *fc->v);
	}
	struct mbox_folder *f = &fc->v[fc->n++];
	memset(f, 0, sizeof *f);
	f->name = buf_steal(&u, NULL);
	f->total = f->unseen = -1;
	special_of(r, flags, f->special);
	return 0;
}

static int by_name(const void *a, const void *b)
{
	const struct mbox_folder *x = a, *y = b;
	bool xi = strcmp(x->name, "INBOX") == 0, yi = strcmp(y->name, "INBOX") == 0;
	if (xi != yi)
		return xi ? -1 : 1;
	return strcmp(x->name, y->name);
}

/* LIST (with special use, and counts when status) into fc. */
static int list_folders(struct mbox_imap *mi, struct folder_ctx *fc, bool status, bool *temp_r,
			char *err, size_t errsz)
{
	memset(fc, 0, sizeof *fc);
	fc->mi = mi;
	bool ext = imap_client_has_cap(mi->c, "LIST-EXTENDED");
	bool su = ext && imap_client_has_cap(mi->c, "SPECIAL-USE");
	bool ls = status && imap_client_has_cap(mi->c, "LIST-STATUS");
	struct imap_cmd m;
	imap_cmd_init(&m, "LIST");
	imap_cmd_add(&m, "LIST \"\" \"*\"");
	if (su || ls)
		imap_cmd_add(&m, " RETURN (%s%s%s)", su ? "SPECIAL-USE" : "", su && ls ? " " : "",
			     ls ? "STATUS (MESSAGES UNSEEN)" : "");
	if (imap_cmd_run(mi->c, &m, folder_cb, fc, temp_r, err, errsz) < 0)
		return -1;
	if (!find_folder(fc, "INBOX")) {
		if (fc->n == fc->cap) {
			fc->cap = fc->cap ? fc->cap * 2 : 16;
			fc->v = xreallocarray(fc->v, fc->cap, sizeof *fc->v);
		}
		fc->v[fc->n++] = (struct mbox_folder){.name = xstrdup("INBOX"), .total = -1,
						       .unseen = -1};
	}
	if (status && !ls) {
		for (size_t i = 0; i < fc->n; i++) {
			struct imap_cmd s;
			imap_cmd_init(&s, "STATUS");
			imap_cmd_add(&s, "STATUS ");
			if (imap_cmd_mailbox(mi->c, &s, fc->v[i].name, err, errsz) < 0) {
				buf_free(&s.text);
				continue;
			}
			imap_cmd_add(&s, " (MESSAGES UNSEEN)");
			if (imap_cmd_run(mi->c, &s, folder_cb, fc, temp_r, err, errsz) < 0 &&
			    *tmpflag(temp_r))
				return -1;
		}
		err[0] = '\0';
	}
	qsort(fc->v, fc->n, sizeof *fc->v, by_name);
	return 0;
}

static int op_folders(struct mbox *mb, struct mbox_folder **v_r, size_t *n_r, bool *temp_r,
		      char *err, size_t errsz)
{
	struct mbox_imap *mi = (struct mbox_imap *)mb;
	struct folder_ctx fc;
	if (list_folders(mi, &fc, true, temp_r, err, errsz) < 0) {
		mbox_folders_free(fc.v, fc.n);
		return -1;
	}
	*v_r = fc.v;
	*n_r = fc.n;
	return 0;
}

/* The folder with special use special ("trash"), else one called like it
 * ("Trash"), made when missing and make is true.  Its name into out. */
static int special_folder(struct mbox_imap *mi, const char *special, bool make, char *out,
			  size_t outsz, bool *temp_r, char *err, size_t errsz)
{
	struct folder_ctx fc;
	if (list_folders(mi, &fc, false, temp_r, err, errsz) < 0) {
		mbox_folders_free(fc.v, fc.n);
		return -1;
	}
	char cap[32];
	snprintf(cap, sizeof cap, "%s", special);
	cap[0] = (char)(cap[0] - 32);
	const char *found = NULL;
	for (size_t i = 0; i < fc.n && !found; i++)
		if (strcmp(fc.v[i].special, special) == 0)
			found = fc.v[i].name;
	for (size_t i = 0; i < fc.n && !found; i++)
		if (strcasecmp(fc.v[i].name, cap) == 0)
			found = fc.v[i].name;
	snprintf(out, outsz, "%s", found ? found : cap);
	mbox_folders_free(fc.v, fc.n);
	if (found || !make)
		return 0;
	struct imap_cmd m;
	imap_cmd_init(&m, "CREATE");
	imap_cmd_add(&m, "CREATE ");
	(void)imap_cmd_mailbox(mi->c, &m, out, err, errsz);
	if (imap_client_has_cap(mi->c, "CREATE-SPECIAL-USE"))
		imap_cmd_add(&m, " (USE (\\%s))", cap);
	return imap_cmd_run(mi->c, &m, NULL, NULL, temp_r, err, errsz);
}

static int op_remove(struct mbox *mb, const char *folder, const uint32_t *ns, size_t count,
		     bool expunge, bool *temp_r, char *err, size_t errsz)
{
	struct mbox_imap *mi = (struct mbox_imap *)mb;
	char trash[1100];
	if (!expunge &&
	    special_folder(mi, "trash", true, trash, sizeof trash, temp_r, err, errsz) < 0)
		return -1;
	if (!expunge && strcmp(trash, folder_name(folder)) == 0)
		expunge = true;
	uint32_t *uids;
	if (to_uids(mi, folder, false, ns, count, &uids, temp_r, err, errsz) < 0)
		return -1;
	int r = expunge ? expunge_uids(mi, uids, count, temp_r, err, errsz)
			: move_uids(mi, uids, count, trash, temp_r, err, errsz);
	free(uids);
	return r;
}

/* ---- search ---- */

struct search_ctx {
	uint32_t *v;
	size_t n, cap;
};

static int search_cb(void *ctx, const struct imap_resp *r)
{
	struct search_ctx *s = ctx;
	if (strcmp(r->name, "SEARCH") != 0)
		return 0;
	for (const struct imap_node *k = imap_resp_first(r); k; k = imap_resp_next(r, k)) {
		uint32_t v;
		if (imap_node_u32(k, &v) < 0 || s->n >= MBOX_LIST_MAX)
			continue;
		if (s->n == s->cap) {
			s->cap = s->cap ? s->cap * 2 : 64;
			s->v = xreallocarray(s->v, s->cap, sizeof *s->v);
		}
		s->v[s->n++] = v;
	}
	return 0;
}

static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
	return x < y ? -1 : x > y;
}

static bool has_8bit(const char *s)
{
	for (; s && *s; s++)
		if ((unsigned char)*s >= 0x80)
			return true;
	return false;
}

static void search_date(struct imap_cmd *m, const char *key, int64_t t)
{
	static const char *const mon[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
					  "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
	time_t tt = (time_t)t;
	struct tm tm;
	gmtime_r(&tt, &tm);
	imap_cmd_add(m, " %s %d-%s-%d", key, tm.tm_mday, mon[tm.tm_mon], tm.tm_year + 1900);
}

static int op_search(struct mbox *mb, const char *folder, const struct mbox_query *q,
		     uint32_t **ns_r, size_t *n_r, bool *temp_r, char *err, size_t errsz)
{
	struct mbox_imap *mi = (struct mbox_imap *)mb;
	if (do_select(mi, folder, true, NULL, temp_r, err, errsz) < 0)
		return -1;
	bool utf8 = has_8bit(q->from) || has_8bit(q->to) || has_8bit(q->subject) ||
		    has_8bit(q->body) || has_8bit(q->text);
	struct imap_cmd m;
	imap_cmd_init(&m, "SEARCH");
	imap_cmd_add(&m, "SEARCH%s ALL", utf8 ? " CHARSET UTF-8" : "");
	const struct {
		const char *key, *val;
	} strs[] = {
		{"FROM", q->from}, {"TO", q->to}, {"SUBJECT", q->subject}, {"BODY", q->body},
		{"TEXT", q->text},
	};
	for (size_t i = 0; i < ARRAY_LEN(strs); i++)
		if (strs[i].val) {
			imap_cmd_add(&m, " %s ", strs[i].key);
			imap_cmd_string(&m, strs[i].val, strlen(strs[i].val));
		}
	if (q->since)
		search_date(&m, "SENTSINCE", q->since);
	if (q->before)
		search_date(&m, "SENTBEFORE", q->before);
	static const struct {
		unsigned bit;
		const char *set, *clear;
	} fl[] = {
		{MBOX_SEEN, "SEEN", "UNSEEN"},          {MBOX_ANSWERED, "ANSWERED", "UNANSWERED"},
		{MBOX_FLAGGED, "FLAGGED", "UNFLAGGED"}, {MBOX_DELETED, "DELETED", "UNDELETED"},
		{MBOX_DRAFT, "DRAFT", "UNDRAFT"},       {MBOX_RECENT, "RECENT", "OLD"},
	};
	for (size_t i = 0; i < ARRAY_LEN(fl); i++) {
		if (q->flags_set & fl[i].bit)
			imap_cmd_add(&m, " %s", fl[i].set);
		if (q->flags_clear & fl[i].bit)
			imap_cmd_add(&m, " %s", fl[i].clear);
	}
	struct search_ctx s = {0};
	if (imap_cmd_run(mi->c, &m, search_cb, &s, temp_r, err, errsz) < 0) {
		free(s.v);
		return -1;
	}
	if (s.n)
		qsort(s.v, s.n, sizeof *s.v, cmp_u32);
	*ns_r = s.v;
	*n_r = s.n;
	return 0;
}

/* ---- append ---- */

static int op_append(struct mbox *mb, const char *folder, const char *special, const char *data,
		     size_t len, unsigned flags, bool *temp_r, char *err, size_t errsz)
{
	struct mbox_imap *mi = (struct mbox_imap *)mb;
	char name[1100];
	if (special) {
		if (special_folder(mi, special, true, name, sizeof name, temp_r, err, errsz) < 0)
			return -1;
		folder = name;
	}
	/* IMAP wants CR LF line ends */
	struct buf crlf;
	buf_init(&crlf, MBOX_MSG_MAX + MBOX_MSG_MAX / 8);
	for (size_t i = 0; i < len; i++) {
		if (data[i] == '\n' && (i == 0 || data[i - 1] != '\r') &&
		    buf_append(&crlf, "\r", 1) < 0)
			break;
		if (buf_append(&crlf, data + i, 1) < 0)
			break;
	}
	if (crlf.len < len) {
		buf_free(&crlf);
		errf(err, errsz, "message too large to store (%zu bytes)", len);
		*tmpflag(temp_r) = false;
		return -1;
	}
	struct imap_cmd m;
	imap_cmd_init(&m, "APPEND");
	imap_cmd_add(&m, "APPEND ");
	if (imap_cmd_mailbox(mi->c, &m, folder, err, errsz) < 0) {
		buf_free(&m.text);
		buf_free(&crlf);
		return -1;
	}
	imap_cmd_add(&m, " ");
	add_flag_list(&m, flags & ~MBOX_RECENT, NULL);
	imap_cmd_add(&m, " ");
	imap_cmd_literal(&m, crlf.data ? crlf.data : "", crlf.len);
	int r = imap_cmd_run(mi->c, &m, NULL, NULL, temp_r, err, errsz);
	buf_free(&crlf);
	return r;
}

static void op_close(struct mbox *mb)
{
	struct mbox_imap *mi = (struct mbox_imap *)mb;
	imap_client_close(&mi->c);
	if (mi->password) {
		explicit_bzero(mi->password, strlen(mi->password));
		free(mi->password);
	}
	free(mi);
}

static const struct mbox_ops imap_ops = {
	.list = op_list,
	.fetch = op_fetch,
	.set_flags = op_set_flags,
	.move = op_move,
	.remove = op_remove,
	.search = op_search,
	.folders = op_folders,
	.append = op_append,
	.close = op_close,
};

struct mbox *mbox_imap_open(const struct account *a, FILE *trace, bool *temp_r, char *err,
			    size_t errsz)
{
	return mbox_imap_open_password(a, NULL, trace, temp_r, err, errsz);
}

struct mbox *mbox_imap_open_password(const struct account *a, const char *password,
				     FILE *trace, bool *temp_r, char *err, size_t errsz)
{
	*tmpflag(temp_r) = false;
	if (a->in_proto != IN_IMAP || !a->in_host[0]) {
		errf(err, errsz, "the account has no IMAP server");
		return NULL;
	}
	struct mbox_imap *mi = xcalloc(1, sizeof *mi);
	mi->acct = *a;
	char prompt[700];
	snprintf(prompt, sizeof prompt, "%s at %s", a->in_user, a->in_host);
	if (password != NULL) {
		mi->password = xstrdup(password);
	} else if ((mi->password = account_password(&mi->acct, prompt, err, errsz)) == NULL) {
		free(mi);
		return NULL;
	}
	mi->o = (struct imap_client_opts){
		.host = mi->acct.in_host,
		.port = (unsigned)mi->acct.in_port,
		.tls = mi->acct.in_tls == TLS_IMPLICIT ? IMAP_CLIENT_TLS
		       : mi->acct.in_tls == TLS_NONE   ? IMAP_CLIENT_NONE
						       : IMAP_CLIENT_STARTTLS,
		.user = mi->acct.in_user,
		.password = mi->password,
		.cafile = mi->acct.cafile[0] ? mi->acct.cafile : NULL,
		.pin = mi->acct.pin_sha256[0] ? mi->acct.pin_sha256 : NULL,
		.trace = trace,
	};
	if ((mi->c = imap_client_open(&mi->o, temp_r, err, errsz)) == NULL) {
		explicit_bzero(mi->password, strlen(mi->password));
		free(mi->password);
		free(mi);
		return NULL;
	}
	mi->base.ops = &imap_ops;
	mi->base.kind = "imap";
	return &mi->base;
}
