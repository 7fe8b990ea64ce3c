"""Real clients against yubind: swaks, curl, smtplib, poplib, fetchmail.
Every test compares bytes end to end: what the client sent is exactly the
stored message after our Return-Path and Received lines."""

import os
import shutil
import smtplib
import subprocess

import pytest

import yubintest as yt
from yubintest import crlf, make_message, stored_data
from test_smtp import iso2022jp_message

DEMO = "demo@example.test"
ALICE = "alice@example.test"
BOB = "bob@example.org"
SENDER = "sender@example.net"


def need(tool):
    if shutil.which(tool) is None:
        # `make test` installs every client (scripts/deps.sh); a missing
        # one is a broken set-up, not a reason to pass quietly.
        pytest.fail(f"{tool} not installed (run make test, or apt-get install {tool})")


def run(args, **kw):
    kw.setdefault("timeout", 60)
    r = subprocess.run(args, capture_output=True, **kw)
    assert r.returncode == 0, (f"{args[0]} exited {r.returncode}\n"
                               f"stdout: {r.stdout[-3000:]!r}\nstderr: {r.stderr[-3000:]!r}")
    return r


def eight_bit_message():
    return crlf("From: sender@example.net\nTo: demo@example.test\nSubject: 8bit test\n"
                "MIME-Version: 1.0\nContent-Type: text/plain; charset=UTF-8\n"
                "Content-Transfer-Encoding: 8bit\n\n"
                "Grüße aus Köln. Ça va? 東京タワー。\n.leading dot line\nend\n")


def write(path, data):
    with open(path, "wb") as f:
        f.write(data)
    return path


# ---------------------------------------------------------------- swaks

@pytest.mark.parametrize("tls", [False, True], ids=["plain", "starttls"])
def test_swaks(yubind, tls):
    need("swaks")
    data = eight_bit_message()
    assert b"\\n" not in data and b"%" not in data   # swaks would rewrite these
    # swaks ends the data with CRLF "." CRLF itself: give it no final CRLF
    f = write(os.path.join(yubind.dir, "swaks.eml"), data[:-2])
    args = ["swaks", "--server", f"127.0.0.1:{yubind.smtp_port}", "--helo", "client.example.net",
            "--from", SENDER, "--to", DEMO, "--data", "@" + f, "--timeout", "20"]
    if tls:
        args.append("--tls")
    r = run(args)
    assert b"queued as" in r.stdout
    msgs = yubind.fetch(DEMO)
    assert len(msgs) == 1
    assert stored_data(msgs[0]) == data
    if tls:
        assert b"version=TLSv1." in msgs[0].split(b"\r\n\r\n")[0]


# ----------------------------------------------------------------- curl

@pytest.mark.parametrize("kind", ["ascii", "8bit", "iso2022jp"])
def test_curl_smtp(yubind, kind):
    need("curl")
    data = {"ascii": make_message(subject="curl", body="Hi.\n.dot\n"),
            "8bit": eight_bit_message(),
            "iso2022jp": iso2022jp_message()}[kind]
    f = write(os.path.join(yubind.dir, "curl.eml"), data)
    run(["curl", "-sS", "--max-time", "30", f"smtp://127.0.0.1:{yubind.smtp_port}/client.example.net",
         "--mail-from", SENDER, "--mail-rcpt", DEMO, "--mail-rcpt", BOB,
         "--upload-file", f])
    for u in (DEMO, BOB):
        msgs = yubind.fetch(u)
        assert [stored_data(m) for m in msgs] == [data], u


def test_curl_smtp_starttls(yubind, cert):
    need("curl")
    data = make_message(subject="curl starttls")
    f = write(os.path.join(yubind.dir, "curl.eml"), data)
    run(["curl", "-sS", "--max-time", "30", "--ssl-reqd", "--cacert", cert.cert,
         f"smtp://127.0.0.1:{yubind.smtp_port}/client.example.net",
         "--mail-from", SENDER, "--mail-rcpt", DEMO, "--upload-file", f])
    msg = yubind.fetch(DEMO)[0]
    assert stored_data(msg) == data
    assert b"ESMTPS" in msg.split(b"\r\n\r\n")[0]


def test_curl_pop3(yubind):
    need("curl")
    msgs = [make_message(subject="one"), iso2022jp_message()]
    for m in msgs:
        yubind.send(SENDER, [DEMO], m)
    user = f"{DEMO}:{yt.USERS[DEMO]}"
    url = f"pop3://127.0.0.1:{yubind.pop3_port}/"
    r = run(["curl", "-sS", "--max-time", "30", "--user", user, url])
    listing = r.stdout.decode().split("\r\n")
    assert [l.split()[0] for l in listing if l] == ["1", "2"]
    for i, want in enumerate(msgs, 1):
        r = run(["curl", "-sS", "--max-time", "30", "--user", user, url + str(i)])
        assert stored_data(r.stdout) == want


@pytest.mark.parametrize("verify", [True, False], ids=["cacert", "insecure"])
def test_curl_pop3s(yubind, cert, verify):
    need("curl")
    want = eight_bit_message()
    yubind.send(SENDER, [DEMO], want)
    tls = ["--cacert", cert.cert] if verify else ["-k"]
    r = run(["curl", "-sS", "--max-time", "30", *tls, "--user", f"{DEMO}:{yt.USERS[DEMO]}",
             f"pop3s://127.0.0.1:{yubind.pop3s_port}/1"])
    assert stored_data(r.stdout) == want


@pytest.mark.yubind_conf(plaintext_auth="never")
def test_curl_pop3_stls_required(yubind, cert):
    need("curl")
    want = make_message(subject="stls")
    yubind.send(SENDER, [DEMO], want)
    r = run(["curl", "-sS", "--max-time", "30", "--ssl-reqd", "--cacert", cert.cert,
             "--user", f"{DEMO}:{yt.USERS[DEMO]}", f"pop3://127.0.0.1:{yubind.pop3_port}/1"])
    assert stored_data(r.stdout) == want


def test_curl_pop3_wrong_password(yubind):
    need("curl")
    r = subprocess.run(["curl", "-sS", "--max-time", "30", "--user", f"{DEMO}:nope",
                        f"pop3://127.0.0.1:{yubind.pop3_port}/"], capture_output=True)
    assert r.returncode != 0


# -------------------------------------------------------------- smtplib

def test_smtplib_several_recipients(yubind):
    data = make_message(subject="smtplib several")
    with smtplib.SMTP("127.0.0.1", yubind.smtp_port, timeout=yt.IO_TIMEOUT) as s:
        s.ehlo("client.example.net")
        assert s.does_esmtp and s.has_extn("pipelining")
        assert s.sendmail(SENDER, [DEMO, ALICE, BOB], data) == {}
        assert s.sendmail(SENDER, [ALICE], data) == {}
    assert [stored_data(m) for m in yubind.fetch(DEMO)] == [data]
    assert [stored_data(m) for m in yubind.fetch(ALICE)] == [data, data]
    assert [stored_data(m) for m in yubind.fetch(BOB)] == [data]


def test_smtplib_send_message_8bit(yubind):
    data = eight_bit_message()
    with smtplib.SMTP("127.0.0.1", yubind.smtp_port, timeout=yt.IO_TIMEOUT) as s:
        s.ehlo("client.example.net")
        assert s.has_extn("8bitmime")
        s.sendmail(SENDER, [DEMO], data, mail_options=["BODY=8BITMIME"])
    assert stored_data(yubind.fetch(DEMO)[0]) == data


# ------------------------------------------------------------ fetchmail

def fetchmail(y, user, extra_opts="", ssl_port=None, keep=True):
    """Run fetchmail once with an MDA storing each message in its own file;
    returns the list of delivered byte strings in order."""
    out = os.path.join(y.dir, "fetched")
    os.makedirs(out, exist_ok=True)
    mda = os.path.join(y.dir, "mda.py")
    with open(mda, "w") as f:
        f.write("import os, sys\n"
                f"d = {out!r}\n"
                "n = len(os.listdir(d))\n"
                "with open(os.path.join(d, '%04d' % n), 'wb') as f:\n"
                "    f.write(sys.stdin.buffer.read())\n")
    port = ssl_port or y.pop3_port
    tls = ("ssl no sslcertck" if ssl_port else "sslproto ''")
    rc = os.path.join(y.dir, "fetchmailrc")
    with open(rc, "w") as f:
        f.write(f"set no syslog\nset invisible\n"
                f"poll 127.0.0.1 with proto POP3 port {port} {extra_opts}\n"
                f"  user \"{user}\" there with password \"{yt.USERS[user]}\" is root here\n"
                f"  {'keep' if keep else 'no keep'} fetchall {tls}\n"
                f"  mda \"/usr/bin/python3 {mda}\"\n")
    os.chmod(rc, 0o600)
    env = dict(os.environ, HOME=y.dir, FETCHMAILHOME=y.dir, LC_ALL="C")
    r = subprocess.run(["fetchmail", "-f", rc, "--nosyslog", "--nodetach", "-v"],
                       capture_output=True, env=env, timeout=60)
    # 0 = mail retrieved, 1 = no mail
    assert r.returncode in (0, 1), (r.returncode, r.stdout[-3000:], r.stderr[-3000:])
    return [open(os.path.join(out, n), "rb").read() for n in sorted(os.listdir(out))]


def unix(b):
    return b.replace(b"\r\n", b"\n")


def fetched_data(m):
    """fetchmail hands the MDA LF-terminated lines and may add or rewrite
    headers above ours: return what follows our (Yubin) Received header."""
    lines = unix(m).split(b"\n")
    for i, line in enumerate(lines):
        if line.startswith(b"Received: "):
            j = i + 1
            while lines[j][:1] in (b" ", b"\t"):
                j += 1
            if b"(Yubin)" in b" ".join(lines[i:j]):
                return b"\n".join(lines[j:])
    raise AssertionError(f"no Yubin Received header in {m[:500]!r}")


@pytest.mark.parametrize("pop3s", [False, True], ids=["pop3", "pop3s"])
def test_fetchmail(yubind, pop3s):
    need("fetchmail")
    msgs = [make_message(subject="fm ascii"), eight_bit_message(), iso2022jp_message()]
    for m in msgs:
        yubind.send(SENDER, [DEMO], m)
    got = fetchmail(yubind, DEMO, ssl_port=yubind.pop3s_port if pop3s else None)
    assert len(got) == 3, got
    assert [fetched_data(g) for g in got] == [unix(m) for m in msgs]
    assert len(yubind.fetch(DEMO)) == 3       # keep


def test_fetchmail_no_keep_deletes(yubind):
    need("fetchmail")
    yubind.send(SENDER, [DEMO], make_message(subject="fm delete"))
    got = fetchmail(yubind, DEMO, keep=False)
    assert len(got) == 1
    assert yubind.fetch(DEMO) == []
