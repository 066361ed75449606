"""Reference-overlap metrics: token F1, ROUGE, BLEU, chrF.

ROUGE comes from Google's ``rouge-score`` (the reference implementation of
ROUGE-1.5.5), BLEU and chrF from ``sacrebleu``. All scores are reported in
[0, 1] so every metric in a suite reads on the same scale (sacrebleu's 0–100
is divided by 100).
"""

from __future__ import annotations

import re
import string
from collections import Counter
from functools import cache
from typing import TYPE_CHECKING, Annotated, Optional

from pydantic import Field

from .registry import CheckContext, check
from .text import reference_of

_Value = Annotated[Optional[str], Field(description="Reference text (default: the case reference).")]

_ARTICLES = re.compile(r"\b(a|an|the)\b")
_PUNCT_TABLE = str.maketrans("", "", string.punctuation)


def squad_normalize(text: str) -> str:
    """Return ``text`` normalised as the SQuAD v1.1 evaluation script does."""
    text = text.lower().translate(_PUNCT_TABLE)
    return " ".join(_ARTICLES.sub(" ", text).split())


def token_f1_score(prediction: str, reference: str) -> float:
    """Return the SQuAD token-level F1 between ``prediction`` and ``reference``."""
    pred, ref = squad_normalize(prediction).split(), squad_normalize(reference).split()
    if not pred or not ref:
        return float(pred == ref)
    common = sum((Counter(pred) & Counter(ref)).values())
    if common == 0:
        return 0.0
    precision, recall = common / len(pred), common / len(ref)
    return 2 * precision * recall / (precision + recall)


if TYPE_CHECKING:
    from rouge_score.rouge_scorer import RougeScorer


@cache
def _rouge(kind: str) -> RougeScorer:
    # imported on first use: rouge-score pulls in nltk (~6 s), which `mergegate --help` should not pay
    from rouge_score import rouge_scorer

    return rouge_scorer.RougeScorer([kind], use_stemmer=True)


def rouge_f(kind: str, prediction: str, reference: str) -> float:
    """Return the ROUGE F-measure (``rouge1``, ``rouge2`` or ``rougeL``), with Porter stemming."""
    return _rouge(kind).score(reference, prediction)[kind].fmeasure


@check("token_f1", kind="score", uses_reference=True)
def token_f1(ctx: CheckContext, value: _Value = None) -> float:
    """SQuAD token F1 between output and reference, in [0, 1]."""
    return token_f1_score(ctx.output, reference_of(ctx, value))


@check("rouge_l", kind="score", uses_reference=True)
def rouge_l(ctx: CheckContext, value: _Value = None) -> float:
    """ROUGE-L F-measure (longest common subsequence), in [0, 1]."""
    return rouge_f("rougeL", ctx.output, reference_of(ctx, value))


@check("rouge1", kind="score", uses_reference=True)
def rouge1(ctx: CheckContext, value: _Value = None) -> float:
    """ROUGE-1 F-measure (unigram overlap), in [0, 1]."""
    return rouge_f("rouge1", ctx.output, reference_of(ctx, value))


@check("rouge2", kind="score", uses_reference=True)
def rouge2(ctx: CheckContext, value: _Value = None) -> float:
    """ROUGE-2 F-measure (bigram overlap), in [0, 1]."""
    return rouge_f("rouge2", ctx.output, reference_of(ctx, value))


@check("bleu", kind="score", uses_reference=True)
def bleu(ctx: CheckContext, value: _Value = None) -> float:
    """Sentence BLEU (sacrebleu, exponential smoothing) divided by 100, in [0, 1]."""
    import sacrebleu

    return sacrebleu.sentence_bleu(ctx.output, [reference_of(ctx, value)]).score / 100.0


@check("chrf", kind="score", uses_reference=True)
def chrf(ctx: CheckContext, value: _Value = None) -> float:
    """Sentence chrF (sacrebleu) divided by 100, in [0, 1]."""
    import sacrebleu

    return sacrebleu.sentence_chrf(ctx.output, [reference_of(ctx, value)]).score / 100.0
