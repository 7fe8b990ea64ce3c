"""The mail client over IMAP against yubind: yubin fetch of IMAP folders
into a Maildir (resume by UID, UIDVALIDITY, nothing changed on the server)
and the remote commands ls, read, save, mv, rm, flag, search, folders."""

import email
import email.policy
import imaplib
import json
import os
import ssl
import subprocess

import yubintest as yt

DEMO = ("demo@example.test", "demo-Pass-1")


def yubin(args, env=None, check=True, input=None):
    e = dict(os.environ)
    e.pop("XDG_CONFIG_HOME", None)
    e.update(env or {})
    r = subprocess.run([yt.YUBIN] + args, capture_output=True,
                       stdin=subprocess.DEVNULL if input is None else None, input=input,
                       env={**yt.sanitizer_env(), **e}, timeout=60)
    if check and r.returncode != 0:
        raise AssertionError(f"yubin {args[0]} failed ({r.returncode}): {r.stderr.decode()}")
    return r


def imap(d, user=DEMO):
    c = imaplib.IMAP4_SSL("127.0.0.1", d.ports["imaps"], ssl_context=ssl._create_unverified_context(),
                          timeout=yt.IO_TIMEOUT)
    c.login(*user)
    return c


def server_uids(d, folder="INBOX"):
    c = imap(d)
    c.select(folder, readonly=True)
    typ, data = c.uid("SEARCH", None, "ALL")
    c.logout()
    return [int(x) for x in data[0].split()]


def server_flags(d, folder="INBOX"):
    c = imap(d)
    c.select(folder, readonly=True)
    typ, data = c.fetch("1:*", "(FLAGS)")
    c.logout()
    return [x for x in data if x]


def deliver(d, subjects, folder=None):
    before = len(server_uids(d))
    for i, s in enumerate(subjects):
        d.send("sender@example.net", [DEMO[0]],
               yt.make_message(subject=s, body=f"Body of {s}.\n.dot line\n"))
    yt.wait_until(lambda: len(server_uids(d)) >= before + len(subjects),
                  what=f"{len(subjects)} more messages for demo")


def acct(d, cert, tmp_path, mode="tls", password=DEMO[1]):
    pw = tmp_path / f"pw-imap-{mode}-{len(password)}"
    pw.write_text(password + "\n")
    url = (f"imaps://127.0.0.1:{d.ports['imaps']}" if mode == "tls"
           else f"imap://127.0.0.1:{d.ports['imap']}")
    return ["--server", url, "--cafile", cert.cert, "--user", DEMO[0],
            "--password-cmd", f"cat {pw}"]


def new_files(md):
    nd = md / "new"
    return sorted(p.read_bytes() for p in nd.iterdir()) if nd.exists() else []


def test_imap_fetch_resumes_by_uid_and_changes_nothing(yubind, cert, tmp_path):
    deliver(yubind, ["one", "two", "three"])
    md = tmp_path / "Mail"
    args = acct(yubind, cert, tmp_path) + ["--maildir", str(md)]
    r = yubin(["fetch"] + args)
    assert f"fetched 3 new message(s) into {md}".encode() in r.stdout, r.stdout
    got = new_files(md)
    want = sorted(m.replace(b"\r\n", b"\n") for m in yubind.fetch(DEMO[0]))
    assert got == want                          # exact bytes, LF line ends
    assert all(b"\r" not in m for m in got)
    state = (md / ".yubin-imap").read_text().split("\n")
    assert len([l for l in state if l]) == 1 and state[0].endswith(" INBOX")
    # nothing changed on the server: still there, still unseen
    assert len(server_uids(yubind)) == 3
    assert not any(b"\\Seen" in f for f in server_flags(yubind))
    # again: nothing new; one more: only it
    assert b"fetched 0 new message(s)" in yubin(["fetch"] + args).stdout
    deliver(yubind, ["four"])
    assert b"fetched 1 new message(s)" in yubin(["fetch"] + args).stdout
    got = new_files(md)
    assert len(got) == 4 and sum(b"Subject: four" in m for m in got) == 1


def test_imap_fetch_folders_into_maildirplusplus_over_starttls(yubind, cert, tmp_path):
    c = imap(yubind)
    c.create("Lists/dev")
    c.append("Lists/dev", None, None, yt.crlf(yt.make_message(subject="list mail")))
    c.logout()
    deliver(yubind, ["inbox mail"])
    md = tmp_path / "Mail"
    r = yubin(["fetch", "--folder", "INBOX", "--folder", "Lists/dev", "--maildir", str(md)] +
              acct(yubind, cert, tmp_path, mode="starttls"))
    assert b"fetched 2 new message(s)" in r.stdout, r.stderr
    assert any(b"Subject: inbox mail" in m for m in new_files(md))
    sub = md / ".Lists.dev"
    assert [b"Subject: list mail" in m for m in new_files(sub)] == [True]
    lines = sorted(l.split(" ", 2)[2] for l in (md / ".yubin-imap").read_text().splitlines())
    assert lines == ["INBOX", "Lists/dev"]


def test_imap_fetch_uidvalidity_change_fetches_again(yubind, cert, tmp_path):
    deliver(yubind, ["a"])
    md = tmp_path / "Mail"
    args = acct(yubind, cert, tmp_path) + ["--maildir", str(md)]
    yubin(["fetch"] + args)
    st = md / ".yubin-imap"
    v, u, f = st.read_text().split(" ", 2)
    st.write_text(f"{int(v) + 1} {u} {f}")      # as if the server renumbered
    r = yubin(["fetch"] + args)
    assert b"renumbered the folder" in r.stderr
    assert b"fetched 1 new message(s)" in r.stdout
    assert len(new_files(md)) == 2


def test_imap_fetch_torn_state_line_is_ignored(yubind, cert, tmp_path):
    deliver(yubind, ["a", "b"])
    md = tmp_path / "Mail"
    args = acct(yubind, cert, tmp_path) + ["--maildir", str(md)]
    yubin(["fetch"] + args)
    st = md / ".yubin-imap"
    v, u, f = st.read_text().split(" ", 2)
    # as after a crash: the last record is only half written
    st.write_text(f"{v} {int(u) - 1} INBOX\n{v} {u[:1]}")
    r = yubin(["fetch"] + args)
    assert b"fetched 1 new message(s)" in r.stdout   # the one not recorded whole


def test_imap_fetch_wrong_password_and_unreachable(yubind, cert, tmp_path):
    md = tmp_path / "Mail"
    r = yubin(["fetch", "--maildir", str(md)] + acct(yubind, cert, tmp_path, password="bad-Pw-7"),
              check=False)
    assert r.returncode == 1, r
    assert b"NO" in r.stderr and b"login as demo@example.test" in r.stderr, r.stderr
    port = yt.free_port_on(["127.0.0.1"])
    r = yubin(["fetch", "--maildir", str(md), "--server", f"imaps://127.0.0.1:{port}",
               "--user", "x", "--password-cmd", "echo x"], check=False)
    assert r.returncode == 75 and b"onnection refused" in r.stderr, r


def test_remote_ls_read_flag_search(yubind, cert, tmp_path):
    subj = "=?ISO-2022-JP?B?GyRCJUYlOSVIGyhC?="     # テスト
    yubind.send("sender@example.net", [DEMO[0]],
                yt.make_message(subject=subj, body="hello remote\n"))
    deliver(yubind, ["plain second"])
    a = acct(yubind, cert, tmp_path)
    r = yubin(["ls", "--json"] + a)
    v = json.loads(r.stdout)
    assert [m["n"] for m in v] == [1, 2]
    assert v[0]["subject"] == "テスト" and v[1]["subject"] == "plain second"
    assert v[0]["from"] == "sender@example.net" and v[0]["uid"] > 0
    assert "S" not in v[0]["flags"]
    r = yubin(["read", "1"] + a)
    assert "テスト".encode() in r.stdout and b"hello remote" in r.stdout
    assert any(b"\\Seen" in f for f in server_flags(yubind)[:1])    # read marks it seen
    r = yubin(["read", "2", "--peek"] + a)
    assert b"plain second" in r.stdout
    assert b"\\Seen" not in server_flags(yubind)[1]
    yubin(["flag", "2", "--set", "flagged", "--set", "$Work"] + a)
    f = server_flags(yubind)[1]
    assert b"\\Flagged" in f and b"$Work" in f
    yubin(["flag", "2", "--clear", "flagged"] + a)
    assert b"\\Flagged" not in server_flags(yubind)[1]
    r = yubin(["search", "--subject", "テスト", "--json"] + a)
    assert [m["n"] for m in json.loads(r.stdout)] == [1]
    r = yubin(["search", "--unseen", "--json"] + a)
    assert [m["n"] for m in json.loads(r.stdout)] == [2]
    r = yubin(["read", "9"] + a, check=False)
    assert r.returncode == 1 and b"no message 9 (2 in INBOX)" in r.stderr, r.stderr


def test_remote_folders_mv_rm(yubind, cert, tmp_path):
    deliver(yubind, ["m1", "m2", "m3"])
    a = acct(yubind, cert, tmp_path)
    c = imap(yubind)
    c.create("Archive")
    c.logout()
    r = yubin(["mv", "1", "Archive"] + a)
    assert server_uids(yubind, "Archive") and len(server_uids(yubind)) == 2
    r = yubin(["mv", "1", "Nope"] + a, check=False)
    assert r.returncode == 1 and b'no folder "Nope"' in r.stderr, r.stderr
    # rm: to Trash (made when missing), then from Trash for good
    yubin(["rm", "1", "2"] + a)
    assert len(server_uids(yubind)) == 0 and len(server_uids(yubind, "Trash")) == 2
    r = yubin(["folders", "--json"] + a)
    f = {x["name"]: x for x in json.loads(r.stdout)}
    assert f["INBOX"]["total"] == 0 and f["Trash"]["total"] == 2 and f["Archive"]["total"] == 1
    assert f["Trash"]["special"] == "trash"
    yubin(["rm", "1", "--folder", "Trash"] + a)
    assert len(server_uids(yubind, "Trash")) == 1
    r = yubin(["ls", "Trash", "--json"] + a)
    assert len(json.loads(r.stdout)) == 1


def test_remote_save_attachment(yubind, cert, tmp_path):
    from email.message import EmailMessage
    m = EmailMessage()
    m["From"] = "sender@example.net"
    m["To"] = DEMO[0]
    m["Subject"] = "with file"
    m.set_content("see attached\n")
    blob = bytes(range(256)) * 40
    m.add_attachment(blob, maintype="application", subtype="octet-stream", filename="../x.bin")
    yubind.send("sender@example.net", [DEMO[0]], m.as_bytes(policy=email.policy.SMTP))
    yt.wait_until(lambda: len(server_uids(yubind)) == 1, what="the message")
    out = tmp_path / "out"
    out.mkdir()
    a = acct(yubind, cert, tmp_path)
    r = yubin(["read", "1"] + a)
    assert b"x.bin" in r.stdout
    yubin(["save", "1", "2", str(out)] + a)
    assert (out / "x.bin").read_bytes() == blob


def test_imap_trace_redacts_password(yubind, cert, tmp_path):
    md = tmp_path / "Mail"
    r = yubin(["fetch", "--trace", "--maildir", str(md)] + acct(yubind, cert, tmp_path))
    assert b"C: y" in r.stderr and b"S: * OK" in r.stderr
    assert DEMO[1].encode() not in r.stderr
    import base64
    assert base64.b64encode(b"\0" + DEMO[0].encode() + b"\0" + DEMO[1].encode()) not in r.stderr


# ------------------------------------------- reply, forward, Sent copy ----

ALICE = ("alice@example.test", "alice-Pass-2")


def imap_account(d, cert, tmp_path):
    """client.conf: demo's account, submission and IMAPS on yubind."""
    conf = tmp_path / "xdg" / "yubin"
    conf.mkdir(parents=True, exist_ok=True)
    pw = tmp_path / "pw-demo"
    pw.write_text(DEMO[1] + "\n")
    (conf / "client.conf").write_text(
        "[account home]\n"
        "name = Demo User\n"
        f"address = {DEMO[0]}\n"
        f"smtp = 127.0.0.1:{d.ports['submission']}\n"
        f"incoming = imaps://127.0.0.1:{d.ports['imaps']}\n"
        f"cafile = {cert.cert}\n"
        f"password_cmd = cat {pw}\n")
    os.chmod(conf / "client.conf", 0o600)
    return {"XDG_CONFIG_HOME": str(tmp_path / "xdg")}


def mailbox(d, user, folder="INBOX"):
    c = imap(d, user)
    c.select(folder, readonly=True)
    typ, data = c.fetch("1:*", "(BODY.PEEK[])") if c.select(folder, readonly=True)[1][0] != b"0" \
        else ("OK", [])
    c.logout()
    return [email.message_from_bytes(x[1], policy=email.policy.default)
            for x in data if isinstance(x, tuple)]


def test_send_keeps_a_copy_in_sent(yubind, cert, tmp_path):
    env = imap_account(yubind, cert, tmp_path)
    r = yubin(["send", "--to", ALICE[0], "--subject", "copy me"], env=env, input=b"hello\n")
    assert b"copy saved in the Sent folder" in r.stdout, r.stdout + r.stderr
    sent = mailbox(yubind, DEMO, "Sent")
    assert [m["Subject"] for m in sent] == ["copy me"]
    c = imap(yubind)
    typ, data = c.list()
    c.logout()
    assert any(b"\\Sent" in l and b"Sent" in l for l in data)      # made with its special use
    yt.wait_until(lambda: len(mailbox(yubind, ALICE)) == 1, what="alice's copy")
    # --no-copy: none
    yubin(["send", "--to", ALICE[0], "--subject", "no copy", "--no-copy"], env=env,
          input=b"x\n")
    assert len(mailbox(yubind, DEMO, "Sent")) == 1


def test_reply_all_threads_quotes_and_marks_answered(yubind, cert, tmp_path):
    env = imap_account(yubind, cert, tmp_path)
    orig = (b"From: Alice <alice@example.test>\r\n"
            b"To: demo@example.test, bob@example.org\r\n"
            b"Cc: Demo User <demo@example.test>\r\n"
            b"Subject: =?UTF-8?B?5LqI5a6a?=\r\n"                 # 予定
            b"Message-ID: <orig-1@example.test>\r\n"
            b"References: <root@example.test>\r\n"
            b"Date: Tue, 1 Dec 2026 10:00:00 +0900\r\n"
            b"\r\n"
            b"Can we meet?\r\n")
    yubind.send(ALICE[0], [DEMO[0]], orig)
    yt.wait_until(lambda: len(server_uids(yubind)) == 1, what="the original")
    r = yubin(["reply", "1", "--all"], env=env, input=b"Yes, at 3.\n")
    assert b"sent to 2 recipient(s)" in r.stdout, r.stdout + r.stderr
    yt.wait_until(lambda: len(mailbox(yubind, ALICE)) == 1, what="the reply at alice")
    m = mailbox(yubind, ALICE)[0]
    assert m["Subject"] == "Re: 予定"
    assert m["In-Reply-To"] == "<orig-1@example.test>"
    assert m["References"].split() == ["<root@example.test>", "<orig-1@example.test>"]
    assert m["To"] == "alice@example.test"
    assert m["Cc"] == "bob@example.org"                        # not ourselves
    body = m.get_content().replace("\r\n", "\n")
    assert body.startswith("Yes, at 3.\n")
    assert "wrote:\n> Can we meet?" in body
    assert b"\\Answered" in server_flags(yubind)[0]
    assert [x["Subject"] for x in mailbox(yubind, DEMO, "Sent")] == ["Re: 予定"]
    # Re: is not doubled
    r = yubin(["reply", "1", "--dry-run", "--folder", "Sent"], env=env, input=b"again\n")
    assert email.message_from_bytes(r.stdout, policy=email.policy.default)["Subject"] == "Re: 予定"


def test_forward_attached_and_inline(yubind, cert, tmp_path):
    from email.message import EmailMessage
    env = imap_account(yubind, cert, tmp_path)
    o = EmailMessage()
    o["From"] = "carol@example.net"
    o["To"] = DEMO[0]
    o["Subject"] = "report"
    o.set_content("numbers inside\n")
    blob = bytes(range(256)) * 8
    o.add_attachment(blob, maintype="application", subtype="octet-stream", filename="q.bin")
    raw = o.as_bytes(policy=email.policy.SMTP)
    yubind.send("carol@example.net", [DEMO[0]], raw)
    yt.wait_until(lambda: len(server_uids(yubind)) == 1, what="the original")
    r = yubin(["forward", "1", "--to", ALICE[0]], env=env, input=b"FYI\n")
    assert b"sent to 1 recipient(s)" in r.stdout, r.stderr
    r = yubin(["forward", "1", "--to", ALICE[0], "--inline", "--no-copy"], env=env,
              input=b"inline one\n")
    assert b"sent to 1 recipient(s)" in r.stdout, r.stderr
    yt.wait_until(lambda: len(mailbox(yubind, ALICE)) == 2, what="both forwards")
    att, inl = sorted(mailbox(yubind, ALICE), key=lambda m: "inline one" in m.as_string())
    assert att["Subject"] == "Fwd: report" and att["In-Reply-To"] is None
    parts = list(att.iter_parts())
    assert parts[0].get_content().startswith("FYI")
    assert parts[1].get_content_type() == "message/rfc822"
    inner = parts[1].get_content()
    assert inner["Subject"] == "report"
    assert [p.get_content() for p in inner.iter_attachments()] == [blob]   # nothing lost
    body = next(inl.iter_parts()).get_content().replace("\r\n", "\n")
    assert body.startswith("inline one") and "Forwarded message" in body
    assert "From: carol@example.net" in body and "numbers inside" in body
    files = [(p.get_filename(), p.get_content()) for p in inl.iter_attachments()]
    assert files == [("q.bin", blob)]
    assert len(mailbox(yubind, DEMO, "Sent")) == 1             # the second had --no-copy
    r = yubin(["forward", "1"], env=env, input=b"x\n", check=False)
    assert r.returncode == 2 and b"--to" in r.stderr


def test_send_exit_codes_temporary_and_permanent(yubind, cert, tmp_path):
    env = imap_account(yubind, cert, tmp_path)
    port = yt.free_port_on(["127.0.0.1"])
    r = yubin(["send", "--server", f"127.0.0.1:{port}", "--from", DEMO[0], "--to", ALICE[0],
               "--password-cmd", "echo x", "--user", "x"], input=b"x\n", check=False)
    assert r.returncode == 75, r                     # nobody listening: try again later
    r = yubin(["send", "--to", "nobody@example.test"], env=env, input=b"x\n", check=False)
    assert r.returncode == 1 and b"550" in r.stderr  # refused for good


def test_signature_appended_unless_asked_not_to(yubind, cert, tmp_path):
    env = imap_account(yubind, cert, tmp_path)
    conf = tmp_path / "xdg" / "yubin" / "client.conf"
    sig = tmp_path / "sig"
    sig.write_text("Demo User\nexample.test\n")
    conf.write_text(conf.read_text() + f"signature_file = {sig}\n")
    r = yubin(["send", "--to", ALICE[0], "--dry-run"], env=env, input=b"Hello\n")
    m = email.message_from_bytes(r.stdout, policy=email.policy.default)
    assert m.get_content().replace("\r\n", "\n") == "Hello\n-- \nDemo User\nexample.test\n"
    r = yubin(["send", "--to", ALICE[0], "--dry-run", "--no-signature"], env=env,
              input=b"Hello\n")
    assert b"-- \r\n" not in r.stdout


def test_imap_without_sasl_ir_and_literal_plus(tmp_path):
    """A scripted minimal IMAP server offering neither SASL-IR nor LITERAL+:
    AUTHENTICATE PLAIN waits for the "+", and a non-ASCII search string goes
    as a synchronising literal sent only after the server's "+"."""
    import base64
    import socket
    import threading
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(1)
    port = srv.getsockname()[1]
    seen = []

    def serve():
        c, _ = srv.accept()
        f = c.makefile("rb")
        c.sendall(b"* OK [CAPABILITY IMAP4rev1 AUTH=PLAIN] scripted\r\n")
        while True:
            line = f.readline()
            if not line:
                break
            seen.append(line)
            tag, cmd = (line.rstrip(b"\r\n").split(b" ") + [b""])[:2]
            up = cmd.upper()
            if up == b"AUTHENTICATE":
                assert line.rstrip().endswith(b"PLAIN"), line    # no initial response
                c.sendall(b"+ \r\n")
                seen.append(f.readline())
                c.sendall(tag + b" OK logged in\r\n")
            elif up == b"CAPABILITY":
                c.sendall(b"* CAPABILITY IMAP4rev1 AUTH=PLAIN\r\n" + tag + b" OK\r\n")
            elif up == b"LIST":
                c.sendall(b'* LIST (\\Noselect) "/" ""\r\n' + tag + b" OK\r\n")
            elif up == b"EXAMINE":
                c.sendall(b"* 2 EXISTS\r\n* OK [UIDVALIDITY 7] x\r\n" + tag +
                          b" OK [READ-ONLY] done\r\n")
            elif up == b"SEARCH":
                n = int(line.rstrip().rsplit(b"{", 1)[1].rstrip(b"}"))
                c.sendall(b"+ go ahead\r\n")
                lit = f.read(n)
                seen.append(lit)
                seen.append(f.readline())
                c.sendall(b"* SEARCH 2\r\n" + tag + b" OK\r\n")
            elif up == b"FETCH":
                c.sendall(b'* 2 FETCH (UID 9 FLAGS () RFC822.SIZE 3 ENVELOPE (NIL "s" NIL '
                          b'NIL NIL NIL NIL NIL NIL NIL))\r\n' + tag + b" OK\r\n")
            elif up == b"LOGOUT":
                c.sendall(b"* BYE\r\n" + tag + b" OK\r\n")
                break
            else:
                c.sendall(tag + b" BAD what\r\n")
        c.close()

    t = threading.Thread(target=serve, daemon=True)
    t.start()
    r = yubin(["search", "--text", "日本", "--json", "--server", f"imap://127.0.0.1:{port}",
               "--tls", "none", "--user", "u", "--password-cmd", "echo pw"], check=False)
    t.join(timeout=30)
    srv.close()
    assert r.returncode == 0, r.stderr
    assert [m["n"] for m in json.loads(r.stdout)] == [2]
    assert base64.b64decode(seen[1].strip()) == b"\0u\0pw"
    search = next(i for i, l in enumerate(seen) if b" SEARCH " in l)
    assert b"CHARSET UTF-8" in seen[search] and seen[search].rstrip().endswith(b"{6}")
    assert seen[search + 1] == "日本".encode()
