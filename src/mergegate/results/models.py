"""The results schema (``results.json``), version 1: the one source of truth.

``schema/results.schema.json`` is generated from :class:`RunResults`; a test
keeps it in step with this module.
"""

from __future__ import annotations

from typing import Any, Final, Literal, Optional

from pydantic import Field, computed_field

from .base import _Model
from .phases import BenchmarkResult, CalibrationSummary, ContaminatedCase, ContaminationSummary, JudgeSummary, JudgeUsage

__all__ = ["RESULTS_SCHEMA_VERSION", "ROLES", "CheckResult", "Generation", "SideResult", "CaseResult", "Comparison",
           "GroupSummary", "SuiteSummary", "GateResult", "ModelMeta", "SuiteMeta", "RunMeta", "GenerationSummary", "RunResults",
           "VerdictName", "CiMeta", "ShardMeta", "AnswerQuality",
           "NoiseFloor", "Role", "GateOutcome", "ContaminatedCase", "ContaminationSummary", "BenchmarkResult",
           "PairwiseSummary", "CalibrationSummary", "JudgeUsage", "JudgeSummary", "PairedDelta", "SampleMeta"]

RESULTS_SCHEMA_VERSION: Final = 1
# The two sides of every comparison, in the order reports show them.
Role = Literal["candidate", "baseline"]
ROLES: tuple[Role, Role] = ("candidate", "baseline")
# PENDING: the results of one shard (``--shard i/n``); ``mergegate merge`` decides the verdict.
VerdictName = Literal["GO", "NO-GO", "INCOMPLETE", "PENDING"]


class CheckResult(_Model):
    """One check on one output."""

    type: str
    metric: str
    score: Optional[float] = Field(description="In [0, 1]; None when the check could not run.")
    passed: Optional[bool] = Field(description="None for a score-only check (no threshold).")
    detail: str = ""
    extra: dict[str, Any] = Field(default_factory=dict)


class Generation(_Model):
    """One model response as received (or served from the cache)."""

    text: str = ""
    finish_reason: Optional[str] = None
    prompt_tokens: Optional[int] = None
    completion_tokens: Optional[int] = None
    latency_ms: Optional[float] = Field(default=None, description="Measured when the response was generated (also for cache hits).")
    tool_calls: Optional[list[dict[str, Any]]] = Field(default=None,
                                                       description="Tool calls the API returned: name and arguments (JSON text).")
    turns: Optional[list[str]] = Field(default=None,
                                       description="Multi-turn cases: the answer to every turn in order (the last is 'text').")
    cached: bool = False
    attempts: int = 0
    error: Optional[str] = None


class SideResult(_Model):
    """One model's result on one case."""

    generation: Generation
    checks: list[CheckResult] = Field(default_factory=list)
    passed: Optional[bool] = Field(description="All thresholded checks passed and no error; None if the case has no thresholded check.")


class CaseResult(_Model):
    """One case, both models."""

    suite: str
    id: str
    category: str
    blocking: bool
    input: str
    reference: Optional[str] = None
    line: int = 0
    cluster: Optional[str] = Field(default=None, description="Cases sharing a cluster (e.g. one source document) are not independent.")
    contaminated: Optional[bool] = Field(default=None,
                                         description="Shares an n-gram with the candidate's training_data; None: not checked.")
    candidate: SideResult
    baseline: SideResult

    @computed_field  # type: ignore[prop-decorator]
    @property
    def regressed(self) -> bool:
        """True when the baseline passed and the candidate did not."""
        return self.baseline.passed is True and self.candidate.passed is False

    @computed_field  # type: ignore[prop-decorator]
    @property
    def improved(self) -> bool:
        """True when the candidate passed and the baseline did not."""
        return self.candidate.passed is True and self.baseline.passed is False

    @property
    def nodeid_name(self) -> str:
        return f"{self.suite}::{self.id}"


class PairedDelta(_Model):
    """candidate − baseline over the cases both were scored on, with its interval (see mergegate.stats)."""

    metric: str = ""
    n: int = Field(description="Paired cases.")
    estimate: float = Field(description="Mean of the paired differences.")
    ci_low: float
    ci_high: float
    level: float = 0.95
    p_value: Optional[float] = Field(default=None, description="Two-sided, against no difference.")
    method: str
    clusters: Optional[int] = None
    mde: Optional[float] = Field(default=None,
                                 description="Smallest true change detectable with 80% power at this n (two-sided, alpha 0.05).")
    min_effect: Optional[float] = Field(default=None, description="The change that matters (config stats.min_effect).")
    cases_needed: Optional[int] = Field(default=None, description="Paired cases needed to detect min_effect with 80% power.")


class Comparison(_Model):
    """One metric for both models; ``delta`` = candidate − baseline."""

    name: str
    candidate: Optional[float] = None
    baseline: Optional[float] = None
    n: int = 0
    paired: Optional[PairedDelta] = Field(default=None, description="The paired comparison with its interval (None below two pairs).")

    @property
    def ci_low(self) -> Optional[float]:
        """Return the lower end of the paired interval of the delta."""
        return self.paired.ci_low if self.paired else None

    @property
    def ci_high(self) -> Optional[float]:
        """Return the upper end of the paired interval of the delta."""
        return self.paired.ci_high if self.paired else None

    def __repr__(self) -> str:
        return str(self)

    def __str__(self) -> str:
        p = self.paired
        if p is None:
            return f"{self.name}: candidate {self.candidate}, baseline {self.baseline}, n={self.n} (no paired interval)"
        return (f"{self.name}: Δ {p.estimate:+.3f} [{p.level:.0%} CI {p.ci_low:+.3f}, {p.ci_high:+.3f}], n={p.n}"
                + (f", p={p.p_value:.3g}" if p.p_value is not None else "")
                + (f", detects changes of {p.mde:.3f} or more with 80% power (significance alone)" if p.mde and p.mde < 1
                   else ", too few cases to detect any change" if p.mde else ""))

    @computed_field  # type: ignore[prop-decorator]
    @property
    def delta(self) -> Optional[float]:
        if self.candidate is None or self.baseline is None:
            return None
        return self.candidate - self.baseline


class PairwiseSummary(_Model):
    """Candidate vs baseline as judged pairwise, both orders per case (a win needs both orders to agree)."""

    n: int = Field(description="Cases judged in both orders.")
    wins: int = 0
    losses: int = 0
    ties: int = Field(default=0, description="Including every case where the two orders disagreed.")
    win_rate: Optional[float] = Field(default=None, description="(wins + ties / 2) / n.")
    ci_low: Optional[float] = Field(default=None, description="95% Wilson interval of the win rate.")
    ci_high: Optional[float] = None
    consistency_rate: Optional[float] = Field(default=None, description="Share of cases where both orders gave the same verdict.")
    lc_win_rate: Optional[float] = Field(default=None, description="Length-controlled win rate (see docs/judge.md).")
    mean_chars_candidate: Optional[float] = None
    mean_chars_baseline: Optional[float] = None
    escalated: int = Field(default=0, description="Cases the cascade sent to the strong judge.")


class CodeTestsSummary(_Model):
    """Programs run against tests (``code_tests`` checks): pass@1 and how the failures ended, per model."""

    n: int = Field(description="code_tests results of the candidate.")
    pass_rate: dict[str, Optional[float]] = Field(description="pass@1 per role.")
    failures: dict[str, dict[str, int]] = Field(description="Per role: failures by kind (syntax_error, timeout, no output, ...).")
    isolation: list[str] = Field(default_factory=list,
                                 description="Sandbox backends the programs ran under: bwrap, namespaces or limits (see docs/suites.md).")


class AnswerQuality(_Model):
    """One model's answers in a group that carry no real answer: empty, cut off, or the prompt said back."""

    n: int = Field(description="Answers (failed requests excluded).")
    empty: int = Field(default=0, description="Only whitespace and no tool call.")
    truncated: int = Field(default=0, description="Cut off at max_tokens (finish_reason 'length').")
    echoed: int = Field(default=0, description="The case's input repeated back (whitespace and case ignored).")
    degenerate: int = Field(default=0, description="Answers that are at least one of the above.")

    @computed_field  # type: ignore[prop-decorator]
    @property
    def share(self) -> Optional[float]:
        """degenerate / n (None without answers)."""
        return self.degenerate / self.n if self.n else None


class GroupSummary(_Model):
    """Aggregates over a set of cases (a suite, a category, or all cases of a category)."""

    n: int
    pass_rate: Comparison
    metrics: dict[str, Comparison] = Field(default_factory=dict,
                                           description="Mean score per metric; classification adds macro_f1 and extraction_failure_rate.")
    latency_ms: dict[str, Comparison] = Field(default_factory=dict, description="p50, p95, p99 and mean.")
    errors: dict[str, int] = Field(default_factory=dict, description="Failed requests per role.")
    truncated: dict[str, int] = Field(default_factory=dict, description="Answers cut off at max_tokens (finish_reason 'length') per role.")
    answers: dict[str, AnswerQuality] = Field(default_factory=dict, description="Per role: empty, truncated and echoed answers.")
    regressions: int = 0
    improvements: int = 0
    pairwise: Optional[PairwiseSummary] = Field(default=None, description="Present when cases have a pairwise check.")
    rubric: dict[str, Comparison] = Field(default_factory=dict, description="Mean judge score per rubric criterion, on its scale.")
    code: Optional[CodeTestsSummary] = Field(default=None, description="Present when cases have a code_tests check.")


class SuiteSummary(GroupSummary):
    """A suite's aggregates, with its categories."""

    name: str
    version: str
    role: str
    task: str
    categories: dict[str, GroupSummary] = Field(default_factory=dict)


GateOutcome = Literal["passed", "failed", "error", "skipped", "advisory", "insufficient"]


class GateResult(_Model):
    """One gate (a pytest test over the results)."""

    name: str
    outcome: GateOutcome = Field(
        description="advisory: the gate read metrics of an uncalibrated judge configured as advisory; it does not block. "
                    "insufficient: no interval at all (blocks only with stats.insufficient_evidence: block).")
    message: str = ""
    underpowered: Optional[str] = Field(default=None, description="Set when a comparison of this gate cannot catch a change of "
                                        "twice its threshold with 80% power: why, and the cases needed.")


class ModelMeta(_Model):
    """What was served for one role."""

    engine: str
    engine_version: str
    model: str
    revision: Optional[str]
    served_name: str
    system_prompt: Optional[str]
    adapter: Optional[str]
    sampling: dict[str, Any]
    base_url: Optional[str] = None


class SuiteMeta(_Model):
    """Which suite file was evaluated."""

    name: str
    version: str
    file: str
    sha256: str
    cases: int


class CiMeta(_Model):
    """The GitHub Actions run that produced the results (absent outside CI)."""

    provider: str = "github-actions"
    repository: Optional[str] = None
    event: Optional[str] = None
    ref: Optional[str] = None
    sha: Optional[str] = Field(default=None, description="GITHUB_SHA: for pull_request events, the test merge commit.")
    pr_number: Optional[int] = None
    head_sha: Optional[str] = Field(default=None, description="The pull request's head commit: the commit evaluated.")
    base_ref: Optional[str] = None
    run_id: Optional[str] = None
    run_attempt: Optional[str] = None
    run_url: Optional[str] = None


class SampleMeta(_Model):
    """A seeded, category-stratified sample of the selected cases (``--sample N``)."""

    size: int
    seed: int
    population: dict[str, dict[str, int]] = Field(description="Selected cases per suite and category before sampling.")


class NoiseFloor(_Model):
    """An A/A run (``mergegate run --aa``): the baseline against itself. What differs is the engine's own nondeterminism."""

    cases: int
    differing: int = Field(description="Cases whose two answers differ (text or tool calls).")
    share: float = Field(description="differing / cases: the noise floor of answers on this engine and config.")
    passed_differently: int = Field(description="Cases that pass on one side only.")


class ShardMeta(_Model):
    """Which slice of the cases a run evaluated (``--shard index/total``, 1-based)."""

    index: int = Field(ge=1)
    total: int = Field(ge=1)


class RunMeta(_Model):
    """Reproducibility: everything needed to know what was evaluated, how."""

    mergegate_version: str
    started_at: str
    finished_at: str = ""
    git_commit: Optional[str] = None
    git_dirty: Optional[bool] = None
    config_file: Optional[str] = None
    config_sha256: str
    models: dict[str, ModelMeta] = Field(default_factory=dict)
    suites: list[SuiteMeta] = Field(default_factory=list)
    packages: dict[str, str] = Field(default_factory=dict)
    python: str
    platform: str
    command: list[str] = Field(default_factory=list)
    ci: Optional[CiMeta] = None
    shard: Optional[ShardMeta] = Field(default=None, description="Set on a shard's results; None on full and merged runs.")
    merged_from: list[str] = Field(default_factory=list, description="The shard results files a merged run was made from.")
    sample: Optional[SampleMeta] = Field(default=None, description="Set when the run evaluated a --sample of the cases.")
    partial: list[str] = Field(default_factory=list, description="What this run left out on purpose (--limit, --no-judge, "
                               "--no-benchmarks); a partial run is never GO.")
    aa: Optional[NoiseFloor] = Field(default=None, description="Set on an A/A run (--aa): the baseline evaluated against itself.")
    stats: dict[str, Any] = Field(default_factory=dict, description="The config's stats options the intervals were computed with.")
    timings: dict[str, float] = Field(default_factory=dict, description="Wall seconds per phase: serve, generate, judge, benchmarks, "
                                      "score, assemble (summaries and intervals), gates (the pytest session after the evaluation).")


class GenerationSummary(_Model):
    """The generation phase's counts."""

    requests_sent: int = 0
    cache_hits: int = 0
    errors: int = 0
    error_tolerance: int = 0
    wall_s: float = 0.0
    per_role: dict[str, dict[str, int]] = Field(default_factory=dict)


class RunResults(_Model):
    """Everything a run produced: ``results.json``."""

    schema_version: Literal[1] = RESULTS_SCHEMA_VERSION
    verdict: VerdictName
    exit_code: int
    reasons: list[str] = Field(default_factory=list, description="Why the verdict is what it is.")
    warnings: list[str] = Field(default_factory=list, description="What a reader must know before trusting the numbers "
                                "(degenerate answers, a partial run); shown under the verdict.")
    meta: RunMeta
    generation: GenerationSummary = Field(default_factory=GenerationSummary)
    suites: list[SuiteSummary] = Field(default_factory=list)
    categories: dict[str, GroupSummary] = Field(default_factory=dict, description="Per category across all suites.")
    gates: list[GateResult] = Field(default_factory=list)
    judge: Optional[JudgeSummary] = Field(default=None, description="Present when the config has a judge.")
    contamination: Optional[ContaminationSummary] = Field(default=None, description="Present when the candidate lists training_data.")
    benchmarks: list[BenchmarkResult] = Field(default_factory=list, description="lm-eval benchmarks (mergegate.yaml 'benchmarks').")
    cases: list[CaseResult] = Field(default_factory=list)
