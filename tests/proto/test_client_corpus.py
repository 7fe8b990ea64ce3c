"""The mail reader against a corpus of tricky real-world message shapes.

Each message is built here byte by byte and written straight into a
throw-away Maildir's new/ (no server), then read back with the CLI the way a
person would: `yubin ls --json`, `yubin read N` (rendering by
src/mail/reader.c) and `yubin save N PART DIR`.  The assertions are the exact
text a careful user must see: Japanese in every charset and shape mail has
it in (ISO-2022-JP encoded words split anywhere, Shift_JIS/CP932 with the
NEC and IBM extensions, EUC-JP, mislabeled and unlabeled text), forwards
three deep, broken MIME, attachment names in RFC 2231 and RFC 2047 and with
paths.  Whatever the message, the output is valid UTF-8 without C0/C1
controls (LF and tab aside) or ESC, and the command exits 0.
"""

import base64
import json
import subprocess

import pytest

import yubintest as yt

SANITIZER_MARKS = yt.SANITIZER_MARKS
TIMEOUT = 60

NIHONGO = "日本語"
KENMEI = "【重要】会議室の予約について（再送）"
TARO = "山田 太郎"


# ---------------------------------------------------------------- helpers ----

def bword(data, charset="ISO-2022-JP", enc="B"):
    """One RFC 2047 encoded-word for the bytes data (B or Q)."""
    if isinstance(data, str):
        data = data.encode(charset)
    if enc.upper() == "B":
        text = base64.b64encode(data).decode()
    else:
        text = "".join(chr(c) if (0x30 <= c <= 0x39 or 0x41 <= c <= 0x5a or 0x61 <= c <= 0x7a)
                       else "_" if c == 0x20 else "=%02X" % c for c in data)
    return f"=?{charset}?{enc}?{text}?="


def chunked_words(data, size, charset="ISO-2022-JP", enc="B", sep=" "):
    """data cut every size bytes (inside characters and escape sequences
    alike), one encoded-word per piece."""
    return sep.join(bword(data[i:i + size], charset, enc) for i in range(0, len(data), size))


def jis(text):
    return text.encode("iso-2022-jp")


def message(headers, body=b"body\r\n", nl=b"\r\n"):
    """A message from (name, value) pairs (str or bytes) and a body."""
    out = b""
    for name, value in headers:
        if isinstance(value, str):
            value = value.encode()
        out += name.encode() + b": " + value + nl
    if isinstance(body, str):
        body = body.encode()
    return out + nl + body


def check_safe(raw):
    """Terminal-safe: valid UTF-8, no C0 but LF and tab, no DEL, no C1."""
    text = raw.decode("utf-8")            # raises on invalid UTF-8
    for i, ch in enumerate(text):
        cp = ord(ch)
        assert not (cp < 0x20 and ch not in "\n\t"), f"control {cp:#x} at {i}: {text[:400]!r}"
        assert cp != 0x7f and not 0x80 <= cp <= 0x9f, f"DEL/C1 {cp:#x} at {i}: {text[:400]!r}"
    return text


class Box:
    """A Maildir in the test's own temp dir, the messages written straight
    into new/; yubin numbers them by their Date fields (else mtime)."""

    def __init__(self, tmp_path, *msgs):
        self.md = tmp_path / "Maildir"
        for sub in ("new", "cur", "tmp"):
            (self.md / sub).mkdir(parents=True)
        for i, m in enumerate(msgs):
            (self.md / "new" / f"17000000{i:02d}.corpus{i}.example").write_bytes(m)

    def run(self, *args, check=True):
        r = subprocess.run([yt.YUBIN, *args, "--maildir", str(self.md)], capture_output=True,
                           stdin=subprocess.DEVNULL, env=yt.sanitizer_env(), timeout=TIMEOUT)
        err = r.stderr.decode(errors="replace")
        assert not any(m in err for m in SANITIZER_MARKS), err
        if check:
            assert r.returncode == 0, f"yubin {' '.join(args)}: {r.returncode} {err}"
        return r

    def read(self, n=1, *args):
        return check_safe(self.run("read", str(n), *args).stdout)

    def ls(self):
        r = self.run("ls", "--json")
        check_safe(r.stdout)
        return json.loads(r.stdout)

    def save(self, n, part, dest, check=True):
        dest.mkdir(exist_ok=True)
        r = self.run("save", str(n), part, str(dest), check=check)
        check_safe(r.stdout)
        return r


def one(tmp_path, msg):
    return Box(tmp_path, msg)


def rendered(headers_out, body_out):
    """The whole rendering of a message without attachments."""
    return "".join(f"{k}: {v}\n" for k, v in headers_out) + "\n" + body_out


# ------------------------------------------------- ISO-2022-JP subjects ----

KEN = jis(KENMEI)
SUBJECTS = [
    ("one B word", bword(KEN), KENMEI),
    ("lower-case charset and encoding", bword(KEN, "iso-2022-jp", "b"), KENMEI),
    ("mixed-case charset", bword(KEN, "Iso-2022-Jp"), KENMEI),
    ("words split every 5 bytes", chunked_words(KEN, 5), KENMEI),
    ("words split every byte", chunked_words(KEN, 1), KENMEI),
    ("split inside the first escape", bword(KEN[:1]) + " " + bword(KEN[1:]), KENMEI),
    ("split inside the last escape", bword(KEN[:-2]) + " " + bword(KEN[-2:]), KENMEI),
    ("split inside a character", bword(KEN[:4]) + "\t" + bword(KEN[4:]), KENMEI),
    ("split words folded", chunked_words(KEN, 7, sep="\r\n "), KENMEI),
    ("split words folded with tabs", chunked_words(KEN, 6, sep="\r\n\t"), KENMEI),
    ("Q encoding", bword(KEN, enc="Q"), KENMEI),
    ("q encoding split", chunked_words(KEN, 3, "iso-2022-jp", "q"), KENMEI),
    ("B and Q words mixed", bword(KEN[:9]) + " " + bword(KEN[9:], enc="Q"), KENMEI),
    ("mixed with ASCII",
     "Re: [ml:00042] " + bword(jis(NIHONGO)) + " (was: test)",
     f"Re: [ml:00042] {NIHONGO} (was: test)"),
    ("ASCII between words keeps its blanks",
     bword(jis("日本")) + " and " + bword(jis("語")), "日本 and 語"),
    ("folded after ASCII",
     "Re: Fwd:\r\n " + bword(jis("会議")) + "\r\n " + bword(jis("の予約")) + " done",
     "Re: Fwd: 会議の予約 done"),
    ("each word self-contained, folded (what encoders write)",
     "\r\n ".join(bword(jis(p)) for p in ("【重要】会議室", "の予約について", "（再送）")),
     KENMEI),
    ("no return to ASCII at the end", bword(jis(NIHONGO)[:-3]) + " tail",
     NIHONGO + " tail"),
    ("half-width katakana (ESC ( I)", bword(b"\x1b(I6E\x1b(B") + " kana", "ｶﾅ kana"),
    ("RFC 2231 language in the word", bword(KEN, "ISO-2022-JP*ja"), KENMEI),
    ("unknown charset shown raw", "=?x-unknown-jp?B?GyRCRnxLXDhsGyhC?= ok",
     "=?x-unknown-jp?B?GyRCRnxLXDhsGyhC?= ok"),
    ("unknown charset with an ESC inside stays raw", "=?x-foo?Q?=1B[31mred?=",
     "=?x-foo?Q?=1B[31mred?="),
    ("unknown charset next to a good word",
     "=?x-bogus?B?GyRCRnwbKEI=?= " + bword(jis(NIHONGO)),
     "=?x-bogus?B?GyRCRnwbKEI=?= " + NIHONGO),
    ("bad base64 in a word shown raw", "=?ISO-2022-JP?B?Gy*RC?= x", "=?ISO-2022-JP?B?Gy*RC?= x"),
    ("8-bit garbage inside an ISO-2022-JP word", bword(b"a\xe9z"), "a\ufffdz"),
    # Windows (CP50221): NEC row 13 and the IBM rows in ISO-2022-JP
    ("NEC and IBM characters", bword(b"\x1b$B-!-5-j|b\x1b(B"), "①Ⅰ㈱髙"),
]


@pytest.mark.parametrize("value,want", [c[1:] for c in SUBJECTS], ids=[c[0] for c in SUBJECTS])
def test_subject(tmp_path, value, want):
    box = one(tmp_path, message([("Subject", value)]))
    assert box.read() == rendered([("Subject", want)], "body\n")
    (item,) = box.ls()
    assert item["subject"] == want


FROMS = [
    ("encoded display name", bword(jis(TARO)) + " <taro@example.jp>",
     f"{TARO} <taro@example.jp>"),
    ("display name split in a character",
     chunked_words(jis(TARO), 3) + " <taro@example.jp>", f"{TARO} <taro@example.jp>"),
    ("quoted encoded word (not RFC 2047, but common)",
     '"' + bword(jis(TARO)) + '" <taro@example.jp>', f'"{TARO}" <taro@example.jp>'),
    ("lower-case q", bword(jis("山田"), "iso-2022-jp", "q") + " <y@example.jp>",
     "山田 <y@example.jp>"),
]


@pytest.mark.parametrize("value,want", [c[1:] for c in FROMS], ids=[c[0] for c in FROMS])
def test_from_display_name(tmp_path, value, want):
    box = one(tmp_path, message([("From", value), ("Subject", "s")]))
    assert box.read() == rendered([("From", want), ("Subject", "s")], "body\n")
    (item,) = box.ls()
    assert item["from"] == want


def test_field_names_any_case_first_one_wins(tmp_path):
    msg = b"SUBJECT: " + bword(jis("最初")).encode() + b"\r\nsubject : second\r\n" \
        b"from\t: a@example.jp\r\n\r\nbody\r\n"
    assert one(tmp_path, msg).read() == rendered([("From", "a@example.jp"),
                                                  ("Subject", "最初")], "body\n")


def test_address_lists_and_usual_fields_in_order(tmp_path):
    to = (bword(jis("佐藤")) + " <sato@example.jp>,\r\n " + bword(jis("鈴木"), "iso-2022-jp", "q")
          + " <suzuki@example.jp>")
    msg = message([("Subject", bword(jis(NIHONGO))), ("X-Mailer", "hidden"),
                   ("Cc", bword(jis("高橋")) + " <t@example.jp>"), ("To", to),
                   ("From", bword(jis(TARO)) + " <taro@example.jp>"),
                   ("Date", "Tue, 1 Dec 2026 10:00:00 +0900")])
    box = one(tmp_path, msg)
    assert box.read() == rendered([
        ("Date", "Tue, 1 Dec 2026 10:00:00 +0900"),
        ("From", f"{TARO} <taro@example.jp>"),
        ("To", "佐藤 <sato@example.jp>, 鈴木 <suzuki@example.jp>"),
        ("Cc", "高橋 <t@example.jp>"),
        ("Subject", NIHONGO)], "body\n")


# ------------------------------------------------------------- bodies ----

JP_TEXT = "こんにちは、世界。\r\n日本語のテキストです。\r\n"
JP_SHOWN = JP_TEXT.replace("\r\n", "\n")
# NEC row 13 (①, Ⅰ, ㈱), NEC-selected IBM (纊, 髙), IBM (ⅰ), and the
# characters where Microsoft's mapping differs from JIS: 0x8160 is U+FF5E
# FULLWIDTH TILDE (not U+301C WAVE DASH), 0x817C U+FF0D, 0x8161 U+2225,
# 0x815F U+FF3C.
CP932_BYTES = ("①②⑳Ⅰ㈱ 纊髙 10時～12時 －∥＼ 日本語 ".encode("cp932") +
               b"\xfa\x40\xfa\x58\xfa\x5c\xfb\xfc\r\n")     # IBM: ⅰ㈱纊髙
CP932_TEXT = CP932_BYTES.decode("cp932")
assert b"\x81\x60" in CP932_BYTES and b"\x87\x40" in CP932_BYTES and b"\xfa\x40" in CP932_BYTES


def text_part(charset, body, cte=None, ctype="text/plain", subject="body test"):
    h = [("Subject", subject), ("MIME-Version", "1.0")]
    h.append(("Content-Type", ctype if charset is None else f"{ctype}; charset={charset}"))
    if cte:
        h.append(("Content-Transfer-Encoding", cte))
    return message(h, body)


def b64body(data):
    return base64.encodebytes(data).replace(b"\n", b"\r\n")


def qpbody(data, width=40):
    """Quoted-printable with CR LF line ends and soft breaks every width
    characters (inside multibyte characters, as encoders do)."""
    out = []
    for line in data.split(b"\r\n"):
        enc = [bytes([c]) if 33 <= c <= 126 and c != 0x3d or c == 0x20 else b"=%02X" % c
               for c in line]
        if enc and enc[-1] == b" ":
            enc[-1] = b"=20"
        cur = b""
        for e in enc:
            if len(cur) + len(e) > width:
                out.append(cur + b"=")
                cur = b""
            cur += e
        out.append(cur)
    return b"\r\n".join(out)


BODIES = [
    ("iso-2022-jp 7bit", text_part("ISO-2022-JP", jis(JP_TEXT), "7bit"), JP_SHOWN),
    ("iso-2022-jp with half-width katakana",
     text_part("iso-2022-jp", jis("半角") + b"\x1b(I6E\x1b(B\r\n"), "半角ｶﾅ\n"),
    ("iso-2022-jp base64", text_part("ISO-2022-JP", b64body(jis(JP_TEXT)), "base64"), JP_SHOWN),
    ("shift_jis 8bit with NEC and IBM extensions",
     text_part("Shift_JIS", CP932_BYTES, "8bit"), CP932_TEXT.replace("\r\n", "\n")),
    ("shift_jis base64", text_part('"Shift_JIS"', b64body(CP932_BYTES), "base64"),
     CP932_TEXT.replace("\r\n", "\n")),
    ("cp932 label", text_part("CP932", CP932_BYTES, "8bit"), CP932_TEXT.replace("\r\n", "\n")),
    ("windows-31j label base64", text_part("Windows-31J", b64body(CP932_BYTES), "base64"),
     CP932_TEXT.replace("\r\n", "\n")),
    ("euc-jp quoted-printable",
     text_part("EUC-JP", qpbody("日本語のテキスト、半角ｶﾅ、波〜\r\n".encode("euc_jp")),
               "quoted-printable"),
     "日本語のテキスト、半角ｶﾅ、波〜\n"),
    ("utf-8 with a BOM", text_part("UTF-8", "\ufeffこんにちは\r\n2行目\r\n".encode(), "8bit"),
     "こんにちは\n2行目\n"),
    ("utf-8 base64 with a BOM", text_part("utf-8", b64body("\ufeffBOM付き\r\n".encode()),
                                          "base64"), "BOM付き\n"),
    ("x-sjis", text_part("x-sjis", CP932_BYTES), CP932_TEXT.replace("\r\n", "\n")),
    ("Shift-JIS", text_part("Shift-JIS", CP932_BYTES), CP932_TEXT.replace("\r\n", "\n")),
    ("SJIS", text_part("SJIS", CP932_BYTES), CP932_TEXT.replace("\r\n", "\n")),
    ("csISO2022JP", text_part("csISO2022JP", jis(JP_TEXT)), JP_SHOWN),
    ("utf8", text_part("utf8", JP_TEXT.encode(), "8bit"), JP_SHOWN),
    ("UTF8 quoted", text_part('"UTF8"', JP_TEXT.encode(), "8bit"), JP_SHOWN),
    ("eucJP", text_part("eucJP", JP_TEXT.encode("euc_jp")), JP_SHOWN),
    ("x-euc-jp", text_part("x-euc-jp", JP_TEXT.encode("euc_jp")), JP_SHOWN),
    ("charset followed by a comment (RFC 2045 5.1)",
     text_part("ISO-8859-1 (Western)", "café\r\n".encode("latin-1")), "café\n"),
    ("Shift_JIS followed by a comment", text_part("Shift_JIS (Japanese)", CP932_BYTES),
     CP932_TEXT.replace("\r\n", "\n")),
    ("iso-2022-jp from Windows: NEC and IBM rows",
     text_part("ISO-2022-JP", b"\x1b$B-!-5-j!A|b\x1b(B\r\n"), "①Ⅰ㈱～髙\n"),
    # mislabeled
    ("iso-2022-jp labelled us-ascii", text_part("us-ascii", jis(JP_TEXT)), JP_SHOWN),
    ("iso-2022-jp without charset", text_part(None, jis(JP_TEXT)), JP_SHOWN),
    ("iso-2022-jp without Content-Type",
     message([("Subject", "body test")], jis(JP_TEXT)), JP_SHOWN),
    ("iso-2022-jp labelled Shift_JIS", text_part("Shift_JIS", jis(JP_TEXT)), JP_SHOWN),
    ("shift_jis labelled iso-2022-jp", text_part("ISO-2022-JP", CP932_BYTES, "8bit"),
     CP932_TEXT.replace("\r\n", "\n")),
    ("euc-jp labelled iso-2022-jp", text_part("ISO-2022-JP", JP_TEXT.encode("euc_jp")),
     JP_SHOWN),
    ("utf-8 labelled us-ascii", text_part("us-ascii", JP_TEXT.encode(), "8bit"), JP_SHOWN),
    ("shift_jis labelled us-ascii", text_part("us-ascii", CP932_BYTES, "8bit"),
     CP932_TEXT.replace("\r\n", "\n")),
    ("euc-jp without charset", text_part(None, JP_TEXT.encode("euc_jp"), "8bit"), JP_SHOWN),
    ("shift_jis without Content-Type",
     message([("Subject", "body test")], JP_TEXT.encode("cp932")), JP_SHOWN),
]


@pytest.mark.parametrize("msg,want", [c[1:] for c in BODIES], ids=[c[0] for c in BODIES])
def test_body(tmp_path, msg, want):
    assert one(tmp_path, msg).read() == rendered([("Subject", "body test")], want)


# ------------------------------------------------------ nested forwards ----

def multipart(subtype, boundary, parts, headers=(), preamble=b"", close=True):
    """A multipart entity: headers (with the Content-Type) and its body."""
    body = preamble
    for p in parts:
        body += b"--" + boundary.encode() + b"\r\n" + p + b"\r\n"
    if close:
        body += b"--" + boundary.encode() + b"--\r\n"
    return message(list(headers) +
                   [("Content-Type", f'multipart/{subtype}; boundary="{boundary}"')], body)


def part(ctype, body, *extra):
    """A body part: Content-Type, extra (name, value) fields, body."""
    return message([("Content-Type", ctype), *extra], body)


def forwards():
    """Three forwards deep: each forward is a multipart/mixed holding its
    own text and the next message/rfc822, each subject in its own
    encoding."""
    l3 = message([("From", bword(jis("三郎")) + " <saburo@example.jp>"),
                  ("Date", "Mon, 30 Nov 2026 09:00:00 +0900"),
                  ("Subject", bword("第三層の件".encode("cp932"), "Shift_JIS")),
                  ("MIME-Version", "1.0"), ("Content-Type", "text/plain; charset=Shift_JIS"),
                  ("Content-Transfer-Encoding", "8bit")], "三層目の本文①\r\n".encode("cp932"))
    l2 = multipart("mixed", "L2", [
        part("text/plain; charset=UTF-8", qpbody("二層目の本文\r\n".encode()),
             ("Content-Transfer-Encoding", "quoted-printable")),
        part("message/rfc822", l3)],
        [("From", bword("次郎", "UTF-8", "Q") + " <jiro@example.jp>"),
         ("Subject", "Fwd: " + bword("第二層", "UTF-8", "Q")), ("MIME-Version", "1.0")])
    l1 = multipart("mixed", "L1", [
        part("text/plain; charset=ISO-2022-JP", jis("一層目の本文\r\n")),
        part("message/rfc822", l2)],
        [("From", bword(jis("一郎")) + " <ichiro@example.jp>"),
         ("Subject", "Fwd: " + chunked_words(jis("第一層"), 4)), ("MIME-Version", "1.0")])
    top = multipart("mixed", "TOP", [
        part("text/plain; charset=utf-8", "上の本文\r\n".encode()),
        part("message/rfc822", l1),
        part("text/plain; charset=utf-8", "転送の後\r\n".encode())],
        [("From", "top@example.jp"), ("Subject", "Fwd: " + bword(jis("三段転送"))),
         ("MIME-Version", "1.0")])
    return top, l1, l2, l3


def size_str(n):
    return f"{n} bytes" if n < 1024 else f"{n / 1024:.1f} KiB"


def test_forwards_three_deep(tmp_path):
    top, l1, l2, l3 = forwards()
    box = one(tmp_path, top)
    sep = "---------- Forwarded message (part {}) ----------\n"
    end = "---------- End of forwarded message ----------\n"
    assert box.read() == (
        "From: top@example.jp\nSubject: Fwd: 三段転送\n\n"
        "上の本文\n\n" + sep.format("2") +
        "  From: 一郎 <ichiro@example.jp>\n  Subject: Fwd: 第一層\n\n"
        "一層目の本文\n\n" + sep.format("2.2") +
        "    From: 次郎 <jiro@example.jp>\n    Subject: Fwd: 第二層\n\n"
        "二層目の本文\n\n" + sep.format("2.2.2") +
        "      Date: Mon, 30 Nov 2026 09:00:00 +0900\n"
        "      From: 三郎 <saburo@example.jp>\n      Subject: 第三層の件\n\n"
        "三層目の本文①\n\n" + end + "\n" + end + "\n" + end + "\n"
        "転送の後\n\n"
        "Attachments:\n"
        f"  [2] message/rfc822 ({size_str(len(l1))})\n"
        f"  [2.2] message/rfc822 ({size_str(len(l2))})\n"
        f"  [2.2.2] message/rfc822 ({size_str(len(l3))})\n")
    assert box.ls()[0]["subject"] == "Fwd: 三段転送"
    # each forward saves as the message it is
    for sec, want in (("2", l1), ("2.2", l2), ("2.2.2", l3)):
        dest = tmp_path / f"save-{sec}"
        r = box.save(1, sec, dest)
        (f,) = list(dest.iterdir())
        assert f.read_bytes() == want
        assert r.stdout.decode() == f"saved {f} ({len(want)} bytes)\n"


# ---------------------------------------------------------- broken MIME ----

def subj(s="s"):
    return [("Subject", s)]


BROKEN = [
    ("missing final boundary",
     multipart("mixed", "b1", [part("text/plain; charset=utf-8", b"first"),
                               part("text/plain; charset=ISO-2022-JP", jis("閉じない二番目"))],
               subj(), close=False),
     "first\n\n閉じない二番目\n"),
    ("close delimiter cut short", message(
        subj() + [("Content-Type", "multipart/mixed; boundary=b1")],
        b"--b1\r\nContent-Type: text/plain\r\n\r\nonly part\r\n--b1-"),
     "only part\n\n"),  # "--b1-" is a delimiter (RFC 2046 5.1.1: a prefix is enough)
    ("boundary never in the body", message(
        subj() + [("Content-Type", 'multipart/mixed; boundary="not-here"')],
        b"--other\r\nContent-Type: text/plain\r\n\r\ntext\r\n--other--\r\n"),
     "--other\nContent-Type: text/plain\n\ntext\n--other--\n"),
    ("multipart without boundary parameter", message(
        subj() + [("Content-Type", "multipart/mixed")], b"the whole body\r\nas text\r\n"),
     "the whole body\nas text\n"),
    ("no Content-Type", message(subj(), b"plain old text\r\n"), "plain old text\n"),
    ("Content-Type garbage", message(subj() + [("Content-Type", "garbage")], b"text\r\n"),
     "text\n"),
    ("base64 with bad characters", message(
        subj() + [("Content-Type", "text/plain; charset=utf-8"),
                  ("Content-Transfer-Encoding", "base64")],
        b"5pel5p*ys6Kqe!!\r\n  44GT4 4KT44Gr44Gh44Gv\r\n%%%\r\n"), "日本語こんにちは"),
    ("base64 missing padding", message(
        subj() + [("Content-Transfer-Encoding", "base64")], b"YWJjZGU\r\n"), "abcde"),
    ("base64 cut inside a character", message(
        subj() + [("Content-Type", "text/plain; charset=utf-8"),
                  ("Content-Transfer-Encoding", "base64")], b"5pel5pys6K\r\n"),
     "日本\ufffd"),
    ("quoted-printable bad escapes and trailing =", message(
        subj() + [("Content-Type", "text/plain; charset=utf-8"),
                  ("Content-Transfer-Encoding", "quoted-printable")],
        b"a=ZZb =4 x=e3=81=82 =\r\njoined=3\r\nend="), "a=ZZb =4 xあ joined=3\nend"),
    ("bogus charset, UTF-8 text", text_part("x-bogus", "ok ✓ 日本語\r\n".encode(), subject="s"),
     "ok ✓ 日本語\n"),
    ("charset with iconv suffix", text_part('"utf-8//TRANSLIT"', "été\r\n".encode(), subject="s"),
     "été\n"),
    ("bogus charset, invalid bytes", text_part("x-bogus", b"caf\xe9 ok\r\n", subject="s"),
     "caf\ufffd ok\n"),
    ("wrong charset: Latin-1 labelled UTF-8", text_part("utf-8", b"caf\xe9\r\n", subject="s"),
     "caf\ufffd\n"),
    ("empty body", message(subj(), b""), ""),
    ("empty body, text/plain", message(subj() + [("Content-Type", "text/plain")], b""), ""),
    # no part at all: the body is shown as it is
    ("empty multipart", multipart("mixed", "e", [], subj()), "--e--\n"),
]


@pytest.mark.parametrize("msg,want", [c[1:] for c in BROKEN], ids=[c[0] for c in BROKEN])
def test_broken_mime(tmp_path, msg, want):
    out = one(tmp_path, msg).read()
    if want == "":
        assert out == "Subject: s\n\n"
    else:
        head, body = out.split("\n\n", 1)
        assert head == "Subject: s"
        assert body == (want if want.endswith("\n") else want + "\n")


RAW_HEADERS = [
    ("raw ISO-2022-JP subject", jis(NIHONGO) + b" raw", NIHONGO + " raw"),
    ("raw UTF-8 subject", "件名 raw UTF-8".encode(), "件名 raw UTF-8"),
    ("raw UTF-8 then encoded", "件名 ".encode() + bword(jis("続き")).encode(), "件名 続き"),
    ("raw Shift_JIS subject", "件名①～".encode("cp932") + b" sjis", "件名①～ sjis"),
    ("raw EUC-JP subject", "件名".encode("euc_jp") + b" euc", "件名 euc"),
    ("raw Latin-1 stays U+FFFD", b"caf\xe9 au lait", "caf\ufffd au lait"),
    ("raw ESC and C1", b"a\x1b[31mb\xc2\x9bc", "a^[[31mb\ufffdc"),
]


@pytest.mark.parametrize("value,want", [c[1:] for c in RAW_HEADERS],
                         ids=[c[0] for c in RAW_HEADERS])
def test_raw_8bit_header(tmp_path, value, want):
    box = one(tmp_path, message([("Subject", value)]))
    assert box.read() == rendered([("Subject", want)], "body\n")


@pytest.mark.parametrize("value,want", [pytest.param(*c[1:], id=c[0])
                                        for c in RAW_HEADERS[:-1]])
def test_ls_raw_8bit_header(tmp_path, value, want):
    (item,) = one(tmp_path, message([("Subject", value)])).ls()
    assert item["subject"] == want


def test_raw_shift_jis_display_name(tmp_path):
    box = one(tmp_path, message([("From", TARO.encode("cp932") + b" <taro@example.jp>"),
                                 ("Subject", "s")]))
    assert box.read() == rendered([("From", f"{TARO} <taro@example.jp>"), ("Subject", "s")],
                                  "body\n")


def test_long_lines(tmp_path):
    """50,000-byte lines: ASCII, Shift_JIS (25,000 characters), an
    unbroken base64 line, and a 50,000-byte Subject."""
    ascii_line = "x" * 50000
    jp_line = "あ" * 25000
    msgs = [
        message(subj(), (ascii_line + "\r\nend\r\n").encode()),
        text_part("Shift_JIS", (jp_line + "\r\nend\r\n").encode("cp932")),
        text_part("utf-8", base64.b64encode((jp_line + "\r\nend\r\n").encode()), "base64"),
        message([("Subject", "y" * 50000)]),
    ]
    for i, m in enumerate(msgs):
        box = Box(tmp_path / str(i), m)
        out = box.read()
        if i == 0:
            assert out == rendered(subj(), ascii_line + "\nend\n")
        elif i < 3:
            assert out == rendered([("Subject", "body test")], jp_line + "\nend\n")
        else:
            assert out == rendered([("Subject", "y" * 50000)], "body\n")
        assert box.ls()[0]["n"] == 1
    # wrapped at a width, wide characters two columns each
    out = Box(tmp_path / "w", msgs[1]).read(1, "--width", "72")
    lines = out.split("\n\n", 1)[1].split("\n")
    assert lines[:-2] == ["あ" * 36] * (25000 // 36) + ["あ" * (25000 % 36)]
    assert lines[-2:] == ["end", ""]


def nested_multiparts(depth):
    """depth multipart/mixed levels, each with its text and the next level."""
    inner = part("text/plain", b"innermost")
    for lvl in reversed(range(depth)):
        inner = multipart("mixed", f"=_L{lvl:02d}_=", [part("text/plain", f"level {lvl}".encode()),
                                                 inner])
    return b"Subject: deep\r\n" + inner


def test_multipart_deeper_than_cap(tmp_path):
    depth = 25
    cap = 20  # MIME_DEPTH_MAX: the multipart at depth 20 is a leaf, listed
    msg = nested_multiparts(depth)
    box = one(tmp_path, msg)
    out = box.read()
    shown = "\n\n".join(f"level {i}" for i in range(cap))
    head, rest = out.split("\n\n", 1)
    assert head == "Subject: deep"
    assert rest.startswith(shown + "\n\nAttachments:\n")
    section = ".".join(["2"] * cap)
    assert rest.endswith("\n") and rest.count("\n  [") == 1
    assert f"  [{section}] multipart/mixed (" in rest
    assert "innermost" not in out and f"level {cap}" not in out
    # the capped part saves as its raw body
    dest = tmp_path / "deep"
    box.save(1, section, dest)
    (f,) = list(dest.iterdir())
    assert f.name == f"part-{section}.bin"
    data = f.read_bytes()
    assert b"level 20" in data and b"innermost" in data and data.endswith(b"--=_L20_=--\r\n")


def test_line_ends_lf_and_crlf(tmp_path):
    top = forwards()[0]
    lf = top.replace(b"\r\n", b"\n")
    assert b"\r" not in lf
    crlf_out = Box(tmp_path / "crlf", top).read()
    lf_box = Box(tmp_path / "lf", lf)
    lf_out = lf_box.read()
    # the same text; only the byte sizes of the forwards differ
    strip = [line for line in crlf_out.split("\n") if not line.startswith("  [")]
    assert [line for line in lf_out.split("\n") if not line.startswith("  [")] == strip
    l1_lf = forwards()[1].replace(b"\r\n", b"\n")
    assert f"  [2] message/rfc822 ({size_str(len(l1_lf))})" in lf_out
    # mixed line ends in one message
    mixed = b"Subject: mixed\nContent-Type: text/plain\r\n\nline one\r\nline two\nend"
    assert Box(tmp_path / "mixed", mixed).read() == rendered(
        [("Subject", "mixed")], "line one\nline two\nend\n")


def test_header_only_message(tmp_path):
    for i, m in enumerate([
            b"From: a@example.jp\r\nSubject: " + bword(jis(NIHONGO)).encode() + b"\r\n",
            b"From: a@example.jp\r\nSubject: " + bword(jis(NIHONGO)).encode(),
            b"Subject: " + bword(jis(NIHONGO)).encode() + b"\n From: not a field"]):
        box = Box(tmp_path / str(i), m)
        out = box.read()
        if i < 2:
            assert out == rendered([("From", "a@example.jp"), ("Subject", NIHONGO)], "")
        else:
            assert out == rendered([("Subject", NIHONGO + " From: not a field")], "")
        assert box.ls()[0]["subject"] == (NIHONGO if i < 2 else NIHONGO + " From: not a field")


def test_empty_file(tmp_path):
    box = one(tmp_path, b"")
    assert box.read() == ""
    (item,) = box.ls()
    assert item["subject"] == "" and item["from"] == "" and item["size"] == 0


def test_no_such_message_is_a_clear_error(tmp_path):
    box = one(tmp_path, message(subj()))
    r = box.run("read", "2", check=False)
    assert r.returncode == 1 and r.stdout == b""
    assert b"no message 2 (1 in " in r.stderr
    r = box.run("save", "1", "9", str(tmp_path), check=False)
    assert r.returncode == 1 and b"message 1 has no part 9" in r.stderr


# ---------------------------------------------------------- attachments ----

def rfc2231(name, data, charset, cut, lang=""):
    """filename*0*=charset'lang'..; filename*1*=..; the percent-encoded
    bytes cut every cut bytes (inside characters and escapes)."""
    enc = "".join(c if c.isascii() and c.isalnum() or c in ".-_" else "%%%02X" % ord(c)
                  for c in data.decode("latin-1"))
    pieces, i = [], 0
    while i < len(enc):
        j, k = i, 0
        while j < len(enc) and k < cut:
            j += 3 if enc[j] == "%" else 1
            k += 1
        pieces.append(enc[i:j])
        i = j
    segs = [f"{name}*{n}*={charset}'{lang}'{p}" if n == 0 else f"{name}*{n}*={p}"
            for n, p in enumerate(pieces)]
    return ";\r\n ".join(segs)


BLOB = bytes(range(256)) * 4


def attachment(disp_params, ctype="application/octet-stream", disp="attachment"):
    return part(ctype, b64body(BLOB), ("Content-Transfer-Encoding", "base64"),
                ("Content-Disposition", f"{disp};\r\n {disp_params}" if disp_params else disp))


NAMES = [
    ("rfc2231 utf-8 continuations split in characters",
     rfc2231("filename", "報告書①.pdf".encode(), "UTF-8", 2), "報告書①.pdf"),
    ("rfc2231 with language", rfc2231("filename", "資料.xlsx".encode(), "utf-8", 4, "ja"),
     "資料.xlsx"),
    ("rfc2231 iso-2022-jp split in escapes", rfc2231("filename", jis("議事録.txt"), "ISO-2022-JP", 1),
     "議事録.txt"),
    ("rfc2231 shift_jis", rfc2231("filename", "見積書①.pdf".encode("cp932"), "Shift_JIS", 3),
     "見積書①.pdf"),
    ("rfc2231 x-sjis", rfc2231("filename", "見積書.pdf".encode("cp932"), "x-sjis", 3),
     "見積書.pdf"),
    ("rfc2231 extended then plain segment",
     "filename*0*=UTF-8''%E5%A0%B1%E5%91%8A;\r\n filename*1=\".pdf\"", "報告.pdf"),
    ("rfc2231 segments out of order",
     "filename*1*=%E5%91%8A.pdf; filename*0*=UTF-8''%E5%A0%B1", "報告.pdf"),
    ("rfc2231 single", "filename*=UTF-8''%E6%97%A5%E6%9C%AC%E8%AA%9E.txt", "日本語.txt"),
    ("encoded-word utf-8", 'filename="' + bword("報告書.pdf", "UTF-8") + '"', "報告書.pdf"),
    ("encoded-words iso-2022-jp folded inside quotes",
     'filename="' + chunked_words(jis("会議資料.docx"), 5, sep="\r\n ") + '"', "会議資料.docx"),
    ("encoded-word q", 'filename="' + bword("été.txt", "ISO-8859-1", "Q") + '"', "été.txt"),
    ("raw utf-8 name", 'filename="写真.jpg"', "写真.jpg"),
    ("raw shift_jis name", b'filename="' + "写真.jpg".encode("cp932") + b'"', "写真.jpg"),
]


@pytest.mark.parametrize("params,want", [c[1:] for c in NAMES], ids=[c[0] for c in NAMES])
def test_attachment_name(tmp_path, params, want):
    if isinstance(params, bytes):
        att = part("application/octet-stream", b64body(BLOB),
                   ("Content-Transfer-Encoding", "base64"),
                   ("Content-Disposition", b"attachment; " + params))
    else:
        att = attachment(params)
    msg = multipart("mixed", "att", [part("text/plain", b"see attached"), att], subj())
    box = one(tmp_path, msg)
    assert box.read() == rendered(subj(), f'see attached\n\nAttachments:\n'
                                  f'  [2] application/octet-stream "{want}" (1.0 KiB)\n')
    dest = tmp_path / "out"
    r = box.save(1, "2", dest)
    assert (dest / want).read_bytes() == BLOB
    assert r.stdout.decode() == f"saved {dest / want} (1024 bytes)\n"


def test_content_type_name_and_both(tmp_path):
    msg = multipart("mixed", "att", [
        part("text/plain", b"x"),
        part("image/png; name=\"" + bword(jis("写真")) + ".png\"", b64body(BLOB),
             ("Content-Transfer-Encoding", "base64")),
        part("application/pdf; name=\"ct-name.pdf\"", b64body(BLOB),
             ("Content-Transfer-Encoding", "base64"),
             ("Content-Disposition", 'attachment; filename="disp-name.pdf"'))], subj())
    box = one(tmp_path, msg)
    assert box.read() == rendered(subj(), 'x\n\nAttachments:\n'
                                  '  [2] image/png "写真.png" (1.0 KiB)\n'
                                  '  [3] application/pdf "disp-name.pdf" (1.0 KiB)\n')


PATHS = [
    ("quoted backslashes", 'filename="..\\..\\x.exe"', "....x.exe"),
    ("unquoted backslashes", "filename=..\\..\\x.exe", "..\\..\\x.exe"),
    ("absolute path", 'filename="/etc/passwd"', "/etc/passwd"),
    ("dot-dot slashes", 'filename="../../../tmp/evil.sh"', "../../../tmp/evil.sh"),
    ("rfc2231 encoded slashes", "filename*=UTF-8''..%2F..%2Fevil.sh", "../../evil.sh"),
    ("encoded-word slashes", 'filename="=?UTF-8?Q?=2E=2E=2F=2E=2E=2Fevil=2Esh?="',
     "../../evil.sh"),
    ("windows drive path", 'filename="C:\\\\Windows\\\\evil.bat"', "C:\\Windows\\evil.bat"),
    ("only dots", 'filename=".."', ".."),
    ("trailing slash", 'filename="dir/"', "dir/"),
    ("hidden file", 'filename=".bashrc"', ".bashrc"),
    ("escape sequence in name", 'filename="a\x1b[2Jb.txt"', "a^[[2Jb.txt"),
]


@pytest.mark.parametrize("params,shown", [c[1:] for c in PATHS], ids=[c[0] for c in PATHS])
def test_attachment_path_stays_inside(tmp_path, params, shown):
    msg = multipart("mixed", "att", [part("text/plain", b"x"), attachment(params)], subj())
    work = tmp_path / "a" / "b" / "c"
    work.mkdir(parents=True)
    box = one(work, msg)
    assert box.read() == rendered(
        subj(), f'x\n\nAttachments:\n  [2] application/octet-stream "{shown}" (1.0 KiB)\n')
    before = {p for p in tmp_path.rglob("*")}
    dest = work / "dest"
    r = box.save(1, "2", dest)
    after = {p for p in tmp_path.rglob("*")}
    (new,) = after - before - {dest}
    assert new.parent == dest, new
    assert new.read_bytes() == BLOB
    assert not new.name.startswith(".") and "/" not in new.name and "\\" not in new.name
    assert r.stdout.decode() == f"saved {new} (1024 bytes)\n"
    assert not (tmp_path / "etc").exists() and not (tmp_path / "tmp").exists()


def test_disposition_inline_vs_attachment(tmp_path):
    msg = multipart("mixed", "d", [
        part("text/plain; charset=utf-8", "本文です".encode(), ("Content-Disposition", "inline")),
        part("text/plain; charset=ISO-2022-JP", jis("添付のメモ\r\n"),
             ("Content-Disposition", 'attachment; filename="memo.txt"')),
        part("text/plain; charset=utf-8", "二つ目の本文".encode(),
             ("Content-Disposition", 'inline; filename="inline.txt"')),
        part("image/png", b64body(BLOB), ("Content-Transfer-Encoding", "base64"),
             ("Content-Disposition", 'inline; filename="pic.png"')),
        part("text/plain", b"no disposition")], subj())
    box = one(tmp_path, msg)
    assert box.read() == rendered(subj(), "本文です\n\n二つ目の本文\n\nno disposition\n\n"
                                  "Attachments:\n"
                                  f'  [2] text/plain "memo.txt" ({len(jis("添付のメモ"))+2} bytes)\n'
                                  '  [4] image/png "pic.png" (1.0 KiB)\n')
    dest = tmp_path / "d"
    box.save(1, "2", dest)
    assert (dest / "memo.txt").read_bytes() == jis("添付のメモ\r\n")  # as sent, not converted
    box.save(1, "4", dest)
    assert (dest / "pic.png").read_bytes() == BLOB


HTML_ONLY = b"""<html><head><title>TITLE</title><style>p { color: red }</style>
<script>document.write('SCRIPT')</script></head>
<body><h1>Hello</h1><p>first&nbsp;para <b>bold</b></p>
<script type="text/javascript">alert("SCRIPT2")</script>
<ul><li>one</li><li>two</li></ul></body></html>
"""


def test_alternative_with_only_html(tmp_path):
    msg = multipart("alternative", "alt", [part("text/html; charset=utf-8", HTML_ONLY)],
                    subj())
    out = one(tmp_path, msg).read()
    assert out == rendered(subj(), "Hello\n\nfirst\u00a0para bold\n\n- one\n- two\n")
    for hidden in ("TITLE", "color", "SCRIPT", "<"):
        assert hidden not in out


def test_alternative_empty_plain_and_html(tmp_path):
    msg = multipart("alternative", "alt", [
        part("text/plain; charset=ISO-2022-JP", b"\r\n"),
        part("text/html; charset=ISO-2022-JP", b"<p>" + jis("本文") + b"</p>")], subj())
    assert one(tmp_path, msg).read() == rendered(
        subj(), "本文\n\nAttachments:\n  [1] text/plain (2 bytes, alternative)\n")


HTML_SJIS = ("<html><body><p>A &amp; B &#x3042;&#12354; &lt;tag&gt; 日本語①～</p>"
             "<p><a href=\"https://example.jp/?a=1&amp;b=2\">リンク</a></p></body></html>\r\n")


def test_html_entities_in_shift_jis(tmp_path):
    want = "A & B ああ <tag> 日本語①～\n\nリンク <https://example.jp/?a=1&b=2>\n"
    for i, ct in enumerate(["text/html; charset=Shift_JIS", "text/html"]):
        body = HTML_SJIS.encode("cp932")
        if i == 1:
            body = (b'<meta http-equiv="Content-Type" content="text/html; charset=shift_jis">'
                    + body)
        msg = multipart("alternative", "h", [part(ct, b64body(body),
                                                  ("Content-Transfer-Encoding", "base64"))],
                        subj())
        assert Box(tmp_path / str(i), msg).read() == rendered(subj(), want)


def test_ls_json_many(tmp_path):
    msgs = [
        message([("Date", "Tue, 1 Dec 2026 09:00:00 +0900"),
                 ("From", bword(jis(TARO)) + " <taro@example.jp>"), ("Subject", bword(KEN))]),
        message([("Date", "Tue, 1 Dec 2026 10:00:00 +0900"),
                 ("From", "=?UTF-8?B?" + base64.b64encode("花子".encode()).decode()
                  + "?= <hanako@example.jp>"), ("Subject", chunked_words(KEN, 3))]),
        message([("Date", "Tue, 1 Dec 2026 11:00:00 +0900"), ("From", "x@example.jp"),
                 ("Subject", "=?UTF-8?Q?a=0Ab=1Bc?=")]),
    ]
    box = Box(tmp_path, *reversed(msgs))
    items = box.ls()
    assert [(i["n"], i["from"], i["subject"]) for i in items] == [
        (1, f"{TARO} <taro@example.jp>", KENMEI),
        (2, "花子 <hanako@example.jp>", KENMEI),
        (3, "x@example.jp", "a b c")]
    assert box.read(3).startswith("Date: Tue, 1 Dec 2026 11:00:00 +0900\nFrom: x@example.jp\n"
                                  "Subject: a^Jb^[c\n")


def test_encoded_forward_is_listed_and_saved_decoded(tmp_path):
    """A message/rfc822 in base64 (RFC 2046 5.2.1 forbids it; it is not
    parsed) is listed, and save gives the message itself."""
    inner = message([("From", "a@example.jp"), ("Subject", bword(jis("内側")))],
                    jis("本文\r\n"))
    msg = multipart("mixed", "b", [part("text/plain", b"see"),
                                   part("message/rfc822", b64body(inner),
                                        ("Content-Transfer-Encoding", "base64"))], subj())
    box = one(tmp_path, msg)
    assert box.read() == rendered(
        subj(), f"see\n\nAttachments:\n  [2] message/rfc822 ({len(inner)} bytes)\n")
    dest = tmp_path / "fwd"
    box.save(1, "2", dest)
    assert (dest / "part-2.bin").read_bytes() == inner


def test_related_html_inside_alternative(tmp_path):
    msg = multipart("alternative", "a", [
        part("text/plain; charset=ISO-2022-JP", jis("プレーン\r\n")),
        multipart("related", "r", [
            part("text/html; charset=utf-8", "<p>HTML版</p>".encode()),
            part("image/png", b64body(BLOB), ("Content-Transfer-Encoding", "base64"),
                 ("Content-ID", "<i@example.jp>"),
                 ("Content-Disposition", 'inline; filename="i.png"'))])], subj())
    assert one(tmp_path, msg).read() == rendered(
        subj(), "プレーン\n\nAttachments:\n"
        f"  [2.1] text/html ({len('<p>HTML版</p>'.encode())} bytes, alternative)\n"
        '  [2.2] image/png "i.png" (1.0 KiB, alternative)\n')
