"""The decision rules' error rates, through the real path (cases → the shipped gates → the verdict).

Uses bench/sim_decisions.py (the script behind docs/statistics.md's table, run there
with 1,000 runs per row) with fewer runs and a margin for the simulation's own
sampling error: each bound below sits at least four standard errors away from
the rate the rule actually has, so the test fails when a rule changes, not by
chance.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("sim_decisions", ROOT / "bench" / "sim_decisions.py")
assert _spec and _spec.loader
SIM = importlib.util.module_from_spec(_spec)
sys.modules["sim_decisions"] = SIM  # the process pool pickles its functions by module name
_spec.loader.exec_module(SIM)
Suite, Scenario = SIM.Suite, SIM.Scenario


def _rate(scenario: Scenario, runs: int, seed: int) -> float:
    gates = SIM.shipped_gates()
    verdicts = [SIM.one_run(scenario, seed + i, gates) for i in range(runs)]
    if scenario.want == "not blocked":
        return sum(v != "NO-GO" for v in verdicts) / runs
    return verdicts.count(scenario.want) / runs


def test_noise_alone_rarely_blocks_a_guardrail():
    # identical models, 1000 cases: the rule blocks with probability ~0.6% (one-sided 2.5% and a drop beyond 5 points)
    assert _rate(Scenario("A/A", [Suite("g", "general", 1000)], "not blocked", 0), 200, 0) >= 0.96


def test_a_ten_point_regression_on_500_cases_is_blocked():
    # the old rule (the interval entirely below -5 points) let 65% of these through as "insufficient evidence"
    assert _rate(Scenario("-10", [Suite("g", "general", 500, -0.10)], "NO-GO", 0), 200, 1000) >= 0.85


def test_a_target_without_a_real_gain_is_not_a_go():
    # the old rule passed a zero-gain target 65% of the time at n=300; now the candidate must show it is better
    assert _rate(Scenario("0", [Suite("t", "target", 300, 0.0)], "NO-GO", 0), 200, 2000) >= 0.92


def test_a_real_ten_point_gain_on_600_cases_is_a_go():
    assert _rate(Scenario("+10", [Suite("t", "target", 600, 0.10)], "GO", 0), 200, 3000) >= 0.88


def test_a_sample_with_one_case_per_category_does_not_block_identical_models():
    # thin strata borrow the pooled variance: a zero standard error blocked 37% of these runs before
    sc = Scenario("sample", [Suite("g", "general", 1000, categories=20)], "not blocked", 0, sample=20)
    assert _rate(sc, 200, 4000) >= 0.93
