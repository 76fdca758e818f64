"""Checks on what the active probes found: anonymous uploads and default credentials.

The probes only run with --active; without it these checks say `not_assessed` where there is
something to test (a login surface, a site), so a report never implies a test that did not
happen.
"""

from __future__ import annotations

from typing import Any

from checks.web.common import (
    ACTIVE,
    BSI_AUTH,
    BSI_WEBAPP,
    CIS_CONFIG,
    CIS_DEFAULT_ACCOUNTS,
    ISO_AUTH,
    ISO_CONFIG,
    both,
)
from scanner.collectors.web_active import DefaultCredentialFacts, WebActiveFacts
from scanner.model import (
    Reference,
    Remediation,
    Result,
    Severity,
    TargetKind,
    error,
    failed,
    not_applicable,
    not_assessed,
    passed,
)
from scanner.plugins import Check, CheckMeta, FactsView, NoParams

CREDENTIALS = "active.credentials"


class Upload(Check):
    meta = CheckMeta(
        id="web.active.upload",
        title="Anonymous visitors cannot upload files (active test, cleans up)",
        target_kind=TargetKind.WEB,
        facts=(ACTIVE,),
        severity=Severity.HIGH,
        rationale=(
            "If anyone can store a file on the web server, the site can be defaced, used to "
            "host malware or phishing pages under the unit's name, or taken over with an "
            "uploaded script. Only an actual write shows it for certain."
        ),
        remediation=Remediation(
            text="Remove anonymous write access (WebDAV PUT, upload handlers without login); "
            "where uploads are needed, require authentication and store them outside the "
            "document root without execute rights.",
            snippet=both(
                "location /upload/ {\n    limit_except GET HEAD { deny all; }\n}",
                "<Location /upload/>\n    <LimitExcept GET HEAD>\n        Require all denied\n"
                "    </LimitExcept>\n</Location>",
            ),
            snippet_lang="nginx",
        ),
        references=(
            Reference(scheme="cwe", id="CWE-434"),
            ISO_CONFIG,
            CIS_CONFIG,
            BSI_WEBAPP,
        ),
        tags=("web", "active-probe", "intrusive"),
        active=True,
    )

    def evaluate(self, facts: FactsView, params: NoParams) -> Result:
        a = facts.get(ACTIVE, WebActiveFacts)
        if not a.ran or "intrusive" not in a.classes:
            return not_assessed(f"the upload test did not run ({a.reason or 'intrusive off'})")
        ev: dict[str, Any] = {
            "attempts": [u.model_dump(exclude_defaults=True) for u in a.uploads],
            "probes_sent": a.log,
        }
        stored = [u for u in a.uploads if u.stored]
        if stored:
            u = stored[0]
            left = "" if u.deleted else "; the test file could NOT be deleted, remove it"
            return failed(f"an anonymous PUT stored {u.url}{left}", **ev)
        errors = [u for u in a.uploads if u.error]
        if errors and len(errors) == len(a.uploads):
            return error(f"the upload test did not complete: {errors[0].error}", **ev)
        statuses = [u.put_status for u in a.uploads]
        return passed(f"anonymous uploads were refused (PUT statuses {statuses})", **ev)


class DefaultCredentials(Check):
    meta = CheckMeta(
        id="active.default_credentials",
        title="No login accepts a default user name and password (active test)",
        target_kind=TargetKind.SERVICE,
        facts=(CREDENTIALS,),
        severity=Severity.CRITICAL,
        rationale=(
            "Devices and applications shipped with default passwords (admin/admin, root/root) "
            "are the first thing attackers and worms try; one that still accepts them is "
            "open to anyone who can reach it."
        ),
        remediation=Remediation(
            text="Change every default password to a unique strong one (or disable the "
            "account), and prefer key-based or single-sign-on logins; limit login attempts.",
            snippet=(
                "# SSH: key-based logins only (sshd_config)\nPasswordAuthentication no\n"
                "# change a local password\npasswd USER\n"
                "# nginx Basic auth: a new password file\nhtpasswd -B -c /etc/nginx/.htpasswd USER"
            ),
            snippet_lang="shell",
        ),
        references=(
            Reference(scheme="cwe", id="CWE-1392"),
            Reference(scheme="cwe", id="CWE-798"),
            ISO_AUTH,
            CIS_DEFAULT_ACCOUNTS,
            BSI_AUTH,
        ),
        tags=("authentication", "active-probe", "brute"),
        active=True,
    )

    def evaluate(self, facts: FactsView, params: NoParams) -> Result:
        c = facts.get(CREDENTIALS, DefaultCredentialFacts)
        if not c.ran:
            if c.service in ("ssh", "ftp", "telnet"):
                return not_assessed(f"{c.service}: default credentials not tried ({c.reason})")
            return not_applicable(f"default credentials not tried ({c.reason})")
        if not c.service:
            return not_applicable(c.reason or "no login surface found")
        ev: dict[str, Any] = {
            "service": c.service,
            "attempts": [a.model_dump(exclude_defaults=True) for a in c.attempts],
            "limit": c.limit,
            "probes_sent": c.log,
        }
        if c.accepted:
            users = ", ".join(sorted({a.username for a in c.accepted}))
            return failed(f"{c.service} accepts a default password for {users}", **ev)
        if not c.attempts:
            return error(f"{c.service}: no attempt could be made ({c.reason})", **ev)
        if all(a.outcome == "error" for a in c.attempts):
            detail = c.attempts[0].detail
            if "not offered" in detail:
                return passed(f"{c.service}: password logins are not offered ({detail})", **ev)
            return error(f"{c.service}: the attempts failed: {detail}", **ev)
        n = sum(a.outcome == "rejected" for a in c.attempts)
        return passed(f"{c.service}: {n} default credentials were rejected", **ev)
