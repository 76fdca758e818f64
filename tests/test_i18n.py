"""Report languages through gettext catalogues: English, Vietnamese and German; what a catalogue
does not translate falls back to English, and the untranslated strings are counted here.

Golden files tests/golden/sample-nmap.{vi,de}.{html,md} are the sample report in each language;
after an intended change of the templates or catalogues, rewrite them and review the diff:

    python -m tests.test_i18n --write-golden
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import unicodedata
from pathlib import Path

import pytest

import reports.i18n as i18n
from reports.csv_report import CsvReporter
from reports.html_report import HtmlReporter
from reports.i18n import LANGUAGES, LanguageError, gettext, untranslated, use_language
from reports.i18n.extract import check_strings, report_strings
from reports.markdown_report import MarkdownReporter
from reports.plan import PlanReporter
from scanner.plugins import Check
from tests.helpers import free_port, pick_loopback
from tests.report_samples import export_sample, stored_scans
from tests.sample_assessment import GOLDEN, HOSTILE, SECRET, sample_assessment

TEMPLATES = Path(i18n.__file__).resolve().parent.parent / "templates"
# Check titles and remediation texts without a translation, per language (they fall back to
# English). Every installed check is translated; the bound leaves room for a few checks that land
# before their translation, and no more: translate new checks' strings (python -m
# reports.i18n.extract, then edit the .po files) rather than raising it.
MAX_UNTRANSLATED_CHECK_STRINGS = {"vi": 12, "de": 12}
# words a template may show as they are: a hash name and the multiplication sign of a formula
TEMPLATE_LITERALS = {"sha256", "x"}
_PLACEHOLDER = re.compile(r"\{[a-z_]+\}|%\([a-z_]+\)s")


@pytest.mark.parametrize("lang", ["vi", "de"])
def test_every_report_string_is_translated(lang: str) -> None:
    todo, known = set(untranslated(lang)), _msgids(lang)
    missing = [s for s in report_strings() if s in todo]
    absent = [s for s in report_strings() if s not in known]
    print(
        f"{lang}: {len(missing) + len(absent)} of {len(report_strings())} report strings fall back"
    )
    assert not missing and not absent, (
        f"{lang}: add the translations (python -m reports.i18n.extract, then edit "
        f"reports/i18n/{lang}.po): {missing + absent}"
    )


def template_literals(path: Path) -> set[str]:
    """Words a template shows outside any expression: text that no catalogue can translate."""
    text = path.read_text(encoding="utf-8")
    for pattern in (r"\{#.*?#\}", r"\{\{.*?\}\}", r"\{%.*?%\}", r"<style>.*?</style>",
                    r"<script>.*?</script>", r"<[^>]*>", r"&[a-z]+;"):  # fmt: skip
        text = re.sub(pattern, " ", text, flags=re.S)
    return set(re.findall(r"[^\W\d_][\w-]*", text))


@pytest.mark.parametrize("path", sorted(TEMPLATES.glob("*.j2")), ids=lambda p: p.name)
def test_templates_have_no_literal_text(path: Path) -> None:
    assert template_literals(path) <= TEMPLATE_LITERALS, (
        f'{path.name}: wrap these in _("...") so they are translated: '
        f"{sorted(template_literals(path) - TEMPLATE_LITERALS)}"
    )


def test_the_literal_scan_finds_a_bare_word(tmp_path: Path) -> None:
    bad = tmp_path / "bad.html.j2"
    bad.write_text('<p>{{ _("Findings") }}: {{ n }} open</p>{# a comment #}\n', encoding="utf-8")
    assert template_literals(bad) == {"open"}


@pytest.mark.parametrize("lang", ["vi", "de"])
def test_translations_are_nfc_and_keep_their_placeholders(lang: str) -> None:
    from babel.messages.pofile import read_po

    with i18n.catalogue_path(lang).open("rb") as fh:
        catalog = read_po(fh, locale=lang)
    for m in catalog:
        if not m.id or not isinstance(m.string, str) or not m.string:
            continue
        where = f"{lang}.po, msgid {str(m.id)[:60]!r}"
        assert unicodedata.is_normalized("NFC", m.string), f"{where}: not NFC"
        assert sorted(_PLACEHOLDER.findall(m.string)) == sorted(_PLACEHOLDER.findall(str(m.id))), (
            f"{where}: the placeholders differ"
        )
        assert m.string == m.string.strip(), f"{where}: leading or trailing space"


def _msgids(lang: str) -> set[str]:
    from babel.messages.pofile import read_po

    with i18n.catalogue_path(lang).open("rb") as fh:
        return {str(m.id) for m in read_po(fh, locale=lang) if m.id}


@pytest.mark.parametrize("lang", ["vi", "de"])
def test_untranslated_check_strings_are_counted_and_fall_back(
    lang: str, record_property: pytest.RecordProperty
) -> None:
    known, todo = _msgids(lang), set(untranslated(lang))
    strings = check_strings()
    untranslated_checks = [s for s in strings if s not in known or s in todo]
    record_property(f"untranslated_check_strings_{lang}", len(untranslated_checks))
    titles = {c.meta.title for c in _checks()}
    todo_titles = [s for s in untranslated_checks if s in titles]
    print(
        f"{lang}: {len(untranslated_checks)} of {len(strings)} check strings fall back to English "
        f"({len(todo_titles)} of {len(titles)} titles)"
    )
    assert len(untranslated_checks) <= MAX_UNTRANSLATED_CHECK_STRINGS[lang], (
        f"{lang}: {len(untranslated_checks)} check strings have no translation, more than the "
        f"{MAX_UNTRANSLATED_CHECK_STRINGS[lang]} allowed; translate the new ones: "
        f"{untranslated_checks[:10]}"
    )
    with use_language(lang):
        for s in untranslated_checks:
            assert gettext(s) == s  # English, never empty, never a msgid placeholder
        assert gettext("Redis requires authentication") != "Redis requires authentication"


def test_counting_sees_empty_and_fuzzy_entries_and_they_fall_back(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    (tmp_path / "de.po").write_text(
        'msgid ""\nmsgstr "Content-Type: text/plain; charset=UTF-8\\n"\n\n'
        'msgid "Findings"\nmsgstr "Befunde"\n\n'
        'msgid "Evidence"\nmsgstr ""\n\n'
        '#, fuzzy\nmsgid "Remediation"\nmsgstr "Behebung?"\n',
        encoding="utf-8",
    )
    monkeypatch.setattr(i18n, "CATALOGUES", tmp_path)
    i18n.translations.cache_clear()
    try:
        assert untranslated("de") == ["Evidence", "Remediation"]
        with use_language("de"):
            assert [gettext(s) for s in ("Findings", "Evidence", "Remediation")] == [
                "Befunde",
                "Evidence",
                "Remediation",
            ]
    finally:
        i18n.translations.cache_clear()


def _checks() -> list[Check]:
    from scanner.plugins import load_registry

    return list(load_registry().checks.values())


def test_reports_in_vietnamese_and_german() -> None:
    doc = export_sample()
    with use_language("vi"):
        md = MarkdownReporter().render(doc)
        html = HtmlReporter().render(doc)
        plan = PlanReporter().render(doc)
        csv_text = CsvReporter().render(doc)
    assert "## Kế hoạch khắc phục" in md and "Kế hoạch khắc phục" in html
    assert plan.startswith("# Kế hoạch khắc phục: ")
    assert "Redis yêu cầu xác thực" in csv_text  # a check title
    with use_language("de"):
        plan_de = PlanReporter().render(doc)
    assert plan_de.startswith("# Maßnahmenplan: ") and "Konfiguration vsftpd.conf ändern" in plan_de
    with use_language("en"):
        assert PlanReporter().render(doc).startswith("# Remediation plan: ")
    assert i18n.language() == "en"  # the choice does not leak out of the block


def test_unknown_language_and_broken_catalogue(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    known = r"unknown report language 'fr' \(known: en, vi, de\)"
    with pytest.raises(LanguageError, match=known), use_language("fr"):
        pass
    bad = tmp_path / "vi.po"
    bad.write_bytes(b'msgid "x"\nmsgstr "\xff\xfe unterminated\n')
    monkeypatch.setattr(i18n, "CATALOGUES", tmp_path)
    i18n.translations.cache_clear()
    try:
        broken = f"cannot read the vi catalogue {bad}"
        with pytest.raises(LanguageError, match=broken), use_language("vi"):
            pass
    finally:
        i18n.translations.cache_clear()
    assert LANGUAGES == ("en", "vi", "de")


def test_cli_report_lang(tmp_path: Path) -> None:
    db = tmp_path / "a.db"
    scan_id = stored_scans(f"sqlite:///{db}")[-1]
    env = dict(os.environ, ASSAY_DB=f"sqlite:///{db}", COLUMNS="200")

    def assay(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-c", "from scanner.cli import main; main()", *args],
            capture_output=True, text=True, env=env, timeout=120,
        )  # fmt: skip

    out = tmp_path / "de"
    r = assay("report", scan_id, "--format", "md,plan", "--lang", "de", "--out", str(out))
    assert r.returncode == 0, r.stderr
    assert "## Maßnahmenplan" in (out / "assessment.md").read_text(encoding="utf-8")
    assert (out / "plan.md").read_text(encoding="utf-8").startswith("# Maßnahmenplan")
    r = assay("report", scan_id, "--lang", "xx", "--out", str(tmp_path / "x"))
    assert r.returncode == 1
    assert r.stderr.strip() == "assay: error: unknown report language 'xx' (known: en, vi, de)"


# -- the main reports in each language ---------------------------------------------------------
def render(lang: str, doc: object = None) -> dict[str, str]:
    doc = doc or sample_assessment("nmap")
    with use_language(lang):
        return {"html": HtmlReporter().render(doc), "md": MarkdownReporter().render(doc)}  # type: ignore[arg-type]


def test_vietnamese_report_overview_findings_targets() -> None:
    out = render("vi", sample_assessment("fallback"))
    html, md = out["html"], out["md"]
    assert '<html lang="vi">' in html
    assert "<title>Đánh giá Assay 20261202T100000Z-4f1c2a</title>" in html
    for text in (
        "<th>Mã lần quét</th>",
        "Lần quét này ở trạng thái: bị gián đoạn.",
        "<h2>Đơn vị Demo unit <span",
        "<h3>Phát hiện (8)</h3>",
        '<span class="badge sv-critical">nghiêm trọng</span>',  # the class stays, the text is vi
        '<span class="badge st-fail">không đạt</span>',
        "<strong>Redis yêu cầu xác thực</strong>",  # a check title from the catalogue
        "<h4>Máy chủ 192.0.2.10</h4>",
        "<h3>Chưa đánh giá / lỗi (2)</h3>",
        "không có nmap: các dịch vụ được tìm bằng quét kết nối TCP",
        "<h2>Kế hoạch khắc phục</h2>",
    ):
        assert text in html, text
    for text in (
        "# Đánh giá Assay 20261202T100000Z-4f1c2a",
        "| Trạng thái | **bị gián đoạn** |",
        "Hoàn tất lần quét bằng lệnh `assay scan --resume 20261202T100000Z-4f1c2a`.",
        "### Phát hiện (8)",
        "#### 2. [NGHIÊM TRỌNG] Redis yêu cầu xác thực",
        "- Kiểm tra: `net.redis.no_auth` (trạng thái không đạt)",
        "| không đạt | lỗi | chưa đánh giá | đạt | không áp dụng | tổng |",
    ):
        assert text in md, text
    assert unicodedata.is_normalized("NFC", html) and unicodedata.is_normalized("NFC", md)


def test_german_report_and_english_fallback_of_an_untranslated_title() -> None:
    doc = sample_assessment("nmap")
    html, md = render("de", doc).values()
    assert '<html lang="de">' in html and "<h2>Einheit Demo unit <span" in html
    assert "<th>Schweregrad</th><th>Ziel</th><th>Befund und Behebung</th>" in html
    assert "| 1 | KRITISCH |" in md and "Behebung: " in md
    assert "Keine: Alle installierten Plugins wurden geladen." not in md  # the sample has one
    # a third-party check's title that no catalogue knows is shown in English, never empty
    fails = [i for i, o in enumerate(doc.outcomes) if o.status.value == "fail"]
    first = doc.outcomes[fails[0]]
    plugin = first.model_copy(update={"title": "Widget server hides its build number"})
    outcomes = [plugin if i == fails[0] else o for i, o in enumerate(doc.outcomes)]
    html, md = render("de", doc.model_copy(update={"outcomes": outcomes})).values()
    assert "<strong>Widget server hides its build number</strong>" in html
    assert "] Widget server hides its build number" in md


def test_translated_sentences_escape_their_values() -> None:
    from tests.test_reports import _hostile_doc

    for lang in ("vi", "de"):
        html, md = render(lang, _hostile_doc()).values()
        assert "<script>" not in html.split("<script>", 1)[0] + html.rsplit("</script>", 1)[-1]
        assert html.count("<script>") == 1  # only the print script the CSP allows
        assert HOSTILE not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html
        assert SECRET not in html and SECRET not in md
        assert "\\<script\\>alert(1)\\</script\\>" in md  # the unit name inside "Unit {name}"


def test_scores_section_in_vietnamese() -> None:
    from tests.test_policies_report import _doc

    html, md = render("vi", _doc()).values()
    section = html[html.index('<section id="scores">') :]
    section = section[: section.index("</section>")]
    assert "<h2>Điểm theo chính sách</h2>" in section
    assert "tỷ lệ đạt <strong>100.0%</strong> = 1 / (1 + 0)" in section
    assert "Công thức: tỷ lệ đạt = đạt / (đạt + không đạt)" in section
    assert "<strong>đang hiệu lực</strong>, 1 lỗi không đạt" in section
    assert "## Điểm theo chính sách" in md and "### Miễn trừ (" in md


def golden_files() -> dict[Path, str]:
    out = {}
    for lang in ("vi", "de"):
        for ext, text in render(lang).items():
            out[GOLDEN / f"sample-nmap.{lang}.{ext}"] = text
    return out


@pytest.mark.parametrize("path", sorted(golden_files()), ids=lambda p: p.name)
def test_golden(path: Path) -> None:
    assert path.is_file(), "missing golden file: run python -m tests.test_i18n --write-golden"
    assert path.read_text(encoding="utf-8") == golden_files()[path], (
        f"{path.name} differs: if the change is intended, run "
        "python -m tests.test_i18n --write-golden and review the diff."
    )


def test_english_is_the_default_and_unchanged() -> None:
    doc = sample_assessment("nmap")
    assert HtmlReporter().render(doc) == render("en", doc)["html"]
    assert (GOLDEN / "sample-nmap.html").read_text(encoding="utf-8") == render("en", doc)["html"]


# -- the command line ------------------------------------------------------------------------
def test_cli_scan_lang(tmp_path: Path) -> None:
    addr = pick_loopback()
    port = free_port(addr)  # nothing listens there: a quick, clean scan
    inv = tmp_path / "unit.yaml"
    inv.write_text(
        f"units:\n  - id: u1\n    name: One\n    hosts:\n      - address: {addr}\n"
        f'        ports: "{port}"\n'
    )
    env = dict(os.environ, ASSAY_DB=f"sqlite:///{tmp_path / 'a.db'}", COLUMNS="200")

    def assay(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "scanner.cli", *args],
            capture_output=True, text=True, env=env, timeout=240,
        )  # fmt: skip

    r = assay("scan", str(inv), "--lang", "fr", "--out", str(tmp_path / "fr"))
    assert r.returncode == 1
    assert r.stderr.strip() == "assay: error: unknown report language 'fr' (known: en, vi, de)"
    assert not (tmp_path / "fr").exists()  # refused before scanning
    out = tmp_path / "vi"
    r = assay(
        "scan", str(inv), "--lang", "vi", "--format", "html,md", "--out", str(out),
        "--nmap", "/nonexistent/nmap",
    )  # fmt: skip
    assert r.returncode == 2, r.stdout + r.stderr  # nmap missing is a warning
    html = (out / "assessment.html").read_text(encoding="utf-8")
    assert '<html lang="vi">' in html and f"<h4>Máy chủ {addr}</h4>" in html
    assert "## Đơn vị One (u1)" in (out / "assessment.md").read_text(encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--write-golden", action="store_true", help="rewrite the vi/de goldens")
    if not parser.parse_args(argv).write_golden:
        parser.print_help()
        return 0
    for path, text in golden_files().items():
        path.write_text(text, encoding="utf-8")
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
