"""Passive banner grab of any TCP service, plus a one-line probe of the old small services.

Why a collector of its own: several checks (telnet, echo/chargen and friends, later version
disclosure of unknown services) only need "what does the port say when nobody talks to it".
One connection per target answers all of them. The read is bounded in time and bytes, so a
chargen stream or a server that never speaks costs at most a couple of seconds and 4 KiB.

A port that no longer accepts connections is a fact (`connect_error`), not an exception: the
checks decide whether that matters.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import re
import secrets
from typing import Literal

from scanner.model import Facts, Target, TargetKind
from scanner.plugins import CollectContext, Collector

READ_WINDOW = 2.0  # seconds to wait for a greeting (capped by ctx.probe_timeout)
QUIET_WINDOW = 0.5  # greeting wait on ports expected to be echo or discard
IDLE_AFTER_DATA = 0.3  # once bytes arrived, stop after this long without more
READ_LIMIT = 4096  # bytes kept from the greeting (and from a probe reply)
TEXT_LIMIT = 1024  # characters of escaped text stored in the facts

# The small services of RFC 862/863/867/864/868 and their well-known ports.
SMALL_SERVICES: dict[str, int] = {"echo": 7, "discard": 9, "daytime": 13, "chargen": 19, "time": 37}
SMALL_PORTS: dict[int, str] = {port: name for name, port in SMALL_SERVICES.items()}
# the two that stay silent until they get input; the others speak (and mostly hang up) at once
WAIT_FOR_INPUT = frozenset({"echo", "discard"})
# discovery names that mean "nothing identified this port yet"
UNIDENTIFIED = frozenset({"", "unknown", "tcpwrapped"})

Behaviour = Literal["", "echo", "discard", "daytime", "chargen", "time"]

_IAC = 0xFF
_NEGOTIATION = {0xFB: "WILL", 0xFC: "WONT", 0xFD: "DO", 0xFE: "DONT"}
_TELNET_OPTIONS = {
    0: "BINARY",
    1: "ECHO",
    3: "SGA",
    5: "STATUS",
    24: "TTYPE",
    31: "NAWS",
    32: "TSPEED",
    33: "LFLOW",
    34: "LINEMODE",
    35: "XDISPLOC",
    36: "OLD-ENVIRON",
    37: "AUTHENTICATION",
    38: "ENCRYPT",
    39: "NEW-ENVIRON",
}
_ESCAPES = {"\r": "\\r", "\n": "\\n", "\t": "\\t", "\\": "\\\\"}
_DAYTIME = re.compile(
    r"\d{1,2}:\d{2}(:\d{2})?.*\b(19|20)\d{2}\b|\b(19|20)\d{2}\b.*\d{1,2}:\d{2}(:\d{2})?"
)
_REPLY_CODE = re.compile(r"^\d{3}[ -]")


class BannerFacts(Facts):
    """What a port says unprompted, and how it reacts to one short line when that is safe."""

    address: str
    port: int
    connected: bool
    connect_error: str = ""  # "refused", "timeout" or the OS error, when not connected
    banner: str = ""  # latin-1 text, control characters escaped, truncated
    banner_truncated: bool = False
    bytes_read: int = 0
    read_limit_reached: bool = False  # the server kept sending until we stopped reading
    closed_by_server: bool = False  # EOF arrived inside the read window
    telnet_iac: bool = False  # the first bytes are telnet option negotiation
    telnet_options: list[str] = []  # e.g. "DO TTYPE", at most 32
    probe_sent: bool = False  # one line was sent (small-service candidates only)
    probe_reply: str = ""
    probe_reply_bytes: int = 0
    behaviour: Behaviour = ""  # small service recognised by what it did


def printable(data: bytes, limit: int = TEXT_LIMIT) -> tuple[str, bool]:
    """Bytes as latin-1 text with control characters escaped; (text, truncated)."""
    return escape_text(data.decode("latin-1"), limit)


def escape_text(text: str, limit: int = TEXT_LIMIT) -> tuple[str, bool]:
    """Hostile text made safe to store and print: control characters escaped, length bounded."""
    out: list[str] = []
    size = 0
    for ch in text:
        piece = _ESCAPES.get(ch) or (ch if ch.isprintable() else f"\\x{ord(ch):02x}")
        if size + len(piece) > limit:
            return "".join(out), True
        out.append(piece)
        size += len(piece)
    return "".join(out), False


def telnet_negotiation(data: bytes, limit: int = 32) -> list[str]:
    """Option commands at the start of `data` ("DO TTYPE"); empty when it is not telnet."""
    found: list[str] = []
    i = 0
    while i + 2 < len(data) and data[i] == _IAC and len(found) < limit:
        verb = _NEGOTIATION.get(data[i + 1])
        if verb is None:
            break
        opt = data[i + 2]
        found.append(f"{verb} {_TELNET_OPTIONS.get(opt, str(opt))}")
        i += 3
    return found


def looks_like_chargen(data: bytes) -> bool:
    """RFC 864 output: lines of printable ASCII, each character the successor of the last."""
    line = data.split(b"\r\n", 1)[0].split(b"\n", 1)[0]
    if len(line) < 20 or not all(32 <= b <= 126 for b in line):
        return False
    return all(b == 32 + (a - 32 + 1) % 95 for a, b in itertools.pairwise(line))


def looks_like_daytime(data: bytes, closed: bool) -> bool:
    """RFC 867: one short human-readable date line, then the server hangs up."""
    if not closed or not 8 <= len(data) <= 80 or not data.endswith(b"\n"):
        return False
    text = data.decode("latin-1").strip()
    if "\n" in text or not text.isprintable() or _REPLY_CODE.match(text):
        return False
    return bool(_DAYTIME.search(text))


def looks_like_time(data: bytes, closed: bool) -> bool:
    """RFC 868: a 32-bit count of seconds since 1900, then close.

    Some implementations write a 64-bit value (the 4 meaningful bytes then 4 zero bytes), so 8
    bytes with a zero tail are accepted too. The value must fall in 1990..2100 to count.
    """
    if not closed or len(data) not in (4, 8) or (len(data) == 8 and data[4:] != bytes(4)):
        return False
    seconds = int.from_bytes(data[:4], "big")
    return 2_840_140_800 <= seconds <= 6_311_433_600


def service_name(target: Target) -> str:
    return (target.service.name if target.service else "").lower()


def named_by_port_only(target: Target) -> bool:
    """True when the service name is nothing but a port-number guess (or missing)."""
    method = target.service.method if target.service else ""
    return method == "table" or service_name(target) in UNIDENTIFIED


def small_service_hint(target: Target) -> str:
    """The small service this port is expected to be, from its name or its well-known port."""
    name = service_name(target)
    if name in SMALL_SERVICES:
        return name
    return SMALL_PORTS.get(target.port or 0, "") if named_by_port_only(target) else ""


def _may_classify(target: Target) -> bool:
    """Behaviour is only inferred where no probe has already identified another protocol."""
    return named_by_port_only(target) or service_name(target) in SMALL_SERVICES


async def read_window(
    reader: asyncio.StreamReader, window: float, limit: int = READ_LIMIT
) -> tuple[bytes, bool]:
    """Read what arrives within `window` seconds (at most `limit` bytes); (data, eof)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + window
    data = bytearray()
    while len(data) < limit:
        remaining = deadline - loop.time()
        if remaining <= 0:
            break
        wait = min(remaining, IDLE_AFTER_DATA) if data else remaining
        try:
            chunk = await asyncio.wait_for(reader.read(limit - len(data)), wait)
        except TimeoutError:
            break
        except OSError:  # reset or aborted: the server hung up
            return bytes(data), True
        if not chunk:
            return bytes(data), True
        data += chunk
    return bytes(data), False


async def close_quietly(writer: asyncio.StreamWriter, timeout: float = 1.0) -> None:
    writer.close()
    with contextlib.suppress(OSError, TimeoutError):
        await asyncio.wait_for(writer.wait_closed(), timeout)


def connect_error_text(exc: BaseException) -> str:
    if isinstance(exc, ConnectionRefusedError):
        return "refused"
    if isinstance(exc, TimeoutError):
        return "timeout"
    return f"{type(exc).__name__}: {exc}"


class BannerCollector(Collector):
    """Connect, listen, and (for small-service candidates only) send one harmless line."""

    id = "service.banner"
    target_kind = TargetKind.SERVICE
    facts_model = BannerFacts
    timeout = 15.0

    def applies(self, target: Target) -> bool:
        return target.kind is TargetKind.SERVICE and target.protocol == "tcp"

    async def collect(self, target: Target, ctx: CollectContext) -> BannerFacts:
        assert target.address is not None and target.port is not None
        ctx.scope.ensure_address(target.address)
        window = min(ctx.probe_timeout, READ_WINDOW)
        try:
            reader, writer = await asyncio.wait_for(
                asyncio.open_connection(target.address, target.port), ctx.probe_timeout
            )
        except (OSError, TimeoutError) as exc:
            return BannerFacts(
                address=target.address,
                port=target.port,
                connected=False,
                connect_error=connect_error_text(exc),
            )
        try:
            hint = small_service_hint(target)
            # echo and discard never speak first: a short listen is enough before the probe
            first = min(window, QUIET_WINDOW) if hint in WAIT_FOR_INPUT else window
            data, eof = await read_window(reader, first)
            facts = self._greeting_facts(target.address, target.port, data, eof)
            if _may_classify(target):
                facts.behaviour = self._passive_behaviour(data, eof)
            if hint in WAIT_FOR_INPUT and not data and not eof:
                await self._probe(reader, writer, window, facts, hint)
        finally:
            await close_quietly(writer)
        return facts

    @staticmethod
    def _greeting_facts(address: str, port: int, data: bytes, eof: bool) -> BannerFacts:
        text, truncated = printable(data)
        options = telnet_negotiation(data)
        return BannerFacts(
            address=address,
            port=port,
            connected=True,
            banner=text,
            banner_truncated=truncated,
            bytes_read=len(data),
            read_limit_reached=len(data) >= READ_LIMIT,
            closed_by_server=eof,
            telnet_iac=bool(options),
            telnet_options=options,
        )

    @staticmethod
    def _passive_behaviour(data: bytes, eof: bool) -> Behaviour:
        if looks_like_chargen(data):
            return "chargen"
        if looks_like_time(data, eof):
            return "time"
        if looks_like_daytime(data, eof):
            return "daytime"
        return ""

    @staticmethod
    async def _probe(
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        window: float,
        facts: BannerFacts,
        hint: str,
    ) -> None:
        """Send one short line to a silent port that should be echo or discard: an echo server
        returns exactly that line, a discard server stays silent and keeps the connection."""
        line = f"assay-probe-{secrets.token_hex(4)}\r\n".encode()
        try:
            writer.write(line)
            await asyncio.wait_for(writer.drain(), window)
        except (OSError, TimeoutError):
            return
        facts.probe_sent = True
        reply, eof = await read_window(reader, window)
        facts.probe_reply, _ = printable(reply, 256)
        facts.probe_reply_bytes = len(reply)
        facts.closed_by_server = facts.closed_by_server or eof
        if reply.startswith(line.strip()):  # exactly our bytes back, not an error quoting them
            facts.behaviour = "echo"
        elif not reply and not eof and hint == "discard":
            facts.behaviour = "discard"
