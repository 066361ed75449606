"""report.html as an offline viewer, `mergegate view`, `mergegate compare`: structure, hostile output, and a real browser."""

from __future__ import annotations

import base64
import hashlib
import json
import re
import subprocess
import sys
import threading
import urllib.request
from pathlib import Path

from browser import check_report_in_browser, require_browser
from mergegate.report import render_html, write_outputs
from mergegate.report.compare import compare_runs, render_compare_html, summary_lines
from mergegate.report.html import OUTPUT_LIMIT, VIEWER_MARKER
from mergegate.results import AnswerQuality, CaseResult, CheckResult, GateResult, Generation, RunMeta, RunResults, SideResult, summarize
from mergegate.results.models import ModelMeta, SuiteSummary
from mergegate.verdict import Evidence, Policy, decide

HOSTILE = "</script><img src=x onerror=alert(1)><script>window.__mergegate_pwned=1</script> & <!-- @team"
MERGEGATE = [sys.executable, "-m", "mergegate.cli"]


def _check(type_: str, passed, detail: str = "", score=None, extra=None) -> CheckResult:
    return CheckResult(type=type_, metric=type_, score=float(passed) if score is None and passed is not None else score, passed=passed,
                       detail=detail, extra=extra or {})


def _side(text: str, checks: list[CheckResult], error=None, finish="stop") -> SideResult:
    failed = error is not None or any(c.passed is False for c in checks)
    gated = error is not None or any(c.passed is not None for c in checks)
    return SideResult(generation=Generation(text=text, error=error, finish_reason=finish, latency_ms=120.0, completion_tokens=9),
                      checks=checks, passed=(not failed) if gated else None)


def _qa(i: int) -> CaseResult:
    """Arithmetic with a reference: every third candidate answer wrong, every fourth baseline answer."""
    want = str(i + 2)
    cand, base = (f"It is {i + 3}." if i % 3 == 0 else f"It is {want}."), (f"About {i}." if i % 4 == 0 else f"{want}")
    def regex(text: str):
        return _check("regex", want in text, "" if want in text else f"/\\b{want}\\b/ did not match")
    return CaseResult(suite="arith", id=f"q{i}", category="addition" if i % 2 else "carry", blocking=False, input=f"What is {i} plus 2?",
                      reference=want, candidate=_side(cand, [regex(cand)]), baseline=_side(base, [regex(base)]))


def _pairwise(outcome: str, first: str, second: str) -> CheckResult:
    extra = {"outcome": outcome, "consistent": outcome != "tie", "verdict_candidate_first": first, "verdict_candidate_second": second,
             "reasons": ["A names the capital.", "B is vaguer."], "escalated": False}
    return _check("pairwise", None, outcome, score={"win": 1.0, "tie": 0.5, "loss": 0.0}[outcome], extra=extra)


def realistic_run(flip: bool = False) -> RunResults:
    """A run with regressed, improved, failing, erroring, cut-off, judged, tool-calling and hostile cases (``flip``: a later run)."""
    cases = [_qa(i) for i in range(12)]
    cases.append(CaseResult(suite="arith", id="hostile", category="carry", blocking=True, input=HOSTILE, reference=HOSTILE,
                            candidate=_side(HOSTILE, [_check("contains", False, f"expected {HOSTILE!r}")]),
                            baseline=_side("fine </script>", [_check("contains", True)])))
    cases.append(CaseResult(suite="arith", id="err", category="carry", blocking=False, input="What is 1 plus 1?", reference="2",
                            candidate=_side("", [], error="HTTP 500: upstream died"), baseline=_side("2", [_check("regex", True)])))
    cases.append(CaseResult(suite="arith", id="long", category="carry", blocking=False, input="Count to a million.", reference="1",
                            candidate=_side("1 2 3 " * 2000, [_check("truncated", False, "the answer was cut off at max_tokens")],
                                            finish="length"),
                            baseline=_side("1", [_check("regex", True)])))
    for i, (outcome, first, second) in enumerate([("win", "A", "B"), ("tie", "A", "A"), ("loss", "B", "A")]):
        judged = _pairwise(outcome, first, second)
        cases.append(CaseResult(suite="chat", id=f"p{i}", category="capitals", blocking=False, input="Capital of France?",
                                candidate=_side("Paris.", [judged, _check("contains", i != 2, "" if i != 2 else "expected 'Paris'")]),
                                baseline=_side("France's capital is Paris.", [judged, _check("contains", True)])))
    cases.append(CaseResult(suite="tools", id="weather", category="simple", blocking=False, input="Weather in Berlin?",
                            candidate=_side('{"name": "get_weather", "arguments": {"city": "Paris"}}',
                                            [_check("tool_call", False, "get_weather: argument 'city' is 'Paris', expected 'Berlin'",
                                                    extra={"calls": [{"name": "get_weather", "arguments": {"city": "Paris"}}]})]),
                            baseline=_side("I cannot check the weather.",
                                           [_check("tool_call", False, "expected a call to get_weather, got none", extra={"calls": []})])))
    if flip:  # the later run: the first cases change sides
        for c in cases[:5]:
            c.candidate.passed = not c.candidate.passed
    summaries = []
    for s in ("arith", "chat", "tools"):
        g = summarize([c for c in cases if c.suite == s])
        summaries.append(SuiteSummary(name=s, version="1", role="general", task="qa",
                                      **g.model_dump(exclude={"pass_rate", "metrics", "latency_ms", "answers"}),
                                      pass_rate=g.pass_rate, metrics=g.metrics, latency_ms=g.latency_ms,
                                      answers={"candidate": AnswerQuality(n=15, empty=1, truncated=1, echoed=1, degenerate=3)}))
    v = decide(Evidence(cases=cases), Policy(min_gates=0))
    gates = [GateResult(name="gates/test_go_no_go.py::test_general_suite_does_not_regress[arith]", outcome="failed" if flip else "passed",
                        message="AssertionError: assert not arith: pass_rate: regressed (Δ -8.0 pt)\n +  where arith = <SuiteView>"),
             GateResult(name="gates/test_go_no_go.py::test_schema_compliance_is_total[arith]", outcome="skipped"),
             GateResult(name="gates/test_go_no_go.py::test_target_suite_improves[tools]", outcome="insufficient", message="no interval")]
    models = {r: ModelMeta(engine="llama.cpp", engine_version="b1", model=f"{r}.gguf", revision=None, served_name=r, system_prompt=None,
                           adapter="adapters/later" if flip and r == "candidate" else None, sampling={}) for r in ("candidate", "baseline")}
    return RunResults(verdict=v.outcome, exit_code=v.exit_code, reasons=list(v.reasons), cases=cases, suites=summaries, gates=gates,
                      warnings=["3 of 15 candidate answers in arith carry no real answer (1 empty, 1 cut off, 1 echoed)"],
                      meta=RunMeta(mergegate_version="0", started_at="t", finished_at="t2", config_sha256="0" * 64, python="3",
                                   platform="p", models=models))


def _data(html: str) -> dict:
    block = re.search(r'<script type="application/json" id="mg-data">(.*?)</script>', html, re.S)
    assert block
    return json.loads(block.group(1))


def _outside_scripts(html: str) -> str:
    return re.sub(r"<script\b.*?</script>", "", html, flags=re.S)


def test_report_is_self_contained_inert_and_readable_without_javascript():
    run = realistic_run()
    html = render_html(run)
    assert VIEWER_MARKER in html[:600]
    # self-contained: nothing fetched (the SVG namespace is a name, not a request)
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:|//)|<link\b|@import|url\(""", html, re.I)
    assert not re.search(r"https?://", html.replace('xmlns="http://www.w3.org/2000/svg"', ""))
    # hostile output: not one raw tag of it; two script elements (data, viewer) and the viewer's hash in the CSP
    assert "<img" not in html and HOSTILE not in html and html.count("<script") == 2 and html.count("</script>") == 2
    js = re.search(r"<script>(.*?)</script>", html, re.S).group(1)
    assert f"'sha256-{base64.b64encode(hashlib.sha256(js.encode()).digest()).decode()}'" in html
    data = _data(html)
    hostile = next(c for c in data["cases"] if c["i"] == "hostile")
    assert hostile["in"] == hostile["ref"] == hostile["c"]["t"] == HOSTILE  # JSON.parse gives the text back exactly
    assert len(data["cases"]) == len(run.cases) and data["suites"] == ["arith", "chat", "tools"]
    # the summary without JavaScript: banner, reasons, warnings, per-suite table, chart with intervals, gates
    summary = _outside_scripts(html)
    text = re.sub(r"<[^>]+>", " ", summary)
    assert "✗ NO-GO" in text and "carry no real answer" in text and "candidate: 3 of 15 (20%)" in text
    assert "<svg" in summary and "95% CI" in summary and all(f"<code>{s}</code>" in summary for s in ("arith", "chat", "tools"))
    assert "✓ passed" in text and "? insufficient evidence" in text and "1 skipped" in text
    assert "+  where" not in text.split("full message")[0]  # pytest's rewrite text only behind 'full message'
    assert not re.search(r"\b(None|True|False|nan)\b", text), re.findall(r".{40}\b(?:None|True|False|nan)\b.{20}", text)


def test_cases_carry_what_explains_a_failure_and_long_outputs_are_capped():
    data = _data(render_html(realistic_run()))
    by_id = {c["i"]: c for c in data["cases"]}
    q0 = by_id["q0"]  # candidate wrong, baseline wrong too (0 % 4)
    assert q0["ref"] == "2" and q0["c"]["p"] is False and q0["c"]["ch"][0][4] == "/\\b2\\b/ did not match"
    assert by_id["err"]["c"]["e"] == "HTTP 500: upstream died" and by_id["err"]["c"]["p"] is False
    long = by_id["long"]["c"]
    assert long["f"] == "length" and len(long["t"]) < OUTPUT_LIMIT + 80 and "more characters in results.json" in long["t"]
    judged = json.loads(by_id["p0"]["c"]["ch"][0][5])
    assert judged["verdict_candidate_first"] == "A" and judged["verdict_candidate_second"] == "B"
    assert "'city' is 'Paris', expected 'Berlin'" in by_id["weather"]["c"]["ch"][0][4]
    assert "ref" not in by_id["weather"] and "e" not in q0["c"]  # empty fields stay out of the page


def test_an_incomplete_run_without_cases_still_renders():
    run = RunResults(verdict="INCOMPLETE", exit_code=2, reasons=["model server died"],
                     meta=RunMeta(mergegate_version="0", started_at="t", config_sha256="0" * 64, python="3", platform="p"))
    html = render_html(run)
    text = re.sub(r"<[^>]+>", " ", _outside_scripts(html))
    assert "INCOMPLETE" in text and "No suite was evaluated" in text and "No gate ran" in text and _data(html)["cases"] == []
    assert not re.search(r"\b(None|True|False)\b|\(\)", text)


def test_write_outputs_streams_the_same_viewer(tmp_path):
    run = realistic_run()
    paths = write_outputs(run, tmp_path)
    assert paths["report.html"].read_text(encoding="utf-8") == render_html(run)


def test_ten_thousand_cases_stay_a_reasonable_page():
    from helpers import make_run

    run = make_run(n_cases=5000, suites=("a", "b"), candidate=lambda i: f"answer {i} " * 20)
    html = render_html(run)
    per_case = len(html.encode()) / 10_000
    assert per_case < 1000, f"{per_case:.0f} bytes per case"
    assert len(_data(html)["cases"]) == 10_000


def test_compare_finds_flipped_cases_metrics_gates_and_the_verdict():
    a, b = realistic_run(), realistic_run(flip=True)
    c = compare_runs(a, b)
    assert c.matched == len(a.cases) and not c.only_before and not c.only_after
    flipped = {(f.key, f.kind) for f in c.flips}
    assert ("arith::q0", "fail→pass") in flipped and ("arith::q1", "pass→fail") in flipped and len(c.flips) == 5
    assert all(f.role == "candidate" for f in c.flips)
    assert c.count("candidate", "pass→fail") + c.count("candidate", "fail→pass") == 5
    assert any(m.suite == "arith" and m.metric == "pass_rate" and m.role == "candidate" for m in c.metrics)
    assert [(g.before, g.after) for g in c.gates] == [("passed", "failed")]
    lines = "\n".join(summary_lines(c))
    assert "candidate: 3 pass→fail, 2 fail→pass" in lines and "gate test_general_suite_does_not_regress[arith]: passed → failed" in lines
    assert "candidate.gguf → candidate.gguf + adapters/later" in lines
    html = render_compare_html(c, a, b)
    data = _data(html)
    assert data["kind"] == "compare" and len(data["cases"]) == 5 and {x["r"] for x in data["cases"]} == {"candidate"}
    assert "<img" not in html and html.count("<script") == 2
    same = compare_runs(a, a)
    assert not same.flips and not same.metrics and not same.gates and not same.verdict_changed


def _cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([*MERGEGATE, *args], cwd=cwd, capture_output=True, text=True, timeout=60)


def test_view_and_compare_commands(tmp_path):
    for name, flip in (("a", False), ("b", True)):
        (tmp_path / name).mkdir()
        (tmp_path / name / "results.json").write_text(realistic_run(flip).model_dump_json(), encoding="utf-8")
    out = _cli("view", "a", "--no-open", cwd=tmp_path)
    report = tmp_path / "a" / "report.html"
    assert out.returncode == 0 and out.stdout.strip() == str(Path("a") / "report.html"), out.stderr
    assert VIEWER_MARKER in report.read_text(encoding="utf-8")[:600]
    written = report.stat().st_mtime_ns
    assert _cli("view", "a/results.json", "--no-open", cwd=tmp_path).returncode == 0 and report.stat().st_mtime_ns == written  # reused
    report.write_text("<html>an old static report</html>")  # newer than results.json, but not this viewer: written again
    assert _cli("view", "a", "--no-open", cwd=tmp_path).returncode == 0 and VIEWER_MARKER in report.read_text(encoding="utf-8")[:600]
    out = _cli("compare", "a", "b/results.json", "--output", "cmp", cwd=tmp_path)
    assert out.returncode == 0 and "verdict:" in out.stdout and "candidate: 3 pass→fail, 2 fail→pass" in out.stdout, out.stderr
    assert (tmp_path / "cmp" / "compare.html").is_file()
    (tmp_path / "junk.json").write_text("{}")
    for args in (("view", "missing", "--no-open"), ("view", "junk.json", "--no-open"), ("compare", "a", "missing")):
        bad = _cli(*args, cwd=tmp_path)
        assert bad.returncode == 2 and len(bad.stderr.strip().splitlines()) == 1 and "Traceback" not in bad.stderr, (args, bad.stderr)
        assert bad.stderr.startswith("mergegate: error: ")


def test_view_serves_the_folder_on_localhost_only(tmp_path):
    from mergegate.cli.view import locate_report, serve_folder

    (tmp_path / "results.json").write_text(realistic_run().model_dump_json(), encoding="utf-8")
    report = locate_report(str(tmp_path))
    server = serve_folder(report.parent, 0)
    host, port = server.server_address[:2]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/report.html", timeout=10) as resp:
            assert resp.status == 200 and VIEWER_MARKER in resp.read(1000).decode()
    finally:
        server.shutdown()
        server.server_close()
    assert host == "127.0.0.1"


def test_report_in_a_real_browser(tmp_path):
    """The issue's acceptance: loads without errors at 1280x800, filter to failures lists them all, a case shows why it failed."""
    exe = require_browser()
    run = realistic_run()
    html = tmp_path / "report.html"
    html.write_text(render_html(run), encoding="utf-8")
    result = check_report_in_browser(html, tmp_path / "report.png", case="arith::hostile", executable=exe)
    print(f"\nscreenshots: {', '.join(result['screenshots'])}")
    assert result["failed"] == sum(c.candidate.passed is False for c in run.cases) and result["opened"] == "arith::hostile"
    assert result["regressed"] == sum(c.regressed for c in run.cases) > 0 and result["improved"] == sum(c.improved for c in run.cases) > 0
    regression = check_report_in_browser(html, tmp_path / "regression.png", case="arith::q3", executable=exe)
    assert regression["opened"] == "arith::q3"


def test_compare_in_a_real_browser(tmp_path):
    exe = require_browser()
    a, b = realistic_run(), realistic_run(flip=True)
    html = tmp_path / "compare.html"
    html.write_text(render_compare_html(compare_runs(a, b), a, b), encoding="utf-8")
    result = check_report_in_browser(html, tmp_path / "compare.png", executable=exe)
    print(f"\nscreenshots: {', '.join(result['screenshots'])}")
    assert result["cases"] == 5 and result["failed"] == 3
