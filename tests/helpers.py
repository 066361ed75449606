"""Builders of small RunResults for report and comment tests (no model involved)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Optional

from mergegate.results import CaseResult, CheckResult, Generation, RunMeta, RunResults, SideResult, summarize
from mergegate.results.models import SuiteSummary
from mergegate.verdict import Evidence, Policy, decide


def side(text: str, passed: bool, latency: float = 5.0) -> SideResult:
    """Return one model's result with one contains-check."""
    return SideResult(generation=Generation(text=text, latency_ms=latency),
                      checks=[CheckResult(type="contains", metric="contains", score=float(passed), passed=passed, detail="x")],
                      passed=passed)


def make_run(n_cases: int = 1, suites: tuple[str, ...] = ("s",), candidate: Callable[[int], str] = lambda i: "bad",
             candidate_passed: Callable[[int], bool] = lambda i: False, baseline_passed: Callable[[int], bool] = lambda i: True,
             input_text: str = "say hi <b>", meta: Optional[dict] = None) -> RunResults:
    """Return a decided RunResults with ``n_cases`` cases per suite (by default every one a regression)."""
    cases = [CaseResult(suite=s, id=f"c{i}", category="adversarial" if i % 2 else "simple", blocking=i == 0, input=input_text,
                        candidate=side(candidate(i), candidate_passed(i)), baseline=side("fine", baseline_passed(i)))
             for s in suites for i in range(n_cases)]
    summaries = []
    for s in suites:
        g = summarize([c for c in cases if c.suite == s])
        summaries.append(SuiteSummary(name=s, version="1", role="target", task="other",
                                      **g.model_dump(exclude={"pass_rate", "metrics", "latency_ms"}),
                                      pass_rate=g.pass_rate, metrics=g.metrics, latency_ms=g.latency_ms))
    v = decide(Evidence(cases=cases), Policy(min_gates=0))  # these runs have no gates: their cases decide
    return RunResults(verdict=v.outcome, exit_code=v.exit_code, reasons=list(v.reasons), cases=cases, suites=summaries,
                      meta=RunMeta(mergegate_version="0", started_at="t", finished_at="t2", config_sha256="0" * 64, python="3",
                                   platform="p", **(meta or {})))
