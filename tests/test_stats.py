"""Paired intervals, tests and detectable effects: coverage by simulation, and values against scipy / statsmodels."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats as st

from mergegate.stats import cases_needed, holm, mde, paired_delta, stratified_sample, wilson


def _binary_pairs(rng, n, p_base, delta, rho_flip=0.7):
    """Return paired pass/fail outcomes with P(candidate) - P(baseline) = delta exactly, positively correlated."""
    base = rng.random(n) < p_base
    # the candidate keeps the baseline's outcome with probability rho_flip, else draws afresh at a shifted rate
    p_fresh = p_base + delta / (1 - rho_flip)
    keep = rng.random(n) < rho_flip
    cand = np.where(keep, base, rng.random(n) < p_fresh)
    return cand.astype(float), base.astype(float)


def test_pass_fail_intervals_cover_the_true_delta_95_percent_of_the_time():
    rng = np.random.default_rng(2024)
    hits = 0
    for _ in range(1000):
        c, b = _binary_pairs(rng, 200, 0.6, -0.06)
        r = paired_delta(c, b, binary=True)
        hits += r.ci_low <= -0.06 <= r.ci_high
    assert 0.93 <= hits / 1000 <= 0.97, hits


def test_continuous_bootstrap_intervals_cover_the_true_delta_95_percent_of_the_time():
    rng = np.random.default_rng(7)
    hits = 0
    for rep in range(1000):
        item = rng.beta(2, 3, 120)                 # how hard each case is
        b = np.clip(item + rng.normal(0, 0.1, 120), 0, 1)
        c = np.clip(item + 0.03 + rng.normal(0, 0.1, 120), 0, 1)
        true = 0.03  # clipping moves it slightly; measure it on a huge draw instead
        r = paired_delta(c, b, binary=False, seed=rep)
        hits += r.ci_low <= _TRUE_CONTINUOUS <= r.ci_high
    assert 0.93 <= hits / 1000 <= 0.97, hits
    assert abs(_TRUE_CONTINUOUS - true) < 0.005


def _true_continuous() -> float:
    rng = np.random.default_rng(99)
    item = rng.beta(2, 3, 2_000_000)
    return float(np.mean(np.clip(item + 0.03 + rng.normal(0, 0.1, item.size), 0, 1) - np.clip(item + rng.normal(0, 0.1, item.size), 0, 1)))


_TRUE_CONTINUOUS = _true_continuous()


def test_clustered_intervals_cover_where_naive_ones_do_not():
    rng = np.random.default_rng(11)
    clustered = naive = 0
    clusters = [str(i // 6) for i in range(240)]  # 40 documents, 6 questions each
    for _ in range(1000):
        doc = np.repeat(rng.normal(0, 0.15, 40), 6)  # a document effect shared by the candidate's answers on it
        b = rng.normal(0.5, 0.1, 240)
        c = b + 0.02 + doc + rng.normal(0, 0.05, 240)
        r = paired_delta(c, b, binary=False, clusters=clusters)
        clustered += r.ci_low <= 0.02 <= r.ci_high
        r0 = paired_delta(c, b, binary=False, seed=1)
        naive += r0.ci_low <= 0.02 <= r0.ci_high
    assert 0.93 <= clustered / 1000 <= 0.97, clustered
    assert naive / 1000 < 0.85  # ignoring the clusters would claim far too much precision


def test_the_pass_fail_p_value_agrees_with_its_interval_on_every_small_table():
    # the exact McNemar p contradicted the Agresti-Min interval on 88 small tables: now p < 0.05 exactly when 0 is outside
    disagree = 0
    for n12 in range(0, 16):
        for n21 in range(0, 16):
            c = np.array([1] * n12 + [0] * n21 + [1] * 5, float)
            b = np.array([0] * n12 + [1] * n21 + [1] * 5, float)
            r = paired_delta(c, b, binary=True)
            disagree += (r.p_value < 0.05) != (r.ci_high < 0 or r.ci_low > 0)
    assert disagree == 0


def test_agresti_min_interval_matches_the_published_formula():
    # Agresti & Min (2005): add 1/2 to each cell, then the Wald interval for matched proportions
    c = np.array([1] * 30 + [0] * 12 + [1] * 40 + [0] * 18, float)
    b = np.array([0] * 30 + [1] * 12 + [1] * 40 + [0] * 18, float)
    n, n12, n21 = 100, 30, 12
    p12, p21 = (n12 + 0.5) / (n + 2), (n21 + 0.5) / (n + 2)
    d = p12 - p21
    se = math.sqrt(((p12 + p21) - d * d) / (n + 2))
    r = paired_delta(c, b, binary=True)
    assert (r.ci_low, r.ci_high) == pytest.approx((d - 1.959964 * se, d + 1.959964 * se), abs=1e-6)
    # no discordant pair at all still gives an honest, non-degenerate interval
    same = paired_delta([1, 0, 1, 1], [1, 0, 1, 1], binary=True)
    assert same.ci_low < 0 < same.ci_high


def test_continuous_p_value_is_scipys_paired_t_test():
    rng = np.random.default_rng(3)
    c, b = rng.random(50), rng.random(50)
    assert paired_delta(c, b, binary=False).p_value == pytest.approx(st.ttest_rel(c, b).pvalue)


def test_cluster_robust_se_is_cr2_by_the_matrix_formula():
    # Bell & McCaffrey's CR2 for the intercept-only model, written out with matrices (scipy's sqrtm)
    from scipy.linalg import sqrtm

    rng = np.random.default_rng(5)
    d_c, d_b = rng.normal(0.1, 1, 60), rng.normal(0, 1, 60)
    groups = np.repeat(np.arange(12), [3, 4, 5, 6, 7, 5, 5, 5, 5, 5, 5, 5])
    d = d_c - d_b
    x = np.ones((60, 1))
    bread = np.linalg.inv(x.T @ x)
    e = d - d.mean()
    meat = np.zeros((1, 1))
    for g in np.unique(groups):
        idx = groups == g
        xg = x[idx]
        a = np.real(sqrtm(np.linalg.inv(np.eye(idx.sum()) - xg @ bread @ xg.T)))
        u = xg.T @ a @ e[idx]
        meat += np.outer(u, u)
    se = math.sqrt((bread @ meat @ bread)[0, 0])
    t = st.t.ppf(0.975, 11)
    r = paired_delta(d_c, d_b, binary=False, clusters=[str(g) for g in groups])
    assert (r.ci_low, r.ci_high) == pytest.approx((d.mean() - t * se, d.mean() + t * se))
    assert r.method.startswith("cluster-robust CR2")


def test_one_cluster_gives_no_interval_and_pass_fail_intervals_stay_within_one():
    assert paired_delta([1, 0, 1], [0, 0, 0], binary=True, clusters=["a", "a", "a"]) is None
    r = paired_delta([1, 1, 1, 1, 0, 1], [0, 0, 0, 0, 0, 0], binary=True, clusters=["a", "a", "b", "b", "c", "c"])
    assert r.ci_low >= -1 and r.ci_high <= 1


def test_small_continuous_suites_get_the_t_interval_with_95_percent_coverage():
    # the percentile bootstrap covered 91.4% at n=20
    rng = np.random.default_rng(11)
    big = rng.random(2_000_000)
    truth = float(np.mean(np.clip(big + rng.normal(0.03, 0.2, big.size), 0, 1) - big))  # clipping moves it off 0.03
    covered = 0
    for _ in range(1000):
        b = rng.random(20)
        c = np.clip(b + rng.normal(0.03, 0.2, 20), 0, 1)
        r = paired_delta(c, b, binary=False)
        covered += r.ci_low <= truth <= r.ci_high
    assert r.method.startswith("paired t interval")
    assert 0.93 <= covered / 1000 <= 0.97, covered


def test_a_stratum_with_one_sampled_case_never_claims_zero_variance():
    d = np.array([0.0, 1.0, 0.0, -1.0, 0.0])  # five strata, one case each
    r = paired_delta(d, np.zeros(5), binary=True, strata=list("abcde"), population={k: 50 for k in "abcde"})
    assert r.ci_high - r.ci_low > 0.5
    same = paired_delta(np.zeros(5), np.zeros(5), binary=True, strata=list("abcde"), population={k: 50 for k in "abcde"})
    assert same.ci_low < 0 < same.ci_high  # identical answers everywhere: still an honest, non-zero width


def test_wilson_interval_matches_the_formula_and_behaves_at_the_edges():
    n, k, z = 20, 14, st.norm.ppf(0.975)
    phat = k / n
    centre = (phat + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(phat * (1 - phat) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    assert wilson(k, n) == pytest.approx((centre - half, centre + half))
    lo, hi = wilson(0, 10)
    assert lo == pytest.approx(0, abs=1e-12) and 0 < hi < 0.35
    lo, hi = wilson(10, 10)
    assert 0.65 < lo < 1 and hi == pytest.approx(1)


def test_detectable_effect_has_80_percent_power_by_scipys_noncentral_t():
    sd, n = 0.45, 300
    effect = mde(sd, n)
    df, tcrit = n - 1, st.t.ppf(0.975, n - 1)
    nc = effect / sd * math.sqrt(n)
    power = st.nct.sf(tcrit, df, nc) + st.nct.cdf(-tcrit, df, nc)
    assert power == pytest.approx(0.8, abs=1e-3)
    need = cases_needed(0.05, sd)
    assert mde(sd, need) <= 0.05 < mde(sd, need - 1)


def test_holm_matches_the_step_down_rule():
    p = [0.01, 0.04, 0.03, 0.005]
    # sorted: 0.005 (x4 = 0.02), 0.01 (x3 = 0.03), 0.03 (x2 = 0.06 > 0.05: stop)
    assert holm(p) == [True, False, False, True]


def test_stratified_sample_is_seeded_proportional_and_covers_every_stratum():
    strata = ["a"] * 60 + ["b"] * 30 + ["c"] * 10
    s1, s2 = stratified_sample(strata, 20, seed=4), stratified_sample(strata, 20, seed=4)
    assert s1 == s2 and len(s1) == 20 and s1 != stratified_sample(strata, 20, seed=5)
    counts = {k: sum(strata[i] == k for i in s1) for k in "abc"}
    assert counts == {"a": 12, "b": 6, "c": 2}
    assert {strata[i] for i in stratified_sample(strata, 3, seed=0)} == {"a", "b", "c"}


def test_stratified_estimate_weights_strata_by_their_share_of_the_suite():
    d_a, d_b = np.array([1.0, 0.0, 1.0, 1.0]), np.array([0.0, -1.0])
    c = np.concatenate([d_a, d_b])
    r = paired_delta(c, np.zeros(6), binary=False, strata=["a"] * 4 + ["b"] * 2, population={"a": 10, "b": 30})
    assert r.estimate == pytest.approx(0.25 * d_a.mean() + 0.75 * d_b.mean())
    se = math.sqrt(0.25**2 * d_a.var(ddof=1) / 4 + 0.75**2 * d_b.var(ddof=1) / 2)
    assert r.ci_high - r.ci_low == pytest.approx(2 * st.t.ppf(0.975, 5) * se, rel=1e-5)


def test_the_guardrail_blocks_only_a_significant_drop_beyond_the_tolerance():
    from mergegate.stats import guardrail

    assert guardrail(-0.08, -0.13, -0.03, 500, 0.95, 0.001, 0.05).found  # significant and beyond 5 points
    assert not guardrail(-0.04, -0.07, -0.01, 2000, 0.95, 0.01, 0.05).found  # significant, within the tolerance
    noisy = guardrail(-0.08, -0.20, 0.04, 60, 0.95, 0.2, 0.05)  # beyond the tolerance, not significant
    assert not noisy.found and "not significant" in noisy.reason and noisy.underpowered
    assert not guardrail(-0.5, -0.5, -0.5, 10, 0.95, 0.0, 0.05).found  # a zero-width interval never decides


def test_the_target_needs_a_significant_gain_of_at_least_the_minimum():
    from mergegate.stats import target

    assert target(0.08, 0.03, 0.13, 600, 0.95, 0.002, 0.05).found
    assert not target(0.08, -0.02, 0.18, 100, 0.95, 0.12, 0.05).found  # we cannot tell: not a GO
    assert not target(0.03, 0.01, 0.05, 5000, 0.95, 0.004, 0.05).found  # real but below the minimum
    assert not target(0.05, 0.0, 0.10, 600, 0.95, 0.05, 0.05).found  # a lower bound equal to zero is not above it
    assert not target(0.3, 0.3, 0.3, 5, 0.95, 0.0, 0.0).found  # zero width: improved() used to say True at p = 0.32


def test_a_change_found_is_never_underpowered_one_not_found_can_be():
    from mergegate.stats import guardrail, target

    # n=36, a +42 pt gain with a wide interval: found, so conclusive, though the suite could miss a 10 pt gain
    gain = target(0.417, 0.247, 0.586, 36, 0.95, 1e-5, 0.05)
    assert gain.found and not gain.underpowered and gain.detectable > 0.10 and gain.cases_needed > 36
    drop = guardrail(-0.275, -0.43, -0.12, 40, 0.95, 1e-4, 0.05)
    assert drop.found and not drop.underpowered
    nothing = guardrail(-0.02, -0.17, 0.13, 40, 0.95, 0.8, 0.05)
    assert not nothing.found and nothing.underpowered  # "no regression" from 40 cases could be a missed one


def test_power_figures_are_consistent_with_the_cases_needed():
    from mergegate.stats import guardrail

    sd = 0.63  # Beta(2, 2) pass probabilities, independent outcomes: sd of the paired difference
    for n in (50, 200, 1000):
        se = sd / math.sqrt(n)
        d = guardrail(0.0, -1.96 * se, 1.96 * se, n, 0.95, 1.0, 0.05)
        assert d.underpowered == (d.detectable > 0.10)
        se_needed = sd / math.sqrt(d.cases_needed)
        big = guardrail(0.0, -1.96 * se_needed, 1.96 * se_needed, d.cases_needed, 0.95, 1.0, 0.05)
        assert not big.underpowered and big.detectable <= 0.10 + 1e-9
    # the rule's power at a true drop of 2 x tolerance, by simulation, matches the claim at the cases needed
    rng = np.random.default_rng(0)
    se100 = sd / 10
    n = guardrail(0.0, -1.96 * se100, 1.96 * se100, 100, 0.95, 1.0, 0.05).cases_needed
    hits = 0
    for _ in range(400):
        dd = rng.normal(-0.10, sd, n)
        est, se = dd.mean(), dd.std(ddof=1) / math.sqrt(n)
        hits += guardrail(est, est - 1.96 * se, est + 1.96 * se, n, 0.95, None, 0.05).found
    assert hits / 400 >= 0.76  # 80% power, minus the simulation's own error


def test_pass_fail_intervals_cover_95_percent_at_20_cases_too():
    # the data model: Beta(2, 2) pass probabilities, the candidate's shifted by +10 points (clipped)
    rng = np.random.default_rng(1)
    big = rng.beta(2, 2, 1_000_000)
    truth = float(np.mean(np.clip(big + 0.1, 0, 1) - big))
    hits = 0
    for _ in range(1000):
        p = rng.beta(2, 2, 20)
        b, c = (rng.random(20) < p).astype(float), (rng.random(20) < np.clip(p + 0.1, 0, 1)).astype(float)
        r = paired_delta(c, b, binary=True)
        hits += r.ci_low <= truth <= r.ci_high
    assert 0.93 <= hits / 1000 <= 0.97, hits
