"""The benchmark phase: lm-eval tasks on both served models (and references), for forgetting."""

from __future__ import annotations

import sys
from pathlib import Path

from ..config.loader import LoadedConfig
from ..config.models import ModelSpec
from ..results import ROLES, BenchmarkResult
from ..serving import Endpoint

__all__ = ["run_benchmark_phase"]


def run_benchmark_phase(loaded: LoadedConfig, endpoints: dict[str, Endpoint], output_dir: Path,
                        log_dir: Path) -> tuple[list[BenchmarkResult], list[str]]:
    """Run the configured lm-eval tasks; return the rows and the failures (a task that did not run makes the run INCOMPLETE).

    Loglikelihood tasks on GGUF models read prompt log-probabilities from
    mergegate's scoring server (llama-cpp-python's echo logprobs are wrong);
    references without a server of their own get one here. Every server this
    phase starts is stopped before it returns.
    """
    from ..benchmarks import Target, run_benchmarks
    from ..serving import ManagedServer, free_port, resolve_model_path
    from ..serving.engines import build_command, identity, ready_path, request_extras, served_model

    cfg = loaded.config
    opts = cfg.benchmarks
    assert opts is not None
    started: dict[str, ManagedServer] = {}  # scoring and reference servers, by what they serve

    def server(key: str, name: str, cmd: list[str], ready: str) -> ManagedServer:
        if key not in started:
            started[key] = ManagedServer(name, cmd, ready.format(port=cmd[cmd.index("--port") + 1]), log_dir / f"{name}.log")
            started[key].start(cfg.generation.server_start_timeout_s)
        return started[key]

    def target(role: str, spec: ModelSpec, ep: Endpoint) -> Target:
        completions, tokenizer = None, "remote"
        gguf = spec.scoring_model or (spec.model if spec.engine == "llama-cpp" else None)
        if spec.engine == "vllm":
            completions, tokenizer = ep.base_url + "/completions", "huggingface"
        elif gguf:
            path = resolve_model_path(gguf, loaded.root)
            port = str(free_port())
            s = server("scorer:" + path, f"scorer-{role.replace(':', '-')}", [sys.executable, "-m", "mergegate.serving.logprobs",
                       "--model", path, "--alias", ep.model, "--port", port], "http://127.0.0.1:{port}/v1/models")
            completions = s.ready_url.rsplit("/", 1)[0] + "/completions"
        return Target(role, ep.model, ep.base_url + "/chat/completions", completions, tokenizer,
                      ep.identity or {"model": spec.model, "engine": spec.engine}, ep.system_prompt, dict(ep.extra_body),
                      concurrency=cfg.generation.concurrency,
                      scoring_concurrency=cfg.generation.concurrency if spec.engine == "vllm" else 1)

    try:
        targets: dict[str, Target] = {role: target(role, cfg.models[role], endpoints[role]) for role in ROLES}
        for label, spec in opts.references.items():
            role = f"ref:{label}"
            if spec.engine == "external":
                assert spec.base_url is not None
                base = spec.base_url.rstrip("/")
                path = spec.model
            else:
                path = resolve_model_path(spec.model, loaded.root)
                s = server(f"model:{spec.engine}:{path}", f"reference-{label}", build_command(spec, role, path, free_port()),
                           "http://127.0.0.1:{port}" + ready_path(spec.engine))
                base = s.ready_url.split("/v1")[0].split("/health")[0] + "/v1"
            ep = Endpoint(role, base, served_model(spec, role), spec.engine, "EMPTY", identity(spec, role, path), spec.system_prompt,
                          request_extras(spec))
            targets[role] = target(role, spec, ep)
        cache_dir = loaded.resolve(cfg.cache.path).parent / "lm-eval"
        run = run_benchmarks(targets, opts, output_dir / "lm-eval", cache_dir, log_dir)
    finally:
        for s in started.values():
            s.stop()
    return run.results, run.failures
