"""The benchmark phase: lm-eval tasks on both served models (and references), for forgetting."""

from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path
from typing import TYPE_CHECKING

from ..config.loader import LoadedConfig
from ..config.models import ModelSpec, VllmOptions
from ..results import ROLES, BenchmarkResult
from ..serving import Endpoint, ServerFleet

if TYPE_CHECKING:
    from ..benchmarks import Target

__all__ = ["run_benchmark_phase", "benchmark_target", "has_chat_template"]


def run_benchmark_phase(loaded: LoadedConfig, fleet: ServerFleet, output_dir: Path,
                        log_dir: Path, progress: bool = False) -> tuple[list[BenchmarkResult], list[str]]:
    """Run the configured lm-eval tasks; return the rows and the failures (a task that did not run makes the run INCOMPLETE).

    Loglikelihood tasks on GGUF models read prompt log-probabilities from
    mergegate's scoring server (llama-cpp-python's echo logprobs are wrong);
    references get a server of their own. Every server comes from ``fleet``
    and stops with it.
    """
    from ..benchmarks import run_benchmarks

    cfg = loaded.config
    opts = cfg.benchmarks
    assert opts is not None

    targets: dict[str, Target] = {role: benchmark_target(loaded, fleet, role, cfg.models[role], fleet.endpoints[role]) for role in ROLES}
    for label, spec in opts.references.items():
        targets[f"ref:{label}"] = benchmark_target(loaded, fleet, f"ref:{label}", spec, fleet.serve(f"ref:{label}", spec))
    cache_dir = loaded.resolve(cfg.cache.path).parent / "lm-eval"
    if not cfg.cache.enabled:  # --no-cache: lm-eval's request cache and saved results start empty, in the output folder
        cache_dir = output_dir / "lm-eval-uncached"
        shutil.rmtree(cache_dir, ignore_errors=True)
    run = run_benchmarks(targets, opts, output_dir / "lm-eval", cache_dir, log_dir, progress)
    return run.results, run.failures


def benchmark_target(loaded: LoadedConfig, fleet: ServerFleet, role: str, spec: ModelSpec, ep: Endpoint) -> Target:
    """Return where lm-eval sends ``role``'s benchmark requests (starting its scoring server for a GGUF model)."""
    from ..benchmarks import Target
    from ..serving import resolve_adapter, resolve_model_path

    cfg = loaded.config
    completions, tokenizer = None, "remote"
    gguf = spec.scoring_model or (spec.model if spec.engine == "llama-cpp" else None)
    if spec.engine == "vllm":
        completions, tokenizer = ep.base_url + "/completions", "huggingface"
    elif gguf:
        # the candidate's adapter applies to its log-probabilities too (a scoring_model is a merged checkpoint: no adapter)
        adapter = resolve_adapter(spec, loaded.root) if spec.engine == "llama-cpp" and not spec.scoring_model else None
        scorer = fleet.scoring_server(role, resolve_model_path(gguf, loaded.root), ep.model, adapter)
        completions = scorer.ready_url.rsplit("/", 1)[0] + "/completions"
    made = Target(role, ep.model, ep.base_url + "/chat/completions", completions, tokenizer,
                  ep.identity or {"model": spec.model, "engine": spec.engine}, ep.system_prompt, dict(ep.extra_body),
                  concurrency=cfg.generation.concurrency,
                  scoring_concurrency=cfg.generation.concurrency if spec.engine == "vllm" else 1)
    if spec.engine == "vllm":  # lm-eval tokenizes loglikelihood requests itself: the served model's own tokenizer
        v = spec.vllm or VllmOptions()
        path = resolve_model_path(spec.model, loaded.root)
        made = dataclasses.replace(made, hf_tokenizer=path, hf_revision=spec.revision, trust_remote_code=v.trust_remote_code,
                                   max_length=v.max_model_len, chat=has_chat_template(path, spec.revision))
    return made


def has_chat_template(model: str, revision: str | None = None) -> bool:
    """Return False when the checkpoint (a folder, or a Hub id in the local cache) has no chat template: a base model.

    vLLM refuses chat requests to such a model, so its generation benchmarks go through completions.
    Unknown (a Hub id not downloaded yet): True, as for any instruct model.
    """
    folder = Path(model)
    if folder.is_dir():
        config = folder / "tokenizer_config.json"
    else:
        try:
            from huggingface_hub import try_to_load_from_cache
        except ImportError:
            return True
        found = try_to_load_from_cache(model, "tokenizer_config.json", revision=revision)
        if not isinstance(found, str):
            return True
        config, folder = Path(found), Path(found).parent
    if (folder / "chat_template.jinja").is_file() or (folder / "chat_template.json").is_file():
        return True
    try:
        return bool(json.loads(config.read_text()).get("chat_template"))
    except (OSError, ValueError):
        return True
