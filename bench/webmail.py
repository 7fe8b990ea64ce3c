#!/usr/bin/env python3
"""webmail.py -- the webmail figures of `make bench` (bench/run.sh), and the
closest Dovecot figure.

  webmail.py yubin --imap-port P --https-port H [--user U --pass PW]
                   [--count 100000] [--runs 50] [--loads 10]
      1. fill U's INBOX to COUNT small varied messages (IMAP MULTIAPPEND
         with LITERAL+, internal dates one minute apart; timed)
      2. (a) JMAP over HTTPS keep-alive, logged in with the page's cookie:
         Email/query (inMailbox INBOX, receivedAt descending, limit 50) and
         Email/get of those ids (#ids back-reference, the page's
         properties) in one request; RUNS runs after one untimed
      3. (b) the page in chromium (tests/browser/bench.mjs): navigation
         start -> first message row, LOADS loads after a cookie login
      4. (c) every www/ asset fetched with Accept-Encoding: gzip; bytes
      5. IMAP over TLS on yubind's IMAPS port too, as in (d), for reference
  webmail.py imap --imap-port P --imaps-port S [--user ...] [--count ...]
      (d) the peer: the same messages into Dovecot's INBOX, then over TLS
      UID SORT (REVERSE ARRIVAL) UTF-8 ALL + UID FETCH of the first 50
      (FLAGS ENVELOPE RFC822.SIZE), RUNS runs after one untimed
  webmail.py report RESULTS
      the side-by-side lines from run.sh's results file

Last line of yubin/imap: RESULT webmail key=value ... (times in ms)."""
import argparse
import base64
import gzip
import http.client
import json
import os
import re
import socket
import ssl
import statistics
import subprocess
import sys
import time

CRLF = b"\r\n"
HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
PAGE_PROPS = ["id", "threadId", "mailboxIds", "keywords", "from", "subject", "receivedAt",
              "size", "preview", "hasAttachment"]
WORDS = ("budget meeting report quarterly review draft invoice travel plan lunch "
         "project status update release notes question answer photos weekend "
         "schedule contract offer reminder agenda minutes summary").split()
MONTHS = "Jan Feb Mar Apr May Jun Jul Aug Sep Oct Nov Dec".split()


def tls_ctx():
    c = ssl.create_default_context()
    c.check_hostname = False
    c.verify_mode = ssl.CERT_NONE
    return c


# ---- messages: small and varied, the same for both servers ----

def internaldate(i):
    t = time.gmtime(1700000000 + i * 60)
    return '"%02d-%s-%04d %02d:%02d:%02d +0000"' % (t.tm_mday, MONTHS[t.tm_mon - 1], t.tm_year,
                                                   t.tm_hour, t.tm_min, t.tm_sec)


def make_msg(i):
    w = [WORDS[(i * k + 7) % len(WORDS)] for k in (3, 5, 11, 13)]
    subject = "%s %s %s #%d" % (w[0].capitalize(), w[1], w[2], i)
    sender = i % 211
    date = time.strftime("%a, %d %b %Y %H:%M:%S +0000", time.gmtime(1700000000 + i * 60))
    lines = 2 + i % 17
    body = "".join("Line %d about the %s and the %s for message %d.\r\n"
                   % (k, w[k % 4], w[(k + 1) % 4], i) for k in range(lines))
    hdr = ("From: Sender %d <sender%d@example.org>\r\n"
           "To: <user@example.test>\r\n"
           "Subject: %s\r\n"
           "Date: %s\r\n"
           "Message-ID: <wm-%d@example.org>\r\n"
           "MIME-Version: 1.0\r\n" % (sender, sender, subject, date, i))
    if i % 25 == 0:
        att = base64.b64encode(bytes((i + k) % 256 for k in range(300))).decode()
        return (hdr + 'Content-Type: multipart/mixed; boundary="b%d"\r\n\r\n'
                "--b%d\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\n%s"
                "--b%d\r\nContent-Type: application/octet-stream\r\n"
                'Content-Disposition: attachment; filename="data%d.bin"\r\n'
                "Content-Transfer-Encoding: base64\r\n\r\n%s\r\n--b%d--\r\n"
                % (i, i, body, i, i, att, i)).encode()
    return (hdr + "Content-Type: text/plain; charset=us-ascii\r\n\r\n" + body).encode()


# ---- a small IMAP client (tagged responses read in big recv()s) ----

class Imap:
    def __init__(self, port, tls=False, host="127.0.0.1"):
        s = socket.create_connection((host, port), timeout=600)
        if tls:
            s = tls_ctx().wrap_socket(s)
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.s, self.buf, self.n = s, b"", 0
        self.line()
        self.caps = set()

    def line(self):
        while CRLF not in self.buf:
            self._recv()
        ln, _, self.buf = self.buf.partition(CRLF)
        return ln

    def _recv(self):
        d = self.s.recv(1 << 20)
        if not d:
            raise EOFError("the IMAP server closed the connection")
        self.buf += d

    def tag(self):
        self.n += 1
        return b"W%d" % self.n

    def wait(self, tag):
        """(status line, everything before it)."""
        pat = CRLF + tag + b" "
        data = self.buf
        start = 0
        while True:
            if data.startswith(tag + b" "):
                j = -2
                break
            j = data.find(pat, start)
            if j >= 0:
                break
            start = max(0, len(data) - len(pat))
            d = self.s.recv(1 << 20)
            if not d:
                raise EOFError("the IMAP server closed the connection")
            data += d
        k = data.find(CRLF, j + 2)
        while k < 0:
            d = self.s.recv(1 << 20)
            if not d:
                raise EOFError("the IMAP server closed the connection")
            data += d
            k = data.find(CRLF, j + 2)
        self.buf = data[k + 2:]
        return data[j + 2:k], data[:j + 2]

    def cmd(self, line):
        t = self.tag()
        self.s.sendall(t + b" " + line + CRLF)
        st, data = self.wait(t)
        if st.split(b" ", 2)[1:2] != [b"OK"]:
            raise RuntimeError("%r: %r" % (line[:60], st[:200]))
        return data

    def login(self, user, pw):
        self.cmd(b'LOGIN "%s" "%s"' % (user.encode(), pw.encode()))
        data = self.cmd(b"CAPABILITY")
        for ln in data.split(CRLF):
            if ln.upper().startswith(b"* CAPABILITY"):
                self.caps = set(ln.upper().split()[2:])

    def messages(self, mailbox):
        data = self.cmd(b'STATUS "%s" (MESSAGES)' % mailbox.encode())
        return int(re.search(rb"MESSAGES (\d+)", data).group(1))


def fill(port, user, pw, count, batch=500):
    """INBOX of user up to count messages; (seconds, messages added)."""
    c = Imap(port)
    c.login(user, pw)
    have = c.messages("INBOX")
    t0 = time.monotonic()
    litplus = b"LITERAL+" in c.caps or b"LITERAL-" in c.caps
    multi = b"MULTIAPPEND" in c.caps
    if not (litplus and multi):
        raise RuntimeError("the server lacks LITERAL+ or MULTIAPPEND")
    i = have
    window = []
    while i < count or window:
        # two batches in flight: the server works while we send
        while i < count and len(window) < 2:
            n = min(batch, count - i)
            t = c.tag()
            parts = [t + b" APPEND INBOX"]
            for k in range(n):
                m = make_msg(i + k + 1)
                flags = b"(\\Seen)" if (i + k) % 10 < 7 else b"()"
                parts.append(b" %s %s {%d+}\r\n" % (flags, internaldate(i + k + 1).encode(),
                                                   len(m)) + m)
            parts.append(CRLF)
            c.s.sendall(b"".join(parts))
            window.append(t)
            i += n
        st, _ = c.wait(window.pop(0))
        if st.split(b" ", 2)[1:2] != [b"OK"]:
            raise RuntimeError("APPEND failed: %r" % st[:200])
    secs = time.monotonic() - t0
    got = c.messages("INBOX")
    c.cmd(b"LOGOUT")
    if got < count:
        raise RuntimeError("INBOX has %d messages after the fill, not %d" % (got, count))
    return secs, count - have


def stats(ms):
    s = sorted(ms)
    p90 = s[min(len(s) - 1, int(round(0.9 * (len(s) - 1))))]
    return statistics.median(s), p90, s[0]


def imap_sort_fetch(port, user, pw, runs):
    """ms of UID SORT (REVERSE ARRIVAL) UTF-8 ALL + UID FETCH of the first 50."""
    c = Imap(port, tls=True)
    c.login(user, pw)
    c.cmd(b"SELECT INBOX")
    ms = []
    for r in range(runs + 1):
        t0 = time.perf_counter()
        data = c.cmd(b"UID SORT (REVERSE ARRIVAL) UTF-8 ALL")
        m = re.search(rb"\* SORT([ 0-9]*)", data)
        uids = m.group(1).split()[:50]
        data = c.cmd(b"UID FETCH %s (FLAGS ENVELOPE RFC822.SIZE)" % b",".join(uids))
        dt = (time.perf_counter() - t0) * 1000
        n = data.count(b" FETCH (")
        if len(uids) != 50 or n != 50:
            raise RuntimeError("SORT gave %d uids, FETCH %d messages" % (len(uids), n))
        if r > 0:               # the first run warms the server's indexes
            ms.append(dt)
    c.cmd(b"LOGOUT")
    return stats(ms)


# ---- JMAP and the page ----

class Https:
    def __init__(self, port):
        self.port = port
        self.c = http.client.HTTPSConnection("127.0.0.1", port, context=tls_ctx(), timeout=120)

    def req(self, method, path, body=None, headers=None):
        self.c.request(method, path, body=body, headers=headers or {})
        r = self.c.getresponse()
        return r, r.read()


def jmap_runs(port, user, pw, runs):
    h = Https(port)
    r, data = h.req("POST", "/login", json.dumps({"user": user, "password": pw}),
                    {"Content-Type": "application/json"})
    if r.status != 200:
        raise RuntimeError("POST /login: %d %r" % (r.status, data[:200]))
    cookie = re.match(r"(yubin_session=[0-9a-f]+);", r.getheader("Set-Cookie")).group(1)
    hdr = {"Cookie": cookie, "X-Yubin-CSRF": json.loads(data)["csrf"],
           "Content-Type": "application/json"}
    r, data = h.req("GET", "/jmap/session", headers={"Cookie": cookie})
    acct = json.loads(data)["primaryAccounts"]["urn:ietf:params:jmap:mail"]
    using = ["urn:ietf:params:jmap:core", "urn:ietf:params:jmap:mail"]
    body = json.dumps({"using": using, "methodCalls": [
        ["Mailbox/get", {"accountId": acct, "properties": ["name", "role"]}, "m"]]})
    r, data = h.req("POST", "/jmap/api/", body, hdr)
    inbox = [m["id"] for m in json.loads(data)["methodResponses"][0][1]["list"]
             if m["role"] == "inbox"][0]
    body = json.dumps({"using": using, "methodCalls": [
        ["Email/query", {"accountId": acct, "filter": {"inMailbox": inbox},
                         "sort": [{"property": "receivedAt", "isAscending": False}],
                         "limit": 50, "calculateTotal": True}, "q"],
        ["Email/get", {"accountId": acct, "properties": PAGE_PROPS,
                       "#ids": {"resultOf": "q", "name": "Email/query", "path": "/ids"}},
         "g"]]})
    ms = []
    total = None
    for k in range(runs + 1):
        t0 = time.perf_counter()
        r, data = h.req("POST", "/jmap/api/", body, hdr)
        dt = (time.perf_counter() - t0) * 1000
        if r.status != 200:
            raise RuntimeError("Email/query+get: %d %r" % (r.status, data[:300]))
        resp = json.loads(data)["methodResponses"]
        if resp[0][0] != "Email/query" or resp[1][0] != "Email/get":
            raise RuntimeError("Email/query+get failed: %r" % (resp,))
        total = resp[0][1].get("total")
        if len(resp[1][1]["list"]) != 50:
            raise RuntimeError("Email/get gave %d emails" % len(resp[1][1]["list"]))
        if k > 0:
            ms.append(dt)
    return stats(ms), total


def page_loads(port, user, pw, loads):
    bdir = os.path.join(REPO, "tests", "browser")
    if not os.path.isdir(os.path.join(bdir, "node_modules", "playwright-core")):
        return None, "tests/browser/node_modules is missing (npm ci in tests/browser)"
    cfg = {"base": "https://127.0.0.1:%d" % port, "user": user, "password": pw,
           "loads": loads}
    try:
        r = subprocess.run(["node", "bench.mjs", json.dumps(cfg)], cwd=bdir,
                           capture_output=True, text=True, timeout=300)
    except (OSError, subprocess.TimeoutExpired) as e:
        return None, str(e)
    if r.returncode != 0:
        return None, "bench.mjs exited %d: %s" % (r.returncode, r.stderr[-500:])
    return json.loads(r.stdout.strip().splitlines()[-1]), None


def assets(port):
    """[(path, gzip bytes, identity bytes)] of every www/ file."""
    out = []
    h = Https(port)
    for name in sorted(os.listdir(os.path.join(REPO, "www"))):
        path = "/" if name == "index.html" else "/" + name
        r, packed = h.req("GET", path, headers={"Accept-Encoding": "gzip"})
        if r.status != 200:
            raise RuntimeError("GET %s: %d" % (path, r.status))
        plain = gzip.decompress(packed) if r.getheader("Content-Encoding") == "gzip" else packed
        out.append((path, len(packed), len(plain)))
    return out


def cmd_yubin(a):
    print("   filling %s's INBOX to %d messages (IMAP MULTIAPPEND)" % (a.user, a.count))
    secs, added = fill(a.imap_port, a.user, a.password, a.count)
    print("   fill: %d messages added in %.1f s (%.0f/s)" % (added, secs,
                                                          added / secs if secs else 0))
    (med, p90, mn), total = jmap_runs(a.https_port, a.user, a.password, a.runs)
    print("   (a) JMAP Email/query (receivedAt desc, 50) + Email/get of them, one request, "
          "%d runs: median %.1f ms, p90 %.1f ms, min %.1f ms (target <= 20 ms; total %s)"
          % (a.runs, med, p90, mn, total))
    res = {"fill_s": "%.1f" % secs, "messages": a.count, "jmap_ms_median": "%.2f" % med,
           "jmap_ms_p90": "%.2f" % p90, "jmap_ms_min": "%.2f" % mn}
    page, why = page_loads(a.https_port, a.user, a.password, a.loads)
    if page:
        pm = statistics.median(page["ms"])
        print("   (b) the page, navigation start -> first message row, %d loads: median "
              "%.0f ms (min %.0f, max %.0f; %d rows; target <= 300 ms)"
              % (len(page["ms"]), pm, min(page["ms"]), max(page["ms"]), page["rows"]))
        res["page_ms_median"] = "%.0f" % pm
    else:
        print("   (b) the page: skipped: %s" % why)
    files = assets(a.https_port)
    gz = sum(f[1] for f in files)
    print("   (c) page assets gzip-compressed: %d bytes in all (%s; %d bytes uncompressed; "
          "target <= 200 KB)" % (gz, ", ".join("%s %d" % (p, n) for p, n, _ in files),
                                 sum(f[2] for f in files)))
    res["assets_gz_bytes"] = gz
    if a.imaps_port:
        med, p90, mn = imap_sort_fetch(a.imaps_port, a.user, a.password, a.runs)
        print("   yubind IMAP SORT+FETCH 50 (TLS, %d runs): median %.1f ms, p90 %.1f ms, "
              "min %.1f ms" % (a.runs, med, p90, mn))
        res.update({"imap_ms_median": "%.2f" % med, "imap_ms_p90": "%.2f" % p90,
                    "imap_ms_min": "%.2f" % mn})
    print("RESULT webmail " + " ".join("%s=%s" % kv for kv in res.items()))


def cmd_imap(a):
    print("   filling %s's INBOX to %d messages (IMAP MULTIAPPEND, port %d)"
          % (a.user, a.count, a.imap_port))
    secs, added = fill(a.imap_port, a.user, a.password, a.count)
    print("   fill: %d messages added in %.1f s (%.0f/s)" % (added, secs,
                                                          added / secs if secs else 0))
    med, p90, mn = imap_sort_fetch(a.imaps_port, a.user, a.password, a.runs)
    print("   (d) IMAP SORT+FETCH 50 over TLS, %d runs after one untimed: median %.1f ms, "
          "p90 %.1f ms, min %.1f ms" % (a.runs, med, p90, mn))
    print("RESULT webmail fill_s=%.1f messages=%d imap_ms_median=%.2f imap_ms_p90=%.2f "
          "imap_ms_min=%.2f" % (secs, a.count, med, p90, mn))


def cmd_report(a):
    res = {}
    with open(a.results) as f:
        for line in f:
            w = line.split()
            if len(w) >= 3 and w[1] == "RESULT" and w[2] == "webmail":
                res[w[0]] = dict(x.split("=", 1) for x in w[3:] if "=" in x)
    y, p = res.get("yubin", {}), res.get("peer", {})
    if not y and not p:
        return
    g = lambda d, k: d.get(k, "-")
    print("webmail, %s messages in INBOX (ms: median / p90 / min):" % g(y, "messages"))
    print("  Yubin JMAP Email/query+get 50     %s / %s / %s   (target <= 20)"
          % (g(y, "jmap_ms_median"), g(y, "jmap_ms_p90"), g(y, "jmap_ms_min")))
    print("  Dovecot IMAP SORT+FETCH 50        %s / %s / %s"
          % (g(p, "imap_ms_median"), g(p, "imap_ms_p90"), g(p, "imap_ms_min")))
    print("  Yubin IMAP SORT+FETCH 50          %s / %s / %s"
          % (g(y, "imap_ms_median"), g(y, "imap_ms_p90"), g(y, "imap_ms_min")))
    print("  page to first message row         %s ms median   (target <= 300)"
          % g(y, "page_ms_median"))
    print("  page assets, gzip                 %s bytes   (target <= 200 KB)"
          % g(y, "assets_gz_bytes"))
    print("  fill time: Yubin %s s, Dovecot %s s" % (g(y, "fill_s"), g(p, "fill_s")))


def main():
    sys.stdout.reconfigure(line_buffering=True)     # run.sh tees it as it comes
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="what", required=True)
    for name in ("yubin", "imap"):
        s = sub.add_parser(name)
        s.add_argument("--imap-port", type=int, required=True)
        s.add_argument("--imaps-port", type=int, default=0)
        s.add_argument("--user", default="user2@example.test")
        s.add_argument("--pass", dest="password", default="pass")
        s.add_argument("--count", type=int, default=100000)
        s.add_argument("--runs", type=int, default=50)
        if name == "yubin":
            s.add_argument("--https-port", type=int, required=True)
            s.add_argument("--loads", type=int, default=10)
    s = sub.add_parser("report")
    s.add_argument("results")
    a = ap.parse_args()
    if a.what == "imap" and not a.imaps_port:
        ap.error("imap needs --imaps-port")
    {"yubin": cmd_yubin, "imap": cmd_imap, "report": cmd_report}[a.what](a)
    return 0


if __name__ == "__main__":
    sys.exit(main())
