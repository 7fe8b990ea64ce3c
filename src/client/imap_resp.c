/* imap_resp.c - one IMAP server response parsed into a tree; see
 * imap_resp.h.  A cursor over the input, an explicit stack of open lists
 * (no recursion), every count capped. */
#include "client/imap_resp.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/util.h"

#define NONE 0u

struct parser {
	char *in;
	size_t len, pos;
	struct imap_resp *r;
	size_t cap;
};

static bool at_end(const struct parser *p)
{
	return p->pos >= p->len || p->in[p->pos] == '\r' || p->in[p->pos] == '\n';
}

static void skip_sp(struct parser *p)
{
	while (p->pos < p->len && p->in[p->pos] == ' ')
		p->pos++;
}

int imap_resp_literal(const char *line, size_t len, uint64_t max, uint64_t *n_r)
{
	if (len < 3 || line[len - 1] != '}')
		return 0;
	size_t e = len - 1;
	if (line[e - 1] == '+')
		e--;
	size_t b = e;
	while (b > 0 && line[b - 1] >= '0' && line[b - 1] <= '9')
		b--;
	if (b == e || b == 0 || line[b - 1] != '{')
		return 0;
	if (e - b > 10)
		return -1;
	uint64_t n = 0;
	for (size_t i = b; i < e; i++)
		n = n * 10 + (uint64_t)(line[i] - '0');
	if (n > max)
		return -1;
	*n_r = n;
	return 1;
}

static struct imap_node *new_node(struct parser *p, enum imap_node_type t, uint32_t *idx_r)
{
	struct imap_resp *r = p->r;
	if (r->nnodes >= IMAP_RESP_NODES_MAX)
		return NULL;
	if (r->nnodes == p->cap) {
		p->cap = p->cap ? p->cap * 2 : 16;
		r->nodes = xreallocarray(r->nodes, p->cap, sizeof *r->nodes);
	}
	*idx_r = (uint32_t)r->nnodes;
	struct imap_node *n = &r->nodes[r->nnodes++];
	memset(n, 0, sizeof *n);
	n->type = t;
	return n;
}

/* A quoted string at p->pos ('"'), unescaped in place.  0 / -1. */
static int quoted(struct parser *p, const char **s_r, uint32_t *len_r)
{
	size_t i = p->pos + 1, o = i;
	for (;;) {
		if (i >= p->len || p->in[i] == '\r' || p->in[i] == '\n')
			return -1;
		char c = p->in[i++];
		if (c == '"')
			break;
		if (c == '\\') {
			if (i >= p->len || p->in[i] == '\r' || p->in[i] == '\n')
				return -1;
			c = p->in[i++];
		}
		p->in[o++] = c;
	}
	*s_r = p->in + p->pos + 1;
	*len_r = (uint32_t)(o - (p->pos + 1));
	p->pos = i;
	return 0;
}

/* A literal "{N}" CR LF and N bytes (or "~{N}"), at p->pos. */
static int literal(struct parser *p, const char **s_r, uint32_t *len_r)
{
	size_t i = p->pos;
	if (p->in[i] == '~')
		i++;
	i++; /* '{' */
	uint64_t n = 0;
	size_t digits = 0;
	while (i < p->len && p->in[i] >= '0' && p->in[i] <= '9' && digits < 11) {
		n = n * 10 + (uint64_t)(p->in[i++] - '0');
		digits++;
	}
	if (digits == 0 || digits > 10 || n > UINT32_MAX)
		return -1;
	if (i < p->len && p->in[i] == '+')
		i++;
	if (i >= p->len || p->in[i] != '}')
		return -1;
	i++;
	if (i < p->len && p->in[i] == '\r')
		i++;
	if (i >= p->len || p->in[i] != '\n')
		return -1;
	i++;
	if (p->len - i < n)
		return -1;
	*s_r = p->in + i;
	*len_r = (uint32_t)n;
	p->pos = i + n;
	return 0;
}

static bool atom_char(char c)
{
	return c != ' ' && c != '\r' && c != '\n' && c != '(' && c != ')' && c != '"' && c != '{';
}

/* An atom at p->pos, with bracketed sections inside it taken whole. */
static int atom(struct parser *p, const char **s_r, uint32_t *len_r)
{
	size_t b = p->pos, i = b;
	while (i < p->len && atom_char(p->in[i])) {
		if (p->in[i] == '[') {
			/* to the matching ']' on this line */
			unsigned depth = 0;
			for (; i < p->len && p->in[i] != '\r' && p->in[i] != '\n'; i++) {
				if (p->in[i] == '[')
					depth++;
				else if (p->in[i] == ']' && --depth == 0)
					break;
			}
			if (i >= p->len || p->in[i] != ']')
				return -1;
		}
		i++;
	}
	if (i == b || i - b > UINT32_MAX)
		return -1;
	*s_r = p->in + b;
	*len_r = (uint32_t)(i - b);
	p->pos = i;
	return 0;
}

/* Arguments to the end: the tree. */
static int arguments(struct parser *p, const char **error_r)
{
	uint32_t open[IMAP_RESP_DEPTH_MAX];  /* list node of each open level */
	uint32_t last[IMAP_RESP_DEPTH_MAX + 1]; /* last node at each level, NONE */
	bool has_last[IMAP_RESP_DEPTH_MAX + 1];
	unsigned depth = 0;
	has_last[0] = false;
	last[0] = NONE;

	for (;;) {
		skip_sp(p);
		if (at_end(p)) {
			if (depth > 0) {
				*error_r = "unbalanced parentheses";
				return -1;
			}
			return 0;
		}
		char c = p->in[p->pos];
		if (c == ')') {
			if (depth == 0) {
				*error_r = "unbalanced parentheses";
				return -1;
			}
			p->pos++;
			depth--;
			continue;
		}
		const char *s = NULL;
		uint32_t len = 0, idx;
		enum imap_node_type t;
		if (c == '(') {
			t = IMAP_NODE_LIST;
		} else if (c == '"') {
			t = IMAP_NODE_STRING;
			if (quoted(p, &s, &len) < 0) {
				*error_r = "bad quoted string";
				return -1;
			}
		} else if (c == '{' || (c == '~' && p->pos + 1 < p->len && p->in[p->pos + 1] == '{')) {
			t = IMAP_NODE_STRING;
			if (literal(p, &s, &len) < 0) {
				*error_r = "bad literal";
				return -1;
			}
		} else {
			if (atom(p, &s, &len) < 0) {
				*error_r = "bad atom";
				return -1;
			}
			t = len == 3 && strncasecmp(s, "NIL", 3) == 0 ? IMAP_NODE_NIL : IMAP_NODE_ATOM;
		}
		struct imap_node *n = new_node(p, t, &idx);
		if (n == NULL) {
			*error_r = "too many items in one response";
			return -1;
		}
		n->s = s;
		n->len = len;
		if (has_last[depth]) {
			p->r->nodes[last[depth]].next = idx;
		} else if (depth > 0) {
			p->r->nodes[open[depth - 1]].child = idx;
		}
		if (depth > 0)
			p->r->nodes[open[depth - 1]].len++;
		last[depth] = idx;
		has_last[depth] = true;
		if (t == IMAP_NODE_LIST) {
			if (depth >= IMAP_RESP_DEPTH_MAX) {
				*error_r = "lists nested too deep";
				return -1;
			}
			p->pos++;
			open[depth++] = idx;
			has_last[depth] = false;
		}
	}
}

/* The rest of a status response: [code] text, NUL-terminated in place. */
static void status_text(struct parser *p)
{
	static char empty[] = "";
	struct imap_resp *r = p->r;
	r->code = empty;
	r->text = empty;
	skip_sp(p);
	if (p->pos < p->len && p->in[p->pos] == '[') {
		size_t b = p->pos + 1, i = b;
		while (i < p->len && p->in[i] != ']' && p->in[i] != '\r' && p->in[i] != '\n')
			i++;
		if (i < p->len && p->in[i] == ']') {
			p->in[i] = '\0';
			r->code = p->in + b;
			p->pos = i + 1;
			skip_sp(p);
		}
	}
	size_t b = p->pos, i = b;
	while (i < p->len && p->in[i] != '\r' && p->in[i] != '\n')
		i++;
	p->in[i] = '\0';   /* in[len] is writable */
	r->text = p->in + b;
	/* the code stays readable: no NUL inside it except its end */
}

static enum imap_resp_status status_word(const char *s, size_t len)
{
	static const struct {
		const char *w;
		enum imap_resp_status st;
	} words[] = {
		{"OK", IMAP_ST_OK}, {"NO", IMAP_ST_NO}, {"BAD", IMAP_ST_BAD},
		{"PREAUTH", IMAP_ST_PREAUTH}, {"BYE", IMAP_ST_BYE},
	};
	for (size_t i = 0; i < ARRAY_LEN(words); i++)
		if (strlen(words[i].w) == len && strncasecmp(s, words[i].w, len) == 0)
			return words[i].st;
	return IMAP_ST_NONE;
}

/* A word (to SP or the line end) at p->pos. */
static size_t word(struct parser *p, const char **s_r)
{
	size_t b = p->pos;
	while (p->pos < p->len && p->in[p->pos] != ' ' && p->in[p->pos] != '\r' &&
	       p->in[p->pos] != '\n')
		p->pos++;
	*s_r = p->in + b;
	return p->pos - b;
}

int imap_resp_parse(char *in, size_t len, struct imap_resp *r, const char **error_r)
{
	struct parser p = {.in = in, .len = len, .r = r};
	const char *w;
	size_t wl;

	memset(r, 0, sizeof *r);
	if (len == 0) {
		*error_r = "empty response";
		return -1;
	}
	if (in[0] == '+') {
		r->kind = IMAP_RESP_CONTINUE;
		p.pos = 1;
		if (p.pos < len && in[p.pos] == ' ')
			p.pos++;
		size_t b = p.pos, i = b;
		while (i < len && in[i] != '\r' && in[i] != '\n')
			i++;
		in[i] = '\0';
		r->text = in + b;
		r->code = in + i;
		return 0;
	}
	if (in[0] == '*') {
		r->kind = IMAP_RESP_UNTAGGED;
		p.pos = 1;
	} else {
		r->kind = IMAP_RESP_TAGGED;
		wl = word(&p, &w);
		if (wl == 0 || wl > IMAP_RESP_TAG_MAX) {
			*error_r = "bad tag";
			return -1;
		}
		memcpy(r->tag, w, wl);
	}
	if (p.pos >= len || in[p.pos] != ' ') {
		*error_r = "no space after the tag";
		return -1;
	}
	skip_sp(&p);
	wl = word(&p, &w);
	if (wl == 0) {
		*error_r = "nothing after the tag";
		return -1;
	}
	if (r->kind == IMAP_RESP_UNTAGGED && w[0] >= '0' && w[0] <= '9') {
		uint64_t n = 0;
		for (size_t i = 0; i < wl; i++) {
			if (w[i] < '0' || w[i] > '9' || (n = n * 10 + (uint64_t)(w[i] - '0')) >
			    UINT32_MAX) {
				*error_r = "bad number";
				return -1;
			}
		}
		r->has_number = true;
		r->number = (uint32_t)n;
		skip_sp(&p);
		wl = word(&p, &w);
		if (wl == 0) {
			*error_r = "no name after the number";
			return -1;
		}
	}
	r->status = r->has_number ? IMAP_ST_NONE : status_word(w, wl);
	if (r->kind == IMAP_RESP_TAGGED && r->status == IMAP_ST_NONE) {
		*error_r = "a tagged response without OK, NO or BAD";
		return -1;
	}
	if (r->status != IMAP_ST_NONE) {
		status_text(&p);
		return 0;
	}
	if (wl > IMAP_RESP_NAME_MAX) {
		*error_r = "response name too long";
		return -1;
	}
	for (size_t i = 0; i < wl; i++)
		r->name[i] = (w[i] >= 'a' && w[i] <= 'z') ? (char)(w[i] - 32) : w[i];
	if (arguments(&p, error_r) < 0) {
		imap_resp_free(r);
		return -1;
	}
	return 0;
}

void imap_resp_free(struct imap_resp *r)
{
	free(r->nodes);
	memset(r, 0, sizeof *r);
}

const struct imap_node *imap_resp_first(const struct imap_resp *r)
{
	return r->nnodes > 0 ? &r->nodes[0] : NULL;
}

const struct imap_node *imap_resp_next(const struct imap_resp *r, const struct imap_node *n)
{
	return n != NULL && n->next != NONE ? &r->nodes[n->next] : NULL;
}

const struct imap_node *imap_resp_child(const struct imap_resp *r, const struct imap_node *n)
{
	return n != NULL && n->type == IMAP_NODE_LIST && n->len > 0 ? &r->nodes[n->child] : NULL;
}

char *imap_node_dup(const struct imap_node *n)
{
	if (n == NULL || (n->type != IMAP_NODE_ATOM && n->type != IMAP_NODE_STRING))
		return xstrdup("");
	char *s = xmalloc((size_t)n->len + 1);
	memcpy(s, n->s, n->len);
	s[n->len] = '\0';
	return s;
}

bool imap_node_is(const struct imap_node *n, const char *w)
{
	return n != NULL && n->type == IMAP_NODE_ATOM && strlen(w) == n->len &&
	       strncasecmp(n->s, w, n->len) == 0;
}

int imap_node_u64(const struct imap_node *n, uint64_t *v)
{
	if (n == NULL || n->type != IMAP_NODE_ATOM || n->len == 0 || n->len > 20)
		return -1;
	uint64_t x = 0;
	for (uint32_t i = 0; i < n->len; i++) {
		if (n->s[i] < '0' || n->s[i] > '9')
			return -1;
		uint64_t d = (uint64_t)(n->s[i] - '0');
		if (x > (UINT64_MAX - d) / 10)
			return -1;
		x = x * 10 + d;
	}
	*v = x;
	return 0;
}

int imap_node_u32(const struct imap_node *n, uint32_t *v)
{
	uint64_t x;
	if (imap_node_u64(n, &x) < 0 || x > UINT32_MAX)
		return -1;
	*v = (uint32_t)x;
	return 0;
}

const struct imap_node *imap_fetch_item(const struct imap_resp *r, const struct imap_node *list,
					const char *name)
{
	size_t nl = strlen(name);
	bool prefix = nl > 0 && name[nl - 1] == '[';
	for (const struct imap_node *k = imap_resp_child(r, list); k != NULL;
	     k = imap_resp_next(r, imap_resp_next(r, k))) {
		const struct imap_node *v = imap_resp_next(r, k);
		if (v == NULL)
			return NULL;
		if (k->type != IMAP_NODE_ATOM)
			continue;
		if (prefix ? k->len >= nl && strncasecmp(k->s, name, nl) == 0
			   : k->len == nl && strncasecmp(k->s, name, nl) == 0)
			return v;
	}
	return NULL;
}
