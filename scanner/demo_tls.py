"""TLS for the demo unit: a weak and a good HTTPS endpoint, and the demo's own small CA.

The weak endpoint is what a forgotten appliance serves: TLS 1.0 to 1.2 only, every suite the
local OpenSSL still has at security level 0 (NULL, anonymous, static RSA, CBC with SHA-1),
1024-bit DHE, the client's suite order, and an expired self-signed RSA-1024 certificate signed
with SHA-1 and without subjectAltName. The good endpoint offers TLS 1.2 and 1.3 with ECDHE and
AEAD suites only and a P-256 certificate for the good host's address and name, issued by a CA
that the demo inventory declares as trusted.

Everything is generated at start-up with `cryptography` into the demo's work directory; nothing
is checked in and no key leaves that directory.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import ssl
import warnings
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import dh, ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.types import CertificateIssuerPrivateKeyTypes
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

WEAK_CIPHERS = "ALL:COMPLEMENTOFALL:eNULL:aNULL:@SECLEVEL=0"
GOOD_CIPHERS = (
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305"
)

# The 1024-bit MODP group of RFC 2409 (Oakley group 2), generator 2: the weak DHE group.
OAKLEY_GROUP_2 = int(
    "FFFFFFFFFFFFFFFFC90FDAA22168C234C4C6628B80DC1CD129024E088A67CC74020BBEA63B139B22514A0879"
    "8E3404DDEF9519B3CD3A431B302B0A6DF25F14374FE1356D6D51C245E485B576625E7EC6F44C42E9A637ED6B"
    "0BFF5CB6F406B7EDEE386BFB5A899FA5AE9F24117C4B1FE649286651ECE65381FFFFFFFFFFFFFFFF",
    16,
)

_SHA256_RSA = bytes.fromhex("2a864886f70d01010b")  # OID 1.2.840.113549.1.1.11
_SHA1_RSA = bytes.fromhex("2a864886f70d010105")  # OID 1.2.840.113549.1.1.5


def _name(cn: str, org: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, org),
            x509.NameAttribute(NameOID.COMMON_NAME, cn),
        ]
    )


def revocation_pointers(domain: str) -> x509.CRLDistributionPoints:
    """Where the demo CA would publish its CRL: named, never fetched (no such host)."""
    url = f"http://pki.{domain}/crl/issuing-ca.crl"
    point = x509.DistributionPoint([x509.UniformResourceIdentifier(url)], None, None, None)
    return x509.CRLDistributionPoints([point])


def _der(tag: int, content: bytes) -> bytes:
    n = len(content)
    if n < 0x80:
        length = bytes([n])
    else:
        body = n.to_bytes((n.bit_length() + 7) // 8, "big")
        length = bytes([0x80 | len(body)]) + body
    return bytes([tag]) + length + content


def resign_sha1(cert: x509.Certificate, key: rsa.RSAPrivateKey) -> x509.Certificate:
    """The same certificate signed with SHA-1 (which `cryptography` no longer does itself).

    The to-be-signed part of a SHA-256/RSA certificate is re-labelled sha1WithRSAEncryption
    (the two OIDs have the same length, so no length changes), signed with PKCS#1 v1.5 over
    SHA-1, and the certificate DER reassembled around it.
    """
    tbs = cert.tbs_certificate_bytes
    if tbs.count(_SHA256_RSA) != 1:
        raise ValueError("expected a certificate signed with sha256WithRSAEncryption")
    tbs = tbs.replace(_SHA256_RSA, _SHA1_RSA)
    signature = key.sign(tbs, padding.PKCS1v15(), hashes.SHA1())
    algorithm = _der(0x30, _der(0x06, _SHA1_RSA) + b"\x05\x00")
    return x509.load_der_x509_certificate(
        _der(0x30, tbs + algorithm + _der(0x03, b"\x00" + signature))
    )


def _write(
    directory: Path, stem: str, certs: list[x509.Certificate], key: CertificateIssuerPrivateKeyTypes
) -> tuple[Path, Path]:
    crt, keyfile = directory / f"{stem}.crt", directory / f"{stem}.key"
    crt.write_bytes(b"".join(c.public_bytes(serialization.Encoding.PEM) for c in certs))
    keyfile.touch(mode=0o600)
    keyfile.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return crt, keyfile


@dataclass(frozen=True)
class DemoTls:
    """The demo's TLS material, written into `directory`."""

    directory: Path
    ca_file: Path  # the demo CA's root certificate: what the demo inventory trusts
    weak_cert: Path
    weak_key: Path
    good_cert: Path  # leaf followed by the issuing CA (a complete chain)
    good_key: Path
    dh_params: Path

    @classmethod
    def create(cls, directory: Path, good_address: str, good_name: str) -> DemoTls:
        directory.mkdir(parents=True, exist_ok=True)
        now = dt.datetime.now(dt.UTC)

        ca_key = ec.generate_private_key(ec.SECP256R1())
        ca_name = _name("Assay Demo CA", "Assay demo unit")
        ca = (
            x509.CertificateBuilder()
            .subject_name(ca_name)
            .issuer_name(ca_name)
            .public_key(ca_key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=30))
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
                x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False
            )
            .sign(ca_key, hashes.SHA256())
        )
        ca_file = directory / "demo-ca.pem"
        ca_file.write_bytes(ca.public_bytes(serialization.Encoding.PEM))

        good_key = ec.generate_private_key(ec.SECP256R1())
        good = (
            x509.CertificateBuilder()
            .subject_name(_name(good_name, "Assay demo unit"))
            .issuer_name(ca_name)
            .public_key(good_key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=90))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .add_extension(
                x509.SubjectAlternativeName(
                    [
                        x509.DNSName(good_name),
                        x509.IPAddress(ipaddress.ip_address(good_address)),
                    ]
                ),
                critical=False,
            )
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
                critical=False,
            )
            .add_extension(revocation_pointers("demo.invalid"), critical=False)
            .sign(ca_key, hashes.SHA256())
        )
        good_cert, good_keyfile = _write(directory, "good", [good, ca], good_key)

        weak_key = rsa.generate_private_key(65537, 1024)
        weak_name = _name("appliance.demo.invalid", "Legacy appliance")
        weak = (
            x509.CertificateBuilder()
            .subject_name(weak_name)
            .issuer_name(weak_name)
            .public_key(weak_key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(days=400))
            .not_valid_after(now - dt.timedelta(days=30))
            .sign(weak_key, hashes.SHA256())
        )
        weak_cert, weak_keyfile = _write(directory, "weak", [resign_sha1(weak, weak_key)], weak_key)

        params = dh.DHParameterNumbers(OAKLEY_GROUP_2, 2).parameters()
        dh_file = directory / "dh1024.pem"
        dh_file.write_bytes(
            params.parameter_bytes(serialization.Encoding.PEM, serialization.ParameterFormat.PKCS3)
        )
        return cls(directory, ca_file, weak_cert, weak_keyfile, good_cert, good_keyfile, dh_file)

    def weak_context(self) -> ssl.SSLContext:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        with warnings.catch_warnings():  # offering TLS 1.0 is this endpoint's purpose
            warnings.simplefilter("ignore", DeprecationWarning)
            ctx.minimum_version = ssl.TLSVersion.TLSv1
        ctx.maximum_version = ssl.TLSVersion.TLSv1_2
        ctx.set_ciphers(WEAK_CIPHERS)
        ctx.load_cert_chain(self.weak_cert, self.weak_key)
        ctx.load_dh_params(str(self.dh_params))
        ctx.options &= ~ssl.OP_CIPHER_SERVER_PREFERENCE
        return ctx

    def good_context(self) -> ssl.SSLContext:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        ctx.set_ciphers(GOOD_CIPHERS)
        # one named group, inside every profile (Python offers no way to set a list of them)
        ctx.set_ecdh_curve("prime256v1")
        ctx.load_cert_chain(self.good_cert, self.good_key)
        ctx.options |= ssl.OP_NO_COMPRESSION | ssl.OP_NO_TICKET
        return ctx
