#!/usr/bin/env python3
"""qresync.py -- time a QRESYNC resynchronisation of a large mailbox.

Any IMAP server with QRESYNC (stdlib only).  On MAILBOX of USER (filled
beforehand, e.g. by shared/bench/bigbox.py): note UIDVALIDITY and
HIGHESTMODSEQ, change the flags of CHANGES messages and expunge EXPUNGES
others from a second connection, then, RUNS times on a fresh connection,
time `SELECT MAILBOX (QRESYNC (uidvalidity modseq))` from the command to its
tagged OK, and check that it reports the changes (FETCH) and the expunges
(VANISHED).  The changes are undone only by the expunge being permanent.

usage: qresync.py [--port 143] [--user user1@example.test] [--pass pass]
                  [--mailbox bigbox] [--changes 100] [--expunges 10] [--runs 3]
last line: RESULT qresync key=value ...
"""
import argparse
import re
import socket
import statistics
import sys
import time


class Conn:
    def __init__(self, port):
        self.s = socket.create_connection(("127.0.0.1", port), timeout=600)
        self.buf = b""
        self.n = 0
        self.line()

    def line(self):
        while b"\r\n" not in self.buf:
            d = self.s.recv(1 << 20)
            if not d:
                raise EOFError("server closed the connection")
            self.buf += d
        l, self.buf = self.buf.split(b"\r\n", 1)
        return l

    def cmd(self, text):
        self.n += 1
        tag = b"Q%d" % self.n
        self.s.sendall(tag + b" " + text + b"\r\n")
        out = []
        while True:
            l = self.line()
            if l.startswith(tag + b" "):
                if not l[len(tag) + 1:].startswith(b"OK"):
                    raise RuntimeError(l.decode(errors="replace"))
                return out
            out.append(l)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, default=143)
    ap.add_argument("--user", default="user1@example.test")
    ap.add_argument("--pass", dest="password", default="pass")
    ap.add_argument("--mailbox", default="bigbox")
    ap.add_argument("--changes", type=int, default=100)
    ap.add_argument("--expunges", type=int, default=10)
    ap.add_argument("--runs", type=int, default=3)
    a = ap.parse_args()
    login = b'LOGIN "%s" "%s"' % (a.user.encode(), a.password.encode())
    c = Conn(a.port)
    c.cmd(login)
    c.cmd(b"ENABLE QRESYNC")
    un = b"\n".join(c.cmd(b"SELECT " + a.mailbox.encode()))
    uidv = int(re.search(rb"UIDVALIDITY (\d+)", un).group(1))
    hms = int(re.search(rb"HIGHESTMODSEQ (\d+)", un).group(1))
    exists = int(re.search(rb"\* (\d+) EXISTS", un).group(1))
    if exists < a.changes + a.expunges + 10:
        sys.exit("qresync: the mailbox has only %d messages" % exists)
    step = exists // (a.changes + a.expunges + 1)
    seqs = [1 + i * step for i in range(a.changes + a.expunges)]
    for q in seqs[:a.changes]:
        c.cmd(b"STORE %d +FLAGS.SILENT (\\Flagged)" % q)
    for q in sorted(seqs[a.changes:], reverse=True):
        c.cmd(b"STORE %d +FLAGS.SILENT (\\Deleted)" % q)
    c.cmd(b"EXPUNGE")
    c.cmd(b"LOGOUT")
    times = []
    problems = 0
    for _ in range(a.runs):
        d = Conn(a.port)
        d.cmd(login)
        d.cmd(b"ENABLE QRESYNC")
        t0 = time.perf_counter()
        un = d.cmd(b"SELECT %s (QRESYNC (%d %d))" % (a.mailbox.encode(), uidv, hms))
        times.append((time.perf_counter() - t0) * 1000)
        fetches = sum(1 for l in un if b" FETCH " in l)
        vanished = b"".join(l for l in un if l.startswith(b"* VANISHED"))
        nvan = 0
        for part in re.findall(rb"[\d:,]+$", vanished):
            for r in part.split(b","):
                lo, _, hi = r.partition(b":")
                nvan += int(hi or lo) - int(lo) + 1 if lo else 0
        if fetches < a.changes or nvan < a.expunges:
            problems += 1
            print("qresync: run saw %d FETCH and %d vanished (want >= %d, >= %d)"
                  % (fetches, nvan, a.changes, a.expunges))
        d.cmd(b"LOGOUT")
    print("qresync: %d messages, %d changed, %d expunged: SELECT (QRESYNC) %s ms"
          % (exists, a.changes, a.expunges, " ".join("%.1f" % t for t in times)))
    print("RESULT qresync messages=%d changes=%d expunges=%d ms_median=%.1f ms_min=%.1f "
          "problems=%d" % (exists, a.changes, a.expunges, statistics.median(times), min(times),
                           problems))


if __name__ == "__main__":
    main()
