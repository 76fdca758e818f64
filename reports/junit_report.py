"""assessment.junit.xml: one testcase per check x target, so a CI job can gate on a scan.

The shape is the common subset CI servers read (Jenkins, GitLab, GitHub test reporters, pytest
tooling): `testsuites > testsuite > testcase` with `failure`, `error` and `skipped` children.
One suite per unit; `classname` is the check id (shown as the suite in GitLab) and `name` is
"check @ target". A failed check carries its severity as the failure type and its remediation in
the body; `not_applicable` and `not_assessed` are skipped with their reason, so they never read
as passed. Text from servers passes through `xml_text`: XML 1.0 cannot hold most control
characters, and a hostile banner must not make the whole file unreadable.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET

from reports._common import STATUS_ORDER, iso_utc, masked
from reports._export import compact_json, references_text, target_name, xml_text
from reports.assessment import Assessment, OutcomeDoc
from reports.i18n import translate_outcome
from scanner.model import Status
from scanner.plugins import Reporter


def _order(o: OutcomeDoc) -> tuple[str, str, str, int]:
    return (o.check_id, o.target.key, o.detail, STATUS_ORDER.index(o.status))


def _body(o: OutcomeDoc) -> str:
    lines = [o.message]
    if o.remediation:
        lines += ["", f"Remediation: {o.remediation.text}"]
        if o.remediation.snippet:
            lines += [f"[{o.remediation.snippet_lang or 'text'}]", o.remediation.snippet.rstrip()]
    if o.evidence:
        lines += ["", f"Evidence: {compact_json(o.evidence)}"]
    if o.references:
        lines += [f"References: {references_text(o)}"]
    return xml_text("\n".join(lines))


def _testcase(suite: ET.Element, o: OutcomeDoc) -> None:
    case = ET.SubElement(
        suite,
        "testcase",
        {
            "classname": o.check_id,
            "name": xml_text(f"{o.check_id} @ {target_name(o)}"),
            "time": "0",
        },
    )
    message = xml_text(o.message)
    if o.status is Status.FAIL:
        el = ET.SubElement(case, "failure", {"message": message, "type": o.severity.value})
        el.text = _body(o)
    elif o.status is Status.ERROR:
        el = ET.SubElement(case, "error", {"message": message, "type": "error"})
        el.text = _body(o)
    elif o.status in (Status.NOT_APPLICABLE, Status.NOT_ASSESSED):
        ET.SubElement(case, "skipped", {"message": xml_text(f"{o.status.value}: {o.message}")})
    out = ET.SubElement(case, "system-out")
    out.text = xml_text(
        f"title: {o.title}\nseverity: {o.severity.value}\nfingerprint: {o.fingerprint}\n"
    )


def render_junit(doc: Assessment) -> str:
    doc = masked(doc)
    outcomes = [translate_outcome(o) for o in doc.outcomes]
    counts = {s: sum(o.status is s for o in outcomes) for s in Status}
    skipped = counts[Status.NOT_APPLICABLE] + counts[Status.NOT_ASSESSED]
    root = ET.Element(
        "testsuites",
        {
            "name": xml_text(f"assay {doc.scan_id}"),
            "tests": str(len(outcomes)),
            "failures": str(counts[Status.FAIL]),
            "errors": str(counts[Status.ERROR]),
            "skipped": str(skipped),
            "time": "0",
        },
    )
    units = sorted({u.id for u in doc.units} | {o.unit for o in outcomes})
    for unit in units:
        mine = sorted((o for o in outcomes if o.unit == unit), key=_order)
        suite = ET.SubElement(
            root,
            "testsuite",
            {
                "name": xml_text(unit),
                "tests": str(len(mine)),
                "failures": str(sum(o.status is Status.FAIL for o in mine)),
                "errors": str(sum(o.status is Status.ERROR for o in mine)),
                "skipped": str(
                    sum(o.status in (Status.NOT_APPLICABLE, Status.NOT_ASSESSED) for o in mine)
                ),
                "time": "0",
                "timestamp": iso_utc(doc.started_at).rstrip("Z"),
                "hostname": "assay",
            },
        )
        props = ET.SubElement(suite, "properties")
        for name, value in (
            ("scan_id", doc.scan_id),
            ("state", doc.state),
            ("tool", f"{doc.tool.name} {doc.tool.version}"),
        ):
            ET.SubElement(props, "property", {"name": name, "value": xml_text(value)})
        for o in mine:
            _testcase(suite, o)
    ET.indent(root, space="  ")
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, "unicode") + "\n"


class JunitReporter(Reporter):
    format = "junit"
    extension = "junit.xml"

    def render(self, assessment: Assessment) -> str:
        return render_junit(assessment)
