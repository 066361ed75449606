"""A small GitHub REST API client: authentication, pagination, retries that respect rate limits.

Only what the PR gate needs. Retries follow GitHub's documented rules
(docs.github.com, "Rate limits for the REST API"): on 403/429 with
``x-ratelimit-remaining: 0`` wait until ``x-ratelimit-reset``; with
``retry-after`` wait that long; a secondary limit without either waits
``secondary_wait_s`` (GitHub says at least a minute) growing exponentially;
5xx and connection errors back off exponentially. The token never appears in
an error message.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, Optional

import httpx

from ..errors import GitHubError

__all__ = ["GitHubClient", "RetryPolicy", "DEFAULT_API_URL"]

DEFAULT_API_URL = "https://api.github.com"
API_VERSION = "2022-11-28"


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how long to wait. ``max_wait_s`` caps any single wait (a reset an hour away is not worth it)."""

    attempts: int = 5
    backoff_s: float = 2.0
    secondary_wait_s: float = 60.0
    max_wait_s: float = 300.0


class GitHubClient:
    """Calls ``api_url`` with ``token``; every method returns parsed JSON or raises :class:`GitHubError`."""

    def __init__(self, token: str, api_url: str = DEFAULT_API_URL, *, retry: RetryPolicy = RetryPolicy(),
                 timeout_s: float = 30.0, sleep: Callable[[float], None] = time.sleep, log: Callable[[str], None] = print):
        if not token:
            raise GitHubError("no GitHub token: set GITHUB_TOKEN")
        self.retry = retry
        self._sleep = sleep
        self._log = log
        self._http = httpx.Client(base_url=api_url.rstrip("/"), timeout=timeout_s, follow_redirects=True, headers={
            "Authorization": f"Bearer {token}",
            "Accept": "application/vnd.github+json",
            "X-GitHub-Api-Version": API_VERSION,
            "User-Agent": "mergegate",
        })

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> GitHubClient:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    # -- requests -------------------------------------------------------------------
    def request(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        """Return the successful response of ``method url``, retrying what GitHub says may be retried."""
        last = "no attempt"
        status = 0
        for attempt in range(1, self.retry.attempts + 1):
            try:
                resp = self._http.request(method, url, **kwargs)
            except httpx.TransportError as exc:
                last, status = f"{type(exc).__name__}: {exc}", 0
                wait = self.retry.backoff_s * 2 ** (attempt - 1)
            else:
                if resp.status_code < 400:
                    return resp
                status = resp.status_code
                last = f"HTTP {status}: {_message(resp)}"
                wait = self._retry_wait(resp, attempt)
                if wait is None:
                    raise GitHubError(f"{method} {url} failed: {last}", status)
            if attempt == self.retry.attempts:
                break
            wait = min(wait, self.retry.max_wait_s)
            self._log(f"mergegate: GitHub {method} {url}: {last}; retry {attempt}/{self.retry.attempts - 1} in {wait:.1f} s")
            self._sleep(wait)
        raise GitHubError(f"{method} {url} failed after {self.retry.attempts} attempt(s): {last}", status)

    def _retry_wait(self, resp: httpx.Response, attempt: int) -> Optional[float]:
        """Return seconds to wait before retrying ``resp``, or None when it must not be retried."""
        h = resp.headers
        rate_limited = resp.status_code == 429 or (resp.status_code == 403 and (
            h.get("x-ratelimit-remaining") == "0" or "retry-after" in h or "rate limit" in _message(resp).lower()))
        if rate_limited:
            if "retry-after" in h:
                return _float(h["retry-after"], self.retry.secondary_wait_s)
            if h.get("x-ratelimit-remaining") == "0" and "x-ratelimit-reset" in h:
                return max(0.0, _float(h["x-ratelimit-reset"], time.time()) - time.time()) + 1.0
            return self.retry.secondary_wait_s * 2 ** (attempt - 1)
        if resp.status_code >= 500:
            return self.retry.backoff_s * 2 ** (attempt - 1)
        return None  # 4xx: our request is wrong or not allowed; retrying will not help

    def json(self, method: str, url: str, **kwargs: Any) -> Any:
        """Return the JSON body of ``method url``; a body that is not JSON is an error."""
        resp = self.request(method, url, **kwargs)
        try:
            return resp.json()
        except ValueError:
            raise GitHubError(f"{method} {url}: the response is not JSON: {resp.text[:200]!r}", resp.status_code) from None

    def paginate(self, url: str, params: Optional[dict[str, Any]] = None) -> Iterator[Any]:
        """Yield every item of a list endpoint, following ``Link: rel="next"`` pages."""
        next_url: Optional[str] = url
        query: Optional[dict[str, Any]] = {"per_page": 100, **(params or {})}
        while next_url:
            resp = self.request("GET", next_url, params=query)
            try:
                page = resp.json()
            except ValueError:
                raise GitHubError(f"GET {next_url}: the response is not JSON", resp.status_code) from None
            if not isinstance(page, list):
                raise GitHubError(f"GET {next_url}: expected a list, got {type(page).__name__}", resp.status_code)
            yield from page
            next_url = resp.links.get("next", {}).get("url")
            query = None  # the next link carries its own query string (params={} would strip it: an endless first page)


def _message(resp: httpx.Response) -> str:
    try:
        body = resp.json()
    except ValueError:
        return resp.text[:200]
    return str(body.get("message", ""))[:200] if isinstance(body, dict) else str(body)[:200]


def _float(value: str, default: float) -> float:
    try:
        return float(value)
    except ValueError:
        return default
