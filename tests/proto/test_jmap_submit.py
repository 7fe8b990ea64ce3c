"""JMAP submission (RFC 8621 6 and 7): Identity/get and EmailSubmission/set
into yubind's store and outbound queue.

Drafts are put in place with IMAP APPEND (imaplib), found with Email/query,
and submitted over HTTPS with HTTP Basic.  Local recipients are read back
over POP3 and IMAP; remote ones go through a route to a small SMTP sink on
loopback, which keeps what it is sent."""

import base64
import http.client
import imaplib
import json
import re
import socket
import ssl
import threading

import pytest

import yubintest as yt

DEMO = "demo@example.test"
ALICE = "alice@example.test"
BOB = "bob@example.org"
CORE = "urn:ietf:params:jmap:core"
MAIL = "urn:ietf:params:jmap:mail"
SUBMISSION = "urn:ietf:params:jmap:submission"
USING = [CORE, MAIL, SUBMISSION]


def basic(user=DEMO):
    return "Basic " + base64.b64encode(f"{user}:{yt.USERS[user]}".encode()).decode()


class Jmap:
    def __init__(self, y, user=DEMO):
        self.conn = http.client.HTTPSConnection("127.0.0.1", y.https_port,
                                                context=y.cert.client_context(),
                                                timeout=yt.IO_TIMEOUT)
        self.auth = basic(user)
        self.session = self.get("/jmap/session")
        self.acct = self.session["primaryAccounts"][MAIL]

    def get(self, path):
        self.conn.request("GET", path, headers={"Authorization": self.auth})
        r = self.conn.getresponse()
        data = r.read()
        assert r.status == 200, (r.status, data)
        return json.loads(data)

    def api(self, calls, using=USING):
        body = json.dumps({"using": using, "methodCalls": calls}).encode()
        self.conn.request("POST", "/jmap/api/", body=body,
                          headers={"Authorization": self.auth,
                                   "Content-Type": "application/json"})
        r = self.conn.getresponse()
        data = r.read()
        assert r.status == 200, (r.status, data)
        return json.loads(data)["methodResponses"]

    def call(self, name, args):
        """One method: its response arguments (asserting it is not an error)."""
        args = {"accountId": self.acct, **args}
        resp = self.api([[name, args, "c"]])
        assert resp[0][0] == name, resp
        return resp[0][1]

    def mailboxes(self):
        """role -> mailbox id."""
        got = self.call("Mailbox/get", {"ids": None})
        return {m["role"]: m["id"] for m in got["list"] if m.get("role")}

    def identity(self, email=DEMO):
        ids = self.call("Identity/get", {"ids": None})["list"]
        return next(i["id"] for i in ids if i["email"] == email)

    def close(self):
        self.conn.close()


def draft(frm=DEMO, to=ALICE, subject="hello", extra="", body="Hi there.\r\n"):
    """A draft without Date and Message-ID (the submission adds them)."""
    head = f"From: {frm}\r\n"
    if to:
        head += f"To: {to}\r\n"
    return (head + f"Subject: {subject}\r\n{extra}MIME-Version: 1.0\r\n"
            "Content-Type: text/plain; charset=utf-8\r\n\r\n" + body).encode()


def append_draft(y, msg, user=DEMO):
    """IMAP APPEND into Drafts; returns the Email id JMAP gives it."""
    c = imaplib.IMAP4("127.0.0.1", y.imap_port, timeout=yt.IO_TIMEOUT)
    try:
        c.login(user, yt.USERS[user])
        typ, data = c.append("Drafts", r"(\Draft)", None, msg)
        assert typ == "OK", data
    finally:
        c.logout()
    j = Jmap(y, user)
    try:
        drafts = j.mailboxes()["drafts"]
        q = j.call("Email/query", {"filter": {"inMailbox": drafts},
                                   "sort": [{"property": "receivedAt", "isAscending": False}]})
        assert q["ids"], q
        return q["ids"][0]
    finally:
        j.close()


def submit(j, email_id, identity=None, envelope=None, cid="sub", **extra):
    obj = {"identityId": identity or j.identity(), "emailId": email_id}
    if envelope is not None:
        obj["envelope"] = envelope
    return j.call("EmailSubmission/set", {"create": {cid: obj}, **extra})


def imap_mailbox(y, user, mailbox):
    """[(flags, message bytes)] of one mailbox, over IMAP."""
    c = imaplib.IMAP4("127.0.0.1", y.imap_port, timeout=yt.IO_TIMEOUT)
    try:
        c.login(user, yt.USERS[user])
        typ, data = c.select(mailbox, readonly=True)
        assert typ == "OK"
        if int(data[0]) == 0:
            return []
        typ, data = c.fetch("1:*", "(FLAGS BODY.PEEK[])")
        assert typ == "OK", data
        out = []
        for item in data:
            if isinstance(item, tuple):
                out.append((item[0], item[1]))
        return out
    finally:
        c.logout()


class SmtpSink:
    """A minimal SMTP server on loopback that keeps every message with its
    envelope."""

    def __init__(self, host="127.0.0.1"):
        self.sock = socket.socket()
        self.sock.bind((host, 0))
        self.sock.listen(8)
        self.port = self.sock.getsockname()[1]
        self.messages = []          # (mail from line, [rcpt lines], data)
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
            c.sendall(b"220 sink.example ESMTP\r\n")
            mail, rcpts = None, []
            try:
                while True:
                    line = f.readline()
                    if not line:
                        break
                    cmd = line.strip().upper()
                    if cmd.startswith(b"EHLO") or cmd.startswith(b"HELO"):
                        c.sendall(b"250-sink.example\r\n250-8BITMIME\r\n250 SIZE 50000000\r\n")
                    elif cmd.startswith(b"MAIL"):
                        mail, rcpts = line.strip(), []
                        c.sendall(b"250 ok\r\n")
                    elif cmd.startswith(b"RCPT"):
                        rcpts.append(line.strip())
                        c.sendall(b"250 ok\r\n")
                    elif cmd == b"RSET":
                        c.sendall(b"250 ok\r\n")
                    elif cmd == b"DATA":
                        c.sendall(b"354 go\r\n")
                        data = []
                        while True:
                            d = f.readline()
                            if d in (b".\r\n", b""):
                                break
                            data.append(d[1:] if d.startswith(b"..") else d)
                        self.messages.append((mail, rcpts, b"".join(data)))
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


def head_of(data):
    return data.split(b"\r\n\r\n", 1)[0]


# ------------------------------------------------------------------ tests ----

def test_session_capability_and_identities(yubind):
    j = Jmap(yubind)
    s = j.session
    assert SUBMISSION in s["capabilities"]
    acaps = s["accounts"][j.acct]["accountCapabilities"]
    assert acaps[SUBMISSION] == {"maxDelayedSend": 0, "submissionExtensions": {}}
    got = j.call("Identity/get", {"ids": None})
    assert [i["email"] for i in got["list"]] == [DEMO]
    ident = got["list"][0]
    assert re.fullmatch(r"i[0-9a-f]{16}", ident["id"])
    assert ident == {"id": ident["id"], "name": "", "email": DEMO, "replyTo": None,
                     "bcc": None, "textSignature": "", "htmlSignature": "",
                     "mayDelete": False}
    # an alias naming the account is one more identity; the first keeps its id
    yubind.cli("alias", "add", "sales@example.test", DEMO)
    got2 = j.call("Identity/get", {"ids": None})
    assert sorted(i["email"] for i in got2["list"]) == [DEMO, "sales@example.test"]
    assert next(i["id"] for i in got2["list"] if i["email"] == DEMO) == ident["id"]
    assert got2["state"] != got["state"]
    one = j.call("Identity/get", {"ids": [ident["id"], "inope"], "properties": ["email"]})
    assert one["list"] == [{"id": ident["id"], "email": DEMO}]
    assert one["notFound"] == ["inope"]
    ch = j.call("Identity/changes", {"sinceState": got2["state"]})
    assert ch["created"] == [] and ch["newState"] == got2["state"]
    r = j.api([["Identity/changes", {"accountId": j.acct, "sinceState": got["state"]}, "c"]])
    assert r[0] == ["error", {"type": "cannotCalculateChanges",
                              "description": r[0][1]["description"]}, "c"]
    st = j.call("Identity/set", {"create": {"n": {"email": "x@example.test"}},
                                 "update": {ident["id"]: {"name": "Demo"}},
                                 "destroy": [ident["id"]]})
    assert st["notCreated"]["n"]["type"] == "forbidden"
    assert st["notUpdated"][ident["id"]]["type"] == "forbidden"
    assert st["notDestroyed"][ident["id"]]["type"] == "forbidden"
    # without the submission capability in "using", the methods are unknown
    r = j.api([["Identity/get", {"accountId": j.acct}, "c"]], using=[CORE, MAIL])
    assert r[0][0] == "error" and r[0][1]["type"] == "unknownMethod"
    # alice's identities are hers
    ja = Jmap(yubind, ALICE)
    assert [i["email"] for i in ja.call("Identity/get", {})["list"]] == [ALICE]
    ja.close()
    j.close()


def test_local_recipients_get_it_with_trace_and_without_bcc(yubind):
    eid = append_draft(yubind, draft(to=ALICE, extra=f"Bcc: {BOB}\r\n",
                                     body="Local mail.\r\n"))
    j = Jmap(yubind)
    res = submit(j, eid)
    assert res["notCreated"] == {}, res
    sub = res["created"]["sub"]
    assert re.fullmatch(r"s[0-9A-Za-z]{16}", sub["id"]) and sub["undoStatus"] == "final"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", sub["sendAt"])
    assert sub["deliveryStatus"] == {
        a: {"smtpReply": "250 2.0.0 delivered to a local mailbox", "delivered": "yes",
            "displayed": "unknown"} for a in (ALICE, BOB)}
    assert sub["threadId"] == "t" + eid[1:]
    qid = sub["id"][1:]
    yubind.wait_log(rf"{qid}: from=<demo@example\.test>, size=\d+, nrcpt=2, "
                    rf"jmap account=demo@example\.test")
    yubind.wait_log(rf"{qid}: to=<bob@example\.org>, relay=local, status=sent \(delivered "
                    r"to INBOX uid=1, mailbox \d+\)")
    for user in (ALICE, BOB):
        got = yubind.fetch(user)
        assert len(got) == 1, user
        rp, received, data = yt.split_stored(got[0])
        assert rp == b"Return-Path: <demo@example.test>"
        assert re.fullmatch(rf"Received: from \[127\.0\.0\.1\] by {re.escape(yt.HOSTNAME)} "
                            rf"\(Yubin\) with JMAP id {qid}; .+", yt.unfold(received)), received
        head = head_of(data)
        assert b"Bcc" not in head and BOB.encode() not in head
        assert re.search(rb"(?m)^Date: ", head)
        assert re.search(rb"(?m)^Message-ID: <" + qid.encode() + rb"\.yubin@", head)
        assert data.endswith(b"\r\n\r\nLocal mail.\r\n")
    # the draft itself is unchanged, Bcc and all
    drafts = imap_mailbox(yubind, DEMO, "Drafts")
    assert len(drafts) == 1 and b"Bcc: " + BOB.encode() in drafts[0][1]
    # nothing was queued: the queue knows no submission
    g = j.call("EmailSubmission/get", {"ids": [sub["id"]]})
    assert g["list"] == [] and g["notFound"] == [sub["id"]]
    j.close()


def test_remote_recipient_through_a_route(yubind):
    sink = SmtpSink()
    try:
        yubind.cli("route", "add", "remote.example", f"[127.0.0.1]:{sink.port}")
        eid = append_draft(yubind, draft(to="Far Away <far@remote.example>",
                                         extra="Cc: alice@example.test\r\n"))
        j = Jmap(yubind)
        res = submit(j, eid)
        assert res["notCreated"] == {}, res
        qid = res["created"]["sub"]["id"][1:]
        ds = res["created"]["sub"]["deliveryStatus"]
        assert ds["far@remote.example"]["delivered"] == "queued"
        assert ds[ALICE]["delivered"] == "yes"
        yubind.wait_log(rf"{qid}: to=<far@remote\.example>, status=queued \(for delivery "
                        r"to a remote server\)")
        yubind.wait_log(r"to=<far@remote\.example>, relay=127\.0\.0\.1, attempts=1, "
                        r"status=sent")
        assert len(sink.messages) == 1
        mail, rcpts, data = sink.messages[0]
        assert mail.upper().startswith(b"MAIL FROM:<DEMO@EXAMPLE.TEST>")
        assert rcpts == [b"RCPT TO:<far@remote.example>"]
        # no Return-Path on the wire; our Received trace and the fixes are there
        assert data.startswith(b"Received: from [127.0.0.1]\r\n\tby " + yt.HOSTNAME.encode()
                               + b" (Yubin) with JMAP id " + qid.encode())
        assert re.search(rb"(?m)^Message-ID: <", data) and re.search(rb"(?m)^Date: ", data)
        # the local Cc got its copy from the same submission
        got = yubind.fetch(ALICE)
        assert len(got) == 1 and b"\r\nSubject: hello\r\n" in got[0]
        j.close()
    finally:
        sink.stop()


def test_queued_submission_is_visible_to_get_and_query(yubind):
    port = yt.free_port_on(["127.0.0.1"])       # nothing listens: it stays queued
    yubind.cli("route", "add", "remote.example", f"[127.0.0.1]:{port}")
    eid = append_draft(yubind, draft(to="x@remote.example"))
    j = Jmap(yubind)
    before = j.call("EmailSubmission/get", {"ids": None})
    assert before["list"] == []
    res = submit(j, eid)
    sid = res["created"]["sub"]["id"]
    assert res["newState"] != res["oldState"]
    yubind.wait_log(r"to=<x@remote\.example>, relay=none, attempts=1, status=deferred")
    g = j.call("EmailSubmission/get", {"ids": [sid]})
    assert len(g["list"]) == 1, g
    s = g["list"][0]
    assert s["id"] == sid and s["undoStatus"] == "final"
    assert s["identityId"] == j.identity()
    assert s["envelope"] == {"mailFrom": {"email": DEMO, "parameters": None},
                             "rcptTo": [{"email": "x@remote.example", "parameters": None}]}
    assert s["deliveryStatus"]["x@remote.example"]["delivered"] == "queued"
    q = j.call("EmailSubmission/query", {})
    assert q["ids"] == [sid] and q["total"] == 1
    # another account does not see it
    ja = Jmap(yubind, ALICE)
    assert ja.call("EmailSubmission/get", {"ids": [sid]})["notFound"] == [sid]
    assert ja.call("EmailSubmission/query", {})["ids"] == []
    ja.close()
    # undo is not possible: sent at once
    u = j.call("EmailSubmission/set", {"update": {sid: {"undoStatus": "canceled"}}})
    assert u["notUpdated"][sid]["type"] == "cannotUnsend"
    j.close()


def test_from_must_be_the_accounts_own(yubind):
    j = Jmap(yubind)
    eid = append_draft(yubind, draft(frm=ALICE, to=BOB))
    res = submit(j, eid)
    assert res["created"] == {}
    assert res["notCreated"]["sub"]["type"] == "forbiddenFrom"
    # the envelope sender too
    eid = append_draft(yubind, draft(to=BOB, subject="second"))
    res = submit(j, eid, envelope={"mailFrom": {"email": ALICE},
                                   "rcptTo": [{"email": BOB}]})
    assert res["notCreated"]["sub"]["type"] == "forbiddenMailFrom"
    # user+tag@ is the user's (recipient_delimiter), as on port 587
    eid = append_draft(yubind, draft(frm="demo+news@example.test", to=BOB, subject="tag"))
    res = submit(j, eid)
    assert res["notCreated"] == {}, res
    # another user's identity id is not this account's
    ja = Jmap(yubind, ALICE)
    alice_identity = ja.identity(ALICE)
    ja.close()
    res = submit(j, eid, identity=alice_identity)
    assert res["notCreated"]["sub"]["type"] == "invalidProperties"
    assert res["notCreated"]["sub"]["properties"] == ["identityId"]
    # nor is another user's Email
    alice_eid = append_draft(yubind, draft(frm=ALICE, to=BOB), user=ALICE)
    res = submit(j, alice_eid)
    assert res["notCreated"]["sub"]["properties"] == ["emailId"]
    got = [m for m in yubind.fetch(BOB)]
    assert len(got) == 1 and b"Subject: tag\r\n" in got[0]
    j.close()


def test_recipient_errors_and_limits(yubind):
    j = Jmap(yubind)
    eid = append_draft(yubind, draft(to=None, subject="nobody"))
    res = submit(j, eid)
    assert res["notCreated"]["sub"]["type"] == "noRecipients"
    eid = append_draft(yubind, draft(to="nosuchuser@example.test", subject="unknown"))
    res = submit(j, eid)
    e = res["notCreated"]["sub"]
    assert e["type"] == "invalidRecipients"
    assert e["invalidRecipients"] == ["nosuchuser@example.test"]
    many = [{"email": f"r{i}@remote.example"} for i in range(1001)]
    res = submit(j, eid, envelope={"mailFrom": {"email": DEMO}, "rcptTo": many})
    e = res["notCreated"]["sub"]
    assert e["type"] == "tooManyRecipients" and e["maxRecipients"] == 1000
    res = submit(j, eid, envelope={"mailFrom": {"email": DEMO},
                                   "rcptTo": [{"email": "not an address"}]})
    assert res["notCreated"]["sub"]["type"] == "invalidRecipients"
    # an explicit envelope overrides the header's recipients
    res = submit(j, eid, envelope={"mailFrom": {"email": DEMO},
                                   "rcptTo": [{"email": ALICE}]})
    assert res["notCreated"] == {}, res
    got = yubind.fetch(ALICE)
    assert len(got) == 1 and b"To: nosuchuser@example.test" in got[0]
    j.close()


@pytest.mark.yubind_conf(message_size_limit="4096")
def test_too_large(yubind):
    # fits the limit as stored, not once Date and Message-ID are added
    body = "x" * 70 + "\r\n"
    msg = draft(body="")
    msg += (body * ((4096 - len(msg)) // len(body))).encode()
    assert len(msg) <= 4096
    eid = append_draft(yubind, msg)
    j = Jmap(yubind)
    res = submit(j, eid)
    e = res["notCreated"]["sub"]
    assert e["type"] == "tooLarge" and e["maxSize"] == 4096
    assert yubind.fetch(ALICE) == []
    j.close()


def test_on_success_moves_the_draft_to_sent(yubind):
    eid = append_draft(yubind, draft(subject="move me"))
    j = Jmap(yubind)
    mb = j.mailboxes()
    patch = {"mailboxIds/" + mb["drafts"]: None, "mailboxIds/" + mb["sent"]: True,
             "keywords/$draft": None}
    resp = j.api([["EmailSubmission/set",
                   {"accountId": j.acct,
                    "create": {"sub": {"identityId": j.identity(), "emailId": eid}},
                    "onSuccessUpdateEmail": {"#sub": patch}}, "s1"]])
    assert [r[0] for r in resp] == ["EmailSubmission/set", "Email/set"]
    assert resp[0][1]["notCreated"] == {}
    assert resp[1][2] == "s1"
    assert resp[1][1]["updated"] == {eid: None}, resp[1]
    assert imap_mailbox(yubind, DEMO, "Drafts") == []
    sent = imap_mailbox(yubind, DEMO, "Sent")
    assert len(sent) == 1
    flags, data = sent[0]
    assert b"\\Draft" not in flags and b"Subject: move me" in data
    got = j.call("Email/get", {"ids": [eid], "properties": ["mailboxIds", "keywords"]})
    assert got["list"][0]["mailboxIds"] == {mb["sent"]: True}
    assert "$draft" not in got["list"][0]["keywords"]
    assert len(yubind.fetch(ALICE)) == 1
    # a failed submission leaves the Email alone
    eid2 = append_draft(yubind, draft(to=None, subject="stays"))
    resp = j.api([["EmailSubmission/set",
                   {"accountId": j.acct,
                    "create": {"sub": {"identityId": j.identity(), "emailId": eid2}},
                    "onSuccessUpdateEmail": {"#sub": patch}}, "s2"]])
    assert [r[0] for r in resp] == ["EmailSubmission/set"]
    assert len(imap_mailbox(yubind, DEMO, "Drafts")) == 1
    # onSuccessDestroyEmail; the request's createdIds learns the submission
    eid3 = append_draft(yubind, draft(subject="destroy me"))
    body = {"using": USING, "createdIds": {}, "methodCalls": [
        ["EmailSubmission/set",
         {"accountId": j.acct,
          "create": {"sub": {"identityId": j.identity(), "emailId": eid3}},
          "onSuccessDestroyEmail": ["#sub"]}, "s3"]]}
    j.conn.request("POST", "/jmap/api/", body=json.dumps(body).encode(),
                   headers={"Authorization": j.auth, "Content-Type": "application/json"})
    r = j.conn.getresponse()
    out = json.loads(r.read())
    resp = out["methodResponses"]
    assert [x[0] for x in resp] == ["EmailSubmission/set", "Email/set"], resp
    assert resp[1][1]["destroyed"] == [eid3]
    assert out["createdIds"] == {"sub": resp[0][1]["created"]["sub"]["id"]}
    drafts = imap_mailbox(yubind, DEMO, "Drafts")
    assert len(drafts) == 1 and b"Subject: stays" in drafts[0][1]
    assert len(yubind.fetch(ALICE)) == 2
    j.close()


def test_webmail_send_draft_created_by_email_set(yubind):
    """The webmail's send: Email/set creates the draft in Drafts with
    $draft, EmailSubmission/set sends it (emailId "#draft") and moves it to
    Sent, in one request."""
    j = Jmap(yubind)
    mb = j.mailboxes()
    resp = j.api([
        ["Email/set", {"accountId": j.acct, "create": {"draft": {
            "mailboxIds": {mb["drafts"]: True}, "keywords": {"$draft": True, "$seen": True},
            "from": [{"name": "Demo", "email": DEMO}],
            "to": [{"name": "Alice", "email": ALICE}],
            "bcc": [{"email": BOB}],
            "subject": "from the webmail",
            "bodyValues": {"1": {"value": "Written in the browser.\n"}},
            "textBody": [{"partId": "1", "type": "text/plain"}]}}}, "e"],
        ["EmailSubmission/set", {"accountId": j.acct, "create": {"sub": {
            "identityId": j.identity(), "emailId": "#draft"}},
            "onSuccessUpdateEmail": {"#sub": {
                "mailboxIds/" + mb["drafts"]: None, "mailboxIds/" + mb["sent"]: True,
                "keywords/$draft": None}}}, "s"],
    ])
    assert [r[0] for r in resp] == ["Email/set", "EmailSubmission/set", "Email/set"], resp
    eid = resp[0][1]["created"]["draft"]["id"]
    assert resp[1][1]["notCreated"] == {}, resp[1]
    assert resp[2][1]["updated"] == {eid: None}, resp[2]
    for user in (ALICE, BOB):
        got = yubind.fetch(user)
        assert len(got) == 1, user
        data = yt.stored_data(got[0])
        assert b"Subject: from the webmail" in data and b"Bcc" not in head_of(data)
        assert b"Written in the browser." in data
    assert imap_mailbox(yubind, DEMO, "Drafts") == []
    sent = imap_mailbox(yubind, DEMO, "Sent")
    assert len(sent) == 1 and b"\\Draft" not in sent[0][0]
    j.close()
