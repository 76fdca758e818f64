"""The services of one host, as discovery found them: the facts host-level checks read."""

from __future__ import annotations

from pydantic import BaseModel

from scanner.model import Facts, Target, TargetKind
from scanner.plugins import CollectContext, Collector


class ServiceEntry(BaseModel):
    port: int
    protocol: str = "tcp"
    name: str = ""
    product: str = ""
    version: str = ""
    tunnel: str = ""
    method: str = ""


class HostServices(Facts):
    address: str
    services: list[ServiceEntry]
    discovery_engine: str = ""  # "nmap 7.93" or "connect" (fallback, no version detection)


class HostServicesCollector(Collector):
    """No I/O: assembles the host's open services from the scan's discovery results."""

    id = "host.services"
    target_kind = TargetKind.HOST
    facts_model = HostServices

    async def collect(self, target: Target, ctx: CollectContext) -> HostServices:
        entries = []
        for view in ctx.related.values():
            svc = view.target
            if svc.kind is not TargetKind.SERVICE or svc.address != target.address:
                continue
            info = svc.service
            entries.append(
                ServiceEntry(
                    port=svc.port or 0,
                    protocol=svc.protocol,
                    name=info.name if info else "",
                    product=info.product if info else "",
                    version=info.version if info else "",
                    tunnel=info.tunnel if info else "",
                    method=info.method if info else "",
                )
            )
        entries.sort(key=lambda e: (e.protocol, e.port))
        return HostServices(
            address=target.address or "", services=entries, discovery_engine=ctx.discovery_engine
        )
