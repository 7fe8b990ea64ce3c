/* smtp_reply.c - SMTP reply accumulator, one-line rendering, DSN status,
 * EHLO capabilities.  See smtp_reply.h. */
#include "proto/smtp/smtp_reply.h"

#include <assert.h>
#include <string.h>

#include "mail/mutf7.h"

#define E_LONG "reply line too long"
#define E_CODE "reply line without a valid reply code"
#define E_SEP "reply code not followed by '-', ' ' or the end of the line"
#define E_MISMATCH "reply line code differs from the first line's"
#define E_CHAR "NUL or LF in reply line"
#define E_LINES "reply has too many lines"
#define E_TEXT "reply text too long"

static_assert(SMTP_REPLY_ENH_SIZE > 9, "room for an enhanced code x.yyy.zzz");

void smtp_reply_init(struct smtp_reply *r)
{
	r->code = 0;
	r->enh[0] = '\0';
	buf_init(&r->text, SMTP_REPLY_TEXT_MAX);
	r->nlines = 0;
	r->state = SMTP_REPLY_STATE_START;
}

void smtp_reply_reset(struct smtp_reply *r)
{
	r->code = 0;
	r->enh[0] = '\0';
	buf_reset(&r->text);
	r->nlines = 0;
	r->state = SMTP_REPLY_STATE_START;
}

void smtp_reply_free(struct smtp_reply *r)
{
	if (r == NULL)
		return;
	buf_free(&r->text);
	smtp_reply_reset(r);
}

static bool is_digit(char ch)
{
	return ch >= '0' && ch <= '9';
}

static bool is_blank(char ch)
{
	return ch == ' ' || ch == '\t';
}

static char ascii_upper(char ch)
{
	return ch >= 'a' && ch <= 'z' ? (char)(ch - 'a' + 'A') : ch;
}

/* s[0..len) equals the upper-case word w, ASCII case-insensitively. */
static bool word_ieq(const char *s, size_t len, const char *w)
{
	if (len != strlen(w))
		return false;
	for (size_t i = 0; i < len; i++)
		if (ascii_upper(s[i]) != w[i])
			return false;
	return true;
}

/* Length of the RFC 3463 status code at s[0..len) ("5.1.1", 5 to 9 bytes)
 * when it is followed by a space or the end, else 0 (RFC 2034 4). */
static size_t enh_len(const char *s, size_t len)
{
	if (len < 5 || (s[0] != '2' && s[0] != '4' && s[0] != '5') || s[1] != '.')
		return 0;
	size_t i = 2;
	for (int part = 0; part < 2; part++) {
		size_t start = i;
		while (i < len && i - start < 4 && is_digit(s[i]))
			i++;
		size_t n = i - start;
		if (n < 1 || n > 3)
			return 0;
		if (part == 0) {
			if (i >= len || s[i] != '.')
				return 0;
			i++;
		}
	}
	if (i < len && s[i] != ' ')
		return 0;
	return i;
}

/* Code of the line: 3 digits, first 2-5, second 0-5; -1 if none. */
static int line_code(const char *line, size_t len)
{
	if (len < 3 || line[0] < '2' || line[0] > '5' || line[1] < '0' || line[1] > '5' ||
	    !is_digit(line[2]))
		return -1;
	return (line[0] - '0') * 100 + (line[1] - '0') * 10 + (line[2] - '0');
}

static int fail(struct smtp_reply *r, const char **error_r, const char *error)
{
	r->state = SMTP_REPLY_STATE_FAILED;
	*error_r = error;
	return -1;
}

int smtp_reply_feed(struct smtp_reply *r, const char *line, size_t len, const char **error_r)
{
	assert(r->state == SMTP_REPLY_STATE_START || r->state == SMTP_REPLY_STATE_MORE);

	if (len > SMTP_REPLY_LINE_MAX)
		return fail(r, error_r, E_LONG);
	int code = line_code(line, len);
	if (code < 0)
		return fail(r, error_r, E_CODE);
	if (len > 3 && line[3] != '-' && line[3] != ' ')
		return fail(r, error_r, E_SEP);
	if (r->state == SMTP_REPLY_STATE_MORE && code != r->code)
		return fail(r, error_r, E_MISMATCH);
	if (memchr(line, '\0', len) != NULL || memchr(line, '\n', len) != NULL)
		return fail(r, error_r, E_CHAR);
	if (r->nlines >= SMTP_REPLY_LINES_MAX)
		return fail(r, error_r, E_LINES);

	const char *text = len > 3 ? line + 4 : line + len;
	size_t text_len = len > 3 ? len - 4 : 0;
	size_t sep = r->nlines > 0 ? 1 : 0;
	if (buf_room(&r->text) < sep + text_len)
		return fail(r, error_r, E_TEXT);
	buf_append(&r->text, "\n", sep);
	buf_append(&r->text, text, text_len);

	if (r->nlines == 0) {
		r->code = code;
		size_t n = enh_len(text, text_len);
		memcpy(r->enh, text, n);
		r->enh[n] = '\0';
	}
	r->nlines++;
	if (len > 3 && line[3] == '-') {
		r->state = SMTP_REPLY_STATE_MORE;
		return 0;
	}
	r->state = SMTP_REPLY_STATE_DONE;
	return 1;
}

/* The line of text[0..len) that starts at *pos (<= len), up to the next
 * '\n' or the end; *pos moves past it and its '\n'.  The caller counts
 * the lines (nlines). */
static const char *next_line(const char *text, size_t len, size_t *pos, size_t *n_r)
{
	const char *start = text + *pos;
	const char *nl = memchr(start, '\n', len - *pos);
	size_t n = nl != NULL ? (size_t)(nl - start) : len - *pos;
	*n_r = n;
	*pos = nl != NULL ? *pos + n + 1 : len;
	return start;
}

/* Output cursor of smtp_reply_oneline(). */
struct out {
	char *p;
	size_t len;
	size_t room;           /* bytes before the NUL */
	bool full;
};

static void out_put(struct out *o, const char *s, size_t n)
{
	if (o->full || n > o->room - o->len) {
		o->full = true;
		return;
	}
	memcpy(o->p + o->len, s, n);
	o->len += n;
}

/* Append s[0..len) with control characters and invalid UTF-8 as '?'. */
static void out_text(struct out *o, const char *s, size_t len)
{
	size_t i = 0;
	while (i < len && !o->full) {
		unsigned char c = (unsigned char)s[i];
		size_t n = mutf7_utf8_char_len(s + i, len - i);
		bool ctl = c < 0x20 || c == 0x7f ||
			   (n == 2 && c == 0xc2 && (unsigned char)s[i + 1] < 0xa0);
		if (n == 0 || ctl) {
			out_put(o, "?", 1);
			i += n == 0 ? 1 : n;
		} else {
			out_put(o, s + i, n);
			i += n;
		}
	}
}

void smtp_reply_oneline(const struct smtp_reply *r, char *out, size_t outsz)
{
	if (outsz == 0)
		return;
	out[0] = '\0';
	if (r->nlines == 0)
		return;

	struct out o = {out, 0, outsz - 1, false};
	char code[4] = {(char)('0' + r->code / 100), (char)('0' + r->code / 10 % 10),
			(char)('0' + r->code % 10), '\0'};
	out_put(&o, code, 3);

	size_t enh = strlen(r->enh);
	size_t pos = 0;
	for (size_t i = 0; i < r->nlines && !o.full; i++) {
		size_t n;
		const char *line = next_line(r->text.data, r->text.len, &pos, &n);
		while (n > 0 && is_blank(line[0]))
			line++, n--;
		if (i > 0 && enh > 0 && enh_len(line, n) == enh &&
		    memcmp(line, r->enh, enh) == 0) {
			line += enh;
			n -= enh;
			while (n > 0 && is_blank(line[0]))
				line++, n--;
		}
		while (n > 0 && is_blank(line[n - 1]))
			n--;
		if (n == 0)
			continue;
		out_put(&o, " ", 1);
		out_text(&o, line, n);
	}
	if (o.full)
		while (o.len > 3 && out[o.len - 1] == ' ')
			o.len--;
	out[o.len] = '\0';
}

enum smtp_reply_class smtp_reply_class(const struct smtp_reply *r)
{
	assert(r->code >= 200 && r->code <= 599);
	switch (r->code / 100) {
	case 2:
		return SMTP_REPLY_OK;
	case 3:
		return SMTP_REPLY_MORE;
	case 4:
		return SMTP_REPLY_TEMP;
	default:
		return SMTP_REPLY_PERM;
	}
}

void smtp_reply_status(const struct smtp_reply *r, char out[SMTP_REPLY_ENH_SIZE])
{
	assert(r->code >= 200 && r->code <= 599);
	char class = (char)('0' + r->code / 100);
	if (r->enh[0] != '\0' && r->enh[0] == class) {
		memcpy(out, r->enh, strlen(r->enh) + 1);
		return;
	}
	memcpy(out, "X.0.0", 6);
	out[0] = class == '3' ? '2' : class;
}

enum cap {
	CAP_PIPELINING,
	CAP_8BITMIME,
	CAP_SMTPUTF8,
	CAP_STARTTLS,
	CAP_CHUNKING,
	CAP_DSN,
	CAP_ENHANCEDSTATUSCODES,
	CAP_BINARYMIME,
	CAP_REQUIRETLS,
	CAP_SIZE,
	CAP_AUTH,
};

static const struct {
	const char *name;
	enum cap cap;
} cap_names[] = {
	{"PIPELINING", CAP_PIPELINING},
	{"8BITMIME", CAP_8BITMIME},
	{"SMTPUTF8", CAP_SMTPUTF8},
	{"STARTTLS", CAP_STARTTLS},
	{"CHUNKING", CAP_CHUNKING},
	{"DSN", CAP_DSN},
	{"ENHANCEDSTATUSCODES", CAP_ENHANCEDSTATUSCODES},
	{"BINARYMIME", CAP_BINARYMIME},
	{"REQUIRETLS", CAP_REQUIRETLS},
	{"SIZE", CAP_SIZE},
	{"AUTH", CAP_AUTH},
};

static const struct {
	const char *name;
	unsigned bit;
} auth_names[] = {
	{"PLAIN", SMTP_AUTH_PLAIN},
	{"LOGIN", SMTP_AUTH_LOGIN},
	{"CRAM-MD5", SMTP_AUTH_CRAM_MD5},
	{"SCRAM-SHA-1", SMTP_AUTH_SCRAM_SHA_1},
	{"SCRAM-SHA-256", SMTP_AUTH_SCRAM_SHA_256},
	{"SCRAM-SHA-256-PLUS", SMTP_AUTH_SCRAM_SHA_256_PLUS},
	{"XOAUTH2", SMTP_AUTH_XOAUTH2},
	{"OAUTHBEARER", SMTP_AUTH_OAUTHBEARER},
	{"EXTERNAL", SMTP_AUTH_EXTERNAL},
};

/* The next blank-separated word of s[0..len) from *pos; false at the end. */
static bool next_word(const char *s, size_t len, size_t *pos, const char **w_r, size_t *n_r)
{
	size_t i = *pos;
	while (i < len && is_blank(s[i]))
		i++;
	if (i == len)
		return false;
	size_t start = i;
	while (i < len && !is_blank(s[i]))
		i++;
	*w_r = s + start;
	*n_r = i - start;
	*pos = i;
	return true;
}

/* SIZE's number: 1 to 20 digits without overflow, else 0. */
static uint64_t parse_size(const char *s, size_t len)
{
	uint64_t v = 0;
	if (len == 0 || len > 20)
		return 0;
	for (size_t i = 0; i < len; i++) {
		if (!is_digit(s[i]))
			return 0;
		unsigned d = (unsigned)(s[i] - '0');
		if (v > (UINT64_MAX - d) / 10)
			return 0;
		v = v * 10 + d;
	}
	return v;
}

static unsigned parse_auth(const char *s, size_t len)
{
	unsigned bits = 0;
	size_t pos = 0;
	const char *w;
	size_t n;
	while (next_word(s, len, &pos, &w, &n)) {
		for (size_t k = 0; k < sizeof(auth_names) / sizeof(auth_names[0]); k++) {
			if (word_ieq(w, n, auth_names[k].name)) {
				bits |= auth_names[k].bit;
				break;
			}
		}
	}
	return bits;
}

static void caps_line(const char *line, size_t len, struct smtp_caps *caps)
{
	size_t i = 0;
	while (i < len && is_blank(line[i]))
		i++;
	size_t start = i;
	while (i < len && !is_blank(line[i]) && line[i] != '=')
		i++;
	const char *kw = line + start;
	size_t kw_len = i - start;
	if (i < len)
		i++; /* the blank or '=' after the keyword */
	const char *params = line + i;
	size_t params_len = len - i;

	for (size_t k = 0; k < sizeof(cap_names) / sizeof(cap_names[0]); k++) {
		if (!word_ieq(kw, kw_len, cap_names[k].name))
			continue;
		switch (cap_names[k].cap) {
		case CAP_PIPELINING:
			caps->pipelining = true;
			break;
		case CAP_8BITMIME:
			caps->eightbitmime = true;
			break;
		case CAP_SMTPUTF8:
			caps->smtputf8 = true;
			break;
		case CAP_STARTTLS:
			caps->starttls = true;
			break;
		case CAP_CHUNKING:
			caps->chunking = true;
			break;
		case CAP_DSN:
			caps->dsn = true;
			break;
		case CAP_ENHANCEDSTATUSCODES:
			caps->enhancedstatuscodes = true;
			break;
		case CAP_BINARYMIME:
			caps->binarymime = true;
			break;
		case CAP_REQUIRETLS:
			caps->requiretls = true;
			break;
		case CAP_SIZE: {
			size_t pos = 0;
			const char *w = NULL;
			size_t n = 0;
			caps->size_given = true;
			caps->size = next_word(params, params_len, &pos, &w, &n) ?
					     parse_size(w, n) : 0;
			break;
		}
		case CAP_AUTH:
			caps->auth |= parse_auth(params, params_len);
			break;
		}
		return;
	}
}

void smtp_caps_parse(const struct smtp_reply *ehlo, struct smtp_caps *caps)
{
	memset(caps, 0, sizeof(*caps));
	if (ehlo->code != 250 || ehlo->nlines == 0)
		return;
	size_t pos = 0;
	for (size_t i = 0; i < ehlo->nlines; i++) {
		size_t n;
		const char *line = next_line(ehlo->text.data, ehlo->text.len, &pos, &n);
		if (i > 0)
			caps_line(line, n, caps);
	}
}
