"""Config: ``mergegate.yaml`` — the candidate, the baseline, the judge, and how to run them."""

from .loader import CONFIG_NAME, DEFAULT_CONFIG_YAML, LoadedConfig, load_config
from .models import (
                     VLLM_DTYPES,
                     VLLM_LORA_RANKS,
                     VLLM_TOOL_PARSERS,
                     BenchmarkOptions,
                     CacheOptions,
                     CalibrationOptions,
                     CascadeOptions,
                     Config,
                     ContaminationOptions,
                     GenerationOptions,
                     JudgeConfig,
                     JudgePricing,
                     LlamaCppOptions,
                     ModelSpec,
                     StatsOptions,
                     VllmOptions,
)

__all__ = ["CONFIG_NAME", "DEFAULT_CONFIG_YAML", "LoadedConfig", "load_config",
           "BenchmarkOptions", "CacheOptions", "CalibrationOptions", "CascadeOptions",
           "Config", "ContaminationOptions", "GenerationOptions", "JudgeConfig", "JudgePricing", "LlamaCppOptions",
           "ModelSpec", "StatsOptions", "VllmOptions", "VLLM_DTYPES", "VLLM_LORA_RANKS", "VLLM_TOOL_PARSERS"]
