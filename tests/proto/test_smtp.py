"""SMTP behaviour of yubind (RFC 5321, 1870, 2920, 3030, 3207, 6152, 6531,
2034).  Every test asserts the reply code and the enhanced status code."""

import base64
import os
import re
import smtplib
import socket
import time

import pytest

import yubintest as yt
from yubintest import expect, queued_id, crlf, make_message, stored_data, split_stored

DEMO = "demo@example.test"
ALICE = "alice@example.test"
BOB = "bob@example.org"
SENDER = "sender@example.net"


def only_message(y, user=DEMO):
    msgs = y.fetch(user)
    assert len(msgs) == 1, f"{user}: want 1 message, have {len(msgs)}"
    return msgs[0]


# ---------------------------------------------------------- greeting/EHLO

def test_greeting_and_ehlo_keywords(yubind):
    c = yt.SmtpClient(yubind.smtp_port)
    g = c.reply()
    expect(g, 220)
    assert yt.HOSTNAME in g.lines[0]
    r = expect(c.cmd("EHLO client.example.net"), 250)
    assert r.lines[0].split()[0] == yt.HOSTNAME
    kw = c.ehlo_keywords(r)
    for k in ("PIPELINING", "SIZE", "8BITMIME", "ENHANCEDSTATUSCODES", "STARTTLS",
              "SMTPUTF8", "CHUNKING"):
        assert k in kw, f"EHLO lacks {k}: {r!r}"
    assert len(kw["SIZE"]) == 1 and kw["SIZE"][0].isdigit()
    c.quit()


@pytest.mark.yubind_conf(message_size_limit=123456)
def test_ehlo_size_is_the_limit(yubind):
    c = yubind.smtp()
    assert c.ehlo_keywords()["SIZE"] == ["123456"]
    c.quit()


@pytest.mark.yubind_conf(tls_cert=None, tls_key=None, listen_pop3s=None, listen_imaps=None,
                         listen_submissions=None)
def test_no_starttls_without_certificate(yubind):
    c = yubind.smtp()
    assert "STARTTLS" not in c.ehlo_keywords()
    r = c.cmd("STARTTLS")
    assert r.code >= 400, r
    c.quit()


def test_helo_works(yubind):
    c = yubind.smtp(ehlo=None)
    expect(c.cmd("HELO client.example.net"), 250)
    c.mail_tx(SENDER, [DEMO])
    queued_id(c.data(make_message()))
    c.quit()
    _, received, _ = split_stored(only_message(yubind))
    assert " with SMTP " in yt.unfold(received)


@pytest.mark.parametrize("line,code,enh", [
    ("NOOP", 250, "2.0.0"),
    ("NOOP ignored argument", 250, "2.0.0"),
    ("RSET", 250, "2.0.0"),
    ("VRFY demo", 252, "2.1.5"),
    ("VRFY <demo@example.test>", 252, "2.1.5"),
    ("HELP", 214, None),
    ("FROBNICATE", 500, "5.5.2"),
    ("MAILFROM:<a@b.example>", 500, "5.5.2"),
    ("", 500, "5.5.2"),
])
def test_simple_commands(yubind, line, code, enh):
    c = yubind.smtp()
    expect(c.cmd(line), code, enh)
    expect(c.cmd("NOOP"), 250, "2.0.0")
    c.quit()


def test_quit(yubind):
    c = yubind.smtp()
    expect(c.cmd("QUIT"), 221, "2.0.0")
    assert c.closed_by_peer(), "connection open after QUIT"


def test_commands_case_insensitive(yubind):
    c = yubind.smtp(ehlo=None)
    expect(c.cmd("ehlo client.example.net"), 250)
    expect(c.cmd("mail from:<sender@example.net>"), 250, "2.1.0")
    expect(c.cmd("rcpt to:<demo@example.test>"), 250, "2.1.5")
    expect(c.cmd("rset"), 250, "2.0.0")
    c.quit()


# ---------------------------------------------------------------- sequence

@pytest.mark.parametrize("steps", [
    [("RCPT TO:<demo@example.test>", 503, "5.5.1")],
    [("DATA", 503, "5.5.1")],
    [("MAIL FROM:<a@example.net>", 250, "2.1.0"), ("MAIL FROM:<a@example.net>", 503, "5.5.1")],
    [("MAIL FROM:<a@example.net>", 250, "2.1.0"), ("RSET", 250, "2.0.0"),
     ("RCPT TO:<demo@example.test>", 503, "5.5.1")],
    [("MAIL FROM:<a@example.net>", 250, "2.1.0"), ("DATA", 554, "5.5.1")],
], ids=["rcpt-before-mail", "data-before-mail", "nested-mail", "rcpt-after-rset",
        "data-without-rcpt"])
def test_sequence_errors(yubind, steps):
    c = yubind.smtp()
    for line, code, enh in steps:
        expect(c.cmd(line), code, enh)
    c.quit()


def test_mail_before_ehlo(yubind):
    c = yubind.smtp(ehlo=None)
    expect(c.cmd("MAIL FROM:<a@example.net>"), 503, "5.5.1")
    c.quit()


def test_data_with_only_rejected_recipients(yubind):
    c = yubind.smtp()
    expect(c.cmd("MAIL FROM:<a@example.net>"), 250, "2.1.0")
    expect(c.cmd("RCPT TO:<nosuchuser@example.test>"), 550, "5.1.1")
    expect(c.cmd("DATA"), 554, "5.5.1")
    expect(c.cmd("NOOP"), 250, "2.0.0")
    c.quit()


# --------------------------------------------------------- address syntax

@pytest.mark.parametrize("sender", [
    "not an address", "a@b@example.net", "@example.net", "a@", "a..b@example.net",
    "a@example..net", "a@-example.net", "a@example.net.",
])
def test_bad_sender_syntax(yubind, sender):
    c = yubind.smtp()
    expect(c.cmd(f"MAIL FROM:<{sender}>"), 501, "5.1.7")
    c.quit()


def test_sender_without_brackets_or_garbage(yubind):
    c = yubind.smtp()
    for line in ("MAIL FROM:", "MAIL FROM:<a@example.net", "MAIL FROM:<a@example.net>>"):
        r = c.cmd(line)
        assert r.code == 501, (line, r)
    c.quit()


@pytest.mark.parametrize("rcpt", [
    "demo@@example.test", "demo", "demo@", "@example.test", "demo@example..test",
    "demo@example.test.", "user@other.example.", "de mo@example.test",
])
def test_bad_recipient_syntax(yubind, rcpt):
    c = yubind.smtp()
    expect(c.cmd("MAIL FROM:<a@example.net>"), 250, "2.1.0")
    expect(c.cmd(f"RCPT TO:<{rcpt}>"), 501, "5.1.3")
    c.quit()


def test_null_sender_accepted(yubind):
    c = yubind.smtp()
    expect(c.cmd("MAIL FROM:<>"), 250, "2.1.0")
    expect(c.cmd(f"RCPT TO:<{DEMO}>"), 250, "2.1.5")
    queued_id(c.data(make_message(subject="bounce")))
    c.quit()
    first, _, _ = split_stored(only_message(yubind))
    assert first == b"Return-Path: <>"


def test_unknown_local_user(yubind):
    c = yubind.smtp()
    expect(c.cmd("MAIL FROM:<a@example.net>"), 250, "2.1.0")
    expect(c.cmd("RCPT TO:<nosuchuser@example.test>"), 550, "5.1.1")
    expect(c.cmd("RCPT TO:<nosuchuser@example.org>"), 550, "5.1.1")
    c.quit()


# ------------------------------------------------------------------ relay

@pytest.mark.parametrize("rcpt", [
    "user@other.example",
    "user@OTHER.EXAMPLE",
    "@example.test:user@other.example",
    "@example.test,@example.org:user@other.example",
])
def test_relay_refused(yubind, rcpt):
    c = yubind.smtp()
    expect(c.cmd("MAIL FROM:<a@example.net>"), 250, "2.1.0")
    expect(c.cmd(f"RCPT TO:<{rcpt}>"), 554, "5.7.1")
    expect(c.cmd("DATA"), 554, "5.5.1")
    c.quit()


@pytest.mark.parametrize("rcpt", [
    "user%other.example@example.test",
    '"user@other.example"@example.test',
    "other.example!user@example.test",
    "user@[127.0.0.1]",
    "demo@[127.0.0.1]",
    "demo%example.test@example.org",
])
def test_relay_tricks_refused(yubind, rcpt):
    """Local-part routing and address literals never relay and never
    deliver: refused as relaying, as an unknown user or as bad syntax."""
    c = yubind.smtp()
    expect(c.cmd("MAIL FROM:<a@example.net>"), 250, "2.1.0")
    r = c.cmd(f"RCPT TO:<{rcpt}>")
    assert (r.code, r.enh) in {(554, "5.7.1"), (550, "5.1.1"), (501, "5.1.3")}, r
    expect(c.cmd("DATA"), 554, "5.5.1")
    c.quit()
    for u in (DEMO, ALICE, BOB):
        assert yubind.fetch(u) == []


def test_source_route_to_local_domain_delivers(yubind):
    c = yubind.smtp()
    c.mail_tx(SENDER, ["@other.example:demo@example.test"])
    queued_id(c.data(make_message()))
    c.quit()
    only_message(yubind)


def test_recipient_case_insensitive(yubind):
    c = yubind.smtp()
    c.mail_tx(SENDER, ["DEMO@EXAMPLE.TEST"])
    queued_id(c.data(make_message()))
    c.quit()
    only_message(yubind, DEMO)


def test_postmaster_bare(yubind):
    c = yubind.smtp()
    expect(c.cmd("MAIL FROM:<a@example.net>"), 250, "2.1.0")
    expect(c.cmd("RCPT TO:<postmaster>"), 250, "2.1.5")
    queued_id(c.data(make_message(to="postmaster")))
    expect(c.cmd("MAIL FROM:<a@example.net>"), 250, "2.1.0")
    expect(c.cmd("RCPT TO:<PostMaster>"), 250, "2.1.5")
    queued_id(c.data(make_message(to="PostMaster")))
    c.quit()
    assert len(yubind.fetch(yt.POSTMASTER)) == 2


def test_postmaster_of_domain_without_account(yubind):
    data = make_message(subject="to the postmaster of example.org")
    c = yubind.smtp()
    expect(c.cmd("MAIL FROM:<a@example.net>"), 250, "2.1.0")
    expect(c.cmd("RCPT TO:<POSTMASTER@example.org>"), 250, "2.1.5")
    queued_id(c.data(data))
    c.quit()
    msgs = yubind.fetch(yt.POSTMASTER)
    assert [stored_data(m) for m in msgs] == [data]


# ------------------------------------------------------------ parameters

def test_unknown_esmtp_parameter(yubind):
    c = yubind.smtp()
    expect(c.cmd("MAIL FROM:<a@example.net> FOO=BAR"), 555, "5.5.4")
    expect(c.cmd("MAIL FROM:<a@example.net>"), 250, "2.1.0")
    expect(c.cmd("RCPT TO:<demo@example.test> FOO=BAR"), 555, "5.5.4")
    c.quit()


@pytest.mark.parametrize("param", ["BODY=8BITMIME", "BODY=7BIT", "SIZE=100", "SMTPUTF8",
                                   "BODY=8BITMIME SIZE=10 SMTPUTF8"])
def test_known_mail_parameters(yubind, param):
    c = yubind.smtp()
    expect(c.cmd(f"MAIL FROM:<a@example.net> {param}"), 250, "2.1.0")
    c.quit()


@pytest.mark.yubind_conf(message_size_limit=10000)
def test_size_parameter_limit(yubind):
    c = yubind.smtp()
    expect(c.cmd("MAIL FROM:<a@example.net> SIZE=10001"), 552, "5.3.4")
    # 20 digits is the longest valid size-value (RFC 1870) and overflows int64
    expect(c.cmd("MAIL FROM:<a@example.net> SIZE=99999999999999999999"), 552, "5.3.4")
    r = c.cmd("MAIL FROM:<a@example.net> SIZE=999999999999999999999999999")
    assert (r.code, r.enh) in {(552, "5.3.4"), (501, "5.5.4")}, r
    expect(c.cmd("MAIL FROM:<a@example.net> SIZE=10000"), 250, "2.1.0")
    c.quit()


def test_utf8_address_needs_smtputf8(yubind):
    c = yubind.smtp()
    expect(c.cmd("MAIL FROM:<pelé@example.net>"), 553, "5.6.7")
    expect(c.cmd("MAIL FROM:<a@example.net>"), 250, "2.1.0")
    expect(c.cmd("RCPT TO:<dëmo@example.test>"), 553, "5.6.7")
    c.quit()


def test_utf8_sender_with_smtputf8(yubind):
    c = yubind.smtp()
    expect(c.cmd("MAIL FROM:<pelé@例え.example> SMTPUTF8"), 250, "2.1.0")
    expect(c.cmd(f"RCPT TO:<{DEMO}>"), 250, "2.1.5")
    queued_id(c.data(make_message()))
    c.quit()
    first, _, _ = split_stored(only_message(yubind))
    assert first == "Return-Path: <pelé@例え.example>".encode()


# ------------------------------------------------------------- delivery

@pytest.mark.yubind_conf(listen_smtp="[::1]:0")
def test_ipv6_listener_and_received(yubind):
    """An IPv6 listener works, and Received names the client with the
    RFC 5321 IPv6 address literal."""
    data = make_message(subject="over IPv6")
    c = yt.SmtpClient(yubind.smtp_port, host="::1")
    expect(c.reply(), 220)
    expect(c.cmd("EHLO v6.client.example"), 250)
    c.mail_tx(SENDER, [DEMO])
    queued_id(c.data(data))
    c.quit()
    _, received, body = split_stored(only_message(yubind))
    assert yt.unfold(received).startswith(
        "Received: from v6.client.example ([IPv6:::1])"), received
    assert body == data
    assert "connect from [::1]" in yubind.log()


def test_stored_message_format(yubind):
    data = make_message(body="line one\n.leading dot\n..two dots\n\nlast\n")
    c = yubind.smtp(ehlo="helo.client.example")
    c.mail_tx(SENDER, [DEMO])
    qid = queued_id(c.data(data))
    c.quit()
    msg = only_message(yubind)
    first, received, body = split_stored(msg)
    assert first == f"Return-Path: <{SENDER}>".encode()
    unfolded = yt.unfold(received)
    assert re.match(r"Received: from helo\.client\.example \(\[127\.0\.0\.1\]\) "
                    r"by mx\.example\.test \(Yubin\) with ESMTP\b", unfolded), unfolded
    assert f"id {qid}" in unfolded, unfolded
    assert re.search(r";\s*\S.*\d{4}", unfolded), "Received lacks a date"
    for line in received.split(b"\r\n")[:-1]:
        assert len(line) <= 998
    assert body == data
    log = yubind.wait_log(rf"{re.escape(qid)}: to=<{DEMO}>, relay=local, status=sent")
    assert log
    assert re.search(rf"{re.escape(qid)}: from=<{SENDER}>, size=\d+, nrcpt=1", yubind.log())


def test_log_names_sessions(yubind):
    yubind.send(SENDER, [DEMO], make_message())
    yubind.fetch(DEMO)
    log = yubind.log()
    assert re.search(r"conn=\S+ smtp:", log), log[-2000:]
    assert re.search(r"conn=\S+ pop3:", log), log[-2000:]
    for addr, pw in yt.USERS.items():
        assert pw not in log


def test_several_recipients(yubind):
    data = make_message(to="several")
    c = yubind.smtp()
    c.mail_tx(SENDER, [DEMO, ALICE, BOB])
    qid = queued_id(c.data(data))
    c.quit()
    for u in (DEMO, ALICE, BOB):
        msgs = yubind.fetch(u)
        assert len(msgs) == 1, u
        assert stored_data(msgs[0]) == data
    assert yubind.fetch(yt.POSTMASTER) == []
    assert re.search(rf"{re.escape(qid)}: from=<{SENDER}>, size=\d+, nrcpt=3", yubind.log())


def test_duplicate_recipient_delivered_once(yubind):
    c = yubind.smtp()
    expect(c.cmd(f"MAIL FROM:<{SENDER}>"), 250, "2.1.0")
    expect(c.cmd(f"RCPT TO:<{DEMO}>"), 250, "2.1.5")
    r = c.cmd("RCPT TO:<Demo@Example.Test>")
    assert r.code == 250, r
    queued_id(c.data(make_message()))
    c.quit()
    assert len(yubind.fetch(DEMO)) == 1


def test_two_transactions_one_session(yubind):
    d1, d2 = make_message(subject="one"), make_message(subject="two")
    c = yubind.smtp()
    c.mail_tx(SENDER, [DEMO])
    q1 = queued_id(c.data(d1))
    c.mail_tx(SENDER, [DEMO])
    q2 = queued_id(c.data(d2))
    c.quit()
    assert q1 != q2
    assert [stored_data(m) for m in yubind.fetch(DEMO)] == [d1, d2]


def test_rset_clears_transaction(yubind):
    c = yubind.smtp()
    c.mail_tx(SENDER, [ALICE])
    expect(c.cmd("RSET"), 250, "2.0.0")
    expect(c.cmd("DATA"), 503, "5.5.1")
    c.mail_tx(SENDER, [DEMO])
    queued_id(c.data(make_message()))
    c.quit()
    assert yubind.fetch(ALICE) == []
    assert len(yubind.fetch(DEMO)) == 1


def test_eight_bit_body(yubind):
    body = ("Grüße aus Köln – naïve café, ½ € £.\n"
            "日本語の本文です。\n").encode("utf-8") + b"latin1: \xe9\xe8\xff\n"
    data = crlf(b"From: a@example.net\nSubject: 8bit\nContent-Type: text/plain\n"
                b"Content-Transfer-Encoding: 8bit\n\n" + body)
    c = yubind.smtp()
    c.mail_tx(SENDER, [DEMO], " BODY=8BITMIME")
    queued_id(c.data(data))
    c.quit()
    assert stored_data(only_message(yubind)) == data


def iso2022jp_message():
    subject = "日本語の件名テスト"
    enc = base64.b64encode(subject.encode("iso-2022-jp")).decode()
    lines = ["こんにちは、世界。", "これはISO-2022-JPのテストです。", "以上。"]
    body = b"".join(l.encode("iso-2022-jp") + b"\r\n" for l in lines)
    head = (f"From: sender@example.net\r\nTo: demo@example.test\r\n"
            f"Subject: =?ISO-2022-JP?B?{enc}?=\r\nMIME-Version: 1.0\r\n"
            f"Content-Type: text/plain; charset=ISO-2022-JP\r\n"
            f"Content-Transfer-Encoding: 7bit\r\n\r\n").encode()
    return head + body


def test_iso2022jp_body(yubind):
    data = iso2022jp_message()
    assert b"\x1b$B" in data
    yubind.send(SENDER, [DEMO], data)
    assert stored_data(only_message(yubind)) == data


def test_dot_stuffing_roundtrip(yubind):
    data = crlf(b"Subject: dots\n\n.\n..\n...\n. \n.x\nend\n")
    yubind.send(SENDER, [DEMO], data)
    assert stored_data(only_message(yubind)) == data


def test_empty_body(yubind):
    c = yubind.smtp()
    c.mail_tx(SENDER, [DEMO])
    expect(c.cmd("DATA"), 354)
    c.send(b".\r\n")
    queued_id(c.reply())
    c.quit()
    assert stored_data(only_message(yubind)) == b""


# ------------------------------------------------------------ pipelining

def test_pipelining_one_write(yubind):
    c = yt.SmtpClient(yubind.smtp_port)
    expect(c.reply(), 220)
    c.send("EHLO client.example.net\r\nMAIL FROM:<sender@example.net>\r\n"
           "RCPT TO:<demo@example.test>\r\nRCPT TO:<nosuch@example.test>\r\n"
           "RCPT TO:<alice@example.test>\r\nDATA\r\n")
    expect(c.reply(), 250)
    expect(c.reply(), 250, "2.1.0")
    expect(c.reply(), 250, "2.1.5")
    expect(c.reply(), 550, "5.1.1")
    expect(c.reply(), 250, "2.1.5")
    expect(c.reply(), 354)
    data = make_message()
    c.send(yt.dotstuff(data) + b".\r\nQUIT\r\n")
    queued_id(c.reply())
    expect(c.reply(), 221, "2.0.0")
    c.close()
    assert stored_data(only_message(yubind, DEMO)) == data
    assert stored_data(only_message(yubind, ALICE)) == data


def test_pipelining_whole_session_one_write(yubind):
    d1 = make_message(subject="p1")
    d2 = make_message(subject="p2")
    c = yt.SmtpClient(yubind.smtp_port)
    expect(c.reply(), 220)
    expect(c.cmd("EHLO client.example.net"), 250)
    c.send(b"MAIL FROM:<a@example.net>\r\nRCPT TO:<demo@example.test>\r\nDATA\r\n"
           + yt.dotstuff(d1) + b".\r\n"
           b"MAIL FROM:<a@example.net>\r\nRCPT TO:<demo@example.test>\r\nDATA\r\n"
           + yt.dotstuff(d2) + b".\r\nQUIT\r\n")
    for _ in range(2):
        expect(c.reply(), 250, "2.1.0")
        expect(c.reply(), 250, "2.1.5")
        expect(c.reply(), 354)
        queued_id(c.reply())
    expect(c.reply(), 221, "2.0.0")
    c.close()
    assert [stored_data(m) for m in yubind.fetch(DEMO)] == [d1, d2]


def test_smtplib_sendmail(yubind):
    data = make_message(subject="smtplib")
    with smtplib.SMTP("127.0.0.1", yubind.smtp_port, timeout=yt.IO_TIMEOUT) as s:
        s.ehlo("client.example.net")
        assert s.has_extn("pipelining")
        refused = s.sendmail(SENDER, [DEMO, BOB, "nosuch@example.test"], data)
        assert set(refused) == {"nosuch@example.test"}
        assert refused["nosuch@example.test"][0] == 550
    assert stored_data(only_message(yubind, DEMO)) == data
    assert stored_data(only_message(yubind, BOB)) == data


def test_pipelined_burst(yubind):
    """Thousands of commands in one write, crossing every read boundary:
    each gets its reply, in order."""
    c = yubind.smtp()
    n = 5000
    c.send(b"".join(b"NOOP %d\r\n" % i for i in range(n)) + b"QUIT\r\n")
    out = c.read_until_close()
    lines = out.split(b"\r\n")
    assert lines[-1] == b""
    assert len(lines) == n + 2
    assert all(l.startswith(b"250 2.0.0") for l in lines[:n])
    assert lines[n].startswith(b"221 2.0.0")


# -------------------------------------------------------------- smuggling

@pytest.mark.parametrize("eod", [b"\n.\n", b"\r.\r", b"\n.\r\n", b"\r\n.\n", b"\r\n.\r",
                                 b"\r.\r\n"],
                         ids=["LF.LF", "CR.CR", "LF.CRLF", "CRLF.LF", "CRLF.CR", "CR.CRLF"])
@pytest.mark.yubind_conf(smtp_bare_newline="normalize")
def test_smtp_smuggling(yubind, eod):
    head = b"From: a@example.net\r\nSubject: smuggling\r\n\r\nfirst part"
    smuggled = (b"MAIL FROM:<admin@example.test>\r\nRCPT TO:<alice@example.test>\r\n"
                b"DATA\r\nFrom: admin@example.test\r\nSubject: smuggled\r\n\r\nevil\r\n")
    c = yubind.smtp()
    c.mail_tx(SENDER, [DEMO])
    expect(c.cmd("DATA"), 354)
    c.send(head + eod + smuggled + b".\r\nQUIT\r\n")
    queued_id(c.reply())
    expect(c.reply(), 221, "2.0.0")
    assert c.read_until_close() == b"", "extra replies: a second message was started"
    assert yubind.fetch(ALICE) == []
    body = stored_data(only_message(yubind))
    assert body.startswith(head.split(b"\r\n")[0])
    assert b"first part" in body and b"MAIL FROM:<admin@example.test>" in body
    assert body.endswith(b"evil\r\n")
    # every line ending is CRLF once normalised
    assert b"\n" not in body.replace(b"\r\n", b"")
    if eod in (b"\n.\n", b"\n.\r\n"):
        # a dot after a bare LF is not at the start of an SMTP line: it is
        # content, kept as it was sent (the bare LF becomes CR LF)
        assert body == head + b"\r\n.\r\n" + smuggled


@pytest.mark.yubind_conf(smtp_bare_newline="reject")
def test_bare_newline_reject(yubind):
    c = yubind.smtp()
    c.mail_tx(SENDER, [DEMO])
    expect(c.cmd("DATA"), 354)
    c.send(b"Subject: x\r\n\r\nbare\nLF\n.\nMAIL FROM:<x@example.net>\r\nmore\r\n.\r\n")
    r = c.reply()
    assert 500 <= r.code < 600, r
    expect(c.cmd("NOOP"), 250, "2.0.0")
    c.quit()
    assert yubind.fetch(DEMO) == []


# ------------------------------------------------------------------ caps

def test_command_line_length_cap(yubind):
    c = yubind.smtp()
    ok = "NOOP " + "x" * (2048 - 2 - 5)                # 2048 octets with CRLF
    expect(c.cmd(ok), 250, "2.0.0")
    expect(c.cmd("NOOP " + "x" * 2049), 500, "5.5.2")
    expect(c.cmd("NOOP"), 250, "2.0.0")
    expect(c.cmd("MAIL FROM:<" + "a" * 3000 + "@example.net>"), 500, "5.5.2")
    expect(c.cmd("NOOP"), 250, "2.0.0")
    c.quit()


def test_huge_command_line(yubind):
    c = yubind.smtp()
    c.send(b"NOOP " + b"y" * 1_000_000)
    c.send(b"\r\nNOOP\r\n")
    r = c.reply()
    if r.code == 500:
        expect(r, 500, "5.5.2")
        expect(c.reply(), 250, "2.0.0")
        c.quit()
    else:                           # a server may also give up on the peer
        expect(r, 421)


@pytest.mark.parametrize("line", [b"NO\x00OP", b"NOOP\x00", b"MAIL FROM:<a\x00b@example.net>",
                                  b"\x00", b"EHLO a\x00b"])
def test_nul_in_command(yubind, line):
    c = yubind.smtp()
    c.send(line + b"\r\n")
    expect(c.reply(), 500, "5.5.2")
    expect(c.cmd("NOOP"), 250, "2.0.0")
    c.quit()


def build_message(size):
    head = b"Subject: size\r\n\r\n"
    n = size - len(head)
    line = b"x" * 76 + b"\r\n"
    body = line * (n // len(line))
    rest = n - len(body)
    if rest:
        body += b"y" * (rest - 2) + b"\r\n" if rest >= 2 else b""
    data = head + body
    if len(data) < size:  # rest == 1: grow one line by a byte
        data = head + b"z" + body
    assert len(data) == size
    return data


@pytest.mark.yubind_conf(message_size_limit=10000)
def test_message_size_limit_exact(yubind):
    at, over = build_message(10000), build_message(10001)
    c = yubind.smtp()
    c.mail_tx(SENDER, [DEMO])
    queued_id(c.data(at))
    c.mail_tx(SENDER, [DEMO])
    expect(c.data(over), 552, "5.3.4")
    c.mail_tx(SENDER, [DEMO])
    expect(c.data(build_message(200000)), 552, "5.3.4")
    expect(c.cmd("NOOP"), 250, "2.0.0")
    c.quit()
    assert [stored_data(m) for m in yubind.fetch(DEMO)] == [at]


@pytest.mark.yubind_conf(message_size_limit="8M", smtp_data_memory_max="1M",
                         smtp_data_in_memory="16M")
def test_data_memory_budget(yubind):
    """Message data in memory has a daemon-wide cap: a message that would go
    past it is refused for now (452 4.3.1), the data is still read to its
    end, and the memory comes back for the next message."""
    small, big = build_message(5000), build_message(3 * 1024 * 1024)
    c = yubind.smtp()
    c.mail_tx(SENDER, [DEMO])
    expect(c.data(big), 452, "4.3.1")
    c.mail_tx(SENDER, [DEMO])
    queued_id(c.data(small))
    c.mail_tx(SENDER, [DEMO])
    c.send(b"BDAT %d LAST\r\n" % len(big) + big)
    expect(c.reply(), 452, "4.3.1")
    c.mail_tx(SENDER, [DEMO])
    queued_id(c.data(small))
    c.quit()
    assert [stored_data(m) for m in yubind.fetch(DEMO)] == [small, small]
    assert "smtp_data_memory_max" in yubind.log()


def body_files(y):
    """(non-empty, empty) regular files under data/msg."""
    full = empty = 0
    for root, _, files in os.walk(os.path.join(y.data, "msg")):
        for f in files:
            if os.path.getsize(os.path.join(root, f)):
                full += 1
            else:
                empty += 1
    return full, empty


@pytest.mark.yubind_conf(message_size_limit="16M", smtp_data_memory_max="1M",
                         smtp_data_in_memory="32k")
def test_large_messages_stream_to_disk(yubind):
    """Beyond smtp_data_in_memory a message goes to its body file as it
    arrives: 6 MB through DATA and 5 MB through BDAT (chunks of 1 MB, the
    last line without CR LF) pass a 1 MB memory budget byte-exact, and a
    message abandoned half-way leaves no file behind."""
    line = b"".join(b"%07d streamed line .................................................\r\n" % i
                    for i in range(1000))
    big = b"Subject: streamed\r\n\r\n" + line * 90          # ~6.4 MB
    c = yubind.smtp()
    c.mail_tx(SENDER, [DEMO, ALICE])
    queued_id(c.data(big))
    chunk = b"x" * (1 << 20 - 1) + b"\r\n"
    c.mail_tx(SENDER, [DEMO])
    for _ in range(4):
        c.send(b"BDAT %d\r\n" % len(chunk) + chunk)
        expect(c.reply(), 250, "2.0.0")
    tail = b"last line without an end"
    c.send(b"BDAT %d LAST\r\n" % len(tail) + tail)
    queued_id(c.reply())
    # abandoned in the middle of its data
    c.mail_tx(SENDER, [DEMO])
    expect(c.cmd("DATA"), 354)
    c.send(line * 30)
    c.close()
    got = [stored_data(m) for m in yubind.fetch(DEMO)]
    assert got[0] == big
    assert got[1] == chunk * 4 + tail + b"\r\n"
    assert [stored_data(m) for m in yubind.fetch(ALICE)] == [big]
    assert "smtp_data_memory_max" not in yubind.log()
    # the abandoned message's file is removed (by a job: wait for it)
    yt.wait_until(lambda: body_files(yubind)[0] == 2, what="aborted body file removed")


@pytest.mark.yubind_conf(smtp_max_recipients=3)
def test_max_recipients(yubind):
    c = yubind.smtp()
    expect(c.cmd(f"MAIL FROM:<{SENDER}>"), 250, "2.1.0")
    for r in (DEMO, ALICE, BOB):
        expect(c.cmd(f"RCPT TO:<{r}>"), 250, "2.1.5")
    expect(c.cmd(f"RCPT TO:<{yt.POSTMASTER}>"), 452, "4.5.3")
    expect(c.cmd("RCPT TO:<postmaster>"), 452, "4.5.3")
    queued_id(c.data(make_message()))
    c.quit()
    for u in (DEMO, ALICE, BOB):
        assert len(yubind.fetch(u)) == 1
    assert yubind.fetch(yt.POSTMASTER) == []


@pytest.mark.yubind_conf(smtp_max_errors=3)
def test_max_errors(yubind):
    c = yubind.smtp()
    replies = []
    try:
        for i in range(6):
            replies.append(c.cmd(f"BOGUS{i}"))
            if replies[-1].code == 421:
                break
    except (EOFError, ConnectionResetError, BrokenPipeError):
        pass
    assert replies and replies[-1].code == 421, replies
    expect(replies[-1], 421, "4.7.0")
    assert 3 <= len(replies) <= 4, replies
    for r in replies[:-1]:
        expect(r, 500, "5.5.2")
    assert c.closed_by_peer(), "connection open after 421"


@pytest.mark.yubind_conf(smtp_timeout="1s")
def test_idle_timeout(yubind):
    c = yubind.smtp()
    t0 = time.monotonic()
    c.sock.settimeout(15)
    expect(c.reply(), 421, "4.4.2")
    assert time.monotonic() - t0 < 10
    assert c.closed_by_peer()


@pytest.mark.yubind_conf(smtp_timeout="30s", command_timeout="1s")
def test_command_deadline_slow_line(yubind):
    """Bytes trickling in without a line end do not keep the session alive."""
    c = yubind.smtp()
    c.sock.settimeout(0.25)
    deadline = time.monotonic() + 15
    got = None
    for ch in b"NOOP" + b"x" * 200:
        try:
            c.send(bytes([ch]))
            c._fill()
            got = c.reply()
            break
        except (socket.timeout, TimeoutError):
            assert time.monotonic() < deadline, "no 421 for a line that never ends"
        except (BrokenPipeError, ConnectionResetError, EOFError):
            break
    assert got is not None, "connection closed without 421"
    expect(got, 421, "4.4.2")


@pytest.mark.yubind_conf(smtp_timeout="30s", smtp_data_timeout="1s")
def test_data_deadline(yubind):
    """A DATA transfer that trickles on forever is cut at the deadline, even
    though each line arrives well within the idle timeout."""
    c = yubind.smtp()
    c.mail_tx(SENDER, [DEMO])
    expect(c.cmd("DATA"), 354)
    c.sock.settimeout(0.25)
    deadline = time.monotonic() + 15
    got = None
    while time.monotonic() < deadline:
        try:
            c.send(b"Subject: slow\r\n")
            c._fill()
            got = c.reply()
            break
        except (socket.timeout, TimeoutError):
            continue
        except (BrokenPipeError, ConnectionResetError, EOFError):
            break
    assert got is not None, "no 421 reply before close"
    expect(got, 421, "4.4.2")
    assert c.closed_by_peer()
    assert yubind.fetch(DEMO) == []


@pytest.mark.yubind_conf(max_connections_per_ip=2)
def test_max_connections_per_ip(yubind):
    a, b = yubind.smtp(), yubind.smtp()
    c = yt.SmtpClient(yubind.smtp_port)
    try:
        r = c.reply()
        assert r.code == 421, r
    except (EOFError, ConnectionResetError):
        pass
    c.close()
    a.quit()
    d = wait_for_greeting(yubind)
    d.quit()
    b.quit()


@pytest.mark.yubind_conf(max_connections=2, max_connections_per_ip=100)
def test_max_connections(yubind):
    a, b = yubind.smtp(), yubind.pop3()
    c = yt.SmtpClient(yubind.smtp_port)
    try:
        r = c.reply()
        assert r.code == 421, r
    except (EOFError, ConnectionResetError):
        pass
    c.close()
    b.quit()
    d = wait_for_greeting(yubind)
    d.quit()
    a.quit()


def wait_for_greeting(y):
    deadline = time.monotonic() + yt.DEADLINE
    while True:
        c = yt.SmtpClient(y.smtp_port)
        try:
            r = c.reply()
            if r.code == 220:
                return c
        except (EOFError, ConnectionResetError):
            pass
        c.close()
        assert time.monotonic() < deadline, "connection slot never freed"
        time.sleep(0.05)


# ------------------------------------------------------------------ BDAT

def test_bdat_chunks(yubind):
    data = make_message(subject="bdat", body="chunk body\n.starts with dot\n")
    parts = [data[:10], data[10:25], data[25:]]
    c = yubind.smtp()
    c.mail_tx(SENDER, [DEMO])
    for p in parts[:-1]:
        c.send(b"BDAT %d\r\n" % len(p) + p)
        expect(c.reply(), 250, "2.0.0")
    c.send(b"BDAT %d LAST\r\n" % len(parts[-1]) + parts[-1])
    queued_id(c.reply())
    c.quit()
    assert stored_data(only_message(yubind)) == data


def test_bdat_zero_last_and_pipelined(yubind):
    data = make_message(subject="bdat pipelined")
    c = yubind.smtp()
    c.send(b"MAIL FROM:<a@example.net>\r\nRCPT TO:<demo@example.test>\r\n"
           + b"BDAT %d\r\n" % len(data) + data + b"BDAT 0 LAST\r\nQUIT\r\n")
    expect(c.reply(), 250, "2.1.0")
    expect(c.reply(), 250, "2.1.5")
    expect(c.reply(), 250, "2.0.0")
    queued_id(c.reply())
    expect(c.reply(), 221, "2.0.0")
    c.close()
    assert stored_data(only_message(yubind)) == data


def test_bdat_without_transaction(yubind):
    c = yubind.smtp()
    c.send(b"BDAT 6\r\nQUIT\r\n")          # the 6 octets are data, not a command
    expect(c.reply(), 503, "5.5.1")
    expect(c.cmd("NOOP"), 250, "2.0.0")
    c.send(b"BDAT 6 LAST\r\nQUIT\r\n")
    expect(c.reply(), 503, "5.5.1")
    expect(c.cmd("NOOP"), 250, "2.0.0")
    c.quit()


def test_bdat_then_data_refused(yubind):
    c = yubind.smtp()
    c.mail_tx(SENDER, [DEMO])
    c.send(b"BDAT 5\r\nhello")
    expect(c.reply(), 250, "2.0.0")
    expect(c.cmd("DATA"), 503, "5.5.1")
    c.send(b"BDAT 2 LAST\r\n\r\n")
    queued_id(c.reply())
    c.quit()


@pytest.mark.yubind_conf(message_size_limit=10000)
def test_bdat_size_cap(yubind):
    at = build_message(10000)
    c = yubind.smtp()
    c.mail_tx(SENDER, [DEMO])
    c.send(b"BDAT 10000 LAST\r\n" + at)
    queued_id(c.reply())
    c.mail_tx(SENDER, [DEMO])
    c.send(b"BDAT 6000\r\n" + b"a" * 6000)
    expect(c.reply(), 250, "2.0.0")
    c.send(b"BDAT 4001 LAST\r\n" + b"b" * 4001)
    expect(c.reply(), 552, "5.3.4")
    expect(c.cmd("NOOP"), 250, "2.0.0")
    c.mail_tx(SENDER, [DEMO])
    c.send(b"BDAT 10001 LAST\r\n" + b"c" * 10001)
    expect(c.reply(), 552, "5.3.4")
    expect(c.cmd("NOOP"), 250, "2.0.0")
    c.quit()
    assert [stored_data(m) for m in yubind.fetch(DEMO)] == [at]


def test_bdat_bad_size(yubind):
    c = yubind.smtp()
    c.mail_tx(SENDER, [DEMO])
    for line in ("BDAT", "BDAT x", "BDAT -1", "BDAT 1x"):
        expect(c.cmd(line), 501)
    r = c.cmd("BDAT 99999999999999999999999")     # last: may swallow what follows
    assert r.code in (501, 552), r
    c.close()


# ------------------------------------------------------------------- TLS

def test_starttls_and_received(yubind, tls_ctx):
    data = make_message(subject="over tls")
    c = yubind.smtp()
    c.starttls(tls_ctx)
    r = expect(c.cmd("EHLO client.example.net"), 250)
    kw = c.ehlo_keywords(r)
    assert "STARTTLS" not in kw
    assert "PIPELINING" in kw
    c.mail_tx(SENDER, [DEMO])
    queued_id(c.data(data))
    c.quit()
    _, received, body = split_stored(only_message(yubind))
    unfolded = yt.unfold(received)
    assert " with ESMTPS " in unfolded, unfolded
    assert "version=TLSv1." in unfolded and "cipher=" in unfolded, unfolded
    assert body == data


def test_starttls_requires_new_ehlo(yubind, tls_ctx):
    c = yubind.smtp()
    c.starttls(tls_ctx)
    expect(c.cmd(f"MAIL FROM:<{SENDER}>"), 503, "5.5.1")
    expect(c.cmd("EHLO client.example.net"), 250)
    expect(c.cmd(f"MAIL FROM:<{SENDER}>"), 250, "2.1.0")
    c.quit()


def test_starttls_forgets_transaction(yubind, tls_ctx):
    c = yubind.smtp()
    c.mail_tx(SENDER, [DEMO])
    r = c.cmd("STARTTLS")
    if r.code == 220:
        c.wrap_tls(tls_ctx)
        expect(c.cmd("EHLO client.example.net"), 250)
        expect(c.cmd("DATA"), 503, "5.5.1")
    else:
        expect(r, 503, "5.5.1")
    c.quit()


def test_starttls_command_injection(yubind, tls_ctx):
    c = yubind.smtp()
    c.send(b"STARTTLS\r\nNOOP\r\n")
    expect(c.reply(), 220, "2.0.0")
    c.wrap_tls(tls_ctx)
    c.send(b"EHLO client.example.net\r\n")
    r = c.reply()
    expect(r, 250)
    assert r.lines[0].split()[0] == yt.HOSTNAME, f"first reply after TLS is not EHLO's: {r!r}"
    assert len(r.lines) > 1, r
    expect(c.cmd("NOOP"), 250, "2.0.0")
    c.quit()


def test_starttls_twice(yubind, tls_ctx):
    c = yubind.smtp()
    c.starttls(tls_ctx)
    expect(c.cmd("EHLO client.example.net"), 250)
    r = c.cmd("STARTTLS")
    assert 500 <= r.code < 600, r
    expect(c.cmd("NOOP"), 250, "2.0.0")
    c.quit()


def test_starttls_with_argument(yubind):
    c = yubind.smtp()
    expect(c.cmd("STARTTLS now"), 501)
    expect(c.cmd("NOOP"), 250, "2.0.0")
    c.quit()


def test_smtplib_starttls(yubind, tls_ctx):
    data = make_message(subject="smtplib tls")
    with smtplib.SMTP("127.0.0.1", yubind.smtp_port, timeout=yt.IO_TIMEOUT) as s:
        s.ehlo("client.example.net")
        s.starttls(context=tls_ctx)   # verifies the IP SAN 127.0.0.1
        s.ehlo("client.example.net")
        s.sendmail(SENDER, [DEMO], data)
    assert stored_data(only_message(yubind)) == data


# ------------------------------------------------------------ durability

def test_queued_message_survives_kill9(yubind):
    data = make_message(subject="durable")
    c = yubind.smtp()
    c.mail_tx(SENDER, [DEMO])
    queued_id(c.data(data))
    yubind.kill9()
    c.close()
    yubind.start()
    assert stored_data(only_message(yubind)) == data
