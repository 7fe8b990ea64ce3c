"""The yubin administration CLI against a live store."""

import subprocess

import pytest

import yubintest as yt

DEMO = "demo@example.test"


@pytest.mark.parametrize("args", [["--help"], ["domain", "--help"], ["user", "--help"]])
def test_help(template, args):
    r = subprocess.run([yt.YUBIN, "-c", template.conf, *args], capture_output=True,
                       text=True, timeout=30)
    assert r.returncode == 0, r.stderr
    assert (r.stdout + r.stderr).strip()


def test_lists(yubind):
    r = yubind.cli("domain", "list")
    for d in yt.DOMAINS:
        assert d in r.stdout.split(), r.stdout
    r = yubind.cli("user", "list")
    for u in yt.USERS:
        assert u in r.stdout, r.stdout
    for pw in yt.USERS.values():
        assert pw not in r.stdout


def test_user_add_del_and_passwd(yubind):
    new = "carol@example.org"
    yubind.cli("user", "add", new, input="carol-Pass-5\n")
    assert yubind.cli("user", "add", new, input="x\n", check=False).returncode != 0
    yubind.send("s@example.net", [new], yt.make_message(to=new))
    assert len(yubind.fetch(new, "carol-Pass-5")) == 1
    yubind.cli("user", "passwd", new, input="carol-New-6\n")
    c = yubind.pop3()
    c.ok("USER " + new)
    assert c.cmd("PASS carol-Pass-5").startswith("-ERR [AUTH]")
    c.ok("USER " + new)
    c.ok("PASS carol-New-6")
    c.quit()
    yubind.cli("user", "del", new)
    s = yubind.smtp()
    s.cmd("MAIL FROM:<s@example.net>")
    yt.expect(s.cmd(f"RCPT TO:<{new}>"), 550, "5.1.1")
    s.quit()


def test_user_in_unknown_domain_refused(yubind):
    r = yubind.cli("user", "add", "x@nowhere.example", input="pw-pw-pw\n", check=False)
    assert r.returncode == 1, r
    assert "nowhere.example" in r.stderr


def test_password_length_cap(yubind):
    """The CLI takes passwords up to 256 bytes -- the most every login
    mechanism can carry -- and refuses longer ones; a 256-byte password
    works with USER/PASS and with AUTH PLAIN."""
    new = "long@example.org"
    r = yubind.cli("user", "add", new, input="p" * 257 + "\n", check=False)
    assert r.returncode == 1 and "256" in r.stderr, r
    pw = "P" * 250 + "-9x y!"           # 256 bytes, with spaces
    assert len(pw) == 256
    yubind.cli("user", "add", new, input=pw + "\n")
    c = yubind.pop3()
    c.ok("USER " + new)
    c.ok("PASS " + pw)
    c.quit()
    c = yubind.pop3()
    c.ok("AUTH PLAIN " + yt.sasl_plain(new, pw))
    c.quit()


def test_domain_add_makes_it_local(yubind):
    s = yubind.smtp()
    s.cmd("MAIL FROM:<s@example.net>")
    yt.expect(s.cmd("RCPT TO:<dave@new.example>"), 554, "5.7.1")
    s.quit()
    yubind.cli("domain", "add", "new.example")
    yubind.cli("user", "add", "dave@new.example", input="dave-Pass-7\n")
    yubind.send("s@example.net", ["dave@new.example"], yt.make_message())
    assert len(yubind.fetch("dave@new.example", "dave-Pass-7")) == 1
