"""SSH audit against scripted servers: faults a real sshd cannot be made to produce.

No strict-kex marker (Terrapin), a 1 MB banner, truncated and oversized KEXINITs, a close in
the middle of the handshake, a disconnect, silence. Each must cost bounded time and memory and
give an error naming what broke, while every fact gathered before the fault is kept.
"""

from __future__ import annotations

import asyncio
import os
import socket
import struct
import threading
from collections.abc import Callable, Iterator

import pytest

from checks.ssh.auth import PasswordAuth
from checks.ssh.banner import BannerPrelogin, BannerVersion
from checks.ssh.crypto import KexWeak
from checks.ssh.hostkey import HostKeyWeak
from checks.ssh.terrapin import Terrapin
from scanner import sshwire as w
from scanner.collectors.ssh import SshCollector, SshConnection, SshFacts, SshProbeError
from scanner.model import ServiceInfo, Severity, Status, Target, TargetKind
from scanner.plugins import CollectContext, FactsView
from tests.helpers import evaluate, guard_for, pick_loopback, statuses
from tests.servers_redis import ScriptedServer, silent

Handler = Callable[[socket.socket, threading.Event], None]
COLLECTOR = SshCollector()
ED25519_PUB = bytes(range(32))
ED25519_BLOB = w.encode_string("ssh-ed25519") + w.encode_string(ED25519_PUB)


def kexinit(
    kex: tuple[str, ...] = ("curve25519-sha256", "curve25519-sha256@libssh.org"),
    ciphers: tuple[str, ...] = ("chacha20-poly1305@openssh.com", "aes128-ctr"),
    macs: tuple[str, ...] = ("hmac-sha2-256-etm@openssh.com",),
) -> bytes:
    return w.encode_kexinit(
        w.KexInit(
            cookie=os.urandom(16),
            kex=kex,
            host_key=("ssh-ed25519",),
            ciphers_c2s=ciphers,
            ciphers_s2c=ciphers,
            macs_c2s=macs,
            macs_s2c=macs,
            compression_c2s=("none",),
            compression_s2c=("none",),
        )
    )


def _read_client(conn: socket.socket, packets: int) -> bool:
    """Read the client's identification and `packets` packets (False if it went away)."""
    buf = b""
    while b"\n" not in buf:
        chunk = conn.recv(4096)
        if not chunk:
            return False
        buf += chunk
    buf = buf.split(b"\n", 1)[1]
    for _ in range(packets):
        while (found := w.split_packet(buf)) is None:
            chunk = conn.recv(4096)
            if not chunk:
                return False
            buf += chunk
        buf = found[1]
    return True


def fake_sshd(
    ident: bytes = b"SSH-2.0-OpenSSH_9.5 Ubuntu-3ubuntu13\r\n",
    first: bytes | None = None,
    answer_kex: bool = True,
    after: str = "hold",
) -> Handler:
    """Identification, then `first` (a raw packet; default a KEXINIT without strict kex), then
    a KEX reply with a made-up Ed25519 host key (its signature is not valid, which only a
    client that finishes the handshake notices)."""
    payload = w.encode_packet(kexinit()) if first is None else first

    def handler(conn: socket.socket, stop: threading.Event) -> None:
        conn.sendall(ident)
        if not payload:
            _read_client(conn, 0)  # read the client's identification, then close (FIN)
            return
        conn.sendall(payload)
        if not _read_client(conn, 2):
            return
        if answer_kex:
            sig = w.encode_string("ssh-ed25519") + w.encode_string(bytes(64))
            reply = (
                bytes([w.MSG_KEX_REPLY])
                + w.encode_string(ED25519_BLOB)
                + w.encode_string(os.urandom(32))
                + w.encode_string(sig)
            )
            conn.sendall(w.encode_packet(reply))
        if after == "garbage":  # NEWKEYS, then bytes that are no valid encrypted packet
            conn.sendall(w.encode_packet(bytes([w.MSG_NEWKEYS])) + os.urandom(256))
        if after in ("hold", "garbage"):
            silent(conn, stop)

    return handler


@pytest.fixture
def server() -> Iterator[Callable[[Handler], ScriptedServer]]:
    started: list[ScriptedServer] = []

    def start(handler: Handler) -> ScriptedServer:
        srv = ScriptedServer(pick_loopback(), handler).__enter__()
        started.append(srv)
        return srv

    yield start
    for srv in started:
        srv.__exit__(None, None, None)


def _target(srv: ScriptedServer) -> Target:
    return Target(
        kind=TargetKind.SERVICE,
        unit="t",
        address=srv.address,
        port=srv.port,
        service=ServiceInfo(name="ssh"),
    )


def _collect(srv: ScriptedServer, timeout: float = 1.0) -> SshFacts:
    ctx = CollectContext(scope=guard_for(srv.address), probe_timeout=timeout)
    return asyncio.run(asyncio.wait_for(COLLECTOR.collect(_target(srv), ctx), 30))


def _view(f: SshFacts) -> FactsView:
    target = Target(kind=TargetKind.SERVICE, unit="t", address=f.address, port=f.port)
    return FactsView(target, {"service.ssh": f})


# -- Terrapin: a server without strict kex -------------------------------------------------------
def test_terrapin_fails_without_strict_kex(server: Callable[[Handler], ScriptedServer]) -> None:
    srv = server(fake_sshd())
    f = _collect(srv)
    assert not f.strict_kex and "chacha20-poly1305@openssh.com" in f.ciphers
    [r] = evaluate(Terrapin(), _view(f))
    assert r.status is Status.FAIL and "ChaCha20-Poly1305" in r.message
    # the host key came from the scripted KEX reply; its fingerprint is the blob's SHA-256
    [key] = f.host_keys
    assert key.family == "ed25519" and key.fingerprint == w.fingerprint_sha256(ED25519_BLOB)
    # the scripted server never finishes the exchange: the login probe is an error, not a pass
    assert f.auth_methods is None and "no NEWKEYS within 1s" in f.auth_error
    [auth] = evaluate(PasswordAuth(), _view(f))
    assert auth.status is Status.ERROR and "login methods are unknown" in auth.message
    assert statuses(BannerPrelogin(), _view(f)) == {Status.NOT_ASSESSED}
    assert statuses(BannerVersion(), _view(f)) == {Status.FAIL}  # Ubuntu-3ubuntu13


def _facts(**lists: list[str]) -> SshFacts:
    base = {
        "address": "127.0.0.2",
        "port": 22,
        "identification": "SSH-2.0-x",
        "protocol": "2.0",
        "software": "x",
        "kex": ["curve25519-sha256"],
    }
    return SshFacts.model_validate({**base, **lists})


@pytest.mark.parametrize(
    ("ciphers", "macs", "strict", "expect", "severity"),
    [
        (["aes128-cbc"], ["hmac-sha2-256-etm@openssh.com"], False, Status.FAIL, None),
        (["aes128-ctr"], ["hmac-sha2-256-etm@openssh.com"], False, Status.FAIL, Severity.LOW),
        (["aes128-ctr", "aes128-gcm@openssh.com"], ["hmac-sha2-256"], False, Status.PASS, None),
        (["chacha20-poly1305@openssh.com"], [], True, Status.PASS, None),
    ],
)
def test_terrapin_modes(
    ciphers: list[str], macs: list[str], strict: bool, expect: Status, severity: Severity | None
) -> None:
    kex = ["curve25519-sha256", *(["kex-strict-s-v00@openssh.com"] if strict else [])]
    f = _facts(ciphers_s2c=ciphers, macs_s2c=macs, kex=kex)
    f.strict_kex = strict
    [r] = evaluate(Terrapin(), _view(f))
    assert r.status is expect and r.severity == severity


def test_small_gex_group_fails_and_replaces_the_pass() -> None:
    f = _facts(kex=["curve25519-sha256", "diffie-hellman-group-exchange-sha256"])
    f.gex_modulus_bits = 1024
    [r] = evaluate(KexWeak(), _view(f))
    assert r.status is Status.FAIL and r.detail == "gex-modulus" and "1024-bit" in r.message


# -- bad input: bounded, an error with the reason, nothing gathered lost -------------------------
def test_one_megabyte_identification_is_refused_after_256_bytes(
    server: Callable[[Handler], ScriptedServer],
) -> None:
    srv = server(fake_sshd(ident=b"SSH-2.0-" + b"A" * (1 << 20), first=b""))

    async def go() -> SshConnection:
        conn = await SshConnection.open(srv.address, srv.port, 2.0)
        with pytest.raises(SshProbeError, match="identification line longer than 255 bytes"):
            await conn.identification()
        await conn.close()
        return conn

    conn = asyncio.run(go())
    assert len(conn.buf) <= w.MAX_PRE_BYTES + w.MAX_IDENT  # memory stayed bounded
    with pytest.raises(SshProbeError, match=rf"ssh {srv.address}:{srv.port}: identification"):
        _collect(srv)


def test_one_megabyte_of_lines_before_the_identification(
    server: Callable[[Handler], ScriptedServer],
) -> None:
    srv = server(fake_sshd(ident=b"hello there\r\n" * 80_000, first=b""))
    with pytest.raises(SshProbeError, match="no SSH identification within 50 lines"):
        _collect(srv)


def test_truncated_kexinit_keeps_the_identification(
    server: Callable[[Handler], ScriptedServer],
) -> None:
    good = kexinit()
    broken = good[:17] + struct.pack(">I", 5000) + good[21:60]  # kex list claims 5000 bytes
    srv = server(fake_sshd(first=w.encode_packet(broken)))
    f = _collect(srv)
    assert "KEXINIT: truncated reading kex_algorithms at byte 21" in f.kexinit_error
    assert f.software == "OpenSSH_9.5" and f.comments == "Ubuntu-3ubuntu13"
    view = _view(f)
    [kex] = evaluate(KexWeak(), view)
    assert kex.status is Status.ERROR and "truncated" in kex.message
    assert statuses(BannerVersion(), view) == {Status.FAIL}  # judged on what was gathered
    assert statuses(PasswordAuth(), view) == {Status.ERROR}


def test_malformed_name_list(server: Callable[[Handler], ScriptedServer]) -> None:
    bad = bytes([w.MSG_KEXINIT]) + os.urandom(16) + w.encode_string(b"curve25519\x00,x")
    srv = server(fake_sshd(first=w.encode_packet(bad)))
    f = _collect(srv)
    assert "kex_algorithms has non-printable bytes" in f.kexinit_error


def test_oversized_packet_is_refused_before_reading_it(
    server: Callable[[Handler], ScriptedServer],
) -> None:
    srv = server(fake_sshd(first=struct.pack(">IB", 0x7FFFFFFF, 4) + b"\x14" * 64))
    f = _collect(srv)
    assert "packet of 2147483647 bytes refused (limit 65536)" in f.kexinit_error


def test_close_mid_handshake(server: Callable[[Handler], ScriptedServer]) -> None:
    srv = server(fake_sshd(first=b""))
    f = _collect(srv)
    assert "connection closed by the server during KEXINIT" in f.kexinit_error
    assert f.identification.startswith("SSH-2.0-OpenSSH_9.5")


def test_close_before_kex_reply(server: Callable[[Handler], ScriptedServer]) -> None:
    srv = server(fake_sshd(answer_kex=False, after="close"))
    f = _collect(srv)
    assert f.kex and f.host_keys == []
    assert (
        "closed by the server during KEX reply for ssh-ed25519" in f.host_key_errors["ssh-ed25519"]
    )
    [r] = evaluate(HostKeyWeak(), _view(f))
    assert r.status is Status.ERROR and "could not be obtained" in r.message
    assert statuses(Terrapin(), _view(f)) == {Status.FAIL}  # the lists were still judged


def test_forged_encrypted_packet_is_rejected(server: Callable[[Handler], ScriptedServer]) -> None:
    srv = server(fake_sshd(after="garbage"))
    f = _collect(srv)
    # the decrypted length of random bytes is refused before anything more is read
    assert "SERVICE_ACCEPT: encrypted packet of" in f.auth_error
    assert "bytes refused" in f.auth_error
    assert f.host_keys and f.kex  # what came before the fault is kept


def test_no_kex_reply_is_bounded_by_the_probe_timeout(
    server: Callable[[Handler], ScriptedServer],
) -> None:
    srv = server(fake_sshd(answer_kex=False))
    f = _collect(srv, timeout=0.5)
    assert "no KEX reply for ssh-ed25519 within 0.5s" in f.host_key_errors["ssh-ed25519"]


def _drip(conn: socket.socket, stop: threading.Event) -> None:
    """A KEXINIT one byte every 0.3 s: each read is on time, the packet never is."""
    conn.sendall(b"SSH-2.0-Drip_1.0\r\n")
    for byte in w.encode_packet(kexinit()):
        if stop.wait(0.3):
            return
        conn.sendall(bytes([byte]))


def test_slow_drip_is_bounded_per_packet(server: Callable[[Handler], ScriptedServer]) -> None:
    srv = server(_drip)
    f = _collect(srv, timeout=0.5)
    assert "KEXINIT not complete within 1s" in f.kexinit_error


def test_disconnect_reason_is_reported(server: Callable[[Handler], ScriptedServer]) -> None:
    msg = bytes([w.MSG_DISCONNECT]) + struct.pack(">I", 2) + w.encode_string("go away")
    srv = server(fake_sshd(first=w.encode_packet(msg)))
    f = _collect(srv)
    assert "server disconnected during KEXINIT: reason code 2: go away" in f.kexinit_error


def test_ssh1_only_server(server: Callable[[Handler], ScriptedServer]) -> None:
    srv = server(fake_sshd(ident=b"SSH-1.5-OldSSH_1.2\r\n", first=b""))
    f = _collect(srv)
    assert f.protocol == "1.5" and "SSH protocol 1.5 only" in f.kexinit_error


def test_silent_server(server: Callable[[Handler], ScriptedServer]) -> None:
    srv = server(silent)
    with pytest.raises(SshProbeError, match=r"no identification within 0.5s"):
        _collect(srv, timeout=0.5)


def test_refused_port_is_a_clear_error() -> None:
    address = pick_loopback()
    with socket.socket() as s:
        s.bind((address, 0))
        port = s.getsockname()[1]
    ctx = CollectContext(scope=guard_for(address), probe_timeout=1)
    target = Target(kind=TargetKind.SERVICE, unit="t", address=address, port=port)
    with pytest.raises(SshProbeError, match=rf"ssh {address}:{port}: cannot connect"):
        asyncio.run(COLLECTOR.collect(target, ctx))
