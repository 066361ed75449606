"""Results assembly: case results → per-suite and per-category summaries → one :class:`RunResults`.

Done once per run: every summary carries bootstrap intervals, so the gates and
the report read the assembled results instead of recomputing them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from ..client import GenerationStats
from ..config.loader import LoadedConfig
from ..results import (
    BenchmarkResult,
    CaseResult,
    ContaminationSummary,
    GenerationSummary,
    JudgeSummary,
    RunMeta,
    RunResults,
    SuiteMeta,
    SuiteSummary,
    summarize,
)
from ..results.aggregate import population
from ..results.models import NoiseFloor
from ..suites import LoadedSuite
from .provenance import now, relative

__all__ = ["Produced", "assemble", "degenerate_warnings"]


@dataclass
class Produced:
    """What the phases produced, before any gate ran."""

    cases: list[CaseResult]
    counted: list[CaseResult]
    stats: GenerationStats
    judge: Optional[JudgeSummary] = None
    contamination: Optional[ContaminationSummary] = None
    benchmarks: Optional[list[BenchmarkResult]] = None
    noise_floor: Optional[NoiseFloor] = None


def assemble(loaded: LoadedConfig, suites: list[LoadedSuite], meta: RunMeta, produced: Produced) -> RunResults:
    """Return the run's results with every summary computed, verdict not yet decided (INCOMPLETE until it is)."""
    st, pop = loaded.config.stats, population(meta.sample)
    counted = produced.counted
    summaries = []
    for ls in suites:
        mine = [c for c in counted if c.suite == ls.name]
        if not mine:
            continue
        group = summarize(mine, st, pop)
        cats = sorted({c.category for c in mine})
        summaries.append(SuiteSummary(name=ls.name, version=ls.suite.version, role=ls.suite.role, task=ls.suite.task,
                                      categories={k: summarize([c for c in mine if c.category == k], st, pop) for k in cats},
                                      **group.model_dump(exclude={"pass_rate", "metrics", "latency_ms"}),
                                      pass_rate=group.pass_rate, metrics=group.metrics, latency_ms=group.latency_ms))
    meta = meta.model_copy(update={
        "suites": [SuiteMeta(name=ls.name, version=ls.suite.version, file=relative(ls.path, loaded.root), sha256=ls.sha256,
                             cases=sum(1 for c in produced.cases if c.suite == ls.name)) for ls in suites],
        "finished_at": now(), "aa": produced.noise_floor})
    s = produced.stats
    cats = sorted({c.category for c in counted})
    return RunResults(verdict="INCOMPLETE", exit_code=2, meta=meta,
                      generation=GenerationSummary(requests_sent=s.requests_sent, cache_hits=s.cache_hits, errors=s.errors,
                                                   error_tolerance=loaded.config.generation.error_tolerance,
                                                   wall_s=round(s.wall_s, 3), per_role=s.per_role),
                      suites=summaries, categories={k: summarize([c for c in counted if c.category == k], st, pop) for k in cats},
                      cases=produced.cases, judge=produced.judge, contamination=produced.contamination,
                      benchmarks=produced.benchmarks or [],
                      warnings=degenerate_warnings(summaries, loaded.config.generation.degenerate_warn))


_SAID = {"empty": "empty", "truncated": "cut off at max_tokens", "echoed": "the input said back"}


def degenerate_warnings(suites: list[SuiteSummary], threshold: float) -> list[str]:
    """Return one line per model and suite whose share of degenerate answers is above ``threshold``."""
    out = []
    for s in suites:
        for role, q in s.answers.items():
            if q.share is not None and q.share > threshold:
                parts = [f"{getattr(q, k)} {what}" for k, what in _SAID.items() if getattr(q, k)]
                out.append(f"{role} answers in {s.name}: {q.degenerate} of {q.n} " + (parts[0].split(" ", 1)[1] if len(parts) == 1 else
                           f"say nothing or too little ({', '.join(parts)})"))
    return out
