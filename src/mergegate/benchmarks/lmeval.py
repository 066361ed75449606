"""Run lm-eval against the served models and turn its output into :class:`BenchmarkResult` rows.

Each model's tasks run in lm-eval subprocesses, split by how they are scored:

- loglikelihood tasks (multiple choice, perplexity) through ``local-completions``
  on an endpoint with *correct* prompt log-probabilities: vLLM's own
  completions endpoint, or for GGUF models mergegate's scoring server
  (:mod:`mergegate.serving.logprobs`), never llama-cpp-python's echo path;
- generation tasks through ``local-chat-completions`` on the model server, with
  the model's system prompt (a prompted baseline keeps its prompt).

lm-eval's request cache has no model identity, so each checkpoint identity gets
its own cache file.
"""

from __future__ import annotations

import contextlib
import glob
import hashlib
import json
import math
import os
import re
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

from ..config.models import BenchmarkOptions
from ..progress import say
from ..results.models import BenchmarkResult
from .tasks import OFFLINE_TASKS

__all__ = ["Target", "BenchmarkRun", "task_kinds", "run_benchmarks", "levels"]

# the default GPU list's kinds, so that no lm-eval import is needed to route them
_KNOWN = {"arc_challenge": "loglikelihood", "arc_easy": "loglikelihood", "hellaswag": "loglikelihood", "mmlu": "loglikelihood",
          "truthfulqa_mc2": "loglikelihood", "truthfulqa_mc1": "loglikelihood", "winogrande": "loglikelihood", "piqa": "loglikelihood",
          "gsm8k": "generation", "mg_facts": "loglikelihood", "mg_heldout_ppl": "loglikelihood", "mg_arith": "generation"}


@dataclass
class Target:
    """Where one model's benchmarks are sent."""

    role: str  # candidate, baseline, or "ref:<label>" for benchmarks.references
    model: str  # the name the servers answer to
    chat_url: str  # .../v1/chat/completions
    completions_url: Optional[str]  # .../v1/completions with correct prompt logprobs; None: loglikelihood tasks cannot run here
    tokenizer: str  # lm-eval tokenizer_backend for completions: "remote" (the scoring server) or "huggingface"
    identity: dict[str, Any]
    system_prompt: Optional[str] = None
    gen_kwargs: dict[str, Any] = field(default_factory=dict)
    concurrency: int = 4  # lm-eval's num_concurrent for generation tasks: the engine's (generation.concurrency)
    # ... and for loglikelihood tasks: the engine's on vLLM; 1 on mergegate's scoring server, which scores one request at a time
    scoring_concurrency: int = 1
    # tokenizer "huggingface" (vLLM): where lm-eval loads it from. Without it lm-eval loads one named after the *served*
    # name ("candidate"), which exists nowhere: on a real vLLM server the loglikelihood run exited 1.
    hf_tokenizer: Optional[str] = None  # the model's path or hub id
    hf_revision: Optional[str] = None  # the model's pinned revision (hub ids)
    trust_remote_code: bool = False
    max_length: int = 2000  # the served context: vLLM's max_model_len; the scoring server's n_ctx leaves 2000
    chat: bool = True  # False: a base model without a chat template (vLLM refuses chat requests): generation uses completions


@dataclass
class BenchmarkRun:
    """Everything one benchmark phase produced."""

    results: list[BenchmarkResult] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)


def task_kinds(tasks: list[str], include_path: Path) -> dict[str, str]:
    """Return task -> "loglikelihood" or "generation", asking lm-eval (in a subprocess) for tasks it does not know."""
    unknown = [t for t in tasks if t not in _KNOWN]
    kinds = {t: _KNOWN[t] for t in tasks if t in _KNOWN}
    if unknown:
        code = ("import json, sys\nfrom lm_eval.tasks import TaskManager\ntm = TaskManager(include_path=sys.argv[1])\nout = {}\n"
                "def kind(name):\n    cfg = tm._get_config(name)\n    if 'output_type' in cfg: return cfg['output_type']\n"
                "    sub = cfg.get('task') or []\n    return kind(sub[0] if isinstance(sub, list) else sub)\n"
                "for t in sys.argv[2:]:\n    try: out[t] = kind(t)\n    except Exception as e: out[t] = 'unknown: ' + str(e)\n"
                "print(json.dumps(out))\n")
        proc = subprocess.run([sys.executable, "-c", code, str(include_path), *unknown], capture_output=True, text=True, timeout=600)
        found = json.loads(proc.stdout.strip().splitlines()[-1]) if proc.returncode == 0 and proc.stdout.strip() else {}
        for t in unknown:
            out = found.get(t, "unknown")
            kinds[t] = "generation" if out == "generate_until" else "loglikelihood" if out in (
                "loglikelihood", "multiple_choice", "loglikelihood_rolling") else out
    return kinds


def _cache_file(cache_dir: Path, target: Target, kind: str) -> str:
    key = json.dumps({"identity": target.identity, "system_prompt": target.system_prompt, "kind": kind,
                      "scoring": target.completions_url is not None and kind == "loglikelihood"}, sort_keys=True)
    return str(cache_dir / hashlib.sha256(key.encode()).hexdigest()[:20])


def _results_key(target: Target, kind: str, tasks: list[str], opts: BenchmarkOptions, include: Path) -> str:
    """Return the key of one lm-eval run's results: everything that determines them (model, prompt, tasks and their files, settings)."""
    import importlib.metadata

    files = hashlib.sha256(b"".join(p.name.encode() + p.read_bytes() for p in sorted(include.iterdir()) if p.is_file())).hexdigest()
    key = json.dumps({"identity": target.identity, "system_prompt": target.system_prompt, "gen": target.gen_kwargs, "kind": kind,
                      "tasks": tasks, "limit": opts.limit, "num_fewshot": opts.num_fewshot, "task_files": files,
                      "lm_eval": importlib.metadata.version("lm-eval"), "scoring": target.completions_url is not None}, sort_keys=True)
    return hashlib.sha256(key.encode()).hexdigest()[:24]


def _command(target: Target, kind: str, tasks: list[str], opts: BenchmarkOptions, include: Path, out: Path, cache: str) -> list[str]:
    if kind == "loglikelihood":
        args = (f"model={target.model},base_url={target.completions_url},tokenizer_backend={target.tokenizer},"
                f"tokenized_requests=True,num_concurrent={target.scoring_concurrency},max_retries=3,max_length={target.max_length}")
        if target.tokenizer == "huggingface" and target.hf_tokenizer:
            args += f",tokenizer={target.hf_tokenizer}" + (f",revision={target.hf_revision}" if target.hf_revision else "")
            args += ",trust_remote_code=True" if target.trust_remote_code else ""
        cmd = [sys.executable, "-m", "lm_eval", "--model", "local-completions", "--model_args", args]
    elif not target.chat:  # a base model: the task's own prompt as plain text, tokenized with the model's tokenizer
        args = (f"model={target.model},base_url={target.completions_url},tokenizer_backend=huggingface,"
                f"tokenizer={target.hf_tokenizer},tokenized_requests=False,num_concurrent={target.concurrency},max_retries=3,"
                f"max_length={target.max_length}" + (f",revision={target.hf_revision}" if target.hf_revision else ""))
        cmd = [sys.executable, "-m", "lm_eval", "--model", "local-completions", "--model_args", args]
        cmd += ["--gen_kwargs", ",".join(f"{k}={v}" for k, v in {"temperature": 0, **target.gen_kwargs}.items())]
    else:
        args = (f"model={target.model},base_url={target.chat_url},tokenizer_backend=none,"
                f"tokenized_requests=False,num_concurrent={target.concurrency},max_retries=3")
        cmd = [sys.executable, "-m", "lm_eval", "--model", "local-chat-completions", "--model_args", args, "--apply_chat_template"]
        if target.system_prompt:
            cmd += ["--system_instruction", target.system_prompt]
        gen = {"temperature": 0, **target.gen_kwargs}
        cmd += ["--gen_kwargs", ",".join(f"{k}={v}" for k, v in gen.items())]
    cmd += ["--tasks", ",".join(tasks), "--include_path", str(include), "--output_path", str(out), "--seed", "0"]
    # lm-eval 0.4.13's request cache crashes concurrent loglikelihood_rolling requests (perplexity tasks: their cache key
    # is None, and its concurrent path hashes it anyway, seen on a real vLLM server): a concurrent scorer runs uncached.
    # The run's saved results (_results_key) still make a rerun free.
    if not (kind == "loglikelihood" and target.scoring_concurrency > 1):
        cmd += ["--use_cache", cache]
    if opts.limit:
        cmd += ["--limit", str(opts.limit)]
    if opts.num_fewshot is not None:
        cmd += ["--num_fewshot", str(opts.num_fewshot)]
    return cmd


def _read(out: Path) -> dict[str, Any]:
    files = sorted(glob.glob(str(out / "**" / "results_*.json"), recursive=True))
    if not files:
        raise ValueError(f"lm-eval wrote no results under {out}")
    return json.loads(Path(files[-1]).read_text())


def _num(v: Any) -> Optional[float]:
    return float(v) if isinstance(v, (int, float)) and math.isfinite(float(v)) else None


def run_benchmarks(targets: dict[str, Target], opts: BenchmarkOptions, work: Path, cache_dir: Path, log_dir: Path,
                   progress: bool = False) -> BenchmarkRun:
    """Run every task on every target; return the rows (levels decided) and what failed."""
    from .tasks import write_offline_tasks

    include = write_offline_tasks(work / "tasks")
    kinds = task_kinds(list(opts.tasks), include)
    run = BenchmarkRun()
    bad = {t: k for t, k in kinds.items() if k not in ("loglikelihood", "generation")}
    for t, why in bad.items():
        run.failures.append(f"benchmark task {t!r}: lm-eval does not know it ({why})")
    env = {**os.environ, "TOKENIZERS_PARALLELISM": "false"}
    if all(t in OFFLINE_TASKS for t in opts.tasks):
        env.update(HF_DATASETS_OFFLINE="1", HF_HUB_OFFLINE="1")  # nothing to download: fail fast instead of trying
    scores: dict[tuple[str, str], dict[str, Any]] = {}  # (task, metric) -> {role: value, role_stderr, n, hib, kind}
    cache_dir.mkdir(parents=True, exist_ok=True)
    log_dir.mkdir(parents=True, exist_ok=True)
    for role, target in targets.items():
        for kind in ("loglikelihood", "generation"):
            names = [t for t in opts.tasks if kinds.get(t) == kind]
            if not names:
                continue
            if kind == "loglikelihood" and target.completions_url is None:
                run.failures.append(f"benchmarks: {role} has no endpoint with correct prompt log-probabilities for {', '.join(names)} "
                                    "(engine external: set models.<role>.scoring_model to its GGUF)")
                continue
            failure = _run_lm_eval(target, kind, names, opts, include, work, cache_dir, log_dir, env, scores, progress)
            if failure:
                run.failures.append(failure)
    refs = [r for r in targets if r.startswith("ref:")]
    for (task, metric), row in sorted(scores.items()):
        run.results.append(levels(BenchmarkResult(
            task=task, metric=metric, kind=row["kind"], higher_is_better=row["hib"], n=row["n"],
            references={r[4:]: row.get(r) for r in refs},
            candidate=row.get("candidate"), baseline=row.get("baseline"),
            candidate_stderr=row.get("candidate_stderr"), baseline_stderr=row.get("baseline_stderr"), level="OK"), opts))
    return run


def _run_lm_eval(target: Target, kind: str, names: list[str], opts: BenchmarkOptions, include: Path, work: Path, cache_dir: Path,
                 log_dir: Path, env: dict[str, str], scores: dict[tuple[str, str], dict[str, Any]],
                 progress: bool = False) -> Optional[str]:
    """Run lm-eval for one target and kind of task (or reuse its saved results); add its metrics to ``scores``; return a failure."""
    role = target.role
    safe = role.replace(":", "-")  # file names without ":" (artifact uploads reject it)
    out = work / f"{safe}-{kind}"
    log = log_dir / f"lm-eval-{safe}-{kind}.log"
    saved = cache_dir / f"{_results_key(target, kind, names, opts, include)}.results.json"
    what = f"lm-eval {role} {kind} ({', '.join(names)})"
    if saved.exists():  # the same model, prompt, tasks and settings ran before: no lm-eval process at all
        _collect(json.loads(saved.read_text()), role, kind, scores)
        say(f"{what}: reused its saved results", progress)
        return None
    cmd = _command(target, kind, names, opts, include, out, _cache_file(cache_dir, target, kind))
    say(f"{what}…", progress)
    start = time.monotonic()
    with open(log, "w") as fh:
        rc = _wait_reporting(subprocess.Popen(cmd, stdout=fh, stderr=subprocess.STDOUT, env=env), log, what, start + opts.timeout_s,
                             progress)
    say(f"{what}: {'done' if rc == 0 else 'failed'} in {time.monotonic() - start:.0f} s", progress)
    if rc != 0:
        tail = log.read_text(errors="replace").strip().splitlines()[-1:] or [""]
        return (f"benchmarks: lm-eval for {role} ({kind}: {', '.join(names)}) "
                f"{'timed out' if rc == -1 else f'exited {rc}'}: {tail[0][:200]} (log: {log})")
    data = _read(out)
    saved.write_text(json.dumps({k: data.get(k, {}) for k in ("results", "higher_is_better", "n-samples")}))
    _collect(data, role, kind, scores)
    return None


_TQDM = re.compile(r"([^\r\n]*?\d+%\|[^\r\n]*?\])")


def _wait_reporting(proc: subprocess.Popen, log: Path, what: str, deadline: float, progress: bool, every: float = 30.0) -> int:
    """Wait for lm-eval; every ``every`` seconds say its latest progress bar from the log. Return its exit code (-1: timed out).

    As ``subprocess.run`` does, a timeout or an interrupt (Ctrl-C, CI's SIGTERM) kills the child: no lm-eval outlives the run.
    """
    with proc:
        try:
            while True:
                try:
                    return proc.wait(timeout=max(0.1, min(every, deadline - time.monotonic())))
                except subprocess.TimeoutExpired:
                    if time.monotonic() >= deadline:
                        return -1
                with contextlib.suppress(OSError):
                    bars = _TQDM.findall(log.read_bytes()[-4000:].decode(errors="replace"))
                    say(f"{what}: {' '.join(bars[-1].split())[:120] if bars else 'running'}", progress)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()


def _collect(data: dict[str, Any], role: str, kind: str, scores: dict[tuple[str, str], dict[str, Any]]) -> None:
    """Add one lm-eval results file's metrics for ``role`` to ``scores`` ((task, metric) -> values by role)."""
    for task, metrics in data.get("results", {}).items():
        hib = data.get("higher_is_better", {}).get(task, {})
        n = data.get("n-samples", {}).get(task, {}).get("effective")
        for key, value in metrics.items():
            if key == "alias" or "_stderr," in key or "," not in key:
                continue
            name = key.split(",")[0]
            row = scores.setdefault((task, key), {"kind": kind, "hib": bool(hib.get(name, True)), "n": n})
            row[role] = _num(value)
            row[f"{role}_stderr"] = _num(metrics.get(key.replace(",", "_stderr,", 1)))


def levels(r: BenchmarkResult, opts: BenchmarkOptions) -> BenchmarkResult:
    """Return ``r`` with its interval and forgetting level set: the guardrail rule of the suites, on lm-eval's numbers.

    - Scores in [0, 1] where higher is better (accuracy, exact match) drop in points. With
      lm-eval's standard errors, a drop beyond ``crit_drop`` is CRIT only when it is also
      significant (the 95% interval of the delta below zero), as a general suite's gate
      decides; a drop beyond the threshold that noise could explain is WARN, saying so
      (24 arithmetic documents: 6 right to 2 right is within noise).
    - Perplexities and bits per byte are compared by the relative rise of the cross-entropy
      behind them (bits per byte itself; the logarithm of a perplexity), so the three
      figures lm-eval reports for one task agree: a 4% rise in bits per byte is a 20% rise
      in word perplexity, which a threshold on perplexity itself would call CRIT.
      lm-eval gives them no standard error: the threshold alone decides.
    """
    if r.candidate is None or r.baseline is None:
        return r.model_copy(update={"level": "ERROR", "detail": "not computed for both models"})
    ci = {}
    if r.candidate_stderr is not None and r.baseline_stderr is not None:
        half = 1.959964 * math.hypot(r.candidate_stderr, r.baseline_stderr)
        ci = {"ci_low": r.delta - half, "ci_high": r.delta + half}  # type: ignore[operator]
    if r.higher_is_better:
        drop = r.baseline - r.candidate
        said = f"fell by {drop * 100:.1f} points"
    else:
        drop = _cross_entropy_rise(r.metric, r.candidate, r.baseline)
        said = f"{'cross-entropy ' if 'perplexity' in r.metric else ''}rose by {drop * 100:.1f}%"
    level = "CRIT" if drop > opts.crit_drop else "WARN" if drop > opts.warn_drop else "OK"
    if level == "CRIT" and ci and not ci["ci_high"] < 0:
        level, said = "WARN", f"{said}, not significant: 95% CI of the delta {ci['ci_low']:+.3f} to {ci['ci_high']:+.3f}"
    return r.model_copy(update={"level": level, "detail": said if drop > 0 else "no worse", **ci})


def _cross_entropy_rise(metric: str, candidate: float, baseline: float) -> float:
    """Return the relative rise of the cross-entropy behind a lower-is-better metric (a perplexity's logarithm)."""
    if "perplexity" in metric.split(",")[0]:
        if baseline <= 1.0 or candidate <= 0:  # ln(ppl) <= 0: no cross-entropy to compare relatively
            return candidate - baseline
        return math.log(candidate) / math.log(baseline) - 1.0
    return (candidate - baseline) / abs(baseline) if baseline else 0.0
