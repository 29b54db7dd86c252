"""A small OpenAI-compatible HTTP server for tests: scripted, but speaks the real protocol.

``POST /v1/chat/completions`` answers like an OpenAI model would: tool calls for the chat
steps (scan -> diagnose -> recommend -> final reply), and, when asked for the ``ActionPlan``
function (structured output), a plan built from the tool results in the prompt. It can fail
(HTTP 500) or stall (longer than the client's timeout) on the first requests, to exercise
retries and timeouts, and it records every request.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from tests.fakes import template_from_prompt


@dataclass
class StubBehaviour:
    """What the stub does."""

    target: str = "S003"
    day: str = "2026-02-10"
    fail_first: int = 0
    stall_first: int = 0
    stall_seconds: float = 3.0
    always_fail: bool = False
    plan_errors: list[tuple[int, dict[str, Any]]] = field(default_factory=list)
    """Answers to the next plan requests (ActionPlan), in order: (HTTP status, error body)."""
    requests: list[dict[str, Any]] = field(default_factory=list)
    headers: list[dict[str, str]] = field(default_factory=list)
    served: int = 0


def _completion(model: str, message: dict[str, Any], finish: str) -> dict[str, Any]:
    return {
        "id": "chatcmpl-stub",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [{"index": 0, "message": message, "finish_reason": finish}],
        "usage": {"prompt_tokens": 120, "completion_tokens": 30, "total_tokens": 150},
    }


def _tool_message(name: str, args: dict[str, Any], n: int) -> dict[str, Any]:
    return {
        "role": "assistant",
        "content": None,
        "tool_calls": [
            {
                "id": f"call_{n}",
                "type": "function",
                "function": {"name": name, "arguments": json.dumps(args)},
            }
        ],
    }


def respond(body: dict[str, Any], behaviour: StubBehaviour) -> dict[str, Any]:
    """The scripted answer to one chat-completions request."""
    model = body.get("model", "stub")
    tools = [t["function"]["name"] for t in body.get("tools", [])]
    messages = body.get("messages", [])
    if tools == ["ActionPlan"]:
        prompt = "\n".join(str(m.get("content") or "") for m in messages)
        plan = template_from_prompt(prompt).model_dump(mode="json")
        return _completion(model, _tool_message("ActionPlan", plan, 99), "tool_calls")
    done = sum(1 for m in messages if m.get("role") == "tool")
    steps = [
        ("scan_anomalies", {"scope": "store", "ids": [behaviour.target], "day": behaviour.day}),
        ("diagnose", {"target": behaviour.target, "day": behaviour.day}),
        ("recommend_actions", {"target": behaviour.target, "day": behaviour.day}),
    ]
    if done < len(steps):
        name, args = steps[done]
        return _completion(model, _tool_message(name, args, done + 1), "tool_calls")
    return _completion(model, {"role": "assistant", "content": "The shortage explains it."}, "stop")


class _Handler(BaseHTTPRequestHandler):
    behaviour: StubBehaviour

    def log_message(self, *args: Any) -> None:  # keep test output clean
        return

    def do_POST(self) -> None:  # noqa: N802 - http.server's naming
        length = int(self.headers.get("Content-Length", 0))
        body = json.loads(self.rfile.read(length) or b"{}")
        b = self.behaviour
        b.requests.append(body)
        b.headers.append({k.lower(): v for k, v in self.headers.items()})
        b.served += 1
        if not self.path.endswith("/chat/completions"):
            return self._send(404, {"error": {"message": f"no route {self.path}"}})
        if b.always_fail or b.served <= b.fail_first:
            return self._send(
                500, {"error": {"message": "scripted failure", "type": "server_error"}}
            )
        if b.served <= b.fail_first + b.stall_first:
            time.sleep(b.stall_seconds)
        wants_plan = [t["function"]["name"] for t in body.get("tools", [])] == ["ActionPlan"]
        if wants_plan and b.plan_errors:
            status, error = b.plan_errors.pop(0)
            return self._send(status, {"error": error})
        return self._send(200, respond(body, b))

    def _send(self, status: int, payload: dict[str, Any]) -> None:
        data = json.dumps(payload).encode()
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):  # the client gave up (timeout)
            pass


class OpenAIStub:
    """Run the stub on a free local port in a background thread."""

    def __init__(self, behaviour: StubBehaviour | None = None):
        self.behaviour = behaviour or StubBehaviour()
        handler = type("Handler", (_Handler,), {"behaviour": self.behaviour})
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        """The OpenAI-style base URL (ends in /v1)."""
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}/v1"

    def __enter__(self) -> OpenAIStub:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
