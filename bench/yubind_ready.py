#!/usr/bin/env python3
"""yubind_ready.py -- wait until a just-started yubind serves, print its ports.

  yubind_ready.py --pid PID --log FILE [--timeout 60]

Prints "imap=PORT pop3=PORT smtp=PORT ..." (every listener found) and exits 0 once yubind is ready; exits 1 (with
the reason on stderr) if the process dies or the deadline passes.

Two ways to learn the ports, the first that works wins:
 1. the log: "listening proto=smtp addr=127.0.0.1:PORT" and
    "listening proto=pop3 addr=..." followed by a line with "ready pid=";
 2. when the log level hides those info lines (log_level = warn, as the
    bench uses so that the log costs nothing under load): the TCP sockets
    PID listens on (/proc/PID/fd + /proc/net/tcp{,6}), each identified by
    its greeting ("220" = SMTP, "+OK" = POP3).  Greetings are only sent
    once the event loop runs, i.e. after start-up is complete, so two
    greeting listeners mean "ready" as well.
"""
import argparse
import os
import re
import socket
import sys
import time

LISTEN_RE = re.compile(r"listening proto=(\w+) addr=\[?([0-9a-fA-F.:]+?)\]?:(\d+)")
READY_RE = re.compile(r"ready pid=(\d+)")


def from_log(path):
    try:
        with open(path, "rb") as f:
            text = f.read().decode("utf-8", "replace")
    except OSError:
        return None
    m = READY_RE.search(text)
    if not m:
        return None
    ports = {}
    for pm in LISTEN_RE.finditer(text[:m.end()]):
        ports.setdefault(pm.group(1), int(pm.group(3)))
    return ports


def listen_inodes(pid):
    inodes = set()
    fd_dir = "/proc/%d/fd" % pid
    for fd in os.listdir(fd_dir):
        try:
            t = os.readlink(os.path.join(fd_dir, fd))
        except OSError:
            continue
        if t.startswith("socket:["):
            inodes.add(t[8:-1])
    ports = []
    for table in ("/proc/%d/net/tcp" % pid, "/proc/%d/net/tcp6" % pid):
        try:
            with open(table) as f:
                next(f)
                for line in f:
                    c = line.split()
                    # local_address rem_address st ... inode
                    if c[3] == "0A" and c[9] in inodes:
                        addr, port = c[1].rsplit(":", 1)
                        host = "127.0.0.1" if len(addr) == 8 else "::1"
                        ports.append((host, int(port, 16)))
        except OSError:
            pass
    return ports


def greeting(host, port):
    try:
        with socket.create_connection((host, port), timeout=2) as s:
            g = s.recv(512)
            if g.startswith(b"220"):
                s.sendall(b"QUIT\r\n")
                return "smtp"
            if g.startswith(b"+OK"):
                s.sendall(b"QUIT\r\n")
                return "pop3"
    except OSError:
        pass
    return None


def from_sockets(pid):
    ports = {}
    for host, port in listen_inodes(pid):
        proto = greeting(host, port)
        if proto:
            ports.setdefault(proto, port)
    return ports


def alive(pid):
    try:
        with open("/proc/%d/stat" % pid, "rb") as f:
            s = f.read()
    except OSError:
        return False
    return s[s.rindex(b")") + 2:s.rindex(b")") + 3] != b"Z"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--pid", type=int, required=True)
    ap.add_argument("--log", required=True)
    ap.add_argument("--timeout", type=float, default=60.0)
    a = ap.parse_args()
    started = time.monotonic()
    deadline = started + a.timeout
    ports = {}
    while time.monotonic() < deadline:
        if not alive(a.pid):
            sys.stderr.write("yubind_ready: yubind (pid %d) exited during start-up\n" % a.pid)
            return 1
        ports = from_log(a.log) or {}
        # The log names every listener (IMAP and IMAPS too); the greeting
        # probe only finds SMTP and POP3, so it is the fallback for a log
        # that stays silent.
        if ("smtp" not in ports or "pop3" not in ports) and \
                time.monotonic() > started + min(10.0, a.timeout / 2):
            try:
                ports = from_sockets(a.pid)
            except OSError:
                ports = {}
        if "smtp" in ports and "pop3" in ports:
            print(" ".join("%s=%d" % (k, v) for k, v in sorted(ports.items())))
            return 0
        time.sleep(0.1)
    sys.stderr.write("yubind_ready: no SMTP and POP3 listener ready after %gs (found %r)\n"
                     % (a.timeout, ports))
    return 1


if __name__ == "__main__":
    sys.exit(main())
