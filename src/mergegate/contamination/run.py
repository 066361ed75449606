"""Contamination as part of a run: which files, which texts, and the summary written to results.json."""

from __future__ import annotations

import glob
from collections.abc import Sequence
from pathlib import Path

from ..errors import InputError
from ..suites import Case
from .ngrams import ContaminationReport, EvalText

__all__ = ["case_texts", "resolve_training_files", "summary_of"]


def case_texts(suite: str, case: Case) -> EvalText:
    """Return the texts of ``case`` checked for overlap: every input message (each on its own) and the reference."""
    inputs: list[str] = []
    if case.prompt is not None:
        inputs.append(case.prompt)
    inputs += [m.content for m in case.messages or [] if m.role != "assistant"]
    inputs += list(case.turns or [])
    return EvalText(suite, case.id, tuple(inputs) + ((case.reference,) if case.reference else ()))


def resolve_training_files(patterns: Sequence[str], root: Path, where: Path | None = None) -> list[Path]:
    """Return the files named by ``patterns`` (relative to ``root``; globs allowed); raise InputError for one that matches nothing."""
    files: list[Path] = []
    for pattern in patterns:
        full = pattern if Path(pattern).is_absolute() else str(root / pattern)
        found = sorted(Path(p) for p in glob.glob(full, recursive=True) if Path(p).is_file())
        if not found:
            raise InputError(f"training data {pattern!r} matches no file", where)
        files += found
    return files


def summary_of(report: ContaminationReport, on_contaminated: str, root: Path) -> dict:
    """Return the fields of results' ContaminationSummary for ``report`` (paths relative to ``root`` where possible)."""
    n = min(report.ns)

    def rel(p: str) -> str:
        try:
            return str(Path(p).resolve().relative_to(root.resolve()))
        except ValueError:
            return p

    cases = [{"suite": c.suite, "id": c.case_id, "matched_ngrams": c.matched[n], "ngrams": c.ngrams[n],
              "first_match": rel(c.first_match.rsplit(":", 1)[0]) + ":" + c.first_match.rsplit(":", 1)[1] if c.first_match else None}
             for c in report.contaminated(n)]
    return {"n": list(report.ns), "files": [rel(f) for f in report.files], "records": report.records,
            "seconds": round(report.seconds, 3), "on_contaminated": on_contaminated,
            "per_suite": {s: [a, b] for s, (a, b) in report.by_suite(n).items()}, "cases": cases}

