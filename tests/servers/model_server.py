"""A model server for tests only: speaks the Ollama API (`/api/chat` with streaming and
`format`, `/api/tags`, `/api/show`, `/api/version`), the OpenAI chat API
(`/v1/chat/completions`, `/v1/models`) and Anthropic's Messages API (`/v1/messages`) on a
loopback port.

Serving reports, as the vendors document them: a completion names the upstream provider that
served it in a top-level `provider` field when `served_by` has the model (OpenRouter,
https://openrouter.ai/docs/api-reference/overview), and a Messages answer reports where inference
ran in `usage.inference_geo` (`geo`; Anthropic,
https://platform.claude.com/docs/en/build-with-claude/data-residency).

Backends per model name: `embedded` (the real SmolLM2 through llama.cpp, grammar-constrained by
the request's schema) or `canned` (a minimal valid instance of the requested schema, instantly).
Offered `tools`, a canned model calls the tools queued for it (`ModelServer.plan_tools`), then
`answer` with a minimal instance of its arguments' schema, as a model calling tools natively does
(Ollama `message.tool_calls`, OpenAI `choices[0].message.tool_calls`).
Faults can be queued per model to exercise failure handling: close the connection, hang, answer
an HTTP status (with Retry-After), send a malformed body, or cut a stream short. The state
counts the chat requests being answered at once (`max_in_flight`), to check a client's limits. A simulated
load delay when the requested model differs from the loaded one imitates a single-model host.
"""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler
from typing import Any

from tests.servers.loopback import LoopbackServer

Backend = str  # "embedded" | "canned"


@dataclass
class Fault:
    kind: str  # close | hang | status | echo_auth | malformed | truncate | invalid_json
    model: str = "*"
    times: int = 1
    status: int = 500
    retry_after: float | None = None
    hang_s: float = 30.0
    body: bytes = b""  # kind "body": this body, with status 200
    content_type: str = "application/json"
    retry_after_date_s: float | None = None  # a Retry-After header as an HTTP date this far ahead


def sample(schema: Any) -> Any:
    """The smallest instance of a JSON Schema that validates (enough for the orchestrator's kinds)."""
    if not isinstance(schema, dict):
        return None
    if "enum" in schema:
        return schema["enum"][0]
    if "anyOf" in schema:
        options = [s for s in schema["anyOf"] if s.get("type") != "null"] or schema["anyOf"]
        return sample(options[0])
    kind = schema.get("type")
    if kind == "object":
        props = schema.get("properties", {})
        return {key: sample(value) for key, value in props.items()}  # optional fields too
    if kind == "array":
        return [sample(schema.get("items", {})) for _ in range(schema.get("minItems", 1))]
    if kind == "string":
        return "x" * max(1, schema.get("minLength", 1))
    if kind == "integer":
        return max(1, schema.get("minimum", 1))
    if kind == "number":
        return 1.0
    if kind == "boolean":
        return False
    return None


@dataclass
class ServerState:
    models: dict[str, Backend]
    load_delay_s: float = 0.0
    delay_s: float = 0.0  # every answer takes this long (a slow host)
    canned_usage: tuple[int, int] = (10, 5)  # (prompt, completion) tokens a canned answer reports
    canned_text: dict[str, str] = field(default_factory=dict)  # model -> the answer it always gives instead
    bodies: list[str] = field(default_factory=list)  # every request body received
    faults: list[Fault] = field(default_factory=list)
    requests: Counter[str] = field(default_factory=Counter)
    tool_plans: dict[str, list[tuple[str, dict[str, Any]]]] = field(default_factory=dict)  # model -> calls to make
    served_by: dict[str, str] = field(default_factory=dict)  # model -> the `provider` its completions report
    geo: dict[str, str] = field(default_factory=dict)  # model -> the `usage.inference_geo` its answers report
    # called with (model, chat requests so far) before a chat request is answered (a test's witness or trigger)
    on_request: Callable[[str, int], None] | None = None
    loaded: str | None = None
    loads: int = 0
    in_flight: int = 0  # chat requests being answered now
    max_in_flight: int = 0  # the most chat requests it was answering at once
    lock: threading.Lock = field(default_factory=threading.Lock)
    model_lock: threading.Lock = field(default_factory=threading.Lock)

    def take_fault(self, model: str) -> Fault | None:
        with self.lock:
            for fault in self.faults:
                if fault.times > 0 and fault.model in ("*", model):
                    fault.times -= 1
                    return fault
        return None


def tool_choice(state: ServerState, model: str, tools: list[dict[str, Any]]) -> tuple[str, dict[str, Any]] | None:
    """The tool call a canned model makes when offered tools: its next planned call, else `answer`
    with a minimal instance of the answer's schema (None: no such tool, it answers in text)."""
    with state.lock:
        plan = state.tool_plans.get(model) or []
        if plan:
            return plan.pop(0)
    for tool in tools:
        function = tool.get("function") or {}
        if function.get("name") == "answer":
            given = _as_object(state.canned_text.get(model))  # the answer this model always gives
            return "answer", given if given is not None else sample(function.get("parameters") or {})
    return None


def _as_object(text: str | None) -> dict[str, Any] | None:
    try:
        value = json.loads(text) if text is not None else None
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def generate(
    state: ServerState, model: str, messages: list[dict[str, Any]], schema: Any, options: dict[str, Any]
) -> tuple[str, int, int]:
    """Answer text, prompt tokens and completion tokens for one request."""
    with state.model_lock:  # one model loaded at a time, one request at a time
        if state.loaded != model:
            state.loads += 1
            state.loaded = model
            time.sleep(state.load_delay_s)
        time.sleep(state.delay_s)
        if state.models[model] == "canned":
            text = json.dumps(sample(schema)) if isinstance(schema, dict) else "hello"
            text = state.canned_text.get(model, text)
            return text, *state.canned_usage
        from orchestrator.providers._llama import shared_llama, weights_path

        llama, lock = shared_llama(weights_path())
        response_format = None
        if isinstance(schema, dict):
            response_format = {"type": "json_object", "schema": schema}
        elif schema == "json":
            response_format = {"type": "json_object"}
        with lock:
            done: Any = llama.create_chat_completion(
                messages=[{"role": m.get("role", "user"), "content": m.get("content") or ""} for m in messages],
                response_format=response_format,
                max_tokens=int(options.get("num_predict") or options.get("max_tokens") or 512),
                temperature=float(options.get("temperature", 0.2)),
                repeat_penalty=float(options.get("repeat_penalty", 1.1)),  # Ollama's default
                seed=int(options.get("seed", 42)),
            )
        usage = done.get("usage") or {}
        return (
            done["choices"][0]["message"]["content"] or "",
            usage.get("prompt_tokens", 0),
            usage.get("completion_tokens", 0),
        )


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: Any

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        pass

    @property
    def state(self) -> ServerState:
        return self.server.state

    # ---- plumbing
    def _body(self) -> dict[str, Any]:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) or b"{}"
        with self.state.lock:
            self.state.bodies.append(raw.decode("utf-8", "replace"))
        return json.loads(raw)

    def _json(self, status: int, payload: Any, headers: dict[str, str] | None = None) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        self._answered()
        self.wfile.write(data)

    def _chunk(self, data: bytes) -> None:
        if not data:  # the terminating chunk
            self._answered()
        self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
        self.wfile.flush()

    def _fault(self, model: str, openai: bool) -> bool:
        """Apply a queued fault; True when the request was answered (or dropped) by it."""
        fault = self.state.take_fault(model)
        if fault is None or fault.kind in ("truncate", "invalid_json"):
            if fault is not None:
                self._pending = fault
            return False
        if fault.kind == "close":
            self._answered()
            self.close_connection = True
            self.connection.shutdown(2)
            return True
        if fault.kind == "hang":
            time.sleep(fault.hang_s)
            self.close_connection = True
            return True
        if fault.kind == "body":  # 200 with whatever body the test wants (HTML, {}, a huge one)
            self.send_response(200)
            self.send_header("Content-Type", fault.content_type)
            self.send_header("Content-Length", str(len(fault.body)))
            self.end_headers()
            self.wfile.write(fault.body)
            return True
        if fault.kind == "malformed":
            data = b'{"model": "broken", "message": {"content": '
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
            return True
        headers = {"Retry-After": f"{fault.retry_after:g}"} if fault.retry_after is not None else {}
        if fault.retry_after_date_s is not None:
            when = datetime.now(UTC) + timedelta(seconds=fault.retry_after_date_s)
            headers = {"Retry-After": format_datetime(when, usegmt=True)}
        message = {429: "rate limited", 401: "unauthorized", 404: f"model '{model}' not found"}.get(
            fault.status, "boom"
        )
        if fault.kind == "echo_auth":  # a careless server that repeats the credentials it was sent
            message = f"invalid credentials: {self.headers.get('Authorization')}"
        payload = {"error": {"message": message, "type": "fault"}} if openai else {"error": message}
        self._json(fault.status, payload, headers)
        return True

    # ---- routes
    def do_GET(self) -> None:
        if self.path == "/api/tags":
            models = [
                {"name": m, "model": m, "size": 1, "digest": "0" * 12, "details": {"family": "test"}}
                for m in self.state.models
            ]
            self._json(200, {"models": models})
        elif self.path == "/api/version":
            self._json(200, {"version": "0.12.0"})
        elif self.path in ("/v1/models", "/models"):
            self._json(
                200,
                {
                    "object": "list",
                    "data": [{"id": m, "object": "model", "owned_by": "test"} for m in self.state.models],
                },
            )
        else:
            self._json(404, {"error": "not found"})

    def do_POST(self) -> None:
        self._pending: Fault | None = None
        body = self._body()
        if self.path == "/api/show":
            name = body.get("model") or body.get("name")
            if name not in self.state.models:
                self._json(404, {"error": f"model '{name}' not found"})
            else:
                self._json(200, {"details": {"family": "test"}, "model_info": {}, "capabilities": ["completion"]})
        elif self.path == "/api/chat":
            with self._answering():
                self._ollama_chat(body)
        elif self.path in ("/v1/chat/completions", "/chat/completions"):
            with self._answering():
                self._openai_chat(body)
        elif self.path == "/v1/messages":
            with self._answering():
                self._messages(body)
        else:
            self._json(404, {"error": "not found"})

    @contextmanager
    def _answering(self) -> Iterator[None]:
        """Count a chat request in flight while it is answered (`in_flight`, `max_in_flight`)."""
        with self.state.lock:
            self.state.in_flight += 1
            self.state.max_in_flight = max(self.state.max_in_flight, self.state.in_flight)
        self._counted = True
        try:
            yield
        finally:
            self._answered()

    def _answered(self) -> None:
        """The request is no longer in flight: called before the last bytes of its answer go out,
        so that a client that sends its next request at once never finds it still counted."""
        if getattr(self, "_counted", False):
            self._counted = False
            with self.state.lock:
                self.state.in_flight -= 1

    def _admit(self, model: str, openai: bool) -> bool:
        """Count the request, apply a queued fault, refuse unknown models; True to go on."""
        with self.state.lock:
            self.state.requests[model] += 1
            total = sum(self.state.requests.values())
        if self.state.on_request is not None:
            self.state.on_request(model, total)
        if self._fault(model, openai=openai):
            return False
        if model not in self.state.models:
            if openai:
                error = {"message": f"The model `{model}` does not exist", "type": "invalid_request_error"}
                self._json(404, {"error": error})
            else:
                self._json(404, {"error": f"model '{model}' not found, try pulling it first"})
            return False
        return True

    def _ollama_chat(self, body: dict[str, Any]) -> None:
        model = body.get("model", "")
        if not self._admit(model, openai=False):
            return
        calls = None
        if body.get("tools") and self.state.models[model] == "canned":
            chosen = tool_choice(self.state, model, body["tools"])
            calls = [{"function": {"name": chosen[0], "arguments": chosen[1]}}] if chosen else None
        text, prompt_tokens, completion_tokens = generate(
            self.state, model, body.get("messages", []), body.get("format"), body.get("options") or {}
        )
        if self._pending and self._pending.kind == "invalid_json":
            text = text[: len(text) // 2]
        final = {
            "model": model,
            "created_at": "2026-01-01T00:00:00Z",
            "message": {"role": "assistant", "content": ""},
            "done": True,
            "done_reason": "stop",
            "prompt_eval_count": prompt_tokens,
            "eval_count": completion_tokens,
        }
        if calls is not None:
            text = ""
            final["message"]["tool_calls"] = calls
        if not body.get("stream", True):
            final["message"]["content"] = text
            self._json(200, final)
            return
        self.send_response(200)
        self.send_header("Content-Type", "application/x-ndjson")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        pieces = [text[i : i + 8] for i in range(0, len(text), 8)] or [""]
        for index, piece in enumerate(pieces):
            if self._pending and self._pending.kind == "truncate" and index >= len(pieces) // 2:
                self.close_connection = True  # the stream stops mid-answer, no terminating chunk
                return
            line = {
                "model": model,
                "created_at": "2026-01-01T00:00:00Z",
                "message": {"role": "assistant", "content": piece},
                "done": False,
            }
            self._chunk(json.dumps(line).encode() + b"\n")
        self._chunk(json.dumps(final).encode() + b"\n")
        self._chunk(b"")

    def _openai_chat(self, body: dict[str, Any]) -> None:
        model = body.get("model", "")
        if not self._admit(model, openai=True):
            return
        response_format = body.get("response_format") or {}
        schema: Any = None
        if response_format.get("type") == "json_schema":
            schema = response_format["json_schema"]["schema"]
        elif response_format.get("type") == "json_object":
            schema = response_format.get("schema", "json")
        options = {
            "max_tokens": body.get("max_completion_tokens") or body.get("max_tokens"),
            "temperature": body.get("temperature", 0.2),
            "seed": body.get("seed", 42),
        }
        text, prompt_tokens, completion_tokens = generate(self.state, model, body.get("messages", []), schema, options)
        if self._pending and self._pending.kind == "invalid_json":
            text = text[: len(text) // 2]
        message: dict[str, Any] = {"role": "assistant", "content": text}
        canned = self.state.models[model] == "canned"
        chosen = tool_choice(self.state, model, body["tools"]) if body.get("tools") and canned else None
        if chosen is not None:
            function = {"name": chosen[0], "arguments": json.dumps(chosen[1])}
            message = {
                "role": "assistant",
                "content": None,
                "tool_calls": [{"id": f"call_{chosen[0]}", "type": "function", "function": function}],
            }
        served = self.state.served_by.get(model)
        self._json(
            200,
            {
                **({"provider": served} if served else {}),
                "id": "chatcmpl-test",
                "object": "chat.completion",
                "created": 0,
                "model": model,
                "choices": [
                    {
                        "index": 0,
                        "message": message,
                        "finish_reason": "tool_calls" if "tool_calls" in message else "stop",
                    }
                ],
                "usage": {
                    "prompt_tokens": prompt_tokens,
                    "completion_tokens": completion_tokens,
                    "total_tokens": prompt_tokens + completion_tokens,
                },
            },
        )

    def _messages(self, body: dict[str, Any]) -> None:
        """Anthropic's Messages API: the schema the client wrote into the prompt is answered with
        a minimal instance of it; `usage.inference_geo` reports where it ran."""
        model = body.get("model", "")
        if model not in self.state.models:
            self._json(404, {"type": "error", "error": {"type": "not_found_error", "message": model}})
            return
        turns = body.get("messages") or []
        last = str(turns[-1].get("content") if turns else "")
        marker = "The JSON must follow this JSON Schema:\n"
        schema = json.loads(last.split(marker, 1)[1]) if marker in last else None
        text, prompt_tokens, completion_tokens = generate(self.state, model, turns, schema, {})
        usage: dict[str, Any] = {"input_tokens": prompt_tokens, "output_tokens": completion_tokens}
        if model in self.state.geo:
            usage["inference_geo"] = self.state.geo[model]
        self._json(
            200,
            {
                "id": "msg_test",
                "type": "message",
                "role": "assistant",
                "model": model,
                "content": [{"type": "text", "text": text}],
                "stop_reason": "end_turn",
                "usage": usage,
            },
        )


class ModelServer(LoopbackServer):
    """Start on a free loopback port in a background thread; `url` is the base URL."""

    state: ServerState

    def __init__(self, models: dict[str, Backend], load_delay_s: float = 0.0) -> None:
        super().__init__(Handler, ServerState(models=dict(models), load_delay_s=load_delay_s))

    def plan_tools(self, model: str, *calls: tuple[str, dict[str, Any]]) -> None:
        """Tool calls a canned model makes, in order, before it answers."""
        with self.state.lock:
            self.state.tool_plans.setdefault(model, []).extend(calls)

    def fault(self, kind: str, model: str = "*", **kwargs: Any) -> None:
        with self.state.lock:
            self.state.faults.append(Fault(kind=kind, model=model, **kwargs))


def main() -> None:
    """`python -m tests.servers.model_server --model NAME=embedded ...`: serve until killed."""
    import argparse

    parser = argparse.ArgumentParser()
    parser.add_argument("--model", action="append", default=[], help="NAME=embedded|canned")
    parser.add_argument("--load-delay", type=float, default=0.0)
    args = parser.parse_args()
    models = dict(item.split("=", 1) for item in args.model) or {"smollm2:135m": "embedded"}
    with ModelServer(models, args.load_delay) as server:
        print(server.url, flush=True)
        server.thread.join()


if __name__ == "__main__":
    main()
