"""The HTML report as a reader sees it: opened from file:// in Debian's headless Chromium
(driven over the DevTools pipe, tests/cdp_pipe.py), asserted on the rendered page, with every
request the browser makes recorded, and printed to PDF."""

from __future__ import annotations

import base64
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from reports.diff import with_diff
from reports.html_report import HtmlReporter
from tests.cdp_pipe import Browser
from tests.report_samples import export_sample, older_scan, rescan
from tests.sample_assessment import HOSTILE, SECRET

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = [
    pytest.mark.real,
    pytest.mark.skipif(CHROMIUM is None, reason="needs Debian's chromium package"),
]


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    b = Browser(CHROMIUM or "")
    try:
        b.open_page()
        yield b
    finally:
        b.close()


@pytest.fixture(scope="module")
def pages(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    from tests.test_reports import _hostile_doc

    base = tmp_path_factory.mktemp("html")
    docs = {
        "rescan": with_diff(rescan(), export_sample(), [older_scan()]),
        "hostile": _hostile_doc(),
    }
    out = {}
    for name, doc in docs.items():
        path = base / f"{name}.html"
        path.write_text(HtmlReporter().render(doc), encoding="utf-8")
        out[name] = path
    return out


def _only_file_urls(b: Browser, page: Path) -> None:
    urls = b.requested_urls()
    assert page.as_uri() in urls
    assert all(u.startswith("file://") for u in urls), urls


def test_rendered_overview_findings_plan_and_diff(browser: Browser, pages: dict[str, Path]) -> None:
    page = pages["rescan"]
    browser.navigate(page.as_uri())
    _only_file_urls(browser, page)
    assert browser.evaluate("document.title") == "Assay assessment 20261209T100000Z-77aa01"
    text = browser.evaluate("document.body.innerText")
    for expected in (
        "Changes since the previous scan",
        "New findings (1)",
        "Fixed findings (2)",
        "Severity changes (1)",
        "Remediation plan",
        "Step 1: Change the sshd_config configuration",
        "Not assessed / errors",
        "Pass rate",
    ):
        assert expected in text, expected
    # the status bar is drawn: inline SVG, one rectangle per non-empty status, 18 px high
    heights = browser.evaluate(
        "[...document.querySelectorAll('section.unit svg rect')]"
        ".map(r => r.getBoundingClientRect().height)"
    )
    assert len(heights) >= 4 and set(heights) == {18}
    # findings are laid out and visible, worst first
    first = browser.evaluate("document.querySelector('table.findings tbody tr .badge').textContent")
    assert first == "high"  # the rescan's worst: its critical findings were fixed or errored
    hidden = browser.evaluate(
        "[...document.querySelectorAll('table.findings tbody tr')]"
        ".filter(r => r.getBoundingClientRect().height === 0).length"
    )
    assert hidden == 0
    # in-page links only: the plan's step link scrolls to its step
    hrefs = browser.evaluate("[...document.querySelectorAll('a[href]')].map(a => a.href)")
    assert hrefs and all(h.startswith(page.as_uri() + "#") for h in hrefs)
    browser.evaluate("document.querySelector('table.plan a[href=\"#step-1\"]').click()")
    assert browser.evaluate("location.hash") == "#step-1"
    # evidence is folded, and unfolds before printing (the one script the CSP allows)
    assert browser.evaluate("[...document.querySelectorAll('details[open]')].length") == 0
    browser.evaluate("window.dispatchEvent(new Event('beforeprint'))")
    closed = "[...document.querySelectorAll('details')].filter(d => !d.open).length"
    assert browser.evaluate(closed) == 0
    assert browser.problems() == []  # no CSP violation, no failed load, no script error


def test_hostile_text_is_shown_not_run(browser: Browser, pages: dict[str, Path]) -> None:
    page = pages["hostile"]
    browser.navigate(page.as_uri())
    _only_file_urls(browser, page)  # the planted <img src="https://..."> is only text
    assert browser.evaluate("document.images.length") == 0
    assert browser.evaluate("document.scripts.length") == 1
    assert HOSTILE in browser.evaluate("document.body.innerText")
    assert SECRET not in browser.evaluate("document.documentElement.outerHTML")
    assert browser.problems() == []


def test_prints_to_pdf(browser: Browser, pages: dict[str, Path]) -> None:
    browser.navigate(pages["rescan"].as_uri())
    pdf = browser.send("Page.printToPDF", {"printBackground": True})
    data = base64.b64decode(pdf["data"])
    assert data.startswith(b"%PDF-") and len(data) > 20_000
