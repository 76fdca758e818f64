"""Turning raw matches into findings: validation, context words, de-duplication and masking.

A finding never holds the matched value. It holds a masked sample (`0912****78`), where it was
(`page 2 line 4`, `header`, `name`), the rule, its legal category and a confidence. Its
fingerprint is built from those masked parts only, so it is stable across scans and can be put
on an allow-list without the value ever being written down.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from pydantic import BaseModel, ConfigDict

from scanner.detect.engine import Engine, RawMatch, get_engine
from scanner.detect.rules import Category, Rule, Sensitivity

CONTEXT_BEFORE = 60
CONTEXT_AFTER = 24


class Finding(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    rule: str
    category: Category
    label: str
    sensitivity: Sensitivity
    legal: tuple[str, ...]
    confidence: float
    masked: str
    where: str
    fingerprint: str


@dataclass(frozen=True)
class TextPart:
    """A piece of a document's text and where it came from (`page 3`, `header`, `sheet X`)."""

    where: str
    text: str


def fold(text: str) -> str:
    """Lower case without diacritics: 'Số Điện Thoại' -> 'so dien thoai'."""
    text = text.lower()
    if text.isascii():
        return text
    decomposed = unicodedata.normalize("NFD", text.replace("đ", "d"))
    return "".join(c for c in decomposed if not unicodedata.combining(c))


_CTX_CACHE: dict[str, re.Pattern[str]] = {}


def _context_re(rule: Rule) -> re.Pattern[str] | None:
    if not rule.context:
        return None
    pat = _CTX_CACHE.get(rule.id)
    if pat is None:
        words = "|".join(re.escape(w) for w in rule.context)
        pat = re.compile(rf"(?<![a-z0-9])(?:{words})(?![a-z])")
        _CTX_CACHE[rule.id] = pat
    return pat


def mask(value: str, style: str, rule_id: str = "") -> str:
    if style == "plain":
        return " ".join(value.split())
    if style == "hidden":
        return "****"
    if style == "secret":
        return value[:4] + "****" if len(value) > 8 else "****"
    if style == "email":
        local, _, domain = value.partition("@")
        return f"{local[:1]}***@{domain}"
    d = "".join(c for c in value if c.isalnum())
    if rule_id == "pii.payment_card":
        return "*" * (len(d) - 4) + d[-4:]
    if len(d) >= 10:
        return d[:4] + "*" * (len(d) - 6) + d[-2:]
    if len(d) >= 6:
        return d[:2] + "*" * (len(d) - 4) + d[-2:]
    return "*" * len(d)


def _fp(rule: str, doc: str, where: str, masked: str, n: int) -> str:
    raw = "\x1f".join((rule, doc, where, masked, str(n))).encode()
    return hashlib.sha256(raw).hexdigest()[:16]


def _line_of(text: str, pos: int, cache: list[tuple[int, int]]) -> int:
    """1-based line of `pos`; `cache` keeps (last pos, last line) so a forward walk is linear."""
    last_pos, last_line = cache[0]
    if pos < last_pos:
        last_pos, last_line = 0, 1
    line = last_line + text.count("\n", last_pos, pos)
    cache[0] = (pos, line)
    return line


def _dedupe(found: list[tuple[RawMatch, float]]) -> list[tuple[RawMatch, float]]:
    """Overlapping matches of one family (personal data on the same digits, two markings on
    the same words) keep the most confident rule; secrets are kept as found."""
    kept: list[tuple[RawMatch, float]] = []
    for family in (Category.PII, Category.MARKING_VN, Category.MARKING_FOREIGN):
        group = sorted(
            (x for x in found if x[0].rule.category is family), key=lambda x: (x[0].start, -x[1])
        )
        mine: list[tuple[RawMatch, float]] = []
        for m, conf in group:
            if mine and m.start < mine[-1][0].end:
                if conf > mine[-1][1]:
                    mine[-1] = (m, conf)
                continue
            mine.append((m, conf))
        kept += mine
    kept += [x for x in found if x[0].rule.category is Category.SECRET]
    return sorted(kept, key=lambda x: (x[0].start, x[0].rule.id))


def detect_parts(
    parts: Iterable[TextPart],
    doc: str,
    year: int,
    engine: Engine | None = None,
    name: str | None = None,
) -> list[Finding]:
    """All findings of one document: its text parts and (if given) its file name."""
    eng = engine or get_engine()
    out: list[Finding] = []
    counts: dict[tuple[str, str, str], int] = {}
    todo: list[tuple[TextPart, bool]] = [(p, False) for p in parts]
    if name:
        # separators in file names stand for spaces: Bao_cao_TOI_MAT.docx
        todo.append((TextPart("name", re.sub(r"[_\-.+]+", " ", name)), True))
    for part, is_name in todo:
        raw = eng.scan(part.text, names_only=is_name)
        if is_name:
            raw = [
                m for m in raw if m.rule.category in (Category.MARKING_VN, Category.MARKING_FOREIGN)
            ]
        scored: list[tuple[RawMatch, float]] = []
        for m in raw:
            ctx = False
            cre = _context_re(m.rule)
            if cre is not None:
                lo = max(0, m.start - CONTEXT_BEFORE)
                window = fold(part.text[lo : m.end + CONTEXT_AFTER])
                ctx = cre.search(window) is not None
            conf = m.rule.validator(m.value, ctx, year)
            if conf is not None:
                scored.append((m, conf))
        cache = [(0, 1)]
        for m, conf in _dedupe(scored):
            where = part.where
            if not is_name and "\n" in part.text:
                where = f"{part.where} line {_line_of(part.text, m.start, cache)}".strip()
            masked = mask(m.value, m.rule.mask, m.rule.id)
            key = (m.rule.id, where, masked)
            n = counts.get(key, 0)
            counts[key] = n + 1
            out.append(
                Finding(
                    rule=m.rule.id,
                    category=m.rule.category,
                    label=m.rule.label,
                    sensitivity=_level(m)
                    if m.rule.id == "marking.vn.do_mat"
                    else m.rule.sensitivity,
                    legal=m.rule.legal,
                    confidence=conf,
                    masked=masked,
                    where=where,
                    fingerprint=_fp(m.rule.id, doc, where, masked, n),
                )
            )
    return out


def _level(m: RawMatch) -> Sensitivity:
    v = fold(m.value)
    if "tuyet" in v:
        return Sensitivity.TUYET_MAT
    if "toi" in v:
        return Sensitivity.TOI_MAT
    return Sensitivity.MAT


def detect_text(
    text: str,
    doc: str = "",
    year: int = 2026,
    engine: Engine | None = None,
    name: str | None = None,
) -> list[Finding]:
    return detect_parts([TextPart("", text)], doc, year, engine, name)


def summary(findings: Sequence[Finding]) -> dict[str, int]:
    out: dict[str, int] = {}
    for f in findings:
        out[f.rule] = out.get(f.rule, 0) + 1
    return out
