"""Certificate chain analysis: what a TLS server presents, judged with `cryptography`.

The collector hands in the DER certificates exactly as the server sent them; this module
turns them into typed facts (per certificate: names, validity, key, signature hash, CA flag,
self-signed; for the chain: order, completeness, the issuer that is missing) and decides
trust by building and verifying a path with `cryptography.x509.verification` against the
system store plus the CA files the inventory adds, at the scan's own time.

Why signatures are checked here and not with `Certificate.verify_directly_issued_by`: that
method refuses SHA-1, and a SHA-1 self-signed appliance certificate is exactly what must
still be recognised as self-signed. Nothing is fetched: the AIA caIssuers address of a chain
that lacks its intermediate is recorded for the report, never downloaded (a scan must not
talk to the Internet).

Name matching follows RFC 6125: DNS-IDs from subjectAltName, the wildcard only as the whole
left-most label and covering exactly one label, never directly below a top-level domain; an IP
address is matched against iPAddress entries only; the subject CN is consulted only when the
certificate has no subjectAltName at all, and only when the caller allows it (browsers no
longer do).
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import ipaddress
import os
import ssl
import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import certifi
from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed448, ed25519, padding, rsa
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.utils import CryptographyDeprecationWarning
from cryptography.x509 import verification
from cryptography.x509.oid import AuthorityInformationAccessOID, NameOID
from pydantic import BaseModel, ConfigDict

MAX_CERTS = 16  # certificates analysed per chain (real chains have 2-4)
MAX_NAMES = 200  # subjectAltName entries kept per certificate (the count is kept in full)
MAX_TEXT = 512  # characters of a subject/issuer string kept
MAX_TRUST_FILE = 8 * 1024 * 1024  # bytes of one CA file the inventory names

KeyType = Literal["RSA", "EC", "Ed25519", "Ed448", "DSA", "unknown"]
TrustStatus = Literal["trusted", "trusted_outside_validity", "self_signed", "untrusted", "unknown"]


class CertInfo(BaseModel):
    """One certificate of the presented chain (position 0 is the server's own)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    position: int
    subject: str
    issuer: str
    common_names: tuple[str, ...] = ()
    serial: str  # hex
    not_before: dt.datetime
    not_after: dt.datetime
    key_type: KeyType
    key_bits: int = 0
    curve: str = ""
    signature_algorithm: str  # "sha256WithRSAEncryption", "ecdsa-with-SHA256", an OID ...
    signature_hash: str = ""  # "sha256", "sha1", "md5"; "" for Ed25519/Ed448 or unknown
    dns_names: tuple[str, ...] = ()
    ip_addresses: tuple[str, ...] = ()
    san_present: bool = False
    san_count: int = 0
    is_ca: bool = False
    self_issued: bool = False  # subject equals issuer
    self_signed: bool = False  # ... and the signature verifies with its own key
    aia_ca_issuers: tuple[str, ...] = ()
    aia_ocsp: tuple[str, ...] = ()
    crl_urls: tuple[str, ...] = ()  # full-name URIs of the CRL distribution points
    sha256: str  # fingerprint of the DER, hex
    parse_warnings: tuple[str, ...] = ()

    def valid_at(self, when: dt.datetime) -> bool:
        return self.not_before <= when <= self.not_after

    def days_left(self, when: dt.datetime) -> int:
        """Whole days from `when` until the end of validity (negative once expired)."""
        return (self.not_after - when) // dt.timedelta(days=1)

    @property
    def label(self) -> str:
        cn = self.common_names[0] if self.common_names else self.subject
        return f"#{self.position} {cn}"


class ChainInfo(BaseModel):
    """How the presented certificates hang together."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    path: tuple[int, ...] = ()  # positions from the leaf up, following issuer links
    order_ok: bool = True  # each certificate is followed by its issuer, as RFC 8446 asks
    unrelated: tuple[int, ...] = ()  # positions not on the leaf's path
    root_sent: bool = False  # the path ends in a self-signed certificate the server sent
    # False when the server's own certificate (or a non-CA certificate on top of the path)
    # is not followed by its issuer and that issuer is not a trust anchor: an intermediate
    # is missing, and clients without it cached fail.
    complete: bool = True
    issuer_unknown: bool = False  # the top is a CA whose issuer is neither sent nor known
    missing_issuer: str = ""  # issuer name of the top certificate when it is not available
    missing_issuer_urls: tuple[str, ...] = ()  # AIA caIssuers of that certificate (not fetched)


class TrustInfo(BaseModel):
    """Whether a path to a trusted root exists, and against which stores."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    status: TrustStatus
    reason: str = ""
    anchor: str = ""  # subject of the trust anchor the path ends in
    path: tuple[str, ...] = ()  # subjects along the verified path, leaf first
    verified_at: dt.datetime | None = None
    stores: tuple[str, ...] = ()  # "system:/etc/ssl/certs/ca-certificates.crt", "inventory:..."
    anchors: int = 0  # how many anchors were loaded
    store_errors: tuple[str, ...] = ()


# -- parsing -----------------------------------------------------------------------------------


def _short(text: str, limit: int = MAX_TEXT) -> str:
    clean = "".join(c if c.isprintable() else "?" for c in text)
    return clean if len(clean) <= limit else clean[: limit - 3] + "..."


def _name_text(name: x509.Name) -> str:
    try:
        return _short(name.rfc4514_string())
    except ValueError:
        return "(unreadable name)"


def _common_names(name: x509.Name) -> tuple[str, ...]:
    out: list[str] = []
    for attr in name.get_attributes_for_oid(NameOID.COMMON_NAME):
        value = attr.value
        out.append(_short(value if isinstance(value, str) else value.decode("latin-1"), 256))
    return tuple(out[:8])


def _key(cert: x509.Certificate) -> tuple[KeyType, int, str]:
    try:
        key = cert.public_key()
    except (ValueError, UnsupportedAlgorithm):
        return "unknown", 0, ""
    if isinstance(key, rsa.RSAPublicKey):
        return "RSA", key.key_size, ""
    if isinstance(key, ec.EllipticCurvePublicKey):
        return "EC", key.curve.key_size, key.curve.name
    if isinstance(key, ed25519.Ed25519PublicKey):
        return "Ed25519", 256, ""
    if isinstance(key, ed448.Ed448PublicKey):
        return "Ed448", 456, ""
    if isinstance(key, dsa.DSAPublicKey):
        return "DSA", key.key_size, ""
    return "unknown", 0, ""


def _signature(cert: x509.Certificate) -> tuple[str, str]:
    oid = cert.signature_algorithm_oid
    name = getattr(oid, "_name", "") or oid.dotted_string
    if name == "Unknown OID":
        name = oid.dotted_string
    try:
        algo = cert.signature_hash_algorithm
    except UnsupportedAlgorithm:
        lowered = name.lower()
        guess = next((h for h in ("md5", "md2", "sha1") if h in lowered), "")
        return name, guess
    return name, algo.name if algo is not None else ""


def _ext(cert: x509.Certificate, cls: type[x509.ExtensionType], notes: list[str]) -> object:
    try:
        return cert.extensions.get_extension_for_class(cls).value
    except x509.ExtensionNotFound:
        return None
    except (ValueError, x509.DuplicateExtension, UnsupportedAlgorithm) as exc:
        notes.append(f"{cls.__name__}: {exc}")
        return None


def _signed_by(cert: x509.Certificate, issuer: x509.Certificate) -> bool:
    """Whether `issuer`'s key verifies `cert`'s signature (SHA-1 and MD5 included)."""
    if cert.issuer != issuer.subject:
        return False
    try:
        key = issuer.public_key()
        algo = cert.signature_hash_algorithm
        sig, tbs = cert.signature, cert.tbs_certificate_bytes
        if isinstance(key, rsa.RSAPublicKey) and algo is not None:
            pad = cert.signature_algorithm_parameters
            if not isinstance(pad, padding.PSS | padding.PKCS1v15):
                return False
            key.verify(sig, tbs, pad, algo)
        elif isinstance(key, ec.EllipticCurvePublicKey) and algo is not None:
            key.verify(sig, tbs, ec.ECDSA(algo))
        elif isinstance(key, ed25519.Ed25519PublicKey | ed448.Ed448PublicKey):
            key.verify(sig, tbs)
        elif isinstance(key, dsa.DSAPublicKey) and algo is not None:
            key.verify(sig, tbs, algo)
        else:
            return False
    except (InvalidSignature, ValueError, TypeError, UnsupportedAlgorithm):
        return False
    return True


def describe(cert: x509.Certificate, position: int, notes: Sequence[str] = ()) -> CertInfo:
    """The facts of one parsed certificate."""
    warn = list(notes)
    san = _ext(cert, x509.SubjectAlternativeName, warn)
    dns: list[str] = []
    ips: list[str] = []
    count = 0
    if isinstance(san, x509.SubjectAlternativeName):
        for general in san:
            count += 1
            if count > MAX_NAMES:
                continue
            if isinstance(general, x509.DNSName):
                dns.append(_short(general.value, 256))
            elif isinstance(general, x509.IPAddress):
                dns_or_ip = general.value
                if isinstance(dns_or_ip, ipaddress.IPv4Address | ipaddress.IPv6Address):
                    ips.append(str(dns_or_ip))
    bc = _ext(cert, x509.BasicConstraints, warn)
    aia = _ext(cert, x509.AuthorityInformationAccess, warn)
    ca_issuers: list[str] = []
    ocsp: list[str] = []
    if isinstance(aia, x509.AuthorityInformationAccess):
        for desc in aia:
            if not isinstance(desc.access_location, x509.UniformResourceIdentifier):
                continue
            url = _short(desc.access_location.value, 256)
            if desc.access_method == AuthorityInformationAccessOID.CA_ISSUERS:
                ca_issuers.append(url)
            elif desc.access_method == AuthorityInformationAccessOID.OCSP:
                ocsp.append(url)
    crls: list[str] = []
    cdp = _ext(cert, x509.CRLDistributionPoints, warn)
    if isinstance(cdp, x509.CRLDistributionPoints):
        for point in cdp:
            for general in point.full_name or ():
                if isinstance(general, x509.UniformResourceIdentifier):
                    crls.append(_short(general.value, 256))
    key_type, bits, curve = _key(cert)
    sig_name, sig_hash = _signature(cert)
    self_issued = cert.subject == cert.issuer
    serial = cert.serial_number
    return CertInfo(
        position=position,
        subject=_name_text(cert.subject),
        issuer=_name_text(cert.issuer),
        common_names=_common_names(cert.subject),
        serial=("-" if serial < 0 else "") + format(abs(serial), "x"),
        not_before=cert.not_valid_before_utc,
        not_after=cert.not_valid_after_utc,
        key_type=key_type,
        key_bits=bits,
        curve=curve,
        signature_algorithm=sig_name,
        signature_hash=sig_hash,
        dns_names=tuple(dns),
        ip_addresses=tuple(ips),
        san_present=san is not None,
        san_count=count,
        is_ca=isinstance(bc, x509.BasicConstraints) and bc.ca,
        self_issued=self_issued,
        self_signed=self_issued and _signed_by(cert, cert),
        aia_ca_issuers=tuple(ca_issuers[:8]),
        aia_ocsp=tuple(ocsp[:8]),
        crl_urls=tuple(crls[:8]),
        sha256=hashlib.sha256(cert.public_bytes(Encoding.DER)).hexdigest(),
        parse_warnings=tuple(_short(w, 200) for w in warn[:8]),
    )


@dataclass(frozen=True)
class ParsedChain:
    """The presented chain after parsing: objects for analysis, facts, and what went wrong."""

    certs: tuple[x509.Certificate, ...]
    infos: tuple[CertInfo, ...]
    errors: tuple[str, ...]
    received: int  # certificates the server sent


def parse_chain(ders: Sequence[bytes]) -> ParsedChain:
    """Parse the DER certificates; a certificate that cannot be parsed is named, not fatal.

    Only the first MAX_CERTS are analysed. A certificate `cryptography` cannot read stops
    the chain at that point for analysis (its successors cannot be linked reliably), but the
    certificates before it stay usable.
    """
    certs: list[x509.Certificate] = []
    infos: list[CertInfo] = []
    errors: list[str] = []
    if len(ders) > MAX_CERTS:
        errors.append(f"the server sent {len(ders)} certificates; the first {MAX_CERTS} analysed")
    for pos, der in enumerate(ders[:MAX_CERTS]):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                cert = x509.load_der_x509_certificate(der)
                info = describe(cert, pos, [str(w.message) for w in caught])
            except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
                why = _short(str(exc), 200)
                errors.append(f"certificate #{pos} ({len(der)} bytes) cannot be parsed: {why}")
                break
        certs.append(cert)
        infos.append(info)
    return ParsedChain(tuple(certs), tuple(infos), tuple(errors), len(ders))


# -- chain structure --------------------------------------------------------------------------


def analyse_chain(
    certs: Sequence[x509.Certificate],
    infos: Sequence[CertInfo],
    anchors: Iterable[x509.Certificate] = (),
) -> ChainInfo:
    """Order and completeness of the presented chain, with `anchors` as the roots one may omit."""
    if not certs:
        return ChainInfo(complete=False)
    order_ok = all(_signed_by(certs[i], certs[i + 1]) for i in range(len(certs) - 1))
    path = [0]
    while not infos[path[-1]].self_signed and len(path) < len(certs):
        top = certs[path[-1]]
        nxt = next(
            (i for i in range(len(certs)) if i not in path and _signed_by(top, certs[i])), None
        )
        if nxt is None:
            break
        path.append(nxt)
    top_i = path[-1]
    unrelated = tuple(i for i in range(len(certs)) if i not in path)
    if infos[top_i].self_signed:
        return ChainInfo(path=tuple(path), order_ok=order_ok, unrelated=unrelated, root_sent=True)
    top = certs[top_i]
    if any(_signed_by(top, a) for a in anchors if a.subject == top.issuer):
        return ChainInfo(path=tuple(path), order_ok=order_ok, unrelated=unrelated)
    if infos[top_i].is_ca and top_i != 0:
        # The server sent its intermediates; only the root is unknown, which servers may
        # omit. Whether that root is trusted is the trust verdict's business.
        return ChainInfo(
            path=tuple(path),
            order_ok=order_ok,
            unrelated=unrelated,
            issuer_unknown=True,
            missing_issuer=infos[top_i].issuer,
        )
    return ChainInfo(
        path=tuple(path),
        order_ok=order_ok,
        unrelated=unrelated,
        complete=False,
        missing_issuer=infos[top_i].issuer,
        missing_issuer_urls=infos[top_i].aia_ca_issuers,
    )


# -- names (RFC 6125) ---------------------------------------------------------------------------


def _norm_dns(name: str) -> str | None:
    """Lower-case A-label form of a DNS name, or None when it is not a usable name."""
    name = name.strip().rstrip(".")
    if not name or len(name) > 253:
        return None
    try:
        ascii_name = name.encode("idna").decode("ascii") if not name.isascii() else name
    except UnicodeError:
        return None
    return ascii_name.lower()


def _ip(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(text.strip().strip("[]"))
    except ValueError:
        return None


def dns_matches(presented: str, reference: str) -> bool:
    """RFC 6125 section 6.4: exact match, or a whole-label wildcard covering one label."""
    pres, ref = _norm_dns(presented), _norm_dns(reference)
    if pres is None or ref is None:
        return False
    if pres == ref and "*" not in pres:
        return True
    if not pres.startswith("*.") or "*" in pres[2:]:
        return False  # partial wildcards ("w*.example.org") are refused, as browsers do
    suffix = pres[2:]
    if suffix.count(".") < 1:
        return False  # "*.org" would cover a whole top-level domain
    head, _, rest = ref.partition(".")
    return bool(head) and rest == suffix


@dataclass(frozen=True)
class NameMatch:
    matched: bool
    how: str  # "san-dns", "san-ip", "common-name", ""
    presented: tuple[str, ...]  # the identities the certificate offers, for the evidence


def match_identity(cert: CertInfo, reference: str, allow_common_name: bool = False) -> NameMatch:
    """Whether `cert` is for `reference` (a DNS name or an IP address)."""
    presented = (*cert.dns_names, *cert.ip_addresses)
    ip = _ip(reference)
    if ip is not None:
        ok = any(_ip(a) == ip for a in cert.ip_addresses)
        return NameMatch(ok, "san-ip" if ok else "", presented or cert.common_names)
    if any(dns_matches(n, reference) for n in cert.dns_names):
        return NameMatch(True, "san-dns", presented)
    if allow_common_name and not cert.san_present:
        ok = any(dns_matches(cn, reference) for cn in cert.common_names)
        return NameMatch(ok, "common-name" if ok else "", cert.common_names)
    return NameMatch(False, "", presented or cert.common_names)


# -- trust --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TrustStore:
    anchors: tuple[x509.Certificate, ...]
    sources: tuple[str, ...]
    errors: tuple[str, ...]


def system_store_path() -> Path:
    """The operating system's CA bundle (what the unit's own clients trust), else certifi's."""
    paths = ssl.get_default_verify_paths()
    for candidate in (os.environ.get(paths.openssl_cafile_env or ""), paths.cafile):
        if candidate and Path(candidate).is_file():
            return Path(candidate)
    return Path(certifi.where())


def _load_file(path: Path) -> list[x509.Certificate]:
    size = path.stat().st_size
    if size > MAX_TRUST_FILE:
        raise ValueError(f"larger than {MAX_TRUST_FILE // (1024 * 1024)} MiB")
    data = path.read_bytes()
    with warnings.catch_warnings():
        # system bundles still hold a few old roots with non-positive serial numbers
        warnings.simplefilter("ignore", CryptographyDeprecationWarning)
        if b"-----BEGIN CERTIFICATE-----" in data:
            return x509.load_pem_x509_certificates(data)
        return [x509.load_der_x509_certificate(data)]


def _load_source(path: Path, label: str) -> tuple[list[x509.Certificate], list[str]]:
    certs: list[x509.Certificate] = []
    errors: list[str] = []
    files = sorted(p for p in path.iterdir() if p.is_file()) if path.is_dir() else [path]
    if path.is_dir() and not files:
        errors.append(f"{label} {path}: directory holds no certificate files")
    for file in files[:1000]:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                certs.extend(_load_file(file))
            except FileNotFoundError:
                errors.append(f"{label} {file}: no such file")
            except OSError as exc:
                errors.append(f"{label} {file}: cannot be read: {exc.strerror or exc}")
            except (ValueError, TypeError) as exc:
                why = _short(str(exc), 120)
                errors.append(f"{label} {file}: not a PEM or DER certificate ({why})")
    return certs, errors


@functools.lru_cache(maxsize=8)
def _cached(
    path: str, mtime: float, label: str
) -> tuple[tuple[x509.Certificate, ...], tuple[str, ...]]:
    certs, errors = _load_source(Path(path), label)
    return tuple(certs), tuple(errors)


def load_store(extra: Sequence[Path | str] = (), system: bool = True) -> TrustStore:
    """System anchors plus every certificate in the `extra` files or directories.

    A missing or unreadable extra file is an error of the store (named with its path) rather
    than a silently smaller store: a verdict of "untrusted" would otherwise blame the server
    for a typo in the inventory.
    """
    anchors: list[x509.Certificate] = []
    sources: list[str] = []
    errors: list[str] = []
    items: list[tuple[Path, str]] = [(system_store_path(), "system")] if system else []
    items += [(Path(p).expanduser(), "tls_trust") for p in extra]
    for path, label in items:
        try:
            mtime = path.stat().st_mtime
        except FileNotFoundError:
            errors.append(f"{label} {path}: no such file")
            continue
        except OSError as exc:
            errors.append(f"{label} {path}: cannot be read: {exc.strerror or exc}")
            continue
        certs, errs = _cached(str(path), mtime, label)
        anchors.extend(certs)
        errors.extend(errs)
        sources.append(f"{'system' if label == 'system' else 'inventory'}:{path}")
    return TrustStore(tuple(anchors), tuple(sources), tuple(errors))


def _verify_at(
    store: verification.Store,
    leaf: x509.Certificate,
    intermediates: list[x509.Certificate],
    when: dt.datetime,
) -> list[x509.Certificate]:
    # The client verifier with a permissive end-entity policy builds and checks the path
    # (signatures, CA constraints, validity, webpki algorithm rules) without matching a name
    # or requiring a subjectAltName: the name is a separate finding (tls.cert.name_mismatch).
    builder = (
        verification.PolicyBuilder()
        .store(store)
        .time(when)
        .extension_policies(
            ca_policy=verification.ExtensionPolicy.webpki_defaults_ca(),
            ee_policy=verification.ExtensionPolicy.permit_all(),
        )
    )
    return list(builder.build_client_verifier().verify(leaf, intermediates).chain)


def verify_trust(
    certs: Sequence[x509.Certificate],
    infos: Sequence[CertInfo],
    store: TrustStore,
    when: dt.datetime,
) -> TrustInfo:
    """Build and verify a path from the leaf to an anchor of `store` at `when`."""

    def result(
        status: TrustStatus, reason: str = "", chain: Sequence[x509.Certificate] = ()
    ) -> TrustInfo:
        return TrustInfo(
            status=status,
            reason=reason,
            anchor=_name_text(chain[-1].subject) if chain else "",
            path=tuple(_name_text(c.subject) for c in chain),
            verified_at=when,
            stores=store.sources,
            anchors=len(store.anchors),
            store_errors=store.errors,
        )

    if store.errors:
        return result(
            "unknown", "the trust store could not be loaded completely: " + "; ".join(store.errors)
        )
    if not certs:
        return result("unknown", "no certificate to verify")
    if not store.anchors:
        return result("unknown", "the trust store holds no certificate")
    vstore = verification.Store(list(store.anchors))
    leaf, rest = certs[0], list(certs[1:])
    try:
        return result("trusted", chain=_verify_at(vstore, leaf, rest, when))
    except (verification.VerificationError, ValueError, TypeError) as exc:
        first = _short(str(exc), 300)
    # Is there a path at a moment when every presented certificate was valid? Then the
    # issuer is trusted and only the dates are wrong, which tls.cert.expired reports.
    start = max(i.not_before for i in infos)
    end = min(i.not_after for i in infos)
    if start <= end and not (start <= when <= end):
        try:
            chain = _verify_at(vstore, leaf, rest, start + (end - start) / 2)
        except (verification.VerificationError, ValueError, TypeError):
            pass
        else:
            reason = f"a path exists, but not at the scan time: {first}"
            return result("trusted_outside_validity", reason, chain)
    if infos[0].self_signed:
        return result("self_signed", "the certificate is self-signed and not in the trust store")
    return result("untrusted", f"no path to a trusted root: {first}")
