"""Security headers of a site's final page: HSTS, CSP, framing, MIME sniffing, referrer,
permissions and cross-origin isolation.

Each check judges the page the root walk ended on (after in-scope redirects), because that is
the page a browser renders. The header parsers are the Observatory module's, so a header that
counts as "invalid" for the grade is invalid here too.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from checks.web.common import (
    BSI_TLS,
    BSI_WEBAPP,
    CIS_APPSEC,
    CIS_TRANSIT,
    FACTS,
    ISO_APPSEC,
    ISO_CRYPTO,
    both,
    final_page,
    web,
)
from scanner.collectors.http import WebResponse
from scanner.model import (
    Reference,
    Remediation,
    Result,
    Severity,
    TargetKind,
    failed,
    passed,
)
from scanner.observatory import hsts_max_age, parse_csp, referrer_policy
from scanner.plugins import Check, CheckMeta, FactsView, NoParams


def _page(facts: FactsView) -> WebResponse | Result:
    return final_page(web(facts))


def _ev(page: WebResponse, header: str) -> dict[str, Any]:
    return {"url": page.url, "status": page.status, header: page.header(header) or None}


# -- HSTS ----------------------------------------------------------------------------------------


class HstsParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    min_max_age: int = Field(
        default=15768000,
        ge=0,
        description="shortest accepted max-age in seconds (six months, the Observatory's bar; "
        "Mozilla's guidelines recommend two years, 63072000)",
    )
    require_include_subdomains: bool = True


class Hsts(Check):
    meta = CheckMeta(
        id="web.headers.hsts",
        title="HTTPS site sends Strict-Transport-Security (long max-age, includeSubDomains)",
        target_kind=TargetKind.WEB,
        facts=(FACTS,),
        severity=Severity.MEDIUM,
        rationale=(
            "Without HSTS a browser that types the address or follows an old http:// link "
            "makes one cleartext request first; an attacker on the path answers it and keeps "
            "the victim on a fake cleartext site (SSL stripping). A short max-age or a missing "
            "includeSubDomains leaves the same gap after expiry or on sibling hosts."
        ),
        remediation=Remediation(
            text=(
                "Serve the site over HTTPS and send HSTS on every HTTPS response with a max-age "
                "of at least six months (two years is better) and includeSubDomains once every "
                "sub-domain speaks HTTPS."
            ),
            snippet=both(
                'add_header Strict-Transport-Security "max-age=63072000; includeSubDomains" '
                "always;",
                'Header always set Strict-Transport-Security "max-age=63072000; includeSubDomains"',
            ),
            snippet_lang="nginx",
        ),
        references=(
            Reference(scheme="cwe", id="CWE-319"),
            ISO_CRYPTO,
            CIS_TRANSIT,
            BSI_TLS,
        ),
        tags=("web", "headers", "tls"),
    )
    Params = HstsParams

    def evaluate(self, facts: FactsView, params: HstsParams) -> Result:
        page = _page(facts)
        if isinstance(page, Result):
            return page
        ev = _ev(page, "strict-transport-security")
        if not page.tls:
            return failed(f"{page.url} is served over cleartext HTTP: HSTS cannot protect it", **ev)
        raw = page.header("strict-transport-security")
        if not raw:
            return failed(f"{page.url} sends no Strict-Transport-Security header", **ev)
        age = hsts_max_age(raw)
        if age is None:
            return failed(f"{page.url}: the Strict-Transport-Security header is invalid", **ev)
        problems = []
        if age < params.min_max_age:
            problems.append(f"max-age {age} is below {params.min_max_age}")
        subdomains = "includesubdomains" in raw.lower().replace(" ", "")
        if params.require_include_subdomains and not subdomains:
            problems.append("includeSubDomains is missing")
        ev |= {"max_age": age, "include_subdomains": subdomains}
        if problems:
            return failed(f"{page.url}: HSTS is weak ({'; '.join(problems)})", **ev)
        return passed(f"{page.url}: HSTS max-age {age} with includeSubDomains", **ev)


# -- CSP -----------------------------------------------------------------------------------------


class CspParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    require_frame_ancestors: bool = True
    allow_unsafe_inline_styles: bool = Field(
        default=True, description="tolerate 'unsafe-inline' in style-src (the Observatory does)"
    )


class Csp(Check):
    meta = CheckMeta(
        id="web.headers.csp",
        title="Content-Security-Policy without unsafe-inline/eval, with frame-ancestors",
        target_kind=TargetKind.WEB,
        facts=(FACTS,),
        severity=Severity.MEDIUM,
        rationale=(
            "A Content-Security-Policy is the browser's second line of defence against "
            "cross-site scripting: it refuses scripts the site did not intend to load. A "
            "policy that allows 'unsafe-inline' or 'unsafe-eval' scripts gives that defence "
            "away; frame-ancestors is the modern protection against clickjacking."
        ),
        remediation=Remediation(
            text=(
                "Send a Content-Security-Policy that loads scripts only from the site itself "
                "(or with nonces/hashes), forbids plugins and framing by other sites; move "
                "inline scripts into files. Start with Content-Security-Policy-Report-Only "
                "to find what breaks."
            ),
            snippet=both(
                "add_header Content-Security-Policy \"default-src 'self'; object-src 'none'; "
                "frame-ancestors 'none'; base-uri 'self'; form-action 'self'\" always;",
                "Header always set Content-Security-Policy \"default-src 'self'; "
                "object-src 'none'; frame-ancestors 'none'; base-uri 'self'; "
                "form-action 'self'\"",
            ),
            snippet_lang="nginx",
        ),
        references=(
            Reference(scheme="cwe", id="CWE-79"),
            Reference(scheme="cwe", id="CWE-1021"),
            ISO_APPSEC,
            CIS_APPSEC,
            BSI_WEBAPP,
        ),
        tags=("web", "headers", "xss"),
    )
    Params = CspParams

    def evaluate(self, facts: FactsView, params: CspParams) -> list[Result]:
        page = _page(facts)
        if isinstance(page, Result):
            return [page]
        ev = _ev(page, "content-security-policy")
        raw = page.header("content-security-policy")
        if not raw:
            only = page.header("content-security-policy-report-only")
            extra = " (only a Report-Only policy, which enforces nothing)" if only else ""
            return [failed(f"{page.url} sends no Content-Security-Policy{extra}", "missing", **ev)]
        csp = parse_csp(raw)
        if csp is None:
            return [
                failed(f"{page.url}: the Content-Security-Policy cannot be parsed", "invalid", **ev)
            ]
        default = csp.get("default-src")
        script = csp.get("script-src", default) or []
        style = csp.get("style-src", default) or []
        nonce_or_hash = any(
            s.startswith(("'nonce-", "'sha256-", "'sha384-", "'sha512-")) for s in script
        )
        out: list[Result] = []
        if not csp.get("script-src", default):
            out.append(
                failed(
                    f"{page.url}: the CSP does not restrict scripts (no script-src or default-src)",
                    "no-script-src",
                    **ev,
                )
            )
        if "'unsafe-inline'" in script and not nonce_or_hash:
            out.append(
                failed(f"{page.url}: the CSP allows 'unsafe-inline' scripts", "unsafe-inline", **ev)
            )
        if "'unsafe-eval'" in script:
            out.append(failed(f"{page.url}: the CSP allows 'unsafe-eval'", "unsafe-eval", **ev))
        if not params.allow_unsafe_inline_styles and "'unsafe-inline'" in style:
            out.append(
                failed(
                    f"{page.url}: the CSP allows 'unsafe-inline' styles",
                    "unsafe-inline-style",
                    severity=Severity.LOW,
                    **ev,
                )
            )
        if params.require_frame_ancestors and "frame-ancestors" not in csp:
            out.append(
                failed(
                    f"{page.url}: the CSP has no frame-ancestors directive",
                    "frame-ancestors",
                    severity=Severity.LOW,
                    **ev,
                )
            )
        return out or [passed(f"{page.url}: the Content-Security-Policy is strict", **ev)]


# -- framing, sniffing, referrer, permissions ----------------------------------------------------


class FrameOptions(Check):
    meta = CheckMeta(
        id="web.headers.frame",
        title="Pages cannot be framed by other sites (X-Frame-Options or frame-ancestors)",
        target_kind=TargetKind.WEB,
        facts=(FACTS,),
        severity=Severity.MEDIUM,
        rationale=(
            "A page that any site may load in a frame can be overlaid with a decoy, so that "
            "the user's clicks land on the framed page's buttons (clickjacking): approving a "
            "transfer, changing settings, deleting records."
        ),
        remediation=Remediation(
            text=(
                "Send X-Frame-Options DENY (or SAMEORIGIN if the site frames itself) and, "
                "better, CSP frame-ancestors 'none' / 'self'."
            ),
            snippet=both(
                'add_header X-Frame-Options "DENY" always;',
                'Header always set X-Frame-Options "DENY"',
            ),
            snippet_lang="nginx",
        ),
        references=(Reference(scheme="cwe", id="CWE-1021"), ISO_APPSEC, CIS_APPSEC, BSI_WEBAPP),
        tags=("web", "headers", "clickjacking"),
    )

    def evaluate(self, facts: FactsView, params: NoParams) -> Result:
        page = _page(facts)
        if isinstance(page, Result):
            return page
        xfo = page.header("x-frame-options").strip()
        csp = parse_csp(page.header("content-security-policy") or "") or {}
        ev: dict[str, Any] = {
            "url": page.url,
            "x_frame_options": xfo or None,
            "frame_ancestors": " ".join(csp.get("frame-ancestors", [])) or None,
        }
        if "frame-ancestors" in csp:
            ancestors = csp["frame-ancestors"]
            if "*" in ancestors or "https:" in ancestors or "http:" in ancestors:
                return failed(f"{page.url}: frame-ancestors allows any site", **ev)
            return passed(f"{page.url}: framing is restricted by CSP frame-ancestors", **ev)
        if xfo.lower() in ("deny", "sameorigin"):
            return passed(f"{page.url}: X-Frame-Options {xfo}", **ev)
        if xfo:
            return failed(f"{page.url}: X-Frame-Options {xfo!r} is not DENY or SAMEORIGIN", **ev)
        return failed(
            f"{page.url} may be framed by any site (no X-Frame-Options or frame-ancestors)", **ev
        )


class NoSniff(Check):
    meta = CheckMeta(
        id="web.headers.nosniff",
        title="X-Content-Type-Options: nosniff is sent",
        target_kind=TargetKind.WEB,
        facts=(FACTS,),
        severity=Severity.LOW,
        rationale=(
            "Without nosniff a browser may guess that an uploaded text or image file is a "
            "script or HTML and run it, which turns file uploads into cross-site scripting."
        ),
        remediation=Remediation(
            text="Send X-Content-Type-Options: nosniff on every response.",
            snippet=both(
                'add_header X-Content-Type-Options "nosniff" always;',
                'Header always set X-Content-Type-Options "nosniff"',
            ),
            snippet_lang="nginx",
        ),
        references=(Reference(scheme="cwe", id="CWE-693"), ISO_APPSEC, CIS_APPSEC, BSI_WEBAPP),
        tags=("web", "headers"),
    )

    def evaluate(self, facts: FactsView, params: NoParams) -> Result:
        page = _page(facts)
        if isinstance(page, Result):
            return page
        ev = _ev(page, "x-content-type-options")
        if page.header("x-content-type-options").strip().lower() == "nosniff":
            return passed(f"{page.url}: X-Content-Type-Options nosniff", **ev)
        return failed(f"{page.url}: X-Content-Type-Options nosniff is not sent", **ev)


class ReferrerParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    require_header: bool = Field(
        default=True,
        description="fail when the header is missing (browsers then use their own default)",
    )


class Referrer(Check):
    meta = CheckMeta(
        id="web.headers.referrer",
        title="Referrer-Policy keeps full URLs from leaking to other sites",
        target_kind=TargetKind.WEB,
        facts=(FACTS,),
        severity=Severity.LOW,
        rationale=(
            "URLs of an internal application often carry record numbers, search terms or "
            "tokens; without a strict Referrer-Policy they are sent to every external site a "
            "page links to or loads a resource from."
        ),
        remediation=Remediation(
            text="Send Referrer-Policy strict-origin-when-cross-origin (or no-referrer).",
            snippet=both(
                'add_header Referrer-Policy "strict-origin-when-cross-origin" always;',
                'Header always set Referrer-Policy "strict-origin-when-cross-origin"',
            ),
            snippet_lang="nginx",
        ),
        references=(Reference(scheme="cwe", id="CWE-200"), ISO_APPSEC, CIS_APPSEC, BSI_WEBAPP),
        tags=("web", "headers", "privacy"),
    )
    Params = ReferrerParams

    def evaluate(self, facts: FactsView, params: ReferrerParams) -> Result:
        page = _page(facts)
        if isinstance(page, Result):
            return page
        raw = page.header("referrer-policy")
        ev = _ev(page, "referrer-policy")
        policy = referrer_policy(raw)
        if policy in (
            "no-referrer",
            "same-origin",
            "strict-origin",
            "strict-origin-when-cross-origin",
        ):
            return passed(f"{page.url}: Referrer-Policy {policy}", **ev)
        if not raw:
            if params.require_header:
                return failed(f"{page.url} sends no Referrer-Policy", **ev)
            return passed(f"{page.url}: no Referrer-Policy (browser default applies)", **ev)
        if policy:
            return failed(f"{page.url}: Referrer-Policy {policy} leaks URLs to other sites", **ev)
        return failed(f"{page.url}: Referrer-Policy {raw!r} is not recognised", **ev)


class Permissions(Check):
    meta = CheckMeta(
        id="web.headers.permissions",
        title="Permissions-Policy restricts powerful browser features",
        target_kind=TargetKind.WEB,
        facts=(FACTS,),
        severity=Severity.LOW,
        rationale=(
            "Permissions-Policy switches off browser features the site does not use (camera, "
            "microphone, geolocation, payment); an injected script or a framed third party "
            "then cannot ask the user for them in the site's name."
        ),
        remediation=Remediation(
            text="Send a Permissions-Policy that disables the features the site does not use.",
            snippet=both(
                'add_header Permissions-Policy "camera=(), microphone=(), geolocation=(), '
                'payment=(), usb=()" always;',
                'Header always set Permissions-Policy "camera=(), microphone=(), '
                'geolocation=(), payment=(), usb=()"',
            ),
            snippet_lang="nginx",
        ),
        references=(Reference(scheme="cwe", id="CWE-693"), ISO_APPSEC, CIS_APPSEC, BSI_WEBAPP),
        tags=("web", "headers", "privacy"),
    )

    def evaluate(self, facts: FactsView, params: NoParams) -> Result:
        page = _page(facts)
        if isinstance(page, Result):
            return page
        raw = page.header("permissions-policy")
        ev = _ev(page, "permissions-policy")
        if raw and "=" in raw:
            features = sorted({p.split("=", 1)[0].strip() for p in raw.split(",") if "=" in p})
            return passed(
                f"{page.url}: Permissions-Policy restricts {len(features)} features",
                features=features[:32],
                **ev,
            )
        if raw:
            return failed(f"{page.url}: Permissions-Policy {raw!r} cannot be parsed", **ev)
        legacy = page.header("feature-policy")
        extra = " (only the obsolete Feature-Policy)" if legacy else ""
        return failed(f"{page.url} sends no Permissions-Policy{extra}", **ev)


class IsolationParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    coop: list[str] = ["same-origin", "same-origin-allow-popups"]
    corp: list[str] = ["same-origin", "same-site"]


class Isolation(Check):
    meta = CheckMeta(
        id="web.headers.isolation",
        title="Cross-origin isolation headers (COOP and CORP) are sent",
        target_kind=TargetKind.WEB,
        facts=(FACTS,),
        severity=Severity.LOW,
        rationale=(
            "Cross-Origin-Opener-Policy stops pages the site opens or is opened by from "
            "reaching into its window; Cross-Origin-Resource-Policy stops other sites from "
            "embedding its responses. Both shut side channels (Spectre-class leaks, "
            "cross-window attacks) that no other header covers."
        ),
        remediation=Remediation(
            text="Send Cross-Origin-Opener-Policy same-origin and Cross-Origin-Resource-Policy "
            "same-origin (same-site if sibling hosts embed the resources).",
            snippet=both(
                'add_header Cross-Origin-Opener-Policy "same-origin" always;\n'
                'add_header Cross-Origin-Resource-Policy "same-origin" always;',
                'Header always set Cross-Origin-Opener-Policy "same-origin"\n'
                'Header always set Cross-Origin-Resource-Policy "same-origin"',
            ),
            snippet_lang="nginx",
        ),
        references=(Reference(scheme="cwe", id="CWE-346"), ISO_APPSEC, CIS_APPSEC, BSI_WEBAPP),
        tags=("web", "headers"),
    )
    Params = IsolationParams

    def evaluate(self, facts: FactsView, params: IsolationParams) -> list[Result]:
        page = _page(facts)
        if isinstance(page, Result):
            return [page]
        out = []
        for detail, header, good in (
            ("coop", "cross-origin-opener-policy", params.coop),
            ("corp", "cross-origin-resource-policy", params.corp),
        ):
            value = page.header(header).split(";")[0].strip().lower()
            ev = _ev(page, header)
            if value in good:
                out.append(passed(f"{page.url}: {header} {value}", detail, **ev))
            elif value:
                out.append(failed(f"{page.url}: {header} {value!r} does not isolate", detail, **ev))
            else:
                out.append(failed(f"{page.url} sends no {header}", detail, **ev))
        return out
