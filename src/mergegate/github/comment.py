"""The sticky PR comment: one per pull request, found by a hidden marker, updated in place.

``upsert_comment`` lists the pull request's issue comments (every page), and
PATCHes the first one whose body starts with the marker; otherwise it POSTs a
new one. A second run therefore updates and never duplicates.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from ..errors import GitHubError
from ..report import MARKER
from .api import GitHubClient

__all__ = ["CommentResult", "upsert_comment", "find_comment", "check_head_sha"]


@dataclass(frozen=True)
class CommentResult:
    """What ``upsert_comment`` did: ``action`` is 'created' or 'updated'."""

    action: str
    comment_id: int
    url: Optional[str]


def find_comment(gh: GitHubClient, repo: str, number: int, marker: str = MARKER) -> Optional[dict]:
    """Return our comment on ``repo#number`` (its body starts with ``marker``), or None."""
    for comment in gh.paginate(f"/repos/{repo}/issues/{number}/comments"):
        # Only the start counts: a human quoting our comment does not become our comment.
        if isinstance(comment, dict) and str(comment.get("body") or "").startswith(marker):
            return comment
    return None


def upsert_comment(gh: GitHubClient, repo: str, number: int, body: str, marker: str = MARKER) -> CommentResult:
    """Create or update the one mergegate comment on ``repo#number``; return what was done."""
    if not body.startswith(marker):
        body = f"{marker}\n{body}"
    existing = find_comment(gh, repo, number, marker)
    if existing is not None:
        try:
            data = gh.json("PATCH", f"/repos/{repo}/issues/comments/{existing['id']}", json={"body": body})
            return CommentResult("updated", int(data["id"]), data.get("html_url"))
        except GitHubError as exc:
            if exc.status not in (403, 404):
                raise
            # someone else's comment that starts with our marker, or deleted meanwhile: post our own
    data = gh.json("POST", f"/repos/{repo}/issues/{number}/comments", json={"body": body})
    return CommentResult("created", int(data["id"]), data.get("html_url"))


def check_head_sha(gh: GitHubClient, repo: str, number: int, expected: str) -> None:
    """Raise :class:`GitHubError` unless pull request ``number``'s head commit is ``expected``.

    The comment job reads the PR number from an artifact that code from the PR
    produced; this check stops such an artifact from steering the comment to
    another pull request.
    """
    pr = gh.json("GET", f"/repos/{repo}/pulls/{number}")
    head = (pr.get("head") or {}).get("sha") if isinstance(pr, dict) else None
    if head != expected:
        raise GitHubError(f"refusing to comment: PR #{number}'s head is {head}, but the evaluated run was for {expected}")
