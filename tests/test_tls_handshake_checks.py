"""Renegotiation, compression, OCSP stapling and Heartbleed.

PASS on the real nginx sites; FAIL where a real server shows the weakness (openssl s_server
without a stapled answer) and on scripted servers for what no current OpenSSL can be
configured into (insecure renegotiation, DEFLATE, heartbeats at all)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from checks.tls.handshake import (
    CcsInjection,
    Compression,
    FallbackScsv,
    Heartbleed,
    InsecureRenegotiation,
    OcspStapling,
)
from scanner.collectors.tls import TlsCollector, TlsFacts
from scanner.model import ServiceInfo, Severity, Status, Target, TargetKind
from scanner.plugins import FactsView
from tests.helpers import collect, evaluate, statuses
from tests.servers_tls import HAVE_TLS_SERVERS, TlsSites, openssl_server, tls_sites
from tests.tls_pki import TestCA
from tests.tls_scripted import EarlyCcsServer, HeartbeatServer, ScriptedTls, legacy_server

pytestmark = [
    pytest.mark.real,
    pytest.mark.skipif(not HAVE_TLS_SERVERS, reason="nginx or openssl missing"),
]
COLLECTOR = TlsCollector()
PASS, FAIL = {Status.PASS}, {Status.FAIL}


def target(address: str, port: int) -> Target:
    return Target(
        kind=TargetKind.SERVICE,
        unit="test",
        address=address,
        port=port,
        service=ServiceInfo(name="https"),
    )


@pytest.fixture(scope="module")
def sites(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TlsSites]:
    with tls_sites(Path(tmp_path_factory.mktemp("tlshs"))) as s:
        yield s


@pytest.fixture(scope="module")
def weak(sites: TlsSites) -> FactsView:
    return collect([COLLECTOR], target(sites.weak.address, sites.weak.port))


@pytest.fixture(scope="module")
def strong(sites: TlsSites) -> FactsView:
    return collect([COLLECTOR], target(sites.strong.address, sites.strong.port))


def tls(view: FactsView) -> TlsFacts:
    return view.get("service.tls", TlsFacts)


def test_real_nginx_renegotiates_securely_and_never_compresses(
    weak: FactsView, strong: FactsView
) -> None:
    for view in (weak, strong):
        assert tls(view).secure_renegotiation is True and tls(view).compression is False
        assert statuses(InsecureRenegotiation(), view) == PASS
        assert statuses(Compression(), view) == PASS


def test_scripted_server_without_rfc5746_fails() -> None:
    with ScriptedTls(legacy_server((0x002F,), secure_renegotiation=False)) as srv:
        view = collect([COLLECTOR], target(srv.address, srv.port), timeout=3)
    assert tls(view).secure_renegotiation is False
    [r] = evaluate(InsecureRenegotiation(), view)
    assert r.status is Status.FAIL and "RFC 5746" in r.message and "TLSv1.2" in r.message
    assert statuses(Compression(), view) == PASS  # the hello offered DEFLATE; it was refused


def test_scripted_server_that_compresses_fails() -> None:
    with ScriptedTls(legacy_server((0x002F,), deflate=True)) as srv:
        view = collect([COLLECTOR], target(srv.address, srv.port), timeout=3)
    assert tls(view).compression is True
    [r] = evaluate(Compression(), view)
    assert r.status is Status.FAIL and "DEFLATE" in r.message
    assert statuses(InsecureRenegotiation(), view) == PASS


def test_stapling_passes_on_the_strong_site_and_is_not_applicable_without_ocsp_url(
    weak: FactsView, strong: FactsView
) -> None:
    assert tls(strong).ocsp_stapling is True  # nginx ssl_stapling_file with the CA's answer
    [r] = evaluate(OcspStapling(), strong)
    assert r.status is Status.PASS
    # the weak site's self-signed certificate names no OCSP responder: nothing to staple
    [r] = evaluate(OcspStapling(), weak)
    assert r.status is Status.NOT_APPLICABLE and "tls.cert.no_revocation" in r.message


def test_certificate_with_ocsp_url_but_no_stapling_fails(tmp_path: Path) -> None:
    ca = TestCA()
    issued = ca.issue(ips=("127.0.0.1",))
    with openssl_server(tmp_path, issued, ["-tls1_2"]) as (addr, port):
        view = collect([COLLECTOR], target(addr, port))
    assert tls(view).ocsp_stapling is False
    [r] = evaluate(OcspStapling(), view)
    assert r.status is Status.FAIL and "http://ocsp.assay-test.invalid/" in r.message
    # the same certificate with `-status_file`: openssl staples the CA's answer
    staple = ca.ocsp_response(issued, tmp_path, "leaf")
    with openssl_server(tmp_path, issued, ["-tls1_2", "-status_file", str(staple)]) as (a, p):
        view = collect([COLLECTOR], target(a, p))
    assert statuses(OcspStapling(), view) == PASS


def test_tls13_only_endpoint(tmp_path: Path) -> None:
    issued = TestCA().issue(ips=("127.0.0.1",))
    with openssl_server(tmp_path, issued, ["-tls1_3"]) as (addr, port):
        view = collect([COLLECTOR], target(addr, port))
    assert tls(view).supported == ["TLSv1.3"]
    assert statuses(InsecureRenegotiation(), view) == {Status.NOT_APPLICABLE}
    assert statuses(Compression(), view) == {Status.NOT_APPLICABLE}
    assert statuses(Heartbleed(), view) == {Status.NOT_APPLICABLE}
    assert statuses(FallbackScsv(), view) == {Status.NOT_APPLICABLE}
    assert statuses(CcsInjection(), view) == {Status.NOT_APPLICABLE}
    [r] = evaluate(OcspStapling(), view)
    assert r.status is Status.NOT_ASSESSED and "TLS 1.3" in r.message


def test_real_nginx_takes_no_heartbeats(weak: FactsView, strong: FactsView) -> None:
    assert tls(weak).heartbeat is False and tls(weak).heartbleed_leaked == 0
    [r] = evaluate(Heartbleed(), weak)
    assert r.status is Status.PASS and "does not accept the heartbeat" in r.message
    assert statuses(Heartbleed(), strong) == PASS


def test_heartbleed_fails_and_the_leak_is_counted_never_kept() -> None:
    memory = b"Cookie: ASSAYSESSION=7f3a9c1e; password=hunter2 "
    with HeartbeatServer(bleed=True, memory=memory) as srv:
        view = collect([COLLECTOR], target(srv.address, srv.port), timeout=5)
        assert srv.heartbeats == 1  # one malformed heartbeat, on one connection
    f = tls(view)
    assert f.heartbeat is True and f.heartbleed_leaked == 0x4000 + 16
    [r] = evaluate(Heartbleed(), view)
    assert r.status is Status.FAIL and r.severity in (None, Severity.CRITICAL)
    assert "16400 bytes" in r.message
    # what leaked is never stored: not in the facts, not in the result
    dumped = f.model_dump_json() + r.model_dump_json()
    assert "ASSAYSESSION" not in dumped and "hunter2" not in dumped


def test_patched_server_with_heartbeats_passes() -> None:
    with HeartbeatServer(bleed=False) as srv:
        view = collect([COLLECTOR], target(srv.address, srv.port), timeout=5)
        assert srv.heartbeats == 1
    assert tls(view).heartbeat is True and tls(view).heartbleed_leaked == 0
    [r] = evaluate(Heartbleed(), view)
    assert r.status is Status.PASS and "did not answer a malformed one" in r.message


def test_fallback_scsv(weak: FactsView, strong: FactsView) -> None:
    # real nginx (OpenSSL 3) answers a TLS 1.1 / 1.2 hello marked as a fallback with an alert
    for view, lower in ((weak, "TLSv1.1"), (strong, "TLSv1.2")):
        assert tls(view).fallback_scsv is True
        [r] = evaluate(FallbackScsv(), view)
        assert r.status is Status.PASS and lower in r.message
    # an old appliance that takes any hello it can: the downgrade goes unnoticed
    with ScriptedTls(legacy_server((0x002F,))) as srv:
        view = collect([COLLECTOR], target(srv.address, srv.port), timeout=3)
    assert tls(view).supported == ["TLSv1.0", "TLSv1.2"] and tls(view).fallback_scsv is False
    [r] = evaluate(FallbackScsv(), view)
    assert r.status is Status.FAIL and "TLSv1.0" in r.message


def test_early_ccs(weak: FactsView, strong: FactsView) -> None:
    # OpenSSL 3 answers a ChangeCipherSpec before the key exchange with unexpected_message
    for view in (weak, strong):
        assert tls(view).early_ccs == "refused"
        [r] = evaluate(CcsInjection(), view)
        assert r.status is Status.PASS and "unexpected_message" in r.message
    with EarlyCcsServer() as srv:
        view = collect([COLLECTOR], target(srv.address, srv.port), timeout=10)
        assert srv.ccs_seen == 2
    [r] = evaluate(CcsInjection(), view)
    assert r.status is Status.FAIL and "bad_record_mac" in r.message
    # a server that never says anything after the CCS is not judged either way
    with HeartbeatServer(bleed=False) as quiet:  # ignores whatever follows its hello
        view = collect([COLLECTOR], target(quiet.address, quiet.port), timeout=10)
    [r] = evaluate(CcsInjection(), view)
    assert r.status is Status.NOT_ASSESSED and "inconclusive" in r.message
