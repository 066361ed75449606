"""A scoring server with correct prompt log-probabilities for GGUF models (the llama-cpp engine).

llama-cpp-python's ``/v1/completions`` with ``echo`` + ``logprobs`` returns,
for each prompt token *i*, the log-probability of token *i* under the
distribution that *follows* it (row *i* of the logits) instead of the one that
predicts it (row *i − 1*); the error cannot be undone from its response.
Loglikelihood benchmarks and perplexity therefore never use that path: this
server loads the same GGUF with ``logits_all`` and answers the requests they
make, computed directly:

- ``POST /v1/completions`` with ``echo: true``: per prompt (text or token ids)
  ``token_logprobs[i] = log softmax(logits[i-1])[token i]`` (``None`` for the
  first token), ``top_logprobs[i]`` the most likely token there, plus
  ``max_tokens`` (0 or 1) greedy tokens — the shape lm-eval's
  ``local-completions`` reads.
- ``GET /tokenizer_info``, ``POST /tokenize``, ``POST /detokenize``: the remote
  tokenizer lm-eval uses when no Hugging Face tokenizer is available.
- ``GET /v1/models``: readiness.

Run: ``python -m mergegate.serving.logprobs --model X.gguf --alias NAME --port P``.
Generation is not served here (the llama.cpp server does it).
"""

from __future__ import annotations

import argparse
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Optional

import numpy as np

__all__ = ["Scorer", "serve"]


class Scorer:
    """Prompt log-probabilities from a GGUF model, computed from its logits (one request at a time)."""

    def __init__(self, model_path: str, n_ctx: int = 2048, lora: Optional[str] = None):
        from llama_cpp import Llama

        self.llm = Llama(model_path, logits_all=True, n_ctx=n_ctx, verbose=False, lora_path=lora)
        self.n_ctx = n_ctx
        self.lock = threading.Lock()

    def tokenize(self, text: str, add_special: bool = False) -> list[int]:
        """Return the token ids of ``text`` (``add_special``: the model's BOS when it uses one)."""
        return self.llm.tokenize(text.encode("utf-8"), add_bos=add_special, special=True)

    def detokenize(self, ids: list[int]) -> str:
        """Return the text of ``ids``."""
        return self.llm.detokenize(ids).decode("utf-8", errors="replace")

    def token_text(self, i: int) -> str:
        """Return the text of one token."""
        return self.detokenize([i])

    def score(self, ids: list[int], extra: int = 0) -> dict[str, Any]:
        """Return OpenAI-style ``logprobs`` for ``ids`` plus ``extra`` (0 or 1) greedy tokens.

        ``token_logprobs[i]`` is the log-probability of token *i* given tokens
        ``0..i-1``; the first is None (nothing predicts it).
        """
        if not ids:
            raise ValueError("empty prompt")
        if len(ids) + extra > self.n_ctx:
            raise ValueError(f"prompt of {len(ids)} tokens exceeds the context of {self.n_ctx}")
        with self.lock:
            self.llm.reset()
            self.llm.eval(ids)
            logits = np.array(self.llm.scores[: len(ids)], dtype=np.float64)
        top = logits.max(axis=1, keepdims=True)
        logsm = logits - top - np.log(np.exp(logits - top).sum(axis=1, keepdims=True))
        tokens = [self.token_text(ids[0])]
        token_lp: list[Optional[float]] = [None]  # the first token has no context: no log-probability (as OpenAI's API)
        top_lp: list[Optional[dict[str, float]]] = [None]
        for i in range(1, len(ids)):
            best = int(np.argmax(logsm[i - 1]))
            tokens.append(self.token_text(ids[i]))
            token_lp.append(float(logsm[i - 1][ids[i]]))
            top_lp.append({self.token_text(best): float(logsm[i - 1][best])})
        text_out = ""
        if extra:
            nxt = int(np.argmax(logsm[-1]))
            text_out = self.token_text(nxt)
            tokens.append(text_out)
            token_lp.append(float(logsm[-1][nxt]))
            top_lp.append({text_out: float(logsm[-1][nxt])})
        offsets, pos = [], 0
        for t in tokens:
            offsets.append(pos)
            pos += len(t)
        return {"tokens": tokens, "token_logprobs": token_lp, "top_logprobs": top_lp, "text_offset": offsets, "generated": text_out}


def _prompts(prompt: Any) -> list[Any]:
    """Return the list of prompts in a completions body (a string, a list of ids, or a list of either)."""
    if isinstance(prompt, str) or (isinstance(prompt, list) and prompt and isinstance(prompt[0], int)):
        return [prompt]
    if isinstance(prompt, list):
        return prompt
    raise ValueError("'prompt' must be a string, a list of token ids, or a list of those")


def make_handler(scorer: Scorer, alias: str) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, fmt: str, *args: Any) -> None:  # quiet: one line per request would flood CI logs
            pass

        def _send(self, code: int, body: dict) -> None:
            data = json.dumps(body).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _body(self) -> dict:
            return json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")

        def do_GET(self) -> None:  # noqa: N802
            if self.path.rstrip("/") == "/v1/models":
                self._send(200, {"object": "list", "data": [{"id": alias, "object": "model", "owned_by": "mergegate"}]})
            elif self.path.rstrip("/") == "/tokenizer_info":
                eos, bos = scorer.llm.token_eos(), scorer.llm.token_bos()
                special = scorer.llm.detokenize
                self._send(200, {"eos_token": special([eos], special=True).decode("utf-8", "replace"),
                                 "bos_token": special([bos], special=True).decode("utf-8", "replace") if bos >= 0 else None,
                                 "pad_token": None, "model_max_length": scorer.n_ctx})
            else:
                self._send(404, {"error": {"message": f"no route {self.path}"}})

        def do_POST(self) -> None:  # noqa: N802
            try:
                body = self._body()
                path = self.path.rstrip("/")
                if path == "/tokenize":
                    self._send(200, {"tokens": scorer.tokenize(body["prompt"], bool(body.get("add_special_tokens", False)))})
                elif path == "/detokenize":
                    self._send(200, {"prompt": scorer.detokenize(list(body["tokens"]))})
                elif path == "/v1/completions":
                    self._send(200, self._complete(body))
                else:
                    self._send(404, {"error": {"message": f"no route {self.path}"}})
            except (ValueError, KeyError, TypeError, json.JSONDecodeError) as exc:
                self._send(400, {"error": {"message": f"{type(exc).__name__}: {exc}", "type": "invalid_request_error"}})

        def _complete(self, body: dict) -> dict:
            if not body.get("echo"):
                raise ValueError("this server scores prompts (echo: true); generation is served by the model server")
            extra = int(body.get("max_tokens") or 0)
            if extra > 1:
                raise ValueError("max_tokens must be 0 or 1 here")
            choices = []
            for index, p in enumerate(_prompts(body.get("prompt"))):
                ids = list(p) if isinstance(p, list) else scorer.tokenize(p)
                lp = scorer.score(ids, extra)
                text = "".join(lp["tokens"])
                choices.append({"index": index, "text": text, "finish_reason": "length",
                                "logprobs": {k: lp[k] for k in ("tokens", "token_logprobs", "top_logprobs", "text_offset")}})
            return {"id": f"cmpl-{time.time_ns()}", "object": "text_completion", "created": int(time.time()), "model": alias,
                    "choices": choices, "usage": {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0}}

    return Handler


def serve(model_path: str, alias: str, port: int, host: str = "127.0.0.1", n_ctx: int = 2048,
          lora: Optional[str] = None, ready: Optional[threading.Event] = None) -> None:
    """Serve until interrupted."""
    server = ThreadingHTTPServer((host, port), make_handler(Scorer(model_path, n_ctx, lora), alias))
    if ready is not None:
        ready.set()
    try:
        server.serve_forever()
    finally:
        server.server_close()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", required=True)
    ap.add_argument("--alias", required=True)
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--n_ctx", type=int, default=2048)
    ap.add_argument("--lora", help="a GGUF LoRA adapter applied to the model (the candidate's, as its chat server loads it)")
    args = ap.parse_args()
    serve(args.model, args.alias, args.port, args.host, args.n_ctx, lora=args.lora)


if __name__ == "__main__":
    main()
