"""The decision rules' error rates, measured through the real path: case results → the shipped gates → the verdict.

    .venv/bin/python bench/sim_decisions.py [--runs 1000] [--jobs 2]

Data model (issue 12): each case's baseline pass probability is drawn from
Beta(2, 2) (a hard case is hard for both models), the candidate's is the same
shifted by the true delta (clipped to [0, 1]), and outcomes are drawn
independently given those probabilities.

Each run builds the cases, summarises them exactly as a run does
(``results.summarize``, intervals and all), wraps them in the ``Results`` view
gates get, calls every gate of ``gates/test_go_no_go.py`` the way the pytest
plugin does (once per suite for ``target_suite`` / ``general_suite`` /
``any_suite``; a skip is a skip, ``InsufficientEvidence`` is insufficient, an
``AssertionError`` a failure), and hands the outcomes to
``mergegate.verdict.decide`` with the default policy. The verdict is what a
``mergegate run`` would have exited with.
"""

from __future__ import annotations

import argparse
import importlib.util
import inspect
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

import numpy as np

from mergegate.config import StatsOptions
from mergegate.results import (
    CaseResult,
    CheckResult,
    Finding,
    GateResult,
    Generation,
    InsufficientEvidence,
    Results,
    RunMeta,
    RunResults,
    SampleMeta,
    SideResult,
    SuiteSummary,
    summarize,
)
from mergegate.results.aggregate import population as population_of
from mergegate.stats import stratified_sample
from mergegate.verdict import Evidence, Policy, decide

ROOT = Path(__file__).resolve().parents[1]


def shipped_gates() -> list[Callable[..., None]]:
    """Return the gate functions of gates/test_go_no_go.py, in file order."""
    spec = importlib.util.spec_from_file_location("shipped_gates", ROOT / "gates" / "test_go_no_go.py")
    assert spec and spec.loader
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return [f for name, f in vars(mod).items() if name.startswith("test_") and callable(f)]


@dataclass
class Suite:
    """One simulated suite: its role, size, the candidate's true delta, and optional categories / clusters."""

    name: str
    role: str
    n: int
    delta: float = 0.0
    categories: int = 1
    cluster_size: int = 0  # > 0: cases come in clusters sharing a random effect (issue 12's clustered row)


@dataclass
class Scenario:
    name: str
    suites: list[Suite]
    want: str  # "GO" or "NO-GO" or "not blocked"
    threshold: float
    sample: Optional[int] = None


SCENARIOS = [
    Scenario("identical models on 8 general suites x 1000 cases, plus a 600-case target suite with a true +10 pt gain",
             [Suite(f"general{i}", "general", 1000) for i in range(8)] + [Suite("target", "target", 600, 0.10)], "GO", 0.90),
    Scenario("true -10 pt on one 500-case general suite, the other 7 identical (1000 cases each)",
             [Suite("general0", "general", 500, -0.10)] + [Suite(f"general{i}", "general", 1000) for i in range(1, 8)], "NO-GO", 0.85),
    Scenario("true -5 pt (exactly the tolerance) on one 1000-case general suite", [Suite("general0", "general", 1000, -0.05)],
             "NO-GO", 0.40),
    Scenario("target suite with zero true improvement, 300 cases", [Suite("target", "target", 300, 0.0)], "NO-GO", 0.95),
    Scenario("target suite with a true +10 pt gain, 600 cases", [Suite("target", "target", 600, 0.10)], "GO", 0.90),
    Scenario("--sample 20 of identical models on a 1000-case general suite with 20 categories",
             [Suite("general0", "general", 1000, categories=20)], "not blocked", 0.95, sample=20),
]


def _side(passed: bool) -> SideResult:
    return _SIDES[passed]  # two shared, read-only sides: building thousands per run would dominate the simulation


def _make_side(passed: bool) -> SideResult:
    score = 1.0 if passed else 0.0
    return SideResult.model_construct(generation=Generation.model_construct(text="x", latency_ms=10.0, error=None, turns=None,
                                                                            tool_calls=None),
                                      checks=[CheckResult.model_construct(type="contains", metric="contains", score=score,
                                                                          passed=passed, detail="", extra={})],
                                      passed=passed)


_SIDES = {True: _make_side(True), False: _make_side(False)}


def draw_cases(suite: Suite, rng: np.random.Generator) -> list[CaseResult]:
    """Return the suite's cases with outcomes drawn from the data model."""
    p = rng.beta(2, 2, suite.n)
    base = rng.random(suite.n) < p
    cand = rng.random(suite.n) < np.clip(p + suite.delta, 0, 1)
    cats = [f"cat{i % suite.categories}" for i in range(suite.n)]
    return [CaseResult.model_construct(suite=suite.name, id=f"c{i}", category=cats[i], blocking=False, input="q", reference=None,
                                       line=0, cluster=None, contaminated=None, candidate=_side(bool(cand[i])),
                                       baseline=_side(bool(base[i])))
            for i in range(suite.n)]


def build_run(suites: list[Suite], cases: list[CaseResult], stats: StatsOptions, sample: Optional[SampleMeta]) -> RunResults:
    """Return the results a run would assemble from ``cases`` (summaries with intervals), before its gates."""
    pop = population_of(sample)
    summaries = []
    for s in suites:
        mine = [c for c in cases if c.suite == s.name]
        g = summarize(mine, stats, pop)
        summaries.append(SuiteSummary(name=s.name, version="1", role=s.role, task="other",
                                      **g.model_dump(exclude={"pass_rate", "metrics", "latency_ms"}),
                                      pass_rate=g.pass_rate, metrics=g.metrics, latency_ms=g.latency_ms))
    meta = RunMeta(mergegate_version="sim", started_at="0", config_sha256="0" * 64, python="3", platform="sim",
                   stats=stats.model_dump(), sample=sample)
    return RunResults(verdict="INCOMPLETE", exit_code=2, meta=meta, suites=summaries, cases=cases)


def run_gates(run: RunResults, gates: list[Callable[..., None]]) -> list[GateResult]:
    """Call every gate as the plugin does; return their outcomes (with the underpowered notes the session records)."""
    import pytest

    findings: list[Finding] = []
    results = Results(run, on_finding=findings.append)
    out = []
    for gate in gates:
        param = next(iter(inspect.signature(gate).parameters))
        role = {"target_suite": "target", "general_suite": "general"}.get(param)
        targets: list[Any] = [results] if param == "results" else [
            s for s in results.suites if role is None or s.role == role]
        for target in targets:
            findings.clear()
            name = f"{gate.__name__}[{getattr(target, 'name', 'results')}]"
            try:
                gate(target)
                outcome, msg = "passed", ""
            except pytest.skip.Exception as exc:
                outcome, msg = "skipped", str(exc)
            except InsufficientEvidence as exc:
                outcome, msg = "insufficient", str(exc)
            except AssertionError as exc:
                outcome, msg = "failed", str(exc)
            weak = "; ".join(f.reason for f in findings if f.underpowered) or None
            out.append(GateResult(name=name, outcome=outcome, message=msg[:200], underpowered=weak))
    return out


def one_run(scenario: Scenario, seed: int, gates: Optional[list[Callable[..., None]]] = None) -> str:
    """Return the verdict of one simulated run of ``scenario``."""
    rng = np.random.default_rng(seed)
    stats = StatsOptions()
    cases: list[CaseResult] = []
    population: dict[str, dict[str, int]] = {}
    for s in scenario.suites:
        drawn = draw_cases(s, rng)
        for c in drawn:
            population.setdefault(c.suite, {}).setdefault(c.category, 0)
            population[c.suite][c.category] += 1
        cases += drawn
    sample = None
    if scenario.sample:
        keep = set(stratified_sample([(c.suite, c.category) for c in cases], scenario.sample, seed))
        cases = [c for i, c in enumerate(cases) if i in keep]
        sample = SampleMeta(size=len(cases), seed=seed, population=population)
    run = build_run(scenario.suites, cases, stats, sample)
    gate_results = run_gates(run, gates or shipped_gates())
    return decide(Evidence(cases=cases, gates=gate_results), Policy()).outcome


def _batch(args: tuple[int, int, int]) -> list[str]:
    index, start, count = args
    gates = shipped_gates()
    return [one_run(SCENARIOS[index], seed, gates) for seed in range(start, start + count)]


def rate(scenario_index: int, runs: int, jobs: int = 1, offset: int = 0) -> tuple[float, dict[str, int]]:
    """Return the share of runs meeting the scenario's requirement, and the verdict counts."""
    chunks = [(scenario_index, offset + i, min(250, runs - i)) for i in range(0, runs, 250)]
    if jobs > 1:
        with ProcessPoolExecutor(jobs) as pool:
            verdicts = [v for part in pool.map(_batch, chunks) for v in part]
    else:
        verdicts = [v for c in chunks for v in _batch(c)]
    counts = {v: verdicts.count(v) for v in sorted(set(verdicts))}
    want = SCENARIOS[scenario_index].want
    ok = sum(v != "NO-GO" if want == "not blocked" else v == want for v in verdicts)
    return ok / len(verdicts), counts


def cluster_coverage(runs: int, clusters: int = 50, size: int = 6, delta: float = 0.05, seed: int = 0) -> float:
    """Return how often the pass-rate interval of a clustered suite (with ``cluster:``) covers the true delta.

    Each cluster (one source document) shifts every case's pass probability on
    the logit scale by a shared effect, for both models; the candidate adds
    ``delta`` to every probability (clipped).
    """
    from scipy.special import expit

    rng = np.random.default_rng(seed)
    big = expit(np.repeat(rng.normal(0, 1.0, 200_000), 1) + rng.normal(0, 0.5, 200_000))
    truth = float(np.mean(np.clip(big + delta, 0, 1) - big))  # the population delta the interval estimates
    covered = 0
    stats = StatsOptions()
    for _ in range(runs):
        u = np.repeat(rng.normal(0, 1.0, clusters), size)
        p = expit(u + rng.normal(0, 0.5, clusters * size))
        base = rng.random(clusters * size) < p
        cand = rng.random(clusters * size) < np.clip(p + delta, 0, 1)
        cases = [CaseResult.model_construct(suite="s", id=f"c{i}", category="x", blocking=False, input="q", reference=None, line=0,
                                            cluster=f"doc{i // size}", contaminated=None, candidate=_side(bool(cand[i])),
                                            baseline=_side(bool(base[i])))
                 for i in range(clusters * size)]
        pr = summarize(cases, stats).pass_rate.paired
        assert pr is not None
        covered += pr.ci_low <= truth <= pr.ci_high
    return covered / runs


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=1000)
    ap.add_argument("--jobs", type=int, default=2)
    args = ap.parse_args()
    print(f"| scenario | required | measured ({args.runs} runs) | verdicts |")
    print("|---|---|---:|---|")
    for i, sc in enumerate(SCENARIOS):
        t = time.perf_counter()
        share, counts = rate(i, args.runs, args.jobs)
        need = f"{sc.want} >= {sc.threshold:.0%}"
        mark = "meets" if share >= sc.threshold else "MISSES"
        print(f"| {sc.name} | {need} | {share:.1%} ({mark}) | {counts} |  <!-- {time.perf_counter() - t:.0f} s -->", flush=True)
    cov = cluster_coverage(args.runs)
    print(f"| clustered suite, 50 clusters of 6 cases, a shared random effect per cluster, with `cluster:` | interval coverage 93-97% "
          f"| {cov:.1%} ({'meets' if 0.93 <= cov <= 0.97 else 'MISSES'}) | |")


if __name__ == "__main__":
    main()
