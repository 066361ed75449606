"""Scoring: every check of every case run on both models' outputs."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from typing import Optional

from ..checks import REGISTRY, CheckContext, run_check
from ..client import Response
from ..results import ROLES, CaseResult, CheckResult, Generation, SideResult
from ..suites import Case, LoadedSuite

__all__ = ["score_side", "score_cases", "ResponseKey", "Judgements"]

# (role, suite, case_id) for a case's last turn; (role, suite, case_id, turn) for the earlier turns of a multi-turn case
ResponseKey = tuple
# (suite, case_id, check_index, role) -> the judge's verdict for that check and side
Judgements = dict[tuple[str, str, int, str], dict]


#: The pseudo-check a truncated answer fails under ``generation.truncated: fail`` (no score: it never moves a metric's mean).
TRUNCATED = "truncated"


def score_side(case: Case, suite: LoadedSuite, gen: Generation, judgements: Optional[dict[int, dict]] = None,
               truncated: str = "fail", budget_s: Optional[float] = None, calls_in_text: bool = True) -> SideResult:
    """Return one model's :class:`SideResult` on ``case``: every check run on ``gen``.

    ``judgements[check_index]``: the judge's verdict for each judge check of the
    case, for this side. A failed generation fails every check with score 0
    (fail closed: an error never raises a mean). An answer cut off at
    max_tokens fails the case too when ``truncated`` is "fail": half an answer
    can pass a ``contains`` or score-only check, and must not pass silently.
    ``budget_s``: each check's time budget (``check_timeout_s``). ``calls_in_text``: the model was asked for
    its tool calls as JSON in its text (``tool_format: prompt``) rather than as the API's ``tool_calls``.
    """
    results: list[CheckResult] = []
    offered = suite.suite.tools_of(case)
    ctx = CheckContext(output=gen.text, reference=case.reference, latency_ms=gen.latency_ms, suite_dir=suite.path.parent,
                       case_id=case.id, prompt=case.input_text, tool_calls=gen.tool_calls, calls_in_text=calls_in_text,
                       tools={t.function.name: t.function.parameters for t in offered} if offered else None)
    for index, (spec, prepared) in enumerate(zip(case.checks, suite.prepared[case.id], strict=True)):
        gated = REGISTRY[spec.type].kind == "bool" or getattr(spec, "threshold", None) is not None
        if gen.error:
            results.append(CheckResult(type=spec.type, metric=spec.metric_name, score=0.0, passed=False if gated else None,
                                       detail=f"no output: {gen.error}"))
            continue
        if REGISTRY[spec.type].judge is not None:
            ctx = dataclasses.replace(ctx, judgement=(judgements or {}).get(index))
        if spec.turn is not None and gen.turns:
            ctx = dataclasses.replace(ctx, output=gen.turns[spec.turn - 1], prompt=case.turn_text(spec.turn),
                                      tool_calls=gen.tool_calls if spec.turn == case.n_turns else None)
        out = run_check(spec, ctx, prepared, budget_s)
        results.append(CheckResult(type=spec.type, metric=spec.metric_name, score=out.score, passed=out.passed,
                                   detail=out.detail, extra=out.extra))
    if gen.finish_reason == "length" and not gen.error and truncated == "fail":  # after the case's own checks: their indices hold
        results.append(CheckResult(type=TRUNCATED, metric=TRUNCATED, score=None, passed=False,
                                   detail="the answer was cut off at max_tokens (finish_reason 'length'; generation.truncated: fail)"))
    gated_results = [r.passed for r in results if r.passed is not None]
    passed = None if not gated_results else (all(gated_results) and not gen.error)
    return SideResult(generation=gen, checks=results, passed=passed)


def _generation(responses: dict[ResponseKey, Response], role: str, ls: LoadedSuite, case: Case) -> Generation:
    # popped: each response is freed as its result is built, so the results reuse its memory (a lower peak at scale)
    resp = responses.pop((role, ls.name, case.id), None)
    gen = Generation(**resp.__dict__) if resp is not None else Generation(error="not generated")
    if case.n_turns > 1:
        earlier = [getattr(responses.pop((role, ls.name, case.id, k), None), "text", "") for k in range(1, case.n_turns)]
        gen.turns = earlier + [gen.text]
    return gen


def score_cases(selected: Iterable[tuple[LoadedSuite, Case]], responses: dict[ResponseKey, Response], judgements: Judgements,
                contaminated: Optional[set[tuple[str, str]]], truncated: str = "fail", budget_s: Optional[float] = None,
                calls_in_text: Optional[dict[str, bool]] = None) -> list[CaseResult]:
    """Return a :class:`CaseResult` per selected case, both sides scored; ``responses`` is consumed (emptied of theirs).

    ``contaminated``: the (suite, case id) pairs found in training data, or None
    when no contamination check ran.
    """
    cases = []
    for ls, case in selected:
        sides = {}
        for role in ROLES:
            mine = {i: judgements[(ls.name, case.id, i, role)] for i in range(len(case.checks))
                    if (ls.name, case.id, i, role) in judgements}
            sides[role] = score_side(case, ls, _generation(responses, role, ls, case), mine, truncated, budget_s,
                                     (calls_in_text or {}).get(role, True))
        flagged = None if contaminated is None else (ls.name, case.id) in contaminated
        cases.append(CaseResult(suite=ls.name, id=case.id, category=case.category, blocking=case.blocking, cluster=case.cluster,
                                contaminated=flagged, input=case.input_text, reference=case.reference,
                                line=ls.case_lines.get(case.id, 0), **sides))
    return cases
