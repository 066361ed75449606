"""Judge checks: an LLM judge grades the output (``llm_rubric``) or compares it with the other model's (``pairwise``).

These functions only read the verdict; the judge is asked beforehand, for every
judge check of the run at once, by :mod:`mergegate.judge.engine` (concurrent,
cached, position-swapped, calibrated). A verdict the judge could not give is a
judge error (see :func:`~mergegate.checks.registry.run_check`), never a score.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Annotated, Any, Literal, Optional

from pydantic import Field

from .registry import CheckContext, Outcome, check, group_metric


def pairwise_summary(cases: list[Any]) -> Any:
    """Return the pairwise verdicts of ``cases`` summed up, or None when no case has a usable one."""
    from ..judge.stats import length_controlled_win_rate, win_rate
    from ..results.models import PairwiseSummary
    from ..stats import wilson

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
                           mean_chars_candidate=_mean_or_none([float(x) for x in len_c]),
                           mean_chars_baseline=_mean_or_none([float(x) for x in len_b]),
                           escalated=escalated)


def rubric_summary(cases: list[Any]) -> Any:
    """Return the mean judge score per rubric criterion (on its 1..scale), candidate vs baseline (None without any)."""
    from ..results.models import ROLES, Comparison

    scores: dict[str, dict[str, list[float]]] = defaultdict(lambda: {"candidate": [], "baseline": []})
    for c in cases:
        for role in ROLES:
            for ch in getattr(c, role).checks:
                if ch.type == "llm_rubric" and "scores" in ch.extra:
                    for crit, v in ch.extra["scores"].items():
                        scores[f"{crit}/{ch.extra['scale']}"][role].append(float(v))
    return {k: Comparison(name=k, candidate=_mean_or_none(v["candidate"]), baseline=_mean_or_none(v["baseline"]),
                          n=max(len(v["candidate"]), len(v["baseline"]))) for k, v in sorted(scores.items())}


def _mean_or_none(values: list[float]) -> Optional[float]:
    return sum(values) / len(values) if values else None


@check("llm_rubric", kind="score", judge="rubric", metrics=[group_metric("rubric", rubric_summary)])
def llm_rubric(
    ctx: CheckContext,
    criteria: Annotated[list[str], Field(min_length=1, description="What the judge scores, e.g. [accuracy, helpfulness, tone].")],
    scale: Annotated[Literal[5, 10], Field(description="Each criterion is scored 1..scale.")] = 5,
    use_reference: Annotated[bool, Field(description="Show the judge the case's reference answer (reference-guided grading).")] = False,
) -> Outcome:
    """An LLM judge scores the output on each criterion; the score is the mean, rescaled from 1..scale to 0..1."""
    j = ctx.judgement
    if j is None:
        return Outcome(score=None, detail="not judged")
    scores: dict[str, int] = j["scores"]
    mean = sum(scores.values()) / len(scores)
    return Outcome(score=(mean - 1) / (scale - 1), detail=f"{', '.join(f'{c} {v}/{scale}' for c, v in scores.items())}: {j['reason']}",
                   extra={"scores": scores, "scale": scale, "reason": j["reason"], "escalated": j.get("escalated", False)})


@check("pairwise", kind="score", judge="pairwise", metrics=[group_metric("pairwise", pairwise_summary)])
def pairwise(
    ctx: CheckContext,
    criteria: Annotated[Optional[list[str]], Field(description="What the judge compares on (default: overall quality).")] = None,
) -> Outcome:
    """An LLM judge compares candidate and baseline outputs in both orders; score 1 win, 0.5 tie, 0 loss (per side)."""
    j = ctx.judgement
    if j is None:
        return Outcome(score=None, detail="not judged (the other model has no output)")
    score = {"win": 1.0, "tie": 0.5, "loss": 0.0}[j["outcome"]]
    detail = f"{j['outcome']}" + ("" if j["consistent"] else " (the two orders disagreed)")
    return Outcome(score=score, detail=detail,
                   extra={k: j[k] for k in ("outcome", "consistent", "verdict_candidate_first", "verdict_candidate_second",
                                            "reasons", "escalated")})
