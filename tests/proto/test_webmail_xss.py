"""The webmail page against hostile mail: an XSS corpus sent over SMTP and
opened one by one in the reading pane of a real browser (chromium through
tests/browser/webmail.mjs, scenario "xss").

Every payload tries to run script in the page or the message frame (alert,
window.__xss, window.top.__xss), to reach the network (the canary: a local
HTTP server that counts every request), or to navigate the page.  Nothing
may get through: no dialog, no request to the canary, no __xss, no script,
handler, form, frame or object in the frame's document, no link but http(s)
and mailto, and the headers shown as the literal text they decode to."""

import base64

import test_webmail as tw
from test_webmail import internet  # noqa: F401 (the fixture)

DEMO = tw.DEMO
EVIL_SUBJECT = "<img src=x onerror=alert('subj')> <script>top.__xss='subject'</script>"
EVIL_FROM = "<script>top.__xss='from'</script><b>Boss</b>"


def corpus(canary):
    """(subject, Content-Type of the HTML part, body) of each hostile HTML
    message."""
    c = canary
    return [
        ("XSS script", "text/html; charset=utf-8",
         f"<script>window.top.__xss='script';alert('script');fetch('{c}/script')</script>"
         "<p>script body</p><SCRIPT SRC=" + c + "/script.js></SCRIPT>"),
        ("XSS handlers", "text/html; charset=utf-8",
         "<body onload=\"alert('body')\"><img src=x onerror=\"alert('img')\">"
         "<div onmouseover=\"alert('over')\" style=\"height: 40px\">handlers body</div>"
         "<p onclick=top.__xss='click'>click</p><details open ontoggle=alert('toggle')>"
         "</details><video><source onerror=alert('video')></video>"),
        ("XSS javascript links", "text/html; charset=utf-8",
         "<p>links body</p><a href=\"javascript:alert('js')\">js</a>"
         "<a href=\" jav&#x09;ascript:top.__xss='tab'\">tab</a>"
         "<a href=\"JaVaScRiPt&colon;alert('case')\">case</a>"
         "<a href=\"data:text/html,&lt;script&gt;alert('data')&lt;/script&gt;\">data</a>"
         "<a href=\"vbscript:msgbox(1)\">vb</a><a href=\"https://example.org/ok\">ok</a>"
         "<a href=\"mailto:someone@example.org\">mail</a>"
         "<img src=\"javascript:alert('imgsrc')\">"),
        ("XSS css", "text/html; charset=utf-8",
         "<style>@import '" + c + "/import.css'; body { background: url(" + c + "/bg) }</style>"
         "<div style=\"width: expression(alert('expr')); background: url(javascript:alert(1))\">"
         "css body</div><div style=\"background-image: url(" + c + "/css)\">bg</div>"
         "<div style=\"behavior: url(" + c + "/x.htc); -moz-binding: url(" + c + "/x.xml)\">"
         "b</div><p style=\"color: red; font: 12px/1 'a\\'; x: url(" + c + "/esc)'\">esc</p>"
         "<link rel=stylesheet href=" + c + "/link.css>"),
        ("XSS svg", "text/html; charset=utf-8",
         "<p>svg body</p><svg><script>top.__xss='svg'</script>"
         "<image href=\"" + c + "/svgimg\"/></svg><svg onload=\"alert('svgload')\"/>"
         "<svg><animate onbegin=alert('anim') attributeName=x dur=1s></svg>"
         "<math><mtext><table><mglyph><style><img src=x onerror=alert('math')>"
         "</style></mglyph></table></mtext></math>"),
        ("XSS meta base form", "text/html; charset=utf-8",
         "<meta http-equiv=\"refresh\" content=\"0;url=" + c + "/refresh\">"
         "<base href=\"" + c + "/base/\"><p>form body</p>"
         "<form action=\"" + c + "/form\" method=post><input name=q value=1>"
         "<button>go</button></form><a href=\"relative/page\">rel</a>"
         "<img src=\"relative.png\"><img src=\"//127.0.0.1/x.png\">"),
        ("XSS malformed", "text/html; charset=utf-8",
         "<p>malformed body <b>bold <i>italic<div><!-- a comment -->"
         "<!-- --><script>top.__xss='comment'</script> -->"
         "<!--[if IE]><script>alert('ie')</script><![endif]-->"
         "<scr<script>ipt>alert('split')</script>"
         "<iframe src=\"" + c + "/iframe\"><iframe srcdoc=\"<script>top.__xss=1</script>\">"
         "</iframe></iframe><object data=\"" + c + "/object\"><embed src=\"" + c + "/embed\">"
         "</object><noscript><p title=\"</noscript><img src=x onerror=alert('ns')>\">"
         "</noscript><textarea><img src=x onerror=alert('ta')></textarea>"
         "<xmp><script>alert('xmp')</script></xmp><title><script>alert(1)</script></title>"
         "<img src=\"" + c + "/remote.png\" alt=\"remote\"><a href=\"https://example.org/\""
         " onclick=\"alert('a')\">x</a><img \"\"\" src=x onerror=alert('q')\">"
         "<div <img src=x onerror=alert('lt')>>"),
        ("XSS utf-7", "text/html; charset=utf-7",
         "+ADw-script+AD4-top.__xss='utf7'+ADw-/script+AD4-<p>utf7 body</p>"
         "+ADw-img src=x onerror=alert('u7')+AD4-"),
    ]


def html_mail(subject, ctype, body):
    return (f"From: Mallory <mallory@example.net>\r\nTo: {DEMO}\r\nSubject: {subject}\r\n"
            "MIME-Version: 1.0\r\nContent-Type: multipart/alternative; boundary=AB\r\n\r\n"
            "--AB\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nplain alternative\r\n"
            f"--AB\r\nContent-Type: {ctype}\r\nContent-Transfer-Encoding: base64\r\n\r\n" +
            tw.b64lines(body.encode()) + "--AB--\r\n").encode()


def encoded(text):
    return "=?UTF-8?B?" + base64.b64encode(text.encode()).decode() + "?="


def test_browser_xss_corpus(yubind, internet, tmp_path):  # noqa: F811
    msgs = corpus(internet.url)
    for subject, ctype, body in msgs:
        yubind.send("mallory@example.net", [DEMO], html_mail(subject, ctype, body))
    # headers whose decoded text is markup; a text/plain body with markup
    yubind.send("mallory@example.net", [DEMO], (
        f"From: {encoded(EVIL_FROM)} <boss@example.net>\r\nTo: {DEMO}\r\n"
        f"Subject: {encoded(EVIL_SUBJECT)}\r\nMIME-Version: 1.0\r\n"
        "Content-Type: text/plain; charset=utf-8\r\n\r\n"
        "<script>top.__xss='text'</script><img src=x onerror=alert('text')>\r\n").encode())
    out = tw.run_browser(yubind, tmp_path, "xss", canary=internet.url)
    assert tw.page_errors(out) == [], out
    # the one dialog: webmail.mjs's own control, after the corpus
    assert out["dialogs"] == [{"type": "alert", "message": "control"}], out["dialogs"]
    assert out["canary"] == [] and out["canaryServer"] == 0 and internet.hits == []
    assert out["xssWindow"] is None
    assert out["url"].rstrip("/") == f"https://127.0.0.1:{yubind.https_port}"
    assert out["title"] == "Yubin mail"
    # the frames' own blocks are the only CSP reports there may be
    assert out["cspReports"] == [], out["cspReports"]
    shown = {s["listSubject"]: s for s in out["shown"]}
    assert set(shown) == {m[0] for m in msgs} | {EVIL_SUBJECT}, list(shown)
    for subject, _, _ in msgs:
        s = shown[subject]
        assert s["subject"] == subject
        assert s["sandbox"] == tw.SANDBOX and s["frameSrc"].startswith("/jmap/view/"), s
        assert s["frameXss"] is None and s["frameScripts"] == 0 and s["frameHandlers"] == 0, s
        assert s["frameMetaStyle"] == [1, 1], s
        assert all(h.startswith(("http:", "https:", "mailto:")) for h in s["frameLinks"]), s
        assert s["frameUrl"].startswith(f"https://127.0.0.1:{yubind.https_port}/jmap/view/")
    assert "script body" in shown["XSS script"]["frameText"]
    assert "malformed body" in shown["XSS malformed"]["frameText"]
    assert sorted(shown["XSS javascript links"]["frameLinks"]) == [
        "https://example.org/ok", "mailto:someone@example.org"]
    # UTF-7 is not decoded: its markup stays text
    assert "+ADw-script+AD4-" in shown["XSS utf-7"]["frameText"]
    # the headers: the literal text they decode to, in the list and the pane
    e = shown[EVIL_SUBJECT]
    assert e["subject"] == EVIL_SUBJECT and e["listFrom"] == EVIL_FROM
    assert e["meta"]["From"] == EVIL_FROM + " <boss@example.net>"
    assert e["frameSrc"] is None
    assert e["text"] == "<script>top.__xss='text'</script><img src=x onerror=alert('text')>\n"
