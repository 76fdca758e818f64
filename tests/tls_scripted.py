"""Scripted TLS servers for faults a real server cannot produce (tests only).

`ScriptedTls` accepts connections on its own loopback address and answers each ClientHello
with whatever its handler returns: a crafted ServerHello for suites Debian's OpenSSL no longer
has (RC4, 3DES, export), or hostile bytes (a megabyte of garbage, a truncated or malformed
ServerHello, silence, an immediate close). Every socket has a timeout; the server stops when
the context exits.
"""

from __future__ import annotations

import socket
import struct
import threading
from collections.abc import Callable
from dataclasses import dataclass
from types import TracebackType
from typing import Self

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from tests.helpers import free_port, pick_loopback
from tests.tls_pki import weak_self_signed


@dataclass(frozen=True)
class ParsedHello:
    version: int  # legacy client_version
    suites: tuple[int, ...]
    tls13: bool  # supported_versions offers TLS 1.3
    deflate: bool = False  # DEFLATE among the compression methods


def parse_client_hello(record: bytes) -> ParsedHello | None:
    """Just enough ClientHello parsing for the scripted servers (trusts Assay's own hellos)."""
    if len(record) < 9 or record[0] != 22:
        return None
    body = record[9:]
    version = struct.unpack(">H", body[:2])[0]
    pos = 34
    pos += 1 + body[pos]
    n = struct.unpack(">H", body[pos : pos + 2])[0]
    suites = tuple(struct.unpack(f">{n // 2}H", body[pos + 2 : pos + 2 + n]))
    pos += 2 + n
    deflate = 1 in body[pos + 1 : pos + 1 + body[pos]]
    pos += 1 + body[pos]
    tls13 = False
    if pos + 2 <= len(body):
        end = pos + 2 + struct.unpack(">H", body[pos : pos + 2])[0]
        pos += 2
        while pos + 4 <= end:
            etype, elen = struct.unpack(">HH", body[pos : pos + 4])
            if etype == 43:
                tls13 = b"\x03\x04" in body[pos + 4 : pos + 4 + elen]
            pos += 4 + elen
    return ParsedHello(version, suites, tls13, deflate)


def record(ctype: int, payload: bytes, version: int = 0x0303) -> bytes:
    return struct.pack(">BHH", ctype, version, len(payload)) + payload


def handshake(mtype: int, body: bytes) -> bytes:
    return bytes([mtype]) + len(body).to_bytes(3, "big") + body


def server_hello(
    version: int, suite: int, extensions: bytes = b"", compression: int = 0
) -> bytes:
    body = struct.pack(">H", version) + b"\x11" * 32 + b"\x00"
    body += struct.pack(">HB", suite, compression)
    body += struct.pack(">H", len(extensions)) + extensions
    return handshake(2, body)


ALERT_HANDSHAKE_FAILURE = record(21, b"\x02\x28")
ALERT_PROTOCOL_VERSION = record(21, b"\x02\x46")


Handler = Callable[[bytes], bytes | None]  # None: stay silent until the client gives up


def legacy_server(
    accepts: tuple[int, ...],
    versions: tuple[int, ...] = (0x0301, 0x0303),
    secure_renegotiation: bool = True,
    deflate: bool = False,
) -> Handler:
    """An old server: TLS 1.0-1.2, picks the first suite of `accepts` that the client offers;
    optionally without RFC 5746 renegotiation_info, or choosing DEFLATE when it is offered."""

    def handle(data: bytes) -> bytes | None:
        hello = parse_client_hello(data)
        if hello is None:
            return b""
        if hello.version not in versions:
            return ALERT_PROTOCOL_VERSION
        for s in accepts:
            if s in hello.suites:
                renego = b"\xff\x01\x00\x01\x00" if secure_renegotiation else b""
                method = 1 if deflate and hello.deflate else 0
                msgs = server_hello(hello.version, s, renego, method) + handshake(14, b"")
                return record(22, msgs, hello.version)
        return ALERT_HANDSHAKE_FAILURE

    return handle


class ScriptedTls:
    def __init__(self, handler: Handler, address: str | None = None, port: int = 0) -> None:
        self.handler = handler
        self.address = address or pick_loopback()
        self.port = port or free_port(self.address)
        self._stop = threading.Event()
        self._sock = socket.socket()
        self.connections = 0

    def __enter__(self) -> Self:
        self._sock.bind((self.address, self.port))
        self._sock.listen(64)
        self._sock.settimeout(0.2)
        threading.Thread(target=self._serve, daemon=True).start()
        return self

    def __exit__(
        self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._stop.set()
        self._sock.close()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._sock.accept()
            except OSError:
                continue
            self.connections += 1
            threading.Thread(target=self._one, args=(conn,), daemon=True).start()

    def _one(self, conn: socket.socket) -> None:
        with conn:
            conn.settimeout(5)
            try:
                data = conn.recv(5)
                if len(data) == 5:
                    need = int.from_bytes(data[3:5], "big")
                    while len(data) < 5 + need:
                        chunk = conn.recv(5 + need - len(data))
                        if not chunk:
                            break
                        data += chunk
                reply = self.handler(data)
                if reply is None:
                    self._stop.wait(15)
                    return
                conn.sendall(reply)
                conn.shutdown(socket.SHUT_WR)
                self._stop.wait(0.5)
            except OSError:
                return


class HeartbeatServer(ScriptedTls):
    """A TLS 1.2 server that takes the heartbeat extension (OpenSSL 1.0.1 era), scripted.

    `bleed=True` answers a heartbeat with `memory` as the 1.0.1-1.0.1f bug did (the claimed
    payload length read from the server's own memory); `bleed=False` discards it as
    RFC 6520 requires. Debian's OpenSSL 3 has no heartbeat code at all, so no real server the
    tests can start shows either behaviour.
    """

    def __init__(self, bleed: bool, memory: bytes = b"") -> None:
        super().__init__(lambda data: None)  # _one below speaks for itself
        self.bleed, self.memory = bleed, memory
        self.heartbeats = 0

    @staticmethod
    def _record(conn: socket.socket) -> bytes:
        data = b""
        while len(data) < 5:
            chunk = conn.recv(5 - len(data))
            if not chunk:
                return data
            data += chunk
        need = 5 + int.from_bytes(data[3:5], "big")
        while len(data) < need:
            chunk = conn.recv(need - len(data))
            if not chunk:
                break
            data += chunk
        return data

    def _one(self, conn: socket.socket) -> None:
        with conn:
            conn.settimeout(5)
            try:
                hello = parse_client_hello(self._record(conn))
                if hello is None or hello.version != 0x0303:
                    conn.sendall(ALERT_PROTOCOL_VERSION)
                    return
                suite = next((s for s in (0xC02F, 0x009C, 0x002F) if s in hello.suites), None)
                if suite is None:
                    conn.sendall(ALERT_HANDSHAKE_FAILURE)
                    return
                exts = b"\xff\x01\x00\x01\x00" + b"\x00\x0f\x00\x01\x01"  # renego, heartbeat
                conn.sendall(record(22, server_hello(0x0303, suite, exts) + handshake(14, b"")))
                beat = self._record(conn)
                if len(beat) < 8 or beat[0] != 24:
                    return
                self.heartbeats += 1
                if self.bleed:
                    claimed = int.from_bytes(beat[6:8], "big")
                    leak = (self.memory * (claimed // max(1, len(self.memory)) + 1))[:claimed]
                    body = b"\x02" + claimed.to_bytes(2, "big") + leak + b"\x00" * 16
                    conn.sendall(record(24, body))
                self._stop.wait(3)
            except OSError:
                return


class EarlyCcsServer(HeartbeatServer):
    """A TLS 1.2 server scripted as OpenSSL before 1.0.1h took an early ChangeCipherSpec
    (CVE-2014-0224): silent after the first, `bad_record_mac` after the second, since it has
    switched to keys from an empty master secret. Current OpenSSL cannot be made to do this.
    """

    def __init__(self) -> None:
        super().__init__(bleed=False)
        self.ccs_seen = 0

    def _one(self, conn: socket.socket) -> None:
        with conn:
            conn.settimeout(5)
            try:
                hello = parse_client_hello(self._record(conn))
                if hello is None or hello.version != 0x0303:
                    conn.sendall(ALERT_PROTOCOL_VERSION)
                    return
                suite = next((s for s in (0xC02F, 0x009C, 0x002F) if s in hello.suites), None)
                if suite is None:
                    conn.sendall(ALERT_HANDSHAKE_FAILURE)
                    return
                exts = b"\xff\x01\x00\x01\x00"
                conn.sendall(record(22, server_hello(0x0303, suite, exts) + handshake(14, b"")))
                for n in (1, 2):
                    rec = self._record(conn)
                    if len(rec) < 6 or rec[0] != 20:
                        return
                    self.ccs_seen += 1
                    if n == 2:
                        conn.sendall(record(21, b"\x02\x14"))  # fatal bad_record_mac
                self._stop.wait(1)
            except OSError:
                return


class RobotServer(HeartbeatServer):
    """A TLS 1.2 server with static-RSA suites that really decrypts each premaster secret with
    its own RSA key and answers the way the stacks ROBOT found did (Debian's OpenSSL 3 answers
    every variant alike, so no real server the tests can start is an oracle). `mode`:

    - "strong": a block that is not PKCS#1 conformant (not 00 02, padding under 8 bytes, no
      00 separator) gets alert decrypt_error, anything else bad_record_mac for the Finished;
    - "weak": only a block without any 00 after its first two bytes is told apart (alert
      decode_error), which an attack needs far more queries to use;
    - "noise": the alert takes turns between two, whatever the padding (a flaky middlebox);
    - "silent": never reacts to the key exchange; "junk": answers it with 1 MB of garbage.

    `request_cert`: ask for a client certificate and go on only after an empty one.
    """

    def __init__(self, mode: str, request_cert: bool = False) -> None:
        super().__init__(bleed=False)
        self.mode, self.request_cert = mode, request_cert
        self.issued = weak_self_signed("robot.so-tttt.example")
        key = self.issued.key
        assert isinstance(key, rsa.RSAPrivateKey)
        self._d, self._n = key.private_numbers().d, key.public_key().public_numbers().n
        self._k = (key.key_size + 7) // 8
        self._lock = threading.Lock()
        self.key_exchanges = 0

    def _alert_for(self, block: bytes) -> int | None:
        with self._lock:
            self.key_exchanges += 1
            turn = self.key_exchanges
        if self.mode == "noise":
            return 20 if turn % 2 else 40
        if self.mode in ("silent", "junk"):
            return None
        sep = block.find(b"\x00", 2)
        if self.mode == "weak":
            return 50 if sep < 0 else 20
        conformant = block[:2] == b"\x00\x02" and sep >= 10
        return 20 if conformant else 51

    def _one(self, conn: socket.socket) -> None:
        with conn:
            conn.settimeout(5)
            try:
                hello = parse_client_hello(self._record(conn))
                if hello is None or hello.version != 0x0303:
                    conn.sendall(ALERT_PROTOCOL_VERSION)
                    return
                suite = next((s for s in (0x002F, 0x0035) if s in hello.suites), None)
                if suite is None:
                    conn.sendall(ALERT_HANDSHAKE_FAILURE)
                    return
                der = self.issued.cert.public_bytes(serialization.Encoding.DER)
                chain = len(der).to_bytes(3, "big") + der
                certificate = handshake(11, len(chain).to_bytes(3, "big") + chain)
                hello_msg = server_hello(0x0303, suite, b"\xff\x01\x00\x01\x00")
                # CertificateRequest: rsa_sign, rsa_pkcs1_sha256, no CA names
                request = handshake(13, b"\x01\x01\x00\x02\x04\x01\x00\x00")
                flight = hello_msg + certificate + (request if self.request_cert else b"")
                conn.sendall(record(22, flight + handshake(14, b"")))
                cke = self._record(conn)
                if self.request_cert:  # an empty Certificate must come first, same record
                    if cke[5:12] != b"\x0b\x00\x00\x03\x00\x00\x00":
                        conn.sendall(record(21, b"\x02\x0a"))  # unexpected_message
                        return
                    cke = cke[:5] + cke[12:]
                if len(cke) < 11 or cke[0] != 22 or cke[5] != 16:
                    return  # not a key exchange (another probe): close
                ccs, fin = self._record(conn), self._record(conn)
                if not ccs or not fin:
                    return
                ciphertext = int.from_bytes(cke[11:], "big")
                block = pow(ciphertext, self._d, self._n).to_bytes(self._k, "big")
                alert = self._alert_for(block)
                if self.mode == "junk":
                    conn.sendall(b"\xee" * 1024 * 1024)
                    return
                if alert is None:
                    self._stop.wait(10)
                    return
                conn.sendall(record(21, bytes([2, alert])))
            except OSError:
                return
