"""`assay policies list|show|validate`, `assay rescore`, and the policy options of scan/report.

Policy packs, levels and waivers are read and checked before a scan starts, so a typo costs a
second, not a scan. Scores are always computed from what the store holds (outcomes, and the
facts for checks whose parameters a pack overrides), so `assay rescore` and
`assay report --policy` never touch the network.

Exit codes with a gate (`--fail-under N`, `--fail-on SEVERITY`): 3 when the overall weighted
score is below N or an unwaived failure of at least that severity exists, otherwise 2 when some
checks could not be assessed, else 0. Without a gate the scan's own codes apply.
"""

from __future__ import annotations

import functools
import inspect
import json
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from policies._yaml import PolicyError
from policies.loader import Catalog, LoadedPack
from policies.result import ControlStatus, PolicyScores
from policies.waivers import LoadedWaivers, load_waivers, validate_waivers
from scanner.model import Outcome, Severity, Status

EXIT_OK, EXIT_ERROR, EXIT_WARNINGS, EXIT_FAILURES = 0, 1, 2, 3

PolicyOpt = Annotated[
    str | None, typer.Option("--policy", "-p", help="Score under these packs (ids or files).")
]
LevelOpt = Annotated[int | None, typer.Option("--level", help="Security level of the packs.")]
WaiversOpt = Annotated[Path | None, typer.Option("--waivers", help="Waiver (accepted risk) file.")]
AsOfOpt = Annotated[
    str | None, typer.Option("--as-of", help="Judge waiver expiry on this date (YYYY-MM-DD).")
]

policies_app = typer.Typer(help="Policy packs: controls, levels, scores.", no_args_is_help=True)
err = Console(stderr=True, highlight=False)
out = Console(highlight=False)


def fail(message: str, code: int = EXIT_ERROR) -> typer.Exit:
    err.print(f"assay: error: {message}", markup=False, soft_wrap=True)
    return typer.Exit(code)


def _registry_checks() -> dict[str, Any]:
    from scanner.plugins import load_registry

    return dict(load_registry().checks)


def _catalog(extra: Iterable[str] = ()) -> Catalog:
    try:
        return Catalog.builtin(extra)
    except PolicyError as exc:
        raise fail(str(exc)) from None


# -- options shared by scan, report and rescore ------------------------------------------------
@dataclass(frozen=True)
class PolicyOptions:
    catalog: Catalog
    packs: tuple[str, ...]
    level: int | None
    waivers: LoadedWaivers | None
    fail_under: float | None
    fail_on: Severity | None
    as_of: date
    registry: Any = None

    @property
    def gated(self) -> bool:
        return self.fail_under is not None or self.fail_on is not None


def policy_options(
    policy: str | None,
    level: int | None,
    waivers: Path | None,
    fail_under: float | None = None,
    fail_on: str | None = None,
    as_of: str | None = None,
) -> PolicyOptions | None:
    """Parse and check every policy option; raises a one-line error before anything runs."""
    if policy is None and waivers is None and fail_under is None and fail_on is None:
        if level is not None:
            raise fail("--level needs --policy")
        return None
    if fail_under is not None and policy is None:
        raise fail("--fail-under needs --policy (it gates on the policy score)")
    if fail_under is not None and not 0 <= fail_under <= 100:
        raise fail(f"--fail-under must be between 0 and 100, not {fail_under:g}")
    sev = None
    if fail_on is not None:
        try:
            sev = Severity(fail_on.lower())
        except ValueError:
            known = ", ".join(s.value for s in Severity)
            raise fail(f"--fail-on {fail_on!r} is not a severity (known: {known})") from None
    day = datetime.now(UTC).date()
    if as_of is not None:
        try:
            day = date.fromisoformat(as_of)
        except ValueError:
            raise fail(f"--as-of {as_of!r} is not a date (YYYY-MM-DD)") from None
    from scanner.plugins import load_registry

    registry = load_registry()
    refs = [p.strip() for p in (policy or "").split(",") if p.strip()]
    catalog = _catalog()
    ids: list[str] = []
    for ref in refs:
        try:
            lp = catalog.get(ref)
        except KeyError as exc:
            raise fail(str(exc.args[0])) from None
        except PolicyError as exc:
            raise fail(str(exc)) from None
        problems = catalog.validate(lp, registry.checks)
        if problems:
            _print_problems(problems)
            raise typer.Exit(EXIT_ERROR)
        if level is not None and lp.pack.levels:
            numbers = [lv.level for lv in lp.pack.levels]
            if level not in numbers:
                raise fail(
                    f"pack {lp.pack.id!r} has levels {', '.join(map(str, numbers))}; "
                    f"--level {level} is not one of them"
                )
        ids.append(lp.pack.id)
    loaded = None
    if waivers is not None:
        try:
            loaded = load_waivers(waivers)
        except PolicyError as exc:
            raise fail(str(exc)) from None
        problems = validate_waivers(
            loaded, _known_checks(catalog, registry.checks), _controls(catalog)
        )
        if problems:
            _print_problems(problems)
            raise typer.Exit(EXIT_ERROR)
    return PolicyOptions(catalog, tuple(ids), level, loaded, fail_under, sev, day, registry)


def _known_checks(catalog: Catalog, checks: dict[str, Any]) -> set[str]:
    named = {r.id for lp in catalog.packs.values() for c in lp.pack.controls for r in c.checks}
    return named | set(checks)


def _controls(catalog: Catalog) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for pid in catalog.packs:
        try:
            out[pid] = [c.id for c in catalog.resolve(pid).controls]
        except (KeyError, PolicyError):
            out[pid] = [c.id for c in catalog.packs[pid].pack.controls]
    return out


def _print_problems(problems: Sequence[PolicyError]) -> None:
    for p in problems:
        err.print(f"assay: error: {p}", markup=False, soft_wrap=True)


def compute_scores(store: Any, scan_id: str, opts: PolicyOptions) -> PolicyScores | None:
    """Scores of a stored scan under the chosen packs (None when no pack was chosen)."""
    if not opts.packs:
        return None
    from policies.evidence import Evidence
    from policies.scoring import Selection, score

    rec = store.scan(scan_id)
    evidence = Evidence(store.outcomes(rec.id), store.targets(rec.id), opts.registry)
    selections = [Selection(opts.catalog.resolve(p), opts.level) for p in opts.packs]
    return score(selections, evidence, rec.units, waivers=opts.waivers, as_of=opts.as_of)


@contextmanager
def scoring(opts: PolicyOptions | None) -> Iterator[None]:
    """While active, every assessment built from the store carries its policy scores."""
    if opts is None or not opts.packs:
        yield
        return
    from reports.build import SCORER

    token = SCORER.set(lambda store, scan_id: compute_scores(store, scan_id, opts))
    try:
        yield
    finally:
        SCORER.reset(token)


def with_policy_options(callback: Callable[..., Any]) -> Callable[..., Any]:
    """The `report` command with --policy/--level/--waivers/--as-of added around it.

    The report command belongs to the report module; this wrapper only sets the scoring
    context, so report formats, languages and signing work unchanged under a policy.
    """
    sig = inspect.signature(callback, eval_str=True)
    extra = {
        "policy": (PolicyOpt, None),
        "level": (LevelOpt, None),
        "waivers": (WaiversOpt, None),
        "as_of": (AsOfOpt, None),
    }
    params = list(sig.parameters.values()) + [
        inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=d, annotation=a)
        for name, (a, d) in extra.items()
    ]

    @functools.wraps(callback)
    def wrapper(**kwargs: Any) -> Any:
        popts = policy_options(
            kwargs.pop("policy"),
            kwargs.pop("level"),
            kwargs.pop("waivers"),
            as_of=kwargs.pop("as_of"),
        )
        with scoring(popts):
            return callback(**kwargs)

    wrapper.__signature__ = sig.replace(parameters=params)  # type: ignore[attr-defined]
    wrapper.__annotations__ = {p.name: p.annotation for p in params} | {
        "return": sig.return_annotation
    }
    return wrapper


def waived_fingerprints(
    outcomes: Sequence[Outcome], scores: PolicyScores | None, opts: PolicyOptions
) -> set[str]:
    """Failures an active waiver accepts (by check anywhere, by control where scored)."""
    done: set[str] = set()
    if scores is not None:
        for p in scores.packs:
            for u in p.units:
                for c in u.controls:
                    done.update(w.fingerprint for w in c.waived)
    if opts.waivers is not None:
        for o in outcomes:
            if o.status is not Status.FAIL:
                continue
            for w in opts.waivers.waivers:
                if (
                    w.check == o.check_id
                    and w.in_force(opts.as_of)
                    and w.matches_target(o.unit, o.target)
                ):
                    done.add(o.fingerprint)
    return done


def gate_exit(
    base: int,
    opts: PolicyOptions | None,
    outcomes: Sequence[Outcome],
    scores: PolicyScores | None,
    warnings: bool,
) -> tuple[int, list[str]]:
    """The exit code once --fail-under / --fail-on have had their say, with the reasons."""
    if opts is None or not opts.gated or base == EXIT_ERROR:
        return base, []
    reasons = []
    if opts.fail_under is not None:
        value = scores.overall.weighted_score if scores else None
        if value is None or value < opts.fail_under:
            shown = "n/a (nothing assessed)" if value is None else f"{value:.2f}"
            reasons.append(
                f"overall weighted score {shown} is below --fail-under {opts.fail_under:g}"
            )
    if opts.fail_on is not None:
        waived = waived_fingerprints(outcomes, scores, opts)
        bad = [
            o
            for o in outcomes
            if o.status is Status.FAIL
            and o.severity.rank >= opts.fail_on.rank
            and o.fingerprint not in waived
        ]
        if bad:
            reasons.append(
                f"{len(bad)} unwaived failure(s) of severity {opts.fail_on.value} or higher"
            )
    if reasons:
        return EXIT_FAILURES, reasons
    return (EXIT_WARNINGS if warnings else EXIT_OK), []


def print_scores(scores: PolicyScores) -> None:
    table = Table("pack", "level", "unit", "pass rate", "weighted", "coverage", "grade")
    for p in scores.packs:
        for u in p.units:
            n = u.numbers
            table.add_row(
                f"{p.id} {p.version}",
                str(p.level) if p.level is not None else "-",
                u.unit,
                _pct(n.pass_rate),
                "n/a" if n.weighted_score is None else f"{n.weighted_score:.1f}",
                _pct(n.coverage),
                n.grade,
            )
    out.print(table)
    n = scores.overall
    out.print(
        f"overall: pass rate {_pct(n.pass_rate)}, weighted {n.weighted_score}, coverage "
        f"{_pct(n.coverage)}, grade {n.grade} ({n.passed} passed, {n.failed} failed, "
        f"{n.waived} waived, {n.error} error, {n.not_assessed} not assessed)",
        markup=False,
    )
    for cap in n.caps:
        out.print(f"  grade cap: {cap}", markup=False)
    for w in scores.waivers:
        note = f" - {w.note}" if w.note else ""
        out.print(
            f"waiver {w.label} ({w.subject}, expires {w.expires}): {w.state.value}, "
            f"{w.matched} failure(s){note}",
            markup=False,
        )


def _pct(v: float | None) -> str:
    return "n/a" if v is None else f"{v * 100:.1f}%"


# -- assay policies ... -------------------------------------------------------------------------
@policies_app.command("list")
def policies_list(as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """List the built-in policy packs."""
    checks = _registry_checks()
    cat = _catalog()
    rows: list[dict[str, Any]] = []
    for pid, lp in sorted(cat.packs.items()):
        p = lp.pack
        rows.append(
            {
                "id": pid,
                "version": p.version,
                "title": p.title,
                "framework": p.framework.name,
                "verification": p.framework.verification.value,
                "levels": [lv.level for lv in p.levels],
                "controls": len(cat.resolve(pid).controls),
                "unregistered_checks": cat.unregistered(lp, checks),
                "file": lp.file,
            }
        )
    if as_json:
        out.print_json(json.dumps(rows))
        return
    table = Table("id", "version", "levels", "controls", "planned checks", "title")
    for r in rows:
        table.add_row(
            r["id"],
            r["version"],
            ",".join(map(str, r["levels"])) or "-",
            str(r["controls"]),
            str(len(r["unregistered_checks"])),
            r["title"],
        )
    out.print(table)


@policies_app.command("show")
def policies_show(
    pack_id: Annotated[str, typer.Argument(help="Pack id or YAML file.")],
    level: Annotated[int | None, typer.Option("--level", help="Show only this level.")] = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Show a pack: framework, levels, profiles and the control tree with its checks."""
    checks = _registry_checks()
    cat = _catalog()
    try:
        lp = cat.get(pack_id)
        resolved = cat.resolve(lp.pack.id)
    except KeyError as exc:
        raise fail(str(exc.args[0])) from None
    except PolicyError as exc:
        raise fail(str(exc)) from None
    p = lp.pack
    if as_json:
        data = p.model_dump(mode="json", by_alias=True)
        data["resolved_controls"] = [
            {
                "id": c.id,
                "section": c.section,
                "obligation": c.obligation.value,
                "level": c.level,
                "checks": [r.model_dump(mode="json") for r in c.checks],
            }
            for c in resolved.controls
            if c.applies_at(level if p.levels else None)
        ]
        out.print_json(json.dumps(data))
        return
    out.print(f"[bold]{p.id}[/] {p.version} — {p.title}")
    out.print(
        f"framework: {p.framework.name} ({p.framework.edition}); identifiers "
        f"{p.framework.verification.value}",
        markup=False,
    )
    if p.framework.notes:
        out.print(p.framework.notes, markup=False)
    for lv in p.levels:
        mark = " (default)" if lv.level == p.default_level else ""
        out.print(f"level {lv.level}{mark}: {lv.title}", markup=False)
    for prof in p.profiles:
        mark = " (default)" if prof.id == p.default_profile else ""
        out.print(f"profile {prof.id}{mark}: {prof.title} [{prof.verified.value}]", markup=False)
    section = None
    for c in resolved.controls:
        if level is not None and p.levels and not c.applies_at(level):
            continue
        if c.section != section:
            section = c.section
            out.print(f"\n[bold]{section or '(no section)'}[/]")
        lvl = f" L{c.level}+" if c.level else ""
        out.print(
            f"  {c.id} [{c.obligation.value}{lvl}] {c.control.title}",
            markup=False,
            soft_wrap=True,
        )
        for r in c.control.requirements:
            out.print(f"      {r.source} {r.id} ({r.verified.value})", markup=False)
        for key, ids in c.control.mapping.items():
            out.print(f"      {key}: {'; '.join(ids)}", markup=False)
        for ref in c.checks:
            state = "" if ref.id in checks else (" (planned)" if ref.planned else " (MISSING)")
            params = f" {json.dumps(ref.params, sort_keys=True)}" if ref.params else ""
            out.print(f"      - {ref.id}{state}{params}", markup=False)
        if c.control.manual:
            out.print(f"      attest: {c.control.manual}", markup=False)


@policies_app.command("validate")
def policies_validate(
    files: Annotated[
        list[Path] | None, typer.Argument(help="Pack files (default: every built-in pack).")
    ] = None,
    waivers: Annotated[
        Path | None, typer.Option("--waivers", help="Also validate this waiver file.")
    ] = None,
) -> None:
    """Validate packs (and a waiver file) against the installed checks."""
    checks = _registry_checks()
    cat = _catalog()
    targets: list[LoadedPack] = []
    problems: list[PolicyError] = []
    for f in files or []:
        try:
            lp = cat.get(str(f))
        except PolicyError as exc:
            problems.append(exc)
            continue
        targets.append(lp)
    if not files:
        targets = list(cat.packs.values())
    for lp in targets:
        found = cat.validate(lp, checks)
        problems.extend(found)
        if not found:
            planned = cat.unregistered(lp, checks)
            note = f"; {len(planned)} planned check(s) not installed yet" if planned else ""
            out.print(
                f"ok {lp.file}: {lp.pack.id} {lp.pack.version}, "
                f"{len(cat.resolve(lp.pack.id).controls)} controls{note}",
                markup=False,
                soft_wrap=True,
            )
    if waivers is not None:
        try:
            lw = load_waivers(waivers)
            found = validate_waivers(lw, _known_checks(cat, checks), _controls(cat))
            problems.extend(found)
            if not found:
                out.print(f"ok {waivers}: {len(lw.waivers)} waiver(s)", markup=False)
        except PolicyError as exc:
            problems.append(exc)
    if problems:
        _print_problems(problems)
        raise typer.Exit(EXIT_ERROR)


def rescore(
    scan_id: Annotated[str, typer.Argument(help="Scan id (a unique prefix is enough).")],
    policy: Annotated[
        str, typer.Option("--policy", "-p", help="Pack ids or files, comma separated.")
    ],
    level: Annotated[int | None, typer.Option("--level", help="Security level to score.")] = None,
    waivers: Annotated[Path | None, typer.Option("--waivers", help="Waiver YAML file.")] = None,
    fail_under: Annotated[
        float | None, typer.Option("--fail-under", help="Exit 3 if the overall score is below.")
    ] = None,
    fail_on: Annotated[
        str | None, typer.Option("--fail-on", help="Exit 3 on an unwaived failure this severe.")
    ] = None,
    as_of: Annotated[
        str | None, typer.Option("--as-of", help="Judge waiver expiry on this date (YYYY-MM-DD).")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the scores as JSON.")] = False,
    db: Annotated[str | None, typer.Option("--db", envvar="ASSAY_DB", help="Store URL.")] = None,
) -> None:
    """Score a stored scan again under a policy, from stored facts and outcomes (no network)."""
    from scanner.store import Store, StoreError

    opts = policy_options(policy, level, waivers, fail_under, fail_on, as_of)
    assert opts is not None
    try:
        store = Store(db)
        rec = store.scan(scan_id)
        scores = compute_scores(store, rec.id, opts)
        outcomes = store.outcomes(rec.id)
    except KeyError as exc:
        raise fail(str(exc.args[0])) from None
    except StoreError as exc:
        raise fail(str(exc)) from None
    assert scores is not None
    if as_json:
        out.print_json(scores.model_dump_json())
    else:
        print_scores(scores)
    statuses = [c.status for p in scores.packs for u in p.units for c in u.controls]
    warnings = any(s in (ControlStatus.ERROR, ControlStatus.NOT_ASSESSED) for s in statuses)
    base = (
        EXIT_FAILURES
        if ControlStatus.FAIL in statuses
        else (EXIT_WARNINGS if warnings else EXIT_OK)
    )
    code, reasons = gate_exit(base, opts, outcomes, scores, warnings)
    for r in reasons:
        err.print(f"gate: {r}", markup=False, soft_wrap=True)
    raise typer.Exit(code)


def register(app: typer.Typer) -> None:
    """Add `assay policies ...` and `assay rescore`; give `assay report` the policy options."""
    app.add_typer(policies_app, name="policies")
    app.command("rescore")(rescore)
    for info in app.registered_commands:
        name = info.name or getattr(info.callback, "__name__", "")
        if name == "report" and info.callback is not None:
            info.callback = with_policy_options(info.callback)


def finish(
    summary: Any, opts: PolicyOptions | None, outcomes: Sequence[Outcome], scores: Any
) -> int:
    """Print the scan's scores and gate reasons; return its exit code."""
    if scores is not None:
        print_scores(scores)
    c = summary.counts
    warned = bool(c.get("error") or c.get("not_assessed") or summary.warnings)
    code, reasons = gate_exit(summary.exit_code, opts, outcomes, scores, warned)
    for r in reasons:
        err.print(f"gate: {r}", markup=False, soft_wrap=True)
    return code
