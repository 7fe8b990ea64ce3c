"""Outbound TLS policy: DANE (RFC 7672) and MTA-STS (RFC 8461).

One DNSSEC-signed zone "example." (unbound serves it; yubind A gets its DS
as dns_trust_anchor) holds the MX, address, TLSA and _mta-sts records; a
throw-away CA signs B's certificate and the policy web server's.  A sends to
domains whose MX is B under each policy and the log says what was checked.
"""

import http.server
import os
import socket
import ssl
import threading

import pytest

import dnsserver
import pki
import yubintest as yt
from test_mta import X, free_port_on, message, pop3_all, submit

B_DOMAINS = ["b.example", "bad.example", "sts.example", "stsbad.example", "ststest.example",
             "stsname.example"]

POLICIES = {
    "mta-sts.sts.example": "version: STSv1\nmode: enforce\nmx: mx-sts.b.example\n"
                           "max_age: 86400\n",
    "mta-sts.stsbad.example": "version: STSv1\nmode: enforce\nmx: only-this.example\n"
                              "max_age: 86400\n",
    "mta-sts.ststest.example": "version: STSv1\nmode: testing\nmx: other.example\n"
                               "max_age: 86400\n",
    "mta-sts.stsname.example": "version: STSv1\nmode: enforce\nmx: *.b.example\n"
                               "max_age: 86400\n",
}


class PolicyServer:
    """HTTPS on 127.0.0.9: /.well-known/mta-sts.txt by Host header."""

    def __init__(self, leaf):
        class H(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                host = (self.headers.get("Host") or "").split(":")[0]
                body = POLICIES.get(host)
                if body is None or self.path != "/.well-known/mta-sts.txt":
                    self.send_response(404)
                    self.end_headers()
                    return
                data = body.encode()
                self.send_response(200)
                self.send_header("Content-Type", "text/plain")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *a):
                pass
        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.9", 0), H)
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ctx.load_cert_chain(leaf.cert, leaf.key)
        self.httpd.socket = ctx.wrap_socket(self.httpd.socket, server_side=True)
        self.port = self.httpd.server_address[1]
        self.t = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.t.start()

    stopped = False

    def stop(self):
        self.stopped = True
        self.httpd.shutdown()
        self.httpd.server_close()
        self.t.join()


@pytest.fixture
def tlsworld(template, cert, tmp_path):
    ca = pki.CA()
    bleaf = ca.leaf("mx.b.example", "mx-sts.b.example")
    other = ca.leaf("someone-else.example")
    web = PolicyServer(ca.leaf(*POLICIES.keys()))
    port = free_port_on(["127.0.0.2", "127.0.0.3"])
    records = [
        ("a.example.", "MX", "10 mx.a.example."),
        ("mx.a.example.", "A", "127.0.0.2"),
        ("b.example.", "MX", "10 mx.b.example."),
        ("mx.b.example.", "A", "127.0.0.3"),
        (f"_{port}._tcp.mx.b.example.", "TLSA", dnsserver.tlsa_3_1_1(bleaf.cert)),
        ("bad.example.", "MX", "10 mx-bad.b.example."),
        ("mx-bad.b.example.", "A", "127.0.0.3"),
        (f"_{port}._tcp.mx-bad.b.example.", "TLSA", dnsserver.tlsa_3_1_1(other.cert)),
        ("mx-sts.b.example.", "A", "127.0.0.3"),
        ("mx-name.b.example.", "A", "127.0.0.3"),
    ]
    for dom, mx, pid in (("sts.example", "mx-sts.b.example", "1"),
                         ("stsbad.example", "mx-sts.b.example", "2"),
                         ("ststest.example", "mx-name.b.example", "3"),
                         ("stsname.example", "mx-name.b.example", "4")):
        records += [
            (dom + ".", "MX", f"10 {mx}."),
            (f"_mta-sts.{dom}.", "TXT", f'"v=STSv1; id={pid};"'),
            (f"mta-sts.{dom}.", "A", "127.0.0.9"),
        ]
    dns = dnsserver.DnsServer(os.path.join(str(tmp_path), "dns"), records,
                              signed_zone="example.")
    common = {
        "dns_server": dns.server,
        "dns_trust_anchor": dns.trust_anchor,
        "smtp_out_port": str(port),
        "queue_retry_min": "1s",
        "queue_retry_max": "2s",
    }

    def daemon(ip, host, extra, domains, users):
        d = yt.Yubind(template, cert, {
            **common, **extra, "hostname": host,
            "listen_smtp": f"{ip}:{port}",
            "listen_submission": f"{ip}:0", "listen_submissions": "",
            "listen_pop3": f"{ip}:0", "listen_pop3s": "",
            "listen_imap": f"{ip}:0", "listen_imaps": "",
        })
        d.ip = ip
        for dom in domains:
            d.cli("domain", "add", dom)
        for addr, pw in users:
            d.cli("user", "add", addr, input=pw + "\n")
        d.start()
        return d
    made = []
    try:
        a = daemon("127.0.0.2", "mx.a.example", {"smtp_out_ca_file": ca.cert,
                                                 "mta_sts_port": str(web.port)},
                   ["a.example"], [X])
        a.web = web
        made.append(a)
        b = daemon("127.0.0.3", "mx.b.example", {"tls_cert": bleaf.cert,
                                                 "tls_key": bleaf.key},
                   B_DOMAINS, [("u@" + d, "u-Pass-1") for d in B_DOMAINS])
        made.append(b)
        yield a, b
    finally:
        for d in made:
            d.stop()
            d.cleanup()
        if not web.stopped:
            web.stop()
        dns.stop()
        ca.cleanup()


def test_dane_and_mta_sts(tlsworld):
    a, b = tlsworld
    for dom in B_DOMAINS:
        submit(a, X, message(X[0], "u@" + dom, "tls to " + dom), ["u@" + dom])

    # DANE: B's key is in the validated TLSA record
    a.wait_log(r"TLS with mx\.b\.example \[127\.0\.0\.3\] TLSv1\.[23] \S+, DANE verified "
               r"\(TLSA 3 1 1\)")
    a.wait_log(r"to=<u@b\.example>, relay=mx\.b\.example, attempts=1, status=sent")
    # DANE: a TLSA record for another key: that host is never used
    a.wait_log(r"DANE: the certificate of mx-bad\.b\.example \[127\.0\.0\.3\] matches none of "
               r"its TLSA records")
    a.wait_log(r"to=<u@bad\.example>, relay=none, attempts=1, status=deferred \(no server of "
               r"bad\.example reachable; last: DANE verification failed")
    # MTA-STS enforce: policy fetched, the MX listed, its certificate verified
    a.wait_log(r"mta-sts: sts\.example: policy 1: mode enforce, 1 mx pattern\(s\), "
               r"max_age 86400 s")
    a.wait_log(r"TLS with mx-sts\.b\.example \[127\.0\.0\.3\] \S+ \S+, certificate verified")
    a.wait_log(r"to=<u@sts\.example>, relay=mx-sts\.b\.example, attempts=1, status=sent")
    # enforce, but the MX is not in the policy: deferred, not sent in the clear
    a.wait_log(r"to=<u@stsbad\.example>, relay=none, attempts=1, status=deferred .*"
               r"mx-sts\.b\.example is not an MX host the MTA-STS policy of stsbad\.example "
               r"lists")
    # enforce, a listed MX whose certificate lacks its name: deferred
    a.wait_log(r"to=<u@stsname\.example>, relay=none, attempts=1, status=deferred .*"
               r"certificate not valid \(.*\), which the MTA-STS policy of stsname\.example "
               r"requires")
    # testing: the same problems only logged; the mail goes
    a.wait_log(r"mx-name\.b\.example is not an MX host the MTA-STS policy of ststest\.example "
               r"\(mode testing\) lists; using it anyway")
    a.wait_log(r"to=<u@ststest\.example>, relay=mx-name\.b\.example, attempts=1, status=sent")

    delivered = {d: len(pop3_all(b, ("u@" + d, "u-Pass-1"))) for d in B_DOMAINS}
    assert delivered == {"b.example": 1, "bad.example": 0, "sts.example": 1,
                         "stsbad.example": 0, "ststest.example": 1, "stsname.example": 0}
    # what could not go safely waits in the queue
    listing = a.cli("queue", "list").stdout
    for dom in ("bad.example", "stsbad.example", "stsname.example"):
        assert "u@" + dom in listing


def test_mta_sts_policy_survives_restart(tlsworld):
    """RFC 8461 5.1: a policy fetched once stays in force for its max_age,
    also across a restart and while the policy host cannot be reached:
    mail for stsbad.example (no MX listed by its policy) keeps waiting
    instead of going out unprotected."""
    a, b = tlsworld
    submit(a, X, message(X[0], "u@stsbad.example", "policy kept"), ["u@stsbad.example"])
    a.wait_log(r"mta-sts: stsbad\.example: policy 2: mode enforce")
    a.wait_log(r"to=<u@stsbad\.example>, relay=none, attempts=1, status=deferred")
    a.stop()
    a.web.stop()                       # the policy cannot be fetched any more
    since = a.log_mark()
    a.start()
    a.wait_log(r"mta-sts: 1 saved policies in force", since=since)
    # (the TXT id is unchanged and the policy fresh: no fetch is even tried;
    # without the saved copy the fetch would fail and the mail would go)
    a.wait_log(r"to=<u@stsbad\.example>, relay=none, attempts=2, status=deferred .*not an "
               r"MX host the MTA-STS policy of stsbad\.example lists", since=since)
    assert len(pop3_all(b, ("u@stsbad.example", "u-Pass-1"))) == 0
