"""Format compliance: is the output valid JSON, does it follow a JSON Schema."""

from __future__ import annotations

import json
import urllib.parse
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Optional

from pydantic import Field

from .registry import CheckContext, Outcome, check

if TYPE_CHECKING:  # loaded by the first json_schema check: ~8 MB and 50 ms a run without one need not pay
    import jsonschema


def extract_json_text(output: str) -> str:
    """Return ``output`` stripped of whitespace and of one surrounding markdown code fence."""
    text = output.strip()
    if text.startswith("```"):
        first_newline = text.find("\n")
        body = text[first_newline + 1 :] if first_newline != -1 else ""
        body = body.rstrip()
        if body.endswith("```"):
            body = body[:-3]
        text = body.strip()
    return text


def parse_json(output: str) -> tuple[Any, Optional[str]]:
    """Return ``(value, None)`` when the output parses as JSON, else ``(None, error message)``."""
    try:
        return json.loads(extract_json_text(output)), None
    except json.JSONDecodeError as exc:
        return None, f"invalid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}"


@check("json_valid")
def json_valid(ctx: CheckContext) -> Outcome:
    """Passes when the output (optionally inside one ``` fence) parses as JSON."""
    _, err = parse_json(ctx.output)
    return Outcome(score=float(err is None), passed=err is None, detail=err or "")


def _load_schema(spec, suite_dir: Path) -> jsonschema.protocols.Validator:
    """Return the validator of a json_schema check; its ``$ref`` targets must be local or files in the suite folder.

    A schema is suite input, and input never reaches the network or the rest of the disk: a ``$ref`` to
    ``http://…`` or ``file://…`` (or a path out of the suite folder) is refused here, one line at the
    suite's line; the validator's registry retrieves nothing it was not given.
    """
    import jsonschema
    import referencing
    import referencing.jsonschema

    if (spec.schema_ is None) == (spec.schema_file is None):
        raise ValueError("json_schema needs exactly one of 'schema' (inline) or 'schema_file'")
    schema = spec.schema_ if spec.schema_file is None else _schema_file(suite_dir, spec.schema_file)
    cls = jsonschema.validators.validator_for(schema)
    try:
        cls.check_schema(schema)
    except jsonschema.SchemaError as exc:
        raise ValueError(f"invalid JSON Schema: {exc.message}") from None
    resources: dict[str, referencing.Resource] = {}
    todo: list[tuple[str, Any]] = [("", schema)]  # (its name relative to the suite folder, the schema): referenced files' refs too
    while todo:
        base, doc = todo.pop()
        for ref in sorted(set(_refs(doc))):
            target = urllib.parse.urljoin(base, ref.split("#", 1)[0]) if ref.split("#", 1)[0] else ""
            if not target or target in resources:
                continue
            if urllib.parse.urlsplit(target).scheme or target.startswith("/"):
                raise ValueError(f"$ref {ref!r} would be fetched from outside the suite folder; put the schema in a file "
                                 "next to the suite and refer to it by a relative path")
            contents = _schema_file(suite_dir, target)
            resources[target] = referencing.Resource.from_contents(contents, default_specification=referencing.jsonschema.DRAFT202012)
            todo.append((target, contents))
    registry: referencing.Registry = referencing.Registry(retrieve=_refuse).with_resources(resources.items())  # type: ignore[call-arg]
    return cls(schema, registry=registry)


def _refuse(uri: str) -> Any:
    import referencing.exceptions

    raise referencing.exceptions.NoSuchResource(ref=uri)  # type: ignore[call-arg] # nothing is fetched: every reference was loaded above


def _schema_file(suite_dir: Path, name: str) -> Any:
    """Return the JSON in ``name`` (relative to the suite folder, and inside it)."""
    path = (suite_dir / name).resolve()
    if not path.is_relative_to(suite_dir.resolve()):
        raise ValueError(f"schema file {name!r} is outside the suite folder {suite_dir}")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ValueError(f"schema_file not found: {path}") from None
    except json.JSONDecodeError as exc:
        raise ValueError(f"schema_file {path} is not valid JSON: {exc.msg} (line {exc.lineno})") from None


def _refs(node: Any) -> Iterator[str]:
    """Yield every ``$ref`` / ``$dynamicRef`` string in a schema."""
    if isinstance(node, dict):
        for k, v in node.items():
            if k in ("$ref", "$dynamicRef") and isinstance(v, str):
                yield v
            else:
                yield from _refs(v)
    elif isinstance(node, list):
        for v in node:
            yield from _refs(v)


@check("json_schema", prepare=_load_schema)
def json_schema(
    ctx: CheckContext,
    schema_: Annotated[Optional[dict], Field(default=None, alias="schema", description="Inline JSON Schema.")] = None,
    schema_file: Annotated[Optional[str], Field(description="Path to a JSON Schema file, relative to the suite file.")] = None,
    prepared: Any = None,
) -> Outcome:
    """Passes when the output parses as JSON and validates against the schema."""
    value, err = parse_json(ctx.output)
    if err:
        return Outcome(score=0.0, passed=False, detail=err)
    errors = sorted(prepared.iter_errors(value), key=lambda e: list(e.path))
    if errors:
        first = errors[0]
        where = "/".join(str(p) for p in first.path) or "(root)"
        return Outcome(score=0.0, passed=False, detail=f"schema violation at {where}: {first.message}")
    return Outcome(score=1.0, passed=True)
