"""The llama.cpp server mergegate starts: ``llama_cpp.server``, with every request evaluated from an empty context.

    python -m mergegate.serving.llama_server --model ... (the same flags as python -m llama_cpp.server)

llama-cpp-python reuses the longest prompt prefix it still holds from the
previous request and evaluates only the rest. The logits then come from a
different batch split, and a near-tie can flip: with the candidate configured
identical to the baseline, 8 of 40 greedy answers differed depending on which
request came first. Resetting the context before each generation makes an
answer depend on its request alone (prompts here are short: the cost is small),
so identical configurations give identical answers.
"""

from __future__ import annotations

import runpy
from typing import Any

import llama_cpp.llama as _llama

_generate = _llama.Llama.generate


def _generate_from_empty_context(self: Any, tokens: Any, *args: Any, **kwargs: Any) -> Any:
    self.reset()  # forget the previous request's tokens: no prefix reuse across requests
    return _generate(self, tokens, *args, **kwargs)


def main() -> None:
    """Patch the generation entry point, then run llama_cpp.server's own main with this process's argv."""
    _llama.Llama.generate = _generate_from_empty_context  # type: ignore[method-assign]
    runpy.run_module("llama_cpp.server", run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    main()
