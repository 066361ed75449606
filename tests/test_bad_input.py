"""Bad input: every malformed suite or config gives one line naming file and line, exit 2, no traceback.

Each file under data/malformed and data/bad_configs states on its first line
what it must produce: ``# expect: line=N <message fragment>``.
"""

import re
import subprocess
import sys
from pathlib import Path

import pytest

from mergegate.cli import main

DATA = Path(__file__).parent / "data"
SUITES = sorted((DATA / "malformed").glob("*.yaml"))
CONFIGS = sorted((DATA / "bad_configs").glob("*.yaml"))


def _expectation(path: Path) -> tuple[int, str]:
    m = re.match(r"# expect: line=(\d+) (.+)", path.read_text().splitlines()[0])
    assert m, f"{path} lacks its '# expect:' line"
    return int(m.group(1)), m.group(2).strip()


def _assert_one_clear_line(err: str, path: Path) -> None:
    line, fragment = _expectation(path)
    lines = [x for x in err.strip().splitlines() if x]
    assert len(lines) == 1, err
    assert "Traceback" not in err
    assert f"{path}:{line}: " in lines[0], lines[0]
    assert fragment in lines[0], lines[0]


def test_corpus_is_large_enough():
    assert len(SUITES) + len(CONFIGS) >= 15


@pytest.mark.parametrize("path", SUITES, ids=[p.stem for p in SUITES])
def test_malformed_suite(path, capsys, tmp_path):
    code = main(["validate", "--root", str(tmp_path), str(path)])
    assert code == 2
    _assert_one_clear_line(capsys.readouterr().err, path)


@pytest.mark.parametrize("path", CONFIGS, ids=[p.stem for p in CONFIGS])
def test_malformed_config(path, capsys):
    code = main(["validate", "--config", str(path), str(DATA / "malformed" / "..")])  # config fails first
    assert code == 2
    _assert_one_clear_line(capsys.readouterr().err, path)


def test_missing_suite_file(capsys, tmp_path):
    missing = tmp_path / "nope.yaml"
    assert main(["validate", "--root", str(tmp_path), str(missing)]) == 2
    err = capsys.readouterr().err
    assert f"{missing}: file not found" in err and "Traceback" not in err


@pytest.mark.parametrize("name", ["03_unknown_check.yaml", "04_duplicate_id.yaml"])
def test_real_subprocess_exit_code_and_no_traceback(name, tmp_path):
    """The installed command, as a user runs it."""
    path = DATA / "malformed" / name
    proc = subprocess.run([sys.executable, "-m", "mergegate.cli", "validate", "--root", str(tmp_path), str(path)],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    _assert_one_clear_line(proc.stderr, path)


def test_run_refuses_bad_suite_before_starting_servers(tmp_path):
    """`mergegate run` validates every suite first: exit 2, one line, no server log written."""
    (tmp_path / "eval_suites").mkdir()
    bad = tmp_path / "eval_suites" / "bad.yaml"
    bad.write_text((DATA / "malformed" / "16_unknown_check_field.yaml").read_text())
    proc = subprocess.run([sys.executable, "-m", "mergegate.cli", "run", "--root", str(tmp_path)],
                          capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert proc.returncode == 2, proc.stderr
    _assert_one_clear_line(proc.stderr, bad)
    assert not (tmp_path / "results" / "logs").exists()


def test_shipped_config_and_suites_are_valid(capsys):
    root = Path(__file__).resolve().parents[1]
    assert main(["validate", "--root", str(root)]) == 0  # the demo's config and its suites
    assert capsys.readouterr().out.startswith("ok: 3 suite(s), 468 case(s)")
    assert main(["validate", "--root", str(root), str(root / "eval_suites")]) == 0  # every suite, the examples too
    out = capsys.readouterr().out
    assert out.startswith("ok: 11 suite(s)") and out.rstrip().endswith("1 calibration set(s)")
    assert main(["validate", "--config", str(root / "mergegate.forgetful.yaml"), "--root", str(root)]) == 0
    assert main(["validate", "--config", str(root / "mergegate.gpu.yaml"), "--root", str(root)]) == 0


def test_a_bad_calibration_file_names_file_and_line(tmp_path, capsys):
    (tmp_path / "eval_suites").mkdir()
    (tmp_path / "eval_suites" / "x.calibration.yaml").write_text(
        "format: 1\nname: x\nitems:\n  - id: a\n    prompt: p\n    response_a: r\n    response_b: s\n    human: [A, C]\n")
    (tmp_path / "mergegate.yaml").write_text("models:\n  candidate: {engine: external, model: m, base_url: 'http://x/v1'}\n"
                                             "  baseline: {engine: external, model: m, base_url: 'http://x/v1'}\n")
    assert main(["validate", "--root", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"mergegate: error: {tmp_path / 'eval_suites' / 'x.calibration.yaml'}:8:") and "human" in err, err
    assert "\n" not in err


@pytest.mark.parametrize("text", [
    "a: 1\nb: [1, 2.5, true, null, '3', 2020-01-01, ~, 0x1f, 1e3, .inf]\nc: |\n  block\n  text\n",
    "base: &b {x: 1, y: [2, 3]}\nthing:\n  <<: *b\n  y: 3\nother: *b\n",
    "- &a [1, 2]\n- *a\n- {<<: [{p: 1}, {p: 2, q: 3}], r: 4}\n- !!str 12\n- !!binary aGVsbG8=\n",
    "",
    "cases:\n  - id: 'x'\n    prompt: \"multi\\nline\"\n    checks: [{type: contains, value: 'a: b'}]\n",
], ids=["scalars", "merge", "aliases-tags", "empty", "suite"])
def test_yaml_reader_agrees_with_pyyaml_safe_load(text, tmp_path):
    """Our line-recording reader builds the same data as PyYAML's own safe_load (the reference)."""
    import yaml

    from mergegate.yamlio import load_yaml

    path = tmp_path / "doc.yaml"
    path.write_text(text)
    assert load_yaml(path).data == yaml.safe_load(text)


def test_a_schema_ref_is_never_fetched_and_local_refs_work(tmp_path):
    """A json_schema `$ref` to the network is refused before anything is fetched; refs to files in the suite folder work."""
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    from mergegate.checks import REGISTRY, CheckContext, run_check

    hits = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            hits.append(self.path)
            self.send_response(200)
            self.end_headers()
            self.wfile.write(b'{"type": "object"}')

        def log_message(self, *a):
            pass

    srv = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{srv.server_address[1]}/s.json"
        (tmp_path / "s.yaml").write_text(f'name: s\ncases:\n  - id: a\n    prompt: hi\n    checks:\n'
                                         f'      - {{type: json_schema, schema: {{$ref: "{url}"}}}}\n')
        assert main(["validate", "--root", str(tmp_path), str(tmp_path / "s.yaml")]) == 2
        assert hits == []
    finally:
        srv.shutdown()
    # a relative ref to a file next to the suite, which refers on to another: loaded from the suite folder, and it decides
    (tmp_path / "defs").mkdir()
    (tmp_path / "defs" / "person.json").write_text('{"type": "object", "required": ["name"], '
                                                   '"properties": {"name": {"$ref": "name.json"}}}')
    (tmp_path / "defs" / "name.json").write_text('{"type": "string", "minLength": 2}')
    spec = REGISTRY["json_schema"].spec.model_validate({"type": "json_schema", "schema": {"$ref": "defs/person.json"}})
    prepared = REGISTRY["json_schema"].prepare(spec, tmp_path)
    ok = run_check(spec, CheckContext(output='{"name": "Ada"}', reference=None, latency_ms=None, suite_dir=tmp_path), prepared)
    bad = run_check(spec, CheckContext(output='{"name": "A"}', reference=None, latency_ms=None, suite_dir=tmp_path), prepared)
    assert ok.passed is True and bad.passed is False and "name" in bad.detail
