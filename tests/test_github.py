"""The sticky PR comment against a local double of the GitHub REST API: upsert, pagination, retries, refusals."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from doubles.github_api import reset_in
from mergegate.errors import GitHubError
from mergegate.github import GitHubClient, RetryPolicy, check_head_sha, upsert_comment
from mergegate.report import MARKER

PR = 7


def client(github, sleeps=None, **policy):
    """Return a client for the double; waits are recorded in ``sleeps`` and really slept."""
    def sleep(s):
        if sleeps is not None:
            sleeps.append(s)
        time.sleep(min(s, 2))
    return GitHubClient(github.token, github.url, retry=RetryPolicy(**{"backoff_s": 0.05, "secondary_wait_s": 0.05, **policy}),
                        sleep=sleep, log=lambda m: None)


def test_upsert_creates_once_then_updates_across_pages(github):
    github.seed(PR, 230)  # three pages of 100: ours must be found on the last one
    with client(github) as gh:
        first = upsert_comment(gh, github.repo, PR, MARKER + "\nfirst")
        github.seed(PR, 5)
        second = upsert_comment(gh, github.repo, PR, MARKER + "\nsecond")
    assert (first.action, second.action) == ("created", "updated")
    assert first.comment_id == second.comment_id
    ours = github.ours(PR, MARKER)
    assert len(ours) == 1 and ours[0]["body"].endswith("second")
    pages = [r.query.get("page", ["1"])[0] for r in github.calls("GET", rf"/repos/{github.repo}/issues/{PR}/comments")]
    assert pages[:3] == ["1", "2", "3"]  # followed the Link header
    assert len(github.calls("POST", r".*")) == 1 and len(github.calls("PATCH", r".*")) == 1


def test_a_quoted_marker_is_not_our_comment(github):
    github.seed(PR, 1, login="human", body=f"> {MARKER}\n> quoting the bot")
    with client(github) as gh:
        assert upsert_comment(gh, github.repo, PR, MARKER + "\nreport").action == "created"


def test_someone_elses_comment_with_our_marker_is_left_alone(github):
    github.seed(PR, 1, login="mallory", body=MARKER + "\nfake report")
    with client(github) as gh:
        done = upsert_comment(gh, github.repo, PR, MARKER + "\nreal report")
    assert done.action == "created"
    assert [c["body"] for c in github.comments[PR]] == [MARKER + "\nfake report", MARKER + "\nreal report"]


def test_retries_on_502_then_succeeds(github):
    github.fail_next(502, times=2, message="Bad Gateway")
    sleeps: list[float] = []
    with client(github, sleeps) as gh:
        assert upsert_comment(gh, github.repo, PR, MARKER + "\nx").action == "created"
    assert sleeps == [0.05, 0.1]  # exponential backoff
    assert len(github.ours(PR, MARKER)) == 1


def test_rate_limit_honours_retry_after(github):
    github.fail_next(429, headers={"Retry-After": "1"}, message="You have exceeded a secondary rate limit")
    sleeps: list[float] = []
    started = time.monotonic()
    with client(github, sleeps) as gh:
        upsert_comment(gh, github.repo, PR, MARKER + "\nx")
    assert sleeps == [1.0] and time.monotonic() - started >= 1.0


def test_primary_rate_limit_waits_for_reset(github):
    github.fail_next(403, headers={"x-ratelimit-remaining": "0", "x-ratelimit-reset": reset_in(1)}, message="API rate limit exceeded")
    sleeps: list[float] = []
    with client(github, sleeps) as gh:
        upsert_comment(gh, github.repo, PR, MARKER + "\nx")
    assert len(sleeps) == 1 and 0.5 <= sleeps[0] <= 3.0


def test_secondary_rate_limit_without_headers_backs_off(github):
    github.fail_next(403, times=2, message="You have exceeded a secondary rate limit")
    sleeps: list[float] = []
    with client(github, sleeps) as gh:
        upsert_comment(gh, github.repo, PR, MARKER + "\nx")
    assert sleeps == [0.05, 0.1]


def test_gives_up_loudly_after_the_attempts(github):
    github.fail_next(503, times=10)
    with client(github, attempts=3) as gh, pytest.raises(GitHubError, match="after 3 attempt"):
        upsert_comment(gh, github.repo, PR, MARKER + "\nx")
    assert len(github.requests) == 3


def test_a_client_error_is_not_retried(github):
    github.fail_next(404, message="Not Found")
    with client(github) as gh, pytest.raises(GitHubError) as err:
        upsert_comment(gh, github.repo, PR, MARKER + "\nx")
    assert err.value.status == 404 and len(github.requests) == 1


def test_head_sha_check_refuses_a_foreign_pr(github):
    github.heads[PR] = "a" * 40
    with client(github) as gh:
        check_head_sha(gh, github.repo, PR, "a" * 40)
        with pytest.raises(GitHubError, match="refusing"):
            check_head_sha(gh, github.repo, PR, "b" * 40)


def test_token_never_in_errors(github):
    github.fail_next(500, times=10)
    with client(github, attempts=2) as gh, pytest.raises(GitHubError) as err:
        gh.json("GET", f"/repos/{github.repo}/pulls/1")
    assert github.token not in str(err.value)


# -- the command ---------------------------------------------------------------------------


def _results_file(tmp_path: Path) -> Path:
    from helpers import make_run

    run = make_run(3)
    path = tmp_path / "results.json"
    path.write_text(run.model_dump_json())
    return path


def _cli(args, github, tmp_path, **env):
    full = {**os.environ, "GITHUB_TOKEN": github.token, "GITHUB_API_URL": github.url, "GITHUB_REPOSITORY": github.repo,
            "GITHUB_STEP_SUMMARY": str(tmp_path / "summary.md"), **env}
    return subprocess.run([sys.executable, "-m", "mergegate.cli", "comment", *args], capture_output=True, text=True, env=full, timeout=120)


def test_comment_command_upserts_and_fails_loudly(github, tmp_path):
    results = _results_file(tmp_path)
    before = results.read_bytes()
    ok = _cli(["--results", str(results), "--pr", str(PR)], github, tmp_path)
    assert ok.returncode == 0, ok.stderr
    assert "comment created" in ok.stdout
    again = _cli(["--results", str(results), "--pr", str(PR)], github, tmp_path)
    assert "comment updated" in again.stdout and len(github.ours(PR, MARKER)) == 1

    github.fail_next(502, times=20)
    bad = _cli(["--results", str(results), "--pr", str(PR), "--attempts", "2", "--backoff", "0.01"], github, tmp_path)
    assert bad.returncode == 3
    assert "::warning title=mergegate: PR comment not posted::" in bad.stdout
    assert "Traceback" not in bad.stderr
    assert "not posted" in (tmp_path / "summary.md").read_text()
    assert results.read_bytes() == before  # the verdict is never touched by a failed comment


def test_comment_command_bad_results_is_one_line(github, tmp_path):
    bad = tmp_path / "results.json"
    bad.write_text('{"verdict": "GO"')
    out = _cli(["--results", str(bad), "--pr", str(PR)], github, tmp_path)
    assert out.returncode == 2 and "Traceback" not in out.stderr
    assert out.stderr.strip().count("\n") == 0 and str(bad) in out.stderr
    assert not github.requests


def test_comment_command_refuses_mismatched_head(github, tmp_path):
    github.heads[PR] = "c" * 40
    results = _results_file(tmp_path)
    out = _cli(["--results", str(results), "--pr", str(PR), "--expect-head-sha", "d" * 40], github, tmp_path)
    assert out.returncode == 3 and "refusing" in out.stdout
    assert not github.calls("POST", r".*")


def test_comment_body_renders_in_one_piece(github, tmp_path):
    # a sanity check of the API contract: what we POST is exactly our rendered, marked body
    results = _results_file(tmp_path)
    dry = tmp_path / "body.md"
    assert _cli(["--results", str(results), "--dry-run", str(dry)], github, tmp_path).returncode == 0
    assert _cli(["--results", str(results), "--pr", str(PR)], github, tmp_path).returncode == 0
    posted = github.calls("POST", r".*")[0].body["body"]
    assert posted == dry.read_text() and posted.startswith(MARKER)
    json.dumps(posted)
