"""Paired comparisons of candidate and baseline on the same cases: delta, 95% interval, p-value, detectable effect.

Methods (after Miller, "Adding Error Bars to Evals", 2024):

- pass/fail: the mean of the paired differences d_i = candidate_i - baseline_i
  with the Agresti-Min interval for matched proportions (Wald after adding 1/2
  to each cell of the 2x2 table: it never collapses to zero width and behaves
  at 0 and 1); the p-value is the Wald test of the same estimate and standard
  error, so it agrees with the interval.
- continuous scores (ROUGE, judge scores): a seeded paired bootstrap of the mean
  difference (percentile interval, >= 2,000 resamples) from 50 cases, the paired
  t interval below (the percentile bootstrap is too narrow there); p-value from
  the paired t-test.
- clustered cases (``cluster:`` in the suite, e.g. several questions about one
  document): cluster-robust standard error of the mean difference with the CR2
  small-sample correction, t interval with (clusters - 1) degrees of freedom;
  fewer than two clusters give no interval.
- a category-stratified sample of the suite (``--sample``): the stratified
  estimator, each category weighted by its share of the whole suite, with the
  stratified standard error sum(W_h^2 s_h^2 / n_h) (a stratum with one sampled
  case borrows the pooled variance), t with n - 1 df; the interval targets the
  same quantity as a full run.
- win rates: the Wilson interval, which behaves at 0 and 1.
- minimum detectable effect at 80% power and the cases needed to detect a
  threshold: the one-sample t-test's power on the paired differences (the
  noncentral t, as statsmodels' TTestPower computes it).
"""

from __future__ import annotations

import math
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


def _t_quantile(q: float, df: float) -> float:
    # scipy.special rather than scipy.stats: the same values, and ~1 s less to import
    from scipy.special import stdtrit

    return float(stdtrit(df, q))


def _t_two_sided_p(t: float, df: float) -> float:
    from scipy.special import stdtr

    return float(2 * stdtr(df, -abs(t)))


def _z(q: float) -> float:
    from scipy.special import ndtri

    return float(ndtri(q))


def _norm_sf(x: float) -> float:
    from scipy.special import ndtr

    return float(ndtr(-x))


def _cluster_se(d: np.ndarray, clusters: Sequence[str]) -> tuple[float, int]:
    """Return the cluster-robust (CR2) standard error of mean(d) and the number of clusters.

    CR2 (Bell & McCaffrey 2002) scales each cluster's residual sum by
    (1 - n_g / n)^(-1/2), the inverse square root of one minus the cluster's
    leverage in the intercept-only model: unlike CR1's g / (g - 1) it stays
    close to unbiased with few or unequal clusters.
    """
    keys = np.asarray(clusters)
    resid = d - d.mean()
    n = len(d)
    total = 0.0
    uniq = np.unique(keys)
    for k in uniq:
        mask = keys == k
        n_g = int(mask.sum())
        if n_g < n:
            total += float(resid[mask].sum()) ** 2 / (1 - n_g / n)
    return math.sqrt(total) / n, len(uniq)


SMALL_N = 50  # below it the percentile bootstrap is too narrow (coverage 0.91 at n = 20): the t interval instead


def paired_delta(candidate: Sequence[float], baseline: Sequence[float], *, binary: bool,
                 clusters: Optional[Sequence[str]] = None, level: float = 0.95, resamples: int = 2000, seed: int = 0,
                 strata: Optional[Sequence[str]] = None, population: Optional[dict[str, int]] = None) -> Optional[PairedStats]:
    """Return the paired comparison of two equal-length score lists, or None when no honest interval exists.

    None with fewer than two pairs, or with clustered cases in fewer than two
    clusters. ``strata`` and ``population`` (cases per stratum in the whole
    suite) mark a stratified sample: the estimate and interval are then the
    stratified ones.
    """
    c = np.asarray(candidate, float)
    b = np.asarray(baseline, float)
    n = len(c)
    if n < 2:
        return None
    d = c - b
    sd = float(d.std(ddof=1))
    alpha = 1 - level
    if strata is not None and population:
        return _stratified(d, list(strata), population, alpha, sd, binary)
    if clusters is not None and len(set(clusters)) < n:
        return _clustered(d, clusters, alpha, sd, binary)
    if binary:
        lo, hi, p = _agresti_min(c, b, alpha)
        return PairedStats(n, float(d.mean()), lo, hi, p, "Agresti-Min interval and its Wald p", sd)
    if n < SMALL_N:
        return _t_interval(d, alpha, sd)
    return _bootstrap(d, alpha, sd, resamples, seed)


def _t_interval(d: np.ndarray, alpha: float, sd: float) -> PairedStats:
    n, est = len(d), float(d.mean())
    se = sd / math.sqrt(n)
    t = _t_quantile(1 - alpha / 2, n - 1)
    p = _t_two_sided_p(est / se, n - 1) if se > 0 else (1.0 if est == 0 else 0.0)
    return PairedStats(n, est, est - t * se, est + t * se, p, f"paired t interval (n < {SMALL_N})", sd)


def _bootstrap(d: np.ndarray, alpha: float, sd: float, resamples: int, seed: int) -> PairedStats:
    n, est = len(d), float(d.mean())
    rng = np.random.default_rng(seed)
    chunk = max(1, min(resamples, 2_000_000 // n))  # bounded memory for large suites
    boot = np.concatenate([d[rng.integers(0, n, size=(min(chunk, resamples - i), n))].mean(axis=1)
                           for i in range(0, resamples, chunk)])
    lo, hi = np.quantile(boot, [alpha / 2, 1 - alpha / 2])
    se = sd / math.sqrt(n)
    p = _t_two_sided_p(est / se, n - 1) if se > 0 else (1.0 if est == 0 else 0.0)
    return PairedStats(n, est, float(lo), float(hi), p, f"paired bootstrap ({resamples} resamples), paired t p", sd)


def _clustered(d: np.ndarray, clusters: Sequence[str], alpha: float, sd: float, binary: bool) -> Optional[PairedStats]:
    se, g = _cluster_se(d, clusters)
    if g < 2:
        return None  # one cluster: its cases say nothing about the variation between clusters
    est = float(d.mean())
    t = _t_quantile(1 - alpha / 2, g - 1)
    p = _t_two_sided_p(est / se, g - 1) if se > 0 else (1.0 if est == 0 else 0.0)
    lo, hi = est - t * se, est + t * se
    if binary:  # a difference of pass rates lies in [-1, 1]
        lo, hi = max(lo, -1.0), min(hi, 1.0)
    return PairedStats(len(d), est, lo, hi, p, f"cluster-robust CR2 t ({g} clusters)", sd, g)


def _stratified(d: np.ndarray, strata: list[str], population: dict[str, int], alpha: float, sd: float, binary: bool) -> PairedStats:
    """Return the stratified estimate of mean(d) over the whole suite from a sample, with a normal interval.

    A stratum with a single sampled case has no variance of its own: it borrows
    the pooled within-sample variance, so a thin stratum never claims zero
    uncertainty (with one case per category, identical models were blocked 37%
    of the time). A zero standard error never stands: it falls back to the
    conservative variance of independent pass/fail outcomes.
    """
    keys = np.asarray(strata)
    total = sum(population.values())
    pooled = float(d.var(ddof=1)) if len(d) > 1 else 0.0
    est = var = 0.0
    for h, big_n in population.items():
        dh = d[keys == h]
        if len(dh) == 0:
            continue  # a stratum left out of the sample: its weight is lost (the sampler never does this)
        w = big_n / total
        est += w * dh.mean()
        var += w * w * (dh.var(ddof=1) if len(dh) > 1 else pooled) / len(dh)
    if var <= 0 and binary:
        var = _sd_for_power(0.0, True, 0.5) ** 2 / len(d)
    se = math.sqrt(var)
    df = max(len(d) - 1, 1)  # t rather than normal: a sample is small by design (normal blocked 4.3% of A/A runs at 20 cases)
    t = _t_quantile(1 - alpha / 2, df)
    p = _t_two_sided_p(est / se, df) if se > 0 else (1.0 if est == 0 else 0.0)
    lo, hi = float(est - t * se), float(est + t * se)
    if binary:
        lo, hi = max(lo, -1.0), min(hi, 1.0)
    return PairedStats(len(d), float(est), lo, hi, p, "stratified sample, t", sd)


def _agresti_min(c: np.ndarray, b: np.ndarray, alpha: float) -> tuple[float, float, float]:
    """Return the Agresti-Min (2005) interval of P(candidate passes) - P(baseline passes) for matched pairs, and its p-value.

    The p-value is the Wald test of the same estimate and standard error, so it
    is below ``alpha`` exactly when the interval excludes zero (the exact
    McNemar test disagreed with the interval on small tables).
    """
    c1, b1 = c >= 0.5, b >= 0.5
    n = len(c)
    up = (np.sum(c1 & ~b1) + 0.5) / (n + 2)    # candidate passed, baseline failed
    down = (np.sum(~c1 & b1) + 0.5) / (n + 2)  # the reverse
    diff = float(up - down)
    se = math.sqrt(max((up + down) - diff**2, 0.0) / (n + 2))
    z = _z(1 - alpha / 2)
    p = 2 * _norm_sf(abs(diff) / se) if se > 0 else 1.0
    return max(-1.0, diff - z * se), min(1.0, diff + z * se), p


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


def _t_power(effect_size: float, n: int, alpha: float) -> float:
    """Return the power of the two-sided one-sample t-test at ``n`` for a standardised effect (the noncentral t, as statsmodels)."""
    from scipy.special import nctdtr

    df, nc = n - 1, effect_size * math.sqrt(n)
    crit = _t_quantile(1 - alpha / 2, df)
    return float(1 - nctdtr(df, nc, crit) + nctdtr(df, nc, -crit))


def mde(sd_diff: float, n: int, *, binary: bool = True, pass_rate: Optional[float] = None, alpha: float = 0.05,
        power: float = 0.8) -> Optional[float]:
    """Return the smallest true change a two-sided paired test detects with ``power`` at ``n`` cases, or None."""
    sd = _sd_for_power(sd_diff, binary, pass_rate)
    if n < 3 or sd <= 0:
        return None
    # bisection on the standardised effect: power grows with it; 60 halvings reach double precision
    lo, hi = 0.0, 1.0
    while _t_power(hi, n, alpha) < power:
        hi *= 2
        if hi > 1e6:
            return None
    for _ in range(60):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if _t_power(mid, n, alpha) < power else (lo, mid)
    return hi * sd


def cases_needed(effect: float, sd_diff: float, *, binary: bool = True, pass_rate: Optional[float] = None, alpha: float = 0.05,
                 power: float = 0.8) -> Optional[int]:
    """Return how many paired cases a two-sided test needs to detect a change of ``effect`` with ``power``, or None."""
    sd = _sd_for_power(sd_diff, binary, pass_rate)
    if effect <= 0 or sd <= 0:
        return None
    es = effect / sd
    # the smallest n whose power reaches the target (power grows with n): doubling, then bisection
    lo, hi = 2, 2
    while _t_power(es, hi, alpha) < power:
        lo, hi = hi, hi * 2
        if hi > 10**8:
            return None
    while lo < hi:
        mid = (lo + hi) // 2
        lo, hi = (mid + 1, hi) if _t_power(es, mid, alpha) < power else (lo, mid)
    return lo


def holm(p_values: Sequence[float], alpha: float = 0.05) -> list[bool]:
    """Return, per p-value, whether it is rejected under Holm's step-down correction (statsmodels)."""
    from statsmodels.stats.multitest import multipletests

    if not p_values:
        return []
    return [bool(x) for x in multipletests(list(p_values), alpha=alpha, method="holm")[0]]
