"""Reports stay intact under hostile model output; committed schemas match the models; the cache is sound."""

import json
import os
import re
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

import jsonschema

from mergegate.cli import main, schemas
from mergegate.client import ResponseCache, cache_key
from mergegate.report import codeblock, inline, render_html, render_markdown
from mergegate.results import CaseResult, CheckResult, Generation, RunMeta, RunResults, SideResult
from mergegate.verdict import Evidence, decide

ROOT = Path(__file__).resolve().parents[1]
HOSTILE = "@org/team please look ``` </details> <img src=https://evil.example/x.png> | col | <script>alert(1)</script> ````"


def _side(text, passed):
    return SideResult(generation=Generation(text=text, latency_ms=5.0),
                      checks=[CheckResult(type="contains", metric="contains", score=float(passed), passed=passed, detail="x")],
                      passed=passed)


def _run(candidate_text=HOSTILE):
    case = CaseResult(suite="s", id="c1", category="adversarial", blocking=False, input="say hi <b>",
                      candidate=_side(candidate_text, False), baseline=_side("fine", True))
    from mergegate.results import summarize
    from mergegate.results.models import SuiteSummary

    g = summarize([case])
    suite = SuiteSummary(name="s", version="1", role="target", task="other", **g.model_dump(exclude={"pass_rate", "metrics", "latency_ms"}),
                         pass_rate=g.pass_rate, metrics=g.metrics, latency_ms=g.latency_ms)
    v = decide(Evidence(cases=[case]))
    return RunResults(verdict=v.outcome, exit_code=v.exit_code, reasons=list(v.reasons), cases=[case], suites=[suite],
                      meta=RunMeta(mergegate_version="0", started_at="t", config_sha256="0" * 64, python="3", platform="p"))


def test_hostile_output_cannot_break_the_markdown():
    md = render_markdown(_run())
    outside_fences = re.sub(r"(`{3,})text\n.*?\n\1", "", md, flags=re.S)
    assert HOSTILE not in outside_fences  # the raw output only ever appears fenced
    assert outside_fences.count("<details>") == outside_fences.count("</details>")
    assert "<img" not in outside_fences and "<script>" not in outside_fences
    assert "@org/team" not in md and "@\u200borg/team" in md  # no ping
    # the hostile text sits inside a fence longer than any backtick run it holds
    block = codeblock(HOSTILE)
    fence = block.split("text", 1)[0]
    assert len(fence) == 5 and block.endswith(fence)
    assert "<img" not in inline(HOSTILE) and "\\|" in inline(HOSTILE)


def test_huge_output_is_truncated_in_the_report():
    md = render_markdown(_run("x" * 200_000))
    assert len(md) < 20_000 and "more characters" in md


def test_html_report_escapes_output():
    html = render_html(_run())
    # model output travels as JSON with '<' escaped (the viewer shows it with textContent): see tests/test_viewer.py
    assert "<script>alert(1)</script>" not in html and "<img" not in html and "\\u003cscript\\u003ealert(1)" in html


def test_results_json_validates_against_the_committed_schema():
    schema = json.loads((ROOT / "schema" / "results.schema.json").read_text())
    jsonschema.validate(json.loads(_run().model_dump_json()), schema)


def test_committed_schemas_are_up_to_date():
    assert main(["schema", "--dir", str(ROOT / "schema"), "--check"]) == 0, "run: mergegate schema"
    assert set(schemas()) == {p.name for p in (ROOT / "schema").glob("*.json")}


def test_shipped_suites_validate_against_the_suite_schema():
    import yaml

    schema = json.loads((ROOT / "schema" / "suite.schema.json").read_text())
    calibration = json.loads((ROOT / "schema" / "calibration.schema.json").read_text())
    paths = sorted((ROOT / "eval_suites").glob("*.yaml"))
    assert any(p.name.endswith(".calibration.yaml") for p in paths)
    for path in paths:
        jsonschema.validate(yaml.safe_load(path.read_text()), calibration if path.name.endswith(".calibration.yaml") else schema)


def test_cache_key_covers_everything_that_decides_the_response():
    ident = {"engine": "vllm", "engine_version": "0.9", "model": "m", "revision": "r", "adapter": None, "flags": {"dtype": "bf16"}}
    req = {"model": "m", "messages": [{"role": "user", "content": "hi"}], "temperature": 0, "seed": 0, "max_tokens": 10}
    base = cache_key(ident, req)
    assert cache_key(dict(ident), dict(req)) == base
    for field, value in [("engine_version", "0.10"), ("revision", "r2"), ("adapter", "lora"), ("flags", {"dtype": "fp16"}),
                         ("engine", "llama-cpp")]:
        assert cache_key({**ident, field: value}, req) != base, field
    for field, value in [("messages", [{"role": "user", "content": "hi!"}]), ("temperature", 0.7), ("seed", 1), ("max_tokens", 11)]:
        assert cache_key(ident, {**req, field: value}) != base, field


def test_cache_survives_a_killed_writer(tmp_path):
    """SIGKILL a process in the middle of writing: every committed row is intact, the file is sound."""
    db = tmp_path / "c.sqlite"
    script = (f"import sys; sys.path.insert(0, {str(ROOT / 'src')!r})\n"
              f"from mergegate.client import ResponseCache\n"
              f"c = ResponseCache({str(db)!r})\n"
              f"i = 0\n"
              f"while True:\n"
              f"    c.put(f'k{{i}}', {{'text': 'x' * 5000, 'i': i}}); i += 1\n"
              f"    if i == 200: print('ready', flush=True)\n")
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "ready"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert sqlite3.connect(db).execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    cache = ResponseCache(db)
    n = len(cache)
    assert n >= 200
    for i in range(n):
        assert cache.get(f"k{i}") == {"text": "x" * 5000, "i": i}
    cache.close()
