"""The servers of one run: one per distinct checkpoint, shared by roles that can share it."""

from __future__ import annotations

import json
import os
import sys
import urllib.parse
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

from ..config.loader import LoadedConfig
from ..config.models import ModelSpec
from ..errors import ServerError
from .engines import (
    build_command,
    identity,
    ready_path,
    request_extras,
    resolve_adapter,
    resolve_model_path,
    served_model,
    server_env,
    server_key,
)
from .process import ManagedServer, _answers, free_port

__all__ = ["Endpoint", "ServerFleet"]


@dataclass
class Endpoint:
    """Where and how to query one role's model."""

    role: str
    base_url: str
    model: str
    engine: str
    api_key: str
    identity: Optional[dict[str, Any]]
    system_prompt: Optional[str]
    extra_body: dict[str, Any]
    server: Optional[ManagedServer] = None
    version: Optional[str] = None  # the engine's version as its server reports it (known even when the model is not cacheable)

    def raise_if_dead(self) -> None:
        """Raise ServerError (with log tail) if this endpoint's managed server has exited."""
        if self.server is not None:
            self.server.raise_if_dead()


class ServerFleet:
    """Starts what the config needs, hands out :class:`Endpoint` per role, stops it all on exit."""

    def __init__(self, loaded: LoadedConfig, log_dir: Path):
        self.loaded = loaded
        self.log_dir = Path(log_dir)
        self.servers: list[ManagedServer] = []
        self.endpoints: dict[str, Endpoint] = {}
        self._by_key: dict[str, ManagedServer] = {}  # one server per distinct command: two roles of one model share it

    def start(self, roles: Optional[list[str]] = None) -> dict[str, Endpoint]:
        """Start servers (deduplicated) and return the endpoint of each role (default: every role the config serves)."""
        try:
            for role, spec in self.loaded.config.serving_roles().items():
                if roles is None or role in roles:
                    self.endpoints[role] = self.serve(role, spec)
        except BaseException:
            self.stop()
            raise
        return self.endpoints

    def serve(self, role: str, spec: ModelSpec) -> Endpoint:
        """Return the endpoint of ``spec`` for ``role``, starting its server unless an identical one runs (or it is external).

        Used for the config's roles and for what later phases need, such as the
        benchmarks' reference models: every server stops with the fleet.
        """
        if spec.engine == "external":
            assert spec.base_url is not None  # the config requires it for external endpoints
            base = spec.base_url.rstrip("/")
            if not _answers(base + "/models"):
                raise ServerError(f"{role}: external endpoint {base} does not answer GET /models")
            key = os.environ.get(spec.api_key_env, "") if spec.api_key_env else "EMPTY"
            return Endpoint(role, base, served_model(spec, role), spec.engine, key or "EMPTY",
                            identity(spec, role, spec.model), spec.system_prompt, request_extras(spec))
        path = resolve_model_path(spec.model, self.loaded.root)
        adapter = resolve_adapter(spec, self.loaded.root)
        server = self._server(server_key(spec, role, path, adapter), role.replace(":", "-"),
                              lambda port: build_command(spec, role, path, port, adapter), ready_path(spec.engine), server_env(spec))
        ready_port = urllib.parse.urlparse(server.ready_url).port
        version = _served_version(f"http://127.0.0.1:{ready_port}") if spec.engine == "vllm" else None
        return Endpoint(role, f"http://127.0.0.1:{ready_port}/v1", served_model(spec, role), spec.engine, "EMPTY",
                        identity(spec, role, path, adapter, version), spec.system_prompt, request_extras(spec), server, version)

    def scoring_server(self, role: str, gguf_path: str, alias: str, adapter: Optional[str] = None) -> ManagedServer:
        """Return mergegate's log-probability server for ``gguf_path`` (and its GGUF LoRA ``adapter``), started once.

        lm-eval's loglikelihood tasks read it.
        """
        lora = ["--lora", adapter] if adapter else []
        return self._server(json.dumps(["scorer", gguf_path, adapter]), f"scorer-{role.replace(':', '-')}",
                            lambda port: [sys.executable, "-m", "mergegate.serving.logprobs", "--model", gguf_path, "--alias", alias,
                                          "--port", str(port), *lora], "/v1/models")

    def _server(self, key: str, name: str, command: Callable[[int], list[str]], ready: str,
                env: Optional[dict[str, str]] = None) -> ManagedServer:
        """Return the server started for ``key``, starting it on a free port first."""
        if key not in self._by_key:
            port = free_port()
            server = ManagedServer(name, command(port), f"http://127.0.0.1:{port}{ready}", self.log_dir / f"{name}.log", env)
            self.servers.append(server)
            server.start(self.loaded.config.generation.server_start_timeout_s)
            self._by_key[key] = server
        return self._by_key[key]

    def stop(self) -> None:
        """Stop every server this fleet started."""
        for server in self.servers:
            server.stop()

    def __enter__(self) -> dict[str, Endpoint]:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _served_version(root: str) -> Optional[str]:
    """Return the version a vLLM server reports (``GET /version``): it may run in an environment other than ours."""
    try:
        with urllib.request.urlopen(root + "/version", timeout=10) as resp:
            return str(json.loads(resp.read())["version"])
    except (OSError, ValueError, KeyError):
        return None
