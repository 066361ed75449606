"""Judge phase: mergegate's judge (ask: schema, parse, re-ask, usage) vs a plain asyncio loop sending the same requests.

Same server (llama.cpp, bundled SmolLM2 as judge), same position-swapped
pairwise prompts with the same grammar-constrained response_format, same
concurrency, cache off; the reference only json-parses the replies. Runs
alternate; prints the ratio of medians. Then times a rerun with the cache warm
against the cold run (the judge is cached like generations).

    .venv/bin/python bench/bench_judge.py [--pairs 12] [--repeats 3]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import statistics
import tempfile
import time
from pathlib import Path

import openai
from _common import start_bench_server

from mergegate.client import ResponseCache
from mergegate.config import GenerationOptions
from mergegate.judge import prompts
from mergegate.judge.engine import MAX_TOKENS, Task, ask
from mergegate.results import JudgeUsage
from mergegate.serving import Endpoint

QUESTIONS = ["What is the capital of {}?", "Name one famous food from {}.", "What language is spoken in {}?"]
PLACES = ["France", "Japan", "Brazil", "Kenya", "Canada", "India", "Norway", "Peru"]


def tasks(n: int) -> list[Task]:
    out = []
    for i in range(n):
        q = QUESTIONS[i % 3].format(PLACES[i % 8]) + f" (#{i})"
        a, b = f"A short, correct answer about {PLACES[i % 8]}.", "I do not know."
        out += [Task((i, "AB"), "pairwise", prompts.pairwise_messages(q, a, b, None)),
                Task((i, "BA"), "pairwise", prompts.pairwise_messages(q, b, a, None))]
    return out


async def reference(base_url: str, ts: list[Task], concurrency: int) -> float:
    client = openai.AsyncOpenAI(base_url=base_url, api_key="EMPTY", max_retries=0, timeout=300)
    sem = asyncio.Semaphore(concurrency)
    fmt = prompts.response_format("llama-cpp", prompts.pairwise_schema())

    async def one(t: Task):
        async with sem:
            r = await client.chat.completions.create(model="bench", messages=t.messages, temperature=0, top_p=1, seed=0,
                                                     max_tokens=MAX_TOKENS, extra_body={"repeat_penalty": 1.0, "response_format": fmt})
            return json.loads(r.choices[0].message.content, strict=False)

    t0 = time.perf_counter()
    await asyncio.gather(*(one(t) for t in ts))
    wall = time.perf_counter() - t0
    await client.close()
    return wall


def ours(ep: Endpoint, ts: list[Task], concurrency: int, cache=None) -> tuple[float, JudgeUsage]:
    usage = JudgeUsage()
    t0 = time.perf_counter()
    answers = ask(ts, ep, cache, GenerationOptions(concurrency=concurrency), 2, usage)
    wall = time.perf_counter() - t0
    assert len(answers) == len(ts)
    return wall, usage


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--pairs", type=int, default=12)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--concurrency", type=int, default=4)
    args = ap.parse_args()
    server, base = start_bench_server()
    try:
        ts = tasks(args.pairs)
        ep = Endpoint("judge", base, "bench", "llama-cpp", "EMPTY", {"engine": "llama-cpp", "model": "bench", "revision": "x"}, None,
                      {"repeat_penalty": 1.0}, server)
        asyncio.run(reference(base, ts[:2], args.concurrency))  # warm-up
        ref_t, our_t = [], []
        for _ in range(args.repeats):
            ref_t.append(asyncio.run(reference(base, ts, args.concurrency)))
            our_t.append(ours(ep, ts, args.concurrency)[0])
        r, o = statistics.median(ref_t), statistics.median(our_t)
        cache = ResponseCache(Path(tempfile.mkdtemp()) / "judge.sqlite")
        cold, _ = ours(ep, ts, args.concurrency, cache)
        warm, usage = ours(ep, ts, args.concurrency, cache)
        cache.close()
        print(f"pairs={args.pairs} (x2 orders = {len(ts)} requests) concurrency={args.concurrency} repeats={args.repeats}")
        print(f"reference (plain openai asyncio loop + json.loads): median {r:.2f}s  runs {[round(x, 2) for x in ref_t]}")
        print(f"mergegate judge ask():                            median {o:.2f}s  runs {[round(x, 2) for x in our_t]}")
        print(f"ratio mergegate/reference: {o / r:.3f}")
        print(f"cached rerun: {warm:.3f}s vs cold {cold:.2f}s (ratio {warm / cold:.4f}); requests sent on rerun: {usage.calls}")
        print(f"peak RSS of this process: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB")
    finally:
        server.stop()


if __name__ == "__main__":
    main()
