"""Fixtures for the Yubin protocol tests.

    yubind          a started daemon with the test accounts; config keys can be
                    overridden per test with @pytest.mark.yubind_conf(key=value)
                    (value None = leave the key out, e.g. tls_cert=None)
    make_yubind     factory: make_yubind(start=True, **overrides)
    cert            the session's self-signed certificate (Cert)
    tls_ctx         client SSLContext trusting that certificate

Each daemon is stopped with SIGTERM at teardown; a non-zero exit status or a
sanitizer report in its log fails the test.  YUBIN_KEEP=1 keeps the
directories; YUBIN_BUILD selects the build (default build-asan).
"""

import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(__file__))

import yubintest as yt  # noqa: E402


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "yubind_conf(**keys): config overrides for the yubind fixture")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    setattr(item, "rep_" + rep.when, rep)


@pytest.fixture(scope="session")
def cert():
    c = yt.Cert()
    yield c
    c.cleanup()


@pytest.fixture(scope="session")
def template(cert):
    t = yt.Template(cert)
    yield t
    t.cleanup()


@pytest.fixture
def tls_ctx(cert):
    return cert.client_context()


def _markers(request):
    overrides = {}
    for m in reversed(list(request.node.iter_markers("yubind_conf"))):
        overrides.update(m.kwargs)
    return overrides


@pytest.fixture
def make_yubind(request, template, cert):
    made = []

    def make(start=True, **overrides):
        conf = _markers(request)
        conf.update(overrides)
        y = yt.Yubind(template, cert, conf)
        made.append(y)
        if start:
            y.start()
        return y

    yield make
    failed = getattr(request.node, "rep_call", None)
    try:
        for y in made:
            y.stop()
    finally:
        for y in made:
            if failed is not None and failed.failed:
                print(f"\n---- yubind log {y.log_path} ----\n{y.log()[-8000:]}")
            y.cleanup()


@pytest.fixture
def yubind(make_yubind):
    return make_yubind()
