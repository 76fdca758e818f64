"""A real Samba server (smbd) started by the tests as root with its own smb.conf, on its own
loopback address and a free port, plus a scripted SMB server that negotiates and then falls
silent (a fault a real Samba cannot be configured into).

smbd only binds addresses that sit on an interface, so the picked 127.x.y.z is added to `lo`
as a /32 for the life of the server and removed afterwards (needs CAP_NET_ADMIN; without it
the tests are skipped with that reason).
"""

from __future__ import annotations

import shutil
import signal
import socket
import struct
import subprocess
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

from tests.helpers import free_port, pick_loopback, wait_port

SMB_USER = "root"  # a Unix account must back a Samba user; root avoids creating one
SMB_PASSWORD = "Assay-smb-test-9"


@dataclass(frozen=True)
class Samba:
    address: str
    port: int
    proc: subprocess.Popen[bytes]

    def url(self, share: str) -> str:
        return f"smb://{self.address}:{self.port}/{share}"


def samba_unavailable() -> str:
    """Why Samba cannot run here, or '' when it can."""
    if shutil.which("smbd") is None or shutil.which("smbpasswd") is None:
        return "smbd/smbpasswd not installed (apt-get install -y samba)"
    import os

    if os.geteuid() != 0:
        return "smbd must be started as root"
    return ""


def _conf(tmp: Path, addr: str, port: int, shares: dict[str, dict[str, str]], glob: str) -> Path:
    dirs = {d: tmp / d for d in ("private", "lock", "state", "cache", "pid", "ncalrpc")}
    for d in dirs.values():
        d.mkdir(parents=True, exist_ok=True)
    lines = [
        "[global]",
        "server role = standalone server",
        f"interfaces = {addr}",
        "bind interfaces only = yes",
        f"smb ports = {port}",
        "disable netbios = yes",
        "server services = smb",
        f"private dir = {dirs['private']}",
        f"lock directory = {dirs['lock']}",
        f"state directory = {dirs['state']}",
        f"cache directory = {dirs['cache']}",
        f"pid directory = {dirs['pid']}",
        f"ncalrpc dir = {dirs['ncalrpc']}",
        f"passdb backend = tdbsam:{dirs['private'] / 'passdb.tdb'}",
        f"log file = {tmp / 'log.%m'}",
        "log level = 1",
        "load printers = no",
        "printing = bsd",
        "printcap name = /dev/null",
        "disable spoolss = yes",
        "usershare path =",
        "guest account = nobody",
        glob,
    ]
    for name, opts in shares.items():
        lines.append(f"[{name}]")
        lines += [f"{k} = {v}" for k, v in opts.items()]
    conf = tmp / "smb.conf"
    conf.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return conf


@contextmanager
def samba(tmp: Path, shares: dict[str, dict[str, str]], glob: str = "") -> Iterator[Samba]:
    """smbd in the foreground with `shares` (name -> smb.conf options) and extra [global]
    lines; one user SMB_USER / SMB_PASSWORD in a tdbsam under tmp."""
    addr = pick_loopback()
    added = subprocess.run(
        ["ip", "addr", "add", f"{addr}/32", "dev", "lo"], capture_output=True, timeout=10
    )
    if added.returncode != 0:
        import pytest

        pytest.skip(f"cannot add {addr} to lo for smbd: {added.stderr.decode().strip()}")
    proc = None
    log = None
    try:
        port = free_port(addr)
        conf = _conf(tmp, addr, port, shares, glob)
        subprocess.run(
            ["smbpasswd", "-c", str(conf), "-a", "-s", SMB_USER],
            input=f"{SMB_PASSWORD}\n{SMB_PASSWORD}\n".encode(),
            capture_output=True,
            timeout=30,
            check=True,
        )
        log = (tmp / "smbd.out").open("wb")
        proc = subprocess.Popen(
            ["smbd", "--foreground", "--no-process-group", "--debug-stdout",
             f"--configfile={conf}"],
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # smbd signals its whole process group when it stops
        )  # fmt: skip
        try:
            wait_port(addr, port, timeout=30)
        except Exception as exc:
            raise RuntimeError(
                f"smbd did not listen on {addr}:{port}: "
                + (tmp / "smbd.out").read_text(errors="replace")[-2000:]
            ) from exc
        yield Samba(addr, port, proc)
    finally:
        if proc is not None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=5)
        if log is not None:
            log.close()
        subprocess.run(
            ["ip", "addr", "del", f"{addr}/32", "dev", "lo"], capture_output=True, timeout=10
        )


def frame(s: socket.socket) -> bytes:
    """One SMB2 message with its 4-byte transport header; b"" when the peer closed."""
    head = b""
    while len(head) < 4:
        chunk = s.recv(4 - len(head))
        if not chunk:
            return b""
        head += chunk
    size = struct.unpack(">I", head)[0] & 0xFFFFFF
    body = b""
    while len(body) < size:
        chunk = s.recv(min(65536, size - len(body)))
        if not chunk:
            return b""
        body += chunk
    return head + body


@contextmanager
def silent_after_negotiate(real: Samba) -> Iterator[tuple[str, int]]:
    """Relays the first SMB2 negotiate to the real Samba and its answer back, then reads and
    never answers: a server that stops answering in the middle of the logon."""

    def session() -> tuple[Rewrite, Rewrite]:
        seen = 0

        def up(data: bytes) -> bytes:
            nonlocal seen
            seen += 1
            return data if seen == 1 and data[4:8] == b"\xfeSMB" else b""

        return (lambda d: d), up

    with rewriting_relay(real, per_connection=session) as where:
        yield where


@contextmanager
def garbage_server(reply: bytes) -> Iterator[tuple[str, int]]:
    """Answers every connection with `reply` (a hostile or non-SMB service) and closes."""
    addr = pick_loopback()
    port = free_port(addr)
    srv = socket.socket()
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind((addr, port))
    srv.listen(8)
    srv.settimeout(0.2)
    stop = threading.Event()

    def loop() -> None:
        while not stop.is_set():
            try:
                conn, _ = srv.accept()
            except OSError:
                continue
            with conn, suppress(OSError):
                conn.settimeout(2)
                conn.recv(65536)
                conn.sendall(reply)

    t = threading.Thread(target=loop, daemon=True)
    t.start()
    try:
        yield addr, port
    finally:
        stop.set()
        t.join(timeout=2)
        srv.close()


def _commands(frame: bytes) -> list[int]:
    """SMB2 commands in one (possibly compound) frame; [] for anything else."""
    out, pos = [], 4
    for _ in range(16):
        if frame[pos : pos + 4] != b"\xfeSMB" or pos + 24 > len(frame):
            break
        out.append(struct.unpack_from("<H", frame, pos + 12)[0])
        nxt = struct.unpack_from("<I", frame, pos + 20)[0]
        if not nxt:
            break
        pos += nxt
    return out


@contextmanager
def stalls_on_read(real: Samba) -> Iterator[tuple[str, int]]:
    """Relays SMB to the real Samba until the client asks to READ a file; from then on it
    swallows every request of that connection (a server that stops answering in the middle of
    a scan). Only useful unencrypted (guest), since it reads the commands."""

    def session() -> tuple[Rewrite, Rewrite]:
        stalled = False

        def up(data: bytes) -> bytes:
            nonlocal stalled
            stalled = stalled or 0x08 in _commands(data)
            return b"" if stalled else data

        return (lambda d: d), up

    with rewriting_relay(real, per_connection=session) as where:
        yield where


def messages(data: bytes) -> list[tuple[int, int, int]]:
    """(offset, length, command) of each SMB2 message in a frame with its 4-byte header."""
    out, pos = [], 4
    for _ in range(32):
        if data[pos : pos + 4] != b"\xfeSMB" or pos + 64 > len(data):
            break
        cmd = struct.unpack_from("<H", data, pos + 12)[0]
        nxt = struct.unpack_from("<I", data, pos + 20)[0]
        size = nxt if nxt else len(data) - pos
        out.append((pos, size, cmd))
        if not nxt:
            break
        pos += nxt
    return out


Rewrite = Callable[[bytes], bytes]  # one frame in, the frame to pass on (b"": swallowed)


@contextmanager
def rewriting_relay(
    real: Samba,
    to_client: Rewrite | None = None,
    to_server: Rewrite | None = None,
    per_connection: Callable[[], tuple[Rewrite, Rewrite]] | None = None,
) -> Iterator[tuple[str, int]]:
    """Relays SMB between the client and the real Samba, handing every answer frame to
    `to_client` and every request frame to `to_server`, which may rewrite, swallow or count
    them (`per_connection` makes a fresh pair for each connection). Stands in for what Samba
    cannot be configured into: a Windows-like change time, a refused, malformed or silent
    srvsvc answer, a stall mid-scan. Only useful unsigned and unencrypted (guest sessions)."""
    addr = pick_loopback()
    port = free_port(addr)
    srv = socket.socket()
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind((addr, port))
    srv.listen(8)
    srv.settimeout(0.2)
    stop = threading.Event()
    held: list[socket.socket] = []

    def pump(src: socket.socket, dst: socket.socket, fn: Rewrite) -> None:
        with suppress(OSError):
            while not stop.is_set():
                data = frame(src)
                if not data:
                    return
                out = fn(data)
                if out:  # b"": swallowed, never answered
                    dst.sendall(out)

    def same(data: bytes) -> bytes:
        return data

    def handle(conn: socket.socket) -> None:
        held.append(conn)
        down, upward = per_connection() if per_connection else (to_client, to_server)
        with suppress(OSError):
            up = socket.create_connection((real.address, real.port), timeout=5)
            up.settimeout(None)
            held.append(up)
            threading.Thread(target=pump, args=(up, conn, down or same), daemon=True).start()
            pump(conn, up, upward or same)

    def loop() -> None:
        while not stop.is_set():
            try:
                conn, _ = srv.accept()
            except OSError:
                continue
            threading.Thread(target=handle, args=(conn,), daemon=True).start()

    t = threading.Thread(target=loop, daemon=True)
    t.start()
    try:
        yield addr, port
    finally:
        stop.set()
        for c in held:
            with suppress(OSError):
                c.shutdown(socket.SHUT_RDWR)
            c.close()
        t.join(timeout=2)
        srv.close()


def replace_rpc_response(data: bytes, stub: bytes | None, raw: bytes | None = None) -> bytes:
    """A READ answer carrying a DCE/RPC response PDU, with its stub replaced (or the whole PDU
    replaced by `raw`; raw=b"" swallows it); every other frame unchanged."""
    msgs = messages(data)
    if len(msgs) != 1 or msgs[0][2] != 0x08:
        return data
    pos = msgs[0][0]
    status = struct.unpack_from("<I", data, pos + 8)[0]
    if status != 0 or len(data) < pos + 64 + 16:
        return data
    body = pos + 64
    off = data[body + 2]
    length = struct.unpack_from("<I", data, body + 4)[0]
    pdu = data[pos + off : pos + off + length]
    if pdu[:3] != b"\x05\x00\x02":  # not an RPC response PDU
        return data
    if raw == b"":
        return b""  # the pipe never answers
    if raw is None:
        assert stub is not None
        head = bytearray(pdu[:24])
        struct.pack_into("<H", head, 8, 24 + len(stub))
        struct.pack_into("<I", head, 16, len(stub))
        raw = bytes(head) + stub
    smb = bytearray(data[4 : pos + off])
    struct.pack_into("<I", smb, body, len(raw))  # DataLength (smb starts 4 bytes in)
    out = bytes(smb) + raw
    return struct.pack(">I", len(out)) + out
