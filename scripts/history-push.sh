#!/usr/bin/env bash
# Appends a run's results to history.jsonl on the `mergegate-history` branch and
# pushes it. Used by the eval-gate workflow on pushes to the default branch.
# Usage: scripts/history-push.sh RESULTS_JSON
set -euo pipefail
# The workflow's checkout keeps no credentials; a token (contents: write) comes in GITHUB_TOKEN
# and reaches git alone, through the environment: not .git/config, not mergegate's process.
token="${GITHUB_TOKEN:-}"
unset GITHUB_TOKEN
git_remote() {
  if [ -z "$token" ]; then git "$@"; return; fi
  GIT_CONFIG_COUNT=1 GIT_CONFIG_KEY_0="http.${GITHUB_SERVER_URL:-https://github.com}/.extraheader" \
    GIT_CONFIG_VALUE_0="AUTHORIZATION: basic $(printf 'x-access-token:%s' "$token" | base64 | tr -d '\n')" git "$@"
}
results="$(cd "$(dirname "$1")" && pwd)/$(basename "$1")"
branch=mergegate-history
tree="$(mktemp -d)"
trap 'git worktree remove --force "$tree" >/dev/null 2>&1 || true' EXIT
if git_remote fetch --quiet origin "$branch"; then
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
git_remote -C "$tree" push --quiet origin "HEAD:refs/heads/$branch"
echo "history: appended to $branch"
