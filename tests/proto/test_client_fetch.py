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
    # what the server no longer has is dropped from the state file
    assert (md / ".yubin-uidl").read_text() == ""


def test_fetch_state_pruned_when_the_server_drops_a_message(yubind, cert, tmp_path):
    deliver(yubind, 3)
    md = tmp_path / "Mail"
    args = account_args(yubind, cert, tmp_path) + ["--maildir", str(md), "--keep"]
    yubin_fetch(args)
    assert len((md / ".yubin-uidl").read_text().splitlines()) == 3
    c = yubind.pop3(*DEMO)          # another client deletes the first message
    c.cmd("DELE 1")
    c.quit()
    r = yubin_fetch(args)
    assert b"fetched 0 new message(s)" in r.stdout
    assert len((md / ".yubin-uidl").read_text().splitlines()) == 2


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


def test_ls_read_save_after_fetch(yubind, cert, tmp_path):
    """The fetched Maildir read back: ls (and --json) with decoded From and
    Subject, read renders the ISO-2022-JP body as UTF-8 with escapes
    neutralised, save writes the attachment byte for byte under its own
    name inside the directory given."""
    import base64
    import json
    blob = bytes(range(256)) * 10
    jp = "会議は十時から".encode("iso-2022-jp")
    msg = ("From: =?UTF-8?B?" + base64.b64encode("山田 太郎".encode()).decode() +
           "?= <taro@example.net>\r\nTo: demo@example.test\r\n"
           "Subject: =?ISO-2022-JP?B?" + base64.b64encode("件名".encode("iso-2022-jp")).decode()
           + "?=\r\nDate: Tue, 1 Dec 2026 10:00:00 +0900\r\nMIME-Version: 1.0\r\n"
           "Content-Type: multipart/mixed; boundary=XX\r\n\r\n--XX\r\n"
           "Content-Type: text/plain; charset=ISO-2022-JP\r\n\r\n").encode() + jp + \
        b"\r\nbell\x07 escape\x1b[31m red\r\n--XX\r\n" \
        b"Content-Type: application/octet-stream\r\n" \
        b"Content-Disposition: attachment; filename=\"../../evil.bin\"\r\n" \
        b"Content-Transfer-Encoding: base64\r\n\r\n" + \
        base64.encodebytes(blob).replace(b"\n", b"\r\n") + b"--XX--\r\n"
    yubind.send("taro@example.net", [DEMO[0]], msg)
    yt.wait_until(lambda: pop3_stat(yubind) >= 1, what="the message")
    md = tmp_path / "MR"
    yubin_fetch(account_args(yubind, cert, tmp_path) + ["--maildir", str(md)])
    e = {**yt.sanitizer_env(), **os.environ}
    r = subprocess.run([yt.YUBIN, "ls", "--maildir", str(md)], capture_output=True, env=e,
                       timeout=60)
    assert r.returncode == 0 and "山田 太郎" in r.stdout.decode() and "件名" in r.stdout.decode()
    r = subprocess.run([yt.YUBIN, "ls", "--json", "--maildir", str(md)], capture_output=True,
                       env=e, timeout=60)
    items = json.loads(r.stdout)
    assert len(items) == 1 and items[0]["subject"] == "件名" and items[0]["n"] == 1
    r = subprocess.run([yt.YUBIN, "read", "1", "--maildir", str(md)], capture_output=True,
                       env=e, timeout=60)
    out = r.stdout.decode()
    assert r.returncode == 0 and "会議は十時から" in out and "件名" in out
    assert "\x1b" not in out and "\x07" not in out          # no terminal control
    assert "evil.bin" in out                                 # the attachment is listed
    dest = tmp_path / "saved"
    dest.mkdir()
    r = subprocess.run([yt.YUBIN, "save", "1", "2", str(dest), "--maildir", str(md)],
                       capture_output=True, env=e, timeout=60)
    assert r.returncode == 0, r.stderr
    assert (dest / "evil.bin").read_bytes() == blob          # inside dest, not ../../
    assert not (tmp_path / "evil.bin").exists()


def test_fetch_unreachable_is_temporary(tmp_path):
    port = yt.free_port_on(["127.0.0.1"])
    r = yubin_fetch(["--server", f"127.0.0.1:{port}", "--tls", "tls", "--user", "u",
                     "--password-cmd", "echo x", "--maildir", str(tmp_path / "M")], check=False)
    assert r.returncode == 75 and b"onnection refused" in r.stderr, r
