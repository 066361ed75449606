"""Statistics of a comparison: paired deltas with intervals, p-values, detectable effects, multiple-gate correction."""

from .decision import Decision, guardrail, target
from .paired import PairedStats, cases_needed, holm, mde, paired_delta, wilson
from .sample import stratified_sample

__all__ = ["Decision", "guardrail", "target", "PairedStats", "cases_needed", "holm", "mde", "paired_delta", "stratified_sample", "wilson"]
