"""SSH server audit without logging in: banner, KEXINIT, host keys, offered login methods.

What an unauthenticated client can learn, and how:

- the identification line and the server's KEXINIT (every algorithm list, the strict-kex
  marker) are read with Assay's own parser (`scanner.sshwire`), whose limits make a hostile
  server cost a bounded number of bytes and seconds;
- each host key, by running the key exchange once per offered host-key algorithm up to the
  server's KEX reply (which is sent in the clear and carries the host key). Assay never sends
  NEWKEYS: no session keys are derived and nothing is encrypted, so any algorithm the server
  offers can be examined, including ones modern clients refuse;
- the login methods and the pre-login banner, with paramiko: one `none` authentication
  attempt (the server answers with the methods it allows) after a normal key exchange.

Connections run in parallel, at most `MAX_PARALLEL` at a time (OpenSSH's MaxStartups drops
unauthenticated connections beyond 10 by default) and all within `SIDE_BUDGET` seconds, so the
collector finishes inside its own timeout. A step that fails is recorded in the facts with its
reason; what the other steps gathered is kept.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import socket
import struct
import time
from dataclasses import dataclass

from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from pydantic import BaseModel, ConfigDict, Field

from scanner import sshwire as w
from scanner.model import Facts, Target, TargetKind
from scanner.plugins import CollectContext, Collector

SSH_PORT = 22
CLIENT_IDENT = b"SSH-2.0-Assay_audit\r\n"
AUTH_PROBE_USER = "assay-audit"  # a user that should not exist; OpenSSH lists methods anyway
MAX_PARALLEL = 4
SIDE_BUDGET = 20.0  # seconds for host keys and the login probe together
MAX_SKIPPED = 32  # IGNORE/DEBUG messages tolerated while waiting for one message
BANNER_LIMIT = 4096  # characters of the pre-login banner kept
UNIDENTIFIED = frozenset({"", "unknown", "tcpwrapped"})

# Key exchanges Assay can run up to the KEX reply, best first. Only needed to obtain the host
# key, so speed and breadth matter more than strength.
CLIENT_KEX: tuple[str, ...] = (
    "curve25519-sha256",
    "curve25519-sha256@libssh.org",
    "ecdh-sha2-nistp256",
    "ecdh-sha2-nistp384",
    "ecdh-sha2-nistp521",
    "diffie-hellman-group14-sha256",
    "diffie-hellman-group-exchange-sha256",
    "diffie-hellman-group14-sha1",
    "diffie-hellman-group-exchange-sha1",
    "diffie-hellman-group1-sha1",
)
_CURVES: dict[str, ec.EllipticCurve] = {
    "ecdh-sha2-nistp256": ec.SECP256R1(),
    "ecdh-sha2-nistp384": ec.SECP384R1(),
    "ecdh-sha2-nistp521": ec.SECP521R1(),
}


class SshProbeError(Exception):
    """The server could not be audited: unreachable, silent, or not speaking SSH."""


class SshHostKeyFacts(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    algorithm: str  # the host-key algorithm that was negotiated to obtain it
    key_type: str
    family: str  # rsa, dsa, ecdsa, ed25519, ed448, unknown
    bits: int
    curve: str = ""
    fingerprint: str  # SHA256:... as ssh-keygen -lf prints it
    certificate: bool = False
    rsa_exponent: int = 0
    signature_algorithm: str = ""  # what the server signed the exchange with
    kex: str = ""  # the key exchange used to obtain it


class SshFacts(Facts):
    address: str
    port: int
    identification: str
    protocol: str
    software: str
    comments: str = ""
    pre_ident_lines: list[str] = Field(default_factory=list)
    kexinit_error: str = ""  # why the algorithm lists are missing
    kex: list[str] = Field(default_factory=list)
    host_key_algorithms: list[str] = Field(default_factory=list)
    ciphers_c2s: list[str] = Field(default_factory=list)
    ciphers_s2c: list[str] = Field(default_factory=list)
    macs_c2s: list[str] = Field(default_factory=list)
    macs_s2c: list[str] = Field(default_factory=list)
    compression_c2s: list[str] = Field(default_factory=list)
    compression_s2c: list[str] = Field(default_factory=list)
    strict_kex: bool = False
    host_keys: list[SshHostKeyFacts] = Field(default_factory=list)
    host_key_errors: dict[str, str] = Field(default_factory=dict)  # algorithm -> reason
    auth_methods: list[str] | None = None  # None: the login probe failed (auth_error)
    auth_none_accepted: bool = False  # the server let the probe in without any credential
    auth_error: str = ""
    prelogin_banner: str = ""
    prelogin_banner_truncated: bool = False
    errors: list[str] = Field(default_factory=list)

    @property
    def ciphers(self) -> list[str]:
        return list(dict.fromkeys(self.ciphers_s2c + self.ciphers_c2s))

    @property
    def macs(self) -> list[str]:
        return list(dict.fromkeys(self.macs_s2c + self.macs_c2s))


# -- one connection ------------------------------------------------------------------------------
class SshConnection:
    """One TCP connection speaking the unencrypted part of the SSH transport."""

    def __init__(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, where: str, t: float
    ) -> None:
        self.reader, self.writer, self.where, self.timeout = reader, writer, where, t
        self.buf = b""

    @classmethod
    async def open(cls, address: str, port: int, timeout: float) -> SshConnection:
        where = f"ssh {address}:{port}"
        try:
            reader, writer = await asyncio.wait_for(asyncio.open_connection(address, port), timeout)
        except TimeoutError:
            raise SshProbeError(
                f"{where}: connection not established within {timeout:g}s"
            ) from None
        except OSError as exc:
            raise SshProbeError(f"{where}: cannot connect: {exc.strerror or exc}") from None
        return cls(reader, writer, where, timeout)

    async def _more(self, n: int, what: str) -> None:
        try:
            async with asyncio.timeout(self.timeout):
                chunk = await self.reader.read(max(1, n))
        except TimeoutError:
            got = f" after {len(self.buf)} bytes" if self.buf else ""
            raise SshProbeError(f"{self.where}: no {what} within {self.timeout:g}s{got}") from None
        except OSError as exc:
            raise SshProbeError(f"{self.where}: read failed during {what}: {exc}") from None
        if not chunk:
            raise SshProbeError(f"{self.where}: connection closed by the server during {what}")
        self.buf += chunk

    async def send(self, data: bytes) -> None:
        try:
            self.writer.write(data)
            await asyncio.wait_for(self.writer.drain(), self.timeout)
        except (OSError, TimeoutError) as exc:
            raise SshProbeError(f"{self.where}: send failed: {exc or 'timeout'}") from None

    async def identification(self) -> w.Identification:
        """Read the server's identification (the whole phase bounded by one deadline)."""
        deadline = time.monotonic() + self.timeout
        while True:
            try:
                found = w.split_identification(self.buf)
            except w.SshWireError as exc:
                raise SshProbeError(f"{self.where}: {exc}") from None
            if found:
                ident, self.buf = found
                return ident
            if time.monotonic() > deadline:
                raise SshProbeError(
                    f"{self.where}: identification not complete within {self.timeout:g}s"
                )
            await self._more(w.MAX_PRE_BYTES + w.MAX_IDENT - len(self.buf), "identification")

    async def packet(self, what: str) -> bytes:
        """The next payload, reading at most one packet's worth beyond what is buffered."""
        for _ in range(MAX_SKIPPED):
            while True:
                try:
                    found = w.split_packet(self.buf)
                except w.SshWireError as exc:
                    raise SshProbeError(f"{self.where}: {what}: {exc}") from None
                if found:
                    payload, self.buf = found
                    break
                need = 4 - len(self.buf) if len(self.buf) < 4 else 0
                if not need:
                    need = 4 + w.packet_length(self.buf) - len(self.buf)
                await self._more(need, what)
            msg = payload[0]
            if msg == w.MSG_DISCONNECT:
                raise SshProbeError(
                    f"{self.where}: server disconnected during {what}: "
                    f"{w.parse_disconnect(payload)}"
                )
            if msg not in (w.MSG_IGNORE, w.MSG_DEBUG):
                return payload
        raise SshProbeError(f"{self.where}: more than {MAX_SKIPPED} IGNORE/DEBUG messages")

    async def expect(self, msg: int, what: str) -> bytes:
        payload = await self.packet(what)
        if payload[0] != msg:
            raise SshProbeError(f"{self.where}: expected {what} ({msg}), got message {payload[0]}")
        return payload

    async def close(self) -> None:
        self.writer.close()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.writer.wait_closed(), 1.0)


async def handshake(conn: SshConnection) -> tuple[w.Identification, w.KexInit | str]:
    """Identification exchange and the server's KEXINIT (or why it could not be read)."""
    await conn.send(CLIENT_IDENT)
    ident = await conn.identification()
    if ident.proto not in ("2.0", "1.99"):
        return ident, f"server speaks SSH protocol {ident.proto} only (SSH-1 is obsolete)"
    try:
        payload = await conn.expect(w.MSG_KEXINIT, "KEXINIT")
        return ident, w.parse_kexinit(payload)
    except (SshProbeError, w.SshWireError) as exc:
        return ident, str(exc) if isinstance(exc, SshProbeError) else f"{conn.where}: {exc}"


def choose_kex(offered: tuple[str, ...] | list[str]) -> str | None:
    return next((k for k in CLIENT_KEX if k in offered), None)


async def exchange(conn: SshConnection, server: w.KexInit, host_key_alg: str) -> SshHostKeyFacts:
    """Run the key exchange with one host-key algorithm up to the server's KEX reply."""
    method = choose_kex(server.kex)
    if method is None:
        raise SshProbeError(
            f"{conn.where}: no key exchange Assay can run is offered ({', '.join(server.kex)})"
        )
    ours = w.KexInit(
        cookie=os.urandom(16),
        kex=(method,),
        host_key=(host_key_alg,),
        ciphers_c2s=server.ciphers_c2s or ("aes128-ctr",),
        ciphers_s2c=server.ciphers_s2c or ("aes128-ctr",),
        macs_c2s=server.macs_c2s or ("hmac-sha2-256",),
        macs_s2c=server.macs_s2c or ("hmac-sha2-256",),
        compression_c2s=server.compression_c2s or ("none",),
        compression_s2c=server.compression_s2c or ("none",),
    )
    await conn.send(w.encode_packet(w.encode_kexinit(ours)))
    what = f"KEX reply for {host_key_alg}"
    try:
        reply = await _run_kex(conn, method, what)
        key = w.parse_host_key(reply.host_key_blob)
    except w.SshWireError as exc:
        raise SshProbeError(f"{conn.where}: {what}: {exc}") from None
    return SshHostKeyFacts(
        algorithm=host_key_alg,
        key_type=key.key_type,
        family=key.family,
        bits=key.bits,
        curve=key.curve,
        fingerprint=key.fingerprint,
        certificate=key.certificate,
        rsa_exponent=key.rsa_exponent,
        signature_algorithm=reply.signature_algorithm,
        kex=method,
    )


async def _run_kex(conn: SshConnection, method: str, what: str) -> w.KexReply:
    if method.startswith("curve25519"):
        x = X25519PrivateKey.generate().public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
        await conn.send(w.encode_packet(bytes([w.MSG_KEX_INIT]) + w.encode_string(x)))
        return w.parse_kex_reply(await conn.expect(w.MSG_KEX_REPLY, what))
    if method in _CURVES:
        point = (
            ec.generate_private_key(_CURVES[method])
            .public_key()
            .public_bytes(Encoding.X962, PublicFormat.UncompressedPoint)
        )
        await conn.send(w.encode_packet(bytes([w.MSG_KEX_INIT]) + w.encode_string(point)))
        return w.parse_kex_reply(await conn.expect(w.MSG_KEX_REPLY, what))
    if method in w.DH_GROUPS:
        p = w.DH_GROUPS[method]
        e = pow(2, secrets.randbelow(p - 3) + 2, p)
        await conn.send(w.encode_packet(bytes([w.MSG_KEX_INIT]) + w.encode_mpint(e)))
        return w.parse_kex_reply(await conn.expect(w.MSG_KEX_REPLY, what))
    # diffie-hellman-group-exchange-*: ask for a group, then the ordinary exchange in it
    request = struct.pack(">BIII", w.MSG_GEX_REQUEST, 1024, 3072, 8192)
    await conn.send(w.encode_packet(request))
    p, g = w.parse_gex_group(await conn.expect(w.MSG_KEX_REPLY, "DH GEX group"))
    e = pow(g, secrets.randbelow(p - 3) + 2, p)
    await conn.send(w.encode_packet(bytes([w.MSG_GEX_INIT]) + w.encode_mpint(e)))
    return w.parse_kex_reply(await conn.expect(w.MSG_GEX_REPLY, what), w.MSG_GEX_REPLY)


# -- the login-method probe (paramiko, in a thread) ---------------------------------------------
@dataclass(frozen=True)
class AuthProbe:
    methods: list[str] | None
    none_accepted: bool = False
    banner: str = ""
    banner_truncated: bool = False
    error: str = ""


def probe_auth(address: str, port: int, timeout: float, user: str = AUTH_PROBE_USER) -> AuthProbe:
    """One `none` userauth request after a normal key exchange; the allowed methods and banner.

    paramiko's timeouts (connect, banner, handshake, auth) each bound one step, so the thread
    always ends. Host keys are not verified here: nothing secret is sent.
    """
    import paramiko  # only needed for this probe; keeps the wire parser import light

    where = f"ssh {address}:{port}"
    try:
        sock = socket.create_connection((address, port), timeout=timeout)
    except OSError as exc:
        return AuthProbe(None, error=f"{where}: login probe cannot connect: {exc}")
    transport = paramiko.Transport(sock)
    transport.banner_timeout = timeout
    transport.handshake_timeout = timeout
    transport.auth_timeout = timeout
    try:
        transport.start_client(timeout=timeout)
        methods: list[str]
        accepted = False
        try:
            transport.auth_none(user)
            methods, accepted = ["none"], True
        except paramiko.BadAuthenticationType as exc:
            methods = [str(m) for m in exc.allowed_types]
        raw = transport.get_banner() or b""
        text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(raw)
        return AuthProbe(
            methods,
            accepted,
            _clean_banner(text[:BANNER_LIMIT]),
            len(text) > BANNER_LIMIT,
        )
    except (paramiko.SSHException, OSError, EOFError) as exc:
        reason = str(exc) or type(exc).__name__
        return AuthProbe(None, error=f"{where}: login probe failed: {reason}")
    finally:
        transport.close()
        sock.close()


def _clean_banner(text: str) -> str:
    """Keep line breaks and printable characters (any script); drop other controls."""
    return "".join(c if c.isprintable() or c in "\n\t" else " " for c in text.replace("\r", ""))


# -- the collector ----------------------------------------------------------------------------
class SshCollector(Collector):
    """Audits one SSH service: one parsed handshake, then host keys and login methods."""

    id = "service.ssh"
    target_kind = TargetKind.SERVICE
    facts_model = SshFacts
    timeout = 30.0

    def applies(self, target: Target) -> bool:
        if target.kind is not TargetKind.SERVICE or target.protocol != "tcp":
            return False
        info = target.service
        if info and info.tunnel == "ssl":
            return False
        name = (info.name if info else "").lower()
        if info and (info.product.startswith("SSH-") or info.extrainfo.startswith("SSH-")):
            return True
        if name and name not in UNIDENTIFIED:
            return name == "ssh" or name.startswith("ssh")
        return target.port == SSH_PORT

    async def collect(self, target: Target, ctx: CollectContext) -> SshFacts:
        address, port = target.address or "", target.port or SSH_PORT
        ctx.scope.ensure_address(address)
        t = ctx.probe_timeout
        conn = await SshConnection.open(address, port, t)
        try:
            ident, kexinit = await handshake(conn)
        except BaseException:
            await conn.close()
            raise
        facts = SshFacts(
            address=address,
            port=port,
            identification=ident.line,
            protocol=ident.proto,
            software=w.printable(ident.software.encode("latin-1"), 200),
            comments=ident.comments,
            pre_ident_lines=list(ident.pre_lines[:10]),
        )
        if isinstance(kexinit, str):
            await conn.close()
            facts.kexinit_error = kexinit
            facts.auth_error = "not probed: the handshake did not get past KEXINIT"
            return facts
        _fill_lists(facts, kexinit)
        await self._gather(facts, conn, kexinit, address, port, t)
        return facts

    async def _gather(
        self,
        facts: SshFacts,
        first: SshConnection,
        kexinit: w.KexInit,
        address: str,
        port: int,
        t: float,
    ) -> None:
        gate = asyncio.Semaphore(MAX_PARALLEL)
        algorithms = list(dict.fromkeys(kexinit.host_key))

        async def on_first(alg: str) -> SshHostKeyFacts:
            try:
                async with gate:
                    return await exchange(first, kexinit, alg)
            finally:
                await first.close()

        async def fresh(alg: str) -> SshHostKeyFacts:
            async with gate:
                conn = await SshConnection.open(address, port, t)
                try:
                    _, server = await handshake(conn)
                    if isinstance(server, str):
                        raise SshProbeError(server)
                    return await exchange(conn, server, alg)
                finally:
                    await conn.close()

        async def auth() -> AuthProbe:
            async with gate:
                return await asyncio.to_thread(probe_auth, address, port, t)

        jobs: dict[str, asyncio.Task[object]] = {"(login probe)": asyncio.create_task(auth())}
        for i, alg in enumerate(algorithms):
            jobs[alg] = asyncio.create_task(on_first(alg) if i == 0 else fresh(alg))
        if not algorithms:
            await first.close()
        _done, pending = await asyncio.wait(jobs.values(), timeout=SIDE_BUDGET)
        for task in pending:
            task.cancel()
        for name, task in jobs.items():
            if task in pending:
                reason = f"not finished within the budget of {SIDE_BUDGET:g}s"
            elif task.exception() is not None:
                exc = task.exception()
                reason = str(exc) or type(exc).__name__
            else:
                reason = ""
            if name == "(login probe)":
                self._auth_facts(facts, task, reason)
            elif reason:
                facts.host_key_errors[name] = reason
            else:
                result = task.result()
                assert isinstance(result, SshHostKeyFacts)
                facts.host_keys.append(result)
        if pending:
            await asyncio.wait(pending, timeout=1.0)

    @staticmethod
    def _auth_facts(facts: SshFacts, task: asyncio.Task[object], reason: str) -> None:
        if reason:
            facts.auth_error = reason
            return
        probe = task.result()
        assert isinstance(probe, AuthProbe)
        facts.auth_methods = probe.methods
        facts.auth_none_accepted = probe.none_accepted
        facts.auth_error = probe.error
        facts.prelogin_banner = probe.banner
        facts.prelogin_banner_truncated = probe.banner_truncated


def _fill_lists(facts: SshFacts, k: w.KexInit) -> None:
    facts.kex = list(k.kex)
    facts.host_key_algorithms = list(k.host_key)
    facts.ciphers_c2s, facts.ciphers_s2c = list(k.ciphers_c2s), list(k.ciphers_s2c)
    facts.macs_c2s, facts.macs_s2c = list(k.macs_c2s), list(k.macs_s2c)
    facts.compression_c2s = list(k.compression_c2s)
    facts.compression_s2c = list(k.compression_s2c)
    facts.strict_kex = k.strict_kex
