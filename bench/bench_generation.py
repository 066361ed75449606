"""Generation phase: mergegate's generate_all vs a plain asyncio loop of the openai client.

Same server (one llama.cpp with the bundled SmolLM2), same requests, same
concurrency, cache off. Runs alternate (reference, mergegate, ...) so drift in
the machine hits both; prints the ratio of medians (mergegate / reference).
Also prints the peak RSS growth of each, as a ratio.

    .venv/bin/python bench/bench_generation.py [--cases 24] [--repeats 3]
"""

from __future__ import annotations

import argparse
import asyncio
import resource
import statistics
import time

import openai
from _common import start_bench_server

from mergegate.client import Job, generate_all
from mergegate.config import GenerationOptions
from mergegate.serving import Endpoint

PROMPTS = ["What is the capital of {}?", "Name one famous food from {}.", "In one sentence, describe the weather in {}."]
PLACES = ["France", "Japan", "Brazil", "Kenya", "Canada", "India", "Norway", "Peru"]


async def reference(base_url: str, model: str, messages: list, concurrency: int, max_tokens: int) -> float:
    """The plain loop a careful engineer would write by hand: AsyncOpenAI + semaphore + gather."""
    client = openai.AsyncOpenAI(base_url=base_url, api_key="EMPTY", max_retries=0, timeout=300)
    sem = asyncio.Semaphore(concurrency)

    async def one(m):
        async with sem:
            r = await client.chat.completions.create(model=model, messages=m, temperature=0, seed=0, max_tokens=max_tokens,
                                                     extra_body={"repeat_penalty": 1.0})
            return r.choices[0].message.content

    t = time.perf_counter()
    await asyncio.gather(*(one(m) for m in messages))
    wall = time.perf_counter() - t
    await client.close()
    return wall


def ours(ep: Endpoint, messages: list, concurrency: int, max_tokens: int) -> float:
    jobs = [Job(("candidate", "b", str(i)), ep, m, {"temperature": 0, "seed": 0, "max_tokens": max_tokens}) for i, m in enumerate(messages)]
    t = time.perf_counter()
    out, stats = generate_all(jobs, None, GenerationOptions(concurrency=concurrency), progress=False)
    wall = time.perf_counter() - t
    assert stats.errors == 0 and len(out) == len(jobs)
    return wall


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--cases", type=int, default=24)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--concurrency", type=int, default=4)
    ap.add_argument("--max-tokens", type=int, default=32)
    args = ap.parse_args()
    server, base = start_bench_server()
    try:
        messages = [[{"role": "user", "content": PROMPTS[i % 3].format(PLACES[i % 8]) + f" (#{i})"}] for i in range(args.cases)]
        ep = Endpoint("candidate", base, "bench", "llama-cpp", "EMPTY", None, None, {"repeat_penalty": 1.0}, server)
        asyncio.run(reference(base, "bench", messages[:4], args.concurrency, args.max_tokens))  # warm-up
        ref_t, our_t = [], []
        for _ in range(args.repeats):
            ref_t.append(asyncio.run(reference(base, "bench", messages, args.concurrency, args.max_tokens)))
            our_t.append(ours(ep, messages, args.concurrency, args.max_tokens))
        r, o = statistics.median(ref_t), statistics.median(our_t)
        print(f"cases={args.cases} concurrency={args.concurrency} max_tokens={args.max_tokens} repeats={args.repeats}")
        print(f"reference (plain openai asyncio loop): median {r:.2f}s  runs {[round(x, 2) for x in ref_t]}")
        print(f"mergegate generate_all:                median {o:.2f}s  runs {[round(x, 2) for x in our_t]}")
        print(f"ratio mergegate/reference: {o / r:.3f}")
        print(f"peak RSS of this process: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB")
    finally:
        server.stop()


if __name__ == "__main__":
    main()
