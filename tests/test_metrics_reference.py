"""Metrics against their reference implementations, on real text."""

import math
from pathlib import Path

import numpy as np
import pytest
import sacrebleu
from rouge_score import rouge_scorer
from sklearn.metrics import f1_score

from mergegate.checks import REGISTRY, CheckContext, run_check
from mergegate.checks.classification import extract_label
from mergegate.checks.overlap import token_f1_score
from mergegate.results import CaseResult, CheckResult, Generation, SideResult, percentile, summarize

PAIRS = [
    ("The quarterly meeting was moved to Thursday so finance can close the books.",
     "The quarterly meeting moved to Thursday so the finance team could close the books; managers must attend."),
    ("A failed database upgrade took payments down for two hours.",
     "On Saturday night the payment service was down for two hours after a database upgrade failed."),
    ("Cats are running quickly across the gardens", "The cat runs quick across a garden"),
    ("completely unrelated words here", "Photosynthesis produces glucose and oxygen."),
    ("", "Non-empty reference."),
]


def _spec(**fields):
    ctype = REGISTRY[fields["type"]]
    return ctype.spec.model_validate(fields)


def _ctx(output, reference=None, latency_ms=None):
    return CheckContext(output=output, reference=reference, latency_ms=latency_ms, suite_dir=Path("."))


@pytest.mark.parametrize("pred,ref", PAIRS)
@pytest.mark.parametrize("check,kind", [("rouge_l", "rougeL"), ("rouge1", "rouge1"), ("rouge2", "rouge2")])
def test_rouge_matches_rouge_score(pred, ref, check, kind):
    expected = rouge_scorer.RougeScorer([kind], use_stemmer=True).score(ref, pred)[kind].fmeasure
    assert run_check(_spec(type=check), _ctx(pred, ref)).score == pytest.approx(expected, abs=1e-12)


def test_rouge_uses_stemming():
    # "running"/"runs" and "gardens"/"garden" only match with the Porter stemmer.
    stemmed = run_check(_spec(type="rouge1"), _ctx("cats running gardens", "cat runs garden")).score
    assert stemmed == pytest.approx(1.0)


@pytest.mark.parametrize("pred,ref", PAIRS)
def test_bleu_and_chrf_match_sacrebleu(pred, ref):
    assert run_check(_spec(type="bleu"), _ctx(pred, ref)).score == pytest.approx(sacrebleu.sentence_bleu(pred, [ref]).score / 100)
    assert run_check(_spec(type="chrf"), _ctx(pred, ref)).score == pytest.approx(sacrebleu.sentence_chrf(pred, [ref]).score / 100)


def test_token_f1_follows_squad_definition():
    # Worked by hand from the SQuAD v1.1 evaluation script: lower-case, drop punctuation and articles.
    assert token_f1_score("The Eiffel Tower!", "eiffel tower") == 1.0
    # pred {paris, is, capital} vs ref {capital, of, france}: 1 common; P=1/3, R=1/3
    assert token_f1_score("Paris is capital", "capital of France") == pytest.approx(1 / 3)
    # repeated tokens count as a multiset: pred [a,b,b] -> [b,b] after articles? no: 'a' is an article
    assert token_f1_score("b b c", "b c c") == pytest.approx(2 * (2 / 3) * (2 / 3) / (4 / 3))
    assert token_f1_score("", "") == 1.0 and token_f1_score("x", "") == 0.0


def test_threshold_turns_score_into_pass_fail():
    out = run_check(_spec(type="token_f1", threshold=0.5), _ctx("Paris is capital", "capital of France"))
    assert out.passed is False and "threshold 0.5" in out.detail
    assert run_check(_spec(type="token_f1"), _ctx("Paris", "Paris")).passed is None  # score only


def test_label_extraction():
    labels = ["positive", "negative", "neutral"]
    assert extract_label("The sentiment is Positive.", labels) == "positive"
    assert extract_label("negative", labels) == "negative"
    assert extract_label("positive or negative, hard to say", labels) is None  # ambiguous: a failure, not a guess
    assert extract_label("I cannot tell", labels) is None


def _side(label, expected):
    extra = {"label": label, "expected": expected, "extraction_failed": label is None}
    check = CheckResult(type="label_in", metric="label_in", score=float(label == expected), passed=label == expected, extra=extra)
    return SideResult(generation=Generation(text=str(label), latency_ms=10.0), checks=[check], passed=label == expected)


def test_macro_f1_and_extraction_rate_match_sklearn():
    truth = ["positive", "negative", "neutral", "negative", "positive", "neutral", "negative"]
    pred = ["positive", "positive", None, "negative", "positive", "neutral", None]
    cases = [CaseResult(suite="s", id=f"c{i}", category="simple", blocking=False, input="x",
                        candidate=_side(p, t), baseline=_side(t, t)) for i, (p, t) in enumerate(zip(pred, truth, strict=True))]
    g = summarize(cases)
    sk_pred = [p if p is not None else "<none>" for p in pred]
    expected = f1_score(truth, sk_pred, labels=sorted(set(truth)), average="macro", zero_division=0)
    assert g.metrics["macro_f1"].candidate == pytest.approx(expected)
    assert g.metrics["macro_f1"].baseline == pytest.approx(1.0)
    assert g.metrics["extraction_failure_rate"].candidate == pytest.approx(2 / 7)
    assert g.pass_rate.candidate == pytest.approx(sum(p == t for p, t in zip(pred, truth, strict=True)) / 7)
    assert g.regressions == sum(p != t for p, t in zip(pred, truth, strict=True))


def test_percentiles_match_numpy():
    values = [12.0, 15.5, 3.0, 99.0, 42.0, 7.25]
    for q in (50, 95, 99):
        assert percentile(values, q) == pytest.approx(float(np.percentile(values, q)))
    assert percentile([], 99) is None


@pytest.mark.parametrize("output,ok", [
    ('{"a": 1}', True), ('```json\n{"a": 1}\n```', True), ('Sure! {"a": 1}', False), ('{"a": 1}\n\nThis is JSON.', False),
])
def test_json_valid(output, ok):
    assert run_check(_spec(type="json_valid"), _ctx(output)).passed is ok


def test_json_schema_reports_the_violation():
    spec = _spec(type="json_schema", schema={"type": "object", "required": ["name"], "properties": {"name": {"type": "string"}}})
    prepared = REGISTRY["json_schema"].prepare(spec, Path("."))
    assert run_check(spec, _ctx('{"name": "Ann"}'), prepared).passed is True
    bad = run_check(spec, _ctx('{"name": 3}'), prepared)
    assert bad.passed is False and "name" in bad.detail


@pytest.mark.parametrize("check,output,ok", [
    ({"type": "equals", "value": "Paris"}, "  paris. ", True),
    ({"type": "equals", "value": "Paris", "normalize_text": False}, "paris", False),
    ({"type": "contains", "value": "tokyo"}, "It is Tokyo.", True),
    ({"type": "contains", "value": "tokyo", "case_sensitive": True}, "It is Tokyo.", False),
    ({"type": "not_contains", "value": "poem"}, "Here is a Poem", False),
    ({"type": "regex", "value": r"\b4\b"}, "2 + 2 = 4", True),
    ({"type": "max_words", "value": 3}, "one two three four", False),
    ({"type": "max_chars", "value": 5}, "12345", True),
])
def test_surface_checks(check, output, ok):
    spec = _spec(**check)
    prepared = REGISTRY[spec.type].prepare(spec, Path(".")) if REGISTRY[spec.type].prepare else None
    assert run_check(spec, _ctx(output), prepared).passed is ok


def test_latency_check():
    assert run_check(_spec(type="latency_ms", value=500), _ctx("x", latency_ms=120.0)).passed is True
    assert run_check(_spec(type="latency_ms", value=100), _ctx("x", latency_ms=120.0)).passed is False


def test_custom_python_check(tmp_path):
    (tmp_path / "my_scorer.py").write_text("def score(ctx):\n    return len(ctx.output) / 10\n")
    spec = _spec(type="python", value="my_scorer:score", threshold=0.5)
    fn = REGISTRY["python"].prepare(spec, tmp_path)
    assert run_check(spec, _ctx("12345678"), fn).passed is True
    assert math.isclose(run_check(spec, _ctx("12"), fn).score, 0.2)


def test_a_crashing_custom_check_fails_the_case_visibly(tmp_path):
    (tmp_path / "boom_scorer.py").write_text("def score(ctx):\n    raise RuntimeError('oops')\n")
    spec = _spec(type="python", value="boom_scorer:score")
    out = run_check(spec, _ctx("x"), REGISTRY["python"].prepare(spec, tmp_path))
    assert out.passed is False and "oops" in out.detail
