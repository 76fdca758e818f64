"""Discovery: hosts and open TCP services, with real nmap or a built-in connect scan.

Two phases, so a fault in service identification never costs the ports already found:

1. ports: one nmap run (`-n`, SYN scan as root, connect scan otherwise) lists the open ports;
2. identification: `nmap -sV` on ONE port per run, runs in parallel, each with a wall-clock
   budget. A silent service (discard) or a hanging one costs at most the budget; an nmap crash
   (its version detection has been seen to segfault on hostile replies) loses that port's
   version only. Ports nmap cannot name get Assay's own light identification
   (`scanner.identify`), then the registered name of the port.

Without nmap, an asyncio TCP connect scan over the same ports is used, with the light
identification and no version detection; the result says so.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import ipaddress
import os
import shutil
import xml.etree.ElementTree as ET
from collections.abc import Callable
from dataclasses import dataclass, field

from scanner.identify import identify
from scanner.model import ServiceInfo
from scanner.ports import expand_ports, port_name
from scanner.scope import ScopeGuard

MAX_CONNECT_HOSTS = 65536  # a /16: larger networks need nmap
NMAP_MISSING = "nmap not found{where}; using the built-in TCP connect scan (no version detection)"
_UNHELPFUL = {"", "unknown", "tcpwrapped"}


@dataclass(frozen=True)
class ScanSpec:
    target: str  # CIDR or single address
    exclude: tuple[str, ...] = ()
    ports: str = "default"
    assume_up: bool = False


@dataclass(frozen=True)
class DiscoverySettings:
    probe_timeout: float = 5.0
    version_budget: float = 20.0
    concurrency: int = 32
    nmap_path: str | None = None
    version_detection: bool = True


@dataclass
class DiscoveredService:
    address: str
    port: int
    protocol: str
    service: ServiceInfo


@dataclass
class DiscoveryResult:
    engine: str
    hosts_up: list[str] = field(default_factory=list)
    services: list[DiscoveredService] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    commands: list[str] = field(default_factory=list)


class DiscoveryError(Exception):
    """Discovery of a spec could not run at all (the message names the spec)."""


def _nmap_binary(settings: DiscoverySettings) -> str | None:
    if settings.nmap_path is not None:
        p = settings.nmap_path
        return p if os.path.isfile(p) and os.access(p, os.X_OK) else None
    return shutil.which("nmap")


async def _run(args: list[str], budget: float) -> tuple[int, str, str]:
    """Run a command with a hard wall-clock budget; a hung process is killed."""
    proc = await asyncio.create_subprocess_exec(
        *args,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        out, err = await asyncio.wait_for(proc.communicate(), budget)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        raise
    except asyncio.CancelledError:
        proc.kill()
        await proc.wait()
        raise
    return proc.returncode or 0, out.decode(errors="replace"), err.decode(errors="replace")


def _parse_nmap_xml(text: str) -> tuple[list[str], list[tuple[str, int, str, ServiceInfo]]]:
    root = ET.fromstring(text)
    up: list[str] = []
    found: list[tuple[str, int, str, ServiceInfo]] = []
    for host in root.iter("host"):
        status = host.find("status")
        addr_el = host.find("address[@addrtype='ipv4']")
        if addr_el is None:
            addr_el = host.find("address[@addrtype='ipv6']")
        if addr_el is None:
            continue
        addr = addr_el.get("addr", "")
        if status is not None and status.get("state") == "up":
            up.append(addr)
        for port in host.iter("port"):
            state = port.find("state")
            if state is None or state.get("state") != "open":
                continue
            svc = port.find("service")
            info = ServiceInfo()
            if svc is not None:
                info = ServiceInfo(
                    name=svc.get("name", ""),
                    product=svc.get("product", ""),
                    version=svc.get("version", ""),
                    extrainfo=svc.get("extrainfo", ""),
                    cpe=tuple(c.text or "" for c in svc.findall("cpe")),
                    tunnel=svc.get("tunnel", ""),
                    method="probed" if svc.get("method") == "probed" else "table",
                )
            found.append((addr, int(port.get("portid", "0")), port.get("protocol", "tcp"), info))
    return up, found


async def _nmap_version(nmap: str) -> str:
    try:
        _, out, _ = await _run([nmap, "--version"], 10)
    except (OSError, TimeoutError):
        return "nmap"
    parts = out.split()
    return f"nmap {parts[2]}" if len(parts) > 2 and parts[0] == "Nmap" else "nmap"


async def _nmap_ports(
    nmap: str, spec: ScanSpec, ports: str, settings: DiscoverySettings, res: DiscoveryResult
) -> list[tuple[str, int, str, ServiceInfo]]:
    scan = "-sS" if os.geteuid() == 0 else "-sT"
    rtt = max(0.1, min(settings.probe_timeout, 10.0))
    args = [
        nmap,
        "-n",
        scan,
        "-T4",
        "--max-retries",
        "1",
        "--max-rtt-timeout",
        f"{rtt:g}s",
        "--open",
        "-p",
        ports,
        "-oX",
        "-",
    ]
    if spec.assume_up:
        args.append("-Pn")
    if spec.exclude:
        args += ["--exclude", ",".join(spec.exclude)]
    args.append(spec.target)
    res.commands.append(" ".join(args[1:]))
    budget = 600.0 + settings.probe_timeout * 60
    try:
        code, out, err = await _run(args, budget)
    except TimeoutError:
        raise DiscoveryError(f"{spec.target}: nmap port scan exceeded {budget:g}s") from None
    if code != 0 or not out.strip():
        first = (err.strip().splitlines() or [f"exit status {code}"])[0]
        raise DiscoveryError(f"{spec.target}: nmap port scan failed: {first}")
    try:
        up, found = _parse_nmap_xml(out)
    except ET.ParseError as exc:
        raise DiscoveryError(f"{spec.target}: nmap wrote unreadable XML ({exc})") from None
    res.hosts_up.extend(up)
    return found


async def _nmap_identify(
    nmap: str, addr: str, port: int, settings: DiscoverySettings, res: DiscoveryResult
) -> ServiceInfo | None:
    budget = settings.version_budget
    args = [
        nmap,
        "-n",
        "-Pn",
        "-sT",
        "-sV",
        "--version-intensity",
        "5",
        "--host-timeout",
        f"{max(1, int(budget))}s",
        "-p",
        str(port),
        "-oX",
        "-",
        addr,
    ]
    try:
        code, out, _ = await _run(args, budget + 10)
    except TimeoutError:
        res.errors.append(f"{addr}:{port} identification exceeded {budget:g}s; port kept")
        return None
    if code != 0:
        why = f"killed by signal {-code}" if code < 0 else f"exit status {code}"
        res.errors.append(
            f"{addr}:{port} version detection crashed (nmap {why}); port kept, service unknown"
        )
        return None
    try:
        _, found = _parse_nmap_xml(out)
    except ET.ParseError:
        res.errors.append(f"{addr}:{port} version detection wrote unreadable XML; port kept")
        return None
    for a, p, _, info in found:
        if a == addr and p == port:
            return info
    return None


async def _connect_open(addr: str, port: int, timeout: float) -> bool:
    try:
        _, writer = await asyncio.wait_for(asyncio.open_connection(addr, port), timeout)
    except (TimeoutError, OSError) as exc:
        if isinstance(exc, OSError) and exc.errno in (errno.EMFILE, errno.ENFILE):
            await asyncio.sleep(0.05)
            return await _connect_open(addr, port, timeout)
        return False
    writer.close()
    with contextlib.suppress(TimeoutError, OSError):
        await asyncio.wait_for(writer.wait_closed(), 1)
    return True


def _addresses(spec: ScanSpec) -> list[str]:
    net = ipaddress.ip_network(spec.target, strict=False)
    excl = [ipaddress.ip_network(x, strict=False) for x in spec.exclude]
    if net.num_addresses > MAX_CONNECT_HOSTS:
        raise DiscoveryError(
            f"{spec.target}: too large for the connect scan (more than {MAX_CONNECT_HOSTS} "
            "addresses); install nmap"
        )
    hosts = [net.network_address] if net.num_addresses == 1 else list(net.hosts())
    return [str(a) for a in hosts if not any(a.version == x.version and a in x for x in excl)]


async def discover(
    specs: list[ScanSpec],
    guard: ScopeGuard,
    settings: DiscoverySettings,
    progress: Callable[[str], None] | None = None,
) -> DiscoveryResult:
    # Scope first: nothing is sent before every spec is known to be in scope.
    for spec in specs:
        if "/" in spec.target:
            guard.ensure_network(spec.target)
        else:
            guard.ensure_address(spec.target)
    say = progress or (lambda _m: None)
    nmap = _nmap_binary(settings)
    sem = asyncio.Semaphore(settings.concurrency)
    found: dict[tuple[str, int], tuple[str, ServiceInfo]] = {}

    if nmap:
        res = DiscoveryResult(engine=await _nmap_version(nmap))
        for spec in specs:
            say(f"port scan of {spec.target}")
            try:
                for addr, port, proto, info in await _nmap_ports(
                    nmap, spec, expand_ports(spec.ports), settings, res
                ):
                    guard.ensure_address(addr)  # nmap must not have strayed
                    found.setdefault((addr, port), (proto, info))
            except DiscoveryError as exc:
                res.errors.append(str(exc))
    else:
        where = f" at {settings.nmap_path}" if settings.nmap_path else " on PATH"
        res = DiscoveryResult(engine="connect", warnings=[NMAP_MISSING.format(where=where)])
        for spec in specs:
            say(f"connect scan of {spec.target}")
            try:
                addrs = _addresses(spec)
            except DiscoveryError as exc:
                res.errors.append(str(exc))
                continue
            ports = _port_list(expand_ports(spec.ports))

            async def probe(a: str, p: int) -> None:
                async with sem:
                    if await _connect_open(a, p, settings.probe_timeout):
                        found.setdefault((a, p), ("tcp", ServiceInfo()))

            await asyncio.gather(*(probe(a, p) for a in addrs for p in ports))
            res.hosts_up.extend(sorted({a for a, _ in found}))

    async def name(addr: str, port: int, proto: str, info: ServiceInfo) -> DiscoveredService:
        async with sem:
            if nmap and settings.version_detection:
                probed = await _nmap_identify(nmap, addr, port, settings, res)
                named = probed is not None and probed.name not in _UNHELPFUL
                if named and probed is not None and probed.method == "probed":
                    return DiscoveredService(addr, port, proto, probed)
            else:
                probed = None
            # nmap could not name it, or only guessed from the port number (even when it saw
            # TLS: "powerclientcsf" over ssl on 2443 is a guess): ask the service
            guess = await identify(addr, port, min(settings.probe_timeout, 3.0))
            if guess.name:
                note = "" if nmap else "connect scan: no version detection"
                return DiscoveredService(
                    addr, port, proto, guess.model_copy(update={"method": "banner", "note": note})
                )
            if probed is not None and probed.tunnel and probed.name not in _UNHELPFUL:
                return DiscoveredService(addr, port, proto, probed)  # nmap at least saw TLS
            return DiscoveredService(
                addr,
                port,
                proto,
                ServiceInfo(
                    name=port_name(port), method="table", note=guess.note or "not identified"
                ),
            )

    say(f"identifying {len(found)} services")
    res.services = list(
        await asyncio.gather(*(name(a, p, proto, i) for (a, p), (proto, i) in found.items()))
    )
    res.services.sort(key=lambda s: (ipaddress.ip_address(s.address), s.port))
    res.hosts_up = sorted(set(res.hosts_up), key=ipaddress.ip_address)
    return res


def _port_list(ports: str) -> list[int]:
    out: list[int] = []
    for part in ports.split(","):
        lo, _, hi = part.partition("-")
        out.extend(range(int(lo), int(hi or lo) + 1))
    return out
