"""What gates see: the ``results`` fixture, a read-only view over :class:`RunResults`.

Example gates::

    def test_extraction_is_valid_json(results):
        assert results.suite("extraction").metric("json_valid").candidate == 1.0

    def test_no_general_regression(general_suite):
        assert general_suite.pass_rate.delta >= -0.05
"""

from __future__ import annotations

from typing import Optional

from ..errors import MergegateError
from .aggregate import summarize
from .models import CaseResult, Comparison, GroupSummary, RunResults, SuiteSummary

__all__ = ["Results", "GroupView", "UnknownName"]


class UnknownName(MergegateError, LookupError):
    """A gate asked for a suite, category or metric that the run does not have."""


class GroupView:
    """A suite, or a category, as gates read it."""

    def __init__(self, name: str, summary: GroupSummary, cases: list[CaseResult]):
        self.name = name
        self.summary = summary
        self.cases = cases

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
        try:
            return self.summary.metrics[name]
        except KeyError:
            raise UnknownName(f"{self.name} has no metric {name!r}; it has: {', '.join(sorted(self.summary.metrics)) or 'none'}") from None

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
        return GroupView(f"{self.name}/{name}", summarize(cases), cases)

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

    def __init__(self, summary: SuiteSummary, cases: list[CaseResult]):
        super().__init__(summary.name, summary, cases)
        self.role = summary.role


class Results:
    """The run's results, as the ``results`` fixture hands them to gates."""

    def __init__(self, run: RunResults):
        self.run = run
        self._suites = {s.name: SuiteView(s, [c for c in run.cases if c.suite == s.name]) for s in run.suites}

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
        return GroupView(name, summarize(cases), cases) if cases else None

    @property
    def all(self) -> GroupView:
        """Return every case of the run as one group."""
        return GroupView("all", summarize(self.run.cases), self.run.cases)
