"""SSH audit against real OpenSSH servers: every check FAILs on the weak sshd, PASSes on the
hardened one (Terrapin's FAIL needs a server without strict kex: see test_ssh_hostile.py).

Both servers are started once for the module; each is collected once, exactly as the runner
does, and the checks are judged on those facts.
"""

from __future__ import annotations

import asyncio
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from checks.ssh.advisory import AlgorithmAdvisory
from checks.ssh.algorithms import Verdict, table
from checks.ssh.auth import PasswordAuth
from checks.ssh.banner import BannerPrelogin, BannerVersion
from checks.ssh.crypto import CipherWeak, KexWeak, MacWeak
from checks.ssh.hostkey import HostKeyParams, HostKeyRsaSha1, HostKeyWeak
from checks.ssh.terrapin import Terrapin
from scanner.collectors.ssh import (
    AuthProbe,
    Protection,
    SshCollector,
    SshConnection,
    SshFacts,
    exchange,
    handshake,
    probe_auth,
)
from scanner.model import Result, ServiceInfo, Severity, Status, Target, TargetKind
from scanner.plugins import FactsView, load_registry
from scanner.sshtransport import CIPHERS
from tests.helpers import collect, evaluate, statuses
from tests.servers_sshd import HAVE_SSHD, SSH_KEYGEN, SshdPair, sshd_pair

pytestmark = [
    pytest.mark.real,
    pytest.mark.skipif(not HAVE_SSHD, reason="sshd/ssh-keygen are not installed"),
]
COLLECTOR = SshCollector()


def ssh_target(address: str, port: int, name: str = "ssh") -> Target:
    return Target(
        kind=TargetKind.SERVICE,
        unit="test",
        address=address,
        port=port,
        service=ServiceInfo(name=name),
    )


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SshdPair]:
    with sshd_pair(tmp_path_factory.mktemp("sshd")) as p:
        yield p


@pytest.fixture(scope="module")
def weak(pair: SshdPair) -> FactsView:
    return collect([COLLECTOR], ssh_target(pair.weak.addr, pair.weak.port), timeout=5)


@pytest.fixture(scope="module")
def hardened(pair: SshdPair) -> FactsView:
    return collect([COLLECTOR], ssh_target(pair.hardened.addr, pair.hardened.port), timeout=5)


def _f(view: FactsView) -> SshFacts:
    return view.get("service.ssh", SshFacts)


def _keygen_fingerprint(pub: Path) -> str:
    assert SSH_KEYGEN
    out = subprocess.run(
        [SSH_KEYGEN, "-l", "-E", "sha256", "-f", str(pub)],
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
    )
    return out.stdout.split()[1]


# -- facts ---------------------------------------------------------------------------------------
def test_weak_facts_are_complete(weak: FactsView, pair: SshdPair) -> None:
    f = _f(weak)
    assert f.protocol == "2.0" and f.software.startswith("OpenSSH_")
    assert f.comments.startswith("Debian-")
    assert {"diffie-hellman-group1-sha1", "diffie-hellman-group14-sha1"} <= set(f.kex)
    assert {"aes128-cbc", "3des-cbc"} <= set(f.ciphers)
    assert {"hmac-md5", "umac-64@openssh.com"} <= set(f.macs)
    assert {"ssh-rsa", "ssh-dss"} <= set(f.host_key_algorithms)
    assert f.host_key_errors == {}
    by_alg = {k.algorithm: k for k in f.host_keys}
    assert set(by_alg) == set(f.host_key_algorithms)
    assert by_alg["ssh-dss"].family == "dsa" and by_alg["ssh-dss"].bits == 1024
    assert by_alg["rsa-sha2-512"].bits == 1024 and by_alg["rsa-sha2-512"].rsa_exponent == 65537
    assert by_alg["ssh-rsa"].signature_algorithm == "ssh-rsa"
    # the one RSA key is fetched once (with ssh-rsa) and answers for its sibling algorithms
    assert by_alg["rsa-sha2-256"].signature_algorithm == ""
    assert by_alg["rsa-sha2-256"].fingerprint == by_alg["ssh-rsa"].fingerprint
    # fingerprints are those ssh-keygen prints for the server's own key files
    keys = pair.weak.workdir.parent / "keys"
    assert by_alg["ssh-dss"].fingerprint == _keygen_fingerprint(keys / "weak_dsa.pub")
    assert by_alg["ssh-rsa"].fingerprint == _keygen_fingerprint(keys / "weak_rsa1024.pub")
    assert by_alg["ssh-ed25519"].fingerprint == _keygen_fingerprint(keys / "weak_ed25519.pub")
    assert f.auth_methods is not None
    assert {"password", "keyboard-interactive", "publickey"} <= set(f.auth_methods)
    assert "web01.so-tttt.example" in f.prelogin_banner


def test_hardened_facts(hardened: FactsView, pair: SshdPair) -> None:
    f = _f(hardened)
    assert f.comments == "" and f.strict_kex
    assert f.auth_methods == ["publickey"] and f.prelogin_banner == ""
    rsa = next(k for k in f.host_keys if k.family == "rsa")
    assert rsa.bits == 3072
    keys = pair.hardened.workdir.parent / "keys"
    assert rsa.fingerprint == _keygen_fingerprint(keys / "hard_rsa3072.pub")


def test_every_offered_algorithm_is_in_the_table(weak: FactsView, hardened: FactsView) -> None:
    for view in (weak, hardened):
        [unknown] = [
            r for r in evaluate(AlgorithmAdvisory(), view) if r.detail == "unknown-algorithms"
        ]
        assert unknown.evidence["unknown"] == [], unknown.message


def test_collector_applies_to_ssh_services_only() -> None:
    assert COLLECTOR.applies(ssh_target("127.0.0.2", 2222))
    assert COLLECTOR.applies(ssh_target("127.0.0.2", 22, name=""))
    assert not COLLECTOR.applies(ssh_target("127.0.0.2", 22, name="http"))
    assert not COLLECTOR.applies(ssh_target("127.0.0.2", 8022, name=""))
    assert COLLECTOR.applies(
        Target(
            kind=TargetKind.SERVICE,
            unit="t",
            address="127.0.0.2",
            port=8022,
            service=ServiceInfo(name="unknown", product="SSH-2.0-dropbear_2022.83"),
        )
    )
    registry = load_registry()
    assert "service.ssh" in registry.collectors
    ids = {c for c in registry.checks if c.startswith("ssh.")}
    assert ids == {
        "ssh.kex.weak",
        "ssh.cipher.weak",
        "ssh.mac.weak",
        "ssh.hostkey.weak",
        "ssh.hostkey.rsa_sha1",
        "ssh.auth.password",
        "ssh.terrapin",
        "ssh.banner.version",
        "ssh.banner.prelogin",
        "ssh.advisory.algorithms",
    }


# -- checks: FAIL on weak, PASS on hardened -----------------------------------------------------
def test_kex_weak(weak: FactsView, hardened: FactsView) -> None:
    failed = {r.detail for r in evaluate(KexWeak(), weak) if r.status is Status.FAIL}
    assert failed == {
        "diffie-hellman-group1-sha1",
        "diffie-hellman-group14-sha1",
        "diffie-hellman-group-exchange-sha1",
    }
    [one] = [r for r in evaluate(KexWeak(), weak) if r.detail == "diffie-hellman-group1-sha1"]
    assert one.evidence["suggested"] == (
        "KexAlgorithms curve25519-sha256,diffie-hellman-group14-sha256"
    )
    assert one.evidence["table_version"] == table().version
    [ok] = evaluate(KexWeak(), hardened)
    assert ok.status is Status.PASS


def test_gex_modulus_size(weak: FactsView) -> None:
    assert _f(weak).gex_modulus_bits == 2048  # Debian's moduli file has no 1024-bit groups
    assert "gex-modulus" not in {r.detail for r in evaluate(KexWeak(), weak)}
    [r] = [
        r
        for r in KexWeak().evaluate(weak, KexWeak.Params(min_gex_bits=3072))
        if r.detail == "gex-modulus"
    ]
    assert r.status is Status.FAIL and r.evidence["modulus_bits"] == 2048


def test_kex_profile_and_fail_on(weak: FactsView) -> None:
    strict = KexWeak.Params(profile="strict")
    details = {r.detail for r in KexWeak().evaluate(weak, strict) if r.status is Status.FAIL}
    assert "diffie-hellman-group14-sha256" in details  # warn under baseline, fail under strict
    warn = KexWeak.Params(fail_on=[Verdict.FAIL, Verdict.WARN])
    details = {r.detail for r in KexWeak().evaluate(weak, warn) if r.status is Status.FAIL}
    assert "diffie-hellman-group14-sha256" in details
    allow = KexWeak.Params(allow=["diffie-hellman-group14-sha1"])
    details = {r.detail for r in KexWeak().evaluate(weak, allow) if r.status is Status.FAIL}
    assert "diffie-hellman-group14-sha1" not in details
    with pytest.raises(ValueError, match="unknown SSH algorithm profile 'bsi'"):
        KexWeak.Params(profile="bsi")


def test_cipher_weak(weak: FactsView, hardened: FactsView) -> None:
    failed = {r.detail for r in evaluate(CipherWeak(), weak) if r.status is Status.FAIL}
    assert failed == {"aes128-cbc", "aes256-cbc", "3des-cbc"}
    assert statuses(CipherWeak(), hardened) == {Status.PASS}


def test_mac_weak(weak: FactsView, hardened: FactsView) -> None:
    results = evaluate(MacWeak(), weak)
    assert {r.detail for r in results if r.status is Status.FAIL} == {
        "hmac-sha1",
        "hmac-md5",
        "umac-64@openssh.com",
    }
    [ok] = evaluate(MacWeak(), hardened)
    assert ok.status is Status.PASS and ok.evidence["warnings"] == []


def test_hostkey_weak(weak: FactsView, hardened: FactsView) -> None:
    results = evaluate(HostKeyWeak(), weak)
    failed = [r for r in results if r.status is Status.FAIL]
    assert sorted(r.detail.split()[0] for r in failed) == ["dsa", "rsa"]
    rsa = next(r for r in failed if r.detail.startswith("rsa"))
    assert "1024 bits" in rsa.message
    assert set(rsa.evidence["algorithms"]) == {"rsa-sha2-512", "rsa-sha2-256", "ssh-rsa"}
    [ok] = evaluate(HostKeyWeak(), hardened)
    assert ok.status is Status.PASS and ok.evidence["warnings"] == []
    # 3072 bits passes the default; a policy asking for 4096 sees a low-severity failure
    params = HostKeyParams(recommended_rsa_bits=4096, fail_below_recommended=True)
    [low] = HostKeyWeak().evaluate(hardened, params)
    assert low.status is Status.FAIL and low.severity is Severity.LOW
    [warned] = HostKeyWeak().evaluate(hardened, HostKeyParams(recommended_rsa_bits=4096))
    assert warned.status is Status.PASS and warned.evidence["warnings"][0]["bits"] == 3072


def test_hostkey_rsa_sha1(weak: FactsView, hardened: FactsView) -> None:
    [bad] = evaluate(HostKeyRsaSha1(), weak)
    assert bad.status is Status.FAIL
    assert bad.evidence["observed_signatures"] == {"ssh-rsa": "ssh-rsa"}
    assert statuses(HostKeyRsaSha1(), hardened) == {Status.PASS}


def test_auth_password(weak: FactsView, hardened: FactsView) -> None:
    results = evaluate(PasswordAuth(), weak)
    assert {r.detail for r in results if r.status is Status.FAIL} == {
        "password",
        "keyboard-interactive",
    }
    params = PasswordAuth.Params(allow_keyboard_interactive=True)
    assert {r.detail for r in PasswordAuth().evaluate(weak, params)} == {"password"}
    [ok] = evaluate(PasswordAuth(), hardened)
    assert ok.status is Status.PASS and ok.evidence["methods"] == ["publickey"]


def test_terrapin_passes_with_strict_kex(weak: FactsView, hardened: FactsView) -> None:
    # the weak server offers ChaCha20 and EtM, but OpenSSH 9.2 in Debian has strict kex
    [r] = evaluate(Terrapin(), weak)
    assert r.status is Status.PASS and r.evidence["chacha20_poly1305"]
    assert statuses(Terrapin(), hardened) == {Status.PASS}


def test_banner_version(weak: FactsView, hardened: FactsView) -> None:
    [bad] = evaluate(BannerVersion(), weak)
    assert bad.status is Status.FAIL and "Debian-" in bad.message
    assert statuses(BannerVersion(), hardened) == {Status.PASS}
    strict = BannerVersion.Params(fail_on_upstream_version=True)
    r = BannerVersion().evaluate(hardened, strict)
    assert isinstance(r, Result) and r.status is Status.FAIL


def test_banner_prelogin(weak: FactsView, hardened: FactsView) -> None:
    results = {r.detail: r for r in evaluate(BannerPrelogin(), weak)}
    assert {"hostname", "os", "version", "person", "phone"} <= set(results)
    assert all(r.status is Status.FAIL for r in results.values())
    assert "web01.so-tttt.example" in results["hostname"].evidence["found"]
    assert results["person"].evidence["found"] == ["Nguyen Van A"]
    assert statuses(BannerPrelogin(), hardened) == {Status.PASS}


def test_advisories_never_fail(weak: FactsView, hardened: FactsView) -> None:
    for view in (weak, hardened):
        assert statuses(AlgorithmAdvisory(), view) == {Status.PASS}
    weak_pq = next(r for r in evaluate(AlgorithmAdvisory(), weak) if r.detail == "post-quantum")
    assert weak_pq.evidence["advisory"] is True and weak_pq.message.startswith("Advisory:")
    hard_pq = next(r for r in evaluate(AlgorithmAdvisory(), hardened) if r.detail == "post-quantum")
    assert hard_pq.evidence["advisory"] is False
    assert hard_pq.evidence["offered"] == ["sntrup761x25519-sha512@openssh.com"]


# -- Assay's own encrypted transport: every key exchange and packet protection it speaks --------
async def _login(address: str, port: int, method: str | None, protection: Protection) -> AuthProbe:
    conn = await SshConnection.open(address, port, 5)
    try:
        hs = await handshake(conn)
        ex = await exchange(conn, hs, "ssh-ed25519", protection, method=method)
        return await probe_auth(conn, ex, protection)
    finally:
        await conn.close()


@pytest.mark.parametrize(
    "method",
    [
        "curve25519-sha256",
        "diffie-hellman-group14-sha256",
        "diffie-hellman-group14-sha1",
        "diffie-hellman-group1-sha1",
        "diffie-hellman-group-exchange-sha1",
    ],
)
def test_every_key_exchange_reaches_the_login_answer(pair: SshdPair, method: str) -> None:
    """A wrong shared secret or exchange hash would fail the first encrypted packet."""
    probe = asyncio.run(
        _login(pair.weak.addr, pair.weak.port, method, Protection("aes128-ctr", "hmac-sha2-256"))
    )
    assert probe.methods and "password" in probe.methods


@pytest.mark.parametrize(
    ("cipher", "mac"),
    [
        ("chacha20-poly1305@openssh.com", ""),
        ("aes128-ctr", "hmac-sha2-256"),
        ("aes256-ctr", "hmac-sha2-256-etm@openssh.com"),
        ("aes128-cbc", "hmac-sha1"),  # not spoken by Assay: refused below
    ],
)
def test_packet_protections(pair: SshdPair, cipher: str, mac: str) -> None:
    if cipher not in CIPHERS:
        with pytest.raises(KeyError):
            asyncio.run(_login(pair.weak.addr, pair.weak.port, None, Protection(cipher, mac)))
        return
    probe = asyncio.run(_login(pair.weak.addr, pair.weak.port, None, Protection(cipher, mac)))
    assert probe.methods and "Nguyen Van A" in probe.banner


def test_gcm_on_the_hardened_server(pair: SshdPair) -> None:
    for cipher in ("aes128-gcm@openssh.com", "aes256-gcm@openssh.com"):
        probe = asyncio.run(
            _login(pair.hardened.addr, pair.hardened.port, None, Protection(cipher, ""))
        )
        assert probe.methods == ["publickey"] and probe.banner == ""
