"""mergegate against its peers, side by side in one run: the same prompts, the same server, the same concurrency.

    .venv/bin/python bench/bench_peers.py llama   [--cases 40] [--rounds 3] [--concurrency 1 4] [--contenders ...]
    .venv/bin/python bench/bench_peers.py instant [--cases 2000 10000] [--rounds 3]

``llama``: one llama.cpp server with the bundled SmolLM2; each contender
generates the prompts for two roles (candidate, and a prompted baseline with a
system prompt), cache off, greedy, 32 tokens:

- ``bare``: AsyncOpenAI + semaphore + gather (``_bare_loop.py``): the limit;
- ``mergegate``: ``mergegate run`` on a suite of the same prompts (serving,
  scoring, verdict and reports included);
- ``lm-eval``: ``lm_eval --model local-chat-completions`` on a task of the same
  prompts, once per role;
- ``promptfoo``: ``promptfoo eval`` (0.115) with one provider per role
  (installed with npm into ``--promptfoo-dir``; skipped when absent).

``instant``: an OpenAI-compatible server that answers at once
(``_instant_server.py``), 2,000 and 10,000 cases: the harness's own cost,
cases per second and peak RSS, against the bare loop.

Every contender runs as its own process (start-up included), rounds
interleave the contenders so drift hits all alike, and each row prints
min / median / max wall time and the ratio of medians to the bare loop.
Peak RSS comes from ``wait4`` of that process alone.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Callable
from pathlib import Path

HERE = Path(__file__).resolve().parent
PY = sys.executable
SYSTEM = "You are a precise assistant. Answer with only what is asked."
QUESTIONS = ["What is the capital of {}?", "Name one famous food from {}.", "In one sentence, describe the weather in {}.",
             "What language is spoken in {}?"]
PLACES = ["France", "Japan", "Brazil", "Kenya", "Canada", "India", "Norway", "Peru", "Egypt", "Chile"]


def prompts(n: int) -> list[str]:
    """Return ``n`` distinct short prompts."""
    return [QUESTIONS[i % len(QUESTIONS)].format(PLACES[(i // len(QUESTIONS)) % len(PLACES)]) + f" (#{i})" for i in range(n)]


def measure(cmd: list[str], cwd: Path, env: dict[str, str] | None = None) -> tuple[float, float]:
    """Run ``cmd``; return (wall seconds, peak RSS MiB of that process tree's largest process). Raise if it fails."""
    log = cwd / f"log-{time.time_ns()}.txt"
    with open(log, "w") as fh:
        started = time.perf_counter()
        proc = subprocess.Popen(cmd, cwd=cwd, stdout=fh, stderr=subprocess.STDOUT, env={**os.environ, **(env or {})})
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - started
    code = os.waitstatus_to_exitcode(status)
    if code not in (0, 1):  # mergegate exits 1 for NO-GO, which is a complete run
        raise RuntimeError(f"{cmd[:3]} exited {code}: {log.read_text()[-1500:]}")
    return wall, usage.ru_maxrss / 1024


# -- the contenders -----------------------------------------------------------------------------------------


def setup_mergegate(work: Path, base: str, ps: list[str], concurrency: int, max_tokens: int) -> list[str]:
    proj = work / f"mergegate-c{concurrency}"
    (proj / "eval_suites").mkdir(parents=True, exist_ok=True)
    sampling = f"{{temperature: 0, seed: 0, max_tokens: {max_tokens}}}"
    (proj / "mergegate.yaml").write_text(textwrap.dedent(f"""\
        models:
          candidate: {{engine: external, model: bench, base_url: "{base}", served_name: bench, sampling: {sampling}}}
          baseline: {{engine: external, model: bench, base_url: "{base}", served_name: bench, system_prompt: "{SYSTEM}",
                     sampling: {sampling}}}
        generation: {{concurrency: {concurrency}, max_retries: 0, timeout_s: 600}}
        cache: {{enabled: false}}
        min_gates: 0  # the harness alone: no gate folder here, the cases decide
        """))
    cases = [{"id": f"c{i}", "prompt": p, "checks": [{"type": "max_chars", "value": 100000}]} for i, p in enumerate(ps)]
    (proj / "eval_suites" / "bench.yaml").write_text(json.dumps({"name": "bench", "cases": cases}))  # JSON is YAML
    return [str(Path(PY).parent / "mergegate"), "run", "--root", str(proj), "--config", str(proj / "mergegate.yaml")]


def setup_bare(work: Path, base: str, ps: list[str], concurrency: int, max_tokens: int) -> list[str]:
    path = work / "prompts.json"
    path.write_text(json.dumps(ps))
    return [PY, str(HERE / "_bare_loop.py"), base, "bench", str(path), str(concurrency), str(max_tokens), SYSTEM]


def setup_lm_eval(work: Path, base: str, ps: list[str], concurrency: int, max_tokens: int) -> list[str]:
    tasks = work / "lm-eval-tasks"
    tasks.mkdir(exist_ok=True)
    (tasks / "prompts.jsonl").write_text("".join(json.dumps({"prompt": p}) + "\n" for p in ps))
    (tasks / "bench_prompts.yaml").write_text(textwrap.dedent(f"""\
        task: bench_prompts
        dataset_path: json
        dataset_kwargs: {{data_files: {{test: {tasks / 'prompts.jsonl'}}}}}
        test_split: test
        output_type: generate_until
        doc_to_text: "{{{{prompt}}}}"
        doc_to_target: "x"
        generation_kwargs: {{until: [], max_gen_toks: {max_tokens}, do_sample: false, temperature: 0}}
        metric_list: [{{metric: exact_match}}]
        """))
    args = (f"model=bench,base_url={base}/chat/completions,tokenizer_backend=none,tokenized_requests=False,"
            f"num_concurrent={concurrency},max_retries=0")
    one = [PY, "-m", "lm_eval", "--model", "local-chat-completions", "--model_args", args, "--apply_chat_template",
           "--tasks", "bench_prompts", "--include_path", str(tasks), "--seed", "0"]
    script = work / "lm_eval_both.sh"  # lm-eval evaluates one model per run: the A/B comparison is two runs
    script.write_text(f"set -e\n{' '.join(map(_q, one))}\n{' '.join(map(_q, one + ['--system_instruction', SYSTEM]))}\n")
    return ["bash", str(script)]


def setup_promptfoo(work: Path, base: str, ps: list[str], concurrency: int, max_tokens: int, promptfoo_dir: Path) -> list[str]:
    cfg = work / f"promptfoo-c{concurrency}"
    cfg.mkdir(exist_ok=True)
    tests = [{"vars": {"prompt": p}} for p in ps]
    cand = json.dumps([{"role": "user", "content": "{{prompt}}"}])
    basep = json.dumps([{"role": "system", "content": SYSTEM}, {"role": "user", "content": "{{prompt}}"}])
    opts = {"apiBaseUrl": base, "apiKey": "EMPTY", "temperature": 0, "seed": 0, "max_tokens": max_tokens}
    config = {"prompts": [{"id": cand, "label": "candidate"}, {"id": basep, "label": "baseline"}],
              "providers": [{"id": "openai:chat:bench", "label": "candidate", "prompts": ["candidate"], "config": opts},
                            {"id": "openai:chat:bench", "label": "baseline", "prompts": ["baseline"], "config": opts}],
              "tests": tests}
    (cfg / "promptfooconfig.yaml").write_text(json.dumps(config))
    exe = promptfoo_dir / "node_modules" / ".bin" / "promptfoo"
    return [str(exe), "eval", "-c", str(cfg / "promptfooconfig.yaml"), "--no-cache", "--max-concurrency", str(concurrency),
            "--no-progress-bar", "--no-table", "-o", str(cfg / "out.json")]


def check_promptfoo(out: Path, requests: int) -> None:
    """Raise unless promptfoo wrote one answer per request, none of them an error (a fast failure is no benchmark)."""
    rows = json.loads(out.read_text())["results"]["results"]
    bad = [r.get("error") for r in rows if r.get("error")]
    if len(rows) != requests or bad:
        raise RuntimeError(f"promptfoo: {len(rows)} results for {requests} requests; errors: {bad[:2]}")


def check_mergegate(results: Path, requests: int) -> None:
    """Raise unless mergegate sent every request and none failed."""
    gen = json.loads(results.read_text())["generation"]
    if gen["requests_sent"] != requests or gen["errors"]:
        raise RuntimeError(f"mergegate: {gen}")


def _q(s: str) -> str:
    import shlex

    return shlex.quote(s)


PROMPTFOO_ENV = {"PROMPTFOO_DISABLE_TELEMETRY": "1", "PROMPTFOO_DISABLE_UPDATE": "1", "PROMPTFOO_DISABLE_SHARING": "1",
                 "OPENAI_API_KEY": "EMPTY"}


# -- the runs -----------------------------------------------------------------------------------------------


def run_rounds(commands: dict[str, tuple[list[str], dict[str, str]]], rounds: int, work: Path,
               checks: dict[str, Callable[[], None]]) -> dict[str, list[tuple[float, float]]]:
    """Run every contender once per round, in turn (checking what it produced); return their (wall, RSS) per round."""
    out: dict[str, list[tuple[float, float]]] = {name: [] for name in commands}
    for r in range(rounds):
        for name, (cmd, env) in commands.items():
            out[name].append(measure(cmd, work, env))
            if name in checks:
                checks[name]()
            print(f"  round {r + 1} {name}: {out[name][-1][0]:.2f} s, {out[name][-1][1]:.0f} MiB", flush=True)
    return out


def report(title: str, results: dict[str, list[tuple[float, float]]], cases: int, requests: int) -> None:
    ref = statistics.median(w for w, _ in results["bare"])
    print(f"\n{title}")
    print("| contender | min | median | max | ratio to bare (median) | cases/s | peak RSS |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for name, runs in results.items():
        walls = [w for w, _ in runs]
        med = statistics.median(walls)
        print(f"| {name} | {min(walls):.2f} s | {med:.2f} s | {max(walls):.2f} s | {med / ref:.2f} | {cases / med:.0f} | "
              f"{max(r for _, r in runs):.0f} MiB |")
    print(f"({cases} cases, {requests} requests per run)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("server", choices=["llama", "instant"])
    ap.add_argument("--cases", type=int, nargs="+", default=None)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--concurrency", type=int, nargs="+", default=None)
    ap.add_argument("--max-tokens", type=int, default=32)
    ap.add_argument("--contenders", nargs="+", default=["bare", "mergegate", "lm-eval", "promptfoo"])
    ap.add_argument("--promptfoo-dir", type=Path, default=Path(os.environ.get("PROMPTFOO_DIR", "/tmp/pf")))
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-peers-"))
    if args.server == "llama":
        sys.path.insert(0, str(HERE))
        from _common import start_bench_server

        server, base = start_bench_server()
        stop = server.stop
        sizes, concs = args.cases or [40], args.concurrency or [1, 4]
        contenders = args.contenders
    else:
        from mergegate.serving import ManagedServer, free_port

        port = free_port()
        server = ManagedServer("instant", [PY, str(HERE / "_instant_server.py"), str(port)], f"http://127.0.0.1:{port}/v1/models",
                               work / "instant.log")
        server.start(60)
        base, stop = f"http://127.0.0.1:{port}/v1", server.stop
        sizes, concs = args.cases or [2000, 10000], args.concurrency or [16]
        contenders = ["bare", "mergegate"]
    if "promptfoo" in contenders and not (args.promptfoo_dir / "node_modules" / ".bin" / "promptfoo").exists():
        print(f"promptfoo not found under {args.promptfoo_dir}: npm install promptfoo@0.115.0 --ignore-scripts there "
              "(then npm rebuild better-sqlite3); skipping it")
        contenders = [c for c in contenders if c != "promptfoo"]
    try:
        for n in sizes:
            ps = prompts(n)
            for c in concs:
                commands: dict[str, tuple[list[str], dict[str, str]]] = {}
                for name in contenders:
                    if name == "bare":
                        commands[name] = (setup_bare(work, base, ps, c, args.max_tokens), {})
                    elif name == "mergegate":
                        commands[name] = (setup_mergegate(work, base, ps, c, args.max_tokens), {})
                    elif name == "lm-eval":
                        commands[name] = (setup_lm_eval(work, base, ps, c, args.max_tokens),
                                          {"HF_DATASETS_OFFLINE": "1", "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"})
                    elif name == "promptfoo":
                        commands[name] = (setup_promptfoo(work, base, ps, c, args.max_tokens, args.promptfoo_dir),
                                          {**PROMPTFOO_ENV, "PROMPTFOO_CONFIG_DIR": str(work / "promptfoo-home")})
                print(f"{args.server}: {n} prompts x 2 roles, concurrency {c}", flush=True)
                checks: dict[str, Callable[[], None]] = {}
                if "mergegate" in commands:
                    proj = Path(commands["mergegate"][0][3])
                    checks["mergegate"] = lambda p=proj, k=2 * n: check_mergegate(p / "results" / "results.json", k)
                if "promptfoo" in commands:
                    out_json = Path(commands["promptfoo"][0][-1])
                    checks["promptfoo"] = lambda o=out_json, k=2 * n: check_promptfoo(o, k)
                measure(commands["bare"][0], work)  # warm-up: page cache, server caches
                results = run_rounds(commands, args.rounds, work, checks)
                report(f"{args.server} server, {n} prompts x 2 roles, concurrency {c}, {args.rounds} rounds", results, n, 2 * n)
    finally:
        stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
