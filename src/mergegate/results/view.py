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

from collections.abc import Callable
from typing import Any, Optional

from ..errors import MergegateError
from ..stats.decision import Decision, guardrail, target
from .aggregate import summarize
from .models import AnswerQuality, BenchmarkResult, CaseResult, Comparison, GroupSummary, PairwiseSummary, RunResults, SuiteSummary

__all__ = ["Results", "GroupView", "SuiteView", "UnknownName", "UncalibratedJudge", "InsufficientEvidence", "NotEvaluated", "Finding"]


class UnknownName(MergegateError, LookupError):
    """A gate asked for a suite, category or metric that the run does not have."""


class NotEvaluated(MergegateError):
    """A gate read a phase this run left out (benchmarks under ``-k`` or ``--no-benchmarks``).

    Not an AssertionError: an empty list would let "no CRIT benchmark" pass, so
    the gate errors (the run is INCOMPLETE). ``skip``: the run is partial on
    purpose (``--no-benchmarks``), never GO anyway, so the plugin skips the gate
    and a failed gate elsewhere still says NO-GO.
    """

    def __init__(self, message: str, skip: bool = False):
        super().__init__(message)
        self.skip = skip


class UncalibratedJudge(AssertionError):
    """A gate read a judge metric, and this run found the judge uncalibrated (the gate fails)."""


class InsufficientEvidence(AssertionError):
    """A comparison has no interval at all (fewer than two paired cases, one cluster): the plugin records 'insufficient'."""

    def __init__(self, message: str, p_value: Optional[float] = None):
        super().__init__(message)
        self.p_value = p_value


class Finding:
    """What ``regressed()`` / ``improved()`` found: true or false, the rule that decided, its power at this n, and why.

    ``decision`` (a :class:`mergegate.stats.Decision`) holds the numbers:
    estimate, interval, one-sided p, the smallest change the rule detects
    with 80% power, whether the suite is underpowered and the cases needed.
    """

    def __init__(self, found: bool, what: str, comparison: Comparison, by: float, p_value: Optional[float],
                 decision: Optional[Decision] = None):
        self.found = found
        self.what = what
        self.comparison = comparison
        self.by = by
        self.p_value = p_value  # one-sided, against the direction the rule looks in: for the Holm correction
        self.decision = decision

    @property
    def underpowered(self) -> bool:
        """Return True when this suite is too small to catch a change of twice the threshold with 80% power."""
        return bool(self.decision and self.decision.underpowered)

    @property
    def beyond_threshold(self) -> bool:
        """Return True when the measured change is past the threshold (a drop beyond ``by``, a gain of at least ``by``)."""
        d = self.decision
        if d is None:
            return False
        return d.estimate < -d.by if d.rule == "guardrail" else d.estimate >= d.by

    @property
    def reason(self) -> str:
        """Return the rule's finding in one sentence (estimate, interval, n, power)."""
        return self.decision.reason if self.decision else repr(self)

    def __bool__(self) -> bool:
        return self.found

    def __repr__(self) -> str:
        if self.decision is not None:
            return self.decision.reason
        verb = self.what if self.found else f"not {self.what}"
        return f"<{verb} by {self.by}: {self.comparison}>"


def _no_guard() -> None:
    return None


class GroupView:
    """A suite, or a category, as gates read it."""

    def __init__(self, name: str, summary: GroupSummary, cases: list[CaseResult], judge_guard: Callable[[], None] = _no_guard,
                 on_finding: Callable[[Finding], None] = lambda f: None, stats: Any = None, population: Any = None):
        self.name = name
        self.summary = summary
        self.cases = cases
        self._judge_guard = judge_guard
        self._on_finding = on_finding
        self._stats = stats
        self._population = population
        self._children: dict[str, GroupView] = {}

    def _child(self, name: str, cases: list[CaseResult]) -> GroupView:
        # one results view serves every gate of a session: each group's intervals are computed once
        if name not in self._children:
            self._children[name] = GroupView(name, summarize(cases, self._stats, self._population), cases, self._judge_guard,
                                             self._on_finding, self._stats, self._population)
        return self._children[name]

    def delta(self, metric: str = "pass_rate") -> Comparison:
        """Return candidate vs baseline on ``metric``, with the paired interval as ``.ci_low`` / ``.ci_high`` / ``.paired``."""
        return self.metric(metric)

    def _decide(self, metric: str, by: float, what: str) -> Finding:
        c = self.metric(metric)
        p = c.paired
        if p is None:
            if what == "improved":  # the burden of proof is on the candidate: no interval, no improvement
                finding = Finding(False, what, c, by, None)
                self._on_finding(finding)
                return finding
            raise InsufficientEvidence(f"insufficient evidence: {self.name}: {metric}: no interval (fewer than two paired cases, "
                                       f"or one cluster) ({c})")
        rule = guardrail if what == "regressed" else target
        d = rule(p.estimate, p.ci_low, p.ci_high, p.n, p.level, p.p_value, by, name=f"{self.name}: {metric}: ")
        finding = Finding(d.found, what, c, by, d.p_value, decision=d)
        self._on_finding(finding)
        return finding

    def regressed(self, metric: str = "pass_rate", by: float = 0.05) -> Finding:
        """Return whether the candidate is worse than the baseline by more than ``by`` on ``metric`` (the guardrail rule).

        True when the candidate is significantly worse (the whole 95% interval
        of the paired delta below zero) and the measured drop exceeds ``by``.
        The finding says whether the suite could catch a drop of ``2 * by``
        with 80% power (``.underpowered``). Raises :class:`InsufficientEvidence`
        only when there is no interval at all. Use as
        ``assert not suite.regressed("pass_rate", by=0.05)``.
        """
        return self._decide(metric, by, "regressed")

    def improved(self, metric: str = "pass_rate", by: float = 0.0) -> Finding:
        """Return whether the candidate beats the baseline by at least ``by`` on ``metric`` (the target rule).

        True when the candidate is significantly better (the whole 95% interval
        above zero) and the measured gain is at least ``by``; false otherwise,
        including when the suite cannot tell. Use as
        ``assert suite.improved("pass_rate", by=0.05)``.
        """
        return self._decide(metric, by, "improved")

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
        return {ch.metric for c in self.cases for ch in c.candidate.checks if _is_judge_check(ch.type)}

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

    def answers(self, role: str = "candidate") -> AnswerQuality:
        """Return how many of ``role``'s answers here are empty, truncated or the input said back."""
        return self.summary.answers.get(role) or AnswerQuality(n=0)

    def latency(self, which: str = "p99") -> Comparison:
        """Return a latency statistic in ms: ``p50``, ``p95``, ``p99`` or ``mean``."""
        return self.summary.latency_ms[which]

    def category(self, name: str) -> GroupView:
        """Return this group's cases of category ``name``."""
        cases = [c for c in self.cases if c.category == name]
        if not cases:
            raise UnknownName(f"{self.name} has no case of category {name!r}")
        return self._child(f"{self.name}/{name}", cases)

    @property
    def regressions(self) -> list[CaseResult]:
        """Return the cases the baseline passed and the candidate failed."""
        return [c for c in self.cases if c.regressed]

    @property
    def blocking_failures(self) -> list[CaseResult]:
        """Return the blocking cases the candidate failed."""
        return [c for c in self.cases if c.blocking and c.candidate.passed is False]


class SuiteView(GroupView):
    """A suite: everything a :class:`GroupView` has, and ``role`` ('target' or 'general')."""

    def __init__(self, summary: SuiteSummary, cases: list[CaseResult], judge_guard: Callable[[], None] = _no_guard, **kw: Any):
        super().__init__(summary.name, summary, cases, judge_guard, **kw)
        self.role = summary.role


class Results:
    """The run's results, as the ``results`` fixture hands them to gates.

    ``on_advisory_read``: called when a gate reads a judge metric while the judge
    is uncalibrated and configured advisory (the plugin marks that gate advisory).
    """

    def __init__(self, run: RunResults, on_advisory_read: Callable[[], None] = _no_guard,
                 on_finding: Callable[[Finding], None] = lambda f: None, left_out: Optional[NotEvaluated] = None):
        from ..config.models import StatsOptions
        from .aggregate import population

        self.run = run
        self._on_advisory_read = on_advisory_read
        self._on_finding = on_finding
        self._benchmarks_left_out = left_out  # raised when a gate reads benchmarks this run did not run
        self._stats = StatsOptions(**run.meta.stats)
        self._population = population(run.meta.sample)
        g = self._judge_guard
        self._categories: dict[str, Optional[GroupView]] = {}
        self._all: Optional[GroupView] = None
        self._suites = {s.name: SuiteView(s, [c for c in self._counted() if c.suite == s.name], g, on_finding=on_finding,
                                          stats=self._stats, population=self._population) for s in run.suites}

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

    def _counted(self) -> list:
        """Return the cases that count (contaminated ones left out when contamination.on_contaminated is 'exclude')."""
        k = self.run.contamination
        return [c for c in self.run.cases if not (k is not None and k.on_contaminated == "exclude" and c.contaminated)]

    @property
    def benchmarks(self) -> list[BenchmarkResult]:
        """Return every lm-eval benchmark row (task, metric, both scores, stderr, level OK/WARN/CRIT/ERROR).

        Raises :class:`NotEvaluated` when benchmarks are configured but this run left them out.
        """
        if self._benchmarks_left_out is not None:
            raise self._benchmarks_left_out
        return list(self.run.benchmarks)

    def benchmark(self, task: str, metric: Optional[str] = None) -> BenchmarkResult:
        """Return benchmark ``task`` (``metric``: e.g. 'acc' or 'acc,none'; default: the task's first metric)."""
        rows = [b for b in self.benchmarks if b.task == task]
        if metric is not None:
            rows = [b for b in rows if b.metric == metric or b.metric.split(",")[0] == metric]
        if not rows:
            known = sorted({f"{b.task}/{b.metric}" for b in self.run.benchmarks})
            raise UnknownName(f"no benchmark {task!r}{f' metric {metric!r}' if metric else ''} in this run; "
                              f"have: {', '.join(known) or 'none'}")
        return rows[0]

    def category(self, name: str) -> Optional[GroupView]:
        """Return the cases of category ``name`` across all suites, or None if there are none."""
        if name not in self._categories:
            cases = [c for c in self._counted() if c.category == name]
            self._categories[name] = self._group(name, cases, self.run.categories.get(name)) if cases else None
        return self._categories[name]

    @property
    def all(self) -> GroupView:
        """Return every case of the run as one group."""
        if self._all is None:
            self._all = self._group("all", self._counted())
        return self._all

    def _group(self, name: str, cases: list[CaseResult], summary: Optional[GroupSummary] = None) -> GroupView:
        summary = summary or summarize(cases, self._stats, self._population)
        return GroupView(name, summary, cases, self._judge_guard, self._on_finding, self._stats, self._population)


def _is_judge_check(check_type: str) -> bool:
    """Return True for a check type that reads an LLM judge's verdict (llm_rubric, pairwise, ...)."""
    from ..checks.registry import REGISTRY

    ctype = REGISTRY.get(check_type)
    return ctype is not None and ctype.judge is not None
