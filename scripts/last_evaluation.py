"""Repeat the verdict of the newest evaluation of one commit by a workflow (eval-gate.yml's `gate`, mode reuse).

Some events evaluate nothing (a label other than the trusted one, a fork's PR without it) but
still produce the required check: GitHub counts a skipped job as passed, and shows a commit's
newest check of a name. So the check reports what the newest *evaluation* of the same head
commit said, read from GitHub's record of the runs (the Actions REST API), not from an artifact:

- exit 0 only when the newest finished evaluation's verdict step succeeded (GO);
- exit 1 when it failed (NO-GO, INCOMPLETE), when an evaluation of the commit is still running
  (its own check reports when it ends; re-run this one then), when there is none, or when the
  API cannot be read: every doubt fails closed.

A run "evaluated" when its verdict step ran; a run whose evaluating job (the shards) is queued or
running, or that has not yet planned, may still evaluate. Standard library only: it runs before
anything is installed. Needs GITHUB_TOKEN (actions: read), GITHUB_REPOSITORY, GITHUB_API_URL and
GITHUB_RUN_ID (this run, skipped) from the Actions environment.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import urllib.error
import urllib.parse
import urllib.request
from typing import Any, Optional

API_VERSION = "2022-11-28"


def _get(path: str, query: dict[str, Any]) -> Any:
    base = os.environ.get("GITHUB_API_URL", "https://api.github.com").rstrip("/")
    url = f"{base}/repos/{os.environ['GITHUB_REPOSITORY']}/{path}?{urllib.parse.urlencode(query)}"
    req = urllib.request.Request(url, headers={"Authorization": f"Bearer {os.environ.get('GITHUB_TOKEN', '')}",
                                               "Accept": "application/vnd.github+json", "X-GitHub-Api-Version": API_VERSION})
    with urllib.request.urlopen(req, timeout=30) as resp:  # noqa: S310 - the Actions API URL, not user input
        return json.load(resp)


def _state(run: dict, jobs: list[dict], job: str, step: str, evaluating: str) -> Optional[str]:
    """Return "success"/"failure" (the run's verdict), "running" (it may still evaluate), or None (it did not evaluate)."""
    for j in jobs:
        if j.get("name") == job:
            for s in j.get("steps") or []:
                if s.get("name") == step and s.get("conclusion") in ("success", "failure"):
                    return str(s["conclusion"])
    if run.get("status") == "completed":
        return None  # finished without reaching the verdict step: no evaluation (or a cancelled one)
    # a matrix job is named "shard (1)"; skipped before expansion, just "shard"
    shards = [j for j in jobs if j.get("name") == evaluating or str(j.get("name", "")).startswith(f"{evaluating} (")]
    if not shards or any(j.get("conclusion") != "skipped" for j in shards):
        return "running"  # not planned yet, or evaluating: its verdict may still come
    return None


def last_evaluation(sha: str, workflow: str, job: str, step: str, evaluating: str) -> tuple[int, str]:
    """Return the exit code and the line to report for the newest evaluation of ``sha``."""
    own = os.environ.get("GITHUB_RUN_ID", "")
    runs = _get(f"actions/workflows/{urllib.parse.quote(workflow)}/runs", {"head_sha": sha, "per_page": 100})["workflow_runs"]
    for run in sorted(runs, key=lambda r: int(r["id"]), reverse=True):  # newest first
        if str(run["id"]) == own:
            continue
        state = _state(run, _get(f"actions/runs/{run['id']}/jobs", {"per_page": 100})["jobs"], job, step, evaluating)
        if state == "running":
            return 1, (f"an evaluation of {sha[:12]} is still running ({run.get('html_url')}): its own check reports "
                       "when it ends; re-run this job after that to repeat its verdict here")
        if state in ("success", "failure"):
            said = "GO" if state == "success" else "NO-GO or INCOMPLETE"
            line = f"this event evaluates nothing; the newest evaluation of {sha[:12]} said {said}: {run.get('html_url')}"
            return (0 if state == "success" else 1), line
    return 1, (f"no evaluation of {sha[:12]} has finished. A fork's pull request is evaluated when a maintainer applies "
               "the label safe-to-evaluate (for that commit); otherwise push a commit or re-run the workflow")


def main(argv: Optional[list[str]] = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sha", required=True, help="the head commit")
    p.add_argument("--workflow", required=True, help="the workflow's file name, e.g. eval-gate.yml")
    p.add_argument("--job", required=True, help="the job that carries the verdict")
    p.add_argument("--step", required=True, help="the step of that job that runs only when the run evaluated")
    p.add_argument("--evaluating-job", required=True, help="the job (matrix) that evaluates, e.g. shard")
    args = p.parse_args(argv)
    try:
        code, line = last_evaluation(args.sha, args.workflow, args.job, args.step, args.evaluating_job)
    except (urllib.error.URLError, OSError, ValueError, KeyError, TypeError) as exc:
        code, line = 1, f"cannot read this commit's earlier runs from the GitHub API ({exc}): no verdict to repeat"
    print(f"::{'notice' if code == 0 else 'error'} title=eval-gate::{line}")
    summary = os.environ.get("GITHUB_STEP_SUMMARY")
    if summary:
        with open(summary, "a", encoding="utf-8") as fh:
            fh.write(line + "\n")
    return code


if __name__ == "__main__":
    sys.exit(main())
