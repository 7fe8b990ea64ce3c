"""The webmail page's compose dialog (www/compose.js) in a real browser:
Debian's chromium, headless, driven by playwright-core through
tests/browser/compose.mjs (one launch per test), against yubind's
listen_https.  What the page sends goes through JMAP (blob upload,
Email/set, EmailSubmission/set) and is read back over IMAP with imaplib
and Python's email module in the recipients' mailboxes."""

import base64
import email
import email.policy
import imaplib
import json
import os
import subprocess

import pytest

import yubintest as yt

DEMO = "demo@example.test"
ALICE = "alice@example.test"
BOB = "bob@example.org"
PM = "postmaster@example.test"
BROWSER_DIR = os.path.join(yt.REPO, "tests", "browser")
MAIL = "urn:ietf:params:jmap:mail"
CORE = "urn:ietf:params:jmap:core"

# every byte value, so that any transfer-encoding slip shows
BINARY = bytes(range(256)) * 40 + b"\r\n\x00end"
MEMO = "会議メモ：来週の火曜日に変更です。\n二行目。\n".encode("utf-8")


def b64(data):
    return base64.b64encode(data).decode()


def run_compose(y, outdir, scenario, user=DEMO, **fields):
    node_modules = os.path.join(BROWSER_DIR, "node_modules", "playwright-core")
    if not os.path.isdir(node_modules):
        pytest.fail(f"{node_modules} is missing: run `make deps-test` (npm ci in "
                    f"tests/browser)", pytrace=False)
    cfg = {"base": f"https://127.0.0.1:{y.https_port}", "user": user,
           "password": yt.USERS[user], "outdir": str(outdir), "scenario": scenario,
           **fields}
    r = subprocess.run(["node", "compose.mjs", json.dumps(cfg)], cwd=BROWSER_DIR,
                       capture_output=True, text=True, timeout=240)
    if r.returncode != 0:
        pytest.fail(f"compose.mjs exited {r.returncode}:\n{r.stdout}\n{r.stderr}\n"
                    f"--- yubind log ---\n{y.log()[-4000:]}", pytrace=False)
    out = json.loads(r.stdout.strip().splitlines()[-1])
    if out.get("failure"):
        pytest.fail(f"{scenario}: {out['failure']}\n{json.dumps(out, ensure_ascii=False)}\n"
                    f"--- yubind log ---\n{y.log()[-4000:]}", pytrace=False)
    # the page's own errors (the 4xx asked for show as "Failed to load resource")
    errors = [e for e in out["consoleErrors"] if not e.startswith("Failed to load resource")]
    assert out["pageErrors"] == [] and errors == [], out
    return out


def sent_ok(out, y):
    r = out["result"]
    assert r["error"] is None and r["closed"], (
        f"the page did not send: {r}\n--- yubind log ---\n{y.log()[-4000:]}")
    assert r["toast"] == "Message sent."


# ---------------------------------------------------------------- IMAP ----

def imap(y, user):
    c = imaplib.IMAP4("127.0.0.1", y.imap_port, timeout=yt.IO_TIMEOUT)
    c.login(user, yt.USERS[user])
    return c


def mailbox(y, user, name):
    """[(flags bytes, email.message.EmailMessage)] of one mailbox, in UID order."""
    c = imap(y, user)
    try:
        typ, _ = c.select('"%s"' % name, readonly=True)
        assert typ == "OK", name
        typ, data = c.uid("SEARCH", None, "ALL")
        uids = data[0].split()
        out = []
        for uid in uids:
            typ, data = c.uid("FETCH", uid, "(FLAGS BODY.PEEK[])")
            assert typ == "OK"
            meta, raw = data[0]
            out.append((meta, email.message_from_bytes(raw, policy=email.policy.default)))
        return out
    finally:
        c.logout()


def wait_mailbox(y, user, name, n, what=None):
    got = []

    def poll():
        got[:] = mailbox(y, user, name)
        return len(got) >= n
    yt.wait_until(poll, what=what or f"{n} message(s) in {user}'s {name}")
    return got


def text_of(msg):
    part = msg.get_body(preferencelist=("plain",))
    assert part is not None, msg
    return part.get_content().replace("\r\n", "\n")


def attachments(msg):
    return {p.get_filename(): p.get_payload(decode=True) for p in msg.iter_attachments()}


# ---------------------------------------------------------------- JMAP ----

def jmap(y, calls, user=DEMO):
    auth = "Basic " + base64.b64encode(f"{user}:{yt.USERS[user]}".encode()).decode()
    import http.client
    c = http.client.HTTPSConnection("127.0.0.1", y.https_port,
                                    context=y.cert.client_context(), timeout=yt.IO_TIMEOUT)
    try:
        c.request("GET", "/jmap/session", headers={"Authorization": auth})
        r = c.getresponse()
        acct = json.loads(r.read())["primaryAccounts"][MAIL]
        body = json.dumps({"using": [CORE, MAIL], "methodCalls": [
            [name, {"accountId": acct, **args}, cid] for name, args, cid in calls]})
        c.request("POST", "/jmap/api/", body=body,
                  headers={"Authorization": auth, "Content-Type": "application/json"})
        r = c.getresponse()
        data = r.read()
        assert r.status == 200, data
        return {x[2]: x for x in json.loads(data)["methodResponses"]}
    finally:
        c.close()


def email_ids_by_subject(y, user=DEMO):
    """{subject: Email id} of the INBOX as JMAP sees it."""
    resp = jmap(y, [["Mailbox/get", {"ids": None}, "m"]], user)
    inbox = [m["id"] for m in resp["m"][1]["list"] if m["role"] == "inbox"][0]
    resp = jmap(y, [["Email/query", {"filter": {"inMailbox": inbox}}, "q"],
                    ["Email/get", {"#ids": {"resultOf": "q", "name": "Email/query",
                                            "path": "/ids"},
                                   "properties": ["subject"]}, "g"]], user)
    assert resp["g"][0] == "Email/get", resp
    return {e["subject"]: e["id"] for e in resp["g"][1]["list"]}


def deliver(y, rcpts, data):
    y.send("carrier@example.net", rcpts, yt.crlf(data) if isinstance(data, str) else data)


def append(y, user, box, data):
    c = imap(y, user)
    try:
        typ, resp = c.append('"%s"' % box, None, None, yt.crlf(data))
        assert typ == "OK", resp
    finally:
        c.logout()


# ---------------------------------------------------------------- tests ----

def test_compose_send_with_attachments(yubind, tmp_path, capsys):
    """Write a message in Japanese to another local account with one file
    picked and one dropped (and one picked and removed again; one over the
    size cap refused), send it with Ctrl+Enter; the recipient's INBOX
    has it (subject, body, both attachments byte for byte), the sender's
    Sent has a copy, Drafts is empty."""
    subject = "来週の会議について"
    body = "田中さん\n\n資料を添付します。\nよろしくお願いします。\n"
    out = run_compose(yubind, tmp_path, "send", to=f"Alice Example <{ALICE}>",
                      bcc=BOB, subject=subject, body=body,
                      picked={"name": "data.bin", "type": "application/octet-stream",
                              "b64": b64(BINARY)},
                      dropped={"name": "会議メモ.txt", "type": "text/plain", "b64": b64(MEMO)})
    with capsys.disabled():
        print(f"\ncompose screenshots: {out['screenshot']} {out['screenshotPhone']}")
    for shot in (out["screenshot"], out["screenshotPhone"]):
        with open(shot, "rb") as f:
            assert f.read(8) == b"\x89PNG\r\n\x1a\n"
    assert out["opened"]["title"] == "New message"
    assert out["opened"]["focus"] == "compose-to"
    assert out["opened"]["fromOptions"] and DEMO in out["opened"]["from"], out["opened"]
    assert out["dropOverlayShown"] is True
    assert out["bccHidden"] is True and out["filled"]["bcc"] == BOB
    atts = out["filled"]["attachments"]
    assert [a["name"] for a in atts] == ["data.bin", "会議メモ.txt"], atts
    assert all(a["done"] and not a["failed"] for a in atts), atts
    assert out["uploads"] == 3          # remove-me.txt was uploaded, then removed
    assert out["capMessage"]["added"] == 0 and "huge.bin" in out["capMessage"]["text"] \
        and "files can be at most" in out["capMessage"]["text"], out["capMessage"]
    # on a phone the dialog fills the screen
    p = out["phone"]
    assert (p["width"], p["height"]) == (p["vw"], p["vh"]), p
    sent_ok(out, yubind)

    (flags, msg), = wait_mailbox(yubind, ALICE, "INBOX", 1)
    assert msg["Subject"] == subject
    assert msg["From"].addresses[0].addr_spec == DEMO
    assert [a.addr_spec for a in msg["To"].addresses] == [ALICE]
    assert msg["To"].addresses[0].display_name == "Alice Example"
    assert msg["Message-ID"]
    assert text_of(msg).rstrip("\n") == body.rstrip("\n")
    assert attachments(msg) == {"data.bin": BINARY, "会議メモ.txt": MEMO}
    assert msg["Bcc"] is None
    # the Bcc recipient has it too, without seeing the Bcc either
    (_, bmsg), = wait_mailbox(yubind, BOB, "INBOX", 1)
    assert bmsg["Subject"] == subject and bmsg["Bcc"] is None
    sent = mailbox(yubind, DEMO, "Sent")
    assert len(sent) == 1 and sent[0][1]["Subject"] == subject
    assert b"\\Seen" in sent[0][0] and b"\\Draft" not in sent[0][0], sent[0][0]
    assert attachments(sent[0][1]) == {"data.bin": BINARY, "会議メモ.txt": MEMO}
    assert mailbox(yubind, DEMO, "Drafts") == []


def test_compose_reply_all(yubind, tmp_path):
    """Reply all to a message from bob to demo and alice with postmaster in
    Cc: To bob + alice, Cc postmaster (never demo), "Re:" once, the quote,
    In-Reply-To and References (capped at 20, the first kept) over IMAP,
    \\Answered on the original.  A
    plain reply to an "RE:" subject keeps it."""
    # a long thread: References keeps its first entry and the newest ones, 20 in all
    refs = ["<root-0@example.org>"] + [f"<r{n}@example.org>" for n in range(1, 25)]
    deliver(yubind, [DEMO], (
        f"From: Bob B <{BOB}>\nTo: Demo <{DEMO}>, {ALICE}\nCc: Post Master <{PM}>\n"
        "Subject: =?UTF-8?B?" + b64("会議の件".encode()) + "?=\n"
        "Message-ID: <orig-1@example.org>\nReferences: " + "\n ".join(refs) + "\n"
        "Date: Tue, 01 Dec 2026 10:00:00 +0000\nMIME-Version: 1.0\n"
        "Content-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: 8bit\n\n"
        "明日の会議は十時からです。\nline two\n"))
    deliver(yubind, [DEMO], (
        f"From: {ALICE}\nTo: {DEMO}\nSubject: RE: status\nMessage-ID: <orig-2@example.test>\n"
        "\nfine\n"))
    ids = yt.wait_until(lambda: (lambda m: m if len(m) == 2 else None)(
        email_ids_by_subject(yubind)), what="both messages in JMAP")
    out = run_compose(yubind, tmp_path, "replyAll", emailId=ids["会議の件"],
                      replyEmailId=ids["RE: status"], text="了解しました。")
    r = out["reply"]
    assert r["subject"] == "RE: status" and r["to"] == ALICE and r["cc"] == "", r
    assert r["title"] == "Reply"
    o = out["opened"]
    assert o["subject"] == "Re: 会議の件", o
    assert o["to"] == f"Bob B <{BOB}>, {ALICE}", o
    assert o["cc"] == f"Post Master <{PM}>", o
    assert o["focus"] == "compose-body"
    assert o["body"].startswith("\n\nOn ") and " Bob B wrote:\n" in o["body"], o["body"]
    assert "> 明日の会議は十時からです。\n> line two" in o["body"], o["body"]
    sent_ok(out, yubind)

    (flags, msg), = wait_mailbox(yubind, BOB, "INBOX", 1)
    assert msg["Subject"] == "Re: 会議の件"
    assert sorted(a.addr_spec for a in msg["To"].addresses) == sorted([BOB, ALICE])
    assert [a.addr_spec for a in msg["Cc"].addresses] == [PM]
    assert msg["In-Reply-To"].strip() == "<orig-1@example.org>"
    assert msg["References"].split() == refs[:1] + refs[-18:] + ["<orig-1@example.org>"]
    text = text_of(msg)
    assert text.startswith("了解しました。\n\nOn "), text
    assert "> 明日の会議は十時からです。" in text
    for user in (ALICE, PM):
        got = wait_mailbox(yubind, user, "INBOX", 1)
        assert got[-1][1]["Subject"] == "Re: 会議の件"
    assert mailbox(yubind, DEMO, "Drafts") == []

    def answered():
        for fl, m in mailbox(yubind, DEMO, "INBOX"):
            if m["Message-ID"] == "<orig-1@example.org>":
                return b"\\Answered" in fl
        return False
    yt.wait_until(answered, what="\\Answered on the original")
    others = [fl for fl, m in mailbox(yubind, DEMO, "INBOX")
              if m["Message-ID"] == "<orig-2@example.test>"]
    assert others and b"\\Answered" not in others[0]


def test_compose_forward_reattaches(yubind, tmp_path):
    """Forward a message with an attachment: "Fwd:", the forwarded header
    block and text inline, the attachment re-attached by its blobId (no
    upload), the same bytes in the recipient's INBOX."""
    pdf = b"%PDF-1.4\n" + bytes(range(256)) * 8 + b"\n%%EOF\n"
    raw = (f"From: Bob B <{BOB}>\r\nTo: {DEMO}\r\nSubject: plans\r\n"
           "Message-ID: <fw-1@example.org>\r\nDate: Tue, 01 Dec 2026 10:00:00 +0000\r\n"
           "MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"BB\"\r\n\r\n"
           "--BB\r\nContent-Type: text/plain; charset=utf-8\r\n"
           "Content-Transfer-Encoding: base64\r\n\r\n"
           + b64("図面を送ります。\n".encode()) + "\r\n"
           "--BB\r\nContent-Type: application/pdf; name=\"plan.pdf\"\r\n"
           "Content-Disposition: attachment; filename=\"plan.pdf\"\r\n"
           "Content-Transfer-Encoding: base64\r\n\r\n"
           + base64.encodebytes(pdf).decode().replace("\n", "\r\n") +
           "--BB--\r\n").encode()
    deliver(yubind, [DEMO], raw)
    ids = yt.wait_until(lambda: email_ids_by_subject(yubind), what="the message in JMAP")
    out = run_compose(yubind, tmp_path, "forward", emailId=ids["plans"], to=ALICE,
                      text="FYI")
    o = out["opened"]
    assert o["subject"] == "Fwd: plans" and o["title"] == "Forward", o
    assert o["to"] == ""
    assert "---------- Forwarded message ----------\n" in o["body"]
    assert f"From: Bob B <{BOB}>\n" in o["body"] and "Subject: plans\n" in o["body"]
    assert f"To: {DEMO}\n" in o["body"] and "\nDate: " in o["body"]
    assert "図面を送ります。" in o["body"]
    assert [a["name"] for a in o["attachments"]] == ["plan.pdf"], o
    assert out["uploads"] == 0
    sent_ok(out, yubind)

    (flags, msg), = wait_mailbox(yubind, ALICE, "INBOX", 1)
    assert msg["Subject"] == "Fwd: plans"
    text = text_of(msg)
    assert text.startswith("FYI\n") and "図面を送ります。" in text, text
    assert attachments(msg) == {"plan.pdf": pdf}
    assert len(mailbox(yubind, DEMO, "Sent")) == 1


def test_compose_draft_reload_send(yubind, tmp_path):
    """Save a draft (with an attachment) twice: one draft in Drafts; Escape
    with changes asks first; reload the page, open the draft from the Drafts
    folder, everything is back; send it: Drafts empty, Sent has it,
    the recipient has it."""
    subject = "下書き：予定表"
    body = "まだ途中です。\n"
    out = run_compose(yubind, tmp_path, "draft", to=ALICE, subject=subject, body=body,
                      picked={"name": "予定.bin", "type": "application/octet-stream",
                              "b64": b64(BINARY[:3000])})
    assert out["confirmShown"] is True and out["openAfterEscape"] is True
    assert out["firstSave"]["error"] is None, out["firstSave"]
    assert out["secondSave"]["error"] is None, out["secondSave"]
    assert isinstance(out["draftsAfterSave"], list) and len(out["draftsAfterSave"]) == 1, \
        out["draftsAfterSave"]
    assert out["draftListed"] == out["draftsAfterSave"][0]
    assert out["openedByClick"] is True     # app.js opens a Drafts message in the dialog
    ld = out["loaded"]
    assert ld["to"] == ALICE and ld["subject"] == subject, ld
    assert ld["body"].rstrip("\n") == body.rstrip("\n"), ld
    assert [a["name"] for a in ld["attachments"]] == ["予定.bin"]
    assert out["uploads"] == 1
    sent_ok(out, yubind)

    (flags, msg), = wait_mailbox(yubind, ALICE, "INBOX", 1)
    assert msg["Subject"] == subject
    assert text_of(msg).rstrip("\n") == body.rstrip("\n")
    assert attachments(msg) == {"予定.bin": BINARY[:3000]}
    assert mailbox(yubind, DEMO, "Drafts") == []
    sent = mailbox(yubind, DEMO, "Sent")
    assert len(sent) == 1 and b"\\Draft" not in sent[0][0]


def test_compose_autosave_close_discard(yubind, tmp_path):
    """Autosave (its interval shortened for the test) keeps a draft while
    typing; the close button saves the latest text over it (still one
    draft); opened again, Discard asks, then deletes the draft."""
    out = run_compose(yubind, tmp_path, "autosave", subject="自動保存のテスト",
                      body="本文を追加。")
    assert out["autosaved"]["error"] is None, out["autosaved"]
    a = out["draftsAfterAutosave"]
    assert [(d["subject"], d["draft"]) for d in a] == [("自動保存のテスト", True)], a
    c = out["draftsAfterClose"]
    assert len(c) == 1 and c[0]["id"] != a[0]["id"], c
    assert c[0]["text"].rstrip("\n") == "本文を追加。", c
    assert out["toastAfterClose"] == "Draft saved."
    assert out["reopened"]["subject"] == "自動保存のテスト"
    assert out["reopened"]["title"] == "Draft"
    assert out["discardAsk"] == {"shown": True, "text": "Delete this draft?",
                                 "button": "Delete draft", "saveOffered": False}, out
    assert out["toastAfterDiscard"] == "Draft deleted."
    assert out["draftsAfterDiscard"] == []
    assert mailbox(yubind, DEMO, "Drafts") == []


def test_compose_autocomplete(yubind, tmp_path):
    """Addresses the account wrote to (its Sent) and got mail from (INBOX)
    are suggested while typing in To and Cc; Enter and Tab pick; the
    field then holds "name <email>, " entries."""
    for n, (name, addr) in enumerate([("山田 花子", "hanako@example.org"),
                                      ("Harold Smith", "harold@example.net")]):
        append(yubind, DEMO, "Sent",
               f"From: {DEMO}\nTo: =?UTF-8?B?{b64(name.encode())}?= <{addr}>\n"
               f"Subject: sent {n}\nMessage-ID: <s{n}@example.test>\n\nhi\n")
    # written to twice: ranked first
    append(yubind, DEMO, "Sent",
           f"From: {DEMO}\nTo: Harold Smith <harold@example.net>\nSubject: again\n"
           "Message-ID: <s9@example.test>\n\nhi\n")
    deliver(yubind, [DEMO], f"From: Zed Zebra <zed@example.net>\nTo: {DEMO}\n"
            "Subject: from zed\nMessage-ID: <z1@example.net>\n\nyo\n")
    yt.wait_until(lambda: len(mailbox(yubind, DEMO, "INBOX")) == 1, what="zed's message")
    out = run_compose(yubind, tmp_path, "autocomplete", typeTo="ha", typeTo2="z",
                      typeCc="山田")
    assert out["suggestVisible"] is True
    assert out["suggestTo"][:2] == ["Harold Smithharold@example.net",
                                    "山田 花子hanako@example.org"], out["suggestTo"]
    assert DEMO not in "".join(out["suggestTo"])
    assert out["toValue"] == "Harold Smith <harold@example.net>, ", out
    assert out["suggestAfterPick"] is False
    assert out["suggestTo2"] and out["suggestTo2"][0] == "Zed Zebrazed@example.net", out
    # ArrowDown moves on (wrapping round a one-entry list), Tab takes it
    assert out["active2"] == out["suggestTo2"][1 % len(out["suggestTo2"])]
    assert out["toValue2"].startswith("Harold Smith <harold@example.net>, ")
    assert out["ccValue"] == "山田 花子 <hanako@example.org>, ", out
    assert out["suggestNone"] is False
    assert out["parsed"][0] == {"name": "Harold Smith", "email": "harold@example.net"}
    with open(out["screenshot"], "rb") as f:
        assert f.read(8) == b"\x89PNG\r\n\x1a\n"
