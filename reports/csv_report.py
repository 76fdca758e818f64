"""assessment.csv (one row per check x target) and assessment-controls.csv (one row per control).

RFC 4180: comma, double quotes, CRLF, UTF-8 with a byte-order mark so that spreadsheet programs
read Vietnamese and German text correctly. The column order is fixed (`RESULT_COLUMNS`,
`CONTROL_COLUMNS`) so a team's import keeps working across releases.

Banners, paths and messages come from servers we do not trust, and a spreadsheet runs a cell
that starts with `=`, `+`, `-` or `@` (and some also after a tab or CR) as a formula: such a
cell gets a leading apostrophe, which spreadsheets show as text and never evaluate.

Until policies name controls, a control is a check: its row sums that check's outcomes over
every target of the unit, and its status is the worst of them.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence
from pathlib import Path

from reports._common import STATUS_ORDER, masked
from reports._export import compact_json, references_text
from reports.assessment import Assessment, OutcomeDoc
from reports.i18n import translate_outcome
from scanner.model import Severity, Status
from scanner.plugins import Reporter

FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
RESULT_COLUMNS = (
    "scan_id",
    "unit",
    "fingerprint",
    "check_id",
    "title",
    "status",
    "severity",
    "target_kind",
    "target",
    "address",
    "port",
    "protocol",
    "url",
    "path",
    "detail",
    "message",
    "evidence",
    "remediation",
    "snippet_lang",
    "snippet",
    "references",
)
CONTROL_COLUMNS = (
    "scan_id",
    "unit",
    "control",
    "title",
    "severity",
    "status",
    "pass",
    "fail",
    "error",
    "not_applicable",
    "not_assessed",
    "failed_targets",
)
_WORST = (Status.FAIL, Status.ERROR, Status.NOT_ASSESSED, Status.PASS, Status.NOT_APPLICABLE)


def neutralise(value: object) -> str:
    """A cell a spreadsheet shows as text: formula-looking values get a leading apostrophe."""
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(FORMULA_START) else text


def _table(columns: Sequence[str], rows: Iterable[Sequence[object]]) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\r\n", quoting=csv.QUOTE_MINIMAL)
    w.writerow(columns)
    for row in rows:
        w.writerow([neutralise(v) for v in row])
    return "\ufeff" + buf.getvalue()


def _result_row(doc: Assessment, o: OutcomeDoc) -> list[object]:
    t, r = o.target, o.remediation
    return [
        doc.scan_id,
        o.unit,
        o.fingerprint,
        o.check_id,
        o.title,
        o.status.value,
        o.severity.value,
        t.kind.value,
        t.label,
        t.address or "",
        t.port or "",
        t.protocol or "",
        t.url or "",
        t.path or "",
        o.detail,
        o.message,
        compact_json(o.evidence),
        r.text if r else "",
        r.snippet_lang if r else "",
        r.snippet if r else "",
        references_text(o),
    ]


def _order(o: OutcomeDoc) -> tuple[str, int, int, str, str, str]:
    return (
        o.unit,
        STATUS_ORDER.index(o.status),
        -o.severity.rank,
        o.check_id,
        o.target.key,
        o.detail,
    )


def results_csv(doc: Assessment) -> str:
    doc = masked(doc)
    outs = sorted((translate_outcome(o) for o in doc.outcomes), key=_order)
    return _table(RESULT_COLUMNS, (_result_row(doc, o) for o in outs))


def controls_csv(doc: Assessment) -> str:
    doc = masked(doc)
    groups: dict[tuple[str, str], list[OutcomeDoc]] = {}
    for o in doc.outcomes:
        groups.setdefault((o.unit, o.check_id), []).append(translate_outcome(o))
    rows = []
    for (unit, check_id), outs in sorted(groups.items()):
        statuses = [o.status for o in outs]
        worst = min(statuses, key=_WORST.index)
        severity = max((o.severity for o in outs), key=lambda s: s.rank, default=Severity.INFO)
        failed = sorted({o.target.label for o in outs if o.status is Status.FAIL})
        rows.append(
            [
                doc.scan_id,
                unit,
                check_id,
                outs[0].title,
                severity.value,
                worst.value,
                *(statuses.count(s) for s in (Status.PASS, Status.FAIL, Status.ERROR)),
                statuses.count(Status.NOT_APPLICABLE),
                statuses.count(Status.NOT_ASSESSED),
                "; ".join(failed),
            ]
        )
    return _table(CONTROL_COLUMNS, rows)


class CsvReporter(Reporter):
    format = "csv"
    extension = "csv"
    outputs = ("assessment.csv", "assessment-controls.csv")  # every file write() creates

    def render(self, assessment: Assessment) -> str:
        return results_csv(assessment)

    def render_files(self, assessment: Assessment) -> dict[str, str]:
        results, controls = self.outputs
        return {results: results_csv(assessment), controls: controls_csv(assessment)}

    def write(self, assessment: Assessment, out_dir: Path) -> Path:
        files = self.render_files(assessment)
        for name, text in files.items():
            (out_dir / name).write_text(text, encoding="utf-8", newline="")
        return out_dir / self.outputs[0]
