"""The mail client against a real Dovecot (tests/proto/dovecotpeer.py):
yubin fetch over POP3S, STLS and APOP (no TLS), with and without --keep, a
refused password; then yubin ls and read on what was fetched.  Over IMAP:
fetch of folders (IMAPS and STARTTLS, resume by UID, nothing changed on
the server), and the remote commands (ls, read, flag, search, mv, rm,
folders, append of a Sent copy) on Dovecot's mailboxes.

Every test has its own Dovecot, in its own directory, on ports chosen free
at run time.  Messages are put in with `doveadm save` (synchronous: when it
returns, Dovecot has the message and its UID); what Dovecot still has is
read back over IMAPS (dovecotpeer.Dovecot.messages).

Dovecot stores mail with LF line ends, serves it with CRLF; yubin fetch
writes LF (the Maildir convention).  Dovecot adds no header on `doveadm
save` nor on POP3 RETR, so a fetched message is the delivered one byte for
byte, CRLF made LF.
"""

import base64
import imaplib
import json
import os
import poplib
import re
import socket
import ssl
import subprocess

import pytest

import yubintest as yt
from dovecotpeer import dovecot, make_dovecot  # noqa: F401  (fixtures)

ALICE = "alice@example.test"      # password "pass" (dovecotpeer.USERS)
BOB = "bob@example.test"


# ------------------------------------------------------------ helpers ----

def run_yubin(args, env=None, check=True):
    """yubin ARGS with no account file unless env names one."""
    e = dict(os.environ)
    e.pop("XDG_CONFIG_HOME", None)
    e["HOME"] = e.get("HOME", "/root")
    e.update(env or {})
    r = subprocess.run([yt.YUBIN] + args, capture_output=True, stdin=subprocess.DEVNULL,
                       env={**yt.sanitizer_env(), **e}, timeout=60)
    for mark in yt.SANITIZER_MARKS:
        assert mark.encode() not in r.stderr, f"yubin {args[0]}: sanitizer report:\n" + \
            r.stderr.decode("utf-8", "replace")
    if check and r.returncode != 0:
        raise AssertionError(f"yubin {' '.join(args)} exited {r.returncode}:\n"
                             f"{r.stdout.decode('utf-8', 'replace')}"
                             f"{r.stderr.decode('utf-8', 'replace')}")
    return r


def fetch_args(dc, mode="tls", user=ALICE, password=None):
    port = dc.ports["pop3s"] if mode == "tls" else dc.ports["pop3"]
    pw = dc.users[user] if password is None else password
    return ["fetch", "--server", f"127.0.0.1:{port}", "--tls", mode, "--cafile", dc.cafile,
            "--user", user, "--password-cmd", f"echo '{pw}'"]


def write_account(tmp_path, dc, incoming, maildir, user=ALICE, extra=""):
    """An account file under tmp_path/xdg (mode 0600); returns the env that
    makes yubin read it."""
    conf = tmp_path / "xdg" / "yubin"
    conf.mkdir(parents=True)
    (conf / "client.conf").write_text(
        "[account dove]\n"
        "default = yes\n"
        f"address = {user}\n"
        "smtp = 127.0.0.1:1\n"                # required; not used by fetch
        f"incoming = {incoming}\n"
        f"incoming_user = {user}\n"
        f"password_cmd = echo '{dc.users[user]}'\n"
        f"cafile = {dc.cafile}\n"
        f"maildir = {maildir}\n" + extra)
    os.chmod(conf / "client.conf", 0o600)
    return {"XDG_CONFIG_HOME": str(tmp_path / "xdg")}


def lf(raw):
    return raw.replace(b"\r\n", b"\n")


def maildir_files(md):
    """The messages yubin delivered (new/ and cur/), sorted by content."""
    out = []
    for sub in ("new", "cur"):
        d = md / sub
        if d.exists():
            out += [p.read_bytes() for p in d.iterdir()]
    return sorted(out)


def message(n, extra_body=""):
    """A distinct test message (CRLF), with lines that need dot-stuffing on
    the wire and 8-bit UTF-8 in the body."""
    return yt.crlf(f"From: Sender <sender@example.net>\nTo: {ALICE}\nSubject: dove {n}\n"
                   f"Message-ID: <dove-{n}-{os.urandom(4).hex()}@client.example.net>\n"
                   "Date: Tue, 1 Dec 2026 10:00:00 +0900\n"
                   "MIME-Version: 1.0\nContent-Type: text/plain; charset=UTF-8\n"
                   "Content-Transfer-Encoding: 8bit\n\n"
                   f"Message {n}.\n.leading dot line\n..two dots\n.\nこんにちは\n"
                   f"{extra_body}end\n")


def fetched_line(r):
    m = re.search(rb"fetched (\d+) new message\(s\) into ", r.stdout)
    assert m, (r.stdout, r.stderr)
    return int(m.group(1))


# -------------------------------------------------------- the peer itself --

def test_peer_sanity_imaplib_poplib(dovecot):
    """The peer as a stock client sees it: IMAPS, IMAP STARTTLS, POP3S and
    POP3 STLS, each verifying the certificate with the test CA (for the
    address 127.0.0.1); a delivered message is listed and read back."""
    raw = message(1)
    uid = dovecot.deliver(ALICE, raw)
    assert uid == 1
    got = dovecot.messages(ALICE)
    assert got == [(1, frozenset(), raw)]           # IMAP serves CRLF, as delivered

    ctx = dovecot.client_context()                  # verifies, hostname check on
    c = imaplib.IMAP4_SSL("127.0.0.1", dovecot.ports["imaps"], ssl_context=ctx,
                          timeout=yt.IO_TIMEOUT)
    c.login(ALICE, "pass")
    typ, data = c.select("INBOX")
    assert typ == "OK" and data == [b"1"]
    typ, data = c.fetch("1", "(BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
    assert typ == "OK" and data[0][1].strip() == b"Subject: dove 1"
    c.logout()

    c = imaplib.IMAP4("127.0.0.1", dovecot.ports["imap"], timeout=yt.IO_TIMEOUT)
    assert "STARTTLS" in c.capabilities
    c.starttls(ssl_context=ctx)
    c.login(ALICE, "pass")
    assert c.select("INBOX", readonly=True) == ("OK", [b"1"])
    c.logout()

    p = poplib.POP3_SSL("127.0.0.1", dovecot.ports["pop3s"], timeout=yt.IO_TIMEOUT,
                        context=ctx)
    p.user(ALICE)
    p.pass_("pass")
    assert p.stat()[0] == 1
    resp, lines, _ = p.retr(1)
    assert resp.startswith(b"+OK")
    assert b"".join(l + b"\r\n" for l in lines) == raw     # poplib unstuffs the dots
    p.quit()

    p = poplib.POP3("127.0.0.1", dovecot.ports["pop3"], timeout=yt.IO_TIMEOUT)
    assert re.search(rb"<[^<>@]+@[^<>]+>", p.getwelcome()), p.getwelcome()  # APOP stamp
    assert "STLS" in p.capa()
    p.stls(context=ctx)
    p.user(BOB)
    p.pass_(dovecot.users[BOB])
    assert p.stat()[0] == 0
    p.quit()
    dovecot.wait_log(r"pop3-login: Info: Login: user=<bob@example\.test>, method=PLAIN.*TLS")

    # the other helpers: a folder, flags at delivery, read back per folder
    dovecot.create_folder(ALICE, "Lists/dev")
    other = yt.crlf("Subject: in a folder\n\nfiled\n")
    assert dovecot.deliver(ALICE, other, folder="Lists/dev", flags="\\Seen \\Flagged") == 1
    assert dovecot.messages(ALICE, "Lists/dev") == [(1, frozenset({"\\Seen", "\\Flagged"}),
                                                     other)]
    assert os.path.isdir(os.path.join(dovecot.maildir(ALICE), ".Lists.dev", "cur"))
    c = dovecot.imap(ALICE)
    typ, data = c.list()
    assert typ == "OK" and any(l.endswith(b'"/" Lists/dev') for l in data), data
    c.logout()
    assert [m.uid for m in dovecot.messages(ALICE)] == [1]      # INBOX unchanged

    # a certificate the client does not trust is refused (the CA matters)
    with pytest.raises(ssl.SSLCertVerificationError):
        poplib.POP3_SSL("127.0.0.1", dovecot.ports["pop3s"], timeout=yt.IO_TIMEOUT,
                        context=ssl.create_default_context())


# ------------------------------------------------------------ yubin fetch --

def test_fetch_pop3s_keep_resumes_then_deletes(dovecot, tmp_path):
    sent = [message(i) for i in range(3)]
    for raw in sent:
        dovecot.deliver(ALICE, raw)
    md = tmp_path / "Mail"
    args = fetch_args(dovecot) + ["--maildir", str(md)]

    r = run_yubin(args + ["--keep"])
    assert fetched_line(r) == 3 and f"into {md}".encode() in r.stdout
    assert maildir_files(md) == sorted(lf(m) for m in sent)      # exact bytes, LF
    assert list((md / "tmp").iterdir()) == []
    assert len((md / ".yubin-uidl").read_text().splitlines()) == 3
    assert [m.data for m in dovecot.messages(ALICE)] == sent    # --keep: all still there

    # a second run: nothing new, nothing changes
    r = run_yubin(args + ["--keep"])
    assert fetched_line(r) == 0
    assert len(maildir_files(md)) == 3

    # a fourth message: only it comes the third time
    new = message(3)
    dovecot.deliver(ALICE, new)
    r = run_yubin(args + ["--keep"])
    assert fetched_line(r) == 1
    assert maildir_files(md) == sorted(lf(m) for m in sent + [new])
    assert len(dovecot.messages(ALICE)) == 4

    # without --keep: nothing new to fetch, but Dovecot's copies go
    r = run_yubin(args)
    assert fetched_line(r) == 0
    assert dovecot.messages(ALICE) == []
    assert len(maildir_files(md)) == 4
    dovecot.wait_log(r"pop3\(alice@example\.test\).*Disconnected: Logged out .*del=4/4")


def test_fetch_without_keep_empties_dovecot(dovecot, tmp_path):
    sent = [message(i) for i in range(2)]
    for raw in sent:
        dovecot.deliver(ALICE, raw, flags="\\Seen" if raw is sent[0] else "")
    md = tmp_path / "M2"
    r = run_yubin(fetch_args(dovecot) + ["--maildir", str(md)])
    assert fetched_line(r) == 2
    assert maildir_files(md) == sorted(lf(m) for m in sent)
    assert dovecot.messages(ALICE) == []
    assert os.listdir(os.path.join(dovecot.maildir(ALICE), "cur")) == []
    assert os.listdir(os.path.join(dovecot.maildir(ALICE), "new")) == []
    # nothing left, nothing fetched
    r = run_yubin(fetch_args(dovecot) + ["--maildir", str(md)])
    assert fetched_line(r) == 0 and len(maildir_files(md)) == 2


def test_fetch_over_stls_from_account_file(dovecot, tmp_path):
    """incoming = pop3://: STLS on the plain port (the default for pop3://),
    the account file giving server, user, password_cmd, cafile, maildir."""
    raw = message(7)
    dovecot.deliver(BOB, raw)
    md = tmp_path / "MB"
    env = write_account(tmp_path, dovecot, f"pop3://127.0.0.1:{dovecot.ports['pop3']}", md,
                        user=BOB)
    mark = dovecot.log_mark()
    r = run_yubin(["fetch", "--keep"], env=env)
    assert fetched_line(r) == 1
    assert maildir_files(md) == [lf(raw)]
    dovecot.wait_log(r"pop3-login: Info: Login: user=<bob@example\.test>, method=PLAIN, "
                     r"rip=127\.0\.0\.1, lip=127\.0\.0\.1, mpid=\d+, TLS", since=mark)
    assert len(dovecot.messages(BOB)) == 1


def test_fetch_wrong_password_quotes_dovecot(dovecot, tmp_path):
    dovecot.deliver(ALICE, message(1))
    md = tmp_path / "M4"
    mark = dovecot.log_mark()
    r = run_yubin(fetch_args(dovecot, password="wrong-pass") + ["--maildir", str(md)],
                  check=False)
    err = r.stderr.decode("utf-8", "replace")
    assert r.returncode == 1, (r.stdout, err)
    # Dovecot's own reply, quoted
    assert "-ERR [AUTH] Authentication failed." in err, err
    assert "PASS refused" in err, err
    assert b"fetched" not in r.stdout
    assert maildir_files(md) == []
    dovecot.wait_log(r"passwd-file\(alice@example\.test,127\.0\.0\.1,<[^>]*>\): "
                     r"Password mismatch", since=mark)
    assert len(dovecot.messages(ALICE)) == 1


def test_fetch_apop_without_tls(make_dovecot, tmp_path):
    """--tls none on the plain port: Dovecot's greeting has an APOP
    timestamp (auth_mechanisms includes apop, {PLAIN} passwords), so yubin
    logs in with APOP and the password never crosses the wire."""
    dc = make_dovecot(auth_mechanisms="plain login apop")
    raw = message(5)
    dc.deliver(ALICE, raw)
    md = tmp_path / "MA"
    mark = dc.log_mark()
    r = run_yubin(fetch_args(dc, mode="none") + ["--keep", "--maildir", str(md)])
    assert fetched_line(r) == 1
    assert maildir_files(md) == [lf(raw)]
    dc.wait_log(r"pop3-login: Info: Login: user=<alice@example\.test>, method=APOP, "
                r"rip=127\.0\.0\.1, lip=127\.0\.0\.1, mpid=\d+, secured", since=mark)
    # and the wrong secret: APOP refused, no fallback to PASS
    mark = dc.log_mark()
    r = run_yubin(fetch_args(dc, mode="none", password="nope") + ["--maildir", str(md)],
                  check=False)
    err = r.stderr.decode("utf-8", "replace")
    assert r.returncode == 1, err
    assert "APOP refused: server said: -ERR [AUTH] Authentication failed." in err, err
    assert "method=PLAIN" not in dc.log(mark)


def test_fetch_no_tls_without_apop_offered_uses_pass(make_dovecot, tmp_path):
    """The other side of the APOP test: without apop in auth_mechanisms
    Dovecot's greeting has no timestamp, and --tls none sends USER/PASS in
    clear (Dovecot takes it: a connection from 127.0.0.1 to 127.0.0.1
    counts as secured even with disable_plaintext_auth = yes)."""
    dc = make_dovecot(auth_mechanisms="plain login")
    p = poplib.POP3("127.0.0.1", dc.ports["pop3"], timeout=yt.IO_TIMEOUT)
    assert b"<" not in p.getwelcome(), p.getwelcome()
    p.quit()
    raw = message(6)
    dc.deliver(ALICE, raw)
    md = tmp_path / "MP"
    mark = dc.log_mark()
    r = run_yubin(fetch_args(dc, mode="none") + ["--maildir", str(md)])
    assert fetched_line(r) == 1
    assert maildir_files(md) == [lf(raw)]
    dc.wait_log(r"pop3-login: Info: Login: user=<alice@example\.test>, method=PLAIN, "
                r"rip=127\.0\.0\.1, lip=127\.0\.0\.1, mpid=\d+, secured", since=mark)
    assert dc.messages(ALICE) == []


def test_fetch_long_line(dovecot, tmp_path):
    """A 20,000-byte line (past yubin's status-line cap) comes through whole."""
    long_line = "x" * 20000
    raw = yt.crlf(f"From: a@example.net\nTo: {ALICE}\nSubject: long\n\n{long_line}\nshort\n")
    dovecot.deliver(ALICE, raw)
    md = tmp_path / "ML"
    r = run_yubin(fetch_args(dovecot) + ["--keep", "--maildir", str(md)])
    assert fetched_line(r) == 1
    assert maildir_files(md) == [lf(raw)]


def test_ls_read_decoded_after_fetch(dovecot, tmp_path):
    """Fetched with an account file (incoming = pop3s://), then yubin ls
    --json and yubin read 1: the ISO-2022-JP encoded-word subject, the
    UTF-8 encoded-word From and the ISO-2022-JP body decoded."""
    subject = "会議の件"
    body = "会議は十時から始めます。"
    raw = ("From: =?UTF-8?B?" + base64.b64encode("山田 太郎".encode()).decode() +
           "?= <taro@example.net>\r\n"
           f"To: {ALICE}\r\n"
           "Subject: =?ISO-2022-JP?B?" +
           base64.b64encode(subject.encode("iso-2022-jp")).decode() + "?=\r\n"
           "Date: Tue, 1 Dec 2026 10:00:00 +0900\r\n"
           "Message-ID: <jp-1@example.net>\r\n"
           "MIME-Version: 1.0\r\n"
           "Content-Type: text/plain; charset=ISO-2022-JP\r\n"
           "Content-Transfer-Encoding: 7bit\r\n\r\n").encode() + \
        body.encode("iso-2022-jp") + b"\r\n"
    dovecot.deliver(ALICE, raw)
    md = tmp_path / "MR"
    env = write_account(tmp_path, dovecot, f"pop3s://127.0.0.1:{dovecot.ports['pop3s']}", md)
    r = run_yubin(["fetch"], env=env)
    assert fetched_line(r) == 1
    assert maildir_files(md) == [lf(raw)]
    assert dovecot.messages(ALICE) == []

    r = run_yubin(["ls", "--json", "--maildir", str(md)])
    items = json.loads(r.stdout)
    assert len(items) == 1, items
    assert items[0]["n"] == 1 and items[0]["subject"] == subject
    assert "山田 太郎" in json.dumps(items[0]["from"], ensure_ascii=False)
    r = run_yubin(["ls"], env=env)                  # the account's maildir
    assert subject in r.stdout.decode() and "山田 太郎" in r.stdout.decode()

    r = run_yubin(["read", "1", "--maildir", str(md)])
    out = r.stdout.decode()
    assert subject in out and body in out and "山田 太郎" in out, out
    assert "\x1b" not in out                        # the ISO-2022-JP escapes are gone


def test_peer_port_closed_after_stop(make_dovecot):
    """stop() leaves nothing behind: the master's process group is gone and
    the ports refuse connections."""
    dc = make_dovecot()
    pgid = dc.proc.pid
    ports = dict(dc.ports)
    dc.stop()
    from dovecotpeer import _group_alive
    assert _group_alive(pgid) == []
    for port in ports.values():
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection(("127.0.0.1", port), timeout=5).close()


def test_peer_start_failures_fail_with_the_log(make_dovecot, monkeypatch):
    """A Dovecot that cannot start fails the test with what Dovecot said;
    a port taken between choosing and binding it costs one more try."""
    with pytest.raises(pytest.fail.Exception, match=r"(?s)Unknown setting: bogus_setting"):
        make_dovecot(extra_conf="bogus_setting = 1")
    busy = socket.socket()
    busy.bind(("127.0.0.1", 0))
    busy.listen(1)
    taken = busy.getsockname()[1]
    real = yt.free_port_on
    calls = []

    def first_taken(hosts):
        calls.append(1)
        return taken if len(calls) == 1 else real(hosts)

    monkeypatch.setattr(yt, "free_port_on", first_taken)
    try:
        dc = make_dovecot()
    finally:
        busy.close()
    assert taken not in dc.ports.values()
    assert f"listen(127.0.0.1, {taken}) failed: Address already in use" in dc.log()
    assert dc.messages(ALICE) == []


# ------------------------------------------------------------- IMAP ----

def imap_args(dc, mode="tls", user=ALICE):
    url = (f"imaps://127.0.0.1:{dc.ports['imaps']}" if mode == "tls"
           else f"imap://127.0.0.1:{dc.ports['imap']}")
    return ["--server", url, "--cafile", dc.cafile, "--user", user,
            "--password-cmd", f"echo '{dc.users[user]}'"]


def lf(b):
    return b.replace(b"\r\n", b"\n")


def maildir_files(d):
    out = []
    for sub in ("new", "cur"):
        p = d / sub
        if p.is_dir():
            out += [f.read_bytes() for f in p.iterdir()]
    return sorted(out)


def test_imap_fetch_folders_resume_and_nothing_changes(dovecot, tmp_path):
    dc = dovecot
    msgs = [yt.make_message(subject=f"dove {i}", body=f"body {i}\n.dot\n") for i in range(3)]
    for m in msgs:
        dc.deliver(ALICE, m)
    dc.create_folder(ALICE, "Lists/dev")
    dc.deliver(ALICE, yt.make_message(subject="list one"), folder="Lists/dev")
    md = tmp_path / "Mail"
    r = run_yubin(["fetch", "--maildir", str(md), "--folder", "INBOX", "--folder", "Lists/dev"]
                  + imap_args(dc))
    assert b"fetched 4 new message(s)" in r.stdout, r.stdout
    assert maildir_files(md) == sorted(lf(m.data) for m in dc.messages(ALICE))
    assert [b"Subject: list one" in m for m in maildir_files(md / ".Lists.dev")] == [True]
    # nothing changed on Dovecot: all four still there, none \Seen
    assert all("\\Seen" not in m.flags for m in dc.messages(ALICE))
    assert len(dc.messages(ALICE, "Lists/dev")) == 1
    # again over STARTTLS: nothing new; then one new message: only it
    args = ["fetch", "--maildir", str(md)] + imap_args(dc, mode="starttls")
    assert b"fetched 0 new message(s)" in run_yubin(args).stdout
    dc.deliver(ALICE, yt.make_message(subject="dove late"))
    assert b"fetched 1 new message(s)" in run_yubin(args).stdout
    assert len(maildir_files(md)) == 4


def test_imap_fetch_wrong_password_quotes_dovecot(dovecot, tmp_path):
    r = run_yubin(["fetch", "--maildir", str(tmp_path / "M"), "--server",
                   f"imaps://127.0.0.1:{dovecot.ports['imaps']}", "--cafile", dovecot.cafile,
                   "--user", ALICE, "--password-cmd", "echo wrong"], check=False)
    assert r.returncode == 1, r
    assert b"AUTHENTICATIONFAILED" in r.stderr or b"Authentication failed" in r.stderr, r.stderr


def test_imap_remote_commands_on_dovecot(dovecot, tmp_path):
    dc = dovecot
    subj = "=?ISO-2022-JP?B?GyRCJUYlOSVIGyhC?="          # テスト
    dc.deliver(ALICE, yt.make_message(subject=subj, body="hello dovecot\n"))
    dc.deliver(ALICE, yt.make_message(subject="second"), flags="\\Seen")
    dc.create_folder(ALICE, "Archive")
    a = imap_args(dc)
    v = json.loads(run_yubin(["ls", "--json"] + a).stdout)
    assert [m["subject"] for m in v] == ["テスト", "second"]
    assert "S" not in v[0]["flags"] and "S" in v[1]["flags"]
    r = run_yubin(["read", "1"] + a)
    assert "テスト".encode() in r.stdout and b"hello dovecot" in r.stdout
    assert "\\Seen" in dc.messages(ALICE)[0].flags
    run_yubin(["flag", "1", "--set", "flagged", "--clear", "seen"] + a)
    f = dc.messages(ALICE)[0].flags
    assert "\\Flagged" in f and "\\Seen" not in f
    r = run_yubin(["search", "--subject", "テスト", "--json"] + a)
    assert [m["n"] for m in json.loads(r.stdout)] == [1]
    run_yubin(["mv", "2", "Archive"] + a)
    assert [b"Subject: second" in m.data for m in dc.messages(ALICE, "Archive")] == [True]
    run_yubin(["rm", "1"] + a)
    assert dc.messages(ALICE) == []
    folders = {x["name"]: x for x in json.loads(run_yubin(["folders", "--json"] + a).stdout)}
    assert folders["Trash"]["total"] == 1 and folders["Archive"]["total"] == 1
    assert folders["INBOX"]["total"] == 0


def test_imap_scram_sha256_against_dovecot(make_dovecot, tmp_path):
    """Dovecot offering SCRAM-SHA-256: yubin logs in with it (the server's
    signature checked), and a wrong password is refused, not retried with a
    weaker mechanism."""
    dc = make_dovecot(auth_mechanisms="plain login scram-sha-256")
    dc.deliver(ALICE, yt.make_message(subject="scram"))
    md = tmp_path / "M"
    r = run_yubin(["fetch", "--trace", "--maildir", str(md)] + imap_args(dc))
    assert b"AUTHENTICATE SCRAM-SHA-256" in r.stderr, r.stderr
    assert b"fetched 1 new message(s)" in r.stdout
    assert dc.users[ALICE].encode() not in r.stderr
    r = run_yubin(["fetch", "--trace", "--maildir", str(md), "--server",
                   f"imaps://127.0.0.1:{dc.ports['imaps']}", "--cafile", dc.cafile,
                   "--user", ALICE, "--password-cmd", "echo wrong"], check=False)
    assert r.returncode == 1, r
    sent = [l for l in r.stderr.splitlines() if l.startswith(b"C: ")]
    assert sum(b"AUTHENTICATE" in l for l in sent) == 1
    assert not any(b" LOGIN " in l or b"AUTHENTICATE PLAIN" in l for l in sent)
    assert b"said: NO [AUTHENTICATIONFAILED]" in r.stderr
