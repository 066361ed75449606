"""``report.html``: one self-contained offline viewer of a run (inline CSS and JS, no network).

The page has two layers. A server-rendered summary (verdict, reasons, warnings,
per-suite table, chart, gates, judge, benchmarks) reads without JavaScript. The
cases travel as compact JSON in a ``<script type="application/json">`` block,
and ``templates/viewer.js`` builds the case explorer from it (filters, search,
side-by-side outputs with a diff, every check and its reason).

Model output is hostile: in the JSON every ``<``, ``>`` and ``&`` is a ``\\u`` escape,
so no output can close the script block, and the viewer puts text into the page
with ``textContent`` only. A Content-Security-Policy admits exactly the viewer's
own script (by hash) and no network at all.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import json
import os
from collections.abc import Iterator
from importlib import resources
from pathlib import Path
from typing import Any, Optional

from markupsafe import Markup

from ..results import ROLES, CaseResult, CheckResult, RunResults, SideResult
from ..results.messages import readable
from .chart import suite_svg
from .render import _env

__all__ = ["render_html", "html_parts", "write_html", "case_json", "script_json", "VIEWER_MARKER", "OUTPUT_LIMIT"]

#: The first lines of every report.html this module writes carry this (``mergegate view`` reuses such a file).
VIEWER_MARKER = "mergegate-viewer/1"
#: Characters of one output (input, reference) kept in the page; the rest stays in results.json.
OUTPUT_LIMIT = 4000
_DETAIL_LIMIT = 1500  # a check's reason, an error
_EXTRA_LIMIT = 2000  # a check's extra data and tool calls, as JSON text

# JSON inside <script>: these three as \u escapes keep '</script>' and '<!--' out; JSON.parse reads them back unchanged.
_SCRIPT_SAFE = str.maketrans({"<": "\\u003c", ">": "\\u003e", "&": "\\u0026", "\u2028": "\\u2028", "\u2029": "\\u2029"})


def script_json(value: Any) -> str:
    """Return ``value`` as compact JSON that is inert inside a ``<script>`` element."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False).translate(_SCRIPT_SAFE)


def _cap(text: Optional[str], limit: int = OUTPUT_LIMIT) -> str:
    s = "" if text is None else str(text)
    if len(s) <= limit:
        return s
    return s[:limit] + f"\n… [{len(s) - limit:,} more characters in results.json]"


def _round(x: Optional[float]) -> Optional[float]:
    return None if x is None else round(x, 4)


def _check(ch: CheckResult) -> list[Any]:
    """Return one check as [type, metric, score, passed, reason, extra as JSON text or '']."""
    extra = _cap(json.dumps(ch.extra, ensure_ascii=False, default=str), _EXTRA_LIMIT) if ch.extra else ""
    return [ch.type, ch.metric, _round(ch.score), ch.passed, _cap(ch.detail, _DETAIL_LIMIT), extra]


def _side(s: SideResult) -> dict[str, Any]:
    """Return one model's side of a case, leaving out what is empty (the page is megabytes at 10,000 cases)."""
    g = s.generation
    d: dict[str, Any] = {"p": s.passed, "t": _cap(g.text), "ch": [_check(c) for c in s.checks]}
    optional: dict[str, Any] = {
        "e": _cap(g.error, _DETAIL_LIMIT) if g.error else None, "f": g.finish_reason,
        "ms": None if g.latency_ms is None else round(g.latency_ms), "tok": g.completion_tokens,
        "cached": 1 if g.cached else None,
        "tc": _cap(json.dumps(g.tool_calls, ensure_ascii=False), _EXTRA_LIMIT) if g.tool_calls else None,
        "turns": [_cap(t, 1000) for t in g.turns[:-1]] if g.turns and len(g.turns) > 1 else None,
    }
    d.update({k: v for k, v in optional.items() if v is not None})
    return d


def case_json(c: CaseResult, suite_index: dict[str, int], role: Optional[str] = None,
              sides: Optional[tuple[SideResult, SideResult]] = None) -> dict[str, Any]:
    """Return one case for the viewer: ``c`` is the first side's column, ``bl`` the second's.

    A report shows candidate | baseline; ``mergegate compare`` passes ``sides`` (the
    later run's side, the earlier run's side of ``role``) and the same viewer shows them.
    """
    first, second = sides or (c.candidate, c.baseline)
    d: dict[str, Any] = {"s": suite_index[c.suite], "i": c.id, "k": c.category, "in": _cap(c.input),
                         "c": _side(first), "bl": _side(second)}
    if c.reference is not None:
        d["ref"] = _cap(c.reference)
    if c.blocking:
        d["b"] = 1
    if c.contaminated:
        d["cont"] = 1
    if c.line:
        d["ln"] = c.line
    if role:
        d["r"] = role
    return d


def data_chunks(head: dict[str, Any], cases: Iterator[dict[str, Any]]) -> Iterator[Markup]:
    """Yield the JSON data block in pieces, a case at a time: the page is never one string in memory."""
    opening = script_json({**head, "cases": []})
    yield Markup(opening[:-2])  # '..."cases":[': inert JSON (script_json)
    for n, case in enumerate(cases):
        yield Markup(("," if n else "") + script_json(case))
    yield Markup("]}")


def _percent(v: Optional[float]) -> str:
    return "–" if v is None else f"{v * 100:.1f}%"


def _points(v: Optional[float]) -> str:
    return "–" if v is None else f"{v * 100:+.1f} pt".replace("-", "−")


def _answers(s: Any) -> list[str]:
    """Return per role 'candidate: 3 of 82 (4%): 1 empty, 2 cut off, 0 echoed', the answers that carry no real answer."""
    out = []
    for role in ROLES:
        q = s.answers.get(role)
        if q is None or not q.n:
            continue
        if not q.degenerate:
            out.append(f"{role}: none of {q.n}")
        else:
            out.append(f"{role}: {q.degenerate} of {q.n} ({q.share * 100:.0f}%): {q.empty} empty, {q.truncated} cut off, {q.echoed} echoed")
    return out


def _suite_row(s: Any) -> dict[str, Any]:
    p = s.pass_rate.paired
    if p is None:
        change = "–"
    elif p.ci_high < 0:
        change = "✗ worse"
    elif p.ci_low > 0:
        change = "✓ better"
    else:
        change = "no clear change"
    return {"name": s.name, "role": s.role, "n": s.n, "cand": _percent(s.pass_rate.candidate), "base": _percent(s.pass_rate.baseline),
            "cand_v": s.pass_rate.candidate, "base_v": s.pass_rate.baseline,
            "delta": _points(s.pass_rate.delta), "delta_v": s.pass_rate.delta,
            "ci": f"{_points(p.ci_low)} to {_points(p.ci_high)}" if p else "–", "p": _pval(p.p_value if p else None),
            "change": change, "regressions": s.regressions, "improvements": s.improvements, "answers": _answers(s)}


def _pval(p: Optional[float]) -> str:
    return "–" if p is None else ("<0.001" if p < 0.001 else f"{p:.3f}")


def _gate_message(message: str) -> str:
    # results written before messages were cleaned at the source still carry pytest's rewrite text
    return readable(message)


def _gates(run: RunResults) -> dict[str, Any]:
    shown = [{"name": g.name.split("::")[-1], "full": g.name, "outcome": g.outcome, "reason": _gate_message(g.message),
              "message": g.message, "underpowered": g.underpowered or ""} for g in run.gates if g.outcome != "skipped"]
    counts: dict[str, int] = {}
    for g in run.gates:
        counts[g.outcome] = counts.get(g.outcome, 0) + 1
    return {"rows": shown, "counts": counts, "skipped": [g.name.split("::")[-1] for g in run.gates if g.outcome == "skipped"]}


# Text marks, not emoji: a machine without an emoji font (a CI runner's headless browser) shows emoji as boxes.
_BANNER = {"GO": "✓ GO", "NO-GO": "✗ NO-GO", "INCOMPLETE": "⚠ INCOMPLETE", "PENDING": "… PENDING (one shard: run mergegate merge)"}
_MARK = {"passed": "✓ passed", "failed": "✗ failed", "error": "✗ error", "skipped": "– skipped", "advisory": "! advisory",
         "insufficient": "? insufficient evidence", "OK": "✓ OK", "WARN": "! WARN", "CRIT": "✗ CRIT", "ERROR": "✗ ERROR"}


def _filters(cases: list[CaseResult]) -> dict[str, list[str]]:
    return {"categories": sorted({c.category for c in cases}),
            "checks": sorted({ch.type for c in cases for side in (c.candidate, c.baseline) for ch in side.checks})}


@functools.cache
def _asset(name: str) -> str:
    return resources.files("mergegate.report").joinpath("templates", name).read_text(encoding="utf-8")


def page_context(title: str, head: dict[str, Any], cases: Iterator[dict[str, Any]], filters: dict[str, Any]) -> dict[str, Any]:
    """Return what the viewer's base template needs: assets, the script's CSP hash, the data block, the filter choices."""
    js = _asset("viewer.js")
    digest = base64.b64encode(hashlib.sha256(js.encode()).digest()).decode()
    return {"title": title, "css": Markup(_asset("viewer.css")), "js": Markup(js),  # our own files
            "script_hash": f"sha256-{digest}", "data": data_chunks(head, cases), "filters": filters, "marker": VIEWER_MARKER,
            "mark": _MARK, "labels": head["labels"]}


def _context(run: RunResults) -> dict[str, Any]:
    suites = [s.name for s in run.suites]
    for c in run.cases:  # a shard or a filtered run may hold cases of a suite without a summary
        if c.suite not in suites:
            suites.append(c.suite)
    index = {name: i for i, name in enumerate(suites)}
    files = {m.name: m.file for m in run.meta.suites}
    head = {"v": 1, "kind": "report", "labels": {"c": "candidate", "bl": "baseline"}, "suites": suites, "verdict": run.verdict,
            "files": [files.get(s, "") for s in suites]}
    cases = (case_json(c, index) for c in run.cases)
    ctx = page_context(f"mergegate {run.verdict}", head, cases, {"suites": suites, **_filters(run.cases), "roles": []})
    ctx.update(run=run, banner=_BANNER[run.verdict], suites=[_suite_row(s) for s in run.suites], chart=suite_svg(run.suites),
               gates=_gates(run), percent=_percent, points=_points)
    return ctx


def html_parts(run: RunResults) -> Iterator[str]:
    """Yield ``report.html`` in pieces (``write_outputs`` streams them to the file)."""
    return _env(True).get_template("report.html.j2").generate(**_context(run))


def render_html(run: RunResults) -> str:
    """Return ``report.html``: the self-contained offline viewer of ``run`` (summary without JavaScript, cases with it)."""
    return "".join(html_parts(run))


def write_html(run: RunResults, path: str | Path) -> Path:
    """Write ``report.html`` for ``run`` to ``path`` through a temporary file; return the path."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "w", encoding="utf-8") as fh:
        fh.writelines(html_parts(run))
    tmp.replace(path)
    return path
