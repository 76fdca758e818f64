"""An example check pack: how a third party adds a check to Assay.

`example.host.service_count` fails when a host offers more services than a unit allows. It
reads the `host.services` facts that Assay's discovery provides, so it needs no collector of its
own. The second entry point (`example.broken`) points at a module that does not exist, to show
that a broken plugin is reported and skipped while the others still run.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from scanner import (
    Check,
    CheckMeta,
    FactsView,
    Reference,
    Remediation,
    Result,
    Severity,
    TargetKind,
    failed,
    passed,
)
from scanner.collectors.hostsvc import HostServices


class ServiceCountParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    max_services: int = Field(default=10, ge=0, description="Most open services a host may offer")


class ServiceCount(Check):
    meta = CheckMeta(
        id="example.host.service_count",
        title="Host offers no more services than the unit allows",
        target_kind=TargetKind.HOST,
        facts=("host.services",),
        severity=Severity.LOW,
        rationale=(
            "Every listening service is attack surface; a host that offers many services is "
            "harder to keep patched and hardened."
        ),
        remediation=Remediation(
            text="Stop and disable the services the host does not need.",
            snippet="systemctl disable --now SERVICE",
            snippet_lang="shell",
        ),
        references=(Reference(scheme="cis-v8", id="4.8"),),
        tags=("example",),
    )
    Params = ServiceCountParams

    def evaluate(self, facts: FactsView, params: ServiceCountParams) -> Result:
        services = facts.get("host.services", HostServices).services
        ports = [f"{s.port}/{s.protocol}" for s in services]
        if len(services) > params.max_services:
            return failed(
                f"{len(services)} services are open (at most {params.max_services} allowed)",
                open=ports,
            )
        return passed(f"{len(services)} services are open", open=ports)
