"""View helpers shared by the HTML and Markdown renderers (both fed by one Assessment)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from reports.assessment import Assessment, OutcomeDoc, UnitDoc
from scanner.masking import mask_evidence, mask_text
from scanner.model import Severity, Status

SEVERITY_ORDER = [Severity.CRITICAL, Severity.HIGH, Severity.MEDIUM, Severity.LOW, Severity.INFO]
STATUS_ORDER = [
    Status.FAIL,
    Status.ERROR,
    Status.NOT_ASSESSED,
    Status.PASS,
    Status.NOT_APPLICABLE,
]


def pct(value: float | None) -> str:
    return "n/a" if value is None else f"{value * 100:.1f}%"


def evidence_text(o: OutcomeDoc) -> str:
    if not o.evidence:
        return ""
    return json.dumps(mask_evidence(o.evidence), indent=2, sort_keys=True, ensure_ascii=False)


def _sev_key(o: OutcomeDoc) -> tuple[int, str, str, str]:
    return (SEVERITY_ORDER.index(o.severity), o.target.key, o.check_id, o.detail)


@dataclass
class TargetView:
    label: str
    kind: str
    key: str
    state: str
    pass_rate: str
    outcomes: list[OutcomeDoc] = field(default_factory=list)


@dataclass
class UnitView:
    unit: UnitDoc
    pass_rate: str
    coverage: str
    counts: dict[str, int]
    findings: list[OutcomeDoc]
    problems: list[OutcomeDoc]
    targets: list[TargetView]


def unit_views(doc: Assessment) -> list[UnitView]:
    views = []
    for u in doc.units:
        outs = [
            o.model_copy(update={"message": mask_text(o.message)}) for o in doc.outcomes_of(u.id)
        ]
        findings = sorted((o for o in outs if o.status is Status.FAIL), key=_sev_key)
        problems = sorted(
            (o for o in outs if o.status in (Status.ERROR, Status.NOT_ASSESSED)), key=_sev_key
        )
        targets = []
        for t in sorted(u.targets, key=lambda t: (t.label.split(":")[0], t.kind != "host", t.key)):
            tv = TargetView(t.label, t.kind.value, t.key, t.state, pct(t.pass_rate))
            tv.outcomes = sorted(
                (o for o in outs if o.target.key == t.key),
                key=lambda o: (STATUS_ORDER.index(o.status), o.check_id, o.detail),
            )
            targets.append(tv)
        counts = u.counts.model_dump(by_alias=True)
        views.append(
            UnitView(u, pct(u.pass_rate), pct(u.coverage), counts, findings, problems, targets)
        )
    return views


def context(doc: Assessment) -> dict[str, Any]:
    return {
        "doc": doc,
        "units": unit_views(doc),
        "statuses": [s.value for s in STATUS_ORDER],
        "evidence_text": evidence_text,
        "fmt_time": lambda t: t.strftime("%Y-%m-%d %H:%M:%S UTC") if t else "not finished",
    }
