"""yubin account add | list: client.conf written from DNS SRV guesses (RFC 6186).

A real DNS server (dnsserver.DnsServer: Debian's unbound on a free loopback
port) serves the SRV records; yubin is pointed at it with --dns-server.
XDG_CONFIG_HOME is a fresh temporary directory for every test, so the
file is $XDG_CONFIG_HOME/yubin/client.conf.  The interactive runs go
through a pseudo-terminal (pty), answering the prompts as they appear.
"""

import json
import os
import pty
import select
import stat
import subprocess
import time

import pytest

import dnsserver
import yubintest as yt

TIMEOUT = 60


def srv(name, prio, weight, port, target):
    return (name, "SRV", f"{prio} {weight} {port} {target}")


@pytest.fixture
def dns(tmp_path):
    made = []

    def make(records):
        d = dnsserver.DnsServer(str(tmp_path / f"dns{len(made)}"), records)
        made.append(d)
        return d

    yield make
    for d in made:
        d.stop()


class Home:
    """A fresh XDG_CONFIG_HOME (not created: yubin makes it) and HOME."""

    def __init__(self, tmp_path):
        yt.require_binaries()
        self.root = tmp_path
        self.xdg = tmp_path / "xdg"
        self.home = tmp_path / "home"
        self.home.mkdir()
        self.dir = self.xdg / "yubin"
        self.conf = self.dir / "client.conf"

    def env(self):
        e = yt.sanitizer_env()
        e["XDG_CONFIG_HOME"] = str(self.xdg)
        e["HOME"] = str(self.home)
        e.pop("VISUAL", None)
        e.pop("EDITOR", None)
        return e

    def run(self, *args, input=None):
        r = subprocess.run([yt.YUBIN] + list(args), input=input, capture_output=True,
                           env=self.env(), timeout=TIMEOUT,
                           stdin=None if input is not None else subprocess.DEVNULL)
        out, err = r.stdout.decode(errors="replace"), r.stderr.decode(errors="replace")
        for mark in yt.SANITIZER_MARKS:
            assert mark not in err, err
        return r.returncode, out, err

    def add(self, *args, dns=None):
        extra = ["--dns-server", dns.server] if dns else []
        return self.run("account", "add", *args, *extra)

    def text(self):
        return self.conf.read_text()

    def accounts(self):
        rc, out, err = self.run("account", "list", "--json")
        assert rc == 0, err
        return json.loads(out)


@pytest.fixture
def home(tmp_path):
    return Home(tmp_path)


def section(text, name):
    """The lines of [account name] as a dict (the file as written: no comments)."""
    lines = text.splitlines()
    start = lines.index(f"[account {name}]")
    keys = {}
    for line in lines[start + 1:]:
        if line.startswith("["):
            break
        if line.strip():
            k, _, v = line.partition(" = ")
            keys[k] = v
    return keys


def assert_private(home):
    assert stat.S_IMODE(os.stat(home.conf).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(home.dir).st_mode) == 0o700


# ------------------------------------------------------------ --yes ----

def test_submissions_and_imaps(home, dns):
    d = dns([srv("_submissions._tcp.example.org.", 0, 1, 465, "smtp.example.org."),
             srv("_imaps._tcp.example.org.", 0, 1, 993, "imap.example.org."),
             # worse choices that must lose
             srv("_submission._tcp.example.org.", 0, 1, 587, "plain.example.org."),
             srv("_pop3s._tcp.example.org.", 0, 1, 995, "pop.example.org.")])
    rc, out, err = home.add("--yes", "--address", "taro@example.org", "--name", "Taro Yamada",
                            "--password-cmd", "printf pw", dns=d)
    assert rc == 0, err
    assert "taro@example.org" in out
    keys = section(home.text(), "taro@example.org")
    assert keys == {"name": "Taro Yamada", "address": "taro@example.org",
                    "smtp": "smtp.example.org:465", "smtp_tls": "tls",
                    "incoming": "imaps://imap.example.org", "password_cmd": "printf pw"}
    assert "password =" not in home.text()
    assert_private(home)
    # XDG_CONFIG_HOME itself was made too, private
    assert stat.S_IMODE(os.stat(home.xdg).st_mode) == 0o700

    # The file loads: list and send see the account.
    [a] = home.accounts()
    assert a["name"] == "taro@example.org" and a["default"] is True
    assert a["smtp"] == {"host": "smtp.example.org", "port": 465, "tls": "tls",
                         "user": "taro@example.org"}
    assert a["incoming"]["url"] == "imaps://imap.example.org"
    assert a["incoming"]["protocol"] == "imap" and a["incoming"]["port"] == 993
    rc, out, err = home.run("send", "--dry-run", "--to", "hanako@example.net",
                            "--subject", "hi", input=b"Hello.\n")
    assert rc == 0, err
    assert "From: Taro Yamada <taro@example.org>" in out
    rc, out, err = home.run("account", "list")
    assert rc == 0 and out.startswith("* taro@example.org "), out
    assert "smtp.example.org:465 (TLS)" in out and "imaps://imap.example.org" in out


def test_submission_and_pop3_only(home, dns):
    d = dns([srv("_submission._tcp.example.net.", 10, 5, 587, "b.example.net."),
             srv("_submission._tcp.example.net.", 5, 0, 587, "a.example.net."),
             srv("_submission._tcp.example.net.", 5, 10, 2587, "smtp.example.net."),
             srv("_pop3._tcp.example.net.", 0, 0, 110, "pop.example.net.")])
    rc, out, err = home.add("work", "--yes", "--address", "hanako@example.net", dns=d)
    assert rc == 0, err
    keys = section(home.text(), "work")
    # priority 5 beats 10, then weight 10 beats 0
    assert keys["smtp"] == "smtp.example.net:2587" and keys["smtp_tls"] == "starttls"
    assert keys["incoming"] == "pop3://pop.example.net"
    assert "password_cmd" not in keys and "name" not in keys
    [a] = home.accounts()
    assert a["incoming"]["protocol"] == "pop3" and a["incoming"]["tls"] == "starttls"


def test_dot_target_falls_back(home, dns):
    d = dns([srv("_submissions._tcp.example.org.", 0, 0, 0, "."),
             srv("_submission._tcp.example.org.", 0, 1, 587, "smtp.example.org."),
             srv("_imaps._tcp.example.org.", 0, 0, 0, "."),
             srv("_imap._tcp.example.org.", 0, 1, 1143, "imap.example.org."),
             srv("_pop3s._tcp.example.org.", 0, 1, 995, "pop.example.org.")])
    rc, out, err = home.add("--yes", "--address", "taro@example.org", dns=d)
    assert rc == 0, err
    keys = section(home.text(), "taro@example.org")
    assert keys["smtp"] == "smtp.example.org:587" and keys["smtp_tls"] == "starttls"
    # imaps is "." : IMAP with STARTTLS is next, still before POP3 (same priority)
    assert keys["incoming"] == "imap://imap.example.org:1143"


def test_imap_or_pop3_by_priority(home, dns):
    """RFC 6186 3.4: the domain prefers by priority across IMAP and POP3."""
    d = dns([srv("_submissions._tcp.example.org.", 0, 1, 465, "smtp.example.org."),
             srv("_imaps._tcp.example.org.", 20, 1, 993, "imap.example.org."),
             srv("_pop3s._tcp.example.org.", 10, 1, 995, "pop.example.org."),
             srv("_submissions._tcp.example.net.", 0, 1, 465, "smtp.example.net."),
             srv("_imap._tcp.example.net.", 10, 1, 143, "imap.example.net."),
             srv("_pop3s._tcp.example.net.", 10, 1, 995, "pop.example.net.")])
    rc, _, err = home.add("org", "--yes", "--address", "a@example.org", dns=d)
    assert rc == 0, err
    rc, _, err = home.add("net", "--yes", "--address", "a@example.net", dns=d)
    assert rc == 0, err
    assert section(home.text(), "org")["incoming"] == "pop3s://pop.example.org"
    assert section(home.text(), "net")["incoming"] == "imap://imap.example.net"


def test_no_srv_names_what_to_give(home, dns):
    d = dns([("example.org.", "A", "127.0.0.1")])
    rc, out, err = home.add("--yes", "--address", "taro@example.org", dns=d)
    assert rc == 1
    assert "--smtp HOST[:PORT]" in err and "--incoming" in err, err
    assert not home.conf.exists()
    # Given the submission server, it is enough (a send-only account).
    rc, out, err = home.add("--yes", "--address", "taro@example.org",
                            "--smtp", "mail.example.org", dns=d)
    assert rc == 0, err
    assert "no incoming server" in err
    keys = section(home.text(), "taro@example.org")
    assert keys["smtp"] == "mail.example.org:587" and "incoming" not in keys


def test_options_need_no_dns(home):
    # Everything given: nothing is looked up (no DNS server at all).
    rc, out, err = home.add("--yes", "--address", "ken@example.com", "--smtp",
                            "[2001:db8::1]", "--smtp-tls", "tls", "--incoming",
                            "pop3s://pop.example.com:1995", "--user", "ken", "--cafile",
                            "~/ca.pem", "--default")
    assert rc == 0, err
    keys = section(home.text(), "ken@example.com")
    assert keys == {"default": "yes", "address": "ken@example.com",
                    "smtp": "[2001:db8::1]:465", "smtp_tls": "tls", "smtp_user": "ken",
                    "incoming": "pop3s://pop.example.com:1995", "cafile": "~/ca.pem"}
    [a] = home.accounts()
    assert a["cafile"] == str(home.home / "ca.pem") and a["incoming"]["user"] == "ken"


def test_unanswering_dns_server_fails_in_time(home):
    port = dnsserver.free_udp_port()
    t0 = time.monotonic()
    rc, out, err = home.run("account", "add", "--yes", "--address", "taro@example.org",
                            "--dns-server", f"127.0.0.1@{port}")
    assert rc == 1 and "--smtp" in err, err
    assert "SERVFAIL" in err
    # one capped retransmit series, then the server counts as down
    assert time.monotonic() - t0 < TIMEOUT / 2


# ------------------------------------------------------- the file ----

EXISTING = ("# Taro's accounts   (kept byte for byte)\n"
            "\n"
            "[account home]    # at home\n"
            "name   =   Taro\n"
            "address = taro@example.jp\n"
            "smtp = smtp.example.jp\n"
            "   # indented comment, no final newline")


def test_existing_comments_kept(home, dns):
    d = dns([srv("_submissions._tcp.example.org.", 0, 1, 465, "smtp.example.org.")])
    home.dir.mkdir(parents=True, mode=0o755)
    os.chmod(home.dir, 0o755)
    home.conf.write_bytes(EXISTING.encode())
    os.chmod(home.conf, 0o644)
    rc, out, err = home.add("work", "--yes", "--address", "taro@example.org", "--default",
                            dns=d)
    assert rc == 0, err
    text = home.conf.read_bytes().decode()
    assert text.startswith(EXISTING)
    assert text[len(EXISTING):].startswith("\n\n[account work]\n")
    assert stat.S_IMODE(os.stat(home.conf).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(home.dir).st_mode) == 0o755      # not ours to change
    accts = {a["name"]: a for a in home.accounts()}
    assert accts["work"]["default"] and not accts["home"]["default"]
    assert not any(n.startswith(".client.conf.") for n in os.listdir(home.dir))


def test_crlf_file_gets_crlf(home, dns):
    d = dns([srv("_submission._tcp.example.org.", 0, 1, 587, "smtp.example.org.")])
    home.dir.mkdir(parents=True)
    old = b"[account home]\r\naddress = a@example.jp\r\nsmtp = smtp.example.jp\r\n\r\n"
    home.conf.write_bytes(old)
    rc, out, err = home.add("w", "--yes", "--address", "taro@example.org", dns=d)
    assert rc == 0, err
    new = home.conf.read_bytes()
    assert new.startswith(old) and new[len(old):].startswith(b"[account w]\r\n")
    assert b"\n" not in new.replace(b"\r\n", b"")
    assert len(home.accounts()) == 2
    # two accounts, none default: said so
    assert "none is the default" in err


def test_duplicate_and_second_default_refused(home, dns):
    d = dns([srv("_submissions._tcp.example.org.", 0, 1, 465, "smtp.example.org.")])
    rc, _, err = home.add("work", "--yes", "--address", "taro@example.org", "--default",
                          dns=d)
    assert rc == 0, err
    rc, _, err = home.add("--yes", "--address", "x@example.org", dns=d)
    assert rc == 0, err                         # named after the address
    before = home.conf.read_bytes()
    ino = os.stat(home.conf).st_ino

    rc, _, err = home.add("work", "--yes", "--address", "other@example.org", dns=d)
    assert rc == 1 and 'account "work"' in err and "already" in err, err
    rc, _, err = home.add("--yes", "--address", "x@example.org", dns=d)
    assert rc == 1 and '"x@example.org"' in err and "already" in err, err
    rc, _, err = home.add("play", "--yes", "--address", "other@example.org", "--default",
                          dns=d)
    assert rc == 1 and '"work" is the default already' in err, err
    assert home.conf.read_bytes() == before and os.stat(home.conf).st_ino == ino
    assert [a["name"] for a in home.accounts()] == ["work", "x@example.org"]


def test_symlinked_file_stays_a_symlink(home, dns):
    d = dns([srv("_submissions._tcp.example.org.", 0, 1, 465, "smtp.example.org.")])
    dotfiles = home.root / "dotfiles"
    dotfiles.mkdir()
    real = dotfiles / "client.conf"
    real.write_text("# managed elsewhere\n")
    home.dir.mkdir(parents=True)
    os.symlink(real, home.conf)
    rc, _, err = home.add("w", "--yes", "--address", "taro@example.org", dns=d)
    assert rc == 0, err
    assert os.path.islink(home.conf)
    assert real.read_text().startswith("# managed elsewhere\n\n[account w]\n")


@pytest.mark.parametrize("args, what", [
    (["--bogus"], "unknown option"),
    (["--smtp-tls", "ssl"], "--smtp-tls"),
    (["--incoming", "ftp://x.example"], "incoming"),
    (["--smtp", "a b"], "submission server"),
    (["--name", "Taro #1"], "#"),
    (["--dns-server", "dns.example"], "IP@PORT"),
    (["bad/name"], "NAME"),
    (["a", "b"], "one account NAME"),
    ([], "--address"),
    (["--address", "not-an-address"], "address"),
])
def test_usage_errors(home, args, what):
    if "--address" not in args and args != []:
        args = args + ["--address", "taro@example.org"]
    rc, out, err = home.add("--yes", *args)
    assert rc == 2 and what in err, (rc, err)
    assert not home.conf.exists()


def test_account_usage(home):
    assert home.run("account")[0] == 2
    assert home.run("account", "frob")[0] == 2
    rc, out, _ = home.run("account", "add", "--help")
    assert rc == 0 and "--dns-server" in out
    rc, out, err = home.run("account", "list")
    assert rc == 0 and out == "" and "no accounts" in err
    rc, out, _ = home.run("account", "list", "--json")
    assert rc == 0 and json.loads(out) == []
    rc, out, _ = home.run("--help")
    assert "account add" in out


# ---------------------------------------------------- interactive ----

class Terminal:
    """yubin on a pseudo-terminal; expect() waits for output with a deadline."""

    def __init__(self, args, env):
        self.master, slave = pty.openpty()
        self.proc = subprocess.Popen(args, stdin=slave, stdout=slave, stderr=slave, env=env,
                                     start_new_session=True)
        os.close(slave)
        self.seen = b""
        self.pending = b""

    def _read(self, deadline):
        left = deadline - time.monotonic()
        if left <= 0:
            return False
        r, _, _ = select.select([self.master], [], [], left)
        if not r:
            return False
        try:
            data = os.read(self.master, 4096)
        except OSError:         # EIO: the other side is closed
            data = b""
        if not data:
            return None
        self.pending += data
        self.seen += data
        return True

    def expect(self, text, timeout=30):
        want = text.encode()
        deadline = time.monotonic() + timeout
        while want not in self.pending:
            got = self._read(deadline)
            if not got:
                raise AssertionError(f"waited for {text!r}; got:\n"
                                     + self.seen.decode(errors="replace"))
        i = self.pending.index(want) + len(want)
        before, self.pending = self.pending[:i], self.pending[i:]
        return before.decode(errors="replace")

    def send(self, line):
        os.write(self.master, line.encode() + b"\n")

    def finish(self, timeout=30):
        deadline = time.monotonic() + timeout
        while self._read(deadline):
            pass
        rc = self.proc.wait(timeout=max(1, deadline - time.monotonic()))
        os.close(self.master)
        out = self.seen.decode(errors="replace")
        for mark in yt.SANITIZER_MARKS:
            assert mark not in out, out
        return rc, out


def test_interactive_accept_guesses(home, dns):
    d = dns([srv("_submissions._tcp.example.net.", 0, 1, 465, "smtp.example.net."),
             srv("_imaps._tcp.example.net.", 0, 1, 993, "imap.example.net.")])
    t = Terminal([yt.YUBIN, "account", "add", "--dns-server", d.server], home.env())
    try:
        t.expect("Email address: ")
        t.send("hanako@example.net")
        t.expect("Your name, for From: (may be empty): ")
        t.send("Hanako Yamada")
        t.expect("Account name [hanako@example.net]: ")
        t.send("")
        shown = t.expect("Use these servers? [Y/n] ")
        assert ("found by DNS SRV: submission smtp.example.net:465 (TLS), "
                "incoming imaps://imap.example.net") in shown, shown
        t.send("")
        t.expect("Login name [hanako@example.net]: ")
        t.send("")
        t.expect("(empty: ask each time): ")
        t.send("pass show mail/hanako")
        rc, out = t.finish()
    finally:
        if t.proc.poll() is None:
            t.proc.kill()
            t.proc.wait()
    assert rc == 0, out
    assert "added account" in out
    keys = section(home.text(), "hanako@example.net")
    assert keys == {"name": "Hanako Yamada", "address": "hanako@example.net",
                    "smtp": "smtp.example.net:465", "smtp_tls": "tls",
                    "incoming": "imaps://imap.example.net",
                    "password_cmd": "pass show mail/hanako"}
    assert_private(home)
    rc, out, err = home.run("send", "--dry-run", "--to", "taro@example.org", input=b"x\n")
    assert rc == 0 and "From: Hanako Yamada <hanako@example.net>" in out, err


def test_interactive_other_servers(home, dns):
    d = dns([srv("_submission._tcp.example.net.", 0, 1, 587, "smtp.example.net."),
             srv("_pop3._tcp.example.net.", 0, 1, 110, "pop.example.net.")])
    rc, _, err = home.add("first", "--yes", "--address", "a@example.net", dns=d)
    assert rc == 0, err
    t = Terminal([yt.YUBIN, "account", "add", "--dns-server", d.server,
                  "--name", "Ken"], home.env())
    try:
        t.expect("Email address: ")
        t.send("not an address")
        t.expect("Email address: ")
        t.send("ken@example.net")
        t.expect("Account name [ken@example.net]: ")
        t.send("first")                         # taken: asked again
        t.expect("already")
        t.expect("Account name [ken@example.net]: ")
        t.send("second")
        shown = t.expect("Use these servers? [Y/n] ")
        assert "submission smtp.example.net:587 (STARTTLS), incoming pop3://pop.example.net" \
            in shown, shown
        t.send("n")
        t.expect("Submission server, HOST[:PORT] [smtp.example.net:587]: ")
        t.send("mail.example.net:2465")
        t.expect("TLS: tls (port 465), starttls or none [starttls]: ")
        t.send("tls")
        t.expect("(- for none) [pop3://pop.example.net]: ")
        t.send("gopher://x")                    # refused: asked again
        t.expect("(- for none) [pop3://pop.example.net]: ")
        t.send("imaps://imap.example.net")
        t.expect("Login name [ken@example.net]: ")
        t.send("ken")
        t.expect("(empty: ask each time): ")
        t.send("")
        t.expect("Make it the default account? [y/N] ")
        t.send("y")
        rc, out = t.finish()
    finally:
        if t.proc.poll() is None:
            t.proc.kill()
            t.proc.wait()
    assert rc == 0, out
    keys = section(home.text(), "second")
    assert keys == {"default": "yes", "name": "Ken", "address": "ken@example.net",
                    "smtp": "mail.example.net:2465", "smtp_tls": "tls", "smtp_user": "ken",
                    "incoming": "imaps://imap.example.net"}
    accts = {a["name"]: a for a in home.accounts()}
    assert accts["second"]["default"] and not accts["first"]["default"]


def test_interactive_end_of_input_writes_nothing(home):
    t = Terminal([yt.YUBIN, "account", "add"], home.env())
    try:
        t.expect("Email address: ")
        os.write(t.master, b"\x04")             # ^D: end of input
        rc, out = t.finish()
    finally:
        if t.proc.poll() is None:
            t.proc.kill()
            t.proc.wait()
    assert rc == 1 and "nothing written" in out, out
    assert not home.conf.exists()
