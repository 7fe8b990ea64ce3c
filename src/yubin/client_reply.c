/* client_reply.c - yubin reply N and yubin forward N: the answer or the
 * forward built from message N of the store (client/mbox.h), composed by
 * mail/compose.c, sent as yubin send sends (client_submit: SMTP, then a
 * Sent copy over IMAP).
 *
 * reply: To is the original's Reply-To, else its From; --all adds its To
 * and Cc (without our own address and without duplicates) as Cc.  Subject
 * "Re: " + the decoded subject (not doubled).  In-Reply-To is its
 * Message-ID; References its References (else its In-Reply-To) plus its
 * Message-ID, at most REFS_KEEP ids (the first and the latest kept, as RFC
 * 5322 3.6.4 suggests).  The text: "On DATE, FROM wrote:" and the
 * original's rendered body quoted with "> " below what the user writes
 * (stdin, or $EDITOR opened on the quote).  The original is marked
 * \Answered once sent.
 *
 * forward: Subject "Fwd: ...", the original attached whole as
 * message/rfc822 (nothing of it lost), or with --inline its rendered text
 * under a "Forwarded message" block and its attachments attached again
 * (decoded, with their names and types).  References and In-Reply-To are
 * not set: a forward starts a new thread. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "client/account.h"
#include "client/mbox.h"
#include "core/buf.h"
#include "core/util.h"
#include "mail/compose.h"
#include "mail/dsn.h"
#include "mail/reader.h"
#include "mail/submit.h"
#include "yubin/client.h"

#define REFS_KEEP 20
#define HDR_MAX 8192

struct addrs {
	char *v[CLIENT_RCPTS_MAX];
	size_t n;
	bool overflow;
};

static void addrs_free(struct addrs *a)
{
	for (size_t i = 0; i < a->n; i++)
		free(a->v[i]);
	a->n = 0;
}

static bool addrs_has(const struct addrs *a, const char *x)
{
	for (size_t i = 0; i < a->n; i++)
		if (strcasecmp(a->v[i], x) == 0)
			return true;
	return false;
}

static void addrs_add(struct addrs *a, const char *x)
{
	if (addrs_has(a, x))
		return;
	if (a->n >= CLIENT_RCPTS_MAX) {
		a->overflow = true;
		return;
	}
	a->v[a->n++] = xstrdup(x);
}

static void add_cb(const char *addr, void *arg)
{
	addrs_add(arg, addr);
}

/* The addresses of the named fields of msg into a (duplicates dropped). */
static void field_addrs(const char *msg, size_t len, const char *name, struct addrs *a)
{
	const char *names[] = {name};
	(void)submit_field_addresses(msg, len, names, 1, add_cb, a);
}

/* A header field decoded for a person: RFC 2047, controls made spaces. */
static char *decoded(const char *msg, size_t len, const char *name)
{
	char raw[HDR_MAX];
	struct buf b;
	buf_init(&b, HDR_MAX);
	if (dsn_header_value(msg, len, name, raw, sizeof raw) == 1)
		reader_header_text(raw, strlen(raw), NULL, true, &b);
	if (!b.data)
		buf_append(&b, "", 0);
	for (size_t i = 0; i < b.len; i++)
		if ((unsigned char)b.data[i] < 0x20 || b.data[i] == 0x7f)
			b.data[i] = ' ';
	return buf_steal(&b, NULL);
}

/* "Re: x" unless x starts with "Re:" already (any case). */
static char *prefixed(const char *prefix, const char *subject)
{
	size_t pl = strlen(prefix);
	const char *s = subject;
	while (*s == ' ')
		s++;
	if (strncasecmp(s, prefix, pl - 1) == 0 && s[pl - 2] == ':')
		return xstrdup(s);
	size_t n = strlen(s) + pl + 1;
	char *out = xmalloc(n);
	snprintf(out, n, "%s%s", prefix, s);
	if (strlen(out) > COMPOSE_SUBJECT_MAX)
		out[COMPOSE_SUBJECT_MAX] = '\0';   /* may cut a character: compose refuses */
	return out;
}

/* Each "<...>" of s in order into ids (at most max). */
static size_t split_ids(const char *s, char ids[][COMPOSE_ID_MAX + 1], size_t max)
{
	size_t n = 0;
	for (const char *p = s; (p = strchr(p, '<')) != NULL && n < max;) {
		const char *e = strchr(p, '>');
		if (!e)
			break;
		size_t l = (size_t)(e - p) + 1;
		bool ok = l <= COMPOSE_ID_MAX && l > 2;
		for (size_t i = 1; ok && i + 1 < l; i++)
			ok = p[i] > 0x20 && p[i] < 0x7f && p[i] != '<';
		if (ok) {
			memcpy(ids[n], p, l);
			ids[n++][l] = '\0';
		}
		p = e + 1;
	}
	return n;
}

static char *references(const char *msg, size_t len, char *msgid, size_t msgidsz)
{
	char raw[HDR_MAX];
	static char ids[REFS_KEEP * 50][COMPOSE_ID_MAX + 1];
	msgid[0] = '\0';
	if (dsn_header_value(msg, len, "Message-ID", raw, sizeof raw) == 1 &&
	    split_ids(raw, ids, 1) == 1)
		snprintf(msgid, msgidsz, "%s", ids[0]);
	size_t n = 0;
	if (dsn_header_value(msg, len, "References", raw, sizeof raw) == 1 ||
	    dsn_header_value(msg, len, "In-Reply-To", raw, sizeof raw) == 1)
		n = split_ids(raw, ids, ARRAY_LEN(ids) - 1);
	if (msgid[0])
		snprintf(ids[n++], sizeof ids[0], "%s", msgid);
	struct buf b;
	buf_init(&b, (size_t)REFS_KEEP * (COMPOSE_ID_MAX + 1) + 1);
	for (size_t i = 0; i < n; i++) {
		if (n > REFS_KEEP && i > 0 && i < n - (REFS_KEEP - 1))
			continue;   /* keep the first and the latest */
		if (b.len)
			buf_append(&b, " ", 1);
		buf_append(&b, ids[i], strlen(ids[i]));
	}
	return b.len ? buf_steal(&b, NULL) : (buf_free(&b), NULL);
}

/* The rendered body of msg (no header block, no attachment list). */
static void body_text(const char *msg, size_t len, struct buf *out,
		      struct reader_part_info *parts, size_t nmax, size_t *nparts_r)
{
	struct buf r;
	buf_init(&r, READER_OUT_MAX);
	reader_render(msg, len, NULL, &r, parts, nmax, nparts_r);
	const char *s = r.data ? r.data : "";
	const char *body = strstr(s, "\n\n");
	body = body ? body + 2 : s;
	const char *end = s + r.len;
	const char *att = strstr(body, "\nAttachments:\n");
	if (att)
		end = att + 1;
	buf_append(out, body, (size_t)(end - body));
	buf_free(&r);
}

static void quote_into(struct buf *q, const char *text, size_t n)
{
	size_t i = 0;
	while (i < n) {
		const char *nl = memchr(text + i, '\n', n - i);
		size_t l = nl ? (size_t)(nl - (text + i)) : n - i;
		buf_append(q, l > 0 && text[i] != '>' ? "> " : ">", l > 0 && text[i] != '>' ? 2 : 1);
		buf_append(q, text + i, l);
		buf_append(q, "\n", 1);
		i += l + (nl ? 1 : 0);
	}
}

static const char *addr_host(const char *addr)
{
	const char *at = strrchr(addr, '@');
	return at ? at + 1 : "localhost";
}

/* The user's part: stdin when it is not a terminal (may be empty), else
 * $EDITOR on initial.  NULL when the user gave up (message printed). */
static char *user_text(const char *initial, size_t ilen, bool append_initial, size_t *len_r)
{
	if (!isatty(STDIN_FILENO)) {
		size_t n;
		char *t = client_read_stdin(&n);
		if (!t)
			return NULL;
		if (!append_initial) {
			*len_r = n;
			return t;
		}
		struct buf b;
		buf_init(&b, SIZE_MAX);
		buf_append(&b, t, n);
		if (n && t[n - 1] != '\n')
			buf_append(&b, "\n", 1);
		if (ilen)
			buf_append(&b, "\n", 1);
		buf_append(&b, initial, ilen);
		free(t);
		return buf_steal(&b, len_r);
	}
	return client_edit(initial, ilen, len_r);
}

int client_reply_run(struct mbox *mb, const char *folder, uint32_t n,
		     const struct account *acct, const struct client_reply_opts *o)
{
	char err[1024] = "";
	bool temp = false;
	char *orig = NULL;
	size_t olen = 0;
	if (mb->ops->fetch(mb, folder, n, true, &orig, &olen, &temp, err, sizeof err) < 0) {
		fprintf(stderr, "yubin %s: %s\n", o->forward ? "forward" : "reply", err);
		return temp ? 75 : 1;
	}
	const char *cmd = o->forward ? "forward" : "reply";
	int ret = 1;
	struct addrs to = {0}, cc = {0}, self = {0};
	struct compose_addr cto[CLIENT_RCPTS_MAX], ccc[CLIENT_RCPTS_MAX];
	const char *rcpts[2 * CLIENT_RCPTS_MAX];
	size_t nrcpts = 0;
	char *subject_raw = decoded(orig, olen, "Subject");
	char *subject = prefixed(o->forward ? "Fwd: " : "Re: ", subject_raw);
	char *refs = NULL, *text = NULL;
	char msgid_orig[COMPOSE_ID_MAX + 1];
	struct buf initial, msg;
	buf_init(&initial, READER_OUT_MAX + 4096);
	buf_init(&msg, COMPOSE_OUT_MAX);
	struct reader_part_info *parts = xcalloc(READER_PARTS_MAX, sizeof *parts);
	size_t nparts = 0;
	struct compose_attachment att[COMPOSE_ATT_MAX];
	struct buf att_data[COMPOSE_ATT_MAX];
	size_t natt = 0;

	addrs_add(&self, acct->address);
	if (!o->forward) {
		field_addrs(orig, olen, "Reply-To", &to);
		if (to.n == 0)
			field_addrs(orig, olen, "From", &to);
		if (to.n == 0) {
			fprintf(stderr, "yubin reply: message %u has no From or Reply-To address to "
				"answer\n", n);
			goto out;
		}
		if (o->all) {
			struct addrs more = {0};
			field_addrs(orig, olen, "To", &more);
			field_addrs(orig, olen, "Cc", &more);
			for (size_t i = 0; i < more.n; i++)
				if (!addrs_has(&self, more.v[i]) && !addrs_has(&to, more.v[i]))
					addrs_add(&cc, more.v[i]);
			addrs_free(&more);
		}
		refs = references(orig, olen, msgid_orig, sizeof msgid_orig);
		char *date = decoded(orig, olen, "Date");
		char *from = decoded(orig, olen, "From");
		char line[HDR_MAX * 2 + 64];
		snprintf(line, sizeof line, "On %s, %s wrote:\n", date[0] ? date : "an unknown date",
			 from[0] ? from : "someone");
		free(date);
		free(from);
		if (!o->no_quote) {
			struct buf body;
			buf_init(&body, READER_OUT_MAX);
			body_text(orig, olen, &body, NULL, 0, NULL);
			buf_append(&initial, line, strlen(line));
			quote_into(&initial, body.data ? body.data : "", body.len);
			buf_free(&body);
		}
	} else {
		for (size_t i = 0; i < o->nto; i++)
			addrs_add(&to, o->to[i]);
		for (size_t i = 0; i < o->ncc; i++)
			addrs_add(&cc, o->cc[i]);
		if (to.n == 0) {
			fprintf(stderr, "yubin forward: to whom? give --to ADDRESS\n");
			ret = 2;
			goto out;
		}
		if (o->inline_fwd) {
			static const char *const fields[] = {"From", "Date", "Subject", "To", "Cc"};
			static const char sep[] = "\n---------- Forwarded message ----------\n";
			buf_append(&initial, sep, sizeof sep - 1);
			for (size_t i = 0; i < ARRAY_LEN(fields); i++) {
				char *v = decoded(orig, olen, fields[i]);
				if (v[0]) {
					buf_append(&initial, fields[i], strlen(fields[i]));
					buf_append(&initial, ": ", 2);
					buf_append(&initial, v, strlen(v));
					buf_append(&initial, "\n", 1);
				}
				free(v);
			}
			buf_append(&initial, "\n", 1);
			body_text(orig, olen, &initial, parts, READER_PARTS_MAX, &nparts);
			for (size_t i = 0; i < nparts && natt < COMPOSE_ATT_MAX; i++) {
				if (!parts[i].attachment)
					continue;
				buf_init(&att_data[natt], MBOX_MSG_MAX);
				if (reader_part_bytes(orig, olen, parts[i].section, &att_data[natt]) != 1) {
					buf_free(&att_data[natt]);
					continue;
				}
				bool rfc822 = strcmp(parts[i].type, "message/rfc822") == 0;
				att[natt] = (struct compose_attachment){
					.filename = parts[i].filename[0] ? parts[i].filename : NULL,
					.content_type = rfc822 ? "message/rfc822" : NULL,
					.data = (const unsigned char *)(att_data[natt].data
									? att_data[natt].data : ""),
					.len = att_data[natt].len,
				};
				natt++;
			}
		} else {
			/* the whole original, as it is */
			buf_init(&att_data[0], 1);
			att[natt++] = (struct compose_attachment){
				.content_type = "message/rfc822",
				.data = (const unsigned char *)orig,
				.len = olen,
			};
		}
	}
	if (to.overflow || cc.overflow) {
		fprintf(stderr, "yubin %s: more than %d recipients\n", cmd, CLIENT_RCPTS_MAX);
		goto out;
	}
	size_t tlen = 0;
	text = user_text(initial.data ? initial.data : "", initial.len, true, &tlen);
	if (!text)
		goto out;
	if (!o->no_signature && client_add_signature(acct, &text, &tlen) < 0)
		goto out;
	for (size_t i = 0; i < to.n; i++) {
		cto[i] = (struct compose_addr){NULL, to.v[i]};
		rcpts[nrcpts++] = to.v[i];
	}
	for (size_t i = 0; i < cc.n; i++) {
		ccc[i] = (struct compose_addr){NULL, cc.v[i]};
		rcpts[nrcpts++] = cc.v[i];
	}
	char msgid[COMPOSE_MSGID_SIZE];
	if (compose_message_id(addr_host(acct->address), msgid, sizeof msgid) < 0)
		msgid[0] = '\0';
	struct compose_msg m = {
		.from = {acct->display_name[0] ? acct->display_name : NULL, acct->address},
		.to = cto,
		.nto = to.n,
		.cc = ccc,
		.ncc = cc.n,
		.subject = subject,
		.text = text,
		.text_len = tlen,
		.att = att,
		.natt = natt,
		.in_reply_to = !o->forward && msgid_orig[0] ? msgid_orig : NULL,
		.references = !o->forward ? refs : NULL,
		.message_id = msgid[0] ? msgid : NULL,
		.date = (int64_t)time(NULL),
	};
	const char *why = NULL;
	if (compose_message(&m, &msg, &why) < 0) {
		fprintf(stderr, "yubin %s: cannot make the message: %s\n", cmd, why ? why : "?");
		goto out;
	}
	ret = client_submit(cmd, acct, rcpts, nrcpts, msg.data, msg.len, o->dry_run, !o->no_copy);
	if (ret == 0 && !o->dry_run && !o->forward) {
		/* the answered mark: a failure here is only a warning */
		if (mb->ops->set_flags(mb, folder, &n, 1, MBOX_ANSWERED, 0, NULL, false, &temp, err,
				       sizeof err) < 0)
			fprintf(stderr, "yubin reply: sent, but message %u was not marked answered: "
				"%s\n", n, err);
	}
out:
	addrs_free(&to);
	addrs_free(&cc);
	addrs_free(&self);
	free(subject_raw);
	free(subject);
	free(refs);
	free(text);
	free(orig);
	free(parts);
	for (size_t i = 0; i < natt; i++)
		buf_free(&att_data[i]);
	buf_free(&initial);
	buf_free(&msg);
	return ret;
}
