"""Scope guard: nothing is sent to an address the inventory does not declare.

Every collector and the discovery stage ask the guard before they open a socket or start nmap.
Names are never resolved here: a URL's host must be an IP literal in scope, or a name that the
inventory itself binds to an in-scope address.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from urllib.parse import urlsplit

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


class OutOfScope(Exception):
    """Raised before any packet is sent to a target the inventory does not declare."""


@dataclass(frozen=True)
class ScopeEntry:
    network: IPNetwork
    exclude: tuple[IPNetwork, ...] = ()
    unit: str = ""

    def __contains__(self, addr: IPAddress) -> bool:
        return (
            addr.version == self.network.version
            and addr in self.network
            and not any(addr.version == x.version and addr in x for x in self.exclude)
        )


@dataclass
class ScopeGuard:
    entries: list[ScopeEntry] = field(default_factory=list)
    names: dict[str, str] = field(default_factory=dict)  # declared name -> address
    # settings.resolve_names: look up names the inventory does not bind (the answer must
    # still be in scope). Off by default: a scan then never causes a DNS query.
    resolve: bool = False

    @classmethod
    def of(
        cls,
        networks: Iterable[tuple[str, Iterable[str], str]] = (),
        hosts: Iterable[tuple[str, str]] = (),
        names: Mapping[str, str] | None = None,
        resolve: bool = False,
    ) -> ScopeGuard:
        """Build from (cidr, excludes, unit) and (address, unit) pairs."""
        entries = [
            ScopeEntry(
                ipaddress.ip_network(c, strict=False),
                tuple(ipaddress.ip_network(x, strict=False) for x in ex),
                unit,
            )
            for c, ex, unit in networks
        ]
        entries += [ScopeEntry(ipaddress.ip_network(a), (), unit) for a, unit in hosts]
        return cls(entries, {k.lower(): v for k, v in (names or {}).items()}, resolve)

    def unit_of(self, address: str) -> str | None:
        try:
            addr = ipaddress.ip_address(address)
        except ValueError:
            return None
        for entry in self.entries:
            if addr in entry:
                return entry.unit
        return None

    def ensure_address(self, address: str) -> IPAddress:
        try:
            addr = ipaddress.ip_address(address)
        except ValueError:
            raise OutOfScope(
                f"{address!r} is not an IP address (names are never resolved)"
            ) from None
        if not any(addr in e for e in self.entries):
            raise OutOfScope(f"{address} is outside the inventory's declared networks and hosts")
        return addr

    def ensure_network(self, cidr: str) -> IPNetwork:
        net = ipaddress.ip_network(cidr, strict=False)
        for e in self.entries:
            if net.version == e.network.version and net.subnet_of(e.network):  # type: ignore[arg-type]
                return net
        raise OutOfScope(f"{cidr} is not inside a declared network")

    def resolve_url_host(self, url: str) -> str:
        """The in-scope IP address a URL points at, without any DNS look-up."""
        host = urlsplit(url).hostname
        if not host:
            raise OutOfScope(f"{url!r} has no host")
        try:
            addr = ipaddress.ip_address(host)
        except ValueError:
            mapped = self.names.get(host.lower())
            if mapped is None and self.resolve:
                mapped = lookup(host)
            if mapped is None:
                why = (
                    "it did not resolve"
                    if self.resolve
                    else "names are never resolved; declare it under a host's names"
                )
                raise OutOfScope(
                    f"{url}: host name {host!r} is not bound to an address in the inventory ({why})"
                ) from None
            addr = ipaddress.ip_address(mapped)
        return str(self.ensure_address(str(addr)))


def lookup(name: str) -> str | None:
    """First address of a name (only with settings.resolve_names); None when it has none."""
    try:
        infos = socket.getaddrinfo(name, None, proto=socket.IPPROTO_TCP)
    except (OSError, UnicodeError):
        return None
    return str(infos[0][4][0]) if infos else None
