/* imap_parser.c - incremental IMAP command parser.
 *
 * One byte at a time through an enum state, except literal data, which is
 * copied (or discarded) in bulk.  The argument tree is a flat pre-order
 * array; open lists live on an explicit stack of indices, so nesting never
 * recurses.  All bytes of a command (tag, name, token text, literal data,
 * each followed by a NUL) go to one bounded buffer; arguments keep offsets
 * into it while it may still move and get their pointers when the command
 * is complete. */
#include "proto/imap/imap_parser.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>

#include "core/buf.h"
#include "core/util.h"

enum state {
	S_TAG,
	S_NAME,
	S_ARG_START,
	S_AFTER_ARG,
	S_ATOM,
	S_SECT,
	S_SECT_Q,
	S_SECT_QESC,
	S_QUOTED,
	S_QESC,
	S_TILDE,
	S_LIT_LEN,
	S_LIT_PLUS,
	S_LIT_CR,
	S_LIT_LF,
	S_LIT_DATA,
	S_LIT_DISCARD,
	S_END_LF,
	S_SKIP,
	S_SKIP_LIT,
	S_DONE,
};

/* Detection of "{n+}" CRLF at the end of a line being skipped. */
enum skip_state { SK_NONE, SK_DIGITS, SK_PLUS, SK_CLOSE, SK_CR };

struct imap_parser {
	struct imap_parser_limits lim, next_lim;
	enum state st;
	bool fresh;             /* reset before the next byte */
	struct buf data;
	struct imap_arg *args;
	uint32_t nargs, args_cap;
	uint32_t *stack;
	unsigned depth, stack_cap;
	size_t line_len;
	uint64_t lit_total;
	size_t tok_off;
	bool tok_section;
	int sect_paren;
	/* literal being announced or read */
	uint64_t lit_n, lit_remaining;
	unsigned lit_digits;
	bool lit_plus, lit_binary, lit_overflow;
	uint32_t lit_arg;
	/* errors */
	bool tag_known;
	size_t name_off;
	enum imap_parse_error err;
	const char *errtext;
	enum imap_parse_error pending_err;
	const char *pending_text;
	/* skipping */
	enum skip_state sk;
	uint64_t sk_n;
	bool sk_overflow;
	struct imap_command cmd;
};

/* Keep idle parsers small: drop big allocations between commands. */
#define KEEP_DATA 4096u
#define KEEP_ARGS 64u

void imap_parser_limits_default(struct imap_parser_limits *lim, bool authenticated)
{
	lim->line_max = authenticated ? IMAP_LINE_MAX : IMAP_LINE_MAX_PREAUTH;
	lim->literal_max = authenticated ? IMAP_LITERAL_MAX : IMAP_LITERAL_MAX_PREAUTH;
	lim->depth_max = IMAP_DEPTH_MAX;
	lim->args_max = IMAP_ARGS_MAX;
}

static void apply_limits(struct imap_parser *p)
{
	p->lim = p->next_lim;
	/* Everything stored is at most the line plus the literals; the NULs
	 * after tokens never outnumber the delimiters they replace. */
	uint64_t max = (uint64_t)p->lim.line_max + p->lim.literal_max + 16;
	if (max > SIZE_MAX / 2)
		max = SIZE_MAX / 2;
	p->data.max = (size_t)max;
}

static void sanitize(struct imap_parser_limits *lim)
{
	if (lim->depth_max < 1)
		lim->depth_max = 1;
	if (lim->depth_max > IMAP_DEPTH_HARD_MAX)
		lim->depth_max = IMAP_DEPTH_HARD_MAX;
	if (lim->args_max < 1)
		lim->args_max = 1;
	if (lim->args_max > UINT32_MAX - 1)
		lim->args_max = UINT32_MAX - 1;
	if (lim->literal_max > SIZE_MAX / 4)
		lim->literal_max = SIZE_MAX / 4;
	if (lim->line_max > SIZE_MAX / 4)
		lim->line_max = SIZE_MAX / 4;
}

void imap_parser_set_limits(struct imap_parser *p, const struct imap_parser_limits *lim)
{
	p->next_lim = *lim;
	sanitize(&p->next_lim);
	if (p->next_lim.depth_max > p->stack_cap) {
		p->stack = xreallocarray(p->stack, p->next_lim.depth_max, sizeof(*p->stack));
		p->stack_cap = p->next_lim.depth_max;
	}
}

static void reset(struct imap_parser *p)
{
	if (p->data.cap > KEEP_DATA)
		buf_free(&p->data);
	buf_reset(&p->data);
	if (p->args_cap > KEEP_ARGS) {
		FREE(p->args);
		p->args_cap = 0;
	}
	apply_limits(p);
	p->st = S_TAG;
	p->fresh = false;
	p->nargs = 0;
	p->depth = 0;
	p->line_len = 0;
	p->lit_total = 0;
	p->tag_known = false;
	p->err = IMAP_ERR_NONE;
	p->errtext = NULL;
	p->pending_err = IMAP_ERR_NONE;
	p->pending_text = NULL;
	memset(&p->cmd, 0, sizeof(p->cmd));
}

struct imap_parser *imap_parser_new(const struct imap_parser_limits *lim)
{
	struct imap_parser *p = xcalloc(1, sizeof(*p));
	struct imap_parser_limits def;
	if (lim == NULL) {
		imap_parser_limits_default(&def, false);
		lim = &def;
	}
	buf_init(&p->data, 0);
	imap_parser_set_limits(p, lim);
	reset(p);
	return p;
}

void imap_parser_free(struct imap_parser **pp)
{
	struct imap_parser *p = *pp;
	if (p == NULL)
		return;
	buf_free(&p->data);
	free(p->args);
	free(p->stack);
	free(p);
	*pp = NULL;
}

/* ATOM-CHAR of RFC 3501 (strict: tags and command names). */
static bool atom_char(unsigned char c)
{
	return c > 0x20 && c < 0x7f && strchr("(){%*\"\\]", c) == NULL;
}

/* Loose atom characters for arguments (see the header). */
static bool loose_char(unsigned char c)
{
	return c > 0x20 && c < 0x7f && strchr("(){\"", c) == NULL;
}

static bool tag_char(unsigned char c)
{
	return c == ']' || (atom_char(c) && c != '+');
}

static void skip_byte(struct imap_parser *p, unsigned char c);

/* Report an error and skip the rest of the command.  c is the byte that
 * failed (consumed), or -1.  A non-synchronising literal announced on the
 * line, even one whose header was being read, is skipped with it. */
static int fail(struct imap_parser *p, enum imap_parse_error kind, const char *text, int c)
{
	p->err = kind;
	p->errtext = text;
	p->sk = SK_NONE;
	switch (p->st) {
	case S_LIT_LEN:
		p->sk = SK_DIGITS;
		p->sk_n = p->lit_n;
		p->sk_overflow = p->lit_overflow;
		break;
	case S_LIT_PLUS:
		p->sk = SK_PLUS;
		p->sk_n = p->lit_n;
		p->sk_overflow = p->lit_overflow;
		break;
	case S_LIT_CR:
	case S_LIT_LF:
		if (p->lit_plus) {
			p->sk = p->st == S_LIT_CR ? SK_CLOSE : SK_CR;
			p->sk_n = p->lit_n;
			p->sk_overflow = p->lit_overflow;
		}
		break;
	default:
		break;
	}
	p->st = S_SKIP;
	if (c >= 0)
		skip_byte(p, (unsigned char)c);
	return -1;
}

static int put(struct imap_parser *p, unsigned char c)
{
	return buf_append(&p->data, &c, 1);
}

static int new_arg(struct imap_parser *p, enum imap_arg_type type, uint32_t *idx_r)
{
	if (p->nargs >= p->lim.args_max)
		return -1;
	if (p->nargs == p->args_cap) {
		uint32_t cap = p->args_cap ? p->args_cap * 2 : 16;
		if (cap > p->lim.args_max)
			cap = p->lim.args_max;
		p->args = xreallocarray(p->args, cap, sizeof(*p->args));
		p->args_cap = cap;
	}
	uint32_t i = p->nargs++;
	struct imap_arg *a = &p->args[i];
	memset(a, 0, sizeof(*a));
	a->type = type;
	a->end = i + 1;
	a->depth = p->depth;
	if (p->depth > 0) {
		a->parent = p->stack[p->depth - 1];
		p->args[a->parent].nchildren++;
	} else {
		a->parent = IMAP_ARG_NO_PARENT;
	}
	*idx_r = i;
	return 0;
}

/* The token text data[tok_off..len) ends here; store its NUL and make it an
 * argument of the given type. */
static int finish_token(struct imap_parser *p, enum imap_arg_type type, uint32_t *idx_r)
{
	size_t len = p->data.len - p->tok_off;
	if (put(p, '\0') < 0)
		return -2;
	if (new_arg(p, type, idx_r) < 0)
		return -1;
	p->args[*idx_r].off = p->tok_off;
	p->args[*idx_r].len = len;
	return 0;
}

static int finish_atom(struct imap_parser *p, int c)
{
	const char *s = p->data.data + p->tok_off;
	size_t len = p->data.len - p->tok_off;
	enum imap_arg_type type = IMAP_ARG_ATOM;
	uint64_t v = 0;

	if (!p->tok_section && len == 3 && str_nieq(s, "NIL", 3)) {
		type = IMAP_ARG_NIL;
	} else if (len <= 19) {
		size_t k = 0;
		while (k < len && s[k] >= '0' && s[k] <= '9')
			v = v * 10 + (uint64_t)(s[k++] - '0');
		if (k == len && v <= INT64_MAX)
			type = IMAP_ARG_NUMBER;
	}
	uint32_t idx;
	int r = finish_token(p, type, &idx);
	if (r == -2)
		return fail(p, IMAP_ERR_LINE_TOO_LONG, "Command too long", c);
	if (r < 0)
		return fail(p, IMAP_ERR_TOO_MANY_ARGS, "Too many arguments", c);
	p->args[idx].num = type == IMAP_ARG_NUMBER ? v : 0;
	p->args[idx].has_section = p->tok_section;
	return 0;
}

static enum imap_parse_result complete(struct imap_parser *p)
{
	if (p->depth > 0)
		return fail(p, IMAP_ERR_SYNTAX, "Missing ')'", '\n');
	for (uint32_t i = 0; i < p->nargs; i++) {
		struct imap_arg *a = &p->args[i];
		a->str = a->type == IMAP_ARG_LIST ? NULL : p->data.data + a->off;
	}
	p->cmd.tag = p->data.data;
	p->cmd.name = p->data.data + p->name_off;
	p->cmd.args = p->args;
	p->cmd.nargs = p->nargs;
	p->cmd.data = p->data.data;
	p->cmd.data_len = p->data.len;
	p->st = S_DONE;
	p->fresh = true;
	return IMAP_PARSE_DONE;
}

/* The line announcing a literal has ended. */
static enum imap_parse_result literal_start(struct imap_parser *p)
{
	bool too_big = p->lit_overflow || p->lit_n > p->lim.literal_max ||
		p->lit_total + p->lit_n > p->lim.literal_max;
	enum imap_parse_error kind = IMAP_ERR_LITERAL_TOO_LARGE;
	const char *text = "[TOOBIG] Literal too large";

	if (!too_big && p->nargs >= p->lim.args_max) {
		too_big = true;
		kind = IMAP_ERR_TOO_MANY_ARGS;
		text = "Too many arguments";
	}
	if (too_big) {
		if (!p->lit_plus) /* the client waits for "+": nothing follows */
			return fail(p, kind, text, '\n');
		p->pending_err = kind;
		p->pending_text = text;
		p->lit_remaining = p->lit_overflow ? UINT64_MAX : p->lit_n;
		p->st = S_LIT_DISCARD;
		return IMAP_PARSE_MORE;
	}
	p->tok_off = p->data.len;
	(void)new_arg(p, IMAP_ARG_LITERAL, &p->lit_arg);
	p->args[p->lit_arg].binary = p->lit_binary;
	p->args[p->lit_arg].nonsync = p->lit_plus;
	p->args[p->lit_arg].off = p->tok_off;
	p->lit_total += p->lit_n;
	p->lit_remaining = p->lit_n;
	p->st = S_LIT_DATA;
	return p->lit_plus ? IMAP_PARSE_MORE : IMAP_PARSE_CONTINUE;
}

static enum imap_parse_result close_list(struct imap_parser *p, int c)
{
	if (p->depth == 0)
		return fail(p, IMAP_ERR_SYNTAX, "Unexpected ')'", c);
	uint32_t i = p->stack[--p->depth];
	p->args[i].end = p->nargs;
	p->st = S_AFTER_ARG;
	return IMAP_PARSE_MORE;
}

static void skip_byte(struct imap_parser *p, unsigned char c)
{
	if (c == '\n') {
		if ((p->sk == SK_CLOSE || p->sk == SK_CR) && p->sk_n > 0) {
			p->lit_remaining = p->sk_overflow ? UINT64_MAX : p->sk_n;
			p->st = S_SKIP_LIT;
		} else {
			p->fresh = true;
		}
		p->sk = SK_NONE;
		return;
	}
	if (c == '{') {
		p->sk = SK_DIGITS;
		p->sk_n = 0;
		p->sk_overflow = false;
	} else if (p->sk == SK_DIGITS && c >= '0' && c <= '9') {
		if (p->sk_n > UINT64_MAX / 10 - 10)
			p->sk_overflow = true;
		else
			p->sk_n = p->sk_n * 10 + (uint64_t)(c - '0');
	} else if (p->sk == SK_DIGITS && c == '+') {
		p->sk = SK_PLUS;
	} else if (p->sk == SK_PLUS && c == '}') {
		p->sk = SK_CLOSE;
	} else if (p->sk == SK_CLOSE && c == '\r') {
		p->sk = SK_CR;
	} else {
		p->sk = SK_NONE;
	}
}

/* One byte outside literal data. */
static enum imap_parse_result step(struct imap_parser *p, unsigned char c)
{
	int r;

	if (p->st == S_SKIP) {
		skip_byte(p, c);
		return IMAP_PARSE_MORE;
	}
	if (++p->line_len > p->lim.line_max)
		return fail(p, IMAP_ERR_LINE_TOO_LONG, "Command line too long", c);
again:
	switch (p->st) {
	case S_TAG:
		if (c == ' ' && p->data.len > 0) {
			if (put(p, '\0') < 0)
				return fail(p, IMAP_ERR_LINE_TOO_LONG, "Command too long", c);
			p->tag_known = true;
			p->name_off = p->data.len;
			p->st = S_NAME;
		} else if (tag_char(c) && p->data.len < IMAP_TAG_MAX) {
			if (put(p, c) < 0)
				return fail(p, IMAP_ERR_LINE_TOO_LONG, "Command too long", c);
		} else {
			return fail(p, IMAP_ERR_SYNTAX, "Invalid tag", c);
		}
		return IMAP_PARSE_MORE;
	case S_NAME: {
		size_t n = p->data.len - p->name_off;
		if (c == ' ' || c == '\r' || c == '\n') {
			if (n == 0)
				return fail(p, IMAP_ERR_SYNTAX, "Missing command", c);
			if (put(p, '\0') < 0)
				return fail(p, IMAP_ERR_LINE_TOO_LONG, "Command too long", c);
			if (c == ' ')
				p->st = S_ARG_START;
			else if (c == '\r')
				p->st = S_END_LF;
			else
				return complete(p);
			return IMAP_PARSE_MORE;
		}
		if (!atom_char(c) || n >= IMAP_NAME_MAX)
			return fail(p, IMAP_ERR_SYNTAX, "Invalid command name", c);
		if (c >= 'a' && c <= 'z')
			c = (unsigned char)(c - 'a' + 'A');
		if (put(p, c) < 0)
			return fail(p, IMAP_ERR_LINE_TOO_LONG, "Command too long", c);
		return IMAP_PARSE_MORE;
	}
	case S_ARG_START:
		switch (c) {
		case '(': {
			uint32_t i;
			if (p->depth >= p->lim.depth_max)
				return fail(p, IMAP_ERR_TOO_DEEP, "Lists nested too deeply", c);
			if (new_arg(p, IMAP_ARG_LIST, &i) < 0)
				return fail(p, IMAP_ERR_TOO_MANY_ARGS, "Too many arguments", c);
			p->stack[p->depth++] = i;
			return IMAP_PARSE_MORE;
		}
		case ')':
			return close_list(p, c);
		case '\r':
			p->st = S_END_LF;
			return IMAP_PARSE_MORE;
		case '\n':
			return complete(p);
		case '"':
			p->tok_off = p->data.len;
			p->st = S_QUOTED;
			return IMAP_PARSE_MORE;
		case '{':
			p->lit_binary = false;
			goto literal;
		case '~':
			p->st = S_TILDE;
			return IMAP_PARSE_MORE;
		default:
			if (!loose_char(c))
				return fail(p, IMAP_ERR_SYNTAX, "Invalid character", c);
			p->tok_off = p->data.len;
			p->tok_section = false;
			p->st = S_ATOM;
			goto again;
		}
	case S_AFTER_ARG:
		switch (c) {
		case ' ':
			p->st = S_ARG_START;
			return IMAP_PARSE_MORE;
		case ')':
			return close_list(p, c);
		case '\r':
			p->st = S_END_LF;
			return IMAP_PARSE_MORE;
		case '\n':
			return complete(p);
		default:
			return fail(p, IMAP_ERR_SYNTAX, "Missing space between arguments", c);
		}
	case S_ATOM:
		if (c == '[' && !p->tok_section) {
			p->tok_section = true;
			p->sect_paren = 0;
			p->st = S_SECT;
		} else if (c == ' ' || c == ')' || c == '\r' || c == '\n') {
			if (finish_atom(p, c) < 0)
				return -1;
			p->st = S_AFTER_ARG;
			goto again;
		} else if (!loose_char(c) || c == '[') {
			return fail(p, IMAP_ERR_SYNTAX, "Invalid character in atom", c);
		}
		break;
	case S_SECT:
		if (c == ']') {
			if (p->sect_paren)
				return fail(p, IMAP_ERR_SYNTAX, "Missing ')' in section", c);
			p->st = S_ATOM;
		} else if (c == '(') {
			if (p->sect_paren++)
				return fail(p, IMAP_ERR_SYNTAX, "Nested list in section", c);
		} else if (c == ')') {
			if (p->sect_paren-- == 0)
				return fail(p, IMAP_ERR_SYNTAX, "Unexpected ')' in section", c);
		} else if (c == '"') {
			p->st = S_SECT_Q;
		} else if (c != ' ' && (!loose_char(c) || c == '[')) {
			return fail(p, IMAP_ERR_SYNTAX, "Invalid character in section", c);
		}
		break;
	case S_SECT_Q:
		if (c == '\\')
			p->st = S_SECT_QESC;
		else if (c == '"')
			p->st = S_SECT;
		else if (c < 0x20 || c >= 0x7f)
			return fail(p, IMAP_ERR_SYNTAX, "Invalid character in section", c);
		break;
	case S_SECT_QESC:
		if (c != '"' && c != '\\')
			return fail(p, IMAP_ERR_SYNTAX, "Invalid escape in quoted string", c);
		p->st = S_SECT_Q;
		break;
	case S_QUOTED:
		if (c == '\\') {
			p->st = S_QESC;
			return IMAP_PARSE_MORE;
		}
		if (c == '"') {
			uint32_t i;
			r = finish_token(p, IMAP_ARG_STRING, &i);
			if (r == -2)
				return fail(p, IMAP_ERR_LINE_TOO_LONG, "Command too long", c);
			if (r < 0)
				return fail(p, IMAP_ERR_TOO_MANY_ARGS, "Too many arguments", c);
			p->st = S_AFTER_ARG;
			return IMAP_PARSE_MORE;
		}
		if (c == '\0' || c == '\r' || c == '\n')
			return fail(p, IMAP_ERR_SYNTAX, "Unterminated quoted string", c);
		break;
	case S_QESC:
		if (c != '"' && c != '\\')
			return fail(p, IMAP_ERR_SYNTAX, "Invalid escape in quoted string", c);
		p->st = S_QUOTED;
		break;
	case S_TILDE:
		if (c == '{') {
			p->lit_binary = true;
			goto literal;
		}
		p->tok_off = p->data.len;
		p->tok_section = false;
		if (put(p, '~') < 0)
			return fail(p, IMAP_ERR_LINE_TOO_LONG, "Command too long", c);
		p->st = S_ATOM;
		goto again;
	case S_LIT_LEN:
		if (c >= '0' && c <= '9') {
			if (p->lit_n > UINT64_MAX / 10 - 10)
				p->lit_overflow = true;
			else
				p->lit_n = p->lit_n * 10 + (uint64_t)(c - '0');
			p->lit_digits++;
		} else if ((c == '+' || c == '}') && p->lit_digits > 0) {
			p->lit_plus = c == '+';
			p->st = c == '+' ? S_LIT_PLUS : S_LIT_CR;
		} else {
			return fail(p, IMAP_ERR_SYNTAX, "Invalid literal", c);
		}
		return IMAP_PARSE_MORE;
	case S_LIT_PLUS:
		if (c != '}')
			return fail(p, IMAP_ERR_SYNTAX, "Invalid literal", c);
		p->st = S_LIT_CR;
		return IMAP_PARSE_MORE;
	case S_LIT_CR:
		if (c == '\r') {
			p->st = S_LIT_LF;
			return IMAP_PARSE_MORE;
		}
		if (c == '\n')
			return literal_start(p);
		return fail(p, IMAP_ERR_SYNTAX, "Literal must end the line", c);
	case S_LIT_LF:
		if (c != '\n')
			return fail(p, IMAP_ERR_SYNTAX, "CR without LF", c);
		return literal_start(p);
	case S_END_LF:
		if (c != '\n')
			return fail(p, IMAP_ERR_SYNTAX, "CR without LF", c);
		return complete(p);
	default: /* literal, skip and done states are handled by feed */
		assert(!"imap_parser: byte in a bulk state");
		return fail(p, IMAP_ERR_SYNTAX, "Internal error", c);
	}
	if (put(p, c) < 0)
		return fail(p, IMAP_ERR_LINE_TOO_LONG, "Command too long", c);
	return IMAP_PARSE_MORE;

literal:
	p->lit_n = 0;
	p->lit_digits = 0;
	p->lit_plus = false;
	p->lit_overflow = false;
	p->st = S_LIT_LEN;
	return IMAP_PARSE_MORE;
}

enum imap_parse_result imap_parser_feed(struct imap_parser *p, const void *data, size_t len,
					size_t *consumed_r)
{
	const unsigned char *d = data;
	size_t i = 0;
	enum imap_parse_result r = IMAP_PARSE_MORE;

	for (;;) {
		if (p->fresh)
			reset(p);
		if (p->st == S_LIT_DATA) {
			uint64_t k = MIN((uint64_t)(len - i), p->lit_remaining);
			const unsigned char *chunk = d + i;
			const void *nul = p->lit_binary ? NULL : memchr(chunk, '\0', (size_t)k);
			if (nul != NULL) {
				/* consume the rest of the literal, then fail */
				p->pending_err = IMAP_ERR_SYNTAX;
				p->pending_text = "NUL in literal";
				p->st = S_LIT_DISCARD;
				continue;
			}
			/* cannot fail: the buffer max covers line_max + literal_max */
			int rc = buf_append(&p->data, chunk, (size_t)k);
			assert(rc == 0);
			(void)rc;
			i += (size_t)k;
			p->lit_remaining -= k;
			if (p->lit_remaining > 0)
				break;
			struct imap_arg *a = &p->args[p->lit_arg];
			a->len = p->data.len - a->off;
			rc = put(p, '\0');
			assert(rc == 0);
			p->st = S_AFTER_ARG;
			continue;
		}
		if (p->st == S_LIT_DISCARD || p->st == S_SKIP_LIT) {
			uint64_t k = MIN((uint64_t)(len - i), p->lit_remaining);
			i += (size_t)k;
			p->lit_remaining -= k;
			if (p->lit_remaining > 0)
				break;
			if (p->st == S_SKIP_LIT) {
				p->st = S_SKIP;
				continue;
			}
			/* the rest of the line after the literal is skipped */
			r = fail(p, p->pending_err, p->pending_text, -1);
			break;
		}
		if (i == len)
			break;
		r = step(p, d[i++]);
		if (r != IMAP_PARSE_MORE)
			break;
	}
	*consumed_r = i;
	return r;
}

const struct imap_command *imap_parser_command(const struct imap_parser *p)
{
	return p->st == S_DONE ? &p->cmd : NULL;
}

const char *imap_parser_error(const struct imap_parser *p, const char **tag_r,
			      enum imap_parse_error *kind_r)
{
	if (tag_r != NULL)
		*tag_r = p->tag_known ? p->data.data : NULL;
	if (kind_r != NULL)
		*kind_r = p->err;
	return p->errtext != NULL ? p->errtext : "";
}

/* --- argument helpers --- */

bool imap_arg_atom_eq(const struct imap_arg *arg, const char *word)
{
	if (arg->type != IMAP_ARG_ATOM && arg->type != IMAP_ARG_NUMBER &&
	    arg->type != IMAP_ARG_NIL)
		return false;
	return strlen(word) == arg->len && str_nieq(arg->str, word, arg->len);
}

int imap_arg_number64(const struct imap_arg *arg, uint64_t *n_r)
{
	if (arg->type != IMAP_ARG_NUMBER)
		return -1;
	*n_r = arg->num;
	return 0;
}

int imap_arg_number(const struct imap_arg *arg, uint32_t *n_r)
{
	if (arg->type != IMAP_ARG_NUMBER || arg->num > UINT32_MAX)
		return -1;
	*n_r = (uint32_t)arg->num;
	return 0;
}

int imap_arg_nz_number(const struct imap_arg *arg, uint32_t *n_r)
{
	if (imap_arg_number(arg, n_r) < 0 || *n_r == 0)
		return -1;
	return 0;
}

int imap_arg_astring(const struct imap_arg *arg, const char **s_r, size_t *len_r)
{
	switch (arg->type) {
	case IMAP_ARG_ATOM:
		for (size_t i = 0; i < arg->len; i++) {
			unsigned char c = (unsigned char)arg->str[i];
			if (!atom_char(c) && c != ']')
				return -1;
		}
		break;
	case IMAP_ARG_NUMBER:
	case IMAP_ARG_NIL:      /* an astring "NIL" is the name NIL */
	case IMAP_ARG_STRING:
		break;
	case IMAP_ARG_LITERAL:
		if (arg->binary)
			return -1;
		break;
	default:
		return -1;
	}
	*s_r = arg->str;
	*len_r = arg->len;
	return 0;
}

int imap_arg_nstring(const struct imap_arg *arg, const char **s_r, size_t *len_r)
{
	if (arg->type == IMAP_ARG_NIL) {
		*s_r = NULL;
		*len_r = 0;
		return 0;
	}
	if (arg->type == IMAP_ARG_STRING ||
	    (arg->type == IMAP_ARG_LITERAL && !arg->binary)) {
		*s_r = arg->str;
		*len_r = arg->len;
		return 0;
	}
	return -1;
}

/* flag = "\" atom (system flags and extensions) / atom (keyword). */
static bool is_flag(const struct imap_arg *a)
{
	if (a->type != IMAP_ARG_ATOM || a->len == 0)
		return false;
	size_t i = a->str[0] == '\\' ? 1 : 0;
	if (i == a->len)
		return false;
	for (; i < a->len; i++)
		if (!atom_char((unsigned char)a->str[i]))
			return false;
	return true;
}

int imap_arg_flag_list(const struct imap_arg *args, uint32_t i)
{
	const struct imap_arg *l = &args[i];
	if (l->type != IMAP_ARG_LIST)
		return -1;
	for (uint32_t j = i + 1; j < l->end; j = args[j].end)
		if (!is_flag(&args[j]))
			return -1;
	return 0;
}

/* --- sequence sets --- */

/* seq-number: nz-number or "*".  Advances *pos. */
static int seq_number(const char *s, size_t len, size_t *pos, uint32_t *n_r)
{
	size_t i = *pos;
	if (i < len && s[i] == '*') {
		*n_r = IMAP_SEQ_STAR;
		*pos = i + 1;
		return 0;
	}
	if (i >= len || s[i] < '1' || s[i] > '9')
		return -1;
	uint64_t v = 0;
	while (i < len && s[i] >= '0' && s[i] <= '9') {
		v = v * 10 + (uint64_t)(s[i++] - '0');
		if (v > UINT32_MAX)
			return -1;
	}
	/* UINT32_MAX stands for "*"; 4294967295 itself (clients write
	 * 1:4294967295 for "every UID") becomes 4294967294, which no message
	 * reaches either: the store hands out UIDs below it. */
	if (v == UINT32_MAX)
		v = UINT32_MAX - 1;
	*n_r = (uint32_t)v;
	*pos = i;
	return 0;
}

int imap_seqset_parse(const char *s, size_t len, struct imap_seqset *set,
		      const char **error_r)
{
	size_t cap = 0;
	size_t i = 0;

	memset(set, 0, sizeof(*set));
	if (len == 1 && s[0] == '$') {
		set->saved = true;
		return 0;
	}
	if (len == 0) {
		*error_r = "Empty sequence set";
		return -1;
	}
	for (;;) {
		uint32_t lo, hi;
		if (seq_number(s, len, &i, &lo) < 0)
			goto bad;
		hi = lo;
		if (i < len && s[i] == ':') {
			i++;
			if (seq_number(s, len, &i, &hi) < 0)
				goto bad;
		}
		if (set->count == cap) {
			cap = cap ? cap * 2 : 4;
			set->ranges = xreallocarray(set->ranges, cap, sizeof(*set->ranges));
		}
		set->ranges[set->count].lo = MIN(lo, hi);
		set->ranges[set->count].hi = MAX(lo, hi);
		set->count++;
		if (i == len)
			return 0;
		if (s[i] != ',')
			goto bad;
		i++;
	}
bad:
	imap_seqset_free(set);
	*error_r = "Invalid sequence set";
	return -1;
}

void imap_seqset_free(struct imap_seqset *set)
{
	FREE(set->ranges);
	set->count = 0;
	set->saved = false;
}

/* --- fetch-att sections --- */

static bool eat(const char *s, size_t len, size_t *pos, const char *word)
{
	size_t n = strlen(word);
	if (len - *pos < n || !str_nieq(s + *pos, word, n))
		return false;
	*pos += n;
	return true;
}

static int number32(const char *s, size_t len, size_t *pos, uint32_t *n_r)
{
	size_t i = *pos;
	uint64_t v = 0;
	if (i >= len || s[i] < '0' || s[i] > '9')
		return -1;
	while (i < len && s[i] >= '0' && s[i] <= '9') {
		v = v * 10 + (uint64_t)(s[i++] - '0');
		if (v > UINT32_MAX)
			return -1;
	}
	*n_r = (uint32_t)v;
	*pos = i;
	return 0;
}

/* " (" field *(SP field) ")" after HEADER.FIELDS(.NOT). */
static int header_fields(const char *s, size_t len, size_t *pos,
			 struct imap_fetch_section *out)
{
	size_t i = *pos;
	if (len - i < 2 || s[i] != ' ' || s[i + 1] != '(')
		return -1;
	i += 2;
	for (;;) {
		size_t start, end;
		if (i < len && s[i] == '"') {
			start = ++i;
			while (i < len && s[i] != '"' && s[i] != '\\')
				i++;
			if (i >= len || s[i] != '"')
				return -1;
			end = i++;
		} else {
			start = i;
			while (i < len && atom_char((unsigned char)s[i]))
				i++;
			end = i;
		}
		if (end == start || out->nfields >= IMAP_SECTION_MAX_FIELDS)
			return -1;
		out->fields[out->nfields].s = s + start;
		out->fields[out->nfields].len = end - start;
		out->nfields++;
		if (i < len && s[i] == ')') {
			*pos = i + 1;
			return 0;
		}
		if (i >= len || s[i] != ' ')
			return -1;
		i++;
	}
}

int imap_fetch_section_parse(const char *s, size_t len, struct imap_fetch_section *out,
			     const char **error_r)
{
	size_t i = 0;

	memset(out, 0, sizeof(*out));
	if (eat(s, len, &i, "BINARY.SIZE[")) {
		out->kind = IMAP_FETCH_BINARY_SIZE;
	} else if (eat(s, len, &i, "BINARY.PEEK[")) {
		out->kind = IMAP_FETCH_BINARY;
		out->peek = true;
	} else if (eat(s, len, &i, "BINARY[")) {
		out->kind = IMAP_FETCH_BINARY;
	} else if (eat(s, len, &i, "BODY.PEEK[")) {
		out->peek = true;
	} else if (!eat(s, len, &i, "BODY[")) {
		*error_r = "Unknown fetch attribute";
		return -1;
	}
	/* part numbers */
	while (i < len && s[i] >= '0' && s[i] <= '9') {
		uint32_t n;
		if (number32(s, len, &i, &n) < 0 || n == 0 ||
		    out->nparts >= IMAP_SECTION_MAX_PARTS)
			goto bad;
		out->parts[out->nparts++] = n;
		if (i < len && s[i] == '.')
			i++;
		else
			break;
	}
	if (i < len && s[i] != ']') {
		if (out->kind != IMAP_FETCH_BODY)
			goto bad;
		if (out->nparts > 0 && s[i - 1] != '.')
			goto bad;
		if (eat(s, len, &i, "HEADER.FIELDS.NOT")) {
			out->spec = IMAP_SECTION_HEADER_FIELDS_NOT;
		} else if (eat(s, len, &i, "HEADER.FIELDS")) {
			out->spec = IMAP_SECTION_HEADER_FIELDS;
		} else if (eat(s, len, &i, "HEADER")) {
			out->spec = IMAP_SECTION_HEADER;
		} else if (eat(s, len, &i, "TEXT")) {
			out->spec = IMAP_SECTION_TEXT;
		} else if (out->nparts > 0 && eat(s, len, &i, "MIME")) {
			out->spec = IMAP_SECTION_MIME;
		} else {
			goto bad;
		}
		if ((out->spec == IMAP_SECTION_HEADER_FIELDS ||
		     out->spec == IMAP_SECTION_HEADER_FIELDS_NOT) &&
		    header_fields(s, len, &i, out) < 0)
			goto bad;
	} else if (out->nparts > 0 && s[i - 1] == '.') {
		goto bad;       /* "1.]" */
	}
	if (i >= len || s[i] != ']')
		goto bad;
	i++;
	if (i < len && s[i] == '<') {
		i++;
		if (out->kind == IMAP_FETCH_BINARY_SIZE ||
		    number32(s, len, &i, &out->partial_off) < 0 || i >= len || s[i] != '.')
			goto bad;
		i++;
		if (number32(s, len, &i, &out->partial_len) < 0 || out->partial_len == 0 ||
		    i >= len || s[i] != '>')
			goto bad;
		i++;
		out->partial = true;
	}
	if (i != len)
		goto bad;
	return 0;
bad:
	*error_r = "Invalid section";
	return -1;
}
