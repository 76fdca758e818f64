"""Helpers of the machine-readable exports (CSV, JUnit, OCSF, DefectDojo, SARIF).

Every export starts from the masked document (`reports._common.masked`), so no format can print
a value the canonical document masks. Everything here is a pure function of the document: no
clock, so two renderings of one document are byte-identical (the golden files rely on it).
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from typing import Any

from reports.assessment import Assessment, OutcomeDoc
from scanner.model import Severity, TargetKind

# characters XML 1.0 cannot carry at all (a hostile banner may hold any byte)
_XML_ILLEGAL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")
_CVE = re.compile(r"^CVE-\d{4}-\d{4,}$")
_CWE = re.compile(r"^CWE-(\d+)$", re.IGNORECASE)

# scheme of a Reference -> the standard's name as GRC tools spell it
STANDARDS = {
    "iso27001:2022": "ISO/IEC 27001:2022",
    "cis-v8": "CIS Controls v8",
    "bsi": "BSI IT-Grundschutz",
    "tcvn-11930": "TCVN 11930:2017",
    "decree-13": "Decree 13/2023/ND-CP",
    "cwe": "CWE",
}


def xml_text(value: str) -> str:
    """Text XML can hold: illegal control characters become visible `\\xNN` escapes."""
    return _XML_ILLEGAL.sub(lambda m: f"\\x{ord(m.group(0)):02x}", value)


def epoch_ms(value: datetime | None) -> int:
    if value is None:
        return 0
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return int(value.timestamp() * 1000)


def scan_time(doc: Assessment) -> datetime:
    """The time a finding is reported at: the end of the scan, or its start if unfinished."""
    return doc.finished_at or doc.started_at


def cves(o: OutcomeDoc) -> list[str]:
    """CVE ids among the references, in order, without duplicates."""
    seen: list[str] = []
    for r in o.references:
        ident = r.id.strip().upper()
        if r.scheme.lower() == "cve" and _CVE.match(ident) and ident not in seen:
            seen.append(ident)
    return seen


def cwe_numbers(o: OutcomeDoc) -> list[int]:
    out: list[int] = []
    for r in o.references:
        m = _CWE.match(r.id.strip())
        if r.scheme.lower() == "cwe" and m and int(m.group(1)) not in out:
            out.append(int(m.group(1)))
    return out


def location(o: OutcomeDoc) -> str | None:
    """A file or URL the finding is about, when it has one (SARIF needs one)."""
    t = o.target
    if t.url:
        return t.url
    if t.kind in (TargetKind.STORE, TargetKind.DOCUMENT) and t.path:
        return t.path
    url = o.evidence.get("url")
    if isinstance(url, str) and re.match(r"^https?://", url):
        return url
    return None


def compact_json(value: Any) -> str:
    if not value:
        return ""
    return json.dumps(value, sort_keys=True, ensure_ascii=False, separators=(",", ":"), default=str)


def references_text(o: OutcomeDoc) -> str:
    return "; ".join(f"{r.scheme} {r.id}" for r in o.references)


def severity_title(s: Severity) -> str:
    return "Info" if s is Severity.INFO else s.value.capitalize()


def target_name(o: OutcomeDoc) -> str:
    return o.target.label + (f" [{o.detail}]" if o.detail else "")
