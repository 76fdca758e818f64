"""Matching engines behind one interface: Hyperscan when installed, pure `re` otherwise.

Both engines return exactly the same matches, by construction: Hyperscan (compiled in
prefilter mode, one pattern per rule, never one giant alternation) only decides *which rules
can match in a chunk*; the matches themselves always come from Python `re` running the rule's
own pattern on that chunk. The `re` engine makes the same decision with literal prefilters.
Chunks are cut at line ends and no rule matches across a line break, so chunking loses nothing.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from scanner.detect.rules import RULES, Rule

CHUNK_CHARS = 8 * 1024


@dataclass(frozen=True)
class RawMatch:
    rule: Rule
    start: int  # character offset inside the text given to `scan`
    end: int
    value: str  # the value group (or the whole match)


class Engine(Protocol):
    name: str

    def scan(self, text: str, names_only: bool = False) -> list[RawMatch]: ...


def _compile(rule: Rule) -> re.Pattern[str]:
    flags = (re.IGNORECASE if rule.caseless else 0) | (re.MULTILINE if rule.multiline else 0)
    return re.compile(rule.pattern, flags)


def chunks(text: str, size: int = CHUNK_CHARS) -> Iterator[tuple[int, str]]:
    """(offset, chunk) pieces of about `size` characters, each ending at a line end."""
    n, pos = len(text), 0
    while pos < n:
        end = pos + size
        if end >= n:
            yield pos, text[pos:]
            return
        cut = text.rfind("\n", pos, end)
        if cut <= pos:  # one very long line: cut anyway (a match across the cut is lost)
            cut = end
        yield pos, text[pos : cut + 1]
        pos = cut + 1


class _Base:
    name = "base"

    def __init__(self, rules: Sequence[Rule] = RULES) -> None:
        self.rules = tuple(rules)
        self.compiled = [_compile(r) for r in self.rules]

    def _candidates(self, chunk: str, idx: Sequence[int]) -> Sequence[int]:
        raise NotImplementedError

    def scan(self, text: str, names_only: bool = False) -> list[RawMatch]:
        idx = [i for i, r in enumerate(self.rules) if names_only or not r.names_only]
        out: list[RawMatch] = []
        for off, chunk in chunks(text):
            for i in self._candidates(chunk, idx):
                rule = self.rules[i]
                group = rule.value_group
                for m in self.compiled[i].finditer(chunk):
                    value = m.group(group) if group else m.group(0)
                    out.append(RawMatch(rule, off + m.start(), off + m.end(), value))
        return out


class ReEngine(_Base):
    """Pure `re`: a rule runs on a chunk only if one of its literals occurs there."""

    name = "re"

    def __init__(self, rules: Sequence[Rule] = RULES) -> None:
        super().__init__(rules)
        self._lits = [
            tuple(lit.lower() for lit in r.literals) if r.caseless else r.literals
            for r in self.rules
        ]

    def _candidates(self, chunk: str, idx: Sequence[int]) -> Sequence[int]:
        lower: str | None = None
        picked = []
        for i in idx:
            lits = self._lits[i]
            if not lits:
                picked.append(i)
                continue
            hay = chunk
            if self.rules[i].caseless:
                if lower is None:
                    lower = chunk.lower()
                hay = lower
            if any(lit in hay for lit in lits):
                picked.append(i)
        return picked


class HyperscanEngine(_Base):
    """Hyperscan in prefilter mode says where each rule may match; `re` confirms on those lines.

    Every match of a rule's pattern is also a match of its prefilter pattern ending at the same
    offset (or, for an `hs_pattern` override, a match of a prefix of it), so the line holding
    each reported end offset holds every real match. The rule's own pattern then runs only on
    those lines (`finditer` with pos/endpos on the chunk, so look-behinds and `^` see exactly
    what they see on the whole chunk). A chunk that reports more than `MAX_EVENTS` candidate
    ends (a table of numbers) is rescanned in single-match mode and confirmed chunk-wide, which
    bounds the per-event Python work.
    """

    name = "hyperscan"
    MAX_EVENTS = 96

    def __init__(self, rules: Sequence[Rule] = RULES) -> None:
        import hyperscan  # optional dependency

        super().__init__(rules)
        self._hs = hyperscan
        self._local = threading.local()  # scratch space is per thread
        self._events = self._build(single=False)
        self._single: Any = None  # built on the first dense chunk

    def _build(self, single: bool) -> Any:
        hs = self._hs
        exprs, flags = [], []
        for r in self.rules:
            pattern = (r.hs_pattern or r.pattern).replace("(?P<v>", "(")
            f = hs.HS_FLAG_PREFILTER | hs.HS_FLAG_UTF8 | hs.HS_FLAG_UCP
            if single:
                f |= hs.HS_FLAG_SINGLEMATCH
            if r.caseless:
                f |= hs.HS_FLAG_CASELESS
            if r.multiline:
                f |= hs.HS_FLAG_MULTILINE
            exprs.append(pattern.encode())
            flags.append(f)
        db = hs.Database(mode=hs.HS_MODE_BLOCK)
        db.compile(expressions=exprs, ids=list(range(len(exprs))), elements=len(exprs), flags=flags)
        return db

    def _scratch(self, db: Any) -> Any:
        cache: dict[int, Any] = self._local.__dict__.setdefault("scratch", {})
        s = cache.get(id(db))
        if s is None:
            s = cache[id(db)] = self._hs.Scratch(db)
        return s

    def scan(self, text: str, names_only: bool = False) -> list[RawMatch]:
        wanted = [names_only or not r.names_only for r in self.rules]
        out: list[RawMatch] = []
        for off, chunk in chunks(text):
            data = chunk.encode("utf-8", "surrogatepass")
            ends: list[tuple[int, int]] = []

            def on_match(
                i: int, _f: int, to: int, _fl: int, _ctx: Any, ends: list[tuple[int, int]] = ends
            ) -> bool:
                ends.append((i, to))
                return len(ends) > self.MAX_EVENTS

            try:
                db = self._events
                db.scan(data, match_event_handler=on_match, scratch=self._scratch(db))
            except self._hs.ScanTerminated:
                self._dense(chunk, data, off, wanted, out)
                continue
            if ends:
                self._confirm(chunk, data, off, ends, wanted, out)
        return out

    def _confirm(
        self,
        chunk: str,
        data: bytes,
        off: int,
        ends: list[tuple[int, int]],
        wanted: list[bool],
        out: list[RawMatch],
    ) -> None:
        ascii_only = len(data) == len(chunk)
        by_rule: dict[int, set[int]] = {}
        for i, to in ends:
            if wanted[i]:
                # the byte line start of the line holding the match's last byte
                by_rule.setdefault(i, set()).add(data.rfind(b"\n", 0, max(to - 1, 0)) + 1)
        if not by_rule:
            return
        char_at: dict[int, int] = {}
        if ascii_only:
            char_at = {b: b for starts in by_rule.values() for b in starts}
        else:
            prev_b = prev_c = 0
            for b in sorted({b for starts in by_rule.values() for b in starts}):
                prev_c += len(data[prev_b:b].decode("utf-8", "surrogatepass"))
                prev_b = b
                char_at[b] = prev_c
        n = len(chunk)
        for i in sorted(by_rule):
            rule, pat, group = self.rules[i], self.compiled[i], self.rules[i].value_group
            for b in sorted(by_rule[i]):
                start = char_at[b]
                stop = chunk.find("\n", start)
                for m in pat.finditer(chunk, start, n if stop < 0 else stop + 1):
                    value = m.group(group) if group else m.group(0)
                    out.append(RawMatch(rule, off + m.start(), off + m.end(), value))

    def _dense(
        self, chunk: str, data: bytes, off: int, wanted: list[bool], out: list[RawMatch]
    ) -> None:
        if self._single is None:
            self._single = self._build(single=True)
        hits: set[int] = set()

        def on_match(i: int, _f: int, _t: int, _fl: int, _ctx: Any) -> None:
            hits.add(i)

        self._single.scan(data, match_event_handler=on_match, scratch=self._scratch(self._single))
        for i in sorted(h for h in hits if wanted[h]):
            rule, group = self.rules[i], self.rules[i].value_group
            for m in self.compiled[i].finditer(chunk):
                value = m.group(group) if group else m.group(0)
                out.append(RawMatch(rule, off + m.start(), off + m.end(), value))


_DEFAULT: Engine | None = None


def available_engines() -> list[str]:
    names = ["re"]
    try:
        HyperscanEngine()
        names.insert(0, "hyperscan")
    except Exception:  # not installed, or the CPU lacks what the library needs
        pass
    return names


def get_engine(name: str = "auto") -> Engine:
    """`auto`: Hyperscan when it loads, else `re`. Both give identical results."""
    global _DEFAULT
    if name == "re":
        return ReEngine()
    if name == "hyperscan":
        return HyperscanEngine()
    if _DEFAULT is None:
        try:
            _DEFAULT = HyperscanEngine()
        except Exception:
            _DEFAULT = ReEngine()
    return _DEFAULT
