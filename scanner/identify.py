"""Light, safe identification of a TCP service by its behaviour (Assay's own, not nmap's).

Used when nmap is missing or could not name a port. Bounded in time and bytes: read a greeting
passively; if the service is silent, send one `PING` line (Redis answers, HTTP servers reject
it with a status line, echo repeats it); if that names nothing, try a TLS handshake on a new
connection (then `HEAD /` inside it, to tell HTTPS from other TLS services). Never raises on
garbage: returns an empty name with a note instead.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import ssl
import warnings

from scanner.model import ServiceInfo

MAX_BYTES = 4096
IDLE = 0.3
_DATE = re.compile(
    rb"(Mon|Tue|Wed|Thu|Fri|Sat|Sun|\d{1,2}[ -/](Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec))"
    rb"|\d{4}-\d{2}-\d{2}[ T]\d{2}:\d{2}",
    re.IGNORECASE,
)
_SERVER = re.compile(rb"^server:\s*([^\r\n]+)", re.IGNORECASE | re.MULTILINE)


async def _read(reader: asyncio.StreamReader, wait: float) -> tuple[bytes, bool]:
    """Read what arrives within `wait` seconds (bounded); whether the peer closed.

    After the first bytes, a pause of IDLE seconds ends the read: a greeting has arrived, while
    a stream (chargen) keeps coming until the byte cap.
    """
    data = b""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + wait
    while len(data) < MAX_BYTES:
        left = deadline - loop.time()
        if left <= 0:
            return data, False
        try:
            chunk = await asyncio.wait_for(
                reader.read(MAX_BYTES - len(data)), min(left, IDLE) if data else left
            )
        except (TimeoutError, OSError):
            return data, False
        if not chunk:
            return data, True
        data += chunk
    return data, False


def _greeting(data: bytes, closed: bool) -> ServiceInfo | None:
    if data.startswith(b"SSH-"):
        line = data.split(b"\n")[0].decode("latin-1").strip()
        soft = line.split("-", 2)[2] if line.count("-") >= 2 else ""
        product, _, version = soft.partition("_")
        return ServiceInfo(name="ssh", product=product, version=version.split(" ")[0])
    if len(data) >= 2 and data[0] == 0xFF and data[1] in (0xFB, 0xFC, 0xFD, 0xFE):
        return ServiceInfo(name="telnet")
    text = data.decode("latin-1")
    if text.startswith("220"):
        low = text.lower()
        if "smtp" in low or "mail" in low:
            return ServiceInfo(name="smtp")
        return ServiceInfo(name="ftp")
    if text.startswith("+OK"):
        return ServiceInfo(name="pop3")
    if text.startswith("* OK"):
        return ServiceInfo(name="imap")
    if closed and len(data) == 4:
        return ServiceInfo(name="time")
    if closed and _DATE.search(data) and len(data) < 200:
        return ServiceInfo(name="daytime")
    printable = sum(32 <= b < 127 or b in (10, 13) for b in data)
    if len(data) >= 512 and printable == len(data) and not closed:
        lines = [ln for ln in data.split(b"\r\n") if ln]
        if len(lines) >= 3 and len({len(ln) for ln in lines[:-1]}) <= 2:
            return ServiceInfo(name="chargen")
    return None


async def identify(address: str, port: int, timeout: float) -> ServiceInfo:
    try:
        reader, writer = await asyncio.wait_for(asyncio.open_connection(address, port), timeout)
    except (TimeoutError, OSError) as exc:
        return ServiceInfo(note=f"connect failed: {exc.__class__.__name__}")
    try:
        data, closed = await _read(reader, min(timeout, 2.0))
        if data:
            found = _greeting(data, closed)
            return found or ServiceInfo(note=f"unrecognised greeting ({len(data)} bytes)")
        if closed:
            return ServiceInfo(note="closed the connection without a greeting")
        probe = b"PING\r\n\r\n"  # a blank line ends it as an HTTP request too
        try:
            writer.write(probe)
            await asyncio.wait_for(writer.drain(), timeout)
        except (TimeoutError, OSError):
            return ServiceInfo(note="silent service (discard-like)")
        reply, _ = await _read(reader, min(timeout, 2.0))
        if reply.startswith((b"+PONG", b"-NOAUTH", b"-ERR", b"-DENIED", b"-WRONGPASS")):
            return ServiceInfo(name="redis")
        if reply.startswith(b"HTTP/1.1 400") or reply.startswith(b"HTTP/1.0 400"):
            # nginx and others answer a cleartext request on a TLS port with 400
            tls = await _tls(address, port, timeout)
            if tls is not None:
                return tls
        if reply.startswith(b"HTTP/"):
            m = _SERVER.search(reply)
            product = m.group(1).decode("latin-1").strip()[:80] if m else ""
            return ServiceInfo(name="http", product=product)
        if reply.startswith(probe):
            return ServiceInfo(name="echo")
        tls = await _tls(address, port, timeout)  # a TLS server alerts, closes or stays silent
        if tls is not None:
            return tls
        if not reply:
            return ServiceInfo(note="silent service (discard-like)")
        return ServiceInfo(note=f"unrecognised reply ({len(reply)} bytes)")
    finally:
        writer.close()
        with contextlib.suppress(TimeoutError, OSError):
            await asyncio.wait_for(writer.wait_closed(), 1)


def _client_context() -> ssl.SSLContext:
    """A client context that completes a handshake with anything, old or new (identification
    only: nothing is verified here; the TLS audit judges the server)."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    with warnings.catch_warnings():  # reaching legacy servers is the point
        warnings.simplefilter("ignore", DeprecationWarning)
        ctx.minimum_version = ssl.TLSVersion.TLSv1
    with contextlib.suppress(ssl.SSLError):
        ctx.set_ciphers("ALL:@SECLEVEL=0")
    return ctx


async def _tls(address: str, port: int, timeout: float) -> ServiceInfo | None:
    """Whether the port speaks TLS (then `tunnel="ssl"`), and HTTP inside it ("https")."""
    try:
        reader, writer = await asyncio.wait_for(
            asyncio.open_connection(address, port, ssl=_client_context(), server_hostname=None),
            timeout,
        )
    except (TimeoutError, OSError, ssl.SSLError, EOFError):
        return None
    try:
        writer.write(b"HEAD / HTTP/1.0\r\n\r\n")
        await asyncio.wait_for(writer.drain(), timeout)
        reply, _ = await _read(reader, min(timeout, 2.0))
    except (TimeoutError, OSError, ssl.SSLError):
        reply = b""
    finally:
        writer.close()
        with contextlib.suppress(TimeoutError, OSError, ssl.SSLError):
            await asyncio.wait_for(writer.wait_closed(), 1)
    if reply.startswith(b"HTTP/"):
        m = _SERVER.search(reply)
        product = m.group(1).decode("latin-1").strip()[:80] if m else ""
        return ServiceInfo(name="https", product=product, tunnel="ssl")
    return ServiceInfo(name="ssl", tunnel="ssl", note="TLS; the protocol inside was not named")
