"""ClientHello builder for SSLv3 to TLS 1.3: what Assay offers decides what it learns.

A hello names one protocol version and the suites and groups under test. TLS 1.3 hellos carry
supported_versions and a real X25519 key share (from `cryptography`), so servers answer with a
ServerHello rather than an alert; other groups are tested with an empty share list, which a
TLS 1.3 server must answer with a HelloRetryRequest naming the group it accepts.
"""

from __future__ import annotations

import os
import struct
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache

from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from scanner.tlsprobe.suites import ECDHE_GROUPS, SCSV_FALLBACK, SCSV_RENEGOTIATION, SSL3, TLS12
from scanner.tlsprobe.suites import TLS13 as V_TLS13
from scanner.tlsprobe.wire import (
    CT_HANDSHAKE,
    EXT_ALPN,
    EXT_EC_POINT_FORMATS,
    EXT_EXTENDED_MASTER_SECRET,
    EXT_HEARTBEAT,
    EXT_KEY_SHARE,
    EXT_PADDING,
    EXT_PSK_KEY_EXCHANGE_MODES,
    EXT_SERVER_NAME,
    EXT_SESSION_TICKET,
    EXT_SIGNATURE_ALGORITHMS,
    EXT_STATUS_REQUEST,
    EXT_SUPPORTED_GROUPS,
    EXT_SUPPORTED_VERSIONS,
)

X25519 = 0x001D

# Every signature scheme a server might need to sign its key exchange with, strongest first,
# SHA-1 and DSA included: a weak server must be able to answer so that it can be assessed.
SIGNATURE_SCHEMES: tuple[int, ...] = (
    0x0403, 0x0503, 0x0603, 0x0807, 0x0808, 0x0804, 0x0805, 0x0806, 0x0809, 0x080A, 0x080B,
    0x081A, 0x081B, 0x081C, 0x0401, 0x0501, 0x0601, 0x0303, 0x0301, 0x0302, 0x0402, 0x0502,
    0x0602, 0x0203, 0x0201, 0x0202,
)  # fmt: skip
DEFAULT_TLS13_GROUPS: tuple[int, ...] = (0x001D, 0x0017, 0x0018, 0x0019, 0x001E, 0x0100, 0x0101)


@cache
def x25519_share() -> bytes:
    """One public X25519 key per process: handshakes are never completed, so it can be reused."""
    return X25519PrivateKey.generate().public_key().public_bytes_raw()


@dataclass(frozen=True)
class HelloSpec:
    """What one probe offers."""

    version: int
    suites: tuple[int, ...]
    server_name: str | None = None
    groups: tuple[int, ...] = ()  # () = a broad default list
    key_share: bool = True  # TLS 1.3: send an X25519 share (when x25519 is offered)
    alpn: tuple[str, ...] = ()
    fallback_scsv: bool = False
    deflate: bool = False  # also offer DEFLATE compression (CRIME)
    status_request: bool = False  # ask for a stapled OCSP response
    heartbeat: bool = False  # offer the heartbeat extension (peer_allowed_to_send)


def _ext(etype: int, body: bytes) -> bytes:
    return struct.pack(">HH", etype, len(body)) + body


def _vec8(body: bytes) -> bytes:
    return bytes([len(body)]) + body


def _vec16(body: bytes) -> bytes:
    return struct.pack(">H", len(body)) + body


def _u16s(values: Sequence[int]) -> bytes:
    return b"".join(struct.pack(">H", v) for v in values)


def _extensions(spec: HelloSpec) -> list[bytes]:
    exts: list[bytes] = []
    if spec.server_name:
        host = spec.server_name.encode("ascii")
        exts.append(_ext(EXT_SERVER_NAME, _vec16(b"\x00" + _vec16(host))))
    tls13 = spec.version == V_TLS13
    groups = spec.groups or (DEFAULT_TLS13_GROUPS if tls13 else (*ECDHE_GROUPS, 0x0100, 0x0101))
    exts.append(_ext(EXT_SUPPORTED_GROUPS, _vec16(_u16s(groups))))
    exts.append(_ext(EXT_EC_POINT_FORMATS, _vec8(b"\x00\x01\x02")))
    if spec.version >= TLS12:
        exts.append(_ext(EXT_SIGNATURE_ALGORITHMS, _vec16(_u16s(SIGNATURE_SCHEMES))))
    if spec.alpn:
        names = b"".join(_vec8(a.encode("ascii")) for a in spec.alpn)
        exts.append(_ext(EXT_ALPN, _vec16(names)))
    if spec.status_request:
        # status_type ocsp(1), no responder ids, no request extensions
        exts.append(_ext(EXT_STATUS_REQUEST, b"\x01\x00\x00\x00\x00"))
    if spec.heartbeat:
        exts.append(_ext(EXT_HEARTBEAT, b"\x01"))
    exts.append(_ext(EXT_EXTENDED_MASTER_SECRET, b""))
    exts.append(_ext(EXT_SESSION_TICKET, b""))
    if tls13:
        exts.append(_ext(EXT_SUPPORTED_VERSIONS, _vec8(struct.pack(">H", V_TLS13))))
        exts.append(_ext(EXT_PSK_KEY_EXCHANGE_MODES, _vec8(b"\x01")))
        share = b""
        if spec.key_share and X25519 in groups:
            share = struct.pack(">H", X25519) + _vec16(x25519_share())
        exts.append(_ext(EXT_KEY_SHARE, _vec16(share)))
    return exts


def client_hello(spec: HelloSpec) -> bytes:
    """The ClientHello as one TLS record, ready to be written to the socket."""
    tls13 = spec.version == V_TLS13
    suites = list(spec.suites)
    if not tls13:
        suites.append(SCSV_RENEGOTIATION)
    if spec.fallback_scsv:
        suites.append(SCSV_FALLBACK)
    body = struct.pack(">H", TLS12 if tls13 else spec.version) + os.urandom(32)
    body += _vec8(os.urandom(32) if tls13 else b"")
    body += _vec16(_u16s(suites))
    body += _vec8(b"\x01\x00" if spec.deflate else b"\x00")
    exts = [] if spec.version == SSL3 else _extensions(spec)
    if exts:
        size = 4 + len(body) + 2 + sum(map(len, exts))
        if 256 <= size < 512:
            # Some TLS terminators hang on hellos of 256-511 bytes (RFC 7685 section 1).
            exts.append(_ext(EXT_PADDING, bytes(max(0, 512 - size - 4))))
        body += _vec16(b"".join(exts))
    handshake = b"\x01" + len(body).to_bytes(3, "big") + body
    record_version = 0x0300 if spec.version == SSL3 else 0x0301
    return struct.pack(">BHH", CT_HANDSHAKE, record_version, len(handshake)) + handshake
