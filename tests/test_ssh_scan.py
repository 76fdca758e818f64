"""End to end through the runner: discovery finds three SSH services, the SSH collector runs
on each, and a hostile one (identification, then silence) costs its own checks only.

The real weak and hardened sshd and a scripted server on three loopback addresses are scanned
as one unit with Assay's built-in discovery (nmap is not needed for this), and the stored
outcomes are read back from the store.
"""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from scanner.inventory import parse_inventory
from scanner.model import Status
from scanner.plugins import load_registry
from scanner.runner import Runner, ScanOptions
from scanner.store import Store
from tests.helpers import pick_loopback
from tests.servers_redis import ScriptedServer, silent
from tests.servers_sshd import HAVE_SSHD, SshdPair, sshd_pair

pytestmark = [
    pytest.mark.real,
    pytest.mark.skipif(not HAVE_SSHD, reason="sshd/ssh-keygen are not installed"),
]


def _ident_then_silence(conn: socket.socket, stop: threading.Event) -> None:
    conn.sendall(b"SSH-2.0-OpenSSH_8.4p1 Debian-5+deb11u3\r\n")
    silent(conn, stop)


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SshdPair]:
    with sshd_pair(tmp_path_factory.mktemp("sshd-scan")) as p:
        yield p


def test_scan_of_three_ssh_services(pair: SshdPair, tmp_path: Path) -> None:
    with ScriptedServer(pick_loopback(), _ident_then_silence) as hostile:
        text = f"""
version: 1
settings: {{probe_timeout: 1, version_budget: 3, collector_timeout: 20}}
units:
  - id: u1
    name: SSH unit
    hosts:
      - {{address: {pair.weak.addr}, ports: "{pair.weak.port}"}}
      - {{address: {pair.hardened.addr}, ports: "{pair.hardened.port}"}}
      - {{address: {hostile.address}, ports: "{hostile.port}"}}
"""
        inv = parse_inventory(text, "ssh.yaml")
        store = Store(f"sqlite:///{tmp_path / 'assay.db'}")
        runner = Runner(
            load_registry(),
            store,
            inv,
            inventory_text=text,
            inventory_name="ssh.yaml",
            options=ScanOptions(nmap_path=str(tmp_path / "no-nmap")),
        )
        summary = asyncio.run(runner.run())
    assert summary.state == "complete"
    by: dict[str, dict[str, set[Status]]] = {}
    messages: dict[tuple[str, str], str] = {}
    for o in store.outcomes(summary.scan_id):
        if o.check_id.startswith("ssh."):
            by.setdefault(o.target.address or "", {}).setdefault(o.check_id, set()).add(o.status)
            messages[(o.target.address or "", o.check_id)] = o.message
    weak, hard, bad = by[pair.weak.addr], by[pair.hardened.addr], by[hostile.address]
    for check in ("ssh.kex.weak", "ssh.cipher.weak", "ssh.hostkey.weak", "ssh.auth.password"):
        assert Status.FAIL in weak[check], check
        assert hard[check] == {Status.PASS}, check
    assert len(weak) == len(hard) == 10
    # the hostile service: its algorithm checks are errors naming the reason, the version
    # string it did send is still judged
    assert bad["ssh.kex.weak"] == {Status.ERROR}
    assert "no KEXINIT within 1s" in messages[(hostile.address, "ssh.kex.weak")]
    assert bad["ssh.banner.version"] == {Status.FAIL}
