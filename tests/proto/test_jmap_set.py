"""JMAP writes against a real yubind: blob uploads (RFC 8620 6.1),
Email/import, Email/set, Mailbox/set and SearchSnippet/get (RFC 8621),
each checked from the other side over IMAP (imaplib) on the same daemon.

Email ids always come from the server (Email/query, Email/set, Email/import
answers), never built by hand."""

import base64
import email
import email.policy
import http.client
import imaplib
import json
import os
import re
import socket
import time

import yubintest as yt

DEMO = "demo@example.test"
ALICE = "alice@example.test"
CORE = "urn:ietf:params:jmap:core"
MAIL = "urn:ietf:params:jmap:mail"


def basic(user=DEMO):
    return "Basic " + base64.b64encode(f"{user}:{yt.USERS[user]}".encode()).decode()


class Client:
    """One keep-alive HTTPS connection, HTTP Basic."""

    def __init__(self, y, user=DEMO):
        self.y = y
        self.user = user
        self.conn = http.client.HTTPSConnection("127.0.0.1", y.https_port,
                                                context=y.cert.client_context(),
                                                timeout=yt.IO_TIMEOUT)
        r, data = self.req("GET", "/jmap/session")
        assert r.status == 200, data
        self.session = json.loads(data)
        self.aid = self.session["primaryAccounts"][MAIL]

    def req(self, method, path, body=None, headers=None, auth=True):
        h = dict(headers or {})
        if auth:
            h["Authorization"] = basic(self.user)
        self.conn.request(method, path, body=body, headers=h)
        r = self.conn.getresponse()
        return r, r.read()

    def call(self, name, args, **extra):
        """One method call: (response name, response arguments)."""
        body = {"using": [CORE, MAIL],
                "methodCalls": [[name, {"accountId": self.aid, **args}, "c"]], **extra}
        r, data = self.req("POST", "/jmap/api/", json.dumps(body).encode(),
                           {"Content-Type": "application/json"})
        assert r.status == 200, (r.status, data)
        resp = json.loads(data)["methodResponses"]
        assert len(resp) == 1 and resp[0][2] == "c", resp
        return resp[0][0], resp[0][1]

    def ok(self, name, args):
        got, res = self.call(name, args)
        assert got == name, res
        return res

    def upload(self, data, ctype="application/octet-stream", aid=None):
        r, body = self.req("POST", f"/jmap/upload/{aid or self.aid}/", data,
                           {"Content-Type": ctype})
        return r.status, (json.loads(body) if body else None)

    def download(self, blob, name="blob", accept=None):
        q = f"?accept={accept}" if accept else ""
        r, data = self.req("GET", f"/jmap/download/{self.aid}/{blob}/{name}{q}")
        return r.status, data

    def mailbox(self, role=None, name=None):
        res = self.ok("Mailbox/get", {"ids": None})
        for m in res["list"]:
            if (role and m["role"] == role) or (name and m["name"] == name):
                return m["id"]
        raise AssertionError(f"no mailbox {role or name}: {res['list']}")

    def query(self, mailbox):
        return self.ok("Email/query", {"filter": {"inMailbox": mailbox}})["ids"]

    def get(self, ids, props=None):
        return self.ok("Email/get", {"ids": ids, "properties": props})

    def import_msg(self, data, mailboxes, keywords=None, **more):
        st, up = self.upload(data, "message/rfc822")
        assert st == 201, up
        res = self.ok("Email/import", {"emails": {"k": {
            "blobId": up["blobId"], "mailboxIds": {m: True for m in mailboxes},
            "keywords": keywords or {}, **more}}})
        assert res["notCreated"] is None, res
        return res["created"]["k"]

    def close(self):
        self.conn.close()


def imap(y, user=DEMO):
    c = imaplib.IMAP4("127.0.0.1", y.imap_port, timeout=yt.IO_TIMEOUT)
    c.login(user, yt.USERS[user])
    return c


def imap_flags(c, folder, msgid):
    """FLAGS of the message with that Message-ID in folder (None if absent)."""
    typ, _ = c.select(f'"{folder}"')
    assert typ == "OK"
    typ, data = c.uid("SEARCH", None, "HEADER", "Message-ID", msgid)
    assert typ == "OK"
    uids = data[0].split()
    if not uids:
        return None
    assert len(uids) == 1
    typ, data = c.uid("FETCH", uids[0], "(FLAGS)")
    assert typ == "OK"
    flags = set(re.search(rb"FLAGS \(([^)]*)\)", data[0]).group(1).decode().split())
    return flags - {"\\Recent"}


def imap_body(c, folder, msgid):
    typ, _ = c.select(f'"{folder}"')
    typ, data = c.uid("SEARCH", None, "HEADER", "Message-ID", msgid)
    uids = data[0].split()
    assert len(uids) == 1, (folder, msgid, data)
    typ, data = c.uid("FETCH", uids[0], "(BODY.PEEK[])")
    assert typ == "OK"
    return data[0][1]


def imap_folders(c):
    typ, data = c.list()
    assert typ == "OK"
    names = set()
    for line in data:
        m = re.match(rb'\(([^)]*)\) "/" "?([^"]*)"?$', line)
        assert m, line
        names.add(m.group(2).decode())
    return names


def message(subject="Hello", body="Some text.\n", msgid=None):
    msgid = msgid or f"{os.urandom(8).hex()}@client.example.net"
    data = (f"From: Bob <bob@example.net>\nTo: demo@example.test\nSubject: {subject}\n"
            f"Date: Tue, 01 Dec 2026 10:00:00 +0000\nMessage-ID: <{msgid}>\n"
            f"\n{body}").encode()
    return data, f"<{msgid}>"


# ---- uploads ----

def test_upload_then_download_the_same_bytes(yubind):
    j = Client(yubind)
    core = j.session["capabilities"][CORE]
    assert core["maxSizeUpload"] == 10 * 1024 * 1024
    data = os.urandom(200 * 1024) + b"\r\n\0tail"
    st, up = j.upload(data, "application/x-test")
    assert st == 201, up
    assert up["accountId"] == j.aid and up["size"] == len(data)
    assert up["type"] == "application/x-test"
    assert re.fullmatch(r"u[0-9a-f]{32}", up["blobId"]), up
    st, got = j.download(up["blobId"], "x.bin")
    assert st == 200 and got == data
    # a second upload is another blob
    st, up2 = j.upload(b"")
    assert st == 201 and up2["size"] == 0 and up2["blobId"] != up["blobId"]
    st, got = j.download(up2["blobId"])
    assert st == 200 and got == b""
    # no such upload; another account's upload path; no credentials; GET
    assert j.download("u" + "0" * 32)[0] == 404
    assert j.upload(b"x", aid="a999999")[0] == 404
    r, _ = j.req("POST", f"/jmap/upload/{j.aid}/", b"x", auth=False)
    assert r.status == 401
    r, _ = j.req("GET", f"/jmap/upload/{j.aid}/")
    assert r.status == 405
    # alice cannot read demo's upload
    a = Client(yubind, ALICE)
    r, _ = a.req("GET", f"/jmap/download/{a.aid}/{up['blobId']}/x")
    assert r.status == 404
    a.close()
    j.close()
    yubind.wait_log(r"jmap: upload user=demo@example\.test blob=u[0-9a-f]{32} size=204807")
    files = os.listdir(os.path.join(yubind.data, "uploads", j.aid))
    assert up["blobId"][1:] in files
    st = os.stat(os.path.join(yubind.data, "uploads", j.aid, up["blobId"][1:]))
    assert st.st_mode & 0o777 == 0o600


def test_upload_over_the_cap_is_refused(yubind):
    j = Client(yubind)
    cap = j.session["capabilities"][CORE]["maxSizeUpload"]
    ctx = yubind.cert.client_context()
    raw = socket.create_connection(("127.0.0.1", yubind.https_port), timeout=yt.IO_TIMEOUT)
    s = ctx.wrap_socket(raw, server_hostname=yt.HOSTNAME)
    s.sendall((f"POST /jmap/upload/{j.aid}/ HTTP/1.1\r\nHost: {yt.HOSTNAME}\r\n"
               f"Authorization: {basic()}\r\nContent-Type: application/octet-stream\r\n"
               f"Content-Length: {cap + 1}\r\n\r\n").encode() + b"x" * 1000)
    head = b""
    while b"\r\n" not in head:
        chunk = s.recv(4096)
        if not chunk:
            break
        head += chunk
    assert head.startswith(b"HTTP/1.1 413 "), head[:200]
    s.close()
    # exactly the cap is stored
    st, up = j.upload(b"y" * cap)
    assert st == 201 and up["size"] == cap
    j.close()


def test_uploads_are_capped_and_expire(yubind):
    """At most 1000 pending uploads an account; a day later they are not
    found, and the next upload removes them."""
    j = Client(yubind)
    st, up = j.upload(b"first")
    assert st == 201
    d = os.path.join(yubind.data, "uploads", j.aid)
    for i in range(999):
        open(os.path.join(d, "%032x" % (i + 1)), "wb").close()
    st, res = j.upload(b"one too many")
    assert st == 400 and "too many pending uploads" in res["detail"], res
    old = time.time() - 25 * 3600
    for f in os.listdir(d):
        os.utime(os.path.join(d, f), (old, old))
    assert j.download(up["blobId"])[0] == 404
    st, up2 = j.upload(b"fresh")
    assert st == 201
    assert os.listdir(d) == [up2["blobId"][1:]]
    j.close()


def test_upload_by_cookie_needs_the_csrf_header(yubind):
    c = http.client.HTTPSConnection("127.0.0.1", yubind.https_port,
                                    context=yubind.cert.client_context(),
                                    timeout=yt.IO_TIMEOUT)
    c.request("POST", "/login", body=json.dumps({"user": DEMO, "password": yt.USERS[DEMO]}),
              headers={"Content-Type": "application/json"})
    r = c.getresponse()
    data = r.read()
    assert r.status == 200, data
    sid = re.match(r"yubin_session=([0-9a-f]{64});", r.getheader("Set-Cookie")).group(1)
    csrf = json.loads(data)["csrf"]
    j = Client(yubind)
    cookie = {"Cookie": f"yubin_session={sid}", "Content-Type": "text/plain"}
    c.request("POST", f"/jmap/upload/{j.aid}/", body=b"hello", headers=cookie)
    r = c.getresponse()
    r.read()
    assert r.status == 403
    c.request("POST", f"/jmap/upload/{j.aid}/", body=b"hello",
              headers={**cookie, "X-Yubin-CSRF": csrf})
    r = c.getresponse()
    up = json.loads(r.read())
    assert r.status == 201 and up["size"] == 5 and up["type"] == "text/plain"
    assert j.download(up["blobId"]) == (200, b"hello")
    c.close()
    j.close()


# ---- Email/import ----

def test_import_appears_in_query_and_imap_with_its_flags(yubind):
    j = Client(yubind)
    inbox = j.mailbox("inbox")
    data, msgid = message("Imported")
    created = j.import_msg(data, [inbox], {"$seen": True, "$flagged": True,
                                           "project-x": True},
                           receivedAt="2026-11-30T08:00:00Z")
    assert created["size"] == len(data.replace(b"\n", b"\r\n"))
    ids = j.query(inbox)
    assert created["id"] in ids
    e = j.get([created["id"]], ["subject", "keywords", "mailboxIds", "receivedAt", "blobId",
                                "threadId", "size"])["list"][0]
    assert e["subject"] == "Imported"
    assert e["keywords"] == {"$seen": True, "$flagged": True, "project-x": True}
    assert e["mailboxIds"] == {inbox: True}
    assert e["receivedAt"] == "2026-11-30T08:00:00Z"
    assert e["blobId"] == created["blobId"] and e["threadId"] == created["threadId"]
    st, raw = j.download(created["blobId"])
    assert st == 200 and raw == data.replace(b"\n", b"\r\n")
    c = imap(yubind)
    assert imap_flags(c, "INBOX", msgid) == {"\\Seen", "\\Flagged", "project-x"}
    assert imap_body(c, "INBOX", msgid) == data.replace(b"\n", b"\r\n")
    typ, data2 = c.uid("SEARCH", None, "BODY", '"Some text"')
    assert typ == "OK" and data2[0].split()
    c.logout()
    # the errors: no such blob, no such mailbox, not a message, a bad keyword
    st, junk = j.upload(b"\x00\x01 no header here", "application/octet-stream")
    res = j.ok("Email/import", {"emails": {
        "a": {"blobId": "u" + "f" * 32, "mailboxIds": {inbox: True}},
        "b": {"blobId": created["blobId"], "mailboxIds": {"m999999": True}},
        "c": {"blobId": junk["blobId"], "mailboxIds": {inbox: True}},
        "d": {"blobId": created["blobId"], "mailboxIds": {inbox: True},
              "keywords": {"bad word": True}},
        "e": {"blobId": created["blobId"], "mailboxIds": {}}}})
    nc = res["notCreated"]
    assert res["created"] is None
    assert nc["a"]["type"] == "notFound"
    assert nc["b"]["type"] == "invalidProperties" and nc["b"]["properties"] == ["mailboxIds"]
    assert nc["c"]["type"] == "invalidEmail"
    assert nc["d"]["type"] == "invalidProperties" and nc["d"]["properties"] == ["keywords"]
    assert nc["e"]["type"] == "invalidProperties"
    # a message blob imports as a new copy: a new email
    res = j.ok("Email/import", {"emails": {"again": {"blobId": created["blobId"],
                                                     "mailboxIds": {inbox: True}}}})
    assert res["created"]["again"]["id"] != created["id"]
    assert res["oldState"] != res["newState"]
    j.close()


def test_import_over_quota(yubind):
    yubind.cli("user", "quota", DEMO, "1")
    j = Client(yubind)
    data, _ = message("Big", "x" * 5000 + "\n")
    st, up = j.upload(data, "message/rfc822")
    res = j.ok("Email/import", {"emails": {"q": {"blobId": up["blobId"],
                                                 "mailboxIds": {j.mailbox("inbox"): True}}}})
    assert res["notCreated"]["q"]["type"] == "overQuota", res
    j.close()


# ---- Email/set update, move, destroy ----

def test_keywords_meet_imap_flags_both_ways(yubind):
    data, msgid = message("Flags")
    yubind.send("bob@example.net", [DEMO], data.replace(b"\n", b"\r\n"))
    j = Client(yubind)
    inbox = j.mailbox("inbox")
    ids = j.query(inbox)
    assert len(ids) == 1
    eid = ids[0]
    res = j.ok("Email/set", {"update": {eid: {"keywords/$seen": True,
                                              "keywords/custom": True}}})
    assert res["updated"] == {eid: None} and res["notUpdated"] is None, res
    assert res["oldState"] != res["newState"]
    c = imap(yubind)
    assert imap_flags(c, "INBOX", msgid) == {"\\Seen", "custom"}
    # one IMAP STORE, seen by Email/get
    c.select("INBOX")
    typ, _ = c.store("1", "+FLAGS", "(\\Flagged)")
    assert typ == "OK"
    e = j.get([eid], ["keywords"])["list"][0]
    assert e["keywords"] == {"$seen": True, "$flagged": True, "custom": True}
    # removing one, then replacing all
    j.ok("Email/set", {"update": {eid: {"keywords/custom": None}}})
    assert imap_flags(c, "INBOX", msgid) == {"\\Seen", "\\Flagged"}
    j.ok("Email/set", {"update": {eid: {"keywords": {"$answered": True, "later": True}}}})
    assert imap_flags(c, "INBOX", msgid) == {"\\Answered", "later"}
    assert j.get([eid], ["keywords"])["list"][0]["keywords"] == {"$answered": True,
                                                                  "later": True}
    # IMAP's \Deleted is no keyword: a JMAP replace leaves it alone
    c.select("INBOX")
    assert c.store("1", "+FLAGS", "(\\Deleted)")[0] == "OK"
    j.ok("Email/set", {"update": {eid: {"keywords": {"$seen": True}}}})
    assert imap_flags(c, "INBOX", msgid) == {"\\Seen", "\\Deleted"}
    assert j.get([eid], ["keywords"])["list"][0]["keywords"] == {"$seen": True}
    c.logout()
    j.close()


def test_move_keeps_the_id_and_lands_in_the_other_folder(yubind):
    j = Client(yubind)
    inbox, archive = j.mailbox("inbox"), j.mailbox("archive")
    data, msgid = message("Move me")
    eid = j.import_msg(data, [inbox], {"$seen": True})["id"]
    res = j.ok("Email/set", {"update": {eid: {"mailboxIds": {archive: True}}}})
    assert res["updated"] == {eid: None}, res
    assert eid not in j.query(inbox)
    assert eid in j.query(archive)
    e = j.get([eid], ["mailboxIds", "keywords"])["list"][0]
    assert e["mailboxIds"] == {archive: True} and e["keywords"] == {"$seen": True}
    c = imap(yubind)
    assert imap_flags(c, "INBOX", msgid) is None
    assert imap_flags(c, "Archive", msgid) == {"\\Seen"}
    # a copy in a second mailbox by patch, then out of the first
    res = j.ok("Email/set", {"update": {eid: {f"mailboxIds/{inbox}": True}}})
    assert res["updated"] == {eid: None}
    assert j.get([eid], ["mailboxIds"])["list"][0]["mailboxIds"] == {inbox: True,
                                                                     archive: True}
    assert imap_flags(c, "INBOX", msgid) == {"\\Seen"}
    j.ok("Email/set", {"update": {eid: {f"mailboxIds/{archive}": None}}})
    assert imap_flags(c, "Archive", msgid) is None
    assert imap_flags(c, "INBOX", msgid) == {"\\Seen"}
    # never in no mailbox at all
    res = j.ok("Email/set", {"update": {eid: {f"mailboxIds/{inbox}": None}}})
    assert res["notUpdated"][eid]["type"] == "invalidProperties"
    assert imap_flags(c, "INBOX", msgid) == {"\\Seen"}
    c.logout()
    j.close()


def test_destroy_removes_it_from_imap(yubind):
    j = Client(yubind)
    inbox, archive = j.mailbox("inbox"), j.mailbox("archive")
    data, msgid = message("Doomed")
    eid = j.import_msg(data, [inbox, archive])["id"]
    c = imap(yubind)
    assert imap_flags(c, "INBOX", msgid) == set()
    assert imap_flags(c, "Archive", msgid) == set()
    res = j.ok("Email/set", {"destroy": [eid, "e999999"]})
    assert res["destroyed"] == [eid]
    assert res["notDestroyed"]["e999999"]["type"] == "notFound"
    assert imap_flags(c, "INBOX", msgid) is None
    assert imap_flags(c, "Archive", msgid) is None
    assert j.get([eid], ["id"])["notFound"] == [eid]
    c.logout()
    j.close()
    # the body file went with its last copy
    msgdir = os.path.join(yubind.data, "msg")
    needle = msgid.strip("<>").encode()
    for d in os.listdir(msgdir):
        for f in os.listdir(os.path.join(msgdir, d)):
            with open(os.path.join(msgdir, d, f), "rb") as fh:
                assert needle not in fh.read(), f


# ---- Email/set create: a draft ----

def test_create_draft_with_an_uploaded_attachment(yubind):
    j = Client(yubind)
    drafts = j.mailbox("drafts")
    payload = os.urandom(3000) + b"end"
    st, up = j.upload(payload, "application/octet-stream")
    assert st == 201
    res = j.ok("Email/set", {"create": {"d1": {
        "mailboxIds": {drafts: True},
        "keywords": {"$draft": True, "$seen": True},
        "from": [{"name": "Demo User", "email": DEMO}],
        "to": [{"name": "Bob", "email": "bob@example.net"}],
        "cc": [{"email": "carol@example.net"}],
        "bcc": [{"name": "Dave", "email": "dave@example.net"}],
        "subject": "Draft with a file \u00e9t\u00e9",
        "sentAt": "2026-12-01T09:30:00+01:00",
        "textBody": [{"partId": "t", "type": "text/plain"}],
        "bodyValues": {"t": {"value": "Hello Bob,\nsee the file.\n"}},
        "attachments": [{"blobId": up["blobId"], "type": "application/octet-stream",
                         "name": "data.bin"}]}}})
    assert res["notCreated"] is None, res
    cr = res["created"]["d1"]
    assert set(cr) == {"id", "blobId", "threadId", "size"}
    assert cr["id"] in j.query(drafts)
    e = j.get([cr["id"]], ["subject", "from", "to", "bcc", "keywords", "mailboxIds",
                           "hasAttachment", "sentAt"])["list"][0]
    assert e["subject"] == "Draft with a file \u00e9t\u00e9"
    assert e["keywords"] == {"$draft": True, "$seen": True}
    assert e["mailboxIds"] == {drafts: True}
    assert e["to"] == [{"name": "Bob", "email": "bob@example.net"}]
    c = imap(yubind)
    c.select("Drafts")
    typ, data = c.uid("SEARCH", None, "ALL")
    uids = data[0].split()
    assert len(uids) == 1
    typ, data = c.uid("FETCH", uids[0], "(FLAGS BODY.PEEK[])")
    flags = re.search(rb"FLAGS \(([^)]*)\)", data[0][0]).group(1).decode().split()
    assert set(flags) - {"\\Recent"} == {"\\Draft", "\\Seen"}
    msg = email.message_from_bytes(data[0][1], policy=email.policy.default)
    assert msg["Subject"] == "Draft with a file \u00e9t\u00e9"
    assert msg["From"].addresses[0].addr_spec == DEMO
    assert msg["Bcc"].addresses[0].addr_spec == "dave@example.net"
    assert msg["Cc"].addresses[0].addr_spec == "carol@example.net"
    assert msg["Message-ID"]
    atts = list(msg.iter_attachments())
    assert len(atts) == 1 and atts[0].get_filename() == "data.bin"
    assert atts[0].get_payload(decode=True) == payload
    text = msg.get_body(("plain",)).get_content().replace("\r\n", "\n")
    assert text == "Hello Bob,\nsee the file.\n"
    c.logout()
    # a blob that does not exist; an immutable property; #reference to the draft
    res = j.ok("Email/set", {"create": {
        "x": {"mailboxIds": {drafts: True}, "attachments": [{"blobId": "u" + "1" * 32}]},
        "y": {"mailboxIds": {drafts: True}, "header:X-Foo": "bar"}}})
    assert res["notCreated"]["x"]["type"] == "blobNotFound"
    assert res["notCreated"]["y"]["type"] == "invalidProperties"
    body = {"using": [CORE, MAIL], "methodCalls": [
        ["Email/set", {"accountId": j.aid, "create": {"n": {
            "mailboxIds": {drafts: True}, "subject": "ref",
            "textBody": [{"partId": "1"}], "bodyValues": {"1": {"value": "x"}}}}}, "0"],
        ["Email/set", {"accountId": j.aid, "update": {"#n": {"keywords/$seen": True}}}, "1"]]}
    r, data = j.req("POST", "/jmap/api/", json.dumps(body).encode(),
                    {"Content-Type": "application/json"})
    resp = json.loads(data)["methodResponses"]
    nid = resp[0][1]["created"]["n"]["id"]
    assert resp[1][1]["updated"] == {nid: None}, resp
    assert j.get([nid], ["keywords"])["list"][0]["keywords"] == {"$seen": True}
    j.close()


# ---- states, limits, invalid patches ----

def test_if_in_state_mismatch(yubind):
    j = Client(yubind)
    inbox = j.mailbox("inbox")
    data, _ = message("State")
    eid = j.import_msg(data, [inbox])["id"]
    state = j.get([eid], ["id"])["state"]
    name, res = j.call("Email/set", {"ifInState": "not-the-state",
                                     "update": {eid: {"keywords/$seen": True}}})
    assert name == "error" and res["type"] == "stateMismatch"
    assert j.get([eid], ["keywords"])["list"][0]["keywords"] == {}
    res = j.ok("Email/set", {"ifInState": state, "update": {eid: {"keywords/$seen": True}}})
    assert res["oldState"] == state and res["newState"] != state
    assert j.get([eid], ["id"])["state"] == res["newState"]
    name, res = j.call("Email/import", {"ifInState": state, "emails": {}})
    assert name == "error" and res["type"] == "stateMismatch"
    mstate = j.ok("Mailbox/get", {"ids": []})["state"]
    name, res = j.call("Mailbox/set", {"ifInState": mstate + "x",
                                       "create": {"a": {"name": "Nope"}}})
    assert name == "error" and res["type"] == "stateMismatch"
    j.close()


def test_limits_and_invalid_patches(yubind):
    j = Client(yubind)
    inbox = j.mailbox("inbox")
    data, _ = message("Limits")
    eid = j.import_msg(data, [inbox])["id"]
    big = j.session["capabilities"][CORE]["maxObjectsInSet"] + 1
    name, res = j.call("Email/set", {"destroy": [f"e{i}" for i in range(1, big + 1)]})
    assert name == "error" and res["type"] == "requestTooLarge"
    name, res = j.call("Mailbox/set", {"create": {f"c{i}": {"name": f"n{i}"}
                                                  for i in range(big)}})
    assert name == "error" and res["type"] == "requestTooLarge"
    name, res = j.call("Email/set", {"destroy": "e1"})
    assert name == "error" and res["type"] == "invalidArguments"
    res = j.ok("Email/set", {"update": {
        eid: {"subject": "changed"},
        "e999999": {"keywords/$seen": True}}})
    assert res["notUpdated"][eid]["type"] == "invalidProperties"
    assert res["notUpdated"][eid]["properties"] == ["subject"]
    assert res["notUpdated"]["e999999"]["type"] == "notFound"
    for patch in ({"keywords/bad word": True}, {"keywords/$seen": False},
                  {"mailboxIds/zz": True}, {"keywords": {"$seen": 1}},
                  {"mailboxIds": {}}, {"mailboxIds/m999999": True}):
        res = j.ok("Email/set", {"update": {eid: patch}})
        err = res["notUpdated"][eid]
        assert err["type"] in ("invalidProperties", "invalidPatch"), (patch, err)
    assert j.get([eid], ["keywords", "mailboxIds"])["list"][0] == {
        "id": eid, "keywords": {}, "mailboxIds": {inbox: True}}
    j.close()


# ---- Mailbox/set ----

def test_mailbox_set_create_rename_destroy_seen_in_imap_list(yubind):
    j = Client(yubind)
    inbox = j.mailbox("inbox")
    res = j.ok("Mailbox/set", {"create": {
        "p": {"name": "Projects", "isSubscribed": True},
        "c": {"name": "2026", "parentId": "#p"},
        "bad": {"name": "a/b"},
        "dup": {"name": "Archive"}}})
    assert set(res["created"]) == {"p", "c"}, res
    assert res["notCreated"]["bad"]["type"] == "invalidProperties"
    assert res["notCreated"]["dup"]["type"] == "invalidProperties"
    pid, cid = res["created"]["p"]["id"], res["created"]["c"]["id"]
    assert res["created"]["p"]["isSubscribed"] is True
    assert res["oldState"] != res["newState"]
    c = imap(yubind)
    assert {"Projects", "Projects/2026"} <= imap_folders(c)
    typ, data = c.lsub()
    assert any(b'"Projects"' in line or line.endswith(b" Projects") for line in data), data
    got = j.ok("Mailbox/get", {"ids": [pid, cid]})["list"]
    byid = {m["id"]: m for m in got}
    assert byid[cid]["name"] == "2026" and byid[cid]["parentId"] == pid
    # rename the child, move it to the top level
    res = j.ok("Mailbox/set", {"update": {cid: {"name": "2027"}}})
    assert res["updated"] == {cid: None}, res
    assert "Projects/2027" in imap_folders(c) and "Projects/2026" not in imap_folders(c)
    res = j.ok("Mailbox/set", {"update": {cid: {"parentId": None, "name": "Y2027"}}})
    assert res["updated"] == {cid: None}, res
    assert "Y2027" in imap_folders(c) and "Projects/2027" not in imap_folders(c)
    res = j.ok("Mailbox/set", {"update": {cid: {"parentId": pid}, inbox: {"name": "Other"}}})
    assert res["updated"] == {cid: None}
    assert res["notUpdated"][inbox]["type"] == "forbidden"
    assert "Projects/Y2027" in imap_folders(c)
    # destroy: the child first, not while it holds mail
    data, msgid = message("In a folder")
    j.import_msg(data, [cid])
    res = j.ok("Mailbox/set", {"destroy": [pid]})
    assert res["notDestroyed"][pid]["type"] == "mailboxHasChild"
    res = j.ok("Mailbox/set", {"destroy": [cid, inbox]})
    assert res["notDestroyed"][cid]["type"] == "mailboxHasEmail"
    assert res["notDestroyed"][inbox]["type"] == "forbidden"
    res = j.ok("Mailbox/set", {"destroy": [pid, cid], "onDestroyRemoveEmails": True})
    assert sorted(res["destroyed"]) == sorted([pid, cid]), res
    folders = imap_folders(c)
    assert "Projects" not in folders and "Projects/Y2027" not in folders
    assert j.ok("Mailbox/get", {"ids": [pid, cid]})["notFound"] == [pid, cid]
    c.logout()
    j.close()


def test_mailbox_created_by_imap_is_destroyed_by_jmap(yubind):
    c = imap(yubind)
    assert c.create("FromImap")[0] == "OK"
    j = Client(yubind)
    mid = j.mailbox(name="FromImap")
    res = j.ok("Mailbox/set", {"destroy": [mid]})
    assert res["destroyed"] == [mid]
    assert "FromImap" not in imap_folders(c)
    c.logout()
    j.close()


# ---- SearchSnippet/get ----

def test_search_snippet_marks_the_term(yubind):
    j = Client(yubind)
    inbox = j.mailbox("inbox")
    data, _ = message("Quarterly Budget review",
                      "Hello,\n\nthe budget is <tight> this year & next.\nBye.\n")
    eid = j.import_msg(data, [inbox])["id"]
    other, _ = message("Lunch", "Nothing here.\n")
    oid = j.import_msg(other, [inbox])["id"]
    res = j.ok("SearchSnippet/get", {"filter": {"text": "budget"},
                                     "emailIds": [eid, oid, "e999999"]})
    snips = {s["emailId"]: s for s in res["list"]}
    assert snips[eid]["subject"] == "Quarterly <mark>Budget</mark> review"
    pv = snips[eid]["preview"]
    assert "<mark>budget</mark> is &lt;tight&gt; this year &amp; next." in pv, pv
    assert snips[oid]["subject"] is None and snips[oid]["preview"] is None
    assert res["notFound"] == ["e999999"]
    # body only: the subject is not marked
    res = j.ok("SearchSnippet/get", {"filter": {"operator": "AND", "conditions": [
        {"body": "tight"}]}, "emailIds": [eid]})
    assert res["list"][0]["subject"] is None
    assert "<mark>tight</mark>" in res["list"][0]["preview"]
    j.close()
