"""Gate messages for people: pytest's assertion text turned into the sentence a reviewer reads."""

from __future__ import annotations

import re

__all__ = ["readable"]

_COMPARISON = re.compile(r" (==|!=|<=|>=|<|>|in|not in|is|is not) ")
_EMPTY_PARAMETERS = re.compile(r"got empty parameter set for \(?(\w+)")
_LONG_FLOAT = re.compile(r"-?\d+\.\d{5,}(e[-+]?\d+)?")


def readable(message: str) -> str:
    """Return a gate's failure message without pytest's rewrite text, for people: the report, the comment, the terminal.

    ``AssertionError: assert not <finding>`` becomes the finding's sentence;
    ``assert 0.3333333333333333 == 1.0`` plus its ``+ where`` lines becomes
    ``0.3333 == 1.0 does not hold``; a gate's own assert message is kept as written.
    """
    lines = [ln for ln in message.splitlines() if ln.strip() and not ln.lstrip().startswith(("+", "where "))]
    first = lines[0] if lines else ""
    for prefix in ("AssertionError: ", "Skipped: ", "Failed: "):
        first = first.removeprefix(prefix)
    if first.startswith(("assert not ", "assert ")):
        expr = first.removeprefix("assert not ").removeprefix("assert ")
        # a comparison of values reads "… does not hold"; a finding's sentence (it has "name: ...") reads as it is
        first = f"{expr} does not hold" if _COMPARISON.search(expr) and ": " not in expr else expr
    empty = _EMPTY_PARAMETERS.search(first)  # a gate over suites of a role the project has none of
    if empty:
        return f"no {empty.group(1).replace('any_suite', 'suite').replace('_suite', ' suite')} in this run"
    return _LONG_FLOAT.sub(lambda m: f"{float(m.group()):.4g}", first)
