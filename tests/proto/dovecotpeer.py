"""dovecotpeer - a real Dovecot (Debian's dovecot-core, -imapd, -pop3d) for
the mail client's interop tests.

One Dovecot instance per test, in its own directory, run in the foreground
with `dovecot -F -c DIR/dovecot.conf` in a new session: /etc/dovecot and a
system instance are never touched (own base_dir, state_dir, instance_name,
log_path; nothing is read from /etc/dovecot).

The instance
  - listens on 127.0.0.1 only, on four ports chosen free at run time:
    imap (STARTTLS offered), imaps, pop3 (STLS offered), pop3s;
  - has a certificate for mail.example.test and IP 127.0.0.1 signed by a
    throw-away CA (tests/proto/pki.py): clients verify with `cafile`;
  - knows the users of a passwd-file with {PLAIN} passwords (so that the
    non-plaintext mechanism APOP works: it needs the plaintext password),
    auth_mechanisms "plain login apop" by default;
  - keeps mail in Maildir under DIR/mail/USER/Maildir, owned by nobody;
  - logs to DIR/dovecot.log (Dovecot's own log_path; stdout and stderr of
    the master go to DIR/dovecot.out).

Nothing here sleeps to synchronise: start() waits for every listener to
greet, with a deadline; stop() sends SIGTERM to the master and waits for its
whole process group (SIGKILL on a deadline).  YUBIN_KEEP=1 keeps DIR.

Fixtures (import them into a test module: `from dovecotpeer import dovecot,
make_dovecot`):
    dovecot         a started Dovecot with USERS
    make_dovecot    factory: make_dovecot(start=True, **Dovecot kwargs)
A Dovecot that fails to start fails the test with its log in the message.
"""

import collections
import grp
import imaplib
import os
import poplib
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

import pki
import yubintest as yt

DOVECOT = shutil.which("dovecot") or "/usr/sbin/dovecot"
DOVEADM = shutil.which("doveadm") or "/usr/bin/doveadm"
DH_PEM = "/usr/share/dovecot/dh.pem"
DEADLINE = 20.0
KEEP = os.environ.get("YUBIN_KEEP") == "1"
HOSTNAME = "mail.example.test"

# user -> plaintext password
USERS = {
    "alice@example.test": "pass",
    "bob@example.test": "bob-Dove-2",
}

Message = collections.namedtuple("Message", "uid flags data")
"""One message as Dovecot has it: uid (int), flags (frozenset of str, e.g.
{"\\Seen"}, \\Recent left out), data (bytes as IMAP serves them: CRLF)."""


def issue_leaf(ca, names, ips=("127.0.0.1",)):
    """A server certificate for DNS names and IP addresses signed by ca (a
    pki.CA; pki.CA.leaf makes DNS names only, and the client checks an
    address it connects to against the iPAddress names)."""
    ca.n += 1
    base = os.path.join(ca.dir, f"dovecot-leaf{ca.n}")
    key, csr, cert, ext = base + ".key", base + ".csr", base + ".pem", base + ".ext"
    with open(ext, "w") as f:
        f.write("subjectAltName=" + ",".join(["DNS:" + n for n in names] +
                                             ["IP:" + a for a in ips]) + "\n"
                "basicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n")
    pki._run(["req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
              "-nodes", "-keyout", key, "-out", csr, "-subj", "/CN=" + names[0]])
    pki._run(["x509", "-req", "-in", csr, "-CA", ca.cert, "-CAkey", ca.key,
              "-CAcreateserial", "-out", cert, "-days", "2", "-extfile", ext])
    os.chmod(key, 0o600)          # read by the master, as root
    os.chmod(cert, 0o644)
    return pki.Leaf(cert, key)


def _group_alive(pgid):
    """Processes (not zombies) left in process group pgid."""
    left = []
    for p in os.listdir("/proc"):
        if not p.isdigit():
            continue
        try:
            with open(f"/proc/{p}/stat") as f:
                st = f.read()
        except OSError:
            continue
        fields = st[st.rindex(")") + 2:].split()
        if int(fields[2]) == pgid and fields[0] != "Z":
            left.append(int(p))
    return left


class Dovecot:
    def __init__(self, users=None, ca=None, auth_mechanisms="plain login apop",
                 disable_plaintext_auth=None, extra_conf=""):
        """users: {user: plaintext password} (default USERS); ca: a pki.CA
        to sign the certificate with (default: one of its own, removed at
        cleanup); disable_plaintext_auth: None keeps Dovecot's default
        (yes, but connections from 127.0.0.1 to 127.0.0.1 count as secured,
        so PASS and LOGIN in clear work on the loopback all the same);
        extra_conf: text appended to dovecot.conf."""
        if not (os.access(DOVECOT, os.X_OK) and os.access(DOVEADM, os.X_OK)):
            pytest.fail("dovecot is not installed (make test installs dovecot-imapd and "
                        "dovecot-pop3d: scripts/deps.sh)", pytrace=False)
        if os.geteuid() != 0:
            pytest.fail("a sandboxed Dovecot needs root (it binds as root, then runs the "
                        "mail processes as nobody); make test runs as root", pytrace=False)
        self.users = dict(users if users is not None else USERS)
        self.dir = tempfile.mkdtemp(prefix="yubin-dovecot-", dir="/tmp")
        os.chmod(self.dir, 0o755)   # dovenull and nobody pass through to run/ and mail/
        self.conf_path = os.path.join(self.dir, "dovecot.conf")
        self.log_path = os.path.join(self.dir, "dovecot.log")
        self.out_path = os.path.join(self.dir, "dovecot.out")
        self.base_dir = os.path.join(self.dir, "run")
        self.state_dir = os.path.join(self.dir, "state")
        self.mail = os.path.join(self.dir, "mail")
        self.passwd = os.path.join(self.dir, "users")
        nobody = pwd.getpwnam("nobody")
        self.uid, self.gid = nobody.pw_uid, nobody.pw_gid
        os.mkdir(self.state_dir, 0o700)
        os.mkdir(self.mail, 0o700)
        os.chown(self.mail, self.uid, self.gid)
        self.own_ca = ca is None
        self.ca = ca or pki.CA("Yubin Dovecot Test CA")
        self.cafile = self.ca.cert
        self.leaf = issue_leaf(self.ca, [HOSTNAME])
        self.auth_mechanisms = auth_mechanisms
        self.disable_plaintext_auth = disable_plaintext_auth
        self.extra_conf = extra_conf
        self.instance = "yubintest-" + os.path.basename(self.dir)
        self.proc = None
        self.ports = {}
        with open(self.passwd, "w") as f:
            for u, pw in self.users.items():
                assert ":" not in u + pw and "\n" not in u + pw, (u, pw)
                f.write(f"{u}:{{PLAIN}}{pw}:{self.uid}:{self.gid}::{self.home(u)}::\n")
        # read by the auth process, which runs as the dovecot user
        os.chown(self.passwd, 0, grp.getgrnam("dovecot").gr_gid)
        os.chmod(self.passwd, 0o640)

    def home(self, user):
        return os.path.join(self.mail, user)

    def maildir(self, user):
        return os.path.join(self.home(user), "Maildir")

    # -- configuration
    def _write_conf(self):
        p = self.ports
        lines = [
            "# generated by tests/proto/dovecotpeer.py -- sandboxed, loopback only",
            f"instance_name = {self.instance}",
            f"base_dir = {self.base_dir}",
            f"state_dir = {self.state_dir}",
            f"log_path = {self.log_path}",
            "protocols = imap pop3",
            "listen = 127.0.0.1",
            "auth_verbose = yes",
            # a refused password is answered at once (default: after 2 s), and
            # no penalty delays the next login from 127.0.0.1 (anvil's
            # per-IP auth penalty: 2, 4, 8, 15 s), see the service below
            "auth_failure_delay = 0",
            "service anvil {", "  unix_listener anvil-auth-penalty {", "    mode = 0",
            "  }", "}",
            f"first_valid_uid = {self.uid}",
            f"last_valid_uid = {self.uid}",
            f"first_valid_gid = {self.gid}",
            f"last_valid_gid = {self.gid}",
            "mail_location = maildir:~/Maildir",
            # IMAP names use "/" (Maildir++ keeps "." on disk: Lists/dev is .Lists.dev)
            "namespace inbox {", "  inbox = yes", "  separator = /", "}",
            "ssl = yes",
            f"ssl_cert = <{self.leaf.cert}",
            f"ssl_key = <{self.leaf.key}",
            f"auth_mechanisms = {self.auth_mechanisms}",
            "passdb {", "  driver = passwd-file", f"  args = {self.passwd}", "}",
            "userdb {", "  driver = passwd-file", f"  args = {self.passwd}", "}",
            "service imap-login {",
            f"  inet_listener imap {{\n    address = 127.0.0.1\n    port = {p['imap']}\n  }}",
            f"  inet_listener imaps {{\n    address = 127.0.0.1\n    port = {p['imaps']}\n"
            "    ssl = yes\n  }",
            "}",
            "service pop3-login {",
            f"  inet_listener pop3 {{\n    address = 127.0.0.1\n    port = {p['pop3']}\n  }}",
            f"  inet_listener pop3s {{\n    address = 127.0.0.1\n    port = {p['pop3s']}\n"
            "    ssl = yes\n  }",
            "}",
        ]
        if os.path.exists(DH_PEM):
            lines.append(f"ssl_dh = <{DH_PEM}")
        if self.disable_plaintext_auth is not None:
            lines.append("disable_plaintext_auth = " +
                         ("yes" if self.disable_plaintext_auth else "no"))
        if self.extra_conf:
            lines.append(self.extra_conf)
        with open(self.conf_path, "w") as f:
            f.write("\n".join(lines) + "\n")

    # -- process control
    def start(self):
        """Start the master; return once all four listeners greet.  A port
        taken between choosing and binding it: new ports (three tries)."""
        for attempt in range(3):
            ports = set()
            for _ in range(100):
                ports.add(yt.free_port_on(["127.0.0.1"]))
                if len(ports) == 4:
                    break
            else:
                self._fail("no four distinct free ports on 127.0.0.1")
            self.ports = dict(zip(("imap", "imaps", "pop3", "pop3s"), sorted(ports)))
            self._write_conf()
            r = subprocess.run(["doveconf", "-c", self.conf_path, "-n"], capture_output=True,
                               text=True, timeout=60, stdin=subprocess.DEVNULL)
            if r.returncode != 0:
                self._fail(f"doveconf -c {self.conf_path} -n exited {r.returncode}:\n"
                           f"{r.stderr}")
            mark = self.log_mark()
            with open(self.out_path, "ab") as out:
                self.proc = subprocess.Popen([DOVECOT, "-F", "-c", self.conf_path],
                                             stdin=subprocess.DEVNULL, stdout=out,
                                             stderr=out, start_new_session=True)
            if self._wait_listeners(mark):
                return self
            # bind failed: the master exited; anything else failed the test
            if attempt == 2:
                self._fail("dovecot could not bind its ports three times")
        return self

    def _wait_listeners(self, mark):
        """True once every listener greets; False when the master exited
        because a port was taken; anything else fails the test."""
        deadline = time.monotonic() + DEADLINE
        want = {"imap": b"* OK", "imaps": b"* OK", "pop3": b"+OK", "pop3s": b"+OK"}
        ctx = self.client_context()
        pending = dict(want)
        while pending:
            for name, greeting in list(pending.items()):
                if self.proc.poll() is not None:
                    rc = self.proc.returncode
                    self.proc = None
                    if "Address already in use" in self.log(mark) + self._out():
                        return False
                    self._fail(f"dovecot exited {rc} at start-up")
                if self._greets(self.ports[name], greeting,
                                ctx if name.endswith("s") else None):
                    del pending[name]
            if pending and time.monotonic() > deadline:
                self._fail(f"dovecot does not greet on {sorted(pending)} after {DEADLINE}s")
            if pending:
                time.sleep(0.02)
        return True

    @staticmethod
    def _greets(port, greeting, ctx):
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=2) as s:
                s.settimeout(2)
                if ctx is not None:
                    s = ctx.wrap_socket(s, server_hostname=HOSTNAME)
                data = b""
                while b"\r\n" not in data:
                    d = s.recv(512)
                    if not d:
                        return False
                    data += d
                s.sendall(b"a LOGOUT\r\n" if greeting.startswith(b"*") else b"QUIT\r\n")
                return data.startswith(greeting)
        except (OSError, ssl.SSLError):
            return False

    def _out(self):
        try:
            with open(self.out_path, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except FileNotFoundError:
            return ""

    def _fail(self, why):
        if self.proc is not None:
            self.stop()
        pytest.fail(f"{why}\n---- {self.out_path} ----\n{self._out()[-3000:]}"
                    f"\n---- {self.log_path} ----\n{self.log()[-5000:]}", pytrace=False)

    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def stop(self):
        """SIGTERM to the master, then wait until its whole process group
        (the session it leads) is gone; SIGKILL to the group on a deadline."""
        if self.proc is None:
            return
        proc, self.proc = self.proc, None
        pgid = proc.pid
        try:
            proc.send_signal(signal.SIGTERM)
        except ProcessLookupError:
            pass
        deadline = time.monotonic() + DEADLINE
        while True:
            proc.poll()
            if not _group_alive(pgid):
                break
            if time.monotonic() > deadline:
                try:
                    os.killpg(pgid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                break
            time.sleep(0.02)
        try:
            proc.wait(timeout=DEADLINE)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()

    def cleanup(self):
        try:
            self.stop()
        finally:
            if not KEEP:
                shutil.rmtree(self.dir, ignore_errors=True)
                if self.own_ca:
                    self.ca.cleanup()

    # -- log
    def log(self, since=0):
        try:
            with open(self.log_path, "rb") as f:
                f.seek(since)
                return f.read().decode("utf-8", "replace")
        except FileNotFoundError:
            return ""

    def log_mark(self):
        try:
            return os.path.getsize(self.log_path)
        except FileNotFoundError:
            return 0

    def wait_log(self, pattern, since=0, timeout=DEADLINE):
        rx = re.compile(pattern)
        deadline = time.monotonic() + timeout
        while True:
            m = rx.search(self.log(since))
            if m:
                return m
            if time.monotonic() > deadline:
                pytest.fail(f"no dovecot log line matching {pattern!r} within {timeout}s:\n"
                            f"{self.log(since)[-4000:]}", pytrace=False)
            time.sleep(0.02)

    # -- doveadm on this instance
    def doveadm(self, *args, input=None, check=True):
        """doveadm -c CONF ARGS (bytes in and out)."""
        r = subprocess.run([DOVEADM, "-c", self.conf_path, *args], input=input,
                           capture_output=True, timeout=60,
                           stdin=None if input is not None else subprocess.DEVNULL)
        if check and r.returncode != 0:
            pytest.fail(f"doveadm {' '.join(args)} exited {r.returncode}:\n"
                        f"{r.stderr.decode('utf-8', 'replace')}\n"
                        f"---- {self.log_path} ----\n{self.log()[-3000:]}", pytrace=False)
        return r

    def _user(self, user):
        if user not in self.users:
            raise KeyError(f"{user} is not a user of this Dovecot ({sorted(self.users)})")
        return user

    def create_folder(self, user, name):
        """Create and subscribe the mailbox name, as IMAP names it (hierarchy
        separator "/": "Lists/dev")."""
        self.doveadm("mailbox", "create", "-s", "-u", self._user(user), name)

    def uidnext(self, user, folder="INBOX"):
        r = self.doveadm("-f", "flow", "mailbox", "status", "-u", self._user(user),
                         "uidnext", folder)
        m = re.search(rb"uidnext=(\d+)", r.stdout)
        assert m, r.stdout
        return int(m.group(1))

    def deliver(self, user, raw, folder="INBOX", flags=""):
        """Store raw (bytes, LF or CRLF line ends) in user's folder (which
        must exist; INBOX always does) with `doveadm save`: when this
        returns the message is in the Maildir and Dovecot's index.  flags:
        IMAP flags to set, e.g. "\\Seen \\Flagged".  Returns its UID."""
        self._user(user)
        uid = self.uidnext(user, folder)
        self.doveadm("save", "-u", user, "-m", folder, input=raw)
        if self.uidnext(user, folder) != uid + 1:
            pytest.fail(f"doveadm save to {user} {folder}: uidnext did not move past {uid}",
                        pytrace=False)
        if flags:
            self.doveadm("flags", "add", "-u", user, flags, "mailbox", folder, "uid", str(uid))
        return uid

    def messages(self, user, folder="INBOX"):
        """What Dovecot has in user's folder, as served over IMAPS (EXAMINE,
        BODY.PEEK[]: nothing is changed): a list of Message, by UID."""
        c = self.imap(user)
        try:
            typ, data = c.select(_quote(folder), readonly=True)
            assert typ == "OK", data
            typ, data = c.uid("FETCH", "1:*", "(UID FLAGS BODY.PEEK[])")
            assert typ == "OK", data
            out = []
            for item in data:
                if not isinstance(item, tuple):
                    continue
                head, body = item
                uid = int(re.search(rb"UID (\d+)", head).group(1))
                fl = re.search(rb"FLAGS \(([^)]*)\)", head).group(1).decode()
                out.append(Message(uid, frozenset(f for f in fl.split() if f != "\\Recent"),
                                   body))
            # an empty mailbox: FETCH 1:* returns nothing (or [None])
            return sorted(out)
        finally:
            try:
                c.logout()
            except (imaplib.IMAP4.error, OSError):
                pass

    # -- Python clients (TLS verified against the CA)
    def client_context(self):
        """Verifies the peer's certificate with the test CA (hostname or
        address checked: the certificate has 127.0.0.1 and HOSTNAME)."""
        return ssl.create_default_context(cafile=self.cafile)

    def imap(self, user=None, password=None):
        """imaplib over IMAPS, logged in when user is given."""
        c = imaplib.IMAP4_SSL("127.0.0.1", self.ports["imaps"], ssl_context=self.client_context(),
                              timeout=yt.IO_TIMEOUT)
        if user:
            c.login(user, password if password is not None else self.users[user])
        return c

    def pop3(self, user=None, password=None):
        """poplib over POP3S, logged in (USER/PASS) when user is given."""
        p = poplib.POP3_SSL("127.0.0.1", self.ports["pop3s"], timeout=yt.IO_TIMEOUT,
                            context=self.client_context())
        if user:
            p.user(user)
            p.pass_(password if password is not None else self.users[user])
        return p


def _quote(name):
    return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'


# ------------------------------------------------------------ fixtures ----

@pytest.fixture
def make_dovecot(request):
    made = []

    def make(start=True, **kw):
        d = Dovecot(**kw)
        made.append(d)
        if start:
            d.start()
        return d

    yield make
    rep = getattr(request.node, "rep_call", None)
    failed = rep is not None and rep.failed
    try:
        for d in made:
            d.stop()
    finally:
        for d in made:
            if failed:
                print(f"\n---- dovecot log {d.log_path} ----\n{d.log()[-8000:]}")
            d.cleanup()


@pytest.fixture
def dovecot(make_dovecot):
    return make_dovecot()
