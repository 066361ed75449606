"""A suite from a dataset file: each CSV row or JSONL record becomes a case (``mergegate import``).

Teams keep eval data as spreadsheets and JSONL; this writes it in the suite
vocabulary once, so the YAML is what they review and version from then on.
"""

from __future__ import annotations

import csv
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Optional

import yaml

from ..errors import InputError

_WORDLIKE = re.compile(r"[\w.]+")

__all__ = ["read_records", "suite_from_records", "dump", "IMPORT_CHECKS"]

#: Checks an import can attach, and whether they take the reference as their ``value``.
IMPORT_CHECKS = {"contains": True, "equals": False, "token_f1": False, "rouge_l": False, "bleu": False, "chrf": False,
                 "similarity": False, "bertscore": False}


def read_records(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """Yield ``(line, record)`` from a CSV file (header row first) or a JSONL file (one object per line)."""
    if not path.is_file():
        raise InputError("no such file", path)
    if path.suffix.lower() == ".csv":
        with open(path, newline="", encoding="utf-8") as fh:
            reader = csv.DictReader(fh)
            for row in reader:
                yield reader.line_num, row
        return
    with open(path, encoding="utf-8") as fh:
        for n, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except ValueError as exc:
                raise InputError(f"not a JSON object: {exc}", path, n) from None
            if not isinstance(record, dict):
                raise InputError("each line must be a JSON object", path, n)
            yield n, record


def _slug(text: str) -> str:
    slug = re.sub(r"[^A-Za-z0-9_.-]+", "-", text).strip("-.")[:60]
    return slug if slug and slug[0].isalnum() else f"case-{slug}".rstrip("-")


def _field(where: tuple[dict[str, Any], Path, int], key: Optional[str], required: bool = True) -> Optional[str]:
    """Return the record's ``key`` as text; a missing or empty required field is an error naming file and line."""
    rec, path, line = where
    value = rec.get(key) if key else None
    if (value is None or str(value).strip() == "") and required:
        raise InputError(f"field {key!r} is missing or empty (fields here: {', '.join(map(str, rec)) or 'none'})", path, line)
    return None if value is None else str(value)


def _case(where: tuple[dict[str, Any], Path, int], default_id: str, prompt: str, reference: Optional[str], checks: list[str],
          id_field: Optional[str], category: Optional[str]) -> dict[str, Any]:
    """Return one record as a case."""
    case: dict[str, Any] = {"id": _slug(_field(where, id_field) or "") if id_field else default_id, "prompt": _field(where, prompt)}
    ref = _field(where, reference) if reference else None
    if ref is not None:
        case["reference"] = ref
    if category and _field(where, category, required=False):
        case["category"] = _slug(_field(where, category) or "")
    case["checks"] = [_reference_check(c, ref) if IMPORT_CHECKS[c] else {"type": c} for c in checks]
    return case


def _reference_check(check: str, ref: Optional[str]) -> dict[str, Any]:
    """Return the check of the reference: ``contains``, except for a short or numeric reference, matched as a whole word.

    A substring "no" is inside "not", "5" inside "15": a model that says the opposite would pass.
    """
    if check == "contains" and ref is not None and _WORDLIKE.fullmatch(ref) and (len(ref) <= 3 or ref.replace(".", "").isdigit()):
        return {"type": "regex", "value": rf"(?<![\w.]){re.escape(ref)}(?!\w|\.\d)", "ignore_case": True}
    return {"type": check, "value": ref}


def suite_from_records(path: Path, name: str, prompt: str, reference: Optional[str], checks: list[str], role: str,
                       id_field: Optional[str] = None, category: Optional[str] = None) -> dict[str, Any]:
    """Return a suite document (a dict ready for YAML) with one case per record of ``path``."""
    unknown = [c for c in checks if c not in IMPORT_CHECKS]
    if unknown:
        raise InputError(f"--check {unknown[0]!r} cannot be imported; choose from {', '.join(IMPORT_CHECKS)}")
    if any(IMPORT_CHECKS[c] for c in checks) and not reference:
        raise InputError(f"--check {next(c for c in checks if IMPORT_CHECKS[c])} needs --reference (the field with the answer)")
    cases: list[dict[str, Any]] = []
    seen: set[str] = set()
    for line, rec in read_records(path):
        case = _case((rec, path, line), f"{name}-{len(cases) + 1}", prompt, reference, checks, id_field, category)
        if case["id"] in seen:
            raise InputError(f"duplicate id {case['id']!r} (--id {id_field})", path, line)
        seen.add(case["id"])
        cases.append(case)
    if not cases:
        raise InputError("no records to import", path)
    return {"name": name, "version": 1, "description": f"Imported from {path.name}.", "role": role, "cases": cases}


def dump(doc: dict[str, Any]) -> str:
    """Return the suite as YAML, keys in the order written, long strings kept readable."""
    return "# yaml-language-server: $schema=../schema/suite.schema.json\n" + yaml.safe_dump(
        doc, sort_keys=False, allow_unicode=True, width=120, default_flow_style=False)
