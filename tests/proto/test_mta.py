"""Outbound mail: submission with AUTH, the queue, MX delivery, bounces.

The seed scenario on one machine: a real DNS server (unbound) serves the
MX and A records; yubind A serves a.example on 127.0.0.2, yubind B serves
b.example (and c.example) on 127.0.0.3.  x@a.example submits to A on the
submission port with AUTH; A looks up b.example's MX and delivers over
SMTP; y reads it over POP3 and IMAP.
"""

import base64
import email
import email.policy
import hashlib
import hmac
import imaplib
import os
import poplib
import re
import shutil
import smtplib
import socket
import ssl

import pytest

import dnsserver
import yubintest as yt

X = ("x@a.example", "x-Pass-1")
Y = ("y@b.example", "y-Pass-2")
Z = ("z@c.example", "z-Pass-3")


free_port_on = yt.free_port_on


class World:
    def __init__(self, template, cert, tmp):
        self.dns = dnsserver.DnsServer(os.path.join(tmp, "dns"), [
            ("a.example.", "MX", "10 mx.a.example."),
            ("mx.a.example.", "A", "127.0.0.2"),
            ("b.example.", "MX", "10 mx.b.example."),
            ("mx.b.example.", "A", "127.0.0.3"),
            # c.example: the better MX is down, the second is B
            ("c.example.", "MX", "10 dead.c.example."),
            ("c.example.", "MX", "20 mx.b.example."),
            ("dead.c.example.", "A", "127.0.0.4"),
            ("null.example.", "MX", "0 ."),
        ])
        self.port = free_port_on(["127.0.0.2", "127.0.0.3", "127.0.0.4"])
        common = {
            "dns_server": self.dns.server,
            "smtp_out_port": str(self.port),
            "queue_retry_min": "1s",
            "queue_retry_max": "2s",
            "smtp_out_connect_timeout": "5s",
            "smtp_out_idle_time": "10s",
        }
        self.a = self._daemon(template, cert, "127.0.0.2", "mx.a.example", common,
                              ["a.example"], [X])
        self.b = self._daemon(template, cert, "127.0.0.3", "mx.b.example", common,
                              ["b.example", "c.example"], [Y, Z])

    def _daemon(self, template, cert, ip, host, common, domains, users):
        d = yt.Yubind(template, cert, {
            **common,
            "hostname": host,
            "smtp_out_bind": ip,
            "listen_smtp": f"{ip}:{self.port}",
            "listen_submission": f"{ip}:0",
            "listen_submissions": f"{ip}:0",
            "listen_pop3": f"{ip}:0",
            "listen_pop3s": f"{ip}:0",
            "listen_imap": f"{ip}:0",
            "listen_imaps": f"{ip}:0",
        })
        d.ip = ip
        for dom in domains:
            d.cli("domain", "add", dom)
        for addr, pw in users:
            d.cli("user", "add", addr, input=pw + "\n")
        d.start()
        return d

    def stop(self):
        for d in (self.a, self.b):
            d.stop()
            d.cleanup()
        self.dns.stop()


@pytest.fixture
def world(template, cert, tmp_path):
    w = World(template, cert, str(tmp_path))
    yield w
    w.stop()


def submit(d, user, msg, to, tls=True, sender=None):
    s = smtplib.SMTP(d.ip, d.ports["submission"], timeout=yt.IO_TIMEOUT)
    s.ehlo("client.a.example")
    if tls:
        s.starttls(context=ssl._create_unverified_context())
        s.ehlo("client.a.example")
    s.login(user[0], user[1])
    s.sendmail(sender or user[0], to, msg)
    s.quit()


def message(frm, to, subject, body="Hello from A.\r\n", extra=""):
    return (f"From: {frm}\r\nTo: {to}\r\nSubject: {subject}\r\n{extra}\r\n{body}").encode()


def pop3_all(d, user):
    p = poplib.POP3(d.ip, d.ports["pop3"], timeout=yt.IO_TIMEOUT)
    p.user(user[0])
    p.pass_(user[1])
    n = len(p.list()[1])
    msgs = [b"\r\n".join(p.retr(i + 1)[1]) for i in range(n)]
    p.quit()
    return msgs


def test_submission_mx_delivery_pop3_imap(world):
    a, b = world.a, world.b
    msg = message(X[0], Y[0], "seed scenario", extra="Bcc: secret@b.example\r\n")
    submit(a, X, msg, [Y[0]])
    b.wait_log(r"to=<y@b\.example>, relay=local, status=sent")
    a.wait_log(r"to=<y@b\.example>, relay=mx\.b\.example, attempts=1, status=sent")
    got = pop3_all(b, Y)
    assert len(got) == 1
    m = email.message_from_bytes(got[0], policy=email.policy.default)
    assert m["Subject"] == "seed scenario"
    assert m["Return-Path"] == "<x@a.example>"
    # the Received trail: B's (from A) above A's (from the submitting client)
    rec = m.get_all("Received")
    assert len(rec) == 2, rec
    assert "by mx.b.example" in rec[0] and "from mx.a.example" in rec[0]
    # A connected from its own address (smtp_out_bind), not 127.0.0.1
    assert "[127.0.0.2]" in rec[0], rec[0]
    assert "by mx.a.example" in rec[1] and "with ESMTPSA" in rec[1]
    # submission added what was missing and removed Bcc
    assert m["Message-ID"] and m["Message-ID"].endswith("@mx.a.example>")
    assert m["Date"]
    assert "Bcc" not in m and b"secret@b.example" not in got[0]
    # only one Return-Path: A's was not sent along
    assert got[0].count(b"Return-Path:") == 1
    # IMAP sees the same message
    im = imaplib.IMAP4(b.ip, b.ports["imap"], timeout=yt.IO_TIMEOUT)
    im.login(*Y)
    im.select("INBOX")
    typ, data = im.fetch("1", "(BODY.PEEK[HEADER.FIELDS (SUBJECT RETURN-PATH)])")
    assert typ == "OK" and b"seed scenario" in data[0][1] and b"<x@a.example>" in data[0][1]
    im.logout()


def test_unknown_remote_user_bounces_to_sender(world):
    a = world.a
    submit(a, X, message(X[0], "nobody@b.example", "to nobody"), ["nobody@b.example"])
    a.wait_log(r"to=<nobody@b\.example>, relay=mx\.b\.example, attempts=1, status=bounced")
    a.wait_log(r"sender non-delivery notification: \w+ \(to <x@a\.example>, local\)")
    got = pop3_all(a, X)
    assert len(got) == 1
    m = email.message_from_bytes(got[0], policy=email.policy.default)
    assert m.get_content_type() == "multipart/report"
    assert m.get_param("report-type") == "delivery-status"
    assert m["Auto-Submitted"] == "auto-replied"
    assert m["Return-Path"] == "<>"
    parts = list(m.iter_parts())
    assert parts[1].get_content_type() == "message/delivery-status"
    status = parts[1].as_string()
    assert "Reporting-MTA: dns; mx.a.example" in status
    assert "Final-Recipient: rfc822; nobody@b.example" in status
    assert "Action: failed" in status
    assert "Status: 5.1.1" in status
    assert re.search(r"Diagnostic-Code: smtp; 550 5\.1\.1 <nobody@b\.example>", status)
    assert "Remote-MTA: dns; mx.b.example" in status
    # the original comes back
    assert "to nobody" in parts[2].as_string()
    # the bounce was never queued again (no notification about a notification)
    assert "Mail queue is empty" in a.cli("queue", "list").stdout


def test_dsn_parameters_inbound_and_outbound(world):
    """RFC 3461: NOTIFY, RET, ENVID and ORCPT taken on submission, carried to
    B, and answered: success from B (the final hop), failure from A (RET=HDRS:
    headers only), NEVER honoured, success for a local recipient from A."""
    a, b = world.a, world.b
    s = smtplib.SMTP(a.ip, a.ports["submission"], timeout=yt.IO_TIMEOUT)
    s.ehlo("client.a.example")
    assert s.has_extn("dsn")
    s.starttls(context=ssl._create_unverified_context())
    s.ehlo("client.a.example")
    s.login(*X)
    mopts = ["RET=HDRS", "ENVID=env+2B42"]
    code, _ = s.mail(X[0], mopts)
    assert code == 250
    assert s.rcpt(Y[0], ["NOTIFY=SUCCESS", "ORCPT=rfc822;orig-y+2Btag@b.example"])[0] == 250
    assert s.rcpt("nobody@b.example", ["NOTIFY=FAILURE"])[0] == 250
    assert s.rcpt("never@b.example", ["NOTIFY=NEVER"])[0] == 250
    assert s.rcpt(X[0], ["NOTIFY=SUCCESS,FAILURE"])[0] == 250
    code, _ = s.data(message(X[0], Y[0], "dsn params", body="secret body line\r\n"))
    assert code == 250
    # bad parameters get a clear 501, and the session goes on
    code, resp = s.mail(X[0], ["RET=SOME"])
    assert code == 501 and b"RET" in resp
    s.rset()
    s.mail(X[0])
    code, resp = s.rcpt(Y[0], ["NOTIFY=NEVER,SUCCESS"])
    assert code == 501 and b"NOTIFY" in resp
    s.quit()

    # B delivered y's copy and reports it (it was told NOTIFY=SUCCESS)
    b.wait_log(r"to=<y@b\.example>, relay=local, status=sent")
    b.wait_log(r"sender success notification: \w+ \(to <x@a\.example>, queued\)")
    a.wait_log(r"to=<nobody@b\.example>, relay=mx\.b\.example, attempts=1, status=bounced")
    a.wait_log(r"sender success notification: \w+ \(to <x@a\.example>, local\)")
    a.wait_log(r"sender non-delivery notification: \w+ \(to <x@a\.example>, local\)")

    def reports():
        out = []
        for raw in pop3_all(a, X):
            m = email.message_from_bytes(raw, policy=email.policy.default)
            if m.get_content_type() == "multipart/report":
                out.append((m, raw))
        return out
    yt.wait_until(lambda: len(reports()) == 3, what="three notifications for x")
    by_action = {}
    for m, raw in reports():
        status = list(m.iter_parts())[1].as_string()
        act = re.search(r"Action: (\w+)", status).group(1)
        by_action.setdefault(act, []).append((m, raw, status))
    assert sorted(by_action) == ["delivered", "failed"], by_action.keys()
    assert len(by_action["delivered"]) == 2
    failed_m, failed_raw, failed_status = by_action["failed"][0]
    # NEVER: never@b.example is not reported; NOTIFY=FAILURE: nobody is
    assert "nobody@b.example" in failed_status and "never@b.example" not in failed_status
    assert "Original-Envelope-Id: env+42" in failed_status
    # RET=HDRS: only the header comes back
    third = list(failed_m.iter_parts())[2]
    assert third.get_content_type() == "text/rfc822-headers"
    assert b"dsn params" in failed_raw and b"secret body line" not in failed_raw
    texts = [st for _, _, st in by_action["delivered"]]
    from_b = [t for t in texts if "Reporting-MTA: dns; mx.b.example" in t]
    from_a = [t for t in texts if "Reporting-MTA: dns; mx.a.example" in t]
    assert len(from_b) == 1 and len(from_a) == 1
    # ORCPT and ENVID travelled from A to B with the message
    assert "Original-Recipient: rfc822;orig-y+tag@b.example" in from_b[0]
    assert "Original-Envelope-Id: env+42" in from_b[0]
    assert "Final-Recipient: rfc822; y@b.example" in from_b[0]
    assert "Final-Recipient: rfc822; x@a.example" in from_a[0]
    assert "Status: 2.0.0" in from_a[0]
    # no notification about a notification: the queues drain
    yt.wait_until(lambda: "Mail queue is empty" in a.cli("queue", "list").stdout and
                  "Mail queue is empty" in b.cli("queue", "list").stdout, what="queues empty")


def test_destination_down_queued_then_delivered(world):
    a, b = world.a, world.b
    b.stop()
    submit(a, X, message(X[0], Y[0], "while B was down"), [Y[0]])
    a.wait_log(r"to=<y@b\.example>, relay=none, attempts=1, status=deferred \(no server of "
               r"b\.example reachable; last: connect to mx\.b\.example \[127\.0\.0\.3\]")
    listing = a.cli("queue", "list").stdout
    assert "y@b.example" in listing and "x@a.example" in listing
    qid = re.search(r"^([0-9A-F]{16})", listing, re.M).group(1)
    show = a.cli("queue", "show", qid).stdout
    assert "recipient: <y@b.example> attempts=" in show
    b.start()
    a.wait_log(r"to=<y@b\.example>, relay=mx\.b\.example, attempts=\d+, status=sent")
    b.wait_log(r"to=<y@b\.example>, relay=local, status=sent")
    assert [email.message_from_bytes(m)["Subject"] for m in pop3_all(b, Y)] == \
        ["while B was down"]
    assert "Mail queue is empty" in a.cli("queue", "list").stdout


def test_second_mx_when_first_is_down(world):
    a, b = world.a, world.b
    submit(a, X, message(X[0], Z[0], "via the second MX"), [Z[0]])
    a.wait_log(r"to=<z@c\.example>, relay=mx\.b\.example, attempts=1, status=sent")
    assert re.search(r"smtp_out: connect to dead\.c\.example \[127\.0\.0\.4\]:\d+: connect failed", a.log())
    got = pop3_all(b, Z)
    assert len(got) == 1 and b"via the second MX" in got[0]


def test_null_mx_and_nxdomain_bounce_at_once(world):
    a = world.a
    submit(a, X, message(X[0], "u@null.example", "null mx"), ["u@null.example",
                                                              "v@nosuch.b.example"])
    a.wait_log(r"to=<u@null\.example>, relay=none, attempts=1, status=bounced")
    a.wait_log(r"to=<v@nosuch\.b\.example>, relay=none, attempts=1, status=bounced")
    # one report per destination domain: both must be in before reading
    yt.wait_until(lambda: len(re.findall(r"sender non-delivery notification: \w+ \(to "
                                         r"<x@a\.example>, local\)", a.log())) == 2,
                  what="two notifications")
    text = b"\n".join(pop3_all(a, X)).decode()
    assert "Status: 5.1.10" in text
    assert "Status: 5.1.2" in text


def test_no_relay_without_auth_and_no_spoofing(world):
    a = world.a
    # port 25 role: no AUTH offered, no relaying
    c = yt.SmtpClient(a.smtp_port, host=a.ip)
    yt.expect(c.reply(), 220)
    r = c.cmd("EHLO client.example.net")
    assert not any(l.upper().startswith("AUTH") for l in r.lines)
    yt.expect(c.cmd("MAIL FROM:<x@a.example>"), 250)
    yt.expect(c.cmd("RCPT TO:<y@b.example>"), 554, "5.7.1")
    c.close()
    # submission: nothing without AUTH
    c = yt.SmtpClient(a.ports["submission"], host=a.ip)
    yt.expect(c.reply(), 220)
    c.cmd("EHLO client.example.net")
    yt.expect(c.cmd("MAIL FROM:<x@a.example>"), 530, "5.7.0")
    c.close()
    # after AUTH: only the user's own address, on the envelope and in From
    s = smtplib.SMTP(a.ip, a.ports["submission"], timeout=yt.IO_TIMEOUT)
    s.ehlo()
    s.login(*X)
    code, resp = s.mail("boss@a.example")
    assert code == 553 and b"5.7.1" in resp
    s.rset()
    with pytest.raises(smtplib.SMTPDataError) as e:
        s.sendmail(X[0], [Y[0]], message("boss@a.example", Y[0], "spoofed"))
    assert e.value.smtp_code == 550 and b"5.7.1" in e.value.smtp_error
    s.quit()
    assert "Mail queue is empty" in a.cli("queue", "list").stdout


def scram_client(user, password, sock_cmd):
    """SCRAM-SHA-256 (RFC 7677) by hand: returns the final SMTP reply code."""
    nonce = base64.b64encode(os.urandom(18)).decode()
    first_bare = f"n={user},r={nonce}"
    code, resp = sock_cmd("AUTH SCRAM-SHA-256 " +
                          base64.b64encode(("n,," + first_bare).encode()).decode())
    assert code == 334, (code, resp)
    server_first = base64.b64decode(resp).decode()
    fields = dict(f.split("=", 1) for f in server_first.split(","))
    salt = base64.b64decode(fields["s"])
    it = int(fields["i"])
    assert fields["r"].startswith(nonce)
    salted = hashlib.pbkdf2_hmac("sha256", password.encode(), salt, it)
    ckey = hmac.new(salted, b"Client Key", "sha256").digest()
    stored = hashlib.sha256(ckey).digest()
    without_proof = "c=biws,r=" + fields["r"]
    auth_msg = f"{first_bare},{server_first},{without_proof}".encode()
    sig = hmac.new(stored, auth_msg, "sha256").digest()
    proof = bytes(a ^ b for a, b in zip(ckey, sig))
    final = without_proof + ",p=" + base64.b64encode(proof).decode()
    code, resp = sock_cmd(base64.b64encode(final.encode()).decode())
    if code != 334:
        return code
    skey = hmac.new(salted, b"Server Key", "sha256").digest()
    want = "v=" + base64.b64encode(hmac.new(skey, auth_msg, "sha256").digest()).decode()
    assert base64.b64decode(resp).decode() == want
    code, resp = sock_cmd("")
    return code


@pytest.mark.parametrize("mech", ["PLAIN", "LOGIN", "SCRAM-SHA-256", "CRAM-MD5"])
def test_auth_mechanisms(template, cert, mech):
    d = yt.Yubind(template, cert, {"auth_cram_md5": "1"})
    try:
        d.start()
        user, pw = "alice@example.test", yt.USERS["alice@example.test"]
        s = smtplib.SMTP("127.0.0.1", d.ports["submission"], timeout=yt.IO_TIMEOUT)
        s.starttls(context=ssl._create_unverified_context())
        s.ehlo()
        assert "SCRAM-SHA-256" in s.esmtp_features["auth"]
        assert "CRAM-MD5" in s.esmtp_features["auth"]
        if mech == "SCRAM-SHA-256":
            assert scram_client(user, pw, lambda line: s.docmd(line)) == 235
            s2 = smtplib.SMTP("127.0.0.1", d.ports["submission"], timeout=yt.IO_TIMEOUT)
            s2.ehlo()
            assert scram_client(user, "wrong", lambda line: s2.docmd(line)) == 535
            s2.close()
        elif mech == "CRAM-MD5":
            # CRAM-MD5 uses the account's APOP/CRAM secret, not the password
            secret = yt.APOP_SECRETS[user]
            code, resp = s.docmd("AUTH CRAM-MD5")
            assert code == 334
            chal = base64.b64decode(resp)
            dig = hmac.new(secret.encode(), chal, "md5").hexdigest()
            code, resp = s.docmd(base64.b64encode(f"{user} {dig}".encode()).decode())
            assert code == 235, resp
        else:
            s.user, s.password = user, pw
            code, resp = s.auth(mech, getattr(s, "auth_" + mech.lower()))
            assert code == 235
        s.mail(user)
        s.rcpt("demo@example.test")
        s.quit()
    finally:
        d.stop()
        d.cleanup()


@pytest.mark.yubind_conf(plaintext_auth="never")
def test_auth_needs_tls_and_failures_slow_down(yubind):
    c = yt.SmtpClient(yubind.ports["submission"])
    yt.expect(c.reply(), 220)
    r = c.cmd("EHLO client.example.net")
    assert not any(l.upper().startswith("AUTH") for l in r.lines)
    assert any(l.upper() == "STARTTLS" for l in r.lines)
    yt.expect(c.cmd("AUTH PLAIN " + base64.b64encode(b"\0demo@example.test\0x").decode()),
              538, "5.7.11")
    c.close()
    s = smtplib.SMTP("127.0.0.1", yubind.ports["submission"], timeout=yt.IO_TIMEOUT)
    s.starttls(context=ssl._create_unverified_context())
    s.ehlo()
    for i in range(3):
        with pytest.raises(smtplib.SMTPAuthenticationError) as e:
            s.login("demo@example.test", "wrong-%d" % i)
        assert e.value.smtp_code == 535
    s.close()
    yubind.wait_log(r"AUTH PLAIN failed for demo@example\.test from \[127\.0\.0\.1\] "
                    r"\(reply delayed\)")


@pytest.mark.yubind_conf(pop_before_smtp="2m")
def test_pop_before_smtp_lets_that_ip_relay(yubind):
    def try_relay():
        c = yt.SmtpClient(yubind.smtp_port)
        yt.expect(c.reply(), 220)
        c.cmd("EHLO client.example.net")
        yt.expect(c.cmd("MAIL FROM:<demo@example.test>"), 250)
        r = c.cmd("RCPT TO:<someone@elsewhere.example>")
        c.close()
        return r
    yt.expect(try_relay(), 554, "5.7.1")
    p = poplib.POP3("127.0.0.1", yubind.pop3_port, timeout=yt.IO_TIMEOUT)
    p.user("demo@example.test")
    p.pass_(yt.USERS["demo@example.test"])
    p.quit()
    yt.expect(try_relay(), 250, "2.1.5")


def test_queue_survives_kill9_and_sends_once(world):
    a, b = world.a, world.b
    b.stop()
    submit(a, X, message(X[0], Y[0], "queued across a crash"), [Y[0]])
    a.wait_log(r"to=<y@b\.example>, relay=none, attempts=1, status=deferred")
    a.kill9()
    b.start()
    mark = a._log_size()
    a.start()
    # after the restart the queue is read again and the message leaves once
    a.wait_log(r"to=<y@b\.example>, relay=mx\.b\.example, attempts=\d+, status=sent",
               since=mark)
    b.wait_log(r"to=<y@b\.example>, relay=local, status=sent")
    assert [email.message_from_bytes(m)["Subject"] for m in pop3_all(b, Y)] == \
        ["queued across a crash"]
    assert "Mail queue is empty" in a.cli("queue", "list").stdout


def test_aliases_plus_catchall_lists(world):
    """Local routing on B: an alias to a local and a remote address,
    user+tag, a catch-all, a list (List-Id, the list as envelope sender,
    bounces to its owner), two lists naming each other; on A the sender
    check accepts the user's aliases and +tags and nothing else."""
    a, b = world.a, world.b
    b.cli("alias", "add", "team@b.example", "y@b.example")
    b.cli("alias", "add", "team@b.example", "x@a.example")
    b.cli("alias", "add", "@c.example", "z@c.example")
    b.cli("list", "create", "devs@b.example", "y@b.example")
    for mem in ("y@b.example", "z@c.example", "x@a.example", "nobody@a.example"):
        b.cli("list", "add", "devs@b.example", mem)
    b.cli("list", "create", "l1@b.example", "y@b.example")
    b.cli("list", "create", "l2@b.example", "y@b.example")
    b.cli("list", "add", "l1@b.example", "l2@b.example")
    b.cli("list", "add", "l2@b.example", "l1@b.example")
    b.cli("list", "add", "l2@b.example", "y@b.example")
    assert b.cli("alias", "list").stdout.splitlines() == [
        "@c.example z@c.example", "team@b.example x@a.example", "team@b.example y@b.example"]
    show = b.cli("list", "show", "devs@b.example").stdout
    assert "owner: y@b.example" in show and "members: 4" in show
    # an alias cannot take an account's address; a list member needs a list
    assert b.cli("alias", "add", "y@b.example", "x@a.example", check=False).returncode != 0
    assert b.cli("list", "add", "nolist@b.example", "y@b.example", check=False).returncode != 0

    a.cli("alias", "add", "boss@a.example", "x@a.example")
    s = smtplib.SMTP(a.ip, a.ports["submission"], timeout=yt.IO_TIMEOUT)
    s.starttls(context=ssl._create_unverified_context())
    s.login(*X)
    # sending as an alias of x, and as x+tag: allowed
    s.sendmail("boss@a.example", ["team@b.example"],
               message("Boss <boss@a.example>", "team@b.example", "to the team"))
    s.sendmail("x+lists@a.example", ["devs@b.example"],
               message("x+lists@a.example", "devs@b.example", "to the list"),
               rcpt_options=["NOTIFY=SUCCESS"])
    s.sendmail(X[0], ["y+news@b.example", "anyone@c.example", "l1@b.example"],
               message(X[0], "y+news@b.example", "tagged and caught"))
    # not an address of x
    code, resp = s.mail("other@a.example")
    assert code == 553 and b"not owned by user x@a.example" in resp
    s.rset()
    s.quit()

    b.wait_log(r"to=<devs@b\.example>, relay=list, status=expanded \(2 local, 2 queued")
    b.wait_log(r"list l1@b\.example: dropped: mail loop")
    # the list's copy to nobody@a.example bounced back to the list: the owner got it
    a.wait_log(r"550 5\.1\.1 <nobody@a\.example>")
    yt.wait_until(lambda: len(re.findall(r"to=<x@a\.example>, relay=mx\.a\.example, "
                                         r"attempts=1, status=sent", b.log())) >= 2,
                  what="B sent x's copies (alias and list)")

    def subjects(d, user):
        out = {}
        for raw in pop3_all(d, user):
            m = email.message_from_bytes(raw, policy=email.policy.default)
            out.setdefault(str(m["Subject"]), []).append(m)
        return out
    yt.wait_until(lambda: len(subjects(b, Y)) >= 4, what="y mail: %r" % sorted(subjects(b, Y)))
    ys = subjects(b, Y)
    # team alias, list, +tag, and l2's copy (not a second one from the loop)
    assert len(ys["to the team"]) == 1
    assert len(ys["tagged and caught"]) == 2, [m["List-Id"] for m in ys["tagged and caught"]]
    lst = ys["to the list"][0]
    assert lst["List-Id"] == "<devs.b.example>"
    assert lst["List-Post"] == "<mailto:devs@b.example>"
    assert lst["Return-Path"] == "<devs@b.example>"
    # the owner's copy of the bounce for nobody@a.example
    yt.wait_until(lambda: any(m.get_content_type() == "multipart/report"
                              for ms in subjects(b, Y).values() for m in ms),
                  what="the list bounce at the owner")
    zs = subjects(b, Z)
    assert "to the list" in zs and "tagged and caught" in zs      # catch-all
    # NOTIFY=SUCCESS for the list: B answers "expanded" (RFC 3461 6.2.7.3),
    # to x+lists@, which is x's INBOX at A
    b.wait_log(r"sender success notification: \w+ \(to <x\+lists@a\.example>, queued\)")
    yt.wait_until(lambda: any("Action: expanded" in m.as_string()
                              for ms in subjects(a, X).values() for m in ms),
                  what="the expanded notification at x")
    xs = subjects(a, X)
    assert "to the team" in xs and "to the list" in xs
    assert xs["to the list"][0]["Return-Path"] == "<devs@b.example>"


class SevenBitServer:
    """A minimal SMTP server without 8BITMIME (old software): it keeps what
    it is sent, and says nothing about 8BITMIME, DSN or SMTPUTF8."""

    def __init__(self, host):
        import threading
        self.sock = socket.socket()
        self.sock.bind((host, 0))
        self.sock.listen(8)
        self.port = self.sock.getsockname()[1]
        self.messages = []
        self.mail_lines = []
        self.done = False
        self.t = threading.Thread(target=self._run, daemon=True)
        self.t.start()

    def _run(self):
        self.sock.settimeout(0.2)
        while not self.done:
            try:
                c, _ = self.sock.accept()
            except OSError:
                continue
            c.settimeout(yt.IO_TIMEOUT)
            f = c.makefile("rb")
            c.sendall(b"220 seven.example old ESMTP\r\n")
            try:
                while True:
                    line = f.readline()
                    if not line:
                        break
                    cmd = line.strip().upper()
                    if cmd.startswith(b"EHLO"):
                        c.sendall(b"250-seven.example\r\n250-PIPELINING\r\n250 SIZE 10000000\r\n")
                    elif cmd.startswith(b"MAIL"):
                        self.mail_lines.append(line)
                        c.sendall(b"250 ok\r\n")
                    elif cmd.startswith(b"RCPT") or cmd.startswith(b"RSET"):
                        c.sendall(b"250 ok\r\n")
                    elif cmd == b"DATA":
                        c.sendall(b"354 go\r\n")
                        data = []
                        while True:
                            d = f.readline()
                            if d in (b".\r\n", b""):
                                break
                            data.append(d[1:] if d.startswith(b"..") else d)
                        self.messages.append(b"".join(data))
                        c.sendall(b"250 ok stored\r\n")
                    elif cmd == b"QUIT":
                        c.sendall(b"221 bye\r\n")
                        break
                    else:
                        c.sendall(b"502 no\r\n")
            except OSError:
                pass
            c.close()

    def stop(self):
        self.done = True
        self.t.join()
        self.sock.close()


def test_8bit_to_a_server_without_8bitmime(world):
    """RFC 6152 3: 8-bit body parts become quoted-printable for a server
    that lacks 8BITMIME; 8-bit in a header cannot be converted: bounce 5.6.3."""
    a = world.a
    old = SevenBitServer("127.0.0.6")
    try:
        a.cli("route", "add", "seven.example", f"[127.0.0.6]:{old.port}")
        body = "Gr\u00fc\u00dfe aus Yubin, = and a long line " + "\u00e9" * 60 + "\r\n"
        msg = (f"From: {X[0]}\r\nTo: u@seven.example\r\nSubject: eight bit\r\n"
               "MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n"
               "Content-Transfer-Encoding: 8bit\r\n\r\n" + body).encode()
        s = smtplib.SMTP(a.ip, a.ports["submission"], timeout=yt.IO_TIMEOUT)
        s.starttls(context=ssl._create_unverified_context())
        s.login(*X)
        s.sendmail(X[0], ["u@seven.example"], msg, mail_options=["BODY=8BITMIME"])
        bad = (f"From: {X[0]}\r\nTo: u@seven.example\r\nSubject: caf\u00e9\r\n\r\n"
               "8-bit header\r\n").encode()
        s.sendmail(X[0], ["v@seven.example"], bad, mail_options=["BODY=8BITMIME"])
        s.quit()
        a.wait_log(r"to=<u@seven\.example>, relay=127\.0\.0\.6, attempts=1, status=sent")
        a.wait_log(r"does not support 8BITMIME: 8-bit parts converted to quoted-printable")
        a.wait_log(r"to=<v@seven\.example>, relay=127\.0\.0\.6, attempts=1, status=bounced "
                   r"\(127\.0\.0\.6 does not support 8BITMIME and the message cannot be "
                   r"converted to 7-bit: 8-bit data in a header field\)")
        assert len(old.messages) == 1
        got = old.messages[0]
        assert all(b < 0x80 for b in got)
        assert max(len(l) for l in got.split(b"\r\n")) <= 78
        assert b"BODY=8BITMIME" not in b"".join(old.mail_lines)
        m = email.message_from_bytes(got, policy=email.policy.default)
        assert m["Content-Transfer-Encoding"] == "quoted-printable"
        assert m.get_content().replace("\r\n", "\n") == body.replace("\r\n", "\n")
        # the bounce for the header case reached x
        a.wait_log(r"sender non-delivery notification: \w+ \(to <x@a\.example>, local\)")
        text = b"\n".join(pop3_all(a, X)).decode("utf-8", "replace")
        assert "Status: 5.6.3" in text
    finally:
        old.stop()


@pytest.mark.yubind_conf(auth_fail_delay_max="2s")
def test_pop3_and_imap_failed_logins_slow_down(yubind):
    """The failed-login delays cover POP3 and IMAP too, shared with SMTP
    AUTH: after a failure from this IP the next wrong password's answer is
    held back (and logged so); a right password still works."""
    for i in range(2):
        p = poplib.POP3("127.0.0.1", yubind.ports["pop3"], timeout=yt.IO_TIMEOUT)
        p.user("demo@example.test")
        with pytest.raises(poplib.error_proto) as e:
            p.pass_("wrong-%d" % i)
        assert b"[AUTH] Authentication failed" in e.value.args[0]
        p.quit()
    yubind.wait_log(r"pop3: auth failed user=demo@example\.test method=PASS from "
                    r"\[127\.0\.0\.1\] \(reply delayed\)")
    im = imaplib.IMAP4("127.0.0.1", yubind.ports["imap"], timeout=yt.IO_TIMEOUT)
    with pytest.raises(imaplib.IMAP4.error) as e:
        im.login("demo@example.test", "wrong-imap")
    assert b"AUTHENTICATIONFAILED" in str(e.value).encode()
    yubind.wait_log(r"imap: auth failed user=demo@example\.test method=LOGIN from "
                    r"\[127\.0\.0\.1\] \(reply delayed\)")
    # the session goes on after the delayed answer
    typ, _ = im.noop()
    assert typ == "OK"
    im.logout()


def test_relayhost_with_auth_over_tls(world, template, cert, tmp_path):
    """A smart host with relayhost_user: STARTTLS, then AUTH, then the mail;
    a wrong password defers (logged), it never bounces.  The satellite
    serves y's address too (as a laptop's local MTA would), so B, the smart
    host, sees its own user sending as himself."""
    b = world.b
    secrets = yt.mkdtemp("yubin-relay-")
    pw, bad = os.path.join(secrets, "relay-pass"), os.path.join(secrets, "relay-bad")
    for path, text in ((pw, Y[1]), (bad, "not-the-password")):
        with open(path, "w") as f:
            f.write(text + "\n")
        os.chmod(path, 0o600)     # readable by the daemon's user only
    yt.chown_tree(secrets)
    made = []

    def sat(pwfile):
        d = yt.Yubind(template, cert, {
            "dns_server": world.dns.server,
            "hostname": "sat.b.example",
            "listen_smtp": "127.0.0.7:0",
            "listen_submission": "127.0.0.7:0",
            "listen_submissions": "",
            "listen_pop3": "127.0.0.7:0", "listen_pop3s": "",
            "listen_imap": "127.0.0.7:0", "listen_imaps": "",
            "relayhost": f"[127.0.0.3]:{b.ports['submission']}",
            "relayhost_user": Y[0],
            "relayhost_password_file": str(pwfile),
            "queue_retry_min": "1s", "queue_retry_max": "2s",
        })
        d.ip = "127.0.0.7"
        d.cli("domain", "add", "b.example")
        d.cli("user", "add", Y[0], input="local-Pass-9\n")
        d.start()
        made.append(d)
        return d
    try:
        c = sat(pw)
        submit(c, (Y[0], "local-Pass-9"), message(Y[0], Z[0], "via the smart host"), [Z[0]])
        c.wait_log(r"smtp_out: conn=\d+ AUTH PLAIN as y@b\.example to 127\.0\.0\.3 accepted")
        c.wait_log(r"to=<z@c\.example>, relay=127\.0\.0\.3, attempts=1, status=sent")
        b.wait_log(r"AUTH PLAIN user=y@b\.example")
        got = pop3_all(b, Z)
        assert len(got) == 1 and b"via the smart host" in got[0]
        c.stop()
        c.cleanup()
        made.clear()
        c = sat(bad)
        submit(c, (Y[0], "local-Pass-9"), message(Y[0], Z[0], "refused"), [Z[0]])
        c.wait_log(r"AUTH as y@b\.example refused: 535 5\.7\.8")
        c.wait_log(r"to=<z@c\.example>, relay=none, attempts=1, status=deferred")
        assert "z@c.example" in c.cli("queue", "list").stdout
    finally:
        for d in made:
            d.stop()
            d.cleanup()
        shutil.rmtree(secrets)


def test_connection_cache_reuses_the_connection(world):
    """Mail for a destination that comes while the last session waits idle
    (smtp_out_idle_time) goes over the same connection: B sees one
    connection from A for two messages submitted one after the other."""
    a, b = world.a, world.b
    mark = b.log_mark()
    submit(a, X, message(X[0], Y[0], "first"), [Y[0]])
    a.wait_log(r"to=<y@b\.example>, relay=mx\.b\.example, attempts=1, status=sent")
    submit(a, X, message(X[0], Y[0], "second"), [Y[0]])
    yt.wait_until(lambda: len(re.findall(r"to=<y@b\.example>, relay=mx\.b\.example, "
                                         r"attempts=1, status=sent", a.log())) == 2,
                  what="both sent")
    assert len(re.findall(r"smtp: connect from \[127\.0\.0\.2\]", b.log(mark))) == 1
    assert [email.message_from_bytes(m)["Subject"] for m in pop3_all(b, Y)] == \
        ["first", "second"]
