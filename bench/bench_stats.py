"""Cost of error bars: summarize() of a 10,000-case suite with every paired interval vs the same without them.

Two metrics per case (pass/fail and a continuous score: Agresti-Min and a
2,000-resample paired bootstrap), plus MDE and cases-needed. The reference is
the same summarize() with the paired computation switched off, in the same
process; runs alternate, median of 3. Prints the ratio.

    .venv/bin/python bench/bench_stats.py [--cases 10000]
"""

from __future__ import annotations

import argparse
import resource
import statistics
import time

import numpy as np

import mergegate.results.aggregate as agg
from mergegate.results import CaseResult, CheckResult, Generation, SideResult


def cases(n: int) -> list[CaseResult]:
    rng = np.random.default_rng(0)

    def side(p: bool, score: float) -> SideResult:
        return SideResult(generation=Generation(text="x", latency_ms=5.0), passed=p,
                          checks=[CheckResult(type="contains", metric="contains", score=float(p), passed=p),
                                  CheckResult(type="rouge_l", metric="rouge_l", score=score, passed=None)])

    return [CaseResult(suite="s", id=f"c{i}", category=f"k{i % 4}", blocking=False, input="q",
                       candidate=side(bool(rng.random() < 0.7), float(rng.random())),
                       baseline=side(bool(rng.random() < 0.7), float(rng.random()))) for i in range(n)]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--cases", type=int, default=10_000)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    data = cases(args.cases)
    real = agg.paired
    ref_t, our_t = [], []
    for _ in range(args.repeats):
        agg.paired = lambda *a, **k: None  # the reference: the same aggregation without intervals
        t = time.perf_counter()
        agg.summarize(data)
        ref_t.append(time.perf_counter() - t)
        agg.paired = real
        t = time.perf_counter()
        s = agg.summarize(data)
        our_t.append(time.perf_counter() - t)
    assert s.pass_rate.paired is not None and s.metrics["rouge_l"].paired is not None
    r, o = statistics.median(ref_t), statistics.median(our_t)
    print(f"cases={args.cases} repeats={args.repeats}")
    print(f"reference summarize() without intervals: median {r:.3f}s  runs {[round(x, 3) for x in ref_t]}")
    print(f"summarize() with paired intervals:       median {o:.3f}s  runs {[round(x, 3) for x in our_t]}")
    print(f"ratio with/without: {o / r:.2f}")
    print(f"peak RSS of this process: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB")


if __name__ == "__main__":
    main()
