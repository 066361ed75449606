"""Where a run happens on GitHub Actions: repository, pull request, commit, links.

Read from the environment the runner provides (``GITHUB_*``) and the event
payload at ``GITHUB_EVENT_PATH``. Outside Actions every field is None.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Optional

from ..results import CiMeta

__all__ = ["ci_from_env", "run_url"]


def run_url(server_url: Optional[str], repository: Optional[str], run_id: Optional[str]) -> Optional[str]:
    """Return the web address of a workflow run, or None when a part is unknown."""
    if not (server_url and repository and run_id):
        return None
    return f"{server_url.rstrip('/')}/{repository}/actions/runs/{run_id}"


def ci_from_env(env: Mapping[str, str] = os.environ) -> Optional[CiMeta]:
    """Return the :class:`CiMeta` of this GitHub Actions run, or None outside Actions."""
    if env.get("GITHUB_ACTIONS") != "true" and not env.get("GITHUB_EVENT_PATH"):
        return None
    event: dict = {}
    path = env.get("GITHUB_EVENT_PATH")
    if path and Path(path).is_file():
        try:
            event = json.loads(Path(path).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            event = {}
    pr = event.get("pull_request") or {}
    server = env.get("GITHUB_SERVER_URL", "https://github.com")
    repo = env.get("GITHUB_REPOSITORY")
    run_id = env.get("GITHUB_RUN_ID")
    number = pr.get("number") if isinstance(pr.get("number"), int) else None
    head = pr.get("head") or {}
    return CiMeta(
        provider="github-actions", repository=repo, event=env.get("GITHUB_EVENT_NAME"), ref=env.get("GITHUB_REF"),
        sha=env.get("GITHUB_SHA"), pr_number=number, head_sha=head.get("sha") if number else None,
        base_ref=(pr.get("base") or {}).get("ref") if number else None,
        run_id=run_id, run_attempt=env.get("GITHUB_RUN_ATTEMPT"), run_url=run_url(server, repo, run_id),
    )
