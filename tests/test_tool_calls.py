"""The tool_call check: parsing calls from the API or from text, and type-aware, multiset comparison."""

from __future__ import annotations

import json
import textwrap

import pytest

from mergegate.checks import REGISTRY, CheckContext, run_check
from mergegate.checks.tools import ExpectedCall, match_calls, parse_calls, values_match
from mergegate.errors import InputError
from mergegate.suites import load_suite


def call(name, **args):
    return {"name": name, "arguments": args}


def test_values_compare_by_type():
    assert values_match(5, 5.0) and values_match(2.5, 2.5)
    assert not values_match(5, "5") and not values_match("5", 5)
    assert not values_match(True, 1) and not values_match(1, True) and values_match(False, False)
    assert values_match(None, None) and not values_match(None, "")
    assert values_match({"a": [1, 2]}, {"a": [1, 2]}) and not values_match({"a": 1}, {"a": 1, "b": 2})
    assert not values_match([1, 2], [2, 1]) and values_match([1, 2], [2, 1], unordered=True)
    assert not values_match([1, 1, 2], [1, 2, 2], unordered=True)  # a multiset, not a set
    assert values_match(" Paris ", "Paris")


def test_one_call_arguments_optional_alternatives_and_extras():
    exp = [ExpectedCall(name="get_weather", arguments={"city": "Paris", "unit": "celsius"}, optional=["unit"],
                        alternatives={"city": ["Paris, France"]})]
    assert match_calls(exp, [call("get_weather", city="Paris", unit="celsius")]) is None
    assert match_calls(exp, [call("get_weather", city="Paris")]) is None  # optional omitted
    assert match_calls(exp, [call("get_weather", city="Paris, France")]) is None  # an acceptable alternative
    assert "argument 'unit'" in match_calls(exp, [call("get_weather", city="Paris", unit="kelvin")])
    assert "missing argument 'city'" in match_calls(exp, [call("get_weather", unit="celsius")])
    assert "unexpected argument(s) ['days']" in match_calls(exp, [call("get_weather", city="Paris", days=3)])
    assert "called 'get_time'" in match_calls(exp, [call("get_time", city="Paris")])
    assert "got none" in match_calls(exp, [])
    assert "argument 'n' is \"3\"" in match_calls([ExpectedCall(name="f", arguments={"n": 3})], [call("f", n="3")])


def test_parallel_calls_are_a_multiset_and_no_call_means_no_call():
    exp = [ExpectedCall(name="get_weather", arguments={"city": "Paris"}), ExpectedCall(name="get_weather", arguments={"city": "Rome"})]
    assert match_calls(exp, [call("get_weather", city="Rome"), call("get_weather", city="Paris")]) is None
    assert match_calls(exp, [call("get_weather", city="Rome"), call("get_weather", city="Rome")]) is not None
    assert "expected 2 call(s), got 1" in match_calls(exp, [call("get_weather", city="Rome")])
    assert match_calls([], []) is None
    assert "expected no tool call, got get_weather" in match_calls([], [call("get_weather", city="Paris")])


def test_calls_are_read_from_the_api_or_from_json_in_text():
    api = [{"name": "f", "arguments": '{"x": 1}'}]
    assert parse_calls(api, "ignored") == ([call("f", x=1)], None)
    assert parse_calls([{"name": "f", "arguments": "{x: 1"}], "")[1].startswith("f: arguments are not valid JSON")
    forms = [
        '{"name": "f", "arguments": {"x": 1}}',
        '```json\n{"name": "f", "arguments": {"x": 1}}\n```',
        '{"name": "f", "parameters": {"x": 1}}',
        '{"tool_calls": [{"function": {"name": "f", "arguments": "{\\"x\\": 1}"}}]}',
        'Sure, calling it now: {"name": "f", "arguments": {"x": 1}} and done.',
        '<tool_call>\n{"name": "f", "arguments": {"x": 1}}\n</tool_call>',
    ]
    for text in forms:
        assert parse_calls(None, text) == ([call("f", x=1)], None), text
    assert parse_calls(None, '[{"name": "f", "arguments": {}}, {"name": "g", "arguments": {"y": "z"}}]')[0] == [call("f"), call("g", y="z")]
    assert parse_calls(None, "The weather in Paris is sunny.") == ([], None)
    assert parse_calls(None, 'JSON like {"temp": 20} is not a call') == ([], None)


def test_the_check_on_outputs(tmp_path):
    spec = REGISTRY["tool_call"].spec.model_validate({"type": "tool_call", "calls": [{"name": "add", "arguments": {"a": 2, "b": 3}}]})

    def run(output, tool_calls=None):
        return run_check(spec, CheckContext(output=output, reference=None, latency_ms=None, suite_dir=tmp_path, tool_calls=tool_calls))

    assert run('{"name": "add", "arguments": {"a": 2, "b": 3}}').passed is True
    assert run("", [{"name": "add", "arguments": json.dumps({"a": 2, "b": 3})}]).passed is True
    bad = run('{"name": "add", "arguments": {"a": "2", "b": 3}}')
    assert bad.passed is False and "argument 'a'" in bad.detail and bad.extra["calls"] == [call("add", a="2", b=3)]


def _suite(tmp_path, checks: str, tools: str = "tools: [{type: function, function: {name: add, parameters: {type: object}}}]"):
    p = tmp_path / "t.yaml"
    p.write_text(f"name: t\ncases:\n  - id: one\n    prompt: hi\n    {tools}\n    checks: [{checks}]\n")
    return p


def test_a_suite_must_define_the_tools_it_expects(tmp_path):
    load_suite(_suite(tmp_path, "{type: tool_call, calls: [{name: add, arguments: {a: 1}}]}"))
    with pytest.raises(InputError, match=r"t\.yaml.*expects \['sub'\], which the case's tools do not define"):
        load_suite(_suite(tmp_path, "{type: tool_call, calls: [{name: sub}]}"))
    with pytest.raises(InputError, match="offers no 'tools'"):
        load_suite(_suite(tmp_path, "{type: tool_call, calls: [{name: add}]}", tools=""))
    with pytest.raises(InputError, match=r"'optional' names \['b'\], which are not in 'arguments'"):
        load_suite(_suite(tmp_path, "{type: tool_call, calls: [{name: add, arguments: {a: 1}, optional: [b]}]}"))


@pytest.fixture(scope="module")
def function_calling_server(llama, tmp_path_factory):
    """A second llama.cpp server whose chat format returns real API tool_calls (grammar-constrained arguments)."""
    import sys

    from mergegate.serving import ManagedServer, free_port

    port = free_port()
    server = ManagedServer("fc", [sys.executable, "-m", "llama_cpp.server", "--model", llama.model_path, "--model_alias", "fc",
                                  "--host", "127.0.0.1", "--port", str(port), "--chat_format", "chatml-function-calling"],
                           f"http://127.0.0.1:{port}/v1/models", tmp_path_factory.mktemp("fc") / "fc.log")
    server.start(timeout_s=120)
    yield f"http://127.0.0.1:{port}/v1"
    server.stop()


def test_tool_calls_from_the_api_are_read_and_compared(tmp_path, function_calling_server):
    from mergegate.config import load_config
    from mergegate.evaluation import Evaluation

    (tmp_path / "mergegate.yaml").write_text(textwrap.dedent(f"""\
        models:
          candidate: {{engine: external, model: fc, base_url: "{function_calling_server}", served_name: fc, revision: r1,
                       sampling: {{temperature: 0, max_tokens: 48}}}}
          baseline: {{engine: external, model: fc, base_url: "{function_calling_server}", served_name: fc, revision: r1,
                      sampling: {{temperature: 0, max_tokens: 48}}, tool_format: prompt}}
        cache: {{path: {tmp_path / 'c.sqlite'}}}
        """))
    (tmp_path / "t.yaml").write_text(textwrap.dedent("""\
        name: t
        defaults:
          tool_choice: get_weather
          tools: [{type: function, function: {name: get_weather, parameters: {type: object, properties: {city: {type: string}}, \
required: [city]}}}]
        cases:
          - id: paris
            prompt: What is the weather in Paris?
            checks: [{type: tool_call, calls: [{name: get_weather, arguments: {city: Paris}}]}]
          - id: wrong-city
            prompt: What is the weather in Paris?
            checks: [{type: tool_call, calls: [{name: get_weather, arguments: {city: Rome}}]}]
        """))
    ev = Evaluation(load_config(root=tmp_path), [load_suite(tmp_path / "t.yaml")], progress=False)
    cases = {c.id: c for c in ev.run()}
    assert ev.failures == [] and ev.stats.errors == 0
    gen = cases["paris"].candidate.generation
    assert gen.tool_calls and gen.tool_calls[0]["name"] == "get_weather"  # the API's tool_calls, not text
    assert cases["paris"].candidate.checks[0].passed is True
    assert cases["paris"].candidate.checks[0].extra["calls"] == [{"name": "get_weather", "arguments": {"city": "Paris"}}]
    bad = cases["wrong-city"].candidate.checks[0]
    assert bad.passed is False and "argument 'city' is \"Paris\", expected \"Rome\"" in bad.detail
    # the baseline (tool_format: prompt) got no API tools: its calls, if any, came from its text
    assert cases["paris"].baseline.generation.tool_calls is None
