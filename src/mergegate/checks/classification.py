"""Classification: pull one label out of free text and compare it."""

from __future__ import annotations

import re
from typing import Annotated, Optional

from pydantic import Field

from .registry import CheckContext, Outcome, check
from .text import normalize, reference_of


def extract_label(output: str, labels: list[str]) -> Optional[str]:
    """Return the one label named in ``output``, or None when none or several are named.

    An output that is exactly a label (after normalisation) wins; otherwise the
    labels are searched as whole words, case-insensitively. Naming two labels
    ("positive or negative") is an extraction failure, not a guess.
    """
    norm = normalize(output)
    for label in labels:
        if norm == normalize(label):
            return label
    found = [label for label in labels if re.search(r"(?<!\w)" + re.escape(label.lower()) + r"(?!\w)", output.lower())]
    return found[0] if len(found) == 1 else None


@check("label_in", uses_reference=True)
def label_in(
    ctx: CheckContext,
    labels: Annotated[list[str], Field(min_length=2, description="The label set.")],
    value: Annotated[Optional[str], Field(description="Expected label (default: the case reference).")] = None,
) -> Outcome:
    """Extracts one label from the output; passes when it is the expected label."""
    expected = reference_of(ctx, value)
    got = extract_label(ctx.output, labels)
    if got is None:
        return Outcome(score=0.0, passed=False, detail="no single label found in output",
                       extra={"label": None, "expected": expected, "extraction_failed": True})
    ok = normalize(got) == normalize(expected)
    return Outcome(score=float(ok), passed=ok, detail="" if ok else f"label {got!r}, expected {expected!r}",
                   extra={"label": got, "expected": expected, "extraction_failed": False})
