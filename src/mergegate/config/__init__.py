"""Config: ``mergegate.yaml`` — the candidate, the baseline, the judge, and how to run them."""

from .loader import CONFIG_NAME, DEFAULT_CONFIG_YAML, LoadedConfig, load_config
from .models import (CacheOptions, CalibrationOptions, CascadeOptions, Config, GenerationOptions, JudgeConfig, JudgePricing,
                     LlamaCppOptions, ModelSpec, VllmOptions)

__all__ = ["CONFIG_NAME", "DEFAULT_CONFIG_YAML", "LoadedConfig", "load_config", "CacheOptions", "CalibrationOptions", "CascadeOptions",
           "Config", "GenerationOptions", "JudgeConfig", "JudgePricing", "LlamaCppOptions", "ModelSpec", "VllmOptions"]
