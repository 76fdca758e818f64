"""ROBOT (tls.robot): the Bleichenbacher padding-oracle test of static-RSA key exchange.

PASS on the real weak nginx site (static RSA accepted, OpenSSL 3 answers every variant
alike), not applicable on the strong one (ECDHE only). Oracles need a scripted server that
really decrypts with its RSA key (`RobotServer`), since no current OpenSSL can be configured
into one: a strong and a weak oracle FAIL, a server whose answers change between rounds and
one that never reacts are not assessed, and one that sends no certificate is not assessed
either, with the reason. The PKCS#1 block builder and the verdict rules are unit-tested.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from checks.tls.handshake import Robot
from scanner.collectors.tls import TlsCollector, TlsFacts
from scanner.model import ServiceInfo, Severity, Status, Target, TargetKind
from scanner.plugins import FactsView
from scanner.tlsprobe import robot
from scanner.tlsprobe.robot import VARIANTS, judge, pkcs1_block, rsa_encrypt_raw
from tests.helpers import collect, evaluate
from tests.servers_tls import HAVE_TLS_SERVERS, TlsSites, openssl_server, tls_sites
from tests.tls_pki import TestCA
from tests.tls_scripted import RobotServer, ScriptedTls, legacy_server

COLLECTOR = TlsCollector()


def target(address: str, port: int) -> Target:
    return Target(
        kind=TargetKind.SERVICE,
        unit="test",
        address=address,
        port=port,
        service=ServiceInfo(name="https"),
    )


def tls(view: FactsView) -> TlsFacts:
    return view.get("service.tls", TlsFacts)


# -- the PKCS#1 v1.5 blocks --------------------------------------------------------------------


@pytest.fixture(scope="module")
def key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(65537, 2048)


def test_correct_block_is_a_premaster_secret_any_rsa_implementation_decrypts(
    key: rsa.RSAPrivateKey,
) -> None:
    block = pkcs1_block(robot.CORRECT, 256, 0x0303)
    assert len(block) == 256 and block[:2] == b"\x00\x02"
    assert b"\x00" not in block[2:-49] and block[-49] == 0  # nonzero padding, then 00
    secret = key.decrypt(rsa_encrypt_raw(block, key.public_key()), padding.PKCS1v15())
    assert len(secret) == 48 and secret[:2] == b"\x03\x03"


def _raw_decrypt(key: rsa.RSAPrivateKey, ciphertext: bytes) -> bytes:
    n = key.public_key().public_numbers().n
    m = pow(int.from_bytes(ciphertext, "big"), key.private_numbers().d, n)
    return m.to_bytes(256, "big")


def test_each_malformed_block_has_exactly_its_defect(key: rsa.RSAPrivateKey) -> None:
    pub = key.public_key()
    blocks = {
        v: _raw_decrypt(key, rsa_encrypt_raw(pkcs1_block(v, 256, 0x0301), pub)) for v in VARIANTS
    }
    assert blocks[robot.WRONG_FIRST_BYTES][:2] == b"\x41\x17"
    assert blocks[robot.WRONG_FIRST_BYTES][-49] == 0
    zero = blocks[robot.ZERO_IN_PADDING]
    assert zero[:2] == b"\x00\x02" and zero.find(b"\x00", 2) < 256 - 49  # separator too early
    assert zero.find(b"\x00", 2) >= 10  # still 8 padding bytes first: conformant, wrong length
    assert blocks[robot.NO_SEPARATOR][:2] == b"\x00\x02"
    assert b"\x00" not in blocks[robot.NO_SEPARATOR][2:]
    wrong = blocks[robot.WRONG_VERSION]
    assert wrong[:2] == b"\x00\x02" and wrong[-49] == 0 and wrong[-48:-46] == b"\x02\x02"
    assert blocks[robot.CORRECT][-48:-46] == b"\x03\x01"  # the hello's client_version


def test_block_builder_is_deterministic_given_its_randomness_and_refuses_bad_input() -> None:
    def fixed(n: int) -> bytes:
        return bytes(n)  # all zero: the builder must still keep the padding nonzero

    block = pkcs1_block(robot.CORRECT, 128, 0x0303, fixed)
    assert block == b"\x00\x02" + b"\x5a" * 77 + b"\x00\x03\x03" + bytes(46)
    assert pkcs1_block(robot.NO_SEPARATOR, 128, 0x0303, fixed).count(0) == 1  # only byte 0
    with pytest.raises(ValueError, match="unknown ROBOT variant 'typo'"):
        pkcs1_block("typo", 128, 0x0303)
    with pytest.raises(ValueError, match="modulus of 32 bytes"):
        pkcs1_block(robot.CORRECT, 32, 0x0303)


def test_a_block_above_the_modulus_is_refused(key: rsa.RSAPrivateKey) -> None:
    with pytest.raises(ValueError, match="does not fit"):
        rsa_encrypt_raw(b"\xff" * 256, key.public_key())


# -- the verdict ------------------------------------------------------------------------------


def _answers(default: str, **odd: str) -> dict[str, str]:
    return {v: odd.get(v, default) for v in VARIANTS}


def test_verdict_rules() -> None:
    same = _answers("alert bad_record_mac, then closed")
    assert judge(same).verdict == "not_vulnerable"
    strong = _answers("alert bad_record_mac, then closed", wrong_first_bytes="reset")
    assert judge(strong, dict(strong)).verdict == "strong_oracle"
    weak = _answers("alert bad_record_mac, then closed", no_separator="timeout")
    assert judge(weak, dict(weak)).verdict == "weak_oracle"
    # a difference that does not come back the same way is noise: never a pass or a fail
    moved = judge(weak, _answers("alert bad_record_mac, then closed"))
    assert moved.verdict == "inconclusive" and "no_separator: timeout" in moved.reason
    assert judge(weak).verdict == "inconclusive"  # a difference that was not repeated
    assert judge(_answers("timeout")).verdict == "inconclusive"  # silence proves nothing
    assert judge(_answers("malformed record")).verdict == "inconclusive"  # nor does junk


# -- real and scripted servers -----------------------------------------------------------------


@pytest.fixture(scope="module")
def sites(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TlsSites]:
    if not HAVE_TLS_SERVERS:
        pytest.skip("nginx or openssl missing")
    with tls_sites(Path(tmp_path_factory.mktemp("robot"))) as s:
        yield s


@pytest.mark.real
def test_real_nginx_with_static_rsa_is_no_oracle(sites: TlsSites) -> None:
    view = collect([COLLECTOR], target(sites.weak.address, sites.weak.port))
    f = tls(view)
    assert f.robot == "not_vulnerable" and f.robot_protocol == "TLSv1.2"
    assert set(f.robot_answers) == set(VARIANTS) and len(set(f.robot_answers.values())) == 1
    [r] = evaluate(Robot(), view)
    assert r.status is Status.PASS and "alike" in r.message


@pytest.mark.real
def test_ecdhe_only_site_is_not_applicable_and_gets_no_key_exchange(sites: TlsSites) -> None:
    view = collect([COLLECTOR], target(sites.strong.address, sites.strong.port))
    assert tls(view).robot is None and tls(view).robot_answers == {}
    [r] = evaluate(Robot(), view)
    assert r.status is Status.NOT_APPLICABLE and "static-RSA" in r.message


def _scan(srv: RobotServer | ScriptedTls) -> FactsView:
    return collect([COLLECTOR], target(srv.address, srv.port), timeout=3)


def test_strong_oracle_fails_critical() -> None:
    with RobotServer("strong") as srv:
        view = _scan(srv)
        assert srv.key_exchanges == 10  # two rounds of five, nothing more
    f = tls(view)
    assert f.robot == "strong_oracle"
    assert f.robot_answers["wrong_first_bytes"] == "alert decrypt_error, then closed"
    assert f.robot_answers["correct"] == "alert bad_record_mac, then closed"
    assert all(len(a) < 40 for a in f.robot_answers.values())  # short words, no key material
    [r] = evaluate(Robot(), view)
    assert r.status is Status.FAIL and r.severity is Severity.CRITICAL
    assert "strong RSA padding oracle" in r.message and r.evidence["protocol"] == "TLSv1.2"


def test_weak_oracle_fails_high() -> None:
    with RobotServer("weak") as srv:
        view = _scan(srv)
    f = tls(view)
    assert f.robot == "weak_oracle"
    assert f.robot_answers["no_separator"] == "alert decode_error, then closed"
    [r] = evaluate(Robot(), view)
    assert r.status is Status.FAIL and r.severity is None  # the check's own: high
    assert Robot.meta.severity is Severity.HIGH and "weak RSA padding oracle" in r.message


def test_answers_that_change_between_rounds_are_not_assessed() -> None:
    with RobotServer("noise") as srv:
        view = _scan(srv)
        assert srv.key_exchanges == 10
    [r] = evaluate(Robot(), view)
    assert r.status is Status.NOT_ASSESSED and "changed on the repeat" in r.message


def test_silence_after_the_key_exchange_is_not_assessed() -> None:
    with RobotServer("silent") as srv:
        view = _scan(srv)
        assert srv.key_exchanges == 5  # identical silence: no repeat
    [r] = evaluate(Robot(), view)
    assert r.status is Status.NOT_ASSESSED and "never reacted" in r.message


def test_server_without_certificate_is_not_assessed_with_the_reason() -> None:
    with ScriptedTls(legacy_server((0x002F,))) as srv:
        view = _scan(srv)
    f = tls(view)
    assert f.robot is None and "no RSA certificate" in f.robot_reason
    assert f.supported == ["TLSv1.0", "TLSv1.2"]  # the rest of the scan is kept
    [r] = evaluate(Robot(), view)
    assert r.status is Status.NOT_ASSESSED and "no RSA certificate" in r.message


def test_junk_after_the_key_exchange_is_bounded_and_not_assessed() -> None:
    with RobotServer("junk") as srv:
        view = _scan(srv)
        assert srv.key_exchanges == 5
    f = tls(view)
    assert set(f.robot_answers.values()) == {"malformed record"}
    assert f.supported == ["TLSv1.2"] and f.heartbeat is False  # the rest of the scan is kept
    [r] = evaluate(Robot(), view)
    assert r.status is Status.NOT_ASSESSED and "junk" in r.message


@pytest.mark.real
@pytest.mark.skipif(not HAVE_TLS_SERVERS, reason="openssl missing")
def test_client_certificate_request(tmp_path: Path) -> None:
    # openssl s_server asking for an optional client certificate: Assay answers with an empty
    # Certificate, so the server goes on to decrypt (bad_record_mac for the Finished instead
    # of unexpected_message for a missing Certificate)
    issued = TestCA().issue(ips=("127.0.0.1",), key="rsa2048")
    with openssl_server(tmp_path, issued, ["-tls1_2", "-verify", "1"]) as (addr, port):
        view = collect([COLLECTOR], target(addr, port))
    assert tls(view).robot_answers["correct"] == "alert bad_record_mac, then closed"
    [r] = evaluate(Robot(), view)
    assert r.status is Status.PASS
    # one that requires it stops at the empty certificate: nothing was learnt about its RSA
    with openssl_server(tmp_path, issued, ["-tls1_2", "-Verify", "1"]) as (addr, port):
        view = collect([COLLECTOR], target(addr, port))
    [r] = evaluate(Robot(), view)
    assert r.status is Status.NOT_ASSESSED and "requires a client certificate" in r.message


def test_export_rsa_only_is_not_assessed_with_the_reason() -> None:
    # RSA_EXPORT encrypts the premaster secret under a temporary key, not the certificate's
    with ScriptedTls(legacy_server((0x0003,))) as srv:
        view = _scan(srv)
    assert tls(view).robot is None and tls(view).robot_answers == {}
    [r] = evaluate(Robot(), view)
    assert r.status is Status.NOT_ASSESSED and "only export RSA suites" in r.message


def test_oracle_behind_an_optional_client_certificate_still_fails() -> None:
    with RobotServer("strong", request_cert=True) as srv:
        view = _scan(srv)
        assert srv.key_exchanges == 10  # every variant got past the empty Certificate
    assert tls(view).robot == "strong_oracle"
    assert evaluate(Robot(), view)[0].status is Status.FAIL
