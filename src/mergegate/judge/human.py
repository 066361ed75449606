"""The human-evaluation loop: blind pairs out to raters, their ratings back in.

``export_pairs`` writes, for each case of a run with both outputs, an opaque
item id, the prompt and the two responses as "response 1" and "response 2" in
an order drawn per item from a seeded RNG, plus empty columns for the rater's
preference and rubric scores (CSV for spreadsheets, JSONL for tools). Which
response is the candidate is written only to a separate mapping file that
raters never see.

``import_ratings`` reads the completed files (one per rater), un-blinds every
verdict through the mapping, and returns the candidate's preference rate with
a Wilson interval, the raters' agreement (Cohen's kappa for two raters,
Fleiss' kappa for three or more), the items where raters disagree more than a
bar, and calibration items ready to append to a ``*.calibration.yaml``.
"""

from __future__ import annotations

import csv
import hashlib
import json
import random
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

import yaml
from pydantic import BaseModel, Field

from ..errors import InputError
from ..results import RunResults
from .calibration import CALIBRATION_SUFFIX, load_calibration
from .stats import cohen_kappa, fleiss_kappa

__all__ = ["export_pairs", "import_ratings", "append_calibration", "HumanSummary", "MAPPING_NAME", "PREFERENCES"]

MAPPING_NAME = "mapping.json"
#: what a rater writes in the ``preference`` column
PREFERENCES = ("1", "2", "tie")


class HumanSummary(BaseModel):
    """What the raters said, un-blinded: candidate vs baseline."""

    raters: list[str]
    items: int = Field(description="Items with at least one rating.")
    ratings: int
    candidate: int = Field(description="Ratings that preferred the candidate.")
    baseline: int
    tie: int
    preference_rate: Optional[float] = Field(default=None, description="candidate / (candidate + baseline): ties left out.")
    ci_low: Optional[float] = Field(default=None, description="95% Wilson interval of the preference rate (statsmodels).")
    ci_high: Optional[float] = None
    win_rate: Optional[float] = Field(default=None, description="(candidate + tie / 2) / ratings.")
    cohen_kappa: Optional[float] = Field(default=None, description="Two raters, on the items both rated.")
    fleiss_kappa: Optional[float] = Field(default=None, description="Three or more raters, on the items all rated.")
    max_disagreement: float
    disagreements: list[str] = Field(default_factory=list,
                                     description="Items where more than max_disagreement of raters left the majority.")
    rubric: dict[str, dict[str, Optional[float]]] = Field(default_factory=dict, description="Mean rater score per criterion, per side.")


@dataclass
class _Item:
    item: str
    suite: str
    case: str
    prompt: str
    first: str  # 'candidate' or 'baseline': who is response 1
    responses: dict[str, str] = field(default_factory=dict)


def _criteria(case: Any) -> list[str]:
    found: list[str] = []
    for ch in case.candidate.checks:
        for name in list(ch.extra.get("scores", {})):
            if name not in found:
                found.append(name)
    return found


def export_pairs(run: RunResults, out_dir: Path, seed: int = 0, suites: Optional[list[str]] = None,
                 criteria: Optional[list[str]] = None, limit: Optional[int] = None) -> dict[str, Path]:
    """Write ``pairs.csv``, ``pairs.jsonl`` (for raters) and ``mapping.json`` (not for raters); return their paths.

    Rubric columns: ``criteria`` if given, else the criteria the run's
    llm_rubric checks scored, else none.
    """
    rng = random.Random(seed)
    cases = [c for c in run.cases if (not suites or c.suite in suites)
             and not c.candidate.generation.error and not c.baseline.generation.error]
    if suites:
        unknown = sorted(set(suites) - {c.suite for c in run.cases})
        if unknown:
            raise InputError(f"no suite {unknown[0]!r} in these results; suites: {', '.join(sorted({c.suite for c in run.cases}))}")
    if not cases:
        raise InputError("no case has outputs from both models to compare")
    if limit is not None and limit < len(cases):
        cases = sorted(rng.sample(cases, limit), key=lambda c: (c.suite, c.id))
    crits = criteria if criteria is not None else [c for case in cases for c in _criteria(case)]
    crits = list(dict.fromkeys(crits))
    order = list(range(len(cases)))
    rng.shuffle(order)  # item numbers must not reveal suite or case order
    rows, mapping = [], {}
    for number, index in enumerate(order, start=1):
        c = cases[index]
        first = rng.choice(("candidate", "baseline"))
        second = "baseline" if first == "candidate" else "candidate"
        item = f"item-{number:04d}"
        mapping[item] = {"suite": c.suite, "case": c.id, "response_1": first, "response_2": second}
        row = {"item": item, "prompt": c.input, "response_1": getattr(c, first).generation.text,
               "response_2": getattr(c, second).generation.text, "preference": "", "rater": "", "comment": ""}
        for crit in crits:
            row[f"{crit}_1"] = ""
            row[f"{crit}_2"] = ""
        rows.append(row)
    rows.sort(key=lambda r: r["item"])
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {"csv": out_dir / "pairs.csv", "jsonl": out_dir / "pairs.jsonl", "mapping": out_dir / MAPPING_NAME}
    with paths["csv"].open("w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    paths["jsonl"].write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    digest = hashlib.sha256(paths["jsonl"].read_bytes()).hexdigest()
    paths["mapping"].write_text(json.dumps({"format": 1, "seed": seed, "criteria": crits, "pairs_sha256": digest,
                                            "preferences": "1 = response_1, 2 = response_2, tie", "items": mapping},
                                           indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return paths


def _read_rows(path: Path) -> list[tuple[int, dict[str, Any]]]:
    """Return ``(line, row)`` for every rating in a completed CSV or JSONL file."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except OSError as exc:
        raise InputError(f"cannot read ratings: {exc.strerror}", path) from None
    if path.suffix == ".jsonl":
        rows = []
        for n, line in enumerate(text.splitlines(), start=1):
            if line.strip():
                try:
                    rows.append((n, json.loads(line)))
                except ValueError as exc:
                    raise InputError(f"not a JSON line: {exc}", path, n) from None
        return rows
    reader = csv.DictReader(text.splitlines())
    return [(n + 2, row) for n, row in enumerate(reader)]  # line 1 is the header


def import_ratings(files: list[Path], mapping_path: Path, max_disagreement: float = 0.34) -> tuple[HumanSummary, list[dict[str, Any]]]:
    """Return the un-blinded summary and calibration items (``response_a`` = candidate) from completed rating files.

    Each file is one rater (named by its ``rater`` column, else the file name).
    Raises :class:`InputError` naming file and line for an unknown item, a
    preference other than 1 / 2 / tie, or a score that is not an integer.
    """
    items, crits = _load_mapping(mapping_path)
    ratings = _Ratings()
    for path in map(Path, files):
        for line, row in _read_rows(path):
            ratings.add(row, path, line, items, crits, mapping_path)
    if not ratings.verdicts:
        raise InputError("no ratings found: fill in the 'preference' column (1, 2 or tie)", files[0] if files else mapping_path)
    summary = _summarize(ratings, max_disagreement)
    label = {"candidate": "A", "baseline": "B", "tie": "tie"}
    calibration = []
    for item, per in sorted(ratings.verdicts.items()):
        m, t = items[item], ratings.texts[item]
        calibration.append({"id": f"{m['suite']}-{m['case']}", "prompt": t["prompt"], "response_a": t["candidate"],
                            "response_b": t["baseline"], "human": [label[per[r]] for r in ratings.raters if r in per]})
    return summary, calibration


def _load_mapping(mapping_path: Path) -> tuple[dict[str, Any], list[str]]:
    try:
        mapping = json.loads(Path(mapping_path).read_text(encoding="utf-8"))
        return mapping["items"], mapping.get("criteria", [])
    except (OSError, ValueError, KeyError, TypeError):
        raise InputError("not a mergegate human-evaluation mapping file (mapping.json from `mergegate human export`)",
                         mapping_path) from None


class _Ratings:
    """The un-blinded ratings read so far: verdicts per item and rater, rubric scores per criterion and side, the texts."""

    def __init__(self) -> None:
        self.verdicts: dict[str, dict[str, str]] = defaultdict(dict)  # item -> rater -> candidate/baseline/tie
        self.scores: dict[str, dict[str, list[float]]] = defaultdict(lambda: {"candidate": [], "baseline": []})
        self.texts: dict[str, dict[str, str]] = {}
        self.raters: list[str] = []

    def add(self, row: dict[str, Any], path: Path, line: int, items: dict[str, Any], crits: list[str], mapping_path: Path) -> None:
        """Read one rating row (file ``path``, line ``line``); raise InputError naming them when it is wrong."""
        rater = str(row.get("rater") or "").strip() or path.stem
        if rater not in self.raters:
            self.raters.append(rater)
        item = str(row.get("item", "")).strip()
        if item not in items:
            raise InputError(f"item {item!r} is not in {mapping_path}", path, line)
        pref = str(row.get("preference", "")).strip().lower()
        if pref == "":
            return  # not rated (yet)
        if pref not in PREFERENCES:
            raise InputError(f"preference must be 1, 2 or tie, got {pref!r}", path, line)
        m = items[item]
        if rater in self.verdicts[item]:
            raise InputError(f"rater {rater!r} rated {item} twice", path, line)
        self.verdicts[item][rater] = {"1": m["response_1"], "2": m["response_2"], "tie": "tie"}[pref]
        self.texts[item] = {m["response_1"]: str(row.get("response_1", "")), m["response_2"]: str(row.get("response_2", "")),
                            "prompt": str(row.get("prompt", ""))}
        for crit in crits:
            for slot in ("1", "2"):
                raw = str(row.get(f"{crit}_{slot}", "") or "").strip()
                if not raw:
                    continue
                try:
                    value = int(raw)
                except ValueError:
                    raise InputError(f"{crit}_{slot} must be an integer score, got {raw!r}", path, line) from None
                self.scores[crit][m[f"response_{slot}"]].append(float(value))


def _summarize(ratings: _Ratings, max_disagreement: float) -> HumanSummary:
    """Return the preference rate with its Wilson interval, inter-rater agreement, disagreements and rubric means."""
    verdicts, raters = ratings.verdicts, ratings.raters
    all_sides = [v for per in verdicts.values() for v in per.values()]
    cand, base, tie = all_sides.count("candidate"), all_sides.count("baseline"), all_sides.count("tie")
    summary = HumanSummary(raters=raters, items=len(verdicts), ratings=len(all_sides), candidate=cand, baseline=base, tie=tie,
                           win_rate=(cand + 0.5 * tie) / len(all_sides), max_disagreement=max_disagreement)
    if cand + base:
        from statsmodels.stats.proportion import proportion_confint

        summary.preference_rate = cand / (cand + base)
        low, high = proportion_confint(cand, cand + base, alpha=0.05, method="wilson")
        summary.ci_low, summary.ci_high = float(low), float(high)
    if len(raters) == 2:
        both = [per for per in verdicts.values() if len(per) == 2]
        summary.cohen_kappa = cohen_kappa([p[raters[0]] for p in both], [p[raters[1]] for p in both])
    elif len(raters) >= 3:
        full = [[per[r] for r in raters] for per in verdicts.values() if len(per) == len(raters)]
        summary.fleiss_kappa = fleiss_kappa(full, categories=("candidate", "baseline", "tie"))
    for item, per in sorted(verdicts.items()):
        if len(per) < 2:
            continue
        top = max(list(per.values()).count(v) for v in set(per.values()))
        if 1 - top / len(per) > max_disagreement:
            summary.disagreements.append(item)
    summary.rubric = {crit: {side: (sum(v) / len(v) if v else None) for side, v in by_side.items()}
                      for crit, by_side in ratings.scores.items()}
    return summary


def append_calibration(path: Path, new_items: list[dict[str, Any]], name: str = "human-ratings") -> tuple[int, int]:
    """Append ``new_items`` to the calibration file at ``path`` (created if missing); return ``(added, skipped)``.

    Items whose id is already in the file are skipped; items without a human
    majority are kept (they count once raters agree). The file is validated
    after writing and restored if that fails.
    """
    path = Path(path)
    if not path.name.endswith(CALIBRATION_SUFFIX):
        raise InputError(f"a calibration file's name ends in {CALIBRATION_SUFFIX}", path)
    old = path.read_text(encoding="utf-8") if path.exists() else None
    existing: set[str] = set()
    if old is not None:
        existing = {it.id for it in load_calibration(path).set.items}
        data = yaml.safe_load(old)
        if list(data)[-1] != "items":
            raise InputError("'items' must be the last key of the file for items to be appended", path)
    fresh = [it for it in new_items if it["id"] not in existing]
    if not fresh:
        return 0, len(new_items)
    block = yaml.safe_dump(fresh, sort_keys=False, allow_unicode=True, width=1000)
    block = "".join("  " + line + "\n" for line in block.splitlines())
    if old is None:
        path.parent.mkdir(parents=True, exist_ok=True)
        text = f"format: 1\nname: {name}\nitems:\n{block}"
    else:
        text = old + ("" if old.endswith("\n") else "\n") + block
    path.write_text(text, encoding="utf-8")
    try:
        load_calibration(path)
    except Exception:
        if old is None:
            path.unlink()
        else:
            path.write_text(old, encoding="utf-8")
        raise
    return len(fresh), len(new_items) - len(fresh)
