"""Deterministic train / val / test splits by a stable hash of a key.

The same example lands in the same split on every run and machine, whatever
the file order or the other examples: the split depends only on the key's
value and the salt (SHA-256, not Python's per-process ``hash``).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
from collections.abc import Sequence
from pathlib import Path

__all__ = ["assign_split", "split_file"]


def assign_split(key: str, fractions: Sequence[tuple[str, float]], salt: str = "") -> str:
    """Return the split name for ``key``: its hash, read as a number in [0, 1), falls into one split's share."""
    digest = hashlib.sha256(f"{salt}\x00{key}".encode()).digest()
    u = int.from_bytes(digest[:8], "big") / 2**64
    total = sum(f for _, f in fractions)
    edge = 0.0
    for name, frac in fractions:
        edge += frac / total
        if u < edge:
            return name
    return fractions[-1][0]


def split_file(path: Path, out_dir: Path, key: str, fractions: Sequence[tuple[str, float]], salt: str = "") -> dict[str, int]:
    """Write ``out_dir/<split>.jsonl`` from the JSONL ``path``, one line per example; return counts per split.

    ``key`` names the field hashed (e.g. ``id``, or ``prompt`` to keep
    duplicates of one prompt together). Raises ValueError naming the line of
    a record that is not JSON or lacks the key.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    counts = {name: 0 for name, _ in fractions}
    with contextlib.ExitStack() as stack:
        handles = {name: stack.enter_context(open(out_dir / f"{name}.jsonl", "w", encoding="utf-8")) for name, _ in fractions}
        with open(path, encoding="utf-8") as f:
            for lineno, line in enumerate(f, 1):
                if not line.strip():
                    continue
                try:
                    obj = json.loads(line)
                except json.JSONDecodeError as exc:
                    raise ValueError(f"{path}:{lineno}: not JSON ({exc.msg})") from None
                if not isinstance(obj, dict) or key not in obj:
                    raise ValueError(f"{path}:{lineno}: no field {key!r}")
                value = obj[key] if isinstance(obj[key], str) else json.dumps(obj[key], sort_keys=True)
                name = assign_split(value, fractions, salt)
                handles[name].write(line if line.endswith("\n") else line + "\n")
                counts[name] += 1
    return counts
