"""A unit's policy scores per scan, as the dashboard, the API and the alerts show them.

The numbers are those of `policies.scoring` (the same as `assay report --policy`): pass rate,
weighted score and coverage over the pack's controls, with its grade. The pack is the one the
scan was run for (the job's policy: the schedule's, else the unit's, else the server's
default). A unit's trend re-scores its earlier scans under the latest scan's pack, which is
possible without rescanning because checks are pure; so a trend never mixes two packs.

Scoring a scan needs its outcomes and facts, so the result is kept in `unit_scores` (per scan,
unit and pack, with the pack version; a new pack version is scored again).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import delete, insert, select
from sqlalchemy.exc import IntegrityError

from policies.evidence import Evidence
from policies.loader import Catalog
from policies.scoring import Selection, score
from scanner.plugins import Registry, load_registry
from scanner.server import tables as t
from scanner.store import Store

DEFAULT_POLICY = "cis-baseline"  # the baseline every unit can be held to (CIS IG1)
_SEV_RANK = {"info": 0, "low": 1, "medium": 2, "high": 3, "critical": 4}


def _pct(v: float | None) -> float | None:
    return None if v is None else round(100.0 * v, 1)


@dataclass(frozen=True)
class PolicyScore:
    """One unit's scores in one scan under one pack."""

    policy: str
    pack_version: str
    numbers: dict[str, Any]  # policies.result.ScoreNumbers as JSON
    controls: list[dict[str, Any]]
    targets: list[dict[str, Any]]

    @property
    def pass_rate(self) -> float | None:  # percent, like the other two
        return _pct(self.numbers.get("pass_rate"))

    @property
    def weighted(self) -> float | None:
        v = self.numbers.get("weighted_score")
        return None if v is None else round(float(v), 1)

    @property
    def coverage(self) -> float | None:
        return _pct(self.numbers.get("coverage"))

    @property
    def grade(self) -> str:
        return str(self.numbers.get("grade", "n/a"))

    def top_failing(self, n: int = 10) -> list[dict[str, Any]]:
        failed = [c for c in self.controls if c["status"] == "fail"]
        failed.sort(
            key=lambda c: (
                c["obligation"] != "mandatory",
                -_SEV_RANK.get(c["severity"], 0),
                -c["weight"],
                c["id"],
            )
        )
        return failed[:n]

    def sections(self) -> list[tuple[str, list[dict[str, Any]]]]:
        """The control tree: controls grouped by their pack section, in pack order."""
        out: dict[str, list[dict[str, Any]]] = {}
        for c in self.controls:
            out.setdefault(c["section"] or "Controls", []).append(c)
        return list(out.items())

    def as_dict(self) -> dict[str, Any]:
        n = self.numbers
        return {
            "policy": self.policy,
            "pack_version": self.pack_version,
            "pass_rate": self.pass_rate,
            "weighted": self.weighted,
            "coverage": self.coverage,
            "grade": self.grade,
            "caps": list(n.get("caps", [])),
            "controls": {
                k: n.get(k, 0)
                for k in ("passed", "failed", "waived", "error", "not_assessed", "not_applicable")
            },
        }


class PolicyUnknown(ValueError):
    """A unit, schedule or job names a pack this server does not have."""


class Scorer:
    """Scores scans under packs, once each (thread-safe; shared by the app and the jobs)."""

    def __init__(self, store: Store, default_policy: str = DEFAULT_POLICY) -> None:
        self.store = store
        self.default_policy = default_policy
        self._lock = threading.Lock()
        self._catalog: Catalog | None = None
        self._registry: Registry | None = None

    def _loaded(self) -> tuple[Catalog, Registry]:
        with self._lock:
            if self._catalog is None or self._registry is None:
                self._catalog = Catalog.builtin()
                self._registry = load_registry()
            return self._catalog, self._registry

    def check_policy(self, policy: str | None) -> str:
        """The pack id to use for `policy` (None: the default), or PolicyUnknown."""
        pid = policy or self.default_policy
        catalog, _ = self._loaded()
        if pid not in catalog.packs:
            raise PolicyUnknown(
                f"no policy pack {pid!r} on this server (known: {', '.join(sorted(catalog.packs))})"
            )
        return pid

    def unit_score(self, scan_id: str, unit_id: str, policy: str | None) -> PolicyScore:
        pid = self.check_policy(policy)
        catalog, registry = self._loaded()
        version = catalog.packs[pid].pack.version
        with self.store.engine.begin() as c:
            row = (
                c.execute(
                    select(t.unit_scores).where(
                        t.unit_scores.c.scan_id == scan_id,
                        t.unit_scores.c.unit == unit_id,
                        t.unit_scores.c.policy == pid,
                    )
                )
                .mappings()
                .first()
            )
        if row is not None and row["pack_version"] == version:
            return PolicyScore(
                pid, version, row["numbers"], row["detail"]["controls"], row["detail"]["targets"]
            )
        found = self._compute(catalog, registry, scan_id, unit_id, pid, version)
        with self.store.engine.begin() as c:
            c.execute(
                delete(t.unit_scores).where(
                    t.unit_scores.c.scan_id == scan_id,
                    t.unit_scores.c.unit == unit_id,
                    t.unit_scores.c.policy == pid,
                )
            )
        try:
            with self.store.engine.begin() as c:
                c.execute(
                    insert(t.unit_scores).values(
                        scan_id=scan_id,
                        unit=unit_id,
                        policy=pid,
                        pack_version=version,
                        numbers=found.numbers,
                        detail={"controls": found.controls, "targets": found.targets},
                        computed_at=datetime.now(UTC),
                    )
                )
        except IntegrityError:
            pass  # another thread scored the same scan at the same time: same numbers
        return found

    def _compute(
        self,
        catalog: Catalog,
        registry: Registry,
        scan_id: str,
        unit_id: str,
        pid: str,
        version: str,
    ) -> PolicyScore:
        rec = self.store.scan(scan_id)
        outs = [o for o in self.store.outcomes(scan_id) if o.unit == unit_id]
        records = [r for r in self.store.targets(scan_id) if r.unit == unit_id]
        evidence = Evidence(outs, records, registry)
        finished = rec.finished_at or rec.started_at
        as_of = finished.date() if isinstance(finished, datetime) else date.today()
        result = score([Selection(catalog.resolve(pid))], evidence, [unit_id], as_of=as_of)
        unit = result.packs[0].units[0]
        controls = [
            {
                "id": c.id,
                "title": c.title,
                "section": c.section,
                "status": c.status.value,
                "severity": c.severity.value,
                "obligation": c.obligation.value,
                "weight": c.weight,
                "reason": c.reason,
                "failing_targets": c.failing_targets[:20],
            }
            for c in unit.controls
        ]
        targets = [
            {
                "key": ts.key,
                "label": ts.label,
                "passed": ts.numbers.passed,
                "failed": ts.numbers.failed,
                "other": ts.numbers.total - ts.numbers.passed - ts.numbers.failed,
                "grade": ts.numbers.grade,
            }
            for ts in unit.targets
        ]
        return PolicyScore(pid, version, unit.numbers.model_dump(mode="json"), controls, targets)
