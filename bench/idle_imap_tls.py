#!/usr/bin/env python3
"""idle_imap_tls.py -- server memory per IMAP session idling under TLS.

Opens N implicit-TLS IMAP connections (non-blocking, one thread), each
LOGIN, SELECT INBOX, IDLE (waits for "+ idling"); reads the server's VmRSS
before and after a settle time, then DONE, LOGOUT and close.

usage: idle_imap_tls.py --pid PID --port PORT [--conns 2000] [--users 100]
       [--user-fmt user%d@example.test] [--pass pass]
last line: RESULT idle_imap_tls conns=N rss_before_kib=A rss_after_kib=B kib_per_conn=C
"""
import argparse
import resource
import selectors
import socket
import ssl
import sys
import time


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError("no VmRSS")


class Sess:
    def __init__(self, ctx, port, user, pw):
        raw = socket.create_connection(("127.0.0.1", port), timeout=60)
        self.s = ctx.wrap_socket(raw)
        self.buf = b""
        self.steps = [b"", b"A LOGIN \"%s\" \"%s\"\r\n" % (user.encode(), pw.encode()),
                      b"B SELECT INBOX\r\n", b"C IDLE\r\n"]
        self.want = [b"* OK", b"A OK", b"B OK", b"+ "]
        self.step = 0
        self.s.setblocking(False)

    def pump(self):
        """Advance; True once idling."""
        while self.step < len(self.want):
            i = self.buf.find(b"\r\n")
            while i >= 0:
                line, self.buf = self.buf[:i], self.buf[i + 2:]
                if line.startswith(self.want[self.step]):
                    self.step += 1
                    if self.step < len(self.steps):
                        self.s.setblocking(True)
                        self.s.sendall(self.steps[self.step])
                        self.s.setblocking(False)
                    if self.step == len(self.want):
                        return True
                elif line.startswith((b"A NO", b"B NO", b"A BAD", b"B BAD", b"* BYE")):
                    raise RuntimeError(line.decode(errors="replace"))
                i = self.buf.find(b"\r\n")
            try:
                d = self.s.recv(65536)
            except (ssl.SSLWantReadError, BlockingIOError):
                return False
            if not d:
                raise EOFError("closed")
            self.buf += d
        return True


def wait(pending):
    sel = selectors.DefaultSelector()
    for p in pending:
        sel.register(p.s, selectors.EVENT_READ)
    sel.select(1)
    sel.close()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--pid", type=int, required=True)
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--conns", type=int, default=2000)
    ap.add_argument("--users", type=int, default=100)
    ap.add_argument("--user-fmt", default="user%d@example.test")
    ap.add_argument("--pass", dest="password", default="pass")
    ap.add_argument("--settle", type=float, default=3.0)
    a = ap.parse_args()
    if a.conns > 10000:
        sys.exit("at most 10000 connections")
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, a.conns + 100), hard))
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    before = rss_kib(a.pid)
    sessions = []
    pending = []
    deadline = time.monotonic() + 600
    for i in range(a.conns):
        s = Sess(ctx, a.port, a.user_fmt % (i % a.users + 1), a.password)
        sessions.append(s)
        pending.append(s)
        if len(pending) >= 50:
            while pending and time.monotonic() < deadline:
                pending = [p for p in pending if not p.pump()]
                if pending:
                    wait(pending)
    while pending and time.monotonic() < deadline:
        pending = [p for p in pending if not p.pump()]
        if pending:
            wait(pending)
    if pending:
        sys.exit(f"{len(pending)} sessions never reached IDLE")
    time.sleep(a.settle)
    after = rss_kib(a.pid)
    per = (after - before) / a.conns
    for s in sessions:
        try:
            s.s.setblocking(True)
            s.s.sendall(b"DONE\r\nZ LOGOUT\r\n")
        except OSError:
            pass
        s.s.close()
    print(f"idle_imap_tls: {a.conns} TLS sessions in IDLE: RSS {before} -> {after} KiB, "
          f"{per:.1f} KiB each")
    print(f"RESULT idle_imap_tls conns={a.conns} rss_before_kib={before} rss_after_kib={after} "
          f"kib_per_conn={per:.1f}")


if __name__ == "__main__":
    main()
