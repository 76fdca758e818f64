"""The canonical result document, `assessment.json`: every report format is derived from it.

The document is a pydantic model so that its JSON Schema is generated from the same source the
code uses; the published copy lives in `reports/schema/assessment.schema.json` and a test keeps
the two identical (`python -m reports.assessment > reports/schema/assessment.schema.json`).

Pass rate, the plain measure of this document (policies bring weighted scores):

    pass_rate = pass / (pass + fail)           (None when nothing was assessed)
    coverage  = (pass + fail) / (total - not_applicable)

`error` and `not_assessed` outcomes never count as passed: they lower coverage instead, so a
scan that could not look at something cannot look better for it.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from policies.result import PolicyScores
from reports.diff import DiffDoc
from scanner.model import Outcome, Reference, Remediation, ServiceInfo, Severity, Status, TargetKind

SCHEMA_VERSION: Literal["1.0"] = "1.0"


class _Doc(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ToolInfo(_Doc):
    name: Literal["assay"] = "assay"
    version: str


class TargetDoc(_Doc):
    kind: TargetKind
    key: str
    label: str
    address: str | None = None
    port: int | None = None
    protocol: str | None = None
    url: str | None = None
    path: str | None = None
    names: list[str] = Field(default_factory=list)
    tags: list[str] = Field(default_factory=list)
    service: ServiceInfo | None = None


class OutcomeDoc(_Doc):
    check_id: str
    title: str
    status: Status
    severity: Severity
    unit: str
    target: TargetDoc
    message: str
    evidence: dict[str, Any] = Field(default_factory=dict)
    remediation: Remediation | None = None
    references: list[Reference] = Field(default_factory=list)
    detail: str = ""
    fingerprint: str = Field(pattern=r"^[0-9a-f]{32}$")


class Counts(_Doc):
    pass_: int = Field(0, alias="pass")
    fail: int = 0
    error: int = 0
    not_applicable: int = 0
    not_assessed: int = 0
    total: int = 0

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    @classmethod
    def of(cls, statuses: Iterable[Status]) -> Counts:
        c = cls.model_validate({})
        for s in statuses:
            if s is Status.PASS:
                c.pass_ += 1
            else:
                setattr(c, s.value, getattr(c, s.value) + 1)
            c.total += 1
        return c

    @property
    def pass_rate(self) -> float | None:
        assessed = self.pass_ + self.fail
        return round(self.pass_ / assessed, 4) if assessed else None

    @property
    def coverage(self) -> float | None:
        relevant = self.total - self.not_applicable
        return round((self.pass_ + self.fail) / relevant, 4) if relevant else None


class TargetSummary(_Doc):
    key: str
    kind: TargetKind
    label: str
    state: Literal["done", "error", "pending"]
    counts: Counts
    pass_rate: float | None
    coverage: float | None
    errors: list[str] = Field(default_factory=list)


class ContactDoc(_Doc):
    name: str = ""
    email: str = ""
    phone: str = ""


class DiscoveryDoc(_Doc):
    engine: str  # "nmap 7.93" or "connect"
    fallback: bool  # True when nmap was missing: no version detection
    hosts_up: list[str] = Field(default_factory=list)
    services_found: int = 0
    warnings: list[str] = Field(default_factory=list)
    errors: list[str] = Field(default_factory=list)
    commands: list[str] = Field(default_factory=list)


class UnitDoc(_Doc):
    id: str
    name: str
    contact: ContactDoc = Field(default_factory=ContactDoc)
    discovery: DiscoveryDoc | None = None
    counts: Counts
    pass_rate: float | None
    coverage: float | None
    targets: list[TargetSummary] = Field(default_factory=list)


class BrokenPluginDoc(_Doc):
    group: str
    name: str
    reason: str


class Assessment(_Doc):
    """One scan's result: the source of every report."""

    schema_version: Literal["1.0"] = SCHEMA_VERSION
    scan_id: str
    tool: ToolInfo
    started_at: datetime
    finished_at: datetime | None = None
    state: Literal["running", "complete", "interrupted"]
    inventory: str = ""  # file name of the inventory
    inventory_sha256: str = ""
    active: bool = False
    pass_rate_formula: str = "pass / (pass + fail); coverage = (pass + fail) / (total - n/a)"
    units: list[UnitDoc]
    outcomes: list[OutcomeDoc]
    broken_plugins: list[BrokenPluginDoc] = Field(default_factory=list)
    active_probes: list[str] = Field(default_factory=list)
    # comparison with the previous scan of the same units (reports/diff.py); None: first scan
    diff: DiffDoc | None = None
    # scores under the chosen policy packs, with waivers (policies/scoring.py); None: no --policy
    policies: PolicyScores | None = None

    def to_json(self) -> str:
        return self.model_dump_json(indent=2, by_alias=True)

    # -- helpers the renderers share -------------------------------------------------------
    def outcomes_of(
        self, unit: str | None = None, target_key: str | None = None
    ) -> list[OutcomeDoc]:
        return [
            o
            for o in self.outcomes
            if (unit is None or o.unit == unit)
            and (target_key is None or o.target.key == target_key)
        ]

    @property
    def counts(self) -> Counts:
        return Counts.of(o.status for o in self.outcomes)


def target_doc(outcome_target: Any) -> TargetDoc:
    t = outcome_target
    return TargetDoc(
        kind=t.kind,
        key=t.key,
        label=t.label,
        address=t.address,
        port=t.port,
        protocol=t.protocol if t.port else None,
        url=t.url,
        path=t.path,
        names=list(t.names),
        tags=list(t.tags),
        service=t.service,
    )


def outcome_doc(o: Outcome) -> OutcomeDoc:
    return OutcomeDoc(
        check_id=o.check_id,
        title=o.title,
        status=o.status,
        severity=o.severity,
        unit=o.unit,
        target=target_doc(o.target),
        message=o.message,
        evidence=o.evidence,
        remediation=o.remediation,
        references=list(o.references),
        detail=o.detail,
        fingerprint=o.fingerprint,
    )


def json_schema() -> dict[str, Any]:
    schema = Assessment.model_json_schema(by_alias=True, mode="serialization")
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["$id"] = "https://assay.invalid/schema/assessment-1.0.json"
    return schema


def load(text: str) -> Assessment:
    return Assessment.model_validate_json(text)


if __name__ == "__main__":  # pragma: no cover - regeneration helper
    print(json.dumps(json_schema(), indent=2, sort_keys=True))
