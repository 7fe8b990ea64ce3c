"""yubin ls, read, save, mv, rm, flag, search and folders on a local Maildir
(--maildir, or an account's maildir): a Maildir++ tree written file by
file, every command run, its output checked, and the files moved, renamed
or unlinked as they should be; then the errors (no such message, bad
folder names, a keyword on a Maildir, bad usage)."""

import base64
import json
import os
import pathlib
import shutil
import subprocess

import pytest

import yubintest as yt

# Dates as the Date fields say them; numbering is by date, oldest first.
JP_SUBJECT = "=?UTF-8?B?" + base64.b64encode("件名".encode()).decode() + "?="
JP_FROM = ("=?UTF-8?B?" + base64.b64encode("山田 太郎".encode()).decode() +
           "?= <taro@example.jp>")
MSGS = [
    # (where, file name, subject, date, from, extra header lines, body)
    ("new", "1000.M1P1.host", "alpha", "Mon, 1 Jan 2024 10:00:00 +0000",
     "Alice <alice@example.org>", "", "first body\n"),
    ("cur", "2000.M2P2.host:2,S", JP_SUBJECT, "Tue, 2 Jan 2024 10:00:00 +0000", JP_FROM, "",
     "second body, about lunch\n"),
    ("cur", "3000.M3P3.host:2,FS", "gamma", "Wed, 3 Jan 2024 10:00:00 +0000",
     "bob@example.net", "", "third body\n"),
    ("new", "4000.M4P4.host", "delta", "Thu, 4 Jan 2024 10:00:00 +0000",
     "carol@example.com", "", "fourth body mentions Zeppelin\n"),
    ("cur", "5000.M5P5.host:2,RS", "epsilon", "Fri, 5 Jan 2024 10:00:00 +0000",
     "dave@example.com", "", "fifth body\n"),
]
SUBJECTS = ["alpha", "件名", "gamma", "delta", "epsilon"]


def message(subject, date, frm, extra="", body="body\n", to="me@example.test"):
    return (f"From: {frm}\nTo: {to}\nSubject: {subject}\nDate: {date}\n"
            f"Message-ID: <{subject[:8].replace('=', '')}@example.org>\n{extra}\n{body}")


@pytest.fixture
def md():
    d = pathlib.Path(yt.mkdtemp("yubin-local-"))
    m = d / "Mail"
    for sub in ("", ".Lists.dev", ".Archive", ".Sent"):
        for s in ("cur", "new", "tmp"):
            (m / sub / s).mkdir(parents=True, exist_ok=True)
    for where, name, subject, date, frm, extra, body in MSGS:
        (m / where / name).write_text(message(subject, date, frm, extra, body))
    (m / ".Lists.dev" / "cur" / "7000.M7P7.host:2,S").write_text(
        message("list mail", "Sun, 7 Jan 2024 10:00:00 +0000", "list@example.org"))
    (m / ".Sent" / "cur" / "8000.M8P8.host:2,S").write_text(
        message("sent one", "Mon, 8 Jan 2024 10:00:00 +0000", "me@example.test"))
    yield m
    if not yt.KEEP:
        shutil.rmtree(d, ignore_errors=True)


def yubin(args, env=None, check=True):
    e = yt.sanitizer_env()
    e.pop("XDG_CONFIG_HOME", None)
    e["HOME"] = e.get("HOME", "/root")
    e.update(env or {})
    r = subprocess.run([yt.YUBIN] + args, capture_output=True, stdin=subprocess.DEVNULL,
                       env=e, timeout=60)
    err = r.stderr.decode(errors="replace")
    assert not any(m in err for m in yt.SANITIZER_MARKS), err
    if check and r.returncode != 0:
        raise AssertionError(f"yubin {' '.join(args)} failed ({r.returncode}): {err}")
    return r


def ls_json(m, folder=None, extra=()):
    args = ["ls"] + ([folder] if folder else []) + ["--json", "--maildir", str(m)] + list(extra)
    return json.loads(yubin(args).stdout)


def files(d):
    return sorted(p.name for p in d.iterdir()) if d.exists() else []


def test_ls_text_and_json(md):
    r = yubin(["ls", "--maildir", str(md)])
    lines = r.stdout.decode().splitlines()
    assert len(lines) == 5
    for i, (line, subject) in enumerate(zip(lines, SUBJECTS)):
        assert line.split()[0] == str(i + 1) and subject in line
    assert "山田 太郎 <taro@example.jp>" in lines[1]
    assert lines[0].split()[1] == "N" and lines[2].split()[1] == "SF"
    items = ls_json(md)
    assert [x["n"] for x in items] == [1, 2, 3, 4, 5]
    assert [x["subject"] for x in items] == SUBJECTS
    assert [x["flags"] for x in items] == ["N", "S", "SF", "N", "SR"]
    first = items[0]
    assert set(first) == {"n", "uid", "date", "from", "to", "subject", "message_id", "size",
                          "flags"}
    assert first["date"] == 1704103200 and first["uid"] == 0
    assert first["from"] == "Alice <alice@example.org>" and first["to"] == "me@example.test"
    assert first["message_id"] == "<alpha@example.org>"
    assert first["size"] == (md / "new" / "1000.M1P1.host").stat().st_size
    # a subfolder, as FOLDER or --folder
    sub = ls_json(md, "Lists/dev")
    assert [x["subject"] for x in sub] == ["list mail"]
    assert ls_json(md, extra=["--folder", "Lists/dev"]) == sub
    # an empty folder: an empty list
    assert ls_json(md, "Archive") == []
    assert yubin(["ls", "Archive", "--maildir", str(md)]).stdout == b""


def test_read_marks_seen_unless_peek(md):
    r = yubin(["read", "1", "--peek", "--maildir", str(md)])
    out = r.stdout.decode()
    assert "Subject: alpha" in out and "first body" in out
    assert files(md / "new") == ["1000.M1P1.host", "4000.M4P4.host"]
    r = yubin(["read", "1", "--maildir", str(md)])
    assert "first body" in r.stdout.decode()
    assert files(md / "new") == ["4000.M4P4.host"]
    assert "1000.M1P1.host:2,S" in files(md / "cur")
    # still number 1, now seen
    assert ls_json(md)[0]["flags"] == "S"
    # --headers: every field; --width wraps
    r = yubin(["read", "2", "--headers", "--maildir", str(md)])
    out = r.stdout.decode()
    assert "Message-ID: <" in out and "件名" in out and "山田 太郎" in out
    long_body = " ".join(["word"] * 60) + "\n"
    (md / "cur" / "9000.M9P9.host:2,S").write_text(
        message("wide", "Tue, 9 Jan 2024 10:00:00 +0000", "x@example.org", body=long_body))
    r = yubin(["read", "6", "--width", "40", "--maildir", str(md)])
    body = r.stdout.decode().split("\n\n", 1)[1]
    assert max(len(line) for line in body.splitlines()) <= 40
    # a message in a subfolder
    r = yubin(["read", "1", "--folder", "Lists/dev", "--maildir", str(md)])
    assert "list mail" in r.stdout.decode()
    assert files(md / ".Lists.dev" / "cur") == ["7000.M7P7.host:2,S"]


def test_save_confines_the_name(md, tmp_path):
    blob = bytes(range(256)) * 4
    att = ("MIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=XX\n",
           "--XX\nContent-Type: text/plain\n\nsee attached\n--XX\n"
           "Content-Type: application/octet-stream\n"
           "Content-Disposition: attachment; filename=\"../../evil.bin\"\n"
           "Content-Transfer-Encoding: base64\n\n" + base64.encodebytes(blob).decode() +
           "--XX--\n")
    (md / "cur" / "9500.M9P9.host:2,S").write_text(
        message("files", "Wed, 10 Jan 2024 10:00:00 +0000", "x@example.org", extra=att[0],
                body=att[1]))
    dest = tmp_path / "out"
    dest.mkdir()
    r = yubin(["save", "6", "2", str(dest), "--maildir", str(md)])
    assert b"saved " in r.stdout
    assert (dest / "evil.bin").read_bytes() == blob
    assert not (tmp_path / "evil.bin").exists()
    # never over an existing file
    r = yubin(["save", "6", "2", str(dest), "--maildir", str(md)], check=False)
    assert r.returncode == 1 and b"yubin save: " in r.stderr
    # no such part; a part that is not a number
    r = yubin(["save", "6", "7", str(dest), "--maildir", str(md)], check=False)
    assert r.returncode == 1 and b"has no part 7" in r.stderr
    r = yubin(["save", "6", "../2", str(dest), "--maildir", str(md)], check=False)
    assert r.returncode == 2
    # save does not mark anything
    assert files(md / "new") == ["1000.M1P1.host", "4000.M4P4.host"]


def test_mv_to_subfolder_and_back(md):
    r = yubin(["mv", "2", "3", "Lists/dev", "--maildir", str(md)])
    assert b"moved 2 message(s) to Lists/dev" in r.stdout
    assert files(md / ".Lists.dev" / "cur") == ["2000.M2P2.host:2,S", "3000.M3P3.host:2,FS",
                                                "7000.M7P7.host:2,S"]
    assert [x["subject"] for x in ls_json(md)] == ["alpha", "delta", "epsilon"]
    assert [x["subject"] for x in ls_json(md, "Lists/dev")] == ["件名", "gamma", "list mail"]
    # a new/ message goes to DEST/cur with an empty info
    yubin(["mv", "1", "Archive", "--maildir", str(md)])
    assert files(md / ".Archive" / "cur") == ["1000.M1P1.host:2,"]
    # back, with --folder naming the source
    yubin(["mv", "1", "INBOX", "--folder", "Archive", "--maildir", str(md)])
    assert files(md / ".Archive" / "cur") == []
    assert "1000.M1P1.host:2," in files(md / "cur")


def test_mv_errors_move_nothing(md):
    before = files(md / "cur") + files(md / "new")
    r = yubin(["mv", "1", "Nope", "--maildir", str(md)], check=False)
    assert r.returncode == 1
    assert r.stderr.decode() == 'yubin mv: no folder "Nope" (yubin folders lists them)\n'
    assert not (md / ".Nope").exists()
    r = yubin(["mv", "1", "9", "Archive", "--maildir", str(md)], check=False)
    assert r.returncode == 1 and b"no message 9 (5 in INBOX)" in r.stderr
    r = yubin(["mv", "1", "../x", "--maildir", str(md)], check=False)
    assert r.returncode == 1 and b'"..\" is not allowed' in r.stderr
    r = yubin(["mv", "1", "--maildir", str(md)], check=False)
    assert r.returncode == 2 and b"which folder?" in r.stderr
    assert files(md / "cur") + files(md / "new") == before
    assert files(md / ".Archive" / "cur") == []


def test_rm_3_4_removes_the_listed_third_and_fourth(md):
    r = yubin(["rm", "3", "4", "--maildir", str(md)])
    assert b"removed 2 message(s)" in r.stdout
    assert [x["subject"] for x in ls_json(md)] == ["alpha", "件名", "epsilon"]
    trash = md / ".Trash"
    assert (trash / "maildirfolder").exists() and (trash / "tmp").is_dir()
    assert files(trash / "cur") == ["3000.M3P3.host:2,FS", "4000.M4P4.host:2,"]
    assert [x["subject"] for x in ls_json(md, "Trash")] == ["gamma", "delta"]
    # from Trash: for good
    yubin(["rm", "1", "--folder", "Trash", "--maildir", str(md)])
    assert files(trash / "cur") == ["4000.M4P4.host:2,"]
    # --expunge: unlinked, Trash untouched
    r = yubin(["rm", "--expunge", "1", "--maildir", str(md)])
    assert b"deleted 1 message(s)" in r.stdout
    assert files(md / "new") == []
    assert files(trash / "cur") == ["4000.M4P4.host:2,"]
    assert [x["subject"] for x in ls_json(md)] == ["件名", "epsilon"]
    r = yubin(["rm", "5", "--maildir", str(md)], check=False)
    assert r.returncode == 1 and r.stderr == b"yubin rm: no message 5 (2 in INBOX)\n"


def test_flag_renames(md):
    yubin(["flag", "2", "3", "--set", "flagged", "--set", "answered", "--clear", "seen",
           "--maildir", str(md)])
    cur = files(md / "cur")
    assert "2000.M2P2.host:2,FR" in cur and "3000.M3P3.host:2,FR" in cur
    # a new/ message goes to cur/
    yubin(["flag", "1", "--set", "seen", "--set", "draft", "--maildir", str(md)])
    assert "1000.M1P1.host:2,DS" in files(md / "cur")
    assert files(md / "new") == ["4000.M4P4.host"]
    yubin(["flag", "5", "--set", "\\Deleted", "--maildir", str(md)])
    assert "5000.M5P5.host:2,RST" in files(md / "cur")
    assert [x["flags"] for x in ls_json(md)] == ["SD", "RF", "RF", "N", "SRT"]
    # a keyword: an error on a Maildir, nothing changed
    before = files(md / "cur")
    r = yubin(["flag", "1", "--set", "$Junk", "--maildir", str(md)], check=False)
    assert r.returncode == 1 and b"a Maildir has no keywords" in r.stderr
    assert r.stderr.startswith(b"yubin flag: ")
    assert files(md / "cur") == before
    for bad in (["flag", "1", "--set", "foo bar"], ["flag", "1"], ["flag", "x", "--set", "seen"],
                ["flag", "--set", "seen"]):
        r = yubin(bad + ["--maildir", str(md)], check=False)
        assert r.returncode == 2, bad
    r = yubin(["flag", "6", "--set", "seen", "--maildir", str(md)], check=False)
    assert r.returncode == 1 and b"no message 6 (5 in INBOX)" in r.stderr


def search(md, *args):
    r = yubin(["search", "--json", "--maildir", str(md)] + list(args))
    return [x["subject"] for x in json.loads(r.stdout)]


def test_search(md):
    assert search(md) == SUBJECTS
    assert search(md, "--from", "ALICE") == ["alpha"]
    assert search(md, "--from", "山田") == ["件名"]
    assert search(md, "--subject", "件") == ["件名"]
    assert search(md, "--to", "me@") == SUBJECTS
    assert search(md, "--body", "zeppelin") == ["delta"]
    assert search(md, "--body", "alpha") == []                 # a header, not the body
    assert search(md, "--text", "alpha") == ["alpha"]
    assert search(md, "--text", "lunch") == ["件名"]
    assert search(md, "--unseen") == ["alpha", "delta"]
    assert search(md, "--seen") == ["件名", "gamma", "epsilon"]
    assert search(md, "--flagged") == ["gamma"]
    assert search(md, "--unflagged", "--seen") == ["件名", "epsilon"]
    assert search(md, "--since", "2024-01-03") == ["gamma", "delta", "epsilon"]
    assert search(md, "--before", "2024-01-03") == ["alpha", "件名"]
    assert search(md, "--since", "2024-01-02", "--before", "2024-01-04") == ["件名", "gamma"]
    assert search(md, "--folder", "Lists/dev", "--from", "list") == ["list mail"]
    # the same objects as ls --json
    r = yubin(["search", "--json", "--from", "bob", "--maildir", str(md)])
    assert json.loads(r.stdout) == [ls_json(md)[2]]
    # text: the ls lines
    r = yubin(["search", "--body", "body", "--unseen", "--maildir", str(md)])
    lines = r.stdout.decode().splitlines()
    assert [line.split()[0] for line in lines] == ["1", "4"]
    assert yubin(["search", "--subject", "nothing", "--maildir", str(md)]).stdout == b""
    for bad in (["--since", "2024-13-01"], ["--before", "yesterday"], ["--seen", "--unseen"],
                ["--flagged", "--unflagged"], ["extra"]):
        r = yubin(["search", "--maildir", str(md)] + bad, check=False)
        assert r.returncode == 2, bad


def test_folders(md):
    (md / ".Junk" / "cur").mkdir(parents=True)
    (md / ".Junk" / "new").mkdir()
    (md / ".NotAMaildir").mkdir()
    (md / ".Sent" / "new" / "8100.M8P8.host").write_text("Subject: x\n\n")
    r = yubin(["folders", "--json", "--maildir", str(md)])
    got = json.loads(r.stdout)
    assert got == [
        {"name": "INBOX", "special": "", "total": 5, "unseen": 2},
        {"name": "Archive", "special": "archive", "total": 0, "unseen": 0},
        {"name": "Junk", "special": "junk", "total": 0, "unseen": 0},
        {"name": "Lists/dev", "special": "", "total": 1, "unseen": 0},
        {"name": "Sent", "special": "sent", "total": 2, "unseen": 1},
    ]
    lines = yubin(["folders", "--maildir", str(md)]).stdout.decode().splitlines()
    assert lines[0].split() == ["5", "2", "INBOX"]
    assert lines[4].split() == ["2", "1", "Sent", "(sent)"]
    # rm makes Trash, which then shows
    yubin(["rm", "1", "--maildir", str(md)])
    names = [f["name"] for f in json.loads(yubin(["folders", "--json", "--maildir",
                                                  str(md)]).stdout)]
    assert names == ["INBOX", "Archive", "Junk", "Lists/dev", "Sent", "Trash"]


def test_bad_folder_names(md):
    for name, why in (("../x", b'"..\" is not allowed'), (".hidden", b"starts with '.'"),
                      ("/abs", b"starts or ends with '/'"), ("a/", b"starts or ends with '/'"),
                      ("a\x1bb", b"control character"), ("x" * 256, b"longer than 255 bytes"),
                      ("Nope", b'no folder "Nope"')):
        r = yubin(["ls", name, "--maildir", str(md)], check=False)
        assert r.returncode == 1, name
        assert r.stderr.startswith(b"yubin ls: ") and why in r.stderr, r.stderr
        assert b"\x1b" not in r.stderr
        r = yubin(["read", "1", "--folder", name, "--maildir", str(md)], check=False)
        assert r.returncode == 1 and why in r.stderr


def test_errors_and_usage(md):
    r = yubin(["read", "9", "--maildir", str(md)], check=False)
    assert r.returncode == 1 and r.stderr == b"yubin read: no message 9 (5 in INBOX)\n"
    for args in (["read"], ["read", "abc"], ["read", "0"], ["read", "1", "--json"],
                 ["read", "1", "--bogus"], ["ls", "a", "b"], ["rm"], ["save", "1"],
                 ["read", "1", "--width", "wide"], ["ls", "--tls", "maybe"],
                 ["folders", "--folder", "x"], ["read", "1", "2"], ["ls", "--maildir"]):
        r = yubin(args + (["--maildir", str(md)] if args[-1] != "--maildir" else []),
                  check=False)
        assert r.returncode == 2, args
        assert r.stderr.startswith(f"yubin {args[0]}: ".encode()) and b"usage:" in r.stderr
    r = yubin(["mv", "--help"])
    assert r.stdout.startswith(b"usage: yubin mv N... FOLDER")
    # nothing was touched by all that
    assert files(md / "new") == ["1000.M1P1.host", "4000.M4P4.host"]


def test_symlinked_folder_is_not_written(md, tmp_path):
    outside = tmp_path / "outside"
    for s in ("cur", "new", "tmp"):
        (outside / s).mkdir(parents=True)
    (md / ".Evil").symlink_to(outside)
    (md / "cur" / "6000.M6P6.host:2,S").symlink_to("/etc/hostname")
    assert len(ls_json(md)) == 5                      # the symlinked message is not listed
    r = yubin(["mv", "1", "Evil", "--maildir", str(md)], check=False)
    assert r.returncode == 1 and b"symlink" in r.stderr
    assert "Evil" not in [f["name"] for f in json.loads(
        yubin(["folders", "--json", "--maildir", str(md)]).stdout)]
    assert files(outside / "cur") == [] and files(outside / "new") == []


def write_conf(base, text):
    conf = base / "yubin"
    conf.mkdir(exist_ok=True)
    (conf / "client.conf").write_text(text)
    os.chmod(conf / "client.conf", 0o600)
    return {"XDG_CONFIG_HOME": str(base)}


def test_account_maildir_and_local(md, tmp_path):
    env = write_conf(tmp_path, f"[account pop]\naddress = me@example.test\n"
                     f"smtp = 127.0.0.1:587\nincoming = pop3s://127.0.0.1\nmaildir = {md}\n"
                     f"[account imap]\naddress = me@example.test\nsmtp = 127.0.0.1:587\n"
                     f"incoming = imap://127.0.0.1:1\nincoming_tls = none\n"
                     f"password_cmd = echo x\nmaildir = {md}\ndefault = yes\n")
    r = yubin(["ls", "--json", "--account", "pop"], env=env)
    assert [x["subject"] for x in json.loads(r.stdout)] == SUBJECTS
    # an IMAP account's Maildir with --local
    r = yubin(["ls", "--json", "--local"], env=env)
    assert [x["subject"] for x in json.loads(r.stdout)] == SUBJECTS
    r = yubin(["folders", "--local", "--account", "imap"], env=env)
    assert b"INBOX" in r.stdout
    # without --local it goes to the IMAP server (nothing listens on port 1)
    r = yubin(["ls", "--account", "imap"], env=env, check=False)
    assert r.returncode in (1, 75) and r.stderr.startswith(b"yubin ls: ")
    r = yubin(["ls", "--account", "nosuch"], env=env, check=False)
    assert r.returncode == 1 and b'no account "nosuch"' in r.stderr
    # --server: the incoming URL syntax of client.conf
    r = yubin(["ls", "--server", "imaps://127.0.0.1:1", "--user", "u", "--password-cmd",
               "echo x", "--cafile", "/nonexistent"], env=env, check=False)
    assert r.returncode in (1, 75) and r.stderr.startswith(b"yubin ls: ")
    r = yubin(["ls", "--server", "127.0.0.1:143"], env=env, check=False)
    assert r.returncode == 2 and b"incoming must start with imap://" in r.stderr
    r = yubin(["ls", "--server", "imaps://127.0.0.1", "--tls", "none"], env=env, check=False)
    assert r.returncode == 2 and b"always TLS" in r.stderr
    # a POP3 --server: the account's Maildir
    r = yubin(["ls", "--json", "--account", "pop", "--server", "pop3://127.0.0.1:1"], env=env)
    assert len(json.loads(r.stdout)) == 5


def test_no_maildir(tmp_path):
    env = write_conf(tmp_path, "")
    r = yubin(["ls"], env={**env, "HOME": str(tmp_path)}, check=False)
    assert r.returncode == 1 and b"yubin ls: no Maildir: give --maildir DIR" in r.stderr
    # a Maildir that does not exist yet is an empty INBOX
    r = yubin(["ls", "--json", "--maildir", str(tmp_path / "none")])
    assert json.loads(r.stdout) == []
    r = yubin(["read", "1", "--maildir", str(tmp_path / "none")], check=False)
    assert r.returncode == 1 and b"no message 1 (0 in INBOX)" in r.stderr
