"""From case results to suite, category and run aggregates."""

from __future__ import annotations

from collections import defaultdict
from typing import Iterable, Optional

import numpy as np
from sklearn.metrics import f1_score

from .models import CaseResult, Comparison, GroupSummary, PairwiseSummary, SideResult

__all__ = ["summarize", "percentile"]

ROLES = ("candidate", "baseline")


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
    return PairwiseSummary(n=len(outcomes), wins=outcomes.count("win"), losses=outcomes.count("loss"), ties=outcomes.count("tie"),
                           win_rate=win_rate(outcomes), consistency_rate=sum(consistent) / len(consistent),
                           lc_win_rate=length_controlled_win_rate(outcomes, len_c, len_b),
                           mean_chars_candidate=_mean(len_c), mean_chars_baseline=_mean(len_b), escalated=escalated)


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


def summarize(cases: Iterable[CaseResult]) -> GroupSummary:
    """Return the aggregates of ``cases`` for both models."""
    cases = list(cases)
    sides = {role: [getattr(c, role) for c in cases] for role in ROLES}
    cand_rate, n_rate = _pass_rate(sides["candidate"])
    base_rate, _ = _pass_rate(sides["baseline"])
    metrics = {role: _side_metrics(sides[role]) for role in ROLES}
    names = sorted(set(metrics["candidate"]) | set(metrics["baseline"]))
    lat = {role: _latencies(sides[role]) for role in ROLES}
    return GroupSummary(
        n=len(cases),
        pass_rate=Comparison(name="pass_rate", candidate=cand_rate, baseline=base_rate, n=n_rate),
        metrics={m: Comparison(name=m, candidate=metrics["candidate"].get(m, (None, 0))[0],
                               baseline=metrics["baseline"].get(m, (None, 0))[0],
                               n=max(metrics["candidate"].get(m, (None, 0))[1], metrics["baseline"].get(m, (None, 0))[1]))
                 for m in names},
        latency_ms={q: Comparison(name=f"latency_{q}", candidate=lat["candidate"][q], baseline=lat["baseline"][q], n=len(cases))
                    for q in ("p50", "p95", "p99", "mean")},
        errors={role: sum(1 for s in sides[role] if s.generation.error) for role in ROLES},
        regressions=sum(c.regressed for c in cases),
        improvements=sum(c.improved for c in cases),
        pairwise=_pairwise(cases),
        rubric=_rubric(cases),
    )
