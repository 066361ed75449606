"""Reading ``results.json`` back: one function, one error for every way it can be unreadable."""

from __future__ import annotations

from pathlib import Path

from ..errors import InputError
from .models import RunResults

__all__ = ["load_results"]


def load_results(path: str | Path) -> RunResults:
    """Return the :class:`RunResults` in ``path``; raise :class:`InputError` naming the file if it is unreadable or not one."""
    path = Path(path)
    try:
        return RunResults.model_validate_json(path.read_bytes())
    except OSError as exc:
        raise InputError(f"cannot read results: {exc.strerror}", path) from None
    except ValueError as exc:
        raise InputError(f"not a mergegate results file: {str(exc).splitlines()[0]}", path) from None
