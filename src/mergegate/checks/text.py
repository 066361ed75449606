"""Checks on the surface of the text: exact match, substrings, regex, length."""

from __future__ import annotations

import re
import string
from typing import Annotated, Optional

from pydantic import Field

from .registry import CheckContext, Outcome, check

_PUNCT = string.punctuation + "“”‘’"


def normalize(text: str) -> str:
    """Return ``text`` lower-cased, whitespace collapsed, surrounding punctuation and quotes removed."""
    return " ".join(text.lower().split()).strip(_PUNCT + " ")


def reference_of(ctx: CheckContext, value: Optional[str]) -> str:
    """Return ``value`` or, when omitted, the case reference (the loader guarantees one exists)."""
    return value if value is not None else (ctx.reference or "")


@check("equals", uses_reference=True)
def equals(
    ctx: CheckContext,
    value: Annotated[Optional[str], Field(description="Expected answer (default: the case reference).")] = None,
    normalize_text: Annotated[bool, Field(description="Compare after lower-casing, collapsing whitespace "
                                                      "and stripping surrounding punctuation.")] = True,
) -> Outcome:
    """Passes when the output equals the expected answer (normalised by default)."""
    expected = reference_of(ctx, value)
    got, want = (normalize(ctx.output), normalize(expected)) if normalize_text else (ctx.output, expected)
    ok = got == want
    return Outcome(score=float(ok), passed=ok, detail="" if ok else f"expected {want!r}, got {got[:200]!r}")


@check("contains")
def contains(
    ctx: CheckContext,
    value: Annotated[str, Field(description="Substring that must appear.")],
    case_sensitive: bool = False,
) -> Outcome:
    """Passes when the output contains ``value``."""
    hay, needle = (ctx.output, value) if case_sensitive else (ctx.output.lower(), value.lower())
    ok = needle in hay
    return Outcome(score=float(ok), passed=ok, detail="" if ok else f"{value!r} not found")


@check("not_contains")
def not_contains(
    ctx: CheckContext,
    value: Annotated[str, Field(description="Substring that must not appear.")],
    case_sensitive: bool = False,
) -> Outcome:
    """Passes when the output does not contain ``value``."""
    hay, needle = (ctx.output, value) if case_sensitive else (ctx.output.lower(), value.lower())
    ok = needle not in hay
    return Outcome(score=float(ok), passed=ok, detail="" if ok else f"{value!r} found")


def _compile(spec, _suite_dir):
    flags = re.IGNORECASE if spec.ignore_case else 0
    try:
        return re.compile(spec.value, flags)
    except re.error as exc:
        raise ValueError(f"invalid regular expression {spec.value!r}: {exc}") from None


@check("regex", prepare=_compile)
def regex(
    ctx: CheckContext,
    value: Annotated[str, Field(description="Python regular expression searched anywhere in the output.")],
    ignore_case: bool = False,
    prepared: re.Pattern[str] | None = None,
) -> Outcome:
    """Passes when the regular expression matches somewhere in the output."""
    ok = bool(prepared.search(ctx.output)) if prepared is not None else False
    return Outcome(score=float(ok), passed=ok, detail="" if ok else f"/{value}/ did not match")


@check("max_words")
def max_words(ctx: CheckContext, value: Annotated[int, Field(ge=0, description="Most words allowed.")]) -> Outcome:
    """Passes when the output has at most ``value`` whitespace-separated words."""
    n = len(ctx.output.split())
    return Outcome(score=float(n <= value), passed=n <= value, detail=f"{n} words (max {value})")


@check("max_chars")
def max_chars(ctx: CheckContext, value: Annotated[int, Field(ge=0, description="Most characters allowed.")]) -> Outcome:
    """Passes when the output has at most ``value`` characters."""
    n = len(ctx.output)
    return Outcome(score=float(n <= value), passed=n <= value, detail=f"{n} chars (max {value})")


@check("latency_ms")
def latency_ms(ctx: CheckContext,
               value: Annotated[float, Field(gt=0, description="Slowest acceptable response, in milliseconds.")]) -> Outcome:
    """Passes when the response arrived within ``value`` milliseconds."""
    if ctx.latency_ms is None:
        return Outcome(score=0.0, passed=False, detail="no latency recorded")
    ok = ctx.latency_ms <= value
    return Outcome(score=float(ok), passed=ok, detail=f"{ctx.latency_ms:.0f} ms (max {value:.0f})")
