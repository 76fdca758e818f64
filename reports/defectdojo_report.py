"""assessment.defectdojo.json: DefectDojo's "Generic Findings Import" JSON.

Only failed checks are findings. DefectDojo rejects the whole file if a finding has a key its
generic parser does not know, so every key comes from `FINDING_KEYS` (a test holds the output
to it). It deduplicates on a hash of title, CWE, line, file path and description (plus the
service), so those fields hold only what identifies the finding: no time, no counter and no
evidence, which can vary between identical scans; evidence goes to `steps_to_reproduce`.
`unique_id_from_tool` is the fingerprint (check, target, detail), so a deployment that dedupes
on it tracks a finding across scans; `service` is the unit, so the same finding in two units
stays two findings.
"""

from __future__ import annotations

import json
from typing import Any

from reports._common import masked
from reports._export import (
    compact_json,
    cves,
    cwe_numbers,
    references_text,
    scan_time,
    severity_title,
    target_name,
)
from reports.assessment import Assessment, OutcomeDoc
from reports.i18n import translate_outcome
from scanner.model import Status, TargetKind
from scanner.plugins import Reporter

TOP_KEYS = frozenset(
    {"name", "type", "version", "description", "dynamic_tool", "static_tool", "soc", "findings"}
)
# the keys DefectDojo's generic JSON parser accepts on a finding; anything else is refused
FINDING_KEYS = frozenset(
    {
        "title", "severity", "description", "date", "cwe", "cve", "vulnerability_ids",
        "cvssv3", "cvssv3_score", "cvssv4", "epss_score", "mitigation", "impact",
        "steps_to_reproduce", "severity_justification", "references", "active", "verified",
        "false_p", "out_of_scope", "risk_accepted", "is_mitigated", "mitigated", "param",
        "payload", "line", "file_path", "component_name", "component_version", "service",
        "unique_id_from_tool", "vuln_id_from_tool", "planned_remediation_date", "tags",
        "endpoints", "files", "cwes", "fix_available", "fix_version",
    }
)  # fmt: skip


def _endpoints(o: OutcomeDoc) -> list[Any]:
    t = o.target
    if t.url:
        return [t.url]
    if not t.address:
        return []
    ep: dict[str, Any] = {"host": t.address}
    if t.port:
        ep["port"] = t.port
        if t.service and t.service.name:
            ep["protocol"] = t.service.name
    return [ep]


def _description(o: OutcomeDoc) -> str:
    return "\n".join(
        (
            o.message,
            "",
            f"Check: {o.check_id}",
            f"Target: {target_name(o)}",
            f"Unit: {o.unit}",
        )
    )


def _mitigation(o: OutcomeDoc) -> str:
    r = o.remediation
    if r is None:
        return ""
    if not r.snippet:
        return r.text
    return f"{r.text}\n\n```{r.snippet_lang}\n{r.snippet.rstrip()}\n```"


def finding(doc: Assessment, o: OutcomeDoc) -> dict[str, Any]:
    f: dict[str, Any] = {
        "title": f"{o.title} ({target_name(o)})",
        "severity": severity_title(o.severity),
        "description": _description(o),
        "date": scan_time(doc).date().isoformat(),
        "active": True,
        "verified": False,
        "service": o.unit,
        "unique_id_from_tool": o.fingerprint,
        "vuln_id_from_tool": o.check_id,
        "tags": sorted({"assay", o.check_id.split(".")[0], o.target.kind.value}),
    }
    cwes = cwe_numbers(o)
    if cwes:
        f["cwe"] = cwes[0]
    ids = cves(o)
    if ids:
        f["vulnerability_ids"] = ids
    if o.remediation:
        f["mitigation"] = _mitigation(o)
    if o.references:
        f["references"] = references_text(o)
    if o.evidence:
        f["steps_to_reproduce"] = f"Evidence (masked): {compact_json(o.evidence)}"
    if o.target.kind in (TargetKind.STORE, TargetKind.DOCUMENT) and o.target.path:
        f["file_path"] = o.target.path
    if o.detail:
        f["param"] = o.detail
    endpoints = _endpoints(o)
    if endpoints:
        f["endpoints"] = endpoints
    return f


def render_defectdojo(doc: Assessment) -> dict[str, Any]:
    doc = masked(doc)
    fails = sorted(
        (translate_outcome(o) for o in doc.outcomes if o.status is Status.FAIL),
        key=lambda o: (o.unit, -o.severity.rank, o.check_id, o.target.key, o.detail),
    )
    return {
        "name": "Assay",
        "type": "Assay Scan",
        "version": doc.tool.version,
        "description": f"Assay assessment {doc.scan_id}",
        "dynamic_tool": True,
        "static_tool": False,
        "findings": [finding(doc, o) for o in fails],
    }


class DefectDojoReporter(Reporter):
    format = "defectdojo"
    extension = "defectdojo.json"

    def render(self, assessment: Assessment) -> str:
        data = render_defectdojo(assessment)
        return json.dumps(data, indent=2, ensure_ascii=False, sort_keys=False) + "\n"
