"""The Mozilla HTTP Observatory grade of a site, with the points of each test."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from checks.web.common import BSI_WEBAPP, CIS_APPSEC, FACTS, ISO_APPSEC, both, web
from scanner.collectors.http import CORS_PROBE_ORIGIN
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
from scanner.observatory import GRADES, score
from scanner.plugins import Check, CheckMeta, FactsView

_ORDER = [g for _, g in GRADES]  # best first


class GradeParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    min_grade: str = Field(default="B", description="lowest passing grade (A+ ... F)")


class ObservatoryGrade(Check):
    meta = CheckMeta(
        id="web.observatory.grade",
        title="HTTP Observatory grade (Mozilla scoring) meets the required grade",
        target_kind=TargetKind.WEB,
        facts=(FACTS,),
        severity=Severity.MEDIUM,
        rationale=(
            "The Mozilla HTTP Observatory grade summarises a site's browser-side protections "
            "(CSP, HSTS, redirects, cookies, framing, MIME sniffing, referrer, CORS, "
            "subresource integrity, CORP) in one widely understood letter; Assay computes it "
            "with the published modifiers so units can compare and track it."
        ),
        remediation=Remediation(
            text=(
                "Fix the tests with negative points listed in the evidence; the web.headers.* "
                "and web.cookies.flags findings carry the individual fixes. A baseline that "
                "reaches A:"
            ),
            snippet=both(
                'add_header Strict-Transport-Security "max-age=63072000; includeSubDomains" '
                "always;\n"
                "add_header Content-Security-Policy \"default-src 'self'; object-src 'none'; "
                "frame-ancestors 'none'\" always;\n"
                'add_header X-Content-Type-Options "nosniff" always;\n'
                'add_header Referrer-Policy "strict-origin-when-cross-origin" always;',
                'Header always set Strict-Transport-Security "max-age=63072000; '
                'includeSubDomains"\n'
                "Header always set Content-Security-Policy \"default-src 'self'; "
                "object-src 'none'; frame-ancestors 'none'\"\n"
                'Header always set X-Content-Type-Options "nosniff"\n'
                'Header always set Referrer-Policy "strict-origin-when-cross-origin"',
            ),
            snippet_lang="nginx",
        ),
        references=(
            Reference(
                scheme="url", id="https://developer.mozilla.org/en-US/observatory/docs/scoring"
            ),
            ISO_APPSEC,
            CIS_APPSEC,
            BSI_WEBAPP,
        ),
        tags=("web", "headers", "grade"),
    )
    Params = GradeParams

    def evaluate(self, facts: FactsView, params: GradeParams) -> Result:
        f = web(facts)
        graded = score(f, CORS_PROBE_ORIGIN)
        if graded is None:
            status = f.final.status if f.final is not None else None
            return not_applicable(
                f"{f.start_url}: no 2xx final page to grade (final status {status}; "
                "the Observatory grades only pages that answer 2xx)",
                final_url=f.final_url,
            )
        ev: dict[str, Any] = graded.as_evidence()
        lost = [f"{t.name} {t.modifier:+d}" for t in graded.tests if t.modifier < 0]
        summary = f"grade {graded.grade} ({graded.score} points)"
        wanted = params.min_grade if params.min_grade in _ORDER else "B"
        if _ORDER.index(graded.grade) > _ORDER.index(wanted):
            return failed(
                f"{graded.url}: {summary}, below {wanted}; lost points: {', '.join(lost)}", **ev
            )
        return passed(f"{graded.url}: {summary}", **ev)
