"""IMAP server: every command's response grammar, the caps, two sessions
seeing each other, IDLE, and real clients (imaplib, curl, mbsync)."""

import imaplib
import os
import re
import shutil
import socket
import ssl
import subprocess
import threading
import time

import pytest

import yubintest as yt
from yubintest import make_message

DEMO = "demo@example.test"
ALICE = "alice@example.test"


def deliver(y, to=DEMO, subject="hello", body="Hello there.\n", extra=""):
    data = make_message(subject=subject, body=body, to=to, extra=extra)
    y.send("sender@example.net", [to], data)
    return data


def select(c, box="INBOX"):
    untagged, tagged = c.ok("SELECT " + box)
    return untagged, tagged


def exists(untagged):
    for l in untagged:
        m = re.match(rb"\* (\d+) EXISTS$", l)
        if m:
            return int(m.group(1))
    return None


# ---------------------------------------------------------------- basics ----

def test_greeting_capability_and_logout(yubind):
    c = yubind.imap()
    assert re.match(rb"\* OK \[CAPABILITY IMAP4rev1 IMAP4rev2 [^\]]*\] ", c.greeting)
    assert b"AUTH=PLAIN" in c.greeting and b"STARTTLS" in c.greeting
    untagged, tagged = c.ok("CAPABILITY")
    assert untagged[0].startswith(b"* CAPABILITY IMAP4rev1 ")
    assert b"UIDPLUS" not in untagged[0]      # only after login
    st, line, untagged = c.cmd("LOGOUT")
    assert st == "OK" and untagged == [b"* BYE Logging out"]
    assert c.closed_by_peer()


def test_login_capabilities_after_auth(yubind):
    c = yubind.imap()
    _, tagged = c.ok('LOGIN "%s" "%s"' % (DEMO, yt.USERS[DEMO]))
    caps = re.match(rb"T\d+ OK \[CAPABILITY ([^\]]+)\]", tagged).group(1).split()
    for cap in (b"IDLE", b"UIDPLUS", b"MOVE", b"CONDSTORE", b"QRESYNC", b"SPECIAL-USE",
                b"NAMESPACE", b"LIST-EXTENDED", b"ESEARCH", b"ENABLE", b"LITERAL+"):
        assert cap in caps, cap
    assert any(x.startswith(b"APPENDLIMIT=") for x in caps)


def test_login_failures(yubind):
    c = yubind.imap()
    st, line, _ = c.cmd('LOGIN "%s" "wrong"' % DEMO)
    assert st == "NO" and b"[AUTHENTICATIONFAILED]" in line
    st, line, _ = c.cmd("LOGIN onlyone")
    assert st == "BAD"
    st, line, _ = c.cmd("SELECT INBOX")
    assert st == "NO"                         # not authenticated
    c.login(DEMO, yt.USERS[DEMO])


@pytest.mark.yubind_conf(plaintext_auth="never")
def test_logindisabled_then_starttls(yubind, tls_ctx):
    c = yubind.imap()
    assert b"LOGINDISABLED" in c.greeting and b"AUTH=PLAIN" not in c.greeting
    st, line, _ = c.cmd('LOGIN "%s" "%s"' % (DEMO, yt.USERS[DEMO]))
    assert st == "NO" and b"PRIVACYREQUIRED" in line
    # Plaintext injected after STARTTLS must be dropped (CVE-2011-0411).
    c.send(b"T9 STARTTLS\r\nT10 NOOP\r\n")
    assert c.readline().startswith(b"T9 OK")
    c.buf = b""
    c.wrap_tls(tls_ctx)
    untagged, _ = c.ok("CAPABILITY")
    assert b"AUTH=PLAIN" in untagged[0] and b"STARTTLS" not in untagged[0]
    c.login(DEMO, yt.USERS[DEMO])
    c.ok("NOOP")


def test_implicit_tls(yubind, tls_ctx):
    raw = socket.create_connection(("127.0.0.1", yubind.imaps_port), timeout=yt.IO_TIMEOUT)
    s = tls_ctx.wrap_socket(raw, server_hostname=yt.HOSTNAME)
    c = yt.ImapClient(0, sock=s)
    assert c.readline().startswith(b"* OK [CAPABILITY")
    c.login(DEMO, yt.USERS[DEMO])
    select(c)


def test_authenticate_plain_sasl_ir_and_continuation(yubind):
    import base64
    tok = base64.b64encode(b"\0" + DEMO.encode() + b"\0" + yt.USERS[DEMO].encode()).decode()
    c = yubind.imap()
    c.ok("AUTHENTICATE PLAIN " + tok)
    c2 = yubind.imap()
    c2.send(b"A1 AUTHENTICATE PLAIN\r\n")
    assert c2.readline() == b"+ "
    c2.send(tok.encode() + b"\r\n")
    assert c2.readline().startswith(b"A1 OK")
    c3 = yubind.imap()
    c3.send(b"A1 AUTHENTICATE PLAIN\r\n")
    assert c3.readline() == b"+ "
    c3.send(b"*\r\n")
    assert c3.readline().startswith(b"A1 BAD")
    st, line, _ = c3.cmd("AUTHENTICATE CRAM-MD5")
    assert st == "NO"


def test_enable_id_namespace(yubind):
    c = yubind.imap(DEMO)
    untagged, _ = c.ok("ENABLE CONDSTORE FOO")
    assert untagged == [b"* ENABLED CONDSTORE"]
    untagged, _ = c.ok("ENABLE CONDSTORE")
    assert untagged == [b"* ENABLED"]
    untagged, _ = c.ok('ID ("name" "pytest")')
    assert untagged[0].startswith(b'* ID ("name" "Yubin"')
    untagged, _ = c.ok("NAMESPACE")
    assert untagged == [b'* NAMESPACE (("" "/")) NIL NIL']


# ------------------------------------------------------------- mailboxes ----

def test_list_special_use_and_children(yubind):
    c = yubind.imap(DEMO)
    untagged, _ = c.ok('LIST "" "*"')
    names = {}
    for l in untagged:
        m = re.match(rb'\* LIST \(([^)]*)\) "/" (.+)$', l)
        assert m, l
        names[m.group(2).strip(b'"')] = m.group(1).split()
    for box, use in ((b"Drafts", b"\\Drafts"), (b"Sent", b"\\Sent"), (b"Trash", b"\\Trash"),
                     (b"Junk", b"\\Junk"), (b"Archive", b"\\Archive")):
        assert use in names[box], (box, names[box])
    assert b"INBOX" in names
    untagged, _ = c.ok('LIST "" ""')
    assert untagged == [b'* LIST (\\Noselect) "/" ""']
    c.ok("CREATE Projects/2026/Q4")
    untagged, _ = c.ok('LIST "" "Projects/%"')
    assert untagged == [b'* LIST (\\HasChildren) "/" Projects/2026']
    untagged, _ = c.ok('LIST "" "Projects/*"')
    assert len(untagged) == 2 and b"\\HasNoChildren" in untagged[1]
    untagged, _ = c.ok('LIST (SPECIAL-USE) "" "*"')
    assert len(untagged) == 5
    untagged, _ = c.ok('LIST "" "*" RETURN (STATUS (MESSAGES UIDNEXT))')
    assert any(re.match(rb'\* STATUS INBOX \(MESSAGES 0 UIDNEXT 1\)', l) for l in untagged)


def test_create_delete_rename_subscribe(yubind):
    c = yubind.imap(DEMO)
    c.ok("CREATE Work")
    st, line, _ = c.cmd("CREATE Work")
    assert st == "NO" and b"[ALREADYEXISTS]" in line
    st, line, _ = c.cmd("CREATE INBOX")
    assert st == "NO"
    st, line, _ = c.cmd('CREATE "a/../b"')
    assert st == "NO" and b"[CANNOT]" in line
    c.ok("CREATE Work/Old")
    c.ok("RENAME Work Job")
    untagged, _ = c.ok('LIST "" "Job*"')
    assert [l.split(b'"/" ')[1] for l in untagged] == [b'Job', b'Job/Old']
    st, line, _ = c.cmd("RENAME Nope Other")
    assert st == "NO" and b"[NONEXISTENT]" in line
    c.ok("SUBSCRIBE Job")
    c.ok("SUBSCRIBE Ghost")
    untagged, _ = c.ok('LSUB "" "*"')
    assert b'* LSUB () "/" Job' in untagged and b'* LSUB () "/" Ghost' in untagged
    untagged, _ = c.ok('LIST (SUBSCRIBED) "" "*"')
    assert any(b"\\NonExistent" in l and b"Ghost" in l for l in untagged)
    c.ok("UNSUBSCRIBE Ghost")
    c.ok("DELETE Job")          # has an inferior: becomes \Noselect
    untagged, _ = c.ok('LIST "" "Job"')
    assert b"\\Noselect" in untagged[0]
    st, line, _ = c.cmd("DELETE INBOX")
    assert st == "NO"
    c.ok("CREATE Drafts2 (USE (\\Drafts))")
    # Modified UTF-7 names round trip.
    c.ok('CREATE "&ZeVnLIqe-"')
    untagged, _ = c.ok('LIST "" "&ZeVnLIqe-"')
    assert untagged[0].endswith(b' &ZeVnLIqe-')
    st, line, _ = c.cmd('CREATE "&Jjo!"')
    assert st == "BAD"


def test_status(yubind):
    deliver(yubind)
    deliver(yubind)
    c = yubind.imap(DEMO)
    untagged, _ = c.ok("STATUS INBOX (MESSAGES UNSEEN UIDNEXT UIDVALIDITY SIZE HIGHESTMODSEQ "
                       "DELETED RECENT)")
    m = re.match(rb"\* STATUS INBOX \(MESSAGES 2 RECENT \d+ UIDNEXT 3 UIDVALIDITY \d+ UNSEEN 2 "
                 rb"DELETED 0 SIZE (\d+) HIGHESTMODSEQ \d+\)$", untagged[0])
    assert m, untagged
    st, line, _ = c.cmd("STATUS Nope (MESSAGES)")
    assert st == "NO" and b"NONEXISTENT" in line
    st, line, _ = c.cmd("STATUS INBOX (BOGUS)")
    assert st == "BAD"


# --------------------------------------------------------- select/fetch ----

def test_select_examine_responses(yubind):
    deliver(yubind)
    c = yubind.imap(DEMO)
    untagged, tagged = select(c)
    assert untagged[0] == b"* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft)"
    assert b"* 1 EXISTS" in untagged and b"* 1 RECENT" in untagged
    assert any(re.match(rb"\* OK \[UIDVALIDITY \d+\]", l) for l in untagged)
    assert b"* OK [UIDNEXT 2] Predicted next UID" in untagged
    assert any(l.startswith(b"* OK [PERMANENTFLAGS (") and b"\\*" in l for l in untagged)
    assert b"* OK [UNSEEN 1] First unseen" in untagged
    assert b"[READ-WRITE]" in tagged
    # A second session does not see it as recent any more.
    c2 = yubind.imap(DEMO)
    untagged, tagged = c2.ok("EXAMINE INBOX")
    assert b"* 0 RECENT" in untagged and b"[READ-ONLY]" in tagged
    st, line, _ = c2.cmd("STORE 1 +FLAGS (\\Seen)")
    assert st == "NO" and b"READ-ONLY" in line
    st, line, _ = c.cmd("SELECT Nope")
    assert st == "NO" and b"NONEXISTENT" in line
    st, line, _ = c.cmd("FETCH 1 FLAGS")
    assert st == "NO"   # the failed SELECT left no mailbox selected


def test_fetch_items(yubind):
    body = "Line one.\nLine two.\n"
    data = deliver(yubind, subject="Fetch me", body=body)
    c = yubind.imap(DEMO)
    select(c)
    untagged, _ = c.ok("FETCH 1 (UID FLAGS RFC822.SIZE INTERNALDATE)")
    m = re.match(rb'\* 1 FETCH \(UID 1 FLAGS \(\\Recent\) RFC822.SIZE (\d+) '
                 rb'INTERNALDATE "[ 0-9]\d-[A-Z][a-z]{2}-\d{4} \d\d:\d\d:\d\d [+-]\d{4}"\)$',
                 untagged[0])
    assert m, untagged
    size = int(m.group(1))
    untagged, _ = c.ok("FETCH 1 BODY.PEEK[]")
    whole = untagged[0]
    assert whole.startswith(b"* 1 FETCH (BODY[] {%d}\r\n" % size)
    assert whole.endswith(data + b")")
    assert b"Received: " in whole and b"Return-Path: <sender@example.net>" in whole
    untagged, _ = c.ok("FETCH 1 BODY.PEEK[HEADER.FIELDS (Subject To)]")
    assert untagged[0] == (b"* 1 FETCH (BODY[HEADER.FIELDS (SUBJECT TO)] {44}\r\n"
                           b"To: demo@example.test\r\nSubject: Fetch me\r\n\r\n)")
    untagged, _ = c.ok("FETCH 1 BODY.PEEK[TEXT]<5.8>")
    assert untagged[0] == b"* 1 FETCH (BODY[TEXT]<5> {8}\r\none.\r\nLi)"
    untagged, _ = c.ok("FETCH 1 (FLAGS)")
    assert b"\\Seen" not in untagged[0]
    untagged, _ = c.ok("FETCH 1 BODY[TEXT]")      # not PEEK: sets \Seen
    assert b"FLAGS (\\Seen \\Recent)" in untagged[0]
    untagged, _ = c.ok("FETCH 1 (ENVELOPE BODYSTRUCTURE)")
    assert b'ENVELOPE (NIL "Fetch me" (("' not in untagged[0] or True
    assert re.search(rb'ENVELOPE \(NIL "Fetch me" \(\(NIL NIL "sender" "example.net"\)\)',
                     untagged[0]), untagged[0]
    assert re.search(rb'BODYSTRUCTURE \("TEXT" "PLAIN" \("CHARSET" "US-ASCII"\) NIL NIL "7BIT" '
                     rb'\d+ 2', untagged[0]), untagged[0]
    untagged, _ = c.ok("UID FETCH 1:* (FLAGS)")
    assert untagged[0].startswith(b"* 1 FETCH (UID 1 FLAGS")
    st, line, _ = c.cmd("FETCH 5 FLAGS")
    assert st == "BAD"
    st, line, _ = c.cmd("FETCH 1 (BOGUS)")
    assert st == "BAD"
    untagged, _ = c.ok("UID FETCH 99 FLAGS")
    assert untagged == []


def test_append_store_search_expunge(yubind):
    c = yubind.imap(DEMO)
    msg = yt.crlf("From: a@example.net\nSubject: appended\n\nappended body\n")
    untagged, tagged = c.ok('APPEND INBOX (\\Flagged $Work) "05-Nov-2026 10:20:30 +0100" \0',
                            literals=[msg])
    m = re.search(rb"\[APPENDUID (\d+) 1\]", tagged)
    assert m, tagged
    c.ok("APPEND INBOX {%d+}\r\n" % len(msg) + msg.decode())   # LITERAL+
    st, line, _ = c.cmd("APPEND Nope \0", literals=[msg])
    assert st == "NO" and b"TRYCREATE" in line
    untagged, _ = select(c)
    assert untagged[0].endswith(b"\\Draft $Work)")
    untagged, _ = c.ok("FETCH 1 (FLAGS INTERNALDATE)")
    assert untagged[0] == (b'* 1 FETCH (FLAGS (\\Flagged \\Recent $Work) '
                           b'INTERNALDATE " 5-Nov-2026 09:20:30 +0000")')
    untagged, _ = c.ok("STORE 1:2 +FLAGS (\\Deleted Later)")
    assert len(untagged) == 2 and b"\\Deleted" in untagged[0] and b"Later" in untagged[1]
    untagged, _ = c.ok("STORE 2 -FLAGS.SILENT (\\Deleted)")
    assert untagged == []
    untagged, _ = c.ok("SEARCH DELETED")
    assert untagged == [b"* SEARCH 1"]
    untagged, _ = c.ok("SEARCH KEYWORD Later NOT DELETED")
    assert untagged == [b"* SEARCH 2"]
    untagged, _ = c.ok("UID SEARCH SUBJECT appended BODY \"appended body\"")
    assert untagged == [b"* SEARCH 1 2"]
    untagged, _ = c.ok("SEARCH RETURN (MIN MAX COUNT) ALL")
    assert untagged[0].startswith(b'* ESEARCH (TAG "T') and untagged[0].endswith(
        b") MIN 1 MAX 2 COUNT 2")
    untagged, _ = c.ok("SEARCH CHARSET UTF-8 TEXT nothing-like-this")
    assert untagged == [b"* SEARCH"]
    st, line, _ = c.cmd("SEARCH CHARSET X-NOPE TEXT a")
    assert st == "NO" and b"BADCHARSET" in line
    untagged, _ = c.ok("EXPUNGE")
    assert untagged == [b"* 1 EXPUNGE"]
    untagged, _ = c.ok("FETCH 1 (UID)")
    assert untagged == [b"* 1 FETCH (UID 2)"]
    c.ok("STORE 1 +FLAGS (\\Deleted)")
    untagged, tagged = c.ok("UID EXPUNGE 1")
    assert untagged == []                        # UID 1 is gone already; 2 not in set
    untagged, _ = c.ok("UID EXPUNGE 2")
    assert untagged == [b"* 1 EXPUNGE"]


def test_copy_move_uidplus(yubind):
    for i in range(3):
        deliver(yubind, subject="m%d" % i)
    c = yubind.imap(DEMO)
    select(c)
    untagged, tagged = c.ok("COPY 1:2 Archive")
    m = re.search(rb"\[COPYUID (\d+) 1:2 1:2\]", tagged)
    assert m, tagged
    untagged, tagged = c.ok("UID MOVE 2:3 Trash")
    assert re.match(rb"\* OK \[COPYUID \d+ 2:3 1:2\]", untagged[0]), untagged
    assert untagged[1:] == [b"* 3 EXPUNGE", b"* 2 EXPUNGE"]
    st, line, _ = c.cmd("COPY 1 Nope")
    assert st == "NO" and b"TRYCREATE" in line
    untagged, _ = c.ok("STATUS Trash (MESSAGES)")
    assert untagged == [b"* STATUS Trash (MESSAGES 2)"]
    c.ok("SELECT Archive")
    untagged, _ = c.ok("FETCH 1:* BODY.PEEK[HEADER.FIELDS (SUBJECT)]")
    assert [l.split(b"Subject: ")[1][:2] for l in untagged] == [b"m0", b"m1"]
    c.ok("CLOSE")
    st, _, _ = c.cmd("FETCH 1 FLAGS")
    assert st == "NO"


def test_two_sessions_see_each_other(yubind):
    deliver(yubind)
    deliver(yubind)
    a = yubind.imap(DEMO)
    b = yubind.imap(DEMO)
    select(a)
    select(b)
    a.ok("STORE 1 +FLAGS (\\Flagged)")
    untagged, _ = b.ok("NOOP")
    assert untagged == [b"* 1 FETCH (UID 1 FLAGS (\\Flagged))"]
    a.ok("STORE 2 +FLAGS (\\Deleted)")
    a.ok("EXPUNGE")
    untagged, _ = b.ok("FETCH 1:* (FLAGS)")
    # No EXPUNGE during FETCH (RFC 3501 7.4.1); the flag change may come.
    assert not any(b"EXPUNGE" in l for l in untagged)
    untagged, _ = b.ok("NOOP")
    assert b"* 2 EXPUNGE" in untagged
    deliver(yubind)
    untagged, _ = b.ok("NOOP")
    assert b"* 2 EXISTS" in untagged
    a.ok("NOOP")                       # a learns of the new message first
    a.ok("MOVE 2 Trash")
    untagged, _ = b.ok("CHECK")
    assert b"* 2 EXPUNGE" in untagged


def test_idle_sees_delivery(yubind):
    c = yubind.imap(DEMO)
    select(c)
    c.send(b"I1 IDLE\r\n")
    assert c.readline() == b"+ idling"
    t0 = time.monotonic()
    deliver(yubind)
    lines = [c.readline(), c.readline()]
    elapsed = time.monotonic() - t0
    assert b"* 1 EXISTS" in lines and b"* 1 RECENT" in lines, lines
    assert elapsed < 5, elapsed       # generous: the target is "within a second"
    other = yubind.imap(DEMO)
    select(other)
    other.ok("STORE 1 +FLAGS (\\Seen)")
    assert c.readline() == b"* 1 FETCH (UID 1 FLAGS (\\Seen \\Recent))"
    c.send(b"DONE\r\n")
    assert c.readline().startswith(b"I1 OK")
    c.ok("NOOP")


def test_condstore_qresync(yubind):
    deliver(yubind)
    deliver(yubind)
    c = yubind.imap(DEMO)
    c.ok("ENABLE QRESYNC")
    untagged, _ = c.ok("SELECT INBOX (CONDSTORE)")
    hms = int(re.search(rb"HIGHESTMODSEQ (\d+)", b"\n".join(untagged)).group(1))
    uidv = int(re.search(rb"UIDVALIDITY (\d+)", b"\n".join(untagged)).group(1))
    untagged, _ = c.ok("FETCH 1:* (MODSEQ)")
    assert re.match(rb"\* 1 FETCH \(MODSEQ \(\d+\)\)", untagged[0])
    untagged, tagged = c.ok("STORE 1 (UNCHANGEDSINCE 1) +FLAGS (\\Seen)")
    assert b"[MODIFIED 1]" in tagged
    untagged, tagged = c.ok("STORE 1 (UNCHANGEDSINCE %d) +FLAGS (\\Seen)" % hms)
    assert re.match(rb"\* 1 FETCH \(UID 1 FLAGS \(\\Seen \\Recent\) MODSEQ \((\d+)\)\)",
                    untagged[0]), untagged
    untagged, _ = c.ok("FETCH 1:* (FLAGS) (CHANGEDSINCE %d)" % hms)
    assert len(untagged) == 1 and b"MODSEQ" in untagged[0]
    c.ok("STORE 2 +FLAGS.SILENT (\\Deleted)")
    c.ok("EXPUNGE")
    c.ok("UNSELECT")
    untagged, _ = c.ok("SELECT INBOX (QRESYNC (%d %d 1:2))" % (uidv, hms))
    assert b"* VANISHED (EARLIER) 2" in untagged, untagged
    assert any(l.startswith(b"* 1 FETCH (UID 1 FLAGS (\\Seen)") for l in untagged), untagged
    untagged, _ = c.ok("UID FETCH 1:* (FLAGS) (CHANGEDSINCE %d VANISHED)" % hms)
    assert untagged[0] == b"* VANISHED (EARLIER) 2"


# ------------------------------------------------------------------ caps ----

def test_literal_too_large_refused_before_data(yubind):
    c = yubind.imap(DEMO)
    c.send(b"A1 APPEND INBOX {999999999999}\r\n")
    line = c.readline()
    assert line.startswith(b"A1 NO [TOOBIG]") or line.startswith(b"A1 BAD"), line
    c.ok("NOOP")
    pre = yubind.imap()
    pre.send(b"A2 LOGIN {100000}\r\n")
    assert pre.readline().startswith(b"A2 NO [TOOBIG]")
    pre.ok("NOOP")


def test_line_too_long_and_nesting(yubind):
    c = yubind.imap()
    c.send(b"A1 NOOP " + b"x" * 20000 + b"\r\n")
    assert c.readline().startswith(b"A1 BAD")
    c.ok("NOOP")
    c.login(DEMO, yt.USERS[DEMO])
    select(c)
    c.send(b"A2 SEARCH " + b"(" * 100 + b"ALL" + b")" * 100 + b"\r\n")
    assert c.readline().startswith(b"A2 BAD")
    c.ok("NOOP")


@pytest.mark.yubind_conf(imap_max_sessions_per_user="2", imap_max_sessions_per_ip="4")
def test_session_caps(yubind):
    a = yubind.imap(DEMO)
    b = yubind.imap(DEMO)
    c = yubind.imap()
    st, line, _ = c.cmd('LOGIN "%s" "%s"' % (DEMO, yt.USERS[DEMO]))
    assert st == "NO" and b"[LIMIT]" in line
    c.login(ALICE, yt.USERS[ALICE])
    d = yubind.imap()
    e = yt.ImapClient(yubind.imap_port)
    assert e.readline().startswith(b"* BYE")
    a.ok("LOGOUT")
    assert a.closed_by_peer()
    del b, d
    f = yubind.imap()
    f.ok("NOOP")


def test_many_bad_commands_then_bye(yubind):
    c = yubind.imap()
    for i in range(19):
        st, _, _ = c.cmd("FROB")
        assert st == "BAD"
    c.send(b"X FROB\r\n")
    assert c.readline().startswith(b"X BAD")
    assert c.readline().startswith(b"* BYE")


# ----------------------------------------------------------- real clients ----

def test_imaplib_round_trip(yubind):
    deliver(yubind, subject="via smtp")
    m = imaplib.IMAP4("127.0.0.1", yubind.imap_port)
    m.login(DEMO, yt.USERS[DEMO])
    typ, data = m.select("INBOX")
    assert typ == "OK" and data == [b"1"]
    typ, data = m.uid("SEARCH", None, "ALL")
    assert data == [b"1"]
    typ, data = m.fetch("1", "(RFC822)")
    assert b"Subject: via smtp" in data[0][1]
    m.append("Sent", "(\\Seen)", imaplib.Time2Internaldate(time.time()),
             yt.crlf("Subject: sent copy\n\nbody\n"))
    typ, data = m.status("Sent", "(MESSAGES UNSEEN)")
    assert data == [b"Sent (MESSAGES 1 UNSEEN 0)"]
    m.store("1", "+FLAGS", "\\Deleted")
    typ, data = m.expunge()
    assert data == [b"1"]
    typ, data = m.list()
    assert any(b"Sent" in x for x in data)
    m.logout()


def test_imaplib_starttls(yubind, tls_ctx):
    m = imaplib.IMAP4("127.0.0.1", yubind.imap_port)
    m.starttls(ssl_context=tls_ctx)
    m.login(DEMO, yt.USERS[DEMO])
    assert m.select("INBOX")[0] == "OK"
    m.logout()


def test_curl_imap(yubind):
    yt_need = shutil.which("curl")
    assert yt_need, "curl not installed"
    deliver(yubind, subject="for curl")
    url = "imap://127.0.0.1:%d/INBOX;UID=1" % yubind.imap_port
    r = subprocess.run(["curl", "-sS", "--user", "%s:%s" % (DEMO, yt.USERS[DEMO]), url],
                       capture_output=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert b"Subject: for curl" in r.stdout
    r = subprocess.run(["curl", "-sS", "--user", "%s:%s" % (DEMO, yt.USERS[DEMO]),
                        "imap://127.0.0.1:%d/" % yubind.imap_port],
                       capture_output=True, timeout=60)
    assert r.returncode == 0 and b"INBOX" in r.stdout and b"Drafts" in r.stdout


def test_mbsync_both_ways(yubind, tmp_path):
    assert shutil.which("mbsync"), "mbsync (isync) not installed"
    deliver(yubind, subject="server side")
    local = tmp_path / "Maildir"
    local.mkdir()
    rc = tmp_path / "mbsyncrc"
    rc.write_text(f"""IMAPAccount yubin
Host 127.0.0.1
Port {yubind.imap_port}
User {DEMO}
Pass {yt.USERS[DEMO]}
SSLType None
AuthMechs LOGIN

IMAPStore remote
Account yubin

MaildirStore local
Path {local}/
Inbox {local}/INBOX
SubFolders Verbatim

Channel all
Far :remote:
Near :local:
Patterns INBOX Sent
Create Both
Expunge Both
SyncState *
""")
    env = dict(os.environ, HOME=str(tmp_path))
    run = lambda: subprocess.run(["mbsync", "-c", str(rc), "-a"], capture_output=True,
                                 timeout=120, env=env)
    r = run()
    assert r.returncode == 0, r.stderr.decode()
    files = list((local / "INBOX" / "new").iterdir()) + list((local / "INBOX" / "cur").iterdir())
    assert len(files) == 1 and b"Subject: server side" in files[0].read_bytes()
    # Local to server: a new message in the local Sent, and a flag.
    sent = local / "Sent"
    (sent / "cur").mkdir(parents=True, exist_ok=True)
    (sent / "new").mkdir(exist_ok=True)
    (sent / "tmp").mkdir(exist_ok=True)
    (sent / "cur" / "1700000000.1.host:2,S").write_bytes(
        yt.crlf("From: demo@example.test\nSubject: local side\n\nhi\n"))
    os.rename(files[0], str(local / "INBOX" / "cur" / (files[0].name.split(":")[0] + ":2,F")))
    r = run()
    assert r.returncode == 0, r.stderr.decode()
    c = yubind.imap(DEMO)
    untagged, _ = c.ok("STATUS Sent (MESSAGES)")
    assert untagged == [b"* STATUS Sent (MESSAGES 1)"]
    select(c)
    untagged, _ = c.ok("FETCH 1 (FLAGS)")
    assert b"\\Flagged" in untagged[0]


def test_multiappend(yubind):
    c = yubind.imap(DEMO)
    msgs = [yt.crlf("Subject: multi %d\n\nbody %d\n" % (i, i)) for i in range(3)]
    text = "APPEND Archive (\\Seen) \0 {%d+}\r\n%s (\\Flagged) \0" % (
        len(msgs[1]), msgs[1].decode())
    untagged, tagged = c.ok(text, literals=[msgs[0], msgs[2]])
    m = re.search(rb"\[APPENDUID \d+ 1:3\]", tagged)
    assert m, tagged
    c.ok("SELECT Archive")
    untagged, _ = c.ok("FETCH 1:* (FLAGS BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
    assert b"\\Seen" in untagged[0] and b"multi 0" in untagged[0]
    assert b"multi 1" in untagged[1] and b"\\Flagged" in untagged[2]


def test_search_japanese_and_index(yubind):
    body = "\u65e5\u672c\u8a9e\u306e\u30e1\u30fc\u30eb\u672c\u6587\u3067\u3059\u3002\n"
    jis = body.encode("iso-2022-jp")
    subj = "=?ISO-2022-JP?B?" + __import__("base64").b64encode(
        "\u4f1a\u8b70\u306e\u4ef6".encode("iso-2022-jp")).decode() + "?="
    msg = (b"From: a@example.net\r\nTo: demo@example.test\r\nSubject: " + subj.encode() +
           b"\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=ISO-2022-JP\r\n"
           b"Content-Transfer-Encoding: 7bit\r\n\r\n" + jis.replace(b"\n", b"\r\n"))
    yubind.send("sender@example.net", [DEMO], msg)
    deliver(yubind, subject="Plain English", body="Nothing Japanese HERE.\n")
    c = yubind.imap(DEMO)
    select(c)

    def search(crit, lits=()):
        untagged, _ = c.ok("UID SEARCH CHARSET UTF-8 " + crit, literals=lits)
        return untagged

    u = lambda s: s.encode("utf-8")
    assert search("BODY \0", [u("\u30e1\u30fc\u30eb\u672c")]) == [b"* SEARCH 1"]   # indexed
    assert search("BODY \0", [u("\u672c\u6587")]) == [b"* SEARCH 1"]               # 2 chars: scan
    assert search("BODY \0", [u("\u30e1\u30fc\u30eb\u672cX")]) == [b"* SEARCH"]
    assert search("SUBJECT \0", [u("\u4f1a\u8b70")]) == [b"* SEARCH 1"]
    assert search("TEXT \0", [u("\u4f1a\u8b70\u306e")]) == [b"* SEARCH 1"]
    assert search("BODY japanese") == [b"* SEARCH 2"]                             # case-insensitive
    assert search("NOT BODY japanese") == [b"* SEARCH 1"]
    untagged, _ = c.ok("SEARCH CHARSET ISO-2022-JP BODY \0",
                       literals=["\u30e1\u30fc\u30eb".encode("iso-2022-jp")])
    assert untagged == [b"* SEARCH 1"]


def test_login_cache_follows_password_changes(yubind):
    mark = yubind.log_mark()
    yubind.imap(ALICE).ok("LOGOUT")
    yubind.wait_log(r"login user=alice@example\.test method=LOGIN tls=no cached=no", since=mark)
    mark = yubind.log_mark()
    yubind.imap(ALICE).ok("LOGOUT")
    yubind.wait_log(r"login user=alice@example\.test method=LOGIN tls=no cached=yes", since=mark)
    yubind.cli("user", "passwd", ALICE, input="a-New-Pass-9\n")
    c = yubind.imap()
    st, line, _ = c.cmd('LOGIN "%s" "%s"' % (ALICE, yt.USERS[ALICE]))
    assert st == "NO"                 # the old password no longer works, cached or not
    mark = yubind.log_mark()
    c.login(ALICE, "a-New-Pass-9")
    yubind.wait_log(r"login user=alice@example\.test method=LOGIN tls=no cached=no", since=mark)


def test_sort_and_thread(yubind):
    root = "<root@example.net>"
    deliver(yubind, subject="Banana", extra="Message-ID: <root@example.net>\n"
            "Date: Mon, 02 Nov 2026 10:00:00 +0000\n")
    deliver(yubind, subject="apple", extra="Date: Tue, 03 Nov 2026 10:00:00 +0000\n")
    deliver(yubind, subject="Re: Banana", extra="In-Reply-To: %s\nReferences: %s\n"
            "Date: Wed, 04 Nov 2026 10:00:00 +0000\n" % (root, root))
    c = yubind.imap(DEMO)
    select(c)
    untagged, _ = c.ok("SORT (SUBJECT) UTF-8 ALL")
    assert untagged == [b"* SORT 2 1 3"]
    untagged, _ = c.ok("SORT (REVERSE DATE) UTF-8 ALL")
    assert untagged == [b"* SORT 3 2 1"]
    untagged, _ = c.ok("UID SORT (SIZE) UTF-8 NOT SUBJECT apple")
    assert untagged[0].startswith(b"* SORT ") and len(untagged[0].split()) == 4
    untagged, _ = c.ok("THREAD REFERENCES UTF-8 ALL")
    assert untagged == [b"* THREAD (1 3)(2)"]
    untagged, _ = c.ok("THREAD ORDEREDSUBJECT UTF-8 ALL")
    assert untagged == [b"* THREAD (1 3)(2)"]      # threads by their first date
    untagged, _ = c.ok("UID THREAD REFERENCES UTF-8 NOT SUBJECT apple")
    assert untagged == [b"* THREAD (1 3)"]
    st, line, _ = c.cmd("THREAD BOGUS UTF-8 ALL")
    assert st == "BAD"


def test_interimap_qresync_two_accounts(yubind, tmp_path):
    assert shutil.which("interimap"), "interimap not installed"
    deliver(yubind, to=DEMO, subject="local one")
    deliver(yubind, to=ALICE, subject="remote one")
    cfg = tmp_path / "interimap.conf"
    cfg.write_text(f"""database = {tmp_path}/interimap.db
list-mailbox = INBOX

[local]
type = imap
host = 127.0.0.1
port = {yubind.imap_port}
STARTTLS = NO
username = {DEMO}
password = {yt.USERS[DEMO]}

[remote]
type = imap
host = 127.0.0.1
port = {yubind.imap_port}
STARTTLS = NO
username = {ALICE}
password = {yt.USERS[ALICE]}
""")
    env = dict(os.environ, HOME=str(tmp_path), XDG_DATA_HOME=str(tmp_path))

    def run():
        r = subprocess.run(["interimap", "--config", str(cfg)], capture_output=True,
                           timeout=120, env=env)
        assert r.returncode == 0, r.stderr.decode()
        return r
    run()
    for who in (DEMO, ALICE):
        c = yubind.imap(who)
        untagged, _ = c.ok("STATUS INBOX (MESSAGES)")
        assert untagged == [b"* STATUS INBOX (MESSAGES 2)"], (who, untagged)
    # A flag set on one side and a message expunged on the other travel
    # on the next run (QRESYNC: only what changed is read).
    a = yubind.imap(DEMO)
    select(a)
    a.ok("UID STORE 1 +FLAGS (\\Flagged)")
    b = yubind.imap(ALICE)
    select(b)
    untagged, _ = b.ok("UID SEARCH SUBJECT remote")
    uid = untagged[0].split()[2]
    b.ok("UID STORE %s +FLAGS (\\Deleted)" % uid.decode())
    b.ok("EXPUNGE")
    run()
    untagged, _ = a.ok("NOOP")
    untagged, _ = a.ok("SEARCH ALL")
    assert untagged == [b"* SEARCH 1"]
    b.ok("NOOP")
    untagged, _ = b.ok("SEARCH FLAGGED")
    assert untagged == [b"* SEARCH 1"]


def test_quota_imap_and_smtp(yubind):
    r = yubind.cli("user", "quota", DEMO, "2k")
    assert "quota 2048 bytes, 0 used" in r.stdout
    c = yubind.imap(DEMO)
    untagged, _ = c.ok("GETQUOTAROOT INBOX")
    assert untagged == [b'* QUOTAROOT INBOX ""', b'* QUOTA "" (STORAGE 0 2)']
    big = yt.crlf("Subject: big\n\n" + "y" * 1800 + "\n")
    c.ok("APPEND INBOX \0", literals=[big])
    st, line, _ = c.cmd("APPEND INBOX \0", literals=[big])
    assert st == "NO" and b"[OVERQUOTA]" in line
    untagged, _ = c.ok('GETQUOTA ""')
    assert re.match(rb'\* QUOTA "" \(STORAGE 2 2\)', untagged[0]), untagged
    st, line, _ = c.cmd('SETQUOTA "" (STORAGE 10)')
    assert st == "NO"
    # SMTP: a declared size that does not fit is refused for good, and so
    # is nothing else yet (1.8k of 2k used).
    s = yubind.smtp()
    yt.expect(s.cmd("MAIL FROM:<sender@example.net> SIZE=5000"), 250)
    yt.expect(s.cmd("RCPT TO:<%s>" % DEMO), 552, "5.2.2")
    s.cmd("RSET")
    deliver(yubind)                     # still below the quota: taken
    s = yubind.smtp()
    yt.expect(s.cmd("MAIL FROM:<sender@example.net>"), 250)
    yt.expect(s.cmd("RCPT TO:<%s>" % DEMO), 452, "4.2.2")    # now full
    yt.expect(s.cmd("RCPT TO:<%s>" % ALICE), 250)            # others are not
    # Expunging frees the space.
    select(c)
    c.ok("STORE 1:* +FLAGS.SILENT (\\Deleted)")
    c.ok("EXPUNGE")
    deliver(yubind)
    yubind.cli("user", "quota", DEMO, "0")
    untagged, _ = c.ok("GETQUOTAROOT INBOX")
    assert untagged[0] == b"* QUOTAROOT INBOX" and not any(b"QUOTA " in l for l in untagged)


def test_compress_deflate(yubind, tls_ctx):
    import zlib
    deliver(yubind, subject="squeezed", body="compress me " * 200 + "\n")
    c = yubind.imap(DEMO)
    _, tagged = c.ok("NOOP")
    st, line, _ = c.cmd("COMPRESS DEFLATE")
    assert st == "OK" and c.buf == b""
    comp = zlib.compressobj(6, zlib.DEFLATED, -15)
    decomp = zlib.decompressobj(-15)
    plain = b""

    def send(data):
        c.sock.sendall(comp.compress(data) + comp.flush(zlib.Z_SYNC_FLUSH))

    def read_until(tag):
        nonlocal plain
        raw = 0
        while not re.search(rb"(^|\r\n)" + tag + rb" [A-Z]+ [^\r\n]*\r\n", plain):
            d = c.sock.recv(65536)
            assert d, "closed"
            raw += len(d)
            plain += decomp.decompress(d)
        return raw

    send(b"Z1 CAPABILITY\r\nZ2 SELECT INBOX\r\nZ3 FETCH 1 BODY.PEEK[TEXT]\r\n")
    raw = read_until(b"Z3")
    assert b"* CAPABILITY " in plain and b"COMPRESS=DEFLATE" not in plain
    assert b"* 1 EXISTS" in plain and plain.count(b"compress me") == 200
    assert raw < len(plain) / 3, (raw, len(plain))        # it really is compressed
    send(b"Z4 COMPRESS DEFLATE\r\n")
    read_until(b"Z4")
    assert b"Z4 NO [COMPRESSIONACTIVE]" in plain
    # A literal inflated from a small packet is taken in pieces.
    big = b"Subject: zeros\r\n\r\n" + b"0" * 3_000_000 + b"\r\n"
    send(b"Z5 APPEND INBOX {%d+}\r\n" % len(big) + big + b"\r\n")
    read_until(b"Z5")
    assert b"Z5 OK [APPENDUID" in plain
    # Garbage in the compressed stream ends the connection, not the server.
    c.sock.sendall(b"\xff\xff\xff\xff not deflate")
    assert c.closed_by_peer()
    yubind.imap(DEMO).ok("NOOP")


def test_fetch_header_of_long_header(yubind):
    extra = "".join("X-Filler-%d: %s\n" % (i, "z" * 60) for i in range(400))   # ~30 KiB
    data = deliver(yubind, subject="long header", body="the body\n", extra=extra)
    c = yubind.imap(DEMO)
    select(c)
    untagged, _ = c.ok("FETCH 1 (BODY.PEEK[HEADER] BODY.PEEK[HEADER.FIELDS (SUBJECT)] ENVELOPE)")
    line = untagged[0]
    hdr_len = data.index(b"\r\n\r\n") + 4
    m = re.search(rb"BODY\[HEADER\] \{(\d+)\}\r\n", line)
    stored_prefix = line[m.end():m.end() + int(m.group(1))]
    assert stored_prefix.endswith(data[:hdr_len]) and b"the body" not in stored_prefix
    assert b"BODY[HEADER.FIELDS (SUBJECT)] {24}\r\nSubject: long header\r\n\r\n" in line
    assert b'"long header"' in line


def test_append_into_selected_mailbox(yubind):
    c = yubind.imap(DEMO)
    select(c)
    msg = yt.crlf("Subject: here\n\nbody\n")
    untagged, tagged = c.ok("APPEND INBOX (\\Seen kw1) \0", literals=[msg])
    assert untagged == [b"* 1 EXISTS", b"* 1 RECENT"], untagged
    deliver(yubind)                                   # someone else's change
    untagged, tagged = c.ok("APPEND INBOX \0", literals=[msg])
    assert b"* 3 EXISTS" in untagged, untagged        # read from the store: both new ones
    untagged, _ = c.ok("FETCH 1:* (UID FLAGS)")
    assert untagged[0] == b"* 1 FETCH (UID 1 FLAGS (\\Seen \\Recent kw1))"
    assert [l.split()[4] for l in untagged] == [b"1", b"2", b"3"]


def test_index_catches_up_on_unindexed_messages(make_yubind):
    import sqlite3
    y = make_yubind()
    for i in range(3):
        deliver(y, subject="old %d" % i, body="needle-%d in an old message\n" % i)
    c = y.imap(DEMO)
    c.ok("NOOP")
    c.ok("LOGOUT")
    y.stop()
    # As a store from before the index (schema 4) would be: no text, not indexed.
    db = sqlite3.connect(os.path.join(y.data, "yubin.db"))
    db.execute("DELETE FROM msg_text")
    db.execute("UPDATE messages SET indexed = 0")
    db.commit()
    db.close()
    y.start()
    deadline = time.monotonic() + yt.DEADLINE
    while True:
        db = sqlite3.connect(os.path.join(y.data, "yubin.db"))
        left = db.execute("SELECT count(*) FROM messages WHERE indexed != 1").fetchone()[0]
        rows = db.execute("SELECT count(*) FROM msg_text").fetchone()[0]
        db.close()
        if left == 0 and rows == 3:
            break
        assert time.monotonic() < deadline, (left, rows)
        time.sleep(0.05)
    c = y.imap(DEMO)
    select(c)
    untagged, _ = c.ok("SEARCH BODY needle-1")
    assert untagged == [b"* SEARCH 2"]


def test_list_pattern_caps(yubind):
    c = yubind.imap(DEMO)
    c.ok('LIST "" "%s"' % ("*a" * 127))              # 254 bytes: fine
    st, line, _ = c.cmd('LIST "" "%s"' % ("*a" * 128))   # 256 bytes
    assert st == "BAD" and b"too long" in line
    st, line, _ = c.cmd('LIST "" (%s)' % " ".join(['"x%d"' % i for i in range(33)]))
    assert st == "BAD"
    c.ok('LIST "" (%s)' % " ".join(['"x%d"' % i for i in range(32)]))
