"""The evaluation core, free of pytest: serve, generate, score, aggregate, decide.

The pytest plugin drives one :class:`Evaluation` per session; scripts and the
benchmarks can drive it directly.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import importlib.metadata
import platform
import subprocess
import sys
from pathlib import Path
from typing import Callable, Iterable, Optional

from .checks import CheckContext, REGISTRY, run_check
from .client import GenerationStats, Job, Response, ResponseCache, generate_all
from .config.loader import LoadedConfig
from .errors import IncompleteError, InputError
from .github.context import ci_from_env
from .judge import JudgePhase, LoadedCalibration, find_calibration_files, load_calibration, run_judge_phase
from .results import (CaseResult, CheckResult, Generation, GenerationSummary, GateResult, ModelMeta, RunMeta, RunResults,
                      ShardMeta, SideResult, SuiteMeta, SuiteSummary, summarize)
from .serving import Endpoint, ServerFleet
from .suites import Case, LoadedSuite, Sampling

__all__ = ["Evaluation", "decide", "score_side", "shard_of", "parse_shard", "load_shards", "ROLES"]

ROLES = ("candidate", "baseline")
_PACKAGES = ("mergegate", "openai", "pydantic", "pytest", "rouge-score", "sacrebleu", "scikit-learn", "jinja2", "jsonschema",
             "llama_cpp_python", "vllm", "lm_eval")


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


def _git(root: Path, *args: str) -> Optional[str]:
    try:
        out = subprocess.run(["git", *args], cwd=root, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout.strip() if out.returncode == 0 else None


def _versions() -> dict[str, str]:
    found = {}
    for name in _PACKAGES:
        try:
            found[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            pass
    return found


def parse_shard(text: str) -> ShardMeta:
    """Return the shard ``"i/n"`` (1-based) as :class:`ShardMeta`; raise InputError if malformed."""
    try:
        index, total = (int(p) for p in text.split("/"))
    except ValueError:
        raise InputError(f"--shard wants INDEX/TOTAL such as 1/4, got {text!r}") from None
    if not 1 <= index <= total:
        raise InputError(f"--shard {text}: INDEX must be between 1 and TOTAL")
    return ShardMeta(index=index, total=total)


def shard_of(position: int, total: int) -> int:
    """Return the 1-based shard of the case at ``position`` (0-based) in collection order.

    Round robin over the collection order (sorted suite files, cases in file order):
    deterministic on every machine, and the shards differ in size by at most one case.
    """
    return position % total + 1


def score_side(case: Case, suite: LoadedSuite, gen: Generation, judgements: Optional[dict[int, dict]] = None) -> SideResult:
    """Return one model's :class:`SideResult` on ``case``: every check run on ``gen``.

    ``judgements[check_index]``: the judge's verdict for each judge check of the
    case, for this side. A failed generation fails every check with score 0
    (fail closed: an error never raises a mean).
    """
    results: list[CheckResult] = []
    ctx = CheckContext(output=gen.text, reference=case.reference, latency_ms=gen.latency_ms, suite_dir=suite.path.parent,
                       case_id=case.id, prompt=case.input_text)
    for index, (spec, prepared) in enumerate(zip(case.checks, suite.prepared[case.id], strict=True)):
        gated = REGISTRY[spec.type].kind == "bool" or getattr(spec, "threshold", None) is not None
        if gen.error:
            results.append(CheckResult(type=spec.type, metric=spec.metric_name, score=0.0, passed=False if gated else None,
                                       detail=f"no output: {gen.error}"))
            continue
        if REGISTRY[spec.type].judge is not None:
            ctx = dataclasses.replace(ctx, judgement=(judgements or {}).get(index))
        out = run_check(spec, ctx, prepared)
        results.append(CheckResult(type=spec.type, metric=spec.metric_name, score=out.score, passed=out.passed,
                                   detail=out.detail, extra=out.extra))
    gated_results = [r.passed for r in results if r.passed is not None]
    passed = None if not gated_results else (all(gated_results) and not gen.error)
    return SideResult(generation=gen, checks=results, passed=passed)


def decide(cases: list[CaseResult], gates: list[GateResult], failures: list[str], errors: int, tolerance: int) -> tuple[str, int, list[str]]:
    """Return ``(verdict, exit_code, reasons)``.

    INCOMPLETE (2) when anything kept the evaluation from completing, never GO;
    NO-GO (1) when a gate or a blocking case failed; GO (0) otherwise.
    """
    reasons = list(failures)
    if errors > tolerance:
        reasons.append(f"{errors} request(s) failed (tolerance {tolerance})")
    reasons += [f"gate {g.name} could not be evaluated: {g.message.splitlines()[0] if g.message else 'error'}" for g in gates if g.outcome == "error"]
    if not cases and not failures:
        reasons.append("no case was evaluated")
    if reasons:
        return "INCOMPLETE", 2, reasons
    no_go = [f"gate failed: {g.name}" for g in gates if g.outcome == "failed"]
    no_go += [f"blocking case failed: {c.suite}::{c.id}" for c in cases if c.blocking and c.candidate.passed is False]
    if no_go:
        return "NO-GO", 1, no_go
    advisory = sum(g.outcome == "advisory" for g in gates)
    note = f"; {advisory} advisory gate(s) on an uncalibrated judge did not count" if advisory else ""
    return "GO", 0, [f"{sum(g.outcome == 'passed' for g in gates)} gate(s) passed, no blocking case failed{note}"]


def load_shards(files: list[Path]) -> tuple[list[tuple[Path, RunResults]], int, dict[int, Path]]:
    """Return ``(runs, total, index -> file)`` for shard results files that belong together.

    Raises :class:`InputError` naming the file when one is unreadable, is not a
    shard, repeats a shard, or ran another config or commit than the first.
    """
    runs: list[tuple[Path, RunResults]] = []
    for f in files:
        try:
            runs.append((f, RunResults.model_validate_json(Path(f).read_bytes())))
        except OSError as exc:
            raise InputError(f"cannot read shard results: {exc.strerror}", f) from None
        except ValueError as exc:
            raise InputError(f"not a mergegate results file: {str(exc).splitlines()[0]}", f) from None
    if not runs:
        raise InputError("no shard results to merge")
    first_file, first = runs[0]
    if first.meta.shard is None:
        raise InputError("not a shard's results (made without --shard)", first_file)
    total = first.meta.shard.total
    seen: dict[int, Path] = {}
    for f, r in runs:
        if r.meta.shard is None or r.meta.shard.total != total:
            got = f"{r.meta.shard.index}/{r.meta.shard.total}" if r.meta.shard else "no --shard"
            raise InputError(f"every file must come from the same `mergegate run --shard i/{total}`; this one is {got}", f)
        if r.meta.shard.index in seen:
            raise InputError(f"shard {r.meta.shard.index}/{total} given twice (also in {seen[r.meta.shard.index]})", f)
        seen[r.meta.shard.index] = f
        for what, a, b in (("config", first.meta.config_sha256, r.meta.config_sha256), ("commit", first.meta.git_commit, r.meta.git_commit)):
            if a != b:
                raise InputError(f"this shard evaluated a different {what} than {first_file} ({b} vs {a})", f)
    return runs, total, seen


class Evaluation:
    """One evaluation run over ``suites`` (optionally a ``selection`` of ``(suite, case_id)``)."""

    def __init__(self, loaded: LoadedConfig, suites: list[LoadedSuite], selection: Optional[set[tuple[str, str]]] = None,
                 *, progress: bool = True, log_dir: Optional[Path] = None, command: Optional[list[str]] = None,
                 shard: Optional[ShardMeta] = None):
        self.loaded = loaded
        self.suites = suites
        self.selection = selection
        self.progress = progress
        self.output_dir = loaded.resolve(loaded.config.output_dir)
        self.log_dir = log_dir or self.output_dir / "logs"
        self.cases: list[CaseResult] = []
        self.stats = GenerationStats()
        self.failures: list[str] = []
        self.meta = RunMeta(mergegate_version=_versions().get("mergegate", "0"), started_at=_now(),
                            git_commit=_git(loaded.root, "rev-parse", "HEAD"),
                            git_dirty=(lambda s: None if s is None else bool(s))(_git(loaded.root, "status", "--porcelain")),
                            config_file=str(loaded.path) if loaded.path else None, config_sha256=loaded.sha256,
                            packages=_versions(), python=sys.version.split()[0], platform=platform.platform(),
                            command=command or sys.argv, ci=ci_from_env(), shard=shard)
        self.on_result: Optional[Callable[[Job, Response], None]] = None
        self.judge_phase: Optional[JudgePhase] = None

    def selected_cases(self) -> Iterable[tuple[LoadedSuite, Case]]:
        """Yield ``(suite, case)`` for every case this run evaluates."""
        for ls in self.suites:
            for case in ls.suite.cases:
                if self.selection is None or (ls.name, case.id) in self.selection:
                    yield ls, case

    def _jobs(self, endpoints: dict[str, Endpoint]) -> list[Job]:
        jobs = []
        for ls, case in self.selected_cases():
            for role in ROLES:
                ep = endpoints[role]
                spec = self.loaded.config.models[role]
                sampling: Sampling = spec.sampling
                sampling = ls.suite.defaults.sampling.merged_over(sampling)
                if case.sampling is not None:
                    sampling = case.sampling.merged_over(sampling)
                systems = [s for s in (ep.system_prompt, ls.suite.defaults.system_prompt) if s]
                jobs.append(Job((role, ls.name, case.id), ep, case.chat(systems), sampling.model_dump()))
        return jobs

    def run(self, endpoints: Optional[dict[str, Endpoint]] = None) -> list[CaseResult]:
        """Serve (unless ``endpoints`` are given), generate everything, score; return the case results.

        Problems that keep the run from completing are collected in ``failures``
        (the verdict will be INCOMPLETE); this method raises only for bad input.
        """
        cfg = self.loaded.config
        fleet = None
        responses: dict[tuple, Response] = {}
        self.check_judge_configured()
        calibration = self._calibration() if self.uses_judge() else None  # bad input surfaces before any server starts
        try:
            if endpoints is None:
                fleet = ServerFleet(self.loaded, self.log_dir)
                roles = list(cfg.serving_roles()) if self.uses_judge() else list(ROLES)
                endpoints = fleet.start(roles)
            self._record_models(endpoints)
            cache = ResponseCache(self.loaded.resolve(cfg.cache.path)) if cfg.cache.enabled else None
            try:
                responses, self.stats = generate_all(self._jobs(endpoints), cache, cfg.generation, progress=self.progress,
                                                     on_result=self.on_result)
                if calibration is not None:
                    self._judge(endpoints, responses, cache, calibration)
            finally:
                if cache is not None:
                    cache.close()
            for ep in endpoints.values():
                ep.raise_if_dead()
        except IncompleteError as exc:
            # keep what was generated: the report shows it, the verdict is INCOMPLETE anyway
            self.failures.append(str(exc))
        finally:
            if fleet is not None:
                fleet.stop()
        self.cases = self._score(responses)
        return self.cases

    def uses_judge(self) -> bool:
        """Return True when a selected case has a judge check (llm_rubric, pairwise)."""
        return any(REGISTRY[spec.type].judge for _, case in self.selected_cases() for spec in case.checks)

    def check_judge_configured(self) -> None:
        """Raise :class:`InputError` when judge checks are selected but mergegate.yaml has no ``judge``."""
        if self.uses_judge() and self.loaded.config.judge is None:
            ls, case = next((ls, c) for ls, c in self.selected_cases() if any(REGISTRY[s.type].judge for s in c.checks))
            raise InputError(f"case {case.id!r} has a judge check (llm_rubric/pairwise) but mergegate.yaml has no 'judge' section",
                             ls.path, ls.case_lines.get(case.id))

    def _calibration(self) -> list[LoadedCalibration]:
        """Return the calibration sets: the configured file, or every *.calibration.yaml of the suites folder."""
        cal = self.loaded.config.judge.calibration  # type: ignore[union-attr]
        if cal.file:
            path = self.loaded.resolve(cal.file)
            if not path.is_file():
                raise InputError(f"judge.calibration.file {cal.file!r} does not exist", self.loaded.path)
            return [load_calibration(path)]
        return [load_calibration(p) for p in find_calibration_files(self.loaded.resolve(self.loaded.config.suites_dir))]

    def _judge(self, endpoints: dict[str, Endpoint], responses: dict[tuple, Response], cache: Optional[ResponseCache],
               sets: list[LoadedCalibration]) -> None:
        """Run the judge phase over the generated outputs; its failures make the run INCOMPLETE."""
        cfg = self.loaded.config
        if "judge" not in endpoints:
            self.failures.append("judge checks need a judge endpoint, and none was started")
            return

        def output(role: str, suite: str, case_id: str) -> Optional[str]:
            r = responses.get((role, suite, case_id))
            return None if r is None or r.error else r.text

        self.judge_phase = run_judge_phase(cfg.judge, endpoints, list(self.selected_cases()), output, sets, cache,  # type: ignore[arg-type]
                                           cfg.generation, progress=self.progress)
        self.failures += self.judge_phase.failures
        cal = self.judge_phase.summary.calibration if self.judge_phase.summary else None
        if cal is not None:
            cal.files = [_rel(Path(f), self.loaded.root) for f in cal.files]

    def _record_models(self, endpoints: dict[str, Endpoint]) -> None:
        roles = self.loaded.config.serving_roles()
        for role, ep in endpoints.items():
            spec = roles[role]
            ident = ep.identity or {}
            self.meta.models[role] = ModelMeta(engine=spec.engine, engine_version=ident.get("engine_version", "unknown"),
                                               model=spec.model, revision=ident.get("revision", spec.revision), served_name=ep.model,
                                               system_prompt=spec.system_prompt, adapter=spec.adapter,
                                               sampling=spec.sampling.model_dump(exclude_none=True), base_url=spec.base_url)

    def _score(self, responses: dict[tuple, Response]) -> list[CaseResult]:
        cases = []
        for ls, case in self.selected_cases():
            sides = {}
            for role in ROLES:
                resp = responses.get((role, ls.name, case.id))
                gen = Generation(**resp.__dict__) if resp is not None else Generation(error="not generated")
                judged = self.judge_phase.judgements if self.judge_phase else {}
                mine = {i: judged[(ls.name, case.id, i, role)] for i in range(len(case.checks)) if (ls.name, case.id, i, role) in judged}
                sides[role] = score_side(case, ls, gen, mine)
            cases.append(CaseResult(suite=ls.name, id=case.id, category=case.category, blocking=case.blocking,
                                    input=case.input_text, reference=case.reference, line=ls.case_lines.get(case.id, 0), **sides))
        return cases

    def finish(self, gates: list[GateResult], failures: Iterable[str] = ()) -> RunResults:
        """Return the complete :class:`RunResults` with the verdict decided."""
        all_failures = self.failures + list(failures)
        tolerance = self.loaded.config.generation.error_tolerance
        verdict, code, reasons = decide(self.cases, gates, all_failures, self.stats.errors, tolerance)
        empty_shard = self.meta.shard is not None and not self.cases and not all_failures and self.stats.errors <= tolerance
        if self.meta.shard is not None and (verdict != "INCOMPLETE" or empty_shard):
            # a shard sees a slice of the cases: gates and blocking cases are decided by `mergegate merge`
            sh = self.meta.shard
            verdict, code, reasons = "PENDING", 0, [f"shard {sh.index}/{sh.total}: {len(self.cases)} case(s) evaluated; "
                                                    "the verdict is decided by mergegate merge"]
        return self.partial_results(verdict=verdict, exit_code=code, reasons=reasons, gates=gates)

    @classmethod
    def from_shards(cls, loaded: LoadedConfig, suites: list[LoadedSuite], files: list[Path],
                    selection: Optional[set[tuple[str, str]]] = None, command: Optional[list[str]] = None) -> "Evaluation":
        """Return an evaluation whose cases come from shard ``results.json`` files instead of the models.

        Shards must have run the same config and suite files; a missing shard, or a
        shard that did not complete, makes the merged verdict INCOMPLETE.
        """
        ev = cls(loaded, suites, selection, progress=False, command=command)
        runs, total, seen = load_shards(files)
        first = runs[0][1]
        current = {ls.name: ls.sha256 for ls in suites}
        for f, r in runs:
            for sm in r.meta.suites:
                if sm.name in current and current[sm.name] != sm.sha256:
                    raise InputError(f"suite {sm.name!r} changed since this shard ran (its sha256 differs)", f)
        for index in range(1, total + 1):
            if index not in seen:
                ev.failures.append(f"shard {index}/{total} is missing: its cases were not evaluated")
        for _, r in runs:
            if r.verdict == "INCOMPLETE":
                ev.failures += [f"shard {r.meta.shard.index}/{total}: {reason}" for reason in r.reasons]  # type: ignore[union-attr]
        by_id: dict[tuple[str, str], CaseResult] = {}
        for f, r in runs:
            for c in r.cases:
                if (c.suite, c.id) in by_id:
                    raise InputError(f"case {c.suite}::{c.id} is in two shards", f)
                by_id[(c.suite, c.id)] = c
        ev.cases = [by_id[(ls.name, case.id)] for ls, case in ev.selected_cases() if (ls.name, case.id) in by_id]
        g = [r.generation for _, r in runs]
        ev.stats = GenerationStats(requests_sent=sum(x.requests_sent for x in g), cache_hits=sum(x.cache_hits for x in g),
                                   errors=sum(x.errors for x in g), wall_s=max(x.wall_s for x in g))
        for x in g:
            for role, counts in x.per_role.items():
                mine = ev.stats.per_role.setdefault(role, {})
                for k, v in counts.items():
                    mine[k] = mine.get(k, 0) + v
        judged = [r.judge for _, r in runs if r.judge is not None]
        if judged:  # every shard re-judged the calibration set (same items, same judge): keep one, add up the cost
            summary = judged[0].model_copy(deep=True)
            for field_name in ("calls", "cache_hits", "prompt_tokens", "completion_tokens", "estimated_cost_usd", "errors", "escalated"):
                setattr(summary.usage, field_name, sum(getattr(j.usage, field_name) for j in judged))
            ev.judge_phase = JudgePhase(summary=summary)
        ev.meta.models = first.meta.models
        ev.meta.git_commit, ev.meta.git_dirty = first.meta.git_commit, first.meta.git_dirty
        ev.meta.started_at = min(r.meta.started_at for _, r in runs)
        ev.meta.merged_from = [str(f) for f, _ in runs]
        return ev

    def partial_results(self, verdict: str = "INCOMPLETE", exit_code: int = 2, reasons: Optional[list[str]] = None,
                        gates: Optional[list[GateResult]] = None) -> RunResults:
        """Return the results so far (gates read these while the verdict is still open)."""
        suites = []
        for ls in self.suites:
            mine = [c for c in self.cases if c.suite == ls.name]
            if not mine:
                continue
            group = summarize(mine)
            cats = sorted({c.category for c in mine})
            suites.append(SuiteSummary(name=ls.name, version=ls.suite.version, role=ls.suite.role, task=ls.suite.task,
                                       categories={k: summarize([c for c in mine if c.category == k]) for k in cats},
                                       **group.model_dump(exclude={"pass_rate", "metrics", "latency_ms"}),
                                       pass_rate=group.pass_rate, metrics=group.metrics, latency_ms=group.latency_ms))
        self.meta.suites = [SuiteMeta(name=ls.name, version=ls.suite.version, file=_rel(ls.path, self.loaded.root), sha256=ls.sha256,
                                      cases=sum(1 for c in self.cases if c.suite == ls.name)) for ls in self.suites]
        self.meta.finished_at = _now()
        cats = sorted({c.category for c in self.cases})
        return RunResults(verdict=verdict, exit_code=exit_code, reasons=reasons or [], meta=self.meta,
                          generation=GenerationSummary(requests_sent=self.stats.requests_sent, cache_hits=self.stats.cache_hits,
                                                       errors=self.stats.errors, error_tolerance=self.loaded.config.generation.error_tolerance,
                                                       wall_s=round(self.stats.wall_s, 3), per_role=self.stats.per_role),
                          suites=suites, categories={k: summarize([c for c in self.cases if c.category == k]) for k in cats},
                          gates=gates or [], cases=self.cases, judge=self.judge_phase.summary if self.judge_phase else None)


def _rel(path: Path, root: Path) -> str:
    try:
        return str(path.resolve().relative_to(root))
    except ValueError:
        return str(path)
