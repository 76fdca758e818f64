"""The Mozilla (MDN) HTTP Observatory grade, computed from Assay's own web facts.

The Observatory's published scoring (algorithm of the MDN rewrite, 2024): every site starts at
100; each of ten tests adds one modifier; bonuses (positive modifiers) only count when the
score from the penalties alone is still 90 or more; the score never drops below 0; the grade
comes from the score rounded down to a multiple of 5 (anything over 100 is A+):

    100+ A+   90-99 A   85-89 A-   80-84 B+   70-79 B   65-69 B-   60-64 C+
    50-59 C   45-49 C-  40-44 D+   30-39 D    25-29 D-  0-24 F

The modifiers per test and result are the published ones (SCORE_TABLE below). Where Assay
sees less than the Observatory does, the difference is stated in the test's note rather than
guessed: the HSTS preload list is not consulted (no `hsts-preloaded` bonus), crossdomain.xml and
clientaccesspolicy.xml are not fetched (CORS is judged from the headers of `/`), a site whose
scan started on https gets a neutral redirection result, and a `<meta>` CSP or referrer policy
is not read. Everything here is a pure function of `WebFacts`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import urlsplit

from scanner.collectors.http import WebFacts, WebResponse

MINIMUM_SCORE_FOR_BONUS = 90
HSTS_MIN_AGE = 15768000  # six months, in seconds

GRADES: tuple[tuple[int, str], ...] = (
    (100, "A+"),
    (90, "A"),
    (85, "A-"),
    (80, "B+"),
    (70, "B"),
    (65, "B-"),
    (60, "C+"),
    (50, "C"),
    (45, "C-"),
    (40, "D+"),
    (30, "D"),
    (25, "D-"),
    (0, "F"),
)

# expectation -> modifier (the published table)
SCORE_TABLE: dict[str, int] = {
    # Content Security Policy
    "csp-implemented-with-no-unsafe-default-src-none": 10,
    "csp-implemented-with-no-unsafe": 5,
    "csp-implemented-with-unsafe-inline-in-style-src-only": 0,
    "csp-implemented-with-insecure-scheme-in-passive-content-only": -10,
    "csp-implemented-with-unsafe-eval": -10,
    "csp-implemented-with-unsafe-inline": -20,
    "csp-implemented-with-insecure-scheme": -20,
    "csp-header-invalid": -25,
    "csp-not-implemented": -25,
    # Cookies
    "cookies-secure-with-httponly-sessions-and-samesite": 5,
    "cookies-secure-with-httponly-sessions": 0,
    "cookies-not-found": 0,
    "cookies-without-secure-flag-but-protected-by-hsts": -5,
    "cookies-session-without-secure-flag-but-protected-by-hsts": -10,
    "cookies-without-secure-flag": -20,
    "cookies-samesite-flag-invalid": -20,
    "cookies-anticsrf-without-samesite-flag": -20,
    "cookies-session-without-httponly-flag": -30,
    "cookies-session-without-secure-flag": -40,
    # Cross-origin resource sharing
    "cross-origin-resource-sharing-not-implemented": 0,
    "cross-origin-resource-sharing-implemented-with-public-access": 0,
    "cross-origin-resource-sharing-implemented-with-restricted-access": 0,
    "cross-origin-resource-sharing-implemented-with-universal-access": -50,
    # Redirection
    "redirection-to-https": 0,
    "redirection-not-needed-no-http": 0,
    "redirection-not-assessed-scan-started-on-https": 0,  # Assay: http side not known
    "redirection-off-host-from-http": -5,
    "redirection-not-to-https-on-initial-redirection": -10,
    "redirection-not-to-https": -20,
    "redirection-missing": -20,
    # Referrer-Policy
    "referrer-policy-private": 5,
    "referrer-policy-not-implemented": 0,
    "referrer-policy-unsafe": -5,
    "referrer-policy-header-invalid": -5,
    # Strict-Transport-Security
    "hsts-implemented-max-age-at-least-six-months": 0,
    "hsts-implemented-max-age-less-than-six-months": -10,
    "hsts-not-implemented": -20,
    "hsts-header-invalid": -20,
    "hsts-not-implemented-no-https": -20,
    # Subresource Integrity
    "sri-implemented-and-all-scripts-loaded-securely": 5,
    "sri-implemented-and-external-scripts-loaded-securely": 5,
    "sri-not-implemented-response-not-html": 0,
    "sri-not-implemented-but-no-scripts-loaded": 0,
    "sri-not-implemented-but-all-scripts-loaded-from-secure-origin": 0,
    "sri-not-implemented-but-external-scripts-loaded-securely": -5,
    "sri-implemented-but-external-scripts-not-loaded-securely": -20,
    "sri-not-implemented-and-external-scripts-not-loaded-securely": -50,
    # X-Content-Type-Options
    "x-content-type-options-nosniff": 0,
    "x-content-type-options-not-implemented": -5,
    "x-content-type-options-header-invalid": -5,
    # X-Frame-Options
    "x-frame-options-implemented-via-csp": 5,
    "x-frame-options-sameorigin-or-deny": 0,
    "x-frame-options-allow-from-origin": 0,
    "x-frame-options-not-implemented": -20,
    "x-frame-options-header-invalid": -20,
    # Cross-Origin-Resource-Policy
    "cross-origin-resource-policy-implemented-with-same-origin": 10,
    "cross-origin-resource-policy-implemented-with-same-site": 10,
    "cross-origin-resource-policy-implemented-with-cross-origin": 0,
    "cross-origin-resource-policy-not-implemented": 0,
    "cross-origin-resource-policy-header-invalid": -5,
}

_CSP_DIRECTIVE = re.compile(r"^[a-z][a-z-]*$")
_PRIVATE_REFERRER = {
    "no-referrer",
    "same-origin",
    "strict-origin",
    "strict-origin-when-cross-origin",
}
_UNSAFE_REFERRER = {
    "origin",
    "origin-when-cross-origin",
    "unsafe-url",
    "no-referrer-when-downgrade",
}


@dataclass(frozen=True)
class ObservatoryTest:
    name: str
    result: str  # the expectation met, e.g. "csp-not-implemented"
    modifier: int
    note: str = ""

    @property
    def passed(self) -> bool:
        return self.modifier >= 0


@dataclass(frozen=True)
class ObservatoryScore:
    score: int
    grade: str
    uncurved: int  # 100 plus the penalties only
    bonus_counted: bool
    tests: tuple[ObservatoryTest, ...]
    url: str  # the page graded

    def as_evidence(self) -> dict[str, object]:
        return {
            "score": self.score,
            "grade": self.grade,
            "url": self.url,
            "bonus_counted": self.bonus_counted,
            "tests": {t.name: {"result": t.result, "points": t.modifier} for t in self.tests},
            "notes": {t.name: t.note for t in self.tests if t.note},
        }


def grade_for(score: int) -> str:
    rounded = min(max(score, 0) // 5 * 5, 100)
    return next(g for floor, g in GRADES if rounded >= floor)


def _test(name: str, result: str, note: str = "") -> ObservatoryTest:
    return ObservatoryTest(name, result, SCORE_TABLE[result], note)


# -- header parsers (shared with the header checks) ----------------------------------------------


def parse_csp(value: str) -> dict[str, list[str]] | None:
    """Directives of a CSP header (several policies joined by commas are merged); None if
    nothing in it is a directive."""
    directives: dict[str, list[str]] = {}
    for policy in value.split(","):
        for part in policy.split(";"):
            tokens = part.strip().split()
            if not tokens:
                continue
            name = tokens[0].lower()
            if not _CSP_DIRECTIVE.match(name):
                return None
            directives.setdefault(name, [t.lower() for t in tokens[1:]])
    return directives or None


def hsts_max_age(value: str) -> int | None:
    """max-age of an HSTS header; None when the header cannot be recognised."""
    ages = []
    for part in value.split(";"):
        key, _, val = part.strip().partition("=")
        if key.strip().lower() == "max-age":
            try:
                ages.append(int(val.strip().strip('"')))
            except ValueError:
                return None
    return ages[0] if len(ages) == 1 and ages[0] >= 0 else None


def referrer_policy(value: str) -> str:
    """The effective policy: the last value a browser recognises ("" when none is)."""
    known = _PRIVATE_REFERRER | _UNSAFE_REFERRER | {"no-referrer-when-downgrade"}
    effective = ""
    for token in value.lower().split(","):
        if token.strip() in known:
            effective = token.strip()
    return effective


# -- the ten tests -------------------------------------------------------------------------------


def _csp_test(page: WebResponse) -> ObservatoryTest:
    raw = page.header("content-security-policy")
    if not raw:
        return _test("content-security-policy", "csp-not-implemented")
    csp = parse_csp(raw)
    if csp is None:
        return _test("content-security-policy", "csp-header-invalid")
    default = csp.get("default-src")
    script = csp.get("script-src", default)
    obj = csp.get("object-src", default)
    style = csp.get("style-src", default)
    broad = {"*", "http:", "https:"}
    if script is None or obj is None:
        return _test(
            "content-security-policy",
            "csp-implemented-with-unsafe-inline",
            "script-src or object-src is not restricted",
        )
    nonce_or_hash = any(
        s.startswith(("'nonce-", "'sha256-", "'sha384-", "'sha512-")) for s in script
    )
    if (
        ("'unsafe-inline'" in script and not nonce_or_hash)
        or "data:" in script
        or broad & set(script)
        or broad & set(obj)
    ):
        return _test("content-security-policy", "csp-implemented-with-unsafe-inline")
    if "'unsafe-eval'" in script:
        return _test("content-security-policy", "csp-implemented-with-unsafe-eval")
    if page.tls:
        insecure = {
            d
            for d, srcs in csp.items()
            if any(s == "http:" or s.startswith("http://") for s in srcs)
        }
        if insecure - {"img-src", "media-src"}:
            return _test("content-security-policy", "csp-implemented-with-insecure-scheme")
        if insecure:
            return _test(
                "content-security-policy",
                "csp-implemented-with-insecure-scheme-in-passive-content-only",
            )
    if style is not None and ("'unsafe-inline'" in style or "data:" in style or broad & set(style)):
        return _test(
            "content-security-policy", "csp-implemented-with-unsafe-inline-in-style-src-only"
        )
    form_action = csp.get("form-action", [])
    if default == ["'none'"] and form_action in (["'none'"], ["'self'"]):
        return _test("content-security-policy", "csp-implemented-with-no-unsafe-default-src-none")
    return _test("content-security-policy", "csp-implemented-with-no-unsafe")


def _hsts_valid(page: WebResponse) -> bool:
    if not page.tls:
        return False
    age = hsts_max_age(page.header("strict-transport-security"))
    return age is not None and age > 0


def _hsts_test(page: WebResponse) -> ObservatoryTest:
    name = "strict-transport-security"
    if not page.tls:
        return _test(name, "hsts-not-implemented-no-https")
    raw = page.header("strict-transport-security")
    if not raw:
        return _test(name, "hsts-not-implemented")
    age = hsts_max_age(raw)
    if age is None:
        return _test(name, "hsts-header-invalid")
    if age < HSTS_MIN_AGE:
        return _test(name, "hsts-implemented-max-age-less-than-six-months")
    return _test(name, "hsts-implemented-max-age-at-least-six-months", "preload list not consulted")


def _cookies_test(facts: WebFacts, page: WebResponse) -> ObservatoryTest:
    name = "cookies"
    pairs = [(c, r.tls) for r in facts.hops for c in r.cookies]
    if not pairs:
        return _test(name, "cookies-not-found")
    hsts = _hsts_valid(page)
    results = ["cookies-secure-with-httponly-sessions-and-samesite"]
    for cookie, over_tls in pairs:
        secure = cookie.secure and over_tls
        samesite = cookie.samesite.lower()
        if samesite and samesite not in ("strict", "lax", "none"):
            results.append("cookies-samesite-flag-invalid")
        if samesite in ("", "none"):
            results.append(
                "cookies-anticsrf-without-samesite-flag"
                if cookie.anticsrf
                else "cookies-secure-with-httponly-sessions"
            )
        if cookie.session:
            if not secure:
                results.append(
                    "cookies-session-without-secure-flag-but-protected-by-hsts"
                    if hsts and over_tls
                    else "cookies-session-without-secure-flag"
                )
            if not cookie.httponly:
                results.append("cookies-session-without-httponly-flag")
        elif not secure:
            results.append(
                "cookies-without-secure-flag-but-protected-by-hsts"
                if hsts and over_tls
                else "cookies-without-secure-flag"
            )
    worst = min(results, key=lambda r: SCORE_TABLE[r])
    return _test(name, worst)


def _redirection_test(facts: WebFacts) -> ObservatoryTest:
    name = "redirection"
    if facts.start_scheme == "https":
        return _test(
            name,
            "redirection-not-assessed-scan-started-on-https",
            "the scan started on https, so the cleartext side was not requested here",
        )
    first = facts.hops[0]
    if first.status not in (301, 302, 303, 307, 308) or not first.location:
        return _test(name, "redirection-missing")
    if not facts.ends_at_https:
        return _test(name, "redirection-not-to-https")
    initial = urlsplit(first.location)
    if initial.scheme.lower() != "https":
        return _test(name, "redirection-not-to-https-on-initial-redirection")
    if (initial.hostname or "").lower() != (urlsplit(facts.start_url).hostname or "").lower():
        return _test(name, "redirection-off-host-from-http")
    return _test(name, "redirection-to-https")


def _referrer_test(page: WebResponse) -> ObservatoryTest:
    name = "referrer-policy"
    raw = page.header("referrer-policy")
    if not raw:
        return _test(name, "referrer-policy-not-implemented")
    policy = referrer_policy(raw)
    if policy in _PRIVATE_REFERRER:
        return _test(name, "referrer-policy-private")
    if policy in _UNSAFE_REFERRER:
        return _test(name, "referrer-policy-unsafe")
    return _test(name, "referrer-policy-header-invalid")


def _xcto_test(page: WebResponse) -> ObservatoryTest:
    name = "x-content-type-options"
    raw = page.header("x-content-type-options")
    if not raw:
        return _test(name, "x-content-type-options-not-implemented")
    if raw.strip().lower() == "nosniff":
        return _test(name, "x-content-type-options-nosniff")
    return _test(name, "x-content-type-options-header-invalid")


def _xfo_test(page: WebResponse) -> ObservatoryTest:
    name = "x-frame-options"
    csp = parse_csp(page.header("content-security-policy") or "") or {}
    if "frame-ancestors" in csp:
        return _test(name, "x-frame-options-implemented-via-csp")
    raw = page.header("x-frame-options").strip().lower()
    if not raw:
        return _test(name, "x-frame-options-not-implemented")
    if raw in ("deny", "sameorigin"):
        return _test(name, "x-frame-options-sameorigin-or-deny")
    if raw.startswith("allow-from "):
        return _test(name, "x-frame-options-allow-from-origin")
    return _test(name, "x-frame-options-header-invalid")


def _corp_test(page: WebResponse) -> ObservatoryTest:
    name = "cross-origin-resource-policy"
    raw = page.header("cross-origin-resource-policy").strip().lower()
    if not raw:
        return _test(name, "cross-origin-resource-policy-not-implemented")
    table = {
        "same-origin": "cross-origin-resource-policy-implemented-with-same-origin",
        "same-site": "cross-origin-resource-policy-implemented-with-same-site",
        "cross-origin": "cross-origin-resource-policy-implemented-with-cross-origin",
    }
    return _test(name, table.get(raw, "cross-origin-resource-policy-header-invalid"))


def _cors_test(page: WebResponse, probe_origin: str) -> ObservatoryTest:
    name = "cross-origin-resource-sharing"
    acao = page.header("access-control-allow-origin").strip()
    note = "crossdomain.xml and clientaccesspolicy.xml are not fetched"
    if not acao:
        return _test(name, "cross-origin-resource-sharing-not-implemented", note)
    if acao == "*":
        return _test(name, "cross-origin-resource-sharing-implemented-with-public-access", note)
    credentials = page.header("access-control-allow-credentials").strip().lower() == "true"
    if acao == probe_origin and credentials:
        return _test(name, "cross-origin-resource-sharing-implemented-with-universal-access", note)
    return _test(name, "cross-origin-resource-sharing-implemented-with-restricted-access", note)


def _sri_test(page: WebResponse) -> ObservatoryTest:
    name = "subresource-integrity"
    if "html" not in page.content_type.lower() and not page.forms and not page.scripts:
        return _test(name, "sri-not-implemented-response-not-html")
    if not page.scripts:
        return _test(name, "sri-not-implemented-but-no-scripts-loaded")
    origin = urlsplit(page.url)
    external = [
        s for s in page.scripts if (urlsplit(s.src).hostname or "") != (origin.hostname or "")
    ]
    if not external:
        if any(s.integrity for s in page.scripts):
            return _test(name, "sri-implemented-and-all-scripts-loaded-securely")
        return _test(name, "sri-not-implemented-but-all-scripts-loaded-from-secure-origin")
    insecure = any(urlsplit(s.src).scheme.lower() != "https" for s in external)
    with_sri = all(s.integrity for s in external)
    if insecure:
        return _test(
            name,
            "sri-implemented-but-external-scripts-not-loaded-securely"
            if with_sri
            else "sri-not-implemented-and-external-scripts-not-loaded-securely",
        )
    if with_sri:
        return _test(name, "sri-implemented-and-external-scripts-loaded-securely")
    return _test(name, "sri-not-implemented-but-external-scripts-loaded-securely")


def score(facts: WebFacts, probe_origin: str) -> ObservatoryScore | None:
    """The grade of the final page of the walk; None when there is no final 2xx page (the
    Observatory refuses to grade those too)."""
    page = facts.final
    if page is None or not 200 <= page.status < 300:
        return None
    tests = (
        _csp_test(page),
        _cookies_test(facts, page),
        _cors_test(page, probe_origin),
        _redirection_test(facts),
        _referrer_test(page),
        _hsts_test(page),
        _sri_test(page),
        _xcto_test(page),
        _xfo_test(page),
        _corp_test(page),
    )
    with_bonus = 100 + sum(t.modifier for t in tests)
    uncurved = 100 + sum(t.modifier for t in tests if t.modifier < 0)
    bonus = uncurved >= MINIMUM_SCORE_FOR_BONUS
    final = max(with_bonus if bonus else uncurved, 0)
    return ObservatoryScore(final, grade_for(final), uncurved, bonus, tests, page.url)
