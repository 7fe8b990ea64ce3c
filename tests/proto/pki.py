"""pki - a throw-away certificate authority for tests that verify certificates
(MTA-STS, DANE-TA): a CA and leaf certificates for given DNS names, made
with the openssl command in a directory readable by the unprivileged daemon.
"""

import os
import shutil
import subprocess
import tempfile

import pytest


def _run(args):
    r = subprocess.run(["openssl"] + args, capture_output=True, text=True, timeout=60)
    if r.returncode != 0:
        pytest.fail(f"openssl {' '.join(args)} failed:\n{r.stderr}", pytrace=False)


class Leaf:
    def __init__(self, cert, key):
        self.cert = cert
        self.key = key


class CA:
    def __init__(self, name="Yubin Test CA"):
        self.dir = tempfile.mkdtemp(prefix="yubin-ca-", dir="/tmp")
        os.chmod(self.dir, 0o755)
        self.key = os.path.join(self.dir, "ca.key")
        self.cert = os.path.join(self.dir, "ca.pem")
        _run(["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
              "-nodes", "-keyout", self.key, "-out", self.cert, "-days", "3",
              "-subj", "/CN=" + name,
              "-addext", "basicConstraints=critical,CA:TRUE",
              "-addext", "keyUsage=critical,keyCertSign,cRLSign"])
        os.chmod(self.cert, 0o644)
        self.n = 0

    def leaf(self, *names):
        """A certificate for names (the first is the CN), signed by this CA."""
        self.n += 1
        key = os.path.join(self.dir, f"leaf{self.n}.key")
        csr = os.path.join(self.dir, f"leaf{self.n}.csr")
        cert = os.path.join(self.dir, f"leaf{self.n}.pem")
        ext = os.path.join(self.dir, f"leaf{self.n}.ext")
        with open(ext, "w") as f:
            f.write("subjectAltName=" + ",".join("DNS:" + n for n in names) + "\n"
                    "basicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n")
        _run(["req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
              "-nodes", "-keyout", key, "-out", csr, "-subj", "/CN=" + names[0]])
        _run(["x509", "-req", "-in", csr, "-CA", self.cert, "-CAkey", self.key,
              "-CAcreateserial", "-out", cert, "-days", "2", "-extfile", ext])
        os.chmod(key, 0o644)      # test keys: the unprivileged daemon reads them
        os.chmod(cert, 0o644)
        return Leaf(cert, key)

    def cleanup(self):
        shutil.rmtree(self.dir, ignore_errors=True)
