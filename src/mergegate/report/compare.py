"""What changed between two runs (``mergegate compare A B``): flipped cases, suite metrics, gates, the verdict.

Cases are matched by ``suite::id`` and compared per role: a candidate that now
fails a case it passed is a flip even when the baseline did not change. The
result is plain data (:class:`RunComparison`); :func:`summary_lines` is the
terminal's view and :func:`render_compare_html` the viewer's.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

from ..results import ROLES, CaseResult, RunResults
from .html import case_json, page_context
from .render import _env

__all__ = ["CaseFlip", "MetricChange", "GateChange", "RunComparison", "compare_runs", "summary_lines", "render_compare_html",
           "write_compare_html"]

_EPS = 1e-9


@dataclass(frozen=True)
class CaseFlip:
    """One case whose pass/fail changed for one role between the two runs."""

    suite: str
    id: str
    role: str
    before: Optional[bool]
    after: Optional[bool]

    @property
    def key(self) -> str:
        return f"{self.suite}::{self.id}"

    @property
    def kind(self) -> str:
        """'pass→fail', 'fail→pass', or for a check without threshold on one side 'pass→–' and the like."""
        def word(p: Optional[bool]) -> str:
            return "pass" if p is True else "fail" if p is False else "–"
        return f"{word(self.before)}→{word(self.after)}"


@dataclass(frozen=True)
class MetricChange:
    """One suite metric of one role in both runs (None: absent in that run)."""

    suite: str
    metric: str
    role: str
    before: Optional[float]
    after: Optional[float]

    @property
    def change(self) -> Optional[float]:
        return None if self.before is None or self.after is None else self.after - self.before


@dataclass(frozen=True)
class GateChange:
    """A gate whose outcome differs (None: the gate did not run in that run)."""

    name: str
    before: Optional[str]
    after: Optional[str]


@dataclass
class RunComparison:
    """Everything that differs between run A (before) and run B (after)."""

    verdict_before: str
    verdict_after: str
    flips: list[CaseFlip] = field(default_factory=list)
    metrics: list[MetricChange] = field(default_factory=list)
    gates: list[GateChange] = field(default_factory=list)
    matched: int = 0
    only_before: list[str] = field(default_factory=list)
    only_after: list[str] = field(default_factory=list)
    models: dict[str, tuple[str, str]] = field(default_factory=dict)

    @property
    def verdict_changed(self) -> bool:
        return self.verdict_before != self.verdict_after

    def count(self, role: str, kind: str) -> int:
        """Return how many of ``role``'s cases flipped as ``kind`` ('pass→fail', 'fail→pass')."""
        return sum(1 for f in self.flips if f.role == role and f.kind == kind)


def _model_label(run: RunResults, role: str) -> str:
    m = run.meta.models.get(role)
    if m is None:
        return "–"
    return m.model + (f" + {m.adapter}" if m.adapter else "")


def _suite_metrics(run: RunResults) -> dict[tuple[str, str, str], Optional[float]]:
    out: dict[tuple[str, str, str], Optional[float]] = {}
    for s in run.suites:
        for comp in [s.pass_rate, *s.metrics.values(), *s.rubric.values()]:
            for role in ROLES:
                out[(s.name, comp.name, role)] = getattr(comp, role)
    return out


def _differs(va: Optional[float], vb: Optional[float]) -> bool:
    if va is None or vb is None:
        return (va is None) != (vb is None)
    return abs(va - vb) > _EPS


def compare_runs(before: RunResults, after: RunResults) -> RunComparison:
    """Return what changed from ``before`` (run A) to ``after`` (run B)."""
    a = {f"{c.suite}::{c.id}": c for c in before.cases}
    b = {f"{c.suite}::{c.id}": c for c in after.cases}
    out = RunComparison(verdict_before=before.verdict, verdict_after=after.verdict,
                        only_before=sorted(a.keys() - b.keys()), only_after=sorted(b.keys() - a.keys()),
                        models={role: (_model_label(before, role), _model_label(after, role)) for role in ROLES})
    for case_key, cb in b.items():
        ca = a.get(case_key)
        if ca is None:
            continue
        out.matched += 1
        out.flips += [CaseFlip(cb.suite, cb.id, role, getattr(ca, role).passed, getattr(cb, role).passed)
                      for role in ROLES if getattr(ca, role).passed != getattr(cb, role).passed]
    ma, mb = _suite_metrics(before), _suite_metrics(after)
    out.metrics = [MetricChange(k[0], k[1], k[2], before=ma.get(k), after=mb.get(k))
                   for k in list(ma) + [k for k in mb if k not in ma] if _differs(ma.get(k), mb.get(k))]
    ga = {g.name: g.outcome for g in before.gates}
    gb = {g.name: g.outcome for g in after.gates}
    out.gates = [GateChange(n, ga.get(n), gb.get(n)) for n in list(ga) + [n for n in gb if n not in ga] if ga.get(n) != gb.get(n)]
    return out


def _pct(v: Optional[float]) -> str:
    return "–" if v is None else f"{v * 100:.1f}%"


def _pt(v: Optional[float]) -> str:
    return "–" if v is None else f"{v * 100:+.1f} pt"


def _role_line(c: RunComparison, role: str) -> str:
    down, up = c.count(role, "pass→fail"), c.count(role, "fail→pass")
    other = sum(1 for f in c.flips if f.role == role) - down - up
    return f"{role}: {down} pass→fail, {up} fail→pass" + (f", {other} other (a side without a thresholded check)" if other else "")


def _capped(lines: list[str], limit: int, what: str) -> list[str]:
    return lines[:limit] + ([f"  … {len(lines) - limit} more {what} in compare.html"] if len(lines) > limit else [])


def summary_lines(c: RunComparison, limit: int = 10) -> list[str]:
    """Return the terminal summary: verdict, flips per role, pass-rate changes, gate changes (at most ``limit`` of each list)."""
    verdict = f"{c.verdict_before} → {c.verdict_after}" if c.verdict_changed else f"{c.verdict_after} (unchanged)"
    lines = [f"verdict: {verdict}", f"cases matched by suite::id: {c.matched}"
             + (f" ({len(c.only_before)} only in A, {len(c.only_after)} only in B)" if c.only_before or c.only_after else "")]
    for role in ROLES:
        if c.models.get(role) and c.models[role][0] != c.models[role][1]:
            lines.append(f"{role}: {c.models[role][0]} → {c.models[role][1]}")
        lines.append(_role_line(c, role))
    lines += _capped([f"  {m.suite} {m.role} pass rate: {_pct(m.before)} → {_pct(m.after)} ({_pt(m.change)})"
                      for m in c.metrics if m.metric == "pass_rate"], limit, "pass-rate changes")
    lines += _capped([f"  gate {g.name.split('::')[-1]}: {g.before or 'absent'} → {g.after or 'absent'}" for g in c.gates], limit,
                     "gate changes")
    return lines


def _flip_cases(c: RunComparison, before: RunResults, after: RunResults, suites: dict[str, int]) -> Iterator[dict[str, Any]]:
    """Yield the viewer's cases: one per flip, B's side of the role first (the column labelled 'B'), A's second."""
    a: dict[str, CaseResult] = {f"{x.suite}::{x.id}": x for x in before.cases}
    b: dict[str, CaseResult] = {f"{x.suite}::{x.id}": x for x in after.cases}
    for f in c.flips:
        ca, cb = a[f.key], b[f.key]
        yield case_json(cb, suites, role=f.role, sides=(getattr(cb, f.role), getattr(ca, f.role)))


def _context(c: RunComparison, before: RunResults, after: RunResults, names: tuple[str, str]) -> dict[str, Any]:
    suites = sorted({f.suite for f in c.flips})
    index = {s: i for i, s in enumerate(suites)}
    labels = {"c": "B (after)", "bl": "A (before)"}
    head = {"v": 1, "kind": "compare", "labels": labels, "suites": suites, "verdict": c.verdict_after}
    keys = {f.key for f in c.flips}
    flipped = [x for x in after.cases if f"{x.suite}::{x.id}" in keys]
    filters = {"suites": suites, "roles": [r for r in ROLES if any(f.role == r for f in c.flips)],
               "categories": sorted({x.category for x in flipped}),
               "checks": sorted({k.type for x in flipped for side in (x.candidate, x.baseline) for k in side.checks})}
    ctx = page_context(f"mergegate compare: {c.verdict_before} → {c.verdict_after}", head, _flip_cases(c, before, after, index), filters)
    rates = [m for m in c.metrics if m.metric == "pass_rate"]
    ctx.update(c=c, names=names, rates=rates, others=[m for m in c.metrics if m.metric != "pass_rate"], roles=ROLES, pct=_pct, pt=_pt,
               fmt=lambda v: "–" if v is None else f"{v:.3f}", signed=lambda v: "–" if v is None else f"{v:+.3f}")
    return ctx


def render_compare_html(c: RunComparison, before: RunResults, after: RunResults, names: tuple[str, str] = ("A", "B")) -> str:
    """Return compare.html: the change summary and every flipped case side by side (B | A), in the report viewer's style."""
    return "".join(_env(True).get_template("compare.html.j2").generate(**_context(c, before, after, names)))


def write_compare_html(c: RunComparison, before: RunResults, after: RunResults, path: Path, names: tuple[str, str] = ("A", "B")) -> Path:
    """Write compare.html to ``path`` through a temporary file; return the path."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "w", encoding="utf-8") as fh:
        fh.writelines(_env(True).get_template("compare.html.j2").generate(**_context(c, before, after, names)))
    tmp.replace(path)
    return path
