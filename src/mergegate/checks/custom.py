"""``python``: a team's own scorer, named ``module:function``."""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

from pydantic import Field

from .registry import CheckContext, Outcome, check


def _names(spec: Any) -> tuple[str, str]:
    module_name, sep, func_name = spec.value.partition(":")
    if not sep or not module_name or not func_name:
        raise ValueError(f"python check needs 'module:function', got {spec.value!r}")
    return module_name, func_name


def _find(spec: Any, suite_dir: Path) -> None:
    """Validation: the module is a file in the suite's or the project's folder defining the function (read, not run)."""
    from .static import find_function, installed, module_file

    module_name, func_name = _names(spec)
    path = module_file(module_name, [suite_dir, Path.cwd()])
    if path is None:
        if installed(module_name):  # installed code is not the pull request's; the run imports it
            return
        raise ValueError(f"cannot import {module_name!r}: no {module_name.replace('.', '/')}.py in {suite_dir} or {Path.cwd()}")
    if not find_function(path, func_name):
        raise ValueError(f"{module_name!r} ({path}) has no function {func_name!r}")


def _import(spec, suite_dir: Path) -> Callable[[CheckContext], Any]:
    module_name, func_name = _names(spec)
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


@check("python", kind="score", prepare=_import, static_prepare=_find)
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
