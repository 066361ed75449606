"""Write docs/api.md, the reference of mergegate's public API, from the code's own signatures and docstrings.

    python scripts/api_docs.py          # write docs/api.md
    python scripts/api_docs.py --check  # exit 1 if docs/api.md is out of date (tests/test_code_quality.py runs this)
"""

from __future__ import annotations

import inspect
import sys
from pathlib import Path

from _docgen import write_or_check

import mergegate

OUT = Path(__file__).resolve().parents[1] / "docs" / "api.md"
SECTIONS = [
    ("What gates read", ["Results", "SuiteView", "GroupView", "Comparison", "PairedDelta", "Finding", "CaseResult"]),
    ("What a gate may meet", ["InsufficientEvidence", "UncalibratedJudge", "UnknownName", "NotEvaluated"]),
    ("Custom checks", ["check", "CheckContext", "Outcome"]),
    ("Scripts over results.json", ["load_results", "RunResults", "Verdict"]),
    ("Errors", ["MergegateError", "InputError", "ConfigError", "SuiteError", "IncompleteError", "ServerError", "GenerationError"]),
]


def _doc(obj: object) -> str:
    doc = inspect.getdoc(obj) or ""
    return doc.strip()


def _signature(obj: object) -> str:
    try:
        return str(inspect.signature(obj))  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return ""


def _members(cls: type) -> list[str]:
    lines = []
    for name, member in sorted(vars(cls).items()):
        if name.startswith("_") or name.startswith("model_"):
            continue
        if isinstance(member, property):
            lines.append(f"- `.{name}` (property) — {_doc(member).splitlines()[0] if _doc(member) else ''}".rstrip(" —"))
        elif inspect.isfunction(member):
            first = _doc(member).splitlines()[0] if _doc(member) else ""
            lines.append(f"- `.{name}{_signature(member)}` — {first}".rstrip(" —"))
    fields = getattr(cls, "model_fields", None)
    if fields:
        for name, f in fields.items():
            lines.append(f"- `.{name}`: `{_type_name(f.annotation)}`" + (f" — {f.description}" if f.description else ""))
    return lines


def _type_name(annotation: object) -> str:
    text = getattr(annotation, "__name__", None) if isinstance(annotation, type) else None
    return text or str(annotation).replace("typing.", "").replace("mergegate.results.models.", "")


def render() -> str:
    """Return the reference as markdown."""
    out = ["# mergegate API reference", "",
           "Generated from the code by `python scripts/api_docs.py`; a test fails when it is out of date.",
           "Import everything from `mergegate` (e.g. `from mergegate import Results`); other modules are implementation.", ""]
    for title, names in SECTIONS:
        out += [f"## {title}", ""]
        for name in names:
            obj = getattr(mergegate, name)
            kind = "class" if inspect.isclass(obj) else "function"
            sig = "" if inspect.isclass(obj) and issubclass(obj, BaseException) else _signature(obj)
            out += [f"### `{name}{sig if kind == 'function' else ''}`", "", _doc(obj) or "(no docstring)", ""]
            if inspect.isclass(obj) and not issubclass(obj, BaseException):
                bases = [b.__name__ for b in obj.__mro__[1:] if getattr(mergegate, b.__name__, None) is b]
                if bases:
                    out += [f"Inherits everything `{bases[0]}` has.", ""]
                members = _members(obj)
                if members:
                    out += members + [""]
    return "\n".join(out).rstrip() + "\n"


def main(argv: list[str]) -> int:
    return write_or_check(OUT, render(), "api_docs.py", argv)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
