"""An OpenAI-compatible server that answers every chat completion at once: to measure the harness, not a model.

    python bench/_instant_server.py PORT

Raw asyncio (no framework), keep-alive, one fixed completion body, so the
client side is what a benchmark against it measures.
"""

from __future__ import annotations

import asyncio
import json
import sys

BODY = json.dumps({"id": "x", "object": "chat.completion", "created": 0, "model": "bench",
                   "choices": [{"index": 0, "message": {"role": "assistant", "content": "Paris is the capital of France."},
                                "finish_reason": "stop"}],
                   "usage": {"prompt_tokens": 12, "completion_tokens": 7, "total_tokens": 19}}).encode()
MODELS = json.dumps({"object": "list", "data": [{"id": "bench", "object": "model"}]}).encode()


async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while True:
            head = await reader.readuntil(b"\r\n\r\n")
            length = 0
            for line in head.split(b"\r\n"):
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":", 1)[1])
            if length:
                await reader.readexactly(length)
            body = MODELS if head.startswith(b"GET") else BODY
            writer.write(b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: %d\r\n\r\n" % len(body) + body)
            await writer.drain()
    except (asyncio.IncompleteReadError, ConnectionError, asyncio.LimitOverrunError):
        pass
    finally:
        writer.close()


async def main(port: int) -> None:
    server = await asyncio.start_server(handle, "127.0.0.1", port, backlog=1024)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1])))
