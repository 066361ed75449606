"""The state of one pytest session, kept on ``config`` by the plugin.

Every plugin hook hands off to one method here; this module holds the logic
of "which items are cases, which are gates, what is the verdict" without
defining pytest hooks itself.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

from .config import LoadedConfig, load_config
from .errors import InputError, MergegateError
from .report import write_outputs
from .results import CaseResult, GateResult, Results, RunResults
from .results import read_history
from .runner import Evaluation, parse_shard, shard_of
from .suites import LoadedSuite, discover_suites, load_suite

__all__ = ["MergegateSession"]


class MergegateSession:
    """Collects suites, runs the evaluation before the first test, decides the verdict at the end."""

    def __init__(self, config_path: Optional[str], root: Path, output_dir: Optional[str], progress: bool, command: list[str],
                 shard: Optional[str] = None, merge_from: Optional[list[str]] = None, history: Optional[str] = None,
                 sample: Optional[int] = None):
        self._config_path = config_path
        self._shard_text = shard
        self.sample_size = sample
        self.sample_meta = None
        self.merge_from = [Path(p) for p in merge_from or []]
        self.history_path = Path(history) if history else None
        self.root = root
        self._output_override = output_dir
        self.progress = progress
        self.command = command
        self._loaded: Optional[LoadedConfig] = None
        self.suites: dict[Path, LoadedSuite] = {}
        self.case_items: list[Any] = []
        self.gate_reports: dict[str, GateResult] = {}
        self.failures: list[str] = []
        self.warnings: list[str] = []
        self.active = False
        self.evaluation: Optional[Evaluation] = None
        self._by_id: dict[tuple[str, str], CaseResult] = {}
        self.run: Optional[RunResults] = None
        self.written: dict[str, Path] = {}
        self._advisory_read = False  # the running gate read a metric of an uncalibrated, advisory judge
        self._findings: list[Any] = []  # what regressed()/improved() concluded in the running gate
        self.gate_findings: dict[str, list[Any]] = {}

    # -- configuration and suites -------------------------------------------------
    @property
    def loaded(self) -> LoadedConfig:
        """Return the run's config (loaded on first use)."""
        if self._loaded is None:
            self._loaded = load_config(self._config_path, self.root)
        return self._loaded

    def is_suite_path(self, path: Path) -> bool:
        """Return True when ``path`` is a suite file: YAML inside the configured suites folder."""
        from .suites import is_suite_file

        if not is_suite_file(path):
            return False
        suites_dir_name = Path(self.loaded.config.suites_dir).name
        return suites_dir_name in path.parts[:-1]

    def suite_at(self, path: Path) -> LoadedSuite:
        """Return the suite in ``path`` (loaded once); raise SuiteError for a bad file."""
        path = path.resolve()
        if path not in self.suites:
            self.active = True
            self.suites[path] = load_suite(path)
        return self.suites[path]

    def all_suites(self) -> list[LoadedSuite]:
        """Return every suite of the configured folder (for gates run without case items)."""
        return discover_suites([self.loaded.resolve(self.loaded.config.suites_dir)])

    # -- sharding ---------------------------------------------------------------------
    @property
    def shard(self):
        """Return this session's :class:`ShardMeta`, or None when it evaluates every selected case."""
        return parse_shard(self._shard_text) if self._shard_text else None

    def select_sample(self, items: list[Any], is_case: Any) -> tuple[list[Any], list[Any]]:
        """Return ``(kept, deselected)``: a seeded sample of the case items, stratified by suite and category."""
        if self.sample_size is None:
            return items, []
        from .results import SampleMeta
        from .stats import stratified_sample

        if self.sample_size < 1:
            raise InputError(f"--sample wants a positive number of cases, got {self.sample_size}")
        self.active = True
        cases = [it for it in items if is_case(it)]
        strata = [(it.suite.name, it.case.category) for it in cases]
        population: dict[str, dict[str, int]] = {}
        for suite, cat in strata:
            population.setdefault(suite, {}).setdefault(cat, 0)
            population[suite][cat] += 1
        chosen = {id(cases[i]) for i in stratified_sample(strata, self.sample_size, self.loaded.config.stats.seed)}
        self.sample_meta = SampleMeta(size=len(chosen), seed=self.loaded.config.stats.seed, population=population)
        kept = [it for it in items if not is_case(it) or id(it) in chosen]
        return kept, [it for it in items if is_case(it) and id(it) not in chosen]

    def select_shard(self, items: list[Any], is_case: Any) -> tuple[list[Any], list[Any]]:
        """Return ``(kept, deselected)``: this shard's case items; gates wait for ``mergegate merge``."""
        shard = self.shard
        if shard is None:
            return items, []
        self.active = True
        kept, dropped = [], []
        position = 0
        for it in items:
            if is_case(it):
                (kept if shard_of(position, shard.total) == shard.index else dropped).append(it)
                position += 1
            else:
                dropped.append(it)
        return kept, dropped

    # -- evaluation -----------------------------------------------------------------
    def evaluate(self, items: list[Any], is_case: Any) -> None:
        """Evaluate the selected case items (or, with none, every suite if any gate needs results)."""
        cases = [it for it in items if is_case(it)]
        gates = [it for it in items if not is_case(it) and self.wants_results(it)]
        if not cases and not gates:
            return
        self.active = True
        try:
            if cases:
                suites = list({id(it.suite): it.suite for it in cases}.values())
                selection = {(it.suite.name, it.case.id) for it in cases}
            else:
                suites, selection = self.all_suites(), None
            if self.merge_from:
                if not cases:  # a merge evaluates the cases the shards ran; gates alone still need them all
                    selection = None
                self.evaluation = Evaluation.from_shards(self.loaded, suites, self.merge_from, selection, command=self.command)
            else:
                self.evaluation = Evaluation(self.loaded, suites, selection, progress=self.progress, command=self.command,
                                             shard=self.shard, sample=self.sample_meta)
                self.evaluation.run()
        except MergegateError as exc:
            self.failures.append(str(exc))
            return
        self._by_id = {(c.suite, c.id): c for c in self.evaluation.cases}

    @staticmethod
    def wants_results(item: Any) -> bool:
        """Return True when a test reads evaluation results (it is a gate)."""
        return bool({"results", "target_suite", "general_suite", "any_suite"} & set(getattr(item, "fixturenames", ())))

    def case_result(self, suite: str, case_id: str) -> Optional[CaseResult]:
        """Return the result of one case, or None when it was not evaluated."""
        return self._by_id.get((suite, case_id))

    def results(self) -> Results:
        """Return the results view gates assert on; raise if the evaluation did not run."""
        if self.evaluation is None:
            raise MergegateError("evaluation did not run: " + ("; ".join(self.failures) or "no suites"))
        return Results(self.evaluation.partial_results(), on_advisory_read=self._mark_advisory, on_finding=self._findings.append)

    def _mark_advisory(self) -> None:
        self._advisory_read = True

    def begin_gate(self) -> None:
        """Note that a new gate starts (it has read no judge metric and concluded nothing yet)."""
        self._advisory_read = False
        self._findings = []

    # -- reporting ------------------------------------------------------------------
    def record(self, report: Any, is_gate: bool, raised: bool = False, insufficient: bool = False) -> None:
        """Record the outcome of a gate test from its pytest report.

        ``raised``: the gate raised something other than AssertionError — it could
        not be evaluated, which is an error (INCOMPLETE), not a failed gate (NO-GO).
        """
        if not is_gate:
            return
        name = report.nodeid
        if report.when == "call" or (report.outcome != "passed"):
            if report.skipped:
                outcome = "skipped"
            elif report.failed:
                outcome = "failed" if report.when == "call" and not raised else "error"
            else:
                outcome = "passed"
            message = ""
            if report.failed or report.skipped:
                message = _short_message(report)
            if insufficient and outcome == "failed":
                outcome = "insufficient"
                message = message.split("InsufficientEvidence: ", 1)[-1]
            if report.when == "call":
                self.gate_findings[name] = list(self._findings)
            if self._advisory_read and outcome in ("passed", "failed", "insufficient"):
                # it read metrics of a judge that failed calibration: shown, never blocking
                message = f"uncalibrated judge, advisory only; the gate {outcome}" + (f": {message}" if message else "")
                outcome = "advisory"
            previous = self.gate_reports.get(name)
            if previous is None or previous.outcome in ("passed", "advisory", "insufficient"):
                self.gate_reports[name] = GateResult(name=name, outcome=outcome, message=message)

    def _holm(self, gates: list[GateResult]) -> list[GateResult]:
        """Return ``gates`` with failures that do not survive Holm's correction turned 'insufficient' (if configured)."""
        try:
            opts = self.loaded.config.stats
        except MergegateError:
            return gates
        family = [(name, f) for name, fs in self.gate_findings.items() for f in fs]
        if not opts.holm or not family:
            return gates
        from .stats import holm

        keep = holm([f.p_value if f.p_value is not None else 0.0 for _, f in family], alpha=1 - opts.level)
        weak = {name for (name, _), ok in zip(family, keep, strict=True) if not ok}
        out = []
        for g in gates:
            if g.outcome == "failed" and g.name in weak:
                g = GateResult(name=g.name, outcome="insufficient",
                               message=f"not significant after Holm's correction over {len(family)} comparisons: {g.message}")
            out.append(g)
        return out

    def finish(self, interrupted: bool) -> Optional[int]:
        """Decide the verdict, write the outputs; return the exit code (None if inactive)."""
        if not self.active:
            return None
        failures = list(self.failures)
        if interrupted:
            failures.append("the pytest session was interrupted (Ctrl-C, or a suite or gate file failed to load)")
        gates = self._holm(list(self.gate_reports.values()))
        if self.evaluation is None:
            try:
                self.evaluation = Evaluation(self.loaded, [], set(), progress=False, command=self.command, shard=self.shard)
            except InputError as exc:
                failures.append(str(exc))
                return 2
        self.run = self.evaluation.finish(gates, failures)
        out = Path(self._output_override) if self._output_override else self.loaded.resolve(self.loaded.config.output_dir)
        history = None
        if self.history_path is not None and self.history_path.exists():
            try:
                history = read_history(self.history_path, limit=20)
            except InputError as exc:  # a broken history file costs the trend, not the verdict
                self.warnings.append(f"history ignored: {exc}")
        self.written = write_outputs(self.run, out, history=history)
        return self.run.exit_code


def _short_message(report: Any) -> str:
    longrepr = report.longrepr
    if isinstance(longrepr, tuple):  # skip: (path, line, reason)
        return str(longrepr[2])
    crash = getattr(longrepr, "reprcrash", None)
    if crash is not None and crash.message:
        return crash.message
    return str(longrepr)[-2000:]
