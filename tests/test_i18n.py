"""Report languages through gettext catalogues: English, Vietnamese and German; what a catalogue
does not translate falls back to English, and the untranslated strings are counted here."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

import reports.i18n as i18n
from reports.csv_report import CsvReporter
from reports.html_report import HtmlReporter
from reports.i18n import LANGUAGES, LanguageError, gettext, untranslated, use_language
from reports.i18n.extract import check_strings, report_strings
from reports.markdown_report import MarkdownReporter
from reports.plan import PlanReporter
from tests.report_samples import export_sample, stored_scans


@pytest.mark.parametrize("lang", ["vi", "de"])
def test_every_report_string_is_translated(lang: str) -> None:
    todo, known = set(untranslated(lang)), _msgids(lang)
    missing = [s for s in report_strings() if s in todo]
    absent = [s for s in report_strings() if s not in known]
    assert not missing and not absent, (
        f"{lang}: add the translations (python -m reports.i18n.extract, then edit "
        f"reports/i18n/{lang}.po): {missing + absent}"
    )


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
    print(f"{lang}: {len(untranslated_checks)} of {len(strings)} check strings fall back")
    assert len(untranslated_checks) < len(strings), "some check titles are translated"
    with use_language(lang):
        for s in untranslated_checks:
            assert gettext(s) == s  # English, never empty, never a msgid placeholder
        assert gettext("Redis requires authentication") != "Redis requires authentication"


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
