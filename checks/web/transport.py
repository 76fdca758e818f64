"""HTTPS enforcement and credentials over cleartext: redirects, login forms, Basic auth, CSRF."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict

from checks.web.common import (
    BSI_AUTH,
    BSI_TLS,
    BSI_WEBAPP,
    CIS_APPSEC,
    CIS_TRANSIT,
    FACTS,
    ISO_APPSEC,
    ISO_AUTH,
    ISO_CRYPTO,
    both,
    web,
)
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
from scanner.plugins import Check, CheckMeta, FactsView, NoParams

_REDIRECT = both(
    "server {\n    listen 80;\n    server_name portal.example.gov.vn;\n"
    "    return 301 https://$host$request_uri;\n}",
    "<VirtualHost *:80>\n    ServerName portal.example.gov.vn\n"
    "    Redirect permanent / https://portal.example.gov.vn/\n</VirtualHost>",
)


class RedirectParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    same_host_first: bool = True  # the first hop must go to https on the same host (HSTS)


class HttpsRedirect(Check):
    meta = CheckMeta(
        id="web.https.redirect",
        title="Cleartext HTTP redirects straight to HTTPS on the same host",
        target_kind=TargetKind.WEB,
        facts=(FACTS,),
        severity=Severity.MEDIUM,
        rationale=(
            "A site that still answers cleartext HTTP with content lets anyone on the path "
            "read and change it. The first redirect should go to https on the same host so "
            "that the browser learns that host's HSTS policy before going anywhere else."
        ),
        remediation=Remediation(
            text="Answer every cleartext request with a permanent redirect to the same URL "
            "on https, on the same host name.",
            snippet=_REDIRECT,
            snippet_lang="nginx",
        ),
        references=(Reference(scheme="cwe", id="CWE-319"), ISO_CRYPTO, CIS_TRANSIT, BSI_TLS),
        tags=("web", "tls", "cleartext"),
    )
    Params = RedirectParams

    def evaluate(self, facts: FactsView, params: RedirectParams) -> Result:
        f = web(facts)
        ev: dict[str, Any] = {"start_url": f.start_url, "redirect_chain": f.redirect_chain}
        if f.start_scheme == "https":
            return not_applicable(
                f"{f.start_url} is an https URL (its cleartext port, if "
                "any, is assessed as its own target)",
                **ev,
            )
        first = f.hops[0]
        if first.status not in (301, 302, 303, 307, 308) or not first.location:
            return failed(
                f"{f.start_url} serves content over cleartext HTTP (status {first.status}) "
                "instead of redirecting to HTTPS",
                **ev,
            )
        if f.out_of_scope_redirect and not f.ends_at_https:
            return failed(
                f"{f.start_url} redirects to {f.out_of_scope_redirect}, outside the "
                "scope and not https",
                **ev,
            )
        if not f.ends_at_https:
            why = f"; {f.not_followed}" if f.not_followed else ""
            return failed(f"{f.start_url} redirects but never reaches HTTPS{why}", **ev)
        initial = urlsplit(first.location)
        if initial.scheme.lower() != "https":
            return failed(
                f"{f.start_url} reaches HTTPS only after a cleartext hop to {first.location}",
                severity=Severity.LOW,
                **ev,
            )
        same = (initial.hostname or "") == (
            urlsplit(f.start_url).hostname or ""
        ) or f.first_redirect_same_address
        if params.same_host_first and not same:
            return failed(
                f"{f.start_url} redirects to HTTPS on another host "
                f"({initial.hostname}), so its own HSTS policy is never learnt",
                severity=Severity.LOW,
                **ev,
            )
        return passed(f"{f.start_url} redirects to {first.location}", **ev)


class CleartextAuth(Check):
    meta = CheckMeta(
        id="web.auth.cleartext",
        title="No login form or HTTP Basic/Digest prompt over cleartext HTTP",
        target_kind=TargetKind.WEB,
        facts=(FACTS,),
        severity=Severity.HIGH,
        rationale=(
            "A password typed into a form served over HTTP, or sent to a Basic-auth prompt "
            "over HTTP, crosses the network in the clear (Basic is only base64); a form on "
            "an HTTPS page that posts to an http:// address leaks it the same way."
        ),
        remediation=Remediation(
            text="Serve login pages and authenticated areas only over HTTPS, redirect HTTP to "
            "HTTPS, and make every form post to an https:// (or relative) address.",
            snippet=_REDIRECT,
            snippet_lang="nginx",
        ),
        references=(
            Reference(scheme="cwe", id="CWE-319"),
            Reference(scheme="cwe", id="CWE-523"),
            ISO_AUTH,
            CIS_TRANSIT,
            BSI_AUTH,
        ),
        tags=("web", "cleartext", "authentication"),
    )

    def evaluate(self, facts: FactsView, params: NoParams) -> list[Result]:
        f = web(facts)
        out: list[Result] = []
        for resp in f.responses():
            challenge = resp.header("www-authenticate")
            scheme = challenge.split(" ", 1)[0].lower() if challenge else ""
            if not resp.tls and scheme in ("basic", "digest", "ntlm", "negotiate"):
                out.append(
                    failed(
                        f"{resp.url} asks for {scheme.title()} credentials over cleartext HTTP",
                        f"challenge:{resp.url}",
                        url=resp.url,
                        www_authenticate=challenge,
                    )
                )
            for form in resp.forms:
                if not form.has_password:
                    continue
                action = urlsplit(form.action).scheme.lower()
                if not resp.tls:
                    out.append(
                        failed(
                            f"{resp.url} serves a login form over cleartext HTTP",
                            f"form:{resp.url}",
                            url=resp.url,
                            action=form.action,
                        )
                    )
                elif action == "http":
                    out.append(
                        failed(
                            f"{resp.url}: the login form posts to cleartext {form.action}",
                            f"form:{resp.url}",
                            url=resp.url,
                            action=form.action,
                        )
                    )
        if out:
            return out
        return [
            passed(
                f"{f.start_url}: no credentials are requested over cleartext",
                pages=[r.url for r in f.responses()],
            )
        ]


class Csrf(Check):
    meta = CheckMeta(
        id="web.forms.csrf",
        title="State-changing forms carry an anti-CSRF token (advisory)",
        target_kind=TargetKind.WEB,
        facts=(FACTS,),
        severity=Severity.LOW,
        rationale=(
            "A form that changes state and has no unpredictable token can be submitted by "
            "any other site the user visits while logged in (cross-site request forgery). "
            "This is advisory: a token in a header, or SameSite cookies, may protect the "
            "form in ways a page scan cannot see."
        ),
        remediation=Remediation(
            text="Use the framework's CSRF protection (a per-session token in a hidden field, "
            "checked on every POST) and SameSite=Lax or Strict session cookies; as a web "
            "server measure, forbid framing and keep cookies SameSite:",
            snippet=both(
                "proxy_cookie_flags ~ samesite=strict;",
                'Header always edit Set-Cookie "^(.*)$" "$1; SameSite=Strict"',
            ),
            snippet_lang="nginx",
        ),
        references=(Reference(scheme="cwe", id="CWE-352"), ISO_APPSEC, CIS_APPSEC, BSI_WEBAPP),
        tags=("web", "csrf", "advisory"),
    )

    def evaluate(self, facts: FactsView, params: NoParams) -> list[Result]:
        f = web(facts)
        forms = [(r, fm) for r in f.responses() for fm in r.forms if fm.method == "post"]
        if not forms:
            return [not_applicable(f"{f.start_url}: no POST forms on the pages fetched")]
        strict = any(
            c.samesite.lower() in ("lax", "strict") for r in f.responses() for c in r.cookies
        )
        out: list[Result] = []
        for resp, form in forms:
            detail = f"form:{form.action}"
            ev: dict[str, Any] = {
                "page": resp.url,
                "action": form.action,
                "inputs": [i.name for i in form.inputs][:20],
            }
            if form.has_csrf_token:
                out.append(
                    passed(f"the form posting to {form.action} carries a token", detail, **ev)
                )
            else:
                note = " (SameSite cookies limit the risk)" if strict else ""
                out.append(
                    failed(
                        f"the form on {resp.url} posting to {form.action} has no "
                        f"anti-CSRF token field{note}",
                        detail,
                        **ev,
                    )
                )
        return out
