"""Faults of the process and the output folder, run as real `mergegate run` subprocesses against a fault server.

Each asserts the exit code, the message and what is on disk: a gate that ends the
process, a gate that rewrites the results, a second run in the same folder, a run
killed before it stopped its server, a read-only and a full output folder.
"""

import fcntl
import json
import shutil
import subprocess
import sys
import textwrap

import pytest

from test_faults import _project, _run


def _mergegate(root, *args, timeout=300):
    return subprocess.run([sys.executable, "-m", "mergegate.cli", "run", "--root", str(root), *args], cwd=root,
                          capture_output=True, text=True, timeout=timeout)


def _one_line_error(done):
    lines = [ln for ln in done.stderr.splitlines() if ln.startswith("mergegate: error:")]
    assert "Traceback" not in done.stderr + done.stdout and len(lines) == 1, done.stderr[-3000:]
    return lines[0]


@pytest.mark.parametrize(("exit_call", "reason"), [
    ("os._exit(0)", "ended (exit status 0) without writing results.json"),
    ("os.kill(os.getpid(), 9)", "ended (signal 9) without writing results.json"),
    ("sys.exit(0)", "could not be evaluated: SystemExit: 0"),  # pytest catches this one: the gate errored
])
def test_a_gate_that_ends_the_process_is_incomplete(fault_server, tmp_path, exit_call, reason):
    root = _project(tmp_path, fault_server.url)
    (root / "results").mkdir()
    (root / "results" / "results.json").write_text(json.dumps({"verdict": "GO", "exit_code": 0}))  # a stale GO
    (root / "gates" / "test_quitter.py").write_text(f"import os, sys\n\ndef test_quit(results):\n    {exit_call}\n")
    done, run = _run(root)
    assert done.returncode == 2, done.stderr[-2000:]
    assert run["verdict"] == "INCOMPLETE" and run["exit_code"] == 2
    assert any(reason in r for r in run["reasons"]), run["reasons"]


_FORGERS = {
    "rewrites every results object it can find": """\
        import gc

        from mergegate.results import RunResults

        def test_forge(results):
            results.run.cases.clear()                       # the view it was handed
            for obj in gc.get_objects():                    # and every RunResults it can find in the process
                if isinstance(obj, RunResults):
                    obj.cases.clear()
        """,
    "replaces the decision rule": """\
        import mergegate.evaluation.core
        import mergegate.verdict

        def test_forge(results):
            go = lambda *a, **k: mergegate.verdict.Verdict("GO")
            mergegate.verdict.decide = mergegate.evaluation.core.decide = go
        """,
}


@pytest.mark.parametrize("forger", list(_FORGERS))
def test_a_gate_cannot_lift_the_verdict(fault_server, tmp_path, forger):
    root = _project(tmp_path, fault_server.url)
    (root / "eval_suites" / "s.yaml").write_text(textwrap.dedent("""\
        name: s
        cases:
          - {id: a, prompt: say o, blocking: true, checks: [{type: contains, value: zzz}]}
          - {id: b, prompt: say o again, checks: [{type: contains, value: o}]}
        """))
    (root / "gates" / "test_forger.py").write_text(textwrap.dedent(_FORGERS[forger]))
    done, run = _run(root)
    assert done.returncode == 2 and run["verdict"] == "INCOMPLETE", done.stderr[-2000:]
    assert any("the evaluation itself found NO-GO over 2 case(s) (blocking case failed: s::a)" in r
               and "changed while the gates ran" in r for r in run["reasons"]), run["reasons"]


def test_without_a_forger_the_same_run_is_no_go(fault_server, tmp_path):
    root = _project(tmp_path, fault_server.url)
    (root / "eval_suites" / "s.yaml").write_text((root / "eval_suites" / "s.yaml").read_text().replace("value: o}]}\n  - {id: b",
                                                                                                        "value: zzz}]}\n  - {id: b", 1))
    done, run = _run(root)
    assert done.returncode == 1 and run["verdict"] == "NO-GO" and len(run["cases"]) == 2, done.stderr[-2000:]
    assert "blocking case failed: s::a" in run["reasons"]


def test_a_second_run_in_the_same_folder_is_refused(fault_server, tmp_path):
    root = _project(tmp_path, fault_server.url)
    (root / "results").mkdir()
    with open(root / "results" / ".mergegate.lock", "a+") as held:  # a run in progress holds this lock
        fcntl.flock(held, fcntl.LOCK_EX)
        done = _mergegate(root)
    assert done.returncode == 2
    assert "another mergegate run is using this output folder" in _one_line_error(done)
    assert fault_server.hits == 0 and not (root / "results" / "results.json").exists()


def test_a_rerun_stops_the_server_a_killed_run_left_behind(fault_server, tmp_path):
    from mergegate.serving.process import _start_ticks

    root = _project(tmp_path, fault_server.url)
    logs = root / "results" / "logs"
    logs.mkdir(parents=True)
    leftover = subprocess.Popen(["sleep", "300"], start_new_session=True)  # the server of a run that was SIGKILLed
    try:
        (logs / "candidate.pid").write_text(f"{leftover.pid} {_start_ticks(leftover.pid)}\n")
        done, run = _run(root)
        assert leftover.wait(timeout=30) is not None, "the leftover server was orphaned"
        assert "stopped 1 server(s) a previous run" in done.stderr
        assert done.returncode == 0 and run["verdict"] == "GO", done.stderr[-2000:]
    finally:
        leftover.kill()
        leftover.wait()


def test_a_full_output_folder_is_one_line_and_exit_2(fault_server, tmp_path):
    root = _project(tmp_path, fault_server.url)
    (root / "results").mkdir()
    (root / "results" / ".results.json.tmp").symlink_to("/dev/full")  # writing results.json gets ENOSPC from the kernel
    done = _mergegate(root)
    assert done.returncode == 2
    assert "No space left on device" in _one_line_error(done)
    assert not (root / "results" / "results.json").exists()


@pytest.mark.skipif(shutil.which("unshare") is None, reason="needs unshare (util-linux) for a read-only bind mount")
def test_a_read_only_output_folder_is_one_line_and_exit_2(fault_server, tmp_path):
    root = _project(tmp_path, fault_server.url)
    out = root / "results"
    out.mkdir()
    # A real read-only file system (root ignores permission bits): a read-only bind mount in a private mount namespace.
    script = (f"mount --bind {out} {out} && mount -o remount,ro,bind {out} && "
              f"exec {sys.executable} -m mergegate.cli run --root {root}")
    probe = subprocess.run(["unshare", "--user", "--map-root-user", "--mount", "true"], capture_output=True)
    if probe.returncode != 0:
        pytest.skip(f"no user namespaces here: {probe.stderr.decode().strip()}")
    done = subprocess.run(["unshare", "--user", "--map-root-user", "--mount", "sh", "-c", script], cwd=root,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 2, done.stderr
    assert "Read-only file system" in _one_line_error(done)
    assert fault_server.hits == 0  # refused before any request


@pytest.mark.parametrize("fault_server", [["echo-key"] * 4], indirect=True)
def test_a_secret_an_endpoint_echoes_is_masked_everywhere(fault_server, tmp_path):
    import os

    secret = "sk-test-7f3a9c1e5b2d4f60"
    root = _project(tmp_path, fault_server.url)
    cfg = (root / "mergegate.yaml").read_text()
    (root / "mergegate.yaml").write_text(cfg.replace("model: m, base_url", "model: m, api_key_env: TEAM_KEY, base_url"))
    done = subprocess.run([sys.executable, "-m", "mergegate.cli", "run", "--root", str(root)], cwd=root, capture_output=True,
                          text=True, timeout=300, env={**os.environ, "TEAM_KEY": secret, "HF_TOKEN": "hf_abcdefghijklmnop"})
    assert done.returncode == 2 and fault_server.hits == 4, done.stderr[-2000:]  # 401s: the run is INCOMPLETE
    written = {p.name: p.read_text(errors="replace") for p in [*(root / "results").glob("*"), *(root / "results").glob("logs/*")]
               if p.is_file()}
    assert {"results.json", "report.md", "report.html", "junit.xml"} <= set(written)
    for name, text in {**written, "stdout": done.stdout, "stderr": done.stderr}.items():
        assert secret not in text, f"the key leaked into {name}"
    errors = [c["candidate"]["generation"]["error"] for c in json.loads(written["results.json"])["cases"]]
    assert errors and all("Bearer ***" in e for e in errors), errors  # the error is kept, its secret masked


def test_the_redactor_masks_every_configured_key_and_ci_token(monkeypatch, tmp_path):
    from mergegate.config import load_config
    from mergegate.redact import Redactor

    (tmp_path / "mergegate.yaml").write_text(textwrap.dedent("""\
        models:
          candidate: {engine: external, model: m, base_url: "http://127.0.0.1:9/v1", api_key_env: CAND_KEY}
          baseline: {engine: external, model: m, base_url: "http://127.0.0.1:9/v1", api_key_env: BASE_KEY}
        """))
    monkeypatch.setenv("CAND_KEY", "cand-secret-1")
    monkeypatch.setenv("BASE_KEY", "base-secret-22")
    monkeypatch.setenv("GITHUB_TOKEN", "ghs_0123456789")
    monkeypatch.setenv("HF_TOKEN", "EMPTY")  # placeholders and short values are not secrets
    r = Redactor.from_config(load_config(root=tmp_path).config)
    assert r.text("a cand-secret-1 b base-secret-22 c ghs_0123456789 EMPTY") == "a *** b *** c *** EMPTY"
    (tmp_path / "logs").mkdir()
    (tmp_path / "logs" / "x.log").write_text("token=ghs_0123456789\n")
    (tmp_path / "clean.txt").write_text("nothing here\n")
    assert r.files(tmp_path) == [tmp_path / "logs" / "x.log"]
    assert (tmp_path / "logs" / "x.log").read_text() == "token=***\n"
