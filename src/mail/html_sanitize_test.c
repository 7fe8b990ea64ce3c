/* html_sanitize_test.c - HTML mail made safe: an XSS corpus with the exact
 * output for each vector, every output also checked by a strict reader of
 * what html_sanitize() may write (allowed elements and attributes only,
 * balanced, every '<' '>' '&' '"' in text and values escaped, URLs with an
 * allowed scheme, no on*= and none of the usual XSS words in the tags);
 * then the report, the options, the callback and the caps. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "core/buf.h"
#include "core/util.h"
#include "mail/html_sanitize.h"
#include "mail/mutf7.h"

/* ---- a strict reader of the output ---- */

static const char *const elements[] = {
	"p", "br", "div", "span", "a", "b", "i", "u", "s", "em", "strong", "small", "big",
	"sub", "sup", "blockquote", "pre", "code", "hr", "h1", "h2", "h3", "h4", "h5", "h6",
	"ul", "ol", "li", "dl", "dt", "dd", "table", "thead", "tbody", "tfoot", "tr", "td",
	"th", "caption", "colgroup", "col", "img", "font", "center", "abbr", "address",
	"cite", "q", "del", "ins", "mark", "figure", "figcaption",
};
static const char *const voids[] = {"br", "hr", "img", "col"};

/* Attributes per element, space-separated, each list with spaces around. */
static const struct {
	const char *elem;
	const char *attrs;
} attr_rules[] = {
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

static bool in_list(const char *const *list, size_t n, const char *s)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(list[i], s) == 0)
			return true;
	return false;
}

static bool attr_ok(const char *elem, const char *attr)
{
	char pat[64];
	if (strcmp(attr, "dir") == 0 || strcmp(attr, "lang") == 0 || strcmp(attr, "title") == 0 ||
	    strcmp(attr, "style") == 0)
		return true;
	snprintf(pat, sizeof pat, " %s ", attr);
	for (size_t i = 0; i < ARRAY_LEN(attr_rules); i++)
		if (strcmp(attr_rules[i].elem, elem) == 0)
			return strstr(attr_rules[i].attrs, pat) != NULL;
	return false;
}

/* Case-insensitive strstr. */
static const char *istr(const char *hay, const char *needle)
{
	size_t n = strlen(needle);
	for (; *hay != '\0'; hay++)
		if (str_nieq(hay, needle, n))
			return hay;
	return NULL;
}

static const char *const forbidden[] = {
	"<script", "javascript:", "vbscript:", "livescript:", "data:text", "expression(",
	"<svg", "<math", "<iframe", "<object", "<embed", "<style", "<base", "<meta", "<form",
	"<input", "<button", "<link", "<noscript", "<template", "srcdoc", "formaction",
	"xlink:", "url(", "@import", "-moz-binding", "behavior", "\\",
};

/* None of the forbidden words and no " on...=" in s. */
static void check_words(const char *s, const char *out)
{
	for (size_t i = 0; i < ARRAY_LEN(forbidden); i++)
		if (istr(s, forbidden[i]) != NULL)
			fail_msg("\"%s\" in the tags of:\n%s", forbidden[i], out);
	for (const char *p = s; (p = istr(p, " on")) != NULL; p += 3) {
		const char *q = p + 3;
		while ((*q >= 'a' && *q <= 'z') || (*q >= 'A' && *q <= 'Z'))
			q++;
		if (q > p + 3 && *q == '=')
			fail_msg("event handler in:\n%s", out);
	}
}

static void check_url(const char *elem, const char *attr, const char *v, const char *out)
{
	if (strcmp(attr, "href") == 0) {
		if (!str_iprefix(v, "http:") && !str_iprefix(v, "https:") &&
		    !str_iprefix(v, "mailto:"))
			fail_msg("href \"%s\" in:\n%s", v, out);
	} else if (strcmp(attr, "src") == 0 && strcmp(elem, "img") == 0) {
		if (!str_iprefix(v, "http:") && !str_iprefix(v, "https:") &&
		    !str_iprefix(v, "data:image/png;base64,") &&
		    !str_iprefix(v, "data:image/gif;base64,") &&
		    !str_iprefix(v, "data:image/jpeg;base64,") &&
		    !str_iprefix(v, "data:image/webp;base64,") && !str_iprefix(v, "/blob/"))
			fail_msg("src \"%s\" in:\n%s", v, out);
	}
}

/* out is exactly what html_sanitize() may write: text with & < > " '
 * escaped, and our tags, balanced.  The tags (with the values of URL and
 * style attributes) go through check_words(). */
static void check_output(const char *out)
{
	char stack[300][16];
	size_t depth = 0;
	char *skel = xmalloc(strlen(out) + 1);
	size_t sl = 0;
	const char *p = out;

	assert_true(mutf7_utf8_valid(out, strlen(out)));
	while (*p != '\0') {
		if (*p == '>' || *p == '"' || *p == '\'')
			fail_msg("unescaped %c in text at %zu of:\n%s", *p, (size_t)(p - out),
				 out);
		if (*p == '&') {
			static const char *const ents[] = {"&amp;", "&lt;", "&gt;", "&quot;",
							   "&#39;"};
			size_t k = 0;
			while (k < ARRAY_LEN(ents) && strncmp(p, ents[k], strlen(ents[k])) != 0)
				k++;
			if (k == ARRAY_LEN(ents))
				fail_msg("bare & at %zu of:\n%s", (size_t)(p - out), out);
			p += strlen(ents[k]);
			continue;
		}
		if (*p != '<') {
			p++;
			continue;
		}
		const char *t = p++;
		bool end = *p == '/';
		if (end)
			p++;
		char name[16];
		size_t nl = 0;
		while (((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9')) && nl < 15)
			name[nl++] = *p++;
		name[nl] = '\0';
		if (!in_list(elements, ARRAY_LEN(elements), name))
			fail_msg("element \"%s\" in:\n%s", name, out);
		while (!end && *p == ' ') {
			char an[32];
			size_t al = 0;
			p++;
			while (((*p >= 'a' && *p <= 'z') || *p == '-') && al < 31)
				an[al++] = *p++;
			an[al] = '\0';
			if (!attr_ok(name, an) || strncmp(an, "on", 2) == 0)
				fail_msg("attribute %s on %s in:\n%s", an, name, out);
			if (p[0] != '=' || p[1] != '"')
				fail_msg("unquoted attribute %s in:\n%s", an, out);
			p += 2;
			const char *v = p;
			while (*p != '"' && *p != '\0') {
				if (*p == '<' || *p == '>' || *p == '\'')
					fail_msg("unescaped %c in a value of:\n%s", *p, out);
				p++;
			}
			assert_int_equal(*p, '"');
			char *val = xstrndup(v, (size_t)(p - v));
			check_url(name, an, val, out);
			bool keep = strcmp(an, "href") == 0 || strcmp(an, "src") == 0 ||
				    strcmp(an, "style") == 0;
			sl += (size_t)sprintf(skel + sl, " %s=\"%s\"", an, keep ? val : "");
			free(val);
			p++;
		}
		if (*p != '>')
			fail_msg("broken tag at %zu of:\n%s", (size_t)(t - out), out);
		p++;
		if (end) {
			if (depth == 0 || strcmp(stack[depth - 1], name) != 0)
				fail_msg("</%s> does not close what is open in:\n%s", name, out);
			depth--;
		} else if (!in_list(voids, ARRAY_LEN(voids), name)) {
			assert_true(depth < 300);
			strcpy(stack[depth++], name);
		}
		sl += (size_t)sprintf(skel + sl, "<%s%s>", end ? "/" : "", name);
	}
	if (depth != 0)
		fail_msg("<%s> left open in:\n%s", stack[depth - 1], out);
	skel[sl] = '\0';
	check_words(skel, out);
	free(skel);
}

/* ---- running it ---- */

static int cid_blob(void *arg, const char *cid, struct buf *url)
{
	if (arg != NULL)
		(*(int *)arg)++;
	if (strcmp(cid, "missing") == 0)
		return -1;
	return buf_printf(url, "/blob/%s", cid);
}

static const struct html_sanitize_opts cid_opts = {.cid_url = cid_blob};

static char *san_full(const char *in, size_t len, const struct html_sanitize_opts *o,
		      size_t max, int want_ret, struct html_sanitize_report *rep)
{
	struct buf b;
	buf_init(&b, max);
	int r = html_sanitize(in, len, o, &b, rep);
	assert_int_equal(r, want_ret);
	assert_true(b.len <= max);
	char *s = buf_steal(&b, NULL);
	if (s == NULL)
		s = xstrdup("");
	check_output(s);
	return s;
}

static char *san(const char *in, const struct html_sanitize_opts *o,
		 struct html_sanitize_report *rep)
{
	return san_full(in, strlen(in), o, 1u << 22, 0, rep);
}

#define EQ(in, o, want) do { char *got_ = san((in), (o), NULL); \
	assert_string_equal(got_, (want)); free(got_); } while (0)

/* ---- the corpus ---- */

struct vector {
	const char *name;
	const char *in;
	const char *want;
};

/* Sanitised with cid_opts: cid:X -> /blob/X, remote images blocked. */
static const struct vector corpus[] = {
	{"plain",
	 "<p>Hello <b>world</b></p>",
	 "<p>Hello <b>world</b></p>"},
	{"script_simple",
	 "<p>a<script>alert(1)</script>b</p>",
	 "<p>ab</p>"},
	{"script_case",
	 "<ScRiPt>alert(1)</sCrIpT>ok",
	 "<p>ok</p>"},
	{"script_split",
	 "<scr<script>ipt>alert(1)</scr</script>ipt>",
	 "ipt&gt;alert(1)ipt&gt;"},
	{"script_nested",
	 "<script><script>alert(1)</script></script>x",
	 "<p>x</p>"},
	{"script_unclosed",
	 "x<script>alert(1)",
	 "<p>x</p>"},
	{"script_comment",
	 "<!--<script>alert(1)</script>-->x",
	 "<p>x</p>"},
	{"script_cdata",
	 "<![CDATA[<script>alert(1)</script>]]>x",
	 "<p>![CDATA[]]&gt;x</p>"},
	{"script_in_attr",
	 "<p title=\"<script>alert(1)</script>\">t</p>",
	 "<p title=\"&lt;script&gt;alert(1)&lt;/script&gt;\">t</p>"},
	{"script_src",
	 "<script src=\"http://evil/x.js\"></script>x",
	 "<p>x</p>"},
	{"script_space",
	 "<script >alert(1)</script >x",
	 "<p>x</p>"},
	{"script_slash",
	 "<script/xss src=\"http://evil/x.js\"></script>x",
	 "<p>x</p>"},
	{"onerror",
	 "<img src=x onerror=alert(1)>",
	 "<img>"},
	{"onerror_quoted",
	 "<img src=\"x\" onerror=\"alert(1)\">",
	 "<img>"},
	{"onload_body",
	 "<body onload=\"alert(1)\">hi</body>",
	 "hi"},
	{"onmouseover",
	 "<b onmouseover=alert(1)>b</b>",
	 "<b>b</b>"},
	{"img_slash",
	 "<img/onerror=alert(1) src=x>",
	 "<img>"},
	{"img_slash2",
	 "<img src=x/onerror=alert(1)>",
	 "<img>"},
	{"on_upper",
	 "<div ONCLICK=\"alert(1)\">d</div>",
	 "<div>d</div>"},
	{"on_backtick",
	 "<p onclick=`alert(1)`>p</p>",
	 "<p>p</p>"},
	{"js_href",
	 "<a href=\"javascript:alert(1)\">x</a>",
	 "<a>x</a>"},
	{"js_href_case",
	 "<a href=\"JaVaScRiPt:alert(1)\">x</a>",
	 "<a>x</a>"},
	{"js_dec_entity",
	 "<a href=\"&#106;avascript:alert(1)\">x</a>",
	 "<a>x</a>"},
	{"js_hex_entity",
	 "<a href=\"&#x6A;avascript:alert(1)\">x</a>",
	 "<a>x</a>"},
	{"js_entity_nosemi",
	 "<a href=\"&#106&#97&#118&#97&#115&#99&#114&#105&#112&#116&#58alert(1)\">x</a>",
	 "<a>x</a>"},
	{"js_tab",
	 "<a href=\"java\tscript:alert(1)\">x</a>",
	 "<a>x</a>"},
	{"js_newline",
	 "<a href=\"java\nscript:alert(1)\">x</a>",
	 "<a>x</a>"},
	{"js_tab_entity",
	 "<a href=\"java&#x09;script:alert(1)\">x</a>",
	 "<a>x</a>"},
	{"js_lead_space",
	 "<a href=\" \x01 javascript:alert(1)\">x</a>",
	 "<a>x</a>"},
	{"js_colon_entity",
	 "<a href=\"javascript&colon;alert(1)\">x</a>",
	 "<a>x</a>"},
	{"vbscript",
	 "<a href=\"vbscript:msgbox(1)\">x</a>",
	 "<a>x</a>"},
	{"data_html",
	 "<a href=\"data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==\">x</a>",
	 "<a>x</a>"},
	{"data_img_src_html",
	 "<img src=\"data:text/html,<script>alert(1)</script>\">",
	 "<img>"},
	{"data_svg",
	 "<img src=\"data:image/svg+xml;base64,PHN2Zz4=\">",
	 "<img>"},
	{"data_png",
	 "<img src=\"data:image/png;base64,iVBORw0KGgo=\" alt=\"dot\">",
	 "<img src=\"data:image/png;base64,iVBORw0KGgo=\" alt=\"dot\">"},
	{"data_png_bad",
	 "<img src=\"data:image/png;base64,iVBO'onerror=x\">",
	 "<img>"},
	{"relative_href",
	 "<a href=\"/inbox\">x</a><a href=\"//evil.example/\">y</a><a href=\"#top\">z</"
	 "a>",
	 "<a>x</a><a>y</a><a>z</a>"},
	{"http_href",
	 "<a href=\"https://example.com/a?b=1&amp;c=2\">link</a>",
	 "<a href=\"https://example.com/a?b=1&amp;c=2\" rel=\"noopener noreferrer\" tar"
	 "get=\"_blank\">link</a>"},
	{"mailto_href",
	 "<a href=\"mailto:taro@example.jp\">mail</a>",
	 "<a href=\"mailto:taro@example.jp\" rel=\"noopener noreferrer\" target=\"_blan"
	 "k\">mail</a>"},
	{"svg_script",
	 "<svg><script>alert(1)</script></svg>x",
	 "x"},
	{"svg_onload",
	 "<svg onload=alert(1)>x</svg>y",
	 "y"},
	{"svg_anim",
	 "<svg><animate onbegin=alert(1) attributeName=x dur=1s>",
	 ""},
	{"math",
	 "<math><maction actiontype=\"statusline\" xlink:href=\"javascript:alert(1)\">x"
	 "</maction></math>y",
	 "y"},
	{"base",
	 "<base href=\"javascript:alert(1)//\"><a href=\"/x\">x</a>",
	 "<a>x</a>"},
	{"meta_refresh",
	 "<meta http-equiv=\"refresh\" content=\"0;url=javascript:alert(1)\">x",
	 "<p>x</p>"},
	{"form",
	 "<form action=\"javascript:alert(1)\"><input type=submit></form>x",
	 "x"},
	{"formaction",
	 "<button formaction=\"javascript:alert(1)\">b</button><input formaction=javasc"
	 "ript:alert(1)>x",
	 "x"},
	{"object",
	 "<object data=\"javascript:alert(1)\"></object>x",
	 "x"},
	{"embed",
	 "<embed src=\"javascript:alert(1)\">x",
	 ""},
	{"iframe",
	 "<iframe src=\"javascript:alert(1)\"></iframe>x",
	 "x"},
	{"iframe_srcdoc",
	 "<iframe srcdoc=\"<script>alert(1)</script>\"></iframe>x",
	 "x"},
	{"frameset",
	 "<frameset><frame src=\"javascript:alert(1)\"></frameset>",
	 ""},
	{"css_expression",
	 "<p style=\"width: expression(alert(1))\">p</p>",
	 "<p>p</p>"},
	{"css_url_js",
	 "<div style=\"background-image: url(javascript:alert(1))\">d</div>",
	 "<div>d</div>"},
	{"css_moz_binding",
	 "<div style=\"-moz-binding: url(http://evil/x.xml#xss)\">d</div>",
	 "<div>d</div>"},
	{"css_import",
	 "<div style=\"color: red; @import 'http://evil/x.css'\">d</div>",
	 "<div style=\"color: red\">d</div>"},
	{"css_behavior",
	 "<div style=\"behavior: url(x.htc)\">d</div>",
	 "<div>d</div>"},
	{"css_escape",
	 "<div style=\"color: r\\65 d; width: e\\78 pression(alert(1))\">d</div>",
	 "<div>d</div>"},
	{"css_comment",
	 "<div style=\"width: ex/**/pression(alert(1))\">d</div>",
	 "<div>d</div>"},
	{"css_good",
	 "<p style=\"color: #333; font-family: 'MS Gothic', sans-serif; font-size: 12px"
	 "; margin: 0 auto; border: 1px solid rgb(0, 0, 0)\">p</p>",
	 "<p style=\"color: #333; font-family: &#39;MS Gothic&#39;, sans-serif; font-si"
	 "ze: 12px; margin: 0 auto; border: 1px solid rgb(0, 0, 0)\">p</p>"},
	{"style_elem",
	 "<style>body{background:url(javascript:alert(1))}</style>x",
	 "<p>x</p>"},
	{"style_close",
	 "<style></style><img src=x onerror=alert(1)></style>x",
	 "<img>x"},
	{"style_trick",
	 "<style>a{}</style ><script>alert(1)</script>x",
	 "<p>x</p>"},
	{"unclosed",
	 "<b><i>bold italic",
	 "<b><i>bold italic</i></b>"},
	{"unclosed_attr",
	 "<img src=\"x onerror=alert(1)//",
	 "<img>"},
	{"mismatched_quotes",
	 "<a href=\"http://ok/\" title='x\" onmouseover=\"alert(1)'>t</a>",
	 "<a href=\"http://ok/\" title=\"x&quot; onmouseover=&quot;alert(1)\" rel=\"noo"
	 "pener noreferrer\" target=\"_blank\">t</a>"},
	{"noval_attr",
	 "<td nowrap>c</td>",
	 "<td nowrap=\"nowrap\">c</td>"},
	{"comment_open",
	 "<!--> <img src=x onerror=alert(1)> -->x",
	 "<p>x</p>"},
	{"comment_script",
	 "<!--<script>alert(1)</script>-->y",
	 "<p>y</p>"},
	{"cond_comment",
	 "<!--[if IE]><script>alert(1)</script><![endif]-->z",
	 "<p>z</p>"},
	{"cond_comment_down",
	 "<![if !IE]><img src=x onerror=alert(1)><![endif]>w",
	 "<p>![if !IE]&gt;<img>&lt;![endif]&gt;w</p>"},
	{"noscript_mxss",
	 "<noscript><p title=\"</noscript><img src=x onerror=alert(1)>\"></noscript>",
	 ""},
	{"svg_style_mxss",
	 "<svg><style><img src=x onerror=alert(1)></style></svg>",
	 ""},
	{"math_mglyph_mxss",
	 "<math><mtext><table><mglyph><style><img src=x onerror=alert(1)>",
	 ""},
	{"template",
	 "<template><img src=x onerror=alert(1)></template>t",
	 "t"},
	{"textarea",
	 "<textarea><img src=x onerror=alert(1)></textarea>t",
	 "t"},
	{"title",
	 "<title></title><img src=x onerror=alert(1)></title>t",
	 "<img>t"},
	{"xmp",
	 "<xmp><img src=x onerror=alert(1)></xmp>t",
	 "t"},
	{"entities_text",
	 "<p>&lt;script&gt;alert(1)&lt;/script&gt; &amp; &quot;q&quot; &#39;</p>",
	 "<p>&lt;script&gt;alert(1)&lt;/script&gt; &amp; &quot;q&quot; &#39;</p>"},
	{"japanese",
	 "<p>\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e\xe3\x81\xae\xe3\x83\xa1\xe3\x83\xbc\xe3"
	 "\x83\xab\xe3\x80\x82\xe3\x81\x93\xe3\x82\x93\xe3\x81\xab\xe3\x81\xa1\xe3\x81\xaf"
	 "</p>",
	 "<p>\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e\xe3\x81\xae\xe3\x83\xa1\xe3\x83\xbc\xe3"
	 "\x83\xab\xe3\x80\x82\xe3\x81\x93\xe3\x82\x93\xe3\x81\xab\xe3\x81\xa1\xe3\x81\xaf"
	 "</p>"},
	{"japanese_font",
	 "<font face=\"\xef\xbc\xad\xef\xbc\xb3 \xef\xbc\xb0\xe3\x82\xb4\xe3\x82\xb7\xe3"
	 "\x83\x83\xe3\x82\xaf\" color=\"#ff0000\">\xe8\xb5\xa4</font>",
	 "<font face=\"\xef\xbc\xad\xef\xbc\xb3 \xef\xbc\xb0\xe3\x82\xb4\xe3\x82\xb7\xe3"
	 "\x83\x83\xe3\x82\xaf\" color=\"#ff0000\">\xe8\xb5\xa4</font>"},
	{"cid",
	 "<img src=\"cid:logo%40example.jp\" alt=\"logo\">",
	 "<img src=\"/blob/logo@example.jp\" alt=\"logo\">"},
	{"cid_case",
	 "<img src=\"CID:part1.abc@x\">",
	 "<img src=\"/blob/part1.abc@x\">"},
	{"remote_img",
	 "<img src=\"http://tracker.example/p.gif?u=1&amp;x=2\" width=\"1\" height=\"1\""
	 ">",
	 "<img data-yubin-src=\"http://tracker.example/p.gif?u=1&amp;x=2\" width=\"1\" "
	 "height=\"1\">"},
	{"link_rel",
	 "<a href=\"http://example.com/\" target=\"_self\" rel=\"opener\">e</a>",
	 "<a href=\"http://example.com/\" rel=\"noopener noreferrer\" target=\"_blank\""
	 ">e</a>"},
	{"id_class",
	 "<div id=\"x\" class=\"y\" name=\"z\" data-x=\"1\">d</div>",
	 "<div>d</div>"},
	{"srcset",
	 "<img src=\"cid:a\" srcset=\"http://evil/x.png 2x\">",
	 "<img src=\"/blob/a\">"},
	{"xlink",
	 "<a xlink:href=\"javascript:alert(1)\">x</a>",
	 "<a>x</a>"},
	{"unknown_tags",
	 "<section><blink>blink</blink><o:p>outlook</o:p></section>",
	 "blink<p>outlook</p>"},
	{"table",
	 "<table border=\"0\" cellpadding=\"2\" background=\"http://x/bg.png\"><tr><td "
	 "colspan=\"2\" bgcolor=\"#eee\" onclick=\"x\">c</td></tr></table>",
	 "<table border=\"0\" cellpadding=\"2\"><tr><td colspan=\"2\" bgcolor=\"#eee\">"
	 "c</td></tr></table>"},
	{"link_elem",
	 "<link rel=stylesheet href=\"http://evil/x.css\">x",
	 "<p>x</p>"},
	{"audio_video",
	 "<video><source onerror=\"alert(1)\"></video><audio src=x onerror=alert(1)>x",
	 ""},
	{"canvas",
	 "<canvas>fallback</canvas>x",
	 "x"},
	{"applet",
	 "<applet code=\"x.class\"></applet>x",
	 "x"},
	{"encoded_lt",
	 "\xc2\xbcscript\xc2\xbe" "alert(1)\xc2\xbc/script\xc2\xbe",
	 "<p>\xc2\xbcscript\xc2\xbe" "alert(1)\xc2\xbc/script\xc2\xbe</p>"},
	{"nested_quotes",
	 "<img \"\"\"><script>alert(1)</script>\">",
	 "<img>&quot;&gt;"},
	{"attr_break",
	 "<a href=\"http://ok/\"onclick=\"alert(1)\">x</a>",
	 "<a href=\"http://ok/\" rel=\"noopener noreferrer\" target=\"_blank\">x</a>"},
	{"dir_lang",
	 "<p dir=\"rtl\" lang=\"ar\" title=\"t\">p</p>",
	 "<p dir=\"rtl\" lang=\"ar\" title=\"t\">p</p>"},
	{"pre_code",
	 "<pre><code>if (a &lt; b) {}\n  x</code></pre>",
	 "<pre><code>if (a &lt; b) {}\n  x</code></pre>"},
	{"lists",
	 "<ol start=\"3\" type=\"a\"><li value=\"5\">a</li></ol><ul><li>b</li></ul><dl>"
	 "<dt>t</dt><dd>d</dd></dl>",
	 "<ol start=\"3\" type=\"a\"><li value=\"5\">a</li></ol><ul><li>b</li></ul><dl>"
	 "<dt>t</dt><dd>d</dd></dl>"},
	{"dup_href",
	 "<a href=\"http://x\" HREF=\"javascript:y\">a</a>",
	 "<a href=\"http://x\" rel=\"noopener noreferrer\" target=\"_blank\">a</a>"},
	{"img_js_upper",
	 "<IMG SRC=JaVaScRiPt:alert('XSS')>",
	 "<img>"},
	{"img_js_newline",
	 "<img src=\"jav&#x0A;ascript:alert(1)\">",
	 "<img>"},
	{"href_entity_http",
	 "<a href=\"&#x68;ttp://ok\">ok</a><a href=\"ht&#09;tp://x\">t</a>",
	 "<a href=\"http://ok\" rel=\"noopener noreferrer\" target=\"_blank\">ok</a><a "
	 "href=\"http://x\" rel=\"noopener noreferrer\" target=\"_blank\">t</a>"},
	{"upper_tags",
	 "<A HREF=\"http://x\" TARGET=_top onClick=x>u</A>",
	 "<a href=\"http://x\" rel=\"noopener noreferrer\" target=\"_blank\">u</a>"},
	{"quote_in_url",
	 "<img src=\"http://a/&quot;onerror=&quot;x\">",
	 "<img data-yubin-src=\"http://a/&quot;onerror=&quot;x\">"},
	{"mailto_script",
	 "<a href=\"mailto:x@y?body=<script>\">m</a>",
	 "<a href=\"mailto:x@y?body=&lt;script&gt;\" rel=\"noopener noreferrer\" target"
	 "=\"_blank\">m</a>"},
	{"dup_style",
	 "<div style=\"color:red\" STYLE=\"x:y\">d</div>",
	 "<div style=\"color: red\">d</div>"},
};

static void test_corpus(void **state)
{
	(void)state;
	assert_true(ARRAY_LEN(corpus) >= 60);
	for (size_t i = 0; i < ARRAY_LEN(corpus); i++) {
		char *got = san(corpus[i].in, &cid_opts, NULL);
		if (strcmp(got, corpus[i].want) != 0)
			fail_msg("%s:\n got  %s\n want %s", corpus[i].name, got, corpus[i].want);
		free(got);
	}
}

/* Every vector again with remote images allowed and no callback: still
 * nothing that runs (check_output() on each). */
static void test_corpus_other_opts(void **state)
{
	(void)state;
	struct html_sanitize_opts o = {.allow_remote_images = true};
	for (size_t i = 0; i < ARRAY_LEN(corpus); i++) {
		free(san(corpus[i].in, &o, NULL));
		free(san(corpus[i].in, NULL, NULL));
	}
}

static void test_nul_bytes(void **state)
{
	(void)state;
	static const char in[] = "<a href=\"java\0script:alert(1)\">x</a><scr\0ipt>y</script>"
				 "<img src=x o\0nerror=alert(1)>z\0z";
	char *got = san_full(in, sizeof in - 1, NULL, 1u << 20, 0, NULL);
	assert_null(istr(got, "script:"));
	assert_null(istr(got, "onerror"));
	assert_non_null(strstr(got, "z\xef\xbf\xbdz"));
	free(got);
	/* invalid UTF-8 becomes U+FFFD */
	EQ("<p>\xff\xc3(</p>", NULL, "<p>\xef\xbf\xbd\xef\xbf\xbd(</p>");
}

static void test_remote_images(void **state)
{
	(void)state;
	struct html_sanitize_report rep;
	const char *in = "<p><img src=\"https://ex.com/a.png\" alt=\"a\">"
			 "<img src=\"HTTP://ex.com/b.png?x=1&amp;y='2'\"></p>";
	char *got = san(in, NULL, &rep);
	assert_string_equal(got, "<p><img data-yubin-src=\"https://ex.com/a.png\" alt=\"a\">"
			    "<img data-yubin-src=\"HTTP://ex.com/b.png?x=1&amp;y=&#39;2&#39;\">"
			    "</p>");
	assert_true(rep.remote_images_blocked);
	assert_int_equal(rep.remote_images, 2);
	assert_null(rep.cut);
	free(got);

	struct html_sanitize_opts o = {.allow_remote_images = true};
	got = san(in, &o, &rep);
	assert_string_equal(got, "<p><img src=\"https://ex.com/a.png\" alt=\"a\">"
			    "<img src=\"HTTP://ex.com/b.png?x=1&amp;y=&#39;2&#39;\"></p>");
	assert_false(rep.remote_images_blocked);
	assert_int_equal(rep.remote_images, 0);
	free(got);

	/* no remote image: no button */
	got = san("<img src=\"cid:x\"><p>t</p>", &cid_opts, &rep);
	assert_false(rep.remote_images_blocked);
	assert_int_equal(rep.cid_images, 1);
	free(got);
}

static void test_cid(void **state)
{
	(void)state;
	int calls = 0;
	struct html_sanitize_opts o = {.cid_url = cid_blob, .cid_arg = &calls};
	struct html_sanitize_report rep;
	char *got = san("<img src=\" cid:a%2Fb%40c \"><img src=\"cid:missing\">"
			"<img src=\"cid:x%00y\"><img src=\"cid:%zz\">", &o, &rep);
	assert_string_equal(got, "<img src=\"/blob/a/b@c\"><img><img><img src=\"/blob/%zz\">");
	assert_int_equal(calls, 3);
	assert_int_equal(rep.cid_images, 2);
	assert_int_equal(rep.urls_dropped, 2);
	free(got);
	/* no callback: no src */
	EQ("<img src=\"cid:a\" alt=\"x\">", NULL, "<img alt=\"x\">");
}

static void test_links(void **state)
{
	(void)state;
	EQ("<a href=\"  https://ex.com/\n?q=1\t \">x</a>", NULL,
	   "<a href=\"https://ex.com/?q=1\" rel=\"noopener noreferrer\" target=\"_blank\">x</a>");
	/* a link without a usable href gets no rel/target */
	EQ("<a name=\"top\">x</a>", NULL, "<a>x</a>");
	EQ("<a href=\"ftp://ex.com/\">x</a><a href=\"file:///etc/passwd\">y</a>", NULL,
	   "<a>x</a><a>y</a>");
	EQ("<a href=\"http://ex.com/\"><b>bold link</b></a>", NULL,
	   "<a href=\"http://ex.com/\" rel=\"noopener noreferrer\" target=\"_blank\">"
	   "<b>bold link</b></a>");
}

static void test_data_urls(void **state)
{
	(void)state;
	struct html_sanitize_opts o = {.data_url_max = 48};
	EQ("<img src=\"data:image/gif;base64,R0lGODlhAQABAAAAACw=\">", &o,
	   "<img src=\"data:image/gif;base64,R0lGODlhAQABAAAAACw=\">");
	EQ("<img src=\"data:image/gif;base64,R0lGODlhAQABAAAAACwAAAAAAQABAAA=\">", &o, "<img>");
	EQ("<img src=\"data:image/jpeg,xyz\"><img src=\"data:image/webp;base64,\">"
	   "<img src=\"data:image/png;charset=x;base64,AAAA\">", NULL, "<img><img><img>");
	EQ("<img src=\"DATA:IMAGE/JPEG;BASE64,/9j/\n4AA=\">", NULL,
	   "<img src=\"DATA:IMAGE/JPEG;BASE64,/9j/4AA=\">");
}

static void test_css(void **state)
{
	(void)state;
	struct html_sanitize_report rep;
	char *got = san("<p style=\"COLOR:Blue;;x:y; position: fixed; top: 0; "
			"width: 100px !important; font: 12px/1.5 &quot;A&quot;; color: rgb(1,2,3);"
			"background-color: rgb(1,url(x)); margin: 0 /* c */; height: calc(1px);"
			"font-family: &quot;unbalanced; border: 1px solid #ccc\">p</p>",
			NULL, &rep);
	assert_string_equal(got, "<p style=\"color: Blue; width: 100px !important; "
			    "font: 12px/1.5 &quot;A&quot;; color: rgb(1,2,3); "
			    "border: 1px solid #ccc\">p</p>");
	/* x, position, top, background-color, margin, height, font-family */
	assert_int_equal(rep.css_dropped, 7);
	free(got);
	EQ("<div style=\"   \">d</div>", NULL, "<div>d</div>");
	/* more declarations than fit in a value: the rest dropped, not the mail */
	struct buf in;
	buf_init(&in, 1u << 20);
	assert_int_equal(buf_append_str(&in, "<p style=\""), 0);
	for (int i = 0; i < 2000; i++)
		assert_int_equal(buf_append_str(&in, "font:x;"), 0);
	assert_int_equal(buf_append_str(&in, "\">p</p><b>after</b>"), 0);
	got = san_full(in.data, in.len, NULL, 1u << 20, 0, &rep);
	assert_non_null(strstr(got, "font: x; font: x"));
	assert_non_null(strstr(got, "\">p</p><b>after</b>"));
	assert_true(rep.css_dropped > 0);
	free(got);
	buf_free(&in);
	EQ("<div style=\"color:red\nfont-size:2em\">d</div>", NULL, "<div>d</div>");
	/* MS Mincho in full-width letters and kanji */
	EQ("<span style=\"font-family: '\xef\xbc\xad\xef\xbc\xb3 "
	   "\xe6\x98\x8e\xe6\x9c\x9d'\">j</span>", NULL,
	   "<span style=\"font-family: &#39;\xef\xbc\xad\xef\xbc\xb3 "
	   "\xe6\x98\x8e\xe6\x9c\x9d&#39;\">j</span>");
}

static void test_report(void **state)
{
	(void)state;
	struct html_sanitize_report rep;
	char *got = san("<section id=a><script>x</script><!-- c --><p onclick=y class=z>t</p>"
			"<a href=\"javascript:q\">l</a></section>", NULL, &rep);
	assert_string_equal(got, "<p>t</p><a>l</a>");
	assert_int_equal(rep.elements_dropped, 2);
	assert_int_equal(rep.tags_unwrapped, 3); /* html, body, section */
	assert_int_equal(rep.attrs_dropped, 3); /* not section's: it is unwrapped */
	assert_int_equal(rep.urls_dropped, 1);
	assert_false(rep.remote_images_blocked);
	assert_null(rep.cut);
	free(got);
}

static void test_empty(void **state)
{
	(void)state;
	EQ("", NULL, "");
	struct buf b;
	buf_init(&b, 100);
	assert_int_equal(html_sanitize(NULL, 0, NULL, &b, NULL), 0);
	assert_int_equal(b.len, 0);
	buf_free(&b);
	EQ("<!-- only a comment -->", NULL, "");
	EQ("   ", NULL, "");
	EQ("text only", NULL, "<p>text only</p>");
	/* appended to what out holds */
	buf_init(&b, 100);
	assert_int_equal(buf_append_str(&b, "<div>"), 0);
	assert_int_equal(html_sanitize("<b>x</b>", 8, NULL, &b, NULL), 0);
	assert_string_equal(b.data, "<div><b>x</b>");
	buf_free(&b);
}

static bool ends_with(const char *s, const char *suffix)
{
	size_t n = strlen(s), k = strlen(suffix);
	return n >= k && strcmp(s + n - k, suffix) == 0;
}

/* Cut by the output cap at every size: well-formed, ending in the mark,
 * never past the cap; the whole output when the cap allows it. */
static void test_output_cap(void **state)
{
	(void)state;
	const char *in = "<table><tr><td><a href=\"http://ex.com/\">\xe6\x97\xa5\xe6\x9c\xac"
			 " &amp; link</a></td></tr></table><p>tail text</p>";
	char *full = san(in, NULL, NULL);
	size_t mark = strlen(HTML_SANITIZE_TRUNCATED_MARK);
	for (size_t max = 0; max < strlen(full) + mark + 2; max++) {
		struct html_sanitize_report rep;
		struct buf b;
		buf_init(&b, max);
		int r = html_sanitize(in, strlen(in), NULL, &b, &rep);
		assert_true(b.len <= max);
		char *got = b.data != NULL ? b.data : "";
		check_output(got);
		if (r == 0) {
			assert_string_equal(got, full);
		} else {
			assert_int_equal(r, -1);
			assert_non_null(rep.cut);
			if (max >= mark)
				assert_true(ends_with(got, HTML_SANITIZE_TRUNCATED_MARK));
			else
				assert_int_equal(b.len, 0);
		}
		buf_free(&b);
	}
	free(full);
}

static void test_input_caps(void **state)
{
	(void)state;
	struct html_sanitize_report rep;
	/* more than 8 MiB */
	size_t n = HTML_SANITIZE_IN_MAX + 100;
	char *big = xmalloc(n + 1);
	memset(big, 'a', n);
	memcpy(big, "<p>", 3);
	big[n] = '\0';
	char *got = san_full(big, n, NULL, 32u << 20, -1, &rep);
	assert_string_equal(rep.cut, "input too large");
	assert_true(ends_with(got, "</p>" HTML_SANITIZE_TRUNCATED_MARK));
	assert_true(strlen(got) < HTML_SANITIZE_IN_MAX + 100);
	free(got);

	/* too many tags: cut before the one past the cap */
	n = 4 * ((size_t)HTML_SANITIZE_TAGS_MAX + 10);
	for (size_t i = 0; i < n; i += 4)
		memcpy(big + i, "<br>", 4);
	got = san_full(big, n, NULL, 32u << 20, -1, &rep);
	assert_string_equal(rep.cut, "too many tags");
	free(got);
	free(big);

	/* too many attributes in a tag */
	struct buf in;
	buf_init(&in, 1u << 20);
	assert_int_equal(buf_append_str(&in, "<p>before</p><b"), 0);
	for (int i = 0; i <= HTML_SANITIZE_TAG_ATTRS_MAX; i++)
		assert_int_equal(buf_printf(&in, " a%d=\"x y\"", i), 0);
	assert_int_equal(buf_append_str(&in, ">after</b>"), 0);
	got = san_full(in.data, in.len, NULL, 1u << 20, -1, &rep);
	assert_string_equal(rep.cut, "too many attributes");
	assert_string_equal(got, "<p>before</p>" HTML_SANITIZE_TRUNCATED_MARK);
	free(got);
	buf_free(&in);

	/* what libxml2 reads as many attributes: a name past its 100 bytes
	 * goes on as the next attribute; after a bogus '="' a quote is no
	 * value */
	for (int k = 0; k < 2; k++) {
		buf_init(&in, 1u << 20);
		assert_int_equal(buf_append_str(&in, k == 0 ? "<p>ok</p><b " : "<p>ok</p><b =\""),
				 0);
		for (int i = 0; i <= HTML_SANITIZE_TAG_ATTRS_MAX; i++)
			assert_int_equal(buf_printf(&in, k == 0 ? "a%099d" : " a%d", i), 0);
		assert_int_equal(buf_append_str(&in, "\">x</b>"), 0);
		got = san_full(in.data, in.len, NULL, 1u << 20, -1, &rep);
		assert_string_equal(rep.cut, "too many attributes");
		assert_string_equal(got, "<p>ok</p>" HTML_SANITIZE_TRUNCATED_MARK);
		free(got);
		buf_free(&in);
	}

	/* an attribute longer than the cap is dropped */
	buf_init(&in, 1u << 20);
	assert_int_equal(buf_append_str(&in, "<p title=\""), 0);
	for (size_t i = 0; i <= HTML_SANITIZE_ATTR_MAX; i++)
		assert_int_equal(buf_append(&in, "t", 1), 0);
	assert_int_equal(buf_append_str(&in, "\" lang=\"ja\">x</p>"), 0);
	got = san_full(in.data, in.len, NULL, 1u << 20, 0, &rep);
	assert_string_equal(got, "<p lang=\"ja\">x</p>");
	assert_int_equal(rep.attrs_dropped, 1);
	free(got);
	buf_free(&in);
}

/* Nesting past the depth cap: tags dropped, text kept, still balanced. */
static void test_depth(void **state)
{
	(void)state;
	struct buf in;
	struct html_sanitize_report rep;
	buf_init(&in, 1u << 20);
	/* 200 levels: past our cap, not past libxml2's 256 */
	for (int i = 0; i < 100; i++)
		assert_int_equal(buf_append_str(&in, "<div><span>"), 0);
	assert_int_equal(buf_append_str(&in, "deep"), 0);
	char *got = san_full(in.data, in.len, NULL, 1u << 20, 0, &rep);
	assert_non_null(strstr(got, "deep"));
	size_t opened = 0;
	for (const char *p = got; (p = strstr(p, "<div>")) != NULL; p++)
		opened++;
	for (const char *p = got; (p = strstr(p, "<span>")) != NULL; p++)
		opened++;
	assert_int_equal(opened, HTML_SANITIZE_DEPTH_MAX);
	assert_true(rep.tags_unwrapped > 0);
	free(got);

	/* past libxml2's 256 levels: cut, and said so */
	for (int i = 0; i < 100; i++)
		assert_int_equal(buf_append_str(&in, "<div><span>"), 0);
	assert_int_equal(buf_append_str(&in, "deeper"), 0);
	got = san_full(in.data, in.len, NULL, 1u << 20, -1, &rep);
	assert_string_equal(rep.cut, "nested too deep");
	assert_null(strstr(got, "deeper"));
	assert_true(ends_with(got, "</div>" HTML_SANITIZE_TRUNCATED_MARK));
	free(got);
	buf_free(&in);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_corpus),
		cmocka_unit_test(test_corpus_other_opts),
		cmocka_unit_test(test_nul_bytes),
		cmocka_unit_test(test_remote_images),
		cmocka_unit_test(test_cid),
		cmocka_unit_test(test_links),
		cmocka_unit_test(test_data_urls),
		cmocka_unit_test(test_css),
		cmocka_unit_test(test_report),
		cmocka_unit_test(test_empty),
		cmocka_unit_test(test_output_cap),
		cmocka_unit_test(test_input_caps),
		cmocka_unit_test(test_depth),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
