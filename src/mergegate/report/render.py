"""Rendering ``report.md`` (the PR comment) and ``report.html`` from :class:`RunResults` with Jinja.

Model output is hostile input for a report: it may hold backticks, pipes,
HTML, ``@mentions``. The filters here make every piece of it inert:
``inline`` for table cells, ``codeblock`` for whole outputs.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Optional

import jinja2

from ..results import RunResults

__all__ = ["render_markdown", "render_html", "write_outputs", "inline", "codeblock", "MARKER"]

MARKER = "<!-- mergegate-report -->"
_ZWSP = "\u200b"


def _defang(text: str) -> str:
    # A zero-width space after '@' stops GitHub from turning '@user' / '@org/team' into a ping.
    return text.replace("@", "@" + _ZWSP)


def inline(text: Optional[str], limit: int = 120) -> str:
    """Return ``text`` safe for one markdown table cell: one line, escaped, at most ``limit`` chars."""
    if text is None:
        return ""
    s = " ".join(str(text).split())
    if len(s) > limit:
        s = s[: limit - 1] + "…"
    s = s.replace("\\", "\\\\").replace("|", "\\|").replace("`", "\\`").replace("*", "\\*").replace("_", "\\_")
    s = s.replace("[", "\\[").replace("]", "\\]")
    s = s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return _defang(s)


def codeblock(text: Optional[str], limit: int = 2000) -> str:
    """Return ``text`` as a fenced code block it cannot break out of, truncated to ``limit`` chars."""
    s = "" if text is None else str(text)
    if len(s) > limit:
        s = s[:limit] + f"\n… [{len(s) - limit} more characters]"
    longest = max((len(m) for m in re.findall(r"`+", s)), default=0)
    fence = "`" * max(3, longest + 1)
    return f"{fence}text\n{_defang(s)}\n{fence}"


def _fmt(value: Optional[float], pct: bool = False, signed: bool = False) -> str:
    if value is None:
        return "–"
    if pct:
        return f"{value * 100:+.1f} pt" if signed else f"{value * 100:.1f}%"
    return f"{value:+.3f}" if signed else f"{value:.3f}"


def _ms(value: Optional[float]) -> str:
    return "–" if value is None else f"{value:.0f} ms"


_ENV_KW = dict(loader=jinja2.PackageLoader("mergegate.report", "templates"), trim_blocks=True, lstrip_blocks=True,
               undefined=jinja2.StrictUndefined, keep_trailing_newline=True)


def _env(autoescape: bool) -> jinja2.Environment:
    env = jinja2.Environment(autoescape=autoescape, **_ENV_KW)
    env.filters.update(inline=inline, codeblock=codeblock, fmt=_fmt, ms=_ms)
    return env


_BANNER = {"GO": "🟢 GO", "NO-GO": "🔴 NO-GO", "INCOMPLETE": "⚪ INCOMPLETE"}


def render_markdown(run: RunResults, max_regressions: int = 10) -> str:
    """Return the markdown report (starts with the hidden marker the PR comment is found by)."""
    regressions = [c for c in run.cases if c.regressed]
    blocking = [c for c in run.cases if c.blocking and c.candidate.passed is False]
    return _env(False).get_template("report.md.j2").render(
        run=run, marker=MARKER, banner=_BANNER[run.verdict], regressions=regressions[:max_regressions],
        more_regressions=max(0, len(regressions) - max_regressions), blocking=blocking)


def render_html(run: RunResults) -> str:
    """Return a standalone HTML report (autoescaped)."""
    regressions = [c for c in run.cases if c.regressed]
    return _env(True).get_template("report.html.j2").render(run=run, banner=_BANNER[run.verdict], regressions=regressions)


def write_outputs(run: RunResults, out_dir: str | Path) -> dict[str, Path]:
    """Write results.json, report.md and report.html into ``out_dir``; return their paths.

    Each file is written to a temporary name and renamed, so a reader never sees half a file.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    files = {"results.json": run.model_dump_json(indent=2), "report.md": render_markdown(run), "report.html": render_html(run)}
    paths = {}
    for name, text in files.items():
        tmp = out / f".{name}.tmp"
        tmp.write_text(text, encoding="utf-8")
        tmp.replace(out / name)
        paths[name] = out / name
    return paths
