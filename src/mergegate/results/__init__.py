"""Results: the results.json schema, aggregation, and the view gates assert on."""

from .aggregate import percentile, summarize
from .history import HistoryEntry, append_history, entry_from_run, read_history
from .models import (
                     RESULTS_SCHEMA_VERSION,
                     ROLES,
                     AnswerQuality,
                     BenchmarkResult,
                     CalibrationSummary,
                     CaseResult,
                     CheckResult,
                     CiMeta,
                     Comparison,
                     ContaminatedCase,
                     ContaminationSummary,
                     GateResult,
                     Generation,
                     GenerationSummary,
                     GroupSummary,
                     JudgeSummary,
                     JudgeUsage,
                     ModelMeta,
                     PairedDelta,
                     PairwiseSummary,
                     RunMeta,
                     RunResults,
                     SampleMeta,
                     ShardMeta,
                     SideResult,
                     SuiteMeta,
                     SuiteSummary,
)
from .view import Finding, GroupView, InsufficientEvidence, NotEvaluated, Results, SuiteView, UncalibratedJudge, UnknownName

__all__ = ["percentile", "summarize", "RESULTS_SCHEMA_VERSION", "ROLES",
           "AnswerQuality", "BenchmarkResult", "CalibrationSummary", "CaseResult", "CiMeta", "ContaminatedCase", "ContaminationSummary",
           "JudgeSummary", "JudgeUsage", "PairedDelta", "PairwiseSummary", "SampleMeta", "ShardMeta",
           "CheckResult", "Comparison", "GateResult", "Generation",
           "GenerationSummary", "GroupSummary", "ModelMeta", "RunMeta", "RunResults", "SideResult", "SuiteMeta", "SuiteSummary",
           "HistoryEntry", "append_history", "entry_from_run", "read_history",
           "GroupView", "Results", "SuiteView", "UncalibratedJudge", "UnknownName", "Finding", "InsufficientEvidence", "NotEvaluated"]
