"""A realistic assessment document for report tests and golden files.

One unit, "demo", with two hosts: 192.0.2.10 (FTP and telnet) and 192.0.2.11 (Redis, HTTP and
HTTPS), plus a document store no collector covers. Its outcomes cover every status and every
severity; one telnet banner is hostile (`<script>`, a table pipe, a newline) and one piece of
evidence holds a Redis password that every format must mask. Addresses are from the
documentation range (RFC 5737): the document is built in memory and nothing is contacted.

Two variants: "nmap" (a complete scan) and "fallback" (nmap missing, so discovery used the TCP
connect scan, and the scan was interrupted before the store).

Regenerate the golden files after an intended change of the reports, then review the diff:

    python -m tests.sample_assessment --write-golden
"""

from __future__ import annotations

import argparse
import hashlib
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from reports.assessment import (
    Assessment,
    BrokenPluginDoc,
    ContactDoc,
    Counts,
    DiscoveryDoc,
    OutcomeDoc,
    TargetSummary,
    ToolInfo,
    UnitDoc,
    outcome_doc,
)
from scanner.model import (
    Outcome,
    Reference,
    Remediation,
    ServiceInfo,
    Severity,
    Status,
    Target,
    TargetKind,
    fingerprint,
)

Variant = Literal["nmap", "fallback"]
VARIANTS: tuple[Variant, ...] = ("nmap", "fallback")
SECRET = "s3cr3t"
HOSTILE = "<script>alert(1)</script>"
GOLDEN = Path(__file__).resolve().parent / "golden"
SCAN_ID = "20261202T100000Z-4f1c2a"
UNIT = "demo"
HOST_A, HOST_B = "192.0.2.10", "192.0.2.11"


def _ref(*pairs: str) -> tuple[Reference, ...]:
    return tuple(Reference(scheme=s, id=i) for s, i in (p.split(" ", 1) for p in pairs))


def _service(
    address: str, port: int, name: str, product: str, version: str, fallback: bool, tunnel: str = ""
) -> Target:
    if fallback:
        info = ServiceInfo(name=name, tunnel=tunnel, method="table", note="nmap not available")
    else:
        info = ServiceInfo(
            name=name, product=product, version=version, tunnel=tunnel, method="probed"
        )
    return Target(kind=TargetKind.SERVICE, unit=UNIT, address=address, port=port, service=info)


def _outcome(
    target: Target,
    check_id: str,
    title: str,
    status: Status,
    severity: Severity,
    message: str,
    evidence: dict[str, Any] | None = None,
    remediation: Remediation | None = None,
    references: tuple[Reference, ...] = (),
    detail: str = "",
) -> OutcomeDoc:
    return outcome_doc(
        Outcome(
            scan_id=SCAN_ID,
            unit=UNIT,
            check_id=check_id,
            title=title,
            status=status,
            severity=severity,
            target=target,
            message=message,
            evidence=evidence or {},
            remediation=remediation,
            references=references,
            detail=detail,
            fingerprint=fingerprint(check_id, target.key, detail),
        )
    )


FTP_ANON = Remediation(
    text="Turn anonymous access off, or limit it to a read-only, chrooted download area.",
    snippet="anonymous_enable=NO\n",
    snippet_lang="vsftpd.conf",
)
FTP_WRITE = Remediation(
    text="Never let anonymous users upload; if uploads are needed, require accounts.",
    snippet="anon_upload_enable=NO\nanon_mkdir_write_enable=NO\nwrite_enable=NO\n",
    snippet_lang="vsftpd.conf",
)
FTP_BANNER = Remediation(
    text="Replace the greeting with a neutral text that names neither product nor version.",
    snippet='ftpd_banner="FTP service"\n',
    snippet_lang="vsftpd.conf",
)
TELNET = Remediation(
    text="Remove the telnet service and administer the host over SSH.",
    snippet="apt-get purge inetutils-telnetd\nsystemctl disable --now inetd\n",
    snippet_lang="shell",
)
REDIS_AUTH = Remediation(
    text="Set a long random password or ACL users, and bind Redis to internal addresses only.",
    snippet="requirepass <a long random secret>\nbind 127.0.0.1 -::1\nprotected-mode yes\n",
    snippet_lang="redis.conf",
)
REDIS_CMDS = Remediation(
    text="Deny the dangerous commands to application users.",
    snippet='user app on >CHANGE-ME ~* &* +@all -@dangerous\nrename-command CONFIG ""\n',
    snippet_lang="redis.conf",
)
HTTP_TLS = Remediation(
    text="Redirect every cleartext request permanently to HTTPS.",
    snippet="server {\n    listen 80;\n    return 301 https://$host$request_uri;\n}\n",
    snippet_lang="nginx",
)


def _outcomes(fallback: bool) -> tuple[list[OutcomeDoc], dict[str, Target]]:
    host_a = Target(kind=TargetKind.HOST, unit=UNIT, address=HOST_A)
    host_b = Target(kind=TargetKind.HOST, unit=UNIT, address=HOST_B)
    ftp = _service(HOST_A, 21, "ftp", "vsftpd", "3.0.3", fallback)
    telnet = _service(HOST_A, 23, "telnet", "Linux telnetd", "", fallback)
    redis = _service(HOST_B, 6379, "redis", "Redis key-value store", "7.0.15", fallback)
    http = _service(HOST_B, 80, "http", "nginx", "1.22.1", fallback)
    https = _service(HOST_B, 443, "http", "nginx", "1.22.1", fallback, tunnel="ssl")
    store = Target(kind=TargetKind.STORE, unit=UNIT, path="/srv/share")
    targets = {t.key: t for t in (host_a, host_b, ftp, telnet, redis, http, https, store)}
    F, P, E = Status.FAIL, Status.PASS, Status.ERROR
    NA, NS = Status.NOT_APPLICABLE, Status.NOT_ASSESSED
    crit, high, med, low, info = (
        Severity.CRITICAL,
        Severity.HIGH,
        Severity.MEDIUM,
        Severity.LOW,
        Severity.INFO,
    )
    out = [
        _outcome(ftp, "net.ftp.anonymous_login", "FTP server refuses anonymous login", F, high,
                 "anonymous login was accepted (230 Login successful.)",
                 {"user": "anonymous", "reply": "230 Login successful."}, FTP_ANON,
                 _ref("cwe CWE-284", "iso27001:2022 A.8.3", "cis-v8 3.3")),
        _outcome(ftp, "net.ftp.anonymous_write", "FTP server refuses anonymous uploads", F, crit,
                 "an anonymous upload to /pub was accepted (the probe file was removed again)",
                 {"directory": "/pub", "stor_reply": "226 Transfer complete.", "cleaned_up": True},
                 FTP_WRITE, _ref("cwe CWE-732", "iso27001:2022 A.8.3", "cis-v8 3.3")),
        _outcome(ftp, "net.ftp.cleartext_auth", "FTP logins require TLS (FTPS)", E, high,
                 "check raised KeyError: 'auth_tls'\n(while reading the FEAT reply)"),
        _outcome(ftp, "net.ftp.banner_version", "FTP greeting does not disclose product or version",
                 F, low, "the greeting discloses vsFTPd, 3.0.3",
                 {"banner": "220 (vsFTPd 3.0.3)", "disclosed": ["vsFTPd", "3.0.3"]}, FTP_BANNER,
                 _ref("cwe CWE-497", "iso27001:2022 A.8.9", "bsi SYS.1.3.A14")),
        _outcome(ftp, "net.legacy.small_services", "No echo, discard, daytime, chargen or time "
                 "service is offered", P, med, "the service is not a legacy small service"),
        _outcome(telnet, "net.telnet.present", "No telnet service is offered", F, high,
                 f"the telnet port shows a plain login prompt after the banner "
                 f"\"{HOSTILE} | welcome\"",
                 {"banner": f"{HOSTILE} | welcome\r\nDebian GNU/Linux 12\r\nlogin: ",
                  "negotiation": ["IAC DO TERMINAL-TYPE", "IAC WILL ECHO"]},
                 TELNET, _ref("cwe CWE-319", "iso27001:2022 A.8.21", "cis-v8 4.8")),
        _outcome(telnet, "net.legacy.small_services", "No echo, discard, daytime, chargen or time "
                 "service is offered", P, med, "the service is not a legacy small service"),
        _outcome(host_a, "net.exposed.db_admin_ports", "No database or administration ports are "
                 "reachable", P, high, "no database or administration port answered"),
        _outcome(redis, "net.redis.no_auth", "Redis requires authentication", F, crit,
                 f"Redis at {HOST_B}:6379 accepts a well-known default password",
                 {"access": "default_password", "password": SECRET,
                  "config_get": f"requirepass {SECRET}", "reply": "+OK"},
                 REDIS_AUTH, _ref("cwe CWE-306", "cwe CWE-1393", "iso27001:2022 A.8.5")),
        _outcome(redis, "net.redis.dangerous_commands", "Redis dangerous commands are not "
                 "reachable unauthenticated", F, high,
                 f"Redis at {HOST_B}:6379 offers CONFIG, FLUSHALL with a well-known default "
                 "password",
                 {"available": ["CONFIG", "FLUSHALL"],
                  "statuses": {"CONFIG": "available", "DEBUG": "denied",
                               "FLUSHALL": "available"}},
                 REDIS_CMDS, _ref("cwe CWE-749", "iso27001:2022 A.8.9", "cis-v8 4.1")),
        _outcome(host_b, "net.exposed.db_admin_ports", "No database or administration ports are "
                 "reachable", F, high, f"Redis (6379/tcp) is reachable on {HOST_B}",
                 {"ports": [6379]},
                 Remediation(text="Reach databases through the application network only.",
                             snippet="nft add rule inet filter input tcp dport 6379 drop\n",
                             snippet_lang="shell"),
                 _ref("cwe CWE-668", "iso27001:2022 A.8.20", "cis-v8 4.4"), detail="6379"),
        _outcome(http, "net.http.cleartext", "HTTP redirects to HTTPS instead of serving "
                 "cleartext", F, med, f"http://{HOST_B}/ serves content over cleartext HTTP "
                 "(status 200) without redirecting",
                 {"url": f"http://{HOST_B}/", "status": 200, "server": "nginx/1.22.1"}, HTTP_TLS,
                 _ref("cwe CWE-319", "iso27001:2022 A.8.24", "cis-v8 3.10")),
        _outcome(http, "scan.collector", "Facts collected", E, info,
                 "service.banner: ConnectionResetError: connection reset by peer",
                 detail="service.banner"),
        _outcome(https, "net.http.cleartext", "HTTP redirects to HTTPS instead of serving "
                 "cleartext", NA, med,
                 f"http://{HOST_B}:443/: the port expects TLS (the server refused the cleartext "
                 "request)"),
    ]  # fmt: skip
    if not fallback:  # the interrupted variant stopped before the store
        out.append(
            _outcome(store, "scan.store_not_covered", "Document store assessed", NS, info,
                     "no collector for this kind of document store is installed yet")
        )  # fmt: skip
    return out, targets


def sample_assessment(variant: Variant = "nmap") -> Assessment:
    """The sample document; "fallback" is the nmap-missing, interrupted variant."""
    fallback = variant == "fallback"
    outcomes, targets = _outcomes(fallback)
    summaries = []
    for key, t in targets.items():
        mine = [o for o in outcomes if o.target.key == key]
        c = Counts.of(o.status for o in mine)
        errors = [o.message for o in mine if o.check_id == "scan.collector"]
        state: Literal["done", "error", "pending"] = (
            "pending" if not mine else ("error" if errors else "done")
        )
        summaries.append(
            TargetSummary(
                key=key,
                kind=t.kind,
                label=t.label,
                state=state,
                counts=c,
                pass_rate=c.pass_rate,
                coverage=c.coverage,
                errors=errors,
            )
        )
    if fallback:
        discovery = DiscoveryDoc(
            engine="connect",
            fallback=True,
            hosts_up=[HOST_A, HOST_B],
            services_found=5,
            warnings=["nmap not found on PATH; using the built-in TCP connect scan (no version "
                      "detection)"],
        )  # fmt: skip
    else:
        discovery = DiscoveryDoc(
            engine="nmap 7.93",
            fallback=False,
            hosts_up=[HOST_A, HOST_B],
            services_found=5,
            warnings=[f"{HOST_B}:8443/tcp answered the connect scan but not the version probe"],
            commands=[f"-n -Pn -sV --version-light -p 21,23,80,443,6379,8443 {HOST_A} {HOST_B}"],
        )
    counts = Counts.of(o.status for o in outcomes)
    unit = UnitDoc(
        id=UNIT,
        name="Demo unit",
        contact=ContactDoc(name="IT officer", email="it@demo.invalid", phone="+84 24 0000 0000"),
        discovery=discovery,
        counts=counts,
        pass_rate=counts.pass_rate,
        coverage=counts.coverage,
        targets=summaries,
    )
    started = datetime(2026, 12, 2, 10, 0, 0, tzinfo=UTC)
    return Assessment(
        scan_id=SCAN_ID,
        tool=ToolInfo(version="0.1.0"),
        started_at=started,
        finished_at=None if fallback else datetime(2026, 12, 2, 10, 4, 37, tzinfo=UTC),
        state="interrupted" if fallback else "complete",
        inventory="demo.yaml",
        inventory_sha256=hashlib.sha256(b"demo inventory").hexdigest(),
        active=True,
        units=[unit],
        outcomes=outcomes,
        broken_plugins=[
            BrokenPluginDoc(
                group="assay.checks",
                name="acme.tls.legacy",
                reason="ModuleNotFoundError: No module named 'acme_checks'",
            )
        ],
        active_probes=[
            f"{HOST_A}:21/tcp (ftp): uploaded /pub/.assay-probe-5d1c.txt as anonymous, then "
            "deleted it",
            f"{HOST_B}:6379/tcp (redis): tried 3 well-known default passwords with AUTH; one "
            "was accepted",
        ],
    )


def golden_path(variant: Variant, extension: str) -> Path:
    return GOLDEN / f"sample-{variant}.{extension}"


def render_golden() -> dict[Path, str]:
    """What the golden files must contain: the HTML and Markdown of every variant."""
    from reports.html_report import HtmlReporter
    from reports.markdown_report import MarkdownReporter

    out = {}
    for variant in VARIANTS:
        doc = sample_assessment(variant)
        for reporter in (HtmlReporter(), MarkdownReporter()):
            out[golden_path(variant, reporter.extension)] = reporter.render(doc)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--write-golden", action="store_true", help="rewrite tests/golden/")
    parser.add_argument("--json", choices=VARIANTS, help="print the sample document as JSON")
    args = parser.parse_args(argv)
    if args.write_golden:
        GOLDEN.mkdir(exist_ok=True)
        for path, text in render_golden().items():
            path.write_text(text, encoding="utf-8", newline="\n")
            print(f"wrote {path.relative_to(GOLDEN.parent.parent)}")
        return 0
    if args.json:
        from reports.json_report import JsonReporter

        print(JsonReporter().render(sample_assessment(args.json)), end="")
        return 0
    parser.print_help()
    return 2


if __name__ == "__main__":
    raise SystemExit(main())
