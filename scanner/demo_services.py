"""The demo unit behind `assay demo`: weak and good services on two loopback addresses.

Why it exists: a newcomer should watch Assay find real problems without pointing it at anyone's
network. `DemoUnit` starts, on two free 127.x.y.z addresses, small services that speak their real
protocols closely enough for `nmap -sV` and for Assay's own collectors:

* the *weak* host runs what Assay must report: anonymous writable FTP that names its version,
  a Redis-compatible server without authentication, a Telnet login, the echo/daytime/chargen
  "small services" and a login form over cleartext HTTP;
* the *good* host runs the hardened counterparts: FTP without anonymous access behind a neutral
  banner (TLS required where pyftpdlib can offer it), Redis that demands authentication,
  HTTP that only redirects to HTTPS with HSTS, and the HTTPS site itself.

Both hosts also run an HTTPS site (`scanner.demo_tls`: legacy protocols, weak suites and a bad
certificate on the weak host; TLS 1.2/1.3 AEAD and a certificate from the demo's own CA on the
good one) and an SSH server (`scanner.demo_ssh`, paramiko: legacy algorithms and password login
on the weak host, a hardened configuration on the good one).

Safety, because scanners and curious clients will poke at these: nothing binds outside loopback,
no command is ever executed (the Redis look-alike only describes its commands), no submitted
password is stored or logged, every read has a timeout, every request a size limit, every
service a connection limit, and `__exit__` stops everything within a bounded time.

Threads: the asyncio services share one event loop in one thread; each pyftpdlib server runs its
own IOLoop in its own thread. Listening sockets are bound in the caller's thread before any
thread starts, so a busy port is noticed (and skipped) up front and no port can be stolen
between "checked free" and "listening".
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import fnmatch
import io
import ipaddress
import logging
import os
import platform
import random
import secrets
import shutil
import socket
import ssl
import tempfile
import threading
import time
import warnings
import zipfile
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from email.utils import formatdate
from io import StringIO
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from pyftpdlib.authorizers import DummyAuthorizer
from pyftpdlib.handlers import FTPHandler
from pyftpdlib.ioloop import IOLoop
from pyftpdlib.servers import FTPServer
from ruamel.yaml import YAML

from scanner.demo_ssh import DemoSshServer
from scanner.demo_tls import DemoTls

try:  # TLS for FTP needs pyOpenSSL, which Assay does not depend on.
    from pyftpdlib.handlers import TLS_FTPHandler  # type: ignore[attr-defined]
except ImportError:  # pragma: no cover - depends on the environment
    TLS_FTPHandler = None

LOG = logging.getLogger(__name__)

WEAK_HOST_NAME = "weak.demo.invalid"
GOOD_HOST_NAME = "good.demo.invalid"
FTP_TLS_AVAILABLE = TLS_FTPHandler is not None
# Neutral: names neither product nor version, yet says "FTP server" so nmap -sV still says ftp.
GOOD_FTP_BANNER = "Welcome. FTP server ready."

START_TIMEOUT = 10.0  # seconds for all servers to come up
STOP_TIMEOUT = 5.0  # seconds each server thread gets to stop
IO_TIMEOUT = 30.0  # idle budget of one client read or write
SESSION_TIMEOUT = 90.0  # a whole client session, whatever it does
MAX_CLIENTS = 32  # simultaneous connections per service
REDIS_MAX_REQUEST = 64 * 1024
HTTP_MAX_HEAD = 16 * 1024
HTTP_MAX_BODY = 64 * 1024
ECHO_MAX_BYTES = 1024 * 1024
CHARGEN_MAX_BYTES = 64 * 1024
TELNET_TRIES = 3
TELNET_FAIL_DELAY = 0.3  # login(1) pauses after a failure; keep it short for the demo
FTP_IDLE_TIMEOUT = 120
FTP_AUTH_FAILED_DELAY = 1.0  # the good FTP's pause after a failed login (pyftpdlib: 3 s)

# Preferred port per protocol (above 1024, no root needed); the next free one is taken when busy.
# Redis keeps its well-known port so that even a port-table guess names it.
PREFERRED_PORTS: dict[str, int] = {
    "ftp": 2121,
    "echo": 2107,
    "daytime": 2113,
    "chargen": 2119,
    "telnet": 2123,
    "http": 2180,
    "https": 2443,
    "ssh": 2222,
    "redis": 6379,
}
PORT_WINDOW = 64  # ports tried upward from the preferred one before falling back to any port

# Checks that only run with --active: the demo expects them to fail only then.
ACTIVE_ONLY_CHECKS = frozenset({"net.ftp.anonymous_write"})

# What the weak host's TLS and SSH services must be found to fail (the protocol audits).
WEB_WEAK_EXPECT: tuple[str, ...] = (
    "web.disclosure.version",
    "web.forms.csrf",
    "web.headers.csp",
    "web.headers.frame",
    "web.headers.hsts",
    "web.headers.isolation",
    "web.headers.nosniff",
    "web.headers.permissions",
    "web.headers.referrer",
    "web.observatory.grade",
)
WEAK_TLS_EXPECT: tuple[str, ...] = (
    "tls.cert.expired",
    "tls.cert.name_mismatch",
    "tls.cert.sha1",
    "tls.cert.untrusted",
    "tls.cert.weak_key",
    "tls.cipher.cbc_tls10",
    "tls.cipher.no_forward_secrecy",
    "tls.cipher.no_server_order",
    "tls.cipher.null_anon_export",
    "tls.dh.weak",
    "tls.profile",
    "tls.protocol.legacy",
    "tls.protocol.no_tls13",
    *WEB_WEAK_EXPECT,
)
WEAK_SSH_EXPECT: tuple[str, ...] = (
    "ssh.auth.password",
    "ssh.banner.prelogin",
    "ssh.banner.version",
    "ssh.cipher.weak",
    "ssh.hostkey.weak",
    "ssh.mac.weak",
    "ssh.terrapin",
)

_FTP_CHECKS_WEAK = [
    "net.ftp.anonymous_login",
    "net.ftp.anonymous_write",
    "net.ftp.cleartext_auth",
    "net.ftp.banner_version",
]


@dataclass
class DemoService:
    """One running demo service and what Assay should find on it."""

    name: str  # "ftp-weak", "redis-open", ...
    address: str  # 127.x.y.z
    port: int
    weak: bool  # whether Assay should report problems on it
    expect: list[str]  # check ids expected to FAIL on it
    kind: str = ""  # the nmap service name it must be recognised as: "ftp", "redis", ...

    def expected(self, active: bool) -> list[str]:
        """The check ids expected to fail in a scan with or without --active."""
        return [c for c in self.expect if active or c not in ACTIVE_ONLY_CHECKS]


# ---------------------------------------------------------------------------------------------
# addresses and ports


def _is_demo_address(address: str) -> bool:
    try:
        addr = ipaddress.ip_address(address)
    except ValueError:
        return False
    return addr.version == 4 and addr.is_loopback and address != "127.0.0.1"


def _can_bind(address: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((address, port))
        except OSError:
            return False
    return True


def pick_demo_addresses() -> tuple[str, str]:
    """Two distinct free 127.x.y.z addresses (never 127.0.0.1), checked by binding.

    "Free" means the preferred demo ports bind there, so a second demo unit started at the same
    time lands elsewhere. Bounded: gives up after a fixed number of candidates.
    """
    rng = random.SystemRandom()
    found: list[str] = []
    for _ in range(200):
        addr = f"127.{rng.randint(64, 250)}.{rng.randint(0, 255)}.{rng.randint(2, 254)}"
        if addr in found or not _can_bind(addr, 0):
            continue
        if all(_can_bind(addr, p) for p in PREFERRED_PORTS.values()):
            found.append(addr)
            if len(found) == 2:
                return found[0], found[1]
    raise RuntimeError("no two free loopback addresses found for the demo unit")


def _listen(address: str, preferred: int, backlog: int = 64) -> socket.socket:
    """A listening socket on `address`, at `preferred` or the next free port (bounded)."""
    for port in [*range(preferred, preferred + PORT_WINDOW), 0]:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((address, port))
            sock.listen(backlog)
        except OSError:
            sock.close()
            continue
        return sock
    raise OSError(f"no free TCP port on {address}")


# ---------------------------------------------------------------------------------------------
# small helpers shared by the asyncio services

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


async def _send(writer: asyncio.StreamWriter, data: bytes) -> None:
    writer.write(data)
    await asyncio.wait_for(writer.drain(), IO_TIMEOUT)


async def _read(reader: asyncio.StreamReader, n: int = 4096) -> bytes:
    return await asyncio.wait_for(reader.read(n), IO_TIMEOUT)


# ---------------------------------------------------------------------------------------------
# echo, daytime, chargen (RFC 862, 867, 864)


async def _echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    total = 0
    while total < ECHO_MAX_BYTES:
        data = await _read(reader)
        if not data:
            return
        await _send(writer, data)
        total += len(data)


_DAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
_MONTHS = (
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
)


def daytime_line(now: dt.datetime | None = None) -> bytes:
    """RFC 867's suggested format, in English whatever the locale: 'Weekday, Month D, YYYY ...'."""
    t = now or dt.datetime.now(dt.UTC)
    text = (
        f"{_DAYS[t.weekday()]}, {_MONTHS[t.month - 1]} {t.day}, {t.year} "
        f"{t.hour:02d}:{t.minute:02d}:{t.second:02d}-UTC\r\n"
    )
    return text.encode("ascii")


async def _daytime(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await _send(writer, daytime_line())


_PRINTABLE = bytes(range(32, 127))  # the 95 printing ASCII characters


def chargen_line(index: int) -> bytes:
    """Line `index` of the RFC 864 pattern: 72 characters, each line shifted by one."""
    start = (index + 1) % len(_PRINTABLE)  # line 0 starts at '!', as the RFC's example does
    return (_PRINTABLE * 2)[start : start + 72] + b"\r\n"


async def _chargen(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    sent, index = 0, 0
    while sent < CHARGEN_MAX_BYTES and not writer.is_closing():
        chunk = b"".join(chargen_line(index + i) for i in range(16))
        index += 16
        await _send(writer, chunk)  # raises once the client has gone away
        sent += len(chunk)


# ---------------------------------------------------------------------------------------------
# Telnet login that never lets anyone in

IAC, DONT, DO, WONT, WILL, SB, SE = 255, 254, 253, 252, 251, 250, 240
OPT_ECHO, OPT_SGA, OPT_TTYPE, OPT_TSPEED, OPT_XDISPLOC, OPT_NEW_ENVIRON = 1, 3, 24, 32, 35, 39
# Linux telnetd first asks for the terminal's type, speed, display and environment, waits for
# the client's answer, then offers to echo and to suppress go-ahead before the login prompt.
# The same order and pause let nmap -sV recognise it as "Linux telnetd".
TELNET_NEGOTIATION = bytes(
    [IAC, DO, OPT_TTYPE, IAC, DO, OPT_TSPEED, IAC, DO, OPT_XDISPLOC, IAC, DO, OPT_NEW_ENVIRON]
)
TELNET_OFFERS = bytes([IAC, WILL, OPT_ECHO, IAC, WILL, OPT_SGA])
TELNET_ANSWER_WAIT = 1.0  # how long the client gets to answer the first negotiation
TELNET_BANNER = b"Debian GNU/Linux 12\r\nlogin: "
TELNET_MAX_LINE = 256


class _TelnetLines:
    """Reads lines from a Telnet client, dropping option negotiation (IAC sequences)."""

    def __init__(self, reader: asyncio.StreamReader) -> None:
        self._reader = reader
        self._data = bytearray()
        self._state = "data"  # data, iac, option, sb, sb_iac
        self._skip_lf = False  # a CR ended the last line; drop the LF or NUL that follows

    def _feed(self, raw: bytes) -> bytes:
        out = bytearray()
        for b in raw:
            if self._state == "data":
                if b == IAC:
                    self._state = "iac"
                else:
                    out.append(b)
            elif self._state == "iac":
                if b == IAC:
                    out.append(b)
                    self._state = "data"
                elif b in (WILL, WONT, DO, DONT):
                    self._state = "option"
                elif b == SB:
                    self._state = "sb"
                else:
                    self._state = "data"
            elif self._state == "option":
                self._state = "data"
            elif self._state == "sb":
                self._state = "sb_iac" if b == IAC else "sb"
            else:  # sb_iac
                self._state = "data" if b == SE else "sb"
        return bytes(out)

    async def await_answer(self, timeout: float) -> bool:
        """Wait briefly for the client's first bytes (kept for later); False if it hung up."""
        try:
            raw = await asyncio.wait_for(self._reader.read(512), timeout)
        except TimeoutError:
            return True
        self._data += self._feed(raw)
        return bool(raw)

    async def readline(self, echo: asyncio.StreamWriter | None) -> bytes | None:
        """One line (without its end), None when the client has gone. Echoes if asked."""
        while True:
            if self._skip_lf and self._data[:1] in (b"\n", b"\0"):
                del self._data[:1]
            if self._data:
                self._skip_lf = False
            for i, b in enumerate(self._data):
                if b in (13, 10):
                    line = bytes(self._data[:i])
                    del self._data[: i + 1]
                    self._skip_lf = b == 13
                    if echo is not None:
                        await _send(echo, b"\r\n")
                    return line
            if len(self._data) >= TELNET_MAX_LINE:
                line = bytes(self._data)
                self._data.clear()
                return line
            raw = await _read(self._reader, 512)
            if not raw:
                return None
            clean = self._feed(raw)
            if echo is not None:
                shown = bytes(c for c in clean if 32 <= c < 127)
                if shown:
                    await _send(echo, shown)
            self._data += clean


async def _telnet(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    lines = _TelnetLines(reader)
    await _send(writer, TELNET_NEGOTIATION)
    if not await lines.await_answer(TELNET_ANSWER_WAIT):
        return
    await _send(writer, TELNET_OFFERS + TELNET_BANNER)
    for attempt in range(TELNET_TRIES):
        if await lines.readline(echo=writer) is None:
            return
        await _send(writer, b"Password: ")
        if await lines.readline(echo=None) is None:  # read and dropped, never kept
            return
        await _send(writer, b"\r\n")
        await asyncio.sleep(TELNET_FAIL_DELAY)
        await _send(writer, b"Login incorrect\r\n")
        if attempt < TELNET_TRIES - 1:
            await _send(writer, b"login: ")


# ---------------------------------------------------------------------------------------------
# Redis look-alike (RESP2): describes commands, never executes them


class _Status(str):
    """A RESP simple string inside a reply (flags and categories are sent that way)."""


def resp(value: Any) -> bytes:
    """Encode a Python value as a RESP2 reply."""
    if value is None:
        return b"$-1\r\n"
    if isinstance(value, _Status):
        return b"+" + value.encode() + b"\r\n"
    if isinstance(value, bool):
        return b":%d\r\n" % int(value)
    if isinstance(value, int):
        return b":%d\r\n" % value
    if isinstance(value, str):
        value = value.encode()
    if isinstance(value, bytes):
        return b"$%d\r\n%s\r\n" % (len(value), value)
    if isinstance(value, list | tuple):
        return b"*%d\r\n" % len(value) + b"".join(resp(v) for v in value)
    raise TypeError(f"cannot encode {type(value).__name__} as RESP")


def _err(message: str) -> bytes:
    return b"-" + message.encode() + b"\r\n"


@dataclass(frozen=True)
class _Command:
    arity: int
    flags: tuple[str, ...]
    categories: tuple[str, ...]
    keys: tuple[int, int, int] = (0, 0, 0)
    subcommands: tuple[tuple[str, _Command], ...] = ()

    def describe(self, name: str) -> list[Any]:
        """The COMMAND INFO entry, in Redis 7's ten-field layout."""
        return [
            name,
            self.arity,
            [_Status(f) for f in self.flags],
            *self.keys,
            [_Status(c) for c in self.categories],
            [],  # tips
            [],  # key specifications
            [sub.describe(f"{name}|{sub_name}") for sub_name, sub in self.subcommands],
        ]


_ADMIN = ("@admin", "@slow", "@dangerous")
_ADMIN_FLAGS = ("admin", "noscript", "loading", "stale")
_CONN = ("@fast", "@connection")
_WIPE = _Command(-1, ("write",), ("@keyspace", "@write", "@slow", "@dangerous"))
_REPLICA = _Command(3, ("admin", "noscript", "stale", "no_async_loading"), _ADMIN)
_SCRIPTING = ("@slow", "@scripting")

REDIS_COMMANDS: dict[str, _Command] = {
    "ping": _Command(-1, ("fast",), _CONN),
    "echo": _Command(2, ("fast",), _CONN),
    "get": _Command(2, ("readonly", "fast"), ("@read", "@string", "@fast"), (1, 1, 1)),
    "info": _Command(-1, ("loading", "stale"), ("@slow", "@dangerous")),
    "auth": _Command(-2, ("noscript", "loading", "stale", "fast", "no_auth", "allow_busy"), _CONN),
    "quit": _Command(-1, ("allow_busy", "noscript", "loading", "stale", "fast", "no_auth"), _CONN),
    "command": _Command(
        -1,
        ("loading", "stale"),
        ("@slow", "@connection"),
        subcommands=(
            ("info", _Command(-2, ("loading", "stale"), ("@slow", "@connection"))),
            ("count", _Command(2, ("loading", "stale"), ("@slow", "@connection"))),
        ),
    ),
    "config": _Command(
        -2,
        (),
        ("@slow",),
        subcommands=(
            ("get", _Command(-3, _ADMIN_FLAGS, _ADMIN)),
            ("set", _Command(-4, _ADMIN_FLAGS, _ADMIN)),
            ("rewrite", _Command(2, _ADMIN_FLAGS, _ADMIN)),
            ("resetstat", _Command(2, _ADMIN_FLAGS, _ADMIN)),
        ),
    ),
    "client": _Command(
        -2,
        (),
        ("@slow",),
        subcommands=(
            ("kill", _Command(-3, _ADMIN_FLAGS, (*_ADMIN, "@connection"))),
            ("list", _Command(-2, _ADMIN_FLAGS, (*_ADMIN, "@connection"))),
            ("setname", _Command(3, ("noscript", "loading", "stale"), ("@slow", "@connection"))),
            ("getname", _Command(2, ("noscript", "loading", "stale"), ("@slow", "@connection"))),
        ),
    ),
    "debug": _Command(-2, ("admin", "noscript", "loading", "stale", "protected"), _ADMIN),
    "eval": _Command(
        -3, ("noscript", "stale", "skip_monitor", "no_mandatory_keys", "movablekeys"), _SCRIPTING
    ),
    "flushall": _WIPE,
    "flushdb": _WIPE,
    "keys": _Command(2, ("readonly",), ("@keyspace", "@read", "@slow", "@dangerous")),
    "migrate": _Command(
        -6, ("write", "movablekeys"), ("@keyspace", "@write", "@slow", "@dangerous"), (3, 3, 1)
    ),
    "module": _Command(
        -2,
        (),
        ("@slow",),
        subcommands=(
            ("load", _Command(-3, ("admin", "noscript", "no_async_loading", "protected"), _ADMIN)),
            ("unload", _Command(3, ("admin", "noscript", "no_async_loading", "protected"), _ADMIN)),
            ("list", _Command(2, ("admin", "noscript"), _ADMIN)),
        ),
    ),
    "replicaof": _REPLICA,
    "slaveof": _REPLICA,
    "save": _Command(1, ("admin", "noscript", "no_async_loading", "no_multi"), _ADMIN),
    "script": _Command(
        -2,
        (),
        ("@slow",),
        subcommands=(
            ("load", _Command(3, ("noscript", "stale"), _SCRIPTING)),
            ("exists", _Command(-3, ("noscript",), _SCRIPTING)),
            ("flush", _Command(-2, ("noscript",), _SCRIPTING)),
            ("kill", _Command(2, ("noscript", "allow_busy"), _SCRIPTING)),
        ),
    ),
    "shutdown": _Command(
        -1, ("admin", "noscript", "loading", "stale", "no_multi", "sentinel", "allow_busy"), _ADMIN
    ),
}

REDIS_VERSION = "7.0.15-demo"


class _ProtocolError(Exception):
    """The client broke RESP; Redis answers '-ERR Protocol error: ...' and hangs up."""


async def read_resp_command(reader: asyncio.StreamReader) -> list[bytes] | None:
    """One request (RESP array or inline line) as its arguments; None at end of input.

    Bounded: a request larger than REDIS_MAX_REQUEST raises _ProtocolError.
    """
    try:
        line = await _read_line(reader)
    except ValueError:  # longer than the reader's limit
        raise _ProtocolError("too big inline request") from None
    if line is None:
        return None
    if not line.startswith(b"*"):
        return line.split()
    try:
        count = int(line[1:])
    except ValueError:
        raise _ProtocolError("invalid multibulk length") from None
    if count > 1024:
        raise _ProtocolError("invalid multibulk length")
    args: list[bytes] = []
    size = len(line)
    for _ in range(max(count, 0)):
        header = await _read_line(reader)
        if header is None:
            return None
        if not header.startswith(b"$"):
            shown = header[:1].decode("latin-1")
            raise _ProtocolError(f"expected '$', got '{shown}'")
        try:
            length = int(header[1:])
        except ValueError:
            raise _ProtocolError("invalid bulk length") from None
        size += len(header) + length + 2
        if length < 0 or size > REDIS_MAX_REQUEST:
            raise _ProtocolError("invalid bulk length")
        data = await asyncio.wait_for(reader.readexactly(length + 2), IO_TIMEOUT)
        if data[-2:] != b"\r\n":
            raise _ProtocolError("invalid bulk format")
        args.append(data[:-2])
    return args


async def _read_line(reader: asyncio.StreamReader) -> bytes | None:
    line = await asyncio.wait_for(reader.readline(), IO_TIMEOUT)
    if not line.endswith(b"\n"):
        return None  # end of input (possibly mid-line)
    return line.rstrip(b"\r\n")


class _RedisService:
    """A Redis 7 look-alike.

    With `require_auth`, every known command answers NOAUTH, AUTH always answers WRONGPASS and
    only QUIT works; unknown commands and wrong argument counts are refused as Redis refuses
    them, before the authentication check.
    """

    def __init__(self, address: str, require_auth: bool) -> None:
        self.address, self.port, self.require_auth = address, 0, require_auth
        self.started = time.time()
        self.run_id = secrets.token_hex(20)
        self.clients = 0  # connected now
        self.connections = 0  # since start
        self.config = {
            "bind": "* -::*",
            "port": "0",
            "protected-mode": "no",
            "requirepass": "",
            "masterauth": "",
            "dir": "/var/lib/redis",
            "dbfilename": "dump.rdb",
            "appendonly": "no",
            "save": "3600 1 300 100 60 10000",
            "maxmemory": "0",
            "timeout": "0",
            "databases": "16",
            "loglevel": "notice",
            "enable-debug-command": "no",
            "enable-module-command": "no",
            "enable-protected-configs": "no",
        }

    def set_port(self, port: int) -> None:
        self.port = port
        self.config["port"] = str(port)

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.clients += 1
        self.connections += 1
        try:
            while True:
                try:
                    args = await read_resp_command(reader)
                except _ProtocolError as exc:
                    await _send(writer, _err(f"ERR Protocol error: {exc}"))
                    return
                if args is None:
                    return
                if not args:
                    continue
                reply, close = self.dispatch(args)
                if reply:
                    await _send(writer, reply)
                if close:
                    return
        finally:
            self.clients -= 1

    def dispatch(self, args: list[bytes]) -> tuple[bytes, bool]:
        """The reply to one command and whether to hang up after it."""
        name = args[0].decode("latin-1").lower()
        if name in ("post", "host:"):
            return b"", True  # Redis drops what looks like an HTTP request smuggled at it
        if name == "quit":
            return b"+OK\r\n", True
        cmd = REDIS_COMMANDS.get(name)
        # Redis 7 checks that a command exists and has the right arity before it checks
        # authentication; nmap -sV recognises Redis by exactly that arity error.
        if cmd is None:
            return _unknown(args), False
        if not _arity_ok(cmd.arity, len(args)):
            return _arity(name), False
        if self.require_auth:
            if name != "auth":
                return _err("NOAUTH Authentication required."), False
            return _err("WRONGPASS invalid username-password pair or user is disabled."), False
        handler = self._handlers.get(name)
        if handler is None:  # described (COMMAND INFO) but never carried out
            return _unknown(args), False
        return handler(self, args[1:]), False

    def _ping(self, rest: list[bytes]) -> bytes:
        if len(rest) > 1:
            return _arity("ping")
        return resp(rest[0]) if rest else b"+PONG\r\n"

    def _echo(self, rest: list[bytes]) -> bytes:
        return resp(rest[0])

    def _get(self, rest: list[bytes]) -> bytes:
        return resp(None)  # the keyspace is always empty

    def _auth(self, rest: list[bytes]) -> bytes:
        if len(rest) == 1:
            return _err(
                "ERR AUTH <password> called without any password configured for the default "
                "user. Are you sure your configuration is correct?"
            )
        return _err("WRONGPASS invalid username-password pair or user is disabled.")

    def _info(self, rest: list[bytes]) -> bytes:
        wanted = {r.decode("latin-1").lower() for r in rest} or {"default"}
        sections = self.info_sections()
        if wanted & {"default", "all", "everything"}:
            chosen = list(sections)
        else:
            chosen = [s for s in sections if s.lower() in wanted]
        text = "\r\n".join(
            f"# {s}\r\n" + "".join(f"{k}:{v}\r\n" for k, v in sections[s]) for s in chosen
        )
        return resp(text)

    def info_sections(self) -> dict[str, list[tuple[str, str]]]:
        uptime = int(time.time() - self.started)
        return {
            "Server": [
                ("redis_version", REDIS_VERSION),
                ("redis_git_sha1", "00000000"),
                ("redis_git_dirty", "0"),
                ("redis_mode", "standalone"),
                ("os", f"Linux {platform.release()} {platform.machine()}"),
                ("arch_bits", "64"),
                ("multiplexing_api", "epoll"),
                ("process_id", str(os.getpid())),
                ("run_id", self.run_id),
                ("tcp_port", str(self.port)),
                ("uptime_in_seconds", str(uptime)),
                ("uptime_in_days", str(uptime // 86400)),
                ("config_file", ""),
            ],
            "Clients": [("connected_clients", str(self.clients)), ("blocked_clients", "0")],
            "Memory": [("used_memory", "1048576"), ("maxmemory", "0")],
            "Persistence": [("loading", "0"), ("rdb_changes_since_last_save", "0")],
            "Stats": [("total_connections_received", str(self.connections))],
            "Replication": [("role", "master"), ("connected_slaves", "0")],
            "Keyspace": [],
        }

    def _command(self, rest: list[bytes]) -> bytes:
        if not rest:
            return resp([c.describe(n) for n, c in REDIS_COMMANDS.items()])
        sub = rest[0].decode("latin-1").lower()
        if sub == "count":
            return resp(len(REDIS_COMMANDS)) if len(rest) == 1 else _arity("command|count")
        if sub == "info":
            names = [r.decode("latin-1").lower() for r in rest[1:]]
            if not names:
                return resp([c.describe(n) for n, c in REDIS_COMMANDS.items()])
            found = [REDIS_COMMANDS.get(n) for n in names]
            return resp([c.describe(n) if c else None for n, c in zip(names, found, strict=True)])
        return _unknown_sub(rest[0], "COMMAND")

    def _config(self, rest: list[bytes]) -> bytes:
        sub = rest[0].decode("latin-1").lower()
        if sub != "get":  # set/rewrite/resetstat are described but never carried out
            return _unknown_sub(rest[0], "CONFIG")
        if len(rest) < 2:
            return _arity("config|get")
        patterns = [p.decode("latin-1").lower() for p in rest[1:]]
        out: list[str] = []
        for key, value in self.config.items():
            if any(fnmatch.fnmatchcase(key, p) for p in patterns):
                out += [key, value]
        return resp(out)

    _handlers: dict[str, Callable[[_RedisService, list[bytes]], bytes]] = {
        "ping": _ping,
        "echo": _echo,
        "get": _get,
        "auth": _auth,
        "info": _info,
        "command": _command,
        "config": _config,
    }


def _arity_ok(arity: int, given: int) -> bool:
    return given == arity if arity > 0 else given >= -arity


def _arity(name: str) -> bytes:
    return _err(f"ERR wrong number of arguments for '{name}' command")


def _unknown(args: list[bytes]) -> bytes:
    shown = "".join(f"'{a[:128].decode('latin-1')}' " for a in args[1:])
    name = args[0][:128].decode("latin-1")
    return _err(f"ERR unknown command '{name}', with args beginning with: {shown}")


def _unknown_sub(sub: bytes, container: str) -> bytes:
    return _err(f"ERR unknown subcommand '{sub[:128].decode('latin-1')}'. Try {container} HELP.")


# ---------------------------------------------------------------------------------------------
# minimal HTTP/1.1 (one request per connection, Connection: close)

HTTP_SERVER = "nginx/1.18.0"  # the weak host names its version
GOOD_SERVER = "nginx"  # the good host does not (server_tokens off)
_REASONS = {
    200: "OK",
    301: "Moved Permanently",
    400: "Bad Request",
    404: "Not Found",
    405: "Not Allowed",
    413: "Request Entity Too Large",
    431: "Request Header Fields Too Large",
    501: "Not Implemented",
    505: "HTTP Version Not Supported",
}

LOGIN_PAGE = """<!DOCTYPE html>
<html lang="en">
<head><meta charset="utf-8"><title>Staff portal - sign in</title></head>
<body>
<h1>Staff portal</h1>
{message}<form method=post>
<p><label>User name <input type=text name=username autocomplete=username></label></p>
<p><label>Password <input type=password name=password></label></p>
<p><button type=submit>Sign in</button></p>
</form>
<p><small>Assay demo unit: this sign-in page is served over cleartext HTTP on purpose.</small></p>
</body>
</html>
"""


class _HttpError(Exception):
    def __init__(self, status: int) -> None:
        super().__init__(status)
        self.status = status


@dataclass
class HttpRequest:
    method: str
    target: str
    version: str
    headers: dict[str, str]
    body: bytes = b""

    @property
    def path(self) -> str:
        return urlsplit(self.target).path or "/"


async def read_http_request(reader: asyncio.StreamReader) -> HttpRequest | None:
    """One request head and body, bounded in size and time; None if the client sent nothing."""
    lines: list[bytes] = []
    used = 0
    while True:
        try:
            raw = await asyncio.wait_for(reader.readline(), IO_TIMEOUT)
        except ValueError:
            raise _HttpError(431) from None
        used += len(raw)
        if used > HTTP_MAX_HEAD:
            raise _HttpError(431)
        if not raw.endswith(b"\n"):
            if not lines and not raw.strip():
                return None
            raise _HttpError(400)
        line = raw.rstrip(b"\r\n")
        if not line:
            if lines:
                break
            continue  # blank lines before a request are ignored (RFC 9112, 2.2)
        lines.append(line)
        if len(lines) > 101:
            raise _HttpError(431)
    parts = lines[0].decode("latin-1").split(" ")
    if len(parts) != 3 or not parts[0].isalpha() or not parts[2].startswith("HTTP/"):
        raise _HttpError(400)
    method, target, version = parts
    if version not in ("HTTP/1.0", "HTTP/1.1"):
        raise _HttpError(505)
    headers: dict[str, str] = {}
    for line in lines[1:]:
        name, sep, value = line.decode("latin-1").partition(":")
        if not sep or not name or name != name.strip() or " " in name:
            raise _HttpError(400)
        headers[name.lower()] = value.strip()
    if version == "HTTP/1.1" and "host" not in headers:
        raise _HttpError(400)
    if "transfer-encoding" in headers:
        raise _HttpError(501)
    length = headers.get("content-length", "0")
    if not length.isdigit():
        raise _HttpError(400)
    if int(length) > HTTP_MAX_BODY:
        raise _HttpError(413)
    body = await asyncio.wait_for(reader.readexactly(int(length)), IO_TIMEOUT) if length else b""
    return HttpRequest(method, target, version, headers, body)


def http_response(
    status: int,
    body: bytes,
    extra: Iterable[tuple[str, str]] = (),
    head_only: bool = False,
    content_type: str = "text/html; charset=utf-8",
    server: str = HTTP_SERVER,
) -> bytes:
    lines = [
        f"HTTP/1.1 {status} {_REASONS[status]}",
        f"Server: {server}",
        f"Date: {formatdate(usegmt=True)}",
        f"Content-Type: {content_type}",
        f"Content-Length: {len(body)}",
        "Connection: close",
        *(f"{k}: {v}" for k, v in extra),
    ]
    head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
    return head if head_only else head + body


def _status_page(status: int) -> bytes:
    title = f"{status} {_REASONS[status]}"
    return (
        f"<html>\r\n<head><title>{title}</title></head>\r\n<body>\r\n"
        f"<center><h1>{title}</h1></center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n"
    ).encode()


def _weak_site(req: HttpRequest) -> bytes:
    head_only = req.method == "HEAD"
    if req.method not in ("GET", "HEAD", "POST"):
        return http_response(405, _status_page(405), [("Allow", "GET, HEAD, POST")])
    if req.path not in ("/", "/login", "/index.html"):
        return http_response(404, _status_page(404), head_only=head_only)
    # A POST is answered like a failed sign-in; the submitted fields are dropped unread.
    message = "<p><strong>Invalid user name or password.</strong></p>\n" if req.body else ""
    page = LOGIN_PAGE.format(message=message).encode()
    return http_response(200, page, head_only=head_only)


HSTS = "max-age=63072000; includeSubDomains"


def _redirect_site(https_port: Callable[[], int]) -> Callable[[HttpRequest], bytes]:
    """The good host's cleartext HTTP: every request is sent to the HTTPS site."""

    def site(req: HttpRequest) -> bytes:
        path = req.path if req.path.startswith("/") else "/"
        location = f"https://{GOOD_HOST_NAME}:{https_port()}{path}"
        return http_response(
            301,
            _status_page(301),
            [("Location", location), ("Strict-Transport-Security", HSTS)],
            head_only=req.method == "HEAD",
            server=GOOD_SERVER,
        )

    return site


GOOD_PAGE = """<!DOCTYPE html>
<html lang="en">
<head><meta charset="utf-8"><title>Staff portal</title></head>
<body>
<h1>Staff portal</h1>
<p>Opening hours: Monday to Friday, 8:00 to 16:30.</p>
<p><small>Assay demo unit: this page is served over TLS 1.2/1.3 with the usual security
headers.</small></p>
</body>
</html>
"""

# What a hardened site sends with every response (the good host's HTTPS site).
SECURITY_HEADERS: tuple[tuple[str, str], ...] = (
    ("Strict-Transport-Security", HSTS),
    ("Content-Security-Policy", "default-src 'none'; style-src 'self'; frame-ancestors 'none'"),
    ("X-Frame-Options", "DENY"),
    ("X-Content-Type-Options", "nosniff"),
    ("Referrer-Policy", "no-referrer"),
    ("Permissions-Policy", "camera=(), microphone=(), geolocation=()"),
    ("Cross-Origin-Opener-Policy", "same-origin"),
    ("Cross-Origin-Resource-Policy", "same-origin"),
)


def _good_tls_site(req: HttpRequest) -> bytes:
    head_only = req.method == "HEAD"
    if req.method not in ("GET", "HEAD"):
        return http_response(
            405, _status_page(405), [("Allow", "GET, HEAD"), *SECURITY_HEADERS], server=GOOD_SERVER
        )
    if req.path not in ("/", "/index.html"):
        return http_response(
            404, _status_page(404), SECURITY_HEADERS, head_only=head_only, server=GOOD_SERVER
        )
    return http_response(
        200, GOOD_PAGE.encode(), SECURITY_HEADERS, head_only=head_only, server=GOOD_SERVER
    )


def _http(site: Callable[[HttpRequest], bytes]) -> Handler:
    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            req = await read_http_request(reader)
        except _HttpError as exc:
            await _send(writer, http_response(exc.status, _status_page(exc.status)))
            return
        if req is not None:
            await _send(writer, site(req))

    return serve


# ---------------------------------------------------------------------------------------------
# running the asyncio services in one background thread


TLS_HANDSHAKE_TIMEOUT = 10.0


@dataclass(frozen=True)
class _Listener:
    name: str
    sock: socket.socket
    handler: Handler
    limit: int  # StreamReader limit (longest line accepted)
    tls: ssl.SSLContext | None = None


class _AsyncServices:
    """All asyncio services of a demo unit, on one event loop in one daemon thread."""

    def __init__(self, listeners: list[_Listener]) -> None:
        self._listeners = listeners
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopping: asyncio.Event | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._active: dict[str, int] = {}
        self._thread = threading.Thread(target=self._run, name="assay-demo-asyncio", daemon=True)

    def start(self) -> None:
        self._thread.start()
        if not self._ready.wait(START_TIMEOUT):
            self.stop()
            raise RuntimeError("demo services did not start in time")
        if self._error is not None:
            self._thread.join(STOP_TIMEOUT)
            raise RuntimeError(f"demo services failed to start: {self._error}") from self._error

    def stop(self) -> bool:
        """Stop every server and connection; True when the thread ended in time."""
        loop, stopping = self._loop, self._stopping
        if loop is not None and stopping is not None:
            with contextlib.suppress(RuntimeError):  # loop already closed
                loop.call_soon_threadsafe(stopping.set)
        if self._thread.is_alive():
            self._thread.join(STOP_TIMEOUT)
        for listener in self._listeners:
            listener.sock.close()  # no-op when the server already closed it
        return not self._thread.is_alive()

    def _run(self) -> None:
        loop = asyncio.new_event_loop()
        # Scanners (nmap's probes, Assay's own hellos) break TLS handshakes on purpose; asyncio
        # would log each one as an error. They are the demo's normal traffic.
        loop.set_exception_handler(
            lambda _loop, context: LOG.debug("demo: %s", context.get("message", ""))
        )
        self._loop = loop
        try:
            loop.run_until_complete(self._main())
        except BaseException as exc:  # reported to start(); the thread must not die silently
            self._error = exc
            LOG.debug("demo asyncio services stopped with an error", exc_info=True)
        finally:
            with contextlib.suppress(Exception):
                loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()
            self._ready.set()

    async def _main(self) -> None:
        self._stopping = asyncio.Event()
        servers: list[asyncio.Server] = []
        acceptors: list[asyncio.Task[None]] = []
        try:
            for lst in self._listeners:
                self._active[lst.name] = 0
                if lst.tls is not None:
                    acceptors.append(asyncio.create_task(self._accept_tls(lst)))
                    continue
                server = await asyncio.start_server(
                    self._guard(lst.name, lst.handler), sock=lst.sock, limit=lst.limit
                )
                servers.append(server)
            self._ready.set()
            await self._stopping.wait()
        finally:
            for server in servers:
                server.close()
            # Cancel every other task of this loop: connection handlers, TLS handshakes, the
            # accept loops, and handlers of connections accepted just before the servers
            # closed (they start only on the next turn of the loop, hence the rounds).
            loop = asyncio.get_running_loop()
            deadline = loop.time() + STOP_TIMEOUT / 2
            me = asyncio.current_task()
            for _ in range(20):
                await asyncio.sleep(0)
                pending = [t for t in asyncio.all_tasks() if t is not me and not t.done()]
                if not pending or loop.time() > deadline:
                    break
                for task in pending:
                    task.cancel()
                await asyncio.wait(pending, timeout=max(0.05, deadline - loop.time()))
            for server in servers:
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(server.wait_closed(), 1.0)
            await asyncio.sleep(0.05)  # transports closed above finish closing

    async def _accept_tls(self, lst: _Listener) -> None:
        """Accept loop of a TLS service. Each handshake runs in the connection's own tracked
        task, so a client stuck in it (scanners do that) is timed out and closed on shutdown
        like every other connection (asyncio's own TLS server would leave it behind)."""
        loop = asyncio.get_running_loop()
        lst.sock.setblocking(False)
        guarded = self._guard(lst.name, lst.handler)
        while True:
            conn, _ = await loop.sock_accept(lst.sock)
            task = asyncio.create_task(self._tls_connection(lst, conn, guarded))
            self._tasks.add(task)  # type: ignore[arg-type]
            task.add_done_callback(self._tasks.discard)  # type: ignore[arg-type]

    async def _tls_connection(self, lst: _Listener, conn: socket.socket, guarded: Handler) -> None:
        loop = asyncio.get_running_loop()
        reader = asyncio.StreamReader(limit=lst.limit)
        protocol = asyncio.StreamReaderProtocol(reader)
        try:
            transport, _ = await loop.connect_accepted_socket(
                lambda: protocol, conn, ssl=lst.tls, ssl_handshake_timeout=TLS_HANDSHAKE_TIMEOUT
            )
        except (OSError, EOFError, TimeoutError, asyncio.CancelledError):
            conn.close()  # a failed or abandoned handshake: nothing to serve
            return
        writer = asyncio.StreamWriter(transport, protocol, reader, loop)
        await guarded(reader, writer)

    def _guard(self, name: str, handler: Handler) -> Handler:
        """Wrap a handler: connection limit, session deadline, close on every exit path."""

        async def on_client(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            task = asyncio.current_task()
            if self._active[name] >= MAX_CLIENTS or task is None or self._stopping is None:
                writer.close()
                return
            if self._stopping.is_set():
                writer.close()
                return
            self._active[name] += 1
            self._tasks.add(task)  # type: ignore[arg-type]
            try:
                await asyncio.wait_for(handler(reader, writer), SESSION_TIMEOUT)
            except (OSError, EOFError, TimeoutError, asyncio.IncompleteReadError):
                pass  # the client went away, stalled or sent a short read: just hang up
            except asyncio.CancelledError:
                # Only the unit's shutdown cancels these; ending normally keeps asyncio's
                # stream callback (which asks the task for its exception) quiet.
                pass
            except Exception:
                LOG.exception("demo service %s failed on a client", name)
            finally:
                self._active[name] -= 1
                self._tasks.discard(task)  # type: ignore[arg-type]
                writer.close()
                with contextlib.suppress(Exception, asyncio.CancelledError):
                    await asyncio.wait_for(writer.wait_closed(), 1.0)

        return on_client


# ---------------------------------------------------------------------------------------------
# FTP (pyftpdlib), one server per thread with its own IOLoop


class _FtpThread:
    def __init__(self, name: str, sock: socket.socket, handler: type[FTPHandler]) -> None:
        self.sock = sock
        self._server = FTPServer(sock, handler, ioloop=IOLoop())
        self._server.max_cons = MAX_CLIENTS
        self._server.max_cons_per_ip = MAX_CLIENTS
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"assay-demo-{name}", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> bool:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(STOP_TIMEOUT)
        else:
            self._server.close_all()  # never started: release the socket here
        return not self._thread.is_alive()

    def _run(self) -> None:
        ioloop = self._server.ioloop
        try:
            while not self._stop.is_set():
                if ioloop.socket_map:
                    ioloop.loop(0.1, blocking=False)
                else:
                    time.sleep(0.1)
        except Exception:
            LOG.exception("demo FTP server stopped with an error")
        finally:
            self._server.close_all()


def _quiet_pyftpdlib() -> None:
    """pyftpdlib sets up stderr logging unless a handler exists; the demo's output stays clean.

    Records still propagate, so an application that configures logging sees them.
    """
    lg = logging.getLogger("pyftpdlib")
    if not lg.handlers:
        lg.addHandler(logging.NullHandler())


def _weak_ftp_handler(root: Path) -> type[FTPHandler]:
    auth = DummyAuthorizer()
    with warnings.catch_warnings():  # pyftpdlib warns about anonymous write: that is the point
        warnings.simplefilter("ignore", RuntimeWarning)
        auth.add_anonymous(str(root), perm="elradfmw")
    attrs = {"authorizer": auth, "timeout": FTP_IDLE_TIMEOUT, "max_login_attempts": 3}
    return type("DemoWeakFtpHandler", (FTPHandler,), attrs)


def _good_ftp_handler(root: Path, password: str, certdir: Path) -> type[FTPHandler]:
    auth = DummyAuthorizer()
    auth.add_user("demo", password, str(root), perm="elr")
    attrs: dict[str, Any] = {
        "authorizer": auth,
        "banner": GOOD_FTP_BANNER,
        "timeout": FTP_IDLE_TIMEOUT,
        "auth_failed_timeout": FTP_AUTH_FAILED_DELAY,
        "max_login_attempts": 3,
    }
    if TLS_FTPHandler is None:
        return type("DemoGoodFtpHandler", (FTPHandler,), attrs)
    cert, key = _self_signed(certdir)
    attrs.update(
        certfile=str(cert),
        keyfile=str(key),
        ssl_context=None,
        tls_control_required=True,
        tls_data_required=True,
    )
    return type("DemoGoodFtpsHandler", (TLS_FTPHandler,), attrs)


def _self_signed(directory: Path) -> tuple[Path, Path]:
    """A one-day certificate for the good host, made with `cryptography` (a dependency)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, GOOD_HOST_NAME)])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(GOOD_HOST_NAME)]), False)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "good-ftp.crt", directory / "good-ftp.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.touch(mode=0o600)
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


def _fresh_dir(path: Path) -> Path:
    if path.exists():
        shutil.rmtree(path)
    path.mkdir(parents=True)
    return path


def _prepare_ftp_roots(workdir: Path) -> tuple[Path, Path, Path]:
    weak = _fresh_dir(workdir / "ftp-weak")
    (weak / "README.txt").write_text(
        "Assay demo FTP server. Anyone may log in as 'anonymous' and write here.\n"
    )
    (weak / "pub").mkdir()
    (weak / "pub" / "opening-hours.txt").write_text("Mon-Fri 08:00-16:30\n")
    (weak / "pub" / "phone-list.csv").write_text("desk,extension\nreception,100\n")
    (weak / "upload").mkdir()
    good = _fresh_dir(workdir / "ftp-good")
    (good / "welcome.txt").write_text("Assay demo FTP server (hardened).\n")
    certs = _fresh_dir(workdir / "tls")
    return weak, good, certs


# ---------------------------------------------------------------------------------------------
# document stores: a shared folder holding what must never lie on a networked store, and one
# holding only harmless documents (which mention "mật khẩu" and "mật độ": not markings)


@dataclass(frozen=True)
class DemoStore:
    id: str
    path: Path
    weak: bool
    expect: tuple[str, ...]  # check ids expected to FAIL on it


STORE_WEAK_EXPECT: tuple[str, ...] = (
    "data.marking.state_secret",
    "data.pii.exposed",
    "data.secrets.exposed",
    "data.store.world_readable",
)


def _docx(body: list[str], header: str = "") -> bytes:
    """A minimal WordprocessingML document (body paragraphs and a page header)."""
    from xml.sax.saxutils import escape

    ns = 'xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main"'

    def paras(lines: list[str]) -> str:
        return "".join(f"<w:p><w:r><w:t>{escape(x)}</w:t></w:r></w:p>" for x in lines)

    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr(
            "[Content_Types].xml",
            '<?xml version="1.0" encoding="UTF-8"?><Types xmlns="http://schemas.openxmlformats.org/'
            'package/2006/content-types"><Default Extension="xml" ContentType="application/xml"/>'
            '<Override PartName="/word/document.xml" ContentType="application/vnd.openxmlformats-'
            'officedocument.wordprocessingml.document.main+xml"/></Types>',
        )
        z.writestr(
            "word/document.xml", f"<w:document {ns}><w:body>{paras(body)}</w:body></w:document>"
        )
        if header:
            z.writestr("word/header1.xml", f"<w:hdr {ns}>{paras([header])}</w:hdr>")
    return buf.getvalue()


def _prepare_stores(workdir: Path) -> list[DemoStore]:
    weak = _fresh_dir(workdir / "share-weak")
    (weak / "cong-van").mkdir()
    (weak / "cong-van" / "bao-cao-quy-4.docx").write_bytes(
        _docx(
            ["ỦY BAN NHÂN DÂN TỈNH (demo)", "BÁO CÁO tình hình an ninh mạng quý IV"],
            header="TỐI MẬT",
        )
    )
    (weak / "nhan-su").mkdir()
    (weak / "nhan-su" / "danh-sach-can-bo.csv").write_text(
        "ho_ten,so_cccd,dien_thoai\n"
        "Nguyễn Văn An,001089012345,0912345678\n"
        "Trần Thị Bình,079195004321,0987654321\n",
        encoding="utf-8",
    )
    (weak / "app").mkdir()
    (weak / "app" / "app.env").write_text("DB_USER=portal\nDB_PASSWORD=Sup3rS3cret!2024\n")
    for d in (weak, *weak.iterdir()):
        d.chmod(0o777 if d.is_dir() else 0o644)
    good = _fresh_dir(workdir / "share-good")
    (good / "thong-bao.docx").write_bytes(
        _docx(["Thông báo: hướng dẫn đổi mật khẩu định kỳ và bản đồ mật độ dân cư."])
    )
    good.chmod(0o750)
    (good / "thong-bao.docx").chmod(0o640)
    return [
        DemoStore("share-weak", weak, True, STORE_WEAK_EXPECT),
        DemoStore("share-good", good, False, ()),
    ]


# ---------------------------------------------------------------------------------------------
# the unit


@dataclass
class _Planned:
    name: str
    kind: str
    weak: bool
    expect: list[str]
    handler: Handler | None = None  # asyncio services
    limit: int = 64 * 1024  # StreamReader limit (longest line accepted)
    ftp: Callable[[], type[FTPHandler]] | None = None  # FTP services
    redis: _RedisService | None = None  # told its port once bound (INFO, CONFIG GET port)
    tls: Callable[[], ssl.SSLContext] | None = None  # HTTPS: the server's TLS context
    ssh: bool | None = None  # an SSH server: True weak, False hardened


@dataclass
class _Running:
    services: list[DemoService] = field(default_factory=list)
    ftp: list[_FtpThread] = field(default_factory=list)
    ssh: list[DemoSshServer] = field(default_factory=list)
    aio: _AsyncServices | None = None
    sockets: list[socket.socket] = field(default_factory=list)


class DemoUnit:
    """Context manager; starts every service in background threads (own asyncio loop in one
    thread; pyftpdlib servers in their own threads), stops them all on exit, bounded."""

    def __init__(
        self,
        weak_address: str | None = None,
        good_address: str | None = None,
        workdir: Path | None = None,
    ) -> None:
        if weak_address is None or good_address is None:
            picked = pick_demo_addresses()
            weak_address = weak_address or next(a for a in picked if a != good_address)
            good_address = good_address or next(a for a in picked if a != weak_address)
        for addr in (weak_address, good_address):
            if not _is_demo_address(addr):
                raise ValueError(
                    f"{addr!r} is not a 127.x.y.z loopback address other than 127.0.0.1"
                )
        if weak_address == good_address:
            raise ValueError("the weak and the good host need two different addresses")
        self.weak_address: str = weak_address
        self.good_address: str = good_address
        self.services: list[DemoService] = []
        self._workdir = workdir
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        self._ftp_password = secrets.token_urlsafe(24)  # never printed, logged or written
        self._run = _Running()
        self._entered = False
        self.tls: DemoTls | None = None
        self.stores: list[DemoStore] = []

    def __repr__(self) -> str:
        return f"DemoUnit(weak={self.weak_address}, good={self.good_address})"

    def service(self, name: str) -> DemoService:
        for svc in self.services:
            if svc.name == name:
                return svc
        raise KeyError(f"no demo service {name!r} (known: {[s.name for s in self.services]})")

    # -- lifecycle ------------------------------------------------------------------------------

    def __enter__(self) -> DemoUnit:
        if self._entered:
            raise RuntimeError("a DemoUnit can be started only once")
        self._entered = True
        try:
            self._start()
        except BaseException:
            self._shutdown()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self._shutdown()

    def _start(self) -> None:
        _quiet_pyftpdlib()
        if self._workdir is None:
            self._tmp = tempfile.TemporaryDirectory(prefix="assay-demo-")
            workdir = Path(self._tmp.name)
        else:
            workdir = Path(self._workdir)
            workdir.mkdir(parents=True, exist_ok=True)
        weak_root, good_root, certs = _prepare_ftp_roots(workdir)
        self.tls = DemoTls.create(
            _fresh_dir(workdir / "https-tls"), self.good_address, GOOD_HOST_NAME
        )
        self.stores = _prepare_stores(workdir)
        plan = self._plan(weak_root, good_root, certs)
        listeners: list[_Listener] = []
        for address, planned in plan:
            sock = _listen(address, PREFERRED_PORTS[planned.kind])
            self._run.sockets.append(sock)
            port = sock.getsockname()[1]
            if planned.redis is not None:
                planned.redis.set_port(port)
            self._run.services.append(
                DemoService(planned.name, address, port, planned.weak, planned.expect, planned.kind)
            )
            if planned.ftp is not None:
                self._run.ftp.append(_FtpThread(planned.name, sock, planned.ftp()))
            elif planned.ssh is not None:
                self._run.ssh.append(DemoSshServer(planned.name, sock, weak=planned.ssh))
            elif planned.handler is not None:
                tls = planned.tls() if planned.tls is not None else None
                listeners.append(_Listener(planned.name, sock, planned.handler, planned.limit, tls))
        for ftp in self._run.ftp:
            ftp.start()
        for ssh_server in self._run.ssh:
            ssh_server.start()
        self._run.aio = _AsyncServices(listeners)
        self._run.aio.start()
        self.services = list(self._run.services)

    def _plan(self, weak_root: Path, good_root: Path, certs: Path) -> list[tuple[str, _Planned]]:
        w, g = self.weak_address, self.good_address
        open_redis = _RedisService(w, require_auth=False)
        auth_redis = _RedisService(g, require_auth=True)
        good_ftp_expect = [] if FTP_TLS_AVAILABLE else ["net.ftp.cleartext_auth"]
        legacy = ["net.legacy.small_services"]
        redis_weak = ["net.redis.no_auth", "net.redis.dangerous_commands"]
        password = self._ftp_password
        tls = self.tls
        if tls is None:
            raise RuntimeError("the demo TLS material is made before the services are planned")
        return [
            (
                w,
                _Planned(
                    "ftp-weak",
                    "ftp",
                    True,
                    list(_FTP_CHECKS_WEAK),
                    ftp=lambda: _weak_ftp_handler(weak_root),
                ),
            ),
            (
                w,
                _Planned(
                    "redis-open",
                    "redis",
                    True,
                    [*redis_weak, "net.exposed.db_admin_ports"],
                    open_redis.serve,
                    REDIS_MAX_REQUEST,
                    redis=open_redis,
                ),
            ),
            (w, _Planned("telnet-login", "telnet", True, ["net.telnet.present"], _telnet)),
            (w, _Planned("echo", "echo", True, legacy, _echo)),
            (w, _Planned("daytime", "daytime", True, legacy, _daytime)),
            (w, _Planned("chargen", "chargen", True, legacy, _chargen)),
            (
                w,
                _Planned(
                    "http-login",
                    "http",
                    True,
                    [
                        "net.http.cleartext",
                        "web.auth.cleartext",
                        "web.https.redirect",
                        *WEB_WEAK_EXPECT,
                    ],
                    _http(_weak_site),
                    HTTP_MAX_HEAD,
                ),
            ),
            (
                g,
                _Planned(
                    "ftp-good",
                    "ftp",
                    False,
                    good_ftp_expect,
                    ftp=lambda: _good_ftp_handler(good_root, password, certs),
                ),
            ),
            (
                g,
                _Planned(
                    "redis-auth",
                    "redis",
                    False,
                    # Reachability alone is the finding of this host check, with or without auth:
                    # even the hardened host exposes a database port.
                    ["net.exposed.db_admin_ports"],
                    auth_redis.serve,
                    REDIS_MAX_REQUEST,
                    redis=auth_redis,
                ),
            ),
            (
                g,
                _Planned(
                    "http-redirect",
                    "http",
                    False,
                    [],
                    _http(_redirect_site(lambda: self.service("https-good").port)),
                    HTTP_MAX_HEAD,
                ),
            ),
            (
                w,
                _Planned(
                    "https-weak",
                    "https",
                    True,
                    list(WEAK_TLS_EXPECT),
                    _http(_weak_site),
                    HTTP_MAX_HEAD,
                    tls=tls.weak_context,
                ),
            ),
            (
                g,
                _Planned(
                    "https-good",
                    "https",
                    False,
                    [],
                    _http(_good_tls_site),
                    HTTP_MAX_HEAD,
                    tls=tls.good_context,
                ),
            ),
            (w, _Planned("ssh-weak", "ssh", True, list(WEAK_SSH_EXPECT), ssh=True)),
            (g, _Planned("ssh-good", "ssh", False, [], ssh=False)),
        ]

    def _shutdown(self) -> None:
        run = self._run
        stuck: list[str] = []
        if run.aio is not None and not run.aio.stop():
            stuck.append("asyncio services")
        for ssh_server in run.ssh:
            if not ssh_server.stop(STOP_TIMEOUT):
                stuck.append("an SSH server")
        for ftp in run.ftp:
            if not ftp.stop():
                stuck.append("an FTP server")
        for sock in run.sockets:
            sock.close()
        self._run = _Running()
        self.services = []
        if self._tmp is not None:
            with contextlib.suppress(OSError):
                self._tmp.cleanup()
            self._tmp = None
        if stuck:
            LOG.warning("demo unit: %s did not stop within %ss", ", ".join(stuck), STOP_TIMEOUT)

    # -- inventory ------------------------------------------------------------------------------

    def inventory_yaml(self, unit_id: str = "demo", unit_name: str = "Demo unit (loopback)") -> str:
        """An inventory (scanner/inventory.py) declaring the running demo unit, for one scan."""
        if not self.services:
            raise RuntimeError("the demo unit is not running (ports are chosen when it starts)")
        hosts = []
        for address, name, tag in (
            (self.weak_address, WEAK_HOST_NAME, "weak"),
            (self.good_address, GOOD_HOST_NAME, "good"),
        ):
            ports = sorted(s.port for s in self.services if s.address == address)
            hosts.append(
                {
                    "address": address,
                    "names": [name],
                    "tags": ["demo", tag],
                    "ports": ",".join(str(p) for p in ports),
                }
            )
        web = [
            {
                "url": f"{s.kind}://{s.address}:{s.port}/",
                "tags": ["demo", "weak" if s.weak else "good"],
            }
            for s in self.services
            if s.kind in ("http", "https")
        ]
        settings: dict[str, Any] = {}
        if self.tls is not None:  # the good host's certificate comes from the demo's own CA
            settings["tls_trust"] = [str(self.tls.ca_file)]
        doc = {
            "version": 1,
            "settings": settings,
            "units": [
                {
                    "id": unit_id,
                    "name": unit_name,
                    "hosts": hosts,
                    "web": web,
                    "stores": [
                        {"id": st.id, "kind": "local", "location": str(st.path), "networked": True}
                        for st in self.stores
                    ],
                },
            ],
        }
        yaml = YAML(typ="rt")  # keeps the key order above, for a readable file
        buf = StringIO()
        buf.write(
            "# Assay demo unit: services started by `assay demo` on loopback.\n"
            "# Valid only while that demo runs (its addresses and ports change every time).\n"
        )
        yaml.dump(doc, buf)
        return buf.getvalue()
