"""Start one sandboxed Python process for a program and its tests; choose the backend; classify how it ended."""

from __future__ import annotations

import contextlib
import functools
import json
import os
import secrets
import signal
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Optional

from .backends import BACKENDS, ENV_VAR, Launch, SandboxUnavailable, requested_backend, sandbox_command, variants
from .classify import FAILURE_KINDS, FailureKind, classify, parse_record

__all__ = ["BACKENDS", "FAILURE_KINDS", "SandboxLimits", "SandboxResult", "SandboxUnavailable", "available", "isolation",
           "run_python"]

_CHILD = Path(__file__).with_name("_child.py")


@dataclass(frozen=True)
class SandboxLimits:
    """Limits for one run. ``timeout_s`` is wall clock; the CPU limit is the same number of CPU seconds."""

    timeout_s: float = 10.0
    memory_mb: int = 512
    output_kb: int = 1024
    audit_hook: bool = True  # False only in tests that check the kernel layers on their own

    @property
    def cpu_s(self) -> int:
        return max(1, int(self.timeout_s + 0.999))


@dataclass(frozen=True)
class SandboxResult:
    """How one run ended. ``failure`` is None when the tests passed.

    ``detail`` is safe to publish (see :mod:`.classify`); ``stdout`` and ``stderr`` are the program's own output,
    for debugging only: they may hold anything the program could read and must never reach a report.
    ``isolation`` names the backend that ran it: ``bwrap``, ``namespaces`` or ``limits``.
    """

    passed: bool
    failure: Optional[FailureKind]
    detail: str
    stdout: str
    stderr: str
    duration_s: float
    isolation: str


_PROBE = SandboxLimits(timeout_s=10, memory_mb=256, output_kb=64)  # start-up only; generous for a loaded machine


@functools.cache
def _working(backend: str) -> Optional[Launch]:
    """Return the first way to start ``backend`` that runs a trivial program to a pass here, or None (probed once)."""
    for launch in variants(backend):
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            if _run(launch, "x = 1\n", "assert x == 1\n", _PROBE).passed:
                return launch
    return None


def _choose(backend: Optional[str]) -> Launch:
    name = requested_backend(backend)
    if name is not None:
        launch = _working(name)
        if launch is None:
            raise SandboxUnavailable(f"the sandbox backend {name!r} was requested ({ENV_VAR} or backend=) but does not "
                                     "work on this machine (see docs/suites.md, 'Running model code')")
        return launch
    for candidate in BACKENDS:
        launch = _working(candidate)
        if launch is not None:
            return launch
    return Launch("limits")  # nothing started a program: runs will say so as crashes, under the weakest backend


def isolation(backend: Optional[str] = None) -> str:
    """Return the backend :func:`run_python` uses: ``backend``, else ``$MERGEGATE_SANDBOX``, else the strongest that
    works here (``bwrap``, ``namespaces``, then ``limits``). Raises :class:`SandboxUnavailable` when the one
    requested does not work."""
    return _choose(backend).backend


def available(backend: str) -> bool:
    """Return whether ``backend`` works on this machine (probed once per process)."""
    return _working(backend) is not None


def run_python(program: str, tests: str, limits: SandboxLimits = SandboxLimits(), *, backend: Optional[str] = None) -> SandboxResult:
    """Return how ``program`` followed by ``tests`` (Python source) ran in a fresh sandbox.

    Never raises for anything the program does: a syntax error, a failed
    assertion, an exception, a timeout, a resource limit or a refused
    operation is a :class:`SandboxResult` with ``failure`` set. ``backend``
    (or ``$MERGEGATE_SANDBOX``) forces one (:data:`BACKENDS`); it raises
    :class:`SandboxUnavailable` if that one does not work here.
    """
    return _run(_choose(backend), program, tests, limits)


def _run(launch: Launch, program: str, tests: str, limits: SandboxLimits) -> SandboxResult:
    # A pass needs more than exit 0: after the tests ran to their end, the child writes this run's token to a
    # pipe only it holds. A program that exits early (os._exit(0), sys.exit(0)) never sends it.
    token = secrets.token_hex(16)
    done_read, done_write = os.pipe()
    opts = {"cpu_s": limits.cpu_s, "memory_mb": limits.memory_mb, "output_kb": limits.output_kb,
            "audit_hook": limits.audit_hook, "done_fd": done_write}
    args = ["-I", "-B", "-X", "utf8", "_sandbox_child.py", json.dumps(opts)]
    files = {"solution.py": program, "tests.py": tests, "_sandbox_child.py": _CHILD.read_text(encoding="utf-8")}
    cap = limits.output_kb * 1024
    started = time.perf_counter()
    try:
        with sandbox_command(launch, files, args, limits.memory_mb) as (argv, kwargs), \
                tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
            kwargs["pass_fds"] = (*kwargs["pass_fds"], done_write)
            proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=out, stderr=err, start_new_session=True, **kwargs)
            os.close(done_write)
            done_write = -1
            _send_token(proc, token)
            timed_out = _wait(proc, limits.timeout_s + 2.0)  # the child's own start-up is included: a little slack
            sent = _read_all(done_read)
            stdout, stderr = _read_capped(out, cap), _read_capped(err, cap)
    finally:
        os.close(done_read)
        if done_write >= 0:
            os.close(done_write)
    completed = sent == token.encode()
    code = proc.returncode
    # bwrap reports a signal death as 128 + the signal, like a shell; Popen gives a negative code
    signum = -code if code < 0 else (code - 128 if launch.backend == "bwrap" and 128 < code < 128 + signal.NSIG else 0)
    failure, detail = classify(code, signum, timed_out, completed, {} if completed else parse_record(sent),
                               {"solution.py": program, "tests.py": tests}, limits.timeout_s, limits.cpu_s,
                               limits.memory_mb, limits.output_kb)
    return SandboxResult(failure is None, failure, detail, stdout, stderr, time.perf_counter() - started, launch.backend)


def _wait(proc: subprocess.Popen, timeout: float) -> bool:
    """Wait for the child at most ``timeout`` seconds, then kill whatever is left of it; return whether it timed out."""
    try:
        proc.wait(timeout=timeout)
        return False
    except subprocess.TimeoutExpired:
        return True
    finally:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)  # its process group; bwrap's own children die with it (--die-with-parent)
        proc.wait()


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


def _read_capped(f: IO[bytes], cap: int) -> str:
    f.seek(0)
    return f.read(cap).decode("utf-8", "replace")
