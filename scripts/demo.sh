#!/usr/bin/env bash
# The main job on the embedded CPU default: install, serve, evaluate, report. Two pull-request stories:
#   ./scripts/demo.sh             a LoRA fine-tune that earns its GO        (mergegate.yaml → results/)
#   ./scripts/demo.sh forgetful   the same data trained far too hard: NO-GO (mergegate.forgetful.yaml → results-forgetful/)
# Both compare against the same prompted baseline, whose answers the first story caches for the second.
# Further arguments go to `mergegate run`. Exit code: 0 GO, 1 NO-GO, 2 INCOMPLETE or invalid input.
set -euo pipefail
cd "$(dirname "$0")/.."
config=mergegate.yaml
case "${1:-}" in
  good) shift ;;
  forgetful) config=mergegate.forgetful.yaml; shift ;;
esac
./scripts/bootstrap.sh
exec .venv/bin/mergegate run --config "$config" "$@"
