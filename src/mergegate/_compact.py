"""A pydantic base whose instances share their "fields set": the memory of a run is mostly small models.

Pydantic gives every instance its own ``set`` of the fields it was given
(~700 bytes: more than the values of a typical check result or case). A run
holds ~10 models per case (the case, its checks, both sides' results), so at
10,000 cases these sets alone were ~50 MB. Instances given the same fields
share one set here; an assignment first gives the instance its own copy.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

__all__ = ["CompactModel"]

_FIELD_SETS: dict[frozenset[str], set[str]] = {}
_SHARED: set[int] = set()  # ids of the shared sets


class CompactModel(BaseModel):
    """A :class:`pydantic.BaseModel` whose instances given the same fields share one fields set."""

    def model_post_init(self, context: Any, /) -> None:
        fields = frozenset(self.__pydantic_fields_set__)
        shared = _FIELD_SETS.get(fields)
        if shared is None:
            shared = _FIELD_SETS[fields] = set(fields)
            _SHARED.add(id(shared))
        object.__setattr__(self, "__pydantic_fields_set__", shared)

    def __setattr__(self, name: str, value: Any) -> None:
        if id(self.__pydantic_fields_set__) in _SHARED:  # its own set before pydantic adds the field to it
            object.__setattr__(self, "__pydantic_fields_set__", set(self.__pydantic_fields_set__))
        super().__setattr__(name, value)
