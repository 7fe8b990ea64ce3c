"""yubin fetch: POP3 (pop3s and STLS) from yubind into a local Maildir,
resuming by UIDL, with and without --keep."""

import os
import poplib
import ssl
import subprocess

import yubintest as yt

DEMO = ("demo@example.test", "demo-Pass-1")


def yubin_fetch(args, env=None, check=True):
    e = dict(os.environ)
    e.pop("XDG_CONFIG_HOME", None)
    e["HOME"] = e.get("HOME", "/root")
    e.update(env or {})
    r = subprocess.run([yt.YUBIN, "fetch"] + args, capture_output=True, stdin=subprocess.DEVNULL,
                       env={**yt.sanitizer_env(), **e}, timeout=60)
    if check and r.returncode != 0:
        raise AssertionError(f"yubin fetch failed ({r.returncode}): {r.stderr.decode()}")
    return r


def pop3_stat(d, user=DEMO):
    p = poplib.POP3_SSL("127.0.0.1", d.ports["pop3s"], timeout=yt.IO_TIMEOUT,
                        context=ssl._create_unverified_context())
    p.user(user[0])
    p.pass_(user[1])
    n = p.stat()[0]
    p.quit()
    return n


def server_messages(d, user=DEMO):
    p = poplib.POP3_SSL("127.0.0.1", d.ports["pop3s"], timeout=yt.IO_TIMEOUT,
                        context=ssl._create_unverified_context())
    p.user(user[0])
    p.pass_(user[1])
    out = [b"".join(l + b"\n" for l in p.retr(i + 1)[1]) for i in range(p.stat()[0])]
    p.quit()
    return out


def deliver(d, n, start=0):
    for i in range(start, start + n):
        body = f"Message {i}.\n.leading dot line\n..two dots\nend\n"
        d.send("sender@example.net", [DEMO[0]], yt.make_message(subject=f"m{i}", body=body))
    yt.wait_until(lambda: pop3_stat(d) >= start + n, what=f"{start + n} messages for demo")


def new_files(md):
    nd = md / "new"
    return sorted((p.read_bytes() for p in nd.iterdir()), key=lambda b: b) if nd.exists() else []


def account_args(d, cert, tmp_path, mode="tls", password=DEMO[1]):
    pw = tmp_path / f"pw-{mode}-{len(password)}"
    pw.write_text(password + "\n")
    port = d.ports["pop3s"] if mode == "tls" else d.ports["pop3"]
    return ["--server", f"127.0.0.1:{port}", "--tls", mode, "--cafile", cert.cert,
            "--user", DEMO[0], "--password-cmd", f"cat {pw}"]


def test_fetch_keep_resumes_by_uidl_then_deletes(yubind, cert, tmp_path):
    deliver(yubind, 3)
    want = sorted(server_messages(yubind))
    assert all(b"\r" not in m for m in want) and len(want) == 3
    md = tmp_path / "Mail"
    args = account_args(yubind, cert, tmp_path) + ["--maildir", str(md)]
    r = yubin_fetch(["--keep"] + args)
    assert f"fetched 3 new message(s) into {md}".encode() in r.stdout
    got = new_files(md)
    assert got == want                         # exact bytes, LF line ends, dots unstuffed
    assert any(b"\n.leading dot line\n..two dots\n" in m for m in got)
    assert list((md / "tmp").iterdir()) == [] and (md / "cur").is_dir()
    assert len((md / ".yubin-uidl").read_text().splitlines()) == 3
    assert pop3_stat(yubind) == 3              # --keep: still on the server
    # again: nothing new
    r = yubin_fetch(["--keep"] + args)
    assert b"fetched 0 new message(s)" in r.stdout
    assert len(new_files(md)) == 3
    # a fourth: only it
    deliver(yubind, 1, start=3)
    r = yubin_fetch(["--keep"] + args)
    assert b"fetched 1 new message(s)" in r.stdout
    assert new_files(md) == sorted(server_messages(yubind))
    # without --keep: nothing new fetched, but the server's copies go
    r = yubin_fetch(args)
    assert b"fetched 0 new message(s)" in r.stdout
    assert pop3_stat(yubind) == 0
    assert len(new_files(md)) == 4


def test_fetch_without_keep_empties_mailbox(yubind, cert, tmp_path):
    deliver(yubind, 2)
    want = sorted(server_messages(yubind))
    md = tmp_path / "M2"
    r = yubin_fetch(account_args(yubind, cert, tmp_path) + ["--maildir", str(md)])
    assert b"fetched 2 new message(s)" in r.stdout
    assert new_files(md) == want
    assert pop3_stat(yubind) == 0


def test_fetch_over_stls(yubind, cert, tmp_path):
    deliver(yubind, 1)
    want = server_messages(yubind)
    md = tmp_path / "M3"
    r = yubin_fetch(account_args(yubind, cert, tmp_path, mode="starttls") +
                    ["--keep", "--maildir", str(md)])
    assert b"fetched 1 new message(s)" in r.stdout
    assert new_files(md) == want


def test_fetch_wrong_password_quotes_server(yubind, cert, tmp_path):
    md = tmp_path / "M4"
    r = yubin_fetch(account_args(yubind, cert, tmp_path, password="wrong-Pass-9") +
                    ["--maildir", str(md)], check=False)
    assert r.returncode == 1
    assert b"-ERR" in r.stderr and b"PASS refused" in r.stderr, r.stderr


def test_fetch_imap_account_not_implemented(tmp_path):
    conf = tmp_path / "yubin"
    conf.mkdir()
    (conf / "client.conf").write_text(
        "[account a]\naddress = demo@example.test\nsmtp = 127.0.0.1:587\n"
        "incoming = imaps://127.0.0.1\npassword_cmd = echo x\n")
    os.chmod(conf / "client.conf", 0o600)
    r = yubin_fetch([], env={"XDG_CONFIG_HOME": str(tmp_path)}, check=False)
    assert r.returncode == 1 and b"IMAP fetch is not implemented yet" in r.stderr


def test_fetch_bad_usage():
    r = yubin_fetch(["--tls", "maybe"], check=False)
    assert r.returncode == 2 and b"--tls is starttls, tls or none" in r.stderr


def test_fetch_long_lines(yubind, cert, tmp_path):
    """Message lines past the status-line cap (base64 without breaks, one-line
    HTML) come through whole: 20,000 bytes here."""
    long_line = "x" * 20000
    yubind.send("sender@example.net", [DEMO[0]],
                yt.make_message(subject="long", body=long_line + "\nshort\n"))
    yt.wait_until(lambda: pop3_stat(yubind) >= 1, what="the long message")
    md = tmp_path / "M9"
    r = yubin_fetch(account_args(yubind, cert, tmp_path) + ["--keep", "--maildir", str(md)])
    assert b"fetched 1 new message(s)" in r.stdout
    got = new_files(md)
    assert len(got) == 1 and (long_line + "\nshort\n").encode() in got[0]


def test_fetch_apop_without_tls(yubind, tmp_path):
    """--tls none and a server timestamp: APOP (the password never crosses
    the wire); alice has an APOP secret in the test template."""
    alice = ("alice@example.test", yt.APOP_SECRETS["alice@example.test"])
    yubind.send("sender@example.net", [alice[0]],
                yt.make_message(subject="apop", to=alice[0], body="over APOP\n"))
    pw = tmp_path / "apop"
    pw.write_text(alice[1] + "\n")
    md = tmp_path / "MA"
    yt.wait_until(lambda: pop3_stat(yubind, ("alice@example.test", "alice-Pass-2")) >= 1,
                  what="alice's mail")
    r = yubin_fetch(["--server", f"127.0.0.1:{yubind.ports['pop3']}", "--tls", "none",
                     "--user", alice[0], "--password-cmd", f"cat {pw}", "--keep",
                     "--maildir", str(md)])
    assert b"fetched 1 new message(s)" in r.stdout
    yubind.wait_log(r"pop3: login user=alice@example\.test method=APOP")
    assert b"over APOP" in new_files(md)[0]
