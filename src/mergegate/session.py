"""The state of one pytest session, kept on ``config`` by the plugin.

Every plugin hook hands off to one method here; this module holds the logic
of "which items are cases, which are gates" without defining pytest hooks
itself. The verdict is decided by :mod:`mergegate.verdict`, from the
evaluation's own data: gates get a copy, so what a gate does to its
``results`` cannot reach the decision.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Optional

from .config import LoadedConfig, load_config
from .errors import InputError, MergegateError
from .results import CaseResult, Finding, GateResult, NotEvaluated, Results, RunResults, SampleMeta, ShardMeta, read_history
from .results.messages import readable
from .results.models import GateOutcome
from .suites import LoadedSuite, discover_suites, is_suite_file, load_suite
from .verdict import Verdict, apply_holm

if TYPE_CHECKING:  # the evaluation (the OpenAI client) and the report (jinja) load when a session first needs them
    from .evaluation import Evaluation

__all__ = ["MergegateSession", "RunOptions"]


@dataclass(frozen=True, eq=False)  # eq=False: hashed by identity, as pytest registers it as a plugin
class RunOptions:
    """What one session evaluates and where it writes: built by the CLI, or from pytest's ``--mergegate-*`` options.

    ``loaded`` and ``suites``: the config and suites the CLI already loaded
    and validated, so the session does not parse them again.
    """

    config_path: Optional[str] = None
    output_dir: Optional[str] = None
    progress: bool = True
    command: tuple[str, ...] = ()
    shard: Optional[ShardMeta] = None
    sample: Optional[int] = None
    merge_from: tuple[Path, ...] = ()
    history: Optional[Path] = None
    aa: bool = False
    """An A/A run: the baseline's config serves both sides (the noise floor of the engine)."""
    limit: Optional[int] = None
    """Evaluate only the first N selected cases of each suite (a smoke run: partial, never GO)."""
    no_judge: bool = False
    """Leave out the cases with a judge check (partial, never GO)."""
    no_benchmarks: bool = False
    """Do not run the lm-eval benchmarks (partial, never GO)."""
    loaded: Optional[LoadedConfig] = field(default=None, compare=False)
    suites: tuple[LoadedSuite, ...] = field(default=(), compare=False)
    on_evaluated: Optional[Callable[[Verdict, int, bool], None]] = field(default=None, compare=False)
    """Called once the evaluation is complete, before any gate runs, with its :meth:`Evaluation.floor`, case count and
    whether the run is partial (the CLI's supervisor keeps them in another process, out of the gates' reach)."""


class MergegateSession:
    """Collects suites, runs the evaluation before the first test, decides the verdict at the end."""

    def __init__(self, options: RunOptions, root: Path):
        self.options = options
        self.root = root
        self._loaded = options.loaded
        self.suites: dict[Path, LoadedSuite] = {ls.path.resolve(): ls for ls in options.suites}
        self._all_suites: Optional[list[LoadedSuite]] = None
        self.sample_meta: Optional[SampleMeta] = None
        self.gate_reports: dict[str, GateResult] = {}
        self.failures: list[str] = []
        self.warnings: list[str] = []
        self.active = False
        self.evaluation: Optional[Evaluation] = None
        self._by_id: dict[tuple[str, str], CaseResult] = {}
        self._view: Optional[Results] = None
        self.run: Optional[RunResults] = None
        self.written: dict[str, Path] = {}
        self._advisory_read = False  # the running gate read a metric of an uncalibrated, advisory judge
        self._findings: list[Finding] = []  # what regressed()/improved() concluded in the running gate
        self._evaluated_at: Optional[float] = None
        self.gate_findings: dict[str, list[Finding]] = {}
        self.partial: list[str] = []  # what the iteration flags left out, said in the banner; the verdict cannot be GO
        self.narrowed = False  # --limit / --no-judge left cases out
        self.warnings_for_report: list[str] = []  # what a reader must know that does not change the verdict
        self.benchmarks_left_out: Optional[NotEvaluated] = None  # raised to a gate that reads benchmarks this run skipped

    # -- configuration and suites -------------------------------------------------
    @property
    def loaded(self) -> LoadedConfig:
        """Return the run's config (loaded on first use)."""
        if self._loaded is None:
            self._loaded = load_config(self.options.config_path, self.root)
        return self._loaded

    @property
    def shard(self) -> Optional[ShardMeta]:
        """Return this session's shard, or None when it evaluates every selected case."""
        return self.options.shard

    def is_suite_path(self, path: Path) -> bool:
        """Return True when ``path`` is a suite file: YAML inside the configured suites folder."""
        if not is_suite_file(path):
            return False
        return Path(self.loaded.config.suites_dir).name in path.parts[:-1]

    def suite_at(self, path: Path) -> LoadedSuite:
        """Return the suite in ``path``, parsed once per session; raise SuiteError for a bad file."""
        path = Path(path).resolve()
        if path not in self.suites:
            self.active = True
            self.suites[path] = load_suite(path)
        return self.suites[path]

    def all_suites(self) -> list[LoadedSuite]:
        """Return every suite of the configured folder (for gates run without case items), parsed once per session."""
        if self._all_suites is None:
            self._all_suites = discover_suites([self.loaded.resolve(self.loaded.config.suites_dir)], load=self.suite_at)
        return self._all_suites

    # -- selection ------------------------------------------------------------------
    def select_sample(self, items: list[Any], is_case: Callable[[Any], bool]) -> tuple[list[Any], list[Any]]:
        """Return ``(kept, deselected)``: a seeded sample of the case items, stratified by suite and category."""
        size = self.options.sample
        if size is None:
            return items, []
        from .stats import stratified_sample

        if size < 1:
            raise InputError(f"--sample wants a positive number of cases, got {size}")
        self.active = True
        cases = [it for it in items if is_case(it)]
        strata = [(it.suite.name, it.case.category) for it in cases]
        population: dict[str, dict[str, int]] = {}
        for suite, cat in strata:
            population.setdefault(suite, {}).setdefault(cat, 0)
            population[suite][cat] += 1
        chosen = {id(cases[i]) for i in stratified_sample(strata, size, self.loaded.config.stats.seed)}
        self.sample_meta = SampleMeta(size=len(chosen), seed=self.loaded.config.stats.seed, population=population)
        kept = [it for it in items if not is_case(it) or id(it) in chosen]
        return kept, [it for it in items if is_case(it) and id(it) not in chosen]

    def select_partial(self, items: list[Any], is_case: Callable[[Any], bool]) -> tuple[list[Any], list[Any]]:
        """Return ``(kept, deselected)`` under ``--no-judge`` and ``--limit``, noting what was left out in :attr:`partial`."""
        opts = self.options
        if opts.limit is not None and opts.limit < 1:
            raise InputError(f"--limit wants a positive number of cases per suite, got {opts.limit}")
        if opts.no_benchmarks and self.loaded.config.benchmarks is not None:
            self.partial.append("benchmarks not run (--no-benchmarks)")
        if opts.limit is None and not opts.no_judge:
            return items, []
        from .checks.registry import REGISTRY

        self.active = True
        kept, dropped, judged, per_suite = [], [], 0, {}  # type: ignore[var-annotated]
        for it in items:
            if is_case(it) and opts.no_judge and any(REGISTRY[c.type].judge for c in it.case.checks):
                dropped.append(it)
                judged += 1
            elif is_case(it) and opts.limit is not None and per_suite.get(it.suite.name, 0) >= opts.limit:
                dropped.append(it)
            else:
                if is_case(it):
                    per_suite[it.suite.name] = per_suite.get(it.suite.name, 0) + 1
                kept.append(it)
        self.narrowed = bool(dropped)
        if judged:
            self.partial.append(f"{judged} case(s) with a judge check left out (--no-judge)")
        if opts.limit is not None and len(dropped) > judged:
            self.partial.append(f"only the first {opts.limit} case(s) of each suite (--limit {opts.limit}): "
                                f"{len(dropped) - judged} left out")
        return kept, dropped

    def select_shard(self, items: list[Any], is_case: Callable[[Any], bool]) -> tuple[list[Any], list[Any]]:
        """Return ``(kept, deselected)``: this shard's case items; gates wait for ``mergegate merge``."""
        shard = self.shard
        if shard is None:
            return items, []
        from .evaluation import shard_of

        self.active = True
        kept: list[Any] = []
        dropped: list[Any] = []
        position = 0
        for it in items:
            if is_case(it):
                (kept if shard_of(position, shard.total) == shard.index else dropped).append(it)
                position += 1
            else:
                dropped.append(it)
        return kept, dropped

    # -- evaluation -----------------------------------------------------------------
    def evaluate(self, items: list[Any], is_case: Callable[[Any], bool], keyword: str = "") -> None:
        """Evaluate the selected case items (or, with none, every suite if any gate needs results).

        ``keyword``: the run's ``-k``; benchmarks then run only when a selected gate reads them.
        """
        cases = [it for it in items if is_case(it)]
        gates = [it for it in items if not is_case(it) and self.wants_results(it)]
        if not cases and not gates:
            return
        benchmarks = self._wants_benchmarks(gates, keyword)
        from .evaluation import Evaluation

        self.active = True
        command = list(self.options.command)
        try:
            if cases or self.narrowed:  # the flags may have left no case: then there is nothing to evaluate, not everything
                suites = list({id(it.suite): it.suite for it in cases}.values())
                selection: Optional[set[tuple[str, str]]] = {(it.suite.name, it.case.id) for it in cases}
            else:
                suites, selection = self.all_suites(), None
            if self.options.merge_from:
                if not cases:  # a merge evaluates the cases the shards ran; gates alone still need them all
                    selection = None
                self.evaluation = Evaluation.from_shards(self.loaded, suites, list(self.options.merge_from), selection, command=command)
            else:
                self.evaluation = Evaluation(self.loaded, suites, selection, progress=self.options.progress, command=command,
                                             shard=self.shard, sample=self.sample_meta, aa=self.options.aa,
                                             benchmarks=benchmarks, partial=self.partial, notes=self.warnings_for_report)
                self.evaluation.run()
        except MergegateError as exc:
            self.failures.append(str(exc))
            return
        self._by_id = {(c.suite, c.id): c for c in self.evaluation.cases}
        self._evaluated_at = time.perf_counter()
        if self.options.on_evaluated is not None:
            self.options.on_evaluated(self.evaluation.floor(), len(self.evaluation.cases), bool(self.evaluation.meta.partial))

    def _wants_benchmarks(self, gates: list[Any], keyword: str) -> bool:
        """Return whether the benchmark phase runs: configured, not ``--no-benchmarks``, and with ``-k`` read by a selected gate."""
        if self.loaded.config.benchmarks is None:
            return False
        if self.options.no_benchmarks:
            self.benchmarks_left_out = NotEvaluated("benchmarks not run (--no-benchmarks)", skip=True)
            return False
        if keyword and not any(_reads_benchmarks(g) for g in gates):
            self.warnings_for_report.append(f"benchmarks not run: no gate selected by -k {keyword!r} reads them")
            self.benchmarks_left_out = NotEvaluated(
                f"benchmarks were not run: no gate selected by -k {keyword!r} mentions 'benchmark' in its source, "
                "but this gate reads them; select a gate that names them, or run without -k")
            return False
        return True

    @staticmethod
    def wants_results(item: Any) -> bool:
        """Return True when a test reads evaluation results (it is a gate)."""
        return bool({"results", "target_suite", "general_suite", "any_suite"} & set(getattr(item, "fixturenames", ())))

    def case_result(self, suite: str, case_id: str) -> Optional[CaseResult]:
        """Return the result of one case, or None when it was not evaluated."""
        return self._by_id.get((suite, case_id))

    def results(self) -> Results:
        """Return the one results view every gate reads (built once); raise if the evaluation did not run.

        It wraps a deep copy of the assembled results: the verdict is decided
        from the evaluation's own data, which no gate can reach.
        """
        if self.evaluation is None:
            raise MergegateError("evaluation did not run: " + ("; ".join(self.failures) or "no suites"))
        if self._view is None:
            self._view = Results(copy.deepcopy(self.evaluation.results()), on_advisory_read=self._mark_advisory,
                                 on_finding=self._record_finding, left_out=self.benchmarks_left_out)
        return self._view

    def _mark_advisory(self) -> None:
        self._advisory_read = True

    def _record_finding(self, finding: Finding) -> None:
        self._findings.append(finding)

    def begin_gate(self) -> None:
        """Note that a new gate starts (it has read no judge metric and concluded nothing yet)."""
        self._advisory_read = False
        self._findings = []

    # -- reporting ------------------------------------------------------------------
    def record(self, report: Any, raised: bool = False, insufficient: bool = False) -> None:
        """Record the outcome of a gate test from its pytest report.

        ``raised``: the gate raised something other than AssertionError — it could
        not be evaluated, which is an error (INCOMPLETE), not a failed gate (NO-GO).
        """
        name = report.nodeid
        if report.when != "call" and report.outcome == "passed":
            return
        outcome, message = _outcome(report, raised, insufficient)
        if report.when == "call":
            self.gate_findings[name] = list(self._findings)
            message = _untruncated(message, self._findings)
            if outcome == "passed" and not message:  # a drop beyond the tolerance that was not significant is said, not hidden
                message = "; ".join(f.reason for f in self._findings if f.beyond_threshold and not f.found)
        if self._advisory_read and outcome in ("passed", "failed", "insufficient"):
            # it read metrics of a judge that failed calibration: shown, never blocking
            message = f"uncalibrated judge, advisory only; the gate {outcome}" + (f": {message}" if message else "")
            outcome = "advisory"
        weak = "; ".join(f.reason for f in self.gate_findings.get(name, []) if f.underpowered) or None
        previous = self.gate_reports.get(name)
        if previous is None or previous.outcome in ("passed", "advisory", "insufficient"):
            self.gate_reports[name] = GateResult(name=name, outcome=outcome, message=message, underpowered=weak)

    def finish(self, interrupted: bool) -> Optional[int]:
        """Decide the verdict, write the outputs; return the exit code (None if inactive)."""
        if not self.active:
            return None
        from .evaluation import Evaluation
        from .report import write_outputs

        failures = list(self.failures)
        if interrupted:
            failures.append("the pytest session was interrupted (Ctrl-C, or a suite or gate file failed to load)")
        if self.evaluation is None:
            try:
                self.evaluation = Evaluation(self.loaded, [], set(), progress=False, command=list(self.options.command), shard=self.shard)
            except InputError as exc:
                failures.append(str(exc))
                return 2
        findings = {name: [(f.what, f.found, f.p_value) for f in fs] for name, fs in self.gate_findings.items()}
        gates = apply_holm(list(self.gate_reports.values()), findings, self.evaluation.policy)
        timings = {}
        if self._evaluated_at is not None:  # the pytest session after the evaluation: case tests and gates (assembly apart)
            spent = time.perf_counter() - self._evaluated_at - self.evaluation.timings.get("assemble", 0.0)
            timings["gates"] = round(max(spent, 0.0), 3)
        self.run = self.evaluation.finish(gates, failures, timings)
        out = Path(self.options.output_dir) if self.options.output_dir else self.loaded.resolve(self.loaded.config.output_dir)
        history = None
        if self.options.history is not None and self.options.history.exists():
            try:
                history = read_history(self.options.history, limit=20)
            except InputError as exc:  # a broken history file costs the trend, not the verdict
                self.warnings.append(f"history ignored: {exc}")
        try:
            self.written = write_outputs(self.run, out, history=history)
        except OSError:  # a full or read-only folder: the CLI's supervisor finds no results and says so in one line
            return 2
        return self.run.exit_code


def _reads_benchmarks(item: Any) -> bool:
    """Return True when a gate's source mentions benchmarks (so ``-k`` selecting it keeps the benchmark phase)."""
    import inspect

    try:
        return "benchmark" in inspect.getsource(item.function)
    except (AttributeError, OSError, TypeError):  # no source to read: assume it does, and run them
        return True


def _untruncated(message: str, findings: list[Finding]) -> str:
    """Return the finding a failed ``assert finding`` names, whole: pytest cuts a long repr in the middle ("+12...wered")."""
    head = message.split("...", 1)[0]
    if "..." not in message or len(head) < 20:
        return message
    whole = [repr(f) for f in findings if repr(f).startswith(head)]
    return whole[0] if whole else message


def _outcome(report: Any, raised: bool, insufficient: bool) -> tuple[GateOutcome, str]:
    """Return a gate report's outcome and message (an exception other than AssertionError is an error, not a failure)."""
    outcome: GateOutcome
    if report.skipped:
        outcome = "skipped"
    elif report.failed:
        outcome = "failed" if report.when == "call" and not raised else "error"
    else:
        outcome = "passed"
    message = _short_message(report) if report.failed or report.skipped else ""
    if insufficient and outcome == "failed":
        return "insufficient", message.split("InsufficientEvidence: ", 1)[-1]
    return outcome, message


def _short_message(report: Any) -> str:
    longrepr = report.longrepr
    if isinstance(longrepr, tuple):  # skip: (path, line, reason)
        return readable(str(longrepr[2]))
    crash = getattr(longrepr, "reprcrash", None)
    if crash is not None and crash.message:
        return readable(crash.message)
    return str(longrepr)[-2000:]


