"""Where the sandbox's child runs: the isolation backends and the command that starts the child in each.

Backends, strongest first (:data:`BACKENDS`):

- ``bwrap`` (bubblewrap): a new mount namespace that holds only a read-only
  view of ``/usr``, the ``/lib*`` links and the Python installation, a private
  ``/proc`` and ``/dev``, and a size-capped tmpfs at ``/sandbox`` holding the
  program, its tests and the harness (copied in from memory: nothing of the
  host's disk is writable, no repository or home directory is mounted); all
  namespaces unshared (no network at all, its own PIDs), no further user
  namespaces, an empty environment, uid 65534, killed with its parent.
- ``namespaces``: ``unshare`` user, network, PID and mount namespaces (no
  network, its own ``/proc``) around the child in a temporary directory of the
  host, whose file system it still sees.
- ``limits``: the child in a temporary directory with rlimits, seccomp and the
  audit hook only.

When the evaluation runs as root, each backend is first tried as uid/gid 65534,
so that a child that escapes the in-process layer owns nothing on the host.
"""

from __future__ import annotations

import contextlib
import functools
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

from ..errors import IncompleteError

__all__ = ["BACKENDS", "ENV_VAR", "Launch", "SandboxUnavailable", "requested_backend", "sandbox_command", "variants"]

BACKENDS: tuple[str, ...] = ("bwrap", "namespaces", "limits")
ENV_VAR = "MERGEGATE_SANDBOX"
NOBODY = 65534
INSIDE = "/sandbox"  # the child's working directory inside bwrap (a private tmpfs)
_TOOLS = {"bwrap": "bwrap", "namespaces": "unshare"}
_NAMESPACES = ["--user", "--map-user=65534", "--map-group=65534", "--net", "--pid", "--fork", "--mount-proc", "--kill-child"]
_ENV = {"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"}


class SandboxUnavailable(IncompleteError):
    """A backend was requested (``MERGEGATE_SANDBOX`` or ``backend=``) that does not work on this machine."""


@dataclass(frozen=True)
class Launch:
    """How the child is started: the backend, and whether as uid/gid 65534 (only when the evaluation runs as root)."""

    backend: str
    as_nobody: bool = False


def requested_backend(explicit: Optional[str] = None) -> Optional[str]:
    """Return the backend asked for by ``explicit`` or the ``MERGEGATE_SANDBOX`` variable, or None to pick the strongest."""
    name = explicit or os.environ.get(ENV_VAR, "").strip() or None
    if name is not None and name not in BACKENDS:
        raise SandboxUnavailable(f"{ENV_VAR}={name!r} is not a sandbox backend: use one of {', '.join(BACKENDS)}")
    return name


def variants(backend: str) -> list[Launch]:
    """Return the ways to start ``backend`` here, preferred first (empty when its tool is missing)."""
    if backend in _TOOLS and (sys.platform != "linux" or shutil.which(_TOOLS[backend]) is None):
        return []
    as_root = hasattr(os, "geteuid") and os.geteuid() == 0
    return ([Launch(backend, as_nobody=True)] if as_root else []) + [Launch(backend)]


@functools.lru_cache(maxsize=1)
def interpreter() -> str:
    """Return the Python the child runs on: this one, or its base installation's when this one's real path is
    not executable for the current user (a venv whose base Python lives in another user's home)."""
    exe = sys.executable
    if exe and os.access(os.path.realpath(exe), os.X_OK):
        return exe
    base = os.path.join(sys.base_prefix, "bin", f"python{sys.version_info[0]}.{sys.version_info[1]}")
    return base if os.access(base, os.X_OK) else exe


def _python_dirs(python: str) -> list[str]:
    """Return the Python installation's directories to mount read-only, outside ``/usr`` (mounted anyway).

    Never a directory that holds the current working directory or the home directory: the project (its source,
    ``.git``, its secrets) stays outside the sandbox even if a virtual environment were the project itself.
    """
    found = {sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix,
             os.path.dirname(os.path.dirname(os.path.realpath(python)))}
    found |= {os.path.realpath(d) for d in list(found)}
    keep = [os.getcwd(), os.path.expanduser("~")]  # expanduser: no error when HOME is unset and there is no passwd entry
    dirs: list[str] = []
    for d in sorted(found, key=len):
        if d in ("", "/") or not os.path.isdir(d) or not os.access(d, os.R_OK | os.X_OK):
            continue
        if any(k == d or k.startswith(d.rstrip("/") + "/") for k in keep):
            continue
        if not any(d == p or d.startswith(p + "/") for p in ["/usr", *dirs]):
            dirs.append(d)
    return dirs


@functools.lru_cache(maxsize=1)
def _bwrap_help() -> str:
    try:
        return subprocess.run([shutil.which("bwrap") or "bwrap", "--help"], capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.SubprocessError):
        return ""


def _bwrap_args(python: str, data_fds: dict[str, int], memory_mb: int) -> list[str]:
    """Return bwrap's options: what the child sees (see the module docstring)."""
    newer = _bwrap_help()  # options that bubblewrap < 0.8 lacks are left out rather than failing the probe
    args = ["--unshare-all", "--unshare-user", "--uid", str(NOBODY), "--gid", str(NOBODY), "--die-with-parent",
            "--new-session", "--clearenv", *(["--disable-userns"] if "--disable-userns" in newer else []),
            "--ro-bind", "/usr", "/usr"]
    for top in ("/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32"):
        if os.path.islink(top):
            args += ["--symlink", os.readlink(top), top]
        elif os.path.isdir(top):
            args += ["--ro-bind", top, top]
    for d in _python_dirs(python):
        args += ["--ro-bind", d, d]
    # the tmpfs takes what the program writes: capped like its memory, so scratch files cannot fill the host's RAM
    size = ["--size", str(memory_mb * 1024 * 1024)] if "--size" in newer else []
    args += ["--proc", "/proc", "--dev", "/dev", *size, "--perms", "0700", "--tmpfs", INSIDE]
    for name, fd in data_fds.items():
        args += ["--ro-bind-data", str(fd), f"{INSIDE}/{name}"]
    for key, value in {**_ENV, "HOME": INSIDE, "TMPDIR": INSIDE}.items():
        args += ["--setenv", key, value]
    # bwrap's root and /dev are tmpfs the sandbox's user could fill without a cap: read-only (devices still work)
    return [*args, "--remount-ro", "/", "--remount-ro", "/dev", "--chdir", INSIDE]


def _memfd(name: str, text: str) -> int:
    fd = os.memfd_create(name)  # close-on-exec: only bwrap gets it (pass_fds), not a process another thread starts
    os.write(fd, text.encode("utf-8"))
    os.lseek(fd, 0, os.SEEK_SET)
    return fd


@contextlib.contextmanager
def sandbox_command(launch: Launch, files: dict[str, str], args: list[str], memory_mb: int) -> Iterator[tuple[list[str], dict[str, Any]]]:
    """Yield the command that runs ``python *args`` with ``files`` in its working directory under ``launch``,
    and the :class:`subprocess.Popen` keyword arguments it needs (``cwd``, ``env``, ``pass_fds``, the user);
    whatever was created for it is removed afterwards."""
    python = interpreter()
    ids: dict[str, Any] = {"user": NOBODY, "group": NOBODY, "extra_groups": []} if launch.as_nobody else {}
    if launch.backend == "bwrap":
        fds = {name: _memfd(name, text) for name, text in files.items()}
        try:
            argv = [shutil.which("bwrap") or "bwrap", *_bwrap_args(python, fds, memory_mb), python, *args]
            yield argv, {"cwd": "/", "env": dict(_ENV), "pass_fds": tuple(fds.values()), **ids}
        finally:
            for fd in fds.values():
                os.close(fd)
        return
    work = tempfile.mkdtemp(prefix="mergegate-sandbox-")
    try:
        for name, text in files.items():
            Path(work, name).write_text(text, encoding="utf-8")
        if launch.as_nobody:
            os.chown(work, NOBODY, NOBODY)  # mkdtemp made it 0700 for root: the child must write its scratch files
        argv = [python, *args]
        if launch.backend == "namespaces":
            argv = [shutil.which("unshare") or "unshare", *_NAMESPACES, *argv]
        yield argv, {"cwd": work, "env": {**_ENV, "HOME": work, "TMPDIR": work}, "pass_fds": (), **ids}
    finally:
        shutil.rmtree(work, ignore_errors=True)
