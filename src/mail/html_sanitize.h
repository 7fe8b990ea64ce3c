/* html_sanitize.h - HTML mail made safe to show in the webmail's sandboxed
 * iframe.
 *
 * Pure, no I/O.  The part (UTF-8, already transfer-decoded and converted
 * from its charset; invalid bytes and NULs become U+FFFD first) is parsed
 * by libxml2's HTML parser (no network, no DTD, <meta charset> ignored) and
 * the tree is walked iteratively; the output is written only from the
 * allowlists below, with names we spell and text and attribute values we
 * escape (& < > " ' always), so nothing of the input's markup reaches it
 * as it was.  No element whose content a browser parses as raw text
 * (script, style, textarea, title, xmp, noscript, ...) and no foreign
 * content (svg, math) is ever written, so the browser cannot read the
 * output differently from how it was written.
 *
 * Elements written (with their children):
 *   p br div span a b i u s em strong small big sub sup blockquote pre code
 *   hr h1-h6 ul ol li dl dt dd table thead tbody tfoot tr td th caption
 *   colgroup col img font center abbr address cite q del ins mark figure
 *   figcaption
 * Dropped with everything inside (counted in elements_dropped):
 *   script style iframe frame frameset noframes object embed applet param
 *   noscript noembed template svg math form input button select option
 *   optgroup datalist textarea link meta base title head audio video
 *   source track canvas map area xmp plaintext listing dialog portal;
 *   comments, processing instructions and the doctype are dropped too.
 * Any other element (html, body, section, label, blink, ...): the tag is
 * dropped, its content kept (tags_unwrapped).
 *
 * Attributes written (anything else is dropped, counted in attrs_dropped:
 * every on*, id, class, name, srcset, formaction, xlink:*, background ...):
 *   every element: dir lang title style (style filtered, see below)
 *   a: href (http:, https:, mailto: only), plus our rel="noopener
 *      noreferrer" target="_blank" when an href is kept
 *   img: src (see below) alt width height align border
 *   table: width height align bgcolor border cellpadding cellspacing
 *   thead tbody tfoot tr: align valign bgcolor height
 *   td th: colspan rowspan align valign width height bgcolor nowrap
 *   col colgroup: span width align valign
 *   font: color face size
 *   p div h1-h6 caption: align
 *   hr: align width size noshade
 *   ol: start type   ul: type   li: value type
 * A value longer than HTML_SANITIZE_ATTR_MAX is dropped.
 *
 * URLs (href, src): tabs and line ends removed and leading and trailing
 * C0 controls and spaces trimmed, as a browser's URL parser does, after
 * libxml2 has decoded the character references; a URL still holding a
 * control character is dropped; the scheme (case-insensitive) must be one
 * allowed, a URL without one (relative, "//host", "#frag") is dropped.  We
 * write the value we checked, escaped, so the browser sees that value.
 * img src: "cid:X" is handed (X percent-decoded) to the caller's cid
 * callback, which gives the URL to use (no callback or -1: no src);
 * http: and https: are kept with allow_remote_images, else the src is
 * dropped, the URL written as data-yubin-src and remote_images_blocked
 * set; data:image/(png|gif|jpeg|webp);base64,... only, with nothing but
 * base64 after the comma and at most data_url_max bytes; anything else is
 * dropped (urls_dropped).
 *
 * CSS: <style> elements are dropped with their content.  A style
 * attribute is split into declarations at ';' and each one is kept only
 * when its property is in the list below and its value is made only of
 * letters, digits, non-ASCII characters, blanks and # % . , - + _ ! / ' "
 * ( ) -- so no "\\" (escapes), "*" (comments), "@", braces, "<", ">",
 * ":", "=", "&" or controls --, has balanced quotes, calls no function but
 * rgb() rgba() hsl() hsla() (so no url(), expression(), image-set(),
 * var(), attr()),
 * and holds none of the words expression, javascript, vbscript, behavior,
 * binding, url (any case, even where they would do nothing):
 *   color background-color font font-family font-size font-style
 *   font-weight font-variant line-height letter-spacing word-spacing
 *   text-align text-decoration text-indent text-transform white-space
 *   vertical-align direction margin[-top|-right|-bottom|-left]
 *   padding[-...] border border-{top,right,bottom,left}[-width|-style|
 *   -color] border-width border-style border-color border-collapse
 *   border-spacing border-radius width height min-width max-width
 *   min-height max-height display list-style-type table-layout
 * (behavior, -moz-binding, position, background with its url() and the
 * rest are not there).  Refused declarations are counted in css_dropped;
 * a style with nothing left is not written.
 *
 * Caps: the input is cut at HTML_SANITIZE_IN_MAX bytes, and before the tag
 * that would pass HTML_SANITIZE_TAGS_MAX tags, HTML_SANITIZE_ATTRS_MAX
 * attributes in all or HTML_SANITIZE_TAG_ATTRS_MAX in one tag, counted
 * the way libxml2 2.9 reads start tags (which keeps libxml2's tree and its
 * quadratic duplicate-attribute check small: 8 MiB of the worst markup
 * take well under a second); the
 * walk stops after HTML_SANITIZE_NODES_MAX nodes; the output never passes
 * out->max nor HTML_SANITIZE_OUT_MAX.  Each of these ends the output early
 * with every open element closed and HTML_SANITIZE_TRUNCATED_MARK after;
 * a tag is never cut (text is, at a character boundary).  Elements nested
 * deeper than HTML_SANITIZE_DEPTH_MAX allowed elements lose their tag but
 * keep their content (tags_unwrapped); past 256 levels of nesting libxml2
 * stops parsing, and the output is cut there too ("nested too deep").
 * rep->cut is one of "input too large", "too many tags", "too many
 * attributes", "too many nodes", "nested too deep", "output cap", "no room
 * in the output", "no parser".
 *
 * The output is a fragment (no html, head or body) for the caller to put
 * in its own document: an <iframe sandbox> without allow-scripts and
 * allow-same-origin, under a CSP such as "default-src 'none'; img-src
 * <blob origin> data:; style-src 'unsafe-inline'" (style attributes are
 * written), adding http: https: to img-src only once the user allowed
 * remote images.  An <img> whose src was refused is kept without one (its
 * alt text shows).
 *
 * libxml2: xmlInitParser() is called (idempotent, thread-safe after the
 * first call); xmlCleanupParser() is not, as it would break other users of
 * libxml2 in the process -- its global tables stay allocated and reachable
 * until exit (LeakSanitizer does not report them). */
#ifndef YUBIN_MAIL_HTML_SANITIZE_H
#define YUBIN_MAIL_HTML_SANITIZE_H

#include <stdbool.h>
#include <stddef.h>

#include "core/buf.h"

#define HTML_SANITIZE_IN_MAX (8u * 1024 * 1024)
#define HTML_SANITIZE_OUT_MAX (16u * 1024 * 1024)
#define HTML_SANITIZE_TAGS_MAX 200000
#define HTML_SANITIZE_ATTRS_MAX 400000
#define HTML_SANITIZE_TAG_ATTRS_MAX 256
#define HTML_SANITIZE_NODES_MAX 1000000
#define HTML_SANITIZE_DEPTH_MAX 128
#define HTML_SANITIZE_ATTR_MAX (16u * 1024)
#define HTML_SANITIZE_DATA_URL_MAX (512u * 1024)
/* What a cut output ends with (after the open elements are closed). */
#define HTML_SANITIZE_TRUNCATED_MARK "\n<p>[... message truncated]</p>\n"

struct html_sanitize_opts {
	/* http: and https: images kept as they are (default: blocked). */
	bool allow_remote_images;
	/* data: image URLs longer than this are dropped; 0: the default,
	 * HTML_SANITIZE_DATA_URL_MAX (and never more than it). */
	size_t data_url_max;
	/* An <img src="cid:X">: append the URL to use to url (bounded by
	 * HTML_SANITIZE_DATA_URL_MAX + 256: room for a data: URL of the
	 * part) and return 0, or -1 to drop the src.  cid is X
	 * percent-decoded (RFC 2392), NUL-terminated, never holds a NUL.
	 * The URL is written escaped, unchecked.  NULL: cid: images get no
	 * src. */
	int (*cid_url)(void *arg, const char *cid, struct buf *url);
	void *cid_arg;
};

struct html_sanitize_report {
	/* Some http(s) image lost its src: show the "remote images" button. */
	bool remote_images_blocked;
	size_t remote_images;    /* images blocked */
	size_t elements_dropped; /* dropped with their content, comments included */
	size_t tags_unwrapped;   /* tag dropped, content kept */
	size_t attrs_dropped;    /* not allowed, too long, or a URL not allowed */
	size_t urls_dropped;     /* of those, href and src refused for their URL */
	size_t css_dropped;      /* style declarations refused */
	size_t cid_images;       /* cid: images given a URL by the callback */
	/* NULL, or why the output was cut short (a static string). */
	const char *cut;
};

/* Sanitise html[0..len) into out (appended).  o NULL: defaults; rep may be
 * NULL (else it is cleared first).  0 when all of the input was rendered,
 * -1 when a cap cut it: out then holds a well-formed prefix ending in
 * HTML_SANITIZE_TRUNCATED_MARK, or nothing new when out had no room even
 * for the mark; rep->cut says which cap. */
int html_sanitize(const char *html, size_t len, const struct html_sanitize_opts *o,
		  struct buf *out, struct html_sanitize_report *rep);

#endif
