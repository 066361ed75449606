"""Paired comparisons of candidate and baseline on the same cases: delta, 95% interval, p-value, detectable effect.

Methods (after Miller, "Adding Error Bars to Evals", 2024):

- pass/fail: the mean of the paired differences d_i = candidate_i - baseline_i
  with the Agresti-Min interval for matched proportions (Wald after adding 1/2
  to each cell of the 2x2 table: it never collapses to zero width and behaves
  at 0 and 1); p-value from the exact McNemar test on the discordant pairs
  (statsmodels).
- continuous scores (ROUGE, judge scores): a seeded paired bootstrap of the mean
  difference (percentile interval, >= 2,000 resamples); p-value from the paired
  t-test (scipy).
- clustered cases (``cluster:`` in the suite, e.g. several questions about one
  document): cluster-robust standard error of the mean difference, t interval
  with (clusters - 1) degrees of freedom; the bootstrap resamples whole clusters.
- a category-stratified sample of the suite (``--sample``): the stratified
  estimator, each category weighted by its share of the whole suite, with the
  stratified standard error sum(W_h^2 s_h^2 / n_h); the interval targets the
  same quantity as a full run.
- win rates: the Wilson interval, which behaves at 0 and 1.
- minimum detectable effect at 80% power and the cases needed to detect a
  threshold: statsmodels' one-sample t-test power on the paired differences.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Optional

import numpy as np

__all__ = ["PairedStats", "paired_delta", "wilson", "mde", "cases_needed", "holm"]


@dataclass(frozen=True)
class PairedStats:
    """A paired comparison: ``estimate`` = mean(candidate - baseline) with its interval."""

    n: int
    estimate: float
    ci_low: float
    ci_high: float
    p_value: Optional[float]
    method: str
    sd_diff: float
    clusters: Optional[int] = None


def _cluster_se(d: np.ndarray, clusters: Sequence[str]) -> tuple[float, int]:
    """Return the cluster-robust standard error of mean(d) and the number of clusters."""
    keys = np.asarray(clusters)
    resid = d - d.mean()
    sums = np.array([resid[keys == k].sum() for k in np.unique(keys)])
    g = len(sums)
    # the usual small-sample factor g / (g - 1), as in statsmodels' cluster-robust covariance
    return float(math.sqrt((g / max(g - 1, 1)) * (sums**2).sum()) / len(d)), g


def paired_delta(candidate: Sequence[float], baseline: Sequence[float], *, binary: bool,
                 clusters: Optional[Sequence[str]] = None, level: float = 0.95, resamples: int = 2000, seed: int = 0,
                 strata: Optional[Sequence[str]] = None, population: Optional[dict[str, int]] = None) -> Optional[PairedStats]:
    """Return the paired comparison of two equal-length score lists, or None with fewer than two pairs.

    ``strata`` and ``population`` (cases per stratum in the whole suite) mark a
    stratified sample: the estimate and interval are then the stratified ones.
    """
    from scipy import stats as st

    c = np.asarray(candidate, float)
    b = np.asarray(baseline, float)
    n = len(c)
    if n < 2:
        return None
    d = c - b
    est = float(d.mean())
    sd = float(d.std(ddof=1))
    alpha = 1 - level
    if strata is not None and population:
        return _stratified(d, list(strata), population, alpha, sd)
    if clusters is not None and len(set(clusters)) < n:
        se, g = _cluster_se(d, clusters)
        t = st.t.ppf(1 - alpha / 2, max(g - 1, 1))
        p = float(2 * st.t.sf(abs(est) / se, max(g - 1, 1))) if se > 0 else (1.0 if est == 0 else 0.0)
        return PairedStats(n, est, float(est - t * se), float(est + t * se), p, f"cluster-robust t ({g} clusters)", sd, g)
    if binary:
        lo, hi = _agresti_min(c, b, alpha)
        return PairedStats(n, est, lo, hi, _mcnemar(c, b), "Agresti-Min interval, McNemar exact p", sd)
    rng = np.random.default_rng(seed)
    chunk = max(1, min(resamples, 2_000_000 // n))  # bounded memory for large suites
    boot = np.concatenate([d[rng.integers(0, n, size=(min(chunk, resamples - i), n))].mean(axis=1)
                           for i in range(0, resamples, chunk)])
    lo, hi = np.quantile(boot, [alpha / 2, 1 - alpha / 2])
    p = float(st.ttest_rel(c, b).pvalue) if sd > 0 else (1.0 if est == 0 else 0.0)
    return PairedStats(n, est, float(lo), float(hi), p, f"paired bootstrap ({resamples} resamples), paired t p", sd)


def _stratified(d: np.ndarray, strata: list[str], population: dict[str, int], alpha: float, sd: float) -> PairedStats:
    """Return the stratified estimate of mean(d) over the whole suite from a sample, with a normal interval."""
    from scipy import stats as st

    keys = np.asarray(strata)
    total = sum(population.values())
    est = var = 0.0
    for h, big_n in population.items():
        dh = d[keys == h]
        if len(dh) == 0:
            continue  # a stratum left out of the sample: its weight is lost (the sampler never does this)
        w = big_n / total
        est += w * dh.mean()
        var += w * w * (dh.var(ddof=1) if len(dh) > 1 else 0.0) / len(dh)
    se = math.sqrt(var)
    z = st.norm.ppf(1 - alpha / 2)
    p = float(2 * st.norm.sf(abs(est) / se)) if se > 0 else (1.0 if est == 0 else 0.0)
    return PairedStats(len(d), float(est), float(est - z * se), float(est + z * se), p, "stratified sample, normal", sd)


def _agresti_min(c: np.ndarray, b: np.ndarray, alpha: float) -> tuple[float, float]:
    """Return the Agresti-Min (2005) interval of P(candidate passes) - P(baseline passes) for matched pairs."""
    from scipy import stats as st

    c1, b1 = c >= 0.5, b >= 0.5
    n = len(c)
    up = (np.sum(c1 & ~b1) + 0.5) / (n + 2)    # candidate passed, baseline failed
    down = (np.sum(~c1 & b1) + 0.5) / (n + 2)  # the reverse
    diff = up - down
    se = math.sqrt(max((up + down) - diff**2, 0.0) / (n + 2))
    z = st.norm.ppf(1 - alpha / 2)
    return float(max(-1.0, diff - z * se)), float(min(1.0, diff + z * se))


def _mcnemar(c: np.ndarray, b: np.ndarray) -> float:
    from statsmodels.stats.contingency_tables import mcnemar

    c1, b1 = c >= 0.5, b >= 0.5
    table = [[int(np.sum(c1 & b1)), int(np.sum(c1 & ~b1))], [int(np.sum(~c1 & b1)), int(np.sum(~c1 & ~b1))]]
    return float(mcnemar(table, exact=True).pvalue)


def wilson(successes: float, n: int, level: float = 0.95) -> tuple[Optional[float], Optional[float]]:
    """Return the Wilson interval of a proportion (statsmodels); a tie may count as half a success."""
    if n <= 0:
        return None, None
    from statsmodels.stats.proportion import proportion_confint

    lo, hi = proportion_confint(successes, n, alpha=1 - level, method="wilson")
    return float(lo), float(hi)


def _sd_for_power(sd_diff: float, binary: bool, pass_rate: Optional[float]) -> float:
    if sd_diff > 0:
        return sd_diff
    # no variation observed yet: for pass/fail assume independent outcomes at the pooled rate (conservative)
    if binary and pass_rate is not None:
        return math.sqrt(2 * max(pass_rate * (1 - pass_rate), 0.05 * 0.95))
    return 0.0


def mde(sd_diff: float, n: int, *, binary: bool = True, pass_rate: Optional[float] = None, alpha: float = 0.05,
        power: float = 0.8) -> Optional[float]:
    """Return the smallest true change a two-sided paired test detects with ``power`` at ``n`` cases, or None."""
    from statsmodels.stats.power import TTestPower

    sd = _sd_for_power(sd_diff, binary, pass_rate)
    if n < 3 or sd <= 0:
        return None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            d = TTestPower().solve_power(effect_size=None, nobs=n, alpha=alpha, power=power, alternative="two-sided")
    except (ValueError, RuntimeError):  # the root finder can fail at the edges
        return None
    return float(d * sd) if math.isfinite(d) else None


def cases_needed(effect: float, sd_diff: float, *, binary: bool = True, pass_rate: Optional[float] = None, alpha: float = 0.05,
                 power: float = 0.8) -> Optional[int]:
    """Return how many paired cases a two-sided test needs to detect a change of ``effect`` with ``power``, or None."""
    from statsmodels.stats.power import TTestPower

    sd = _sd_for_power(sd_diff, binary, pass_rate)
    if effect <= 0 or sd <= 0:
        return None
    tp, es = TTestPower(), effect / sd
    # the smallest n whose power reaches the target (power grows with n): doubling, then bisection.
    # statsmodels' own solve_power gives up (NaN) when very few cases suffice.
    lo, hi = 2, 2
    while tp.power(es, hi, alpha, alternative="two-sided") < power:
        lo, hi = hi, hi * 2
        if hi > 10**8:
            return None
    while lo < hi:
        mid = (lo + hi) // 2
        lo, hi = (mid + 1, hi) if tp.power(es, mid, alpha, alternative="two-sided") < power else (lo, mid)
    return lo


def holm(p_values: Sequence[float], alpha: float = 0.05) -> list[bool]:
    """Return, per p-value, whether it is rejected under Holm's step-down correction (statsmodels)."""
    from statsmodels.stats.multitest import multipletests

    if not p_values:
        return []
    return [bool(x) for x in multipletests(list(p_values), alpha=alpha, method="holm")[0]]
