"""Gates on evidence, through the plugin: the insufficient-evidence verdict, blocking it by config, --sample, Holm."""

from __future__ import annotations

import json
import textwrap

import pytest

SUITE = textwrap.dedent("""\
    name: capitals
    role: general
    cases:
      - {id: france, category: europe, prompt: "What is the capital of France? One word.", reference: Paris, \
checks: [{type: contains, value: Paris}, {type: token_f1}]}
      - {id: italy, category: europe, prompt: "What is the capital of Italy? One word.", reference: Rome, \
checks: [{type: contains, value: Rome}, {type: token_f1}]}
      - {id: spain, category: europe, prompt: "What is the capital of Spain? One word.", reference: Madrid, \
checks: [{type: contains, value: Madrid}, {type: token_f1}]}
      - {id: japan, category: asia, prompt: "What is the capital of Japan? One word.", reference: Tokyo, \
checks: [{type: contains, value: Tokyo}, {type: token_f1}]}
      - {id: china, category: asia, prompt: "What is the capital of China? One word.", reference: Beijing, \
checks: [{type: contains, value: Beijing}, {type: token_f1}]}
      - {id: kenya, category: africa, prompt: "What is the capital of Kenya? One word.", reference: Nairobi, \
checks: [{type: contains, value: Nairobi}, {type: token_f1}]}
    """)

GATES = textwrap.dedent("""\
    def test_no_regression(results):
        assert not results.suite("capitals").regressed("pass_rate", by=0.05)

    def test_delta_reads_naturally(results):
        d = results.suite("capitals").delta("token_f1")
        assert d.ci_low <= d.delta <= d.ci_high and d.paired.n == results.suite("capitals").n
    """)


@pytest.fixture
def project(pytester, llama, tmp_path):
    (pytester.path / "eval_suites").mkdir()
    (pytester.path / "eval_suites" / "capitals.yaml").write_text(SUITE)
    (pytester.path / "gates").mkdir()
    (pytester.path / "gates" / "test_gates.py").write_text(GATES)

    def config(extra: str = "") -> None:
        pytester.makefile(".yaml", mergegate=llama.config_yaml(cache_path=tmp_path / "c.sqlite", extra=extra))
    config()
    pytester.config_for = config
    return pytester


def _run(project, *args):
    result = project.runpytest("eval_suites", "gates", "--mergegate-no-progress", *args)
    return result, json.loads((project.path / "results" / "results.json").read_text())


def test_a_small_suite_gives_insufficient_evidence_which_does_not_block_by_default(project):
    result, run = _run(project)
    gates = {g["name"].split("::")[-1]: g for g in run["gates"]}
    assert gates["test_no_regression"]["outcome"] == "insufficient", gates
    msg = gates["test_no_regression"]["message"]
    assert msg.startswith("insufficient evidence: capitals: pass_rate: Δ") and "95% CI" in msg and "n=6" in msg
    assert gates["test_delta_reads_naturally"]["outcome"] == "passed"
    assert result.ret == 0 and run["verdict"] == "GO"
    assert any("insufficient evidence" in r for r in run["reasons"])
    result.stdout.fnmatch_lines(["*INSUF*test_no_regression*insufficient evidence*"])
    md = (project.path / "results" / "report.md").read_text()
    assert "**Insufficient evidence** in 1 gate(s)" in md and "(not blocking)" in md
    assert "with 6 cases this suite cannot" in md and "95% CI of Δ" in md
    pr = run["suites"][0]["pass_rate"]["paired"]
    assert pr["n"] == 6 and pr["method"].startswith("Agresti-Min") and pr["cases_needed"] > 6


def test_insufficient_evidence_blocks_when_configured(project):
    project.config_for("stats: {insufficient_evidence: block}\n")
    result, run = _run(project)
    assert result.ret == 1 and run["verdict"] == "NO-GO"
    assert any(r.startswith("insufficient evidence (stats.insufficient_evidence: block)") for r in run["reasons"])


def test_sample_is_stratified_seeded_and_recorded(project):
    result, run = _run(project, "--mergegate-sample", "3")
    assert [c["category"] for c in run["cases"]].count("europe") >= 1 and len(run["cases"]) == 3
    assert {c["category"] for c in run["cases"]} == {"europe", "asia", "africa"}
    assert run["meta"]["sample"] == {"size": 3, "seed": 0, "population": {"capitals": {"europe": 3, "asia": 2, "africa": 1}}}
    assert run["suites"][0]["pass_rate"]["paired"]["method"].startswith("stratified sample")
    again, run2 = _run(project, "--mergegate-sample", "3")
    assert [c["id"] for c in run2["cases"]] == [c["id"] for c in run["cases"]]
    assert "sample of 3 cases" in (project.path / "results" / "report.md").read_text()


def test_sample_must_be_positive(tmp_path):
    import subprocess
    import sys

    proc = subprocess.run([sys.executable, "-m", "mergegate.cli", "run", "--sample", "0"], cwd=tmp_path, capture_output=True, text=True)
    assert proc.returncode == 2 and proc.stderr.strip() == "mergegate: error: --sample wants a positive number of cases, got 0"


def test_holm_turns_failures_that_do_not_survive_the_correction_into_insufficient():
    from mergegate.results import Comparison, GateResult
    from mergegate.results.view import Finding
    from mergegate.verdict import Policy, apply_holm

    c = Comparison(name="pass_rate")
    findings = {"g1": [Finding(True, "regressed", c, 0.05, 0.001)], "g2": [Finding(True, "regressed", c, 0.05, 0.03)],
                "g3": [Finding(False, "regressed", c, 0.05, 0.2)]}
    gates = [GateResult(name=n, outcome=o) for n, o in (("g1", "failed"), ("g2", "failed"), ("g3", "passed"))]
    p_values = {name: [f.p_value for f in fs] for name, fs in findings.items()}
    out = {g.name: g for g in apply_holm(gates, p_values, Policy(holm=True))}
    # Holm over 3: 0.001*3 = 0.003 rejected; 0.03*2 = 0.06 not: g2 no longer counts as a failure
    assert out["g1"].outcome == "failed" and out["g2"].outcome == "insufficient" and out["g3"].outcome == "passed"
    assert {g.name: g.outcome for g in apply_holm(gates, p_values, Policy(holm=False))} == {"g1": "failed", "g2": "failed", "g3": "passed"}
    assert "Holm" in out["g2"].message
