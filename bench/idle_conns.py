#!/usr/bin/env python3
"""idle_conns.py -- memory a server spends on idle connections.

Opens N connections to each given port, brings each to an idle state
(SMTP: after the greeting and EHLO; POP3: after the greeting), and reads the
server's VmRSS before and after.  Prints, per protocol,
  RESULT idle_conns proto=P conns=N rss_before_kib=A rss_after_kib=B bytes_per_conn=C

usage: idle_conns.py --pid PID [--conns 1000] [--smtp PORT] [--pop3 PORT]
"""
import argparse
import resource
import socket
import sys


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError("no VmRSS")


def read_reply(s):
    """Read until a final reply line (SMTP "250 " or POP3 "+OK")."""
    buf = b""
    while True:
        d = s.recv(4096)
        if not d:
            raise EOFError("server closed the connection")
        buf += d
        lines = buf.split(b"\r\n")
        for l in lines[:-1]:
            if l[:1] == b"+" or (len(l) > 3 and l[3:4] == b" "):
                return buf


def measure(pid, name, port, n, hello, keep):
    """Open n idle connections and report the RSS growth; the sockets stay
    open (appended to keep) so that the next protocol's figure is not made
    of memory these ones freed."""
    before = rss_kib(pid)
    for _ in range(n):
        s = socket.create_connection(("127.0.0.1", port), timeout=30)
        keep.append(s)
        read_reply(s)
        if hello:
            s.sendall(hello)
            read_reply(s)
    after = rss_kib(pid)
    print(f"RESULT idle_conns proto={name} conns={n} rss_before_kib={before} "
          f"rss_after_kib={after} bytes_per_conn={(after - before) * 1024 // n}")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--pid", type=int, required=True)
    ap.add_argument("--conns", type=int, default=1000)
    ap.add_argument("--smtp", type=int)
    ap.add_argument("--pop3", type=int)
    a = ap.parse_args()
    if a.conns > 10000:
        sys.exit("--conns capped at 10000")
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, max(soft, a.conns + 100)), hard))
    keep = []
    try:
        if a.smtp:
            measure(a.pid, "smtp", a.smtp, a.conns, b"EHLO idle.example\r\n", keep)
        if a.pop3:
            measure(a.pid, "pop3", a.pop3, a.conns, None, keep)
    finally:
        for s in keep:
            s.close()


if __name__ == "__main__":
    main()
