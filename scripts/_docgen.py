"""What the generated docs' scripts share: write the file, or with --check say whether it is current (scripts/*_docs.py)."""

from __future__ import annotations

import sys
from pathlib import Path


def write_or_check(out: Path, text: str, script: str, argv: list[str]) -> int:
    """Write ``text`` to ``out`` (exit 0), or with ``--check`` in ``argv`` exit 1 when ``out`` differs from it."""
    if "--check" in argv:
        if not out.exists() or out.read_text() != text:
            print(f"{out} is out of date: run python scripts/{script}", file=sys.stderr)
            return 1
        return 0
    out.parent.mkdir(exist_ok=True)
    out.write_text(text)
    print(f"wrote {out}")
    return 0
