"""The runner: inventory -> discovery -> collectors -> checks -> store, per target.

asyncio with bounded concurrency (globally and per host) and a time budget per collector. A
target or plugin that fails becomes an `error` outcome with its reason; one failure never aborts
the scan. Each finished target is written to the store at once, with its facts and outcomes, so
an interrupted scan keeps what it had and `resume()` finishes it without repeating them.

Order inside a unit: services first, then hosts (host-level checks read the services of their
host), then web URLs and stores.
"""

from __future__ import annotations

import asyncio
import hashlib
import secrets
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from pydantic import ValidationError

from scanner import __version__
from scanner.discovery import DiscoveryResult, DiscoverySettings, ScanSpec, discover
from scanner.inventory import Inventory, Unit, parse_inventory
from scanner.masking import mask_evidence, mask_text
from scanner.model import (
    Facts,
    Outcome,
    Result,
    ServiceInfo,
    Severity,
    Status,
    Target,
    TargetKind,
    fingerprint,
)
from scanner.plugins import Check, CollectContext, FactsView, NotApplicable, Registry
from scanner.scope import OutOfScope, ScopeGuard
from scanner.store import Store

# Outcomes the runner itself produces (not checks): their ids are reserved.
DISCOVERY_CHECK = "scan.discovery"
COLLECTOR_CHECK = "scan.collector"
NA_PREFIX = "\x00n/a:"  # marks a collector that found its facts do not apply (NotApplicable)
STORE_NOT_COVERED = "scan.store_not_covered"


def new_scan_id(now: datetime | None = None) -> str:
    """Sortable and unique: `20261202T190449Z-3f9a1c`."""
    now = now or datetime.now(UTC)
    return f"{now:%Y%m%dT%H%M%SZ}-{secrets.token_hex(3)}"


@dataclass
class ScanOptions:
    active: bool = False
    units: list[str] | None = None  # None: every unit of the inventory
    nmap_path: str | None = None  # None: nmap from PATH
    version_detection: bool = True


@dataclass
class ScanSummary:
    scan_id: str
    state: str
    counts: dict[str, int] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)

    @property
    def exit_code(self) -> int:
        """0 clean, 2 warnings (errors/not assessed), 3 failures; 1 is for runs that stopped."""
        if self.state != "complete":
            return 1
        if self.counts.get(Status.FAIL.value):
            return 3
        if (
            self.counts.get(Status.ERROR.value)
            or self.counts.get(Status.NOT_ASSESSED.value)
            or self.warnings
        ):
            return 2
        return 0


Progress = Callable[[str, int, int], None]  # (message, done, total)


class Runner:
    def __init__(
        self,
        registry: Registry,
        store: Store,
        inventory: Inventory,
        *,
        inventory_text: str = "",
        inventory_name: str = "",
        options: ScanOptions | None = None,
        progress: Progress | None = None,
        log: Callable[[str], None] | None = None,
    ) -> None:
        self.registry = registry
        self.store = store
        self.inventory = inventory
        self.inventory_text = inventory_text
        self.inventory_name = inventory_name
        self.options = options or ScanOptions()
        self.progress = progress
        self.log = log or (lambda _m: None)
        s = inventory.settings
        self._global = asyncio.Semaphore(s.concurrency)
        self._per_host: dict[str, asyncio.Semaphore] = {}
        self._active_log: list[str] = []
        self._warnings: list[str] = []
        self._done = 0
        self._total = 0

    # -- entry points ----------------------------------------------------------------------
    @classmethod
    def for_resume(
        cls,
        registry: Registry,
        store: Store,
        scan_id: str,
        progress: Progress | None = None,
        log: Callable[[str], None] | None = None,
        nmap_path: str | None = None,
    ) -> tuple[Runner, str]:
        rec = store.scan(scan_id)
        inv = parse_inventory(rec.inventory_text, rec.inventory_name or "<stored inventory>")
        opts = ScanOptions(
            active=bool(rec.options.get("active")),
            units=rec.units,
            nmap_path=nmap_path,
            version_detection=bool(rec.options.get("version_detection", True)),
        )
        runner = cls(
            registry,
            store,
            inv,
            inventory_text=rec.inventory_text,
            inventory_name=rec.inventory_name,
            options=opts,
            progress=progress,
            log=log,
        )
        return runner, rec.id

    def selected_units(self) -> list[Unit]:
        if self.options.units is None:
            return list(self.inventory.units)
        return [self.inventory.unit(u) for u in self.options.units]

    async def run(self, scan_id: str | None = None) -> ScanSummary:
        units = self.selected_units()
        scan_id = scan_id or new_scan_id()
        self.store.create_scan(
            scan_id,
            inventory_name=self.inventory_name,
            inventory_sha256=hashlib.sha256(self.inventory_text.encode()).hexdigest(),
            inventory_text=self.inventory_text,
            units=[u.id for u in units],
            options={
                "active": self.options.active,
                "version_detection": self.options.version_detection,
            },
            tool_version=__version__,
        )
        return await self._execute(scan_id, units)

    async def resume(self, scan_id: str) -> ScanSummary:
        rec = self.store.scan(scan_id)
        if rec.state == "complete":
            self.log(f"scan {rec.id} is already complete; nothing to resume")
        self.store.set_state(rec.id, "running")
        return await self._execute(rec.id, self.selected_units())

    async def _execute(self, scan_id: str, units: list[Unit]) -> ScanSummary:
        state = "interrupted"
        try:
            for unit in units:
                await self._run_unit(scan_id, unit)
            state = "complete"
        finally:
            self.store.finish_scan(
                scan_id,
                state,
                broken_plugins=[
                    {"group": b.group, "name": b.name, "reason": b.reason}
                    for b in self.registry.broken
                ],
                active_probes=self._active_log,
            )
        counts: dict[str, int] = {}
        for o in self.store.outcomes(scan_id):
            counts[o.status.value] = counts.get(o.status.value, 0) + 1
        return ScanSummary(scan_id, state, counts, list(self._warnings))

    # -- one unit --------------------------------------------------------------------------
    def _guard(self, unit: Unit) -> ScopeGuard:
        return self.inventory.scope({unit.id})

    async def _run_unit(self, scan_id: str, unit: Unit) -> None:
        guard = self._guard(unit)
        stored = self.store.discovery(scan_id, unit.id)
        if stored is None:
            doc, found = await self._discover(unit, guard)
            self.store.save_discovery(scan_id, unit.id, doc, found)
        else:
            doc, found = stored
            self.log(f"{unit.id}: reusing the discovery stored with scan {scan_id}")
        engine = str(doc.get("engine", ""))
        self._warnings.extend(f"{unit.id}: {w}" for w in doc.get("warnings", []))
        self._warnings.extend(f"{unit.id}: {e}" for e in doc.get("errors", []))

        targets = found + self._declared_targets(unit)
        finished = self.store.finished_keys(scan_id)
        self._total += len(targets)
        self._done += sum(1 for t in targets if t.key in finished)
        self._tick(f"{unit.id}: {len(targets)} targets")

        services = [t for t in targets if t.kind is TargetKind.SERVICE]
        hosts = [t for t in targets if t.kind is TargetKind.HOST]
        others = [t for t in targets if t.kind not in (TargetKind.SERVICE, TargetKind.HOST)]

        views: dict[str, FactsView] = {}
        await asyncio.gather(
            *(
                self._run_target(scan_id, t, guard, engine, views, finished)
                for t in services
                if t.key not in finished
            )
        )
        # services finished in an earlier run: rebuild their views from the store
        for rec in self.store.targets(scan_id):
            if rec.target.kind is TargetKind.SERVICE and rec.target.key not in views:
                views[rec.target.key] = FactsView(rec.target, self._revive(rec.facts))
        await asyncio.gather(
            *(
                self._run_target(scan_id, t, guard, engine, views, finished)
                for t in hosts + others
                if t.key not in finished
            )
        )

    async def _discover(self, unit: Unit, guard: ScopeGuard) -> tuple[dict[str, Any], list[Target]]:
        s = self.inventory.settings
        specs = [
            ScanSpec(n.cidr, tuple(n.exclude), n.ports or s.ports, n.assume_up)
            for n in unit.networks
        ] + [ScanSpec(h.address, (), h.ports or s.ports, True) for h in unit.hosts]
        settings = DiscoverySettings(
            probe_timeout=s.probe_timeout,
            version_budget=s.version_budget,
            concurrency=s.concurrency,
            nmap_path=self.options.nmap_path,
            version_detection=self.options.version_detection,
        )
        doc: dict[str, Any]
        if not specs:
            return {"engine": "", "fallback": False}, []
        self._tick(f"{unit.id}: discovering services")
        try:
            res: DiscoveryResult = await discover(
                specs, guard, settings, progress=lambda m: self._tick(f"{unit.id}: {m}")
            )
        except OutOfScope as exc:
            self.log(f"{unit.id}: discovery refused: {exc}")
            doc = {"engine": "", "fallback": False, "errors": [f"refused: {exc}"]}
            return doc, []
        except Exception as exc:  # discovery failing must not lose the other units
            self.log(f"{unit.id}: discovery failed: {type(exc).__name__}: {exc}")
            doc = {"engine": "", "fallback": False, "errors": [f"discovery failed: {exc}"]}
            return doc, []
        for w in res.warnings:
            self.log(f"{unit.id}: {w}")
        doc = {
            "engine": res.engine,
            "fallback": res.engine == "connect",
            "hosts_up": sorted(set(res.hosts_up)),
            "services_found": len(res.services),
            "warnings": list(res.warnings),
            "errors": list(res.errors),
            "commands": [mask_text(c) for c in res.commands],
        }
        declared = {h.address: h for h in unit.hosts}
        found: list[Target] = []
        addresses = sorted(
            set(res.hosts_up) | {s.address for s in res.services} | set(declared),
            key=_addr_sort,
        )
        for addr in addresses:
            h = declared.get(addr)
            found.append(
                Target(
                    kind=TargetKind.HOST,
                    unit=unit.id,
                    address=addr,
                    names=tuple(h.names) if h else (),
                    tags=tuple(h.tags) if h else (),
                )
            )
        seen: set[tuple[str, int, str]] = set()
        for svc in sorted(res.services, key=lambda x: (_addr_sort(x.address), x.port)):
            k = (svc.address, svc.port, svc.protocol)
            if k in seen:
                continue
            seen.add(k)
            h = declared.get(svc.address)
            found.append(
                Target(
                    kind=TargetKind.SERVICE,
                    unit=unit.id,
                    address=svc.address,
                    port=svc.port,
                    protocol=svc.protocol,
                    names=tuple(h.names) if h else (),
                    tags=tuple(h.tags) if h else (),
                    service=svc.service,
                )
            )
        return doc, found

    def _declared_targets(self, unit: Unit) -> list[Target]:
        out = [
            Target(
                kind=TargetKind.WEB,
                unit=unit.id,
                url=w.url,
                tags=tuple(w.tags),
                paths=tuple(w.paths),
            )
            for w in unit.web
        ]
        out += [
            Target(
                kind=TargetKind.STORE, unit=unit.id, path=f"{s.kind}:{s.location}", names=(s.id,)
            )
            for s in unit.stores
        ]
        out += _ssh_targets(unit)
        return out

    # -- one target ------------------------------------------------------------------------
    def _host_sem(self, target: Target) -> asyncio.Semaphore:
        key = target.address or target.url or target.key
        if key not in self._per_host:
            self._per_host[key] = asyncio.Semaphore(self.inventory.settings.per_host)
        return self._per_host[key]

    async def _run_target(
        self,
        scan_id: str,
        target: Target,
        guard: ScopeGuard,
        engine: str,
        views: dict[str, FactsView],
        finished: set[str],
    ) -> None:
        async with self._global, self._host_sem(target):
            related = {
                k: v
                for k, v in views.items()
                if target.kind is TargetKind.HOST and v.target.address == target.address
            }
            ctx = CollectContext(
                scope=guard,
                active=self.options.active,
                probe_timeout=self.inventory.settings.probe_timeout,
                related=related,
                discovery_engine=engine,
                tls_trust=tuple(self.inventory.settings.tls_trust),
                stores={s.id: s for s in self.inventory.unit(target.unit).stores},
                active_settings=self.inventory.settings.active,
            )
            gathered, failures = await self._collect(target, ctx)
        view = FactsView(target, gathered, services=[(v.target, v) for v in related.values()])
        views[target.key] = view
        results = self._evaluate(scan_id, target, view, failures)
        if target.kind is TargetKind.STORE and not any(
            o.check_id != COLLECTOR_CHECK for o in results
        ):
            results.append(
                self._outcome(
                    scan_id,
                    target,
                    STORE_NOT_COVERED,
                    "Document store assessed",
                    Result(
                        status=Status.NOT_ASSESSED,
                        message="no collector for this kind of document store is installed yet",
                    ),
                    Severity.INFO,
                )
            )
        for line in ctx.active_log:
            self._active_log.append(f"{target.label}: {line}")
        state = "error" if failures else "done"
        self.store.save_target(
            scan_id,
            target,
            state=state,
            errors=[f"{cid}: {why}" for cid, why in failures.items()],
            target_facts={k: json_facts(v) for k, v in gathered.items()},
            results=results,
        )
        finished.add(target.key)
        self._done += 1
        self._tick(target.label)

    async def _collect(
        self, target: Target, ctx: CollectContext
    ) -> tuple[dict[str, Facts], dict[str, str]]:
        gathered: dict[str, Facts] = {}
        failures: dict[str, str] = {}
        budget = self.inventory.settings.collector_timeout
        for cid, col in sorted(self.registry.collectors.items()):
            try:
                if not col.applies(target):
                    continue
            except Exception as exc:
                failures[cid] = f"applies() raised {type(exc).__name__}: {exc}"
                continue
            timeout = min(col.timeout, budget)
            own = _own_bound(col, target, ctx)
            if own is not None:  # the target's own budget (a host's ssh.budget) replaces ours
                timeout = own
            try:
                facts = await asyncio.wait_for(col.collect(target, ctx), timeout)
            except TimeoutError:
                which = "the target's own time bound" if own is not None else "the collector budget"
                failures[cid] = f"no answer within {which} of {timeout:g}s"
                continue
            except OutOfScope as exc:
                failures[cid] = f"refused by the scope guard: {exc}"
                continue
            except NotApplicable as exc:
                failures[cid] = NA_PREFIX + str(exc)
                continue
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # one collector failing must not lose the others
                failures[cid] = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
                continue
            if not isinstance(facts, col.facts_model):
                failures[cid] = f"returned {type(facts).__name__}, not {col.facts_model.__name__}"
                continue
            gathered[cid] = facts
        return gathered, failures

    def _evaluate(
        self, scan_id: str, target: Target, view: FactsView, failures: dict[str, str]
    ) -> list[Outcome]:
        out: list[Outcome] = []
        for check_id, check in sorted(self.registry.checks.items()):
            needed = check.meta.facts
            missing_failed = [f for f in needed if f in failures]
            inapplicable = [f for f in missing_failed if failures[f].startswith(NA_PREFIX)]
            if inapplicable:
                why = "; ".join(failures[f].removeprefix(NA_PREFIX) for f in inapplicable)
                out.append(
                    self._outcome(
                        scan_id,
                        target,
                        check_id,
                        check.meta.title,
                        Result(status=Status.NOT_APPLICABLE, message=f"does not apply: {why}"),
                        check.meta.severity,
                        check,
                    )
                )
                continue
            if missing_failed and all(f in view or f in failures for f in needed):
                reasons = "; ".join(f"{f}: {failures[f]}" for f in missing_failed)
                out.append(
                    self._outcome(
                        scan_id,
                        target,
                        check_id,
                        check.meta.title,
                        Result(status=Status.ERROR, message=f"facts unavailable ({reasons})"),
                        check.meta.severity,
                        check,
                    )
                )
                continue
            if not all(f in view for f in needed):
                continue
            try:
                if not check.applies(target, view):
                    continue
                produced = check.evaluate(view, check.Params())
                results = [produced] if isinstance(produced, Result) else list(produced)
            except Exception as exc:  # a broken check is an error outcome, never a crash
                results = [
                    Result(
                        status=Status.ERROR,
                        message=f"check raised {type(exc).__name__}: {exc}",
                    )
                ]
            for r in results:
                out.append(
                    self._outcome(
                        scan_id, target, check_id, check.meta.title, r, check.meta.severity, check
                    )
                )
        # collector failures that no check covered still need to be seen
        covered = {f for c in self.registry.checks.values() for f in c.meta.facts}
        for cid, why in failures.items():
            if cid not in covered and not why.startswith(NA_PREFIX):
                out.append(
                    self._outcome(
                        scan_id,
                        target,
                        COLLECTOR_CHECK,
                        "Facts collected",
                        Result(status=Status.ERROR, message=f"{cid}: {why}", detail=cid),
                        Severity.INFO,
                    )
                )
        return out

    def _outcome(
        self,
        scan_id: str,
        target: Target,
        check_id: str,
        title: str,
        r: Result,
        default: Severity,
        check: Check | None = None,
    ) -> Outcome:
        return Outcome(
            scan_id=scan_id,
            unit=target.unit,
            check_id=check_id,
            title=title,
            status=r.status,
            severity=r.severity or default,
            target=target,
            message=mask_text(r.message),
            evidence=mask_evidence(r.evidence),
            remediation=check.meta.remediation if check and r.status is Status.FAIL else None,
            references=check.meta.references if check else (),
            detail=r.detail,
            fingerprint=fingerprint(check_id, target.key, r.detail),
        )

    def _revive(self, stored: dict[str, dict[str, Any]]) -> dict[str, Facts]:
        out: dict[str, Facts] = {}
        for cid, data in stored.items():
            model = self.registry.facts_model(cid)
            if model is None:
                continue
            try:
                out[cid] = model.model_validate(data)
            except ValidationError:
                continue
        return out

    def _tick(self, message: str) -> None:
        if self.progress:
            self.progress(message, self._done, max(self._total, 1))


def json_facts(facts: Facts) -> dict[str, Any]:
    """Facts as stored: JSON with secrets masked (facts never hold secrets, but be sure)."""
    data = mask_evidence(facts.model_dump(mode="json"))
    assert isinstance(data, dict)
    return data


def _own_bound(col: Any, target: Target, ctx: CollectContext) -> float | None:
    """A collector may bound a target itself (`Collector.bound_for` -> seconds or None): the
    host collector's bound is the host's `ssh.budget` plus its login time, which the inventory
    lets exceed `collector_timeout`. Only a finite positive bound is taken, so the runner
    always keeps a limit."""
    bound_for = getattr(col, "bound_for", None)  # third-party collectors may predate the hook
    if not callable(bound_for):
        return None
    try:
        own = bound_for(target, ctx)
    except Exception:  # a faulty hook falls back to the collector budget
        return None
    if isinstance(own, int | float) and 0 < own < float("inf"):
        return float(own)
    return None


def _ssh_targets(unit: Unit) -> list[Target]:
    """SSH targets for hosts with `ssh:` and for `local: true`; their access is bound for the
    host collector (targets themselves carry no credentials)."""
    from scanner.remote.access import LOCAL_ADDRESS, HostAccess, bind

    out: list[Target] = []
    for h in unit.hosts:
        if h.ssh is not None:
            t = Target(
                kind=TargetKind.SSH,
                unit=unit.id,
                address=h.address,
                port=h.ssh.port,
                names=tuple(h.names),
                tags=tuple(h.tags),
            )
            bind(t, HostAccess(ssh=h.ssh))
            out.append(t)
    if unit.local:
        t = Target(kind=TargetKind.SSH, unit=unit.id, address=LOCAL_ADDRESS)
        bind(t, HostAccess(ssh=None))
        out.append(t)
    return out


def _addr_sort(addr: str) -> tuple[int, ...]:
    import ipaddress

    try:
        ip = ipaddress.ip_address(addr)
        return (ip.version, int(ip))
    except ValueError:
        return (9, 0)


def reevaluate(
    registry: Registry, targets: Iterable[tuple[Target, dict[str, Facts]]]
) -> list[Result]:
    """Evaluate checks on stored facts (no I/O); used by tests and later re-scoring."""
    results: list[Result] = []
    for target, facts in targets:
        view = FactsView(target, facts)
        for check in registry.checks.values():
            if all(f in view for f in check.meta.facts) and check.applies(target, view):
                produced = check.evaluate(view, check.Params())
                results.extend([produced] if isinstance(produced, Result) else list(produced))
    return results


__all__ = ["Runner", "ScanOptions", "ScanSummary", "ServiceInfo", "new_scan_id"]
