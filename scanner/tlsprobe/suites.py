"""The cipher-suite table (`suites.csv`) as typed data, plus protocol versions and groups.

The table is data, not code, so that new knowledge (a suite found weak) is one line in a CSV
and a stored scan can be judged again with it: facts keep only the suite codes and names.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from functools import cache
from importlib.resources import files

SSL3, TLS10, TLS11, TLS12, TLS13 = 0x0300, 0x0301, 0x0302, 0x0303, 0x0304
VERSION_NAMES: dict[int, str] = {
    SSL3: "SSLv3",
    TLS10: "TLSv1.0",
    TLS11: "TLSv1.1",
    TLS12: "TLSv1.2",
    TLS13: "TLSv1.3",
}
VERSION_CODES: dict[str, int] = {v: k for k, v in VERSION_NAMES.items()}
PROTOCOLS: tuple[str, ...] = tuple(VERSION_NAMES.values())

SCSV_RENEGOTIATION = 0x00FF  # TLS_EMPTY_RENEGOTIATION_INFO_SCSV (RFC 5746)
SCSV_FALLBACK = 0x5600  # TLS_FALLBACK_SCSV (RFC 7507)

# Named groups (IANA "TLS Supported Groups"); elliptic curves with their strength in bits.
GROUPS: dict[int, str] = {
    0x0001: "sect163k1",
    0x0002: "sect163r1",
    0x0003: "sect163r2",
    0x0004: "sect193r1",
    0x0005: "sect193r2",
    0x0006: "sect233k1",
    0x0007: "sect233r1",
    0x0008: "sect239k1",
    0x0009: "sect283k1",
    0x000A: "sect283r1",
    0x000B: "sect409k1",
    0x000C: "sect409r1",
    0x000D: "sect571k1",
    0x000E: "sect571r1",
    0x000F: "secp160k1",
    0x0010: "secp160r1",
    0x0011: "secp160r2",
    0x0012: "secp192k1",
    0x0013: "secp192r1",
    0x0014: "secp224k1",
    0x0015: "secp224r1",
    0x0016: "secp256k1",
    0x0017: "secp256r1",
    0x0018: "secp384r1",
    0x0019: "secp521r1",
    0x001A: "brainpoolP256r1",
    0x001B: "brainpoolP384r1",
    0x001C: "brainpoolP512r1",
    0x001D: "x25519",
    0x001E: "x448",
    0x001F: "brainpoolP256r1tls13",
    0x0020: "brainpoolP384r1tls13",
    0x0021: "brainpoolP512r1tls13",
    0x0100: "ffdhe2048",
    0x0101: "ffdhe3072",
    0x0102: "ffdhe4096",
    0x0103: "ffdhe6144",
    0x0104: "ffdhe8192",
    0x11EB: "SecP256r1MLKEM768",
    0x11EC: "X25519MLKEM768",
    0x11ED: "SecP384r1MLKEM1024",
    0x6399: "X25519Kyber768Draft00",
}
GROUP_CODES: dict[str, int] = {v: k for k, v in GROUPS.items()}
# Strength of a group's discrete-log problem, in bits of the field/curve (for "weak DH").
GROUP_BITS: dict[str, int] = {
    **{n: int(n[4:7]) for n in GROUPS.values() if n.startswith(("sect", "secp"))},
    "brainpoolP256r1": 256,
    "brainpoolP384r1": 384,
    "brainpoolP512r1": 512,
    "brainpoolP256r1tls13": 256,
    "brainpoolP384r1tls13": 384,
    "brainpoolP512r1tls13": 512,
    "x25519": 255,
    "x448": 448,
    "ffdhe2048": 2048,
    "ffdhe3072": 3072,
    "ffdhe4096": 4096,
    "ffdhe6144": 6144,
    "ffdhe8192": 8192,
}
# Groups a TLS 1.2 server can pick for ECDHE (the ServerKeyExchange names one of these).
ECDHE_GROUPS: tuple[int, ...] = tuple(c for c in GROUPS if c <= 0x001E)
TLS13_GROUPS: tuple[int, ...] = (
    0x001D,
    0x001E,
    0x0017,
    0x0018,
    0x0019,
    0x001F,
    0x0020,
    0x0021,
    0x0100,
    0x0101,
    0x0102,
    0x0103,
    0x0104,
    0x11EB,
    0x11EC,
    0x11ED,
)

FLAGS = frozenset(
    [
        "export",
        "null",
        "anon",
        "rc4",
        "3des",
        "weak_enc",
        "aead",
        "cbc",
        "fs",
        "md5",
        "sha1",
        "psk_srp_krb5",
        "nonstandard",
    ]
)


@dataclass(frozen=True)
class CipherSuite:
    code: int
    iana: str  # "-" for codes the IANA registry does not list
    openssl: str  # "-" when OpenSSL has no name for it
    min_version: int  # first protocol version that defines the suite
    kex: str  # RSA DHE ECDHE DH ECDH PSK DHE_PSK RSA_PSK ECDHE_PSK SRP KRB5 GOST NULL TLS13
    auth: str  # RSA DSS ECDSA anon PSK ... TLS13
    enc: str
    bits: int
    mac: str
    flags: frozenset[str]

    @property
    def name(self) -> str:
        """The IANA name, or the OpenSSL name for unregistered codes."""
        return self.iana if self.iana != "-" else self.openssl

    @property
    def hex(self) -> str:
        return f"0x{self.code:04X}"

    @property
    def is_tls13(self) -> bool:
        return self.min_version == TLS13

    @property
    def strong(self) -> bool:
        """AEAD with forward secrecy and authentication: what every current profile accepts."""
        return {"aead", "fs"} <= self.flags and not self.flags & {"anon", "export", "null"}


class SuiteTableError(ValueError):
    """suites.csv is malformed (a packaging error, never a scan error)."""


def parse_table(text: str) -> dict[int, CipherSuite]:
    rows = csv.DictReader(io.StringIO("".join(ln for ln in text.splitlines(True) if ln[:1] != "#")))
    table: dict[int, CipherSuite] = {}
    for n, row in enumerate(rows, 2):
        try:
            code = int(row["code"], 16)
            flags = frozenset(row["flags"].split())
            unknown = flags - FLAGS
            if unknown:
                raise ValueError(f"unknown flags {sorted(unknown)}")
            suite = CipherSuite(
                code=code,
                iana=row["iana"],
                openssl=row["openssl"],
                min_version=VERSION_CODES[row["min_version"]],
                kex=row["kex"],
                auth=row["auth"],
                enc=row["enc"],
                bits=int(row["bits"]),
                mac=row["mac"],
                flags=flags,
            )
        except (KeyError, ValueError, TypeError) as exc:
            raise SuiteTableError(f"suites.csv row {n}: {exc}") from None
        if code in table:
            raise SuiteTableError(f"suites.csv row {n}: code {row['code']} listed twice")
        table[code] = suite
    return table


@cache
def suite_table() -> dict[int, CipherSuite]:
    return parse_table(files("scanner.tlsprobe").joinpath("suites.csv").read_text("utf-8"))


def suite(code: int) -> CipherSuite | None:
    return suite_table().get(code)


def suite_by_name(name: str) -> CipherSuite | None:
    """Look a suite up by IANA or OpenSSL name (as profiles and facts spell them)."""
    return _by_name().get(name)


@cache
def _by_name() -> dict[str, CipherSuite]:
    out: dict[str, CipherSuite] = {}
    for s in suite_table().values():
        for n in (s.iana, s.openssl):
            if n != "-":
                out.setdefault(n, s)
    return out


def candidates(version: int) -> list[int]:
    """Every suite code worth offering in a hello of `version` (TLS 1.3 has its own five)."""
    if version == TLS13:
        return [c for c, s in suite_table().items() if s.is_tls13]
    return [
        c
        for c, s in suite_table().items()
        if not s.is_tls13 and s.min_version <= version and c != 0x0000
    ]


def group_name(code: int) -> str:
    return GROUPS.get(code, f"0x{code:04X}")
