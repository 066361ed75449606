"""Collecting 10,000 cases: mergegate's loader and pytest collection vs a bare yaml.safe_load of the same file.

Prints the ratios (mergegate / yaml.safe_load) for: validated load with line
numbers (load_suite), and the whole `pytest --collect-only` of the suite.

    .venv/bin/python bench/bench_collection.py [--cases 10000]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import statistics
import tempfile
import time
from pathlib import Path

import pytest
import yaml

from mergegate.suites import load_suite


def write_suite(path: Path, n: int) -> None:
    lines = ["name: big", "cases:"]
    for i in range(n):
        lines += [f"  - id: case-{i}", f"    prompt: What is {i} plus {i}?", f'    reference: "{2 * i}"', "    category: simple",
                  "    checks:", "      - {type: contains, value: '" + str(2 * i) + "'}", "      - {type: token_f1, threshold: 0.5}"]
    path.write_text("\n".join(lines) + "\n")


def timed(fn, repeats: int) -> float:
    runs = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        runs.append(time.perf_counter() - t)
    return statistics.median(runs)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--cases", type=int, default=10_000)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    root = Path(tempfile.mkdtemp())
    (root / "eval_suites").mkdir()
    suite = root / "eval_suites" / "big.yaml"
    write_suite(suite, args.cases)
    (root / "mergegate.yaml").write_text("models:\n  candidate: {engine: external, model: m, base_url: 'http://127.0.0.1:9/v1'}\n"
                                         "  baseline: {engine: external, model: m, base_url: 'http://127.0.0.1:9/v1'}\n")
    ref = timed(lambda: yaml.safe_load(suite.read_text()), args.repeats)
    cref = timed(lambda: yaml.load(suite.read_text(), Loader=yaml.CSafeLoader), args.repeats)
    ours = timed(lambda: load_suite(suite), args.repeats)

    def collect():
        with contextlib.redirect_stdout(io.StringIO()):
            code = pytest.main(["--collect-only", "-q", "-p", "no:cacheprovider", "--rootdir", str(root), str(root / "eval_suites")])
        assert code == 0, code

    col = timed(collect, args.repeats)
    print(f"cases={args.cases} repeats={args.repeats}")
    print(f"reference yaml.safe_load:          {ref:.2f}s")
    print(f"reference yaml CSafeLoader (libyaml): {cref:.2f}s  ratio to safe_load {cref / ref:.2f}")
    print(f"mergegate load_suite (validated):  {ours:.2f}s  ratio {ours / ref:.2f} (vs CSafeLoader {ours / cref:.2f})")
    print(f"pytest --collect-only (all items): {col:.2f}s  ratio {col / ref:.2f}")


if __name__ == "__main__":
    main()
