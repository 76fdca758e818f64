"""Redis checks: commands without authentication, and dangerous commands left reachable."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from scanner.collectors.redis import DANGEROUS_COMMANDS, RedisFacts
from scanner.model import (
    Reference,
    Remediation,
    Result,
    Severity,
    TargetKind,
    error,
    failed,
    not_applicable,
    not_assessed,
    passed,
)
from scanner.plugins import Check, CheckMeta, FactsView

FACTS = "service.redis"

_AUTH_SNIPPET = """\
# redis.conf: require authentication and listen only where clients are
requirepass <a long random secret, e.g. from: openssl rand -base64 32>
# or, with Redis 6+, named users instead of the shared default user:
#   user default off
#   user app on >CHANGE-ME ~app:* &* +@all -@dangerous
bind 127.0.0.1 -::1 10.0.0.5   # this host's internal address, never 0.0.0.0
protected-mode yes
"""

_DANGEROUS_SNIPPET = """\
# redis.conf: take the dangerous commands away from application clients
# Redis 6+ (preferred): a restricted user for the application
user default off
user app on >CHANGE-ME ~* &* +@all -@dangerous -eval -evalsha -script -keys
# older servers: rename or disable them
rename-command CONFIG ""
rename-command FLUSHALL ""
rename-command FLUSHDB ""
rename-command DEBUG ""
rename-command MODULE ""
rename-command SLAVEOF ""
rename-command REPLICAOF ""
rename-command SHUTDOWN ""
"""


def _redis(facts: FactsView) -> RedisFacts:
    return facts.get(FACTS, RedisFacts)


class NoAuth(Check):
    """Redis that answers commands from anyone who can reach its port."""

    meta = CheckMeta(
        id="net.redis.no_auth",
        title="Redis requires authentication",
        target_kind=TargetKind.SERVICE,
        facts=(FACTS,),
        severity=Severity.CRITICAL,
        rationale=(
            "A Redis server that runs commands without authentication gives every client that "
            "can reach it the whole dataset, and through CONFIG, replication or modules often "
            "the host itself; automated attacks look for exactly this."
        ),
        remediation=Remediation(
            text=(
                "Set a long random password (requirepass) or ACL users with a password, bind "
                "Redis to the internal addresses its clients use, and keep protected-mode on."
            ),
            snippet=_AUTH_SNIPPET,
            snippet_lang="redis.conf",
        ),
        references=(
            Reference(scheme="cwe", id="CWE-306"),
            Reference(scheme="cwe", id="CWE-1393"),
            Reference(scheme="iso27001:2022", id="A.8.5"),
            Reference(scheme="cis-v8", id="3.3"),
            Reference(scheme="cis-v8", id="4.7"),
        ),
        tags=("redis", "authentication", "database"),
    )

    def evaluate(self, facts: FactsView, params: BaseModel) -> Result:
        f = _redis(facts)
        where = f"{f.address}:{f.port}"
        evidence: dict[str, Any] = {"ping_reply": f.ping_reply, "version": f.version or None}
        if f.access == "open":
            return failed(
                f"Redis at {where} runs commands without authentication",
                protected_mode=f.protected_mode,
                **evidence,
            )
        if f.access == "default_password":
            return failed(
                f"Redis at {where} accepts a well-known default password",
                password_guesses=f.password_guesses,
                **evidence,
            )
        if f.access == "auth_required":
            return passed(f"Redis at {where} refuses commands before authentication", **evidence)
        if f.access == "protected_mode":
            return passed(
                f"Redis at {where} refuses clients from the scanner's network (protected mode)",
                **evidence,
            )
        return error(f"Redis at {where} gave an unexpected reply to PING", errors=f.errors)


class DangerousParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    commands: list[str] = Field(
        default_factory=lambda: list(DANGEROUS_COMMANDS),
        description="commands that must not be available to an unauthenticated client",
    )


class DangerousCommands(Check):
    """Dangerous administrative commands reachable without authentication."""

    meta = CheckMeta(
        id="net.redis.dangerous_commands",
        title="Redis dangerous commands are not reachable unauthenticated",
        target_kind=TargetKind.SERVICE,
        facts=(FACTS,),
        severity=Severity.HIGH,
        rationale=(
            "CONFIG SET can make Redis write files anywhere it may write (SSH keys, cron "
            "jobs), SLAVEOF/REPLICAOF and MODULE LOAD can run an attacker's code, FLUSHALL "
            "erases the data and SHUTDOWN stops the service; offered to unauthenticated "
            "clients they turn an exposed cache into a host compromise."
        ),
        remediation=Remediation(
            text=(
                "Require authentication, give applications an ACL user without the @dangerous "
                "category (Redis 6+), or rename/disable the commands on older servers."
            ),
            snippet=_DANGEROUS_SNIPPET,
            snippet_lang="redis.conf",
        ),
        references=(
            Reference(scheme="cwe", id="CWE-749"),
            Reference(scheme="iso27001:2022", id="A.8.2"),
            Reference(scheme="iso27001:2022", id="A.8.9"),
            Reference(scheme="cis-v8", id="4.1"),
        ),
        tags=("redis", "hardening", "database"),
    )
    Params = DangerousParams

    def evaluate(self, facts: FactsView, params: DangerousParams) -> Result:
        f = _redis(facts)
        where = f"{f.address}:{f.port}"
        if f.access in ("auth_required", "protected_mode"):
            return not_applicable(
                f"Redis at {where} requires authentication; its commands are not reachable "
                "unauthenticated, so which are enabled was not examined"
            )
        if f.access == "unknown":
            return error(f"Redis at {where} gave an unexpected reply to PING", errors=f.errors)
        wanted = [c.upper() for c in params.commands]
        statuses = {c: f.commands.get(c, "unknown") for c in wanted}
        available = [c for c, s in statuses.items() if s == "available"]
        evidence: dict[str, Any] = {
            "available": available,
            "statuses": statuses,
            "acl_dryrun": f.acl_dryrun,
        }
        how = (
            "with a well-known default password"
            if f.access == "default_password"
            else ("without authentication")
        )
        if available:
            return failed(
                f"Redis at {where} offers {', '.join(available)} {how}",
                **evidence,
            )
        unknown = [c for c, s in statuses.items() if s == "unknown"]
        if unknown:
            return not_assessed(
                f"Redis at {where}: availability of {', '.join(unknown)} could not be "
                "determined without running them",
                errors=f.errors,
                **evidence,
            )
        return passed(
            f"Redis at {where} is reachable {how} but the dangerous commands are renamed, "
            "disabled or denied",
            **evidence,
        )
