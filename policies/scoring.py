"""Scores: per target, per unit, per pack and overall, each as three numbers and a grade.

The formula (also in `policies.result.FORMULA`, the README and every report):

- A control's status on a target combines the outcomes of its checks there, worst first:
  fail > waived > error > not_assessed > pass > not_applicable. A control passes only when every
  check it names could be evaluated: a check that is planned or not installed turns a pass into
  not_assessed. A control without checks (attestation only) is not_assessed.
- In a unit, a control fails if it fails on any target. A check with no outcome in the unit is
  not_applicable when the unit has targets of the check's kind (nothing there for it to judge)
  and not_assessed when it has none (no SSH login, no web URL, no store was given), so a scan
  that looked at less can never look better.
- pass rate = passed / (passed + failed); weighted score = 100 x sum(weight x severity points)
  over passed / the same over passed + failed; coverage = (passed + failed + waived) /
  (controls - not applicable). Waived failures are counted apart (not in the pass rate); the
  'without waivers' pass rate counts them as failed.
- Grade from the weighted score by the pack's bands, then capped: a failed mandatory control
  caps it (a critical one is a gate: F), an unassessed mandatory control caps it, and so does
  coverage below the pack's minimum.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date

from policies.evidence import Evidence
from policies.loader import ResolvedControl, ResolvedPack
from policies.model import Grading, Obligation, Pack
from policies.result import (
    CheckEvidence,
    ControlDoc,
    ControlStatus,
    PackScore,
    PolicyScores,
    ScoreNumbers,
    TargetScore,
    UnitScore,
    WaivedOutcome,
    WaiverDoc,
)
from policies.waivers import LoadedWaivers, Waiver, WaiverState, waiver_applies
from scanner.model import Outcome, Severity, Status, Target, TargetKind

SEVERITY_POINTS = {
    Severity.CRITICAL: 10.0,
    Severity.HIGH: 5.0,
    Severity.MEDIUM: 2.0,
    Severity.LOW: 1.0,
    Severity.INFO: 0.0,
}
_ORDER = (
    ControlStatus.FAIL,
    ControlStatus.WAIVED,
    ControlStatus.ERROR,
    ControlStatus.NOT_ASSESSED,
    ControlStatus.PASS,
    ControlStatus.NOT_APPLICABLE,
)
_FROM_OUTCOME = {
    Status.PASS: ControlStatus.PASS,
    Status.FAIL: ControlStatus.FAIL,
    Status.ERROR: ControlStatus.ERROR,
    Status.NOT_ASSESSED: ControlStatus.NOT_ASSESSED,
    Status.NOT_APPLICABLE: ControlStatus.NOT_APPLICABLE,
}
GRADES = ("A", "B", "C", "D", "F")


def worst(statuses: Iterable[ControlStatus]) -> ControlStatus | None:
    found = set(statuses)
    return next((s for s in _ORDER if s in found), None)


def _lower(grade: str, cap: str) -> str:
    return grade if GRADES.index(grade) >= GRADES.index(cap) else cap


@dataclass
class _Row:
    """One control's status somewhere (a target or a unit), with what grading needs."""

    status: ControlStatus
    points: float
    obligation: Obligation
    severity: Severity
    control_id: str


def numbers(rows: Sequence[_Row], grading: Grading) -> ScoreNumbers:
    n = ScoreNumbers()
    for r in rows:
        attr = (
            "passed"
            if r.status is ControlStatus.PASS
            else ("failed" if r.status is ControlStatus.FAIL else r.status.value)
        )
        setattr(n, attr, getattr(n, attr) + 1)
        if r.status in (ControlStatus.PASS, ControlStatus.FAIL):
            n.points_possible += r.points
            if r.status is ControlStatus.PASS:
                n.points_earned += r.points
    _finish(n)
    n.grade, n.caps = _grade(n, rows, grading)
    return n


def _finish(n: ScoreNumbers) -> None:
    """Fill the derived numbers from the counts and points."""
    n.total = n.passed + n.failed + n.waived + n.error + n.not_assessed + n.not_applicable
    n.points_earned, n.points_possible = round(n.points_earned, 4), round(n.points_possible, 4)
    judged = n.passed + n.failed
    n.pass_rate = round(n.passed / judged, 4) if judged else None
    n.pass_rate_without_waivers = (
        round(n.passed / (judged + n.waived), 4) if judged + n.waived else None
    )
    if n.points_possible:
        n.weighted_score = round(100 * n.points_earned / n.points_possible, 2)
    else:  # only info-severity controls were judged: fall back to the pass rate
        n.weighted_score = round(100.0 * n.passed / judged, 2) if judged else None
    applicable = n.total - n.not_applicable
    n.coverage = round((judged + n.waived) / applicable, 4) if applicable else None


def _band(score: float, grading: Grading) -> str:
    for g in ("A", "B", "C", "D"):
        if score >= getattr(grading.bands, g):
            return g
    return "F"


def _grade(n: ScoreNumbers, rows: Sequence[_Row], grading: Grading) -> tuple[str, list[str]]:
    if n.weighted_score is None:
        return "n/a", []
    grade = _band(n.weighted_score, grading)
    caps: list[str] = []
    failed = sorted(
        {
            r.control_id
            for r in rows
            if r.status is ControlStatus.FAIL and r.obligation is Obligation.MANDATORY
        }
    )
    gates = sorted(
        {
            r.control_id
            for r in rows
            if r.status is ControlStatus.FAIL
            and r.obligation is Obligation.MANDATORY
            and r.severity is Severity.CRITICAL
        }
    )
    unassessed = sorted(
        {
            r.control_id
            for r in rows
            if r.status in (ControlStatus.ERROR, ControlStatus.NOT_ASSESSED)
            and r.obligation is Obligation.MANDATORY
        }
    )
    if gates:
        cap: str = grading.critical_gate_cap
        caps.append(f"critical mandatory control failed ({_few(gates)}): at most {cap}")
        grade = _lower(grade, cap)
    if failed:
        cap = grading.mandatory_fail_cap
        caps.append(f"mandatory control failed ({_few(failed)}): at most {cap}")
        grade = _lower(grade, cap)
    if unassessed:
        cap = grading.unassessed_mandatory_cap
        caps.append(f"mandatory control not assessed ({_few(unassessed)}): at most {cap}")
        grade = _lower(grade, cap)
    if n.coverage is not None and n.coverage < grading.min_coverage:
        cap = grading.low_coverage_cap
        caps.append(
            f"coverage {n.coverage * 100:.1f}% is below {grading.min_coverage * 100:.0f}%: "
            f"at most {cap}"
        )
        grade = _lower(grade, cap)
    return grade, caps


def _few(ids: list[str]) -> str:
    return ", ".join(ids[:3]) + (f" and {len(ids) - 3} more" if len(ids) > 3 else "")


# -- waivers ---------------------------------------------------------------------------------
@dataclass
class _WaiverUse:
    """Fingerprints of the failures a waiver named, by what became of them."""

    applied: set[str] = field(default_factory=set)
    expired: set[str] = field(default_factory=set)
    refused: set[str] = field(default_factory=set)


@dataclass
class _Waivers:
    loaded: LoadedWaivers | None
    as_of: date
    use: dict[int, _WaiverUse] = field(default_factory=lambda: defaultdict(_WaiverUse))

    def decide(
        self, pack_id: str, control: ResolvedControl, outcome: Outcome
    ) -> tuple[str | None, int | None]:
        """(label of the waiver that accepts this failure, or None; its index)."""
        if self.loaded is None:
            return None, None
        chosen: tuple[str | None, int | None] = (None, None)
        for i, w in enumerate(self.loaded.waivers):
            if not waiver_applies(w, pack_id, control.id, outcome):
                continue
            use = self.use[i]
            if not w.in_force(self.as_of):
                use.expired.add(outcome.fingerprint)
            elif not control.control.waivable:
                use.refused.add(outcome.fingerprint)
            else:
                use.applied.add(outcome.fingerprint)
                if chosen[0] is None:
                    chosen = (self.loaded.label(i), i)
        return chosen

    def docs(self) -> list[WaiverDoc]:
        if self.loaded is None:
            return []
        out = []
        for i, w in enumerate(self.loaded.waivers):
            use = self.use.get(i, _WaiverUse())
            state, matched, note = _state(w, use, self.as_of)
            out.append(
                WaiverDoc(
                    label=self.loaded.label(i),
                    subject=w.subject,
                    target=w.target,
                    unit=w.unit,
                    reason=w.reason,
                    approved_by=w.approved_by,
                    expires=w.expires,
                    ticket=w.ticket,
                    state=state,
                    matched=matched,
                    note=note,
                )
            )
        return out


def _state(w: Waiver, use: _WaiverUse, as_of: date) -> tuple[WaiverState, int, str]:
    if not w.in_force(as_of):
        return (
            WaiverState.EXPIRED,
            len(use.expired),
            f"expired on {w.expires.isoformat()}: the {len(use.expired)} failure(s) it names "
            "count as failures again",
        )
    if use.applied:
        return WaiverState.ACTIVE, len(use.applied), ""
    if use.refused:
        return (
            WaiverState.REFUSED,
            len(use.refused),
            "it names a control that may not be waived (a gate): the failures still count",
        )
    return WaiverState.UNMATCHED, 0, "no failure in this scan matches it; remove it or fix it"


# -- the scorer ------------------------------------------------------------------------------
@dataclass(frozen=True)
class Selection:
    pack: ResolvedPack
    level: int | None = None  # None: the pack's default level (packs without levels: all)

    @property
    def effective_level(self) -> int | None:
        if not self.pack.pack.levels:
            return None
        return self.level if self.level is not None else self.pack.pack.default_level


def control_severity(rc: ResolvedControl, evidence: Evidence) -> Severity:
    if rc.control.severity is not None:
        return rc.control.severity
    found = [c.meta.severity for r in rc.checks if (c := evidence.check(r.id)) is not None]
    return max(found, key=lambda s: s.rank) if found else Severity.MEDIUM


def score(
    selections: Sequence[Selection],
    evidence: Evidence,
    units: Sequence[str],
    *,
    waivers: LoadedWaivers | None = None,
    as_of: date,
) -> PolicyScores:
    targets_by_unit: dict[str, list[Target]] = defaultdict(list)
    for t in evidence.targets():
        targets_by_unit[t.unit].append(t)
    wv = _Waivers(waivers, as_of)
    packs = []
    for sel in selections:
        packs.append(_score_pack(sel, evidence, units, targets_by_unit, wv))
    overall = _overall(packs)
    return PolicyScores(
        as_of=as_of,
        packs=packs,
        overall=overall,
        waivers=wv.docs(),
        waiver_file=waivers.file if waivers else "",
    )


def _overall(packs: Sequence[PackScore]) -> ScoreNumbers:
    """Sums over packs; the grade is the worse of the overall band and the worst pack grade."""
    n = ScoreNumbers()
    for p in packs:
        for attr in ("passed", "failed", "waived", "error", "not_assessed", "not_applicable"):
            setattr(n, attr, getattr(n, attr) + getattr(p.numbers, attr))
        n.points_earned += p.numbers.points_earned
        n.points_possible += p.numbers.points_possible
    _finish(n)
    graded = [p.numbers.grade for p in packs if p.numbers.grade in GRADES]
    if n.weighted_score is not None and graded:
        n.grade = _lower(_band(n.weighted_score, Grading()), max(graded, key=GRADES.index))
        n.caps = [f"{p.id}: {c}" for p in packs for c in p.numbers.caps]
    return n


def _score_pack(
    sel: Selection,
    evidence: Evidence,
    units: Sequence[str],
    targets_by_unit: dict[str, list[Target]],
    wv: _Waivers,
) -> PackScore:
    pack = sel.pack.pack
    level = sel.effective_level
    chosen = [c for c in sel.pack.controls if c.applies_at(level)]
    unit_scores: list[UnitScore] = []
    all_rows: list[_Row] = []
    for unit in units:
        us, rows = _score_unit(pack.id, chosen, evidence, unit, targets_by_unit[unit], wv, pack)
        unit_scores.append(us)
        all_rows.extend(rows)
    n = numbers(all_rows, pack.grading)
    level_title = next((lv.title for lv in pack.levels if lv.level == level), "")
    return PackScore(
        id=pack.id,
        title=pack.title,
        version=pack.version,
        framework=pack.framework.name,
        edition=pack.framework.edition,
        verification=pack.framework.verification.value,
        level=level,
        level_title=level_title,
        mappings={m.id: m.title for m in pack.mappings},
        numbers=n,
        units=unit_scores,
        not_selected=len(sel.pack.controls) - len(chosen),
    )


def _score_unit(
    pack_id: str,
    controls: Sequence[ResolvedControl],
    evidence: Evidence,
    unit: str,
    targets: Sequence[Target],
    wv: _Waivers,
    pack: Pack,
) -> tuple[UnitScore, list[_Row]]:
    kinds = {t.kind for t in targets}
    labels = {t.key: t.label for t in targets}
    unit_rows: list[_Row] = []
    target_rows: dict[str, list[_Row]] = defaultdict(list)
    target_status: dict[str, dict[str, ControlStatus]] = defaultdict(dict)
    docs: list[ControlDoc] = []
    for rc in controls:
        sev = control_severity(rc, evidence)
        points = rc.control.weight * SEVERITY_POINTS[sev]
        doc, per_target = _control(pack_id, rc, evidence, unit, kinds, wv, sev)
        docs.append(doc)
        unit_rows.append(_Row(doc.status, points, rc.obligation, sev, rc.id))
        for key, st in per_target.items():
            target_rows[key].append(_Row(st, points, rc.obligation, sev, rc.id))
            target_status[key][rc.id] = st
            labels.setdefault(key, key)
    tscores = [
        TargetScore(
            key=key,
            label=labels[key],
            numbers=numbers(rows, pack.grading),
            controls=target_status[key],
        )
        for key, rows in sorted(target_rows.items())
    ]
    return (
        UnitScore(
            unit=unit, numbers=numbers(unit_rows, pack.grading), controls=docs, targets=tscores
        ),
        unit_rows,
    )


_KIND_HINT = {
    TargetKind.SSH: "no SSH login was made in this unit (give SSH credentials in the inventory)",
    TargetKind.WEB: "no web URL was assessed in this unit",
    TargetKind.STORE: "no document store was assessed in this unit",
    TargetKind.DOCUMENT: "no document was assessed in this unit",
    TargetKind.SERVICE: "no network service was found in this unit",
    TargetKind.HOST: "no host was assessed in this unit",
}


def _control(
    pack_id: str,
    rc: ResolvedControl,
    evidence: Evidence,
    unit: str,
    kinds: set[TargetKind],
    wv: _Waivers,
    sev: Severity,
) -> tuple[ControlDoc, dict[str, ControlStatus]]:
    c = rc.control
    per_target: dict[str, list[ControlStatus]] = defaultdict(list)
    unit_extra: list[ControlStatus] = []
    reasons: list[str] = []
    checks: list[CheckEvidence] = []
    failing: set[str] = set()
    waived: list[WaivedOutcome] = []
    incomplete = False
    for ref in rc.checks:
        outs = evidence.for_ref(ref)
        check = evidence.check(ref.id)
        state = "installed" if check else ("planned" if ref.planned else "not_installed")
        if outs is None:
            incomplete = True
            unit_extra.append(ControlStatus.NOT_ASSESSED)
            reasons.append(
                f"{ref.id} is planned and not installed yet"
                if ref.planned
                else f"{ref.id} is not installed"
            )
            checks.append(CheckEvidence(id=ref.id, state=state, params=ref.params))
            continue
        mine = [o for o in outs if o.unit == unit]
        counts: dict[str, int] = defaultdict(int)
        for o in mine:
            counts[o.status.value] += 1
            st = _FROM_OUTCOME[o.status]
            if st is ControlStatus.FAIL:
                label, _ = wv.decide(pack_id, rc, o)
                if label is not None:
                    st = ControlStatus.WAIVED
                    waived.append(
                        WaivedOutcome(
                            fingerprint=o.fingerprint,
                            check_id=o.check_id,
                            target=o.target.label,
                            waiver=label,
                        )
                    )
                else:
                    failing.add(o.target.label)
            per_target[o.target.key].append(st)
        checks.append(CheckEvidence(id=ref.id, state=state, params=ref.params, counts=counts))
        if not mine:
            kind = check.meta.target_kind if check else None
            if kind is not None and (
                kind in kinds or (kind is TargetKind.SERVICE and TargetKind.HOST in kinds)
            ):
                unit_extra.append(ControlStatus.NOT_APPLICABLE)
            else:
                unit_extra.append(ControlStatus.NOT_ASSESSED)
                hint = _KIND_HINT.get(kind, "no evidence") if kind else "no evidence"
                reasons.append(f"{ref.id}: {hint}")
    target_final: dict[str, ControlStatus] = {}
    for key, sts in per_target.items():
        st = worst(sts) or ControlStatus.NOT_ASSESSED
        if incomplete and st is ControlStatus.PASS:
            st = ControlStatus.NOT_ASSESSED
        target_final[key] = st
    if not rc.checks:
        status = ControlStatus.NOT_ASSESSED
        reasons.append(f"needs attestation: {c.manual}")
    else:
        status = worst([*target_final.values(), *unit_extra]) or ControlStatus.NOT_ASSESSED
    if status is ControlStatus.FAIL:
        reason = f"fails on {_few(sorted(failing))}"
    elif status is ControlStatus.WAIVED:
        reason = f"{len(waived)} failure(s) accepted by waiver"
    elif status is ControlStatus.NOT_APPLICABLE:
        reason = "nothing in this unit for its checks to judge"
    else:
        reason = "; ".join(reasons)
    return (
        ControlDoc(
            id=rc.id,
            title=c.title,
            section=rc.section,
            source_pack=rc.source_pack,
            obligation=rc.obligation,
            severity=sev,
            weight=c.weight,
            level=rc.level,
            status=status,
            reason=reason,
            requirements=list(c.requirements),
            mapping=dict(c.mapping),
            checks=checks,
            failing_targets=sorted(failing),
            waived=waived,
            manual=c.manual,
        ),
        target_final,
    )
