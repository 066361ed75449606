"""Start one sandboxed Python process for a program and its tests; classify how it ended."""

from __future__ import annotations

import contextlib
import functools
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Optional

__all__ = ["FAILURE_KINDS", "SandboxLimits", "SandboxResult", "isolation", "run_python"]

FailureKind = Literal["syntax_error", "test_failure", "runtime_error", "timeout", "resource", "blocked", "crashed"]
FAILURE_KINDS: tuple[str, ...] = ("syntax_error", "test_failure", "runtime_error", "timeout", "resource", "blocked", "crashed")

_CHILD = Path(__file__).with_name("_child.py")
# exit codes of _child.py
_BY_CODE: dict[int, FailureKind] = {10: "syntax_error", 11: "test_failure", 12: "runtime_error", 13: "blocked"}
_NAMESPACES = ["unshare", "--user", "--map-user=65534", "--map-group=65534", "--net", "--pid", "--fork", "--mount-proc", "--kill-child"]


@dataclass(frozen=True)
class SandboxLimits:
    """Limits for one run. ``timeout_s`` is wall clock; the CPU limit is the same number of CPU seconds."""

    timeout_s: float = 10.0
    memory_mb: int = 512
    output_kb: int = 1024
    audit_hook: bool = True  # False only in tests that check the kernel layers on their own


@dataclass(frozen=True)
class SandboxResult:
    """How one run ended. ``failure`` is None when the tests passed."""

    passed: bool
    failure: Optional[FailureKind]
    detail: str
    stdout: str
    stderr: str
    duration_s: float
    isolation: str


@functools.lru_cache(maxsize=1)
def isolation() -> str:
    """Return ``"namespaces"`` when ``unshare`` can isolate the child here, else ``"limits"`` (rlimits and audit hook only)."""
    if sys.platform != "linux" or shutil.which("unshare") is None:
        return "limits"
    try:
        ok = subprocess.run([*_NAMESPACES, "true"], capture_output=True, timeout=10).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        ok = False
    return "namespaces" if ok else "limits"


def _tail(text: str, limit: int = 300) -> str:
    lines = [ln for ln in text.strip().splitlines() if ln.strip()]
    last = lines[-1] if lines else ""
    return last if len(last) <= limit else last[: limit - 1] + "…"


def run_python(program: str, tests: str, limits: SandboxLimits = SandboxLimits()) -> SandboxResult:
    """Return how ``program`` followed by ``tests`` (Python source) ran in a fresh sandbox.

    Never raises for anything the program does: a syntax error, a failed
    assertion, an exception, a timeout, a resource limit or a refused
    operation is a :class:`SandboxResult` with ``failure`` set.
    """
    mode = isolation()
    work = Path(tempfile.mkdtemp(prefix="mergegate-sandbox-"))
    logs = Path(tempfile.mkdtemp(prefix="mergegate-sandbox-out-"))  # outside the program's directory: it cannot touch them
    try:
        (work / "solution.py").write_text(program, encoding="utf-8")
        (work / "tests.py").write_text(tests, encoding="utf-8")
        shutil.copyfile(_CHILD, work / "_sandbox_child.py")
        opts = {"cpu_s": max(1, int(limits.timeout_s + 0.999)), "memory_mb": limits.memory_mb, "output_kb": limits.output_kb,
                "audit_hook": limits.audit_hook}
        cmd = [sys.executable, "-I", "-B", "-X", "utf8", "_sandbox_child.py", _OPTS_PLACEHOLDER]
        if mode == "namespaces":
            cmd = [*_NAMESPACES, *cmd]
        env = {"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8", "HOME": str(work), "TMPDIR": str(work)}
        # A pass needs more than exit 0: after the tests ran to their end, the child writes this run's token to a
        # pipe only it holds. A program that exits early (os._exit(0), sys.exit(0)) never sends it.
        token = secrets.token_hex(16)
        done_read, done_write = os.pipe()
        cmd[cmd.index(_OPTS_PLACEHOLDER)] = json.dumps({**opts, "done_fd": done_write})
        started = time.perf_counter()
        timed_out = False
        try:
            with open(logs / "out", "wb") as out, open(logs / "err", "wb") as err:
                proc = subprocess.Popen(cmd, cwd=work, env=env, stdin=subprocess.PIPE, stdout=out, stderr=err,
                                        start_new_session=True, pass_fds=(done_write,))
                os.close(done_write)
                _send_token(proc, token)
                try:
                    # the child's own start-up is included; a little slack over the limit before the kill
                    proc.wait(timeout=limits.timeout_s + 2.0)
                except subprocess.TimeoutExpired:
                    timed_out = True
                finally:
                    with contextlib.suppress(ProcessLookupError):
                        os.killpg(proc.pid, signal.SIGKILL)  # whatever is left of its process group
                    proc.wait()
            completed = _read_all(done_read) == token.encode()
        finally:
            os.close(done_read)
        duration = time.perf_counter() - started
        cap = limits.output_kb * 1024
        stdout = (logs / "out").read_bytes()[:cap].decode("utf-8", "replace")
        stderr = (logs / "err").read_bytes()[:cap].decode("utf-8", "replace")
        return _classify(proc.returncode, timed_out, stdout, stderr, duration, mode, limits, completed)
    finally:
        shutil.rmtree(work, ignore_errors=True)
        shutil.rmtree(logs, ignore_errors=True)


_OPTS_PLACEHOLDER = "<options>"


def _send_token(proc: subprocess.Popen, token: str) -> None:
    """Give the child its completion token on stdin (it reads one line, then stdin is empty for the program)."""
    assert proc.stdin is not None
    with contextlib.suppress(BrokenPipeError, OSError):  # a child that died at once: classified by its exit
        proc.stdin.write(token.encode() + b"\n")
    with contextlib.suppress(BrokenPipeError, OSError):
        proc.stdin.close()


def _read_all(fd: int, limit: int = 4096) -> bytes:
    """Return what was written to the pipe ``fd`` (every writer is gone by now, so this ends)."""
    chunks: list[bytes] = []
    while sum(map(len, chunks)) < limit:
        chunk = os.read(fd, limit)
        if not chunk:
            break
        chunks.append(chunk)
    return b"".join(chunks)


def _classify(code: int, timed_out: bool, stdout: str, stderr: str, duration: float, mode: str,
              limits: SandboxLimits, completed: bool = True) -> SandboxResult:
    def result(failure: Optional[FailureKind], detail: str) -> SandboxResult:
        return SandboxResult(failure is None, failure, detail, stdout, stderr, duration, mode)

    if timed_out:
        return result("timeout", f"timeout: still running after {limits.timeout_s:g} s; killed")
    if code == 0 and not completed:
        return result("runtime_error", "the program ended the process before its tests completed (exit 0 without the "
                                       "harness's completion signal)")
    if code == 0:
        return result(None, "tests passed")
    if code in _BY_CODE:
        return result(_BY_CODE[code], _tail(stderr))
    if code == 14:
        return result("resource", f"resource: memory limit of {limits.memory_mb} MiB reached")
    if code == 15:
        return result("resource", f"resource: CPU limit of {max(1, int(limits.timeout_s + 0.999))} s reached")
    if code == 16:
        return result("resource", f"resource: output or file size limit of {limits.output_kb} KiB reached")
    if code < 0:
        return result("crashed", f"crashed: killed by {signal.Signals(-code).name}; {_tail(stderr)}".rstrip("; "))
    return result("crashed", f"crashed: exit {code}; {_tail(stderr)}".rstrip("; "))
