"""The judge inside a whole run: real generations from the session's llama.cpp server.

The judge is either the scripted endpoint (exact outcomes: uncalibrated gates
fail or turn advisory, judge errors make the run INCOMPLETE) or the bundled
SmolLM2 itself (a weak judge, reported honestly).
"""

from __future__ import annotations

import json
import textwrap

import pytest

SUITE = textwrap.dedent("""\
    name: support
    role: general
    cases:
      - id: hello
        prompt: Greet the customer in one short sentence.
        checks: [{type: pairwise}, {type: llm_rubric, criteria: [tone]}, {type: max_words, value: 80}]
      - id: hours
        prompt: "Our shop opens at 9. When do we open? Answer in one sentence."
        reference: At 9.
        checks: [{type: pairwise, criteria: [accuracy]}, {type: llm_rubric, criteria: [accuracy], use_reference: true}, \
{type: max_words, value: 80}]
    """)

CALIBRATION = textwrap.dedent("""\
    format: 1
    name: cal
    items:
      - {id: i1, prompt: p, response_a: GOOD one, response_b: bad one, human: [A, A]}
      - {id: i2, prompt: p, response_a: bad one, response_b: GOOD one, human: [B, B]}
    """)

GATE = textwrap.dedent("""\
    def test_win_rate(results):
        assert results.suite("support").win_rate >= 0.0

    def test_not_a_judge_metric(results):
        assert results.suite("support").pass_rate.n == 2
    """)


def _judge_section(url: str, on_uncalibrated: str = "fail", extra: str = "") -> str:
    return textwrap.dedent(f"""\
        judge:
          model: {{engine: external, model: scripted, base_url: {url}, served_name: scripted-judge, revision: r1}}
          max_output_retries: 1
          calibration: {{on_uncalibrated: {on_uncalibrated}}}
        """) + extra


@pytest.fixture
def project(pytester, tmp_path):
    (pytester.path / "eval_suites").mkdir()
    (pytester.path / "eval_suites" / "support.yaml").write_text(SUITE)
    (pytester.path / "eval_suites" / "support.calibration.yaml").write_text(CALIBRATION)
    (pytester.path / "gates").mkdir()
    (pytester.path / "gates" / "test_gates.py").write_text(GATE)
    return pytester


def _run(project):
    result = project.runpytest("eval_suites", "gates", "--mergegate-no-progress")
    return result, json.loads((project.path / "results" / "results.json").read_text())


def test_calibrated_judge_gates_like_any_metric(project, llama, scripted_judge, tmp_path):
    project.makefile(".yaml", mergegate=llama.config_yaml(cache_path=project.path / "c.sqlite", judge=_judge_section(scripted_judge.url)))
    result, run = _run(project)
    assert result.ret == 0, result.stdout.str()
    cal = run["judge"]["calibration"]
    assert (cal["agreement"], cal["calibrated"], cal["files"]) == (1.0, True, ["eval_suites/support.calibration.yaml"])
    pw = run["suites"][0]["pairwise"]
    assert pw["n"] == 2 and pw["wins"] + pw["losses"] + pw["ties"] == 2 and pw["consistency_rate"] == 1.0
    assert {g["outcome"] for g in run["gates"]} == {"passed"}
    assert run["judge"]["usage"]["calls"] == 2 * 2 + 2 * 2 + 2 * 2  # pairs x2 orders, rubric x2 sides, calibration x2 orders
    md = (project.path / "results" / "report.md").read_text()
    assert "<b>Judge</b>" in md and "✅ calibrated" in md and "estimated cost" in md


def test_uncalibrated_judge_fails_judge_gates_only(project, llama, scripted_judge, tmp_path):
    scripted_judge.mode = "always_a"  # every calibration verdict becomes an inconsistent tie: 0% agreement
    project.makefile(".yaml", mergegate=llama.config_yaml(cache_path=project.path / "c.sqlite", judge=_judge_section(scripted_judge.url)))
    result, run = _run(project)
    assert result.ret == 1
    outcomes = {g["name"].split("::")[-1]: g for g in run["gates"]}
    assert outcomes["test_win_rate"]["outcome"] == "failed"
    assert "judge is uncalibrated" in outcomes["test_win_rate"]["message"]
    assert outcomes["test_not_a_judge_metric"]["outcome"] == "passed"
    md = (project.path / "results" / "report.md").read_text()
    assert "**The judge is uncalibrated**" in md and "Gates on judge metrics fail" in md


def test_uncalibrated_judge_configured_advisory_does_not_block(project, llama, scripted_judge, tmp_path):
    scripted_judge.mode = "always_a"
    project.makefile(".yaml", mergegate=llama.config_yaml(cache_path=project.path / "c.sqlite",
                                                          judge=_judge_section(scripted_judge.url, "advisory")))
    (project.path / "gates" / "test_gates.py").write_text(GATE.replace(">= 0.0", ">= 0.99"))
    result, run = _run(project)
    assert result.ret == 0, result.stdout.str()
    outcomes = {g["name"].split("::")[-1]: g for g in run["gates"]}
    assert outcomes["test_win_rate"]["outcome"] == "advisory"
    assert outcomes["test_win_rate"]["message"].startswith("uncalibrated judge, advisory only; the gate failed")
    result.stdout.fnmatch_lines(["*ADVSY*test_win_rate*"])
    assert "advisory gate(s) on an uncalibrated judge did not count" in run["reasons"][0]


def test_judge_key_is_used_but_never_written_and_cost_is_estimated(project, llama, scripted_judge, tmp_path, monkeypatch):
    secret = "sk-mergegate-test-SECRET-4242"
    monkeypatch.setenv("MG_TEST_JUDGE_KEY", secret)
    section = _judge_section(scripted_judge.url).replace("revision: r1}", "revision: r1, api_key_env: MG_TEST_JUDGE_KEY}")
    section += "  pricing: {input_per_mtok: 2.5, output_per_mtok: 10.0}\n"
    project.makefile(".yaml", mergegate=llama.config_yaml(cache_path=project.path / "c.sqlite", judge=section))
    result, run = _run(project)
    assert result.ret == 0, result.stdout.str()
    assert scripted_judge.auth == {f"Bearer {secret}"}
    written = [p for p in (project.path / "results").rglob("*") if p.is_file()]
    assert written and not [p for p in written if secret in p.read_text(errors="replace")]
    assert secret not in result.stdout.str() + result.stderr.str()
    u = run["judge"]["usage"]
    assert u["prompt_tokens"] > 0 and u["estimated_cost_usd"] == pytest.approx(
        u["prompt_tokens"] / 1e6 * 2.5 + u["completion_tokens"] / 1e6 * 10.0, abs=1e-6)
    assert f"${u['estimated_cost_usd']:.4f}" in (project.path / "results" / "report.md").read_text()


def test_judge_errors_make_the_run_incomplete(project, llama, scripted_judge, tmp_path):
    scripted_judge.mode = "garbage"
    project.makefile(".yaml", mergegate=llama.config_yaml(cache_path=project.path / "c.sqlite", judge=_judge_section(scripted_judge.url)))
    result, run = _run(project)
    assert result.ret == 2 and run["verdict"] == "INCOMPLETE"
    assert any("judge verdict(s) unusable" in r for r in run["reasons"])
    checks = run["cases"][0]["candidate"]["checks"]
    assert checks[0]["score"] is None and checks[0]["detail"].startswith("judge error:")


def test_judge_checks_without_a_judge_are_bad_input(project, llama, tmp_path):
    cfg = llama.config_yaml(cache_path=project.path / "c.sqlite").split("judge:")[0]
    project.makefile(".yaml", mergegate=cfg)
    result, run = _run(project)
    assert result.ret == 2
    assert any("support.yaml" in r and "has no 'judge' section" in r for r in run["reasons"])


def test_use_reference_needs_a_reference(tmp_path):
    from mergegate.errors import SuiteError
    from mergegate.suites import load_suite

    f = tmp_path / "s.yaml"
    f.write_text(SUITE.replace("    reference: At 9.\n", ""))
    with pytest.raises(SuiteError, match=r"s.yaml:\d+: .*use_reference: true but the case has no 'reference'"):
        load_suite(f)


def test_bundled_model_as_judge_on_the_demo_suites(tmp_path, llama, demo_cache):
    """The shipped demo, judged by the bundled SmolLM2: the report shows every judge figure, whatever they are."""
    import subprocess
    import sys

    from conftest import make_demo_project

    root = make_demo_project(tmp_path, llama, demo_cache)
    proc = subprocess.run([sys.executable, "-m", "mergegate.cli", "run", "-k", "support"], cwd=root, capture_output=True, text=True,
                          timeout=1800)
    assert proc.returncode in (0, 1), proc.stderr[-3000:]
    run = json.loads((root / "results" / "results.json").read_text())
    judge = run["judge"]
    assert judge["usage"]["errors"] == 0 and judge["usage"]["calls"] + judge["usage"]["cache_hits"] > 0
    cal = judge["calibration"]
    assert cal["n"] == 8 and cal["raters"] == 3 and cal["agreement"] is not None and cal["cohen_kappa"] is not None
    assert cal["fleiss_kappa"] is not None
    support = next(s for s in run["suites"] if s["name"] == "support")
    pw = support["pairwise"]
    assert pw["n"] == 6 and pw["wins"] + pw["losses"] + pw["ties"] == 6 and pw["lc_win_rate"] is not None
    assert support["rubric"] and all(1 <= m["candidate"] <= 5 for m in support["rubric"].values())
    gate = next(g for g in run["gates"] if "test_judge_does_not_prefer_baseline" in g["name"])
    assert gate["outcome"] in (("passed", "failed") if cal["calibrated"] else ("advisory",))
    md = (root / "results" / "report.md").read_text()
    for text in ("<b>Judge</b>", "win / loss / tie", "length-controlled", "consistent orders", "Rubric scores", "Cohen's κ",
                 "Fleiss' κ", "estimated cost",
                 # issue 5 and 12 figures on the same demo report: intervals, an underpowered suite, detectable effect
                 "Δ (95% CI, paired)", "**Underpowered**", "with 6 cases this suite cannot detect a change smaller than"):
        assert text in md, text
