"""The A/A guarantee, with the shipped gate: noise alone does not block, a real regression does not slip through.

Synthetic suites stand in for "the same model, responses re-drawn": each case
has its own pass probability (most cases nearly always pass or nearly always
fail, as with real models: Beta(0.5, 0.5)), and candidate and baseline draw
their outcomes independently from it. The gate is the one in
gates/test_go_no_go.py, called on the same results view gates get.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np

from helpers import make_run
from mergegate.results import InsufficientEvidence, Results

ROOT = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("shipped_gates", ROOT / "gates" / "test_go_no_go.py")
GATES = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(GATES)


def _outcome(gate, suite) -> str:
    try:
        gate(suite)
    except InsufficientEvidence:
        return "insufficient"
    except AssertionError:
        return "failed"
    return "passed"


def _trial(seed: int, n: int, planted: float) -> str:
    rng = np.random.default_rng(seed)
    p = rng.beta(0.5, 0.5, n)
    base = rng.random(n) < p
    cand = rng.random(n) < p
    if planted:  # a real regression: the candidate now fails `planted` of all cases it would have passed
        passing = np.flatnonzero(cand)
        cand[rng.choice(passing, size=int(round(planted * n)), replace=False)] = False
    run = make_run(n_cases=n, suites=("general",), candidate_passed=lambda i: bool(cand[i]), baseline_passed=lambda i: bool(base[i]))
    return _outcome(GATES.test_general_suite_does_not_regress, Results(run).suite("general"))


def test_aa_noise_alone_does_not_block_the_default_gate():
    outcomes = [_trial(seed, 300, 0.0) for seed in range(400)]
    blocked = outcomes.count("failed")
    print(f"A/A, 300 cases: {outcomes.count('passed')} passed, {outcomes.count('insufficient')} insufficient, {blocked} failed of 400")
    assert blocked / len(outcomes) <= 0.05


def test_a_planted_ten_point_regression_is_flagged():
    outcomes = [_trial(1000 + seed, 300, 0.10) for seed in range(400)]
    flagged = len(outcomes) - outcomes.count("passed")
    print(f"planted -10 pt, 300 cases: {outcomes.count('failed')} failed, {outcomes.count('insufficient')} insufficient, "
          f"{outcomes.count('passed')} passed of 400")
    assert flagged / len(outcomes) >= 0.80
