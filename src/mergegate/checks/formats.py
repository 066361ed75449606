"""Format compliance: is the output valid JSON, does it follow a JSON Schema."""

from __future__ import annotations

import json
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
    import jsonschema

    if (spec.schema_ is None) == (spec.schema_file is None):
        raise ValueError("json_schema needs exactly one of 'schema' (inline) or 'schema_file'")
    schema = spec.schema_
    if spec.schema_file is not None:
        path = (suite_dir / spec.schema_file).resolve()
        try:
            schema = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ValueError(f"schema_file not found: {path}") from None
        except json.JSONDecodeError as exc:
            raise ValueError(f"schema_file {path} is not valid JSON: {exc.msg} (line {exc.lineno})") from None
    cls = jsonschema.validators.validator_for(schema)
    try:
        cls.check_schema(schema)
    except jsonschema.SchemaError as exc:
        raise ValueError(f"invalid JSON Schema: {exc.message}") from None
    return cls(schema)


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
