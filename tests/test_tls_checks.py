"""TLS handshake checks: FAIL on the weak nginx site, PASS on the strong one, every check.

One nginx (module-scoped) serves both sites; each site is scanned once with the real
collector and every check judges those facts. RC4 and 3DES, which Debian's OpenSSL cannot
serve, are shown failing on a scripted server that answers with a crafted ServerHello.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from checks.tls.ciphers import (
    CbcTls10,
    NoForwardSecrecy,
    NoServerOrder,
    NullAnonExport,
    Rc4TripleDes,
    WeakDh,
)
from checks.tls.profile import ProfileError, ProfileParams, TlsProfile, load_profile, parse_profile
from checks.tls.protocol import LegacyProtocols, NoTls13
from scanner.collectors.tls import TlsCollector, TlsFacts
from scanner.model import ServiceInfo, Severity, Status, Target, TargetKind
from scanner.plugins import Check, FactsView
from tests.helpers import collect, evaluate, statuses
from tests.servers_tls import HAVE_TLS_SERVERS, TlsSites, tls_sites
from tests.tls_scripted import ScriptedTls, legacy_server

pytestmark = [
    pytest.mark.real,
    pytest.mark.skipif(not HAVE_TLS_SERVERS, reason="nginx or openssl missing"),
]
COLLECTOR = TlsCollector()


def target(address: str, port: int, name: str = "https") -> Target:
    return Target(
        kind=TargetKind.SERVICE,
        unit="test",
        address=address,
        port=port,
        service=ServiceInfo(name=name),
    )


@pytest.fixture(scope="module")
def sites(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TlsSites]:
    with tls_sites(Path(tmp_path_factory.mktemp("tls"))) as s:
        yield s


@pytest.fixture(scope="module")
def weak(sites: TlsSites) -> FactsView:
    return collect([COLLECTOR], target(sites.weak.address, sites.weak.port))


@pytest.fixture(scope="module")
def strong(sites: TlsSites) -> FactsView:
    return collect([COLLECTOR], target(sites.strong.address, sites.strong.port))


@pytest.fixture(scope="module")
def legacy() -> Iterator[FactsView]:
    # an old appliance: TLS 1.0 and 1.2 with RC4-SHA, RC4-MD5, 3DES and an export suite
    handler = legacy_server((0x0005, 0x0004, 0x000A, 0x0003))
    with ScriptedTls(handler) as srv:
        yield collect([COLLECTOR], target(srv.address, srv.port), timeout=3)


def tls(view: FactsView) -> TlsFacts:
    return view.get("service.tls", TlsFacts)


ALL_CHECKS: list[Check] = [
    LegacyProtocols(),
    NoTls13(),
    NullAnonExport(),
    NoForwardSecrecy(),
    WeakDh(),
    CbcTls10(),
    NoServerOrder(),
    TlsProfile(),
]


def test_weak_site_facts(weak: FactsView) -> None:
    f = tls(weak)
    assert f.supported == ["TLSv1.0", "TLSv1.1", "TLSv1.2"]
    assert f.dh_bits == 1024
    tls12 = f.protocol("TLSv1.2")
    assert tls12 and tls12.server_order is False
    names = set(tls12.suites)
    assert {"TLS_RSA_WITH_NULL_SHA", "TLS_DH_anon_WITH_AES_128_CBC_SHA"} <= names
    assert "TLS_RSA_WITH_AES_128_CBC_SHA" in names  # static RSA
    assert f.certificate_chain and f.errors == []


def test_strong_site_facts(strong: FactsView) -> None:
    f = tls(strong)
    assert f.supported == ["TLSv1.2", "TLSv1.3"]
    tls13 = f.protocol("TLSv1.3")
    assert tls13 and set(tls13.suites) == {
        "TLS_AES_128_GCM_SHA256",
        "TLS_AES_256_GCM_SHA384",
        "TLS_CHACHA20_POLY1305_SHA256",
    }
    assert {"x25519", "secp256r1", "secp384r1"} <= set(f.groups_tls13)
    assert f.dh_bits is None and len(f.certificate_chain) == 2


@pytest.mark.parametrize("check", ALL_CHECKS, ids=lambda c: c.meta.id)
def test_every_check_fails_on_weak_site(check: Check, weak: FactsView) -> None:
    assert statuses(check, weak) == {Status.FAIL}


@pytest.mark.parametrize("check", [*ALL_CHECKS, Rc4TripleDes()], ids=lambda c: c.meta.id)
def test_every_check_passes_on_strong_site(check: Check, strong: FactsView) -> None:
    assert statuses(check, strong) == {Status.PASS}


def test_legacy_results_name_each_protocol(weak: FactsView) -> None:
    results = evaluate(LegacyProtocols(), weak)
    assert {r.detail for r in results} == {"TLSv1.0", "TLSv1.1"}


def test_null_anon_details(weak: FactsView) -> None:
    results = {r.detail: r for r in evaluate(NullAnonExport(), weak)}
    assert set(results) == {"null", "anon"}  # Debian's OpenSSL has no export suites
    assert results["null"].severity is Severity.CRITICAL


def test_rc4_3des_and_export_fail_on_scripted_legacy_server(legacy: FactsView) -> None:
    f = tls(legacy)
    assert "TLSv1.0" in f.supported
    assert {"TLS_RSA_WITH_RC4_128_SHA", "TLS_RSA_WITH_3DES_EDE_CBC_SHA"} <= set(
        f.protocol("TLSv1.0").suites  # type: ignore[union-attr]
    )
    rc4 = {r.detail: r for r in evaluate(Rc4TripleDes(), legacy)}
    assert set(rc4) >= {"rc4", "3des"} and all(r.status is Status.FAIL for r in rc4.values())
    export = {r.detail for r in evaluate(NullAnonExport(), legacy)}
    assert "export" in export
    assert statuses(NoForwardSecrecy(), legacy) == {Status.FAIL}


def test_weak_dh_is_high(weak: FactsView) -> None:
    [res] = evaluate(WeakDh(), weak)
    assert res.detail == "dh" and res.severity is Severity.HIGH and res.evidence["dh_bits"] == 1024


def test_server_order_passes_with_client_order_when_all_strong(strong: FactsView) -> None:
    f = tls(strong)
    assert f.protocol("TLSv1.2").server_order is False  # type: ignore[union-attr]
    assert statuses(NoServerOrder(), strong) == {Status.PASS}


@pytest.mark.parametrize(
    ("profile", "expected"),
    [
        ("mozilla-intermediate", {Status.PASS}),
        ("mozilla-modern", {Status.FAIL}),  # TLS 1.2 offered
        ("nist-sp800-52r2", {Status.FAIL}),  # ChaCha20 is not a FIPS suite
        ("bsi-tr-02102-2", {Status.FAIL}),  # ChaCha20 and X25519 are not in TR-02102-2
    ],
)
def test_profiles_on_strong_site(profile: str, expected: set[Status], strong: FactsView) -> None:
    results = TlsProfile().evaluate(strong, ProfileParams(profile=profile))
    assert {r.status for r in results} == expected


def test_profiles_all_fail_weak_site(weak: FactsView) -> None:
    for name in ("mozilla-intermediate", "mozilla-modern", "nist-sp800-52r2", "bsi-tr-02102-2"):
        details = {r.detail for r in TlsProfile().evaluate(weak, ProfileParams(profile=name))}
        assert "protocols" in details and "suites" in details


def test_bsi_horizons(strong: FactsView) -> None:
    after = TlsProfile().evaluate(strong, ProfileParams(profile="bsi-tr-02102-2", year=2032))
    expired = [r for r in after if r.detail == "expired"]
    assert expired and "TLSv1.2" in expired[0].evidence["horizons"]
    soon = TlsProfile().evaluate(
        strong, ProfileParams(profile="bsi-tr-02102-2", year=2029, lead_years=3)
    )
    assert any(r.detail == "expiring" and r.severity is Severity.LOW for r in soon)


def test_profile_typos_are_named() -> None:
    with pytest.raises(ValueError, match="unknown TLS profile 'mozila'"):
        ProfileParams(profile="mozila")
    bad = "id: x\ntitle: t\nversion: '1'\nsource: s\nprotocols: {allowed: [TLSv1.9]}\n"
    bad += "suites: [TLS_AES_128_GCM_SHA257]\n"
    with pytest.raises(ProfileError) as exc:
        parse_profile(bad, "custom.yaml")
    assert "custom.yaml" in str(exc.value) and "TLSv1.9" in str(exc.value)
    assert "TLS_AES_128_GCM_SHA257" in str(exc.value)
    assert load_profile("mozilla-intermediate").dh_min_bits == 2048
