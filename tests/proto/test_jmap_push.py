"""JMAP push: the event source (RFC 8620 7.3) at /jmap/eventsource/.

Streams are read from a raw TLS socket (HTTP/1.1, chunked) with a deadline
on every read, and once with curl over HTTP/2.  Changes come from SMTP
deliveries and imaplib (STORE, CREATE)."""

import base64
import http.client
import imaplib
import json
import re
import selectors
import signal
import socket
import subprocess
import time

import yubintest as yt

DEMO = "demo@example.test"
MAIL = "urn:ietf:params:jmap:mail"
ALL = "/jmap/eventsource/?types=*&closeafter=no&ping=0"


def basic(user=DEMO):
    return "Basic " + base64.b64encode(f"{user}:{yt.USERS[user]}".encode()).decode()


class EventStream:
    """GET of the event source on its own TLS connection; events parsed
    from the chunked body as they come."""

    def __init__(self, y, path=ALL, auth=None, cookie=None):
        raw = socket.create_connection(("127.0.0.1", y.https_port), timeout=yt.IO_TIMEOUT)
        self.sock = y.cert.client_context().wrap_socket(raw, server_hostname=yt.HOSTNAME)
        h = [f"GET {path} HTTP/1.1", f"Host: 127.0.0.1:{y.https_port}",
             "Accept: text/event-stream"]
        if auth is None and cookie is None:
            auth = basic()
        if auth:
            h.append(f"Authorization: {auth}")
        if cookie:
            h.append(f"Cookie: yubin_session={cookie}")
        self.sock.sendall(("\r\n".join(h) + "\r\n\r\n").encode())
        self.buf = b""
        self.body = b""
        self.ended = False
        head = self._until(b"\r\n\r\n", time.monotonic() + yt.IO_TIMEOUT)
        lines = head.decode("latin-1").split("\r\n")
        self.status = int(lines[0].split()[1])
        self.headers = {}
        for ln in lines[1:]:
            k, _, v = ln.partition(":")
            self.headers[k.strip().lower()] = v.strip()
        if self.status != 200:
            n = int(self.headers.get("content-length", "0"))
            while len(self.buf) < n:
                self._fill(time.monotonic() + yt.IO_TIMEOUT)
            self.error = self.buf[:n]

    def _fill(self, deadline):
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError("no data from the event stream in time")
        self.sock.settimeout(left)
        try:
            data = self.sock.recv(65536)
        except socket.timeout:
            raise TimeoutError("no data from the event stream in time") from None
        if not data:
            raise EOFError("the event stream's connection closed")
        self.buf += data

    def _until(self, sep, deadline):
        while sep not in self.buf:
            self._fill(deadline)
        out, _, self.buf = self.buf.partition(sep)
        return out

    def _dechunk(self, deadline):
        """Move one chunk of the body from buf to body."""
        size = int(self._until(b"\r\n", deadline).split(b";")[0], 16)
        while len(self.buf) < size + 2:
            self._fill(deadline)
        if size == 0:
            self.ended = True
        self.body += self.buf[:size]
        assert self.buf[size:size + 2] == b"\r\n"
        self.buf = self.buf[size + 2:]

    def next_block(self, timeout=yt.IO_TIMEOUT):
        """The next event block (text up to a blank line)."""
        deadline = time.monotonic() + timeout
        while b"\n\n" not in self.body:
            if self.ended:
                raise EOFError("the event stream ended")
            self._dechunk(deadline)
        block, _, self.body = self.body.partition(b"\n\n")
        return block.decode()

    def next_event(self, timeout=yt.IO_TIMEOUT):
        """(event name, parsed data), skipping comments."""
        while True:
            block = self.next_block(timeout)
            name, data = None, []
            for ln in block.split("\n"):
                if ln.startswith(":"):
                    continue
                k, _, v = ln.partition(":")
                v = v[1:] if v.startswith(" ") else v
                if k == "event":
                    name = v
                elif k == "data":
                    data.append(v)
            if name is not None or data:
                return name, json.loads("\n".join(data))

    def wait_end(self, timeout=yt.IO_TIMEOUT):
        deadline = time.monotonic() + timeout
        while not self.ended:
            try:
                self._dechunk(deadline)
            except EOFError:
                return "eof"
        return "chunked-end"

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


def account(y):
    c = http.client.HTTPSConnection("127.0.0.1", y.https_port,
                                    context=y.cert.client_context(), timeout=yt.IO_TIMEOUT)
    c.request("GET", "/jmap/session", headers={"Authorization": basic()})
    r = c.getresponse()
    data = json.loads(r.read())
    c.close()
    assert r.status == 200
    return data, data["primaryAccounts"][MAIL]


def state_of(ev, acct):
    name, data = ev
    assert name == "state", ev
    assert data["@type"] == "StateChange", data
    assert list(data["changed"]) == [acct], data
    return data["changed"][acct]


def deliver(y, subject):
    yt.send_mail(y.smtp_port, "sender@example.net", [DEMO], yt.make_message(subject=subject))


def imap_login(y):
    m = imaplib.IMAP4("127.0.0.1", y.imap_port, timeout=yt.IO_TIMEOUT)
    m.login(DEMO, yt.USERS[DEMO])
    return m


def test_session_advertises_event_source(yubind):
    s, _ = account(yubind)
    assert s["eventSourceUrl"] == (f"https://127.0.0.1:{yubind.https_port}/jmap/eventsource/"
                                   "?types={types}&closeafter={closeafter}&ping={ping}")
    assert s["apiUrl"].startswith(f"https://127.0.0.1:{yubind.https_port}/")


def test_state_events_for_smtp_store_and_create(yubind):
    """The first event has the current states; a delivery, an IMAP STORE and
    an IMAP CREATE each bring a new one."""
    _, acct = account(yubind)
    es = EventStream(yubind)
    assert es.status == 200
    assert es.headers["content-type"].startswith("text/event-stream")
    assert es.headers["cache-control"] == "no-store"
    assert es.headers["x-accel-buffering"] == "no"
    first = state_of(es.next_event(), acct)
    assert set(first) == {"Email", "Mailbox", "Thread", "EmailDelivery"}
    deliver(yubind, "push one")
    after_smtp = state_of(es.next_event(), acct)
    assert after_smtp["Email"] != first["Email"]
    assert after_smtp["Mailbox"] != first["Mailbox"]
    assert after_smtp["Thread"] == after_smtp["Email"]
    m = imap_login(yubind)
    m.select("INBOX")
    typ, _ = m.store("1", "+FLAGS", "(\\Seen)")
    assert typ == "OK"
    after_store = state_of(es.next_event(), acct)
    assert after_store["Email"] != after_smtp["Email"]
    typ, _ = m.create("Pushed")
    assert typ == "OK"
    after_create = state_of(es.next_event(), acct)
    # no email changed: only the Mailbox state moved
    assert set(after_create) == {"Mailbox"}, after_create
    assert after_create["Mailbox"] != after_store["Mailbox"]
    m.logout()
    es.close()
    yubind.wait_log(r"jmap: event source open account=a\d+ types=\* closeafter=no ping=0")


def test_new_mailbox_is_watched(yubind):
    """A delivery into a mailbox created after the stream opened (through
    JMAP-independent IMAP APPEND) is seen too."""
    _, acct = account(yubind)
    es = EventStream(yubind)
    first = state_of(es.next_event(), acct)
    m = imap_login(yubind)
    assert m.create("Later")[0] == "OK"
    created = state_of(es.next_event(), acct)
    assert set(created) == {"Mailbox"}
    msg = yt.crlf(yt.make_message(subject="appended"))
    msg = msg if isinstance(msg, bytes) else msg.encode()
    assert m.append("Later", None, None, msg)[0] == "OK"
    appended = state_of(es.next_event(), acct)
    assert appended["Email"] != first["Email"]
    m.logout()
    es.close()


def test_types_filter(yubind):
    """types=Email gets no event for a mailbox created, and only Email in
    its events; types=Mailbox only Mailbox."""
    _, acct = account(yubind)
    email = EventStream(yubind, "/jmap/eventsource/?types=Email&closeafter=no&ping=0")
    mbox = EventStream(yubind, "/jmap/eventsource/?types=Mailbox&closeafter=no&ping=0")
    e0 = state_of(email.next_event(), acct)
    m0 = state_of(mbox.next_event(), acct)
    assert set(e0) == {"Email"} and set(m0) == {"Mailbox"}
    m = imap_login(yubind)
    assert m.create("Filtered")[0] == "OK"
    m.logout()
    m1 = state_of(mbox.next_event(), acct)
    assert m1["Mailbox"] != m0["Mailbox"]
    deliver(yubind, "filtered")
    # the Email stream's next event is the delivery's: the CREATE sent none
    e1 = state_of(email.next_event(), acct)
    assert set(e1) == {"Email"} and e1["Email"] != e0["Email"]
    m2 = state_of(mbox.next_event(), acct)
    assert set(m2) == {"Mailbox"} and m2["Mailbox"] != m1["Mailbox"]
    email.close()
    mbox.close()


def test_closeafter_state_ends_after_the_change(yubind):
    _, acct = account(yubind)
    es = EventStream(yubind, "/jmap/eventsource/?types=*&closeafter=state&ping=0")
    assert es.status == 200
    assert es.next_block().startswith(": ready")
    deliver(yubind, "close after")
    ev = state_of(es.next_event(), acct)
    assert "Email" in ev
    assert es.wait_end() == "chunked-end"
    es.close()


def test_ping_clamped_and_unknown_types(yubind):
    """ping=1 is raised to the 10 s minimum; with only unknown types no
    state event comes, even after a delivery: the first event is a ping."""
    es = EventStream(yubind, "/jmap/eventsource/?types=Nothing&closeafter=no&ping=1")
    assert es.status == 200
    deliver(yubind, "nobody listens")
    t0 = time.monotonic()
    name, data = es.next_event(timeout=25)
    assert (name, data) == ("ping", {"interval": 10})
    assert time.monotonic() - t0 > 5
    es.close()


def test_bad_queries_and_methods(yubind):
    for q in ("types=*&closeafter=maybe&ping=0", "types=*&closeafter=no&ping=x",
              "types=*&closeafter=no&ping=-1"):
        es = EventStream(yubind, "/jmap/eventsource/?" + q)
        assert es.status == 400, q
        assert json.loads(es.error)["status"] == 400
        es.close()
    c = http.client.HTTPSConnection("127.0.0.1", yubind.https_port,
                                    context=yubind.cert.client_context(),
                                    timeout=yt.IO_TIMEOUT)
    c.request("POST", "/jmap/eventsource/", body=b"", headers={"Authorization": basic()})
    r = c.getresponse()
    r.read()
    assert r.status == 405 and r.getheader("Allow") == "GET"
    c.close()


def test_no_auth_is_401(yubind):
    es = EventStream(yubind, ALL, auth="")
    assert es.status == 401
    assert es.headers["www-authenticate"].startswith("Basic")
    es.close()
    bad = "Basic " + base64.b64encode(b"demo@example.test:wrong").decode()
    es = EventStream(yubind, ALL, auth=bad)
    assert es.status == 401
    es.close()


def test_cookie_auth(yubind):
    c = http.client.HTTPSConnection("127.0.0.1", yubind.https_port,
                                    context=yubind.cert.client_context(),
                                    timeout=yt.IO_TIMEOUT)
    c.request("POST", "/login", body=json.dumps({"user": DEMO, "password": yt.USERS[DEMO]}),
              headers={"Content-Type": "application/json"})
    r = c.getresponse()
    r.read()
    c.close()
    assert r.status == 200
    cookie = re.match(r"yubin_session=([0-9a-f]{64});", r.getheader("Set-Cookie")).group(1)
    _, acct = account(yubind)
    es = EventStream(yubind, ALL, auth="", cookie=cookie)
    assert es.status == 200
    first = state_of(es.next_event(), acct)
    deliver(yubind, "cookie push")
    assert state_of(es.next_event(), acct)["Email"] != first["Email"]
    es.close()
    es = EventStream(yubind, ALL, auth="", cookie="0" * 64)
    assert es.status == 401
    es.close()


def test_ninth_stream_of_an_account_is_refused(yubind):
    _, acct = account(yubind)
    streams = []
    for _ in range(8):
        es = EventStream(yubind)
        assert es.status == 200
        state_of(es.next_event(), acct)
        streams.append(es)
    ninth = EventStream(yubind)
    assert ninth.status == 429
    assert "too many event streams" in json.loads(ninth.error)["detail"]
    ninth.close()
    # another account is not counted with this one
    bob = EventStream(yubind, auth=basic("bob@example.org"))
    assert bob.status == 200
    bob.close()
    # one closed: its slot is free again (the server notices the close)
    streams.pop().close()
    deadline = time.monotonic() + yt.DEADLINE
    while True:
        es = EventStream(yubind)
        if es.status == 200:
            break
        assert es.status == 429
        es.close()
        assert time.monotonic() < deadline, "the closed stream's slot never came back"
    streams.append(es)
    deliver(yubind, "eight")
    for es in streams:
        assert "Email" in state_of(es.next_event(), acct)
        es.close()


def curl_h2(y, path):
    return subprocess.Popen(
        ["curl", "-sS", "-N", "--http2", "--cacert", y.cert.cert, "-u",
         f"{DEMO}:{yt.USERS[DEMO]}", "-D", "-",
         f"https://{yt.HOSTNAME}:{y.https_port}{path}",
         "--resolve", f"{yt.HOSTNAME}:{y.https_port}:127.0.0.1"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def read_lines_until(proc, pattern, timeout=yt.IO_TIMEOUT, have=b""):
    """curl's output up to a new match of pattern after what have holds."""
    sel = selectors.DefaultSelector()
    sel.register(proc.stdout, selectors.EVENT_READ)
    deadline = time.monotonic() + timeout
    got = b""
    while True:
        m = re.search(pattern, got)
        if m:
            return have + got
        left = deadline - time.monotonic()
        assert left > 0, f"no {pattern!r} from curl in time: {got!r}"
        if sel.select(left):
            data = proc.stdout.read1(65536)
            if not data:
                return got
            got += data


def test_http2_stream(yubind):
    """Over HTTP/2 (curl): the initial event, then one after a delivery."""
    p = curl_h2(yubind, ALL)
    try:
        out = read_lines_until(p, rb"event: state\ndata: [^\n]*\n\n")
        assert out.startswith(b"HTTP/2 200"), out
        assert b"content-type: text/event-stream" in out.lower()
        first = json.loads(re.search(rb"data: ([^\n]*)\n", out).group(1))
        deliver(yubind, "over h2")
        out = read_lines_until(p, rb"event: state\ndata: [^\n]*\n\n", have=out)
        datas = re.findall(rb"data: ([^\n]*)\n", out)
        second = json.loads(datas[-1])
        acct = list(first["changed"])[0]
        assert second["changed"][acct]["Email"] != first["changed"][acct]["Email"]
    finally:
        p.kill()
        p.wait()


def test_shutdown_with_streams_open(make_yubind):
    """SIGTERM with streams open over HTTP/1.1 and HTTP/2: yubind ends them
    and exits promptly (the fixture's timeout), and they see a clean end."""
    y = make_yubind()
    _, acct = account(y)
    streams = [EventStream(y) for _ in range(3)]
    for es in streams:
        state_of(es.next_event(), acct)
    p = curl_h2(y, ALL)
    try:
        read_lines_until(p, rb"event: state\n")
        t0 = time.monotonic()
        y.signal(signal.SIGTERM)
        for es in streams:
            assert es.wait_end() in ("chunked-end", "eof")
            es.close()
        assert p.wait(timeout=yt.DEADLINE) == 0
        rc = y.wait_exit()
        assert rc == 0
        assert time.monotonic() - t0 < 5, "shutdown waited for the event streams"
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    y.check_sanitizers()


def test_jmap_changes_are_pushed(yubind):
    """Mailbox/set create and Email/set keywords over JMAP reach the stream
    (the request's done callback tells the account and the mailboxes)."""
    _, acct = account(yubind)
    deliver(yubind, "to flag")
    es = EventStream(yubind)
    first = state_of(es.next_event(), acct)
    c = http.client.HTTPSConnection("127.0.0.1", yubind.https_port,
                                    context=yubind.cert.client_context(),
                                    timeout=yt.IO_TIMEOUT)

    def api(calls):
        body = json.dumps({"using": ["urn:ietf:params:jmap:core", MAIL],
                           "methodCalls": calls})
        c.request("POST", "/jmap/api/", body=body,
                  headers={"Authorization": basic(), "Content-Type": "application/json"})
        r = c.getresponse()
        data = json.loads(r.read())
        assert r.status == 200, data
        return data["methodResponses"]

    res = api([["Mailbox/set", {"accountId": acct, "create": {"n": {"name": "ViaJmap"}}},
                "s"]])
    assert "n" in res[0][1]["created"], res
    created = state_of(es.next_event(), acct)
    assert set(created) == {"Mailbox"} and created["Mailbox"] != first["Mailbox"]
    res = api([["Email/query", {"accountId": acct}, "q"]])
    eid = res[0][1]["ids"][0]
    res = api([["Email/set", {"accountId": acct,
                              "update": {eid: {"keywords/$flagged": True}}}, "u"]])
    assert eid in res[0][1]["updated"], res
    flagged = state_of(es.next_event(), acct)
    assert flagged["Email"] != first["Email"]
    c.close()
    es.close()
