"""The last lines ``mergegate run`` prints: the verdict, why, and where the report is.

pytest's own summary (a line per failed case) scrolls the verdict away; these
lines come after it, so the last screen of a run is the decision.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

from ..results import RunResults
from ..results.messages import readable

__all__ = ["verdict_lines"]

_MARK = {"failed": "FAIL", "error": "ERROR", "insufficient": "UNSURE", "advisory": "ADVISORY"}


def _short(text: str, limit: int = 220) -> str:
    line = " ".join(text.split())
    return line if len(line) <= limit else line[: limit - 1] + "…"


def verdict_lines(run: RunResults, out_dir: Optional[Path] = None) -> list[str]:
    """Return the closing lines for ``run``: verdict, reasons, failing gates with their reasons, warnings, report paths."""
    lines = [f"mergegate: {run.verdict} (exit {run.exit_code})"]
    gated = {g.name for g in run.gates if g.outcome in ("failed", "error")}
    lines += [f"  - {_short(r)}" for r in run.reasons if not any(r.endswith(name) for name in gated)]
    for g in run.gates:
        if g.outcome in _MARK and g.outcome != "advisory":
            lines.append(f"  {_MARK[g.outcome]:6} {g.name.split('::')[-1]}: {_short(readable(g.message) or 'no message', 400)}")
    lines += [f"  ! {_short(w)}" for w in run.warnings]
    if out_dir is not None and (out_dir / "report.md").exists():
        lines.append(f"report: {out_dir / 'report.md'} · viewer: {out_dir / 'report.html'} (mergegate view {out_dir})")
    return lines
