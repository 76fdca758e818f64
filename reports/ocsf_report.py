"""assessment.ocsf.jsonl: OCSF 1.3 findings, one JSON object per line, for SIEMs and data lakes.

- A check that could be evaluated becomes a Compliance Finding (class 2003): its `compliance`
  object names the standards and requirements from the check's references and carries the
  result (`status_id` 1 pass, 3 fail, 2 warning = "no result for lack of information", which is
  what `error` and `not_assessed` mean). `not_applicable` outcomes are left out.
- A failed check whose references name a CVE becomes a Vulnerability Finding (class 2002) with
  one `vulnerabilities` entry per CVE, each carrying exactly that one CVE.

Every line has the fields OCSF requires of its class: `activity_id`, `category_uid`,
`class_uid`, `type_uid` (= class_uid * 100 + activity_id), `severity_id`, `time`,
`metadata` (`version`, `product` with `vendor_name`), `finding_info.uid` (the finding's stable
fingerprint), and `compliance.standards` or `vulnerabilities`. `time` is the scan's end, not
the clock, so a document always renders to the same lines.
"""

from __future__ import annotations

import json
from typing import Any

from reports._common import masked
from reports._export import STANDARDS, cves, epoch_ms, scan_time
from reports.assessment import Assessment, OutcomeDoc
from reports.i18n import translate_outcome
from scanner.model import Severity, Status
from scanner.plugins import Reporter

OCSF_VERSION = "1.3.0"
CATEGORY_FINDINGS = 2
COMPLIANCE_FINDING = 2003
VULNERABILITY_FINDING = 2002
ACTIVITY_CREATE = 1
SEVERITY_ID = {
    Severity.INFO: 1,
    Severity.LOW: 2,
    Severity.MEDIUM: 3,
    Severity.HIGH: 4,
    Severity.CRITICAL: 5,
}
COMPLIANCE_STATUS = {
    Status.PASS: (1, "Pass"),
    Status.FAIL: (3, "Fail"),
    Status.ERROR: (2, "Warning"),
    Status.NOT_ASSESSED: (2, "Warning"),
}
_CLASS_NAME = {
    COMPLIANCE_FINDING: "Compliance Finding",
    VULNERABILITY_FINDING: "Vulnerability Finding",
}


def _resource(o: OutcomeDoc) -> dict[str, Any]:
    t = o.target
    res: dict[str, Any] = {"uid": t.key, "name": t.label, "type": t.kind.value}
    data = {
        k: v
        for k, v in (("address", t.address), ("port", t.port), ("url", t.url), ("path", t.path))
        if v
    }
    if t.service and t.service.name:
        data["service"] = t.service.name
    if data:
        res["data"] = data
    res["labels"] = [f"unit:{o.unit}", *t.tags]
    return res


def _base(doc: Assessment, o: OutcomeDoc, class_uid: int) -> dict[str, Any]:
    name = _CLASS_NAME[class_uid]
    time = epoch_ms(scan_time(doc))
    event: dict[str, Any] = {
        "activity_id": ACTIVITY_CREATE,
        "activity_name": "Create",
        "category_uid": CATEGORY_FINDINGS,
        "category_name": "Findings",
        "class_uid": class_uid,
        "class_name": name,
        "type_uid": class_uid * 100 + ACTIVITY_CREATE,
        "type_name": f"{name}: Create",
        "severity_id": SEVERITY_ID[o.severity],
        "severity": "Informational" if o.severity is Severity.INFO else o.severity.value.title(),
        "time": time,
        "message": o.message,
        "metadata": {
            "version": OCSF_VERSION,
            "product": {
                "name": "Assay",
                "vendor_name": "Assay",
                "version": doc.tool.version,
            },
            "event_code": o.check_id,
            "correlation_uid": doc.scan_id,
        },
        "finding_info": {
            "uid": o.fingerprint,
            "title": o.title,
            "desc": o.message,
            "types": [o.check_id.split(".")[0]],
            "created_time": time,
            "analytic": {"uid": o.check_id, "name": o.title, "type_id": 1, "type": "Rule"},
        },
        "resources": [_resource(o)],
    }
    if o.remediation:
        event["remediation"] = {"desc": o.remediation.text}
    if o.evidence:
        event["unmapped"] = {"evidence": o.evidence}
    return event


def compliance_finding(doc: Assessment, o: OutcomeDoc) -> dict[str, Any]:
    event = _base(doc, o, COMPLIANCE_FINDING)
    status_id, status = COMPLIANCE_STATUS[o.status]
    standards = sorted({STANDARDS.get(r.scheme, r.scheme) for r in o.references}) or ["Assay"]
    event["compliance"] = {
        "standards": standards,
        "control": o.check_id,
        "requirements": [f"{r.scheme} {r.id}" for r in o.references],
        "status_id": status_id,
        "status": status,
        "status_detail": o.message,
    }
    if o.status is Status.FAIL:  # a finding to triage; a pass or a warning is not one
        event["status_id"], event["status"] = 1, "New"
    return event


def vulnerability_finding(doc: Assessment, o: OutcomeDoc, ids: list[str]) -> dict[str, Any]:
    event = _base(doc, o, VULNERABILITY_FINDING)
    vulns = []
    for cve in ids:
        v: dict[str, Any] = {
            "cve": {"uid": cve},
            "title": o.title,
            "desc": o.message,
            "severity": event["severity"],
        }
        if o.remediation:
            v["remediation"] = {"desc": o.remediation.text}
        vulns.append(v)
    event["vulnerabilities"] = vulns
    event["status_id"], event["status"] = 1, "New"
    return event


def events(doc: Assessment) -> list[dict[str, Any]]:
    doc = masked(doc)
    out = []
    for o in sorted(doc.outcomes, key=lambda o: (o.unit, o.check_id, o.target.key, o.detail)):
        o = translate_outcome(o)
        ids = cves(o)
        if o.status is Status.FAIL and ids:
            out.append(vulnerability_finding(doc, o, ids))
        elif o.status in COMPLIANCE_STATUS:
            out.append(compliance_finding(doc, o))
    return out


class OcsfReporter(Reporter):
    format = "ocsf"
    extension = "ocsf.jsonl"

    def render(self, assessment: Assessment) -> str:
        return "".join(
            json.dumps(e, ensure_ascii=False, separators=(",", ":"), default=str) + "\n"
            for e in events(assessment)
        )
