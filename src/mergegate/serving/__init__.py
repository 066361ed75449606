"""Serving: starting, probing and stopping model servers (llama-cpp, vLLM, external)."""

from .engines import build_command, engine_version, identity, ready_path, resolve_adapter, resolve_model_path
from .fleet import Endpoint, ServerFleet
from .process import ManagedServer, free_port, stop_leftovers, tail

__all__ = ["build_command", "engine_version", "identity", "ready_path", "resolve_adapter", "resolve_model_path",
           "Endpoint", "ServerFleet", "ManagedServer", "free_port", "stop_leftovers", "tail"]
