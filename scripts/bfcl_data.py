"""BFCL's function-calling cases as mergegate data: JSONL to split, then a suite of the eval split.

Data nobody here wrote: the Berkeley Function-Calling Leaderboard's cases (prompts,
tools, several acceptable values per argument), read from the installed ``bfcl-eval``
package (bootstrap installs it), never committed. Three steps, the middle one
mergegate's own::

    python scripts/bfcl_data.py export --out data/bfcl/all.jsonl
    mergegate split data/bfcl/all.jsonl --key group --out data/bfcl --ratios train=0.7 test=0.3
    python scripts/bfcl_data.py suite data/bfcl/test.jsonl --out eval_suites/bfcl.yaml

Each record holds the case's ``id``, ``category``, ``prompt``, ``group`` (the
prompt in lower case with punctuation and extra spaces gone), ``tools`` (OpenAI
format), ``expected`` (the tool_call check's calls) and ``target``: the canonical
answer as the JSON text a model in ``tool_format: prompt`` writes (what a
fine-tune trains on). Irrelevance cases expect no call and have no target.

Split by ``group``, not ``id``: BFCL asks the same question in several categories
(with other tools), and by ``id`` 46 of 239 eval cases had their question in the
training split (``mergegate contamination`` found them); by exact ``prompt`` one
pair that differs only in case was still split apart.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path
from typing import Any, Optional

import yaml

from mergegate.checks.tools import expected_from_bfcl, tool_from_bfcl

CATEGORIES = ("simple_python", "multiple", "irrelevance")


def _read(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def records(categories: tuple[str, ...] = CATEGORIES) -> list[dict[str, Any]]:
    """Return one record per BFCL case of ``categories`` that has a single user turn (see the module docstring)."""
    import bfcl_eval

    data = Path(bfcl_eval.__file__).parent / "data"
    out = []
    for category in categories:
        answers_file = data / "possible_answer" / f"BFCL_v4_{category}.json"
        answers = {a["id"]: a["ground_truth"] for a in _read(answers_file)} if answers_file.exists() else {}
        for case in _read(data / f"BFCL_v4_{category}.json"):
            turns = case["question"]
            if len(turns) != 1 or [m["role"] for m in turns[0]] != ["user"]:
                continue
            expected = expected_from_bfcl(answers[case["id"]]) if case["id"] in answers else []
            if expected is None:  # nested answers beyond the alternatives limit: not a fair case
                continue
            prompt = turns[0][0]["content"]
            out.append({"id": case["id"], "category": category, "prompt": prompt, "group": _group(prompt),
                        "tools": [tool_from_bfcl(f) for f in case["function"]],
                        "expected": [e.model_dump(exclude_defaults=True) for e in expected],
                        "target": _target(expected)})
    return out


def _group(prompt: str) -> str:
    """Return what identifies a question across categories: lower case, letters, digits and single spaces."""
    return " ".join(re.sub(r"[^\w\s]", " ", prompt.lower()).split())


def _target(expected: list) -> Optional[str]:
    """Return the canonical answer as JSON text: one call as an object, several as a list; None when no call is expected."""
    calls = [{"name": e.name, "arguments": {k: v for k, v in e.arguments.items() if not (k in e.optional and v == "")}}
             for e in expected]
    if not calls:
        return None
    return json.dumps(calls[0] if len(calls) == 1 else calls, ensure_ascii=False)


def suite(split: Path, name: str) -> dict[str, Any]:
    """Return a suite (YAML-ready) of the records in the JSONL ``split``: one tool_call check per case."""
    cases = []
    for r in _read(split):
        cases.append({"id": r["id"].replace("_", "-"), "category": r["category"].replace("simple_python", "simple"),
                      "prompt": r["prompt"], "tools": r["tools"],
                      "checks": [{"type": "tool_call", "calls": r["expected"], "strings": "normalized"}]})
    return {"name": name, "description": "BFCL v4 function calling (bfcl-eval), the eval split of `mergegate split`; "
                                         "strings compared as BFCL compares them", "cases": cases}


def main(argv: Optional[list[str]] = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="command", required=True)
    ex = sub.add_parser("export", help="write every usable BFCL case as one JSONL record")
    ex.add_argument("--out", type=Path, required=True)
    ex.add_argument("--categories", nargs="+", default=list(CATEGORIES))
    su = sub.add_parser("suite", help="write a suite of one split's records")
    su.add_argument("split", type=Path)
    su.add_argument("--out", type=Path, required=True)
    su.add_argument("--name", default="bfcl")
    args = ap.parse_args(argv)
    if args.command == "export":
        rows = records(tuple(args.categories))
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
        print(f"wrote {len(rows)} case(s) to {args.out}")
    else:
        doc = suite(args.split, args.name)
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(yaml.safe_dump(doc, sort_keys=False, allow_unicode=True, width=120), encoding="utf-8")
        print(f"wrote {len(doc['cases'])} case(s) to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
