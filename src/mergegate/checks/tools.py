"""Tool calls: did the model call the expected function(s) with the expected arguments?

Calls come from the API's ``tool_calls`` when the engine returns them, and
from JSON in the text (a bare object, a list, ``{"tool_calls": [...]}`` or
``<tool_call>`` tags) only when the model was asked to write them there
(``tool_format: prompt``, or ``calls_in_text: true`` on the check), and then
only objects that name a tool the case offers: an answer in API mode that
mentions ``{"name": ...}`` in prose is prose, not a call.

Comparison is type-aware: ``5`` and ``5.0`` match unless the tool declares the
argument an integer, ``"5"`` and ``5`` do not, ``true`` is not ``1``; strings
match exactly (after trimming), or with ``strings: normalized`` as BFCL's checker
compares them (case, spaces and ``,./-_*^`` ignored). Parallel calls are compared
as a multiset; ``calls: []`` expects that no tool is called (irrelevance).
"""

from __future__ import annotations

import json
import math
import re
from typing import Annotated, Any, Literal, Optional

from pydantic import BaseModel, ConfigDict, Field, model_validator

from .formats import extract_json_text
from .registry import CheckContext, Outcome, check

__all__ = ["ExpectedCall", "parse_calls", "match_calls", "values_match", "tools_prompt", "expected_from_bfcl", "tool_from_bfcl"]


def tools_prompt(tools: list[dict[str, Any]]) -> str:
    """Return the system-prompt text that offers ``tools`` to a model without API tool support (``tool_format: prompt``).

    It asks for exactly the JSON that :func:`parse_calls` reads back. One compact line per tool: an
    indented schema costs a small model ~40% more prompt tokens for nothing (prompt time is most of a case's).
    """
    return ("You can call these tools (JSON Schema of each function's arguments):\n"
            + "\n".join(json.dumps(t["function"], ensure_ascii=False) for t in tools)
            + '\nTo call a tool, reply with only a JSON object {"name": <function name>, "arguments": {<argument>: <value>}}; '
            "for several calls, a JSON list of such objects. If no tool fits the request, answer in plain text without JSON.")


class ExpectedCall(BaseModel):
    """One call the model should make."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(description="Function name.")
    arguments: dict[str, Any] = Field(default_factory=dict, description="Expected value of each argument.")
    optional: list[str] = Field(default_factory=list, description="Arguments that may be omitted (when given, they must match).")
    alternatives: dict[str, list[Any]] = Field(default_factory=dict, description="Further acceptable values per argument.")
    unordered: list[str] = Field(default_factory=list, description="Arguments whose list value is compared ignoring order.")

    @model_validator(mode="after")
    def _known_arguments(self) -> ExpectedCall:
        for field in ("optional", "alternatives", "unordered"):
            unknown = sorted(set(getattr(self, field)) - set(self.arguments))
            if unknown:
                raise ValueError(f"'{field}' names {unknown}, which are not in 'arguments'")
        return self


StringMatch = Literal["exact", "normalized"]
_PUNCTUATION = re.compile(r"[ ,./\-_*^]")


def normalized(text: str) -> str:
    """Return ``text`` as BFCL's checker compares strings: no spaces or ``,./-_*^``, lower case, ``'`` as ``"``."""
    return _PUNCTUATION.sub("", text).lower().replace("'", '"')


_BFCL_TYPES = {"dict": "object", "float": "number", "tuple": "array"}


def tool_from_bfcl(function: dict[str, Any]) -> dict[str, Any]:
    """Return a BFCL function description as an OpenAI ``tools`` entry (its Python type names made JSON Schema's)."""
    def schema(node: Any) -> Any:
        if isinstance(node, dict):
            out = {k: schema(v) for k, v in node.items()}
            if node.get("type") == "any":
                out.pop("type")
            elif isinstance(node.get("type"), str):
                out["type"] = _BFCL_TYPES.get(node["type"], node["type"])
            return out
        return [schema(v) for v in node] if isinstance(node, list) else node

    params = schema(function.get("parameters") or {"type": "object", "properties": {}})
    return {"type": "function", "function": {"name": function["name"], "description": function.get("description", ""),
                                             "parameters": params}}


def _bfcl_values(value: Any, limit: int) -> list[Any]:
    """Return every concrete value one BFCL possible answer allows (nested dicts hold lists of acceptable values)."""
    if isinstance(value, dict):
        combos: list[dict[str, Any]] = [{}]
        for key, accepted in value.items():
            options = [v for a in accepted for v in _bfcl_values(a, limit)] if isinstance(accepted, list) else [accepted]
            combos = [{**c, **({key: o} if o != "" else {})} for c in combos for o in options][: limit + 1]
        return combos
    if isinstance(value, list):
        lists: list[list[Any]] = [[]]
        for item in value:
            lists = [[*done, v] for done in lists for v in _bfcl_values(item, limit)][: limit + 1]
        return lists
    return [value]


def expected_from_bfcl(ground_truth: list[dict[str, Any]], limit: int = 256) -> Optional[list[ExpectedCall]]:
    """Return BFCL's possible answers as expected calls ("" among an argument's values: it may be omitted).

    None when an argument's nested answers expand to more than ``limit`` alternatives.
    """
    calls = []
    for call in ground_truth:
        ((name, params),) = call.items()
        arguments, alternatives, optional = {}, {}, []
        for param, accepted in params.items():
            values = [v for a in accepted for v in _bfcl_values(a, limit)]
            if len(values) > limit:
                return None
            concrete = [v for v in values if v != ""]
            if "" in accepted or not concrete:
                optional.append(param)
            arguments[param] = concrete[0] if concrete else ""
            if concrete[1:]:
                alternatives[param] = concrete[1:]
        calls.append(ExpectedCall(name=name, arguments=arguments, alternatives=alternatives, optional=optional))
    return calls


def values_match(expected: Any, got: Any, unordered: bool = False, strings: StringMatch = "exact") -> bool:
    """Return True when ``got`` equals ``expected`` type-aware (numbers compare as numbers, never as strings or booleans)."""
    if isinstance(expected, bool) or isinstance(got, bool):
        return type(expected) is type(got) and expected == got
    if isinstance(expected, (int, float)):
        return isinstance(got, (int, float)) and _numbers_match(expected, got)
    if isinstance(expected, str):
        if not isinstance(got, str):
            return False
        return got.strip() == expected.strip() if strings == "exact" else normalized(got) == normalized(expected)
    if isinstance(expected, dict):
        return (isinstance(got, dict) and set(got) == set(expected)
                and all(values_match(v, got[k], strings=strings) for k, v in expected.items()))
    if isinstance(expected, list):
        if not isinstance(got, list) or len(got) != len(expected):
            return False
        if not unordered:
            return all(values_match(e, g, strings=strings) for e, g in zip(expected, got, strict=True))
        return _perfect_matching(expected, got, lambda e, g: values_match(e, g, strings=strings))
    return expected is None and got is None


def _numbers_match(expected: float, got: float) -> bool:
    if isinstance(expected, int) and isinstance(got, int):
        return expected == got  # exact, and no float conversion (10**400 is a valid JSON integer)
    try:
        return math.isclose(expected, got, rel_tol=1e-9, abs_tol=1e-12)
    except OverflowError:  # an integer beyond float range against a float: no float is that integer
        return False


def _perfect_matching(expected: list, got: list, same: Any) -> bool:
    """Return True when every expected item pairs with a distinct got item (backtracking; lists here are short)."""
    used = [False] * len(got)

    def place(i: int) -> bool:
        if i == len(expected):
            return True
        for j, g in enumerate(got):
            if not used[j] and same(expected[i], g):
                used[j] = True
                if place(i + 1):
                    return True
                used[j] = False
        return False

    return len(expected) == len(got) and place(0)


def call_mismatch(exp: ExpectedCall, got: dict[str, Any], strings: StringMatch = "exact",
                  schema: Optional[dict[str, Any]] = None) -> Optional[str]:
    """Return why ``got`` (``{"name", "arguments"}``) is not ``exp``, or None when it matches.

    ``schema``: the offered tool's JSON Schema of arguments; an argument it declares an integer must be one.
    """
    if got["name"] != exp.name:
        return f"called {got['name']!r}, expected {exp.name!r}"
    args = got["arguments"]
    wrong = _against_schema(args, schema) if schema else None
    if wrong:
        return f"{exp.name}: {wrong}"
    for name, value in exp.arguments.items():
        if name not in args:
            if name in exp.optional:
                continue
            return f"{exp.name}: missing argument {name!r}"
        accepted = [value, *exp.alternatives.get(name, [])]
        if not any(values_match(v, args[name], name in exp.unordered, strings) for v in accepted):
            return f"{exp.name}: argument {name!r} is {json.dumps(args[name])}, expected {' or '.join(json.dumps(v) for v in accepted)}"
    extra = sorted(set(args) - set(exp.arguments))
    if extra:
        return f"{exp.name}: unexpected argument(s) {extra}"
    return None


def _against_schema(args: dict[str, Any], schema: dict[str, Any]) -> Optional[str]:
    """Return how ``args`` break the tool's declared arguments (required, known, typed), or None."""
    declared = schema.get("properties") or {}
    missing = [name for name in schema.get("required") or [] if name not in args]
    if missing:
        return f"missing argument(s) {missing} the tool requires"
    unknown = sorted(set(args) - set(declared)) if declared else []
    if unknown:
        return f"argument(s) {unknown} the tool does not take"
    for name, value in args.items():
        # integers only: a value's other types are decided by the expected value (BFCL's own data mixes types freely)
        if (declared.get(name) or {}).get("type") == "integer" and isinstance(value, float):
            return f"argument {name!r} is {json.dumps(value)}, the tool declares an integer"
    return None


def match_calls(expected: list[ExpectedCall], got: list[dict[str, Any]], strings: StringMatch = "exact",
                tools: Optional[dict[str, dict[str, Any]]] = None) -> Optional[str]:
    """Return None when ``got`` matches ``expected`` as a multiset of calls, else the reason it does not.

    ``tools``: the offered tools' argument schemas by name (integer arguments are checked against them).
    """
    if not expected:
        return None if not got else f"expected no tool call, got {', '.join(c['name'] for c in got)}"
    if not got:
        return f"expected a call to {', '.join(e.name for e in expected)}, got none"
    if len(got) != len(expected):
        return f"expected {len(expected)} call(s), got {len(got)}: {', '.join(c['name'] for c in got)}"

    def mismatch(e: ExpectedCall, g: dict[str, Any]) -> Optional[str]:
        return call_mismatch(e, g, strings, (tools or {}).get(e.name))

    if len(expected) == 1:
        return mismatch(expected[0], got[0])
    if _perfect_matching(expected, got, lambda e, g: mismatch(e, g) is None):
        return None
    reasons = [mismatch(e, g) for e in expected for g in got if g["name"] == e.name]
    return next((r for r in reasons if r), "the calls do not pair up with the expected calls")


_TAGGED = re.compile(r"<tool_call>\s*(.*?)\s*</tool_call>", re.DOTALL)


def _normalize(obj: Any) -> list[dict[str, Any]]:
    """Return the calls in one parsed JSON value (raises ValueError when it is not a call or list of calls)."""
    if isinstance(obj, list):
        return [c for item in obj for c in _normalize(item)]
    if not isinstance(obj, dict):
        raise ValueError("not a call")
    if "tool_calls" in obj:
        return _normalize(obj["tool_calls"])
    if isinstance(obj.get("function"), dict):
        return _normalize(obj["function"])
    if "name" not in obj or not isinstance(obj["name"], str):
        raise ValueError("a call needs a 'name'")
    args = obj.get("arguments", obj.get("parameters", {}))
    if isinstance(args, str):
        args = json.loads(args) if args.strip() else {}
    if not isinstance(args, dict):
        raise ValueError("'arguments' must be an object")
    return [{"name": obj["name"], "arguments": args}]


def parse_calls(api_calls: Optional[list[dict[str, Any]]], text: str, read_text: bool = True,
                offered: Optional[set[str]] = None) -> tuple[list[dict[str, Any]], Optional[str]]:
    """Return ``(calls, error)``: the calls from the API's ``tool_calls``, else (``read_text``) from JSON in ``text``.

    Text without any JSON call is no call; a JSON object in the text counts as a
    call only when ``offered`` is None or names it; a call whose arguments are not
    valid JSON is an error (the model tried and failed).
    """
    calls: list[dict[str, Any]] = []
    if api_calls:
        for c in api_calls:
            try:
                args = json.loads(c.get("arguments") or "{}")
            except json.JSONDecodeError as exc:
                return [], f"{c.get('name')}: arguments are not valid JSON ({exc.msg})"
            if not isinstance(args, dict):
                return [], f"{c.get('name')}: arguments are not a JSON object"
            calls.append({"name": c.get("name"), "arguments": args})
        return calls, None
    if not read_text:
        return [], None
    tagged = _TAGGED.findall(text)
    candidates = tagged or [extract_json_text(text)]
    for chunk in candidates:
        try:
            calls += _normalize(json.loads(chunk))
            continue
        except (json.JSONDecodeError, ValueError):
            pass
        found = _first_json_call(chunk, offered)
        if found:
            calls += found
    if offered is not None:
        calls = [c for c in calls if c["name"] in offered]
    return calls, None


def _first_json_call(text: str, offered: Optional[set[str]] = None) -> list[dict[str, Any]]:
    """Return the calls in the first JSON value embedded in prose that is a call (or list of calls) of an offered tool."""
    decoder = json.JSONDecoder()
    for m in re.finditer(r"[\[{]", text):
        try:
            value, _ = decoder.raw_decode(text, m.start())
            calls = _normalize(value)
        except (json.JSONDecodeError, ValueError):
            continue
        if offered is None or any(c["name"] in offered for c in calls):
            return calls
    return []


@check("tool_call")
def tool_call(
    ctx: CheckContext,
    calls: Annotated[list[ExpectedCall], Field(description="The expected call(s), compared as a multiset; [] = no tool may be called.")],
    strings: Annotated[StringMatch, Field(description="'exact' (after trimming) or 'normalized': case, spaces and ,./-_*^ ignored, "
                                                      "as BFCL's checker compares strings.")] = "exact",
    calls_in_text: Annotated[Optional[bool], Field(description="Read calls written as JSON in the answer: default only when the model "
                                                               "was asked to (tool_format: prompt); true also in API mode.")] = None,
) -> Outcome:
    """Passes when the model's tool calls (API ``tool_calls`` or JSON in text) match ``calls`` by name and type-aware arguments."""
    read_text = ctx.calls_in_text if calls_in_text is None else calls_in_text
    got, error = parse_calls(ctx.tool_calls, ctx.output, read_text, set(ctx.tools) if ctx.tools is not None else None)
    if error:
        return Outcome(score=0.0, passed=False, detail=error, extra={"calls": got})
    reason = match_calls(list(calls), got, strings, ctx.tools)
    return Outcome(score=float(reason is None), passed=reason is None, detail=reason or "", extra={"calls": got})
