"""``mergegate.yaml``: which checkpoints to compare and how to serve and query them (format 1).

A pull request that proposes a new checkpoint edits ``models.candidate``.
"""

from __future__ import annotations

from typing import Literal, Optional

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from ..suites.models import Sampling

__all__ = ["VllmOptions", "LlamaCppOptions", "ModelSpec", "GenerationOptions", "CacheOptions", "JudgePricing", "CalibrationOptions",
           "CascadeOptions", "JudgeConfig", "Config", "CONFIG_FORMAT"]

CONFIG_FORMAT = 1


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class VllmOptions(_Strict):
    """Flags for ``vllm serve`` (engine: vllm)."""

    max_model_len: int = Field(default=4096, ge=16)
    gpu_memory_utilization: float = Field(default=0.85, gt=0, le=1)
    dtype: str = Field(default="auto", description="e.g. auto, bfloat16, float16.")
    tensor_parallel_size: int = Field(default=1, ge=1)
    data_parallel_size: int = Field(default=1, ge=1)
    max_lora_rank: Optional[int] = Field(default=None, ge=1)
    trust_remote_code: bool = Field(default=False, description="Run the checkpoint's own Python code. Off unless you trust the checkpoint.")
    extra_args: list[str] = Field(default_factory=list, description="Further flags, passed verbatim.")


class LlamaCppOptions(_Strict):
    """Flags for ``python -m llama_cpp.server`` (engine: llama-cpp)."""

    n_ctx: int = Field(default=2048, ge=128)
    n_threads: Optional[int] = Field(default=None, ge=1)


class ModelSpec(_Strict):
    """One checkpoint to evaluate."""

    engine: Literal["vllm", "llama-cpp", "external"]
    model: str = Field(
        description="Model path or hub id. 'pkg:PACKAGE/FILE' names a file shipped inside an installed Python package.",
    )
    revision: Optional[str] = Field(
        default=None,
        description="Checkpoint revision (commit, tag, hash). Local files are hashed automatically; an external endpoint without one is never cached.",
    )
    served_name: Optional[str] = Field(default=None, pattern=r"^[A-Za-z0-9_.:/-]+$", description="Model name the server answers to (default: the role).")
    system_prompt: Optional[str] = Field(default=None, description="Prepended to every request: a prompted baseline is a model plus this.")
    adapter: Optional[str] = Field(default=None, description="LoRA adapter path (engine: vllm).")
    base_url: Optional[str] = Field(default=None, description="OpenAI-compatible base URL ending in /v1 (engine: external).")
    api_key_env: Optional[str] = Field(default=None, description="Environment variable holding the API key (engine: external).")
    sampling: Sampling = Field(default_factory=lambda: Sampling(temperature=0.0, top_p=1.0, seed=0, max_tokens=256))
    vllm: Optional[VllmOptions] = None
    llama_cpp: Optional[LlamaCppOptions] = None

    @model_validator(mode="after")
    def _engine_fields(self) -> "ModelSpec":
        if self.engine == "external" and not self.base_url:
            raise ValueError("engine 'external' needs 'base_url'")
        if self.engine != "external" and self.base_url:
            raise ValueError(f"'base_url' is only for engine 'external' (this model's engine is {self.engine!r})")
        if self.vllm is not None and self.engine != "vllm":
            raise ValueError("'vllm' options are only for engine 'vllm'")
        if self.llama_cpp is not None and self.engine != "llama-cpp":
            raise ValueError("'llama_cpp' options are only for engine 'llama-cpp'")
        if self.adapter and self.engine != "vllm":
            raise ValueError("'adapter' (LoRA) is supported with engine 'vllm' only")
        return self


class GenerationOptions(_Strict):
    """How requests are sent."""

    concurrency: int = Field(default=8, ge=1, le=1024, description="Requests in flight at once, per model.")
    timeout_s: float = Field(default=300.0, gt=0, description="Per-request timeout.")
    max_retries: int = Field(default=3, ge=0, description="Retries on 429, 5xx, timeouts and connection errors.")
    backoff_s: float = Field(default=0.5, ge=0, description="First retry delay; doubles each retry.")
    error_tolerance: int = Field(default=0, ge=0, description="Failed requests allowed before the run is INCOMPLETE.")
    server_start_timeout_s: float = Field(default=600.0, gt=0)


class CacheOptions(_Strict):
    """The persistent response cache."""

    enabled: bool = True
    path: str = Field(default=".mergegate-cache/responses.sqlite", description="SQLite file, relative to mergegate.yaml.")


class JudgePricing(_Strict):
    """Price of the judge's tokens, for the report's cost estimate (0 for a self-hosted judge)."""

    input_per_mtok: float = Field(default=0.0, ge=0, description="USD per million prompt tokens.")
    output_per_mtok: float = Field(default=0.0, ge=0, description="USD per million completion tokens.")


class CalibrationOptions(_Strict):
    """Re-judging a human-labelled set on every run, and what an uncalibrated judge means for gates."""

    file: Optional[str] = Field(default=None, description="Calibration set (default: every *.calibration.yaml in the suites folder).")
    min_agreement: float = Field(default=0.8, ge=0, le=1, description="Agreement with the human majority below which the judge is uncalibrated.")
    on_uncalibrated: Literal["fail", "advisory"] = Field(
        default="fail", description="fail: gates that read judge metrics fail; advisory: they are reported but do not block.")


class CascadeOptions(_Strict):
    """Send a case to a stronger judge only when the first judge is uncertain."""

    strong: ModelSpec
    pricing: JudgePricing = Field(default_factory=JudgePricing, description="Price of the strong judge's tokens.")
    margin: float = Field(default=0.1, ge=0, le=1, description="Rubric: escalate when the score is within this of the check's threshold.")


class JudgeConfig(_Strict):
    """The LLM judge: any OpenAI-compatible endpoint, or a model served like the candidates."""

    model: ModelSpec = Field(description="The judge model. Requests always use temperature 0.")
    pricing: JudgePricing = Field(default_factory=JudgePricing)
    structured_output: Literal["auto", "json_schema", "llama-cpp", "none"] = Field(
        default="auto", description="How the verdict's JSON Schema is sent: json_schema (OpenAI, vLLM), llama-cpp (json_object "
        "with a schema grammar), none (prompt only). auto: llama-cpp for engine llama-cpp, else json_schema.")
    max_output_retries: int = Field(default=2, ge=0, description="Re-asks after an unparsable verdict before it counts as a judge error.")
    error_tolerance: int = Field(default=0, ge=0, description="Judge errors allowed before the run is INCOMPLETE.")
    calibration: CalibrationOptions = Field(default_factory=CalibrationOptions)
    cascade: Optional[CascadeOptions] = None


class Config(_Strict):
    """The whole of ``mergegate.yaml``."""

    format: Literal[1] = CONFIG_FORMAT
    suites_dir: str = "eval_suites"
    gates_dir: str = "gates"
    output_dir: str = "results"
    models: dict[Literal["candidate", "baseline"], ModelSpec]
    generation: GenerationOptions = Field(default_factory=GenerationOptions)
    cache: CacheOptions = Field(default_factory=CacheOptions)
    judge: Optional[JudgeConfig] = Field(default=None, description="Needed by llm_rubric and pairwise checks.")

    def serving_roles(self) -> dict[str, ModelSpec]:
        """Return every model a run serves, by role: candidate, baseline, and the judge(s) if configured."""
        roles = {"candidate": self.models["candidate"], "baseline": self.models["baseline"]}
        if self.judge is not None:
            roles["judge"] = self.judge.model
            if self.judge.cascade is not None:
                roles["judge_strong"] = self.judge.cascade.strong
        return roles

    @field_validator("models")
    @classmethod
    def _both_models(cls, models: dict) -> dict:
        missing = {"candidate", "baseline"} - set(models)
        if missing:
            raise ValueError(f"models needs {' and '.join(sorted(missing))}")
        return models
