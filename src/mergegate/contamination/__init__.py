"""Test-set contamination and stable splits.

- :mod:`.ngrams`: word n-gram overlap between training data (streamed) and
  every eval case's input and reference (``mergegate contamination``).
- :mod:`.split`: deterministic hash-based train/val/test assignment
  (``mergegate split``).
- :mod:`.run`: the check as part of ``mergegate run`` (``training_data:`` in
  mergegate.yaml), summarised in results.json.
"""

from .ngrams import CaseOverlap, ContaminationReport, EvalText, find_overlaps, iter_training_texts, words
from .run import case_texts, resolve_training_files, summary_of
from .split import assign_split, split_file

__all__ = ["CaseOverlap", "ContaminationReport", "EvalText", "find_overlaps", "iter_training_texts", "words",
           "case_texts", "resolve_training_files", "summary_of", "assign_split", "split_file"]
