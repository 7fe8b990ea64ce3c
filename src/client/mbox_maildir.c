/* mbox_maildir.c - the mbox operations over a local Maildir (mbox.h).
 *
 * Layout (Maildir++): INBOX is DIR itself, folder "A/b" is DIR/.A.b, each
 * a Maildir of its own (tmp/, new/, cur/; a subfolder also holds an empty
 * "maildirfolder" file when we make it).  Folder names are stored as they
 * are (UTF-8, '/' turned into '.'), so a '.' cannot be part of a name.
 *
 * A message is a file of new/ or cur/.  Its flags are the info of its name
 * in cur/, "UNIQUE:2,LETTERS" with S R F T D (and any other letters, which
 * are kept) in ASCII order; a file in new/ is \Recent.  Changing flags
 * renames the file into cur/ with the new info; a move renames it into
 * DEST/cur keeping its info; removing renames it into .Trash (or unlinks).
 *
 * Numbers: every operation lists new/ and cur/ afresh and sorts by the
 * Date field (the file's mtime without one), then mtime, then the unique
 * part of the file name (so renaming for flags keeps a message's number).
 *
 * Safety: directories below DIR and message files are opened relative to
 * their parent's descriptor with O_NOFOLLOW, files are only read when
 * they are regular files, and renames and unlinks go through renameat2 /
 * unlinkat on those descriptors without replacing an existing name: a
 * symlink planted in the Maildir never leads a write out of it.
 * maildir_deliver (append) takes a path: the folder's directories are
 * checked the same way just before. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "client/maildir.h"
#include "client/mbox.h"
#include "core/buf.h"
#include "core/util.h"
#include "mail/mime.h"
#include "mail/reader.h"
#include "mail/rfc2047.h"

#define HEAD_MAX (256u * 1024)  /* header bytes read for a listing */
#define FIELD_MAX 8192          /* bytes kept of a decoded From, To or Subject */
#define FOLDER_NAME_MAX 255     /* bytes of a folder name */
#define DNAME_MAX (FOLDER_NAME_MAX + 2)
#define DAY 86400

struct md {
	struct mbox base;
	char *dir;
};

/* One message file, as a listing found it. */
struct ent {
	char *name;          /* file name in new/ or cur/ */
	int sub;             /* 0 new/, 1 cur/ */
	int64_t date;        /* Date field, else mtime */
	int64_t mtime, day;  /* day: the Date field's day in its own zone (UTC midnight) */
	int64_t size;
	unsigned flags;
	bool done;           /* already acted on (a number given twice) */
	char *from, *to, *subject, *message_id; /* only with want_fields */
};

/* An open folder. */
struct folder {
	int fd;              /* its directory; -1: INBOX of a DIR that does not exist */
	int sub[3];          /* new/, cur/, tmp/; -1 when missing */
	char dname[DNAME_MAX + 1]; /* "." or ".A.b" */
	const char *shown;   /* its name for messages */
};

enum { SUB_NEW, SUB_CUR, SUB_TMP };
static const char *const sub_names[] = {"new", "cur", "tmp"};

static const struct {
	unsigned flag;
	char letter;
} flag_letters[] = {
	{MBOX_DRAFT, 'D'}, {MBOX_FLAGGED, 'F'}, {MBOX_ANSWERED, 'R'},
	{MBOX_SEEN, 'S'}, {MBOX_DELETED, 'T'},
};

#define SYSTEM_FLAGS (MBOX_SEEN | MBOX_ANSWERED | MBOX_FLAGGED | MBOX_DELETED | MBOX_DRAFT)

/* Special folders guessed from their (top-level) names, case-insensitive;
 * the first name is the one made when there is none. */
static const struct {
	const char *special;
	const char *names[3];
} specials[] = {
	{"trash", {"Trash", NULL, NULL}},
	{"sent", {"Sent", NULL, NULL}},
	{"drafts", {"Drafts", NULL, NULL}},
	{"junk", {"Junk", "Spam", NULL}},
	{"archive", {"Archive", NULL, NULL}},
};

/* ---- errors ---- */

static int fail(char *err, size_t errsz, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static int fail(char *err, size_t errsz, const char *fmt, ...)
{
	if (err != NULL && errsz > 0) {
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(err, errsz, fmt, ap);
		va_end(ap);
	}
	return -1;
}

/* errno e worth retrying later? (a full disk, a busy system) */
static void temp_errno(bool *temp_r, int e)
{
	if (temp_r != NULL)
		*temp_r = e == ENOSPC || e == EDQUOT || e == EAGAIN || e == EBUSY ||
			  e == ENFILE || e == EMFILE || e == ENOMEM;
}

static void clear_temp(bool *temp_r, char *err, size_t errsz)
{
	if (temp_r != NULL)
		*temp_r = false;
	if (err != NULL && errsz > 0)
		err[0] = '\0';
}

/* ---- text ---- */

/* Length of the valid UTF-8 sequence at s[0..n) (n > 0), code point in
 * *cp_r; 0 when the bytes are not one. */
static size_t utf8_seq(const unsigned char *s, size_t n, uint32_t *cp_r)
{
	unsigned char c = s[0];
	size_t need;
	uint32_t cp, min;
	if (c < 0x80) {
		*cp_r = c;
		return 1;
	}
	if (c >= 0xc2 && c <= 0xdf)
		need = 1, cp = c & 0x1fu, min = 0x80;
	else if (c >= 0xe0 && c <= 0xef)
		need = 2, cp = c & 0x0fu, min = 0x800;
	else if (c >= 0xf0 && c <= 0xf4)
		need = 3, cp = c & 0x07u, min = 0x10000;
	else
		return 0;
	if (n - 1 < need)
		return 0;
	for (size_t j = 1; j <= need; j++) {
		if ((s[j] & 0xc0) != 0x80)
			return 0;
		cp = (cp << 6) | (s[j] & 0x3fu);
	}
	if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	*cp_r = cp;
	return need + 1;
}

static bool utf8_valid(const char *s)
{
	size_t n = strlen(s);
	for (size_t i = 0; i < n;) {
		uint32_t cp;
		size_t k = utf8_seq((const unsigned char *)s + i, n - i, &cp);
		if (k == 0)
			return false;
		i += k;
	}
	return true;
}

/* s[0..n) as valid UTF-8 without control characters (C0 and DEL become
 * spaces, C1 controls and invalid bytes U+FFFD), at most max bytes, cut at
 * a character boundary.  Heap. */
static char *clean_text(const char *s, size_t n, size_t max)
{
	struct buf b;
	buf_init(&b, max);
	for (size_t i = 0; i < n;) {
		uint32_t cp;
		size_t k = utf8_seq((const unsigned char *)s + i, n - i, &cp);
		int r;
		if (k == 0) {
			r = buf_append(&b, "\xef\xbf\xbd", 3);
			k = 1;
		} else if (cp < 0x20 || cp == 0x7f) {
			r = buf_append(&b, " ", 1);
		} else if (cp >= 0x80 && cp <= 0x9f) {
			r = buf_append(&b, "\xef\xbf\xbd", 3);
		} else {
			r = buf_append(&b, s + i, k);
		}
		if (r < 0)
			break;
		i += k;
	}
	if (b.data == NULL)
		buf_append(&b, "", 0);
	return buf_steal(&b, NULL);
}

/* A name from the user for an error message: no control characters, cut. */
static void shown_name(const char *s, char *out, size_t outsz)
{
	char *c = clean_text(s, strlen(s), outsz - 4);
	snprintf(out, outsz, "%s%s", c, strlen(s) > strlen(c) ? "..." : "");
	free(c);
}

static unsigned char lower(unsigned char c)
{
	return c >= 'A' && c <= 'Z' ? (unsigned char)(c - 'A' + 'a') : c;
}

/* needle in h[0..hl), ASCII case folded only: other letters (Cyrillic,
 * Greek, fullwidth Latin) must match exactly.  An empty needle matches. */
static bool ci_contains(const char *h, size_t hl, const char *needle)
{
	const unsigned char *hay = (const unsigned char *)h;
	const unsigned char *nd = (const unsigned char *)needle;
	size_t nl = strlen(needle);
	if (nl == 0)
		return true;
	if (nl > hl)
		return false;
	unsigned char first = lower(nd[0]);
	for (size_t i = 0; i + nl <= hl; i++) {
		if (lower(hay[i]) != first)
			continue;
		size_t j = 1;
		while (j < nl && lower(hay[i + j]) == lower(nd[j]))
			j++;
		if (j == nl)
			return true;
	}
	return false;
}

/* ---- dates ---- */

static int64_t day_floor(int64_t t)
{
	int64_t d = t / DAY;
	if (t % DAY < 0)
		d--;
	return d * DAY;
}

/* ---- names ---- */

static int check_name(const char *f, char *err, size_t errsz)
{
	char shown[120];
	size_t n = strlen(f);
	shown_name(f, shown, sizeof shown);
	if (n == 0)
		return fail(err, errsz, "an empty folder name");
	if (n > FOLDER_NAME_MAX)
		return fail(err, errsz, "folder name \"%s\" is longer than %d bytes", shown,
			    FOLDER_NAME_MAX);
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)f[i] < 0x20 || f[i] == 0x7f)
			return fail(err, errsz, "folder name \"%s\" holds a control character",
				    shown);
	if (strstr(f, "..") != NULL)
		return fail(err, errsz, "folder name \"%s\": \"..\" is not allowed", shown);
	if (f[0] == '.')
		return fail(err, errsz, "folder name \"%s\" starts with '.'", shown);
	if (f[0] == '/' || f[n - 1] == '/')
		return fail(err, errsz, "folder name \"%s\" starts or ends with '/'", shown);
	if (strstr(f, "//") != NULL)
		return fail(err, errsz, "folder name \"%s\" has an empty level (\"//\")", shown);
	if (!utf8_valid(f))
		return fail(err, errsz, "folder name \"%s\" is not UTF-8", shown);
	return 0;
}

static bool is_inbox(const char *f)
{
	return f == NULL || str_ieq(f, "INBOX");
}

/* The directory of folder f (checked) under DIR: "." or ".A.b". */
static int folder_dname(const char *f, char out[DNAME_MAX + 1], char *err, size_t errsz)
{
	if (is_inbox(f)) {
		memcpy(out, ".", 2);
		return 0;
	}
	if (check_name(f, err, errsz) < 0)
		return -1;
	if (strchr(f, '.') != NULL)
		return fail(err, errsz,
			    "folder name \"%s\": a Maildir++ folder cannot hold '.' (it separates "
			    "the levels on disk)", f);
	size_t n = strlen(f);
	out[0] = '.';
	for (size_t i = 0; i < n; i++)
		out[i + 1] = f[i] == '/' ? '.' : f[i];
	out[n + 1] = '\0';
	return 0;
}

/* The special use of a folder name ("" for none). */
static const char *special_of(const char *name)
{
	for (size_t i = 0; i < ARRAY_LEN(specials); i++)
		for (size_t k = 0; k < 3 && specials[i].names[k]; k++)
			if (str_ieq(name, specials[i].names[k]))
				return specials[i].special;
	return "";
}

/* ---- directories ---- */

static int open_dir_at(int fd, const char *name)
{
	return openat(fd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
}

static void folder_close(struct folder *f)
{
	if (f->fd >= 0)
		close(f->fd);
	for (int i = 0; i < 3; i++)
		if (f->sub[i] >= 0)
			close(f->sub[i]);
	f->fd = f->sub[0] = f->sub[1] = f->sub[2] = -1;
}

static int no_folder(const char *f, char *err, size_t errsz)
{
	char shown[120];
	shown_name(f, shown, sizeof shown);
	return fail(err, errsz, "no folder \"%s\" (yubin folders lists them)", shown);
}

/* Open folder name (NULL: INBOX).  INBOX may lack DIR, new/ or cur/ (it
 * is then empty); any other folder must be a Maildir. */
static int folder_open(struct md *m, const char *name, struct folder *f, bool *temp_r,
		       char *err, size_t errsz)
{
	f->fd = f->sub[0] = f->sub[1] = f->sub[2] = -1;
	f->shown = name != NULL ? name : "INBOX";
	if (folder_dname(name, f->dname, err, errsz) < 0)
		return -1;
	bool inbox = strcmp(f->dname, ".") == 0;
	int root = open(m->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (root < 0) {
		int e = errno;
		if (e == ENOENT)
			return inbox ? 0 : no_folder(name, err, errsz);
		temp_errno(temp_r, e);
		return fail(err, errsz, "%s: %s", m->dir, strerror(e));
	}
	if (inbox) {
		f->fd = root;
	} else {
		f->fd = open_dir_at(root, f->dname);
		int e = errno;
		close(root);
		if (f->fd < 0 && e == ENOENT)
			return no_folder(name, err, errsz);
		if (f->fd < 0 && (e == ELOOP || e == ENOTDIR))
			return fail(err, errsz,
				    "folder \"%s\": %s/%s is a symlink or not a directory", name,
				    m->dir, f->dname);
		if (f->fd < 0) {
			temp_errno(temp_r, e);
			return fail(err, errsz, "%s/%s: %s", m->dir, f->dname, strerror(e));
		}
	}
	for (int i = 0; i < 3; i++) {
		f->sub[i] = open_dir_at(f->fd, sub_names[i]);
		int e = errno;
		if (f->sub[i] >= 0 || e == ENOENT)
			continue;
		folder_close(f);
		if (e == ELOOP || e == ENOTDIR)
			return fail(err, errsz, "%s/%s/%s is a symlink or not a directory", m->dir,
				    f->dname, sub_names[i]);
		temp_errno(temp_r, e);
		return fail(err, errsz, "%s/%s/%s: %s", m->dir, f->dname, sub_names[i],
			    strerror(e));
	}
	if (!inbox && (f->sub[SUB_NEW] < 0 || f->sub[SUB_CUR] < 0)) {
		folder_close(f);
		return no_folder(name, err, errsz);
	}
	return 0;
}

/* Make f's missing new/, cur/ and tmp/ (an INBOX that never had mail). */
static int folder_complete(struct md *m, struct folder *f, bool *temp_r, char *err,
			   size_t errsz)
{
	if (f->fd < 0) {
		if (maildir_create(m->dir) < 0) {
			int e = errno;
			temp_errno(temp_r, e);
			return fail(err, errsz, "cannot make the Maildir %s: %s", m->dir,
				    strerror(e));
		}
		f->fd = open(m->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (f->fd < 0) {
			int e = errno;
			temp_errno(temp_r, e);
			return fail(err, errsz, "%s: %s", m->dir, strerror(e));
		}
	}
	for (int i = 0; i < 3; i++) {
		if (f->sub[i] >= 0)
			continue;
		if (mkdirat(f->fd, sub_names[i], 0700) < 0 && errno != EEXIST) {
			int e = errno;
			temp_errno(temp_r, e);
			return fail(err, errsz, "cannot make %s/%s/%s: %s", m->dir, f->dname,
				    sub_names[i], strerror(e));
		}
		f->sub[i] = open_dir_at(f->fd, sub_names[i]);
		if (f->sub[i] < 0) {
			int e = errno;
			temp_errno(temp_r, e);
			return fail(err, errsz, "%s/%s/%s: %s", m->dir, f->dname, sub_names[i],
				    e == ELOOP ? "a symlink" : strerror(e));
		}
	}
	return 0;
}

/* Make the Maildir++ folder dname (".Trash") with its subdirectories and
 * maildirfolder file; an existing one is fine. */
static int folder_make(struct md *m, const char *dname, bool *temp_r, char *err, size_t errsz)
{
	if (maildir_create(m->dir) < 0) {
		int e = errno;
		temp_errno(temp_r, e);
		return fail(err, errsz, "cannot make the Maildir %s: %s", m->dir, strerror(e));
	}
	int root = open(m->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	int e = errno;
	if (root >= 0 && mkdirat(root, dname, 0700) < 0 && errno != EEXIST)
		e = errno;
	else
		e = 0;
	int fd = root >= 0 && e == 0 ? open_dir_at(root, dname) : -1;
	if (fd < 0 && e == 0)
		e = errno;
	if (root >= 0)
		close(root);
	if (fd < 0) {
		temp_errno(temp_r, e);
		return fail(err, errsz, "cannot make %s/%s: %s", m->dir, dname,
			    e == ELOOP ? "a symlink is in the way" : strerror(e));
	}
	for (int i = 0; i < 3; i++) {
		if (mkdirat(fd, sub_names[i], 0700) < 0 && errno != EEXIST) {
			e = errno;
			close(fd);
			temp_errno(temp_r, e);
			return fail(err, errsz, "cannot make %s/%s/%s: %s", m->dir, dname,
				    sub_names[i], strerror(e));
		}
	}
	int mf = openat(fd, "maildirfolder", O_WRONLY | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (mf >= 0)
		close(mf);
	close(fd);
	return 0;
}

/* Has the directory fd a cur/ and a new/ (not symlinks)? */
static bool is_maildir(int fd)
{
	struct stat st;
	return fstatat(fd, "cur", &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISDIR(st.st_mode) &&
	       fstatat(fd, "new", &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISDIR(st.st_mode);
}

/* Folders of DIR with special use `special` (lowest name first), or "". */
static void find_special(struct md *m, const char *special, char *name, size_t namesz)
{
	name[0] = '\0';
	int root = open(m->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	DIR *d = root >= 0 ? fdopendir(root) : NULL;
	if (d == NULL) {
		if (root >= 0)
			close(root);
		return;
	}
	struct dirent *de;
	while ((de = readdir(d)) != NULL) {
		const char *n = de->d_name;
		if (n[0] != '.' || n[1] == '\0' || n[1] == '.' || strchr(n + 1, '.') != NULL)
			continue;
		if (strcmp(special_of(n + 1), special) != 0)
			continue;
		int fd = open_dir_at(dirfd(d), n);
		if (fd < 0)
			continue;
		bool ok = is_maildir(fd);
		close(fd);
		if (ok && (name[0] == '\0' || strcmp(n + 1, name) < 0))
			snprintf(name, namesz, "%s", n + 1);
	}
	closedir(d);
}

/* The folder of special use `special`: an existing one, else one made
 * under the usual name. */
static int special_folder(struct md *m, const char *special, char *name, size_t namesz,
			  bool *temp_r, char *err, size_t errsz)
{
	find_special(m, special, name, namesz);
	if (name[0] != '\0')
		return 0;
	for (size_t i = 0; i < ARRAY_LEN(specials); i++) {
		if (strcmp(specials[i].special, special) != 0)
			continue;
		char dname[DNAME_MAX + 1];
		snprintf(name, namesz, "%s", specials[i].names[0]);
		snprintf(dname, sizeof dname, ".%s", name);
		return folder_make(m, dname, temp_r, err, errsz);
	}
	return fail(err, errsz, "no special folder \"%s\" (sent, drafts, trash, junk, archive)",
		    special);
}

/* ---- files ---- */

/* Rename sname in sfd to dname in dfd, never replacing a file. */
static int move_file(int sfd, const char *sname, int dfd, const char *dname)
{
	if (renameat2(sfd, sname, dfd, dname, RENAME_NOREPLACE) == 0)
		return 0;
	if (errno != EINVAL && errno != ENOSYS)
		return -1;
	/* a file system without RENAME_NOREPLACE: link never replaces */
	if (linkat(sfd, sname, dfd, dname, 0) < 0)
		return -1;
	if (unlinkat(sfd, sname, 0) < 0) {
		int e = errno;
		unlinkat(dfd, dname, 0);
		errno = e;
		return -1;
	}
	return 0;
}

/* A regular file in dir fd, opened for reading; -1 for anything else. */
static int open_msg(int fd, const char *name, struct stat *st)
{
	int f = openat(fd, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
	if (f < 0)
		return -1;
	if (fstat(f, st) < 0 || !S_ISREG(st->st_mode)) {
		close(f);
		errno = EINVAL;
		return -1;
	}
	return f;
}

/* Read fd into b (up to b->max bytes); stop_at_header: once the blank
 * line after the header is in.  0, or -1 with errno (b->max passed:
 * EFBIG). */
static int read_fd(int fd, struct buf *b, bool stop_at_header)
{
	char tmp[16384];
	for (;;) {
		size_t want = MIN(sizeof tmp, buf_room(b) + 1);
		ssize_t r = read(fd, tmp, want);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return -1;
		if (r == 0)
			return 0;
		size_t from = b->len > 2 ? b->len - 2 : 0;
		if (buf_append(b, tmp, (size_t)r) < 0) {
			if (stop_at_header) {
				buf_append(b, tmp, MIN((size_t)r, buf_room(b)));
				return 0;
			}
			errno = EFBIG;
			return -1;
		}
		if (stop_at_header && (memmem(b->data + from, b->len - from, "\n\n", 2) ||
				       memmem(b->data + from, b->len - from, "\n\r\n", 3)))
			return 0;
	}
}

/* The info letters of a file name: "" without ":2,". */
static const char *name_info(const char *name)
{
	const char *c = strrchr(name, ':');
	return c != NULL && c[1] == '2' && c[2] == ',' ? c + 3 : "";
}

static bool has_info(const char *name)
{
	const char *c = strrchr(name, ':');
	return c != NULL && c[1] == '2' && c[2] == ',';
}

static size_t unique_len(const char *name)
{
	const char *c = strrchr(name, ':');
	return c != NULL ? (size_t)(c - name) : strlen(name);
}

static unsigned info_flags(const char *info)
{
	unsigned f = 0;
	for (; *info; info++)
		for (size_t i = 0; i < ARRAY_LEN(flag_letters); i++)
			if (*info == flag_letters[i].letter)
				f |= flag_letters[i].flag;
	return f;
}

/* The name e gets with flags set to `flags`: UNIQUE:2,LETTERS, the
 * letters (other letters of its info kept) in ASCII order. */
static int flagged_name(const char *name, unsigned flags, char *out, size_t outsz)
{
	bool have[128] = {false};
	for (const char *p = name_info(name); *p; p++)
		if ((unsigned char)*p < 128 && *p > ' ')
			have[(unsigned char)*p] = true;
	for (size_t i = 0; i < ARRAY_LEN(flag_letters); i++)
		have[(unsigned char)flag_letters[i].letter] = (flags & flag_letters[i].flag) != 0;
	char letters[128];
	size_t k = 0;
	for (int c = 0; c < 128; c++)
		if (have[c])
			letters[k++] = (char)c;
	letters[k] = '\0';
	size_t ul = unique_len(name);
	if ((size_t)snprintf(out, outsz, "%.*s:2,%s", (int)ul, name, letters) >= outsz)
		return -1;
	return 0;
}

/* ---- headers ---- */

/* Field `name` of the header, decoded for display (mbox_msg.from). */
static char *display_field(const char *head, size_t len, const char *name)
{
	char *raw = mime_header_find(head, len, name, FIELD_MAX * 2, NULL);
	if (raw == NULL)
		return xstrdup("");
	struct buf b;
	buf_init(&b, FIELD_MAX * 3);
	/* as yubin read shows it: RFC 2047, raw 8-bit Japanese recognised */
	reader_header_text(raw, strlen(raw), NULL, true, &b);
	char *s = clean_text(b.data ? b.data : "", b.len, FIELD_MAX);
	buf_free(&b);
	free(raw);
	return s;
}

/* Every field of the header decoded contains needle? */
static bool header_contains(const char *msg, size_t len, const char *needle)
{
	size_t pos = 0;
	struct mime_field f;
	bool found = false;
	while (!found && mime_header_next(msg, len, &pos, &f)) {
		if (f.name_len == 0)
			continue;
		char *v = mime_unfold(f.value, f.value_len, MIME_FIELD_MAX, NULL);
		struct buf b;
		buf_init(&b, MIME_FIELD_MAX * 2);
		rfc2047_decode(v, strlen(v), &b);
		found = ci_contains(f.name, f.name_len, needle) ||
			ci_contains(b.data ? b.data : "", b.len, needle);
		buf_free(&b);
		free(v);
	}
	return found;
}

/* The body as `yubin read` shows it (HTML as text, decoded, converted)
 * contains needle?  The rendered header block and the list of
 * attachments are left out. */
static bool body_contains(const char *msg, size_t len, const char *needle,
			  struct reader_part_info *parts)
{
	struct buf out;
	size_t np = 0;
	buf_init(&out, READER_OUT_MAX + 1024);
	reader_render(msg, len, NULL, &out, parts, READER_PARTS_MAX, &np);
	const char *s = out.data ? out.data : "";
	const char *end = s + out.len, *body = s;
	/* the reader writes a header block (then an empty line) only when one
	 * of its usual fields is there */
	static const char *const usual[] = {"Date", "From", "To", "Cc", "Subject"};
	bool head = false;
	for (size_t i = 0; i < ARRAY_LEN(usual) && !head; i++) {
		char *v = mime_header_find(msg, len, usual[i], 1, NULL);
		head = v != NULL;
		free(v);
	}
	const char *sep = head ? memmem(s, out.len, "\n\n", 2) : NULL;
	if (sep != NULL)
		body = sep + 2;
	if (np > 0) {
		/* the last "Attachments:" line is the reader's list */
		const char *p = body, *last = NULL;
		while ((p = memmem(p, (size_t)(end - p), "Attachments:\n", 13)) != NULL) {
			if (p == body || p[-1] == '\n')
				last = p;
			p++;
		}
		if (last != NULL)
			end = last;
	}
	bool r = ci_contains(body, (size_t)(end - body), needle);
	buf_free(&out);
	return r;
}

/* ---- listing ---- */

static void ents_free(struct ent *v, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(v[i].name);
		free(v[i].from);
		free(v[i].to);
		free(v[i].subject);
		free(v[i].message_id);
	}
	free(v);
}

static int ent_cmp(const void *a, const void *b)
{
	const struct ent *x = a, *y = b;
	if (x->date != y->date)
		return x->date < y->date ? -1 : 1;
	if (x->mtime != y->mtime)
		return x->mtime < y->mtime ? -1 : 1;
	size_t lx = unique_len(x->name), ly = unique_len(y->name);
	int c = memcmp(x->name, y->name, MIN(lx, ly));
	if (c != 0)
		return c;
	if (lx != ly)
		return lx < ly ? -1 : 1;
	c = strcmp(x->name, y->name);
	return c != 0 ? c : x->sub - y->sub;
}

/* The messages of f, sorted. */
static int scan(struct folder *f, bool want_fields, struct ent **v_r, size_t *n_r,
		bool *temp_r, char *err, size_t errsz)
{
	struct ent *v = NULL;
	size_t n = 0, cap = 0;
	*v_r = NULL;
	*n_r = 0;
	for (int s = 0; s < 2; s++) {
		if (f->sub[s] < 0)
			continue;
		/* a descriptor of its own: readdir moves its offset */
		int dfd = openat(f->sub[s], ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		DIR *d = dfd >= 0 ? fdopendir(dfd) : NULL;
		if (d == NULL) {
			int e = errno;
			if (dfd >= 0)
				close(dfd);
			ents_free(v, n);
			temp_errno(temp_r, e);
			return fail(err, errsz, "%s/%s: %s", f->shown, sub_names[s], strerror(e));
		}
		struct dirent *de;
		while ((de = readdir(d)) != NULL) {
			if (de->d_name[0] == '.')
				continue;
			struct stat st;
			if (fstatat(f->sub[s], de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0 ||
			    !S_ISREG(st.st_mode))
				continue;
			if (n >= MBOX_LIST_MAX) {
				closedir(d);
				ents_free(v, n);
				return fail(err, errsz, "more than %d messages in %s",
					    MBOX_LIST_MAX, f->shown);
			}
			int fd = open_msg(f->sub[s], de->d_name, &st);
			if (fd < 0)
				continue; /* gone since readdir, or not a file */
			struct buf head;
			buf_init(&head, HEAD_MAX);
			int r = read_fd(fd, &head, true);
			close(fd);
			if (r < 0) {
				buf_free(&head);
				continue;
			}
			if (n == cap) {
				cap = cap ? cap * 2 : 64;
				v = xreallocarray(v, cap, sizeof *v);
			}
			struct ent *e = &v[n++];
			memset(e, 0, sizeof *e);
			e->name = xstrdup(de->d_name);
			e->sub = s;
			e->size = (int64_t)st.st_size;
			e->mtime = (int64_t)st.st_mtime;
			e->flags = info_flags(name_info(e->name));
			if (s == SUB_NEW)
				e->flags |= MBOX_RECENT;
			const char *h = head.data ? head.data : "";
			char *dv = mime_header_find(h, head.len, "Date", 512, NULL);
			int off = 0;
			if (dv != NULL && mbox_parse_date(dv, &e->date, &off)) {
				e->day = day_floor(e->date + off);
			} else {
				e->date = e->mtime;
				e->day = day_floor(e->mtime);
			}
			free(dv);
			if (want_fields) {
				e->from = display_field(h, head.len, "From");
				e->to = display_field(h, head.len, "To");
				e->subject = display_field(h, head.len, "Subject");
				char *id = mime_header_find(h, head.len, "Message-ID", 998, NULL);
				e->message_id = clean_text(id ? id : "", id ? strlen(id) : 0, 998);
				free(id);
			}
			buf_free(&head);
		}
		closedir(d);
	}
	if (n > 0)
		qsort(v, n, sizeof *v, ent_cmp);
	*v_r = v;
	*n_r = n;
	return 0;
}

/* Folder `name` opened and listed. */
static int open_and_scan(struct md *m, const char *name, bool want_fields, struct folder *f,
			 struct ent **v_r, size_t *n_r, bool *temp_r, char *err, size_t errsz)
{
	if (folder_open(m, name, f, temp_r, err, errsz) < 0)
		return -1;
	if (scan(f, want_fields, v_r, n_r, temp_r, err, errsz) < 0) {
		folder_close(f);
		return -1;
	}
	return 0;
}

/* ns[0..count) against one listing, all checked before anything is done. */
static int resolve(struct ent *v, size_t n, const char *shown, const uint32_t *ns,
		   size_t count, struct ent ***sel_r, char *err, size_t errsz)
{
	*sel_r = NULL;
	if (count == 0)
		return fail(err, errsz, "no message numbers given");
	if (count > MBOX_ARGS_MAX)
		return fail(err, errsz, "more than %d message numbers", MBOX_ARGS_MAX);
	for (size_t i = 0; i < count; i++)
		if (ns[i] < 1 || ns[i] > n)
			return fail(err, errsz, "no message %u (%zu in %s)", (unsigned)ns[i], n,
				    shown);
	struct ent **sel = xreallocarray(NULL, count, sizeof *sel);
	for (size_t i = 0; i < count; i++)
		sel[i] = &v[ns[i] - 1];
	*sel_r = sel;
	return 0;
}

/* Give e new flags: renamed into cur/ with the new info (nothing happens
 * when the letters do not change). */
static int ent_set_flags(struct md *m, struct folder *f, struct ent *e, unsigned flags,
			 bool *temp_r, char *err, size_t errsz)
{
	flags &= SYSTEM_FLAGS;
	if (flags == (e->flags & SYSTEM_FLAGS))
		return 0;
	char nn[512];
	if (flagged_name(e->name, flags, nn, sizeof nn) < 0)
		return fail(err, errsz, "%s: file name too long for its flags", e->name);
	if (e->sub == SUB_CUR && strcmp(nn, e->name) == 0)
		return 0;
	if (folder_complete(m, f, temp_r, err, errsz) < 0)
		return -1;
	if (move_file(f->sub[e->sub], e->name, f->sub[SUB_CUR], nn) < 0) {
		int e2 = errno;
		temp_errno(temp_r, e2);
		return fail(err, errsz, "cannot rename %s/%s/%s/%s to cur/%s: %s", m->dir,
			    f->dname, sub_names[e->sub], e->name, nn,
			    e2 == EEXIST ? "that name exists" : strerror(e2));
	}
	free(e->name);
	e->name = xstrdup(nn);
	e->sub = SUB_CUR;
	e->flags = flags;
	return 0;
}

/* ---- the operations ---- */

static int md_list(struct mbox *mb, const char *folder, struct mbox_msg **v_r, size_t *n_r,
		   bool *temp_r, char *err, size_t errsz)
{
	struct md *m = (struct md *)mb;
	struct folder f;
	struct ent *v;
	size_t n;
	clear_temp(temp_r, err, errsz);
	*v_r = NULL;
	*n_r = 0;
	if (open_and_scan(m, folder, true, &f, &v, &n, temp_r, err, errsz) < 0)
		return -1;
	folder_close(&f);
	struct mbox_msg *out = n ? xcalloc(n, sizeof *out) : NULL;
	for (size_t i = 0; i < n; i++) {
		out[i] = (struct mbox_msg){
			.n = (uint32_t)(i + 1),
			.uid = 0,
			.date = v[i].date,
			.size = v[i].size,
			.flags = v[i].flags,
			.from = v[i].from,
			.to = v[i].to,
			.subject = v[i].subject,
			.message_id = v[i].message_id,
		};
		v[i].from = v[i].to = v[i].subject = v[i].message_id = NULL;
	}
	ents_free(v, n);
	*v_r = out;
	*n_r = n;
	return 0;
}

static int md_fetch(struct mbox *mb, const char *folder, uint32_t num, bool peek,
		    char **data_r, size_t *len_r, bool *temp_r, char *err, size_t errsz)
{
	struct md *m = (struct md *)mb;
	struct folder f;
	struct ent *v, **sel;
	size_t n;
	clear_temp(temp_r, err, errsz);
	*data_r = NULL;
	*len_r = 0;
	if (open_and_scan(m, folder, false, &f, &v, &n, temp_r, err, errsz) < 0)
		return -1;
	int ret = -1;
	if (resolve(v, n, f.shown, &num, 1, &sel, err, errsz) < 0)
		goto out;
	struct ent *e = sel[0];
	free(sel);
	struct stat st;
	int fd = open_msg(f.sub[e->sub], e->name, &st);
	if (fd < 0) {
		int e2 = errno;
		temp_errno(temp_r, e2);
		fail(err, errsz, "message %u: %s/%s/%s/%s: %s", (unsigned)num, m->dir, f.dname,
		     sub_names[e->sub], e->name, strerror(e2));
		goto out;
	}
	if ((uint64_t)st.st_size > MBOX_MSG_MAX) {
		close(fd);
		fail(err, errsz, "message %u is %lld bytes, more than the %u MiB yubin reads",
		     (unsigned)num, (long long)st.st_size, MBOX_MSG_MAX / (1024 * 1024));
		goto out;
	}
	struct buf b;
	buf_init(&b, MBOX_MSG_MAX);
	int r = read_fd(fd, &b, false);
	int e2 = errno;
	close(fd);
	if (r < 0) {
		buf_free(&b);
		if (e2 == EFBIG)
			fail(err, errsz, "message %u is more than the %u MiB yubin reads",
			     (unsigned)num, MBOX_MSG_MAX / (1024 * 1024));
		else
			fail(err, errsz, "message %u: %s", (unsigned)num, strerror(e2));
		goto out;
	}
	if (b.data == NULL)
		buf_append(&b, "", 0);
	if (!peek) {
		/* Marking it seen is best effort: a read-only Maildir still reads. */
		char ignored[256];
		ent_set_flags(m, &f, e, e->flags | MBOX_SEEN, NULL, ignored, sizeof ignored);
	}
	*data_r = buf_steal(&b, len_r);
	ret = 0;
out:
	folder_close(&f);
	ents_free(v, n);
	return ret;
}

static int md_set_flags(struct mbox *mb, const char *folder, const uint32_t *ns, size_t count,
			unsigned add, unsigned remove, const char *keyword, bool add_kw,
			bool *temp_r, char *err, size_t errsz)
{
	struct md *m = (struct md *)mb;
	struct folder f;
	struct ent *v, **sel;
	size_t n;
	(void)add_kw;
	clear_temp(temp_r, err, errsz);
	if (keyword != NULL) {
		char shown[120];
		shown_name(keyword, shown, sizeof shown);
		return fail(err, errsz,
			    "keyword %s: a Maildir has no keywords (only seen, answered, "
			    "flagged, deleted and draft)", shown);
	}
	if (open_and_scan(m, folder, false, &f, &v, &n, temp_r, err, errsz) < 0)
		return -1;
	int ret = -1;
	if (resolve(v, n, f.shown, ns, count, &sel, err, errsz) < 0)
		goto out;
	ret = 0;
	for (size_t i = 0; i < count && ret == 0; i++) {
		struct ent *e = sel[i];
		ret = ent_set_flags(m, &f, e, (e->flags | add) & ~remove, temp_r, err, errsz);
	}
	free(sel);
out:
	folder_close(&f);
	ents_free(v, n);
	return ret;
}

/* Move the selected messages of f into dest/cur (info kept; a file of
 * new/ gets an empty one).  *moved_r counts them. */
static int move_into(struct md *m, struct folder *f, struct ent **sel, size_t count,
		     struct folder *dest, size_t *moved_r, bool *temp_r, char *err, size_t errsz)
{
	*moved_r = 0;
	for (size_t i = 0; i < count; i++) {
		struct ent *e = sel[i];
		if (e->done)
			continue;
		char nn[512];
		const char *info = has_info(e->name) ? "" : ":2,";
		if ((size_t)snprintf(nn, sizeof nn, "%s%s", e->name, info) >= sizeof nn)
			return fail(err, errsz, "%s: file name too long", e->name);
		if (move_file(f->sub[e->sub], e->name, dest->sub[SUB_CUR], nn) < 0) {
			int e2 = errno;
			temp_errno(temp_r, e2);
			return fail(err, errsz, "cannot move %s/%s/%s/%s to %s/%s/cur: %s", m->dir,
				    f->dname, sub_names[e->sub], e->name, m->dir, dest->dname,
				    e2 == EEXIST ? "a file of that name is there" : strerror(e2));
		}
		e->done = true;
		(*moved_r)++;
	}
	return 0;
}

static int md_move(struct mbox *mb, const char *folder, const uint32_t *ns, size_t count,
		   const char *dest, bool *temp_r, char *err, size_t errsz)
{
	struct md *m = (struct md *)mb;
	struct folder f, d;
	struct ent *v = NULL, **sel = NULL;
	size_t n = 0, moved = 0;
	clear_temp(temp_r, err, errsz);
	if (dest == NULL)
		return fail(err, errsz, "no destination folder");
	d.fd = d.sub[0] = d.sub[1] = d.sub[2] = -1;
	if (open_and_scan(m, folder, false, &f, &v, &n, temp_r, err, errsz) < 0)
		return -1;
	int ret = -1;
	if (folder_open(m, dest, &d, temp_r, err, errsz) < 0)
		goto out;
	if (strcmp(d.dname, f.dname) == 0) {
		fail(err, errsz, "the messages are in \"%s\" already", d.shown);
		goto out;
	}
	if (resolve(v, n, f.shown, ns, count, &sel, err, errsz) < 0)
		goto out;
	if (folder_complete(m, &d, temp_r, err, errsz) < 0)
		goto out;
	ret = move_into(m, &f, sel, count, &d, &moved, temp_r, err, errsz);
	if (ret < 0 && moved > 0) {
		char e2[512];
		snprintf(e2, sizeof e2, "%s", err);
		fail(err, errsz, "%zu message(s) moved, then: %s", moved, e2);
	}
out:
	free(sel);
	folder_close(&d);
	folder_close(&f);
	ents_free(v, n);
	return ret;
}

static int md_remove(struct mbox *mb, const char *folder, const uint32_t *ns, size_t count,
		     bool expunge, bool *temp_r, char *err, size_t errsz)
{
	struct md *m = (struct md *)mb;
	struct folder f, t;
	struct ent *v = NULL, **sel = NULL;
	size_t n = 0, done = 0;
	clear_temp(temp_r, err, errsz);
	t.fd = t.sub[0] = t.sub[1] = t.sub[2] = -1;
	if (open_and_scan(m, folder, false, &f, &v, &n, temp_r, err, errsz) < 0)
		return -1;
	int ret = -1;
	if (resolve(v, n, f.shown, ns, count, &sel, err, errsz) < 0)
		goto out;
	char trash[DNAME_MAX + 1] = "";
	if (!expunge) {
		find_special(m, "trash", trash, sizeof trash);
		expunge = trash[0] != '\0' && strcmp(f.dname + 1, trash) == 0;
	}
	if (!expunge) {
		if (trash[0] == '\0' &&
		    special_folder(m, "trash", trash, sizeof trash, temp_r, err, errsz) < 0)
			goto out;
		if (folder_open(m, trash, &t, temp_r, err, errsz) < 0 ||
		    folder_complete(m, &t, temp_r, err, errsz) < 0)
			goto out;
		ret = move_into(m, &f, sel, count, &t, &done, temp_r, err, errsz);
	} else {
		ret = 0;
		for (size_t i = 0; i < count && ret == 0; i++) {
			struct ent *e = sel[i];
			if (e->done)
				continue;
			if (unlinkat(f.sub[e->sub], e->name, 0) < 0) {
				int e2 = errno;
				temp_errno(temp_r, e2);
				ret = fail(err, errsz, "cannot delete %s/%s/%s/%s: %s", m->dir,
					   f.dname, sub_names[e->sub], e->name, strerror(e2));
				break;
			}
			e->done = true;
			done++;
		}
	}
	if (ret < 0 && done > 0) {
		char e2[512];
		snprintf(e2, sizeof e2, "%s", err);
		fail(err, errsz, "%zu message(s) removed, then: %s", done, e2);
	}
out:
	free(sel);
	folder_close(&t);
	folder_close(&f);
	ents_free(v, n);
	return ret;
}

static bool query_matches(const struct mbox_query *q, struct folder *f, const struct ent *e,
			  struct reader_part_info *parts)
{
	if ((e->flags & q->flags_set) != q->flags_set || (e->flags & q->flags_clear) != 0)
		return false;
	if (q->since != 0 && e->day < day_floor(q->since))
		return false;
	if (q->before != 0 && e->day >= day_floor(q->before))
		return false;
	if (q->from != NULL && !ci_contains(e->from, strlen(e->from), q->from))
		return false;
	if (q->to != NULL && !ci_contains(e->to, strlen(e->to), q->to))
		return false;
	if (q->subject != NULL && !ci_contains(e->subject, strlen(e->subject), q->subject))
		return false;
	if (q->body == NULL && q->text == NULL)
		return true;
	/* The whole message (a prefix of one past MBOX_MSG_MAX). */
	struct stat st;
	int fd = open_msg(f->sub[e->sub], e->name, &st);
	if (fd < 0)
		return false;
	struct buf b;
	buf_init(&b, MBOX_MSG_MAX);
	int r = read_fd(fd, &b, false);
	close(fd);
	(void)r;
	const char *msg = b.data ? b.data : "";
	bool ok = true;
	if (q->body != NULL)
		ok = body_contains(msg, b.len, q->body, parts);
	if (ok && q->text != NULL)
		ok = header_contains(msg, b.len, q->text) ||
		     body_contains(msg, b.len, q->text, parts);
	buf_free(&b);
	return ok;
}

static int md_search(struct mbox *mb, const char *folder, const struct mbox_query *q,
		     uint32_t **ns_r, size_t *n_r, bool *temp_r, char *err, size_t errsz)
{
	struct md *m = (struct md *)mb;
	struct folder f;
	struct ent *v;
	size_t n;
	clear_temp(temp_r, err, errsz);
	*ns_r = NULL;
	*n_r = 0;
	if (open_and_scan(m, folder, true, &f, &v, &n, temp_r, err, errsz) < 0)
		return -1;
	uint32_t *out = NULL;
	size_t k = 0;
	struct reader_part_info *parts = NULL;
	if (q->body != NULL || q->text != NULL)
		parts = xcalloc(READER_PARTS_MAX, sizeof *parts);
	for (size_t i = 0; i < n; i++) {
		if (!query_matches(q, &f, &v[i], parts))
			continue;
		if (out == NULL)
			out = xreallocarray(NULL, n, sizeof *out);
		out[k++] = (uint32_t)(i + 1);
	}
	free(parts);
	folder_close(&f);
	ents_free(v, n);
	*ns_r = out;
	*n_r = k;
	return 0;
}

/* Messages of the Maildir fd (new/ and cur/) and those without S. */
static void count_msgs(int fd, int64_t *total, int64_t *unseen)
{
	*total = *unseen = 0;
	for (int s = 0; s < 2; s++) {
		int sfd = fd >= 0 ? open_dir_at(fd, sub_names[s]) : -1;
		DIR *d = sfd >= 0 ? fdopendir(sfd) : NULL;
		if (d == NULL) {
			if (sfd >= 0)
				close(sfd);
			continue;
		}
		struct dirent *de;
		while ((de = readdir(d)) != NULL) {
			struct stat st;
			if (de->d_name[0] == '.' ||
			    fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0 ||
			    !S_ISREG(st.st_mode))
				continue;
			(*total)++;
			if (!(info_flags(name_info(de->d_name)) & MBOX_SEEN))
				(*unseen)++;
		}
		closedir(d);
	}
}

static int folder_cmp(const void *a, const void *b)
{
	const struct mbox_folder *x = a, *y = b;
	return strcmp(x->name, y->name);
}

static int md_folders(struct mbox *mb, struct mbox_folder **v_r, size_t *n_r, bool *temp_r,
		      char *err, size_t errsz)
{
	struct md *m = (struct md *)mb;
	clear_temp(temp_r, err, errsz);
	size_t n = 1, cap = 16;
	struct mbox_folder *v = xcalloc(cap, sizeof *v);
	v[0].name = xstrdup("INBOX");
	int root = open(m->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (root < 0 && errno != ENOENT) {
		int e = errno;
		mbox_folders_free(v, n);
		temp_errno(temp_r, e);
		return fail(err, errsz, "%s: %s", m->dir, strerror(e));
	}
	count_msgs(root, &v[0].total, &v[0].unseen);
	DIR *d = root >= 0 ? fdopendir(root) : NULL;
	if (root >= 0 && d == NULL)
		close(root);
	struct dirent *de;
	while (d != NULL && (de = readdir(d)) != NULL) {
		const char *dn = de->d_name;
		if (dn[0] != '.' || dn[1] == '\0' || dn[1] == '.' ||
		    strlen(dn) > FOLDER_NAME_MAX + 1)
			continue;
		char name[DNAME_MAX + 1], e2[256];
		snprintf(name, sizeof name, "%s", dn + 1);
		for (char *p = name; *p; p++)
			if (*p == '.')
				*p = '/';
		char check[DNAME_MAX + 1];
		if (is_inbox(name) || folder_dname(name, check, e2, sizeof e2) < 0)
			continue; /* not a name we could give back */
		int fd = open_dir_at(dirfd(d), dn);
		if (fd < 0)
			continue;
		bool ok = is_maildir(fd) && n < MBOX_LIST_MAX;
		if (ok) {
			if (n == cap) {
				cap *= 2;
				v = xreallocarray(v, cap, sizeof *v);
			}
			struct mbox_folder *fo = &v[n++];
			memset(fo, 0, sizeof *fo);
			fo->name = xstrdup(name);
			snprintf(fo->special, sizeof fo->special, "%s", special_of(name));
			count_msgs(fd, &fo->total, &fo->unseen);
		}
		close(fd);
	}
	if (d != NULL)
		closedir(d);
	if (n > 2)
		qsort(v + 1, n - 1, sizeof *v, folder_cmp);
	*v_r = v;
	*n_r = n;
	return 0;
}

/* data with CR LF turned into LF (a Maildir stores LF). Heap. */
static char *to_lf(const char *data, size_t len, size_t *len_r)
{
	char *out = xmalloc(len + 1);
	size_t k = 0;
	for (size_t i = 0; i < len; i++)
		if (!(data[i] == '\r' && i + 1 < len && data[i + 1] == '\n'))
			out[k++] = data[i];
	out[k] = '\0';
	*len_r = k;
	return out;
}

static int md_append(struct mbox *mb, const char *folder, const char *special,
		     const char *data, size_t len, unsigned flags, bool *temp_r, char *err,
		     size_t errsz)
{
	struct md *m = (struct md *)mb;
	struct folder f;
	char sname[DNAME_MAX + 1];
	clear_temp(temp_r, err, errsz);
	if (len > MBOX_MSG_MAX)
		return fail(err, errsz, "the message is %zu bytes, more than the %u MiB limit",
			    len, MBOX_MSG_MAX / (1024 * 1024));
	if (special != NULL) {
		if (special_folder(m, special, sname, sizeof sname, temp_r, err, errsz) < 0)
			return -1;
		folder = sname;
	}
	if (folder_open(m, folder, &f, temp_r, err, errsz) < 0)
		return -1;
	int ret = -1;
	if (folder_complete(m, &f, temp_r, err, errsz) < 0)
		goto out;
	char path[4096 + DNAME_MAX + 2];
	if ((size_t)snprintf(path, sizeof path, "%s/%s", m->dir, f.dname) >= sizeof path) {
		fail(err, errsz, "%s: path too long", m->dir);
		goto out;
	}
	size_t lf_len;
	char *lf = to_lf(data, len, &lf_len);
	char name[MAILDIR_NAME_MAX];
	int r = maildir_deliver(path, lf, lf_len, name, sizeof name, err, errsz);
	free(lf);
	if (r < 0) {
		temp_errno(temp_r, errno);
		goto out;
	}
	flags &= SYSTEM_FLAGS;
	if (flags != 0) {
		char nn[512];
		if (flagged_name(name, flags, nn, sizeof nn) < 0 ||
		    move_file(f.sub[SUB_NEW], name, f.sub[SUB_CUR], nn) < 0) {
			fail(err, errsz, "stored as %s/new/%s, but could not set its flags: %s",
			     path, name, strerror(errno));
			goto out;
		}
	}
	ret = 0;
out:
	folder_close(&f);
	return ret;
}

static void md_close(struct mbox *mb)
{
	struct md *m = (struct md *)mb;
	if (m == NULL)
		return;
	free(m->dir);
	free(m);
}

static const struct mbox_ops md_ops = {
	.list = md_list,
	.fetch = md_fetch,
	.set_flags = md_set_flags,
	.move = md_move,
	.remove = md_remove,
	.search = md_search,
	.folders = md_folders,
	.append = md_append,
	.close = md_close,
};

struct mbox *mbox_maildir_open(const char *dir, char *err, size_t errsz)
{
	if (err != NULL && errsz > 0)
		err[0] = '\0';
	if (dir == NULL || dir[0] == '\0') {
		fail(err, errsz, "no Maildir directory given");
		return NULL;
	}
	if (strlen(dir) >= 4096) {
		fail(err, errsz, "Maildir path too long");
		return NULL;
	}
	struct stat st;
	if (stat(dir, &st) == 0 && !S_ISDIR(st.st_mode)) {
		fail(err, errsz, "%s is not a directory (a Maildir is)", dir);
		return NULL;
	}
	struct md *m = xcalloc(1, sizeof *m);
	m->base.ops = &md_ops;
	m->base.kind = "maildir";
	m->dir = xstrdup(dir);
	return &m->base;
}
