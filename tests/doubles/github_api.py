"""A local HTTP double of the GitHub REST API endpoints mergegate and the workflows' scripts call.

The one fake the tests allow themselves: there is no GitHub here. It keeps
comments in memory and checks what a real GitHub would reject: the token, the
media-type and API-version headers, JSON bodies with exactly the documented
fields, the 65,536-character body limit, pagination through ``Link`` headers.
Faults (5xx, rate limits) are scripted per request.
"""

from __future__ import annotations

import json
import re
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Optional
from urllib.parse import parse_qs, urlsplit

BODY_LIMIT = 65536


@dataclass
class Seen:
    """One request the double received."""

    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: Any


@dataclass
class GitHubDouble:
    """State and script of the double; ``url`` is its API root (for GITHUB_API_URL)."""

    token: str = "ghs_test_token"
    repo: str = "acme/models"
    heads: dict[int, str] = field(default_factory=dict)  # PR number -> head sha
    comments: dict[int, list[dict]] = field(default_factory=dict)  # issue number -> comments
    # Actions runs, as the REST API lists them, each with its "path" (.github/workflows/x.yml) and its "jobs"
    workflow_runs: list[dict] = field(default_factory=list)
    faults: list[tuple[int, dict[str, str], str]] = field(default_factory=list)  # next responses to force
    requests: list[Seen] = field(default_factory=list)
    violations: list[str] = field(default_factory=list)
    bot_login: str = "github-actions[bot]"
    url: str = ""
    _next_id: int = 1000
    _lock: threading.Lock = field(default_factory=threading.Lock)

    # -- script --------------------------------------------------------------------
    def fail_next(self, status: int, times: int = 1, headers: Optional[dict[str, str]] = None, message: str = "Server Error") -> None:
        """Answer the next ``times`` requests with ``status`` (and ``headers``) instead of serving them."""
        self.faults += [(status, headers or {}, message)] * times

    def seed(self, number: int, n: int, login: str = "someone", body: str = "lgtm") -> None:
        """Add ``n`` comments by ``login`` to issue ``number``."""
        for _ in range(n):
            self._add(number, body, login, "User")

    def _add(self, number: int, body: str, login: str, kind: str) -> dict:
        self._next_id += 1
        c = {"id": self._next_id, "body": body, "user": {"login": login, "type": kind},
             "html_url": f"https://github.example/{self.repo}/pull/{number}#issuecomment-{self._next_id}"}
        self.comments.setdefault(number, []).append(c)
        return c

    def ours(self, number: int, marker: str) -> list[dict]:
        """Return the comments on ``number`` whose body starts with ``marker``."""
        return [c for c in self.comments.get(number, []) if c["body"].startswith(marker)]

    def calls(self, method: str, pattern: str) -> list[Seen]:
        """Return the requests with ``method`` whose path matches the regex ``pattern``."""
        return [r for r in self.requests if r.method == method and re.fullmatch(pattern, r.path)]

    # -- serving -------------------------------------------------------------------
    def handle(self, method: str, raw_path: str, headers: dict[str, str], raw: bytes) -> tuple[int, dict[str, str], Any]:
        parts = urlsplit(raw_path)
        path, query = parts.path, parse_qs(parts.query)
        body: Any = None
        if raw:
            try:
                body = json.loads(raw)
            except ValueError:
                body = "<not json>"
        with self._lock:
            self.requests.append(Seen(method, path, query, headers, body))
            if headers.get("authorization") != f"Bearer {self.token}":
                self.violations.append(f"{method} {path}: bad or missing Authorization")
                return 401, {}, {"message": "Bad credentials"}
            if "application/vnd.github+json" not in headers.get("accept", ""):
                self.violations.append(f"{method} {path}: Accept is {headers.get('accept')!r}")
            if headers.get("x-github-api-version") != "2022-11-28":
                self.violations.append(f"{method} {path}: X-GitHub-Api-Version is {headers.get('x-github-api-version')!r}")
            if self.faults:
                status, extra, message = self.faults.pop(0)
                return status, extra, {"message": message}
            return self._route(method, path, query, headers, body)

    def _route(self, method: str, path: str, query: dict, headers: dict, body: Any) -> tuple[int, dict[str, str], Any]:
        repo = re.escape(self.repo)
        if m := re.fullmatch(rf"/repos/{repo}/issues/(\d+)/comments", path):
            number = int(m[1])
            if method == "GET":
                return self._page(number, query)
            if method == "POST":
                bad = self._check_body(method, path, headers, body)
                if bad:
                    return bad
                return 201, {}, self._add(number, body["body"], self.bot_login, "Bot")
        if (m := re.fullmatch(rf"/repos/{repo}/issues/comments/(\d+)", path)) and method == "PATCH":
            bad = self._check_body(method, path, headers, body)
            if bad:
                return bad
            for comments in self.comments.values():
                for c in comments:
                    if c["id"] == int(m[1]):
                        if c["user"]["login"] != self.bot_login:
                            return 403, {}, {"message": "Resource not accessible by integration"}
                        c["body"] = body["body"]
                        return 200, {}, c
            return 404, {}, {"message": "Not Found"}
        if (m := re.fullmatch(rf"/repos/{repo}/pulls/(\d+)", path)) and method == "GET":
            number = int(m[1])
            if number not in self.heads:
                return 404, {}, {"message": "Not Found"}
            return 200, {}, {"number": number, "head": {"sha": self.heads[number]}}
        if (m := re.fullmatch(rf"/repos/{repo}/actions/workflows/([^/]+)/runs", path)) and method == "GET":
            sha = query.get("head_sha", [None])[0]
            runs = [{k: v for k, v in r.items() if k != "jobs"} for r in reversed(self.workflow_runs)  # newest first
                    if r["path"].rsplit("/", 1)[-1] == m[1] and sha in (None, r["head_sha"])]
            return 200, {}, {"total_count": len(runs), "workflow_runs": runs}
        if (m := re.fullmatch(rf"/repos/{repo}/actions/runs/(\d+)/jobs", path)) and method == "GET":
            for r in self.workflow_runs:
                if r["id"] == int(m[1]):
                    return 200, {}, {"total_count": len(r["jobs"]), "jobs": r["jobs"]}
            return 404, {}, {"message": "Not Found"}
        self.violations.append(f"unexpected {method} {path}")
        return 404, {}, {"message": "Not Found"}

    def _check_body(self, method: str, path: str, headers: dict, body: Any) -> Optional[tuple[int, dict, Any]]:
        if "application/json" not in headers.get("content-type", ""):
            self.violations.append(f"{method} {path}: Content-Type is {headers.get('content-type')!r}")
        if not isinstance(body, dict) or set(body) != {"body"} or not isinstance(body["body"], str):
            self.violations.append(f"{method} {path}: body must be {{'body': str}}, got {body!r:.100}")
            return 422, {}, {"message": "Invalid request."}
        if len(body["body"]) > BODY_LIMIT:
            self.violations.append(f"{method} {path}: body of {len(body['body'])} characters")
            return 422, {}, {"message": "Validation Failed", "errors": [{"field": "body", "code": "custom",
                                                                          "message": "body is too long (maximum is 65536 characters)"}]}
        return None

    def _page(self, number: int, query: dict) -> tuple[int, dict[str, str], Any]:
        per_page = min(int(query.get("per_page", ["30"])[0]), 100)
        page = int(query.get("page", ["1"])[0])
        items = self.comments.get(number, [])
        chunk = items[(page - 1) * per_page: page * per_page]
        headers = {}
        if page * per_page < len(items):
            nxt = f"{self.url}/repos/{self.repo}/issues/{number}/comments?per_page={per_page}&page={page + 1}"
            headers["Link"] = f'<{nxt}>; rel="next"'
        return 200, headers, chunk


def serve(double: GitHubDouble) -> tuple[ThreadingHTTPServer, threading.Thread]:
    """Start the double on a free local port (sets ``double.url``); return the server and its thread."""

    class Handler(BaseHTTPRequestHandler):
        def _do(self) -> None:
            raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            headers = {k.lower(): v for k, v in self.headers.items()}
            status, extra, payload = double.handle(self.command, self.path, headers, raw)
            data = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json; charset=utf-8")
            self.send_header("Content-Length", str(len(data)))
            for k, v in extra.items():
                self.send_header(k, v)
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST = do_PATCH = _do

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    double.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    return server, thread


def reset_in(seconds: float) -> str:
    """Return an ``x-ratelimit-reset`` value ``seconds`` from now (epoch seconds)."""
    return str(int(time.time() + seconds))
