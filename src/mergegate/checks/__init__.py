"""Checks: what a suite can assert about one model output.

Every check type lives in :data:`REGISTRY`; importing this package registers
the built-in ones. Where each is computed:

- ``text``: equals, contains, not_contains, regex, max_words, max_chars, latency_ms
- ``formats``: json_valid, json_schema
- ``overlap``: token_f1, rouge_l, rouge1, rouge2, bleu, chrf
- ``semantic``: bertscore, similarity (a transformer encoder; torch loaded on first use)
- ``classification``: label_in
- ``custom``: python (``module:function``)
- ``tools``: tool_call (function calling)
- ``code``: code_tests (runs the model's program in :mod:`mergegate.sandbox`)
- ``judge``: llm_rubric, pairwise (an LLM judge; see :mod:`mergegate.judge`)

A team's own types register the same way, from a ``checks:`` module in
mergegate.yaml or a ``mergegate.checks`` entry point (:mod:`.plugins`); a check
declares its suite-level metrics with ``metrics=[side_metric(...)]`` or
``group_metric(...)``, so aggregation and reports name no check type.
"""

from . import classification, code, custom, formats, judge, overlap, semantic, text, tools  # noqa: F401  (registers the checks)
from .registry import REGISTRY, CheckContext, CheckSpecBase, CheckType, Outcome, SuiteMetric, check, group_metric, run_check, side_metric

__all__ = ["REGISTRY", "CheckContext", "CheckSpecBase", "CheckType", "Outcome", "SuiteMetric", "check", "group_metric", "run_check",
           "side_metric"]
