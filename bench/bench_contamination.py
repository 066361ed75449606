"""Contamination over a generated corpus of 1,000,000 lines: time, memory, and the planted overlaps found.

The corpus is JSONL (~20 words a line) with eval-case texts planted at known
lines (changed case and punctuation, inside longer lines). The reference, in
the same process, is the bare streaming pass every scan needs: read each
line, parse the JSON, tokenise; the ratio is the n-gram lookup's cost on top.

    .venv/bin/python bench/bench_contamination.py [--lines 1000000] [--n 8 13]
"""

from __future__ import annotations

import argparse
import json
import resource
import tempfile
import time
from pathlib import Path

import numpy as np

from mergegate.contamination import case_texts, find_overlaps, iter_training_texts, words
from mergegate.suites import discover_suites

REPO = Path(__file__).resolve().parents[1]


def write_corpus(path: Path, lines: int, plants: dict[int, str]) -> None:
    rng = np.random.default_rng(0)
    vocab = np.array([f"w{i}" for i in range(20_000)])
    lengths = rng.integers(8, 32, size=lines)
    with open(path, "w") as f:
        for i in range(lines):
            text = " ".join(vocab[rng.integers(0, len(vocab), size=lengths[i])])
            if i + 1 in plants:
                text += " " + plants[i + 1].upper() + "!!"
            f.write(json.dumps({"id": i, "text": text}) + "\n")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--lines", type=int, default=1_000_000)
    ap.add_argument("--n", type=int, nargs="+", default=[8, 13])
    args = ap.parse_args()
    suites = discover_suites([REPO / "eval_suites"])
    cases = [case_texts(ls.name, c) for ls in suites for c in ls.suite.cases]
    eligible = [c for c in cases if len(words(c.texts[0])) >= 4]
    planted_cases = eligible[:: max(1, len(eligible) // 10)][:10]
    step = args.lines // (len(planted_cases) + 1)
    plants = {step * (k + 1): c.texts[0] for k, c in enumerate(planted_cases)}
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "train.jsonl"
        t = time.perf_counter()
        write_corpus(path, args.lines, plants)
        print(f"corpus: {args.lines:,} lines, {path.stat().st_size / 2**20:.0f} MiB, written in {time.perf_counter() - t:.1f} s")
        t = time.perf_counter()
        n_tok = sum(len(words(text)) for _, _, text in iter_training_texts([path]))
        ref = time.perf_counter() - t
        rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        report = find_overlaps(cases, iter_training_texts([path]), ns=args.n)
        found = {(c.suite, c.case_id) for c in report.contaminated()}
        want = {(c.suite, c.case_id) for c in planted_cases}
        print(f"cases checked: {len(cases)}; planted: {len(want)}; found: {len(found)}; planted found: {len(want & found)}")
        print(f"reference (read + parse + tokenise, {n_tok:,} words): {ref:.1f} s")
        print(f"find_overlaps n={args.n}: {report.seconds:.1f} s  ({args.lines / report.seconds:,.0f} lines/s)")
        print(f"ratio find_overlaps / reference: {report.seconds / ref:.2f}")
        print(f"peak RSS: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB (before the scan: {rss_before:.0f} MiB)")
        assert want <= found, f"missed planted overlaps: {want - found}"


if __name__ == "__main__":
    main()
