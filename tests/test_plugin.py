"""The pytest plugin, driven with pytester against the session's real llama.cpp server."""

import json
import textwrap

import pytest

SUITE = textwrap.dedent("""\
    name: capitals
    version: 3
    role: general
    cases:
      - id: france
        prompt: What is the capital of France? Answer in one word.
        reference: Paris
        checks: [{type: contains, value: Paris}, {type: token_f1}]
      - id: impossible
        prompt: Say hello.
        checks: [{type: contains, value: "zzz-never-said-zzz"}]
      - id: scored-only
        prompt: What is the capital of Japan?
        reference: Tokyo
        checks: [{type: rouge_l}]
    """)

GATES_PASS = textwrap.dedent("""\
    def test_france_answered(results):
        assert results.suite("capitals").metric("contains").candidate >= 0.5

    def test_each_suite(any_suite):
        assert any_suite.n == 3
    """)


@pytest.fixture
def project(pytester, llama, tmp_path):
    pytester.makefile(".yaml", mergegate=llama.config_yaml(cache_path=pytester.path / "cache.sqlite"))
    (pytester.path / "eval_suites").mkdir()
    (pytester.path / "eval_suites" / "capitals.yaml").write_text(SUITE)
    (pytester.path / "gates").mkdir()
    return pytester


def test_cases_are_tests_with_suite_ids_and_nonblocking_failures_do_not_block(project):
    (project.path / "gates" / "test_gates.py").write_text(GATES_PASS)
    result = project.runpytest("eval_suites", "gates", "--mergegate-no-progress", "-v")
    result.stdout.fnmatch_lines(["*eval_suites/capitals.yaml::capitals::france PASSED*",
                                 "*capitals::impossible FAILED*", "*mergegate verdict: GO (exit 0)*",
                                 "*1 non-blocking case failure(s): reported, not merge-blocking*"])
    assert result.ret == 0
    run = json.loads((project.path / "results" / "results.json").read_text())
    assert run["verdict"] == "GO" and run["schema_version"] == 1
    assert run["meta"]["suites"][0]["version"] == "3"
    assert {g["outcome"] for g in run["gates"]} == {"passed"}
    assert (project.path / "results" / "report.md").read_text().startswith("<!-- mergegate-report -->")


def test_k_selects_by_case_id(project):
    result = project.runpytest("eval_suites", "--mergegate-no-progress", "-k", "france", "-v")
    result.stdout.fnmatch_lines(["*capitals::france PASSED*"])
    result.assert_outcomes(passed=1, deselected=2)
    run = json.loads((project.path / "results" / "results.json").read_text())
    assert [c["id"] for c in run["cases"]] == ["france"]


def test_blocking_case_failure_is_no_go(project):
    suite = SUITE.replace('checks: [{type: contains, value: "zzz-never-said-zzz"}]',
                          'blocking: true\n    checks: [{type: contains, value: "zzz-never-said-zzz"}]')
    (project.path / "eval_suites" / "capitals.yaml").write_text(suite)
    result = project.runpytest("eval_suites", "--mergegate-no-progress")
    result.stdout.fnmatch_lines(["*blocking case capitals::impossible failed*", "*mergegate verdict: NO-GO (exit 1)*",
                                 "*blocking case failed: capitals::impossible*"])
    assert result.ret == 1


def test_failing_gate_shows_values_and_is_no_go(project):
    (project.path / "gates" / "test_gates.py").write_text(
        "def test_too_strict(results):\n    assert results.suite('capitals').pass_rate.candidate == 1.0\n")
    result = project.runpytest("eval_suites", "gates", "--mergegate-no-progress")
    result.stdout.fnmatch_lines(["*assert 0.5 == 1.0*", "*gate failed: gates/test_gates.py::test_too_strict*"])
    assert result.ret == 1


def test_gate_that_raises_is_incomplete_not_no_go(project):
    """Only an AssertionError is a gate's verdict; any other exception means the gate could not be evaluated."""
    (project.path / "gates" / "test_gates.py").write_text(
        "def test_typo(results):\n    assert results.suite('capitalz').pass_rate.candidate >= 0\n")
    result = project.runpytest("eval_suites", "gates", "--mergegate-no-progress")
    result.stdout.fnmatch_lines(["*no suite 'capitalz' in this run; suites: capitals*", "*mergegate verdict: INCOMPLETE (exit 2)*"])
    assert result.ret == 2


def test_gate_fixture_error_is_incomplete(project):
    (project.path / "gates" / "test_gates.py").write_text(
        "import pytest\n@pytest.fixture\ndef broken():\n    raise RuntimeError('fixture broke')\n"
        "def test_g(results, broken):\n    assert True\n")
    result = project.runpytest("eval_suites", "gates", "--mergegate-no-progress")
    result.stdout.fnmatch_lines(["*mergegate verdict: INCOMPLETE (exit 2)*"])
    assert result.ret == 2


def test_malformed_suite_is_one_line_and_exit_2(project):
    (project.path / "eval_suites" / "broken.yaml").write_text("name: broken\ncases:\n  - id: a\n    prompt: hi\n"
                                                              "    checks: [{type: nope}]\n")
    result = project.runpytest("eval_suites", "--mergegate-no-progress")
    assert result.ret == 2
    result.stdout.fnmatch_lines(["*broken.yaml:5: cases[[]0[]].checks[[]0[]]: unknown check type 'nope'*"])
    assert "Traceback" not in result.stdout.str()


def test_gates_alone_evaluate_every_suite(project):
    (project.path / "gates" / "test_gates.py").write_text(GATES_PASS)
    result = project.runpytest("gates", "--mergegate-no-progress")
    assert result.ret == 0
    result.stdout.fnmatch_lines(["*mergegate verdict: GO*"])


def test_plugin_is_inert_without_suites(pytester):
    pytester.makepyfile("def test_plain():\n    assert 1 + 1 == 2\n")
    result = pytester.runpytest()
    assert result.ret == 0
    assert "mergegate verdict" not in result.stdout.str()
    assert not (pytester.path / "results").exists()
