#!/usr/bin/env python3
"""outbound.py -- outbound SMTP: Yubin next to Postfix, both into smtp-sink.

  outbound.py --yubind PATH --yubin PATH [--dir DIR] [options]

Measures, with Postfix's smtp-sink(1) as the receiving server:

 1. throughput: N messages (--messages, 10 KiB each) submitted to
    rcpt@sink.example over P SMTP sessions (--sessions; one login per
    session, many messages per session), relayed into the sink.
      e2e    the route points at the sink while the mail comes in: the
             injection rate, and N / (first submit .. sink counted N)
      drain  the mail is queued first (Yubin: the route points at a port
             where nothing listens, so every message is deferred once;
             Postfix: smtpd puts it on hold, check_client_access static:HOLD),
             then released (Yubin: route to the sink + `yubin queue flush`;
             Postfix: `postsuper -H ALL` + `postqueue -f`): N / (release ..
             sink counted N), and the server's CPU over that time
    Yubin: a throw-away yubind, submission with AUTH PLAIN on loopback,
    `yubin route add sink.example [127.0.0.1]:PORT`.  Postfix: a throw-away
    instance under DIR (`postfix -c DIR`), port-25 role with mynetworks =
    127.0.0.0/8, transport_maps inline sink.example -> smtp:[127.0.0.1]:PORT.
    Both with their defaults otherwise (Yubin 10 connections a domain, 100
    messages a connection; Postfix 20 a destination, connection cache on
    demand).  The four runs are interleaved (Yubin e2e, Postfix e2e, Yubin
    drain, Postfix drain) so that neither server always comes first.
 2. a dead destination (Yubin only): --dead-messages small messages to a
    route whose port refuses connections (nothing listens there: refused,
    not a blackhole that never answers).  Memory once they are queued and
    tried, CPU and wake-ups (context switches) over --idle seconds after the
    first round of failures (when the first retries are that far away) and
    again after the first retry round (queue_retry_min = 5m, the default;
    skipped with --no-retry-round), the delivery attempts per minute seen
    in the log (this yubind runs at log_level = info: a line per attempt);
    then a sink is started on that port, `yubin queue flush`, and the time
    until the sink counted them all.

--perf DIR records yubind with `perf record -g` during its drains and idle
windows and prints the top symbols; --log-level sets the throughput
yubind's log_level (warn: no line per message).

The sink is counted with `smtp-sink -c` (it prints "sess=N quit=N mesg=N"
on stdout after every "." and every session's end).  Prints RESULT lines
(key=value) for bench/run.sh and a summary; exits 1 when a message is lost
or duplicated, a tool fails, or a server does not stop cleanly; 2 on bad
usage.  Every wait has a deadline.  Linux, stdlib only; the Postfix half
needs root (it is skipped with the reason otherwise).
"""
import argparse
import calendar
import multiprocessing
import os
import re
import shutil
import signal
import smtplib
import socket
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import cpu  # noqa: E402  (bench/cpu.py)

HZ = os.sysconf("SC_CLK_TCK")
SENDER = "sender@example.test"
PASSWORD = "pass"
BROKEN = []


def load():
    return "load %.1f" % os.getloadavg()[0]


def say(msg):
    print("   " + msg, flush=True)


def broke(msg):
    BROKEN.append(msg)
    print("outbound: BROKEN: " + msg, flush=True)


def result(name, **kv):
    print("RESULT %s %s" % (name, " ".join("%s=%s" % (k, v) for k, v in kv.items())), flush=True)


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def wait_until(pred, timeout, interval=0.05):
    """Poll pred() until it returns true or timeout seconds pass; returns
    its last value."""
    end = time.monotonic() + timeout
    while True:
        v = pred()
        if v or time.monotonic() >= end:
            return v
        time.sleep(interval)


def alive(pid):
    try:
        with open("/proc/%d/stat" % pid, "rb") as f:
            s = f.read()
    except OSError:
        return False
    return s[s.rindex(b")") + 2:s.rindex(b")") + 3] != b"Z"


def ticks(*pids):
    try:
        return cpu.ticks(list(pids))
    except SystemExit:
        return None


def wakeups(pid):
    """Context switches of all threads of pid (voluntary + involuntary): how
    often it was scheduled."""
    n = 0
    try:
        for t in os.listdir("/proc/%d/task" % pid):
            try:
                with open("/proc/%d/task/%s/status" % (pid, t)) as f:
                    for line in f:
                        if line.startswith(("voluntary_ctxt_switches",
                                            "nonvoluntary_ctxt_switches")):
                            n += int(line.split()[1])
            except OSError:
                pass
    except OSError:
        return None
    return n


def mem_kib(pid):
    try:
        return cpu.mem(pid)
    except SystemExit:
        return (0, 0)


def rss_split(pid):
    """"anon X MiB + file Y MiB": VmRSS as anonymous memory and mapped
    files (yubind maps its SQLite database: PRAGMA mmap_size)."""
    v = {}
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                k, _, rest = line.partition(":")
                if k in ("RssAnon", "RssFile", "RssShmem"):
                    v[k] = int(rest.split()[0])
    except OSError:
        return "?"
    return "anon %.1f MiB + file %.1f MiB" % (v.get("RssAnon", 0) / 1024,
                                              v.get("RssFile", 0) / 1024)


def message(sender, rcpt, size, tag):
    head = ("From: <%s>\r\nTo: <%s>\r\nSubject: outbound bench %s\r\n"
            "Message-ID: <%s@bench.example.test>\r\nDate: Mon, 1 Dec 2026 00:00:00 +0000\r\n"
            "MIME-Version: 1.0\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\n"
            % (sender, rcpt, tag, tag))
    line = "The quick brown fox jumps over the lazy dog, outbound bench line ..\r\n"
    body = []
    n = len(head)
    while n + len(line) <= size - 2:
        body.append(line)
        n += len(line)
    body.append("x" * max(0, size - n - 2) + "\r\n")
    return (head + "".join(body)).encode()


# ---- the injector: P processes, one SMTP session each ---------------------

def _inject_worker(port, auth, rcpt, size, count, tag, deadline, q):
    msg = message(SENDER, rcpt, size, tag)
    sent, err = 0, ""
    t_first = t_last = None
    try:
        s = smtplib.SMTP("127.0.0.1", port, timeout=120, local_hostname="client.example.test")
        s.ehlo()
        if auth:
            s.login(SENDER, PASSWORD)
        for _ in range(count):
            if time.monotonic() > deadline:
                err = "deadline passed"
                break
            t = time.monotonic()
            if t_first is None:
                t_first = t
            refused = s.sendmail(SENDER, [rcpt], msg)
            if refused:
                err = "refused: %r" % refused
                break
            sent += 1
            t_last = time.monotonic()
        try:
            s.quit()
        except (smtplib.SMTPException, OSError):
            pass
    except (smtplib.SMTPException, OSError) as e:
        err = "%s: %s" % (type(e).__name__, e)
    q.put((sent, err, t_first, t_last))


def inject(port, auth, rcpt, n, sessions, size, timeout, tag):
    """Send n messages over `sessions` parallel sessions; returns
    (sent, t_start, t_end, errors)."""
    ctx = multiprocessing.get_context("fork")
    q = ctx.Queue()
    per = [n // sessions + (1 if i < n % sessions else 0) for i in range(sessions)]
    deadline = time.monotonic() + timeout
    t0 = time.monotonic()
    procs = [ctx.Process(target=_inject_worker,
                         args=(port, auth, rcpt, size, c, "%s-%d" % (tag, i), deadline, q))
             for i, c in enumerate(per) if c > 0]
    for p in procs:
        p.start()
    got, errors, sent, t_end = 0, [], 0, t0
    while got < len(procs):
        try:
            s, err, tf, tl = q.get(timeout=max(1.0, deadline + 30 - time.monotonic()))
        except Exception:  # queue.Empty
            errors.append("an injector process did not report")
            break
        got += 1
        sent += s
        if err:
            errors.append(err)
        if tl is not None:
            t_end = max(t_end, tl)
    for p in procs:
        p.join(5)
        if p.is_alive():
            p.kill()
            p.join()
    return sent, t0, t_end, errors


# ---- smtp-sink ----------------------------------------------------------

class Sink:
    RE = re.compile(rb"sess=(\d+) quit=(\d+) mesg=(\d+)")

    def __init__(self, port, outfile):
        self.port = port
        self.outfile = outfile
        self.out = open(outfile, "wb")
        cmd = ["smtp-sink", "-c"]
        if os.geteuid() == 0:
            cmd += ["-u", "postfix"]
        cmd += ["127.0.0.1:%d" % port, "256"]
        self.p = subprocess.Popen(cmd, stdout=self.out, stderr=subprocess.STDOUT,
                                  stdin=subprocess.DEVNULL)
        ok = wait_until(lambda: self._connectable() or self.p.poll() is not None, 10)
        if not ok or self.p.poll() is not None:
            raise RuntimeError("smtp-sink on port %d did not start" % port)

    def _connectable(self):
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=1) as s:
                s.recv(100)
                s.sendall(b"QUIT\r\n")
                s.recv(100)
            return True
        except OSError:
            return False

    def counts(self):
        """(sessions, messages) counted so far."""
        try:
            with open(self.outfile, "rb") as f:
                f.seek(0, 2)
                size = f.tell()
                f.seek(max(0, size - 200))
                tail = f.read()
        except OSError:
            return (0, 0)
        m = None
        for m in self.RE.finditer(tail):
            pass
        if not m:
            return (0, 0)
        return (int(m.group(1)), int(m.group(3)))

    def mesg(self):
        return self.counts()[1]

    def stop(self):
        if self.p.poll() is None:
            self.p.terminate()
            try:
                self.p.wait(10)
            except subprocess.TimeoutExpired:
                self.p.kill()
                self.p.wait()
        self.out.close()

    def cpu_ticks(self):
        return ticks(self.p.pid) if self.p.poll() is None else None


# ---- yubind ---------------------------------------------------------------

class Yubind:
    def __init__(self, yubind, yubin, d, log_level, extra=""):
        self.yubind, self.yubin, self.d = yubind, yubin, d
        self.conf = os.path.join(d, "yubin.conf")
        self.log = os.path.join(d, "yubind.log")
        self.p = None
        data = os.path.join(d, "data")
        os.makedirs(data)
        os.chmod(d, 0o711)
        user_line = ""
        if os.geteuid() == 0:
            user_line = "user = nobody"
            shutil.chown(data, "nobody")
        with open(self.conf, "w") as f:
            f.write("""# throw-away instance made by bench/outbound.py
hostname = relay.example.test
data_dir = %s
%s
plaintext_auth = loopback
listen_smtp = 127.0.0.1:0
listen_pop3 = 127.0.0.1:0
listen_pop3s =
listen_imap =
listen_imaps =
listen_submission = 127.0.0.1:0
listen_submissions =
dns_trust_anchor =
log_level = %s
max_connections_per_ip = 1000
postmaster = sender@example.test
%s
""" % (data, user_line, log_level, extra))
        self.cli("domain", "add", "example.test")
        self.cli("user", "add", SENDER, input=PASSWORD + "\n")

    def cli(self, *args, input=None, timeout=120, check=True):
        r = subprocess.run([self.yubin, "-c", self.conf] + list(args), input=input,
                           capture_output=True, text=True, timeout=timeout)
        if check and r.returncode != 0:
            raise RuntimeError("yubin %s: exit %d: %s" % (" ".join(args), r.returncode,
                                                          (r.stderr or r.stdout).strip()))
        return r.stdout

    def start(self):
        logf = open(self.log, "ab")
        self.p = subprocess.Popen([self.yubind, "-c", self.conf], stdin=subprocess.DEVNULL,
                                  stdout=logf, stderr=subprocess.STDOUT)
        logf.close()
        r = subprocess.run([sys.executable, os.path.join(HERE, "yubind_ready.py"), "--pid",
                            str(self.p.pid), "--log", self.log, "--timeout", "60"],
                           capture_output=True, text=True, timeout=90)
        ports = dict(kv.split("=") for kv in r.stdout.split())
        if r.returncode != 0 or "submission" not in ports:
            raise RuntimeError("yubind did not become ready: %s %s" % (r.stderr.strip(),
                                                                       self.tail()))
        self.submission = int(ports["submission"])
        self.pid = self.p.pid

    def tail(self, n=10):
        try:
            with open(self.log, "rb") as f:
                f.seek(0, 2)
                f.seek(max(0, f.tell() - 4000))
                return "\n".join(f.read().decode("utf-8", "replace").splitlines()[-n:])
        except OSError:
            return ""

    def queue_recipients(self):
        """(recipients queued, of them attempted at least once), from
        `yubin queue list` (a "(last reply)" line per attempted one)."""
        out = self.cli("queue", "list", timeout=300)
        if "Mail queue is empty" in out:
            return (0, 0)
        n = tried = 0
        for line in out.splitlines():
            s = line.strip()
            if not s or s.startswith("-"):
                continue
            if line.startswith(" "):
                if s.startswith("(") and s.endswith(")"):
                    tried += 1
                else:
                    n += 1
        return (n, tried)

    def stop(self, timeout=30):
        if not self.p:
            return
        p, self.p = self.p, None
        if p.poll() is None:
            p.terminate()
        try:
            rc = p.wait(timeout)
        except subprocess.TimeoutExpired:
            broke("yubind did not exit %ds after SIGTERM; killed" % timeout)
            p.kill()
            rc = p.wait()
        if rc != 0:
            broke("yubind exit status %d after SIGTERM (want 0)" % rc)
        nw, shown = 0, []
        try:
            with open(self.log, "rb") as f:
                for line in f:
                    if b": warning: " in line or b": error: " in line:
                        nw += 1
                        if len(shown) < 5:
                            shown.append(line.decode("utf-8", "replace").rstrip())
        except OSError:
            pass
        say("yubind log %s: %d warning/error lines%s" % (self.log, nw, ", the first:" if nw
                                                         else ""))
        for line in shown:
            say("| " + line)


class LogTail:
    """Counts lines matching a pattern in a growing log, reading only what
    is new; keeps the minute of each match (for attempts per minute) and,
    when the pattern has a group (the queue id), the matches per id."""

    TS = re.compile(rb"^(\d{4}-\d\d-\d\dT\d\d:\d\d):(\d\d(?:\.\d+)?)Z")

    def __init__(self, path, pattern):
        self.path, self.re = path, re.compile(pattern)
        self.off, self.rest, self.n = 0, b"", 0
        self.minutes = {}
        self.per_id = {}
        self.first_ts = None    # unix time of the first match

    def skip_to_end(self):
        try:
            self.off = os.path.getsize(self.path)
        except OSError:
            self.off = 0
        self.rest = b""

    def count(self):
        try:
            with open(self.path, "rb") as f:
                f.seek(self.off)
                data = f.read()
        except OSError:
            return self.n
        self.off += len(data)
        data = self.rest + data
        lines = data.split(b"\n")
        self.rest = lines.pop()
        for line in lines:
            m = self.re.search(line)
            if not m:
                continue
            self.n += 1
            if m.groups():
                k = m.group(1)
                self.per_id[k] = self.per_id.get(k, 0) + 1
            t = self.TS.match(line)
            if t:
                k = t.group(1).decode()
                self.minutes[k] = self.minutes.get(k, 0) + 1
                if self.first_ts is None:
                    self.first_ts = calendar.timegm(time.strptime(k, "%Y-%m-%dT%H:%M")) + \
                        float(t.group(2))
        return self.n

    def ids(self):
        self.count()
        return len(self.per_id)


# ---- Postfix --------------------------------------------------------------

MASTER_CF = """# generated by bench/outbound.py -- throw-away instance, loopback only
127.0.0.1:%(port_in)d inet n - n - - smtpd
127.0.0.1:%(port_hold)d inet n - n - - smtpd
  -o syslog_name=postfix-outbound/hold
  -o smtpd_data_restrictions=check_client_access,static:HOLD
pickup    unix  n       -       n       60      1       pickup
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
tlsmgr    unix  -       -       n       1000?   1       tlsmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
flush     unix  n       -       n       1000?   0       flush
proxymap  unix  -       -       n       -       -       proxymap
proxywrite unix -       -       n       -       1       proxymap
smtp      unix  -       -       n       -       -       smtp
relay     unix  -       -       n       -       -       smtp
showq     unix  n       -       n       -       -       showq
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
postlog   unix-dgram n  -       n       -       1       postlogd
"""

MAIN_CF = """# generated by bench/outbound.py -- throw-away instance, loopback only
compatibility_level = 3.6
queue_directory = %(d)s/spool
data_directory = %(d)s/data
mail_owner = postfix
setgid_group = postdrop
syslog_name = postfix-outbound
maillog_file_prefixes = %(d)s/log
maillog_file = %(d)s/log/postfix.log
myhostname = relay.example.test
mydomain = example.test
myorigin = $myhostname
mydestination =
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
alias_maps =
alias_database =
biff = no
append_dot_mydomain = no
relay_domains = sink.example
transport_maps = inline:{ sink.example=smtp:[127.0.0.1]:%(sink)d }
smtpd_relay_restrictions = permit_mynetworks, reject_unauth_destination
default_transport = error:outbound mail disabled in bench sandbox
local_transport = error:no local delivery in bench sandbox
"""


class Postfix:
    def __init__(self, d, sink_port):
        self.d = d
        self.port_in, self.port_hold = free_port(), free_port()
        for sub in ("", "spool", "data", "log"):
            os.makedirs(os.path.join(d, sub), exist_ok=True)
            os.chmod(os.path.join(d, sub), 0o755)
        shutil.chown(os.path.join(d, "data"), "postfix", "postfix")
        with open(os.path.join(d, "main.cf"), "w") as f:
            f.write(MAIN_CF % {"d": d, "sink": sink_port})
        with open(os.path.join(d, "master.cf"), "w") as f:
            f.write(MASTER_CF % {"port_in": self.port_in, "port_hold": self.port_hold})
        self.run("postfix", "-c", d, "check")
        self.run("postfix", "-c", d, "start")
        self.pidfile = os.path.join(d, "spool", "pid", "master.pid")
        for port in (self.port_in, self.port_hold):
            if not wait_until(lambda: self._connectable(port), 20, 0.1):
                raise RuntimeError("postfix: port %d not listening (see %s/log)" % (port, d))
        with open(self.pidfile) as f:
            self.pid = int(f.read().strip())

    @staticmethod
    def _connectable(port):
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=2) as s:
                s.settimeout(5)
                s.recv(200)
                s.sendall(b"QUIT\r\n")
            return True
        except OSError:
            return False

    def run(self, *cmd, timeout=120):
        r = subprocess.run(list(cmd), capture_output=True, text=True, timeout=timeout,
                           stdin=subprocess.DEVNULL)
        if r.returncode != 0:
            raise RuntimeError("%s: exit %d: %s" % (" ".join(cmd), r.returncode,
                                                    (r.stderr + r.stdout).strip()))
        return r.stdout

    def count(self, queue):
        n = 0
        for _, _, files in os.walk(os.path.join(self.d, "spool", queue)):
            n += len(files)
        return n

    def queued(self):
        return sum(self.count(q) for q in ("maildrop", "incoming", "active", "deferred",
                                           "hold"))

    def stop(self):
        try:
            self.run("postfix", "-c", self.d, "stop", timeout=60)
        except (RuntimeError, subprocess.TimeoutExpired) as e:
            broke("postfix stop: %s" % e)
        if not wait_until(lambda: not alive(self.pid), 30, 0.2):
            broke("postfix master %d still running 30 s after postfix stop; aborted" % self.pid)
            subprocess.run(["postfix", "-c", self.d, "abort"], capture_output=True, timeout=60)


# ---- the throughput phases ------------------------------------------------

class Perf:
    """perf record -g on a process for a window (--perf DIR), then the top
    symbols; does nothing without --perf or without perf."""

    def __init__(self, a, pid, name):
        self.p = None
        if not a.perf or not shutil.which("perf"):
            return
        os.makedirs(a.perf, exist_ok=True)
        self.data = os.path.join(a.perf, name + ".data")
        self.p = subprocess.Popen(["perf", "record", "-q", "-F", "999", "-g", "-p", str(pid),
                                   "-o", self.data], stdout=subprocess.DEVNULL,
                                  stderr=subprocess.DEVNULL)
        time.sleep(0.5)

    def stop(self, top=20):
        if not self.p:
            return
        self.p.send_signal(signal.SIGINT)
        try:
            self.p.wait(30)
        except subprocess.TimeoutExpired:
            self.p.kill()
            self.p.wait()
        r = subprocess.run(["perf", "report", "-i", self.data, "--no-children", "-g", "none",
                            "--sort", "dso,sym", "--stdio"], capture_output=True, text=True,
                           timeout=120)
        lines = [x for x in r.stdout.splitlines() if x.strip() and not x.startswith("#")]
        say("perf (%s), top symbols:" % self.data)
        for x in lines[:top]:
            say("  " + x.strip())


def wait_sink(sink, target, timeout):
    ok = wait_until(lambda: sink.mesg() >= target, timeout, 0.02)
    return time.monotonic() if ok else None


def check_sink_exact(sink, target, label):
    time.sleep(1.0)
    got = sink.mesg()
    if got != target:
        broke("%s: the sink counted %d messages, want %d (%s)"
              % (label, got, target, "lost" if got < target else "duplicates"))
    return got


def phase_e2e(label, srv_pids, sink, port, auth, a):
    n = a.messages
    s0, m0 = sink.counts()
    c0 = ticks(*srv_pids)
    sent, t0, t_inj, errors = inject(port, auth, "rcpt@sink.example", n, a.sessions, a.size,
                                     a.phase_timeout, label + "-e2e")
    if errors or sent != n:
        broke("%s e2e: %d of %d submitted; %s" % (label, sent, n, "; ".join(errors[:3])))
    t_done = wait_sink(sink, m0 + sent, a.phase_timeout)
    c1 = ticks(*srv_pids)
    if t_done is None:
        broke("%s e2e: the sink counted %d of %d within %ds" % (label, sink.mesg() - m0, sent,
                                                                a.phase_timeout))
        return None
    check_sink_exact(sink, m0 + sent, label + " e2e")
    s1, m1 = sink.counts()
    inj = sent / (t_inj - t0) if t_inj > t0 else 0
    e2e = sent / (t_done - t0)
    cpu_s = (c1 - c0) / HZ if c0 is not None and c1 is not None else -1
    conns = s1 - s0
    say("%s e2e: %d x %d B over %d sessions: submitted in %.2f s (%.0f/s), all in the sink "
        "%.2f s after the first submit (%.0f/s); %d sink connections (%.1f messages each); "
        "server CPU %.2f s; %s" % (label, sent, a.size, a.sessions, t_inj - t0, inj,
                                   t_done - t0, e2e, conns, (m1 - m0) / conns if conns else 0,
                                   cpu_s, load()))
    result("outbound_e2e_" + label, messages=sent, inject_per_s="%.1f" % inj,
           e2e_s="%.2f" % (t_done - t0), e2e_per_s="%.1f" % e2e, sink_conns=conns,
           cpu_s="%.2f" % cpu_s)
    return e2e


def phase_drain_yubin(y, sink, dead_port, a):
    n = a.messages
    y.cli("route", "add", "sink.example", "[127.0.0.1]:%d" % dead_port)
    sent, t0, t_inj, errors = inject(y.submission, True, "rcpt@sink.example", n, a.sessions,
                                     a.size, a.phase_timeout, "yubin-drain")
    if errors or sent != n:
        broke("yubin drain: %d of %d submitted; %s" % (sent, n, "; ".join(errors[:3])))
    # every message tried once (connection refused) and deferred
    q = wait_until(lambda: (lambda r: r if r[0] == sent and r[1] == sent else None)(
        y.queue_recipients()), a.phase_timeout, 0.5)
    if not q:
        broke("yubin drain: the queue never showed %d deferred recipients (%r)"
              % (sent, y.queue_recipients()))
        return None
    t_def = time.monotonic()
    y.cli("route", "add", "sink.example", "[127.0.0.1]:%d" % sink.port)
    s0, m0 = sink.counts()
    perf = Perf(a, y.pid, "perf-yubin-drain")
    c0 = ticks(y.pid)
    t0 = time.monotonic()
    y.cli("queue", "flush")
    t_done = wait_sink(sink, m0 + sent, a.phase_timeout)
    c1 = ticks(y.pid)
    perf.stop()
    if t_done is None:
        broke("yubin drain: the sink counted %d of %d within %ds"
              % (sink.mesg() - m0, sent, a.phase_timeout))
        return None
    check_sink_exact(sink, m0 + sent, "yubin drain")
    s1, m1 = sink.counts()
    if not wait_until(lambda: y.queue_recipients() == (0, 0), 60, 0.5):
        broke("yubin drain: the queue is not empty 60 s after the sink counted all")
    rate = sent / (t_done - t0)
    cpu_s = (c1 - c0) / HZ
    conns = s1 - s0
    say("yubin drain: %d queued and deferred once (%.1f s after the last submit); flush -> "
        "all in the sink in %.2f s: %.0f msgs/s; %d sink connections (%.1f messages each); "
        "yubind CPU %.2f s (%.3f ms a message); %s"
        % (sent, t_def - t_inj, t_done - t0, rate, conns, (m1 - m0) / conns if conns else 0,
           cpu_s, cpu_s * 1000 / sent, load()))
    result("outbound_drain_yubin", messages=sent, drain_s="%.2f" % (t_done - t0),
           drain_per_s="%.1f" % rate, sink_conns=conns, cpu_s="%.2f" % cpu_s,
           cpu_ms_per_msg="%.3f" % (cpu_s * 1000 / sent))
    return rate, cpu_s


def phase_drain_postfix(pf, sink, a):
    n = a.messages
    sent, t0, t_inj, errors = inject(pf.port_hold, False, "rcpt@sink.example", n, a.sessions,
                                     a.size, a.phase_timeout, "postfix-drain")
    if errors or sent != n:
        broke("postfix drain: %d of %d submitted; %s" % (sent, n, "; ".join(errors[:3])))
    if not wait_until(lambda: pf.count("hold") == sent and pf.queued() == sent,
                      a.phase_timeout, 0.2):
        broke("postfix drain: the hold queue never had %d messages (hold %d, all %d)"
              % (sent, pf.count("hold"), pf.queued()))
        return None
    s0, m0 = sink.counts()
    c0 = ticks(pf.pid)
    t0 = time.monotonic()
    pf.run("postsuper", "-c", pf.d, "-H", "ALL")
    pf.run("postqueue", "-c", pf.d, "-f")
    t_done = wait_sink(sink, m0 + sent, a.phase_timeout)
    c1 = ticks(pf.pid)
    if t_done is None:
        broke("postfix drain: the sink counted %d of %d within %ds"
              % (sink.mesg() - m0, sent, a.phase_timeout))
        return None
    check_sink_exact(sink, m0 + sent, "postfix drain")
    s1, m1 = sink.counts()
    if not wait_until(lambda: pf.queued() == 0, 60, 0.5):
        broke("postfix drain: %d messages still queued 60 s after the sink counted all"
              % pf.queued())
    rate = sent / (t_done - t0)
    cpu_s = (c1 - c0) / HZ
    conns = s1 - s0
    say("postfix drain: %d on hold; postsuper -H ALL + postqueue -f -> all in the sink in "
        "%.2f s: %.0f msgs/s; %d sink connections (%.1f messages each); Postfix CPU %.2f s "
        "(%.3f ms a message); %s" % (sent, t_done - t0, rate, conns,
                                     (m1 - m0) / conns if conns else 0, cpu_s,
                                     cpu_s * 1000 / sent, load()))
    result("outbound_drain_postfix", messages=sent, drain_s="%.2f" % (t_done - t0),
           drain_per_s="%.1f" % rate, sink_conns=conns, cpu_s="%.2f" % cpu_s,
           cpu_ms_per_msg="%.3f" % (cpu_s * 1000 / sent))
    return rate, cpu_s


# ---- the dead destination -------------------------------------------------

def idle_window(y, deferred, secs, a, name):
    """CPU, context switches and attempts of yubind over secs of idle."""
    perf = Perf(a, y.pid, "perf-yubin-dead-" + name)
    d0, i0, w0 = deferred.count(), ticks(y.pid), wakeups(y.pid)
    time.sleep(secs)
    d1, i1, w1 = deferred.count(), ticks(y.pid), wakeups(y.pid)
    perf.stop(10)
    cpu_s = (i1 - i0) / HZ
    rss, _ = mem_kib(y.pid)
    say("dead: idle %s, %.0f s: yubind CPU %.2f s (%.2f %% of a core), %d context switches "
        "(all threads), %d attempts logged meanwhile; VmRSS %.1f MiB (%s)"
        % (name, secs, cpu_s, cpu_s * 100 / secs, w1 - w0, d1 - d0, rss / 1024,
           rss_split(y.pid)))
    return cpu_s, w1 - w0, d1 - d0


def phase_dead(a, tmp):
    n = a.dead_messages
    retry_min = 300     # queue_retry_min, the default
    dead_port = free_port()
    y = Yubind(a.yubind, a.yubin, os.path.join(tmp, "yubin-dead"), "info")
    sink = None
    res = {}
    try:
        y.cli("route", "add", "dead.example", "[127.0.0.1]:%d" % dead_port)
        y.start()
        say("yubind pid %d (log_level = info, queue_retry_min = 5m), route dead.example -> "
            "[127.0.0.1]:%d where nothing listens (connection refused)" % (y.pid, dead_port))
        deferred = LogTail(y.log, rb"info: ([0-9A-F]+): to=<[^>]*@dead\.example>, "
                           rb"relay=[^,]*, attempts=\d+, status=deferred")
        sentlog = LogTail(y.log, rb"info: ([0-9A-F]+): to=<[^>]*@dead\.example>, "
                          rb".*status=sent")
        c0 = ticks(y.pid)
        sent, t0, t_inj, errors = inject(y.submission, True, "rcpt@dead.example", n,
                                         a.sessions, a.dead_size, a.dead_timeout, "dead")
        c1 = ticks(y.pid)
        if errors or sent != n:
            broke("dead: %d of %d submitted; %s" % (sent, n, "; ".join(errors[:3])))
        inj_s = t_inj - t0
        rss0, hwm0 = mem_kib(y.pid)
        say("dead: %d x %d B submitted in %.1f s (%.0f/s, %s); yubind CPU %.1f s meanwhile "
            "(acceptance and the failed attempts together); VmRSS %.1f MiB"
            % (sent, a.dead_size, inj_s, sent / inj_s if inj_s else 0, load(), (c1 - c0) / HZ,
               rss0 / 1024))
        res.update(messages=sent, size=a.dead_size,
                   inject_per_s="%.1f" % (sent / inj_s if inj_s else 0))
        # the first round of failures: every message deferred once
        if not wait_until(lambda: deferred.ids() >= sent, a.dead_timeout, 0.5):
            broke("dead: only %d of %d messages deferred in the log within %ds"
                  % (deferred.ids(), sent, a.dead_timeout))
            return
        t_first = time.monotonic()
        first = dict(deferred.per_id)
        dup = sum(1 for v in first.values() if v > 1)
        rss, hwm = mem_kib(y.pid)
        say("dead: all %d tried and deferred %.1f s after the last submit (%d attempts "
            "logged; %d messages attempted twice in that first round); VmRSS %.1f MiB, "
            "VmHWM %.1f MiB (%s)" % (sent, t_first - t_inj, deferred.n, dup, rss / 1024,
                                      hwm / 1024, rss_split(y.pid)))
        res.update(first_round_lag_s="%.1f" % (t_first - t_inj), first_round_attempts=deferred.n,
                   first_round_twice=dup, rss_kib=rss, hwm_kib=hwm)
        # idle before the first retries are due (queue_retry_min after the first failure)
        due_in = deferred.first_ts + retry_min - time.time() if deferred.first_ts else 0
        if due_in >= 15:
            secs = min(a.idle, due_in - 5)
            cpu_s, ctx, att = idle_window(y, deferred, secs, a, "after the first round")
            res.update(idle1_s="%.0f" % secs, idle1_cpu_s="%.2f" % cpu_s, idle1_ctxsw=ctx,
                       idle1_attempts=att)
        else:
            say("dead: no idle window after the first round: the first retries were due "
                "%.0f s later" % due_in)
        if a.retry_round:
            # the first retry round: every message tried once more
            snap = dict(deferred.per_id)
            ok = wait_until(lambda: deferred.count() > sum(snap.values()),
                            retry_min + a.dead_timeout, 0.2)
            t_rs = time.monotonic()
            r0 = ticks(y.pid)

            def retried():
                deferred.count()
                return all(deferred.per_id[k] > v for k, v in snap.items())
            if ok:
                ok = wait_until(retried, a.dead_timeout, 1.0)
            t_re = time.monotonic()
            r1 = ticks(y.pid)
            if not ok:
                broke("dead: the first retry round did not reach every message within %ds"
                      % a.dead_timeout)
            else:
                att = deferred.n - sum(snap.values())
                rcpu = (r1 - r0) / HZ
                say("dead: first retry round began %.0f s after the first round ended; %d "
                    "attempts over %.1f s (the retries are due as spread out as the first "
                    "tries), yubind CPU %.2f s (%.3f ms an attempt)"
                    % (t_rs - t_first, att, t_re - t_rs, rcpu, rcpu * 1000 / att))
                res.update(retry_round_s="%.1f" % (t_re - t_rs), retry_attempts=att,
                           retry_cpu_s="%.2f" % rcpu)
                # now every message waits at least 10 min: a clean idle window
                cpu_s, ctx, att2 = idle_window(y, deferred, a.idle, a, "after the retry round")
                res.update(idle2_s=a.idle, idle2_cpu_s="%.2f" % cpu_s, idle2_ctxsw=ctx,
                           idle2_attempts=att2)
        deferred.count()
        hist = sorted(deferred.minutes.items())
        if hist:
            say("dead: attempts logged per minute (UTC): " + ", ".join(
                "%s %d" % (k[11:], v) for k, v in hist))
        # the destination comes back
        rss3, _ = mem_kib(y.pid)
        sink = Sink(dead_port, os.path.join(tmp, "sink-dead.out"))
        sentlog.skip_to_end()
        perf = Perf(a, y.pid, "perf-yubin-dead-drain")
        c2 = ticks(y.pid)
        t0 = time.monotonic()
        y.cli("queue", "flush", timeout=300)
        t_flush = time.monotonic() - t0
        marks = []
        nxt = [0.25]

        def done_or_mark():
            m = sink.mesg()
            if m >= nxt[0] * sent:
                marks.append((m, time.monotonic() - t0))
                nxt[0] += 0.25
            return m >= sent
        ok = wait_until(done_or_mark, a.dead_timeout, 0.05)
        t_done = time.monotonic()
        c3 = ticks(y.pid)
        perf.stop()
        rss4, hwm4 = mem_kib(y.pid)
        if not ok:
            broke("dead: the sink counted %d of %d within %ds after the flush"
                  % (sink.mesg(), sent, a.dead_timeout))
            return
        check_sink_exact(sink, sent, "dead drain")
        sess, mesg = sink.counts()
        drain = t_done - t0
        dcpu = (c3 - c2) / HZ
        if not wait_until(lambda: sentlog.ids() >= sent, 60, 0.5):
            broke("dead: 'status=sent' lines for %d of %d messages" % (sentlog.ids(), sent))
        if not wait_until(lambda: y.queue_recipients() == (0, 0), 120, 1):
            broke("dead: the queue is not empty 120 s after the sink counted all")
        say("dead: sink started, `yubin queue flush` (%.1f s) -> all %d in the sink in %.1f s: "
            "%.0f msgs/s over %d connections (%s); yubind CPU %.1f s (%.3f ms a message); "
            "VmRSS %.1f -> %.1f MiB (%s), VmHWM %.1f MiB"
            % (t_flush, sent, drain, sent / drain, sess, load(), dcpu, dcpu * 1000 / sent,
               rss3 / 1024, rss4 / 1024, rss_split(y.pid), hwm4 / 1024))
        say("dead: drain progress: " + ", ".join("%d at %.1f s" % m for m in marks))
        res.update(drain_s="%.1f" % drain, drain_per_s="%.1f" % (sent / drain),
                   drain_cpu_s="%.1f" % dcpu, drain_conns=sess, rss_after_kib=rss4,
                   hwm_after_kib=hwm4)
    finally:
        if res:
            result("outbound_dead", **res)
        y.stop()
        if sink:
            sink.stop()


# ---- main -----------------------------------------------------------------

def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--yubind", required=True)
    ap.add_argument("--yubin", required=True)
    ap.add_argument("--dir", help="work directory (default: a new one under /tmp, removed "
                    "at the end unless BENCH_KEEP=1)")
    ap.add_argument("--messages", type=int, default=5000)
    ap.add_argument("--size", type=int, default=10240)
    ap.add_argument("--sessions", type=int, default=10)
    ap.add_argument("--dead-messages", type=int, default=100000)
    ap.add_argument("--dead-size", type=int, default=1024)
    ap.add_argument("--idle", type=int, default=60)
    ap.add_argument("--no-retry-round", dest="retry_round", action="store_false")
    ap.add_argument("--skip-postfix", action="store_true")
    ap.add_argument("--log-level", default="warn", help="log_level of the throughput yubind "
                    "(default warn: no line per message)")
    ap.add_argument("--perf", metavar="DIR", help="perf record yubind during its drains (and "
                    "the idle window) into DIR, print the top symbols")
    ap.add_argument("--skip-throughput", action="store_true")
    ap.add_argument("--skip-dead", action="store_true")
    ap.add_argument("--phase-timeout", type=int, default=600)
    ap.add_argument("--dead-timeout", type=int, default=1200)
    a = ap.parse_args()
    if a.messages < 1 or a.sessions < 1 or a.dead_messages < 1 or a.size < 512:
        ap.error("--messages, --sessions, --dead-messages must be >= 1, --size >= 512")
    if not shutil.which("smtp-sink"):
        print("outbound: smtp-sink not found (package postfix)", file=sys.stderr)
        return 1

    own = a.dir is None
    tmp = a.dir or tempfile.mkdtemp(prefix="yubin-outbound.")
    os.makedirs(tmp, exist_ok=True)
    os.chmod(tmp, 0o711)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    signal.signal(signal.SIGHUP, lambda *_: sys.exit(129))
    y = pf = sink = None
    rates = {}
    try:
        if not a.skip_throughput:
            skip_pf = None
            if a.skip_postfix:
                skip_pf = "--skip-postfix"
            elif os.geteuid() != 0:
                skip_pf = "not root (Postfix runs as its own users)"
            elif not shutil.which("postfix"):
                skip_pf = "postfix not installed"
            sink_port, dead_port = free_port(), free_port()
            sink = Sink(sink_port, os.path.join(tmp, "sink.out"))
            y = Yubind(a.yubind, a.yubin, os.path.join(tmp, "yubin"), a.log_level)
            y.cli("route", "add", "sink.example", "[127.0.0.1]:%d" % sink_port)
            y.start()
            say("smtp-sink pid %d on 127.0.0.1:%d; yubind pid %d, submission 127.0.0.1:%d"
                % (sink.p.pid, sink_port, y.pid, y.submission))
            if not skip_pf:
                try:
                    pf = Postfix(os.path.join(tmp, "postfix"), sink_port)
                    say("postfix master pid %d, smtpd 127.0.0.1:%d (relay), 127.0.0.1:%d "
                        "(HOLD)" % (pf.pid, pf.port_in, pf.port_hold))
                except (RuntimeError, OSError, subprocess.TimeoutExpired) as e:
                    broke("postfix did not start: %s" % e)
                    pf = None
            else:
                say("Postfix half skipped: " + skip_pf)
            rates["yubin_e2e"] = phase_e2e("yubin", [y.pid], sink, y.submission, True, a)
            if pf:
                rates["postfix_e2e"] = phase_e2e("postfix", [pf.pid], sink, pf.port_in, False,
                                                 a)
            # back to the sink was set by phase_e2e's route; drain:
            rates["yubin_drain"] = phase_drain_yubin(y, sink, dead_port, a)
            if pf:
                rates["postfix_drain"] = phase_drain_postfix(pf, sink, a)
            y.stop()
            y = None
            if pf:
                pf.stop()
                pf = None
            sink.stop()
            sink = None
            ye, pe = rates.get("yubin_e2e"), rates.get("postfix_e2e")
            yd, pd = rates.get("yubin_drain"), rates.get("postfix_drain")
            print("   outbound into smtp-sink, %d x %d B, %d submitting sessions:"
                  % (a.messages, a.size, a.sessions))
            print("   %-8s %12s %12s %14s" % ("server", "e2e msgs/s", "drain msgs/s",
                                               "drain CPU ms/msg"))
            for lb, e, d in (("Yubin", ye, yd), ("Postfix", pe, pd)):
                if e is None and d is None:
                    continue
                print("   %-8s %12s %12s %14s" % (
                    lb, "%.0f" % e if e else "-", "%.0f" % d[0] if d else "-",
                    "%.3f" % (d[1] * 1000 / a.messages) if d else "-"))
            if ye and pe:
                say("e2e Yubin : Postfix = %.2f : 1" % (ye / pe))
            if yd and pd:
                say("drain Yubin : Postfix = %.2f : 1" % (yd[0] / pd[0]))
            result("outbound_ratio", e2e="%.2f" % (ye / pe) if ye and pe else "-",
                   drain="%.2f" % (yd[0] / pd[0]) if yd and pd else "-")
        if not a.skip_dead:
            print("   -- dead destination: %d x %d B --" % (a.dead_messages, a.dead_size),
                  flush=True)
            phase_dead(a, tmp)
    except (RuntimeError, OSError, subprocess.SubprocessError) as e:
        broke(str(e))
    finally:
        if y:
            y.stop()
        if pf:
            pf.stop()
        if sink:
            sink.stop()
        if own and os.environ.get("BENCH_KEEP") != "1":
            shutil.rmtree(tmp, ignore_errors=True)
        elif own:
            say("kept %s" % tmp)
    if BROKEN:
        print("outbound: %d problem(s): %s" % (len(BROKEN), "; ".join(BROKEN)), flush=True)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
