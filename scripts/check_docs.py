"""Write docs/checks.md, the reference of every check type, from the check registry.

    python scripts/check_docs.py          # write docs/checks.md
    python scripts/check_docs.py --check  # exit 1 if docs/checks.md is out of date (tests/test_code_quality.py runs this)
"""

from __future__ import annotations

import json
import re
import sys
import types
import typing
from pathlib import Path
from typing import Any

from _docgen import write_or_check
from pydantic import BaseModel
from pydantic.fields import FieldInfo

import mergegate.checks  # noqa: F401  (importing the package registers every built-in check)
from mergegate.checks.registry import REGISTRY, CheckSpecBase, CheckType

OUT = Path(__file__).resolve().parents[1] / "docs" / "checks.md"
COMMON = frozenset(CheckSpecBase.model_fields)  # type, metric, turn: described once, above the checks
JSON_TYPES = {str: "string", int: "integer", float: "number", bool: "boolean", dict: "object", list: "list", type(None): "null"}
KIND = {"bool": "pass/fail", "score": "score in [0, 1]; passes or fails only with a `threshold`"}
JUDGE = {"rubric": "yes: the LLM judge scores the answer", "pairwise": "yes: the LLM judge compares candidate and baseline"}


def _md(text: str) -> str:
    """Return docstring text as one markdown line: reST ``code`` as `code`, table pipes escaped."""
    return re.sub(r"``(.+?)``", r"`\1`", " ".join(text.split())).replace("|", "\\|")


def _paragraph(doc: str) -> str:
    return _md(doc.strip().split("\n\n", 1)[0])


def _type(annotation: Any, nested: list[type[BaseModel]]) -> str:
    """Return a field's type in YAML/JSON words; pydantic models it names are appended to ``nested``."""
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin is typing.Annotated:
        return _type(args[0], nested)
    if origin is typing.Literal:
        values = ", ".join(f"`{v}`" for v in args)
        return values if len(args) == 1 else f"one of {values}"
    if origin in (typing.Union, types.UnionType):
        return " or ".join(_type(a, nested) for a in args if a is not type(None))
    if origin in (list, tuple, set):
        return f"list of {_type(args[0], nested)}" if args else "list"
    if origin is dict:
        return f"object with {_type(args[1], nested)} values" if args else "object"
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        if annotation not in nested:
            nested.append(annotation)
        return f"[{annotation.__name__}](#{annotation.__name__.lower()})"
    if annotation is Any:
        return "any"
    return JSON_TYPES.get(annotation, getattr(annotation, "__name__", str(annotation)))


def _default(field: FieldInfo) -> str:
    if field.is_required():
        return "required"
    value = field.get_default(call_default_factory=True)
    if isinstance(value, str):
        return f"`{value}`"
    return f"`{json.dumps(value)}`"


def _table(fields: dict[str, FieldInfo], nested: list[type[BaseModel]], skip: frozenset[str] = frozenset()) -> list[str]:
    rows = ["| parameter | type | default | description |", "|---|---|---|---|"]
    for name, field in fields.items():
        if name not in skip:
            kind, about = _type(field.annotation, nested), _md(field.description or "")
            rows.append(f"| `{field.alias or name}` | {kind} | {_default(field)} | {about} |")
    return rows if len(rows) > 2 else ["No parameters beyond the common ones."]


def _where(ctype: CheckType) -> str:
    return "src/" + ctype.fn.__module__.replace(".", "/") + ".py"


def _check(ctype: CheckType) -> list[str]:
    nested: list[type[BaseModel]] = []
    reference = "yes: `value`, when omitted, is the case's `reference`" if ctype.uses_reference else "no"
    out = [f"## `{ctype.name}`", "", _paragraph(ctype.doc), "",
           f"- kind: {KIND[ctype.kind]}",
           f"- uses the case's reference: {reference}",
           f"- needs the judge: {JUDGE[ctype.judge] if ctype.judge else 'no'}",
           f"- computed in: `{_where(ctype)}`", ""]
    out += _table(ctype.spec.model_fields, nested, skip=COMMON) + [""]
    for model in nested:  # the fields of nested objects (e.g. each expected tool call)
        out += [f"### {model.__name__}", "", _paragraph(model.__doc__ or ""), ""] + _table(model.model_fields, nested) + [""]
    return out


def render() -> str:
    """Return the reference as markdown."""
    checks = [REGISTRY[name] for name in sorted(REGISTRY)]
    out = ["# Check types", "",
           "Generated from the check registry by `python scripts/check_docs.py`; a test fails when it is out of date.",
           "How to write suites and what each check is for: [suites.md](suites.md).", "",
           "| type | kind | reference | judge | passes when / scores |", "|---|---|---|---|---|"]
    for c in checks:
        out.append(f"| [`{c.name}`](#{c.name}) | {'pass/fail' if c.kind == 'bool' else 'score'} | {'yes' if c.uses_reference else '—'} "
                   f"| {c.judge or '—'} | {_paragraph(c.doc)} |")
    out += ["", "## Common parameters", "",
            "Every check takes these; score checks also take `threshold` (listed with each of them).", ""]
    out += _table(CheckSpecBase.model_fields, [], skip=frozenset({"type"})) + [""]
    for c in checks:
        out += _check(c)
    return "\n".join(out).rstrip() + "\n"


def main(argv: list[str]) -> int:
    return write_or_check(OUT, render(), "check_docs.py", argv)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
