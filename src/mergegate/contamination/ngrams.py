"""Word n-gram overlap between training data and eval cases.

The eval side is small: every n-gram of every case is indexed in memory. The
training side can be millions of lines: it is streamed one record at a time
and never held, so memory is the eval index plus one line. A case whose text
is shorter than ``n`` words is matched as a whole (its full word sequence must
appear in one training record), as in the GPT-3 paper's contamination study;
texts under ``min_words`` words are too short to tell and are not checked.
"""

from __future__ import annotations

import json
import re
from collections import defaultdict
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

__all__ = ["EvalText", "CaseOverlap", "ContaminationReport", "words", "iter_training_texts", "find_overlaps"]

_WORD = re.compile(r"\w+", re.UNICODE)


def words(text: str) -> list[str]:
    """Return the lower-cased word tokens of ``text`` (punctuation and spacing are ignored)."""
    return _WORD.findall(text.lower())


@dataclass(frozen=True)
class EvalText:
    """One eval case's texts to check: its input (all user turns) and its reference."""

    suite: str
    case_id: str
    texts: tuple[str, ...]


@dataclass
class CaseOverlap:
    """What the training data shares with one case: matched n-grams per n, and where the first match was."""

    suite: str
    case_id: str
    ngrams: dict[int, int] = field(default_factory=dict)  # n -> n-grams of the case (1 for a short text matched whole)
    matched: dict[int, int] = field(default_factory=dict)  # n -> of those, how many occur in the training data
    first_match: Optional[str] = None  # "file:line" of the first training record that matched
    checked: bool = True  # False when every text was under min_words

    def contaminated(self, n: int) -> bool:
        """Return True when at least one n-gram (or the whole short text) of the case occurs in the training data."""
        return self.matched.get(n, 0) > 0


@dataclass
class ContaminationReport:
    """The overlap of every case, and how much training data was read."""

    ns: tuple[int, ...]
    cases: list[CaseOverlap]
    files: list[str]
    records: int = 0
    seconds: float = 0.0

    def contaminated(self, n: Optional[int] = None) -> list[CaseOverlap]:
        """Return the contaminated cases at ``n`` (default: the smallest n, the most sensitive)."""
        n = n or min(self.ns)
        return [c for c in self.cases if c.contaminated(n)]

    def by_suite(self, n: Optional[int] = None) -> dict[str, tuple[int, int]]:
        """Return suite -> (contaminated cases, cases)."""
        n = n or min(self.ns)
        out: dict[str, list[int]] = defaultdict(lambda: [0, 0])
        for c in self.cases:
            out[c.suite][1] += 1
            out[c.suite][0] += c.contaminated(n)
        return {s: (a, b) for s, (a, b) in out.items()}


def _strings(value: object) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for v in value.values():
            yield from _strings(v)
    elif isinstance(value, list):
        for v in value:
            yield from _strings(v)


def iter_training_texts(paths: Sequence[Path], fields: Optional[Sequence[str]] = None) -> Iterator[tuple[str, int, str]]:
    """Yield ``(file, line number, text)`` for every record, streaming.

    ``.jsonl`` / ``.json`` lines are parsed and their string values (or only
    ``fields``) joined; any other file is read as plain text, one record per
    line. A JSONL line that does not parse is read as text.
    """
    for path in paths:
        jsonl = path.suffix in (".jsonl", ".json")
        with open(path, encoding="utf-8", errors="replace") as f:
            for lineno, line in enumerate(f, 1):
                if not line.strip():
                    continue
                if jsonl:
                    try:
                        obj = json.loads(line)
                    except json.JSONDecodeError:
                        yield str(path), lineno, line
                        continue
                    if fields and isinstance(obj, dict):
                        obj = [obj.get(k) for k in fields]
                    yield str(path), lineno, "\n".join(_strings(obj))
                else:
                    yield str(path), lineno, line


# length -> {word tuple: [(case index, n it counts for)]}
_Index = dict[int, dict[tuple[str, ...], list[tuple[int, int]]]]


def _case_grams(toks_list: list[list[str]], n: int, min_words: int) -> set[tuple[str, ...]]:
    """Return a case's distinct n-grams; a text shorter than n words (but at least min_words) counts whole."""
    grams: set[tuple[str, ...]] = set()
    for toks in toks_list:
        if len(toks) < min_words:
            continue
        if len(toks) < n:
            grams.add(tuple(toks))
        else:
            grams.update(tuple(toks[i:i + n]) for i in range(len(toks) - n + 1))
    return grams


def find_overlaps(cases: Iterable[EvalText], training: Iterable[tuple[str, int, str]], ns: Sequence[int] = (13,),
                  min_words: int = 4) -> ContaminationReport:
    """Return the n-gram overlap of every case with the ``training`` records (streamed once)."""
    import time

    started = time.perf_counter()
    ns = tuple(sorted(set(ns)))
    overlaps: list[CaseOverlap] = []
    index: _Index = defaultdict(dict)
    for ci, case in enumerate(cases):
        ov = CaseOverlap(case.suite, case.case_id, ngrams={n: 0 for n in ns}, matched={n: 0 for n in ns})
        toks_list = [words(t) for t in case.texts if t]
        ov.checked = any(len(t) >= min_words for t in toks_list)
        for n in ns:
            grams = _case_grams(toks_list, n, min_words)
            ov.ngrams[n] = len(grams)
            for g in grams:
                index[len(g)].setdefault(g, []).append((ci, n))
        overlaps.append(ov)
    seen: dict[int, set[tuple]] = {ci: set() for ci in range(len(overlaps))}  # count each case n-gram once
    # word -> the gram lengths that start with it: most training positions are rejected by one dict lookup
    starts: dict[str, tuple[int, ...]] = {}
    for length, table in index.items():
        for gram in table:
            starts[gram[0]] = tuple(sorted({*starts.get(gram[0], ()), length}))
    records = 0
    files: list[str] = []
    for fname, lineno, text in training:
        records += 1
        if not files or files[-1] != fname:
            files.append(fname)
        for ci, n, gram in _matches(words(text), starts, index):
            key = (n, *gram)
            if key not in seen[ci]:
                seen[ci].add(key)
                ov = overlaps[ci]
                ov.matched[n] += 1
                ov.first_match = ov.first_match or f"{fname}:{lineno}"
    return ContaminationReport(ns, overlaps, files, records, time.perf_counter() - started)


def _matches(toks: list[str], starts: dict[str, tuple[int, ...]], index: _Index) -> Iterator[tuple[int, int, tuple[str, ...]]]:
    """Yield ``(case index, n, gram)`` for every eval n-gram found in one training record's words."""
    size = len(toks)
    for i, w in enumerate(toks):
        lengths = starts.get(w)
        if lengths is None:
            continue
        for length in lengths:
            if i + length > size:
                break
            gram = tuple(toks[i:i + length])
            for ci, n in index[length].get(gram, ()):
                yield ci, n, gram
