#!/usr/bin/env python3
"""imap_load.py - imaptest-style mixed IMAP load, commands per second.

Any IMAP server (stdlib only).  CLIENTS connections spread over PROCS
processes (asyncio), each against user1..userN round-robin, for SECONDS:

  --profile login    (like imaptest's default, login-heavy): each session
                     LOGIN, SELECT INBOX, then 5 random commands, LOGOUT,
                     and a new connection
  --profile nologin  one LOGIN per client, then random commands for ever

Random commands, weighted: FETCH 1:* (UID FLAGS) 20%, FETCH of one message's
header/body (BODY.PEEK[HEADER], RFC822.SIZE) 25%, STORE +/-FLAGS \\Seen or
\\Flagged 20%, APPEND of a 1 KiB message 15% (STORE \\Deleted + EXPUNGE of the
oldest instead once the mailbox holds --keep messages, so that its size stays
put from run to run), NOOP 10%, STORE \\Deleted + EXPUNGE of the oldest
message when the mailbox holds more than 20: 10%.
Every command counts (LOGIN, SELECT and LOGOUT too).  A NO or BAD reply
counts as an error.

last line: RESULT imap_load key=value ...
"""
import argparse
import asyncio
import multiprocessing
import os
import random
import sys
import time

MSG = (b"From: load@example.net\r\nTo: user@example.test\r\nSubject: load test\r\n"
       b"Message-ID: <%d.%d@load.example.net>\r\n\r\n" + b"x" * 900 + b"\r\n")


class Conn:
    def __init__(self, r, w):
        self.r, self.w, self.n = r, w, 0
        self.exists = 0

    async def cmd(self, text, literal=None):
        self.n += 1
        tag = b"L%d" % self.n
        if literal is not None:
            self.w.write(tag + b" " + text + b" {%d+}\r\n" % len(literal) + literal + b"\r\n")
        else:
            self.w.write(tag + b" " + text + b"\r\n")
        while True:
            line = await self.r.readline()
            if not line:
                raise EOFError
            if line.startswith(tag + b" "):
                return line[len(tag) + 1:len(tag) + 3] == b"OK"
            if line.endswith(b"EXISTS\r\n"):
                try:
                    self.exists = int(line.split()[1])
                except ValueError:
                    pass
            elif line.endswith(b" EXPUNGE\r\n") and self.exists > 0:
                self.exists -= 1
            while line.endswith(b"}\r\n"):
                n = int(line[line.rindex(b"{") + 1:-3])
                await self.r.readexactly(n)
                line = await self.r.readline()


async def session(args, user, stats, deadline, rnd):
    r, w = await asyncio.open_connection(args.host, args.port)
    c = Conn(r, w)
    await r.readline()
    ok = await c.cmd(b'LOGIN "%s" "%s"' % (user.encode(), args.password.encode()))
    stats[0] += 1
    if not ok:
        stats[1] += 1
        w.close()
        return
    ok = await c.cmd(b"SELECT INBOX")
    stats[0] += 1
    stats[1] += not ok
    n = 0
    while time.monotonic() < deadline and (args.profile == "nologin" or n < 5):
        n += 1
        x = rnd.random()
        if x < 0.20:
            ok = await c.cmd(b"FETCH 1:* (UID FLAGS)") if c.exists else await c.cmd(b"NOOP")
        elif x < 0.45:
            if c.exists:
                ok = await c.cmd(b"FETCH %d (RFC822.SIZE BODY.PEEK[HEADER])" %
                                 rnd.randint(1, c.exists))
            else:
                ok = await c.cmd(b"NOOP")
        elif x < 0.65:
            if c.exists:
                flag = rnd.choice([b"\\Seen", b"\\Flagged"])
                op = rnd.choice([b"+", b"-"])
                ok = await c.cmd(b"STORE %d %sFLAGS.SILENT (%s)" % (rnd.randint(1, c.exists),
                                                                    op, flag))
            else:
                ok = await c.cmd(b"NOOP")
        elif x < 0.80 and c.exists < args.keep:
            ok = await c.cmd(b"APPEND INBOX", MSG % (os.getpid(), rnd.getrandbits(48)))
            stats[0] += 1
            ok = ok and await c.cmd(b"NOOP")
        elif x < 0.80:
            # The mailbox keeps about --keep messages, so that every run
            # (and every server) works on mailboxes of the same size.
            ok = await c.cmd(b"STORE 1 +FLAGS.SILENT (\\Deleted)")
            stats[0] += 1
            ok = ok and await c.cmd(b"EXPUNGE")
        elif x < 0.90:
            ok = await c.cmd(b"NOOP")
        else:
            if c.exists > 20:
                ok = await c.cmd(b"STORE 1 +FLAGS.SILENT (\\Deleted)")
                stats[0] += 1
                ok = ok and await c.cmd(b"EXPUNGE")
            else:
                ok = await c.cmd(b"NOOP")
        stats[0] += 1
        stats[1] += not ok
    if args.profile == "login":
        await c.cmd(b"LOGOUT")
        stats[0] += 1
    w.close()


async def client(args, idx, stats, deadline):
    rnd = random.Random(idx)
    user = args.user_fmt % (idx % args.users + 1)
    while time.monotonic() < deadline:
        try:
            await session(args, user, stats, deadline, rnd)
        except (EOFError, ConnectionError, OSError):
            stats[2] += 1
            await asyncio.sleep(0.01)


def proc_main(args, first, count, q):
    stats = [0, 0, 0]   # commands, NO/BAD, connection errors

    async def run():
        deadline = time.monotonic() + args.seconds
        await asyncio.gather(*(client(args, first + i, stats, deadline) for i in range(count)))
    asyncio.run(run())
    q.put(stats)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=143)
    ap.add_argument("--users", type=int, default=100)
    ap.add_argument("--user-fmt", default="user%d@example.test")
    ap.add_argument("--password", default="pass")
    ap.add_argument("--clients", type=int, default=50)
    ap.add_argument("--procs", type=int, default=2)
    ap.add_argument("--seconds", type=float, default=20)
    ap.add_argument("--profile", choices=["login", "nologin"], default="login")
    ap.add_argument("--keep", type=int, default=50,
                    help="APPEND only below this many messages, else expunge the oldest")
    args = ap.parse_args()
    if args.clients > 2000 or args.seconds > 600:
        sys.exit("imap_load: at most 2000 clients and 600 seconds")
    q = multiprocessing.Queue()
    per = max(1, args.clients // args.procs)
    procs = []
    t0 = time.monotonic()
    for p in range(args.procs):
        n = per if p < args.procs - 1 else args.clients - per * (args.procs - 1)
        pr = multiprocessing.Process(target=proc_main, args=(args, p * per, n, q))
        pr.start()
        procs.append(pr)
    tot = [0, 0, 0]
    for _ in procs:
        s = q.get(timeout=args.seconds + 120)
        tot = [a + b for a, b in zip(tot, s)]
    for pr in procs:
        pr.join(timeout=30)
    el = time.monotonic() - t0
    print(f"imap_load: {args.profile}: {tot[0]} commands in {el:.1f} s by {args.clients} "
          f"clients = {tot[0] / el:.0f}/s, {tot[1]} NO/BAD, {tot[2]} connection errors")
    print(f"RESULT imap_load profile={args.profile} clients={args.clients} "
          f"commands={tot[0]} seconds={el:.1f} cmds_per_s={tot[0] / el:.0f} "
          f"errors={tot[1]} conn_errors={tot[2]}")


if __name__ == "__main__":
    main()
