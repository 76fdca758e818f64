"""The outcomes that evidence a control: stored ones, or checks re-run on stored facts.

Checks are pure, so a pack that overrides a parameter (or names a check that was installed
after the scan) is answered by evaluating the check again on the facts stored with the scan.
Nothing here touches the network: a scan from last year can be scored under this year's pack.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterable, Mapping
from typing import Any

from pydantic import ValidationError

from policies.model import CheckRef
from scanner.masking import mask_evidence, mask_text
from scanner.model import Facts, Outcome, Result, Status, Target, TargetKind, fingerprint
from scanner.plugins import Check, FactsView, Registry
from scanner.store import TargetRecord


def _key(ref: CheckRef) -> tuple[str, str]:
    return ref.id, json.dumps(ref.params, sort_keys=True, default=str)


class Evidence:
    """Outcomes per check reference, for one scan."""

    def __init__(
        self,
        outcomes: Iterable[Outcome],
        records: Iterable[TargetRecord] = (),
        registry: Registry | None = None,
    ) -> None:
        self.outcomes = list(outcomes)
        self.records = list(records)
        self.registry = registry
        self._stored: dict[str, list[Outcome]] = defaultdict(list)
        for o in self.outcomes:
            self._stored[o.check_id].append(o)
        self._cache: dict[tuple[str, str], list[Outcome]] = {}
        self._views: list[tuple[FactsView, dict[str, str]]] | None = None
        self.scan_id = self.outcomes[0].scan_id if self.outcomes else ""

    def check(self, check_id: str) -> Check | None:
        return self.registry.checks.get(check_id) if self.registry else None

    def targets(self) -> list[Target]:
        if self.records:
            return [r.target for r in self.records]
        seen: dict[str, Target] = {}
        for o in self.outcomes:
            seen.setdefault(o.target.key, o.target)
        return list(seen.values())

    def for_ref(self, ref: CheckRef) -> list[Outcome] | None:
        """Outcomes of `ref` (every unit), or None when the check cannot be evaluated."""
        check = self.check(ref.id)
        stored = self._stored.get(ref.id)
        if check is None:
            # not installed now: the stored outcomes still count, but only for default params
            return stored if stored and not ref.params else None
        if stored and _is_default(check, ref.params):
            return stored
        if not self.records:  # no stored facts to run it on
            return None if ref.params else (stored or [])
        key = _key(ref)
        if key not in self._cache:
            self._cache[key] = self._rerun(check, ref.params)
        return self._cache[key]

    # -- re-evaluation on stored facts ---------------------------------------------------------
    def _all_views(self) -> list[tuple[FactsView, dict[str, str]]]:
        if self._views is None:
            revived = []
            for rec in self.records:
                failures = dict(e.split(": ", 1) for e in rec.errors if ": " in e)
                revived.append((rec.target, self._revive(rec.facts), failures))
            plain = {t.key: FactsView(t, f) for t, f, _ in revived}
            views = []
            for t, f, failures in revived:
                if t.kind is TargetKind.HOST:
                    related = [
                        (v.target, v)
                        for v in plain.values()
                        if v.target.address == t.address and v.target.kind is not TargetKind.HOST
                    ]
                    views.append((FactsView(t, f, services=related), failures))
                else:
                    views.append((plain[t.key], failures))
            self._views = views
        return self._views

    def _revive(self, stored: Mapping[str, dict[str, Any]]) -> dict[str, Facts]:
        out: dict[str, Facts] = {}
        for cid, data in stored.items():
            model = self.registry.facts_model(cid) if self.registry else None
            if model is None:
                continue
            try:
                out[cid] = model.model_validate(data)
            except ValidationError:
                continue  # facts of an older collector version: the check cannot use them
        return out

    def _rerun(self, check: Check, params: Mapping[str, Any]) -> list[Outcome]:
        p = check.Params.model_validate(dict(params))
        out: list[Outcome] = []
        for view, failures in self._all_views():
            target = view.target
            needed = check.meta.facts
            failed = [f for f in needed if f in failures]
            if failed and all(f in view or f in failures for f in needed):
                why = "; ".join(f"{f}: {failures[f]}" for f in failed)
                results = [Result(status=Status.ERROR, message=f"facts unavailable ({why})")]
            elif not all(f in view for f in needed):
                continue
            else:
                try:
                    if not check.applies(target, view):
                        continue
                    produced = check.evaluate(view, p)
                    results = [produced] if isinstance(produced, Result) else list(produced)
                except Exception as exc:  # a broken check is an error outcome, never a crash
                    results = [
                        Result(
                            status=Status.ERROR,
                            message=f"check raised {type(exc).__name__}: {exc}",
                        )
                    ]
            out.extend(self._outcome(check, target, r) for r in results)
        return out

    def _outcome(self, check: Check, target: Target, r: Result) -> Outcome:
        m = check.meta
        return Outcome(
            scan_id=self.scan_id,
            unit=target.unit,
            check_id=m.id,
            title=m.title,
            status=r.status,
            severity=r.severity or m.severity,
            target=target,
            message=mask_text(r.message),
            evidence=mask_evidence(r.evidence),
            remediation=m.remediation if r.status is Status.FAIL else None,
            references=m.references,
            detail=r.detail,
            fingerprint=fingerprint(m.id, target.key, r.detail),
        )


def _is_default(check: Check, params: Mapping[str, Any]) -> bool:
    if not params:
        return True
    try:
        return bool(check.Params.model_validate(dict(params)) == check.Params())
    except ValidationError:
        return False
