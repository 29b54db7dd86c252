"""A small OpenAI-compatible HTTP server for tests: scripted, but speaks the real protocol.

``POST /v1/chat/completions`` answers like an OpenAI model would: tool calls for the chat
steps (scan -> diagnose -> recommend -> final reply), and, when asked for the ``ActionPlan``
function (structured output), a plan built from the tool results in the prompt. It records
every request, and it can misbehave the way real endpoints and models do:

* transport faults (:data:`FAULTS`) on the first requests or on every one: HTTP 429 with or
  without ``Retry-After``, HTTP 500, a connection reset without a response, a hang longer
  than the client's timeout;
* plan faults: an HTTP error (``plan_errors``), or a malformed or empty reply
  (``plan_replies``) to the next plan requests;
* model faults in the chat: bad tool calls first (``bad_calls``: invalid arguments, an
  unknown tool, arguments that are not JSON), or tool calls forever (``endless``).
"""

from __future__ import annotations

import json
import re
import socket
import struct
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Literal

from tests.fakes import template_from_prompt

Fault = Literal["500", "429", "429-retry-after", "reset", "hang"]
FAULTS: tuple[Fault, ...] = ("500", "429", "429-retry-after", "reset", "hang")
"""Transport faults: what a request gets instead of an answer."""

PlanReply = Literal["malformed", "empty"]
BadCall = Literal["invalid-args", "unknown-tool", "not-json"]


@dataclass
class StubBehaviour:
    """What the stub does."""

    target: str = "S003"
    day: str = "2026-02-10"
    faults: list[Fault] = field(default_factory=list)
    """Faults of the next requests, in order (then normal service)."""
    always: Fault | None = None
    """A fault every request gets (a dead, rate-limited or hung endpoint)."""
    retry_after: str = "1"
    """The ``Retry-After`` header of a ``429-retry-after`` fault, in seconds."""
    stall_seconds: float = 3.0
    """How long a ``hang`` lasts (longer than the client's timeout)."""
    plan_errors: list[tuple[int, dict[str, Any]]] = field(default_factory=list)
    """Answers to the next plan requests (ActionPlan), in order: (HTTP status, error body)."""
    chat_errors: list[tuple[int, dict[str, Any]]] = field(default_factory=list)
    """Answers to the next tool-calling (chat) requests, in order: (HTTP status, error body)."""
    plan_replies: list[PlanReply] = field(default_factory=list)
    """Broken answers (HTTP 200) to the next plan requests, in order."""
    bad_calls: list[BadCall] = field(default_factory=list)
    """Bad tool calls the model makes before its good ones, one a turn."""
    sql: str | None = None
    """A run_sql query the model makes first (e.g. reading driver notes)."""
    endless: bool = False
    """Never answer: keep calling tools, two a turn."""
    requests: list[dict[str, Any]] = field(default_factory=list)
    headers: list[dict[str, str]] = field(default_factory=list)
    arrived: list[float] = field(default_factory=list)
    """When each request arrived (``time.monotonic()``)."""
    served: int = 0

    def next_fault(self) -> Fault | None:
        """The fault the request being served gets, if any."""
        if self.always is not None:
            return self.always
        return self.faults.pop(0) if self.faults else None


def wants_plan(body: dict[str, Any]) -> bool:
    """Whether a request asks for the ActionPlan (the compose step), not a chat step."""
    return [t["function"]["name"] for t in body.get("tools", [])] == ["ActionPlan"]


def _completion(model: str, message: dict[str, Any], finish: str) -> dict[str, Any]:
    return {
        "id": "chatcmpl-stub",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [{"index": 0, "message": message, "finish_reason": finish}],
        "usage": {"prompt_tokens": 120, "completion_tokens": 30, "total_tokens": 150},
    }


def _call(name: str, args: dict[str, Any] | str, call_id: str) -> dict[str, Any]:
    arguments = args if isinstance(args, str) else json.dumps(args)
    return {"id": call_id, "type": "function", "function": {"name": name, "arguments": arguments}}


def _calls(*calls: dict[str, Any]) -> dict[str, Any]:
    return {"role": "assistant", "content": None, "tool_calls": list(calls)}


def _bad_call(kind: BadCall, b: StubBehaviour, call_id: str) -> dict[str, Any]:
    if kind == "invalid-args":  # a day no parser reads
        return _call("diagnose", {"target": b.target, "day": "last tuesday"}, call_id)
    if kind == "unknown-tool":
        return _call("get_weather", {"city": "Lyon"}, call_id)
    return _call("diagnose", '{"target": "' + b.target + '", "day": ', call_id)  # cut JSON


def _plan_reply(model: str, messages: list[dict[str, Any]], broken: PlanReply | None) -> Any:
    if broken == "empty":  # HTTP 200, but the model said nothing and called nothing
        return _completion(model, {"role": "assistant", "content": ""}, "stop")
    prompt = "\n".join(str(m.get("content") or "") for m in messages)
    plan: str | dict[str, Any] = template_from_prompt(prompt).model_dump(mode="json")
    if broken == "malformed":  # JSON cut in the middle, as by a token limit
        text = json.dumps(plan)
        plan = text[: len(text) // 2]
    return _completion(model, _calls(_call("ActionPlan", plan, "call_99")), "tool_calls")


def respond(body: dict[str, Any], b: StubBehaviour) -> dict[str, Any]:
    """The scripted answer (HTTP 200) to one chat-completions request."""
    model = body.get("model", "stub")
    messages = body.get("messages", [])
    if wants_plan(body):
        return _plan_reply(model, messages, b.plan_replies.pop(0) if b.plan_replies else None)
    steps = [
        ("scan_anomalies", {"scope": "store", "ids": [b.target], "day": b.day}),
        ("diagnose", {"target": b.target, "day": b.day}),
        ("recommend_actions", {"target": b.target, "day": b.day}),
    ]
    if b.sql:
        steps.insert(0, ("run_sql", {"sql": b.sql}))
    done = sum(1 for m in messages if m.get("role") == "tool")
    if b.endless:  # two calls a turn, round and round the steps
        pair = [steps[(done + i) % len(steps)] for i in (0, 1)]
        calls = [_call(name, args, f"call_{done + i + 1}") for i, (name, args) in enumerate(pair)]
        return _completion(model, _calls(*calls), "tool_calls")
    if done < len(b.bad_calls):
        return _completion(
            model, _calls(_bad_call(b.bad_calls[done], b, f"call_bad_{done + 1}")), "tool_calls"
        )
    done -= len(b.bad_calls)
    if done < len(steps):
        name, args = steps[done]
        return _completion(model, _calls(_call(name, args, f"call_{done + 1}")), "tool_calls")
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
        b.arrived.append(time.monotonic())
        b.served += 1
        if not self.path.endswith("/chat/completions"):
            return self._send(404, {"error": {"message": f"no route {self.path}"}})
        fault = b.next_fault()
        if fault == "500":
            error = {"message": "scripted failure", "type": "server_error"}
            return self._send(500, {"error": error})
        if fault in ("429", "429-retry-after"):
            error = {"message": "Rate limit reached: scripted", "type": "rate_limit_exceeded"}
            wait = {"Retry-After": b.retry_after} if fault == "429-retry-after" else {}
            return self._send(429, {"error": error}, wait)
        if fault == "reset":
            return self._reset()
        if fault == "hang":
            time.sleep(b.stall_seconds)
        if wants_plan(body) and b.plan_errors:
            status, error = b.plan_errors.pop(0)
            return self._send(status, {"error": error})
        if not wants_plan(body) and b.chat_errors:
            status, error = b.chat_errors.pop(0)
            return self._send(status, {"error": error})
        if body.get("stream"):
            return self._stream(respond(body, b), body.get("stream_options") or {})
        return self._send(200, respond(body, b))

    def _stream(self, completion: dict[str, Any], options: dict[str, Any]) -> None:
        """Send a completion as OpenAI's streamed chunks: text word by word, calls whole."""
        message, finish = completion["choices"][0]["message"], completion["choices"][0]
        base = {k: completion[k] for k in ("id", "created", "model")}
        base["object"] = "chat.completion.chunk"
        deltas: list[dict[str, Any]] = [{"role": "assistant", "content": ""}]
        deltas += [{"content": w} for w in re.findall(r"\S+\s*", message.get("content") or "")]
        for i, call in enumerate(message.get("tool_calls") or []):
            deltas.append({"tool_calls": [{"index": i, **call}]})
        chunks = [{**base, "choices": [{"index": 0, "delta": d}]} for d in deltas]
        chunks.append(
            {
                **base,
                "choices": [{"index": 0, "delta": {}, "finish_reason": finish["finish_reason"]}],
            }
        )
        if options.get("include_usage"):
            chunks.append({**base, "choices": [], "usage": completion["usage"]})
        data = "".join(f"data: {json.dumps(c)}\n\n" for c in chunks) + "data: [DONE]\n\n"
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Content-Length", str(len(data.encode())))
        self.end_headers()
        self.wfile.write(data.encode())

    def _send(
        self, status: int, payload: dict[str, Any], headers: dict[str, str] | None = None
    ) -> None:
        data = json.dumps(payload).encode()
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):  # the client gave up (timeout)
            pass

    def _reset(self) -> None:
        """Close the connection at once with a TCP reset, sending no response."""
        linger = struct.pack("ii", 1, 0)  # on, 0 s: close() sends RST, not FIN
        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, linger)
        self.connection.close()
        self.close_connection = True


class OpenAIStub:
    """Run the stub on a free local port in a background thread."""

    def __init__(self, behaviour: StubBehaviour | None = None):
        self.behaviour = behaviour or StubBehaviour()
        handler = type("Handler", (_Handler,), {"behaviour": self.behaviour})
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

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
