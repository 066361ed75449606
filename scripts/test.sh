#!/usr/bin/env bash
# The project's own tests (they start one real llama.cpp server and share it).
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/bootstrap.sh --vllm   # and a real vLLM on CPU, in .venv-vllm (tests/test_vllm_engine.py)
exec .venv/bin/python -m pytest tests -q -p no:cacheprovider --durations=15 "$@"
