"""Process behaviour of yubind: privileges and graceful SIGTERM."""

import os
import pwd
import signal
import socket
import subprocess

import pytest

import yubintest as yt
from yubintest import expect, make_message

DEMO = "demo@example.test"


def proc_ids(pid, field):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return [int(x) for x in line.split()[1:]]
    raise AssertionError(field)


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root")
def test_runs_as_nobody(yubind):
    uid, gid = yt.nobody_ids()
    assert yubind.pid == yubind.proc.pid
    assert proc_ids(yubind.pid, "Uid") == [uid] * 4
    assert proc_ids(yubind.pid, "Gid") == [gid] * 4
    assert 0 not in proc_ids(yubind.pid, "Groups")
    # and still serves after the drop
    yubind.send("s@example.net", [DEMO], make_message())
    assert len(yubind.fetch(DEMO)) == 1


def test_ready_pid_is_the_process(yubind):
    assert yubind.pid == yubind.proc.pid


def test_sigterm_idle_session(yubind):
    c = yubind.smtp()
    p = yubind.pop3()
    yubind.signal(signal.SIGTERM)
    r = c.reply()
    expect(r, 421)
    assert c.closed_by_peer()
    assert p.closed_by_peer()
    yubind.check_exit(yubind.wait_exit())


@pytest.mark.yubind_conf(shutdown_timeout="1s")
def test_sigterm_during_data(yubind):
    c = yubind.smtp()
    c.mail_tx("s@example.net", [DEMO])
    expect(c.cmd("DATA"), 354)
    c.send(b"Subject: interrupted\r\n\r\nsome of the body\r\n")
    yubind.signal(signal.SIGTERM)
    expect(c.reply(), 421)
    assert c.closed_by_peer()
    yubind.check_exit(yubind.wait_exit())
    yubind.start()
    assert yubind.fetch(DEMO) == []


def test_sigterm_pop3_session_applies_nothing(yubind):
    yubind.send("s@example.net", [DEMO], make_message())
    p = yubind.pop3(DEMO)
    p.ok("DELE 1")
    yubind.signal(signal.SIGTERM)
    assert p.closed_by_peer()
    yubind.check_exit(yubind.wait_exit())
    yubind.start()
    assert len(yubind.fetch(DEMO)) == 1


def test_restart_keeps_mail(yubind):
    d = make_message()
    yubind.send("s@example.net", [DEMO], d)
    yubind.restart()
    assert [yt.stored_data(m) for m in yubind.fetch(DEMO)] == [d]


def test_new_connections_refused_after_sigterm(yubind):
    port = yubind.smtp_port
    yubind.stop()
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", port), timeout=5).close()


def test_one_daemon_per_data_dir(yubind):
    """A second yubind on the same data directory refuses to start (it
    would take the first one's spare body files for crash leftovers); the
    first one keeps serving."""
    r = subprocess.run([yt.YUBIND, "-c", yubind.conf_path], stdin=subprocess.DEVNULL,
                       capture_output=True, text=True, timeout=30, env=yt.sanitizer_env())
    assert r.returncode == 1, r
    assert f"is in use by another yubind (pid {yubind.pid})" in r.stderr, r.stderr
    yubind.send("s@example.net", [DEMO], make_message(subject="still here"))
    assert len(yubind.fetch(DEMO)) == 1
