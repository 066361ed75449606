"""The demo's two pull requests, end to end: the good adapter is GO, the forgetful one NO-GO, each for its reasons.

The real `mergegate run` on a copy of the shipped demo (configs, suites, gates, adapters): llama.cpp serves
the base model and each adapter, lm-eval runs the benchmarks, the gates decide. The second story reuses the
baseline's cached answers. ~15 minutes on two cores: the product's headline claim, checked on every change.
"""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("demo")
    for name in ("mergegate.yaml", "mergegate.forgetful.yaml"):
        shutil.copy(REPO / name, root / name)
    for folder in ("adapters", "gates", "schema"):
        shutil.copytree(REPO / folder, root / folder)
    shutil.copytree(REPO / "eval_suites" / "demo", root / "eval_suites" / "demo")
    (root / ".gitignore").write_text(".mergegate-cache\nresults*\n")
    return root


def _run(project: Path, config: str) -> tuple[int, dict]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MERGEGATE_", "GITHUB_"))}
    done = subprocess.run([str(Path(sys.executable).parent / "mergegate"), "run", "--config", config, "--", "-q"], cwd=project,
                          capture_output=True, text=True, env=env)
    out = "results-forgetful" if "forgetful" in config else "results"
    results = json.loads((project / out / "results.json").read_text())
    print(done.stdout[-1500:], file=sys.stderr)
    # the last screen is the decision, not pytest's list of failed cases: verdict, failing gates, where the report is
    lines = done.stdout.strip().splitlines()
    block = lines[max(i for i, line in enumerate(lines) if line.startswith("mergegate: ")):]  # after pytest's FAILED lines
    assert block[0] == f"mergegate: {results['verdict']} (exit {done.returncode})" and block[-1].startswith("report: "), block
    assert len(block) <= 12 and not any(line.startswith("FAILED ") for line in block), block
    return done.returncode, results


def _gates(results: dict) -> dict[str, dict]:
    return {g["name"].split("::")[-1]: g for g in results["gates"]}


def test_the_good_adapter_earns_its_go(project):
    code, results = _run(project, "mergegate.yaml")
    assert (code, results["verdict"]) == (0, "GO"), results["reasons"]
    suites = {s["name"]: s for s in results["suites"]}
    target = suites["bfcl_simple"]["pass_rate"]["paired"]
    assert target["ci_low"] > 0.05  # a clear gain, not a borderline one
    gates = _gates(results)
    deciding = [g for name, g in gates.items() if name.startswith(("test_target_suite_improves", "test_general_suite_does_not_regress"))]
    assert len(deciding) == 3 and all(g["outcome"] == "passed" and not g.get("underpowered") for g in deciding), deciding
    contamination = results["contamination"]  # the adapter's training data against every eval case
    assert contamination["records"] > 0 and contamination["cases"] == [] and contamination["per_suite"]["bfcl_simple"] == [0, 106]


def test_the_forgetful_adapter_gets_its_no_go_for_the_documented_reasons(project):
    code, results = _run(project, "mergegate.forgetful.yaml")
    assert (code, results["verdict"]) == (1, "NO-GO"), results["reasons"]
    gates = _gates(results)
    failed = sorted(name for name, g in gates.items() if g["outcome"] == "failed")
    assert any(name.startswith("test_general_suite_does_not_regress") for name in failed), failed
    assert "test_no_critical_forgetting" in failed, failed
    # the target still improved: the fine-tune learnt its task and broke something else
    assert gates["test_target_suite_improves[bfcl_simple]"]["outcome"] == "passed"
    # the baseline's answers came from the first story's cache: only the candidate was asked
    baseline = results["generation"]["per_role"]["baseline"]
    assert (baseline["requests_sent"], baseline["cache_hits"]) == (0, 468)


def test_the_forgetful_storys_report_in_a_real_browser(project, tmp_path):
    # the acceptance on the real demo results: load, filter to failures, open one, no console errors
    from browser import check_report_in_browser, require_browser

    exe = require_browser()
    html = project / "results-forgetful" / "report.html"
    if not html.exists():
        pytest.skip("the forgetful story did not run (its test writes this report)")
    result = check_report_in_browser(html, tmp_path / "forgetful.png", executable=exe)
    print(f"screenshots: {tmp_path / 'forgetful.png'}, {tmp_path / 'forgetful-top.png'}; {result}", file=sys.stderr)
    results = json.loads((project / "results-forgetful" / "results.json").read_text())
    failed = sum(c["candidate"]["passed"] is False for c in results["cases"])
    assert failed > 100 and result["failed"] == failed and result["opened"], result
