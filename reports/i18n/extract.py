"""Refresh the catalogues: `python -m reports.i18n.extract` adds every translatable string to
`vi.po` and `de.po` (keeping the translations already there) and writes `assay.pot`.

Translatable strings are the `_("...")` calls of the report templates, the `gettext("...")` and
`N_("...")` calls of the report modules, the fixed texts every document carries (the score
formulas, shown in the reports), and the title and remediation text of every installed check.
"""

from __future__ import annotations

import re
from pathlib import Path

from babel.messages.catalog import Catalog
from babel.messages.pofile import read_po, write_po

from reports.i18n import CATALOGUES, DOMAIN, catalogue_path

REPORTS = Path(__file__).resolve().parent.parent
_CALL = re.compile(r"""\b(?:_|N_|gettext)\(\s*"((?:[^"\\]|\\.)*)"\s*\)""")
# a call whose argument is split over several adjacent literals: N_(\n "a "\n "b"\n)
_SPLIT_CALL = re.compile(r"""\b(?:_|N_|gettext)\(\s*((?:"(?:[^"\\]|\\.)*"\s*){2,})\)""")
_LITERAL = re.compile(r'"((?:[^"\\]|\\.)*)"')


def report_strings() -> list[str]:
    found: dict[str, None] = {}
    files = [*sorted((REPORTS / "templates").glob("*.j2")), *sorted(REPORTS.glob("*.py"))]
    for path in files:
        text = path.read_text(encoding="utf-8")
        calls = [(m.start(), m.group(1)) for m in _CALL.finditer(text)]
        for m in _SPLIT_CALL.finditer(text):
            calls.append((m.start(), "".join(_LITERAL.findall(m.group(1)))))
        for _pos, literal in sorted(calls):
            found.setdefault(_unescape(literal))
    for fixed in document_strings():
        found.setdefault(fixed)
    return list(found)


def _unescape(literal: str) -> str:
    # only the escapes a report string uses; non-ASCII text stays as written
    return literal.replace('\\"', '"').replace("\\n", "\n").replace("\\\\", "\\")


def document_strings() -> list[str]:
    """Texts the document carries and the reports show through `_()`: the formulas."""
    from policies.result import FORMULA
    from reports.assessment import Assessment
    from reports.plan import Plan

    rate = Assessment.model_fields["pass_rate_formula"].default
    return [str(rate), FORMULA, Plan.formula]


def check_strings() -> list[str]:
    from scanner.plugins import load_registry

    found: dict[str, None] = {}
    for _id, check in sorted(load_registry().checks.items()):
        found.setdefault(check.meta.title)
        found.setdefault(check.meta.remediation.text)
    return list(found)


def update(lang: str, msgids: list[str]) -> Catalog:
    path = catalogue_path(lang)
    old: dict[str, str] = {}
    if path.is_file():
        with path.open("rb") as fh:
            for m in read_po(fh, locale=lang, domain=DOMAIN):
                if m.id and isinstance(m.string, str):
                    old[str(m.id)] = m.string
    catalog = Catalog(locale=lang, domain=DOMAIN, project="Assay", fuzzy=False)
    for msgid in msgids:
        catalog.add(msgid, old.get(msgid, ""))
    for msgid, text in old.items():  # strings no longer used stay until removed by hand
        if msgid not in catalog:
            catalog.add(msgid, text)
    with path.open("wb") as fh:
        write_po(fh, catalog, width=100, omit_header=False, sort_output=False)
    return catalog


def main() -> int:
    msgids = report_strings() + [s for s in check_strings() if s]
    pot = Catalog(domain=DOMAIN, project="Assay", fuzzy=False)
    for msgid in msgids:
        pot.add(msgid)
    with (CATALOGUES / "assay.pot").open("wb") as fh:
        write_po(fh, pot, width=100, sort_output=False)
    for lang in ("vi", "de"):
        update(lang, msgids)
        print(f"updated {catalogue_path(lang)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
