"""dnsserver - a real DNS server (Debian's unbound) for the MTA tests.

Serves the zones it is given from local-data on 127.0.0.1:PORT (a free
port), no recursion, in its own directory.  yubind is pointed at it with
dns_server = 127.0.0.1@PORT.  Readiness is checked with a real query, not a
sleep.
"""

import os
import random
import shutil
import socket
import struct
import subprocess
import time

import pytest

UNBOUND = shutil.which("unbound") or "/usr/sbin/unbound"


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


class DnsServer:
    def __init__(self, directory, records, deadline=20.0):
        """records: list of (name, type, rdata) e.g. ("b.example.", "MX", "10 mx.b.example.").
        Every zone named by a record's last two labels is served as static."""
        if not os.path.exists(UNBOUND):
            pytest.fail("unbound is not installed (make test installs it: scripts/deps.sh)",
                        pytrace=False)
        self.dir = directory
        os.makedirs(self.dir, exist_ok=True)
        self.port = free_udp_port()
        zones = sorted({".".join(r[0].rstrip(".").split(".")[-2:]) for r in records})
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
            lines.append(f'  local-zone: "{z}." static')
        for name, rtype, rdata in records:
            lines.append(f'  local-data: "{name} 60 IN {rtype} {rdata}"')
        lines += ["remote-control:", "  control-enable: no"]
        self.conf = os.path.join(self.dir, "unbound.conf")
        with open(self.conf, "w") as f:
            f.write("\n".join(lines) + "\n")
        self.proc = subprocess.Popen([UNBOUND, "-d", "-c", self.conf],
                                     stdin=subprocess.DEVNULL,
                                     stdout=open(os.path.join(self.dir, "unbound.out"), "wb"),
                                     stderr=subprocess.STDOUT)
        end = time.monotonic() + deadline
        probe = records[0][0]
        while time.monotonic() < end:
            if self.proc.poll() is not None:
                pytest.fail("unbound exited: " + self.output(), pytrace=False)
            if query(self.port, probe, 1) is not None:
                return
            time.sleep(0.02)
        self.stop()
        pytest.fail("unbound did not answer: " + self.output(), pytrace=False)

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

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None
