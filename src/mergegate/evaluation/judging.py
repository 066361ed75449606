"""The judge phase: calibration sets, then every judge check of the generated outputs."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Optional

from ..checks import REGISTRY
from ..client import Response, ResponseCache
from ..config.loader import LoadedConfig
from ..errors import InputError
from ..judge import JudgePhase, LoadedCalibration, find_calibration_files, load_calibration, run_judge_phase
from ..serving import Endpoint
from ..suites import Case, LoadedSuite
from .provenance import relative
from .scoring import ResponseKey

__all__ = ["uses_judge", "check_judge_configured", "calibration_sets", "judge_outputs"]


def uses_judge(selected: Iterable[tuple[LoadedSuite, Case]]) -> bool:
    """Return True when a selected case has a judge check (llm_rubric, pairwise)."""
    return any(REGISTRY[spec.type].judge for _, case in selected for spec in case.checks)


def check_judge_configured(loaded: LoadedConfig, selected: Iterable[tuple[LoadedSuite, Case]]) -> None:
    """Raise :class:`InputError` naming the first judge-checked case when mergegate.yaml has no ``judge``."""
    if loaded.config.judge is not None:
        return
    for ls, case in selected:
        if any(REGISTRY[s.type].judge for s in case.checks):
            raise InputError(f"case {case.id!r} has a judge check (llm_rubric/pairwise) but mergegate.yaml has no 'judge' section",
                             ls.path, ls.case_lines.get(case.id))


def calibration_sets(loaded: LoadedConfig) -> list[LoadedCalibration]:
    """Return the calibration sets: the configured file, or every *.calibration.yaml of the suites folder."""
    assert loaded.config.judge is not None
    cal = loaded.config.judge.calibration
    if cal.file:
        path = loaded.resolve(cal.file)
        if not path.is_file():
            raise InputError(f"judge.calibration.file {cal.file!r} does not exist", loaded.path)
        return [load_calibration(path)]
    return [load_calibration(p) for p in find_calibration_files(loaded.resolve(loaded.config.suites_dir))]


def judge_outputs(loaded: LoadedConfig, selected: list[tuple[LoadedSuite, Case]], endpoints: dict[str, Endpoint],
                  responses: dict[ResponseKey, Response], cache: Optional[ResponseCache], sets: list[LoadedCalibration],
                  progress: bool) -> JudgePhase:
    """Judge the generated outputs (and re-judge the calibration sets); the phase's failures make the run INCOMPLETE."""
    cfg = loaded.config
    assert cfg.judge is not None
    if "judge" not in endpoints:
        return JudgePhase(failures=["judge checks need a judge endpoint, and none was started"])

    def output(role: str, suite: str, case_id: str, turn: Optional[int] = None) -> Optional[str]:
        r = responses.get((role, suite, case_id) if turn is None else (role, suite, case_id, turn))
        if r is None and turn is not None:  # the last turn is stored under the plain key
            r = responses.get((role, suite, case_id))
        return None if r is None or r.error else r.text

    phase = run_judge_phase(cfg.judge, endpoints, selected, output, sets, cache, cfg.generation, progress=progress)
    cal = phase.summary.calibration if phase.summary else None
    if cal is not None:
        cal.files = [relative(Path(f), loaded.root) for f in cal.files]
    return phase
