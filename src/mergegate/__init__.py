"""mergegate: the evaluation gate for fine-tuned LLM checkpoints.

The public API — what gates, custom checks and scripts import — is exported
here; everything else is implementation and may change::

    from mergegate import Results, SuiteView, Comparison          # what gates read
    from mergegate import CheckContext, Outcome, check            # custom checks
    from mergegate import load_results, Verdict                   # scripts over results.json

Names are imported on first use (PEP 562), so ``import mergegate`` and the
``mergegate`` command stay fast. The reference is ``docs/api.md``.

Where things live:

- ``suites``     — the YAML eval-case format and its loader
- ``config``     — ``mergegate.yaml``: candidate, baseline, judge, engines
- ``checks``     — every check type behind one registry (``@check``)
- ``serving``    — starting and stopping vLLM / llama.cpp servers
- ``client``     — concurrent generation and the response cache
- ``evaluation`` — the orchestrator and its typed phases (no pytest)
- ``results``    — the results.json schema, aggregation, the gates' read-only view
- ``stats``      — paired intervals, p-values, power
- ``verdict``    — GO / NO-GO / INCOMPLETE, decided in one place
- ``report``     — the Jinja reports (PR comment, HTML)
- ``pytest_plugin`` / ``session`` — suites as tests, gates as assertions
- ``cli``        — the ``mergegate`` command
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from .errors import ConfigError, GenerationError, IncompleteError, InputError, MergegateError, ServerError, SuiteError

if TYPE_CHECKING:
    from .checks import CheckContext, Outcome, check, group_metric, side_metric
    from .results import (
        CaseResult,
        Comparison,
        Finding,
        GroupView,
        InsufficientEvidence,
        PairedDelta,
        Results,
        RunResults,
        SuiteView,
        UncalibratedJudge,
        UnknownName,
    )
    from .results.io import load_results
    from .verdict import Verdict

__version__ = "0.1.0"

# public name -> the module that defines it
_LAZY = {
    # what gates read (the `results` fixture and its parts)
    "Results": "results", "SuiteView": "results", "GroupView": "results", "Comparison": "results", "PairedDelta": "results",
    "Finding": "results", "CaseResult": "results", "RunResults": "results",
    # what a gate may raise or meet
    "InsufficientEvidence": "results", "NotEvaluated": "results", "UncalibratedJudge": "results", "UnknownName": "results",
    # custom checks
    "CheckContext": "checks", "Outcome": "checks", "check": "checks", "side_metric": "checks", "group_metric": "checks",
    # scripts over results.json
    "load_results": "results.io", "Verdict": "verdict",
}

__all__ = ["ConfigError", "GenerationError", "IncompleteError", "InputError", "MergegateError", "ServerError", "SuiteError",
           "__version__",
           "Results", "SuiteView", "GroupView", "Comparison", "PairedDelta", "Finding", "CaseResult", "RunResults",
           "InsufficientEvidence", "NotEvaluated", "UncalibratedJudge", "UnknownName", "CheckContext", "Outcome", "check", "side_metric",
           "group_metric", "load_results", "Verdict"]
assert set(__all__) >= set(_LAZY)


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'mergegate' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)
