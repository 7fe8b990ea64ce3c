"""Self-test of dnsserver.DnsServer's DNSSEC-signed zone (for DANE tests).

Validation is checked without our C code, with libunbound itself through
ctypes, set up the way src/mta/dns.c dns_new does it: ub_ctx_set_fwd to the
server, ub_ctx_add_ta_file with DnsServer.trust_anchor, then ub_resolve and
the result's secure/bogus fields.
"""

import ctypes
import ctypes.util
import os
import socket
import struct
import subprocess
import time

import pytest

import dnsserver
import yubintest as yt

T_A, T_MX, T_TLSA = 1, 15, 52


class UbResult(ctypes.Structure):
    _fields_ = [
        ("qname", ctypes.c_char_p),
        ("qtype", ctypes.c_int),
        ("qclass", ctypes.c_int),
        ("data", ctypes.POINTER(ctypes.POINTER(ctypes.c_char))),
        ("len", ctypes.POINTER(ctypes.c_int)),
        ("canonname", ctypes.c_char_p),
        ("rcode", ctypes.c_int),
        ("answer_packet", ctypes.c_void_p),
        ("answer_len", ctypes.c_int),
        ("havedata", ctypes.c_int),
        ("nxdomain", ctypes.c_int),
        ("secure", ctypes.c_int),
        ("bogus", ctypes.c_int),
        ("why_bogus", ctypes.c_char_p),
        ("was_ratelimited", ctypes.c_int),
        ("ttl", ctypes.c_int),
    ]


def libunbound():
    name = ctypes.util.find_library("unbound") or "libunbound.so.8"
    try:
        lib = ctypes.CDLL(name)
    except OSError:
        pytest.fail("libunbound is not installed (libunbound-dev, scripts/deps.sh)",
                    pytrace=False)
    lib.ub_ctx_create.restype = ctypes.c_void_p
    lib.ub_ctx_delete.argtypes = [ctypes.c_void_p]
    lib.ub_ctx_set_fwd.argtypes = [ctypes.c_void_p, ctypes.c_char_p]
    lib.ub_ctx_add_ta_file.argtypes = [ctypes.c_void_p, ctypes.c_char_p]
    lib.ub_resolve.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_int, ctypes.c_int,
                               ctypes.POINTER(ctypes.POINTER(UbResult))]
    lib.ub_resolve_free.argtypes = [ctypes.POINTER(UbResult)]
    lib.ub_strerror.restype = ctypes.c_char_p
    return lib


class Answer:
    def __init__(self, r):
        self.rcode, self.havedata, self.nxdomain = r.rcode, r.havedata, r.nxdomain
        self.secure, self.bogus = bool(r.secure), bool(r.bogus)
        self.why_bogus = r.why_bogus.decode() if r.why_bogus else None
        self.data = []
        i = 0
        while r.data and r.data[i]:
            self.data.append(ctypes.string_at(r.data[i], r.len[i]))
            i += 1

    def __repr__(self):
        return (f"Answer(rcode={self.rcode} havedata={self.havedata} nxdomain={self.nxdomain} "
                f"secure={self.secure} bogus={self.bogus} why={self.why_bogus!r} "
                f"data={self.data!r})")


def resolve(server, anchor, name, rrtype):
    """One lookup on a fresh validating stub: forwarder + trust-anchor file."""
    lib = libunbound()
    ctx = lib.ub_ctx_create()
    assert ctx
    try:
        assert lib.ub_ctx_set_fwd(ctx, server.encode()) == 0
        if anchor:
            assert lib.ub_ctx_add_ta_file(ctx, anchor.encode()) == 0
        res = ctypes.POINTER(UbResult)()
        err = lib.ub_resolve(ctx, name.encode(), rrtype, 1, ctypes.byref(res))
        assert err == 0, lib.ub_strerror(err).decode()
        try:
            return Answer(res.contents)
        finally:
            lib.ub_resolve_free(res)
    finally:
        lib.ub_ctx_delete(ctx)


def answers(port, name, rrtype, deadline=10.0):
    """dnsserver.query, retried (UDP) until an answer or the deadline."""
    end = time.monotonic() + deadline
    while True:
        r = dnsserver.query(port, name, rrtype)
        if r is not None or time.monotonic() > end:
            return r


def mx_rdata(pref, host):
    wire = b"".join(bytes([len(p)]) + p.encode() for p in host.rstrip(".").split("."))
    return struct.pack(">H", pref) + wire + b"\0"


def records(tlsa):
    return [
        ("a.example.", "MX", "10 mx.a.example."),
        ("mx.a.example.", "A", "127.0.0.2"),
        ("b.example.", "MX", "10 mx.b.example."),
        ("mx.b.example.", "A", "127.0.0.3"),
        ("_25._tcp.mx.b.example.", "TLSA", tlsa),
        ("other.net.", "MX", "10 mx.other.net."),
        ("mx.other.net.", "A", "127.0.0.5"),
    ]


@pytest.fixture
def servers(tmp_path):
    made = []

    def make(name, recs, **kw):
        d = dnsserver.DnsServer(os.path.join(str(tmp_path), name), recs, **kw)
        made.append(d)
        return d

    yield make
    for d in made:
        d.stop()


def test_tlsa_helpers(cert, tmp_path):
    r = dnsserver.tlsa_3_1_1(cert.cert)
    assert r.startswith("3 1 1 ") and len(r.split()[3]) == 64
    # Independent of the helper: hash the DER public key the ssl module sees
    # through the same openssl pipeline, spelt with openssl dgst.
    pipe = subprocess.run(
        f"openssl x509 -in {cert.cert} -pubkey -noout | openssl pkey -pubin -outform DER"
        " | openssl dgst -sha256 -r", shell=True, capture_output=True, text=True, check=True)
    assert r.split()[3] == pipe.stdout.split()[0]
    t = dnsserver.tlsa_2_0_1(cert.cert)
    assert t.startswith("2 0 1 ") and len(t.split()[3]) == 64 and t != r


def test_signed_zone_validates(servers, cert):
    tlsa = dnsserver.tlsa_3_1_1(cert.cert)
    d = servers("dns", records(tlsa), signed_zone="example.")
    ta = d.trust_anchor
    assert open(ta).read().split()[2] == "DS"

    a = resolve(d.server, ta, "b.example.", T_MX)
    assert a.secure and not a.bogus and a.data == [mx_rdata(10, "mx.b.example.")], a
    a = resolve(d.server, ta, "mx.b.example.", T_A)
    assert a.secure and a.data == [socket.inet_aton("127.0.0.3")], a
    a = resolve(d.server, ta, "_25._tcp.mx.b.example.", T_TLSA)
    assert a.secure and not a.bogus, a
    assert a.data == [bytes([3, 1, 1]) + bytes.fromhex(tlsa.split()[3])], a

    # Denial of existence, proven with NSEC
    a = resolve(d.server, ta, "mx.b.example.", T_TLSA)              # NODATA
    assert a.secure and not a.havedata and not a.nxdomain and a.rcode == 0, a
    a = resolve(d.server, ta, "_25._tcp.mx.a.example.", T_TLSA)     # NXDOMAIN
    assert a.secure and a.nxdomain and a.rcode == 3, a
    a = resolve(d.server, ta, "_tcp.mx.b.example.", T_TLSA)         # empty non-terminal
    assert a.secure and not a.havedata and not a.nxdomain and a.rcode == 0, a

    # Outside the zone: local-data, insecure but not bogus
    a = resolve(d.server, ta, "other.net.", T_MX)
    assert not a.secure and not a.bogus and a.data == [mx_rdata(10, "mx.other.net.")], a

    # The DNSKEY file is an anchor too; without an anchor nothing is secure
    a = resolve(d.server, d.trust_anchor_dnskey, "_25._tcp.mx.b.example.", T_TLSA)
    assert a.secure, a
    a = resolve(d.server, None, "_25._tcp.mx.b.example.", T_TLSA)
    assert not a.secure and not a.bogus and a.havedata, a


def test_wrong_key_or_unsigned_is_bogus(servers, cert):
    recs = records(dnsserver.tlsa_3_1_1(cert.cert))
    good = servers("good", recs, signed_zone="example.")
    other = servers("other", recs, signed_zone="example.")   # same zone, another key
    plain = servers("plain", recs)                              # today's local-data
    for srv in (other, plain):
        for name, t in (("b.example.", T_MX), ("_25._tcp.mx.b.example.", T_TLSA),
                        ("mx.b.example.", T_TLSA)):
            a = resolve(srv.server, good.trust_anchor, name, t)
            assert a.bogus and not a.secure and a.why_bogus, (srv.dir, name, a)


def test_signed_subzone_below_unsigned(servers, cert):
    """signed_zone below a static local-zone made for the unsigned records
    (b.example.): declared transparent there, so the auth-zone answers."""
    d = servers("dns", records(dnsserver.tlsa_3_1_1(cert.cert)), signed_zone="mx.b.example.")
    ta = d.trust_anchor
    a = resolve(d.server, ta, "_25._tcp.mx.b.example.", T_TLSA)
    assert a.secure, a
    a = resolve(d.server, ta, "mx.b.example.", T_A)
    assert a.secure and a.data == [socket.inet_aton("127.0.0.3")], a
    a = resolve(d.server, ta, "nothere.mx.b.example.", T_A)
    assert a.secure and a.nxdomain, a
    a = resolve(d.server, ta, "b.example.", T_MX)
    assert not a.secure and not a.bogus and a.data == [mx_rdata(10, "mx.b.example.")], a
    a = resolve(d.server, ta, "nothere.b.example.", T_A)
    assert not a.secure and not a.bogus and a.nxdomain, a


def test_anchor_readable_by_nobody_and_stop(servers):
    d = servers("dns", [("b.example.", "MX", "10 mx.b.example.")], signed_zone="example.")
    ta = d.trust_anchor
    if yt.running_as_root():
        r = subprocess.run(["cat", ta], user="nobody", capture_output=True, text=True)
        assert r.returncode == 0 and " DS " in r.stdout.replace("\t", " "), r.stderr
    else:
        st = os.stat(ta)
        assert st.st_mode & 0o004 and os.stat(os.path.dirname(ta)).st_mode & 0o001
    proc = d.proc
    assert answers(d.port, "b.example.", T_MX) == (0, 1)
    d.stop()
    assert d.proc is None and proc.returncode is not None
    assert not os.path.exists(ta)
