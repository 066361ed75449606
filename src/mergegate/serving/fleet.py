"""The servers of one run: one per distinct checkpoint, shared by roles that can share it."""

from __future__ import annotations

import os
import urllib.parse
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

from ..config.loader import LoadedConfig
from ..errors import ServerError
from .engines import build_command, identity, ready_path, request_extras, resolve_model_path, served_model, server_key
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

    def start(self, roles: Optional[list[str]] = None) -> dict[str, Endpoint]:
        """Start servers (deduplicated) and return the endpoint of each role (default: every role the config serves)."""
        cfg = self.loaded.config
        by_key: dict[str, ManagedServer] = {}
        try:
            for role, spec in cfg.serving_roles().items():
                if roles is not None and role not in roles:
                    continue
                if spec.engine == "external":
                    assert spec.base_url is not None  # the config requires it for external endpoints
                    base = spec.base_url.rstrip("/")
                    if not _answers(base + "/models"):
                        raise ServerError(f"{role}: external endpoint {base} does not answer GET /models")
                    key = os.environ.get(spec.api_key_env, "") if spec.api_key_env else "EMPTY"
                    self.endpoints[role] = Endpoint(role, base, served_model(spec, role), spec.engine, key or "EMPTY",
                                                    identity(spec, role, spec.model), spec.system_prompt, request_extras(spec))
                    continue
                path = resolve_model_path(spec.model, self.loaded.root)
                skey = server_key(spec, role, path)
                server = by_key.get(skey)
                if server is None:
                    port = free_port()
                    server = ManagedServer(role, build_command(spec, role, path, port),
                                           f"http://127.0.0.1:{port}{ready_path(spec.engine)}", self.log_dir / f"{role}.log")
                    self.servers.append(server)
                    server.start(cfg.generation.server_start_timeout_s)
                    by_key[skey] = server
                ready_port = urllib.parse.urlparse(server.ready_url).port
                self.endpoints[role] = Endpoint(role, f"http://127.0.0.1:{ready_port}/v1", served_model(spec, role), spec.engine,
                                                "EMPTY", identity(spec, role, path), spec.system_prompt,
                                                request_extras(spec), server)
        except BaseException:
            self.stop()
            raise
        return self.endpoints

    def stop(self) -> None:
        """Stop every server this fleet started."""
        for server in self.servers:
            server.stop()

    def __enter__(self) -> dict[str, Endpoint]:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
