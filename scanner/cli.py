"""The `assay` command line (Typer + Rich). Only this module chooses exit codes.

Exit codes:
  0  clean: every assessed check passed
  1  error: Assay could not do what was asked (bad inventory, unknown scan, database, interrupt)
  2  warnings: the scan completed, but some checks could not be assessed (error / not_assessed
     outcomes, or discovery warnings such as nmap missing)
  3  failures: at least one check failed
"""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from scanner import __version__

EXIT_OK, EXIT_ERROR, EXIT_WARNINGS, EXIT_FAILURES = 0, 1, 2, 3

app = typer.Typer(
    name="assay",
    help="Information-security and data-protection assessment of a unit's networks, "
    "servers and document stores.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
checks_app = typer.Typer(help="The installed checks.", no_args_is_help=True)
scans_app = typer.Typer(help="Scans kept in the store.", no_args_is_help=True)
app.add_typer(checks_app, name="checks")
app.add_typer(scans_app, name="scans")

err = Console(stderr=True, highlight=False)
out = Console(highlight=False)

DbOpt = Annotated[
    str | None,
    typer.Option(
        "--db",
        envvar="ASSAY_DB",
        help="SQLAlchemy URL of the store (default: SQLite file in ~/.local/share/assay/assay.db).",
    ),
]
FORMATS = ("html", "md", "json")


def fail(message: str, code: int = EXIT_ERROR) -> typer.Exit:
    err.print(f"assay: error: {message}", markup=False, soft_wrap=True)
    return typer.Exit(code)


def _formats(value: str) -> list[str]:
    from scanner.plugins import load_registry

    known = set(load_registry().reporters)
    fmts = [f.strip() for f in value.split(",") if f.strip()]
    bad = [f for f in fmts if f not in known]
    if bad:
        raise fail(f"unknown report format {', '.join(bad)} (known: {', '.join(sorted(known))})")
    return fmts


def _store(db: str | None) -> Any:
    from scanner.store import Store, StoreError

    try:
        return Store(db)
    except StoreError as exc:
        raise fail(str(exc)) from None


def _write_reports(
    store: Any, scan_id: str, out_dir: Path, formats: list[str], lang: str = "en"
) -> list[Path]:
    from scanner.cli_reports import write_reports  # with the diff against the previous scan

    return write_reports(store, scan_id, out_dir, formats, lang=lang)


def _language(value: str) -> str:
    from reports.i18n import LanguageError, check_language

    try:
        return check_language(value)
    except LanguageError as exc:
        raise fail(str(exc)) from None


class _Progress:
    """Rich progress on a terminal; silent otherwise (logs and CI stay clean)."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self._progress: Any = None
        self._task: Any = None

    def __enter__(self) -> _Progress:
        if self.enabled:
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

            self._progress = Progress(
                TextColumn("[bold]scan[/]"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("{task.description}"),
                console=err,
                transient=True,
            )
            self._progress.__enter__()
            self._task = self._progress.add_task("starting", total=1)
        return self

    def __call__(self, message: str, done: int, total: int) -> None:
        if self._progress is not None:
            self._progress.update(self._task, description=message[:60], completed=done, total=total)

    def __exit__(self, *exc: object) -> None:
        if self._progress is not None:
            self._progress.__exit__(None, None, None)


def _run_scan(runner: Any, resume_id: str | None) -> Any:
    try:
        if resume_id:
            return asyncio.run(runner.resume(resume_id))
        return asyncio.run(runner.run())
    except KeyboardInterrupt:
        raise fail("interrupted; finished targets are stored (continue with --resume)") from None


def _print_summary(summary: Any, written: list[Path]) -> None:
    c = summary.counts
    parts = [f"{c.get(k, 0)} {k}" for k in ("pass", "fail", "error", "not_assessed") if c.get(k)]
    out.print(f"scan {summary.scan_id} {summary.state}: {', '.join(parts) or 'no outcomes'}")
    for w in summary.warnings:
        err.print(f"warning: {w}", markup=False, soft_wrap=True)
    for p in written:
        out.print(f"report: {p}", markup=False, soft_wrap=True)


@app.command()
def scan(
    inventory: Annotated[
        Path | None, typer.Argument(help="Inventory YAML file (not needed with --resume).")
    ] = None,
    unit: Annotated[
        list[str] | None, typer.Option("--unit", "-u", help="Scan only this unit (repeatable).")
    ] = None,
    out_dir: Annotated[Path, typer.Option("--out", "-o", help="Report directory.")] = Path(
        "assay-reports"
    ),
    active: Annotated[
        bool, typer.Option("--active", help="Also run probes that write or try passwords.")
    ] = False,
    db: DbOpt = None,
    fmt: Annotated[
        str, typer.Option("--format", "-f", help="Report formats, comma separated.")
    ] = "html,json,md",
    resume: Annotated[
        str | None, typer.Option("--resume", help="Finish an interrupted scan by its id.")
    ] = None,
    nmap: Annotated[
        str | None, typer.Option("--nmap", help="Path of the nmap binary (default: PATH).")
    ] = None,
    no_version: Annotated[
        bool, typer.Option("--no-version-detection", help="Skip nmap service identification.")
    ] = False,
    policy: Annotated[
        str | None, typer.Option("--policy", "-p", help="Score under these packs (ids or files).")
    ] = None,
    level: Annotated[int | None, typer.Option("--level", help="Security level of packs.")] = None,
    waivers: Annotated[Path | None, typer.Option("--waivers", help="Waiver file.")] = None,
    fail_under: Annotated[
        float | None, typer.Option("--fail-under", help="Exit 3 if the policy score is below N.")
    ] = None,
    fail_on: Annotated[
        str | None, typer.Option("--fail-on", help="Exit 3 on an unwaived failure this severe.")
    ] = None,
    lang: Annotated[str, typer.Option("--lang", help="Report language: en, vi or de.")] = "en",
) -> None:
    """Scan the units of an inventory, store the results and write reports."""
    from scanner import cli_policies as pol
    from scanner.inventory import InventoryError, load_inventory
    from scanner.plugins import load_registry
    from scanner.runner import Runner, ScanOptions
    from scanner.store import StoreError

    formats = _formats(fmt)
    lang = _language(lang)  # a typo is refused before any packet, like a bad format
    popts = pol.policy_options(policy, level, waivers, fail_under, fail_on)  # before any packet
    registry = load_registry()
    store = _store(db)
    progress = _Progress(sys.stderr.isatty())

    def log(message: str) -> None:
        if not progress.enabled:
            return
        err.print(message, markup=False, soft_wrap=True)

    try:
        if resume:
            try:
                runner, scan_id = Runner.for_resume(
                    registry, store, resume, progress=progress, log=log, nmap_path=nmap
                )
            except KeyError as exc:
                raise fail(str(exc.args[0])) from None
            except InventoryError as exc:
                raise fail(f"stored inventory of {resume}: {exc}") from None
        else:
            if inventory is None:
                raise fail("give an INVENTORY file, or --resume SCAN_ID")
            try:
                inv = load_inventory(inventory)
                text = inventory.read_text(encoding="utf-8")
            except InventoryError as exc:
                raise fail(str(exc)) from None
            try:
                for u in unit or []:
                    inv.unit(u)
            except KeyError as exc:
                raise fail(str(exc.args[0])) from None
            runner = Runner(
                registry,
                store,
                inv,
                inventory_text=text,
                inventory_name=inventory.name,
                options=ScanOptions(
                    active=active,
                    units=unit or None,
                    nmap_path=nmap,
                    version_detection=not no_version,
                ),
                progress=progress,
                log=log,
            )
            scan_id = None
        for b in registry.broken:
            err.print(f"warning: plugin {b.group}:{b.name} skipped: {b.reason}", markup=False)
        with progress:
            summary = _run_scan(runner, scan_id)
        with pol.scoring(popts):
            written = _write_reports(store, summary.scan_id, out_dir, formats, lang)
        scores = pol.compute_scores(store, summary.scan_id, popts) if popts else None
        outcomes = store.outcomes(summary.scan_id) if popts else []
    except StoreError as exc:
        raise fail(str(exc)) from None
    _print_summary(summary, written)
    raise typer.Exit(pol.finish(summary, popts, outcomes, scores))


@app.command()
def report(
    scan_id: Annotated[str, typer.Argument(help="Scan id (a unique prefix is enough).")],
    fmt: Annotated[str, typer.Option("--format", "-f", help="Formats, comma separated.")] = "html",
    out_dir: Annotated[Path, typer.Option("--out", "-o", help="Report directory.")] = Path(
        "assay-reports"
    ),
    db: DbOpt = None,
) -> None:
    """Write reports of a stored scan again, without rescanning."""
    formats = _formats(fmt)
    store = _store(db)
    try:
        store.scan(scan_id)
    except KeyError as exc:
        raise fail(str(exc.args[0])) from None
    for p in _write_reports(store, scan_id, out_dir, formats):
        out.print(f"report: {p}", markup=False, soft_wrap=True)


@scans_app.command("list")
def scans_list(db: DbOpt = None, as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """List stored scans, newest first."""
    store = _store(db)
    rows = []
    for rec in store.list_scans():
        counts: dict[str, int] = {}
        for o in store.outcomes(rec.id):
            counts[o.status.value] = counts.get(o.status.value, 0) + 1
        rows.append(
            {
                "scan_id": rec.id,
                "state": rec.state,
                "started_at": rec.started_at.isoformat(),
                "units": rec.units,
                "inventory": rec.inventory_name,
                "counts": counts,
            }
        )
    if as_json:
        out.print_json(json.dumps(rows))
        return
    table = Table("scan", "state", "started", "units", "fail", "pass")
    for r in rows:
        table.add_row(
            r["scan_id"],
            r["state"],
            r["started_at"][:19],
            ",".join(r["units"]),
            str(r["counts"].get("fail", 0)),
            str(r["counts"].get("pass", 0)),
        )
    out.print(table)


def _check_dict(check: Any) -> dict[str, Any]:
    m = check.meta
    return {
        "id": m.id,
        "title": m.title,
        "target_kind": m.target_kind.value,
        "severity": m.severity.value,
        "facts": list(m.facts),
        "rationale": m.rationale,
        "remediation": m.remediation.model_dump(),
        "references": [r.model_dump() for r in m.references],
        "tags": list(m.tags),
        "active": m.active,
        "params": check.Params.model_json_schema(),
        "module": type(check).__module__,
    }


@checks_app.command("list")
def checks_list(as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """List installed checks (and plugins that could not be loaded)."""
    from scanner.plugins import load_registry

    reg = load_registry()
    items = [_check_dict(c) for _, c in sorted(reg.checks.items())]
    if as_json:
        broken = [{"group": b.group, "name": b.name, "reason": b.reason} for b in reg.broken]
        out.print_json(json.dumps({"checks": items, "broken": broken}))
        return
    table = Table("id", "severity", "target", "title")
    for c in items:
        table.add_row(c["id"], c["severity"], c["target_kind"], c["title"])
    out.print(table)
    for b in reg.broken:
        err.print(f"broken plugin {b.group}:{b.name}: {b.reason}", markup=False, soft_wrap=True)


@checks_app.command("show")
def checks_show(check_id: Annotated[str, typer.Argument(help="Check id.")]) -> None:
    """Show one check: rationale, remediation, references and parameters."""
    from scanner.plugins import load_registry

    reg = load_registry()
    check = reg.checks.get(check_id)
    if check is None:
        close = [c for c in reg.checks if check_id in c or c.startswith(check_id.split(".")[0])]
        hint = f" (did you mean: {', '.join(close[:5])})" if close else ""
        raise fail(f"no check {check_id!r} is installed{hint}")
    d = _check_dict(check)
    out.print(f"[bold]{d['id']}[/] — {d['title']}")
    out.print(
        f"severity: {d['severity']}   target: {d['target_kind']}   facts: "
        f"{', '.join(d['facts'])}{'   (active)' if d['active'] else ''}"
    )
    out.print(f"\n{d['rationale']}\n", markup=False)
    out.print("[bold]remediation[/]")
    out.print(d["remediation"]["text"], markup=False)
    if d["remediation"]["snippet"]:
        out.print(d["remediation"]["snippet"], markup=False)
    out.print(
        "[bold]references[/]: " + ", ".join(f"{r['scheme']} {r['id']}" for r in d["references"])
    )
    props = d["params"].get("properties", {})
    if props:
        out.print("[bold]parameters[/]")
        for name, spec in props.items():
            out.print(f"  {name} = {json.dumps(spec.get('default'))}", markup=False)


@app.command()
def demo(
    out_dir: Annotated[Path, typer.Option("--out", "-o", help="Report directory.")] = Path(
        "assay-demo"
    ),
    active: Annotated[bool, typer.Option("--active", help="Include active probes.")] = False,
    db: DbOpt = None,
    nmap: Annotated[str | None, typer.Option("--nmap", help="Path of nmap.")] = None,
) -> None:
    """Start a demo unit of weak and good services on loopback, scan it and write a report."""
    from scanner.demo_services import DemoUnit
    from scanner.inventory import parse_inventory
    from scanner.plugins import load_registry
    from scanner.runner import Runner, ScanOptions

    registry = load_registry()
    store = _store(db)
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise fail(f"cannot create {out_dir}: {exc.strerror}") from None
    progress = _Progress(sys.stderr.isatty())
    with DemoUnit(workdir=out_dir / "demo-data") as unit:
        text = unit.inventory_yaml()
        (out_dir / "demo-inventory.yaml").write_text(text, encoding="utf-8")
        inv = parse_inventory(text, "demo-inventory.yaml")
        out.print(
            f"demo unit running on {unit.weak_address} (weak) and {unit.good_address} (good); "
            "scanning..."
        )
        runner = Runner(
            registry,
            store,
            inv,
            inventory_text=text,
            inventory_name="demo-inventory.yaml",
            options=ScanOptions(active=active, nmap_path=nmap),
            progress=progress,
        )
        with progress:
            summary = _run_scan(runner, None)
    written = _write_reports(store, summary.scan_id, out_dir, ["html", "json", "md"])
    _print_summary(summary, written)
    out.print(f"open {written[0].resolve()} in a browser to read the report")


@app.command()
def version() -> None:
    """Print Assay's version."""
    out.print(f"assay {__version__}")


def _register_report_commands() -> None:
    from scanner import cli_reports  # report (with --lang, --sign), diff, verify, keygen

    cli_reports.register(app)


_register_report_commands()


def _register_server_commands() -> None:
    from scanner import cli_server  # serve, worker, server user-add/unit-add/schedule-add/token

    cli_server.register(app)


_register_server_commands()


def _register_policy_commands() -> None:
    from scanner import cli_policies  # policies list/show/validate, rescore, report --policy

    cli_policies.register(app)


_register_policy_commands()


def main() -> None:
    app()


if __name__ == "__main__":
    main()
