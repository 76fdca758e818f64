"""SSH server audit without logging in: banner, KEXINIT, host keys, offered login methods.

What an unauthenticated client can learn, and how:

- the identification line and the server's KEXINIT (every algorithm list, the strict-kex
  marker) are read with Assay's own parser (`scanner.sshwire`), whose limits make a hostile
  server cost a bounded number of bytes and seconds;
- each host key, by running the key exchange once per offered host-key algorithm up to the
  server's KEX reply, which is sent in the clear and carries the host key. These connections
  never send NEWKEYS, so any algorithm the server offers can be examined, including ones
  modern clients refuse;
- the login methods and the pre-login banner, on the first connection: its key exchange is
  finished (`scanner.sshtransport` derives the keys and speaks AES-GCM, ChaCha20-Poly1305 or
  AES-CTR with HMAC), then one `none` authentication request is sent, which the server
  answers with the methods it allows (and first its Banner, if one is configured). Nothing
  secret is sent, so the host key is reported, not verified.

Connections run in parallel, at most `MAX_PARALLEL` at a time (OpenSSH's MaxStartups drops
unauthenticated connections beyond 10 by default) and all within `side_budget()` (at most
`SIDE_BUDGET` seconds), so the collector finishes inside its own timeout; every read has the
probe timeout, every packet twice that. A step that fails is recorded in the facts with its
reason; what the other steps gathered is kept.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import struct
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from pydantic import BaseModel, ConfigDict

from scanner import sshtransport as st
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
RSA_SIGNATURES = ("ssh-rsa", "rsa-sha2-512", "rsa-sha2-256")
GEX_SIZES = (1024, 3072, 8192)  # min, preferred, max bits asked of a group-exchange server
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
    pre_ident_lines: list[str] = []
    kexinit_error: str = ""  # why the algorithm lists are missing
    kex: list[str] = []
    host_key_algorithms: list[str] = []
    ciphers_c2s: list[str] = []
    ciphers_s2c: list[str] = []
    macs_c2s: list[str] = []
    macs_s2c: list[str] = []
    compression_c2s: list[str] = []
    compression_s2c: list[str] = []
    strict_kex: bool = False
    gex_modulus_bits: int = 0  # group a group-exchange server gave for a 1024-bit request
    host_keys: list[SshHostKeyFacts] = []
    host_key_errors: dict[str, str] = {}  # algorithm -> reason
    auth_methods: list[str] | None = None  # None: the login probe failed (auth_error)
    auth_none_accepted: bool = False  # the server let the probe in without any credential
    auth_error: str = ""
    prelogin_banner: str = ""
    prelogin_banner_truncated: bool = False
    errors: list[str] = []

    @property
    def ciphers(self) -> list[str]:
        return list(dict.fromkeys(self.ciphers_s2c + self.ciphers_c2s))

    @property
    def macs(self) -> list[str]:
        return list(dict.fromkeys(self.macs_s2c + self.macs_c2s))


# -- one connection ------------------------------------------------------------------------------
class SshConnection:
    """One TCP connection: the identification, then packets (clear, or protected after NEWKEYS).

    Sequence numbers are counted from the first packet in each direction, as the MACs and
    ChaCha20 nonces of the encrypted transport need them.
    """

    def __init__(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, where: str, t: float
    ) -> None:
        self.reader, self.writer, self.where, self.timeout = reader, writer, where, t
        self.buf = b""
        self.seq_out = self.seq_in = 0
        self.out: st.Direction | None = None
        self.inn: st.Direction | None = None

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

    async def _fill(self, n: int, what: str) -> None:
        while len(self.buf) < n:
            await self._more(n - len(self.buf), what)

    async def send(self, data: bytes) -> None:
        try:
            self.writer.write(data)
            await asyncio.wait_for(self.writer.drain(), self.timeout)
        except (OSError, TimeoutError) as exc:
            raise SshProbeError(f"{self.where}: send failed: {exc or 'timeout'}") from None

    async def send_packet(self, payload: bytes) -> None:
        if self.out is not None:
            data = self.out.seal(payload)
        else:
            data = w.encode_packet(payload)
            self.seq_out += 1
        await self.send(data)

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

    async def _clear_packet(self, what: str) -> bytes:
        await self._fill(4, what)
        total = 4 + w.packet_length(self.buf)
        await self._fill(total, what)
        payload = w.decode_packet(self.buf[4:total])
        self.buf = self.buf[total:]
        self.seq_in += 1
        return payload

    async def _protected_packet(self, what: str) -> bytes:
        inn = self.inn
        assert inn is not None
        head = inn.head_size()
        await self._fill(head, what)
        length, clear_head = inn.length(self.buf[:head])
        if length > w.MAX_PACKET or length < 5:
            raise w.SshWireError(f"encrypted packet of {length} bytes refused")
        total = 4 + length + inn.tag_size()
        await self._fill(total, what)
        payload = inn.open(self.buf[:total], clear_head)
        self.buf = self.buf[total:]
        return payload

    async def packet(self, what: str) -> bytes:
        """The next payload, reading at most one packet's worth beyond what is buffered."""
        for _ in range(MAX_SKIPPED):
            try:
                # one deadline for the whole packet: a server dripping a byte at a time
                # cannot stretch it by answering just inside each read's timeout
                async with asyncio.timeout(2 * self.timeout):
                    if self.inn is None:
                        payload = await self._clear_packet(what)
                    else:
                        payload = await self._protected_packet(what)
            except TimeoutError:
                raise SshProbeError(
                    f"{self.where}: {what} not complete within {2 * self.timeout:g}s "
                    f"({len(self.buf)} bytes arrived)"
                ) from None
            except w.SshWireError as exc:
                raise SshProbeError(f"{self.where}: {what}: {exc}") from None
            msg = payload[0]
            if msg == w.MSG_DISCONNECT:
                raise SshProbeError(
                    f"{self.where}: server disconnected during {what}: "
                    f"{w.parse_disconnect(payload)}"
                )
            if msg not in (w.MSG_IGNORE, w.MSG_DEBUG, w.MSG_EXT_INFO):
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


@dataclass(frozen=True)
class Handshake:
    ident: w.Identification
    kexinit: w.KexInit | str  # or why it could not be read
    kexinit_payload: bytes = b""


async def handshake(conn: SshConnection) -> Handshake:
    """Identification exchange and the server's KEXINIT (or why it could not be read)."""
    await conn.send(CLIENT_IDENT)
    ident = await conn.identification()
    if ident.proto not in ("2.0", "1.99"):
        return Handshake(
            ident, f"server speaks SSH protocol {ident.proto} only (SSH-1 is obsolete)"
        )
    try:
        payload = await conn.expect(w.MSG_KEXINIT, "KEXINIT")
        return Handshake(ident, w.parse_kexinit(payload), payload)
    except (SshProbeError, w.SshWireError) as exc:
        return Handshake(
            ident, str(exc) if isinstance(exc, SshProbeError) else f"{conn.where}: {exc}"
        )


def choose_kex(offered: tuple[str, ...] | list[str]) -> str | None:
    return next((k for k in CLIENT_KEX if k in offered), None)


@dataclass(frozen=True)
class Protection:
    """The cipher and MAC the login probe asks for (None: nothing Assay can speak is offered)."""

    cipher: str
    mac: str


def choose_protection(server: w.KexInit) -> Protection | None:
    both = [c for c in server.ciphers_c2s if c in server.ciphers_s2c]
    cipher = st.choose(tuple(st.CIPHERS), both)
    if cipher is None:
        return None
    if cipher in st.AEAD:
        return Protection(cipher, "")
    macs = [m for m in server.macs_c2s if m in server.macs_s2c]
    mac = st.choose(tuple(st.MACS), macs)
    return Protection(cipher, mac) if mac else None


@dataclass
class Exchange:
    """One finished key exchange: the host key, and what deriving session keys needs."""

    host_key: SshHostKeyFacts
    method: str
    secret: Callable[[], bytes]  # K as an mpint (computed only when the session is used)
    hashed: Callable[[bytes], bytes]  # H, given K


def client_kexinit(
    server: w.KexInit, method: str, host_key_alg: str, protection: Protection | None
) -> w.KexInit:
    """Our KEXINIT: exactly one key exchange and host-key algorithm, so the server's choice
    is known; the server's own cipher lists when only the KEX reply is wanted."""
    if protection is None:  # only the host key is wanted: accept whatever the server offers
        c2s, s2c = server.ciphers_c2s, server.ciphers_s2c
        m2s, m2c = server.macs_c2s, server.macs_s2c
    else:
        c2s = s2c = (protection.cipher,)
        m2s = m2c = (protection.mac,) if protection.mac else server.macs_c2s
    return w.KexInit(
        cookie=os.urandom(16),
        kex=(method,),
        host_key=(host_key_alg,),
        ciphers_c2s=c2s or ("aes128-ctr",),
        ciphers_s2c=s2c or ("aes128-ctr",),
        macs_c2s=m2s or ("hmac-sha2-256",),
        macs_s2c=m2c or server.macs_s2c or ("hmac-sha2-256",),
        compression_c2s=("none",)
        if "none" in server.compression_c2s or not server.compression_c2s
        else server.compression_c2s,
        compression_s2c=("none",)
        if "none" in server.compression_s2c or not server.compression_s2c
        else server.compression_s2c,
    )


async def exchange(
    conn: SshConnection,
    hs: Handshake,
    host_key_alg: str,
    protection: Protection | None = None,
    method: str | None = None,
) -> Exchange:
    """Run the key exchange with one host-key algorithm up to the server's KEX reply.

    `protection` asks for a cipher and MAC the login probe can speak; `method` forces a key
    exchange (tests use it to cover each one); by default the first of CLIENT_KEX offered.
    """
    server = hs.kexinit
    assert isinstance(server, w.KexInit)
    method = method or choose_kex(server.kex)
    if method is None:
        raise SshProbeError(
            f"{conn.where}: no key exchange Assay can run is offered ({', '.join(server.kex)})"
        )
    ours = client_kexinit(server, method, host_key_alg, protection)
    i_c = w.encode_kexinit(ours)
    await conn.send_packet(i_c)
    what = f"KEX reply for {host_key_alg}"
    prefix = (
        w.encode_string(CLIENT_IDENT.rstrip(b"\r\n"))
        + w.encode_string(hs.ident.raw)
        + w.encode_string(i_c)
        + w.encode_string(hs.kexinit_payload)
    )
    try:
        reply, secret, body = await _run_kex(conn, method, what)
        key = w.parse_host_key(reply.host_key_blob)
    except w.SshWireError as exc:
        raise SshProbeError(f"{conn.where}: {what}: {exc}") from None
    hash_fn = st.kex_hash(method)
    facts = SshHostKeyFacts(
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
    k_s = w.encode_string(reply.host_key_blob)
    return Exchange(
        facts,
        method,
        lambda: secret(reply),
        lambda k: hash_fn(prefix + k_s + body(reply) + k).digest(),
    )


Secret = Callable[[w.KexReply], bytes]
Body = Callable[[w.KexReply], bytes]


async def _run_kex(conn: SshConnection, method: str, what: str) -> tuple[w.KexReply, Secret, Body]:
    """Send our half, read the reply; return it with K(reply) and the hashed exchange values."""
    if method.startswith("curve25519"):
        priv = X25519PrivateKey.generate()
        q_c = priv.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
        await conn.send_packet(bytes([w.MSG_KEX_INIT]) + w.encode_string(q_c))
        reply = w.parse_kex_reply(await conn.expect(w.MSG_KEX_REPLY, what))
        return (
            reply,
            lambda r: _mpint_bytes(
                priv.exchange(X25519PublicKey.from_public_bytes(r.server_public))
            ),
            lambda r: w.encode_string(q_c) + w.encode_string(r.server_public),
        )
    if method in _CURVES:
        curve = _CURVES[method]
        ecpriv = ec.generate_private_key(curve)
        q_c = ecpriv.public_key().public_bytes(Encoding.X962, PublicFormat.UncompressedPoint)
        await conn.send_packet(bytes([w.MSG_KEX_INIT]) + w.encode_string(q_c))
        reply = w.parse_kex_reply(await conn.expect(w.MSG_KEX_REPLY, what))
        return (
            reply,
            lambda r: _mpint_bytes(
                ecpriv.exchange(
                    ec.ECDH(), ec.EllipticCurvePublicKey.from_encoded_point(curve, r.server_public)
                )
            ),
            lambda r: w.encode_string(q_c) + w.encode_string(r.server_public),
        )
    if method in w.DH_GROUPS:
        p, g, head = w.DH_GROUPS[method], 2, b""
    else:  # diffie-hellman-group-exchange-*: ask for a group first
        request = struct.pack(">BIII", w.MSG_GEX_REQUEST, *GEX_SIZES)
        await conn.send_packet(request)
        p, g = w.parse_gex_group(await conn.expect(w.MSG_KEX_REPLY, "DH GEX group"))
        head = struct.pack(">III", *GEX_SIZES) + w.encode_mpint(p) + w.encode_mpint(g)
    x = secrets.randbelow(p - 3) + 2
    e = pow(g, x, p)
    if method in w.DH_GROUPS:
        await conn.send_packet(bytes([w.MSG_KEX_INIT]) + w.encode_mpint(e))
        reply = w.parse_kex_reply(await conn.expect(w.MSG_KEX_REPLY, what))
    else:
        await conn.send_packet(bytes([w.MSG_GEX_INIT]) + w.encode_mpint(e))
        reply = w.parse_kex_reply(await conn.expect(w.MSG_GEX_REPLY, what), w.MSG_GEX_REPLY)

    def f_of(r: w.KexReply) -> int:
        f = int.from_bytes(r.server_public, "big", signed=True)
        if not 1 < f < p - 1:
            raise SshProbeError(f"{conn.where}: server's DH value is out of range")
        return f

    return (
        reply,
        lambda r: w.encode_mpint(pow(f_of(r), x, p)),
        lambda r: head + w.encode_mpint(e) + w.encode_string(r.server_public),
    )


def _mpint_bytes(shared: bytes) -> bytes:
    return w.encode_mpint(int.from_bytes(shared, "big"))


async def probe_gex(address: str, port: int, t: float, method: str) -> int:
    """Bits of the group a group-exchange server picks when asked for 1024 (min 1024).

    A server whose moduli file still has 1024-bit groups hands them out (Logjam-class
    precomputation); OpenSSH's own floor is 2048 bits.
    """
    conn = await SshConnection.open(address, port, t)
    try:
        hs = await handshake(conn)
        if isinstance(hs.kexinit, str):
            raise SshProbeError(hs.kexinit)
        alg = hs.kexinit.host_key[0] if hs.kexinit.host_key else "ssh-ed25519"
        await conn.send_packet(w.encode_kexinit(client_kexinit(hs.kexinit, method, alg, None)))
        await conn.send_packet(struct.pack(">BIII", w.MSG_GEX_REQUEST, 1024, 1024, 8192))
        try:
            p, _ = w.parse_gex_group(await conn.expect(w.MSG_KEX_REPLY, "DH GEX group"))
        except w.SshWireError as exc:
            raise SshProbeError(f"{conn.where}: DH GEX group: {exc}") from None
        return p.bit_length()
    finally:
        await conn.close()


# -- the login-method probe ----------------------------------------------------------------------
@dataclass(frozen=True)
class AuthProbe:
    methods: list[str] | None
    none_accepted: bool = False
    banner: str = ""
    banner_truncated: bool = False
    error: str = ""


async def probe_auth(
    conn: SshConnection, ex: Exchange, protection: Protection, user: str = AUTH_PROBE_USER
) -> AuthProbe:
    """Finish the exchange (NEWKEYS), then one `none` userauth request: methods and banner."""
    try:
        k = ex.secret()
    except (ValueError, SshProbeError) as exc:
        raise SshProbeError(
            f"{conn.where}: the server's key-exchange value is invalid: {exc}"
        ) from None
    h = ex.hashed(k)
    await conn.send_packet(bytes([w.MSG_NEWKEYS]))
    await conn.expect(w.MSG_NEWKEYS, "NEWKEYS")
    conn.out, conn.inn = st.directions(
        ex.method, k, h, protection.cipher, protection.mac, conn.seq_out, conn.seq_in
    )
    await conn.send_packet(bytes([w.MSG_SERVICE_REQUEST]) + w.encode_string("ssh-userauth"))
    await conn.expect(w.MSG_SERVICE_ACCEPT, "SERVICE_ACCEPT")
    await conn.send_packet(
        bytes([w.MSG_USERAUTH_REQUEST])
        + w.encode_string(user)
        + w.encode_string("ssh-connection")
        + w.encode_string("none")
    )
    banner = ""
    for _ in range(MAX_SKIPPED):
        payload = await conn.packet("reply to the none authentication")
        r = w.Reader(payload, "userauth reply")
        msg = r.byte("message number")
        try:
            if msg == w.MSG_USERAUTH_BANNER:
                banner += r.string("banner", w.MAX_PACKET).decode("utf-8", "replace")
                continue
            if msg == w.MSG_USERAUTH_FAILURE:
                methods = list(r.name_list("authentications that can continue"))
            elif msg == w.MSG_USERAUTH_SUCCESS:
                methods = ["none"]
            else:
                raise SshProbeError(f"{conn.where}: unexpected message {msg} after userauth none")
        except w.SshWireError as exc:
            raise SshProbeError(f"{conn.where}: {exc}") from None
        return AuthProbe(
            methods,
            msg == w.MSG_USERAUTH_SUCCESS,
            _clean_banner(banner[:BANNER_LIMIT]),
            len(banner) > BANNER_LIMIT,
        )
    raise SshProbeError(f"{conn.where}: more than {MAX_SKIPPED} banners without an answer")


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
            hs = await handshake(conn)
        except BaseException:
            await conn.close()
            raise
        ident = hs.ident
        facts = SshFacts(
            address=address,
            port=port,
            identification=ident.line,
            protocol=ident.proto,
            software=w.printable(ident.software.encode("latin-1"), 200),
            comments=ident.comments,
            pre_ident_lines=list(ident.pre_lines[:10]),
        )
        if isinstance(hs.kexinit, str):
            await conn.close()
            facts.kexinit_error = hs.kexinit
            facts.auth_error = "not probed: the handshake did not get past KEXINIT"
            return facts
        _fill_lists(facts, hs.kexinit)
        await self._gather(facts, conn, hs, address, port, t)
        return facts

    async def _gather(
        self,
        facts: SshFacts,
        first: SshConnection,
        hs: Handshake,
        address: str,
        port: int,
        t: float,
    ) -> None:
        """The first connection goes on to the login probe; every other host key gets a
        connection of its own (at most MAX_PARALLEL at a time)."""
        assert isinstance(hs.kexinit, w.KexInit)
        gate = asyncio.Semaphore(MAX_PARALLEL)
        plan = fetch_plan(hs.kexinit.host_key)
        protection = choose_protection(hs.kexinit)
        first_key: list[SshHostKeyFacts] = []

        async def login() -> AuthProbe:
            try:
                async with gate:
                    if not plan:
                        raise SshProbeError(f"{first.where}: no host-key algorithm is offered")
                    ex = await exchange(first, hs, plan[0][0], protection)
                    first_key.append(ex.host_key)
                    if protection is None:
                        raise SshProbeError(
                            f"{first.where}: login methods not probed: no cipher and MAC "
                            f"Assay can speak is offered ({', '.join(facts.ciphers)})"
                        )
                    return await probe_auth(first, ex, protection)
            finally:
                await first.close()

        async def fresh(alg: str) -> SshHostKeyFacts:
            async with gate:
                conn = await SshConnection.open(address, port, t)
                try:
                    other = await handshake(conn)
                    if isinstance(other.kexinit, str):
                        raise SshProbeError(other.kexinit)
                    return (await exchange(conn, other, alg)).host_key
                finally:
                    await conn.close()

        login_task: asyncio.Task[Any] = asyncio.create_task(login())
        jobs: list[tuple[asyncio.Task[Any], list[str]]] = [(login_task, plan[0][1] if plan else [])]
        jobs += [(asyncio.create_task(fresh(alg)), covers) for alg, covers in plan[1:]]
        gex = next((k for k in CLIENT_KEX if "group-exchange" in k and k in hs.kexinit.kex), None)

        async def gated_gex(method: str) -> int:
            async with gate:
                return await probe_gex(address, port, t, method)

        gex_task = asyncio.create_task(gated_gex(gex)) if gex else None
        if gex_task:
            jobs.append((gex_task, []))
        budget = side_budget(t)
        _done, pending = await asyncio.wait([j for j, _ in jobs], timeout=budget)
        for task, covers in jobs:
            reason = _failure(task, budget)
            if task is gex_task:
                if reason:
                    facts.errors.append(f"group-exchange size probe: {reason}")
                else:
                    facts.gex_modulus_bits = task.result()
                continue
            if task is login_task:
                self._auth_facts(facts, task, reason)
                key: SshHostKeyFacts | None = first_key[0] if first_key else None
            else:
                key = None if reason else task.result()
            for alg in covers:
                if key is None:
                    facts.host_key_errors[alg] = reason
                elif alg == key.algorithm:
                    facts.host_keys.append(key)
                else:  # the same key, answering for a sibling signature algorithm
                    facts.host_keys.append(
                        key.model_copy(update={"algorithm": alg, "signature_algorithm": ""})
                    )
        if pending:
            await asyncio.wait(pending, timeout=1.0)

    @staticmethod
    def _auth_facts(facts: SshFacts, task: asyncio.Task[Any], reason: str) -> None:
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


def fetch_plan(offered: tuple[str, ...] | list[str]) -> list[tuple[str, list[str]]]:
    """Which host-key algorithms to run an exchange for, and the offered ones each answers.

    The three RSA signature algorithms use the server's one RSA key (OpenSSH, Dropbear and
    libssh keep one key per type), so it is fetched once, with ssh-rsa when offered (that
    exchange also shows whether the server really signs with SHA-1). Certificates and every
    other type get their own exchange.
    """
    algs = list(dict.fromkeys(offered))
    rsa = [a for a in algs if a in RSA_SIGNATURES]
    plan: list[tuple[str, list[str]]] = []
    for alg in algs:
        if alg in RSA_SIGNATURES:
            if alg == rsa[0]:
                plan.append(("ssh-rsa" if "ssh-rsa" in rsa else alg, rsa))
        else:
            plan.append((alg, [alg]))
    return plan


def side_budget(probe_timeout: float) -> float:
    """Seconds for the host keys and the login probe together: a few steps of one timeout
    each, capped so the collector ends well inside its own timeout."""
    return min(SIDE_BUDGET, max(2.0, 6 * probe_timeout))


def _failure(task: asyncio.Task[Any], budget: float) -> str:
    """Why a side task gave nothing ("" when it has a result)."""
    if not task.done():
        task.cancel()
        return f"not finished within the budget of {budget:g}s"
    if task.cancelled():
        return "cancelled"
    exc = task.exception()
    if exc is not None:
        return str(exc) or type(exc).__name__
    return ""


def _fill_lists(facts: SshFacts, k: w.KexInit) -> None:
    facts.kex = list(k.kex)
    facts.host_key_algorithms = list(k.host_key)
    facts.ciphers_c2s, facts.ciphers_s2c = list(k.ciphers_c2s), list(k.ciphers_s2c)
    facts.macs_c2s, facts.macs_s2c = list(k.macs_c2s), list(k.macs_s2c)
    facts.compression_c2s = list(k.compression_c2s)
    facts.compression_s2c = list(k.compression_s2c)
    facts.strict_kex = k.strict_kex
