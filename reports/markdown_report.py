"""assessment.md: the HTML report's content in GitHub-flavoured Markdown, readable as plain text.

Escaping is on by default, as in the HTML report: every `{{ value }}` passes through `inline`
(through Jinja's finalize hook), so a hostile banner can neither break a table (`|`, newlines)
nor inject markup or links (`<`, `>`, `[`, `]`, backticks). Multi-line text (evidence, snippets)
goes into fenced code blocks built by `fence`, which are marked as already formatted.
"""

from __future__ import annotations

import re
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined

from reports._common import context
from reports.assessment import Assessment
from scanner.plugins import Reporter

_SPECIAL = re.compile(r"([\\`|<>\[\]])")
_NEWLINES = re.compile(r"\s*(?:\r\n|\r|\n)\s*")


class Block(str):
    """Markdown that is already formatted (a fenced block): output as is."""


def inline(value: Any) -> Any:
    """Make a value safe inside a table cell or a line of text."""
    if value is None:
        return ""
    if isinstance(value, Block) or not isinstance(value, str):
        return value
    text = _SPECIAL.sub(r"\\\1", value)
    if "\n" in text or "\r" in text:  # a cell or list item is one line: keep the breaks visible
        text = _NEWLINES.sub("<br>", text.strip())
    return text


def fill(text: str, **values: Any) -> Block:
    """A translated sentence with its `{name}` placeholders filled in; the sentence and every
    value are escaped like any other text, except values that are already formatted (`code`)."""
    return Block(inline(text).format(**{k: inline(v) for k, v in values.items()}))


def code(text: str) -> Block:
    """Inline code whose backtick run is longer than any inside the text."""
    longest = max((len(m) for m in re.findall(r"`+", text)), default=0)
    ticks = "`" * (longest + 1)
    pad = " " if text.startswith("`") or text.endswith("`") else ""
    return Block(f"{ticks}{pad}{text}{pad}{ticks}")


def fence(text: str, lang: str = "") -> Block:
    """A fenced code block whose fence is longer than any backtick run inside the text."""
    longest = max((len(m) for m in re.findall(r"`+", text)), default=0)
    ticks = "`" * max(3, longest + 1)
    info = re.sub(r"[^A-Za-z0-9_.+-]", "", lang)
    return Block(f"{ticks}{info}\n{text.rstrip()}\n{ticks}")


_env = Environment(
    loader=PackageLoader("reports", "templates"),
    autoescape=False,
    finalize=inline,
    undefined=StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
    keep_trailing_newline=True,
)
_env.filters["formatted"] = Block  # a macro's output: its values were escaped inside it
_env.filters["fill"] = fill


class MarkdownReporter(Reporter):
    format = "md"
    extension = "md"

    def render(self, assessment: Assessment) -> str:
        template = _env.get_template("report.md.j2")
        text = template.render(**context(assessment), fence=fence, code=code)
        return squeeze_blank_lines(text)


def squeeze_blank_lines(text: str) -> str:
    """One blank line between blocks and no trailing spaces, whatever the template's
    conditionals left behind; the inside of fenced blocks is kept byte for byte."""
    out: list[str] = []
    fence_open = ""
    for line in text.strip("\n").split("\n"):
        if fence_open:
            fence_open = "" if line == fence_open else fence_open
        else:
            line = line.rstrip()
            if m := re.match(r"`{3,}", line):
                fence_open = m.group(0)
            elif not line and (not out or not out[-1]):
                continue
        out.append(line)
    return "\n".join(out) + "\n"
