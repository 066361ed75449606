"""Iterating on a suite: `mergegate init`, the quick-run flags, answers that say nothing, and a terminal that ends with the verdict."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from helpers import make_run
from mergegate.evaluation.assemble import degenerate_warnings
from mergegate.report.terminal import verdict_lines
from mergegate.results import CaseResult, GateResult, Generation, SideResult
from mergegate.results.aggregate import answer_quality
from mergegate.results.messages import readable
from mergegate.verdict import Evidence, Policy, decide

REPO = Path(__file__).resolve().parents[1]
MERGEGATE = str(Path(sys.executable).parent / "mergegate")


def _case(i: int, text: str, finish: str = "stop", prompt: str = "What is the capital of France?") -> CaseResult:
    def side(t: str, why: str) -> SideResult:
        return SideResult(generation=Generation(text=t, finish_reason=why), passed=None)
    return CaseResult(suite="s", id=f"c{i}", category="simple", blocking=False, input=prompt, candidate=side(text, finish),
                      baseline=side("Paris", "stop"))


def test_answers_that_say_nothing_are_counted():
    cases = [_case(0, "  \n "), _case(1, "what is the CAPITAL of  France?"), _case(2, "Paris is", finish="length"), _case(3, "Paris")]
    q = answer_quality(cases, "candidate")
    assert (q.n, q.empty, q.echoed, q.truncated, q.degenerate, q.share) == (4, 1, 1, 1, 3, 0.75)
    assert answer_quality(cases, "baseline").degenerate == 0


def test_a_suite_of_mostly_empty_answers_warns_and_fails_the_default_gate(tmp_path):
    run = make_run(4, candidate=lambda i: "" if i else "x", candidate_passed=lambda i: True)
    q = run.suites[0].answers["candidate"]
    assert (q.empty, q.n) == (3, 4)
    warnings = degenerate_warnings(run.suites, 0.2)
    assert warnings == ["candidate answers in s: 3 of 4 empty"]
    # the shipped gate, run by pytest over these results through the plugin's view
    from mergegate.results import Results

    namespace: dict = {}
    exec(compile((REPO / "gates" / "test_go_no_go.py").read_text(), "gates/test_go_no_go.py", "exec"), namespace)
    suite = Results(run).suite("s")
    with pytest.raises(AssertionError, match="3 of 4 candidate answers are empty"):
        namespace["test_candidate_answers_are_not_mostly_empty"](suite)
    namespace["test_candidate_answers_are_not_mostly_empty"](Results(make_run(4, candidate=lambda i: "x")).suite("s"))


def test_a_partial_run_blocks_but_never_passes():
    cases = [_case(0, "Paris")]
    passed = [GateResult(name="g", outcome="passed")]
    v = decide(Evidence(cases=cases, gates=passed, partial=["benchmarks not run (--no-benchmarks)"]), Policy())
    assert v.outcome == "INCOMPLETE" and "partial run (benchmarks not run (--no-benchmarks))" in v.reasons[0]
    failed = [GateResult(name="g", outcome="failed", message="worse")]
    assert decide(Evidence(cases=cases, gates=failed, partial=["x"]), Policy()).outcome == "NO-GO"
    assert decide(Evidence(cases=cases, gates=passed), Policy()).outcome == "GO"


@pytest.mark.parametrize("raw, shown", [
    ("AssertionError: assert 0.3333333333333333 == 1.0\n +  where 0.3333333333333333 = <Comparison>.candidate",
     "0.3333 == 1.0 does not hold"),
    ("AssertionError: assert not arithmetic: pass_rate: regressed (Δ -27.3 pt)\n +  where arithmetic: ...",
     "arithmetic: pass_rate: regressed (Δ -27.3 pt)"),
    ("AssertionError: 3 of 4 candidate answers are empty\nassert 3 <= (0.5 * 4)", "3 of 4 candidate answers are empty"),
    ("Skipped: no json_schema check in this suite", "no json_schema check in this suite"),
    ("Skipped: got empty parameter set for (general_suite)", "no general suite in this run"),
    ("AssertionError: assert s: pass_rate: no improvement shown: the candidate is not better (n=8)\n + where",
     "s: pass_rate: no improvement shown: the candidate is not better (n=8)"),
])
def test_gate_messages_read_without_pytest_rewrite_text(raw, shown):
    assert readable(raw) == shown


def test_the_terminal_ends_with_the_verdict_and_the_failing_gates(tmp_path):
    run = make_run(2)
    run = run.model_copy(update={"verdict": "NO-GO", "exit_code": 1, "warnings": ["partial run: x"],
                                 "reasons": ["gate failed: gates/t.py::test_a", "blocking case failed: s::c0"],
                                 "gates": [GateResult(name="gates/t.py::test_a", outcome="failed", message="s: pass_rate: regressed"),
                                           GateResult(name="gates/t.py::test_b", outcome="insufficient", message="no interval"),
                                           GateResult(name="gates/t.py::test_c", outcome="skipped", message="no judge")]})
    (tmp_path / "report.md").write_text("x")
    lines = verdict_lines(run, tmp_path)
    assert lines[0] == "mergegate: NO-GO (exit 1)"
    assert "  - blocking case failed: s::c0" in lines and not any("gate failed" in line for line in lines)
    assert "  FAIL   test_a: s: pass_rate: regressed" in lines and "  UNSURE test_b: no interval" in lines
    assert not any("test_c" in line for line in lines) and "  ! partial run: x" in lines
    assert lines[-1].startswith(f"report: {tmp_path / 'report.md'}")


def test_the_scaffold_gates_are_the_shipped_default_gates():
    assert (REPO / "src/mergegate/scaffold/go_no_go.py.txt").read_text() == (REPO / "gates/test_go_no_go.py").read_text()


def _mergegate(root: Path, *args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MERGEGATE_", "GITHUB_"))}
    return subprocess.run([MERGEGATE, *args], cwd=root, capture_output=True, text=True, env=env, timeout=1800)


@pytest.mark.slow
def test_init_validate_and_run_on_the_embedded_default(tmp_path):
    """A new user's first minutes: init in an empty git repository, validate, a smoke run, the full run, a fresh run."""
    subprocess.run(["git", "init", "-q"], cwd=tmp_path, check=True)
    done = _mergegate(tmp_path, "init")
    assert done.returncode == 0 and "mergegate validate" in done.stdout, done.stderr
    assert _mergegate(tmp_path, "init").returncode == 2  # never overwrites
    done = _mergegate(tmp_path, "validate")
    assert (done.returncode, done.stdout.strip()) == (0, "ok: 1 suite(s), 4 case(s)"), done.stderr
    assert json.loads((tmp_path / "schema" / "suite.schema.json").read_text())["title"] == "Suite"

    smoke = _mergegate(tmp_path, "run", "--limit", "2")
    run = json.loads((tmp_path / "results" / "results.json").read_text())
    # never GO: NO-GO when a gate it ran failed (blocking still blocks), INCOMPLETE otherwise
    assert (smoke.returncode, run["verdict"]) in ((1, "NO-GO"), (2, "INCOMPLETE")), smoke.stdout[-2000:]
    assert len(run["cases"]) == 2 and run["meta"]["partial"] and run["warnings"][0].startswith("partial run: only the first 2")
    assert "starting model servers" in smoke.stderr and "generating: 2 case(s)" in smoke.stderr  # the phases say themselves

    full = _mergegate(tmp_path, "run")
    run = json.loads((tmp_path / "results" / "results.json").read_text())
    assert full.returncode in (0, 1) and run["verdict"] in ("GO", "NO-GO") and len(run["cases"]) == 4, full.stdout[-3000:]
    assert run["generation"]["cache_hits"] == 4  # the smoke run's two cases, for both models
    tail = full.stdout.strip().splitlines()
    assert tail[-1].startswith("report: ") and any(line.startswith(f"mergegate: {run['verdict']}") for line in tail[-12:])
    assert (tmp_path / "results" / "report.html").exists()

    fresh = _mergegate(tmp_path, "run", "--no-cache", "--limit", "1")
    run = json.loads((tmp_path / "results" / "results.json").read_text())
    gen = run["generation"]
    assert fresh.returncode in (1, 2) and gen["cache_hits"] == 0 and gen["requests_sent"] == 2, fresh.stderr[-2000:]


def test_the_supervisor_refuses_a_go_from_a_partial_run(tmp_path):
    # a gate that lifted a partial run's verdict in memory (the decision never gives it GO) is caught in the parent process
    from mergegate.cli.supervise import _verdict_in

    results = tmp_path / "results.json"
    results.write_text(json.dumps({"verdict": "GO", "exit_code": 0, "cases": [{}, {}]}))
    record = {"outcome": "GO", "reasons": [], "cases": 2, "partial": False}
    assert _verdict_in(results, 0, record) == (0, "")
    code, why = _verdict_in(results, 0, {**record, "partial": True})
    assert code is None and "partial" in why


def test_import_writes_a_valid_suite_from_csv_and_jsonl(tmp_path):
    (tmp_path / "qa.csv").write_text('question,answer,kind\nWhat is the capital of Peru?,Lima,geo\n"What is 3 + 4, as a number?",7,math\n')
    done = subprocess.run([MERGEGATE, "import", "qa.csv", "--prompt", "question", "--reference", "answer", "--category", "kind",
                           "--check", "contains", "--check", "token_f1", "--role", "general"], cwd=tmp_path, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    from mergegate.suites import load_suite

    suite = load_suite(tmp_path / "eval_suites" / "qa.yaml").suite
    assert (suite.name, suite.role, [c.id for c in suite.cases]) == ("qa", "general", ["qa-1", "qa-2"])
    second = suite.cases[1]
    assert (second.prompt, second.reference, second.category) == ("What is 3 + 4, as a number?", "7", "math")
    assert [c.type for c in second.checks] == ["regex", "token_f1"] and suite.cases[0].checks[0].type == "contains"
    # a short or numeric reference is matched as a whole word: "7" is not in "17", "no" not in "not"
    import re

    word = re.compile(second.checks[0].value, re.IGNORECASE)
    assert [bool(word.search(t)) for t in ("It is 7.", "7", "17", "7.5", "(7)")] == [True, True, False, False, True]

    (tmp_path / "d.jsonl").write_text('{"id": "a", "p": "hi"}\n\n{"id": "a", "p": "again"}\n')
    dup = subprocess.run([MERGEGATE, "import", "d.jsonl", "--prompt", "p", "--id", "id"], cwd=tmp_path, capture_output=True, text=True)
    assert (dup.returncode, dup.stderr.strip()) == (2, "mergegate: error: d.jsonl:3: duplicate id 'a' (--id id)")
    missing = subprocess.run([MERGEGATE, "import", "qa.csv", "--prompt", "q"], cwd=tmp_path, capture_output=True, text=True)
    assert missing.returncode == 2 and missing.stderr.startswith("mergegate: error: qa.csv:2: field 'q' is missing")
    assert not (tmp_path / "eval_suites" / "d.yaml").exists() and "Traceback" not in dup.stderr + missing.stderr
