"""Judge checks: an LLM judge grades the output (``llm_rubric``) or compares it with the other model's (``pairwise``).

These functions only read the verdict; the judge is asked beforehand, for every
judge check of the run at once, by :mod:`mergegate.judge.engine` (concurrent,
cached, position-swapped, calibrated). A verdict the judge could not give is a
judge error (see :func:`~mergegate.checks.registry.run_check`), never a score.
"""

from __future__ import annotations

from typing import Annotated, Literal, Optional

from pydantic import Field

from .registry import CheckContext, Outcome, check


@check("llm_rubric", kind="score", judge="rubric")
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


@check("pairwise", kind="score", judge="pairwise")
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
