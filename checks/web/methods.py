"""HTTP methods: TRACE, and WebDAV write methods that need no credentials."""

from __future__ import annotations

from typing import Any

from checks.web.common import (
    ACTIVE,
    BSI_WEBAPP,
    CIS_CONFIG,
    FACTS,
    ISO_CONFIG,
    both,
    web,
)
from scanner.collectors.web_active import WebActiveFacts
from scanner.model import (
    Reference,
    Remediation,
    Result,
    Severity,
    TargetKind,
    error,
    failed,
    passed,
)
from scanner.plugins import Check, CheckMeta, FactsView, NoParams

WRITE_METHODS = frozenset({"PUT", "DELETE", "MKCOL", "MOVE", "COPY", "PROPPATCH", "LOCK"})


class Trace(Check):
    meta = CheckMeta(
        id="web.methods.trace",
        title="TRACE is disabled",
        target_kind=TargetKind.WEB,
        facts=(FACTS,),
        severity=Severity.LOW,
        rationale=(
            "TRACE echoes the request back, including cookies and authorisation headers; "
            "combined with a script injection it lets an attacker read HttpOnly cookies "
            "(cross-site tracing), and it reveals what proxies add to requests."
        ),
        remediation=Remediation(
            text="Disable TRACE (nginx never implements it; a backend behind nginx might).",
            snippet=both(
                "if ($request_method = TRACE) { return 405; }",
                "TraceEnable Off",
            ),
            snippet_lang="nginx",
        ),
        references=(Reference(scheme="cwe", id="CWE-693"), ISO_CONFIG, CIS_CONFIG, BSI_WEBAPP),
        tags=("web", "methods"),
    )

    def evaluate(self, facts: FactsView, params: NoParams) -> Result:
        f = web(facts)
        m = f.methods
        if m.trace_status is None:
            return error(f"TRACE could not be tried: {m.error or 'no answer'}")
        if m.trace_echo:
            return failed(
                f"{f.final_url}: TRACE is enabled and echoes the request",
                trace_status=m.trace_status,
            )
        return passed(
            f"{f.final_url}: TRACE is refused (status {m.trace_status})",
            trace_status=m.trace_status,
        )


class WebdavWrite(Check):
    meta = CheckMeta(
        id="web.methods.webdav_write",
        title="No WebDAV or HTTP write methods without authentication",
        target_kind=TargetKind.WEB,
        facts=(FACTS,),
        severity=Severity.HIGH,
        rationale=(
            "A server that accepts PUT, DELETE, MKCOL or MOVE from anyone lets visitors "
            "replace pages, plant web shells or malware for download, and delete content."
        ),
        remediation=Remediation(
            text="Remove write methods that are not needed; where WebDAV is needed, require "
            "authentication for every method and serve it over HTTPS only.",
            snippet=both(
                "location /dav/ {\n    dav_methods PUT DELETE MKCOL COPY MOVE;\n"
                '    auth_basic "WebDAV";\n    auth_basic_user_file /etc/nginx/dav.htpasswd;\n'
                "    limit_except GET HEAD { deny all; }   # or drop dav_methods entirely\n}",
                "<Location /dav/>\n    Dav On\n    AuthType Basic\n    AuthName WebDAV\n"
                "    AuthUserFile /etc/apache2/dav.htpasswd\n    Require valid-user\n"
                "</Location>",
            ),
            snippet_lang="nginx",
        ),
        references=(
            Reference(scheme="cwe", id="CWE-434"),
            Reference(scheme="cwe", id="CWE-306"),
            ISO_CONFIG,
            CIS_CONFIG,
            BSI_WEBAPP,
        ),
        tags=("web", "methods", "webdav"),
    )

    def evaluate(self, facts: FactsView, params: NoParams) -> Result:
        f = web(facts)
        m = f.methods
        active = facts.maybe(ACTIVE, WebActiveFacts)
        advertised = sorted(WRITE_METHODS & set(m.allow))
        ev: dict[str, Any] = {
            "options_status": m.options_status,
            "allow": m.allow,
            "dav": m.dav or None,
        }
        if active is not None and active.ran:
            handled = [p for p in active.method_probes if p.handled_without_auth]
            stored = [u for u in active.uploads if u.stored]
            ev |= {
                "method_probes": [p.model_dump() for p in active.method_probes],
                "uploads_stored": [u.url for u in stored],
            }
            if stored:
                return failed(f"{stored[0].url}: an unauthenticated PUT was stored", **ev)
            if handled:
                p = handled[0]
                return failed(
                    f"{p.url}: {p.method} is processed without credentials "
                    f"(status {p.status}, not 401/403/405)",
                    **ev,
                )
        if advertised and m.options_status is not None and 200 <= m.options_status < 300:
            return failed(
                f"{f.final_url}: OPTIONS advertises {', '.join(advertised)} without "
                "asking for credentials",
                **ev,
            )
        if active is None or not active.ran:
            return passed(
                f"{f.final_url}: OPTIONS advertises no write methods (not probed "
                "further: run with --active)",
                **ev,
            )
        return passed(f"{f.final_url}: write methods are refused or need credentials", **ev)
