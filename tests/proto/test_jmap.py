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
