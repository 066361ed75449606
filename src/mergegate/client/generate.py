"""Concurrent generation through the official ``openai`` async client.

Every request of a session is sent here at once: per server a semaphore bounds
the requests in flight, both models run side by side, cached responses are
served without a request, transient failures are retried with backoff.
"""

from __future__ import annotations

import asyncio
import collections
import dataclasses
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Optional

import openai
from openai.types.chat import ChatCompletion
from tqdm import tqdm

from ..config.models import GenerationOptions
from ..serving.fleet import Endpoint
from .cache import ResponseCache, cache_key

__all__ = ["Job", "Response", "GenerationStats", "generate_all", "request_body"]


@dataclass(frozen=True)
class Job:
    """One request to make: ``key`` identifies it to the caller (e.g. role, suite, case)."""

    key: tuple
    endpoint: Endpoint
    messages: list[dict[str, str]]
    sampling: dict[str, Any]
    tools: Optional[list[dict[str, Any]]] = None  # OpenAI tools sent with the request
    tool_choice: Optional[Any] = None  # the API's tool_choice, with tools only


@dataclass
class Response:
    """What came back for one job. ``error`` is set when every attempt failed."""

    text: str = ""
    finish_reason: Optional[str] = None
    prompt_tokens: Optional[int] = None
    completion_tokens: Optional[int] = None
    latency_ms: Optional[float] = None
    tool_calls: Optional[list[dict[str, Any]]] = None  # [{"name", "arguments" (JSON text)}] when the API returned calls
    cached: bool = False
    attempts: int = 0
    error: Optional[str] = None


@dataclass
class GenerationStats:
    """Counts for one generation phase."""

    requests_sent: int = 0
    cache_hits: int = 0
    errors: int = 0
    wall_s: float = 0.0
    per_role: dict[str, dict[str, int]] = field(default_factory=dict)

    def merged(self, other: GenerationStats) -> GenerationStats:
        """Return the counts of this phase and ``other`` together (wall time adds up: the phases ran one after another)."""
        per_role = {r: dict(c) for r, c in self.per_role.items()}
        for role, counts in other.per_role.items():
            mine = per_role.setdefault(role, {"requests_sent": 0, "cache_hits": 0, "errors": 0})
            for k, v in counts.items():
                mine[k] = mine.get(k, 0) + v
        return GenerationStats(self.requests_sent + other.requests_sent, self.cache_hits + other.cache_hits,
                               self.errors + other.errors, self.wall_s + other.wall_s, per_role)

    def bump(self, role: str, what: str) -> None:
        self.per_role.setdefault(role, {"requests_sent": 0, "cache_hits": 0, "errors": 0})[what] += 1


_RETRYABLE = (openai.APIConnectionError, openai.APITimeoutError, openai.RateLimitError, openai.InternalServerError)


def request_body(job: Job) -> dict[str, Any]:
    """Return the chat-completions request body for ``job`` (also what the cache key covers)."""
    body: dict[str, Any] = {"model": job.endpoint.model, "messages": job.messages}
    body.update({k: v for k, v in job.sampling.items() if v is not None})
    if job.tools:
        body["tools"] = job.tools
        if job.tool_choice is not None:
            body["tool_choice"] = job.tool_choice
    body.update(job.endpoint.extra_body)
    return body


def _retry_after(exc: Exception) -> Optional[float]:
    response = getattr(exc, "response", None)
    if response is None:
        return None
    value = response.headers.get("retry-after")
    try:
        return min(float(value), 60.0) if value is not None else None
    except ValueError:
        return None


async def _one(client: openai.AsyncOpenAI, job: Job, body: dict, opts: GenerationOptions, stats: GenerationStats) -> Response:
    last_error = ""
    last_error = ""
    for attempt in range(opts.max_retries + 1):
        stats.requests_sent += 1
        stats.bump(job.endpoint.role, "requests_sent")
        started = time.perf_counter()
        try:
            # The body exactly as built (and as the cache key covers it), through the client's own request path
            # (auth, timeouts, typed errors, the typed ChatCompletion): ``chat.completions.create`` would first
            # re-walk every message through its TypedDict transform, ~30% of the client's CPU per request.
            completion = await client.post("/chat/completions", cast_to=ChatCompletion, body=body)
        except _RETRYABLE as exc:
            last_error = f"{type(exc).__name__}: {exc}"
            server = job.endpoint.server
            if server is not None and not server.alive():
                return Response(attempts=attempt + 1, error=f"server died: {last_error}")
            if attempt < opts.max_retries:
                await asyncio.sleep(_retry_after(exc) or opts.backoff_s * (2**attempt))
            continue
        except openai.APIStatusError as exc:  # 4xx other than 429: retrying will not help
            return Response(attempts=attempt + 1, error=f"{type(exc).__name__}: {exc}")
        except (openai.APIError, ValueError) as exc:  # a body that is not the API's JSON: retry, then record
            last_error = f"malformed response: {type(exc).__name__}: {exc}"
            if attempt < opts.max_retries:
                await asyncio.sleep(opts.backoff_s * (2**attempt))
            continue
        try:
            return _response(completion, (time.perf_counter() - started) * 1000.0, attempt + 1)
        except EmptyAnswer as exc:  # retried like a malformed body, then a failed request counted against error_tolerance
            last_error = str(exc)
        except (AttributeError, IndexError, TypeError) as exc:
            last_error = f"malformed response: {exc}"
    return Response(attempts=opts.max_retries + 1, error=last_error or "failed")


class EmptyAnswer(ValueError):
    """The completion carried neither text nor a tool call: a failed request, never an answer (and never cached)."""


def _response(completion: Any, latency_ms: float, attempts: int) -> Response:
    """Return the :class:`Response` in an API completion.

    Raises AttributeError/IndexError/TypeError when it is malformed, and
    :class:`EmptyAnswer` when ``content`` is null or empty with no tool call
    (a broken server, or a reasoning model that spent its tokens before
    answering): scored as an empty answer it could pass score-only checks and
    would be cached as a success.
    """
    choice = completion.choices[0]
    calls = [{"name": tc.function.name, "arguments": tc.function.arguments} for tc in (choice.message.tool_calls or [])]
    if not choice.message.content and not calls:
        reasoning = " (the reasoning used the tokens)" if getattr(choice.message, "reasoning_content", None) else ""
        raise EmptyAnswer(f"empty answer: content is {choice.message.content!r}, no tool call, finish_reason "
                          f"{choice.finish_reason!r}{reasoning}")
    usage = completion.usage
    return Response(text=choice.message.content or "", finish_reason=choice.finish_reason, tool_calls=calls or None,
                    prompt_tokens=getattr(usage, "prompt_tokens", None), completion_tokens=getattr(usage, "completion_tokens", None),
                    latency_ms=latency_ms, attempts=attempts)


_CACHED_FIELDS = frozenset(f.name for f in dataclasses.fields(Response)) - {"cached", "error", "attempts"}


def _cached(cache: ResponseCache, key: str) -> Optional[Response]:
    """Return the cached response under ``key`` when it is one this client would have stored, else None (a miss)."""
    row = cache.get(key)
    if row is None:
        return None
    why = ""
    if not set(row) <= _CACHED_FIELDS:
        why = f"unknown fields {sorted(set(row) - _CACHED_FIELDS)}"
    elif not isinstance(row.get("text", ""), str) or not isinstance(row.get("tool_calls") or [], list):
        why = "text or tool_calls of the wrong type"
    elif not row.get("text") and not row.get("tool_calls"):
        why = "an empty answer"  # never stored by this version: an empty answer is a failed request
    if why:
        cache.reject(key, why)
        return None
    return Response(**row, cached=True)


async def _generate(jobs: Sequence[Job], cache: Optional[ResponseCache], opts: GenerationOptions, progress: bool,
                    on_result: Optional[Callable[[Job, Response], None]], label: str) -> tuple[dict[tuple, Response], GenerationStats]:
    stats = GenerationStats()
    results: dict[tuple, Response] = {}
    clients: dict[str, openai.AsyncOpenAI] = {}
    # `concurrency` is per server: two roles served by one endpoint share its requests in flight
    queues: dict[str, collections.deque[tuple[Job, dict, Optional[str]]]] = {}
    for job in jobs:
        body = request_body(job)
        key = cache_key(job.endpoint.identity, body) if (cache is not None and job.endpoint.identity) else None
        hit = _cached(cache, key) if cache is not None and key else None
        if hit is not None:
            stats.cache_hits += 1
            stats.bump(job.endpoint.role, "cache_hits")
            results[job.key] = hit
            continue
        queues.setdefault(job.endpoint.base_url, collections.deque()).append((job, body, key))
        role = job.endpoint.role
        if role not in clients:
            clients[role] = openai.AsyncOpenAI(base_url=job.endpoint.base_url, api_key=job.endpoint.api_key,
                                               max_retries=0, timeout=opts.timeout_s)
    import sys

    # In a CI log (no terminal) a redraw per request is noise: update every 10 s instead.
    todo = sum(len(q) for q in queues.values())
    bar = tqdm(total=todo, desc=label, unit="req", disable=not progress or not todo, leave=False,
               mininterval=0.5 if sys.stderr.isatty() else 10.0)

    async def worker(queue: collections.deque[tuple[Job, dict, Optional[str]]]) -> None:
        # A fixed pool of workers per server rather than a task per request: 20,000 pending tasks held ~60 MB.
        while queue:
            job, body, key = queue.popleft()
            resp = await _one(clients[job.endpoint.role], job, body, opts, stats)
            if resp.error and len(job.endpoint.api_key) >= 6 and job.endpoint.api_key in resp.error:
                resp.error = resp.error.replace(job.endpoint.api_key, "***")  # a 401 body that echoes the key
            if resp.error:
                stats.errors += 1
                stats.bump(job.endpoint.role, "errors")
            elif key is not None and cache is not None:
                cache.put(key, {k: v for k, v in resp.__dict__.items() if k not in ("cached", "error", "attempts")})
            results[job.key] = resp
            bar.update(1)
            if on_result is not None:
                on_result(job, resp)

    started = time.perf_counter()
    try:
        await asyncio.gather(*(worker(q) for q in queues.values() for _ in range(min(opts.concurrency, len(q)))))
    finally:
        bar.close()
        for client in clients.values():
            await client.close()
    stats.wall_s = time.perf_counter() - started
    return results, stats


def generate_all(jobs: Sequence[Job], cache: Optional[ResponseCache], opts: GenerationOptions, *, progress: bool = True,
                 on_result: Optional[Callable[[Job, Response], None]] = None,
                 label: str = "generating") -> tuple[dict[tuple, Response], GenerationStats]:
    """Return the response of every job (by ``job.key``) and the phase's counts.

    Never raises for a failed request: the :class:`Response` carries the error,
    so the caller decides whether the run is complete.
    """
    return asyncio.run(_generate(jobs, cache, opts, progress, on_result, label))
