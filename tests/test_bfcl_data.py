"""BFCL's cases as mergegate data (``scripts/bfcl_data.py``): export, ``mergegate split``, a suite that validates and scores."""

import json
import subprocess
import sys
from pathlib import Path

import yaml

from mergegate.checks import REGISTRY, CheckContext, run_check
from mergegate.cli import main

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "bfcl_data.py"


def _script(*args, cwd):
    done = subprocess.run([sys.executable, str(SCRIPT), *args], cwd=cwd, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_bfcl_cases_become_a_split_and_a_suite_that_validates_and_scores(tmp_path):
    _script("export", "--out", "data/all.jsonl", cwd=tmp_path)
    rows = [json.loads(x) for x in (tmp_path / "data" / "all.jsonl").read_text().splitlines()]
    assert {r["category"] for r in rows} == {"simple_python", "multiple", "irrelevance"} and len(rows) > 700
    assert main(["split", str(tmp_path / "data" / "all.jsonl"), "--key", "group", "--out", str(tmp_path / "data"),
                 "--ratios", "train=0.7", "test=0.3"]) == 0
    train, test = ([json.loads(x) for x in (tmp_path / "data" / f"{s}.jsonl").read_text().splitlines()] for s in ("train", "test"))
    assert len(train) + len(test) == len(rows)
    assert not {r["group"] for r in train} & {r["group"] for r in test}  # a question asked in two categories stays on one side
    _script("suite", "data/test.jsonl", "--out", "eval_suites/bfcl.yaml", cwd=tmp_path)
    (tmp_path / "mergegate.yaml").write_text('models:\n  candidate: {engine: external, model: m, base_url: "http://127.0.0.1:9/v1"}\n'
                                             '  baseline: {engine: external, model: m, base_url: "http://127.0.0.1:9/v1"}\n')
    assert main(["validate", "--root", str(tmp_path)]) == 0
    suite = yaml.safe_load((tmp_path / "eval_suites" / "bfcl.yaml").read_text())
    spec_of = REGISTRY["tool_call"].spec.model_validate
    for case, record in zip(suite["cases"], test, strict=True):
        spec = spec_of(case["checks"][0])
        tools = {t["function"]["name"]: t["function"]["parameters"] for t in case["tools"]}
        answer = record["target"] or "None of these tools can answer that."  # what a model in tool_format: prompt writes
        ctx = CheckContext(output=answer, reference=None, latency_ms=None, suite_dir=tmp_path, tools=tools, calls_in_text=True)
        assert run_check(spec, ctx).passed, (case["id"], answer)
        if record["target"]:  # and a wrong call fails it
            wrong = CheckContext(output=answer.replace(record["expected"][0]["name"], "not_a_tool", 1), reference=None,
                                 latency_ms=None, suite_dir=tmp_path, tools=tools, calls_in_text=True)
            assert run_check(spec, wrong).passed is False, case["id"]
