"""Who can read the store, how it is reached, and what could not be scanned."""

from __future__ import annotations

from collections.abc import Iterator

from pydantic import BaseModel, ConfigDict

from checks.dataprot.common import (
    REF_CIS_DATA,
    REF_ISO_ACCESS,
    REF_ISO_CRYPTO,
    REF_TCVN,
    REF_VN_PDP,
    store_facts,
)
from scanner.model import (
    Reference,
    Remediation,
    Result,
    Severity,
    TargetKind,
    failed,
    not_applicable,
    not_assessed,
    passed,
)
from scanner.plugins import Check, CheckMeta, FactsView, NoParams


def _sensitive(sd: object) -> bool:
    from scanner.collectors.store import StoreDocuments

    assert isinstance(sd, StoreDocuments)
    return any(d.findings for d in sd.documents)


class StoreAnonymous(Check):
    meta = CheckMeta(
        id="data.store.anonymous",
        title="The document store refuses anonymous and public access",
        target_kind=TargetKind.STORE,
        facts=("store.documents",),
        severity=Severity.HIGH,
        rationale=(
            "A store that lists or serves files without a log-in (guest SMB, open WebDAV, a "
            "public bucket) hands every document to anyone on the network, and leaves no trace "
            "of who took what."
        ),
        remediation=Remediation(
            text="Require authentication: disable guest access, remove public ACLs and policies.",
            snippet="[global]\n   map to guest = Never\n   restrict anonymous = 2\n",
            snippet_lang="smb.conf",
        ),
        references=(
            REF_ISO_ACCESS,
            Reference(scheme="cis-v8", id="3.3"),
            REF_TCVN,
            Reference(scheme="bsi", id="APP.3.3"),
        ),
        tags=("data-protection", "exposure"),
    )

    def evaluate(self, facts: FactsView, params: NoParams) -> Result:
        sd = store_facts(facts)
        e = sd.exposure
        if sd.kind == "local":
            return not_applicable("a local folder has no anonymous network access of its own")
        if e.anonymous_read or e.public_listing or e.public_acl:
            severity = Severity.CRITICAL if _sensitive(sd) else Severity.HIGH
            return failed(
                f"{sd.store_id} can be read without logging in ({e.anonymous_detail})",
                severity=severity,
                public_acl=e.public_acl,
                detail_of_test=e.anonymous_detail,
            )
        if e.anonymous_read is None and not e.public_acl:
            return not_applicable(f"anonymous access was not tested ({e.anonymous_detail})")
        return passed(f"{sd.store_id} refused anonymous access ({e.anonymous_detail})")


class StoreWorldReadable(Check):
    meta = CheckMeta(
        id="data.store.world_readable",
        title="Folders and sensitive files are not readable by every local user",
        target_kind=TargetKind.STORE,
        facts=("store.documents",),
        severity=Severity.MEDIUM,
        rationale=(
            "POSIX 'other' read permission (or, on an SMB share, read for Everyone, Guests or "
            "Authenticated Users) on a share's folders and files lets every account on the "
            "server or in the domain (and every service running as one) read the documents."
        ),
        remediation=Remediation(
            text="Remove the 'other' permissions and grant access through a group.",
            snippet="chmod -R o-rwx /srv/share && chgrp -R staff /srv/share",
            snippet_lang="shell",
        ),
        references=(REF_ISO_ACCESS, REF_CIS_DATA, Reference(scheme="cwe", id="732")),
        tags=("data-protection", "exposure"),
    )

    def evaluate(self, facts: FactsView, params: NoParams) -> Iterator[Result]:
        sd = store_facts(facts)
        e = sd.exposure
        # local folders give POSIX modes, SMB shares their access lists (Everyone, Guests,
        # Authenticated Users); WebDAV and S3 expose neither per file
        if sd.kind not in ("local", "smb") and not e.world_readable_dirs:
            yield not_applicable(f"a {sd.kind} store does not expose file permissions")
            return
        bad = False
        for doc in sd.documents:
            if doc.world_readable and doc.findings:
                bad = True
                yield failed(
                    f"{doc.path} holds sensitive content and is readable by every user "
                    f"(mode {doc.mode})",
                    detail=doc.path,
                    severity=Severity.HIGH,
                    mode=doc.mode,
                    counts=doc.counts,
                )
        if e.world_readable_dirs or e.world_writable:
            bad = True
            yield failed(
                f"{len(e.world_readable_dirs)} folder(s) readable and "
                f"{len(e.world_writable)} path(s) writable by every user",
                detail="folders",
                folders=e.world_readable_dirs[:20],
                writable=e.world_writable[:20],
            )
        if not bad:
            yield passed("no folder or sensitive file is readable by every user")


class StoreCleartext(Check):
    meta = CheckMeta(
        id="data.store.cleartext",
        title="The document store is reached over an encrypted transport",
        target_kind=TargetKind.STORE,
        facts=("store.documents",),
        severity=Severity.MEDIUM,
        rationale=(
            "WebDAV over http://, S3 over http:// and SMB without encryption send documents "
            "and passwords in the clear across the unit's network."
        ),
        remediation=Remediation(
            text="Serve the store over HTTPS (or require SMB3 encryption); close the plain port.",
            snippet="[global]\n   server smb encrypt = required\n",
            snippet_lang="smb.conf",
        ),
        references=(REF_ISO_CRYPTO, Reference(scheme="cis-v8", id="3.10"), REF_VN_PDP),
        tags=("data-protection", "exposure"),
    )

    def evaluate(self, facts: FactsView, params: NoParams) -> Result:
        sd = store_facts(facts)
        if sd.kind == "local":
            return not_applicable("a local folder has no network transport")
        if sd.exposure.cleartext:
            return failed(
                f"{sd.store_id} is reached over {sd.exposure.transport} without encryption",
                severity=Severity.HIGH if _sensitive(sd) else Severity.MEDIUM,
                transport=sd.exposure.transport,
            )
        return passed(f"{sd.store_id} is reached over {sd.exposure.transport}")


class ShareAclParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    # a share ACL open to Everyone behind restrictive file DACLs is the Windows default
    # ("Everyone: Read"); it fails at low severity unless a policy accepts it
    fail_when_files_restrict: bool = True
    fail_on_every_account: bool = False  # Authenticated Users / Domain Users read


class StoreShareAcl(Check):
    meta = CheckMeta(
        id="data.store.share_acl",
        title="The SMB share's own permissions do not let everyone read",
        target_kind=TargetKind.STORE,
        facts=("store.documents",),
        severity=Severity.HIGH,
        rationale=(
            "An SMB share has two access lists: the share's permissions and the file system's. "
            "A share that grants read to Everyone, Guests or Anonymous leaves the documents "
            "protected by the file permissions alone; where those are open too, every account "
            "(and a guest) on the network reads the share."
        ),
        remediation=Remediation(
            text=(
                "Grant the share to the groups that need it and remove Everyone, Guests and "
                "Anonymous (Windows: Share permissions; Samba: sharesec)."
            ),
            snippet=(
                "sharesec SHARE --replace='S-1-5-32-544:ALLOWED/0x0/FULL,"
                "DOMAIN\\staff:ALLOWED/0x0/CHANGE'\n"
                "# Windows: Grant-SmbShareAccess -Name SHARE -AccountName DOMAIN\\staff "
                "-AccessRight Change; Revoke-SmbShareAccess -Name SHARE -AccountName Everyone"
            ),
            snippet_lang="shell",
        ),
        references=(
            REF_ISO_ACCESS,
            REF_CIS_DATA,
            Reference(scheme="bsi", id="APP.3.3"),
            Reference(scheme="cwe", id="732"),
            REF_TCVN,
        ),
        tags=("data-protection", "exposure"),
    )
    Params = ShareAclParams

    def evaluate(self, facts: FactsView, params: ShareAclParams) -> Result:
        from scanner.stores.smb import ANYONE_LABELS, EFFECTIVE, SHARE_ACL, SHARE_ACL_UNREADABLE

        sd = store_facts(facts)
        if sd.kind != "smb":
            return not_applicable(f"a {sd.kind} store has no share permissions")
        notes = sd.exposure.notes
        effective = next((n[len(EFFECTIVE) :] for n in notes if n.startswith(EFFECTIVE)), "")
        why = next((n for n in notes if n.startswith(SHARE_ACL_UNREADABLE)), "")
        acl = next((n[len(SHARE_ACL) :] for n in notes if n.startswith(SHARE_ACL)), None)
        if acl is None:  # unreadable, or facts from a scan that did not ask
            return not_assessed(why or "the share permissions were not read", effective=effective)
        grants = [g.rsplit(":", 1)[0] for g in acl.split(",") if ":" in g]
        anyone = [g for g in grants if g in ANYONE_LABELS]
        accounts = [g for g in grants if g not in ANYONE_LABELS]
        if anyone:
            wide_open = effective.startswith("open")
            if wide_open or params.fail_when_files_restrict:
                severity = Severity.LOW
                if wide_open:
                    severity = Severity.CRITICAL if _sensitive(sd) else Severity.HIGH
                return failed(
                    f"the share permissions of {sd.store_id} grant read to "
                    f"{', '.join(anyone)}; effective access: {effective}",
                    severity=severity,
                    share_acl=acl,
                    effective=effective,
                )
        if accounts and params.fail_on_every_account:
            return failed(
                f"the share permissions of {sd.store_id} grant read to every account "
                f"({', '.join(accounts)}); effective access: {effective}",
                severity=Severity.MEDIUM,
                share_acl=acl,
                effective=effective,
            )
        return passed(
            f"the share permissions of {sd.store_id} are {acl}; effective access: {effective}",
            share_acl=acl,
            effective=effective,
        )


class NotScannedParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    listed: int = 200  # documents named one by one; the rest are counted


class StoreNotScanned(Check):
    meta = CheckMeta(
        id="data.store.not_scanned",
        title="Every document on the store could be scanned",
        target_kind=TargetKind.STORE,
        facts=("store.documents",),
        severity=Severity.LOW,
        rationale=(
            "An encrypted, image-only, corrupt, oversized or unreachable document is not known "
            "to be clean; it has to be reviewed by hand or made scannable, or the assessment "
            "of the store is incomplete."
        ),
        remediation=Remediation(
            text=(
                "Review the listed files by hand (OCR scanned images, open encrypted files with "
                "their owner), or raise the limits in the store options and scan again."
            ),
        ),
        references=(REF_ISO_ACCESS, Reference(scheme="iso27001:2022", id="A.5.9")),
        tags=("data-protection", "coverage"),
    )
    Params = NotScannedParams

    def evaluate(self, facts: FactsView, params: NotScannedParams) -> Iterator[Result]:
        sd = store_facts(facts)
        bad = False
        if sd.listing_error or not sd.complete:
            bad = True
            yield failed(
                f"the store was not covered completely: {sd.listing_error or 'time budget'}"
                + (f"; {sd.unreached_count} file(s) not reached" if sd.unreached_count else ""),
                detail="store",
                severity=Severity.MEDIUM,
                reason=sd.listing_error,
                unreached=sd.unreached[:20],
                unreached_count=sd.unreached_count,
            )
        n = 0
        for doc in sd.documents:
            if not doc.skipped:
                continue
            bad = True
            n += 1
            if n > params.listed:
                continue
            reasons = sorted({s.reason.value for s in doc.skipped})
            yield failed(
                f"{doc.path}: not (fully) scanned ({', '.join(reasons)})",
                detail=f"{doc.path} [not_scanned]",
                reasons=reasons,
                skipped=[
                    {"where": s.where, "reason": s.reason.value, "detail": s.detail}
                    for s in doc.skipped[:10]
                ],
            )
        if n > params.listed:
            yield failed(
                f"{n - params.listed} more document(s) not scanned",
                detail="more",
                count=n - params.listed,
            )
        if not bad:
            yield passed(f"all {sd.files_total} file(s) were scanned", files=sd.files_total)
