"""Running untrusted model-written code: :func:`run_python` and its result.

Used by the ``code_tests`` check (:mod:`mergegate.checks.code`). Layers, from
the kernel up (see :func:`isolation`):

- a fresh temporary working directory, deleted afterwards; a minimal
  environment (no variable of the evaluation process, so no secrets);
- Linux namespaces when ``unshare`` can create them (user, network, PID,
  mount with a private ``/proc``): no network, no view of other processes;
- resource limits: CPU seconds, address space, file size (which also caps
  stdout/stderr), open files, and no new processes; a wall-clock timeout that
  kills the whole process group;
- a Python audit hook in the child refusing writes outside the working
  directory, sockets, subprocesses, signals and ``ctypes``.
"""

from .run import FAILURE_KINDS, SandboxLimits, SandboxResult, isolation, run_python

__all__ = ["FAILURE_KINDS", "SandboxLimits", "SandboxResult", "isolation", "run_python"]
