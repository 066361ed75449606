"""The limit a harness is measured against: the plain loop a careful engineer writes by hand.

    python bench/_bare_loop.py BASE_URL MODEL PROMPTS.json CONCURRENCY MAX_TOKENS SYSTEM_PROMPT

AsyncOpenAI + a semaphore + gather, both roles (candidate: no system prompt;
baseline: SYSTEM_PROMPT), no retries, no cache, no scoring: run as its own
process, so its start-up counts as a harness's does.
"""

from __future__ import annotations

import asyncio
import json
import sys

import openai


async def main(base_url: str, model: str, prompts: list[str], concurrency: int, max_tokens: int, system: str) -> None:
    client = openai.AsyncOpenAI(base_url=base_url, api_key="EMPTY", max_retries=0, timeout=300)
    sem = asyncio.Semaphore(concurrency)

    async def one(messages: list[dict]) -> str:
        async with sem:
            r = await client.chat.completions.create(model=model, messages=messages, temperature=0, seed=0, max_tokens=max_tokens)
            return r.choices[0].message.content or ""

    chats = [[{"role": "user", "content": p}] for p in prompts]
    chats += [[{"role": "system", "content": system}, {"role": "user", "content": p}] for p in prompts]
    out = await asyncio.gather(*(one(m) for m in chats))
    await client.close()
    print(f"{len(out)} answers")


if __name__ == "__main__":
    base, model, path, conc, tokens, system = sys.argv[1:7]
    with open(path) as fh:
        prompts = json.load(fh)
    asyncio.run(main(base, model, prompts, int(conc), int(tokens), system))
