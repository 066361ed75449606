"""``mergegate.yaml``: which checkpoints to compare and how to serve and query them (format 1).

A pull request that proposes a new checkpoint edits ``models.candidate``.
"""

from __future__ import annotations

import difflib
from typing import Final, Literal, Optional, Union

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from ..suites.models import Sampling

__all__ = ["VLLM_LORA_RANKS", "VLLM_DTYPES", "VLLM_TOOL_PARSERS", "VllmOptions", "LlamaCppOptions", "ModelSpec", "GenerationOptions",
           "CacheOptions", "JudgePricing", "CalibrationOptions",
           "CascadeOptions", "JudgeConfig", "StatsOptions", "ContaminationOptions", "BenchmarkOptions", "Config", "CONFIG_FORMAT"]

CONFIG_FORMAT: Final = 1


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# What the pinned vLLM (0.32.0) accepts and otherwise rejects only when its server starts on the GPU runner:
# `--max-lora-rank` choices, `ModelDType`, the tool parsers it registers. tests/test_vllm_engine.py compares them with
# that vLLM's own (and parses every command line mergegate emits with its CLI parser).
VLLM_LORA_RANKS: Final = (1, 8, 16, 32, 64, 128, 256, 320, 512)
VLLM_DTYPES: Final = ("auto", "half", "float16", "bfloat16", "float", "float32")
VLLM_TOOL_PARSERS: Final = frozenset([
    "apertus", "cohere_command3", "cohere_command4", "deepseek_v3", "deepseek_v31", "deepseek_v32", "deepseek_v4",
    "deepseek_v41", "dots", "ernie45", "functiongemma", "gemma4", "gigachat3", "glm45", "glm47", "granite", "granite-20b-fc",
    "granite4", "hermes", "hf", "hunyuan_a13b", "hy_v3", "hy_v4", "inkling", "internlm", "jamba", "k2_horizon", "kimi_k2",
    "kimi_k3", "lfm2", "ling3", "llama3_json", "llama4_json", "llama4_pythonic", "longcat", "mimo", "minicpm5", "minimax_m2",
    "minimax_m3", "mistral", "muse_glimmer", "olmo3", "openai", "phi4_mini_json", "plamo3", "poolside_v1", "pythonic",
    "qwen3_coder", "qwen3_json", "qwen3_xml", "seed_oss", "step3", "step3p5", "xlam"])


class VllmOptions(_Strict):
    """Flags for ``vllm serve`` (engine: vllm)."""

    max_model_len: int = Field(default=4096, ge=16)
    gpu_memory_utilization: float = Field(default=0.85, gt=0, le=1, description="Share of the GPU's total memory this server takes "
                                          "(vLLM checks it against free memory at start): servers sharing a GPU must sum below 1.")
    dtype: Literal["auto", "half", "float16", "bfloat16", "float", "float32"] = Field(default="auto", description="Weights' dtype.")
    tensor_parallel_size: int = Field(default=1, ge=1)
    data_parallel_size: int = Field(default=1, ge=1)
    devices: Optional[list[int]] = Field(default=None, min_length=1, description="GPU indices for this server (CUDA_VISIBLE_DEVICES), "
                                         "tensor_parallel_size x data_parallel_size of them (default: every visible GPU, shared).")
    max_lora_rank: Optional[int] = Field(default=None, description=f"The adapter's rank or more; vLLM accepts {VLLM_LORA_RANKS}.")
    trust_remote_code: bool = Field(default=False, description="Run the checkpoint's own Python code. Off unless you trust the checkpoint.")
    python: Optional[str] = Field(default=None, description="The Python of an environment of its own with vLLM (e.g. /opt/vllm/bin/python"
                                  "): mergegate starts PYTHON -m vllm.entrypoints.openai.api_server with the same flags. Default: "
                                  "the `vllm serve` command on PATH.")
    tool_call_parser: Optional[str] = Field(default=None, description="vLLM's tool-call parser for this model (e.g. hermes, llama3_json, "
                                            "mistral): adds --enable-auto-tool-choice so tool calls come back as tool_calls.")
    extra_args: list[str] = Field(default_factory=list, description="Further flags, passed verbatim.")

    @model_validator(mode="after")
    def _what_vllm_accepts(self) -> VllmOptions:
        if self.max_lora_rank is not None and self.max_lora_rank not in VLLM_LORA_RANKS:
            fits = min((r for r in VLLM_LORA_RANKS if r >= self.max_lora_rank), default=VLLM_LORA_RANKS[-1])
            raise ValueError(f"max_lora_rank {self.max_lora_rank} is not one vLLM accepts ({', '.join(map(str, VLLM_LORA_RANKS))}); "
                             f"use {fits}")
        plugin = any(a.startswith("--tool-parser-plugin") for a in self.extra_args)  # a plugin registers its own names
        if self.tool_call_parser is not None and not plugin and self.tool_call_parser not in VLLM_TOOL_PARSERS:
            close = difflib.get_close_matches(self.tool_call_parser, VLLM_TOOL_PARSERS, n=3)
            raise ValueError(f"tool_call_parser {self.tool_call_parser!r} is not one of vLLM's"
                             + (f" (did you mean {', '.join(close)}?)" if close else f": {', '.join(sorted(VLLM_TOOL_PARSERS))}")
                             + "; a parser of your own needs --tool-parser-plugin in extra_args")
        if self.devices is not None:
            want = self.tensor_parallel_size * self.data_parallel_size
            if len(set(self.devices)) != len(self.devices) or len(self.devices) != want or min(self.devices) < 0:
                raise ValueError(f"devices {self.devices}: want {want} distinct GPU indices (tensor_parallel_size x data_parallel_size)")
        return self

    def shares_gpu_with(self, other: VllmOptions) -> bool:
        """Return True when the two servers may land on one GPU (either has no devices, or their devices overlap)."""
        return self.devices is None or other.devices is None or bool(set(self.devices) & set(other.devices))


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
        description="Checkpoint revision (commit, tag, hash). Local files and checkpoint folders are hashed automatically; "
                    "an external endpoint without one is never cached.",
    )
    served_name: Optional[str] = Field(default=None, pattern=r"^[A-Za-z0-9_.:/-]+$",
                                       description="Model name the server answers to (default: the role).")
    system_prompt: Optional[str] = Field(default=None, description="Prepended to every request: a prompted baseline is a model plus this.")
    adapter: Optional[str] = Field(default=None, description="LoRA adapter on top of 'model': a folder with the PEFT files (vLLM "
                                   "serves it with --lora-modules) and one .gguf (llama.cpp loads it with --lora_path), or the .gguf "
                                   "itself; relative to mergegate.yaml. For vLLM, also a Hugging Face Hub id with adapter_revision.")
    adapter_revision: Optional[str] = Field(default=None, description="The commit of a Hub adapter (engine vllm): it is downloaded at "
                                            "that revision before the server starts, and its files key the cache.")
    base_url: Optional[str] = Field(default=None, description="OpenAI-compatible base URL ending in /v1 (engine: external).")
    api_key_env: Optional[str] = Field(default=None, description="Environment variable holding the API key (engine: external).")
    sampling: Sampling = Field(default_factory=lambda: Sampling(temperature=0.0, top_p=1.0, seed=0, max_tokens=256))
    tool_format: Literal["api", "prompt"] = Field(
        default="api", description="How cases with 'tools' reach the model: 'api' sends them as the request's tools (the engine "
        "returns tool_calls); 'prompt' writes them into the system prompt and reads the call from JSON in the text, for engines "
        "or chat templates without tool support (the embedded llama.cpp default).")
    scoring_model: Optional[str] = Field(default=None, description="GGUF file whose prompt log-probabilities serve loglikelihood "
                                         "benchmarks (default for engine llama-cpp: 'model'). Set it for an external llama.cpp server.")
    training_data: list[str] = Field(default_factory=list, description="Files this checkpoint was trained on (JSONL or text; relative to "
                                     "mergegate.yaml; globs allowed): each run checks every eval case against them (see 'contamination').")
    extra_body: dict[str, Union[str, int, float, bool, None]] = Field(
        default_factory=dict, description="Fields added to every request, e.g. repeat_penalty: 1.0 for an external llama.cpp server "
        "(llama-cpp-python penalises repeats by 1.1 unless told: mergegate's own llama-cpp engine always sends 1.0).")
    vllm: Optional[VllmOptions] = None
    llama_cpp: Optional[LlamaCppOptions] = None

    @model_validator(mode="after")
    def _engine_fields(self) -> ModelSpec:
        if self.engine == "external" and not self.base_url:
            raise ValueError("engine 'external' needs 'base_url'")
        if self.engine != "external" and self.base_url:
            raise ValueError(f"'base_url' is only for engine 'external' (this model's engine is {self.engine!r})")
        if self.vllm is not None and self.engine != "vllm":
            raise ValueError("'vllm' options are only for engine 'vllm'")
        if self.llama_cpp is not None and self.engine != "llama-cpp":
            raise ValueError("'llama_cpp' options are only for engine 'llama-cpp'")
        if self.adapter and self.engine == "external":
            raise ValueError("'adapter' (LoRA) is for the engines mergegate starts (vllm, llama-cpp): an external server loads its own")
        return self


class GenerationOptions(_Strict):
    """How requests are sent."""

    concurrency: int = Field(default=8, ge=1, le=1024, description="Requests in flight per server (roles on one endpoint share them).")
    timeout_s: float = Field(default=300.0, gt=0, le=86_400, allow_inf_nan=False, description="Per-request timeout.")
    max_retries: int = Field(default=3, ge=0, le=100, description="Retries on 429, 5xx, timeouts and connection errors.")
    backoff_s: float = Field(default=0.5, ge=0, le=3600, allow_inf_nan=False, description="First retry delay; doubles each retry.")
    error_tolerance: int = Field(default=0, ge=0, le=10_000_000, description="Failed requests allowed before the run is INCOMPLETE.")
    server_start_timeout_s: float = Field(default=600.0, gt=0, le=86_400, allow_inf_nan=False)
    truncated: Literal["fail", "allow"] = Field(
        default="fail", description="An answer cut off at max_tokens (finish_reason 'length'): 'fail' fails its case (the report says "
        "why); 'allow' scores it as it is. Either way the report counts truncated answers per model and suite.")
    degenerate_warn: float = Field(default=0.2, ge=0, le=1, description="The report warns when more than this share of a model's "
                                   "answers in a suite are empty, truncated or the input said back.")


class CacheOptions(_Strict):
    """The persistent response cache."""

    enabled: bool = True
    path: str = Field(default=".mergegate-cache/responses.sqlite", description="SQLite file, relative to mergegate.yaml.")


class StatsOptions(_Strict):
    """How comparisons are judged against noise (see docs/statistics.md, 'Noise and evidence')."""

    level: float = Field(default=0.95, gt=0.5, lt=1, description="Confidence level of every interval.")
    resamples: int = Field(default=2000, ge=2000, description="Paired bootstrap resamples for continuous scores.")
    seed: int = Field(default=0, description="Seed of the bootstrap and of --sample.")
    min_effect: float = Field(default=0.05, gt=0, le=1, description="The change that matters: the report says how many cases detect it.")
    power: float = Field(default=0.8, gt=0, lt=1, description="Power of the detectable-effect figures.")
    insufficient_evidence: Literal["pass", "block"] = Field(
        default="pass",
        description="A gate with no interval at all (fewer than two paired cases, one cluster): pass (reported) or block.")
    underpowered: Literal["warn", "block"] = Field(
        default="warn",
        description="A gate whose suite cannot catch a change of twice its threshold with 80% power: warn (banner, with the cases "
                    "needed) or block (NO-GO until the suite is big enough).")
    holm: bool = Field(default=False, description="Holm-correct every regressed()/improved() conclusion of the run, as one family.")


class ContaminationOptions(_Strict):
    """Word n-gram overlap between a checkpoint's ``training_data`` and the eval cases, checked on every run."""

    n: list[int] = Field(default_factory=lambda: [13], min_length=1, description="N-gram sizes; a case is contaminated when it shares "
                         "an n-gram of the smallest size with the training data (a text shorter than n words must appear whole).")
    min_words: int = Field(default=4, ge=1, description="Texts with fewer words are too short to tell and are not checked.")
    fields: list[str] = Field(default_factory=list, description="JSONL fields to read (default: every string value).")
    on_contaminated: Literal["report", "exclude", "fail"] = Field(
        default="exclude", description="report: list them only; exclude: leave them out of suite metrics and gates; fail: NO-GO.")

    @field_validator("n")
    @classmethod
    def _positive(cls, v: list[int]) -> list[int]:
        if any(n < 1 for n in v):
            raise ValueError("n-gram sizes must be at least 1")
        return sorted(set(v))


class BenchmarkOptions(_Strict):
    """lm-eval benchmarks run against the served candidate and baseline: catastrophic forgetting."""

    tasks: list[str] = Field(min_length=1, description="lm-eval task names. mergegate's offline tasks (mg_arith, mg_facts, "
                             "mg_heldout_ppl) are always available; on a GPU runner: arc_challenge, hellaswag, mmlu, "
                             "truthfulqa_mc2, winogrande, gsm8k.")
    limit: Optional[int] = Field(default=None, ge=1, description="Documents per task (default: all).")
    num_fewshot: Optional[int] = Field(default=None, ge=0, description="Few-shot examples (default: each task's own).")
    warn_drop: float = Field(default=0.03, gt=0,
                             description="WARN when a score falls by more than this (0.03 = 3 points; perplexity: 3% higher).")
    crit_drop: float = Field(default=0.05, gt=0,
                             description="CRIT when a score falls by more than this (0.05 = 5 points; perplexity: 5% higher).")
    timeout_s: float = Field(default=3600, gt=0, description="Limit for each lm-eval process.")
    references: dict[str, ModelSpec] = Field(default_factory=dict, description="Further checkpoints benchmarked alongside, by "
                                               "label (no suites, no gates, no levels): e.g. the base model the fine-tune started from.")

    @model_validator(mode="after")
    def _ordered(self) -> BenchmarkOptions:
        if self.crit_drop < self.warn_drop:
            raise ValueError("crit_drop must be at least warn_drop")
        return self


class JudgePricing(_Strict):
    """Price of the judge's tokens, for the report's cost estimate (0 for a self-hosted judge)."""

    input_per_mtok: float = Field(default=0.0, ge=0, description="USD per million prompt tokens.")
    output_per_mtok: float = Field(default=0.0, ge=0, description="USD per million completion tokens.")


class CalibrationOptions(_Strict):
    """Re-judging a human-labelled set on every run, and what an uncalibrated judge means for gates."""

    file: Optional[str] = Field(default=None, description="Calibration set (default: every *.calibration.yaml in the suites folder).")
    min_agreement: float = Field(default=0.8, ge=0, le=1,
                                 description="Agreement with the human majority below which the judge is uncalibrated.")
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
    min_gates: int = Field(default=1, ge=0, le=100_000, description="Gates that must run (pass, fail or lack evidence) for a verdict: "
                           "fewer, e.g. every gate skipped, is INCOMPLETE. 0 lets cases alone decide.")
    output_dir: str = "results"
    check_timeout_s: float = Field(default=30.0, gt=0, le=3600, allow_inf_nan=False,
                                   description="Wall-clock budget of one check on one answer (a code check's own timeout_s comes on "
                                   "top): a check that runs past it (a catastrophic regex, a loop) fails its case with the reason.")
    models: dict[Literal["candidate", "baseline"], ModelSpec]
    generation: GenerationOptions = Field(default_factory=GenerationOptions)
    cache: CacheOptions = Field(default_factory=CacheOptions)
    judge: Optional[JudgeConfig] = Field(default=None, description="Needed by llm_rubric and pairwise checks.")
    stats: StatsOptions = Field(default_factory=StatsOptions)
    contamination: ContaminationOptions = Field(default_factory=ContaminationOptions)
    benchmarks: Optional[BenchmarkOptions] = Field(default=None, description="lm-eval tasks run on both models (forgetting).")
    checks: list[str] = Field(default_factory=list, description="Modules (dotted names, importable from the project folder) "
                              "that register the team's own check types with mergegate.check; loaded before suites are read.")

    @field_validator("checks")
    @classmethod
    def _module_names(cls, names: list[str]) -> list[str]:
        for name in names:
            if not all(part.isidentifier() for part in name.split(".")):
                raise ValueError(f"{name!r} is not a module name (dotted identifiers, e.g. team_checks or tools.checks)")
        return names

    def serving_roles(self) -> dict[str, ModelSpec]:
        """Return every model a run serves, by role: candidate, baseline, and the judge(s) if configured."""
        roles = {"candidate": self.models["candidate"], "baseline": self.models["baseline"]}
        if self.judge is not None:
            roles["judge"] = self.judge.model
            if self.judge.cascade is not None:
                roles["judge_strong"] = self.judge.cascade.strong
        return roles

    @model_validator(mode="after")
    def _gpu_memory_fits(self) -> Config:
        """Servers that share a GPU must leave each other room: vLLM takes its share of *total* memory, checked against free."""
        roles = dict(self.serving_roles())
        if self.benchmarks is not None:
            roles.update({f"benchmarks.references.{k}": v for k, v in self.benchmarks.references.items()})
        servers: dict[str, tuple[str, VllmOptions]] = {}  # one entry per server: roles with the same spec share one process
        for role, spec in roles.items():
            if spec.engine == "vllm":
                key = spec.model_dump_json(include={"model", "revision", "served_name", "adapter", "vllm"})
                servers.setdefault(key, (role, spec.vllm or VllmOptions()))
        listed = list(servers.values())
        for _, opts in listed:
            sharing = [(r, o) for r, o in listed if o.shares_gpu_with(opts)]
            total = sum(o.gpu_memory_utilization for _, o in sharing)
            if total >= 1:
                names = " + ".join(f"{r} {o.gpu_memory_utilization:g}" for r, o in sharing)
                raise ValueError(f"vllm.gpu_memory_utilization of servers sharing a GPU sums to {total:.2f} ({names}); vLLM checks "
                                 "each share against free memory at start, so keep the sum below 1 (e.g. 0.45 each) or place the "
                                 "servers on different GPUs with vllm.devices")
        return self

    @field_validator("models")
    @classmethod
    def _both_models(cls, models: dict) -> dict:
        missing = {"candidate", "baseline"} - set(models)
        if missing:
            raise ValueError(f"models needs {' and '.join(sorted(missing))}")
        return models
