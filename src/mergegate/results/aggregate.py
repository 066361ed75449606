"""From case results to suite, category and run aggregates."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from typing import Any, Optional

import numpy as np

from ..stats import cases_needed, mde, paired_delta, wilson
from .models import ROLES, CaseResult, Comparison, GroupSummary, PairedDelta, PairwiseSummary, SideResult

__all__ = ["summarize", "percentile", "paired", "population"]



def percentile(values: list[float], q: float) -> Optional[float]:
    """Return the q-th percentile (linear interpolation, as numpy), or None for no values."""
    return float(np.percentile(values, q)) if values else None


def _mean(values: list[float]) -> Optional[float]:
    return float(np.mean(values)) if values else None


def _pass_rate(sides: list[SideResult]) -> tuple[Optional[float], int]:
    gated = [s.passed for s in sides if s.passed is not None]
    return (_mean([float(p) for p in gated]), len(gated))


def _classification(sides: list[SideResult]) -> dict[str, float]:
    """Return macro F1 and the extraction failure rate over every label_in check in ``sides``."""
    expected, got = [], []
    for side in sides:
        for c in side.checks:
            if c.type == "label_in" and "expected" in c.extra:
                expected.append(str(c.extra["expected"]).lower())
                got.append(str(c.extra["label"]).lower() if c.extra.get("label") is not None else "<none>")
    if not expected:
        return {}
    from sklearn.metrics import f1_score  # here, not at import: scikit-learn takes ~0.8 s to import

    labels = sorted(set(expected))  # macro over the true classes; "<none>" counts as a wrong prediction
    return {
        "macro_f1": float(f1_score(expected, got, labels=labels, average="macro", zero_division=0)),
        "extraction_failure_rate": got.count("<none>") / len(got),
    }


def _side_metrics(sides: list[SideResult]) -> dict[str, tuple[Optional[float], int]]:
    scores: dict[str, list[float]] = defaultdict(list)
    for side in sides:
        for c in side.checks:
            if c.score is not None:
                scores[c.metric].append(c.score)
    out = {name: (_mean(vals), len(vals)) for name, vals in scores.items()}
    for name, value in _classification(sides).items():
        out[name] = (value, len(sides))
    return out


def _latencies(sides: list[SideResult]) -> dict[str, Optional[float]]:
    vals = [s.generation.latency_ms for s in sides if s.generation.latency_ms is not None]
    return {"p50": percentile(vals, 50), "p95": percentile(vals, 95), "p99": percentile(vals, 99), "mean": _mean(vals)}


def _pairwise(cases: list[CaseResult]) -> Optional[PairwiseSummary]:
    """Return the pairwise verdicts of ``cases`` summed up, or None when no case has a usable one."""
    from ..judge.stats import length_controlled_win_rate, win_rate

    outcomes, consistent, len_c, len_b, escalated = [], [], [], [], 0
    for c in cases:
        for ch in c.candidate.checks:
            if ch.type == "pairwise" and "outcome" in ch.extra:
                outcomes.append(ch.extra["outcome"])
                consistent.append(bool(ch.extra["consistent"]))
                len_c.append(len(c.candidate.generation.text))
                len_b.append(len(c.baseline.generation.text))
                escalated += bool(ch.extra.get("escalated"))
    if not outcomes:
        return None
    lo, hi = wilson(outcomes.count("win") + 0.5 * outcomes.count("tie"), len(outcomes))
    return PairwiseSummary(n=len(outcomes), wins=outcomes.count("win"), losses=outcomes.count("loss"), ties=outcomes.count("tie"),
                           win_rate=win_rate(outcomes), ci_low=lo, ci_high=hi, consistency_rate=sum(consistent) / len(consistent),
                           lc_win_rate=length_controlled_win_rate(outcomes, len_c, len_b),
                           mean_chars_candidate=_mean([float(x) for x in len_c]), mean_chars_baseline=_mean([float(x) for x in len_b]),
                           escalated=escalated)


def _rubric(cases: list[CaseResult]) -> dict[str, Comparison]:
    """Return the mean judge score per rubric criterion (on its 1..scale), candidate vs baseline."""
    scores: dict[str, dict[str, list[float]]] = defaultdict(lambda: {"candidate": [], "baseline": []})
    for c in cases:
        for role in ROLES:
            for ch in getattr(c, role).checks:
                if ch.type == "llm_rubric" and "scores" in ch.extra:
                    for crit, v in ch.extra["scores"].items():
                        scores[f"{crit}/{ch.extra['scale']}"][role].append(float(v))
    return {k: Comparison(name=k, candidate=_mean(v["candidate"]), baseline=_mean(v["baseline"]),
                          n=max(len(v["candidate"]), len(v["baseline"]))) for k, v in sorted(scores.items())}


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
        regressions=sum(c.regressed for c in cases),
        improvements=sum(c.improved for c in cases),
        pairwise=_pairwise(cases),
        rubric=_rubric(cases),
    )
