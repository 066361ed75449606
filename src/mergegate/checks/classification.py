"""Classification: pull one label out of free text and compare it."""

from __future__ import annotations

import re
from typing import Annotated, Any, Optional

from pydantic import Field

from .registry import CheckContext, Outcome, check, side_metric
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


def classification_metrics(results: list[Any]) -> dict[str, float]:
    """Return macro F1 and the extraction failure rate over one model's ``label_in`` results."""
    expected = [str(r.extra["expected"]).lower() for r in results if "expected" in r.extra]
    got = [str(r.extra["label"]).lower() if r.extra.get("label") is not None else "<none>" for r in results if "expected" in r.extra]
    if not expected:
        return {}
    from sklearn.metrics import f1_score  # here, not at import: scikit-learn takes ~0.8 s to import

    labels = sorted(set(expected))  # macro over the true classes; "<none>" counts as a wrong prediction
    return {
        "macro_f1": float(f1_score(expected, got, labels=labels, average="macro", zero_division=0)),
        "extraction_failure_rate": got.count("<none>") / len(got),
    }


@check("label_in", uses_reference=True, metrics=[side_metric(classification_metrics)])
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
