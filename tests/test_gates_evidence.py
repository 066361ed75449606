"""Gates on evidence, through the plugin: underpowered suites, blocking them by config, --sample, Holm."""

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
        pytester.makefile(".yaml", mergegate=llama.config_yaml(cache_path=pytester.path / "c.sqlite", extra=extra))
    config()
    pytester.config_for = config
    return pytester


def _run(project, *args):
    result = project.runpytest("eval_suites", "gates", "--mergegate-no-progress", *args)
    return result, json.loads((project.path / "results" / "results.json").read_text())


def test_a_small_suite_is_flagged_underpowered_which_warns_by_default(project):
    result, run = _run(project)
    gates = {g["name"].split("::")[-1]: g for g in run["gates"]}
    g = gates["test_no_regression"]
    assert g["outcome"] == "passed", gates  # no significant drop beyond the tolerance
    weak = g["underpowered"]
    assert weak.startswith("capitals: pass_rate: ") and "underpowered" in weak and "cases would" in weak
    assert gates["test_delta_reads_naturally"]["outcome"] == "passed"
    assert result.ret == 0 and run["verdict"] == "GO"
    assert any("underpowered suite (stats.underpowered: warn)" in r for r in run["reasons"])
    md = (project.path / "results" / "report.md").read_text()
    assert "**Underpowered** in 1 gate(s)" in md and "stats.underpowered: block" in md
    assert "with 6 cases this suite cannot" in md and "95% CI of Δ" in md
    pr = run["suites"][0]["pass_rate"]["paired"]
    assert pr["n"] == 6 and pr["method"].startswith("Agresti-Min") and pr["cases_needed"] > 6
    timings = run["meta"]["timings"]  # every phase's wall time is recorded
    assert {"serve", "generate", "score", "assemble", "gates"} <= set(timings) and all(v >= 0 for v in timings.values())


def test_an_underpowered_suite_blocks_when_configured(project):
    project.config_for("stats: {underpowered: block}\n")
    result, run = _run(project)
    assert result.ret == 1 and run["verdict"] == "NO-GO"
    assert any(r.startswith("underpowered (stats.underpowered: block)") for r in run["reasons"])


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


def test_holm_undoes_conclusions_that_do_not_survive_the_correction():
    from mergegate.results import GateResult
    from mergegate.verdict import Policy, apply_holm

    # every regressed()/improved() call is in the family, conclusive or not; one-sided tests at 0.025
    findings = {"g1": [("regressed", True, 0.001)], "g2": [("regressed", True, 0.012)], "g3": [("regressed", False, 0.4)],
                "t1": [("improved", True, 0.011)]}
    gates = [GateResult(name=n, outcome=o) for n, o in (("g1", "failed"), ("g2", "failed"), ("g3", "passed"), ("t1", "passed"))]
    out = {g.name: g for g in apply_holm(gates, findings, Policy(holm=True))}
    # Holm over 4 at 0.025: 0.001*4 = 0.004 kept; 0.011*3 = 0.033 > 0.025: stop. g2 and t1 lose their conclusions
    assert out["g1"].outcome == "failed" and out["g2"].outcome == "insufficient" and out["g3"].outcome == "passed"
    assert out["t1"].outcome == "failed" and "Holm" in out["t1"].message and "Holm" in out["g2"].message
    unchanged = {g.name: g.outcome for g in apply_holm(gates, findings, Policy(holm=False))}
    assert unchanged == {"g1": "failed", "g2": "failed", "g3": "passed", "t1": "passed"}


def test_a_passing_guardrail_says_when_it_measured_a_drop_it_could_not_confirm(tmp_path):
    # a drop beyond the tolerance that is not significant passes the gate, and the gate's message says so
    from types import SimpleNamespace

    from mergegate.results import Comparison, Finding
    from mergegate.session import MergegateSession, RunOptions
    from mergegate.stats import guardrail

    ms = MergegateSession(RunOptions(), tmp_path)
    ms.begin_gate()
    d = guardrail(-0.08, -0.20, 0.04, 60, 0.95, 0.2, 0.05, name="s: pass_rate: ")
    ms._record_finding(Finding(d.found, "regressed", Comparison(name="pass_rate"), 0.05, d.p_value, decision=d))
    ms.record(SimpleNamespace(nodeid="gates/g.py::test_g", when="call", outcome="passed", skipped=False, failed=False, longrepr=None))
    g = ms.gate_reports["gates/g.py::test_g"]
    assert g.outcome == "passed" and "a drop beyond the 5% tolerance was measured but is not significant" in g.message
    assert g.underpowered and "cases would catch 10 pt" in g.underpowered and "with its 5% tolerance this rule" in g.underpowered


def test_insufficient_evidence_is_not_shown_as_failed(project):
    # one case: no interval, so the gate cannot conclude; pytest's output must not call that FAILED (it does not block)
    result, run = _run(project, "-k", "france or test_no_regression", "-v")
    gate = next(g for g in run["gates"] if g["name"].endswith("test_no_regression"))
    assert gate["outcome"] == "insufficient" and result.ret == 0, (gate, run["reasons"])
    result.stdout.fnmatch_lines(["*test_no_regression INSUFFICIENT EVIDENCE*"])
    assert "FAILED gates/test_gates.py::test_no_regression" not in result.stdout.str()
    result.stdout.fnmatch_lines(["*1 insufficient*"])


def test_a_gate_reading_benchmarks_a_run_left_out_never_sees_an_empty_list(project):
    # -k keeps the benchmark phase only for a gate whose source names benchmarks; one that reads them through a helper
    # must not see [] (no CRIT row, so "no forgetting" would pass): it errors, and the run is INCOMPLETE
    (project.path / "gates" / "test_forgetting.py").write_text(textwrap.dedent("""\
        import pytest

        def crit_rows(results):
            return [b for b in results.benchmarks if b.level == "CRIT"]

        def test_nothing_forgotten(results):
            assert not crit_rows(results)
        """))
    project.config_for("benchmarks: {tasks: [mg_facts], limit: 2}\n")
    result, run = _run(project, "-k", "test_nothing_forgotten")
    gate = next(g for g in run["gates"] if g["name"].endswith("test_nothing_forgotten"))
    assert gate["outcome"] == "error" and "benchmarks were not run" in gate["message"], gate
    assert (result.ret, run["verdict"]) == (2, "INCOMPLETE") and run["benchmarks"] == []
    # --no-benchmarks says what it left out: the gate is skipped with the reason, and the partial run is never GO
    result, run = _run(project, "--mergegate-no-benchmarks", "-k", "test_nothing_forgotten")
    gate = next(g for g in run["gates"] if g["name"].endswith("test_nothing_forgotten"))
    assert (gate["outcome"], gate["message"]) == ("skipped", "benchmarks not run (--no-benchmarks)"), gate
    assert (result.ret, run["verdict"]) == (2, "INCOMPLETE")


def test_a_failed_gate_says_its_finding_whole(project):
    # pytest cuts a repr longer than 240 characters in the middle ("+12...wered"): the recorded message is the whole finding
    (project.path / "gates" / "test_target.py").write_text(
        "def test_capitals_improve(results):\n    assert results.suite('capitals').improved('pass_rate', by=0.05)\n")
    result, run = _run(project, "-k", "test_capitals_improve")
    gate = next(g for g in run["gates"] if g["name"].endswith("test_capitals_improve"))
    assert gate["outcome"] == "failed" and len(gate["message"]) > 240, gate
    assert "..." not in gate["message"] and gate["message"].endswith("cases would catch 10 pt"), gate["message"]
    from mergegate.report.render import inline

    md = (project.path / "results" / "report.md").read_text()
    assert inline(gate["message"], 600) in md  # the Why bullet, whole
