"""yubin sendmail without an account: the local yubind's submission socket
(local_submit_socket), the way Postfix's sendmail hands mail to postdrop.

Every daemon here has its socket in its own temp directory
(yubintest.base_config: DIR/run/submit.sock, run/ made by yubind).  The
client runs as an unprivileged user when the tests run as root (setpriv:
"nobody", or "daemon" to show that another user than yubind's own may
submit too); otherwise as the user running the tests.  It finds the socket
through $YUBIN_CONF (yubind's config, readable by anyone here), -C or
yubin -c, or $YUBIN_SUBMIT_SOCKET.
"""

import os
import pwd
import re
import socket
import stat
import subprocess

import yubintest as yt

DEMO = "demo@example.test"
ALICE = "alice@example.test"


def as_user(name):
    """(argv prefix, uid, user name) for running a command as name."""
    if not yt.running_as_root():
        pw = pwd.getpwuid(os.getuid())
        return [], pw.pw_uid, pw.pw_name
    pw = pwd.getpwnam(name)
    return (["setpriv", f"--reuid={pw.pw_uid}", f"--regid={pw.pw_gid}", "--clear-groups"],
            pw.pw_uid, pw.pw_name)


def sendmail(args, msg, user="nobody", env=None, yubin_args=()):
    prefix, _, _ = as_user(user)
    e = yt.sanitizer_env()
    e.pop("YUBIN_SUBMIT_SOCKET", None)
    e.pop("YUBIN_CONF", None)
    # no client.conf: the local path is the one taken
    e["XDG_CONFIG_HOME"] = "/nonexistent-yubin-xdg"
    e["HOME"] = "/nonexistent-yubin-home"
    e.update(env or {})
    r = subprocess.run(prefix + [yt.YUBIN, *yubin_args, "sendmail", *args], input=msg,
                       capture_output=True, env=e, timeout=60)
    err = r.stderr.decode("utf-8", "replace")
    for mark in yt.SANITIZER_MARKS:
        assert mark not in err, f"sanitizer report from yubin sendmail:\n{err}"
    return r.returncode, err


def sock_path(d):
    return d.values["local_submit_socket"]


def local_smtp(d):
    """A raw SMTP client on the local socket, greeted."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(yt.IO_TIMEOUT)
    s.connect(sock_path(d))
    c = yt.SmtpClient(None, sock=s)
    yt.expect(c.reply(), 220)
    return c


def test_sendmail_t_as_nobody_delivers_with_received_naming_the_uid(yubind):
    _, uid, name = as_user("nobody")
    path = sock_path(yubind)
    st = os.stat(path)
    assert stat.S_ISSOCK(st.st_mode) and stat.S_IMODE(st.st_mode) == 0o666, oct(st.st_mode)
    yubind.wait_log(rf"listening proto=local path={re.escape(path)} mode=0666")
    msg = (b"To: demo@example.test\nBcc: alice@example.test\nSubject: from cron\n\n"
           b"job done\n.\nstill body\n")
    rc, err = sendmail(["-t", "-oi"], msg, env={"YUBIN_CONF": yubind.conf_path})
    assert rc == 0, err
    m = yubind.wait_log(rf"conn=(\w+) local: connect from uid={uid} user={re.escape(name)}\b")
    sender = f"{name}@{yt.HOSTNAME}"
    yubind.wait_log(rf"\w+: from=<{re.escape(sender)}>, size=\d+, nrcpt=2, "
                    rf"local uid={uid} user={re.escape(name)} conn={m.group(1)}")
    for user in (DEMO, ALICE):
        got = yt.wait_until(lambda: yubind.fetch(user), what=f"mail for {user}")
        rp, received, data = yt.split_stored(got[0])
        assert rp == f"Return-Path: <{sender}>".encode()
        rec = yt.unfold(received)
        assert re.fullmatch(rf"Received: from local \(uid {uid}, {re.escape(name)}\) by "
                            rf"{re.escape(yt.HOSTNAME)} \(Yubin\) with ESMTP id [0-9A-F]+; .+",
                            rec), rec
        head, body = data.split(b"\r\n\r\n", 1)
        assert b"Bcc" not in head and b"alice" not in head
        assert b"\r\nFrom: " in b"\r\n" + head and sender.encode() in head
        assert re.search(rb"(?m)^Date: ", head) and re.search(rb"(?m)^Message-ID: <", head)
        assert body == b"job done\r\n.\r\nstill body\r\n"


def test_another_user_relays_anywhere_and_it_is_queued(yubind):
    """Local users may send to any domain (mynetworks-style) and as any
    sender (-f); yubin -c CONF sendmail finds the socket in that config."""
    port = yt.free_port_on(["127.0.0.1"])       # nothing listens there: deferred
    yubind.cli("route", "add", "remote.example", f"[127.0.0.1]:{port}")
    _, uid, name = as_user("daemon")
    rc, err = sendmail(["-f", "robot@example.org", "-F", 'Cron "Robot"', "x@remote.example",
                        DEMO], b"Subject: to the world\n\nhello\n", user="daemon",
                       yubin_args=("-c", yubind.conf_path))
    assert rc == 0, err
    m = yubind.wait_log(r"(\w+): to=<x@remote\.example>, status=queued \(for delivery to a "
                        r"remote server\)")
    qid = m.group(1)
    yubind.wait_log(rf"{qid}: from=<robot@example\.org>, size=\d+, nrcpt=2, local uid={uid} ")
    yubind.wait_log(r"to=<x@remote\.example>, relay=none, attempts=1, status=deferred")
    listing = yubind.cli("queue", "list").stdout
    assert qid in listing and "x@remote.example" in listing and "robot@example.org" in listing
    got = yubind.fetch(DEMO)
    _, received, data = yt.split_stored(got[0])
    assert f"(uid {uid}, {name})" in yt.unfold(received)
    assert b'From: "Cron Robot" <robot@example.org>\r\n' in data


def test_session_on_the_socket_speaks_submission_smtp_without_tls_or_auth(yubind):
    port = yt.free_port_on(["127.0.0.1"])       # no DNS: the relayed copy waits there
    yubind.cli("route", "add", "remote.example", f"[127.0.0.1]:{port}")
    c = local_smtp(yubind)
    kw = c.ehlo_keywords(yt.expect(c.cmd("EHLO client.example.net"), 250))
    for k in ("PIPELINING", "8BITMIME", "SMTPUTF8", "SIZE", "DSN", "ENHANCEDSTATUSCODES"):
        assert k in kw, kw
    assert "STARTTLS" not in kw and "AUTH" not in kw, kw
    yt.expect(c.cmd("STARTTLS"), 502)
    yt.expect(c.cmd("AUTH PLAIN " + yt.sasl_plain(DEMO, yt.USERS[DEMO])), 503)
    # pipelined: MAIL with DSN and SMTPUTF8 parameters, RCPTs, DATA
    c.send("MAIL FROM:<anyone@example.net> BODY=8BITMIME SMTPUTF8 RET=HDRS ENVID=e1\r\n"
           "RCPT TO:<demo@example.test> NOTIFY=FAILURE ORCPT=rfc822;demo@example.test\r\n"
           "RCPT TO:<jürgen@remote.example>\r\n"
           "DATA\r\n")
    yt.expect(c.reply(), 250, "2.1.0")
    yt.expect(c.reply(), 250, "2.1.5")
    yt.expect(c.reply(), 250, "2.1.5")
    yt.expect(c.reply(), 354)
    c.send(yt.dotstuff("Subject: Grüße\r\n\r\n.leading dot\r\nÄ\r\n") + b".\r\n")
    qid = yt.queued_id(c.reply())
    c.quit()
    yubind.wait_log(rf"{qid}: to=<jürgen@remote\.example>, status=queued")
    got = yubind.fetch(DEMO)
    head, body = yt.stored_data(got[0]).split(b"\r\n\r\n", 1)
    assert body == ".leading dot\r\nÄ\r\n".encode()
    # submission's fix-ups: Date and Message-ID added
    assert "Subject: Grüße".encode() in head
    assert re.search(rb"(?m)^Date: ", head) and re.search(rb"(?m)^Message-ID: <", head)
    assert "with UTF8SMTP id" in yt.unfold(yt.split_stored(got[0])[1])


def test_tcp_ports_still_require_auth(yubind):
    """The socket's trust is not the network's: submission wants AUTH,
    port 25 does not relay."""
    c = yt.SmtpClient(yubind.ports["submission"])
    yt.expect(c.reply(), 220)
    yt.expect(c.cmd("EHLO client.example.net"), 250)
    yt.expect(c.cmd("MAIL FROM:<demo@example.test>"), 530, "5.7.0")
    c.quit()
    c = yubind.smtp()
    yt.expect(c.cmd("MAIL FROM:<x@example.net>"), 250)
    yt.expect(c.cmd("RCPT TO:<x@remote.example>"), 554, "5.7.1")
    c.quit()


def test_message_over_the_size_limit_is_refused_permanently(make_yubind):
    d = make_yubind(message_size_limit="10k")
    msg = b"Subject: big\n\n" + (b"x" * 70 + b"\n") * 300
    rc, err = sendmail([DEMO], msg, env={"YUBIN_SUBMIT_SOCKET": sock_path(d)})
    assert rc == 65, (rc, err)
    assert "552 5.3.4" in err, err
    assert d.fetch(DEMO) == []


def test_unknown_local_recipient_is_permanent(yubind):
    rc, err = sendmail(["nosuchuser@example.test"], b"Subject: x\n\nx\n",
                       env={"YUBIN_SUBMIT_SOCKET": sock_path(yubind)})
    assert rc == 67, (rc, err)
    assert "550 5.1.1" in err, err


def test_no_yubind_is_a_temporary_failure(make_yubind):
    """Socket removed at stop: exit 75 and what to do; a stale socket from a
    killed yubind is refused (75 too) and replaced at the next start."""
    d = make_yubind()
    path = sock_path(d)
    d.stop()
    assert not os.path.exists(path), "socket left behind after SIGTERM"
    rc, err = sendmail(["-C", d.conf_path, DEMO], b"Subject: x\n\nx\n")
    assert rc == 75, (rc, err)
    assert f"no account in client.conf and no local yubind at {path}" in err, err
    assert f"local_submit_socket in {d.conf_path}" in err and "start yubind" in err, err

    d.start()
    d.kill9()
    assert stat.S_ISSOCK(os.lstat(path).st_mode), "kill -9 leaves the socket file"
    rc, err = sendmail([DEMO], b"Subject: x\n\nx\n", env={"YUBIN_SUBMIT_SOCKET": path})
    assert rc == 75, (rc, err)
    assert "does not answer" in err and "Connection refused" in err, err

    mark = d.log_mark()
    d.start()
    d.wait_log(rf"removed the stale socket {re.escape(path)}", since=mark)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o666
    rc, err = sendmail([DEMO], b"Subject: after restart\n\nx\n",
                       env={"YUBIN_SUBMIT_SOCKET": path})
    assert rc == 0, err
    got = yt.wait_until(lambda: d.fetch(DEMO), what="mail after the restart")
    assert b"Subject: after restart" in got[0]


def test_something_else_at_the_path_is_not_removed(make_yubind, tmp_path):
    d = make_yubind(start=False)
    path = sock_path(d)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write("not a socket\n")
    mark = d.log_mark()
    with open(d.log_path, "ab") as logf:
        r = subprocess.run([yt.YUBIND, "-c", d.conf_path], stdin=subprocess.DEVNULL,
                           stdout=logf, stderr=logf, env=yt.sanitizer_env(), timeout=60)
    assert r.returncode != 0
    assert f"{path} exists and is not a socket: not removing it" in d.log(since=mark)
    with open(path) as f:
        assert f.read() == "not a socket\n"


def test_local_option_overrides_an_account(yubind, tmp_path):
    """--local goes to the socket even with a default account (whose server
    is a port nobody listens on); submission off in the config is said."""
    conf = tmp_path / "yubin"
    conf.mkdir()
    port = yt.free_port_on(["127.0.0.1"])
    (conf / "client.conf").write_text(
        "[account home]\ndefault = yes\naddress = demo@example.test\n"
        f"smtp = 127.0.0.1:{port}\nsmtp_tls = none\npassword_cmd = echo x\n")
    os.chmod(conf / "client.conf", 0o600)
    env = {"XDG_CONFIG_HOME": str(tmp_path), "YUBIN_SUBMIT_SOCKET": sock_path(yubind)}
    e = {**yt.sanitizer_env(), **env}
    r = subprocess.run([yt.YUBIN, "sendmail", "--local", DEMO], input=b"Subject: l\n\nx\n",
                       capture_output=True, env=e, timeout=60)
    assert r.returncode == 0, r.stderr
    # without --local the account is used: its server is down, a temporary failure
    r = subprocess.run([yt.YUBIN, "sendmail", DEMO], input=b"Subject: a\n\nx\n",
                       capture_output=True, env=e, timeout=60)
    assert r.returncode == 75, r.stderr
    assert b"Connection refused" in r.stderr
    # local submission turned off in yubind's config
    off = tmp_path / "off.conf"
    with open(yubind.conf_path) as f:
        text = f.read()
    off.write_text(re.sub(r"(?m)^local_submit_socket = .*$", "local_submit_socket =", text))
    r = subprocess.run([yt.YUBIN, "sendmail", "--local", "-C", str(off), DEMO],
                       input=b"Subject: o\n\nx\n", capture_output=True,
                       env={**e, "YUBIN_SUBMIT_SOCKET": ""}, timeout=60)
    assert r.returncode == 69, r.stderr
    assert b"local submission is off" in r.stderr
    assert len(yubind.fetch(DEMO)) == 1
