"""One model-server subprocess: start it in its own process group, log to a file,
wait until it answers, fail fast with the log tail if it exits, stop the whole group."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from pathlib import Path
from typing import Optional

from ..errors import ServerError

__all__ = ["ManagedServer", "free_port", "tail"]


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def tail(path: Path, lines: int = 30) -> str:
    """Return the last ``lines`` lines of the file at ``path`` ('' if it does not exist)."""
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            size = f.tell()
            f.seek(max(0, size - 64 * 1024))
            data = f.read().decode("utf-8", "replace")
    except OSError:
        return ""
    return "\n".join(data.splitlines()[-lines:])


class ManagedServer:
    """A server process; use as a context manager or call :meth:`start` / :meth:`stop`."""

    def __init__(self, name: str, cmd: Sequence[str], ready_url: str, log_path: Path, env: Optional[dict] = None):
        self.name = name
        self.cmd = list(cmd)
        self.ready_url = ready_url
        self.log_path = Path(log_path)
        self.env = env
        self.proc: Optional[subprocess.Popen] = None

    def start(self, timeout_s: float) -> ManagedServer:
        """Start the process and return once ``ready_url`` answers 200; raise ServerError otherwise."""
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        # the child gets its own copy of the log descriptor; ours is closed as soon as Popen returns
        with open(self.log_path, "ab", buffering=0) as log:
            try:
                # start_new_session: the server and anything it forks share one process group we can kill.
                self.proc = subprocess.Popen(self.cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                             env=self.env, start_new_session=True)
            except OSError as exc:
                raise ServerError(f"{self.name}: cannot start {self.cmd[0]!r}: {exc}") from None
        # pid and start time: `mergegate stop` must never kill an unrelated process that reused the pid
        self.log_path.with_suffix(".pid").write_text(f"{self.proc.pid} {_start_ticks(self.proc.pid)}\n")
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            self.raise_if_dead("exited before it was ready")
            if _answers(self.ready_url):
                return self
            time.sleep(0.25)
        self.stop()
        raise ServerError(f"{self.name}: not ready after {timeout_s:.0f}s ({self.ready_url})", tail(self.log_path))

    def alive(self) -> bool:
        """Return True while the process runs."""
        return self.proc is not None and self.proc.poll() is None

    def raise_if_dead(self, what: str = "died") -> None:
        """Raise ServerError with the log tail if the process has exited."""
        if self.proc is not None and self.proc.poll() is not None:
            raise ServerError(f"{self.name}: server {what} (exit code {self.proc.returncode})", tail(self.log_path))

    def stop(self, grace_s: float = 10.0) -> None:
        """Stop the process group: SIGTERM, then SIGKILL after ``grace_s``. Safe to call twice."""
        if self.proc is None:
            return
        deadline = time.monotonic() + grace_s
        if self.proc.poll() is None:
            _signal_group(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(grace_s)
            except subprocess.TimeoutExpired:
                _signal_group(self.proc.pid, signal.SIGKILL)
                self.proc.wait(5)
        # The leader's exit is not the end: vLLM's engine runs in child processes, and the GPU's memory is free only
        # when they are gone. Wait for the whole group (they got the SIGTERM too), then kill what is left.
        if not _group_gone(self.proc.pid, deadline):
            _signal_group(self.proc.pid, signal.SIGKILL)
            _group_gone(self.proc.pid, time.monotonic() + 5)
        self.log_path.with_suffix(".pid").unlink(missing_ok=True)

    def __enter__(self) -> ManagedServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _start_ticks(pid: int) -> str:
    """Return the process's start time in clock ticks since boot (Linux /proc), or '?' where unknown."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return "?"
    return stat.rsplit(")", 1)[1].split()[19]  # field 22; the name in parentheses may hold spaces


def _same_process_running(pid: int, ticks: str) -> bool:
    """Return True while ``pid`` is the process started at ``ticks`` and is not a zombie."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return False
    return fields[19] == ticks and fields[0] != "Z"


def stop_leftovers(log_dir: Path, grace_s: float = 10.0) -> list[int]:
    """Stop the server process groups recorded in ``log_dir/*.pid`` that still run; return their pids.

    For the cleanup step of a CI job (``mergegate stop``): a self-hosted runner
    keeps processes between jobs, so a server a crashed job left behind would
    hold the GPU. A pid whose start time no longer matches is someone else's.
    """
    stopped = []
    for pidfile in sorted(Path(log_dir).glob("*.pid")):
        try:
            pid_text, ticks = (pidfile.read_text().split() + ["?"])[:2]
            pid = int(pid_text)
        except (OSError, ValueError):
            pidfile.unlink(missing_ok=True)
            continue
        if ticks != "?" and _same_process_running(pid, ticks):
            _signal_group(pid, signal.SIGTERM)
            deadline = time.monotonic() + grace_s
            while time.monotonic() < deadline and _same_process_running(pid, ticks):
                time.sleep(0.1)
            _signal_group(pid, signal.SIGKILL)
            stopped.append(pid)
        pidfile.unlink(missing_ok=True)
    return stopped


def _group_gone(pgid: int, deadline: float) -> bool:
    """Return True once no live process is left in group ``pgid`` (zombies waiting for init count as gone), polling until ``deadline``."""
    while True:
        alive = False
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                fields = stat.read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if fields[2] == str(pgid) and fields[0] != "Z":  # field 5: the process group; field 3: the state
                alive = True
                break
        if not alive:
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.1)


def _signal_group(pid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, sig)


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as resp:
            return resp.status == 200
    except (urllib.error.URLError, OSError, ValueError):
        return False
