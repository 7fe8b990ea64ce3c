"""A large message is written to its body file while it arrives (see
smtp_data_in_memory).  These tests hold that write in flight with an
LD_PRELOAD shim (gate.c) and act at that moment: SIGTERM, a timeout, a
complete message waiting for its last write.  Nothing may leak, nothing may
be answered out of order, and no body byte may ever run as a command."""

import os
import signal
import subprocess

import pytest

import yubintest as yt
from yubintest import expect, queued_id, stored_data

DEMO = "demo@example.test"
SENDER = "sender@example.net"
HERE = os.path.dirname(os.path.abspath(__file__))


@pytest.fixture(scope="session")
def gate_lib(tmp_path_factory):
    out = str(tmp_path_factory.mktemp("gate") / "gate.so")
    subprocess.run(["cc", "-shared", "-fPIC", "-O1", "-o", out, os.path.join(HERE, "gate.c"),
                    "-ldl"], check=True)
    os.chmod(os.path.dirname(out), 0o755)
    return out


@pytest.fixture
def gated(make_yubind, gate_lib):
    """A yubind whose first body-file write waits for the test."""
    def make(**conf):
        y = make_yubind(start=False, smtp_data_in_memory="4k", message_size_limit="4M",
                        **conf)
        gate = os.path.join(y.dir, "gate")
        os.mkdir(gate)
        os.chmod(gate, 0o777)
        y.extra_env = {"LD_PRELOAD": gate_lib, "YUBIN_GATE": gate,
                       "ASAN_OPTIONS": "detect_leaks=1:abort_on_error=0:"
                                       "verify_asan_link_order=0"}
        y.start()
        y.gate = gate
        return y
    return make


def wait_blocked(y):
    yt.wait_until(lambda: os.path.exists(os.path.join(y.gate, "blocked")),
                  what="a body write held at the gate")


def open_gate(y):
    open(os.path.join(y.gate, "open"), "w").close()


def body_files(y):
    """Non-empty body files (a file may vanish while we look)."""
    out = []
    for r, _, fs in os.walk(os.path.join(y.data, "msg")):
        for f in fs:
            try:
                if os.path.getsize(os.path.join(r, f)) > 0:
                    out.append(os.path.join(r, f))
            except FileNotFoundError:
                pass
    return out


def start_big_data(y, extra=b""):
    """MAIL, RCPT, DATA and enough data to start the body file; the first
    write of it is then held at the gate."""
    c = y.smtp()
    c.mail_tx(SENDER, [DEMO])
    expect(c.cmd("DATA"), 354)
    c.send(b"Subject: big\r\n\r\n" + (b"y" * 70 + b"\r\n") * 200 + extra)
    wait_blocked(y)
    return c


def test_sigterm_while_streaming_runs_no_body_as_commands(gated):
    """SIGTERM while a streamed message waits on the disk: one 421, then the
    connection closes; the rest of the body (here, lines that look like
    commands and a whole smuggled transaction) is never executed, and the
    unfinished message leaves no file."""
    y = gated(shutdown_timeout="10s")
    inner = b"Subject: smuggled\r\n\r\n"
    smuggled = (b"RSET\r\nMAIL FROM:<x@example.net>\r\nRCPT TO:<demo@example.test>\r\n"
                b"BDAT %d LAST\r\n" % len(inner) + inner + b"NOOP\r\n" * 2000)
    c = start_big_data(y, smuggled)
    y.signal(signal.SIGTERM)
    open_gate(y)
    assert c.read_until_close() == b"421 4.3.2 Service shutting down\r\n"
    y.check_exit(y.wait_exit())
    assert body_files(y) == []
    y.start()
    assert y.fetch(DEMO) == []


def test_deadline_while_streaming(gated):
    """The data deadline expires while a write is held: 421 4.4.2, the
    connection closes, the file goes away, nothing leaks (the fixture checks
    the sanitizer report at stop)."""
    y = gated(smtp_data_timeout="300ms")
    c = start_big_data(y, (b"z" * 70 + b"\r\n") * 400)
    r = c.reply()
    expect(r, 421, "4.4.2")
    assert c.closed_by_peer()
    open_gate(y)
    yt.wait_until(lambda: body_files(y) == [], what="aborted body file removed")


def test_complete_message_waiting_for_its_write_survives_sigterm(gated):
    """The whole message (BDAT LAST) has arrived but its first write is still
    held: SIGTERM must let it finish -- 250, then 421 -- and it is stored."""
    y = gated(shutdown_timeout="10s")
    c = y.smtp()
    c.mail_tx(SENDER, [DEMO])
    data = b"Subject: complete\r\n\r\n" + (b"c" * 70 + b"\r\n") * 200
    c.send(b"BDAT %d LAST\r\n" % len(data) + data)
    wait_blocked(y)
    y.signal(signal.SIGTERM)
    open_gate(y)
    queued_id(c.reply())
    expect(c.reply(), 421, "4.3.2")
    y.check_exit(y.wait_exit())
    y.start()
    assert [stored_data(m) for m in y.fetch(DEMO)] == [data]


def test_refusal_after_waiting_write_comes_in_order(gated):
    """A message refused at its end (bare LF, reject mode) while its write
    was held: the 550 comes at once and before the reply to the command
    pipelined after it."""
    y = gated(smtp_bare_newline="reject")
    c = y.smtp()
    c.mail_tx(SENDER, [DEMO])
    data = b"Subject: bare\r\n\r\n" + (b"b" * 70 + b"\r\n") * 200 + b"bare LF\n"
    c.send(b"BDAT %d LAST\r\n" % len(data) + data + b"NOOP\r\n")
    wait_blocked(y)
    open_gate(y)
    expect(c.reply(), 550, "5.5.2")
    expect(c.reply(), 250, "2.0.0")
    c.quit()
    yt.wait_until(lambda: body_files(y) == [], what="refused body file removed")
