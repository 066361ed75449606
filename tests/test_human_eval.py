"""The human-evaluation loop: export blind pairs, raters fill them in (here: the test), import un-blinds them.

Run as real subprocesses of the ``mergegate`` command, on a results.json built
in memory (no model needed to test the bookkeeping).
"""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import pytest

from helpers import make_run
from mergegate.judge import load_calibration


def _mergegate(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "mergegate.cli", *args], cwd=cwd, capture_output=True, text=True, timeout=120)


@pytest.fixture
def exported(tmp_path):
    run = make_run(n_cases=6, suites=("support",), candidate=lambda i: f"candidate answer {i}")
    for c in run.cases:  # give the cases rubric criteria, as llm_rubric checks would
        c.candidate.checks[0].extra["scores"] = {"accuracy": 3, "tone": 4}
    (tmp_path / "results.json").write_text(run.model_dump_json())
    proc = _mergegate("human", "export", "results.json", "--out", "rate", "--seed", "7", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    return tmp_path


def _rows(path: Path) -> list[dict]:
    with path.open(newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def test_export_is_blind_seeded_and_keeps_the_mapping_apart(exported, tmp_path):
    rows = _rows(exported / "rate" / "pairs.csv")
    assert [r["item"] for r in rows] == [f"item-{i:04d}" for i in range(1, 7)]
    assert list(rows[0]) == ["item", "prompt", "response_1", "response_2", "preference", "rater", "comment",
                             "accuracy_1", "accuracy_2", "tone_1", "tone_2"]
    text = (exported / "rate" / "pairs.csv").read_text() + (exported / "rate" / "pairs.jsonl").read_text()
    assert "candidate" not in text.replace("candidate answer", "") and "baseline" not in text and "support" not in text
    mapping = json.loads((exported / "rate" / "mapping.json").read_text())["items"]
    firsts = [m["response_1"] for m in mapping.values()]
    assert {"candidate", "baseline"} == set(firsts)  # the order is drawn per item
    # the same seed gives the same blind files; another seed another order
    again = _mergegate("human", "export", "results.json", "--out", "again", "--seed", "7", cwd=tmp_path)
    other = _mergegate("human", "export", "results.json", "--out", "other", "--seed", "8", cwd=tmp_path)
    assert again.returncode == other.returncode == 0
    assert (tmp_path / "again" / "pairs.csv").read_text() == (exported / "rate" / "pairs.csv").read_text()
    assert json.loads((tmp_path / "other" / "mapping.json").read_text())["items"] != mapping


def _fill(exported: Path, rater: str, prefers, score_candidate: int = 4, score_baseline: int = 2) -> Path:
    """Write rater ``rater``'s ratings: ``prefers(case_id)`` is 'candidate', 'baseline' or 'tie'."""
    mapping = json.loads((exported / "rate" / "mapping.json").read_text())["items"]
    rows = _rows(exported / "rate" / "pairs.csv")
    for r in rows:
        m = mapping[r["item"]]
        want = prefers(m["case"])
        r["preference"] = "tie" if want == "tie" else ("1" if m["response_1"] == want else "2")
        r["rater"] = rater
        for slot in ("1", "2"):
            r[f"accuracy_{slot}"] = str(score_candidate if m[f"response_{slot}"] == "candidate" else score_baseline)
    out = exported / f"{rater}.csv"
    with out.open("w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    return out


def test_import_unblinds_and_measures_preference_and_agreement(exported):
    # ann prefers the candidate on c0-c3, the baseline on c4, tie on c5; bob agrees except on c3; cat agrees with ann
    ann = {"c0": "candidate", "c1": "candidate", "c2": "candidate", "c3": "candidate", "c4": "baseline", "c5": "tie"}
    bob = {**ann, "c3": "baseline"}
    files = [_fill(exported, "ann", ann.get), _fill(exported, "bob", bob.get), _fill(exported, "cat", ann.get)]
    cal = exported / "eval_suites" / "human.calibration.yaml"
    proc = _mergegate("human", "import", *[f.name for f in files], "--mapping", "rate/mapping.json", "--output", "human.json",
                      "--append-calibration", str(cal.relative_to(exported)), cwd=exported)
    assert proc.returncode == 0, proc.stderr
    s = json.loads((exported / "human.json").read_text())
    assert (s["candidate"], s["baseline"], s["tie"], s["ratings"], s["items"]) == (11, 4, 3, 18, 6)
    assert s["preference_rate"] == pytest.approx(11 / 15)

    from statsmodels.stats.inter_rater import aggregate_raters, fleiss_kappa
    from statsmodels.stats.proportion import proportion_confint

    assert (s["ci_low"], s["ci_high"]) == pytest.approx(proportion_confint(11, 15, method="wilson"))
    labels = {"candidate": 0, "baseline": 1, "tie": 2}
    codes = [[labels[r[c]] for r in (ann, bob, ann)] for c in sorted(ann)]
    assert s["fleiss_kappa"] == pytest.approx(fleiss_kappa(aggregate_raters(codes)[0]))
    assert s["disagreements"] == []  # c3 splits 2:1, below the default bar
    assert s["rubric"]["accuracy"] == {"candidate": 4.0, "baseline": 2.0}
    assert "candidate preferred in 73.3%" in proc.stdout

    items = {it.id: it for it in load_calibration(cal).set.items}
    assert len(items) == 6 and items["support-c3"].human == ["A", "B", "A"]  # A is the candidate's response
    assert items["support-c4"].human == ["B", "B", "B"] and items["support-c5"].human == ["tie"] * 3
    assert items["support-c0"].response_a == "candidate answer 0" and items["support-c0"].response_b == "fine"
    # appending again adds nothing
    again = _mergegate("human", "import", *[f.name for f in files], "--mapping", "rate/mapping.json",
                       "--append-calibration", str(cal.relative_to(exported)), cwd=exported)
    assert "appended 0 item(s)" in again.stdout


def test_two_raters_get_cohens_kappa_and_disagreements_are_flagged(exported):
    ann = {"c0": "candidate", "c1": "candidate", "c2": "baseline", "c3": "candidate", "c4": "baseline", "c5": "tie"}
    bob = {**ann, "c1": "baseline", "c5": "candidate"}
    files = [_fill(exported, "ann", ann.get), _fill(exported, "bob", bob.get)]
    proc = _mergegate("human", "import", *[f.name for f in files], "--mapping", "rate/mapping.json", "--output", "h.json", cwd=exported)
    assert proc.returncode == 0, proc.stderr
    s = json.loads((exported / "h.json").read_text())
    from sklearn.metrics import cohen_kappa_score

    keys = sorted(ann)
    assert s["cohen_kappa"] == pytest.approx(cohen_kappa_score([ann[k] for k in keys], [bob[k] for k in keys]))
    mapping = json.loads((exported / "rate" / "mapping.json").read_text())["items"]
    flagged = sorted(mapping[i]["case"] for i in s["disagreements"])
    assert flagged == ["c1", "c5"]


def test_a_bad_rating_names_file_and_line(exported):
    f = _fill(exported, "ann", lambda c: "candidate")
    lines = f.read_text().splitlines()
    lines[3] = lines[3].replace(",1,ann,", ",3,ann,").replace(",2,ann,", ",3,ann,")
    f.write_text("\n".join(lines) + "\n")
    proc = _mergegate("human", "import", f.name, "--mapping", "rate/mapping.json", cwd=exported)
    assert proc.returncode == 2
    assert proc.stderr.strip() == "mergegate: error: ann.csv:4: preference must be 1, 2 or tie, got '3'"
    assert "Traceback" not in proc.stderr
