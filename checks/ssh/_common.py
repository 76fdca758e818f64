"""What the SSH checks share: the facts accessor, references and the algorithm-list judge."""

from __future__ import annotations

from dataclasses import dataclass

from pydantic import BaseModel, ConfigDict, Field, field_validator

from checks.ssh.algorithms import Category, Verdict, table
from scanner.collectors.ssh import SshFacts
from scanner.model import Reference
from scanner.plugins import FactsView

FACTS = "service.ssh"

# SSH-01..04 of the framework mapping: established algorithms and key lengths.
CRYPTO_REFS: tuple[Reference, ...] = (
    Reference(scheme="cwe", id="CWE-327"),
    Reference(scheme="iso27001:2022", id="A.8.24"),
    Reference(scheme="cis-v8", id="12.6"),
    Reference(scheme="bsi", id="CON.1.A1"),
    Reference(scheme="bsi", id="SYS.1.3.A8"),
)


def ssh_facts(facts: FactsView) -> SshFacts:
    return facts.get(FACTS, SshFacts)


def where(f: SshFacts) -> str:
    return f"SSH at {f.address}:{f.port}"


class ProfileParams(BaseModel):
    """Which profile of the algorithm table judges, and which verdicts count as failures."""

    model_config = ConfigDict(extra="forbid")

    profile: str = Field(default="baseline", description="profile of checks/ssh/algorithms.yaml")
    fail_on: list[Verdict] = Field(
        default_factory=lambda: [Verdict.FAIL],
        description="verdicts that fail the check: 'fail', and 'warn' for a stricter policy",
    )
    allow: list[str] = Field(
        default=[], description="algorithm names accepted on these targets anyway"
    )

    @field_validator("profile")
    @classmethod
    def _known_profile(cls, v: str) -> str:
        known = table().profiles
        if v not in known:
            raise ValueError(f"unknown SSH algorithm profile {v!r} (known: {', '.join(known)})")
        return v

    @field_validator("fail_on")
    @classmethod
    def _only_fail_warn(cls, v: list[Verdict]) -> list[Verdict]:
        bad = [x for x in v if x not in (Verdict.FAIL, Verdict.WARN)]
        if bad:
            raise ValueError(f"fail_on may hold 'fail' and 'warn' only, not {bad}")
        return v


@dataclass(frozen=True)
class Judged:
    name: str
    verdict: Verdict
    reason: str


def judge(category: Category, names: list[str], profile: str) -> list[Judged]:
    t = table()
    out = []
    for name in dict.fromkeys(names):
        verdict, reason = t.verdict(category, name, profile)
        out.append(Judged(name, verdict, reason))
    return out
