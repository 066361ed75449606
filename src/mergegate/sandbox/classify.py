"""How a sandboxed run ended: its failure kind and a detail that carries nothing the program could have read.

The detail reaches the PR comment. It is built here from the child's exit
code, the signal that ended it and a small record the child sent (an exception
class name, a file, a line, an errno, an audit event), each checked against a
closed vocabulary, plus the parent's own copies of the program and tests. The
program's stdout, stderr and exception messages are never used: a program that
reads a file (``.git/config``, a token) and prints it or raises with it cannot
bring it into the report. Any line of ``tests.py`` (asserts and their literal
messages) or ``solution.py`` (the model's own output) can be quoted.
"""

from __future__ import annotations

import builtins
import errno
import json
import os
import signal
from typing import Any, Literal, Optional

from ._child import FORBIDDEN, PATH_EVENTS

__all__ = ["FAILURE_KINDS", "FailureKind", "classify", "parse_record"]

FailureKind = Literal["syntax_error", "test_failure", "runtime_error", "timeout", "resource", "blocked", "crashed"]
FAILURE_KINDS: tuple[str, ...] = ("syntax_error", "test_failure", "runtime_error", "timeout", "resource", "blocked", "crashed")

# exit codes of _child.py
_BY_CODE: dict[int, FailureKind] = {10: "syntax_error", 11: "test_failure", 12: "runtime_error", 13: "blocked"}
_MEMORY, _CPU, _OUTPUT = 14, 15, 16
_EVENTS = FORBIDDEN | PATH_EVENTS | {"open", "object.__setattr__"}
_LINE_CHARS = 160


def parse_record(data: bytes) -> dict[str, Any]:
    """Return the child's failure record (a JSON object), or {} when ``data`` is not one."""
    try:
        record = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        return {}
    return record if isinstance(record, dict) else {}


def _exception_name(name: object, kind: str) -> str:
    """Only builtin exception names pass: a class the program made at run time could be named after a secret."""
    if name is None:  # no record (the child could not send it)
        return "AssertionError" if kind == "test_failure" else "an exception"
    cls = getattr(builtins, name, None) if isinstance(name, str) and name.isidentifier() else None
    if isinstance(cls, type) and issubclass(cls, BaseException):
        return str(name)
    return "an exception of a non-builtin class"


def _where(record: dict[str, Any], sources: dict[str, str]) -> str:
    """Return ``(tests.py, line 3: assert f(1) == 2)`` from the record's file and line and the parent's source."""
    file, line = record.get("file"), record.get("line")
    if file not in sources or not isinstance(line, int) or isinstance(line, bool):
        return ""
    lines = sources[file].splitlines()
    if not 1 <= line <= len(lines):
        return ""
    text = lines[line - 1].strip()
    text = text if len(text) <= _LINE_CHARS else text[: _LINE_CHARS - 1] + "…"
    return f" ({file}, line {line}: {text})" if text else f" ({file}, line {line})"


def _errno_text(record: dict[str, Any]) -> str:
    num = record.get("errno")
    if not isinstance(num, int) or isinstance(num, bool) or num not in errno.errorcode:
        return ""
    return f" [{errno.errorcode[num]}: {os.strerror(num)}]"


def _syntax(sources: dict[str, str]) -> str:
    """Compile the parent's own copies (no code runs): the message comes from the compiler, not from the child."""
    for name in ("solution.py", "tests.py"):
        try:
            compile(sources[name], name, "exec", dont_inherit=True)
        except SyntaxError as exc:
            return f"SyntaxError: {exc.msg} ({name}, line {exc.lineno})"
        except (ValueError, RecursionError, MemoryError, OverflowError) as exc:
            return f"SyntaxError: {type(exc).__name__} ({name})"
    return "SyntaxError"


def _signal_name(signum: int) -> str:
    try:
        return signal.Signals(signum).name
    except ValueError:
        return f"signal {signum}"


def classify(code: int, signum: int, timed_out: bool, completed: bool, record: dict[str, Any],
             sources: dict[str, str], timeout_s: float, cpu_s: int, memory_mb: int, output_kb: int) -> tuple[Optional[FailureKind], str]:
    """Return the failure kind (None: passed) and its detail.

    ``signum`` is the signal that ended the child (0: it exited with ``code``). An endless loop is a
    ``timeout`` whichever limit ends it first (the CPU seconds on a quiet machine, the wall clock on a
    loaded one); the detail says which.
    """
    if timed_out:
        return "timeout", f"timeout: wall-clock limit of {timeout_s:g} s reached; killed"
    if code == _CPU or signum == signal.SIGXCPU:
        return "timeout", f"timeout: CPU limit of {cpu_s} s reached"
    if signum:
        return "crashed", f"crashed: killed by {_signal_name(signum)}"
    if code == 0:
        if completed:
            return None, "tests passed"
        return "runtime_error", ("the program ended the process before its tests completed (exit 0 without the "
                                 "harness's completion signal)")
    if code == _MEMORY:
        return "resource", f"resource: memory limit of {memory_mb} MiB reached"
    if code == _OUTPUT:
        return "resource", f"resource: output or file size limit of {output_kb} KiB reached"
    kind = _BY_CODE.get(code)
    if kind is None:
        return "crashed", f"crashed: exit {code}"
    if kind == "syntax_error":
        return kind, _syntax(sources)
    where = _where(record, sources)
    if kind == "blocked":
        event = record.get("event")
        return kind, f"the sandbox refused {event if event in _EVENTS else 'an operation'}{where}"
    return kind, f"{_exception_name(record.get('type'), kind)}{_errno_text(record)}{where}"
