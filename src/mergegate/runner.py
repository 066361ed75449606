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
from .checks.tools import tools_prompt
from .contamination import case_texts, find_overlaps, iter_training_texts, resolve_training_files, summary_of
from .client import GenerationStats, Job, Response, ResponseCache, generate_all
from .config.loader import LoadedConfig
from .config.models import ModelSpec
from .errors import IncompleteError, InputError
from .github.context import ci_from_env
from .judge import JudgePhase, LoadedCalibration, find_calibration_files, load_calibration, run_judge_phase
from .results import (BenchmarkResult, CaseResult, CheckResult, ContaminationSummary, Generation, GenerationSummary, GateResult, ModelMeta, RunMeta, RunResults,
                      SampleMeta, ShardMeta, SideResult, SuiteMeta, SuiteSummary, summarize)
from .results.aggregate import population
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
                       case_id=case.id, prompt=case.input_text, tool_calls=gen.tool_calls)
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
        out = run_check(spec, ctx, prepared)
        results.append(CheckResult(type=spec.type, metric=spec.metric_name, score=out.score, passed=out.passed,
                                   detail=out.detail, extra=out.extra))
    gated_results = [r.passed for r in results if r.passed is not None]
    passed = None if not gated_results else (all(gated_results) and not gen.error)
    return SideResult(generation=gen, checks=results, passed=passed)


def decide(cases: list[CaseResult], gates: list[GateResult], failures: list[str], errors: int, tolerance: int,
           insufficient_blocks: bool = False) -> tuple[str, int, list[str]]:
    """Return ``(verdict, exit_code, reasons)``.

    INCOMPLETE (2) when anything kept the evaluation from completing, never GO;
    NO-GO (1) when a gate or a blocking case failed (or a gate lacked evidence,
    with ``insufficient_blocks``); GO (0) otherwise.
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
    unsure = [g for g in gates if g.outcome == "insufficient"]
    if insufficient_blocks:
        no_go += [f"insufficient evidence (stats.insufficient_evidence: block): {g.name}" for g in unsure]
    if no_go:
        return "NO-GO", 1, no_go
    advisory = sum(g.outcome == "advisory" for g in gates)
    note = f"; {advisory} advisory gate(s) on an uncalibrated judge did not count" if advisory else ""
    reasons = [f"{sum(g.outcome == 'passed' for g in gates)} gate(s) passed, no blocking case failed{note}"]
    if unsure:
        reasons.append(f"{len(unsure)} gate(s) had insufficient evidence (the suite is too small to tell); not blocking")
    return "GO", 0, reasons


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
                 shard: Optional[ShardMeta] = None, sample: Optional[SampleMeta] = None):
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
                            command=command or sys.argv, ci=ci_from_env(), shard=shard, sample=sample,
                            stats=loaded.config.stats.model_dump())
        self.on_result: Optional[Callable[[Job, Response], None]] = None
        self.judge_phase: Optional[JudgePhase] = None
        self.contamination: Optional[ContaminationSummary] = None
        self.benchmarks: list[BenchmarkResult] = []

    def selected_cases(self) -> Iterable[tuple[LoadedSuite, Case]]:
        """Yield ``(suite, case)`` for every case this run evaluates."""
        for ls in self.suites:
            for case in ls.suite.cases:
                if self.selection is None or (ls.name, case.id) in self.selection:
                    yield ls, case

    def _jobs(self, endpoints: dict[str, Endpoint], turn: int = 1,
              responses: Optional[dict[tuple, Response]] = None) -> tuple[list[Job], dict[tuple, Response]]:
        """Return the requests for ``turn`` of every case that has it, and the responses decided without a request.

        A multi-turn case's later turns carry the same model's earlier answers;
        when one of those failed, the turn is not sent and fails too.
        """
        jobs: list[Job] = []
        failed: dict[tuple, Response] = {}
        for ls, case in self.selected_cases():
            if case.n_turns < turn:
                continue
            for role in ROLES:
                key = (role, ls.name, case.id) if turn == case.n_turns else (role, ls.name, case.id, turn)
                earlier = [(responses or {}).get((role, ls.name, case.id, k)) for k in range(1, turn)]
                broken = next(((k, r) for k, r in enumerate(earlier, 1) if r is None or r.error), None)
                if broken is not None:
                    failed[key] = Response(error=f"turn {broken[0]} failed: {broken[1].error if broken[1] else 'not generated'}")
                    continue
                ep = endpoints[role]
                spec = self.loaded.config.models[role]
                sampling: Sampling = spec.sampling
                sampling = ls.suite.defaults.sampling.merged_over(sampling)
                if case.sampling is not None:
                    sampling = case.sampling.merged_over(sampling)
                systems = [s for s in (ep.system_prompt, ls.suite.defaults.system_prompt) if s]
                offered = ls.suite.tools_of(case)
                tools = [t.model_dump() for t in offered] if offered else None
                if tools and spec.tool_format == "prompt":
                    systems.append(tools_prompt(tools))
                    tools = None
                answers = [r.text for r in earlier] if earlier else None  # type: ignore[union-attr]
                jobs.append(Job(key, ep, case.chat(systems, answers), sampling.model_dump(), tools,
                                ls.suite.tool_choice_of(case) if tools else None))
        return jobs, failed

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
        self.check_contamination()
        try:
            if endpoints is None:
                fleet = ServerFleet(self.loaded, self.log_dir)
                roles = list(cfg.serving_roles()) if self.uses_judge() else list(ROLES)
                endpoints = fleet.start(roles)
            self._record_models(endpoints)
            cache = ResponseCache(self.loaded.resolve(cfg.cache.path)) if cfg.cache.enabled else None
            try:
                # one concurrent batch per turn: turn k of a multi-turn case needs the model's answer to turn k-1
                for turn in range(1, max((c.n_turns for _, c in self.selected_cases()), default=1) + 1):
                    jobs, failed = self._jobs(endpoints, turn, responses)
                    got, stats = generate_all(jobs, cache, cfg.generation, progress=self.progress, on_result=self.on_result)
                    responses.update(got)
                    responses.update(failed)
                    self.stats = stats if turn == 1 else self.stats.merged(stats)
                if calibration is not None:
                    self._judge(endpoints, responses, cache, calibration)
                if cfg.benchmarks is not None and (self.meta.shard is None or self.meta.shard.index == 1):
                    self._benchmarks(endpoints)  # sharded runs: shard 1 runs them once
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

    def _benchmarks(self, endpoints: dict[str, Endpoint]) -> None:
        """Run the configured lm-eval tasks on both models (and references); a task that did not run makes the run INCOMPLETE."""
        from .benchmarks import Target, run_benchmarks
        from .serving import ManagedServer, free_port, resolve_model_path
        from .serving.engines import build_command, identity, ready_path, request_extras, served_model

        cfg = self.loaded.config
        opts = cfg.benchmarks
        started: dict[str, ManagedServer] = {}  # scoring and reference servers, by what they serve

        def server(key: str, name: str, cmd: list[str], ready: str) -> ManagedServer:
            if key not in started:
                started[key] = ManagedServer(name, cmd, ready.format(port=cmd[cmd.index("--port") + 1]), self.log_dir / f"{name}.log")
                started[key].start(cfg.generation.server_start_timeout_s)
            return started[key]

        def target(role: str, spec: ModelSpec, ep: Endpoint) -> Target:
            completions, tokenizer = None, "remote"
            gguf = spec.scoring_model or (spec.model if spec.engine == "llama-cpp" else None)
            if spec.engine == "vllm":
                completions, tokenizer = ep.base_url + "/completions", "huggingface"
            elif gguf:
                path = resolve_model_path(gguf, self.loaded.root)
                port = str(free_port())
                s = server("scorer:" + path, f"scorer-{role.replace(':', '-')}", [sys.executable, "-m", "mergegate.serving.logprobs",
                           "--model", path, "--alias", ep.model, "--port", port], "http://127.0.0.1:{port}/v1/models")
                completions = s.ready_url.rsplit("/", 1)[0] + "/completions"
            return Target(role, ep.model, ep.base_url + "/chat/completions", completions, tokenizer,
                          ep.identity or {"model": spec.model, "engine": spec.engine}, ep.system_prompt, dict(ep.extra_body))

        try:
            targets = {role: target(role, cfg.models[role], endpoints[role]) for role in ROLES}
            for label, spec in opts.references.items():  # type: ignore[union-attr]
                role = f"ref:{label}"
                if spec.engine == "external":
                    base = spec.base_url.rstrip("/")  # type: ignore[union-attr]
                    path = spec.model
                else:
                    path = resolve_model_path(spec.model, self.loaded.root)
                    port = free_port()
                    s = server(f"model:{spec.engine}:{path}", f"reference-{label}", build_command(spec, role, path, port),
                               "http://127.0.0.1:{port}" + ready_path(spec.engine))
                    base = s.ready_url.split("/v1")[0].split("/health")[0] + "/v1"
                ep = Endpoint(role, base, served_model(spec, role), spec.engine, "EMPTY", identity(spec, role, path), spec.system_prompt,
                              request_extras(spec.engine))
                targets[role] = target(role, spec, ep)
            cache_dir = self.loaded.resolve(cfg.cache.path).parent / "lm-eval"
            run = run_benchmarks(targets, opts, self.output_dir / "lm-eval", cache_dir, self.log_dir)  # type: ignore[arg-type]
        finally:
            for s in started.values():
                s.stop()
        self.benchmarks = run.results
        self.failures += run.failures

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

    def counted_cases(self) -> list[CaseResult]:
        """Return the cases that count toward metrics, gates and blocking (contaminated ones left out when configured)."""
        if self.contamination is not None and self.contamination.on_contaminated == "exclude":
            return [c for c in self.cases if not c.contaminated]
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

        def output(role: str, suite: str, case_id: str, turn: Optional[int] = None) -> Optional[str]:
            r = responses.get((role, suite, case_id) if turn is None else (role, suite, case_id, turn))
            if r is None and turn is not None:  # the last turn is stored under the plain key
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
        contaminated = {(x.suite, x.id) for x in self.contamination.cases} if self.contamination else set()
        for ls, case in self.selected_cases():
            sides = {}
            for role in ROLES:
                resp = responses.get((role, ls.name, case.id))
                gen = Generation(**resp.__dict__) if resp is not None else Generation(error="not generated")
                if case.n_turns > 1:
                    gen.turns = [getattr(responses.get((role, ls.name, case.id, k)), "text", "") for k in range(1, case.n_turns)] + [gen.text]
                judged = self.judge_phase.judgements if self.judge_phase else {}
                mine = {i: judged[(ls.name, case.id, i, role)] for i in range(len(case.checks)) if (ls.name, case.id, i, role) in judged}
                sides[role] = score_side(case, ls, gen, mine)
            flagged = None if self.contamination is None else (ls.name, case.id) in contaminated
            cases.append(CaseResult(suite=ls.name, id=case.id, category=case.category, blocking=case.blocking, cluster=case.cluster,
                                    contaminated=flagged,
                                    input=case.input_text, reference=case.reference, line=ls.case_lines.get(case.id, 0), **sides))
        return cases

    def finish(self, gates: list[GateResult], failures: Iterable[str] = ()) -> RunResults:
        """Return the complete :class:`RunResults` with the verdict decided."""
        all_failures = self.failures + list(failures)
        tolerance = self.loaded.config.generation.error_tolerance
        verdict, code, reasons = decide(self.counted_cases(), gates, all_failures, self.stats.errors, tolerance,
                                        self.loaded.config.stats.insufficient_evidence == "block")
        bad = self.contamination.cases if self.contamination is not None else []
        if bad and verdict != "INCOMPLETE":
            if self.contamination.on_contaminated == "fail":  # type: ignore[union-attr]
                reasons = reasons if verdict == "NO-GO" else []  # a GO's reasons ("n gates passed") no longer hold
                verdict, code = "NO-GO", 1
                reasons.append(f"{len(bad)} eval case(s) found in the candidate's training data (contamination.on_contaminated: fail)")
            elif self.contamination.on_contaminated == "exclude":  # type: ignore[union-attr]
                reasons.append(f"{len(bad)} contaminated case(s) left out of metrics and gates")
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
        ev.benchmarks = next((r.benchmarks for _, r in runs if r.benchmarks), [])
        checked = [r.contamination for _, r in runs if r.contamination is not None]
        if checked:  # each shard checked its own cases against the same training data
            merged = checked[0].model_copy(deep=True)
            merged.cases = [c for x in checked for c in x.cases]
            merged.per_suite = {}
            for x in checked:
                for s, (a, b) in x.per_suite.items():
                    merged.per_suite[s] = [merged.per_suite.get(s, [0, 0])[0] + a, merged.per_suite.get(s, [0, 0])[1] + b]
            ev.contamination = merged
        judged = [r.judge for _, r in runs if r.judge is not None]
        if judged:  # every shard re-judged the calibration set (same items, same judge): keep one, add up the cost
            summary = judged[0].model_copy(deep=True)
            for field_name in ("calls", "cache_hits", "prompt_tokens", "completion_tokens", "estimated_cost_usd", "errors", "escalated"):
                setattr(summary.usage, field_name, sum(getattr(j.usage, field_name) for j in judged))
            ev.judge_phase = JudgePhase(summary=summary)
        ev.meta.models = first.meta.models
        ev.meta.sample = first.meta.sample  # every shard drew the same sample (same seed, same cases)
        ev.meta.git_commit, ev.meta.git_dirty = first.meta.git_commit, first.meta.git_dirty
        ev.meta.started_at = min(r.meta.started_at for _, r in runs)
        ev.meta.merged_from = [str(f) for f, _ in runs]
        return ev

    def partial_results(self, verdict: str = "INCOMPLETE", exit_code: int = 2, reasons: Optional[list[str]] = None,
                        gates: Optional[list[GateResult]] = None) -> RunResults:
        """Return the results so far (gates read these while the verdict is still open)."""
        suites = []
        st, pop = self.loaded.config.stats, population(self.meta.sample)
        counted = self.counted_cases()
        for ls in self.suites:
            mine = [c for c in counted if c.suite == ls.name]
            if not mine:
                continue
            group = summarize(mine, st, pop)
            cats = sorted({c.category for c in mine})
            suites.append(SuiteSummary(name=ls.name, version=ls.suite.version, role=ls.suite.role, task=ls.suite.task,
                                       categories={k: summarize([c for c in mine if c.category == k], st, pop) for k in cats},
                                       **group.model_dump(exclude={"pass_rate", "metrics", "latency_ms"}),
                                       pass_rate=group.pass_rate, metrics=group.metrics, latency_ms=group.latency_ms))
        self.meta.suites = [SuiteMeta(name=ls.name, version=ls.suite.version, file=_rel(ls.path, self.loaded.root), sha256=ls.sha256,
                                      cases=sum(1 for c in self.cases if c.suite == ls.name)) for ls in self.suites]
        self.meta.finished_at = _now()
        cats = sorted({c.category for c in counted})
        return RunResults(verdict=verdict, exit_code=exit_code, reasons=reasons or [], meta=self.meta,
                          generation=GenerationSummary(requests_sent=self.stats.requests_sent, cache_hits=self.stats.cache_hits,
                                                       errors=self.stats.errors, error_tolerance=self.loaded.config.generation.error_tolerance,
                                                       wall_s=round(self.stats.wall_s, 3), per_role=self.stats.per_role),
                          suites=suites, categories={k: summarize([c for c in counted if c.category == k], st, pop) for k in cats},
                          gates=gates or [], cases=self.cases, judge=self.judge_phase.summary if self.judge_phase else None,
                          contamination=self.contamination, benchmarks=self.benchmarks)


def _rel(path: Path, root: Path) -> str:
    try:
        return str(path.resolve().relative_to(root))
    except ValueError:
        return str(path)
