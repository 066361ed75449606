"""The main line's history: one JSON line per evaluated commit of the default branch.

A workflow appends an entry after each run on the default branch; the PR
report reads the last entries to show where the headline metrics have been
going. Entries are small on purpose (candidate values only): the full
results stay in each run's artifact.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ..errors import InputError
from .models import RunResults

__all__ = ["HistoryEntry", "entry_from_run", "append_history", "read_history", "HISTORY_SCHEMA_VERSION"]

HISTORY_SCHEMA_VERSION = 1


class HistoryEntry(BaseModel):
    """One run of the main line: its commit, verdict and headline metrics (the candidate's values)."""

    model_config = ConfigDict(extra="forbid")

    schema_version: int = HISTORY_SCHEMA_VERSION
    commit: Optional[str] = None
    finished_at: str
    verdict: str
    run_url: Optional[str] = None
    pass_rate: Optional[float] = Field(default=None, description="Candidate pass rate over every gated case of the run.")
    suites: dict[str, dict[str, Optional[float]]] = Field(
        default_factory=dict, description="Per suite: 'pass_rate' and the mean of each metric, candidate side.")


def entry_from_run(run: RunResults) -> HistoryEntry:
    """Return the history entry for ``run``."""
    gated = [c.candidate.passed for c in run.cases if c.candidate.passed is not None]
    ci = run.meta.ci
    commit = (ci.head_sha or ci.sha) if ci is not None else None
    return HistoryEntry(
        commit=commit or run.meta.git_commit, finished_at=run.meta.finished_at, verdict=run.verdict,
        run_url=ci.run_url if ci is not None else None,
        pass_rate=(sum(gated) / len(gated)) if gated else None,
        suites={s.name: {"pass_rate": s.pass_rate.candidate, **{m.name: m.candidate for m in s.metrics.values()}} for s in run.suites},
    )


def append_history(path: str | Path, run: RunResults) -> Optional[HistoryEntry]:
    """Append ``run``'s entry to the JSONL file at ``path``; return it, or None if that run is already recorded."""
    path = Path(path)
    entry = entry_from_run(run)
    existing = read_history(path) if path.exists() else []
    if any(e.commit == entry.commit and e.run_url == entry.run_url for e in existing):
        return None  # a re-run of the same job must not add a second point
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a", encoding="utf-8") as fh:
        fh.write(entry.model_dump_json() + "\n")
    return entry


def read_history(path: str | Path, limit: Optional[int] = None) -> list[HistoryEntry]:
    """Return the entries of the JSONL file at ``path`` (the last ``limit`` if given), oldest first.

    Raises :class:`InputError` naming the line of an entry that does not parse.
    """
    path = Path(path)
    entries = []
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise InputError(f"cannot read history: {exc.strerror}", path) from None
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            entries.append(HistoryEntry.model_validate(json.loads(line)))
        except ValidationError as exc:
            why = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors()[:2])
            raise InputError(f"not a history entry: {why}", path, number) from None
        except ValueError as exc:  # json.JSONDecodeError
            raise InputError(f"not JSON: {exc}", path, number) from None
    return entries[-limit:] if limit else entries
