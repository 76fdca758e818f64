"""Redis: who may run commands, and which dangerous commands the server offers.

Assay speaks RESP itself instead of using a client library because the server is untrusted:
the reader below refuses oversized bulk strings, long arrays, deep nesting and long lines
before it allocates anything, and every reply must arrive within the probe timeout.

Only read-only commands are sent (PING, INFO server, CONFIG GET, COMMAND INFO, ACL WHOAMI,
ACL DRYRUN). Whether a dangerous command exists is asked with `COMMAND INFO <name>`, which
answers nil for a renamed or disabled command, and whether this connection may run it with
`ACL DRYRUN`, which only simulates the permission check. Nothing dangerous is ever executed.
Passwords are guessed only with `ctx.active`, from a three-entry list of well-known defaults,
and each attempt is written to `ctx.active_log` (never the password itself).
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from pydantic import Field

from scanner.model import Facts, Target, TargetKind
from scanner.plugins import CollectContext, Collector

REDIS_PORT = 6379

# Commands that let an unauthenticated client destroy data, rewrite the configuration (the
# classic "CONFIG SET dir" file write), load native code, replicate from an attacker's server,
# run Lua, enumerate the keyspace or stop the service.
DANGEROUS_COMMANDS: tuple[str, ...] = (
    "CONFIG",
    "FLUSHALL",
    "FLUSHDB",
    "DEBUG",
    "MODULE",
    "SLAVEOF",
    "REPLICAOF",
    "EVAL",
    "KEYS",
    "SCRIPT",
    "SAVE",
    "SHUTDOWN",
    "MIGRATE",
    "CLIENT",
)

# Arguments with a valid arity for ACL DRYRUN (which checks arity and subcommand permissions).
# DRYRUN never runs them; they only have to be well-formed.
_DRYRUN_ARGS: dict[str, tuple[str, ...]] = {
    "CONFIG": ("SET", "dir", "/nonexistent"),
    "FLUSHALL": (),
    "FLUSHDB": (),
    "DEBUG": ("SLEEP", "0"),
    "MODULE": ("LOAD", "/nonexistent"),
    "SLAVEOF": ("NO", "ONE"),
    "REPLICAOF": ("NO", "ONE"),
    "EVAL": ("return 1", "0"),
    "KEYS": ("*",),
    "SCRIPT": ("FLUSH",),
    "SAVE": (),
    "SHUTDOWN": (),
    "MIGRATE": ("192.0.2.1", "6379", "k", "0", "0"),
    "CLIENT": ("KILL", "192.0.2.1:1"),
}

# Settings worth recording. Never requirepass or masterauth: those are secrets.
CONFIG_PARAMS: tuple[str, ...] = (
    "protected-mode",
    "bind",
    "dir",
    "dbfilename",
    "enable-debug-command",
    "enable-module-command",
    "enable-protected-configs",
)
_GATED_BY_CONFIG = {"DEBUG": "enable-debug-command", "MODULE": "enable-module-command"}

INFO_KEYS: tuple[str, ...] = (
    "redis_version",
    "redis_mode",
    "os",
    "arch_bits",
    "tcp_port",
    "uptime_in_days",
)

# Tried only with --active: the empty password, the package name, and the value shipped
# (commented out) in the sample redis.conf.
DEFAULT_PASSWORDS: tuple[str, ...] = ("", "redis", "foobared")

MAX_TEXT = 200  # characters of any server-supplied text kept in facts

CommandStatus = Literal["available", "absent", "denied", "disabled_by_config", "unknown"]
Access = Literal["open", "auth_required", "protected_mode", "default_password", "unknown"]


class RedisProbeError(Exception):
    """The server could not be assessed: unreachable, silent, or not speaking RESP."""


class RespProtocolError(RedisProbeError):
    """A reply broke RESP framing or one of the reader's limits."""


class _ReplyTimeout(Exception):
    """One reply did not arrive in time (turned into RedisProbeError with context)."""


@dataclass(frozen=True)
class ErrorReply:
    """A RESP error (`-ERR ...`): a normal answer from the server, not a failure of ours."""

    message: str

    @property
    def code(self) -> str:
        return self.message.split(" ", 1)[0].upper()


RespValue = str | bytes | int | ErrorReply | list["RespValue"] | None


@dataclass(frozen=True)
class RespLimits:
    """What one reply may cost. COMMAND INFO for all dangerous commands is about 10 KiB."""

    max_line: int = 64 * 1024
    max_bulk: int = 512 * 1024
    max_array: int = 4096
    max_depth: int = 12
    max_elements: int = 50_000


class _Budget:
    def __init__(self, limits: RespLimits) -> None:
        self.elements = 0
        self.limits = limits

    def spend(self, n: int) -> None:
        self.elements += n
        if self.elements > self.limits.max_elements:
            raise RespProtocolError(
                f"reply has more than {self.limits.max_elements} elements in total"
            )


def encode_command(args: Sequence[str | bytes]) -> bytes:
    """A RESP array of bulk strings, the only request form Redis requires."""
    parts = [b"*%d\r\n" % len(args)]
    for arg in args:
        data = arg.encode() if isinstance(arg, str) else arg
        parts.append(b"$%d\r\n%s\r\n" % (len(data), data))
    return b"".join(parts)


def _text(data: bytes) -> str:
    return data.decode("utf-8", "replace")


def _short(text: str) -> str:
    clean = "".join(c if c.isprintable() else "?" for c in text)
    return clean if len(clean) <= MAX_TEXT else clean[: MAX_TEXT - 3] + "..."


async def _read_line(reader: asyncio.StreamReader, limits: RespLimits) -> bytes:
    try:
        line = await reader.readuntil(b"\r\n")
    except asyncio.LimitOverrunError:
        raise RespProtocolError(
            f"reply line longer than {limits.max_line} bytes without CRLF"
        ) from None
    except asyncio.IncompleteReadError as exc:
        if exc.partial:
            raise RespProtocolError(
                f"connection closed in the middle of a reply line ({exc.partial[:32]!r})"
            ) from None
        raise RespProtocolError("connection closed before a reply") from None
    return line[:-2]


def _length(header: bytes, what: str) -> int:
    try:
        return int(header[1:])
    except ValueError:
        raise RespProtocolError(f"invalid {what} length {header[:32]!r}") from None


async def read_reply(
    reader: asyncio.StreamReader,
    limits: RespLimits = RespLimits(),
    depth: int = 0,
    budget: _Budget | None = None,
) -> RespValue:
    """Read one RESP2 value, refusing anything above `limits` before allocating it."""
    budget = budget or _Budget(limits)
    line = await _read_line(reader, limits)
    kind = line[:1]
    if kind == b"+":
        return _text(line[1:])
    if kind == b"-":
        return ErrorReply(_text(line[1:]))
    if kind == b":":
        try:
            return int(line[1:])
        except ValueError:
            raise RespProtocolError(f"invalid integer reply {line[:32]!r}") from None
    if kind == b"$":
        n = _length(line, "bulk string")
        if n == -1:
            return None
        if n < 0 or n > limits.max_bulk:
            raise RespProtocolError(
                f"bulk string of {n} bytes refused (limit {limits.max_bulk} bytes)"
            )
        try:
            data = await reader.readexactly(n + 2)
        except asyncio.IncompleteReadError:
            raise RespProtocolError("connection closed inside a bulk string") from None
        if data[-2:] != b"\r\n":
            raise RespProtocolError("bulk string is not terminated by CRLF")
        return data[:-2]
    if kind == b"*":
        n = _length(line, "array")
        if n == -1:
            return None
        if n < 0 or n > limits.max_array:
            raise RespProtocolError(f"array of {n} elements refused (limit {limits.max_array})")
        if depth + 1 > limits.max_depth:
            raise RespProtocolError(f"reply nested deeper than {limits.max_depth} arrays")
        budget.spend(n)
        return [await read_reply(reader, limits, depth + 1, budget) for _ in range(n)]
    raise RespProtocolError(f"not a RESP reply (starts with {line[:32]!r})")


class RespConnection:
    """One TCP connection speaking RESP2, with a deadline on every reply."""

    def __init__(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        where: str,
        timeout: float,
        limits: RespLimits,
    ) -> None:
        self.reader, self.writer, self.where = reader, writer, where
        self.timeout, self.limits = timeout, limits

    @classmethod
    async def open(
        cls, address: str, port: int, timeout: float, limits: RespLimits = RespLimits()
    ) -> RespConnection:
        where = f"{address}:{port}"
        try:
            reader, writer = await asyncio.wait_for(
                asyncio.open_connection(address, port, limit=limits.max_line), timeout
            )
        except TimeoutError:
            raise RedisProbeError(
                f"redis {where}: connection not established within {timeout:g}s"
            ) from None
        except OSError as exc:
            raise RedisProbeError(f"redis {where}: cannot connect: {exc.strerror or exc}") from None
        return cls(reader, writer, where, timeout, limits)

    @property
    def local_address(self) -> str:
        sock = self.writer.get_extra_info("sockname")
        return str(sock[0]) if sock else ""

    async def pipeline(self, commands: Sequence[Sequence[str | bytes]]) -> list[RespValue]:
        """Send several commands at once and read their replies in order."""
        try:
            self.writer.write(b"".join(encode_command(c) for c in commands))
            await asyncio.wait_for(self.writer.drain(), self.timeout)
        except TimeoutError:
            raise _ReplyTimeout() from None
        except OSError as exc:
            raise RedisProbeError(f"redis {self.where}: send failed: {exc}") from None
        replies: list[RespValue] = []
        for _ in commands:
            try:
                async with asyncio.timeout(self.timeout):
                    replies.append(await read_reply(self.reader, self.limits))
            except TimeoutError:
                raise _ReplyTimeout() from None
            except OSError as exc:
                raise RedisProbeError(f"redis {self.where}: read failed: {exc}") from None
        return replies

    async def command(self, *args: str | bytes) -> RespValue:
        return (await self.pipeline([args]))[0]

    async def close(self) -> None:
        self.writer.close()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.writer.wait_closed(), self.timeout)


class RedisFacts(Facts):
    address: str
    port: int
    access: Access
    auth_required: bool  # commands are refused before authentication (NOAUTH or DENIED)
    ping_reply: str
    version: str = ""
    mode: str = ""
    info: dict[str, str] = Field(default_factory=dict)  # a few INFO server fields
    config: dict[str, str] = Field(default_factory=dict)  # CONFIG GET results
    config_error: str = ""  # why CONFIG GET gave nothing (renamed, denied ...)
    protected_mode: bool | None = None
    acl_user: str = ""  # ACL WHOAMI, when the server has ACLs
    acl_dryrun: bool = False  # permissions were verified with ACL DRYRUN
    commands: dict[str, CommandStatus] = Field(default_factory=dict)
    available_dangerous: list[str] = Field(default_factory=list)
    password_guesses: int = 0  # AUTH attempts made (active mode only)
    default_password_accepted: bool = False
    errors: list[str] = Field(default_factory=list)


def _reply_text(value: RespValue) -> str:
    if isinstance(value, ErrorReply):
        return "-" + value.message
    if isinstance(value, bytes):
        return _text(value)
    return str(value)


def _classify_ping(reply: RespValue) -> Access:
    if isinstance(reply, str) and reply.upper() == "PONG":
        return "open"
    if isinstance(reply, ErrorReply):
        if reply.code == "NOAUTH":
            return "auth_required"
        if reply.code == "DENIED":
            return "protected_mode"
        if reply.code == "NOPERM":
            return "open"  # authenticated as the default user, only PING is forbidden
        if "operation not permitted" in reply.message.lower():
            return "auth_required"  # Redis before 2.8 phrased NOAUTH like this
    return "unknown"


class RedisCollector(Collector):
    """Connects once, asks PING, and when no authentication is needed describes the server."""

    id = "service.redis"
    target_kind = TargetKind.SERVICE
    facts_model = RedisFacts
    limits = RespLimits()

    def applies(self, target: Target) -> bool:
        if target.kind is not TargetKind.SERVICE or target.protocol != "tcp":
            return False
        info = target.service
        if info and info.tunnel == "ssl":
            return False  # TLS in front: a cleartext RESP probe would only see garbage
        name = info.name if info else ""
        return name == "redis" if name else target.port == REDIS_PORT

    async def collect(self, target: Target, ctx: CollectContext) -> RedisFacts:
        address, port = target.address or "", target.port or REDIS_PORT
        ctx.scope.ensure_address(address)
        conn = await RespConnection.open(address, port, ctx.probe_timeout, self.limits)
        try:
            return await self._probe(conn, address, port, ctx)
        finally:
            await conn.close()

    async def _probe(
        self, conn: RespConnection, address: str, port: int, ctx: CollectContext
    ) -> RedisFacts:
        where = f"{address}:{port}"
        try:
            reply = await conn.command("PING")
        except _ReplyTimeout:
            raise RedisProbeError(
                f"redis {where}: no reply to PING within {ctx.probe_timeout:g}s "
                "(the connection was accepted but nothing came back)"
            ) from None
        except RespProtocolError as exc:
            raise RespProtocolError(f"redis {where}: reply to PING: {exc}") from None
        access = _classify_ping(reply)
        facts = RedisFacts(
            address=address,
            port=port,
            access=access,
            auth_required=access in ("auth_required", "protected_mode"),
            ping_reply=_short(_reply_text(reply)),
        )
        if access == "unknown":
            facts.errors.append(f"unexpected reply to PING: {facts.ping_reply}")
            return facts
        try:
            if access == "auth_required" and ctx.active:
                await self._guess(conn, facts, ctx)
            if facts.access in ("open", "default_password"):
                await self._describe(conn, facts)
        except _ReplyTimeout:
            facts.errors.append(f"no reply within {ctx.probe_timeout:g}s; probing stopped")
        except RespProtocolError as exc:
            facts.errors.append(f"protocol error, probing stopped: {exc}")
        facts.available_dangerous = [n for n, s in facts.commands.items() if s == "available"]
        return facts

    async def _guess(self, conn: RespConnection, facts: RedisFacts, ctx: CollectContext) -> None:
        total = len(DEFAULT_PASSWORDS)
        for i, password in enumerate(DEFAULT_PASSWORDS, 1):
            label = "the empty password" if not password else f"well-known default #{i}"
            ctx.active_log.append(
                f"redis {conn.where}: AUTH attempt {i}/{total} with {label} (read-only)"
            )
            facts.password_guesses += 1
            reply = await conn.command("AUTH", password)
            if isinstance(reply, str) and reply.upper() == "OK":
                facts.access = "default_password"
                facts.default_password_accepted = True
                return

    async def _describe(self, conn: RespConnection, facts: RedisFacts) -> None:
        info = await conn.command("INFO", "server")
        if isinstance(info, bytes):
            fields = dict(line.split(":", 1) for line in _text(info).splitlines() if ":" in line)
            facts.info = {k: _short(fields[k]) for k in INFO_KEYS if k in fields}
            facts.version = facts.info.get("redis_version", "")
            facts.mode = facts.info.get("redis_mode", "")
        else:
            facts.errors.append(f"INFO server: {_short(_reply_text(info))}")

        config_status = await self._config(conn, facts)
        whoami = await conn.command("ACL", "WHOAMI")
        if isinstance(whoami, bytes):
            facts.acl_user = _short(_text(whoami))
        acl = isinstance(whoami, bytes)

        existing = await self._existing(conn, facts)
        if config_status is not None and facts.commands.get("CONFIG") != "absent":
            facts.commands["CONFIG"] = config_status
        if acl and existing:
            keep = {"CONFIG"} if config_status is not None else set()
            await self._dryrun(conn, facts, existing, keep)
        local = _is_loopback(conn.local_address)
        for name, param in _GATED_BY_CONFIG.items():
            setting = facts.config.get(param, "").lower()
            blocked = setting == "no" or (setting == "local" and not local)
            if facts.commands.get(name) == "available" and blocked:
                facts.commands[name] = "disabled_by_config"

    async def _config(self, conn: RespConnection, facts: RedisFacts) -> CommandStatus | None:
        """CONFIG GET one parameter at a time (older servers take a single pattern)."""
        replies = await conn.pipeline([("CONFIG", "GET", p) for p in CONFIG_PARAMS])
        status: CommandStatus | None = None
        for param, reply in zip(CONFIG_PARAMS, replies, strict=True):
            if isinstance(reply, ErrorReply):
                facts.config_error = _short(reply.message)
                status = _status_from_error(reply)
                break  # every parameter would give the same refusal
            if isinstance(reply, list):
                status = "available"  # an empty list only means the parameter is unknown
                if len(reply) >= 2 and isinstance(reply[1], bytes):
                    facts.config[param] = _short(_text(reply[1]))
        pm = facts.config.get("protected-mode", "").lower()
        facts.protected_mode = {"yes": True, "no": False}.get(pm)
        return status

    async def _existing(self, conn: RespConnection, facts: RedisFacts) -> list[str]:
        reply = await conn.command("COMMAND", "INFO", *DANGEROUS_COMMANDS)
        if not isinstance(reply, list) or len(reply) != len(DANGEROUS_COMMANDS):
            facts.errors.append(f"COMMAND INFO: {_short(_reply_text(reply))}")
            facts.commands = dict.fromkeys(DANGEROUS_COMMANDS, "unknown")
            return []
        facts.commands = {
            name: "absent" if entry is None else "available"
            for name, entry in zip(DANGEROUS_COMMANDS, reply, strict=True)
        }
        return [n for n, s in facts.commands.items() if s == "available"]

    async def _dryrun(
        self, conn: RespConnection, facts: RedisFacts, names: list[str], keep: set[str]
    ) -> None:
        """Ask the permission check alone; `keep` names statuses already observed directly."""
        user = facts.acl_user or "default"
        replies = await conn.pipeline(
            [("ACL", "DRYRUN", user, name, *_DRYRUN_ARGS[name]) for name in names]
        )
        first = replies[0]
        if isinstance(first, ErrorReply) and first.code == "ERR" and "subcommand" in first.message:
            return  # Redis 6: no DRYRUN; existence is the best evidence there is
        if isinstance(first, ErrorReply) and first.code == "NOPERM":
            # The user may not use ACL at all, so it is restricted; which of the dangerous
            # commands it may run cannot be learnt without running them.
            facts.errors.append("ACL DRYRUN refused (NOPERM): permissions not verifiable")
            for name in names:
                if name not in keep:
                    facts.commands[name] = "unknown"
            return
        facts.acl_dryrun = True
        for name, reply in zip(names, replies, strict=True):
            if isinstance(reply, str) and reply.upper() == "OK":
                facts.commands[name] = "available"
            elif isinstance(reply, bytes) and b"no permission" in reply.lower():
                facts.commands[name] = "denied"
            else:
                facts.commands[name] = "unknown"
                facts.errors.append(f"ACL DRYRUN {name}: {_short(_reply_text(reply))}")


def _status_from_error(reply: ErrorReply) -> CommandStatus:
    if reply.code == "NOPERM":
        return "denied"
    if "unknown command" in reply.message.lower():
        return "absent"
    return "unknown"


def _is_loopback(address: str) -> bool:
    try:
        return ipaddress.ip_address(address).is_loopback
    except ValueError:
        return False
