"""Report: the Jinja-rendered ``report.md`` (PR comment) and ``report.html``."""

from .render import MARKER, codeblock, inline, render_html, render_markdown, write_outputs

__all__ = ["MARKER", "codeblock", "inline", "render_html", "render_markdown", "write_outputs"]
