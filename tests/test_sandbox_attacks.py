"""Attacks on the sandbox's in-process layer and on the report, from issue 13.

- Programs that switch the audit hook off (clear its lists, patch
  ``posixpath.realpath``, write through ``os.open(..., dir_fd=...)``, replace the
  hook's code) and then write to the host: under bubblewrap nothing of the host
  is mounted writable, so the file never appears.
- Early exits (``os._exit(0)``, ``sys.exit(0)``, rewriting the harness's exit
  codes) never pass, under every backend.
- A program that reads a file of the project (a secret marker, the repository's
  ``.git/config``) and prints it, raises with it, or forges the harness's
  failure record cannot get it into the failure's detail (what the PR comment
  shows); under bubblewrap it cannot open the file at all.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from mergegate.sandbox import BACKENDS, SandboxLimits, available, run_python

FAST = SandboxLimits(timeout_s=3, memory_mb=256, output_kb=64)
MARKER = "MARKER_s3cr3t_7f3a9c"
REPO = Path(__file__).resolve().parents[1]
needs_bwrap = pytest.mark.skipif(not available("bwrap"), reason="bubblewrap (bwrap) does not work on this machine")
every_backend = pytest.mark.parametrize("backend", [
    pytest.param(b, id=b, marks=pytest.mark.skipif(not available(b), reason=f"the {b} sandbox backend does not work here"))
    for b in BACKENDS])


def hook_attacks(target: Path) -> dict[str, str]:
    """Return name -> program: each first tries to disarm the audit hook, then writes ``target`` on the host."""
    write = f"open({str(target)!r}, 'w').write('escaped')\n"
    return {
        "clear the forbidden lists": (
            "import __main__\n"
            "for name in ('FORBIDDEN', '_FORBIDDEN', 'PATH_EVENTS', '_PATH_EVENTS'):\n"
            "    try:\n        getattr(__main__, name).clear()\n    except Exception:\n        pass\n"
            "    setattr(__main__, name, frozenset())\n" + write),
        "patch realpath": (
            "import os, posixpath\n"
            "posixpath.realpath = os.path.realpath = lambda p, *a, **k: os.getcwd()\n" + write),
        "dir_fd": (
            f"import os\nfd = os.open({str(target.parent)!r}, os.O_RDONLY)\n"
            f"w = os.open({target.name!r}, os.O_WRONLY | os.O_CREAT, 0o644, dir_fd=fd)\nos.write(w, b'escaped')\n"),
        "replace the hook's code": (
            "import gc, types\n"
            "for f in gc.get_objects():\n"
            "    if isinstance(f, types.FunctionType) and f.__name__ in ('hook', 'check_open', 'inside', 'refuse'):\n"
            "        try:\n            f.__code__ = (lambda *a, **k: True).__code__\n        except Exception:\n            pass\n"
            "        for cell in f.__closure__ or ():\n"
            "            try:\n"
            "                cell.cell_contents = frozenset() if isinstance(cell.cell_contents, frozenset) else cell.cell_contents\n"
            "            except ValueError:\n                pass\n" + write),
        # this one does disarm the in-process layer (see docs/security.md, the threat model): only the kernel boundary is left
        "rebind the hook's closure": (
            "import gc, os, types\ncwd = os.getcwd()\n"
            "for f in gc.get_objects():\n"
            "    if isinstance(f, types.FunctionType) and f.__name__ == 'inside' and f.__closure__:\n"
            "        for cell in f.__closure__:\n"
            "            if getattr(cell.cell_contents, '__name__', '') == 'realpath':\n"
            "                cell.cell_contents = lambda p, *a, **k: cwd\n" + write),
    }


@needs_bwrap
@pytest.mark.parametrize("audit_hook", [True, False], ids=["with-hook", "kernel-only"])
def test_disarming_the_audit_hook_does_not_let_a_program_write_to_the_host(tmp_path, audit_hook):
    outside = tmp_path / "outside"
    outside.mkdir()
    outside.chmod(0o777)  # writable by anyone: only the sandbox can stop the write
    limits = SandboxLimits(timeout_s=3, memory_mb=256, output_kb=64, audit_hook=audit_hook)
    for name, program in hook_attacks(outside / "escaped.txt").items():
        res = run_python(program, "", limits, backend="bwrap")
        assert not res.passed, (name, res)
        assert not (outside / "escaped.txt").exists(), name


EARLY_EXITS = {
    "os._exit(0)": "import os\nos._exit(0)\n",
    "sys.exit(0)": "import sys\nsys.exit(0)\n",
    "raise SystemExit": "raise SystemExit\n",
    "exit codes rewritten": ("import __main__\nfor n in ('SYNTAX', 'ASSERTION', 'RAISED', 'BLOCKED', 'MEMORY', 'CPU', 'OUTPUT'):\n"
                             "    setattr(__main__, n, 0)\n"),
    "atexit": "import atexit, os\natexit.register(lambda: os._exit(0))\n",
}


@every_backend
def test_a_program_that_exits_early_never_passes(backend):
    for name, program in EARLY_EXITS.items():
        res = run_python(f"def add(a, b):\n    return a - b\n{program}", "assert add(2, 3) == 5\n", FAST, backend=backend)
        assert not res.passed, (name, res)


@pytest.fixture
def project(tmp_path, monkeypatch):
    """A project folder (the evaluation's working directory) holding a file with a secret marker."""
    (tmp_path / "secrets.env").write_text(f"TOKEN={MARKER}\n")
    monkeypatch.chdir(tmp_path)
    return tmp_path


def leaking_programs(path: Path) -> dict[str, tuple[str, str]]:
    """Return name -> (program, tests): each reads ``path`` and tries to put it into the failure's detail."""
    read = f"data = open({str(path)!r}).read()\n"
    forge = ("import json, os, sys\nf = sys._getframe(0)\n"
             "while f and 'opts' not in f.f_locals:\n    f = f.f_back\n"
             "os.write(f.f_locals['opts']['done_fd'], json.dumps(RECORD).encode())\nos._exit(CODE)\n")
    return {
        "print and fail": (read + "print(data)\nimport sys\nprint(data, file=sys.stderr)\n", "assert False\n"),
        "raise with it": (read + "raise ValueError(data)\n", ""),
        "assert with it": (read + "assert False, data\n", ""),
        "exception class named after it": (read + "raise type(data.split('=')[1].strip(), (Exception,), {})()\n", ""),
        "stderr then a test-failure exit": (read + "import os, sys\nsys.stderr.write('AssertionError: ' + data)\n"
                                            "sys.stderr.flush()\nos._exit(11)\n", ""),
        "forged record (type)": (read + "RECORD = {'type': data, 'file': 'tests.py', 'line': 1}\nCODE = 11\n" + forge, "x = 1\n"),
        "forged record (event)": (read + "RECORD = {'type': 'SandboxViolation', 'event': data}\nCODE = 13\n" + forge, ""),
        "forged record (file)": (read + "RECORD = {'type': 'ValueError', 'file': data, 'line': 1}\nCODE = 12\n" + forge, ""),
    }


def _secret_files(project: Path) -> list[tuple[Path, str]]:
    files = [(project / "secrets.env", MARKER)]
    git_config = REPO / ".git" / "config"
    if git_config.is_file():
        files.append((git_config, "[core]"))  # in every git config; never in a detail
    return files


@every_backend
def test_what_a_program_reads_never_reaches_the_failure_detail(backend, project):
    for path, marker in _secret_files(project):
        for name, (program, tests) in leaking_programs(path).items():
            res = run_python(program, tests, FAST, backend=backend)
            assert not res.passed, (path, name, res)
            assert marker not in res.detail, (path, name, res.detail)
            if backend == "bwrap":  # the file is not there at all
                assert "FileNotFoundError" in res.detail, (path, name, res.detail)


@needs_bwrap
def test_under_bwrap_the_project_and_the_repository_cannot_be_opened(project):
    # the repository folder itself may exist as an empty mount point on the way to its .venv: its files do not
    paths = [str(p) for p, _ in _secret_files(project)] + [str(project), str(REPO / ".git"), str(REPO / "README.md"),
                                                           str(REPO / "src")]
    program = ("import os\nopened = []\n"
               f"for p in {paths!r}:\n"
               "    try:\n        os.listdir(p) if os.path.isdir(p) else open(p).read()\n        opened.append(p)\n"
               "    except OSError:\n        pass\n")
    res = run_python(program, "assert opened == [], opened\n", FAST, backend="bwrap")
    assert res.passed, res
