"""Record and replay model calls, so a workflow becomes a deterministic, offline regression test.

`--record DIR` stores every model call as a plain JSON file keyed by a hash of (model, call
parameters, messages, output schema); `--replay DIR` serves the recorded answers without any
provider (nothing is loaded, nothing is contacted) and fails clearly, naming the call, when a
call was not recorded. Failures are recorded too, so fallbacks replay the same way. Token counts
are recorded with the calls, so context packing replays without the model's tokenizer.

    DIR/calls/ab/abcdef....1.json    {"request": {...}, "response": {...} | "error": {...}}
    DIR/tools/ab/abcdef....1.json    {"request": {tool, args, owner}, "result": {...}}
    DIR/tokens.json                  {"sha256(model, text)": count}

Tool calls are part of a call's key (the assistant's tool calls and the results it was given are
messages), and the tools' results are recorded too: a replay serves them, so no check runs and
every later message is the one recorded.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import threading
from collections import Counter
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, Literal

from langchain_core.callbacks import AsyncCallbackManagerForLLMRun, CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage, ToolCall, ToolMessage
from langchain_core.messages.ai import UsageMetadata
from langchain_core.outputs import ChatGeneration, ChatResult
from pydantic import ConfigDict

from orchestrator import errors
from orchestrator.errors import NotRecorded, ProviderError, ProviderTimeout
from orchestrator.models.failure import classify
from orchestrator.policy.secrets import redact_tree

Mode = Literal["record", "replay"]


def _sha(data: Any) -> str:
    return hashlib.sha256(json.dumps(data, sort_keys=True, ensure_ascii=False).encode("utf-8")).hexdigest()


class RecordingMismatch(ValueError):
    """A recording that was not made for this spec (or cannot be read)."""


class Recorder:
    def __init__(self, directory: Path, mode: Mode, spec_digest: str = "") -> None:
        self.directory = directory
        self.mode = mode
        self.spec_digest = spec_digest  # sha256 of the spec file: a recording replays only its own spec
        self.lock = threading.Lock()
        self.ordinals: Counter[str] = Counter()
        self.tokens: dict[str, int] = {}
        self.secrets: list[str] = []  # redacted from every file written
        if mode == "replay":
            self._check(directory)

    def _check(self, directory: Path) -> None:
        if not (directory / "calls").is_dir():
            raise FileNotFoundError(f"no recording in {directory} (expected {directory / 'calls'}/)")
        manifest = _json_file(directory / "manifest.json")
        if self.spec_digest and (not isinstance(manifest, dict) or manifest.get("spec_sha256") != self.spec_digest):
            made = manifest.get("spec_sha256", "?")[:12] if isinstance(manifest, dict) else "an unknown spec"
            raise RecordingMismatch(
                f"the recording in {directory} was made for another spec ({made}, this one is "
                f"{self.spec_digest[:12]}); record it again with --record"
            )
        tokens = _json_file(directory / "tokens.json")
        if tokens is not None and not (
            isinstance(tokens, dict) and all(isinstance(v, int) and not isinstance(v, bool) for v in tokens.values())
        ):
            raise RecordingMismatch(f"{directory / 'tokens.json'} is not a table of token counts")
        self.tokens = dict(tokens or {})

    # ---- keys
    @staticmethod
    def request(
        model: str, params: dict[str, Any], messages: list[BaseMessage], kwargs: dict[str, Any]
    ) -> dict[str, Any]:
        return {"model": model, "params": params, "messages": [_message(m) for m in messages], "options": kwargs}

    def _next_path(self, key: str, folder: str = "calls") -> Path:
        with self.lock:
            self.ordinals[key] += 1
            ordinal = self.ordinals[key]
        return self.directory / folder / key[:2] / f"{key}.{ordinal}.json"

    # ---- calls
    def save(self, key: str, request: dict[str, Any], outcome: dict[str, Any]) -> None:
        path = self._next_path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        record = redact_tree({"request": request, **outcome}, self.secrets)
        path.write_text(json.dumps(record, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")

    def load(self, key: str, request: dict[str, Any]) -> dict[str, Any]:
        path = self._next_path(key)
        if not path.is_file():
            last = " ".join(request["messages"][-1]["content"].split())[:200] if request["messages"] else ""
            raise NotRecorded(
                f"{request['model']}: call {key[:12]} (#{path.name.split('.')[1]}) is not in the recording "
                f"{self.directory}; its last message begins '{last}'",
                model=request["model"],
            )
        recorded: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
        return recorded

    # ---- tool results
    async def tool(self, request: dict[str, Any], compute: Callable[[], Awaitable[dict[str, Any]]]) -> dict[str, Any]:
        """A tool's result: computed and written down when recording, read back on replay."""
        key = _sha(request)
        path = self._next_path(key, "tools")
        if self.mode == "replay":
            if not path.is_file():
                raise NotRecorded(
                    f"tool call {request.get('tool')} {json.dumps(request.get('args'))[:160]} of "
                    f"{request.get('owner')} is not in the recording {self.directory}"
                )
            found: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))["result"]
            return found
        result = await compute()
        path.parent.mkdir(parents=True, exist_ok=True)
        record = redact_tree({"request": request, "result": result}, self.secrets)
        path.write_text(json.dumps(record, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
        return result

    # ---- token counts
    def count(self, model: str, text: str, compute: Callable[[str], int]) -> int:
        key = _sha([model, text])
        with self.lock:
            if key in self.tokens:
                return self.tokens[key]
        value = compute(text)
        if self.mode == "record":
            with self.lock:
                self.tokens[key] = value
        return value

    def flush(self) -> None:
        if self.mode == "record":
            self.directory.mkdir(parents=True, exist_ok=True)
            with self.lock:
                data = json.dumps(self.tokens, indent=0, sort_keys=True)
            (self.directory / "tokens.json").write_text(data + "\n", encoding="utf-8")
            manifest = {"spec_sha256": self.spec_digest}
            (self.directory / "manifest.json").write_text(json.dumps(manifest) + "\n", encoding="utf-8")


def _json_file(path: Path) -> Any:
    """A small JSON file of a recording, None when absent; RecordingMismatch when unreadable."""
    if not path.is_file():
        return None
    try:
        if path.stat().st_size > 64 * 1024 * 1024:
            raise RecordingMismatch(f"{path} is too large to be a recording's")
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise RecordingMismatch(f"{path} cannot be read: {exc}") from None


def _message(message: BaseMessage) -> dict[str, Any]:
    """A message as a call's key sees it: its role and text, and its tool calls or the call it
    answers (absent for plain messages, so keys of calls without tools stay what they were)."""
    found: dict[str, Any] = {"role": message.type, "content": message.text}
    calls = getattr(message, "tool_calls", None)
    if calls:
        found["tool_calls"] = [{"name": c["name"], "args": c["args"], "id": c.get("id")} for c in calls]
    if isinstance(message, ToolMessage):
        found["tool_call_id"] = message.tool_call_id
    return found


def response_of(answer: AIMessage) -> dict[str, Any]:
    """What is stored of an answer: its text, token counts and tool calls (when it made any)."""
    meta: dict[str, Any] = dict(answer.usage_metadata or {})
    response: dict[str, Any] = {
        "content": answer.text,
        "usage": {"input_tokens": meta.get("input_tokens", 0), "output_tokens": meta.get("output_tokens", 0)},
    }
    if answer.tool_calls:
        response["tool_calls"] = [{"name": c["name"], "args": c["args"], "id": c.get("id")} for c in answer.tool_calls]
    served = answer.response_metadata.get("served")
    if isinstance(served, dict):  # who served it: checked again on replay and on a cache hit
        response["served"] = served
    return response


def chat_result(message: dict[str, Any], cached: bool = False) -> ChatResult:
    """A chat result from a stored answer ({"content", "usage", "tool_calls"?}); `cached` marks cache hits."""
    usage = message.get("usage") or {}
    calls = [ToolCall(name=c["name"], args=c["args"], id=c.get("id")) for c in message.get("tool_calls") or []]
    ai = AIMessage(
        content=message.get("content", ""),
        tool_calls=calls,
        usage_metadata=UsageMetadata(
            input_tokens=usage.get("input_tokens", 0),
            output_tokens=usage.get("output_tokens", 0),
            total_tokens=usage.get("input_tokens", 0) + usage.get("output_tokens", 0),
        ),
        response_metadata={
            **({"cached": True} if cached else {}),
            **({"served": message["served"]} if isinstance(message.get("served"), dict) else {}),
        },
    )
    return ChatResult(generations=[ChatGeneration(message=ai)])


class KeyedChatModel(BaseChatModel):
    """A chat model whose every call has a key: a hash of the model, its parameters, the
    messages and the output options (schema, mode). `_answer` gets each call's key."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    route: str
    params: dict[str, Any]
    recorder: Any  # the Recorder, or the ResponseCache

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        raise NotImplementedError("recorded models are called asynchronously")

    async def _agenerate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        request = Recorder.request(self.route, self.params, messages, kwargs)
        return await self._answer(_sha(request), request, messages, stop, kwargs)

    async def _answer(
        self, key: str, request: dict[str, Any], messages: list[BaseMessage], stop: Any, kwargs: dict[str, Any]
    ) -> ChatResult:
        raise NotImplementedError


class RecordingChatModel(KeyedChatModel):
    """Calls the real model and writes the call down."""

    inner: BaseChatModel

    @property
    def _llm_type(self) -> str:
        return "orchestrator-recording"

    async def _answer(
        self, key: str, request: dict[str, Any], messages: list[BaseMessage], stop: Any, kwargs: dict[str, Any]
    ) -> ChatResult:
        try:
            answer = await self.inner.ainvoke(messages, stop=stop, **kwargs)
        except asyncio.CancelledError:  # the call timed out (or the run stopped): replays as a timeout
            timeout = {"type": "ProviderTimeout", "message": f"{self.route}: the call timed out", "status": None}
            self.recorder.save(key, request, {"error": timeout})
            raise
        except Exception as exc:  # recorded as classified, then raised unchanged
            # a model that stopped a call at one of its own bounds replays as that timeout
            error = classify(exc, self.route)
            if isinstance(exc, TimeoutError):
                error = ProviderTimeout(f"{self.route}: timed out: {exc}", model=self.route)
            error_record = {"type": type(error).__name__, "message": error.message, "status": error.status}
            self.recorder.save(key, request, {"error": {**error_record, "retry_after": error.retry_after}})
            raise
        response = response_of(answer)
        self.recorder.save(key, request, {"response": response})
        return chat_result(response)


class ReplayChatModel(KeyedChatModel):
    """Answers from the recording; reaches no provider and loads no model."""

    @property
    def _llm_type(self) -> str:
        return "orchestrator-replay"

    async def _answer(
        self, key: str, request: dict[str, Any], messages: list[BaseMessage], stop: Any, kwargs: dict[str, Any]
    ) -> ChatResult:
        recorded = self.recorder.load(key, request)
        if "error" in recorded:
            raise _replayed_error(recorded["error"], self.route)
        return chat_result(recorded["response"])


def _replayed_error(error: dict[str, Any], route: str) -> ProviderError:
    kind = getattr(errors, error.get("type", ""), ProviderError)
    if not (isinstance(kind, type) and issubclass(kind, ProviderError)):
        kind = ProviderError
    return kind(error["message"], model=route, status=error.get("status"), retry_after=error.get("retry_after"))
