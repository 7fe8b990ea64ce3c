"""yubintest - helpers for the Yubin protocol tests.

A Yubind object owns one throw-away directory with a data directory (copied
from a template where the accounts were made once per session), a config
file and the daemon's log.  The small line clients below speak raw SMTP and
POP3 so that hostile tests control every byte; well-behaved tests may use
smtplib / poplib as well.

Nothing here sleeps to synchronise: waits poll a log file or a socket with a
deadline.
"""

import base64
import hashlib
import os
import pwd
import re
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import time

import pytest

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
BUILD = os.environ.get("YUBIN_BUILD", os.path.join(REPO, "build-asan"))
YUBIND = os.path.join(BUILD, "src", "yubind", "yubind")
YUBIN = os.path.join(BUILD, "src", "yubin", "yubin")

HOSTNAME = "mx.example.test"
DOMAINS = ["example.test", "example.org"]
USERS = {
    "demo@example.test": "demo-Pass-1",
    "alice@example.test": "alice-Pass-2",
    "bob@example.org": "bob-Pass-3",
    "postmaster@example.test": "pm-Pass-4",
}
APOP_SECRETS = {"alice@example.test": "alice-apop-Secret"}
POSTMASTER = "postmaster@example.test"

DEADLINE = 20.0          # start-up, shutdown, "eventually" waits
IO_TIMEOUT = 15.0        # one socket read
SANITIZER_MARKS = ("ERROR: AddressSanitizer", "runtime error:", "LeakSanitizer")
KEEP = os.environ.get("YUBIN_KEEP") == "1"


def running_as_root():
    return os.geteuid() == 0


def nobody_ids():
    pw = pwd.getpwnam("nobody")
    return pw.pw_uid, pw.pw_gid


def sanitizer_env():
    env = dict(os.environ)
    env.setdefault("ASAN_OPTIONS", "detect_leaks=1:abort_on_error=0")
    env.setdefault("UBSAN_OPTIONS", "print_stacktrace=1:halt_on_error=0")
    env.setdefault("LSAN_OPTIONS", "")
    return env


def require_binaries():
    for b in (YUBIND, YUBIN):
        if not os.access(b, os.X_OK):
            pytest.fail(f"{b} not built (set YUBIN_BUILD or build {BUILD})", pytrace=False)



def free_port_on(hosts):
    """A TCP port free on every address of hosts (checked by binding)."""
    for _ in range(100):
        s = socket.socket()
        s.bind((hosts[0], 0))
        port = s.getsockname()[1]
        s.close()
        ok = True
        for h in hosts:
            t = socket.socket()
            try:
                t.bind((h, port))
            except OSError:
                ok = False
            finally:
                t.close()
        if ok:
            return port
    raise RuntimeError("no port free on all of " + ", ".join(hosts))

def mkdtemp(prefix):
    d = tempfile.mkdtemp(prefix=prefix, dir="/tmp")
    os.chmod(d, 0o711)  # a daemon that dropped to nobody must reach data/
    return d


def chown_tree(path):
    """Give a data directory to nobody when the daemon will drop to it."""
    if not running_as_root():
        return
    uid, gid = nobody_ids()
    for root, dirs, files in os.walk(path):
        os.chown(root, uid, gid)
        for f in files:
            os.chown(os.path.join(root, f), uid, gid)


# ---------------------------------------------------------------- TLS ----

class Cert:
    """Self-signed certificate for HOSTNAME and 127.0.0.1 (made once)."""

    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="yubin-cert-", dir="/tmp")
        os.chmod(self.dir, 0o755)
        self.key = os.path.join(self.dir, "key.pem")
        self.cert = os.path.join(self.dir, "cert.pem")
        r = subprocess.run(
            ["openssl", "req", "-x509", "-newkey", "ec",
             "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
             "-keyout", self.key, "-out", self.cert, "-days", "3",
             "-subj", "/CN=" + HOSTNAME,
             "-addext", f"subjectAltName=DNS:{HOSTNAME},IP:127.0.0.1"],
            capture_output=True, text=True)
        if r.returncode != 0:
            pytest.fail("openssl req failed:\n" + r.stderr, pytrace=False)
        os.chmod(self.key, 0o644)   # test key: the unprivileged daemon reads it
        os.chmod(self.cert, 0o644)

    def client_context(self, verify=True):
        ctx = ssl.create_default_context(ssl.Purpose.SERVER_AUTH)
        if verify:
            ctx.load_verify_locations(self.cert)
        else:
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
        return ctx

    def cleanup(self):
        shutil.rmtree(self.dir, ignore_errors=True)


# ------------------------------------------------------------- config ----

def base_config(dirpath, cert):
    c = {
        "hostname": HOSTNAME,
        "data_dir": os.path.join(dirpath, "data"),
        "postmaster": POSTMASTER,
        "tls_cert": cert.cert,
        "tls_key": cert.key,
        "plaintext_auth": "loopback",
        "log_level": "info",
        "listen_smtp": "127.0.0.1:0",
        "listen_pop3": "127.0.0.1:0",
        "listen_pop3s": "127.0.0.1:0",
        "listen_imap": "127.0.0.1:0",
        "listen_imaps": "127.0.0.1:0",
        "listen_submission": "127.0.0.1:0",
        "listen_submissions": "127.0.0.1:0",
        "listen_https": "127.0.0.1:0",
        "listen_http": "127.0.0.1:0",
        # each daemon its own local submission socket (yubind makes run/)
        "local_submit_socket": os.path.join(dirpath, "run", "submit.sock"),
        "dns_trust_anchor": "",
    }
    if running_as_root():
        c["user"] = "nobody"
    return c


def write_config(path, values):
    """values: key -> value; None leaves the key out (its default applies)."""
    lines = ["# Yubin protocol test configuration", ""]
    for k, v in values.items():
        if v is None:
            continue
        lines.append(f"{k} = {v}")
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")


def run_cli(conf_path, *args, input=None, check=True):
    r = subprocess.run([YUBIN, "-c", conf_path, *args], input=input,
                       capture_output=True, text=True, env=sanitizer_env(),
                       timeout=60)
    if check and r.returncode != 0:
        pytest.fail(f"yubin {' '.join(args)} exited {r.returncode}:\n"
                    f"{r.stdout}{r.stderr}", pytrace=False)
    for mark in SANITIZER_MARKS:
        if mark in r.stderr:
            pytest.fail(f"yubin {' '.join(args)}: sanitizer report:\n{r.stderr}",
                        pytrace=False)
    return r


class Template:
    """A data directory with the test domains and accounts, made once per
    session with the CLI and copied for every daemon."""

    def __init__(self, cert):
        require_binaries()
        self.dir = mkdtemp("yubin-tmpl-")
        self.data = os.path.join(self.dir, "data")
        os.mkdir(self.data)
        chown_tree(self.data)       # the CLI, too, drops to the configured user
        self.conf = os.path.join(self.dir, "yubin.conf")
        write_config(self.conf, base_config(self.dir, cert))
        try:
            for d in DOMAINS:
                run_cli(self.conf, "domain", "add", d)
            for addr, pw in USERS.items():
                run_cli(self.conf, "user", "add", addr, input=pw + "\n")
            for addr, secret in APOP_SECRETS.items():
                run_cli(self.conf, "user", "apop", addr, input=secret + "\n")
        except BaseException:
            self.cleanup()
            raise

    def cleanup(self):
        shutil.rmtree(self.dir, ignore_errors=True)


# ------------------------------------------------------------- daemon ----

class Yubind:
    def __init__(self, template, cert, overrides=None):
        require_binaries()
        self.cert = cert
        self.dir = mkdtemp("yubin-test-")
        self.data = os.path.join(self.dir, "data")
        shutil.copytree(template.data, self.data)
        chown_tree(self.data)
        self.conf_path = os.path.join(self.dir, "yubin.conf")
        self.log_path = os.path.join(self.dir, "yubind.log")
        self.values = base_config(self.dir, cert)
        self.values.update(overrides or {})
        if self.values.get("tls_cert") is None and "listen_https" not in (overrides or {}):
            self.values["listen_https"] = None   # needs TLS, like the implicit-TLS ports
        write_config(self.conf_path, self.values)
        self.proc = None
        self.pid = None
        self.ports = {}
        self.start_offset = 0
        self.starts = 0

    # -- process control
    def start(self):
        self.start_offset = self._log_size()
        with open(self.log_path, "ab") as logf:
            self.proc = subprocess.Popen([YUBIND, "-c", self.conf_path],
                                         stdin=subprocess.DEVNULL, stdout=logf,
                                         stderr=logf,
                                         env={**sanitizer_env(), **getattr(self, "extra_env", {})})
        self.starts += 1
        deadline = time.monotonic() + DEADLINE
        while True:
            text = self.log(since=self.start_offset)
            m = re.search(r"ready pid=(\d+)[^\n]*\n", text)
            if m:
                break
            if self.proc.poll() is not None:
                rc = self.proc.returncode
                self.proc = None
                pytest.fail(f"yubind exited {rc} before 'ready':\n{text[-6000:]}",
                            pytrace=False)
            if time.monotonic() > deadline:
                self.proc.kill()
                self.proc.wait()
                self.proc = None
                pytest.fail(f"yubind not ready after {DEADLINE}s:\n{text[-6000:]}",
                            pytrace=False)
            time.sleep(0.02)
        self.pid = int(m.group(1))
        self.ports = {}
        for pm in re.finditer(r"listening proto=(\w+) addr=(\[[0-9a-fA-F.:]+\]|[0-9.]+):(\d+)\b",
                              text[:m.end()]):
            self.ports.setdefault(pm.group(1), int(pm.group(3)))
        return self

    def _log_size(self):
        try:
            return os.path.getsize(self.log_path)
        except FileNotFoundError:
            return 0

    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def signal(self, sig):
        self.proc.send_signal(sig)

    def wait_exit(self, timeout=DEADLINE):
        try:
            rc = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            self.proc = None
            pytest.fail(f"yubind did not exit within {timeout}s:\n{self.log()[-4000:]}",
                        pytrace=False)
        self.proc = None
        return rc

    def stop(self, check=True):
        """SIGTERM, wait; fail on a non-zero exit or a sanitizer report."""
        if self.proc is None:
            if check:
                self.check_sanitizers()
            return 0
        self.proc.send_signal(signal.SIGTERM)
        rc = self.wait_exit()
        if check:
            self.check_exit(rc)
        return rc

    def check_exit(self, rc):
        if rc != 0:
            pytest.fail(f"yubind exit status {rc} after SIGTERM (want 0):\n"
                        f"{self.log()[-6000:]}", pytrace=False)
        self.check_sanitizers()

    def check_sanitizers(self):
        text = self.log()
        for mark in SANITIZER_MARKS:
            if mark in text:
                i = text.index(mark)
                pytest.fail(f"sanitizer report in yubind log ({mark}):\n"
                            f"{text[max(0, i - 2000):i + 6000]}", pytrace=False)

    def kill9(self):
        self.proc.kill()
        self.proc.wait()
        self.proc = None

    def restart(self):
        self.stop()
        return self.start()

    def cleanup(self):
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait()
            self.proc = None
        if not KEEP:
            shutil.rmtree(self.dir, ignore_errors=True)

    # -- logs
    def log(self, since=0):
        try:
            with open(self.log_path, "rb") as f:
                f.seek(since)
                return f.read().decode("utf-8", "replace")
        except FileNotFoundError:
            return ""

    def log_mark(self):
        return self._log_size()

    def wait_log(self, pattern, since=0, timeout=DEADLINE):
        """Wait for a regex in the log (after offset since); return the match."""
        rx = re.compile(pattern)
        deadline = time.monotonic() + timeout
        while True:
            m = rx.search(self.log(since))
            if m:
                return m
            if time.monotonic() > deadline:
                pytest.fail(f"no log line matching {pattern!r} within {timeout}s:\n"
                            f"{self.log(since)[-4000:]}", pytrace=False)
            time.sleep(0.02)

    # -- CLI on this instance
    def cli(self, *args, input=None, check=True):
        r = run_cli(self.conf_path, *args, input=input, check=check)
        chown_tree(self.data)
        return r

    # -- ports and clients
    @property
    def smtp_port(self):
        return self.ports["smtp"]

    @property
    def pop3_port(self):
        return self.ports["pop3"]

    @property
    def pop3s_port(self):
        return self.ports["pop3s"]

    @property
    def imap_port(self):
        return self.ports["imap"]

    @property
    def imaps_port(self):
        return self.ports["imaps"]

    @property
    def https_port(self):
        return self.ports["https"]

    @property
    def http_port(self):
        return self.ports["http"]

    def imap(self, user=None, password=None):
        """Raw IMAP client, greeted and (with user) logged in."""
        c = ImapClient(self.imap_port)
        c.greeting = c.readline()
        assert c.greeting.startswith(b"* OK "), c.greeting
        if user:
            c.login(user, password if password is not None else USERS[user])
        return c

    def smtp(self, ehlo="client.example.net"):
        """Raw SMTP client, greeted and (unless ehlo is None) EHLO done."""
        c = SmtpClient(self.smtp_port)
        expect(c.reply(), 220)
        if ehlo:
            c.ehlo_reply = c.cmd("EHLO " + ehlo)
            expect(c.ehlo_reply, 250)
        return c

    def pop3(self, user=None, password=None):
        c = Pop3Client(self.pop3_port)
        c.greet()
        if user:
            c.login(user, password if password is not None else USERS[user])
        return c

    def send(self, sender, rcpts, data, **kw):
        return send_mail(self.smtp_port, sender, rcpts, data, **kw)

    def fetch(self, user, password=None):
        """All messages of a mailbox, exact bytes, in POP3 order."""
        c = self.pop3(user, password)
        try:
            return [c.retr(i) for i in range(1, c.stat()[0] + 1)]
        finally:
            c.quit()


# ------------------------------------------------------- line clients ----

class LineClient:
    MAX_LINE = 1 << 20

    def __init__(self, port, host="127.0.0.1", timeout=IO_TIMEOUT, sock=None):
        self.sock = sock or socket.create_connection((host, port), timeout=timeout)
        self.sock.settimeout(timeout)
        self.buf = b""

    def send(self, data):
        if isinstance(data, str):
            data = data.encode("utf-8")
        self.sock.sendall(data)

    def _fill(self):
        d = self.sock.recv(65536)
        if not d:
            raise EOFError("server closed the connection")
        self.buf += d

    def readline(self):
        """One line without its CRLF (bytes)."""
        while True:
            i = self.buf.find(b"\r\n")
            if i >= 0:
                line, self.buf = self.buf[:i], self.buf[i + 2:]
                return line
            if len(self.buf) > self.MAX_LINE:
                raise AssertionError("reply line too long")
            self._fill()

    def read_exact(self, n):
        while len(self.buf) < n:
            self._fill()
        d, self.buf = self.buf[:n], self.buf[n:]
        return d

    def closed_by_peer(self, timeout=IO_TIMEOUT):
        """True when the server closes the connection within timeout (any
        bytes still arriving are collected into buf)."""
        self.sock.settimeout(timeout)
        try:
            while True:
                d = self.sock.recv(65536)
                if not d:
                    return True
                self.buf += d
        except (ConnectionResetError, BrokenPipeError):
            return True
        except (socket.timeout, TimeoutError):
            return False
        except ssl.SSLError:
            return True

    def read_until_close(self, timeout=IO_TIMEOUT):
        """Everything the server sends until it closes (asserts it does)."""
        assert self.closed_by_peer(timeout), "server did not close the connection"
        d, self.buf = self.buf, b""
        return d

    def wrap_tls(self, ctx, server_hostname=HOSTNAME):
        assert self.buf == b"", f"bytes after the TLS go-ahead: {self.buf!r}"
        self.sock = ctx.wrap_socket(self.sock, server_hostname=server_hostname)

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


class Reply:
    def __init__(self, code, lines):
        self.code = code
        self.lines = lines                 # text after "NNN-" / "NNN "

    @property
    def text(self):
        return "\n".join(self.lines)

    @property
    def enh(self):
        m = re.match(r"([245]\.\d{1,3}\.\d{1,3})(\s|$)", self.lines[0]) if self.lines else None
        return m.group(1) if m else None

    def __repr__(self):
        return "Reply(" + " | ".join(f"{self.code} {l}" for l in self.lines) + ")"


def expect(r, code, enh=None):
    assert r.code == code, f"want {code} {enh or ''}, got {r!r}"
    if enh is not None:
        assert r.enh == enh, f"want {code} {enh}, got {r!r}"
    return r


class SmtpClient(LineClient):
    def __init__(self, port, **kw):
        super().__init__(port, **kw)
        self.ehlo_reply = None

    def reply(self):
        lines = []
        while True:
            raw = self.readline()
            line = raw.decode("utf-8", "replace")
            assert re.match(r"^\d{3}([ -]|$)", line), f"malformed SMTP reply line {raw!r}"
            if lines:
                assert int(line[:3]) == code, f"code changed inside a reply: {raw!r}"
            code = int(line[:3])
            lines.append(line[4:])
            if len(line) == 3 or line[3] == " ":
                return Reply(code, lines)

    def cmd(self, line):
        self.send(line + "\r\n")
        return self.reply()

    def ehlo_keywords(self, r=None):
        r = r or self.ehlo_reply
        return {l.split()[0].upper(): l.split()[1:] for l in r.lines[1:] if l.split()}

    def starttls(self, ctx):
        expect(self.cmd("STARTTLS"), 220, "2.0.0")
        self.wrap_tls(ctx)

    def mail_tx(self, sender, rcpts, mail_params=""):
        expect(self.cmd(f"MAIL FROM:<{sender}>{mail_params}"), 250, "2.1.0")
        for r in rcpts:
            expect(self.cmd(f"RCPT TO:<{r}>"), 250, "2.1.5")

    def data(self, data):
        """DATA with dot-stuffing; returns the final reply."""
        expect(self.cmd("DATA"), 354)
        self.send(dotstuff(data) + b".\r\n")
        return self.reply()

    def quit(self):
        try:
            expect(self.cmd("QUIT"), 221, "2.0.0")
        finally:
            self.close()


def queued_id(r):
    expect(r, 250, "2.0.0")
    m = re.search(r"queued as (\S+)", r.text)
    assert m, f"no 'queued as QID' in {r!r}"
    return m.group(1)


def crlf(data):
    """bytes with every line ending CRLF (and a final CRLF)."""
    if isinstance(data, str):
        data = data.encode("utf-8")
    data = data.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
    if not data.endswith(b"\r\n"):
        data += b"\r\n"
    return data


def dotstuff(data):
    data = crlf(data)
    out = []
    for line in data.split(b"\r\n")[:-1]:
        out.append((b"." + line if line.startswith(b".") else line) + b"\r\n")
    return b"".join(out)


def send_mail(port, sender, rcpts, data, ehlo="client.example.net", mail_params=""):
    """One message over raw SMTP; returns the queue id."""
    c = SmtpClient(port)
    try:
        expect(c.reply(), 220)
        expect(c.cmd("EHLO " + ehlo), 250)
        c.mail_tx(sender, rcpts, mail_params)
        qid = queued_id(c.data(data))
        c.quit()
        return qid
    finally:
        c.close()


def make_message(subject="test", body="Hello.\n", sender="sender@example.net",
                 to="demo@example.test", extra=""):
    msgid = f"<{time.monotonic_ns()}.{os.getpid()}.{os.urandom(4).hex()}@client.example.net>"
    return crlf(f"From: {sender}\nTo: {to}\nSubject: {subject}\n"
                f"Message-ID: {msgid}\n{extra}\n{body}")


def split_stored(msg):
    """(Return-Path line, Received header (folded, with CRLFs), data)."""
    assert msg.startswith(b"Return-Path: "), f"stored message starts {msg[:80]!r}"
    first, rest = msg.split(b"\r\n", 1)
    assert rest.startswith(b"Received: "), f"no Received after Return-Path: {rest[:80]!r}"
    pos = rest.index(b"\r\n") + 2
    while rest[pos:pos + 1] in (b" ", b"\t"):
        pos = rest.index(b"\r\n", pos) + 2
    return first, rest[:pos], rest[pos:]


def unfold(header):
    """A header as one line: folds and whitespace runs become one space."""
    if isinstance(header, bytes):
        header = header.decode("utf-8", "replace")
    return re.sub(r"\s+", " ", header).strip()


def stored_data(msg):
    return split_stored(msg)[2]


# -------------------------------------------------------------- POP3 ----

class Pop3Error(AssertionError):
    pass


class Pop3Client(LineClient):
    def __init__(self, port, **kw):
        super().__init__(port, **kw)
        self.timestamp = None
        self.greeting = None

    def greet(self):
        self.greeting = self.status()
        assert self.greeting.startswith("+OK"), self.greeting
        m = re.search(r"<[^<>\s]+>", self.greeting)
        self.timestamp = m.group(0) if m else None
        return self.greeting

    def status(self):
        return self.readline().decode("utf-8", "replace")

    def cmd(self, line):
        self.send(line + "\r\n")
        return self.status()

    def ok(self, line):
        r = self.cmd(line)
        if not r.startswith("+OK"):
            raise Pop3Error(f"{line.split()[0]}: {r}")
        return r

    def multi(self):
        """Lines of a multi-line response (dot-unstuffed, bytes, no CRLF)."""
        lines = []
        while True:
            line = self.readline()
            if line == b".":
                return lines
            if line.startswith(b"."):
                line = line[1:]
            lines.append(line)

    def login(self, user, password):
        self.ok("USER " + user)
        self.ok("PASS " + password)

    def stat(self):
        r = self.ok("STAT").split()
        return int(r[1]), int(r[2])

    def list(self):
        self.ok("LIST")
        return {int(a): int(b) for a, b in (l.split() for l in self.multi())}

    def uidl(self):
        self.ok("UIDL")
        return {int(a): b.decode() for a, b in (l.split() for l in self.multi())}

    def capa(self):
        self.ok("CAPA")
        return [l.decode() for l in self.multi()]

    def retr(self, n):
        self.ok(f"RETR {n}")
        return b"".join(l + b"\r\n" for l in self.multi())

    def top(self, n, lines):
        self.ok(f"TOP {n} {lines}")
        return b"".join(l + b"\r\n" for l in self.multi())

    def stls(self, ctx):
        self.ok("STLS")
        self.wrap_tls(ctx)

    def quit(self):
        try:
            r = self.cmd("QUIT")
            assert r.startswith("+OK"), r
        finally:
            self.close()


def apop_digest(timestamp, secret):
    return hashlib.md5((timestamp + secret).encode()).hexdigest()


def sasl_plain(user, password, authz=""):
    return base64.b64encode(f"{authz}\0{user}\0{password}".encode()).decode()


def wait_until(pred, timeout=DEADLINE, what="condition"):
    deadline = time.monotonic() + timeout
    while True:
        v = pred()
        if v:
            return v
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}", pytrace=False)
        time.sleep(0.02)


class ImapClient(LineClient):
    """Tagged IMAP commands; every response line is kept raw (literals
    inlined) so that tests can check the exact grammar."""

    def __init__(self, port, **kw):
        super().__init__(port, **kw)
        self.n = 0

    def next_tag(self):
        self.n += 1
        return "T%d" % self.n

    def read_response_line(self):
        """One response line with its literals joined in: bytes."""
        line = self.readline()
        while True:
            m = re.search(rb"~?\{(\d+)\}\r?\n?$", line)
            if not m or not line.endswith(b"}"):
                break
            data = self.read_exact(int(m.group(1)))
            line = line + b"\r\n" + data + self.readline()
        return line

    def cmd(self, text, literals=()):
        """Send a command (with synchronising literals) and collect the
        untagged lines and the tagged one: (status, tagged_line, untagged)."""
        tag = self.next_tag()
        parts = text.split("\0") if literals else [text]
        untagged = []
        self.send(tag.encode() + b" " + (parts[0].encode() if isinstance(parts[0], str) else parts[0]))
        for i, lit in enumerate(literals):
            self.send(b"{%d}\r\n" % len(lit))
            while True:
                line = self.readline()
                if line.startswith(b"+"):
                    break
                if line.startswith(tag.encode() + b" "):
                    return line.split(b" ")[1].decode(), line, untagged
                untagged.append(line)
            self.send(lit + (parts[i + 1].encode() if i + 1 < len(parts) else b""))
        self.send(b"\r\n")
        while True:
            line = self.read_response_line()
            if line.startswith(tag.encode() + b" "):
                return line.split(b" ")[1].decode(), line, untagged
            untagged.append(line)

    def ok(self, text, literals=()):
        st, line, untagged = self.cmd(text, literals)
        assert st == "OK", (text, line, untagged)
        return untagged, line

    def login(self, user, password):
        self.ok('LOGIN "%s" "%s"' % (user, password))
