"""Connection-level behaviour shared by every protocol: a client that
half-closes after its last commands still gets every answer, and a client
that never starts the TLS handshake on an implicit-TLS port is cut off
without harming anyone else."""

import re
import socket

import pytest

import yubintest as yt
from yubintest import expect, make_message, stored_data

DEMO = "demo@example.test"
SENDER = "sender@example.net"


def smtp_replies(raw):
    """Split raw SMTP output into (code, last line) per reply."""
    out, cur = [], None
    for line in raw.decode().split("\r\n"):
        if not line:
            continue
        m = re.match(r"(\d{3})([ -])(.*)", line)
        assert m, line
        if m.group(2) == " ":
            out.append((int(m.group(1)), m.group(3)))
    return out


def test_smtp_half_close_after_pipelined_transaction(yubind):
    """The whole transaction and QUIT in one write, then SHUT_WR: the
    message is stored and every reply, the 250 after the data included,
    reaches the client before the server closes."""
    data = make_message(subject="half-close")
    c = yubind.smtp(ehlo=None)
    c.send(b"EHLO client.example.net\r\nMAIL FROM:<%s>\r\nRCPT TO:<%s>\r\nDATA\r\n"
           % (SENDER.encode(), DEMO.encode()) + yt.dotstuff(data) + b".\r\nQUIT\r\n")
    c.sock.shutdown(socket.SHUT_WR)
    codes = [code for code, _ in smtp_replies(c.read_until_close())]
    assert codes == [250, 250, 250, 354, 250, 221], codes
    assert [stored_data(m) for m in yubind.fetch(DEMO)] == [data]


def test_smtp_half_close_mid_transaction(yubind):
    """SHUT_WR after RCPT: RCPT is answered (it needs a store lookup), the
    unfinished transaction is dropped, nothing is stored."""
    c = yubind.smtp()
    c.send(f"MAIL FROM:<{SENDER}>\r\nRCPT TO:<{DEMO}>\r\n")
    c.sock.shutdown(socket.SHUT_WR)
    codes = [code for code, _ in smtp_replies(c.read_until_close())]
    assert codes == [250, 250], codes
    assert yubind.fetch(DEMO) == []


def test_pop3_half_close(yubind):
    """Login, DELE and QUIT pipelined, then SHUT_WR: the password check
    runs on a worker thread meanwhile; every reply still comes, and the
    deletion is applied."""
    yubind.send(SENDER, [DEMO], make_message(subject="to delete"))
    c = yubind.pop3()
    c.send(f"USER {DEMO}\r\nPASS {yt.USERS[DEMO]}\r\nDELE 1\r\nQUIT\r\n")
    c.sock.shutdown(socket.SHUT_WR)
    lines = [l for l in c.read_until_close().decode().split("\r\n") if l]
    assert len(lines) == 4 and all(l.startswith("+OK") for l in lines), lines
    assert yubind.fetch(DEMO) == []


@pytest.mark.yubind_conf(command_timeout="1s")
def test_pop3s_silent_client_is_cut(yubind, tls_ctx):
    """A client that connects to the implicit-TLS port and never sends a
    ClientHello is closed after command_timeout; the daemon goes on
    serving (and stops cleanly, checked by the fixture)."""
    raw = socket.create_connection(("127.0.0.1", yubind.pop3s_port), timeout=yt.IO_TIMEOUT)
    c = yt.Pop3Client(0, sock=raw)
    assert c.closed_by_peer(15), "silent client was not cut off"
    assert yubind.wait_log(r"TLS handshake not completed within 1000 ms")
    s = tls_ctx.wrap_socket(socket.create_connection(("127.0.0.1", yubind.pop3s_port),
                                                     timeout=yt.IO_TIMEOUT),
                            server_hostname=yt.HOSTNAME)
    p = yt.Pop3Client(0, sock=s)
    p.greet()
    p.login(DEMO, yt.USERS[DEMO])
    p.quit()
