"""net.telnet.present: a telnet daemon answers on the service.

Telnet sends everything, passwords included, in cleartext and has no server authentication.
Evidence, strongest first: the port opens with telnet option negotiation (IAC WILL/DO...), or
discovery identified it as telnet by probing. A name that is only a port-number guess is
checked against the banner.
"""

from __future__ import annotations

import re
from typing import Any

from pydantic import BaseModel, ConfigDict

from scanner.collectors.banner import BannerFacts, named_by_port_only, service_name
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


class TelnetParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    # a plain login prompt counts as telnet on a port guessed to be telnet (escaped banner text)
    prompt_patterns: list[str] = [r"(login|username|user name|password)\s*:\s*(\\r|\\n)*$"]


class TelnetPresent(Check):
    meta = CheckMeta(
        id="net.telnet.present",
        title="No telnet service is offered",
        target_kind=TargetKind.SERVICE,
        facts=("service.banner",),
        severity=Severity.HIGH,
        rationale=(
            "Telnet carries logins, passwords and whole administrative sessions in cleartext and "
            "cannot prove the server's identity; anyone on the path can read or hijack them. "
            "SSH replaces it."
        ),
        remediation=Remediation(
            text=(
                "Stop the telnet daemon and its super-server entry, remove the package, and "
                "administer the host over SSH."
            ),
            snippet=(
                "# comment out the telnet line in /etc/inetd.conf (or disable it in xinetd), or\n"
                "systemctl disable --now inetutils-inetd   # inetd / xinetd, whichever runs it\n"
                "apt-get purge inetutils-telnetd telnetd\n"
                "apt-get install openssh-server"
            ),
            snippet_lang="shell",
        ),
        references=(
            Reference(scheme="cwe", id="CWE-319"),
            Reference(scheme="iso27001:2022", id="A.8.21"),
            Reference(scheme="cis-v8", id="4.8"),
            Reference(scheme="cis-v8", id="12.6"),
            Reference(scheme="bsi", id="SYS.1.3.A8"),
            Reference(scheme="bsi", id="NET.1.1.A7"),
        ),
        tags=("cleartext", "legacy-protocol"),
    )
    Params = TelnetParams

    def evaluate(self, facts: FactsView, params: TelnetParams) -> Result:
        b = facts.get("service.banner", BannerFacts)
        target = facts.target
        name = service_name(target)
        guessed = named_by_port_only(target)
        evidence: dict[str, Any] = {
            "service": name or None,
            "identified_by": target.service.method if target.service else None,
            "telnet_options": b.telnet_options[:8],
            "banner": b.banner[:120],
        }
        if b.telnet_iac:
            return failed("the service opens with telnet option negotiation", **evidence)
        if name == "telnet" and not guessed:
            return failed("discovery identified the service as telnet", **evidence)
        if not b.connected and (guessed or name == "telnet"):
            return error(
                f"cannot verify the service: connection {b.connect_error}",
                connect_error=b.connect_error,
                **evidence,
            )
        if name == "telnet":  # only a port-number guess
            if any(re.search(p, b.banner, re.IGNORECASE) for p in params.prompt_patterns):
                return failed("the telnet port shows a plain login prompt", **evidence)
            if b.bytes_read or b.closed_by_server:
                return passed("the port is numbered like telnet but does not speak it", **evidence)
            return not_assessed(
                "the port is numbered like telnet but stayed silent; identify it by hand",
                **evidence,
            )
        return passed(f"the service ({name or 'unidentified'}) does not speak telnet", **evidence)
