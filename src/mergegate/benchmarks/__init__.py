"""Benchmarks for catastrophic forgetting: lm-eval run against the served candidate and baseline.

- :mod:`.tasks`: mergegate's offline lm-eval tasks (written as YAML + JSONL; no network).
- :mod:`.lmeval`: routing tasks to the right endpoint, running lm-eval, WARN/CRIT levels.

Correct prompt log-probabilities for GGUF models come from
:mod:`mergegate.serving.logprobs`.
"""

from .lmeval import BenchmarkRun, Target, levels, run_benchmarks, task_kinds
from .tasks import OFFLINE_TASKS, write_offline_tasks

__all__ = ["BenchmarkRun", "Target", "levels", "run_benchmarks", "task_kinds", "OFFLINE_TASKS", "write_offline_tasks"]
