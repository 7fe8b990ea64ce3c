"""The webmail page in a real browser: Debian's chromium, headless, driven by
playwright-core (tests/browser/, installed by `make test`'s deps step with
npm ci) through tests/browser/webmail.mjs, against yubind's listen_https.

Besides the browser: the page's HTTP rules seen from http.client (headers,
gzip, 404/405, login failures and their shared delay, CSRF on the API and
on logout)."""

import base64
import gzip
import http.client
import http.server
import imaplib
import json
import os
import re
import select
import signal
import subprocess
import threading
import time

import pytest

import yubintest as yt

DEMO = "demo@example.test"
BROWSER_DIR = os.path.join(yt.REPO, "tests", "browser")
CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
       "connect-src 'self'; frame-src 'self' blob:; frame-ancestors 'none'; base-uri 'none'; "
       "form-action 'self'")


def https(y):
    return http.client.HTTPSConnection("127.0.0.1", y.https_port,
                                       context=y.cert.client_context(), timeout=yt.IO_TIMEOUT)


def req(y, method, path, body=None, headers=None):
    c = https(y)
    h = dict(headers or {})
    if isinstance(body, dict):
        body = json.dumps(body).encode()
        h.setdefault("Content-Type", "application/json")
    c.request(method, path, body=body, headers=h)
    r = c.getresponse()
    data = r.read()
    c.close()
    return r, data


def login(y, user=DEMO, password=None):
    r, data = req(y, "POST", "/login", {"user": user,
                                         "password": password or yt.USERS[user]})
    assert r.status == 200, (r.status, data)
    m = re.match(r"yubin_session=([0-9a-f]{64});", r.getheader("Set-Cookie"))
    assert m, r.getheader("Set-Cookie")
    return m.group(1), json.loads(data)["csrf"]


def browser_cfg(y, outdir, scenario, extra):
    node_modules = os.path.join(BROWSER_DIR, "node_modules", "playwright-core")
    if not os.path.isdir(node_modules):
        pytest.fail(f"{node_modules} is missing: run `make deps-test` (npm ci in "
                    f"tests/browser)", pytrace=False)
    return {"base": f"https://127.0.0.1:{y.https_port}", "user": DEMO,
            "password": yt.USERS[DEMO], "outdir": str(outdir), "scenario": scenario, **extra}


def run_browser(y, outdir, scenario="basic", **extra):
    """One chromium run of webmail.mjs's scenario; its observations."""
    cfg = browser_cfg(y, outdir, scenario, extra)
    r = subprocess.run(["node", "webmail.mjs", json.dumps(cfg)], cwd=BROWSER_DIR,
                       capture_output=True, text=True, timeout=180)
    if r.returncode != 0:
        pytest.fail(f"webmail.mjs exited {r.returncode}:\n{r.stdout}\n{r.stderr}\n"
                    f"--- yubind log ---\n{y.log()[-4000:]}", pytrace=False)
    return json.loads(r.stdout.strip().splitlines()[-1])


class CountingServer:
    """A tiny HTTP server on a free port standing for the internet: every
    request but GET /__count (the count, for webmail.mjs) is recorded and
    answered with a PNG."""

    def __init__(self):
        hits = self.hits = []

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                if self.path == "/__count":
                    body, ctype = json.dumps({"count": len(hits)}).encode(), "application/json"
                else:
                    hits.append(self.path)
                    body, ctype = PNG, "image/png"
                self.send_response(200)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_POST(self):
                hits.append("POST " + self.path)
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def internet():
    s = CountingServer()
    yield s
    s.close()


def page_errors(out):
    """Script errors and console errors but the refused fetches (401, 403,
    404 the page asks for)."""
    errors = [e for e in out["consoleErrors"] if not e.startswith("Failed to load resource")]
    return out["pageErrors"] + errors


def test_browser_login_folders_csrf_logout(yubind, tmp_path, capsys):
    """Log in in chromium, see INBOX with the unread count of a message
    delivered over SMTP, check the cookie and the CSP, the CSRF refusals,
    take screenshots, log out."""
    yt.send_mail(yubind.smtp_port, "sender@example.net", [DEMO],
                 yt.make_message(subject="Hello from SMTP"))
    out = run_browser(yubind, tmp_path)
    with capsys.disabled():
        print(f"\nwebmail screenshots: {out['screenshot']} {out['screenshotPhone']}")
    # the 401s and 403s asked for show as "Failed to load resource"; anything
    # else (a script error, a CSP violation) is a bug
    errors = [e for e in out["consoleErrors"] if not e.startswith("Failed to load resource")]
    assert out["pageErrors"] == [] and errors == [], out
    p = out["page"]
    assert p["status"] == 200 and p["contentType"] == "text/html; charset=utf-8"
    assert p["csp"] == CSP
    assert p["nosniff"] == "nosniff" and p["referrer"] == "no-referrer"
    assert p["encoding"] == "gzip" and p["cacheControl"]
    assert out["inbox"] == {"name": "INBOX", "unread": "1", "selected": True}, out
    assert out["folders"][0] == "INBOX"
    # Email/query + Email/get: the message when the server has them,
    # "No messages" (not a broken page) while it answers unknownMethod
    if out["messages"]:
        assert out["messages"][0]["subject"] == "Hello from SMTP", out["messages"]
        assert out["messages"][0]["unseen"] is True
    else:
        assert out["messageStatus"] == "No messages"
    assert out["userShown"] == DEMO
    # what compose.js and the tests use
    assert set(out["yubinApi"]) >= {"state", "jmap", "request", "el", "$", "mailboxByRole",
                                    "refresh"}, out["yubinApi"]
    assert out["cookie"] == {"httpOnly": True, "secure": True, "sameSite": "Strict",
                             "path": "/", "length": 64}, out["cookie"]
    assert out["cookieVisibleToScript"] is False
    c = out["csrf"]
    assert (c["noHeader"], c["wrong"], c["logoutNoHeader"]) == (403, 403, 403), c
    assert c["good"] == 200 and c["goodBody"]["methodResponses"] == [
        ["Core/echo", {"x": 1}, "c"]]
    assert c["session"] == 200 and c["tokenLength"] == 64
    assert out["phone"] == {"overflowX": False, "inboxVisible": True}, out["phone"]
    for shot in (out["screenshot"], out["screenshotPhone"], out["screenshotPhoneFolders"]):
        with open(shot, "rb") as f:
            assert f.read(8) == b"\x89PNG\r\n\x1a\n"
    assert out["cookieAfterLogout"] is False
    assert out["loginStateAfterLogout"] == 401
    assert out["oldCookieSession"] == 401
    yubind.wait_log(r"web: login user=demo@example\.test tls=yes")
    yubind.wait_log(r"web: refused POST /jmap/api/: no valid x-yubin-csrf user=demo@")
    yubind.wait_log(r"web: logout user=demo@example\.test")
    assert yt.USERS[DEMO] not in yubind.log()


def test_assets_headers_gzip_and_size(yubind):
    total = 0
    for path, ctype in (("/", "text/html; charset=utf-8"),
                        ("/app.js", "text/javascript; charset=utf-8"),
                        ("/app.css", "text/css; charset=utf-8"),
                        ("/favicon.svg", "image/svg+xml")):
        r, plain = req(yubind, "GET", path)
        assert r.status == 200, path
        assert r.getheader("Content-Type") == ctype
        assert r.getheader("Content-Security-Policy") == CSP
        assert r.getheader("X-Content-Type-Options") == "nosniff"
        assert r.getheader("Referrer-Policy") == "no-referrer"
        assert r.getheader("Cache-Control")
        assert r.getheader("Content-Encoding") is None
        r, packed = req(yubind, "GET", path, headers={"Accept-Encoding": "gzip, br"})
        if r.getheader("Content-Encoding") == "gzip":
            assert gzip.decompress(packed) == plain
        else:
            assert packed == plain
        assert "accept-encoding" in r.getheader("Vary").lower()
        total += len(packed)
    assert total <= 200 * 1024, total
    r, data = req(yubind, "GET", "/index.html")
    assert r.status == 200
    r, data = req(yubind, "HEAD", "/app.js")
    assert r.status == 200 and data == b""
    assert r.getheader("Content-Type") == "text/javascript; charset=utf-8"
    r, _ = req(yubind, "GET", "/nothing-here")
    assert r.status == 404 and r.getheader("Content-Security-Policy") == CSP
    r, _ = req(yubind, "POST", "/app.js", b"x")
    assert r.status == 405 and r.getheader("Allow") == "GET, HEAD"
    r, _ = req(yubind, "GET", "/logout")
    assert r.status == 405
    # JMAP keeps its own paths
    r, _ = req(yubind, "GET", "/.well-known/jmap")
    assert r.status == 307
    r, _ = req(yubind, "GET", "/jmap/session")
    assert r.status == 401 and r.getheader("WWW-Authenticate").startswith("Basic")


@pytest.mark.yubind_conf(auth_fail_delay_max="2s")
def test_login_failures_form_and_shared_delay(yubind):
    r, data = req(yubind, "POST", "/login", {"user": DEMO, "password": "wrong-1"})
    assert r.status == 401 and r.getheader("Set-Cookie") is None
    assert r.getheader("WWW-Authenticate") is None
    r, data = req(yubind, "POST", "/login", {"user": DEMO, "password": "wrong-2"})
    assert r.status == 401
    yubind.wait_log(r"web: auth failed user=demo@example\.test method=password from "
                    r"\[127\.0\.0\.1\] \(reply delayed\)")
    # IMAP shares the count
    c = yubind.imap()
    st, _, _ = c.cmd('LOGIN "%s" "wrong-3"' % DEMO)
    assert st == "NO"
    yubind.wait_log(r"imap: auth failed user=demo@example\.test method=LOGIN from "
                    r"\[127\.0\.0\.1\] \(reply delayed\)")
    for body, ctype in ((b"{}", "application/json"),
                        (b"user=x", "application/x-www-form-urlencoded"),
                        (b"user=a&password=b", "text/plain"), (b"[1", "application/json")):
        r, _ = req(yubind, "POST", "/login", body, {"Content-Type": ctype})
        assert r.status == 400, body
    r, _ = req(yubind, "POST", "/login", b"x" * 5000, {"Content-Type": "application/json"})
    assert r.status == 413
    r, _ = req(yubind, "POST", "/login", {"user": DEMO, "password": yt.USERS[DEMO]},
               {"Sec-Fetch-Site": "cross-site"})
    assert r.status == 403
    # a form login works; the cookie then stands for Basic on the API
    form = ("user=demo%40example.test&password=" + yt.USERS[DEMO]).encode()
    r, data = req(yubind, "POST", "/login", form,
                  {"Content-Type": "application/x-www-form-urlencoded"})
    assert r.status == 200, data
    cookie = r.getheader("Set-Cookie")
    for flag in ("HttpOnly", "Secure", "SameSite=Strict", "Path=/"):
        assert flag in cookie
    sid = re.match(r"yubin_session=([0-9a-f]{64});", cookie).group(1)
    csrf = json.loads(data)["csrf"]
    jar = {"Cookie": "yubin_session=" + sid}
    r, data = req(yubind, "GET", "/jmap/session", headers=jar)
    assert r.status == 200 and json.loads(data)["username"] == DEMO
    yubind.wait_log(r"http: GET /jmap/session HTTP/1\.1 status=200 user=demo@example\.test")
    r, data = req(yubind, "GET", "/login", headers=jar)
    assert r.status == 200 and json.loads(data) == {"user": DEMO, "csrf": csrf}
    echo = {"using": ["urn:ietf:params:jmap:core"], "methodCalls": [["Core/echo", {}, "c"]]}
    r, _ = req(yubind, "POST", "/jmap/api/", echo, jar)
    assert r.status == 403
    r, data = req(yubind, "POST", "/jmap/api/", echo, {**jar, "X-Yubin-CSRF": csrf})
    assert r.status == 200, data
    # Basic clients need no token, cookie or not
    r, _ = req(yubind, "POST", "/jmap/api/", echo, {"Authorization": basic_auth()})
    assert r.status == 200
    # an unknown or malformed session: 401 without a Basic challenge
    for bad in ("0" * 64, "zz", sid[:-1]):
        r, _ = req(yubind, "GET", "/jmap/session", headers={"Cookie": "yubin_session=" + bad})
        assert r.status == 401 and r.getheader("WWW-Authenticate") is None, bad
    # logout: token needed, then the session is gone
    r, _ = req(yubind, "POST", "/logout", b"", jar)
    assert r.status == 403
    r, _ = req(yubind, "POST", "/logout", b"", {**jar, "X-Yubin-CSRF": csrf})
    assert r.status == 200 and "Max-Age=0" in r.getheader("Set-Cookie")
    r, _ = req(yubind, "GET", "/jmap/session", headers=jar)
    assert r.status == 401
    log = yubind.log()
    for pw in ("wrong-1", "wrong-2", yt.USERS[DEMO]):
        assert pw not in log
    assert sid not in log and csrf not in log


def basic_auth():
    return "Basic " + base64.b64encode(f"{DEMO}:{yt.USERS[DEMO]}".encode()).decode()


def test_sessions_capped_per_account(yubind):
    """WEB_SESSIONS_PER_ACCOUNT (16): the 17th login pushes out the oldest."""
    first, _ = login(yubind)
    last = None
    for _ in range(16):
        last, _ = login(yubind)
    r, _ = req(yubind, "GET", "/login", headers={"Cookie": "yubin_session=" + first})
    assert r.status == 401
    r, _ = req(yubind, "GET", "/login", headers={"Cookie": "yubin_session=" + last})
    assert r.status == 200


@pytest.mark.yubind_conf(auth_fail_delay_max="5s")
def test_shutdown_answers_a_held_back_login(make_yubind):
    """SIGTERM while a failed page login's answer is held back: it is
    answered (401) at once and the daemon exits 0."""
    y = make_yubind()
    for pw in ("wrong-a", "wrong-b"):
        r, _ = req(y, "POST", "/login", {"user": DEMO, "password": pw})
        assert r.status == 401
    mark = y.log_mark()
    c = https(y)
    c.request("POST", "/login", body=json.dumps({"user": DEMO, "password": "wrong-c"}),
              headers={"Content-Type": "application/json"})
    y.wait_log(r"web: auth failed user=demo@example\.test method=password from "
               r"\[127\.0\.0\.1\] \(reply delayed\)", since=mark)
    y.signal(signal.SIGTERM)
    r = c.getresponse()
    assert r.status == 401
    r.read()
    c.close()
    assert y.wait_exit() == 0
    y.check_sanitizers()
    y.proc = None


def test_cookie_found_among_others_over_http2(yubind):
    """The session among other cookies of the host, over HTTP/2 (one cookie
    field, as Chromium and Firefox send it)."""
    sid, _ = login(yubind)
    r = subprocess.run(["curl", "-s", "--http2", "--cacert", yubind.cert.cert,
                        "-o", "/dev/null", "-w", "%{http_code} %{http_version}",
                        "-H", f"Cookie: other=1; yubin_session={sid}; more=\"2\"",
                        f"https://127.0.0.1:{yubind.https_port}/login"],
                       capture_output=True, text=True, timeout=30)
    assert r.stdout == "200 2", (r.stdout, r.stderr)


# ---- the safe HTML view (/jmap/view/) ----

# a 1x1 PNG
PNG = base64.b64decode("iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8Dw"
                       "HwAFBQIAX8jx0gAAAABJRU5ErkJggg==")
ATTACHMENT = bytes(range(256)) * 8
JA_SUBJECT = "会議の資料について"
JA_FROM = "山田太郎"
SANDBOX = "allow-popups allow-popups-to-escape-sandbox"   # the iframe: links may open a tab
VIEW_CSP = ("default-src 'none'; style-src 'unsafe-inline'; img-src data:; "
            "form-action 'none'; frame-ancestors 'self'; "
            "sandbox allow-popups allow-popups-to-escape-sandbox")
VIEW_CSP_IMAGES = ("default-src 'none'; style-src 'unsafe-inline'; img-src data: https: http:; "
                   "form-action 'none'; frame-ancestors 'self'; "
                   "sandbox allow-popups allow-popups-to-escape-sandbox")


def b64lines(data):
    return base64.encodebytes(data).decode().replace("\n", "\r\n")


def html_message(remote_url, tag="html-view"):
    """multipart/mixed: alternative (text/plain, related (UTF-8 HTML with a
    cid: and a remote image, the PNG)), a PDF and a PNG attachment; a
    Japanese ISO-2022-JP Subject and From."""
    subj = "=?ISO-2022-JP?B?" + base64.b64encode(JA_SUBJECT.encode("iso2022_jp")).decode() + "?="
    frm = "=?ISO-2022-JP?B?" + base64.b64encode(JA_FROM.encode("iso2022_jp")).decode() + "?="
    html = (f"<html><head><style>p {{color: red}}</style></head><body>"
            f"<p style=\"color: #336699\">こんにちは、{tag}の本文です。</p>"
            f"<p><img src=\"cid:logo@example.jp\" alt=\"logo\" id=\"cidimg\">"
            f"<img src=\"{remote_url}\" alt=\"remote\"></p>"
            f"<p><a href=\"https://example.jp/\">link</a></p></body></html>")
    return (f"From: {frm} <yamada@example.jp>\r\nTo: demo@example.test\r\n"
            f"Cc: Hanako <hanako@example.jp>\r\nSubject: {subj}\r\n"
            f"Date: Tue, 01 Dec 2026 10:00:00 +0900\r\n"
            f"Message-ID: <{os.urandom(6).hex()}@example.jp>\r\nMIME-Version: 1.0\r\n"
            "Content-Type: multipart/mixed; boundary=MIX\r\n\r\n"
            "--MIX\r\nContent-Type: multipart/alternative; boundary=ALT\r\n\r\n"
            "--ALT\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n"
            "こんにちは (plain)\r\n"
            "--ALT\r\nContent-Type: multipart/related; boundary=REL\r\n\r\n"
            "--REL\r\nContent-Type: text/html; charset=utf-8\r\n"
            "Content-Transfer-Encoding: base64\r\n\r\n" + b64lines(html.encode()) +
            "--REL\r\nContent-Type: image/png\r\nContent-ID: <logo@example.jp>\r\n"
            "Content-Disposition: inline\r\nContent-Transfer-Encoding: base64\r\n\r\n" +
            b64lines(PNG) + "--REL--\r\n--ALT--\r\n"
            "--MIX\r\nContent-Type: application/pdf; name=\"report.pdf\"\r\n"
            "Content-Disposition: attachment; filename=\"report.pdf\"\r\n"
            "Content-Transfer-Encoding: base64\r\n\r\n" + b64lines(ATTACHMENT) +
            "--MIX\r\nContent-Type: image/png\r\n"
            "Content-Disposition: attachment; filename=\"photo.png\"\r\n"
            "Content-Transfer-Encoding: base64\r\n\r\n" + b64lines(PNG) +
            "--MIX--\r\n").encode()


def api(y, calls, auth=None):
    r, data = req(y, "POST", "/jmap/api/", {"using": ["urn:ietf:params:jmap:core",
                                                      "urn:ietf:params:jmap:mail"],
                                            "methodCalls": calls},
                  {"Authorization": auth or basic_auth()})
    assert r.status == 200, (r.status, data)
    return json.loads(data)["methodResponses"]


def account_of(y, auth=None):
    r, data = req(y, "GET", "/jmap/session", headers={"Authorization": auth or basic_auth()})
    assert r.status == 200
    return json.loads(data)["primaryAccounts"]["urn:ietf:params:jmap:mail"]


def only_email(y, aid):
    resp = api(y, [["Email/query", {"accountId": aid}, "q"],
                   ["Email/get", {"accountId": aid, "properties": ["textBody", "htmlBody",
                                                                    "attachments"],
                                  "#ids": {"resultOf": "q", "name": "Email/query",
                                           "path": "/ids"}}, "g"]])
    lst = resp[1][1]["list"]
    assert len(lst) == 1, resp
    return lst[0]


def test_view_headers_images_cid_and_refusals(yubind):
    """/jmap/view/: the sanitised HTML part with its CSP (sandbox), remote
    images held back (data-yubin-src, counted in X-Yubin-Remote-Images) until
    images=1, cid: images as data: URLs; 415 for a text/plain part, 404 for
    another account's, 401 without credentials, the page's cookie works."""
    remote = "http://127.0.0.1:9/remote.png?x=1"
    yubind.send("yamada@example.jp", [DEMO], html_message(remote))
    aid = account_of(yubind)
    e = only_email(yubind, aid)
    html_blob = e["htmlBody"][0]["blobId"]
    text_blob = e["textBody"][0]["blobId"]
    assert e["htmlBody"][0]["type"] == "text/html"
    path = f"/jmap/view/{aid}/{html_blob}"
    r, data = req(yubind, "GET", path + "?images=0", headers={"Authorization": basic_auth()})
    assert r.status == 200, data
    assert r.getheader("Content-Type") == "text/html; charset=utf-8"
    assert r.getheader("Content-Security-Policy") == VIEW_CSP
    assert r.getheader("X-Content-Type-Options") == "nosniff"
    assert r.getheader("Referrer-Policy") == "no-referrer"
    assert r.getheader("Cache-Control") == "no-store"
    assert r.getheader("X-Yubin-Remote-Images") == "1"
    doc = data.decode("utf-8")
    assert doc.startswith("<!doctype html><meta charset=utf-8><base target=_blank>")
    assert "こんにちは、html-viewの本文です。" in doc
    assert 'data-yubin-src="http://127.0.0.1:9/remote.png?x=1"' in doc
    assert not re.search(r'\ssrc="http', doc)
    assert f'src="data:image/png;base64,{base64.b64encode(PNG).decode()}"' in doc
    assert doc.count("<style>") == 1 and "color: red" not in doc   # ours, not the mail's
    assert "cid:" not in doc and 'id="cidimg"' not in doc
    assert 'style="color: #336699"' in doc
    # no query: images off as well
    r, data2 = req(yubind, "GET", path, headers={"Authorization": basic_auth()})
    assert r.status == 200 and data2 == data
    r, data = req(yubind, "GET", path + "?images=1", headers={"Authorization": basic_auth()})
    assert r.status == 200
    assert r.getheader("Content-Security-Policy") == VIEW_CSP_IMAGES
    assert r.getheader("X-Yubin-Remote-Images") == "0"
    assert 'src="http://127.0.0.1:9/remote.png?x=1"' in data.decode()
    # HEAD (what the page asks for the count)
    r, data = req(yubind, "HEAD", path, headers={"Authorization": basic_auth()})
    assert r.status == 200 and data == b"" and r.getheader("X-Yubin-Remote-Images") == "1"
    # not an HTML part; not a part; no such part
    r, _ = req(yubind, "GET", f"/jmap/view/{aid}/{text_blob}",
               headers={"Authorization": basic_auth()})
    assert r.status == 415
    whole = html_blob.split("p")[0]
    for blob in (whole, whole + "p9", whole + "p1_2_9", "nonsense", whole + "p1__2"):
        r, _ = req(yubind, "GET", f"/jmap/view/{aid}/{blob}",
                   headers={"Authorization": basic_auth()})
        assert r.status == 404, blob
    # another account: its own id with demo's blob, or demo's id
    alice = "Basic " + base64.b64encode(
        f"alice@example.test:{yt.USERS['alice@example.test']}".encode()).decode()
    alice_aid = account_of(yubind, alice)
    for a in (alice_aid, aid):
        r, _ = req(yubind, "GET", f"/jmap/view/{a}/{html_blob}",
                   headers={"Authorization": alice})
        assert r.status == 404, a
    r, _ = req(yubind, "GET", path)
    assert r.status == 401
    r, _ = req(yubind, "POST", path, b"")
    assert r.status == 405
    sid, _ = login(yubind)
    r, data = req(yubind, "GET", path, headers={"Cookie": "yubin_session=" + sid})
    assert r.status == 200 and "html-view" in data.decode()


def test_browser_reading_pane_html_and_attachments(yubind, internet, tmp_path, capsys):
    """An HTML message sent over SMTP (ISO-2022-JP Subject and From, UTF-8
    HTML with a cid: image and a remote one, a PDF attachment) read in the
    reading pane: headers decoded, the body in an <iframe sandbox=""> with
    the cid image shown and the remote one NOT fetched until "Show remote
    images"; the attachment listed and downloadable; the phone's views."""
    remote = internet.url + "/tracker.png?u=demo"
    yubind.send("yamada@example.jp", [DEMO], html_message(remote))
    long_line = "長い行" * 200
    yubind.send("sender@example.net", [DEMO], yt.make_message(
        subject="Plain text here", body=f"first line\n  indented\n{long_line}\n",
        extra="MIME-Version: 1.0\nContent-Type: text/plain; charset=utf-8\n"))
    out = run_browser(yubind, tmp_path, "read", subject=JA_SUBJECT,
                      plainSubject="Plain text here", remote=internet.url)
    with capsys.disabled():
        print(f"\nwebmail reading pane screenshots: {out['screenshot']} {out['screenshotPhone']}")
    assert page_errors(out) == [], out
    assert out["dialogs"] == []
    html_row = [m for m in out["messages"] if m["subject"] == JA_SUBJECT][0]
    assert html_row["from"] == JA_FROM and html_row["attachment"] is True
    r = out["reader"]
    assert r["subject"] == JA_SUBJECT
    assert r["meta"]["From"] == f"{JA_FROM} <yamada@example.jp>"
    assert r["meta"]["To"] == DEMO
    assert r["meta"]["Cc"] == "Hanako <hanako@example.jp>"
    assert "2026" in r["meta"]["Date"]
    assert r["text"] is None and r["sandbox"] == SANDBOX
    assert r["frameSrc"].startswith("/jmap/view/") and r["frameSrc"].endswith("?images=0")
    f = out["frame"]
    assert "こんにちは、html-viewの本文です。" in f["text"]
    assert f["base"] == "_blank" and f["scripts"] == 0
    cid = [i for i in f["images"] if i["alt"] == "logo"][0]
    assert cid["src"].startswith("data:image/png;base64,") and cid["loaded"] is True
    rem = [i for i in f["images"] if i["alt"] == "remote"][0]
    assert rem["src"] == "" and rem["dataSrc"] == remote and rem["loaded"] is False
    assert out["imagesBanner"] == "One remote image is hidden."
    # not one request to the "internet" before the click
    assert out["remoteBefore"] == 0 and out["remoteSeenBefore"] == 0
    assert out["remoteAfter"] >= 1 and internet.hits[0] == "/tracker.png?u=demo"
    assert {"alt": "remote", "loaded": True} in out["frameAfter"]
    assert out["imagesBannerAfter"] is False
    att = [a for a in out["attachments"] if a["name"] == "report.pdf"]
    assert len(att) == 1 and att[0]["meta"] == "2.0 KB \u00b7 application/pdf", out["attachments"]
    assert att[0]["href"].startswith("/jmap/download/")
    photo = [a for a in out["attachments"] if a["name"] == "photo.png"]
    assert len(photo) == 1 and photo[0]["preview"] == 1, out["attachments"]
    # the inline cid: image is in the frame, not in the list
    assert [a["name"] for a in out["attachments"]] == ["report.pdf", "photo.png"]
    d = out["download"]
    assert d["status"] == 200 and d["type"] == "application/pdf"
    assert d["disposition"].startswith('attachment; filename="report.pdf"')
    assert base64.b64decode(d["b64"]) == ATTACHMENT
    eid = out["openId"]
    assert eid == html_row["id"]
    calls = [{"mode": m, "emailId": eid} for m in ("reply", "replyAll", "forward")]
    assert out["composeCalls"] == calls + [{"mode": "new"}] + calls + [{"mode": "new"}], \
        out["composeCalls"]
    p = out["phone"]
    assert p == {"listVisible": False, "readerVisible": True, "overflowX": False,
                 "afterBack": {"listVisible": True, "readerVisible": False}}, p
    # plain text: as it was, wrapped (long CJK lines do not overflow)
    assert out["plain"]["frameSrc"] is None
    assert out["plain"]["text"] == f"first line\n  indented\n{long_line}\n"
    assert out["plainStyle"] == {"whiteSpace": "pre-wrap", "overflowX": False}
    for shot in (out["screenshot"], out["screenshotPhone"]):
        with open(shot, "rb") as fh:
            assert fh.read(8) == b"\x89PNG\r\n\x1a\n"


def imap_login(y):
    c = imaplib.IMAP4("127.0.0.1", y.imap_port, timeout=yt.IO_TIMEOUT)
    c.login(DEMO, yt.USERS[DEMO])
    return c


def test_browser_list_paging_sort_search_keys(yubind, tmp_path):
    """52 messages APPENDed with distinct dates: pages of 50 ("Older",
    "Newer", the position shown), sorts by date both ways and by size, the
    search box (Email/query text in the folder), j/k/Enter/Escape, ? help,
    / to search."""
    c = imap_login(yubind)
    base = time.time() - 100 * 3600
    for i in range(52):
        body = ("zebra crossing\n" if i == 33 else "routine\n") + \
               ("x" * 20000 + "\n" if i == 7 else "")
        msg = yt.make_message(subject=f"Bulk {i:02d}", body=body)
        typ, _ = c.append("INBOX", None, imaplib.Time2Internaldate(base + i * 3600), msg)
        assert typ == "OK"
    c.logout()
    out = run_browser(yubind, tmp_path, "list", search="zebra", noMatch="nothingmatcheshere")
    assert page_errors(out) == [], out
    assert out["first"] == {"info": "1\u201350 of 52", "n": 50, "top": "Bulk 51"}, out["first"]
    assert out["older"] == {"info": "51\u201352 of 52", "subjects": ["Bulk 01", "Bulk 00"],
                            "olderDisabled": True}, out["older"]
    assert out["ascTop"] == "Bulk 00" and out["sizeTop"] == "Bulk 07"
    assert out["cursorAfterKeys"] == 1
    assert out["openedByKey"] == "Bulk 50" and out["nextByKey"] == "Bulk 49"
    assert out["readerClosed"] is True
    for k in ("j", "k", "o", "s", "u", "U", "m", "e", "#", "c", "r", "a", "f", "/", "?", "Esc"):
        assert k in out["helpKeys"], out["helpKeys"]
    assert out["searchFocused"] == "search"
    assert out["searched"] == {"subjects": ["Bulk 33"], "info": "1\u20131 of 1"}, out["searched"]
    assert out["noMatch"] == "No messages match"


def flags_in(c, mailbox):
    """{subject: flags but \\Recent} of a mailbox over IMAP."""
    typ, data = c.select(mailbox)
    assert typ == "OK", mailbox
    out = {}
    if int(data[0]) == 0:
        return out
    typ, data = c.fetch("1:*", "(FLAGS BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
    assert typ == "OK"
    for item in data:
        if isinstance(item, tuple):
            subj = item[1].decode().split(":", 1)[1].strip()
            flags = re.search(r"FLAGS \(([^)]*)\)", item[0].decode()).group(1).split()
            out[subj] = sorted(f for f in flags if f != "\\Recent")
    return out


def test_browser_actions_flag_move_archive_delete(yubind, tmp_path):
    """Email/set from the page: open (seen), s (flag), u / Shift+U, m (move
    to a folder), the Delete button (to Trash), e (archive), # in Trash
    (destroyed); the INBOX count follows, and IMAP sees the result."""
    c = imap_login(yubind)
    assert c.create("Projects")[0] == "OK"
    c.logout()
    for s in ("Act A", "Act B", "Act C", "Act D"):
        yubind.send("sender@example.net", [DEMO], yt.make_message(subject=s))
    out = run_browser(yubind, tmp_path, "actions", moveTo="Projects",
                      subjects={"a": "Act A", "b": "Act B", "c": "Act C"})
    assert page_errors(out) == [], out
    assert out["start"]["unread"] == 4
    assert out["afterOpen"]["unread"] == 3 and out["afterOpen"]["a"]["unseen"] is False
    assert out["afterUnread"] == 4
    assert "Projects" in out["moveChoices"] and "INBOX" not in out["moveChoices"]
    assert [m["subject"] for m in out["end"]["list"]] == ["Act D"]
    assert out["end"]["unread"] == 1
    assert out["trash"] == ["Act B"] and out["trashAfter"] == []
    c = imap_login(yubind)
    assert flags_in(c, "INBOX") == {"Act D": []}
    assert flags_in(c, "Projects") == {"Act A": ["\\Flagged", "\\Seen"]}
    assert flags_in(c, "Archive") == {"Act C": ["\\Seen"]}
    assert flags_in(c, "Trash") == {}
    c.logout()


def test_browser_live_new_message(yubind, tmp_path):
    """The page open on INBOX with its EventSource (RFC 8620 7.3): a message
    delivered over SMTP shows in the list, and the unread count goes up,
    without a reload."""
    yubind.send("sender@example.net", [DEMO], yt.make_message(subject="Already here"))
    cfg = browser_cfg(yubind, tmp_path, "live", {"liveSubject": "Pushed to the page"})
    p = subprocess.Popen(["node", "webmail.mjs", json.dumps(cfg)], cwd=BROWSER_DIR,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        line = ""
        while line != "READY\n":
            left = deadline - time.monotonic()
            if left <= 0 or p.poll() is not None:
                break
            ready, _, _ = select.select([p.stdout], [], [], left)
            if ready:
                line = p.stdout.readline()
                if line == "":
                    break
        if line != "READY\n":
            p.kill()
            so, se = p.communicate()
            pytest.fail(f"webmail.mjs never got ready:\n{line}{so}\n{se}\n"
                        f"--- yubind log ---\n{yubind.log()[-4000:]}", pytrace=False)
        yubind.send("sender@example.net", [DEMO], yt.make_message(subject="Pushed to the page"))
        so, se = p.communicate(timeout=120)
    finally:
        if p.poll() is None:
            p.kill()
            p.communicate()
    if p.returncode != 0:
        pytest.fail(f"webmail.mjs exited {p.returncode}:\n{so}\n{se}\n"
                    f"--- yubind log ---\n{yubind.log()[-4000:]}", pytrace=False)
    out = json.loads(so.strip().splitlines()[-1])
    assert page_errors(out) == [], out
    assert out["before"] == ["Already here"]
    assert out["after"] == ["Pushed to the page", "Already here"]
    assert out["unread"] == [1, 2]
    assert out["navigations"] == 1


def test_view_decodes_charset_and_transfer_encoding(yubind):
    """A Shift_JIS HTML part in quoted-printable, a single-part ISO-2022-JP
    one: UTF-8 out; a UTF-7 one is not decoded (its markup stays text)."""
    sjis = "<p>予定表を送ります。</p>".encode("cp932")
    qp = "".join(f"={b:02X}" if b >= 0x80 or b == 0x3D else chr(b) for b in sjis)
    bodies = [("text/html; charset=Shift_JIS", "quoted-printable", qp, "予定表を送ります。"),
              ("text/html; charset=ISO-2022-JP", "7bit",
               "<p>" + "会議は十時から".encode("iso2022_jp").decode("ascii") + "</p>",
               "会議は十時から"),
              ("text/html; charset=utf-7", "7bit", "+ADw-script+AD4-x+ADw-/script+AD4-",
               "+ADw-script+AD4-x+ADw-/script+AD4-")]
    aid = account_of(yubind)
    for i, (ctype, cte, body, want) in enumerate(bodies):
        yubind.send("sender@example.net", [DEMO], yt.crlf(
            f"From: sender@example.net\nTo: {DEMO}\nSubject: charset {i}\nMIME-Version: 1.0\n"
            f"Content-Type: {ctype}\nContent-Transfer-Encoding: {cte}\n\n{body}\n"))
        resp = api(yubind, [["Email/query", {"accountId": aid,
                                             "filter": {"subject": f"charset {i}"}}, "q"],
                            ["Email/get", {"accountId": aid, "properties": ["htmlBody"],
                                           "#ids": {"resultOf": "q", "name": "Email/query",
                                                    "path": "/ids"}}, "g"]])
        blob = resp[1][1]["list"][0]["htmlBody"][0]["blobId"]
        r, data = req(yubind, "GET", f"/jmap/view/{aid}/{blob}",
                      headers={"Authorization": basic_auth()})
        assert r.status == 200, (ctype, data)
        assert want in data.decode("utf-8"), (ctype, data)
        assert "<script" not in data.decode("utf-8")
