"""The PR comment body: GitHub's 65,536-character limit, hostile model output, charts, links, trend."""

from __future__ import annotations

import re

import pytest

from helpers import make_run
from mergegate.report import GITHUB_COMMENT_LIMIT, MARKER, body_length, render_markdown, sparkline
from mergegate.results import CiMeta, GateResult, HistoryEntry, RunResults, entry_from_run

HOSTILE = [
    "@org/team and @alice, please approve",
    '<img src="https://evil.example/pixel.png"> <a href="https://evil.example">click</a> <script>alert(1)</script>',
    "```\n</details>\n## fake verdict: GO\n```` unbalanced ``` fence ~~~",
    "![tracker](https://evil.example/t.png) [link](javascript:alert(1))",
    "| a | b |\n|---|---|\n<!-- mergegate-report -->",
]


def _fences_balanced_and_outside(md: str) -> str:
    """Return the markdown outside fenced code blocks; fail if a fence is left open."""
    outside, fence = [], None
    for line in md.splitlines():
        m = re.match(r"^(`{3,})", line)
        if fence is None and m:
            fence = m.group(1)
        elif fence is not None and line.strip() == fence:
            fence = None
        elif fence is None:
            outside.append(line)
    assert fence is None, "a code fence is never closed"
    return "\n".join(outside)


def _assert_inert(md: str) -> None:
    outside = _fences_balanced_and_outside(md)
    assert "<img" not in outside and "<script" not in outside and "<a " not in outside
    assert "![" not in outside.replace("\\!", "").replace("!\\[", "")
    assert not re.search(r"@(?!\u200b)\w", md), "an @mention would ping"
    assert outside.count("<details>") == outside.count("</details>")
    assert md.startswith(MARKER) and outside.count(MARKER) == 1  # the marker only at the top


@pytest.mark.parametrize("text", HOSTILE)
def test_hostile_model_output_is_inert(text):
    md = render_markdown(make_run(2, candidate=lambda i: text), limit=GITHUB_COMMENT_LIMIT)
    _assert_inert(md)
    assert "fake verdict" not in _fences_balanced_and_outside(md)


def test_hostile_names_from_a_tampered_results_file_are_inert():
    # results.json may come from an artifact the PR's code wrote: names are data too
    run = make_run(2, suites=('x"] \n```\n<img src=x>', "@org/team"), candidate=lambda i: "x")
    run.gates.append(GateResult(name="gate\n<img src=y> @bob", outcome="failed", message="<script>@carol</script>\n```"))
    run.meta.ci = CiMeta(run_url="javascript:alert(1)", head_sha="<img>")
    md = render_markdown(run, limit=GITHUB_COMMENT_LIMIT)
    _assert_inert(md)
    assert "javascript:" not in md
    mermaid = md.split("```mermaid", 1)[1].split("```", 1)[0]
    assert "<" not in mermaid and "\n```" not in mermaid


@pytest.mark.parametrize("n_suites, n_cases, size", [(1, 60, 200_000), (300, 3, 2_000), (2, 3_000, 50)])
def test_comment_never_exceeds_githubs_limit(n_suites, n_cases, size):
    run = make_run(n_cases, suites=tuple(f"suite-{k}" for k in range(n_suites)), candidate=lambda i: ("😀x@y`" * size)[:size])
    if n_suites == 300:
        assert body_length(render_markdown(run)) > GITHUB_COMMENT_LIMIT  # unbounded, this one would be rejected
    md = render_markdown(run, limit=GITHUB_COMMENT_LIMIT, run_url="https://github.com/acme/models/actions/runs/42")
    assert body_length(md) <= GITHUB_COMMENT_LIMIT and len(md) <= GITHUB_COMMENT_LIMIT
    _assert_inert(md)
    assert "NO-GO" in md.splitlines()[1]  # the verdict survives every cut
    assert "### Suites" in md


def test_the_last_resort_cut_links_the_artifact():
    run = make_run(2, candidate=lambda i: "x")
    run.gates += [GateResult(name=f"gates/test_{i}.py::test_gate_{i}", outcome="failed", message="m" * 180) for i in range(2_000)]
    md = render_markdown(run, limit=GITHUB_COMMENT_LIMIT, run_url="https://github.com/acme/models/actions/runs/42")
    assert body_length(md) <= GITHUB_COMMENT_LIMIT
    assert md.rstrip().endswith("https://github.com/acme/models/actions/runs/42#artifacts).")
    assert "Report truncated" in md


def test_small_reports_are_not_degraded():
    run = make_run(3, candidate=lambda i: "the candidate's answer")
    assert render_markdown(run, limit=GITHUB_COMMENT_LIMIT) == render_markdown(run)
    assert "the candidate's answer" in render_markdown(run)


def test_chart_links_and_commit():
    run = make_run(4, suites=("sentiment", "extraction"), candidate_passed=lambda i: i % 2 == 0)
    run.meta.ci = CiMeta(repository="acme/models", pr_number=7, head_sha="a" * 40,
                         run_url="https://github.com/acme/models/actions/runs/42")
    md = render_markdown(run)
    assert "```mermaid\nxychart-beta" in md
    assert 'x-axis ["sentiment", "extraction"]' in md
    assert "bar [50.0, 50.0]" in md and "line [100.0, 100.0]" in md
    assert "[workflow run](https://github.com/acme/models/actions/runs/42)" in md
    assert "(https://github.com/acme/models/actions/runs/42#artifacts)" in md
    assert "https://github.com/acme/models/commit/" + "a" * 40 in md


def test_trend_from_history():
    past = []
    for i, rate in enumerate([1.0, 0.5, 0.0]):
        r = make_run(2, candidate_passed=lambda j, rate=rate: j < rate * 2)
        r.meta.git_commit = f"{i:040x}"
        past.append(entry_from_run(r))
    md = render_markdown(make_run(2, candidate_passed=lambda j: True), history=past)
    assert "<b>Main line trend (last 3 runs)</b>" in md
    assert "| s | █▄▁ | 0.0% | 100.0% |" in md
    assert "line [100.0, 50.0, 0.0, 100.0]" in md


def test_sparkline_scale():
    assert sparkline([0.0, 0.125, 0.5, 1.0, None]) == "▁▁▄█·"


def test_results_json_round_trips():
    run = make_run(3)
    again = RunResults.model_validate_json(run.model_dump_json())
    assert again == run and again.cases[0].regressed


def test_history_entry_is_strict():
    with pytest.raises(ValueError):
        HistoryEntry.model_validate({"finished_at": "t", "verdict": "GO", "surprise": 1})
