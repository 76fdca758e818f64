"""View helpers shared by the renderers, so HTML and Markdown show the same things in the same
order: masking, grouping by unit and host, ordering by severity, labels and number formats.

Everything here is a pure function of the `Assessment` and the report language chosen with
`reports.i18n.use_language` (English unless a caller chose another); no clock, no system locale,
no set ordering, so the same document always renders to the same bytes (the golden-file tests
rely on it). Labels are English message ids marked with `N_` and translated where they are
shown, so the tables stay plain data.
"""

from __future__ import annotations

import ipaddress
import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

from reports.assessment import Assessment, Counts, OutcomeDoc, TargetDoc, TargetSummary, UnitDoc
from reports.i18n import N_, gettext, translate_outcome
from scanner.masking import mask_evidence, mask_text
from scanner.model import Severity, Status, TargetKind

SEVERITY_ORDER = (Severity.CRITICAL, Severity.HIGH, Severity.MEDIUM, Severity.LOW, Severity.INFO)
# what needs attention first; the same order is used for counts, bars and target tables
STATUS_ORDER = (
    Status.FAIL,
    Status.ERROR,
    Status.NOT_ASSESSED,
    Status.PASS,
    Status.NOT_APPLICABLE,
)
STATUS_LABEL = {
    Status.PASS: N_("pass"),
    Status.FAIL: N_("fail"),
    Status.ERROR: N_("error"),
    Status.NOT_ASSESSED: N_("not assessed"),
    Status.NOT_APPLICABLE: N_("not applicable"),
}
# what the report shows for the enum values of the document (severities, scan and target states,
# target kinds, control statuses, obligations, verification levels, waiver states)
VALUE_LABEL = {
    **{s.value: label for s, label in STATUS_LABEL.items()},
    "critical": N_("critical"),
    "high": N_("high"),
    "medium": N_("medium"),
    "low": N_("low"),
    "info": N_("info"),
    "running": N_("running"),
    "complete": N_("complete"),
    "interrupted": N_("interrupted"),
    "done": N_("done"),
    "pending": N_("pending"),
    "host": N_("host"),
    "service": N_("service"),
    "web": N_("web"),
    "ssh": N_("ssh"),
    "store": N_("store"),
    "document": N_("document"),
    "waived": N_("waived"),
    "mandatory": N_("mandatory"),
    "recommended": N_("recommended"),
    "verified": N_("verified"),
    "secondary": N_("secondary"),
    "unverified": N_("unverified"),
    "active": N_("active"),
    "expired": N_("expired"),
    "unmatched": N_("unmatched"),
    "refused": N_("refused"),
}
PROBLEM_STATUSES = (Status.ERROR, Status.NOT_ASSESSED)
FALLBACK_NOTICE = N_(
    "nmap was not available: services were found with a TCP connect scan, without version detection"
)
_METHOD = {
    "probed": N_("identified by nmap version detection"),
    "banner": N_("identified from its banner"),
    "table": N_("guessed from the port number"),
}
_KIND_ORDER = {
    TargetKind.HOST: 0,
    TargetKind.SSH: 1,
    TargetKind.SERVICE: 2,
    TargetKind.WEB: 3,
    TargetKind.STORE: 4,
    TargetKind.DOCUMENT: 5,
}


# -- masking ---------------------------------------------------------------------------------
def masked(doc: Assessment) -> Assessment:
    """A copy with evidence and free text masked.

    The runner masks before storing; renderers do it again so that a document built some other
    way (an import, an old store, a plugin that forgot) still never prints a secret.
    """

    def outcome(o: OutcomeDoc) -> OutcomeDoc:
        return o.model_copy(
            update={"evidence": mask_evidence(o.evidence), "message": mask_text(o.message)}
        )

    def unit(u: UnitDoc) -> UnitDoc:
        targets = [t.model_copy(update={"errors": _texts(t.errors)}) for t in u.targets]
        disc = u.discovery
        if disc is not None:
            disc = disc.model_copy(
                update={"warnings": _texts(disc.warnings), "errors": _texts(disc.errors)}
            )
        return u.model_copy(update={"targets": targets, "discovery": disc})

    return doc.model_copy(
        update={
            "outcomes": [outcome(o) for o in doc.outcomes],
            "units": [unit(u) for u in doc.units],
            "active_probes": _texts(doc.active_probes),
            "broken_plugins": [
                b.model_copy(update={"reason": mask_text(b.reason)}) for b in doc.broken_plugins
            ],
        }
    )


def _texts(items: list[str]) -> list[str]:
    return [mask_text(s) for s in items]


# -- formats ---------------------------------------------------------------------------------
def pct(value: float | None) -> str:
    """0.4286 -> '42.9%'; None (nothing assessed) -> 'n/a'."""
    return gettext("n/a") if value is None else f"{value * 100:.1f}%"


def iso_utc(value: datetime | None) -> str:
    """UTC ISO 8601 with a Z suffix; a naive time is taken as UTC (how the store keeps it)."""
    if value is None:
        return gettext("not finished")
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def duration(start: datetime, end: datetime | None) -> str:
    if end is None:
        return gettext("n/a")
    if (start.tzinfo is None) != (end.tzinfo is None):
        start, end = start.replace(tzinfo=None), end.replace(tzinfo=None)
    seconds = max(0, round((end - start).total_seconds()))
    minutes, s = divmod(seconds, 60)
    if minutes:
        return gettext("{minutes} min {seconds} s").format(minutes=minutes, seconds=s)
    return gettext("{seconds} s").format(seconds=s)


def evidence_json(o: OutcomeDoc) -> str:
    """Pretty, key-sorted JSON of (already masked) evidence; '' when there is none."""
    if not o.evidence:
        return ""
    return json.dumps(o.evidence, indent=2, sort_keys=True, ensure_ascii=False, default=str)


def references(o: OutcomeDoc) -> str:
    """References as plain text: a report links to nothing, even in its prose."""
    return ", ".join(f"{r.scheme} {r.id}" for r in o.references)


def service_text(t: TargetDoc | None) -> str:
    """What discovery knew about a service, or why it knew little."""
    s = t.service if t else None
    if s is None:
        return ""
    product = " ".join(p for p in (s.product, s.version, s.extrainfo) if p)
    parts = [s.name or gettext("unidentified"), product]
    if s.tunnel:
        parts.append(gettext("over {tunnel}").format(tunnel=s.tunnel))
    if s.method in _METHOD:
        parts.append(gettext(_METHOD[s.method]))
    elif s.method:
        parts.append(gettext("identified by {method}").format(method=s.method))
    if s.note:
        parts.append(s.note)
    return "; ".join(p for p in parts if p)


# -- ordering --------------------------------------------------------------------------------
def finding_order(o: OutcomeDoc) -> tuple[int, str, str, str]:
    """Critical first, then by target, check and detail (stable across runs)."""
    return (SEVERITY_ORDER.index(o.severity), o.target.key, o.check_id, o.detail)


def outcome_order(o: OutcomeDoc) -> tuple[int, int, str, str]:
    return (STATUS_ORDER.index(o.status), SEVERITY_ORDER.index(o.severity), o.check_id, o.detail)


def problem_order(o: OutcomeDoc) -> tuple[str, int, str, str]:
    return (o.target.key, STATUS_ORDER.index(o.status), o.check_id, o.detail)


def _address_order(address: str) -> tuple[int, int, str]:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return (9, 0, address)
    return (ip.version, int(ip), address)


# -- views -----------------------------------------------------------------------------------
@dataclass
class CountView:
    status: Status
    label: str
    n: int


@dataclass
class TargetView:
    key: str
    kind: TargetKind
    label: str
    state: str
    service: str
    pass_rate: str
    counts: list[CountView]
    errors: list[str]
    outcomes: list[OutcomeDoc]


@dataclass
class HostView:
    """One address and what was found on it: the host itself first, then its services."""

    address: str
    targets: list[TargetView] = field(default_factory=list)


@dataclass
class UnitView:
    unit: UnitDoc
    pass_rate: str
    coverage: str
    pass_rate_numbers: str  # the formula with this unit's numbers filled in
    coverage_numbers: str
    counts: list[CountView]
    total: int
    findings: list[OutcomeDoc]
    problems: list[OutcomeDoc]
    troubled: list[TargetView]  # targets in error or never finished
    hosts: list[HostView]
    others: list[TargetView]  # stores, documents: no address to group under


def count_views(c: Counts) -> list[CountView]:
    raw = c.model_dump(by_alias=True)
    return [CountView(s, gettext(STATUS_LABEL[s]), raw[s.value]) for s in STATUS_ORDER]


def formulas(c: Counts) -> tuple[str, str]:
    p, f = c.pass_, c.fail
    return (f"{p} / ({p} + {f})", f"({p} + {f}) / ({c.total} - {c.not_applicable})")


def _address_of(t: TargetDoc | None, key: str, kind: TargetKind) -> str | None:
    if t is not None and t.address:
        return t.address
    if t is not None and t.url:
        return urlsplit(t.url).hostname
    rest = key.split(":", 1)[1] if ":" in key else ""
    if kind in (TargetKind.HOST, TargetKind.SSH):
        return rest or None
    if kind is TargetKind.SERVICE and ":" in rest:
        return rest.rsplit(":", 1)[0]
    return None


def _target_views(u: UnitDoc, outs: list[OutcomeDoc]) -> list[tuple[str | None, TargetView]]:
    """Every target of the unit: those summarised by the document, plus any that only appear in
    outcomes (a document assembled elsewhere), so no outcome is ever left out of the report."""
    by_key: dict[str, list[OutcomeDoc]] = {}
    for o in outs:
        by_key.setdefault(o.target.key, []).append(o)
    summaries: dict[str, TargetSummary] = {t.key: t for t in u.targets}
    for key, group in by_key.items():
        if key not in summaries:
            c = Counts.of(o.status for o in group)
            t0 = group[0].target
            summaries[key] = TargetSummary(
                key=key,
                kind=t0.kind,
                label=t0.label,
                state="done",
                counts=c,
                pass_rate=c.pass_rate,
                coverage=c.coverage,
            )
    views = []
    for key, s in summaries.items():
        group = sorted(by_key.get(key, []), key=outcome_order)
        tdoc = group[0].target if group else None
        tv = TargetView(
            key=key,
            kind=s.kind,
            label=s.label,
            state=s.state,
            service=service_text(tdoc),
            pass_rate=pct(s.pass_rate),
            counts=count_views(s.counts),
            errors=list(s.errors),
            outcomes=group,
        )
        views.append((_address_of(tdoc, key, s.kind), tv))
    return views


def _target_order(tv: TargetView) -> tuple[int, int, str]:
    port = tv.key.rsplit(":", 1)[-1].split("/")[0] if tv.kind is TargetKind.SERVICE else "0"
    return (_KIND_ORDER[tv.kind], int(port) if port.isdigit() else 0, tv.key)


def unit_view(u: UnitDoc, doc: Assessment) -> UnitView:
    outs = doc.outcomes_of(u.id)
    hosts: dict[str, HostView] = {}
    others: list[TargetView] = []
    all_views = []
    for address, tv in _target_views(u, outs):
        all_views.append(tv)
        if address is None:
            others.append(tv)
        else:
            hosts.setdefault(address, HostView(address)).targets.append(tv)
    for h in hosts.values():
        h.targets.sort(key=_target_order)
    rate_numbers, coverage_numbers = formulas(u.counts)
    return UnitView(
        unit=u,
        pass_rate=pct(u.pass_rate),
        coverage=pct(u.coverage),
        pass_rate_numbers=rate_numbers,
        coverage_numbers=coverage_numbers,
        counts=count_views(u.counts),
        total=u.counts.total,
        findings=sorted((o for o in outs if o.status is Status.FAIL), key=finding_order),
        problems=sorted((o for o in outs if o.status in PROBLEM_STATUSES), key=problem_order),
        troubled=sorted(
            (tv for tv in all_views if tv.state != "done" or tv.errors), key=lambda t: t.key
        ),
        hosts=[hosts[a] for a in sorted(hosts, key=_address_order)],
        others=sorted(others, key=_target_order),
    )


def label(value: object) -> str:
    """An enum value of the document as the report shows it, in the active language; a value
    without a label (a newer document, a plugin's own) is shown as it is."""
    raw = str(getattr(value, "value", value))
    return gettext(VALUE_LABEL[raw]) if raw in VALUE_LABEL else raw


def context(doc: Assessment) -> dict[str, Any]:
    """Everything a template needs. The document is masked here, once, for every format, and its
    check titles and remediation texts are put into the active language."""
    from reports.diff import score_delta
    from reports.i18n import language
    from reports.plan import build_plan

    doc = masked(doc)
    if language() != "en":
        doc = doc.model_copy(update={"outcomes": [translate_outcome(o) for o in doc.outcomes]})
    return {
        "_": gettext,
        "lang": language(),
        "label": label,
        "plan": build_plan(doc),
        "pct": pct,
        "iso_utc": iso_utc,
        "score_delta": score_delta,
        "doc": doc,
        "units": [unit_view(u, doc) for u in doc.units],
        "started": iso_utc(doc.started_at),
        "finished": iso_utc(doc.finished_at),
        "duration": duration(doc.started_at, doc.finished_at),
        "fallback_notice": gettext(FALLBACK_NOTICE),
        "status_label": {s: gettext(text) for s, text in STATUS_LABEL.items()},
        "evidence_json": evidence_json,
        "references": references,
    }
