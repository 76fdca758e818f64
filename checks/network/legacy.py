"""net.legacy.small_services: echo, discard, daytime, chargen or time is offered.

These RFC 862-868 test services have no use on a production host. chargen and echo answer
any input with output, so two of them (or one and a forged source address, over UDP) make a
traffic loop or an amplifier; daytime and time tell the host's clock and often its OS.
A service counts when discovery identified it by name or when the banner collector saw it
behave like one.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict

from scanner.collectors.banner import (
    SMALL_PORTS,
    SMALL_SERVICES,
    WAIT_FOR_INPUT,
    BannerFacts,
    named_by_port_only,
    service_name,
)
from scanner.model import (
    Reference,
    Remediation,
    Result,
    Severity,
    TargetKind,
    error,
    failed,
    not_assessed,
    passed,
)
from scanner.plugins import Check, CheckMeta, FactsView


class SmallServicesParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    services: list[str] = list(SMALL_SERVICES)  # which of the small services count


class SmallServices(Check):
    meta = CheckMeta(
        id="net.legacy.small_services",
        title="No echo, discard, daytime, chargen or time service is offered",
        target_kind=TargetKind.SERVICE,
        facts=("service.banner",),
        severity=Severity.MEDIUM,
        rationale=(
            "The small test services serve no production purpose. chargen and echo turn input "
            "into output and can be chained into traffic loops or used for amplification "
            "(denial of service); daytime and time leak the host's clock and hint at its "
            "operating system. Each one is attack surface that only an old inetd default keeps."
        ),
        remediation=Remediation(
            text=(
                "Disable the internal services in the super-server (inetd.conf lines or xinetd "
                "files), then restart it; remove inetd entirely when nothing else needs it."
            ),
            snippet=(
                "# /etc/inetd.conf: comment the internal services out\n"
                "#echo     stream  tcp  nowait  root  internal\n"
                "#discard  stream  tcp  nowait  root  internal\n"
                "#daytime  stream  tcp  nowait  root  internal\n"
                "#chargen  stream  tcp  nowait  root  internal\n"
                "#time     stream  tcp  nowait  root  internal\n"
                "# xinetd: set 'disable = yes' in /etc/xinetd.d/{echo,discard,daytime,chargen,"
                "time}*\n"
                "# then: systemctl restart inetutils-inetd   (or xinetd)"
            ),
            snippet_lang="inetd.conf",
        ),
        references=(
            Reference(scheme="cwe", id="CWE-406"),
            Reference(scheme="iso27001:2022", id="A.8.9"),
            Reference(scheme="cis-v8", id="4.8"),
            Reference(scheme="bsi", id="SYS.1.1.A6"),
        ),
        tags=("legacy-protocol", "dos"),
    )
    Params = SmallServicesParams

    def evaluate(self, facts: FactsView, params: SmallServicesParams) -> Result:
        b = facts.get("service.banner", BannerFacts)
        target = facts.target
        name = service_name(target)
        guessed = named_by_port_only(target)
        wanted = {s.lower() for s in params.services}
        evidence: dict[str, Any] = {
            "service": name or None,
            "identified_by": target.service.method if target.service else None,
            "behaviour": b.behaviour or None,
            "banner": b.banner[:120],
        }
        if b.behaviour and b.behaviour in wanted:
            return failed(f"the service behaves like {b.behaviour}", **evidence)
        if name in wanted and not guessed:
            return failed(f"discovery identified the service as {name}", **evidence)
        expected = name if name in wanted else SMALL_PORTS.get(target.port or 0, "")
        if guessed and expected in wanted:
            if not b.connected:
                return error(
                    f"cannot verify the {expected} port: connection {b.connect_error}",
                    connect_error=b.connect_error,
                    **evidence,
                )
            # silence disproves the services that speak first; echo/discard need the probe
            if b.probe_sent or b.bytes_read or b.closed_by_server or expected not in WAIT_FOR_INPUT:
                return passed(
                    f"the port is numbered like {expected} but does not behave like it",
                    **evidence,
                )
            return not_assessed(
                f"the port is numbered like {expected} but could not be probed", **evidence
            )
        if not b.connected and guessed:
            return error(
                f"cannot identify the service: connection {b.connect_error}",
                connect_error=b.connect_error,
                **evidence,
            )
        return passed(
            f"the service ({name or 'unidentified'}) is not one of the small services",
            **evidence,
        )
