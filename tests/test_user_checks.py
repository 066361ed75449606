"""A team's own check types: registered from a ``checks:`` module, accepted by validation, scored, summarised by their own metrics."""

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

from helpers import side
from mergegate.checks.registry import REGISTRY
from mergegate.results import CaseResult, summarize
from mergegate.results.models import CheckResult

TEAM_CHECKS = '''\
from mergegate import CheckContext, Outcome, check, side_metric


def yes_share(results):
    """The share of answers that start with "yes" (a suite-level metric this check declares)."""
    said = [r.extra["said_yes"] for r in results]
    return {"yes_share": sum(said) / len(said)} if said else {}


@check("starts_with_word", metrics=[side_metric(yes_share)])
def starts_with_word(ctx: CheckContext, word: str) -> Outcome:
    """Passes when the output's first word is ``word`` (case-insensitive)."""
    first = (ctx.output.split() or [""])[0].strip(".,!").lower()
    return Outcome(score=float(first == word.lower()), passed=first == word.lower(),
                   extra={"said_yes": first == "yes"})
'''

SUITE = """\
name: team
cases:
  - id: sky
    prompt: Is the sky blue? Answer yes or no.
    checks:
      - type: starts_with_word
        word: "yes"
"""


def _project(root: Path, module: str = TEAM_CHECKS, config_extra: str = "checks: [team_checks]\n") -> Path:
    (root / "eval_suites").mkdir()
    (root / "eval_suites" / "team.yaml").write_text(SUITE)
    (root / "team_checks.py").write_text(module)
    (root / "mergegate.yaml").write_text(textwrap.dedent("""\
        models:
          candidate: {engine: external, model: m, base_url: "http://127.0.0.1:9/v1"}
          baseline: {engine: external, model: m, base_url: "http://127.0.0.1:9/v1"}
        """) + config_extra)
    return root


def _mergegate(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "mergegate.cli", *args], cwd=cwd, capture_output=True, text=True, timeout=120)


def test_a_check_from_a_checks_module_validates(tmp_path):
    root = _project(tmp_path)
    done = _mergegate("validate", "--root", str(root), cwd=root)
    assert done.returncode == 0, done.stderr


def test_without_the_checks_module_the_type_is_unknown(tmp_path):
    root = _project(tmp_path, config_extra="")
    done = _mergegate("validate", "--root", str(root), cwd=root)
    assert done.returncode == 2
    assert "team.yaml:6" in done.stderr and "starts_with_word" in done.stderr and "Traceback" not in done.stderr


def test_a_field_the_user_check_does_not_take_is_named_with_its_line(tmp_path):
    root = _project(tmp_path)
    (root / "eval_suites" / "team.yaml").write_text(SUITE + "        wrod: 1\n")
    done = _mergegate("validate", "--root", str(root), cwd=root)
    assert done.returncode == 2
    assert "team.yaml:8" in done.stderr and "wrod" in done.stderr and "Traceback" not in done.stderr


def test_a_checks_module_that_fails_to_import_names_the_config_line(tmp_path):
    root = _project(tmp_path, module="raise RuntimeError('broken on purpose')\n")
    done = _mergegate("run", "--root", str(root), cwd=root)  # the run imports it (validate only reads it)
    assert done.returncode == 2
    line = [x for x in done.stderr.splitlines() if x]
    assert len(line) == 1 and "mergegate.yaml:4" in line[0] and "broken on purpose" in line[0], done.stderr
    assert "Traceback" not in done.stderr


def test_a_checks_entry_that_is_not_a_module_name_is_rejected(tmp_path):
    root = _project(tmp_path, config_extra="checks: [team-checks]\n")
    done = _mergegate("validate", "--root", str(root), cwd=root)
    assert done.returncode == 2 and "mergegate.yaml:4" in done.stderr and "not a module name" in done.stderr


def test_declared_side_metrics_are_summarised_per_model():
    """Aggregation computes the metrics a check declares, for both models, without naming the check."""
    from mergegate.checks import Outcome, check, side_metric

    name = "test_declared_metric_check"
    if name not in REGISTRY:
        @check(name, metrics=[side_metric(lambda rs: {"longest": max(len(r.detail) for r in rs)} if rs else {})])
        def _longest(ctx, word: str = "x") -> Outcome:
            return Outcome(score=1.0, passed=True)

    def case(i: int, cand: str, base: str) -> CaseResult:
        sides = {}
        for role, detail in (("candidate", cand), ("baseline", base)):
            s = side(detail, True)
            s.checks = [CheckResult(type=name, metric=name, score=1.0, passed=True, detail=detail)]
            sides[role] = s
        return CaseResult(suite="s", id=f"c{i}", category="simple", blocking=False, input="q", **sides)

    summary = summarize([case(0, "abc", "a"), case(1, "abcdef", "ab")])
    longest = summary.metrics["longest"]
    assert (longest.candidate, longest.baseline, longest.n) == (6, 2, 2)


def test_builtin_metrics_come_from_their_checks_declarations():
    """label_in, pairwise, llm_rubric and code_tests declare what the summary reports about them."""
    declared = {name: [(m.scope, m.field) for m in REGISTRY[name].metrics] for name in ("label_in", "pairwise", "llm_rubric", "code_tests")}
    assert declared == {"label_in": [("side", None)], "pairwise": [("group", "pairwise")], "llm_rubric": [("group", "rubric")],
                        "code_tests": [("group", "code")]}
    source = (Path(__file__).resolve().parents[1] / "src" / "mergegate" / "results" / "aggregate.py").read_text()
    for name in declared:
        assert f'"{name}"' not in source, f"aggregate.py names the check {name}"
    assert json.loads(json.dumps(declared))  # plain data


def test_a_user_check_is_scored_on_the_real_server_and_its_metric_summarised(tmp_path, llama):
    root = _project(tmp_path)
    (root / "mergegate.yaml").write_text(llama.config_yaml(cache_path=root / "cache.sqlite") + "checks: [team_checks]\n")
    done = _mergegate("run", "--root", str(root), cwd=root)
    assert done.returncode in (0, 1), done.stdout[-2000:] + done.stderr[-2000:]  # a complete run: GO or NO-GO
    run = json.loads((root / "results" / "results.json").read_text())
    case = run["cases"][0]
    for role in ("candidate", "baseline"):
        (chk,) = case[role]["checks"]
        first = (case[role]["generation"]["text"].split() or [""])[0].strip(".,!").lower()
        assert chk["type"] == "starts_with_word" and chk["passed"] is (first == "yes")
        assert run["suites"][0]["metrics"]["yes_share"][role] == float(first == "yes")


def test_a_check_from_an_installed_plugin_s_entry_point_validates(tmp_path):
    """A package that declares ``[mergegate.checks]`` in its entry points: its checks load with the config."""
    site = tmp_path / "site"
    (site / "team_plugin-1.0.dist-info").mkdir(parents=True)
    (site / "team_plugin.py").write_text(TEAM_CHECKS)
    (site / "team_plugin-1.0.dist-info" / "METADATA").write_text("Metadata-Version: 2.1\nName: team-plugin\nVersion: 1.0\n")
    (site / "team_plugin-1.0.dist-info" / "entry_points.txt").write_text("[mergegate.checks]\nteam = team_plugin\n")
    (tmp_path / "project").mkdir()
    root = _project(tmp_path / "project", config_extra="")
    (root / "team_checks.py").unlink()  # only the installed plugin provides the check
    env = {**os.environ, "PYTHONPATH": str(site)}
    done = subprocess.run([sys.executable, "-m", "mergegate.cli", "validate", "--root", str(root)], cwd=root, capture_output=True,
                          text=True, timeout=120, env=env)
    assert done.returncode == 0, done.stderr
    # a plugin that fails to load is one line naming it
    (site / "team_plugin.py").write_text("raise ImportError('missing dependency')\n")
    done = subprocess.run([sys.executable, "-m", "mergegate.cli", "validate", "--root", str(root)], cwd=root, capture_output=True,
                          text=True, timeout=120, env=env)
    assert done.returncode == 2 and "check plugin 'team'" in done.stderr and "missing dependency" in done.stderr
    assert "Traceback" not in done.stderr


def test_validate_runs_none_of_the_project_s_code(tmp_path):
    """A reviewer validates a pull request before trusting it: its checks modules and python-check modules are read, not run."""
    marker = tmp_path / "ran"
    side_effect = f"open({str(marker)!r}, 'a').write('imported\\n')\n"
    root = _project(tmp_path, module=side_effect + TEAM_CHECKS)
    (root / "eval_suites" / "scorer.py").write_text(side_effect + "def score(ctx):\n    return 1.0\n")
    (root / "eval_suites" / "py.yaml").write_text(
        "name: py\ncases:\n  - id: a\n    prompt: hi\n    checks:\n      - {type: python, value: 'scorer:score'}\n")
    done = _mergegate("validate", "--root", str(root), cwd=root)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ok: 2 suite(s), 2 case(s)"
    assert not marker.exists(), "validate executed the project's code"


def test_validate_reads_a_python_check_s_function_and_a_checks_module_s_syntax(tmp_path):
    root = _project(tmp_path)
    (root / "eval_suites" / "scorer.py").write_text("def other(ctx):\n    return 1.0\n")
    (root / "eval_suites" / "py.yaml").write_text(
        "name: py\ncases:\n  - id: a\n    prompt: hi\n    checks:\n      - {type: python, value: 'scorer:score'}\n")
    done = _mergegate("validate", "--root", str(root), cwd=root)
    assert done.returncode == 2 and "py.yaml:6" in done.stderr and "has no function 'score'" in done.stderr, done.stderr
    (root / "eval_suites" / "py.yaml").unlink()
    (root / "team_checks.py").write_text(TEAM_CHECKS + "\ndef broken(:\n")
    done = _mergegate("validate", "--root", str(root), cwd=root)
    lines = [x for x in done.stderr.splitlines() if x]
    assert done.returncode == 2 and len(lines) == 1 and "mergegate.yaml:4" in lines[0], done.stderr
    n = len(TEAM_CHECKS.splitlines()) + 2  # the line of `def broken(:`
    assert f"team_checks.py:{n}: SyntaxError" in lines[0] and "Traceback" not in done.stderr
