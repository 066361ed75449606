"""Results: the results.json schema, aggregation, and the view gates assert on."""

from .aggregate import percentile, summarize
from .models import (RESULTS_SCHEMA_VERSION, CaseResult, CheckResult, Comparison, GateResult, Generation, GenerationSummary,
                     GroupSummary, ModelMeta, RunMeta, RunResults, SideResult, SuiteMeta, SuiteSummary)
from .view import GroupView, Results, SuiteView, UnknownName

__all__ = ["percentile", "summarize", "RESULTS_SCHEMA_VERSION", "CaseResult", "CheckResult", "Comparison", "GateResult", "Generation",
           "GenerationSummary", "GroupSummary", "ModelMeta", "RunMeta", "RunResults", "SideResult", "SuiteMeta", "SuiteSummary",
           "GroupView", "Results", "SuiteView", "UnknownName"]
