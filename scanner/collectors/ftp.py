"""FTP facts from Assay's own small FTP client: greeting, FEAT, TLS, logins, anonymous access.

Why not ftplib: its reads are unbounded in size (a server can send a multi-megabyte reply
line) and it is blocking. FTP's control channel is line based and simple, so Assay reads it
itself with a line limit, a line-count limit and a deadline on every reply.

Connections, in order, each short:
1. greeting, FEAT, `USER probe` (does the server ask for a password before any TLS?), QUIT;
2. only when FEAT did not list it: `AUTH TLS`, then close without negotiating;
3. `USER anonymous` / `PASS assay@example.invalid`; when that is accepted: PWD, a bounded LIST
   and, only with --active, a write test (STOR of a uniquely named file, then DELE).

No password but the conventional anonymous e-mail address is ever sent. A server that does not
speak FTP on connection 1 raises `FtpProtocolError` (the runner makes the checks `error`);
later failures are recorded in the facts, where the checks turn them into `error` too.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import secrets
from typing import Literal

from pydantic import BaseModel, Field, PrivateAttr

from scanner.collectors.banner import UNIDENTIFIED, close_quietly, escape_text, service_name
from scanner.model import Facts, Target, TargetKind
from scanner.plugins import CollectContext, Collector

MAX_LINE = 8192  # bytes of one control-channel line
MAX_REPLY_LINES = 200  # lines of one multi-line reply (FEAT of a big server is ~40)
MAX_FEATURES = 64
MAX_LIST_ENTRIES = 50
MAX_LIST_BYTES = 64 * 1024
REPLY_TEXT = 1024  # characters of reply text kept in the facts
ANONYMOUS_PASSWORD = "assay@example.invalid"  # conventional e-mail "password", not a secret
PROBE_USER = "probe"
WRITE_DIR_NAMES = ("upload", "uploads", "incoming", "pub", "public", "tmp")
WRITE_DIR_GUESSES = ("upload", "incoming", "pub")  # tried blind when LIST gave nothing
MAX_WRITE_ATTEMPTS = 4  # root plus at most three sub-directories
_SAFE_NAME = re.compile(r"^[A-Za-z0-9_.@+-]{1,64}$")  # never send a hostile name back
_REPLY_START = re.compile(r"^(\d{3})(?:([ -])(.*))?$", re.DOTALL)  # "220 x", "220-x", "220"
_EPSV = re.compile(r"\((.)\1\1(\d{1,5})\1\)")
_PASV = re.compile(r"(\d{1,3}),(\d{1,3}),(\d{1,3}),(\d{1,3}),(\d{1,3}),(\d{1,3})")
_PWD = re.compile(r'"((?:[^"]|"")*)"')
_UNIX_LIST = re.compile(
    r"^(?P<type>[bcdlps-])(?P<perm>[rwxsStT-]{9})\S*\s+\d+\s+\S+\s+\S+\s+\d+\s+"
    r"\w{3}\s+\d{1,2}\s+[\d:]{4,5}\s+(?P<name>.+)$"
)
_DOS_LIST = re.compile(
    r"^\d{2}-\d{2}-\d{2,4}\s+\d{2}:\d{2}[AP]M\s+(?P<size><DIR>|\d+)\s+(?P<name>.+)$"
)


class FtpProtocolError(Exception):
    """The server did not behave like an FTP server within Assay's bounds."""


class FtpDataError(Exception):
    """A data-channel step failed; the control channel is still in a known state."""


class FtpReply(BaseModel):
    code: int
    text: str  # all lines joined by "\n", control characters escaped, truncated
    # every line as received (bounded by MAX_REPLY_LINES x MAX_LINE), not stored
    _lines: list[str] = PrivateAttr(default_factory=list)

    @property
    def lines(self) -> list[str]:
        return self._lines

    def __str__(self) -> str:
        return f"{self.code} {self.text}"


EntryKind = Literal["dir", "file", "link", "other"]
_UNIX_KINDS: dict[str, EntryKind] = {"d": "dir", "-": "file", "l": "link"}


class ListingEntry(BaseModel):
    name: str
    kind: EntryKind
    mode: str = ""  # "drwxrwxrwx" for Unix-style LIST lines
    world_writable: bool = False


class WriteAttempt(BaseModel):
    path: str
    stor_reply: FtpReply | None = None  # the final reply of the upload, or its refusal
    stored: bool = False
    dele_reply: FtpReply | None = None
    deleted: bool = False
    error: str = ""


class WriteTest(BaseModel):
    status: Literal["not_tested", "stored", "refused", "error"]
    reason: str = ""
    attempts: list[WriteAttempt] = []
    hints: list[str] = []  # without --active: what suggests that uploads might work


class AnonymousSession(BaseModel):
    allowed: bool | None  # None: the session broke before the server decided
    user_reply: FtpReply | None = None
    pass_reply: FtpReply | None = None
    pwd: str = ""
    listing_command: str = ""
    listing: list[ListingEntry] = []
    listing_truncated: bool = False
    listing_error: str = ""
    write: WriteTest = Field(default_factory=lambda: WriteTest(status="not_tested"))
    error: str = ""  # control-channel failure inside this session


class FtpFacts(Facts):
    address: str
    port: int
    greeting: FtpReply
    feat_reply_code: int
    features: list[str]
    auth_tls_offered: bool  # FEAT lists AUTH TLS, or `AUTH TLS` was answered 234
    auth_tls_reply: FtpReply | None = None  # only asked when FEAT did not list it
    auth_tls_error: str = ""
    user_probe_reply: FtpReply  # reply to `USER probe` on the cleartext channel
    cleartext_user_accepted: bool  # 331/332/230: the server wants a password without TLS
    anonymous: AnonymousSession


def _reply_text(lines: list[str]) -> str:
    """Lines escaped one by one and joined by a real newline, so FEAT lines stay separable."""
    return "\n".join(escape_text(line, REPLY_TEXT)[0] for line in lines)[:REPLY_TEXT]


class FtpSession:
    """One control connection with bounded, deadline-guarded replies."""

    def __init__(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        address: str,
        label: str,
        timeout: float,
    ) -> None:
        self.reader, self.writer = reader, writer
        self.address, self.label, self.timeout = address, label, timeout

    @classmethod
    async def open(cls, address: str, port: int, timeout: float) -> FtpSession:
        label = f"{address}:{port}"
        try:
            reader, writer = await asyncio.wait_for(
                asyncio.open_connection(address, port, limit=MAX_LINE), timeout
            )
        except ConnectionRefusedError:
            raise FtpProtocolError(f"{label}: connection refused") from None
        except TimeoutError:
            raise FtpProtocolError(f"{label}: connect timed out after {timeout:g}s") from None
        except OSError as exc:
            raise FtpProtocolError(f"{label}: cannot connect: {exc}") from None
        return cls(reader, writer, address, label, timeout)

    async def greeting(self) -> FtpReply:
        reply = await self.read_reply("greeting")
        for _ in range(3):  # "120 ready in n minutes" may precede the 220
            if reply.code // 100 != 1:
                break
            reply = await self.read_reply("greeting")
        if reply.code // 100 != 2:
            raise FtpProtocolError(f"{self.label}: server refused the session: {reply}")
        return reply

    async def _line(self, what: str) -> str:
        try:
            raw = await self.reader.readuntil(b"\n")
        except asyncio.LimitOverrunError:
            raise FtpProtocolError(
                f"{self.label}: {what}: reply line longer than {MAX_LINE} bytes"
            ) from None
        except asyncio.IncompleteReadError as exc:
            got = escape_text(exc.partial.decode("latin-1"), 80)[0]
            raise FtpProtocolError(
                f"{self.label}: connection closed before {what} was complete (got {got!r})"
            ) from None
        except (ConnectionResetError, BrokenPipeError) as exc:
            raise FtpProtocolError(f"{self.label}: {what}: {exc}") from None
        return raw.decode("utf-8", "replace").rstrip("\r\n")

    async def read_reply(self, what: str) -> FtpReply:
        try:
            async with asyncio.timeout(self.timeout):
                first = await self._line(what)
                m = _REPLY_START.match(first)
                if not m:
                    got = escape_text(first, 80)[0]
                    raise FtpProtocolError(f"{self.label}: {what} is not an FTP reply: {got!r}")
                code, sep, rest = m.group(1), m.group(2) or " ", m.group(3) or ""
                lines = [rest]
                while sep == "-":
                    if len(lines) >= MAX_REPLY_LINES:
                        raise FtpProtocolError(
                            f"{self.label}: {what} has more than {MAX_REPLY_LINES} lines"
                        )
                    line = await self._line(what)
                    if line == code or line.startswith(f"{code} "):
                        lines.append(line[4:])
                        break
                    lines.append(line)
        except TimeoutError:
            raise FtpProtocolError(
                f"{self.label}: {what} not received within {self.timeout:g}s"
            ) from None
        reply = FtpReply(code=int(code), text=_reply_text(lines))
        reply._lines = lines
        return reply

    async def command(self, line: str) -> FtpReply:
        verb = line.split(" ", 1)[0]
        try:
            self.writer.write(line.encode() + b"\r\n")
            await asyncio.wait_for(self.writer.drain(), self.timeout)
        except (OSError, TimeoutError) as exc:
            raise FtpProtocolError(f"{self.label}: cannot send {verb}: {exc!r}") from None
        return await self.read_reply(f"reply to {verb}")

    async def close(self, say_quit: bool = True) -> None:
        if say_quit:
            with contextlib.suppress(FtpProtocolError):
                await self.command("QUIT")
        await close_quietly(self.writer)

    # -- data channel --------------------------------------------------------------------
    async def _passive(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        """Open a passive data connection; always to the control address, never to the one
        the server names (a hostile server could point Assay at a third host)."""
        reply = await self.command("EPSV")
        m = _EPSV.search(reply.text) if reply.code == 229 else None
        port = int(m.group(2)) if m else 0
        if not m:
            reply = await self.command("PASV")
            n = _PASV.search(reply.text) if reply.code == 227 else None
            if not n:
                raise FtpDataError(f"passive mode refused: {reply}")
            port = int(n.group(5)) * 256 + int(n.group(6))
        if not 0 < port < 65536:
            raise FtpDataError(f"passive mode names port {port}")
        try:
            return await asyncio.wait_for(asyncio.open_connection(self.address, port), self.timeout)
        except (OSError, TimeoutError) as exc:
            raise FtpDataError(f"data connection to port {port} failed: {exc!r}") from None

    async def download(self, command: str, limit: int) -> tuple[bytes, bool, FtpReply]:
        """Run a command that sends data to us; (data, truncated, final reply)."""
        reader, writer = await self._passive()
        data = bytearray()
        truncated = False
        try:
            prelim = await self.command(command)
            if prelim.code not in (125, 150):
                raise FtpDataError(f"{command} refused: {prelim}")
            loop = asyncio.get_running_loop()
            deadline = loop.time() + self.timeout
            while True:
                if len(data) >= limit:
                    truncated = True
                    break
                remaining = deadline - loop.time()
                if remaining <= 0:
                    truncated = True
                    break
                try:
                    chunk = await asyncio.wait_for(reader.read(limit - len(data)), remaining)
                except TimeoutError:
                    truncated = True
                    break
                if not chunk:
                    break
                data += chunk
        finally:
            await close_quietly(writer)
        final = await self.read_reply(f"end of {command.split(' ', 1)[0]}")
        return bytes(data), truncated, final

    async def upload(self, path: str, payload: bytes) -> FtpReply:
        """STOR `payload` at `path`; the reply that says whether it was stored."""
        _reader, writer = await self._passive()
        try:
            prelim = await self.command(f"STOR {path}")
            if prelim.code not in (125, 150):
                return prelim
            writer.write(payload)
            await asyncio.wait_for(writer.drain(), self.timeout)
        except (OSError, TimeoutError) as exc:
            raise FtpDataError(f"upload of {path} failed: {exc!r}") from None
        finally:
            await close_quietly(writer)
        return await self.read_reply("end of STOR")


def parse_features(reply: FtpReply) -> list[str]:
    if reply.code != 211:
        return []
    lines = reply.lines[1:-1]  # between "211-Features:" and "211 End"
    return [escape_text(ln.strip(), 100)[0] for ln in lines if ln.strip()][:MAX_FEATURES]


def offers_auth_tls(features: list[str]) -> bool:
    return any(f.upper().startswith("AUTH") and "TLS" in f.upper() for f in features)


def parse_listing(data: bytes) -> list[ListingEntry]:
    entries: list[ListingEntry] = []
    for raw in data.decode("utf-8", "replace").splitlines():
        line = raw.strip()
        if not line or line.lower().startswith("total "):
            continue
        if m := _UNIX_LIST.match(line):
            kind = _UNIX_KINDS.get(m["type"], "other")
            name = m["name"].split(" -> ", 1)[0] if kind == "link" else m["name"]
            perm = m["perm"]
            entry = ListingEntry(
                name=escape_text(name, 200)[0],
                kind=kind,
                mode=m["type"] + perm,
                world_writable=perm[7] == "w" and kind != "link",  # links are always 777
            )
        elif m := _DOS_LIST.match(line):
            kind = "dir" if m["size"] == "<DIR>" else "file"
            entry = ListingEntry(name=escape_text(m["name"], 200)[0], kind=kind)
        else:
            entry = ListingEntry(name=escape_text(line, 200)[0], kind="other")
        if entry.name in (".", ".."):
            continue
        entries.append(entry)
        if len(entries) >= MAX_LIST_ENTRIES:
            break
    return entries


def write_hints(entries: list[ListingEntry]) -> list[str]:
    hints = []
    for e in entries:
        if e.kind != "dir":
            continue
        if e.world_writable:
            hints.append(f"directory {e.name!r} is world-writable ({e.mode})")
        elif e.name.lower() in WRITE_DIR_NAMES:
            hints.append(f"directory {e.name!r} has a name often used for uploads")
    return hints[:10]


def write_candidates(entries: list[ListingEntry], listed: bool) -> list[str]:
    """Directories worth a write attempt after the root refused: the listed writable-looking
    ones, or the usual names when no listing was available."""
    if listed:
        names = [
            e.name
            for e in entries
            if e.kind == "dir" and (e.world_writable or e.name.lower() in WRITE_DIR_NAMES)
        ]
    else:
        names = list(WRITE_DIR_GUESSES)
    return [n for n in names if _SAFE_NAME.match(n)][: MAX_WRITE_ATTEMPTS - 1]


class FtpCollector(Collector):
    """Speaks FTP's control channel itself; writes only with --active, and cleans up."""

    id = "service.ftp"
    target_kind = TargetKind.SERVICE
    facts_model = FtpFacts
    timeout = 60.0

    def applies(self, target: Target) -> bool:
        if target.kind is not TargetKind.SERVICE or target.protocol != "tcp":
            return False
        if target.service and target.service.tunnel == "ssl":
            return False  # implicit FTPS: nothing travels in cleartext
        name = service_name(target)
        return name == "ftp" or (name in UNIDENTIFIED and target.port == 21)

    async def collect(self, target: Target, ctx: CollectContext) -> FtpFacts:
        assert target.address is not None and target.port is not None
        ctx.scope.ensure_address(target.address)
        addr, port, t = target.address, target.port, ctx.probe_timeout

        s = await FtpSession.open(addr, port, t)
        finished = False
        try:
            greeting = await s.greeting()
            feat = await s.command("FEAT")
            user_probe = await s.command(f"USER {PROBE_USER}")
            finished = True
        finally:
            await s.close(say_quit=finished)  # a broken server gets no further wait
        features = parse_features(feat)
        offered = offers_auth_tls(features)
        auth_reply, auth_error = None, ""
        if not offered:
            auth_reply, auth_error = await self._ask_auth_tls(addr, port, t)
            offered = auth_reply is not None and auth_reply.code == 234
        anonymous = await self._anonymous(addr, port, ctx)
        return FtpFacts(
            address=addr,
            port=port,
            greeting=greeting,
            feat_reply_code=feat.code,
            features=features,
            auth_tls_offered=offered,
            auth_tls_reply=auth_reply,
            auth_tls_error=auth_error,
            user_probe_reply=user_probe,
            cleartext_user_accepted=user_probe.code in (230, 331, 332),
            anonymous=anonymous,
        )

    @staticmethod
    async def _ask_auth_tls(addr: str, port: int, t: float) -> tuple[FtpReply | None, str]:
        """Ask for AUTH TLS on a fresh connection; on 234 hang up instead of negotiating."""
        try:
            s = await FtpSession.open(addr, port, t)
        except FtpProtocolError as exc:
            return None, str(exc)
        reply = None
        try:
            await s.greeting()
            reply = await s.command("AUTH TLS")
        except FtpProtocolError as exc:
            return None, str(exc)
        finally:
            await s.close(say_quit=reply is not None and reply.code != 234)
        return reply, ""

    async def _anonymous(self, addr: str, port: int, ctx: CollectContext) -> AnonymousSession:
        result = AnonymousSession(allowed=None)
        try:
            s = await FtpSession.open(addr, port, ctx.probe_timeout)
        except FtpProtocolError as exc:
            result.error = str(exc)
            return result
        try:
            await s.greeting()
            result.user_reply = await s.command("USER anonymous")
            if result.user_reply.code == 331:
                result.pass_reply = await s.command(f"PASS {ANONYMOUS_PASSWORD}")
                result.allowed = result.pass_reply.code == 230
            else:
                result.allowed = result.user_reply.code == 230
            if result.allowed:
                await self._explore(s, result, ctx)
        except FtpProtocolError as exc:
            result.error = str(exc)
            write = result.write
            if result.allowed and ctx.active and write.status in ("not_tested", "error"):
                stored = any(a.stored for a in write.attempts)
                write.status = "stored" if stored else "error"
                write.reason = f"session broke during the anonymous session: {exc}"
        finally:
            await s.close(say_quit=not result.error)
        return result

    async def _explore(self, s: FtpSession, result: AnonymousSession, ctx: CollectContext) -> None:
        pwd = await s.command("PWD")
        if pwd.code == 257 and (m := _PWD.search(pwd.text)):
            result.pwd = m.group(1).replace('""', '"')
        result.listing_command = "LIST"
        listed = False
        try:
            data, truncated, final = await s.download("LIST", MAX_LIST_BYTES)
            result.listing = parse_listing(data)
            result.listing_truncated = truncated or len(result.listing) >= MAX_LIST_ENTRIES
            listed = final.code // 100 == 2 or bool(result.listing)
            if not listed:
                result.listing_error = f"LIST ended with {final}"
        except FtpDataError as exc:
            result.listing_error = str(exc)
        hints = write_hints(result.listing)
        if not ctx.active:
            result.write = WriteTest(
                status="not_tested", reason="run with --active to test", hints=hints
            )
            return
        result.write = WriteTest(status="error", reason="write test did not finish", hints=hints)
        await self._write_test(s, write_candidates(result.listing, listed), ctx, result.write)

    @staticmethod
    async def _write_test(
        s: FtpSession, subdirs: list[str], ctx: CollectContext, test: WriteTest
    ) -> None:
        """STOR one small uniquely named file (root first, then sub-directories), then DELE.

        `test` is filled in place, so a session that breaks half-way still shows what was
        written (and the active log always says so)."""
        name = f"assay-write-probe-{secrets.token_hex(6)}.txt"
        payload = b"Assay anonymous-write probe; safe to delete.\n"
        attempts = test.attempts
        await s.command("TYPE I")
        for directory in ["", *subdirs]:
            path = f"{directory}/{name}" if directory else name
            attempt = WriteAttempt(path=path)
            attempts.append(attempt)
            try:
                attempt.stor_reply = await s.upload(path, payload)
                attempt.stored = attempt.stor_reply.code in (226, 250)
                if attempt.stored:
                    attempt.dele_reply = await s.command(f"DELE {path}")
                    attempt.deleted = attempt.dele_reply.code == 250
            except FtpDataError as exc:
                attempt.error = str(exc)
            finally:
                ctx.active_log.append(_describe(attempt, len(payload)))
            if attempt.stored:
                test.status, test.reason = "stored", ""
                return
        if all(a.error for a in attempts):
            test.status, test.reason = "error", "no upload could be attempted"
        else:
            test.status, test.reason = "refused", ""


def _describe(a: WriteAttempt, size: int) -> str:
    line = f"ftp anonymous write probe: STOR {a.path} ({size} bytes) -> "
    if a.error:
        return line + f"error: {a.error}"
    line += str(a.stor_reply.code) if a.stor_reply else "no reply"
    if not a.stored:
        return line + " (refused)"
    if a.deleted:
        return line + " stored; DELE -> deleted"
    code = a.dele_reply.code if a.dele_reply else "no reply"
    return line + f" stored; DELE -> {code}: FILE LEFT ON THE SERVER, remove {a.path} by hand"
