"""What the PR comment says in words: why the verdict, each suite's gates, the skipped gates in one line, why each case failed.

Plain data for ``report.md.j2``; every string here is raw (names and model output
included) and the template escapes it for where it lands.
"""

from __future__ import annotations

import itertools
import json
import re
from collections import Counter
from collections.abc import Iterable
from typing import Any, Optional

from ..results import CaseResult, GateResult, RunResults, SideResult, SuiteSummary
from ..results.messages import readable

__all__ = ["ICONS", "gate_label", "gate_test", "gate_message", "skipped_line", "gate_counts", "suite_gates", "why", "failing_cases",
           "case_view", "degenerate"]

ICONS = {"passed": "✅", "failed": "❌", "error": "⚠️", "skipped": "⏭️", "advisory": "ℹ️", "insufficient": "❔"}
# Worst first: a suite's cell shows the icon of its worst gate. Insufficient evidence and advisory gates do not block by
# default, so their words say so rather than borrowing a failure's.
_WORDS = {"failed": "failed", "error": "could not run", "insufficient": "not enough evidence", "advisory": "advisory",
          "passed": "passed"}


def gate_test(name: str) -> str:
    """Return the test part of a gate's node id ('gates/test_x.py::test_y[s]' -> 'test_y[s]')."""
    return name.rsplit("::", 1)[-1]


def gate_label(name: str) -> str:
    """Return a gate in words: 'gates/t.py::test_no_regression[arithmetic]' -> 'no regression [arithmetic]'."""
    base, bracket, param = gate_test(name).partition("[")
    words = base.removeprefix("test_").replace("_", " ").strip() or base
    return f"{words} [{param}" if bracket else words


def gate_message(message: str) -> str:
    """Return the first line of a gate's message, without pytest's 'AssertionError: assert' prefix.

    Results written before the messages were cleaned carry pytest's rewrite; the
    first line then still reads as the finding.
    """
    return readable(message)


def skipped_line(gates: Iterable[GateResult]) -> Optional[str]:
    """Return every skipped gate in one line: '9 gates skipped: no json_schema check in this suite (3), ...' (None: none)."""
    why = Counter(gate_message(g.message).removeprefix("Skipped:").strip() or "no reason given" for g in gates if g.outcome == "skipped")
    if not why:
        return None
    n = sum(why.values())
    return f"{n} gate{'s' if n > 1 else ''} skipped: " + ", ".join(f"{reason} ({k})" for reason, k in why.most_common())


def gate_counts(gates: Iterable[GateResult]) -> str:
    """Return the gates' outcomes in words, worst first: '2 failed · 3 passed · 9 skipped'."""
    n: Counter[str] = Counter(g.outcome for g in gates)
    parts = [f"{n[o]} {w}" for o, w in _WORDS.items() if n[o]]
    return " · ".join(parts + ([f"{n['skipped']} skipped"] if n["skipped"] else [])) or "none"


def _gate_suite(name: str, suites: set[str]) -> Optional[str]:
    # A gate belongs to a suite when pytest parametrized it by that suite: its id in brackets, alone or as one '-' part.
    m = re.search(r"\[(.*)\]$", gate_test(name))
    if not m:
        return None
    if m.group(1) in suites:
        return m.group(1)
    parts = [p for p in m.group(1).split("-") if p in suites]
    return parts[0] if len(parts) == 1 else None


def suite_gates(run: RunResults) -> dict[str, str]:
    """Return per suite the verdict of the gates parametrized by it: '❌ 1 failed, 1 passed' ('–' without one)."""
    names = {s.name for s in run.suites}
    by_suite: dict[str, Counter] = {s: Counter() for s in names}
    for g in run.gates:
        suite = _gate_suite(g.name, names)
        if suite is not None and g.outcome != "skipped":
            by_suite[suite][g.outcome] += 1
    cells = {}
    for suite, n in by_suite.items():
        worst = next((o for o in _WORDS if n[o]), None)
        cells[suite] = f"{ICONS[worst]} " + ", ".join(f"{n[o]} {w}" for o, w in _WORDS.items() if n[o]) if worst else "–"
    return cells


def why(run: RunResults, limit: int = 8) -> list[dict[str, str]]:
    """Return the verdict's reasons as bullets: a failed gate in words with its finding, blocking cases in one bullet.

    Each bullet is {icon, title, text}; past ``limit`` one bullet counts the rest.
    """
    failed = {g.name: g for g in run.gates if g.outcome == "failed"}
    blocking = [c.nodeid_name for c in run.cases if c.blocking and c.candidate.passed is False]
    out: list[dict[str, str]] = []
    said_blocking = False
    for reason in run.reasons:
        name = reason.removeprefix("gate failed: ")
        if reason.startswith("gate failed: ") and name in failed:
            param = gate_test(name).partition("[")[2].removesuffix("]")
            text = gate_message(failed[name].message)  # 'arithmetic: pass_rate: ...' repeats the [arithmetic] of the title
            out.append({"icon": "❌", "title": gate_label(name), "text": text.removeprefix(f"{param}: ") if param else text})
        elif reason.startswith("blocking case failed: ") and blocking:
            if not said_blocking:  # one bullet for them all
                more = f" and {len(blocking) - 5} more" if len(blocking) > 5 else ""
                out.append({"icon": "❌", "title": f"{len(blocking)} blocking case(s) failed", "text": ", ".join(blocking[:5]) + more})
                said_blocking = True
        else:
            out.append({"icon": "", "title": "", "text": reason})
    if len(out) > limit:
        out = out[: limit - 1] + [{"icon": "", "title": "", "text": f"… and {len(out) - limit + 1} more reason(s): see Gates below"}]
    return out


def _round_robin(cases: list[CaseResult]) -> list[CaseResult]:
    # The first few shown should span the suites, not be one suite's first ten.
    by_suite: dict[str, list[CaseResult]] = {}
    for c in cases:
        by_suite.setdefault(c.suite, []).append(c)
    return [c for row in itertools.zip_longest(*by_suite.values()) for c in row if c is not None]


def failing_cases(run: RunResults) -> tuple[list[CaseResult], dict[str, int]]:
    """Return the cases the candidate failed, regressions first (blocking first within), and their counts."""
    failing = [c for c in run.cases if c.candidate.passed is False]
    groups = [[c for c in failing if c.regressed == r and c.blocking == b] for r in (True, False) for b in (True, False)]
    counts = {"all": len(failing), "regressed": sum(c.regressed for c in failing),
              "both": sum(c.baseline.passed is False for c in failing), "blocking": sum(c.blocking for c in failing)}
    return [c for g in groups for c in _round_robin(g)], counts


def _expected(case: CaseResult) -> Optional[str]:
    if case.reference is not None:
        return case.reference
    # Checks without a reference (label_in, a tool call) keep what they expected in their extra fields, when they do.
    for ch in case.candidate.checks:
        for key in ("expected", "expected_calls", "expected_call"):
            if ch.extra.get(key) is not None:
                v = ch.extra[key]
                return v if isinstance(v, str) else json.dumps(v, ensure_ascii=False)
    return None


def _output(side: SideResult) -> str:
    g = side.generation
    text = g.text
    if g.tool_calls:
        text += ("\n" if text else "") + "tool calls: " + json.dumps(g.tool_calls, ensure_ascii=False)
    if g.error and not text:
        text = f"request failed: {g.error}"
    return text


def _failures(side: SideResult) -> list[str]:
    out = [f"{ch.type}: {ch.detail}" if ch.detail else f"{ch.type} (score {ch.score})" for ch in side.checks if ch.passed is False]
    if side.generation.error:
        out.insert(0, f"request failed: {side.generation.error}")
    return out or ["failed"]


def case_view(case: CaseResult) -> dict[str, Any]:
    """Return one failing case for the comment: what was asked and expected, both answers, and why the candidate failed."""
    base = case.baseline.passed
    return {"name": case.nodeid_name, "category": case.category, "blocking": case.blocking, "input": case.input,
            "expected": _expected(case), "candidate": _output(case.candidate), "baseline": _output(case.baseline),
            "failures": _failures(case.candidate),
            "status": "regressed" if case.regressed else "both failed" if base is False else "no baseline verdict",
            "baseline_icon": "–" if base is None else "✅" if base else "❌"}


def degenerate(suite: SuiteSummary) -> Optional[str]:
    """Return 'candidate / baseline' degenerate answers of a suite ('7 (3%) / 17 (7%)'), or None when there are none."""
    qs = [suite.answers.get(r) for r in ("candidate", "baseline")]
    if not any(q and q.degenerate for q in qs):
        return None
    return " / ".join("–" if q is None else f"{q.degenerate}" + (f" ({q.share:.0%})" if q.share else "") for q in qs)
