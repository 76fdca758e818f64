"""Report renderers: JSON against its published schema, HTML self-contained and escaped,
Markdown tables intact, secrets masked in every format, output stable (golden files).

The golden files in tests/golden/ are the HTML and Markdown of tests.sample_assessment. After
an intended change of a template, regenerate them and review the diff before committing:

    python -m tests.sample_assessment --write-golden
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
from datetime import UTC, datetime, timedelta, timezone
from html.parser import HTMLParser
from pathlib import Path

import jsonschema
import pytest

from reports._common import iso_utc, pct
from reports.assessment import Assessment, Counts, json_schema, load
from reports.html_report import PRINT_SCRIPT, HtmlReporter
from reports.json_report import JsonReporter
from reports.markdown_report import MarkdownReporter, fence, inline
from scanner.model import Severity, Status
from scanner.plugins import Reporter, load_registry
from tests.sample_assessment import (
    HOSTILE,
    SECRET,
    VARIANTS,
    Variant,
    golden_path,
    render_golden,
    sample_assessment,
)

ROOT = Path(__file__).resolve().parent.parent
SCHEMA_FILE = ROOT / "reports" / "schema" / "assessment.schema.json"
REPORTERS: list[Reporter] = [JsonReporter(), HtmlReporter(), MarkdownReporter()]
SEVERITY_RANK = {s.value: s.rank for s in Severity}


def _hostile_doc() -> Assessment:
    """The sample with attacker-controlled markup (a script, an image with an external URL, an
    attribute breakout) in a message, evidence, the unit name and the inventory name, and raw
    secrets in the free-text fields the runner masks (message, discovery warning, probe log)."""
    doc = sample_assessment()
    evil = f'{HOSTILE}<img src="https://192.0.2.99/x.png"> " onmouseover="alert(2)'
    unit = doc.units[0]
    first = doc.outcomes[0]
    outcomes = [
        first.model_copy(
            update={
                "message": f"{evil} password={SECRET}",
                "evidence": {"banner": evil, "nested": {"token": SECRET}},
            }
        ),
        *doc.outcomes[1:],
    ]
    disc = unit.discovery
    assert disc is not None
    unit = unit.model_copy(
        update={
            "name": evil,
            "discovery": disc.model_copy(update={"warnings": [f"saw masterauth {SECRET}"]}),
        }
    )
    return doc.model_copy(
        update={
            "units": [unit],
            "outcomes": outcomes,
            "active_probes": [f"AUTH tried: requirepass {SECRET}"],
            "inventory": evil,
        }
    )


# -- JSON ------------------------------------------------------------------------------------
def test_published_schema_is_current() -> None:
    published = json.loads(SCHEMA_FILE.read_text(encoding="utf-8"))
    assert published == json_schema(), (
        "reports/schema/assessment.schema.json is out of date with reports.assessment; "
        "regenerate it with: python -m reports.assessment > reports/schema/assessment.schema.json"
    )


@pytest.mark.parametrize("variant", VARIANTS)
def test_json_validates_against_published_schema(variant: Variant) -> None:
    schema = json.loads(SCHEMA_FILE.read_text(encoding="utf-8"))
    jsonschema.Draft202012Validator.check_schema(schema)
    validator = jsonschema.Draft202012Validator(schema)
    text = JsonReporter().render(sample_assessment(variant))
    doc = json.loads(text)
    errors = sorted(validator.iter_errors(doc), key=str)
    assert not errors, errors[0]
    assert load(text).scan_id == doc["scan_id"]  # the reader takes back what was written

    # the schema has teeth: a wrong status and a missing field are both refused
    doc["outcomes"][0]["status"] = "maybe"
    assert not validator.is_valid(doc)
    doc = json.loads(text)
    del doc["outcomes"][0]["fingerprint"]
    assert not validator.is_valid(doc)


def test_json_is_the_canonical_document() -> None:
    """JSON output is to_json() of the (masked) document: nothing added, nothing dropped."""
    doc = sample_assessment()
    out = json.loads(JsonReporter().render(doc))
    ref = json.loads(doc.to_json())
    assert out.keys() == ref.keys()
    assert len(out["outcomes"]) == len(ref["outcomes"])
    for a, b in zip(out["outcomes"], ref["outcomes"], strict=True):
        assert {k: v for k, v in a.items() if k != "evidence"} == {
            k: v for k, v in b.items() if k != "evidence"
        }
    assert out["units"] == ref["units"]


# -- masking ---------------------------------------------------------------------------------
@pytest.mark.parametrize("reporter", REPORTERS, ids=lambda r: r.format)
@pytest.mark.parametrize("variant", VARIANTS)
def test_secret_never_appears(reporter: Reporter, variant: Variant) -> None:
    doc = sample_assessment(variant)
    assert SECRET in doc.to_json(), "the sample must carry the secret, or this test proves nothing"
    text = reporter.render(doc)
    assert SECRET not in text
    assert "requirepass ****" in text  # masked where it was, not dropped


@pytest.mark.parametrize("reporter", REPORTERS, ids=lambda r: r.format)
def test_secret_in_free_text_is_masked_too(reporter: Reporter) -> None:
    text = reporter.render(_hostile_doc())
    assert SECRET not in text
    assert "masterauth ****" in text and "password=****" in text


# -- HTML ------------------------------------------------------------------------------------
_URL_ATTRS = {"src", "href", "srcset", "action", "formaction", "data", "poster", "background"}
_FORBIDDEN_TAGS = {"link", "img", "iframe", "object", "embed", "base", "audio", "video", "form"}


class _Page(HTMLParser):
    """Collects what a browser could load or run from the page."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[str] = []
        self.attrs: list[tuple[str, str, str]] = []
        self.scripts: list[tuple[dict[str, str | None], str]] = []
        self.styles: list[str] = []
        self._open: str | None = None
        self._attrs: dict[str, str | None] = {}
        self._text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        self.attrs.extend((tag, name, value or "") for name, value in attrs)
        if tag in ("script", "style"):
            self._open, self._attrs, self._text = tag, dict(attrs), []

    def handle_data(self, data: str) -> None:
        if self._open:
            self._text.append(data)

    def handle_endtag(self, tag: str) -> None:
        if tag == self._open == "script":
            self.scripts.append((self._attrs, "".join(self._text)))
        elif tag == self._open == "style":
            self.styles.append("".join(self._text))
        if tag == self._open:
            self._open = None


def _page(html: str) -> _Page:
    p = _Page()
    p.feed(html)
    p.close()
    return p


@pytest.mark.parametrize("doc", [*VARIANTS, "hostile"])
def test_html_is_self_contained(doc: str) -> None:
    assessment = _hostile_doc() if doc == "hostile" else sample_assessment(doc)  # type: ignore[arg-type]
    p = _page(HtmlReporter().render(assessment))
    assert not _FORBIDDEN_TAGS & set(p.tags), "the report must not embed or link resources"
    for tag, name, value in p.attrs:
        if name in _URL_ATTRS or name.endswith(":href"):
            assert value.startswith("#"), f"<{tag} {name}={value!r}> points outside the page"
        assert "://" not in value and "url(" not in value.lower(), (tag, name, value)
        assert not name.startswith("on"), f"event handler attribute on <{tag}>"
    css = "\n".join(p.styles) + "\n".join(v for _, n, v in p.attrs if n == "style")
    for bad in ("url(", "@import", "@font-face", "://"):
        assert bad not in css.lower(), f"{bad} in the report's CSS"
    assert "position: fixed" not in css and "position:fixed" not in css
    assert len(p.scripts) == 1 and p.scripts[0] == ({}, PRINT_SCRIPT), "one fixed inline script"


def test_html_content_security_policy_allows_only_the_print_script() -> None:
    p = _page(HtmlReporter().render(sample_assessment()))
    csp = [v for t, n, v in p.attrs if t == "meta" and n == "content" and "default-src" in v]
    assert len(csp) == 1
    assert "default-src 'none'" in csp[0]
    digest = base64.b64encode(hashlib.sha256(PRINT_SCRIPT.encode()).digest()).decode()
    assert f"script-src 'sha256-{digest}'" in csp[0]
    assert "unsafe-eval" not in csp[0] and "script-src 'unsafe-inline'" not in csp[0]


def test_html_escapes_hostile_text() -> None:
    html = HtmlReporter().render(_hostile_doc())
    assert HOSTILE not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "<img" not in html and 'onmouseover="' not in html
    # the hostile text is shown where it arrived: message, evidence, unit name, inventory
    assert html.count("&lt;script&gt;alert(1)&lt;/script&gt;") >= 5


def _findings_rows(html: str) -> list[str]:
    table = html.split('<table class="findings">', 1)[1].split("</table>", 1)[0]
    return table.split('<tr id="finding-')[1:]


def test_html_content() -> None:
    doc = sample_assessment()
    html = HtmlReporter().render(doc)
    for text in (
        doc.scan_id,
        "2026-12-02T10:00:00Z",
        "2026-12-02T10:04:37Z",
        "assay 0.1.0",
        "demo.yaml",
        'class="badge state-complete">complete<',
        "Pass rate 27.3%</strong> = pass / (pass + fail) = 3 / (3 + 8)",
        "Coverage 78.6%</strong> = (pass + fail) / (total - not applicable) = (3 + 8) / (15 - 1)",
        doc.pass_rate_formula,
        "<svg",
        "acme.tls.legacy",  # broken plugin
        "uploaded /pub/.assay-probe-5d1c.txt",  # active probe
        '<code class="language-redis.conf">',
        "<details><summary>Evidence</summary>",
        "cwe CWE-306",
    ):
        assert text in html, text
    assert "nmap was not available" not in html
    assert "This scan is" not in html and "--resume" not in html

    rows = _findings_rows(html)
    fails = [o for o in doc.outcomes if o.status is Status.FAIL]
    assert len(rows) == len(fails)
    ranks = [SEVERITY_RANK[re.findall(r'class="badge sv-(\w+)"', r)[0]] for r in rows]
    assert ranks == sorted(ranks, reverse=True), "critical first, info last"
    assert ranks[0] == Severity.CRITICAL.rank

    # every outcome appears in its target's section, with its status as text and colour
    targets = html.split("<h3>Targets</h3>", 1)[1].split("<h3>Not assessed / errors", 1)[0]
    assert targets.count('<tr><td><span class="badge st-') == len(doc.outcomes)
    assert targets.index("Host 192.0.2.10") < targets.index("192.0.2.10:21/tcp (ftp)")
    assert targets.index("192.0.2.10:23/tcp") < targets.index("Host 192.0.2.11")
    for status in Status:
        assert f'class="badge st-{status.value}">' in html

    problems = html.split("<h3>Not assessed / errors (3)</h3>", 1)[1].split("</table>", 1)[0]
    assert "check raised KeyError" in problems
    assert "no collector for this kind of document store" in problems
    assert problems.count("<tr><td>") == 3


def test_html_fallback_and_interrupted_notices() -> None:
    html = HtmlReporter().render(sample_assessment("fallback"))
    assert (
        "nmap was not available: services were found with a TCP connect scan, without version "
        "detection"
    ) in html
    assert "discovery warning: nmap not found on PATH" in html
    assert 'class="badge state-interrupted">interrupted<' in html
    assert "assay scan --resume 20261202T100000Z-4f1c2a" in html
    assert "/srv/share: pending" in html and "Finished</th><td>not finished" in html


def test_html_prints_cleanly() -> None:
    css = "\n".join(_page(HtmlReporter().render(sample_assessment())).styles)
    media = css.split("@media print", 1)[1]
    assert "section.unit + section.unit" in media and "break-before: page" in media
    assert "break-inside: avoid" in media and "position: static" in media


# -- Markdown --------------------------------------------------------------------------------
_UNESCAPED_PIPE = re.compile(r"(?<!\\)\|")


def _outside_fences(md: str) -> list[str]:
    lines, fence_open = [], ""
    for line in md.split("\n"):
        if fence_open:
            fence_open = "" if line == fence_open else fence_open
        elif m := re.match(r"`{3,}", line):
            fence_open = m.group(0)
        else:
            lines.append(line)
    return lines


@pytest.mark.parametrize("doc", [*VARIANTS, "hostile"])
def test_markdown_tables_are_intact(doc: str) -> None:
    assessment = _hostile_doc() if doc == "hostile" else sample_assessment(doc)  # type: ignore[arg-type]
    lines = _outside_fences(MarkdownReporter().render(assessment))
    tables = 0
    for i, line in enumerate(lines):
        if re.fullmatch(r"\|(\s*-+:?\s*\|)+", line.replace("---:", "---")):
            tables += 1
            columns = len(_UNESCAPED_PIPE.findall(line))
            assert len(_UNESCAPED_PIPE.findall(lines[i - 1])) == columns
            j = i + 1
            while j < len(lines) and lines[j].startswith("|"):
                assert len(_UNESCAPED_PIPE.findall(lines[j])) == columns, lines[j]
                j += 1
            assert j == len(lines) or lines[j] == "", f"a cell broke its row: {lines[j]!r}"
    assert tables >= 8


def test_markdown_escapes_markup_outside_code() -> None:
    md = MarkdownReporter().render(_hostile_doc())
    prose = "\n".join(_outside_fences(md))
    raw_tags = set(re.findall(r"(?<!\\)</?(\w+)", prose))
    assert raw_tags == {"br"}, "only the reporter's own line breaks may be raw HTML"
    assert "\\<script\\>alert(1)\\</script\\>" in prose
    assert "check raised KeyError: 'auth_tls'<br>(while reading the FEAT reply)" in prose
    assert HOSTILE in md  # evidence keeps the raw bytes, but only inside a code fence


def test_markdown_content() -> None:
    md = MarkdownReporter().render(sample_assessment())
    for text in (
        "# Assay assessment 20261202T100000Z-4f1c2a",
        "| Started | 2026-12-02T10:00:00Z |",
        "| State | **complete** |",
        "- **Pass rate 27.3%** = pass / (pass + fail) = 3 / (3 + 8)",
        "#### 1. [CRITICAL] FTP server refuses anonymous uploads",
        "```redis.conf\nrequirepass <a long random secret>",
        "### Not assessed / errors (3)",
        "| assay.checks | `acme.tls.legacy` |",
        "## Active probes performed (2)",
    ):
        assert text in md, text
    headings = re.findall(r"^#### \d+\. \[(\w+)\]", md, flags=re.M)
    ranks = [SEVERITY_RANK[h.lower()] for h in headings]
    assert ranks == sorted(ranks, reverse=True) and len(ranks) == 8
    assert "nmap was not available" not in md
    fb = MarkdownReporter().render(sample_assessment("fallback"))
    assert "> **nmap was not available: services were found with a TCP connect scan" in fb
    assert "This scan is interrupted" in fb


def test_markdown_helpers() -> None:
    assert inline("a|b\nc <x> [l](u) `c`") == "a\\|b<br>c \\<x\\> \\[l\\](u) \\`c\\`"
    assert inline("2 fail, ") == "2 fail, "  # separators keep their spaces
    block = fence("x ```` y", "sh; rm")
    assert block.startswith("`````shrm\n") and block.endswith("\n`````")


# -- shared behaviour ------------------------------------------------------------------------
@pytest.mark.parametrize("path", sorted(render_golden()), ids=lambda p: p.name)
def test_golden(path: Path) -> None:
    expected = render_golden()[path]
    assert path.is_file(), (
        "missing golden file: run python -m tests.sample_assessment --write-golden"
    )
    assert path.read_text(encoding="utf-8") == expected, (
        f"{path.name} differs from the renderer's output. If the change is intended, run "
        "python -m tests.sample_assessment --write-golden and review the diff."
    )


def test_golden_paths_are_the_variants() -> None:
    assert {golden_path(v, e) for v in VARIANTS for e in ("html", "md")} == set(render_golden())


@pytest.mark.parametrize("reporter", [HtmlReporter(), MarkdownReporter()], ids=lambda r: r.format)
def test_output_does_not_depend_on_document_order(reporter: Reporter) -> None:
    doc = sample_assessment()
    shuffled = doc.model_copy(
        update={
            "outcomes": list(reversed(doc.outcomes)),
            "units": [
                u.model_copy(update={"targets": list(reversed(u.targets))}) for u in doc.units
            ],
        }
    )
    assert reporter.render(shuffled) == reporter.render(doc)


def test_numbers_and_times() -> None:
    assert pct(None) == "n/a" and pct(0.42857) == "42.9%" and pct(1.0) == "100.0%"
    assert iso_utc(datetime(2026, 1, 2, 3, 4, 5)) == "2026-01-02T03:04:05Z"
    plus7 = datetime(2026, 1, 2, 10, 4, 5, tzinfo=timezone(timedelta(hours=7)))
    assert iso_utc(plus7) == "2026-01-02T03:04:05Z"
    assert iso_utc(None) == "not finished"


@pytest.mark.parametrize("reporter", [HtmlReporter(), MarkdownReporter()], ids=lambda r: r.format)
def test_nothing_assessed_shows_na(reporter: Reporter) -> None:
    doc = sample_assessment()
    only_na = [o for o in doc.outcomes if o.status is Status.NOT_APPLICABLE]
    c = Counts.of(o.status for o in only_na)
    unit = doc.units[0].model_copy(
        update={"counts": c, "pass_rate": c.pass_rate, "coverage": c.coverage, "targets": []}
    )
    text = reporter.render(doc.model_copy(update={"outcomes": only_na, "units": [unit]}))
    assert "Pass rate n/a" in text and "Coverage n/a" in text
    assert "No failed checks." in text


def test_reporters_are_registered_and_write_files(tmp_path: Path) -> None:
    reg = load_registry()
    doc = sample_assessment()
    for fmt, cls in (("json", JsonReporter), ("html", HtmlReporter), ("md", MarkdownReporter)):
        reporter = reg.reporters[fmt]
        assert isinstance(reporter, cls) and reporter.extension == fmt
        path = reporter.write(doc, tmp_path)
        assert path == tmp_path / f"assessment.{fmt}"
        assert path.read_text(encoding="utf-8") == reporter.render(doc)


def test_sample_covers_every_status_and_severity() -> None:
    doc = sample_assessment()
    assert {o.status for o in doc.outcomes} == set(Status)
    assert {o.severity for o in doc.outcomes} == set(Severity)
    assert {o.target.service.name for o in doc.outcomes if o.target.service} == {
        "ftp",
        "telnet",
        "redis",
        "http",
    }
    assert doc.started_at.tzinfo is UTC
