"""The code-execution sandbox against hostile programs: each is contained and classified, and the evaluation goes on.

Every test that runs programs runs under each isolation backend that works on
this machine (``bwrap``, ``namespaces``, ``limits``; the others are skipped with
the reason). Two layers are tested separately: the product path (backend,
seccomp, limits and the audit hook together) and, for the backends with a
kernel boundary, the kernel layers alone (``audit_hook=False``), so that
neither hides a hole in the other. ``test_sandbox_attacks.py`` holds the
attacks on the audit hook and the leak tests; ``test_sandbox_nonroot.py`` runs
the sandbox as uid 65534.
"""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path

import pytest

from mergegate.checks import REGISTRY, CheckContext, run_check
from mergegate.checks.code import extract_code
from mergegate.sandbox import BACKENDS, SandboxLimits, SandboxUnavailable, available, isolation, run_python
from mergegate.sandbox.classify import classify

FAST = SandboxLimits(timeout_s=3, memory_mb=256, output_kb=64)
LOOP = SandboxLimits(timeout_s=1, memory_mb=256, output_kb=64)  # for programs that never end
ADD = "assert add(2, 3) == 5\n"


def _backend_param(name: str):
    return pytest.param(name, id=name, marks=pytest.mark.skipif(not available(name), reason=f"the {name} sandbox backend "
                                                                "does not work on this machine"))


every_backend = pytest.mark.parametrize("backend", [_backend_param(b) for b in BACKENDS])
kernel_backend = pytest.mark.parametrize("backend", [_backend_param(b) for b in ("bwrap", "namespaces")])


@every_backend
def test_a_correct_program_passes_and_wrong_ones_are_classified(backend):
    ok = run_python("def add(a, b):\n    return a + b\n", ADD, FAST, backend=backend)
    assert ok.passed and ok.isolation == backend, ok
    cases = {
        "def add(a, b) return a + b": ("syntax_error", "SyntaxError: expected ':' (solution.py, line 1)"),
        "def add(a, b):\n    return a - b": ("test_failure", "AssertionError (tests.py, line 1: assert add(2, 3) == 5)"),
        "def add(a, b):\n    return a / 0": ("runtime_error", "ZeroDivisionError (solution.py, line 2: return a / 0)"),
        "import time\ntime.sleep(60)": ("timeout", "wall-clock limit of 1 s reached; killed"),  # sleeping uses no CPU
    }
    for program, (kind, text) in cases.items():
        res = run_python(program, ADD, LOOP, backend=backend)
        assert (res.passed, res.failure, res.isolation) == (False, kind, backend), (program, res)
        assert text in res.detail, res.detail


@every_backend
def test_threads_work(backend):
    """Threads are not processes: seccomp refuses only fork/vfork/clone without CLONE_THREAD (no RLIMIT_NPROC)."""
    program = "import threading\nr = []\nts = [threading.Thread(target=r.append, args=(i,)) for i in range(4)]\n" \
              "[t.start() for t in ts]\n[t.join() for t in ts]\n"
    assert run_python(program, "assert sorted(r) == [0, 1, 2, 3]", FAST, backend=backend).passed


@every_backend
def test_an_endless_loop_is_always_a_timeout(backend):
    """Whichever limit ends it (CPU seconds on a quiet machine, the wall clock on a busy one) it is a timeout."""
    spin = run_python("while True:\n    pass", ADD, LOOP, backend=backend)
    assert (spin.passed, spin.failure) == (False, "timeout"), spin
    assert spin.detail in ("timeout: CPU limit of 1 s reached", "timeout: wall-clock limit of 1 s reached; killed")


def test_both_limits_and_the_cpu_signal_classify_as_a_timeout_naming_the_limit():
    sources = {"solution.py": "while True: pass\n", "tests.py": ""}

    def kind(code: int, signum: int = 0, timed_out: bool = False):
        return classify(code, signum, timed_out, False, {}, sources, 3.0, 3, 256, 64)

    assert kind(15) == ("timeout", "timeout: CPU limit of 3 s reached")  # the child's SIGXCPU handler
    assert kind(-1, signal.SIGXCPU) == ("timeout", "timeout: CPU limit of 3 s reached")  # handler reset by the program
    assert kind(-9, signal.SIGKILL, timed_out=True) == ("timeout", "timeout: wall-clock limit of 3 s reached; killed")
    assert kind(14) == ("resource", "resource: memory limit of 256 MiB reached")
    assert kind(16)[0] == "resource" and kind(-9, signal.SIGKILL)[0] == "crashed"


@pytest.fixture
def secret(monkeypatch):
    monkeypatch.setenv("MERGEGATE_TEST_SECRET", "s3cr3t-value")
    return "s3cr3t-value"


def hostile(outside: Path, port: int) -> dict[str, tuple[str, str]]:
    """Return name -> (program, tests) for programs that try to escape; the tests pass only if they got out."""
    return {
        "infinite loop": ("while True:\n    pass\n", ""),
        "fork bomb": ("import os\nwhile True:\n    os.fork()\n", ""),
        "memory bomb": ("blocks = []\nwhile True:\n    blocks.append(bytearray(50 * 1024 * 1024))\n", ""),
        "write outside": (f"open({str(outside)!r}, 'w').write('escaped')\n", ""),
        "read secrets": ("import os, glob\nfound = 's3cr3t-value' in str(os.environ)\n"
                         "for p in glob.glob('/proc/*/environ'):\n    found = found or b's3cr3t-value' in open(p, 'rb').read()\n",
                         "assert found\n"),
        "network": (f"import socket\nsocket.create_connection(('127.0.0.1', {port}), timeout=2).close()\n", ""),
        "kill parent": ("import os, signal\nos.kill(os.getppid(), signal.SIGKILL)\n", ""),
        "signal the evaluation": (f"import os\nos.kill({os.getpid()}, 0)\n", ""),  # alive and visible?
        "output flood": ("while True:\n    print('x' * 10000)\n", ""),
        "ctypes escape": ("import ctypes\nctypes.CDLL(None).fork()\n", ""),
    }


@every_backend
def test_hostile_programs_are_contained_and_reported(backend, tmp_path, secret, listener):
    port, hits = listener
    outside = tmp_path / "escaped.txt"
    expected = {"infinite loop": "timeout", "memory bomb": "resource", "output flood": "resource"}
    for name, (program, tests) in hostile(outside, port).items():
        res = run_python(program, tests, LOOP if name == "infinite loop" else FAST, backend=backend)
        assert not res.passed, (name, res)
        assert res.failure == expected.get(name, "blocked"), (name, res)
        assert secret not in res.stdout + res.stderr
    assert not outside.exists() and hits == []
    # the evaluation goes on: this process is alive and the sandbox still works
    assert run_python("x = 1", "assert x == 1", FAST, backend=backend).passed


@kernel_backend
def test_the_kernel_layers_contain_them_without_the_audit_hook(backend, tmp_path, secret, listener):
    port, hits = listener
    limits = SandboxLimits(timeout_s=3, memory_mb=256, output_kb=64, audit_hook=False)
    programs = hostile(tmp_path / "escaped.txt", port)
    names = ["fork bomb", "memory bomb", "read secrets", "network", "kill parent", "signal the evaluation", "output flood"]
    results = {name: run_python(*programs[name], limits, backend=backend) for name in names}
    results["infinite loop"] = run_python(*programs["infinite loop"], SandboxLimits(timeout_s=1, audit_hook=False), backend=backend)
    assert "BlockingIOError [EAGAIN" in results["fork bomb"].detail  # seccomp refused the fork
    assert results["memory bomb"].failure == "resource"
    assert results["read secrets"].failure == "test_failure"  # ran, and found no secret anywhere it could see
    # no network namespace route to this machine's listener: unreachable (unshare) or refused (bwrap's own loopback)
    assert results["network"].failure == "runtime_error" and hits == []
    assert "ENETUNREACH" in results["network"].detail or "ECONNREFUSED" in results["network"].detail
    assert "ProcessLookupError" in results["signal the evaluation"].detail  # another PID namespace: not even visible
    # it can only signal its own namespace: unshare's child kills itself; under bwrap, its init ignores the signal
    assert results["kill parent"].failure == ("crashed" if backend == "namespaces" else None)
    assert results["output flood"].failure == "resource" and results["infinite loop"].failure == "timeout"
    assert all(not r.passed for name, r in results.items() if name != "kill parent")
    if backend == "bwrap":  # nothing of the host is writable, with or without the hook
        res = run_python(*programs["write outside"], limits, backend=backend)
        assert not res.passed and "FileNotFoundError" in res.detail and not (tmp_path / "escaped.txt").exists()


@every_backend
def test_the_working_directory_is_fresh_writable_and_removed(backend):
    res = run_python("import os\nopen('scratch.txt', 'w').write('ok')\nprint(os.getcwd())\nprint(sorted(os.listdir('.')))",
                     "assert open('scratch.txt').read() == 'ok'", FAST, backend=backend)
    assert res.passed, res
    cwd = res.stdout.splitlines()[0]
    if backend == "bwrap":
        assert cwd == "/sandbox"  # a private tmpfs: nothing of it is on the host's disk
    else:
        assert "mergegate-sandbox-" in cwd and not Path(cwd).exists()
    assert "scratch.txt" in res.stdout and "escaped.txt" not in res.stdout


def _python_entries(folder: Path) -> list[str]:
    """The names under ``folder`` that lead to the Python installation (bwrap creates them as empty mount points)."""
    prefixes = {Path(sys.prefix).resolve(), Path(sys.base_prefix).resolve(), Path(sys.prefix), Path(sys.base_prefix)}
    return sorted({p.relative_to(folder).parts[0] for p in prefixes if folder in p.parents})


@pytest.mark.skipif(not available("bwrap"), reason="bubblewrap (bwrap) does not work on this machine")
def test_bwrap_shows_the_program_only_the_system_and_python_read_only():
    repo, home = Path(__file__).resolve().parents[1], Path.home()
    program = (
        "import os, sys\n"
        f"seen = {{p: os.path.exists(p) for p in ({str(repo / 'src')!r}, {str(repo / '.git')!r}, {str(repo / 'README.md')!r}, "
        "'/etc')}\n"
        f"listed = {{p: sorted(os.listdir(p)) if os.path.isdir(p) else [] for p in ({str(repo)!r}, {str(home)!r}, '/tmp', '/var')}}\n"
        "def writable(p):\n"
        "    try:\n        open(p, 'w').close()\n        return True\n    except OSError:\n        return False\n"
        "probes = {p: writable(p) for p in ('/x', '/usr/x', '/dev/x', sys.prefix + '/x')}\n"
        "uid = os.getuid()\n"
    )
    tests = ("assert not any(seen.values()), seen\nassert not any(probes.values()), probes\nassert uid == 65534, uid\n"
             "assert os.environ.get('HOME') == '/sandbox' and 'MERGEGATE_TEST_SECRET' not in os.environ\n"
             # the repository, the home folder, /tmp and /var hold at most the (empty) path to the Python installation
             # (a clone under /tmp has its venv there)
             f"assert listed == {{{str(repo)!r}: {_python_entries(repo)!r}, {str(home)!r}: {_python_entries(home)!r}, "
             f"'/tmp': {_python_entries(Path('/tmp'))!r}, '/var': {_python_entries(Path('/var'))!r}}}, listed\n")
    res = run_python(program, tests, SandboxLimits(timeout_s=5, audit_hook=False), backend="bwrap")
    assert res.passed, res


def test_the_backend_can_be_forced_and_an_unknown_or_unavailable_one_is_an_error(monkeypatch):
    monkeypatch.setenv("MERGEGATE_SANDBOX", "limits")
    assert isolation() == "limits" and run_python("x = 1", "assert x == 1", FAST).isolation == "limits"
    monkeypatch.setenv("MERGEGATE_SANDBOX", "chroot")
    with pytest.raises(SandboxUnavailable, match="not a sandbox backend"):
        run_python("x = 1", "", FAST)
    monkeypatch.delenv("MERGEGATE_SANDBOX")
    strongest = next(b for b in BACKENDS if available(b))
    assert isolation() == strongest  # the strongest that works here is the default
    missing = [b for b in BACKENDS if not available(b)]
    if missing:
        with pytest.raises(SandboxUnavailable, match="does not work on this machine"):
            run_python("x = 1", "", FAST, backend=missing[0])


def test_code_is_extracted_from_fences_or_raw():
    assert extract_code("Here:\n```python\ndef f():\n    return 1\n```\nand usage:\n```\nf()\n```") == "def f():\n    return 1\n"
    assert extract_code("```\nx = 2\n```") == "x = 2\n"
    assert extract_code("```bash\nls\n```\n```py\ny = 3\n```") == "y = 3\n"
    assert extract_code("z = 4") == "z = 4"


def test_the_check_scores_pass_at_1_and_records_the_failure_kind_and_backend(tmp_path):
    spec = REGISTRY["code_tests"].spec(type="code_tests", tests="assert square(2) == 4\nassert square(3) == 9", timeout_s=1)

    def run(output: str):
        return run_check(spec, CheckContext(output=output, reference=None, latency_ms=None, suite_dir=tmp_path))

    ok = run("Sure!\n```python\ndef square(x):\n    return x * x\n```")
    assert (ok.score, ok.passed, ok.extra["failure"], ok.extra["isolation"]) == (1.0, True, None, isolation())
    bad = run("```python\ndef square(x):\n    return x + x\n```")
    assert (bad.score, bad.passed, bad.extra["failure"]) == (0.0, False, "test_failure")
    assert bad.detail == "test_failure: AssertionError (tests.py, line 2: assert square(3) == 9)"
    loop = run("```python\ndef square(x):\n    while True: pass\n```")
    assert loop.extra["failure"] == "timeout" and loop.passed is False
    assert run("I cannot write code.").extra["failure"] == "syntax_error"
    assert os.environ.get("MERGEGATE_TEST_SECRET") is None
