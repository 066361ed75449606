"""`mergegate init` writes the GitHub workflows for another repository: this repository's own, adapted at write time."""

from __future__ import annotations

import fnmatch
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from mergegate.cli import main
from mergegate.scaffold.workflows import (
    FILES,
    SOURCES,
    WorkflowDrift,
    adapt_workflow,
    default_install_spec,
    requirement,
)

REPO = Path(__file__).resolve().parents[1]
SCAFFOLD = REPO / "src" / "mergegate" / "scaffold"
BIN = Path(sys.executable).parent
SPEC = "mergegate @ git+https://github.com/example-org/mergegate@v0.1.0"
GATE, COMMENT = ".github/workflows/eval-gate.yml", ".github/workflows/eval-gate-comment.yml"
SCRIPTS = (".github/mergegate/last_evaluation.py", ".github/mergegate/history-push.sh")


@pytest.mark.parametrize("name", sorted(SOURCES))
def test_the_shipped_copies_are_the_repository_files(name):
    # byte for byte: the adaptation happens when `mergegate init` writes them (fix with: cp SOURCE src/mergegate/scaffold/NAME)
    assert (SCAFFOLD / name).read_bytes() == (REPO / SOURCES[name]).read_bytes(), f"cp {SOURCES[name]} src/mergegate/scaffold/{name}"


def test_every_shipped_file_is_package_data():
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+
    patterns = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]["mergegate.scaffold"]
    assert {name for name, _, _ in FILES} == set(SOURCES)
    for name, _, _ in FILES:
        assert any(fnmatch.fnmatch(name, p) for p in patterns), f"{name} is not in the wheel ({patterns})"


# -- the adaptation --------------------------------------------------------------------------------

def test_requirement_adds_extras_and_refuses_what_is_not_mergegate_or_not_safe_in_a_run_line():
    assert requirement(SPEC, frozenset({"vllm"})) == "mergegate[vllm] @ git+https://github.com/example-org/mergegate@v0.1.0"
    assert requirement("mergegate[bench]==0.1", frozenset({"vllm"})) == "mergegate[bench,vllm]==0.1"
    assert requirement("mergegate") == "mergegate"
    for bad in ("git+https://github.com/o/mergegate", "other @ git+https://x/y", "mergegate @ https://x/${{ github.token }}",
                "mergegate @ https://x/y'; rm -rf /", "mergegate==0.1 # pinned"):
        with pytest.raises(ValueError):
            requirement(bad)


def test_the_gate_workflow_is_adapted():
    text = (REPO / GATE).read_text()
    out = adapt_workflow(text, SPEC, "mergegate.yaml", "trunk")
    assert "-e ." not in out and "-e '." not in out and "scripts/" not in out
    gpu = "mergegate[gpu] @ git+https://github.com/example-org/mergegate@v0.1.0"
    assert f"run: python -m pip install '{gpu}'  # vLLM and lm-eval, pinned in pyproject.toml" in out
    assert out.count(f"run: python -m pip install '{SPEC}'\n") == 2  # gate, history
    assert "python3 .github/mergegate/last_evaluation.py --sha" in out
    assert "run: bash .github/mergegate/history-push.sh results/results.json" in out
    doc = yaml.safe_load(out)
    assert doc["env"]["MERGEGATE_CONFIG"] == "mergegate.yaml" and doc[True]["push"]["branches"] == ["trunk"]
    assert "mergegate init` writes mergegate.gpu.yaml" in out  # the choice is documented where MERGEGATE_CONFIG is
    kept = yaml.safe_load(adapt_workflow(text, SPEC, "mergegate.gpu.yaml"))
    assert kept["env"]["MERGEGATE_CONFIG"] == "mergegate.gpu.yaml" and kept[True]["push"]["branches"] == ["main"]


def test_the_comment_workflow_is_adapted():
    out = adapt_workflow((REPO / COMMENT).read_text(), SPEC)
    steps = yaml.safe_load(out)["jobs"]["comment"]["steps"]
    assert next(s for s in steps if s.get("id") == "install")["run"] == f"python -m pip install '{SPEC}'"
    assert "-e ." not in out


@pytest.mark.parametrize(("old", "new"), [
    ("python -m pip install -e .\n", "python -m pip install --editable .\n"),  # an install the adaptation does not know
    ("  MERGEGATE_CONFIG: mergegate.gpu.yaml\n", "  MERGEGATE_CONFIG: mergegate.cuda.yaml\n"),
    ("    branches: [main]\n", "    branches: [main, release]\n"),
    ("python3 scripts/last_evaluation.py", "python3 tools/last_evaluation.py"),
    ("'.[gpu]'", '".[gpu]"'),
], ids=["install", "config", "branches", "script", "quoting"])
def test_a_change_the_adaptation_does_not_know_fails_loudly(old, new):
    text = (REPO / GATE).read_text()
    assert old in text
    with pytest.raises(WorkflowDrift):
        adapt_workflow(text.replace(old, new), SPEC)


def test_the_default_install_is_where_this_mergegate_came_from(monkeypatch):
    import importlib.metadata

    class Dist:
        version = "0.1.0"

        def __init__(self, direct_url):
            self.direct_url = direct_url

        def read_text(self, name):
            return json.dumps(self.direct_url) if self.direct_url is not None else None

    def use(direct_url):
        monkeypatch.setattr(importlib.metadata, "distribution", lambda name: Dist(direct_url))
        return default_install_spec()

    git = {"url": "https://github.com/example-org/mergegate.git", "vcs_info": {"vcs": "git", "commit_id": "a" * 40}}
    assert use(git) == (f"mergegate @ git+https://github.com/example-org/mergegate.git@{'a' * 40}", True)
    assert use({**git, "subdirectory": "py"})[0].endswith("#subdirectory=py")
    assert use({**git, "url": "file:///home/me/mergegate"}) == ("mergegate==0.1.0", False)  # a local clone: not on the runner
    assert use({"url": "file:///work/main", "dir_info": {"editable": True}}) == ("mergegate==0.1.0", False)
    assert use(None) == ("mergegate==0.1.0", False)  # installed from an index


# -- mergegate init ---------------------------------------------------------------------------------

@pytest.fixture
def project(tmp_path):
    subprocess.run(["git", "init", "-q", "-b", "trunk"], cwd=tmp_path, check=True)
    return tmp_path


def _init(root: Path, capsys, *args: str) -> tuple[int, str, str]:
    code = main(["init", "--root", str(root), *args])
    out = capsys.readouterr()
    return code, out.out, out.err


def _globs_as_regex(globs: list[str]) -> set[str]:
    return {re.escape(g).replace(r"/\*\*", "/.+").replace(r"\*", "[^/]*") for g in globs}


def test_init_writes_the_workflows_and_their_scripts(project, capsys):
    code, out, err = _init(project, capsys, "--install", SPEC)
    assert code == 0, err
    assert "mergegate validate" in out and '"eval-gate / gate" a required status check of trunk' in out
    assert "the workflows install" not in out  # the spec was given
    for rel in (GATE, COMMENT, *SCRIPTS):
        assert (project / rel).is_file(), rel
    assert os.access(project / SCRIPTS[1], os.X_OK)
    assert (project / SCRIPTS[0]).read_text() == (REPO / "scripts" / "last_evaluation.py").read_text()
    for rel in (GATE, COMMENT):
        text = (project / rel).read_text()
        doc = yaml.safe_load(text)
        assert doc["name"] in ("eval-gate", "eval-gate-comment")
        assert "-e ." not in text and "-e '." not in text and "scripts/" not in text, rel
        assert f"'{SPEC}'" in text, rel
        for job in doc["jobs"].values():
            for step in job["steps"]:
                assert "${{" not in step.get("run", ""), (rel, step)  # values reach scripts through env:, never templated
    gate = yaml.safe_load((project / GATE).read_text())
    assert gate[True]["push"]["branches"] == ["trunk"] and gate["env"]["MERGEGATE_CONFIG"] == "mergegate.yaml"
    # the push filter and the PR's regex name the same paths
    assert _globs_as_regex(gate[True]["push"]["paths"]) == set(gate["env"]["EVALUATED_PATHS"][2:-2].split("|"))


def test_the_repository_s_own_evaluated_paths_agree():
    gate = yaml.safe_load((REPO / GATE).read_text())
    assert _globs_as_regex(gate[True]["push"]["paths"]) == set(gate["env"]["EVALUATED_PATHS"][2:-2].split("|"))


@pytest.mark.parametrize("tool", ["zizmor", "actionlint"])
def test_the_written_workflows_pass_the_audits(project, capsys, tool):
    exe = shutil.which(tool, path=str(BIN)) or shutil.which(tool)
    if not exe:
        pytest.skip(f"{tool} is not installed (it is a dev dependency: pip install -e .[dev])")
    assert _init(project, capsys, "--install", SPEC)[0] == 0
    workflows = project / ".github" / "workflows"
    if tool == "zizmor":  # offline, as tests/test_workflow_rehearsal.py runs it on this repository's workflows
        cmd = [exe, "--offline", "--no-progress", str(workflows)]
    else:
        shellcheck = shutil.which("shellcheck", path=str(BIN)) or shutil.which("shellcheck")
        cmd = [exe, "-no-color", *(["-shellcheck", shellcheck] if shellcheck else []), *map(str, sorted(workflows.glob("*.yml")))]
    done = subprocess.run(cmd, capture_output=True, text=True, cwd=project)
    assert done.returncode == 0, done.stdout + done.stderr


def test_init_without_install_says_what_the_workflows_install(project, capsys):
    spec, known = default_install_spec()
    code, out, _ = _init(project, capsys)
    assert code == 0 and f"python -m pip install '{spec}'" in (project / COMMENT).read_text()
    assert (f"the workflows install {spec}" in out) is not known and ("--install SPEC" in out) is not known


def test_init_keeps_a_gpu_config_the_project_has(project, capsys):
    (project / "mergegate.gpu.yaml").write_text("format: 1\n")
    assert _init(project, capsys, "--install", SPEC)[0] == 0
    assert yaml.safe_load((project / GATE).read_text())["env"]["MERGEGATE_CONFIG"] == "mergegate.gpu.yaml"


def test_no_workflows_writes_none(project, capsys):
    code, out, _ = _init(project, capsys, "--no-workflows")
    assert code == 0 and (project / "mergegate.yaml").exists() and not (project / ".github").exists()
    assert "eval-gate" not in out and "the workflows install" not in out


def test_an_existing_workflow_is_not_overwritten_without_force(project, capsys):
    (project / ".github" / "workflows").mkdir(parents=True)
    (project / GATE).write_text("name: mine\n")
    code, out, err = _init(project, capsys, "--install", SPEC)
    assert code == 2 and len(err.strip().splitlines()) == 1 and GATE in err, err
    assert (project / GATE).read_text() == "name: mine\n" and not (project / "mergegate.yaml").exists()
    assert _init(project, capsys, "--no-workflows")[0] == 0  # the workflows are not written: nothing is in the way
    assert _init(project, capsys, "--install", SPEC, "--force")[0] == 0
    assert yaml.safe_load((project / GATE).read_text())["name"] == "eval-gate"


def test_a_bad_install_spec_is_refused_before_anything_is_written(project, capsys):
    code, _, err = _init(project, capsys, "--install", "git+https://github.com/o/mergegate")
    assert code == 2 and err.startswith("mergegate: error: --install: ") and len(err.strip().splitlines()) == 1
    assert not (project / "mergegate.yaml").exists()
