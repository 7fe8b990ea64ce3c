"""postfixpeer - a real Postfix (Debian's postfix package) for interop tests.

One Postfix instance per test, in its own directory, run with
`postfix -c DIR`: /etc/postfix and the system instance are never touched
and nothing is shared with another Postfix on the machine (own queue, data
directory, log file, listener on a port chosen free at run time).

The instance
  - listens for SMTP on ADDR:PORT only (a master.cf listener with an
    explicit address: inet_interfaces must name configured interface
    addresses, and only 127.0.0.1 is configured on lo; the rest of
    127.0.0.0/8 is reachable all the same);
  - relays the domains given in `relay` to [host]:port (transport_maps),
    never looking anything up in the DNS;
  - delivers the virtual mailbox domain `vdomain` to Maildirs under its
    directory, as the user nobody; the mailboxes are those in `mailboxes`,
    any other local part is rejected at RCPT with 550 5.1.1;
  - logs to DIR/postfix.log (maillog_file, through postlogd);
  - with tls=(cert, key) offers STARTTLS and logs the handshakes.

Nothing here sleeps to synchronise: waits poll the log, the Maildir or the
socket with a deadline.  stop() is `postfix -c DIR stop`, then waits for the
master's whole process group to be gone (SIGKILL on a deadline).
"""

import grp
import os
import pty
import pwd
import re
import select
import shutil
import signal
import socket
import subprocess
import tempfile
import time

import pytest

import yubintest as yt

POSTFIX = shutil.which("postfix") or "/usr/sbin/postfix"
DEADLINE = 20.0
KEEP = os.environ.get("YUBIN_KEEP") == "1"

MASTER_CF_SERVICES = """\
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
virtual   unix  -       n       n       -       -       virtual
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
postlog   unix-dgram n  -       n       -       1       postlogd
"""


free_port_on = yt.free_port_on


def run_tty(argv, timeout=60):
    """Run a Postfix command with a pseudo-terminal as stdout and stderr:
    Postfix commands print their messages only to a terminal (otherwise
    to syslog, which may not exist).  Returns (returncode, output)."""
    master, slave = pty.openpty()
    try:
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=slave, stderr=slave,
                                close_fds=True, start_new_session=True)
    finally:
        os.close(slave)
    out = b""
    deadline = time.monotonic() + timeout
    try:
        while True:
            # the pty reports EIO once the command and all its children have
            # closed it; a daemon that keeps it open: stop when the command exits
            r, _, _ = select.select([master], [], [], 0.2)
            if r:
                try:
                    d = os.read(master, 65536)
                except OSError:
                    break
                if not d:
                    break
                out += d
            elif proc.poll() is not None:
                break
            if time.monotonic() > deadline:
                proc.kill()
                break
    finally:
        os.close(master)
    try:
        rc = proc.wait(timeout=max(1.0, deadline - time.monotonic()))
    except subprocess.TimeoutExpired:
        proc.kill()
        rc = proc.wait()
    return rc, out.decode("utf-8", "replace").replace("\r\n", "\n")


class Postfix:
    def __init__(self, addr, hostname="pf.example.test", relay=None, vdomain=None,
                 mailboxes=(), tls=None, main_extra=None, port=None):
        """relay: {domain: "[host]:port"}; vdomain/mailboxes: the virtual
        mailbox domain and its local parts; tls: (cert, key) for smtpd."""
        if not os.access(POSTFIX, os.X_OK):
            pytest.fail("postfix is not installed (make test installs it: scripts/deps.sh)",
                        pytrace=False)
        if os.geteuid() != 0:
            pytest.fail("a sandboxed Postfix needs root (postfix -c DIR start); make test "
                        "runs as root, as its package installs do", pytrace=False)
        self.addr = addr
        self.hostname = hostname
        self.port = port or free_port_on([addr])
        self.vdomain = vdomain
        self.dir = tempfile.mkdtemp(prefix="yubin-postfix-", dir="/tmp")
        os.chmod(self.dir, 0o755)   # postfix (the user) reaches spool/ and data/
        self.conf = os.path.join(self.dir, "conf")
        self.spool = os.path.join(self.dir, "spool")
        self.data = os.path.join(self.dir, "data")
        self.vmail = os.path.join(self.dir, "vmail")
        self.log_path = os.path.join(self.dir, "postfix.log")
        for d in (self.conf, self.spool, self.data, self.vmail):
            os.mkdir(d, 0o755)
        pf = pwd.getpwnam("postfix")
        os.chown(self.data, pf.pw_uid, pf.pw_gid)   # data_directory: mail_owner's
        nobody = pwd.getpwnam("nobody")
        self.vuid, self.vgid = nobody.pw_uid, nobody.pw_gid
        os.chown(self.vmail, self.vuid, self.vgid)
        os.chmod(self.vmail, 0o700)
        grp.getgrnam("postdrop")    # setgid_group must exist (KeyError otherwise)
        self.started = False
        self.master_pid = None

        with open(os.path.join(self.conf, "transport"), "w") as f:
            for dom, hop in (relay or {}).items():
                f.write(f"{dom} smtp:{hop}\n")
        with open(os.path.join(self.conf, "vmailbox"), "w") as f:
            for lp in mailboxes:
                f.write(f"{lp}@{vdomain} {vdomain}/{lp}/\n")   # trailing /: Maildir
        main = {
            "compatibility_level": "3.6",
            "queue_directory": self.spool,
            "data_directory": self.data,
            "mail_owner": "postfix",
            "setgid_group": "postdrop",
            "syslog_name": "yubintest-postfix",
            "maillog_file_prefixes": self.dir,
            "maillog_file": self.log_path,
            "myhostname": hostname,
            "mydomain": hostname.split(".", 1)[1],
            "myorigin": "$myhostname",
            "mydestination": "",
            # only configured interface addresses are allowed here; the
            # real listener is the explicit ADDR:PORT in master.cf
            "inet_interfaces": "loopback-only",
            "inet_protocols": "ipv4",
            "mynetworks": "127.0.0.0/8",
            "smtp_bind_address": addr,
            "alias_maps": "",
            "alias_database": "",
            "local_recipient_maps": "",
            "biff": "no",
            "append_dot_mydomain": "no",
            "smtpd_banner": "$myhostname ESMTP Postfix (yubin interop test)",
            "smtpd_peername_lookup": "no",
            "smtp_dns_support_level": "disabled",
            "smtp_connect_timeout": "5s",
            "smtp_tls_security_level": "none",
            "smtpd_tls_security_level": "none",
            "relay_domains": " ".join((relay or {}).keys()),
            "transport_maps": "texthash:" + os.path.join(self.conf, "transport"),
            "virtual_mailbox_domains": vdomain or "",
            "virtual_mailbox_maps": "texthash:" + os.path.join(self.conf, "vmailbox"),
            "virtual_mailbox_base": self.vmail,
            "virtual_uid_maps": f"static:{self.vuid}",
            "virtual_gid_maps": f"static:{self.vgid}",
            "default_transport": "error:no other destinations in the yubin test sandbox",
            "local_transport": "error:no local delivery in the yubin test sandbox",
            # keep the tests quick: no queue delays when mail is waiting
            "in_flow_delay": "0s",
        }
        if tls:
            cert, key = tls
            main.update({
                "smtpd_tls_security_level": "may",
                "smtpd_tls_cert_file": cert,
                "smtpd_tls_key_file": key,
                "smtpd_tls_loglevel": "1",
                "smtpd_tls_received_header": "yes",
            })
        main.update(main_extra or {})
        self.main = main
        with open(os.path.join(self.conf, "main.cf"), "w") as f:
            f.write("# generated by tests/proto/postfixpeer.py\n")
            for k, v in main.items():
                f.write(f"{k} = {v}\n")
        with open(os.path.join(self.conf, "master.cf"), "w") as f:
            f.write("# generated by tests/proto/postfixpeer.py\n")
            f.write(f"{addr}:{self.port} inet n - n - - smtpd\n")
            f.write(MASTER_CF_SERVICES)

    # -- process control
    def postfix(self, *args, timeout=60):
        return run_tty([POSTFIX, "-c", self.conf, *args], timeout=timeout)

    def start(self):
        rc, out = self.postfix("start")
        if rc != 0:
            pytest.fail(f"postfix -c {self.conf} start exited {rc}:\n{out}\n"
                        f"---- {self.log_path} ----\n{self.log()[-4000:]}", pytrace=False)
        self.started = True
        self.master_pid = self._read_pid()
        # `postfix start` waits for the master's initialisation (master -w);
        # check the listener answers all the same.
        deadline = time.monotonic() + DEADLINE
        while True:
            try:
                with socket.create_connection((self.addr, self.port), timeout=5) as s:
                    s.settimeout(5)
                    greeting = s.recv(512)
                    if greeting.startswith(b"220 "):
                        s.sendall(b"QUIT\r\n")
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"postfix does not greet on {self.addr}:{self.port}:\n"
                            f"{self.log()[-4000:]}", pytrace=False)
            time.sleep(0.05)
        return self

    def _read_pid(self):
        try:
            with open(os.path.join(self.spool, "pid", "master.pid")) as f:
                return int(f.read().split()[0])
        except (OSError, ValueError, IndexError):
            return None

    def _group_alive(self, pgid):
        """Processes left in the master's process group (master calls setsid)."""
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

    def stop(self):
        """postfix stop; then make sure the master and its children are gone."""
        if not self.started:
            return
        self.started = False
        pid = self._read_pid() or self.master_pid
        rc, out = self.postfix("stop", timeout=DEADLINE)
        if pid is None:
            return
        deadline = time.monotonic() + DEADLINE
        while self._group_alive(pid):
            if time.monotonic() > deadline:
                try:
                    os.killpg(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                break
            time.sleep(0.02)

    def cleanup(self):
        try:
            self.stop()
        finally:
            if not KEEP:
                shutil.rmtree(self.dir, ignore_errors=True)

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
                pytest.fail(f"no postfix log line matching {pattern!r} within {timeout}s:\n"
                            f"{self.log(since)[-4000:]}", pytrace=False)
            time.sleep(0.02)

    # -- mailboxes
    def maildir_new(self, local_part):
        return os.path.join(self.vmail, self.vdomain, local_part, "new")

    def messages(self, local_part):
        """The delivered messages of one mailbox (bytes as stored, LF line
        ends), oldest first."""
        d = self.maildir_new(local_part)
        try:
            names = sorted(os.listdir(d), key=lambda n: os.stat(os.path.join(d, n)).st_mtime_ns)
        except FileNotFoundError:
            return []
        out = []
        for n in names:
            with open(os.path.join(d, n), "rb") as f:
                out.append(f.read())
        return out

    def wait_messages(self, local_part, n=1, timeout=DEADLINE):
        deadline = time.monotonic() + timeout
        while True:
            got = self.messages(local_part)
            if len(got) >= n:
                return got
            if time.monotonic() > deadline:
                pytest.fail(f"{len(got)} message(s) in {self.maildir_new(local_part)} after "
                            f"{timeout}s, want {n}:\n{self.log()[-4000:]}", pytrace=False)
            time.sleep(0.02)
