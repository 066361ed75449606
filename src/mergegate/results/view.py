"""What gates see: the ``results`` fixture, a read-only view over :class:`RunResults`.

Example gates::

    def test_extraction_is_valid_json(results):
        assert results.suite("extraction").metric("json_valid").candidate == 1.0

    def test_no_general_regression(general_suite):
        assert general_suite.pass_rate.delta >= -0.05

    def test_candidate_preferred(results):
        assert results.suite("support").win_rate >= 0.55

Judge metrics (``win_rate``, ``pairwise``, ``rubric()``, and the metrics of
``llm_rubric``/``pairwise`` checks) are only as good as the judge: when the run
found the judge uncalibrated against the human labels, reading one raises
:class:`UncalibratedJudge` (the gate fails) or, with
``judge.calibration.on_uncalibrated: advisory``, marks the gate advisory.
"""

from __future__ import annotations

from typing import Callable, Optional

from ..errors import MergegateError
from .aggregate import summarize
from .models import CaseResult, Comparison, GroupSummary, PairwiseSummary, RunResults, SuiteSummary

__all__ = ["Results", "GroupView", "SuiteView", "UnknownName", "UncalibratedJudge", "JUDGE_CHECKS"]

JUDGE_CHECKS = ("llm_rubric", "pairwise")


class UnknownName(MergegateError, LookupError):
    """A gate asked for a suite, category or metric that the run does not have."""


class UncalibratedJudge(AssertionError):
    """A gate read a judge metric, and this run found the judge uncalibrated (the gate fails)."""


def _no_guard() -> None:
    return None


class GroupView:
    """A suite, or a category, as gates read it."""

    def __init__(self, name: str, summary: GroupSummary, cases: list[CaseResult], judge_guard: Callable[[], None] = _no_guard):
        self.name = name
        self.summary = summary
        self.cases = cases
        self._judge_guard = judge_guard

    def __repr__(self) -> str:
        return f"<{self.name}: n={self.n}, pass_rate={self.pass_rate!r}>"

    @property
    def n(self) -> int:
        """Return the number of cases."""
        return self.summary.n

    @property
    def pass_rate(self) -> Comparison:
        """Return the share of gated cases that passed, candidate vs baseline."""
        return self.summary.pass_rate

    def metric(self, name: str) -> Comparison:
        """Return the mean of metric ``name`` (e.g. ``rouge_l``, ``json_valid``, ``macro_f1``)."""
        if name == "pass_rate":
            return self.pass_rate
        if name in self._judge_metrics():
            self._judge_guard()
        try:
            return self.summary.metrics[name]
        except KeyError:
            raise UnknownName(f"{self.name} has no metric {name!r}; it has: {', '.join(sorted(self.summary.metrics)) or 'none'}") from None

    def _judge_metrics(self) -> set[str]:
        return {ch.metric for c in self.cases for ch in c.candidate.checks if ch.type in JUDGE_CHECKS}

    @property
    def pairwise(self) -> PairwiseSummary:
        """Return the pairwise judge's wins, losses, ties, consistency and win rates (candidate vs baseline)."""
        if self.summary.pairwise is None:
            raise UnknownName(f"{self.name} has no pairwise verdicts (no pairwise check, or none judged)")
        self._judge_guard()
        return self.summary.pairwise

    @property
    def win_rate(self) -> float:
        """Return the candidate's pairwise win rate, ties counted as half-wins."""
        return self.pairwise.win_rate  # type: ignore[return-value]

    @property
    def lc_win_rate(self) -> Optional[float]:
        """Return the length-controlled win rate (None with fewer than 5 verdicts)."""
        return self.pairwise.lc_win_rate

    def rubric(self, criterion: str) -> Comparison:
        """Return the mean judge score of ``criterion`` on its 1..scale, candidate vs baseline."""
        keys = [k for k in self.summary.rubric if k.split("/")[0] == criterion]
        if not keys:
            have = sorted({k.split("/")[0] for k in self.summary.rubric})
            raise UnknownName(f"{self.name} has no rubric criterion {criterion!r}; it has: {', '.join(have) or 'none'}")
        if len(keys) > 1:
            raise UnknownName(f"{self.name} scores {criterion!r} on several scales ({', '.join(keys)}); use metric() instead")
        self._judge_guard()
        return self.summary.rubric[keys[0]]

    def has_metric(self, name: str) -> bool:
        """Return True when some case of this group reports ``name``."""
        return name in self.summary.metrics

    def latency(self, which: str = "p99") -> Comparison:
        """Return a latency statistic in ms: ``p50``, ``p95``, ``p99`` or ``mean``."""
        return self.summary.latency_ms[which]

    def category(self, name: str) -> "GroupView":
        """Return this group's cases of category ``name``."""
        cases = [c for c in self.cases if c.category == name]
        if not cases:
            raise UnknownName(f"{self.name} has no case of category {name!r}")
        return GroupView(f"{self.name}/{name}", summarize(cases), cases, self._judge_guard)

    @property
    def regressions(self) -> list[CaseResult]:
        """Return the cases the baseline passed and the candidate failed."""
        return [c for c in self.cases if c.regressed]

    @property
    def blocking_failures(self) -> list[CaseResult]:
        """Return the blocking cases the candidate failed."""
        return [c for c in self.cases if c.blocking and c.candidate.passed is False]


class SuiteView(GroupView):
    """A suite, with its role (target or general)."""

    def __init__(self, summary: SuiteSummary, cases: list[CaseResult], judge_guard: Callable[[], None] = _no_guard):
        super().__init__(summary.name, summary, cases, judge_guard)
        self.role = summary.role


class Results:
    """The run's results, as the ``results`` fixture hands them to gates.

    ``on_advisory_read``: called when a gate reads a judge metric while the judge
    is uncalibrated and configured advisory (the plugin marks that gate advisory).
    """

    def __init__(self, run: RunResults, on_advisory_read: Callable[[], None] = _no_guard):
        self.run = run
        self._on_advisory_read = on_advisory_read
        g = self._judge_guard
        self._suites = {s.name: SuiteView(s, [c for c in run.cases if c.suite == s.name], g) for s in run.suites}

    def _judge_guard(self) -> None:
        cal = self.run.judge.calibration if self.run.judge else None
        if cal is None or cal.calibrated:
            return
        if cal.on_uncalibrated == "advisory":
            self._on_advisory_read()
            return
        raise UncalibratedJudge(f"the judge is uncalibrated ({cal.reason}); gates on judge metrics fail "
                                "(judge.calibration.on_uncalibrated: fail)")

    def suite(self, name: str) -> SuiteView:
        """Return suite ``name``."""
        try:
            return self._suites[name]
        except KeyError:
            raise UnknownName(f"no suite {name!r} in this run; suites: {', '.join(self._suites) or 'none'}") from None

    @property
    def suites(self) -> list[SuiteView]:
        """Return every suite evaluated."""
        return list(self._suites.values())

    def suites_with_role(self, role: str) -> list[SuiteView]:
        """Return the suites whose role is ``role`` ('target' or 'general')."""
        return [s for s in self._suites.values() if s.role == role]

    def category(self, name: str) -> Optional[GroupView]:
        """Return the cases of category ``name`` across all suites, or None if there are none."""
        cases = [c for c in self.run.cases if c.category == name]
        return GroupView(name, summarize(cases), cases, self._judge_guard) if cases else None

    @property
    def all(self) -> GroupView:
        """Return every case of the run as one group."""
        return GroupView("all", summarize(self.run.cases), self.run.cases, self._judge_guard)
