"""The demo's suites, sized for their gates: BFCL's held-out function-calling cases (target) and two general suites.

    .venv/bin/python scripts/demo_suites.py            # (re)writes eval_suites/demo/*.yaml
    .venv/bin/python scripts/demo_suites.py --check    # exit 1 when a committed suite is not what this writes

- ``bfcl_simple`` (target): the eval split of BFCL v4's ``simple_python`` cases (bfcl-eval on
  PyPI, Apache-2.0, Berkeley Function-Calling Leaderboard), split by ``mergegate split --key
  group`` exactly as scripts/train_adapter.py splits its training data: no eval question is
  in the training split. Committed (106 cases, ~60 kB) with this attribution, so a reviewer
  sees what the gate decides on; ``--check`` regenerates it from the installed package.
- ``arithmetic`` and ``comparisons`` (general): what the base model can already do and a
  fine-tune for function calling must not break. Generated here (every a + b and a x b of
  the numbers 2 to 12; seeded number comparisons and parity questions), so no answer key
  is hand-typed.

Sizes follow the gates' power (docs/statistics.md, "Noise and evidence"): the guardrail catches a
10-point drop with 80% power when the paired standard error is at most ~3.6 points, i.e.
n >= d / 0.0013 for a share d of discordant cases. Measured with the good adapter, d was
~0.3 on multiplication (242 cases: 2 tables) and ~0.08 on comparisons (120 cases).
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "eval_suites" / "demo"
sys.path.insert(0, str(ROOT / "scripts"))

HEADER = "# yaml-language-server: $schema=../../schema/suite.schema.json\n# Written by scripts/demo_suites.py: edit that, not this file.\n"


def _regex_number(n: int) -> dict[str, Any]:
    """Return a check that the answer states ``n`` (not as part of a longer number)."""
    return {"type": "regex", "value": rf"(?<![\d.]){n}(?![\d.]*\d)"}


def bfcl_simple() -> dict[str, Any]:
    """Return the target suite: BFCL simple_python's eval split."""
    import bfcl_data
    import train_adapter

    with tempfile.TemporaryDirectory() as tmp:
        _, test = train_adapter.prepare_data(Path(tmp))
        doc = bfcl_data.suite(test, "bfcl_simple")
    return {"name": "bfcl_simple", "version": 1,
            "description": "BFCL v4 simple_python function calling, the eval split (bfcl-eval, Apache-2.0, "
                           "Berkeley Function-Calling Leaderboard: gorilla.cs.berkeley.edu); what the demo's LoRA was trained for",
            "task": "tool_calling", "role": "target", "defaults": {"sampling": {"max_tokens": 96}}, "cases": doc["cases"]}


def arithmetic() -> dict[str, Any]:
    """Return every sum and every product of the numbers 2 to 12 (242 cases)."""
    ops = (("addition", "plus", "plus", lambda a, b: a + b), ("multiplication", "x", "times", lambda a, b: a * b))
    cases = [{"id": f"{a}{sym}{b}", "category": kind, "prompt": f"What is {a} {word} {b}?", "reference": str(op(a, b)),
              "checks": [_regex_number(op(a, b))]}
             for kind, sym, word, op in ops for a in range(2, 13) for b in range(2, 13)]
    return {"name": "arithmetic", "version": 1, "description": "Addition and multiplication tables 2 to 12: general arithmetic "
            "a function-calling fine-tune must not break", "task": "qa", "role": "general",
            "defaults": {"sampling": {"max_tokens": 32}}, "cases": cases}


def comparisons(n: int = 120, seed: int = 14) -> dict[str, Any]:
    """Return ``n`` seeded questions: which of two numbers is larger, and whether a number is even or odd."""
    rng = random.Random(seed)
    cases = []
    for i in range(n):
        if i % 2 == 0:
            a, b = rng.sample(range(1, 100), 2)
            # the first number the answer names is its answer ("60 is larger than 39" is right, "39 is larger than 60" is not)
            cases.append({"id": f"larger-{a}-{b}", "category": "larger", "prompt": f"Which number is larger, {a} or {b}?",
                          "reference": str(max(a, b)), "checks": [{"type": "regex", "value": rf"^\D*(?<![\d.]){max(a, b)}(?![\d.]*\d)"}]})
        else:
            k = rng.randrange(1, 100)
            word, other = ("even", "odd") if k % 2 == 0 else ("odd", "even")
            cases.append({"id": f"parity-{k}-{i}", "category": "parity", "prompt": f"Is {k} an even or an odd number?",
                          "reference": word, "checks": [{"type": "regex", "value": rf"(?i)\b{word}\b"},
                                                        {"type": "regex", "value": rf"(?i)^(?!.*\b{other}\b)"}]})
    return {"name": "comparisons", "version": 1, "description": "Which of two numbers is larger; is a number even or odd: "
            "general reasoning a function-calling fine-tune must not break", "task": "qa", "role": "general",
            "defaults": {"sampling": {"max_tokens": 32}}, "cases": cases}


SUITES = {"bfcl_simple": bfcl_simple, "arithmetic": arithmetic, "comparisons": comparisons}


def render(doc: dict[str, Any]) -> str:
    """Return the suite file's text."""
    return HEADER + yaml.safe_dump(doc, sort_keys=False, allow_unicode=True, width=120)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--check", action="store_true", help="compare with the committed files instead of writing them")
    ap.add_argument("--out", type=Path, default=OUT)
    args = ap.parse_args(argv)
    stale = []
    for name, make in SUITES.items():
        path, text = args.out / f"{name}.yaml", render(make())
        if args.check:
            if not path.exists() or path.read_text(encoding="utf-8") != text:
                stale.append(str(path))
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        print(f"wrote {path}")
    if stale:
        print("not what scripts/demo_suites.py writes: " + ", ".join(stale), file=sys.stderr)
    return 1 if stale else 0


if __name__ == "__main__":
    sys.exit(main())
