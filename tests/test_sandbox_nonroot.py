"""The sandbox as a user other than root (GitHub's runners are not root), under every backend that works as that user.

Root hides problems: ``RLIMIT_NPROC`` is not enforced for uid 0 (so threads
worked only as root), and root can read the 0700 directories ``mkdtemp``
makes. When the tests run as root, a driver runs the sandbox as uid/gid 65534
(``setpriv``, else ``subprocess``'s ``user=``); otherwise it runs as the
current user. It checks that a correct program passes, threads work, a write
outside the working directory fails and the network is unreachable.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

NOBODY = 65534
SRC = Path(__file__).resolve().parents[1] / "src"

DRIVER = r"""
import json, os, sys
from mergegate.sandbox import BACKENDS, SandboxLimits, available, run_python

cfg = json.loads(sys.argv[1])
target = cfg["target"]
programs = {
    "correct": ("def add(a, b):\n    return a + b\n", "assert add(2, 3) == 5\n", True),
    "threads": ("import threading\nr = []\nts = [threading.Thread(target=r.append, args=(i,)) for i in range(4)]\n"
                "[t.start() for t in ts]\n[t.join() for t in ts]\n", "assert sorted(r) == [0, 1, 2, 3]\n", True),
    "scratch file": ("open('scratch.txt', 'w').write('ok')\n", "assert open('scratch.txt').read() == 'ok'\n", True),
    "write outside": (f"open({target!r}, 'w').write('escaped')\n", "", True),
    "network": (f"import socket\nsocket.create_connection(('127.0.0.1', {cfg['port']}), timeout=2).close()\n", "", True),
    "write outside, kernel only": (f"open({target!r}, 'w').write('escaped')\n", "", False),
    "network, kernel only": (f"import socket\nsocket.create_connection(('127.0.0.1', {cfg['port']}), timeout=2).close()\n", "", False),
}
out = {"uid": os.getuid(), "backends": {}}
for backend in BACKENDS:
    if not available(backend):
        out["backends"][backend] = None
        continue
    results = {}
    for name, (program, tests, hook) in programs.items():
        if not hook and backend == "limits":
            continue  # no kernel boundary to test on its own
        res = run_python(program, tests, SandboxLimits(timeout_s=5, memory_mb=256, output_kb=64, audit_hook=hook), backend=backend)
        results[name] = {"passed": res.passed, "failure": res.failure, "detail": res.detail, "isolation": res.isolation,
                         "escaped": os.path.exists(target)}
        if os.path.exists(target):  # unshare's namespaces alone do not guard the host's files: see the next run clean
            os.remove(target)
    out["backends"][backend] = results
print(json.dumps(out))
"""


def _as_other_user() -> tuple[list[str], dict]:
    """Return the command prefix and Popen arguments that run Python as a user other than root."""
    python = [sys.executable, "-I", "-c"]  # -I: the source comes from PYTHONPATH-free sys.path plus SRC below
    if os.geteuid() != 0:
        return python, {}
    setpriv = shutil.which("setpriv")
    if setpriv:
        return [setpriv, "--reuid", str(NOBODY), "--regid", str(NOBODY), "--clear-groups", *python], {}
    return python, {"user": NOBODY, "group": NOBODY, "extra_groups": []}


def _run_driver(code: str, *args: str, cwd: str) -> subprocess.CompletedProcess:
    prefix, kwargs = _as_other_user()
    env = {"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8", "HOME": cwd}
    setup = f"import sys; sys.path.insert(0, {str(SRC)!r})\n"
    return subprocess.run([*prefix, setup + code, *args], capture_output=True, text=True, timeout=600, cwd=cwd, env=env,
                          **kwargs)


@pytest.fixture
def shared_dir():
    """A folder any user can use: the driver's working directory and the write target's home."""
    path = Path(tempfile.mkdtemp(prefix="mergegate-nonroot-"))
    path.chmod(0o777)  # writable by anyone: only the sandbox can stop a write here
    yield path
    shutil.rmtree(path, ignore_errors=True)


def test_the_sandbox_works_and_contains_programs_as_a_non_root_user(shared_dir, listener):
    port, hits = listener
    if sys.platform != "linux":
        pytest.skip("the sandbox's backends beyond rlimits are Linux-only")
    preflight = _run_driver("import mergegate.sandbox", cwd=str(shared_dir))
    if preflight.returncode != 0:
        pytest.skip(f"uid {NOBODY} cannot run this Python or read mergegate's source here: {preflight.stderr.strip()[-200:]}")
    target = shared_dir / "escaped.txt"
    proc = _run_driver(DRIVER, json.dumps({"target": str(target), "port": port}), cwd=str(shared_dir))
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["uid"] != 0
    ran = {b: r for b, r in out["backends"].items() if r is not None}
    assert "limits" in ran, out  # the fallback always works
    for backend, results in ran.items():
        for name in ("correct", "threads", "scratch file"):
            assert results[name]["passed"], (backend, name, results[name])
        for name in ("write outside", "network"):
            assert not results[name]["passed"] and not results[name]["escaped"], (backend, name, results[name])
            assert results[name]["failure"] == "blocked", (backend, name, results[name])
        assert {r["isolation"] for r in results.values()} == {backend}
    for backend in ("bwrap", "namespaces"):
        if backend in ran:  # the kernel boundary alone: no route to this machine's listener
            assert not ran[backend]["network, kernel only"]["passed"], ran[backend]
    if "bwrap" in ran:  # and nothing of the host is writable
        kernel_write = ran["bwrap"]["write outside, kernel only"]
        assert not kernel_write["passed"] and not kernel_write["escaped"], kernel_write
    assert hits == []
    print(f"non-root (uid {out['uid']}) backends that ran: {sorted(ran)}")


def _python_for_nobody() -> str | None:
    """Return a Python that uid 65534 can start (this one, or the system's), or None."""
    from mergegate.sandbox.backends import interpreter

    for python in dict.fromkeys([interpreter(), "/usr/bin/python3", "/usr/local/bin/python3"]):
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            if python and subprocess.run([python, "-I", "-c", "pass"], user=NOBODY, group=NOBODY, extra_groups=[],
                                         capture_output=True, timeout=30, cwd="/").returncode == 0:
                return python
    return None


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() != 0, reason="only a root evaluation drops to uid 65534")
@pytest.mark.parametrize("backend", ["limits", "namespaces"])
def test_as_root_the_fallbacks_run_the_child_as_uid_65534_in_a_folder_it_can_write(backend, monkeypatch, tmp_path):
    """mkdtemp makes a 0700 folder owned by root: the sandbox hands it to uid 65534, which owns nothing else."""
    from mergegate.sandbox import SandboxLimits, backends
    from mergegate.sandbox.run import _run

    python = _python_for_nobody()
    if python is None:
        pytest.skip("no Python installation here is readable by uid 65534")
    if backend == "namespaces" and not shutil.which("unshare"):
        pytest.skip("unshare is not installed")
    monkeypatch.setattr(backends, "interpreter", lambda: python)
    program = ("import os, threading\nopen('scratch.txt', 'w').write('ok')\nr = []\n"
               "t = threading.Thread(target=r.append, args=(1,))\nt.start()\nt.join()\nuid = os.getuid()\n")
    res = _run(backends.Launch(backend, as_nobody=True), program,
               "assert (uid, r, open('scratch.txt').read()) == (65534, [1], 'ok')\n", SandboxLimits(timeout_s=10))
    if backend == "namespaces" and res.failure == "crashed":
        pytest.skip(f"unshare cannot create namespaces as uid 65534 here: {res.stderr.strip()[-200:]}")
    assert res.passed, res
    private = tmp_path / "root-only"  # pytest's tmp_path is root's and 0700: the kernel refuses, without the hook
    private.mkdir(mode=0o700)
    res = _run(backends.Launch(backend, as_nobody=True), f"open({str(private / 'x')!r}, 'w')\n", "",
               SandboxLimits(timeout_s=10, audit_hook=False))
    assert "PermissionError [EACCES" in res.detail and not (private / "x").exists(), res
