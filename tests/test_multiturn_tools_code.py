"""Multi-turn cases, tool calls and code execution through a real run against the bundled model."""

from __future__ import annotations

import shutil
import textwrap
from pathlib import Path

import pytest

from mergegate.config import load_config
from mergegate.errors import InputError
from mergegate.evaluation import Evaluation
from mergegate.suites import load_suite

REPO = Path(__file__).resolve().parents[1]

TWO_TURNS = textwrap.dedent("""\
    name: chat
    cases:
      - id: recall
        turns: ["My name is Alice. Say hello to me.", "What is my name?"]
        checks: [{type: contains, value: Alice, turn: 1}, {type: contains, value: Alice, turn: 2}, {type: max_words, value: 200}]
      - id: single
        prompt: What is the capital of France?
        checks: [{type: contains, value: Paris}]
    """)


def _evaluation(tmp_path: Path, llama, suites: list[Path]) -> Evaluation:
    (tmp_path / "mergegate.yaml").write_text(llama.config_yaml(cache_path=tmp_path / "cache.sqlite"))
    return Evaluation(load_config(root=tmp_path), [load_suite(p) for p in suites], progress=False)


def test_a_later_turn_carries_the_models_own_earlier_answer(tmp_path, llama):
    (tmp_path / "chat.yaml").write_text(TWO_TURNS)
    ev = _evaluation(tmp_path, llama, [tmp_path / "chat.yaml"])
    sent = []
    ev.on_result = lambda job, resp: sent.append((job, resp))
    cases = {c.id: c for c in ev.run()}
    assert ev.failures == [] and ev.stats.errors == 0
    assert ev.stats.requests_sent == 6  # 2 turns x 2 models + 1 single-turn case x 2 models
    recall = cases["recall"]
    for role in ("candidate", "baseline"):
        gen = getattr(recall, role).generation
        assert len(gen.turns) == 2 and gen.turns[1] == gen.text
        # the second request of this model: its own first answer, then the second question
        second = next(j for j, _ in sent if j.key == (role, "chat", "recall"))
        first = next(r for j, r in sent if j.key == (role, "chat", "recall", 1))
        assert [m["role"] for m in second.messages][-3:] == ["user", "assistant", "user"]
        assert second.messages[-2]["content"] == first.text == gen.turns[0]
        assert second.messages[-1]["content"] == "What is my name?"
        # each check looked at the turn it names
        turn1, turn2, _ = getattr(recall, role).checks
        assert turn1.passed == ("Alice" in gen.turns[0]) and turn2.passed == ("Alice" in gen.turns[1])
    # a rerun is served from the cache, turn by turn
    again = _evaluation(tmp_path, llama, [tmp_path / "chat.yaml"])
    again.run()
    assert again.stats.requests_sent == 0 and again.stats.cache_hits == 6


def test_a_failed_first_turn_fails_the_later_ones_without_a_request(tmp_path, llama):
    (tmp_path / "chat.yaml").write_text(TWO_TURNS)
    ev = _evaluation(tmp_path, llama, [tmp_path / "chat.yaml"])
    from mergegate.client import Response
    from mergegate.evaluation.requests import build_jobs

    earlier = {(r, "chat", "recall", 1): Response(error="server died") for r in ("candidate", "baseline")}
    jobs, failed = build_jobs(ev.loaded, list(ev.selected_cases()), {}, 2, earlier)
    assert jobs == [] and failed[("candidate", "chat", "recall")].error == "turn 1 failed: server died"


def test_turn_must_exist(tmp_path):
    p = tmp_path / "bad.yaml"
    p.write_text("name: bad\ncases:\n  - id: a\n    turns: [one, two]\n    checks: [{type: contains, value: x, turn: 3}]\n")
    with pytest.raises(InputError, match="targets turn 3, but the case has 2 turn"):
        load_suite(p)
    p.write_text("name: bad\ncases:\n  - id: a\n    turns: [one]\n    checks: [{type: contains, value: x}]\n")
    with pytest.raises(InputError, match="at least 2 items"):
        load_suite(p)


def test_the_shipped_code_tools_and_conversation_suites_run_for_real(tmp_path, llama):
    for name in ("code", "tools", "conversation"):
        shutil.copy(REPO / "eval_suites" / f"{name}.yaml", tmp_path / f"{name}.yaml")
    ev = _evaluation(tmp_path, llama, [tmp_path / f"{n}.yaml" for n in ("code", "tools", "conversation")])
    sent = []
    ev.on_result = lambda job, resp: sent.append(job)
    cases = ev.run()
    assert ev.failures == [] and ev.stats.errors == 0
    code = [c for c in cases if c.suite == "code"]
    for c in code:
        chk = c.candidate.checks[0]
        assert chk.extra["failure"] in (None, "syntax_error", "test_failure", "runtime_error", "timeout", "resource", "blocked")
        assert chk.passed == (chk.extra["failure"] is None)
    # the bundled model writes at least the simplest function correctly, and the sandbox runs it
    assert any(c.candidate.checks[0].passed for c in code)
    tools = [j for j in sent if j.key[1] == "tools"]
    # tool_format: prompt: the tools are described in the system prompt, not sent as API tools
    assert all(j.tools is None and "get_weather" in j.messages[0]["content"] for j in tools)
    by_id = {c.id: c for c in cases if c.suite == "tools"}
    for c in by_id.values():
        chk = c.candidate.checks[0]
        assert chk.passed == (chk.detail == "") and isinstance(chk.extra["calls"], list)
    conv = [c for c in cases if c.suite == "conversation"]
    assert all(len(c.candidate.generation.turns) == 2 for c in conv)
    results = ev.finish([])
    assert {s.name for s in results.suites} == {"code", "tools", "conversation"}
    assert set(results.categories) >= {"simple", "edge_case", "adversarial"}
