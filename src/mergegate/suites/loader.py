"""Reading suite files: YAML → validated :class:`Suite`, every error as ``file:line: message``."""

from __future__ import annotations

import difflib
import hashlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from ..checks import REGISTRY
from ..errors import InputError, SuiteError
from ..yamlio import LocatedYaml, line_for, load_yaml
from .models import Suite, refresh_check_types

__all__ = ["LoadedSuite", "load_suite", "discover_suites", "validation_error_to_input_error"]


@dataclass
class LoadedSuite:
    """A validated suite with where it came from and what its checks prepared at load time."""

    suite: Suite
    path: Path
    sha256: str
    case_lines: dict[str, int]
    # prepared[case_id][check_index]: compiled regex, schema validator, imported function...
    prepared: dict[str, list[Any]] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return self.suite.name


def _model_for(loc: tuple, root: type[BaseModel]) -> type[BaseModel] | None:
    """Return the pydantic model that owns the field at ``loc`` (for 'did you mean')."""
    model: Any = root
    for part in loc[:-1]:
        if isinstance(part, int) or model is None:
            continue
        if isinstance(part, str) and part in REGISTRY:
            model = REGISTRY[part].spec
            continue
        f = getattr(model, "model_fields", {}).get(part)
        if f is None:
            return None
        ann = f.annotation
        model = _inner_model(ann)
    return model if isinstance(model, type) and issubclass(model, BaseModel) else None


def _inner_model(ann: Any) -> Any:
    for arg in getattr(ann, "__args__", ()) or ():
        found = _inner_model(arg)
        if found is not None:
            return found
    if isinstance(ann, type) and issubclass(ann, BaseModel):
        return ann
    return None


def _data_path(data: Any, loc: tuple) -> tuple:
    """Return the part of pydantic's ``loc`` that exists in the YAML data (drops union tags)."""
    out: list = []
    for part in loc:
        if isinstance(data, dict) and part in data or isinstance(data, list) and isinstance(part, int) and part < len(data):
            data = data[part]
            out.append(part)
    return tuple(out)


def _dotted(loc: tuple) -> str:
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


def validation_error_to_input_error(exc: ValidationError, doc: LocatedYaml, root: type[BaseModel], error: type[InputError]) -> InputError:
    """Return one readable ``error`` for the first problem in ``exc``, located in ``doc``."""
    errors = exc.errors()
    first = errors[0]
    loc = _data_path(doc.data, tuple(first["loc"]))
    kind = first["type"]
    if kind == "extra_forbidden":
        key = first["loc"][-1]
        model = _model_for(tuple(first["loc"]), root)
        known = sorted(getattr(model, "model_fields", {}) or [])
        known = [model.model_fields[k].alias or k for k in known] if model else []
        hint = difflib.get_close_matches(str(key), known, n=1)
        msg = f"unknown key {key!r}" + (f" (did you mean {hint[0]!r}?)" if hint else (f"; allowed: {', '.join(known)}" if known else ""))
        where = loc[:-1] if loc and loc[-1] == key else loc
        text = f"{_dotted(where)}: {msg}" if where else msg
        line = doc.lines.get(loc) or line_for(doc, loc)
    elif kind in ("union_tag_invalid", "union_tag_not_found"):
        tag = first.get("input", {}).get("type") if isinstance(first.get("input"), dict) else None
        if tag is None:
            text = f"{_dotted(loc)}: a check needs 'type' (one of: {', '.join(sorted(REGISTRY))})"
        else:
            hint = difflib.get_close_matches(str(tag), list(REGISTRY), n=1)
            text = f"{_dotted(loc)}: unknown check type {tag!r}" + (
                f" (did you mean {hint[0]!r}?)" if hint else f"; known: {', '.join(sorted(REGISTRY))}")
        line = line_for(doc, loc + ("type",))
    else:
        msg = first["msg"].removeprefix("Value error, ")
        if kind == "missing":
            msg = f"missing required field {first['loc'][-1]!r}"
            loc_for_text = loc
        else:
            loc_for_text = loc
        text = f"{_dotted(loc_for_text)}: {msg}" if loc_for_text else msg
        line = line_for(doc, loc)
    if len(errors) > 1:
        text += f" (and {len(errors) - 1} more error{'s' if len(errors) > 2 else ''})"
    return error(text, doc.path, line)


M = TypeVar("M", bound=BaseModel)


def load_model_file(path: Path, model: type[M], error: type[InputError], shape: str) -> tuple[LocatedYaml, M]:
    """Return the YAML document at ``path`` and ``model`` validated from it; raise ``error`` at file:line.

    ``shape`` completes the message for a file that is not a mapping ("a mapping with ...").
    """
    doc = load_yaml(path, error)
    if not isinstance(doc.data, dict):
        raise error(f"{path.name} must be a mapping with {shape}", path, 1)
    try:
        return doc, model.model_validate(doc.data)
    except ValidationError as exc:
        raise validation_error_to_input_error(exc, doc, model, error) from None


def load_suite(path: str | Path, run_user_code: bool = True) -> LoadedSuite:
    """Return the validated suite at ``path``; raise :class:`SuiteError` naming file and line.

    ``run_user_code=False`` (``mergegate validate``): checks whose preparation would import the team's
    modules are checked from their source instead (nothing they hold is prepared).
    """
    path = Path(path)
    refresh_check_types()
    doc, suite = load_model_file(path, Suite, SuiteError, "'name' and 'cases'")

    case_lines: dict[str, int] = {}
    prepared: dict[str, list[Any]] = {}
    for i, case in enumerate(suite.cases):
        line = doc.lines.get(("cases", i))
        if case.id in case_lines:
            raise SuiteError(f"duplicate case id {case.id!r} (first defined on line {case_lines[case.id]})", path,
                             doc.lines.get(("cases", i, "id"), line))
        case_lines[case.id] = line or 0
        prepared[case.id] = []
        for j, spec in enumerate(case.checks):
            ctype = REGISTRY[spec.type]
            prepare = ctype.prepare if run_user_code or ctype.static_prepare is None else ctype.static_prepare
            if prepare is None:
                prepared[case.id].append(None)
                continue
            try:
                prepared[case.id].append(prepare(spec, path.parent))
            except ValueError as exc:
                raise SuiteError(f"cases[{i}].checks[{j}] ({spec.type}): {exc}", path,
                                 doc.lines.get(("cases", i, "checks", j), line)) from None
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    return LoadedSuite(suite=suite, path=path, sha256=digest, case_lines=case_lines, prepared=prepared)


def is_suite_file(path: Path) -> bool:
    """Return True for ``*.yaml``/``*.yml`` files a suites folder holds.

    Skipped: ``_``-prefixed files, and ``*.calibration.yaml`` (judge calibration
    sets, read by :mod:`mergegate.judge.calibration`).
    """
    return path.suffix in (".yaml", ".yml") and not path.name.startswith("_") and not path.name.endswith(".calibration.yaml")


def discover_suites(paths: Iterable[str | Path], load: Callable[[Path], LoadedSuite] = load_suite) -> list[LoadedSuite]:
    """Return every suite under ``paths`` (files or folders), sorted by path; names must be unique.

    ``load``: how one file is read (a session passes its own, which parses each file once).
    """
    files: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            files.extend(sorted(f for f in p.rglob("*") if f.is_file() and is_suite_file(f)))
        elif p.exists():
            files.append(p)
        else:
            raise SuiteError("file not found", p)
    loaded = [load(f) for f in files]
    seen: dict[str, Path] = {}
    for ls in loaded:
        if ls.name in seen:
            raise SuiteError(f"duplicate suite name {ls.name!r} (also in {seen[ls.name]})", ls.path, 1)
        seen[ls.name] = ls.path
    return loaded
