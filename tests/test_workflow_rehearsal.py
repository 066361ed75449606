"""A rehearsal of the whole PR flow without GitHub.

The jobs of ``.github/workflows/eval-gate.yml`` and ``eval-gate-comment.yml``
run as written (parsed, not copied) through ``actions_local.LocalRunner``:
real git (a bare repository is the remote), real ``mergegate`` commands,
llama.cpp on CPU where the GPU runner would serve vLLM (MERGEGATE_CONFIG's
file holds the CPU config), and a local double of the GitHub REST API.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from actions_local import LocalRunner, evaluate
from conftest import make_demo_project
from mergegate.report import GITHUB_COMMENT_LIMIT, MARKER

REPO = Path(__file__).resolve().parents[1]
WORKFLOWS = REPO / ".github" / "workflows"
GATE = WORKFLOWS / "eval-gate.yml"
COMMENT = WORKFLOWS / "eval-gate-comment.yml"
PR = 7
INSTALL_STEPS = {"install"}  # `pip install -e .[vllm]`: this venv has mergegate already, and vLLM cannot install here


def _git(cwd: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, text=True).stdout.strip()


def _commit(tree: Path, message: str) -> str:
    _git(tree, "add", "-A")
    _git(tree, "-c", "user.name=dev", "-c", "user.email=dev@example.com", "commit", "-qm", message)
    return _git(tree, "rev-parse", "HEAD")


@pytest.fixture(scope="module")
def repo(llama, demo_cache, tmp_path_factory):
    """A project with the shipped suites, gates, workflows and scripts, pushed to a local bare 'origin'."""
    base = tmp_path_factory.mktemp("rehearsal")
    origin = base / "origin.git"
    _git(base, "init", "-q", "--bare", "-b", "main", str(origin))
    tree = make_demo_project(base / "tree", llama, demo_cache)
    # the CPU stand-in for the GPU config: the workflow names the file, the file names llama.cpp
    config_name = yaml.safe_load(GATE.read_text())["env"]["MERGEGATE_CONFIG"]
    (tree / "mergegate.yaml").rename(tree / config_name)
    shutil.copytree(WORKFLOWS, tree / ".github" / "workflows")
    shutil.copytree(REPO / "scripts", tree / "scripts")
    _git(tree, "init", "-q", "-b", "main")
    main_sha = _commit(tree, "initial")
    _git(tree, "remote", "add", "origin", str(origin))
    _git(tree, "push", "-q", "origin", "main")
    return {"origin": origin, "tree": tree, "main": main_sha, "work": base / "work"}


@pytest.fixture
def runner(repo, github):
    work = repo["work"]
    work.mkdir(exist_ok=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GITHUB_", "MERGEGATE_"))}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env['PATH']}"
    env["GITHUB_API_URL"] = github.url
    return LocalRunner(origin=repo["origin"], work=work, env=env, skip_steps=INSTALL_STEPS)


def _pr_payload(sha: str, action: str, fork: bool = False, label: str | None = None) -> dict:
    payload = {"action": action, "number": PR,
               "pull_request": {"number": PR, "head": {"sha": sha, "ref": "new-checkpoint",
                                                         "repo": {"full_name": "mallory/models" if fork else "acme/models"}},
                                "base": {"ref": "main", "repo": {"full_name": "acme/models"}}}}
    if label:
        payload["label"] = {"name": label}
    return payload


def _run_pr(runner: LocalRunner, github, sha: str, run_id: str, action: str) -> dict:
    """Run eval-gate for a PR event and then eval-gate-comment for its completion; return both results."""
    gate = runner.run_workflow(GATE, "pull_request", _pr_payload(sha, action), run_id, sha, f"refs/pull/{PR}/merge",
                               token="read-only-token")
    conclusion = "failure" if any(leg.result == "failure" for legs in gate.values() for leg in legs) else "success"
    github.heads[PR] = sha
    payload = {"action": "completed", "workflow_run": {
        "id": int(run_id), "event": "pull_request", "conclusion": conclusion, "head_sha": sha,
        "html_url": f"https://github.com/acme/models/actions/runs/{run_id}", "pull_requests": []}}
    comment = runner.run_workflow(COMMENT, "workflow_run", payload, f"{run_id}1", runner_main_sha(runner), "refs/heads/main",
                                  token=github.token)
    return {"gate": gate, "comment": comment}


def runner_main_sha(runner: LocalRunner) -> str:
    return _git(runner.origin, "rev-parse", "main")


def test_pr_flow_end_to_end(repo, runner, github):
    tree = repo["tree"]
    # 1. a push to main: the main line is evaluated and its history recorded
    push = runner.run_workflow(GATE, "push", {"ref": "refs/heads/main"}, "100", repo["main"], "refs/heads/main")
    assert [leg.result for leg in push["history"]] == ["success"], push["history"][0].step("append").output
    history = _git(repo["origin"], "show", "mergegate-history:history.jsonl").splitlines()
    assert len(history) == 1 and json.loads(history[0])["commit"] == repo["main"]

    # 2. a PR proposes a change: evaluated on the (GPU) shard runners, merged, gated, commented
    _git(tree, "checkout", "-q", "-b", "new-checkpoint")
    (tree / "gates" / "README.md").write_text("proposed change\n")
    sha1 = _commit(tree, "propose")
    _git(tree, "push", "-q", "origin", "new-checkpoint")
    first = _run_pr(runner, github, sha1, "200", "opened")
    shards = first["gate"]["shard"]
    assert [leg.result for leg in shards] == ["success", "success"]
    assert all(leg.runs_on == ["self-hosted", "linux", "gpu"] for leg in shards)
    assert all(leg.step("install").outcome == "skipped" for leg in shards)
    assert first["gate"]["history"][0].result == "skipped"  # only pushes to main write history

    gate = first["gate"]["gate"][0]
    results = json.loads((runner.work / "artifacts" / "200" / "mergegate-results" / "results.json").read_text())
    assert gate.step("verdict").exit_code == results["exit_code"]  # the required check carries the verdict
    assert gate.result == ("success" if results["exit_code"] == 0 else "failure")
    assert results["meta"]["ci"]["pr_number"] == PR and results["meta"]["ci"]["head_sha"] == sha1
    assert results["verdict"] in gate.summary  # the report went to the step summary
    assert len(results["meta"]["merged_from"]) == 2

    posted = github.calls("POST", rf"/repos/acme/models/issues/{PR}/comments")
    assert len(posted) == 1, first["comment"]["comment"][0].step("comment").output
    body = posted[0].body["body"]
    assert body.startswith(MARKER) and len(body) <= GITHUB_COMMENT_LIMIT
    assert results["verdict"] in body.splitlines()[1]
    assert "https://github.com/acme/models/actions/runs/200" in body and sha1[:12] in body
    assert "### Main line trend (last 1 runs)" in body  # history from step 1
    assert "```mermaid" in body
    # the comment job proved the artifact's PR number against the head it evaluated
    assert github.calls("GET", rf"/repos/acme/models/pulls/{PR}")

    # 3. a second push to the PR: the same comment is updated, never duplicated
    (tree / "gates" / "README.md").write_text("proposed change, revised\n")
    sha2 = _commit(tree, "revise")
    _git(tree, "push", "-q", "origin", "new-checkpoint")
    _run_pr(runner, github, sha2, "300", "synchronize")
    assert len(github.calls("POST", r".*")) == 1 and len(github.calls("PATCH", r".*")) == 1
    ours = github.ours(PR, MARKER)
    assert len(ours) == 1 and sha2[:12] in ours[0]["body"] and len(ours[0]["body"]) <= GITHUB_COMMENT_LIMIT


def test_fork_prs_need_a_maintainer_label():
    wf = yaml.safe_load(GATE.read_text())
    cond = wf["jobs"]["shard"]["if"]

    def runs(payload: dict, event: str = "pull_request") -> bool:
        return bool(evaluate(cond, {"github": {"event_name": event, "event": payload, "repository": "acme/models"}}))

    assert runs(_pr_payload("a" * 40, "opened"))
    assert not runs(_pr_payload("a" * 40, "opened", fork=True))
    assert not runs(_pr_payload("a" * 40, "synchronize", fork=True))  # a push after the label needs a new label
    assert runs(_pr_payload("a" * 40, "labeled", fork=True, label="safe-to-evaluate"))
    assert not runs(_pr_payload("a" * 40, "labeled", fork=True, label="bug"))
    assert not runs(_pr_payload("a" * 40, "labeled", label="bug"))  # labels do not re-run same-repo PRs either
    assert runs({"ref": "refs/heads/main"}, event="push")


def test_least_privilege_and_no_script_injection():
    gate, comment = yaml.safe_load(GATE.read_text()), yaml.safe_load(COMMENT.read_text())
    assert gate["permissions"] == {"contents": "read"} and comment["permissions"] == {}
    on = gate[True] if True in gate else gate["on"]  # PyYAML reads the key `on` as True
    assert "pull_request_target" not in on
    for name, job in gate["jobs"].items():
        writes = {k for k, v in job["permissions"].items() if v == "write"}
        assert writes == ({"contents"} if name == "history" else set()), name
    assert "github.event_name == 'push'" in gate["jobs"]["history"]["if"]
    assert comment["jobs"]["comment"]["permissions"] == {"actions": "read", "contents": "read", "pull-requests": "write"}
    for wf in (gate, comment):
        for job in wf["jobs"].values():
            for step in job["steps"]:
                assert "${{" not in step.get("run", ""), f"expression inside a script: {step}"  # values go through env
                if step.get("uses", "").startswith("actions/checkout"):
                    assert step.get("with", {}).get("ref") in (None, "mergegate-history")  # never the PR's head in a writing job
    assert "trust_remote_code: true" not in (REPO / "mergegate.gpu.yaml").read_text()


def test_workflows_pass_actionlint():
    bin_dir = str(Path(sys.executable).parent)
    exe = shutil.which("actionlint", path=bin_dir) or shutil.which("actionlint")
    shellcheck = shutil.which("shellcheck", path=bin_dir) or shutil.which("shellcheck")
    assert exe and shellcheck, "actionlint and shellcheck are dev dependencies (pip install -e .[dev])"
    # with shellcheck, actionlint also lints every `run:` script
    out = subprocess.run([exe, "-no-color", "-shellcheck", shellcheck, *map(str, sorted(WORKFLOWS.glob("*.yml")))],
                         capture_output=True, text=True, cwd=REPO)
    assert out.returncode == 0, out.stdout + out.stderr
