"""The blocking submission client (src/client/smtp_submit.c) against yubind.

submit_tool (built in $YUBIN_BUILD/src/client, not installed) is the
client's command-line front end: it submits one message read from stdin and
prints the reason on failure (exit 1).  Each test runs it against the
yubind fixture's submission listeners (STARTTLS on "submission", implicit
TLS on "submissions") with the session's self-signed test certificate, and
reads the result back over POP3 with poplib.  --trace shows the client's
side of the dialogue (SASL payloads redacted), which is how the tests see
the MAIL parameters the client chose.

A small scripted server (FakeSmtp) stands in for servers yubind cannot
imitate: one without STARTTLS, one without 8BITMIME.
"""

import base64
import hashlib
import hmac
import os
import poplib
import re
import socket
import ssl
import subprocess
import threading

import pytest

import yubintest as yt

SUBMIT_TOOL = os.path.join(yt.BUILD, "src", "client", "submit_tool")
DEMO = "demo@example.test"
ALICE = "alice@example.test"


@pytest.fixture(autouse=True)
def _tool():
    if not os.access(SUBMIT_TOOL, os.X_OK):
        pytest.fail(f"{SUBMIT_TOOL} not built (set YUBIN_BUILD)", pytrace=False)


@pytest.fixture
def pwfile(tmp_path):
    def make(pw):
        p = tmp_path / "pw"
        p.write_text(pw + "\n")
        return str(p)
    return make


def submit(port, msg, *, tls="starttls", user=DEMO, password=None, pwfile=None,
           sender=DEMO, to=(ALICE,), extra=(), trace=True):
    args = [SUBMIT_TOOL, "--server", f"127.0.0.1:{port}", "--tls", tls,
            "--from", sender, "--timeout", "20"]
    for r in to:
        args += ["--to", r]
    if user is not None and pwfile is not None:
        args += ["--user", user, "--password-file",
                 pwfile(password if password is not None else yt.USERS[user])]
    if trace:
        args.append("--trace")
    args += list(extra)
    r = subprocess.run(args, input=msg, capture_output=True, env=yt.sanitizer_env(),
                       timeout=90)
    err = r.stderr.decode("utf-8", "replace")
    for mark in yt.SANITIZER_MARKS:
        assert mark not in err, f"sanitizer report from submit_tool:\n{err}"
    return r.returncode, err


def fingerprint(cert, colons=True, upper=True):
    with open(cert.cert) as f:
        der = ssl.PEM_cert_to_DER_cert(f.read())
    h = hashlib.sha256(der).hexdigest()
    h = h.upper() if upper else h
    return ":".join(h[i:i + 2] for i in range(0, len(h), 2)) if colons else h


def pop3_messages(d, user):
    # POP3S: plaintext_auth=never refuses USER/PASS in clear
    p = poplib.POP3_SSL("127.0.0.1", d.pop3s_port, timeout=yt.IO_TIMEOUT,
                        context=d.cert.client_context())
    try:
        p.user(user)
        p.pass_(yt.USERS[user])
        n = len(p.list()[1])
        return [b"\r\n".join(p.retr(i + 1)[1]) + b"\r\n" for i in range(n)]
    finally:
        p.quit()


def body_of(stored):
    return stored.split(b"\r\n\r\n", 1)[1]


def mail_line(trace):
    m = re.search(r"^C: (MAIL FROM:.*)$", trace, re.M)
    assert m, f"no MAIL FROM in the trace:\n{trace}"
    return m.group(1)


def assert_nothing_sent(d):
    assert pop3_messages(d, ALICE) == []
    log = d.log()
    assert not re.search(r"smtp: AUTH \S+ user=", log), log[-3000:]
    assert "from=<" not in log, log[-3000:]


# A body that needs dot-stuffing and CR LF normalisation: given with bare
# LFs, a bare CR, a line that is a lone dot, lines starting with dots.
TRICKY_BODY = "line one\n.\n..two dots\n.leading dot\nbare\rcr\nlast line without end"
TRICKY_WIRE = (b"line one\r\n.\r\n..two dots\r\n.leading dot\r\nbare\r\ncr\r\n"
               b"last line without end\r\n")


def wire(msg):
    """msg as RFC 1870 SIZE counts it: CR LF line ends, one added at the end."""
    w = msg.replace(b"\r\n", b"\n").replace(b"\r", b"\n").replace(b"\n", b"\r\n")
    return w if w.endswith(b"\r\n") else w + b"\r\n"


def tricky_message(subject):
    hdr = f"From: {DEMO}\nTo: {ALICE}\nSubject: {subject}\nMessage-ID: <{subject}@client>\n\n"
    return (hdr + TRICKY_BODY).encode()


def test_starttls_with_cafile_delivers(yubind, cert, pwfile):
    rc, err = submit(yubind.ports["submission"], tricky_message("starttls"), pwfile=pwfile,
                     extra=["--cafile", cert.cert])
    assert rc == 0, err
    assert "C: STARTTLS" in err and "* TLS: TLSv1." in err
    # EHLO again after STARTTLS, AUTH only after TLS
    assert err.index("* TLS:") < err.index("C: AUTH")
    assert err.count("C: EHLO ") == 2
    msgs = pop3_messages(yubind, ALICE)
    assert len(msgs) == 1
    assert body_of(msgs[0]) == TRICKY_WIRE
    assert b"\r\nSubject: starttls\r\n" in msgs[0]
    # a 7-bit message with ASCII addresses: SIZE only
    line = mail_line(err)
    assert line == f"MAIL FROM:<{DEMO}> SIZE={len(wire(tricky_message('starttls')))}", line


@pytest.mark.parametrize("colons,upper", [(True, True), (False, False)])
def test_implicit_tls_with_pin(yubind, cert, pwfile, colons, upper):
    rc, err = submit(yubind.ports["submissions"], tricky_message("pinned"), tls="tls",
                     pwfile=pwfile, extra=["--pin", fingerprint(cert, colons, upper)])
    assert rc == 0, err
    assert "C: STARTTLS" not in err
    assert err.index("* TLS:") < err.index("S: 220 ")   # TLS before the greeting
    msgs = pop3_messages(yubind, ALICE)
    assert len(msgs) == 1 and body_of(msgs[0]) == TRICKY_WIRE


def test_wrong_pin_refused(yubind, cert, pwfile):
    wrong = "AB" * 32
    rc, err = submit(yubind.ports["submissions"], tricky_message("wrongpin"), tls="tls",
                     pwfile=pwfile, extra=["--pin", wrong])
    assert rc == 1
    assert "TLS: certificate fingerprint mismatch" in err, err
    assert fingerprint(cert) in err                     # tells the real one
    assert "S: 220" not in err
    assert_nothing_sent(yubind)


@pytest.mark.parametrize("mode", ["starttls", "tls"])
def test_wrong_ca_refused_nothing_sent(yubind, pwfile, mode):
    other = yt.Cert()             # a different self-signed certificate as the CA
    try:
        port = yubind.ports["submission" if mode == "starttls" else "submissions"]
        rc, err = submit(port, tricky_message("wrongca"), tls=mode, pwfile=pwfile,
                         extra=["--cafile", other.cert])
    finally:
        other.cleanup()
    assert rc == 1
    msg = err.strip().splitlines()[-1]
    assert msg == ("submit_tool: TLS: certificate verify failed: self-signed certificate "
                   "(use --cafile or a pinned fingerprint)"), err
    assert "C: AUTH" not in err and "C: MAIL" not in err
    assert_nothing_sent(yubind)


def test_system_store_does_not_trust_test_cert(yubind, pwfile):
    rc, err = submit(yubind.ports["submission"], tricky_message("nocafile"), pwfile=pwfile)
    assert rc == 1
    assert "TLS: certificate verify failed: self-signed certificate" in err, err
    assert_nothing_sent(yubind)


def test_wrong_password_quotes_535(yubind, cert, pwfile):
    rc, err = submit(yubind.ports["submission"], tricky_message("wrongpw"), pwfile=pwfile,
                     password="not-the-password", extra=["--cafile", cert.cert])
    assert rc == 1
    msg = err.strip().splitlines()[-1]
    assert re.match(r"submit_tool: AUTH SCRAM-SHA-256 as demo@example\.test refused: "
                    r"server said: 535 5\.7\.8 ", msg), err
    assert "C: MAIL" not in err
    assert_nothing_sent(yubind)


@pytest.mark.yubind_conf(plaintext_auth="never")
def test_tls_none_to_server_requiring_tls(yubind, pwfile):
    rc, err = submit(yubind.ports["submission"], tricky_message("cleartext"), tls="none",
                     pwfile=pwfile)
    assert rc == 1
    assert "offers no AUTH without TLS" in err.splitlines()[-1], err
    assert "C: STARTTLS" not in err
    # the password never went out: no AUTH command at all
    assert "C: AUTH" not in err and "C: MAIL" not in err
    assert_nothing_sent(yubind)


def test_scram_sha_256_used(yubind, cert, pwfile):
    mark = yubind.log_mark()
    rc, err = submit(yubind.ports["submission"], tricky_message("scram"), pwfile=pwfile,
                     extra=["--cafile", cert.cert])
    assert rc == 0, err
    yubind.wait_log(r"smtp: AUTH SCRAM-SHA-256 user=demo@example\.test from \[127\.0\.0\.1\]",
                    since=mark)
    assert "C: AUTH SCRAM-SHA-256 <redacted>" in err
    assert "S: 334 <redacted>" in err
    assert "S: 235 " in err
    assert yt.USERS[DEMO] not in err


def test_8bit_body_uses_8bitmime(yubind, cert, pwfile):
    body = "Grüße aus Köln — ＵＴＦ-8\n"
    msg = (f"From: {DEMO}\nTo: {ALICE}\nSubject: 8bit\nMIME-Version: 1.0\n"
           f"Content-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: 8bit\n\n"
           f"{body}").encode()
    rc, err = submit(yubind.ports["submission"], msg, pwfile=pwfile,
                     extra=["--cafile", cert.cert])
    assert rc == 0, err
    line = mail_line(err)
    assert re.fullmatch(rf"MAIL FROM:<{re.escape(DEMO)}> SIZE=\d+ BODY=8BITMIME", line), line
    msgs = pop3_messages(yubind, ALICE)
    assert len(msgs) == 1
    assert body_of(msgs[0]) == body.replace("\n", "\r\n").encode()


def test_rejected_recipient_quotes_550_and_sends_nothing(yubind, cert, pwfile):
    rc, err = submit(yubind.ports["submission"], tricky_message("rcpt"), pwfile=pwfile,
                     to=(ALICE, "nobody@example.test"), extra=["--cafile", cert.cert])
    assert rc == 1
    msg = err.strip().splitlines()[-1]
    assert msg.startswith("submit_tool: RCPT TO:<nobody@example.test> refused: server said: "
                          "550 5.1.1 "), err
    # PIPELINING: MAIL and both RCPTs before the first reply
    c = err.splitlines()
    i = c.index(next(l for l in c if l.startswith("C: MAIL")))
    assert c[i + 1].startswith("C: RCPT TO:<alice@") and c[i + 2].startswith("C: RCPT")
    # all or nothing: alice, who was accepted, gets nothing either
    assert "C: DATA" not in err
    assert pop3_messages(yubind, ALICE) == []


def test_connect_refused_message():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()                       # nothing listens there now
    rc, err = submit(port, b"x\n", trace=False)
    assert rc == 1
    assert err.strip() == f"submit_tool: connect to 127.0.0.1:{port}: Connection refused"


# ------------------------------------------------------------ fake server ----

class FakeSmtp:
    """One connection: greets, answers EHLO with ehlo_lines, 250 to the
    rest, 221 to QUIT; records every line the client sent.  With creds
    (user, password) it runs AUTH PLAIN, LOGIN and CRAM-MD5 and checks
    what it got: self.auth is then (mechanism, credentials right)."""

    CHALLENGE = b"<1896.697170952@fake.example>"

    def __init__(self, ehlo_lines, creds=None):
        self.ehlo_lines = ehlo_lines
        self.creds = creds
        self.auth = None
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(1)
        self.sock.settimeout(yt.IO_TIMEOUT)
        self.port = self.sock.getsockname()[1]
        self.got = []
        self.t = threading.Thread(target=self.run, daemon=True)
        self.t.start()

    def run(self):
        c, _ = self.sock.accept()
        c.settimeout(yt.IO_TIMEOUT)
        f = c.makefile("rwb")
        f.write(b"220 fake.example ESMTP\r\n")
        f.flush()
        try:
            for raw in f:
                line = raw.decode().rstrip("\r\n")
                self.got.append(line)
                verb = line.split(" ")[0].upper()
                if verb == "EHLO":
                    lines = ["fake.example"] + self.ehlo_lines
                    out = "".join(f"250-{l}\r\n" for l in lines[:-1]) + f"250 {lines[-1]}\r\n"
                    f.write(out.encode())
                elif verb == "AUTH" and self.creds:
                    f.write(self.sasl(f, line.split(" ")[1:]))
                elif verb == "DATA":
                    f.write(b"354 Go ahead\r\n")
                    f.flush()
                    for _ in range(10000):
                        if f.readline() == b".\r\n":
                            break
                    self.got.append(".")
                    f.write(b"250 2.0.0 Ok: queued\r\n")
                elif verb == "QUIT":
                    f.write(b"221 2.0.0 Bye\r\n")
                    f.flush()
                    break
                else:
                    f.write(b"250 2.0.0 Ok\r\n")
                f.flush()
        except OSError:
            pass
        finally:
            c.close()

    def sasl(self, f, args):
        def ask(challenge):
            f.write(b"334 " + base64.b64encode(challenge) + b"\r\n")
            f.flush()
            raw = f.readline().rstrip(b"\r\n")
            self.got.append("<sasl>")
            return base64.b64decode(raw)
        user, pw = (x.encode() for x in self.creds)
        mech = args[0].upper()
        if mech == "PLAIN":
            ok = base64.b64decode(args[1]) == b"\0" + user + b"\0" + pw
        elif mech == "LOGIN":
            ok = ask(b"Username:") == user and ask(b"Password:") == pw
        elif mech == "CRAM-MD5":
            want = user + b" " + hmac.new(pw, self.CHALLENGE, "md5").hexdigest().encode()
            ok = ask(self.CHALLENGE) == want
        else:
            return b"504 5.5.4 Unrecognized authentication type\r\n"
        self.auth = (mech, ok)
        return b"235 2.7.0 Ok\r\n" if ok else b"535 5.7.8 Bad credentials\r\n"

    def close(self):
        self.t.join(timeout=yt.DEADLINE)
        self.sock.close()


def test_starttls_mode_refuses_server_without_starttls(pwfile):
    srv = FakeSmtp(["PIPELINING", "8BITMIME", "AUTH PLAIN LOGIN"])
    try:
        rc, err = submit(srv.port, tricky_message("nostarttls"), pwfile=pwfile)
    finally:
        srv.close()
    assert rc == 1
    assert f"127.0.0.1:{srv.port} does not offer STARTTLS: not going on without TLS" in err, err
    assert [l.split()[0] for l in srv.got] == ["EHLO"]   # no AUTH, no password


def test_8bit_needs_8bitmime(pwfile):
    srv = FakeSmtp(["PIPELINING", "SIZE 100000"])
    try:
        rc, err = submit(srv.port, "Subject: x\n\nGrüße\n".encode(), tls="none", user=None)
    finally:
        srv.close()
    assert rc == 1
    assert "does not offer 8BITMIME (RFC 6152): the message needs 8BITMIME" in err, err
    assert [l.split()[0] for l in srv.got] == ["EHLO", "QUIT"]


def test_utf8_address_needs_smtputf8():
    srv = FakeSmtp(["8BITMIME"])
    try:
        rc, err = submit(srv.port, b"Subject: x\n\nhi\n", tls="none", user=None,
                         to=("jürgen@example.test",))
    finally:
        srv.close()
    assert rc == 1
    assert "does not offer SMTPUTF8" in err, err
    assert not any(l.startswith("MAIL") for l in srv.got)


@pytest.mark.parametrize("offered,chosen", [
    ("LOGIN PLAIN CRAM-MD5", "CRAM-MD5"),
    ("LOGIN PLAIN", "PLAIN"),
    ("LOGIN", "LOGIN"),
])
def test_strongest_mechanism_offered(pwfile, offered, chosen):
    """SCRAM-SHA-256 is yubind's (above); the others against a scripted server
    (--tls none: it has no TLS)."""
    pw = yt.USERS[DEMO]
    srv = FakeSmtp(["PIPELINING", "AUTH " + offered], creds=(DEMO, pw))
    try:
        rc, err = submit(srv.port, b"Subject: x\n\nhi\n", tls="none", pwfile=pwfile)
    finally:
        srv.close()
    assert rc == 0, err
    assert srv.auth == (chosen, True)
    assert f"C: AUTH {chosen}" in err
    assert pw not in err and base64.b64encode(pw.encode()).decode() not in err
    assert [l.split()[0] for l in srv.got if not l.startswith("<")][-4:] == \
        ["RCPT", "DATA", ".", "QUIT"]


def test_large_message_chunk_boundaries(yubind, cert, pwfile):
    """~1.5 MB: the body goes out in 64 KiB pieces; CR LF pairs, bare LFs and
    lines of dots land on every side of the piece boundaries."""
    import random
    rnd = random.Random(5)
    parts = []
    for i in range(30000):
        line = "." * rnd.randrange(0, 3) + "x" * rnd.randrange(0, 90)
        parts.append(line + rnd.choice(["\r\n", "\n", "\r\n", "\r\n"]))
    body = "".join(parts).encode()
    msg = f"From: {DEMO}\r\nTo: {ALICE}\r\nSubject: large\r\n\r\n".encode() + body
    rc, err = submit(yubind.ports["submission"], msg, pwfile=pwfile, trace=False,
                     extra=["--cafile", cert.cert])
    assert rc == 0, err
    msgs = pop3_messages(yubind, ALICE)
    assert len(msgs) == 1
    assert body_of(msgs[0]) == wire(body)


def test_postfix_interop(cert):
    """A real Postfix (postfixpeer; needs root like test_postfix.py): STARTTLS
    with the test certificate as CA, no AUTH (port 25 role), PIPELINING, an
    8-bit body, a dot line; then a recipient Postfix refuses."""
    import postfixpeer as pp
    pf = pp.Postfix("127.0.0.1", vdomain="p.example", mailboxes=("u",),
                    tls=(cert.cert, cert.key))
    try:
        pf.start()
        msg = "From: a@x.example\nTo: u@p.example\nSubject: pf\n\n.dot\nGrüße\n".encode()
        rc, err = submit(pf.port, msg, user=None, sender="a@x.example", to=("u@p.example",),
                         extra=["--cafile", cert.cert])
        assert rc == 0, err
        assert "BODY=8BITMIME" in mail_line(err)
        got = pf.wait_messages("u")[0]        # Maildir: LF line ends
        assert got.endswith("\n\n.dot\nGrüße\n".encode()), got
        rc, err = submit(pf.port, msg, user=None, sender="a@x.example",
                         to=("nobody@p.example",), extra=["--cafile", cert.cert])
        assert rc == 1
        assert ("RCPT TO:<nobody@p.example> refused: server said: 550 5.1.1 "
                "<nobody@p.example>: Recipient address rejected") in err, err
    finally:
        pf.stop()
        pf.cleanup()


def test_postfix_accepts_what_yubin_composes(cert, tmp_path):
    """yubin send's own message (ISO-2022-JP subject and display name, an
    attachment, a 2000-byte line) through a real Postfix: accepted, and
    delivered so that Python's email reads it back the same."""
    import email
    import email.policy
    import postfixpeer as pp
    att = tmp_path / "表.bin"
    blob = bytes(range(256)) * 30
    att.write_bytes(blob)
    text = "日本語の本文\n" + "y" * 2000 + "\n.\n"
    r = subprocess.run([yt.YUBIN, "send", "--dry-run", "--from", "a@x.example", "--name",
                        "山田 太郎", "--to", "u@p.example", "--subject", "テスト",
                        "--charset", "iso-2022-jp", "--attach", str(att),
                        "--server", "127.0.0.1:1"],
                       input=("日本語の本文\n.\n").encode(), capture_output=True,
                       env={**os.environ, **yt.sanitizer_env()}, timeout=60)
    assert r.returncode == 0, r.stderr
    jp = r.stdout
    r = subprocess.run([yt.YUBIN, "send", "--dry-run", "--from", "a@x.example",
                        "--to", "u@p.example", "--subject", "long line",
                        "--server", "127.0.0.1:1"], input=text.encode(),
                       capture_output=True, env={**os.environ, **yt.sanitizer_env()},
                       timeout=60)
    assert r.returncode == 0, r.stderr
    long_line = r.stdout
    pf = pp.Postfix("127.0.0.1", vdomain="p.example", mailboxes=("u",),
                    tls=(cert.cert, cert.key))
    try:
        pf.start()
        for msg in (jp, long_line):
            rc, err = submit(pf.port, msg, user=None, sender="a@x.example",
                             to=("u@p.example",), extra=["--cafile", cert.cert])
            assert rc == 0, err
        got = [email.message_from_bytes(m, policy=email.policy.default)
               for m in pf.wait_messages("u", n=2)]
        got.sort(key=lambda m: m["Subject"] != "テスト")
        m = got[0]
        assert m["Subject"] == "テスト"
        assert m["From"].addresses[0].display_name == "山田 太郎"
        body, part = list(m.iter_parts())
        assert body.get_content().replace("\r\n", "\n") == "日本語の本文\n.\n"
        assert part.get_filename() == "表.bin" and part.get_content() == blob
        assert got[1].get_content().replace("\r\n", "\n") == text
    finally:
        pf.stop()
        pf.cleanup()
