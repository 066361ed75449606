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
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from actions_local import LocalRunner, evaluate, substitute
from conftest import make_demo_project
from mergegate.report import GITHUB_COMMENT_LIMIT, MARKER

REPO = Path(__file__).resolve().parents[1]
WORKFLOWS = REPO / ".github" / "workflows"
GATE = WORKFLOWS / "eval-gate.yml"
COMMENT = WORKFLOWS / "eval-gate-comment.yml"
PR = 7
# `pip install -e .[vllm]`: this venv has mergegate already, and vLLM cannot install here; bubblewrap: installed by bootstrap
INSTALL_STEPS = {"install", "sandbox"}


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
    return LocalRunner(origin=repo["origin"], work=work, env=env, skip_steps=INSTALL_STEPS,
                       caches={".mergegate-cache": repo["tree"].joinpath(".mergegate-cache").resolve()})


def _pr_payload(sha: str, action: str, fork: bool = False, label: str | None = None, base: str = "") -> dict:
    payload = {"action": action, "number": PR,
               "pull_request": {"number": PR, "head": {"sha": sha, "ref": "new-checkpoint",
                                                         "repo": {"full_name": "mallory/models" if fork else "acme/models"}},
                                "base": {"ref": "main", "sha": base, "repo": {"full_name": "acme/models"}}}}
    if label:
        payload["label"] = {"name": label}
    return payload


def _run_pr(runner: LocalRunner, github, sha: str, run_id: str, action: str) -> dict:
    """Run eval-gate for a PR event and then eval-gate-comment for its completion; return both results."""
    gate = runner.run_workflow(GATE, "pull_request", _pr_payload(sha, action, base=runner_main_sha(runner)), run_id, sha,
                               f"refs/pull/{PR}/merge", token="read-only-token")
    conclusion = "failure" if any(leg.result == "failure" for legs in gate.values() for leg in legs) else "success"
    github.heads[PR] = sha
    payload = {"action": "completed", "workflow_run": {
        "id": int(run_id), "event": "pull_request", "conclusion": conclusion, "head_sha": sha,
        "path": ".github/workflows/eval-gate.yml", "head_repository": {"full_name": "acme/models"},
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
    assert first["gate"]["plan"][0].outputs == {"mode": "evaluate"}
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
    assert "<b>Main line trend (last 1 runs)</b>" in body  # history from step 1
    assert "```mermaid" in body
    assert first["comment"]["comment"][0].step("provenance").outputs == {"unverified": ""}  # a same-repo run that agrees
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


def test_workflows_pass_zizmor():
    bin_dir = str(Path(sys.executable).parent)
    exe = shutil.which("zizmor", path=bin_dir) or shutil.which("zizmor")
    if not exe:
        pytest.skip("zizmor is not installed (it is a dev dependency: pip install -e .[dev])")
    # offline: the audits that need GitHub's API (e.g. known-vulnerable actions) are left out
    out = subprocess.run([exe, "--offline", "--no-progress", str(WORKFLOWS)], capture_output=True, text=True, cwd=REPO)
    assert out.returncode == 0, out.stdout + out.stderr


def test_every_action_is_pinned_to_a_commit_with_its_version():
    for path in sorted(WORKFLOWS.glob("*.yml")):
        for line in path.read_text().splitlines():
            if "uses:" in line:
                assert re.search(r"uses: [\w.-]+/[\w./-]+@[0-9a-f]{40} # v\d+(\.\d+)*$", line), f"{path.name}: {line.strip()}"


# -- the required check: `gate` reports on every pull request -------------------------------------

VERDICT_STEP = next(s["name"] for s in yaml.safe_load(GATE.read_text())["jobs"]["gate"]["steps"] if s.get("id") == "verdict")
TRUSTED = "safe-to-evaluate"


@pytest.fixture(scope="module")
def small_repo(tmp_path_factory):
    """A bare 'origin' with main and two PR branches: one touches an evaluated path (gates/), one only docs."""
    base = tmp_path_factory.mktemp("conditions")
    origin, tree = base / "origin.git", base / "tree"
    _git(base, "init", "-q", "--bare", "-b", "main", str(origin))
    tree.mkdir()
    for name, text in {"README.md": "docs\n", "gates/test_gate.py": "def test_gate(results): pass\n",
                       "eval_suites/s.yaml": "name: s\n", "mergegate.yaml": "models: {}\n"}.items():
        (tree / name).parent.mkdir(parents=True, exist_ok=True)
        (tree / name).write_text(text)
    shutil.copytree(WORKFLOWS, tree / ".github" / "workflows")
    shutil.copytree(REPO / "scripts", tree / "scripts", ignore=shutil.ignore_patterns("__pycache__"))
    _git(tree, "init", "-q", "-b", "main")
    shas = {"main": _commit(tree, "initial")}
    for branch, path in (("eval", "gates/test_gate.py"), ("docs", "README.md")):
        _git(tree, "checkout", "-q", "-b", branch, "main")
        (tree / path).write_text((tree / path).read_text() + "# changed\n")
        shas[branch] = _commit(tree, f"change {path}")
    _git(tree, "remote", "add", "origin", str(origin))
    _git(tree, "push", "-q", "origin", "main", "eval", "docs")
    return {"origin": origin, **shas}


@pytest.fixture
def local(small_repo, github, tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GITHUB_", "MERGEGATE_"))}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env['PATH']}"
    env["GITHUB_API_URL"] = github.url
    return LocalRunner(origin=small_repo["origin"], work=tmp_path, env=env, skip_steps=INSTALL_STEPS)


def _event(local: LocalRunner, github, repo: dict, branch: str, action: str, fork: bool = False, label: str | None = None,
           run_id: str = "900", shards: str = "success", base: str | None = None) -> dict:
    """One pull_request event through the real eval-gate.yml; the GPU shards are stubbed with the result ``shards``."""
    sha = repo[branch]
    payload = _pr_payload(sha, action, fork=fork, label=label, base=base or repo["main"])
    return local.run_workflow(GATE, "pull_request", payload, run_id, sha, f"refs/pull/{PR}/merge", token=github.token,
                              stubs={"shard": shards})


@pytest.mark.parametrize(("branch", "action", "fork", "label", "mode", "result"), [
    # evaluated: the (stubbed) shards left no results, so the merged verdict is INCOMPLETE, never GO
    ("eval", "opened", False, None, "evaluate", "failure"),
    ("eval", "synchronize", False, None, "evaluate", "failure"),
    ("eval", "labeled", True, TRUSTED, "evaluate", "failure"),  # a maintainer's label lets a fork reach the GPU runner
    # not evaluated, and no earlier evaluation of the head commit: the check fails, it does not pass or wait
    ("eval", "opened", True, None, "reuse", "failure"),
    ("eval", "synchronize", True, None, "reuse", "failure"),  # a push after the label needs a new label
    ("eval", "labeled", True, "bug", "reuse", "failure"),
    ("eval", "labeled", False, "bug", "reuse", "failure"),
    # outside the path filter: the check passes and says why, forks included (there is nothing to evaluate)
    ("docs", "opened", False, None, "none", "success"),
    ("docs", "labeled", False, "bug", "none", "success"),
    ("docs", "opened", True, None, "none", "success"),
])
def test_the_required_check_reports_on_every_pull_request(small_repo, local, github, branch, action, fork, label, mode, result):
    jobs = _event(local, github, small_repo, branch, action, fork, label)
    assert jobs["plan"][0].outputs == {"mode": mode}
    assert {leg.result for leg in jobs["shard"]} == ({"success"} if mode == "evaluate" else {"skipped"})  # the GPU runner
    gate = jobs["gate"][0]
    assert gate.result == result, [(s.name, s.outcome, s.output[-400:]) for s in gate.steps]
    if mode == "evaluate":
        assert gate.step("verdict").exit_code not in (None, 0)
    elif mode == "none":
        assert "No evaluated path changed" in gate.step("decide").output and "No evaluated path changed" in gate.summary
    else:
        assert "no evaluation of" in gate.step("decide").output and gate.step("verdict").outcome == "skipped"


@pytest.mark.parametrize("shards", ["cancelled", "skipped"])
def test_the_check_fails_when_the_evaluation_did_not_run(small_repo, local, github, shards):
    jobs = _event(local, github, small_repo, "eval", "synchronize", shards=shards)
    gate = jobs["gate"][0]
    assert gate.result == "failure" and "no verdict" in gate.step("decide").output


def test_the_check_fails_when_the_changes_cannot_be_listed(small_repo, local, github):
    jobs = _event(local, github, small_repo, "eval", "synchronize", base="0" * 40)  # a base commit git does not have
    assert jobs["plan"][0].result == "failure" and jobs["shard"][0].result == "skipped"
    assert jobs["gate"][0].result == "failure" and "no verdict" in jobs["gate"][0].step("decide").output


def test_the_evaluated_paths_match_the_push_filter():
    wf = yaml.safe_load(GATE.read_text())
    on = wf[True] if True in wf else wf["on"]
    regex = re.compile(wf["env"]["EVALUATED_PATHS"])

    def glob(pattern: str) -> re.Pattern:  # GitHub's filter patterns: `*` stops at `/`, `**` does not
        parts = (re.escape(p).replace(r"\*", "[^/]*") for p in pattern.split("**"))
        return re.compile(".*".join(parts) + "$")

    globs = [glob(p) for p in on["push"]["paths"]]
    for path in ["mergegate.yaml", "mergegate.gpu.yaml", "sub/mergegate.yaml", "mergegate/x.yaml", "eval_suites/a.yaml",
                 "eval_suites/deep/b.yaml", "gates/test_gate.py", "gates", "src/mergegate/verdict.py", "README.md", "xgates/a.py",
                 "adapters/good/adapter.gguf"]:
        assert bool(regex.match(path)) == any(g.match(path) for g in globs), path


def _run(run_id: int, sha: str, verdict: str | None, status: str = "completed", shards: str = "success") -> dict:
    """An eval-gate run as GitHub's Actions API lists it, with its jobs.

    ``verdict``: the conclusion of the gate's verdict step (None: the step did not run); ``shards``: the shard legs'
    conclusion, "in_progress", or "skipped" (then GitHub lists one unexpanded "shard" job).
    """
    jobs = [{"name": "plan", "status": "completed", "conclusion": "success"}]
    if shards == "skipped":
        jobs.append({"name": "shard", "status": "completed", "conclusion": "skipped"})
    else:
        running = shards == "in_progress"
        jobs += [{"name": f"shard ({i})", "status": "in_progress" if running else "completed", "conclusion": None if running else shards}
                 for i in (1, 2)]
    if status == "completed":
        steps = [{"name": "Evaluated, nothing to evaluate, or the last evaluation of this head?", "conclusion": "success"},
                 {"name": VERDICT_STEP, "conclusion": verdict or "skipped"}]
        jobs.append({"name": "gate", "status": "completed", "conclusion": verdict or "failure", "steps": steps})
    return {"id": run_id, "head_sha": sha, "path": ".github/workflows/eval-gate.yml", "event": "pull_request", "status": status,
            "html_url": f"https://github.com/acme/models/actions/runs/{run_id}", "jobs": jobs}


@pytest.mark.parametrize(("earlier", "result", "says"), [
    ([("success", "completed", "success")], "success", "said GO"),
    ([("failure", "completed", "success")], "failure", "said NO-GO or INCOMPLETE"),
    # a newer label event's run (it evaluated nothing) is passed over: the GO before it is repeated
    ([("success", "completed", "success"), (None, "completed", "skipped")], "success", "said GO"),
    # an evaluation of the same commit still running: fail now, its own check reports when it ends
    ([("success", "completed", "success"), (None, "in_progress", "in_progress")], "failure", "still running"),
    # a cancelled evaluation is no verdict: the GO before it stands
    ([("success", "completed", "success"), (None, "completed", "cancelled")], "success", "said GO"),
    ([], "failure", "no evaluation of"),
])
def test_another_label_repeats_the_newest_evaluation_of_the_head(small_repo, local, github, earlier, result, says):
    sha = small_repo["eval"]
    github.workflow_runs += [_run(800 + i, sha, verdict, status, shards) for i, (verdict, status, shards) in enumerate(earlier)]
    github.workflow_runs.append(_run(900, sha, None, "in_progress", "skipped"))  # this run itself is not an evaluation
    github.workflow_runs.append(_run(700, small_repo["docs"], "success"))  # a GO of another commit does not count
    jobs = _event(local, github, small_repo, "eval", "labeled", label="bug", run_id="900")
    assert jobs["plan"][0].outputs == {"mode": "reuse"} and jobs["shard"][0].result == "skipped"
    gate = jobs["gate"][0]
    assert gate.result == result and says in gate.step("decide").output, gate.step("decide").output
    assert says in gate.summary


def test_the_check_fails_closed_when_the_api_cannot_be_read(small_repo, local, github):
    github.fail_next(502, times=5)
    gate = _event(local, github, small_repo, "eval", "labeled", label="bug")["gate"][0]
    assert gate.result == "failure" and "cannot read this commit's earlier runs" in gate.step("decide").output


def test_only_trusted_and_evaluating_events_cancel_a_running_evaluation():
    wf = yaml.safe_load(GATE.read_text())
    on = wf[True] if True in wf else wf["on"]
    assert set(on["pull_request"]) == {"types"}, "no paths filter on the trigger that carries the required check"
    assert wf["jobs"]["gate"]["if"] == "always()" and set(wf["jobs"]["gate"]["needs"]) == {"plan", "shard"}
    conc = wf["concurrency"]

    def ctx(event: str, payload: dict) -> dict:
        return {"github": {"event_name": event, "event": payload, "ref": "refs/pull/7/merge", "repository": "acme/models"}}

    for action, label, cancels in [("opened", None, True), ("synchronize", None, True), ("reopened", None, True),
                                   ("labeled", TRUSTED, True), ("labeled", "bug", False)]:
        c = ctx("pull_request", _pr_payload("a" * 40, action, label=label))
        assert substitute(conc["group"], c) == f"eval-gate-{PR}"  # one queue per PR: another label waits instead
        assert evaluate(conc["cancel-in-progress"], c) is cancels, (action, label)
    assert evaluate(conc["cancel-in-progress"], ctx("push", {"ref": "refs/heads/main"})) is True


def _comment_run(local: LocalRunner, github, tmp_path: Path, repo: dict, *, head_repo: str, conclusion: str, verdict: str,
                 claimed_sha: str | None = None, path: str = ".github/workflows/eval-gate.yml") -> dict:
    """eval-gate-comment.yml after an eval-gate run (id 950) whose artifact holds a schema-valid results.json."""
    from helpers import make_run
    from mergegate.results import CiMeta

    sha = repo["eval"]
    run = make_run(2, candidate_passed=lambda i: True)
    run.verdict, run.exit_code = verdict, {"GO": 0, "NO-GO": 1, "INCOMPLETE": 2}[verdict]
    run.meta.ci = CiMeta(repository="acme/models", pr_number=PR, head_sha=claimed_sha or sha)
    art = tmp_path / "artifact"
    art.mkdir()
    (art / "results.json").write_text(run.model_dump_json())
    local.artifacts["950"] = {"mergegate-results": art}
    github.heads[PR] = sha
    payload = {"action": "completed", "workflow_run": {
        "id": 950, "event": "pull_request", "conclusion": conclusion, "head_sha": sha, "path": path,
        "head_repository": {"full_name": head_repo}, "html_url": "https://github.com/acme/models/actions/runs/950"}}
    return local.run_workflow(COMMENT, "workflow_run", payload, "951", repo["main"], "refs/heads/main", token=github.token)


@pytest.mark.parametrize(("head_repo", "conclusion", "verdict", "claimed", "reasons"), [
    ("acme/models", "success", "GO", None, []),
    ("acme/models", "failure", "NO-GO", None, []),
    # a fork's run, whatever it claims
    ("mallory/models", "failure", "NO-GO", None, ["the run used the workflow and code of the fork mallory/models"]),
    # a forged, schema-valid GO from a run that failed (the fork's own workflow copy wrote the artifact)
    ("mallory/models", "failure", "GO", None, ["fork mallory/models", "the results say GO but the run concluded failure"]),
    ("acme/models", "failure", "GO", None, ["the results say GO but the run concluded failure"]),
    ("acme/models", "success", "GO", "b" * 40, ["another commit than the one the run evaluated"]),
])
def test_the_comment_says_what_github_cannot_vouch_for(small_repo, local, github, tmp_path, head_repo, conclusion, verdict, claimed,
                                                      reasons):
    job = _comment_run(local, github, tmp_path, small_repo, head_repo=head_repo, conclusion=conclusion, verdict=verdict,
                       claimed_sha=claimed)["comment"][0]
    unverified = job.step("provenance").outputs["unverified"]
    assert all(r in unverified for r in reasons) and bool(unverified) == bool(reasons), unverified
    posted = github.ours(PR, MARKER)
    if not reasons:
        assert job.result == "success" and len(posted) == 1 and verdict in posted[0]["body"].splitlines()[1]
    else:
        # the comment goes out marked unverified (`mergegate comment --unverified`), the reasons under its heading
        assert job.result == "success" and len(posted) == 1, job.step("comment").output
        head = posted[0]["body"].splitlines()
        assert head[1].startswith("## ⚠️ Unverified: these results claim") and verdict in head[1]
        assert all(r in posted[0]["body"] for r in reasons)


def test_the_comment_ignores_other_workflows_and_runs_without_results(small_repo, local, github, tmp_path):
    # a PR can add a workflow that is also named "eval-gate": its runs are not eval-gate.yml's
    jobs = _comment_run(local, github, tmp_path, small_repo, head_repo="acme/models", conclusion="success", verdict="GO",
                        path=".github/workflows/evil.yml")
    assert jobs["comment"][0].result == "skipped"
    local.artifacts.clear()  # a run that evaluated nothing uploads no results: no comment, and no failure
    payload = {"action": "completed", "workflow_run": {
        "id": 960, "event": "pull_request", "conclusion": "success", "head_sha": small_repo["docs"],
        "path": ".github/workflows/eval-gate.yml", "head_repository": {"full_name": "acme/models"},
        "html_url": "https://github.com/acme/models/actions/runs/960"}}
    job = local.run_workflow(COMMENT, "workflow_run", payload, "961", small_repo["main"], "refs/heads/main",
                             token=github.token)["comment"][0]
    assert job.result == "success" and job.step("comment").outcome == "skipped" and not github.ours(PR, MARKER)
