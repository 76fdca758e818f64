"""Bad input for the certificate collector: hostile scripted servers, corrupt chains, fuzzing.

Scripted servers play the faults a real TLS server cannot be configured into: a Certificate
message of garbage, a 1 MB chain, a connection closed in the middle of the ServerHello, and
silence after the ClientHello. Each ends in a clear error naming the endpoint within the
probe timeout (no wall-clock assertion: the collector's own deadline is what bounds it, and a
hang would trip pytest's timeout). Corrupt certificates inside an otherwise readable chain are
named while the rest of the chain is still analysed.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import socket
import struct
import threading

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from checks.tls.certificate import (
    ChainIncomplete,
    Expired,
    NameMismatch,
    Untrusted,
    WeakKey,
)
from scanner.collectors.tls_cert import TlsCertCollector, TlsCertError, TlsCertFacts, analyse
from scanner.model import ServiceInfo, Status, Target, TargetKind
from scanner.plugins import CollectContext, FactsView
from scanner.tlscert import dns_matches, load_store, match_identity, parse_chain
from scanner.tlsprobe.endpoint import TlsEndpoint
from tests.helpers import evaluate, guard_for, pick_loopback, statuses
from tests.servers_redis import ScriptedServer, silent
from tests.tls_pki import TestCA

COLLECTOR = TlsCertCollector()
TIMEOUT = 1.0


def target(address: str, port: int) -> Target:
    return Target(
        kind=TargetKind.SERVICE,
        unit="test",
        address=address,
        port=port,
        service=ServiceInfo(name="https"),
    )


def run(t: Target) -> TlsCertFacts:
    assert t.address
    ctx = CollectContext(scope=guard_for(t.address), probe_timeout=TIMEOUT)
    return asyncio.run(asyncio.wait_for(COLLECTOR.collect(t, ctx), 30))


# -- a scripted TLS 1.2 server -------------------------------------------------------------------


def _u24(n: int) -> bytes:
    return n.to_bytes(3, "big")


def _records(handshake: bytes) -> bytes:
    """Split a handshake stream into TLS 1.2 records of at most 16 KiB."""
    out = []
    for i in range(0, len(handshake), 16384):
        chunk = handshake[i : i + 16384]
        out.append(b"\x16\x03\x03" + struct.pack(">H", len(chunk)) + chunk)
    return b"".join(out)


def _read_client_hello(conn: socket.socket) -> bytes:
    conn.settimeout(5)
    head = b""
    while len(head) < 5:
        part = conn.recv(5 - len(head))
        if not part:
            return b""
        head += part
    need = struct.unpack(">H", head[3:5])[0]
    body = b""
    while len(body) < need:
        part = conn.recv(need - len(body))
        if not part:
            break
        body += part
    return body


def _offered_suite(hello: bytes) -> int:
    """The first ECDHE-style TLS 1.2 suite the ClientHello offers (its record body is given)."""
    return next(s for s in _suites(hello) if s >> 8 == 0xC0 and s != 0xC0FF)


def server_hello(suite: int) -> bytes:
    random = os.urandom(32)
    body = b"\x03\x03" + random + b"\x00" + struct.pack(">H", suite) + b"\x00"
    # renegotiation_info (empty) so that the client does not object
    ext = b"\xff\x01\x00\x01\x00"
    body += struct.pack(">H", len(ext)) + ext
    return b"\x02" + _u24(len(body)) + body


def certificate_message(certs: list[bytes]) -> bytes:
    entries = b"".join(_u24(len(c)) + c for c in certs)
    body = _u24(len(entries)) + entries
    return b"\x0b" + _u24(len(body)) + body


def tls_script(after_hello: bytes, hold: bool = True):  # type: ignore[no-untyped-def]
    """A handler that answers the ClientHello with `after_hello` (built per connection)."""

    def handler(conn: socket.socket, stop: threading.Event) -> None:
        hello = _read_client_hello(conn)
        if not hello:
            return
        data = _records(server_hello(_offered_suite(hello)) + after_hello)
        try:
            conn.sendall(data)
        except OSError:
            return  # the client gave up early, as it should on a huge message
        if hold:
            silent(conn, stop)

    return handler


# -- hostile servers ----------------------------------------------------------------------------


def test_garbage_certificate_message() -> None:
    garbage = certificate_message([os.urandom(300)])
    srv = ScriptedServer(pick_loopback(), tls_script(garbage))
    with srv, pytest.raises(TlsCertError) as err:
        run(target(srv.address, srv.port))
    msg = str(err.value)
    assert f"tls {srv.address}:{srv.port}" in msg and "cannot be decoded" in msg


def test_one_megabyte_chain_is_refused() -> None:
    ca = TestCA()
    leaf = ca.issue(ips=("127.0.0.9",)).cert.public_bytes(_der())
    chain = certificate_message([leaf] * (1024 * 1024 // len(leaf) + 1))
    assert len(chain) > 1024 * 1024
    srv = ScriptedServer(pick_loopback(), tls_script(chain, hold=False))
    with srv, pytest.raises(TlsCertError) as err:
        run(target(srv.address, srv.port))
    msg = str(err.value)
    assert f"{srv.address}:{srv.port}" in msg
    assert "exceeds OpenSSL's 100 KiB limit" in msg


def test_server_closes_mid_handshake() -> None:
    def half(conn: socket.socket, stop: threading.Event) -> None:
        hello = _read_client_hello(conn)
        if hello:
            conn.sendall(_records(server_hello(_offered_suite(hello)))[:30])

    with ScriptedServer(pick_loopback(), half) as srv, pytest.raises(TlsCertError) as err:
        run(target(srv.address, srv.port))
    msg = str(err.value)
    assert f"{srv.address}:{srv.port}" in msg
    assert "closed the connection" in msg or "reset the connection" in msg


def test_silent_server() -> None:
    with ScriptedServer(pick_loopback(), silent) as srv, pytest.raises(TlsCertError) as err:
        run(target(srv.address, srv.port))
    msg = str(err.value)
    assert f"{srv.address}:{srv.port}" in msg and f"within {TIMEOUT:g}s" in msg


def test_refused_port() -> None:
    addr = pick_loopback()
    with socket.socket() as s:
        s.bind((addr, 0))
        port = s.getsockname()[1]  # bound, never listening: connections are refused
        with pytest.raises(Exception, match=f"tls {addr}:{port}: cannot connect"):
            run(target(addr, port))


def test_out_of_scope_is_refused_before_connecting() -> None:
    t = target("127.77.0.1", 443)
    ctx = CollectContext(scope=guard_for("127.77.0.2"), probe_timeout=TIMEOUT)
    with pytest.raises(Exception, match=r"127\.77\.0\.1"):
        asyncio.run(COLLECTOR.collect(t, ctx))


def _suites(hello: bytes) -> list[int]:
    p = 4 + 2 + 32
    p += 1 + hello[p]
    n = struct.unpack(">H", hello[p : p + 2])[0]
    return [struct.unpack(">H", hello[p + 2 + i : p + 4 + i])[0] for i in range(0, n, 2)]


def rc4_only(certs: list[bytes]):  # type: ignore[no-untyped-def]
    """An old appliance that speaks only TLS_RSA_WITH_RC4_128_SHA (0x0005).

    Debian's OpenSSL has no RC4, so no real server on this machine can be configured so; the
    script refuses any hello without RC4 with a handshake_failure alert, as such a box does.
    """

    def handler(conn: socket.socket, stop: threading.Event) -> None:
        hello = _read_client_hello(conn)
        if not hello:
            return
        if 0x0005 not in _suites(hello):
            conn.sendall(b"\x15\x03\x03\x00\x02\x02\x28")  # fatal handshake_failure
            return
        done = b"\x0e\x00\x00\x00"  # ServerHelloDone
        conn.sendall(_records(server_hello(0x0005) + certificate_message(certs) + done))
        silent(conn, stop)

    return handler


def test_chain_of_a_server_local_openssl_cannot_talk_to() -> None:
    """The prober reads the chain when OpenSSL shares no suite with the server."""
    addr = pick_loopback()
    ca = TestCA()
    issued = ca.issue(ips=(addr,), key="rsa2048")
    ders = [issued.cert.public_bytes(_der()), ca.intermediate.public_bytes(_der())]
    with ScriptedServer(addr, rc4_only(ders)) as srv:
        facts = run(target(addr, srv.port))
    assert facts.received == 2 and facts.certificates[0].key_type == "RSA"
    assert facts.protocol == "TLSv1.2" and facts.cipher == "TLS_RSA_WITH_RC4_128_SHA"
    view = FactsView(target(addr, srv.port), {COLLECTOR.id: facts})
    assert statuses(NameMismatch(), view) == {Status.PASS}
    assert statuses(ChainIncomplete(), view) == {Status.PASS}


def test_no_shared_suite_with_anyone_is_a_clear_error() -> None:
    def refuse(conn: socket.socket, stop: threading.Event) -> None:
        if _read_client_hello(conn):
            conn.sendall(b"\x15\x03\x03\x00\x02\x02\x28")

    with ScriptedServer(pick_loopback(), refuse) as srv, pytest.raises(TlsCertError) as err:
        run(target(srv.address, srv.port))
    msg = str(err.value)
    assert f"tls {srv.address}:{srv.port}: no handshake reached the certificate" in msg
    assert "OpenSSL:" in msg and "TLSv1.2 hello: alert" in msg


# -- corrupt certificates inside a readable chain ---------------------------------------------


def _der():  # type: ignore[no-untyped-def]
    from cryptography.hazmat.primitives.serialization import Encoding

    return Encoding.DER


EP = TlsEndpoint("127.0.0.9", 443, "", None)
NOW = dt.datetime.now(dt.UTC)


def test_corrupt_intermediate_is_named_and_leaf_still_judged() -> None:
    ca = TestCA()
    issued = ca.issue(ips=("127.0.0.9",))
    leaf = issued.cert.public_bytes(_der())
    facts = analyse(EP, [leaf, b"\x30\x82\x01\x00" + b"\x00" * 40], NOW, ())
    assert len(facts.certificates) == 1 and facts.received == 2
    assert "certificate #1" in facts.errors[0] and "cannot be parsed" in facts.errors[0]
    view = FactsView(target("127.0.0.9", 443), {COLLECTOR.id: facts})
    assert statuses(Expired(), view) == {Status.PASS}
    assert statuses(WeakKey(), view) == {Status.PASS}
    assert statuses(NameMismatch(), view) == {Status.PASS}
    res = evaluate(ChainIncomplete(), view)
    assert [r.status for r in res] == [Status.ERROR] and "certificate #1" in res[0].message


def test_nothing_parseable() -> None:
    facts = analyse(EP, [b"not a certificate"], NOW, ())
    assert facts.certificates == [] and "certificate #0" in facts.errors[0]
    view = FactsView(target("127.0.0.9", 443), {COLLECTOR.id: facts})
    for check in (Expired(), Untrusted(), ChainIncomplete(), NameMismatch()):
        res = evaluate(check, view)
        assert [r.status for r in res] == [Status.ERROR], check.meta.id
        assert "127.0.0.9:443" in res[0].message


def test_oversized_chain_is_cut_and_said() -> None:
    ca = TestCA()
    leaf = ca.issue(ips=("127.0.0.9",)).cert.public_bytes(_der())
    facts = analyse(EP, [leaf] * 800, NOW, ())
    assert any("KiB" in e for e in facts.errors)
    assert len(facts.certificates) <= 16


def test_chain_out_of_order_and_extra_certificate() -> None:
    ca, other = TestCA(), TestCA("Other Root CA")
    issued = ca.issue(ips=("127.0.0.9",))
    ders = [c.public_bytes(_der()) for c in (issued.cert, other.root, ca.root, ca.intermediate)]
    facts = analyse(EP, ders, NOW, ())
    assert facts.chain.path == (0, 3, 2) and facts.chain.unrelated == (1,)
    assert not facts.chain.order_ok and facts.chain.root_sent and facts.chain.complete


def test_expired_intermediate_and_not_yet_valid_leaf() -> None:
    ca = TestCA()
    future = ca.issue(ips=("127.0.0.9",), not_before_days=-5)
    ders = [future.cert.public_bytes(_der()), ca.intermediate.public_bytes(_der())]
    later = NOW + dt.timedelta(days=4000)
    view = FactsView(target("127.0.0.9", 443), {COLLECTOR.id: analyse(EP, ders, NOW, ())})
    res = evaluate(Expired(), view)
    assert [r.status for r in res] == [Status.FAIL] and "not valid before" in res[0].message
    old = FactsView(target("127.0.0.9", 443), {COLLECTOR.id: analyse(EP, ders, later, ())})
    res = evaluate(Expired(), old)
    assert {r.detail for r in res} == {"leaf", "ca:CN=Assay Test Issuing CA,O=Assay test PKI"}


def test_trusted_but_expired_is_not_called_untrusted(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    ca = TestCA()
    root = ca.root_pem(tmp_path_factory.mktemp("root"))
    ders = [
        ca.issue(ips=("127.0.0.9",)).cert.public_bytes(_der()),
        ca.intermediate.public_bytes(_der()),
    ]
    facts = analyse(EP, ders, NOW + dt.timedelta(days=200), (root,))
    assert facts.trust.status == "trusted_outside_validity"
    view = FactsView(target("127.0.0.9", 443), {COLLECTOR.id: facts})
    assert statuses(Untrusted(), view) == {Status.PASS}
    assert statuses(Expired(), view) == {Status.FAIL}


# -- names (RFC 6125) -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("presented", "reference", "ok"),
    [
        ("portal.so-tttt.example", "portal.so-tttt.example", True),
        ("PORTAL.so-tttt.example.", "portal.SO-TTTT.example", True),
        ("*.so-tttt.example", "portal.so-tttt.example", True),
        ("*.so-tttt.example", "so-tttt.example", False),  # covers one label, not none
        ("*.so-tttt.example", "a.portal.so-tttt.example", False),  # ... and not two
        ("*.example", "so-tttt.example", False),  # never a whole top-level domain
        ("p*.so-tttt.example", "portal.so-tttt.example", False),  # partial wildcard
        ("portal.*.example", "portal.so-tttt.example", False),  # not the left-most label
        ("*.*.example", "a.b.example", False),
        ("xn--bcher-kva.example", "bücher.example", True),  # IDN compared as A-labels
        ("", "portal.so-tttt.example", False),
    ],
)
def test_dns_matching(presented: str, reference: str, ok: bool) -> None:
    assert dns_matches(presented, reference) is ok


def test_ip_reference_needs_an_ip_san() -> None:
    ca = TestCA()
    by_name = parse_chain(
        [ca.issue(names=("127.0.0.9",), cn="127.0.0.9").cert.public_bytes(_der())]
    )
    assert not match_identity(by_name.infos[0], "127.0.0.9").matched  # a DNS-ID is not an IP
    by_ip = parse_chain([ca.issue(ips=("::1",)).cert.public_bytes(_der())])
    assert match_identity(by_ip.infos[0], "0:0::1").matched


def test_common_name_only_when_allowed_and_no_san() -> None:
    ca = TestCA()
    issued = ca.issue(cn="portal.so-tttt.example")  # no names, no ips: no subjectAltName
    info = parse_chain([issued.cert.public_bytes(_der())]).infos[0]
    assert not info.san_present
    assert not match_identity(info, "portal.so-tttt.example").matched
    assert match_identity(info, "portal.so-tttt.example", allow_common_name=True).how == (
        "common-name"
    )


def test_store_errors_name_the_file(tmp_path_factory: pytest.TempPathFactory) -> None:
    d = tmp_path_factory.mktemp("store")
    (d / "empty").mkdir()
    store = load_store([d / "missing.pem", d / "empty"], system=False)
    assert any("missing.pem: no such file" in e for e in store.errors)
    assert any("holds no certificate files" in e for e in store.errors)


# -- fuzzing --------------------------------------------------------------------------------------


@settings(max_examples=150, deadline=None)
@given(st.lists(st.binary(max_size=600), max_size=5))
def test_parse_chain_never_raises(ders: list[bytes]) -> None:
    parsed = parse_chain(ders)
    assert len(parsed.infos) <= len(ders)
    assert len(parsed.infos) == len(ders) or parsed.errors


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=80), st.text(max_size=80))
def test_dns_matches_never_raises(presented: str, reference: str) -> None:
    assert dns_matches(presented, reference) in (True, False)


def test_missing_intermediate_records_aia_without_fetching() -> None:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import AuthorityInformationAccessOID, NameOID

    ca = TestCA()
    key = ec.generate_private_key(ec.SECP256R1())
    url = "http://pki.so-tttt.example/issuing-ca.crt"  # never contacted: conftest would fail
    leaf = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "portal")]))
        .issuer_name(ca.intermediate.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(NOW - dt.timedelta(days=1))
        .not_valid_after(NOW + dt.timedelta(days=60))
        .add_extension(
            x509.AuthorityInformationAccess(
                [
                    x509.AccessDescription(
                        AuthorityInformationAccessOID.CA_ISSUERS,
                        x509.UniformResourceIdentifier(url),
                    )
                ]
            ),
            critical=False,
        )
        .sign(ca.inter_key, hashes.SHA256())
    )
    facts = analyse(EP, [leaf.public_bytes(_der())], NOW, ())
    assert not facts.chain.complete and facts.chain.missing_issuer_urls == (url,)
    view = FactsView(target("127.0.0.9", 443), {COLLECTOR.id: facts})
    res = evaluate(ChainIncomplete(), view)
    assert [r.status for r in res] == [Status.FAIL]
    assert url in res[0].message and "not fetched" in res[0].message
