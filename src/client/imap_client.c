/* imap_client.c - a blocking IMAP client session; see imap_client.h. */
#include "client/imap_client.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "auth/scram.h"
#include "client/net.h"
#include "core/util.h"
#include "mail/mutf7.h"

#define CAPS_MAX 8192

struct imap_client {
	const struct imap_client_opts *o;
	struct net *n;
	struct net_tls *tls;
	unsigned tmo;               /* ms */
	unsigned tag;
	char caps[CAPS_MAX];        /* " CAP1 CAP2 ... " upper-case; "" unknown */
	char delim;                 /* the server's hierarchy delimiter; 0 unknown/flat */
	bool delim_known;
	struct buf line, resp;
	char last_code[1024];
	char selected[1100];        /* wire name of the selected mailbox; "" none */
	struct imap_mailbox_info info;
	bool broken;                /* the connection is unusable */
	bool redact;                /* trace: a secret is being sent */
};

bool imap_client_has_cap(const struct imap_client *c, const char *cap)
{
	char want[128];
	size_t l = strlen(cap);
	if (l + 3 > sizeof want)
		return false;
	want[0] = ' ';
	for (size_t i = 0; i < l; i++)
		want[i + 1] = (cap[i] >= 'a' && cap[i] <= 'z') ? (char)(cap[i] - 32) : cap[i];
	want[l + 1] = ' ';
	want[l + 2] = '\0';
	return strstr(c->caps, want) != NULL;
}

const char *imap_client_name(const struct imap_client *c)
{
	return net_name(c->n);
}

const char *imap_client_last_code(const struct imap_client *c)
{
	return c->last_code;
}

/* Capabilities from "IMAP4rev1 AUTH=PLAIN ..." (a CAPABILITY response's
 * arguments or a [CAPABILITY ...] code). */
static void set_caps(struct imap_client *c, const char *list, size_t len)
{
	size_t k = 0;
	c->caps[k++] = ' ';
	for (size_t i = 0; i < len && k + 2 < sizeof c->caps; i++) {
		char ch = list[i];
		if (ch == ' ' && c->caps[k - 1] == ' ')
			continue;
		c->caps[k++] = (ch >= 'a' && ch <= 'z') ? (char)(ch - 32) : ch;
	}
	if (c->caps[k - 1] != ' ')
		c->caps[k++] = ' ';
	c->caps[k] = '\0';
}

static void caps_from_code(struct imap_client *c, const char *code)
{
	if (strncasecmp(code, "CAPABILITY ", 11) == 0)
		set_caps(c, code + 11, strlen(code + 11));
}

static void caps_from_resp(struct imap_client *c, const struct imap_resp *r)
{
	char list[CAPS_MAX];
	size_t k = 0;
	for (const struct imap_node *n = imap_resp_first(r); n; n = imap_resp_next(r, n)) {
		if (n->type != IMAP_NODE_ATOM || k + n->len + 2 > sizeof list)
			continue;
		memcpy(list + k, n->s, n->len);
		k += n->len;
		list[k++] = ' ';
	}
	set_caps(c, list, k);
}

static bool status_line(const char *l, size_t len)
{
	/* "TAG OK|NO|BAD|BYE|PREAUTH ..." or "* OK ...": no literal in it */
	const char *sp = memchr(l, ' ', len);
	if (sp == NULL)
		return false;
	const char *w = sp + 1;
	size_t rest = len - (size_t)(w - l);
	static const char *const words[] = {"OK", "NO", "BAD", "BYE", "PREAUTH"};
	for (size_t i = 0; i < ARRAY_LEN(words); i++) {
		size_t wl = strlen(words[i]);
		if (rest >= wl && strncasecmp(w, words[i], wl) == 0 &&
		    (rest == wl || w[wl] == ' '))
			return true;
	}
	return false;
}

/* Read one whole response into c->resp and parse it into r. */
static int read_resp(struct imap_client *c, struct imap_resp *r, const char *ctx, char *err,
		     size_t errsz)
{
	buf_reset(&c->resp);
	for (;;) {
		if (net_read_line_buf(c->n, &c->line, IMAP_CLIENT_LINE_MAX, c->tmo, err, errsz) < 0) {
			c->broken = true;
			return net_err_context(err, errsz, ctx);
		}
		if (buf_append(&c->resp, c->line.data ? c->line.data : "", c->line.len) < 0 ||
		    buf_append(&c->resp, "\r\n", 2) < 0) {
			c->broken = true;
			errf(err, errsz, "%s sent a response larger than %u bytes (%s)",
			       net_name(c->n), IMAP_CLIENT_RESP_MAX, ctx);
			return -1;
		}
		uint64_t n = 0;
		int lit = 0;
		if (c->line.len > 0 && c->line.data[0] != '+' &&
		    !status_line(c->line.data, c->line.len))
			lit = imap_resp_literal(c->line.data, c->line.len, IMAP_CLIENT_RESP_MAX, &n);
		if (c->o->trace) {
			net_trace(c->o->trace, "S: ", c->line.data ? c->line.data : "", c->line.len);
			if (lit == 1)
				fprintf(c->o->trace, "S: <%llu bytes>\n", (unsigned long long)n);
		}
		if (lit < 0 || (lit == 1 && c->resp.len + n > IMAP_CLIENT_RESP_MAX)) {
			c->broken = true;
			errf(err, errsz, "%s announced a literal larger than %u bytes (%s)",
			       net_name(c->n), IMAP_CLIENT_RESP_MAX, ctx);
			return -1;
		}
		if (lit == 0)
			break;
		if (net_read_bytes(c->n, &c->resp, (size_t)n, c->tmo, err, errsz) < 0) {
			c->broken = true;
			return net_err_context(err, errsz, ctx);
		}
	}
	const char *e;
	if (imap_resp_parse(c->resp.data, c->resp.len, r, &e) < 0) {
		c->broken = true;
		errf(err, errsz, "%s sent a response we cannot parse (%s; %s): %.80s",
		       net_name(c->n), e, ctx, c->line.data ? c->line.data : "");
		return -1;
	}
	return 0;
}

static int send_raw(struct imap_client *c, const void *p, size_t len, char *err, size_t errsz)
{
	if (net_write(c->n, p, len, c->tmo, err, errsz) < 0) {
		c->broken = true;
		return -1;
	}
	return 0;
}

/* ---- commands ---- */

void imap_cmd_init(struct imap_cmd *m, const char *verb)
{
	memset(m, 0, sizeof *m);
	buf_init(&m->text, IMAP_CLIENT_RESP_MAX);
	snprintf(m->verb, sizeof m->verb, "%s", verb);
}

static void seg_text(struct imap_cmd *m, size_t from)
{
	/* extend the last text segment or start one */
	if (m->nsegs > 0 && !m->segs[m->nsegs - 1].literal) {
		m->segs[m->nsegs - 1].len += m->text.len - from;
		return;
	}
	if (m->nsegs >= ARRAY_LEN(m->segs)) {
		m->overflow = true;
		return;
	}
	m->segs[m->nsegs++] = (struct imap_cmd_seg){.off = from, .len = m->text.len - from};
}

void imap_cmd_add(struct imap_cmd *m, const char *fmt, ...)
{
	char tmp[2048];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
	va_end(ap);
	size_t from = m->text.len;
	if (n < 0 || (size_t)n >= sizeof tmp || buf_append(&m->text, tmp, (size_t)n) < 0) {
		m->overflow = true;
		return;
	}
	seg_text(m, from);
}

static void add_literal(struct imap_cmd *m, const char *ext, size_t off, size_t len)
{
	if (m->nsegs >= ARRAY_LEN(m->segs)) {
		m->overflow = true;
		return;
	}
	m->segs[m->nsegs++] = (struct imap_cmd_seg){.literal = true, .off = off, .len = len,
						    .ext = ext};
}

void imap_cmd_string(struct imap_cmd *m, const char *s, size_t len)
{
	bool plain = len <= 1024;
	for (size_t i = 0; i < len && plain; i++)
		plain = (unsigned char)s[i] >= 0x20 && (unsigned char)s[i] < 0x7f;
	if (!plain) {
		size_t off = m->text.len;
		if (buf_append(&m->text, s, len) < 0) {
			m->overflow = true;
			return;
		}
		/* the literal's bytes sit in text but are not text */
		add_literal(m, NULL, off, len);
		return;
	}
	size_t from = m->text.len;
	bool bad = buf_append(&m->text, "\"", 1) < 0;
	for (size_t i = 0; i < len && !bad; i++) {
		if (s[i] == '"' || s[i] == '\\')
			bad |= buf_append(&m->text, "\\", 1) < 0;
		bad |= buf_append(&m->text, s + i, 1) < 0;
	}
	bad |= buf_append(&m->text, "\"", 1) < 0;
	if (bad) {
		m->overflow = true;
		return;
	}
	seg_text(m, from);
}

void imap_cmd_literal(struct imap_cmd *m, const char *p, size_t len)
{
	add_literal(m, p, 0, len);
}

int imap_cmd_mailbox(struct imap_client *c, struct imap_cmd *m, const char *name, char *err,
		     size_t errsz)
{
	if (name == NULL || strcasecmp(name, "INBOX") == 0) {
		imap_cmd_add(m, "INBOX");
		return 0;
	}
	size_t len = strlen(name);
	if (!mutf7_utf8_valid(name, len)) {
		errf(err, errsz, "folder name \"%s\" is not valid UTF-8", name);
		return -1;
	}
	char local[MUTF7_NAME_MAX + 1];
	if (len > MUTF7_NAME_MAX) {
		errf(err, errsz, "folder name longer than %d bytes", MUTF7_NAME_MAX);
		return -1;
	}
	memcpy(local, name, len + 1);
	char d = c->delim ? c->delim : '/';
	for (char *p = local; *p; p++) {
		if (*p == d && d != '/') {
			errf(err, errsz, "folder name \"%s\" holds '%c', the server's level "
			       "separator: write levels with '/'", name, d);
			return -1;
		}
		if (*p == '/')
			*p = d;
	}
	struct buf w;
	buf_init(&w, 4 * MUTF7_NAME_MAX);
	const char *e;
	if (mutf7_encode(local, len, &w, &e) < 0) {
		errf(err, errsz, "folder name \"%s\": %s", name, e);
		buf_free(&w);
		return -1;
	}
	imap_cmd_string(m, w.data ? w.data : "", w.len);
	buf_free(&w);
	return 0;
}

int imap_client_name_utf8(const struct imap_client *c, const char *wire, size_t len,
			  struct buf *out)
{
	const char *e;
	buf_reset(out);
	int r = mutf7_decode(wire, len, out, &e);
	if (r < 0) {
		buf_reset(out);
		for (size_t i = 0; i < len; i++) {
			char ch = (unsigned char)wire[i] < 0x20 || wire[i] == 0x7f ? '?' : wire[i];
			buf_append(out, &ch, 1);
		}
	}
	if (c->delim && c->delim != '/')
		for (size_t i = 0; i < out->len; i++)
			if (out->data[i] == c->delim)
				out->data[i] = '/';
	if (!out->data)
		buf_append(out, "", 0);
	return r < 0 ? -1 : 0;
}

static bool temp_code(const char *code)
{
	static const char *const temp[] = {
		"UNAVAILABLE", "INUSE", "LIMIT", "SERVERBUG", "OVERQUOTA", "EXPUNGEISSUED",
		"CONTACTADMIN",
	};
	for (size_t i = 0; i < ARRAY_LEN(temp); i++) {
		size_t l = strlen(temp[i]);
		if (strncasecmp(code, temp[i], l) == 0 && (code[l] == '\0' || code[l] == ' '))
			return true;
	}
	return false;
}

/* Handle what every command may see: EXISTS, EXPUNGE, CAPABILITY, BYE. */
static void track(struct imap_client *c, const struct imap_resp *r)
{
	if (r->status == IMAP_ST_OK || r->status == IMAP_ST_NO) {
		caps_from_code(c, r->code);
		return;
	}
	if (strcmp(r->name, "CAPABILITY") == 0)
		caps_from_resp(c, r);
	else if (r->has_number && strcmp(r->name, "EXISTS") == 0)
		c->info.exists = r->number;
	else if (r->has_number && strcmp(r->name, "EXPUNGE") == 0 && c->info.exists > 0)
		c->info.exists--;
}

static int wait_tagged(struct imap_client *c, const char *tag, const struct imap_cmd *m,
		       imap_untagged_fn fn, void *ctx, bool want_continue, bool *cont_r,
		       int *cbfail, bool *temp_r, char *err, size_t errsz)
{
	char what[64];
	snprintf(what, sizeof what, "waiting for the reply to %s", m->verb);
	for (;;) {
		struct imap_resp r;
		if (read_resp(c, &r, what, err, errsz) < 0) {
			*temp_r = true;
			return -1;
		}
		if (r.kind == IMAP_RESP_CONTINUE) {
			imap_resp_free(&r);
			if (want_continue) {
				*cont_r = true;
				return 0;
			}
			continue;  /* not for us: ignore */
		}
		if (r.kind == IMAP_RESP_UNTAGGED) {
			track(c, &r);
			if (r.status == IMAP_ST_BYE) {
				errf(err, errsz, "%s closed the session: BYE %s%s%s %s",
				       net_name(c->n), r.code[0] ? "[" : "", r.code,
				       r.code[0] ? "]" : "", r.text);
				imap_resp_free(&r);
				c->broken = true;
				*temp_r = true;
				return -1;
			}
			if (fn && *cbfail == 0 && fn(ctx, &r) != 0)
				*cbfail = 1;
			imap_resp_free(&r);
			continue;
		}
		if (strcmp(r.tag, tag) != 0) {
			errf(err, errsz, "%s answered tag %s, not %s", net_name(c->n), r.tag, tag);
			imap_resp_free(&r);
			c->broken = true;
			*temp_r = true;
			return -1;
		}
		snprintf(c->last_code, sizeof c->last_code, "%s", r.code);
		caps_from_code(c, r.code);
		int ret = 0;
		if (r.status != IMAP_ST_OK) {
			static const char *const st[] = {"", "OK", "NO", "BAD", "PREAUTH", "BYE"};
			errf(err, errsz, "%s said: %s %s%s%s%s%s (to %s)", net_name(c->n),
			       st[r.status], r.code[0] ? "[" : "", r.code, r.code[0] ? "] " : "",
			       r.text, "", m->verb);
			*temp_r = r.status == IMAP_ST_NO && temp_code(r.code);
			ret = -1;
		}
		if (cont_r)
			*cont_r = false;
		imap_resp_free(&r);
		return ret;
	}
}

int imap_cmd_run(struct imap_client *c, struct imap_cmd *m, imap_untagged_fn fn, void *ctx,
		 bool *temp_r, char *err, size_t errsz)
{
	bool tmp = false;
	if (temp_r == NULL)
		temp_r = &tmp;
	*temp_r = false;
	int ret = -1, cbfail = 0;
	char tag[16];

	if (c->broken) {
		errf(err, errsz, "the connection to %s is broken", net_name(c->n));
		*temp_r = true;
		goto out;
	}
	if (m->overflow) {
		errf(err, errsz, "%s command too large", m->verb);
		goto out;
	}
	snprintf(tag, sizeof tag, "y%u", ++c->tag);
	bool plus = imap_client_has_cap(c, "LITERAL+");
	bool minus = imap_client_has_cap(c, "LITERAL-");
	struct buf out;
	buf_init(&out, SIZE_MAX);
	buf_append(&out, tag, strlen(tag));
	buf_append(&out, " ", 1);
	struct buf tr;  /* the trace line: text, literals by their size */
	buf_init(&tr, 4096);
	if (m->shown)
		buf_append(&tr, m->shown, strlen(m->shown));
	for (size_t i = 0; i < m->nsegs; i++) {
		const struct imap_cmd_seg *s = &m->segs[i];
		if (!s->literal) {
			buf_append(&out, m->text.data + s->off, s->len);
			if (!m->shown)
				buf_append(&tr, m->text.data + s->off, s->len);
			continue;
		}
		const char *p = s->ext ? s->ext : m->text.data + s->off;
		bool sync = !(plus || (minus && s->len <= 4096));
		char hdr[40];
		snprintf(hdr, sizeof hdr, "{%zu%s}\r\n", s->len, sync ? "" : "+");
		buf_append(&out, hdr, strlen(hdr));
		if (!m->shown) {
			char t[64];
			snprintf(t, sizeof t, "{%zu%s} <%zu bytes>", s->len, sync ? "" : "+", s->len);
			buf_append(&tr, t, strlen(t));
		}
		if (sync) {
			bool cont = false;
			if (send_raw(c, out.data, out.len, err, errsz) < 0) {
				*temp_r = true;
				buf_free(&out);
				buf_free(&tr);
				goto out;
			}
			buf_reset(&out);
			if (wait_tagged(c, tag, m, fn, ctx, true, &cont, &cbfail, temp_r, err,
					errsz) < 0 || !cont) {
				if (!cont && err[0] == '\0')
					errf(err, errsz, "%s refused the literal", net_name(c->n));
				buf_free(&out);
				buf_free(&tr);
				goto out;
			}
		}
		if (out.len > 0) {
			if (send_raw(c, out.data, out.len, err, errsz) < 0) {
				*temp_r = true;
				buf_free(&out);
				buf_free(&tr);
				goto out;
			}
			buf_reset(&out);
		}
		if (send_raw(c, p, s->len, err, errsz) < 0) {
			*temp_r = true;
			buf_free(&out);
			buf_free(&tr);
			goto out;
		}
	}
	buf_append(&out, "\r\n", 2);
	if (c->o->trace) {
		fprintf(c->o->trace, "C: %s ", tag);
		net_trace(c->o->trace, "", tr.data ? tr.data : "", tr.len);
	}
	buf_free(&tr);
	int sr = send_raw(c, out.data, out.len, err, errsz);
	buf_free(&out);
	if (sr < 0) {
		*temp_r = true;
		goto out;
	}
	ret = wait_tagged(c, tag, m, fn, ctx, false, NULL, &cbfail, temp_r, err, errsz);
	if (ret == 0 && cbfail)
		ret = -1;
out:
	if (c->o->trace)
		fflush(c->o->trace);
	if (m->shown && m->text.data)   /* a secret (LOGIN's password) */
		explicit_bzero(m->text.data, m->text.len);
	buf_free(&m->text);
	return ret;
}

/* ---- opening ---- */

static int simple(struct imap_client *c, const char *verb, bool *temp_r, char *err,
		  size_t errsz)
{
	struct imap_cmd m;
	imap_cmd_init(&m, verb);
	imap_cmd_add(&m, "%s", verb);
	return imap_cmd_run(c, &m, NULL, NULL, temp_r, err, errsz);
}

static int greeting(struct imap_client *c, bool *preauth, bool *temp_r, char *err,
		    size_t errsz)
{
	struct imap_resp r;
	if (read_resp(c, &r, "waiting for the greeting", err, errsz) < 0) {
		*temp_r = true;
		return -1;
	}
	int ret = 0;
	if (r.kind != IMAP_RESP_UNTAGGED ||
	    (r.status != IMAP_ST_OK && r.status != IMAP_ST_PREAUTH)) {
		errf(err, errsz, "%s refused the session: %s %s", net_name(c->n),
		       r.status == IMAP_ST_BYE ? "BYE" : "", r.text ? r.text : "");
		*temp_r = true;
		ret = -1;
	} else {
		caps_from_code(c, r.code);
		*preauth = r.status == IMAP_ST_PREAUTH;
	}
	imap_resp_free(&r);
	return ret;
}

static int login_plain(struct imap_client *c, bool *temp_r, char *err, size_t errsz)
{
	const struct imap_client_opts *o = c->o;
	size_t ul = strlen(o->user), pl = strlen(o->password);
	size_t rawlen = ul * 2 + pl + 2;
	unsigned char *raw = xmalloc(rawlen);
	/* authzid = authcid is what most servers want; RFC 4616 allows empty */
	raw[0] = '\0';
	memcpy(raw + 1, o->user, ul);
	raw[1 + ul] = '\0';
	memcpy(raw + 2 + ul, o->password, pl);
	rawlen = ul + pl + 2;
	char *b64 = xmalloc(B64_LEN(rawlen) + 3);
	size_t bl = base64_encode(raw, rawlen, b64);
	b64[bl] = '\0';
	explicit_bzero(raw, rawlen);
	free(raw);
	int ret;
	struct imap_cmd m;
	imap_cmd_init(&m, "AUTHENTICATE");
	m.shown = "AUTHENTICATE PLAIN <redacted>";
	if (imap_client_has_cap(c, "SASL-IR")) {
		imap_cmd_add(&m, "AUTHENTICATE PLAIN %s", b64);
		ret = imap_cmd_run(c, &m, NULL, NULL, temp_r, err, errsz);
	} else {
		imap_cmd_add(&m, "AUTHENTICATE PLAIN");
		/* the initial response after the "+": sent as a literal-like
		 * continuation: done by hand below */
		char tag[16];
		snprintf(tag, sizeof tag, "y%u", ++c->tag);
		char line[64];
		int n = snprintf(line, sizeof line, "%s AUTHENTICATE PLAIN\r\n", tag);
		if (c->o->trace)
			fprintf(c->o->trace, "C: %s AUTHENTICATE PLAIN\n", tag);
		buf_free(&m.text);
		ret = send_raw(c, line, (size_t)n, err, errsz);
		bool cont = false;
		int cbfail = 0;
		if (ret == 0)
			ret = wait_tagged(c, tag, &m, NULL, NULL, true, &cont, &cbfail, temp_r, err,
					  errsz);
		if (ret == 0 && cont) {
			if (c->o->trace)
				fprintf(c->o->trace, "C: <redacted>\n");
			memcpy(b64 + bl, "\r\n", 3);
			ret = send_raw(c, b64, bl + 2, err, errsz);
			if (ret == 0)
				ret = wait_tagged(c, tag, &m, NULL, NULL, false, NULL, &cbfail, temp_r,
						  err, errsz);
		} else if (ret == 0) {
			ret = -1;
		}
		if (ret < 0)
			*temp_r = *temp_r && c->broken;
	}
	explicit_bzero(b64, strlen(b64));
	free(b64);
	return ret;
}

/* AUTHENTICATE SCRAM-SHA-256 (RFC 7677): the exchange by hand, since each
 * step needs the server's challenge. */
static int send_line_secret(struct imap_client *c, const char *data, size_t len, char *err,
			    size_t errsz)
{
	char *b64 = xmalloc(B64_LEN(len) + 3);
	size_t bl = base64_encode((const unsigned char *)data, len, b64);
	memcpy(b64 + bl, "\r\n", 2);
	if (c->o->trace)
		fprintf(c->o->trace, "C: <redacted>\n");
	int r = send_raw(c, b64, bl + 2, err, errsz);
	explicit_bzero(b64, bl + 2);
	free(b64);
	return r;
}

static int read_challenge(struct imap_client *c, const char *tag, unsigned char **ch_r,
			  size_t *len_r, int *done_r, bool *temp_r, char *err, size_t errsz)
{
	struct imap_resp r;
	for (;;) {
		if (read_resp(c, &r, "waiting for the SCRAM challenge", err, errsz) < 0) {
			*temp_r = true;
			return -1;
		}
		if (r.kind == IMAP_RESP_UNTAGGED) {
			track(c, &r);
			imap_resp_free(&r);
			continue;
		}
		break;
	}
	if (r.kind == IMAP_RESP_TAGGED) {
		snprintf(c->last_code, sizeof c->last_code, "%s", r.code);
		caps_from_code(c, r.code);
		if (strcmp(r.tag, tag) != 0 || r.status != IMAP_ST_OK) {
			errf(err, errsz, "%s said: %s %s%s%s%s (to AUTHENTICATE SCRAM-SHA-256)",
			       net_name(c->n), r.status == IMAP_ST_BAD ? "BAD" : "NO",
			       r.code[0] ? "[" : "", r.code, r.code[0] ? "] " : "", r.text);
			imap_resp_free(&r);
			return -1;
		}
		*done_r = 1;
		imap_resp_free(&r);
		return 0;
	}
	size_t tl = strlen(r.text);
	unsigned char *ch = xmalloc(tl + 4);
	long n = base64_decode(r.text, tl, ch);
	imap_resp_free(&r);
	if (n < 0) {
		free(ch);
		errf(err, errsz, "SCRAM-SHA-256: the server's challenge is not base64");
		return -1;
	}
	ch[n] = '\0';
	*ch_r = ch;
	*len_r = (size_t)n;
	*done_r = 0;
	return 0;
}

static int login_scram(struct imap_client *c, bool *temp_r, char *err, size_t errsz)
{
	struct scram_client *s = scram_client_new(c->o->user, c->o->password);
	char *first = NULL, *final = NULL;
	unsigned char *ch = NULL;
	size_t chlen = 0;
	int done = 0, ret = -1;
	const char *e;
	char tag[16], line[64];

	snprintf(tag, sizeof tag, "y%u", ++c->tag);
	int n = snprintf(line, sizeof line, "%s AUTHENTICATE SCRAM-SHA-256\r\n", tag);
	if (c->o->trace)
		fprintf(c->o->trace, "C: %s AUTHENTICATE SCRAM-SHA-256\n", tag);
	if ((first = scram_client_first(s)) == NULL) {
		errf(err, errsz, "SCRAM-SHA-256: no randomness for the nonce");
		goto out;
	}
	if (send_raw(c, line, (size_t)n, err, errsz) < 0 ||
	    read_challenge(c, tag, &ch, &chlen, &done, temp_r, err, errsz) < 0)
		goto out;
	if (done) {
		errf(err, errsz, "SCRAM-SHA-256: %s ended the exchange at once", net_name(c->n));
		goto out;
	}
	free(ch);
	ch = NULL;
	/* the "+" was empty: now the client-first-message */
	if (send_line_secret(c, first, strlen(first), err, errsz) < 0 ||
	    read_challenge(c, tag, &ch, &chlen, &done, temp_r, err, errsz) < 0)
		goto out;
	if (done) {
		errf(err, errsz, "SCRAM-SHA-256: %s accepted us at once", net_name(c->n));
		goto out;
	}
	if (scram_client_final(s, (const char *)ch, chlen, &final, &e) < 0) {
		errf(err, errsz, "SCRAM-SHA-256: bad challenge from the server: %s", e);
		(void)send_raw(c, "*\r\n", 3, err + strlen(err), 0);
		goto out;
	}
	free(ch);
	ch = NULL;
	if (send_line_secret(c, final, strlen(final), err, errsz) < 0 ||
	    read_challenge(c, tag, &ch, &chlen, &done, temp_r, err, errsz) < 0)
		goto out;
	if (done) {
		errf(err, errsz, "SCRAM-SHA-256: %s accepted us without proving that it knows "
		       "the password (no server signature)", net_name(c->n));
		goto out;
	}
	if (scram_client_verify(s, (const char *)ch, chlen) != 1) {
		errf(err, errsz, "SCRAM-SHA-256: the server's signature is wrong: it does not "
		       "know the password (not the real server?)");
		goto out;
	}
	if (send_raw(c, "\r\n", 2, err, errsz) < 0 ||
	    read_challenge(c, tag, &ch, &chlen, &done, temp_r, err, errsz) < 0)
		goto out;
	if (!done) {
		errf(err, errsz, "SCRAM-SHA-256: %s asked for more", net_name(c->n));
		goto out;
	}
	ret = 0;
out:
	if (ret < 0 && !c->broken && !done) {
		/* mid-exchange: the session state is unknown */
		c->broken = true;
	}
	if (first) {
		explicit_bzero(first, strlen(first));
		free(first);
	}
	if (final) {
		explicit_bzero(final, strlen(final));
		free(final);
	}
	free(ch);
	scram_client_free(&s);
	return ret;
}

static int login(struct imap_client *c, bool *temp_r, char *err, size_t errsz)
{
	if (imap_client_has_cap(c, "AUTH=SCRAM-SHA-256"))
		return login_scram(c, temp_r, err, errsz);
	if (imap_client_has_cap(c, "AUTH=PLAIN"))
		return login_plain(c, temp_r, err, errsz);
	if (imap_client_has_cap(c, "LOGINDISABLED")) {
		errf(err, errsz, "%s allows no login here (LOGINDISABLED%s)", net_name(c->n),
		       net_is_tls(c->n) ? "" : ": use TLS");
		return -1;
	}
	struct imap_cmd m;
	imap_cmd_init(&m, "LOGIN");
	m.shown = "LOGIN <redacted>";
	imap_cmd_add(&m, "LOGIN ");
	imap_cmd_string(&m, c->o->user, strlen(c->o->user));
	imap_cmd_add(&m, " ");
	imap_cmd_string(&m, c->o->password, strlen(c->o->password));
	/* shown set: imap_cmd_run wipes the text (the password) */
	return imap_cmd_run(c, &m, NULL, NULL, temp_r, err, errsz);
}

static int learn_delim(struct imap_client *c, const struct imap_resp *r)
{
	if (strcmp(r->name, "LIST") != 0)
		return 0;
	const struct imap_node *d = imap_resp_next(r, imap_resp_first(r));
	if (d && d->type == IMAP_NODE_STRING && d->len == 1)
		c->delim = d->s[0];
	c->delim_known = true;
	return 0;
}

static int learn_delim_cb(void *ctx, const struct imap_resp *r)
{
	return learn_delim(ctx, r);
}

struct imap_client *imap_client_open(const struct imap_client_opts *o, bool *temp_r,
				     char *err, size_t errsz)
{
	bool tmp = false, preauth = false;
	if (temp_r == NULL)
		temp_r = &tmp;
	*temp_r = false;
	struct imap_client *c = xcalloc(1, sizeof *c);
	c->o = o;
	c->tmo = (o->timeout ? o->timeout : IMAP_CLIENT_TIMEOUT) * 1000u;
	buf_init(&c->line, IMAP_CLIENT_LINE_MAX + 2);
	buf_init(&c->resp, IMAP_CLIENT_RESP_MAX);
	struct net_tls_opts to = {.cafile = o->cafile, .pin = o->pin};
	char port[16];
	snprintf(port, sizeof port, "%u", o->port ? o->port : o->tls == IMAP_CLIENT_TLS ? 993 : 143);
	if (o->tls != IMAP_CLIENT_NONE && (c->tls = net_tls_new(&to, err, errsz)) == NULL)
		goto fail;
	if ((c->n = net_connect(o->host, port, c->tmo, err, errsz)) == NULL) {
		*temp_r = true;
		goto fail;
	}
	if (o->tls == IMAP_CLIENT_TLS &&
	    net_start_tls(c->n, c->tls, o->host, c->tmo, err, errsz) < 0)
		goto fail;
	if (greeting(c, &preauth, temp_r, err, errsz) < 0)
		goto fail;
	if (!c->caps[0] && simple(c, "CAPABILITY", temp_r, err, errsz) < 0)
		goto fail;
	if (o->tls == IMAP_CLIENT_STARTTLS) {
		if (preauth) {
			errf(err, errsz, "%s logged us in before TLS (PREAUTH): refusing to go on "
			       "without TLS", net_name(c->n));
			goto fail;
		}
		if (!imap_client_has_cap(c, "STARTTLS")) {
			errf(err, errsz, "%s does not offer STARTTLS: not sending the password in "
			       "clear (use --tls tls on port 993, or --tls none on a trusted "
			       "network)", net_name(c->n));
			goto fail;
		}
		if (simple(c, "STARTTLS", temp_r, err, errsz) < 0)
			goto fail;
		if (net_start_tls(c->n, c->tls, o->host, c->tmo, err, errsz) < 0)
			goto fail;
		c->caps[0] = '\0';
		if (simple(c, "CAPABILITY", temp_r, err, errsz) < 0)
			goto fail;
	}
	if (!preauth) {
		if (login(c, temp_r, err, errsz) < 0) {
			size_t l = strlen(err);
			if (l + 40 < errsz && !*temp_r)
				snprintf(err + l, errsz - l, " (login as %s)", o->user);
			goto fail;
		}
		/* capabilities may change after login */
		if (strstr(imap_client_last_code(c), "CAPABILITY") == NULL) {
			c->caps[0] = '\0';
			if (simple(c, "CAPABILITY", temp_r, err, errsz) < 0)
				goto fail;
		}
	}
	struct imap_cmd m;
	imap_cmd_init(&m, "LIST");
	imap_cmd_add(&m, "LIST \"\" \"\"");
	if (imap_cmd_run(c, &m, learn_delim_cb, c, temp_r, err, errsz) < 0)
		goto fail;
	return c;
fail:
	net_close(&c->n);
	net_tls_free(&c->tls);
	buf_free(&c->line);
	buf_free(&c->resp);
	free(c);
	return NULL;
}

void imap_client_close(struct imap_client **cp)
{
	struct imap_client *c = *cp;
	if (c == NULL)
		return;
	if (!c->broken) {
		char err[256];
		c->tmo = 5000;
		(void)simple(c, "LOGOUT", NULL, err, sizeof err);
	}
	net_close(&c->n);
	net_tls_free(&c->tls);
	buf_free(&c->line);
	buf_free(&c->resp);
	free(c);
	*cp = NULL;
}

/* ---- SELECT ---- */

static int select_cb(void *ctx, const struct imap_resp *r)
{
	struct imap_client *c = ctx;
	if (r->status == IMAP_ST_OK) {
		unsigned long v;
		if (sscanf(r->code, "UIDVALIDITY %lu", &v) == 1)
			c->info.uidvalidity = (uint32_t)v;
		else if (sscanf(r->code, "UIDNEXT %lu", &v) == 1)
			c->info.uidnext = (uint32_t)v;
	}
	return 0;
}

int imap_client_select(struct imap_client *c, const char *name, bool readonly,
		       struct imap_mailbox_info *info_r, bool *temp_r, char *err, size_t errsz)
{
	struct imap_cmd m;
	imap_cmd_init(&m, readonly ? "EXAMINE" : "SELECT");
	imap_cmd_add(&m, "%s ", readonly ? "EXAMINE" : "SELECT");
	if (imap_cmd_mailbox(c, &m, name, err, errsz) < 0) {
		buf_free(&m.text);
		if (temp_r)
			*temp_r = false;
		return -1;
	}
	char wire[sizeof c->selected];
	size_t off = strlen(m.verb) + 1;
	snprintf(wire, sizeof wire, "%.*s", (int)(m.text.len - off), m.text.data + off);
	if (c->selected[0] && strcmp(c->selected, wire) == 0 &&
	    (!c->info.readonly || readonly)) {
		buf_free(&m.text);
		if (info_r)
			*info_r = c->info;
		return 0;
	}
	memset(&c->info, 0, sizeof c->info);
	c->selected[0] = '\0';
	if (imap_cmd_run(c, &m, select_cb, c, temp_r, err, errsz) < 0)
		return -1;
	c->info.readonly = readonly || strncasecmp(c->last_code, "READ-ONLY", 9) == 0;
	snprintf(c->selected, sizeof c->selected, "%s", wire);
	if (info_r)
		*info_r = c->info;
	return 0;
}
