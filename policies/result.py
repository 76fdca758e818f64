"""The score part of the canonical assessment document (`Assessment.policies`).

Kept beside the scorer so the two cannot drift; `reports.assessment` embeds `PolicyScores` and
publishes it in the same JSON Schema.
"""

from __future__ import annotations

from datetime import date
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from policies.model import Obligation, Requirement
from policies.waivers import WaiverState
from scanner.model import Severity

FORMULA = (
    "pass rate = passed / (passed + failed); "
    "weighted score = 100 * sum(weight * severity points of passed) / "
    "sum(weight * severity points of passed + failed), severity points critical 10, high 5, "
    "medium 2, low 1, info 0; "
    "coverage = (passed + failed + waived) / (controls - not applicable). "
    "Counted per control: on a target from that target's outcomes, in a unit over all its "
    "targets (a failure on any target fails the control), per pack and overall as sums over "
    "units. error and not_assessed never count as passed; waived failures are counted apart "
    "(not in the pass rate; 'without waivers' counts them as failed). "
    "Grade A/B/C/D/F from the weighted score, capped by failed mandatory controls, unassessed "
    "mandatory controls and low coverage."
)


class _Doc(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ControlStatus(StrEnum):
    PASS = "pass"
    FAIL = "fail"
    WAIVED = "waived"  # failed, but an accepted risk in force covers every failure
    ERROR = "error"
    NOT_ASSESSED = "not_assessed"
    NOT_APPLICABLE = "not_applicable"


class ScoreNumbers(_Doc):
    passed: int = 0
    failed: int = 0
    waived: int = 0
    error: int = 0
    not_assessed: int = 0
    not_applicable: int = 0
    total: int = 0
    pass_rate: float | None = None
    pass_rate_without_waivers: float | None = None
    weighted_score: float | None = None  # 0-100
    points_earned: float = 0.0
    points_possible: float = 0.0
    coverage: float | None = None
    grade: str = "n/a"  # A B C D F, or n/a when nothing was assessed
    caps: list[str] = Field(default_factory=list)  # why the grade is lower than the score


class CheckEvidence(_Doc):
    id: str
    state: str  # installed | planned | not_installed
    params: dict[str, Any] = Field(default_factory=dict)
    counts: dict[str, int] = Field(default_factory=dict)  # outcome status -> n, in this unit


class WaivedOutcome(_Doc):
    fingerprint: str
    check_id: str
    target: str
    waiver: str


class ControlDoc(_Doc):
    id: str
    title: str
    section: str = ""
    source_pack: str
    obligation: Obligation
    severity: Severity
    weight: float
    level: int | None = None
    status: ControlStatus
    reason: str = ""
    requirements: list[Requirement] = Field(default_factory=list)
    mapping: dict[str, list[str]] = Field(default_factory=dict)
    checks: list[CheckEvidence] = Field(default_factory=list)
    failing_targets: list[str] = Field(default_factory=list)
    waived: list[WaivedOutcome] = Field(default_factory=list)
    manual: str = ""


class TargetScore(_Doc):
    key: str
    label: str
    numbers: ScoreNumbers
    controls: dict[str, ControlStatus] = Field(default_factory=dict)


class UnitScore(_Doc):
    unit: str
    numbers: ScoreNumbers
    controls: list[ControlDoc]
    targets: list[TargetScore] = Field(default_factory=list)


class PackScore(_Doc):
    id: str
    title: str
    version: str
    framework: str
    edition: str
    verification: str
    level: int | None = None
    level_title: str = ""
    mappings: dict[str, str] = Field(default_factory=dict)  # column id -> title
    numbers: ScoreNumbers
    units: list[UnitScore]
    not_selected: int = 0  # controls above the chosen level


class WaiverDoc(_Doc):
    label: str
    subject: str
    target: str
    unit: str
    reason: str
    approved_by: str
    expires: date
    ticket: str = ""
    state: WaiverState
    matched: int = 0  # failures it covers (or would cover, when expired or refused)
    note: str = ""


class PolicyScores(_Doc):
    as_of: date
    formula: str = FORMULA
    packs: list[PackScore]
    overall: ScoreNumbers
    waivers: list[WaiverDoc] = Field(default_factory=list)
    waiver_file: str = ""
