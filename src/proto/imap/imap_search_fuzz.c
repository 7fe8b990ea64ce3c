/* imap_search_fuzz.c - libFuzzer target: command text fed to imap_parser,
 * then SEARCH / UID SEARCH keys compiled and run, SORT criteria parsed and
 * applied, THREAD run on messages described by the arguments.
 *
 * SEARCH [CHARSET x] keys: compiled and matched against a few fixed
 * messages (exact-size heap copies), with the MIME tree given and without;
 * both results must agree and be 0 or 1.
 * SORT (criteria) ...: parsed; keys made for the fixed messages and sorted.
 * THREAD alg id "refs" id "refs" ...: one message per pair (subject = id),
 * threaded both ways; the output must have balanced parentheses.  Every
 * string argument also goes through imap_base_subject(). */
#include <assert.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/buf.h"
#include "core/util.h"
#include "mail/mime.h"
#include "proto/imap/imap_parser.h"
#include "proto/imap/imap_search.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *const fixed[] = {
	"From: Alice <alice@example.com>\r\n"
	"To: bob@example.org\r\n"
	"Subject: Re: [list] Hello =?UTF-8?Q?w=C3=B6rld?=\r\n"
	"Date: Mon, 7 Feb 1994 21:52:25 -0800\r\n"
	"Message-ID: <a@x>\r\n"
	"\r\n"
	"Hello there.\r\n",

	"From: =?ISO-2022-JP?B?GyRCRnxLXBsoQg==?= <taro@example.jp>\r\n"
	"Subject: multi\r\n"
	"References: <a@x> <b@x>\r\n"
	"Content-Type: multipart/mixed; boundary=b\r\n"
	"\r\n"
	"--b\r\n"
	"Content-Type: text/plain; charset=iso-8859-1\r\n"
	"Content-Transfer-Encoding: quoted-printable\r\n"
	"\r\n"
	"Cr=E8me =C9T=C9\r\n"
	"--b\r\n"
	"Content-Type: text/plain; charset=utf-8\r\n"
	"Content-Transfer-Encoding: base64\r\n"
	"\r\n"
	"w4l0w6kgzpPOoc6G\r\n"
	"--b\r\n"
	"Content-Type: text/plain; charset=ISO-2022-JP\r\n"
	"\r\n"
	"\x1b$B@$3&\x1b(B\r\n"
	"--b\r\n"
	"Content-Type: message/rfc822\r\n"
	"\r\n"
	"Subject: inner\r\n"
	"\r\n"
	"inner body\r\n"
	"--b--\r\n",

	"Subject: no body",
};

#define NFIXED (sizeof(fixed) / sizeof(fixed[0]))

struct fixed_msg {
	struct imap_search_msg m;
	char *copy;
	struct mime_message *mime;
};

static void fixed_make(struct fixed_msg *f, size_t i)
{
	size_t len = strlen(fixed[i]);
	f->copy = xmalloc(len ? len : 1);
	memcpy(f->copy, fixed[i], len);
	memset(&f->m, 0, sizeof(f->m));
	f->m.seq = (uint32_t)i + 1;
	f->m.uid = 3 * ((uint32_t)i + 1);
	f->m.flags = (uint32_t)i * 5;
	f->m.keywords = i == 1 ? "$Junk work" : NULL;
	f->m.size = (int64_t)len;
	f->m.internaldate = 1600000000 + (int64_t)i * 86400;
	f->m.modseq = i + 1;
	f->m.data = f->copy;
	f->m.len = len;
	f->mime = mime_parse(f->copy, len, NULL);
}

static void do_search(const struct imap_command *c, uint32_t first, struct fixed_msg *fm)
{
	const char *charset = NULL;
	if (first + 1 < c->nargs && imap_arg_atom_eq(&c->args[first], "CHARSET") &&
	    c->args[first + 1].type != IMAP_ARG_LIST) {
		charset = c->args[first + 1].str;
		first += 2;
	}
	struct imap_search *prog;
	bool bad;
	const char *err;
	if (imap_search_compile(c->args, first, c->nargs, charset, &prog, &bad, &err) < 0) {
		assert(prog == NULL && err != NULL && err[0] != '\0');
		return;
	}
	assert(!bad);
	unsigned needs = imap_search_needs(prog);
	assert((needs & ~(unsigned)(IMAP_SEARCH_NEED_HEADER | IMAP_SEARCH_NEED_BODY |
			    IMAP_SEARCH_NEED_META)) == 0);
	const char **terms;
	size_t n = imap_search_body_terms(prog, &terms);
	for (size_t i = 0; i < n; i++)
		assert(terms[i] != NULL && terms[i][0] != '\0');
	static const uint32_t saved[] = {3, 9};
	struct imap_search_ctx ctx = {
		.max_seq = NFIXED, .max_uid = 3 * NFIXED, .tz_offset_min = 60,
		.now = 1600200000, .saved_uids = saved, .nsaved = 2,
	};
	for (size_t i = 0; i < NFIXED; i++) {
		struct imap_search_msg m = fm[i].m;
		m.mime = fm[i].mime;
		int a = imap_search_match(prog, &ctx, &m);
		m.mime = NULL;
		int b = imap_search_match(prog, &ctx, &m);
		assert((a == 0 || a == 1) && a == b);
		if (needs == 0) {
			m.data = NULL;
			m.len = 0;
			assert(imap_search_match(prog, &ctx, &m) == a);
		}
	}
	imap_search_free(&prog);
	assert(prog == NULL);
}

static void do_sort(const struct imap_command *c, struct fixed_msg *fm)
{
	struct imap_sort *s;
	const char *err;
	if (c->nargs == 0 || imap_sort_parse(c->args, 0, &s, &err) < 0)
		return;
	struct imap_sort_key *keys[NFIXED];
	for (size_t i = 0; i < NFIXED; i++)
		keys[i] = imap_sort_key_make(s, &fm[i].m);
	imap_sort_run(s, keys, NFIXED);
	uint32_t seen = 0;
	for (size_t i = 0; i < NFIXED; i++) {
		uint32_t q = imap_sort_key_seq(keys[i]);
		assert(q >= 1 && q <= NFIXED && !(seen & (1u << q)));
		seen |= 1u << q;
		imap_sort_key_free(keys[i]);
	}
	imap_sort_free(&s);
}

static void check_balanced(const struct buf *b)
{
	long depth = 0;
	for (size_t i = 0; i < b->len; i++) {
		if (b->data[i] == '(')
			depth++;
		else if (b->data[i] == ')')
			depth--;
		assert(depth >= 0);
	}
	assert(depth == 0);
}

static void do_thread(const struct imap_command *c)
{
	enum imap_thread_alg alg;
	if (c->nargs == 0 || c->args[0].type == IMAP_ARG_LIST ||
	    imap_thread_alg_parse(&c->args[0], &alg) < 0)
		return;
	size_t n = 0;
	struct imap_thread_msg *t = xcalloc(c->nargs, sizeof(*t));
	for (uint32_t i = 1; i < c->nargs; i += 2) {
		if (c->args[i].type == IMAP_ARG_LIST)
			break;
		struct imap_thread_msg *m = &t[n];
		m->seq = (uint32_t)n + 1;
		m->uid = 2 * ((uint32_t)n + 1);
		m->date = (int64_t)(i % 5);
		m->message_id = xstrdup(c->args[i].str);
		char *subj = xasprintf("Re: %s", c->args[i].str);
		m->subject = imap_base_subject(subj, strlen(subj));
		m->subject_reply = (i & 2) != 0;
		free(subj);
		if (i + 1 < c->nargs && c->args[i + 1].type != IMAP_ARG_LIST) {
			char *copy = xstrdup(c->args[i + 1].str);
			char *save = NULL;
			for (char *tok = strtok_r(copy, " ", &save); tok;
			     tok = strtok_r(NULL, " ", &save)) {
				m->refs = xreallocarray(m->refs, m->nrefs + 1, sizeof(char *));
				m->refs[m->nrefs++] = xstrdup(tok);
			}
			free(copy);
		}
		n++;
	}
	for (int a = 0; a < 2; a++) {
		struct buf out;
		buf_init(&out, 1 << 20);
		int r = imap_thread_run(a ? IMAP_THREAD_REFERENCES : IMAP_THREAD_ORDEREDSUBJECT, t,
					n, a == 1, &out);
		if (r == 0)
			check_balanced(&out);
		buf_free(&out);
	}
	for (size_t i = 0; i < n; i++)
		imap_thread_msg_clear(&t[i]);
	free(t);
}

static void do_command(const struct imap_command *c, struct fixed_msg *fm)
{
	for (uint32_t i = 0; i < c->nargs; i++) {
		const struct imap_arg *a = &c->args[i];
		if (a->type == IMAP_ARG_LIST)
			continue;
		char *b = imap_base_subject(a->str, a->len);
		assert(strlen(b) <= 4 * a->len + 16);
		free(b);
	}
	if (strcmp(c->name, "SEARCH") == 0)
		do_search(c, 0, fm);
	else if (strcmp(c->name, "UID") == 0 && c->nargs > 0 &&
		 imap_arg_atom_eq(&c->args[0], "SEARCH"))
		do_search(c, 1, fm);
	else if (strcmp(c->name, "SORT") == 0)
		do_sort(c, fm);
	else if (strcmp(c->name, "THREAD") == 0)
		do_thread(c);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct fixed_msg fm[NFIXED];
	static bool ready;
	if (!ready) {
		for (size_t i = 0; i < NFIXED; i++)
			fixed_make(&fm[i], i);
		ready = true;
	}
	struct imap_parser_limits lim;
	imap_parser_limits_default(&lim, true);
	struct imap_parser *p = imap_parser_new(&lim);
	uint8_t *copy = xmalloc(size ? size : 1);
	memcpy(copy, data, size);
	size_t pos = 0;
	unsigned stuck = 0;
	while (pos < size && stuck < 4) {
		size_t used;
		enum imap_parse_result r = imap_parser_feed(p, copy + pos, size - pos, &used);
		pos += used;
		stuck = used ? 0 : stuck + 1;
		if (r == IMAP_PARSE_MORE)
			break;
		if (r == IMAP_PARSE_DONE)
			do_command(imap_parser_command(p), fm);
	}
	free(copy);
	imap_parser_free(&p);
	return 0;
}
