"""Report: the Jinja-rendered ``report.md`` (PR comment) and ``report.html`` (the offline viewer), Mermaid charts, the size budget."""

from .html import render_html
from .render import (
                     GITHUB_COMMENT_LIMIT,
                     MARKER,
                     body_length,
                     codeblock,
                     inline,
                     links,
                     render_markdown,
                     sparkline,
                     suite_chart,
                     trend,
                     write_outputs,
)

__all__ = ["GITHUB_COMMENT_LIMIT", "MARKER", "body_length", "codeblock", "inline", "links", "render_html", "render_markdown",
           "sparkline", "suite_chart", "trend", "write_outputs"]
