"""inetutils-inetd for the tests: telnetd and the internal small services on loopback.

inetd's internal services (echo, discard, daytime, chargen, time) are looked up by service
name, so they only bind their well-known ports (7, 9, 13, 19, 37); a numeric port gives no
internal service. The tests therefore run them on the standard ports of a loopback address of
their own (binding below 1024 needs root, which the tests have). External programs such as
telnetd accept a numeric port, so telnetd runs on a free high port.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.helpers import wait_port
from tests.servers_ftp import running

INETD = "/usr/sbin/inetutils-inetd"
TELNETD = "/usr/sbin/telnetd"
SMALL = {"echo": 7, "discard": 9, "daytime": 13, "chargen": 19, "time": 37}


def have_inetd() -> bool:
    return os.path.exists(INETD) and os.geteuid() == 0


def ports_free(addr: str, ports: list[int]) -> bool:
    for port in ports:
        with socket.socket() as s:
            try:
                s.bind((addr, port))
            except OSError:
                return False
    return True


@contextmanager
def inetd(workdir: Path, addr: str, entries: list[str], ports: list[int]) -> Iterator[None]:
    """Run inetd in the foreground (-d) with `entries` as its whole configuration.

    Each entry is an inetd.conf line without the address, e.g. "echo stream tcp nowait root
    internal"; the address is prefixed so nothing binds outside `addr`.
    """
    workdir.mkdir(parents=True, exist_ok=True)
    conf = workdir / "inetd.conf"
    conf.write_text("".join(f"{addr}:{line}\n" for line in entries))
    cmd = [INETD, "-d", f"--pidfile={workdir / 'inetd.pid'}", str(conf)]
    with running(cmd, addr, ports[0], workdir / "inetd.out", workdir):
        for port in ports[1:]:
            wait_port(addr, port, timeout=10)
        yield


def small_service_entries() -> list[str]:
    return [f"{name} stream tcp nowait root internal" for name in SMALL]


def telnet_entry(port: int) -> str:
    return f"{port} stream tcp nowait root {TELNETD} telnetd"
