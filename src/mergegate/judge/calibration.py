"""The calibration set: pairs of responses with human verdicts, re-judged on every run.

File format (``*.calibration.yaml`` in the suites folder)::

    format: 1
    name: support-calibration
    criteria: [helpfulness, accuracy]     # optional, as for pairwise checks
    items:
      - id: refund-window
        prompt: "How long do I have to return an item?"
        response_a: "You have 30 days from delivery ..."
        response_b: "Returns are sometimes possible."
        human: [A, A, tie]                # one verdict per rater: A, B or tie
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Optional

from pydantic import BaseModel, ConfigDict, Field, field_validator

from ..errors import SuiteError
from ..suites.loader import load_model_file

__all__ = ["CalibrationItem", "CalibrationSet", "LoadedCalibration", "load_calibration", "find_calibration_files", "CALIBRATION_SUFFIX"]

CALIBRATION_SUFFIX = ".calibration.yaml"


class CalibrationItem(BaseModel):
    """One prompt, two responses, and each human rater's verdict."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    id: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
    prompt: str
    response_a: str
    response_b: str
    human: list[Literal["A", "B", "tie"]] = Field(min_length=1,
                                                  description="One verdict per rater, in the same rater order for every item.")


class CalibrationSet(BaseModel):
    """A calibration file."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    format: Literal[1] = 1
    name: str
    description: str = ""
    criteria: Optional[list[str]] = None
    items: list[CalibrationItem] = Field(min_length=1)

    @field_validator("items")
    @classmethod
    def _unique_and_same_raters(cls, items: list[CalibrationItem]) -> list[CalibrationItem]:
        seen: set[str] = set()
        for it in items:
            if it.id in seen:
                raise ValueError(f"duplicate item id {it.id!r}")
            seen.add(it.id)
        return items


@dataclass(frozen=True)
class LoadedCalibration:
    """A validated calibration file and where it came from."""

    path: Path
    set: CalibrationSet

    @property
    def raters(self) -> int:
        """Return the largest number of verdicts any item has."""
        return max(len(it.human) for it in self.set.items)


def find_calibration_files(folder: Path) -> list[Path]:
    """Return the ``*.calibration.yaml`` files under ``folder``, sorted."""
    return sorted(p for p in Path(folder).rglob(f"*{CALIBRATION_SUFFIX}") if p.is_file())


def load_calibration(path: str | Path) -> LoadedCalibration:
    """Return the calibration set at ``path``; raise :class:`SuiteError` naming file and line."""
    path = Path(path)
    _, data = load_model_file(path, CalibrationSet, SuiteError, "'name' and 'items'")
    return LoadedCalibration(path, data)
