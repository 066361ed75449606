"""Statistics of a comparison: paired deltas with intervals, p-values, detectable effects, multiple-gate correction."""

from .paired import PairedStats, cases_needed, holm, mde, paired_delta, wilson
from .sample import stratified_sample

__all__ = ["PairedStats", "cases_needed", "holm", "mde", "paired_delta", "stratified_sample", "wilson"]
