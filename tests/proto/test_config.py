"""yubind -c FILE --check / --print-config."""

import os
import re
import shutil
import subprocess

import pytest

import yubintest as yt

ALL_KEYS = ["hostname", "data_dir", "user", "postmaster", "tls_cert", "tls_key",
            "plaintext_auth", "log_level", "listen_smtp", "listen_pop3", "listen_pop3s",
            "message_size_limit", "smtp_max_recipients", "smtp_max_errors",
            "max_connections", "max_connections_per_ip", "smtp_bare_newline",
            "smtp_timeout", "smtp_data_timeout", "pop3_timeout", "command_timeout",
            "shutdown_timeout", "store_batch_max", "smtp_data_memory_max"]


@pytest.fixture
def confdir(cert):
    yt.require_binaries()
    d = yt.mkdtemp("yubin-conf-")
    os.mkdir(os.path.join(d, "data"))
    yield d
    shutil.rmtree(d, ignore_errors=True)


def write(confdir, text, name="yubin.conf"):
    p = os.path.join(confdir, name)
    with open(p, "w") as f:
        f.write(text)
    return p


def good_lines(confdir, cert):
    return [f"{k} = {v}" for k, v in yt.base_config(confdir, cert).items()]


def yubind(*args):
    r = subprocess.run([yt.YUBIND, *args], capture_output=True, text=True,
                       env=yt.sanitizer_env(), timeout=30)
    for mark in yt.SANITIZER_MARKS:
        assert mark not in r.stderr, r.stderr
    return r


def test_check_ok(confdir, cert):
    p = write(confdir, "# comment\n\n" + "\n".join(good_lines(confdir, cert)) + "\n")
    r = yubind("-c", p, "--check")
    assert r.returncode == 0, r.stderr


def test_check_ok_without_tls(confdir, cert):
    lines = [l for l in good_lines(confdir, cert) if not l.startswith("tls_")]
    lines = [l for l in lines if not l.startswith(("listen_pop3s", "listen_imaps",
                                                   "listen_submissions", "listen_https"))]
    p = write(confdir, "\n".join(lines) + "\n")
    r = yubind("-c", p, "--check")
    assert r.returncode == 0, r.stderr


def assert_error(r, path, line, key):
    out = r.stdout + r.stderr
    assert r.returncode == 1, (r.returncode, out)
    assert path in out, out
    assert line is None or (re.search(re.escape(path) + rf":{line}\b", out)
            or re.search(rf"\bline {line}\b", out)), f"line {line} not named: {out}"
    assert key in out, out


def test_unknown_key(confdir, cert):
    lines = good_lines(confdir, cert)
    lines.insert(2, "no_such_key = 1")
    p = write(confdir, "\n".join(lines) + "\n")
    assert_error(yubind("-c", p, "--check"), p, 3, "no_such_key")


@pytest.mark.parametrize("key,value", [
    ("message_size_limit", "lots"),
    ("message_size_limit", "10X"),
    ("message_size_limit", "-1"),
    ("message_size_limit", "99999999999999999999G"),
    ("smtp_max_recipients", "ten"),
    ("smtp_timeout", "soon"),
    ("smtp_timeout", "5 fortnights"),
    ("pop3_timeout", "-3s"),
    ("plaintext_auth", "sometimes"),
    ("log_level", "loud"),
    ("smtp_bare_newline", "maybe"),
    ("listen_smtp", "nohost"),
    ("listen_smtp", "127.0.0.1:99999"),
])
def test_bad_value(confdir, cert, key, value):
    lines = [l for l in good_lines(confdir, cert) if not l.startswith(key + " ")]
    lines.append(f"{key} = {value}")
    p = write(confdir, "\n".join(lines) + "\n")
    # listen addresses are checked after parsing (conf_check): no line needed
    line = None if key.startswith("listen_") else len(lines)
    assert_error(yubind("-c", p, "--check"), p, line, key)


def test_duplicate_key(confdir, cert):
    lines = [l for l in good_lines(confdir, cert) if not l.startswith("log_level")]
    lines += ["log_level = debug", "log_level = info"]
    p = write(confdir, "\n".join(lines) + "\n")
    assert_error(yubind("-c", p, "--check"), p, len(lines), "log_level")


def test_line_without_equals(confdir, cert):
    lines = good_lines(confdir, cert) + ["just some words"]
    p = write(confdir, "\n".join(lines) + "\n")
    r = yubind("-c", p, "--check")
    assert r.returncode == 1
    assert re.search(re.escape(p) + rf":{len(lines)}\b", r.stdout + r.stderr) or \
        re.search(rf"\bline {len(lines)}\b", r.stdout + r.stderr), r.stderr


def test_cert_without_key(confdir, cert):
    lines = [l for l in good_lines(confdir, cert) if not l.startswith("tls_key")]
    p = write(confdir, "\n".join(lines) + "\n")
    r = yubind("-c", p, "--check")
    assert r.returncode == 1
    assert "tls_key" in r.stdout + r.stderr


def test_missing_file(confdir):
    p = os.path.join(confdir, "does-not-exist.conf")
    r = yubind("-c", p, "--check")
    assert r.returncode == 1
    assert p in r.stdout + r.stderr


def test_print_config_defaults(confdir, cert):
    p = write(confdir, f"hostname = {yt.HOSTNAME}\ndata_dir = {confdir}/data\n")
    r = yubind("-c", p, "--print-config")
    assert r.returncode == 0, r.stderr
    values = {}
    for line in r.stdout.splitlines():
        if not line or line.startswith("#"):
            continue
        m = re.fullmatch(r"(\w+) = ?(.*)", line)
        assert m, f"not 'key = value': {line!r}"
        values[m.group(1)] = m.group(2)
    missing = [k for k in ALL_KEYS if k not in values]
    assert not missing, f"--print-config lacks {missing}"
    assert values["hostname"] == yt.HOSTNAME
    assert values["smtp_bare_newline"] == "normalize"
    assert values["plaintext_auth"] in ("never", "loopback", "always")
    assert values["log_level"] in ("debug", "info", "warn", "error")
    assert int(values["message_size_limit"]) > 0
    assert int(values["smtp_max_recipients"]) >= 100   # RFC 5321 4.5.3.1.8


def test_print_config_shows_values_and_roundtrips(confdir, cert):
    lines = good_lines(confdir, cert) + ["message_size_limit = 12345",
                                         "smtp_max_recipients = 7",
                                         "plaintext_auth = always",
                                         "smtp_timeout = 90"]
    lines = [l for l in lines if not l.startswith("plaintext_auth = loopback")]
    p = write(confdir, "\n".join(lines) + "\n")
    r = yubind("-c", p, "--print-config")
    assert r.returncode == 0, r.stderr
    out = r.stdout.splitlines()
    assert "message_size_limit = 12345" in out
    assert "smtp_max_recipients = 7" in out
    assert "plaintext_auth = always" in out
    assert f"hostname = {yt.HOSTNAME}" in out
    # what --print-config prints is itself a valid config meaning the same
    p2 = write(confdir, r.stdout, "printed.conf")
    r2 = yubind("-c", p2, "--check")
    assert r2.returncode == 0, r2.stdout + r2.stderr
    r3 = yubind("-c", p2, "--print-config")

    def keyvals(text):
        return [l for l in text.splitlines() if l and not l.startswith("#")]
    assert keyvals(r3.stdout) == keyvals(r.stdout)


@pytest.mark.parametrize("text,want", [
    ("message_size_limit = 2k", 2048),
    ("message_size_limit = 3M", 3 << 20),
    ("message_size_limit = 1G", 1 << 30),
])
def test_size_suffixes(confdir, cert, text, want):
    p = write(confdir, "\n".join(good_lines(confdir, cert) + [text]) + "\n")
    r = yubind("-c", p, "--print-config")
    assert r.returncode == 0, r.stderr
    m = re.search(r"^message_size_limit = (\S+)$", r.stdout, re.M)
    assert int(m.group(1)) == want, m.group(1)


@pytest.mark.parametrize("value,shown", [("1500ms", "1500ms"), ("2s", "2s"), ("3m", "180s"),
                                         ("1h", "3600s"), ("45", "45s")])
def test_duration_suffixes(confdir, cert, value, shown):
    p = write(confdir, "\n".join(good_lines(confdir, cert) + [f"smtp_timeout = {value}"]) + "\n")
    assert yubind("-c", p, "--check").returncode == 0
    r = yubind("-c", p, "--print-config")
    assert re.search(rf"^smtp_timeout = {shown}$", r.stdout, re.M), r.stdout


def test_crlf_file_and_trailing_blanks(confdir, cert):
    """A config written on Windows (CR LF) with trailing blanks parses the same."""
    lines = good_lines(confdir, cert) + ["smtp_max_recipients = 77   \t"]
    p = write(confdir, "\r\n".join(lines) + "\r\n")
    r = yubind("-c", p, "--print-config")
    assert r.returncode == 0, r.stderr
    assert re.search(r"^smtp_max_recipients = 77$", r.stdout, re.M)


def test_inline_comment_refused(confdir, cert):
    """`hostname = mx # primary` would put "# primary" in every greeting:
    refused, naming the key."""
    lines = [l for l in good_lines(confdir, cert) if not l.startswith("hostname")]
    p = write(confdir, "\n".join(lines + ["hostname = mx.example.test # primary MX"]) + "\n")
    r = yubind("-c", p, "--check")
    assert r.returncode == 1
    assert "hostname" in r.stderr and "inline comments" in r.stderr, r.stderr


def test_help():
    yt.require_binaries()
    for args in (["--help"],):
        r = subprocess.run([yt.YUBIND, *args], capture_output=True, text=True, timeout=30)
        assert r.returncode == 0, r.stderr
        assert "-c" in r.stdout + r.stderr
