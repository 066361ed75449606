#!/usr/bin/env bash
# The main job on the embedded CPU default: install, serve, evaluate, report.
# Exit code: 0 GO, 1 NO-GO, 2 INCOMPLETE or invalid input.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/bootstrap.sh
exec .venv/bin/mergegate run "$@"
