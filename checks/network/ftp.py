"""FTP checks: anonymous access, anonymous writes, cleartext logins, version disclosure.

All four read the facts of `service.ftp`. When that collector could not talk FTP at all, the
runner reports these checks as `error`; when a later step broke, the facts say so and the
check concerned returns `error` itself. None of them passes on missing evidence.
"""

from __future__ import annotations

import re
from typing import Any

from pydantic import BaseModel, ConfigDict

from scanner.collectors.ftp import PROBE_USER, FtpFacts
from scanner.model import (
    Reference,
    Remediation,
    Result,
    Severity,
    TargetKind,
    error,
    failed,
    not_assessed,
    passed,
)
from scanner.plugins import Check, CheckMeta, FactsView

FACTS = "service.ftp"


def _ftp(facts: FactsView) -> FtpFacts:
    return facts.get(FACTS, FtpFacts)


def _listing_evidence(f: FtpFacts) -> dict[str, Any]:
    a = f.anonymous
    return {
        "pwd": a.pwd,
        "entries": len(a.listing),
        "sample": [e.name for e in a.listing[:10]],
        "listing_truncated": a.listing_truncated,
    }


class AnonymousLogin(Check):
    meta = CheckMeta(
        id="net.ftp.anonymous_login",
        title="FTP server refuses anonymous login",
        target_kind=TargetKind.SERVICE,
        facts=(FACTS,),
        severity=Severity.HIGH,
        rationale=(
            "Anonymous FTP lets anyone who reaches the port read whatever the server exposes, "
            "without any trace of who it was; files placed there 'temporarily' are routinely "
            "found by others."
        ),
        remediation=Remediation(
            text=(
                "Disable anonymous access (vsftpd: anonymous_enable=NO; ProFTPD: remove the "
                "<Anonymous> section). Publish public files over HTTPS instead."
            ),
            snippet="anonymous_enable=NO",
            snippet_lang="vsftpd.conf",
        ),
        references=(
            Reference(scheme="cwe", id="CWE-284"),
            Reference(scheme="iso27001:2022", id="A.8.3"),
            Reference(scheme="cis-v8", id="3.3"),
        ),
        tags=("ftp", "access-control"),
    )

    def evaluate(self, facts: FactsView, params: Any) -> Result:
        f = _ftp(facts)
        a = f.anonymous
        if a.allowed is None:
            return error(f"anonymous login could not be tried: {a.error}")
        reply = a.pass_reply or a.user_reply
        if a.allowed:
            return failed(
                f"anonymous login is accepted ({reply})",
                reply=str(reply),
                **_listing_evidence(f),
            )
        return passed(f"anonymous login is refused ({reply})", reply=str(reply))


class AnonymousWrite(Check):
    meta = CheckMeta(
        id="net.ftp.anonymous_write",
        title="FTP server refuses anonymous uploads",
        target_kind=TargetKind.SERVICE,
        facts=(FACTS,),
        severity=Severity.CRITICAL,
        rationale=(
            "A server that lets anonymous users store files becomes a drop box for malware and "
            "illegal content and can be filled until its disk is full; where the directory is "
            "also served elsewhere (web, shares) it is a path to code execution."
        ),
        remediation=Remediation(
            text=(
                "Turn off anonymous uploads and remove world-write permission from the "
                "directories anonymous users can reach; check them for content left by others."
            ),
            snippet=(
                "anon_upload_enable=NO\n"
                "anon_mkdir_write_enable=NO\n"
                "anon_other_write_enable=NO\n"
                "# and: chmod o-w /srv/ftp/upload"
            ),
            snippet_lang="vsftpd.conf",
        ),
        references=(
            Reference(scheme="cwe", id="CWE-732"),
            Reference(scheme="iso27001:2022", id="A.8.3"),
            Reference(scheme="cis-v8", id="3.3"),
        ),
        tags=("ftp", "access-control", "active-probe"),
        active=False,  # the check only reads facts; the collector's probe needs --active
    )

    def evaluate(self, facts: FactsView, params: Any) -> Result:
        a = _ftp(facts).anonymous
        if a.allowed is None:
            return error(f"anonymous login could not be tried: {a.error}")
        if not a.allowed:
            return passed("anonymous login is refused, so anonymous users cannot write")
        w = a.write
        tried = [
            {"path": t.path, "reply": str(t.stor_reply) if t.stor_reply else t.error}
            for t in w.attempts
        ]
        if w.status == "stored":
            done = next(t for t in w.attempts if t.stored)
            left = "" if done.deleted else "; the test file could NOT be deleted, remove it"
            return failed(
                f"an anonymous user stored {done.path}{left}",
                path=done.path,
                deleted=done.deleted,
                attempts=tried,
            )
        if w.status == "not_tested":
            return not_assessed(
                "anonymous login is allowed; run with --active to test whether it can write",
                hints=w.hints,
            )
        if w.status == "error":
            return error(f"the write test did not complete: {w.reason}", attempts=tried)
        return passed(f"every anonymous upload was refused ({len(tried)} tried)", attempts=tried)


class CleartextParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    # how servers say "use TLS first" when refusing USER on the cleartext channel
    tls_required_patterns: list[str] = [r"encrypt", r"\bTLS\b", r"\bSSL\b"]


class CleartextAuth(Check):
    meta = CheckMeta(
        id="net.ftp.cleartext_auth",
        title="FTP logins require TLS (FTPS)",
        target_kind=TargetKind.SERVICE,
        facts=(FACTS,),
        severity=Severity.HIGH,
        rationale=(
            "Plain FTP sends user names and passwords in cleartext; anyone on the path can "
            "capture them. Offering AUTH TLS is not enough while the server still accepts a "
            "login without it."
        ),
        remediation=Remediation(
            text=("Require TLS for logins and data (FTPS), or replace FTP with SFTP. For vsftpd:"),
            snippet=(
                "ssl_enable=YES\n"
                "rsa_cert_file=/etc/ssl/certs/ftp.pem\n"
                "rsa_private_key_file=/etc/ssl/private/ftp.key\n"
                "force_local_logins_ssl=YES\n"
                "force_local_data_ssl=YES"
            ),
            snippet_lang="vsftpd.conf",
        ),
        references=(
            Reference(scheme="cwe", id="CWE-319"),
            Reference(scheme="cwe", id="CWE-523"),
            Reference(scheme="iso27001:2022", id="A.8.24"),
            Reference(scheme="cis-v8", id="3.10"),
            Reference(scheme="bsi", id="NET.1.1.A7"),
        ),
        tags=("ftp", "cleartext"),
    )
    Params = CleartextParams

    def evaluate(self, facts: FactsView, params: CleartextParams) -> Result:
        f = _ftp(facts)
        reply = f.user_probe_reply
        evidence: dict[str, Any] = {
            "auth_tls_offered": f.auth_tls_offered,
            "user_reply": str(reply),
        }
        if f.cleartext_user_accepted:
            offered = "AUTH TLS is offered but not required"
            why = offered if f.auth_tls_offered else "the server offers no AUTH TLS"
            return failed(
                f"logins proceed without TLS ({why}): USER {PROBE_USER} -> {reply}",
                **evidence,
            )
        patterns = params.tls_required_patterns
        tls_text = any(re.search(p, reply.text, re.IGNORECASE) for p in patterns)
        if reply.code >= 400 and tls_text:
            return passed(f"logins must use TLS: USER before AUTH TLS -> {reply}", **evidence)
        return not_assessed(
            f"USER {PROBE_USER} was refused ({reply}) without saying TLS is required; whether "
            "real accounts can log in without TLS cannot be told from outside",
            **evidence,
        )


class BannerParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    patterns: list[str] = [
        r"\bvsftpd\b",
        r"\bProFTPD\b",
        r"\bPure-FTPd\b",
        r"\bMicrosoft FTP Service\b",
        r"\bFileZilla Server\b",
        r"\bpyftpdlib\b",
        r"\bwu-ftpd\b|\bwu-\d",
        r"\bServ-U\b",
        r"\b(glftpd|bftpd|WarFTPd|CrushFTP|WS_FTP|Titan FTP|Cerberus)\b",
        r"\b(Debian|Ubuntu|CentOS|Red Hat|FreeBSD|Windows)\b",
        r"\b[A-Za-z][A-Za-z0-9_-]*[ /_-]v?\d+\.\d+(\.\d+)*[A-Za-z]*\b",  # "Name 1.2.3"
    ]


class BannerVersion(Check):
    meta = CheckMeta(
        id="net.ftp.banner_version",
        title="FTP greeting does not disclose product or version",
        target_kind=TargetKind.SERVICE,
        facts=(FACTS,),
        severity=Severity.LOW,
        rationale=(
            "A greeting that names the FTP product and version lets anyone match the server "
            "against known vulnerabilities without further probing."
        ),
        remediation=Remediation(
            text=(
                "Replace the greeting with a neutral text (vsftpd: ftpd_banner; ProFTPD: "
                'ServerIdent on "FTP server ready"; IIS: suppress the default banner).'
            ),
            snippet="ftpd_banner=Welcome",
            snippet_lang="vsftpd.conf",
        ),
        references=(
            Reference(scheme="cwe", id="CWE-497"),
            Reference(scheme="iso27001:2022", id="A.8.9"),
            Reference(scheme="bsi", id="SYS.1.3.A14"),
        ),
        tags=("ftp", "information-disclosure"),
    )
    Params = BannerParams

    def evaluate(self, facts: FactsView, params: BannerParams) -> Result:
        greeting = _ftp(facts).greeting
        found: list[str] = []
        for pattern in params.patterns:
            m = re.search(pattern, greeting.text, re.IGNORECASE)
            if m and m.group(0) not in found:
                found.append(m.group(0))
        found = [m for m in found if not any(m != o and m.lower() in o.lower() for o in found)]
        evidence: dict[str, Any] = {"greeting": f"{greeting.code} {greeting.text}"[:200]}
        if found:
            return failed(f"the greeting discloses {', '.join(found)}", disclosed=found, **evidence)
        return passed("the greeting names no product or version", **evidence)
