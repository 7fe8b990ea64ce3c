"""The webmail page in a real browser: Debian's chromium, headless, driven by
playwright-core (tests/browser/, installed by `make test`'s deps step with
npm ci) through tests/browser/webmail.mjs, against yubind's listen_https.

Besides the browser: the page's HTTP rules seen from http.client (headers,
gzip, 404/405, login failures and their shared delay, CSRF on the API and
on logout)."""

import base64
import gzip
import http.client
import json
import os
import re
import signal
import subprocess

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


def run_browser(y, outdir):
    node_modules = os.path.join(BROWSER_DIR, "node_modules", "playwright-core")
    if not os.path.isdir(node_modules):
        pytest.fail(f"{node_modules} is missing: run `make deps-test` (npm ci in "
                    f"tests/browser)", pytrace=False)
    cfg = {"base": f"https://127.0.0.1:{y.https_port}", "user": DEMO,
           "password": yt.USERS[DEMO], "outdir": str(outdir)}
    r = subprocess.run(["node", "webmail.mjs", json.dumps(cfg)], cwd=BROWSER_DIR,
                       capture_output=True, text=True, timeout=180)
    if r.returncode != 0:
        pytest.fail(f"webmail.mjs exited {r.returncode}:\n{r.stdout}\n{r.stderr}\n"
                    f"--- yubind log ---\n{y.log()[-4000:]}", pytrace=False)
    return json.loads(r.stdout.strip().splitlines()[-1])


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
