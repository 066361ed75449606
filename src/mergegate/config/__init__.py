"""Config: ``mergegate.yaml`` — the candidate, the baseline, and how to run them."""

from .loader import CONFIG_NAME, DEFAULT_CONFIG_YAML, LoadedConfig, load_config
from .models import CacheOptions, Config, GenerationOptions, LlamaCppOptions, ModelSpec, VllmOptions

__all__ = ["CONFIG_NAME", "DEFAULT_CONFIG_YAML", "LoadedConfig", "load_config", "CacheOptions", "Config", "GenerationOptions", "LlamaCppOptions", "ModelSpec", "VllmOptions"]
