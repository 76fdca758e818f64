"""Certificate collector and checks against real nginx and openssl s_server sites.

Every check FAILs on a weak real server and PASSes on the strong one: the weak nginx site
(expired self-signed SHA-1 RSA-1024 without subjectAltName), the strong nginx site (ECDSA
P-256 for its IP from the tests' CA, with its intermediate), and `openssl s_server` serving a
certificate without its intermediate, one ending in 10 days, and one for another name.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import ssl
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from checks.tls.certificate import (
    ChainIncomplete,
    Expired,
    Expiring,
    NameMismatch,
    NoRevocation,
    Sha1Signature,
    Untrusted,
    WeakKey,
)
from scanner.collectors.tls_cert import TlsCertCollector, TlsCertFacts
from scanner.inventory import InventoryError, parse_inventory
from scanner.model import Result, ServiceInfo, Status, Target, TargetKind
from scanner.plugins import Check, CollectContext, FactsView
from tests.helpers import evaluate, guard_for, pick_loopback, statuses
from tests.servers_redis import ScriptedServer
from tests.servers_tls import HAVE_TLS_SERVERS, TlsSites, openssl_server, tls_sites
from tests.tls_pki import TestCA

pytestmark = [
    pytest.mark.real,
    pytest.mark.skipif(not HAVE_TLS_SERVERS, reason="nginx or openssl is not installed"),
]

COLLECTOR = TlsCertCollector()
FAIL, PASS = {Status.FAIL}, {Status.PASS}


def target(address: str, port: int, names: tuple[str, ...] = (), name: str = "https") -> Target:
    return Target(
        kind=TargetKind.SERVICE,
        unit="test",
        address=address,
        port=port,
        names=names,
        service=ServiceInfo(name=name),
    )


def scan(t: Target, trust: tuple[Path, ...] = ()) -> FactsView:
    assert t.address
    ctx = CollectContext(scope=guard_for(t.address), probe_timeout=5.0, tls_trust=trust)
    facts = asyncio.run(COLLECTOR.collect(t, ctx))
    return FactsView(t, {COLLECTOR.id: facts})


def with_params(check: Check, view: FactsView, **params: object) -> set[Status]:
    out = check.evaluate(view, check.Params(**params))
    return {r.status for r in ([out] if isinstance(out, Result) else out)}


def facts_of(view: FactsView) -> TlsCertFacts:
    return view.get(COLLECTOR.id, TlsCertFacts)


@dataclass(frozen=True)
class Lab:
    sites: TlsSites
    ca: TestCA
    root: Path
    no_intermediate: tuple[str, int]
    expiring: tuple[str, int]
    other_name: tuple[str, int]
    rsa2048: tuple[str, int]
    no_revocation: tuple[str, int]


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    work = tmp_path_factory.mktemp("tlscert")
    ca = TestCA()
    with tls_sites(work, ca) as sites:
        a1, a2, a3, a4, a5 = (pick_loopback() for _ in range(5))
        no_int = ca.issue(ips=(a1,))
        soon = ca.issue(ips=(a2,), days=11, not_before_days=1)  # 10 days left
        other = ca.issue(names=("other.so-tttt.example",))
        rsa = ca.issue(ips=(a4,), names=("portal.so-tttt.example",), key="rsa2048")
        unrevocable = ca.issue(ips=(a5,), revocation=False)
        with (
            openssl_server(work, no_int, full_chain=False, address=a1) as s1,
            openssl_server(work, soon, address=a2) as s2,
            openssl_server(work, other, address=a3) as s3,
            openssl_server(work, rsa, address=a4) as s4,
            openssl_server(work, unrevocable, address=a5) as s5,
        ):
            assert sites.strong.ca_file
            yield Lab(sites, ca, sites.strong.ca_file, s1, s2, s3, s4, s5)


@pytest.fixture(scope="module")
def weak(lab: Lab) -> FactsView:
    return scan(target(lab.sites.weak.address, lab.sites.weak.port))


@pytest.fixture(scope="module")
def strong(lab: Lab) -> FactsView:
    return scan(target(lab.sites.strong.address, lab.sites.strong.port), (lab.root,))


# -- what the collector reads -----------------------------------------------------------------


def test_weak_site_facts(weak: FactsView) -> None:
    f = facts_of(weak)
    assert f.received == 1 and f.errors == []
    leaf = f.certificates[0]
    assert (leaf.key_type, leaf.key_bits) == ("RSA", 1024)
    assert leaf.signature_hash == "sha1" and leaf.signature_algorithm == "sha1WithRSAEncryption"
    assert leaf.self_signed and not leaf.san_present
    assert leaf.days_left(f.scanned_at) < 0
    assert f.trust.status == "self_signed"
    assert f.chain.root_sent and f.chain.path == (0,)
    assert f.der and f.reference == f.address


def test_strong_site_facts(strong: FactsView, lab: Lab) -> None:
    f = facts_of(strong)
    assert f.received == 2 and f.errors == []
    leaf, inter = f.certificates
    assert (leaf.key_type, leaf.key_bits, leaf.curve) == ("EC", 256, "secp256r1")
    assert leaf.ip_addresses == (lab.sites.strong.address,)
    assert inter.is_ca and not inter.self_signed
    assert f.chain.complete and f.chain.order_ok and f.chain.path == (0, 1)
    assert f.trust.status == "trusted"
    assert f.trust.anchor == "CN=Assay Test Root CA,O=Assay test PKI"
    assert any(s.startswith("inventory:") for s in f.trust.stores)
    assert f.protocol in ("TLSv1.2", "TLSv1.3")


def test_facts_survive_a_json_round_trip(strong: FactsView) -> None:
    f = facts_of(strong)
    again = TlsCertFacts.model_validate_json(f.model_dump_json())
    assert again == f
    view = FactsView(strong.target, {COLLECTOR.id: again})
    assert statuses(Untrusted(), view) == PASS


# -- every check: FAIL on a weak real server, PASS on the strong one ---------------------------


def test_expired(weak: FactsView, strong: FactsView) -> None:
    res = evaluate(Expired(), weak)
    assert [r.status for r in res] == [Status.FAIL]
    assert res[0].detail == "leaf" and "expired 30 days ago" in res[0].message
    assert res[0].evidence["days_left"] == -31  # whole days left, rounded down
    assert statuses(Expired(), strong) == PASS


def test_expiring(lab: Lab, strong: FactsView, weak: FactsView) -> None:
    soon = scan(target(*lab.expiring), (lab.root,))
    res = evaluate(Expiring(), soon)
    assert [r.status for r in res] == [Status.FAIL]
    # 10 days minus the seconds since issuing: 9 whole days left
    assert "expires in 9 days" in res[0].message and res[0].detail == "leaf"
    assert statuses(Expiring(), strong) == PASS
    # the window is a parameter: 5 days lets the 10-day certificate pass
    assert with_params(Expiring(), soon, days=5) == PASS
    # an expired certificate is tls.cert.expired's finding, not counted twice
    assert statuses(Expiring(), weak) == {Status.NOT_APPLICABLE}


def test_weak_key(weak: FactsView, strong: FactsView, lab: Lab) -> None:
    res = evaluate(WeakKey(), weak)
    assert [r.status for r in res] == [Status.FAIL]
    assert "RSA key of 1024 bits" in res[0].message
    assert statuses(WeakKey(), strong) == PASS
    rsa = scan(target(*lab.rsa2048), (lab.root,))
    assert statuses(WeakKey(), rsa) == PASS
    assert with_params(WeakKey(), rsa, rsa_min_bits=3072) == FAIL


def test_sha1(weak: FactsView, strong: FactsView) -> None:
    res = evaluate(Sha1Signature(), weak)
    assert [r.status for r in res] == [Status.FAIL]
    assert "sha1WithRSAEncryption" in res[0].message
    assert statuses(Sha1Signature(), strong) == PASS


def test_name_mismatch(weak: FactsView, strong: FactsView, lab: Lab) -> None:
    res = evaluate(NameMismatch(), weak)
    assert [r.status for r in res] == [Status.FAIL]
    assert "no subjectAltName" in res[0].message
    assert statuses(NameMismatch(), strong) == PASS
    # by name: SNI is sent and the certificate's DNS name is matched
    by_name = scan(
        target(lab.sites.strong.address, lab.sites.strong.port, ("portal.so-tttt.example",)),
        (lab.root,),
    )
    assert facts_of(by_name).server_name == "portal.so-tttt.example"
    assert statuses(NameMismatch(), by_name) == PASS
    other = scan(target(*lab.other_name, ("portal.so-tttt.example",)), (lab.root,))
    res = evaluate(NameMismatch(), other)
    assert [r.status for r in res] == [Status.FAIL]
    assert "other.so-tttt.example" in res[0].message


def test_untrusted(weak: FactsView, strong: FactsView, lab: Lab) -> None:
    res = evaluate(Untrusted(), weak)
    assert [r.status for r in res] == [Status.FAIL] and "self-signed" in res[0].message
    assert statuses(Untrusted(), strong) == PASS
    # the same strong site without the unit's CA: no path to a trusted root, and it says so
    bare = scan(target(lab.sites.strong.address, lab.sites.strong.port))
    res = evaluate(Untrusted(), bare)
    assert [r.status for r in res] == [Status.FAIL]
    assert "no path" in res[0].message and "Assay Test Issuing CA" in res[0].message


def test_chain_incomplete(lab: Lab, strong: FactsView, weak: FactsView) -> None:
    missing = scan(target(*lab.no_intermediate), (lab.root,))
    f = facts_of(missing)
    assert f.received == 1 and not f.chain.complete
    res = evaluate(ChainIncomplete(), missing)
    assert [r.status for r in res] == [Status.FAIL]
    assert "Assay Test Issuing CA" in res[0].message
    # without the intermediate no path can be built either
    assert statuses(Untrusted(), missing) == FAIL
    assert statuses(ChainIncomplete(), strong) == PASS
    assert statuses(ChainIncomplete(), weak) == {Status.NOT_APPLICABLE}
    # a complete chain whose root Assay does not know is still complete (the root may be
    # omitted); its trust is tls.cert.untrusted's finding
    bare = scan(target(lab.sites.strong.address, lab.sites.strong.port))
    assert statuses(ChainIncomplete(), bare) == PASS


def test_no_revocation(lab: Lab, strong: FactsView, weak: FactsView) -> None:
    bare = scan(target(*lab.no_revocation), (lab.root,))
    leaf = facts_of(bare).certificates[0]
    assert not leaf.crl_urls and not leaf.aia_ocsp
    res = evaluate(NoRevocation(), bare)
    assert [r.status for r in res] == [Status.FAIL] and res[0].detail == "leaf"
    assert "neither a CRL distribution point nor an OCSP responder" in res[0].message
    # the strong site's certificate names both (read, never fetched)
    good = facts_of(strong).certificates[0]
    assert good.crl_urls == ("http://pki.assay-test.invalid/issuing.crl",)
    assert good.aia_ocsp == ("http://ocsp.assay-test.invalid/",)
    [r] = evaluate(NoRevocation(), strong)
    assert r.status is Status.PASS and "CRL and OCSP" in r.message
    # a self-signed certificate has no issuer that could revoke it: untrusted's finding
    assert statuses(NoRevocation(), weak) == {Status.NOT_APPLICABLE}


# -- the inventory's trust setting -------------------------------------------------------------


INVENTORY = """\
version: 1
settings:
  tls_trust: [{path}]
units:
  - id: so-tttt
    name: Test unit
    hosts:
      - address: 10.0.0.5
"""


def test_inventory_tls_trust(tmp_path: Path) -> None:
    inv = parse_inventory(INVENTORY.format(path="/etc/assay/unit-ca.pem"), "unit.yaml")
    assert inv.settings.tls_trust == [Path("/etc/assay/unit-ca.pem")]
    plain = INVENTORY.replace("settings:\n  tls_trust: [{path}]\n", "")
    assert parse_inventory(plain).settings.tls_trust == []
    with pytest.raises(InventoryError, match=r"unit.yaml:3 settings.tls_trus: unknown key"):
        parse_inventory(INVENTORY.replace("tls_trust", "tls_trus").format(path="x"), "unit.yaml")


def test_missing_trust_file_is_named_and_costs_nothing_else(lab: Lab, tmp_path: Path) -> None:
    typo = tmp_path / "unit-ca.pme"
    view = scan(target(lab.sites.strong.address, lab.sites.strong.port), (lab.root, typo))
    res = evaluate(Untrusted(), view)
    assert [r.status for r in res] == [Status.ERROR]
    assert str(typo) in res[0].message and "no such file" in res[0].message
    # the chain itself was read and every other check still judges it
    for check in (Expired(), Expiring(), WeakKey(), Sha1Signature(), NameMismatch()):
        assert statuses(check, view) == PASS, check.meta.id
    assert statuses(ChainIncomplete(), view) == PASS


def test_not_a_certificate_trust_file(lab: Lab, tmp_path: Path) -> None:
    junk = tmp_path / "ca.pem"
    junk.write_text("this is not a certificate\n")
    view = scan(target(lab.sites.strong.address, lab.sites.strong.port), (junk,))
    res = evaluate(Untrusted(), view)
    assert [r.status for r in res] == [Status.ERROR]
    assert str(junk) in res[0].message and "not a PEM or DER certificate" in res[0].message


def test_trust_directory(lab: Lab, tmp_path: Path) -> None:
    cas = tmp_path / "cas"
    cas.mkdir()
    (cas / "root.pem").write_bytes(lab.root.read_bytes())
    view = scan(target(lab.sites.strong.address, lab.sites.strong.port), (cas,))
    assert statuses(Untrusted(), view) == PASS


def test_applies_only_to_tls_services() -> None:
    assert COLLECTOR.applies(target("10.0.0.5", 443, name=""))
    assert COLLECTOR.applies(target("10.0.0.5", 25, name="smtp"))
    assert not COLLECTOR.applies(target("10.0.0.5", 6379, name="redis"))


# -- STARTTLS ---------------------------------------------------------------------------------


def _smtp_starttls(context: ssl.SSLContext):  # type: ignore[no-untyped-def]
    """An SMTP greeting, EHLO with STARTTLS, then a real TLS server handshake (stdlib ssl)."""

    def handler(conn: socket.socket, stop: threading.Event) -> None:
        conn.sendall(b"220 mail.so-tttt.example ESMTP\r\n")
        f = conn.makefile("rb")
        if not f.readline().upper().startswith(b"EHLO"):
            return
        conn.sendall(b"250-mail.so-tttt.example\r\n250-SIZE 10240000\r\n250 STARTTLS\r\n")
        if not f.readline().upper().startswith(b"STARTTLS"):
            return
        conn.sendall(b"220 2.0.0 Ready to start TLS\r\n")
        with context.wrap_socket(conn, server_side=True) as tls:
            tls.settimeout(2)
            with contextlib.suppress(OSError):
                tls.recv(1)

    return handler


def test_starttls_smtp(lab: Lab, tmp_path: Path) -> None:
    addr = pick_loopback()
    issued = lab.ca.issue(ips=(addr,))
    crt, key = issued.write(tmp_path, "smtp")
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(crt, key)
    with ScriptedServer(addr, _smtp_starttls(context)) as srv:
        view = scan(target(addr, srv.port, name="smtp"), (lab.root,))
    f = facts_of(view)
    assert f.starttls == "smtp" and "STARTTLS smtp" in f.endpoint
    assert f.received == 2 and f.trust.status == "trusted"
    for check in (Expired(), WeakKey(), Sha1Signature(), NameMismatch(), Untrusted()):
        assert statuses(check, view) == PASS, check.meta.id
