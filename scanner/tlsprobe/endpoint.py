"""Where a TLS handshake can be attempted, and how to get a connection to that point.

`tls_endpoint(target)` decides from discovery's facts whether a service speaks TLS at once
(HTTPS, IMAPS, ...) or after a STARTTLS command (FTP, SMTP, IMAP, POP3), and `open_plain`
opens a TCP connection and, for STARTTLS services, performs the cleartext preamble so that the
caller can send a ClientHello next. Both the certificate and the handshake collectors build on
this, so the decision is made in one place.

Every read of the preamble is bounded in bytes, in lines and in time: the server is untrusted
and may send a megabyte banner or nothing at all.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
from dataclasses import dataclass
from typing import Literal

from scanner.model import Target, TargetKind
from scanner.plugins import NotApplicable

StartTls = Literal["", "ftp", "smtp", "imap", "pop3"]

# Service names (nmap's) and ports where TLS starts with the first byte.
IMPLICIT_TLS_NAMES = frozenset(
    {"https", "https-alt", "ssl", "imaps", "pop3s", "smtps", "submissions", "ftps", "ldaps"}
)
IMPLICIT_TLS_PORTS = frozenset({443, 8443, 465, 636, 990, 993, 995})
# Services that upgrade a cleartext session with a STARTTLS-like command.
STARTTLS_NAMES: dict[str, StartTls] = {
    "ftp": "ftp",
    "smtp": "smtp",
    "submission": "smtp",
    "imap": "imap",
    "pop3": "pop3",
}
STARTTLS_PORTS: dict[int, StartTls] = {21: "ftp", 25: "smtp", 587: "smtp", 143: "imap", 110: "pop3"}

MAX_LINE = 4096  # bytes of one preamble line
MAX_LINES = 64  # lines of one preamble reply (an EHLO answer is ~10)
EHLO_NAME = "assay.invalid"  # RFC 6761 reserved name: says who is asking, resolves nowhere


class TlsProbeError(Exception):
    """A TLS endpoint could not be probed; the message names the endpoint and the reason."""


class StartTlsError(TlsProbeError):
    """The cleartext preamble before the handshake failed (refused, silent or garbled)."""


class StartTlsNotOffered(StartTlsError, NotApplicable):
    """The service answered properly but does not offer (or refuses) the TLS upgrade: it has
    no TLS to audit. Its cleartext use is judged by the service's own checks."""


@dataclass(frozen=True)
class TlsEndpoint:
    """One place to send a ClientHello: address, port, the upgrade needed, and the SNI name."""

    address: str
    port: int
    starttls: StartTls
    server_name: str | None

    @property
    def label(self) -> str:
        via = f" (STARTTLS {self.starttls})" if self.starttls else ""
        return f"{self.address}:{self.port}{via}"


def _is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def _server_name(target: Target) -> str | None:
    """The first DNS name of the target (SNI carries host names only, never IP literals)."""
    for name in target.names:
        name = name.strip().rstrip(".").lower()
        if name and not _is_ip(name) and all(c.isalnum() or c in "-." for c in name):
            return name
    return None


def tls_endpoint(target: Target) -> TlsEndpoint | None:
    """The TLS endpoint of a service target, or None when nothing suggests TLS there."""
    if target.kind is not TargetKind.SERVICE or target.protocol != "tcp":
        return None
    if not target.address or not target.port:
        return None
    info = target.service
    name = (info.name if info else "").lower()
    starttls: StartTls | None = None
    if (info and info.tunnel == "ssl") or name in IMPLICIT_TLS_NAMES:
        starttls = ""
    elif name in STARTTLS_NAMES:
        starttls = STARTTLS_NAMES[name]
    elif not name:
        if target.port in IMPLICIT_TLS_PORTS:
            starttls = ""
        elif target.port in STARTTLS_PORTS:
            starttls = STARTTLS_PORTS[target.port]
    if starttls is None:
        return None
    return TlsEndpoint(target.address, target.port, starttls, _server_name(target))


# -- the cleartext preamble -------------------------------------------------------------------


class _Lines:
    """Bounded line reader over the cleartext part of the connection."""

    def __init__(self, ep: TlsEndpoint, reader: asyncio.StreamReader, timeout: float) -> None:
        self.ep, self.reader, self.timeout = ep, reader, timeout

    def not_offered(self, what: str) -> StartTlsNotOffered:
        return StartTlsNotOffered(f"tls {self.ep.label}: {what}")

    def fail(self, what: str) -> StartTlsError:
        return StartTlsError(f"tls {self.ep.label}: {what}")

    async def line(self, step: str) -> str:
        try:
            async with asyncio.timeout(self.timeout):
                raw = await self.reader.readuntil(b"\n")
        except TimeoutError:
            raise self.fail(f"no reply to {step} within {self.timeout:g}s") from None
        except asyncio.LimitOverrunError:
            raise self.fail(f"reply to {step} has a line over {MAX_LINE} bytes") from None
        except asyncio.IncompleteReadError as exc:
            raise self.fail(
                f"connection closed during {step}"
                + (f" after {exc.partial[:40]!r}" if exc.partial else "")
            ) from None
        except OSError as exc:
            raise self.fail(f"read failed during {step}: {exc.strerror or exc}") from None
        return raw.decode("latin-1").rstrip("\r\n")

    async def reply(self, step: str) -> tuple[str, list[str]]:
        """A numbered (FTP/SMTP) reply: its code and every line, multi-line ones included."""
        lines: list[str] = []
        for _ in range(MAX_LINES):
            text = await self.line(step)
            lines.append(text)
            code = text[:3]
            if not code.isdigit():
                raise self.fail(f"reply to {step} is not a numbered reply: {text[:60]!r}")
            if text[3:4] != "-":
                return code, lines
        raise self.fail(f"reply to {step} has more than {MAX_LINES} lines")

    async def tagged(self, tag: str, step: str) -> str:
        """An IMAP tagged response, skipping at most MAX_LINES untagged ones."""
        for _ in range(MAX_LINES):
            text = await self.line(step)
            if text.startswith(tag + " "):
                return text[len(tag) + 1 :]
        raise self.fail(f"no tagged answer to {step} within {MAX_LINES} lines")


async def _send(ep: TlsEndpoint, writer: asyncio.StreamWriter, data: str, timeout: float) -> None:
    try:
        writer.write(data.encode("ascii"))
        await asyncio.wait_for(writer.drain(), timeout)
    except (OSError, TimeoutError) as exc:
        raise StartTlsError(f"tls {ep.label}: sending {data.split()[0]!r} failed: {exc}") from None


async def _preamble(
    ep: TlsEndpoint, lines: _Lines, writer: asyncio.StreamWriter, timeout: float
) -> None:
    if ep.starttls == "ftp":
        code, text = await lines.reply("the FTP greeting")
        if code != "220":
            raise lines.fail(f"FTP greeting is not 220: {text[-1][:60]!r}")
        await _send(ep, writer, "AUTH TLS\r\n", timeout)
        code, text = await lines.reply("AUTH TLS")
        if code != "234":
            raise lines.not_offered(f"FTP server refused AUTH TLS: {text[-1][:60]!r}")
    elif ep.starttls == "smtp":
        code, text = await lines.reply("the SMTP greeting")
        if code != "220":
            raise lines.fail(f"SMTP greeting is not 220: {text[-1][:60]!r}")
        await _send(ep, writer, f"EHLO {EHLO_NAME}\r\n", timeout)
        code, text = await lines.reply("EHLO")
        if code != "250":
            raise lines.fail(f"SMTP server refused EHLO: {text[-1][:60]!r}")
        if not any(t[4:].strip().upper().startswith("STARTTLS") for t in text):
            raise lines.not_offered("SMTP server does not offer STARTTLS in its EHLO reply")
        await _send(ep, writer, "STARTTLS\r\n", timeout)
        code, text = await lines.reply("STARTTLS")
        if code != "220":
            raise lines.not_offered(f"SMTP server refused STARTTLS: {text[-1][:60]!r}")
    elif ep.starttls == "imap":
        greeting = await lines.line("the IMAP greeting")
        if not greeting.upper().startswith("* OK"):
            raise lines.fail(f"IMAP greeting is not '* OK': {greeting[:60]!r}")
        await _send(ep, writer, "a1 STARTTLS\r\n", timeout)
        answer = await lines.tagged("a1", "STARTTLS")
        if not answer.upper().startswith("OK"):
            raise lines.not_offered(f"IMAP server refused STARTTLS: {answer[:60]!r}")
    elif ep.starttls == "pop3":
        greeting = await lines.line("the POP3 greeting")
        if not greeting.startswith("+OK"):
            raise lines.fail(f"POP3 greeting is not '+OK': {greeting[:60]!r}")
        await _send(ep, writer, "STLS\r\n", timeout)
        answer = await lines.line("STLS")
        if not answer.startswith("+OK"):
            raise lines.not_offered(f"POP3 server refused STLS: {answer[:60]!r}")


async def open_plain(
    ep: TlsEndpoint, timeout: float
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """A TCP connection to `ep`, past any STARTTLS preamble, ready for a ClientHello.

    The caller checks the scope before calling. Raises `TlsProbeError` (connection) or
    `StartTlsError` (preamble) with the endpoint in the message; the socket is closed then.
    """
    try:
        reader, writer = await asyncio.wait_for(
            asyncio.open_connection(ep.address, ep.port, limit=MAX_LINE), timeout
        )
    except TimeoutError:
        raise TlsProbeError(
            f"tls {ep.label}: connection not established within {timeout:g}s"
        ) from None
    except OSError as exc:
        raise TlsProbeError(f"tls {ep.label}: cannot connect: {exc.strerror or exc}") from None
    if not ep.starttls:
        return reader, writer
    try:
        await _preamble(ep, _Lines(ep, reader, timeout), writer, timeout)
    except BaseException:
        writer.close()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(writer.wait_closed(), 1.0)
        raise
    return reader, writer
