/* html_sanitize_fuzz.c - libFuzzer target for html_sanitize().
 *
 * Input: byte 0 picks options (bit 0 allow_remote_images, bit 1 a cid
 * callback, bit 2 a small output cap, bit 3 a small data: URL cap), the
 * rest is the HTML.  Checks: 0 or -1, never past the cap, valid UTF-8, a
 * cut output ends with the mark; every '<' in the output starts a tag of
 * ours; and the output parsed again by libxml2 holds no element outside
 * the allowlist (html and body, which the parser adds, aside), no attribute
 * outside its element's list, no on* attribute, no comment, no href but
 * http:, https: and mailto:, no src but http: and https: (only when
 * allowed), data:image/... and the callback's URLs, and no style with
 * url(, expression, a backslash, '@', a comment or javascript:.  The lists
 * here are written out again on purpose, not taken from html_sanitize.c.
 * With remote images allowed (nothing then rewritten), the output sanitised
 * twice more is stable: libxml2 reads it as it was written, up to the
 * paragraphs it implies around bare text the first time. */
#include <libxml/HTMLparser.h>
#include <libxml/tree.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/buf.h"
#include "core/util.h"
#include "mail/html_sanitize.h"
#include "mail/mutf7.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(c) do { if (!(c)) abort(); } while (0)
#define CID_PREFIX "https://blob.invalid/cid/"

static const char *const elements =
	" p br div span a b i u s em strong small big sub sup blockquote pre code hr h1 h2 h3"
	" h4 h5 h6 ul ol li dl dt dd table thead tbody tfoot tr td th caption colgroup col img"
	" font center abbr address cite q del ins mark figure figcaption html body ";

static const struct {
	const char *elem;
	const char *attrs;
} rules[] = {
	{"a", " href rel target "},
	{"img", " src data-yubin-src alt width height align border "},
	{"table", " width height align bgcolor border cellpadding cellspacing "},
	{"thead", " align valign bgcolor height "},
	{"tbody", " align valign bgcolor height "},
	{"tfoot", " align valign bgcolor height "},
	{"tr", " align valign bgcolor height "},
	{"td", " colspan rowspan align valign width height bgcolor nowrap "},
	{"th", " colspan rowspan align valign width height bgcolor nowrap "},
	{"col", " span width align valign "},
	{"colgroup", " span width align valign "},
	{"font", " color face size "},
	{"p", " align "}, {"div", " align "}, {"caption", " align "},
	{"h1", " align "}, {"h2", " align "}, {"h3", " align "},
	{"h4", " align "}, {"h5", " align "}, {"h6", " align "},
	{"hr", " align width size noshade "},
	{"ol", " start type "}, {"ul", " type "}, {"li", " value type "},
};

/* " word " in list, word shorter than 32 bytes. */
static bool listed(const char *list, const char *word)
{
	char pat[40];
	if (strlen(word) > 32)
		return false;
	strcpy(pat, " ");
	strcat(pat, word);
	strcat(pat, " ");
	return strstr(list, pat) != NULL;
}

static bool attr_ok(const char *elem, const char *attr)
{
	if (listed(" dir lang title style ", attr))
		return true;
	for (size_t i = 0; i < ARRAY_LEN(rules); i++)
		if (strcmp(rules[i].elem, elem) == 0)
			return listed(rules[i].attrs, attr);
	return false;
}

static const char *istr(const char *hay, const char *needle)
{
	size_t n = strlen(needle);
	for (; *hay != '\0'; hay++)
		if (str_nieq(hay, needle, n))
			return hay;
	return NULL;
}

/* A URL value as the browser reads it: tab and line ends dropped, leading
 * C0 and space trimmed. */
static bool url_prefix(const char *v, const char *prefix)
{
	char u[64];
	size_t n = 0;
	while (*v != '\0' && (unsigned char)*v <= 0x20)
		v++;
	for (; *v != '\0' && n < sizeof u - 1; v++)
		if (*v != '\t' && *v != '\n' && *v != '\r')
			u[n++] = *v;
	u[n] = '\0';
	return str_iprefix(u, prefix);
}

static void check_attr(const char *elem, const char *name, const char *v, bool remote,
		       bool cid)
{
	CHECK(attr_ok(elem, name));
	CHECK(!str_iprefix(name, "on"));
	if (strcmp(name, "href") == 0)
		CHECK(url_prefix(v, "http:") || url_prefix(v, "https:") ||
		      url_prefix(v, "mailto:"));
	if (strcmp(name, "src") == 0)
		CHECK((remote && (url_prefix(v, "http:") || url_prefix(v, "https:"))) ||
		      (cid && url_prefix(v, CID_PREFIX)) ||
		      url_prefix(v, "data:image/png;base64,") ||
		      url_prefix(v, "data:image/gif;base64,") ||
		      url_prefix(v, "data:image/jpeg;base64,") ||
		      url_prefix(v, "data:image/webp;base64,"));
	if (strcmp(name, "rel") == 0)
		CHECK(strcmp(v, "noopener noreferrer") == 0);
	if (strcmp(name, "style") == 0) {
		static const char *const bad[] = {"url(", "expression", "\\", "@", "/*",
						  "javascript", "behavior", "binding", "<", ">"};
		for (size_t i = 0; i < ARRAY_LEN(bad); i++)
			CHECK(istr(v, bad[i]) == NULL);
	}
}

/* The output parsed again, walked through parent links. */
static void check_tree(const char *s, size_t n, bool remote, bool cid)
{
	htmlDocPtr doc = htmlReadMemory(s, (int)n, NULL, "UTF-8",
					HTML_PARSE_NONET | HTML_PARSE_NOERROR |
					HTML_PARSE_NOWARNING | HTML_PARSE_RECOVER |
					HTML_PARSE_IGNORE_ENC | HTML_PARSE_NODEFDTD);
	if (doc == NULL)
		return;
	xmlNode *node = doc->children;
	while (node != NULL) {
		CHECK(node->type == XML_ELEMENT_NODE || node->type == XML_TEXT_NODE);
		if (node->type == XML_ELEMENT_NODE) {
			const char *name = (const char *)node->name;
			CHECK(listed(elements, name));
			for (xmlAttr *a = node->properties; a != NULL; a = a->next) {
				xmlChar *v = xmlNodeGetContent((xmlNode *)a);
				check_attr(name, (const char *)a->name,
					   v != NULL ? (const char *)v : "", remote, cid);
				xmlFree(v);
			}
		}
		if (node->children != NULL) {
			node = node->children;
			continue;
		}
		while (node != NULL) {
			if (node->next != NULL) {
				node = node->next;
				break;
			}
			node = node->parent;
			if (node == (xmlNode *)doc)
				node = NULL;
		}
	}
	xmlFreeDoc(doc);
}

static int cid_url(void *arg, const char *cid, struct buf *url)
{
	(void)arg;
	if (cid[0] == 'x')
		return -1;
	/* what a webmail does: the id percent-encoded after a fixed prefix */
	if (buf_append_str(url, CID_PREFIX) < 0)
		return -1;
	for (const unsigned char *p = (const unsigned char *)cid; *p != '\0'; p++) {
		bool plain = (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
			     (*p >= '0' && *p <= '9') || *p == '.' || *p == '-' || *p == '_';
		if ((plain && buf_append(url, p, 1) < 0) ||
		    (!plain && buf_printf(url, "%%%02X", *p) < 0))
			return -1;
	}
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size == 0)
		return 0;
	struct html_sanitize_opts o = {
		.allow_remote_images = data[0] & 1,
		.cid_url = (data[0] & 2) ? cid_url : NULL,
		.data_url_max = (data[0] & 8) ? 64 : 0,
	};
	size_t max = (data[0] & 4) ? 300 : (1u << 22);
	struct html_sanitize_report rep;
	struct buf out;
	buf_init(&out, max);
	int r = html_sanitize((const char *)data + 1, size - 1, &o, &out, &rep);
	CHECK(r == 0 || r == -1);
	CHECK(out.len <= max);
	CHECK((r == -1) == (rep.cut != NULL));
	const char *s = out.data != NULL ? out.data : "";
	CHECK(mutf7_utf8_valid(s, out.len));
	CHECK(strlen(s) == out.len);
	static const char mark[] = HTML_SANITIZE_TRUNCATED_MARK;
	if (r < 0 && out.len > 0)
		CHECK(out.len >= sizeof mark - 1 &&
		      memcmp(s + out.len - (sizeof mark - 1), mark, sizeof mark - 1) == 0);
	CHECK(rep.remote_images_blocked == (rep.remote_images > 0));
	if (o.allow_remote_images)
		CHECK(!rep.remote_images_blocked);
	/* no markup but ours: each '<' starts a tag or an end tag of letters */
	for (const char *p = s; (p = strchr(p, '<')) != NULL; p++) {
		const char *q = p[1] == '/' ? p + 2 : p + 1;
		CHECK(*q >= 'a' && *q <= 'z');
	}
	CHECK(istr(s, "<!--") == NULL && istr(s, "<script") == NULL);
	check_tree(s, out.len, o.allow_remote_images, o.cid_url != NULL);
	/* our output is read as written: sanitised again, it only gains the
	 * paragraphs libxml2 implies, and a third time nothing changes */
	if (r == 0 && o.allow_remote_images && !(data[0] & 4)) {
		struct buf b2, b3;
		buf_init(&b2, max);
		buf_init(&b3, max);
		CHECK(html_sanitize(s, out.len, &o, &b2, &rep) == 0);
		CHECK(html_sanitize(b2.data != NULL ? b2.data : "", b2.len, &o, &b3, &rep) == 0);
		if (b2.len != b3.len || (b2.len > 0 && memcmp(b2.data, b3.data, b2.len) != 0)) {
			fprintf(stderr, "1: %s\n2: %s\n3: %s\n", s, b2.data, b3.data);
			abort();
		}
		buf_free(&b2);
		buf_free(&b3);
	}
	buf_free(&out);
	return 0;
}
