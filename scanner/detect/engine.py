"""Matching engines behind one interface: Hyperscan when installed, pure `re` otherwise.

Both engines return exactly the same matches, by construction: Hyperscan (compiled in
prefilter mode, one pattern per rule, never one giant alternation) only decides *which rules
can match in a chunk*; the matches themselves always come from Python `re` running the rule's
own pattern on that chunk. The `re` engine makes the same decision with literal prefilters.
Chunks are cut at line ends and no rule matches across a line break, so chunking loses nothing.
"""

from __future__ import annotations

import re
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
    """Hyperscan in prefilter mode answers 'which rules may match in this chunk'."""

    name = "hyperscan"

    def __init__(self, rules: Sequence[Rule] = RULES) -> None:
        import hyperscan  # optional dependency

        super().__init__(rules)
        self._hs = hyperscan
        exprs, flags = [], []
        for r in self.rules:
            pattern = (r.hs_pattern or r.pattern).replace("(?P<v>", "(")
            f = hyperscan.HS_FLAG_PREFILTER | hyperscan.HS_FLAG_SINGLEMATCH
            f |= hyperscan.HS_FLAG_UTF8 | hyperscan.HS_FLAG_UCP
            if r.caseless:
                f |= hyperscan.HS_FLAG_CASELESS
            if r.multiline:
                f |= hyperscan.HS_FLAG_MULTILINE
            exprs.append(pattern.encode())
            flags.append(f)
        self._db = hyperscan.Database(mode=hyperscan.HS_MODE_BLOCK)
        self._db.compile(
            expressions=exprs, ids=list(range(len(exprs))), elements=len(exprs), flags=flags
        )
        self._scratch = hyperscan.Scratch(self._db)

    def _candidates(self, chunk: str, idx: Sequence[int]) -> Sequence[int]:
        hits: set[int] = set()

        def on_match(i: int, _f: int, _t: int, _fl: int, _ctx: Any) -> None:
            hits.add(i)

        self._db.scan(
            chunk.encode("utf-8", "surrogatepass"),
            match_event_handler=on_match,
            scratch=self._scratch,
        )
        wanted = set(idx)
        return sorted(h for h in hits if h in wanted)


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
