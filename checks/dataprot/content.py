"""Personal data and secrets found in documents: one result per document and kind of data."""

from __future__ import annotations

from collections.abc import Iterator

from checks.dataprot.common import (
    REF_CIS_DATA,
    REF_CWE_798,
    REF_DECREE_13,
    REF_DECREE_356,
    REF_GDPR_32,
    REF_ISO_PII,
    REF_VN_PDP,
    ContentParams,
    allow_split,
    doc_findings,
    exposed,
    samples,
    store_facts,
)
from scanner.detect.findings import Finding
from scanner.detect.rules import Category, Sensitivity
from scanner.model import Reference, Remediation, Result, Severity, TargetKind, failed, passed
from scanner.plugins import Check, CheckMeta, FactsView


def _per_kind(
    facts: FactsView,
    params: ContentParams,
    category: Category,
    want: tuple[Sensitivity, ...],
    what: str,
    base: Severity,
    raised: Severity,
) -> Iterator[Result]:
    sd = store_facts(facts)
    _, expired = allow_split(sd, params)
    total = 0
    for doc, kept, allowed in doc_findings(sd, params, (category,)):
        by_rule: dict[str, list[Finding]] = {}
        for f in kept:
            if f.sensitivity in want:
                by_rule.setdefault(f.rule, []).append(f)
        for rule, items in sorted(by_rule.items()):
            total += 1
            count = doc.counts.get(rule, len(items))
            open_to_all = exposed(sd, doc)
            yield failed(
                f"{doc.path}: {count} {items[0].label}"
                + (" readable by anyone" if open_to_all else ""),
                detail=f"{doc.path} [{rule}]",
                severity=raised if open_to_all else base,
                rule=rule,
                count=count,
                legal=list(items[0].legal),
                samples=samples(items),
                allowed=allowed,
                expired_allow=expired,
            )
    if not total:
        yield passed(f"no {what} in {sd.files_total} file(s)", expired_allow=expired)


_PDP_REFS = (REF_VN_PDP, REF_DECREE_356, REF_DECREE_13, REF_GDPR_32, REF_ISO_PII, REF_CIS_DATA)


class PiiExposed(Check):
    meta = CheckMeta(
        id="data.pii.exposed",
        title="No personal data lies unprotected on the store",
        target_kind=TargetKind.STORE,
        facts=("store.documents",),
        severity=Severity.MEDIUM,
        rationale=(
            "Citizen ID numbers, tax codes, phone numbers, e-mail addresses and dates of birth "
            "are personal data: the unit must limit who can read them, keep them only as long "
            "as needed and be able to say where they are."
        ),
        remediation=Remediation(
            text=(
                "Move lists of citizens to a system with access control, delete copies that are "
                "no longer needed, or pseudonymise the identifiers in working files."
            ),
        ),
        references=_PDP_REFS,
        tags=("data-protection", "pii"),
    )
    Params = ContentParams

    def evaluate(self, facts: FactsView, params: ContentParams) -> Iterator[Result]:
        return _per_kind(
            facts,
            params,
            Category.PII,
            (Sensitivity.BASIC,),
            "personal data",
            Severity.MEDIUM,
            Severity.HIGH,
        )


class PiiSensitive(Check):
    meta = CheckMeta(
        id="data.pii.sensitive",
        title="No sensitive personal data (financial accounts, cards) lies on the store",
        target_kind=TargetKind.STORE,
        facts=("store.documents",),
        severity=Severity.HIGH,
        rationale=(
            "Bank accounts, IBANs and payment card numbers are sensitive personal data under "
            "the Personal Data Protection Law 91/2025 and Decree 356/2025 (and cardholder data "
            "under PCI DSS); their exposure enables fraud, and processing them needs stronger "
            "safeguards and an impact assessment."
        ),
        remediation=Remediation(
            text=(
                "Delete card numbers (they must never be stored in documents), move account "
                "lists to the finance system, and encrypt what has to stay."
            ),
        ),
        references=(*_PDP_REFS, Reference(scheme="pci-dss", id="4.0 3.4")),
        tags=("data-protection", "pii"),
    )
    Params = ContentParams

    def evaluate(self, facts: FactsView, params: ContentParams) -> Iterator[Result]:
        return _per_kind(
            facts,
            params,
            Category.PII,
            (Sensitivity.SENSITIVE,),
            "sensitive personal data",
            Severity.HIGH,
            Severity.CRITICAL,
        )


class SecretsExposed(Check):
    meta = CheckMeta(
        id="data.secrets.exposed",
        title="No passwords, keys or tokens lie in documents on the store",
        target_kind=TargetKind.STORE,
        facts=("store.documents",),
        severity=Severity.HIGH,
        rationale=(
            "A password, private key or access token in a shared document is a key left in "
            "the door: whoever reads the store can log in as its owner. Log-in credentials are "
            "also sensitive personal data under Decree 356/2025."
        ),
        remediation=Remediation(
            text=(
                "Rotate the credential first (assume it is known), then remove it from the "
                "document and keep secrets in a password manager or secret store."
            ),
            snippet="ssh-keygen -t ed25519 -f ~/.ssh/id_new   # replace the exposed key",
            snippet_lang="shell",
        ),
        references=(
            REF_CWE_798,
            Reference(scheme="cwe", id="256"),
            Reference(scheme="iso27001:2022", id="A.5.17"),
            REF_DECREE_356,
            Reference(scheme="cis-v8", id="3.11"),
        ),
        tags=("data-protection", "secrets"),
    )
    Params = ContentParams

    def evaluate(self, facts: FactsView, params: ContentParams) -> Iterator[Result]:
        return _per_kind(
            facts,
            params,
            Category.SECRET,
            (Sensitivity.SECRET,),
            "secrets",
            Severity.HIGH,
            Severity.CRITICAL,
        )
