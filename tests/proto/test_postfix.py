"""Interop with a real Postfix started by the test.

On one machine: Postfix (postfixpeer.Postfix, its own directory, `postfix
-c DIR`) on 127.0.0.5 relays b.example to yubind B on 127.0.0.3 and keeps
the virtual mailbox domain p.example in Maildirs (u@ and s@p.example);
yubind A on 127.0.0.2 serves a.example and has a route for p.example to
[127.0.0.5]:PORT.  Nothing uses the DNS: Postfix's transport and A's route
name address literals.

    Postfix -> yubind   s@p.example writes to y@b.example through Postfix;
                        y reads it over POP3; nobody@b.example is refused
                        at RCPT and Postfix returns the mail to s.
    yubind -> Postfix   x@a.example submits (STARTTLS + AUTH) to
                        u@p.example; it lands in u's Maildir;
                        unknown@p.example is refused by Postfix and A puts
                        a DSN into x's INBOX.
    TLS                 both directions again with STARTTLS offered.
"""

import email
import email.policy
import email.utils
import poplib
import re
import smtplib
import ssl
import threading

import pytest

import postfixpeer as pp
import yubintest as yt

X = ("x@a.example", "x-Pass-1")
Y = ("y@b.example", "y-Pass-2")
S = "s@p.example"           # a Postfix mailbox: sender towards yubind
U = "u@p.example"           # a Postfix mailbox: recipient from yubind
PF_IP, A_IP, B_IP = "127.0.0.5", "127.0.0.2", "127.0.0.3"
PF_HOST = "pf.example.test"


class World:
    """Postfix on PF_IP and the yubind instances a test asks for: A
    (a.example, x, route p.example -> Postfix) and/or B (b.example, y).
    tls: Postfix offers STARTTLS (smtpd) and uses it towards yubind (smtp).

    Postfix starts in a thread while the yubinds start (each takes a second
    or two); B's SMTP port is picked before, for Postfix's transport map."""

    def __init__(self, template, cert, a=True, b=True, tls=False):
        self.a = self.b = self.pf = None
        try:
            self._start(template, cert, a, b, tls)
        except BaseException:
            self.stop(check=False)
            raise

    def _start(self, template, cert, want_a, want_b, tls):
        pf_port = pp.free_port_on([PF_IP])
        b_port = pp.free_port_on([B_IP])
        extra = {}
        if tls:
            extra = {"smtp_tls_security_level": "may", "smtp_tls_loglevel": "1"}
        self.pf = pp.Postfix(PF_IP, port=pf_port, hostname=PF_HOST,
                             relay={"b.example": f"[{B_IP}]:{b_port}"},
                             vdomain="p.example", mailboxes=["u", "s"],
                             tls=(cert.cert, cert.key) if tls else None, main_extra=extra)
        outcome = []

        def start_postfix():
            try:
                self.pf.start()
            except BaseException as e:      # pytest.fail() raises a BaseException
                outcome.append(e)

        t = threading.Thread(target=start_postfix, name="postfix-start")
        t.start()
        try:
            common = {
                "queue_retry_min": "1s",
                "queue_retry_max": "2s",
                "smtp_out_connect_timeout": "5s",
                "smtp_out_timeout": "15s",
            }
            if want_b:
                self.b = self._daemon(template, cert, B_IP, b_port, "mx.b.example", common,
                                      "b.example", Y)
            if want_a:
                self.a = self._daemon(template, cert, A_IP, 0, "mx.a.example", common,
                                      "a.example", X, route=("p.example", f"[{PF_IP}]:{pf_port}"))
        finally:
            t.join(pp.DEADLINE * 4)
        if t.is_alive():
            pytest.fail("postfix start did not finish", pytrace=False)
        if outcome:
            raise outcome[0]

    @staticmethod
    def _daemon(template, cert, ip, port, host, common, domain, user, route=None):
        d = yt.Yubind(template, cert, {
            **common,
            "hostname": host,
            "listen_smtp": f"{ip}:{port}",
            "listen_submission": f"{ip}:0",
            "listen_submissions": "",
            "listen_pop3": f"{ip}:0",
            "listen_pop3s": "",
            "listen_imap": "",
            "listen_imaps": "",
        })
        d.ip = ip
        try:
            d.cli("domain", "add", domain)
            d.cli("user", "add", user[0], input=user[1] + "\n")
            if route:
                d.cli("route", "add", *route)
            d.start()
        except BaseException:
            d.cleanup()
            raise
        return d

    def stop(self, check=True, dump=False):
        try:
            for d in (self.a, self.b):
                if d is not None:
                    if dump:
                        print(f"\n---- yubind log {d.log_path} ----\n{d.log()[-6000:]}")
                    try:
                        d.stop(check=check)
                    finally:
                        d.cleanup()
        finally:
            if self.pf is not None:
                if dump:
                    print(f"\n---- postfix log {self.pf.log_path} ----\n{self.pf.log()[-6000:]}")
                self.pf.cleanup()


@pytest.fixture
def make_world(request, template, cert):
    made = []

    def make(**kw):
        w = World(template, cert, **kw)
        made.append(w)
        return w

    yield make
    rep = getattr(request.node, "rep_call", None)
    failed = rep is not None and rep.failed
    errors = []
    for w in made:
        try:
            w.stop(dump=failed)
        except BaseException as e:   # tear every world down, then report
            errors.append(e)
    if errors:
        raise errors[0]


# ------------------------------------------------------------ helpers ----

def inject(pf, sender, rcpts, msg):
    """Hand a message to Postfix over SMTP, as a client on the loopback."""
    s = smtplib.SMTP(pf.addr, pf.port, local_hostname="client.p.example",
                     timeout=yt.IO_TIMEOUT)
    try:
        refused = s.sendmail(sender, rcpts, msg)
        assert refused == {}, refused
        s.quit()
    finally:
        s.close()


def submit(d, user, msg, to):
    s = smtplib.SMTP(d.ip, d.ports["submission"], local_hostname="client.a.example",
                     timeout=yt.IO_TIMEOUT)
    try:
        s.starttls(context=ssl._create_unverified_context())
        s.ehlo("client.a.example")
        s.login(user[0], user[1])
        s.sendmail(user[0], to, msg)
        s.quit()
    finally:
        s.close()


def pop3_all(d, user):
    p = poplib.POP3(d.ip, d.ports["pop3"], timeout=yt.IO_TIMEOUT)
    p.user(user[0])
    p.pass_(user[1])
    n = len(p.list()[1])
    msgs = [b"\r\n".join(p.retr(i + 1)[1]) + b"\r\n" for i in range(n)]
    p.quit()
    return msgs


BODY = ("First line of the body.\r\n"
        ".a line that starts with a dot (stuffed on the wire)\r\n"
        ".\r\n"
        "\ttabbed line, trailing blanks   \r\n"
        "\r\n"
        + "x" * 900 + "\r\n"
        "last line\r\n")


def msgid(subject):
    return f"<{subject.replace(' ', '.')}@client.example>"


def message(frm, to, subject, body=BODY):
    return (f"From: {frm}\r\nTo: {to}\r\nSubject: {subject}\r\n"
            f"Message-ID: {msgid(subject)}\r\nDate: {email.utils.formatdate()}\r\n"
            f"\r\n{body}").encode()


def parse(raw):
    return email.message_from_bytes(raw, policy=email.policy.default)


def body_of(raw):
    """The body, with CRLF line ends whatever the mailbox stored."""
    raw = raw.replace(b"\r\n", b"\n")
    return raw.split(b"\n\n", 1)[1].replace(b"\n", b"\r\n")


def unfold(h):
    return re.sub(r"\s+", " ", str(h)).strip()


# -------------------------------------------------- Postfix -> yubind ----

def test_postfix_relays_to_yubind_pop3(make_world):
    w = make_world(a=False)
    pf, b = w.pf, w.b
    msg = message(S, Y[0], "postfix to yubind")
    inject(pf, S, [Y[0]], msg)
    # Postfix's smtp client hands it to B; B's reply names B's queue id
    m = pf.wait_log(r"(\w+): to=<y@b\.example>, relay=127\.0\.0\.3\[127\.0\.0\.3\]:%d, .*"
                    r"dsn=2\.0\.0, status=sent \(250 2\.0\.0 (.*)\)" % b.smtp_port)
    pf_qid, b_reply = m.group(1), m.group(2)
    bm = b.wait_log(r"(\w+): to=<y@b\.example>, relay=local, status=sent")
    b_qid = bm.group(1)
    assert b_qid in b_reply, (b_qid, b_reply)
    assert re.search(r"%s: from=<s@p\.example>, size=\d+, nrcpt=1" % b_qid, b.log())

    got = pop3_all(b, Y)
    assert len(got) == 1
    raw = got[0]
    m = parse(raw)
    assert raw.startswith(b"Return-Path: <s@p.example>\r\n")
    assert raw.count(b"Return-Path:") == 1
    rec = [unfold(r) for r in m.get_all("Received")]
    assert len(rec) == 2, rec
    # B's own line on top: from Postfix's HELO name and address, plain ESMTP
    assert re.match(r"from %s \(\[127\.0\.0\.5\]\) by mx\.b\.example \(Yubin\) with ESMTP "
                    r"id %s for <y@b\.example>; " % (re.escape(PF_HOST), b_qid), rec[0]), rec[0]
    # then Postfix's, with Postfix's queue id
    assert re.match(r"from client\.p\.example \(unknown \[127\.0\.0\.1\]\) by %s \(Postfix\) "
                    r"with ESMTP id %s for <y@b\.example>; " % (re.escape(PF_HOST), pf_qid),
                    rec[1]), rec[1]
    assert m["Subject"] == "postfix to yubind"
    assert m["Message-ID"] == msgid("postfix to yubind")
    assert body_of(raw) == BODY.encode()
    # nothing is left in either queue
    assert "Mail queue is empty" in b.cli("queue", "list").stdout
    pf.wait_log(r"%s: removed" % pf_qid)


def test_yubind_rcpt_reject_makes_postfix_bounce(make_world):
    w = make_world(a=False)
    pf, b = w.pf, w.b
    inject(pf, S, ["nobody@b.example"], message(S, "nobody@b.example", "to nobody at b"))
    b.wait_log(r"smtp: reject: RCPT from \[127\.0\.0\.5\]: 550 5\.1\.1 .*"
               r"from=<s@p\.example> to=<nobody@b\.example>")
    m = pf.wait_log(r"(\w+): to=<nobody@b\.example>, relay=127\.0\.0\.3\[127\.0\.0\.3\]:%d, .*"
                    r"dsn=5\.1\.1, status=bounced \(host 127\.0\.0\.3\[127\.0\.0\.3\] said: "
                    r"(550 5\.1\.1 <nobody@b\.example>[^\n]*) \(in reply to RCPT TO command\)\)"
                    % b.smtp_port)
    qid, b_text = m.group(1), m.group(2)
    pf.wait_log(r"%s: sender non-delivery notification: (\w+)" % qid)
    # the bounce went to s@p.example's Maildir
    got = pf.wait_messages("s", 1)
    assert len(got) == 1
    bounce = parse(got[0])
    assert got[0].startswith(b"Return-Path: <>\n")
    assert bounce.get_content_type() == "multipart/report"
    assert bounce.get_param("report-type") == "delivery-status"
    assert "MAILER-DAEMON@" + PF_HOST in bounce["From"]
    status = [p for p in bounce.walk() if p.get_content_type() == "message/delivery-status"]
    assert len(status) == 1
    text = unfold(status[0].as_string())
    assert "Final-Recipient: rfc822; nobody@b.example" in text
    assert "Action: failed" in text
    assert "Status: 5.1.1" in text
    assert "Remote-MTA: dns; 127.0.0.3" in text
    assert "Diagnostic-Code: smtp; " + unfold(b_text) in text
    # yubind stored nothing and queued nothing
    assert pop3_all(b, Y) == []
    assert "Mail queue is empty" in b.cli("queue", "list").stdout


# -------------------------------------------------- yubind -> Postfix ----

def test_yubind_delivers_to_postfix_maildir(make_world):
    w = make_world(b=False)
    pf, a = w.pf, w.a
    submit(a, X, message(X[0], U, "yubind to postfix"), [U])
    m = a.wait_log(r"(\w+): to=<u@p\.example>, relay=127\.0\.0\.5, attempts=1, status=sent "
                   r"\(250 2\.0\.0 Ok: queued as (\w+)\)")
    a_qid, pf_qid = m.group(1), m.group(2)
    pf.wait_log(r"%s: from=<x@a\.example>, size=\d+, nrcpt=1" % pf_qid)
    pf.wait_log(r"%s: to=<u@p\.example>, relay=virtual, .*status=sent \(delivered to maildir\)"
                % pf_qid)
    # A's session as Postfix saw it: no STARTTLS offered, every command
    # accepted, a clean QUIT
    pf.wait_log(r"disconnect from unknown\[127\.0\.0\.1\] ehlo=1 mail=1 rcpt=1 data=1 "
                r"quit=1 commands=5")

    got = pf.wait_messages("u", 1)
    assert len(got) == 1
    raw = got[0]
    m = parse(raw)
    assert m["Return-Path"] == "<x@a.example>"       # Postfix's: from A's MAIL FROM
    assert raw.count(b"Return-Path:") == 1           # A's own was not sent along
    assert m["Delivered-To"] == U
    rec = [unfold(r) for r in m.get_all("Received")]
    assert len(rec) == 2, rec
    assert re.match(r"from mx\.a\.example \(unknown \[127\.0\.0\.1\]\) by %s \(Postfix\) "
                    r"with ESMTP id %s for <u@p\.example>; " % (re.escape(PF_HOST), pf_qid),
                    rec[0]), rec[0]
    # RFC 3848: TLS and AUTH make it ESMTPSA
    assert re.match(r"from client\.a\.example \(\[127\.0\.0\.1\]\) by mx\.a\.example \(Yubin\) "
                    r"with ESMTPSA id %s \(version=TLSv1\.[23] " % a_qid, rec[1]), rec[1]
    assert "DKIM-Signature" not in m
    assert m["Subject"] == "yubind to postfix"
    assert m["Message-ID"] == msgid("yubind to postfix")
    assert m["From"] == X[0]
    assert body_of(raw) == BODY.encode()
    assert "Mail queue is empty" in a.cli("queue", "list").stdout
    assert pop3_all(a, X) == []     # no DSN for a delivered message


def test_postfix_rejects_unknown_yubind_returns_dsn(make_world):
    w = make_world(b=False)
    pf, a = w.pf, w.a
    submit(a, X, message(X[0], "unknown@p.example", "to unknown at p"), ["unknown@p.example"])
    reject = (r"550 5\.1\.1 <unknown@p\.example>: Recipient address rejected: "
              r"User unknown in virtual mailbox table")
    pf.wait_log(r"NOQUEUE: reject: RCPT from unknown\[127\.0\.0\.1\]: " + reject +
                r"; from=<x@a\.example> to=<unknown@p\.example> proto=ESMTP "
                r"helo=<mx\.a\.example>")
    a.wait_log(r"\w+: to=<unknown@p\.example>, relay=127\.0\.0\.5, attempts=1, "
               r"status=bounced \(" + reject + r"\)")
    a.wait_log(r"sender non-delivery notification: \w+ \(to <x@a\.example>, local\)")
    got = pop3_all(a, X)
    assert len(got) == 1
    dsn = parse(got[0])
    assert dsn["Return-Path"] == "<>"
    assert dsn.get_content_type() == "multipart/report"
    assert dsn.get_param("report-type") == "delivery-status"
    parts = list(dsn.iter_parts())
    assert parts[1].get_content_type() == "message/delivery-status"
    status = parts[1].as_string()
    assert "Reporting-MTA: dns; mx.a.example" in status
    assert "Final-Recipient: rfc822; unknown@p.example" in status
    assert "Action: failed" in status
    assert "Status: 5.1.1" in status
    assert re.search(r"Diagnostic-Code: smtp; " + reject, unfold(status)), status
    assert "Remote-MTA: dns; 127.0.0.5" in status
    assert "to unknown at p" in parts[2].as_string()
    # Postfix stored nothing, A's queue is empty
    assert pf.messages("unknown") == [] and pf.messages("u") == []
    assert "Mail queue is empty" in a.cli("queue", "list").stdout


# --------------------------------------------------------------- TLS ----

def test_starttls_both_ways(make_world):
    w = make_world(tls=True)
    pf, a, b = w.pf, w.a, w.b
    # yubind A -> Postfix: A's opportunistic STARTTLS; it presents no
    # client certificate, so Postfix calls it anonymous
    submit(a, X, message(X[0], U, "tls to postfix"), [U])
    a.wait_log(r"to=<u@p\.example>, relay=127\.0\.0\.5, attempts=1, status=sent")
    pf.wait_log(r"Anonymous TLS connection established from unknown\[127\.0\.0\.1\]: "
                r"TLSv1\.[23] with cipher")
    tm = a.wait_log(r"smtp_out: conn=\S+ TLS with 127\.0\.0\.5 \[127\.0\.0\.5\] (TLSv1\.[23]) "
                    r"\S+, certificate (.*)")
    # the self-signed certificate is not trusted, but opportunistic TLS goes on
    assert tm.group(2) != "verified"
    raw = pf.wait_messages("u", 1)[0]
    rec = [unfold(r) for r in parse(raw).get_all("Received")]
    assert re.match(r"from mx\.a\.example \(unknown \[127\.0\.0\.1\]\) \(using %s with cipher "
                    r"\S+ .*\) .*by %s \(Postfix\) with ESMTPS id "
                    % (tm.group(1).replace(".", r"\."), re.escape(PF_HOST)), rec[0]), rec[0]
    assert body_of(raw) == BODY.encode()

    # Postfix -> yubind B: Postfix's smtp_tls_security_level = may
    inject(pf, S, [Y[0]], message(S, Y[0], "tls to yubind"))
    pf.wait_log(r"(Untrusted|Anonymous) TLS connection established to "
                r"127\.0\.0\.3\[127\.0\.0\.3\]:%d: TLSv1\.[23] with cipher" % b.smtp_port)
    pf.wait_log(r"to=<y@b\.example>, relay=127\.0\.0\.3\[127\.0\.0\.3\]:%d, .*status=sent"
                % b.smtp_port)
    b.wait_log(r"to=<y@b\.example>, relay=local, status=sent")
    got = pop3_all(b, Y)
    assert len(got) == 1
    rec = [unfold(r) for r in parse(got[0]).get_all("Received")]
    assert re.match(r"from %s \(\[127\.0\.0\.5\]\) by mx\.b\.example \(Yubin\) with ESMTPS id "
                    r"\w+ \(version=TLSv1\.[23] cipher=\S+ bits=\d+\) for <y@b\.example>; "
                    % re.escape(PF_HOST), rec[0]), rec[0]
    assert body_of(got[0]) == BODY.encode()
