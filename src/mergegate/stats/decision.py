"""The decision rules: when a comparison counts as a regression (guardrail) or an improvement (target).

After the risk-aware rules of experimentation platforms (Schultzberg et al.,
2024): success metrics get a superiority test, guardrails a test that the
candidate is not worse by more than a tolerance, and both say what they could
detect at this sample size.

- **Guardrail** (general suites, format, safety): the gate blocks when the
  candidate is *significantly worse* (the whole two-sided 95% interval below
  zero: a one-sided 2.5% test) *and the measured drop is beyond the tolerance*.
  Noise alone almost never does both; a real drop of twice the tolerance does,
  on a suite big enough to see it.
- **Target** (the task the fine-tune is for): the candidate must show it is
  better: *significantly better* (the whole interval above zero) *and the
  measured gain at least* the minimum worth shipping. "We cannot tell" is not
  an improvement.

Power is part of each answer: ``detectable`` is the smallest true change the
rule catches with 80% power at this n (a normal approximation with the
interval's standard error), and a comparison that did not find its change is
*underpowered* when a change of twice its threshold would be missed more than
20% of the time (one that found it is conclusive whatever the n).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal, Optional

__all__ = ["Decision", "guardrail", "target", "POWER"]

POWER = 0.8
_Z_BETA = 0.8416212335729143  # the 80th percentile of the standard normal


@dataclass(frozen=True)
class Decision:
    """One rule applied to one paired comparison: what it found, why, and what it could have found."""

    rule: Literal["guardrail", "target"]
    found: bool
    """guardrail: a regression beyond the tolerance was shown; target: an improvement of at least ``by`` was shown."""
    by: float
    estimate: float
    ci_low: float
    ci_high: float
    n: int
    level: float
    p_value: Optional[float]
    """One-sided p-value of "no difference" against the direction the rule looks in (for Holm's correction)."""
    detectable: Optional[float]
    """The smallest true change (drop for a guardrail, gain for a target) this rule catches with 80% power at this n."""
    underpowered: bool
    cases_needed: Optional[int]
    """Paired cases at which a change of twice ``by`` is caught with 80% power (None when it cannot be told)."""
    reason: str


def _z(level: float) -> float:
    from scipy.special import ndtri

    return float(ndtri(1 - (1 - level) / 2))


def _power_figures(se: float, n: int, by: float, z: float) -> tuple[Optional[float], bool, Optional[int]]:
    """Return (detectable change, underpowered, cases needed) for a rule that fires beyond max(by, z*se)."""
    if se <= 0:
        return None, False, None
    if by <= 0:  # a plain significance test: what it detects, nothing to be underpowered against
        return (z + _Z_BETA) * se, False, None
    detectable = max(by, z * se) + _Z_BETA * se
    # a change of 2*by is caught with 80% power when max(by, z*se) + z_beta*se <= 2*by
    se_max = min(by / _Z_BETA, 2 * by / (z + _Z_BETA))
    needed = max(n, math.ceil(n * (se / se_max) ** 2))
    return detectable, detectable > 2 * by + 1e-12, needed


def _one_sided(p_two: Optional[float], estimate: float, worse: bool) -> Optional[float]:
    if p_two is None:
        return None
    toward = estimate < 0 if worse else estimate > 0
    return p_two / 2 if toward else 1 - p_two / 2


def _pct(x: float) -> str:
    return f"{x * 100:+.1f} pt"


def _decide(rule: Literal["guardrail", "target"], estimate: float, ci_low: float, ci_high: float, n: int, level: float,
            p_value: Optional[float], by: float, name: str) -> Decision:
    """Apply ``rule``; the two rules differ only in direction and wording."""
    z = _z(level)
    se = (ci_high - ci_low) / (2 * z)
    worse = rule == "guardrail"
    # significant in the rule's direction; a zero-width interval never decides
    significant = (ci_high < 0 if worse else ci_low > 0) and ci_high > ci_low
    beyond = estimate < -by if worse else estimate >= by
    found = significant and beyond
    detectable, underpowered, needed = _power_figures(se, n, by, z)
    # Power is the risk of *missing* a change: a rule that found its change (significant, beyond the threshold) is
    # conclusive at any n, and flagging it would turn a clear GO (or NO-GO) into "underpowered". The figures stay.
    underpowered = underpowered and not found
    ci = f"Δ {_pct(estimate)}, {level:.0%} CI {_pct(ci_low)} to {_pct(ci_high)}, n={n}"
    if worse:
        reason = (f"regressed: significantly worse and a drop beyond the {by:.0%} tolerance" if found else
                  f"a drop beyond the {by:.0%} tolerance was measured but is not significant" if beyond else
                  f"no regression beyond the {by:.0%} tolerance")
    else:
        reason = (f"improved: significantly better and a gain of at least {by:.0%}" if found else
                  f"significantly better, but the measured gain is below {by:.0%}" if significant else
                  "no improvement shown: the candidate is not significantly better")
    reason = f"{name}{reason} ({ci})"
    if underpowered:
        change = "drops" if worse else "gains"
        # The report's "Detectable effect" figure is for significance alone; this rule also needs the change beyond
        # its tolerance, so its figure is larger. Say which rule, in points, so the two read as one story.
        reason += (f"; underpowered: with its {by:.0%} tolerance this rule catches only {change} of "
                   f"{(detectable or 0) * 100:.1f} pt or more with 80% power; {needed} cases would catch {2 * by * 100:.0f} pt")
    return Decision(rule, found, by, estimate, ci_low, ci_high, n, level, _one_sided(p_value, estimate, worse=worse),
                    detectable, underpowered, needed, reason)


def guardrail(estimate: float, ci_low: float, ci_high: float, n: int, level: float, p_value: Optional[float], by: float,
              name: str = "") -> Decision:
    """Return whether the candidate regressed beyond ``by``: significantly worse and the measured drop beyond ``by``."""
    return _decide("guardrail", estimate, ci_low, ci_high, n, level, p_value, by, name)


def target(estimate: float, ci_low: float, ci_high: float, n: int, level: float, p_value: Optional[float], by: float,
           name: str = "") -> Decision:
    """Return whether the candidate improved by at least ``by``: significantly better and the measured gain at least ``by``."""
    return _decide("target", estimate, ci_low, ci_high, n, level, p_value, by, name)
