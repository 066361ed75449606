"""Reading a team's checks without running them, for ``mergegate validate``.

Validation is what a reviewer runs on a pull request before trusting it, so it
must not execute the pull request's code: a ``checks:`` module or a ``python``
check's module could do anything at import. Here their source is parsed (``ast``)
instead:

- a ``checks:`` module in the project is read for ``@check("name", ...)``
  decorators; each becomes a stand-in check type with the function's parameter
  names (required when they have no default), so a suite's unknown or missing
  field is still named with its line. Types are not checked until the run;
- a ``python`` check's ``module:function`` must be a file in the suite's or the
  project's folder defining that function (or an installed module).

A module that is not in the project is installed code, not the pull request's:
it is imported as at run time.
"""

from __future__ import annotations

import ast
import contextlib
import importlib.util
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Optional

from pydantic import Field, create_model

from .registry import REGISTRY, CheckSpecBase, CheckType, _camel

__all__ = ["DeclaredCheck", "declared_checks", "module_file", "find_function", "stand_ins"]


@dataclass(frozen=True)
class DeclaredCheck:
    """A ``@check(...)`` found in source: its name, kind and parameters (name → has a default)."""

    name: str
    kind: Literal["bool", "score"]
    params: tuple[tuple[str, bool], ...]
    line: int


def module_file(name: str, roots: Sequence[Path]) -> Optional[Path]:
    """Return the source file of module ``name`` under one of ``roots`` (a .py file or a package's __init__.py)."""
    rel = Path(*name.split("."))
    for root in roots:
        for candidate in (root / rel.with_suffix(".py"), root / rel / "__init__.py"):
            if candidate.is_file():
                return candidate
    return None


def installed(name: str) -> bool:
    """Return True when top-level module ``name``'s package is installed (found without importing anything)."""
    with contextlib.suppress(ImportError, ValueError):
        return importlib.util.find_spec(name.split(".")[0]) is not None
    return False


def _parse(path: Path) -> ast.Module:
    try:
        return ast.parse(path.read_bytes(), filename=str(path))
    except SyntaxError as exc:
        raise ValueError(f"{path}:{exc.lineno}: SyntaxError: {exc.msg}") from None


def find_function(path: Path, func: str) -> bool:
    """Return True when ``path`` defines ``func`` at its top level (def, assignment or import)."""
    for node in _parse(path).body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) and node.name == func:
            return True
        if isinstance(node, (ast.Assign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            if any(isinstance(t, ast.Name) and t.id == func for t in targets):
                return True
        if isinstance(node, (ast.Import, ast.ImportFrom)) and any((a.asname or a.name.split(".")[0]) == func for a in node.names):
            return True
    return False


def declared_checks(path: Path) -> list[DeclaredCheck]:
    """Return every function in ``path`` decorated ``@check("name", ...)`` (or ``@mergegate.check``)."""
    found = []
    for node in ast.walk(_parse(path)):
        if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            continue
        for deco in node.decorator_list:
            name = _check_name(deco)
            if name is None:
                continue
            assert isinstance(deco, ast.Call)
            kind = next((k.value.value for k in deco.keywords if k.arg == "kind" and isinstance(k.value, ast.Constant)), "bool")
            args = node.args.posonlyargs + node.args.args
            defaults = [False] * (len(args) - len(node.args.defaults)) + [True] * len(node.args.defaults)
            params = [(a.arg, d) for a, d in zip(args, defaults, strict=True)][1:]  # the first is the CheckContext
            params += [(a.arg, d is not None) for a, d in zip(node.args.kwonlyargs, node.args.kw_defaults, strict=True)]
            found.append(DeclaredCheck(name, "score" if kind == "score" else "bool",
                                       tuple(p for p in params if p[0] != "prepared"), node.lineno))
    return found


def _check_name(deco: ast.expr) -> Optional[str]:
    if not isinstance(deco, ast.Call) or not deco.args or not isinstance(deco.args[0], ast.Constant):
        return None
    func = deco.func
    named = (isinstance(func, ast.Name) and func.id == "check") or (isinstance(func, ast.Attribute) and func.attr == "check")
    return deco.args[0].value if named and isinstance(deco.args[0].value, str) else None


def _not_run(ctx: Any, **kwargs: Any) -> None:
    raise RuntimeError("a stand-in check type only validates suites; it never scores")


def _stand_in(decl: DeclaredCheck) -> CheckType:
    fields: dict[str, Any] = {"type": (Literal[decl.name], Field(description=f"{decl.name} (read from source, not run)"))}
    for pname, has_default in decl.params:
        fields[pname] = (Any, None if has_default else ...)
    if decl.kind == "score":
        fields["threshold"] = (Optional[float], Field(default=None, ge=0, le=1, allow_inf_nan=False))
    model = create_model(f"{_camel(decl.name)}Check", __base__=CheckSpecBase, **fields)
    return CheckType(decl.name, _not_run, model, decl.kind, False, None, f"{decl.name} (stand-in)")


@contextlib.contextmanager
def stand_ins(declared: Sequence[DeclaredCheck]) -> Iterator[None]:
    """Register stand-in check types for ``declared`` while the block validates suites; remove them after."""
    from ..suites.models import refresh_check_types

    added = [d.name for d in declared if d.name not in REGISTRY]
    for decl in declared:
        if decl.name in added:
            REGISTRY[decl.name] = _stand_in(decl)
    refresh_check_types()
    try:
        yield
    finally:
        for name in added:
            REGISTRY.pop(name, None)
        refresh_check_types()
