"""assessment.html: one self-contained file that opens offline, prints cleanly and loads nothing.

Jinja2 autoescaping is on for every value: banners, messages and evidence come from servers we
do not trust. Styles are inline; the status bar is inline SVG built from numbers. The only
script is a fixed line that opens the <details> boxes before printing; the page works without
it, and a Content-Security-Policy allows exactly that script (by hash) and nothing external,
so even a markup mistake could not make the report fetch or run anything else.
"""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined
from markupsafe import Markup

from reports._common import CountView, context
from reports.assessment import Assessment
from reports.i18n import gettext
from scanner.model import Status
from scanner.plugins import Reporter

PRINT_SCRIPT = (
    'addEventListener("beforeprint", function () {'
    ' document.querySelectorAll("details").forEach(function (d) { d.open = true; }); });'
)
_SCRIPT_HASH = base64.b64encode(hashlib.sha256(PRINT_SCRIPT.encode()).digest()).decode()
CSP = (
    "default-src 'none'; style-src 'unsafe-inline'; "
    f"script-src 'sha256-{_SCRIPT_HASH}'; base-uri 'none'; form-action 'none'"
)
BAR_COLOURS = {
    Status.FAIL: "#c62828",
    Status.ERROR: "#6a1b9a",
    Status.NOT_ASSESSED: "#ef6c00",
    Status.PASS: "#2e7d32",
    Status.NOT_APPLICABLE: "#90a4ae",
}
BAR_WIDTH = 400


@dataclass
class Segment:
    x: str
    width: str
    colour: str
    label: str
    n: int


def bar_segments(counts: list[CountView]) -> list[Segment]:
    """Rectangles of the status bar, proportional to the counts (empty statuses omitted)."""
    total = sum(c.n for c in counts)
    segments, x = [], 0.0
    for c in counts:
        if not c.n:
            continue
        width = BAR_WIDTH * c.n / total
        segments.append(Segment(f"{x:.1f}", f"{width:.1f}", BAR_COLOURS[c.status], c.label, c.n))
        x += width
    return segments


def bar_label(counts: list[CountView]) -> str:
    return gettext("outcomes by status") + ": " + ", ".join(f"{c.label} {c.n}" for c in counts)


def fill(text: str, **values: Any) -> Markup:
    """A translated sentence with its `{name}` placeholders filled in: the sentence and every
    value are escaped, except values that are already markup (a `<code>` built by a macro), so a
    catalogue never carries HTML and a value never becomes HTML."""
    return Markup.escape(text).format(**values)


_env = Environment(
    loader=PackageLoader("reports", "templates"),
    autoescape=True,
    undefined=StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
    keep_trailing_newline=True,
)
_env.filters["fill"] = fill


class HtmlReporter(Reporter):
    format = "html"
    extension = "html"

    def render(self, assessment: Assessment) -> str:
        return _env.get_template("report.html.j2").render(
            **context(assessment),
            csp=CSP,
            print_script=Markup(PRINT_SCRIPT),  # a constant, never data
            bar_segments=bar_segments,
            bar_label=bar_label,
            bar_width=BAR_WIDTH,
        )
