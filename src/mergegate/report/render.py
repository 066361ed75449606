"""Rendering ``report.md`` (the PR comment) from :class:`RunResults` with Jinja; ``write_outputs`` also writes ``report.html`` (html.py).

Model output is hostile input for a report: it may hold backticks, pipes,
HTML, ``@mentions``. The filters here make every piece of it inert:
``inline`` for table cells, ``codeblock`` for whole outputs.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, Optional

import jinja2

from ..results import ROLES, HistoryEntry, RunResults
from . import digest

__all__ = ["render_markdown", "write_outputs", "inline", "html_inline", "codespan", "codeblock", "MARKER", "GITHUB_COMMENT_LIMIT",
           "body_length", "suite_chart", "sparkline", "trend", "links"]

MARKER = "<!-- mergegate-report -->"
_ZWSP = "\u200b"


def _defang(text: str) -> str:
    # A zero-width space after '@' stops GitHub from turning '@user' / '@org/team' into a ping.
    return text.replace("@", "@" + _ZWSP)


def _unlink(text: str) -> str:
    # GitHub autolinks bare URLs and www. names in markdown text; a zero-width space keeps a model's URL plain text.
    return re.sub(r"(?i)(://|www\.)", lambda m: m.group(1)[:-1] + _ZWSP + m.group(1)[-1], text)


def _one_line(text: Optional[str], limit: int) -> str:
    s = " ".join(str(text).split()) if text is not None else ""
    return s[: limit - 1] + "…" if len(s) > limit else s


def inline(text: Optional[str], limit: int = 120) -> str:
    """Return ``text`` safe for one markdown table cell: one line, escaped, at most ``limit`` chars.

    Markdown text only: inside raw HTML GitHub shows the backslashes (use :func:`html_inline` there).
    """
    s = _one_line(text, limit)
    s = s.replace("\\", "\\\\").replace("|", "\\|").replace("`", "\\`").replace("*", "\\*").replace("_", "\\_")
    s = s.replace("[", "\\[").replace("]", "\\]")
    s = s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return _unlink(_defang(s))


# Character references read the same in an HTML block (where GitHub leaves markdown alone, backslashes included) and in
# markdown text (a table cell, where '|' would split the cell and '*', '_', '`', '[' would format).
_HTML_INLINE = str.maketrans({"&": "&amp;", "<": "&lt;", ">": "&gt;", "|": "&#124;", "`": "&#96;",
                              "\\": "&#92;", "*": "&#42;", "[": "&#91;", "]": "&#93;", "~": "&#126;"})
# '_' between two letters or digits can neither open nor close emphasis: it stays as written (test_go_no_go reads as such).
_EDGE_UNDERSCORE = re.compile(r"(?<![^\W_])_|_(?![^\W_])")


def html_inline(text: Optional[str], limit: int = 120) -> str:
    """Return ``text`` safe inside raw HTML (``<summary>``, ``<code>``, ``<sub>``) and in a table cell: one line, no markdown escapes."""
    return _unlink(_defang(_EDGE_UNDERSCORE.sub("&#95;", _one_line(text, limit).translate(_HTML_INLINE))))


def codespan(text: Optional[str], limit: int = 120) -> str:
    """Return ``text`` as one markdown code span (outside tables), its fence longer than any backtick run it holds."""
    s = _defang(_one_line(text, limit))
    if not s:
        return ""
    tick = "`" * (max((len(m) for m in re.findall(r"`+", s)), default=0) + 1)
    pad = " " if s.startswith("`") or s.endswith("`") else ""
    return f"{tick}{pad}{s}{pad}{tick}"


def codeblock(text: Optional[str], limit: int = 2000) -> str:
    """Return ``text`` as a fenced code block it cannot break out of, truncated to ``limit`` chars."""
    s = "" if text is None else str(text)
    if len(s) > limit:
        s = s[:limit] + f"\n… [{len(s) - limit} more characters]"
    longest = max((len(m) for m in re.findall(r"`+", s)), default=0)
    fence = "`" * max(3, longest + 1)
    return f"{fence}text\n{_defang(s)}\n{fence}"


def _fmt(value: Optional[float], pct: bool = False, signed: bool = False, digits: int = 3) -> str:
    if value is None:
        return "–"
    if pct:
        return f"{value * 100:+.1f} pt" if signed else f"{value * 100:.1f}%"
    return f"{value:+.{digits}f}" if signed else f"{value:.{digits}f}"


def _ci(c: Any, pct: bool = True) -> str:
    """Return a comparison's paired interval as text ('–' without one)."""
    p = getattr(c, "paired", None)
    if p is None:
        return "–"
    return f"[{_fmt(p.ci_low, pct=pct, signed=True)}, {_fmt(p.ci_high, pct=pct, signed=True)}]"


def _delta_ci(c: Any) -> str:
    """Return a pass-rate comparison's delta with its paired interval: '-27.3 pt (-34.5 to -19.6)'."""
    p = getattr(c, "paired", None)
    interval = f" ({p.ci_low * 100:+.1f} to {p.ci_high * 100:+.1f})" if p is not None else ""
    return _fmt(c.delta, pct=True, signed=True) + interval


def _pval(p: Optional[float]) -> str:
    return "–" if p is None else ("<0.001" if p < 0.001 else f"{p:.3f}")


def _fmt0(value: Optional[float]) -> str:
    return "–" if value is None else f"{value:.0f}"


def _ms(value: Optional[float]) -> str:
    return "–" if value is None else f"{value:.0f} ms"


@functools.cache  # one environment per process: jinja caches the compiled templates on it
def _env(autoescape: bool) -> jinja2.Environment:
    env = jinja2.Environment(autoescape=autoescape, loader=jinja2.PackageLoader("mergegate.report", "templates"), trim_blocks=True,
                             lstrip_blocks=True, undefined=jinja2.StrictUndefined, keep_trailing_newline=True,
                             bytecode_cache=_bytecode_cache())
    env.filters.update(inline=inline, html_inline=html_inline, codespan=codespan, codeblock=codeblock, fmt=_fmt, fmt0=_fmt0, ms=_ms,
                       ci=_ci, delta_ci=_delta_ci, pval=_pval, gate_test=digest.gate_test, gate_message=digest.gate_message)
    return env


def _bytecode_cache() -> Optional[jinja2.BytecodeCache]:
    """Return jinja's per-user bytecode cache, or None where it cannot live.

    Compiling the two templates is ~0.25 s of every run; the cache (keyed by
    template source, checked by jinja) makes it a file read.
    """
    try:
        return jinja2.FileSystemBytecodeCache()
    except (OSError, RuntimeError):  # no writable temp dir, or one another user owns: compile every time
        return None


_BANNER = {"GO": "🟢 GO", "NO-GO": "🔴 NO-GO", "INCOMPLETE": "⚪ INCOMPLETE", "PENDING": "⏳ PENDING (one shard; run mergegate merge)"}

#: GitHub rejects issue comments longer than this (characters).
GITHUB_COMMENT_LIMIT = 65536


def body_length(text: str) -> int:
    """Return the length GitHub's limit is checked against, counted conservatively in UTF-16 code units.

    An emoji is one character but two UTF-16 units; counting units keeps us under
    the limit whichever way the server counts.
    """
    return len(text.encode("utf-16-le")) // 2


def _mermaid_label(text: str, limit: int = 24) -> str:
    # Mermaid labels sit inside double quotes; keep a safe alphabet so no label can end the string or the block.
    clean = re.sub(r"[^A-Za-z0-9 ._:/+-]", "", str(text))[:limit]
    return clean or "?"


def _pct(v: Optional[float]) -> str:
    return "0" if v is None else f"{v * 100:.1f}"


def suite_chart(run: RunResults) -> str:
    """Return a Mermaid bar chart of per-suite pass rates (bars: candidate, line: baseline), or '' without suites."""
    suites = [s for s in run.suites if s.pass_rate.candidate is not None or s.pass_rate.baseline is not None]
    if not suites:
        return ""
    labels = ", ".join(f'"{_mermaid_label(s.name)}"' for s in suites)
    return "\n".join([
        "```mermaid", "xychart-beta", '    title "Pass rate per suite (%): bars candidate, line baseline"',
        f"    x-axis [{labels}]", '    y-axis "pass rate (%)" 0 --> 100',
        f"    bar [{', '.join(_pct(s.pass_rate.candidate) for s in suites)}]",
        f"    line [{', '.join(_pct(s.pass_rate.baseline) for s in suites)}]", "```"])


_SPARKS = "▁▂▃▄▅▆▇█"


def sparkline(values: list[Optional[float]]) -> str:
    """Return ``values`` in [0, 1] as a row of block characters ('·' for a missing value)."""
    return "".join("·" if v is None else _SPARKS[min(7, max(0, int(v * 8 - 1e-9)))] for v in values)


def trend(run: RunResults, history: Optional[list[HistoryEntry]]) -> Optional[dict]:
    """Return the main line's trend for the report (overall and per-suite candidate pass rates), or None."""
    if not history:
        return None
    overall = [e.pass_rate for e in history]
    rows = []
    for s in run.suites:
        past = [e.suites.get(s.name, {}).get("pass_rate") for e in history]
        rows.append({"name": s.name, "spark": sparkline(past), "last": past[-1], "now": s.pass_rate.candidate})
    labels = ", ".join(f'"{_mermaid_label((e.commit or "?")[:7])}"' for e in history) + ', "this PR"'
    gated = [c.candidate.passed for c in run.cases if c.candidate.passed is not None]
    now = sum(gated) / len(gated) if gated else None
    chart = "\n".join([
        "```mermaid", "xychart-beta", f'    title "Candidate pass rate (%): last {len(history)} main-line runs, then this PR"',
        f"    x-axis [{labels}]", '    y-axis "pass rate (%)" 0 --> 100',
        f"    line [{', '.join(_pct(v) for v in overall + [now])}]", "```"])
    return {"n": len(history), "rows": rows, "chart": chart, "first": history[0], "last": history[-1]}


_RUN_URL = re.compile(r"https?://[A-Za-z0-9.-]+(:[0-9]+)?/[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+/actions/runs/[0-9]+")
_SHA = re.compile(r"[0-9a-f]{7,64}")


def links(run: RunResults, run_url: Optional[str] = None, commit: Optional[str] = None) -> dict[str, Any]:
    """Return the report's links: the workflow run, its artifacts, and the commit evaluated.

    ``results.json`` may come from an artifact that code in the pull request wrote,
    so a URL or commit that does not have the expected shape is dropped, not linked.
    """
    ci = run.meta.ci
    url = run_url or (ci.run_url if ci else None)
    url = url if url and _RUN_URL.fullmatch(url) else None
    commit = commit or ((ci.head_sha or ci.sha) if ci else None) or run.meta.git_commit
    commit = commit if commit and _SHA.fullmatch(commit) else None
    server_repo = url.split("/actions/runs/")[0] if url and "/actions/runs/" in url else None
    return {"run": url, "artifact": f"{url}#artifacts" if url else None, "commit": commit,
            "commit_url": f"{server_repo}/commit/{commit}" if server_repo and commit else None,
            "pr": ci.pr_number if ci else None}


# Each level shows less model output; the last shows none. The comment takes the first level that fits.
# max_cases: failing cases shown with both outputs; max_listed: more shown as one line each (the failed check and its reason).
_LEVELS = [
    dict(max_cases=10, max_listed=40, input_limit=1000, output_limit=1500, details=True),
    dict(max_cases=5, max_listed=30, input_limit=400, output_limit=600, details=True),
    dict(max_cases=3, max_listed=20, input_limit=150, output_limit=200, details=True),
    dict(max_cases=0, max_listed=50, input_limit=0, output_limit=0, details=False),
]


def code_failures(run: RunResults) -> list[dict]:
    """Return, per suite with code_tests checks, both models' pass@1 and how their failures ended (syntax error, timeout, ...)."""
    return [{"suite": s.name, "n": s.code.n, "isolation": ", ".join(s.code.isolation) or "unknown",
             **{f"{r}_pass": s.code.pass_rate.get(r) for r in ROLES},
             **{f"{r}_failures": ", ".join(f"{v} {k.replace('_', ' ')}" for k, v in sorted(s.code.failures.get(r, {}).items())) or "none"
                for r in ROLES}}
            for s in run.suites if s.code is not None]


def render_markdown(run: RunResults, *, history: Optional[list[HistoryEntry]] = None, run_url: Optional[str] = None,
                    commit: Optional[str] = None, limit: Optional[int] = None, unverified: Optional[str] = None) -> str:
    """Return the markdown report; it starts with the hidden marker the PR comment is found by.

    Laid out for a ten-second read: the verdict, why (the failing gates in words),
    the per-suite table and chart; everything else collapsed below.
    With ``limit`` (e.g. :data:`GITHUB_COMMENT_LIMIT`) the report degrades until it
    fits: fewer and shorter model outputs, then none, then a cut at a line with a
    link to the full report in the run's artifact. It never exceeds ``limit``.
    ``unverified``: why GitHub cannot vouch for these results (a fork's run, a verdict
    the run's conclusion contradicts); the heading and a caution block say so first.
    """
    link = links(run, run_url, commit)
    failing, counts = digest.failing_cases(run)
    ctx = dict(run=run, marker=MARKER, banner=_BANNER[run.verdict], unverified=unverified, links=link, why=digest.why(run),
               unsure=[g for g in run.gates if g.outcome == "insufficient"], suite_gates=digest.suite_gates(run),
               degenerate={s.name: digest.degenerate(s) for s in run.suites}, chart=suite_chart(run), trend=trend(run, history),
               gates=[g for g in run.gates if g.outcome != "skipped"], skipped=digest.skipped_line(run.gates),
               gate_counts=digest.gate_counts(run.gates), icons=digest.ICONS, code=code_failures(run), counts=counts)
    template = _env(False).get_template("report.md.j2")
    text = ""
    for level in (_LEVELS if limit else _LEVELS[:1]):
        shown, listed = level["max_cases"], level["max_listed"]
        text = template.render(shown=[digest.case_view(c) for c in failing[:shown]],
                               listed=[digest.case_view(c) for c in failing[shown: shown + listed]],
                               unlisted=max(0, len(failing) - shown - listed), **level, **ctx)
        if limit is None or body_length(text) <= limit:
            return text
    assert limit is not None
    return _cut(text, limit, link["artifact"])


def _cut(text: str, limit: int, artifact: Optional[str]) -> str:
    """Return ``text`` cut so that it and a closing note fit in ``limit``.

    The cut falls at a line outside any code fence, and every ``<details>`` still open
    is closed: the note must not land inside a fence or a collapsed section.
    """
    where = f"the [run's artifact]({artifact})" if artifact else "`results/report.md` of the run's artifact"
    note = f"\n\n---\n**Report truncated** to GitHub's comment limit; the full report is in {where}.\n"
    close = "\n\n</details>"
    budget = limit - body_length(note)
    out: list[str] = []
    used, opened, fence = 0, 0, None
    safe = (0, 0)  # lines kept and <details> open at the last line end outside a fence
    for line in text.splitlines(keepends=True):
        n = body_length(line)
        if used + n + len(close) * (opened + line.count("<details>")) > budget:
            break
        out.append(line)
        used += n
        opened += line.count("<details>") - line.count("</details>")
        m = re.match(r"(`{3,})", line)
        if fence is None and m:
            fence = m.group(1)
        elif fence is not None and line.strip() == fence:
            fence = None
        if fence is None:
            safe = (len(out), opened)
    kept, opened = safe
    return "".join(out[:kept]).rstrip("\n") + close * opened + note


def write_outputs(run: RunResults, out_dir: str | Path, history: Optional[list[HistoryEntry]] = None) -> dict[str, Path]:
    """Write results.json, report.md and report.html into ``out_dir``; return their paths.

    Each file is written to a temporary name and renamed, so a reader never sees half a file.
    """
    from .html import html_parts  # the viewer's module imports this one

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    # One file at a time, the HTML streamed: at 10,000 cases each is megabytes, and holding all three raised the peak.
    files: dict[str, Callable[[], Iterable[bytes]]] = {
        "results.json": lambda: [run.__pydantic_serializer__.to_json(run, indent=2)],  # bytes: no copy as a str
        "report.md": lambda: [render_markdown(run, history=history).encode()],
        "report.html": lambda: (part.encode() for part in html_parts(run)),
    }
    paths = {}
    for name, produce in files.items():
        tmp = out / f".{name}.tmp"
        with open(tmp, "wb") as fh:
            fh.writelines(produce())
        tmp.replace(out / name)
        paths[name] = out / name
    return paths
