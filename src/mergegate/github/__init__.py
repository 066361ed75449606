"""GitHub: the REST client, the sticky PR comment, and the Actions run context.

Names load on first use (PEP 562): a run reads only the Actions context, and
the REST client's ``httpx`` (with its CLI's click and pygments) costs ~50 ms
of every start otherwise.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .api import DEFAULT_API_URL, GitHubClient, RetryPolicy
    from .comment import CommentResult, check_head_sha, find_comment, upsert_comment
    from .context import ci_from_env, run_url

_WHERE = {"DEFAULT_API_URL": "api", "GitHubClient": "api", "RetryPolicy": "api", "CommentResult": "comment",
          "check_head_sha": "comment", "find_comment": "comment", "upsert_comment": "comment", "ci_from_env": "context",
          "run_url": "context"}
__all__ = ["DEFAULT_API_URL", "GitHubClient", "RetryPolicy", "CommentResult", "check_head_sha", "find_comment", "upsert_comment",
           "ci_from_env", "run_url"]


def __getattr__(name: str) -> Any:
    if name not in _WHERE:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f".{_WHERE[name]}", __name__), name)
