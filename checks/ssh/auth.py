"""Password and keyboard-interactive logins offered by an SSH server.

The methods come from the server's answer to one `none` authentication attempt, which lists
what the server would accept next. OpenSSH answers with its configured methods for any user
name, so the probe user need not exist.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from checks.ssh._common import FACTS, ssh_facts, where
from scanner.model import (
    Reference,
    Remediation,
    Result,
    Severity,
    TargetKind,
    error,
    failed,
    passed,
)
from scanner.plugins import Check, CheckMeta, FactsView

SNIPPET = """\
# /etc/ssh/sshd_config: keys (or certificates) only
PasswordAuthentication no
KbdInteractiveAuthentication no
# OpenSSH before 8.7 calls the second one:  ChallengeResponseAuthentication no
AuthenticationMethods publickey
# check and apply:  sshd -t && systemctl reload ssh
"""


class AuthParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    allow_keyboard_interactive: bool = Field(
        default=False,
        description="accept keyboard-interactive (e.g. when it is a one-time-password prompt)",
    )


class PasswordAuth(Check):
    meta = CheckMeta(
        id="ssh.auth.password",
        title="SSH server does not offer password or keyboard-interactive login",
        target_kind=TargetKind.SERVICE,
        facts=(FACTS,),
        severity=Severity.HIGH,
        rationale=(
            "A server that accepts passwords over the network can be brute-forced and lets a "
            "phished or reused password open a shell; public keys or certificates (SSH "
            "private keys never leave the client) remove both risks. Keyboard-interactive is "
            "a password prompt too unless it is configured for one-time codes."
        ),
        remediation=Remediation(
            text="Allow public-key (or certificate) authentication only.",
            snippet=SNIPPET,
            snippet_lang="sshd_config",
        ),
        references=(
            Reference(scheme="cwe", id="CWE-309"),
            Reference(scheme="iso27001:2022", id="A.8.5"),
            Reference(scheme="cis-v8", id="6.5"),
            Reference(scheme="bsi", id="SYS.1.3.A8"),
            Reference(scheme="bsi", id="SYS.1.1.A2"),
        ),
        tags=("ssh", "authentication"),
    )
    Params = AuthParams

    def evaluate(self, facts: FactsView, params: AuthParams) -> list[Result]:
        f = ssh_facts(facts)
        if f.auth_methods is None:
            return [error(f"{where(f)}: the offered login methods are unknown: {f.auth_error}")]
        methods = f.auth_methods
        if f.auth_none_accepted:
            return [
                failed(
                    f"{where(f)} let a client in without any authentication",
                    "none",
                    severity=Severity.CRITICAL,
                    methods=methods,
                )
            ]
        weak = ["password"]
        if not params.allow_keyboard_interactive:
            weak.append("keyboard-interactive")
        offered = [m for m in weak if m in methods]
        if offered:
            return [failed(f"{where(f)} offers {m} login", m, methods=methods) for m in offered]
        return [
            passed(f"{where(f)} offers only {', '.join(methods) or 'no'} login", methods=methods)
        ]
