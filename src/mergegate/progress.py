"""Labelled progress lines on stderr: which phase a run is in and how long each took.

A run is minutes of server start, generation, judging and lm-eval; a silent
terminal for any of them reads as a hang. Each phase says when it starts and
what it did when it ends.
"""

from __future__ import annotations

import contextlib
import sys
import time
from collections.abc import Iterator

__all__ = ["say", "phase"]


def say(message: str, enabled: bool = True) -> None:
    """Print one ``mergegate: ...`` progress line to stderr (flushed: CI logs show it at once)."""
    if enabled:
        print(f"mergegate: {message}", file=sys.stderr, flush=True)


@contextlib.contextmanager
def phase(name: str, enabled: bool = True) -> Iterator[dict[str, str]]:
    """Say ``name…`` on entry and ``name: done in N s`` on exit; the caller may put a ``result`` text in the yielded dict."""
    say(f"{name}…", enabled)
    start = time.perf_counter()
    note: dict[str, str] = {}
    yield note
    said = f": {note['result']}" if note.get("result") else ""
    say(f"{name}: done in {time.perf_counter() - start:.1f} s{said}", enabled)
