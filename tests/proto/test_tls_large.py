"""Large messages through TLS both ways: STARTTLS on SMTP in, POP3S out.

The connection layer decrypts into a bounded input buffer and stops reading
while it is full; RETR streams the file in pieces while the client reads.
These tests push several megabytes through both paths so that every one of
those pauses and resumptions happens under TLS."""

import poplib
import random
import smtplib

import pytest

import yubintest as yt
from yubintest import stored_data

DEMO = "demo@example.test"
SENDER = "sender@example.net"


def big_message(size):
    rng = random.Random(size)
    lines = [b"From: <sender@example.net>", b"To: <demo@example.test>",
             b"Subject: large over TLS", b"Content-Type: text/plain; charset=utf-8",
             b"Content-Transfer-Encoding: 8bit", b""]
    total = 0
    while total < size:
        n = rng.randint(0, 200)
        # 8-bit text, and lines that start with a dot to exercise stuffing
        line = (b"." if rng.random() < 0.05 else b"") + bytes(
            rng.choice(b"abcdefghij \xc3\xa9\xe3\x81\x82") for _ in range(n))
        lines.append(line)
        total += len(line) + 2
    return b"\r\n".join(lines) + b"\r\n"


@pytest.mark.yubind_conf(message_size_limit="16M")
def test_large_message_starttls_in_pop3s_out(yubind, tls_ctx):
    data = big_message(6 * 1024 * 1024)
    with smtplib.SMTP("127.0.0.1", yubind.smtp_port, timeout=yt.IO_TIMEOUT) as s:
        s.ehlo("client.example.net")
        s.starttls(context=tls_ctx)
        s.ehlo("client.example.net")
        s.sendmail(SENDER, [DEMO], data, mail_options=["BODY=8BITMIME"])
    p = poplib.POP3_SSL("127.0.0.1", yubind.pop3s_port, context=tls_ctx,
                        timeout=yt.IO_TIMEOUT)
    p.user(DEMO)
    p.pass_(yt.USERS[DEMO])
    count, size = p.stat()
    assert count == 1
    _, lines, octets = p.retr(1)
    got = b"".join(l + b"\r\n" for l in lines)
    assert len(got) == size
    assert stored_data(got) == data
    p.quit()


def test_many_pipelined_messages_over_tls(yubind, tls_ctx):
    """Fifty messages in one TLS session, each answered in order."""
    msgs = [yt.make_message(subject=f"tls {i}", body="x" * (i * 997) + "\n")
            for i in range(50)]
    with smtplib.SMTP("127.0.0.1", yubind.smtp_port, timeout=yt.IO_TIMEOUT) as s:
        s.ehlo("client.example.net")
        s.starttls(context=tls_ctx)
        s.ehlo("client.example.net")
        for m in msgs:
            s.sendmail(SENDER, [DEMO], m)
    got = yubind.fetch(DEMO)
    assert [stored_data(g) for g in got] == msgs
