"""One self-contained HTML file: inline CSS and SVG, no script, no external resource."""

from __future__ import annotations

from typing import Any

from jinja2 import Environment, PackageLoader, select_autoescape

from reports._common import context
from scanner.plugins import Reporter

_env = Environment(
    loader=PackageLoader("reports", "templates"),
    autoescape=select_autoescape(["html", "j2"]),
    trim_blocks=True,
    lstrip_blocks=True,
)


def bar_svg(counts: dict[str, int]) -> str:
    """A status bar as inline SVG (markup built from numbers and fixed names only)."""
    colours = {
        "pass": "#2e7d32",
        "fail": "#c62828",
        "error": "#6a1b9a",
        "not_assessed": "#9e9e9e",
        "not_applicable": "#cfd8dc",
    }
    total = sum(counts.get(k, 0) for k in colours) or 1
    x, parts = 0.0, []
    for name, colour in colours.items():
        w = 400 * counts.get(name, 0) / total
        if w:
            parts.append(
                f'<rect x="{x:.1f}" y="0" width="{w:.1f}" height="18" fill="{colour}">'
                f"<title>{name}: {counts.get(name, 0)}</title></rect>"
            )
        x += w
    return (
        '<svg width="400" height="18" role="img" '
        'aria-label="outcomes by status">' + "".join(parts) + "</svg>"
    )


class HtmlReporter(Reporter):
    format = "html"
    extension = "html"

    def render(self, assessment: Any) -> str:
        from markupsafe import Markup

        ctx = context(assessment)
        ctx["bar"] = lambda counts: Markup(bar_svg(counts))
        return _env.get_template("report.html.j2").render(**ctx)
