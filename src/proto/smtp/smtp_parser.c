/* smtp_parser.c - SMTP command lines: verb table, MAIL/RCPT/BDAT arguments.
 * See smtp_parser.h. */
#include "proto/smtp/smtp_parser.h"

#include <string.h>

#define R_UNKNOWN "500 5.5.2 Error: command not recognized"
#define R_MAIL_SYNTAX "501 5.5.4 Syntax: MAIL FROM:<address> [parameters]"
#define R_RCPT_SYNTAX "501 5.5.4 Syntax: RCPT TO:<address>"
#define R_PARAM_SYNTAX "501 5.5.4 Syntax error in parameters"
#define R_PARAM_DUP "501 5.5.4 Duplicate parameter"
#define R_PARAM_UNKNOWN "555 5.5.4 Unsupported parameter"
#define R_SIZE_BAD "501 5.5.4 Bad SIZE value"
#define R_BODY_BAD "501 5.5.4 Bad BODY value"
#define R_BODY_BINARY "555 5.5.4 BODY=BINARYMIME not supported"
#define R_SMTPUTF8_BAD "501 5.5.4 SMTPUTF8 takes no value"
#define R_SENDER_BAD "501 5.1.7 Bad sender address syntax"
#define R_RCPT_BAD "501 5.1.3 Bad recipient address syntax"
#define R_UTF8 "553 5.6.7 Non-ASCII address requires SMTPUTF8"
#define R_RET_BAD "501 5.5.4 Bad RET value (FULL or HDRS)"
#define R_AUTH_BAD "501 5.5.4 Bad AUTH value"
#define R_ENVID_BAD "501 5.5.4 Bad ENVID value"
#define R_NOTIFY_BAD "501 5.5.4 Bad NOTIFY value (NEVER, or SUCCESS, FAILURE, DELAY)"
#define R_ORCPT_BAD "501 5.5.4 Bad ORCPT value (addr-type;xtext)"
#define R_BDAT_SYNTAX "501 5.5.4 Syntax: BDAT <size> [LAST]"
#define R_HELO_BAD "501 5.5.4 Error: invalid character in HELO/EHLO name"
#define R_HELO_LONG "501 5.5.4 Error: HELO/EHLO name too long"

struct verb_def {
	struct smtp_verb_info info;
	const char *syntax;    /* reply for an argument error */
};

static const struct verb_def verbs[SMTP_VERB_COUNT] = {
	[SMTP_VERB_UNKNOWN] = {{"UNKNOWN", "unknown", SMTP_VERB_UNKNOWN, SMTP_ARG_ANY}, R_UNKNOWN},
	[SMTP_VERB_HELO] = {{"HELO", "helo", SMTP_VERB_HELO, SMTP_ARG_NEED},
			    "501 5.5.4 Syntax: HELO hostname"},
	[SMTP_VERB_EHLO] = {{"EHLO", "ehlo", SMTP_VERB_EHLO, SMTP_ARG_NEED},
			    "501 5.5.4 Syntax: EHLO hostname"},
	[SMTP_VERB_MAIL] = {{"MAIL", "mail", SMTP_VERB_MAIL, SMTP_ARG_NEED}, R_MAIL_SYNTAX},
	[SMTP_VERB_RCPT] = {{"RCPT", "rcpt", SMTP_VERB_RCPT, SMTP_ARG_NEED}, R_RCPT_SYNTAX},
	[SMTP_VERB_DATA] = {{"DATA", "data", SMTP_VERB_DATA, SMTP_ARG_NONE},
			    "501 5.5.4 Syntax: DATA"},
	[SMTP_VERB_BDAT] = {{"BDAT", "bdat", SMTP_VERB_BDAT, SMTP_ARG_NEED}, R_BDAT_SYNTAX},
	[SMTP_VERB_RSET] = {{"RSET", "rset", SMTP_VERB_RSET, SMTP_ARG_NONE},
			    "501 5.5.4 Syntax: RSET"},
	[SMTP_VERB_NOOP] = {{"NOOP", "noop", SMTP_VERB_NOOP, SMTP_ARG_ANY}, NULL},
	[SMTP_VERB_QUIT] = {{"QUIT", "quit", SMTP_VERB_QUIT, SMTP_ARG_NONE},
			    "501 5.5.4 Syntax: QUIT"},
	[SMTP_VERB_VRFY] = {{"VRFY", "vrfy", SMTP_VERB_VRFY, SMTP_ARG_NEED},
			    "501 5.5.4 Syntax: VRFY address"},
	[SMTP_VERB_EXPN] = {{"EXPN", "expn", SMTP_VERB_EXPN, SMTP_ARG_ANY}, NULL},
	[SMTP_VERB_HELP] = {{"HELP", "help", SMTP_VERB_HELP, SMTP_ARG_ANY}, NULL},
	[SMTP_VERB_STARTTLS] = {{"STARTTLS", "starttls", SMTP_VERB_STARTTLS, SMTP_ARG_NONE},
				"501 5.5.4 Syntax: STARTTLS"},
	[SMTP_VERB_AUTH] = {{"AUTH", "auth", SMTP_VERB_AUTH, SMTP_ARG_ANY}, NULL},
};

const struct smtp_verb_info *smtp_verb_info(enum smtp_verb v)
{
	if ((unsigned)v >= SMTP_VERB_COUNT)
		v = SMTP_VERB_UNKNOWN;
	return &verbs[v].info;
}

static char ascii_upper(char ch)
{
	return ch >= 'a' && ch <= 'z' ? (char)(ch - 'a' + 'A') : ch;
}

static bool is_alpha(char ch)
{
	return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z');
}

static bool is_digit(char ch)
{
	return ch >= '0' && ch <= '9';
}

/* s[0..len) equals the upper-case word w, ASCII case-insensitively. */
static bool word_ieq(const char *s, size_t len, const char *w)
{
	size_t wl = strlen(w);
	if (len != wl)
		return false;
	for (size_t i = 0; i < len; i++)
		if (ascii_upper(s[i]) != w[i])
			return false;
	return true;
}

/* s starts with the upper-case prefix p, ASCII case-insensitively. */
static bool prefix_ieq(const char *s, size_t len, const char *p)
{
	size_t pl = strlen(p);
	return len >= pl && word_ieq(s, pl, p);
}

int smtp_parse_command(const char *line, size_t len, struct smtp_command *cmd,
		       const char **reply_r)
{
	size_t i = 0;

	cmd->verb = SMTP_VERB_UNKNOWN;
	cmd->arg = line + len;
	cmd->arg_len = 0;

	while (i < len && is_alpha(line[i]))
		i++;
	size_t vlen = i;
	if (vlen == 0 || (i < len && line[i] != ' ')) {
		*reply_r = R_UNKNOWN;
		return -1;
	}
	enum smtp_verb verb = SMTP_VERB_UNKNOWN;
	for (int v = 1; v < SMTP_VERB_COUNT; v++) {
		if (word_ieq(line, vlen, verbs[v].info.name)) {
			verb = (enum smtp_verb)v;
			break;
		}
	}
	if (verb == SMTP_VERB_UNKNOWN) {
		*reply_r = R_UNKNOWN;
		return -1;
	}
	cmd->verb = verb;

	while (i < len && line[i] == ' ')
		i++;
	size_t end = len;
	while (end > i && (line[end - 1] == ' ' || line[end - 1] == '\t'))
		end--;
	cmd->arg = line + i;
	cmd->arg_len = end - i;

	unsigned rule = verbs[verb].info.args;
	if (((rule & SMTP_ARG_NONE) && cmd->arg_len > 0) ||
	    ((rule & SMTP_ARG_NEED) && cmd->arg_len == 0)) {
		*reply_r = verbs[verb].syntax;
		return -1;
	}
	return 0;
}

int smtp_parse_helo(const char *arg, size_t len, char *out, size_t outsz, const char **reply_r)
{
	size_t n = 0;
	while (n < len && arg[n] != ' ' && arg[n] != '\t')
		n++;
	if (n == 0) {
		*reply_r = "501 5.5.4 Syntax: EHLO hostname";
		return -1;
	}
	if (n > SMTP_HELO_MAX || n >= outsz) {
		*reply_r = R_HELO_LONG;
		return -1;
	}
	/* It ends up in the Received header: no control characters. */
	for (size_t i = 0; i < n; i++) {
		unsigned char ch = (unsigned char)arg[i];
		if (ch < 33 || ch == 127) {
			*reply_r = R_HELO_BAD;
			return -1;
		}
	}
	memcpy(out, arg, n);
	out[n] = '\0';
	return 0;
}

/* 1 to SMTP_NUMBER_DIGITS_MAX digits, saturating at UINT64_MAX. */
static bool parse_number(const char *s, size_t len, uint64_t *v_r)
{
	uint64_t v = 0;
	if (len == 0 || len > SMTP_NUMBER_DIGITS_MAX)
		return false;
	for (size_t i = 0; i < len; i++) {
		if (!is_digit(s[i]))
			return false;
		unsigned d = (unsigned)(s[i] - '0');
		if (v > (UINT64_MAX - d) / 10)
			v = UINT64_MAX;
		else
			v = v * 10 + d;
	}
	*v_r = v;
	return true;
}

/* One ESMTP parameter, as found by next_param(). */
struct param {
	const char *key;
	size_t key_len;
	const char *value;     /* NULL when there is no '=' */
	size_t value_len;
};

/* Parameters follow the path as (SP+ param)*: esmtp-keyword =
 * (ALPHA / DIGIT) *(ALPHA / DIGIT / "-"), esmtp-value = 1*(%d33-60 /
 * %d62-126) (RFC 5321 4.1.2; UTF-8 octets allowed as in RFC 6531).
 * Returns 1 with *p filled, 0 at the end, -1 on a syntax error. */
static int next_param(const char *s, size_t len, size_t *pos, struct param *p)
{
	size_t i = *pos;
	if (i >= len)
		return 0;
	if (s[i] != ' ')
		return -1;
	while (i < len && s[i] == ' ')
		i++;
	if (i >= len)
		return 0;
	p->key = s + i;
	if (!is_alpha(s[i]) && !is_digit(s[i]))
		return -1;
	while (i < len && (is_alpha(s[i]) || is_digit(s[i]) || s[i] == '-'))
		i++;
	p->key_len = (size_t)(s + i - p->key);
	p->value = NULL;
	p->value_len = 0;
	if (i < len && s[i] == '=') {
		i++;
		p->value = s + i;
		while (i < len) {
			unsigned char ch = (unsigned char)s[i];
			if (ch <= 32 || ch == '=' || ch == 127)
				break;
			i++;
		}
		p->value_len = (size_t)(s + i - p->value);
		if (p->value_len == 0)
			return -1;
	}
	if (i < len && s[i] != ' ')
		return -1;
	*pos = i;
	return 1;
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;   /* RFC 3461 4: hexchar is upper case only */
}

/* xtext (RFC 3461 4): chars 33-126 except '+' and '=', or "+HH".  Decodes
 * v[0..len) into out (outsz > len), NUL-terminated.  Rejects a decoded
 * NUL or control character (they would reach the delivery-status part),
 * and non-ASCII unless allow_utf8 (RFC 6533 utf-8-addr-xtext). */
static bool xtext_decode(const char *v, size_t len, bool allow_utf8, char *out, size_t outsz)
{
	size_t o = 0;
	for (size_t i = 0; i < len; i++) {
		unsigned char ch = (unsigned char)v[i];
		if (ch == '+') {
			if (len - i < 3)
				return false;
			int h = hexval(v[i + 1]), l = hexval(v[i + 2]);
			if (h < 0 || l < 0)
				return false;
			ch = (unsigned char)(h * 16 + l);
			i += 2;
			if (ch < 32 || ch == 127)
				return false;
		} else if (ch >= 0x80) {
			if (!allow_utf8)
				return false;
		} else if (ch < 33 || ch > 126 || ch == '=') {
			return false;
		}
		if (o + 1 >= outsz)
			return false;
		out[o++] = (char)ch;
	}
	out[o] = '\0';
	return o > 0;
}

/* NOTIFY=NEVER or a comma list of SUCCESS, FAILURE, DELAY (RFC 3461 4.1). */
static bool parse_notify(const char *v, size_t len, unsigned *out)
{
	unsigned bits = 0;
	size_t i = 0;
	while (i <= len) {
		size_t j = i;
		while (j < len && v[j] != ',')
			j++;
		unsigned b;
		if (word_ieq(v + i, j - i, "NEVER"))
			b = SMTP_NOTIFY_NEVER;
		else if (word_ieq(v + i, j - i, "SUCCESS"))
			b = SMTP_NOTIFY_SUCCESS;
		else if (word_ieq(v + i, j - i, "FAILURE"))
			b = SMTP_NOTIFY_FAILURE;
		else if (word_ieq(v + i, j - i, "DELAY"))
			b = SMTP_NOTIFY_DELAY;
		else
			return false;
		if (bits & b)
			return false;
		bits |= b;
		i = j + 1;
	}
	if ((bits & SMTP_NOTIFY_NEVER) && bits != SMTP_NOTIFY_NEVER)
		return false;
	*out = bits;
	return true;
}

/* ORCPT=addr-type;xtext (RFC 3461 4.2); addr-type is an atom, in practice
 * rfc822 or utf-8 (RFC 6533, which also allows raw UTF-8 in the address
 * part under SMTPUTF8). */
static bool parse_orcpt(const char *v, size_t len, bool allow_utf8, char *out, size_t outsz)
{
	if (len > SMTP_ORCPT_MAX)
		return false;
	size_t semi = 0;
	while (semi < len && v[semi] != ';')
		semi++;
	if (semi == 0 || semi + 1 >= len)
		return false;
	for (size_t i = 0; i < semi; i++)
		if (!is_alpha(v[i]) && !is_digit(v[i]) && v[i] != '-')
			return false;
	bool utf8_type = word_ieq(v, semi, "UTF-8");
	memcpy(out, v, semi + 1);
	return xtext_decode(v + semi + 1, len - semi - 1, allow_utf8 && utf8_type, out + semi + 1,
			    outsz - semi - 1);
}

/* Skip "FROM:" / "TO:" and at most one space after the colon; the path
 * must start right there. */
static bool skip_keyword(const char *arg, size_t len, const char *kw, size_t *pos)
{
	if (!prefix_ieq(arg, len, kw))
		return false;
	size_t i = strlen(kw);
	if (i < len && arg[i] == ' ')
		i++;
	if (i >= len || arg[i] != '<')
		return false;
	*pos = i;
	return true;
}

int smtp_parse_mail(const char *arg, size_t len, struct smtp_mail_args *m, const char **reply_r)
{
	size_t pos;
	enum addr_error aerr;
	const char *atext;
	bool seen_size = false, seen_body = false, seen_utf8 = false, seen_ret = false;
	bool seen_auth = false;

	memset(m, 0, sizeof(*m));
	if (!skip_keyword(arg, len, "FROM:", &pos)) {
		*reply_r = R_MAIL_SYNTAX;
		return -1;
	}
	/* Parse with UTF-8 allowed: SMTPUTF8 comes after the path. */
	long n = addr_parse_path(arg + pos, len - pos, true, &m->from, &aerr, &atext);
	if (n < 0 || m->from.postmaster || m->from.trailing_dot) {
		*reply_r = R_SENDER_BAD;
		return -1;
	}
	pos += (size_t)n;

	struct param p;
	int rc;
	while ((rc = next_param(arg, len, &pos, &p)) == 1) {
		if (word_ieq(p.key, p.key_len, "SIZE")) {
			if (seen_size) {
				*reply_r = R_PARAM_DUP;
				return -1;
			}
			seen_size = true;
			if (p.value == NULL || !parse_number(p.value, p.value_len, &m->size)) {
				*reply_r = R_SIZE_BAD;
				return -1;
			}
			m->has_size = true;
		} else if (word_ieq(p.key, p.key_len, "BODY")) {
			if (seen_body) {
				*reply_r = R_PARAM_DUP;
				return -1;
			}
			seen_body = true;
			if (p.value != NULL && word_ieq(p.value, p.value_len, "7BIT")) {
				m->body = SMTP_BODY_7BIT;
			} else if (p.value != NULL && word_ieq(p.value, p.value_len, "8BITMIME")) {
				m->body = SMTP_BODY_8BITMIME;
			} else if (p.value != NULL &&
				   word_ieq(p.value, p.value_len, "BINARYMIME")) {
				*reply_r = R_BODY_BINARY;
				return -1;
			} else {
				*reply_r = R_BODY_BAD;
				return -1;
			}
		} else if (word_ieq(p.key, p.key_len, "SMTPUTF8")) {
			if (seen_utf8) {
				*reply_r = R_PARAM_DUP;
				return -1;
			}
			seen_utf8 = true;
			if (p.value != NULL) {
				*reply_r = R_SMTPUTF8_BAD;
				return -1;
			}
			m->smtputf8 = true;
		} else if (word_ieq(p.key, p.key_len, "RET")) {
			if (seen_ret) {
				*reply_r = R_PARAM_DUP;
				return -1;
			}
			seen_ret = true;
			if (p.value != NULL && word_ieq(p.value, p.value_len, "FULL")) {
				m->ret = SMTP_RET_FULL;
			} else if (p.value != NULL && word_ieq(p.value, p.value_len, "HDRS")) {
				m->ret = SMTP_RET_HDRS;
			} else {
				*reply_r = R_RET_BAD;
				return -1;
			}
		} else if (word_ieq(p.key, p.key_len, "ENVID")) {
			if (m->has_envid) {
				*reply_r = R_PARAM_DUP;
				return -1;
			}
			if (p.value == NULL || p.value_len > SMTP_ENVID_MAX ||
			    !xtext_decode(p.value, p.value_len, false, m->envid, sizeof m->envid)) {
				*reply_r = R_ENVID_BAD;
				return -1;
			}
			m->has_envid = true;
		} else if (word_ieq(p.key, p.key_len, "AUTH")) {
			/* RFC 4954 5: the identity the client says submitted the
			 * message.  We do not trust other servers' claims (RFC 4954
			 * 5 allows that), so the value is checked, not kept. */
			char tmp[ADDR_PATH_MAX * 2 + 1];
			if (seen_auth) {
				*reply_r = R_PARAM_DUP;
				return -1;
			}
			seen_auth = true;
			if (p.value == NULL || (!word_ieq(p.value, p.value_len, "<>") &&
						(p.value_len > ADDR_PATH_MAX * 2 ||
						 !xtext_decode(p.value, p.value_len, true, tmp,
							       sizeof tmp)))) {
				*reply_r = R_AUTH_BAD;
				return -1;
			}
		} else {
			*reply_r = R_PARAM_UNKNOWN;
			return -1;
		}
	}
	if (rc < 0) {
		*reply_r = R_PARAM_SYNTAX;
		return -1;
	}
	if (m->from.utf8 && !m->smtputf8) {
		*reply_r = R_UTF8;
		return -1;
	}
	return 0;
}

int smtp_parse_rcpt(const char *arg, size_t len, bool allow_utf8, struct smtp_rcpt_args *r,
		    const char **reply_r)
{
	size_t pos;
	enum addr_error aerr;
	const char *atext;

	memset(r, 0, sizeof(*r));
	if (!skip_keyword(arg, len, "TO:", &pos)) {
		*reply_r = R_RCPT_SYNTAX;
		return -1;
	}
	long n = addr_parse_path(arg + pos, len - pos, true, &r->to, &aerr, &atext);
	if (n < 0 || r->to.null || r->to.trailing_dot) {
		*reply_r = R_RCPT_BAD;
		return -1;
	}
	pos += (size_t)n;

	struct param p;
	int rc;
	bool seen_notify = false;
	while ((rc = next_param(arg, len, &pos, &p)) == 1) {
		if (word_ieq(p.key, p.key_len, "NOTIFY")) {
			if (seen_notify) {
				*reply_r = R_PARAM_DUP;
				return -1;
			}
			seen_notify = true;
			if (p.value == NULL || !parse_notify(p.value, p.value_len, &r->notify)) {
				*reply_r = R_NOTIFY_BAD;
				return -1;
			}
		} else if (word_ieq(p.key, p.key_len, "ORCPT")) {
			if (r->has_orcpt) {
				*reply_r = R_PARAM_DUP;
				return -1;
			}
			if (p.value == NULL || !parse_orcpt(p.value, p.value_len, allow_utf8, r->orcpt,
							    sizeof r->orcpt)) {
				*reply_r = R_ORCPT_BAD;
				return -1;
			}
			r->has_orcpt = true;
		} else {
			*reply_r = R_PARAM_UNKNOWN;
			return -1;
		}
	}
	if (rc < 0) {
		*reply_r = R_PARAM_SYNTAX;
		return -1;
	}
	if (r->to.utf8 && !allow_utf8) {
		*reply_r = R_UTF8;
		return -1;
	}
	return 0;
}

int smtp_parse_bdat(const char *arg, size_t len, uint64_t *size_r, bool *last_r,
		    const char **reply_r)
{
	size_t i = 0;
	while (i < len && is_digit(arg[i]))
		i++;
	if (!parse_number(arg, i, size_r)) {
		*reply_r = R_BDAT_SYNTAX;
		return -1;
	}
	*last_r = false;
	size_t j = i;
	while (j < len && arg[j] == ' ')
		j++;
	if (j == len)
		return 0;
	if (j == i || !word_ieq(arg + j, len - j, "LAST")) {
		*reply_r = R_BDAT_SYNTAX;
		return -1;
	}
	*last_r = true;
	return 0;
}
