"""assessment.sarif: SARIF 2.1.0, for the findings that have a file or a URL to point at.

SARIF viewers (and GitHub code scanning, which refuses a result without a location) are built
around artifacts, so only failed checks whose target is a URL, a document or a store path, or
whose evidence names the URL they were found at, are written; network findings without such an
anchor belong in the other formats. One rule per check (title, remediation as help text, the
severity as `security-severity` so viewers rank them), one result per finding, and the finding's
stable fingerprint in `partialFingerprints`, so a viewer tracks it from scan to scan.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote

from reports._common import masked
from reports._export import location, references_text, target_name
from reports.assessment import Assessment, OutcomeDoc
from reports.i18n import translate_outcome
from scanner.model import Severity, Status
from scanner.plugins import Reporter

SARIF_VERSION = "2.1.0"
SARIF_SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"
LEVEL = {
    Severity.CRITICAL: "error",
    Severity.HIGH: "error",
    Severity.MEDIUM: "warning",
    Severity.LOW: "note",
    Severity.INFO: "note",
}
# GitHub's ranking: >= 9 critical, >= 7 high, >= 4 medium, > 0 low
SECURITY_SEVERITY = {
    Severity.CRITICAL: "9.5",
    Severity.HIGH: "8.0",
    Severity.MEDIUM: "5.5",
    Severity.LOW: "3.0",
    Severity.INFO: "0.5",
}
FINGERPRINT_KEY = "assayFingerprint/v1"


def artifact_uri(where: str) -> str:
    """A URL as is; a local path as a file: URI (percent-encoded, absolute)."""
    if "://" in where:
        return where
    path = where if where.startswith("/") else "/" + where
    return "file://" + quote(path, safe="/")


def _rule(o: OutcomeDoc) -> dict[str, Any]:
    help_text = o.remediation.text if o.remediation else o.title
    help_md = help_text
    if o.remediation and o.remediation.snippet:
        lang = o.remediation.snippet_lang
        help_md = f"{help_text}\n\n```{lang}\n{o.remediation.snippet.rstrip()}\n```"
    tags = ["security", *(f"{r.scheme}:{r.id}" for r in o.references)]
    return {
        "id": o.check_id,
        "name": o.check_id.replace(".", "_"),
        "shortDescription": {"text": o.title},
        "help": {"text": help_text, "markdown": help_md},
        "defaultConfiguration": {"level": LEVEL[o.severity]},
        "properties": {"security-severity": SECURITY_SEVERITY[o.severity], "tags": tags},
    }


def render_sarif(doc: Assessment) -> dict[str, Any]:
    doc = masked(doc)
    anchored = []
    for o in doc.outcomes:
        where = location(o) if o.status is Status.FAIL else None
        if where:
            anchored.append((translate_outcome(o), where))
    anchored.sort(key=lambda p: (p[0].check_id, p[1], p[0].target.key, p[0].detail))
    rules: dict[str, dict[str, Any]] = {}
    for o, _ in anchored:
        rules.setdefault(o.check_id, _rule(o))
    index = {cid: i for i, cid in enumerate(sorted(rules))}
    results = []
    for o, where in anchored:
        result: dict[str, Any] = {
            "ruleId": o.check_id,
            "ruleIndex": index[o.check_id],
            "level": LEVEL[o.severity],
            "message": {"text": f"{o.message} ({target_name(o)})"},
            "locations": [{"physicalLocation": {"artifactLocation": {"uri": artifact_uri(where)}}}],
            "partialFingerprints": {FINGERPRINT_KEY: o.fingerprint},
            "properties": {
                "unit": o.unit,
                "target": o.target.key,
                "severity": o.severity.value,
                "references": references_text(o),
            },
        }
        results.append(result)
    run: dict[str, Any] = {
        "tool": {
            "driver": {
                "name": "Assay",
                "version": doc.tool.version,
                "semanticVersion": doc.tool.version,
                "rules": [rules[cid] for cid in sorted(rules)],
            }
        },
        "automationDetails": {"id": f"assay/{doc.scan_id}"},
        "columnKind": "unicodeCodePoints",
        "results": results,
    }
    return {"$schema": SARIF_SCHEMA, "version": SARIF_VERSION, "runs": [run]}


class SarifReporter(Reporter):
    format = "sarif"
    extension = "sarif"

    def render(self, assessment: Assessment) -> str:
        return json.dumps(render_sarif(assessment), indent=2, ensure_ascii=False) + "\n"
