"""``python``: a team's own scorer, named ``module:function``."""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

from pydantic import Field

from .registry import CheckContext, Outcome, check


def _import(spec, suite_dir: Path) -> Callable[[CheckContext], Any]:
    module_name, sep, func_name = spec.value.partition(":")
    if not sep or not module_name or not func_name:
        raise ValueError(f"python check needs 'module:function', got {spec.value!r}")
    # The suite's folder is importable so a scorer can live next to its suite.
    if str(suite_dir) not in sys.path:
        sys.path.insert(0, str(suite_dir))
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ValueError(f"cannot import {module_name!r}: {exc}") from None
    fn = getattr(module, func_name, None)
    if not callable(fn):
        raise ValueError(f"{module_name!r} has no function {func_name!r}")
    return fn


@check("python", kind="score", prepare=_import)
def python(
    ctx: CheckContext,
    value: Annotated[str, Field(description="'module:function'; called with the CheckContext, "
                                            "returns bool, a score in [0, 1] or an Outcome.")],
    prepared: Any = None,
) -> Any:
    """A custom scorer: ``module:function`` importable from the suite's folder or the project."""
    result = prepared(ctx)
    if isinstance(result, (bool, Outcome)):
        return result
    return float(result)
