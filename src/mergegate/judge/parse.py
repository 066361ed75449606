"""Reading the judge's reply: the last JSON object in it that is a valid verdict."""

from __future__ import annotations

import json
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, ValidationError

__all__ = ["JudgeParseError", "RubricVerdict", "PairwiseVerdict", "parse_rubric", "parse_pairwise"]


class JudgeParseError(ValueError):
    """The judge's reply holds no valid verdict."""


class RubricVerdict(BaseModel):
    """Scores per criterion (integers in 1..scale) and a short reason."""

    model_config = ConfigDict(extra="ignore")
    reason: str = ""
    scores: dict[str, int]


class PairwiseVerdict(BaseModel):
    """'A', 'B' or 'tie', and a short reason."""

    model_config = ConfigDict(extra="ignore")
    reason: str = ""
    winner: Literal["A", "B", "tie"]


def _objects(text: str) -> list[Any]:
    """Return every JSON object that starts somewhere in ``text``, in order."""
    # strict=False: judges put raw newlines inside their "reason" strings; that is no reason to reject a verdict
    decoder, found, i = json.JSONDecoder(strict=False), [], text.find("{")
    while i != -1:
        try:
            obj, end = decoder.raw_decode(text, i)
        except ValueError:
            i = text.find("{", i + 1)
            continue
        if isinstance(obj, dict):
            found.append(obj)
        i = text.find("{", end)
    return found


def parse_rubric(text: str, criteria: list[str], scale: int) -> RubricVerdict:
    """Return the reply's rubric verdict; raise :class:`JudgeParseError` saying what is wrong."""
    problem = "no JSON object"
    for obj in reversed(_objects(text)):  # the last one: a judge may quote the response before its own verdict
        try:
            v = RubricVerdict.model_validate(obj)
        except ValidationError as exc:
            problem = f"not a rubric verdict: {exc.errors()[0]['msg']}"
            continue
        missing = [c for c in criteria if c not in v.scores]
        bad = [c for c in criteria if c in v.scores and not 1 <= v.scores[c] <= scale]
        if missing or bad:
            problem = f"missing scores for {missing}" if missing else f"scores outside 1..{scale} for {bad}"
            continue
        return RubricVerdict(reason=v.reason, scores={c: v.scores[c] for c in criteria})
    raise JudgeParseError(problem)


def parse_pairwise(text: str) -> PairwiseVerdict:
    """Return the reply's pairwise verdict; raise :class:`JudgeParseError` saying what is wrong."""
    problem = "no JSON object"
    for obj in reversed(_objects(text)):
        if isinstance(obj.get("winner"), str):
            obj = {**obj, "winner": {"a": "A", "b": "B", "tie": "tie"}.get(obj["winner"].strip().lower(), obj["winner"])}
        try:
            return PairwiseVerdict.model_validate(obj)
        except ValidationError as exc:
            problem = f"not a pairwise verdict: {exc.errors()[0]['msg']}"
    raise JudgeParseError(problem)
