#!/usr/bin/env bash
# Appends a run's results to history.jsonl on the `mergegate-history` branch and
# pushes it. Used by the eval-gate workflow on pushes to the default branch.
# Usage: scripts/history-push.sh RESULTS_JSON
set -euo pipefail
results="$(cd "$(dirname "$1")" && pwd)/$(basename "$1")"
branch=mergegate-history
tree="$(mktemp -d)"
trap 'git worktree remove --force "$tree" >/dev/null 2>&1 || true' EXIT
if git fetch --quiet origin "$branch"; then
  git worktree add --quiet --detach "$tree" FETCH_HEAD
else  # first entry: start the branch with no history of its own
  git worktree add --quiet --detach "$tree" HEAD
  git -C "$tree" checkout --quiet --orphan "$branch"
  git -C "$tree" rm -rfq --cached . && find "$tree" -mindepth 1 -maxdepth 1 ! -name .git -exec rm -rf {} +
fi
mergegate history append "$results" --file "$tree/history.jsonl"
git -C "$tree" add history.jsonl
if git -C "$tree" diff --cached --quiet; then
  echo "history: nothing new"; exit 0
fi
git -C "$tree" -c user.name="mergegate" -c user.email="mergegate@users.noreply.github.com" \
  commit --quiet -m "history: ${GITHUB_SHA:-$(git rev-parse HEAD)}"
git -C "$tree" push --quiet origin "HEAD:refs/heads/$branch"
echo "history: appended to $branch"
