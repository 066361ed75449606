"""What the phases besides generation add to ``results.json``: the judge, contamination, lm-eval benchmarks."""

from __future__ import annotations

from typing import Literal, Optional

from pydantic import Field, computed_field

from .base import _Model

__all__ = ["CalibrationSummary", "JudgeUsage", "JudgeSummary", "ContaminatedCase", "ContaminationSummary", "BenchmarkResult"]


class CalibrationSummary(_Model):
    """How well the judge agreed with human verdicts on the calibration set, this run."""

    files: list[str] = Field(default_factory=list)
    n: int = Field(default=0, description="Items with a human majority and a judge verdict.")
    raters: int = 0
    agreement: Optional[float] = Field(default=None, description="Share of items where the judge's verdict equals the human majority.")
    cohen_kappa: Optional[float] = Field(default=None, description="Judge vs human majority (scikit-learn).")
    fleiss_kappa: Optional[float] = Field(default=None,
                                          description="Humans and judge as raters, with three or more human raters (statsmodels).")
    human_fleiss_kappa: Optional[float] = Field(default=None, description="Among the human raters alone.")
    min_agreement: float = 0.8
    calibrated: bool = False
    on_uncalibrated: str = "fail"
    reason: str = ""
    disagreements: list[str] = Field(default_factory=list, description="Item ids where the judge differs from the human majority.")


class JudgeUsage(_Model):
    """What the judge cost."""

    calls: int = Field(default=0, description="Requests sent to judges (cache hits excluded).")
    cache_hits: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    estimated_cost_usd: float = 0.0
    errors: int = Field(default=0, description="Verdicts that stayed unusable after the retries.")
    error_tolerance: int = 0
    escalated: int = Field(default=0, description="Verdicts the cascade asked of the strong judge.")


class JudgeSummary(_Model):
    """The judge of this run: model, template version, usage, calibration."""

    model: str
    strong_model: Optional[str] = None
    prompt_version: str
    usage: JudgeUsage = Field(default_factory=JudgeUsage)
    calibration: Optional[CalibrationSummary] = None


class ContaminatedCase(_Model):
    """One eval case found in the training data."""

    suite: str
    id: str
    matched_ngrams: int = Field(description="Distinct n-grams (smallest n) of the case found in the training data.")
    ngrams: int = Field(description="Distinct n-grams (smallest n) of the case; 1 for a short text matched whole.")
    first_match: Optional[str] = Field(default=None, description="file:line of the first training record that matched.")


class ContaminationSummary(_Model):
    """The contamination check of this run: the candidate's training_data against every case."""

    n: list[int]
    files: list[str]
    records: int = Field(description="Training records read.")
    seconds: float
    on_contaminated: Literal["report", "exclude", "fail"]
    per_suite: dict[str, list[int]] = Field(default_factory=dict, description="suite -> [contaminated cases, cases checked].")
    cases: list[ContaminatedCase] = Field(default_factory=list)


class BenchmarkResult(_Model):
    """One lm-eval metric for both models, with lm-eval's standard errors and a forgetting level."""

    task: str
    metric: str = Field(description="lm-eval metric,filter, e.g. 'acc,none'.")
    kind: Literal["loglikelihood", "generation"] = Field(description="How it was computed: prompt log-probabilities or generated text.")
    higher_is_better: bool
    candidate: Optional[float] = None
    baseline: Optional[float] = None
    candidate_stderr: Optional[float] = None
    baseline_stderr: Optional[float] = None
    n: Optional[int] = Field(default=None, description="Documents evaluated.")
    references: dict[str, Optional[float]] = Field(default_factory=dict, description="benchmarks.references: label -> score.")
    ci_low: Optional[float] = Field(default=None, description="95% interval of the delta from the two stderrs (independent samples; "
                                    "lm-eval reports no per-document pairing).")
    ci_high: Optional[float] = None
    level: Literal["OK", "WARN", "CRIT", "ERROR"] = Field(description="Forgetting level: WARN/CRIT when the score fell by more than "
                                                           "benchmarks.warn_drop/crit_drop (perplexity and bits per byte: relative "
                                                           "rise of the cross-entropy); CRIT also needs the interval, when there "
                                                           "is one, below zero; ERROR: not computed.")
    detail: str = ""

    @computed_field  # type: ignore[prop-decorator]
    @property
    def delta(self) -> Optional[float]:
        """Candidate minus baseline."""
        return None if self.candidate is None or self.baseline is None else self.candidate - self.baseline
