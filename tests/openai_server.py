"""A small OpenAI-compatible HTTP server on loopback, for tests that drive the real `openai` client.

Behaviour is chosen by the request's model name: `error-429` / `error-500` answer with that status,
`tools` answers with a tool call, `echo` answers a chat with its last user text, `no-usage` leaves
usage out (also from streams), `broken-stream` cuts the connection after two chunks. With `n`, choice
`i > 0` answers the same words and then `i`; streamed choices interleave chunk by chunk. Every request
body is kept in `requests` so tests can check what the client really sent.
"""

from __future__ import annotations

import json
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Iterator

WORDS_OUT = ["Rotate", "keys", "every", "90", "days."]


def _usage(prompt: int, completion: int) -> dict[str, Any]:
    return {
        "prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion,
        "prompt_tokens_details": {"cached_tokens": 2}, "completion_tokens_details": {"reasoning_tokens": 1},
    }  # fmt: skip


def _last_user_text(body: dict[str, Any]) -> str:
    for message in reversed(body.get("messages") or []):
        if message.get("role") == "user":
            content = message.get("content")
            return content if isinstance(content, str) else json.dumps(content)
    raw = body.get("input", body.get("prompt", ""))
    return raw if isinstance(raw, str) else json.dumps(raw)


class _Handler(BaseHTTPRequestHandler):
    server: OpenAIServer

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)) or b"{}")
        self.server.requests.append((self.path, body))
        model = str(body.get("model", ""))
        if model.startswith("error-"):
            status = int(model.split("-", 1)[1])
            self._json(status, {"error": {"message": f"simulated {status}", "type": "server_error", "code": None}})
            return
        route = self.path.split("?", 1)[0]
        if route.endswith("/embeddings"):
            inputs = body["input"] if isinstance(body["input"], list) else [body["input"]]
            data = [{"object": "embedding", "index": i, "embedding": [0.1 * (i + 1)] * 8} for i in range(len(inputs))]
            self._json(200, {"object": "list", "data": data, "model": model,
                             "usage": {"prompt_tokens": 3 * len(inputs), "total_tokens": 3 * len(inputs)}})  # fmt: skip
        elif route.endswith("/responses"):
            self._responses(body, model)
        elif route.endswith("/chat/completions") or route.endswith("/completions"):
            self._completions(body, model, chat=route.endswith("/chat/completions"))
        else:
            self._json(404, {"error": {"message": f"no route {self.path}"}})

    # --- chat and legacy completions -------------------------------------------------------------
    def _completions(self, body: dict[str, Any], model: str, chat: bool) -> None:
        prompt_tokens = len(_last_user_text(body).split())
        choices = max(1, int(body.get("n") or 1))
        tools = model == "tools"
        if not body.get("stream"):
            items = []
            for i in range(choices):
                if chat:
                    reply = _last_user_text(body) if model == "echo" else " ".join(WORDS_OUT)
                    reply += f" {i}" if i else ""
                    message: dict[str, Any] = {"role": "assistant", "content": None if tools else reply}
                    if tools:
                        message["tool_calls"] = [{"id": "call_1", "type": "function", "function": {
                            "name": "lookup", "arguments": '{"key": "rotation"}'}}]  # fmt: skip
                    items.append({"index": i, "message": message, "finish_reason": "tool_calls" if tools else "stop"})
                else:
                    items.append(
                        {"index": i, "text": " ".join(WORDS_OUT) + (f" {i}" if i else ""), "finish_reason": "stop"}
                    )
            answer: dict[str, Any] = {
                "id": "chatcmpl-1", "object": "chat.completion" if chat else "text_completion",
                "created": int(time.time()), "model": model + "-2024-07-18", "choices": items,
            }  # fmt: skip
            if model != "no-usage":
                answer["usage"] = _usage(prompt_tokens, len(WORDS_OUT))
            self._json(200, answer)
            return
        include_usage = bool((body.get("stream_options") or {}).get("include_usage")) and model != "no-usage"
        self._sse(self._completion_chunks(model, chat, choices, tools, include_usage, prompt_tokens),
                  broken=model == "broken-stream")  # fmt: skip

    def _completion_chunks(
        self, model: str, chat: bool, choices: int, tools: bool, include_usage: bool, prompt_tokens: int
    ) -> Iterator[dict[str, Any]]:
        base = {"id": "chatcmpl-1", "object": "chat.completion.chunk" if chat else "text_completion",
                "created": int(time.time()), "model": model + "-2024-07-18"}  # fmt: skip
        per_choice = [list(self._choice_chunks(base, i, chat, tools)) for i in range(choices)]
        for step in range(max(len(chunks) for chunks in per_choice)):  # choices interleave, as OpenAI's do
            for chunks in per_choice:
                if step < len(chunks):
                    yield chunks[step]
        if include_usage:
            yield {**base, "choices": [], "usage": _usage(prompt_tokens, len(WORDS_OUT))}

    def _choice_chunks(self, base: dict[str, Any], i: int, chat: bool, tools: bool) -> Iterator[dict[str, Any]]:
        if chat and tools:
            for piece in ('{"key": ', '"rotation"}'):
                call: dict[str, Any] = {"index": 0, "function": {"arguments": piece}}
                if piece.startswith("{"):
                    call.update(id="call_1", type="function")
                    call["function"]["name"] = "lookup"
                yield {**base, "choices": [{"index": i, "delta": {"tool_calls": [call]}, "finish_reason": None}]}
        else:
            for n, word in enumerate(WORDS_OUT if i == 0 else [*WORDS_OUT, str(i)]):
                text = word if n == 0 else " " + word
                choice = {"index": i, "delta": {"content": text}} if chat else {"index": i, "text": text}
                yield {**base, "choices": [{**choice, "finish_reason": None}]}
        end = {"index": i, "finish_reason": "tool_calls" if tools else "stop"}
        yield {**base, "choices": [{**end, "delta": {}} if chat else {**end, "text": ""}]}

    # --- the Responses API --------------------------------------------------------------------
    def _response(self, model: str, text: str, prompt_tokens: int) -> dict[str, Any]:
        return {
            "id": "resp_1", "object": "response", "created_at": int(time.time()), "model": model + "-2024-07-18",
            "status": "completed", "parallel_tool_calls": True, "tool_choice": "auto", "tools": [],
            "output": [{"type": "message", "id": "msg_1", "role": "assistant", "status": "completed",
                        "content": [{"type": "output_text", "text": text, "annotations": []}]}],
            "usage": {"input_tokens": prompt_tokens, "output_tokens": len(WORDS_OUT),
                      "total_tokens": prompt_tokens + len(WORDS_OUT),
                      "input_tokens_details": {"cached_tokens": 0},
                      "output_tokens_details": {"reasoning_tokens": 2}},
        }  # fmt: skip

    def _responses(self, body: dict[str, Any], model: str) -> None:
        prompt_tokens = len(_last_user_text(body).split())
        text = " ".join(WORDS_OUT)
        if not body.get("stream"):
            self._json(200, self._response(model, text, prompt_tokens))
            return

        def events() -> Iterator[dict[str, Any]]:
            created = {**self._response(model, "", prompt_tokens), "status": "in_progress", "output": []}
            yield {"type": "response.created", "response": created, "sequence_number": 0}
            for n, word in enumerate(WORDS_OUT):
                yield {"type": "response.output_text.delta", "item_id": "msg_1", "output_index": 0,
                       "content_index": 0, "delta": word if n == 0 else " " + word, "sequence_number": n + 1,
                       "logprobs": []}  # fmt: skip
            yield {"type": "response.completed", "response": self._response(model, text, prompt_tokens),
                   "sequence_number": len(WORDS_OUT) + 1}  # fmt: skip

        self._sse(events(), broken=model == "broken-stream", done=False)

    # --- plumbing ------------------------------------------------------------------------------
    def _json(self, status: int, value: Any) -> None:
        data = json.dumps(value).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _sse(self, chunks: Iterator[dict[str, Any]], broken: bool, done: bool = True) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        for n, chunk in enumerate(chunks):
            if broken and n == 2:
                self.wfile.flush()
                self.connection.shutdown(2)  # mid-stream: no terminating chunk, no [DONE]
                self.close_connection = True
                return
            event = f"event: {chunk['type']}\n" if "type" in chunk and not done else ""
            self._chunk(f"{event}data: {json.dumps(chunk)}\n\n".encode())
        if done:
            self._chunk(b"data: [DONE]\n\n")
        self.wfile.write(b"0\r\n\r\n")

    def _chunk(self, data: bytes) -> None:
        self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
        self.wfile.flush()


class OpenAIServer(ThreadingHTTPServer):
    """The server; `url` is the base URL to give `openai.OpenAI(base_url=...)`."""

    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.requests: list[tuple[str, dict[str, Any]]] = []
        self.url = f"http://127.0.0.1:{self.server_address[1]}/v1"
        self._thread = threading.Thread(target=self.serve_forever, name="openai-test-server", daemon=True)
        self._thread.start()

    def handle_error(self, request: Any, client_address: Any) -> None:
        if isinstance(sys.exc_info()[1], ConnectionError):
            return  # a client that stopped reading a stream early: expected in these tests
        super().handle_error(request, client_address)

    def stop(self) -> None:
        """Stop serving and close the socket."""
        self.shutdown()
        self.server_close()
