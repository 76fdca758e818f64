"""Documents for the export-format, diff and plan tests, built on tests.sample_assessment.

`export_sample()` is the sample scan plus three findings the exports treat specially: an SSH
service with a CVE (OCSF Vulnerability Finding, DefectDojo vulnerability_ids), a spreadsheet of
citizens on the document store (a file location for SARIF; its evidence holds a personal value
that must appear masked only) and a banner that starts like a spreadsheet formula.

`rescan()` is the same unit a week later: some findings fixed, one new, one severity changed,
one host not reached; `older_scan()` is a scan before the sample in which a now-passing finding
had failed, so a later failure of it reads as "reopened".

Regenerate the golden files of the export formats after an intended change, then review:

    python -m tests.report_samples --write-golden
"""

from __future__ import annotations

import argparse
from datetime import UTC, datetime, timedelta

from reports.assessment import Assessment, Counts, OutcomeDoc
from scanner.model import Reference, Remediation, ServiceInfo, Severity, Status, Target, TargetKind
from tests.sample_assessment import (
    GOLDEN,
    HOST_A,
    HOST_B,
    UNIT,
    _outcome,
    _ref,
    sample_assessment,
)

PERSONAL = "079123456789"  # a citizen id number planted in a document's evidence
PERSONAL_MASKED = "07********89"
FORMULA = '=HYPERLINK("http://192.0.2.99/x","click")'
CVE = "CVE-2023-48795"
EXPORT_FORMATS = ("csv", "junit", "ocsf", "defectdojo", "sarif", "plan")
SSH = Target(
    kind=TargetKind.SERVICE,
    unit=UNIT,
    address=HOST_A,
    port=22,
    service=ServiceInfo(name="ssh", product="OpenSSH", version="9.2p1", method="probed"),
)
DOCUMENT = Target(kind=TargetKind.DOCUMENT, unit=UNIT, path="/srv/share/citizens 2026.xlsx")
SSHD = Remediation(
    text="Offer only strict-KEX-safe ciphers and MACs.",
    snippet="Ciphers aes256-gcm@openssh.com,aes128-gcm@openssh.com\n",
    snippet_lang="sshd_config",
)


def _extra() -> list[OutcomeDoc]:
    return [
        _outcome(SSH, "net.ssh.terrapin", "SSH server is not open to the Terrapin attack",
                 Status.FAIL, Severity.MEDIUM,
                 "the server offers chacha20-poly1305@openssh.com without strict KEX",
                 {"ciphers": ["chacha20-poly1305@openssh.com"], "strict_kex": False}, SSHD,
                 _ref(f"cve {CVE}", "cwe CWE-354", "bsi SYS.1.3.A16")),
        _outcome(DOCUMENT, "data.pii.exposed", "No personal data lies unprotected on the store",
                 Status.FAIL, Severity.HIGH,
                 "12 citizen id numbers in a world-readable spreadsheet",
                 {"kind": "cccd", "count": 12, "sample": PERSONAL_MASKED, "sheet": "Sheet1"},
                 Remediation(text="Move lists of citizens to a system with access control."),
                 _ref("decree-13 Art. 26", "iso27001:2022 A.5.34")),
        _outcome(SSH, "net.ssh.banner", "SSH banner does not disclose the distribution",
                 Status.FAIL, Severity.LOW, f"{FORMULA} is in the banner",
                 {"banner": f"{FORMULA}\r\n"},
                 Remediation(text="Hide the Debian banner.", snippet="DebianBanner no\n",
                             snippet_lang="sshd_config"),
                 _ref("cwe CWE-497")),
    ]  # fmt: skip


def _with(doc: Assessment, outcomes: list[OutcomeDoc], **update: object) -> Assessment:
    counts = Counts.of(o.status for o in outcomes)
    unit = doc.units[0].model_copy(
        update={"counts": counts, "pass_rate": counts.pass_rate, "coverage": counts.coverage}
    )
    return doc.model_copy(update={"outcomes": outcomes, "units": [unit], **update})


def export_sample() -> Assessment:
    doc = sample_assessment()
    return _with(doc, [*doc.outcomes, *_extra()])


def _by_check(doc: Assessment, check_id: str, target_key: str) -> OutcomeDoc:
    return next(o for o in doc.outcomes if o.check_id == check_id and o.target.key == target_key)


def rescan() -> Assessment:
    """A week later: FTP uploads and Redis fixed, telnet gone, HTTP got worse, 192.0.2.11's
    Redis port unreachable this time (error), a new finding on the SSH service."""
    doc = export_sample()
    ftp = "service:192.0.2.10:21/tcp"
    redis = "service:192.0.2.11:6379/tcp"
    http = "service:192.0.2.11:80/tcp"
    out = []
    for o in doc.outcomes:
        if o.target.key == "service:192.0.2.10:23/tcp":
            continue  # telnet removed: the service is no longer discovered
        if o.check_id == "net.ftp.anonymous_write" and o.target.key == ftp:
            o = o.model_copy(update={"status": Status.PASS, "message": "upload refused"})
        elif o.check_id == "net.redis.no_auth" and o.target.key == redis:
            o = o.model_copy(update={"status": Status.ERROR, "message": "connection refused"})
        elif o.check_id == "net.http.cleartext" and o.target.key == http:
            o = o.model_copy(update={"severity": Severity.HIGH})
        out.append(o)
    out.append(
        _outcome(SSH, "net.ssh.weak_kex", "SSH server offers no weak key exchange", Status.FAIL,
                 Severity.HIGH, "diffie-hellman-group1-sha1 is offered",
                 {"kex": ["diffie-hellman-group1-sha1"]},
                 Remediation(text="Offer modern key exchange only.",
                             snippet="KexAlgorithms curve25519-sha256\n",
                             snippet_lang="sshd_config"),
                 _ref("cwe CWE-327"))
    )  # fmt: skip
    started = doc.started_at + timedelta(days=7)
    return _with(
        doc,
        out,
        scan_id="20261209T100000Z-77aa01",
        started_at=started,
        finished_at=started + timedelta(minutes=5),
    )


def older_scan() -> Assessment:
    """Before the sample: the legacy small-services check had failed on the telnet port."""
    doc = sample_assessment()
    out = []
    for o in doc.outcomes:
        if o.check_id == "net.legacy.small_services":
            o = o.model_copy(update={"status": Status.FAIL, "message": "echo answered"})
        out.append(o)
    started = datetime(2026, 11, 25, 10, 0, tzinfo=UTC)
    return _with(doc, out, scan_id="20261125T100000Z-0be9c3", started_at=started,
                 finished_at=started + timedelta(minutes=4))  # fmt: skip


def _reopened_doc() -> Assessment:
    """After the sample: small services fail again on the telnet port (reopened)."""
    doc = sample_assessment()
    out = []
    for o in doc.outcomes:
        if o.check_id == "net.legacy.small_services":
            o = o.model_copy(update={"status": Status.FAIL, "message": "echo answered again"})
        out.append(o)
    return _with(doc, out, scan_id="20261216T100000Z-c0ffee")


def golden_files() -> dict[str, str]:
    """File name in tests/golden -> expected content, for every export format."""
    from scanner.plugins import load_registry

    reg = load_registry()
    doc = export_sample()
    out: dict[str, str] = {}
    for fmt in EXPORT_FORMATS:
        reporter = reg.reporters[fmt]
        files = getattr(reporter, "render_files", None)
        if files is not None:
            for name, text in files(doc).items():
                out[f"export-{name}"] = text
        else:
            out[f"export-{fmt}.{reporter.extension}"] = reporter.render(doc)
    return out


def diff_golden() -> dict[str, str]:
    from reports.diff import with_diff
    from reports.html_report import HtmlReporter
    from reports.markdown_report import MarkdownReporter

    doc = with_diff(rescan(), export_sample(), [older_scan()])
    return {
        "diff-rescan.md": MarkdownReporter().render(doc),
        "diff-rescan.json": doc.diff.model_dump_json(indent=2) + "\n" if doc.diff else "",
        "diff-rescan.html": HtmlReporter().render(doc),
    }


def all_golden() -> dict[str, str]:
    return golden_files() | diff_golden()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--write-golden", action="store_true", help="rewrite tests/golden/")
    args = parser.parse_args(argv)
    if not args.write_golden:
        parser.print_help()
        return 2
    for name, text in all_golden().items():
        (GOLDEN / name).write_bytes(text.encode("utf-8"))
        print(f"wrote tests/golden/{name}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())


__all__ = ["CVE", "FORMULA", "HOST_B", "PERSONAL", "Reference", "export_sample", "rescan"]


# -- a store holding three scans of one unit, for the CLI tests ----------------------------------
STORE_UNIT = "u1"
STORE_INVENTORY = "units:\n  - {id: u1, name: Unit one, hosts: [{address: 192.0.2.20}]}\n"


def stored_scans(db_url: str) -> list[str]:
    """Three finished scans of 192.0.2.20, a day apart: telnet fails in the first two and is
    gone in the third; the small-services check fails, passes, then fails again (reopened)."""
    import hashlib

    from scanner.model import Outcome, fingerprint
    from scanner.store import Store

    host = Target(kind=TargetKind.HOST, unit=STORE_UNIT, address="192.0.2.20")
    telnet = Target(
        kind=TargetKind.SERVICE,
        unit=STORE_UNIT,
        address="192.0.2.20",
        port=23,
        service=ServiceInfo(name="telnet", method="probed"),
    )
    echo = Target(
        kind=TargetKind.SERVICE,
        unit=STORE_UNIT,
        address="192.0.2.20",
        port=7,
        service=ServiceInfo(name="echo", method="probed"),
    )
    remedy = Remediation(text="Remove the telnet service.", snippet="apt-get purge telnetd\n",
                         snippet_lang="shell")  # fmt: skip
    plan = [
        {telnet: [("net.telnet.present", Status.FAIL)], echo: [("net.legacy.small_services",
                                                                Status.FAIL)]},
        {telnet: [("net.telnet.present", Status.FAIL)], echo: [("net.legacy.small_services",
                                                                Status.PASS)]},
        {echo: [("net.legacy.small_services", Status.FAIL)]},
    ]  # fmt: skip
    store = Store(db_url)
    ids = []
    start = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
    for n, targets in enumerate(plan):
        scan_id = f"2026120{n + 1}T090000Z-00000{n}"
        store.create_scan(
            scan_id,
            inventory_name="unit.yaml",
            inventory_sha256=hashlib.sha256(STORE_INVENTORY.encode()).hexdigest(),
            inventory_text=STORE_INVENTORY,
            units=[STORE_UNIT],
            options={},
            tool_version="0.1.0",
            started_at=start + timedelta(days=n),
        )
        all_targets = {host: [("net.exposed.db_admin_ports", Status.PASS)], **targets}
        for target, results in all_targets.items():
            outs = [
                Outcome(
                    scan_id=scan_id,
                    unit=STORE_UNIT,
                    check_id=check,
                    title=check.replace(".", " "),
                    status=status,
                    severity=Severity.HIGH,
                    target=target,
                    message=f"{check} {status.value} (password={SECRET_IN_STORE})",
                    evidence={"password": SECRET_IN_STORE},
                    remediation=remedy,
                    references=(Reference(scheme="cwe", id="CWE-319"),),
                    fingerprint=fingerprint(check, target.key),
                )
                for check, status in results
            ]
            store.save_target(
                scan_id, target, state="done", errors=[], target_facts={}, results=outs
            )
        store.finish_scan(scan_id, "complete")
        ids.append(scan_id)
    store.close()
    return ids


SECRET_IN_STORE = "hunter2-store-secret"
