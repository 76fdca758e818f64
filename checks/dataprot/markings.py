"""Classification markings: Vietnamese state-secret levels, German and English markings."""

from __future__ import annotations

from collections.abc import Iterator

from checks.dataprot.common import (
    REF_ISO_INFO,
    REF_TCVN,
    REF_VN_SECRETS,
    ContentParams,
    allow_split,
    counts_of,
    doc_findings,
    samples,
    store_facts,
)
from scanner.detect.rules import Category, Sensitivity
from scanner.model import Reference, Remediation, Result, Severity, TargetKind, failed, passed
from scanner.plugins import Check, CheckMeta, FactsView

_LEVEL_RANK = {Sensitivity.MAT: 1, Sensitivity.TOI_MAT: 2, Sensitivity.TUYET_MAT: 3}
_LEVEL_NAME = {
    Sensitivity.MAT: "MẬT",
    Sensitivity.TOI_MAT: "TỐI MẬT",
    Sensitivity.TUYET_MAT: "TUYỆT MẬT",
}


class StateSecretMarking(Check):
    meta = CheckMeta(
        id="data.marking.state_secret",
        title="No document marked as a state secret on the store",
        target_kind=TargetKind.STORE,
        facts=("store.documents",),
        severity=Severity.CRITICAL,
        rationale=(
            "Documents marked MẬT, TỐI MẬT or TUYỆT MẬT are state secrets. The State Secrets "
            "Protection Law allows them only on systems approved for them (an isolated LAN or "
            "cipher-grade encryption); a copy on a networked document store is a breach in "
            "itself, whoever has read it so far."
        ),
        remediation=Remediation(
            text=(
                "Remove the document from the store at once, keep it only on the approved "
                "isolated system, report the incident to the unit's secrecy officer and find "
                "out who has read or copied it. Check backups and sync clients too."
            ),
            snippet="shred -u 'PATH'   # after the secrecy officer has secured the original",
            snippet_lang="shell",
        ),
        references=(
            REF_VN_SECRETS,
            Reference(scheme="vn-law", id="29/2018/QH14"),
            Reference(scheme="vn-circular", id="24/2020/TT-BCA"),
            REF_ISO_INFO,
            REF_TCVN,
        ),
        tags=("data-protection", "state-secret"),
    )
    Params = ContentParams

    def evaluate(self, facts: FactsView, params: ContentParams) -> Iterator[Result]:
        sd = store_facts(facts)
        _, expired = allow_split(sd, params)
        any_failed = False
        for doc, kept, allowed in doc_findings(sd, params, (Category.MARKING_VN,)):
            levels = [f.sensitivity for f in kept if f.sensitivity in _LEVEL_RANK]
            if not levels:
                continue
            top = max(levels, key=lambda s: _LEVEL_RANK[s])
            declassified = any(f.sensitivity is Sensitivity.DECLASSIFIED for f in kept)
            severity = Severity.CRITICAL if sd.networked else Severity.HIGH
            if declassified:
                severity = Severity.MEDIUM
            any_failed = True
            where = sorted({f.where for f in kept})[:5]
            yield failed(
                f"{doc.path} is marked {_LEVEL_NAME[top]}"
                + (" (also stamped GIẢI MẬT: verify the declassification)" if declassified else "")
                + (" on a networked store" if sd.networked else ""),
                detail=doc.path,
                severity=severity,
                level=top.value,
                where=where,
                markings=samples(kept),
                allowed=allowed,
                expired_allow=expired,
            )
        if not any_failed:
            yield passed(
                f"no state-secret marking in {sd.files_total} file(s)",
                files=sd.files_total,
                expired_allow=expired,
            )


class ForeignMarking(Check):
    meta = CheckMeta(
        id="data.marking.foreign",
        title="No document with a German or English classification marking on the store",
        target_kind=TargetKind.STORE,
        facts=("store.documents",),
        severity=Severity.HIGH,
        rationale=(
            "Documents from partners marked VS-NUR FÜR DEN DIENSTGEBRAUCH, VERTRAULICH, GEHEIM, "
            "CONFIDENTIAL or SECRET come with handling rules agreed with the originator; an "
            "open document store rarely meets them."
        ),
        remediation=Remediation(
            text=(
                "Move the document to a store whose access is limited to the people the "
                "originator's handling rules allow, or delete the copy."
            ),
            snippet="chmod o-rwx 'PATH' && chgrp restricted-group 'PATH'",
            snippet_lang="shell",
        ),
        references=(
            Reference(scheme="bsi", id="CON.9"),
            REF_ISO_INFO,
            Reference(scheme="iso27001:2022", id="A.5.13"),
        ),
        tags=("data-protection",),
    )
    Params = ContentParams

    def evaluate(self, facts: FactsView, params: ContentParams) -> Iterator[Result]:
        sd = store_facts(facts)
        _, expired = allow_split(sd, params)
        found = False
        for doc, kept, allowed in doc_findings(sd, params, (Category.MARKING_FOREIGN,)):
            if not kept:
                continue
            found = True
            yield failed(
                f"{doc.path} carries the marking {kept[0].masked}",
                detail=doc.path,
                markings=samples(kept),
                counts=counts_of(kept),
                allowed=allowed,
                expired_allow=expired,
            )
        if not found:
            yield passed(
                f"no classification marking in {sd.files_total} file(s)", expired_allow=expired
            )
