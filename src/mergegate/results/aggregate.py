"""From case results to suite, category and run aggregates."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from typing import Any, Optional

import numpy as np

from ..checks.registry import REGISTRY, SuiteMetric
from ..stats import cases_needed, mde, paired_delta
from .models import ROLES, AnswerQuality, CaseResult, CheckResult, Comparison, GroupSummary, PairedDelta, SideResult

__all__ = ["summarize", "percentile", "paired", "population", "answer_quality"]



def percentile(values: list[float], q: float) -> Optional[float]:
    """Return the q-th percentile (linear interpolation, as numpy), or None for no values."""
    return float(np.percentile(values, q)) if values else None


def _mean(values: list[float]) -> Optional[float]:
    return float(np.mean(values)) if values else None


def _pass_rate(sides: list[SideResult]) -> tuple[Optional[float], int]:
    gated = [s.passed for s in sides if s.passed is not None]
    return (_mean([float(p) for p in gated]), len(gated))


def _side_metrics(sides: list[SideResult]) -> dict[str, tuple[Optional[float], int]]:
    """Return the mean score per metric, and the side-scope metrics the checks in ``sides`` declare, with their n."""
    scores: dict[str, list[float]] = defaultdict(list)
    by_type: dict[str, list[CheckResult]] = defaultdict(list)
    for side in sides:
        for c in side.checks:
            by_type[c.type].append(c)
            if c.score is not None:
                scores[c.metric].append(c.score)
    out = {name: (_mean(vals), len(vals)) for name, vals in scores.items()}
    for ctype, results in sorted(by_type.items()):
        for m in _declared(ctype, "side"):
            for name, value in m.fn(results).items():
                out[name] = (value, len(sides))
    return out


def _declared(check_type: str, scope: str) -> list[SuiteMetric]:
    """Return the suite metrics of ``scope`` that ``check_type`` declares (none for a type this process does not know)."""
    ctype = REGISTRY.get(check_type)
    return [m for m in ctype.metrics if m.scope == scope] if ctype is not None else []


def _group_metrics(cases: list[CaseResult]) -> dict[str, Any]:
    """Return the summary fields the check types used in ``cases`` declare (pairwise, rubric, code, ...)."""
    types = sorted({c.type for case in cases for role in ROLES for c in getattr(case, role).checks})
    out: dict[str, Any] = {}
    for ctype in types:
        for m in _declared(ctype, "group"):
            value = m.fn(cases)
            if value is not None:
                out[m.field or ctype] = value
    return out


def _latencies(sides: list[SideResult]) -> dict[str, Optional[float]]:
    vals = [s.generation.latency_ms for s in sides if s.generation.latency_ms is not None]
    return {"p50": percentile(vals, 50), "p95": percentile(vals, 95), "p99": percentile(vals, 99), "mean": _mean(vals)}


def _side_score(side: SideResult, metric: str) -> Optional[float]:
    """Return one side's score on ``metric`` in one case (the mean if several checks report it), or None."""
    if metric == "pass_rate":
        return None if side.passed is None else float(side.passed)
    vals = [c.score for c in side.checks if c.metric == metric and c.score is not None]
    return float(sum(vals) / len(vals)) if vals else None  # per case, per metric: plain Python beats numpy on a few values


def paired(cases: list[CaseResult], metric: str, stats: Any = None, population: Optional[dict[str, int]] = None) -> Optional[PairedDelta]:
    """Return candidate − baseline on ``metric`` over the cases where both sides have it, with its interval.

    ``stats``: the config's StatsOptions (defaults if None). ``population``:
    cases per ``suite/category`` before a ``--sample`` (stratified estimate).
    """
    from ..config.models import StatsOptions

    opts = stats or StatsOptions()
    cand, base, clusters, strata = [], [], [], []
    for c in cases:
        x, y = _side_score(c.candidate, metric), _side_score(c.baseline, metric)
        if x is None or y is None:
            continue
        cand.append(x)
        base.append(y)
        clusters.append(c.cluster if c.cluster is not None else f"\x00{c.suite}::{c.id}")
        strata.append(f"{c.suite}/{c.category}")
    binary = all(v in (0.0, 1.0) for v in cand + base)
    pop = {k: v for k, v in (population or {}).items() if k in set(strata)} or None
    r = paired_delta(cand, base, binary=binary, clusters=clusters, level=opts.level, resamples=opts.resamples, seed=opts.seed,
                     strata=strata if pop else None, population=pop)
    if r is None:
        return None
    rate = float(np.mean(cand + base))
    return PairedDelta(metric=metric, n=r.n, estimate=r.estimate, ci_low=r.ci_low, ci_high=r.ci_high, level=opts.level, p_value=r.p_value,
                       method=r.method, clusters=r.clusters,
                       mde=mde(r.sd_diff, r.n, binary=binary, pass_rate=rate, alpha=1 - opts.level, power=opts.power),
                       min_effect=opts.min_effect,
                       cases_needed=cases_needed(opts.min_effect, r.sd_diff, binary=binary, pass_rate=rate, alpha=1 - opts.level,
                                                 power=opts.power))


def population(sample: Any) -> Optional[dict[str, int]]:
    """Return the cases per ``suite/category`` before a ``--sample`` (None for a full run)."""
    if sample is None:
        return None
    return {f"{suite}/{cat}": n for suite, cats in sample.population.items() for cat, n in cats.items()}


def _words(text: str) -> str:
    return " ".join(text.split()).casefold()


def answer_quality(cases: list[CaseResult], role: str) -> AnswerQuality:
    """Count ``role``'s answers in ``cases`` that are empty, truncated or the input said back (failed requests are not answers)."""
    n = empty = truncated = echoed = degenerate = 0
    for c in cases:
        g = getattr(c, role).generation
        if g.error:
            continue
        n += 1
        is_empty = not g.text.strip() and not g.tool_calls
        is_cut = g.finish_reason == "length"
        is_echo = not is_empty and _words(g.text) == _words(c.input)
        empty, truncated, echoed = empty + is_empty, truncated + is_cut, echoed + is_echo
        degenerate += is_empty or is_cut or is_echo
    return AnswerQuality(n=n, empty=empty, truncated=truncated, echoed=echoed, degenerate=degenerate)


def summarize(cases: Iterable[CaseResult], stats: Any = None, population: Optional[dict[str, int]] = None) -> GroupSummary:
    """Return the aggregates of ``cases`` for both models, every comparison paired and with its interval."""
    cases = list(cases)
    sides = {role: [getattr(c, role) for c in cases] for role in ROLES}
    cand_rate, n_rate = _pass_rate(sides["candidate"])
    base_rate, _ = _pass_rate(sides["baseline"])
    metrics = {role: _side_metrics(sides[role]) for role in ROLES}
    names = sorted(set(metrics["candidate"]) | set(metrics["baseline"]))
    lat = {role: _latencies(sides[role]) for role in ROLES}
    return GroupSummary(
        n=len(cases),
        pass_rate=Comparison(name="pass_rate", candidate=cand_rate, baseline=base_rate, n=n_rate,
                             paired=paired(cases, "pass_rate", stats, population)),
        metrics={m: Comparison(name=m, candidate=metrics["candidate"].get(m, (None, 0))[0],
                               baseline=metrics["baseline"].get(m, (None, 0))[0],
                               n=max(metrics["candidate"].get(m, (None, 0))[1], metrics["baseline"].get(m, (None, 0))[1]),
                               paired=paired(cases, m, stats, population))
                 for m in names},
        latency_ms={q: Comparison(name=f"latency_{q}", candidate=lat["candidate"][q], baseline=lat["baseline"][q], n=len(cases))
                    for q in ("p50", "p95", "p99", "mean")},
        errors={role: sum(1 for s in sides[role] if s.generation.error) for role in ROLES},
        truncated={role: sum(1 for s in sides[role] if s.generation.finish_reason == "length") for role in ROLES},
        answers={role: answer_quality(cases, role) for role in ROLES},
        regressions=sum(c.regressed for c in cases),
        improvements=sum(c.improved for c in cases),
        **_group_metrics(cases),
    )
