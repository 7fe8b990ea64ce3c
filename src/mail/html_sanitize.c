/* html_sanitize.c - HTML mail made safe for the webmail; see html_sanitize.h.
 *
 * Four steps: the input is copied as valid UTF-8 without NULs (clean());
 * a cheap scan finds where the tag and attribute caps would be passed and
 * the copy is cut there (prescan()); libxml2 builds the tree; the tree is
 * walked through its parent links (no stack but the one of elements we
 * wrote, capped) and every byte of output comes from emit_*(), which check
 * the output budget.  The budget always keeps room for the end tags of the
 * open elements and the truncation mark, so a cut output is well-formed. */
#include "mail/html_sanitize.h"

#include <assert.h>
#include <libxml/HTMLparser.h>
#include <libxml/tree.h>
#include <stdint.h>
#include <string.h>

#include "core/util.h"
#include "mail/mutf7.h"

static const char REPL[] = "\xef\xbf\xbd"; /* U+FFFD */
static const char MARK[] = HTML_SANITIZE_TRUNCATED_MARK;

/* ---- the allowlists ---- */

static const char *const a_a[] = {"href", NULL};
static const char *const a_img[] = {"src", "alt", "width", "height", "align", "border", NULL};
static const char *const a_table[] = {"width", "height", "align", "bgcolor", "border",
				      "cellpadding", "cellspacing", NULL};
static const char *const a_tpart[] = {"align", "valign", "bgcolor", "height", NULL};
static const char *const a_cell[] = {"colspan", "rowspan", "align", "valign", "width",
				     "height", "bgcolor", "nowrap", NULL};
static const char *const a_col[] = {"span", "width", "align", "valign", NULL};
static const char *const a_font[] = {"color", "face", "size", NULL};
static const char *const a_align[] = {"align", NULL};
static const char *const a_hr[] = {"align", "width", "size", "noshade", NULL};
static const char *const a_ol[] = {"start", "type", NULL};
static const char *const a_ul[] = {"type", NULL};
static const char *const a_li[] = {"value", "type", NULL};
static const char *const a_global[] = {"dir", "lang", "title", NULL};

enum elem_kind { E_ALLOW, E_DROP };

struct elem {
	const char *name;
	enum elem_kind kind;
	bool empty; /* a void element: no end tag */
	const char *const *attrs;
};

static const struct elem elems[] = {
	{"p", E_ALLOW, false, a_align}, {"br", E_ALLOW, true, NULL},
	{"div", E_ALLOW, false, a_align}, {"span", E_ALLOW, false, NULL},
	{"a", E_ALLOW, false, a_a}, {"b", E_ALLOW, false, NULL},
	{"i", E_ALLOW, false, NULL}, {"u", E_ALLOW, false, NULL},
	{"s", E_ALLOW, false, NULL}, {"em", E_ALLOW, false, NULL},
	{"strong", E_ALLOW, false, NULL}, {"small", E_ALLOW, false, NULL},
	{"big", E_ALLOW, false, NULL}, {"sub", E_ALLOW, false, NULL},
	{"sup", E_ALLOW, false, NULL}, {"blockquote", E_ALLOW, false, NULL},
	{"pre", E_ALLOW, false, NULL}, {"code", E_ALLOW, false, NULL},
	{"hr", E_ALLOW, true, a_hr}, {"h1", E_ALLOW, false, a_align},
	{"h2", E_ALLOW, false, a_align}, {"h3", E_ALLOW, false, a_align},
	{"h4", E_ALLOW, false, a_align}, {"h5", E_ALLOW, false, a_align},
	{"h6", E_ALLOW, false, a_align}, {"ul", E_ALLOW, false, a_ul},
	{"ol", E_ALLOW, false, a_ol}, {"li", E_ALLOW, false, a_li},
	{"dl", E_ALLOW, false, NULL}, {"dt", E_ALLOW, false, NULL},
	{"dd", E_ALLOW, false, NULL}, {"table", E_ALLOW, false, a_table},
	{"thead", E_ALLOW, false, a_tpart}, {"tbody", E_ALLOW, false, a_tpart},
	{"tfoot", E_ALLOW, false, a_tpart}, {"tr", E_ALLOW, false, a_tpart},
	{"td", E_ALLOW, false, a_cell}, {"th", E_ALLOW, false, a_cell},
	{"caption", E_ALLOW, false, a_align}, {"colgroup", E_ALLOW, false, a_col},
	{"col", E_ALLOW, true, a_col}, {"img", E_ALLOW, true, a_img},
	{"font", E_ALLOW, false, a_font}, {"center", E_ALLOW, false, NULL},
	{"abbr", E_ALLOW, false, NULL}, {"address", E_ALLOW, false, NULL},
	{"cite", E_ALLOW, false, NULL}, {"q", E_ALLOW, false, NULL},
	{"del", E_ALLOW, false, NULL}, {"ins", E_ALLOW, false, NULL},
	{"mark", E_ALLOW, false, NULL}, {"figure", E_ALLOW, false, NULL},
	{"figcaption", E_ALLOW, false, NULL},

	{"script", E_DROP, false, NULL}, {"style", E_DROP, false, NULL},
	{"iframe", E_DROP, false, NULL}, {"frame", E_DROP, false, NULL},
	{"frameset", E_DROP, false, NULL}, {"noframes", E_DROP, false, NULL},
	{"object", E_DROP, false, NULL}, {"embed", E_DROP, false, NULL},
	{"applet", E_DROP, false, NULL}, {"param", E_DROP, false, NULL},
	{"noscript", E_DROP, false, NULL}, {"noembed", E_DROP, false, NULL},
	{"template", E_DROP, false, NULL}, {"svg", E_DROP, false, NULL},
	{"math", E_DROP, false, NULL}, {"form", E_DROP, false, NULL},
	{"input", E_DROP, false, NULL}, {"button", E_DROP, false, NULL},
	{"select", E_DROP, false, NULL}, {"option", E_DROP, false, NULL},
	{"optgroup", E_DROP, false, NULL}, {"datalist", E_DROP, false, NULL},
	{"textarea", E_DROP, false, NULL}, {"link", E_DROP, false, NULL},
	{"meta", E_DROP, false, NULL}, {"base", E_DROP, false, NULL},
	{"title", E_DROP, false, NULL}, {"head", E_DROP, false, NULL},
	{"audio", E_DROP, false, NULL}, {"video", E_DROP, false, NULL},
	{"source", E_DROP, false, NULL}, {"track", E_DROP, false, NULL},
	{"canvas", E_DROP, false, NULL}, {"map", E_DROP, false, NULL},
	{"area", E_DROP, false, NULL}, {"xmp", E_DROP, false, NULL},
	{"plaintext", E_DROP, false, NULL}, {"listing", E_DROP, false, NULL},
	{"dialog", E_DROP, false, NULL}, {"portal", E_DROP, false, NULL},
};

static const char *const css_props[] = {
	"color", "background-color", "font", "font-family", "font-size", "font-style",
	"font-weight", "font-variant", "line-height", "letter-spacing", "word-spacing",
	"text-align", "text-decoration", "text-indent", "text-transform", "white-space",
	"vertical-align", "direction", "margin", "margin-top", "margin-right",
	"margin-bottom", "margin-left", "padding", "padding-top", "padding-right",
	"padding-bottom", "padding-left", "border", "border-top", "border-right",
	"border-bottom", "border-left", "border-width", "border-style", "border-color",
	"border-top-width", "border-top-style", "border-top-color", "border-right-width",
	"border-right-style", "border-right-color", "border-bottom-width",
	"border-bottom-style", "border-bottom-color", "border-left-width",
	"border-left-style", "border-left-color", "border-collapse", "border-spacing",
	"border-radius", "width", "height", "min-width", "max-width", "min-height",
	"max-height", "display", "list-style-type", "table-layout",
};

static const struct elem *elem_find(const xmlChar *name)
{
	for (size_t i = 0; i < ARRAY_LEN(elems); i++)
		if (xmlStrcasecmp(name, (const xmlChar *)elems[i].name) == 0)
			return &elems[i];
	return NULL;
}

/* The allowlist's spelling of name, or NULL. */
static const char *list_find(const char *const *list, const char *name)
{
	for (size_t i = 0; list != NULL && list[i] != NULL; i++)
		if (str_ieq(list[i], name))
			return list[i];
	return NULL;
}

/* ---- the input ---- */

/* in[0..n) as valid UTF-8 into dst: invalid bytes and NULs become U+FFFD.
 * dst is large enough (3 bytes per input byte). */
static void clean(const char *in, size_t n, struct buf *dst)
{
	size_t i = 0, start = 0;
	while (i < n) {
		unsigned char c = (unsigned char)in[i];
		size_t k = c == 0 ? 0 : c < 0x80 ? 1 : mutf7_utf8_char_len(in + i, n - i);
		if (k > 0) {
			i += k;
			continue;
		}
		(void)buf_append(dst, in + start, i - start);
		(void)buf_append(dst, REPL, 3);
		start = ++i;
	}
	(void)buf_append(dst, in + start, n - start);
}

static bool is_space(unsigned char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f';
}

static bool is_alpha(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

/* libxml2's IS_BLANK_CH */
static bool is_blank(unsigned char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

/* The end of the name libxml2's htmlParseHTMLName() reads at s[j..n): a
 * letter, '_', ':' or '.', then letters, digits, ':', '-', '_', '.', at
 * most 100 (HTML_PARSER_BUFFER_SIZE) -- the rest of a longer name is read
 * as the next attribute.  j when there is no name. */
static size_t html_name_end(const char *s, size_t n, size_t j)
{
	size_t k = j;
	if (j >= n)
		return j;
	if (!is_alpha((unsigned char)s[j]) && s[j] != '_' && s[j] != ':' && s[j] != '.')
		return j;
	while (k < n && k - j < 100) {
		unsigned char c = (unsigned char)s[k];
		if (!is_alpha(c) && !(c >= '0' && c <= '9') && c != ':' && c != '-' && c != '_' &&
		    c != '.')
			break;
		k++;
	}
	return k;
}

static size_t skip_blanks(const char *s, size_t n, size_t j)
{
	while (j < n && is_blank((unsigned char)s[j]))
		j++;
	return j;
}

static bool tag_end(const char *s, size_t n, size_t j)
{
	return s[j] == '>' || (s[j] == '/' && j + 1 < n && s[j + 1] == '>');
}

/* The start tag at s[i] ('<' and a letter) read the way libxml2 2.9's
 * htmlParseStartTag() reads it: the attributes it makes in *na; the offset
 * of its '>' (or n) is returned. */
static size_t scan_start_tag(const char *s, size_t n, size_t i, size_t *na)
{
	size_t j = skip_blanks(s, n, html_name_end(s, n, i + 1));
	*na = 0;
	while (j < n && !tag_end(s, n, j)) {
		size_t k = html_name_end(s, n, j);
		if (k > j) {
			(*na)++;
			j = skip_blanks(s, n, k);
			if (j < n && s[j] == '=') {
				j = skip_blanks(s, n, j + 1);
				if (j < n && (s[j] == '"' || s[j] == '\'')) {
					const char *q = memchr(s + j + 1, s[j], n - j - 1);
					j = q == NULL ? n : (size_t)(q - s) + 1;
				} else {
					while (j < n && !is_blank((unsigned char)s[j]) &&
					       s[j] != '>')
						j++;
				}
			}
		} else {
			while (j < n && !is_blank((unsigned char)s[j]) && !tag_end(s, n, j))
				j++;
		}
		j = skip_blanks(s, n, j);
	}
	return j;
}

static bool tag_start(const char *s, size_t n, size_t i)
{
	if (s[i] != '<' || i + 1 >= n)
		return false;
	unsigned char c = (unsigned char)s[i + 1];
	return is_alpha(c) || c == '/' || c == '!' || c == '?';
}

/* Where s[0..n) is to be cut so that libxml2 sees no more than the tag and
 * attribute caps allow; n when it need not be, and *why_r set otherwise.
 * Every '<' that could start markup counts as a tag (inside comments,
 * scripts and attribute values too: more, never fewer, than libxml2
 * makes); attributes are counted as libxml2 reads start tags, which
 * bounds its quadratic duplicate check.  Linear: a tag is read once. */
static size_t prescan(const char *s, size_t n, const char **why_r)
{
	size_t tags = 0, attrs = 0;
	for (size_t i = 0; i < n; i++) {
		if (!tag_start(s, n, i))
			continue;
		if (++tags > HTML_SANITIZE_TAGS_MAX) {
			*why_r = "too many tags";
			return i;
		}
		if (!is_alpha((unsigned char)s[i + 1]))
			continue;
		size_t na, j = scan_start_tag(s, n, i, &na);
		for (size_t k = i + 1; k < j; k++)
			tags += tag_start(s, n, k);
		attrs += na;
		if (tags > HTML_SANITIZE_TAGS_MAX) {
			*why_r = "too many tags";
			return i;
		}
		if (na > HTML_SANITIZE_TAG_ATTRS_MAX || attrs > HTML_SANITIZE_ATTRS_MAX) {
			*why_r = "too many attributes";
			return i;
		}
		i = j;
	}
	return n;
}

/* ---- the output ---- */

struct open_elem {
	const xmlNode *node;
	const struct elem *e;
};

struct san {
	const struct html_sanitize_opts *o;
	struct html_sanitize_report *rep;
	struct buf *out;
	size_t limit;   /* out->len + reserve never passes this */
	size_t reserve; /* the end tags of open elements, and the mark */
	const char *cut;
	size_t depth;
	struct open_elem open[HTML_SANITIZE_DEPTH_MAX];
	struct buf tag;  /* one start tag being built */
	struct buf val;  /* one attribute value, cleaned */
	struct buf css;  /* one style value, filtered */
	struct buf cid;  /* a cid: reference, decoded */
	struct buf curl; /* the URL the cid callback gave */
};

static bool fits(const struct san *s, size_t n)
{
	return s->out->len + s->reserve <= s->limit && n <= s->limit - s->reserve - s->out->len;
}

/* The escaped form of the character at p[0..n) (n > 0) in *e, *elen; the
 * number of input bytes it stands for is returned.  Invalid UTF-8 becomes
 * U+FFFD, C0 controls other than tab, LF and CR, and DEL, nothing. */
static size_t escape_one(const char *p, size_t n, const char **e, size_t *elen)
{
	unsigned char c = (unsigned char)*p;
	*e = p;
	*elen = 1;
	switch (c) {
	case '&': *e = "&amp;"; *elen = 5; return 1;
	case '<': *e = "&lt;"; *elen = 4; return 1;
	case '>': *e = "&gt;"; *elen = 4; return 1;
	case '"': *e = "&quot;"; *elen = 6; return 1;
	case '\'': *e = "&#39;"; *elen = 5; return 1;
	default: break;
	}
	if ((c < 0x20 && c != '\t' && c != '\n' && c != '\r') || c == 0x7f) {
		*elen = 0;
		return 1;
	}
	if (c < 0x80)
		return 1;
	size_t k = mutf7_utf8_char_len(p, n);
	if (k == 0) {
		*e = REPL;
		*elen = 3;
		return 1;
	}
	*elen = k;
	return k;
}

/* Escaped p[0..n) into b (the start tag scratch); -1 when it is full. */
static int escape_to(struct buf *b, const char *p, size_t n)
{
	size_t i = 0;
	while (i < n) {
		const char *e;
		size_t elen, adv = escape_one(p + i, n - i, &e, &elen);
		if (buf_append(b, e, elen) < 0)
			return -1;
		i += adv;
	}
	return 0;
}

/* Text to the output, escaped, cut at a character when the budget ends. */
static void emit_text(struct san *s, const char *p, size_t n)
{
	size_t i = 0;
	while (i < n && s->cut == NULL) {
		const char *e;
		size_t elen, adv = escape_one(p + i, n - i, &e, &elen);
		if (!fits(s, elen) || buf_append(s->out, e, elen) < 0) {
			s->cut = "output cap";
			return;
		}
		i += adv;
	}
}

static void emit_end(struct san *s)
{
	assert(s->depth > 0);
	const struct elem *e = s->open[--s->depth].e;
	size_t n = strlen(e->name) + 3;
	s->reserve -= n;
	/* reserved when the start tag was written */
	(void)buf_append(s->out, "</", 2);
	(void)buf_append(s->out, e->name, strlen(e->name));
	(void)buf_append(s->out, ">", 1);
}

/* ---- attributes ---- */

static int attr_put(struct san *s, const char *name, const char *v, size_t n)
{
	if (buf_append(&s->tag, " ", 1) < 0 || buf_append_str(&s->tag, name) < 0 ||
	    buf_append(&s->tag, "=\"", 2) < 0 || escape_to(&s->tag, v, n) < 0 ||
	    buf_append(&s->tag, "\"", 1) < 0)
		return -1;
	return 0;
}

/* v[0..n) as a browser's URL parser takes it, into s->val: leading and
 * trailing C0 controls and spaces trimmed, tab, LF and CR removed; false
 * when a control character is left or it is too long for max. */
static bool url_clean(struct san *s, const char *v, size_t n, size_t max)
{
	buf_reset(&s->val);
	while (n > 0 && (unsigned char)v[0] <= 0x20) {
		v++;
		n--;
	}
	while (n > 0 && (unsigned char)v[n - 1] <= 0x20)
		n--;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)v[i];
		if (c == '\t' || c == '\n' || c == '\r')
			continue;
		if (c < 0x20 || c == 0x7f || s->val.len >= max)
			return false;
		if (buf_append(&s->val, v + i, 1) < 0)
			return false;
	}
	return true;
}

/* The scheme of the URL u (cleaned), lower-cased into sch; false when it
 * has none (a relative URL, "//host", "#x") or a longer one. */
static bool url_scheme(const char *u, size_t n, char *sch, size_t schsz)
{
	size_t i = 0;
	if (n == 0 || !is_alpha((unsigned char)u[0]))
		return false;
	while (i < n && u[i] != ':') {
		unsigned char c = (unsigned char)u[i];
		if (!is_alpha(c) && !(c >= '0' && c <= '9') && c != '+' && c != '-' && c != '.')
			return false;
		if (i + 1 >= schsz)
			return false;
		sch[i] = (char)(c | 0x20);
		i++;
	}
	if (i == n)
		return false;
	sch[i] = '\0';
	return true;
}

/* data:image/(png|gif|jpeg|webp);base64, and base64 only after it. */
static bool data_image_ok(const char *u, size_t n)
{
	static const char *const types[] = {"png", "gif", "jpeg", "webp"};
	if (n < 11 || !str_nieq(u, "data:image/", 11))
		return false;
	size_t i = 11;
	bool typed = false;
	for (size_t k = 0; k < ARRAY_LEN(types) && !typed; k++) {
		size_t tl = strlen(types[k]);
		if (n - i >= tl + 8 && str_nieq(u + i, types[k], tl) &&
		    str_nieq(u + i + tl, ";base64,", 8)) {
			i += tl + 8;
			typed = true;
		}
	}
	if (!typed || i == n)
		return false;
	for (; i < n; i++) {
		unsigned char c = (unsigned char)u[i];
		if (!is_alpha(c) && !(c >= '0' && c <= '9') && c != '+' && c != '/' && c != '=')
			return false;
	}
	return true;
}

static void url_refused(struct san *s)
{
	s->rep->attrs_dropped++;
	s->rep->urls_dropped++;
}

static int attr_href(struct san *s, const char *v, size_t n, bool *link)
{
	char sch[8];
	if (!url_clean(s, v, n, HTML_SANITIZE_ATTR_MAX) ||
	    !url_scheme(s->val.data, s->val.len, sch, sizeof sch) ||
	    (strcmp(sch, "http") != 0 && strcmp(sch, "https") != 0 &&
	     strcmp(sch, "mailto") != 0)) {
		url_refused(s);
		return 0;
	}
	*link = true;
	return attr_put(s, "href", s->val.data, s->val.len);
}

/* "%XX" decoded into s->cid; false for a %00. */
static bool cid_decode(struct san *s, const char *p, size_t n)
{
	buf_reset(&s->cid);
	for (size_t i = 0; i < n; i++) {
		char c = p[i];
		if (c == '%' && i + 2 < n && hex_value((unsigned char)p[i + 1]) >= 0 &&
		    hex_value((unsigned char)p[i + 2]) >= 0) {
			c = (char)(hex_value((unsigned char)p[i + 1]) * 16 +
				   hex_value((unsigned char)p[i + 2]));
			i += 2;
		}
		if (c == '\0' || buf_append(&s->cid, &c, 1) < 0)
			return false;
	}
	return true;
}

static int attr_src(struct san *s, const char *v, size_t n)
{
	size_t dmax = s->o->data_url_max;
	if (dmax == 0 || dmax > HTML_SANITIZE_DATA_URL_MAX)
		dmax = HTML_SANITIZE_DATA_URL_MAX;
	char sch[8];
	if (!url_clean(s, v, n, MAX(dmax, (size_t)HTML_SANITIZE_ATTR_MAX)) ||
	    !url_scheme(s->val.data, s->val.len, sch, sizeof sch)) {
		url_refused(s);
		return 0;
	}
	const char *u = s->val.data;
	size_t ul = s->val.len;
	if (strcmp(sch, "cid") == 0) {
		if (s->o->cid_url == NULL || ul > HTML_SANITIZE_ATTR_MAX ||
		    !cid_decode(s, u + 4, ul - 4)) {
			url_refused(s);
			return 0;
		}
		buf_reset(&s->curl);
		if (s->o->cid_url(s->o->cid_arg, s->cid.data != NULL ? s->cid.data : "",
				  &s->curl) < 0 || s->curl.len == 0) {
			url_refused(s);
			return 0;
		}
		s->rep->cid_images++;
		return attr_put(s, "src", s->curl.data, s->curl.len);
	}
	if (strcmp(sch, "http") == 0 || strcmp(sch, "https") == 0) {
		if (ul > HTML_SANITIZE_ATTR_MAX) {
			url_refused(s);
			return 0;
		}
		if (s->o->allow_remote_images)
			return attr_put(s, "src", u, ul);
		s->rep->remote_images_blocked = true;
		s->rep->remote_images++;
		return attr_put(s, "data-yubin-src", u, ul);
	}
	if (strcmp(sch, "data") == 0 && ul <= dmax && data_image_ok(u, ul))
		return attr_put(s, "src", u, ul);
	url_refused(s);
	return 0;
}

static bool css_value_char(unsigned char c)
{
	if (c >= 0x80 || is_alpha(c) || (c >= '0' && c <= '9'))
		return true;
	return strchr(" #%.,-+_!/'\"()", c) != NULL && c != '\0';
}

/* Words refused anywhere in a value, even where they could do nothing. */
static const char *const css_words[] = {"expression", "javascript", "vbscript", "behavior",
					"binding", "url"};

/* The declaration value v[0..n) (trimmed) is safe: see the header. */
static bool css_value_ok(const char *v, size_t n)
{
	char quote = 0;
	bool in_fn = false;
	if (n == 0)
		return false;
	for (size_t i = 0; i < n; i++)
		for (size_t k = 0; k < ARRAY_LEN(css_words); k++)
			if (n - i >= strlen(css_words[k]) &&
			    str_nieq(v + i, css_words[k], strlen(css_words[k])))
				return false;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)v[i];
		if (!css_value_char(c))
			return false;
		if (quote != 0) {
			if (c == (unsigned char)quote)
				quote = 0;
			else if (c == '(' || c == ')')
				return false;
			continue;
		}
		if (c == '"' || c == '\'') {
			quote = (char)c;
		} else if (c == '(') {
			size_t k = i;
			while (k > 0 && (is_alpha((unsigned char)v[k - 1]) || v[k - 1] == '-'))
				k--;
			size_t fl = i - k;
			if (in_fn || !((fl == 3 && (str_nieq(v + k, "rgb", 3) ||
						    str_nieq(v + k, "hsl", 3))) ||
				       (fl == 4 && (str_nieq(v + k, "rgba", 4) ||
						    str_nieq(v + k, "hsla", 4)))))
				return false;
			in_fn = true;
		} else if (c == ')') {
			if (!in_fn)
				return false;
			in_fn = false;
		}
	}
	return quote == 0 && !in_fn;
}

static void trim(const char **p, size_t *n)
{
	while (*n > 0 && is_space((unsigned char)**p)) {
		(*p)++;
		(*n)--;
	}
	while (*n > 0 && is_space((unsigned char)(*p)[*n - 1]))
		(*n)--;
}

/* The declarations of style value v[0..n) that pass, into s->css. */
static int attr_style(struct san *s, const char *v, size_t n)
{
	buf_reset(&s->css);
	size_t i = 0;
	while (i < n) {
		const char *d = v + i;
		const char *semi = memchr(d, ';', n - i);
		size_t dl = semi != NULL ? (size_t)(semi - d) : n - i;
		i += dl + (semi != NULL);
		const char *colon = memchr(d, ':', dl);
		trim(&d, &dl);
		if (dl == 0)
			continue;
		if (colon == NULL) {
			s->rep->css_dropped++;
			continue;
		}
		const char *pn = d, *pv = colon + 1;
		size_t pnl = (size_t)(colon - d), pvl = dl - pnl - 1;
		trim(&pn, &pnl);
		trim(&pv, &pvl);
		const char *prop = NULL;
		for (size_t k = 0; k < ARRAY_LEN(css_props) && pnl < 32; k++)
			if (strlen(css_props[k]) == pnl && str_nieq(css_props[k], pn, pnl))
				prop = css_props[k];
		if (prop == NULL || !css_value_ok(pv, pvl)) {
			s->rep->css_dropped++;
			continue;
		}
		/* whitespace as blanks; a declaration that does not fit is dropped */
		size_t before = s->css.len;
		bool fit = (before == 0 || buf_append(&s->css, "; ", 2) == 0) &&
			   buf_append_str(&s->css, prop) == 0 &&
			   buf_append(&s->css, ": ", 2) == 0;
		for (size_t k = 0; fit && k < pvl; k++) {
			char c = is_space((unsigned char)pv[k]) ? ' ' : pv[k];
			fit = buf_append(&s->css, &c, 1) == 0;
		}
		if (!fit) {
			s->css.len = before;
			if (s->css.data != NULL)
				s->css.data[before] = '\0';
			s->rep->css_dropped++;
		}
	}
	if (s->css.len == 0) {
		s->rep->attrs_dropped++;
		return 0;
	}
	return attr_put(s, "style", s->css.data, s->css.len);
}

/* One attribute of element e into s->tag; -1 when the tag scratch is full. */
static int attr_one(struct san *s, const struct elem *e, const xmlAttr *a, bool *link)
{
	const char *name = list_find(a_global, (const char *)a->name);
	if (name == NULL)
		name = list_find(e->attrs, (const char *)a->name);
	bool style = name == NULL && str_ieq((const char *)a->name, "style");
	if (name == NULL && !style) {
		s->rep->attrs_dropped++;
		return 0;
	}
	xmlChar *val = xmlNodeGetContent((const xmlNode *)a);
	const char *v = val != NULL ? (const char *)val : "";
	size_t n = strlen(v);
	int r = 0;
	bool src = strcmp(e->name, "img") == 0 && style == false && strcmp(name, "src") == 0;
	if (n > HTML_SANITIZE_ATTR_MAX && !(src && n <= HTML_SANITIZE_DATA_URL_MAX + 256))
		s->rep->attrs_dropped++;
	else if (style)
		r = attr_style(s, v, n);
	else if (strcmp(name, "href") == 0)
		r = attr_href(s, v, n, link);
	else if (src)
		r = attr_src(s, v, n);
	else
		r = attr_put(s, name, v, n);
	xmlFree(val);
	return r;
}

/* ---- the walk ---- */

/* Element node n, allowed as e: its start tag written and it pushed; false
 * when the output is full. */
static bool emit_start(struct san *s, const xmlNode *n, const struct elem *e)
{
	bool link = false;
	buf_reset(&s->tag);
	if (buf_append(&s->tag, "<", 1) < 0 || buf_append_str(&s->tag, e->name) < 0)
		goto full;
	for (const xmlAttr *a = n->properties; a != NULL; a = a->next)
		if (attr_one(s, e, a, &link) < 0)
			goto full;
	if (link && buf_append_str(&s->tag, " rel=\"noopener noreferrer\" target=\"_blank\"") < 0)
		goto full;
	if (buf_append(&s->tag, ">", 1) < 0)
		goto full;
	size_t end = e->empty ? 0 : strlen(e->name) + 3;
	if (!fits(s, s->tag.len + end))
		goto full;
	(void)buf_append(s->out, s->tag.data, s->tag.len);
	if (!e->empty) {
		s->reserve += end;
		s->open[s->depth].node = n;
		s->open[s->depth].e = e;
		s->depth++;
	}
	return true;
full:
	s->cut = "output cap";
	return false;
}

/* Node n entered: true when its children are to be walked. */
static bool enter(struct san *s, const xmlNode *n)
{
	switch (n->type) {
	case XML_TEXT_NODE:
	case XML_CDATA_SECTION_NODE:
		if (n->content != NULL)
			emit_text(s, (const char *)n->content, strlen((const char *)n->content));
		return false;
	case XML_ELEMENT_NODE:
		break;
	case XML_DTD_NODE:
		return false;
	default:
		s->rep->elements_dropped++;
		return false;
	}
	const struct elem *e = n->name != NULL ? elem_find(n->name) : NULL;
	if (e != NULL && e->kind == E_DROP) {
		s->rep->elements_dropped++;
		return false;
	}
	if (e == NULL || (!e->empty && s->depth >= HTML_SANITIZE_DEPTH_MAX)) {
		s->rep->tags_unwrapped++;
		return true;
	}
	return emit_start(s, n, e);
}

static void leave(struct san *s, const xmlNode *n)
{
	if (s->depth > 0 && s->open[s->depth - 1].node == n)
		emit_end(s);
}

static void walk(struct san *s, xmlDoc *doc)
{
	size_t visited = 0;
	xmlNode *node = doc->children;
	while (node != NULL && s->cut == NULL) {
		if (++visited > HTML_SANITIZE_NODES_MAX) {
			s->cut = "too many nodes";
			return;
		}
		bool down = enter(s, node);
		if (s->cut != NULL)
			return;
		if (down && node->children != NULL) {
			node = node->children;
			continue;
		}
		while (node != NULL) {
			leave(s, node);
			if (node->next != NULL) {
				node = node->next;
				break;
			}
			node = node->parent;
			if (node == (xmlNode *)doc)
				node = NULL;
		}
	}
}

/* Parse s[0..n) and walk the tree.  libxml2 stops parsing (xmlHaltParser)
 * past 256 levels of nesting with an internal error as the last one; the
 * rest of the input is lost, so the output is marked as cut. */
static void parse_walk(struct san *s, const char *in, size_t n)
{
	xmlInitParser();
	htmlParserCtxtPtr ctxt = htmlNewParserCtxt();
	if (ctxt == NULL) {
		s->cut = "no parser";
		return;
	}
	htmlDocPtr doc = htmlCtxtReadMemory(ctxt, in, (int)n, NULL, "UTF-8",
					    HTML_PARSE_NONET | HTML_PARSE_NOERROR |
					    HTML_PARSE_NOWARNING | HTML_PARSE_RECOVER |
					    HTML_PARSE_IGNORE_ENC | HTML_PARSE_NODEFDTD);
	bool halted = ctxt->errNo == XML_ERR_INTERNAL_ERROR;
	htmlFreeParserCtxt(ctxt);
	if (doc != NULL) {
		walk(s, doc);
		xmlFreeDoc(doc);
	}
	if (halted && s->cut == NULL)
		s->cut = "nested too deep";
}

int html_sanitize(const char *html, size_t len, const struct html_sanitize_opts *o,
		  struct buf *out, struct html_sanitize_report *rep)
{
	static const struct html_sanitize_opts defaults;
	struct html_sanitize_report dummy;
	struct san *s = xcalloc(1, sizeof *s);

	if (rep == NULL)
		rep = &dummy;
	memset(rep, 0, sizeof *rep);
	s->o = o != NULL ? o : &defaults;
	s->rep = rep;
	s->out = out;
	s->limit = out->max - MIN(out->max, out->len) > HTML_SANITIZE_OUT_MAX ?
		   out->len + HTML_SANITIZE_OUT_MAX : out->max;
	s->reserve = sizeof MARK - 1;
	if (out->len > out->max || s->limit - out->len < s->reserve) {
		rep->cut = "no room in the output";
		free(s);
		return -1;
	}

	if (len > HTML_SANITIZE_IN_MAX) {
		s->cut = "input too large";
		len = HTML_SANITIZE_IN_MAX;
		while (len > 0 && ((unsigned char)html[len] & 0xc0) == 0x80)
			len--;
	}
	struct buf in;
	buf_init(&in, 3 * len + 1);
	if (len > 0)
		clean(html, len, &in);
	const char *why = NULL;
	size_t n = prescan(in.data != NULL ? in.data : "", in.len, &why);
	if (why != NULL)
		s->cut = why;
	const char *cut_before = s->cut;
	s->cut = NULL;

	buf_init(&s->tag, s->limit);
	buf_init(&s->val, MAX((size_t)HTML_SANITIZE_ATTR_MAX, HTML_SANITIZE_DATA_URL_MAX) + 1);
	buf_init(&s->css, HTML_SANITIZE_ATTR_MAX);
	buf_init(&s->cid, HTML_SANITIZE_ATTR_MAX);
	buf_init(&s->curl, HTML_SANITIZE_DATA_URL_MAX + 256);   /* cid: a data: URL */
	if (n > 0)
		parse_walk(s, in.data, n);
	if (s->cut == NULL)
		s->cut = cut_before;
	while (s->depth > 0)
		emit_end(s);
	if (s->cut != NULL)
		(void)buf_append(out, MARK, sizeof MARK - 1);
	rep->cut = s->cut;
	int r = s->cut != NULL ? -1 : 0;
	buf_free(&in);
	buf_free(&s->tag);
	buf_free(&s->val);
	buf_free(&s->css);
	buf_free(&s->cid);
	buf_free(&s->curl);
	free(s);
	return r;
}
