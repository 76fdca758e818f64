"""Test certificates, made by the tests with `cryptography` (nothing is checked in).

- `TestCA`: a private ECDSA P-256 root and an intermediate; leaves issued by the intermediate
  carry subjectAltName entries for the names and IP addresses they are for.
- `weak_self_signed`: what a forgotten appliance serves: RSA 1024, SHA-1, self-signed,
  expired, no subjectAltName.
- `dh_params_1024`: 1024-bit finite-field DH parameters (the weak DHE group).
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.types import CertificateIssuerPrivateKeyTypes
from cryptography.x509 import ocsp
from cryptography.x509.oid import AuthorityInformationAccessOID, ExtendedKeyUsageOID, NameOID

OPENSSL = shutil.which("openssl")
UTC = dt.UTC


def _name(cn: str, org: str = "Assay test PKI") -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, org),
            x509.NameAttribute(NameOID.COMMON_NAME, cn),
        ]
    )


def _key_pem(key: CertificateIssuerPrivateKeyTypes) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _cert_pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


@dataclass(frozen=True)
class Issued:
    """A leaf certificate with its key, written to files for a server."""

    cert: x509.Certificate
    key: CertificateIssuerPrivateKeyTypes
    chain: tuple[x509.Certificate, ...]  # intermediates, leaf first excluded

    def write(self, directory: Path, stem: str, full_chain: bool = True) -> tuple[Path, Path]:
        """Write `stem.crt` (leaf, then intermediates unless full_chain=False) and `stem.key`."""
        directory.mkdir(parents=True, exist_ok=True)
        crt, key = directory / f"{stem}.crt", directory / f"{stem}.key"
        certs = (self.cert, *self.chain) if full_chain else (self.cert,)
        crt.write_bytes(b"".join(_cert_pem(c) for c in certs))
        key.write_bytes(_key_pem(self.key))
        key.chmod(0o600)
        return crt, key


class TestCA:
    """A root and an intermediate CA (ECDSA P-256) that issue leaf certificates."""

    __test__ = False  # not a pytest test class

    def __init__(self, name: str = "Assay Test Root CA") -> None:
        now = dt.datetime.now(UTC)
        self.root_key = ec.generate_private_key(ec.SECP256R1())
        self.root = (
            x509.CertificateBuilder()
            .subject_name(_name(name))
            .issuer_name(_name(name))
            .public_key(self.root_key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(days=1))
            .not_valid_after(now + dt.timedelta(days=3650))
            .add_extension(x509.BasicConstraints(ca=True, path_length=1), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=False,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    key_cert_sign=True,
                    crl_sign=True,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .add_extension(
                x509.SubjectKeyIdentifier.from_public_key(self.root_key.public_key()),
                critical=False,
            )
            .sign(self.root_key, hashes.SHA256())
        )
        self.inter_key = ec.generate_private_key(ec.SECP256R1())
        self.intermediate = (
            x509.CertificateBuilder()
            .subject_name(_name(name.replace("Root", "Issuing")))
            .issuer_name(self.root.subject)
            .public_key(self.inter_key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(days=1))
            .not_valid_after(now + dt.timedelta(days=1825))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=False,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    key_cert_sign=True,
                    crl_sign=True,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .add_extension(
                x509.SubjectKeyIdentifier.from_public_key(self.inter_key.public_key()),
                critical=False,
            )
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(self.root_key.public_key()),
                critical=False,
            )
            .sign(self.root_key, hashes.SHA256())
        )

    def ocsp_response(self, issued: Issued, directory: Path, stem: str) -> Path:
        """A DER OCSP answer "good" for `issued`, signed by the intermediate: what a server
        staples (nginx `ssl_stapling_file`, `openssl s_server -status_file`)."""
        now = dt.datetime.now(UTC)
        response = (
            ocsp.OCSPResponseBuilder()
            .add_response(
                cert=issued.cert,
                issuer=self.intermediate,
                algorithm=hashes.SHA256(),
                cert_status=ocsp.OCSPCertStatus.GOOD,
                this_update=now - dt.timedelta(hours=1),
                next_update=now + dt.timedelta(days=7),
                revocation_time=None,
                revocation_reason=None,
            )
            .responder_id(ocsp.OCSPResponderEncoding.HASH, self.intermediate)
            .sign(self.inter_key, hashes.SHA256())
        )
        directory.mkdir(parents=True, exist_ok=True)
        path = directory / f"{stem}.ocsp.der"
        path.write_bytes(response.public_bytes(serialization.Encoding.DER))
        return path

    def root_pem(self, directory: Path, stem: str = "test-root") -> Path:
        """The root certificate as a PEM file (what an inventory adds as a trusted CA)."""
        directory.mkdir(parents=True, exist_ok=True)
        path = directory / f"{stem}.pem"
        path.write_bytes(_cert_pem(self.root))
        return path

    def issue(
        self,
        names: tuple[str, ...] = (),
        ips: tuple[str, ...] = (),
        key: str = "ec256",
        days: int = 90,
        not_before_days: int = 1,
        cn: str | None = None,
        revocation: bool = True,
    ) -> Issued:
        """A server certificate for `names` / `ips`, valid from now-`not_before_days` for `days`."""
        now = dt.datetime.now(UTC)
        leaf_key: CertificateIssuerPrivateKeyTypes
        if key == "ec256":
            leaf_key = ec.generate_private_key(ec.SECP256R1())
        elif key.startswith("rsa"):
            leaf_key = rsa.generate_private_key(65537, int(key[3:]))
        else:
            raise ValueError(f"unknown key type {key!r}")
        sans: list[x509.GeneralName] = [x509.DNSName(n) for n in names]
        sans += [x509.IPAddress(ipaddress.ip_address(a)) for a in ips]
        subject_cn = cn or (names[0] if names else (ips[0] if ips else "assay-test"))
        builder = (
            x509.CertificateBuilder()
            .subject_name(_name(subject_cn, "Assay test site"))
            .issuer_name(self.intermediate.subject)
            .public_key(leaf_key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(days=not_before_days))
            .not_valid_after(now - dt.timedelta(days=not_before_days) + dt.timedelta(days=days))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(self.inter_key.public_key()),
                critical=False,
            )
        )
        if sans:
            builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
        if revocation:  # named, never fetched: .invalid never resolves
            crl = x509.UniformResourceIdentifier("http://pki.assay-test.invalid/issuing.crl")
            ocsp = x509.UniformResourceIdentifier("http://ocsp.assay-test.invalid/")
            builder = builder.add_extension(
                x509.CRLDistributionPoints([x509.DistributionPoint([crl], None, None, None)]),
                critical=False,
            ).add_extension(
                x509.AuthorityInformationAccess(
                    [x509.AccessDescription(AuthorityInformationAccessOID.OCSP, ocsp)]
                ),
                critical=False,
            )
        cert = builder.sign(self.inter_key, hashes.SHA256())
        return Issued(cert, leaf_key, (self.intermediate,))


def _der_len(n: int) -> bytes:
    if n < 0x80:
        return bytes([n])
    body = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(body)]) + body


def _der(tag: int, content: bytes) -> bytes:
    return bytes([tag]) + _der_len(len(content)) + content


_SHA256_RSA = bytes.fromhex("2a864886f70d01010b")  # 1.2.840.113549.1.1.11
_SHA1_RSA = bytes.fromhex("2a864886f70d010105")  # 1.2.840.113549.1.1.5


def weak_self_signed(cn: str = "weak.so-tttt.example") -> Issued:
    """RSA 1024, SHA-1, self-signed, expired 30 days ago, no subjectAltName.

    `cryptography` no longer signs certificates with SHA-1, so the certificate is built with
    SHA-256, its to-be-signed part re-labelled sha1WithRSAEncryption (same OID length) and
    signed again with PKCS#1 v1.5 over SHA-1, and the DER reassembled.
    """
    now = dt.datetime.now(UTC)
    key = rsa.generate_private_key(65537, 1024)
    draft = (
        x509.CertificateBuilder()
        .subject_name(_name(cn, "Legacy appliance"))
        .issuer_name(_name(cn, "Legacy appliance"))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=400))
        .not_valid_after(now - dt.timedelta(days=30))
        .sign(key, hashes.SHA256())
    )
    tbs = draft.tbs_certificate_bytes
    assert tbs.count(_SHA256_RSA) == 1
    tbs = tbs.replace(_SHA256_RSA, _SHA1_RSA)
    signature = key.sign(tbs, padding.PKCS1v15(), hashes.SHA1())
    algorithm = _der(0x30, _der(0x06, _SHA1_RSA) + b"\x05\x00")
    der = _der(0x30, tbs + algorithm + _der(0x03, b"\x00" + signature))
    cert = x509.load_der_x509_certificate(der)
    return Issued(cert, key, ())


def dh_params_1024(path: Path) -> Path:
    """1024-bit DH parameters in PEM (openssl's DSA-style generation takes well under a second)."""
    assert OPENSSL, "openssl is not installed"
    subprocess.run(
        [OPENSSL, "dhparam", "-dsaparam", "-out", str(path), "1024"],
        check=True,
        capture_output=True,
        timeout=120,
    )
    return path
