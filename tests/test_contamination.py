"""Contamination (n-gram overlap, streamed) and stable hash splits; the check inside a real run."""

from __future__ import annotations

import hashlib
import json
import random
import subprocess
import sys
import textwrap

import pytest

from mergegate.contamination import EvalText, assign_split, find_overlaps, iter_training_texts, split_file, words

CASES = [
    EvalText("qa", "france", ("What is the capital of France? Answer in one word.", "Paris")),
    EvalText("qa", "long", ("Summarize the following report: the city council voted on Tuesday to extend the opening hours "
                            "of the public library until nine in the evening on weekdays starting next month",)),
    EvalText("qa", "clean", ("Name three primary colours used in painting and explain why they are primary.",)),
    EvalText("qa", "tiny", ("Hi", "Yes")),
]


def brute_force(cases, records, n, min_words=4):
    """An independent, obviously-correct reference: every case n-gram (or whole short text) searched in every record's word list."""
    out = {}
    for case in cases:
        grams = set()
        for text in case.texts:
            t = words(text)
            if len(t) < min_words:
                continue
            grams |= {tuple(t)} if len(t) < n else {tuple(t[i:i + n]) for i in range(len(t) - n + 1)}
        found = set()
        for rec in records:
            r = words(rec)
            found |= {g for g in grams if any(tuple(r[i:i + len(g)]) == g for i in range(len(r) - len(g) + 1))}
        out[case.case_id] = len(found)
    return out


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    """50,000 random lines with planted copies of eval texts (changed case and punctuation, inside longer lines)."""
    rng = random.Random(7)
    vocab = [f"tok{i}" for i in range(3000)] + words(CASES[1].texts[0])  # shares words, not sequences, with the cases
    path = tmp_path_factory.mktemp("train") / "train.jsonl"
    planted = {}
    with open(path, "w") as f:
        for i in range(1, 50_001):
            text = " ".join(rng.choice(vocab) for _ in range(rng.randint(5, 30)))
            if i == 12_345:
                text += " WHAT is the capital of france?? answer in ONE word!"
                planted["france"] = i
            if i == 40_000:
                text = "Context: " + CASES[1].texts[0][30:].upper() + " -- end"
                planted["long"] = i
            f.write(json.dumps({"id": i, "text": text, "meta": {"source": "web"}}) + "\n")
    return path, planted


def test_planted_overlaps_are_found_and_match_a_brute_force_reference(corpus):
    path, planted = corpus
    report = find_overlaps(CASES, iter_training_texts([path]), ns=(8, 13))
    by = {c.case_id: c for c in report.cases}
    assert report.records == 50_000
    assert by["france"].contaminated(8) and by["france"].first_match == f"{path}:{planted['france']}"
    assert by["long"].contaminated(8) and by["long"].contaminated(13) and by["long"].first_match == f"{path}:{planted['long']}"
    assert not by["clean"].contaminated(8) and not by["clean"].contaminated(13)
    assert not by["tiny"].checked and not by["tiny"].contaminated(8)
    assert [c.case_id for c in report.contaminated()] == ["france", "long"]
    assert report.by_suite() == {"qa": (2, 4)}
    records = [t for _, _, t in iter_training_texts([path])]
    for n in (8, 13):
        assert {c.case_id: c.matched[n] for c in report.cases} == brute_force(CASES, records, n)


def test_near_misses_are_not_contamination(tmp_path):
    w = words(CASES[1].texts[0])
    # every 6th word changed: every word survives, no 8-gram does
    altered = " ".join("CHANGED" if i % 6 == 5 else t for i, t in enumerate(w))
    path = tmp_path / "t.txt"
    path.write_text(altered + "\n")
    c = find_overlaps([CASES[1]], iter_training_texts([path]), ns=(8, 13)).cases[0]
    assert c.matched == {8: 0, 13: 0} and c.ngrams[8] == len(w) - 7
    # the first 12 words verbatim: 5 shared 8-grams, no 13-gram
    path.write_text(" ".join(w[:12]) + "\n")
    c = find_overlaps([CASES[1]], iter_training_texts([path]), ns=(8, 13)).cases[0]
    assert c.matched == {8: 5, 13: 0}


def test_jsonl_fields_and_text_files_are_read_lazily(tmp_path):
    p = tmp_path / "d.jsonl"
    p.write_text('{"prompt": "a b", "completion": "c d", "id": "x"}\nnot json at all\n\n{"prompt": ["e"], "n": 3}\n')
    it = iter_training_texts([p], fields=["prompt"])
    assert next(it) == (str(p), 1, "a b")  # a generator: nothing is read ahead
    assert list(it) == [(str(p), 2, "not json at all\n"), (str(p), 4, "e")]
    assert [t for *_, t in iter_training_texts([p])][0] == "a b\nc d\nx"


def test_splits_are_stable_hash_based_and_order_independent(tmp_path):
    fractions = [("train", 0.8), ("val", 0.1), ("test", 0.1)]
    # the rule, computed independently: the first 8 bytes of sha256("\0" + key) as a fraction of 2**64
    for key in ("example-1", "example-2", "über"):
        u = int.from_bytes(hashlib.sha256(f"\x00{key}".encode()).digest()[:8], "big") / 2**64
        assert assign_split(key, fractions) == ("train" if u < 0.8 else "val" if u < 0.9 else "test")
    rows = [{"id": f"ex{i}", "text": f"example {i}"} for i in range(5000)]
    a, b = tmp_path / "a.jsonl", tmp_path / "b.jsonl"
    a.write_text("".join(json.dumps(r) + "\n" for r in rows))
    b.write_text("".join(json.dumps(r) + "\n" for r in reversed(rows)))
    ca, cb = split_file(a, tmp_path / "sa", "id", fractions), split_file(b, tmp_path / "sb", "id", fractions)
    assert ca == cb and sum(ca.values()) == 5000 and 3850 < ca["train"] < 4150
    for name, _ in fractions:
        ids_a = {json.loads(line)["id"] for line in (tmp_path / "sa" / f"{name}.jsonl").read_text().splitlines()}
        ids_b = {json.loads(line)["id"] for line in (tmp_path / "sb" / f"{name}.jsonl").read_text().splitlines()}
        assert ids_a == ids_b
    salted = split_file(a, tmp_path / "sc", "id", fractions, salt="v2")
    moved = {json.loads(line)["id"] for line in (tmp_path / "sc" / "test.jsonl").read_text().splitlines()}
    assert sum(salted.values()) == 5000 and moved != {
        json.loads(line)["id"] for line in (tmp_path / "sa" / "test.jsonl").read_text().splitlines()}


def test_the_commands(tmp_path, corpus):
    path, _ = corpus
    suites = tmp_path / "suites"
    suites.mkdir()
    (suites / "qa.yaml").write_text(textwrap.dedent("""\
        name: qa
        cases:
          - {id: france, prompt: "What is the capital of France? Answer in one word.", reference: Paris, \
checks: [{type: contains, value: Paris}]}
          - {id: clean, prompt: "Name three primary colours used in painting and explain why.", checks: [{type: contains, value: red}]}
        """))
    out = subprocess.run([sys.executable, "-m", "mergegate.cli", "contamination", "--train", str(path), "--n", "8", "13",
                          "--suites", str(suites), "--json", str(tmp_path / "c.json")], capture_output=True, text=True, cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert "read 50,000 training record(s)" in out.stdout and "qa" in out.stdout and "1 / 2" in out.stdout
    assert "CONTAMINATED qa::france" in out.stdout and "clean" not in out.stdout.split("CONTAMINATED")[-1]
    assert json.loads((tmp_path / "c.json").read_text())["cases"][0]["id"] == "france"
    bad = subprocess.run([sys.executable, "-m", "mergegate.cli", "split", str(path), "--key", "nope", "--out", str(tmp_path / "s")],
                         capture_output=True, text=True)
    assert bad.returncode == 2 and bad.stderr.strip() == f"mergegate: error: {path}:1: no field 'nope'" and "Traceback" not in bad.stderr
    missing = subprocess.run([sys.executable, "-m", "mergegate.cli", "contamination", "--train", str(tmp_path / "nothing*.jsonl"),
                              "--suites", str(suites)], capture_output=True, text=True, cwd=tmp_path)
    assert missing.returncode == 2 and "matches no file" in missing.stderr and "Traceback" not in missing.stderr


SUITE = textwrap.dedent("""\
    name: capitals
    role: general
    cases:
      - {id: france, prompt: "What is the capital of France? One word.", reference: Paris, checks: [{type: contains, value: Paris}]}
      - {id: italy, prompt: "What is the capital of Italy? One word.", reference: Rome, checks: [{type: contains, value: Rome}]}
      - {id: japan, prompt: "What is the capital of Japan? One word.", reference: Tokyo, checks: [{type: contains, value: Tokyo}]}
    """)


@pytest.mark.parametrize("policy", ["exclude", "fail"])
def test_a_run_checks_the_candidates_training_data(pytester, llama, tmp_path, policy):
    (pytester.path / "eval_suites").mkdir()
    (pytester.path / "eval_suites" / "capitals.yaml").write_text(SUITE)
    (pytester.path / "train.jsonl").write_text(json.dumps({"text": "Q: what is the capital of France? one word. A: Paris"}) + "\n"
                                               + json.dumps({"text": "unrelated"}) + "\n")
    cfg = llama.config_yaml(cache_path=pytester.path / "c.sqlite", extra=f"contamination: {{n: [8], on_contaminated: {policy}}}\n")
    cfg = cfg.replace("  candidate:\n", "  candidate:\n    training_data: [train*.jsonl]\n", 1)
    pytester.makefile(".yaml", mergegate=cfg)
    result = pytester.runpytest("eval_suites", "--mergegate-no-progress")
    run = json.loads((pytester.path / "results" / "results.json").read_text())
    k = run["contamination"]
    assert k["records"] == 2 and k["files"] == ["train.jsonl"] and k["per_suite"] == {"capitals": [1, 3]}
    assert [(c["id"], c["first_match"]) for c in k["cases"]] == [("france", "train.jsonl:1")]
    flags = {c["id"]: c["contaminated"] for c in run["cases"]}
    assert flags == {"france": True, "italy": False, "japan": False}
    report = (pytester.path / "results" / "report.md").read_text()
    assert "<b>Contamination</b>" in report and "`capitals::france`" in report
    suite = run["suites"][0]
    if policy == "exclude":
        assert suite["n"] == 2 and run["verdict"] == "GO" and result.ret == 0
        assert "1 contaminated case(s) left out of metrics and gates" in run["reasons"]
    else:
        assert suite["n"] == 3 and run["verdict"] == "NO-GO" and result.ret == 1
        assert any("found in the candidate's training data" in r for r in run["reasons"])
