/* jmap_set.c - JMAP writes: uploads, Email/set, Email/import, Mailbox/set,
 * and SearchSnippet/get.  See jmap_set.h. */
#include "proto/jmap/jmap_set.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "core/log.h"
#include "core/util.h"
#include "mail/compose.h"
#include "mail/decode.h"
#include "mail/mime.h"
#include "mail/rfc2047.h"
#include "mail/text.h"
#include "proto/jmap/jmap_session.h"
#include "proto/jmap/jmap_types.h"
#include "store/store.h"
#include "store/store_jmap.h"
#include "store/store_jmap_set.h"
#include "store/writer.h"

/* The largest message Email/import stores or Email/set composes, and the
 * attachments of one created Email together. */
#define MESSAGE_MAX (50u * 1024 * 1024)
#define ATTACH_TOTAL_MAX (40u * 1024 * 1024)
#define MAILBOXES_PER_EMAIL_MAX 100
#define PATCH_KEYS_MAX 200
/* SearchSnippet/get: the text looked at and the preview's size. */
#define SNIPPET_TEXT_MAX (1024u * 1024)
#define SNIPPET_TERMS_MAX 16
#define SNIPPET_FILTER_NODES_MAX 256
#define PREVIEW_BEFORE 40
#define PREVIEW_LEN 255

/* ---- small helpers ---- */

static json_t *seterr(const char *type, const char *desc, const char *prop)
{
	json_t *e = json_pack("{s:s}", "type", type);
	if (desc)
		json_object_set_new(e, "description", json_string(desc));
	if (prop)
		json_object_set_new(e, "properties", json_pack("[s]", prop));
	return e;
}

static json_t *obj_or_null(json_t *o)
{
	if (json_object_size(o) > 0)
		return o;
	json_decref(o);
	return json_null();
}

/* "#creation id" -> the id it stands for (local: this call's creates so
 * far, then the request's createdIds); any other id as it is; NULL for
 * an unknown reference. */
static const char *resolve(const struct jmap_mail_ctx *c, json_t *local, const char *id)
{
	if (id[0] != '#')
		return id;
	json_t *v = local ? json_object_get(local, id + 1) : NULL;
	if (!v && c->created_ids)
		v = json_object_get(c->created_ids, id + 1);
	return json_string_value(v);
}

static bool parse_num_id(const char *id, char prefix, int64_t *v_r)
{
	if (id == NULL || id[0] != prefix || id[1] < '1' || id[1] > '9')
		return false;
	int64_t v = 0;
	for (const char *p = id + 1; *p; p++) {
		if (*p < '0' || *p > '9' || v > (INT64_MAX - 9) / 10)
			return false;
		v = v * 10 + (*p - '0');
	}
	*v_r = v;
	return true;
}

static bool mailbox_id_parse(const struct jmap_mail_ctx *c, json_t *local, const char *id,
			     int64_t *mb_r)
{
	return parse_num_id(resolve(c, local, id), 'm', mb_r);
}

static bool email_id_parse(const struct jmap_mail_ctx *c, json_t *local, const char *id,
			   int64_t *body_r)
{
	const char *r = resolve(c, local, id);
	return r && jmap_email_id_parse(r, body_r);
}

/* ---- keywords ---- */

/* System flags and other keywords (lower-case, heap). */
struct kwset {
	uint32_t flags;
	char **kw;
	size_t n;
};

static void kwset_free(struct kwset *k)
{
	for (size_t i = 0; i < k->n; i++)
		free(k->kw[i]);
	free(k->kw);
	memset(k, 0, sizeof *k);
}

/* A JMAP keyword (RFC 8621 4.1.1) the store can hold. */
static bool kwset_add(struct kwset *k, const char *kw)
{
	if (!jmap_keyword_ok(kw))
		return false;
	uint32_t f = jmap_keyword_flag(kw);
	if (f) {
		k->flags |= f;
		return true;
	}
	for (size_t i = 0; i < k->n; i++)
		if (strcasecmp(k->kw[i], kw) == 0)
			return true;
	if (k->n >= STORE_KEYWORDS_MAX)
		return false;
	k->kw = xreallocarray(k->kw, k->n + 1, sizeof *k->kw);
	k->kw[k->n] = xstrdup(kw);
	str_lower(k->kw[k->n++]);
	return true;
}

/* A Keywords object ({"kw": true}). */
static bool kwset_parse(json_t *o, struct kwset *k)
{
	if (!json_is_object(o))
		return false;
	const char *key;
	json_t *v;
	json_object_foreach(o, key, v)
		if (!json_is_true(v) || !kwset_add(k, key))
			return false;
	return true;
}

/* The keywords as the store keeps them: space-separated (heap or NULL). */
static char *kwset_join(const struct kwset *k)
{
	if (k->n == 0)
		return NULL;
	struct buf b;
	buf_init(&b, (size_t)STORE_KEYWORDS_MAX * (STORE_KEYWORD_LEN_MAX + 1) + 1);
	for (size_t i = 0; i < k->n; i++) {
		if (i)
			buf_append(&b, " ", 1);
		buf_append_str(&b, k->kw[i]);
	}
	return buf_steal(&b, NULL);
}

/* ---- mailbox id sets ---- */

struct idset {
	int64_t *v;
	size_t n;
};

static void idset_add(struct idset *s, int64_t id)
{
	for (size_t i = 0; i < s->n; i++)
		if (s->v[i] == id)
			return;
	s->v = xreallocarray(s->v, s->n + 1, sizeof *s->v);
	s->v[s->n++] = id;
}

static bool idset_has(const struct idset *s, int64_t id)
{
	for (size_t i = 0; i < s->n; i++)
		if (s->v[i] == id)
			return true;
	return false;
}

static void idset_free(struct idset *s)
{
	free(s->v);
	memset(s, 0, sizeof *s);
}

/* A mailboxIds object ({"m5": true}). */
static bool mbset_parse(const struct jmap_mail_ctx *c, json_t *local, json_t *o,
			struct idset *s)
{
	if (!json_is_object(o) || json_object_size(o) > MAILBOXES_PER_EMAIL_MAX)
		return false;
	const char *key;
	json_t *v;
	json_object_foreach(o, key, v) {
		int64_t id;
		if (!json_is_true(v) || !mailbox_id_parse(c, local, key, &id))
			return false;
		idset_add(s, id);
	}
	return true;
}

/* ---- uploads ---- */

static void upload_dir(struct store *st, int64_t account_id, char *out, size_t sz)
{
	snprintf(out, sz, "%s/uploads/a%lld", store_data_dir(st), (long long)account_id);
}

/* mkdir path 0700 and make its entry durable in parent.  0 / -1. */
static int make_dir(const char *path, const char *parent)
{
	if (mkdir(path, 0700) == 0)
		return fsync_dir(parent);
	return errno == EEXIST ? 0 : -1;
}

static bool upload_name(const char *name, bool *tmp_r)
{
	*tmp_r = strncmp(name, "tmp-", 4) == 0;
	const char *h = *tmp_r ? name + 4 : name;
	if (strlen(h) != 32)
		return false;
	for (const char *p = h; *p; p++)
		if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f')))
			return false;
	return true;
}

/* Remove the expired uploads of one account directory (and temporary
 * files a crash left); count what stays. */
static void sweep_dir(const char *dir, time_t now, size_t *n_r, int64_t *bytes_r)
{
	size_t n = 0;
	int64_t bytes = 0;
	DIR *d = opendir(dir);
	if (d) {
		struct dirent *de;
		while ((de = readdir(d)) != NULL) {
			bool tmp;
			struct stat sb;
			if (!upload_name(de->d_name, &tmp) ||
			    fstatat(dirfd(d), de->d_name, &sb, AT_SYMLINK_NOFOLLOW) < 0 ||
			    !S_ISREG(sb.st_mode))
				continue;
			time_t ttl = tmp ? 3600 : JMAP_UPLOAD_TTL;
			if (sb.st_mtime + ttl < now || sb.st_mtime > now + 3600) {
				if (unlinkat(dirfd(d), de->d_name, 0) < 0 && errno != ENOENT)
					log_warn("jmap: cannot remove expired upload "
						 "%s/%s: %s", dir, de->d_name,
						 strerror(errno));
				continue;
			}
			n++;
			bytes += (int64_t)sb.st_size;
		}
		closedir(d);
	}
	*n_r = n;
	*bytes_r = bytes;
}

/* Once a process: every account's expired uploads. */
static void sweep_all(struct store *st)
{
	static atomic_bool swept;
	if (atomic_exchange(&swept, true))
		return;
	char top[4096], dir[4400];
	snprintf(top, sizeof top, "%s/uploads", store_data_dir(st));
	DIR *d = opendir(top);
	if (!d)
		return;
	struct dirent *de;
	time_t now = time(NULL);
	while ((de = readdir(d)) != NULL) {
		int64_t id;
		if (!parse_num_id(de->d_name, 'a', &id))
			continue;
		size_t n;
		int64_t bytes;
		snprintf(dir, sizeof dir, "%s/%s", top, de->d_name);
		sweep_dir(dir, now, &n, &bytes);
	}
	closedir(d);
}

int jmap_upload_write(struct store *st, int64_t account_id, const void *data, size_t len,
		      char blobid_r[JMAP_UPLOAD_ID_LEN + 1], char **error_r)
{
	char top[4096], dir[4200], tmp[4300], path[4300], hex[33];
	sweep_all(st);
	snprintf(top, sizeof top, "%s/uploads", store_data_dir(st));
	upload_dir(st, account_id, dir, sizeof dir);
	if (make_dir(top, store_data_dir(st)) < 0 || make_dir(dir, top) < 0) {
		*error_r = xasprintf("cannot create %s: %s", dir, strerror(errno));
		return -1;
	}
	size_t n;
	int64_t bytes;
	sweep_dir(dir, time(NULL), &n, &bytes);
	if (n >= JMAP_UPLOAD_MAX_FILES) {
		*error_r = xasprintf("too many pending uploads (at most %d; they expire after "
				     "24 hours)", JMAP_UPLOAD_MAX_FILES);
		return 1;
	}
	if ((int64_t)len > JMAP_UPLOAD_MAX_BYTES - bytes) {
		*error_r = xasprintf("pending uploads would pass %lld MiB (they expire after "
				     "24 hours)", JMAP_UPLOAD_MAX_BYTES / (1024 * 1024));
		return 1;
	}
	unsigned char rnd[16];
	if (getrandom(rnd, sizeof rnd, 0) != (ssize_t)sizeof rnd) {
		*error_r = xasprintf("getrandom: %s", strerror(errno));
		return -1;
	}
	for (size_t i = 0; i < sizeof rnd; i++)
		snprintf(hex + 2 * i, 3, "%02x", rnd[i]);
	snprintf(tmp, sizeof tmp, "%s/tmp-%s", dir, hex);
	snprintf(path, sizeof path, "%s/%s", dir, hex);
	int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0) {
		*error_r = xasprintf("cannot create %s: %s", tmp, strerror(errno));
		return -1;
	}
	if (write_full(fd, data, len) < 0 || fsync(fd) < 0) {
		*error_r = xasprintf("cannot write %s: %s", tmp, strerror(errno));
		close(fd);
		unlink(tmp);
		return -1;
	}
	if (close(fd) < 0 || rename(tmp, path) < 0 || fsync_dir(dir) < 0) {
		*error_r = xasprintf("cannot write %s: %s", path, strerror(errno));
		unlink(tmp);
		unlink(path);
		return -1;
	}
	snprintf(blobid_r, JMAP_UPLOAD_ID_LEN + 1, "u%s", hex);
	return 0;
}

int jmap_upload_read(struct store *st, int64_t account_id, const char *blobid, struct buf *out)
{
	bool tmp;
	if (blobid[0] != 'u' || !upload_name(blobid + 1, &tmp) || tmp)
		return 0;
	char dir[4200], path[4300];
	upload_dir(st, account_id, dir, sizeof dir);
	snprintf(path, sizeof path, "%s/%s", dir, blobid + 1);
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return errno == ENOENT ? 0 : -1;
	struct stat sb;
	if (fstat(fd, &sb) < 0 || !S_ISREG(sb.st_mode)) {
		close(fd);
		return -1;
	}
	if (sb.st_mtime + JMAP_UPLOAD_TTL < time(NULL)) {
		close(fd);
		return 0;
	}
	if ((uint64_t)sb.st_size > buf_room(out)) {
		close(fd);
		return -1;
	}
	size_t want = (size_t)sb.st_size, got = 0;
	char *tmpbuf = xmalloc(want + 1);
	while (got < want) {
		ssize_t r = read(fd, tmpbuf + got, want - got);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		got += (size_t)r;
	}
	close(fd);
	int rc = got == want && buf_append(out, tmpbuf, got) == 0 ? 1 : -1;
	free(tmpbuf);
	return rc;
}

/* Any blob of the account: an upload or a message (part). */
static int blob_read(const struct jmap_mail_ctx *c, const char *blobid, struct buf *out)
{
	if (blobid[0] == 'u')
		return jmap_upload_read(c->st, c->account_id, blobid, out);
	return jmap_blob_read(c->st, c->account_id, blobid, out);
}

/* ---- new messages (Email/import, Email/set create) ---- */

struct newmsg {
	const char *cid;
	json_t *err;                /* its SetError, once it has failed */
	char *data;                 /* the message, CRLF */
	size_t len;
	char relpath[64];
	bool written;
	struct idset mbs;
	struct kwset kw;
	int64_t received;
	int64_t body_id;
};

static void newmsg_free(struct newmsg *m)
{
	json_decref(m->err);
	free(m->data);
	idset_free(&m->mbs);
	kwset_free(&m->kw);
}

/* mailboxIds, keywords and receivedAt of an import or a create. */
static json_t *newmsg_common(const struct jmap_mail_ctx *c, json_t *o, struct newmsg *m)
{
	json_t *v = json_object_get(o, "mailboxIds");
	if (!mbset_parse(c, NULL, v, &m->mbs) || m->mbs.n == 0)
		return seterr("invalidProperties", "mailboxIds must name at least one mailbox",
			      "mailboxIds");
	v = json_object_get(o, "keywords");
	if (v && !kwset_parse(v, &m->kw))
		return seterr("invalidProperties", "keywords must be an object of valid "
			      "keywords set to true", "keywords");
	v = json_object_get(o, "receivedAt");
	m->received = now_unix();
	if (v && !jmap_date_parse(json_string_value(v), true, &m->received))
		return seterr("invalidProperties", "receivedAt must be a UTCDate", "receivedAt");
	return NULL;
}

/* data with every bare LF made CR LF (heap, *len_r). */
static char *crlf(const char *data, size_t len, size_t *len_r)
{
	size_t extra = 0;
	for (size_t i = 0; i < len; i++)
		if (data[i] == '\n' && (i == 0 || data[i - 1] != '\r'))
			extra++;
	char *o = xmalloc(len + extra + 1);
	size_t w = 0;
	for (size_t i = 0; i < len; i++) {
		if (data[i] == '\n' && (i == 0 || data[i - 1] != '\r'))
			o[w++] = '\r';
		o[w++] = data[i];
	}
	o[w] = '\0';
	*len_r = w;
	return o;
}

/* An RFC 5322 message, at least in shape: a header field first. */
static bool looks_like_message(const char *data, size_t len)
{
	size_t pos = 0;
	struct mime_field f;
	return len > 0 && mime_header_next(data, len, &pos, &f) && f.name_len > 0;
}

/* In t: the body, a copy in each mailbox, its text in the index.  0 ok,
 * 1 refused (m->err set), -1 store error. */
static int newmsg_store(const struct jmap_mail_ctx *c, struct store_txn *t, struct newmsg *m,
			char **error_r)
{
	for (size_t i = 0; i < m->mbs.n; i++) {
		int ok = store_jmapset_mailbox_ok(t, c->account_id, m->mbs.v[i], error_r);
		if (ok < 0)
			return -1;
		if (ok == 0) {
			m->err = seterr("invalidProperties", "no such mailbox (or it cannot hold "
					"messages)", "mailboxIds");
			return 1;
		}
	}
	int fits = store_jmapset_quota_fits(t, c->account_id, (int64_t)m->len * (int64_t)m->mbs.n,
					    error_r);
	if (fits < 0)
		return -1;
	if (fits == 0) {
		m->err = seterr("overQuota", "the account's storage quota would be exceeded",
				NULL);
		return 1;
	}
	if (store_txn_add_body(t, m->relpath, (int64_t)m->len, &m->body_id, error_r) < 0)
		return -1;
	char *kws = kwset_join(&m->kw);
	for (size_t i = 0; i < m->mbs.n; i++) {
		uint32_t uid;
		if (store_txn_append_kw(t, m->mbs.v[i], m->body_id, m->kw.flags, kws, m->received,
					&uid, error_r) < 0) {
			free(kws);
			return -1;
		}
	}
	free(kws);
	/* The full-text index now when it fits; else the writer's catch-up. */
	if (m->len <= STORE_INDEX_MESSAGE_MAX) {
		struct buf text;
		buf_init(&text, STORE_INDEX_TEXT_MAX);
		if (mail_text_extract(m->data, m->len, &text) == 1 &&
		    store_txn_index_text(t, m->body_id, text.data ? text.data : "", text.len,
					 error_r) < 0) {
			buf_free(&text);
			return -1;
		}
		buf_free(&text);
	}
	return 0;
}

static json_t *created_json(const struct newmsg *m)
{
	return json_pack("{s:o, s:o, s:o, s:I}", "id",
			 json_sprintf("e%lld", (long long)m->body_id), "blobId",
			 json_sprintf("b%lld", (long long)m->body_id), "threadId",
			 json_sprintf("t%lld", (long long)m->body_id), "size", (json_int_t)m->len);
}

/* ---- Email/set create: a message composed from the Email object ---- */

static const char *const create_props[] = {
	"mailboxIds", "keywords", "receivedAt", "from", "to", "cc", "bcc", "replyTo", "subject",
	"sentAt", "messageId", "inReplyTo", "references", "textBody", "htmlBody",
	"attachments", "bodyValues", NULL,
};

struct addrs {
	struct compose_addr *v;
	size_t n;
};

/* EmailAddress[] -> compose addresses (pointing into the JSON).  false
 * when it is not one. */
static bool addrs_parse(json_t *a, struct addrs *r)
{
	if (a == NULL || json_is_null(a))
		return true;
	if (!json_is_array(a) || json_array_size(a) > COMPOSE_RCPTS_MAX)
		return false;
	r->v = xcalloc(json_array_size(a) + 1, sizeof *r->v);
	size_t i;
	json_t *e;
	json_array_foreach(a, i, e) {
		json_t *name = json_object_get(e, "name"), *email = json_object_get(e, "email");
		if (!json_is_string(email) ||
		    (name && !json_is_null(name) && !json_is_string(name)))
			return false;
		r->v[r->n].addr = json_string_value(email);
		r->v[r->n].name = json_string_value(name);
		r->n++;
	}
	return true;
}

/* A message-id list (["a@b"]) -> "<a@b> <c@d>" (heap), NULL when absent
 * or invalid (*bad_r). */
static char *ids_join(json_t *a, bool *bad_r)
{
	*bad_r = false;
	if (a == NULL || json_is_null(a))
		return NULL;
	if (!json_is_array(a) || json_array_size(a) == 0 ||
	    json_array_size(a) > COMPOSE_REFS_MAX) {
		*bad_r = true;
		return NULL;
	}
	struct buf b;
	buf_init(&b, (size_t)COMPOSE_REFS_MAX * (COMPOSE_ID_MAX + 1));
	size_t i;
	json_t *e;
	json_array_foreach(a, i, e) {
		const char *s = json_string_value(e);
		size_t n = s ? strlen(s) : 0;
		bool ok = n > 0 && n + 2 <= COMPOSE_ID_MAX && strchr(s, '@');
		for (size_t k = 0; ok && k < n; k++)
			ok = s[k] > ' ' && s[k] < 127 && !strchr("<>()\\\",;", s[k]);
		if (!ok) {
			*bad_r = true;
			buf_free(&b);
			return NULL;
		}
		buf_printf(&b, "%s<%s>", i ? " " : "", s);
	}
	return buf_steal(&b, NULL);
}

/* The text of a textBody / htmlBody list (at most one part, its value in
 * bodyValues).  1 found, 0 absent, -1 invalid. */
static int body_text(json_t *list, json_t *values, const char *type, const char **text_r,
		     size_t *len_r)
{
	if (list == NULL || json_is_null(list))
		return 0;
	if (!json_is_array(list) || json_array_size(list) > 1)
		return -1;
	if (json_array_size(list) == 0)
		return 0;
	json_t *part = json_array_get(list, 0);
	json_t *pid = json_object_get(part, "partId"), *t = json_object_get(part, "type");
	if (!json_is_string(pid) || json_object_get(part, "blobId") ||
	    (t && !json_is_null(t) && (!json_is_string(t) ||
				       strcasecmp(json_string_value(t), type) != 0)))
		return -1;
	json_t *v = json_object_get(json_object_get(values, json_string_value(pid)), "value");
	if (!json_is_string(v))
		return -1;
	*text_r = json_string_value(v);
	*len_r = json_string_length(v);
	return 1;
}

/* "type/subtype" for an attachment (parameters dropped), or NULL. */
static char *att_type(json_t *t)
{
	const char *s = json_string_value(t);
	if (s == NULL)
		return NULL;
	size_t n = strcspn(s, "; ");
	char *r = xstrndup(s, n);
	size_t slash = strcspn(r, "/");
	bool ok = n > 0 && n <= COMPOSE_TYPE_MAX && r[slash] == '/' && slash > 0 &&
		  r[slash + 1] != '\0';
	for (size_t i = 0; ok && r[i]; i++)
		ok = (r[i] >= 'a' && r[i] <= 'z') || (r[i] >= 'A' && r[i] <= 'Z') ||
		     (r[i] >= '0' && r[i] <= '9') || strchr("!#$&^_.+-", r[i]) || i == slash;
	if (ok && (strncasecmp(r, "multipart/", 10) == 0 || strncasecmp(r, "message/", 8) == 0))
		ok = false;
	if (!ok)
		FREE(r);
	return r;
}

/* "Bcc: a, b" for the stored draft (compose never writes one).  -1 when
 * an address is not a plain ASCII addr-spec or a name is unusable. */
static int bcc_header(const struct addrs *bcc, struct buf *out)
{
	if (bcc->n == 0)
		return 0;
	buf_append_str(out, "Bcc: ");
	for (size_t i = 0; i < bcc->n; i++) {
		const char *a = bcc->v[i].addr, *name = bcc->v[i].name;
		const char *at = strchr(a, '@');
		bool ok = at && at != a && at[1] && strlen(a) <= 320;
		for (const char *p = a; ok && *p; p++)
			ok = *p > ' ' && *p < 127 && !strchr("<>()[]\\,;:\"", *p);
		if (!ok)
			return -1;
		if (i)
			buf_append_str(out, ",\r\n ");
		if (name && *name) {
			bool ascii = strlen(name) <= COMPOSE_NAME_MAX;
			for (const char *p = name; ascii && *p; p++)
				ascii = *p >= ' ' && *p < 127;
			if (ascii) {
				buf_append(out, "\"", 1);
				for (const char *p = name; *p; p++) {
					if (*p == '"' || *p == '\\')
						buf_append(out, "\\", 1);
					buf_append(out, p, 1);
				}
				buf_append(out, "\" ", 2);
			} else {
				const char *why;
				if (strlen(name) > COMPOSE_NAME_MAX || strpbrk(name, "\r\n") ||
				    rfc2047_encode(name, strlen(name), "UTF-8", RFC2047_B, out,
						   &why) < 0)
					return -1;
				buf_append(out, " ", 1);
			}
		}
		if (buf_printf(out, "<%s>", a) < 0)
			return -1;
	}
	return buf_append_str(out, "\r\n");
}

struct att_data {
	struct compose_attachment *v;
	struct buf *bufs;
	char **types;
	size_t n;
};

static void att_free(struct att_data *a)
{
	for (size_t i = 0; i < a->n; i++) {
		buf_free(&a->bufs[i]);
		free(a->types[i]);
	}
	free(a->v);
	free(a->bufs);
	free(a->types);
	memset(a, 0, sizeof *a);
}

/* The attachments' blobs.  NULL or a SetError. */
static json_t *att_load(const struct jmap_mail_ctx *c, json_t *list, struct att_data *a)
{
	if (list == NULL || json_is_null(list))
		return NULL;
	if (!json_is_array(list) || json_array_size(list) > COMPOSE_ATT_MAX)
		return seterr("invalidProperties", "attachments must be an array of at most 100 "
			      "parts", "attachments");
	size_t n = json_array_size(list);
	a->v = xcalloc(n + 1, sizeof *a->v);
	a->bufs = xcalloc(n + 1, sizeof *a->bufs);
	a->types = xcalloc(n + 1, sizeof *a->types);
	size_t total = 0, i;
	json_t *e;
	json_array_foreach(list, i, e) {
		json_t *blob = json_object_get(e, "blobId"), *name = json_object_get(e, "name");
		if (!json_is_string(blob) ||
		    (name && !json_is_null(name) && !json_is_string(name)))
			return seterr("invalidProperties", "each attachment needs a blobId (and a "
				      "string or null name)", "attachments");
		buf_init(&a->bufs[i], ATTACH_TOTAL_MAX - total);
		a->n = i + 1;
		int rc = blob_read(c, json_string_value(blob), &a->bufs[i]);
		if (rc == 0) {
			json_t *err = seterr("blobNotFound", "no such blob", NULL);
			json_object_set_new(err, "notFound", json_pack("[O]", blob));
			return err;
		}
		if (rc < 0)
			return seterr("tooLarge", "the attachments are too large (or unreadable)",
				      NULL);
		total += a->bufs[i].len;
		a->types[i] = att_type(json_object_get(e, "type"));
		a->v[i].filename = json_string_value(name);
		a->v[i].content_type = a->types[i];
		a->v[i].data = (const unsigned char *)a->bufs[i].data;
		a->v[i].len = a->bufs[i].len;
	}
	return NULL;
}

/* The message of an Email/set create into m->data.  NULL or a SetError. */
static json_t *compose_create(const struct jmap_mail_ctx *c, json_t *o, struct newmsg *m)
{
	const char *key;
	json_t *v;
	json_object_foreach(o, key, v) {
		bool known = false;
		for (size_t i = 0; create_props[i] && !known; i++)
			known = strcmp(key, create_props[i]) == 0;
		if (!known)
			return seterr("invalidProperties", "this property cannot be set on a new "
				      "Email here", key);
	}
	json_t *err = newmsg_common(c, o, m);
	if (err)
		return err;
	struct addrs from = {0}, to = {0}, cc = {0}, bcc = {0}, rt = {0};
	struct att_data att = {0};
	char *irt = NULL, *refs = NULL, *mid = NULL;
	struct buf out;
	buf_init(&out, MESSAGE_MAX);
	const char *const names[] = {"from", "to", "cc", "bcc", "replyTo"};
	struct addrs *lists[] = {&from, &to, &cc, &bcc, &rt};
	for (size_t i = 0; i < ARRAY_LEN(names) && !err; i++)
		if (!addrs_parse(json_object_get(o, names[i]), lists[i]))
			err = seterr("invalidProperties", "not an EmailAddress list", names[i]);
	if (!err && from.n > 1)
		err = seterr("invalidProperties", "one From address only", "from");
	json_t *subj = json_object_get(o, "subject");
	if (!err && subj && !json_is_null(subj) && !json_is_string(subj))
		err = seterr("invalidProperties", "subject must be a string", "subject");
	int64_t date = now_unix();
	json_t *sent = json_object_get(o, "sentAt");
	if (!err && sent && !json_is_null(sent) && !jmap_date_parse(json_string_value(sent), false,
							       &date))
		err = seterr("invalidProperties", "sentAt must be a Date", "sentAt");
	bool bad = false;
	if (!err && ((irt = ids_join(json_object_get(o, "inReplyTo"), &bad)), bad))
		err = seterr("invalidProperties", "not a message-id list", "inReplyTo");
	if (!err && ((refs = ids_join(json_object_get(o, "references"), &bad)), bad))
		err = seterr("invalidProperties", "not a message-id list", "references");
	json_t *midv = json_object_get(o, "messageId");
	if (!err && ((mid = ids_join(midv, &bad)), bad || json_array_size(midv) > 1))
		err = seterr("invalidProperties", "messageId is one message id", "messageId");
	json_t *values = json_object_get(o, "bodyValues");
	if (!err && values && !json_is_object(values))
		err = seterr("invalidProperties", "bodyValues must be an object", "bodyValues");
	const char *text = NULL, *html = NULL;
	size_t text_len = 0, html_len = 0;
	if (!err && body_text(json_object_get(o, "textBody"), values, "text/plain", &text,
			      &text_len) < 0)
		err = seterr("invalidProperties", "textBody must be one text/plain part whose "
			     "partId is in bodyValues", "textBody");
	if (!err && body_text(json_object_get(o, "htmlBody"), values, "text/html", &html,
			      &html_len) < 0)
		err = seterr("invalidProperties", "htmlBody must be one text/html part whose "
			     "partId is in bodyValues", "htmlBody");
	if (!err)
		err = att_load(c, json_object_get(o, "attachments"), &att);
	char msgid[COMPOSE_MSGID_SIZE];
	if (!err && mid == NULL) {
		const char *at = strrchr(c->address, '@');
		if (compose_message_id(at ? at + 1 : "localhost", msgid, sizeof msgid) == 0)
			mid = xstrdup(msgid);
	}
	if (!err && bcc_header(&bcc, &out) < 0)
		err = seterr("invalidProperties", "a Bcc address is not a plain ASCII address",
			     "bcc");
	if (!err) {
		struct compose_msg cm = {
			.from = from.n ? from.v[0] : (struct compose_addr){NULL, c->address},
			.to = to.v, .nto = to.n, .cc = cc.v, .ncc = cc.n,
			.reply_to = rt.v, .nreply_to = rt.n,
			.subject = json_string_value(subj),
			.text = text ? text : "", .text_len = text_len,
			.html = html, .html_len = html_len,
			.att = att.v, .natt = att.n,
			.in_reply_to = irt, .references = refs, .message_id = mid,
			.date = date,
		};
		const char *why = NULL;
		if (compose_message(&cm, &out, &why) < 0)
			err = seterr("invalidProperties", why ? why : "the message cannot be made",
				     NULL);
	}
	if (!err)
		m->data = buf_steal(&out, &m->len);
	buf_free(&out);
	for (size_t i = 0; i < ARRAY_LEN(lists); i++)
		free(lists[i]->v);
	att_free(&att);
	free(irt);
	free(refs);
	free(mid);
	return err;
}

/* ---- Email/set update and destroy ---- */

struct patch {
	bool kw_full, mb_full;
	struct kwset kw_set, kw_add, kw_del;
	struct idset mb_set, mb_add, mb_del;
};

static void patch_free(struct patch *p)
{
	kwset_free(&p->kw_set);
	kwset_free(&p->kw_add);
	kwset_free(&p->kw_del);
	idset_free(&p->mb_set);
	idset_free(&p->mb_add);
	idset_free(&p->mb_del);
}

/* JSON Pointer token ("~1" "/", "~0" "~"), heap; NULL when malformed. */
static char *pointer_token(const char *s)
{
	char *o = xmalloc(strlen(s) + 1);
	size_t w = 0;
	for (const char *p = s; *p; p++) {
		if (*p == '/' || (*p == '~' && p[1] != '0' && p[1] != '1')) {
			free(o);
			return NULL;
		}
		if (*p == '~') {
			o[w++] = p[1] == '1' ? '/' : '~';
			p++;
		} else {
			o[w++] = *p;
		}
	}
	o[w] = '\0';
	return o;
}

/* A PatchObject on an Email: keywords and mailboxIds only (the rest of an
 * Email is immutable).  NULL or a SetError. */
static json_t *patch_parse(const struct jmap_mail_ctx *c, json_t *local, json_t *o,
			   struct patch *p)
{
	if (!json_is_object(o) || json_object_size(o) > PATCH_KEYS_MAX)
		return seterr("invalidPatch", "a patch is an object of at most 200 paths", NULL);
	const char *key;
	json_t *v;
	bool kw_part = false, mb_part = false;
	json_object_foreach(o, key, v) {
		if (strcmp(key, "keywords") == 0) {
			p->kw_full = true;
			if (!kwset_parse(v, &p->kw_set))
				return seterr("invalidProperties", "keywords must be an object of "
					      "valid keywords set to true", "keywords");
		} else if (strncmp(key, "keywords/", 9) == 0) {
			kw_part = true;
			char *kw = pointer_token(key + 9);
			bool ok = kw && (json_is_true(v) || json_is_null(v)) &&
				  kwset_add(json_is_true(v) ? &p->kw_add : &p->kw_del, kw);
			free(kw);
			if (!ok)
				return seterr("invalidProperties", "keywords/<keyword> is true or "
					      "null, for a valid keyword", key);
		} else if (strcmp(key, "mailboxIds") == 0) {
			p->mb_full = true;
			if (!mbset_parse(c, local, v, &p->mb_set) || p->mb_set.n == 0)
				return seterr("invalidProperties", "mailboxIds must name at "
					      "least one mailbox", "mailboxIds");
		} else if (strncmp(key, "mailboxIds/", 11) == 0) {
			mb_part = true;
			char *id = pointer_token(key + 11);
			int64_t mb;
			bool ok = id && (json_is_true(v) || json_is_null(v)) &&
				  mailbox_id_parse(c, local, id, &mb);
			free(id);
			if (!ok)
				return seterr("invalidProperties", "mailboxIds/<id> is true or "
					      "null, for a mailbox id", key);
			idset_add(json_is_true(v) ? &p->mb_add : &p->mb_del, mb);
		} else {
			return seterr("invalidProperties", "an Email's only mutable properties "
				      "are keywords and mailboxIds", key);
		}
	}
	if (p->kw_full && kw_part)
		return seterr("invalidPatch", "keywords and keywords/... in one patch",
			      "keywords");
	if (p->mb_full && mb_part)
		return seterr("invalidPatch", "mailboxIds and mailboxIds/... in one patch",
			      "mailboxIds");
	return NULL;
}

struct paths {
	char **v;
	size_t n;
};

static void paths_take(struct paths *dst, char **v, size_t n)
{
	if (n) {
		dst->v = xreallocarray(dst->v, dst->n + n, sizeof *dst->v);
		memcpy(dst->v + dst->n, v, n * sizeof *v);
		dst->n += n;
	}
	free(v);
}

static void paths_free(struct paths *p)
{
	for (size_t i = 0; i < p->n; i++)
		free(p->v[i]);
	free(p->v);
	memset(p, 0, sizeof *p);
}

/* The UIDs of rows[from..) in its first row's mailbox; *end_r after them. */
static size_t group(const struct store_jmapset_row *rows, size_t n, size_t from,
		    uint32_t **uids_r)
{
	size_t end = from;
	while (end < n && rows[end].mailbox_id == rows[from].mailbox_id)
		end++;
	*uids_r = xcalloc(end - from, sizeof **uids_r);
	for (size_t i = from; i < end; i++)
		(*uids_r)[i - from] = rows[i].uid;
	return end;
}

static int store_kw(struct store_txn *t, int64_t mb, const uint32_t *uids, size_t n,
		    enum store_flag_mode mode, const struct kwset *k, char **error_r)
{
	struct store_flag_change chg = {.mode = mode, .flags = k->flags,
					.keywords = (const char *const *)k->kw,
					.nkeywords = k->n};
	uint32_t *mod = NULL;
	size_t nmod = 0;
	int rc = store_txn_store(t, mb, uids, n, &chg, &mod, &nmod, error_r);
	store_states_free(chg.changed, chg.nchanged);
	free(mod);
	return rc;
}

/* Keywords replaced on rows[0..n) of one mailbox; IMAP's \Deleted (no
 * JMAP keyword) stays as it was. */
static int set_keywords(struct store_txn *t, int64_t mb, const struct store_jmapset_row *rows,
			size_t n, const struct kwset *k, char **error_r)
{
	uint32_t *uids = xcalloc(n, sizeof *uids);
	int rc = 0;
	for (int del = 0; del < 2 && rc == 0; del++) {
		size_t m = 0;
		for (size_t i = 0; i < n; i++)
			if (((rows[i].flags & FLAG_DELETED) != 0) == (del != 0))
				uids[m++] = rows[i].uid;
		struct kwset kk = *k;
		kk.flags |= del ? FLAG_DELETED : 0;
		if (m)
			rc = store_kw(t, mb, uids, m, STORE_FLAGS_SET, &kk, error_r);
	}
	free(uids);
	return rc;
}

/* Expunge every copy in rows of the mailboxes in drop (NULL: all). */
static int expunge_rows(struct store_txn *t, const struct store_jmapset_row *rows, size_t n,
			const struct idset *drop, struct paths *unl, struct jmap_touched *tch,
			char **error_r)
{
	for (size_t i = 0; i < n;) {
		uint32_t *uids;
		int64_t mb = rows[i].mailbox_id;
		size_t end = group(rows, n, i, &uids);
		if (drop == NULL || idset_has(drop, mb)) {
			char **v;
			size_t nv;
			int rc = store_txn_expunge(t, mb, uids, end - i, &v, &nv, error_r);
			if (rc < 0) {
				free(uids);
				return -1;
			}
			paths_take(unl, v, nv);
			jmap_touched_add(tch, mb);
		}
		free(uids);
		i = end;
	}
	return 0;
}

/* One update in t.  0 ok, 1 refused (*err_r), -1 store error. */
static int apply_update(const struct jmap_mail_ctx *c, struct store_txn *t, int64_t body,
			const struct patch *p, struct paths *unl, struct jmap_touched *tch,
			json_t **err_r, char **error_r)
{
	struct store_jmapset_row *rows;
	size_t n;
	int64_t size;
	if (store_jmapset_rows(t, c->account_id, body, &rows, &n, &size, error_r) < 0)
		return -1;
	int ret = 0;
	struct idset cur = {0}, target = {0};
	if (n == 0) {
		*err_r = seterr("notFound", NULL, NULL);
		ret = 1;
		goto out;
	}
	for (size_t i = 0; i < n; i++)
		idset_add(&cur, rows[i].mailbox_id);
	if (p->mb_full) {
		for (size_t i = 0; i < p->mb_set.n; i++)
			idset_add(&target, p->mb_set.v[i]);
	} else {
		for (size_t i = 0; i < cur.n; i++)
			if (!idset_has(&p->mb_del, cur.v[i]))
				idset_add(&target, cur.v[i]);
		for (size_t i = 0; i < p->mb_add.n; i++)
			idset_add(&target, p->mb_add.v[i]);
	}
	if (target.n == 0) {
		*err_r = seterr("invalidProperties", "an Email must stay in at least one mailbox",
				"mailboxIds");
		ret = 1;
		goto out;
	}
	if (target.n > MAILBOXES_PER_EMAIL_MAX) {
		*err_r = seterr("tooManyMailboxes", NULL, "mailboxIds");
		ret = 1;
		goto out;
	}
	/* keywords first, so that new copies get the new ones */
	bool kw = p->kw_full || p->kw_add.n || p->kw_add.flags || p->kw_del.n || p->kw_del.flags;
	for (size_t i = 0; kw && i < n;) {
		uint32_t *uids;
		int64_t mb = rows[i].mailbox_id;
		size_t end = group(rows, n, i, &uids), k = end - i;
		int rc = 0;
		if (p->kw_full)
			rc = set_keywords(t, mb, rows + i, k, &p->kw_set, error_r);
		if (rc == 0 && (p->kw_add.n || p->kw_add.flags))
			rc = store_kw(t, mb, uids, k, STORE_FLAGS_ADD, &p->kw_add, error_r);
		if (rc == 0 && (p->kw_del.n || p->kw_del.flags))
			rc = store_kw(t, mb, uids, k, STORE_FLAGS_REMOVE, &p->kw_del, error_r);
		free(uids);
		if (rc < 0) {
			if (*error_r && strncmp(*error_r, "too many keywords", 17) == 0) {
				*err_r = seterr("invalidProperties", *error_r, "keywords");
				FREE(*error_r);
				ret = 1;
			} else {
				ret = -1;
			}
			goto out;
		}
		jmap_touched_add(tch, mb);
		i = end;
	}
	struct idset drop = {0};
	for (size_t i = 0; i < target.n; i++) {
		int64_t mb = target.v[i];
		if (idset_has(&cur, mb))
			continue;
		int ok = store_jmapset_mailbox_ok(t, c->account_id, mb, error_r);
		if (ok == 1)
			ok = store_jmapset_quota_fits(t, c->account_id, size, error_r) == 1 ? 1 :
			     *error_r ? -1 : 2;
		if (ok < 0) {
			ret = -1;
			goto out;
		}
		if (ok != 1) {
			*err_r = ok == 0 ?
				 seterr("invalidProperties", "no such mailbox (or it cannot hold "
					"messages)", "mailboxIds") :
				 seterr("overQuota", "the account's storage quota would be "
					"exceeded", NULL);
			ret = 1;
			goto out;
		}
		uint32_t uid = 0;
		if (store_txn_copy(t, rows[0].mailbox_id, mb, &rows[0].uid, 1, &uid,
				   error_r) < 0) {
			ret = -1;
			goto out;
		}
		jmap_touched_add(tch, mb);
	}
	for (size_t i = 0; i < cur.n; i++)
		if (!idset_has(&target, cur.v[i]))
			idset_add(&drop, cur.v[i]);
	if (drop.n && expunge_rows(t, rows, n, &drop, unl, tch, error_r) < 0)
		ret = -1;
	idset_free(&drop);
out:
	idset_free(&cur);
	idset_free(&target);
	free(rows);
	return ret;
}

static int apply_destroy(const struct jmap_mail_ctx *c, struct store_txn *t, int64_t body,
			 struct paths *unl, struct jmap_touched *tch, json_t **err_r,
			 char **error_r)
{
	struct store_jmapset_row *rows;
	size_t n;
	int64_t size;
	if (store_jmapset_rows(t, c->account_id, body, &rows, &n, &size, error_r) < 0)
		return -1;
	int ret = 0;
	if (n == 0) {
		*err_r = seterr("notFound", NULL, NULL);
		ret = 1;
	} else if (expunge_rows(t, rows, n, NULL, unl, tch, error_r) < 0) {
		ret = -1;
	}
	free(rows);
	return ret;
}

/* ---- the shared frame of Email/set and Email/import ---- */

struct setcall {
	const struct jmap_mail_ctx *c;
	struct store_txn *t;
	char old_state[64];
	bool state_in_txn;          /* the state can be read inside t (same form) */
	struct newmsg *nm;
	size_t nnm;
	json_t *local;              /* creation id -> id, this call */
	struct paths unl;           /* bodies to unlink after the commit */
	struct jmap_touched tch;
};

static void setcall_free(struct setcall *s)
{
	for (size_t i = 0; i < s->nnm; i++) {
		if (s->nm[i].written && s->nm[i].err)
			store_jmapset_discard(s->c->st, s->nm[i].relpath);
		newmsg_free(&s->nm[i]);
	}
	free(s->nm);
	json_decref(s->local);
	paths_free(&s->unl);
	jmap_touched_free(&s->tch);
}

/* Write every prepared message's file.  -1: the store is broken. */
static int write_all_new(struct setcall *s)
{
	for (size_t i = 0; i < s->nnm; i++) {
		struct newmsg *m = &s->nm[i];
		if (m->err)
			continue;
		char *err = NULL;
		if (store_jmapset_write_body(s->c->st, m->data, m->len, m->relpath, &err) < 0) {
			log_error("jmap: account %lld: %s", (long long)s->c->account_id, err);
			free(err);
			m->err = seterr("forbidden", "the message cannot be stored now", NULL);
			return -1;
		}
		m->written = true;
	}
	return 0;
}

/* BEGIN, the old state, ifInState.  NULL ok, else the method error. */
static const char *set_begin(struct setcall *s, json_t *args, const char **desc_r)
{
	char *err = NULL;
	s->t = store_txn_begin(s->c->st, &err);
	if (s->t == NULL) {
		log_error("jmap: account %lld: %s", (long long)s->c->account_id, err);
		free(err);
		*desc_r = "the store is unavailable";
		return "serverFail";
	}
	/* Read with our write lock held: nothing else can commit meanwhile. */
	if (jmap_mail_state(s->c->st, s->c->account_id, s->old_state, sizeof s->old_state) < 0) {
		store_txn_rollback(s->t);
		s->t = NULL;
		*desc_r = "the store is unavailable";
		return "serverFail";
	}
	json_t *ifs = json_object_get(args, "ifInState");
	if (ifs && !json_is_null(ifs) &&
	    (!json_is_string(ifs) || strcmp(json_string_value(ifs), s->old_state) != 0)) {
		store_txn_rollback(s->t);
		s->t = NULL;
		*desc_r = "ifInState does not match the current state";
		return "stateMismatch";
	}
	/* newState is read inside t before the commit (a change committed
	 * right after ours must not be in it), when that reading is the same
	 * as jmap_mail_state's. */
	int64_t v;
	char in_txn[64];
	if (store_jmapset_email_state(s->t, s->c->account_id, &v, &err) == 0) {
		snprintf(in_txn, sizeof in_txn, "%lld", (long long)v);
		s->state_in_txn = strcmp(in_txn, s->old_state) == 0;
	}
	free(err);
	return NULL;
}

/* Each prepared message in t.  -1 store error. */
static int store_all_new(struct setcall *s, json_t *created, json_t *not_created)
{
	for (size_t i = 0; i < s->nnm; i++) {
		struct newmsg *m = &s->nm[i];
		if (m->err == NULL) {
			char *err = NULL;
			store_txn_savepoint(s->t);
			int rc = newmsg_store(s->c, s->t, m, &err);
			if (rc < 0) {
				log_error("jmap: account %lld: storing a new email: %s",
					  (long long)s->c->account_id, err ? err : "store error");
				free(err);
				store_txn_rollback_to(s->t);
				m->err = seterr("forbidden", "the store failed", NULL);
				return -1;
			}
			if (rc == 0) {
				store_txn_release(s->t);
				for (size_t k = 0; k < m->mbs.n; k++)
					jmap_touched_add(&s->tch, m->mbs.v[k]);
				json_object_set_new(s->local, m->cid,
						    json_sprintf("e%lld", (long long)m->body_id));
				json_object_set_new(created, m->cid, created_json(m));
				continue;
			}
			store_txn_rollback_to(s->t);
		}
		json_object_set(not_created, m->cid, m->err);
	}
	return 0;
}

/* COMMIT, unlink what went, tell the request what changed, the new
 * state.  0 / -1 (the method fails). */
static int set_commit(struct setcall *s, char new_state[64])
{
	char *err = NULL;
	struct store_txn *t = s->t;
	int64_t sv;
	bool have = s->state_in_txn &&
		    store_jmapset_email_state(t, s->c->account_id, &sv, &err) == 0;
	FREE(err);
	s->t = NULL;
	if (store_txn_commit(t, &err) < 0) {
		log_error("jmap: account %lld: commit: %s", (long long)s->c->account_id, err);
		free(err);
		for (size_t i = 0; i < s->nnm; i++)
			if (s->nm[i].err == NULL)
				s->nm[i].err = json_null();   /* discarded by setcall_free */
		return -1;
	}
	store_unlink_bodies(s->c->st, s->unl.v, s->unl.n);
	for (size_t i = 0; i < s->tch.n; i++)
		jmap_touched_add(s->c->touched, s->tch.ids[i]);
	const char *key;
	json_t *v;
	json_object_foreach(s->local, key, v)
		json_object_set(s->c->created_ids, key, v);
	if (have)
		snprintf(new_state, 64, "%lld", (long long)sv);
	else if (jmap_mail_state(s->c->st, s->c->account_id, new_state, 64) < 0)
		snprintf(new_state, 64, "%s", s->old_state);
	return 0;
}

static void set_abort(struct setcall *s)
{
	if (s->t)
		store_txn_rollback(s->t);
	s->t = NULL;
	for (size_t i = 0; i < s->nnm; i++)
		if (s->nm[i].err == NULL)
			s->nm[i].err = json_null();
}

static bool count_ok(json_t *o)
{
	return json_is_object(o) || json_is_null(o) || o == NULL;
}

json_t *jmap_email_set(const struct jmap_mail_ctx *c, json_t *args, const char **type_r,
		       const char **desc_r)
{
	json_t *create = json_object_get(args, "create");
	json_t *update = json_object_get(args, "update");
	json_t *destroy = json_object_get(args, "destroy");
	if (!count_ok(create) || !count_ok(update) ||
	    (destroy && !json_is_null(destroy) && !json_is_array(destroy))) {
		*type_r = "invalidArguments";
		*desc_r = "create and update are objects, destroy an array of ids (or null)";
		return NULL;
	}
	size_t i;
	json_t *v;
	json_array_foreach(destroy, i, v)
		if (!json_is_string(v)) {
			*type_r = "invalidArguments";
			*desc_r = "destroy is an array of ids";
			return NULL;
		}
	if (json_object_size(create) + json_object_size(update) + json_array_size(destroy) >
	    JMAP_MAX_OBJECTS_IN_SET) {
		*type_r = "requestTooLarge";
		*desc_r = "more objects than maxObjectsInSet";
		return NULL;
	}
	struct setcall s = {.c = c, .local = json_object()};
	json_t *created = json_object(), *not_created = json_object();
	json_t *updated = json_object(), *not_updated = json_object();
	json_t *destroyed = json_array(), *not_destroyed = json_object();
	const char *key;
	s.nm = xcalloc(json_object_size(create) + 1, sizeof *s.nm);
	json_object_foreach(create, key, v) {
		struct newmsg *m = &s.nm[s.nnm++];
		m->cid = key;
		m->err = json_is_object(v) ? compose_create(c, v, m) :
			 seterr("invalidProperties", "an Email object is expected", NULL);
	}
	size_t nupd = json_object_size(update), k = 0;
	struct patch *patches = xcalloc(nupd + 1, sizeof *patches);
	json_t **perr = xcalloc(nupd + 1, sizeof *perr);
	json_object_foreach(update, key, v)
		perr[k] = patch_parse(c, NULL, v, &patches[k]), k++;
	json_t *res = NULL;
	if (write_all_new(&s) < 0) {
		*type_r = "serverFail";
		*desc_r = "the message cannot be stored now";
		goto out;
	}
	const char *mt = set_begin(&s, args, desc_r);
	if (mt) {
		*type_r = mt;
		goto out;
	}
	if (store_all_new(&s, created, not_created) < 0)
		goto fail;
	k = 0;
	json_object_foreach(update, key, v) {
		json_t *err = perr[k];
		perr[k] = NULL;
		int64_t body;
		if (!err && !email_id_parse(c, s.local, key, &body))
			err = seterr("notFound", NULL, NULL);
		if (!err) {
			char *serr = NULL;
			struct paths unl = {0};
			store_txn_savepoint(s.t);
			int rc = apply_update(c, s.t, body, &patches[k], &unl, &s.tch, &err,
					      &serr);
			if (rc < 0) {
				log_error("jmap: account %lld: Email/set update: %s",
					  (long long)c->account_id, serr ? serr : "store error");
				free(serr);
				paths_free(&unl);
				store_txn_rollback_to(s.t);
				goto fail;
			}
			if (rc == 0) {
				store_txn_release(s.t);
				paths_take(&s.unl, unl.v, unl.n);
			} else {
				store_txn_rollback_to(s.t);
				paths_free(&unl);
			}
		}
		const char *rid = resolve(c, s.local, key);
		if (err)
			json_object_set_new(not_updated, rid ? rid : key, err);
		else
			json_object_set_new(updated, rid ? rid : key, json_null());
		k++;
	}
	json_array_foreach(destroy, i, v) {
		const char *id = json_string_value(v);
		json_t *err = NULL;
		int64_t body;
		if (!email_id_parse(c, s.local, id, &body)) {
			err = seterr("notFound", NULL, NULL);
		} else {
			char *serr = NULL;
			struct paths unl = {0};
			store_txn_savepoint(s.t);
			int rc = apply_destroy(c, s.t, body, &unl, &s.tch, &err, &serr);
			if (rc < 0) {
				log_error("jmap: account %lld: Email/set destroy: %s",
					  (long long)c->account_id, serr ? serr : "store error");
				free(serr);
				paths_free(&unl);
				store_txn_rollback_to(s.t);
				goto fail;
			}
			store_txn_release(s.t);
			paths_take(&s.unl, unl.v, unl.n);
		}
		const char *rid = resolve(c, s.local, id);
		if (err)
			json_object_set_new(not_destroyed, rid ? rid : id, err);
		else
			json_array_append_new(destroyed, json_string(rid ? rid : id));
	}
	char new_state[64];
	if (set_commit(&s, new_state) < 0)
		goto fail;
	res = json_pack("{s:s, s:s, s:s}", "accountId", c->acct, "oldState", s.old_state,
			"newState", new_state);
	json_object_set_new(res, "created", obj_or_null(created));
	json_object_set_new(res, "updated", obj_or_null(updated));
	json_object_set_new(res, "destroyed", json_array_size(destroyed) ? destroyed :
			    (json_decref(destroyed), json_null()));
	json_object_set_new(res, "notCreated", obj_or_null(not_created));
	json_object_set_new(res, "notUpdated", obj_or_null(not_updated));
	json_object_set_new(res, "notDestroyed", obj_or_null(not_destroyed));
	created = updated = destroyed = not_created = not_updated = not_destroyed = NULL;
	goto out;
fail:
	set_abort(&s);
	*type_r = "serverFail";
	*desc_r = "the store failed";
out:
	for (k = 0; k < nupd; k++) {
		patch_free(&patches[k]);
		json_decref(perr[k]);
	}
	free(patches);
	free(perr);
	json_decref(created);
	json_decref(not_created);
	json_decref(updated);
	json_decref(not_updated);
	json_decref(destroyed);
	json_decref(not_destroyed);
	setcall_free(&s);
	return res;
}

/* ---- Email/import ---- */

static json_t *import_prepare(const struct jmap_mail_ctx *c, json_t *o, struct newmsg *m)
{
	if (!json_is_object(o))
		return seterr("invalidProperties", "an EmailImport object is expected", NULL);
	const char *key;
	json_t *v;
	json_object_foreach(o, key, v)
		if (strcmp(key, "blobId") && strcmp(key, "mailboxIds") &&
		    strcmp(key, "keywords") && strcmp(key, "receivedAt"))
			return seterr("invalidProperties", "unknown EmailImport property", key);
	json_t *blob = json_object_get(o, "blobId");
	if (!json_is_string(blob))
		return seterr("invalidProperties", "blobId is required", "blobId");
	json_t *err = newmsg_common(c, o, m);
	if (err)
		return err;
	struct buf b;
	buf_init(&b, MESSAGE_MAX);
	int rc = blob_read(c, json_string_value(blob), &b);
	if (rc <= 0) {
		buf_free(&b);
		if (rc == 0)
			return seterr("notFound", "no such blob", "blobId");
		return seterr("tooLarge", "the blob is too large (or unreadable)", "blobId");
	}
	m->data = crlf(b.data ? b.data : "", b.len, &m->len);
	buf_free(&b);
	if (m->len > MESSAGE_MAX)
		return seterr("tooLarge", "the message is too large", "blobId");
	if (!looks_like_message(m->data, m->len))
		return seterr("invalidEmail", "the blob is not an RFC 5322 message", "blobId");
	return NULL;
}

json_t *jmap_email_import(const struct jmap_mail_ctx *c, json_t *args, const char **type_r,
			  const char **desc_r)
{
	json_t *emails = json_object_get(args, "emails");
	if (!json_is_object(emails)) {
		*type_r = "invalidArguments";
		*desc_r = "emails (an object) is required";
		return NULL;
	}
	if (json_object_size(emails) > JMAP_MAX_OBJECTS_IN_SET) {
		*type_r = "requestTooLarge";
		*desc_r = "more emails than maxObjectsInSet";
		return NULL;
	}
	struct setcall s = {.c = c, .local = json_object()};
	json_t *created = json_object(), *not_created = json_object(), *res = NULL;
	s.nm = xcalloc(json_object_size(emails) + 1, sizeof *s.nm);
	const char *key;
	json_t *v;
	json_object_foreach(emails, key, v) {
		struct newmsg *m = &s.nm[s.nnm++];
		m->cid = key;
		m->err = import_prepare(c, v, m);
	}
	if (write_all_new(&s) < 0) {
		*type_r = "serverFail";
		*desc_r = "the message cannot be stored now";
		goto out;
	}
	const char *mt = set_begin(&s, args, desc_r);
	if (mt) {
		*type_r = mt;
		goto out;
	}
	char new_state[64];
	if (store_all_new(&s, created, not_created) < 0 || set_commit(&s, new_state) < 0) {
		set_abort(&s);
		*type_r = "serverFail";
		*desc_r = "the store failed";
		goto out;
	}
	res = json_pack("{s:s, s:s, s:s}", "accountId", c->acct, "oldState", s.old_state,
			"newState", new_state);
	json_object_set_new(res, "created", obj_or_null(created));
	json_object_set_new(res, "notCreated", obj_or_null(not_created));
	created = not_created = NULL;
out:
	json_decref(created);
	json_decref(not_created);
	setcall_free(&s);
	return res;
}

/* ---- Mailbox/set ---- */

static const struct {
	const char *role, *use;
} roles[] = {
	{"drafts", "\\Drafts"}, {"sent", "\\Sent"}, {"trash", "\\Trash"}, {"junk", "\\Junk"},
	{"archive", "\\Archive"}, {"all", "\\All"}, {"flagged", "\\Flagged"},
};

struct mbxs {
	struct store_jmap_mailbox *v;
	size_t n;
};

static int mbxs_load(const struct jmap_mail_ctx *c, struct mbxs *l)
{
	store_jmap_mailboxes_free(l->v, l->n);
	l->v = NULL;
	l->n = 0;
	char *err = NULL;
	if (store_jmap_mailboxes(c->st, c->account_id, &l->v, &l->n, &err) < 0) {
		log_error("jmap: account %lld: mailboxes: %s", (long long)c->account_id,
			  err ? err : "store error");
		free(err);
		return -1;
	}
	return 0;
}

static const struct store_jmap_mailbox *mbxs_by_id(const struct mbxs *l, int64_t id)
{
	for (size_t i = 0; i < l->n; i++)
		if (l->v[i].id == id)
			return &l->v[i];
	return NULL;
}

static bool mbxs_has_child(const struct mbxs *l, const char *name)
{
	size_t n = strlen(name);
	for (size_t i = 0; i < l->n; i++)
		if (strncmp(l->v[i].name, name, n) == 0 && l->v[i].name[n] == '/')
			return true;
	return false;
}

static const char *role_use(const char *role)
{
	for (size_t i = 0; i < ARRAY_LEN(roles); i++)
		if (strcmp(role, roles[i].role) == 0)
			return roles[i].use;
	return NULL;
}

static bool mbx_name_ok(json_t *v)
{
	const char *s = json_string_value(v);
	if (s == NULL || s[0] == '\0' || strlen(s) > 255 || strchr(s, '/'))
		return false;
	for (const unsigned char *p = (const unsigned char *)s; *p; p++)
		if (*p < 0x20 || *p == 0x7f)
			return false;
	return true;
}

static json_t *mbox_error(int rc, const char *err)
{
	switch (rc) {
	case STORE_MBOX_EBADNAME:
		return seterr("invalidProperties", err, "name");
	case STORE_MBOX_EEXISTS:
		return seterr("invalidProperties", "a mailbox of that name exists there", "name");
	case STORE_MBOX_ENOENT:
		return seterr("notFound", err, NULL);
	case STORE_MBOX_ECANNOT:
		return seterr("invalidProperties", err, "parentId");
	case STORE_MBOX_ELIMIT:
		return seterr("overQuota", err, NULL);
	case STORE_MBOX_EUSEATTR:
		return seterr("invalidProperties", err, "role");
	default:
		return seterr("forbidden", "the store failed", NULL);
	}
}

/* The full name of name under parentId (NULL/null: top level), or a
 * SetError.  l may be reloaded. */
static json_t *full_name(const struct jmap_mail_ctx *c, struct mbxs *l, json_t *parent,
			 const char *name, char **full_r)
{
	*full_r = NULL;
	if (parent == NULL || json_is_null(parent)) {
		*full_r = xstrdup(name);
		return NULL;
	}
	int64_t pid;
	if (!json_is_string(parent) ||
	    !mailbox_id_parse(c, NULL, json_string_value(parent), &pid))
		return seterr("invalidProperties", "parentId is not a mailbox id", "parentId");
	const struct store_jmap_mailbox *p = mbxs_by_id(l, pid);
	if (p == NULL && mbxs_load(c, l) == 0)
		p = mbxs_by_id(l, pid);
	if (p == NULL)
		return seterr("invalidProperties", "no such parent mailbox", "parentId");
	*full_r = xasprintf("%s/%s", p->name, name);
	return NULL;
}

static json_t *mbx_create(const struct jmap_mail_ctx *c, struct mbxs *l, json_t *o,
			  int64_t *id_r, bool *subscribed_r)
{
	if (!json_is_object(o))
		return seterr("invalidProperties", "a Mailbox object is expected", NULL);
	const char *key;
	json_t *v;
	json_object_foreach(o, key, v)
		if (strcmp(key, "name") && strcmp(key, "parentId") && strcmp(key, "role") &&
		    strcmp(key, "isSubscribed") && strcmp(key, "sortOrder"))
			return seterr("invalidProperties", "this property cannot be set", key);
	json_t *name = json_object_get(o, "name"), *role = json_object_get(o, "role");
	json_t *sub = json_object_get(o, "isSubscribed"), *so = json_object_get(o, "sortOrder");
	if (!mbx_name_ok(name))
		return seterr("invalidProperties", "name must be 1 to 255 bytes without \"/\"",
			      "name");
	if (sub && !json_is_boolean(sub))
		return seterr("invalidProperties", "isSubscribed is a boolean", "isSubscribed");
	if (so && !json_is_integer(so))
		return seterr("invalidProperties", "sortOrder is a number", "sortOrder");
	const char *use = NULL;
	if (role && !json_is_null(role)) {
		use = json_is_string(role) ? role_use(json_string_value(role)) : NULL;
		if (use == NULL)
			return seterr("invalidProperties", "role must be null or one of drafts, "
				      "sent, trash, junk, archive, all, flagged", "role");
		for (size_t i = 0; i < l->n; i++)
			if (l->v[i].special_use && strcasecmp(l->v[i].special_use, use) == 0)
				return seterr("invalidProperties", "another mailbox has this role",
					      "role");
	}
	char *full;
	json_t *err = full_name(c, l, json_object_get(o, "parentId"), json_string_value(name),
				&full);
	if (err)
		return err;
	char *serr = NULL;
	int rc = store_mailbox_create(c->st, c->account_id, full, use, id_r, &serr);
	if (rc == 0 && json_is_true(sub))
		rc = store_mailbox_subscribe(c->st, c->account_id, full, &serr) < 0 ? -1 : 0;
	if (rc < 0) {
		err = mbox_error(rc, serr ? serr : "cannot create the mailbox");
		if (rc == STORE_MBOX_EFAIL)
			log_error("jmap: account %lld: creating mailbox: %s",
				  (long long)c->account_id, serr ? serr : "store error");
	}
	free(serr);
	free(full);
	*subscribed_r = json_is_true(sub);
	return err;
}

/* Rename old to full (the subscription follows).  NULL or a SetError. */
static json_t *mbx_rename(const struct jmap_mail_ctx *c, const char *old, const char *full,
			  bool was_sub)
{
	if (strcmp(old, STORE_INBOX) == 0)
		return seterr("forbidden", "the inbox cannot be renamed or moved", NULL);
	char *serr = NULL;
	json_t *err = NULL;
	int rc = store_mailbox_rename(c->st, c->account_id, old, full, &serr);
	if (rc < 0) {
		err = mbox_error(rc, serr ? serr : "cannot rename");
	} else if (was_sub) {
		FREE(serr);
		(void)store_mailbox_unsubscribe(c->st, c->account_id, old, &serr);
		FREE(serr);
		(void)store_mailbox_subscribe(c->st, c->account_id, full, &serr);
	}
	free(serr);
	return err;
}

static json_t *mbx_update(const struct jmap_mail_ctx *c, struct mbxs *l, int64_t id,
			  json_t *o)
{
	if (!json_is_object(o))
		return seterr("invalidPatch", "a patch object is expected", NULL);
	const struct store_jmap_mailbox *m = mbxs_by_id(l, id);
	if (m == NULL)
		return seterr("notFound", NULL, NULL);
	const char *key;
	json_t *v;
	json_object_foreach(o, key, v) {
		if (strcmp(key, "name") == 0 || strcmp(key, "parentId") == 0 ||
		    strcmp(key, "isSubscribed") == 0)
			continue;
		if (strcmp(key, "sortOrder") == 0 && json_is_integer(v))
			continue;   /* no custom order: accepted, stays 0 */
		return seterr("invalidProperties", "this property cannot be changed", key);
	}
	json_t *name = json_object_get(o, "name"), *sub = json_object_get(o, "isSubscribed");
	if (name && !mbx_name_ok(name))
		return seterr("invalidProperties", "name must be 1 to 255 bytes without \"/\"",
			      "name");
	if (sub && !json_is_boolean(sub))
		return seterr("invalidProperties", "isSubscribed is a boolean", "isSubscribed");
	char *old = xstrdup(m->name);
	bool was_sub = m->subscribed;
	json_t *err = NULL;
	char *serr = NULL;
	char *cur = xstrdup(old);
	if (name || json_object_get(o, "parentId")) {
		const char *slash = strrchr(old, '/');
		const char *shortname = name ? json_string_value(name) : slash ? slash + 1 : old;
		char *full = NULL;
		json_t *parent = json_object_get(o, "parentId");
		if (parent == NULL) {
			/* keep the parent */
			full = slash ? xasprintf("%.*s/%s", (int)(slash - old), old, shortname) :
			       xstrdup(shortname);
		} else {
			err = full_name(c, l, parent, shortname, &full);
		}
		if (!err && strcmp(full, old) != 0) {
			err = mbx_rename(c, old, full, was_sub);
			if (!err) {
				free(cur);
				cur = xstrdup(full);
			}
		}
		free(full);
	}
	if (!err && sub && json_is_true(sub) != was_sub) {
		FREE(serr);
		int rc = json_is_true(sub) ?
			 store_mailbox_subscribe(c->st, c->account_id, cur, &serr) :
			 store_mailbox_unsubscribe(c->st, c->account_id, cur, &serr);
		if (rc < 0 && rc != STORE_MBOX_ENOENT)
			err = mbox_error(rc, serr ? serr : "cannot change the subscription");
	}
	free(serr);
	free(old);
	free(cur);
	return err;
}

static json_t *mbx_destroy(const struct jmap_mail_ctx *c, struct mbxs *l, int64_t id,
			   bool remove_emails)
{
	const struct store_jmap_mailbox *m = mbxs_by_id(l, id);
	if (m == NULL)
		return seterr("notFound", NULL, NULL);
	if (strcmp(m->name, STORE_INBOX) == 0)
		return seterr("forbidden", "the inbox cannot be destroyed", NULL);
	if (mbxs_has_child(l, m->name))
		return seterr("mailboxHasChild", "the mailbox has child mailboxes", NULL);
	if (m->total > 0 && !remove_emails)
		return seterr("mailboxHasEmail", "the mailbox is not empty (see "
			      "onDestroyRemoveEmails)", NULL);
	char *serr = NULL;
	if (m->subscribed)
		(void)store_mailbox_unsubscribe(c->st, c->account_id, m->name, &serr);
	FREE(serr);
	int rc = store_mailbox_delete(c->st, c->account_id, m->name, &serr);
	json_t *err = rc < 0 ? mbox_error(rc, serr ? serr : "cannot delete") : NULL;
	free(serr);
	return err;
}

static int cmp_len_desc(const void *a, const void *b)
{
	const struct store_jmap_mailbox *const *x = a, *const *y = b;
	size_t lx = strlen((*x)->name), ly = strlen((*y)->name);
	return lx < ly ? 1 : lx > ly ? -1 : 0;
}

json_t *jmap_mailbox_set(const struct jmap_mail_ctx *c, json_t *args, const char **type_r,
			 const char **desc_r)
{
	json_t *create = json_object_get(args, "create");
	json_t *update = json_object_get(args, "update");
	json_t *destroy = json_object_get(args, "destroy");
	json_t *rm = json_object_get(args, "onDestroyRemoveEmails");
	size_t i;
	json_t *v;
	bool ok = count_ok(create) && count_ok(update) &&
		  (destroy == NULL || json_is_null(destroy) || json_is_array(destroy)) &&
		  (rm == NULL || json_is_boolean(rm));
	json_array_foreach(destroy, i, v)
		ok = ok && json_is_string(v);
	if (!ok) {
		*type_r = "invalidArguments";
		*desc_r = "create and update are objects, destroy an array of ids, "
			  "onDestroyRemoveEmails a boolean";
		return NULL;
	}
	if (json_object_size(create) + json_object_size(update) + json_array_size(destroy) >
	    JMAP_MAX_OBJECTS_IN_SET) {
		*type_r = "requestTooLarge";
		*desc_r = "more objects than maxObjectsInSet";
		return NULL;
	}
	char old_state[64], new_state[64];
	struct mbxs l = {0};
	if (jmap_mailbox_state(c->st, c->account_id, old_state, sizeof old_state) < 0 ||
	    mbxs_load(c, &l) < 0) {
		*type_r = "serverFail";
		*desc_r = "the store is unavailable";
		return NULL;
	}
	json_t *ifs = json_object_get(args, "ifInState");
	if (ifs && !json_is_null(ifs) &&
	    (!json_is_string(ifs) || strcmp(json_string_value(ifs), old_state) != 0)) {
		store_jmap_mailboxes_free(l.v, l.n);
		*type_r = "stateMismatch";
		*desc_r = "ifInState does not match the current state";
		return NULL;
	}
	json_t *created = json_object(), *not_created = json_object();
	json_t *updated = json_object(), *not_updated = json_object();
	json_t *destroyed = json_array(), *not_destroyed = json_object();
	const char *key;
	json_object_foreach(create, key, v) {
		int64_t id = 0;
		bool sub = false;
		json_t *err = mbx_create(c, &l, v, &id, &sub);
		if (err) {
			json_object_set_new(not_created, key, err);
			continue;
		}
		json_t *role = json_object_get(v, "role");
		json_object_set_new(created, key, json_pack(
			"{s:o, s:O, s:i, s:i, s:i, s:i, s:i, s:b, "
			"s:{s:b, s:b, s:b, s:b, s:b, s:b, s:b, s:b, s:b}}",
			"id", json_sprintf("m%lld", (long long)id),
			"role", role ? role : json_null(), "sortOrder", 0, "totalEmails", 0,
			"unreadEmails", 0, "totalThreads", 0, "unreadThreads", 0,
			"isSubscribed", sub, "myRights", "mayReadItems", 1, "mayAddItems", 1,
			"mayRemoveItems", 1, "maySetSeen", 1, "maySetKeywords", 1,
			"mayCreateChild", 1, "mayRename", 1, "mayDelete", 1, "maySubmit", 1));
		json_object_set_new(c->created_ids, key, json_sprintf("m%lld", (long long)id));
		jmap_touched_add(c->touched, id);
		mbxs_load(c, &l);
	}
	json_object_foreach(update, key, v) {
		int64_t id;
		json_t *err = mailbox_id_parse(c, NULL, key, &id) ? mbx_update(c, &l, id, v) :
			      seterr("notFound", NULL, NULL);
		if (err) {
			json_object_set_new(not_updated, key, err);
			continue;
		}
		json_object_set_new(updated, key, json_null());
		jmap_touched_add(c->touched, id);
		mbxs_load(c, &l);
	}
	/* children before their parents */
	size_t nd = json_array_size(destroy);
	const struct store_jmap_mailbox **order = xcalloc(nd + 1, sizeof *order);
	size_t no = 0;
	json_array_foreach(destroy, i, v) {
		int64_t id;
		const struct store_jmap_mailbox *m = NULL;
		if (mailbox_id_parse(c, NULL, json_string_value(v), &id))
			m = mbxs_by_id(&l, id);
		if (m == NULL)
			json_object_set_new(not_destroyed, json_string_value(v),
					    seterr("notFound", NULL, NULL));
		else
			order[no++] = m;
	}
	qsort(order, no, sizeof *order, cmp_len_desc);
	struct idset gone = {0};
	for (size_t k = 0; k < no; k++)
		idset_add(&gone, order[k]->id);
	free(order);
	for (size_t k = 0; k < gone.n; k++) {
		char id[32];
		snprintf(id, sizeof id, "m%lld", (long long)gone.v[k]);
		json_t *err = mbx_destroy(c, &l, gone.v[k], json_is_true(rm));
		if (err) {
			json_object_set_new(not_destroyed, id, err);
		} else {
			json_array_append_new(destroyed, json_string(id));
			jmap_touched_add(c->touched, gone.v[k]);
		}
		mbxs_load(c, &l);
	}
	idset_free(&gone);
	store_jmap_mailboxes_free(l.v, l.n);
	if (jmap_mailbox_state(c->st, c->account_id, new_state, sizeof new_state) < 0)
		snprintf(new_state, sizeof new_state, "%s", old_state);
	json_t *res = json_pack("{s:s, s:s, s:s}", "accountId", c->acct, "oldState", old_state,
				"newState", new_state);
	json_object_set_new(res, "created", obj_or_null(created));
	json_object_set_new(res, "updated", obj_or_null(updated));
	json_object_set_new(res, "destroyed", json_array_size(destroyed) ? destroyed :
			    (json_decref(destroyed), json_null()));
	json_object_set_new(res, "notCreated", obj_or_null(not_created));
	json_object_set_new(res, "notUpdated", obj_or_null(not_updated));
	json_object_set_new(res, "notDestroyed", obj_or_null(not_destroyed));
	return res;
}

/* ---- SearchSnippet/get ---- */

struct terms {
	const char *subject[SNIPPET_TERMS_MAX], *body[SNIPPET_TERMS_MAX];
	size_t nsubject, nbody;
};

static void term_add(const char **v, size_t *n, json_t *s)
{
	const char *t = json_string_value(s);
	if (t && *t && *n < SNIPPET_TERMS_MAX)
		v[(*n)++] = t;
}

/* The text, subject and body strings of a filter (an explicit stack: no
 * recursion on the client's nesting).  false when it is too big. */
static bool filter_terms(json_t *f, struct terms *t)
{
	json_t *stack[SNIPPET_FILTER_NODES_MAX];
	size_t sp = 0, seen = 0;
	if (f && json_is_object(f))
		stack[sp++] = f;
	while (sp > 0) {
		json_t *o = stack[--sp];
		if (++seen > SNIPPET_FILTER_NODES_MAX)
			return false;
		json_t *conds = json_object_get(o, "conditions");
		if (json_is_array(conds)) {
			size_t i;
			json_t *e;
			json_array_foreach(conds, i, e) {
				if (!json_is_object(e))
					continue;
				if (sp == SNIPPET_FILTER_NODES_MAX)
					return false;
				stack[sp++] = e;
			}
			continue;
		}
		json_t *text = json_object_get(o, "text");
		term_add(t->subject, &t->nsubject, text);
		term_add(t->body, &t->nbody, text);
		term_add(t->subject, &t->nsubject, json_object_get(o, "subject"));
		term_add(t->body, &t->nbody, json_object_get(o, "body"));
	}
	return true;
}

/* Invalid UTF-8 bytes become '?', controls (but tab) a space: the text can
 * go into a JSON string. */
static void utf8_clean(char *s, size_t n)
{
	size_t i = 0;
	while (i < n) {
		unsigned char c = (unsigned char)s[i];
		size_t len = c < 0x80 ? 1 : (c & 0xe0) == 0xc0 ? 2 : (c & 0xf0) == 0xe0 ? 3 :
			     (c & 0xf8) == 0xf0 ? 4 : 0;
		bool ok = len > 0 && i + len <= n && !(len == 2 && c < 0xc2) &&
			  !(len == 4 && c > 0xf4);
		for (size_t k = 1; ok && k < len; k++)
			ok = ((unsigned char)s[i + k] & 0xc0) == 0x80;
		if (ok && len == 3) {
			unsigned char d = (unsigned char)s[i + 1];
			ok = !(c == 0xe0 && d < 0xa0) && !(c == 0xed && d >= 0xa0);
		}
		if (ok && len == 4) {
			unsigned char d = (unsigned char)s[i + 1];
			ok = !(c == 0xf0 && d < 0x90) && !(c == 0xf4 && d >= 0x90);
		}
		if (!ok) {
			s[i++] = '?';
			continue;
		}
		if (len == 1 && (c < 0x20 || c == 0x7f))
			s[i] = ' ';
		i += len;
	}
}

/* Runs of blanks and line ends become one space. */
static size_t squeeze(char *s, size_t n)
{
	size_t w = 0;
	bool blank = true;
	for (size_t r = 0; r < n; r++) {
		bool b = s[r] == ' ' || s[r] == '\t' || s[r] == '\r' || s[r] == '\n';
		if (b && blank)
			continue;
		s[w++] = b ? ' ' : s[r];
		blank = b;
	}
	while (w > 0 && s[w - 1] == ' ')
		w--;
	s[w] = '\0';
	return w;
}

static void html_escape(struct buf *b, const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		switch (s[i]) {
		case '&': buf_append_str(b, "&amp;"); break;
		case '<': buf_append_str(b, "&lt;"); break;
		case '>': buf_append_str(b, "&gt;"); break;
		case '"': buf_append_str(b, "&quot;"); break;
		case '\'': buf_append_str(b, "&#39;"); break;
		default: buf_append(b, &s[i], 1);
		}
	}
}

/* The longest term at s[0..n) (ASCII case-insensitive), or 0. */
static size_t term_at(const char *s, size_t n, const char *const *terms, size_t nterms)
{
	size_t best = 0;
	for (size_t k = 0; k < nterms; k++) {
		size_t tl = strlen(terms[k]);
		if (tl > best && tl <= n && strncasecmp(s, terms[k], tl) == 0)
			best = tl;
	}
	return best;
}

/* s HTML-escaped with every term in <mark></mark>, or NULL (no term). */
static json_t *marked(const char *s, size_t n, const char *const *terms, size_t nterms)
{
	struct buf b;
	buf_init(&b, n * 6 + 64 + n * 13);
	bool hit = false;
	for (size_t i = 0; i < n;) {
		size_t tl = term_at(s + i, n - i, terms, nterms);
		if (tl) {
			buf_append_str(&b, "<mark>");
			html_escape(&b, s + i, tl);
			buf_append_str(&b, "</mark>");
			i += tl;
			hit = true;
		} else {
			html_escape(&b, s + i, 1);
			i++;
		}
	}
	json_t *r = hit ? json_stringn(b.data ? b.data : "", b.len) : NULL;
	buf_free(&b);
	return r ? r : json_null();
}

static void part_decode(const char *data, const struct mime_part *p, struct buf *out)
{
	const char *b = data + p->body_off;
	size_t n = MIN(p->body_len, (size_t)SNIPPET_TEXT_MAX * 2);
	if (p->encoding && strcmp(p->encoding, "base64") == 0) {
		struct decode_b64 d;
		decode_b64_init(&d);
		decode_b64(&d, b, n, out);
		decode_b64_finish(&d, out);
	} else if (p->encoding && strcmp(p->encoding, "quoted-printable") == 0) {
		struct decode_qp d;
		decode_qp_init(&d);
		decode_qp(&d, b, n, out);
		decode_qp_finish(&d, out);
	} else {
		buf_append(out, b, MIN(n, buf_room(out)));
	}
}

/* The message's first text body (text/plain, else text/html without its
 * tags) as UTF-8 with blanks squeezed (heap). */
static char *body_plain(const char *data, const struct mime_message *mm, size_t *len_r)
{
	const struct mime_part *pick = NULL;
	for (int pass = 0; pass < 2 && !pick; pass++)
		for (size_t i = 0; i < mm->n_parts && !pick; i++) {
			const struct mime_part *p = &mm->parts[i];
			if (p->first_child == MIME_NONE && strcmp(p->type, "text") == 0 &&
			    strcmp(p->subtype, pass ? "html" : "plain") == 0 &&
			    !(p->disposition && strcmp(p->disposition, "attachment") == 0))
				pick = p;
		}
	struct buf raw, out;
	buf_init(&raw, SNIPPET_TEXT_MAX);
	buf_init(&out, SNIPPET_TEXT_MAX * 4);
	if (pick)
		part_decode(data, pick, &raw);
	const char *cs = pick ? mime_param_get(&pick->params, "charset") : NULL;
	const char *why;
	if (cs == NULL || strcasecmp(cs, "utf-8") == 0 || strcasecmp(cs, "us-ascii") == 0 ||
	    decode_charset_convert(cs, raw.data ? raw.data : "", raw.len, &out, &why) < 0) {
		buf_reset(&out);
		buf_append(&out, raw.data ? raw.data : "", raw.len);
	}
	buf_free(&raw);
	char *s = buf_steal(&out, len_r);
	if (s == NULL) {
		s = xstrdup("");
		*len_r = 0;
	}
	if (pick && strcmp(pick->subtype, "html") == 0) {
		/* tags out, the common entities in */
		size_t w = 0;
		bool tag = false;
		for (size_t r = 0; r < *len_r; r++) {
			if (s[r] == '<')
				tag = true;
			else if (s[r] == '>' && tag)
				tag = false, s[w++] = ' ';
			else if (!tag)
				s[w++] = s[r];
		}
		*len_r = w;
	}
	utf8_clean(s, *len_r);
	*len_r = squeeze(s, *len_r);
	return s;
}

static json_t *snippet(const struct jmap_mail_ctx *c, int64_t body, const struct terms *t,
		       const char *id, int *rc_r)
{
	struct store_jmap_email e;
	*rc_r = store_jmap_email(c->st, c->account_id, body, &e);
	if (*rc_r != 1)
		return NULL;
	char path[4200];
	store_msg_path(c->st, e.path, path, sizeof path);
	store_jmap_email_free(&e);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	struct stat sb;
	if (fd < 0 || fstat(fd, &sb) < 0 || sb.st_size < 0 ||
	    sb.st_size > (off_t)MESSAGE_MAX * 2) {
		if (fd >= 0)
			close(fd);
		*rc_r = -1;
		return NULL;
	}
	size_t n = (size_t)sb.st_size, got = 0;
	char *data = xmalloc(n + 1);
	while (got < n) {
		ssize_t r = read(fd, data + got, n - got);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		got += (size_t)r;
	}
	close(fd);
	data[got] = '\0';
	struct mime_message *mm = mime_parse(data, got, NULL);
	const struct mime_part *top = &mm->parts[0];
	json_t *subject = json_null(), *preview = json_null();
	char *raw = mime_header_find(data + top->hdr_off, top->hdr_len, "subject", MIME_FIELD_MAX,
				     NULL);
	if (raw && t->nsubject) {
		struct buf b;
		buf_init(&b, MIME_FIELD_MAX * 4);
		rfc2047_decode(raw, strlen(raw), &b);
		char *s = buf_steal(&b, &n);
		if (s) {
			utf8_clean(s, n);
			n = squeeze(s, n);
			json_decref(subject);
			subject = marked(s, n, t->subject, t->nsubject);
			free(s);
		}
		buf_free(&b);
	}
	free(raw);
	if (t->nbody) {
		size_t len;
		char *s = body_plain(data, mm, &len);
		size_t at = len;
		for (size_t i = 0; i < len && at == len; i++)
			if (term_at(s + i, len - i, t->body, t->nbody))
				at = i;
		if (at < len) {
			size_t from = at > PREVIEW_BEFORE ? at - PREVIEW_BEFORE : 0;
			while (from > 0 && ((unsigned char)s[from] & 0xc0) == 0x80)
				from--;
			size_t to = MIN(len, from + PREVIEW_LEN);
			while (to < len && ((unsigned char)s[to] & 0xc0) == 0x80)
				to--;
			json_decref(preview);
			preview = marked(s + from, to - from, t->body, t->nbody);
		}
		free(s);
	}
	mime_message_free(&mm);
	free(data);
	return json_pack("{s:s, s:o, s:o}", "emailId", id, "subject", subject, "preview",
			 preview);
}

json_t *jmap_searchsnippet_get(const struct jmap_mail_ctx *c, json_t *args,
			       const char **type_r, const char **desc_r)
{
	json_t *ids = json_object_get(args, "emailIds"), *filter = json_object_get(args, "filter");
	size_t i;
	json_t *v;
	bool ok = json_is_array(ids) && (filter == NULL || json_is_null(filter) ||
					 json_is_object(filter));
	json_array_foreach(ids, i, v)
		ok = ok && json_is_string(v);
	if (!ok) {
		*type_r = "invalidArguments";
		*desc_r = "emailIds (an array of ids) is required; filter is an object or null";
		return NULL;
	}
	if (json_array_size(ids) > c->max_objects_in_get) {
		*type_r = "requestTooLarge";
		*desc_r = "more emailIds than maxObjectsInGet";
		return NULL;
	}
	struct terms t = {0};
	if (!filter_terms(filter, &t)) {
		*type_r = "unsupportedFilter";
		*desc_r = "the filter is too large";
		return NULL;
	}
	json_t *list = json_array(), *not_found = json_array();
	json_array_foreach(ids, i, v) {
		int64_t body;
		int rc = 0;
		json_t *sn = NULL;
		if (jmap_email_id_parse(json_string_value(v), &body))
			sn = snippet(c, body, &t, json_string_value(v), &rc);
		if (rc < 0) {
			json_decref(list);
			json_decref(not_found);
			*type_r = "serverFail";
			*desc_r = "a message cannot be read";
			return NULL;
		}
		if (sn)
			json_array_append_new(list, sn);
		else
			json_array_append(not_found, v);
	}
	return json_pack("{s:s, s:o, s:o}", "accountId", c->acct, "list", list, "notFound",
			 json_array_size(not_found) ? not_found :
			 (json_decref(not_found), json_null()));
}
