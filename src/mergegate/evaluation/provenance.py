"""Provenance: what was evaluated, how, where (the ``meta`` of results.json)."""

from __future__ import annotations

import contextlib
import datetime as _dt
import importlib.metadata
import platform
import subprocess
import sys
from pathlib import Path
from typing import Optional

from ..config.loader import LoadedConfig
from ..github.context import ci_from_env
from ..results import ModelMeta, RunMeta, SampleMeta, ShardMeta
from ..serving import Endpoint

__all__ = ["now", "run_meta", "model_meta", "relative"]

_PACKAGES = ("mergegate", "openai", "pydantic", "pytest", "rouge-score", "sacrebleu", "scikit-learn", "jinja2", "jsonschema",
             "llama_cpp_python", "vllm", "lm_eval")


def now() -> str:
    """Return the current UTC time, ISO 8601 to the second."""
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


def _git(root: Path, *args: str) -> Optional[str]:
    try:
        out = subprocess.run(["git", *args], cwd=root, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout.strip() if out.returncode == 0 else None


def _versions() -> dict[str, str]:
    found = {}
    for name in _PACKAGES:
        with contextlib.suppress(importlib.metadata.PackageNotFoundError):
            found[name] = importlib.metadata.version(name)
    return found


def run_meta(loaded: LoadedConfig, command: Optional[list[str]], shard: Optional[ShardMeta], sample: Optional[SampleMeta]) -> RunMeta:
    """Return the run's metadata as far as it is known before serving: commit, config, packages, CI context."""
    versions = _versions()
    status = _git(loaded.root, "status", "--porcelain")
    return RunMeta(mergegate_version=versions.get("mergegate", "0"), started_at=now(), git_commit=_git(loaded.root, "rev-parse", "HEAD"),
                   git_dirty=None if status is None else bool(status), config_file=str(loaded.path) if loaded.path else None,
                   config_sha256=loaded.sha256, packages=versions, python=sys.version.split()[0], platform=platform.platform(),
                   command=command or sys.argv, ci=ci_from_env(), shard=shard, sample=sample, stats=loaded.config.stats.model_dump())


def model_meta(loaded: LoadedConfig, endpoints: dict[str, Endpoint]) -> dict[str, ModelMeta]:
    """Return what was served for each role, as the servers reported it (engine version, revision)."""
    roles = loaded.config.serving_roles()
    out = {}
    for role, ep in endpoints.items():
        spec = roles[role]
        ident = ep.identity or {}
        out[role] = ModelMeta(engine=spec.engine, engine_version=ident.get("engine_version") or ep.version or "unknown", model=spec.model,
                              revision=ident.get("revision", spec.revision), served_name=ep.model, system_prompt=spec.system_prompt,
                              adapter=spec.adapter, sampling=spec.sampling.model_dump(exclude_none=True), base_url=spec.base_url)
    return out


def relative(path: Path, root: Path) -> str:
    """Return ``path`` relative to ``root`` when it lies inside, else as given."""
    try:
        return str(path.resolve().relative_to(root))
    except ValueError:
        return str(path)
