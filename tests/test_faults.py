"""Injected faults (what no real server does on demand): 500s, 429 with Retry-After, malformed bodies, timeouts.

The ``fault_server`` fixture (conftest.py) is :class:`doubles.fault_api.FaultServer`, parametrized with its script.
"""

import json

import pytest

from mergegate.client import Job, ResponseCache, generate_all
from mergegate.config import GenerationOptions
from mergegate.serving import Endpoint
from mergegate.verdict import Evidence, Policy, decide


def _jobs(url, n=1):
    ep = Endpoint("candidate", url, "m", "external", "EMPTY", {"engine": "external", "revision": "r"}, None, {})
    return [Job(("candidate", "s", f"c{i}"), ep, [{"role": "user", "content": f"q{i}"}], {"temperature": 0}) for i in range(n)]


OPTS = GenerationOptions(max_retries=3, backoff_s=0.05, timeout_s=1.0, concurrency=2)


@pytest.mark.parametrize("fault_server", [["500", "502"]], indirect=True)
def test_retries_5xx_then_succeeds(fault_server):
    out, stats = generate_all(_jobs(fault_server.url), None, OPTS, progress=False)
    resp = out[("candidate", "s", "c0")]
    assert resp.error is None and resp.text == "ok" and resp.attempts == 3
    assert stats.requests_sent == 3 == fault_server.hits


@pytest.mark.parametrize("fault_server", [["429", "429"]], indirect=True)
def test_rate_limit_honours_retry_after(fault_server):
    out, stats = generate_all(_jobs(fault_server.url), None, OPTS, progress=False)
    assert out[("candidate", "s", "c0")].error is None
    assert stats.requests_sent == 3


@pytest.mark.parametrize("fault_server", [["500"] * 10], indirect=True)
def test_persistent_5xx_is_an_error_and_the_run_is_incomplete(fault_server):
    out, stats = generate_all(_jobs(fault_server.url), None, OPTS, progress=False)
    resp = out[("candidate", "s", "c0")]
    assert resp.error and "InternalServerError" in resp.error
    assert resp.attempts == OPTS.max_retries + 1 and stats.errors == 1
    v = decide(Evidence(cases=[], request_errors=stats.errors), Policy(error_tolerance=0))
    assert (v.outcome, v.exit_code) == ("INCOMPLETE", 2) and "1 request(s) failed" in v.reasons[0]


@pytest.mark.parametrize("fault_server", [["400"]], indirect=True)
def test_client_errors_are_not_retried(fault_server):
    out, stats = generate_all(_jobs(fault_server.url), None, OPTS, progress=False)
    assert out[("candidate", "s", "c0")].error and stats.requests_sent == 1


@pytest.mark.parametrize("fault_server", [["malformed", "malformed", "malformed", "malformed"]], indirect=True)
def test_malformed_body_is_an_error_never_a_silent_empty_answer(fault_server):
    out, stats = generate_all(_jobs(fault_server.url), None, OPTS, progress=False)
    assert "malformed response" in out[("candidate", "s", "c0")].error
    assert stats.errors == 1 and stats.requests_sent == 4


@pytest.mark.parametrize("fault_server", [["sleep", "sleep", "sleep", "sleep"]], indirect=True)
def test_timeouts_are_retried_then_recorded(fault_server):
    opts = GenerationOptions(max_retries=1, backoff_s=0.01, timeout_s=0.3)
    out, stats = generate_all(_jobs(fault_server.url), None, opts, progress=False)
    assert "Timeout" in out[("candidate", "s", "c0")].error
    assert stats.requests_sent == 2


@pytest.mark.parametrize("fault_server", [["500"] * 4], indirect=True)
def test_errors_are_not_cached(fault_server, tmp_path):
    cache = ResponseCache(tmp_path / "c.sqlite")
    generate_all(_jobs(fault_server.url), cache, OPTS, progress=False)
    assert len(cache) == 0
    out, stats = generate_all(_jobs(fault_server.url), cache, OPTS, progress=False)  # script exhausted: now OK
    assert out[("candidate", "s", "c0")].text == "ok" and len(cache) == 1
    cache.close()


def test_tolerance_allows_some_errors_but_never_hides_them():
    assert decide(Evidence(cases=[], request_errors=1), Policy(error_tolerance=1)).outcome == "INCOMPLETE"  # no case evaluated at all


@pytest.mark.parametrize("fault_server", [["null"] * 4], indirect=True)
def test_a_null_answer_is_a_failed_request_never_a_cached_success(fault_server, tmp_path):
    cache = ResponseCache(tmp_path / "c.sqlite")
    out, stats = generate_all(_jobs(fault_server.url), cache, OPTS, progress=False)
    resp = out[("candidate", "s", "c0")]
    assert resp.error and resp.error.startswith("empty answer: content is None") and stats.errors == 1
    assert stats.requests_sent == OPTS.max_retries + 1 and len(cache) == 0
    assert decide(Evidence(cases=[], request_errors=stats.errors), Policy()).outcome == "INCOMPLETE"
    out, stats = generate_all(_jobs(fault_server.url), cache, OPTS, progress=False)  # the server is healthy again
    assert out[("candidate", "s", "c0")].text == "ok" and stats.errors == 0 and len(cache) == 1
    cache.close()


@pytest.mark.parametrize("fault_server", [["reasoning"] * 4], indirect=True)
def test_a_reasoning_model_out_of_tokens_is_a_failed_request(fault_server, tmp_path):
    cache = ResponseCache(tmp_path / "c.sqlite")
    out, stats = generate_all(_jobs(fault_server.url), cache, OPTS, progress=False)
    resp = out[("candidate", "s", "c0")]
    assert resp.error == "empty answer: content is None, no tool call, finish_reason 'length' (the reasoning used the tokens)"
    assert stats.errors == 1 and stats.requests_sent == OPTS.max_retries + 1 and len(cache) == 0
    cache.close()


def _project(root, url, extra="", generation="{max_retries: 0}"):
    import textwrap

    (root / "eval_suites").mkdir()
    (root / "gates").mkdir()
    (root / "eval_suites" / "s.yaml").write_text(textwrap.dedent("""\
        name: s
        cases:
          - {id: a, prompt: say o, blocking: true, checks: [{type: contains, value: o}]}
          - {id: b, prompt: say o again, checks: [{type: contains, value: o}]}
        """))
    (root / "gates" / "test_gate.py").write_text("def test_the_run_has_cases(results):\n    assert results.run.cases\n")
    (root / "mergegate.yaml").write_text(textwrap.dedent(f"""\
        models:
          candidate: {{engine: external, model: m, base_url: "{url}"}}
          baseline: {{engine: external, model: m, base_url: "{url}"}}
        cache: {{enabled: false}}
        generation: {generation}
        """) + extra)
    return root


def _run(root):
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-m", "mergegate.cli", "run", "--root", str(root)], cwd=root, capture_output=True,
                          text=True, timeout=300)
    return done, json.loads((root / "results" / "results.json").read_text())


@pytest.mark.parametrize("fault_server", [["length"] * 4], indirect=True)
def test_truncated_answers_fail_their_cases_and_are_reported(fault_server, tmp_path):
    done, run = _run(_project(tmp_path, fault_server.url))
    assert done.returncode == 1 and run["verdict"] == "NO-GO", done.stdout[-2000:]
    assert "blocking case failed: s::a" in run["reasons"]
    assert any("2 candidate and 2 baseline answer(s) of 2 were cut off at max_tokens" in r for r in run["reasons"])
    assert run["suites"][0]["truncated"] == {"candidate": 2, "baseline": 2}
    failed = [c for c in run["cases"][0]["candidate"]["checks"] if c["passed"] is False]
    assert failed and failed[0]["type"] == "truncated" and "max_tokens" in failed[0]["detail"]


@pytest.mark.parametrize("fault_server", [["length"] * 4], indirect=True)
def test_truncation_allowed_is_scored_but_never_silent(fault_server, tmp_path):
    done, run = _run(_project(tmp_path, fault_server.url, generation="{max_retries: 0, truncated: allow}"))
    assert done.returncode == 0 and run["verdict"] == "GO", done.stdout[-2000:]  # "o" contains "o": scored as it is
    assert any("were cut off at max_tokens: scored as they are (generation.truncated: allow)" in r for r in run["reasons"])


@pytest.mark.parametrize("fault_server", [[]], indirect=True)
def test_a_gate_that_ends_the_session_early_never_gives_go(fault_server, tmp_path):
    root = _project(tmp_path, fault_server.url)
    (root / "gates" / "test_a_quitter.py").write_text("import pytest\n\ndef test_quit(results):\n    pytest.exit('bye', returncode=0)\n")
    done, run = _run(root)
    assert done.returncode == 2 and run["verdict"] == "INCOMPLETE", done.stdout[-2000:]
    assert any("ended early" in r and "bye" in r for r in run["reasons"])


@pytest.mark.parametrize("fault_server", [[]], indirect=True)
def test_a_gate_file_with_a_syntax_error_is_named_with_its_line(fault_server, tmp_path):
    root = _project(tmp_path, fault_server.url)
    bad = root / "gates" / "test_broken.py"
    bad.write_text("def test_ok(results):\n    assert True\n\ndef test_bad(results:\n    pass\n")
    done, run = _run(root)
    assert done.returncode == 2 and run["verdict"] == "INCOMPLETE"
    assert any(r.startswith(f"gate file {bad}:4 failed to load: SyntaxError") for r in run["reasons"]), run["reasons"]


@pytest.mark.parametrize("fault_server", [[]], indirect=True)
def test_a_run_whose_every_gate_was_skipped_is_incomplete(fault_server, tmp_path):
    root = _project(tmp_path, fault_server.url)
    (root / "gates" / "test_gate.py").write_text("import pytest\n\ndef test_skipped(results):\n    pytest.skip('not today')\n")
    done, run = _run(root)
    assert done.returncode == 2 and run["verdict"] == "INCOMPLETE"
    assert any("0 gate(s) ran, 1 skipped" in r for r in run["reasons"]), run["reasons"]


@pytest.mark.parametrize("fault_server", [[]], indirect=True)
@pytest.mark.parametrize("row", ['{"text": null}', '{"text": ""}', '"ok"', "{not json", '{"text": "ok", "verdict": "GO"}',
                                 '{"text": ["o"]}'])
def test_a_cache_row_that_is_not_a_response_is_a_miss(fault_server, tmp_path, capfd, row):
    import sqlite3

    cache = ResponseCache(tmp_path / "c.sqlite")
    generate_all(_jobs(fault_server.url, n=2), cache, OPTS, progress=False)
    assert fault_server.hits == 2 and len(cache) == 2
    cache.close()
    with sqlite3.connect(tmp_path / "c.sqlite") as db:  # someone (or a broken version) wrote a row that is no response
        db.execute("UPDATE responses SET value = ? WHERE rowid = (SELECT MIN(rowid) FROM responses)", (row,))
    cache = ResponseCache(tmp_path / "c.sqlite")
    out, stats = generate_all(_jobs(fault_server.url, n=2), cache, OPTS, progress=False)
    assert [r.text for r in out.values()] == ["ok", "ok"] and stats.errors == 0
    assert (stats.cache_hits, stats.requests_sent, fault_server.hits) == (1, 1, 3)  # the bad row was asked again
    assert cache.rejected == 1 and len(cache) == 2  # and replaced by the real answer
    cache.close()
    assert "a cached row was not a valid response" in capfd.readouterr().err


@pytest.mark.parametrize("fault_server", [[]], indirect=True)
@pytest.mark.parametrize("content", [b"this is not a database" * 100, b""])
def test_an_unusable_cache_file_is_one_line_before_any_request(fault_server, tmp_path, content):
    import subprocess
    import sys

    root = _project(tmp_path, fault_server.url)
    (root / "mergegate.yaml").write_text((root / "mergegate.yaml").read_text().replace("cache: {enabled: false}",
                                                                                       "cache: {path: cache/c.sqlite}"))
    (root / "cache").mkdir()
    (root / "cache" / "c.sqlite").write_bytes(content)
    if not content:  # a folder where the file should be
        (root / "cache" / "c.sqlite").unlink()
        (root / "cache" / "c.sqlite").mkdir()
    done = subprocess.run([sys.executable, "-m", "mergegate.cli", "run", "--root", str(root)], cwd=root, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr[-2000:]
    assert done.stderr.strip().splitlines() == [done.stderr.strip()]
    assert f"{root / 'cache' / 'c.sqlite'}: the response cache cannot be used" in done.stderr
    assert "delete the file" in done.stderr and fault_server.hits == 0


@pytest.mark.parametrize("fault_server", [["say:" + "a" * 40 + "b"] * 4], indirect=True)
def test_a_runaway_check_fails_its_case_with_the_reason(fault_server, tmp_path):
    import textwrap

    root = _project(tmp_path, fault_server.url, extra="check_timeout_s: 0.5\n")
    (root / "eval_suites" / "spin.py").write_text("def forever(ctx):\n    while True:\n        pass\n")
    (root / "eval_suites" / "s.yaml").write_text(textwrap.dedent("""\
        name: s
        cases:
          - {id: a, prompt: say a, blocking: true, checks: [{type: regex, value: "^(a+)+$"}]}
          - {id: b, prompt: say b, checks: [{type: python, value: "spin:forever"}]}
        """))
    done, run = _run(root)  # without a budget, 2**40 backtracking steps and an endless loop: the run would never end
    assert done.returncode == 1 and run["verdict"] == "NO-GO", done.stderr[-2000:]
    assert "blocking case failed: s::a" in run["reasons"]
    for case in run["cases"]:
        for side in ("candidate", "baseline"):
            (check,) = case[side]["checks"]
            assert check["passed"] is False and "ran past its time budget (0.5 s; check_timeout_s)" in check["detail"]


@pytest.mark.parametrize("fault_server", [[]], indirect=True)
def test_a_cache_committed_to_the_repository_is_refused(fault_server, tmp_path):
    """A pull request could commit a cache holding forged answers under the right keys: the run refuses it, in one line."""
    import subprocess
    import sys

    root = _project(tmp_path, fault_server.url)
    (root / "mergegate.yaml").write_text((root / "mergegate.yaml").read_text().replace("cache: {enabled: false}",
                                                                                       "cache: {path: cache/c.sqlite}"))
    (root / "cache").mkdir()
    ResponseCache(root / "cache" / "c.sqlite").close()
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@example.com"]
    for args in (["init", "-q"], ["add", "-A"], ["commit", "-qm", "a cache with forged answers"]):
        subprocess.run([*git, *args], cwd=root, check=True)
    done = subprocess.run([sys.executable, "-m", "mergegate.cli", "run", "--root", str(root)], cwd=root, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 2 and "Traceback" not in done.stderr and fault_server.hits == 0, done.stderr[-2000:]
    assert "the response cache is committed to the repository" in done.stderr
    subprocess.run(["git", "rm", "-q", "--cached", "cache/c.sqlite"], cwd=root, check=True)  # untracked: a cache again
    done = subprocess.run([sys.executable, "-m", "mergegate.cli", "run", "--root", str(root)], cwd=root, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0 and fault_server.hits == 4, done.stderr[-2000:]
