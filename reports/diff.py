"""What changed between two scans: new, fixed, still open and reopened findings, by fingerprint.

A finding is a failed outcome; its fingerprint (check, target, detail) is the same in every scan,
so two documents can be compared without any matching heuristics:

- new:        fails now, did not fail in the previous scan nor in any earlier one given
- reopened:   fails now, did not fail in the previous scan, but failed in an earlier one
- still open: failed before and fails now (a changed severity is listed as well)
- fixed:      failed before and now passes or no longer applies, or its target is gone while
              the host (or store) it lived on was assessed: a removed telnet service is fixed
- not re-assessed: failed before, but the new scan has no verdict on it (error, not assessed,
              or its host was not scanned, e.g. `--unit` chose another unit); never "fixed",
              because a scan that could not look must not make a unit look better

Pass rate and coverage per unit (and over the whole scan) are compared too.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Literal

from pydantic import BaseModel, ConfigDict, Field

from reports.i18n import N_, gettext
from scanner.model import Severity, Status

if TYPE_CHECKING:
    from reports.assessment import Assessment, OutcomeDoc

Change = Literal["new", "reopened", "still_open", "fixed", "not_reassessed"]
CHANGES: tuple[Change, ...] = ("new", "reopened", "still_open", "fixed", "not_reassessed")


class _Doc(BaseModel):
    model_config = ConfigDict(extra="forbid")


class DiffEntry(_Doc):
    fingerprint: str
    change: Change
    check_id: str
    title: str
    unit: str
    target: str  # label of the target
    target_key: str
    detail: str = ""
    severity: Severity
    previous_severity: Severity | None = None
    status: Status | None = None  # in the new scan (None: absent from it)
    previous_status: Status | None = None
    reason: str = ""


class ScoreChange(_Doc):
    unit: str  # "" for the whole scan
    previous_pass_rate: float | None
    pass_rate: float | None
    previous_coverage: float | None
    coverage: float | None


class DiffDoc(_Doc):
    """The comparison of a scan with the one before it (stored in the newer document)."""

    previous_scan_id: str
    previous_started_at: datetime
    history_scans: list[str] = Field(default_factory=list)  # consulted for "reopened"
    new: list[DiffEntry] = Field(default_factory=list)
    reopened: list[DiffEntry] = Field(default_factory=list)
    still_open: list[DiffEntry] = Field(default_factory=list)
    fixed: list[DiffEntry] = Field(default_factory=list)
    not_reassessed: list[DiffEntry] = Field(default_factory=list)
    severity_changes: list[DiffEntry] = Field(default_factory=list)
    scores: list[ScoreChange] = Field(default_factory=list)

    def counts(self) -> dict[str, int]:
        return {c: len(getattr(self, c)) for c in CHANGES}


def _entry(
    change: Change, now: OutcomeDoc | None, before: OutcomeDoc | None, reason: str
) -> DiffEntry:
    o = now or before
    assert o is not None
    return DiffEntry(
        fingerprint=o.fingerprint,
        change=change,
        check_id=o.check_id,
        title=o.title,
        unit=o.unit,
        target=o.target.label,
        target_key=o.target.key,
        detail=o.detail,
        severity=o.severity,
        previous_severity=before.severity if before else None,
        status=now.status if now else None,
        previous_status=before.status if before else None,
        reason=reason,
    )


def _anchors(doc: Assessment) -> tuple[set[str], list[str]]:
    """Addresses and store paths where the document reached a verdict (pass, fail or not
    applicable): a target missing there was looked for and is gone. An error or not-assessed
    outcome does not count, so an unreachable host never makes its old findings "fixed"."""
    addresses: set[str] = set()
    stores: list[str] = []
    for o in doc.outcomes:
        if o.status not in (Status.PASS, Status.FAIL, Status.NOT_APPLICABLE):
            continue
        if o.target.address:
            addresses.add(o.target.address)
        if o.target.kind.value == "store" and o.target.path:
            stores.append(o.target.path.rstrip("/") + "/")
    return addresses, stores


def _covered(o: OutcomeDoc, addresses: set[str], stores: list[str]) -> bool:
    t = o.target
    if t.address:
        return t.address in addresses
    if t.path:
        return any((t.path.rstrip("/") + "/").startswith(s) for s in stores)
    return False


def _order(e: DiffEntry) -> tuple[int, str, str, str, str]:
    return (-e.severity.rank, e.unit, e.target_key, e.check_id, e.detail)


def _failing(docs: Iterable[Assessment]) -> set[str]:
    return {o.fingerprint for d in docs for o in d.outcomes if o.status is Status.FAIL}


def compare(
    previous: Assessment, current: Assessment, history: Sequence[Assessment] = ()
) -> DiffDoc:
    """Compare `current` with `previous`; `history` are scans older than `previous`."""
    before = {o.fingerprint: o for o in previous.outcomes}
    now = {o.fingerprint: o for o in current.outcomes}
    failed_earlier = _failing(history)
    addresses, stores = _anchors(current)
    buckets: dict[Change, list[DiffEntry]] = {c: [] for c in CHANGES}
    severity_changes: list[DiffEntry] = []

    for fp, o in now.items():
        if o.status is not Status.FAIL:
            continue
        b = before.get(fp)
        if b is not None and b.status is Status.FAIL:
            e = _entry("still_open", o, b, "fails in both scans")
            buckets["still_open"].append(e)
            if b.severity is not o.severity:
                severity_changes.append(e)
        elif fp in failed_earlier:
            why = "failed in an earlier scan, was not failing in the previous one"
            buckets["reopened"].append(_entry("reopened", o, b, why))
        else:
            buckets["new"].append(_entry("new", o, b, "first seen failing"))

    for fp, b in before.items():
        if b.status is not Status.FAIL:
            continue
        n = now.get(fp)
        if n is not None and n.status is Status.FAIL:
            continue
        if n is not None and n.status in (Status.PASS, Status.NOT_APPLICABLE):
            buckets["fixed"].append(_entry("fixed", n, b, f"now {n.status.value}"))
        elif n is not None:
            why = f"now {n.status.value}: no verdict in the new scan"
            buckets["not_reassessed"].append(_entry("not_reassessed", n, b, why))
        elif _covered(b, addresses, stores):
            why = "the target is no longer found where the new scan looked"
            buckets["fixed"].append(_entry("fixed", None, b, why))
        else:
            why = "the new scan did not assess this target"
            buckets["not_reassessed"].append(_entry("not_reassessed", None, b, why))

    return DiffDoc(
        previous_scan_id=previous.scan_id,
        previous_started_at=previous.started_at,
        history_scans=[d.scan_id for d in history],
        severity_changes=sorted(severity_changes, key=_order),
        scores=_scores(previous, current),
        **{c: sorted(entries, key=_order) for c, entries in buckets.items()},
    )


def _scores(previous: Assessment, current: Assessment) -> list[ScoreChange]:
    old_units = {u.id: u for u in previous.units}
    out = [
        ScoreChange(
            unit="",
            previous_pass_rate=previous.counts.pass_rate,
            pass_rate=current.counts.pass_rate,
            previous_coverage=previous.counts.coverage,
            coverage=current.counts.coverage,
        )
    ]
    for u in sorted(current.units, key=lambda u: u.id):
        old = old_units.get(u.id)
        out.append(
            ScoreChange(
                unit=u.id,
                previous_pass_rate=old.pass_rate if old else None,
                pass_rate=u.pass_rate,
                previous_coverage=old.coverage if old else None,
                coverage=u.coverage,
            )
        )
    return out


def with_diff(
    current: Assessment, previous: Assessment | None, history: Sequence[Assessment] = ()
) -> Assessment:
    """`current` carrying its comparison with `previous` (unchanged when there is none)."""
    if previous is None:
        return current
    return current.model_copy(update={"diff": compare(previous, current, history)})


def score_delta(old: float | None, new: float | None) -> str:
    """'+12.5 points', '-3.0 points', 'no change', or 'n/a' when either side is unknown (in the
    report language)."""
    if old is None or new is None:
        return gettext("n/a")
    d = round((new - old) * 100, 1)
    if d == 0:
        return gettext("no change")
    return gettext("{delta} points").format(delta=f"{d:+.1f}")


# The reasons a comparison records, in English as the document keeps them; the reports show them
# through the catalogues (a reason not listed here, from another version, is shown as it is).
REASONS = (
    N_("fails in both scans"),
    N_("failed in an earlier scan, was not failing in the previous one"),
    N_("first seen failing"),
    N_("now pass"),
    N_("now not_applicable"),
    N_("now error: no verdict in the new scan"),
    N_("now not_assessed: no verdict in the new scan"),
    N_("the target is no longer found where the new scan looked"),
    N_("the new scan did not assess this target"),
)
