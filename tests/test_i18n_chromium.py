"""The Vietnamese and German HTML reports as a reader sees them: opened from file:// in Debian's
headless Chromium (tests/cdp_pipe.py), asserted on the rendered text, with every request the
browser makes recorded. The English page is tested in tests/test_html_chromium.py."""

from __future__ import annotations

import shutil
import unicodedata
from collections.abc import Iterator
from pathlib import Path

import pytest

from reports.diff import with_diff
from reports.html_report import HtmlReporter
from reports.i18n import use_language
from tests.cdp_pipe import Browser
from tests.report_samples import export_sample, older_scan, rescan

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = [
    pytest.mark.real,
    pytest.mark.skipif(CHROMIUM is None, reason="needs Debian's chromium package"),
]
EXPECTED = {
    "vi": {
        "title": "Đánh giá Assay 20261209T100000Z-77aa01",
        "texts": (
            "Thay đổi so với lần quét trước",
            "Phát hiện mới (1)",
            "Phát hiện đã khắc phục (2)",
            "Kế hoạch khắc phục",
            "Bước 1: Sửa cấu hình sshd_config",
            "Chưa đánh giá / lỗi",
            "Tỷ lệ đạt",
            "Mục lục",
            "lần đầu phát hiện không đạt",  # why a finding is new, from the comparison
            "+3.6 điểm",  # the change of the pass rate
        ),
        "worst": "cao",
    },
    "de": {
        "title": "Assay-Bewertung 20261209T100000Z-77aa01",
        "texts": (
            "Änderungen seit dem letzten Scan",
            "Neue Befunde (1)",
            "Behobene Befunde (2)",
            "Maßnahmenplan",
            "Schritt 1: Konfiguration sshd_config ändern",
            "Nicht bewertet / Fehler",
            "Bestehensquote",
            "Inhalt",
            "erstmals fehlgeschlagen",
            "+3.6 Punkte",
        ),
        "worst": "hoch",
    },
}


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
    base = tmp_path_factory.mktemp("html-i18n")
    doc = with_diff(rescan(), export_sample(), [older_scan()])
    out = {}
    for lang in EXPECTED:
        with use_language(lang):
            text = HtmlReporter().render(doc)
        path = base / f"rescan.{lang}.html"
        path.write_text(text, encoding="utf-8")
        out[lang] = path
    return out


@pytest.mark.parametrize("lang", sorted(EXPECTED))
def test_rendered_report_in_language(browser: Browser, pages: dict[str, Path], lang: str) -> None:
    want = EXPECTED[lang]
    page = pages[lang]
    browser.navigate(page.as_uri())
    urls = browser.requested_urls()
    assert page.as_uri() in urls and all(u.startswith("file://") for u in urls), urls
    assert browser.evaluate("document.documentElement.lang") == lang
    assert browser.evaluate("document.characterSet") == "UTF-8"
    assert browser.evaluate("document.title") == want["title"]
    text = browser.evaluate("document.body.innerText")
    assert unicodedata.is_normalized("NFC", text)
    for expected in want["texts"]:
        assert expected in text, expected
    for english in ("Remediation plan", "Changes since the previous scan", "Not assessed / errors"):
        assert english not in text, english
    # the badges keep their colour classes and show the translated severity
    first = browser.evaluate("document.querySelector('table.findings tbody tr .badge').textContent")
    assert first == want["worst"]
    colour = browser.evaluate(
        "getComputedStyle(document.querySelector('table.findings .badge.sv-high')).backgroundColor"
    )
    assert colour == "rgb(198, 40, 40)"
    # the status bar's accessible label is translated too
    label = browser.evaluate(
        "document.querySelector('section.unit svg').getAttribute('aria-label')"
    )
    assert label.startswith(
        {"vi": "kết quả theo trạng thái: ", "de": "Ergebnisse nach Status: "}[lang]
    )
    assert browser.problems() == []  # no CSP violation, no failed load, no script error
