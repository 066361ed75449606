"""Code execution: run the model's program with the case's tests in a sandbox (:mod:`mergegate.sandbox`)."""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import Field

from ..sandbox import SandboxLimits, run_python
from .registry import CheckContext, Outcome, check, group_metric

_FENCE = re.compile(r"```[ \t]*([A-Za-z0-9_+-]*)[^\n]*\n(.*?)(?:```|\Z)", re.DOTALL)


def extract_code(output: str, language: str = "python") -> str:
    """Return the program in ``output``: the first fenced block tagged ``language`` (or ``py``),
    else the first untagged fenced block, else the whole output."""
    blocks = _FENCE.findall(output)
    tags = {language.lower(), "py"} if language == "python" else {language.lower()}
    for tag, body in blocks:
        if tag.lower() in tags:
            return body
    for tag, body in blocks:
        if not tag:
            return body
    return output


def code_summary(cases: list[Any]) -> Any:
    """Return both models' pass@1 on ``code_tests`` and how their failures ended, or None when no case has one."""
    from ..results.models import CodeTestsSummary

    passed: dict[str, list[bool]] = {"candidate": [], "baseline": []}
    failures: dict[str, dict[str, int]] = {"candidate": {}, "baseline": {}}
    backends: set[str] = set()
    for case in cases:
        for role in passed:
            for chk in getattr(case, role).checks:
                if chk.type == "code_tests":
                    passed[role].append(bool(chk.passed))
                    kind = chk.extra.get("failure") or ("no output" if chk.detail.startswith("no output") else None)
                    if kind:
                        failures[role][kind] = failures[role].get(kind, 0) + 1
                    if chk.extra.get("isolation"):
                        backends.add(str(chk.extra["isolation"]))
    if not passed["candidate"]:
        return None
    return CodeTestsSummary(n=len(passed["candidate"]), failures=failures, isolation=sorted(backends),
                            pass_rate={r: sum(v) / len(v) if v else None for r, v in passed.items()})


@check("code_tests", metrics=[group_metric("code", code_summary)])
def code_tests(
    ctx: CheckContext,
    tests: Annotated[str, Field(description="Python run after the program, in the same namespace: asserts on its functions.")],
    language: Annotated[Literal["python"], Field(description="The program's language.")] = "python",
    timeout_s: Annotated[float, Field(gt=0, le=300, description="Wall-clock limit (also the CPU-seconds limit).")] = 10.0,
    memory_mb: Annotated[int, Field(ge=64, le=16384, description="Address-space limit of the process.")] = 512,
    output_kb: Annotated[int, Field(ge=1, le=65536, description="Cap on stdout, stderr and any file written.")] = 1024,
) -> Outcome:
    """Passes when the program in the output (a fenced block or raw) runs and passes ``tests`` in a sandbox; the suite's rate is pass@1."""
    program = extract_code(ctx.output, language)
    if not program.strip():
        return Outcome(score=0.0, passed=False, detail="no code in the output", extra={"failure": "syntax_error"})
    res = run_python(program, tests, SandboxLimits(timeout_s=timeout_s, memory_mb=memory_mb, output_kb=output_kb))
    # no timings: results must not differ between identical runs. The detail is built from names and numbers only
    # (mergegate.sandbox.classify); res.stdout / res.stderr may hold what the program read and never go further.
    extra = {"failure": res.failure, "isolation": res.isolation}
    detail = "" if res.passed else f"{res.failure}: {res.detail}"
    return Outcome(score=float(res.passed), passed=res.passed, detail=detail, extra=extra)
