"""GitHub-flavoured Markdown report, readable as plain text."""

from __future__ import annotations

from typing import Any

from jinja2 import Environment, PackageLoader

from reports._common import context
from scanner.plugins import Reporter


def cell(value: object) -> str:
    """Make a value safe inside a Markdown table cell."""
    text = str(value).replace("\\", "\\\\").replace("|", "\\|")
    text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return " ".join(text.split())


_env = Environment(
    loader=PackageLoader("reports", "templates"),
    autoescape=False,
    trim_blocks=True,
    lstrip_blocks=True,
    keep_trailing_newline=True,
)
_env.filters["cell"] = cell


class MarkdownReporter(Reporter):
    format = "md"
    extension = "md"

    def render(self, assessment: Any) -> str:
        return _env.get_template("report.md.j2").render(**context(assessment))
