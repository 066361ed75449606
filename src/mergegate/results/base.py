"""The base of every results model: strict, and tolerant of the computed fields it writes itself."""

from __future__ import annotations

from typing import Any

from pydantic import ConfigDict, model_validator

from .._compact import CompactModel

__all__ = ["_Model"]


class _Model(CompactModel):
    model_config = ConfigDict(extra="forbid")

    @model_validator(mode="before")
    @classmethod
    def _drop_computed(cls, data: Any) -> Any:
        # results.json carries computed fields (delta, regressed, ...) for readers; reading it back recomputes them.
        if isinstance(data, dict) and cls.__pydantic_computed_fields__:
            return {k: v for k, v in data.items() if k not in cls.__pydantic_computed_fields__}
        return data
