"""TLS record and handshake parsing with hard limits: pure functions over untrusted bytes.

Nothing here does I/O, so the parsers are fuzzed directly (tests/test_tls_probe_fuzz.py).
Every length read from the wire is checked against what is left and against a limit before
anything is sliced or allocated; a violation raises `TlsParseError` saying what was wrong.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

from scanner.tlsprobe.endpoint import TlsProbeError

CT_CHANGE_CIPHER_SPEC, CT_ALERT, CT_HANDSHAKE, CT_APPLICATION_DATA = 20, 21, 22, 23
CT_HEARTBEAT = 24
CONTENT_TYPES = frozenset({20, 21, 22, 23, 24})
HS_SERVER_HELLO, HS_CERTIFICATE, HS_SERVER_KEY_EXCHANGE = 2, 11, 12
HS_CERTIFICATE_REQUEST, HS_SERVER_HELLO_DONE = 13, 14

MAX_RECORD = 2**14 + 2048  # TLSCiphertext limit (RFC 5246 6.2.3)
MAX_HANDSHAKE_MESSAGE = 128 * 1024  # a Certificate with a long chain is ~10-20 KiB
MAX_CERTIFICATES = 16
MAX_EXTENSIONS = 64

EXT_SERVER_NAME = 0
EXT_STATUS_REQUEST = 5  # OCSP stapling (RFC 6066 section 8)
EXT_HEARTBEAT = 15  # RFC 6520
EXT_SUPPORTED_GROUPS = 10
EXT_EC_POINT_FORMATS = 11
EXT_SIGNATURE_ALGORITHMS = 13
EXT_ALPN = 16
EXT_PADDING = 21
EXT_EXTENDED_MASTER_SECRET = 23
EXT_SESSION_TICKET = 35
EXT_SUPPORTED_VERSIONS = 43
EXT_PSK_KEY_EXCHANGE_MODES = 45
EXT_KEY_SHARE = 51
EXT_RENEGOTIATION_INFO = 0xFF01

# ServerHello.random of a HelloRetryRequest (RFC 8446 4.1.3)
HRR_RANDOM = hashlib.sha256(b"HelloRetryRequest").digest()

ALERTS: dict[int, str] = {
    0: "close_notify",
    10: "unexpected_message",
    20: "bad_record_mac",
    22: "record_overflow",
    40: "handshake_failure",
    42: "bad_certificate",
    47: "illegal_parameter",
    49: "access_denied",
    50: "decode_error",
    51: "decrypt_error",
    70: "protocol_version",
    71: "insufficient_security",
    80: "internal_error",
    86: "inappropriate_fallback",
    90: "user_canceled",
    109: "missing_extension",
    110: "unsupported_extension",
    112: "unrecognized_name",
    116: "certificate_required",
    120: "no_application_protocol",
}


class TlsParseError(TlsProbeError):
    """The server's bytes are not well-formed TLS, or break one of the parser's limits."""


class Reader:
    """A cursor over bytes whose every read is bounds-checked."""

    def __init__(self, data: bytes, what: str) -> None:
        self.data, self.pos, self.what = data, 0, what

    def left(self) -> int:
        return len(self.data) - self.pos

    def take(self, n: int) -> bytes:
        if n < 0 or n > self.left():
            raise TlsParseError(f"{self.what} is truncated (needs {n} bytes, {self.left()} left)")
        out = self.data[self.pos : self.pos + n]
        self.pos += n
        return out

    def u8(self) -> int:
        return self.take(1)[0]

    def u16(self) -> int:
        return int.from_bytes(self.take(2), "big")

    def u24(self) -> int:
        return int.from_bytes(self.take(3), "big")

    def vec8(self) -> bytes:
        return self.take(self.u8())

    def vec16(self) -> bytes:
        return self.take(self.u16())

    def vec24(self) -> bytes:
        return self.take(self.u24())

    def done(self) -> None:
        if self.left():
            raise TlsParseError(f"{self.what} has {self.left()} unexpected trailing bytes")


@dataclass(frozen=True)
class RecordHeader:
    content_type: int
    version: int
    length: int


def parse_record_header(hdr: bytes) -> RecordHeader:
    """The 5-byte TLS record header; refuses what is not TLS before reading the body."""
    if len(hdr) != 5:
        raise TlsParseError(f"record header is truncated ({len(hdr)} of 5 bytes)")
    ctype, major, minor, length = hdr[0], hdr[1], hdr[2], int.from_bytes(hdr[3:5], "big")
    if ctype not in CONTENT_TYPES or major != 3 or minor > 4:
        if hdr[:1] in (b"H", b"<", b"S", b"2", b"5", b"*", b"+", b"-") and hdr.isascii():
            raise TlsParseError(f"the server answered in cleartext, not TLS: {hdr!r}")
        raise TlsParseError(f"not a TLS record (header {hdr.hex()})")
    if length > MAX_RECORD:
        raise TlsParseError(f"record of {length} bytes refused (limit {MAX_RECORD})")
    return RecordHeader(ctype, (major << 8) | minor, length)


@dataclass
class HandshakeBuffer:
    """Reassembles handshake messages that span records (or share one)."""

    pending: bytearray = field(default_factory=bytearray)

    def feed(self, fragment: bytes) -> list[tuple[int, bytes]]:
        self.pending += fragment
        out: list[tuple[int, bytes]] = []
        while len(self.pending) >= 4:
            mtype = self.pending[0]
            length = int.from_bytes(self.pending[1:4], "big")
            if length > MAX_HANDSHAKE_MESSAGE:
                raise TlsParseError(
                    f"handshake message {mtype} of {length} bytes refused "
                    f"(limit {MAX_HANDSHAKE_MESSAGE})"
                )
            if len(self.pending) < 4 + length:
                break
            out.append((mtype, bytes(self.pending[4 : 4 + length])))
            del self.pending[: 4 + length]
        return out


@dataclass(frozen=True)
class Alert:
    level: int
    description: int

    @property
    def name(self) -> str:
        return ALERTS.get(self.description, f"alert {self.description}")


def parse_alert(fragment: bytes) -> Alert:
    if len(fragment) < 2:
        raise TlsParseError(f"alert record is truncated ({len(fragment)} bytes)")
    return Alert(fragment[0], fragment[1])


@dataclass(frozen=True)
class ServerHello:
    legacy_version: int
    random: bytes
    session_id: bytes
    cipher: int
    compression: int
    extensions: dict[int, bytes]

    @property
    def is_hrr(self) -> bool:
        return self.random == HRR_RANDOM

    @property
    def version(self) -> int:
        """The negotiated version: supported_versions when present (TLS 1.3), else legacy."""
        sv = self.extensions.get(EXT_SUPPORTED_VERSIONS)
        if sv is not None and len(sv) == 2:
            return int.from_bytes(sv, "big")
        return self.legacy_version

    @property
    def key_share_group(self) -> int | None:
        ks = self.extensions.get(EXT_KEY_SHARE)
        if ks is None or len(ks) < 2:
            return None
        return int.from_bytes(ks[:2], "big")

    @property
    def alpn(self) -> str | None:
        raw = self.extensions.get(EXT_ALPN)
        if raw is None:
            return None
        r = Reader(raw, "ALPN extension")
        names = Reader(r.vec16(), "ALPN list")
        proto = names.vec8()
        return proto.decode("ascii", "replace")

    @property
    def secure_renegotiation(self) -> bool:
        return EXT_RENEGOTIATION_INFO in self.extensions


def parse_server_hello(body: bytes) -> ServerHello:
    r = Reader(body, "ServerHello")
    version = r.u16()
    if version >> 8 != 3:
        raise TlsParseError(f"ServerHello has an impossible version 0x{version:04x}")
    random = r.take(32)
    session_id = r.vec8()
    if len(session_id) > 32:
        raise TlsParseError(f"ServerHello session id of {len(session_id)} bytes (limit 32)")
    cipher = r.u16()
    compression = r.u8()
    extensions: dict[int, bytes] = {}
    if r.left():
        ext = Reader(r.vec16(), "ServerHello extensions")
        while ext.left():
            if len(extensions) >= MAX_EXTENSIONS:
                raise TlsParseError(f"ServerHello has more than {MAX_EXTENSIONS} extensions")
            etype = ext.u16()
            data = ext.vec16()
            if etype in extensions:
                raise TlsParseError(f"ServerHello repeats extension {etype}")
            extensions[etype] = data
    r.done()
    hello = ServerHello(version, random, session_id, cipher, compression, extensions)
    if hello.alpn is not None and not hello.alpn:
        raise TlsParseError("ServerHello selects an empty ALPN protocol")
    return hello


def parse_certificates(body: bytes) -> list[bytes]:
    """The DER certificates of a TLS <= 1.2 Certificate message, leaf first."""
    r = Reader(body, "Certificate message")
    chain = Reader(r.vec24(), "certificate list")
    r.done()
    certs: list[bytes] = []
    while chain.left():
        if len(certs) >= MAX_CERTIFICATES:
            raise TlsParseError(f"certificate chain longer than {MAX_CERTIFICATES}")
        der = chain.vec24()
        if not der:
            raise TlsParseError("certificate chain holds an empty certificate")
        certs.append(der)
    return certs


@dataclass(frozen=True)
class KeyExchange:
    """What a ServerKeyExchange says about the key exchange's strength."""

    dh_bits: int | None = None  # size of the finite-field prime p
    dh_generator: int | None = None
    group: int | None = None  # named curve of ECDHE


def parse_dh_params(body: bytes) -> KeyExchange:
    """ServerDHParams (p, g, Ys) at the start of a DHE ServerKeyExchange."""
    r = Reader(body, "ServerKeyExchange (DH)")
    p = r.vec16().lstrip(b"\x00")
    g = r.vec16()
    r.vec16()  # Ys
    if not p:
        raise TlsParseError("ServerKeyExchange has an empty DH prime")
    bits = (len(p) - 1) * 8 + p[0].bit_length()
    return KeyExchange(dh_bits=bits, dh_generator=int.from_bytes(g[:8], "big"))


def parse_ecdh_params(body: bytes) -> KeyExchange:
    """ServerECDHParams at the start of an ECDHE ServerKeyExchange (named curves only)."""
    r = Reader(body, "ServerKeyExchange (ECDH)")
    curve_type = r.u8()
    if curve_type != 3:
        raise TlsParseError(f"ServerKeyExchange uses explicit curve parameters ({curve_type})")
    group = r.u16()
    point = r.vec8()
    if not point:
        raise TlsParseError("ServerKeyExchange has an empty EC point")
    return KeyExchange(group=group)
