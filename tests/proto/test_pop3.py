"""POP3 behaviour of yubind (RFC 1939, 2449, 2595, 3206, 5034)."""

import base64
import poplib
import re
import socket
import time

import pytest

import yubintest as yt
from yubintest import make_message, stored_data, sasl_plain

DEMO = "demo@example.test"
ALICE = "alice@example.test"
SENDER = "sender@example.net"


def deliver(y, n=1, user=DEMO, **kw):
    msgs = []
    for i in range(n):
        d = make_message(subject=f"message {i}", body=f"Body of message {i}.\nSecond line.\n"
                         "Third line.\n.dotted line\n", **kw)
        y.send(SENDER, [user], d)
        msgs.append(d)
    return msgs


def login_retry(y, user, timeout=yt.DEADLINE):
    """Log in, retrying while the previous holder's lock is being released
    (the server learns of a dropped connection asynchronously)."""
    deadline = time.monotonic() + timeout
    while True:
        c = y.pop3()
        c.ok("USER " + user)
        r = c.cmd("PASS " + yt.USERS[user])
        if r.startswith("+OK"):
            return c
        c.close()
        assert r.startswith("-ERR [IN-USE]"), r
        assert time.monotonic() < deadline, "maildrop lock never released"
        time.sleep(0.05)


# ------------------------------------------------------- authorization

def test_greeting_has_timestamp(yubind):
    c = yubind.pop3()
    assert c.timestamp and "@" in c.timestamp, c.greeting
    c2 = yubind.pop3()
    assert c2.timestamp != c.timestamp
    c.quit()
    c2.quit()


def test_capa_plain(yubind):
    c = yubind.pop3()
    caps = c.capa()
    words = {l.split()[0].upper() for l in caps}
    for k in ("TOP", "UIDL", "RESP-CODES", "AUTH-RESP-CODE", "PIPELINING", "USER", "STLS"):
        assert k in words, (k, caps)
    assert any(re.fullmatch(r"SASL( \S+)* PLAIN( \S+)*", l.upper()) for l in caps), caps
    c.quit()


def test_capa_after_stls(yubind, tls_ctx):
    c = yubind.pop3()
    c.stls(tls_ctx)
    caps = c.capa()
    words = {l.split()[0].upper() for l in caps}
    assert "STLS" not in words
    assert "USER" in words
    c.login(DEMO, yt.USERS[DEMO])
    c.quit()


@pytest.mark.yubind_conf(tls_cert=None, tls_key=None, listen_pop3s=None, listen_imaps=None,
                         listen_submissions=None)
def test_capa_without_tls(yubind):
    c = yubind.pop3()
    words = {l.split()[0].upper() for l in c.capa()}
    assert "STLS" not in words
    assert c.cmd("STLS").startswith("-ERR")
    c.quit()


@pytest.mark.yubind_conf(plaintext_auth="never")
def test_plaintext_refused_without_tls(yubind, tls_ctx):
    deliver(yubind)
    c = yubind.pop3()
    caps = c.capa()
    words = {l.split()[0].upper() for l in caps}
    assert "USER" not in words
    assert not any("PLAIN" in l.upper() for l in caps if l.upper().startswith("SASL")), caps
    r = c.cmd("USER " + DEMO)
    if r.startswith("+OK"):
        r = c.cmd("PASS " + yt.USERS[DEMO])
    assert r.startswith("-ERR [AUTH]"), r
    r = c.cmd("AUTH PLAIN " + sasl_plain(DEMO, yt.USERS[DEMO]))
    assert r.startswith("-ERR [AUTH]"), r
    c.stls(tls_ctx)
    words = {l.split()[0].upper() for l in c.capa()}
    assert "USER" in words
    c.login(DEMO, yt.USERS[DEMO])
    assert c.stat()[0] == 1
    c.quit()


def test_wrong_password(yubind):
    c = yubind.pop3()
    c.ok("USER " + DEMO)
    r = c.cmd("PASS wrong-password")
    assert r.startswith("-ERR [AUTH]"), r
    c.ok("USER " + DEMO)
    c.ok("PASS " + yt.USERS[DEMO])
    c.quit()


def test_unknown_user_same_answer(yubind):
    c = yubind.pop3()
    r = c.cmd("USER nosuch@example.test")
    assert r.startswith("+OK"), "USER must not reveal whether the account exists"
    unknown = c.cmd("PASS whatever")
    assert unknown.startswith("-ERR [AUTH]"), unknown
    c.quit()
    c = yubind.pop3()
    assert c.cmd(f"USER {DEMO}") == r, "USER answers differ for a real account"
    wrong = c.cmd("PASS whatever")
    c.quit()
    assert wrong == unknown, "a wrong password and an unknown user must look the same"


def test_pass_before_user(yubind):
    c = yubind.pop3()
    assert c.cmd("PASS " + yt.USERS[DEMO]).startswith("-ERR")
    c.quit()


def test_transaction_commands_before_login(yubind):
    c = yubind.pop3()
    for cmd in ("STAT", "LIST", "RETR 1", "DELE 1", "UIDL", "TOP 1 0", "RSET"):
        assert c.cmd(cmd).startswith("-ERR"), cmd
    c.quit()


def test_apop(yubind):
    deliver(yubind, user=ALICE)
    c = yubind.pop3()
    c.ok(f"APOP {ALICE} " + yt.apop_digest(c.timestamp, yt.APOP_SECRETS[ALICE]))
    assert c.stat()[0] == 1
    c.quit()


def test_apop_upper_case_digest(yubind):
    c = yubind.pop3()
    c.ok(f"APOP {ALICE} " + yt.apop_digest(c.timestamp, yt.APOP_SECRETS[ALICE]).upper())
    c.quit()


def test_apop_failures(yubind):
    c = yubind.pop3()
    # wrong secret
    r = c.cmd(f"APOP {ALICE} " + yt.apop_digest(c.timestamp, "wrong"))
    assert r.startswith("-ERR [AUTH]"), r
    # account without an APOP secret: its password is not an APOP secret
    r = c.cmd(f"APOP {DEMO} " + yt.apop_digest(c.timestamp, yt.USERS[DEMO]))
    assert r.startswith("-ERR"), r
    # a digest for another session's timestamp (replay)
    other = yubind.pop3()
    r = c.cmd(f"APOP {ALICE} " + yt.apop_digest(other.timestamp, yt.APOP_SECRETS[ALICE]))
    assert r.startswith("-ERR"), r
    other.quit()
    assert c.cmd(f"APOP {ALICE} nothex").startswith("-ERR")
    c.quit()


def test_apop_secret_cleared(yubind):
    yubind.cli("user", "apop", "--clear", ALICE)
    c = yubind.pop3()
    r = c.cmd(f"APOP {ALICE} " + yt.apop_digest(c.timestamp, yt.APOP_SECRETS[ALICE]))
    assert r.startswith("-ERR"), r
    c.quit()


def test_auth_plain_initial_response(yubind):
    c = yubind.pop3()
    c.ok("AUTH PLAIN " + sasl_plain(DEMO, yt.USERS[DEMO]))
    c.stat()
    c.quit()


def test_auth_plain_continuation(yubind):
    c = yubind.pop3()
    r = c.cmd("AUTH PLAIN")
    assert r.startswith("+ ") or r == "+", r
    c.ok(sasl_plain(DEMO, yt.USERS[DEMO]))
    c.stat()
    c.quit()


@pytest.mark.parametrize("steps", [
    [("AUTH PLAIN " + sasl_plain(DEMO, "wrong"), "-ERR [AUTH]")],
    [("AUTH PLAIN", "+"), ("*", "-ERR")],
    [("AUTH PLAIN", "+"), (sasl_plain(DEMO, "wrong"), "-ERR [AUTH]")],
    [("AUTH PLAIN !!!notbase64!!!", "-ERR")],
    [("AUTH PLAIN " + sasl_plain(DEMO, yt.USERS[DEMO], authz=ALICE), "-ERR")],
    [("AUTH PLAIN " + base64.b64encode(b"only-one-part").decode(), "-ERR")],
    [("AUTH CRAM-MD5", "-ERR")],
    [("AUTH", None)],
], ids=["wrong-password", "cancel", "continuation-wrong", "bad-base64", "authzid-other",
        "no-nuls", "unknown-mechanism", "no-mechanism"])
def test_auth_plain_failures(yubind, steps):
    c = yubind.pop3()
    for line, want in steps:
        r = c.cmd(line)
        if want is None:   # RFC 2449/5034: bare AUTH may list mechanisms or fail
            if r.startswith("+OK"):
                c.multi()
            else:
                assert r.startswith("-ERR"), r
            continue
        assert r.startswith(want), (line, r)
    # the session is still usable and not logged in
    assert c.cmd("STAT").startswith("-ERR")
    c.ok("AUTH PLAIN " + sasl_plain(DEMO, yt.USERS[DEMO], authz=DEMO))
    c.stat()
    c.quit()


def test_auth_plain_too_long(yubind):
    c = yubind.pop3()
    long_b64 = sasl_plain(DEMO, "p" * 1100)
    r = c.cmd("AUTH PLAIN")
    assert r.startswith("+"), r
    assert c.cmd(long_b64).startswith("-ERR")
    c.capa()
    c.ok("AUTH PLAIN " + sasl_plain(DEMO, yt.USERS[DEMO]))
    c.quit()


def test_auth_plain_empty_initial_response(yubind):
    c = yubind.pop3()
    r = c.cmd("AUTH PLAIN =")
    assert r.startswith("-ERR"), r
    c.quit()


def test_poplib_login(yubind):
    msgs = deliver(yubind, 2)
    p = poplib.POP3("127.0.0.1", yubind.pop3_port, timeout=yt.IO_TIMEOUT)
    p.user(DEMO)
    p.pass_(yt.USERS[DEMO])
    count, _ = p.stat()
    assert count == 2
    for i, want in enumerate(msgs, 1):
        _, lines, _ = p.retr(i)
        assert stored_data(b"".join(l + b"\r\n" for l in lines)) == want
    p.quit()


def test_long_line(yubind):
    c = yubind.pop3()
    r = c.cmd("USER " + "u" * 1100)
    assert r.startswith("-ERR"), r
    c.capa()
    c.send(b"NOOP " + b"n" * 200000 + b"\r\n")
    assert c.status().startswith("-ERR")
    c.login(DEMO, yt.USERS[DEMO])
    c.send("LIST " + "1" * 1030 + "\r\n")
    assert c.status().startswith("-ERR")
    c.stat()
    c.quit()


def test_nul_and_unknown_commands(yubind):
    c = yubind.pop3()
    c.send(b"CA\x00PA\r\n")
    assert c.status().startswith("-ERR")
    assert c.cmd("XYZZY").startswith("-ERR")
    c.capa()
    c.quit()


@pytest.mark.yubind_conf(pop3_timeout="1s")
def test_pop3_idle_timeout(yubind):
    c = yubind.pop3(DEMO)
    t0 = time.monotonic()
    assert c.closed_by_peer(15), "idle session not closed"
    assert time.monotonic() - t0 < 10


# --------------------------------------------------------- transaction

def test_stat_list_sizes_exact(yubind):
    deliver(yubind, 3)
    c = yubind.pop3(DEMO)
    count, total = c.stat()
    sizes = c.list()
    assert count == 3 and sorted(sizes) == [1, 2, 3]
    bodies = {i: c.retr(i) for i in sizes}
    for i in sizes:
        assert sizes[i] == len(bodies[i])
        r = c.ok(f"LIST {i}").split()
        assert r[1:] == [str(i), str(len(bodies[i]))]
    assert total == sum(len(b) for b in bodies.values())
    assert c.cmd("LIST 4").startswith("-ERR")
    assert c.cmd("RETR 0").startswith("-ERR")
    assert c.cmd("RETR x").startswith("-ERR")
    c.quit()


def test_retrieved_bytes_exact(yubind):
    msgs = deliver(yubind, 2)
    got = yubind.fetch(DEMO)
    assert [stored_data(m) for m in got] == msgs


def test_top(yubind):
    d = yt.crlf("From: a@example.net\nSubject: top\nX-Long: a\n b\n\nL1\n.L2\nL3\nL4\n")
    yubind.send(SENDER, [DEMO], d)
    c = yubind.pop3(DEMO)
    full = c.retr(1)
    head, body = full.split(b"\r\n\r\n", 1)
    assert c.top(1, 0) == head + b"\r\n\r\n"
    assert c.top(1, 2) == head + b"\r\n\r\nL1\r\n.L2\r\n"
    assert c.top(1, 4) == full
    assert c.top(1, 100) == full
    assert c.cmd("TOP 1").startswith("-ERR")
    assert c.cmd("TOP 2 0").startswith("-ERR")
    assert c.cmd("TOP 1 -1").startswith("-ERR")
    c.quit()


def test_uidl_unique_and_stable(yubind):
    deliver(yubind, 3)
    c = yubind.pop3(DEMO)
    u1 = c.uidl()
    assert len(set(u1.values())) == 3
    for uid in u1.values():
        assert 1 <= len(uid) <= 70 and all(0x21 <= ord(ch) <= 0x7e for ch in uid)
    r = c.ok("UIDL 2").split()
    assert r[1:] == ["2", u1[2]]
    c.quit()
    yubind.restart()
    c = yubind.pop3(DEMO)
    assert c.uidl() == u1
    c.ok("DELE 1")
    c.quit()
    deliver(yubind, 1)
    c = yubind.pop3(DEMO)
    u2 = c.uidl()
    assert u2[1] == u1[2] and u2[2] == u1[3]
    assert u2[3] not in u1.values()
    c.quit()


def test_dele_applied_on_quit(yubind):
    msgs = deliver(yubind, 3)
    c = yubind.pop3(DEMO)
    sizes = c.list()
    c.ok("DELE 2")
    assert c.cmd("DELE 2").startswith("-ERR")
    assert c.cmd("RETR 2").startswith("-ERR")
    assert c.cmd("LIST 2").startswith("-ERR")
    assert c.stat() == (2, sizes[1] + sizes[3])
    assert sorted(c.list()) == [1, 3]
    c.quit()
    got = yubind.fetch(DEMO)
    assert [stored_data(m) for m in got] == [msgs[0], msgs[2]]


def test_rset_undeletes(yubind):
    deliver(yubind, 2)
    c = yubind.pop3(DEMO)
    c.ok("DELE 1")
    c.ok("DELE 2")
    assert c.stat()[0] == 0
    c.ok("RSET")
    assert c.stat()[0] == 2
    c.quit()
    assert len(yubind.fetch(DEMO)) == 2


def test_drop_without_quit_deletes_nothing(yubind):
    deliver(yubind, 2)
    c = yubind.pop3(DEMO)
    c.ok("DELE 1")
    c.ok("DELE 2")
    c.close()
    c = login_retry(yubind, DEMO)
    assert c.stat()[0] == 2
    c.quit()


def test_quit_in_authorization_state(yubind):
    c = yubind.pop3()
    assert c.cmd("QUIT").startswith("+OK")
    assert c.closed_by_peer()


def test_snapshot_per_session(yubind):
    deliver(yubind, 1)
    c = yubind.pop3(DEMO)
    assert c.stat()[0] == 1
    deliver(yubind, 1)
    assert c.stat()[0] == 1
    assert sorted(c.list()) == [1]
    assert c.cmd("RETR 2").startswith("-ERR")
    assert len(c.uidl()) == 1
    c.quit()
    c = yubind.pop3(DEMO)
    assert c.stat()[0] == 2
    c.quit()


def test_in_use(yubind):
    a = yubind.pop3(DEMO)
    b = yubind.pop3()
    b.ok("USER " + DEMO)
    r = b.cmd("PASS " + yt.USERS[DEMO])
    assert r.startswith("-ERR [IN-USE]"), r
    # another mailbox is not affected
    yubind.pop3(ALICE).quit()
    b.close()
    a.quit()
    c = login_retry(yubind, DEMO)
    c.quit()


def test_in_use_released_after_drop(yubind):
    a = yubind.pop3(DEMO)
    a.stat()
    a.close()
    c = login_retry(yubind, DEMO)
    c.quit()


def test_pipelined_commands(yubind):
    deliver(yubind, 2)
    c = yubind.pop3()
    c.send(f"USER {DEMO}\r\nPASS {yt.USERS[DEMO]}\r\nSTAT\r\nLIST\r\nUIDL 1\r\nNOOP\r\nQUIT\r\n")
    assert c.status().startswith("+OK")
    assert c.status().startswith("+OK")
    assert c.status().startswith("+OK 2 ")
    assert c.status().startswith("+OK")
    assert len(c.multi()) == 2
    assert c.status().startswith("+OK 1 ")
    assert c.status().startswith("+OK")
    assert c.status().startswith("+OK")
    assert c.closed_by_peer()


def test_empty_mailbox(yubind):
    c = yubind.pop3(DEMO)
    assert c.stat() == (0, 0)
    assert c.list() == {}
    assert c.uidl() == {}
    c.quit()


# ------------------------------------------------------------------ TLS

def test_stls(yubind, tls_ctx):
    msgs = deliver(yubind, 1)
    c = yubind.pop3()
    c.stls(tls_ctx)
    c.login(DEMO, yt.USERS[DEMO])
    assert stored_data(c.retr(1)) == msgs[0]
    c.quit()


def test_stls_injection(yubind, tls_ctx):
    c = yubind.pop3()
    c.send(b"STLS\r\nCAPA\r\n")
    assert c.status().startswith("+OK")
    c.wrap_tls(tls_ctx)
    r = c.cmd("XYZZY")
    assert r.startswith("-ERR"), f"first reply after TLS answers the injected CAPA: {r!r}"
    c.quit()


def test_stls_after_login_refused(yubind):
    c = yubind.pop3(DEMO)
    assert c.cmd("STLS").startswith("-ERR")
    c.quit()


def test_pop3s(yubind, tls_ctx):
    msgs = deliver(yubind, 1)
    raw = socket.create_connection(("127.0.0.1", yubind.pop3s_port), timeout=yt.IO_TIMEOUT)
    s = tls_ctx.wrap_socket(raw, server_hostname=yt.HOSTNAME)
    c = yt.Pop3Client(0, sock=s)
    c.greet()
    words = {l.split()[0].upper() for l in c.capa()}
    assert "STLS" not in words and "USER" in words
    c.login(DEMO, yt.USERS[DEMO])
    assert stored_data(c.retr(1)) == msgs[0]
    c.quit()


@pytest.mark.yubind_conf(plaintext_auth="never")
def test_pop3s_poplib(yubind, tls_ctx):
    msgs = deliver(yubind, 1)
    p = poplib.POP3_SSL("127.0.0.1", yubind.pop3s_port, context=tls_ctx,
                        timeout=yt.IO_TIMEOUT)
    p.user(DEMO)
    p.pass_(yt.USERS[DEMO])
    _, lines, _ = p.retr(1)
    assert stored_data(b"".join(l + b"\r\n" for l in lines)) == msgs[0]
    p.quit()
