"""`assay report`, `assay diff`, `assay verify` and `assay keygen`: reports, changes, signatures.

Registered on the main Typer app by `register(app)` (called at the end of scanner/cli.py).
This module does not import scanner.cli, so `python -m scanner.cli` loads one copy of each.
Exit codes follow scanner/cli.py: 0 ok, 1 error; `assay diff` exits 3 when the newer scan has
new or reopened findings, so it can gate a pipeline on "nothing got worse".
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console

if TYPE_CHECKING:
    from reports.assessment import Assessment
    from scanner.store import Store

EXIT_OK, EXIT_ERROR, EXIT_FAILURES = 0, 1, 3
HISTORY_SCANS = 20  # earlier scans consulted to tell "reopened" from "new"

err = Console(stderr=True, highlight=False)
out = Console(highlight=False)

DbOpt = Annotated[
    str | None,
    typer.Option("--db", envvar="ASSAY_DB", help="SQLAlchemy URL of the store."),
]


def fail(message: str, code: int = EXIT_ERROR) -> typer.Exit:
    err.print(f"assay: error: {message}", markup=False, soft_wrap=True)
    return typer.Exit(code)


def _store(db: str | None) -> Store:
    from scanner.store import Store, StoreError

    try:
        return Store(db)
    except StoreError as exc:
        raise fail(str(exc)) from None


def parse_formats(value: str, known: Sequence[str]) -> list[str]:
    fmts = list(dict.fromkeys(f.strip() for f in value.split(",") if f.strip()))
    bad = [f for f in fmts if f not in known]
    if bad:
        raise fail(f"unknown report format {', '.join(bad)} (known: {', '.join(sorted(known))})")
    if not fmts:
        raise fail("give at least one report format")
    return fmts


# -- previous scans -------------------------------------------------------------------------
def previous_scans(store: Store, scan_id: str, limit: int = HISTORY_SCANS + 1) -> list[str]:
    """Finished scans of the same units that started before `scan_id`, newest first."""
    rec = store.scan(scan_id)
    older = []
    for other in store.list_scans(limit=500):
        if other.id == rec.id or other.started_at >= rec.started_at:
            continue
        if other.state == "running" or not set(other.units) & set(rec.units):
            continue
        older.append(other.id)
    return older[:limit]


def assessment_with_diff(store: Store, scan_id: str) -> Assessment:
    from reports.build import build_assessment
    from reports.diff import with_diff

    doc = build_assessment(store, scan_id)
    older = [build_assessment(store, i) for i in previous_scans(store, doc.scan_id)]
    return with_diff(doc, older[0] if older else None, older[1:])


def write_reports(
    store: Store,
    scan_id: str,
    out_dir: Path,
    formats: list[str],
    lang: str = "en",
    sign: Path | None = None,
) -> list[Path]:
    """Render `formats` of a stored scan into `out_dir`, in `lang`, optionally signed."""
    from reports.i18n import LanguageError, use_language
    from reports.signing import CANONICAL, SigningError, load_private_key, sign_directory
    from scanner.plugins import load_registry

    reg = load_registry()
    if sign is not None:
        try:
            load_private_key(sign)  # a bad key fails before anything is written
        except SigningError as exc:
            raise fail(str(exc)) from None
        if "json" not in formats:
            formats = [*formats, "json"]  # the signature always covers the canonical document
    doc = assessment_with_diff(store, scan_id)
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise fail(f"cannot create report directory {out_dir}: {exc.strerror}") from None
    written: list[Path] = []
    try:
        with use_language(lang):
            for fmt in formats:
                reporter = reg.reporters.get(fmt)
                if reporter is None:
                    raise fail(f"report format {fmt!r} is not installed")
                path = reporter.write(doc, out_dir)
                extra = [out_dir / n for n in getattr(reporter, "outputs", ())]
                written += [p for p in [path, *extra] if p not in written]
    except LanguageError as exc:
        raise fail(str(exc)) from None
    except OSError as exc:
        raise fail(f"cannot write reports to {out_dir}: {exc.strerror}") from None
    if sign is not None:
        if not any(p.name == CANONICAL for p in written):
            raise fail(f"the json reporter did not write {CANONICAL}; cannot sign")
        try:
            written.append(sign_directory(out_dir, written, sign, doc.scan_id))
        except SigningError as exc:
            raise fail(str(exc)) from None
    return written


# -- loading either a file or a stored scan ----------------------------------------------------
def load_side(value: str, db: str | None, role: str) -> tuple[Assessment, Store | None]:
    from reports.assessment import load
    from scanner.store import StoreError

    path = Path(value)
    if path.is_dir():
        path = path / "assessment.json"
    if path.is_file():
        try:
            return load(path.read_text(encoding="utf-8")), None
        except (OSError, UnicodeDecodeError) as exc:
            raise fail(f"{role} {path}: cannot read: {exc}") from None
        except ValueError as exc:
            first = str(exc).splitlines()
            why = first[0] if first else "invalid"
            raise fail(f"{role} {path}: not an Assay assessment.json ({why})") from None
    from reports.build import build_assessment

    store = _store(db)
    try:
        return build_assessment(store, value), store
    except KeyError as exc:
        raise fail(f"{role}: {exc.args[0]} (and no file of that name exists)") from None
    except StoreError as exc:
        raise fail(str(exc)) from None


def _diff_text(d: Any) -> list[str]:
    from reports._common import pct
    from reports.diff import score_delta

    c = d.counts()
    lines = [
        f"compared with {d.previous_scan_id}: {c['new']} new, {c['reopened']} reopened, "
        f"{c['still_open']} still open, {c['fixed']} fixed, {c['not_reassessed']} not re-assessed"
    ]
    for s in d.scores:
        lines.append(
            f"  {s.unit or 'whole scan'}: pass rate {pct(s.previous_pass_rate)} -> "
            f"{pct(s.pass_rate)} ({score_delta(s.previous_pass_rate, s.pass_rate)}), coverage "
            f"{pct(s.previous_coverage)} -> {pct(s.coverage)}"
        )
    for name in ("new", "reopened", "fixed", "not_reassessed", "severity_changes", "still_open"):
        for e in getattr(d, name):
            was = (
                f" (was {e.previous_severity.value})"
                if e.previous_severity and e.previous_severity != e.severity
                else ""
            )
            lines.append(
                f"{name:<16} {e.severity.value:<8}{was} {e.check_id} @ {e.target}"
                f"{' [' + e.detail + ']' if e.detail else ''}: {e.reason}"
            )
    return lines


# -- commands --------------------------------------------------------------------------------
def report(
    scan_id: Annotated[str, typer.Argument(help="Scan id (a unique prefix is enough).")],
    fmt: Annotated[
        str, typer.Option("--format", "-f", help="Formats, comma separated (e.g. html,csv,ocsf).")
    ] = "html",
    out_dir: Annotated[Path, typer.Option("--out", "-o", help="Report directory.")] = Path(
        "assay-reports"
    ),
    lang: Annotated[str, typer.Option("--lang", help="Report language: en, vi or de.")] = "en",
    sign: Annotated[
        Path | None,
        typer.Option("--sign", help="Ed25519 private key (PEM): sign the written files."),
    ] = None,
    db: DbOpt = None,
) -> None:
    """Write reports of a stored scan again, without rescanning."""
    from reports.i18n import LANGUAGES
    from scanner.plugins import load_registry

    formats = parse_formats(fmt, list(load_registry().reporters))
    if lang not in LANGUAGES:
        raise fail(f"unknown report language {lang!r} (known: {', '.join(LANGUAGES)})")
    store = _store(db)
    try:
        rec = store.scan(scan_id)
    except KeyError as exc:
        raise fail(str(exc.args[0])) from None
    for p in write_reports(store, rec.id, out_dir, formats, lang=lang, sign=sign):
        out.print(f"report: {p}", markup=False, soft_wrap=True)


def diff(
    old: Annotated[str, typer.Argument(help="Older scan: a scan id, assessment.json or its dir.")],
    new: Annotated[str, typer.Argument(help="Newer scan: a scan id, assessment.json or its dir.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print the comparison as JSON.")] = False,
    db: DbOpt = None,
) -> None:
    """Compare two scans by finding fingerprint: new, fixed, still open, reopened."""
    from reports.build import build_assessment
    from reports.diff import compare

    before, store_a = load_side(old, db, "OLD")
    after, store_b = load_side(new, db, "NEW")
    history: list[Assessment] = []
    store = store_a or store_b
    if store is not None and store_a is not None:  # "reopened" needs the scans before OLD
        history = [build_assessment(store, i) for i in previous_scans(store, before.scan_id)]
    d = compare(before, after, history[:HISTORY_SCANS])
    if as_json:
        out.print(d.model_dump_json(indent=2), markup=False, soft_wrap=True)
    else:
        for line in _diff_text(d):
            out.print(line, markup=False, soft_wrap=True)
    raise typer.Exit(EXIT_FAILURES if d.new or d.reopened else EXIT_OK)


def verify(
    directory: Annotated[Path, typer.Argument(help="Report directory holding the signature.")],
    key: Annotated[Path, typer.Option("--key", "-k", help="The signer's public key (PEM).")],
) -> None:
    """Check a signed report directory against the signer's public key."""
    from reports.signing import SIGNATURE_FILE, SigningError, verify_directory

    if not (directory / SIGNATURE_FILE).is_file():
        raise fail(f"{directory / SIGNATURE_FILE}: no signature in this directory")
    try:
        v = verify_directory(directory, key)
    except SigningError as exc:
        raise fail(str(exc)) from None
    for p in v.problems:
        err.print(f"assay: verify: {p}", markup=False, soft_wrap=True)
    for name in v.unsigned:
        err.print(f"warning: {directory / name} is not covered by the signature", markup=False)
    if not v.ok:
        raise typer.Exit(EXIT_ERROR)
    out.print(
        f"signature ok: scan {v.scan_id}, key {v.key_id}, {len(v.files)} files: "
        + ", ".join(v.files),
        markup=False,
        soft_wrap=True,
    )


def keygen(
    path: Annotated[Path, typer.Argument(help="Where to write the private key; .pub is added.")],
) -> None:
    """Create an Ed25519 key pair for signing reports."""
    from reports.signing import SigningError, generate_key, key_id, load_public_key

    try:
        private, public = generate_key(path)
    except SigningError as exc:
        raise fail(str(exc)) from None
    out.print(
        f"private key: {private} (keep it on the scanner)\npublic key: {public} "
        f"(give it to reviewers), key id {key_id(load_public_key(public))}",
        markup=False,
    )


def register(app: typer.Typer) -> None:
    """Add the commands to `app`; this `report` (with --lang and --sign) replaces the plain one."""
    app.registered_commands = [
        c
        for c in app.registered_commands
        if (c.name or getattr(c.callback, "__name__", "")) != "report"
    ]
    app.command("report")(report)
    app.command("diff")(diff)
    app.command("verify")(verify)
    app.command("keygen")(keygen)
