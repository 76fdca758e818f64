"""Cleartext HTTP that serves content instead of sending the client to HTTPS."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from scanner.collectors.http import HttpFacts
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

FACTS = "service.http"

_SNIPPET = """\
# nginx: answer cleartext HTTP only with a redirect to HTTPS
server {
    listen 80 default_server;
    listen [::]:80 default_server;
    server_name _;
    return 301 https://$host$request_uri;
}
"""


class CleartextParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    permanent_only: bool = Field(
        default=False,
        description="accept only permanent redirects (301/308) to HTTPS, not 302/303/307",
    )


class CleartextHttp(Check):
    """An HTTP service that answers with content over cleartext rather than redirecting."""

    meta = CheckMeta(
        id="net.http.cleartext",
        title="HTTP redirects to HTTPS instead of serving cleartext",
        target_kind=TargetKind.SERVICE,
        facts=(FACTS,),
        severity=Severity.MEDIUM,
        rationale=(
            "Pages served over cleartext HTTP can be read and altered by anyone on the path "
            "(Wi-Fi, a compromised router, a proxy); session cookies and, worst of all, "
            "passwords typed into a login form travel in the clear."
        ),
        remediation=Remediation(
            text=(
                "Serve the site over HTTPS only and answer every cleartext request with a "
                "permanent redirect to the same URL on https; then add HSTS on the HTTPS site."
            ),
            snippet=_SNIPPET,
            snippet_lang="nginx",
        ),
        references=(
            Reference(scheme="cwe", id="CWE-319"),
            Reference(scheme="iso27001:2022", id="A.8.24"),
            Reference(scheme="cis-v8", id="3.10"),
            Reference(scheme="bsi", id="APP.3.2.A11"),
        ),
        tags=("http", "tls", "cleartext"),
    )
    Params = CleartextParams

    def evaluate(self, facts: FactsView, params: CleartextParams) -> Result:
        f = facts.get(FACTS, HttpFacts)
        first = f.hops[0]
        evidence: dict[str, Any] = {
            "url": f.url,
            "status": f.status,
            "redirect_chain": f.redirect_chain,
            "final_url": f.final_url,
            "server": first.server or None,
        }
        if first.tls_port_hint:
            return not_applicable(
                f"{f.url}: the port expects TLS (the server refused the cleartext request)",
                **evidence,
            )
        if f.ends_at_https:
            statuses = [h.status for h in f.hops]
            if params.permanent_only and any(s not in (301, 308) for s in statuses):
                return failed(
                    f"{f.url} redirects to HTTPS only temporarily ({statuses})",
                    redirect_statuses=statuses,
                    **evidence,
                )
            return passed(f"{f.url} redirects to {f.final_url}", **evidence)

        cleartext_login = f.password_form or any(h.password_form for h in f.hops)
        basic = [h.url for h in f.hops if h.www_authenticate.lower().startswith("basic")]
        severity = Severity.HIGH if cleartext_login or basic else None
        evidence |= {"password_form": cleartext_login, "basic_auth_challenge": bool(basic)}
        if f.out_of_scope_redirect:
            how = (
                f"redirects to cleartext {f.out_of_scope_redirect} "
                "(outside the scope, not followed)"
            )
        elif len(f.hops) > 1 or f.final_status is None:
            how = f"redirects to cleartext {f.final_url}, never reaching HTTPS"
            if f.not_followed:
                evidence["not_followed"] = f.not_followed
        else:
            how = f"serves content over cleartext HTTP (status {f.status}) without redirecting"
        extra = ""
        if cleartext_login:
            extra = "; a login form with a password field is served in the clear"
        elif basic:
            extra = "; it asks for HTTP Basic credentials in the clear"
        return failed(f"{f.url} {how}{extra}", severity=severity, **evidence)
