"""The scores section of the HTML and Markdown reports: the three numbers with their formula,
the control tree, waivers by state; hostile text in a waiver stays text; the document with
scores validates against the published assessment schema."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema

from reports.assessment import Assessment
from reports.html_report import HtmlReporter
from reports.markdown_report import MarkdownReporter
from tests.sample_assessment import sample_assessment
from tests.test_policies_scoring import WAIVERS, _score

ROOT = Path(__file__).resolve().parent.parent
HOSTILE = "<script>alert(1)</script> | broken"


def _doc() -> Assessment:
    text = WAIVERS.replace("legacy FTP until the migration", HOSTILE)
    result, *_ = _score(waivers=text)
    return sample_assessment("nmap").model_copy(update={"policies": result})


def test_html_scores_section() -> None:
    html = HtmlReporter().render(_doc())
    section = html[html.index('<section id="scores">') :]
    section = section[: section.index("</section>")]
    assert "pass rate <strong>100.0%</strong> = 1 / (1 + 0)" in section
    assert "weighted <strong>100.00</strong> = 100 &times; 2.0 / 2.0" in section
    assert "coverage <strong>60.0%</strong> = (1 + 0 + 2) / (5 - 0)" in section
    assert "pass rate without waivers 33.3%" in section
    assert "Formula: pass rate = passed / (passed + failed)" in section
    assert "<strong>active</strong>, 1 failure(s)" in section
    assert "<strong>unmatched</strong>, 0 failure(s)" in section
    assert "needs attestation: a signed security regulation exists" in section
    assert "<script>" not in section and "&lt;script&gt;" in section


def test_markdown_scores_section() -> None:
    md = MarkdownReporter().render(_doc())
    section = md[md.index("## Policy scores") : md.index("\n## Unit ")]
    assert "| t-pack 1.0.0 (Test framework; identifiers unverified) | 2 | 100.0% |" in section
    assert "grade **C**" in section and "coverage 60.0% is below 80%" in section
    rows = [ln for ln in section.splitlines() if ln.startswith("| `C")]
    assert len(rows) == 5 and all(r.count(" | ") == 5 for r in rows)
    assert "<script>" not in section


def test_no_policy_no_section() -> None:
    doc = sample_assessment("nmap")
    assert "Policy scores" not in HtmlReporter().render(doc)
    assert "Policy scores" not in MarkdownReporter().render(doc)


def test_scored_document_validates_against_published_schema() -> None:
    schema = json.loads((ROOT / "reports" / "schema" / "assessment.schema.json").read_text())
    jsonschema.validate(json.loads(_doc().to_json()), schema)
