#!/usr/bin/env python3
"""pop3_count.py -- count the messages that are visible over POP3.

Logs in as every user (USER/PASS, or APOP with --apop-secret), STAT, QUIT, and prints the total on the
last line (a message counts only when POP3 can see it).  Meant as the
--verify-cmd of shared/bench/smtp_accept.sh, which polls it until the total
reaches baseline + messages.  Users are counted by --parallel threads (each
login costs the server a password hash, so a pass over 100 users is the
slow part; running them in parallel lets the server use all its cores).

A user whose login or STAT fails is retried (--retries) and then counted
as 0 with a line on stderr: the total is then low, and the poller keeps
polling until its own timeout, which is what a lost message looks like too.
When every user fails (server down), nothing was counted: exit status 1,
so that a poller stops at once instead of polling a dead server.

  --apop-secret S    log in with APOP (RFC 1939: MD5 of the greeting's
                     timestamp and the shared secret S) instead of
                     USER/PASS: far cheaper for the server than checking
                     a password hash, so a poller that logs in 100 users
                     every half second does not eat the CPU it measures
  --per-user         print "login count" for every user before the total
  --stamp FILE       append "t_start t_end total ticks_before ticks_after
                     failed_users" for this pass to FILE (epoch seconds; ticks = CPU
                     clock ticks of --cpu-pid, read from /proc), so that a
                     caller can tell how many passes ran and how much
                     server CPU they cost
  --cpu-pid PID      the server process to read ticks of (with --stamp)

usage: pop3_count.py [--host 127.0.0.1] [--port 110] [--users 100]
         [--user-fmt user%d@example.test] [--pass pass] [--parallel 8]
         [--timeout 30] [--retries 2] [--apop-secret S] [--per-user] [--stamp F --cpu-pid P]
"""
import argparse
import concurrent.futures as cf
import hashlib
import os
import socket
import sys
import time

MAX_LINE = 4096  # a POP3 status line is at most 512 octets (RFC 2449)


class Pop3Error(Exception):
    pass


def read_line(sock, buf):
    """One CRLF-terminated line (without CRLF); buf is a bytearray of unread data."""
    while True:
        i = buf.find(b"\r\n")
        if i >= 0:
            line = bytes(buf[:i])
            del buf[:i + 2]
            return line
        if len(buf) > MAX_LINE:
            raise Pop3Error("status line longer than %d bytes" % MAX_LINE)
        d = sock.recv(4096)
        if not d:
            raise Pop3Error("server closed the connection")
        buf += d


def command(sock, buf, cmd):
    sock.sendall(cmd + b"\r\n")
    line = read_line(sock, buf)
    if not line.startswith(b"+OK"):
        verb = cmd.split(b" ")[0].decode()
        raise Pop3Error("%s -> %s" % (verb, line[:200].decode("utf-8", "replace")))
    return line


def count_user(host, port, user, password, apop_secret, timeout):
    with socket.create_connection((host, port), timeout=timeout) as s:
        buf = bytearray()
        greet = read_line(s, buf)
        if not greet.startswith(b"+OK"):
            raise Pop3Error("greeting %r" % greet[:200])
        if apop_secret is not None:
            lt, gt = greet.find(b"<"), greet.rfind(b">")
            if lt < 0 or gt < lt:
                raise Pop3Error("no APOP timestamp in the greeting")
            digest = hashlib.md5(greet[lt:gt + 1] + apop_secret.encode()).hexdigest()
            command(s, buf, b"APOP " + user.encode() + b" " + digest.encode())
        else:
            command(s, buf, b"USER " + user.encode())
            command(s, buf, b"PASS " + password.encode())
        st = command(s, buf, b"STAT").split()
        if len(st) < 3 or not st[1].isdigit():
            raise Pop3Error("bad STAT reply %r" % b" ".join(st)[:200])
        n = int(st[1])
        try:
            command(s, buf, b"QUIT")
        except (OSError, Pop3Error):
            pass
        return n


def count_with_retries(a, user):
    err = None
    for attempt in range(a.retries + 1):
        try:
            return count_user(a.host, a.port, user, a.password, a.apop_secret,
                              a.timeout), None
        except (OSError, Pop3Error) as e:
            err = e
            time.sleep(0.2 * (attempt + 1))
    return 0, "%s: %s" % (user, err)


def proc_ticks(pid):
    try:
        with open("/proc/%d/stat" % pid, "rb") as f:
            s = f.read()
    except OSError:
        return -1
    f = s[s.rindex(b")") + 2:].split()
    return int(f[11]) + int(f[12])


def main():
    ap = argparse.ArgumentParser(description="count messages visible over POP3")
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=110)
    ap.add_argument("--users", type=int, default=100)
    ap.add_argument("--first-user", type=int, default=1)
    ap.add_argument("--user-fmt", default="user%d@example.test")
    ap.add_argument("--pass", dest="password", default="pass")
    ap.add_argument("--parallel", type=int, default=8)
    ap.add_argument("--timeout", type=float, default=30.0)
    ap.add_argument("--retries", type=int, default=2)
    ap.add_argument("--apop-secret")
    ap.add_argument("--per-user", action="store_true")
    ap.add_argument("--stamp")
    ap.add_argument("--cpu-pid", type=int)
    a = ap.parse_args()
    if not 1 <= a.users <= 100000:
        ap.error("--users must be 1..100000")
    if not 1 <= a.parallel <= 64:
        ap.error("--parallel must be 1..64")
    if not 0 <= a.retries <= 10:
        ap.error("--retries must be 0..10")

    users = [a.user_fmt % i for i in range(a.first_user, a.first_user + a.users)]
    t0 = time.time()
    c0 = proc_ticks(a.cpu_pid) if a.cpu_pid else -1
    with cf.ThreadPoolExecutor(a.parallel) as ex:
        res = list(ex.map(lambda u: count_with_retries(a, u), users))
    c1 = proc_ticks(a.cpu_pid) if a.cpu_pid else -1
    t1 = time.time()
    total = 0
    failed = 0
    for u, (n, err) in zip(users, res):
        if err:
            failed += 1
            if failed <= 3:
                sys.stderr.write("pop3_count: %s\n" % err)
        if a.per_user:
            print(u, n)
        total += n
    if failed:
        sys.stderr.write("pop3_count: %d of %d users failed (counted as 0)\n" % (failed, len(users)))
    if a.stamp:
        with open(a.stamp, "a") as f:
            f.write("%.3f %.3f %d %d %d %d\n" % (t0, t1, total, c0, c1, failed))
    print(total)
    return 1 if failed == len(users) else 0


if __name__ == "__main__":
    sys.exit(main())
