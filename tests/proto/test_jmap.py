"""JMAP over yubind's HTTPS listener (RFC 8620 Core, RFC 8621 Mailbox/get).

The daemon serves HTTP with libh2o on its own libuv loop; these tests talk
to it with http.client (HTTP/1.1 over TLS verified against the test
certificate), raw sockets for the limits, and curl (HTTP/1.1 and HTTP/2)."""

import base64
import http.client
import json
import re
import signal
import socket
import ssl
import subprocess
import time

import pytest

import yubintest as yt

DEMO = "demo@example.test"
CORE = "urn:ietf:params:jmap:core"
MAIL = "urn:ietf:params:jmap:mail"


def basic(user=DEMO, password=None):
    pw = yt.USERS[user] if password is None else password
    return "Basic " + base64.b64encode(f"{user}:{pw}".encode()).decode()


class Jmap:
    """One keep-alive HTTPS connection to the daemon."""

    def __init__(self, y, tls=True, ctx=None):
        if tls:
            ctx = ctx or y.cert.client_context()
            self.conn = http.client.HTTPSConnection("127.0.0.1", y.https_port,
                                                    context=ctx, timeout=yt.IO_TIMEOUT)
        else:
            self.conn = http.client.HTTPConnection("127.0.0.1", y.http_port,
                                                   timeout=yt.IO_TIMEOUT)

    def req(self, method, path, body=None, auth=None, headers=None):
        h = dict(headers or {})
        if auth:
            h["Authorization"] = auth
        if body is not None and not isinstance(body, bytes):
            body = json.dumps(body).encode()
            h.setdefault("Content-Type", "application/json")
        self.conn.request(method, path, body=body, headers=h)
        r = self.conn.getresponse()
        data = r.read()
        return r, data

    def api(self, calls, using=(CORE, MAIL), auth=None, **extra):
        body = {"using": list(using), "methodCalls": calls, **extra}
        r, data = self.req("POST", "/jmap/api/", body, auth or basic())
        assert r.status == 200, (r.status, data)
        assert r.getheader("Content-Type") == "application/json"
        return json.loads(data)

    def close(self):
        self.conn.close()


def account_id(j):
    r, data = j.req("GET", "/jmap/session", auth=basic())
    assert r.status == 200, data
    return json.loads(data)["primaryAccounts"][MAIL]


def test_well_known_redirects_to_session(yubind):
    j = Jmap(yubind)
    r, _ = j.req("GET", "/.well-known/jmap")
    assert r.status in (301, 302, 307, 308)
    loc = r.getheader("Location")
    assert loc == f"https://127.0.0.1:{yubind.https_port}/jmap/session"
    r, data = j.req("GET", "/jmap/session")
    assert r.status == 401
    assert r.getheader("WWW-Authenticate").startswith("Basic realm=")
    assert json.loads(data)["status"] == 401
    r, data = j.req("POST", "/.well-known/jmap")
    assert r.status == 405 and r.getheader("Allow") == "GET, HEAD"
    r, data = j.req("GET", "/nothing-here")
    assert r.status == 404
    j.close()


def test_session_resource_shape(yubind):
    """The keys of RFC 8620 2's example session object, with their types."""
    j = Jmap(yubind)
    r, data = j.req("GET", "/jmap/session", auth=basic())
    assert r.status == 200
    assert r.getheader("Content-Type") == "application/json"
    assert r.getheader("Cache-Control") == "no-store"
    s = json.loads(data)
    assert set(s) == {"capabilities", "accounts", "primaryAccounts", "username", "apiUrl",
                      "downloadUrl", "uploadUrl", "eventSourceUrl", "state"}
    core = s["capabilities"][CORE]
    for k in ("maxSizeUpload", "maxConcurrentUpload", "maxSizeRequest",
              "maxConcurrentRequests", "maxCallsInRequest", "maxObjectsInGet",
              "maxObjectsInSet"):
        assert isinstance(core[k], int) and core[k] > 0, k
    assert core["maxSizeRequest"] == 10 * 1024 * 1024
    assert isinstance(core["collationAlgorithms"], list)
    assert s["capabilities"][MAIL] == {}
    assert s["username"] == DEMO
    aid = s["primaryAccounts"][MAIL]
    acct = s["accounts"][aid]
    assert acct["name"] == DEMO and acct["isPersonal"] is True
    assert acct["isReadOnly"] is False
    mail = acct["accountCapabilities"][MAIL]
    for k in ("maxMailboxesPerEmail", "maxMailboxDepth", "maxSizeMailboxName",
              "maxSizeAttachmentsPerEmail", "emailQuerySortOptions",
              "mayCreateTopLevelMailbox"):
        assert k in mail, k
    base = f"https://127.0.0.1:{yubind.https_port}"
    assert s["apiUrl"] == base + "/jmap/api/"
    for var in ("{accountId}", "{blobId}", "{type}", "{name}"):
        assert var in s["downloadUrl"]
    assert s["downloadUrl"].startswith(base)
    assert "{accountId}" in s["uploadUrl"]
    for var in ("{types}", "{closeafter}", "{ping}"):
        assert var in s["eventSourceUrl"]
    assert isinstance(s["state"], str) and s["state"]
    # the same state for the same account; another account has its own id
    r, data = j.req("GET", "/jmap/session", auth=basic("alice@example.test"))
    s2 = json.loads(data)
    assert s2["username"] == "alice@example.test"
    assert s2["primaryAccounts"][MAIL] != aid
    j.close()
    yubind.wait_log(r"conn=\w+ http: GET /jmap/session HTTP/1\.1 status=200 "
                    r"user=demo@example\.test bytes=\d+ ms=\d+")


@pytest.mark.yubind_conf(plaintext_auth="never")
def test_basic_refused_without_tls(yubind):
    """Over plain HTTP the right password is refused unread (plaintext_auth
    = never) and never logged."""
    j = Jmap(yubind, tls=False)
    r, data = j.req("GET", "/jmap/session", auth=basic())
    assert r.status == 401
    assert r.getheader("WWW-Authenticate").startswith("Basic")
    assert "HTTPS" in json.loads(data)["detail"]
    r, data = j.req("POST", "/jmap/api/", {"using": [CORE], "methodCalls": []}, basic())
    assert r.status == 401
    j.close()
    yubind.wait_log(r"jmap: auth refused: password over plain HTTP from \[127\.0\.0\.1\]")
    assert yt.USERS[DEMO] not in yubind.log()
    # the same over TLS works
    j = Jmap(yubind)
    r, _ = j.req("GET", "/jmap/session", auth=basic())
    assert r.status == 200
    j.close()


def test_plain_http_on_loopback_follows_plaintext_auth(yubind):
    """plaintext_auth = loopback (the test default): a TLS proxy on
    loopback may pass Basic over listen_http; URLs then say http."""
    j = Jmap(yubind, tls=False)
    r, data = j.req("GET", "/jmap/session", auth=basic())
    assert r.status == 200
    assert json.loads(data)["apiUrl"] == f"http://127.0.0.1:{yubind.http_port}/jmap/api/"
    j.close()


@pytest.mark.yubind_conf(auth_fail_delay_max="2s")
def test_wrong_password_401_and_delayed(yubind):
    """Wrong passwords: 401 with WWW-Authenticate; from the second failure
    on the answer is held back like IMAP's (server_auth_failed), logged
    without the password; the right one still works."""
    j = Jmap(yubind)
    r, data = j.req("GET", "/jmap/session", auth=basic(password="wrong-1"))
    assert r.status == 401 and r.getheader("WWW-Authenticate").startswith("Basic")
    t0 = time.monotonic()
    r, data = j.req("POST", "/jmap/api/", {"using": [CORE], "methodCalls": []},
                    basic(password="wrong-2"))
    held = time.monotonic() - t0
    assert r.status == 401
    yubind.wait_log(r"jmap: auth failed user=demo@example\.test method=basic from "
                    r"\[127\.0\.0\.1\] \(reply delayed\)")
    assert held >= 0.2, held           # 250 ms for the second failure
    # IMAP shares the count: its next failure is delayed too
    c = yubind.imap()
    st, line, _ = c.cmd('LOGIN "%s" "wrong-3"' % DEMO)
    assert st == "NO"
    yubind.wait_log(r"imap: auth failed user=demo@example\.test method=LOGIN from "
                    r"\[127\.0\.0\.1\] \(reply delayed\)")
    r, _ = j.req("GET", "/jmap/session", auth=basic())
    assert r.status == 200
    for bad in ("Basic !!!", "Bearer abc", "Basic " + base64.b64encode(b"nocolon").decode()):
        r, _ = j.req("GET", "/jmap/session", auth=bad)
        assert r.status == 401, bad
    j.close()
    log = yubind.log()
    for pw in ("wrong-1", "wrong-2", yt.USERS[DEMO]):
        assert pw not in log


def test_core_echo(yubind):
    j = Jmap(yubind)
    args = {"hello": True, "high": 5, "list": [1, "two", {"three": None}]}
    resp = j.api([["Core/echo", args, "b3ff"]], using=[CORE])
    assert resp["methodResponses"] == [["Core/echo", args, "b3ff"]]
    assert isinstance(resp["sessionState"], str)
    assert "createdIds" not in resp
    resp = j.api([["Core/echo", {}, "c1"]], using=[CORE], createdIds={"k1": "x1"})
    assert resp["createdIds"] == {"k1": "x1"}
    j.close()


def test_back_references(yubind):
    j = Jmap(yubind)
    aid = account_id(j)
    resp = j.api([
        ["Mailbox/get", {"accountId": aid, "properties": ["name"]}, "c0"],
        ["Mailbox/get", {"accountId": aid,
                         "#ids": {"resultOf": "c0", "name": "Mailbox/get",
                                  "path": "/list/*/id"}}, "c1"],
        ["Core/echo", {"#first": {"resultOf": "c0", "name": "Mailbox/get",
                                  "path": "/list/0/name"}}, "c2"],
        ["Mailbox/get", {"accountId": aid,
                         "#ids": {"resultOf": "c0", "name": "Mailbox/get",
                                  "path": "/list/*/nope"}}, "c3"],
        ["Mailbox/get", {"accountId": aid,
                         "#ids": {"resultOf": "c9", "name": "Mailbox/get",
                                  "path": "/list/*/id"}}, "c4"],
        ["Mailbox/get", {"accountId": aid,
                         "#ids": {"resultOf": "c0", "name": "Core/echo",
                                  "path": "/list/*/id"}}, "c5"],
        ["Mailbox/get", {"accountId": aid, "ids": [],
                         "#ids": {"resultOf": "c0", "name": "Mailbox/get",
                                  "path": "/list/*/id"}}, "c6"],
    ])
    m = resp["methodResponses"]
    assert [x[2] for x in m] == ["c0", "c1", "c2", "c3", "c4", "c5", "c6"]
    first = m[0][1]["list"]
    assert first and all(set(mb) == {"id", "name"} for mb in first)
    ids = [mb["id"] for mb in first]
    assert m[1][0] == "Mailbox/get"
    assert [mb["id"] for mb in m[1][1]["list"]] == ids
    assert m[1][1]["notFound"] == []
    assert m[2] == ["Core/echo", {"first": first[0]["name"]}, "c2"]
    for k in (3, 4, 5):
        assert m[k][0] == "error" and m[k][1]["type"] == "invalidResultReference", m[k]
    assert m[6][0] == "error" and m[6][1]["type"] == "invalidArguments"
    j.close()


def raw_post(y, body, content_type="application/json"):
    j = Jmap(y)
    r, data = j.req("POST", "/jmap/api/", body, basic(), {"Content-Type": content_type})
    j.close()
    return r, data


def problem_of(r, data):
    assert r.status == 400, (r.status, data)
    assert r.getheader("Content-Type") == "application/problem+json"
    p = json.loads(data)
    assert p["status"] == 400
    return p


def test_request_level_errors(yubind):
    cases = [
        (b"{\"using\": [", "notJSON"),
        (b"\xff\xfe", "notJSON"),
        (b"{\"using\": [], \"using\": []}", "notJSON"),          # I-JSON: no duplicates
        (b"[1, 2]", "notRequest"),
        (b"{\"using\": \"x\", \"methodCalls\": []}", "notRequest"),
        (b"{\"using\": [], \"methodCalls\": [[\"Core/echo\", {}]]}", "notRequest"),
        (b"{\"using\": [], \"methodCalls\": [[\"Core/echo\", [], \"c\"]]}", "notRequest"),
        (b"{\"using\": [1], \"methodCalls\": []}", "notRequest"),
        (b"{\"using\": [\"urn:example:nope\"], \"methodCalls\": []}", "unknownCapability"),
    ]
    for body, want in cases:
        p = problem_of(*raw_post(yubind, body))
        assert p["type"] == "urn:ietf:params:jmap:error:" + want, (body, p)
        assert p["detail"]
    p = problem_of(*raw_post(yubind, b"{}", content_type="text/plain"))
    assert p["type"] == "urn:ietf:params:jmap:error:notJSON" and "Content-Type" in p["detail"]
    r, _ = raw_post(yubind, {"using": [CORE], "methodCalls": []},
                    content_type="application/json; charset=utf-8")
    assert r.status == 200
    calls = [["Core/echo", {}, "c%d" % i] for i in range(17)]
    p = problem_of(*raw_post(yubind, {"using": [CORE], "methodCalls": calls}))
    assert p["type"] == "urn:ietf:params:jmap:error:limit"
    assert p["limit"] == "maxCallsInRequest"


def test_method_level_errors(yubind):
    j = Jmap(yubind)
    aid = account_id(j)
    resp = j.api([
        ["Foo/bar", {}, "u"],
        ["Mailbox/get", {"accountId": "a999999"}, "a"],
        ["Mailbox/get", {}, "m"],
        ["Mailbox/get", {"accountId": aid, "ids": "m1"}, "i"],
        ["Mailbox/get", {"accountId": aid, "properties": ["bogus"]}, "p"],
        ["Mailbox/get", {"accountId": aid, "ids": ["m%d" % i for i in range(501)]}, "t"],
        ["Core/echo", {"ok": 1}, "e"],
    ])
    m = resp["methodResponses"]
    assert [(x[0], x[1].get("type"), x[2]) for x in m] == [
        ("error", "unknownMethod", "u"),
        ("error", "accountNotFound", "a"),
        ("error", "invalidArguments", "m"),
        ("error", "invalidArguments", "i"),
        ("error", "invalidArguments", "p"),
        ("error", "requestTooLarge", "t"),
        ("Core/echo", None, "e"),
    ]
    # Mailbox/get's capability must be in using
    resp = j.api([["Mailbox/get", {"accountId": aid}, "x"]], using=[CORE])
    assert resp["methodResponses"][0][1]["type"] == "unknownMethod"
    r, _ = j.req("GET", "/jmap/api/", auth=basic())
    assert r.status == 405 and r.getheader("Allow") == "POST"
    j.close()


def test_request_over_the_size_cap(yubind):
    """maxSizeRequest (10 MiB): a larger body is refused before it is read
    (413 from h2o), the connection and daemon stay fine."""
    cap = 10 * 1024 * 1024
    ctx = yubind.cert.client_context()
    raw = socket.create_connection(("127.0.0.1", yubind.https_port), timeout=yt.IO_TIMEOUT)
    s = ctx.wrap_socket(raw, server_hostname=yt.HOSTNAME)
    s.sendall((f"POST /jmap/api/ HTTP/1.1\r\nHost: {yt.HOSTNAME}\r\n"
               f"Authorization: {basic()}\r\nContent-Type: application/json\r\n"
               f"Content-Length: {cap + 1}\r\n\r\n").encode() + b"{" * 1000)
    head = b""
    while b"\r\n" not in head:
        chunk = s.recv(4096)
        if not chunk:
            break
        head += chunk
    assert head.startswith(b"HTTP/1.1 413 "), head[:200]
    s.close()
    # a body just at the cap is read and answered (as JSON that does not parse)
    body = b"[" + b" " * (cap - 2) + b"x"
    p = problem_of(*raw_post(yubind, body))
    assert p["type"].endswith(":notJSON")
    j = Jmap(yubind)
    assert j.api([["Core/echo", {}, "0"]], using=[CORE])["methodResponses"][0][0] == "Core/echo"
    j.close()


def mailboxes(j, aid, **args):
    resp = j.api([["Mailbox/get", {"accountId": aid, **args}, "0"]])
    name, res, cid = resp["methodResponses"][0]
    assert name == "Mailbox/get" and cid == "0", res
    assert res["accountId"] == aid
    return res


def test_mailbox_get_follows_imap_and_smtp(yubind):
    j = Jmap(yubind)
    aid = account_id(j)
    before = mailboxes(j, aid)
    assert before["notFound"] == []
    inbox = [m for m in before["list"] if m["role"] == "inbox"]
    assert len(inbox) == 1 and inbox[0]["name"] == "INBOX"
    mb = inbox[0]
    assert set(mb) == {"id", "name", "parentId", "role", "sortOrder", "totalEmails",
                       "unreadEmails", "totalThreads", "unreadThreads", "myRights",
                       "isSubscribed"}
    assert mb["parentId"] is None and mb["totalEmails"] == 0
    assert mb["myRights"]["mayDelete"] is False and mb["myRights"]["mayReadItems"] is True
    assert set(mb["myRights"]) == {"mayReadItems", "mayAddItems", "mayRemoveItems",
                                   "maySetSeen", "maySetKeywords", "mayCreateChild",
                                   "mayRename", "mayDelete", "maySubmit"}
    c = yubind.imap(DEMO)
    c.ok('CREATE "Projects/2026"')
    c.ok('CREATE "Archive2" (USE (\\Archive))')
    c.ok('SUBSCRIBE "Projects"')
    after = mailboxes(j, aid)
    assert after["state"] != before["state"]
    by_name = {m["name"]: m for m in after["list"]}
    assert by_name["Projects"]["parentId"] is None
    assert by_name["Projects"]["isSubscribed"] is True
    assert by_name["2026"]["parentId"] == by_name["Projects"]["id"]
    assert by_name["2026"]["isSubscribed"] is False
    assert by_name["Archive2"]["role"] == "archive"
    # deliveries over SMTP show in the counts
    for i in range(2):
        yubind.send("sender@example.net", [DEMO], yt.make_message(subject="n%d" % i))
    got = mailboxes(j, aid, ids=[mb["id"], "m0", "nope", mb["id"]])
    assert got["notFound"] == ["m0", "nope"]
    assert len(got["list"]) == 1
    box = got["list"][0]
    assert (box["totalEmails"], box["unreadEmails"]) == (2, 2)
    assert (box["totalThreads"], box["unreadThreads"]) == (2, 2)
    c.ok("SELECT INBOX")
    c.ok("STORE 1 +FLAGS (\\Seen)")
    box = mailboxes(j, aid, ids=[mb["id"]], properties=["unreadEmails"])["list"][0]
    assert box == {"id": mb["id"], "unreadEmails": 1}
    # a draft is not unread (RFC 8621 2: neither $seen nor $draft)
    msg = yt.crlf("From: demo@example.test\nSubject: draft\n\nnot yet\n")
    c.ok("APPEND Projects/2026 (\\Draft) \0", literals=[msg])
    by_id = {m["id"]: m for m in mailboxes(j, aid)["list"]}
    sub = by_id[by_name["2026"]["id"]]
    assert (sub["totalEmails"], sub["unreadEmails"]) == (1, 0)
    c.ok("LOGOUT")
    j.close()


def test_curl_http1_and_http2(yubind, cert):
    """curl as a real client: discovery with -L and Basic, then an API call
    over HTTP/2 (ALPN h2) and over HTTP/1.1."""
    base = f"https://127.0.0.1:{yubind.https_port}"
    user = f"{DEMO}:{yt.USERS[DEMO]}"
    r = subprocess.run(["curl", "-sS", "--fail", "--cacert", cert.cert, "-u", user, "-L",
                        base + "/.well-known/jmap"], capture_output=True, text=True,
                       timeout=60)
    assert r.returncode == 0, r.stderr
    session = json.loads(r.stdout)
    body = json.dumps({"using": [CORE, MAIL], "methodCalls": [
        ["Mailbox/get", {"accountId": session["primaryAccounts"][MAIL],
                         "properties": ["name", "role"]}, "0"]]})
    for flag, ver in (("--http2", "2"), ("--http1.1", "1.1")):
        r = subprocess.run(["curl", "-sS", "--fail", flag, "--cacert", cert.cert, "-u", user,
                            "-H", "Content-Type: application/json", "--data-binary", body,
                            "-w", "\\n%{http_version}", session["apiUrl"]],
                           capture_output=True, text=True, timeout=60)
        assert r.returncode == 0, r.stderr
        out, http_version = r.stdout.rsplit("\n", 1)
        assert http_version == ver
        resp = json.loads(out)
        roles = {m["role"] for m in resp["methodResponses"][0][1]["list"]}
        assert "inbox" in roles
    yubind.wait_log(r"http: POST /jmap/api/ HTTP/2 status=200 user=demo@example\.test")
    # a wrong password is a 401 for curl too
    r = subprocess.run(["curl", "-sS", "-o", "/dev/null", "-w", "%{http_code}", "--cacert",
                        cert.cert, "-u", DEMO + ":nope", base + "/jmap/session"],
                       capture_output=True, text=True, timeout=60)
    assert r.stdout == "401"


@pytest.mark.yubind_conf(max_connections_per_ip="3")
def test_connections_per_ip(yubind):
    """max_connections_per_ip counts HTTP connections with the others."""
    held = [yubind.imap()]
    js = [Jmap(yubind), Jmap(yubind)]
    for j in js:
        r, _ = j.req("GET", "/jmap/session", auth=basic())
        assert r.status == 200
    extra = socket.create_connection(("127.0.0.1", yubind.https_port), timeout=yt.IO_TIMEOUT)
    yubind.wait_log(r"listener https: refused connection from \[127\.0\.0\.1\]:\d+: "
                    r"max_connections_per_ip reached")
    assert extra.recv(100) == b""
    extra.close()
    # and the other protocols count the HTTP connections
    imap = socket.create_connection(("127.0.0.1", yubind.imap_port), timeout=yt.IO_TIMEOUT)
    yubind.wait_log(r"listener imap: refused connection from \[127\.0\.0\.1\]:\d+: "
                    r"max_connections_per_ip reached")
    assert imap.recv(100) == b""
    imap.close()
    for j in js:
        j.close()
    held[0].close()


def test_shutdown_closes_keepalive_connections(make_yubind):
    """SIGTERM with idle keep-alive HTTP/1.1 connections open: they are
    closed at once and the daemon exits 0 without waiting out a timeout."""
    y = make_yubind()
    js = [Jmap(y) for _ in range(3)]
    for j in js:
        r, _ = j.req("GET", "/jmap/session", auth=basic())
        assert r.status == 200
    t0 = time.monotonic()
    y.stop()
    assert time.monotonic() - t0 < 10
    assert "still busy after shutdown_timeout" not in y.log()
    for j in js:
        j.close()


@pytest.mark.yubind_conf(auth_fail_delay_max="5s")
def test_shutdown_answers_a_held_back_failure(make_yubind):
    """SIGTERM while a failed login's answer is held back: it is answered
    (401) at once and the daemon exits 0."""
    y = make_yubind()
    j = Jmap(y)
    r, _ = j.req("GET", "/jmap/session", auth=basic(password="wrong-a"))
    assert r.status == 401
    r, _ = j.req("GET", "/jmap/session", auth=basic(password="wrong-b"))
    assert r.status == 401
    mark = y.log_mark()
    j.conn.request("GET", "/jmap/session", headers={"Authorization": basic(password="wrong-c")})
    y.wait_log(r"jmap: auth failed user=demo@example\.test method=basic from "
               r"\[127\.0\.0\.1\] \(reply delayed\)", since=mark)
    y.signal(signal.SIGTERM)
    r = j.conn.getresponse()
    assert r.status == 401
    r.read()
    assert y.wait_exit() == 0
    y.check_sanitizers()
    y.proc = None
    j.close()


def test_https_needs_tls_cert(make_yubind):
    """listen_https without tls_cert is a configuration error naming the
    key; without TLS the plain HTTP listener still serves (loopback)."""
    y = make_yubind(start=False, tls_cert=None, tls_key=None, listen_pop3s=None,
                    listen_imaps=None, listen_submissions=None, listen_https="127.0.0.1:0")
    r = subprocess.run([yt.YUBIND, "-c", y.conf_path, "--check"], capture_output=True,
                       text=True, env=yt.sanitizer_env(), timeout=60)
    assert r.returncode == 1 and "listen_https" in r.stderr, r.stderr
    y = make_yubind(tls_cert=None, tls_key=None, listen_pop3s=None, listen_imaps=None,
                    listen_submissions=None)
    assert "https" not in y.ports
    j = Jmap(y, tls=False)
    resp = j.api([["Core/echo", {"x": 1}, "0"]], using=[CORE])
    assert resp["methodResponses"] == [["Core/echo", {"x": 1}, "0"]]
    j.close()


def test_header_limits_enforced_by_h2o(yubind):
    """Over-long or too many request headers: h2o refuses the request (a 4xx
    or a close), before any login; the daemon goes on serving."""
    ctx = yubind.cert.client_context()
    for extra in ("X-Big: " + "a" * (600 * 1024) + "\r\n",
                  "".join(f"X-H{i}: v\r\n" for i in range(150))):
        raw = socket.create_connection(("127.0.0.1", yubind.https_port),
                                       timeout=yt.IO_TIMEOUT)
        s = ctx.wrap_socket(raw, server_hostname=yt.HOSTNAME)
        try:
            s.sendall((f"GET /jmap/session HTTP/1.1\r\nHost: {yt.HOSTNAME}\r\n"
                       f"{extra}Authorization: {basic()}\r\n\r\n").encode())
        except (BrokenPipeError, ConnectionResetError):
            pass
        got = b""
        try:
            while b"\r\n" not in got:
                chunk = s.recv(4096)
                if not chunk:
                    break
                got += chunk
        except (ConnectionResetError, ssl.SSLError):
            pass
        s.close()
        assert got == b"" or re.match(rb"HTTP/1\.1 4\d\d ", got), got[:100]
        assert not got.startswith(b"HTTP/1.1 200")
    j = Jmap(yubind)
    r, _ = j.req("GET", "/jmap/session", auth=basic())
    assert r.status == 200
    j.close()


# ---- Email/query, Email/get, Thread/get, downloads (RFC 8621) ----

def call(j, name, args, aid=None):
    if aid is not None:
        args = {"accountId": aid, **args}
    resp = j.api([[name, args, "0"]])
    got, res, cid = resp["methodResponses"][0]
    assert cid == "0"
    return got, res


def inbox_id(j, aid):
    return [m for m in mailboxes(j, aid)["list"] if m["role"] == "inbox"][0]["id"]


EMAIL_DEFAULT = {"id", "blobId", "threadId", "mailboxIds", "keywords", "size",
                 "receivedAt", "messageId", "inReplyTo", "references", "sender",
                 "from", "to", "cc", "bcc", "replyTo", "subject", "sentAt",
                 "hasAttachment", "preview", "bodyValues", "textBody", "htmlBody",
                 "attachments"}
PART_KEYS = {"partId", "blobId", "size", "name", "type", "charset", "disposition",
             "cid", "language", "location"}


def test_email_query_get_shape_and_keywords(yubind):
    j = Jmap(yubind)
    aid = account_id(j)
    ib = inbox_id(j, aid)
    yubind.send("sender@example.net", [DEMO], yt.make_message(
        subject="Hello there", body="First line.\nSecond   line.\n",
        sender='"Joe Bloggs" <joe@example.net>',
        extra="Date: Tue, 01 Dec 2026 10:52:37 +0200\nCc: a@x.example, "
              "Friends: b@y.example, \"C, D\" <c@z.example>;\n"
              "In-Reply-To: <parent@example.net>\n"
              "References: <root@example.net> <parent@example.net>\n"))
    got, q = call(j, "Email/query", {"filter": {"inMailbox": ib}, "calculateTotal": True},
                  aid)
    assert got == "Email/query", q
    assert set(q) >= {"accountId", "queryState", "canCalculateChanges", "position",
                      "ids", "total"}
    assert q["total"] == 1 and q["position"] == 0 and len(q["ids"]) == 1
    eid = q["ids"][0]
    got, g = call(j, "Email/get", {"ids": [eid, "e999x1", "junk"],
                                   "fetchTextBodyValues": True}, aid)
    assert got == "Email/get", g
    assert g["notFound"] == ["e999x1", "junk"]
    assert g["state"] == q["queryState"]
    e = g["list"][0]
    assert set(e) == EMAIL_DEFAULT
    assert e["id"] == eid and e["mailboxIds"] == {ib: True} and e["keywords"] == {}
    assert e["subject"] == "Hello there"
    assert e["from"] == [{"name": "Joe Bloggs", "email": "joe@example.net"}]
    assert e["to"] == [{"name": None, "email": DEMO}]
    assert e["cc"] == [{"name": None, "email": "a@x.example"},
                       {"name": None, "email": "b@y.example"},
                       {"name": "C, D", "email": "c@z.example"}]
    assert e["bcc"] is None and e["sender"] is None and e["replyTo"] is None
    assert e["sentAt"] == "2026-12-01T10:52:37+02:00"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", e["receivedAt"])
    assert e["inReplyTo"] == ["parent@example.net"]
    assert e["references"] == ["root@example.net", "parent@example.net"]
    assert len(e["messageId"]) == 1 and "@client.example.net" in e["messageId"][0]
    assert e["preview"] == "First line. Second line."
    assert e["hasAttachment"] is False and e["attachments"] == []
    assert len(e["textBody"]) == 1 and set(e["textBody"][0]) == PART_KEYS
    tb = e["textBody"][0]
    assert tb["type"] == "text/plain" and tb["charset"] == "us-ascii"
    assert e["htmlBody"] == e["textBody"]
    assert e["bodyValues"] == {tb["partId"]: {"value": "First line.\nSecond   line.\n",
                                              "isEncodingProblem": False,
                                              "isTruncated": False}}
    assert e["threadId"].startswith("t")
    got, t = call(j, "Thread/get", {"ids": [e["threadId"], "t1x999999"]}, aid)
    assert t["list"] == [{"id": e["threadId"], "emailIds": [eid]}]
    assert t["notFound"] == ["t1x999999"]
    # header forms and a cut body value
    got, g = call(j, "Email/get", {"ids": [eid], "properties": [
        "header:Subject", "header:subject:asText", "header:Cc:asAddresses",
        "header:References:asMessageIds", "header:Date:asDate", "header:X-None",
        "header:Received:all", "bodyValues", "bodyStructure"],
        "fetchAllBodyValues": True, "maxBodyValueBytes": 5}, aid)
    e2 = g["list"][0]
    assert e2["header:Subject"] == " Hello there"
    assert e2["header:subject:asText"] == "Hello there"
    assert e2["header:Cc:asAddresses"] == e["cc"]
    assert e2["header:References:asMessageIds"] == e["references"]
    assert e2["header:Date:asDate"] == e["sentAt"]
    assert e2["header:X-None"] is None
    assert len(e2["header:Received:all"]) == 1
    assert e2["bodyValues"][tb["partId"]] == {"value": "First", "isEncodingProblem": False,
                                              "isTruncated": True}
    assert e2["bodyStructure"]["type"] == "text/plain"
    got, bad = call(j, "Email/get", {"ids": [eid], "properties": ["nope"]}, aid)
    assert got == "error" and bad["type"] == "invalidArguments"
    # IMAP STORE \Seen shows as $seen, and the state moves with MODSEQ
    c = yubind.imap(DEMO)
    c.ok("SELECT INBOX")
    c.ok("STORE 1 +FLAGS (\\Seen \\Flagged $Label1)")
    got, g2 = call(j, "Email/get", {"ids": [eid], "properties": ["keywords"]}, aid)
    assert g2["list"] == [{"id": eid, "keywords": {"$seen": True, "$flagged": True,
                                                   "$label1": True}}]
    assert g2["state"] != g["state"]
    got, q2 = call(j, "Email/query", {"filter": {"hasKeyword": "$seen"}}, aid)
    assert q2["ids"] == [eid] and q2["queryState"] == g2["state"]
    got, q3 = call(j, "Email/query", {"filter": {"notKeyword": "$label1"}}, aid)
    assert q3["ids"] == []
    got, q4 = call(j, "Email/query", {"filter": {"hasKeyword": "$Label1"}}, aid)
    assert q4["ids"] == [eid]
    c.ok("LOGOUT")
    j.close()


def test_japanese_message_decoded(yubind):
    j = Jmap(yubind)
    aid = account_id(j)
    subj = "=?ISO-2022-JP?B?" + base64.b64encode(
        "会議の件".encode("iso2022_jp")).decode() + "?="
    body = "明日の会議は十時からです。\n".encode("iso2022_jp")
    msg = (b"From: =?ISO-2022-JP?B?" + base64.b64encode("山田".encode("iso2022_jp")) +
           b"?= <yamada@example.jp>\r\nTo: demo@example.test\r\nSubject: " +
           subj.encode() + b"\r\nMIME-Version: 1.0\r\n"
           b"Content-Type: text/plain; charset=ISO-2022-JP\r\n"
           b"Content-Transfer-Encoding: 7bit\r\n\r\n" + body.replace(b"\n", b"\r\n"))
    yubind.send("yamada@example.jp", [DEMO], msg)
    resp = j.api([
        ["Email/query", {"accountId": aid, "filter": {"text": "十時から"}}, "q"],
        ["Email/get", {"accountId": aid, "fetchTextBodyValues": True,
                       "#ids": {"resultOf": "q", "name": "Email/query", "path": "/ids"}},
         "g"],
    ])
    q, g = resp["methodResponses"][0][1], resp["methodResponses"][1][1]
    assert len(q["ids"]) == 1, resp
    e = g["list"][0]
    assert e["subject"] == "会議の件"
    assert e["from"] == [{"name": "山田", "email": "yamada@example.jp"}]
    assert e["preview"] == "明日の会議は十時からです。"
    tb = e["textBody"][0]
    assert tb["charset"].lower() == "iso-2022-jp"
    assert e["bodyValues"][tb["partId"]]["value"] == "明日の会議は十時からです。\n"
    j.close()


def test_attachment_and_download(yubind):
    j = Jmap(yubind)
    aid = account_id(j)
    payload = bytes(range(256)) * 40
    b64 = base64.encodebytes(payload).decode().replace("\n", "\r\n")
    msg = ("From: sender@example.net\r\nTo: demo@example.test\r\nSubject: files\r\n"
           "MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=XX\r\n\r\n"
           "--XX\r\nContent-Type: multipart/alternative; boundary=YY\r\n\r\n"
           "--YY\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nSee the file.\r\n"
           "--YY\r\nContent-Type: text/html; charset=utf-8\r\n\r\n"
           "<p>See <b>the</b> file.</p>\r\n--YY--\r\n"
           "--XX\r\nContent-Type: application/octet-stream\r\n"
           "Content-Disposition: attachment; filename*=UTF-8''%E8%B3%87%E6%96%99.bin\r\n"
           "Content-Transfer-Encoding: base64\r\n\r\n" + b64 + "--XX--\r\n")
    yubind.send("sender@example.net", [DEMO], msg.encode())
    got, q = call(j, "Email/query", {"filter": {"minSize": len(payload)}}, aid)
    assert len(q["ids"]) == 1, q
    got, g = call(j, "Email/get", {"ids": q["ids"], "fetchHTMLBodyValues": True,
                                   "properties": ["bodyStructure", "textBody", "htmlBody",
                                                  "attachments", "hasAttachment",
                                                  "bodyValues", "preview", "blobId",
                                                  "size"]}, aid)
    e = g["list"][0]
    assert e["hasAttachment"] is True
    assert [p["type"] for p in e["textBody"]] == ["text/plain"]
    assert [p["type"] for p in e["htmlBody"]] == ["text/html"]
    assert e["preview"] == "See the file."
    hb = e["htmlBody"][0]
    assert e["bodyValues"][hb["partId"]]["value"] == "<p>See <b>the</b> file.</p>"
    (att,) = e["attachments"]
    assert att["name"] == "資料.bin" and att["disposition"] == "attachment"
    assert att["size"] == len(payload) and att["type"] == "application/octet-stream"
    bs = e["bodyStructure"]
    assert bs["type"] == "multipart/mixed" and bs["partId"] is None
    assert [p["type"] for p in bs["subParts"]] == ["multipart/alternative",
                                                   "application/octet-stream"]
    assert [p["type"] for p in bs["subParts"][0]["subParts"]] == ["text/plain",
                                                                  "text/html"]
    # the part, decoded, and the whole message, byte-identical
    path = f"/jmap/download/{aid}/{att['blobId']}/%E8%B3%87%E6%96%99.bin?accept=image%2Fpng"
    r, data = j.req("GET", path, auth=basic())
    assert r.status == 200 and data == payload
    assert r.getheader("Content-Type") == "image/png"
    assert r.getheader("X-Content-Type-Options") == "nosniff"
    assert r.getheader("Content-Disposition") == (
        "attachment; filename=\"______.bin\"; filename*=UTF-8''%E8%B3%87%E6%96%99.bin")
    r, whole = j.req("GET", f"/jmap/download/{aid}/{e['blobId']}/m.eml?accept=message/rfc822",
                     auth=basic())
    assert r.status == 200 and len(whole) == e["size"]
    assert msg.encode() in whole
    r, _ = j.req("GET", f"/jmap/download/{aid}/b1x99999/x.bin?accept=a/b", auth=basic())
    assert r.status == 404
    r, _ = j.req("GET", f"/jmap/download/a99999/{e['blobId']}/x?accept=a/b", auth=basic())
    assert r.status == 404
    r, _ = j.req("GET", f"/jmap/download/{aid}/{e['blobId']}/x?accept=a/b")
    assert r.status == 401
    j.close()


def test_query_filters_sorts_paging(yubind):
    j = Jmap(yubind)
    aid = account_id(j)
    ib = inbox_id(j, aid)
    c = yubind.imap(DEMO)
    sizes = []
    for i in range(6):
        body = "x" * (100 * (6 - i)) + "\n"
        msg = yt.crlf(f"From: a@example.net\nSubject: m{i}\n\n{body}")
        sizes.append(len(msg))
        day = 10 + i
        c.ok(f'APPEND INBOX "{day:02d}-Nov-2026 12:00:00 +0000" \0', literals=[msg])
    c.ok("CREATE Other")
    c.ok('APPEND Other "20-Nov-2026 12:00:00 +0000" \0',
         literals=[yt.crlf("Subject: other\n\nthe other one\n")])
    got, q = call(j, "Email/query", {"filter": {"inMailbox": ib}, "calculateTotal": True},
                  aid)
    assert q["total"] == 6
    newest_first = q["ids"]
    got, g = call(j, "Email/get", {"ids": newest_first, "properties": ["subject"]}, aid)
    assert [e["subject"] for e in g["list"]] == ["m5", "m4", "m3", "m2", "m1", "m0"]
    got, q = call(j, "Email/query", {"filter": {"inMailbox": ib}, "sort": [
        {"property": "receivedAt", "isAscending": True}]}, aid)
    assert q["ids"] == newest_first[::-1]
    got, q = call(j, "Email/query", {"filter": {"inMailbox": ib}, "sort": [
        {"property": "size"}]}, aid)
    assert q["ids"] == newest_first
    got, q = call(j, "Email/query", {"filter": {"inMailbox": ib}, "sort": [
        {"property": "subject", "isAscending": True}]}, aid)
    assert q["ids"] == newest_first[::-1]
    got, q = call(j, "Email/query", {"filter": {"inMailbox": ib}, "limit": 2, "sort": [
        {"property": "subject", "isAscending": False}], "calculateTotal": True}, aid)
    assert q["ids"] == newest_first[:2] and q["total"] == 6
    got, q = call(j, "Email/query", {"filter": {"inMailbox": ib}, "sort": [
        {"property": "from"}]}, aid)
    assert q["ids"] == newest_first
    got, q = call(j, "Email/query", {"filter": {"inMailbox": ib}, "sort": [
        {"property": "sentAt"}]}, aid)
    assert sorted(q["ids"]) == sorted(newest_first)
    got, q = call(j, "Email/query", {"filter": {"inMailbox": ib}, "position": 2, "limit": 2,
                                     "calculateTotal": True}, aid)
    assert q["ids"] == newest_first[2:4] and q["position"] == 2 and q["total"] == 6
    got, q = call(j, "Email/query", {"filter": {"inMailbox": ib}, "position": -2}, aid)
    assert q["ids"] == newest_first[-2:] and q["position"] == 4
    got, q = call(j, "Email/query", {"filter": {"inMailbox": ib}, "anchor": newest_first[3],
                                     "anchorOffset": -1, "limit": 2}, aid)
    assert q["ids"] == newest_first[2:4] and q["position"] == 2
    got, q = call(j, "Email/query", {"anchor": "e1x999999"}, aid)
    assert got == "error" and q["type"] == "anchorNotFound"
    got, q = call(j, "Email/query", {"filter": {"inMailbox": ib,
                                                "after": "2026-11-12T00:00:00Z",
                                                "before": "2026-11-14T00:00:00Z"}}, aid)
    assert q["ids"] == newest_first[2:4]
    got, q = call(j, "Email/query", {"filter": {"minSize": sizes[2], "maxSize": sizes[1]}},
                  aid)
    assert q["ids"] == [newest_first[3]]
    got, q = call(j, "Email/query", {"filter": {"inMailboxOtherThan": [ib]}}, aid)
    assert len(q["ids"]) == 1
    got, q = call(j, "Email/query", {"filter": {"text": "other one"}}, aid)
    assert len(q["ids"]) == 1
    # text conditions: FTS candidates (or all, under three characters) checked
    # against the message itself
    got, q = call(j, "Email/query", {"filter": {"subject": "m3"}, "calculateTotal": True},
                  aid)
    assert q["ids"] == [newest_first[2]] and q["total"] == 1
    got, q = call(j, "Email/query", {"filter": {"text": "M3"}}, aid)
    assert q["ids"] == [newest_first[2]]
    got, q = call(j, "Email/query", {"filter": {"body": "m3"}}, aid)
    assert q["ids"] == []
    got, q = call(j, "Email/query", {"filter": {"body": "other one"}}, aid)
    assert len(q["ids"]) == 1 and q["ids"][0] not in newest_first
    got, q = call(j, "Email/query", {"filter": {"inMailbox": ib, "from": "a@example.net"},
                                     "position": 1, "limit": 2, "calculateTotal": True}, aid)
    assert q["ids"] == newest_first[1:3] and q["total"] == 6 and q["position"] == 1
    got, q = call(j, "Email/query", {"filter": {"from": "a@example.net"},
                                     "anchor": newest_first[5], "anchorOffset": -1}, aid)
    assert q["ids"] == newest_first[4:] and q["position"] == 4
    got, q = call(j, "Email/query", {"filter": {"to": "nobody"}}, aid)
    assert q["ids"] == []
    got, q = call(j, "Email/query", {"filter": {"inMailbox": "m999999"}}, aid)
    assert q["ids"] == []
    got, q = call(j, "Email/query", {"sort": [{"property": "bogus"}]}, aid)
    assert got == "error" and q["type"] == "unsupportedSort"
    got, q = call(j, "Email/query", {"filter": {"operator": "AND", "conditions": [
        {"inMailbox": ib}, {"subject": "m4"}]}}, aid)
    assert q["ids"] == [newest_first[1]]
    got, q = call(j, "Email/query", {"filter": {"operator": "AND", "conditions": [
        {"subject": "m4"}, {"subject": "m3"}]}}, aid)
    assert got == "error" and q["type"] == "unsupportedFilter"
    got, q = call(j, "Email/query", {"filter": {"operator": "OR", "conditions": []}}, aid)
    assert got == "error" and q["type"] == "unsupportedFilter"
    c.ok("LOGOUT")
    j.close()


def test_query_then_get_back_reference_and_caps(yubind):
    """The RFC 8620 3.7 example: Email/query, then Email/get of #ids."""
    j = Jmap(yubind)
    aid = account_id(j)
    for i in range(3):
        yubind.send("sender@example.net", [DEMO], yt.make_message(subject="r%d" % i))
    resp = j.api([
        ["Email/query", {"accountId": aid, "sort": [{"property": "receivedAt",
                                                      "isAscending": False}],
                         "collapseThreads": True, "position": 0, "limit": 2,
                         "calculateTotal": True}, "t0"],
        ["Email/get", {"accountId": aid, "properties": ["threadId", "subject"],
                       "#ids": {"resultOf": "t0", "name": "Email/query", "path": "/ids"}},
         "t1"],
        ["Thread/get", {"accountId": aid,
                        "#ids": {"resultOf": "t1", "name": "Email/get",
                                 "path": "/list/*/threadId"}}, "t2"],
        ["Email/get", {"accountId": aid, "ids": ["e1x%d" % i for i in range(1, 502)]}, "t3"],
        ["Email/get", {"accountId": aid}, "t4"],
    ])
    m = resp["methodResponses"]
    assert [x[0] for x in m] == ["Email/query", "Email/get", "Thread/get", "error", "error"]
    assert m[0][1]["total"] == 3 and len(m[0][1]["ids"]) == 2
    assert [e["id"] for e in m[1][1]["list"]] == m[0][1]["ids"]
    assert all(set(e) == {"id", "threadId", "subject"} for e in m[1][1]["list"])
    assert [t["emailIds"][0] for t in m[2][1]["list"]] == m[0][1]["ids"]
    assert m[3][1]["type"] == "requestTooLarge"
    assert m[4][1]["type"] == "requestTooLarge"
    j.close()


def changes(j, aid, name, since, **args):
    got, res = call(j, name, {"sinceState": since, **args}, aid)
    assert got == name, res
    return res


def test_changes_follow_imap_and_smtp(yubind):
    """Email/changes, Mailbox/changes, Thread/changes and Email/queryChanges
    read the store's change log, which IMAP, SMTP delivery and JMAP all
    write: an IMAP COPY keeps the email's id (another mailbox of the same
    email), an expunge of one copy is an update, of the last a destroy."""
    j = Jmap(yubind)
    aid = account_id(j)
    ib = inbox_id(j, aid)
    s0 = call(j, "Email/get", {"ids": []}, aid)[1]["state"]
    m0 = mailboxes(j, aid)["state"]
    q0 = call(j, "Email/query", {"filter": {"inMailbox": ib}}, aid)[1]
    assert q0["canCalculateChanges"] is True
    # nothing changed: the same state, empty lists
    r = changes(j, aid, "Email/changes", s0)
    assert (r["oldState"], r["newState"], r["created"], r["updated"], r["destroyed"],
            r["hasMoreChanges"]) == (s0, s0, [], [], [], False)

    for n in range(3):
        yubind.send("sender@example.net", [DEMO], yt.make_message(subject=f"m{n}"))
    r = changes(j, aid, "Email/changes", s0)
    assert len(r["created"]) == 3 and r["updated"] == [] and r["destroyed"] == []
    e1, e2, e3 = r["created"]
    s1 = r["newState"]
    assert s1 == call(j, "Email/get", {"ids": []}, aid)[1]["state"]
    mc = changes(j, aid, "Mailbox/changes", m0)
    assert mc["updated"] == [ib] and mc["created"] == []
    assert mc["updatedProperties"] == ["totalEmails", "unreadEmails", "totalThreads",
                                       "unreadThreads"]
    t = changes(j, aid, "Thread/changes", s0)
    assert len(t["created"]) == 3 and all(x.startswith("t") for x in t["created"])
    # maxChanges pages through the log
    r = changes(j, aid, "Email/changes", s0, maxChanges=2)
    assert r["hasMoreChanges"] is True and r["created"] == [e1, e2]
    r = changes(j, aid, "Email/changes", r["newState"], maxChanges=2)
    assert r["hasMoreChanges"] is False and r["created"] == [e3] and r["newState"] == s1

    c = yubind.imap(DEMO)
    c.ok('CREATE "Keep"')
    c.ok("SELECT INBOX")
    c.ok("STORE 1 +FLAGS (\\Seen)")
    c.ok('COPY 2 "Keep"')
    c.ok("STORE 3 +FLAGS (\\Deleted)")
    c.ok("EXPUNGE")
    r = changes(j, aid, "Email/changes", s1)
    assert sorted(r["updated"]) == sorted([e1, e2]) and r["destroyed"] == [e3]
    assert r["created"] == []
    g = call(j, "Email/get", {"ids": [e1, e2], "properties": ["mailboxIds", "keywords"]},
             aid)[1]
    by = {e["id"]: e for e in g["list"]}
    assert by[e1]["keywords"] == {"$seen": True}
    keep = [m["id"] for m in mailboxes(j, aid)["list"] if m["name"] == "Keep"][0]
    assert by[e2]["mailboxIds"] == {ib: True, keep: True}
    mc = changes(j, aid, "Mailbox/changes", m0)
    assert mc["created"] == [keep] and mc["updated"] == [ib]
    # the new mailbox is in created; INBOX changed only in its counts
    assert mc["updatedProperties"] == ["totalEmails", "unreadEmails", "totalThreads",
                                       "unreadThreads"]
    c.ok('RENAME "Keep" "Kept"')
    mc = changes(j, aid, "Mailbox/changes", mc["newState"])
    assert mc["updated"] == [keep] and mc["updatedProperties"] is None

    # queryChanges: everything changed is removed, what matches now is added
    qc = call(j, "Email/queryChanges", {"filter": {"inMailbox": ib},
                                        "sinceQueryState": q0["queryState"],
                                        "calculateTotal": True}, aid)[1]
    assert sorted(qc["removed"]) == sorted([e1, e2, e3])
    assert {a["id"] for a in qc["added"]} == {e1, e2}
    assert qc["total"] == 2
    now = call(j, "Email/query", {"filter": {"inMailbox": ib}}, aid)[1]
    assert qc["newQueryState"] == now["queryState"]
    assert [a["id"] for a in sorted(qc["added"], key=lambda a: a["index"])] == now["ids"]

    # unknown and future states cannot be calculated
    for bad in ("junk", str(int(s1) + 1000), "-1"):
        got, res = call(j, "Email/changes", {"sinceState": bad}, aid)
        assert got == "error" and res["type"] == "cannotCalculateChanges", res
        got, res = call(j, "Mailbox/changes", {"sinceState": bad}, aid)
        assert got == "error" and res["type"] == "cannotCalculateChanges", res


def test_mailbox_query(yubind):
    j = Jmap(yubind)
    aid = account_id(j)
    c = yubind.imap(DEMO)
    c.ok('CREATE "Projects/2026"')
    c.ok('CREATE "Projects/Old"')
    c.ok('SUBSCRIBE "Projects"')
    got, q = call(j, "Mailbox/query", {"sort": [{"property": "name"}],
                                       "calculateTotal": True}, aid)
    assert got == "Mailbox/query", q
    names = {m["id"]: m["name"] for m in mailboxes(j, aid)["list"]}
    assert [names[i] for i in q["ids"]] == sorted(names[i] for i in q["ids"])
    assert q["total"] == len(names)
    proj = [i for i, n in names.items() if n == "Projects"][0]
    got, q = call(j, "Mailbox/query", {"filter": {"parentId": proj},
                                       "sort": [{"property": "name", "isAscending": False}]},
                  aid)
    assert [names[i] for i in q["ids"]] == ["Old", "2026"]
    got, q = call(j, "Mailbox/query", {"filter": {"role": "inbox"}}, aid)
    assert [names[i] for i in q["ids"]] == ["INBOX"]
    got, q = call(j, "Mailbox/query", {"filter": {"isSubscribed": True}}, aid)
    assert proj in q["ids"]
    got, q = call(j, "Mailbox/query", {"filter": {"hasAnyRole": True}}, aid)
    roles = {m["id"] for m in mailboxes(j, aid)["list"] if m["role"]}
    assert set(q["ids"]) == roles and "INBOX" in {names[i] for i in roles}
    assert proj not in roles
    # a client's limit as large as JSON allows: no overflow past the end
    got, q = call(j, "Mailbox/query", {"position": 1, "limit": 2**63 - 1}, aid)
    assert got == "Mailbox/query" and len(q["ids"]) == len(names) - 1, q
    got, q = call(j, "Mailbox/query", {"position": -1, "limit": 2**63 - 1}, aid)
    assert len(q["ids"]) == 1 and q["position"] == len(names) - 1, q
    got, q = call(j, "Mailbox/query", {"sort": [{"property": "totalEmails"}]}, aid)
    assert got == "error" and q["type"] == "unsupportedSort"
    got, q = call(j, "Mailbox/query", {"filter": {"bogus": 1}}, aid)
    assert got == "error" and q["type"] == "unsupportedFilter"


def threaded_message(msgid, subject, refs=""):
    hdr = f"From: joe@example.net\nTo: {DEMO}\nSubject: {subject}\nMessage-ID: <{msgid}>\n"
    if refs:
        hdr += f"In-Reply-To: <{refs.split()[-1]}>\nReferences: " + \
               " ".join(f"<{r}>" for r in refs.split()) + "\n"
    return yt.crlf(hdr + "\nbody\n")


def test_threads_by_references(yubind):
    """Thread/get, threadId and collapseThreads from Message-ID / In-Reply-To
    / References, whatever the arrival order (a reply that comes before its
    parent still ends up in one thread with it)."""
    j = Jmap(yubind)
    aid = account_id(j)
    ib = inbox_id(j, aid)
    s0 = call(j, "Email/get", {"ids": []}, aid)[1]["state"]
    yubind.send("joe@example.net", [DEMO], threaded_message("root@x", "Plans"))
    yubind.send("joe@example.net", [DEMO], threaded_message("other@x", "Unrelated"))
    yubind.send("joe@example.net", [DEMO], threaded_message("r1@x", "Re: Plans", "root@x"))
    # the child of a message not here yet, then that message
    yubind.send("joe@example.net", [DEMO],
                threaded_message("r3@x", "Re: Plans", "root@x r2@x"))
    got, q = call(j, "Email/query", {"filter": {"inMailbox": ib},
                                     "sort": [{"property": "receivedAt",
                                               "isAscending": True}]}, aid)
    root, other, r1, r3 = q["ids"]
    g = call(j, "Email/get", {"ids": q["ids"], "properties": ["threadId"]}, aid)[1]
    tid = {e["id"]: e["threadId"] for e in g["list"]}
    assert tid[root] == tid[r1] == tid[r3] != tid[other]
    yubind.send("joe@example.net", [DEMO], threaded_message("r2@x", "Re: Plans", "root@x"))
    got, q2 = call(j, "Email/query", {"filter": {"inMailbox": ib}}, aid)
    r2 = [i for i in q2["ids"] if i not in q["ids"]][0]
    got, t = call(j, "Thread/get", {"ids": [tid[root], tid[other], "t999999"]}, aid)
    assert got == "Thread/get", t
    by = {x["id"]: x["emailIds"] for x in t["list"]}
    assert by[tid[root]] == [root, r1, r3, r2]      # by receivedAt
    assert by[tid[other]] == [other]
    assert t["notFound"] == ["t999999"]
    got, c = call(j, "Email/query", {"filter": {"inMailbox": ib}, "collapseThreads": True,
                                     "calculateTotal": True}, aid)
    assert sorted(c["ids"]) == sorted([r2, other])   # the newest of each thread
    # Thread/changes: two threads created since s0
    tc = changes(j, aid, "Thread/changes", s0)
    assert sorted(tc["created"]) == sorted([tid[root], tid[other]])
    s1 = tc["newState"]
    c2 = yubind.imap(DEMO)
    c2.ok("SELECT INBOX")
    c2.ok("STORE 2 +FLAGS (\\Deleted)")
    c2.ok("EXPUNGE")
    tc = changes(j, aid, "Thread/changes", s1)
    assert tc["destroyed"] == [tid[other]] and tc["created"] == []


def test_threads_filled_in_the_background(yubind):
    """New mail is threaded shortly after delivery without any JMAP request
    (so the first one after a burst does not pay for it)."""
    import sqlite3
    for n in range(3):
        yubind.send("joe@example.net", [DEMO],
                    threaded_message(f"bg{n}@x", "Re: bg", "bg0@x" if n else ""))
    db = sqlite3.connect(f"file:{yubind.data}/yubin.db?mode=ro", uri=True)
    deadline = time.monotonic() + 20
    rows = []
    while time.monotonic() < deadline:
        rows = db.execute("SELECT thread_id, count(*) FROM email_threads "
                          "GROUP BY thread_id").fetchall()
        if sum(c for _, c in rows) == 3:
            break
        db.execute("SELECT 1")          # a fresh read snapshot next time
        time.sleep(0.05)                # polling the store, not synchronising
    db.close()
    assert [c for _, c in rows] == [3], rows
