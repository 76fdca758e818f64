"""Report languages: English (the source text), Vietnamese and German, as gettext catalogues.

The catalogues are the `.po` files beside this module (`<lang>.po`, domain `assay`). They are
compiled in memory with Babel when first used, so the repository holds only the reviewable text
and no generated binary. A string a catalogue does not translate (or translates as empty) falls
back to English; `untranslated()` lists those strings, and a test counts them per language.

The language is chosen per rendering with `use_language("vi")`; reporters keep their
`render(assessment)` signature and read the active language from a context variable, so a
third-party reporter gets translations the same way.
"""

from __future__ import annotations

import gettext as _gettext
import io
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # reports.assessment imports reports.diff, which translates with this module
    from reports.assessment import OutcomeDoc

LANGUAGES = ("en", "vi", "de")
DOMAIN = "assay"
CATALOGUES = Path(__file__).resolve().parent
_active: ContextVar[str] = ContextVar("assay_report_language", default="en")


class LanguageError(ValueError):
    pass


def check_language(lang: str) -> str:
    if lang not in LANGUAGES:
        raise LanguageError(f"unknown report language {lang!r} (known: {', '.join(LANGUAGES)})")
    return lang


def catalogue_path(lang: str) -> Path:
    return CATALOGUES / f"{lang}.po"


@cache
def translations(lang: str) -> _gettext.NullTranslations:
    """The compiled catalogue of `lang`; English needs none (its msgids are the text)."""
    check_language(lang)
    if lang == "en":
        return _gettext.NullTranslations()
    from babel.messages.mofile import write_mo
    from babel.messages.pofile import read_po

    path = catalogue_path(lang)
    try:
        with path.open("rb") as fh:
            catalog = read_po(fh, locale=lang, domain=DOMAIN)
    except (OSError, ValueError) as exc:
        raise LanguageError(f"cannot read the {lang} catalogue {path}: {exc}") from None
    buf = io.BytesIO()
    write_mo(buf, catalog)
    buf.seek(0)
    return _gettext.GNUTranslations(buf)


def language() -> str:
    return _active.get()


@contextmanager
def use_language(lang: str) -> Iterator[str]:
    token = _active.set(check_language(lang))
    try:
        translations(lang)  # a broken catalogue fails here, before any file is written
        yield lang
    finally:
        _active.reset(token)


def gettext(message: str) -> str:
    if not message:
        return message
    return translations(_active.get()).gettext(message)


def ngettext(singular: str, plural: str, n: int) -> str:
    return translations(_active.get()).ngettext(singular, plural, n)


_ = gettext


def N_(message: str) -> str:
    """Mark a string for the catalogues without translating it yet: labels in tables are kept
    in English and translated with `gettext` where they are shown."""
    return message


def translate_outcome(o: OutcomeDoc) -> OutcomeDoc:
    """An outcome with its check title and remediation text in the active language.

    The message and evidence stay as the check wrote them: they quote what the server said.
    """
    if _active.get() == "en":
        return o
    update: dict[str, object] = {"title": gettext(o.title)}
    if o.remediation is not None:
        update["remediation"] = o.remediation.model_copy(
            update={"text": gettext(o.remediation.text)}
        )
    return o.model_copy(update=update)


def _translated(value: object) -> bool:
    if isinstance(value, str):
        return bool(value)
    return isinstance(value, tuple | list) and all(value)


def untranslated(lang: str) -> list[str]:
    """Message ids of `lang`'s catalogue that have no translation (they fall back to English)."""
    from babel.messages.pofile import read_po

    with catalogue_path(lang).open("rb") as fh:
        catalog = read_po(fh, locale=lang, domain=DOMAIN)
    return sorted(str(m.id) for m in catalog if m.id and (m.fuzzy or not _translated(m.string)))
