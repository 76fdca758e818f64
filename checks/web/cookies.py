"""Cookie attributes: Secure, HttpOnly, SameSite, and session cookies sent over cleartext."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from checks.web.common import BSI_AUTH, CIS_TRANSIT, FACTS, ISO_AUTH, both, web
from scanner.model import (
    Reference,
    Remediation,
    Result,
    Severity,
    TargetKind,
    failed,
    not_applicable,
    passed,
)
from scanner.plugins import Check, CheckMeta, FactsView


class CookieParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    require_httponly_for_all: bool = Field(
        default=False, description="require HttpOnly on every cookie, not only session cookies"
    )
    require_samesite: bool = True


class CookieFlags(Check):
    meta = CheckMeta(
        id="web.cookies.flags",
        title="Cookies carry Secure, HttpOnly (session cookies) and SameSite",
        target_kind=TargetKind.WEB,
        facts=(FACTS,),
        severity=Severity.MEDIUM,
        rationale=(
            "A cookie without Secure is also sent over cleartext HTTP, where anyone on the "
            "path can copy it; a session cookie without HttpOnly can be read by any injected "
            "script; without SameSite the browser sends it with requests other sites make, "
            "the basis of cross-site request forgery. A session cookie set over cleartext "
            "HTTP is as good as published."
        ),
        remediation=Remediation(
            text=(
                "Set cookies only over HTTPS with Secure; HttpOnly on session cookies; "
                "SameSite=Lax (Strict for administrative applications). Where the application "
                "cannot be changed, the web server can add the flags:"
            ),
            snippet=both(
                "proxy_cookie_flags ~ secure httponly samesite=lax;   # nginx >= 1.19.3",
                'Header always edit Set-Cookie "^(.*)$" "$1; Secure; HttpOnly; SameSite=Lax"',
            ),
            snippet_lang="nginx",
        ),
        references=(
            Reference(scheme="cwe", id="CWE-614"),
            Reference(scheme="cwe", id="CWE-1004"),
            Reference(scheme="cwe", id="CWE-1275"),
            ISO_AUTH,
            CIS_TRANSIT,
            BSI_AUTH,
        ),
        tags=("web", "cookies", "session"),
    )
    Params = CookieParams

    def evaluate(self, facts: FactsView, params: CookieParams) -> list[Result]:
        f = web(facts)
        seen: dict[str, list[Result]] = {}
        for resp in f.responses():
            for c in resp.cookies:
                if c.name in seen:
                    continue
                problems: list[str] = []
                severity: Severity | None = None
                if not resp.tls:
                    problems.append("set over cleartext HTTP")
                    if c.session:
                        severity = Severity.HIGH
                if not c.secure:
                    problems.append("no Secure flag")
                if not c.httponly and (c.session or params.require_httponly_for_all):
                    problems.append("no HttpOnly flag")
                samesite = c.samesite.lower()
                if params.require_samesite and not samesite:
                    problems.append("no SameSite attribute")
                elif samesite and samesite not in ("lax", "strict", "none"):
                    problems.append(f"invalid SameSite {c.samesite!r}")
                elif samesite == "none" and not c.secure:
                    problems.append("SameSite=None without Secure (browsers drop it)")
                ev = {
                    "cookie": c.name,
                    "set_by": resp.url,
                    "session_cookie": c.session,
                    "secure": c.secure,
                    "httponly": c.httponly,
                    "samesite": c.samesite or None,
                }
                kind = "session cookie" if c.session else "cookie"
                if problems:
                    seen[c.name] = [
                        failed(f"{kind} {c.name}: {', '.join(problems)}", c.name, severity, **ev)
                    ]
                else:
                    seen[c.name] = [passed(f"{kind} {c.name} has every flag", c.name, **ev)]
        if not seen:
            return [not_applicable(f"{f.start_url} sets no cookies on the pages fetched")]
        return [r for rs in seen.values() for r in rs]
