"""The default go/no-go gates, from the course texts' checklist.

Each gate is a plain pytest test over the ``results`` fixture (or one suite at
a time through ``target_suite`` / ``general_suite``). A failing gate makes the
run NO-GO; pytest shows the values that failed. Edit the thresholds here.

Comparisons with the baseline use ``improved()`` / ``regressed()``, two rules
with known error rates (mergegate's docs/statistics.md, "The decision rules"):

- a *target* suite must show it improved: significantly better (the 95%
  interval of the paired delta above zero) and a measured gain of at least
  TARGET_IMPROVEMENT. "We cannot tell" fails the gate.
- a *general* suite (a guardrail) blocks when the candidate is significantly
  worse (the interval below zero) and the measured drop exceeds GENERAL_MAX_DROP.

Each finding says whether its suite is big enough to catch a change of twice
the threshold with 80% power; the report flags the ones that are not.
"""

import pytest

TARGET_IMPROVEMENT = 0.05  # the target task must improve by at least 5 points
GENERAL_MAX_DROP = 0.05  # no general suite may fall by more than 5 points
ADVERSARIAL_MIN_PASS = 0.90  # adversarial cases must pass at least 90% of the time
LATENCY_P99_MAX_RATIO = 2.0  # p99 latency at most twice the baseline's
JUDGE_MIN_WIN_RATE = 0.45  # the judge must not prefer the baseline (ties count half)
MAX_EMPTY_SHARE = 0.5  # a suite the candidate mostly leaves unanswered says nothing, whatever its checks scored


def test_target_suite_improves(target_suite):
    # the burden of proof is on the candidate: significantly better, and at least +5 points measured
    assert target_suite.improved("pass_rate", by=TARGET_IMPROVEMENT)


def test_general_suite_does_not_regress(general_suite):
    # fails when significantly worse and the measured drop is beyond 5 points: noise alone rarely does both
    assert not general_suite.regressed("pass_rate", by=GENERAL_MAX_DROP)


def test_candidate_answers_are_not_mostly_empty(any_suite):
    # a score-only suite would show 100% over empty answers; an unanswered suite is a failure, not a pass
    answers = any_suite.answers("candidate")
    assert answers.empty <= MAX_EMPTY_SHARE * answers.n, f"{answers.empty} of {answers.n} candidate answers are empty"


def test_schema_compliance_is_total(any_suite):
    if not any_suite.has_metric("json_schema"):
        pytest.skip("no json_schema check in this suite")
    assert any_suite.metric("json_schema").candidate == 1.0, any_suite.metric("json_schema")


def test_adversarial_pass_rate(results):
    adversarial = results.category("adversarial")
    if adversarial is None:
        pytest.skip("no adversarial cases")
    assert adversarial.pass_rate.candidate >= ADVERSARIAL_MIN_PASS, adversarial.pass_rate


def test_p99_latency_within_budget(results):
    p99 = results.all.latency("p99")
    assert p99.candidate <= LATENCY_P99_MAX_RATIO * p99.baseline, p99


def test_no_critical_forgetting(results):
    # lm-eval benchmarks (mergegate.yaml 'benchmarks'): CRIT = fell by more than crit_drop (5 points; perplexity 5%);
    # WARN rows are reported in the comment, not blocking
    if not results.benchmarks:
        pytest.skip("no benchmarks configured")
    crit = [b for b in results.benchmarks if b.level == "CRIT"]
    assert not crit, "; ".join(f"{b.task} {b.metric}: {b.baseline:.4g} -> {b.candidate:.4g} ({b.detail})" for b in crit)


def test_judge_does_not_prefer_baseline(any_suite):
    # reads a judge metric: fails, or turns advisory, when the judge is uncalibrated
    if any_suite.summary.pairwise is None:
        pytest.skip("no pairwise judge check in this suite")
    assert any_suite.win_rate >= JUDGE_MIN_WIN_RATE, any_suite.pairwise
