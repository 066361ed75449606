"""mergegate: the evaluation gate for fine-tuned LLM checkpoints.

Where things live:

- ``suites``   — the YAML eval-case format and its loader
- ``config``   — ``mergegate.yaml``: candidate, baseline, engines
- ``checks``   — every check type (ROUGE, BLEU, JSON Schema, labels…) behind one registry
- ``serving``  — starting and stopping vLLM / llama.cpp servers
- ``client``   — concurrent generation and the response cache
- ``results``  — the results.json schema, aggregation, the gates' ``results`` view
- ``report``   — the Jinja reports (markdown for the PR comment, HTML)
- ``runner``   — the evaluation core (no pytest)
- ``pytest_plugin`` / ``session`` — suites as tests, gates as assertions
- ``cli``      — the ``mergegate`` command
"""

from .errors import ConfigError, GenerationError, IncompleteError, InputError, MergegateError, ServerError, SuiteError

__all__ = ["ConfigError", "GenerationError", "IncompleteError", "InputError", "MergegateError", "ServerError", "SuiteError"]
__version__ = "0.1.0"
