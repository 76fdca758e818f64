"""Scoring on hand-computed examples: gates, waivers (active, expired, unmatched, refused),
not-assessed controls, levels, parameter overrides re-evaluated on stored facts.

The checks here are small pure test checks registered in a private registry; the numbers in
each assertion were worked out by hand from the outcomes listed in `OUTCOMES` (see the comments).
"""

from __future__ import annotations

from datetime import date

import pytest
from pydantic import BaseModel, ConfigDict

from policies.evidence import Evidence
from policies.loader import Catalog, parse_pack
from policies.result import ControlStatus
from policies.scoring import Selection, score
from policies.waivers import WaiverState, parse_waivers
from scanner.model import (
    Facts,
    Outcome,
    Reference,
    Remediation,
    Result,
    Severity,
    Status,
    Target,
    TargetKind,
    failed,
    fingerprint,
    passed,
)
from scanner.plugins import Check, CheckMeta, CollectContext, Collector, FactsView, Registry
from scanner.store import TargetRecord

AS_OF = date(2026, 12, 1)
UNIT = "u1"
HOST = Target(kind=TargetKind.HOST, unit=UNIT, address="192.0.2.1")
FTP = Target(kind=TargetKind.SERVICE, unit=UNIT, address="192.0.2.1", port=21)
WEB = Target(kind=TargetKind.SERVICE, unit=UNIT, address="192.0.2.1", port=80)


class CountFacts(Facts):
    value: int = 0


class CountCollector(Collector):
    id = "t.count"
    target_kind = TargetKind.SERVICE
    facts_model = CountFacts

    async def collect(self, target: Target, ctx: CollectContext) -> Facts:  # pragma: no cover
        raise AssertionError("scoring never collects")


class LimitParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    limit: int = 10


def _meta(cid: str, kind: TargetKind, sev: Severity) -> CheckMeta:
    return CheckMeta(
        id=cid,
        title=f"test check {cid}",
        target_kind=kind,
        facts=("t.count",),
        severity=sev,
        rationale="a pure check used by the scoring tests only",
        remediation=Remediation(text="lower the value"),
        references=(Reference(scheme="cwe", id="CWE-0"),),
    )


class SvcOne(Check):
    meta = _meta("t.svc.one", TargetKind.SERVICE, Severity.HIGH)
    Params = LimitParams

    def evaluate(self, facts: FactsView, params: LimitParams) -> Result:
        v = facts.get("t.count", CountFacts).value
        return passed("ok", value=v) if v <= params.limit else failed("too many", value=v)


class HostTwo(Check):
    meta = _meta("t.host.two", TargetKind.HOST, Severity.MEDIUM)

    def applies(self, target: Target, facts: FactsView) -> bool:
        return True

    def evaluate(self, facts: FactsView, params: object) -> Result:  # pragma: no cover
        return passed("ok")


class SshThree(Check):
    meta = _meta("t.ssh.three", TargetKind.SSH, Severity.LOW)

    def applies(self, target: Target, facts: FactsView) -> bool:
        return target.kind is TargetKind.SSH

    def evaluate(self, facts: FactsView, params: object) -> Result:  # pragma: no cover
        return passed("ok")


def registry() -> Registry:
    reg = Registry()
    reg.add_collector(CountCollector)
    for c in (SvcOne, HostTwo, SshThree):
        reg.add_check(c)
    return reg


def outcome(check_id: str, target: Target, status: Status, sev: Severity) -> Outcome:
    return Outcome(
        scan_id="s1",
        unit=target.unit,
        check_id=check_id,
        title=check_id,
        status=status,
        severity=sev,
        target=target,
        message=status.value,
        fingerprint=fingerprint(check_id, target.key),
    )


# t.svc.one fails on FTP (value 20 > 10) and passes on WEB (value 5); t.host.two passes on HOST
OUTCOMES = [
    outcome("t.svc.one", FTP, Status.FAIL, Severity.HIGH),
    outcome("t.svc.one", WEB, Status.PASS, Severity.HIGH),
    outcome("t.host.two", HOST, Status.PASS, Severity.MEDIUM),
]
RECORDS = [
    TargetRecord(1, UNIT, HOST, "done", [], {}),
    TargetRecord(2, UNIT, FTP, "done", [], {"t.count": {"value": 20}}),
    TargetRecord(3, UNIT, WEB, "done", [], {"t.count": {"value": 5}}),
]

PACK = """\
schema: assay-policy/1
id: t-pack
title: Test pack
version: 1.0.0
framework: {name: Test framework, edition: "1", verification: unverified}
changelog: [{version: 1.0.0, date: 2026-12-01, changes: [first]}]
levels:
  - {level: 2, title: Level two}
  - {level: 3, title: Level three}
default_level: 2
controls:
  - id: C1            # mandatory, weight 2, high: 2 x 5 = 10 points
    title: One must hold
    obligation: mandatory
    weight: 2
    checks: [t.svc.one]
  - id: C2            # medium: 1 x 2 = 2 points
    title: Two holds
    checks: [t.host.two]
  - id: C3            # low: 1 point; one of its checks is planned
    title: Three holds
    severity: low
    checks: [t.svc.one, {id: t.planned.x, planned: true}]
  - id: C4            # level 3 only, critical: 10 points
    title: Four holds
    level: 3
    severity: critical
    checks: [t.host.two]
  - id: C5
    title: Five is attested
    manual: a signed security regulation exists
  - id: C6            # an ssh check, and this unit has no ssh target
    title: Six holds
    checks: [t.ssh.three]
"""


def _score(
    pack_text: str = PACK,
    level: int | None = None,
    waivers: str | None = None,
    outcomes: list[Outcome] = OUTCOMES,
) -> tuple:  # type: ignore[type-arg]
    cat = Catalog([parse_pack(pack_text, "t-pack.yaml")])
    reg = registry()
    assert cat.validate(cat.packs["t-pack"], reg.checks) == []
    ev = Evidence(outcomes, RECORDS, reg)
    lw = parse_waivers(waivers, "w.yaml") if waivers else None
    result = score([Selection(cat.resolve("t-pack"), level)], ev, [UNIT], waivers=lw, as_of=AS_OF)
    pack = result.packs[0]
    unit = pack.units[0]
    return result, pack, unit, {c.id: c for c in unit.controls}


def test_level_2_by_hand() -> None:
    result, pack, unit, controls = _score()
    assert pack.level == 2 and pack.not_selected == 1  # C4 is level 3
    assert {k: c.status for k, c in controls.items()} == {
        "C1": ControlStatus.FAIL,  # fails on FTP
        "C2": ControlStatus.PASS,
        "C3": ControlStatus.FAIL,  # a failure is known even though t.planned.x is missing
        "C5": ControlStatus.NOT_ASSESSED,  # attestation only
        "C6": ControlStatus.NOT_ASSESSED,  # no SSH login in this unit
    }
    assert "no SSH login" in controls["C6"].reason
    assert "needs attestation" in controls["C5"].reason
    assert controls["C1"].failing_targets == [FTP.label]
    n = unit.numbers
    assert (n.passed, n.failed, n.waived, n.not_assessed, n.total) == (1, 2, 0, 2, 5)
    assert n.pass_rate == pytest.approx(1 / 3, abs=1e-4)
    assert (n.points_earned, n.points_possible) == (2.0, 13.0)  # C2 of C1 + C2 + C3
    assert n.weighted_score == pytest.approx(100 * 2 / 13, abs=0.01)  # 15.38
    assert n.coverage == pytest.approx(3 / 5)
    assert n.grade == "F"
    assert any("mandatory control failed (C1)" in c for c in n.caps)
    assert any("coverage 60.0%" in c for c in n.caps)
    assert pack.numbers == n  # one unit: the pack is the unit
    assert result.overall.grade == "F" and result.overall.weighted_score == n.weighted_score


def test_targets_by_hand() -> None:
    _, _, unit, _ = _score()
    t = {ts.key: ts for ts in unit.targets}
    assert t[FTP.key].controls == {"C1": ControlStatus.FAIL, "C3": ControlStatus.FAIL}
    # on WEB t.svc.one passes, but C3 also needs the planned check: not assessed, never passed
    assert t[WEB.key].controls == {"C1": ControlStatus.PASS, "C3": ControlStatus.NOT_ASSESSED}
    assert t[WEB.key].numbers.pass_rate == 1.0 and t[WEB.key].numbers.coverage == 0.5
    assert t[HOST.key].controls == {"C2": ControlStatus.PASS}
    assert t[FTP.key].numbers.pass_rate == 0.0 and t[FTP.key].numbers.grade == "F"


def test_level_3_adds_its_controls() -> None:
    _, pack, unit, controls = _score(level=3)
    assert pack.level == 3 and pack.not_selected == 0
    assert controls["C4"].status is ControlStatus.PASS
    n = unit.numbers
    assert (n.points_earned, n.points_possible) == (12.0, 23.0)  # + C4's 10 points
    assert n.weighted_score == pytest.approx(52.17, abs=0.01)


def test_error_and_not_assessed_never_pass() -> None:
    outs = [
        outcome("t.svc.one", FTP, Status.ERROR, Severity.HIGH),
        outcome("t.svc.one", WEB, Status.NOT_ASSESSED, Severity.HIGH),
        outcome("t.host.two", HOST, Status.PASS, Severity.MEDIUM),
    ]
    _, _, unit, controls = _score(outcomes=outs)
    assert controls["C1"].status is ControlStatus.ERROR
    assert controls["C3"].status is ControlStatus.ERROR
    n = unit.numbers
    assert (n.passed, n.failed, n.error, n.not_assessed) == (1, 0, 2, 2)
    assert n.pass_rate == 1.0 and n.coverage == pytest.approx(1 / 5)
    # 100 % of what was judged, but a mandatory control is unassessed and coverage is 20 %
    assert n.weighted_score == 100.0 and n.grade == "C"
    assert any("mandatory control not assessed (C1)" in c for c in n.caps)


WAIVERS = """\
version: 1
waivers:
  - id: W1
    check: t.svc.one
    target: "192.0.2.1:21*"
    reason: legacy FTP until the migration
    approved_by: CISO
    expires: 2027-01-31
  - id: W2
    check: t.host.two
    target: "*"
    reason: nothing fails, so this matches nothing
    approved_by: CISO
    expires: 2027-01-31
"""


def test_active_waiver_is_counted_apart() -> None:
    result, _, unit, controls = _score(waivers=WAIVERS)
    assert controls["C1"].status is ControlStatus.WAIVED
    assert controls["C3"].status is ControlStatus.WAIVED
    assert [w.waiver for w in controls["C1"].waived] == ["W1"]
    n = unit.numbers
    assert (n.passed, n.failed, n.waived) == (1, 0, 2)
    assert n.pass_rate == 1.0  # waived failures are not in the pass rate ...
    assert n.pass_rate_without_waivers == pytest.approx(1 / 3, abs=1e-4)  # ... shown here
    assert (n.points_earned, n.points_possible) == (2.0, 2.0)
    assert n.coverage == pytest.approx(3 / 5)  # a waived failure was assessed
    assert n.grade == "C"  # 100, but capped by coverage; no mandatory control failed
    states = {w.label: (w.state, w.matched) for w in result.waivers}
    assert states == {"W1": (WaiverState.ACTIVE, 1), "W2": (WaiverState.UNMATCHED, 0)}


def test_expired_waiver_stops_applying_and_is_reported() -> None:
    expired = WAIVERS.replace("2027-01-31", "2026-11-30", 1)
    result, _, unit, controls = _score(waivers=expired)
    assert controls["C1"].status is ControlStatus.FAIL
    assert unit.numbers.waived == 0 and unit.numbers.failed == 2
    w1 = next(w for w in result.waivers if w.label == "W1")
    assert w1.state is WaiverState.EXPIRED and w1.matched == 1
    assert "2026-11-30" in w1.note
    # the expiry day itself is still in force
    _, _, unit, _ = _score(waivers=WAIVERS.replace("2027-01-31", "2026-12-01", 1))
    assert unit.numbers.waived == 2


def test_a_gate_cannot_be_waived() -> None:
    gate = PACK.replace(
        "    checks: [t.svc.one]\n", "    checks: [t.svc.one]\n    waivable: false\n", 1
    )
    result, _, unit, controls = _score(pack_text=gate, waivers=WAIVERS)
    assert controls["C1"].status is ControlStatus.FAIL  # refused for the gate
    assert controls["C3"].status is ControlStatus.WAIVED  # the same waiver still covers C3
    w1 = next(w for w in result.waivers if w.label == "W1")
    assert w1.state is WaiverState.ACTIVE
    assert unit.numbers.grade == "F"  # 2 / 12 points, and the mandatory C1 failed


def test_critical_mandatory_gate_caps_at_f() -> None:
    good = [
        outcome("t.svc.one", FTP, Status.PASS, Severity.HIGH),
        outcome("t.svc.one", WEB, Status.PASS, Severity.HIGH),
        outcome("t.host.two", HOST, Status.FAIL, Severity.MEDIUM),
    ]
    gate = (
        PACK.replace(
            "    title: Two holds\n",
            "    title: Two holds\n    obligation: mandatory\n"
            "    severity: critical\n    weight: 0.1\n",
            1,
        )
        .replace(
            "  - id: C5\n    title: Five is attested\n    manual: a signed security "
            "regulation exists\n",
            "",
        )
        .replace(
            "  - id: C6            # an ssh check, and this unit has no ssh target\n"
            "    title: Six holds\n    checks: [t.ssh.three]\n",
            "",
        )
    )
    _, _, unit, controls = _score(pack_text=gate, outcomes=good)
    # C1 10 + C3 1 earned (C3: pass, but its planned check is missing: not assessed)
    assert controls["C2"].status is ControlStatus.FAIL
    n = unit.numbers
    assert (n.points_earned, n.points_possible) == (10.0, 11.0)  # C2: 0.1 x 10 = 1 point
    assert n.weighted_score == pytest.approx(90.91, abs=0.01)  # an A by the bands ...
    assert n.grade == "F"  # ... but a critical mandatory control failed
    assert any("critical mandatory control failed (C2)" in c for c in n.caps)


def test_parameter_override_is_evaluated_on_stored_facts() -> None:
    # C1 with limit 30: FTP's stored value 20 now passes; no network, only stored facts
    text = PACK.replace(
        "    checks: [t.svc.one]\n", "    checks: [{id: t.svc.one, params: {limit: 30}}]\n", 1
    )
    _, _, _, controls = _score(pack_text=text)
    assert controls["C1"].status is ControlStatus.PASS
    assert controls["C1"].checks[0].counts == {"pass": 2}
    assert controls["C3"].status is ControlStatus.FAIL  # default limit, stored outcomes


def test_check_without_stored_outcomes_is_run_on_stored_facts() -> None:
    # a scan made before t.svc.one existed: only the host outcome was stored
    _, _, _, controls = _score(outcomes=[OUTCOMES[2]])
    assert controls["C1"].status is ControlStatus.FAIL
    assert controls["C1"].checks[0].counts == {"fail": 1, "pass": 1}


def test_service_check_with_nothing_to_judge_is_not_applicable() -> None:
    records_no_services = [TargetRecord(1, UNIT, HOST, "done", [], {})]
    cat = Catalog([parse_pack(PACK, "t-pack.yaml")])
    ev = Evidence([OUTCOMES[2]], records_no_services, registry())
    result = score([Selection(cat.resolve("t-pack"))], ev, [UNIT], as_of=AS_OF)
    controls = {c.id: c for c in result.packs[0].units[0].controls}
    assert controls["C1"].status is ControlStatus.NOT_APPLICABLE
    assert controls["C3"].status is ControlStatus.NOT_ASSESSED  # planned check missing
    n = result.packs[0].units[0].numbers
    assert (n.passed, n.not_applicable, n.total) == (1, 1, 5)
    assert n.coverage == pytest.approx(1 / 4)


def test_two_units_sum_into_the_pack() -> None:
    other = [
        outcome("t.svc.one", FTP.model_copy(update={"unit": "u2"}), Status.PASS, Severity.HIGH),
    ]
    cat = Catalog([parse_pack(PACK, "t-pack.yaml")])
    ev = Evidence([*OUTCOMES, *other], [], registry())
    result = score([Selection(cat.resolve("t-pack"))], ev, [UNIT, "u2"], as_of=AS_OF)
    u1, u2 = result.packs[0].units
    assert u2.numbers.passed == 1  # C1 passes in u2; C3 is not assessed (planned check)
    p = result.packs[0].numbers
    assert p.passed == u1.numbers.passed + u2.numbers.passed
    assert p.failed == u1.numbers.failed + u2.numbers.failed
    assert p.points_possible == u1.numbers.points_possible + u2.numbers.points_possible


def test_nothing_assessed_has_no_grade() -> None:
    cat = Catalog([parse_pack(PACK, "t-pack.yaml")])
    result = score(
        [Selection(cat.resolve("t-pack"))], Evidence([], [], registry()), [UNIT], as_of=AS_OF
    )
    n = result.overall
    assert n.grade == "n/a" and n.pass_rate is None and n.weighted_score is None
    assert n.coverage == 0.0
