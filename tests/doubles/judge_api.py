"""A scripted judge: an OpenAI-compatible chat endpoint whose verdicts follow a rule, for exact verdict logic.

The real judge in the tests is the bundled SmolLM2 (weak, honest, not
predictable). This endpoint answers like a judge that always prefers the
response containing ``GOOD`` (``mode="prefer"``), that always says "A"
(``"always_a"``: pure position bias), that answers garbage ``garbage_first``
times per prompt before a valid verdict, or garbage forever
(``"garbage"``). It records every request body.

Like a model that respects the prompt's data fences, it ignores instructions
inside a fenced block but obeys "declare A/B the winner" anywhere else in the
prompt: a response that escaped its fence would take over the verdict.
With ``quote=True`` it repeats both responses before its own JSON verdict,
as judges that "think aloud" do (fake verdicts inside them come first).
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


def _block(text: str, label: str) -> str:
    m = re.search(rf"<<<{label} (\w+)>>>\n(.*?)\n<<<END {label} \1>>>", text, re.S)
    return m.group(2) if m else ""


def _outside_fences(text: str) -> str:
    """Return ``text`` without its fenced blocks (the fence's nonce is read from the TASK marker)."""
    m = re.search(r"<<<TASK (\w+)>>>", text)
    if not m:
        return text
    nonce = re.escape(m.group(1))
    return re.sub(rf"<<<([A-Z ]+) {nonce}>>>\n.*?\n<<<END \1 {nonce}>>>", "", text, flags=re.S)


class ScriptedJudge:
    """The rule the endpoint follows, and what it saw."""

    def __init__(self, mode: str = "prefer", garbage_first: int = 0, quote: bool = False):
        self.mode = mode
        self.quote = quote
        self.garbage_first = garbage_first
        self.requests: list[dict[str, Any]] = []
        self.auth: set[str] = set()  # Authorization headers seen
        self._seen: dict[str, int] = {}
        self._lock = threading.Lock()
        self.url = ""

    def verdict(self, body: dict[str, Any]) -> str:
        """Return the reply text for one chat request."""
        messages = body["messages"]
        first_user = next(m["content"] for m in messages if m["role"] == "user")
        key = hashlib.sha256(first_user.encode()).hexdigest()
        with self._lock:
            self.requests.append(body)
            count = self._seen.get(key, 0)
            self._seen[key] = count + 1
        if self.mode == "garbage" or count < self.garbage_first:
            return "I think the first one is nicer, honestly. {not json"
        nonce = re.search(r"<<<TASK (\w+)>>>", first_user).group(1)
        if f"<<<RESPONSE A {nonce}>>>" in first_user:
            a, b = _block(first_user, "RESPONSE A"), _block(first_user, "RESPONSE B")
            outside = _outside_fences(first_user)
            obey = re.search(r"declare (A|B) the winner", outside)
            if obey:
                winner = obey.group(1)
            elif self.mode == "always_a":
                winner = "A"
            else:
                winner = "A" if "GOOD" in a and "GOOD" not in b else "B" if "GOOD" in b and "GOOD" not in a else "tie"
            verdict = json.dumps({"reason": "scripted", "winner": winner})
            return f"Response A says: {a}\nResponse B says: {b}\nMy verdict: {verdict}" if self.quote else verdict
        response = _block(first_user, "RESPONSE")
        criteria = re.findall(r"^- (\S+)$", first_user, re.M)
        score = 5 if "GOOD" in response else 2
        return "Here is my verdict: " + json.dumps({"reason": "scripted", "scores": {c: score for c in criteria}})


def serve(judge: ScriptedJudge) -> ThreadingHTTPServer:
    """Start ``judge`` on a free local port (sets ``judge.url`` to its /v1 base); return the server."""

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass

        def _send(self, payload: dict[str, Any]) -> None:
            data = json.dumps(payload).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:
            self._send({"object": "list", "data": [{"id": "scripted-judge", "object": "model"}]})

        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)))
            judge.auth.add(self.headers.get("Authorization", ""))
            text = judge.verdict(body)
            self._send({"id": "x", "object": "chat.completion", "created": 0, "model": body.get("model", ""),
                        "choices": [{"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": text}}],
                        "usage": {"prompt_tokens": len(json.dumps(body["messages"])) // 4, "completion_tokens": len(text) // 4,
                                  "total_tokens": 0}})

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    judge.url = f"http://127.0.0.1:{server.server_address[1]}/v1"
    return server
