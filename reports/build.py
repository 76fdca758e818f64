"""Build the canonical `Assessment` of one stored scan.

Everything a report shows comes from the store (scan record, discovery docs, targets,
outcomes) and the inventory stored with the scan, so a report can be produced again at any time
(`assay report SCAN_ID`) without rescanning.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from contextvars import ContextVar
from typing import Any

from reports.assessment import (
    Assessment,
    BrokenPluginDoc,
    ContactDoc,
    Counts,
    DiscoveryDoc,
    TargetSummary,
    ToolInfo,
    UnitDoc,
    outcome_doc,
)
from scanner.inventory import InventoryError, parse_inventory
from scanner.model import Severity, Status
from scanner.store import Store

# Set by the CLI while --policy is in force: (store, scan_id) -> PolicyScores. Every assessment
# built meanwhile (the report's, and those a diff compares with) carries its scores.
SCORER: ContextVar[Callable[[Store, str], Any] | None] = ContextVar("assay_scorer", default=None)

_SEVERITY_ORDER = {s: -s.rank for s in Severity}
_STATUS_ORDER = {
    Status.FAIL: 0,
    Status.ERROR: 1,
    Status.NOT_ASSESSED: 2,
    Status.PASS: 3,
    Status.NOT_APPLICABLE: 4,
}


def build_assessment(store: Store, scan_id: str) -> Assessment:
    rec = store.scan(scan_id)
    names: dict[str, tuple[str, ContactDoc]] = {}
    try:
        inv = parse_inventory(rec.inventory_text, rec.inventory_name or "<stored inventory>")
        for u in inv.units:
            names[u.id] = (u.name, ContactDoc(**u.contact.model_dump()))
    except InventoryError:
        pass  # a stored inventory that no longer parses still lets the report be written

    outcomes = store.outcomes(rec.id)
    target_recs = store.targets(rec.id)
    by_target: dict[str, list[Status]] = defaultdict(list)
    for o in outcomes:
        by_target[o.target.key].append(o.status)

    units: list[UnitDoc] = []
    for unit_id in rec.units:
        disc = store.discovery(rec.id, unit_id)
        ddoc = DiscoveryDoc.model_validate(disc[0]) if disc and disc[0].get("engine") else None
        if disc and not disc[0].get("engine") and disc[0].get("errors"):
            ddoc = DiscoveryDoc.model_validate(disc[0] | {"engine": "none"})
        summaries = []
        planned = {t.key: t for t in (disc[1] if disc else [])}
        seen = set()
        for t in target_recs:
            if t.unit != unit_id:
                continue
            seen.add(t.target.key)
            counts = Counts.of(by_target.get(t.target.key, []))
            summaries.append(
                TargetSummary(
                    key=t.target.key,
                    kind=t.target.kind,
                    label=t.target.label,
                    state="error" if t.state == "error" else "done",
                    counts=counts,
                    pass_rate=counts.pass_rate,
                    coverage=counts.coverage,
                    errors=t.errors,
                )
            )
        for key, pt in planned.items():  # discovered but never finished (interrupted scan)
            if key not in seen:
                summaries.append(
                    TargetSummary(
                        key=key,
                        kind=pt.kind,
                        label=pt.label,
                        state="pending",
                        counts=Counts.of([]),
                        pass_rate=None,
                        coverage=None,
                    )
                )
        ucounts = Counts.of(o.status for o in outcomes if o.unit == unit_id)
        name, contact = names.get(unit_id, (unit_id, ContactDoc()))
        units.append(
            UnitDoc(
                id=unit_id,
                name=name,
                contact=contact,
                discovery=ddoc,
                counts=ucounts,
                pass_rate=ucounts.pass_rate,
                coverage=ucounts.coverage,
                targets=summaries,
            )
        )

    docs = [outcome_doc(o) for o in outcomes]
    docs.sort(
        key=lambda o: (
            o.unit,
            _STATUS_ORDER[o.status],
            _SEVERITY_ORDER[o.severity],
            o.target.key,
            o.check_id,
            o.detail,
        )
    )
    state = rec.state if rec.state in ("complete", "running") else "interrupted"
    return Assessment(
        scan_id=rec.id,
        tool=ToolInfo(version=rec.tool_version),
        started_at=rec.started_at,
        finished_at=rec.finished_at,
        state=state,  # type: ignore[arg-type]
        inventory=rec.inventory_name,
        inventory_sha256=rec.inventory_sha256,
        active=bool(rec.options.get("active")),
        units=units,
        outcomes=docs,
        broken_plugins=[BrokenPluginDoc(**b) for b in rec.broken_plugins],
        active_probes=rec.active_probes,
        policies=scorer(store, rec.id) if (scorer := SCORER.get()) else None,
    )
