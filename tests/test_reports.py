"""Reports: the JSON validates against the published schema; HTML is self-contained and safe
against hostile banners; secrets never appear in any format."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from html.parser import HTMLParser
from pathlib import Path

import jsonschema

from reports.assessment import (
    Assessment,
    Counts,
    DiscoveryDoc,
    TargetSummary,
    ToolInfo,
    UnitDoc,
    json_schema,
    outcome_doc,
)
from reports.html_report import HtmlReporter
from reports.json_report import JsonReporter
from reports.markdown_report import MarkdownReporter
from scanner.model import Outcome, Remediation, ServiceInfo, Severity, Status, Target, TargetKind
from scanner.model import fingerprint as fp

ROOT = Path(__file__).resolve().parent.parent
HOSTILE = "<script>alert(1)</script><img src=http://192.0.2.1/x.png>"
SECRET = "s3cr3t-Value-42"


def sample(state: str = "complete", fallback: bool = False) -> Assessment:
    svc = Target(
        kind=TargetKind.SERVICE,
        unit="demo",
        address="127.70.0.2",
        port=6379,
        service=ServiceInfo(name="redis", product=HOSTILE),
    )
    outs = []
    for status, sev, cid in [
        (Status.FAIL, Severity.CRITICAL, "net.redis.no_auth"),
        (Status.PASS, Severity.HIGH, "net.telnet.present"),
        (Status.ERROR, Severity.LOW, "net.ftp.banner_version"),
        (Status.NOT_ASSESSED, Severity.CRITICAL, "net.ftp.anonymous_write"),
    ]:
        outs.append(
            outcome_doc(
                Outcome(
                    scan_id="s1",
                    unit="demo",
                    check_id=cid,
                    title=f"title of {cid}",
                    status=status,
                    severity=sev,
                    target=svc,
                    message=f"banner {HOSTILE} | pipe",
                    evidence={"config": f"requirepass {SECRET}", "password": SECRET},
                    remediation=Remediation(
                        text="fix it", snippet="requirepass X", snippet_lang="redis.conf"
                    ),
                    fingerprint=fp(cid, svc.key),
                )
            )
        )
    counts = Counts.of(o.status for o in outs)
    unit = UnitDoc(
        id="demo",
        name="Demo unit",
        discovery=DiscoveryDoc(
            engine="connect" if fallback else "nmap 7.93",
            fallback=fallback,
            warnings=["nmap not found on PATH"] if fallback else [],
        ),
        counts=counts,
        pass_rate=counts.pass_rate,
        coverage=counts.coverage,
        targets=[
            TargetSummary(
                key=svc.key, kind=svc.kind, label=svc.label, state="done", counts=counts,
                pass_rate=counts.pass_rate, coverage=counts.coverage,
            )
        ],
    )  # fmt: skip
    return Assessment(
        scan_id="s1",
        tool=ToolInfo(version="0.1.0"),
        started_at=datetime(2026, 12, 2, 10, 0, tzinfo=UTC),
        finished_at=datetime(2026, 12, 2, 10, 5, tzinfo=UTC),
        state=state,  # type: ignore[arg-type]
        units=[unit],
        outcomes=outs,
    )


def test_published_schema_is_current() -> None:
    published = json.loads((ROOT / "reports" / "schema" / "assessment.schema.json").read_text())
    assert published == json_schema(), (
        "regenerate: python -m reports.assessment > reports/schema/assessment.schema.json"
    )


def test_json_validates_and_masks() -> None:
    text = JsonReporter().render(sample())
    doc = json.loads(text)
    jsonschema.validate(doc, json_schema())
    assert SECRET not in text
    o = doc["outcomes"][0]
    for key in ("check_id", "title", "status", "severity", "target", "message", "evidence",
                "remediation", "fingerprint"):  # fmt: skip
        assert key in o
    # a document that breaks the schema is caught by it
    doc["outcomes"][0]["status"] = "maybe"
    try:
        jsonschema.validate(doc, json_schema())
    except jsonschema.ValidationError:
        pass
    else:
        raise AssertionError("schema accepted an unknown status")


class _Resources(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []
        self.scripts = 0
        self.style = ""
        self._in_style = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "script":
            self.scripts += 1
        self._in_style = tag == "style"
        for name, value in attrs:
            if name in ("src", "href", "action", "srcset", "data", "poster") and value:
                self.urls.append(value)
            if name == "style" and value and "url(" in value:
                self.urls.append(value)

    def handle_data(self, data: str) -> None:
        if self._in_style:
            self.style += data

    def handle_endtag(self, tag: str) -> None:
        self._in_style = False


def test_html_is_self_contained_escaped_and_masked() -> None:
    html = HtmlReporter().render(sample())
    p = _Resources()
    p.feed(html)
    assert p.urls == [] and p.scripts == 0, "the report must load nothing"
    assert "url(" not in p.style and "@import" not in p.style
    assert "<script>alert(1)</script>" not in html and "&lt;script&gt;" in html
    assert SECRET not in html
    assert "Pass rate 50.0%" in html and "pass / (pass + fail)" in html
    assert "requirepass X" in html  # remediation snippet shown for the failure


def test_html_shows_fallback_and_interrupted_notices() -> None:
    html = HtmlReporter().render(sample(state="interrupted", fallback=True))
    assert "nmap was not available" in html
    assert "did not complete" in html and "--resume s1" in html
    assert "nmap was not available" not in HtmlReporter().render(sample())


def test_markdown_escapes_cells_and_masks() -> None:
    md = MarkdownReporter().render(sample())
    assert SECRET not in md
    assert "<script>" not in md
    assert "\\| pipe" in md
    assert "## Unit Demo unit (demo)" in md and "[CRITICAL] title of net.redis.no_auth" in md


def test_output_is_deterministic() -> None:
    for r in (HtmlReporter(), MarkdownReporter(), JsonReporter()):
        assert r.render(sample()) == r.render(sample())
