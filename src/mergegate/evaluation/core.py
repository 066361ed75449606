"""The orchestrator: one :class:`Evaluation` runs the phases in order and hands typed data between them.

serve → build requests → generate (one concurrent batch per turn) → judge →
benchmarks → score → assemble (once) → decide (in :mod:`mergegate.verdict`).
No pytest here: the plugin drives one Evaluation per session; scripts and the
benchmarks can drive it directly.
"""

from __future__ import annotations

import dataclasses
import importlib
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Optional

from ..client import GenerationStats, Job, Response, ResponseCache, generate_all
from ..config.loader import LoadedConfig
from ..contamination import case_texts, find_overlaps, iter_training_texts, resolve_training_files, summary_of
from ..errors import IncompleteError
from ..judge import JudgePhase
from ..progress import say
from ..results import ROLES, BenchmarkResult, CaseResult, ContaminationSummary, GateResult, RunResults, SampleMeta, ShardMeta
from ..results.models import NoiseFloor
from ..serving import Endpoint, ServerFleet
from ..suites import Case, LoadedSuite
from ..verdict import Evidence, Policy, Verdict, decide
from .assemble import Produced, assemble
from .benchmarks import run_benchmark_phase
from .judging import calibration_sets, check_judge_configured, judge_outputs, uses_judge
from .provenance import model_meta, now, run_meta
from .requests import build_jobs, check_tools_reach_the_models
from .scoring import ResponseKey, score_cases
from .shards import merge_shards

__all__ = ["Evaluation"]


class Evaluation:
    """One evaluation run over ``suites`` (optionally a ``selection`` of ``(suite, case_id)``)."""

    def __init__(self, loaded: LoadedConfig, suites: list[LoadedSuite], selection: Optional[set[tuple[str, str]]] = None,
                 *, progress: bool = True, log_dir: Optional[Path] = None, command: Optional[list[str]] = None,
                 shard: Optional[ShardMeta] = None, sample: Optional[SampleMeta] = None, aa: bool = False,
                 benchmarks: bool = True, partial: Sequence[str] = (), notes: Sequence[str] = ()):
        if aa:  # the baseline against itself: the candidate role is served exactly as the baseline
            models = loaded.config.models
            loaded = dataclasses.replace(loaded, config=loaded.config.model_copy(
                update={"models": {**models, "candidate": models["baseline"]}}))
        self.aa = aa
        self.loaded = loaded
        self.suites = suites
        self.selection = selection
        self.progress = progress
        self.output_dir = loaded.resolve(loaded.config.output_dir)
        self.log_dir = log_dir or self.output_dir / "logs"
        self.policy = Policy.from_config(loaded.config)
        self.cases: list[CaseResult] = []
        self.stats = GenerationStats()
        self.failures: list[str] = []
        self.meta = run_meta(loaded, command, shard, sample)
        self.meta.partial = list(partial)
        self.run_benchmarks = benchmarks and loaded.config.benchmarks is not None
        self.notes = list(notes)  # for the report's warnings: what the reader must know that does not change the verdict
        self.on_result: Optional[Callable[[Job, Response], None]] = None
        self.judge_phase: Optional[JudgePhase] = None
        self.contamination: Optional[ContaminationSummary] = None
        self.benchmarks: list[BenchmarkResult] = []
        self._assembled: Optional[RunResults] = None
        self.timings: dict[str, float] = {}  # wall seconds per phase, recorded in results.json

    def selected_cases(self) -> Iterable[tuple[LoadedSuite, Case]]:
        """Yield ``(suite, case)`` for every case this run evaluates."""
        for ls in self.suites:
            for case in ls.suite.cases:
                if self.selection is None or (ls.name, case.id) in self.selection:
                    yield ls, case

    # -- the phases ----------------------------------------------------------------------
    def run(self) -> list[CaseResult]:
        """Serve, generate everything, judge, benchmark, score; return the case results.

        Problems that keep the run from completing are collected in ``failures``
        (the verdict will be INCOMPLETE); this method raises only for bad input.
        """
        cfg = self.loaded.config
        selected = list(self.selected_cases())
        judged = uses_judge(selected)
        check_judge_configured(self.loaded, selected)
        check_tools_reach_the_models(self.loaded, selected)
        calibration = calibration_sets(self.loaded) if judged else None  # bad input surfaces before any server starts
        self.check_contamination()
        responses: dict[ResponseKey, Response] = {}
        fleet = ServerFleet(self.loaded, self.log_dir)
        clock = time.perf_counter()
        try:
            roles: list[str] = list(cfg.serving_roles()) if judged else list(ROLES)
            say(f"starting model servers for {', '.join(roles)}…", self.progress)
            endpoints = fleet.start(roles)
            self.meta.models = model_meta(self.loaded, endpoints)
            cache = ResponseCache(self.loaded.resolve(cfg.cache.path)) if cfg.cache.enabled else None
            clock = self._lap("serve", clock)
            try:
                say(f"generating: {len(selected)} case(s) x {len(ROLES)} models…", self.progress)
                self._generate(selected, endpoints, cache, responses)
                clock = self._lap("generate", clock, f"{self.stats.requests_sent} request(s) sent, {self.stats.cache_hits} from the "
                                  f"cache, {self.stats.errors} failed")
                if calibration is not None:
                    say("judging…", self.progress)
                    self.judge_phase = judge_outputs(self.loaded, selected, endpoints, responses, cache, calibration, self.progress)
                    self.failures += self.judge_phase.failures
                    clock = self._lap("judge", clock)
                if self.run_benchmarks and (self.meta.shard is None or self.meta.shard.index == 1):
                    # sharded runs: shard 1 runs them once
                    say(f"benchmarks: lm-eval {', '.join(cfg.benchmarks.tasks)}…", self.progress)  # type: ignore[union-attr]
                    self.benchmarks, failed = run_benchmark_phase(self.loaded, fleet, self.output_dir, self.log_dir, self.progress)
                    self.failures += failed
                    clock = self._lap("benchmarks", clock)
            finally:
                if cache is not None:
                    cache.close()
            for ep in endpoints.values():
                ep.raise_if_dead()
        except IncompleteError as exc:
            # keep what was generated: the report shows it, the verdict is INCOMPLETE anyway
            self.failures.append(str(exc))
        finally:
            fleet.stop()
        clock = time.perf_counter()
        say(f"scoring {len(selected)} case(s)…", self.progress)
        contaminated = {(x.suite, x.id) for x in self.contamination.cases} if self.contamination else None
        self.cases = score_cases(selected, responses, self.judge_phase.judgements if self.judge_phase else {}, contaminated,
                                 cfg.generation.truncated, cfg.check_timeout_s,
                                 {role: spec.tool_format == "prompt" for role, spec in cfg.models.items()})
        self._lap("score", clock)
        self._assembled = None
        return self.cases

    def _lap(self, phase: str, since: float, detail: str = "") -> float:
        """Record the wall time of ``phase`` (begun at ``since``) and say it; return now."""
        now = time.perf_counter()
        self.timings[phase] = round(self.timings.get(phase, 0.0) + now - since, 3)
        say(f"{phase}: done in {now - since:.1f} s" + (f" ({detail})" if detail else ""), self.progress)
        return now

    def _generate(self, selected: list[tuple[LoadedSuite, Case]], endpoints: dict[str, Endpoint], cache: Optional[ResponseCache],
                  responses: dict[ResponseKey, Response]) -> None:
        """Generate every request, one concurrent batch per turn (turn k of a multi-turn case needs the answer to turn k-1)."""
        # While the client mostly waits on the model, load what the statistics need afterwards (scipy: ~0.15 s).
        threading.Thread(target=importlib.import_module, args=("scipy.special",), daemon=True).start()
        for turn in range(1, max((c.n_turns for _, c in selected), default=1) + 1):
            jobs, failed = build_jobs(self.loaded, selected, endpoints, turn, responses)
            label = "generating" + (f" turn {turn}" if turn > 1 else "")
            got, stats = generate_all(jobs, cache, self.loaded.config.generation, progress=self.progress, on_result=self.on_result,
                                      label=label)
            responses.update(got)
            responses.update(failed)
            self.stats = stats if turn == 1 else self.stats.merged(stats)

    def check_contamination(self) -> None:
        """Scan the candidate's ``training_data`` for every selected case's n-grams (streamed; InputError for a missing file)."""
        cand = self.loaded.config.models["candidate"]
        if not cand.training_data:
            return
        opts = self.loaded.config.contamination
        files = resolve_training_files(cand.training_data, self.loaded.root, self.loaded.path)
        report = find_overlaps([case_texts(ls.name, case) for ls, case in self.selected_cases()],
                               iter_training_texts(files, opts.fields or None), opts.n, opts.min_words)
        self.contamination = ContaminationSummary(**summary_of(report, opts.on_contaminated, self.loaded.root))

    @classmethod
    def from_shards(cls, loaded: LoadedConfig, suites: list[LoadedSuite], files: list[Path],
                    selection: Optional[set[tuple[str, str]]] = None, command: Optional[list[str]] = None) -> Evaluation:
        """Return an evaluation whose cases come from shard ``results.json`` files instead of the models."""
        ev = cls(loaded, suites, selection, progress=False, command=command)
        merged = merge_shards(files, suites, ev.selected_cases())
        ev.cases, ev.failures = merged.cases, merged.failures
        ev.stats = GenerationStats(requests_sent=merged.requests_sent, cache_hits=merged.cache_hits, errors=merged.errors,
                                   wall_s=merged.wall_s, per_role=merged.per_role)
        ev.benchmarks, ev.contamination = merged.benchmarks, merged.contamination
        if merged.judge is not None:
            ev.judge_phase = JudgePhase(summary=merged.judge)
        m = merged.meta
        assert m is not None
        ev.meta = ev.meta.model_copy(update={"models": m.models, "sample": m.sample, "git_commit": m.git_commit, "git_dirty": m.git_dirty,
                                             "started_at": m.started_at, "merged_from": m.merged_from,
                                             "partial": m.partial})
        return ev

    # -- results and verdict -------------------------------------------------------------
    def counted_cases(self) -> list[CaseResult]:
        """Return the cases that count toward metrics, gates and blocking (contaminated ones left out when configured)."""
        if self.contamination is not None and self.contamination.on_contaminated == "exclude":
            return [c for c in self.cases if not c.contaminated]
        return self.cases

    def results(self) -> RunResults:
        """Return the run's results with every summary computed (once), the verdict still open (INCOMPLETE)."""
        if self._assembled is None:
            clock = time.perf_counter()
            produced = Produced(cases=self.cases, counted=self.counted_cases(), stats=self.stats, noise_floor=self.noise_floor(),
                                judge=self.judge_phase.summary if self.judge_phase else None, contamination=self.contamination,
                                benchmarks=self.benchmarks)
            run = assemble(self.loaded, self.suites, self.meta, produced)
            said = [f"partial run: {p}; the verdict cannot be GO" for p in self.meta.partial] + self.notes
            self._assembled = run.model_copy(update={"warnings": said + run.warnings})
            self._lap("assemble", clock)
        return self._assembled

    def noise_floor(self) -> Optional[NoiseFloor]:
        """Return, on an A/A run, how many cases got two different answers (None otherwise)."""
        if not self.aa:
            return None
        differ = sum(c.candidate.generation.text != c.baseline.generation.text
                     or c.candidate.generation.tool_calls != c.baseline.generation.tool_calls for c in self.cases)
        flips = sum(c.candidate.passed != c.baseline.passed for c in self.cases)
        n = len(self.cases)
        return NoiseFloor(cases=n, differing=differ, share=differ / n if n else 0.0, passed_differently=flips)

    def verdict(self, gates: Sequence[GateResult], failures: Iterable[str] = ()) -> Verdict:
        """Return the verdict of this run with ``gates`` (and further ``failures`` the caller saw)."""
        return decide(self._evidence(gates, failures), self.policy)

    def floor(self) -> Verdict:
        """Return what the evaluation alone decides, before any gate runs: gates can only make it worse.

        The CLI's supervisor receives it before the gates run, so a gate that rewrites results in memory
        cannot lift a failed blocking case, request errors or a failed phase into GO.
        """
        # partial runs: what they skipped cannot block, so the floor leaves it out (the supervisor is told they are partial)
        return decide(dataclasses.replace(self._evidence((), ()), partial=()), dataclasses.replace(self.policy, min_gates=0))

    def _evidence(self, gates: Sequence[GateResult], failures: Iterable[str]) -> Evidence:
        return Evidence(cases=self.counted_cases(), gates=gates, failures=self.failures + list(failures),
                        request_errors=self.stats.errors,
                        contaminated=len(self.contamination.cases) if self.contamination is not None else 0,
                        shard=self.meta.shard, cases_evaluated=len(self.cases), noise_floor=self.noise_floor(),
                        partial=self.meta.partial)

    def finish(self, gates: Sequence[GateResult], failures: Iterable[str] = (), timings: Optional[dict[str, float]] = None) -> RunResults:
        """Return the complete :class:`RunResults` with the verdict decided (``timings``: further phases the caller measured)."""
        v = self.verdict(gates, failures)
        run = self.results()
        meta = run.meta.model_copy(update={"finished_at": now(), "timings": {**self.timings, **(timings or {})}})
        return run.model_copy(update={"verdict": v.outcome, "exit_code": v.exit_code, "reasons": list(v.reasons), "gates": list(gates),
                                      "meta": meta})
