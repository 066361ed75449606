"""An OpenAI-compatible server on 127.0.0.1 that misbehaves on a script (what no real server does on demand).

Actions, one per POST: "ok", "say:TEXT", "sleep" (2 s, then ok), "malformed" (not JSON), "length" (cut off at
max_tokens), "null" (content null), "reasoning" (content null, the tokens spent in reasoning_content),
"echo-key" (a 401 that repeats the Authorization header), "429" (with Retry-After), or any HTTP status code as a string.
After the script runs out every request is answered "ok".
"""

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

__all__ = ["FaultServer", "completion"]


def completion(text="ok"):
    return {"id": "x", "object": "chat.completion", "created": 0, "model": "m",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 3, "completion_tokens": 1, "total_tokens": 4}}


class FaultServer:
    """Answers /v1/chat/completions from a script of faults, then successfully."""

    def __init__(self, script):
        self.script = list(script)
        self.hits = 0
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *a):
                pass

            def do_GET(self):  # readiness: GET /v1/models
                body = json.dumps({"object": "list", "data": [{"id": "m", "object": "model"}]}).encode()
                self.send_response(200)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_POST(self):
                self.rfile.read(int(self.headers.get("content-length", 0)))
                outer.hits += 1
                action = outer.script.pop(0) if outer.script else "ok"
                if action == "sleep":
                    import time
                    time.sleep(2)
                    action = "ok"
                if action == "ok":
                    body, status, headers = json.dumps(completion()).encode(), 200, {}
                elif action.startswith("say:"):
                    body, status, headers = json.dumps(completion(action[4:])).encode(), 200, {}
                elif action == "malformed":
                    body, status, headers = b"{not json", 200, {}
                elif action == "length":  # half an answer: cut off at max_tokens
                    done = completion("o")
                    done["choices"][0]["finish_reason"] = "length"
                    body, status, headers = json.dumps(done).encode(), 200, {}
                elif action == "reasoning":  # a reasoning model that spent max_tokens thinking (vLLM's reasoning_content)
                    done = completion()
                    done["choices"][0]["message"].update(content=None, reasoning_content="Let me think step by step")
                    done["choices"][0]["finish_reason"] = "length"
                    body, status, headers = json.dumps(done).encode(), 200, {}
                elif action == "null":
                    done = completion()
                    done["choices"][0]["message"]["content"] = None
                    body, status, headers = json.dumps(done).encode(), 200, {}
                elif action == "echo-key":  # a 401 whose body repeats the credentials it was sent, as some proxies do
                    auth = self.headers.get("authorization", "")
                    body, status, headers = json.dumps({"error": {"message": f"invalid key in {auth!r}"}}).encode(), 401, {}
                elif action == "429":
                    body, status, headers = b'{"error": {"message": "slow down"}}', 429, {"retry-after": "0.2"}
                else:
                    body, status, headers = b'{"error": {"message": "boom"}}', int(action), {}
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(body)))
                for k, v in headers.items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(body)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self):
        self.httpd.shutdown()
