"""One probe: a connection, one ClientHello, and the server's answer read within bounds.

A probe never raises for what the server does: refusing (an alert, a closed connection),
staying silent, or sending garbage all become an `Answer` whose `kind` says which, so that an
enumeration can tell "not supported" from "could not be assessed". Bytes read per probe are
capped, and the whole exchange (connect, any STARTTLS preamble, answer) has one deadline.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Literal

from scanner.tlsprobe.endpoint import TlsEndpoint, TlsProbeError, open_plain
from scanner.tlsprobe.hello import HelloSpec, client_hello
from scanner.tlsprobe.suites import TLS13, suite
from scanner.tlsprobe.wire import (
    CT_ALERT,
    CT_CHANGE_CIPHER_SPEC,
    CT_HANDSHAKE,
    CT_HEARTBEAT,
    EXT_HEARTBEAT,
    EXT_STATUS_REQUEST,
    HS_CERTIFICATE,
    HS_CERTIFICATE_REQUEST,
    HS_SERVER_HELLO,
    HS_SERVER_HELLO_DONE,
    HS_SERVER_KEY_EXCHANGE,
    Alert,
    HandshakeBuffer,
    KeyExchange,
    ServerHello,
    TlsParseError,
    parse_alert,
    parse_certificates,
    parse_dh_params,
    parse_ecdh_params,
    parse_record_header,
    parse_server_hello,
)

MAX_BYTES_PER_PROBE = 256 * 1024

Kind = Literal["hello", "hrr", "alert", "closed", "timeout", "error"]


@dataclass(frozen=True)
class Answer:
    kind: Kind
    hello: ServerHello | None = None
    alert: Alert | None = None
    certificates: tuple[bytes, ...] = ()
    kex: KeyExchange | None = None
    reason: str = ""
    client_cert_requested: bool = False  # a CertificateRequest came before ServerHelloDone

    @property
    def accepted(self) -> bool:
        return self.hello is not None

    def accepted_as(self, version: int) -> bool:
        return self.hello is not None and self.hello.version == version

    @property
    def rejected(self) -> bool:
        """The server answered and said no (as opposed to: could not be assessed)."""
        return self.kind in ("alert", "closed")

    def describe(self) -> str:
        if self.hello is not None:
            return "HelloRetryRequest" if self.kind == "hrr" else "ServerHello"
        if self.alert is not None:
            return f"alert {self.alert.name}"
        return self.reason or self.kind


class _Reader:
    def __init__(self, reader: asyncio.StreamReader, limit: int) -> None:
        self.reader, self.left = reader, limit

    async def record(self) -> tuple[int, bytes] | None:
        """(content type, fragment), or None when the server closed between records."""
        try:
            hdr = await self.reader.readexactly(5)
        except asyncio.IncompleteReadError as exc:
            if not exc.partial:
                return None
            hdr = exc.partial
        header = parse_record_header(hdr)
        self.left -= 5 + header.length
        if self.left < 0:
            raise TlsParseError(f"server sent more than {MAX_BYTES_PER_PROBE} bytes")
        try:
            body = await self.reader.readexactly(header.length)
        except asyncio.IncompleteReadError as exc:
            raise TlsParseError(
                f"connection closed inside a record ({len(exc.partial)} of {header.length} bytes)"
            ) from None
        return header.content_type, body


def _key_exchange(hello: ServerHello, body: bytes) -> KeyExchange | None:
    s = suite(hello.cipher)
    if s is None:
        return None
    if s.kex in ("DHE", "DHE_PSK"):
        return parse_dh_params(body)
    if s.kex in ("ECDHE", "ECDHE_PSK"):
        return parse_ecdh_params(body)
    return None


async def _exchange(reader: asyncio.StreamReader, spec: HelloSpec, read_kex: bool) -> Answer:
    rd = _Reader(reader, MAX_BYTES_PER_PROBE)
    buf = HandshakeBuffer()
    hello: ServerHello | None = None
    certs: tuple[bytes, ...] = ()
    kex: KeyExchange | None = None
    cert_request = False
    while True:
        rec = await rd.record()
        if rec is None:
            if hello is not None:
                return Answer("hello", hello, None, certs, kex, "closed after ServerHello")
            return Answer("closed", reason="connection closed without an answer")
        ctype, body = rec
        if ctype == CT_ALERT:
            alert = parse_alert(body)
            if hello is not None:  # e.g. a failed key exchange after the ServerHello
                return Answer("hello", hello, alert, certs, kex)
            return Answer("alert", alert=alert, reason=alert.name)
        if ctype != CT_HANDSHAKE:
            if hello is not None:
                return Answer("hello", hello, None, certs, kex)
            raise TlsParseError(f"record of type {ctype} before the ServerHello")
        for mtype, msg in buf.feed(body):
            if hello is None:
                if mtype != HS_SERVER_HELLO:
                    raise TlsParseError(f"handshake message {mtype} before the ServerHello")
                hello = parse_server_hello(msg)
                if hello.is_hrr:
                    return Answer("hrr", hello)
                if hello.version == TLS13 or not read_kex:
                    return Answer("hello", hello)
                continue
            if mtype == HS_CERTIFICATE:
                certs = tuple(parse_certificates(msg))
            elif mtype == HS_SERVER_KEY_EXCHANGE:
                kex = _key_exchange(hello, msg)
            elif mtype == HS_CERTIFICATE_REQUEST:
                cert_request = True
            elif mtype == HS_SERVER_HELLO_DONE:
                return Answer("hello", hello, None, certs, kex, client_cert_requested=cert_request)


@contextlib.asynccontextmanager
async def first_flight(
    ep: TlsEndpoint, spec: HelloSpec, timeout: float, read_kex: bool = True
) -> AsyncIterator[tuple[Answer, asyncio.StreamReader, asyncio.StreamWriter]]:
    """A connection that sent `spec`'s hello and read the server's answer (with `read_kex`, up
    to ServerHelloDone), still open for probes that go on talking; closed on exit. The
    caller bounds the whole exchange and maps the faults (PROBE_FAULTS)."""
    reader, writer = await open_plain(ep, timeout)
    try:
        writer.write(client_hello(spec))
        await writer.drain()
        ans = await asyncio.wait_for(_exchange(reader, spec, read_kex), timeout)
        yield ans, reader, writer
    finally:
        writer.close()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(writer.wait_closed(), 1.0)


async def probe(ep: TlsEndpoint, spec: HelloSpec, timeout: float, read_kex: bool = False) -> Answer:
    """Send one ClientHello to `ep` and classify the answer (see the module docstring)."""
    try:
        async with asyncio.timeout(timeout), first_flight(ep, spec, timeout, read_kex) as got:
            return got[0]
    except TimeoutError:
        return Answer("timeout", reason=f"no answer to a ClientHello within {timeout:g}s")
    except TlsParseError as exc:
        return Answer("error", reason=f"malformed answer: {exc}")
    except (ConnectionResetError, BrokenPipeError):
        return Answer("closed", reason="connection reset")
    except TlsProbeError as exc:
        return Answer("error", reason=str(exc))
    except OSError as exc:
        return Answer("error", reason=f"socket error: {exc.strerror or exc}")


# What can end a probe connection without an answer to judge (TimeoutError and the resets are
# OSErrors; listed for the reader).
PROBE_FAULTS = (TimeoutError, TlsParseError, TlsProbeError, OSError)


def fault(exc: BaseException, timeout: float) -> str:
    """The reason, in the words every side probe uses, for one of PROBE_FAULTS."""
    if isinstance(exc, TimeoutError):
        return f"no answer within {timeout:g}s"
    if isinstance(exc, TlsParseError):
        return f"malformed answer: {exc}"
    if isinstance(exc, ConnectionResetError | BrokenPipeError):
        return "connection reset"
    if isinstance(exc, OSError):
        return f"socket error: {exc.strerror or exc}"
    return str(exc)


@dataclass(frozen=True)
class HeartbeatAnswer:
    """What a heartbeat probe learnt. Leaked bytes are counted, never kept."""

    offered: bool | None  # the ServerHello echoed the heartbeat extension (None: no hello)
    leaked: int = 0  # bytes returned beyond the 0-byte payload Assay sent
    reason: str = ""
    stapled: bool | None = None  # the ServerHello echoed status_request (OCSP stapling)

    @property
    def vulnerable(self) -> bool:
        return self.leaked > 0


# A heartbeat request claiming a 16 KiB payload while carrying none (CVE-2014-0160): a patched
# server discards it (RFC 6520 section 4), a vulnerable one answers with its own memory.
HEARTBLEED_CLAIM = 0x4000


def heartbeat_request(version: int) -> bytes:
    payload = b"\x01" + HEARTBLEED_CLAIM.to_bytes(2, "big")
    header = bytes([CT_HEARTBEAT]) + version.to_bytes(2, "big") + len(payload).to_bytes(2, "big")
    return header + payload


async def heartbleed(
    ep: TlsEndpoint, spec: HelloSpec, timeout: float, wait: float = 2.0
) -> HeartbeatAnswer:
    """One connection: a hello offering heartbeats; if the server takes them, one malformed
    heartbeat after its ServerHelloDone, and at most `wait` seconds for an answer."""
    try:
        async with (
            asyncio.timeout(timeout + wait),
            first_flight(ep, spec, timeout) as (ans, reader, writer),
        ):
            if ans.hello is None:
                return HeartbeatAnswer(None, reason=ans.describe())
            stapled = EXT_STATUS_REQUEST in ans.hello.extensions
            if EXT_HEARTBEAT not in ans.hello.extensions:
                return HeartbeatAnswer(
                    False, reason="heartbeat extension not echoed", stapled=stapled
                )
            writer.write(heartbeat_request(ans.hello.version))
            await writer.drain()
            reply = await _heartbeat_reply(_Reader(reader, MAX_BYTES_PER_PROBE), wait)
            return dataclasses.replace(reply, stapled=stapled)
    except PROBE_FAULTS as exc:
        return HeartbeatAnswer(None, reason=fault(exc, timeout))


async def _heartbeat_reply(rd: _Reader, wait: float) -> HeartbeatAnswer:
    try:
        async with asyncio.timeout(wait):
            while True:
                rec = await rd.record()
                if rec is None:
                    return HeartbeatAnswer(True, reason="closed after the heartbeat")
                ctype, body = rec
                if ctype == CT_HEARTBEAT:
                    # type(1) + payload_length(2) + payload + padding: anything past the
                    # 3-byte header is memory the server should not have sent
                    return HeartbeatAnswer(True, leaked=max(0, len(body) - 3))
                if ctype == CT_ALERT:
                    return HeartbeatAnswer(True, reason=f"alert {parse_alert(body).name}")
    except TimeoutError:
        return HeartbeatAnswer(True, reason="the malformed heartbeat was ignored")


@dataclass(frozen=True)
class CcsAnswer:
    """How a server took a ChangeCipherSpec sent before any key exchange (CVE-2014-0224).

    verdict: "refused" (alert unexpected_message, as RFC 5246 requires), "accepted" (silent
    after the first CCS, then a record-decryption alert after a second one: it switched to
    keys derived from an empty master secret), "inconclusive" (anything else), or None (no
    handshake to test on).
    """

    verdict: str | None
    reason: str = ""


CCS_RECORD_BODY = b"\x01"
DECRYPT_ALERTS = frozenset({20, 21})  # bad_record_mac, decryption_failed


async def ccs_injection(
    ep: TlsEndpoint, spec: HelloSpec, timeout: float, wait: float = 2.0
) -> CcsAnswer:
    """One connection: a hello, then an early ChangeCipherSpec after ServerHelloDone and, if
    the server stays silent, a second one; at most `wait` seconds for each reply."""
    try:
        async with (
            asyncio.timeout(timeout + 2 * wait + 1),
            first_flight(ep, spec, timeout) as (ans, reader, writer),
        ):
            if ans.hello is None:
                return CcsAnswer(None, ans.describe())
            if ans.alert is not None:
                return CcsAnswer(None, f"handshake ended with alert {ans.alert.name}")
            version = ans.hello.version.to_bytes(2, "big")
            ccs = bytes([CT_CHANGE_CIPHER_SPEC]) + version + b"\x00\x01" + CCS_RECORD_BODY
            rd = _Reader(reader, MAX_BYTES_PER_PROBE)
            for attempt in (1, 2):
                writer.write(ccs)
                await writer.drain()
                got = await _next_alert(rd, wait)
                if got == "silent":
                    continue
                if got == 10:
                    if attempt == 1:
                        return CcsAnswer("refused", "alert unexpected_message")
                    return CcsAnswer("inconclusive", "unexpected_message after a second CCS")
                if isinstance(got, int) and got in DECRYPT_ALERTS and attempt == 2:
                    return CcsAnswer(
                        "accepted",
                        f"silent after the early CCS, then alert {Alert(2, got).name}",
                    )
                return CcsAnswer("inconclusive", f"after CCS {attempt}: {got}")
            return CcsAnswer("inconclusive", "silent after two early CCS records")
    except (ConnectionResetError, BrokenPipeError):
        return CcsAnswer("inconclusive", "connection reset after the early CCS")
    except PROBE_FAULTS as exc:
        return CcsAnswer(None, fault(exc, timeout))


async def _next_alert(rd: _Reader, wait: float) -> int | str:
    """The next alert's description code; "silent" after `wait`; "closed"; or what came."""
    try:
        async with asyncio.timeout(wait):
            rec = await rd.record()
    except TimeoutError:
        return "silent"
    if rec is None:
        return "closed without an alert"
    ctype, body = rec
    if ctype == CT_ALERT and len(body) >= 2:
        return body[1]
    return f"a record of type {ctype}"
