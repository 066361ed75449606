"""The evaluation core, free of pytest: one orchestrator and its typed phases.

- ``core``        — :class:`Evaluation`, the orchestrator
- ``provenance``  — run metadata: commit, config hash, packages, served models
- ``requests``    — one chat request per case, turn and role
- ``judging``     — calibration sets and the judge phase
- ``benchmarks``  — lm-eval tasks on the served models
- ``scoring``     — every check on both sides of every case
- ``assemble``    — summaries with intervals, computed once into :class:`~mergegate.results.RunResults`
- ``shards``      — ``--shard i/n`` slices and merging them back
"""

from .core import Evaluation
from .scoring import score_side
from .shards import load_shards, merge_shards, parse_shard, shard_of

__all__ = ["Evaluation", "score_side", "load_shards", "merge_shards", "parse_shard", "shard_of"]
