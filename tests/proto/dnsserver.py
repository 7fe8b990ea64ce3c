"""dnsserver - a real DNS server (Debian's unbound) for the MTA tests.

Serves the records it is given on 127.0.0.1:PORT (a free port), no
recursion, in its own directory.  yubind is pointed at it with
dns_server = 127.0.0.1@PORT.  Readiness is checked with a real query, not a
sleep (the poll loop only backs off 20 ms between queries, under a deadline).

Unsigned (the default): every zone named by a record's last two labels is a
`local-zone: static` with the records as `local-data`.

Signed (DANE, RFC 7672): DnsServer(directory, records, signed_zone="example.")
puts every record at or under that zone into one zone file (SOA, NS, an A
for ns.ZONE unless the records have one, and the records; TLSA works, e.g.
("_25._tcp.mx.b.example.", "TLSA", tlsa_3_1_1(cert.cert))), signs it with

    ldns-keygen -a ECDSAP256SHA256 -k -r /dev/urandom ZONE     (one CSK, alg 13)
    ldns-signzone -i NOW-1h -e NOW+30d -o ZONE -f zone.signed zone KEY

(NSEC, not NSEC3, so NODATA and NXDOMAIN carry simple denial proofs) and
serves it as an `auth-zone:` (for-downstream: yes, for-upstream: no), which
adds RRSIGs and NSECs to answers when the query has the DO bit.  Records
outside the zone stay local-data as above, and validate as insecure.

self.trust_anchor is a file holding the zone's DS record, in a directory of
its own under /tmp that user nobody can read (the daemon drops privileges
before libunbound reads the file): give it to yubind as dns_trust_anchor.
self.trust_anchor_dnskey holds the DNSKEY instead (also accepted).

What a validating stub needs (checked by test_dnsserver.py with libunbound
through ctypes, configured exactly as src/mta/dns.c does: ub_ctx_set_fwd +
ub_ctx_add_ta_file): nothing more.  libunbound sends every query to the
forwarder with DO set, primes the DNSKEY of the anchored zone from it and
validates from the anchor down; no root key, DS chain from the root or
domain-insecure is needed, and names under no anchor come back insecure
(secure=0, bogus=0), not bogus.  A zone signed with a key other than the
anchor's comes back bogus, and so does an unsigned answer (a DnsServer
without signed_zone) for a name under the anchor.

Beware: libunbound answers its default local zones itself, without asking
the forwarder (test., invalid., localhost., onion., home.arpa., AS112
reverse zones): a record under test. is NXDOMAIN to yubind whatever this
server holds.  Use example., net., org. names.

unbound consults local zones before auth-zones, so a static local-zone above
the signed zone would shadow it (every name in it NXDOMAIN).  When the
unsigned records make such a zone (signed_zone="mx.b.example." and a record
for b.example. gives local-zone "b.example." static), the signed zone is
also declared `local-zone: ... transparent`, so that its
names fall through the local zones to the auth-zone.
"""

import hashlib
import os
import random
import shutil
import socket
import struct
import subprocess
import tempfile
import time

import pytest

UNBOUND = shutil.which("unbound") or "/usr/sbin/unbound"
LDNS_KEYGEN = shutil.which("ldns-keygen") or "/usr/bin/ldns-keygen"
LDNS_SIGNZONE = shutil.which("ldns-signzone") or "/usr/bin/ldns-signzone"
DNSSEC_ALGORITHM = "ECDSAP256SHA256"     # 13; ldns-keygen -a list
SIG_VALIDITY = 30 * 86400
TYPE_SOA = 6


def free_udp_port(host="127.0.0.1"):
    for _ in range(50):
        u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        t = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            u.bind((host, 0))
            port = u.getsockname()[1]
            t.bind((host, port))
            return port
        except OSError:
            continue
        finally:
            u.close()
            t.close()
    raise RuntimeError("no free port")


def query(port, name, qtype=15, timeout=0.5):
    """One UDP query; returns the rcode and the answer count, or None."""
    qid = random.randint(0, 65535)
    q = struct.pack(">HHHHHH", qid, 0x0100, 1, 0, 0, 0)
    for label in name.rstrip(".").split("."):
        q += bytes([len(label)]) + label.encode()
    q += b"\0" + struct.pack(">HH", qtype, 1)
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.settimeout(timeout)
    try:
        s.sendto(q, ("127.0.0.1", port))
        data, _ = s.recvfrom(4096)
    except OSError:
        return None
    finally:
        s.close()
    rid, flags, _, an, _, _ = struct.unpack(">HHHHHH", data[:12])
    if rid != qid:
        return None
    return flags & 0xF, an


# ---------------------------------------------------------------- TLSA ----

def _openssl(args, data=None):
    r = subprocess.run(["openssl"] + args, input=data, capture_output=True, timeout=30)
    if r.returncode != 0:
        pytest.fail(f"openssl {' '.join(args)} failed:\n" + r.stderr.decode(errors="replace"),
                    pytrace=False)
    return r.stdout


def tlsa_3_1_1(cert_pem_path):
    """TLSA rdata DANE-EE(3) SPKI(1) SHA-256(1) for the certificate's public key."""
    pub = _openssl(["x509", "-in", cert_pem_path, "-pubkey", "-noout"])
    der = _openssl(["pkey", "-pubin", "-outform", "DER"], pub)
    return "3 1 1 " + hashlib.sha256(der).hexdigest()


def tlsa_2_0_1(ca_cert_pem_path):
    """TLSA rdata DANE-TA(2) Cert(0) SHA-256(1) for a (CA) certificate."""
    der = _openssl(["x509", "-in", ca_cert_pem_path, "-outform", "DER"])
    return "2 0 1 " + hashlib.sha256(der).hexdigest()


# ------------------------------------------------------------- server ----

def _fqdn(name):
    name = name.lower()
    return name if name.endswith(".") else name + "."


def _under(name, zone):
    """name is zone or below it (both fully qualified)."""
    name = _fqdn(name)
    return zone == "." or name == zone or name.endswith("." + zone)


def _run(args, cwd):
    r = subprocess.run(args, cwd=cwd, capture_output=True, text=True, timeout=60,
                       stdin=subprocess.DEVNULL)
    if r.returncode != 0:
        pytest.fail(f"{' '.join(args)} failed ({r.returncode}):\n{r.stdout}{r.stderr}",
                    pytrace=False)
    return r.stdout


class DnsServer:
    def __init__(self, directory, records, deadline=20.0, signed_zone=None):
        """records: list of (name, type, rdata) e.g. ("b.example.", "MX", "10 mx.b.example.").
        Every zone named by a record's last two labels is served as static.
        signed_zone: serve the records at or under this zone DNSSEC-signed
        (see the module docstring); self.trust_anchor is then its DS file."""
        if not os.path.exists(UNBOUND):
            pytest.fail("unbound is not installed (make test installs it: scripts/deps.sh)",
                        pytrace=False)
        self.proc = None
        self.dir = directory
        os.makedirs(self.dir, exist_ok=True)
        self.port = free_udp_port()
        self.signed_zone = _fqdn(signed_zone) if signed_zone else None
        self.trust_anchor = None
        self.trust_anchor_dnskey = None
        self.zonefile = None
        self._ta_dir = None
        signed = [r for r in records if self.signed_zone and _under(r[0], self.signed_zone)]
        plain = [r for r in records if r not in signed]
        zones = sorted({".".join(r[0].rstrip(".").split(".")[-2:]) + "." for r in plain})
        lines = [
            "server:",
            f"  interface: 127.0.0.1@{self.port}",
            f"  port: {self.port}",
            "  do-daemonize: no",
            '  username: ""',
            '  chroot: ""',
            f'  directory: "{self.dir}"',
            f'  pidfile: "{self.dir}/unbound.pid"',
            "  use-syslog: no",
            f'  logfile: "{self.dir}/unbound.log"',
            "  verbosity: 1",
            "  do-ip6: no",
            "  access-control: 127.0.0.0/8 allow",
            '  module-config: "iterator"',
            "  num-threads: 1",
            "  outgoing-range: 64",
            "  so-reuseport: no",
        ]
        for z in zones:
            lines.append(f'  local-zone: "{z}" static')
        if self.signed_zone and any(_under(self.signed_zone, _fqdn(z)) for z in zones):
            lines.append(f'  local-zone: "{self.signed_zone}" transparent')
        for name, rtype, rdata in plain:
            lines.append(f'  local-data: "{name} 60 IN {rtype} {rdata}"')
        if self.signed_zone:
            try:
                self.zonefile = self._sign(signed)
            except BaseException:
                self._remove_ta_dir()
                raise
            lines += [
                "auth-zone:",
                f'  name: "{self.signed_zone}"',
                f'  zonefile: "{self.zonefile}"',
                "  for-downstream: yes",
                "  for-upstream: no",
                "  fallback-enabled: no",
            ]
        lines += ["remote-control:", "  control-enable: no"]
        self.conf = os.path.join(self.dir, "unbound.conf")
        with open(self.conf, "w") as f:
            f.write("\n".join(lines) + "\n")
        self.proc = subprocess.Popen([UNBOUND, "-d", "-c", self.conf],
                                     stdin=subprocess.DEVNULL,
                                     stdout=open(os.path.join(self.dir, "unbound.out"), "wb"),
                                     stderr=subprocess.STDOUT)
        end = time.monotonic() + deadline
        # Any answer for a local-data name; the signed zone's SOA once loaded.
        probes = []
        if plain:
            probes.append((plain[0][0], 1, lambda r: True))
        if self.signed_zone:
            probes.append((self.signed_zone, TYPE_SOA, lambda r: r == (0, 1)))
        if not probes:
            probes.append(("localhost.", 1, lambda r: True))   # unbound's default zone
        while time.monotonic() < end:
            if self.proc.poll() is not None:
                out = self.output()
                self.stop()
                pytest.fail("unbound exited: " + out, pytrace=False)
            while probes:
                r = query(self.port, probes[0][0], probes[0][1])
                if r is None or not probes[0][2](r):
                    break
                probes.pop(0)
            if not probes:
                return
            time.sleep(0.02)
        out = self.output()
        self.stop()
        pytest.fail("unbound did not answer: " + out, pytrace=False)

    def _sign(self, records):
        """Write, key and sign the zone; returns the signed zone file's path."""
        zone = self.signed_zone
        for tool in (LDNS_KEYGEN, LDNS_SIGNZONE):
            if not os.path.exists(tool):
                pytest.fail(f"{tool} is not installed (ldnsutils; make test installs it: "
                            "scripts/deps.sh)", pytrace=False)
        zdir = os.path.join(self.dir, "zone")
        os.makedirs(zdir, exist_ok=True)
        names = {(_fqdn(n), t.upper()) for n, t, _ in records}
        ns = "ns." + zone if zone != "." else "ns.root."
        rrs = [
            f"{zone} 3600 IN SOA {ns} hostmaster.{zone} 1 3600 600 86400 60",
            f"{zone} 3600 IN NS {ns}",
        ]
        if (ns, "A") not in names and _under(ns, zone):
            rrs.append(f"{ns} 3600 IN A 127.0.0.1")
        for name, rtype, rdata in records:
            rrs.append(f"{_fqdn(name)} 60 IN {rtype} {rdata}")
        plain = os.path.join(zdir, "zone")
        with open(plain, "w") as f:
            f.write("\n".join(rrs) + "\n")
        key = _run([LDNS_KEYGEN, "-a", DNSSEC_ALGORITHM, "-k", "-r", "/dev/urandom", zone],
                   zdir).strip()
        now = int(time.time())
        signed = os.path.join(zdir, "zone.signed")
        _run([LDNS_SIGNZONE, "-i", str(now - 3600), "-e", str(now + SIG_VALIDITY),
              "-o", zone, "-f", signed, plain, key], zdir)
        # The anchors, where a daemon that dropped to nobody can read them.
        self._ta_dir = tempfile.mkdtemp(prefix="yubin-dnsta-", dir="/tmp")
        os.chmod(self._ta_dir, 0o755)
        self.trust_anchor = os.path.join(self._ta_dir, "ds")
        self.trust_anchor_dnskey = os.path.join(self._ta_dir, "dnskey")
        for src, dst in ((key + ".ds", self.trust_anchor), (key + ".key", self.trust_anchor_dnskey)):
            shutil.copyfile(os.path.join(zdir, src), dst)
            os.chmod(dst, 0o644)
        return signed

    def output(self):
        out = ""
        for n in ("unbound.out", "unbound.log"):
            try:
                with open(os.path.join(self.dir, n)) as f:
                    out += f.read()[-3000:]
            except OSError:
                pass
        return out

    @property
    def server(self):
        return f"127.0.0.1@{self.port}"

    def _remove_ta_dir(self):
        if self._ta_dir:
            shutil.rmtree(self._ta_dir, ignore_errors=True)
            self._ta_dir = None

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None
        self._remove_ta_dir()
