"""Running untrusted model-written code: :func:`run_python` and its result.

Used by the ``code_tests`` check (:mod:`mergegate.checks.code`). Layers, from
the kernel up:

- an isolation backend (:mod:`.backends`, reported as ``SandboxResult.isolation``),
  the strongest that works here unless ``MERGEGATE_SANDBOX`` picks one:
  ``bwrap`` (bubblewrap: a read-only view of the system and Python only, a
  private tmpfs as the working directory, no network, its own PIDs, uid
  65534), ``namespaces`` (``unshare``: no network, its own PIDs, but the
  host's file system) or ``limits`` (none of these);
- seccomp (no new processes; threads work), resource limits (CPU seconds,
  address space, file size, which also caps stdout/stderr, open files) and a
  wall-clock timeout that kills the whole process group;
- a Python audit hook in the child refusing writes outside the working
  directory, sockets, subprocesses, signals and ``ctypes``: defence in depth
  only, since code in the same interpreter can get around it.

A pass needs the harness's completion token; failure details are built from
names and numbers only (:mod:`.classify`), never from the program's output.
"""

from .backends import BACKENDS, SandboxUnavailable
from .run import FAILURE_KINDS, SandboxLimits, SandboxResult, available, isolation, run_python

__all__ = ["BACKENDS", "FAILURE_KINDS", "SandboxLimits", "SandboxResult", "SandboxUnavailable", "available", "isolation",
           "run_python"]
