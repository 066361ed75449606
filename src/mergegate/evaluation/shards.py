"""Shards: which slice of the cases a run evaluates, and merging the slices back into one run."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

from ..errors import InputError
from ..results import BenchmarkResult, CaseResult, ContaminationSummary, JudgeSummary, RunMeta, RunResults, ShardMeta
from ..suites import Case, LoadedSuite

__all__ = ["parse_shard", "shard_of", "load_shards", "merge_shards", "MergedShards"]


def parse_shard(text: str) -> ShardMeta:
    """Return the shard ``"i/n"`` (1-based) as :class:`ShardMeta`; raise InputError if malformed."""
    try:
        index, total = (int(p) for p in text.split("/"))
    except ValueError:
        raise InputError(f"--shard wants INDEX/TOTAL such as 1/4, got {text!r}") from None
    if not 1 <= index <= total:
        raise InputError(f"--shard {text}: INDEX must be between 1 and TOTAL")
    return ShardMeta(index=index, total=total)


def shard_of(position: int, total: int) -> int:
    """Return the 1-based shard of the case at ``position`` (0-based) in collection order.

    Round robin over the collection order (sorted suite files, cases in file order):
    deterministic on every machine, and the shards differ in size by at most one case.
    """
    return position % total + 1


def load_shards(files: list[Path]) -> tuple[list[tuple[Path, RunResults]], int, dict[int, Path]]:
    """Return ``(runs, total, index -> file)`` for shard results files that belong together.

    Raises :class:`InputError` naming the file when one is unreadable, is not a
    shard, repeats a shard, or ran another config or commit than the first.
    """
    runs: list[tuple[Path, RunResults]] = []
    for f in files:
        try:
            runs.append((f, RunResults.model_validate_json(Path(f).read_bytes())))
        except OSError as exc:
            raise InputError(f"cannot read shard results: {exc.strerror}", f) from None
        except ValueError as exc:
            raise InputError(f"not a mergegate results file: {str(exc).splitlines()[0]}", f) from None
    if not runs:
        raise InputError("no shard results to merge")
    first_file, first = runs[0]
    if first.meta.shard is None:
        raise InputError("not a shard's results (made without --shard)", first_file)
    total = first.meta.shard.total
    seen: dict[int, Path] = {}
    for f, r in runs:
        if r.meta.shard is None or r.meta.shard.total != total:
            got = f"{r.meta.shard.index}/{r.meta.shard.total}" if r.meta.shard else "no --shard"
            raise InputError(f"every file must come from the same `mergegate run --shard i/{total}`; this one is {got}", f)
        if r.meta.shard.index in seen:
            raise InputError(f"shard {r.meta.shard.index}/{total} given twice (also in {seen[r.meta.shard.index]})", f)
        seen[r.meta.shard.index] = f
        for what, a, b in (("config", first.meta.config_sha256, r.meta.config_sha256),
                           ("commit", first.meta.git_commit, r.meta.git_commit)):
            if a != b:
                raise InputError(f"this shard evaluated a different {what} than {first_file} ({b} vs {a})", f)
    return runs, total, seen


@dataclass
class MergedShards:
    """The shards' results combined: what an unsharded run would have produced before its gates ran."""

    cases: list[CaseResult]
    failures: list[str]
    requests_sent: int = 0
    cache_hits: int = 0
    errors: int = 0
    wall_s: float = 0.0
    per_role: dict[str, dict[str, int]] = field(default_factory=dict)
    benchmarks: list[BenchmarkResult] = field(default_factory=list)
    contamination: Optional[ContaminationSummary] = None
    judge: Optional[JudgeSummary] = None
    meta: Optional[RunMeta] = None
    """The first shard's meta (models, sample, commit) with the earliest start and the files merged."""


def _merge_contamination(checked: list[ContaminationSummary]) -> Optional[ContaminationSummary]:
    if not checked:
        return None
    merged = checked[0].model_copy(deep=True)  # each shard checked its own cases against the same training data
    merged.cases = [c for x in checked for c in x.cases]
    merged.per_suite = {}
    for x in checked:
        for s, (a, b) in x.per_suite.items():
            bad, total = merged.per_suite.get(s, [0, 0])
            merged.per_suite[s] = [bad + a, total + b]
    return merged


def _merge_judge(judged: list[JudgeSummary]) -> Optional[JudgeSummary]:
    if not judged:
        return None
    summary = judged[0].model_copy(deep=True)  # every shard re-judged the calibration set (same items, same judge): keep one
    for name in ("calls", "cache_hits", "prompt_tokens", "completion_tokens", "estimated_cost_usd", "errors", "escalated"):
        setattr(summary.usage, name, sum(getattr(j.usage, name) for j in judged))
    return summary


def merge_shards(files: list[Path], suites: list[LoadedSuite], selected: Iterable[tuple[LoadedSuite, Case]]) -> MergedShards:
    """Return the shard ``results.json`` files combined, in collection order of ``selected``.

    Shards must have run the same config and suite files; a missing shard, or a
    shard that did not complete, becomes a failure (the merged verdict is INCOMPLETE).
    """
    runs, total, seen = load_shards(files)
    _check_suites_unchanged(runs, suites)
    failures = _shard_failures(runs, total, seen)
    by_id = _cases_by_id(runs)
    g = [r.generation for _, r in runs]
    meta = runs[0][1].meta.model_copy(deep=True)  # models, sample (every shard drew the same one), commit
    meta.started_at = min(r.meta.started_at for _, r in runs)
    meta.merged_from = [str(f) for f, _ in runs]
    meta.partial = sorted({p for _, r in runs for p in r.meta.partial})  # a shard that skipped something leaves the merge partial
    return MergedShards(cases=[by_id[(ls.name, case.id)] for ls, case in selected if (ls.name, case.id) in by_id], failures=failures,
                        requests_sent=sum(x.requests_sent for x in g), cache_hits=sum(x.cache_hits for x in g),
                        errors=sum(x.errors for x in g), wall_s=max(x.wall_s for x in g), per_role=_sum_per_role([x.per_role for x in g]),
                        benchmarks=next((r.benchmarks for _, r in runs if r.benchmarks), []),
                        contamination=_merge_contamination([r.contamination for _, r in runs if r.contamination is not None]),
                        judge=_merge_judge([r.judge for _, r in runs if r.judge is not None]), meta=meta)


def _shard_failures(runs: list[tuple[Path, RunResults]], total: int, seen: dict[int, Path]) -> list[str]:
    """Return why the merged run is incomplete: shards missing, or shards that did not complete."""
    failures = [f"shard {index}/{total} is missing: its cases were not evaluated" for index in range(1, total + 1) if index not in seen]
    for _, r in runs:
        if r.verdict == "INCOMPLETE":
            failures += [f"shard {r.meta.shard.index if r.meta.shard else '?'}/{total}: {reason}" for reason in r.reasons]
    return failures


def _check_suites_unchanged(runs: list[tuple[Path, RunResults]], suites: list[LoadedSuite]) -> None:
    current = {ls.name: ls.sha256 for ls in suites}
    for f, r in runs:
        for sm in r.meta.suites:
            if sm.name in current and current[sm.name] != sm.sha256:
                raise InputError(f"suite {sm.name!r} changed since this shard ran (its sha256 differs)", f)


def _cases_by_id(runs: list[tuple[Path, RunResults]]) -> dict[tuple[str, str], CaseResult]:
    by_id: dict[tuple[str, str], CaseResult] = {}
    for f, r in runs:
        for c in r.cases:
            if (c.suite, c.id) in by_id:
                raise InputError(f"case {c.suite}::{c.id} is in two shards", f)
            by_id[(c.suite, c.id)] = c
    return by_id


def _sum_per_role(parts: list[dict[str, dict[str, int]]]) -> dict[str, dict[str, int]]:
    out: dict[str, dict[str, int]] = {}
    for part in parts:
        for role, counts in part.items():
            mine = out.setdefault(role, {})
            for k, v in counts.items():
                mine[k] = mine.get(k, 0) + v
    return out
