"""Request building: one chat request per case, turn and role, with the role's system prompt, sampling and tools."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Optional

from ..checks.tools import tools_prompt
from ..client import Job, Response
from ..config.loader import LoadedConfig
from ..errors import InputError
from ..results import ROLES
from ..results.models import Role
from ..serving import Endpoint
from ..suites import Case, LoadedSuite, Sampling
from .scoring import ResponseKey

__all__ = ["build_jobs", "check_tools_reach_the_models"]


def check_tools_reach_the_models(loaded: LoadedConfig, selected: Iterable[tuple[LoadedSuite, Case]]) -> None:
    """Raise :class:`InputError` at the first case with tools that a vLLM model would reject.

    vLLM answers a request with ``tools`` (``tool_choice: auto``) with HTTP 400
    unless it was started with a tool-call parser; a 4xx is not retried, so the
    run would end INCOMPLETE on the GPU runner. Say so before any server starts.
    """
    deaf = [role for role in ROLES if (spec := loaded.config.models[role]).engine == "vllm" and spec.tool_format == "api"
            and not (spec.vllm and spec.vllm.tool_call_parser)]
    if not deaf:
        return
    for ls, case in selected:
        if case.tools or ls.suite.defaults.tools:
            raise InputError(f"case {case.id!r} offers tools, and models.{deaf[0]} (engine vllm, tool_format api) has no "
                             "vllm.tool_call_parser: vLLM rejects such requests (HTTP 400). Set the parser for the model's chat "
                             "template (e.g. hermes, llama3_json), or tool_format: prompt", ls.path, ls.case_lines.get(case.id))


def build_jobs(loaded: LoadedConfig, selected: Iterable[tuple[LoadedSuite, Case]], endpoints: dict[str, Endpoint], turn: int = 1,
               responses: Optional[dict[ResponseKey, Response]] = None) -> tuple[list[Job], dict[ResponseKey, Response]]:
    """Return the requests for ``turn`` of every case that has it, and the responses decided without a request.

    A multi-turn case's later turns carry the same model's earlier answers;
    when one of those failed, the turn is not sent and fails too.
    """
    jobs: list[Job] = []
    failed: dict[ResponseKey, Response] = {}
    for ls, case in selected:
        if case.n_turns < turn:
            continue
        for role in ROLES:
            key = (role, ls.name, case.id) if turn == case.n_turns else (role, ls.name, case.id, turn)
            earlier = [(responses or {}).get((role, ls.name, case.id, k)) for k in range(1, turn)]
            broken = next(((k, r) for k, r in enumerate(earlier, 1) if r is None or r.error), None)
            if broken is not None:
                failed[key] = Response(error=f"turn {broken[0]} failed: {broken[1].error if broken[1] else 'not generated'}")
                continue
            jobs.append(_job(loaded, key, ls, case, role, endpoints[role], [r.text for r in earlier if r is not None] or None))
    return jobs, failed


def _job(loaded: LoadedConfig, key: ResponseKey, ls: LoadedSuite, case: Case, role: Role, ep: Endpoint,
         answers: Optional[list[str]]) -> Job:
    """Return one request: the role's system prompt, then the suite's; sampling from model, suite and case, in that order."""
    spec = loaded.config.models[role]
    sampling: Sampling = ls.suite.defaults.sampling.merged_over(spec.sampling)
    if case.sampling is not None:
        sampling = case.sampling.merged_over(sampling)
    systems = [s for s in (ep.system_prompt, ls.suite.defaults.system_prompt) if s]
    offered = ls.suite.tools_of(case)
    tools = [t.model_dump() for t in offered] if offered else None
    if tools and spec.tool_format == "prompt":
        systems.append(tools_prompt(tools))
        tools = None
    return Job(key, ep, case.chat(systems, answers), sampling.model_dump(), tools, ls.suite.tool_choice_of(case) if tools else None)
