"""yubin send: the message it composes (parsed back with Python's email
package) and its submission to yubind (read back over POP3)."""

import email
import email.policy
import os
import poplib
import ssl
import subprocess

import yubintest as yt

DEMO = ("demo@example.test", "demo-Pass-1")
ALICE = ("alice@example.test", "alice-Pass-2")
BOB = ("bob@example.org", "bob-Pass-3")


def yubin_send(args, body, env=None, check=True):
    e = dict(os.environ)
    e.pop("XDG_CONFIG_HOME", None)
    e["HOME"] = e.get("HOME", "/root")
    e.update(env or {})
    r = subprocess.run([yt.YUBIN, "send"] + args, input=body, capture_output=True,
                       env={**yt.sanitizer_env(), **e}, timeout=60)
    if check and r.returncode != 0:
        raise AssertionError(f"yubin send failed ({r.returncode}): {r.stderr.decode()}")
    return r


def parse(raw):
    return email.message_from_bytes(raw, policy=email.policy.default)


def pop3_messages(d, user):
    p = poplib.POP3_SSL("127.0.0.1", d.ports["pop3s"], timeout=yt.IO_TIMEOUT,
                        context=ssl._create_unverified_context())
    p.user(user[0])
    p.pass_(user[1])
    out = [b"\r\n".join(p.retr(i + 1)[1]) for i in range(len(p.list()[1]))]
    p.quit()
    return out


def test_dry_run_composes_mime_that_parses_back(tmp_path):
    blob = bytes(range(256)) * 40
    (tmp_path / "データ.bin").write_bytes(blob)
    (tmp_path / "page.html").write_text("<p>Hello <b>HTML</b></p>\n")
    body = "Grüße, 山田さん.\n" + "long line " * 30 + "\n.\nend\n"
    r = yubin_send(["--dry-run", "--from", "demo@example.test", "--name", "Démo Ützer",
                    "--to", "alice@example.test", "--cc", "bob@example.org",
                    "--bcc", "secret@example.org", "--subject", "件名: テスト ünïcödé",
                    "--html", str(tmp_path / "page.html"),
                    "--attach", str(tmp_path / "データ.bin")], body.encode())
    raw = r.stdout
    assert all(b < 0x80 for b in raw), "the message is 7-bit"
    assert max(len(l) for l in raw.split(b"\r\n")) <= 998
    assert b"secret@example.org" not in raw            # Bcc only in the envelope
    m = parse(raw)
    assert m["Subject"] == "件名: テスト ünïcödé"
    assert m["From"].addresses[0].display_name == "Démo Ützer"
    assert m["From"].addresses[0].addr_spec == "demo@example.test"
    assert m["To"] == "alice@example.test" and m["Cc"] == "bob@example.org"
    assert m["Message-ID"].endswith("@example.test>") and m["Date"]
    assert m.get_content_type() == "multipart/mixed"
    alt, att = list(m.iter_parts())
    assert alt.get_content_type() == "multipart/alternative"
    plain, html = list(alt.iter_parts())
    assert plain.get_content().replace("\r\n", "\n") == body
    assert "<b>HTML</b>" in html.get_content()
    assert att.get_filename() == "データ.bin"
    assert att.get_content() == blob                    # byte-identical


def test_dry_run_iso_2022_jp():
    r = yubin_send(["--dry-run", "--from", "demo@example.test", "--to", "alice@example.test",
                    "--subject", "会議の件", "--charset", "iso-2022-jp"],
                   "明日の会議は十時からです。\n".encode())
    m = parse(r.stdout)
    assert m.get_content_charset() == "iso-2022-jp"
    assert b"\x1b$B" in r.stdout                        # JIS X 0208 escape, 7-bit
    assert "=?ISO-2022-JP?B?" in r.stdout.decode().upper()
    assert m["Subject"] == "会議の件"
    assert m.get_content().replace("\r\n", "\n") == "明日の会議は十時からです。\n"


def test_bad_usage_and_unrepresentable_charset():
    r = yubin_send(["--dry-run", "--from", "demo@example.test"], b"x\n", check=False)
    assert r.returncode == 2 and b"no recipient" in r.stderr
    r = yubin_send(["--dry-run", "--from", "demo@example.test", "--to", "a@example.test",
                    "--charset", "iso-2022-jp"], "Jörg\n".encode(), check=False)
    assert r.returncode == 1 and b"cannot make the message" in r.stderr


def test_send_over_starttls_with_bcc(yubind, cert, tmp_path):
    pw = tmp_path / "pw"
    pw.write_text(DEMO[1] + "\n")
    r = yubin_send(["--server", f"127.0.0.1:{yubind.ports['submission']}", "--tls", "starttls",
                    "--cafile", cert.cert, "--user", DEMO[0], "--password-cmd", f"cat {pw}",
                    "--from", DEMO[0], "--to", ALICE[0], "--bcc", BOB[0],
                    "--subject", "über yubin send"], "Hallo Alice.\n".encode())
    assert b"sent to 2 recipient(s)" in r.stdout
    yubind.wait_log(r"AUTH SCRAM-SHA-256 user=demo@example\.test")
    for user in (ALICE, BOB):
        got = yt.wait_until(lambda: pop3_messages(yubind, user), what=f"mail for {user[0]}")
        m = parse(got[0])
        assert m["Subject"] == "über yubin send"
        assert "Bcc" not in m and b"bob@example.org" not in got[0].split(b"\r\n\r\n")[0]
        assert m.get_content().replace("\r\n", "\n").rstrip("\n") == "Hallo Alice."


def test_send_with_account_file_and_server_reply_quoted(yubind, cert, tmp_path):
    conf = tmp_path / "yubin"
    conf.mkdir()
    pw = tmp_path / "pw"
    pw.write_text(DEMO[1] + "\n")
    (conf / "client.conf").write_text(
        "[account home]\n"
        "default = yes\n"
        "name = Demo User\n"
        "address = demo@example.test\n"
        f"smtp = 127.0.0.1:{yubind.ports['submissions']}\n"
        "smtp_tls = tls\n"
        f"cafile = {cert.cert}\n"
        f"password_cmd = cat {pw}\n")
    os.chmod(conf / "client.conf", 0o600)
    env = {"XDG_CONFIG_HOME": str(tmp_path)}
    yubin_send(["--to", ALICE[0], "--subject", "from the account"], b"Body.\n", env=env)
    got = yt.wait_until(lambda: pop3_messages(yubind, ALICE), what="mail for alice")
    assert parse(got[0])["From"].addresses[0].display_name == "Demo User"
    # a recipient the server refuses: the error quotes its reply, nothing is sent
    r = yubin_send(["--to", "nobody@example.test", "--subject", "x"], b"x\n", env=env,
                   check=False)
    assert r.returncode == 1 and b"550 5.1.1" in r.stderr


def account_env(yubind, cert, tmp_path):
    conf = tmp_path / "yubin"
    conf.mkdir(exist_ok=True)
    pw = tmp_path / "pw"
    pw.write_text(DEMO[1] + "\n")
    (conf / "client.conf").write_text(
        "[account home]\n"
        "name = Demo User\n"
        "address = demo@example.test\n"
        f"smtp = 127.0.0.1:{yubind.ports['submission']}\n"
        f"cafile = {cert.cert}\n"
        f"password_cmd = cat {pw}\n")
    os.chmod(conf / "client.conf", 0o600)
    return {"XDG_CONFIG_HOME": str(tmp_path)}


def test_sendmail_t_and_symlink_name(yubind, cert, tmp_path):
    """The classic interface programs use: -t takes the recipients from To,
    Cc and Bcc, Bcc is removed, From/Date/Message-ID are added when missing;
    recipients as arguments; the same binary called "sendmail"."""
    env = account_env(yubind, cert, tmp_path)
    msg = (b"To: alice@example.test\nBcc: bob@example.org\nSubject: from cron\n\n"
           b"job done\n.\nstill body\n")
    e = {**yt.sanitizer_env(), **os.environ, **env}
    r = subprocess.run([yt.YUBIN, "sendmail", "-t", "-oi"], input=msg, capture_output=True,
                       env=e, timeout=60)
    assert r.returncode == 0, r.stderr
    for user in (ALICE, BOB):
        got = yt.wait_until(lambda: pop3_messages(yubind, user), what=f"mail for {user[0]}")
        m = parse(got[0])
        assert m["Subject"] == "from cron"
        assert "Bcc" not in m and m["Date"] and m["Message-ID"]
        assert m["From"].addresses[0].addr_spec == "demo@example.test"
        assert "job done\n.\nstill body" in m.get_content().replace("\r\n", "\n")
    link = tmp_path / "sendmail"
    os.symlink(yt.YUBIN, link)
    r = subprocess.run([str(link), "-f", "demo@example.test", "alice@example.test"],
                       input=b"Subject: second\n\nvia the symlink name\n", capture_output=True,
                       env=e, timeout=60)
    assert r.returncode == 0, r.stderr
    yt.wait_until(lambda: len(pop3_messages(yubind, ALICE)) == 2, what="second mail")
    # no recipients at all: usage error (EX_USAGE), nothing sent
    r = subprocess.run([yt.YUBIN, "sendmail"], input=b"Subject: x\n\nx\n",
                       capture_output=True, env=e, timeout=60)
    assert r.returncode == 64 and b"no recipients" in r.stderr


def test_editor_file_in_tmpdir(tmp_path):
    """With a terminal on stdin, yubin send opens $EDITOR on a private file
    under $TMPDIR (as mktemp(1) would), sends what the editor saved and
    removes the file afterwards."""
    import pty
    tmpdir = tmp_path / "tmp"
    tmpdir.mkdir()
    log = tmp_path / "editor.log"
    editor = tmp_path / "editor.sh"
    editor.write_text(f'#!/bin/sh\necho "$1" > {log}\nstat -c %a "$1" >> {log}\n'
                      'printf "Written in the editor.\\n" > "$1"\n')
    editor.chmod(0o755)
    master, slave = pty.openpty()
    e = {**os.environ, **yt.sanitizer_env(), "EDITOR": str(editor), "TMPDIR": str(tmpdir)}
    e.pop("VISUAL", None)
    r = subprocess.run([yt.YUBIN, "send", "--dry-run", "--from", "demo@example.test",
                        "--to", "alice@example.test", "--subject", "ed"], stdin=slave,
                       capture_output=True, env=e, timeout=60)
    os.close(slave)
    os.close(master)
    assert r.returncode == 0, r.stderr
    path, mode = log.read_text().split()
    assert os.path.dirname(path) == str(tmpdir) and mode == "600"
    assert not os.path.exists(path)
    assert parse(r.stdout).get_content().rstrip() == "Written in the editor."
