"""GitHub: the REST client, the sticky PR comment, and the Actions run context."""

from .api import DEFAULT_API_URL, GitHubClient, RetryPolicy
from .comment import CommentResult, check_head_sha, find_comment, upsert_comment
from .context import ci_from_env, run_url

__all__ = ["DEFAULT_API_URL", "GitHubClient", "RetryPolicy", "CommentResult", "check_head_sha", "find_comment", "upsert_comment",
           "ci_from_env", "run_url"]
