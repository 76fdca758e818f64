"""Shared pieces of the data-protection checks: parameters with an allow-list, and filters.

The allow-list names findings by fingerprint (never by value), with the owner who accepted
them, the reason and an expiry date. Expiry is judged against the date of the scan recorded in
the facts, so re-evaluating an old scan gives the same answer.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, datetime

from pydantic import BaseModel, ConfigDict, Field

from scanner.collectors.store import DocumentFacts, StoreDocuments
from scanner.detect.findings import Finding
from scanner.detect.rules import Category
from scanner.model import Reference
from scanner.plugins import FactsView

FACTS = "store.documents"

REF_ISO_INFO = Reference(scheme="iso27001:2022", id="A.5.12")
REF_ISO_PII = Reference(scheme="iso27001:2022", id="A.5.34")
REF_ISO_ACCESS = Reference(scheme="iso27001:2022", id="A.5.15")
REF_ISO_CRYPTO = Reference(scheme="iso27001:2022", id="A.8.24")
REF_VN_SECRETS = Reference(scheme="vn-law", id="117/2025/QH15 (State Secrets Protection)")
REF_VN_PDP = Reference(scheme="vn-law", id="91/2025/QH15 (Personal Data Protection)")
REF_DECREE_356 = Reference(scheme="vn-decree", id="356/2025/ND-CP")
REF_DECREE_13 = Reference(scheme="decree-13", id="2023/ND-CP")
REF_GDPR_32 = Reference(scheme="gdpr", id="Art. 32")
REF_CIS_DATA = Reference(scheme="cis-v8", id="3.3")
REF_TCVN = Reference(scheme="tcvn-11930", id="2017")
REF_CWE_798 = Reference(scheme="cwe", id="798")


class AllowEntry(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    fingerprint: str = Field(min_length=8)
    owner: str = Field(min_length=1)
    reason: str = Field(min_length=3)
    expires: date


class ContentParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    min_confidence: float = Field(default=0.5, ge=0, le=1)
    allow: list[AllowEntry] = Field(default_factory=list)


def store_facts(facts: FactsView) -> StoreDocuments:
    return facts.get(FACTS, StoreDocuments)


def scan_date(sd: StoreDocuments) -> date:
    try:
        return datetime.fromisoformat(sd.scanned_at).date()
    except ValueError:
        return date.today()


def allow_split(sd: StoreDocuments, params: ContentParams) -> tuple[set[str], list[str]]:
    """(fingerprints still allowed, descriptions of expired entries)."""
    today = scan_date(sd)
    active = {a.fingerprint for a in params.allow if a.expires >= today}
    expired = [
        f"{a.fingerprint} (owner {a.owner}, expired {a.expires})"
        for a in params.allow
        if a.expires < today
    ]
    return active, expired


def doc_findings(
    sd: StoreDocuments,
    params: ContentParams,
    categories: tuple[Category, ...],
) -> Iterator[tuple[DocumentFacts, list[Finding], int]]:
    """Documents with findings of these categories: (document, findings, allowed count)."""
    active, _ = allow_split(sd, params)
    for doc in sd.documents:
        mine = [
            f
            for f in doc.findings
            if f.category in categories and f.confidence >= params.min_confidence
        ]
        kept = [f for f in mine if f.fingerprint not in active]
        if kept or mine:
            yield doc, kept, len(mine) - len(kept)


def exposed(sd: StoreDocuments, doc: DocumentFacts) -> bool:
    e = sd.exposure
    return bool(e.anonymous_read or e.public_listing or e.public_acl or doc.world_readable)


def samples(findings: list[Finding], limit: int = 5) -> list[dict[str, object]]:
    return [
        {
            "rule": f.rule,
            "masked": f.masked,
            "where": f.where,
            "confidence": f.confidence,
            "legal": list(f.legal),
            "fingerprint": f.fingerprint,
        }
        for f in findings[:limit]
    ]


def counts_of(findings: list[Finding]) -> dict[str, int]:
    out: dict[str, int] = {}
    for f in findings:
        out[f.rule] = out.get(f.rule, 0) + 1
    return out
